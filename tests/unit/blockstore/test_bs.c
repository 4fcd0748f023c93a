/* test_bs.c — the block server and client (bs.c, server.c, put.c,
 * client.c) on small rings of whole nodes (harness_bs.c): puts and gets
 * with k copies, fallback and repair of a bad copy, replica diversion for
 * space and for silence, quotas, lease refusals, kv records, garbage input
 * and freeing with work in flight. Roots are in test_bs_root.c; reclaim,
 * tombstones and the bounds on what peers can make a node hold are in
 * test_bs_limits.c; shared helpers in bs_fx.c. */
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


/* ---- put and get ---- */

static void test_put_get_k_copies(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;
    int set[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(1, &own);
    hb_block(1, 3000, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    int c = outsider(t, &key);
    assert_int_equal(put_wait(t, c, buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    size_t n = hb_replica_set(t, &key, set, false);
    assert_int_equal(n, 3);
    for (size_t j = 0; j < n; j++) {
        assert_true(bs_holds(t->n[set[j]].b, STORE_CONTENT, &key));
        struct hb_rec *r = hb_rec(t, set[j], STORE_CONTENT, &key);
        assert_non_null(r);
        assert_int_equal(r->len, len);
    }
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 3);
    assert_int_equal(stats(t, set[0]).used, len);

    /* Every node reads it back, verified. */
    for (int i = 0; i < t->nn; i++) {
        assert_int_equal(get_wait(t, i, STORE_CONTENT, &key), 0);
        assert_int_equal(res.len, len);
        assert_memory_equal(res.bytes, buf, len);
    }
    assert_int_equal(stats(t, c).puts_ok, 1);

    /* The primary itself as the client (its own requests loop back). */
    hb_block(2, 500, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    hb_replica_set(t, &key, set, false);
    assert_int_equal(put_wait(t, set[0], buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 3);

    /* Storing it again only merges the lease. */
    unsigned writes = t->n[set[1]].st.writes;
    assert_int_equal(put_wait(t, outsider(t, &key), buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    assert_int_equal(t->n[set[1]].st.writes, writes);

    /* A key nobody holds. */
    struct id none;
    memset(&none, 0x77, sizeof(none));
    assert_int_equal(get_wait(t, 0, STORE_CONTENT, &none), BS_ERR_NOT_FOUND);
    hb_free(t);
    free(t);
}

static void test_get_fallback_and_repair(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;
    int set[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(2, &own);
    hb_block(10, 4000, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    int c = outsider(t, &key);
    assert_int_equal(put_wait(t, c, buf, len, &l), 0);
    hb_replica_set(t, &key, set, false);

    /* The primary's disk copy is damaged: its read fails the check. The
     * client (which knows the primary's RTT from its LOCATE) asks it first,
     * hears BAD_BLOCK, and gets the block from the next holder. */
    hb_rec(t, set[0], STORE_CONTENT, &key)->damaged = true;
    assert_int_equal(get_wait(t, c, STORE_CONTENT, &key), 0);
    assert_memory_equal(res.bytes, buf, len);
    assert_int_equal(t->n[set[0]].st.reads_bad, 1);
    assert_int_equal(stats(t, set[0]).reads_bad, 1);
    assert_int_equal(stats(t, c).repairs_sent, 1);

    /* The repair lands: the primary holds a good copy again, with its
     * lease. */
    hb_run(t, 1000);
    assert_true(bs_holds(t->n[set[0]].b, STORE_CONTENT, &key));
    struct hb_rec *r = hb_rec(t, set[0], STORE_CONTENT, &key);
    assert_non_null(r);
    assert_false(r->damaged);
    assert_memory_equal(r->bytes, buf, len);
    struct bs_entry *e = bs_index_find(&t->n[set[0]].b->ix, STORE_CONTENT, &key);
    assert_non_null(e);
    assert_int_equal(e->flags, BS_E_PRESENT);
    assert_int_equal(e->nleases, 1);
    assert_int_equal(get_wait(t, c, STORE_CONTENT, &key), 0);
    hb_free(t);
    free(t);
}

static void test_full_node_diverts(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;
    int all[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(3, &own);
    hb_block(20, 2000, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    hb_replica_set(t, &key, all, true);
    /* The second member donates almost nothing. */
    t->n[all[1]].b->cfg.capacity = 100;
    int c = all[4];
    assert_int_equal(put_wait(t, c, buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    assert_true(bs_holds(t->n[all[0]].b, STORE_CONTENT, &key));
    assert_false(bs_holds(t->n[all[1]].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t->n[all[2]].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t->n[all[3]].b, STORE_CONTENT, &key)); /* the spare */
    assert_int_equal(stats(t, all[1]).stores_refused_full, 1);
    /* A get finds it past the full member. */
    assert_int_equal(get_wait(t, c, STORE_CONTENT, &key), 0);
    assert_memory_equal(res.bytes, buf, len);

    /* Every node full: the put fails for space. */
    for (int i = 0; i < t->nn; i++)
        t->n[i].b->cfg.capacity = 100;
    hb_block(21, 2000, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    assert_int_equal(put_wait(t, c, buf, len, &l), BS_ERR_FULL);
    assert_true(strlen(res.reason) > 0);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 0);
    hb_free(t);
    free(t);
}

static void test_silent_member_diverts(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;
    int all[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(4, &own);
    hb_block(30, 1000, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    hb_replica_set(t, &key, all, true);
    /* The third member is cut off before anyone noticed: its STOREs go
     * unanswered, and the spare after it takes the copy. */
    t->n[all[2]].cut = true;
    assert_int_equal(put_wait(t, all[4], buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    assert_true(bs_holds(t->n[all[3]].b, STORE_CONTENT, &key));
    assert_false(bs_holds(t->n[all[2]].b, STORE_CONTENT, &key));
    hb_free(t);
    free(t);
}

/* hb_flush, but a STORE_OK that node `from` sends is replaced by a
 * FAILURE with code (a member's unexpected error). Returns how many. */
static unsigned flush_mangling(struct hb_net *t, int from, int code)
{
    unsigned n = 0;
    for (unsigned guard = 0; t->nq || t->ncq; guard++) {
        assert_true(guard < 1000000);
        if (t->ncq) {
            struct hb_comp c = t->cq[0];
            memmove(&t->cq[0], &t->cq[1], --t->ncq * sizeof(*t->cq));
            hb_complete(t, &c, 0);
            continue;
        }
        struct hb_frame f = t->q[0];
        memmove(&t->q[0], &t->q[1], --t->nq * sizeof(*t->q));
        struct frame_header h;
        assert_int_equal(frame_header_decode(f.bytes, f.len, &h), 0);
        int to = -1;
        for (int i = 0; i < t->nn; i++)
            if (addr_eq(&t->n[i].addr, &f.to))
                to = i;
        if (to >= 0 && f.from == from && h.type == BS_MSG_STORE_OK) {
            struct bs_msg m;
            memset(&m, 0, sizeof(m));
            m.type = BS_MSG_FAILURE;
            m.code = code;
            size_t cap = FRAME_HEADER_SIZE + bs_msg_size(&m), len;
            uint8_t *g = malloc(cap);
            assert_non_null(g);
            assert_int_equal(
                bs_msg_encode(&m, g + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE, &len), 0);
            h.type = BS_MSG_FAILURE;
            h.length = (uint32_t)len;
            frame_header_encode(&h, g);
            free(f.bytes);
            f.bytes = g;
            f.len = FRAME_HEADER_SIZE + len;
            n++;
        }
        if (to >= 0 && t->n[to].up) {
            if (h.type >= BS_MSG_FIRST && h.type <= BS_MSG_LAST)
                assert_int_equal(bs_input(t->n[to].b, &t->n[f.from].addr, f.bytes, f.len), 0);
            else
                chord_input(t->n[to].c, &t->n[f.from].addr, f.bytes, f.len);
        }
        free(f.bytes);
    }
    return n;
}

/* A member that answers a STORE with an error nobody expects (here -EIO)
 * is a member that does not hold the block: a spare takes its place, and
 * with k copies stored the put succeeds. */
static void test_put_member_odd_error(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;
    int all[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(31, &own);
    hb_block(71, 800, buf, &len, &key);
    hb_lease(t, &own, &key, 30 * HB_DAY_S, &l);
    hb_replica_set(t, &key, all, true);
    int c = all[4];
    memset(&res, 0, sizeof(res));
    assert_int_equal(bs_put(t->n[c].b, buf, len, &l, hb_done, &res), 0);
    for (unsigned guard = 0; !res.done; guard++) {
        assert_true(guard < 1000);
        flush_mangling(t, all[2], -EIO);
        if (res.done)
            break;
        uint64_t d = UINT64_MAX;
        for (int i = 0; i < t->nn; i++) {
            uint64_t a = chord_next_deadline(t->n[i].c), bd = bs_next_deadline(t->n[i].b);
            d = a < d ? a : d;
            d = bd < d ? bd : d;
        }
        if (d > t->now)
            t->now = d;
        for (int i = 0; i < t->nn; i++) {
            chord_tick(t->n[i].c);
            bs_tick(t->n[i].b);
        }
    }
    assert_int_equal(res.status, 0);
    assert_int_equal(res.copies, 3);
    assert_true(bs_holds(t->n[all[0]].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t->n[all[1]].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t->n[all[3]].b, STORE_CONTENT, &key)); /* the spare */
    hb_free(t);
    free(t);
}

static void test_small_ring_fewer_copies(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;

    hb_init(t, 2, 3);
    hb_owner(5, &own);
    hb_block(40, 100, buf, &len, &key);
    hb_lease(t, &own, &key, HB_DAY_S, &l);
    assert_int_equal(put_wait(t, 0, buf, len, &l), 0);
    assert_int_equal(res.copies, 2);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 2);
    hb_free(t);
    free(t);
}

static void test_owner_quota(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key x, y;
    struct lease l;
    struct id ka, kb;
    size_t len;

    hb_init(t, 3, 3);
    for (int i = 0; i < t->nn; i++)
        t->n[i].b->cfg.owner_cap = 3000;
    hb_owner(6, &x);
    hb_owner(7, &y);
    hb_block(50, 2000, buf, &len, &ka);
    hb_lease(t, &x, &ka, HB_DAY_S, &l);
    assert_int_equal(put_wait(t, 0, buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    assert_int_equal(bs_index_owner_bytes(&t->n[1].b->ix, &x.pub), len);

    /* A second block would put x over its cap on every node. */
    hb_block(51, 2000, buf, &len, &kb);
    hb_lease(t, &x, &kb, HB_DAY_S, &l);
    assert_int_equal(put_wait(t, 0, buf, len, &l), BS_ERR_QUOTA);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &kb), 0);
    uint64_t refused = 0;
    for (int i = 0; i < t->nn; i++)
        refused += stats(t, i).stores_refused_quota;
    assert_int_equal(refused, 3);

    /* Another owner is not affected. */
    hb_lease(t, &y, &kb, HB_DAY_S, &l);
    assert_int_equal(put_wait(t, 0, buf, len, &l), 0);
    assert_int_equal(res.copies, 3);
    hb_free(t);
    free(t);
}

static void test_lease_refusals(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own, other;
    struct lease l;
    struct id key;
    size_t len;

    hb_init(t, 3, 3);
    hb_owner(8, &own);
    hb_owner(9, &other);
    hb_block(60, 100, buf, &len, &key);
    /* Forged (signed by another key than it names): refused at once. */
    hb_lease(t, &own, &key, HB_DAY_S, &l);
    l.owner = other.pub;
    assert_int_equal(bs_put(t->n[0].b, buf, len, &l, hb_done, &res), BS_ERR_NO_LEASE);
    /* Expired. */
    assert_int_equal(lease_sign(&own, &key, hb_wall_ms(t) - 5000, hb_wall_s(t) - 1, &l), 0);
    assert_int_equal(bs_put(t->n[0].b, buf, len, &l, hb_done, &res), BS_ERR_NO_LEASE);
    /* Longer than any node accepts: the server refuses it. */
    assert_int_equal(
        lease_sign(&own, &key, hb_wall_ms(t), hb_wall_s(t) + BS_LEASE_MAX_S + 3600, &l), 0);
    assert_int_equal(put_wait(t, 0, buf, len, &l), BS_ERR_NO_LEASE);
    /* Stamped far in the future. */
    assert_int_equal(
        lease_sign(&own, &key, hb_wall_ms(t) + BS_LEASE_SKEW_MS + 60000, hb_wall_s(t) + 3600, &l),
        0);
    assert_int_equal(put_wait(t, 0, buf, len, &l), BS_ERR_NO_LEASE);
    assert_int_equal(hb_holders(t, STORE_CONTENT, &key), 0);
    /* Bytes that are not a block. */
    hb_lease(t, &own, &key, HB_DAY_S, &l);
    buf[0] ^= 0xff;
    assert_int_equal(bs_put(t->n[0].b, buf, len, &l, hb_done, &res), BS_ERR_BAD_BLOCK);
    hb_free(t);
    free(t);
}

/* ---- kv ---- */

static size_t make_kv(struct hb_net *t, const struct id *key, int64_t stamp_off, int64_t ttl_s,
                      const char *value, uint8_t *out)
{
    size_t len;
    assert_int_equal(kv_encode(key, (uint64_t)((int64_t)hb_wall_ms(t) + stamp_off),
                               (uint64_t)((int64_t)hb_wall_s(t) + ttl_s), 3, value, strlen(value),
                               out, &len),
                     0);
    return len;
}

static int kv_put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_kv_put(t->n[client].b, bytes, len, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

static void test_kv_last_writer_wins(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct id key;
    static uint8_t v1[KV_MAX_LEN], v2[KV_MAX_LEN], v0[KV_MAX_LEN], old[KV_MAX_LEN];

    hb_init(t, 5, 3);
    memset(&key, 0x5c, sizeof(key));
    int c = outsider(t, &key);
    size_t l1 = make_kv(t, &key, -2000, 3600, "first", v1);
    size_t l2 = make_kv(t, &key, -1000, 3600, "second", v2);
    size_t l0 = make_kv(t, &key, -1500, 3600, "late but older", v0);
    size_t lo = make_kv(t, &key, -9000, -1, "expired", old);

    assert_int_equal(kv_put_wait(t, c, v1, l1), 0);
    assert_int_equal(res.copies, 3);
    assert_int_equal(get_wait(t, c, STORE_KV, &key), 0);
    assert_memory_equal(res.bytes, v1, l1);
    assert_int_equal(kv_put_wait(t, c, v2, l2), 0);
    assert_int_equal(get_wait(t, 0, STORE_KV, &key), 0);
    assert_memory_equal(res.bytes, v2, l2);
    /* A record stamped before the one held loses, wherever it lands. */
    assert_int_equal(kv_put_wait(t, c, v0, l0), BS_ERR_STALE);
    assert_int_equal(get_wait(t, c, STORE_KV, &key), 0);
    assert_int_equal(res.len, l2);
    assert_memory_equal(res.bytes, v2, l2);
    assert_int_equal(kv_put_wait(t, c, old, lo), BS_ERR_STALE);
    /* Rewriting the one held is fine. */
    assert_int_equal(kv_put_wait(t, c, v2, l2), 0);
    /* Once it expires nobody serves it. */
    t->wall_off += 3700 * 1000ull;
    assert_int_equal(get_wait(t, c, STORE_KV, &key), BS_ERR_NOT_FOUND);
    hb_free(t);
    free(t);
}

/* ---- odds and ends ---- */

static void test_input_refuses_garbage(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct addr from;
    uint8_t f[FRAME_HEADER_SIZE + 8];

    hb_init(t, 1, 3);
    addr_v4(&from, 10, 9, 9, 9, 1);
    struct frame_header h = {
        .version = FRAME_VERSION, .type = BS_MSG_GET, .request_id = 1, .length = 8};
    frame_header_encode(&h, f);
    memset(f + FRAME_HEADER_SIZE, 0xee, 8);
    assert_int_equal(bs_input(t->n[0].b, &from, f, sizeof(f)), BS_ERR_MALFORMED);
    /* The length in the header must match the frame. */
    assert_int_equal(bs_input(t->n[0].b, &from, f, sizeof(f) - 1), BS_ERR_MALFORMED);
    /* A reply type sent as a request, an unknown type in the range. */
    h.type = BS_MSG_STORE_OK;
    h.length = 1 + ID_BYTES;
    uint8_t g[FRAME_HEADER_SIZE + 1 + ID_BYTES] = {0};
    frame_header_encode(&h, g);
    g[FRAME_HEADER_SIZE] = STORE_CONTENT;
    assert_int_equal(bs_input(t->n[0].b, &from, g, sizeof(g)), BS_ERR_MALFORMED);
    h.type = 1017;
    frame_header_encode(&h, g);
    assert_int_equal(bs_input(t->n[0].b, &from, g, sizeof(g)), BS_ERR_MALFORMED);
    /* A well-formed reply nobody asked for is ignored. */
    h.type = BS_MSG_STORE_OK;
    h.flags = FRAME_F_REPLY;
    frame_header_encode(&h, g);
    assert_int_equal(bs_input(t->n[0].b, &from, g, sizeof(g)), 0);
    assert_int_equal(t->nq, 0);
    hb_free(t);
    free(t);
}

static void test_free_cancels(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key own;
    struct lease l;
    struct id key;
    size_t len;

    hb_init(t, 3, 3);
    hb_owner(14, &own);
    hb_block(80, 100, buf, &len, &key);
    hb_lease(t, &own, &key, HB_DAY_S, &l);
    memset(&res, 0, sizeof(res));
    memset(&res2, 0, sizeof(res2));
    assert_int_equal(bs_put(t->n[0].b, buf, len, &l, hb_done, &res), 0);
    assert_int_equal(bs_get(t->n[0].b, STORE_CONTENT, &key, hb_done, &res2), 0);
    assert_false(res.done); /* never inside the call */
    hb_flush(t);
    bs_free(t->n[0].b);
    t->n[0].b = NULL;
    assert_true(res.done && res2.done);
    assert_int_equal(res.status, -ECANCELED);
    chord_free(t->n[0].c);
    t->n[0].up = false;
    hb_free(t);
    free(t);
}

/* Every node freed with work of every kind in flight: client operations
 * end once with -ECANCELED, nothing leaks or dangles (run under ASan). */
static void test_free_mid_flight(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    static struct hb_res r[24];
    struct sig_key own;
    struct lease l;
    struct id key;
    uint8_t root[ROOT_MAX_LEN];
    size_t len;
    unsigned n = 0;

    hb_init(t, 5, 3);
    hb_owner(16, &own);
    memset(r, 0, sizeof(r));
    t->n[2].cut = true; /* requests to it wait for their timeouts */
    for (unsigned i = 0; i < 8; i++) {
        hb_block(90 + i, 300, buf, &len, &key);
        hb_lease(t, &own, &key, HB_DAY_S, &l);
        assert_int_equal(bs_put(t->n[i % 2].b, buf, len, &l, hb_done, &r[n++]), 0);
        assert_int_equal(bs_get(t->n[3].b, STORE_CONTENT, &key, hb_done, &r[n++]), 0);
    }
    len = make_root(&own, 1, "root", root);
    root_key(&own.pub, &key);
    assert_int_equal(bs_root_put(t->n[4].b, root, len, 0, hb_done, &r[n++]), 0);
    assert_int_equal(bs_get(t->n[1].b, STORE_ROOT, &key, hb_done, &r[n++]), 0);
    hb_lease(t, &own, &key, HB_DAY_S, &l);
    assert_int_equal(bs_lease_update(t->n[0].b, &key, &l, hb_done, &r[n++]), 0);
    hb_run(t, 1500);
    /* Some finished (the ones that did not need node 2), the rest are
     * waiting; free every node, in an order that leaves replies queued. */
    for (int i = t->nn - 1; i >= 0; i--) {
        bs_free(t->n[i].b);
        chord_free(t->n[i].c);
        t->n[i].b = NULL;
        t->n[i].c = NULL;
        t->n[i].up = false;
    }
    unsigned cancelled = 0;
    for (unsigned i = 0; i < n; i++) {
        assert_true(r[i].done);
        cancelled += r[i].status == -ECANCELED;
    }
    assert_true(cancelled > 0);
    hb_free(t);
    free(t);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_k_copies),
        cmocka_unit_test(test_get_fallback_and_repair),
        cmocka_unit_test(test_full_node_diverts),
        cmocka_unit_test(test_silent_member_diverts),
        cmocka_unit_test(test_put_member_odd_error),
        cmocka_unit_test(test_small_ring_fewer_copies),
        cmocka_unit_test(test_owner_quota),
        cmocka_unit_test(test_lease_refusals),
        cmocka_unit_test(test_kv_last_writer_wins),
        cmocka_unit_test(test_input_refuses_garbage),
        cmocka_unit_test(test_free_cancels),
        cmocka_unit_test(test_free_mid_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
