/* root.c — root blocks at the primary: compare-and-swap puts and majority
 * reads (DhtFlex's atomic mutable data on a replica set).
 *
 * The primary serializes the root puts of one key: each waits in a queue
 * until the one before it has answered. A put reads the root of every
 * member of the replica set (ROOT_READ; its own copy locally) and of the
 * next BS_DIVERT_MAX distinct successors past it: nodes that joined in
 * front of the old members make a new set whose majority may hold
 * nothing yet, while the old members, now past the set, hold the current
 * root. It waits for every answer (or timeout); with answers from a
 * majority of the members it takes, among all valid answers, the highest
 * version as the current one, and of two roots of that version with other
 * bytes (a fork: one put reached a minority, a rival was acknowledged)
 * the one more answering nodes hold, of as many the larger fingerprint —
 * the same choice whichever answer came first (choose_best). Any version
 * written by an earlier successful put is on a majority, so two
 * majorities of one set meet and the read sees it.
 *   - current == new bytes: a retry of a put that already happened: the
 *     write phase runs again (it repairs) and the put succeeds;
 *   - expect given and current != expect: CONFLICT with the current root;
 *   - new version not above current: STALE with the current root;
 *   - else the new root goes to every member (STORE), which keeps it only
 *     if it is above what it holds. A majority of stores: OK. Some but
 *     fewer: INDETERMINATE (it may still become visible). None: CONFLICT
 *     if a member held a higher version (a rival primary won), else the
 *     error seen (-ETIMEDOUT when nobody answered).
 * A root get at the primary does the same read, answers with the root it
 * chooses and pushes it to the members that had less. Writes and repairs
 * go to the members only.
 *
 * The queue of one key holds at most ROOT_QUEUE_MAX puts (the one running
 * and those waiting); a put beyond that is refused at once with -EBUSY.
 * When a put ends, the next one of its key starts at the next tick
 * (bs_defer), never inside the call that ended it: a put that ends
 * without waiting on anything (every member local, k = 1) would otherwise
 * start the next from its own stack, once per put queued.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"
#include "common/hash.h"

#define ROOT_QUEUE_MAX 64 /* root puts of one key at the primary, running and waiting */

enum { R_PUT, R_GET };
enum { P_QUEUED, P_STARTING, P_READ, P_WRITE }; /* P_STARTING: its start is deferred */
enum { RS_PENDING, RS_OK, RS_FAILED };

struct rslot {
    struct bs_rop *op;
    uint8_t state;
    bool local;
    bool bad; /* read phase: the member holds the root but no valid copy of it */
    int err;
    uint64_t reqid;
    uint64_t version; /* read phase: the version this member holds (0: none) */
    uint64_t fp;      /* read phase: the fingerprint of the root it holds */
    uint8_t *bytes;   /* read phase: the root it holds (owned; NULL: none) */
    size_t len;
};

struct bs_rop {
    struct bs_link link;
    uint8_t kind, phase;
    struct addr from;
    uint64_t reqid;
    int vnode;
    struct id key;
    uint8_t *bytes; /* put: the new root */
    size_t len;
    uint64_t version, expect;
    struct chord_peer mem[BS_SET_MAX]; /* the m members, then the spares read */
    unsigned m, n;                     /* members (k or fewer); members and spares */
    struct rslot slot[BS_SET_MAX];
    unsigned pending, answered, stored, stale;
    int err;
    uint64_t best_version; /* the current version read (or seen refused for) */
    uint64_t best_fp;      /* the fingerprint of the current root read */
    uint8_t *best;
    size_t best_len;
};

static void op_free(struct bs_rop *op)
{
    bs_list_del(&op->link);
    for (unsigned i = 0; i < BS_SET_MAX; i++)
        free(op->slot[i].bytes);
    free(op->bytes);
    free(op->best);
    free(op);
}

static void ignore_reply(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                         size_t len)
{
    (void)b, (void)ctx, (void)status, (void)type, (void)p, (void)len;
}

