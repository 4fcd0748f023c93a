/* test_leave.c — voluntary leave (chord/ring.c ring_start_leave, on_leave)
 * on one node, and in a three-node ring wired by hand.
 *
 * A leaving vnode sends LEAVE, carrying its predecessor and successor
 * list, to its predecessor and its successor, and has left once both
 * acknowledged or timed out. A vnode receiving LEAVE from a successor
 * splices in the leaver's list; from its predecessor, it takes the
 * leaver's predecessor.
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

struct lfix {
    struct harness h;
    struct chord_peer q, p, a, b, c, d;
};

static int setup(void **state)
{
    struct lfix *f = calloc(1, sizeof(*f));
    struct chord_config cfg;
    struct addr boot;
    struct chord_msg m;
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    h_init(&f->h, &cfg);
    h_peer(&f->h, 0xe0, &f->q);
    h_peer(&f->h, 0xf0, &f->p);
    h_peer(&f->h, 0x10, &f->a);
    h_peer(&f->h, 0x20, &f->b);
    h_peer(&f->h, 0x30, &f->c);
    h_peer(&f->h, 0x40, &f->d);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(f->h.c, &boot), 0);
    h_join(&f->h, &f->a, NULL, &f->b, 1);
    h_msg(&f->h, &m, CHORD_MSG_PREDECESSOR_SET, &f->p);
    assert_int_equal(h_feed(&f->h, &m), 0);
    h_assert_pred(&f->h, &f->p);
    h_run(&f->h, 0);
    h_clear(&f->h);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct lfix *f = *state;
    h_release(&f->h);
    free(f);
    return 0;
}

static void ack(struct harness *h, const struct chord_msg *leave, const struct chord_peer *from)
{
    struct chord_msg m;
    h_reply(&m, leave, CHORD_MSG_LEAVE_ACK, from);
    assert_int_equal(h_feed(h, &m), 0);
}

static void check_leave_msg(const struct lfix *f, const struct chord_msg *m,
                            const struct chord_peer *to)
{
    assert_false(m->reply);
    assert_true(id_eq(&m->dst, &to->id));
    h_assert_peer_eq(&m->src, h_self(&f->h));
    assert_true(m->has_peer);
    h_assert_peer_eq(&m->peer, &f->p);
    assert_int_equal(m->npeers, 2);
    h_assert_peer_eq(&m->peers[0], &f->a);
    h_assert_peer_eq(&m->peers[1], &f->b);
}

static void test_leave_tells_both_neighbours(void **state)
{
    struct lfix *f = *state;
    struct chord_msg lp, la;

    assert_false(chord_has_left(f->h.c));
    chord_leave(f->h.c);
    h_run(&f->h, 0);
    assert_int_equal(h_count(&f->h, CHORD_MSG_LEAVE, NULL), 2);
    assert_true(h_find(&f->h, CHORD_MSG_LEAVE, &f->p.addr, &lp) >= 0);
    assert_true(h_find(&f->h, CHORD_MSG_LEAVE, &f->a.addr, &la) >= 0);
    check_leave_msg(f, &lp, &f->p);
    check_leave_msg(f, &la, &f->a);
    assert_false(chord_has_left(f->h.c));

    /* An acknowledgement from someone not asked counts for nothing. */
    ack(&f->h, &la, &f->b);
    ack(&f->h, &lp, &f->p);
    assert_false(chord_has_left(f->h.c));
    ack(&f->h, &la, &f->a);
    assert_true(chord_has_left(f->h.c));
}

static void test_leave_without_acks_times_out(void **state)
{
    struct lfix *f = *state;
    uint64_t all = (uint64_t)CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES;

    chord_leave(f->h.c);
    h_run(&f->h, all - 1);
    assert_false(chord_has_left(f->h.c));
    assert_int_equal(h_count(&f->h, CHORD_MSG_LEAVE, &f->p.addr), CHORD_RPC_TRIES);
    assert_int_equal(h_count(&f->h, CHORD_MSG_LEAVE, &f->a.addr), CHORD_RPC_TRIES);
    h_run(&f->h, 1);
    assert_true(chord_has_left(f->h.c));
}

