/* ring.c — ring maintenance: join, stabilize, notify, check-predecessor,
 * voluntary leave, recovery of a vnode that lost every successor, and the
 * long-term-memory probes that merge rings split by a partition. */
#include <errno.h>
#include <string.h>

#include "chord/internal.h"

#define MOD "chord"

static void log_peer(struct chord *c, enum log_level lvl, const char *what, const struct vnode *v,
                     const struct chord_peer *p)
{
    if (!log_enabled(c->lg, lvl))
        return;
    char a[ID_HEX_LEN + 1], b[ID_HEX_LEN + 1], who[ADDR_STR_MAX];
    id_to_hex(&v->self.id, a);
    id_to_hex(&p->id, b);
    addr_format(&p->addr, who, sizeof(who));
    log_msg(c->lg, lvl, MOD, "%s: vnode %.12s %s %.12s at %s", c->name, a, what, b, who);
}

void ring_vnode_joined(struct chord *c, struct vnode *v)
{
    uint64_t now = chord_now(c);
    v->state = VN_JOINED;
    v->join_busy = false;
    /* First stabilize soon, so a new member is linked in quickly; the
     * other timers start at their jittered periods. */
    v->t_stabilize = now + env_random_below(&c->env, c->cfg.stabilize_ms / 4 + 1);
    v->t_check_pred = chord_jitter(c, c->cfg.check_pred_ms);
    v->t_fix_finger = chord_jitter(c, c->cfg.fix_finger_ms);
    v->t_probe = chord_jitter(c, c->cfg.probe_ms);
    v->dirty = true;
}

static int succ_index(const struct vnode *v, const struct id *id)
{
    for (unsigned i = 0; i < v->nsucc; i++)
        if (id_eq(&v->succ[i].id, id))
            return (int)i;
    return -1;
}

static void send_notify(struct chord *c, struct vnode *v, const struct chord_peer *to)
{
    struct chord_msg m;
    chord_msg_prepare(c, v, &m, CHORD_MSG_PREDECESSOR_SET, to, false);
    m.request_id = chord_new_reqid(c);
    chord_send(c, &to->addr, &m);
}

static void send_pred_get(struct chord *c, struct vnode *v, enum pending_kind kind,
                          const struct chord_peer *to)
{
    struct chord_msg m;
    chord_msg_prepare(c, v, &m, CHORD_MSG_PREDECESSOR_GET, to, false);
    /* A stabilize remembers which version of the list it was sent for. */
    if (chord_request(c, v, kind, to, &m, kind == P_STAB ? v->succ_gen : 0) != 0)
        return;
    if (kind == P_STAB)
        v->stab_busy = true;
    else if (kind == P_ADOPT)
        v->adopt_busy = true;
}

/* Adopting a candidate successor requires hearing from it first (Zave):
 * the list is taken from its own reply. */
void ring_adopt_try(struct chord *c, struct vnode *v, const struct chord_peer *cand)
{
    if (v->adopt_busy || id_eq(&cand->id, &v->self.id) || id_is_zero(&cand->id))
        return;
    send_pred_get(c, v, P_ADOPT, cand);
}

/* Candidates when every successor is gone, tried one per stabilize: the
 * predecessor first (in a ring that grows from one node it is the node that
 * just joined behind us), then the fingers, nearest first, then long-term
 * memory. */
static bool recovery_candidate(struct vnode *v, unsigned k, struct chord_peer *out)
{
    unsigned n = 0;
    if (v->has_pred && n++ == k) {
        *out = v->pred;
        return true;
    }
    for (unsigned i = 0; i < CHORD_FINGERS; i++) {
        if (!(v->finger_valid >> i & 1))
            continue;
        if (n++ == k) {
            *out = v->finger[i];
            return true;
        }
    }
    for (unsigned i = 0; i < v->nmem; i++) {
        if (id_is_zero(&v->mem[i].peer.id))
            continue;
        if (n++ == k) {
            *out = v->mem[i].peer;
            return true;
        }
    }
    return false;
}

