/* test_lookup.c — lookups and routed messages (chord/lookup.c) on one
 * node, with the rest of the ring played by hand.
 *
 * The node N sits at offset 0 with predecessor P (0xf0) and successors
 * A, B, C (0x10, 0x20, 0x30); other peers are placed further round the
 * ring. Lookups go recursively (PEER_FIND with reply-to N), fall back to
 * asking each hop (NEXT_HOP) after CHORD_LOOKUP_RECURSIVE_MS, and report
 * through lookup_done at a tick, never inside chord_lookup.
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

struct kfix {
    struct harness h;
    struct chord_peer p, a, b, c, d, e, f, r, z;
};

static int setup_cfg(void **state, uint32_t lookup_max_ms)
{
    struct kfix *f = calloc(1, sizeof(*f));
    struct chord_config cfg;
    struct addr boot;
    struct chord_msg m;
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    if (lookup_max_ms)
        cfg.lookup_max_ms = lookup_max_ms;
    /* Keep stabilize out of the way of the timing checks. */
    cfg.stabilize_ms = 3600u * 1000u;
    h_init(&f->h, &cfg);
    h_peer(&f->h, 0xf0, &f->p);
    h_peer(&f->h, 0x10, &f->a);
    h_peer(&f->h, 0x20, &f->b);
    h_peer(&f->h, 0x30, &f->c);
    h_peer(&f->h, 0x50, &f->d);
    h_peer(&f->h, 0x60, &f->e);
    h_peer(&f->h, 0x90, &f->f);
    h_peer(&f->h, 0xa0, &f->r); /* origin of lookups passing through */
    h_peer(&f->h, 0xc0, &f->z); /* the hop before us on their way */
    h_bootstrap(&boot);
    assert_int_equal(chord_join(f->h.c, &boot), 0);
    struct chord_peer list[2] = {f->b, f->c};
    h_join(&f->h, &f->a, NULL, list, 2);
    h_msg(&f->h, &m, CHORD_MSG_PREDECESSOR_SET, &f->p);
    assert_int_equal(h_feed(&f->h, &m), 0);
    h_run(&f->h, 0);
    h_clear(&f->h);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_cfg(state, 0);
}

static int setup_short_max(void **state)
{
    return setup_cfg(state, 3000);
}

static int teardown(void **state)
{
    struct kfix *f = *state;
    h_release(&f->h);
    free(f);
    return 0;
}

static void key_at(const struct kfix *f, uint8_t off, struct id *key)
{
    h_id_off(key, &h_self(&f->h)->id, off);
}

static void feed_found(struct kfix *f, uint64_t reqid, const struct id *key,
                       const struct chord_peer *succ, uint16_t hops)
{
    struct chord_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHORD_MSG_PEER_FOUND;
    m.reply = true;
    m.request_id = reqid;
    m.dst = h_self(&f->h)->id;
    m.src = f->z; /* whoever answered at the end of the path */
    m.key = *key;
    m.peer = *succ;
    m.has_peer = true;
    m.hops = hops;
    assert_int_equal(h_feed(&f->h, &m), 0);
}

static void feed_next_hop_reply(struct kfix *f, const struct chord_msg *req,
                                const struct chord_peer *from, bool done,
                                const struct chord_peer *peers, size_t n)
{
    struct chord_msg m;
    h_reply(&m, req, CHORD_MSG_NEXT_HOP_REPLY, from);
    m.done = done;
    m.npeers = (uint8_t)n;
    if (n)
        memcpy(m.peers, peers, n * sizeof(*peers));
    assert_int_equal(h_feed(&f->h, &m), 0);
}

/* ---- lookups from this node -------------------------------------------- */

