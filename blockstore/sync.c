/* sync.c — maintenance: range digests, push/pull, handoff, expiry.
 *
 * A round runs every cfg.sync_period_ms (±10%) and SYNC_DEBOUNCE_MS after
 * chord reports that a vnode's neighbours changed. It does three things:
 *
 * Range sync. Each joined vnode v with a known predecessor owns (pred, v].
 * For every other member m of its replica set, v runs a pairwise session:
 * it sends SYNC_DIGEST with, for each of the 256 child buckets of a key
 * prefix (the next key byte), the count and the XOR of the 8-byte entry
 * digests of the records it holds there. m answers SYNC_DIGEST_OK with, for
 * each bucket that differs, either its own entries (type, flags, key,
 * version, digest) when both sides hold at most SYNC_LIST_MAX there, or
 * "descend". v descends with one more prefix byte, and for listed buckets
 * pushes what m lacks, pulls what it lacks, exchanges leases where both
 * hold a block with different leases, and moves roots and kv records
 * towards the higher version. Two members in sync exchange one message
 * pair per range. A record counts in the digests when its bytes are held
 * (or being written, or held bad); a pure tombstone (reclaimed leases, no
 * bytes) does not, so that a new member does not differ from the old ones
 * for as long as tombstones are kept; reclaims still spread, because a
 * holder with a tombstone answers a peer that lists the block with a lease
 * exchange, and a push refused for BS_ERR_NO_LEASE is followed by one.
 *
 * Handoff. Records whose key lies in no local vnode's range are located
 * (bs_locate_fresh: a lookup and a LOCATE, never the location cache, which
 * peers teach; one answer covers the whole range of that location). If this
 * node is among the first k distinct physical nodes of the location's
 * replica set it keeps them. Otherwise it asks those members which of the
 * records they hold (SYNC_KEYS), pushes or exchanges leases for the rest
 * (an exchange counts only if the member answers that it holds the block;
 * if not, it is pushed), sends to the location's diversion spares, in
 * order, the copies members refused for want of space, and drops its copy
 * once k distinct nodes confirmed holding it present. A refusal (FULL,
 * QUOTA, a mark of an earlier one) never counts, so the copy is never
 * dropped with fewer than k others holding it.
 *
 * Expiry. kv records past their expiry and content blocks without a live
 * lease are dropped (bs_drop keeps the reclaim records); tombstones go once
 * BS_LEASE_MAX_S has passed since their latest lease stamp.
 *
 * Work is bounded per round (ops in flight per vnode, digests per session,
 * locates, entries scanned) and resumes in the next round. Callbacks find
 * their state through b->sync and a slot id with a generation, so nothing
 * dangles if a request outlives its session or the whole struct bs_sync.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/sync_int.h"

/* ---- small helpers ---- */

static uint8_t entry_flags(const struct bs_entry *e, uint64_t t)
{
    uint8_t f = SYNC_F_HELD;
    if (sync_good(e))
        f |= SYNC_F_PRESENT;
    if (sync_live(e, t))
        f |= SYNC_F_LIVE;
    if (e->flags & BS_E_BAD)
        f |= SYNC_F_BAD;
    if (e->flags & BS_E_WRITING)
        f |= SYNC_F_BUSY;
    return f;
}

void sync_entry_describe(const struct bs_entry *e, uint64_t t, struct sync_entry *out)
{
    out->type = e->type;
    out->flags = entry_flags(e, t);
    out->key = e->key;
    out->version = e->type == STORE_CONTENT ? 0 : e->version;
    memcpy(out->digest, e->digest.b, SYNC_DIGEST_LEN);
}

const struct addr *sync_self_addr(const struct bs *b)
{
    return chord_vnode_count(b->chord) ? &chord_vnode_self(b->chord, 0)->addr : NULL;
}

/* ---- walking a ring range restricted to a key prefix ---- */

