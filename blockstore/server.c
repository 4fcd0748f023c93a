/* server.c — the block server: admission and durable stores of records
 * (bs_store_record) and STORE. GET and LOCATE are in server_get.c, the
 * push / pull / lease exchange helpers maintenance uses in xfer.c, PUT as
 * primary in put.c, roots in root.c, leases in lease.c.
 *
 * A store is acknowledged only when everything it changed is durable: the
 * record's bytes (persist write) and its lease records (persist lease
 * append), each completed through bs_persist_done. Two stores of one
 * content block at once share the first one's write: the second merges its
 * leases, appends them, and waits for the first write (its "leader").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"
#include "common/hash.h"

#define MOD "bs"

struct bs_sop {
    struct bs_link link;
    uint8_t type;
    struct id key;
    uint64_t version; /* root: version; kv: stamp */
    uint8_t *bytes;   /* root, kv: a copy, to tell a retry from a rival */
    size_t len;
    bs_persist_fn cb;
    void *ctx;
    int pending; /* persist operations and a leader's write awaited */
    int status;
    bool writes;  /* this store writes the record's bytes */
    bool dropped; /* the entry was dropped while the write was in flight */
    bool created; /* the entry did not exist before */
    /* The entry before this store (to undo a write that could not start). */
    uint32_t prev_size;
    uint8_t prev_flags;
    uint64_t prev_version, prev_expiry;
    uint64_t expiry; /* what this write sets e->expiry_s to (kv: expiry; root: fingerprint) */
    /* What is on disk as far as this write knows: the entry before the
     * first of the writes of its record in flight, or the write of them
     * that last succeeded since. The write that settles last leaves the
     * entry at its own record if it succeeded, else at this, so that the
     * entry always says what the disk holds once writes settle. base_none:
     * nothing (the entry was made by these writes). */
    uint32_t base_size;
    uint8_t base_flags;
    uint64_t base_version, base_expiry;
    bool base_none;
    struct bs_sop *leader;
};

/* A STORE being answered. */
struct store_reply {
    struct addr to;
    uint64_t reqid;
    uint8_t type;
    struct id key;
};

int bs_server_init(struct bs *b)
{
    struct bs_core *k = b->core;
    bs_list_init(&k->sops);
    bs_list_init(&k->pputs);
    bs_list_init(&k->rops);
    bs_list_init(&k->lops);
    bs_list_init(&k->xops);
    bs_list_init(&k->gops);
    return 0;
}

void bs_server_release(struct bs *b)
{
    struct bs_core *k = b->core;
    bs_put_release(b);
    bs_root_release(b);
    bs_lease_release(b);
    bs_xfer_release(b);
    bs_server_get_release(b);
    while (!bs_list_empty(&k->sops)) {
        struct bs_sop *s = BS_CONTAINER(k->sops.next, struct bs_sop, link);
        bs_list_del(&s->link);
        free(s->bytes);
        free(s);
    }
}

int bs_persist_err(int status)
{
    if (status == 0 || status == -ECANCELED || status == -ENOMEM)
        return status;
    if (status == -ENOSPC)
        return BS_ERR_FULL;
    if (status < -4095)
        return status;
    return BS_ERR_STORE;
}

void bs_location_of(struct bs *b, unsigned vnode, struct bs_location *out)
{
    struct chord_peer pred;
    memset(out, 0, sizeof(*out));
    out->vnode = *chord_vnode_self(b->chord, vnode);
    out->has_pred = chord_vnode_predecessor(b->chord, vnode, &pred);
    if (out->has_pred)
        out->pred = pred.id;
    out->n = (uint8_t)chord_vnode_replica_set(b->chord, vnode, out->set,
                                              b->cfg.replicas + BS_DIVERT_MAX);
}

int bs_lease_check(struct bs *b, const struct id *key, const struct lease *l)
{
    if (!lease_verify(l, key))
        return BS_ERR_BAD_BLOCK;
    return bs_lease_limits(b, l);
}

