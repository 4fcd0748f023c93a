/* test_stabilize.c — stabilize (chord/ring.c) on one joined node, with
 * the successors played by hand.
 *
 * Zave's stabilize: ask the first successor for its predecessor and list;
 * reconcile our list from its list every time; if its predecessor lies
 * between us and it, ask that node, and adopt it only from its own reply.
 * A first successor that misses CHORD_SUSPECT_ROUNDS rounds is passed
 * over for the next one, which replaces it only by answering; the last
 * one is given up only after CHORD_LAST_SUCC_GRACE failed rounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

struct sfix {
    struct harness h;
    struct chord_peer x, a, b, c, d, behind;
};

static int setup_list(void **state, bool with_list, bool probes)
{
    struct sfix *f = calloc(1, sizeof(*f));
    struct chord_config cfg;
    struct addr boot;
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    if (probes)
        cfg.probe_ms = CHORD_PROBE_MS;
    h_init(&f->h, &cfg);
    h_peer(&f->h, 0x08, &f->x); /* between us and A */
    h_peer(&f->h, 0x10, &f->a);
    h_peer(&f->h, 0x20, &f->b);
    h_peer(&f->h, 0x30, &f->c);
    h_peer(&f->h, 0x40, &f->d);
    h_peer(&f->h, 0xf0, &f->behind);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(f->h.c, &boot), 0);
    struct chord_peer list[2] = {f->b, f->c};
    h_join(&f->h, &f->a, NULL, list, with_list ? 2 : 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_list(state, true, false);
}

static int setup_probes(void **state)
{
    return setup_list(state, true, true);
}

static int setup_alone_succ(void **state)
{
    return setup_list(state, false, false);
}

static int teardown(void **state)
{
    struct sfix *f = *state;
    h_release(&f->h);
    free(f);
    return 0;
}

static uint64_t period_max(const struct harness *h)
{
    return h->cfg.stabilize_ms + h->cfg.stabilize_ms / 10 + 1;
}

/* Feeds the PREDECESSOR_REPLY of `from` to request req. */
static void reply_state(struct sfix *f, const struct chord_msg *req, const struct chord_peer *from,
                        const struct chord_peer *pred, const struct chord_peer *list, size_t n)
{
    h_reply_state(&f->h, req, from, pred, list, n);
}

static void test_first_stabilize_soon_then_periodic(void **state)
{
    struct sfix *f = *state;
    struct chord_msg get;
    uint64_t stab = f->h.cfg.stabilize_ms;

    /* The first stabilize of a new member comes within a quarter period. */
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, stab / 4 + 1, &get) >= 0);
    assert_true(id_eq(&get.dst, &f->a.id));
    h_assert_peer_eq(&get.src, h_self(&f->h));
    struct chord_peer list[2] = {f->b, f->c};
    reply_state(f, &get, &f->a, h_self(&f->h), list, 2);

    /* Then once a period, +-10%. */
    for (int round = 0; round < 5; round++) {
        uint64_t t = f->h.now;
        h_clear(&f->h);
        assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL, period_max(&f->h), &get) >= 0);
        assert_true(f->h.now - t >= stab - stab / 10);
        assert_true(id_eq(&get.dst, &f->a.id));
        assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL), 1);
        reply_state(f, &get, &f->a, h_self(&f->h), list, 2);
    }
}

/* Only one stabilize is in flight: a slow successor is not flooded. */
static void test_one_stabilize_in_flight(void **state)
{
    struct sfix *f = *state;
    struct chord_msg get, again;

    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, period_max(&f->h), &get) >=
                0);
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES - 1);
    /* Only retransmissions of the same request. */
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL), CHORD_RPC_TRIES);
    for (int i = h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL, &again); i >= 0;
         i = h_find_from(&f->h, (size_t)i + 1, CHORD_MSG_PREDECESSOR_GET, NULL, &again))
        assert_int_equal(again.request_id, get.request_id);
}

/* The list is rebuilt from the successor's list on every stabilize, even
 * when that drops entries we had. Each reply is followed by a notify. */
static void test_reconciles_every_time(void **state)
{
    struct sfix *f = *state;
    struct chord_peer l1[2] = {f->b, f->c}, l2[2] = {f->c, f->d};
    struct chord_peer e1[3] = {f->a, f->b, f->c}, e2[3] = {f->a, f->c, f->d};
    struct chord_msg set;

    h_stabilize(&f->h, &f->a, h_self(&f->h), l1, 2);
    h_assert_succ(&f->h, e1, 3);
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_SET, &f->a.addr, &set) >= 0);
    assert_true(id_eq(&set.dst, &f->a.id));
    h_clear(&f->h);

    unsigned updates = f->h.updates;
    h_stabilize(&f->h, &f->a, h_self(&f->h), l2, 2);
    h_assert_succ(&f->h, e2, 3);
    assert_true(f->h.updates > updates);
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_SET, &f->a.addr, NULL) >= 0);
    h_clear(&f->h);

    h_stabilize(&f->h, &f->a, h_self(&f->h), NULL, 0);
    h_assert_succ(&f->h, &f->a, 1);

    /* The same list again changes nothing and calls no upcall. */
    updates = f->h.updates;
    h_stabilize(&f->h, &f->a, h_self(&f->h), NULL, 0);
    h_assert_succ(&f->h, &f->a, 1);
    assert_int_equal(f->h.updates, updates);
}