void sync_it_init(struct sync_range_it *it, const struct bs_index *ix, const struct id *lo,
                  const struct id *hi, uint8_t depth, const uint8_t *prefix)
{
    struct id ps, pe, lo1 = *lo, zero, max;
    struct id a[2], z[2];
    int n = 0;

    memset(&zero, 0, sizeof(zero));
    memset(&max, 0xff, sizeof(max));
    sync_id_inc(&lo1);
    /* (lo, hi] as closed segments in ring order: one, or two when the
     * range wraps past zero. */
    if (id_eq(lo, hi)) {
        a[n] = zero;
        z[n++] = max;
    } else if (id_cmp(lo, hi) < 0) {
        a[n] = lo1;
        z[n++] = *hi;
    } else {
        if (!id_eq(lo, &max)) {
            a[n] = lo1;
            z[n++] = max;
        }
        a[n] = zero;
        z[n++] = *hi;
    }
    /* Cut each to the keys that start with the prefix. */
    memset(&ps, 0, sizeof(ps));
    memset(&pe, 0xff, sizeof(pe));
    if (depth) {
        memcpy(ps.b, prefix, depth);
        memcpy(pe.b, prefix, depth);
    }
    it->ix = ix;
    it->nseg = 0;
    for (int k = 0; k < n; k++) {
        const struct id *s = id_cmp(&a[k], &ps) > 0 ? &a[k] : &ps;
        const struct id *e = id_cmp(&z[k], &pe) < 0 ? &z[k] : &pe;
        if (id_cmp(s, e) > 0)
            continue;
        it->a[it->nseg] = *s;
        it->z[it->nseg++] = *e;
    }
    it->seg = -1;
    it->i = 0;
}

struct bs_entry *sync_it_next(struct sync_range_it *it)
{
    for (;;) {
        if (it->seg < 0 || it->i >= it->ix->n ||
            id_cmp(&it->ix->v[it->i]->key, &it->z[it->seg]) > 0) {
            if (++it->seg >= it->nseg)
                return NULL;
            it->i = bs_index_lower_bound(it->ix, &it->a[it->seg]);
            continue;
        }
        return it->ix->v[it->i++];
    }
}

/* Counts and digests of the child buckets of prefix in (lo, hi]. */
void sync_buckets_compute(const struct bs_index *ix, const struct id *lo, const struct id *hi,
                          uint8_t depth, const uint8_t *prefix, struct sync_bucket *out)
{
    struct sync_range_it it;
    struct bs_entry *e;

    memset(out, 0, SYNC_BUCKETS * sizeof(*out));
    sync_it_init(&it, ix, lo, hi, depth, prefix);
    while ((e = sync_it_next(&it))) {
        if (!sync_counted(e))
            continue;
        struct sync_bucket *bk = &out[e->key.b[depth]];
        bk->count++;
        for (unsigned j = 0; j < SYNC_DIGEST_LEN; j++)
            bk->digest[j] ^= e->digest.b[j];
    }
}

static bool bucket_eq(const struct sync_bucket *a, const struct sync_bucket *b)
{
    return a->count == b->count && memcmp(a->digest, b->digest, SYNC_DIGEST_LEN) == 0;
}

/* ---- ops: slots with generations, so late callbacks find nothing ---- */

void *sync_op_ctx(const struct bs_sync *s, const struct sync_op *op)
{
    uintptr_t slot = (uintptr_t)(op - s->ops);
    return (void *)(((uintptr_t)op->gen << SYNC_OP_SLOT_BITS) | slot);
}

static struct sync_op *op_from_ctx(struct bs_sync *s, void *ctx)
{
    uintptr_t v = (uintptr_t)ctx, slot = v & (SYNC_OP_SLOTS - 1);
    if (!s || slot >= s->cap_ops)
        return NULL;
    struct sync_op *op = &s->ops[slot];
    if (op->kind == OP_FREE || sync_op_ctx(s, op) != ctx)
        return NULL;
    return op;
}

struct sync_op *sync_op_new(struct bs_sync *s, uint8_t kind)
{
    size_t i;
    for (i = 0; i < s->cap_ops; i++)
        if (s->ops[i].kind == OP_FREE)
            break;
    if (i == s->cap_ops) {
        size_t cap = s->cap_ops ? s->cap_ops * 2 : 64;
        if (cap > SYNC_OP_SLOTS)
            return NULL;
        struct sync_op *v = realloc(s->ops, cap * sizeof(*v));
        if (!v)
            return NULL;
        memset(v + s->cap_ops, 0, (cap - s->cap_ops) * sizeof(*v));
        s->ops = v;
        s->cap_ops = cap;
    }
    struct sync_op *op = &s->ops[i];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->gen = ++s->op_gen;
    s->nops++;
    return op;
}

static bool op_pairwise(uint8_t kind)
{
    return kind == OP_PUSH || kind == OP_PULL || kind == OP_LEASE;
}

