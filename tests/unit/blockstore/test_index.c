/* test_index.c — the index of held records (blockstore/index.c): order,
 * ring ranges with wrap-around, exact accounting, lease merges. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "blockstore/internal.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define NOW_S      1700000000ull

static struct id key_top(uint8_t top, uint8_t low)
{
    struct id k;
    memset(&k, 0, sizeof(k));
    k.b[0] = top;
    k.b[31] = low;
    return k;
}

static void owner(uint8_t seed_byte, struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    memset(seed, seed_byte, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, k), 0);
}

static struct lease grant(const struct sig_key *k, const struct id *key, uint64_t stamp_ms,
                          uint64_t expiry_s)
{
    struct lease l;
    assert_int_equal(lease_sign(k, key, stamp_ms, expiry_s, &l), 0);
    return l;
}

static void test_order_and_find(void **state)
{
    (void)state;
    struct bs_index ix;
    struct bs_entry *e;
    const uint8_t tops[] = {0x80, 0x10, 0xf0, 0x10, 0x44, 0x00, 0xff};
    const uint8_t types[] = {STORE_CONTENT, STORE_KV,      STORE_ROOT, STORE_CONTENT,
                             STORE_KV,      STORE_CONTENT, STORE_ROOT};

    assert_int_equal(bs_index_init(&ix), 0);
    for (size_t i = 0; i < N_ELEMS(tops); i++) {
        struct id k = key_top(tops[i], 0);
        assert_int_equal(bs_index_add(&ix, types[i], &k, &e), 0);
        assert_non_null(e);
        assert_int_equal(e->type, types[i]);
        assert_int_equal(e->flags, 0);
    }
    struct id k10 = key_top(0x10, 0);
    assert_int_equal(bs_index_add(&ix, STORE_KV, &k10, &e), -EEXIST);
    assert_int_equal(ix.n, N_ELEMS(tops));
    for (size_t i = 1; i < ix.n; i++) {
        int c = id_cmp(&ix.v[i - 1]->key, &ix.v[i]->key);
        assert_true(c < 0 || (c == 0 && ix.v[i - 1]->type < ix.v[i]->type));
    }
    for (size_t i = 0; i < N_ELEMS(tops); i++) {
        struct id k = key_top(tops[i], 0);
        e = bs_index_find(&ix, types[i], &k);
        assert_non_null(e);
        assert_true(id_eq(&e->key, &k));
    }
    assert_null(bs_index_find(&ix, STORE_ROOT, &k10));
    e = bs_index_find(&ix, STORE_KV, &k10);
    bs_index_remove(&ix, e);
    assert_null(bs_index_find(&ix, STORE_KV, &k10));
    assert_non_null(bs_index_find(&ix, STORE_CONTENT, &k10));
    assert_int_equal(ix.n, N_ELEMS(tops) - 1);
    bs_index_release(&ix);
}

/* Collects the top bytes of the entries in the ring range (lo, hi], walking
 * as the comment of bs_index_lower_bound says. */
static size_t range(const struct bs_index *ix, uint8_t lo_top, uint8_t hi_top, uint8_t *out)
{
    struct id lo = key_top(lo_top, 0), hi = key_top(hi_top, 0);
    size_t n = 0, i = bs_index_lower_bound(ix, &lo);
    /* A key equal to lo is skipped first and, for the whole ring (lo, lo],
     * met again as the last one. */
    if (i < ix->n && id_eq(&ix->v[i]->key, &lo))
        i++;
    for (size_t steps = 0; steps < ix->n; steps++, i++) {
        if (i == ix->n)
            i = 0;
        const struct bs_entry *e = ix->v[i];
        if (!id_in_oc(&e->key, &lo, &hi))
            break;
        out[n++] = e->key.b[0];
    }
    return n;
}

static void test_ring_ranges(void **state)
{
    (void)state;
    struct bs_index ix;
    bs_index_init(&ix);
    for (uint8_t t = 0x10; t <= 0xf0 && t >= 0x10; t += 0x10) {
        struct id k = key_top(t, 0);
        assert_int_equal(bs_index_add(&ix, STORE_CONTENT, &k, NULL), 0);
    }
    static const struct {
        uint8_t lo, hi;
        size_t n;
        uint8_t want[16];
    } cases[] = {
        {0x25, 0x55, 3, {0x30, 0x40, 0x50}},
        {0x20, 0x50, 3, {0x30, 0x40, 0x50}}, /* lo itself is outside */
        {0x10,
         0x10,
         15,
         {0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0,
          0x10}},                                  /* (a, a] is the whole ring */
        {0xd5, 0x25, 4, {0xe0, 0xf0, 0x10, 0x20}}, /* wraps past the end */
        {0xf0, 0x05, 0, {0}},                      /* nothing between */
        {0xf5, 0x10, 1, {0x10}},
        {0x00, 0x0f, 0, {0}},
        {0x05, 0x10, 1, {0x10}},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        uint8_t got[32];
        size_t n = range(&ix, cases[c].lo, cases[c].hi, got);
        assert_int_equal(n, cases[c].n);
        assert_memory_equal(got, cases[c].want, n);
    }
    struct id past = key_top(0xf5, 0);
    assert_int_equal(bs_index_lower_bound(&ix, &past), ix.n);
    struct id first = key_top(0x00, 0);
    assert_int_equal(bs_index_lower_bound(&ix, &first), 0);
    bs_index_release(&ix);
}

