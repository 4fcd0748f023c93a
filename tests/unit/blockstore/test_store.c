/* test_store.c — the durable local store (blockstore/store.c, store_open.c,
 * store_log.c) on a real directory under /tmp: writing, reading, replacing
 * and removing each type of record, completions in order, durability across
 * a reopen, scans, quarantine of damaged files, exact use and group commit.
 * The lease log is in test_store_log.c, ENOSPC and fatal failures in
 * test_store_fail.c; the fixture is store_fx.c.
 *
 * Each test gets a fresh directory from mkdtemp and removes it. Tests that
 * check durability close and reopen the store; tests of checks damage files
 * on disk by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockstore/block.h"
#include "blockstore/store.h"
#include "blockstore/store_int.h" /* store_set_sync_mode: both barrier forms */
#include "common/hash.h"
#include "common/log.h"
#include "store_fx.h"


static void test_write_read_each_type(void **state)
{
    struct fx *f = *state;
    struct id kc, kr, kk;
    size_t lc, lr, lk;
    struct store_stats s;

    make_content(1, 100000, buf_a, &lc, &kc);
    make_root(1, 1, 32, buf_b, &lr, &kr);
    make_kv(1, 1000, 500, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 3), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(wait_one(f, 2), 0);
    assert_int_equal(wait_one(f, 3), 0);

    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
    expect_read(f, STORE_ROOT, &kr, buf_b, lr);
    expect_read(f, STORE_KV, &kk, buf_c, lk);
    /* Each type has its own name space. */
    expect_absent(f, STORE_ROOT, &kc);
    expect_absent(f, STORE_KV, &kr);
    assert_int_equal(store_used(f->st), lc + lr + lk);
    assert_int_equal(store_used(f->st), sum_files(f));

    store_get_stats(f->st, &s);
    assert_int_equal(s.writes, 3);
    assert_int_equal(s.bytes_written, lc + lr + lk);
    assert_int_equal(s.reads, 5);
    assert_int_equal(s.read_bad, 0);
    assert_true(s.batches >= 1 && s.batches <= 3);
    assert_true(s.fsyncs >= 2 * s.batches); /* files, then directories */
    assert_false(store_failed(f->st));

    /* Bad arguments are refused before anything is queued. */
    assert_int_equal(store_write(f->st, (enum store_type)9, &kc, buf_a, lc, 4), -EINVAL);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_a, ROOT_MAX_LEN + 1, 4), -EINVAL);
    assert_int_equal(store_remove(f->st, (enum store_type)0, &kc, 4), -EINVAL);
}

static void test_replace(void **state)
{
    struct fx *f = *state;
    struct id kr, kr2, kk, kk2;
    size_t lr, lr2, lk, lk2;

    make_root(2, 1, 10, buf_a, &lr, &kr);
    make_root(2, 2, 300, buf_b, &lr2, &kr2);
    assert_true(id_eq(&kr, &kr2));
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_a, lr, 1), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(store_used(f->st), lr);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr2, 2), 0);
    assert_int_equal(wait_one(f, 2), 0);
    expect_read(f, STORE_ROOT, &kr, buf_b, lr2);
    assert_int_equal(store_used(f->st), lr2);

    make_kv(7, 10, 4000, buf_a, &lk, &kk);
    make_kv(7, 11, 20, buf_c, &lk2, &kk2);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_a, lk, 3), 0);
    /* Two writes of one key in one go: the later one is what stays. */
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk2, 4), 0);
    assert_int_equal(wait_one(f, 3), 0);
    assert_int_equal(wait_one(f, 4), 0);
    expect_read(f, STORE_KV, &kk2, buf_c, lk2);
    assert_int_equal(store_used(f->st), lr2 + lk2);
    assert_int_equal(store_used(f->st), sum_files(f));

    /* Rewriting a content block that is there changes nothing. */
    struct id kc;
    size_t lc;
    make_content(3, 5000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 5), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 6), 0);
    assert_int_equal(wait_one(f, 5), 0);
    assert_int_equal(wait_one(f, 6), 0);
    assert_int_equal(store_used(f->st), lr2 + lk2 + lc);
    fx_reopen(f);
    expect_read(f, STORE_ROOT, &kr, buf_b, lr2);
    expect_read(f, STORE_KV, &kk, buf_c, lk2);
    assert_int_equal(store_used(f->st), lr2 + lk2 + lc);
}

