/* bs.c — the block store's lifecycle, frame dispatch, requests and their
 * retries, persist tokens, deferred calls and introspection.
 *
 * Requests are kept in an array sorted by request id (ids only grow, so a
 * new one is appended and a reply is found by binary search). Each try
 * waits rpc_timeout_ms; the frame is resent with the same id, so that a
 * server can tell a retry from a new request. Frames addressed to this
 * node itself never reach env->send: they go to a loopback queue handled at
 * the next tick, so the primary of a key can be the client's own node.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "blockstore/core.h"
#include "common/wire.h"

#define MOD "bs"

/* ---- small helpers ---- */

void bs_list_init(struct bs_link *head)
{
    head->prev = head->next = head;
}

void bs_list_add(struct bs_link *head, struct bs_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

void bs_list_del(struct bs_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

bool bs_list_empty(const struct bs_link *head)
{
    return head->next == head;
}

uint64_t bs_now(const struct bs *b)
{
    return b->env.now_ms(b->env.ctx);
}

uint64_t bs_wall_ms(const struct bs *b)
{
    return b->env.wall_ms(b->env.ctx);
}

uint64_t bs_now_s(const struct bs *b)
{
    return bs_wall_ms(b) / 1000;
}

bool bs_is_self(const struct bs *b, const struct addr *a)
{
    return addr_eq(&b->core->self, a);
}

void bs_leases_of(const struct bs_entry *e, struct bs_msg *m)
{
    m->leases = e->leases;
    m->lease_raw = NULL;
    m->nleases = e->nleases > BS_MSG_LEASES_MAX ? BS_MSG_LEASES_MAX : e->nleases;
}

void bs_config_default(struct bs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->replicas = BS_REPLICAS_DEFAULT;
    cfg->capacity = 1ull << 30;
    cfg->owner_cap = 0;
    cfg->rpc_timeout_ms = BS_RPC_TIMEOUT_MS;
    cfg->rpc_tries = BS_RPC_TRIES;
    cfg->sync_period_ms = BS_SYNC_PERIOD_MS;
}

const char *bs_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case BS_ERR_MALFORMED: return "malformed message";
    case BS_ERR_FULL: return "no space for the block";
    case BS_ERR_QUOTA: return "over the owner's quota";
    case BS_ERR_BAD_BLOCK: return "block does not verify";
    case BS_ERR_CONFLICT: return "root compare-and-swap conflict";
    case BS_ERR_STALE: return "version not above the one held";
    case BS_ERR_INDETERMINATE: return "root stored on a minority: read to know";
    case BS_ERR_WRONG_NODE: return "not responsible for the key";
    case BS_ERR_NO_LEASE: return "no valid, live lease";
    case BS_ERR_NOT_FOUND: return "not found";
    case BS_ERR_LEAVING: return "node is leaving";
    case BS_ERR_STORE: return "disk store failed";
    case -ETIMEDOUT: return "timed out";
    case -EHOSTUNREACH: return "no node listens there";
    case -ECANCELED: return "cancelled";
    case -ENOMEM: return "out of memory";
    case -EBUSY: return "too many operations in flight";
    case -EINVAL: return "invalid argument";
    default: return err < -4095 ? "unknown block store error" : "system error";
    }
}

/* ---- lifecycle ---- */

