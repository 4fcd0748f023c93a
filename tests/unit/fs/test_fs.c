/* test_fs.c — the fs core (fs/fs.h, fs/fs_int.h) over the in-memory block
 * client of mem_bclient.h, driven as fs/fuse_ops.c drives it but without
 * FUSE (fs_drive.h; fsync = file_flush + fs_sync).
 *
 * Cases: reads and writes at offsets and across chunks, sparse files,
 * truncate, inline and large files, publishing, close and reopen, crash
 * recovery from the journal, the ring gone, too few copies, two writers
 * of one key, a read-only follower, and .snapshots.
 *
 * Every wait is bounded: fs_sync gets a timeout, polls have a limit, and
 * an alarm per test ends the process if anything hangs anyway.
 * COOPFS_TEST_LOG=1 in the environment prints fs/'s log on stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_drive.h"

/* ---- cases ---- */

static void test_rw_offsets(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ 0 });
    struct fs *f = m.f;
    size_t cap = 6 * FS_CHUNK;
    uint8_t *shadow = calloc(1, cap);
    assert_non_null(shadow);
    struct fnode *n = xcreate(f, "f");
    wpat(f, n, shadow, 0, 1000, 1);
    wpat(f, n, shadow, FS_CHUNK - 100, 200, 2);              /* across the first boundary */
    wpat(f, n, shadow, 3 * FS_CHUNK - 5, 2 * FS_CHUNK + 10, 3); /* spans three chunks */
    wpat(f, n, shadow, 10, 10, 4);                           /* overwrite */
    uint64_t size = 5 * FS_CHUNK + 5;
    assert_int_equal(xsize(f, n), size);
    check_range(f, n, 0, size, shadow);
    check_range(f, n, FS_CHUNK - 7, 14, shadow + FS_CHUNK - 7);
    check_range(f, n, 2 * FS_CHUNK + 3, FS_CHUNK, shadow + 2 * FS_CHUNK + 3);
    char c[64];
    assert_int_equal(file_read(f, n, c, sizeof(c), (off_t)size + 10), 0);
    assert_int_equal(file_read(f, n, c, sizeof(c), (off_t)size - 5), 5); /* short at EOF */
    assert_memory_equal(c, shadow + size - 5, 5);
    assert_int_equal(xclose(f, n), 0);
    n = xopen(f, "f");
    check_range(f, n, 0, size, shadow); /* now from stored chunks */
    /* A partial write into a stored chunk brings it back into the spool. */
    wpat(f, n, shadow, FS_CHUNK + 17, 33, 5);
    assert_int_equal(xclose(f, n), 0);
    check_file(f, "f", shadow, size);
    assert_int_equal(fs_sync(f, SYNC_MS), 0);

    /* Another machine reads it all from the ring. */
    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    check_file(r.f, "f", shadow, size);
    mount_close(&r);
    mount_close(&m);
    free(shadow);
}

static void test_sparse(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ 0 });
    struct fs *f = m.f;
    uint64_t at = 3 * GiB;
    uint8_t *data = pattern(at, 4096, 7);
    struct fnode *n = xcreate(f, "sparse");
    xwrite(f, n, data, 4096, at);
    assert_int_equal(xsize(f, n), at + 4096);
    check_zeros(f, n, 1 * GiB, 100000);
    check_zeros(f, n, 0, 4096);
    assert_int_equal(xclose(f, n), 0);
    struct stat st;
    pthread_mutex_lock(&f->mu);
    fnode_stat(f, n, &st);
    pthread_mutex_unlock(&f->mu);
    assert_true((uint64_t)st.st_blocks * 512 <= 2 * FS_CHUNK); /* holes take no space */
    assert_int_equal(fs_sync(f, SYNC_MS), 0);

    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    n = xopen(r.f, "sparse");
    assert_non_null(n);
    assert_int_equal(xsize(r.f, n), at + 4096);
    check_zeros(r.f, n, 2 * GiB + 12345, 3 * FS_CHUNK);
    uint8_t *want = calloc(1, 4096 + 20);
    assert_non_null(want);
    memcpy(want + 20, data, 4096);
    check_range(r.f, n, at - 20, 4096 + 20, want); /* hole, then data */
    xrelease(r.f, n);
    mount_close(&r);
    mount_close(&m);
    free(want);
    free(data);
}