static void stabilize(struct chord *c, struct vnode *v)
{
    c->stats.stabilizations++;
    if (v->nsucc > 0) {
        if (!v->stab_busy)
            send_pred_get(c, v, P_STAB, &v->succ[0]);
        return;
    }
    /* No successor: one recovery candidate at a time; while one is being
     * asked, the turn does not move on. */
    struct chord_peer cand;
    if (v->adopt_busy)
        return;
    if (!recovery_candidate(v, v->recover_next, &cand)) {
        v->recover_next = 0; /* round over: start again next period */
        return;
    }
    v->recover_next++;
    ring_adopt_try(c, v, &cand);
}

static void check_pred(struct chord *c, struct vnode *v)
{
    if (!v->has_pred || v->pred_busy)
        return;
    struct chord_msg m;
    chord_msg_prepare(c, v, &m, CHORD_MSG_PING, &v->pred, false);
    if (chord_request(c, v, P_PING_PRED, &v->pred, &m, 0) == 0)
        v->pred_busy = true;
}

static void fix_finger(struct chord *c, struct vnode *v)
{
    struct id start;

    if (v->finger_busy || v->nsucc == 0)
        return;
    /* Fingers whose start falls before the first successor are that
     * successor; only the others need a lookup. */
    while (v->next_finger < CHORD_FINGERS) {
        chord_finger_start(&v->self.id, v->next_finger, &start);
        if (!id_in_oc(&start, &v->self.id, &v->succ[0].id))
            break;
        table_finger_set(v, v->next_finger, &v->succ[0]);
        v->next_finger++;
    }
    if (v->next_finger >= CHORD_FINGERS) {
        /* A round is over; the next starts now rather than a period later. */
        v->next_finger = 0;
        while (v->next_finger < CHORD_FINGERS) {
            chord_finger_start(&v->self.id, v->next_finger, &start);
            if (!id_in_oc(&start, &v->self.id, &v->succ[0].id))
                break;
            v->next_finger++;
        }
        if (v->next_finger >= CHORD_FINGERS) {
            v->next_finger = 0;
            return; /* every finger is the successor: a tiny ring */
        }
    }
    if (lookup_start(c, v, &start, L_FINGER, v->next_finger))
        v->finger_busy = true;
}

static void probe(struct chord *c, struct vnode *v, uint64_t now)
{
    if (v->probe_busy || v->nmem == 0)
        return;
    unsigned slot = v->mem_probe++ % v->nmem;
    struct mem_entry *e = &v->mem[slot];
    if (now - e->last_ok > CHORD_MEMORY_TTL_MS) {
        log_peer(c, LOG_DEBUG, "forgets silent", v, &e->peer);
        *e = v->mem[--v->nmem];
        return;
    }
    /* Ask the remembered node's ring who succeeds us there. The request
     * goes to any vnode at its address, since ids may have changed. */
    struct id key;
    id_add_pow2(&key, &v->self.id, 0);
    struct lookup *l = lookup_start(c, v, &key, L_PROBE, (uint8_t)slot);
    if (!l)
        return;
    lookup_send_find(c, v, l, &e->peer, true);
    v->probe_busy = true;
    c->stats.probes++;
}

static void join_step(struct chord *c, struct vnode *v)
{
    struct id key;
    struct chord_peer boot = {0};

    /* The bootstrap addresses are in memory (chord_join), tried in turn;
     * extra vnodes of a node that created the ring join through itself. */
    if (v->nmem > 0)
        boot = v->mem[v->mem_probe++ % v->nmem].peer;
    else
        boot.addr = c->cfg.self;
    /* A sibling vnode already in the ring knows it best. */
    if (chord_vnode_first_joined(c))
        boot.addr = c->cfg.self;
    /* Look up self+1, not self: if a crashed earlier incarnation of this
     * vnode is still in the ring, the answer is the node after it. */
    id_add_pow2(&key, &v->self.id, 0);
    struct lookup *l = lookup_start(c, v, &key, L_JOIN, 0);
    if (!l)
        return;
    lookup_send_find(c, v, l, &boot, true);
    v->join_busy = true;
}