int bs_new(const struct bs_config *cfg, const struct env *env, struct chord *c,
           const struct bs_persist *persist, const struct logger *lg, struct bs **out)
{
    struct bs *b;
    int rc;

    if (!cfg || !env || !c || !persist || !env->now_ms || !env->send || !env->random ||
        !env->wall_ms || cfg->replicas < 1 || cfg->replicas > BS_REPLICAS_MAX ||
        cfg->rpc_timeout_ms == 0 || cfg->rpc_tries == 0 || cfg->rpc_tries > 100 ||
        !persist->read || !persist->write || !persist->remove || !persist->lease_append)
        return -EINVAL;
    if (chord_vnode_count(c) == 0)
        return -EINVAL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->core = calloc(1, sizeof(*b->core));
    if (!b->core) {
        free(b);
        return -ENOMEM;
    }
    b->cfg = *cfg;
    b->env = *env;
    b->chord = c;
    b->persist = *persist;
    b->lg = lg;
    b->stats.capacity = cfg->capacity;
    b->core->self = chord_vnode_self(c, 0)->addr;
    /* Random start, as chord: replies meant for an earlier incarnation at
     * the same address do not match this one's requests. */
    b->core->next_reqid = env_random_u64(&b->env) >> 1 | 1;
    b->core->next_token = 1;
    b->core->pend_earliest = UINT64_MAX;
    rc = bs_index_init(&b->ix);
    if (rc < 0)
        goto err_free;
    rc = bs_server_init(b);
    if (rc < 0)
        goto err_index;
    rc = bs_client_init(b);
    if (rc < 0)
        goto err_server;
    rc = bs_sync_new(b, &b->sync);
    if (rc < 0)
        goto err_client;
    *out = b;
    return 0;

err_client:
    bs_client_release(b);
err_server:
    bs_server_release(b);
err_index:
    bs_index_release(&b->ix);
err_free:
    free(b->core);
    free(b);
    return rc;
}

static void pending_fail_all(struct bs *b, int status);

static void run_all_deferred(struct bs *b)
{
    struct bs_core *k = b->core;
    /* Deferred calls may defer more; each round runs what was there. */
    for (unsigned round = 0; k->ndef && round < 64; round++) {
        size_t n = k->ndef;
        for (size_t i = 0; i < n; i++)
            k->def[i].fn(b, k->def[i].ctx);
        memmove(k->def, k->def + n, (k->ndef - n) * sizeof(*k->def));
        k->ndef -= n;
    }
}

void bs_free(struct bs *b)
{
    struct bs_core *k;

    if (!b)
        return;
    k = b->core;
    if (k) {
        /* Nothing new starts while freeing (requests and persist calls
         * refuse with -ECANCELED). Deferred calls run first, as they
         * would at the next tick; then client operations end with their
         * callbacks; then every request and persist operation still open
         * tells its owner, which frees what it holds. */
        k->freeing = true;
        run_all_deferred(b);
        bs_client_release(b);
        pending_fail_all(b, -ECANCELED);
        while (k->ntok) {
            struct bs_ptoken t = k->tok[--k->ntok];
            if (t.cb)
                t.cb(b, t.ctx, -ECANCELED);
        }
        run_all_deferred(b);
        pending_fail_all(b, -ECANCELED);
    }
    bs_sync_free(b->sync);
    if (k) {
        bs_server_release(b);
        for (size_t i = 0; i < k->nloop; i++)
            free(k->loop[i].bytes);
        for (size_t i = 0; i < k->nreplay; i++)
            free(k->replay[i].frame);
        free(k->loop);
        free(k->pend);
        free(k->tok);
        free(k->def);
        free(k->cache);
        free(k);
    }
    bs_index_release(&b->ix);
    free(b);
}

void bs_leave(struct bs *b)
{
    b->leaving = true;
}

/* ---- deferred calls ---- */

int bs_defer_reserve(struct bs *b)
{
    struct bs_core *k = b->core;
    if (k->ndef == k->cap_def) {
        size_t cap = k->cap_def ? k->cap_def * 2 : 16;
        struct bs_deferred *d = realloc(k->def, cap * sizeof(*d));
        if (!d)
            return -ENOMEM;
        k->def = d;
        k->cap_def = cap;
    }
    return 0;
}

int bs_defer(struct bs *b, void (*fn)(struct bs *b, void *ctx), void *ctx)
{
    struct bs_core *k = b->core;
    if (bs_defer_reserve(b) < 0)
        return -ENOMEM;
    k->def[k->ndef].fn = fn;
    k->def[k->ndef].ctx = ctx;
    k->ndef++;
    return 0;
}

