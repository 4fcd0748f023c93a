/* node.c — a chord node's lifecycle, frame dispatch, requests and timers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chord/internal.h"
#include "common/hash.h"
#include "common/wire.h"

#define MOD "chord"

void chord_config_default(struct chord_config *cfg, const struct addr *self)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->self = *self;
    cfg->vnodes = 1;
    cfg->succ_len = CHORD_SUCC_LEN;
    cfg->stabilize_ms = CHORD_STABILIZE_MS;
    cfg->check_pred_ms = CHORD_CHECK_PRED_MS;
    cfg->fix_finger_ms = CHORD_FIX_FINGER_MS;
    cfg->probe_ms = CHORD_PROBE_MS;
    cfg->rpc_timeout_ms = CHORD_RPC_TIMEOUT_MS;
    cfg->rpc_tries = CHORD_RPC_TRIES;
    cfg->lookup_recursive_ms = CHORD_LOOKUP_RECURSIVE_MS;
    cfg->lookup_max_ms = CHORD_LOOKUP_MAX_MS;
}

void chord_vnode_id(const struct addr *a, unsigned vindex, struct id *out)
{
    uint8_t buf[1 + 16 + 2 + 4];
    struct wire_writer w;

    wire_writer_init(&w, buf, sizeof(buf));
    wire_put_u8(&w, a->family);
    wire_put_bytes(&w, a->ip, 16);
    wire_put_u16(&w, a->port);
    wire_put_u32(&w, vindex);
    hash_sha256(out, buf, w.len);
}

void chord_finger_start(const struct id *self, unsigned i, struct id *out)
{
    id_add_pow2(out, self, ID_BITS - CHORD_FINGERS + i);
}

uint64_t chord_now(const struct chord *c)
{
    return c->env.now_ms(c->env.ctx);
}

/* A period with +-10% jitter, so that nodes started together drift apart
 * and do not stabilize in lock step. */
uint64_t chord_jitter(struct chord *c, uint32_t period)
{
    uint64_t spread = period / 5 + 1;
    return chord_now(c) + period - period / 10 + env_random_below(&c->env, spread);
}

uint64_t chord_new_reqid(struct chord *c)
{
    return c->next_reqid++;
}

int chord_new(const struct chord_config *cfg, const struct env *env,
              const struct chord_callbacks *cb, const struct logger *lg, struct chord **out)
{
    struct chord *c;

    if (!cfg || !env || cfg->vnodes < 1 || cfg->vnodes > CHORD_MAX_VNODES || cfg->succ_len < 2 ||
        cfg->succ_len > CHORD_SUCC_MAX ||
        (cfg->self.family != ADDR_V4 && cfg->self.family != ADDR_V6) || cfg->stabilize_ms == 0 ||
        cfg->check_pred_ms == 0 || cfg->fix_finger_ms == 0 || cfg->probe_ms == 0 ||
        cfg->rpc_timeout_ms == 0 || cfg->rpc_tries == 0 || cfg->rpc_tries > 100)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->vn = calloc(cfg->vnodes, sizeof(*c->vn));
    if (!c->vn) {
        free(c);
        return -ENOMEM;
    }
    c->cfg = *cfg;
    c->env = *env;
    if (cb)
        c->cb = *cb;
    c->lg = lg;
    c->nvnodes = cfg->vnodes;
    /* Random start: replies meant for an earlier incarnation at the same
     * address do not match this one's requests. */
    c->next_reqid = env_random_u64(&c->env) >> 1 | 1;
    addr_format(&cfg->self, c->name, sizeof(c->name));
    for (unsigned i = 0; i < c->nvnodes; i++) {
        struct vnode *v = &c->vn[i];
        v->index = i;
        v->self.addr = cfg->self;
        chord_vnode_id(&cfg->self, i, &v->self.id);
        v->state = VN_IDLE;
    }
    *out = c;
    return 0;
}

void chord_free(struct chord *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->npending; i++)
        free(c->pending[i].frame);
    free(c->pending);
    lookup_free_all(c);
    free(c->vn);
    free(c);
}

int chord_create(struct chord *c)
{
    if (c->started)
        return -EALREADY;
    c->started = true;
    struct vnode *first = &c->vn[0];
    ring_vnode_joined(c, first);
    LOG_I(c->lg, MOD, "%s: created a new ring", c->name);
    for (unsigned i = 1; i < c->nvnodes; i++) {
        c->vn[i].state = VN_JOINING;
        c->vn[i].t_join = chord_now(c);
    }
    return 0;
}

