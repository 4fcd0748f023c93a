/* test_recover.c — recovery of a vnode whose successors all refuse
 * (chord/ring.c), with the peers played by hand.
 *
 * A node that restarts answers NO_SUCH_VNODE until its vnode has joined
 * again. Such a refusal comes back at the round-trip rate, so whatever a
 * vnode does next after one must wait for a stabilize period if it may
 * ask the same peers again: otherwise two nodes on a fast link (or on a
 * fake network with no latency, where the clock never moves on) spin.
 * Each test answers every request at the instant it is sent and counts
 * the PREDECESSOR_GETs of a fixed span of fake time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Requests answered at one instant beyond which the node is spinning. */
#define SPIN_MAX 200
#define SPAN_MS  10000u

struct rfix {
    struct harness h;
    struct chord_peer a, b, p; /* ring order: us, A, B, P */
};

static int setup(void **state)
{
    struct rfix *f = calloc(1, sizeof(*f));
    struct chord_config cfg;
    struct addr boot;
    struct chord_msg m;

    assert_non_null(f);
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    cfg.check_pred_ms = CHORD_CHECK_PRED_MS; /* a refused PING clears the predecessor */
    h_init(&f->h, &cfg);
    h_peer(&f->h, 0x40, &f->a);
    h_peer(&f->h, 0x80, &f->b);
    h_peer(&f->h, 0xc0, &f->p);
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
    struct rfix *f = *state;
    h_release(&f->h);
    free(f);
    return 0;
}

/* Plays every peer for SPAN_MS, answering each request the instant it is
 * sent: P (when p_lives) answers PREDECESSOR_GET with A as its
 * predecessor and (us, A, B) as its list, and PING with PONG; everyone
 * else refuses, as a node restarting does. Returns the PREDECESSOR_GETs
 * sent, and stops early, returning more than SPIN_MAX, when the node
 * sends that many requests at one instant. */
static size_t serve(struct rfix *f, bool p_lives)
{
    uint64_t end = f->h.now + SPAN_MS;
    size_t next = 0, gets = 0;

    for (;;) {
        unsigned at_once = 0;
        while (next < f->h.nout) {
            struct chord_msg req, rep;
            h_out_msg(&f->h, next, &req);
            struct chord_peer from = {.id = req.dst, .addr = f->h.out[next].to};
            next++;
            if (req.reply || req.type == CHORD_MSG_PREDECESSOR_SET)
                continue;
            if (req.type == CHORD_MSG_PREDECESSOR_GET)
                gets++;
            if (++at_once > SPIN_MAX) {
                print_message("  %u requests at t=%llu: spinning\n", at_once,
                              (unsigned long long)(f->h.now - H_T0));
                return gets;
            }
            if (p_lives && h_peer_eq(&from, &f->p) && req.type == CHORD_MSG_PREDECESSOR_GET) {
                struct chord_peer list[3] = {*h_self(&f->h), f->a, f->b};
                h_reply_state(&f->h, &req, &f->p, &f->a, list, 3);
            } else if (p_lives && h_peer_eq(&from, &f->p) && req.type == CHORD_MSG_PING) {
                h_reply(&rep, &req, CHORD_MSG_PONG, &f->p);
                assert_int_equal(h_feed(&f->h, &rep), 0);
            } else {
                h_reply(&rep, &req, CHORD_MSG_NO_SUCH_VNODE, &from);
                assert_int_equal(h_feed(&f->h, &rep), 0);
            }
        }
        if (f->h.now >= end)
            return gets;
        h_run(&f->h, 1);
    }
}

/* At most one PREDECESSOR_GET a stabilize period, after a first round
 * that may ask the whole list and the first recovery candidate at once. */
static size_t gets_max(const struct rfix *f)
{
    uint64_t period_min = f->h.cfg.stabilize_ms - f->h.cfg.stabilize_ms / 10;
    return 2 + 1 + SPAN_MS / period_min + 1;
}

/* A and B restart together, and P (our predecessor) with them: every
 * successor, and then every recovery candidate, refuses. Recovery goes on
 * trying them, but one a stabilize period, not at the round-trip rate
 * (the predecessor used to be asked again after every other candidate
 * refused, at once, for ever). */
static void test_all_refuse_asked_once_a_period(void **state)
{
    struct rfix *f = *state;
    size_t gets = serve(f, false);

    print_message("  %zu PREDECESSOR_GETs in %u ms (at most %zu)\n", gets, SPAN_MS, gets_max(f));
    assert_true(gets <= gets_max(f));
    /* It has not given up: the remembered successors are still asked. */
    assert_true(gets >= SPAN_MS / (2 * f->h.cfg.stabilize_ms));
    const struct chord_peer *succ;
    assert_int_equal(chord_vnode_successors(f->h.c, 0, &succ), 0);

    /* When A has joined again and answers, it is adopted within a round
     * of candidates. */
    struct chord_msg get;
    struct chord_peer la[2] = {f->b, f->p};
    int i = h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, 8 * f->h.cfg.stabilize_ms, &get);
    assert_true(i >= 0);
    h_reply_state(&f->h, &get, &f->a, NULL, la, 2);
    struct chord_peer exp[3] = {f->a, f->b, f->p};
    h_assert_succ(&f->h, exp, 3);
}

/* A and B restart; P lives and still names them. Recovery asks P, which
 * names A as closer; A refuses. Asking P again at once would get the same
 * answer and loop through A at the round-trip rate until P's own
 * stabilize dropped A. */
static void test_live_pred_naming_refuser_not_a_loop(void **state)
{
    struct rfix *f = *state;
    size_t gets = serve(f, true);

    print_message("  %zu PREDECESSOR_GETs in %u ms (at most %zu)\n", gets, SPAN_MS,
                  2 * gets_max(f));
    /* Each period may ask P and then the node P names. */
    assert_true(gets <= 2 * gets_max(f));
    h_assert_pred(&f->h, &f->p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_refuse_asked_once_a_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_pred_naming_refuser_not_a_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