static void ignore_store(struct bs *b, void *ctx, int status)
{
    (void)b, (void)ctx, (void)status;
}

/* The fingerprint of a root's bytes, as server.c's root_fp (which root
 * entries keep in expiry_s): the first 8 bytes of SHA-256, never 0. */
static uint64_t root_fingerprint(const uint8_t *bytes, size_t len)
{
    struct id h;
    uint64_t fp = 0;
    hash_sha256(&h, bytes, len);
    for (int i = 0; i < 8; i++)
        fp = fp << 8 | h.b[i];
    return fp ? fp : 1;
}

/* A read answer: keeps a verified root in the slot (version, fingerprint
 * and a copy of the bytes; read_done chooses among them). Returns the
 * version, 0 if the bytes do not verify (or no memory to keep them: no
 * answer, as if it had not come). */
static uint64_t slot_answer(struct bs_rop *op, struct rslot *s, const uint8_t *bytes, size_t len)
{
    struct root_info ri;
    if (!len || root_verify(&op->key, bytes, len, &ri) != 0)
        return 0;
    uint8_t *c = malloc(len);
    if (!c)
        return 0;
    memcpy(c, bytes, len);
    free(s->bytes);
    s->bytes = c;
    s->len = len;
    s->fp = root_fingerprint(bytes, len);
    return ri.version;
}

/* Keeps bytes as the best root if they verify and are higher (a member
 * that refused a store for holding a higher root). Returns the version, 0
 * if they do not verify. */
static uint64_t consider(struct bs_rop *op, const uint8_t *bytes, size_t len)
{
    struct root_info ri;
    if (!len || root_verify(&op->key, bytes, len, &ri) != 0)
        return 0;
    if (ri.version > op->best_version) {
        uint8_t *c = malloc(len);
        if (c) {
            memcpy(c, bytes, len);
            free(op->best);
            op->best = c;
            op->best_len = len;
            op->best_version = ri.version;
        }
    }
    return ri.version;
}

static void schedule_next(struct bs *b, const struct id *key);
static void read_done(struct bs *b, struct bs_rop *op);
static void write_done(struct bs *b, struct bs_rop *op);

static void finish(struct bs *b, struct bs_rop *op)
{
    struct id key = op->key;
    bool put = op->kind == R_PUT;
    op_free(op);
    if (put && !b->core->freeing)
        schedule_next(b, &key);
}

static void reply_fail(struct bs *b, struct bs_rop *op, int code, const char *why,
                       const uint8_t *bytes, size_t len)
{
    if (!b->core->freeing)
        bs_reply_failure_ex(b, &op->from, op->reqid, code, why, op->vnode, bytes, len);
}

/* ---- read phase ---- */

static void read_replied(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                         size_t len)
{
    struct rslot *s = ctx;
    struct bs_rop *op = s->op;
    struct bs_msg m;

    op->pending--;
    s->state = RS_FAILED;
    if (status == 0 && bs_msg_decode(type, p, len, &m) == 0) {
        if (type == BS_MSG_ROOT_READ_OK && id_eq(&m.key, &op->key)) {
            /* An empty record: it holds none. Bytes that do not verify
             * are no answer (and a copy to repair). */
            s->version = m.len ? slot_answer(op, s, m.bytes, m.len) : 0;
            if (!m.len || s->version) {
                s->state = RS_OK;
                op->answered += s < &op->slot[op->m]; /* a member's answer */
            } else {
                s->bad = true;
            }
        } else if (type == BS_MSG_FAILURE && m.code == BS_ERR_BAD_BLOCK) {
            s->bad = true;
        }
    }
    if (op->pending == 0)
        read_done(b, op);
}

/* Reads the local root of key for a read phase or a ROOT_READ. Returns 0
 * with *bytes (may be NULL: none held; the caller frees), or the error the
 * member answers instead: BS_ERR_BAD_BLOCK when it holds the root but its
 * copy failed its check or is gone (the entry is bad: its version stays a
 * floor), BS_ERR_STORE when the disk failed or a first write of it is in
 * flight. Only "none held" when the index has no record of it at all: a
 * member that lost an acknowledged root must not count as holding none. */