static void test_leave_one_ack_one_timeout(void **state)
{
    struct lfix *f = *state;
    struct chord_msg la;

    chord_leave(f->h.c);
    h_run(&f->h, 0);
    assert_true(h_find(&f->h, CHORD_MSG_LEAVE, &f->a.addr, &la) >= 0);
    ack(&f->h, &la, &f->a);
    assert_false(chord_has_left(f->h.c));
    h_run(&f->h, (uint64_t)CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES);
    assert_true(chord_has_left(f->h.c));
}

/* Until it has left, a leaving node refuses new work (NO_SUCH_VNODE), so
 * that nobody joins before it or stabilizes on it; then it is silent. */
static void test_leaving_node_refuses_then_silent(void **state)
{
    struct lfix *f = *state;
    struct chord_msg ping, get, la, lp, rep;

    chord_leave(f->h.c);
    h_run(&f->h, 0);
    assert_true(h_find(&f->h, CHORD_MSG_LEAVE, &f->a.addr, &la) >= 0);
    assert_true(h_find(&f->h, CHORD_MSG_LEAVE, &f->p.addr, &lp) >= 0);
    h_clear(&f->h);
    h_msg(&f->h, &ping, CHORD_MSG_PING, &f->p);
    assert_int_equal(h_feed(&f->h, &ping), 0);
    assert_true(h_find(&f->h, CHORD_MSG_NO_SUCH_VNODE, &f->p.addr, &rep) >= 0);
    assert_int_equal(rep.request_id, ping.request_id);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PONG, NULL), 0);
    h_msg(&f->h, &get, CHORD_MSG_PREDECESSOR_GET, &f->p);
    assert_int_equal(h_feed(&f->h, &get), 0);
    assert_true(h_find(&f->h, CHORD_MSG_NO_SUCH_VNODE, &f->p.addr, &rep) >= 0);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_REPLY, NULL), 0);

    ack(&f->h, &la, &f->a);
    ack(&f->h, &lp, &f->p);
    assert_true(chord_has_left(f->h.c));
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, &ping), 0);
    assert_int_equal(h_feed(&f->h, &get), 0);
    h_run(&f->h, 10000);
    assert_int_equal(f->h.nout, 0);
}

static void test_leave_alone(void **state)
{
    struct harness h;
    struct chord_config cfg;
    (void)state;
    h_config(&cfg, 1);
    h_init(&h, &cfg);
    assert_int_equal(chord_create(h.c), 0);
    chord_leave(h.c);
    assert_true(chord_has_left(h.c));
    assert_int_equal(h.nout, 0);
    h_release(&h);
}

/* In a two-node ring the predecessor is the successor: one LEAVE. */
static void test_leave_two_node_ring(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct addr boot;
    struct chord_msg m;
    (void)state;

    h_config(&cfg, 2);
    h_config_quiet(&cfg);
    h_init(&h, &cfg);
    struct chord_peer a;
    h_peer(&h, 0x80, &a);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(h.c, &boot), 0);
    h_join(&h, &a, NULL, NULL, 0);
    h_msg(&h, &m, CHORD_MSG_PREDECESSOR_SET, &a);
    assert_int_equal(h_feed(&h, &m), 0);
    h_clear(&h);
    chord_leave(h.c);
    h_run(&h, 0);
    assert_int_equal(h_count(&h, CHORD_MSG_LEAVE, NULL), 1);
    assert_true(h_find(&h, CHORD_MSG_LEAVE, &a.addr, &m) >= 0);
    ack(&h, &m, &a);
    assert_true(chord_has_left(h.c));
    h_release(&h);
}

/* Lookups in flight end with -ECANCELED; no new ones or routes start. */
static void test_leave_cancels_lookups(void **state)
{
    struct lfix *f = *state;
    struct id key;
    uint64_t handle;

    h_id_off(&key, &h_self(&f->h)->id, 0x80);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    chord_leave(f->h.c);
    assert_int_equal(f->h.ndone, 0);
    h_run(&f->h, 0);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, -ECANCELED);
    assert_int_equal(h_lookup(&f->h, &key, &handle), -EAGAIN);
    assert_int_equal(h_route(&f->h, &key, 7, "x", 1), -EAGAIN);
}