void ring_tick_vnode(struct chord *c, struct vnode *v, uint64_t now)
{
    if (v->state == VN_JOINING) {
        if (!v->join_busy && v->t_join <= now) {
            v->t_join = now + CHORD_JOIN_RETRY_MS;
            join_step(c, v);
        }
        return;
    }
    if (v->state != VN_JOINED)
        return;
    if (v->t_stabilize <= now) {
        v->t_stabilize = chord_jitter(c, c->cfg.stabilize_ms);
        stabilize(c, v);
    }
    if (v->t_check_pred <= now) {
        v->t_check_pred = chord_jitter(c, c->cfg.check_pred_ms);
        check_pred(c, v);
    }
    if (v->t_fix_finger <= now) {
        v->t_fix_finger = chord_jitter(c, c->cfg.fix_finger_ms);
        fix_finger(c, v);
    }
    if (v->t_probe <= now) {
        v->t_probe = chord_jitter(c, c->cfg.probe_ms);
        probe(c, v, now);
    }
}

static void fill_state_reply(const struct vnode *v, struct chord_msg *rep)
{
    rep->has_peer = v->has_pred;
    if (v->has_pred)
        rep->peer = v->pred;
    rep->npeers = v->nsucc;
    memcpy(rep->peers, v->succ, v->nsucc * sizeof(v->succ[0]));
}

static void on_leave(struct chord *c, struct vnode *v, const struct chord_msg *m)
{
    const struct chord_peer *gone = &m->src;
    int at = -1;

    log_peer(c, LOG_INFO, "hears that it leaves:", v, gone);
    for (unsigned i = 0; i < v->nsucc; i++)
        if (id_eq(&v->succ[i].id, &gone->id))
            at = (int)i;
    if (at >= 0) {
        /* Our entries before the leaver, then the leaver's own list: both
         * are in ring order and the leaver vouches for its successors. */
        struct chord_peer list[2 * CHORD_SUCC_MAX];
        size_t n = 0;
        for (int i = 0; i < at; i++)
            list[n++] = v->succ[i];
        for (unsigned i = 0; i < m->npeers; i++)
            list[n++] = m->peers[i];
        for (unsigned i = (unsigned)at + 1; i < v->nsucc; i++)
            list[n++] = v->succ[i];
        table_succ_set(c, v, list, n);
    }
    if (v->has_pred && id_eq(&v->pred.id, &gone->id)) {
        if (m->has_peer && !id_eq(&m->peer.id, &v->self.id))
            table_pred_set(c, v, &m->peer);
        else
            table_pred_clear(c, v);
    }
    table_forget_finger(v, &gone->id);
    table_memory_remove(v, &gone->id);
}

void ring_on_request(struct chord *c, struct vnode *v, const struct chord_msg *m)
{
    struct chord_msg rep;

    switch (m->type) {
    case CHORD_MSG_PREDECESSOR_GET:
        chord_msg_prepare(c, v, &rep, CHORD_MSG_PREDECESSOR_REPLY, &m->src, false);
        fill_state_reply(v, &rep);
        rep.reply = true;
        rep.request_id = m->request_id;
        chord_send(c, &m->src.addr, &rep);
        break;
    case CHORD_MSG_PREDECESSOR_SET:
        /* Notify: replace the predecessor only if there is none (check-
         * predecessor found it dead) or the notifier is closer. */
        if (id_eq(&m->src.id, &v->self.id))
            break;
        if (!v->has_pred || id_in_oo(&m->src.id, &v->pred.id, &v->self.id)) {
            log_peer(c, LOG_DEBUG, "takes as predecessor", v, &m->src);
            table_pred_set(c, v, &m->src);
        }
        if (v->has_pred && id_eq(&v->pred.id, &m->src.id))
            v->pred_heard = chord_now(c);
        /* A vnode alone in its ring has just heard from a live node: make
         * it its successor (after asking it for its list). */
        if (v->nsucc == 0)
            ring_adopt_try(c, v, &m->src);
        break;
    case CHORD_MSG_PING: chord_reply(c, v, m, &rep, CHORD_MSG_PONG); break;
    case CHORD_MSG_LEAVE:
        on_leave(c, v, m);
        chord_reply(c, v, m, &rep, CHORD_MSG_LEAVE_ACK);
        break;
    default:
        /* A reply type without the reply flag, or a type for another layer. */
        c->stats.bad_frames++;
        break;
    }
}

