/* lookup.c — lookups (recursive PEER FIND with a reply-to address, then an
 * iterative fallback that asks each hop itself) and routed messages. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chord/internal.h"

#define MOD "chord"

struct lookup *lookup_find(struct chord *c, uint64_t handle)
{
    for (size_t i = 0; i < c->nlookups; i++)
        if (c->lookups[i].handle == handle)
            return &c->lookups[i];
    return NULL;
}

void lookup_free_all(struct chord *c)
{
    free(c->lookups);
    c->lookups = NULL;
    c->nlookups = c->cap_lookups = 0;
}

/* iterative: whether the iterative fallback produced this answer (a late
 * recursive answer may still win after the fallback started). */
static void lookup_answer(struct chord *c, struct lookup *l, const struct chord_peer *succ,
                          unsigned hops, bool iterative)
{
    l->done = true;
    l->res.status = 0;
    l->res.key = l->key;
    l->res.succ = *succ;
    l->res.hops = hops;
    l->res.iterative = iterative;
    l->deadline = chord_now(c); /* reported at the next tick */
}

static void lookup_fail(struct chord *c, struct lookup *l, int status)
{
    l->done = true;
    l->res.status = status;
    l->res.key = l->key;
    l->res.hops = l->hops;
    l->res.iterative = l->iterative;
    l->deadline = chord_now(c);
}

void lookup_cancel_all(struct chord *c)
{
    for (size_t i = 0; i < c->nlookups; i++)
        if (!c->lookups[i].done)
            lookup_fail(c, &c->lookups[i], -ECANCELED);
}

void lookup_send_find(struct chord *c, struct vnode *v, struct lookup *l,
                      const struct chord_peer *to, bool any)
{
    l->cand[0] = *to; /* joins and probes: who was asked */
    struct chord_msg m;
    chord_msg_prepare(c, v, &m, CHORD_MSG_PEER_FIND, to, any);
    m.request_id = l->handle;
    m.key = l->key;
    m.peer = v->self; /* reply-to */
    m.has_peer = true;
    m.hops = 1;
    chord_send(c, &to->addr, &m);
}

struct lookup *lookup_start(struct chord *c, struct vnode *v, const struct id *key,
                            enum lookup_purpose purpose, uint8_t arg)
{
    struct lookup *l;
    uint64_t now = chord_now(c);

    if (c->nlookups == c->cap_lookups) {
        size_t cap = c->cap_lookups ? c->cap_lookups * 2 : 8;
        struct lookup *nl = realloc(c->lookups, cap * sizeof(*nl));
        if (!nl)
            return NULL;
        c->lookups = nl;
        c->cap_lookups = cap;
    }
    l = &c->lookups[c->nlookups++];
    memset(l, 0, sizeof(*l));
    l->handle = chord_new_reqid(c);
    l->started = now;
    l->vnode = (uint16_t)v->index;
    l->purpose = (uint8_t)purpose;
    l->finger = arg;
    l->key = *key;

    if (purpose == L_JOIN || purpose == L_PROBE) {
        /* The caller sends the PEER_FIND; no fallback: a join starts over
         * after CHORD_JOIN_RETRY_MS, a probe waits for its next turn. */
        l->deadline =
            now + (purpose == L_JOIN ? (uint64_t)CHORD_JOIN_RETRY_MS
                                     : (uint64_t)c->cfg.rpc_timeout_ms * c->cfg.rpc_tries);
        return l;
    }
    if (purpose == L_USER)
        c->stats.lookups_started++;
    if (v->nsucc == 0) {
        lookup_answer(c, l, &v->self, 0, false);
        return l;
    }
    if (id_in_oc(key, &v->self.id, &v->succ[0].id)) {
        lookup_answer(c, l, &v->succ[0], 0, false);
        return l;
    }
    const struct chord_peer *next = table_closest_preceding(c, v, key);
    if (!next)
        next = &v->succ[0];
    l->deadline = now + c->cfg.lookup_recursive_ms;
    lookup_send_find(c, v, l, next, false);
    return l;
}

