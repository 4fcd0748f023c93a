/* sync_handoff.c — what a node does with the records it holds on its own
 * account: hands off those outside every replica set it belongs to, and
 * drops what expired. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/sync_int.h"

/* ---- handoff ---- */

/* The end of the local vnode range holding key, if any. */
static bool local_range(const struct bs *b, const struct id *key, struct id *end)
{
    struct chord_peer pred;
    const struct chord_peer *succ;
    for (unsigned v = 0; v < chord_vnode_count(b->chord); v++) {
        if (!chord_vnode_joined(b->chord, v))
            continue;
        const struct id *self = &chord_vnode_self(b->chord, v)->id;
        bool has_pred = chord_vnode_predecessor(b->chord, v, &pred);
        if ((has_pred && id_in_oc(key, &pred.id, self)) ||
            (!has_pred && chord_vnode_successors(b->chord, v, &succ) == 0)) {
            if (end)
                *end = *self;
            return true;
        }
    }
    return false;
}

/* Handoff needs every local range known: a vnode that has not joined or
 * lost its predecessor might own keys that look foreign. */
static bool handoff_ready(const struct bs *b)
{
    struct chord_peer pred;
    const struct chord_peer *succ;
    unsigned n = chord_vnode_count(b->chord);
    if (n == 0)
        return false;
    for (unsigned v = 0; v < n; v++)
        if (!chord_vnode_joined(b->chord, v) || (!chord_vnode_predecessor(b->chord, v, &pred) &&
                                                 chord_vnode_successors(b->chord, v, &succ) > 0))
            return false;
    return true;
}

static bool kept_range(const struct bs_sync *s, const struct id *key, struct id *end)
{
    uint64_t now = env_now(&s->b->env);
    for (size_t i = 0; i < s->nkept; i++)
        if (s->kept[i].until > now && id_in_oc(key, &s->kept[i].lo, &s->kept[i].hi)) {
            *end = s->kept[i].hi;
            return true;
        }
    return false;
}

static void kept_add(struct bs_sync *s, const struct id *lo, const struct id *hi)
{
    size_t at = 0;
    if (s->nkept < SYNC_KEPT_MAX)
        at = s->nkept++;
    else
        for (size_t i = 1; i < SYNC_KEPT_MAX; i++)
            if (s->kept[i].until < s->kept[at].until)
                at = i; /* the oldest goes */
    s->kept[at] = (struct kept_range){*lo, *hi, env_now(&s->b->env) + SYNC_KEPT_MS};
}

/* Moves the walk's cursor forward to `to`; passing the walk's start ends
 * the walk. */
static void cursor_advance(struct handoff *h, const struct id *to)
{
    struct id dc, dt;
    id_distance(&dc, &h->start, &h->cursor);
    id_distance(&dt, &h->start, to);
    if (id_cmp(&dt, &dc) <= 0)
        h->done = true;
    else
        h->cursor = *to;
}

/* Position of the first entry whose key is above key. */
static size_t after_key(const struct bs_index *ix, const struct id *key)
{
    size_t i = bs_index_lower_bound(ix, key);
    while (i < ix->n && id_eq(&ix->v[i]->key, key))
        i++;
    return i;
}

enum { FOUND, WALK_OVER, OUT_OF_BUDGET };

/* The first key after the cursor in no local vnode's range and no kept
 * range, before the walk passes its start. */
static int foreign_next(struct bs_sync *s, unsigned *budget, struct id *out)
{
    const struct bs_index *ix = &s->b->ix;
    struct handoff *h = &s->ho;
    struct id cur = h->cursor, dprev, d, end, dend;

    if (ix->n == 0)
        return WALK_OVER;
    id_distance(&dprev, &h->start, &cur);
    size_t i = after_key(ix, &cur);
    for (;;) {
        if (*budget == 0) {
            h->cursor = cur;
            return OUT_OF_BUDGET;
        }
        (*budget)--;
        if (i >= ix->n)
            i = 0;
        const struct id *k = &ix->v[i]->key;
        id_distance(&d, &h->start, k);
        if (id_cmp(&d, &dprev) <= 0)
            return WALK_OVER;
        if (local_range(s->b, k, &end) || kept_range(s, k, &end)) {
            id_distance(&dend, &h->start, &end);
            if (id_cmp(&dend, &d) < 0)
                return WALK_OVER; /* that range reaches past the start */
            cur = end;
            dprev = dend;
            i = after_key(ix, &cur);
            continue;
        }
        h->cursor = cur;
        *out = *k;
        return FOUND;
    }
}

