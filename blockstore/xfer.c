/* xfer.c — moving one record or its leases between this node and one
 * peer, for maintenance (sync.c): push (STORE of the local copy with its
 * leases), pull (GET, then a local store of what verifies) and lease
 * exchange (LEASE_MERGE both ways; bs_lease_exchange_held also tells
 * whether the peer holds the block). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"
#include "blockstore/sync_int.h"

enum { X_PUSH, X_PULL, X_EXCHANGE };
struct bs_xop {
    struct bs_link link;
    uint8_t kind, type;
    struct id key;
    uint64_t reqid;
    bool rpc;  /* the request is out */
    struct addr to; /* push: where the copy goes once read */
    bool held; /* exchange: the peer said it holds the block (BS_MERGE_F_HELD) */
    bs_persist_fn done;
    bs_exchange_fn xdone; /* exchange: instead of done, with held */
    void *ctx;
};

static struct bs_xop *xop_new(struct bs *b, uint8_t kind, enum store_type type,
                              const struct id *key, bs_persist_fn done, void *ctx)
{
    struct bs_xop *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->kind = kind;
    x->type = (uint8_t)type;
    x->key = *key;
    x->done = done;
    x->ctx = ctx;
    bs_list_add(&b->core->xops, &x->link);
    return x;
}

static void xop_finish(struct bs *b, struct bs_xop *x, int status)
{
    bs_list_del(&x->link);
    if (x->xdone)
        x->xdone(b, x->ctx, status, status == 0 && x->held);
    else if (x->done)
        x->done(b, x->ctx, status);
    free(x);
}

static void xop_stored(struct bs *b, void *ctx, int status)
{
    xop_finish(b, ctx, status);
}

/* The code of a FAILURE reply, or BS_ERR_MALFORMED for another type. */
static int reply_code(uint16_t type, const uint8_t *p, size_t len, uint16_t want,
                      struct bs_msg *out)
{
    if (bs_msg_decode(type, p, len, out) != 0)
        return BS_ERR_MALFORMED;
    if (type == BS_MSG_FAILURE)
        return out->code;
    return type == want ? 0 : BS_ERR_MALFORMED;
}

static void xop_replied(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                        size_t len)
{
    struct bs_xop *x = ctx;
    struct bs_msg m;
    struct lease *l;
    int rc;

    if (status) {
        xop_finish(b, x, status);
        return;
    }
    switch (x->kind) {
    case X_PUSH: xop_finish(b, x, reply_code(type, p, len, BS_MSG_STORE_OK, &m)); return;
    case X_PULL:
        rc = reply_code(type, p, len, BS_MSG_GET_OK, &m);
        if (rc == 0 && (m.rtype != x->type || !id_eq(&m.key, &x->key)))
            rc = BS_ERR_BAD_BLOCK;
        if (rc == 0) {
            struct bs_entry *e = bs_index_find(&b->ix, (enum store_type)x->type, &x->key);
            l = bs_msg_leases(&m);
            if (!l) {
                rc = -ENOMEM;
            } else {
                rc = bs_store_record(b, (enum store_type)x->type, &x->key, m.bytes, m.len, l,
                                     m.nleases, e && (e->flags & BS_E_BAD) ? BS_STORE_REPAIR : 0,
                                     xop_stored, x);
                free(l);
                if (rc == 0)
                    return;
            }
        }
        xop_finish(b, x, rc);
        return;
    case X_EXCHANGE:
        rc = reply_code(type, p, len, BS_MSG_LEASE_MERGE_OK, &m);
        if (rc == 0 && !id_eq(&m.key, &x->key))
            rc = BS_ERR_MALFORMED;
        /* An answer without HELD is a success too (the peer merged what
         * it had: a tombstone, a bad copy, nothing), but it does not say
         * the peer holds the block: xdone gets that apart. */
        x->held = rc == 0 && (m.flags & BS_MERGE_F_HELD);
        if (rc == 0 && m.nleases) {
            l = bs_msg_leases(&m);
            size_t n = 0;
            for (size_t i = 0; l && i < m.nleases; i++)
                if (bs_lease_check(b, &x->key, &l[i]) == 0)
                    l[n++] = l[i];
            bool held;
            rc = l ? bs_lease_merge_local(b, &x->key, l, n, &held, xop_stored, x) : -ENOMEM;
            free(l);
            if (rc == 0)
                return;
        }
        xop_finish(b, x, rc);
        return;
    }
}

