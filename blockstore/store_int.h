/* store_int.h — what the files of the store share (store.c: the API, reads
 * and their checks; store_reader.c: the reader threads of store_read_async;
 * store_writer.c: the writer thread and its group commit;
 * store_open.c: layout, quarantine, the walk at open; store_log.c: the
 * lease log). Not a public header.
 */
#ifndef COOPFS_BLOCKSTORE_STORE_INT_H
#define COOPFS_BLOCKSTORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "blockstore/store.h"

#define STORE_MOD "store"

/* A lease log record: key [32] | lease [112] | first 8 bytes of
 * SHA-256(key | lease). A record whose lease bytes are all 0xff is a
 * tombstone: it drops every earlier record of its key (store_remove of a
 * content block writes one). 0xff..ff can never be a signed lease: its
 * signature's S half is not below the group order, which every Ed25519
 * verifier refuses (RFC 8032 5.1.7; OpenSSL), and its owner key is not a
 * canonical point encoding either. */
#define STORE_LOG_SUM_LEN     8
#define STORE_LOG_REC_LEN     (ID_BYTES + LEASE_LEN + STORE_LOG_SUM_LEN) /* 152 */
#define STORE_LOG_NAME        "leases.log"
#define STORE_LOG_COMPACT_MIN (1u << 20) /* the writer compacts no smaller log */

/* Encodes the record of (key, l) into out; l == NULL makes a tombstone. */
void store_log_rec_encode(uint8_t out[STORE_LOG_REC_LEN], const struct id *key,
                          const struct lease *l);

/* How the writer may make a batch durable (store_writer.c explains):
 * FILES only ever fsyncs files and directories; FS also uses syncfs() for
 * batches that would need many fsyncs. */
enum store_sync_mode { STORE_SYNC_FILES = 0, STORE_SYNC_FS = 1 };
/* For tests: the form to use, set right after store_open. */
void store_set_sync_mode(struct store *st, enum store_sync_mode mode);

/* A file that passed its check at open. */
struct store_found {
    struct id key;
    uint32_t size;
    uint8_t type; /* enum store_type */
};

/* A queued operation. Writes carry the file's bytes, lease appends their
 * encoded records, in data[] (one allocation, one copy of the caller's
 * bytes). */
enum store_op_kind {
    STORE_OP_WRITE = 1,
    STORE_OP_REMOVE = 2,
    STORE_OP_LEASE = 3,
    STORE_OP_READ = 4, /* store_read_async: done by a reader thread */
};

struct store_op {
    struct store_op *next;
    uint8_t kind; /* enum store_op_kind */
    uint8_t type; /* enum store_type (writes and removes) */
    int status;   /* written by the writer thread */
    int fd;       /* the temporary file while it is open (writer thread) */
    bool tmp;     /* a temporary file exists (writer thread) */
    struct id key;
    uint64_t token;
    uint64_t tmp_seq; /* tmp/<tmp_seq as 16 hex digits> (writer thread) */
    uint8_t *out;     /* a read's bytes once it succeeded (owned until polled) */
    size_t out_len;
    size_t len;
    uint8_t data[];
};

struct store {
    char *dir;
    int dir_fd, blocks_fd, roots_fd, kv_fd, tmp_fd, quar_fd;
    int log_fd;        /* leases.log, O_APPEND; the writer thread after open */
    uint64_t log_size; /* bytes of whole records in leases.log (writer thread) */
    uint64_t log_base; /* live bytes after the last compaction (writer thread) */
    uint64_t tmp_seq;  /* the next temporary file's name (writer thread) */
    struct logger lg;  /* a copy of the caller's */
    void (*wake)(void *ctx);
    void *wake_ctx;
    bool no_sync;
    int sync_mode; /* enum store_sync_mode; set at open, before the first write */

    pthread_t thread;
    bool thread_started; /* loop thread */
    pthread_t readers[STORE_READERS];
    unsigned nreaders; /* started (loop thread) */
    pthread_mutex_t lock;
    pthread_cond_t cond;                     /* the writer waits on it */
    pthread_cond_t rcond;                    /* the readers wait on it */
    struct store_op *q_head, **q_tail;       /* queued writes: protected by lock */
    struct store_op *rq_head, **rq_tail;     /* queued reads: protected by lock */
    struct store_op *done_head, **done_tail; /* completions: protected by lock */
    bool stopping;                           /* protected by lock */

    /* Serialises every change of a name under blocks/, roots/ and kv/: the
     * writer's renames and unlinks against store_read's quarantine, so that
     * a read never moves aside a file the writer has just put in place, and
     * used stays the exact sum of the files' sizes. */
    pthread_mutex_t ns_lock;
    uint64_t quar_seq; /* protected by ns_lock (and the loop thread at open) */

    atomic_bool failed;
    _Atomic uint64_t used;
    _Atomic uint64_t n_writes, n_removes, n_leases, n_batches, n_fsyncs, n_reads, n_read_bad,
        n_bytes;

    /* What open found, for store_scan (loop thread; never changes after open). */
    struct store_found *found;
    size_t nfound;
    struct id *lease_keys; /* the live leases: lease_keys[i] is the block of */
    struct lease *leases;  /* leases[i]; sorted by key, then owner */
    size_t nleases;
    struct store_open_stats open_stats;
};

/* The directory fd of (type, key) and the file's name in it ("XY/<hex>" for
 * content blocks, relative to blocks_fd). name has room for 68 bytes. */
int store_file_dir(const struct store *st, enum store_type type);
void store_file_name(enum store_type type, const struct id *key, char name[68]);
/* The largest file a type allows. */
size_t store_max_len(enum store_type type);
/* Checks bytes as the file of (type, key). Returns NULL if good, else the
 * reason (a static string). */
const char *store_check(enum store_type type, const struct id *key, const uint8_t *bytes,
                        size_t len);
/* Reads all of fd (size bytes, as fstat said) into buf. Returns 0, -EIO (a
 * read error) or -EBADMSG (the file changed size under us). */
int store_read_fd(int fd, uint8_t *buf, size_t size);
/* Moves dirfd/name aside into quarantine/ under "<what>-<name>[.N]". The
 * caller holds ns_lock once the writer runs. Returns 0 or -errno. */
int store_quarantine_move(struct store *st, int dirfd, const char *name, const char *what);
/* Writes all of p, retrying short writes and EINTR. Returns 0 or -errno. */
int store_write_all(int fd, const uint8_t *p, size_t len);
/* fsync (or, with no_sync, nothing); counts it. Returns 0 or -errno. */
int store_fsync(struct store *st, int fd);
int store_fdatasync(struct store *st, int fd);
int store_syncfs(struct store *st);

/* The writer thread (store_writer.c); arg is the store. */
void *store_writer_main(void *arg);
/* A reader thread (store_reader.c); arg is the store. */
void *store_reader_main(void *arg);
/* Frees a list of ops (next-linked), with the bytes of reads. */
void store_ops_free(struct store_op *op);

/* At open (store_open.c): makes the layout, empties tmp/, walks and checks
 * every file. Returns 0 or -errno. */
int store_open_layout(struct store *st);
int store_open_walk(struct store *st);
/* At open (store_log.c): opens and replays leases.log, cuts a torn tail,
 * rewrites it when mostly dead; fills st->leases and st->log_fd. */
int store_log_open(struct store *st);
/* In the writer thread, after a batch: rewrites leases.log with only its
 * live records when it has more than doubled since the last time. Returns
 * 0 (also when it kept the old log for lack of space or memory) or a fatal
 * negative errno. */
int store_log_compact_maybe(struct store *st);

#endif