/* A's predecessor X lies between us and A: X is asked, not adopted; only
 * X's own reply makes it our first successor (and X is then notified). */
static void test_candidate_adopted_only_after_reply(void **state)
{
    struct sfix *f = *state;
    struct chord_peer la[2] = {f->b, f->c}, lx[3] = {f->a, f->b, f->c};
    struct chord_peer e_before[3] = {f->a, f->b, f->c}, e_after[4] = {f->x, f->a, f->b, f->c};
    struct chord_msg get, set;

    h_stabilize(&f->h, &f->a, &f->x, la, 2);
    h_assert_succ(&f->h, e_before, 3);
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->x.addr, &get) >= 0);
    assert_true(id_eq(&get.dst, &f->x.id));
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_SET, &f->x.addr), 0);
    h_clear(&f->h);

    /* Time passes without X's answer: still not adopted. */
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS - 1);
    h_assert_succ(&f->h, e_before, 3);

    reply_state(f, &get, &f->x, h_self(&f->h), lx, 3);
    h_assert_succ(&f->h, e_after, 4);
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_SET, &f->x.addr, &set) >= 0);
    assert_true(id_eq(&set.dst, &f->x.id));

    /* From now on stabilize asks X. */
    h_clear(&f->h);
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL, period_max(&f->h), &get) >= 0);
    assert_true(id_eq(&get.dst, &f->x.id));
}

/* A candidate that never answers is never adopted. */
static void test_silent_candidate_not_adopted(void **state)
{
    struct sfix *f = *state;
    struct chord_peer la[2] = {f->b, f->c}, exp[3] = {f->a, f->b, f->c};

    h_stabilize(&f->h, &f->a, &f->x, la, 2);
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->x.addr, NULL) >= 0);
    h_clear(&f->h);
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES + 1);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->x.addr), CHORD_RPC_TRIES - 1);
    h_assert_succ(&f->h, exp, 3);
}

/* A predecessor of A that is not between us and A is no candidate. */
static void test_candidate_outside_ignored(void **state)
{
    struct sfix *f = *state;
    struct chord_peer la[2] = {f->b, f->c};
    const struct chord_peer *preds[] = {h_self(&f->h), &f->behind, &f->a, &f->b, NULL};

    for (size_t i = 0; i < N_ELEMS(preds); i++) {
        print_message("  case %zu\n", i);
        h_clear(&f->h);
        h_stabilize(&f->h, &f->a, preds[i], la, 2);
        assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, NULL), 1); /* the stabilize */
    }
}

/* Waits for the next stabilize round to A and lets every try of it go
 * unanswered; returns with the clock at the request's final timeout. */
static void silent_round(struct sfix *f)
{
    struct chord_msg get, again;
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, period_max(&f->h), &get) >=
                0);
    for (unsigned i = 1; i < CHORD_RPC_TRIES; i++) {
        uint64_t t = f->h.now;
        assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, CHORD_RPC_TIMEOUT_MS,
                            &again) >= 0);
        assert_int_equal(f->h.now - t, CHORD_RPC_TIMEOUT_MS);
        assert_int_equal(again.request_id, get.request_id);
    }
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS);
}

/* A first successor that never answers (RPC_TRIES tries, RPC_TIMEOUT_MS
 * apart) for CHORD_SUSPECT_ROUNDS stabilizes in a row is passed over: the
 * next successor is asked at once, and its answer makes it first. The
 * silent one goes to long-term memory. */
