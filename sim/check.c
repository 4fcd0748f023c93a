/* check.c — the simulator's view of the truth: membership, Zave's
 * invariants, the ideal ring, the fail rule, and lookup statistics. */
#include "sim/internal.h"

#include "chord/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void inflight_collect(struct sim *s);
static void mark_leaving(struct sim *s);
static bool inflight_ok(const struct sim *s);

static unsigned V(const struct sim *s)
{
    return s->cfg.vnodes;
}

int sim_check_grow(struct sim *s, size_t cap_nodes)
{
    size_t n = cap_nodes * V(s);
#define GROW(field)                                                                                \
    do {                                                                                           \
        void *p = realloc(s->field, n * sizeof(*s->field));                                        \
        if (!p)                                                                                    \
            return -ENOMEM;                                                                        \
        s->field = p;                                                                              \
    } while (0)
    GROW(vid);
    GROW(member);
    GROW(lone);
    GROW(best);
    GROW(stamp);
    GROW(sorted);
    GROW(fr_cnt);
#undef GROW
    void *p = realloc(s->victim, cap_nodes);
    if (!p)
        return -ENOMEM;
    s->victim = p;
    return 0;
}

void sim_check_free(struct sim *s)
{
    free(s->vid);
    free(s->member);
    free(s->lone);
    free(s->best);
    free(s->stamp);
    free(s->sorted);
    free(s->victim);
    free(s->fr_cnt);
    free(s->fr_rev_start);
    free(s->fr_rev);
    free(s->cons);
}

size_t sim_check_bytes(const struct sim *s)
{
    size_t per = sizeof(struct id) + 1 + 4 + 4 + 4 + 4 + 4;
    return (size_t)s->cap_nodes * (V(s) * per + 1);
}

void sim_check_node_added(struct sim *s, unsigned node)
{
    for (unsigned v = 0; v < V(s); v++) {
        size_t g = (size_t)node * V(s) + v;
        chord_vnode_id(&s->nodes[node]->addr, v, &s->vid[g]);
        s->member[g] = 0;
        s->lone[g] = 0;
        s->best[g] = -1;
        s->stamp[g] = 0;
    }
    s->victim[node] = 0;
}

void sim_check_node_died(struct sim *s, unsigned node)
{
    for (unsigned v = 0; v < V(s); v++) {
        size_t g = (size_t)node * V(s) + v;
        if (s->member[g]) {
            s->member[g] = 0;
            s->sorted_dirty = true;
            s->members_changed = true;
        }
        s->best[g] = -1;
    }
}

/* The global vnode a peer names, or -1 if no such vnode exists. */
static int32_t gv_of(const struct sim *s, const struct chord_peer *p)
{
    int n = sim_node_of_addr(s, &p->addr);
    if (n < 0)
        return -1;
    for (unsigned v = 0; v < V(s); v++) {
        size_t g = (size_t)n * V(s) + v;
        if (id_eq(&s->vid[g], &p->id))
            return (int32_t)g;
    }
    return -1;
}

static void short_id(const struct id *id, char *buf)
{
    char hex[ID_HEX_LEN + 1];
    id_to_hex(id, hex);
    memcpy(buf, hex, 12);
    buf[12] = '\0';
}

static int32_t best_live(struct sim *s, size_t g)
{
    const struct chord_peer *list;
    struct chord *c = s->nodes[g / V(s)]->c;
    size_t n = chord_vnode_successors(c, (unsigned)(g % V(s)), &list);
    /* An empty list means the vnode believes it is alone: its successor is
     * itself, a ring of one. */
    if (n == 0)
        return (int32_t)g;
    for (size_t i = 0; i < n; i++) {
        int32_t t = gv_of(s, &list[i]);
        if (t >= 0 && s->member[t]) {
            s->lone[g] = 0; /* it found the others again */
            return t;
        }
    }
    /* The fail rule was waived for it as the last member: until it hears
     * of live nodes again it is a ring of one, whoever joins meanwhile. */
    return s->lone[g] ? (int32_t)g : -1;
}

