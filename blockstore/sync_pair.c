/* sync_pair.c — pairwise range sessions: a vnode and one other member of
 * its replica set compare (pred, vnode] by bucket digests, descend where
 * they differ, and push, pull or exchange leases record by record. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/sync_int.h"

/* A pairwise push/pull/lease of vnode v's session with peer, within v's
 * budget. Returns false when the budget is spent. */
static bool pair_op(struct bs_sync *s, unsigned v, uint8_t kind, uint8_t then,
                    const struct addr *peer, uint8_t type, const struct id *key)
{
    if (s->vn_ops[v] >= SYNC_OPS_PER_VNODE)
        return false;
    if (sync_key_busy(s, key))
        return true; /* someone is on it; look again next round */
    if (kind == OP_PUSH && sync_peer_full(s, peer))
        return true;
    /* Nothing comes in while this node leaves or lately had no room for a
     * pull: the bytes would be fetched for nothing. */
    if (kind == OP_PULL && (s->b->leaving || sync_peer_full(s, sync_self_addr(s->b))))
        return true;
    struct sync_op *op = sync_op_new(s, kind);
    if (!op)
        return false;
    op->vnode = (uint16_t)v;
    op->then = then;
    op->peer = *peer;
    op->type = type;
    op->key = *key;
    s->vn_ops[v]++;
    sync_op_start(s, op);
    return true;
}

/* ---- pairwise sessions (the initiator's side) ---- */

static struct sync_session *sess_get(struct bs_sync *s, uint32_t slot, uint32_t gen)
{
    if (slot >= s->nsess || !s->sess[slot].used || s->sess[slot].gen != gen)
        return NULL;
    return &s->sess[slot];
}

static struct sync_session *sess_find(struct bs_sync *s, unsigned v, const struct addr *peer)
{
    for (size_t i = 0; i < s->nsess; i++)
        if (s->sess[i].used && s->sess[i].vnode == v && addr_eq(&s->sess[i].peer, peer))
            return &s->sess[i];
    return NULL;
}

static struct sync_session *sess_new(struct bs_sync *s)
{
    size_t i;
    for (i = 0; i < s->nsess; i++)
        if (!s->sess[i].used)
            break;
    if (i == s->nsess) {
        struct sync_session *v = realloc(s->sess, (s->nsess + 1) * sizeof(*v));
        if (!v)
            return NULL;
        s->sess = v;
        s->nsess++;
    }
    struct sync_session *se = &s->sess[i];
    memset(se, 0, sizeof(*se));
    se->used = true;
    se->gen = ++s->sess_gen;
    return se;
}

static void sess_end(struct sync_session *se)
{
    free(se->q);
    memset(se, 0, sizeof(*se));
}

static int sess_queue(struct sync_session *se, uint8_t depth, const uint8_t *prefix)
{
    if (se->nq == se->capq) {
        size_t cap = se->capq ? se->capq * 2 : 16;
        struct sync_desc *q = realloc(se->q, cap * sizeof(*q));
        if (!q)
            return -ENOMEM;
        se->q = q;
        se->capq = cap;
    }
    se->q[se->nq].depth = depth;
    memcpy(se->q[se->nq].prefix, prefix, depth);
    se->nq++;
    return 0;
}

/* Sends one SYNC_DIGEST of the session: our buckets under prefix. */
static int digest_send(struct bs_sync *s, struct sync_session *se, uint8_t depth,
                       const uint8_t *prefix)
{
    struct sync_digest m;
    uint8_t buf[SYNC_DIGEST_WIRE_MAX];
    size_t len;
    uint64_t reqid;
    int rc;

    memset(&m, 0, sizeof(m));
    m.lo = se->lo;
    m.hi = se->hi;
    m.depth = depth;
    memcpy(m.prefix, prefix, depth);
    sync_buckets_compute(&s->b->ix, &se->lo, &se->hi, depth, prefix, m.b);
    rc = sync_digest_encode(&m, buf, sizeof(buf), &len);
    if (rc < 0)
        return rc;
    struct sync_op *op = sync_op_new(s, OP_DIGEST);
    if (!op)
        return -ENOMEM;
    op->owner = (uint32_t)(se - s->sess);
    op->owner_gen = se->gen;
    op->depth = depth;
    memcpy(op->prefix, prefix, depth);
    op->peer = se->peer;
    rc = bs_rpc(s->b, &se->peer, BS_MSG_SYNC_DIGEST, buf, len, sync_on_rpc, sync_op_ctx(s, op),
                &reqid);
    if (rc < 0) {
        sync_op_free(s, op);
        return rc;
    }
    se->inflight++;
    se->sent++;
    return 0;
}