void lookup_on_find(struct chord *c, struct vnode *v, const struct chord_msg *m)
{
    struct chord_msg out;
    const struct chord_peer *answer = NULL;

    if (v->nsucc == 0)
        answer = &v->self;
    else if (id_in_oc(&m->key, &v->self.id, &v->succ[0].id))
        answer = &v->succ[0];

    if (answer) {
        chord_msg_prepare(c, v, &out, CHORD_MSG_PEER_FOUND, &m->peer, false);
        out.reply = true;
        out.request_id = m->request_id;
        out.key = m->key;
        out.peer = *answer;
        out.has_peer = true;
        out.hops = m->hops;
        chord_send(c, &m->peer.addr, &out);
        return;
    }
    if (m->hops >= CHORD_MAX_HOPS) {
        LOG_W(c->lg, MOD, "%s: dropped a PEER_FIND after %u hops", c->name, m->hops);
        return;
    }
    const struct chord_peer *next = table_closest_preceding(c, v, &m->key);
    if (!next)
        next = &v->succ[0];
    out = *m;
    out.flags = 0;
    out.dst = next->id;
    out.src = v->self;
    out.hops = (uint16_t)(m->hops + 1);
    c->stats.finds_forwarded++;
    chord_send(c, &next->addr, &out);
}

void lookup_on_found(struct chord *c, const struct chord_msg *m)
{
    struct lookup *l = lookup_find(c, m->request_id);
    if (!l || l->done || !id_eq(&l->key, &m->key))
        return; /* late, duplicated or forged */
    l->hops = m->hops;
    lookup_answer(c, l, &m->peer, m->hops, false);
}

void lookup_on_next_hop(struct chord *c, struct vnode *v, const struct chord_msg *m)
{
    struct chord_msg rep;

    chord_msg_prepare(c, v, &rep, CHORD_MSG_NEXT_HOP_REPLY, &m->src, false);
    rep.reply = true;
    rep.request_id = m->request_id;
    if (v->nsucc == 0) {
        rep.done = 1;
        rep.npeers = 1;
        rep.peers[0] = v->self;
    } else if (id_in_oc(&m->key, &v->self.id, &v->succ[0].id)) {
        rep.done = 1;
        rep.npeers = v->nsucc < 4 ? v->nsucc : 4;
        memcpy(rep.peers, v->succ, rep.npeers * sizeof(rep.peers[0]));
    } else {
        rep.done = 0;
        rep.npeers = (uint8_t)table_closest_list(v, &m->key, NULL, 0, rep.peers, 4);
    }
    chord_send(c, &m->src.addr, &rep);
}

static bool is_failed(const struct lookup *l, const struct id *id)
{
    for (unsigned i = 0; i < l->nfailed; i++)
        if (id_eq(&l->failed[i], id))
            return true;
    /* A node that answered already would only repeat itself: asking it
     * again lets a lookup circle after a timeout sends it back a step. */
    for (unsigned i = 0; i < l->nasked; i++)
        if (id_eq(&l->asked[i], id))
            return true;
    return false;
}

static void cand_remove(struct lookup *l, const struct id *id)
{
    unsigned k = 0;
    for (unsigned i = 0; i < l->ncand; i++)
        if (!id_eq(&l->cand[i].id, id))
            l->cand[k++] = l->cand[i];
    l->ncand = (uint8_t)k;
}

/* Adds p to the candidates, kept closest to the key first. */
static void cand_add(struct lookup *l, const struct id *self, const struct chord_peer *p)
{
    struct id dp, dq;
    if (id_eq(&p->id, self) || is_failed(l, &p->id) || !id_in_oo(&p->id, self, &l->key))
        return;
    for (unsigned i = 0; i < l->ncand; i++)
        if (id_eq(&l->cand[i].id, &p->id))
            return;
    id_distance(&dp, self, &p->id);
    unsigned pos = l->ncand;
    for (unsigned i = 0; i < l->ncand; i++) {
        id_distance(&dq, self, &l->cand[i].id);
        if (id_cmp(&dp, &dq) > 0) {
            pos = i;
            break;
        }
    }
    if (pos >= LOOKUP_CAND)
        return;
    unsigned n = l->ncand < LOOKUP_CAND ? l->ncand : LOOKUP_CAND - 1;
    memmove(&l->cand[pos + 1], &l->cand[pos], (n - pos) * sizeof(l->cand[0]));
    l->cand[pos] = *p;
    l->ncand = (uint8_t)(n + 1);
}

