/* test_notify.c — notify (PREDECESSOR_SET) and check-predecessor
 * (chord/ring.c) on one node.
 *
 * Zave's rectify: a notifier becomes the predecessor if there is none
 * (check-predecessor found the old one dead) or it lies between the
 * predecessor and us; anything else is ignored. Each change calls the
 * update upcall once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

struct nfix {
    struct harness h;
    struct chord_peer a, b;
};

static int setup(void **state)
{
    struct nfix *f = calloc(1, sizeof(*f));
    struct chord_config cfg;
    struct addr boot;
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    cfg.check_pred_ms = CHORD_CHECK_PRED_MS;
    h_init(&f->h, &cfg);
    h_peer(&f->h, 0x10, &f->a);
    h_peer(&f->h, 0x20, &f->b);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(f->h.c, &boot), 0);
    h_join(&f->h, &f->a, NULL, &f->b, 1);
    h_run(&f->h, 0); /* reports the join's update upcall */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct nfix *f = *state;
    h_release(&f->h);
    free(f);
    return 0;
}

static void notify_from(struct harness *h, const struct chord_peer *from)
{
    struct chord_msg m;
    h_msg(h, &m, CHORD_MSG_PREDECESSOR_SET, from);
    assert_int_equal(h_feed(h, &m), 0);
}

static uint64_t check_period_max(const struct harness *h)
{
    return h->cfg.check_pred_ms + h->cfg.check_pred_ms / 10 + 1;
}

/* A sequence of notifies, each with the predecessor expected after it and
 * whether the update upcall ran. Offsets as in harness.h; 0x00 is a peer
 * claiming the node's own id. */
static void test_notify_rule(void **state)
{
    static const struct {
        uint8_t from;
        uint8_t pred;
        bool update;
    } steps[] = {
        {0xe0, 0xe0, true},  /* no predecessor: take it */
        {0xe0, 0xe0, false}, /* the same again: nothing changes */
        {0xd0, 0xe0, false}, /* before the predecessor */
        {0x10, 0xe0, false}, /* our successor, after us */
        {0x80, 0xe0, false}, /* across the ring */
        {0xf0, 0xf0, true},  /* between predecessor and us */
        {0xe8, 0xf0, false}, /* before the new predecessor */
        {0xff, 0xff, true},  /* closer still */
        {0x00, 0xff, false}, /* claims our own id */
    };
    struct nfix *f = *state;

    h_assert_pred(&f->h, NULL);
    for (size_t i = 0; i < N_ELEMS(steps); i++) {
        struct chord_peer from, pred;
        unsigned updates = f->h.updates;
        print_message("  step %zu: notify from %#x\n", i, steps[i].from);
        h_peer(&f->h, steps[i].from, &from);
        h_peer(&f->h, steps[i].pred, &pred);
        h_clear(&f->h);
        notify_from(&f->h, &from);
        h_assert_pred(&f->h, &pred);
        assert_int_equal(f->h.updates - updates, steps[i].update ? 1 : 0);
        /* A notify is never answered (nor is anything else sent here). */
        assert_int_equal(f->h.nout, 0);
    }
}

static void test_check_pred_pong_keeps(void **state)
{
    struct nfix *f = *state;
    struct chord_peer p;
    struct chord_msg ping, pong;

    h_peer(&f->h, 0xf0, &p);
    notify_from(&f->h, &p);
    for (int round = 0; round < 3; round++) {
        h_clear(&f->h);
        assert_true(h_await(&f->h, CHORD_MSG_PING, &p.addr, check_period_max(&f->h), &ping) >= 0);
        assert_true(id_eq(&ping.dst, &p.id));
        h_assert_peer_eq(&ping.src, h_self(&f->h));
        h_reply(&pong, &ping, CHORD_MSG_PONG, &p);
        assert_int_equal(h_feed(&f->h, &pong), 0);
        h_assert_pred(&f->h, &p);
    }
    /* Well past the retries of the last ping: still there. */
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES);
    h_assert_pred(&f->h, &p);
}

/* A predecessor that misses RPC_TRIES pings is cleared (one update
 * upcall); then even a notifier farther away is taken. */