static int read_root(struct bs *b, const struct id *key, uint8_t **bytes, size_t *len)
{
    int rc = bs_read_local(b, STORE_ROOT, key, bytes, len);
    if (rc == 0)
        return 0;
    *bytes = NULL;
    *len = 0;
    const struct bs_entry *e = bs_index_find(&b->ix, STORE_ROOT, key);
    uint8_t flags = e ? e->flags : 0;
    if (rc == -ENOENT && !(flags & (BS_E_PRESENT | BS_E_WRITING | BS_E_BAD)))
        return 0;
    if (rc == -EBADMSG || (flags & BS_E_BAD))
        return BS_ERR_BAD_BLOCK;
    return BS_ERR_STORE;
}

static void start_read(struct bs *b, struct bs_rop *op)
{
    op->phase = P_READ;
    /* The members, and past them the next BS_DIVERT_MAX distinct
     * successors: the nodes that held the range before joins pushed them
     * out of the set, and may hold a version the new members never saw. */
    op->n = (unsigned)chord_vnode_replica_set(b->chord, (unsigned)op->vnode, op->mem,
                                              b->cfg.replicas + BS_DIVERT_MAX);
    op->m = op->n < b->cfg.replicas ? op->n : b->cfg.replicas;
    for (unsigned i = 0; i < op->n; i++) {
        struct rslot *s = &op->slot[i];
        s->op = op;
        s->state = RS_PENDING;
        if (bs_is_self(b, &op->mem[i].addr)) {
            uint8_t *bytes;
            size_t len;
            int rc = read_root(b, &op->key, &bytes, &len);
            s->local = true;
            s->state = RS_FAILED;
            if (rc == 0) {
                s->version = bytes ? slot_answer(op, s, bytes, len) : 0;
                if (!bytes || s->version) {
                    s->state = RS_OK;
                    op->answered += i < op->m;
                } else {
                    s->bad = true;
                }
                free(bytes);
            } else {
                s->bad = rc == BS_ERR_BAD_BLOCK;
            }
            continue;
        }
        struct bs_msg m = {.type = BS_MSG_ROOT_READ, .key = op->key};
        op->pending++;
        if (bs_rpc_msg(b, &op->mem[i].addr, &m, 0, b->cfg.rpc_tries, read_replied, s, &s->reqid) <
            0) {
            op->pending--;
            s->state = RS_FAILED;
        }
    }
    if (op->pending == 0)
        read_done(b, op);
}

/* Pushes the best root to the members that answered with less, and to
 * those whose copy was bad. */
static void repair_stale(struct bs *b, struct bs_rop *op)
{
    for (unsigned i = 0; i < op->m; i++) {
        struct rslot *s = &op->slot[i];
        if (!s->bad && (s->state != RS_OK || s->version >= op->best_version))
            continue;
        b->stats.repairs_sent++;
        if (s->local) {
            bs_store_record(b, STORE_ROOT, &op->key, op->best, op->best_len, NULL, 0, 0,
                            ignore_store, NULL);
            continue;
        }
        struct bs_msg m = {.type = BS_MSG_STORE,
                           .rtype = STORE_ROOT,
                           .key = op->key,
                           .bytes = op->best,
                           .len = op->best_len};
        bs_rpc_msg(b, &op->mem[i].addr, &m, 0, b->cfg.rpc_tries, ignore_reply, NULL, NULL);
    }
}

static void start_write(struct bs *b, struct bs_rop *op);

/* Holders among the answers of the root (version, fp). */
static unsigned holders_of(const struct bs_rop *op, uint64_t version, uint64_t fp)
{
    unsigned n = 0;
    for (unsigned i = 0; i < op->n; i++) {
        const struct rslot *s = &op->slot[i];
        n += s->state == RS_OK && s->bytes && s->version == version && s->fp == fp;
    }
    return n;
}