static void test_truncate(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ 0 });
    struct fs *f = m.f;
    size_t cap = 4 * FS_CHUNK;
    uint8_t *shadow = calloc(1, cap);
    assert_non_null(shadow);

    /* Down to 100 bytes of a stored file, then up again: zeros after 100. */
    struct fnode *n = xcreate(f, "t1");
    wpat(f, n, shadow, 0, 600000, 11);
    assert_int_equal(xclose(f, n), 0);
    n = xopen(f, "t1");
    assert_int_equal(xtruncate(f, n, 100, true), 0);
    assert_int_equal(xsize(f, n), 100);
    check_range(f, n, 0, 100, shadow);
    assert_int_equal(xtruncate(f, n, 700000, true), 0);
    memset(shadow + 100, 0, 700000 - 100);
    check_range(f, n, 0, 700000, shadow);
    assert_int_equal(xclose(f, n), 0);
    check_file(f, "t1", shadow, 700000);

    /* Down into the middle of a chunk, then a write past the end. */
    memset(shadow, 0, cap);
    n = xcreate(f, "t2");
    wpat(f, n, shadow, 0, 3 * FS_CHUNK, 12);
    assert_int_equal(file_flush(f, n), 0); /* no store running: see test_truncate_regrow_race */
    assert_int_equal(xtruncate(f, n, FS_CHUNK + 77, true), 0);
    memset(shadow + FS_CHUNK + 77, 0, 2 * FS_CHUNK - 77);
    wpat(f, n, shadow, 2 * FS_CHUNK + 5, 10, 13);
    check_range(f, n, 0, 2 * FS_CHUNK + 15, shadow);
    assert_int_equal(xclose(f, n), 0);

    /* truncate(2) of a closed file flushes it by itself. */
    uint8_t *s3 = pattern(0, 300000, 14);
    n = xcreate(f, "t3");
    xwrite(f, n, s3, 300000, 0);
    assert_int_equal(xclose(f, n), 0);
    assert_int_equal(xtruncate(f, n, 5000, false), 0);
    assert_false(n->content_dirty);
    assert_int_equal(fs_sync(f, SYNC_MS), 0);

    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    check_file(r.f, "t2", shadow, 2 * FS_CHUNK + 15);
    check_file(r.f, "t3", s3, 5000);
    mount_close(&r);
    mount_close(&m);
    free(s3);
    free(shadow);
}

struct flusher {
    struct fs *f;
    struct fnode *n;
    int rc;
};

static void *flush_thread(void *arg)
{
    struct flusher *fl = arg;
    fl->rc = file_flush(fl->f, fl->n);
    return NULL;
}

static bool wait_queued(struct mem_store *st, unsigned n, unsigned limit_ms)
{
    uint64_t t0 = fs_now_ms();
    while (mem_store_queued(st) < n) {
        if (elapsed_ms(t0) > limit_ms)
            return false;
        nap_ms(2);
    }
    return true;
}

/* Regression test (fs/file.c, fixed in 711fa7c by generations that are
 * never reused). Before the fix: a truncate dropped a chunk whose write-behind store is running
 * (file_truncate: n->nch = keep, the job left alone); a later write past
 * the end grew the table again and chunks_reserve zeroed the new entries,
 * gen included, so the chunk's gen started over and equalled the gen of
 * the stale job. When flush stored the chunk anew, the stale store
 * finished first and job_done took its key (state BUSY, same gen): the
 * file got the old, truncated-away bytes back and lost the new write.
 * The fake holds every store until both are queued, so the order is
 * certain (test_truncate hit it by chance before flushing first). */
