/* fs_int.h — the insides of fs/ shared by its files (not a public API). */
#ifndef COOPFS_FS_FS_INT_H
#define COOPFS_FS_FS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/fs.h"
#include "fs/obj.h"

struct fuse_session;
#define FS_ROOT_INO 1 /* FUSE_ROOT_ID: the root's inode number */
struct fuse_lowlevel_ops;
/* The operations (fuse_ops.c, xattr.c). */
void fs_fuse_ops(struct fuse_lowlevel_ops *ops);
void fs_xattr_ops(struct fuse_lowlevel_ops *ops);

/* ---- block cache (cache.c) ----
 * Verified blocks by key, decoded (the payload), LRU within a byte limit.
 * Gets of one key at once share one fetch. */
struct fs_cache;
int fs_cache_new(uint64_t limit, struct fs_cache **out);
void fs_cache_free(struct fs_cache *c);
/* The decoded payload of content block key: a malloc'd copy in *out
 * (*len bytes), fetched through bc when not cached. 0 or -errno (EIO). */
int fs_cache_get(struct fs *f, const struct id *key, uint8_t **out, size_t *len);
/* Copies up to want bytes of key's decoded payload from offset off into
 * buf, fetching it when not cached; returns the bytes copied (fewer when
 * the payload ends first) or -errno. */
ssize_t fs_cache_read(struct fs *f, const struct id *key, size_t off, void *buf, size_t want);
/* Starts fetching key into the cache if it is not there (read-ahead). */
void fs_cache_prefetch(struct fs *f, const struct id *key);
void fs_cache_put(struct fs *f, const struct id *key, const uint8_t *payload, size_t len);

/* ---- synchronous block calls (cache.c) ---- */
/* Puts a content block made of (kind, data) with the mount's lease; sets
 * *key. Fewer than cfg.min_copies copies is -EIO. */
int fs_put_block(struct fs *f, uint8_t kind, const void *data, size_t len, struct id *key);
/* Stores bytes as a FILE manifest of DATA chunks (inline not handled
 * here); sets *key. */
int fs_put_stream(struct fs *f, const uint8_t *bytes, size_t len, struct id *key);
/* Stores the FILE manifest (and indirect blocks) of chunk keys (zero
 * keys are holes); sets *key. */
int fs_put_manifest(struct fs *f, uint64_t size, const struct id *keys, size_t n, struct id *key);
/* Reads a whole stream stored by fs_put_stream (a FILE manifest key). */
int fs_get_stream(struct fs *f, const struct id *key, uint64_t size, uint8_t **out, size_t *len);
/* The chunk keys of FILE manifest key (indirect blocks resolved). */
int fs_get_chunks(struct fs *f, const struct id *key, struct id **keys, size_t *n,
                  uint64_t *size);
/* fs_get_chunks that also calls indirect(ctx, k) for every indirect block
 * of the manifest tree (lease renewal). */
int fs_walk_manifest(struct fs *f, const struct id *key,
                     void (*indirect)(void *ctx, const struct id *key), void *ctx,
                     struct id **keys, size_t *n, uint64_t *size);
/* Encoded blocks waiting to be stored. */
struct blist {
    size_t n, cap;
    struct bitem {
        struct id key;
        uint8_t *bytes;
        size_t len;
    } *v;
};
void blist_clear(struct blist *l);
/* Encodes a stream as DATA chunks and a FILE manifest into l (no I/O);
 * sets *key. */
int fs_stream_encode(struct fs *f, const uint8_t *bytes, size_t len, struct blist *l,
                     struct id *key);
/* Stores every block of l; 0 or -errno. */
int fs_put_blist(struct fs *f, const struct blist *l);
/* bs status -> negative errno. */
int fs_errno(int status);

/* ---- in-memory inodes (tree.c) ---- */
enum chunk_state {
    CH_KEY = 0,   /* key holds it (all-zero key: a hole) */
    CH_DIRTY = 1, /* the spool holds it, not stored */
    CH_BUSY = 2,  /* the spool holds it, a store is running */
};
struct chunk {
    struct id key;
    uint8_t st;
    uint32_t gen; /* from fnode.gen_seq on every change, so a store that raced a
                     write or a truncate is not taken: never reused within a file */
};