/* A key in (N, A] is answered from the table: hops 0, at the next tick. */
static void test_lookup_owned_by_successor(void **state)
{
    static const uint8_t keys[] = {0x01, 0x08, 0x10};
    struct kfix *f = *state;

    for (size_t i = 0; i < N_ELEMS(keys); i++) {
        struct id key;
        uint64_t handle;
        print_message("  key at %#x\n", keys[i]);
        key_at(f, keys[i], &key);
        size_t ndone = f->h.ndone;
        assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
        assert_int_equal(f->h.done_in_call, 0);
        assert_int_equal(f->h.ndone, ndone);
        assert_int_equal(f->h.nout, 0);
        h_run(&f->h, 0);
        const struct h_done *d = h_done_for(&f->h, handle);
        assert_non_null(d);
        assert_int_equal(d->res.status, 0);
        assert_true(id_eq(&d->res.key, &key));
        h_assert_peer_eq(&d->res.succ, &f->a);
        assert_int_equal(d->res.hops, 0);
        assert_false(d->res.iterative);
    }
    struct chord_stats st;
    chord_get_stats(f->h.c, &st);
    assert_int_equal(st.lookups_started, N_ELEMS(keys));
    assert_int_equal(st.lookups_ok, N_ELEMS(keys));
}

static void test_lookup_alone(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct id key;
    uint64_t handle;
    (void)state;

    h_config(&cfg, 1);
    h_init(&h, &cfg);
    assert_int_equal(h_lookup(&h, &h_self(&h)->id, &handle), -EAGAIN);
    assert_int_equal(chord_create(h.c), 0);
    h_id_off(&key, &h_self(&h)->id, 0x42);
    assert_int_equal(h_lookup(&h, &key, &handle), 0);
    assert_int_equal(h.ndone, 0);
    h_run(&h, 0);
    assert_int_equal(h.ndone, 1);
    assert_int_equal(h.done[0].handle, handle);
    assert_int_equal(h.done[0].res.status, 0);
    h_assert_peer_eq(&h.done[0].res.succ, h_self(&h));
    assert_int_equal(h.done_in_call, 0);
    h_release(&h);
}

/* A far key goes to the closest preceding successor, reply-to N. */
static void test_lookup_far_sends_find(void **state)
{
    static const struct {
        uint8_t key, next;
    } cases[] = {{0x18, 0x10}, {0x20, 0x10}, {0x28, 0x20},
                 {0x31, 0x30}, {0x80, 0x30}, {0xff, 0x30}};
    struct kfix *f = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct id key;
        struct chord_peer next;
        struct chord_msg find;
        uint64_t handle;
        print_message("  key at %#x\n", cases[i].key);
        key_at(f, cases[i].key, &key);
        h_peer(&f->h, cases[i].next, &next);
        h_clear(&f->h);
        assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
        assert_int_equal(h_count(&f->h, CHORD_MSG_PEER_FIND, NULL), 1);
        assert_true(h_find(&f->h, CHORD_MSG_PEER_FIND, &next.addr, &find) >= 0);
        assert_false(find.reply);
        assert_int_equal(find.flags, 0);
        assert_int_equal(find.request_id, handle);
        assert_true(id_eq(&find.dst, &next.id));
        assert_true(id_eq(&find.key, &key));
        h_assert_peer_eq(&find.src, h_self(&f->h));
        h_assert_peer_eq(&find.peer, h_self(&f->h)); /* reply-to */
        assert_int_equal(find.hops, 1);
    }
    assert_int_equal(f->h.ndone, 0);
}

/* With a finger further round than every successor, the finger is used;
 * once its node refuses connections, it is not. */
static void test_lookup_uses_finger(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct addr boot;
    struct chord_peer a, e, got;
    struct chord_msg find, m;
    struct id start61, key;
    uint64_t handle;
    (void)state;

    h_config(&cfg, 1);
    cfg.check_pred_ms = 3600u * 1000u;
    cfg.probe_ms = 3600u * 1000u;
    h_init(&h, &cfg);
    h_peer(&h, 0x10, &a);
    h_peer(&h, 0x60, &e);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(h.c, &boot), 0);
    h_join(&h, &a, NULL, NULL, 0);
    /* Answer fix-finger's lookup of finger 61 (self + 2^253) with E. */
    chord_finger_start(&h_self(&h)->id, 61, &start61);
    assert_true(h_await(&h, CHORD_MSG_PEER_FIND, &a.addr, 2 * cfg.fix_finger_ms, &find) >= 0);
    assert_true(id_eq(&find.key, &start61));
    h_reply(&m, &find, CHORD_MSG_PEER_FOUND, &e);
    m.key = find.key;
    m.peer = e;
    m.has_peer = true;
    m.hops = 1;
    assert_int_equal(h_feed(&h, &m), 0);
    h_run(&h, 0);
    assert_true(chord_vnode_finger(h.c, 0, 61, &got));
    h_assert_peer_eq(&got, &e);

    h_clear(&h);
    h_id_off(&key, &h_self(&h)->id, 0x70);
    assert_int_equal(h_lookup(&h, &key, &handle), 0);
    assert_true(h_find(&h, CHORD_MSG_PEER_FIND, &e.addr, &find) >= 0);
    assert_int_equal(find.request_id, handle);
    assert_true(id_eq(&find.dst, &e.id));

    /* A refused connection to E drops the finger: the next lookup goes by
     * the successor instead of into a node that is gone. */
    chord_peer_unreachable(h.c, &e.addr);
    assert_false(chord_vnode_finger(h.c, 0, 61, &got));
    h_clear(&h);
    assert_int_equal(h_lookup(&h, &key, &handle), 0);
    assert_int_equal(h_count(&h, CHORD_MSG_PEER_FIND, &e.addr), 0);
    assert_true(h_find(&h, CHORD_MSG_PEER_FIND, &a.addr, &find) >= 0);
    h_release(&h);
}