int bs_lease_limits(struct bs *b, const struct lease *l)
{
    if (l->stamp_ms > bs_wall_ms(b) + BS_LEASE_SKEW_MS)
        return BS_ERR_NO_LEASE;
    if (l->expiry_s > bs_now_s(b) + BS_LEASE_MAX_S)
        return BS_ERR_NO_LEASE;
    return 0;
}

/* ---- stores ---- */

/* A root entry keeps in expiry_s (which only kv and content records use
 * otherwise) a fingerprint of the bytes it holds: the first 8 bytes of
 * their SHA-256, never 0 (0: unknown). When its copy goes bad (BS_E_BAD)
 * the version stays as a floor, and the same version is taken back only
 * with the same bytes (a repair), never a rival root of that version.
 * bs_load (bs.c) computes the same. */
static uint64_t root_fp(const uint8_t *bytes, size_t len)
{
    struct id h;
    uint64_t fp = 0;
    hash_sha256(&h, bytes, len);
    for (int i = 0; i < 8; i++)
        fp = fp << 8 | h.b[i];
    return fp ? fp : 1;
}

static struct bs_sop *sop_writer(struct bs *b, uint8_t type, const struct id *key,
                                 const struct bs_sop *except)
{
    struct bs_link *l;
    struct bs_sop *last = NULL;
    for (l = b->core->sops.next; l != &b->core->sops; l = l->next) {
        struct bs_sop *s = BS_CONTAINER(l, struct bs_sop, link);
        if (s != except && s->writes && !s->dropped && s->type == type && id_eq(&s->key, key))
            last = s; /* the latest queued write */
    }
    return last;
}

static void sop_finish(struct bs *b, struct bs_sop *s)
{
    bs_list_del(&s->link);
    if (s->status == 0)
        b->stats.stores++;
    if (s->cb)
        s->cb(b, s->ctx, s->status);
    free(s->bytes);
    free(s);
}

static void sop_step(struct bs *b, struct bs_sop *s, int status)
{
    if (status && !s->status)
        s->status = status;
    if (--s->pending == 0)
        sop_finish(b, s);
}

static void sop_deferred(struct bs *b, void *ctx)
{
    sop_step(b, ctx, b->core->freeing ? -ECANCELED : 0);
}

static void sop_lease_done(struct bs *b, void *ctx, int status)
{
    sop_step(b, ctx, bs_persist_err(status));
}

static void sop_write_done(struct bs *b, void *ctx, int status)
{
    struct bs_sop *s = ctx;
    struct bs_entry *e = bs_index_find(&b->ix, (enum store_type)s->type, &s->key);
    int st = bs_persist_err(status);

    s->writes = false; /* no longer in flight */
    if (status == 0)
        bs_server_get_overtaken(b, (enum store_type)s->type, &s->key);
    if (status == 0 && !s->dropped) {
        /* The writes of this record still in flight learn what is on disk
         * now, in case they fail. */
        for (struct bs_link *l = b->core->sops.next; l != &b->core->sops; l = l->next) {
            struct bs_sop *f = BS_CONTAINER(l, struct bs_sop, link);
            if (f == s || !f->writes || f->dropped || f->type != s->type ||
                !id_eq(&f->key, &s->key))
                continue;
            f->base_none = false;
            f->base_size = s->type == STORE_CONTENT ? f->base_size : (uint32_t)s->len;
            f->base_flags = BS_E_PRESENT;
            f->base_version = s->version;
            f->base_expiry = s->expiry;
        }
    }
    if (e && !s->dropped && !sop_writer(b, s->type, &s->key, s)) {
        /* The last write of this record to settle: the entry takes the
         * outcome (its own record if it succeeded, else the last that did). */
        if (status == 0) {
            uint32_t size = e->size;
            if (e->type != STORE_CONTENT) {
                e->version = s->version;
                e->expiry_s = s->expiry;
                size = (uint32_t)s->len;
            }
            bs_index_set_size(&b->ix, e, size,
                              (uint8_t)((e->flags | BS_E_PRESENT) & ~(BS_E_WRITING | BS_E_BAD)));
        } else if (s->base_none) {
            bs_index_remove(&b->ix, e);
        } else {
            e->version = s->base_version;
            if (e->type != STORE_CONTENT)
                e->expiry_s = s->base_expiry;
            bs_index_set_size(&b->ix, e, s->base_size, s->base_flags);
        }
    }
    if (status)
        LOG_E(b->lg, MOD, "a durable write failed (%d)", status);
    /* Stores that waited on this write learn its outcome. */
    for (struct bs_link *l = b->core->sops.next; l != &b->core->sops;) {
        struct bs_sop *f = BS_CONTAINER(l, struct bs_sop, link);
        l = l->next;
        if (f->leader == s) {
            f->leader = NULL;
            sop_step(b, f, st);
        }
    }
    sop_step(b, s, st);
}