static void check_local(struct sim *s, size_t g)
{
    const struct chord_peer *list;
    struct chord *c = s->nodes[g / V(s)]->c;
    size_t n = chord_vnode_successors(c, (unsigned)(g % V(s)), &list);
    struct id prev, d;
    char a[13], b[13];

    if (n > s->cfg.succ_len) {
        short_id(&s->vid[g], a);
        sim_violation(s, "vnode %s has %zu successors, r = %u", a, n, s->cfg.succ_len);
    }
    for (size_t i = 0; i < n; i++) {
        if (id_eq(&list[i].id, &s->vid[g])) {
            short_id(&s->vid[g], a);
            sim_violation(s, "vnode %s lists itself as successor %zu", a, i);
            return;
        }
        id_distance(&d, &s->vid[g], &list[i].id);
        if (i > 0 && id_cmp(&d, &prev) <= 0) {
            short_id(&s->vid[g], a);
            short_id(&list[i].id, b);
            sim_violation(s, "vnode %s successor list out of ring order or duplicated at %zu (%s)",
                          a, i, b);
            return;
        }
        prev = d;
    }
}

static size_t member_count(const struct sim *s)
{
    size_t m = 0, n = (size_t)s->nnodes * V(s);
    for (size_t g = 0; g < n; g++)
        m += s->member[g];
    return m;
}

/* One ordered ring: the graph of first live successors over the members
 * has exactly one cycle, and that cycle goes round the ring once. */
static int check_ring(struct sim *s, char *why, size_t why_len)
{
    size_t n = (size_t)s->nnodes * V(s), members = member_count(s);
    size_t cycles = 0;
    char a[13];

    if (members <= 1)
        return 0;
    for (size_t g = 0; g < n; g++) {
        if (s->member[g] && s->best[g] < 0) {
            short_id(&s->vid[g], a);
            snprintf(why, why_len, "vnode %s has no live successor (%zu members)", a, members);
            return -1;
        }
    }
    uint32_t base = s->stamp_gen + 1;
    if (base > UINT32_MAX - (uint32_t)n - 2) {
        memset(s->stamp, 0, n * sizeof(*s->stamp));
        base = 1;
    }
    uint32_t walk = base;
    for (size_t g = 0; g < n; g++) {
        if (!s->member[g] || s->stamp[g] >= base)
            continue;
        walk++;
        int32_t x = (int32_t)g;
        while (x >= 0 && s->stamp[x] < base) {
            s->stamp[x] = walk;
            x = s->best[x];
        }
        if (x >= 0 && s->stamp[x] == walk) {
            /* A new cycle, entered at x: count how often it wraps past zero. */
            cycles++;
            size_t wraps = 0, len = 0;
            int32_t y = x;
            do {
                int32_t nx = s->best[y];
                if (id_cmp(&s->vid[nx], &s->vid[y]) <= 0)
                    wraps++;
                y = nx;
                len++;
            } while (y != x && len <= n);
            if (wraps != 1) {
                short_id(&s->vid[x], a);
                snprintf(why, why_len, "the ring through %s wraps %zu times (%zu vnodes)", a, wraps,
                         len);
                s->stamp_gen = walk;
                return -1;
            }
        }
    }
    s->stamp_gen = walk;
    if (cycles != 1) {
        snprintf(why, why_len, "%zu rings among %zu members", cycles, members);
        return -1;
    }
    return 0;
}

static void refresh_members(struct sim *s, unsigned node)
{
    struct sim_node *nd = s->nodes[node];
    for (unsigned v = 0; v < V(s); v++) {
        size_t g = (size_t)node * V(s) + v;
        /* A node that is leaving is on its way out: it no longer counts as
         * a member that others may rely on. */
        uint8_t m = nd->alive && !nd->leaving && nd->c && chord_vnode_joined(nd->c, v);
        if (m != s->member[g]) {
            s->member[g] = m;
            s->sorted_dirty = true;
            s->members_changed = true;
        }
    }
}