static void iter_step(struct chord *c, struct lookup *l)
{
    struct vnode *v = &c->vn[l->vnode];
    struct chord_msg m;

    if (l->ncand == 0) {
        lookup_fail(c, l, -EHOSTUNREACH);
        return;
    }
    chord_msg_prepare(c, v, &m, CHORD_MSG_NEXT_HOP, &l->cand[0], false);
    m.key = l->key;
    l->hops++;
    if (chord_request(c, v, P_ITER, &l->cand[0], &m, l->handle) != 0)
        lookup_fail(c, l, -ENOMEM);
}

static void iter_begin(struct chord *c, struct lookup *l)
{
    struct vnode *v = &c->vn[l->vnode];
    struct chord_peer list[LOOKUP_CAND];

    l->iterative = true;
    l->hops = 0;
    l->deadline = l->started + c->cfg.lookup_max_ms;
    if (v->state != VN_JOINED) {
        lookup_fail(c, l, -ECANCELED);
        return;
    }
    if (v->nsucc == 0) {
        lookup_answer(c, l, &v->self, 0, true);
        return;
    }
    if (id_in_oc(&l->key, &v->self.id, &v->succ[0].id)) {
        lookup_answer(c, l, &v->succ[0], 0, true);
        return;
    }
    size_t n = table_closest_list(v, &l->key, l->failed, l->nfailed, list, LOOKUP_CAND);
    l->ncand = 0;
    for (size_t i = 0; i < n; i++)
        cand_add(l, &v->self.id, &list[i]);
    iter_step(c, l);
}

void lookup_on_step_reply(struct chord *c, struct pending *p, const struct chord_msg *m)
{
    struct lookup *l = lookup_find(c, p->lookup);
    if (!l || l->done)
        return;
    struct vnode *v = &c->vn[l->vnode];
    if (m->type != CHORD_MSG_NEXT_HOP_REPLY) {
        lookup_on_step_fail(c, p);
        return;
    }
    if (m->done) {
        if (m->npeers > 0)
            lookup_answer(c, l, &m->peers[0], l->hops, true);
        else
            lookup_fail(c, l, -EHOSTUNREACH);
        return;
    }
    cand_remove(l, &p->to.id);
    if (l->nasked < 2 * LOOKUP_CAND)
        l->asked[l->nasked++] = p->to.id;
    for (unsigned i = 0; i < m->npeers; i++)
        if (id_in_oo(&m->peers[i].id, &p->to.id, &l->key))
            cand_add(l, &v->self.id, &m->peers[i]);
    iter_step(c, l);
}

void lookup_on_step_fail(struct chord *c, struct pending *p)
{
    struct lookup *l = lookup_find(c, p->lookup);
    if (!l || l->done)
        return;
    struct vnode *v = &c->vn[l->vnode];
    if (l->nfailed < LOOKUP_CAND)
        l->failed[l->nfailed++] = p->to.id;
    table_forget_finger(v, &p->to.id);
    cand_remove(l, &p->to.id);
    iter_step(c, l);
}

void lookup_on_route(struct chord *c, struct vnode *v, const struct chord_msg *m)
{
    const struct chord_peer *next;

    if (v->nsucc == 0 || (v->has_pred && id_in_oc(&m->key, &v->pred.id, &v->self.id))) {
        c->stats.routes_delivered++;
        if (c->cb.deliver)
            c->cb.deliver(c->cb.ctx, v->index, &m->key, &m->peer, m->app_type, m->payload,
                          m->payload_len);
        return;
    }
    if (id_in_oc(&m->key, &v->self.id, &v->succ[0].id))
        next = &v->succ[0];
    else
        next = table_closest_preceding(c, v, &m->key);
    if (!next)
        next = &v->succ[0];
    if (m->hops >= CHORD_MAX_HOPS) {
        LOG_W(c->lg, MOD, "%s: dropped a routed message after %u hops", c->name, m->hops);
        return;
    }
    if (c->cb.forward &&
        !c->cb.forward(c->cb.ctx, v->index, &m->key, next, m->app_type, m->payload, m->payload_len))
        return;
    struct chord_msg out = *m;
    out.flags = 0;
    out.dst = next->id;
    out.src = v->self;
    out.hops = (uint16_t)(m->hops + 1);
    c->stats.routes_forwarded++;
    chord_send(c, &next->addr, &out);
}