/* Would merging l[0..n) leave a lease that came in, live at now_s, as the
 * record of its owner (no record held or sent beats it; the same record
 * already held counts: a grant merged before the block arrived)? */
static bool incoming_live(const struct bs_entry *e, const struct lease *l, size_t n, uint64_t now_s)
{
    for (size_t i = 0; i < n; i++) {
        if (l[i].expiry_s <= now_s)
            continue;
        bool wins = true;
        for (size_t j = 0; e && j < e->nleases; j++)
            if (!memcmp(e->leases[j].owner.b, l[i].owner.b, SIG_PUB_LEN) &&
                lease_newer(&e->leases[j], &l[i]))
                wins = false;
        for (size_t j = 0; j < n; j++)
            if (j != i && !memcmp(l[j].owner.b, l[i].owner.b, SIG_PUB_LEN) &&
                lease_newer(&l[j], &l[i]))
                wins = false;
        if (wins)
            return true;
    }
    return false;
}

/* Is there an owner, live after the merge, with room for len more bytes? */
static bool quota_room(struct bs *b, const struct bs_entry *e, const struct lease *l, size_t n,
                       uint64_t now_s, size_t len)
{
    if (!b->cfg.owner_cap)
        return true;
    for (size_t i = 0; i < n; i++)
        if (l[i].expiry_s > now_s &&
            bs_index_owner_bytes(&b->ix, &l[i].owner) + len <= b->cfg.owner_cap)
            return true;
    for (size_t j = 0; e && j < e->nleases; j++)
        if (e->leases[j].expiry_s > now_s &&
            bs_index_owner_bytes(&b->ix, &e->leases[j].owner) + len <= b->cfg.owner_cap)
            return true;
    return false;
}

static struct bs_sop *sop_new(struct bs *b, enum store_type type, const struct id *key,
                              bs_persist_fn cb, void *ctx)
{
    struct bs_sop *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->type = (uint8_t)type;
    s->key = *key;
    s->cb = cb;
    s->ctx = ctx;
    s->pending = 1; /* the start itself, released at the end of bs_store_record */
    bs_list_add(&b->core->sops, &s->link);
    return s;
}

/* Drops the start reference: the store finishes at the next tick when
 * nothing else is awaited (cb never runs inside bs_store_record). Returns
 * 0, or -ENOMEM when that finish cannot be scheduled (then nothing is in
 * flight and the store is forgotten: no callback). */
static int sop_started(struct bs *b, struct bs_sop *s)
{
    if (s->pending == 1) {
        if (bs_defer(b, sop_deferred, s) == 0)
            return 0;
        bs_list_del(&s->link);
        free(s->bytes);
        free(s);
        return -ENOMEM;
    }
    s->pending--;
    return 0;
}