static void test_lookup_found_completes(void **state)
{
    struct kfix *f = *state;
    struct id key;
    uint64_t handle;

    key_at(f, 0x88, &key);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    h_run(&f->h, 100);
    feed_found(f, handle, &key, &f->f, 3);
    assert_int_equal(f->h.ndone, 0); /* reported at the next tick */
    h_run(&f->h, 0);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, 0);
    assert_true(id_eq(&d->res.key, &key));
    h_assert_peer_eq(&d->res.succ, &f->f);
    assert_int_equal(d->res.hops, 3);
    assert_false(d->res.iterative);
    assert_int_equal(d->res.elapsed_ms, 100);

    /* A late duplicate is not reported again. */
    feed_found(f, handle, &key, &f->e, 4);
    h_run(&f->h, CHORD_LOOKUP_MAX_MS);
    assert_int_equal(f->h.ndone, 1);
}

/* PEER_FOUNDs for another key or an unknown request change nothing; the
 * true answer still completes the lookup. */
static void test_lookup_forged_found_ignored(void **state)
{
    struct kfix *f = *state;
    struct id key, other;
    uint64_t handle;

    key_at(f, 0x88, &key);
    key_at(f, 0x89, &other);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    feed_found(f, handle, &other, &f->e, 2);
    feed_found(f, handle + 1000, &key, &f->e, 2);
    feed_found(f, handle ^ 0x8000000000000000ull, &key, &f->e, 2);
    h_run(&f->h, 1);
    assert_int_equal(f->h.ndone, 0);
    feed_found(f, handle, &key, &f->f, 2);
    h_run(&f->h, 0);
    assert_int_equal(f->h.ndone, 1);
    h_assert_peer_eq(&f->h.done[0].res.succ, &f->f);
}

/* ---- PEER_FIND from elsewhere ------------------------------------------ */

static void feed_find(struct kfix *f, uint8_t keyoff, uint16_t hops, bool any,
                      struct chord_msg *out)
{
    h_msg(&f->h, out, CHORD_MSG_PEER_FIND, &f->z);
    out->request_id = 0xf1d0;
    key_at(f, keyoff, &out->key);
    out->peer = f->r;
    out->has_peer = true;
    out->hops = hops;
    if (any) {
        out->flags = CHORD_MF_ANY;
        memset(&out->dst, 0, sizeof(out->dst));
    }
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, out), 0);
}

static void test_find_forwarded(void **state)
{
    static const struct {
        uint8_t key, next;
        bool any;
    } cases[] = {{0x80, 0x30, false}, {0x80, 0x30, true}, {0x28, 0x20, false}, {0x18, 0x10, false}};
    struct kfix *f = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct chord_msg in, out;
        struct chord_peer next;
        struct chord_stats st0, st1;
        print_message("  key at %#x%s\n", cases[i].key, cases[i].any ? " (any vnode)" : "");
        h_peer(&f->h, cases[i].next, &next);
        chord_get_stats(f->h.c, &st0);
        feed_find(f, cases[i].key, 2, cases[i].any, &in);
        chord_get_stats(f->h.c, &st1);
        assert_int_equal(f->h.nout, 1);
        assert_true(h_find(&f->h, CHORD_MSG_PEER_FIND, &next.addr, &out) >= 0);
        assert_false(out.reply);
        assert_int_equal(out.flags, 0);
        assert_int_equal(out.request_id, in.request_id);
        assert_true(id_eq(&out.dst, &next.id));
        h_assert_peer_eq(&out.src, h_self(&f->h));
        assert_true(id_eq(&out.key, &in.key));
        h_assert_peer_eq(&out.peer, &f->r); /* reply-to unchanged */
        assert_int_equal(out.hops, 3);
        assert_int_equal(st1.finds_forwarded - st0.finds_forwarded, 1);
    }
}