struct fnode {
    uint64_t ino;
    uint64_t nlookup;  /* kernel references */
    unsigned nopen;
    struct fnode *parent; /* NULL: the root, a snapshot root, or unlinked */
    char *name;
    struct fs_inode a;    /* attributes and the last stored content reference */
    bool ro;              /* part of a snapshot */
    bool dirty;           /* a and/or (dir) entries changed since the last snapshot */
    bool sub_dirty;       /* something below changed (dirs) */
    struct fnode *hnext;  /* ino hash chain */
    /* directories */
    bool loaded;
    size_t nkids, capkids;
    struct fnode **kids;  /* sorted by name */
    /* files: content */
    bool chunks_loaded;
    struct chunk *ch;
    size_t nch;
    uint64_t size;        /* the size programs see (spool included) */
    int spool;            /* -1: none */
    unsigned busy;        /* stores running */
    uint32_t wgen;        /* bumped on every write or truncate */
    uint32_t gen_seq;     /* the last chunk generation given out */
    uint32_t last_read_chunk;
    int werr;             /* a background store failed: the next flush returns it */
    bool content_dirty;   /* written since the last flush */
    bool flushing;        /* a flush runs (one at a time) */
    uint64_t snap_version; /* snapshot roots */
};

struct fs_job; /* a chunk store (file.c) */

struct fs {
    struct fs_config cfg;
    struct bclient bc;
    struct id root_key;
    struct fs_cache *cache;
    char *dir;   /* DATA/fs */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* chunk stores finished, publishes finished */
    /* inode table */
    struct fnode **htab;
    size_t hcap, hcount;
    uint64_t next_ino;
    struct fnode *root;
    struct fnode *snaps; /* the .snapshots directory */
    /* the published head */
    struct id head;      /* commit key (zero: none) */
    uint64_t version;
    bool has_head;
    struct fs_inode head_root; /* the root inode of head */
    /* publishing */
    uint64_t change_seq;  /* bumped on every change */
    uint64_t pub_seq;     /* changes up to this are in a stored root */
    uint64_t first_dirty_ms;
    int pub_err;          /* the last publish failure (0: none) */
    uint64_t pub_fail_ms;
    unsigned pub_fails;   /* failures in a row */
    pthread_t publisher;
    bool publisher_on, stopping;
    pthread_cond_t pub_cv;
    pthread_t renewer;
    bool renewer_on;
    pthread_cond_t renew_cv;
    unsigned sync_waiters;
    struct blist pend; /* blocks of the last snapshots not stored yet */
    int lockfd;  /* flock of DATA/fs/lock: one mount per data directory */
    /* journal */
    int jfd;
    uint64_t jseq;
    /* workers */
    pthread_t *wk;
    unsigned nwk;
    struct fs_job *jobs_head, *jobs_tail;
    pthread_cond_t jobs_cv;
    /* fuse */
    struct fuse_session *se;
    pthread_mutex_t se_mu; /* guards se for notifications (never held with mu) */
    volatile int stop_req;
    uint32_t conflicts;
};

uint64_t fs_now_ms(void);
int64_t fs_now_ns(void);

struct fnode *fnode_new(struct fs *f, const char *name, const struct fs_inode *a);
struct fnode *fnode_get(struct fs *f, uint64_t ino);
void fnode_free(struct fs *f, struct fnode *n);
/* Frees what n owns and n, without touching the table or other nodes
 * (fnode_free's last step; fs_close frees the whole table with it). */
void fnode_release(struct fs *f, struct fnode *n);
/* Drops a node the kernel no longer references and nobody opened, if it
 * is detached (unlinked). */
void fnode_maybe_free(struct fs *f, struct fnode *n);
/* Loads a directory's entries (mu held; drops and retakes it around the
 * fetch). 0 or -errno. */
int dir_load(struct fs *f, struct fnode *d);
struct fnode *dir_find(struct fnode *d, const char *name, size_t *pos);
int dir_insert(struct fnode *d, struct fnode *k);
void dir_unlink(struct fnode *d, struct fnode *k);
/* Marks n changed (and its ancestors' sub_dirty) and bumps change_seq. */
void fnode_touch(struct fs *f, struct fnode *n);
/* A change of n's own attributes (mu held): ctime now, fnode_touch, and
 * n's record in the journal. */
void fnode_changed(struct fs *f, struct fnode *n);
/* The path of n from the root ("" for the root); malloc'd; NULL if n is
 * detached (unlinked, or below a directory that is) or in a snapshot. */
char *fnode_path(struct fnode *n);
/* The attributes of n as the kernel should see them. */
void fnode_stat(const struct fs *f, const struct fnode *n, struct stat *st);
/* Resolves a path from the root (journal replay). mu held. */
struct fnode *path_walk(struct fs *f, const char *path, struct fnode **parent,
                        const char **base);

