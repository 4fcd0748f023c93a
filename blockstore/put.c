/* put.c — STORAGE PUT of content blocks and kv records at the primary.
 *
 * The primary (the vnode responsible for the key) verifies the record,
 * stores it itself and sends STORE to the other members of the replica
 * set, all at once. A member that refuses for space or quota, whose disk
 * fails, that does not answer after every try, or that fails in any other
 * way than refusing the record itself, is replaced by the next distinct
 * successor (PAST's replica diversion), up to BS_DIVERT_MAX past k. The put is answered when every
 * slot has an outcome, or at the op's deadline (two full request timeouts), when members still
 * silent count as not answering:
 *   - k copies (or the kv record's replication): PUT_OK, whatever the
 *     other candidates answered;
 *   - fewer, but every candidate not holding one was full or silent:
 *     PUT_OK with the copies made (a ring with fewer than k live nodes);
 *   - none: FULL if a candidate was full, else QUOTA if one refused for
 *     quota, else -ETIMEDOUT if all were silent, else the disk error;
 *   - a candidate refused the record itself (BAD_BLOCK, NO_LEASE, STALE):
 *     that refusal (such a refusal is never diverted: a spare would store
 *     a block a tombstone refused);
 *   - else a member's unexpected error, if one failed so.
 * A retry of a PUT (same sender, same request id) is not done twice
 * (bs_replay_seen): ignored while in progress, answered again after.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"

enum { S_IDLE, S_PENDING, S_OK, S_FAILED };

struct pslot {
    struct bs_pput *op;
    uint8_t state;
    bool local;
    int err;
    uint64_t reqid;
};

struct bs_pput {
    struct bs_link link;
    struct addr from;
    uint64_t reqid;
    int vnode;
    uint8_t type;
    struct id key;
    uint8_t *bytes;
    size_t len;
    struct lease *leases;
    size_t nleases;
    struct chord_peer cand[BS_SET_MAX];
    unsigned ncand, want, next;
    struct pslot slot[BS_SET_MAX];
    unsigned pending; /* slots in S_PENDING */
    uint64_t deadline;
    bool closed; /* no more diversions: the deadline passed */
};

/* A candidate refused the record itself: the same record would be
 * refused by a spare too, or must be (a reclaim's tombstone must not be
 * bypassed by storing the block on spares). */
static bool refusal(int err)
{
    return err == BS_ERR_BAD_BLOCK || err == BS_ERR_NO_LEASE || err == BS_ERR_STALE;
}

/* Any other failure is that member not holding the record: a spare takes
 * its place. */
static bool divertible(int err)
{
    return !refusal(err) && err != -ECANCELED;
}

static bool silent_err(int err)
{
    return err == -ETIMEDOUT || err == -EHOSTUNREACH || err == BS_ERR_LEAVING ||
           err == BS_ERR_WRONG_NODE;
}

static void op_free(struct bs *b, struct bs_pput *op)
{
    b->core->npputs--;
    b->core->pput_bytes -= op->len;
    bs_list_del(&op->link);
    free(op->bytes);
    free(op->leases);
    free(op);
}

static void finish(struct bs *b, struct bs_pput *op)
{
    unsigned ok = 0;
    bool full = false, quota = false, silent = false, store = false;
    int hard = 0, odd = 0;

    for (unsigned i = 0; i < op->ncand; i++) {
        struct pslot *s = &op->slot[i];
        if (s->state == S_OK)
            ok++;
        if (s->state != S_FAILED)
            continue;
        if (s->err == BS_ERR_FULL)
            full = true;
        else if (s->err == BS_ERR_QUOTA)
            quota = true;
        else if (silent_err(s->err))
            silent = true;
        else if (refusal(s->err)) {
            if (!hard)
                hard = s->err;
        } else {
            store = true; /* a disk error, or one nobody expects */
            if (s->err != BS_ERR_STORE && s->err != -ENOMEM && !odd)
                odd = s->err;
        }
    }
    if (!b->core->freeing) {
        /* k copies stored: done, whatever the others answered (a member
         * that failed does not hold it). Fewer: only if every other
         * candidate was full or silent. */
        if (ok > 0 && (ok >= op->want || (!hard && !store))) {
            struct bs_msg m;
            memset(&m, 0, sizeof(m));
            m.type = BS_MSG_PUT_OK;
            m.rtype = op->type;
            m.key = op->key;
            m.copies = (uint8_t)ok;
            if (op->vnode >= 0 && (unsigned)op->vnode < chord_vnode_count(b->chord)) {
                bs_location_of(b, (unsigned)op->vnode, &m.loc);
                m.has_loc = true;
            }
            bs_reply_msg(b, &op->from, op->reqid, &m);
        } else {
            /* A candidate that did not answer might have had room: "full"
             * only when every candidate answered. */
            int code = hard     ? hard
                       : silent ? -ETIMEDOUT
                       : full   ? BS_ERR_FULL
                       : quota  ? BS_ERR_QUOTA
                       : odd    ? odd
                       : store  ? BS_ERR_STORE
                                : BS_ERR_STORE;
            char why[96];
            snprintf(why, sizeof(why), "%s (%u of %u copies stored)", bs_strerror(code), ok,
                     op->want);
            bs_reply_failure(b, &op->from, op->reqid, code, why, op->vnode);
        }
    }
    op_free(b, op);
}