int chord_join(struct chord *c, const struct addr *bootstrap)
{
    bool joining = false;

    if (!bootstrap || (bootstrap->family != ADDR_V4 && bootstrap->family != ADDR_V6))
        return -EINVAL;
    for (unsigned i = 0; i < c->nvnodes; i++)
        joining |= c->vn[i].state == VN_JOINING;
    if (c->started && !joining)
        return -EALREADY;
    c->started = true;
    for (unsigned i = 0; i < c->nvnodes; i++) {
        struct vnode *v = &c->vn[i];
        struct chord_peer b = {.addr = *bootstrap};
        if (v->state != VN_IDLE && v->state != VN_JOINING)
            continue;
        if (v->state == VN_IDLE) {
            v->state = VN_JOINING;
            v->t_join = chord_now(c);
        }
        /* Bootstrap addresses stay in long-term memory: joins rotate over
         * them, and if the join lands in a fragment of a partitioned ring,
         * probing them merges later. */
        table_memory_add(c, v, &b);
    }
    return 0;
}

void chord_leave(struct chord *c)
{
    if (c->leaving)
        return;
    c->leaving = true;
    LOG_I(c->lg, MOD, "%s: leaving the ring", c->name);
    for (unsigned i = 0; i < c->nvnodes; i++) {
        struct vnode *v = &c->vn[i];
        if (v->state == VN_JOINED)
            ring_start_leave(c, v);
        else
            v->state = VN_LEFT;
    }
    /* Lookups in flight end now: their answers would find a node gone. */
    lookup_cancel_all(c);
}

bool chord_has_left(const struct chord *c)
{
    if (!c->leaving)
        return false;
    for (unsigned i = 0; i < c->nvnodes; i++)
        if (c->vn[i].state != VN_LEFT)
            return false;
    return true;
}

struct vnode *chord_vnode_first_joined(struct chord *c)
{
    for (unsigned i = 0; i < c->nvnodes; i++)
        if (c->vn[i].state == VN_JOINED)
            return &c->vn[i];
    return NULL;
}

static struct vnode *vnode_by_id(struct chord *c, const struct id *id)
{
    for (unsigned i = 0; i < c->nvnodes; i++)
        if (id_eq(&c->vn[i].self.id, id))
            return &c->vn[i];
    return NULL;
}

void chord_msg_prepare(struct chord *c, const struct vnode *v, struct chord_msg *m, uint16_t type,
                       const struct chord_peer *to, bool any)
{
    (void)c;
    memset(m, 0, offsetof(struct chord_msg, peers));
    m->payload = NULL;
    m->payload_len = 0;
    m->type = type;
    m->flags = any ? CHORD_MF_ANY : 0;
    if (to)
        m->dst = to->id;
    m->src = v->self;
}

size_t chord_send(struct chord *c, const struct addr *to, const struct chord_msg *m)
{
    uint8_t stackbuf[4096];
    size_t bound = chord_msg_size_bound(m);
    uint8_t *buf = bound <= sizeof(stackbuf) ? stackbuf : malloc(bound);
    size_t n;

    if (!buf)
        return 0;
    n = chord_msg_encode(m, buf, bound);
    if (n) {
        c->stats.msgs_out++;
        c->stats.bytes_out += n;
        c->env.send(c->env.ctx, to, buf, n);
    } else {
        LOG_E(c->lg, MOD, "%s: cannot encode %s", c->name, chord_msg_name(m->type));
    }
    if (buf != stackbuf)
        free(buf);
    return n;
}