static int store_content(struct bs *b, const struct id *key, const uint8_t *bytes, size_t len,
                         const struct lease *l, size_t n, bool repair, bs_persist_fn cb, void *ctx)
{
    uint64_t now_s = bs_now_s(b);
    struct bs_entry *e = bs_index_find(&b->ix, STORE_CONTENT, key);
    struct bs_sop *s;
    bool changed = false;
    int rc;

    if (e && (e->flags & (BS_E_PRESENT | BS_E_WRITING))) {
        /* Held (or being written): only the leases merge. */
        s = sop_new(b, STORE_CONTENT, key, cb, ctx);
        if (!s)
            return -ENOMEM;
        rc = bs_index_merge_leases(&b->ix, e, l, n, now_s, &changed);
        if (rc < 0) {
            bs_list_del(&s->link);
            free(s);
            return rc;
        }
        /* A new owner past the cap on owners is refused (the sender hears
         * QUOTA); the records of the others merged all the same. */
        if (bs_lease_capped(e, l, n, now_s)) {
            b->stats.stores_refused_quota++;
            s->status = BS_ERR_QUOTA;
        }
        if (changed && bs_persist_leases(b, key, e->leases, e->nleases, sop_lease_done, s) == 0)
            s->pending++;
        else if (changed)
            s->status = BS_ERR_STORE;
        if (e->flags & BS_E_WRITING) {
            s->leader = sop_writer(b, STORE_CONTENT, key, NULL);
            if (s->leader)
                s->pending++;
        }
        return sop_started(b, s);
    }

    if (!incoming_live(e, l, n, now_s) && !(repair && e && bs_entry_live(e, now_s)))
        return BS_ERR_NO_LEASE;
    if (b->ix.used + len > b->cfg.capacity) {
        b->stats.stores_refused_full++;
        return BS_ERR_FULL;
    }
    if (!quota_room(b, e, l, n, now_s, len)) {
        b->stats.stores_refused_quota++;
        return BS_ERR_QUOTA;
    }
    s = sop_new(b, STORE_CONTENT, key, cb, ctx);
    if (!s)
        return -ENOMEM;
    if (!e) {
        rc = bs_index_add(&b->ix, STORE_CONTENT, key, &e);
        if (rc < 0)
            goto err_sop;
        s->created = true;
    }
    s->prev_size = e->size;
    s->prev_flags = e->flags;
    /* No other write of the block is in flight (a store then only merges
     * leases): the disk holds what the entry says. */
    s->base_size = e->size;
    s->base_flags = e->flags;
    s->base_version = e->version;
    s->base_none = s->created;
    rc = bs_index_merge_leases(&b->ix, e, l, n, now_s, &changed);
    if (rc < 0)
        goto err_entry;
    if (!bs_entry_live(e, now_s) && bs_lease_capped(e, l, n, now_s)) {
        /* Every live lease it came with was a new owner past the cap. */
        b->stats.stores_refused_quota++;
        rc = BS_ERR_QUOTA;
        goto err_entry;
    }
    bs_index_set_size(&b->ix, e, (uint32_t)len,
                      (uint8_t)((e->flags & ~(BS_E_BAD | BS_E_PRESENT)) | BS_E_WRITING));
    rc = bs_persist_write(b, STORE_CONTENT, key, bytes, len, sop_write_done, s);
    if (rc < 0) {
        rc = bs_persist_err(rc);
        goto err_entry;
    }
    s->writes = true;
    s->pending++;
    if (bs_persist_leases(b, key, e->leases, e->nleases, sop_lease_done, s) == 0)
        s->pending++;
    else
        s->status = BS_ERR_STORE;
    sop_started(b, s);
    return 0;

err_entry:
    if (s->created)
        bs_index_remove(&b->ix, e);
    else
        bs_index_set_size(&b->ix, e, s->prev_size, s->prev_flags);
err_sop:
    bs_list_del(&s->link);
    free(s);
    return rc;
}