static void run_deferred(struct bs *b)
{
    struct bs_core *k = b->core;
    /* Only what was deferred before this tick: what these calls defer runs
     * at the next one. */
    size_t n = k->ndef;
    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        k->def[i].fn(b, k->def[i].ctx);
    memmove(k->def, k->def + n, (k->ndef - n) * sizeof(*k->def));
    k->ndef -= n;
}

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
    struct frame_header h = {
        .version = FRAME_VERSION, .flags = flags, .type = type, .request_id = reqid,
        .length = (uint32_t)len};
    uint8_t *f = malloc(FRAME_HEADER_SIZE + len);
    if (!f)
        return NULL;
    frame_header_encode(&h, f);
    if (len)
        memcpy(f + FRAME_HEADER_SIZE, payload, len);
    return f;
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
    uint64_t id = k->next_reqid++;
    uint8_t *f = make_frame(type, 0, id, payload, len);
    if (!f)
        return -ENOMEM;
    p = &k->pend[k->npend++];
    memset(p, 0, sizeof(*p));
    p->reqid = id;
    p->sent = bs_now(b);
    p->timeout_ms = timeout_ms ? timeout_ms : b->cfg.rpc_timeout_ms;
    p->deadline = p->sent + p->timeout_ms;
    p->type = type;
    p->tries = 1;
    p->max_tries = (uint8_t)(tries < 1 ? 1 : tries > 255 ? 255 : tries);
    p->to = *to;
    p->cb = cb;
    p->ctx = ctx;
    p->frame = f;
    p->frame_len = FRAME_HEADER_SIZE + len;
    if (p->deadline < k->pend_earliest)
        k->pend_earliest = p->deadline;
    if (reqid)
        *reqid = id;
    send_frame(b, to, f, p->frame_len);
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
    int rc = bs_rpc_ex(b, to, m->type, buf, len, timeout_ms, tries, cb, ctx, reqid);
    free(buf);
    return rc;
}

static ssize_t pending_find(const struct bs_core *k, uint64_t reqid)
{
    size_t lo = 0, hi = k->npend;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->pend[mid].reqid < reqid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < k->npend && k->pend[lo].reqid == reqid ? (ssize_t)lo : -1;
}

static struct bs_pending pending_take(struct bs_core *k, size_t i)
{
    struct bs_pending p = k->pend[i];
    memmove(&k->pend[i], &k->pend[i + 1], (k->npend - i - 1) * sizeof(*k->pend));
    k->npend--;
    free(p.frame);
    p.frame = NULL;
    return p;
}

void bs_rpc_cancel(struct bs *b, uint64_t reqid)
{
    ssize_t i = pending_find(b->core, reqid);
    if (i >= 0)
        pending_take(b->core, (size_t)i);
}