static void test_truncate_regrow_race(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ .publish_ms = 60000 });
    struct fs *f = m.f;
    size_t size = 2 * FS_CHUNK + 15;
    uint8_t *shadow = calloc(1, 3 * FS_CHUNK);
    assert_non_null(shadow);
    struct fnode *n = xcreate(f, "race");
    mem_store_set_hold(w->st, true);
    wpat(f, n, shadow, 0, 3 * FS_CHUNK, 81); /* write-behind: three stores, held */
    assert_true(wait_queued(w->st, 3, 10000));
    assert_int_equal(xtruncate(f, n, FS_CHUNK + 77, true), 0);
    memset(shadow + FS_CHUNK + 77, 0, 2 * FS_CHUNK - 77);
    wpat(f, n, shadow, 2 * FS_CHUNK + 5, 10, 82); /* the table grows again */
    check_range(f, n, 0, size, shadow);           /* the spool is right */
    struct flusher fl = { f, n, -1 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flush_thread, &fl), 0);
    bool queued = wait_queued(w->st, 5, 10000); /* flush stores chunks 1 and 2 anew */
    mem_store_set_hold(w->st, false);
    pthread_join(t, NULL);
    assert_true(queued);
    assert_int_equal(fl.rc, 0);
    bool same = true;
    uint8_t *b = malloc(size);
    assert_non_null(b);
    assert_int_equal(file_read(f, n, (char *)b, size, 0), (ssize_t)size);
    same = memcmp(b, shadow, size) == 0;
    free(b);
    xrelease(f, n);
    mount_close(&m);
    free(shadow);
    if (!same)
        fail_msg("fs/file.c: after truncate + regrow, the flushed file holds the chunk "
                 "a stale write-behind store made before the truncate");
}

static void test_inline_vs_large(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ 0 });
    struct fs *f = m.f;
    struct mem_store_stats s0, s1;

    struct fnode *e = xcreate(f, "empty");
    assert_int_equal(xclose(f, e), 0);
    assert_int_equal(e->a.ref, FS_REF_EMPTY);

    mem_store_get_stats(w->st, &s0);
    uint8_t *small = pattern(0, 100, 21);
    struct fnode *s = xcreate(f, "small");
    xwrite(f, s, small, 100, 0);
    assert_int_equal(xclose(f, s), 0);
    assert_int_equal(s->a.ref, FS_REF_INLINE);
    assert_int_equal(s->a.size, 100);
    mem_store_get_stats(w->st, &s1);
    assert_int_equal(s1.puts, s0.puts); /* inline: no block */

    uint8_t *big = pattern(0, 300000, 22);
    struct fnode *l = xcreate(f, "large");
    xwrite(f, l, big, 300000, 0);
    assert_int_equal(xclose(f, l), 0);
    assert_int_equal(l->a.ref, FS_REF_KEY);
    assert_true(mem_store_has(w->st, STORE_CONTENT, &l->a.key));
    mem_store_get_stats(w->st, &s0);
    assert_true(s0.blocks >= s1.blocks + 3); /* two chunks and the manifest */

    /* Inline grows to large; large shrinks to inline. */
    s = xopen(f, "small");
    uint8_t *grown = pattern(0, 5000, 23);
    memcpy(grown, small, 100);
    xwrite(f, s, grown + 100, 4900, 100);
    assert_int_equal(xclose(f, s), 0);
    assert_int_equal(s->a.ref, FS_REF_KEY);
    l = xopen(f, "large");
    assert_int_equal(xtruncate(f, l, 10, true), 0);
    assert_int_equal(xclose(f, l), 0);
    assert_int_equal(l->a.ref, FS_REF_INLINE);
    check_file(f, "small", grown, 5000);
    check_file(f, "large", big, 10);
    assert_int_equal(fs_sync(f, SYNC_MS), 0);

    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    check_file(r.f, "empty", NULL, 0);
    check_file(r.f, "small", grown, 5000);
    check_file(r.f, "large", big, 10);
    mount_close(&r);
    mount_close(&m);
    free(small);
    free(big);
    free(grown);
}

static void test_publish(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ .publish_ms = 60000 });
    struct fs *f = m.f;
    struct id rk;
    root_key(&w->key.pub, &rk);
    assert_int_equal(fs_version(f), 0);
    put_text(f, "one", "1");
    assert_int_equal(fs_sync(f, SYNC_MS), 0); /* fsync: flush done, then wait */
    uint64_t v1 = fs_version(f);
    assert_true(v1 >= 1);
    assert_int_equal(mem_store_root_version(w->st, &rk), v1);
    struct fnode *n = xcreate(f, "two");
    xwrite(f, n, "22", 2, 0);
    assert_int_equal(file_flush(f, n), 0); /* fsync(2) */
    assert_int_equal(fs_sync(f, SYNC_MS), 0);
    xrelease(f, n);
    assert_true(fs_version(f) > v1);
    assert_int_equal(mem_store_root_version(w->st, &rk), fs_version(f));
    assert_int_equal(fs_sync(f, SYNC_MS), 0); /* nothing new: at once */
    mount_close(&m);
}