static void test_find_answered(void **state)
{
    static const uint8_t keys[] = {0x01, 0x08, 0x10};
    struct kfix *f = *state;

    for (size_t i = 0; i < N_ELEMS(keys); i++) {
        struct chord_msg in, out;
        print_message("  key at %#x\n", keys[i]);
        feed_find(f, keys[i], 5, false, &in);
        assert_int_equal(f->h.nout, 1);
        assert_true(h_find(&f->h, CHORD_MSG_PEER_FOUND, &f->r.addr, &out) >= 0);
        assert_true(out.reply);
        assert_int_equal(out.request_id, in.request_id);
        assert_true(id_eq(&out.dst, &f->r.id));
        h_assert_peer_eq(&out.src, h_self(&f->h));
        assert_true(id_eq(&out.key, &in.key));
        h_assert_peer_eq(&out.peer, &f->a);
        assert_int_equal(out.hops, 5);
    }
}

static void test_find_hop_limit(void **state)
{
    struct kfix *f = *state;
    struct chord_msg in;

    feed_find(f, 0x80, CHORD_MAX_HOPS, false, &in);
    assert_int_equal(f->h.nout, 0);
    feed_find(f, 0x80, CHORD_MAX_HOPS - 1, false, &in);
    assert_int_equal(f->h.nout, 1);
}

/* ---- the iterative fallback -------------------------------------------- */

static void test_iterative_fallback(void **state)
{
    struct kfix *f = *state;
    struct id key;
    uint64_t handle;
    struct chord_msg nh, nh2;

    key_at(f, 0x80, &key);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    uint64_t t0 = f->h.now;
    h_run(&f->h, CHORD_LOOKUP_RECURSIVE_MS - 1);
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, NULL), 0);
    h_run(&f->h, 1);
    /* The closest known node before the key is asked first. */
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, NULL), 1);
    assert_true(h_find(&f->h, CHORD_MSG_NEXT_HOP, &f->c.addr, &nh) >= 0);
    assert_true(id_eq(&nh.dst, &f->c.id));
    assert_true(id_eq(&nh.key, &key));
    assert_false(nh.reply);

    /* C knows D and E, both closer: E, the closest, is asked next. */
    struct chord_peer cands[2] = {f->d, f->e};
    h_clear(&f->h);
    feed_next_hop_reply(f, &nh, &f->c, false, cands, 2);
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, NULL), 1);
    assert_true(h_find(&f->h, CHORD_MSG_NEXT_HOP, &f->e.addr, &nh2) >= 0);
    assert_true(id_eq(&nh2.dst, &f->e.id));
    assert_true(id_eq(&nh2.key, &key));

    /* E knows the answer. */
    struct chord_peer succs[2] = {f->f, f->r};
    feed_next_hop_reply(f, &nh2, &f->e, true, succs, 2);
    assert_int_equal(f->h.ndone, 0);
    h_run(&f->h, 0);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, 0);
    h_assert_peer_eq(&d->res.succ, &f->f);
    assert_true(d->res.iterative);
    assert_int_equal(d->res.hops, 2);
    assert_int_equal(d->res.elapsed_ms, f->h.now - t0);
    struct chord_stats st;
    chord_get_stats(f->h.c, &st);
    assert_int_equal(st.lookups_iterative, 1);
}

/* C never answers: after its tries, B is asked; B's reply names C again
 * (skipped, it failed) and D; D answers. */
