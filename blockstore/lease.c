/* lease.c — leases at the primary and at holders, drops and tombstones
 * (PAST's reclaim, CFS's expiry).
 *
 * A lease update (renewal or reclaim) goes from the client to the primary,
 * which sends LEASE_MERGE to every candidate that may hold the block: the
 * replica set and the diversion spares after it. Each holder merges per
 * owner (lease_newer: the higher stamp wins, so a reclaim beats every grant
 * signed before it), appends the winners durably, and when no lease of the
 * block is live any more deletes the block but keeps its lease records: a
 * tombstone, so that a replayed older grant (a STORE of the block with it)
 * loses against the reclaim and is refused. The tombstone stays until
 * max(stamp)/1000 + BS_LEASE_MAX_S: by then any grant signed before the
 * reclaim has expired, whatever it said (no node accepts an expiry further
 * than BS_LEASE_MAX_S ahead), so it could not revive the block anyway;
 * maintenance (sync.c) then drops the tombstone with bs_drop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"

#define MOD "bs"

/* A holder's refusal of a new owner's lease (BS_ERR_QUOTA). */
#define LEASE_CAP_REASON "a holder refused a new owner: the block has the most owners a node keeps"

/* ---- admission of records from outside ---- */

/* e's record of owner, or NULL (e->leases is sorted by owner). */
static const struct lease *record_of(const struct bs_entry *e, const struct sig_pub *owner)
{
    size_t lo = 0, hi = e ? e->nleases : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(e->leases[mid].owner.b, owner->b, SIG_PUB_LEN);
        if (c == 0)
            return &e->leases[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Keeps, in place, the records from a peer or client (each passed
 * bs_lease_check) that may merge into e (may be NULL): a live one (expiry
 * after now_s), or a dead one (expired, or a reclaim) of an owner that has
 * a record in e or a live one among l — so a reclaim spreads to every
 * holder of its owner's grant, but dead records of owners nobody holds do
 * not pile up rows (a peer could send any number of expired leases it
 * signed). Returns how many are kept. */
size_t bs_lease_admit(const struct bs_entry *e, struct lease *l, size_t n, uint64_t now_s)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = l[i].expiry_s > now_s || record_of(e, &l[i].owner);
        for (size_t j = 0; !keep && j < n; j++)
            keep = l[j].expiry_s > now_s && !memcmp(l[j].owner.b, l[i].owner.b, SIG_PUB_LEN);
        if (keep)
            l[k++] = l[i];
    }
    /* Compacting in place moves each kept record to a place no later one
     * overwrites, so every live record stays somewhere in l[0..n): all the
     * inner scan looks for. */
    return k;
}

/* After a merge of l into e: was a live record of an owner new to e left
 * out for the cap on owners per entry (index.c)? */
bool bs_lease_capped(const struct bs_entry *e, const struct lease *l, size_t n, uint64_t now_s)
{
    for (size_t i = 0; i < n; i++)
        if (l[i].expiry_s > now_s && !record_of(e, &l[i].owner))
            return true;
    return false;
}

/* ---- local merge ---- */

struct lmop {
    bs_persist_fn cb;
    void *ctx;
    int pending;
    int status;
};

static void lmop_step(struct bs *b, struct lmop *o, int status)
{
    if (status && !o->status)
        o->status = status;
    if (--o->pending == 0) {
        if (o->cb)
            o->cb(b, o->ctx, o->status);
        free(o);
    }
}

static void lmop_persisted(struct bs *b, void *ctx, int status)
{
    lmop_step(b, ctx, bs_persist_err(status));
}

static void lmop_deferred(struct bs *b, void *ctx)
{
    lmop_step(b, ctx, b->core->freeing ? -ECANCELED : 0);
}