static void test_accounting(void **state)
{
    (void)state;
    struct bs_index ix;
    struct bs_entry *a, *r, *kv;
    struct id ka = key_top(1, 1), kr = key_top(2, 2), kk = key_top(3, 3);

    bs_index_init(&ix);
    bs_index_add(&ix, STORE_CONTENT, &ka, &a);
    bs_index_add(&ix, STORE_ROOT, &kr, &r);
    bs_index_add(&ix, STORE_KV, &kk, &kv);
    assert_int_equal(ix.used, 0);

    bs_index_set_size(&ix, a, 1000, BS_E_WRITING);
    assert_int_equal(ix.used, 1000); /* a write in flight counts */
    assert_int_equal(ix.counts[STORE_CONTENT], 0);
    bs_index_set_size(&ix, a, 1000, BS_E_PRESENT);
    assert_int_equal(ix.used, 1000);
    assert_int_equal(ix.counts[STORE_CONTENT], 1);
    bs_index_set_size(&ix, r, 200, BS_E_PRESENT);
    bs_index_set_size(&ix, kv, 50, BS_E_PRESENT);
    assert_int_equal(ix.used, 1250);
    /* A replacement in flight: the new size counts, the entry stays held. */
    bs_index_set_size(&ix, r, 300, BS_E_PRESENT | BS_E_WRITING);
    assert_int_equal(ix.used, 1350);
    assert_int_equal(ix.counts[STORE_ROOT], 1);
    /* A bad copy is gone from the disk: it counts no more. */
    bs_index_set_size(&ix, a, 1000, BS_E_BAD);
    assert_int_equal(ix.used, 350);
    assert_int_equal(ix.counts[STORE_CONTENT], 0);
    bs_index_remove(&ix, kv);
    assert_int_equal(ix.used, 300);
    assert_int_equal(ix.counts[STORE_KV], 0);
    bs_index_remove(&ix, r);
    bs_index_remove(&ix, a);
    assert_int_equal(ix.used, 0);
    assert_int_equal(ix.n, 0);
    bs_index_release(&ix);
}

static void test_owner_usage(void **state)
{
    (void)state;
    struct bs_index ix;
    struct bs_entry *a, *b;
    struct sig_key ka, kb;
    struct id key_a = key_top(0x11, 0), key_b = key_top(0x22, 0);
    bool changed;

    owner(1, &ka);
    owner(2, &kb);
    bs_index_init(&ix);
    bs_index_add(&ix, STORE_CONTENT, &key_a, &a);
    bs_index_add(&ix, STORE_CONTENT, &key_b, &b);

    struct lease la = grant(&ka, &key_a, NOW_S * 1000, NOW_S + 100);
    assert_int_equal(bs_index_merge_leases(&ix, a, &la, 1, NOW_S, &changed), 0);
    assert_true(changed);
    /* Not held yet: nothing to count. */
    assert_int_equal(bs_index_owner_bytes(&ix, &ka.pub), 0);
    assert_int_equal(ix.nowners, 1);
    bs_index_set_size(&ix, a, 500, BS_E_WRITING);
    assert_int_equal(bs_index_owner_bytes(&ix, &ka.pub), 500);
    bs_index_set_size(&ix, a, 500, BS_E_PRESENT);
    assert_int_equal(bs_index_owner_bytes(&ix, &ka.pub), 500);
    assert_int_equal(a->expiry_s, NOW_S + 100);

    /* Two owners of one block: each counts it in full. */
    struct lease lb = grant(&kb, &key_a, NOW_S * 1000, NOW_S + 50);
    assert_int_equal(bs_index_merge_leases(&ix, a, &lb, 1, NOW_S, &changed), 0);
    assert_int_equal(a->nleases, 2);
    assert_int_equal(bs_index_owner_bytes(&ix, &kb.pub), 500);
    assert_int_equal(bs_index_owner_bytes(&ix, &ka.pub), 500);
    struct lease lb2 = grant(&kb, &key_b, NOW_S * 1000, NOW_S + 50);
    bs_index_merge_leases(&ix, b, &lb2, 1, NOW_S, NULL);
    bs_index_set_size(&ix, b, 70, BS_E_PRESENT);
    assert_int_equal(bs_index_owner_bytes(&ix, &kb.pub), 570);

    /* Time passes: re-evaluating (n = 0) takes back the lapsed leases. */
    assert_int_equal(bs_index_merge_leases(&ix, a, NULL, 0, NOW_S + 60, &changed), 0);
    assert_false(changed);
    assert_int_equal(bs_index_owner_bytes(&ix, &kb.pub), 70);
    assert_int_equal(bs_index_owner_bytes(&ix, &ka.pub), 500);
    assert_true(bs_entry_live(a, NOW_S + 60));
    assert_false(bs_entry_live(a, NOW_S + 100));
    assert_int_equal(bs_index_merge_leases(&ix, a, NULL, 0, NOW_S + 100, NULL), 0);
    assert_int_equal(bs_index_owner_bytes(&ix, &ka.pub), 0);
    assert_int_equal(a->expiry_s, 0);

    /* Rows live as long as a record names the owner. */
    bs_index_remove(&ix, a);
    assert_int_equal(ix.nowners, 1); /* kb still leases b */
    bs_index_remove(&ix, b);
    assert_int_equal(ix.nowners, 0);
    bs_index_release(&ix);
}

