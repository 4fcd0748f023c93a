/* test_store_read.c — the reads of the store off the loop
 * (blockstore/store_reader.c): store_read_async of a good record of each
 * type, of a missing one, of a damaged file (quarantined as store_read
 * does), many reads at once from both reader threads, and store_close with
 * reads queued and completions not polled (their bytes freed: run under
 * ASan). The fixture is store_fx.c.
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

#include "blockstore/block.h"
#include "blockstore/store.h"
#include "store_fx.h"

/* Waits for n completions and checks they are reads. */
static void wait_reads(struct fx *f, struct store_completion *c, size_t n)
{
    wait_n(f, c, n);
    for (size_t i = 0; i < n; i++)
        assert_true(c[i].read);
}

static void test_read_async_each_type(void **state)
{
    struct fx *f = *state;
    struct id k[3];
    size_t len[3];
    static uint8_t want[3][BLOCK_MAX_STORED];
    struct store_completion c[3];
    struct store_stats s;

    make_content(1, BLOCK_MAX_STORED - 100, want[0], &len[0], &k[0]);
    make_root(1, 7, 300, want[1], &len[1], &k[1]);
    make_kv(1, 9, 200, want[2], &len[2], &k[2]);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(store_write(f->st, (enum store_type)(i + 1), &k[i], want[i], len[i], i),
                         0);
    wait_n(f, c, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_false(c[i].read);
        assert_int_equal(c[i].status, 0);
        assert_null(c[i].bytes);
    }

    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(store_read_async(f->st, (enum store_type)(i + 1), &k[i], 100 + i), 0);
    wait_reads(f, c, 3);
    for (unsigned i = 0; i < 3; i++) {
        unsigned t = (unsigned)(c[i].token - 100);
        assert_true(t < 3);
        assert_int_equal(c[i].status, 0);
        assert_non_null(c[i].bytes);
        assert_int_equal(c[i].len, len[t]);
        assert_memory_equal(c[i].bytes, want[t], len[t]);
        free(c[i].bytes);
    }
    store_get_stats(f->st, &s);
    assert_int_equal(s.reads, 3);
    assert_int_equal(s.read_bad, 0);
    assert_int_equal(store_read_async(f->st, (enum store_type)9, &k[0], 1), -EINVAL);
}

static void test_read_async_missing(void **state)
{
    struct fx *f = *state;
    struct store_completion c;
    struct id k;
    size_t len;

    make_content(2, 1000, buf_a, &len, &k);
    assert_int_equal(store_read_async(f->st, STORE_CONTENT, &k, 7), 0);
    wait_reads(f, &c, 1);
    assert_int_equal(c.token, 7);
    assert_int_equal(c.status, -ENOENT);
    assert_null(c.bytes);
    assert_int_equal(c.len, 0);
}

static void test_read_async_corrupt_quarantined(void **state)
{
    struct fx *f = *state;
    struct store_completion c;
    struct store_stats s;
    struct id kc, kk;
    size_t lc, lk;
    char p[256];

    make_content(3, 200000, buf_a, &lc, &kc);
    make_kv(3, 5, 100, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 2), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(wait_one(f, 2), 0);

    path_of(f, STORE_CONTENT, &kc, p, sizeof(p));
    flip_byte(p, 100000);
    assert_int_equal(store_read_async(f->st, STORE_CONTENT, &kc, 3), 0);
    wait_reads(f, &c, 1);
    assert_int_equal(c.token, 3);
    assert_int_equal(c.status, -EBADMSG);
    assert_null(c.bytes);
    /* Moved aside, no longer counted, never served again. */
    assert_int_equal(file_size(p), -1);
    snprintf(p, sizeof(p), "%s/quarantine", f->dir);
    assert_int_equal(count_entries(p), 1);
    assert_int_equal(store_used(f->st), lk);
    assert_int_equal(sum_files(f), lk);
    store_get_stats(f->st, &s);
    assert_int_equal(s.read_bad, 1);
    assert_int_equal(store_read_async(f->st, STORE_CONTENT, &kc, 4), 0);
    wait_reads(f, &c, 1);
    assert_int_equal(c.status, -ENOENT);
    /* The other record is untouched. */
    expect_read(f, STORE_KV, &kk, buf_c, lk);
}

#define NBLOCKS 8
#define NREADS  400

static void test_read_async_many(void **state)
{
    struct fx *f = *state;
    static uint8_t data[NBLOCKS][BLOCK_MAX_STORED];
    static struct store_completion c[NREADS];
    struct id k[NBLOCKS + 1];
    size_t len[NBLOCKS + 1];
    bool seen[NREADS] = {false};

    for (unsigned i = 0; i < NBLOCKS; i++) {
        make_content(40 + i, 1000 + i * 30000, data[i], &len[i], &k[i]);
        assert_int_equal(store_write(f->st, STORE_CONTENT, &k[i], data[i], len[i], i), 0);
    }
    wait_n(f, c, NBLOCKS);
    make_content(99, 500, buf_a, &len[NBLOCKS], &k[NBLOCKS]); /* never stored */

    /* Every read at once: both readers busy, completions in any order. */
    for (unsigned r = 0; r < NREADS; r++)
        assert_int_equal(store_read_async(f->st, STORE_CONTENT, &k[r % (NBLOCKS + 1)], r), 0);
    wait_reads(f, c, NREADS);
    for (unsigned i = 0; i < NREADS; i++) {
        unsigned r = (unsigned)c[i].token, b = r % (NBLOCKS + 1);
        assert_true(r < NREADS);
        assert_false(seen[r]);
        seen[r] = true;
        if (b == NBLOCKS) {
            assert_int_equal(c[i].status, -ENOENT);
            assert_null(c[i].bytes);
            continue;
        }
        assert_int_equal(c[i].status, 0);
        assert_int_equal(c[i].len, len[b]);
        assert_memory_equal(c[i].bytes, data[b], len[b]);
        free(c[i].bytes);
    }
    struct store_completion extra;
    assert_int_equal(store_poll(f->st, &extra, 1), 0);
}

static void test_close_with_reads_queued(void **state)
{
    struct fx *f = *state;
    struct store_completion c[4];
    struct id k;
    size_t len;

    make_content(5, BLOCK_MAX_STORED - 100, buf_a, &len, &k);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &k, buf_a, len, 1), 0);
    assert_int_equal(wait_one(f, 1), 0);
    for (unsigned r = 0; r < 300; r++)
        assert_int_equal(store_read_async(f->st, STORE_CONTENT, &k, 10 + r), 0);
    /* Some are done (their bytes wait in the queue), the rest queued or
     * being read: close frees all of it, and LeakSanitizer would tell. */
    wait_reads(f, c, 4);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(c[i].status, 0);
        free(c[i].bytes);
    }
    store_close(f->st);
    f->st = NULL;
    fx_reopen(f); /* the store is whole after it */
    expect_read(f, STORE_CONTENT, &k, buf_a, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_async_each_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_async_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_async_corrupt_quarantined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_async_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_reads_queued, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