static void test_remove(void **state)
{
    struct fx *f = *state;
    struct id kc, kr, kk;
    size_t lc, lr, lk;
    struct store_stats s;

    make_content(4, 777, buf_a, &lc, &kc);
    make_root(4, 9, 0, buf_b, &lr, &kr);
    make_kv(4, 5, 0, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 3), 0);
    assert_int_equal(store_remove(f->st, STORE_ROOT, &kr, 4), 0);
    for (uint64_t t = 1; t <= 4; t++)
        assert_int_equal(wait_one(f, t), 0);
    expect_absent(f, STORE_ROOT, &kr);
    assert_int_equal(store_used(f->st), lc + lk);

    assert_int_equal(store_remove(f->st, STORE_CONTENT, &kc, 5), 0);
    assert_int_equal(store_remove(f->st, STORE_KV, &kk, 6), 0);
    assert_int_equal(store_remove(f->st, STORE_KV, &kk, 7), 0); /* absent: still 0 */
    for (uint64_t t = 5; t <= 7; t++)
        assert_int_equal(wait_one(f, t), 0);
    expect_absent(f, STORE_CONTENT, &kc);
    expect_absent(f, STORE_KV, &kk);
    assert_int_equal(store_used(f->st), 0);
    store_get_stats(f->st, &s);
    assert_int_equal(s.removes, 4);

    fx_reopen(f);
    expect_absent(f, STORE_CONTENT, &kc);
    assert_int_equal(store_used(f->st), 0);
    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 0);
}

static void test_completions_in_order(void **state)
{
    struct fx *f = *state;
    enum { N = 300 };
    struct store_completion c[N];
    struct sig_key k;
    struct lease l;
    struct id key;
    size_t len;

    make_sig_key(9, &k);
    for (uint64_t t = 0; t < N; t++) {
        switch (t % 4) {
        case 0:
            make_content((uint32_t)t, 64 + t, buf_a, &len, &key);
            assert_int_equal(store_write(f->st, STORE_CONTENT, &key, buf_a, len, 1000 + t), 0);
            break;
        case 1:
            assert_int_equal(lease_sign(&k, &key, t, 100 + t, &l), 0);
            assert_int_equal(store_lease_append(f->st, &key, &l, 1, 1000 + t), 0);
            break;
        case 2:
            make_kv((uint8_t)t, t, t, buf_c, &len, &key);
            assert_int_equal(store_write(f->st, STORE_KV, &key, buf_c, len, 1000 + t), 0);
            break;
        default: assert_int_equal(store_remove(f->st, STORE_KV, &key, 1000 + t), 0); break;
        }
    }
    /* Take them in small pieces: order holds across polls and batches. */
    for (size_t got = 0; got < N;) {
        size_t want = N - got < 7 ? N - got : 7;
        wait_n(f, c + got, want);
        got += want;
    }
    for (uint64_t t = 0; t < N; t++) {
        assert_int_equal(c[t].token, 1000 + t);
        assert_int_equal(c[t].status, 0);
    }
    assert_int_equal(store_poll(f->st, c, N), 0);
    /* Nothing queued: a poll with max 0 is fine too. */
    assert_int_equal(store_poll(f->st, c, 0), 0);
}

static void test_durable_reopen_and_scan(void **state)
{
    struct fx *f = *state;
    struct id kc[10], kr, kk;
    size_t lc[10], lr, lk;
    uint64_t total = 0;
    struct store_open_stats os;
    struct sig_key owner;
    struct lease l;

    make_sig_key(11, &owner);
    for (int i = 0; i < 10; i++) {
        make_content((uint32_t)(100 + i), (size_t)i * 20000, buf_a, &lc[i], &kc[i]);
        assert_int_equal(store_write(f->st, STORE_CONTENT, &kc[i], buf_a, lc[i], (uint64_t)i), 0);
        total += lc[i];
    }
    assert_int_equal(lease_sign(&owner, &kc[3], 5, 99, &l), 0);
    assert_int_equal(store_lease_append(f->st, &kc[3], &l, 1, 10), 0);
    make_root(12, 3, 40, buf_b, &lr, &kr);
    make_kv(12, 3, 40, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 11), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 12), 0);
    total += lr + lk;
    store_close(f->st); /* finishes the queue */
    f->st = NULL;
    assert_int_equal(fx_open(f), 0);

    store_get_open_stats(f->st, &os);
    assert_int_equal(os.checked, 12);
    assert_int_equal(os.quarantined, 0);
    assert_int_equal(os.tmp_removed, 0);
    assert_int_equal(os.lease_tail_cut, 0);
    assert_int_equal(store_used(f->st), total);
    for (int i = 0; i < 10; i++) {
        make_content((uint32_t)(100 + i), (size_t)i * 20000, buf_a, &lc[i], &kc[i]);
        expect_read(f, STORE_CONTENT, &kc[i], buf_a, lc[i]);
    }
    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 12);
    assert_int_equal(r.n, 12);
    for (int i = 0; i < 10; i++) {
        const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc[i]);
        assert_non_null(e);
        assert_int_equal(e->size, lc[i]);
        assert_int_equal(e->nleases, i == 3 ? 1 : 0);
    }
    const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc[3]);
    assert_memory_equal(&e->leases[0], &l, sizeof(l));
    e = scan_find(&r, STORE_ROOT, &kr);
    assert_non_null(e);
    assert_int_equal(e->size, lr);
    assert_int_equal(e->nleases, 0);
    e = scan_find(&r, STORE_KV, &kk);
    assert_non_null(e);
    assert_int_equal(e->size, lk);
}