static void test_lease_merge_rules(void **state)
{
    (void)state;
    struct bs_index ix;
    struct bs_entry *e;
    struct sig_key k;
    struct id key = key_top(0x33, 0);
    bool changed;

    owner(7, &k);
    bs_index_init(&ix);
    bs_index_add(&ix, STORE_CONTENT, &key, &e);
    bs_index_set_size(&ix, e, 100, BS_E_PRESENT);

    struct lease g1 = grant(&k, &key, 1000 * NOW_S, NOW_S + 1000);
    struct lease rc = grant(&k, &key, 1000 * NOW_S + 5, 0);
    struct lease g2 = grant(&k, &key, 1000 * NOW_S + 9, NOW_S + 2000);
    struct lease rc_same = grant(&k, &key, 1000 * NOW_S + 9, 0);

    bs_index_merge_leases(&ix, e, &g1, 1, NOW_S, &changed);
    assert_true(changed);
    assert_int_equal(bs_index_owner_bytes(&ix, &k.pub), 100);
    struct id d1 = e->digest;

    /* The reclaim, signed later, beats the grant. */
    bs_index_merge_leases(&ix, e, &rc, 1, NOW_S, &changed);
    assert_true(changed);
    assert_int_equal(e->nleases, 1);
    assert_int_equal(e->leases[0].expiry_s, 0);
    assert_false(bs_entry_live(e, NOW_S));
    assert_int_equal(bs_index_owner_bytes(&ix, &k.pub), 0);
    assert_false(id_eq(&d1, &e->digest));

    /* A replay of the older grant loses: nothing changes. */
    struct id d2 = e->digest;
    bs_index_merge_leases(&ix, e, &g1, 1, NOW_S, &changed);
    assert_false(changed);
    assert_int_equal(e->leases[0].expiry_s, 0);
    assert_true(id_eq(&d2, &e->digest));

    /* A grant signed after the reclaim wins again... */
    bs_index_merge_leases(&ix, e, &g2, 1, NOW_S, &changed);
    assert_true(changed);
    assert_true(bs_entry_live(e, NOW_S));
    /* ...and of two records with one stamp, the reclaim wins, in either
     * order of arrival, both in one call. */
    struct lease pair[2] = {rc_same, g2};
    bs_index_merge_leases(&ix, e, pair, 2, NOW_S, &changed);
    assert_true(changed);
    assert_int_equal(e->leases[0].expiry_s, 0);
    bs_index_release(&ix);
}

static void test_digest_agrees(void **state)
{
    (void)state;
    struct bs_index x, y;
    struct bs_entry *ex, *ey;
    struct sig_key k1, k2;
    struct id key = key_top(0x44, 9);

    owner(3, &k1);
    owner(4, &k2);
    struct lease l1 = grant(&k1, &key, 1000 * NOW_S, NOW_S + 10);
    struct lease l2 = grant(&k2, &key, 1000 * NOW_S, NOW_S + 10);
    bs_index_init(&x);
    bs_index_init(&y);
    bs_index_add(&x, STORE_CONTENT, &key, &ex);
    bs_index_add(&y, STORE_CONTENT, &key, &ey);
    assert_true(id_eq(&ex->digest, &ey->digest));
    /* Same leases merged in another order: same records, same digest. */
    bs_index_merge_leases(&x, ex, &l1, 1, NOW_S, NULL);
    bs_index_merge_leases(&x, ex, &l2, 1, NOW_S, NULL);
    bs_index_merge_leases(&y, ey, &l2, 1, NOW_S, NULL);
    assert_false(id_eq(&ex->digest, &ey->digest));
    bs_index_merge_leases(&y, ey, &l1, 1, NOW_S, NULL);
    assert_true(id_eq(&ex->digest, &ey->digest));
    /* Presence is part of it. */
    bs_index_set_size(&x, ex, 10, BS_E_PRESENT);
    assert_false(id_eq(&ex->digest, &ey->digest));
    bs_index_set_size(&y, ey, 10, BS_E_PRESENT);
    assert_true(id_eq(&ex->digest, &ey->digest));
    bs_index_release(&x);
    bs_index_release(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_find),    cmocka_unit_test(test_ring_ranges),
        cmocka_unit_test(test_accounting),        cmocka_unit_test(test_owner_usage),
        cmocka_unit_test(test_lease_merge_rules), cmocka_unit_test(test_digest_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
