/* fs_drive.h — drives the fs core (fs/fs.h, fs/fs_int.h) without FUSE,
 * for test_fs.c: mounts over mem_bclient.h in a temporary directory, and
 * one helper per FUSE operation doing what fs/fuse_ops.c does for it
 * (create = make + op_create under f->mu, write = file_write, close =
 * op_flush + op_release, truncate = op_setattr's size path, unlink =
 * remove_entry, rename = op_rename). Every helper asserts (cmocka) on what
 * must not fail; the ones returning int give the operation's error.
 */
#ifndef COOPFS_TESTS_FS_DRIVE_H
#define COOPFS_TESTS_FS_DRIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/fs_int.h"
#include "mem_bclient.h"

#define GUARD_S 60u     /* a test that takes longer hangs: the process ends */
#define SYNC_MS 20000u  /* fs_sync of a healthy store */
#define MiB     (1024ull * 1024ull)
#define GiB     (1024ull * MiB)

/* A temporary directory, a store (the ring), one key. */
struct world {
    char dir[64];
    struct mem_store *st;
    struct sig_key key;
    unsigned nmounts;
    struct logger log; /* stderr when COOPFS_TEST_LOG is set */
};

struct mount {
    struct mem_bclient *mc;
    struct fs *f;
    char dir[128];
};

struct mopts {
    bool ro;             /* no private key: follows the root */
    const char *tag;     /* conflict names (default "T") */
    uint32_t publish_ms; /* default 100 */
    unsigned min_copies; /* default 2 */
    const char *dir;     /* reuse this data dir (NULL: a fresh one) */
};

/* cmocka setup/teardown: *state is a struct world; setup arms a SIGALRM
 * guard of GUARD_S seconds that ends the process. */
int world_setup(void **state);
int world_teardown(void **state);

/* fs_open over a new mem_bclient of w->st. Returns fs_open's result. */
int mount_try(struct world *w, struct mount *m, const struct mopts *o);
void mount_open(struct world *w, struct mount *m, const struct mopts *o);
void mount_close(struct mount *m); /* fs_close, then the client */

/* ---- FUSE operations ---- */
/* make() of fuse_ops.c (mu held). */
int make(struct fs *f, struct fnode *p, const char *name, uint8_t type, struct fnode **out);
/* op_create (FS_T_FILE: the node comes back open) or op_mkdir of path. */
int do_make(struct fs *f, const char *path, uint8_t type, struct fnode **out);
struct fnode *xcreate(struct fs *f, const char *path);
/* op_lookup + op_open; NULL if there is no such file. */
struct fnode *xopen(struct fs *f, const char *path);
void xrelease(struct fs *f, struct fnode *n);          /* op_release */
int xclose(struct fs *f, struct fnode *n);             /* op_flush + op_release */
void xwrite(struct fs *f, struct fnode *n, const void *buf, size_t len, uint64_t off);
/* op_setattr with a size: open = ftruncate (fi set), else truncate(2). */
int xtruncate(struct fs *f, struct fnode *n, uint64_t size, bool open);
int xunlink(struct fs *f, const char *path);           /* remove_entry of a file */
/* op_rename of a file within the root, onto a name that does not exist. */
int xrename(struct fs *f, const char *from, const char *to);
uint64_t xsize(struct fs *f, struct fnode *n);         /* st_size of op_getattr */

/* ---- data ---- */
uint8_t pat(uint64_t off, unsigned seed);           /* the byte at off */
uint8_t *pattern(uint64_t off, size_t len, unsigned seed); /* malloc'd */
/* Writes the pattern into the file and into shadow (may be NULL). */
void wpat(struct fs *f, struct fnode *n, uint8_t *shadow, uint64_t off, size_t len,
          unsigned seed);
void check_range(struct fs *f, struct fnode *n, uint64_t off, size_t len, const uint8_t *want);
void check_zeros(struct fs *f, struct fnode *n, uint64_t off, size_t len);
/* The whole file at path equals want[0..len), size included. */
void check_file(struct fs *f, const char *path, const uint8_t *want, size_t len);
void check_text(struct fs *f, const char *path, const char *text);
void put_text(struct fs *f, const char *path, const char *text); /* create, write, close */
bool exists(struct fs *f, const char *path);
/* The names in the root directory, each followed by '\n'; malloc'd. */
char *root_names(struct fs *f);

uint64_t elapsed_ms(uint64_t t0);
void nap_ms(unsigned ms);
/* Polls fs_version(f) until it reaches v, up to limit_ms. */
bool wait_version(struct fs *f, uint64_t v, unsigned limit_ms);

#endif