static void adopt(struct chord *c, struct vnode *v, const struct chord_peer *p,
                  const struct chord_msg *m)
{
    struct chord_peer list[CHORD_SUCC_MAX + 1];
    size_t n = 0;

    /* Another adoption or a stabilize may have moved on meanwhile; adopt
     * only if the candidate still lies before our first successor. */
    if (v->nsucc > 0 && !id_in_oo(&p->id, &v->self.id, &v->succ[0].id))
        return;
    /* With no successor at all (recovery), the candidate may lie far
     * round the ring (a finger, or our own predecessor). If it knows a
     * node between us and it, that one is closer to our true successor:
     * ask it next, as stabilize walks back along predecessors. Only a node
     * that knows nobody closer is adopted, so the ring cannot close over
     * itself twice. */
    if (v->nsucc == 0) {
        const struct chord_peer *closer = NULL;
        if (m->has_peer && id_in_oo(&m->peer.id, &v->self.id, &p->id))
            closer = &m->peer;
        for (unsigned i = 0; i < m->npeers; i++)
            if (id_in_oo(&m->peers[i].id, &v->self.id, closer ? &closer->id : &p->id))
                closer = &m->peers[i];
        if (closer) {
            ring_adopt_try(c, v, closer);
            return;
        }
    }
    list[n++] = *p;
    for (unsigned i = 0; i < m->npeers; i++)
        list[n++] = m->peers[i];
    log_peer(c, LOG_DEBUG, "adopts successor", v, p);
    table_succ_set(c, v, list, n);
    v->recover_next = 0;
    send_notify(c, v, p);
}

void ring_on_reply(struct chord *c, struct vnode *v, struct pending *p, const struct chord_msg *m)
{
    struct chord_peer list[CHORD_SUCC_MAX + 1];
    size_t n = 0;

    switch (p->kind) {
    case P_STAB: {
        v->stab_busy = false;
        if (m->type != CHORD_MSG_PREDECESSOR_REPLY || v->state != VN_JOINED)
            return;
        /* The answer may come from the first successor or, after it went
         * silent, from a later one we failed over to: either way the list
         * restarts at the node that answered (dropping the silent ones
         * before it) and continues with its list, as Zave reconciles. */
        int at = succ_index(v, &p->to.id);
        if (at < 0)
            return; /* the list moved on while we asked */
        /* An answer from a later entry drops the silent ones before it only
         * if the list is still the one we failed over in: a late answer
         * from a former first successor must not drop a closer node
         * adopted meanwhile. */
        if (at > 0 && p->lookup != v->succ_gen)
            return;
        for (int i = 0; i < at; i++) {
            log_peer(c, LOG_INFO, "drops unresponsive successor", v, &v->succ[i]);
            table_memory_add(c, v, &v->succ[i]);
            table_forget_finger(v, &v->succ[i].id);
        }
        list[n++] = p->to;
        for (unsigned i = 0; i < m->npeers; i++)
            list[n++] = m->peers[i];
        table_succ_set(c, v, list, n);
        v->last_succ_fail = 0;
        v->succ_strikes = 0;
        /* Its predecessor, if between us, is a better successor; adopt it
         * only after hearing from it. */
        if (m->has_peer && v->nsucc > 0 && id_in_oo(&m->peer.id, &v->self.id, &v->succ[0].id))
            ring_adopt_try(c, v, &m->peer);
        if (v->nsucc > 0)
            send_notify(c, v, &v->succ[0]);
        break;
    }
    case P_ADOPT:
        v->adopt_busy = false;
        if (m->type != CHORD_MSG_PREDECESSOR_REPLY || v->state != VN_JOINED)
            return;
        adopt(c, v, &p->to, m);
        break;
    case P_PING_PRED: v->pred_busy = false; break;
    case P_JOIN_GET:
        if (m->type != CHORD_MSG_PREDECESSOR_REPLY || v->state != VN_JOINING)
            return;
        /* Zave's join: the successor found, then its successor list. */
        list[n++] = p->to;
        for (unsigned i = 0; i < m->npeers; i++)
            list[n++] = m->peers[i];
        table_succ_set(c, v, list, n);
        if (v->nsucc == 0) {
            v->join_busy = false;
            return;
        }
        ring_vnode_joined(c, v);
        log_peer(c, LOG_INFO, "joined before", v, &v->succ[0]);
        send_notify(c, v, &v->succ[0]);
        break;
    case P_LEAVE:
        if (v->leaves_pending && --v->leaves_pending == 0)
            v->state = VN_LEFT;
        break;
    default: break;
    }
}