/* The current root from every valid answer, members' and spares': the
 * highest version; of two roots of that version (a fork: an unacknowledged
 * put's root on some, an acknowledged one's on others), the one more
 * answering nodes hold, and of as many, the larger fingerprint, so that
 * every read of the same answers chooses the same root whichever came
 * first. The read waits for every node asked (or its timeout) before
 * this, so a split top version is decided on all the answers there are.
 * Returns -ENOMEM if the chosen bytes cannot be copied. */
static int choose_best(struct bs_rop *op)
{
    const struct rslot *w = NULL;
    unsigned wn = 0;
    for (unsigned i = 0; i < op->n; i++) {
        const struct rslot *s = &op->slot[i];
        if (s->state != RS_OK || !s->bytes || !s->version)
            continue;
        unsigned h = holders_of(op, s->version, s->fp);
        if (!w || s->version > w->version ||
            (s->version == w->version && (h > wn || (h == wn && s->fp > w->fp))))
            w = s, wn = h;
    }
    free(op->best);
    op->best = NULL;
    op->best_len = 0;
    op->best_version = 0;
    if (!w)
        return 0;
    op->best = malloc(w->len);
    if (!op->best)
        return -ENOMEM;
    memcpy(op->best, w->bytes, w->len);
    op->best_len = w->len;
    op->best_version = w->version;
    op->best_fp = w->fp;
    return 0;
}

static void read_done(struct bs *b, struct bs_rop *op)
{
    unsigned maj = op->m / 2 + 1;
    char why[128];

    if (b->core->freeing) {
        finish(b, op);
        return;
    }
    if (op->answered < maj) {
        snprintf(why, sizeof(why), "only %u of %u replica set members answered the read",
                 op->answered, op->m);
        reply_fail(b, op, -ETIMEDOUT, why, NULL, 0);
        finish(b, op);
        return;
    }
    if (choose_best(op) < 0) {
        reply_fail(b, op, -ENOMEM, NULL, NULL, 0);
        finish(b, op);
        return;
    }
    if (op->kind == R_GET) {
        if (!op->best_version) {
            reply_fail(b, op, BS_ERR_NOT_FOUND, NULL, NULL, 0);
        } else {
            struct bs_msg m;
            memset(&m, 0, sizeof(m));
            m.type = BS_MSG_GET_OK;
            m.rtype = STORE_ROOT;
            m.key = op->key;
            m.bytes = op->best;
            m.len = op->best_len;
            bs_location_of(b, (unsigned)op->vnode, &m.loc);
            m.has_loc = true;
            bs_reply_msg(b, &op->from, op->reqid, &m);
            repair_stale(b, op);
        }
        finish(b, op);
        return;
    }
    uint64_t cur = op->best_version;
    bool same = op->best && op->best_len == op->len && !memcmp(op->best, op->bytes, op->len);
    if (!same) {
        if (op->expect != BS_ROOT_ANY && cur != op->expect) {
            snprintf(why, sizeof(why), "expected version %llu, found %llu",
                     (unsigned long long)op->expect, (unsigned long long)cur);
            b->stats.cas_conflict++;
            reply_fail(b, op, BS_ERR_CONFLICT, why, op->best, op->best_len);
            finish(b, op);
            return;
        }
        if (op->version <= cur) {
            snprintf(why, sizeof(why), "version %llu is not above the current %llu",
                     (unsigned long long)op->version, (unsigned long long)cur);
            reply_fail(b, op, BS_ERR_STALE, why, op->best, op->best_len);
            finish(b, op);
            return;
        }
    }
    start_write(b, op);
}

/* ---- write phase ---- */

static void slot_written(struct rslot *s, int status)
{
    struct bs_rop *op = s->op;
    if (status == 0) {
        s->state = RS_OK;
        op->stored++;
    } else {
        s->state = RS_FAILED;
        if (status == BS_ERR_STALE)
            op->stale++;
        else if (!op->err)
            op->err = status;
    }
}

static void local_written(struct bs *b, void *ctx, int status)
{
    struct rslot *s = ctx;
    struct bs_rop *op = s->op;
    op->pending--;
    slot_written(s, status);
    if (op->pending == 0)
        write_done(b, op);
}