/* Regression test (fs/mount.c, fixed in 711fa7c): fs_open took flock()
 * on DATA/fs/lock with a descriptor fs_close never closed, so a second
 * fs_open of one data dir in a process failed with -EBUSY. */
static void test_reopen_same_dir(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ 0 });
    char dir[128];
    snprintf(dir, sizeof(dir), "%s", m.dir);
    uint8_t *big = pattern(0, 400000, 31);
    struct fnode *n = xcreate(m.f, "big");
    xwrite(m.f, n, big, 400000, 0);
    assert_int_equal(xclose(m.f, n), 0);
    put_text(m.f, "small", "hello");
    assert_int_equal(fs_sync(m.f, SYNC_MS), 0);
    uint64_t v = fs_version(m.f);
    mount_close(&m);

    int rc = mount_try(w, &m, &(struct mopts){ .dir = dir });
    if (rc != 0) {
        free(big);
        fail_msg("fs/mount.c: fs_open of %s after fs_close returned %d (%s): the flock of "
                 "DATA/fs/lock outlives fs_close", dir, rc, strerror(-rc));
    }
    assert_int_equal(fs_version(m.f), v);
    check_file(m.f, "big", big, 400000);
    check_text(m.f, "small", "hello");
    mount_close(&m);
    free(big);
}


static void test_crash_recovery(void **state)
{
    struct world *w = *state;
    struct mount m;
    /* The publisher would wait a minute: nothing is published on its own. */
    mount_open(w, &m, &(struct mopts){ .publish_ms = 60000 });
    struct fs *f = m.f;
    uint8_t *big = pattern(0, 600000, 41);
    struct fnode *n = xcreate(f, "big");
    xwrite(f, n, big, 600000, 0);
    assert_int_equal(xclose(f, n), 0); /* journaled */
    put_text(f, "small", "survives the crash");
    struct fnode *d = NULL;
    assert_int_equal(do_make(f, "d", FS_T_DIR, &d), 0);
    put_text(f, "d/inner", "nested");
    assert_int_equal(fs_version(f), 0);
    /* The ring goes away: the last publish in fs_close fails. */
    mem_store_set_fail(w->st, -ETIMEDOUT);
    uint64_t t0 = fs_now_ms();
    mount_close(&m);
    assert_true(elapsed_ms(t0) < 30000);
    struct id rk;
    root_key(&w->key.pub, &rk);
    assert_int_equal(mem_store_root_version(w->st, &rk), 0);
    mem_store_set_fail(w->st, 0);

    char dir[128]; /* the machine restarts: the same data dir */
    snprintf(dir, sizeof(dir), "%s", m.dir);
    mount_open(w, &m, &(struct mopts){ .dir = dir });
    check_text(m.f, "small", "survives the crash"); /* replayed before any publish */
    assert_int_equal(fs_sync(m.f, SYNC_MS), 0);
    assert_true(fs_version(m.f) >= 1);
    mount_close(&m);

    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    check_file(r.f, "big", big, 600000);
    check_text(r.f, "small", "survives the crash");
    check_text(r.f, "d/inner", "nested");
    mount_close(&r);
    free(big);
}

/* Unlink, rename and overwrite after a published version, then a crash
 * before the next publish; the journal's tail is torn. */
