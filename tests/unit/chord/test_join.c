/* test_join.c — creating a ring and joining one (chord/ring.c join_step and
 * the P_JOIN_GET reply), message by message, then two and three nodes
 * wired by hand.
 *
 * Zave's join: the joining vnode looks up the successor of its id + 1
 * through the bootstrap (PEER_FIND with CHORD_MF_ANY, reply-to itself),
 * asks that successor for its state (PREDECESSOR_GET), takes "successor,
 * then the successor's list" as its own list, and notifies the successor
 * (PREDECESSOR_SET).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

struct jfix {
    struct harness h;
    struct addr boot;
    struct chord_peer bootp; /* the vnode answering at the bootstrap */
    struct chord_peer a, b, c;
};

static int setup(void **state)
{
    struct jfix *f = calloc(1, sizeof(*f));
    struct chord_config cfg;
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    h_init(&f->h, &cfg);
    h_bootstrap(&f->boot);
    h_peer_at_addr(&f->h, 0x80, &f->boot, &f->bootp);
    h_peer(&f->h, 0x10, &f->a);
    h_peer(&f->h, 0x20, &f->b);
    h_peer(&f->h, 0x30, &f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct jfix *f = *state;
    h_release(&f->h);
    free(f);
    return 0;
}

/* The next PEER_FIND of the join, at once (the join starts at the next tick). */
static void await_find(struct jfix *f, uint64_t within, struct chord_msg *find)
{
    assert_true(h_await(&f->h, CHORD_MSG_PEER_FIND, &f->boot, within, find) >= 0);
}

static void feed_found(struct jfix *f, const struct chord_msg *find, const struct chord_peer *succ)
{
    struct chord_msg m;
    h_reply(&m, find, CHORD_MSG_PEER_FOUND, &f->bootp);
    m.key = find->key;
    m.peer = *succ;
    m.has_peer = true;
    m.hops = 1;
    assert_int_equal(h_feed(&f->h, &m), 0);
}

static void test_join_sends_find_to_bootstrap(void **state)
{
    struct jfix *f = *state;
    struct chord_msg find;
    struct id key;

    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    assert_false(chord_vnode_joined(f->h.c, 0));
    assert_true(chord_next_deadline(f->h.c) <= f->h.now);
    await_find(f, 0, &find);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PEER_FIND, NULL), 1);
    id_add_pow2(&key, &h_self(&f->h)->id, 0);
    assert_false(find.reply);
    assert_int_equal(find.flags, CHORD_MF_ANY);
    assert_true(id_eq(&find.key, &key));
    h_assert_peer_eq(&find.peer, h_self(&f->h)); /* reply-to */
    h_assert_peer_eq(&find.src, h_self(&f->h));
    assert_int_equal(find.hops, 1);
}

static void test_join_found_asks_successor(void **state)
{
    struct jfix *f = *state;
    struct chord_msg find, get;

    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    await_find(f, 0, &find);
    h_clear(&f->h);
    feed_found(f, &find, &f->a);
    /* The answer is acted upon at the next tick, not inside chord_input. */
    assert_int_equal(f->h.nout, 0);
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, 0, &get) >= 0);
    assert_false(get.reply);
    assert_true(id_eq(&get.dst, &f->a.id));
    h_assert_peer_eq(&get.src, h_self(&f->h));
    assert_false(chord_vnode_joined(f->h.c, 0));
}