int bs_lease_merge_local(struct bs *b, const struct id *key, const struct lease *l, size_t n,
                         bool *held, bs_persist_fn cb, void *ctx)
{
    struct bs_entry *e = bs_index_find(&b->ix, STORE_CONTENT, key);
    uint64_t now_s = bs_now_s(b);
    bool changed = false;
    struct lmop *o = calloc(1, sizeof(*o));
    struct lease *ok = malloc((n ? n : 1) * sizeof(*ok));
    int rc;

    if (!o || !ok) {
        free(o);
        free(ok);
        return -ENOMEM;
    }
    o->cb = cb;
    o->ctx = ctx;
    o->pending = 1;
    *held = e && (e->flags & (BS_E_PRESENT | BS_E_WRITING));
    if (e) {
        if (n)
            memcpy(ok, l, n * sizeof(*ok));
        size_t nok = bs_lease_admit(e, ok, n, now_s);
        rc = bs_index_merge_leases(&b->ix, e, ok, nok, now_s, &changed);
        if (rc < 0) {
            free(ok);
            free(o);
            return rc;
        }
        /* A new owner past the cap is refused; the others merged. */
        if (bs_lease_capped(e, ok, nok, now_s)) {
            o->status = BS_ERR_QUOTA;
            LOG_W(b->lg, MOD, "a lease of a new owner refused: the block has %u owners",
                  (unsigned)e->nleases);
        }
    }
    free(ok);
    if (e && *held && !bs_entry_live(e, now_s)) {
        if (bs_drop_cb(b, e, lmop_persisted, o) == 0)
            o->pending++;
        else
            o->status = -ENOMEM;
    } else if (changed) {
        o->pending++;
        rc = bs_persist_leases(b, key, e->leases, e->nleases, lmop_persisted, o);
        if (rc < 0) {
            o->pending--;
            o->status = bs_persist_err(rc);
        }
    }
    if (o->pending == 1 && bs_defer(b, lmop_deferred, o) < 0) {
        free(o);
        return -ENOMEM;
    }
    if (o->pending > 1)
        o->pending--;
    return 0;
}

/* ---- drops and tombstones ---- */

struct dropop {
    bs_persist_fn cb;
    void *ctx;
    int pending;
    int status;
};

static void drop_step(struct bs *b, void *ctx, int status)
{
    struct dropop *d = ctx;
    status = bs_persist_err(status);
    if (status && !d->status)
        d->status = status;
    if (status && status != -ECANCELED)
        LOG_E(b->lg, MOD, "a durable removal failed (%d)", status);
    if (--d->pending == 0) {
        if (d->cb)
            d->cb(b, d->ctx, d->status);
        free(d);
    }
}

static void drop_deferred(struct bs *b, void *ctx)
{
    struct dropop *d = ctx;
    d->pending++;
    drop_step(b, d, b->core->freeing ? -ECANCELED : 0);
}

/* Drops e; d (may be NULL: nobody waits) learns when it is durable. */
static void drop_do(struct bs *b, struct bs_entry *e, struct dropop *d)
{
    enum store_type type = (enum store_type)e->type;
    struct id key = e->key;
    /* A held block whose leases all lapsed leaves a tombstone; dropping a
     * tombstone (its time is up) removes the records too. */
    bool tomb = type == STORE_CONTENT && e->nleases > 0 && !bs_entry_live(e, bs_now_s(b)) &&
                (e->flags & (BS_E_PRESENT | BS_E_WRITING | BS_E_BAD));

    if (e->flags & BS_E_WRITING)
        bs_server_drop_writes(b, type, &key);
    /* The store removes the file and its lease records, in queue order;
     * the tombstone's records are appended after that removal. */
    if (bs_persist_remove(b, type, &key, d ? drop_step : NULL, d) == 0 && d)
        d->pending++;
    if (tomb) {
        if (bs_persist_leases(b, &key, e->leases, e->nleases, d ? drop_step : NULL, d) == 0 && d)
            d->pending++;
        bs_index_set_size(&b->ix, e, 0, 0);
    } else {
        bs_index_remove(&b->ix, e);
    }
}

