/* test_store_log.c — the local store's lease log (blockstore/store_log.c)
 * on a real directory under /tmp: a torn tail cut, a damaged record in the
 * middle, replay keeping the newest record of each owner and compacting,
 * compaction while running. The fixture is store_fx.c.
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


static void test_lease_torn_tail_cut(void **state)
{
    struct fx *f = *state;
    struct id kc;
    size_t lc;
    struct sig_key k;
    struct lease l[3];
    char p[256];
    struct store_open_stats os;

    make_content(40, 100, buf_a, &lc, &kc);
    make_sig_key(40, &k);
    for (int i = 0; i < 3; i++)
        assert_int_equal(lease_sign(&k, &kc, 10 + (uint64_t)i, 1000, &l[i]), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_lease_append(f->st, &kc, l, 2, 2), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(wait_one(f, 2), 0);
    store_close(f->st);
    f->st = NULL;

    /* A torn append: most of a third record, never finished. */
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), 2 * REC_LEN);
    uint8_t rec[REC_LEN];
    memset(rec, 0, sizeof(rec));
    memcpy(rec, kc.b, ID_BYTES);
    lease_encode(&l[2], rec + ID_BYTES);
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, 100), 100);
    close(fd);

    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, 100);
    assert_int_equal(file_size(p), 2 * REC_LEN);
    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ents[0].nleases, 1); /* one owner: the newer of its two */
    assert_int_equal(r.ents[0].leases[0].stamp_ms, 11);

    /* A whole record of garbage (zeros, as a crash may leave after a size
     * update) is a torn tail too; then appends go on after the cut. */
    store_close(f->st);
    f->st = NULL;
    memset(rec, 0, sizeof(rec));
    fd = open(p, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, REC_LEN), REC_LEN);
    assert_int_equal(write(fd, rec, 7), 7);
    close(fd);
    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, REC_LEN + 7);
    assert_int_equal(store_lease_append(f->st, &kc, &l[2], 1, 3), 0);
    assert_int_equal(wait_one(f, 3), 0);
    fx_reopen(f);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, 0);
    memset(&r, 0, sizeof(r));
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.ents[0].nleases, 1);
    assert_int_equal(r.ents[0].leases[0].stamp_ms, 12);
}

static void test_lease_damaged_middle_record(void **state)
{
    struct fx *f = *state;
    struct id kc;
    size_t lc;
    struct sig_key k[3];
    struct lease l[3];
    char p[256];
    struct store_open_stats os;

    make_content(41, 100, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    for (int i = 0; i < 3; i++) {
        make_sig_key((uint8_t)(50 + i), &k[i]);
        assert_int_equal(lease_sign(&k[i], &kc, 10, 1000, &l[i]), 0);
        assert_int_equal(store_lease_append(f->st, &kc, &l[i], 1, 2 + (uint64_t)i), 0);
    }
    for (uint64_t t = 1; t <= 4; t++)
        assert_int_equal(wait_one(f, t), 0);
    store_close(f->st);
    f->st = NULL;
    lease_log_path(f, p, sizeof(p));
    flip_byte(p, REC_LEN + 60); /* the second record */
    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, REC_LEN);
    /* The third record, acknowledged after the damaged one, stays. */
    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.ents[0].nleases, 2);
    bool saw0 = false, saw2 = false;
    for (size_t i = 0; i < 2; i++) {
        saw0 |= memcmp(&r.ents[0].leases[i], &l[0], sizeof(l[0])) == 0;
        saw2 |= memcmp(&r.ents[0].leases[i], &l[2], sizeof(l[2])) == 0;
    }
    assert_true(saw0 && saw2);
    /* The log was rewritten without it. */
    assert_int_equal(file_size(p), 2 * REC_LEN);
}

