/* test_bs_limits.c — what a block server keeps and believes (lease.c,
 * server.c, put.c, client.c), on small rings of whole nodes (harness_bs.c):
 * leases reclaimed and the tombstones they leave, lease floods bounded,
 * the location cache guarded against poisoning, random request ids, the
 * cap on a primary's puts in progress, the window of bytes in flight to
 * one peer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"
#include "blockstore/msg.h"
#include "common/frame.h"
#include "harness_bs.h"
#include "bs_fx.h"


/* ---- leases ---- */

static void test_reclaim_and_tombstones(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key a, bk;
    struct lease ga, gb, ra, rb, ga2;
    struct id key;
    size_t len;
    int set[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(12, &a);
    hb_owner(13, &bk);
    hb_block(70, 1500, buf, &len, &key);
    hb_replica_set(t, &key, set, false);
    int c = outsider(t, &key);
    hb_lease(t, &a, &key, 30 * HB_DAY_S, &ga);
    hb_lease(t, &bk, &key, 30 * HB_DAY_S, &gb);
    assert_int_equal(put_wait(t, c, buf, len, &ga), 0);
    /* A second owner leases the same block. */
    assert_int_equal(lease_wait(t, c, &key, &gb), 0);
    assert_int_equal(res.copies, 3);
    struct bs_entry *e = bs_index_find(&t->n[set[1]].b->ix, STORE_CONTENT, &key);
    assert_int_equal(e->nleases, 2);

    /* a reclaims: b still leases it, so it stays everywhere. */
    hb_run(t, 10);
    hb_lease(t, &a, &key, 0, &ra);
    assert_int_equal(lease_wait(t, c, &key, &ra), 0);
    assert_int_equal(res.copies, 3);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 3);
    assert_int_equal(bs_index_owner_bytes(&t->n[set[0]].b->ix, &a.pub), 0);
    assert_int_equal(bs_index_owner_bytes(&t->n[set[0]].b->ix, &bk.pub), len);

    /* b reclaims the only live lease: the block goes, the records stay. */
    hb_run(t, 10);
    hb_lease(t, &bk, &key, 0, &rb);
    assert_int_equal(lease_wait(t, c, &key, &rb), 0);
    assert_int_equal(res.copies, 3);
    hb_run(t, 100);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 0);
    for (int j = 0; j < 3; j++) {
        struct bs *b = t->n[set[j]].b;
        e = bs_index_find(&b->ix, STORE_CONTENT, &key);
        assert_non_null(e);
        assert_int_equal(e->flags, 0);
        assert_int_equal(e->nleases, 2);
        assert_null(hb_rec(t, set[j], STORE_CONTENT, &key));
        assert_int_equal(stats(t, set[j]).used, 0);
        /* On disk: the reclaim records, after the removal. */
        unsigned reclaims = 0;
        for (size_t i = 0; i < t->n[set[j]].st.nl; i++)
            reclaims +=
                id_eq(&t->n[set[j]].st.l[i].key, &key) && t->n[set[j]].st.l[i].l.expiry_s == 0;
        assert_int_equal(reclaims, 2);
    }
    assert_int_equal(get_wait(t, c, STORE_CONTENT, &key), BS_ERR_NOT_FOUND);

    /* Replaying an older grant cannot bring it back. */
    assert_int_equal(put_wait(t, c, buf, len, &gb), BS_ERR_NO_LEASE);
    assert_int_equal(put_wait(t, c, buf, len, &ga), BS_ERR_NO_LEASE);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 0);

    /* A grant signed after the reclaim stores it again, also when it
     * reached the tombstones first (as a lease update: no bytes held). */
    hb_run(t, 10);
    hb_lease(t, &a, &key, HB_DAY_S, &ga2);
    assert_int_equal(lease_wait(t, c, &key, &ga2), BS_ERR_NOT_FOUND);
    assert_true(bs_index_find(&t->n[set[0]].b->ix, STORE_CONTENT, &key)->expiry_s > 0);
    assert_int_equal(put_wait(t, c, buf, len, &ga2), 0);
    assert_int_equal(res.copies, 3);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 3);

    /* A lease update for a block nobody holds. */
    struct id none;
    memset(&none, 0x42, sizeof(none));
    hb_lease(t, &a, &none, HB_DAY_S, &ga2);
    assert_int_equal(lease_wait(t, c, &none, &ga2), BS_ERR_NOT_FOUND);
    hb_free(t);
    free(t);
}