int chord_request(struct chord *c, struct vnode *v, enum pending_kind kind,
                  const struct chord_peer *to, struct chord_msg *m, uint64_t lookup)
{
    struct pending *p;
    size_t bound;

    if (c->npending == c->cap_pending) {
        size_t cap = c->cap_pending ? c->cap_pending * 2 : 8;
        struct pending *np = realloc(c->pending, cap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        c->pending = np;
        c->cap_pending = cap;
    }
    m->request_id = chord_new_reqid(c);
    m->reply = false;
    bound = chord_msg_size_bound(m);
    p = &c->pending[c->npending];
    memset(p, 0, sizeof(*p));
    p->frame = malloc(bound);
    if (!p->frame)
        return -ENOMEM;
    p->frame_len = (uint32_t)chord_msg_encode(m, p->frame, bound);
    if (!p->frame_len) {
        free(p->frame);
        return -EINVAL;
    }
    p->reqid = m->request_id;
    p->sent = chord_now(c);
    p->deadline = p->sent + c->cfg.rpc_timeout_ms;
    p->lookup = lookup;
    p->to = *to;
    p->vnode = (uint16_t)v->index;
    p->kind = (uint8_t)kind;
    p->tries = 1;
    c->npending++;
    c->stats.msgs_out++;
    c->stats.bytes_out += p->frame_len;
    c->env.send(c->env.ctx, &to->addr, p->frame, p->frame_len);
    return 0;
}

void chord_reply(struct chord *c, struct vnode *v, const struct chord_msg *req,
                 struct chord_msg *rep, uint16_t type)
{
    chord_msg_prepare(c, v, rep, type, &req->src, false);
    rep->reply = true;
    rep->request_id = req->request_id;
    chord_send(c, &req->src.addr, rep);
}

/* Removes pending entry i and returns a copy (the frame is freed). */
static struct pending pending_take(struct chord *c, size_t i)
{
    struct pending p = c->pending[i];
    free(p.frame);
    p.frame = NULL;
    c->pending[i] = c->pending[--c->npending];
    return p;
}

static void pending_finish(struct chord *c, struct pending *p, const struct chord_msg *m)
{
    struct vnode *v = &c->vn[p->vnode];
    if (p->kind == P_ITER) {
        if (m)
            lookup_on_step_reply(c, p, m);
        else
            lookup_on_step_fail(c, p);
    } else if (m) {
        ring_on_reply(c, v, p, m);
    } else {
        ring_on_fail(c, v, p);
    }
}

bool chord_addr_refused(const struct chord *c, const struct addr *a)
{
    for (unsigned i = 0; i < c->nrefused; i++)
        if (addr_eq(&c->refused[i].addr, a))
            return c->refused[i].until > chord_now(c);
    return false;
}

/* A frame from a refused address: it is back (restarted). */
static void refused_clear(struct chord *c, const struct addr *a)
{
    for (unsigned i = 0; i < c->nrefused; i++) {
        if (addr_eq(&c->refused[i].addr, a)) {
            c->refused[i] = c->refused[--c->nrefused];
            return;
        }
    }
}

/* Runs the update upcall for every vnode whose neighbours changed. */
static void flush_updates(struct chord *c)
{
    for (unsigned i = 0; i < c->nvnodes; i++) {
        struct vnode *v = &c->vn[i];
        if (v->dirty) {
            v->dirty = false;
            if (c->cb.update)
                c->cb.update(c->cb.ctx, i);
        }
    }
}

static void on_reply(struct chord *c, const struct chord_msg *m)
{
    for (size_t i = 0; i < c->npending; i++) {
        struct pending *p = &c->pending[i];
        if (p->reqid != m->request_id)
            continue;
        /* Only the peer asked may answer (or, for requests sent to "any
         * vnode", any vnode at that address). */
        if (!addr_eq(&p->to.addr, &m->src.addr))
            return;
        if (!id_is_zero(&p->to.id) && !id_eq(&p->to.id, &m->src.id))
            return;
        struct pending taken = pending_take(c, i);
        if (m->type == CHORD_MSG_NO_SUCH_VNODE) {
            LOG_D(c->lg, MOD, "%s: peer has no such vnode", c->name);
            taken.refused = true;
            pending_finish(c, &taken, NULL);
        } else {
            pending_finish(c, &taken, m);
        }
        return;
    }
    /* A late or duplicated reply: the request already finished. */
}

int chord_input(struct chord *c, const struct addr *from, const void *frame, size_t len)
{
    struct chord_msg msg, *m = &msg;
    struct vnode *v;
    int rc;

    rc = chord_msg_decode(frame, len, m);
    if (rc) {
        c->stats.bad_frames++;
        if (log_enabled(c->lg, LOG_WARN)) {
            char who[ADDR_STR_MAX];
            addr_format(from, who, sizeof(who));
            LOG_W(c->lg, MOD, "%s: dropped a bad frame from %s (%zu bytes): %s", c->name, who, len,
                  rc == CHORD_ERR_TYPE ? "unknown type" : "malformed");
        }
        return rc;
    }
    c->stats.msgs_in++;
    c->stats.bytes_in += len;
    if (c->nrefused)
        refused_clear(c, &m->src.addr);
    if (!c->started || chord_has_left(c))
        goto out;

    if (m->type == CHORD_MSG_PEER_FOUND) {
        lookup_on_found(c, m);
        goto out;
    }
    if (m->reply) {
        on_reply(c, m);
        goto out;
    }
    v = (m->flags & CHORD_MF_ANY) ? chord_vnode_first_joined(c) : vnode_by_id(c, &m->dst);
    /* A vnode that is leaving takes no new work: nobody should join before
     * it, stabilize on it or route through it while it goes. */
    if (!v || v->state != VN_JOINED) {
        if (m->type != CHORD_MSG_ROUTE && m->type != CHORD_MSG_PREDECESSOR_SET) {
            struct chord_msg rep;
            struct vnode tmp = {.self = {.id = m->dst, .addr = c->cfg.self}};
            chord_reply(c, &tmp, m, &rep, CHORD_MSG_NO_SUCH_VNODE);
        }
        goto out;
    }
    switch (m->type) {
    case CHORD_MSG_PEER_FIND: lookup_on_find(c, v, m); break;
    case CHORD_MSG_NEXT_HOP: lookup_on_next_hop(c, v, m); break;
    case CHORD_MSG_ROUTE: lookup_on_route(c, v, m); break;
    default: ring_on_request(c, v, m); break;
    }
out:
    flush_updates(c);
    return 0;
}

void chord_peer_unreachable(struct chord *c, const struct addr *a)
{
    bool again = true;

    if (!c->started)
        return;
    /* Remember the refusal for routing (oldest entry replaced). */
    unsigned slot = c->nrefused;
    for (unsigned i = 0; i < c->nrefused; i++)
        if (addr_eq(&c->refused[i].addr, a))
            slot = i;
    if (slot == CHORD_REFUSED_MAX) {
        slot = 0;
        for (unsigned i = 1; i < c->nrefused; i++)
            if (c->refused[i].until < c->refused[slot].until)
                slot = i;
    } else if (slot == c->nrefused) {
        c->nrefused++;
    }
    c->refused[slot].addr = *a;
    c->refused[slot].until = chord_now(c) + CHORD_REFUSED_TTL_MS;
    /* Fingers are hints: drop every one at a, so lookups stop being
     * forwarded into a node that is gone (each such forward is lost and
     * costs its origin the recursive timeout). The successor list and
     * predecessor change only through the request outcomes below. */
    for (unsigned i = 0; i < c->nvnodes; i++) {
        struct vnode *v = &c->vn[i];
        for (unsigned k = 0; k < CHORD_FINGERS; k++)
            if ((v->finger_valid >> k & 1) && addr_eq(&v->finger[k].addr, a))
                v->finger_valid &= ~(1ull << k);
    }
    /* Finishing one request may send or end others: rescan until none is
     * left for a. */
    while (again) {
        again = false;
        for (size_t i = 0; i < c->npending; i++) {
            if (!addr_eq(&c->pending[i].to.addr, a))
                continue;
            struct pending taken = pending_take(c, i);
            taken.refused = true;
            pending_finish(c, &taken, NULL);
            again = true;
            break;
        }
    }
    flush_updates(c);
}

static void pending_tick(struct chord *c, uint64_t now)
{
    for (;;) {
        size_t i;
        for (i = 0; i < c->npending; i++)
            if (c->pending[i].deadline <= now)
                break;
        if (i == c->npending)
            return;
        struct pending *p = &c->pending[i];
        if (p->tries < c->cfg.rpc_tries) {
            p->tries++;
            p->deadline = now + c->cfg.rpc_timeout_ms;
            c->stats.msgs_out++;
            c->stats.bytes_out += p->frame_len;
            c->env.send(c->env.ctx, &p->to.addr, p->frame, p->frame_len);
            continue;
        }
        c->stats.rpc_timeouts++;
        struct pending taken = pending_take(c, i);
        pending_finish(c, &taken, NULL);
    }
}

void chord_tick(struct chord *c)
{
    uint64_t now = chord_now(c);

    if (!c->started)
        return;
    pending_tick(c, now);
    for (unsigned i = 0; i < c->nvnodes; i++)
        ring_tick_vnode(c, &c->vn[i], now);
    lookup_tick(c, now);
    flush_updates(c);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t chord_next_deadline(const struct chord *c)
{
    uint64_t d = UINT64_MAX;

    if (!c->started)
        return d;
    for (size_t i = 0; i < c->npending; i++)
        d = min64(d, c->pending[i].deadline);
    for (unsigned i = 0; i < c->nvnodes; i++) {
        const struct vnode *v = &c->vn[i];
        if (v->state == VN_JOINING && !v->join_busy)
            d = min64(d, v->t_join);
        if (v->state == VN_JOINED) {
            d = min64(d, v->t_stabilize);
            d = min64(d, v->t_check_pred);
            d = min64(d, v->t_fix_finger);
            if (v->nmem)
                d = min64(d, v->t_probe);
        }
    }
    return min64(d, lookup_next_deadline(c));
}

/* Introspection. */

unsigned chord_vnode_count(const struct chord *c)
{
    return c->nvnodes;
}

bool chord_vnode_joined(const struct chord *c, unsigned v)
{
    return v < c->nvnodes && (c->vn[v].state == VN_JOINED || c->vn[v].state == VN_LEAVING);
}

const struct chord_peer *chord_vnode_self(const struct chord *c, unsigned v)
{
    return v < c->nvnodes ? &c->vn[v].self : NULL;
}

size_t chord_vnode_successors(const struct chord *c, unsigned v, const struct chord_peer **out)
{
    if (v >= c->nvnodes) {
        *out = NULL;
        return 0;
    }
    *out = c->vn[v].succ;
    return c->vn[v].nsucc;
}

bool chord_vnode_predecessor(const struct chord *c, unsigned v, struct chord_peer *out)
{
    if (v >= c->nvnodes || !c->vn[v].has_pred)
        return false;
    *out = c->vn[v].pred;
    return true;
}

bool chord_vnode_finger(const struct chord *c, unsigned v, unsigned i, struct chord_peer *out)
{
    if (v >= c->nvnodes || i >= CHORD_FINGERS || !(c->vn[v].finger_valid >> i & 1))
        return false;
    *out = c->vn[v].finger[i];
    return true;
}

size_t chord_vnode_memory(const struct chord *c, unsigned v, struct chord_peer *out, size_t max)
{
    size_t n = 0;
    if (v >= c->nvnodes)
        return 0;
    for (unsigned i = 0; i < c->vn[v].nmem && n < max; i++)
        out[n++] = c->vn[v].mem[i].peer;
    return n;
}

size_t chord_vnode_replica_set(const struct chord *c, unsigned v, struct chord_peer *out, size_t k)
{
    size_t n = 0;
    if (v >= c->nvnodes || k == 0)
        return 0;
    const struct vnode *vn = &c->vn[v];
    out[n++] = vn->self;
    for (unsigned i = 0; i < vn->nsucc && n < k; i++) {
        bool seen = false;
        for (size_t j = 0; j < n; j++)
            if (addr_eq(&out[j].addr, &vn->succ[i].addr))
                seen = true;
        if (!seen)
            out[n++] = vn->succ[i];
    }
    return n;
}

int chord_vnode_for_key(const struct chord *c, const struct id *key)
{
    for (unsigned i = 0; i < c->nvnodes; i++) {
        const struct vnode *v = &c->vn[i];
        if (v->state != VN_JOINED)
            continue;
        if (v->nsucc == 0 && !v->has_pred)
            return (int)i;
        if (v->has_pred && id_in_oc(key, &v->pred.id, &v->self.id))
            return (int)i;
    }
    return -1;
}

void chord_get_stats(const struct chord *c, struct chord_stats *out)
{
    *out = c->stats;
}

size_t chord_memory_bytes(const struct chord *c)
{
    size_t b = sizeof(*c) + c->nvnodes * sizeof(struct vnode) +
               c->cap_pending * sizeof(struct pending) + c->cap_lookups * sizeof(struct lookup);
    for (size_t i = 0; i < c->npending; i++)
        b += c->pending[i].frame_len;
    return b;
}