int bs_drop_cb(struct bs *b, struct bs_entry *e, bs_persist_fn cb, void *ctx)
{
    struct dropop *d = calloc(1, sizeof(*d));
    if (!d || bs_defer_reserve(b) < 0) {
        free(d);
        return -ENOMEM;
    }
    d->cb = cb;
    d->ctx = ctx;
    drop_do(b, e, d);
    if (d->pending == 0)
        bs_defer(b, drop_deferred, d); /* reserved: cannot fail */
    return 0;
}

void bs_drop(struct bs *b, struct bs_entry *e)
{
    drop_do(b, e, NULL);
}

/* ---- LEASE_MERGE at a holder ---- */

struct merge_reply {
    struct addr to;
    uint64_t reqid;
    struct id key;
    bool held;
};

static void merge_replied(struct bs *b, void *ctx, int status)
{
    struct merge_reply *r = ctx;
    if (!b->core->freeing) {
        if (status) {
            bs_reply_failure(b, &r->to, r->reqid, status,
                             status == BS_ERR_QUOTA ? LEASE_CAP_REASON : NULL, -1);
        } else {
            struct bs_entry *e = bs_index_find(&b->ix, STORE_CONTENT, &r->key);
            struct bs_msg m = {.type = BS_MSG_LEASE_MERGE_OK,
                               .key = r->key,
                               .flags = r->held ? BS_MERGE_F_HELD : 0};
            if (e)
                bs_leases_of(e, &m);
            bs_reply_msg(b, &r->to, r->reqid, &m);
        }
    }
    free(r);
}

/* Leases from a message that pass bs_lease_check; a forged one fails the
 * whole message (BS_ERR_BAD_BLOCK). *first gets the first refusal. */
static struct lease *checked_leases(struct bs *b, const struct bs_msg *m, size_t *n, int *first)
{
    struct lease *l = malloc((m->nleases ? m->nleases : 1) * sizeof(*l));
    *n = 0;
    *first = 0;
    if (!l) {
        *first = -ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < m->nleases; i++) {
        bs_msg_lease(m, i, &l[*n]);
        int rc = bs_lease_check(b, &m->key, &l[*n]);
        if (rc == BS_ERR_BAD_BLOCK) {
            free(l);
            *first = rc;
            return NULL;
        }
        if (rc == 0)
            (*n)++;
        else if (!*first)
            *first = rc;
    }
    return l;
}

void bs_lease_on_merge(struct bs *b, const struct addr *from, uint64_t reqid,
                       const struct bs_msg *m)
{
    size_t n;
    int first;
    struct merge_reply *r;
    struct lease *l;

    if (b->leaving) {
        bs_reply_failure(b, from, reqid, BS_ERR_LEAVING, NULL, -1);
        return;
    }
    l = checked_leases(b, m, &n, &first);
    if (!l) {
        bs_reply_failure(b, from, reqid, first, "a lease does not verify", -1);
        return;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        free(l);
        bs_reply_failure(b, from, reqid, -ENOMEM, NULL, -1);
        return;
    }
    r->to = *from;
    r->reqid = reqid;
    r->key = m->key;
    int rc = bs_lease_merge_local(b, &m->key, l, n, &r->held, merge_replied, r);
    free(l);
    if (rc < 0) {
        free(r);
        bs_reply_failure(b, from, reqid, rc, NULL, -1);
    }
}

/* ---- LEASE at the primary ---- */

struct lslot {
    struct bs_lop *op;
    bool held, done;
    int err;
};

struct bs_lop {
    struct bs_link link;
    struct addr from;
    uint64_t reqid;
    int vnode;
    struct id key;
    struct chord_peer cand[BS_SET_MAX];
    unsigned ncand;
    struct lslot slot[BS_SET_MAX];
    unsigned pending, answered, copies;
    int err;
};

