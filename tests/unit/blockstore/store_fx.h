/* store_fx.h — the fixture shared by the local store tests (test_store.c,
 * test_store_log.c, test_store_fail.c): a store in a fresh mkdtemp
 * directory, waiting for completions, records to store, and looking at
 * the files on disk. */
#ifndef STORE_FX_H
#define STORE_FX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockstore/block.h"
#include "blockstore/store.h"
#include "blockstore/store_int.h" /* store_set_sync_mode: both barrier forms */
#include "common/log.h"

#define REC_LEN (ID_BYTES + LEASE_LEN + 8) /* one leases.log record */


/* ---- fixture ---- */

struct fx {
    char root[64]; /* the mkdtemp directory */
    char dir[96];  /* root/store */
    struct store *st;
    struct logger lg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t wakes;       /* protected by lock */
    pthread_mutex_t gate; /* held by a test to stall the writer in on_wake */
    enum store_sync_mode mode;
    int no_sync;
};

/* ---- scan ---- */

struct scan_ent {
    enum store_type type;
    struct id key;
    uint32_t size;
    struct lease leases[8];
    size_t nleases;
};

struct scan_res {
    struct scan_ent ents[64];
    size_t n;
};

extern uint8_t buf_a[BLOCK_MAX_STORED], buf_b[BLOCK_MAX_STORED], buf_c[KV_MAX_LEN];

void rm_rf(const char *path);
int fx_open(struct fx *f);
void fx_reopen(struct fx *f);
/* syncfs() barriers (the default on Linux >= 5.8). */
int setup(void **state);
/* fdatasync/fsync barriers, file by file and directory by directory. */
int setup_files(void **state);
int teardown(void **state);
/* Collects exactly n completions (waiting on wake, 30 s at most). */
void wait_n(struct fx *f, struct store_completion *out, size_t n);
/* Waits for one completion and returns its status, checking its token. */
int wait_one(struct fx *f, uint64_t token);

void make_content(uint32_t seed, size_t len, uint8_t *out, size_t *out_len, struct id *key);
void make_sig_key(uint8_t n, struct sig_key *k);
void make_root(uint8_t who, uint64_t version, size_t plen, uint8_t *out, size_t *out_len,
               struct id *key);
void make_kv(uint8_t n, uint64_t stamp, size_t vlen, uint8_t *out, size_t *out_len,
             struct id *key);

void path_of(struct fx *f, enum store_type type, const struct id *key, char *out, size_t cap);
void flip_byte(const char *path, off_t at);
size_t count_entries(const char *path);
/* The sum of the sizes of every file under blocks/, roots/ and kv/. */
uint64_t sum_files(struct fx *f);
off_t file_size(const char *path);
void expect_read(struct fx *f, enum store_type type, const struct id *key,
                 const uint8_t *want, size_t want_len);
void expect_absent(struct fx *f, enum store_type type, const struct id *key);
void lease_log_path(struct fx *f, char *p, size_t cap);

void on_scan(void *ctx, enum store_type type, const struct id *key, uint32_t size,
             const struct lease *leases, size_t nleases);
const struct scan_ent *scan_find(const struct scan_res *r, enum store_type type,
                                 const struct id *key);

#endif