/* ---- names (namespace.c), mu held ---- */
/* Makes entry name in directory p: a file (empty, recorded durably by its
 * first flush), a directory, or a symlink to target. 0 and *out, or
 * -EROFS, -ENOTDIR, -EINVAL, -ENAMETOOLONG, -EEXIST, -ENOENT, -ENOMEM. */
int fs_make(struct fs *f, struct fnode *p, const char *name, uint8_t type, uint32_t mode,
            uint32_t uid, uint32_t gid, const char *target, struct fnode **out);
/* Removes name from p (a directory only when dir, and only when empty). */
int fs_remove(struct fs *f, struct fnode *p, const char *name, bool dir);
/* Moves p/name to np/newname, over what is there (never with noreplace:
 * -EEXIST), atomically as seen by every other operation. */
int fs_rename(struct fs *f, struct fnode *p, const char *name, struct fnode *np,
              const char *newname, bool noreplace);

/* ---- file content (file.c) ---- */
int file_load_chunks(struct fs *f, struct fnode *n); /* mu held; drops it around I/O */
ssize_t file_read(struct fs *f, struct fnode *n, char *buf, size_t size, off_t off);
ssize_t file_write(struct fs *f, struct fnode *n, const char *buf, size_t size, off_t off);
int file_truncate(struct fs *f, struct fnode *n, uint64_t size); /* mu held */
/* Stores what was written and records it in the journal. */
int file_flush(struct fs *f, struct fnode *n);
/* file_flush called with mu held, for a file no handle holds open (a
 * truncate(2)): n counts as open while mu is released around the flush. */
int file_flush_held(struct fs *f, struct fnode *n);
void file_drop_spool(struct fs *f, struct fnode *n);
/* A file handle of n is closed (FUSE release; mu held): one open fewer,
 * and the spool goes once nothing open, in flight or unflushed needs it
 * (every chunk is stored). n may be freed (fnode_maybe_free). */
void file_release(struct fs *f, struct fnode *n);
int fs_workers_start(struct fs *f);
void fs_workers_stop(struct fs *f);

/* ---- journal (journal.c) ----
 * Records, in the order of the changes: SET path inode (an entry as the
 * directory stream encodes it), DEL path, RENAME from to. Replayed over the
 * published tree at open; emptied once a root holds them all. */
enum { J_SET = 1, J_DEL = 2, J_RENAME = 3 };
int journal_open(struct fs *f);
void journal_close(struct fs *f);
/* Appends a record (mu held); sync: fdatasync before returning. */
int journal_set(struct fs *f, struct fnode *n, bool sync);
int journal_del(struct fs *f, const char *path);
int journal_rename(struct fs *f, const char *from, const char *to);
int journal_sync(struct fs *f);
/* Replays the journal over the loaded tree (at open). */
int journal_replay(struct fs *f);
/* Everything in the journal up to offset end is published. */
void journal_published(struct fs *f, off_t end);
off_t journal_end(struct fs *f);

/* ---- publishing (publish.c) ---- */
int publish_start(struct fs *f);
void publish_stop(struct fs *f);
void publish_kick(struct fs *f);
/* Reads the current root: 0 and *commit and *version, -ENOENT (none), or
 * an error. */
int root_read(struct fs *f, struct id *commit, uint64_t *version);
/* Fetches and decodes a commit block. */
int commit_load(struct fs *f, const struct id *key, struct fs_commit *out);
/* Makes the tree in memory that of commit (NULL: an empty tree) at
 * version, with head and head_root to match (at open). */
int fs_load_tree_at(struct fs *f, const struct id *commit, uint64_t version);
/* Fetches the current root into the tree at open. */
int publish_load_head(struct fs *f);
/* Builds the tree of snapshot version v (a fresh read-only subtree). */
struct fnode *snap_lookup(struct fs *f, const char *name);
int snap_list(struct fs *f, uint64_t **versions, size_t *n);

/* ---- lease renewal (renew.c) ---- */
int renew_start(struct fs *f);
void renew_stop(struct fs *f);
/* Renews the lease of every block of the published head now. */
int fs_renew_now(struct fs *f);

/* ---- inode records ---- */
/* The inode to store for n (content reference of its last flush). */
int fnode_record(struct fs *f, struct fnode *n, struct fs_inode *out);

#endif