static void test_recover_changes(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ .publish_ms = 60000 });
    struct fs *f = m.f;
    put_text(f, "keep", "k1");
    put_text(f, "gone", "g");
    put_text(f, "old", "renamed");
    assert_int_equal(fs_sync(f, SYNC_MS), 0);
    assert_int_equal(fs_version(f), 1);
    struct fnode *n = xopen(f, "keep");
    assert_int_equal(xtruncate(f, n, 0, true), 0);
    xwrite(f, n, "k2!", 3, 0);
    assert_int_equal(xclose(f, n), 0);
    assert_int_equal(xunlink(f, "gone"), 0);
    assert_int_equal(xrename(f, "old", "new"), 0);
    put_text(f, "later", "L"); /* its flush makes the journal durable */
    mem_store_set_fail(w->st, -ETIMEDOUT);
    mount_close(&m);
    mem_store_set_fail(w->st, 0);

    char dir[128], jp[256];
    snprintf(dir, sizeof(dir), "%s", m.dir);
    snprintf(jp, sizeof(jp), "%s/fs/journal", dir);
    FILE *j = fopen(jp, "ab");
    assert_non_null(j);
    static const uint8_t torn[] = { 0, 0, 0, 100, 1, 2, 3, 4, 1, 0, 5 };
    assert_int_equal(fwrite(torn, 1, sizeof(torn), j), sizeof(torn));
    fclose(j);

    mount_open(w, &m, &(struct mopts){ .dir = dir });
    assert_int_equal(fs_version(m.f), 1);
    check_text(m.f, "keep", "k2!");
    assert_false(exists(m.f, "gone"));
    assert_false(exists(m.f, "old"));
    check_text(m.f, "new", "renamed");
    check_text(m.f, "later", "L");
    assert_int_equal(fs_sync(m.f, SYNC_MS), 0);
    assert_int_equal(fs_version(m.f), 2);
    mount_close(&m);

    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    char *names = root_names(r.f);
    assert_string_equal(names, "keep\nlater\nnew\n");
    free(names);
    check_text(r.f, "keep", "k2!");
    check_text(r.f, "new", "renamed");
    mount_close(&r);
}

/* Writes over chunks whose write-behind stores are still running (the
 * fake completes them late and out of order): what is stored is what was
 * written last. */
static void test_rewrite_under_delay(void **state)
{
    struct world *w = *state;
    mem_store_set_delay(w->st, 5, 7);
    struct mount m;
    mount_open(w, &m, &(struct mopts){ 0 });
    struct fs *f = m.f;
    size_t cap = 4 * FS_CHUNK;
    uint8_t *shadow = calloc(1, cap);
    assert_non_null(shadow);
    struct fnode *n = xcreate(f, "r");
    for (unsigned round = 0; round < 3; round++) {
        wpat(f, n, shadow, 0, cap, 100 + round);
        wpat(f, n, shadow, FS_CHUNK, FS_CHUNK, 200 + round);
        wpat(f, n, shadow, 2 * FS_CHUNK + 100, 50, 300 + round);
        wpat(f, n, shadow, 3 * FS_CHUNK, FS_CHUNK, 400 + round);
        assert_int_equal(xtruncate(f, n, 3 * FS_CHUNK + 10 + round, true), 0);
        memset(shadow + 3 * FS_CHUNK + 10 + round, 0, FS_CHUNK - 10 - round);
        check_range(f, n, 0, 3 * FS_CHUNK + 10 + round, shadow);
        assert_int_equal(file_flush(f, n), 0);
    }
    size_t size = 3 * FS_CHUNK + 12;
    assert_int_equal(xclose(f, n), 0);
    check_file(f, "r", shadow, size);
    assert_int_equal(fs_sync(f, SYNC_MS), 0);
    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    check_file(r.f, "r", shadow, size);
    mount_close(&r);
    mount_close(&m);
    free(shadow);
}

static void test_ring_gone(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ 0 });
    struct fs *f = m.f;
    uint8_t *big = pattern(0, MiB, 51);
    struct fnode *n = xcreate(f, "big");
    mem_store_set_fail(w->st, -ETIMEDOUT);
    xwrite(f, n, big, MiB, 0);                /* write-behind puts fail */
    check_range(f, n, 0, MiB, big);           /* the spool still has it */
    assert_int_equal(file_flush(f, n), -EIO);
    uint64_t t0 = fs_now_ms();
    assert_true(fs_sync(f, 3000) < 0);
    assert_true(elapsed_ms(t0) < 10000);
    /* The ring is back: the next close stores it. */
    mem_store_set_fail(w->st, 0);
    assert_int_equal(xclose(f, n), 0);
    assert_int_equal(fs_sync(f, SYNC_MS), 0);
    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    check_file(r.f, "big", big, MiB);
    mount_close(&r);
    mount_close(&m);
    free(big);
}