static void lop_done(struct bs *b, struct bs_lop *op)
{
    if (!b->core->freeing) {
        if (op->copies > 0) {
            struct bs_msg m = {
                .type = BS_MSG_LEASE_OK, .key = op->key, .copies = (uint8_t)op->copies};
            bs_location_of(b, (unsigned)op->vnode, &m.loc);
            m.has_loc = true;
            bs_reply_msg(b, &op->from, op->reqid, &m);
        } else {
            int code = op->err ? op->err : op->answered ? BS_ERR_NOT_FOUND : -ETIMEDOUT;
            bs_reply_failure(b, &op->from, op->reqid, code,
                             code == BS_ERR_QUOTA ? LEASE_CAP_REASON : NULL, op->vnode);
        }
    }
    bs_list_del(&op->link);
    free(op);
}

static void lslot_done(struct bs *b, struct lslot *s, int status, bool held)
{
    struct bs_lop *op = s->op;
    s->done = true;
    if (status == 0) {
        op->answered++;
        if (held)
            op->copies++;
    } else if (status != -ETIMEDOUT && status != -EHOSTUNREACH && status != BS_ERR_LEAVING &&
               !op->err) {
        op->err = status;
    }
    if (--op->pending == 0)
        lop_done(b, op);
}

static void lslot_local(struct bs *b, void *ctx, int status)
{
    struct lslot *s = ctx;
    lslot_done(b, s, status, s->held);
}

static void lslot_remote(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                         size_t len)
{
    struct lslot *s = ctx;
    struct bs_msg m;
    bool held = false;
    if (status == 0) {
        if (bs_msg_decode(type, p, len, &m) != 0)
            status = BS_ERR_MALFORMED;
        else if (type == BS_MSG_FAILURE)
            status = m.code;
        else if (type != BS_MSG_LEASE_MERGE_OK || !id_eq(&m.key, &s->op->key))
            status = BS_ERR_MALFORMED;
        else
            held = m.flags & BS_MERGE_F_HELD;
    }
    lslot_done(b, s, status, held);
}

void bs_lease_on_request(struct bs *b, const struct addr *from, uint64_t reqid,
                         const struct bs_msg *m)
{
    struct bs_lop *op;
    struct lease *l;
    size_t n;
    int first, v;

    if (bs_replay_seen(b, from, reqid))
        return;
    v = bs_server_check_target(b, from, reqid, &m->target, &m->key);
    if (v < 0)
        return;
    l = checked_leases(b, m, &n, &first);
    if (!l || n < m->nleases) {
        free(l);
        bs_reply_failure(b, from, reqid, first,
                         first == BS_ERR_NO_LEASE
                             ? "lease stamped in the future or expiring too far ahead"
                             : NULL,
                         v);
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        free(l);
        bs_reply_failure(b, from, reqid, -ENOMEM, NULL, v);
        return;
    }
    op->from = *from;
    op->reqid = reqid;
    op->vnode = v;
    op->key = m->key;
    op->ncand = (unsigned)chord_vnode_replica_set(b->chord, (unsigned)v, op->cand,
                                                  b->cfg.replicas + BS_DIVERT_MAX);
    bs_list_add(&b->core->lops, &op->link);
    op->pending = 1; /* held until every merge is out */
    for (unsigned i = 0; i < op->ncand; i++) {
        struct lslot *s = &op->slot[i];
        int rc;
        s->op = op;
        op->pending++;
        if (bs_is_self(b, &op->cand[i].addr)) {
            rc = bs_lease_merge_local(b, &m->key, l, n, &s->held, lslot_local, s);
        } else {
            struct bs_msg mm = {
                .type = BS_MSG_LEASE_MERGE, .key = m->key, .leases = l, .nleases = (uint16_t)n};
            rc = bs_rpc_msg(b, &op->cand[i].addr, &mm, 0, b->cfg.rpc_tries, lslot_remote, s, NULL);
        }
        if (rc < 0) {
            op->pending--;
            s->done = true;
            if (!op->err)
                op->err = rc;
        }
    }
    free(l);
    if (--op->pending == 0)
        lop_done(b, op);
}

void bs_lease_release(struct bs *b)
{
    struct bs_link *h = &b->core->lops;
    while (!bs_list_empty(h)) {
        struct bs_lop *op = BS_CONTAINER(h->next, struct bs_lop, link);
        bs_list_del(&op->link);
        free(op);
    }
}