static void handoff_continue(struct bs_sync *s);

static void on_locate(struct bs *b, void *ctx, int status, const struct bs_location *loc)
{
    struct bs_sync *s = b->sync;
    struct sync_op *op = sync_op_from_ctx(s, ctx);
    if (!op)
        return;
    sync_op_free(s, op);
    struct handoff *h = &s->ho;
    const struct addr *me = sync_self_addr(b);
    h->running = false;
    if (status == -ECANCELED)
        return; /* bs_free */
    if (status != 0 || !loc || !me) {
        LOG_D(b->lg, "sync", "handoff: locate failed: %s", bs_strerror(status));
        cursor_advance(h, &h->probe); /* try that key again in the next walk */
        handoff_continue(s);
        return;
    }
    /* The replica set is the first k distinct physical nodes of the
     * location's list; the rest are diversion spares. */
    struct addr distinct[SYNC_N(loc->set)];
    unsigned nd = 0;
    bool first_k = false;
    for (unsigned i = 0; i < loc->n && i < SYNC_N(loc->set); i++) {
        bool dup = false;
        for (unsigned j = 0; j < nd && !dup; j++)
            dup = addr_eq(&distinct[j], &loc->set[i].addr);
        if (!dup)
            distinct[nd++] = loc->set[i].addr;
    }
    h->nmem = 0;
    h->self_in_set = false;
    for (unsigned i = 0; i < nd && i < b->cfg.replicas; i++) {
        if (addr_eq(&distinct[i], me))
            first_k = true;
        else if (h->nmem < BS_REPLICAS_MAX)
            h->cand[h->nmem++] = distinct[i];
    }
    h->ncand = h->nmem;
    for (unsigned i = b->cfg.replicas; i < nd; i++) {
        if (addr_eq(&distinct[i], me))
            h->self_in_set = true;
        else if (h->ncand < SYNC_CAND_MAX)
            h->cand[h->ncand++] = distinct[i];
    }
    /* A spare itself holds the copy where it belongs while members are
     * full: it sends it to no other spare, only to the members. */
    if (h->self_in_set)
        h->ncand = h->nmem;
    if (loc->has_pred && id_in_oc(&h->probe, &loc->pred, &loc->vnode.id)) {
        h->loc_lo = loc->pred;
        h->loc_hi = loc->vnode.id;
    } else {
        h->loc_lo = h->probe;
        sync_id_dec(&h->loc_lo);
        h->loc_hi = h->probe;
    }
    LOG_D(b->lg, "sync", "handoff: location of %02x%02x: %u members, %s", h->probe.b[0],
          h->probe.b[1], h->nmem, first_k ? "kept" : "offered");
    if (first_k) {
        kept_add(s, &h->loc_lo, &h->loc_hi);
        cursor_advance(h, &h->loc_hi);
    } else {
        h->have_loc = true;
        h->bcur = h->probe; /* keys of the location before it come in a later walk */
        sync_id_dec(&h->bcur);
    }
    handoff_continue(s);
}

/* Collects the next records of the current location to offer. */
static bool batch_build(struct bs_sync *s)
{
    struct bs *b = s->b;
    struct handoff *h = &s->ho;
    struct sync_range_it it;
    struct bs_entry *e;
    h->nkeys = 0;
    if (id_eq(&h->bcur, &h->loc_hi))
        return false;
    sync_it_init(&it, &b->ix, &h->bcur, &h->loc_hi, 0, NULL);
    while ((e = sync_it_next(&it))) {
        bool new_key = h->nkeys == 0 || !id_eq(&h->keys[h->nkeys - 1].key, &e->key);
        if (new_key && h->nkeys + STORE_KV > SYNC_HANDOFF_BATCH)
            break; /* keep every type of one key in one batch */
        if ((!sync_good(e) && !(e->flags & BS_E_BAD)) || (e->flags & BS_E_WRITING) ||
            local_range(b, &e->key, NULL) || sync_key_busy(s, &e->key))
            continue;
        struct hkey *hk = &h->keys[h->nkeys++];
        memset(hk, 0, sizeof(*hk));
        hk->type = e->type;
        hk->key = e->key;
        hk->digest = e->digest;
    }
    if (h->nkeys == 0)
        return false;
    /* A location reaching past the walk's start ends the walk after this
     * batch. */
    h->bcur = h->keys[h->nkeys - 1].key;
    cursor_advance(h, &h->bcur);
    return true;
}