void sync_op_free(struct bs_sync *s, struct sync_op *op)
{
    if (op_pairwise(op->kind) && op->vnode < CHORD_MAX_VNODES && s->vn_ops[op->vnode])
        s->vn_ops[op->vnode]--;
    op->kind = OP_FREE;
    s->nops--;
}

/* Is some push, pull or lease exchange of key under way? */
bool sync_key_busy(const struct bs_sync *s, const struct id *key)
{
    for (size_t i = 0; i < s->cap_ops && s->nops; i++) {
        const struct sync_op *op = &s->ops[i];
        if (op->kind != OP_FREE && op->kind != OP_DIGEST && op->kind != OP_LOCATE &&
            op->kind != OP_KEYS && id_eq(&op->key, key))
            return true;
    }
    return false;
}

static void on_persist(struct bs *b, void *ctx, int status);
static void on_exchange(struct bs *b, void *ctx, int status, bool held);

/* Starts a push, pull or lease exchange in op (already filled). Frees op
 * when it cannot start. */
void sync_op_start(struct bs_sync *s, struct sync_op *op)
{
    struct bs *b = s->b;
    int rc;
    switch (op->kind) {
    case OP_PUSH:
    case OP_HPUSH:
        rc = bs_push(b, &op->peer, op->type, &op->key, on_persist, sync_op_ctx(s, op));
        break;
    case OP_PULL:
        rc = bs_pull(b, &op->peer, op->type, &op->key, on_persist, sync_op_ctx(s, op));
        break;
    case OP_HLEASE:
        rc = bs_lease_exchange_held(b, &op->peer, &op->key, on_exchange, sync_op_ctx(s, op));
        break;
    default: rc = bs_lease_exchange(b, &op->peer, &op->key, on_persist, sync_op_ctx(s, op)); break;
    }
    if (rc < 0) {
        LOG_D(b->lg, "sync", "op %d could not start: %s", op->kind, bs_strerror(rc));
        sync_op_free(s, op);
    }
}

bool sync_peer_full(const struct bs_sync *s, const struct addr *a)
{
    uint64_t now = env_now(&s->b->env);
    for (size_t i = 0; a && i < SYNC_FULL_MAX; i++)
        if (s->full[i].until > now && addr_eq(&s->full[i].a, a))
            return true;
    return false;
}

void sync_peer_mark_full(struct bs_sync *s, const struct addr *a)
{
    size_t at = 0;
    for (size_t i = 0; i < SYNC_FULL_MAX; i++) {
        if (addr_eq(&s->full[i].a, a)) {
            at = i;
            break;
        }
        if (s->full[i].until < s->full[at].until)
            at = i; /* the oldest mark goes */
    }
    s->full[at].a = *a;
    s->full[at].until = env_now(&s->b->env) + SYNC_FULL_BACKOFF_MS;
}

void sync_follow_up(struct bs_sync *s)
{
    uint64_t at = env_now(&s->b->env) + SYNC_DEBOUNCE_MS;
    if (at < s->update_at)
        s->update_at = at;
}

/* ---- completions ---- */

static void on_persist(struct bs *b, void *ctx, int status)
{
    struct bs_sync *s = b->sync;
    struct sync_op *op = op_from_ctx(s, ctx);
    if (!op)
        return;
    if (status == -ECANCELED) {
        sync_op_free(s, op); /* bs_free: start nothing new */
        return;
    }
    if (op->kind == OP_HPUSH || op->kind == OP_HLEASE)
        /* a push stored is held; an exchange says so only through
         * on_exchange */
        sync_handoff_done(s, op, status, status == 0 && op->kind == OP_HPUSH);
    else
        sync_pair_done(s, op, status);
}

/* A handoff lease exchange finished: the member counts only if it holds
 * the block (held), not merely because it answered. */
static void on_exchange(struct bs *b, void *ctx, int status, bool held)
{
    struct bs_sync *s = b->sync;
    struct sync_op *op = op_from_ctx(s, ctx);
    if (!op)
        return;
    if (status == -ECANCELED) {
        sync_op_free(s, op);
        return;
    }
    sync_handoff_done(s, op, status, held);
}