/* Sends queued descents while there is room; ends an idle session. */
static void sess_pump(struct bs_sync *s, struct sync_session *se)
{
    while (se->inflight < SYNC_DIGESTS_INFLIGHT && se->nq > 0 &&
           se->sent < SYNC_DIGESTS_PER_SESSION) {
        struct sync_desc d = se->q[--se->nq];
        if (digest_send(s, se, d.depth, d.prefix) < 0) {
            se->nq = 0;
            break;
        }
    }
    if (se->inflight == 0)
        sess_end(se);
}

/* What to do about one listed record of the peer, given ours (or none). */
static uint8_t plan_listed(const struct sync_entry *p, const struct bs_entry *e, uint64_t t,
                           uint8_t *then)
{
    bool theirs = p->flags & SYNC_F_PRESENT, their_live = p->flags & SYNC_F_LIVE;

    *then = 0;
    if (p->flags & SYNC_F_BUSY)
        return 0;
    if (!e)
        return theirs && their_live ? OP_PULL : 0;
    if (e->flags & BS_E_WRITING)
        return 0;
    if (!sync_counted(e)) {
        /* Our tombstone: spread the reclaim, or learn the newer grant and
         * then fetch the bytes. */
        if (e->type == STORE_CONTENT && theirs) {
            *then = OP_PULL;
            return OP_LEASE;
        }
        return theirs && their_live ? OP_PULL : 0;
    }
    if (memcmp(e->digest.b, p->digest, SYNC_DIGEST_LEN) == 0)
        return 0;
    bool mine = sync_good(e);
    if (e->type == STORE_CONTENT) {
        if (mine && theirs)
            return OP_LEASE;
        if (mine)
            return sync_live(e, t) ? OP_PUSH : OP_LEASE;
        if (theirs)
            return their_live ? OP_PULL : OP_LEASE;
        return 0;
    }
    if (mine && theirs) {
        if (e->version > p->version)
            return OP_PUSH;
        if (e->version < p->version)
            return their_live ? OP_PULL : 0;
        return 0;
    }
    if (mine)
        return sync_live(e, t) ? OP_PUSH : 0;
    return theirs && their_live ? OP_PULL : 0;
}

struct plan {
    uint8_t kind, then, type;
    struct id key;
};

/* Compares a bucket the peer listed with ours and starts what differs. */
static void bucket_reconcile(struct bs_sync *s, struct sync_session *se, uint8_t depth,
                             const uint8_t *prefix, const struct sync_entry *list, size_t n)
{
    struct bs *b = s->b;
    uint64_t t = sync_now_s(b);
    uint8_t p2[SYNC_DEPTH_MAX + 1];
    struct plan plan[SYNC_LIST_MAX * 2];
    size_t np = 0;
    struct sync_range_it it;
    struct bs_entry *e;

    memcpy(p2, prefix, (size_t)depth + 1);
    for (size_t i = 0; i < n && np < SYNC_N(plan); i++) {
        const struct sync_entry *p = &list[i];
        /* Only what lies in the range and the bucket asked about. */
        if (memcmp(p->key.b, p2, (size_t)depth + 1) != 0 || !id_in_oc(&p->key, &se->lo, &se->hi))
            continue;
        uint8_t then, k = plan_listed(p, bs_index_find(&b->ix, p->type, &p->key), t, &then);
        if (k)
            plan[np++] = (struct plan){k, then, p->type, p->key};
    }
    sync_it_init(&it, &b->ix, &se->lo, &se->hi, (uint8_t)(depth + 1), p2);
    while ((e = sync_it_next(&it)) && np < SYNC_N(plan)) {
        if (!sync_good(e) || (e->flags & BS_E_WRITING) || !sync_live(e, t))
            continue;
        bool listed = false;
        for (size_t i = 0; i < n && !listed; i++)
            listed = list[i].type == e->type && id_eq(&list[i].key, &e->key);
        if (!listed)
            plan[np++] = (struct plan){OP_PUSH, 0, e->type, e->key};
    }
    for (size_t i = 0; i < np; i++)
        if (!pair_op(s, se->vnode, plan[i].kind, plan[i].then, &se->peer, plan[i].type,
                     &plan[i].key))
            break; /* budget spent: the next round finds the rest */
}