static void test_corrupt_quarantined_at_open(void **state)
{
    struct fx *f = *state;
    struct id kc, kc2, kr, kk;
    size_t lc, lc2, lr, lk;
    char p[256], q[256];
    struct store_open_stats os;

    make_content(20, 3000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    make_content(21, 3000, buf_a, &lc2, &kc2);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc2, buf_a, lc2, 2), 0);
    make_root(20, 1, 8, buf_b, &lr, &kr);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 3), 0);
    make_kv(20, 1, 8, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 4), 0);
    store_close(f->st);
    f->st = NULL;

    path_of(f, STORE_CONTENT, &kc, p, sizeof(p));
    flip_byte(p, 1000);
    path_of(f, STORE_ROOT, &kr, p, sizeof(p));
    flip_byte(p, 40); /* the version: the signature no longer holds */
    path_of(f, STORE_KV, &kk, p, sizeof(p));
    flip_byte(p, 60);
    /* A file with a name that is no key, a block in the wrong fan-out
     * directory, a stray file in blocks/. */
    snprintf(p, sizeof(p), "%s/roots/junk", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("junk", fp);
    fclose(fp);
    char hex[ID_HEX_LEN + 1];
    id_to_hex(&kc2, hex);
    path_of(f, STORE_CONTENT, &kc2, p, sizeof(p));
    snprintf(q, sizeof(q), "%s/blocks/%02x/%s", f->dir, (unsigned)(kc2.b[0] ^ 1), hex);
    assert_int_equal(link(p, q), 0);
    snprintf(q, sizeof(q), "%s/blocks/stray", f->dir);
    assert_int_equal(link(p, q), 0);

    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.checked, 7);
    assert_int_equal(os.quarantined, 6);
    snprintf(p, sizeof(p), "%s/quarantine", f->dir);
    assert_int_equal(count_entries(p), 6);
    assert_int_equal(store_used(f->st), lc2);
    assert_int_equal(store_used(f->st), sum_files(f));
    expect_absent(f, STORE_CONTENT, &kc);
    expect_absent(f, STORE_ROOT, &kr);
    expect_absent(f, STORE_KV, &kk);
    expect_read(f, STORE_CONTENT, &kc2, buf_a, lc2);
    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 1);
    assert_true(id_eq(&r.ents[0].key, &kc2));

    /* Quarantine keeps what it has: the same names again get new ones. */
    store_close(f->st);
    f->st = NULL;
    snprintf(p, sizeof(p), "%s/roots/junk", f->dir);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(fx_open(f), 0);
    snprintf(p, sizeof(p), "%s/quarantine", f->dir);
    assert_int_equal(count_entries(p), 7);
}