static void test_iterative_skips_dead_candidate(void **state)
{
    struct kfix *f = *state;
    struct id key;
    uint64_t handle;
    struct chord_msg nh;

    key_at(f, 0x80, &key);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    assert_true(h_await(&f->h, CHORD_MSG_NEXT_HOP, &f->c.addr, CHORD_LOOKUP_RECURSIVE_MS, &nh) >=
                0);
    uint64_t t = f->h.now;
    assert_true(h_await(&f->h, CHORD_MSG_NEXT_HOP, &f->b.addr,
                        (uint64_t)CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES, &nh) >= 0);
    assert_int_equal(f->h.now - t, CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES);
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, &f->c.addr), CHORD_RPC_TRIES);

    struct chord_peer cands[2] = {f->c, f->d};
    h_clear(&f->h);
    feed_next_hop_reply(f, &nh, &f->b, false, cands, 2);
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, NULL), 1);
    assert_true(h_find(&f->h, CHORD_MSG_NEXT_HOP, &f->d.addr, &nh) >= 0);
    struct chord_peer succs[1] = {f->f};
    feed_next_hop_reply(f, &nh, &f->d, true, succs, 1);
    h_run(&f->h, 0);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, 0);
    h_assert_peer_eq(&d->res.succ, &f->f);
    assert_true(d->res.iterative);
}

/* The recursive answer arrives after the fallback started: it is taken,
 * but "iterative" means "the iterative fallback produced the answer"
 * (chord.h), which it did not. */
static void test_late_recursive_answer_not_iterative(void **state)
{
    struct kfix *f = *state;
    struct id key;
    uint64_t handle;

    key_at(f, 0x80, &key);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    assert_true(h_await(&f->h, CHORD_MSG_NEXT_HOP, &f->c.addr, CHORD_LOOKUP_RECURSIVE_MS, NULL) >=
                0);
    feed_found(f, handle, &key, &f->f, 3);
    h_run(&f->h, 0);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, 0);
    h_assert_peer_eq(&d->res.succ, &f->f);
    assert_int_equal(d->res.hops, 3);
    assert_false(d->res.iterative);
}

/* Nobody answers anything: every candidate fails, -EHOSTUNREACH. */
static void test_lookup_unreachable(void **state)
{
    struct kfix *f = *state;
    struct id key;
    uint64_t handle;
    uint64_t all = CHORD_LOOKUP_RECURSIVE_MS + 3ull * CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES;

    key_at(f, 0x80, &key);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    h_run(&f->h, all - 1);
    assert_int_equal(f->h.ndone, 0);
    /* C, B, A in turn, each RPC_TRIES times. */
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, &f->c.addr), CHORD_RPC_TRIES);
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, &f->b.addr), CHORD_RPC_TRIES);
    assert_int_equal(h_count(&f->h, CHORD_MSG_NEXT_HOP, &f->a.addr), CHORD_RPC_TRIES);
    h_run(&f->h, 1);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, -EHOSTUNREACH);
    assert_true(id_eq(&d->res.key, &key));
    struct chord_stats st;
    chord_get_stats(f->h.c, &st);
    assert_int_equal(st.lookups_failed, 1);
}

/* With lookup_max_ms = 3000, a lookup still waiting then fails with
 * -ETIMEDOUT, exactly then. */
static void test_lookup_timeout(void **state)
{
    struct kfix *f = *state;
    struct id key;
    uint64_t handle;

    key_at(f, 0x80, &key);
    assert_int_equal(h_lookup(&f->h, &key, &handle), 0);
    h_run(&f->h, 3000 - 1);
    assert_int_equal(f->h.ndone, 0);
    h_run(&f->h, 1);
    const struct h_done *d = h_done_for(&f->h, handle);
    assert_non_null(d);
    assert_int_equal(d->res.status, -ETIMEDOUT);
    assert_int_equal(d->res.elapsed_ms, 3000);
    assert_true(id_eq(&d->res.key, &key));
}

/* ---- NEXT_HOP from elsewhere ------------------------------------------- */