static void test_join_takes_successor_list(void **state)
{
    struct jfix *f = *state;
    struct chord_msg find, get, rep, set;
    struct chord_peer pred, exp[3] = {f->a, f->b, f->c};

    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    await_find(f, 0, &find);
    feed_found(f, &find, &f->a);
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, 0, &get) >= 0);
    h_clear(&f->h);
    unsigned updates = f->h.updates;

    h_peer(&f->h, 0xf0, &pred); /* A's predecessor, before us */
    h_reply(&rep, &get, CHORD_MSG_PREDECESSOR_REPLY, &f->a);
    rep.has_peer = true;
    rep.peer = pred;
    rep.npeers = 2;
    rep.peers[0] = f->b;
    rep.peers[1] = f->c;
    assert_int_equal(h_feed(&f->h, &rep), 0);

    assert_true(chord_vnode_joined(f->h.c, 0));
    h_assert_succ(&f->h, exp, 3);
    h_assert_pred(&f->h, NULL); /* learned only from a notify */
    assert_true(f->h.updates > updates);
    assert_int_equal(h_find(&f->h, CHORD_MSG_PREDECESSOR_SET, &f->a.addr, &set), 0);
    assert_true(id_eq(&set.dst, &f->a.id));
    h_assert_peer_eq(&set.src, h_self(&f->h));
    assert_int_equal(chord_join(f->h.c, &f->boot), -EALREADY);
    assert_int_equal(chord_create(f->h.c), -EALREADY);
}

/* The retry is documented: "CHORD_JOIN_RETRY_MS: a join that got no
 * answer starts over". */
static void test_join_retries_at_join_retry_ms(void **state)
{
    struct jfix *f = *state;
    struct chord_msg find, again;

    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    await_find(f, 0, &find);
    uint64_t t0 = f->h.now;
    assert_true(h_await(&f->h, CHORD_MSG_PEER_FIND, &f->boot, CHORD_JOIN_RETRY_MS - 1, NULL) < 0);
    int at = h_await(&f->h, CHORD_MSG_PEER_FIND, &f->boot, 1, &again);
    if (at < 0) {
        at = h_await(&f->h, CHORD_MSG_PEER_FIND, &f->boot, 60000, &again);
        fail_msg("no new PEER_FIND at t0 + CHORD_JOIN_RETRY_MS (%u ms); the retry came at "
                 "t0 + %llu ms",
                 CHORD_JOIN_RETRY_MS, at < 0 ? 0ull : (unsigned long long)(f->h.now - t0));
    }
    assert_int_not_equal(again.request_id, find.request_id);
    assert_true(id_eq(&again.key, &find.key));
}

/* Whatever the retry period, an unanswered join starts over with a new
 * request; the answer to the new one joins, a late answer to the old one
 * is ignored. */
static void test_join_retries_until_answered(void **state)
{
    struct jfix *f = *state;
    struct chord_msg find, again, get;
    uint64_t bound = CHORD_JOIN_RETRY_MS + CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES;

    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    await_find(f, 0, &find);
    uint64_t t0 = f->h.now;
    assert_true(h_await(&f->h, CHORD_MSG_PEER_FIND, &f->boot, bound, &again) >= 0);
    assert_true(f->h.now - t0 >= CHORD_JOIN_RETRY_MS);
    assert_int_not_equal(again.request_id, find.request_id);
    assert_true(id_eq(&again.key, &find.key));
    assert_int_equal(again.flags, CHORD_MF_ANY);

    h_clear(&f->h);
    feed_found(f, &find, &f->b); /* late answer to the abandoned request */
    h_run(&f->h, 1);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL), 0);
    feed_found(f, &again, &f->a);
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, 1, &get) >= 0);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL), 1);
}

/* A PEER_FOUND naming the joining vnode itself (a stale incarnation) is
 * no successor: the join starts over. */
static void test_join_found_self_starts_over(void **state)
{
    struct jfix *f = *state;
    struct chord_msg find;
    uint64_t bound = CHORD_JOIN_RETRY_MS + CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES;

    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    await_find(f, 0, &find);
    h_clear(&f->h);
    feed_found(f, &find, h_self(&f->h));
    h_run(&f->h, 1);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL), 0);
    assert_false(chord_vnode_joined(f->h.c, 0));
    assert_true(h_await(&f->h, CHORD_MSG_PEER_FIND, &f->boot, bound, NULL) >= 0);
}

/* The successor found never answers: RPC_TRIES PREDECESSOR_GETs, one per
 * RPC timeout, then the join starts over at the bootstrap. */