static void test_corrupt_quarantined_at_read(void **state)
{
    struct fx *f = *state;
    struct id kc, kr, kk;
    size_t lc, lr, lk;
    char p[256];
    uint8_t *got = NULL;
    size_t len = 0;
    struct store_stats s;

    make_content(30, 200000, buf_a, &lc, &kc);
    make_root(30, 5, 100, buf_b, &lr, &kr);
    make_kv(30, 5, 100, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 3), 0);
    for (uint64_t t = 1; t <= 3; t++)
        assert_int_equal(wait_one(f, t), 0);
    assert_int_equal(store_used(f->st), lc + lr + lk);

    path_of(f, STORE_CONTENT, &kc, p, sizeof(p));
    flip_byte(p, 150000);
    assert_int_equal(store_read(f->st, STORE_CONTENT, &kc, &got, &len), -EBADMSG);
    assert_null(got);
    assert_int_equal(file_size(p), -1);
    assert_int_equal(store_used(f->st), lr + lk);
    expect_absent(f, STORE_CONTENT, &kc);

    path_of(f, STORE_ROOT, &kr, p, sizeof(p));
    flip_byte(p, lr - 1); /* the signature */
    assert_int_equal(store_read(f->st, STORE_ROOT, &kr, &got, &len), -EBADMSG);
    path_of(f, STORE_KV, &kk, p, sizeof(p));
    flip_byte(p, lk - 3); /* the checksum */
    assert_int_equal(store_read(f->st, STORE_KV, &kk, &got, &len), -EBADMSG);
    assert_int_equal(store_used(f->st), 0);
    assert_int_equal(sum_files(f), 0);

    store_get_stats(f->st, &s);
    assert_int_equal(s.read_bad, 3);
    snprintf(p, sizeof(p), "%s/quarantine", f->dir);
    assert_int_equal(count_entries(p), 3);

    /* The block comes back from a replica: it is stored again. */
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 4), 0);
    assert_int_equal(wait_one(f, 4), 0);
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
    assert_int_equal(store_used(f->st), lc);
}

static void test_tmp_emptied_at_open(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct store_open_stats os;

    store_close(f->st);
    f->st = NULL;
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof(p), "%s/tmp/%016x", f->dir, i);
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fputs("half a block", fp);
        fclose(fp);
    }
    snprintf(p, sizeof(p), "%s/tmp/leases.log.new", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.tmp_removed, 6);
    snprintf(p, sizeof(p), "%s/tmp", f->dir);
    assert_int_equal(count_entries(p), 0);
    assert_int_equal(store_used(f->st), 0);
}

/* A reclaimed block leaves its lease records without a file (a tombstone,
 * bs_drop): scan reports them with size 0 so the server keeps refusing a
 * replayed older grant after a restart. */
static void test_scan_reports_tombstones(void **state)
{
    struct fx *f = *state;
    struct id kc, kt;
    size_t lc, lt;
    struct sig_key a;
    struct lease grant, reclaim;

    make_content(70, 500, buf_a, &lc, &kc);
    make_content(71, 500, buf_b, &lt, &kt);
    make_sig_key(70, &a);
    assert_int_equal(lease_sign(&a, &kc, 10, 900, &grant), 0);
    assert_int_equal(lease_sign(&a, &kt, 20, 0, &reclaim), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &grant, 1, 2), 0);
    /* kt: its block was removed, then its reclaim record appended again. */
    assert_int_equal(store_lease_append(f->st, &kt, &reclaim, 1, 3), 0);
    for (uint64_t t = 1; t <= 3; t++)
        assert_int_equal(wait_one(f, t), 0);
    fx_reopen(f);

    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 2);
    const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc);
    assert_non_null(e);
    assert_int_equal(e->size, lc);
    assert_int_equal(e->nleases, 1);
    e = scan_find(&r, STORE_CONTENT, &kt);
    assert_non_null(e);
    assert_int_equal(e->size, 0);
    assert_int_equal(e->nleases, 1);
    assert_int_equal(e->leases[0].expiry_s, 0);
    assert_int_equal(e->leases[0].stamp_ms, 20);
}

static void test_used_exact(void **state)
{
    struct fx *f = *state;
    struct id keys[40];
    size_t len;

    for (int i = 0; i < 40; i++) {
        make_content((uint32_t)(70 + i), (size_t)(i * 6553 % BLOCK_MAX_DATA), buf_a, &len,
                     &keys[i]);
        assert_int_equal(store_write(f->st, STORE_CONTENT, &keys[i], buf_a, len, (uint64_t)i), 0);
    }
    for (int i = 0; i < 40; i += 3)
        assert_int_equal(store_remove(f->st, STORE_CONTENT, &keys[i], 100 + (uint64_t)i), 0);
    for (int i = 0; i < 20; i++) {
        struct id k;
        make_root((uint8_t)(i % 5), (uint64_t)i + 1, (size_t)i * 40, buf_b, &len, &k);
        assert_int_equal(store_write(f->st, STORE_ROOT, &k, buf_b, len, 200 + (uint64_t)i), 0);
        make_kv((uint8_t)(i % 7), (uint64_t)i, (size_t)i * 900, buf_c, &len, &k);
        assert_int_equal(store_write(f->st, STORE_KV, &k, buf_c, len, 300 + (uint64_t)i), 0);
    }
    struct store_completion c[40 + 14 + 40];
    wait_n(f, c, 40 + 14 + 40);
    for (size_t i = 0; i < 40 + 14 + 40; i++)
        assert_int_equal(c[i].status, 0);
    uint64_t used = store_used(f->st);
    assert_int_equal(used, sum_files(f));
    fx_reopen(f);
    assert_int_equal(store_used(f->st), used);
}