static void test_check_pred_timeout_clears(void **state)
{
    struct nfix *f = *state;
    struct chord_peer p, worse;
    struct chord_msg ping;

    h_peer(&f->h, 0xf0, &p);
    h_peer(&f->h, 0xc0, &worse);
    notify_from(&f->h, &p);
    assert_true(h_await(&f->h, CHORD_MSG_PING, &p.addr, check_period_max(&f->h), &ping) >= 0);
    uint64_t t = f->h.now;
    unsigned updates = f->h.updates;
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES - 1);
    h_assert_pred(&f->h, &p);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PING, &p.addr), CHORD_RPC_TRIES);
    h_run(&f->h, 1);
    assert_int_equal(f->h.now - t, CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES);
    h_assert_pred(&f->h, NULL);
    assert_int_equal(f->h.updates - updates, 1);

    notify_from(&f->h, &worse);
    h_assert_pred(&f->h, &worse);
    assert_int_equal(f->h.updates - updates, 2);
}

/* A PONG from someone else does not keep a dead predecessor. */
static void test_check_pred_pong_from_other_ignored(void **state)
{
    struct nfix *f = *state;
    struct chord_peer p, other;
    struct chord_msg ping, pong;

    h_peer(&f->h, 0xf0, &p);
    h_peer(&f->h, 0xe0, &other);
    notify_from(&f->h, &p);
    assert_true(h_await(&f->h, CHORD_MSG_PING, &p.addr, check_period_max(&f->h), &ping) >= 0);
    h_reply(&pong, &ping, CHORD_MSG_PONG, &other);
    assert_int_equal(h_feed(&f->h, &pong), 0);
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES);
    h_assert_pred(&f->h, NULL);
}

/* A vnode alone in its ring takes its first notifier as predecessor, and
 * as successor once it has heard from it (Zave: never adopt unheard). */
static void test_alone_adopts_notifier(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct chord_peer a;
    struct chord_msg get, rep, set;
    (void)state;

    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    h_init(&h, &cfg);
    assert_int_equal(chord_create(h.c), 0);
    h_peer(&h, 0x40, &a);
    notify_from(&h, &a);
    h_assert_pred(&h, &a);
    h_assert_succ(&h, NULL, 0);
    assert_true(h_find(&h, CHORD_MSG_PREDECESSOR_GET, &a.addr, &get) >= 0);
    assert_true(id_eq(&get.dst, &a.id));

    h_reply(&rep, &get, CHORD_MSG_PREDECESSOR_REPLY, &a);
    rep.has_peer = true;
    rep.peer = *h_self(&h);
    rep.npeers = 1;
    rep.peers[0] = *h_self(&h); /* a two-node ring: A's successor is us */
    h_clear(&h);
    assert_int_equal(h_feed(&h, &rep), 0);
    h_assert_succ(&h, &a, 1);
    assert_true(h_find(&h, CHORD_MSG_PREDECESSOR_SET, &a.addr, &set) >= 0);
    assert_true(id_eq(&set.dst, &a.id));
    h_release(&h);
}

/* Notifies to a vnode this node does not host, or before it joined, are
 * dropped without an answer. */
static void test_notify_not_for_us(void **state)
{
    struct nfix *f = *state;
    struct chord_peer p;
    struct chord_msg m;

    h_peer(&f->h, 0xf0, &p);
    h_msg(&f->h, &m, CHORD_MSG_PREDECESSOR_SET, &p);
    h_id_off(&m.dst, &h_self(&f->h)->id, 0x01);
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, &m), 0);
    h_assert_pred(&f->h, NULL);
    assert_int_equal(f->h.nout, 0);

    struct harness j;
    struct chord_config cfg;
    struct addr boot;
    h_config(&cfg, 2);
    h_config_quiet(&cfg);
    h_init(&j, &cfg);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(j.c, &boot), 0);
    h_run(&j, 0);
    h_clear(&j);
    h_msg(&j, &m, CHORD_MSG_PREDECESSOR_SET, &p);
    assert_int_equal(h_feed(&j, &m), 0);
    assert_false(chord_vnode_predecessor(j.c, 0, &p));
    assert_int_equal(j.nout, 0);
    h_release(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_pred_pong_keeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_pred_timeout_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_pred_pong_from_other_ignored, setup, teardown),
        cmocka_unit_test(test_alone_adopts_notifier),
        cmocka_unit_test_setup_teardown(test_notify_not_for_us, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
