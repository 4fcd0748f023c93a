/* client.c — the block client: where keys live (location cache, lookups,
 * LOCATE), and put / get / root compare-and-swap / lease update / kv put
 * with verification of everything received.
 *
 * Locations. A reply that carries a location teaches the cache the range
 * (pred, vnode] of a responsible vnode and its replica set only when it
 * comes from that vnode, which was the one asked, and the range covers the
 * key asked about (bs_cache_learn_from); entries
 * expire after BS_CACHE_TTL_MS and are dropped when the vnode says
 * WRONG_NODE or does not answer. A key that no cached range covers costs a
 * chord lookup and one LOCATE to the vnode found.
 *
 * Retries. An operation whose primary says WRONG_NODE or does not answer
 * is started over once, with a fresh lookup; so is a get that found no
 * good copy at the holders of the location it used. A root put that
 * started over after an attempt without an answer reports a conflict as
 * INDETERMINATE: the first attempt may have written the root that a
 * newer one now covers. A get asks the holders one
 * after another, the fastest first by the RTT estimates of bs.c (the
 * primary when none is known; this node itself first when it holds the
 * record), and gives the good copy back to every holder whose copy failed
 * a check (STORE with the repair flag).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "blockstore/core.h"

#define MOD "bs"

/* Requests to the primary wait for the replica set's writes: they get
 * more tries than a plain read (the primary ignores the repeats). */
#define PRIMARY_TRIES_FACTOR 3
/* A primary that answers -EBUSY (its cap of operations in progress) is
 * asked again after BUSY_DELAY_MS, doubled each time, at most BUSY_TRIES
 * times; then the -EBUSY is the result. */
#define BUSY_TRIES    5
#define BUSY_DELAY_MS 1000u
/* An operation whose location did not answer (a node just died, a vnode
 * not yet responsible) starts over from a fresh lookup: at once the first
 * time, then after RESTART_DELAY_MS, doubled each time, RESTART_TRIES
 * times in all (about 4 s), so that it outlasts the ring's repair after a
 * crash (about 1-2 s) instead of failing inside it. A root put starts over
 * once only: each attempt without an answer makes its outcome less
 * certain. */
#define RESTART_TRIES    4
#define RESTART_DELAY_MS 250u

/* ---- location cache ---- */

