/* server_get.c — the block server's reads: GET and LOCATE, and the local
 * reads of records that other paths make.
 *
 * A GET is served off the loop: the handler checks the index, starts a
 * persist read (the store reads, SHA-256-checks and, if bad, quarantines
 * the file on a reader thread) and answers when the read completes. The
 * index may have changed meanwhile, so the completion looks the entry up
 * again: a record dropped or marked bad in between is answered as if the
 * GET came then. A read that found the copy bad or missing marks the
 * entry bad, unless a write of the record completed while it ran: the
 * store then holds that write's file, which the read may not have seen
 * (a later read finds out if that one is bad too).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"

#define MOD "bs"

/* A GET waiting for its read (on k->gops). */
struct bs_gop {
    struct bs_link link;
    struct addr from;
    uint64_t reqid;
    uint8_t rtype;
    bool overtaken; /* a write of the record completed while the read ran */
    struct id key;
};

void bs_read_mark(struct bs *b, enum store_type type, const struct id *key, int rc)
{
    if (rc != -EBADMSG && rc != -ENOENT)
        return;
    struct bs_entry *e = bs_index_find(&b->ix, type, key);
    if (!e || !(e->flags & BS_E_PRESENT))
        return;
    /* The store lost or quarantined it: the leases stay so a good copy can
     * come back (repair, maintenance). */
    bs_index_set_size(&b->ix, e, e->size, (uint8_t)((e->flags & ~BS_E_PRESENT) | BS_E_BAD));
    if (rc == -EBADMSG)
        b->stats.reads_bad++;
    LOG_W(b->lg, MOD, "a local copy %s", rc == -EBADMSG ? "failed its check" : "is missing");
}

int bs_read_local(struct bs *b, enum store_type type, const struct id *key, uint8_t **bytes,
                  size_t *len)
{
    int rc = b->persist.read(b->persist.ctx, type, key, bytes, len);
    bs_read_mark(b, type, key, rc);
    return rc;
}

void bs_server_get_overtaken(struct bs *b, enum store_type type, const struct id *key)
{
    for (struct bs_link *l = b->core->gops.next; l != &b->core->gops; l = l->next) {
        struct bs_gop *g = BS_CONTAINER(l, struct bs_gop, link);
        if (g->rtype == type && id_eq(&g->key, key))
            g->overtaken = true;
    }
}

void bs_server_get_release(struct bs *b)
{
    /* Every GET ends through its read's completion (bs_persist_cancel_all
     * at the latest); this only guards against a runtime that lost one. */
    while (!bs_list_empty(&b->core->gops)) {
        struct bs_gop *g = BS_CONTAINER(b->core->gops.next, struct bs_gop, link);
        bs_list_del(&g->link);
        free(g);
    }
}

/* Can e be served? 0, or the failure to answer. */
static int get_servable(struct bs *b, const struct bs_entry *e)
{
    if (e && (e->flags & BS_E_PRESENT) && !(e->type == STORE_KV && e->expiry_s <= bs_now_s(b)))
        return 0;
    return e && (e->flags & BS_E_BAD) ? BS_ERR_BAD_BLOCK : BS_ERR_NOT_FOUND;
}

static void get_read_done(struct bs *b, void *ctx, int status, const uint8_t *bytes, size_t len)
{
    struct bs_gop *g = ctx;
    enum store_type type = (enum store_type)g->rtype;
    struct bs_entry *e;
    struct bs_msg rep;
    int v, code;

    bs_list_del(&g->link);
    if (b->core->freeing) {
        free(g);
        return;
    }
    if (!g->overtaken)
        bs_read_mark(b, type, &g->key, status);
    v = chord_vnode_for_key(b->chord, &g->key);
    e = bs_index_find(&b->ix, type, &g->key);
    code = status == 0          ? get_servable(b, e)
           : status == -EBADMSG ? BS_ERR_BAD_BLOCK
           : status == -ENOENT  ? BS_ERR_NOT_FOUND
                                : BS_ERR_STORE;
    if (code) {
        bs_reply_failure(b, &g->from, g->reqid, code, NULL, v);
        free(g);
        return;
    }
    memset(&rep, 0, sizeof(rep));
    rep.type = BS_MSG_GET_OK;
    rep.rtype = g->rtype;
    rep.key = g->key;
    rep.bytes = bytes;
    rep.len = len;
    if (e->type == STORE_CONTENT)
        bs_leases_of(e, &rep);
    if (v >= 0) {
        bs_location_of(b, (unsigned)v, &rep.loc);
        rep.has_loc = true;
    }
    bs_reply_msg(b, &g->from, g->reqid, &rep);
    free(g);
}