/* A cancelled result names the key it was for, as every other result
 * does (lookup_answer and lookup_fail both set res.key). */
static void test_leave_cancelled_result_names_key(void **state)
{
    struct lfix *f = *state;
    struct id key;
    uint64_t handle;

    h_id_off(&key, &h_self(&f->h)->id, 0x80);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    chord_leave(f->h.c);
    h_run(&f->h, 0);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, -ECANCELED);
    assert_true(id_eq(&d->res.key, &key));
}

/* ---- receiving LEAVE --------------------------------------------------- */

static void feed_leave(struct lfix *f, const struct chord_peer *from, const struct chord_peer *pred,
                       const struct chord_peer *list, size_t n, struct chord_msg *out)
{
    h_msg(&f->h, out, CHORD_MSG_LEAVE, from);
    out->request_id = 0x1ea5e;
    if (pred) {
        out->has_peer = true;
        out->peer = *pred;
    }
    out->npeers = (uint8_t)n;
    if (n)
        memcpy(out->peers, list, n * sizeof(*list));
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, out), 0);
}

static void check_ack(const struct lfix *f, const struct chord_msg *leave,
                      const struct chord_peer *to)
{
    struct chord_msg a;
    assert_true(h_find(&f->h, CHORD_MSG_LEAVE_ACK, &to->addr, &a) >= 0);
    assert_true(a.reply);
    assert_int_equal(a.request_id, leave->request_id);
    assert_true(id_eq(&a.dst, &to->id));
    h_assert_peer_eq(&a.src, h_self(&f->h));
}

static void test_leave_from_successor(void **state)
{
    struct lfix *f = *state;
    struct chord_peer la[2] = {f->b, f->c}, exp[2] = {f->b, f->c};
    struct chord_msg m;
    unsigned updates = f->h.updates;

    feed_leave(f, &f->a, h_self(&f->h), la, 2, &m);
    h_assert_succ(&f->h, exp, 2);
    h_assert_pred(&f->h, &f->p);
    check_ack(f, &m, &f->a);
    assert_true(f->h.updates > updates);
    /* The next stabilize goes to the new first successor. */
    h_clear(&f->h);
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL, 2 * CHORD_STABILIZE_MS, &m) >= 0);
    assert_true(id_eq(&m.dst, &f->b.id));
}

static void test_leave_from_later_successor(void **state)
{
    struct lfix *f = *state;
    struct chord_peer lb[2] = {f->c, f->d}, exp[3] = {f->a, f->c, f->d};
    struct chord_msg m;

    feed_leave(f, &f->b, &f->a, lb, 2, &m);
    h_assert_succ(&f->h, exp, 3);
    check_ack(f, &m, &f->b);
}

static void test_leave_from_predecessor(void **state)
{
    struct lfix *f = *state;
    struct chord_peer lp[2] = {*h_self(&f->h), f->a}, exp[2] = {f->a, f->b};
    struct chord_msg m;
    unsigned updates = f->h.updates;

    feed_leave(f, &f->p, &f->q, lp, 2, &m);
    h_assert_pred(&f->h, &f->q);
    h_assert_succ(&f->h, exp, 2);
    check_ack(f, &m, &f->p);
    assert_int_equal(f->h.updates - updates, 1);
}

static void test_leave_from_predecessor_without_one(void **state)
{
    struct lfix *f = *state;
    struct chord_peer lp[1] = {*h_self(&f->h)};
    struct chord_msg m;

    feed_leave(f, &f->p, NULL, lp, 1, &m);
    h_assert_pred(&f->h, NULL);
    check_ack(f, &m, &f->p);
}

/* A LEAVE from a node that is neither neighbour changes nothing, and is
 * still acknowledged so the leaver need not wait. */