void sync_digest_reply(struct bs_sync *s, struct sync_op *op, int status, uint16_t type,
                       const uint8_t *payload, size_t len)
{
    struct sync_session *se = sess_get(s, op->owner, op->owner_gen);
    uint8_t depth = op->depth, prefix[SYNC_DEPTH_MAX + 1];
    memcpy(prefix, op->prefix, depth);
    sync_op_free(s, op);
    if (!se)
        return;
    se->inflight--;
    if (status != 0 || type != BS_MSG_SYNC_DIGEST_OK) {
        LOG_D(s->b->lg, "sync", "digest exchange failed (status %d, type %u)", status, type);
        se->nq = 0;
        sess_pump(s, se);
        return;
    }
    struct sync_reply *r = malloc(sizeof(*r));
    if (!r || sync_reply_decode(payload, len, r) < 0) {
        LOG_W(s->b->lg, "sync", "a SYNC_DIGEST_OK that does not decode");
        free(r);
        se->nq = 0;
        sess_pump(s, se);
        return;
    }
    for (unsigned i = 0; i < r->nb; i++) {
        const struct sync_reply_bucket *rb = &r->rb[i];
        prefix[depth] = rb->bucket;
        if (rb->mode == SYNC_MODE_DESCEND) {
            /* Past the session's budget the rest waits for the next
             * round, which starts over from the top. */
            if (depth < SYNC_DEPTH_MAX && se->sent + se->nq < SYNC_DIGESTS_PER_SESSION &&
                sess_queue(se, (uint8_t)(depth + 1), prefix) < 0)
                break;
            continue;
        }
        bucket_reconcile(s, se, depth, prefix, &r->ent[rb->first], rb->n);
    }
    sync_reply_release(r);
    free(r);
    sess_pump(s, se);
}

/* Starts the session of vnode v with peer over (lo, hi]. */
static void sess_start(struct bs_sync *s, unsigned v, const struct addr *peer, const struct id *lo,
                       const struct id *hi)
{
    uint8_t depth = 0, prefix[SYNC_DEPTH_MAX] = {0};
    struct sync_session *se = sess_new(s);
    if (!se)
        return;
    se->vnode = v;
    se->peer = *peer;
    se->lo = *lo;
    se->hi = *hi;
    /* Every key of a range that does not wrap shares the leading bytes of
     * its two ends: start below them, saving a descent per shared byte. */
    if (id_cmp(lo, hi) < 0) {
        struct id a = *lo;
        sync_id_inc(&a);
        while (depth < SYNC_DEPTH_MAX && a.b[depth] == hi->b[depth]) {
            prefix[depth] = a.b[depth];
            depth++;
        }
    }
    if (digest_send(s, se, depth, prefix) < 0)
        sess_end(se);
}

void sync_pair_round(struct bs_sync *s)
{
    struct bs *b = s->b;
    struct chord *c = b->chord;

    for (unsigned v = 0; v < chord_vnode_count(c) && v < CHORD_MAX_VNODES; v++) {
        struct chord_peer pred, set[BS_REPLICAS_MAX];
        if (!chord_vnode_joined(c, v) || !chord_vnode_predecessor(c, v, &pred))
            continue; /* no range known: nothing to compare */
        struct id self = chord_vnode_self(c, v)->id;
        size_t n = chord_vnode_replica_set(c, v, set, b->cfg.replicas);
        for (size_t i = 1; i < n; i++) {
            if (sess_find(s, v, &set[i].addr))
                continue; /* the last round's session is still at work */
            sess_start(s, v, &set[i].addr, &pred.id, &self);
        }
    }
}

void sync_pair_done(struct bs_sync *s, struct sync_op *op, int status)
{
    struct bs *b = s->b;
    uint8_t kind = op->kind;

    if (status == 0 && kind == OP_PUSH) {
        b->stats.sync_pushed++;
        sync_follow_up(s);
    }
    if (status == 0 && kind == OP_PULL) {
        b->stats.sync_pulled++;
        sync_follow_up(s); /* the other members may lack it too */
    }
    if (status == BS_ERR_FULL && kind == OP_PUSH)
        sync_peer_mark_full(s, &op->peer);
    if (status == BS_ERR_FULL && kind == OP_PULL && sync_self_addr(b))
        sync_peer_mark_full(s, sync_self_addr(b));
    /* A refusal for want of a live lease means the other side knows a
     * lease record we lack (a reclaim, usually): exchange them, so that
     * both come to the same conclusion. */
    if (status == BS_ERR_NO_LEASE && (kind == OP_PUSH || kind == OP_PULL)) {
        op->kind = OP_LEASE;
        op->then = 0;
        sync_op_start(s, op);
        return;
    }
    if (status == 0 && kind == OP_LEASE && op->then == OP_PULL) {
        /* We had a tombstone and the peer the bytes: fetch them only if the
         * merged leases left a live one. */
        const struct bs_entry *e = bs_index_find(&b->ix, op->type, &op->key);
        if (!e || (!sync_counted(e) && bs_entry_live(e, sync_now_s(b)))) {
            op->kind = OP_PULL;
            op->then = 0;
            sync_op_start(s, op);
            return;
        }
    }
    if (status != 0)
        LOG_D(b->lg, "sync", "op %d with a member failed: %s", kind, bs_strerror(status));
    sync_op_free(s, op);
}