static void check_done(struct bs *b, struct bs_pput *op)
{
    if (op->pending == 0)
        finish(b, op);
}

static void slot_start(struct bs *b, struct bs_pput *op, unsigned i);

static void slot_fail(struct bs *b, struct bs_pput *op, unsigned i, int err)
{
    struct pslot *s = &op->slot[i];
    s->state = S_FAILED;
    s->err = err;
    if (divertible(err) && !op->closed && op->next < op->ncand && !b->core->freeing)
        slot_start(b, op, op->next++);
}

static void local_done(struct bs *b, void *ctx, int status)
{
    struct pslot *s = ctx;
    struct bs_pput *op = s->op;
    op->pending--;
    if (status == 0)
        s->state = S_OK;
    else
        slot_fail(b, op, (unsigned)(s - op->slot), status);
    check_done(b, op);
}

static void remote_done(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                        size_t len)
{
    struct pslot *s = ctx;
    struct bs_pput *op = s->op;
    struct bs_msg m;

    op->pending--;
    if (status == 0) {
        if (bs_msg_decode(type, p, len, &m) != 0)
            status = BS_ERR_MALFORMED;
        else if (type == BS_MSG_FAILURE)
            status = m.code;
        else if (type != BS_MSG_STORE_OK || m.rtype != op->type || !id_eq(&m.key, &op->key))
            status = BS_ERR_MALFORMED;
    }
    if (status == 0)
        s->state = S_OK;
    else
        slot_fail(b, op, (unsigned)(s - op->slot), status);
    check_done(b, op);
}

static void slot_start(struct bs *b, struct bs_pput *op, unsigned i)
{
    struct pslot *s = &op->slot[i];
    int rc;

    s->op = op;
    s->state = S_PENDING;
    op->pending++;
    if (bs_is_self(b, &op->cand[i].addr)) {
        s->local = true;
        /* verify() checked the block and the leases' signatures already. */
        rc = bs_store_record(b, (enum store_type)op->type, &op->key, op->bytes, op->len, op->leases,
                             op->nleases, BS_STORE_VERIFIED, local_done, s);
    } else {
        struct bs_msg m;
        memset(&m, 0, sizeof(m));
        m.type = BS_MSG_STORE;
        m.rtype = op->type;
        m.key = op->key;
        m.bytes = op->bytes;
        m.len = op->len;
        m.leases = op->leases;
        m.nleases = (uint16_t)op->nleases;
        rc = bs_rpc_msg(b, &op->cand[i].addr, &m, 0, b->cfg.rpc_tries, remote_done, s, &s->reqid);
    }
    if (rc < 0) {
        op->pending--;
        slot_fail(b, op, i, rc);
    }
}

/* The checks every member would make, so nothing unverifiable goes out.
 * Sets *want to the copies the record asks for. */
static int verify(struct bs *b, const struct bs_msg *m, struct lease *l, unsigned *want,
                  const char **why)
{
    uint64_t now_s = bs_now_s(b);
    *want = b->cfg.replicas;
    if (m->rtype == STORE_CONTENT) {
        bool live = false;
        if (block_verify(&m->key, m->bytes, m->len) != 0) {
            *why = "content block does not hash to its key";
            return BS_ERR_BAD_BLOCK;
        }
        for (size_t i = 0; i < m->nleases; i++) {
            int rc = bs_lease_check(b, &m->key, &l[i]);
            if (rc == BS_ERR_BAD_BLOCK) {
                *why = "a lease signature does not verify";
                return rc;
            }
            live |= rc == 0 && l[i].expiry_s > now_s;
        }
        if (!live) {
            *why = "no valid, live lease (expiry past, too far away, or stamp ahead)";
            return BS_ERR_NO_LEASE;
        }
        return 0;
    }
    struct kv_info ki;
    if (kv_parse(m->bytes, m->len, &ki) != 0 || !id_eq(&ki.key, &m->key) || ki.stamp_ms == 0) {
        *why = "kv record does not verify";
        return BS_ERR_BAD_BLOCK;
    }
    if (ki.expiry_s <= now_s || ki.stamp_ms > bs_wall_ms(b) + BS_LEASE_SKEW_MS) {
        *why = "kv record expired or stamped in the future";
        return BS_ERR_STALE;
    }
    unsigned r = ki.replication ? ki.replication : 1;
    if (r < *want)
        *want = r;
    return 0;
}