/* The local copy of a push has been read (off the loop): send it. */
static void push_read(struct bs *b, void *ctx, int status, const uint8_t *bytes, size_t len)
{
    struct bs_xop *x = ctx;
    enum store_type type = (enum store_type)x->type;
    struct bs_entry *e;
    struct bs_msg m;
    int rc;

    if (status != 0) {
        bs_read_mark(b, type, &x->key, status);
        xop_finish(b, x, status == -EBADMSG ? BS_ERR_BAD_BLOCK : status);
        return;
    }
    e = bs_index_find(&b->ix, type, &x->key);
    if (!e || !(e->flags & BS_E_PRESENT)) { /* dropped while it was read */
        xop_finish(b, x, -ENOENT);
        return;
    }
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_STORE;
    m.rtype = (uint8_t)type;
    m.key = x->key;
    m.bytes = bytes;
    m.len = len;
    if (type == STORE_CONTENT)
        bs_leases_of(e, &m);
    rc = bs_rpc_msg(b, &x->to, &m, 0, b->cfg.rpc_tries, xop_replied, x, &x->reqid);
    if (rc < 0)
        xop_finish(b, x, rc);
}

int bs_push(struct bs *b, const struct addr *to, enum store_type type, const struct id *key,
            bs_persist_fn done, void *ctx)
{
    struct bs_entry *e = bs_index_find(&b->ix, type, key);
    if (!e || !(e->flags & BS_E_PRESENT))
        return -ENOENT;
    struct bs_xop *x = xop_new(b, X_PUSH, type, key, done, ctx);
    if (!x)
        return -ENOMEM;
    x->to = *to;
    int rc = bs_persist_read(b, type, key, push_read, x);
    if (rc < 0) {
        bs_list_del(&x->link);
        free(x);
    }
    return rc;
}

int bs_pull(struct bs *b, const struct addr *from, enum store_type type, const struct id *key,
            bs_persist_fn done, void *ctx)
{
    struct bs_msg m;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_GET;
    m.rtype = (uint8_t)type;
    m.key = *key;
    struct bs_xop *x = xop_new(b, X_PULL, type, key, done, ctx);
    if (!x)
        return -ENOMEM;
    int rc = bs_rpc_msg(b, from, &m, 0, b->cfg.rpc_tries, xop_replied, x, &x->reqid);
    if (rc < 0) {
        bs_list_del(&x->link);
        free(x);
    }
    return rc;
}

static int lease_exchange(struct bs *b, const struct addr *to, const struct id *key,
                          bs_persist_fn done, bs_exchange_fn xdone, void *ctx)
{
    struct bs_entry *e = bs_index_find(&b->ix, STORE_CONTENT, key);
    struct bs_msg m;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_LEASE_MERGE;
    m.key = *key;
    if (e)
        bs_leases_of(e, &m);
    struct bs_xop *x = xop_new(b, X_EXCHANGE, STORE_CONTENT, key, done, ctx);
    if (!x)
        return -ENOMEM;
    x->xdone = xdone;
    int rc = bs_rpc_msg(b, to, &m, 0, b->cfg.rpc_tries, xop_replied, x, &x->reqid);
    if (rc < 0) {
        bs_list_del(&x->link);
        free(x);
    }
    return rc;
}

int bs_lease_exchange(struct bs *b, const struct addr *to, const struct id *key, bs_persist_fn done,
                      void *ctx)
{
    return lease_exchange(b, to, key, done, NULL, ctx);
}

int bs_lease_exchange_held(struct bs *b, const struct addr *to, const struct id *key,
                           bs_exchange_fn done, void *ctx)
{
    return lease_exchange(b, to, key, NULL, done, ctx);
}

void bs_xfer_release(struct bs *b)
{
    struct bs_link *h = &b->core->xops;
    while (!bs_list_empty(h)) {
        struct bs_xop *x = BS_CONTAINER(h->next, struct bs_xop, link);
        bs_list_del(&x->link);
        free(x);
    }
}