static void test_join_silent_successor_starts_over(void **state)
{
    struct jfix *f = *state;
    struct chord_msg find;
    uint64_t bound = CHORD_JOIN_RETRY_MS + CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES;

    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    await_find(f, 0, &find);
    feed_found(f, &find, &f->a);
    h_clear(&f->h);
    for (unsigned i = 0; i < CHORD_RPC_TRIES; i++) {
        uint64_t before = f->h.now;
        assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr,
                            i ? CHORD_RPC_TIMEOUT_MS : 0, NULL) >= 0);
        if (i)
            assert_int_equal(f->h.now - before, CHORD_RPC_TIMEOUT_MS);
    }
    assert_true(h_await(&f->h, CHORD_MSG_PEER_FIND, &f->boot, bound, NULL) >= 0);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL), CHORD_RPC_TRIES);
    assert_false(chord_vnode_joined(f->h.c, 0));
}

/* A second chord_join while joining adds a bootstrap; attempts rotate. */
static void test_join_rotates_bootstraps(void **state)
{
    struct jfix *f = *state;
    struct addr boot2, bad = {0};
    struct chord_msg find;
    uint64_t bound = CHORD_JOIN_RETRY_MS + CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES;

    addr_v4(&boot2, 127, 9, 9, 10, 4000);
    assert_int_equal(chord_join(f->h.c, &bad), -EINVAL);
    assert_int_equal(chord_join(f->h.c, &f->boot), 0);
    assert_int_equal(chord_join(f->h.c, &boot2), 0);
    assert_true(h_await(&f->h, CHORD_MSG_PEER_FIND, NULL, 0, &find) >= 0);
    assert_true(h_await(&f->h, CHORD_MSG_PEER_FIND, NULL, bound, &find) >= 0);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PEER_FIND, &f->boot), 1);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PEER_FIND, &boot2), 1);
}

/* Every vnode of a joining node looks up its own id + 1. */
static void test_join_every_vnode(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct addr boot;
    struct chord_msg m;
    (void)state;

    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    cfg.vnodes = 3;
    h_init(&h, &cfg);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(h.c, &boot), 0);
    h_run(&h, 0);
    assert_int_equal(h_count(&h, CHORD_MSG_PEER_FIND, &boot), 3);
    for (unsigned v = 0; v < 3; v++) {
        struct id key;
        bool seen = false;
        id_add_pow2(&key, &h_vself(&h, v)->id, 0);
        for (int i = h_find(&h, CHORD_MSG_PEER_FIND, NULL, &m); i >= 0;
             i = h_find_from(&h, (size_t)i + 1, CHORD_MSG_PEER_FIND, NULL, &m))
            if (id_eq(&m.key, &key)) {
                seen = true;
                h_assert_peer_eq(&m.peer, h_vself(&h, v));
            }
        assert_true(seen);
    }
    h_release(&h);
}

static void test_create_alone(void **state)
{
    struct jfix *f = *state;
    const struct chord_peer *succ;
    struct id key;

    assert_int_equal(chord_create(f->h.c), 0);
    assert_true(chord_vnode_joined(f->h.c, 0));
    assert_int_equal(chord_vnode_successors(f->h.c, 0, &succ), 0);
    h_assert_pred(&f->h, NULL);
    h_id_off(&key, &h_self(&f->h)->id, 0x42);
    assert_int_equal(chord_vnode_for_key(f->h.c, &key), 0);
    assert_int_equal(chord_create(f->h.c), -EALREADY);
    assert_int_equal(chord_join(f->h.c, &f->boot), -EALREADY);
    h_run(&f->h, 10 * CHORD_STABILIZE_MS);
    assert_int_equal(f->h.nout, 0); /* alone, it has nobody to talk to */
}

/* ---- two and three nodes wired by hand --------------------------------- */

/* Asserts that every node's successor list is the others in ring order
 * and its predecessor the one before it. */