void bs_put_on_request(struct bs *b, const struct addr *from, uint64_t reqid,
                       const struct bs_msg *m)
{
    struct bs_core *k = b->core;
    struct bs_pput *op;
    const char *why = NULL;
    unsigned want;
    int v, rc;

    if (bs_replay_seen(b, from, reqid))
        return;
    v = bs_server_check_target(b, from, reqid, &m->target, &m->key);
    if (v < 0)
        return;
    /* Each op holds the record and sends copies for up to ~12 s: a peer
     * must not make this node hold any number of them. */
    if (k->npputs >= BS_PPUT_MAX || m->len > BS_PPUT_BYTES_MAX - k->pput_bytes) {
        bs_reply_failure(b, from, reqid, -EBUSY,
                         "busy: too many puts in progress at this primary, retry later", v);
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op)
        goto nomem;
    op->leases = malloc((m->nleases ? m->nleases : 1) * sizeof(*op->leases));
    op->bytes = malloc(m->len);
    if (!op->leases || !op->bytes) {
        free(op->leases);
        free(op->bytes);
        free(op);
        goto nomem;
    }
    for (size_t i = 0; i < m->nleases; i++)
        bs_msg_lease(m, i, &op->leases[i]);
    op->nleases = m->nleases;
    rc = verify(b, m, op->leases, &want, &why);
    if (rc < 0) {
        if (rc == BS_ERR_BAD_BLOCK)
            b->stats.stores_bad++;
        free(op->leases);
        free(op->bytes);
        free(op);
        bs_reply_failure(b, from, reqid, rc, why, v);
        return;
    }
    memcpy(op->bytes, m->bytes, m->len);
    op->len = m->len;
    op->from = *from;
    op->reqid = reqid;
    op->vnode = v;
    op->type = m->rtype;
    op->key = m->key;
    op->ncand = (unsigned)chord_vnode_replica_set(b->chord, (unsigned)v, op->cand,
                                                  b->cfg.replicas + BS_DIVERT_MAX);
    op->want = want < op->ncand ? want : op->ncand;
    op->next = op->want;
    op->deadline = bs_now(b) + 2ull * b->cfg.rpc_timeout_ms * b->cfg.rpc_tries;
    bs_list_add(&k->pputs, &op->link);
    k->npputs++;
    k->pput_bytes += op->len;
    for (unsigned i = 0; i < op->want; i++)
        slot_start(b, op, i);
    check_done(b, op);
    return;
nomem:
    bs_reply_failure(b, from, reqid, -ENOMEM, NULL, v);
}

uint64_t bs_put_next_deadline(const struct bs *b)
{
    uint64_t d = UINT64_MAX;
    const struct bs_link *h = &b->core->pputs;
    for (const struct bs_link *l = h->next; l != h; l = l->next) {
        const struct bs_pput *op = BS_CONTAINER(l, const struct bs_pput, link);
        if (!op->closed && op->deadline < d)
            d = op->deadline;
    }
    return d;
}

void bs_put_tick(struct bs *b, uint64_t now)
{
    struct bs_link *h = &b->core->pputs;
    for (struct bs_link *l = h->next; l != h;) {
        struct bs_pput *op = BS_CONTAINER(l, struct bs_pput, link);
        l = l->next;
        if (op->closed || op->deadline > now)
            continue;
        /* Members still silent count as not answering; the local store,
         * a disk write, is waited for. */
        op->closed = true;
        for (unsigned i = 0; i < op->ncand; i++) {
            struct pslot *s = &op->slot[i];
            if (s->state == S_PENDING && !s->local) {
                bs_rpc_cancel(b, s->reqid);
                s->state = S_FAILED;
                s->err = -ETIMEDOUT;
                op->pending--;
            }
        }
        if (op->pending == 0) {
            /* l may be op's neighbour, which finish does not touch. */
            finish(b, op);
        }
    }
}

void bs_put_release(struct bs *b)
{
    struct bs_link *h = &b->core->pputs;
    while (!bs_list_empty(h))
        op_free(b, BS_CONTAINER(h->next, struct bs_pput, link));
}