void bs_server_on_get(struct bs *b, const struct addr *from, uint64_t reqid, const struct bs_msg *m)
{
    int v = chord_vnode_for_key(b->chord, &m->key);
    struct bs_gop *g;
    int rc;

    if ((m->flags & BS_GET_F_PRIMARY) && m->rtype == STORE_ROOT) {
        if (bs_replay_seen(b, from, reqid))
            return;
        v = bs_server_check_target(b, from, reqid, &m->target, &m->key);
        if (v >= 0)
            bs_root_on_get(b, from, reqid, v, m);
        return;
    }
    rc = get_servable(b, bs_index_find(&b->ix, (enum store_type)m->rtype, &m->key));
    if (rc) {
        bs_reply_failure(b, from, reqid, rc, NULL, v);
        return;
    }
    g = calloc(1, sizeof(*g));
    if (!g) {
        bs_reply_failure(b, from, reqid, -ENOMEM, NULL, v);
        return;
    }
    g->from = *from;
    g->reqid = reqid;
    g->rtype = m->rtype;
    g->key = m->key;
    bs_list_add(&b->core->gops, &g->link);
    rc = bs_persist_read(b, (enum store_type)m->rtype, &m->key, get_read_done, g);
    if (rc < 0) {
        bs_list_del(&g->link);
        free(g);
        bs_reply_failure(b, from, reqid, rc == -ENOMEM ? -ENOMEM : BS_ERR_STORE, NULL, v);
    }
}

static int local_vnode_by_id(struct bs *b, const struct id *id)
{
    for (unsigned i = 0; i < chord_vnode_count(b->chord); i++)
        if (id_eq(&chord_vnode_self(b->chord, i)->id, id))
            return (int)i;
    return -1;
}

int bs_server_check_target(struct bs *b, const struct addr *from, uint64_t reqid,
                           const struct id *target, const struct id *key)
{
    if (b->leaving) {
        bs_reply_failure(b, from, reqid, BS_ERR_LEAVING, NULL, -1);
        return -1;
    }
    int v = chord_vnode_for_key(b->chord, key);
    if (v >= 0 && chord_vnode_joined(b->chord, (unsigned)v) &&
        id_eq(&chord_vnode_self(b->chord, (unsigned)v)->id, target))
        return v;
    if (v < 0)
        v = local_vnode_by_id(b, target);
    bs_reply_failure(b, from, reqid, BS_ERR_WRONG_NODE, NULL, v);
    return -1;
}

void bs_server_on_locate(struct bs *b, const struct addr *from, uint64_t reqid,
                         const struct bs_msg *m)
{
    int v = chord_vnode_for_key(b->chord, &m->key);
    if (b->leaving) {
        bs_reply_failure(b, from, reqid, BS_ERR_LEAVING, NULL, -1);
        return;
    }
    if (v < 0 || !chord_vnode_joined(b->chord, (unsigned)v)) {
        bs_reply_failure(b, from, reqid, BS_ERR_WRONG_NODE, NULL, local_vnode_by_id(b, &m->target));
        return;
    }
    struct bs_msg rep;
    memset(&rep, 0, sizeof(rep));
    rep.type = BS_MSG_LOCATION;
    rep.key = m->key;
    bs_location_of(b, (unsigned)v, &rep.loc);
    rep.has_loc = true;
    bs_reply_msg(b, from, reqid, &rep);
}