static void test_next_hop_answers(void **state)
{
    struct kfix *f = *state;
    struct chord_msg in, out;

    h_msg(&f->h, &in, CHORD_MSG_NEXT_HOP, &f->r);
    in.request_id = 0x4e;
    key_at(f, 0x08, &in.key);
    assert_int_equal(h_feed(&f->h, &in), 0);
    assert_true(h_find(&f->h, CHORD_MSG_NEXT_HOP_REPLY, &f->r.addr, &out) >= 0);
    assert_true(out.reply);
    assert_int_equal(out.request_id, in.request_id);
    assert_true(id_eq(&out.dst, &f->r.id));
    assert_int_equal(out.done, 1);
    assert_int_equal(out.npeers, 3);
    h_assert_peer_eq(&out.peers[0], &f->a);
    h_assert_peer_eq(&out.peers[1], &f->b);
    h_assert_peer_eq(&out.peers[2], &f->c);

    h_clear(&f->h);
    key_at(f, 0x80, &in.key);
    assert_int_equal(h_feed(&f->h, &in), 0);
    assert_true(h_find(&f->h, CHORD_MSG_NEXT_HOP_REPLY, &f->r.addr, &out) >= 0);
    assert_int_equal(out.done, 0);
    assert_int_equal(out.npeers, 3); /* closest to the key first */
    h_assert_peer_eq(&out.peers[0], &f->c);
    h_assert_peer_eq(&out.peers[1], &f->b);
    h_assert_peer_eq(&out.peers[2], &f->a);
}

/* ---- routed messages --------------------------------------------------- */

static const char payload[] = "block 42";

static void test_route_local_delivery(void **state)
{
    struct kfix *f = *state;
    struct id key;

    key_at(f, 0xf8, &key); /* in (P, N] */
    assert_int_equal(chord_vnode_for_key(f->h.c, &key), 0);
    assert_int_equal(h_route(&f->h, &key, 9, payload, sizeof(payload)), 0);
    h_run(&f->h, 0);
    assert_int_equal(f->h.ndeliv, 1);
    assert_int_equal(f->h.deliv[0].vnode, 0);
    assert_true(id_eq(&f->h.deliv[0].key, &key));
    h_assert_peer_eq(&f->h.deliv[0].origin, h_self(&f->h));
    assert_int_equal(f->h.deliv[0].app_type, 9);
    assert_int_equal(f->h.deliv[0].len, sizeof(payload));
    assert_memory_equal(f->h.deliv[0].payload, payload, sizeof(payload));
    assert_int_equal(h_count(&f->h, CHORD_MSG_ROUTE, NULL), 0);
    /* Our own id is ours too. */
    assert_int_equal(h_route(&f->h, &h_self(&f->h)->id, 9, payload, sizeof(payload)), 0);
    h_run(&f->h, 0);
    assert_int_equal(f->h.ndeliv, 2);
}

/* chord.h: the upcalls "run inside chord_input/chord_tick"; chord_lookup
 * keeps to that ("never from inside this call"). chord_route calls
 * deliver (when the node owns the key) and forward (on the first hop)
 * from inside chord_route itself. */
static void test_route_upcalls_not_inside_route(void **state)
{
    struct kfix *f = *state;
    struct id mine, far;

    key_at(f, 0xf8, &mine);
    key_at(f, 0x80, &far);
    assert_int_equal(h_route(&f->h, &mine, 9, payload, sizeof(payload)), 0);
    assert_int_equal(h_route(&f->h, &far, 9, payload, sizeof(payload)), 0);
    h_run(&f->h, 0);
    assert_int_equal(f->h.ndeliv, 1);
    assert_int_equal(f->h.nforward, 1);
    assert_int_equal(f->h.deliver_in_call, 0);
    assert_int_equal(f->h.forward_in_call, 0);
}

static void test_route_forwards(void **state)
{
    static const struct {
        uint8_t key, next;
    } cases[] = {{0x08, 0x10}, {0x10, 0x10}, {0x28, 0x20}, {0x80, 0x30}};
    struct kfix *f = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct id key;
        struct chord_peer next;
        struct chord_msg out;
        print_message("  key at %#x\n", cases[i].key);
        key_at(f, cases[i].key, &key);
        h_peer(&f->h, cases[i].next, &next);
        h_clear(&f->h);
        unsigned nfwd = f->h.nforward;
        assert_int_equal(h_route(&f->h, &key, 9, payload, sizeof(payload)), 0);
        h_run(&f->h, 0);
        assert_int_equal(f->h.ndeliv, 0);
        assert_int_equal(f->h.nforward - nfwd, 1);
        h_assert_peer_eq(&f->h.forward_next, &next);
        assert_true(h_find(&f->h, CHORD_MSG_ROUTE, &next.addr, &out) >= 0);
        assert_true(id_eq(&out.dst, &next.id));
        h_assert_peer_eq(&out.src, h_self(&f->h));
        h_assert_peer_eq(&out.peer, h_self(&f->h)); /* origin */
        assert_true(id_eq(&out.key, &key));
        assert_int_equal(out.hops, 1);
        assert_int_equal(out.app_type, 9);
        assert_int_equal(out.payload_len, sizeof(payload));
        assert_memory_equal(out.payload, payload, sizeof(payload));
    }
}