void sim_check_after(struct sim *s, unsigned node)
{
    bool ring_dirty = false;

    refresh_members(s, node);
    if (s->cfg.check == SIM_CHECK_NONE)
        return;
    if (s->nodes[node]->alive) {
        for (unsigned v = 0; v < V(s); v++) {
            size_t g = (size_t)node * V(s) + v;
            if (!s->member[g])
                continue;
            check_local(s, g);
            int32_t b = best_live(s, g);
            if (b != s->best[g]) {
                s->best[g] = b;
                ring_dirty = true;
            }
        }
    }
    if (s->members_changed) {
        size_t n = (size_t)s->nnodes * V(s);
        for (size_t g = 0; g < n; g++)
            s->best[g] = s->member[g] ? best_live(s, g) : -1;
        s->members_changed = false;
        ring_dirty = true;
    }
    if (ring_dirty && s->cfg.check == SIM_CHECK_FULL && !s->degraded) {
        char why[256];
        if (check_ring(s, why, sizeof(why)) != 0)
            sim_violation(s, "%s", why);
    }
}

int sim_check_now(struct sim *s, char *why, size_t why_len)
{
    size_t n = (size_t)s->nnodes * V(s);
    size_t before = s->nviolations;
    char buf[256];

    for (size_t g = 0; g < n; g++) {
        if (!s->member[g])
            continue;
        check_local(s, g);
        s->best[g] = best_live(s, g);
    }
    s->members_changed = false;
    if (s->nviolations != before) {
        snprintf(why, why_len, "%s", s->first_violation);
        return -1;
    }
    if (check_ring(s, buf, sizeof(buf)) != 0) {
        snprintf(why, why_len, "%s", buf);
        return -1;
    }
    return 0;
}

static int cmp_sorted(const void *a, const void *b, void *ctx)
{
    const struct sim *s = ctx;
    return id_cmp(&s->vid[*(const uint32_t *)a], &s->vid[*(const uint32_t *)b]);
}

static void sort_members(struct sim *s)
{
    if (!s->sorted_dirty)
        return;
    size_t n = (size_t)s->nnodes * V(s), k = 0;
    for (size_t g = 0; g < n; g++)
        if (s->member[g])
            s->sorted[k++] = (uint32_t)g;
    qsort_r(s->sorted, k, sizeof(*s->sorted), cmp_sorted, s);
    s->nsorted = k;
    s->sorted_dirty = false;
}

bool sim_ring_is_ideal(struct sim *s, char *why, size_t why_len)
{
    char a[13], b[13];
    char dummy[8];

    if (!why) {
        why = dummy;
        why_len = sizeof(dummy);
    }
    /* Every live node must be in: a join still under way is not ideal. */
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct sim_node *nd = s->nodes[i];
        if (!nd->alive || nd->leaving)
            continue;
        for (unsigned v = 0; v < V(s); v++) {
            if (!chord_vnode_joined(nd->c, v)) {
                snprintf(why, why_len, "node %s vnode %u is still joining", nd->name, v);
                return false;
            }
        }
    }
    sort_members(s);
    size_t m = s->nsorted;
    if (m == 0) {
        snprintf(why, why_len, "no members");
        return false;
    }
    size_t want = m - 1 < s->cfg.succ_len ? m - 1 : s->cfg.succ_len;
    for (size_t p = 0; p < m; p++) {
        uint32_t g = s->sorted[p];
        struct chord *c = s->nodes[g / V(s)]->c;
        unsigned v = g % V(s);
        const struct chord_peer *list;
        size_t n = chord_vnode_successors(c, v, &list);
        short_id(&s->vid[g], a);
        if (n != want) {
            snprintf(why, why_len, "vnode %s has %zu successors, want %zu", a, n, want);
            return false;
        }
        for (size_t j = 0; j < n; j++) {
            uint32_t e = s->sorted[(p + 1 + j) % m];
            if (!id_eq(&list[j].id, &s->vid[e])) {
                short_id(&list[j].id, b);
                snprintf(why, why_len, "vnode %s successor %zu is %s, not the next member", a, j,
                         b);
                return false;
            }
        }
        struct chord_peer pred;
        bool has = chord_vnode_predecessor(c, v, &pred);
        if (m == 1) {
            if (has) {
                snprintf(why, why_len, "lone vnode %s still has a predecessor", a);
                return false;
            }
            continue;
        }
        uint32_t e = s->sorted[(p + m - 1) % m];
        if (!has || !id_eq(&pred.id, &s->vid[e])) {
            snprintf(why, why_len, "vnode %s predecessor is %s", a, has ? "wrong" : "missing");
            return false;
        }
    }
    return true;
}