/* The bytes of the version held (in flight or on disk) equal these? */
static int same_as_held(struct bs *b, enum store_type type, const struct id *key,
                        const uint8_t *bytes, size_t len, struct bs_sop **leader)
{
    struct bs_sop *w = sop_writer(b, (uint8_t)type, key, NULL);
    *leader = NULL;
    if (w) {
        *leader = w;
        if (w->len == len && !memcmp(w->bytes, bytes, len))
            return 0;
        return w->len < len || (w->len == len && memcmp(w->bytes, bytes, len) < 0) ? 1 : -1;
    }
    uint8_t *held;
    size_t hlen;
    if (bs_read_local(b, type, key, &held, &hlen) != 0)
        return 1; /* nothing readable: take the new one */
    int c = hlen == len ? memcmp(held, bytes, len) : (hlen < len ? -1 : 1);
    free(held);
    return c == 0 ? 0 : c < 0 ? 1 : -1;
}

static int store_versioned(struct bs *b, enum store_type type, const struct id *key,
                           const uint8_t *bytes, size_t len, uint64_t version, uint64_t expiry,
                           bs_persist_fn cb, void *ctx)
{
    struct bs_entry *e = bs_index_find(&b->ix, type, key);
    struct bs_sop *s, *leader = NULL;
    uint64_t held = 0;
    int rc;

    /* A bad copy's version stays a floor: no rollback below what this
     * holder acknowledged. */
    if (e && (e->flags & (BS_E_PRESENT | BS_E_WRITING | BS_E_BAD)))
        held = e->version;
    if (held && version < held)
        return BS_ERR_STALE;
    if (held && version == held && !(e->flags & (BS_E_PRESENT | BS_E_WRITING))) {
        /* Bad and nothing in flight: the bytes are gone. A root comes
         * back only with the bytes it had (by fingerprint); a kv record
         * of that stamp is taken (its rule only orders equal stamps). */
        if (type == STORE_ROOT && (!e->expiry_s || e->expiry_s != root_fp(bytes, len)))
            return BS_ERR_STALE;
    } else if (held && version == held) {
        int c = same_as_held(b, type, key, bytes, len, &leader);
        if (c == 0) {
            /* Already stored (or being stored): wait for that write. */
            s = sop_new(b, type, key, cb, ctx);
            if (!s)
                return -ENOMEM;
            if (leader) {
                s->leader = leader;
                s->pending++;
            }
            return sop_started(b, s);
        }
        /* Two roots of one version are a writer's equivocation: the
         * first one stays. Two kv records of one stamp: the larger bytes
         * win, so every holder keeps the same one. */
        if (type == STORE_ROOT || c < 0)
            return BS_ERR_STALE;
    }
    uint64_t counted = e && (e->flags & (BS_E_PRESENT | BS_E_WRITING)) ? e->size : 0;
    if (b->ix.used - counted + len > b->cfg.capacity) {
        b->stats.stores_refused_full++;
        return BS_ERR_FULL;
    }
    s = sop_new(b, type, key, cb, ctx);
    if (!s)
        return -ENOMEM;
    s->bytes = malloc(len);
    if (!s->bytes) {
        rc = -ENOMEM;
        goto err_sop;
    }
    memcpy(s->bytes, bytes, len);
    s->len = len;
    s->version = version;
    if (!e) {
        rc = bs_index_add(&b->ix, type, key, &e);
        if (rc < 0)
            goto err_sop;
        s->created = true;
    }
    s->prev_size = e->size;
    s->prev_flags = e->flags;
    s->prev_version = e->version;
    s->prev_expiry = e->expiry_s;
    struct bs_sop *w = sop_writer(b, (uint8_t)type, key, NULL);
    if (w) {
        s->base_size = w->base_size;
        s->base_flags = w->base_flags;
        s->base_version = w->base_version;
        s->base_expiry = w->base_expiry;
        s->base_none = w->base_none;
    } else {
        s->base_size = e->size;
        s->base_flags = e->flags;
        s->base_version = e->version;
        s->base_expiry = e->expiry_s;
        s->base_none = s->created;
    }
    s->expiry = type == STORE_KV ? expiry : root_fp(bytes, len);
    e->version = version;
    e->expiry_s = s->expiry;
    bs_index_set_size(&b->ix, e, (uint32_t)len, (uint8_t)((e->flags & ~BS_E_BAD) | BS_E_WRITING));
    rc = bs_persist_write(b, type, key, bytes, len, sop_write_done, s);
    if (rc < 0) {
        rc = bs_persist_err(rc);
        if (s->created) {
            bs_index_remove(&b->ix, e);
        } else {
            e->version = s->prev_version;
            e->expiry_s = s->prev_expiry;
            bs_index_set_size(&b->ix, e, s->prev_size, s->prev_flags);
        }
        goto err_sop;
    }
    s->writes = true;
    s->pending++;
    sop_started(b, s);
    return 0;

err_sop:
    bs_list_del(&s->link);
    free(s->bytes);
    free(s);
    return rc;
}