static void test_lease_replay_keeps_newest_and_compacts(void **state)
{
    struct fx *f = *state;
    struct id kc, kc2;
    size_t lc, lc2;
    struct sig_key a, b;
    struct lease la[4], lb[3];
    char p[256];

    make_content(60, 1000, buf_a, &lc, &kc);
    make_content(61, 1000, buf_b, &lc2, &kc2);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc2, buf_b, lc2, 2), 0);
    make_sig_key(60, &a);
    make_sig_key(61, &b);
    /* Owner a: stamps arrive out of order; the highest (30) wins. */
    assert_int_equal(lease_sign(&a, &kc, 10, 500, &la[0]), 0);
    assert_int_equal(lease_sign(&a, &kc, 30, 700, &la[1]), 0);
    assert_int_equal(lease_sign(&a, &kc, 20, 900, &la[2]), 0);
    assert_int_equal(lease_sign(&a, &kc2, 5, 900, &la[3]), 0);
    /* Owner b: a grant and a reclaim of the same instant: the reclaim wins,
     * and an older grant replayed after it does not revive the block. */
    assert_int_equal(lease_sign(&b, &kc, 40, 800, &lb[0]), 0);
    assert_int_equal(lease_sign(&b, &kc, 40, 0, &lb[1]), 0);
    assert_int_equal(lease_sign(&b, &kc, 35, 999, &lb[2]), 0);
    assert_int_equal(store_lease_append(f->st, &kc, la, 3, 3), 0);
    assert_int_equal(store_lease_append(f->st, &kc2, &la[3], 1, 4), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &lb[1], 1, 5), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &lb[0], 1, 6), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &lb[2], 1, 7), 0);
    for (uint64_t t = 1; t <= 7; t++)
        assert_int_equal(wait_one(f, t), 0);
    store_close(f->st);
    f->st = NULL;
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), 7 * REC_LEN);
    assert_int_equal(fx_open(f), 0);

    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc);
    assert_non_null(e);
    assert_int_equal(e->nleases, 2);
    for (size_t i = 0; i < 2; i++) {
        if (memcmp(&e->leases[i].owner, &a.pub, sizeof(a.pub)) == 0)
            assert_memory_equal(&e->leases[i], &la[1], sizeof(la[1]));
        else
            assert_memory_equal(&e->leases[i], &lb[1], sizeof(lb[1]));
    }
    e = scan_find(&r, STORE_CONTENT, &kc2);
    assert_non_null(e);
    assert_int_equal(e->nleases, 1);
    assert_memory_equal(&e->leases[0], &la[3], sizeof(la[3]));
    /* 7 records, 3 live: more than twice, so the log was rewritten. */
    assert_int_equal(file_size(p), 3 * REC_LEN);

    /* Removing a block drops its leases, durably: a block stored again
     * under the same key starts with none. */
    assert_int_equal(store_remove(f->st, STORE_CONTENT, &kc, 8), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 9), 0);
    assert_int_equal(wait_one(f, 8), 0);
    assert_int_equal(wait_one(f, 9), 0);
    fx_reopen(f);
    memset(&r, 0, sizeof(r));
    store_scan(f->st, on_scan, &r);
    e = scan_find(&r, STORE_CONTENT, &kc);
    assert_non_null(e);
    assert_int_equal(e->nleases, 0);
    e = scan_find(&r, STORE_CONTENT, &kc2);
    assert_int_equal(e->nleases, 1);
    /* 3 + tombstone = 4 records, 1 live: rewritten again. */
    assert_int_equal(file_size(p), REC_LEN);
}

/* Renewals pile up while a node runs: the writer compacts the log once it
 * has doubled (and passed 1 MiB), without waiting for a restart. */
static void test_lease_log_compacted_while_running(void **state)
{
    struct fx *f = *state;
    enum { N = 7500 }; /* 7500 records: just over 1 MiB */
    struct id kc;
    size_t lc;
    struct sig_key k;
    struct lease *ls = malloc(N * sizeof(*ls));
    char p[256];

    assert_non_null(ls);
    make_content(62, 10, buf_a, &lc, &kc);
    make_sig_key(62, &k);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(lease_sign(&k, &kc, 100, 1000, &ls[0]), 0);
    for (size_t i = 1; i < N; i++)
        ls[i] = ls[0];
    assert_int_equal(lease_sign(&k, &kc, 101, 1000, &ls[N / 2]), 0); /* the newest */
    assert_int_equal(store_lease_append(f->st, &kc, ls, N, 2), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(wait_one(f, 2), 0);
    /* The writer compacts after a batch, before it takes the next one. */
    assert_int_equal(store_lease_append(f->st, &kc, NULL, 0, 3), 0);
    assert_int_equal(wait_one(f, 3), 0);
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), REC_LEN);
    /* And appends go on into the new log. */
    assert_int_equal(store_lease_append(f->st, &kc, &ls[0], 1, 4), 0);
    assert_int_equal(wait_one(f, 4), 0);
    assert_int_equal(file_size(p), 2 * REC_LEN);
    fx_reopen(f);
    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ents[0].nleases, 1);
    assert_memory_equal(&r.ents[0].leases[0], &ls[N / 2], sizeof(ls[0]));
    free(ls);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lease_torn_tail_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_damaged_middle_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_replay_keeps_newest_and_compacts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_log_compacted_while_running, setup, teardown),
        /* The same with per-file barriers. */
        cmocka_unit_test_setup_teardown(test_lease_replay_keeps_newest_and_compacts, setup_files,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_log_compacted_while_running, setup_files,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