static void pending_fail_all(struct bs *b, int status)
{
    struct bs_core *k = b->core;
    while (k->npend) {
        struct bs_pending p = pending_take(k, k->npend - 1);
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
        struct bs_pending p = pending_take(k, i);
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

static int token_new(struct bs *b, bs_persist_fn cb, void *ctx, uint64_t *token)
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

void bs_persist_done(struct bs *b, uint64_t token, int status)
{
    struct bs_core *k = b->core;
    ssize_t i = token_find(k, token);
    if (i < 0)
        return;
    struct bs_ptoken t = k->tok[i];
    token_drop(k, token);
    if (t.cb)
        t.cb(b, t.ctx, status);
}

int bs_persist_write(struct bs *b, enum store_type type, const struct id *key,
                     const void *bytes, size_t len, bs_persist_fn cb, void *ctx)
{
    uint64_t token;
    int rc = token_new(b, cb, ctx, &token);
    if (rc < 0)
        return rc;
    rc = b->persist.write(b->persist.ctx, type, key, bytes, len, token);
    if (rc < 0)
        token_drop(b->core, token);
    return rc;
}

int bs_persist_remove(struct bs *b, enum store_type type, const struct id *key,
                      bs_persist_fn cb, void *ctx)
{
    uint64_t token;
    int rc = token_new(b, cb, ctx, &token);
    if (rc < 0)
        return rc;
    rc = b->persist.remove(b->persist.ctx, type, key, token);
    if (rc < 0)
        token_drop(b->core, token);
    return rc;
}

int bs_persist_leases(struct bs *b, const struct id *key, const struct lease *l, size_t n,
                      bs_persist_fn cb, void *ctx)
{
    uint64_t token;
    int rc = token_new(b, cb, ctx, &token);
    if (rc < 0)
        return rc;
    rc = b->persist.lease_append(b->persist.ctx, key, l, n, token);
    if (rc < 0)
        token_drop(b->core, token);
    return rc;
}

/* ---- input ---- */

static bool request_type(uint16_t t)
{
    switch (t) {
    case BS_MSG_GET:
    case BS_MSG_PUT:
    case BS_MSG_STORE:
    case BS_MSG_LOCATE:
    case BS_MSG_LEASE:
    case BS_MSG_LEASE_MERGE:
    case BS_MSG_ROOT_READ:
        return true;
    default:
        return false;
    }
}

int bs_input(struct bs *b, const struct addr *from, const void *frame, size_t len)
{
    struct frame_header h;
    struct bs_msg m;
    const uint8_t *payload;

    if (frame_header_decode(frame, len, &h) != 0 || len != FRAME_HEADER_SIZE + (size_t)h.length ||
        h.type < BS_MSG_FIRST || h.type > BS_MSG_LAST || (h.flags & ~FRAME_F_REPLY))
        return BS_ERR_MALFORMED;
    payload = (const uint8_t *)frame + FRAME_HEADER_SIZE;
    bool ours = h.type >= BS_MSG_GET && h.type <= BS_MSG_ROOT_READ_OK;
    bool sync = h.type >= BS_MSG_SYNC_DIGEST && h.type <= 1039;
    if (!ours && !sync)
        return BS_ERR_MALFORMED;
    if (ours && bs_msg_decode(h.type, payload, h.length, &m) != 0)
        return BS_ERR_MALFORMED;

    if (h.flags & FRAME_F_REPLY) {
        if (ours && request_type(h.type))
            return BS_ERR_MALFORMED;
        ssize_t i = pending_find(b->core, h.request_id);
        /* A late or duplicated reply, or one from a node not asked. */
        if (i < 0 || !addr_eq(&b->core->pend[i].to, from))
            return 0;
        struct bs_pending p = pending_take(b->core, (size_t)i);
        if (p.tries == 1 && rtt_type(p.type))
            rtt_sample(b, from, bs_now(b) - p.sent);
        if (ours && m.has_loc)
            bs_cache_learn(b, &m.loc);
        if (p.cb)
            p.cb(b, p.ctx, 0, h.type, payload, h.length);
        return 0;
    }
    if (sync)
        return bs_sync_input(b->sync, from, &h, payload, h.length);
    if (!request_type(h.type))
        return BS_ERR_MALFORMED;
    bs_server_request(b, from, h.request_id, &m);
    return 0;
}

/* ---- time ---- */

static void rpc_tick(struct bs *b, uint64_t now)
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
        if (p->tries < p->max_tries) {
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
        struct bs_pending p = pending_take(k, (size_t)j);
        if (rtt_type(p.type)) {
            struct bs_rtt *r = rtt_slot(b, &p.to, true);
            uint32_t pen = p.timeout_ms;
            r->srtt_ms = r->srtt_ms * 2 > pen ? r->srtt_ms * 2 : pen;
            r->at = now;
        }
        if (p.cb)
            p.cb(b, p.ctx, -ETIMEDOUT, 0, NULL, 0);
    }
    free(due);
}

static void loop_tick(struct bs *b)
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

void bs_tick(struct bs *b)
{
    uint64_t now = bs_now(b);
    loop_tick(b);
    run_deferred(b);
    rpc_tick(b, now);
    bs_server_tick(b, now);
    bs_sync_tick(b->sync, now);
}

uint64_t bs_next_deadline(const struct bs *b)
{
    const struct bs_core *k = b->core;
    uint64_t d = k->pend_earliest;
    if (k->ndef || k->nloop)
        return bs_now(b);
    uint64_t s = bs_server_next_deadline(b);
    if (s < d)
        d = s;
    s = bs_sync_next_deadline(b->sync);
    if (s < d)
        d = s;
    return d;
}

/* ---- chord upcalls ---- */

void bs_on_update(struct bs *b, unsigned vnode)
{
    bs_sync_on_update(b->sync, vnode);
}

/* ---- start-up ---- */

void bs_load(struct bs *b, enum store_type type, const struct id *key, uint32_t size,
             const struct lease *leases, size_t nleases)
{
    struct bs_entry *e;
    uint64_t version = 0, expiry = 0;

    if (type != STORE_CONTENT && type != STORE_ROOT && type != STORE_KV)
        return;
    if (type != STORE_CONTENT) {
        /* The version (root) or stamp (kv) decides what a holder accepts
         * next: read it now, once. */
        uint8_t *bytes;
        size_t len;
        if (b->persist.read(b->persist.ctx, type, key, &bytes, &len) != 0)
            return;
        if (type == STORE_ROOT) {
            struct root_info ri;
            if (root_parse(bytes, len, &ri) == 0)
                version = ri.version;
        } else {
            struct kv_info ki;
            if (kv_parse(bytes, len, &ki) == 0) {
                version = ki.stamp_ms;
                expiry = ki.expiry_s;
            }
        }
        free(bytes);
        if (!version)
            return;
        size = (uint32_t)len;
    }
    e = bs_index_find(&b->ix, type, key);
    if (!e && bs_index_add(&b->ix, type, key, &e) < 0) {
        LOG_E(b->lg, MOD, "out of memory loading the index");
        return;
    }
    e->version = version;
    if (type == STORE_KV)
        e->expiry_s = expiry;
    /* A content key of size 0 is lease records without a block: a
     * tombstone (see bs_drop). */
    bs_index_set_size(&b->ix, e, size, size || type != STORE_CONTENT ? BS_E_PRESENT : 0);
    if (nleases && type == STORE_CONTENT &&
        bs_index_merge_leases(&b->ix, e, leases, nleases, bs_now_s(b), NULL) < 0)
        LOG_E(b->lg, MOD, "out of memory loading leases");
}

/* ---- introspection ---- */

void bs_get_stats(const struct bs *b, struct bs_stats *out)
{
    *out = b->stats;
    out->blocks = b->ix.counts[STORE_CONTENT];
    out->roots = b->ix.counts[STORE_ROOT];
    out->kvs = b->ix.counts[STORE_KV];
    out->used = b->ix.used;
    out->capacity = b->cfg.capacity;
}

bool bs_holds(const struct bs *b, enum store_type type, const struct id *key)
{
    const struct bs_entry *e = bs_index_find(&b->ix, type, key);
    return e && (e->flags & BS_E_PRESENT);
}

uint64_t bs_root_version(const struct bs *b, const struct id *key)
{
    const struct bs_entry *e = bs_index_find(&b->ix, STORE_ROOT, key);
    return e && (e->flags & BS_E_PRESENT) ? e->version : 0;
}

void bs_each(const struct bs *b,
             void (*each)(void *ctx, enum store_type type, const struct id *key, uint32_t size),
             void *ctx)
{
    for (size_t i = 0; i < b->ix.n; i++) {
        const struct bs_entry *e = b->ix.v[i];
        if (e->flags & BS_E_PRESENT)
            each(ctx, (enum store_type)e->type, &e->key, e->size);
    }
}

size_t bs_memory_bytes(const struct bs *b)
{
    const struct bs_core *k = b->core;
    size_t n = sizeof(*b) + sizeof(*k);
    n += b->ix.cap * sizeof(b->ix.v[0]) + b->ix.cap_owners * sizeof(b->ix.owners[0]);
    for (size_t i = 0; i < b->ix.n; i++)
        n += sizeof(struct bs_entry) + b->ix.v[i]->nleases * sizeof(struct lease);
    n += k->cap_pend * sizeof(*k->pend) + k->cap_tok * sizeof(*k->tok) +
         k->cap_def * sizeof(*k->def) + k->cap_loop * sizeof(*k->loop) +
         k->cap_cache * sizeof(*k->cache);
    for (size_t i = 0; i < k->npend; i++)
        n += k->pend[i].frame_len;
    for (size_t i = 0; i < k->nloop; i++)
        n += k->loop[i].len;
    for (size_t i = 0; i < k->nreplay; i++)
        n += k->replay[i].len;
    return n;
}