static void test_min_copies(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ .min_copies = 2 });
    struct fs *f = m.f;
    mem_store_set_copies(w->st, 1);
    uint8_t *big = pattern(0, 600000, 61);
    struct fnode *n = xcreate(f, "big");
    xwrite(f, n, big, 600000, 0);
    assert_int_equal(file_flush(f, n), -EIO);
    put_text(f, "small", "inline needs no chunk"); /* only the journal */
    assert_true(fs_sync(f, 2000) < 0);            /* the commit has one copy */
    assert_int_equal(fs_version(f), 0);
    mem_store_set_copies(w->st, 3);
    assert_int_equal(xclose(f, n), 0);
    assert_int_equal(fs_sync(f, SYNC_MS), 0);
    assert_true(fs_version(f) >= 1);
    check_file(f, "big", big, 600000);
    mount_close(&m);
    free(big);
}

struct syncer {
    struct fs *f;
    int rc;
};

static void *sync_thread(void *arg)
{
    struct syncer *s = arg;
    s->rc = fs_sync(s->f, SYNC_MS);
    return NULL;
}

static void test_two_writers(void **state)
{
    struct world *w = *state;
    mem_store_set_delay(w->st, 3, 42); /* operations finish out of order */
    struct mount a, b;
    mount_open(w, &a, &(struct mopts){ .tag = "A", .publish_ms = 60000 });
    mount_open(w, &b, &(struct mopts){ .tag = "B", .publish_ms = 60000 });
    uint8_t *big = pattern(0, 300000, 71);
    put_text(a.f, "a1", "from A, one");
    put_text(b.f, "b1", "from B, one");
    struct fnode *n = xcreate(a.f, "a2");
    xwrite(a.f, n, big, 300000, 0);
    assert_int_equal(xclose(a.f, n), 0);
    put_text(b.f, "b2", "from B, two");
    put_text(a.f, "same.txt", "A wrote this");
    put_text(b.f, "same.txt", "B wrote that");

    struct syncer sa = { a.f, -1 }, sb = { b.f, -1 };
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, sync_thread, &sa), 0);
    assert_int_equal(pthread_create(&tb, NULL, sync_thread, &sb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(sa.rc, 0);
    assert_int_equal(sb.rc, 0);
    /* The one that lost the compare-and-swap merged, and shows the merge. */
    pthread_mutex_lock(&a.f->mu);
    unsigned ca = a.f->conflicts;
    pthread_mutex_unlock(&a.f->mu);
    pthread_mutex_lock(&b.f->mu);
    unsigned cb = b.f->conflicts;
    pthread_mutex_unlock(&b.f->mu);
    assert_int_equal(ca + cb, 1);
    struct fs *merged = ca ? a.f : b.f;
    for (const char *want = "a1\0a2\0b1\0b2\0same.txt\0"; *want; want += strlen(want) + 1)
        if (!exists(merged, want))
            fail_msg("%s: the merging mount does not show %s", ca ? "A" : "B", want);
    check_text(merged, "b1", "from B, one");
    check_text(merged, "a1", "from A, one");
    mount_close(&a);
    mount_close(&b);
    mem_store_set_delay(w->st, 0, 1);

    struct mount r;
    mount_open(w, &r, &(struct mopts){ .ro = true });
    char *names = root_names(r.f);
    unsigned conflicts = 0;
    char cname[300] = "";
    for (char *p = names, *e; (e = strchr(p, '\n')); p = e + 1) {
        *e = '\0';
        if (strncmp(p, "same.txt.conflict-", 18) == 0) {
            conflicts++;
            snprintf(cname, sizeof(cname), "%s", p);
        }
        *e = '\n';
    }
    if (conflicts != 1)
        fail_msg("want exactly one same.txt.conflict-*, root holds:\n%s", names);
    for (const char *want = "a1\0a2\0b1\0b2\0same.txt\0"; *want; want += strlen(want) + 1) {
        char line[32];
        snprintf(line, sizeof(line), "%s\n", want);
        if (!strstr(names, line))
            fail_msg("%s is missing; root holds:\n%s", want, names);
    }
    check_text(r.f, "a1", "from A, one");
    check_file(r.f, "a2", big, 300000);
    check_text(r.f, "b1", "from B, one");
    check_text(r.f, "b2", "from B, two");
    /* One keeps the name, the other the conflict name: both survive. */
    struct fnode *x = xopen(r.f, "same.txt"), *y = xopen(r.f, cname);
    assert_non_null(x);
    assert_non_null(y);
    char bx[32] = "", by[32] = "";
    assert_int_equal(file_read(r.f, x, bx, 12, 0), 12);
    assert_int_equal(file_read(r.f, y, by, 12, 0), 12);
    assert_true((!strcmp(bx, "A wrote this") && !strcmp(by, "B wrote that")) ||
                (!strcmp(bx, "B wrote that") && !strcmp(by, "A wrote this")));
    xrelease(r.f, x);
    xrelease(r.f, y);
    free(names);
    mount_close(&r);
    free(big);
}



static size_t kids_of(struct fs *f, const char *path)
{
    pthread_mutex_lock(&f->mu);
    struct fnode *d = path_walk(f, path, NULL, NULL);
    assert_non_null(d);
    assert_int_equal(dir_load(f, d), 0);
    size_t n = d->nkids;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* A directory whose stream is stored as blocks (> FS_INLINE_MAX), then
 * changed by two writers at once (a merge of stored streams) while a
 * follower watches. */
static void test_large_dir(void **state)
{
    struct world *w = *state;
    struct mount a, b, r;
    mount_open(w, &a, &(struct mopts){ .tag = "A", .publish_ms = 60000 });
    struct fnode *d = NULL;
    assert_int_equal(do_make(a.f, "big", FS_T_DIR, &d), 0);
    enum { N = 120 };
    for (unsigned i = 0; i < N; i++) {
        char name[96];
        snprintf(name, sizeof(name), "big/sub-%03u-with-a-long-name-to-grow-the-stream", i);
        assert_int_equal(do_make(a.f, name, FS_T_DIR, &d), 0);
    }
    put_text(a.f, "big/file", "in a big directory");
    assert_int_equal(fs_sync(a.f, SYNC_MS), 0);
    pthread_mutex_lock(&a.f->mu);
    d = path_walk(a.f, "big", NULL, NULL);
    assert_non_null(d);
    assert_int_equal(d->a.ref, FS_REF_KEY);
    pthread_mutex_unlock(&a.f->mu);

    mount_open(w, &r, &(struct mopts){ .ro = true });
    assert_int_equal(kids_of(r.f, "big"), N + 1);
    check_text(r.f, "big/file", "in a big directory");
    mount_open(w, &b, &(struct mopts){ .tag = "B", .publish_ms = 60000 });
    put_text(a.f, "big/from-a", "A");
    put_text(b.f, "big/from-b", "B");
    assert_int_equal(xunlink(b.f, "big/file"), 0);
    struct syncer sa = { a.f, -1 }, sb = { b.f, -1 };
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, sync_thread, &sa), 0);
    assert_int_equal(pthread_create(&tb, NULL, sync_thread, &sb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(sa.rc, 0);
    assert_int_equal(sb.rc, 0);
    uint64_t v = fs_version(a.f) > fs_version(b.f) ? fs_version(a.f) : fs_version(b.f);
    assert_int_equal(v, 3);
    if (!wait_version(r.f, v, 10000))
        fail_msg("the follower stayed at v%llu", (unsigned long long)fs_version(r.f));
    check_text(r.f, "big/from-a", "A");
    check_text(r.f, "big/from-b", "B");
    assert_false(exists(r.f, "big/file"));
    assert_int_equal(kids_of(r.f, "big"), N + 2);
    mount_close(&a);
    mount_close(&b);
    mount_close(&r);
}

/* The ring is gone when a mount starts: fs_open fails, in bounded time. */
static void test_open_ring_gone(void **state)
{
    struct world *w = *state;
    struct mount m;
    mem_store_set_fail(w->st, -ETIMEDOUT);
    uint64_t t0 = fs_now_ms();
    assert_true(mount_try(w, &m, &(struct mopts){ 0 }) < 0);
    assert_true(elapsed_ms(t0) < 10000);
    mem_store_set_fail(w->st, 0);
}

static void test_follow(void **state)
{
    struct world *w = *state;
    struct mount wr, ro;
    mount_open(w, &wr, &(struct mopts){ 0 });
    put_text(wr.f, "x", "first");
    assert_int_equal(fs_sync(wr.f, SYNC_MS), 0);
    mount_open(w, &ro, &(struct mopts){ .ro = true });
    assert_int_equal(fs_version(ro.f), fs_version(wr.f));
    check_text(ro.f, "x", "first");
    struct fnode *k = NULL;
    assert_int_equal(do_make(ro.f, "nope", FS_T_FILE, &k), -EROFS);
    assert_int_equal(fs_sync(ro.f, 1000), 0); /* nothing to publish */

    struct fnode *n = xopen(wr.f, "x");
    assert_int_equal(xtruncate(wr.f, n, 0, true), 0);
    xwrite(wr.f, n, "second", 6, 0);
    assert_int_equal(xclose(wr.f, n), 0);
    put_text(wr.f, "y", "new file");
    assert_int_equal(fs_sync(wr.f, SYNC_MS), 0);
    uint64_t v = fs_version(wr.f);
    if (!wait_version(ro.f, v, 10000))
        fail_msg("the follower stayed at v%llu, the writer published v%llu",
                 (unsigned long long)fs_version(ro.f), (unsigned long long)v);
    check_text(ro.f, "x", "second");
    check_text(ro.f, "y", "new file");
    /* A removal shows too. */
    assert_int_equal(xunlink(wr.f, "y"), 0);
    assert_int_equal(fs_sync(wr.f, SYNC_MS), 0);
    assert_true(wait_version(ro.f, fs_version(wr.f), 10000));
    assert_false(exists(ro.f, "y"));
    check_text(ro.f, "x", "second");
    mount_close(&ro);
    mount_close(&wr);
}

static void test_snapshots(void **state)
{
    struct world *w = *state;
    struct mount m;
    mount_open(w, &m, &(struct mopts){ .publish_ms = 60000 });
    struct fs *f = m.f;
    const char *names[] = { "s1", "s2", "s3" };
    for (unsigned i = 0; i < 3; i++) {
        put_text(f, names[i], names[i]);
        assert_int_equal(fs_sync(f, SYNC_MS), 0);
    }
    uint64_t head = fs_version(f);
    assert_int_equal(head, 3);
    uint64_t *v = NULL;
    size_t nv = 0;
    assert_int_equal(snap_list(f, &v, &nv), 0);
    assert_int_equal(nv, 3);
    for (size_t i = 0; i < nv; i++)
        assert_int_equal(v[i], head - i); /* newest first */
    free(v);

    pthread_mutex_lock(&f->mu);
    struct fnode *s1 = snap_lookup(f, "v1");
    assert_non_null(s1);
    assert_true(s1->ro);
    assert_int_equal(dir_load(f, s1), 0);
    struct fnode *k = dir_find(s1, "s1", NULL);
    assert_non_null(k);
    assert_null(dir_find(s1, "s2", NULL));
    assert_null(snap_lookup(f, "v9"));
    assert_null(snap_lookup(f, "x1"));
    struct fnode *made = NULL;
    assert_int_equal(make(f, s1, "new", FS_T_FILE, &made), -EROFS);
    pthread_mutex_unlock(&f->mu);
    char buf[8] = "";
    assert_int_equal(file_read(f, k, buf, sizeof(buf), 0), 2);
    assert_string_equal(buf, "s1");
    mount_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rw_offsets, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_sparse, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_truncate, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_truncate_regrow_race, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_inline_vs_large, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_publish, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_same_dir, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_crash_recovery, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_recover_changes, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_under_delay, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_ring_gone, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_min_copies, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_two_writers, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_large_dir, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_open_ring_gone, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_follow, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_snapshots, world_setup, world_teardown),
    };
    return cmocka_run_group_tests_name("fs/core", tests, NULL, NULL);
}
