/* test_table.c — a vnode's routing table (chord/table.c) through the public
 * API: successor-list normalisation as a join or a stabilize applies it,
 * the replica set, finger starts and the fingers fix-finger fills in.
 *
 * Peers are named by their offset from the node's own id in 1/256ths of
 * the ring (harness.h): 0x10 comes right after the node, 0xf0 right
 * before it, and 0x00 is the node itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "harness.h"

#define MAXL 8
#define SELF 0x00
#define A    0x10 /* the successor every row joins before */

/* A peer at offset off; offset 0 is the node itself. */
static void peer_of(const struct harness *h, uint8_t off, struct chord_peer *out)
{
    if (off == SELF)
        *out = *h_self(h);
    else
        h_peer(h, off, out);
}

static size_t peers_of(const struct harness *h, const uint8_t *offs, size_t n,
                       struct chord_peer *out)
{
    for (size_t i = 0; i < n; i++)
        peer_of(h, offs[i], &out[i]);
    return n;
}

/* ---- successor-list normalisation -------------------------------------- */

struct norm_case {
    const char *name;
    unsigned r; /* 0: the default */
    size_t nlist;
    uint8_t list[MAXL]; /* what A sends as its successor list */
    size_t nexp;
    uint8_t exp[MAXL]; /* our successor list afterwards */
};

static const struct norm_case norm_cases[] = {
    {"ring order kept", 0, 3, {0x20, 0x30, 0x40}, 4, {A, 0x20, 0x30, 0x40}},
    {"empty list", 0, 0, {0}, 1, {A}},
    {"self ends the list", 0, 3, {0x20, SELF, 0x30}, 2, {A, 0x20}},
    {"self alone (two-node ring)", 0, 1, {SELF}, 1, {A}},
    {"duplicates dropped", 0, 4, {0x20, 0x20, 0x30, 0x30}, 3, {A, 0x20, 0x30}},
    {"successor repeated", 0, 2, {A, 0x20}, 2, {A, 0x20}},
    {"out of order dropped", 0, 3, {0x30, 0x20, 0x40}, 3, {A, 0x30, 0x40}},
    {"entry before the successor dropped", 0, 2, {0x08, 0x20}, 2, {A, 0x20}},
    {"more than r", 3, 4, {0x20, 0x30, 0x40, 0x50}, 3, {A, 0x20, 0x30}},
    {"exactly r", 4, 3, {0x20, 0x30, 0x40}, 4, {A, 0x20, 0x30, 0x40}},
    {"r = 2, the least allowed", 2, 3, {0x20, 0x30, 0x40}, 2, {A, 0x20}},
    {"small ring repeats after self", 0, 4, {0x20, SELF, A, 0x20}, 2, {A, 0x20}},
    {"wraps without self", 0, 4, {0x20, 0xf0, 0x08, 0x30}, 3, {A, 0x20, 0xf0}},
};

static void norm_setup(struct harness *h, const struct norm_case *tc)
{
    struct chord_config cfg;
    struct addr boot;
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    if (tc->r)
        cfg.succ_len = tc->r;
    h_init(h, &cfg);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(h->c, &boot), 0);
}

static void norm_check(const struct harness *h, const struct norm_case *tc)
{
    struct chord_peer exp[MAXL];
    print_message("  case: %s\n", tc->name);
    h_assert_succ(h, exp, peers_of(h, tc->exp, tc->nexp, exp));
}

/* Zave's join: the successor found, then its list, normalised. */
static void test_normalise_on_join(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(norm_cases); k++) {
        const struct norm_case *tc = &norm_cases[k];
        struct harness h;
        struct chord_peer a, list[MAXL];
        norm_setup(&h, tc);
        h_peer(&h, A, &a);
        h_join(&h, &a, NULL, list, peers_of(&h, tc->list, tc->nlist, list));
        norm_check(&h, tc);
        h_release(&h);
    }
}

/* Stabilize: the first successor, then its list, normalised, every time. */
static void test_normalise_on_stabilize(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(norm_cases); k++) {
        const struct norm_case *tc = &norm_cases[k];
        struct harness h;
        struct chord_peer a, list[MAXL];
        norm_setup(&h, tc);
        h_peer(&h, A, &a);
        h_join(&h, &a, NULL, NULL, 0);
        h_assert_succ(&h, &a, 1);
        /* A's predecessor is us: nothing to adopt, only the list. */
        h_stabilize(&h, &a, h_self(&h), list, peers_of(&h, tc->list, tc->nlist, list));
        norm_check(&h, tc);
        h_release(&h);
    }
}