int bs_store_record(struct bs *b, enum store_type type, const struct id *key, const uint8_t *bytes,
                    size_t len, const struct lease *l, size_t nleases, unsigned flags,
                    bs_persist_fn cb, void *ctx)
{
    struct lease *ok = NULL;
    size_t nok = 0;
    int rc;

    if (b->leaving)
        return BS_ERR_LEAVING;
    if (!bytes || len == 0 || len > BLOCK_MAX_ANY)
        goto bad;
    switch (type) {
    case STORE_CONTENT:
        if (!(flags & BS_STORE_VERIFIED) && block_verify(key, bytes, len) != 0)
            goto bad;
        if (nleases) {
            ok = malloc(nleases * sizeof(*ok));
            if (!ok)
                return -ENOMEM;
        }
        /* A lease that does not verify is a forgery: refuse the whole
         * store. One past the limits (a clock ahead of ours) is left out. */
        for (size_t i = 0; i < nleases; i++) {
            rc = flags & BS_STORE_VERIFIED ? bs_lease_limits(b, &l[i])
                                           : bs_lease_check(b, key, &l[i]);
            if (rc == BS_ERR_BAD_BLOCK) {
                free(ok);
                goto bad;
            }
            if (rc == 0)
                ok[nok++] = l[i];
        }
        /* Dead records of owners it has no record of are left out too. */
        nok = bs_lease_admit(bs_index_find(&b->ix, STORE_CONTENT, key), ok, nok, bs_now_s(b));
        rc = store_content(b, key, bytes, len, ok, nok, flags & BS_STORE_REPAIR, cb, ctx);
        free(ok);
        return rc;
    case STORE_ROOT: {
        struct root_info ri;
        if (root_verify(key, bytes, len, &ri) != 0)
            goto bad;
        return store_versioned(b, type, key, bytes, len, ri.version, 0, cb, ctx);
    }
    case STORE_KV: {
        struct kv_info ki;
        if (kv_parse(bytes, len, &ki) != 0 || !id_eq(&ki.key, key) || ki.stamp_ms == 0)
            goto bad;
        if (ki.expiry_s <= bs_now_s(b) || ki.stamp_ms > bs_wall_ms(b) + BS_LEASE_SKEW_MS)
            return BS_ERR_STALE;
        return store_versioned(b, type, key, bytes, len, ki.stamp_ms, ki.expiry_s, cb, ctx);
    }
    }
bad:
    b->stats.stores_bad++;
    return BS_ERR_BAD_BLOCK;
}

/* ---- STORE ---- */

