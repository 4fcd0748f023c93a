/* rpc.c — requests and their retries, replies (and the replies kept for
 * retried primary requests), RTT estimates, persist tokens and the
 * loopback of frames a node sends itself.
 *
 * Requests are kept in an array sorted by request id (a reply is found by
 * binary search). Request ids are unpredictable (next_id: a hash of a
 * secret drawn from env->random and a counter), so that a
 * peer that sees some of our requests cannot guess the ids of others and
 * answer them first; a reply counts only if its id is pending and it comes
 * from the address the request was sent to. Each try
 * waits its timeout; the frame is resent with the same id, so that a
 * server can tell a retry from a new request. Frames addressed to this
 * node itself never reach env->send: they go to a loopback queue handled at
 * the next tick, so the primary of a key can be the client's own node.
 *
 * Flow control. net/ queues a bounded number of bytes per peer and drops a
 * frame past that (NET_OUT_MAX_DEFAULT), which costs the request a whole
 * timeout. So the requests in flight to one peer, counted with the reply
 * each may bring (a GET brings a block), are kept within BS_FLOW_WINDOW: a
 * request past it waits, in the order made, until earlier requests to
 * that peer end (replied, timed out, cancelled). A waiting request has
 * not used a try; it fails with -ETIMEDOUT if it waited the whole budget
 * of its tries (tries x timeout), as it would have behind a silent peer.
 * The peer answers our requests out of the same output queue that carries
 * its replies to us, so the two directions together stay under the cap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "blockstore/core.h"
#include "common/hash.h"

#define MOD "bs"

/* ---- sending ---- */

static void send_frame(struct bs *b, const struct addr *to, const uint8_t *frame, size_t len)
{
    struct bs_core *k = b->core;
    if (!bs_is_self(b, to)) {
        b->env.send(b->env.ctx, to, frame, len);
        return;
    }
    if (k->nloop == k->cap_loop) {
        size_t cap = k->cap_loop ? k->cap_loop * 2 : 16;
        void *p = realloc(k->loop, cap * sizeof(*k->loop));
        if (!p)
            return; /* lost, as a frame on a network may be: the retry resends */
        k->loop = p;
        k->cap_loop = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, frame, len);
    k->loop[k->nloop].bytes = copy;
    k->loop[k->nloop].len = len;
    k->nloop++;
}

static uint8_t *make_frame(uint16_t type, uint8_t flags, uint64_t reqid, const void *payload,
                           size_t len)
{
    struct frame_header h = {.version = FRAME_VERSION,
                             .flags = flags,
                             .type = type,
                             .request_id = reqid,
                             .length = (uint32_t)len};
    uint8_t *f = malloc(FRAME_HEADER_SIZE + len);
    if (!f)
        return NULL;
    frame_header_encode(&h, f);
    if (len)
        memcpy(f + FRAME_HEADER_SIZE, payload, len);
    return f;
}

/* ---- flow control ---- */

/* The bytes the reply to a request of type may bring. */
static uint32_t reply_estimate(uint16_t type)
{
    switch (type) {
    case BS_MSG_GET: return BLOCK_MAX_STORED + 4096; /* a block and its leases */
    case BS_MSG_SYNC_KEYS:
    case BS_MSG_SYNC_DIGEST: return 64u << 10;
    default: return 512;
    }
}

static struct bs_flow *flow_find(struct bs_core *k, const struct addr *to)
{
    for (size_t i = 0; i < k->nflow; i++)
        if (addr_eq(&k->flow[i].to, to))
            return &k->flow[i];
    return NULL;
}

static struct bs_flow *flow_get(struct bs_core *k, const struct addr *to)
{
    struct bs_flow *f = flow_find(k, to);
    if (f)
        return f;
    if (k->nflow == k->cap_flow) {
        size_t cap = k->cap_flow ? k->cap_flow * 2 : 16;
        f = realloc(k->flow, cap * sizeof(*f));
        if (!f)
            return NULL;
        k->flow = f;
        k->cap_flow = cap;
    }
    f = &k->flow[k->nflow++];
    memset(f, 0, sizeof(*f));
    f->to = *to;
    return f;
}

static void flow_put(struct bs_core *k, struct bs_flow *f)
{
    if (f->inflight == 0 && f->nqueued == 0)
        *f = k->flow[--k->nflow];
}