/* A full message of CHORD_SUCC_MAX successors is cut to r, whatever r is. */
static void test_normalise_long_list(void **state)
{
    static const unsigned rs[] = {2, CHORD_SUCC_LEN, CHORD_SUCC_MAX};
    (void)state;
    for (size_t k = 0; k < N_ELEMS(rs); k++) {
        struct harness h;
        struct chord_config cfg;
        struct chord_peer a, list[CHORD_SUCC_MAX], exp[CHORD_SUCC_MAX + 1];
        struct addr boot;
        h_config(&cfg, 1);
        h_config_quiet(&cfg);
        cfg.succ_len = rs[k];
        h_init(&h, &cfg);
        h_bootstrap(&boot);
        assert_int_equal(chord_join(h.c, &boot), 0);
        h_peer(&h, 0x04, &a);
        exp[0] = a;
        for (unsigned i = 0; i < CHORD_SUCC_MAX; i++) {
            h_peer(&h, (uint8_t)(0x08 + 4 * i), &list[i]);
            exp[i + 1] = list[i];
        }
        h_join(&h, &a, NULL, list, CHORD_SUCC_MAX);
        h_assert_succ(&h, exp, rs[k]);
        h_stabilize(&h, &a, h_self(&h), list, CHORD_SUCC_MAX);
        h_assert_succ(&h, exp, rs[k]);
        h_release(&h);
    }
}

/* ---- replica set ------------------------------------------------------- */

/* The successor list is A, A2 (another vnode on A's node), B, X (another
 * id at our own address), C: the replica set skips A2 and X. */
static void test_replica_set_skips_same_node(void **state)
{
    static const struct {
        size_t k;
        size_t n;
        uint8_t exp[5];
    } cases[] = {
        {0, 0, {0}},
        {1, 1, {SELF}},
        {2, 2, {SELF, A}},
        {3, 3, {SELF, A, 0x20}},
        {4, 4, {SELF, A, 0x20, 0x30}},
        {5, 4, {SELF, A, 0x20, 0x30}},
        {16, 4, {SELF, A, 0x20, 0x30}},
    };
    struct harness h;
    struct chord_config cfg;
    struct chord_peer a, list[4], all[5], out[16], exp[5];
    struct addr boot;
    (void)state;

    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    h_init(&h, &cfg);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(h.c, &boot), 0);
    h_peer(&h, A, &a);
    h_peer_at_addr(&h, 0x18, &a.addr, &list[0]);
    h_peer(&h, 0x20, &list[1]);
    h_peer_at_addr(&h, 0x28, &h.cfg.self, &list[2]);
    h_peer(&h, 0x30, &list[3]);
    h_join(&h, &a, NULL, list, 4);
    all[0] = a;
    memcpy(&all[1], list, sizeof(list));
    h_assert_succ(&h, all, 5);

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        print_message("  k = %zu\n", cases[i].k);
        size_t n = chord_vnode_replica_set(h.c, 0, out, cases[i].k);
        assert_int_equal(n, cases[i].n);
        peers_of(&h, cases[i].exp, cases[i].n, exp);
        for (size_t j = 0; j < n; j++)
            h_assert_peer_eq(&out[j], &exp[j]);
    }
    assert_int_equal(chord_vnode_replica_set(h.c, 1, out, 4), 0);
    h_release(&h);
}

static void test_replica_set_alone(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct chord_peer out[4];
    (void)state;

    h_config(&cfg, 1);
    h_init(&h, &cfg);
    assert_int_equal(chord_create(h.c), 0);
    assert_int_equal(chord_vnode_replica_set(h.c, 0, out, 4), 1);
    h_assert_peer_eq(&out[0], h_self(&h));
    h_release(&h);
}

/* ---- fingers ----------------------------------------------------------- */

#define Z48 "000000000000000000000000000000000000000000000000"
#define F48 "ffffffffffffffffffffffffffffffffffffffffffffffff"