void ring_on_fail(struct chord *c, struct vnode *v, struct pending *p)
{
    switch (p->kind) {
    case P_STAB: {
        v->stab_busy = false;
        int at = succ_index(v, &p->to.id);
        if (v->state != VN_JOINED || at < 0)
            return;
        /* A silent successor is not simply deleted: a lost frame looks the
         * same as a crash. Ask the next one; only a node that answers
         * replaces it (see the reply above), so the list always keeps the
         * last node we heard from. */
        /* Suspicion needs several rounds when there is someone to fail
         * over to; a refusal (NO_SUCH_VNODE) is proof and needs none. The
         * last successor has its own, longer grace below. */
        if (at == 0 && v->nsucc > 1 && !p->refused && ++v->succ_strikes < CHORD_SUSPECT_ROUNDS)
            return; /* try it again next round */
        if ((unsigned)at + 1 < v->nsucc) {
            send_pred_get(c, v, P_STAB, &v->succ[at + 1]);
            return;
        }
        /* Nobody in the list answered. Keep it for a few rounds (the node
         * may be cut off only briefly); then the ring is lost to us and
         * recovery (fingers, predecessor, memory) takes over. */
        /* The grace counts silent successors, not rounds: a round in which
         * sixteen stayed silent is evidence enough, a lone successor gets
         * CHORD_LAST_SUCC_GRACE rounds. */
        v->last_succ_fail =
            (uint8_t)(v->last_succ_fail + v->nsucc > 255 ? 255 : v->last_succ_fail + v->nsucc);
        if (v->last_succ_fail >= CHORD_LAST_SUCC_GRACE || p->refused) {
            for (unsigned i = 0; i < v->nsucc; i++) {
                log_peer(c, LOG_INFO, "gives up on successor", v, &v->succ[i]);
                table_memory_add(c, v, &v->succ[i]);
                table_forget_finger(v, &v->succ[i].id);
            }
            table_succ_set(c, v, NULL, 0);
            v->last_succ_fail = 0;
            v->t_stabilize = chord_now(c);
        }
        break;
    }
    case P_ADOPT:
        v->adopt_busy = false;
        table_forget_finger(v, &p->to.id);
        /* A refusal (NO_SUCH_VNODE, or nobody listening) comes back at the
         * round-trip rate. Recovery waits for the next stabilize: asking
         * at once would go round the candidates, and the predecessor
         * between each, as fast as a restarting node can refuse, until its
         * vnode has joined. A silent candidate has cost the request's
         * tries already, and the next one is asked at once. */
        if (v->nsucc == 0 && !p->refused) {
            /* A live predecessor (it keeps notifying us) beats whatever
             * else recovery would try next. */
            if (v->has_pred && !id_eq(&v->pred.id, &p->to.id)) {
                v->recover_next = 1;
                ring_adopt_try(c, v, &v->pred);
            } else {
                v->t_stabilize = chord_now(c);
            }
        }
        break;
    case P_PING_PRED:
        v->pred_busy = false;
        /* Lost PINGs are no proof of death when the predecessor notified us
         * after the first of them went out. */
        if (!p->refused && v->pred_heard >= p->sent)
            break;
        if (v->has_pred && id_eq(&v->pred.id, &p->to.id)) {
            log_peer(c, LOG_INFO, "drops unresponsive predecessor", v, &p->to);
            table_memory_add(c, v, &p->to);
            table_forget_finger(v, &p->to.id);
            table_pred_clear(c, v);
        }
        break;
    case P_JOIN_GET: v->join_busy = false; break;
    case P_LEAVE:
        if (v->leaves_pending && --v->leaves_pending == 0)
            v->state = VN_LEFT;
        break;
    default: break;
    }
}