static void test_silent_successor_passed_over(void **state)
{
    struct sfix *f = *state;
    struct chord_msg get;
    struct chord_peer lb[2] = {f->c, f->d}, exp[3] = {f->b, f->c, f->d}, mem[CHORD_MEMORY];
    struct chord_peer still[3] = {f->a, f->b, f->c};

    for (unsigned r = 0; r < CHORD_SUSPECT_ROUNDS; r++) {
        print_message("  silent round %u\n", r + 1);
        silent_round(f);
        if (r + 1 < CHORD_SUSPECT_ROUNDS) {
            assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->b.addr), 0);
            h_assert_succ(&f->h, still, 3);
        }
    }
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->b.addr, &get) >= 0);
    assert_true(id_eq(&get.dst, &f->b.id));
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr),
                     CHORD_SUSPECT_ROUNDS * CHORD_RPC_TRIES);
    /* Not dropped on suspicion alone: only B's answer replaces A. */
    h_assert_succ(&f->h, still, 3);

    reply_state(f, &get, &f->b, h_self(&f->h), lb, 2);
    h_assert_succ(&f->h, exp, 3);
    size_t n = chord_vnode_memory(f->h.c, 0, mem, CHORD_MEMORY);
    bool remembered = false;
    for (size_t i = 0; i < n; i++)
        remembered |= h_peer_eq(&mem[i], &f->a);
    assert_true(remembered);
}

/* A refused connection (chord_peer_unreachable) is proof that A is gone:
 * the request ends at once, without retries or suspicion rounds, the next
 * successor is asked right away and replaces A by answering. (Fingers:
 * test_lookup.c.) */
static void test_refused_successor_passed_over_at_once(void **state)
{
    struct sfix *f = *state;
    struct chord_msg get, getb;
    struct chord_peer lb[2] = {f->c, f->d}, exp[3] = {f->b, f->c, f->d};
    struct chord_peer still[3] = {f->a, f->b, f->c};

    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, period_max(&f->h), &get) >=
                0);
    /* A report about another address changes nothing. */
    chord_peer_unreachable(f->h.c, &f->d.addr);
    h_assert_succ(&f->h, still, 3);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->b.addr), 0);

    chord_peer_unreachable(f->h.c, &f->a.addr);
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->b.addr, &getb) >= 0);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr), 1);
    reply_state(f, &getb, &f->b, h_self(&f->h), lb, 2);
    h_assert_succ(&f->h, exp, 3);
    /* No retry of the ended request follows. */
    h_run(&f->h, CHORD_RPC_TIMEOUT_MS * 2);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr), 1);
}

/* A first successor that misses a round and then answers keeps its place,
 * and the missed round is forgotten. */
static void test_one_missed_round_forgiven(void **state)
{
    struct sfix *f = *state;
    struct chord_peer la[2] = {f->b, f->c}, exp[3] = {f->a, f->b, f->c};

    for (int k = 0; k < 3; k++) {
        for (unsigned r = 0; r + 1 < CHORD_SUSPECT_ROUNDS; r++)
            silent_round(f);
        h_stabilize(&f->h, &f->a, h_self(&f->h), la, 2);
        h_assert_succ(&f->h, exp, 3);
    }
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->b.addr), 0);
}

/* Runs until the only successor A is given up; returns how many
 * PREDECESSOR_GETs A had been sent by then. */
static size_t run_until_last_succ_dropped(struct sfix *f)
{
    const struct chord_peer *succ;
    size_t sent_before = 0;
    uint64_t limit = f->h.now + (uint64_t)(CHORD_LAST_SUCC_GRACE + CHORD_SUSPECT_ROUNDS + 2) *
                                    (CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES + period_max(&f->h));

    h_assert_succ(&f->h, &f->a, 1);
    while (chord_vnode_successors(f->h.c, 0, &succ) == 1) {
        assert_true(f->h.now < limit);
        h_assert_peer_eq(&succ[0], &f->a);
        sent_before = h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr);
        h_run(&f->h, 1);
    }
    print_message("  the last successor went after %zu requests (%zu rounds of %u tries)\n",
                  sent_before, sent_before / CHORD_RPC_TRIES, CHORD_RPC_TRIES);
    return sent_before;
}

/* The last successor stays through at least CHORD_LAST_SUCC_GRACE failed
 * stabilizations, and is given up in the end. */
static void test_last_successor_kept_through_grace(void **state)
{
    struct sfix *f = *state;
    const struct chord_peer *succ;
    size_t sent = run_until_last_succ_dropped(f);
    assert_true(sent >= CHORD_LAST_SUCC_GRACE * CHORD_RPC_TRIES);
    assert_int_equal(sent % CHORD_RPC_TRIES, 0);
    assert_int_equal(chord_vnode_successors(f->h.c, 0, &succ), 0);
}

/* chord.h: CHORD_LAST_SUCC_GRACE is the number of "failed stabilizes
 * before the last successor goes": exactly that many rounds. */
static void test_last_successor_dropped_after_grace(void **state)
{
    struct sfix *f = *state;
    size_t sent = run_until_last_succ_dropped(f);
    assert_int_equal(sent / CHORD_RPC_TRIES, CHORD_LAST_SUCC_GRACE);
}