static void test_finger_start(void **state)
{
    static const struct {
        const char *self;
        unsigned i;
        const char *start;
    } cases[] = {
        {"0000000000000000" Z48, 0, "0000000000000001" Z48},
        {"0000000000000000" Z48, 8, "0000000000000100" Z48},
        {"0000000000000000" Z48, 63, "8000000000000000" Z48},
        {"00000000000000ff" F48, 0, "0000000000000100" F48},
        /* Wrap-around past zero. */
        {"ffffffffffffffff" F48, 0, "0000000000000000" F48},
        {"ffffffffffffffff" Z48, 0, "0000000000000000" Z48},
        {"8000000000000000" Z48, 63, "0000000000000000" Z48},
        {"c000000000000000" Z48, 62, "0000000000000000" Z48},
        {"c000000000000000" Z48, 63, "4000000000000000" Z48},
        {"7fffffffffffffff" F48, 63, "ffffffffffffffff" F48},
        /* Bits below 2^192 never change. */
        {"0123456789abcdef"
         "0123456789abcdef0123456789abcdef0123456789abcdef",
         4,
         "0123456789abcdff"
         "0123456789abcdef0123456789abcdef0123456789abcdef"},
    };
    (void)state;
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        struct id self, exp, got;
        char hex[ID_HEX_LEN + 1];
        assert_int_equal(id_from_hex(cases[k].self, &self), 0);
        assert_int_equal(id_from_hex(cases[k].start, &exp), 0);
        chord_finger_start(&self, cases[k].i, &got);
        id_to_hex(&got, hex);
        print_message("  case %zu: finger %u of %.16s... = %.16s...\n", k, cases[k].i,
                      cases[k].self, hex);
        assert_string_equal(hex, cases[k].start);
    }
}

/* For any self, finger i starts exactly 2^(256 - CHORD_FINGERS + i) away. */
static void test_finger_start_distance(void **state)
{
    struct harness h;
    struct chord_config cfg;
    (void)state;
    h_config(&cfg, 1);
    h_init(&h, &cfg);
    for (unsigned i = 0; i < CHORD_FINGERS; i++) {
        struct id start, d, exp;
        memset(&exp, 0, sizeof(exp));
        id_add_pow2(&exp, &exp, ID_BITS - CHORD_FINGERS + i);
        chord_finger_start(&h_self(&h)->id, i, &start);
        id_distance(&d, &h_self(&h)->id, &start);
        assert_true(id_eq(&d, &exp));
    }
    h_release(&h);
}

/* Fix-finger: fingers that start before the first successor are it
 * without a lookup; the next one is looked up, and its answer also fills
 * the later fingers whose start it covers. */
static void test_fix_finger_fills_table(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct chord_peer a, f, got;
    struct chord_msg find, rep;
    struct addr boot;
    struct id start61, start63;
    (void)state;

    h_config(&cfg, 1);
    cfg.check_pred_ms = 3600u * 1000u;
    cfg.probe_ms = 3600u * 1000u;
    h_init(&h, &cfg);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(h.c, &boot), 0);
    h_peer(&h, A, &a);    /* self + 2^252: covers fingers 0..60 */
    h_peer(&h, 0x60, &f); /* self + 2^254 + 2^253: covers 61 and 62 */
    h_join(&h, &a, NULL, NULL, 0);
    for (unsigned i = 0; i < CHORD_FINGERS; i++)
        assert_false(chord_vnode_finger(h.c, 0, i, &got));

    chord_finger_start(&h_self(&h)->id, 61, &start61);
    assert_true(h_await(&h, CHORD_MSG_PEER_FIND, &a.addr, 2 * cfg.fix_finger_ms, &find) >= 0);
    assert_true(id_eq(&find.key, &start61));
    assert_true(id_eq(&find.dst, &a.id));
    for (unsigned i = 0; i <= 60; i++) {
        assert_true(chord_vnode_finger(h.c, 0, i, &got));
        h_assert_peer_eq(&got, &a);
    }
    assert_false(chord_vnode_finger(h.c, 0, 61, &got));

    h_reply(&rep, &find, CHORD_MSG_PEER_FOUND, &f);
    rep.key = find.key;
    rep.peer = f;
    rep.has_peer = true;
    rep.hops = 1;
    assert_int_equal(h_feed(&h, &rep), 0);
    h_clear(&h);
    chord_finger_start(&h_self(&h)->id, 63, &start63);
    int at = h_await(&h, CHORD_MSG_PEER_FIND, NULL, 2 * cfg.fix_finger_ms, &find);
    assert_true(at >= 0);
    for (unsigned i = 61; i <= 62; i++) {
        assert_true(chord_vnode_finger(h.c, 0, i, &got));
        h_assert_peer_eq(&got, &f);
    }
    assert_false(chord_vnode_finger(h.c, 0, 63, &got));
    /* Finger 63 is looked up through the best finger now known, F. */
    assert_true(id_eq(&find.key, &start63));
    assert_true(id_eq(&find.dst, &f.id));
    assert_true(addr_eq(&h.out[at].to, &f.addr));
    h_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise_on_join),
        cmocka_unit_test(test_normalise_on_stabilize),
        cmocka_unit_test(test_normalise_long_list),
        cmocka_unit_test(test_replica_set_skips_same_node),
        cmocka_unit_test(test_replica_set_alone),
        cmocka_unit_test(test_finger_start),
        cmocka_unit_test(test_finger_start_distance),
        cmocka_unit_test(test_fix_finger_fills_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