static void test_leave_from_stranger(void **state)
{
    struct lfix *f = *state;
    struct chord_peer x, lx[1] = {f->d}, exp[2] = {f->a, f->b};
    struct chord_msg m;

    h_peer(&f->h, 0x80, &x);
    unsigned updates = f->h.updates;
    feed_leave(f, &x, &f->c, lx, 1, &m);
    h_assert_succ(&f->h, exp, 2);
    h_assert_pred(&f->h, &f->p);
    check_ack(f, &m, &x);
    assert_int_equal(f->h.updates, updates);
}

/* The successor of a two-node ring leaves: we are alone again. */
static void test_leave_leaves_us_alone(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct addr boot;
    struct chord_msg m;
    struct chord_peer a;
    (void)state;

    h_config(&cfg, 2);
    h_config_quiet(&cfg);
    h_init(&h, &cfg);
    h_peer(&h, 0x80, &a);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(h.c, &boot), 0);
    h_join(&h, &a, NULL, NULL, 0);
    h_msg(&h, &m, CHORD_MSG_PREDECESSOR_SET, &a);
    assert_int_equal(h_feed(&h, &m), 0);
    h_msg(&h, &m, CHORD_MSG_LEAVE, &a);
    m.has_peer = true;
    m.peer = *h_self(&h);
    m.npeers = 1;
    m.peers[0] = *h_self(&h);
    assert_int_equal(h_feed(&h, &m), 0);
    h_assert_succ(&h, NULL, 0);
    h_assert_pred(&h, NULL);
    assert_true(chord_vnode_joined(h.c, 0));
    h_release(&h);
}

/* Three nodes wired by hand; the middle one leaves; the others close the
 * ring around it without waiting for any timeout. */
static void test_three_nodes_one_leaves(void **state)
{
    struct harness n[3];
    struct harness *hs[3] = {&n[0], &n[1], &n[2]};
    struct chord_config cfg;
    struct h_net net;
    (void)state;

    for (int i = 0; i < 3; i++) {
        h_config(&cfg, (uint8_t)(i + 1));
        h_init(&n[i], &cfg);
    }
    h_net_init(&net, hs, 3);
    assert_int_equal(chord_create(n[0].c), 0);
    assert_int_equal(chord_join(n[1].c, &n[0].cfg.self), 0);
    assert_int_equal(chord_join(n[2].c, &n[0].cfg.self), 0);
    h_net_run(&net, 10000);

    /* Whoever it is, let node 1 leave; find its neighbours. */
    const struct chord_peer *s1;
    struct chord_peer p1;
    assert_int_equal(chord_vnode_successors(n[1].c, 0, &s1), 2);
    assert_true(chord_vnode_predecessor(n[1].c, 0, &p1));
    chord_leave(n[1].c);
    h_net_flush(&net);
    assert_true(chord_has_left(n[1].c));
    net.down[1] = true;

    for (int i = 0; i < 3; i += 2) {
        const struct chord_peer *s;
        struct chord_peer p;
        const struct chord_peer *other = h_self(&n[2 - i]);
        print_message("  node %d\n", i);
        assert_int_equal(chord_vnode_successors(n[i].c, 0, &s), 1);
        h_assert_peer_eq(&s[0], other);
        assert_true(chord_vnode_predecessor(n[i].c, 0, &p));
        h_assert_peer_eq(&p, other);
    }
    h_net_run(&net, 10000);
    for (int i = 0; i < 3; i += 2) {
        const struct chord_peer *s;
        assert_int_equal(chord_vnode_successors(n[i].c, 0, &s), 1);
        h_assert_peer_eq(&s[0], h_self(&n[2 - i]));
    }
    for (int i = 0; i < 3; i++)
        h_release(&n[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leave_tells_both_neighbours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_without_acks_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_one_ack_one_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaving_node_refuses_then_silent, setup, teardown),
        cmocka_unit_test(test_leave_alone),
        cmocka_unit_test(test_leave_two_node_ring),
        cmocka_unit_test_setup_teardown(test_leave_cancels_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_cancelled_result_names_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_from_successor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_from_later_successor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_from_predecessor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_from_predecessor_without_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_from_stranger, setup, teardown),
        cmocka_unit_test(test_leave_leaves_us_alone),
        cmocka_unit_test(test_three_nodes_one_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