/* Sends the pending request p now: its first try starts. */
static void dispatch(struct bs *b, struct bs_pending *p)
{
    struct bs_core *k = b->core;
    p->queued = false;
    p->sent = bs_now(b);
    p->deadline = p->sent + p->timeout_ms;
    if (p->deadline < k->pend_earliest)
        k->pend_earliest = p->deadline;
    send_frame(b, &p->to, p->frame, p->frame_len);
}

/* Sends the requests waiting for f's peer, oldest first, while they fit. */
static void flow_pump(struct bs *b, struct bs_flow *f)
{
    struct bs_core *k = b->core;
    /* Not while requests are being failed wholesale: those waiting are
     * about to fail too, or the peer is known gone. */
    while (f->nqueued && !k->freeing && !k->flow_hold) {
        struct bs_pending *first = NULL;
        for (size_t i = 0; i < k->npend; i++) {
            struct bs_pending *p = &k->pend[i];
            if (p->queued && addr_eq(&p->to, &f->to) && (!first || p->seq < first->seq))
                first = p;
        }
        if (!first) { /* cannot happen: nqueued counts them */
            f->nqueued = 0;
            break;
        }
        if (f->inflight && f->inflight + first->cost > BS_FLOW_WINDOW)
            break;
        f->nqueued--;
        f->inflight += first->cost;
        dispatch(b, first);
    }
}

/* A request leaves the pending set: its share of the window is free. */
static void flow_end(struct bs *b, const struct bs_pending *p)
{
    struct bs_core *k = b->core;
    if (bs_is_self(b, &p->to))
        return;
    struct bs_flow *f = flow_find(k, &p->to);
    if (!f)
        return;
    if (p->queued)
        f->nqueued--;
    else
        f->inflight -= p->cost < f->inflight ? p->cost : f->inflight;
    flow_pump(b, f);
    flow_put(k, f);
}

/* The next request id: SHA-256 of the secret drawn from env->random at
 * start and a counter, so that ids seen tell nothing of the ones to come. */
static uint64_t next_id(struct bs_core *k)
{
    uint8_t in[16];
    struct id h;
    uint64_t n = k->reqid_count++, id = 0;
    memcpy(in, &k->reqid_secret, 8);
    memcpy(in + 8, &n, 8);
    hash_sha256(&h, in, sizeof(in));
    for (int i = 0; i < 8; i++)
        id = id << 8 | h.b[i];
    return id;
}