/* A refused root store carries the root held, so the primary learns it. */
static void reply_store_failure(struct bs *b, const struct store_reply *r, int code)
{
    uint8_t *cur = NULL;
    size_t clen = 0;
    if (code == BS_ERR_STALE && r->type == STORE_ROOT &&
        bs_read_local(b, STORE_ROOT, &r->key, &cur, &clen) != 0)
        cur = NULL;
    bs_reply_failure_ex(b, &r->to, r->reqid, code,
                        code == BS_ERR_QUOTA && r->type == STORE_CONTENT
                            ? "over an owner's quota, or the block has the most owners a node keeps"
                            : NULL,
                        -1, cur, cur ? clen : 0);
    free(cur);
}

static void store_replied(struct bs *b, void *ctx, int status)
{
    struct store_reply *r = ctx;
    if (!b->core->freeing) {
        if (status == 0) {
            struct bs_msg m = {.type = BS_MSG_STORE_OK, .rtype = r->type, .key = r->key};
            bs_reply_msg(b, &r->to, r->reqid, &m);
        } else {
            reply_store_failure(b, r, status);
        }
    }
    free(r);
}

struct lease *bs_msg_leases(const struct bs_msg *m)
{
    struct lease *l = malloc((m->nleases ? m->nleases : 1) * sizeof(*l));
    if (!l)
        return NULL;
    for (size_t i = 0; i < m->nleases; i++)
        bs_msg_lease(m, i, &l[i]);
    return l;
}

static void on_store(struct bs *b, const struct addr *from, uint64_t reqid, const struct bs_msg *m)
{
    struct store_reply *r = calloc(1, sizeof(*r));
    struct lease *l = bs_msg_leases(m);
    int rc;

    if (!r || !l) {
        free(r);
        free(l);
        bs_reply_failure(b, from, reqid, -ENOMEM, NULL, -1);
        return;
    }
    r->to = *from;
    r->reqid = reqid;
    r->type = m->rtype;
    r->key = m->key;
    rc = bs_store_record(b, (enum store_type)m->rtype, &m->key, m->bytes, m->len, l, m->nleases,
                         m->flags & BS_STORE_F_REPAIR ? BS_STORE_REPAIR : 0, store_replied, r);
    free(l);
    if (rc < 0) {
        reply_store_failure(b, r, rc);
        free(r);
    }
}

void bs_server_request(struct bs *b, const struct addr *from, uint64_t reqid,
                       const struct bs_msg *m)
{
    switch (m->type) {
    case BS_MSG_GET: bs_server_on_get(b, from, reqid, m); break;
    case BS_MSG_PUT:
        if (m->rtype == STORE_ROOT) {
            if (bs_replay_seen(b, from, reqid))
                break;
            int v = bs_server_check_target(b, from, reqid, &m->target, &m->key);
            if (v >= 0)
                bs_root_on_put(b, from, reqid, v, m);
        } else {
            bs_put_on_request(b, from, reqid, m);
        }
        break;
    case BS_MSG_STORE:
        if (b->leaving)
            bs_reply_failure(b, from, reqid, BS_ERR_LEAVING, NULL, -1);
        else
            on_store(b, from, reqid, m);
        break;
    case BS_MSG_LOCATE: bs_server_on_locate(b, from, reqid, m); break;
    case BS_MSG_LEASE: bs_lease_on_request(b, from, reqid, m); break;
    case BS_MSG_LEASE_MERGE: bs_lease_on_merge(b, from, reqid, m); break;
    case BS_MSG_ROOT_READ: bs_root_on_read(b, from, reqid, m); break;
    default: break;
    }
}

uint64_t bs_server_next_deadline(const struct bs *b)
{
    return bs_put_next_deadline(b);
}

void bs_server_tick(struct bs *b, uint64_t now)
{
    bs_put_tick(b, now);
}

/* Stores waiting on a write that a drop overtook finish with it. */
void bs_server_drop_writes(struct bs *b, enum store_type type, const struct id *key)
{
    for (struct bs_link *l = b->core->sops.next; l != &b->core->sops; l = l->next) {
        struct bs_sop *s = BS_CONTAINER(l, struct bs_sop, link);
        if (s->type == type && id_eq(&s->key, key))
            s->dropped = true;
    }
}
