/* test_bs.c — the block server and client (bs.c, server.c, put.c, root.c,
 * lease.c, client.c) on small rings of whole nodes (harness_bs.c): puts
 * and gets with k copies, fallback and repair of a bad copy, replica
 * diversion for space and for silence, quotas, root compare-and-swap,
 * leases and reclaim with tombstones, kv records. */
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

/* root.c: root puts of one key at the primary, active and waiting. */
#define ROOT_QUEUE_MAX 64

static uint8_t buf[BLOCK_MAX_STORED];
static struct hb_res res, res2;

/* A node that is not in the replica set of key (the client). */
static int outsider(struct hb_net *t, const struct id *key)
{
    int set[HB_NODES];
    size_t n = hb_replica_set(t, key, set, false);
    for (int i = 0; i < t->nn; i++) {
        bool in = false;
        for (size_t j = 0; j < n; j++)
            in |= set[j] == i;
        if (!in)
            return i;
    }
    fail_msg("every node is in the replica set");
    return -1;
}

static int put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len,
                    const struct lease *l)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_put(t->n[client].b, bytes, len, l, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

static int get_wait(struct hb_net *t, int client, enum store_type type, const struct id *key)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_get(t->n[client].b, type, key, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

static int lease_wait(struct hb_net *t, int client, const struct id *key, const struct lease *l)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_lease_update(t->n[client].b, key, l, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

static struct bs_stats stats(struct hb_net *t, int i)
{
    struct bs_stats s;
    bs_get_stats(t->n[i].b, &s);
    return s;
}

/* Feeds node `to` a request frame from an address outside the ring and
 * returns the reply it sends at once (decoded into *rep; the payload stays
 * in *frame, which the caller frees). */
static void inject(struct hb_net *t, int to, const struct bs_msg *m, struct bs_msg *rep,
                   uint8_t **frame)
{
    struct addr stranger;
    uint8_t *f = malloc(FRAME_HEADER_SIZE + bs_msg_size(m));
    size_t len;
    addr_v4(&stranger, 10, 9, 9, 9, 4000);
    assert_int_equal(bs_msg_encode(m, f + FRAME_HEADER_SIZE, bs_msg_size(m), &len), 0);
    struct frame_header h = {
        .version = FRAME_VERSION, .type = m->type, .request_id = 777, .length = (uint32_t)len};
    frame_header_encode(&h, f);
    hb_flush(t);
    assert_int_equal(bs_input(t->n[to].b, &stranger, f, FRAME_HEADER_SIZE + len), 0);
    free(f);
    *frame = NULL;
    for (size_t i = 0; i < t->nq; i++) {
        if (!addr_eq(&t->q[i].to, &stranger))
            continue;
        assert_int_equal(frame_header_decode(t->q[i].bytes, t->q[i].len, &h), 0);
        assert_true(h.flags & FRAME_F_REPLY);
        assert_int_equal(h.request_id, 777);
        *frame = t->q[i].bytes;
        assert_int_equal(bs_msg_decode(h.type, *frame + FRAME_HEADER_SIZE, h.length, rep), 0);
        rep->type = h.type;
        memmove(&t->q[i], &t->q[i + 1], (t->nq - i - 1) * sizeof(t->q[0]));
        t->nq--;
        return;
    }
    fail_msg("no immediate reply");
}

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
            bs_persist_done(t->n[c.node].b, c.token, 0);
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

/* ---- roots ---- */

static size_t make_root(const struct sig_key *k, uint64_t version, const char *payload,
                        uint8_t *out)
{
    size_t len;
    assert_int_equal(root_encode(k, version, payload, strlen(payload), out, &len), 0);
    return len;
}

static int root_put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len,
                         uint64_t expect)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_root_put(t->n[client].b, bytes, len, expect, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

static void test_root_cas(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v1[ROOT_MAX_LEN], v2a[ROOT_MAX_LEN], v2b[ROOT_MAX_LEN], v3[ROOT_MAX_LEN];
    int set[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(10, &k);
    root_key(&k.pub, &key);
    hb_replica_set(t, &key, set, false);
    size_t l1 = make_root(&k, 1, "commit one", v1);
    size_t l2a = make_root(&k, 2, "commit two, a", v2a);
    size_t l2b = make_root(&k, 2, "commit two, b", v2b);
    size_t l3 = make_root(&k, 3, "commit three", v3);
    int c = outsider(t, &key);

    assert_int_equal(root_put_wait(t, c, v1, l1, 0), 0);
    assert_int_equal(res.version, 1);
    for (int j = 0; j < 3; j++)
        assert_int_equal(bs_root_version(t->n[set[j]].b, &key), 1);

    /* Expecting no root, but there is one: CONFLICT with the current. */
    assert_int_equal(root_put_wait(t, c, v2a, l2a, 0), BS_ERR_CONFLICT);
    assert_int_equal(res.version, 1);
    assert_int_equal(res.len, l1);
    assert_memory_equal(res.bytes, v1, l1);

    /* Two writers expect version 1 at once: one wins, the other learns
     * the winner. */
    memset(&res, 0, sizeof(res));
    memset(&res2, 0, sizeof(res2));
    assert_int_equal(bs_root_put(t->n[c].b, v2a, l2a, 1, hb_done, &res), 0);
    assert_int_equal(bs_root_put(t->n[set[2]].b, v2b, l2b, 1, hb_done, &res2), 0);
    hb_wait(t, &res);
    hb_wait(t, &res2);
    assert_true((res.status == 0) != (res2.status == 0));
    struct hb_res *won = res.status == 0 ? &res : &res2, *lost = res.status == 0 ? &res2 : &res;
    const uint8_t *wbytes = won == &res ? v2a : v2b;
    size_t wlen = won == &res ? l2a : l2b;
    assert_int_equal(lost->status, BS_ERR_CONFLICT);
    assert_int_equal(lost->version, 2);
    assert_int_equal(lost->len, wlen);
    assert_memory_equal(lost->bytes, wbytes, wlen);

    /* A read returns the winner. */
    assert_int_equal(get_wait(t, c, STORE_ROOT, &key), 0);
    assert_int_equal(res.version, 2);
    assert_memory_equal(res.bytes, wbytes, wlen);

    /* An old root, validly signed, is refused (no rollback)... */
    assert_int_equal(root_put_wait(t, c, v1, l1, BS_ROOT_ANY), BS_ERR_STALE);
    for (int j = 0; j < 3; j++)
        assert_int_equal(bs_root_version(t->n[set[j]].b, &key), 2);
    /* ...also when pushed straight to a member, which answers with the
     * root it holds. */
    struct bs_msg m, rep;
    uint8_t *frame;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_STORE;
    m.rtype = STORE_ROOT;
    m.key = key;
    m.bytes = v1;
    m.len = l1;
    inject(t, set[1], &m, &rep, &frame);
    assert_int_equal(rep.type, BS_MSG_FAILURE);
    assert_int_equal(rep.code, BS_ERR_STALE);
    assert_int_equal(rep.len, wlen);
    assert_memory_equal(rep.bytes, wbytes, wlen);
    free(frame);

    /* A forged root: the client refuses to send it, a server to take it. */
    uint8_t forged[ROOT_MAX_LEN];
    memcpy(forged, v3, l3);
    forged[l3 - 1] ^= 0x01;
    assert_int_equal(bs_root_put(t->n[c].b, forged, l3, 2, hb_done, &res), BS_ERR_BAD_BLOCK);
    m.bytes = forged;
    m.len = l3;
    inject(t, set[1], &m, &rep, &frame);
    assert_int_equal(rep.code, BS_ERR_BAD_BLOCK);
    free(frame);
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_PUT;
    m.rtype = STORE_ROOT;
    m.target = chord_vnode_self(t->n[set[0]].c, 0)->id;
    m.key = key;
    m.version = 2;
    m.bytes = forged;
    m.len = l3;
    inject(t, set[0], &m, &rep, &frame);
    assert_int_equal(rep.code, BS_ERR_BAD_BLOCK);
    free(frame);
    for (int j = 0; j < 3; j++)
        assert_int_equal(bs_root_version(t->n[set[j]].b, &key), 2);

    /* The next version, expecting the current one, goes through; a retry
     * of it (the same bytes) is a success too. */
    assert_int_equal(root_put_wait(t, c, v3, l3, 2), 0);
    assert_int_equal(root_put_wait(t, c, v3, l3, 2), 0);
    assert_int_equal(get_wait(t, set[1], STORE_ROOT, &key), 0);
    assert_int_equal(res.version, 3);
    assert_int_equal(stats(t, set[0]).cas_ok, 4); /* v1, the winner, v3 and its retry */
    assert_true(stats(t, set[0]).cas_conflict >= 2);
    hb_free(t);
    free(t);
}

static void test_root_majority(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v1[ROOT_MAX_LEN], v2[ROOT_MAX_LEN], v3[ROOT_MAX_LEN];
    int set[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(11, &k);
    root_key(&k.pub, &key);
    hb_replica_set(t, &key, set, false);
    size_t l1 = make_root(&k, 1, "one", v1);
    size_t l2 = make_root(&k, 2, "two", v2);
    size_t l3 = make_root(&k, 3, "three", v3);
    int c = outsider(t, &key);
    assert_int_equal(root_put_wait(t, c, v1, l1, 0), 0);

    /* One member misses version 2: a majority still makes it. */
    t->drop_type = BS_MSG_STORE;
    t->drop_mask = 1u << set[2];
    assert_int_equal(root_put_wait(t, c, v2, l2, 1), 0);
    assert_int_equal(res.copies, 2);
    t->drop_mask = 0;
    assert_int_equal(bs_root_version(t->n[set[2]].b, &key), 1);

    /* A read at the primary sees version 2 on a majority and repairs the
     * member that held less. */
    assert_int_equal(get_wait(t, c, STORE_ROOT, &key), 0);
    assert_int_equal(res.version, 2);
    hb_run(t, 1000);
    assert_int_equal(bs_root_version(t->n[set[2]].b, &key), 2);
    assert_true(stats(t, set[0]).repairs_sent >= 1);

    /* Two members miss version 3: stored on one of three is neither a
     * success nor a clean failure. */
    t->drop_type = BS_MSG_STORE;
    t->drop_mask = 1u << set[1] | 1u << set[2];
    assert_int_equal(root_put_wait(t, c, v3, l3, 2), BS_ERR_INDETERMINATE);
    assert_true(strlen(res.reason) > 0);
    t->drop_mask = 0;
    assert_int_equal(bs_root_version(t->n[set[0]].b, &key), 3);
    assert_int_equal(bs_root_version(t->n[set[1]].b, &key), 2);
    /* Reading tells: the primary's version 3 is on one member only, the
     * read of a majority still finds it (the highest valid one) and
     * spreads it. */
    assert_int_equal(get_wait(t, c, STORE_ROOT, &key), 0);
    assert_int_equal(res.version, 3);
    hb_run(t, 1000);
    for (int j = 0; j < 3; j++)
        assert_int_equal(bs_root_version(t->n[set[j]].b, &key), 3);
    assert_int_equal(stats(t, set[0]).cas_indeterminate, 1);
    hb_free(t);
    free(t);
}

static void test_root_unanswered_then_superseded(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v1[ROOT_MAX_LEN], v2[ROOT_MAX_LEN], v3[ROOT_MAX_LEN];
    int all[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(15, &k);
    root_key(&k.pub, &key);
    hb_replica_set(t, &key, all, true);
    size_t l1 = make_root(&k, 1, "one", v1);
    size_t l2 = make_root(&k, 2, "two", v2);
    size_t l3 = make_root(&k, 3, "three", v3);
    int a = all[3], bn = all[4];
    assert_int_equal(root_put_wait(t, a, v1, l1, 0), 0);

    /* a's put of version 2 is stored, but every PUT_OK to a is lost (the
     * primary answers each retry of it again, in vain); b
     * writes version 3 on top of it meanwhile. a starts over, finds 3:
     * that is no proof that 2 was never written, so a hears
     * INDETERMINATE (with the current root), not CONFLICT. */
    t->drop_type = BS_MSG_PUT_OK;
    t->drop_mask = 1u << a;
    memset(&res, 0, sizeof(res));
    assert_int_equal(bs_root_put(t->n[a].b, v2, l2, 1, hb_done, &res), 0);
    hb_run(t, 100);
    assert_int_equal(bs_root_version(t->n[all[0]].b, &key), 2);
    memset(&res2, 0, sizeof(res2));
    assert_int_equal(bs_root_put(t->n[bn].b, v3, l3, 2, hb_done, &res2), 0);
    hb_wait(t, &res2);
    assert_int_equal(res2.status, 0);
    hb_wait(t, &res);
    t->drop_mask = 0;
    assert_int_equal(res.status, BS_ERR_INDETERMINATE);
    assert_int_equal(res.version, 3);
    assert_memory_equal(res.bytes, v3, l3);
    hb_free(t);
    free(t);
}

/* Sends node `to` a request frame from the stranger address with request
 * id reqid, without delivering anything (the replies stay queued). */
static void raw_request(struct hb_net *t, int to, const struct bs_msg *m, uint64_t reqid)
{
    struct addr stranger;
    size_t cap = FRAME_HEADER_SIZE + bs_msg_size(m), len;
    uint8_t *f = malloc(cap);
    assert_non_null(f);
    addr_v4(&stranger, 10, 9, 9, 9, 4000);
    assert_int_equal(bs_msg_encode(m, f + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE, &len), 0);
    struct frame_header h = {
        .version = FRAME_VERSION, .type = m->type, .request_id = reqid, .length = (uint32_t)len};
    frame_header_encode(&h, f);
    assert_int_equal(bs_input(t->n[to].b, &stranger, f, FRAME_HEADER_SIZE + len), 0);
    free(f);
}

/* Counts the replies queued for the stranger, by failure code; removes
 * them. Returns how many there were. */
static unsigned stranger_replies(struct hb_net *t, int code, unsigned *with_code)
{
    struct addr stranger;
    unsigned n = 0;
    addr_v4(&stranger, 10, 9, 9, 9, 4000);
    *with_code = 0;
    for (size_t i = 0; i < t->nq;) {
        if (!addr_eq(&t->q[i].to, &stranger)) {
            i++;
            continue;
        }
        struct frame_header h;
        struct bs_msg rep;
        assert_int_equal(frame_header_decode(t->q[i].bytes, t->q[i].len, &h), 0);
        assert_int_equal(bs_msg_decode(h.type, t->q[i].bytes + FRAME_HEADER_SIZE, h.length, &rep),
                         0);
        if (h.type == BS_MSG_FAILURE && rep.code == code)
            (*with_code)++;
        n++;
        free(t->q[i].bytes);
        memmove(&t->q[i], &t->q[i + 1], (t->nq - i - 1) * sizeof(t->q[0]));
        t->nq--;
    }
    return n;
}

/* Delivers persist completions and runs due ticks of every node's block
 * store, delivering no frame (hb_flush would drop the replies to the
 * stranger; frames between nodes wait in the queue). */
static void settle(struct hb_net *t)
{
    for (unsigned guard = 0;; guard++) {
        assert_true(guard < 100000);
        if (t->ncq) {
            struct hb_comp c = t->cq[0];
            memmove(&t->cq[0], &t->cq[1], --t->ncq * sizeof(*t->cq));
            bs_persist_done(t->n[c.node].b, c.token, 0);
            continue;
        }
        bool ran = false;
        for (int i = 0; i < t->nn; i++) {
            if (bs_next_deadline(t->n[i].b) <= t->now) {
                bs_tick(t->n[i].b);
                ran = true;
            }
        }
        if (!ran)
            return;
    }
}

/* A node that is the whole replica set (k = 1) reads roots locally, so a
 * root put that loses its compare-and-swap finishes at once. Thousands of
 * them queued behind one write must neither recurse once each (a stack
 * overflow) nor queue without bound: past ROOT_QUEUE_MAX the primary
 * answers -EBUSY at once; the rest each get their CONFLICT. */
static void test_root_queue_local_bounded(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v1[ROOT_MAX_LEN], v2[ROOT_MAX_LEN], v3[ROOT_MAX_LEN];
    const unsigned n = 20000;

    hb_init(t, 1, 1);
    hb_owner(16, &k);
    root_key(&k.pub, &key);
    size_t l1 = make_root(&k, 1, "one", v1);
    size_t l2 = make_root(&k, 2, "two", v2);
    size_t l3 = make_root(&k, 3, "three", v3);
    assert_int_equal(root_put_wait(t, 0, v1, l1, 0), 0);

    struct bs_msg m;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_PUT;
    m.rtype = STORE_ROOT;
    m.target = chord_vnode_self(t->n[0].c, 0)->id;
    m.key = key;
    m.version = 1;
    m.bytes = v2;
    m.len = l2;
    hb_flush(t);
    /* Version 2 reads, then waits for its durable write (not delivered
     * yet); every later put of this key queues behind it. */
    raw_request(t, 0, &m, 1);
    /* Expecting 1 again: wrong once version 2 is written. */
    m.bytes = v3;
    m.len = l3;
    for (unsigned i = 0; i < n; i++)
        raw_request(t, 0, &m, 100 + i);
    unsigned busy, got = stranger_replies(t, -EBUSY, &busy);
    assert_int_equal(got, busy);
    assert_true(busy >= n - ROOT_QUEUE_MAX);
    assert_true(busy < n);
    unsigned queued = n - busy;

    /* The write completes; the queue drains without deep recursion.
     * (Completions and ticks by hand: hb_flush drops the stranger's
     * replies.) */
    settle(t);
    assert_int_equal(bs_root_version(t->n[0].b, &key), 2);
    unsigned conflicts;
    got = stranger_replies(t, BS_ERR_CONFLICT, &conflicts);
    assert_int_equal(got, queued + 1); /* and version 2's PUT_OK */
    assert_int_equal(conflicts, queued);
    /* The key is usable afterwards. */
    assert_int_equal(root_put_wait(t, 0, v3, l3, 2), 0);
    hb_free(t);
    free(t);
}

/* A member that held an acknowledged root and lost it (its copy failed
 * its check) is no witness of "no root": it neither counts toward the
 * read's majority, locally or remotely, nor takes a rollback or a rival
 * root of its version; a read repairs it with the very bytes it had. */
static void test_root_bad_copy_not_none(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v5[ROOT_MAX_LEN], v6[ROOT_MAX_LEN], v6r[ROOT_MAX_LEN], v7[ROOT_MAX_LEN],
        v7r[ROOT_MAX_LEN];
    int set[HB_NODES];

    hb_init(t, 5, 3);
    hb_owner(17, &k);
    root_key(&k.pub, &key);
    hb_replica_set(t, &key, set, false);
    int p = set[0], bn = set[1], cn = set[2];
    size_t l5 = make_root(&k, 5, "five", v5);
    size_t l6 = make_root(&k, 6, "six", v6);
    size_t l6r = make_root(&k, 6, "six, a rival", v6r);
    size_t l7 = make_root(&k, 7, "seven", v7);
    size_t l7r = make_root(&k, 7, "seven, a rival", v7r);
    int c = outsider(t, &key);

    assert_int_equal(root_put_wait(t, c, v5, l5, 0), 0);
    /* Version 6 is acknowledged on P and B; C misses it. */
    t->drop_type = BS_MSG_STORE;
    t->drop_mask = 1u << cn;
    assert_int_equal(root_put_wait(t, c, v6, l6, 5), 0);
    assert_int_equal(res.copies, 2);
    /* P's copy goes bad (found and quarantined on its next read); B does
     * not answer reads. A rival expecting 5 reads P (bad) and C (5): one
     * answer of three is no majority, nothing is written. */
    hb_rec(t, p, STORE_ROOT, &key)->damaged = true;
    t->drop_type = BS_MSG_ROOT_READ;
    t->drop_mask = 1u << bn;
    assert_int_not_equal(root_put_wait(t, c, v6r, l6r, 5), 0);
    t->drop_mask = 0;
    assert_null(hb_rec(t, p, STORE_ROOT, &key));
    struct hb_rec *r = hb_rec(t, bn, STORE_ROOT, &key);
    assert_int_equal(r->len, l6);
    assert_memory_equal(r->bytes, v6, l6);
    assert_int_equal(bs_root_version(t->n[cn].b, &key), 5);

    /* The bad holder refuses a rollback and a rival of its version,
     * straight from a peer. */
    struct bs_msg m, rep;
    uint8_t *frame;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_STORE;
    m.rtype = STORE_ROOT;
    m.key = key;
    m.bytes = v5;
    m.len = l5;
    inject(t, p, &m, &rep, &frame);
    assert_int_equal(rep.type, BS_MSG_FAILURE);
    assert_int_equal(rep.code, BS_ERR_STALE);
    free(frame);
    m.bytes = v6r;
    m.len = l6r;
    inject(t, p, &m, &rep, &frame);
    assert_int_equal(rep.type, BS_MSG_FAILURE);
    assert_int_equal(rep.code, BS_ERR_STALE);
    free(frame);
    assert_null(hb_rec(t, p, STORE_ROOT, &key));

    /* A read finds 6 on B and C... (P does not count) and repairs C and
     * P with it: P takes its own version back. */
    assert_int_equal(get_wait(t, c, STORE_ROOT, &key), 0);
    assert_int_equal(res.version, 6);
    hb_run(t, 1000);
    for (int j = 0; j < 3; j++) {
        r = hb_rec(t, set[j], STORE_ROOT, &key);
        assert_non_null(r);
        assert_int_equal(r->len, l6);
        assert_memory_equal(r->bytes, v6, l6);
        assert_int_equal(bs_root_version(t->n[set[j]].b, &key), 6);
    }

    /* Remotely too: 7 acknowledged on P and B, C misses it; both copies
     * go bad. A ROOT_READ of B answers a failure, not "none", so a rival
     * expecting 6 finds only C and writes nothing. */
    t->drop_type = BS_MSG_STORE;
    t->drop_mask = 1u << cn;
    assert_int_equal(root_put_wait(t, c, v7, l7, 6), 0);
    t->drop_mask = 0;
    hb_rec(t, p, STORE_ROOT, &key)->damaged = true;
    hb_rec(t, bn, STORE_ROOT, &key)->damaged = true;
    assert_int_not_equal(root_put_wait(t, c, v7r, l7r, 6), 0);
    assert_int_equal(bs_root_version(t->n[cn].b, &key), 6);
    assert_null(hb_rec(t, p, STORE_ROOT, &key));
    assert_null(hb_rec(t, bn, STORE_ROOT, &key));
    hb_free(t);
    free(t);
}

static int store_status[4];

static void store_cb(struct bs *b, void *ctx, int status)
{
    (void)b;
    *(int *)ctx = status;
}

/* Completes the persist operation at position i of the queue with status. */
static void complete_at(struct hb_net *t, size_t i, int status)
{
    assert_true(i < t->ncq);
    struct hb_comp c = t->cq[i];
    memmove(&t->cq[i], &t->cq[i + 1], (t->ncq - i - 1) * sizeof(*t->cq));
    t->ncq--;
    bs_persist_done(t->n[c.node].b, c.token, status);
}

/* Puts bytes back in node i's in-memory store, as a write that failed
 * leaves the disk (the harness writes at once, whatever the outcome). */
static void disk_holds(struct hb_net *t, int i, const struct id *key, const uint8_t *bytes,
                       size_t len)
{
    struct hb_rec *r = hb_rec(t, i, STORE_ROOT, key);
    assert_non_null(r);
    free(r->bytes);
    r->bytes = malloc(len);
    assert_non_null(r->bytes);
    memcpy(r->bytes, bytes, len);
    r->len = len;
}

/* Two root writes of one key overlap and complete in any order, some
 * failing: once they settle the index holds the version of the write that
 * last succeeded, which is the one on disk. */
static void test_root_overlapping_writes_settle(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v1[ROOT_MAX_LEN], v2[ROOT_MAX_LEN], v3[ROOT_MAX_LEN], v4[ROOT_MAX_LEN],
        v5[ROOT_MAX_LEN];

    hb_init(t, 1, 1);
    hb_owner(18, &k);
    root_key(&k.pub, &key);
    size_t l1 = make_root(&k, 1, "one", v1);
    size_t l2 = make_root(&k, 2, "two", v2);
    size_t l3 = make_root(&k, 3, "three", v3);
    size_t l4 = make_root(&k, 4, "four", v4);
    size_t l5 = make_root(&k, 5, "five", v5);
    struct bs *b = t->n[0].b;
    assert_int_equal(root_put_wait(t, 0, v1, l1, 0), 0);
    hb_flush(t);

    /* 2 then 3; 3 fails first, 2 succeeds: 2 is on disk. */
    assert_int_equal(
        bs_store_record(b, STORE_ROOT, &key, v2, l2, NULL, 0, false, store_cb, &store_status[0]),
        0);
    assert_int_equal(
        bs_store_record(b, STORE_ROOT, &key, v3, l3, NULL, 0, false, store_cb, &store_status[1]),
        0);
    assert_int_equal(t->ncq, 2);
    complete_at(t, 1, -EIO);
    disk_holds(t, 0, &key, v2, l2);
    complete_at(t, 0, 0);
    hb_run(t, 10);
    assert_int_equal(store_status[0], 0);
    assert_int_not_equal(store_status[1], 0);
    assert_int_equal(bs_root_version(b, &key), 2);

    /* 3 then 4, both fail (4 first): 2 is still what is on disk. */
    assert_int_equal(
        bs_store_record(b, STORE_ROOT, &key, v3, l3, NULL, 0, false, store_cb, &store_status[2]),
        0);
    assert_int_equal(
        bs_store_record(b, STORE_ROOT, &key, v4, l4, NULL, 0, false, store_cb, &store_status[3]),
        0);
    complete_at(t, 1, -EIO);
    complete_at(t, 0, -EIO);
    disk_holds(t, 0, &key, v2, l2);
    hb_run(t, 10);
    assert_int_equal(bs_root_version(b, &key), 2);

    /* 3 then 4; 4 succeeds first, then 3 fails: 4 is on disk. */
    assert_int_equal(
        bs_store_record(b, STORE_ROOT, &key, v3, l3, NULL, 0, false, store_cb, &store_status[2]),
        0);
    assert_int_equal(
        bs_store_record(b, STORE_ROOT, &key, v4, l4, NULL, 0, false, store_cb, &store_status[3]),
        0);
    complete_at(t, 1, 0);
    complete_at(t, 0, -EIO);
    disk_holds(t, 0, &key, v4, l4);
    hb_run(t, 10);
    assert_int_equal(bs_root_version(b, &key), 4);

    /* The key goes on from what is on disk. */
    assert_int_equal(root_put_wait(t, 0, v5, l5, 4), 0);
    assert_int_equal(bs_root_version(b, &key), 5);
    hb_free(t);
    free(t);
}

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
        cmocka_unit_test(test_root_cas),
        cmocka_unit_test(test_root_majority),
        cmocka_unit_test(test_root_unanswered_then_superseded),
        cmocka_unit_test(test_root_queue_local_bounded),
        cmocka_unit_test(test_root_bad_copy_not_none),
        cmocka_unit_test(test_root_overlapping_writes_settle),
        cmocka_unit_test(test_reclaim_and_tombstones),
        cmocka_unit_test(test_lease_flood_bounded),
        cmocka_unit_test(test_kv_last_writer_wins),
        cmocka_unit_test(test_input_refuses_garbage),
        cmocka_unit_test(test_free_cancels),
        cmocka_unit_test(test_free_mid_flight),
        cmocka_unit_test(test_location_cache_poisoning),
        cmocka_unit_test(test_request_ids_random),
        cmocka_unit_test(test_primary_put_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