static void assert_ring(struct harness **hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct id *me = &h_self(hs[i])->id;
        struct chord_peer exp[H_NET_MAX];
        size_t k = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i)
                exp[k++] = *h_self(hs[j]);
        for (size_t a = 1; a < k; a++)
            for (size_t b = a; b > 0; b--) {
                struct id d1, d2;
                id_distance(&d1, me, &exp[b - 1].id);
                id_distance(&d2, me, &exp[b].id);
                if (id_cmp(&d1, &d2) <= 0)
                    break;
                struct chord_peer t = exp[b];
                exp[b] = exp[b - 1];
                exp[b - 1] = t;
            }
        print_message("  node %zu\n", i);
        assert_true(chord_vnode_joined(hs[i]->c, 0));
        h_assert_succ(hs[i], exp, k);
        h_assert_pred(hs[i], &exp[k - 1]);
    }
}

static void test_two_nodes(void **state)
{
    struct harness x, y;
    struct harness *hs[2] = {&x, &y};
    struct chord_config cfg;
    struct h_net net;
    (void)state;

    h_config(&cfg, 1);
    h_init(&x, &cfg);
    h_config(&cfg, 2);
    h_init(&y, &cfg);
    h_net_init(&net, hs, 2);
    assert_int_equal(chord_create(x.c), 0);
    assert_int_equal(chord_join(y.c, &x.cfg.self), 0);
    h_net_run(&net, 5000);
    assert_ring(hs, 2);
    h_release(&x);
    h_release(&y);
}

static void test_three_nodes(void **state)
{
    struct harness x, y, z;
    struct harness *hs[3] = {&x, &y, &z};
    struct chord_config cfg;
    struct h_net net;
    (void)state;

    h_config(&cfg, 1);
    h_init(&x, &cfg);
    h_config(&cfg, 2);
    h_init(&y, &cfg);
    h_config(&cfg, 3);
    h_init(&z, &cfg);
    h_net_init(&net, hs, 3);
    assert_int_equal(chord_create(x.c), 0);
    assert_int_equal(chord_join(y.c, &x.cfg.self), 0);
    h_net_run(&net, 2000);
    assert_int_equal(chord_join(z.c, &y.cfg.self), 0);
    h_net_run(&net, 10000);
    assert_ring(hs, 3);
    h_release(&x);
    h_release(&y);
    h_release(&z);
}

/* The extra vnodes of a node that created the ring join through the node
 * itself, and the three vnodes form a ring. */
static void test_create_with_vnodes(void **state)
{
    struct harness x;
    struct harness *hs[1] = {&x};
    struct chord_config cfg;
    struct h_net net;
    (void)state;

    h_config(&cfg, 1);
    cfg.vnodes = 3;
    h_init(&x, &cfg);
    h_net_init(&net, hs, 1);
    assert_int_equal(chord_create(x.c), 0);
    h_net_run(&net, 10000);
    for (unsigned v = 0; v < 3; v++) {
        const struct chord_peer *succ;
        struct chord_peer pred;
        print_message("  vnode %u\n", v);
        assert_true(chord_vnode_joined(x.c, v));
        assert_int_equal(chord_vnode_successors(x.c, v, &succ), 2);
        assert_true(chord_vnode_predecessor(x.c, v, &pred));
        /* Successors in ring order from v, the predecessor the last. */
        struct id d0, d1;
        id_distance(&d0, &h_vself(&x, v)->id, &succ[0].id);
        id_distance(&d1, &h_vself(&x, v)->id, &succ[1].id);
        assert_true(id_cmp(&d0, &d1) < 0);
        h_assert_peer_eq(&pred, &succ[1]);
    }
    h_release(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_join_sends_find_to_bootstrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_found_asks_successor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_takes_successor_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_retries_at_join_retry_ms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_retries_until_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_found_self_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_silent_successor_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_rotates_bootstraps, setup, teardown),
        cmocka_unit_test(test_join_every_vnode),
        cmocka_unit_test_setup_teardown(test_create_alone, setup, teardown),
        cmocka_unit_test(test_two_nodes),
        cmocka_unit_test(test_three_nodes),
        cmocka_unit_test(test_create_with_vnodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