/* A stabilize answer from A once A has left the list is ignored. */
static void test_stale_answer_ignored(void **state)
{
    struct sfix *f = *state;
    struct chord_peer la[2] = {f->b, f->c}, lx[2] = {f->a, f->b}, exp[3] = {f->x, f->a, f->b};
    struct chord_msg get_a, get_x;

    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, period_max(&f->h), &get_a) >=
                0);
    /* A names X as its predecessor; X answers and is adopted. */
    reply_state(f, &get_a, &f->a, &f->x, la, 2);
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->x.addr, &get_x) >= 0);
    reply_state(f, &get_x, &f->x, h_self(&f->h), lx, 2);
    h_assert_succ(&f->h, exp, 3);
    /* A duplicate of A's old answer changes nothing. */
    reply_state(f, &get_a, &f->a, h_self(&f->h), NULL, 0);
    h_assert_succ(&f->h, exp, 3);
}

/* ---- long-term memory probes ------------------------------------------ */

/* The next probe of the bootstrap (kept in long-term memory by
 * chord_join): a PEER_FIND for self + 1 to any vnode there. */
static void await_probe(struct sfix *f, struct chord_msg *find)
{
    struct addr boot;
    struct id key;
    h_bootstrap(&boot);
    assert_true(
        h_await(&f->h, CHORD_MSG_PEER_FIND, &boot,
                CHORD_PROBE_MS + CHORD_PROBE_MS / 10 + CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES,
                find) >= 0);
    id_add_pow2(&key, &h_self(&f->h)->id, 0);
    assert_true(id_eq(&find->key, &key));
    assert_int_equal(find->flags, CHORD_MF_ANY);
    h_assert_peer_eq(&find->peer, h_self(&f->h));
}

static void answer_probe(struct sfix *f, const struct chord_msg *find,
                         const struct chord_peer *succ)
{
    struct chord_msg m;
    struct chord_peer boot;
    struct addr ba;
    h_bootstrap(&ba);
    h_peer_at_addr(&f->h, 0x80, &ba, &boot);
    h_reply(&m, find, CHORD_MSG_PEER_FOUND, &boot);
    m.key = find->key;
    m.peer = *succ;
    m.has_peer = true;
    m.hops = 1;
    assert_int_equal(h_feed(&f->h, &m), 0);
}

/* The remembered node's ring knows a closer successor X (a ring split by
 * a partition): X is asked, and adopted from its own answer. */
static void test_probe_merges(void **state)
{
    struct sfix *f = *state;
    struct chord_msg find, get;
    struct chord_peer lx[2] = {f->a, f->b}, exp[3] = {f->x, f->a, f->b};
    struct chord_stats st;

    await_probe(f, &find);
    h_clear(&f->h);
    answer_probe(f, &find, &f->x);
    assert_true(h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->x.addr, 0, &get) >= 0);
    chord_get_stats(f->h.c, &st);
    assert_int_equal(st.merges, 1);
    reply_state(f, &get, &f->x, h_self(&f->h), lx, 2);
    h_assert_succ(&f->h, exp, 3);
}

/* A remembered node whose ring agrees with ours three times in a row is
 * no longer probed. */
static void test_probe_agreeing_forgotten(void **state)
{
    struct sfix *f = *state;
    struct chord_msg find;
    struct chord_peer mem[CHORD_MEMORY];

    assert_int_equal(chord_vnode_memory(f->h.c, 0, mem, CHORD_MEMORY), 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(chord_vnode_memory(f->h.c, 0, mem, CHORD_MEMORY), 1);
        await_probe(f, &find);
        answer_probe(f, &find, &f->a);
        h_run(&f->h, 0);
        /* Keep the successors alive meanwhile: a silent list would be
         * given up, and a vnode with no successor adopts what a probe
         * finds instead of counting an agreement. */
        struct chord_msg get;
        struct chord_peer rest[2] = {f->b, f->c};
        for (int k = h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, &get); k >= 0;
             k = h_find_from(&f->h, (size_t)k + 1, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, &get))
            reply_state(f, &get, &f->a, h_self(&f->h), rest, 2);
        h_clear(&f->h);
    }
    assert_int_equal(chord_vnode_memory(f->h.c, 0, mem, CHORD_MEMORY), 0);
    h_clear(&f->h);
    h_run(&f->h, 5 * CHORD_PROBE_MS);
    assert_int_equal(h_count(&f->h, CHORD_MSG_PEER_FIND, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_stabilize_soon_then_periodic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_stabilize_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconciles_every_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_candidate_adopted_only_after_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_candidate_not_adopted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_candidate_outside_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_successor_passed_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_missed_round_forgiven, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_successor_kept_through_grace, setup_alone_succ,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_last_successor_dropped_after_grace, setup_alone_succ,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stale_answer_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_successor_passed_over_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probe_merges, setup_probes, teardown),
        cmocka_unit_test_setup_teardown(test_probe_agreeing_forgotten, setup_probes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