bool sim_true_successor(struct sim *s, const struct id *key, struct chord_peer *out)
{
    sort_members(s);
    size_t m = s->nsorted;
    if (m == 0)
        return false;
    size_t lo = 0, hi = m;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(&s->vid[s->sorted[mid]], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t g = s->sorted[lo == m ? 0 : lo];
    out->id = s->vid[g];
    out->addr = s->nodes[g / V(s)]->addr;
    return true;
}

unsigned sim_check_replica_set(struct sim *s, const struct id *key, unsigned k, unsigned *out)
{
    sort_members(s);
    size_t m = s->nsorted, lo = 0, hi = m;
    unsigned got = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(&s->vid[s->sorted[mid]], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* From the true successor on, each physical node once (vnodes of a node
     * already chosen are skipped, as chord_vnode_replica_set does). */
    for (size_t j = 0; j < m && got < k; j++) {
        unsigned node = s->sorted[(lo + j) % m] / V(s);
        bool dup = false;
        for (unsigned t = 0; t < got && !dup; t++)
            dup = out[t] == node;
        if (!dup)
            out[got++] = node;
    }
    return got;
}

/* After a crash or leave the fail rule allowed because a single member
 * survives: that member is a ring of one until it finds live nodes. */
void sim_fail_rule_mark_lone(struct sim *s, const unsigned *nodes, size_t n)
{
    size_t total = (size_t)s->nnodes * V(s), remaining = 0, last = 0;
    for (size_t k = 0; k < n; k++)
        s->victim[nodes[k]] = 1;
    mark_leaving(s);
    for (size_t g = 0; g < total; g++) {
        if (s->member[g] && !s->victim[g / V(s)]) {
            remaining++;
            last = g;
        }
    }
    if (remaining == 1)
        s->lone[last] = 1;
    memset(s->victim, 0, s->nnodes);
}

/* Nodes still leaving will be gone soon: the fail rule counts them with the
 * victims. */
static void mark_leaving(struct sim *s)
{
    for (unsigned i = 0; i < s->nnodes; i++)
        if (s->nodes[i]->alive && s->nodes[i]->leaving)
            s->victim[i] = 1;
}

/* The fail rule: crashing `nodes` must leave every other member with a live
 * successor that is not crashing too (or leave a single member). */
bool sim_fail_rule_allows(struct sim *s, const unsigned *nodes, size_t n)
{
    size_t total = (size_t)s->nnodes * V(s), remaining = 0;
    bool ok = true;

    for (size_t k = 0; k < n; k++)
        s->victim[nodes[k]] = 1;
    mark_leaving(s);
    size_t before = 0;
    for (size_t g = 0; g < total; g++) {
        before += s->member[g];
        if (s->member[g] && !s->victim[g / V(s)])
            remaining++;
    }
    /* The ring itself may not vanish: at least one member stays. */
    if (before > 0 && remaining == 0)
        ok = false;
    /* Lists in flight count even when one member would be left: the
     * joiner they are meant for would be a second one. */
    if (ok) {
        inflight_collect(s);
        ok = inflight_ok(s);
    }
    for (size_t g = 0; g < total && ok && remaining > 1; g++) {
        if (!s->member[g] || s->victim[g / V(s)])
            continue;
        const struct chord_peer *list;
        size_t len = chord_vnode_successors(s->nodes[g / V(s)]->c, (unsigned)(g % V(s)), &list);
        bool has = false;
        for (size_t i = 0; i < len && !has; i++) {
            int32_t t = gv_of(s, &list[i]);
            has = t >= 0 && s->member[t] && !s->victim[t / V(s)];
        }
        ok = has;
    }
    memset(s->victim, 0, s->nnodes);
    return ok;
}

/* Successor lists on their way to a member (PREDECESSOR_REPLY, LEAVE) will
 * replace or splice into its list when they arrive. Zave's steps are atomic
 * and have no such messages; the faithful fail rule for message passing
 * is that a crash must leave a live entry in those lists too. Each one
 * becomes a constraint: the member vnodes it names. */
static void inflight_collect(struct sim *s)
{
    struct chord_msg *m = malloc(sizeof(*m));
    s->ncons = 0;
    if (!m)
        return;
    for (size_t i = 0; i < s->nev; i++) {
        const struct sim_event *ev = &s->ev[i];
        if (ev->kind != SIM_EV_MSG || chord_msg_decode(ev->data, ev->len, m) != 0)
            continue;
        if (m->type != CHORD_MSG_PREDECESSOR_REPLY && m->type != CHORD_MSG_LEAVE)
            continue;
        struct chord_peer dst = {.id = m->dst, .addr = s->nodes[ev->node]->addr};
        /* Joiners too: the reply that completes a join makes its list a
         * member's. */
        int32_t d = gv_of(s, &dst);
        if (d < 0 || !s->nodes[d / V(s)]->alive)
            continue;
        if (s->ncons == s->cap_cons) {
            size_t cap = s->cap_cons ? 2 * s->cap_cons : 64;
            struct sim_constraint *nc = realloc(s->cons, cap * sizeof(*nc));
            if (!nc)
                break;
            s->cons = nc;
            s->cap_cons = cap;
        }
        struct sim_constraint *c = &s->cons[s->ncons];
        /* The list as the receiver will build it: from its own position,
         * in ring order, stopping at itself, cut to r (chord/table.c). */
        struct chord_peer cand[CHORD_SUCC_MAX + 1];
        size_t nc = 0;
        if (m->type == CHORD_MSG_PREDECESSOR_REPLY)
            cand[nc++] = m->src;
        for (unsigned k = 0; k < m->npeers; k++)
            cand[nc++] = m->peers[k];
        struct id last, dist;
        size_t kept = 0;
        c->n = 0;
        for (size_t k = 0; k < nc && kept < s->cfg.succ_len; k++) {
            if (id_eq(&cand[k].id, &s->vid[d]))
                break;
            id_distance(&dist, &s->vid[d], &cand[k].id);
            if (kept > 0 && id_cmp(&dist, &last) <= 0)
                continue;
            last = dist;
            kept++;
            int32_t t = gv_of(s, &cand[k]);
            if (t >= 0 && s->member[t])
                c->gv[c->n++] = (uint32_t)t;
        }
        /* A list with no live member left cannot be saved by any choice. */
        if (c->n > 0)
            s->ncons++;
    }
    free(m);
}

static bool inflight_ok(const struct sim *s)
{
    for (size_t i = 0; i < s->ncons; i++) {
        const struct sim_constraint *c = &s->cons[i];
        bool live = false;
        for (uint32_t k = 0; k < c->n && !live; k++)
            live = !s->victim[c->gv[k] / V(s)];
        if (!live)
            return false;
    }
    return true;
}

/* Greedy choice of many victims at once. fr_cnt[g] counts member g's live
 * successors that are not victims; fr_rev is a CSR index listing, for each
 * target t, the members that point at it: fr_rev[fr_rev_start[t] ..
 * fr_rev_start[t+1]). */
static size_t for_each_edge(struct sim *s, bool fill, uint32_t *pos)
{
    size_t total = (size_t)s->nnodes * V(s), edges = 0;
    for (size_t g = 0; g < total; g++) {
        if (!s->member[g])
            continue;
        const struct chord_peer *list;
        size_t len = chord_vnode_successors(s->nodes[g / V(s)]->c, (unsigned)(g % V(s)), &list);
        for (size_t i = 0; i < len; i++) {
            int32_t t = gv_of(s, &list[i]);
            if (t < 0 || !s->member[t])
                continue;
            edges++;
            if (fill) {
                s->fr_rev[pos[t]++] = (uint32_t)g;
            } else {
                s->fr_cnt[g]++;
                s->fr_rev_start[t + 1]++;
            }
        }
    }
    return edges;
}

void sim_fail_rule_begin(struct sim *s)
{
    size_t total = (size_t)s->nnodes * V(s);

    free(s->fr_rev_start);
    free(s->fr_rev);
    s->fr_rev = NULL;
    s->fr_rev_start = calloc(total + 1, sizeof(*s->fr_rev_start));
    uint32_t *pos = malloc((total + 1) * sizeof(*pos));
    if (!s->fr_rev_start || !pos) {
        free(pos);
        return;
    }
    memset(s->fr_cnt, 0, total * sizeof(*s->fr_cnt));
    size_t edges = for_each_edge(s, false, NULL);
    for (size_t t = 0; t < total; t++)
        s->fr_rev_start[t + 1] += s->fr_rev_start[t];
    s->fr_rev = malloc((edges + 1) * sizeof(*s->fr_rev));
    if (s->fr_rev) {
        memcpy(pos, s->fr_rev_start, (total + 1) * sizeof(*pos));
        for_each_edge(s, true, pos);
    }
    free(pos);
    memset(s->victim, 0, s->nnodes);
    mark_leaving(s);
    inflight_collect(s);
}

bool sim_fail_rule_try_add(struct sim *s, unsigned node)
{
    if (!s->fr_rev)
        return false;
    /* The ring itself may not vanish: at least one member node stays. */
    size_t total = (size_t)s->nnodes * V(s), others = 0;
    for (size_t g = 0; g < total; g++)
        others += s->member[g] && !s->victim[g / V(s)] && g / V(s) != node;
    if (others == 0)
        return false;
    /* Every member pointing at one of this node's vnodes must keep a live
     * successor that is not a victim. */
    for (unsigned v = 0; v < V(s); v++) {
        size_t t = (size_t)node * V(s) + v;
        for (uint32_t k = s->fr_rev_start[t]; k < s->fr_rev_start[t + 1]; k++) {
            uint32_t g = s->fr_rev[k];
            if (s->victim[g / V(s)] || g / V(s) == node)
                continue;
            unsigned lose = 0;
            for (unsigned w = 0; w < V(s); w++) {
                size_t t2 = (size_t)node * V(s) + w;
                for (uint32_t q = s->fr_rev_start[t2]; q < s->fr_rev_start[t2 + 1]; q++)
                    lose += s->fr_rev[q] == g;
            }
            if (s->fr_cnt[g] <= lose)
                return false;
        }
    }
    s->victim[node] = 1;
    if (!inflight_ok(s)) {
        s->victim[node] = 0;
        return false;
    }
    for (unsigned v = 0; v < V(s); v++) {
        size_t t = (size_t)node * V(s) + v;
        for (uint32_t k = s->fr_rev_start[t]; k < s->fr_rev_start[t + 1]; k++)
            s->fr_cnt[s->fr_rev[k]]--;
    }
    return true;
}

void sim_fail_rule_end(struct sim *s)
{
    memset(s->victim, 0, s->nnodes);
    free(s->fr_rev);
    s->fr_rev = NULL;
    free(s->fr_rev_start);
    s->fr_rev_start = NULL;
}

int sim_lookup_acc_init(struct sim_lookup_acc *a)
{
    memset(a, 0, sizeof(*a));
    a->ms_hist = calloc(SIM_MS_HIST + 1, sizeof(*a->ms_hist));
    return a->ms_hist ? 0 : -ENOMEM;
}

void sim_lookup_record(struct sim *s, const struct chord_lookup_result *res)
{
    struct sim_lookup_acc *a = s->lk;
    struct chord_peer truth;

    a->done++;
    if (res->status != 0) {
        a->failed++;
        return;
    }
    if (sim_true_successor(s, &res->key, &truth) && id_eq(&truth.id, &res->succ.id))
        a->ok++;
    else
        a->wrong++;
    if (res->iterative)
        a->iterative++;
    a->answered++;
    a->hops_sum += res->hops;
    a->hop_hist[res->hops <= CHORD_MAX_HOPS ? res->hops : CHORD_MAX_HOPS + 1]++;
    a->ms_sum += res->elapsed_ms;
    a->ms_hist[res->elapsed_ms < SIM_MS_HIST ? res->elapsed_ms : SIM_MS_HIST]++;
}

static unsigned percentile(const uint64_t *hist, size_t nb, uint64_t total, double q)
{
    uint64_t want = (uint64_t)(q * (double)total), acc = 0;
    for (size_t i = 0; i < nb; i++) {
        acc += hist[i];
        if (acc > want)
            return (unsigned)i;
    }
    return (unsigned)(nb - 1);
}

void sim_lookup_acc_finish(struct sim_lookup_acc *a, struct sim_lookup_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->issued = a->issued;
    out->ok = a->ok;
    out->wrong = a->wrong;
    out->failed = a->failed + (a->issued - a->done);
    out->iterative = a->iterative;
    if (a->answered) {
        out->mean_hops = (double)a->hops_sum / (double)a->answered;
        out->p1_hops = percentile(a->hop_hist, CHORD_MAX_HOPS + 2, a->answered, 0.01);
        out->p50_hops = percentile(a->hop_hist, CHORD_MAX_HOPS + 2, a->answered, 0.50);
        out->p99_hops = percentile(a->hop_hist, CHORD_MAX_HOPS + 2, a->answered, 0.99);
        for (size_t i = 0; i < CHORD_MAX_HOPS + 2; i++)
            if (a->hop_hist[i])
                out->max_hops = (unsigned)i;
        out->mean_ms = (double)a->ms_sum / (double)a->answered;
        uint64_t want = (uint64_t)(0.99 * (double)a->answered), acc = 0;
        for (size_t i = 0; i <= SIM_MS_HIST; i++) {
            acc += a->ms_hist[i];
            if (acc > want) {
                out->p99_ms = (unsigned)i;
                break;
            }
        }
    }
    free(a->ms_hist);
    a->ms_hist = NULL;
}

void sim_dump(struct sim *s, FILE *f)
{
    size_t total = (size_t)s->nnodes * V(s);
    char a[13], b[13];
    fprintf(f, "--- state at t=%llu (seed %llu)\n", (unsigned long long)s->now,
            (unsigned long long)s->cfg.seed);
    for (size_t g = 0; g < total; g++) {
        struct sim_node *nd = s->nodes[g / V(s)];
        if (!nd->alive)
            continue;
        unsigned v = (unsigned)(g % V(s));
        short_id(&s->vid[g], a);
        fprintf(f, "%s %s/%u %s best=%d", a, nd->name, v,
                s->member[g] ? "member" : (chord_vnode_joined(nd->c, v) ? "joined?" : "joining"),
                (int)s->best[g]);
        struct chord_peer pred;
        if (chord_vnode_predecessor(nd->c, v, &pred)) {
            short_id(&pred.id, b);
            fprintf(f, " pred=%s", b);
        }
        const struct chord_peer *list;
        size_t n = chord_vnode_successors(nd->c, v, &list);
        fprintf(f, " succ=[");
        for (size_t i = 0; i < n; i++) {
            int32_t t = gv_of(s, &list[i]);
            short_id(&list[i].id, b);
            fprintf(f, "%s%s%s", i ? " " : "", b, t >= 0 && s->member[t] ? "" : "(dead)");
        }
        fprintf(f, "]\n");
    }
}