static void remote_written(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *p,
                           size_t len)
{
    struct rslot *s = ctx;
    struct bs_rop *op = s->op;
    struct bs_msg m;

    op->pending--;
    if (status == 0) {
        if (bs_msg_decode(type, p, len, &m) != 0) {
            status = BS_ERR_MALFORMED;
        } else if (type == BS_MSG_FAILURE) {
            status = m.code;
            if (status == BS_ERR_STALE)
                consider(op, m.bytes, m.len); /* the higher root it holds */
        } else if (type != BS_MSG_STORE_OK || !id_eq(&m.key, &op->key)) {
            status = BS_ERR_MALFORMED;
        }
    }
    slot_written(s, status);
    if (op->pending == 0)
        write_done(b, op);
}

static void start_write(struct bs *b, struct bs_rop *op)
{
    op->phase = P_WRITE;
    op->pending = 1; /* held until every store is out */
    for (unsigned i = 0; i < op->m; i++) {
        struct rslot *s = &op->slot[i];
        int rc;
        s->state = RS_PENDING;
        op->pending++;
        if (s->local) {
            rc = bs_store_record(b, STORE_ROOT, &op->key, op->bytes, op->len, NULL, 0, 0,
                                 local_written, s);
        } else {
            struct bs_msg m = {.type = BS_MSG_STORE,
                               .rtype = STORE_ROOT,
                               .key = op->key,
                               .bytes = op->bytes,
                               .len = op->len};
            rc = bs_rpc_msg(b, &op->mem[i].addr, &m, 0, b->cfg.rpc_tries, remote_written, s,
                            &s->reqid);
        }
        if (rc < 0) {
            op->pending--;
            slot_written(s, rc);
        }
    }
    if (--op->pending == 0)
        write_done(b, op);
}

static void write_done(struct bs *b, struct bs_rop *op)
{
    unsigned maj = op->m / 2 + 1;
    char why[128];

    if (b->core->freeing) {
        finish(b, op);
        return;
    }
    if (op->stored >= maj) {
        struct bs_msg m;
        memset(&m, 0, sizeof(m));
        m.type = BS_MSG_PUT_OK;
        m.rtype = STORE_ROOT;
        m.key = op->key;
        m.copies = (uint8_t)op->stored;
        m.version = op->version;
        bs_location_of(b, (unsigned)op->vnode, &m.loc);
        m.has_loc = true;
        b->stats.cas_ok++;
        bs_reply_msg(b, &op->from, op->reqid, &m);
    } else if (op->stored > 0) {
        snprintf(why, sizeof(why), "stored on %u of %u members, a majority needs %u", op->stored,
                 op->m, maj);
        b->stats.cas_indeterminate++;
        reply_fail(b, op, BS_ERR_INDETERMINATE, why, NULL, 0);
    } else if (op->stale) {
        b->stats.cas_conflict++;
        bool newer = op->best_version > op->version;
        reply_fail(b, op, BS_ERR_CONFLICT, "a member holds a higher version",
                   newer ? op->best : NULL, newer ? op->best_len : 0);
    } else {
        reply_fail(b, op, op->err ? op->err : -ETIMEDOUT, NULL, NULL, 0);
    }
    finish(b, op);
}

/* ---- entry points ---- */

static bool put_active(struct bs *b, const struct id *key)
{
    for (struct bs_link *l = b->core->rops.next; l != &b->core->rops; l = l->next) {
        struct bs_rop *op = BS_CONTAINER(l, struct bs_rop, link);
        if (op->kind == R_PUT && op->phase != P_QUEUED && id_eq(&op->key, key))
            return true;
    }
    return false;
}

static unsigned puts_of(struct bs *b, const struct id *key)
{
    unsigned n = 0;
    for (struct bs_link *l = b->core->rops.next; l != &b->core->rops; l = l->next) {
        struct bs_rop *op = BS_CONTAINER(l, struct bs_rop, link);
        n += op->kind == R_PUT && id_eq(&op->key, key);
    }
    return n;
}