/* Lease records from outside cannot grow a block's records without
 * bound: a dead record (expired, or a reclaim) of an owner the holder has
 * no record of is left out, and past BS_LEASE_OWNERS_MAX (index.c) owners
 * a new owner is refused with QUOTA while the owners held still renew. */
static void test_lease_flood_bounded(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    enum { N = 1100, CAP = 1024 };
    struct sig_key own, *ks = calloc(N, sizeof(*ks));
    struct lease l, *dead = calloc(N, sizeof(*dead)), *live = calloc(N, sizeof(*live));
    struct id key;
    size_t len;
    unsigned got, n;

    hb_init(t, 3, 3);
    hb_owner(30, &own);
    hb_block(70, 500, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    assert_int_equal(put_wait(t, 0, buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    for (unsigned i = 0; i < N; i++) {
        uint8_t seed[SIG_SEED_LEN];
        memset(seed, 0x5a, sizeof(seed));
        seed[0] = (uint8_t)i;
        seed[1] = (uint8_t)(i >> 8);
        assert_int_equal(sig_key_from_seed(seed, &ks[i]), 0);
        assert_int_equal(lease_sign(&ks[i], &key, hb_wall_ms(t) - 5000, hb_wall_s(t) - 1, &dead[i]),
                         0);
        hb_lease(t, &ks[i], &key, HB_DAY_S, &live[i]);
    }
    struct bs_msg m;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_LEASE_MERGE;
    m.key = key;

    /* Expired records of owners nobody holds: merged as nothing. */
    m.leases = dead;
    m.nleases = N;
    hb_flush(t);
    raw_request(t, 0, &m, 1);
    settle(t);
    got = stranger_replies(t, 0, &n);
    assert_int_equal(got, 1);
    struct bs_entry *e = bs_index_find(&t->n[0].b->ix, STORE_CONTENT, &key);
    assert_non_null(e);
    assert_int_equal(e->nleases, 1);
    hb_flush(t);

    /* Live records of N new owners: CAP owners are kept, the rest are
     * refused (QUOTA, with a reason); every holder the same. */
    m.leases = live;
    for (int i = 0; i < 3; i++)
        raw_request(t, i, &m, 2 + (uint64_t)i);
    settle(t);
    got = stranger_replies(t, BS_ERR_QUOTA, &n);
    assert_int_equal(got, 3);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        e = bs_index_find(&t->n[i].b->ix, STORE_CONTENT, &key);
        assert_int_equal(e->nleases, CAP);
        assert_true(bs_holds(t->n[i].b, STORE_CONTENT, &key));
    }
    hb_flush(t);

    /* An owner held renews as before; a held owner's reclaim spreads. */
    hb_lease(t, &own, &key, 60 * HB_DAY_S, &l);
    assert_int_equal(lease_wait(t, 0, &key, &l), 0);
    assert_int_equal(res.copies, 3);
    hb_lease(t, &ks[0], &key, 0, &l);
    assert_int_equal(lease_wait(t, 0, &key, &l), 0);
    /* A new owner's put of the block is refused, with a reason. */
    hb_lease(t, &ks[N - 1], &key, HB_DAY_S, &l);
    assert_int_equal(put_wait(t, 0, buf, len, &l), BS_ERR_QUOTA);
    assert_true(strlen(res.reason) > 0);
    for (int i = 0; i < 3; i++) {
        e = bs_index_find(&t->n[i].b->ix, STORE_CONTENT, &key);
        assert_int_equal(e->nleases, CAP);
    }
    free(ks);
    free(dead);
    free(live);
    hb_free(t);
    free(t);
}

/* ---- hostile peers ---- */

static int rpc_seen;
static void rpc_cb(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                   size_t len)
{
    (void)b, (void)ctx, (void)status, (void)type, (void)p, (void)len;
    rpc_seen++;
}

/* Node c sends req to node a; instead of a's answer, c receives rep from
 * a's address with the request's id. */
static void fake_reply(struct hb_net *t, int c, int a, const struct bs_msg *req,
                       const struct bs_msg *rep)
{
    uint64_t id;
    hb_flush(t);
    assert_int_equal(bs_rpc_msg(t->n[c].b, &t->n[a].addr, req, 0, 1, rpc_cb, NULL, &id), 0);
    assert_int_equal(t->nq, 1);
    free(t->q[0].bytes);
    t->nq = 0;
    size_t cap = FRAME_HEADER_SIZE + bs_msg_size(rep), len;
    uint8_t *f = malloc(cap);
    assert_non_null(f);
    assert_int_equal(bs_msg_encode(rep, f + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE, &len), 0);
    struct frame_header h = {.version = FRAME_VERSION,
                             .flags = FRAME_F_REPLY,
                             .type = rep->type,
                             .request_id = id,
                             .length = (uint32_t)len};
    frame_header_encode(&h, f);
    int seen = rpc_seen;
    assert_int_equal(bs_input(t->n[c].b, &t->n[a].addr, f, FRAME_HEADER_SIZE + len), 0);
    assert_int_equal(rpc_seen, seen + 1);
    free(f);
}

/* id + 1 (mod 2^160): (id + 1, id] is the whole ring but id + 1. */
static struct id id_next(const struct id *a)
{
    struct id r = *a;
    for (int i = ID_BYTES - 1; i >= 0 && ++r.b[i] == 0; i--)
        ;
    return r;
}

static bool cache_has(struct bs *b, const struct id *vnode)
{
    for (size_t i = 0; i < b->core->ncache; i++)
        if (id_eq(&b->core->cache[i].loc.vnode.id, vnode))
            return true;
    return false;
}

static struct bs_location located;
static int located_status = 1;
static void locate_cb(struct bs *b, void *ctx, int status, const struct bs_location *loc)
{
    (void)b, (void)ctx;
    located_status = status;
    if (!status)
        located = *loc;
}

/* A peer's reply teaches the client's location cache only what that peer
 * can speak for: its own range, about the key it was asked. A FAILURE
 * claiming almost the whole ring for another address, or a range that
 * does not hold the key asked about, is ignored and deletes nothing; and
 * handoff's fresh locate does not trust the cache at all. */
static void test_location_cache_poisoning(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key, key2;
    size_t len;
    int set[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(1, &own);
    hb_block(1, 300, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    int c = outsider(t, &key);
    assert_int_equal(put_wait(t, c, buf, len, &l), 0);
    struct bs *cb = t->n[c].b;
    size_t before = cb->core->ncache;
    assert_true(before > 0); /* the primary's honest location */

    /* The attacker a: a node that is not the client. */
    int a = (c + 1) % t->nn;
    hb_block(2, 300, buf, &len, &key2);
    struct bs_msg req, rep;
    memset(&req, 0, sizeof(req));
    req.type = BS_MSG_GET;
    req.rtype = STORE_CONTENT;
    req.key = key2;
    req.target = chord_vnode_self(t->n[a].c, 0)->id;

    memset(&rep, 0, sizeof(rep));
    rep.type = BS_MSG_FAILURE;
    rep.code = BS_ERR_NOT_FOUND;
    snprintf(rep.reason, sizeof(rep.reason), "no");
    rep.has_loc = true;
    rep.loc.has_pred = true;
    /* (x, x - 1]: the whole ring but x, held by another address. */
    rep.loc.vnode.id = req.target;
    rep.loc.pred = id_next(&req.target);
    if (id_eq(&rep.loc.pred, &key2))
        skip();
    rep.loc.vnode.addr = t->n[(a + 1) % t->nn].addr;
    rep.loc.n = 1;
    rep.loc.set[0] = rep.loc.vnode;
    fake_reply(t, c, a, &req, &rep);
    assert_false(cache_has(cb, &req.target));
    assert_int_equal(cb->core->ncache, before);

    /* Its own address, but a range that leaves out the key asked about. */
    rep.loc.vnode.addr = t->n[a].addr;
    rep.loc.set[0] = rep.loc.vnode;
    rep.loc.vnode.id = req.target;
    rep.loc.pred = key2; /* (key2, target]: key2 excluded */
    fake_reply(t, c, a, &req, &rep);
    assert_false(cache_has(cb, &req.target));
    assert_int_equal(cb->core->ncache, before);

    /* A vnode that was not the one asked. */
    struct bs_location honest;
    bs_location_of(t->n[a].b, 0, &honest);
    req.key = honest.vnode.id; /* inside its range */
    rep.loc = honest;
    req.target = key2;
    fake_reply(t, c, a, &req, &rep);
    assert_false(cache_has(cb, &honest.vnode.id));

    /* The honest answer is learned. */
    req.target = honest.vnode.id;
    fake_reply(t, c, a, &req, &rep);
    assert_true(cache_has(cb, &honest.vnode.id));

    /* Poisoned directly: bs_locate believes the cache, bs_locate_fresh
     * (what handoff uses) asks the ring. */
    hb_replica_set(t, &key, set, false);
    int liar = outsider(t, &key) == c ? set[1] : outsider(t, &key);
    struct bs_location bad;
    memset(&bad, 0, sizeof(bad));
    bad.has_pred = true;
    bad.vnode = *chord_vnode_self(t->n[liar].c, 0);
    bad.pred = id_next(&bad.vnode.id);
    bad.n = 1;
    bad.set[0] = bad.vnode;
    if (!id_in_oc(&key, &bad.pred, &bad.vnode.id) || id_eq(&bad.vnode.id, &honest.vnode.id))
        skip();
    bs_cache_learn(cb, &bad);
    located_status = 1;
    assert_int_equal(bs_locate(cb, &key, locate_cb, NULL), 0);
    hb_run(t, 10);
    assert_int_equal(located_status, 0);
    assert_true(id_eq(&located.vnode.id, &bad.vnode.id));
    located_status = 1;
    assert_int_equal(bs_locate_fresh(cb, &key, locate_cb, NULL), 0);
    for (int i = 0; i < 100 && located_status == 1; i++)
        hb_run(t, 100);
    assert_int_equal(located_status, 0);
    assert_true(addr_eq(&located.vnode.addr, &t->n[set[0]].addr));
    hb_free(t);
    free(t);
}

/* Request ids are not a sequence a peer could follow: each is drawn at
 * random, and a reply with a pending id from another address than the
 * one asked is ignored. */
static void test_request_ids_random(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    uint64_t ids[8];
    struct bs_msg req;

    hb_init(t, 3, 3);
    hb_flush(t);
    memset(&req, 0, sizeof(req));
    req.type = BS_MSG_LOCATE;
    req.target = chord_vnode_self(t->n[1].c, 0)->id;
    for (unsigned i = 0; i < N_ELEMS(ids); i++) {
        assert_int_equal(
            bs_rpc_msg(t->n[0].b, &t->n[1].addr, &req, 0, 1, rpc_cb, NULL, &ids[i]), 0);
        assert_true(ids[i] != 0);
    }
    for (unsigned i = 0; i < N_ELEMS(ids); i++)
        for (unsigned j = 0; j < i; j++) {
            uint64_t d = ids[i] > ids[j] ? ids[i] - ids[j] : ids[j] - ids[i];
            assert_true(d > 1000000); /* neither equal nor near each other */
        }
    /* A reply to ids[0] from node 2 (not asked) is not taken. */
    struct bs_msg rep;
    memset(&rep, 0, sizeof(rep));
    rep.type = BS_MSG_FAILURE;
    rep.code = BS_ERR_NOT_FOUND;
    uint8_t f[FRAME_HEADER_SIZE + 512];
    size_t len;
    assert_int_equal(bs_msg_encode(&rep, f + FRAME_HEADER_SIZE, sizeof(f) - FRAME_HEADER_SIZE, &len), 0);
    struct frame_header h = {.version = FRAME_VERSION,
                             .flags = FRAME_F_REPLY,
                             .type = rep.type,
                             .request_id = ids[0],
                             .length = (uint32_t)len};
    frame_header_encode(&h, f);
    int seen = rpc_seen;
    assert_int_equal(bs_input(t->n[0].b, &t->n[2].addr, f, FRAME_HEADER_SIZE + len), 0);
    assert_int_equal(rpc_seen, seen);
    assert_int_equal(bs_input(t->n[0].b, &t->n[1].addr, f, FRAME_HEADER_SIZE + len), 0);
    assert_int_equal(rpc_seen, seen + 1);
    for (unsigned i = 1; i < N_ELEMS(ids); i++)
        bs_rpc_cancel(t->n[0].b, ids[i]);
    hb_free(t);
    free(t);
}

/* A primary holds at most BS_PPUT_MAX puts in progress: past that, a PUT
 * is answered -EBUSY at once, with a reason, and nothing is held for it. */
static void test_primary_put_cap(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;
    int set[HB_NODES];
    unsigned n;

    hb_init(t, 3, 3);
    hb_owner(1, &own);
    hb_block(5, 200, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    hb_replica_set(t, &key, set, false);
    struct bs_msg m;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_PUT;
    m.rtype = STORE_CONTENT;
    int v = chord_vnode_for_key(t->n[set[0]].c, &key);
    assert_true(v >= 0);
    m.target = chord_vnode_self(t->n[set[0]].c, (unsigned)v)->id;
    m.key = key;
    m.bytes = buf;
    m.len = len;
    m.leases = &l;
    m.nleases = 1;
    hb_flush(t);
    for (uint64_t i = 0; i < BS_PPUT_MAX + 10; i++)
        raw_request(t, set[0], &m, 1000 + i);
    /* Nothing delivered yet: the first BS_PPUT_MAX wait on their members. */
    unsigned got = stranger_replies(t, -EBUSY, &n);
    assert_int_equal(n, 10);
    assert_int_equal(got, 10);
    assert_int_equal(t->n[set[0]].b->core->npputs, BS_PPUT_MAX);
    hb_free(t);
    free(t);

    /* A client's put that meets a busy primary waits and asks again. */
    t = calloc(1, sizeof(*t));
    hb_init(t, 4, 3);
    hb_replica_set(t, &key, set, false);
    int c = outsider(t, &key);
    v = chord_vnode_for_key(t->n[set[0]].c, &key);
    m.target = chord_vnode_self(t->n[set[0]].c, (unsigned)v)->id;
    hb_flush(t);
    t->n[set[1]].cut = t->n[set[2]].cut = true; /* the puts in progress stay */
    for (uint64_t i = 0; i < BS_PPUT_MAX; i++)
        raw_request(t, set[0], &m, 1000 + i);
    memset(&res, 0, sizeof(res));
    assert_int_equal(bs_put(t->n[c].b, buf, len, &l, hb_done, &res), 0);
    hb_run(t, 500);
    assert_false(res.done); /* -EBUSY was not the end */
    assert_int_equal(t->n[set[0]].b->core->npputs, BS_PPUT_MAX);
    t->n[set[1]].cut = t->n[set[2]].cut = false;
    hb_wait(t, &res);
    assert_int_equal(res.status, 0);
    hb_free(t);
    free(t);
}

/* ---- flow control ---- */

/* The most bytes queued on any link (from, to) of the fake network. */
static size_t max_link_bytes(const struct hb_net *t)
{
    size_t most = 0;
    for (size_t i = 0; i < t->nq; i++) {
        size_t sum = 0;
        for (size_t j = 0; j < t->nq; j++)
            if (t->q[j].from == t->q[i].from && addr_eq(&t->q[j].to, &t->q[i].to))
                sum += t->q[j].len;
        if (sum > most)
            most = sum;
    }
    return most;
}

static unsigned queued_requests(const struct bs *b)
{
    unsigned n = 0;
    for (size_t i = 0; i < b->core->nflow; i++)
        n += b->core->flow[i].nqueued;
    return n;
}

/* 64 puts and then 64 gets of 256 KiB blocks, all started at once from one
 * node: no link ever carries more than the window's worth of requests plus
 * the replies the peer's own window allows (net/ drops frames past 8 MiB),
 * the requests past the window wait instead of being sent, and every one
 * of them completes. */
static void test_flow_window(void **state)
{
    (void)state;
    enum { NB = 64 };
    struct hb_net *t = calloc(1, sizeof(*t));
    struct hb_res *r = calloc(NB, sizeof(*r));
    struct id *keys = calloc(NB, sizeof(*keys));
    assert_non_null(t);
    assert_non_null(r);
    assert_non_null(keys);
    struct sig_key own;
    size_t len, most = 0;
    unsigned waited = 0;

    hb_init(t, 4, 3);
    hb_owner(1, &own);
    hb_flush(t);
    for (unsigned i = 0; i < NB; i++) {
        struct lease l;
        hb_block(1000 + i, BLOCK_MAX_DATA, buf, &len, &keys[i]);
        hb_lease(t, &own, &keys[i], 30 * HB_DAY_S, &l);
        assert_int_equal(bs_put(t->n[0].b, buf, len, &l, hb_done, &r[i]), 0);
    }
    for (int phase = 0; phase < 2; phase++) {
        for (unsigned guard = 0;; guard++) {
            assert_true(guard < 100000);
            do {
                for (int i = 0; i < t->nn; i++) {
                    unsigned q = queued_requests(t->n[i].b);
                    waited = q > waited ? q : waited;
                }
                size_t m = max_link_bytes(t);
                most = m > most ? m : most;
                assert_true(m <= 2 * (size_t)BS_FLOW_WINDOW);
            } while (hb_step(t));
            unsigned done = 0;
            for (unsigned i = 0; i < NB; i++)
                done += r[i].done;
            if (done == NB)
                break;
            hb_advance(t, 1); /* deferred starts, locates and other timers */
        }
        for (unsigned i = 0; i < NB; i++) {
            assert_int_equal(r[i].status, 0);
            if (phase == 0)
                assert_int_equal(r[i].copies, 3);
            else {
                hb_block(1000 + i, BLOCK_MAX_DATA, buf, &len, &keys[i]);
                assert_int_equal(r[i].len, len);
                assert_memory_equal(r[i].bytes, buf, len);
            }
        }
        if (phase == 0) {
            memset(r, 0, NB * sizeof(*r));
            for (unsigned i = 0; i < NB; i++)
                assert_int_equal(bs_get(t->n[0].b, STORE_CONTENT, &keys[i], hb_done, &r[i]), 0);
        }
    }
    /* The window was reached (16 MiB went out of one node), and kept. */
    assert_true(waited > 0);
    assert_true(most > BS_FLOW_WINDOW / 2);
    for (int i = 0; i < t->nn; i++)
        assert_int_equal(t->n[i].b->core->nflow, 0);
    hb_free(t);
    free(t);
    free(r);
    free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reclaim_and_tombstones),
        cmocka_unit_test(test_lease_flood_bounded),
        cmocka_unit_test(test_location_cache_poisoning),
        cmocka_unit_test(test_request_ids_random),
        cmocka_unit_test(test_primary_put_cap),
        cmocka_unit_test(test_flow_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