void sync_on_rpc(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *payload,
                 size_t len)
{
    struct bs_sync *s = b->sync;
    struct sync_op *op = op_from_ctx(s, ctx);
    if (!op)
        return;
    if (status == -ECANCELED) {
        sync_op_free(s, op); /* bs_free: no follow-up, no drop */
        return;
    }
    if (op->kind == OP_DIGEST)
        sync_digest_reply(s, op, status, type, payload, len);
    else if (op->kind == OP_KEYS)
        sync_keys_reply(s, op, status, type, payload, len);
    else
        sync_op_free(s, op);
}

struct sync_op *sync_op_from_ctx(struct bs_sync *s, void *ctx)
{
    return op_from_ctx(s, ctx);
}

/* ---- rounds ---- */

static void round_run(struct bs_sync *s)
{
    uint64_t now = env_now(&s->b->env);
    bool local = s->rounds == 0 || now - s->local_at >= SYNC_LOCAL_GAP_MS;

    s->rounds++;
    s->b->stats.sync_rounds++;
    if (local) {
        s->local_at = now;
        sync_expire_run(s);
    }
    sync_pair_round(s);
    if (local)
        sync_handoff_round(s);
    else
        sync_view_note(s);
}

static uint64_t period_jittered(const struct bs_sync *s)
{
    uint64_t p = s->b->cfg.sync_period_ms;
    /* ±10%, so that the nodes of a ring do not synchronise their rounds. */
    return p - p / 10 + env_random_below(&s->b->env, p / 5 + 1);
}

/* ---- the interface of internal.h ---- */

int bs_sync_new(struct bs *b, struct bs_sync **out)
{
    struct bs_sync *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->b = b;
    s->update_at = UINT64_MAX;
    s->next_round = UINT64_MAX;
    if (b->cfg.sync_period_ms)
        s->next_round = env_now(&b->env) + period_jittered(s);
    s->ho.done = true;
    *out = s;
    return 0;
}

void bs_sync_free(struct bs_sync *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nsess; i++)
        free(s->sess[i].q);
    free(s->sess);
    free(s->ops);
    /* Requests still pending report to b->sync: make them find nothing. */
    if (s->b && s->b->sync == s)
        s->b->sync = NULL;
    free(s);
}

void bs_sync_tick(struct bs_sync *s, uint64_t now)
{
    if (!s || (now < s->update_at && now < s->next_round))
        return;
    s->update_at = UINT64_MAX;
    if (s->b->cfg.sync_period_ms)
        s->next_round = now + period_jittered(s);
    round_run(s);
}

uint64_t bs_sync_next_deadline(const struct bs_sync *s)
{
    if (!s)
        return UINT64_MAX;
    return s->update_at < s->next_round ? s->update_at : s->next_round;
}

void bs_sync_on_update(struct bs_sync *s, unsigned vnode)
{
    (void)vnode; /* a round covers every vnode; one message pair each when in sync */
    if (!s)
        return;
    /* Which ranges this node replicates may have changed. */
    s->nkept = 0;
    if (s->update_at == UINT64_MAX)
        s->update_at = env_now(&s->b->env) + SYNC_DEBOUNCE_MS;
}

/* ---- the receiver's side ---- */