/* What a leaving vnode hands over: its predecessor and successor list,
 * without the other vnodes of this node, which are leaving too. */
static void fill_leave(struct chord *c, const struct vnode *v, struct chord_msg *m)
{
    m->has_peer = v->has_pred && !addr_eq(&v->pred.addr, &c->cfg.self);
    if (m->has_peer)
        m->peer = v->pred;
    m->npeers = 0;
    for (unsigned i = 0; i < v->nsucc; i++)
        if (!addr_eq(&v->succ[i].addr, &c->cfg.self))
            m->peers[m->npeers++] = v->succ[i];
}

void ring_start_leave(struct chord *c, struct vnode *v)
{
    struct chord_msg m;
    struct chord_peer to[2];
    unsigned n = 0;

    v->state = VN_LEAVING;
    if (v->has_pred)
        to[n++] = v->pred;
    if (v->nsucc > 0 && (n == 0 || !id_eq(&v->succ[0].id, &to[0].id)))
        to[n++] = v->succ[0];
    for (unsigned i = 0; i < n; i++) {
        chord_msg_prepare(c, v, &m, CHORD_MSG_LEAVE, &to[i], false);
        fill_leave(c, v, &m);
        if (chord_request(c, v, P_LEAVE, &to[i], &m, 0) == 0)
            v->leaves_pending++;
    }
    if (v->leaves_pending == 0)
        v->state = VN_LEFT;
}

void ring_lookup_answered(struct chord *c, struct vnode *v, struct lookup *l)
{
    const struct chord_peer *s = &l->res.succ;

    switch (l->purpose) {
    case L_FINGER: {
        v->finger_busy = false;
        if (v->state != VN_JOINED)
            return;
        struct id start, next;
        chord_finger_start(&v->self.id, l->finger, &start);
        table_finger_set(v, l->finger, s);
        /* Later fingers whose start the answer also covers share it. */
        unsigned i = l->finger + 1u;
        for (; i < CHORD_FINGERS; i++) {
            chord_finger_start(&v->self.id, i, &next);
            if (!id_in_oc(&next, &start, &s->id) || id_eq(&s->id, &v->self.id))
                break;
            table_finger_set(v, i, s);
        }
        v->next_finger = (uint8_t)(i % CHORD_FINGERS);
        break;
    }
    case L_JOIN:
        if (v->state != VN_JOINING)
            return;
        if (id_eq(&s->id, &v->self.id)) {
            v->join_busy = false;
            return;
        }
        send_pred_get(c, v, P_JOIN_GET, s);
        break;
    case L_PROBE: {
        v->probe_busy = false;
        /* Memory may have been reshuffled meanwhile: find the entry asked. */
        int slot = -1;
        for (unsigned i = 0; i < v->nmem; i++)
            if (addr_eq(&v->mem[i].peer.addr, &l->cand[0].addr))
                slot = (int)i;
        if (slot >= 0)
            v->mem[slot].last_ok = chord_now(c);
        if (v->state != VN_JOINED || id_eq(&s->id, &v->self.id))
            goto agreed;
        if (v->nsucc == 0 || id_in_oo(&s->id, &v->self.id, &v->succ[0].id)) {
            log_peer(c, LOG_INFO, "found through long-term memory", v, s);
            c->stats.merges++;
            ring_adopt_try(c, v, s);
            return;
        }
    agreed:
        /* The remembered node's ring agrees with ours; after a few such
         * probes stop spending messages on it. */
        if (slot >= 0 && ++v->mem[slot].agreed >= 3)
            v->mem[slot] = v->mem[--v->nmem];
        break;
    }
    default: break;
    }
}

void ring_lookup_failed(struct chord *c, struct vnode *v, struct lookup *l)
{
    (void)c;
    switch (l->purpose) {
    case L_FINGER:
        v->finger_busy = false;
        v->next_finger = (uint8_t)((l->finger + 1u) % CHORD_FINGERS);
        break;
    case L_JOIN: v->join_busy = false; break;
    case L_PROBE: v->probe_busy = false; break;
    default: break;
    }
}