/* The index of the first pending request with an id >= reqid. */
static size_t pending_lower(const struct bs_core *k, uint64_t reqid)
{
    size_t lo = 0, hi = k->npend;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->pend[mid].reqid < reqid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static ssize_t pending_find(const struct bs_core *k, uint64_t reqid)
{
    size_t lo = pending_lower(k, reqid);
    return lo < k->npend && k->pend[lo].reqid == reqid ? (ssize_t)lo : -1;
}

int bs_rpc_ex(struct bs *b, const struct addr *to, uint16_t type, const void *payload, size_t len,
              uint32_t timeout_ms, unsigned tries, bs_rpc_fn cb, void *ctx, uint64_t *reqid)
{
    struct bs_core *k = b->core;
    struct bs_pending *p;

    if (k->freeing)
        return -ECANCELED;
    if (len > FRAME_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (k->npend == k->cap_pend) {
        size_t cap = k->cap_pend ? k->cap_pend * 2 : 32;
        p = realloc(k->pend, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        k->pend = p;
        k->cap_pend = cap;
    }
    uint64_t id;
    do
        id = next_id(k);
    while (id == 0 || pending_find(k, id) >= 0);
    uint8_t *f = make_frame(type, 0, id, payload, len);
    if (!f)
        return -ENOMEM;
    size_t at = pending_lower(k, id);
    memmove(&k->pend[at + 1], &k->pend[at], (k->npend - at) * sizeof(*k->pend));
    k->npend++;
    p = &k->pend[at];
    memset(p, 0, sizeof(*p));
    p->reqid = id;
    p->sent = bs_now(b);
    p->timeout_ms = timeout_ms ? timeout_ms : b->cfg.rpc_timeout_ms;
    p->type = type;
    p->tries = 1;
    p->max_tries = (uint8_t)(tries < 1 ? 1 : tries > 255 ? 255 : tries);
    p->to = *to;
    p->cb = cb;
    p->ctx = ctx;
    p->frame = f;
    p->frame_len = FRAME_HEADER_SIZE + len;
    p->cost = (uint32_t)p->frame_len + reply_estimate(type);
    p->seq = k->flow_seq++;
    if (reqid)
        *reqid = id;
    struct bs_flow *fl = bs_is_self(b, to) ? NULL : flow_get(k, to);
    if (fl && (fl->nqueued || (fl->inflight && fl->inflight + p->cost > BS_FLOW_WINDOW))) {
        p->queued = true;
        fl->nqueued++;
        p->deadline = p->sent + (uint64_t)p->timeout_ms * p->max_tries;
        if (p->deadline < k->pend_earliest)
            k->pend_earliest = p->deadline;
        return 0;
    }
    if (fl)
        fl->inflight += p->cost;
    /* Without a window entry (no memory) it goes unaccounted, as before. */
    dispatch(b, p);
    return 0;
}

int bs_rpc(struct bs *b, const struct addr *to, uint16_t type, const void *payload, size_t len,
           bs_rpc_fn cb, void *ctx, uint64_t *reqid)
{
    return bs_rpc_ex(b, to, type, payload, len, b->cfg.rpc_timeout_ms, b->cfg.rpc_tries, cb, ctx,
                     reqid);
}

static uint8_t *encode_msg(const struct bs_msg *m, size_t *len)
{
    size_t n = bs_msg_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    if (bs_msg_encode(m, buf, n, len) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int bs_rpc_msg(struct bs *b, const struct addr *to, const struct bs_msg *m, uint32_t timeout_ms,
               unsigned tries, bs_rpc_fn cb, void *ctx, uint64_t *reqid)
{
    size_t len;
    uint8_t *buf = encode_msg(m, &len);
    if (!buf)
        return bs_msg_size(m) ? -ENOMEM : -EINVAL;
    uint64_t id;
    int rc = bs_rpc_ex(b, to, m->type, buf, len, timeout_ms, tries, cb, ctx, &id);
    free(buf);
    if (rc < 0)
        return rc;
    if (m->type == BS_MSG_GET || m->type == BS_MSG_PUT || m->type == BS_MSG_LOCATE ||
        m->type == BS_MSG_LEASE) {
        ssize_t i = pending_find(b->core, id);
        if (i >= 0) {
            b->core->pend[i].has_target = true;
            b->core->pend[i].key = m->key;
            b->core->pend[i].target = m->target;
        }
    }
    if (reqid)
        *reqid = id;
    return 0;
}

/* Removes pending request i and returns it (its frame freed). Requests
 * waiting for the window it held may be sent: indexes into pend are not
 * kept across the call. */
static struct bs_pending pending_take(struct bs *b, size_t i)
{
    struct bs_core *k = b->core;
    struct bs_pending p = k->pend[i];
    memmove(&k->pend[i], &k->pend[i + 1], (k->npend - i - 1) * sizeof(*k->pend));
    k->npend--;
    free(p.frame);
    p.frame = NULL;
    flow_end(b, &p);
    return p;
}

void bs_rpc_cancel(struct bs *b, uint64_t reqid)
{
    ssize_t i = pending_find(b->core, reqid);
    if (i >= 0)
        pending_take(b, (size_t)i);
}

void bs_rpc_fail_all(struct bs *b, int status)
{
    struct bs_core *k = b->core;
    while (k->npend) {
        struct bs_pending p = pending_take(b, k->npend - 1);
        if (p.cb)
            p.cb(b, p.ctx, status, 0, NULL, 0);
    }
}

void bs_peer_unreachable(struct bs *b, const struct addr *a)
{
    struct bs_core *k = b->core;
    for (;;) {
        size_t i;
        for (i = 0; i < k->npend; i++)
            if (addr_eq(&k->pend[i].to, a))
                break;
        if (i == k->npend)
            return;
        k->flow_hold = true;
        struct bs_pending p = pending_take(b, i);
        k->flow_hold = false;
        if (p.cb)
            p.cb(b, p.ctx, -EHOSTUNREACH, 0, NULL, 0);
    }
}

/* ---- replies remembered for retries ---- */

static struct bs_replay *replay_find(struct bs_core *k, const struct addr *from, uint64_t reqid)
{
    for (size_t i = 0; i < k->nreplay; i++)
        if (k->replay[i].reqid == reqid && addr_eq(&k->replay[i].from, from))
            return &k->replay[i];
    return NULL;
}

bool bs_replay_seen(struct bs *b, const struct addr *from, uint64_t reqid)
{
    struct bs_core *k = b->core;
    uint64_t now = bs_now(b);
    struct bs_replay *r = replay_find(k, from, reqid);

    if (r && r->at + BS_REPLAY_TTL_MS > now) {
        if (r->frame)
            send_frame(b, from, r->frame, r->len);
        return true;
    }
    if (!r) {
        /* A free slot, else the oldest: a request forgotten that way is
         * done again on a retry, which every primary request tolerates
         * (puts and lease merges are idempotent, a root put of the bytes
         * already current succeeds). */
        size_t i = k->nreplay < BS_REPLAY_MAX ? k->nreplay++ : 0;
        for (size_t j = 0; k->nreplay == BS_REPLAY_MAX && j < k->nreplay; j++)
            if (k->replay[j].at < k->replay[i].at)
                i = j;
        r = &k->replay[i];
    }
    free(r->frame);
    r->frame = NULL;
    r->len = 0;
    r->from = *from;
    r->reqid = reqid;
    r->at = now;
    return false;
}

void bs_reply(struct bs *b, const struct addr *to, uint64_t reqid, uint16_t type,
              const void *payload, size_t len)
{
    uint8_t *f = make_frame(type, FRAME_F_REPLY, reqid, payload, len);
    if (!f)
        return; /* the requester's retry or timeout covers it */
    send_frame(b, to, f, FRAME_HEADER_SIZE + len);
    struct bs_replay *r = replay_find(b->core, to, reqid);
    if (r && !r->frame) {
        r->frame = f;
        r->len = FRAME_HEADER_SIZE + len;
        r->at = bs_now(b); /* kept for a while after the answer */
        return;
    }
    free(f);
}

void bs_reply_msg(struct bs *b, const struct addr *to, uint64_t reqid, const struct bs_msg *m)
{
    size_t len;
    uint8_t *buf = encode_msg(m, &len);
    if (!buf) {
        LOG_E(b->lg, MOD, "cannot encode a reply of type %u", m->type);
        return;
    }
    bs_reply(b, to, reqid, m->type, buf, len);
    free(buf);
}

void bs_reply_failure_ex(struct bs *b, const struct addr *to, uint64_t reqid, int code,
                         const char *reason, int vnode, const uint8_t *bytes, size_t len)
{
    struct bs_msg m;
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_FAILURE;
    m.code = code < 0 ? code : BS_ERR_MALFORMED;
    snprintf(m.reason, sizeof(m.reason), "%s", reason ? reason : bs_strerror(code));
    if (vnode >= 0 && (unsigned)vnode < chord_vnode_count(b->chord)) {
        bs_location_of(b, (unsigned)vnode, &m.loc);
        m.has_loc = true;
    }
    m.bytes = bytes;
    m.len = bytes ? len : 0;
    bs_reply_msg(b, to, reqid, &m);
}

void bs_reply_failure(struct bs *b, const struct addr *to, uint64_t reqid, int code,
                      const char *reason, int vnode)
{
    bs_reply_failure_ex(b, to, reqid, code, reason, vnode, NULL, 0);
}

/* ---- RTT estimates (Karn: only replies to a request sent once) ---- */

static struct bs_rtt *rtt_slot(struct bs *b, const struct addr *a, bool make)
{
    struct bs_core *k = b->core;
    size_t oldest = 0;
    for (size_t i = 0; i < k->nrtt; i++) {
        if (addr_eq(&k->rtt[i].addr, a))
            return &k->rtt[i];
        if (k->rtt[i].at < k->rtt[oldest].at)
            oldest = i;
    }
    if (!make)
        return NULL;
    size_t i = k->nrtt < BS_RTT_MAX ? k->nrtt++ : oldest;
    k->rtt[i].addr = *a;
    k->rtt[i].srtt_ms = 0;
    return &k->rtt[i];
}

static void rtt_sample(struct bs *b, const struct addr *a, uint64_t ms)
{
    struct bs_rtt *r = rtt_slot(b, a, true);
    uint32_t s = ms > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)ms;
    if (s == 0)
        s = 1;
    r->srtt_ms = r->srtt_ms ? r->srtt_ms - r->srtt_ms / 8 + s / 8 : s;
    if (r->srtt_ms == 0)
        r->srtt_ms = 1;
    r->at = bs_now(b);
}

uint32_t bs_rtt_get(const struct bs *b, const struct addr *a)
{
    const struct bs_core *k = b->core;
    for (size_t i = 0; i < k->nrtt; i++)
        if (addr_eq(&k->rtt[i].addr, a))
            return k->rtt[i].srtt_ms;
    return 0;
}

/* Requests whose answer waits on a disk write or on other nodes say little
 * about the path: only reads are sampled. */
static bool rtt_type(uint16_t t)
{
    return t == BS_MSG_GET || t == BS_MSG_LOCATE || t == BS_MSG_ROOT_READ;
}

/* ---- persist tokens ---- */

static int token_new(struct bs *b, bs_persist_fn cb, bs_read_fn rcb, void *ctx, uint64_t *token)
{
    struct bs_core *k = b->core;
    if (k->freeing)
        return -ECANCELED;
    if (k->ntok == k->cap_tok) {
        size_t cap = k->cap_tok ? k->cap_tok * 2 : 32;
        struct bs_ptoken *t = realloc(k->tok, cap * sizeof(*t));
        if (!t)
            return -ENOMEM;
        k->tok = t;
        k->cap_tok = cap;
    }
    *token = k->next_token++;
    k->tok[k->ntok].token = *token;
    k->tok[k->ntok].cb = cb;
    k->tok[k->ntok].rcb = rcb;
    k->tok[k->ntok].ctx = ctx;
    k->ntok++;
    return 0;
}

static ssize_t token_find(const struct bs_core *k, uint64_t token)
{
    size_t lo = 0, hi = k->ntok;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->tok[mid].token < token)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < k->ntok && k->tok[lo].token == token ? (ssize_t)lo : -1;
}

static void token_drop(struct bs_core *k, uint64_t token)
{
    ssize_t i = token_find(k, token);
    if (i < 0)
        return;
    memmove(&k->tok[i], &k->tok[i + 1], (k->ntok - (size_t)i - 1) * sizeof(*k->tok));
    k->ntok--;
}

/* Ends the operation of token t, already taken out of the table. A read
 * that completes without bytes reports an error, never a success. */
static void token_complete(struct bs *b, const struct bs_ptoken *t, int status,
                           const uint8_t *bytes, size_t len)
{
    if (t->rcb)
        t->rcb(b, t->ctx, bytes ? status : status ? status : -EIO, bytes, bytes ? len : 0);
    else if (t->cb)
        t->cb(b, t->ctx, status);
}

void bs_persist_done(struct bs *b, uint64_t token, int status)
{
    bs_persist_read_done(b, token, status, NULL, 0);
}

void bs_persist_read_done(struct bs *b, uint64_t token, int status, uint8_t *bytes, size_t len)
{
    struct bs_core *k = b->core;
    ssize_t i = token_find(k, token);
    if (i >= 0) {
        struct bs_ptoken t = k->tok[i];
        token_drop(k, token);
        token_complete(b, &t, status, status == 0 ? bytes : NULL, len);
    }
    free(bytes);
}

/* The runtime's answer rc to the start of the operation of token: a
 * refusal (no completion will come) frees the token. Returns rc. */
static int token_started(struct bs *b, uint64_t token, int rc)
{
    if (rc < 0)
        token_drop(b->core, token);
    return rc;
}

int bs_persist_write(struct bs *b, enum store_type type, const struct id *key, const void *bytes,
                     size_t len, bs_persist_fn cb, void *ctx)
{
    uint64_t t;
    int rc = token_new(b, cb, NULL, ctx, &t);
    return rc < 0 ? rc
                  : token_started(b, t, b->persist.write(b->persist.ctx, type, key, bytes, len, t));
}

int bs_persist_remove(struct bs *b, enum store_type type, const struct id *key, bs_persist_fn cb,
                      void *ctx)
{
    uint64_t t;
    int rc = token_new(b, cb, NULL, ctx, &t);
    return rc < 0 ? rc : token_started(b, t, b->persist.remove(b->persist.ctx, type, key, t));
}

int bs_persist_leases(struct bs *b, const struct id *key, const struct lease *l, size_t n,
                      bs_persist_fn cb, void *ctx)
{
    uint64_t t;
    int rc = token_new(b, cb, NULL, ctx, &t);
    return rc < 0 ? rc : token_started(b, t, b->persist.lease_append(b->persist.ctx, key, l, n, t));
}

int bs_persist_read(struct bs *b, enum store_type type, const struct id *key, bs_read_fn cb,
                    void *ctx)
{
    uint64_t t;
    int rc = token_new(b, NULL, cb, ctx, &t);
    return rc < 0 ? rc : token_started(b, t, b->persist.read_start(b->persist.ctx, type, key, t));
}

/* The reply path of bs_input: m is the decoded message (NULL for the sync
 * range, whose callbacks decode). */
void bs_rpc_reply_in(struct bs *b, const struct addr *from, const struct frame_header *h,
                     const uint8_t *payload, const struct bs_msg *m)
{
    ssize_t i = pending_find(b->core, h->request_id);
    /* A late or duplicated reply, or one from a node not asked. */
    if (i < 0 || !addr_eq(&b->core->pend[i].to, from))
        return;
    struct bs_pending p = pending_take(b, (size_t)i);
    if (p.tries == 1 && rtt_type(p.type))
        rtt_sample(b, from, bs_now(b) - p.sent);
    if (m && m->has_loc && p.has_target)
        bs_cache_learn_from(b, from, &p.key, &p.target, &m->loc);
    if (p.cb)
        p.cb(b, p.ctx, 0, h->type, payload, h->length);
}

void bs_persist_cancel_all(struct bs *b)
{
    struct bs_core *k = b->core;
    while (k->ntok) {
        struct bs_ptoken t = k->tok[--k->ntok];
        token_complete(b, &t, -ECANCELED, NULL, 0);
    }
}

/* ---- time ---- */

void bs_rpc_tick(struct bs *b, uint64_t now)
{
    struct bs_core *k = b->core;
    uint64_t *due = NULL;
    size_t ndue = 0, cap = 0;

    if (now < k->pend_earliest)
        return;
    /* Collect first: callbacks may start and cancel requests. */
    uint64_t earliest = UINT64_MAX;
    for (size_t i = 0; i < k->npend; i++) {
        struct bs_pending *p = &k->pend[i];
        if (p->deadline > now) {
            if (p->deadline < earliest)
                earliest = p->deadline;
            continue;
        }
        if (p->tries < p->max_tries && !p->queued) {
            p->tries++;
            p->sent = now;
            p->deadline = now + p->timeout_ms;
            if (p->deadline < earliest)
                earliest = p->deadline;
            send_frame(b, &p->to, p->frame, p->frame_len);
            continue;
        }
        if (ndue == cap) {
            size_t nc = cap ? cap * 2 : 16;
            uint64_t *d = realloc(due, nc * sizeof(*d));
            if (!d) {
                /* Leave it for the next tick. */
                earliest = now;
                break;
            }
            due = d;
            cap = nc;
        }
        due[ndue++] = p->reqid;
    }
    k->pend_earliest = earliest;
    for (size_t i = 0; i < ndue; i++) {
        ssize_t j = pending_find(k, due[i]);
        if (j < 0)
            continue;
        struct bs_pending p = pending_take(b, (size_t)j);
        if (rtt_type(p.type) && !p.queued) {
            struct bs_rtt *r = rtt_slot(b, &p.to, true);
            /* A silent peer goes to the back, within reason. */
            uint64_t pen =
                (uint64_t)r->srtt_ms * 2 > p.timeout_ms ? (uint64_t)r->srtt_ms * 2 : p.timeout_ms;
            r->srtt_ms = (uint32_t)(pen < 600000 ? pen : 600000);
            r->at = now;
        }
        if (p.cb)
            p.cb(b, p.ctx, -ETIMEDOUT, 0, NULL, 0);
    }
    free(due);
}

void bs_loop_tick(struct bs *b)
{
    struct bs_core *k = b->core;
    for (unsigned n = 0; n < BS_LOOP_BATCH && k->nloop; n++) {
        uint8_t *f = k->loop[0].bytes;
        size_t len = k->loop[0].len;
        memmove(&k->loop[0], &k->loop[1], (k->nloop - 1) * sizeof(*k->loop));
        k->nloop--;
        if (bs_input(b, &k->self, f, len) != 0)
            LOG_E(b->lg, MOD, "a frame to self did not decode");
        free(f);
    }
}