static unsigned bits(unsigned x)
{
    unsigned n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

/* Drops what k distinct nodes confirmed holding present. */
static void batch_finish(struct bs_sync *s)
{
    struct bs *b = s->b;
    struct handoff *h = &s->ho;
    for (size_t i = 0; i < h->nkeys; i++) {
        const struct hkey *hk = &h->keys[i];
        struct bs_entry *e = bs_index_find(&b->ix, hk->type, &hk->key);
        if (!e || !id_eq(&e->digest, &hk->digest) || (e->flags & BS_E_WRITING) ||
            local_range(b, &hk->key, NULL) || sync_key_busy(s, &hk->key))
            continue;
        /* Members and spares are distinct physical nodes (on_locate), and
         * a bit is set only on an answer of this batch saying the node
         * holds the record present: never on a refusal, a cached "full",
         * or an exchange with a node that lacks the bytes. */
        unsigned held = bits(hk->confirmed);
        LOG_D(b->lg, "sync", "handoff: %02x%02x held by %u of %u (%u members, %u spares)",
              hk->key.b[0], hk->key.b[1], held, b->cfg.replicas,
              bits(hk->confirmed & ((1u << h->nmem) - 1)), bits(hk->confirmed >> h->nmem));
        if (held < b->cfg.replicas)
            continue; /* kept; the next walk tries again */
        bs_drop(b, e);
        b->stats.handed_off++;
    }
    h->nkeys = 0;
    h->running = false;
    h->batches++;
}

/* Sends candidate c a push or a lease exchange of batch key i. */
static void hop_start(struct bs_sync *s, uint8_t kind, unsigned c, size_t i)
{
    struct handoff *h = &s->ho;
    struct hkey *hk = &h->keys[i];
    struct sync_op *o = sync_op_new(s, kind);
    if (!o)
        return;
    o->hm = (uint8_t)c;
    o->hk = (uint16_t)i;
    o->owner_gen = h->gen;
    o->peer = h->cand[c];
    o->type = hk->type;
    o->key = hk->key;
    h->pending++;
    sync_op_start(s, o);
    /* op_start frees an op that could not start */
    if (o->kind == OP_FREE)
        h->pending--;
}

static int batch_send(struct bs_sync *s)
{
    struct handoff *h = &s->ho;
    struct sync_entry q[SYNC_HANDOFF_BATCH];
    uint8_t buf[2 + SYNC_HANDOFF_BATCH * (1 + ID_BYTES)];
    size_t len;
    uint64_t reqid;

    memset(q, 0, sizeof(q));
    for (size_t i = 0; i < h->nkeys; i++) {
        q[i].type = h->keys[i].type;
        q[i].key = h->keys[i].key;
    }
    if (sync_keys_encode(q, h->nkeys, buf, sizeof(buf), &len) < 0)
        return 0;
    h->gen++;
    h->pending = 0;
    for (unsigned m = 0; m < h->nmem; m++) {
        struct sync_op *op = sync_op_new(s, OP_KEYS);
        if (!op)
            break;
        op->hm = (uint8_t)m;
        op->owner_gen = h->gen;
        op->peer = h->cand[m];
        if (bs_rpc(s->b, &h->cand[m], BS_MSG_SYNC_KEYS, buf, len, sync_on_rpc, sync_op_ctx(s, op),
                   &reqid) < 0) {
            sync_op_free(s, op);
            continue;
        }
        h->pending++;
    }
    return (int)h->pending;
}

static void handoff_continue(struct bs_sync *s)
{
    struct handoff *h = &s->ho;
    unsigned budget = SYNC_SCAN_MAX;
    if (env_now(&s->b->env) - s->view_changed_at < SYNC_HANDOFF_QUIET_MS)
        return;
    while (!h->running && !h->done && handoff_ready(s->b)) {
        if (h->have_loc) {
            if (h->batches >= SYNC_BATCHES_PER_ROUND)
                return;
            if (batch_build(s)) {
                h->running = true;
                if (batch_send(s) == 0)
                    batch_finish(s);
                continue;
            }
            h->have_loc = false;
            cursor_advance(h, &h->loc_hi);
            continue;
        }
        if (h->locates >= SYNC_LOCATES_PER_ROUND)
            return;
        struct id k;
        int r = foreign_next(s, &budget, &k);
        if (r == WALK_OVER)
            h->done = true;
        if (r != FOUND)
            return;
        struct sync_op *op = sync_op_new(s, OP_LOCATE);
        if (!op)
            return;
        h->probe = k;
        h->locates++;
        h->running = true;
        if (bs_locate_fresh(s->b, &k, on_locate, sync_op_ctx(s, op)) < 0) {
            sync_op_free(s, op);
            h->running = false;
            return; /* the next round tries again */
        }
    }
}

/* A member answered SYNC_KEYS: settle what it holds, offer the rest. */
void sync_keys_reply(struct bs_sync *s, struct sync_op *op, int status, uint16_t type,
                     const uint8_t *payload, size_t len)
{
    struct bs *b = s->b;
    struct handoff *h = &s->ho;
    unsigned m = op->hm;
    bool mine = op->owner_gen == h->gen && h->running && h->nkeys > 0;
    sync_op_free(s, op);
    if (!mine)
        return;
    h->pending--;
    struct sync_entry ans[SYNC_HANDOFF_BATCH];
    if (status == 0 && type == BS_MSG_SYNC_KEYS_OK &&
        sync_keys_ok_decode(payload, len, ans, h->nkeys) == 0) {
        for (size_t i = 0; i < h->nkeys; i++) {
            struct hkey *hk = &h->keys[i];
            const struct sync_entry *p = &ans[i];
            struct bs_entry *e = bs_index_find(&b->ix, hk->type, &hk->key);
            uint8_t kind = 0;
            if (!e)
                continue;
            if (p->flags & SYNC_F_PRESENT) {
                bool same = e->type == STORE_CONTENT
                                ? memcmp(p->digest, e->digest.b, SYNC_DIGEST_LEN) == 0
                                : p->version >= e->version;
                if (same)
                    hk->confirmed |= (uint16_t)(1u << m);
                else
                    kind = e->type == STORE_CONTENT ? OP_HLEASE : (sync_good(e) ? OP_HPUSH : 0);
            } else if (sync_good(e) && !(p->flags & SYNC_F_BUSY)) {
                /* Even to a member a push refused for space lately: only
                 * its answer now says whether it is full. */
                kind = OP_HPUSH;
            }
            if (kind)
                hop_start(s, kind, m, i);
        }
    }
    if (h->pending == 0) {
        batch_finish(s);
        handoff_continue(s);
    }
}

/* ---- expiry ---- */

static uint64_t latest_stamp_s(const struct bs_entry *e)
{
    uint64_t m = 0;
    for (size_t i = 0; i < e->nleases; i++)
        if (e->leases[i].stamp_ms / 1000 > m)
            m = e->leases[i].stamp_ms / 1000;
    return m;
}

/* A lease ran out since the index last counted owner usage. */
static bool lease_lapsed(const struct bs_entry *e, uint64_t t)
{
    for (size_t i = 0; i < e->nleases; i++)
        if (e->leases[i].expiry_s > e->counted_s && e->leases[i].expiry_s <= t)
            return true;
    return false;
}

void sync_expire_run(struct bs_sync *s)
{
    struct bs *b = s->b;
    struct bs_index *ix = &b->ix;
    uint64_t t = sync_now_s(b);
    struct {
        uint8_t type;
        bool bytes;
        struct id key;
    } *drop = malloc(SYNC_EXPIRE_MAX * sizeof(*drop));
    size_t nd = 0;

    if (!drop || ix->n == 0) {
        free(drop);
        return;
    }
    size_t i = bs_index_lower_bound(ix, &s->expire_cursor);
    size_t steps = ix->n < SYNC_SCAN_MAX ? ix->n : SYNC_SCAN_MAX;
    for (size_t n = 0; n < steps && nd < SYNC_EXPIRE_MAX; n++, i++) {
        if (i >= ix->n)
            i = 0;
        struct bs_entry *e = ix->v[i];
        s->expire_cursor = e->key;
        if (e->flags & BS_E_WRITING)
            continue;
        bool gone = false;
        if (e->type == STORE_CONTENT) {
            if (lease_lapsed(e, t))
                bs_index_merge_leases(ix, e, NULL, 0, t, NULL);
            if (bs_entry_live(e, t))
                continue;
            if (sync_counted(e))
                gone = true;
            else
                gone = t >= latest_stamp_s(e) + BS_LEASE_MAX_S;
        } else if (e->type == STORE_KV) {
            gone = e->expiry_s <= t;
        }
        if (gone && !sync_key_busy(s, &e->key)) {
            drop[nd].type = e->type;
            drop[nd].bytes = sync_counted(e);
            drop[nd++].key = e->key;
        }
    }
    for (size_t k = 0; k < nd; k++) {
        struct bs_entry *e = bs_index_find(ix, drop[k].type, &drop[k].key);
        if (!e)
            continue;
        bs_drop(b, e);
        if (drop[k].bytes)
            b->stats.expired++;
    }
    free(drop);
}

/* FNV-1a over what decides which replica sets this node is in: every
 * vnode's predecessor and its first k distinct successors. (The rest of a
 * successor list changes with churn far away and would keep handoff from
 * ever running in a large ring.) */
static uint64_t view_hash(const struct bs *b)
{
    uint64_t x = 0xcbf29ce484222325ull;
    struct chord_peer pred, set[BS_REPLICAS_MAX];

    for (unsigned v = 0; v < chord_vnode_count(b->chord); v++) {
        uint8_t buf[1 + ID_BYTES * (1 + BS_REPLICAS_MAX)];
        size_t len = 0;
        buf[len++] = chord_vnode_joined(b->chord, v);
        if (chord_vnode_predecessor(b->chord, v, &pred)) {
            memcpy(buf + len, pred.id.b, ID_BYTES);
            len += ID_BYTES;
        }
        size_t n = chord_vnode_replica_set(b->chord, v, set, b->cfg.replicas);
        for (size_t i = 1; i < n; i++) {
            memcpy(buf + len, set[i].id.b, ID_BYTES);
            len += ID_BYTES;
        }
        for (size_t i = 0; i < len; i++)
            x = (x ^ buf[i]) * 0x100000001b3ull;
    }
    return x;
}

void sync_view_note(struct bs_sync *s)
{
    uint64_t vh = view_hash(s->b);

    if (vh != s->view_hash) {
        s->view_hash = vh;
        s->view_changed_at = env_now(&s->b->env);
        s->nkept = 0; /* which ranges this node replicates may have changed */
    }
}

void sync_handoff_round(struct bs_sync *s)
{
    struct handoff *h = &s->ho;
    uint64_t now = env_now(&s->b->env);

    sync_view_note(s);
    if (now - s->view_changed_at < SYNC_HANDOFF_QUIET_MS)
        return;
    h->locates = 0;
    h->batches = 0;
    if (h->done && !h->running) {
        /* A new walk over the whole ring, from the key where the last one
         * ended (included again: a walk stops short of its start, and a
         * ring with one foreign key would otherwise never see it again). */
        h->done = false;
        sync_id_dec(&h->cursor);
        h->start = h->cursor;
    }
    handoff_continue(s);
}

void sync_handoff_done(struct bs_sync *s, struct sync_op *op, int status, bool held)
{
    struct bs *b = s->b;
    struct handoff *h = &s->ho;
    bool mine = op->owner_gen == h->gen && h->running && op->hk < h->nkeys && op->hm < h->ncand;
    uint8_t kind = op->kind;
    unsigned c = op->hm;
    size_t i = op->hk;

    if (status == BS_ERR_FULL)
        sync_peer_mark_full(s, &op->peer);
    if (status == 0 && kind == OP_HPUSH)
        b->stats.sync_pushed++;
    sync_op_free(s, op); /* before starting more: sync_op_new may move the table */
    if (!mine)
        return;
    struct hkey *hk = &h->keys[i];
    if (status == 0 && held) {
        hk->confirmed |= (uint16_t)(1u << c);
    } else if (status == 0 && kind == OP_HLEASE) {
        /* It answered without HELD: no copy, a tombstone, or a copy that
         * went bad since SYNC_KEYS. It lacks the block: push it. */
        struct bs_entry *e = bs_index_find(&b->ix, hk->type, &hk->key);
        if (e && sync_good(e))
            hop_start(s, OP_HPUSH, c, i);
    } else if (status == BS_ERR_FULL && kind == OP_HPUSH && hk->next_spare < h->ncand - h->nmem) {
        /* Out of space, as it said just now (BS_ERR_QUOTA is the owner's
         * limit, not the node's: no spare for that): the next spare in
         * the location's order gets the copy instead. */
        hop_start(s, OP_HPUSH, h->nmem + hk->next_spare++, i);
    }
    if (--h->pending == 0) {
        batch_finish(s);
        handoff_continue(s);
    }
}