/* Writes queued while the writer is busy go to disk as one batch. The test
 * holds the writer in its wake callback after the first batch (the gate),
 * queues the rest, and lets it go: exactly one more batch takes them all. */
static void test_group_commit(void **state)
{
    struct fx *f = *state;
    enum { N = 100 };
    struct store_completion c[N];
    struct store_stats s;
    size_t len[N];
    struct id key[N];
    uint8_t *blocks = malloc((size_t)N * 64 * 1024 + N * BLOCK_HDR_LEN);

    assert_non_null(blocks);
    for (uint64_t t = 0; t < N; t++)
        make_content((uint32_t)(1000 + t), 64 * 1024, blocks + t * (64 * 1024 + BLOCK_HDR_LEN),
                     &len[t], &key[t]);
    pthread_mutex_lock(&f->gate);
    for (uint64_t t = 0; t < N; t++)
        assert_int_equal(store_write(f->st, STORE_CONTENT, &key[t],
                                     blocks + t * (64 * 1024 + BLOCK_HDR_LEN), len[t], t),
                         0);
    pthread_mutex_unlock(&f->gate);
    wait_n(f, c, N);
    free(blocks);
    for (uint64_t t = 0; t < N; t++) {
        assert_int_equal(c[t].token, t);
        assert_int_equal(c[t].status, 0);
    }
    store_get_stats(f->st, &s);
    print_message("group commit: %llu writes in %llu batches, %llu fsyncs\n",
                  (unsigned long long)s.writes, (unsigned long long)s.batches,
                  (unsigned long long)s.fsyncs);
    assert_int_equal(s.writes, N);
    assert_true(s.batches <= 2);
    /* A file sync per write, and one per directory touched in a batch (the
     * 100 keys fall in fewer than 100 of the 256 fan-out directories). */
    assert_true(s.fsyncs < 2 * s.writes);
}

static void test_open_creates_layout(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct stat sb;
    static const char *const subs[] = {"blocks", "blocks/00",  "blocks/ff", "roots",
                                       "kv",     "quarantine", "tmp"};

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, subs[i]);
        assert_int_equal(stat(p, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 0777, 0700);
    }
    snprintf(p, sizeof(p), "%s/blocks", f->dir);
    assert_int_equal(count_entries(p), 256);
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), 0);
    /* A nested path is made as mkdir -p would. */
    struct store *st2;
    struct store_config cfg = {.dir = p, .no_sync = 1};
    snprintf(p, sizeof(p), "%s/a/b/c", f->root);
    assert_int_equal(store_open(&cfg, NULL, &st2), 0);
    store_close(st2);
    store_close(NULL);
    /* A path that cannot be a directory is refused. */
    snprintf(p, sizeof(p), "%s/leases.log/x", f->dir);
    assert_true(store_open(&cfg, NULL, &st2) < 0);
}

static void test_no_sync_mode(void **state)
{
    struct fx *f = *state;
    struct store_stats s;
    struct id kc;
    size_t lc;

    store_close(f->st);
    f->st = NULL;
    f->no_sync = 1;
    assert_int_equal(fx_open(f), 0);
    make_content(90, 1000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(wait_one(f, 1), 0);
    store_get_stats(f->st, &s);
    assert_int_equal(s.fsyncs, 0);
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_read_each_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completions_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_reopen_and_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_quarantined_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_quarantined_at_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_emptied_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_used_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_reports_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_sync_mode, setup, teardown),
        /* The same with per-file barriers. */
        cmocka_unit_test_setup_teardown(test_write_read_each_type, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_completions_in_order, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_durable_reopen_and_scan, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_used_exact, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup_files, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