static int answer_digest(struct bs_sync *s, const struct addr *from, uint64_t reqid,
                         const uint8_t *payload, size_t len)
{
    struct bs *b = s->b;
    struct sync_digest *m = malloc(sizeof(*m));
    struct sync_bucket mine[SYNC_BUCKETS];
    struct sync_reply *r = calloc(1, sizeof(*r));
    uint8_t *buf = NULL;
    uint64_t t = sync_now_s(b);
    int rc = 0;

    if (!m || !r)
        goto out_busy;
    if (sync_digest_decode(payload, len, m) < 0) {
        rc = BS_ERR_MALFORMED;
        goto out;
    }
    sync_buckets_compute(&b->ix, &m->lo, &m->hi, m->depth, m->prefix, mine);
    /* Decide per differing bucket, counting the entries to list. */
    size_t total = 0;
    for (unsigned i = 0; i < SYNC_BUCKETS; i++) {
        if (bucket_eq(&mine[i], &m->b[i]))
            continue;
        struct sync_reply_bucket *rb = &r->rb[r->nb++];
        rb->bucket = (uint8_t)i;
        bool small = mine[i].count <= SYNC_LIST_MAX && m->b[i].count <= SYNC_LIST_MAX &&
                     total + mine[i].count <= SYNC_REPLY_MAX;
        if (m->depth < SYNC_DEPTH_MAX && !small) {
            rb->mode = SYNC_MODE_DESCEND;
            continue;
        }
        rb->mode = SYNC_MODE_LIST;
        rb->n = (uint16_t)(mine[i].count < SYNC_LIST_MAX ? mine[i].count : SYNC_LIST_MAX);
        if (total + rb->n > SYNC_REPLY_MAX)
            rb->n = (uint16_t)(SYNC_REPLY_MAX - total);
        rb->first = (uint32_t)total;
        total += rb->n;
    }
    if (total) {
        r->ent = calloc(total, sizeof(*r->ent));
        if (!r->ent)
            goto out_busy;
    }
    uint8_t p2[SYNC_DEPTH_MAX + 1];
    memcpy(p2, m->prefix, m->depth);
    for (unsigned i = 0; i < r->nb; i++) {
        struct sync_reply_bucket *rb = &r->rb[i];
        if (rb->mode != SYNC_MODE_LIST)
            continue;
        struct sync_range_it it;
        struct bs_entry *e;
        uint16_t n = 0;
        p2[m->depth] = rb->bucket;
        sync_it_init(&it, &b->ix, &m->lo, &m->hi, (uint8_t)(m->depth + 1), p2);
        while ((e = sync_it_next(&it)) && n < rb->n)
            if (sync_counted(e))
                sync_entry_describe(e, t, &r->ent[rb->first + n++]);
        rb->n = n;
    }
    r->nent = (uint32_t)total;
    size_t cap = 2 + (size_t)r->nb * 4 + total * SYNC_ENTRY_WIRE, blen;
    buf = malloc(cap);
    if (!buf || sync_reply_encode(r, buf, cap, &blen) < 0)
        goto out_busy;
    bs_reply(b, from, reqid, BS_MSG_SYNC_DIGEST_OK, buf, blen);
    goto out;
out_busy:
    bs_reply_failure(b, from, reqid, -ENOMEM, "out of memory", -1);
out:
    free(buf);
    if (r)
        free(r->ent);
    free(r);
    free(m);
    return rc;
}

static int answer_keys(struct bs_sync *s, const struct addr *from, uint64_t reqid,
                       const uint8_t *payload, size_t len)
{
    struct bs *b = s->b;
    struct sync_entry *q = malloc(SYNC_KEYS_MAX * sizeof(*q));
    uint8_t *buf = malloc(SYNC_KEYS_OK_WIRE_MAX);
    uint64_t t = sync_now_s(b);
    size_t n, blen;
    int rc = 0;

    if (!q || !buf) {
        bs_reply_failure(b, from, reqid, -ENOMEM, "out of memory", -1);
        goto out;
    }
    if (sync_keys_decode(payload, len, q, &n) < 0) {
        rc = BS_ERR_MALFORMED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct bs_entry *e = bs_index_find(&b->ix, q[i].type, &q[i].key);
        if (e) {
            sync_entry_describe(e, t, &q[i]);
        } else {
            q[i].flags = 0;
            q[i].version = 0;
            memset(q[i].digest, 0, SYNC_DIGEST_LEN);
        }
    }
    if (sync_keys_ok_encode(q, n, buf, SYNC_KEYS_OK_WIRE_MAX, &blen) == 0)
        bs_reply(b, from, reqid, BS_MSG_SYNC_KEYS_OK, buf, blen);
out:
    free(q);
    free(buf);
    return rc;
}

int bs_sync_input(struct bs_sync *s, const struct addr *from, const struct frame_header *h,
                  const uint8_t *payload, size_t len)
{
    if (!s || (h->flags & FRAME_F_REPLY))
        return 0; /* replies reach their request through bs_rpc */
    switch (h->type) {
    case BS_MSG_SYNC_DIGEST: return answer_digest(s, from, h->request_id, payload, len);
    case BS_MSG_SYNC_KEYS: return answer_keys(s, from, h->request_id, payload, len);
    case BS_MSG_SYNC_DIGEST_OK:
    case BS_MSG_SYNC_KEYS_OK: return BS_ERR_MALFORMED; /* a reply type sent as a request */
    default:
        /* A type of the sync range this version does not know (a newer
         * peer): say so instead of closing the connection. */
        bs_reply_failure(s->b, from, h->request_id, BS_ERR_MALFORMED, "unknown maintenance message",
                         -1);
        return 0;
    }
}