static void test_route_forward_upcall_consumes(void **state)
{
    struct kfix *f = *state;
    struct id key;

    key_at(f, 0x80, &key);
    f->h.forward_ret = false;
    assert_int_equal(h_route(&f->h, &key, 9, payload, sizeof(payload)), 0);
    h_run(&f->h, 0);
    assert_int_equal(f->h.nforward, 1);
    assert_int_equal(h_count(&f->h, CHORD_MSG_ROUTE, NULL), 0);
}

static void feed_route(struct kfix *f, uint8_t keyoff, uint16_t hops, struct chord_msg *m)
{
    h_msg(&f->h, m, CHORD_MSG_ROUTE, &f->z);
    key_at(f, keyoff, &m->key);
    m->peer = f->r; /* origin */
    m->has_peer = true;
    m->hops = hops;
    m->app_type = 3;
    m->payload = (const uint8_t *)payload;
    m->payload_len = sizeof(payload);
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, m), 0);
}

static void test_route_input(void **state)
{
    struct kfix *f = *state;
    struct chord_msg in, out;

    feed_route(f, 0xf8, 3, &in);
    assert_int_equal(f->h.ndeliv, 1);
    h_assert_peer_eq(&f->h.deliv[0].origin, &f->r);
    assert_int_equal(f->h.deliv[0].app_type, 3);
    assert_memory_equal(f->h.deliv[0].payload, payload, sizeof(payload));
    assert_int_equal(f->h.nout, 0);

    feed_route(f, 0x80, 3, &in);
    assert_int_equal(f->h.ndeliv, 1);
    assert_true(h_find(&f->h, CHORD_MSG_ROUTE, &f->c.addr, &out) >= 0);
    assert_int_equal(out.hops, 4);
    h_assert_peer_eq(&out.peer, &f->r);
    assert_true(id_eq(&out.dst, &f->c.id));

    feed_route(f, 0x80, CHORD_MAX_HOPS, &in);
    assert_int_equal(f->h.nout, 0);

    /* A ROUTE to a vnode this node does not host is dropped silently. */
    h_msg(&f->h, &in, CHORD_MSG_ROUTE, &f->z);
    key_at(f, 0xf8, &in.key);
    in.peer = f->r;
    key_at(f, 0x01, &in.dst);
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, &in), 0);
    assert_int_equal(f->h.nout, 0);
    assert_int_equal(f->h.ndeliv, 1);
}

static void test_route_errors(void **state)
{
    struct kfix *f = *state;
    struct id key;
    static uint8_t big[CHORD_ROUTE_MAX + 1];

    key_at(f, 0x80, &key);
    assert_int_equal(h_route(&f->h, &key, 1, big, sizeof(big)), -EMSGSIZE);
    assert_int_equal(h_route(&f->h, &key, 1, big, CHORD_ROUTE_MAX), 0);
    h_run(&f->h, 0); /* the route starts as a frame to the node itself */
    assert_int_equal(h_count(&f->h, CHORD_MSG_ROUTE, NULL), 1);

    struct harness h;
    struct chord_config cfg;
    h_config(&cfg, 2);
    h_init(&h, &cfg);
    assert_int_equal(h_route(&h, &key, 1, payload, sizeof(payload)), -EAGAIN);
    h_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lookup_owned_by_successor, setup, teardown),
        cmocka_unit_test(test_lookup_alone),
        cmocka_unit_test_setup_teardown(test_lookup_far_sends_find, setup, teardown),
        cmocka_unit_test(test_lookup_uses_finger),
        cmocka_unit_test_setup_teardown(test_lookup_found_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_forged_found_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_forwarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_hop_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterative_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterative_skips_dead_candidate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_recursive_answer_not_iterative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_timeout, setup_short_max, teardown),
        cmocka_unit_test_setup_teardown(test_next_hop_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_local_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_upcalls_not_inside_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_forwards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_forward_upcall_consumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