static size_t cache_lower(const struct bs_core *k, const struct id *id)
{
    size_t lo = 0, hi = k->ncache;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(&k->cache[mid].loc.vnode.id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void cache_del(struct bs_core *k, size_t i)
{
    memmove(&k->cache[i], &k->cache[i + 1], (k->ncache - i - 1) * sizeof(*k->cache));
    k->ncache--;
}

/* The entry whose range covers key, or -1. Expired entries go. */
static ssize_t cache_find(struct bs *b, const struct id *key)
{
    struct bs_core *k = b->core;
    if (!k->ncache)
        return -1;
    size_t i = cache_lower(k, key);
    if (i == k->ncache)
        i = 0; /* past the largest vnode: the first one's range wraps */
    struct bs_cache_ent *c = &k->cache[i];
    if (c->expires <= bs_now(b)) {
        cache_del(k, i);
        return -1;
    }
    return id_in_oc(key, &c->loc.pred, &c->loc.vnode.id) ? (ssize_t)i : -1;
}

static void cache_drop(struct bs *b, const struct id *key)
{
    ssize_t i = cache_find(b, key);
    if (i >= 0)
        cache_del(b->core, (size_t)i);
}

void bs_cache_learn(struct bs *b, const struct bs_location *loc)
{
    struct bs_core *k = b->core;
    if (!loc->has_pred || loc->n == 0 || id_eq(&loc->pred, &loc->vnode.id))
        return;
    /* Entries for vnodes inside the new range are stale: that range says
     * they are gone (or never were). */
    for (size_t i = 0; i < k->ncache;) {
        if (id_in_oo(&k->cache[i].loc.vnode.id, &loc->pred, &loc->vnode.id))
            cache_del(k, i);
        else
            i++;
    }
    size_t i = cache_lower(k, &loc->vnode.id);
    if (i < k->ncache && id_eq(&k->cache[i].loc.vnode.id, &loc->vnode.id)) {
        k->cache[i].loc = *loc;
        k->cache[i].expires = bs_now(b) + BS_CACHE_TTL_MS;
        return;
    }
    if (k->ncache == BS_CACHE_MAX) {
        size_t old = 0;
        for (size_t j = 1; j < k->ncache; j++)
            if (k->cache[j].expires < k->cache[old].expires)
                old = j;
        cache_del(k, old);
        i = cache_lower(k, &loc->vnode.id);
    }
    if (k->ncache == k->cap_cache) {
        size_t cap = k->cap_cache ? k->cap_cache * 2 : 64;
        struct bs_cache_ent *c = realloc(k->cache, cap * sizeof(*c));
        if (!c)
            return;
        k->cache = c;
        k->cap_cache = cap;
    }
    memmove(&k->cache[i + 1], &k->cache[i], (k->ncache - i) * sizeof(*k->cache));
    k->cache[i].loc = *loc;
    k->cache[i].expires = bs_now(b) + BS_CACHE_TTL_MS;
    k->ncache++;
}

void bs_cache_learn_from(struct bs *b, const struct addr *from, const struct id *key,
                         const struct id *target, const struct bs_location *loc)
{
    if (!loc->has_pred || loc->n == 0 || !addr_eq(from, &loc->vnode.addr) ||
        !id_eq(target, &loc->vnode.id) || !id_in_oc(key, &loc->pred, &loc->vnode.id))
        return;
    bs_cache_learn(b, loc);
}

/* ---- locate ---- */

struct bs_locop {
    struct bs_link link;
    struct id key;
    bs_locate_fn cb;
    void *ctx;
    uint64_t handle, reqid;
    bool lookup, rpc;
    int status;
    struct bs_location loc;
};

static void locop_finish(struct bs *b, struct bs_locop *lo)
{
    bs_list_del(&lo->link);
    lo->cb(b, lo->ctx, lo->status, lo->status ? NULL : &lo->loc);
    free(lo);
}

static void locop_deferred(struct bs *b, void *ctx)
{
    locop_finish(b, ctx);
}

static int local_vnode_by_id(struct bs *b, const struct id *id)
{
    for (unsigned i = 0; i < chord_vnode_count(b->chord); i++)
        if (id_eq(&chord_vnode_self(b->chord, i)->id, id))
            return (int)i;
    return -1;
}

static void locate_replied(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                           size_t len)
{
    struct bs_locop *lo = ctx;
    struct bs_msg m;

    lo->rpc = false;
    if (status == 0) {
        if (bs_msg_decode(type, p, len, &m) != 0)
            status = BS_ERR_MALFORMED;
        else if (type == BS_MSG_FAILURE)
            status = m.code;
        else if (type != BS_MSG_LOCATION || !id_eq(&m.key, &lo->key) || m.loc.n == 0 ||
                 (m.loc.has_pred && !id_in_oc(&lo->key, &m.loc.pred, &m.loc.vnode.id)))
            status = BS_ERR_MALFORMED;
        else
            lo->loc = m.loc;
    }
    lo->status = status;
    locop_finish(b, lo);
}

bool bs_on_lookup_done(struct bs *b, uint64_t handle, const struct chord_lookup_result *res)
{
    struct bs_link *h = &b->core->locs;
    struct bs_locop *lo = NULL;

    for (struct bs_link *l = h->next; l != h; l = l->next) {
        struct bs_locop *x = BS_CONTAINER(l, struct bs_locop, link);
        if (x->lookup && x->handle == handle) {
            lo = x;
            break;
        }
    }
    if (!lo)
        return false;
    lo->lookup = false;
    if (res->status) {
        lo->status = res->status;
        locop_finish(b, lo);
        return true;
    }
    if (bs_is_self(b, &res->succ.addr)) {
        int v = local_vnode_by_id(b, &res->succ.id);
        if (v >= 0) {
            bs_location_of(b, (unsigned)v, &lo->loc);
            lo->status = 0;
        } else {
            lo->status = BS_ERR_WRONG_NODE;
        }
        locop_finish(b, lo);
        return true;
    }
    struct bs_msg m = {.type = BS_MSG_LOCATE, .target = res->succ.id, .key = lo->key};
    int rc =
        bs_rpc_msg(b, &res->succ.addr, &m, 0, b->cfg.rpc_tries, locate_replied, lo, &lo->reqid);
    if (rc < 0) {
        lo->status = rc;
        locop_finish(b, lo);
        return true;
    }
    lo->rpc = true;
    return true;
}

/* fresh: ask the ring even if the cache knows. The answer comes later,
 * never inside the call. */
static int locate_ex(struct bs *b, const struct id *key, bool fresh, bs_locate_fn cb, void *ctx)
{
    struct bs_locop *lo = calloc(1, sizeof(*lo));
    int v, rc;

    if (!lo)
        return -ENOMEM;
    lo->key = *key;
    lo->cb = cb;
    lo->ctx = ctx;
    v = chord_vnode_for_key(b->chord, key);
    if (v >= 0 && chord_vnode_joined(b->chord, (unsigned)v)) {
        bs_location_of(b, (unsigned)v, &lo->loc);
        goto defer;
    }
    ssize_t i = fresh ? -1 : cache_find(b, key);
    if (i >= 0) {
        lo->loc = b->core->cache[i].loc;
        goto defer;
    }
    rc = chord_lookup(b->chord, key, &lo->handle);
    if (rc < 0) {
        free(lo);
        return rc;
    }
    lo->lookup = true;
    bs_list_add(&b->core->locs, &lo->link);
    return 0;
defer:
    bs_list_add(&b->core->locs, &lo->link);
    if (bs_defer(b, locop_deferred, lo) < 0) {
        bs_list_del(&lo->link);
        free(lo);
        return -ENOMEM;
    }
    return 0;
}

int bs_locate(struct bs *b, const struct id *key, bs_locate_fn cb, void *ctx)
{
    return locate_ex(b, key, false, cb, ctx);
}

int bs_locate_fresh(struct bs *b, const struct id *key, bs_locate_fn cb, void *ctx)
{
    return locate_ex(b, key, true, cb, ctx);
}

/* ---- operations ---- */

enum { C_PUT, C_GET, C_ROOT_PUT, C_LEASE, C_KV_PUT };

struct bs_cop {
    struct bs_link link;
    uint8_t kind, type;
    struct id key;
    uint8_t *bytes; /* put: the record */
    size_t len;
    struct lease lease;
    uint64_t expect, version;
    bs_done_fn done;
    void *ctx;
    uint8_t attempt; /* fresh starts so far (RESTART_TRIES) */
    bool rpc;
    uint64_t reqid;
    struct addr rpc_to;
    struct bs_location loc;
    /* get */
    struct chord_peer order[BS_SET_MAX];
    unsigned norder, next, nbad;
    struct addr bad[BS_SET_MAX];
    bool maybe_written;  /* root put: an attempt ended without an answer */
    uint8_t busy;        /* -EBUSY answers of the primary so far */
    uint64_t wait_until; /* != 0: resend to the primary then (it was busy) */
    uint64_t restart_at; /* != 0: start over from a fresh lookup then */
    int last_err;
    char reason[BS_REASON_MAX + 1];
};

static bool is_put(const struct bs_cop *op)
{
    return op->kind != C_GET;
}

static void finish(struct bs *b, struct bs_cop *op, int status, const uint8_t *bytes, size_t len,
                   unsigned copies)
{
    struct bs_result r;

    if (op->rpc)
        bs_rpc_cancel(b, op->reqid);
    bs_list_del(&op->link);
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.key = op->key;
    r.bytes = bytes;
    r.len = bytes ? len : 0;
    r.copies = copies;
    r.version = op->version;
    r.reason = status && op->reason[0] ? op->reason : NULL;
    if (is_put(op)) {
        if (status)
            b->stats.puts_failed++;
        else
            b->stats.puts_ok++;
    } else {
        if (status)
            b->stats.gets_failed++;
        else
            b->stats.gets_ok++;
    }
    b->stats.inflight--;
    if (op->done)
        op->done(op->ctx, &r);
    free(op->bytes);
    free(op);
}

static void start(struct bs *b, struct bs_cop *op);

static bool retryable(int status)
{
    return status == -ETIMEDOUT || status == -EHOSTUNREACH || status == BS_ERR_WRONG_NODE ||
           status == BS_ERR_LEAVING;
}

/* Starts op over from a fresh lookup, now or later (RESTART_*). Returns
 * false when it has no attempt left. */
static bool restart(struct bs *b, struct bs_cop *op)
{
    unsigned max = op->kind == C_ROOT_PUT ? 1 : RESTART_TRIES;

    if (op->attempt >= max || b->core->freeing)
        return false;
    uint64_t delay = op->attempt == 0 ? 0 : (uint64_t)RESTART_DELAY_MS << (op->attempt - 1);
    op->attempt++;
    op->reason[0] = 0;
    if (delay == 0)
        start(b, op);
    else
        op->restart_at = bs_now(b) + delay;
    return true;
}

/* Starts over with a fresh lookup, else finishes with status. */
static void retry_or_fail(struct bs *b, struct bs_cop *op, int status)
{
    cache_drop(b, &op->key);
    if (op->kind == C_ROOT_PUT && (status == -ETIMEDOUT || status == -EHOSTUNREACH))
        op->maybe_written = true;
    if (retryable(status) && restart(b, op))
        return;
    finish(b, op, status, NULL, 0, 0);
}

/* ---- replies of the primary ---- */

static void primary_replied(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                            size_t len)
{
    struct bs_cop *op = ctx;
    struct bs_msg m;

    op->rpc = false;
    if (status) {
        retry_or_fail(b, op, status);
        return;
    }
    if (bs_msg_decode(type, p, len, &m) != 0) {
        finish(b, op, BS_ERR_MALFORMED, NULL, 0, 0);
        return;
    }
    if (type == BS_MSG_FAILURE) {
        snprintf(op->reason, sizeof(op->reason), "%s", m.reason);
        if (m.code == -EBUSY && op->busy < BUSY_TRIES && !b->core->freeing) {
            /* The primary is at its cap of operations: ask it again a bit
             * later (a new request: the old id's answer stays -EBUSY). */
            op->wait_until = bs_now(b) + (BUSY_DELAY_MS << op->busy);
            op->busy++;
            return;
        }
        if (retryable(m.code)) {
            retry_or_fail(b, op, m.code);
            return;
        }
        if (op->kind == C_ROOT_PUT && m.len) {
            struct root_info ri;
            /* The current root comes with a conflict: use it only if it
             * verifies. Our own bytes mean an earlier try succeeded. */
            if (root_verify(&op->key, m.bytes, m.len, &ri) != 0) {
                finish(b, op, m.code, NULL, 0, 0);
                return;
            }
            if (m.len == op->len && !memcmp(m.bytes, op->bytes, m.len)) {
                finish(b, op, 0, NULL, 0, 0);
                return;
            }
            op->version = ri.version;
            /* After an attempt that got no answer, a newer root may be
             * one written on top of ours: whether ours is in the chain is
             * for the writer to read. */
            finish(b, op, op->maybe_written ? BS_ERR_INDETERMINATE : m.code, m.bytes, m.len, 0);
            return;
        }
        if (op->maybe_written && (m.code == BS_ERR_CONFLICT || m.code == BS_ERR_STALE))
            m.code = BS_ERR_INDETERMINATE;
        finish(b, op, m.code, NULL, 0, 0);
        return;
    }
    if (op->kind == C_LEASE) {
        if (type != BS_MSG_LEASE_OK || !id_eq(&m.key, &op->key))
            finish(b, op, BS_ERR_MALFORMED, NULL, 0, 0);
        else
            finish(b, op, 0, NULL, 0, m.copies);
        return;
    }
    if (type != BS_MSG_PUT_OK || !id_eq(&m.key, &op->key) || m.rtype != op->type) {
        finish(b, op, BS_ERR_MALFORMED, NULL, 0, 0);
        return;
    }
    finish(b, op, 0, NULL, 0, m.copies);
}

static void send_primary(struct bs *b, struct bs_cop *op)
{
    struct bs_msg m;
    int rc;

    memset(&m, 0, sizeof(m));
    m.target = op->loc.vnode.id;
    m.key = op->key;
    if (op->kind == C_LEASE) {
        m.type = BS_MSG_LEASE;
        m.leases = &op->lease;
        m.nleases = 1;
    } else {
        m.type = BS_MSG_PUT;
        m.rtype = op->type;
        m.version = op->kind == C_ROOT_PUT ? op->expect : 0;
        m.bytes = op->bytes;
        m.len = op->len;
        if (op->kind == C_PUT) {
            m.leases = &op->lease;
            m.nleases = 1;
        }
    }
    op->rpc_to = op->loc.vnode.addr;
    rc = bs_rpc_msg(b, &op->rpc_to, &m, 0, b->cfg.rpc_tries * PRIMARY_TRIES_FACTOR, primary_replied,
                    op, &op->reqid);
    if (rc < 0) {
        finish(b, op, rc, NULL, 0, 0);
        return;
    }
    op->rpc = true;
}

void bs_client_tick(struct bs *b, uint64_t now)
{
    struct bs_link *h = &b->core->cops;
    /* One at a time from the start: send_primary may end an op, and its
     * callback may start or end others. */
    for (bool again = true; again;) {
        again = false;
        for (struct bs_link *l = h->next; l != h; l = l->next) {
            struct bs_cop *op = BS_CONTAINER(l, struct bs_cop, link);
            if (op->wait_until && op->wait_until <= now) {
                op->wait_until = 0;
                send_primary(b, op);
                again = true;
                break;
            }
            if (op->restart_at && op->restart_at <= now) {
                op->restart_at = 0;
                start(b, op);
                again = true;
                break;
            }
        }
    }
}

uint64_t bs_client_next_deadline(const struct bs *b)
{
    const struct bs_link *h = &b->core->cops;
    uint64_t d = UINT64_MAX;
    for (const struct bs_link *l = h->next; l != h; l = l->next) {
        const struct bs_cop *op = BS_CONTAINER(l, const struct bs_cop, link);
        if (op->wait_until && op->wait_until < d)
            d = op->wait_until;
        if (op->restart_at && op->restart_at < d)
            d = op->restart_at;
    }
    return d;
}

/* ---- gets ---- */

static void get_next(struct bs *b, struct bs_cop *op);

static void mark_bad(struct bs_cop *op, const struct addr *a)
{
    if (op->nbad < BS_SET_MAX)
        op->bad[op->nbad++] = *a;
}

static void repair_ignore(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                          size_t len)
{
    (void)b, (void)ctx, (void)status, (void)type, (void)p, (void)len;
}

/* Gives the good copy (and the leases that came with it) back to every
 * holder whose copy failed a check. */
static void repair_bad(struct bs *b, struct bs_cop *op, const struct bs_msg *good)
{
    for (unsigned i = 0; i < op->nbad; i++) {
        struct bs_msg m;
        memset(&m, 0, sizeof(m));
        m.type = BS_MSG_STORE;
        m.rtype = op->type;
        m.flags = BS_STORE_F_REPAIR;
        m.key = op->key;
        m.bytes = good->bytes;
        m.len = good->len;
        m.lease_raw = good->lease_raw;
        m.nleases = good->nleases;
        if (bs_rpc_msg(b, &op->bad[i], &m, 0, b->cfg.rpc_tries, repair_ignore, NULL, NULL) == 0)
            b->stats.repairs_sent++;
    }
}

/* Does a record received for op verify? */
static bool received_ok(struct bs *b, struct bs_cop *op, const struct bs_msg *m)
{
    if (m->rtype != op->type || !id_eq(&m->key, &op->key))
        return false;
    switch (op->type) {
    case STORE_CONTENT: return block_verify(&op->key, m->bytes, m->len) == 0;
    case STORE_ROOT: {
        struct root_info ri;
        if (root_verify(&op->key, m->bytes, m->len, &ri) != 0)
            return false;
        op->version = ri.version;
        return true;
    }
    case STORE_KV: {
        struct kv_info ki;
        return kv_parse(m->bytes, m->len, &ki) == 0 && id_eq(&ki.key, &op->key) &&
               ki.expiry_s > bs_now_s(b);
    }
    }
    return false;
}

static void get_replied(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                        size_t len)
{
    struct bs_cop *op = ctx;
    struct bs_msg m;

    op->rpc = false;
    if (status) {
        op->last_err = status;
        cache_drop(b, &op->key);
        get_next(b, op);
        return;
    }
    if (bs_msg_decode(type, p, len, &m) != 0) {
        op->last_err = BS_ERR_MALFORMED;
        get_next(b, op);
        return;
    }
    if (type == BS_MSG_FAILURE) {
        snprintf(op->reason, sizeof(op->reason), "%s", m.reason);
        if (m.code == BS_ERR_BAD_BLOCK)
            mark_bad(op, &op->rpc_to);
        op->last_err = m.code;
        get_next(b, op);
        return;
    }
    if (type != BS_MSG_GET_OK || !received_ok(b, op, &m)) {
        /* Bytes that do not verify: this holder's copy is bad. */
        mark_bad(op, &op->rpc_to);
        op->last_err = BS_ERR_BAD_BLOCK;
        get_next(b, op);
        return;
    }
    if (op->type != STORE_ROOT)
        repair_bad(b, op, &m);
    finish(b, op, 0, m.bytes, m.len, 0);
}

static void get_next(struct bs *b, struct bs_cop *op)
{
    while (op->next < op->norder) {
        struct chord_peer *to = &op->order[op->next++];
        struct bs_msg m;
        memset(&m, 0, sizeof(m));
        m.type = BS_MSG_GET;
        m.rtype = op->type;
        m.key = op->key;
        if (op->type == STORE_ROOT) {
            m.flags = BS_GET_F_PRIMARY;
            m.target = to->id;
        }
        op->rpc_to = to->addr;
        /* A root read waits for the majority read at the primary. */
        unsigned tries =
            op->type == STORE_ROOT ? b->cfg.rpc_tries * PRIMARY_TRIES_FACTOR : b->cfg.rpc_tries;
        if (bs_rpc_msg(b, &op->rpc_to, &m, 0, tries, get_replied, op, &op->reqid) == 0) {
            op->rpc = true;
            return;
        }
    }
    int err = op->last_err ? op->last_err : BS_ERR_NOT_FOUND;
    /* No good copy among the holders of this location: it may be stale
     * (cached across a partition that healed, or a ring that changed), so
     * start over from a fresh lookup: once if the holders said they lack
     * it, up to RESTART_TRIES times while they do not answer. */
    cache_drop(b, &op->key);
    if ((op->attempt == 0 || retryable(err)) && restart(b, op))
        return;
    finish(b, op, err, NULL, 0, 0);
}

/* Holders in the order to ask: this node if it holds the record, then the
 * members of the replica set by RTT (known ones first, fastest first; the
 * rest in ring order, the primary first), then the diversion spares. A
 * root is read through the primary only (a majority read). */
static void get_order(struct bs *b, struct bs_cop *op)
{
    unsigned k = b->cfg.replicas < op->loc.n ? b->cfg.replicas : op->loc.n;
    unsigned n = 0;

    if (op->type == STORE_ROOT) {
        op->order[0] = op->loc.vnode;
        op->norder = 1;
        return;
    }
    bool self_first = bs_holds(b, (enum store_type)op->type, &op->key);
    for (unsigned i = 0; i < op->loc.n; i++)
        if (self_first && bs_is_self(b, &op->loc.set[i].addr))
            op->order[n++] = op->loc.set[i];
    unsigned first_member = n;
    for (unsigned i = 0; i < k; i++)
        if (!(self_first && bs_is_self(b, &op->loc.set[i].addr)))
            op->order[n++] = op->loc.set[i];
    /* Insertion sort of the members by RTT, unknown (0) last, stable. */
    uint32_t rtt[BS_SET_MAX];
    for (unsigned i = first_member; i < n; i++)
        rtt[i] = bs_rtt_get(b, &op->order[i].addr);
    for (unsigned i = first_member + 1; i < n; i++) {
        struct chord_peer p = op->order[i];
        uint32_t r = rtt[i];
        unsigned j = i;
        while (j > first_member) {
            uint32_t q = rtt[j - 1];
            if (r == 0 || (q != 0 && q <= r))
                break;
            op->order[j] = op->order[j - 1];
            rtt[j] = rtt[j - 1];
            j--;
        }
        op->order[j] = p;
        rtt[j] = r;
    }
    for (unsigned i = k; i < op->loc.n && n < BS_SET_MAX; i++)
        if (!(self_first && bs_is_self(b, &op->loc.set[i].addr)))
            op->order[n++] = op->loc.set[i];
    op->norder = n;
}

/* ---- the flow ---- */

static void located(struct bs *b, void *ctx, int status, const struct bs_location *loc)
{
    struct bs_cop *op = ctx;

    if (status) {
        retry_or_fail(b, op, status);
        return;
    }
    op->loc = *loc;
    if (op->kind == C_GET) {
        op->next = 0;
        op->nbad = 0;
        op->last_err = 0;
        get_order(b, op);
        get_next(b, op);
    } else {
        send_primary(b, op);
    }
}

static void start(struct bs *b, struct bs_cop *op)
{
    int rc = locate_ex(b, &op->key, op->attempt > 0, located, op);
    if (rc < 0)
        finish(b, op, rc, NULL, 0, 0);
}

static struct bs_cop *cop_new(struct bs *b, uint8_t kind, enum store_type type,
                              const struct id *key, const uint8_t *bytes, size_t len,
                              bs_done_fn done, void *ctx)
{
    if (b->core->freeing)
        return NULL;
    struct bs_cop *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    if (len) {
        op->bytes = malloc(len);
        if (!op->bytes) {
            free(op);
            return NULL;
        }
        memcpy(op->bytes, bytes, len);
        op->len = len;
    }
    op->kind = kind;
    op->type = (uint8_t)type;
    op->key = *key;
    op->done = done;
    op->ctx = ctx;
    return op;
}

/* Starts op; on failure nothing was started and no callback will run. */
static int launch(struct bs *b, struct bs_cop *op)
{
    int rc = locate_ex(b, &op->key, false, located, op);
    if (rc < 0) {
        free(op->bytes);
        free(op);
        return rc;
    }
    bs_list_add(&b->core->cops, &op->link);
    b->stats.inflight++;
    return 0;
}

static bool busy(const struct bs *b)
{
    return b->stats.inflight >= BS_INFLIGHT_MAX;
}

int bs_put_checked(struct bs *b, const struct id *key, const uint8_t *bytes, size_t len,
                   const struct lease *lease, bs_done_fn done, void *ctx)
{
    struct bs_cop *op;

    if (!bytes || len == 0 || len > BLOCK_MAX_STORED)
        return BS_ERR_BAD_BLOCK;
    if (!lease || lease->expiry_s <= bs_now_s(b))
        return BS_ERR_NO_LEASE;
    if (busy(b))
        return -EBUSY;
    op = cop_new(b, C_PUT, STORE_CONTENT, key, bytes, len, done, ctx);
    if (!op)
        return -ENOMEM;
    op->lease = *lease;
    return launch(b, op);
}

int bs_put_check(const uint8_t *bytes, size_t len, const struct lease *lease, struct id *key)
{
    if (!bytes || len == 0 || len > BLOCK_MAX_STORED || block_key(bytes, len, key) != 0)
        return BS_ERR_BAD_BLOCK;
    if (!lease || !lease_verify(lease, key))
        return BS_ERR_NO_LEASE;
    return 0;
}

int bs_put(struct bs *b, const uint8_t *bytes, size_t len, const struct lease *lease,
           bs_done_fn done, void *ctx)
{
    struct id key;
    int rc = bs_put_check(bytes, len, lease, &key);
    return rc ? rc : bs_put_checked(b, &key, bytes, len, lease, done, ctx);
}

int bs_get(struct bs *b, enum store_type type, const struct id *key, bs_done_fn done, void *ctx)
{
    struct bs_cop *op;

    if ((type != STORE_CONTENT && type != STORE_ROOT && type != STORE_KV) || !key)
        return -EINVAL;
    if (busy(b))
        return -EBUSY;
    op = cop_new(b, C_GET, type, key, NULL, 0, done, ctx);
    if (!op)
        return -ENOMEM;
    return launch(b, op);
}

int bs_root_put(struct bs *b, const uint8_t *bytes, size_t len, uint64_t expect_version,
                bs_done_fn done, void *ctx)
{
    struct root_info ri;
    struct id key;
    struct bs_cop *op;

    if (!bytes || len == 0 || len > ROOT_MAX_LEN || root_parse(bytes, len, &ri) != 0)
        return BS_ERR_BAD_BLOCK;
    root_key(&ri.pub, &key);
    if (root_verify(&key, bytes, len, NULL) != 0)
        return BS_ERR_BAD_BLOCK;
    if (expect_version != BS_ROOT_ANY && ri.version <= expect_version)
        return -EINVAL;
    if (busy(b))
        return -EBUSY;
    op = cop_new(b, C_ROOT_PUT, STORE_ROOT, &key, bytes, len, done, ctx);
    if (!op)
        return -ENOMEM;
    op->expect = expect_version;
    op->version = ri.version;
    return launch(b, op);
}

int bs_lease_update(struct bs *b, const struct id *key, const struct lease *l, bs_done_fn done,
                    void *ctx)
{
    struct bs_cop *op;

    if (!key || !l || !lease_verify(l, key))
        return BS_ERR_NO_LEASE;
    if (busy(b))
        return -EBUSY;
    op = cop_new(b, C_LEASE, STORE_CONTENT, key, NULL, 0, done, ctx);
    if (!op)
        return -ENOMEM;
    op->lease = *l;
    return launch(b, op);
}

int bs_kv_put(struct bs *b, const uint8_t *bytes, size_t len, bs_done_fn done, void *ctx)
{
    struct kv_info ki;
    struct bs_cop *op;

    if (!bytes || len == 0 || len > KV_MAX_LEN || kv_parse(bytes, len, &ki) != 0)
        return BS_ERR_BAD_BLOCK;
    if (busy(b))
        return -EBUSY;
    op = cop_new(b, C_KV_PUT, STORE_KV, &ki.key, bytes, len, done, ctx);
    if (!op)
        return -ENOMEM;
    op->version = ki.stamp_ms;
    return launch(b, op);
}

/* ---- lifecycle ---- */

int bs_client_init(struct bs *b)
{
    bs_list_init(&b->core->cops);
    bs_list_init(&b->core->locs);
    return 0;
}

void bs_client_release(struct bs *b)
{
    struct bs_core *k = b->core;
    /* Locates first: their callbacks point at operations. */
    while (!bs_list_empty(&k->locs)) {
        struct bs_locop *lo = BS_CONTAINER(k->locs.next, struct bs_locop, link);
        if (lo->rpc)
            bs_rpc_cancel(b, lo->reqid);
        bs_list_del(&lo->link);
        free(lo);
    }
    while (!bs_list_empty(&k->cops))
        finish(b, BS_CONTAINER(k->cops.next, struct bs_cop, link), -ECANCELED, NULL, 0, 0);
}
