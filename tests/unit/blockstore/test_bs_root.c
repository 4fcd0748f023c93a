/* test_bs_root.c — roots through the block server (root.c, server.c) on
 * small rings of whole nodes (harness_bs.c): compare-and-swap, majority
 * reads and repair, writes left unanswered, the bounded queue of puts of
 * one key, copies that went bad, overlapping writes that complete in any
 * order. */
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


/* root.c: root puts of one key at the primary, active and waiting. */
#define ROOT_QUEUE_MAX 64

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
    hb_complete(t, &c, status);
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


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_cas),
        cmocka_unit_test(test_root_majority),
        cmocka_unit_test(test_root_unanswered_then_superseded),
        cmocka_unit_test(test_root_queue_local_bounded),
        cmocka_unit_test(test_root_bad_copy_not_none),
        cmocka_unit_test(test_root_overlapping_writes_settle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