/* The joined local vnode that precedes key most closely: lookups and
 * routes start there, saving hops. */
static struct vnode *best_local(struct chord *c, const struct id *key)
{
    struct vnode *best = NULL;
    struct id d, bd;
    for (unsigned i = 0; i < c->nvnodes; i++) {
        struct vnode *v = &c->vn[i];
        if (v->state != VN_JOINED)
            continue;
        id_distance(&d, &v->self.id, key);
        if (!best || id_cmp(&d, &bd) < 0) {
            best = v;
            bd = d;
        }
    }
    return best;
}

int chord_lookup(struct chord *c, const struct id *key, uint64_t *handle)
{
    struct vnode *v = c->leaving ? NULL : best_local(c, key);
    if (!v)
        return -EAGAIN;
    struct lookup *l = lookup_start(c, v, key, L_USER, 0);
    if (!l)
        return -ENOMEM;
    *handle = l->handle;
    return 0;
}

int chord_route(struct chord *c, const struct id *key, uint16_t app_type, const void *payload,
                size_t len)
{
    struct chord_msg m;
    struct vnode *v;

    if (len > CHORD_ROUTE_MAX)
        return -EMSGSIZE;
    v = c->leaving ? NULL : best_local(c, key);
    if (!v)
        return -EAGAIN;
    /* The message starts its way as a frame to this node itself, so that
     * deliver and forward run inside chord_input like every other upcall,
     * never inside this call. */
    chord_msg_prepare(c, v, &m, CHORD_MSG_ROUTE, &v->self, false);
    m.request_id = chord_new_reqid(c);
    m.key = *key;
    m.peer = v->self;
    m.has_peer = true;
    m.hops = 0;
    m.app_type = app_type;
    m.payload = payload;
    m.payload_len = (uint32_t)len;
    return chord_send(c, &c->cfg.self, &m) ? 0 : -EMSGSIZE;
}

static void report(struct chord *c, struct lookup *l)
{
    struct vnode *v = &c->vn[l->vnode];
    l->res.elapsed_ms = chord_now(c) - l->started;
    switch (l->purpose) {
    case L_USER:
        if (l->res.status == 0) {
            c->stats.lookups_ok++;
            c->stats.lookup_hops_total += l->res.hops;
            if (l->res.iterative)
                c->stats.lookups_iterative++;
        } else {
            c->stats.lookups_failed++;
        }
        if (c->cb.lookup_done)
            c->cb.lookup_done(c->cb.ctx, l->handle, &l->res);
        break;
    default:
        if (l->res.status == 0)
            ring_lookup_answered(c, v, l);
        else
            ring_lookup_failed(c, v, l);
        break;
    }
}

void lookup_tick(struct chord *c, uint64_t now)
{
    size_t i = 0;
    while (i < c->nlookups) {
        struct lookup *l = &c->lookups[i];
        if (l->deadline > now) {
            i++;
            continue;
        }
        if (!l->done) {
            if (!l->iterative && (l->purpose == L_USER || l->purpose == L_FINGER)) {
                iter_begin(c, l);
            } else {
                lookup_fail(c, l, -ETIMEDOUT);
            }
            if (!l->done || l->deadline > now) {
                i++;
                continue;
            }
        }
        /* Take it out before the upcall, which may start new lookups. */
        struct lookup copy = *l;
        c->lookups[i] = c->lookups[--c->nlookups];
        report(c, &copy);
        i = 0;
    }
}

uint64_t lookup_next_deadline(const struct chord *c)
{
    uint64_t d = UINT64_MAX;
    for (size_t i = 0; i < c->nlookups; i++)
        if (c->lookups[i].deadline < d)
            d = c->lookups[i].deadline;
    return d;
}