static void start_deferred(struct bs *b, void *ctx)
{
    struct bs_rop *op = ctx;
    /* While freeing it stays queued; bs_root_release frees it (after
     * every deferred call has run). */
    if (!b->core->freeing)
        start_read(b, op);
}

/* Starts the first waiting put of key at the next tick. */
static void schedule_next(struct bs *b, const struct id *key)
{
    for (struct bs_link *l = b->core->rops.next; l != &b->core->rops; l = l->next) {
        struct bs_rop *op = BS_CONTAINER(l, struct bs_rop, link);
        if (op->kind == R_PUT && op->phase == P_QUEUED && id_eq(&op->key, key)) {
            op->phase = P_STARTING;
            if (bs_defer(b, start_deferred, op) < 0)
                start_read(b, op); /* no memory to defer: at once (bounded by the queue cap) */
            return;
        }
    }
}

void bs_root_on_put(struct bs *b, const struct addr *from, uint64_t reqid, int vnode,
                    const struct bs_msg *m)
{
    struct root_info ri;
    struct bs_rop *op;

    if (root_verify(&m->key, m->bytes, m->len, &ri) != 0) {
        b->stats.stores_bad++;
        bs_reply_failure(b, from, reqid, BS_ERR_BAD_BLOCK, "root block does not verify", vnode);
        return;
    }
    if (m->version != BS_ROOT_ANY && ri.version <= m->version) {
        bs_reply_failure(b, from, reqid, BS_ERR_STALE,
                         "the new version must be above the expected one", vnode);
        return;
    }
    if (puts_of(b, &m->key) >= ROOT_QUEUE_MAX) {
        bs_reply_failure(b, from, reqid, -EBUSY,
                         "too many root puts of this key queued at the primary", vnode);
        return;
    }
    op = calloc(1, sizeof(*op));
    if (op)
        op->bytes = malloc(m->len);
    if (!op || !op->bytes) {
        free(op);
        bs_reply_failure(b, from, reqid, -ENOMEM, NULL, vnode);
        return;
    }
    memcpy(op->bytes, m->bytes, m->len);
    op->len = m->len;
    op->kind = R_PUT;
    op->phase = P_QUEUED;
    op->from = *from;
    op->reqid = reqid;
    op->vnode = vnode;
    op->key = m->key;
    op->version = ri.version;
    op->expect = m->version;
    bool busy = put_active(b, &m->key);
    bs_list_add(&b->core->rops, &op->link);
    if (!busy)
        start_read(b, op);
}

void bs_root_on_get(struct bs *b, const struct addr *from, uint64_t reqid, int vnode,
                    const struct bs_msg *m)
{
    struct bs_rop *op;

    op = calloc(1, sizeof(*op));
    if (!op) {
        bs_reply_failure(b, from, reqid, -ENOMEM, NULL, vnode);
        return;
    }
    op->kind = R_GET;
    op->from = *from;
    op->reqid = reqid;
    op->vnode = vnode;
    op->key = m->key;
    bs_list_add(&b->core->rops, &op->link);
    start_read(b, op);
}

void bs_root_on_read(struct bs *b, const struct addr *from, uint64_t reqid, const struct bs_msg *m)
{
    struct bs_msg rep = {.type = BS_MSG_ROOT_READ_OK, .key = m->key};
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = read_root(b, &m->key, &bytes, &len);

    if (rc < 0) {
        bs_reply_failure(b, from, reqid, rc,
                         rc == BS_ERR_BAD_BLOCK ? "the root held here failed its check"
                                                : "the root held here cannot be read now",
                         -1);
        return;
    }
    rep.bytes = bytes;
    rep.len = len;
    bs_reply_msg(b, from, reqid, &rep);
    free(bytes);
}

void bs_root_release(struct bs *b)
{
    struct bs_link *h = &b->core->rops;
    while (!bs_list_empty(h))
        op_free(BS_CONTAINER(h->next, struct bs_rop, link));
}
