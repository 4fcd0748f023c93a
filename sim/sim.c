/* sim.c — the deterministic simulator: event queue, nodes, faults, runs. */
#include "sim/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SIM_PORT 4000

/* xoshiro256** seeded through splitmix64: small, fast, and the same
 * sequence on every platform. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_random(struct sim *s)
{
    uint64_t *st = s->rng;
    uint64_t result = rotl(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

uint64_t sim_random_below(struct sim *s, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
    do
        v = sim_random(s);
    while (v >= limit);
    return v % n;
}

double sim_random_unit(struct sim *s)
{
    return (double)(sim_random(s) >> 11) * (1.0 / 9007199254740992.0);
}

void sim_config_default(struct sim_config *cfg, uint64_t seed)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = seed;
    cfg->vnodes = 1;
    cfg->succ_len = CHORD_SUCC_LEN;
    cfg->latency = SIM_LAT_UNIFORM;
    cfg->lat_min_ms = 5;
    cfg->lat_max_ms = 50;
    cfg->check = SIM_CHECK_FULL;
    cfg->log_level = LOG_INFO;
    cfg->replicas = BS_REPLICAS_DEFAULT;
    cfg->capacity = 1ull << 30;
    cfg->sync_period_ms = BS_SYNC_PERIOD_MS;
    cfg->persist_delay_ms = 2;
    cfg->read_delay_ms = 1;
}

/* Trace hash: every processed event folds in. */
static void trace_mix(struct sim *s, uint64_t v)
{
    s->trace = (s->trace ^ v) * 0x100000001b3ull;
    s->trace ^= s->trace >> 29;
}

static void trace_bytes(struct sim *s, const uint8_t *p, size_t n)
{
    /* Four independent lanes, so the multiplies overlap: every frame of a
     * run goes through here. */
    uint64_t h[4] = {0xcbf29ce484222325ull ^ n, 0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull,
                     0x94d049bb133111ebull};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * k, 8);
            h[k] = (h[k] ^ w) * 0x9e3779b97f4a7c15ull;
            h[k] ^= h[k] >> 31;
        }
    }
    for (; i < n; i++)
        h[0] = (h[0] ^ p[i]) * 0x100000001b3ull;
    trace_mix(s, h[0] ^ rotl(h[1], 17) ^ rotl(h[2], 31) ^ rotl(h[3], 47));
}

/* The event queue: a binary heap ordered by (time, sequence). */
static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static int heap_push(struct sim *s, struct sim_event ev)
{
    if (s->nev == s->cap_ev) {
        size_t cap = s->cap_ev ? s->cap_ev * 2 : 1024;
        struct sim_event *ne = realloc(s->ev, cap * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        s->ev = ne;
        s->cap_ev = cap;
    }
    ev.seq = s->next_seq++;
    size_t i = s->nev++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&ev, &s->ev[parent]))
            break;
        s->ev[i] = s->ev[parent];
        i = parent;
    }
    s->ev[i] = ev;
    s->queued_bytes += ev.len;
    return 0;
}

int sim_event_push(struct sim *s, struct sim_event ev)
{
    return heap_push(s, ev);
}

static struct sim_event heap_pop(struct sim *s)
{
    struct sim_event top = s->ev[0];
    struct sim_event last = s->ev[--s->nev];
    size_t i = 0, n = s->nev;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sim_event *best = &last;
        if (l < n && ev_before(&s->ev[l], best)) {
            m = l;
            best = &s->ev[l];
        }
        if (r < n && ev_before(&s->ev[r], best))
            m = r;
        if (m == i)
            break;
        s->ev[i] = s->ev[m];
        i = m;
    }
    if (n > 0)
        s->ev[i] = last;
    s->queued_bytes -= top.len;
    return top;
}

void sim_violation(struct sim *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    s->nviolations++;
    if (s->nviolations > 1)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(s->first_violation, sizeof(s->first_violation),
             "seed %" PRIu64 " t=%" PRIu64 "ms event %" PRIu64 ": %s", s->cfg.seed, s->now,
             s->events, msg);
    /* COOPFS_SIM_DUMP=1 prints every vnode's tables at the first violation. */
    const char *dump = getenv("COOPFS_SIM_DUMP");
    if (dump && *dump == '1') {
        fprintf(stderr, "VIOLATION %s\n", s->first_violation);
        sim_dump(s, stderr);
    }
}

/* Node addresses: node i lives at 127.a.b.c:4000 with a.b.c = i + 1. */
static void node_addr(unsigned i, struct addr *out)
{
    uint32_t n = i + 1;
    addr_v4(out, 127, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, SIM_PORT);
}

int sim_node_of_addr(const struct sim *s, const struct addr *a)
{
    if (a->family != ADDR_V4 || a->ip[0] != 127 || a->port != SIM_PORT)
        return -1;
    uint32_t n = (uint32_t)a->ip[1] << 16 | (uint32_t)a->ip[2] << 8 | a->ip[3];
    if (n == 0 || n > s->nnodes)
        return -1;
    return (int)(n - 1);
}

/* With blocks, a scenario calls a node's bs directly (or from another
 * node's callback): whatever that arms must be scheduled, so a node that
 * touches its env outside its own event is rescheduled afterwards. */
static void mark_touched(struct sim_node *n)
{
    struct sim *s = n->s;
    if (!s->cfg.blocks || s->current == (int)n->index || n->touched)
        return;
    if (s->ntouched == s->cap_touched) {
        size_t cap = s->cap_touched ? 2 * s->cap_touched : 64;
        unsigned *t = realloc(s->touched, cap * sizeof(*t));
        if (!t)
            return;
        s->touched = t;
        s->cap_touched = cap;
    }
    n->touched = true;
    s->touched[s->ntouched++] = n->index;
}

static void flush_touched(struct sim *s)
{
    /* sim_after_event may touch further nodes (a leaver's bs_free runs
     * callbacks): the list may grow while it is walked. */
    int cur = s->current;
    for (size_t k = 0; k < s->ntouched; k++) {
        unsigned i = s->touched[k];
        s->nodes[i]->touched = false;
        s->current = (int)i; /* its own deadline is no new work */
        sim_after_event(s, i);
    }
    s->current = cur;
    s->ntouched = 0;
}

static uint64_t sim_env_now(void *ctx)
{
    struct sim_node *n = ctx;
    mark_touched(n);
    return n->s->now;
}

static uint64_t sim_env_wall(void *ctx)
{
    struct sim_node *n = ctx;
    mark_touched(n);
    return SIM_WALL_EPOCH_MS + n->s->now;
}

static void sim_env_random(void *ctx, void *buf, size_t len)
{
    struct sim_node *n = ctx;
    uint8_t *p = buf;
    mark_touched(n);
    while (len > 0) {
        uint64_t v = sim_random(n->s);
        size_t k = len < 8 ? len : 8;
        memcpy(p, &v, k);
        p += k;
        len -= k;
    }
}

static uint64_t sample_latency(struct sim *s)
{
    const struct sim_config *c = &s->cfg;
    switch (c->latency) {
    case SIM_LAT_FIXED: return c->lat_min_ms;
    case SIM_LAT_EXP: {
        double u = sim_random_unit(s);
        double x = -log(1.0 - u) * (double)c->lat_max_ms;
        if (x > 20.0 * c->lat_max_ms)
            x = 20.0 * c->lat_max_ms;
        return c->lat_min_ms + (uint64_t)x;
    }
    case SIM_LAT_UNIFORM:
    default:
        if (c->lat_max_ms <= c->lat_min_ms)
            return c->lat_min_ms;
        return c->lat_min_ms + sim_random_below(s, c->lat_max_ms - c->lat_min_ms + 1);
    }
}

static void sim_env_send(void *ctx, const struct addr *to, const void *msg, size_t len)
{
    struct sim_node *from = ctx;
    struct sim *s = from->s;
    int dst = sim_node_of_addr(s, to);

    mark_touched(from);
    s->frames_sent++;
    if (dst < 0)
        return;
    if (s->partitioned && s->nodes[dst]->group != from->group)
        return;
    if (s->loss > 0 && sim_random_unit(s) < s->loss) {
        s->frames_lost++;
        if (s->bs_trace)
            sim_blocks_trace(s, "lost", from->index, (unsigned)dst, msg, len);
        return;
    }
    unsigned copies = (s->dup > 0 && sim_random_unit(s) < s->dup) ? 2 : 1;
    for (unsigned k = 0; k < copies; k++) {
        uint64_t delay = sample_latency(s);
        if (s->reorder > 0 && sim_random_unit(s) < s->reorder)
            delay += sim_random_below(s, 4ull * s->cfg.lat_max_ms + 1);
        uint8_t *copy = malloc(len);
        if (!copy)
            return;
        memcpy(copy, msg, len);
        struct sim_event ev = {
            .time = s->now + delay,
            .node = (uint32_t)dst,
            .from = from->index,
            .kind = SIM_EV_MSG,
            .len = (uint32_t)len,
            .data = copy,
        };
        if (heap_push(s, ev) != 0)
            free(copy);
    }
}

static void on_lookup_done(void *ctx, uint64_t handle, const struct chord_lookup_result *res)
{
    struct sim_node *n = ctx;
    if (n->bs && bs_on_lookup_done(n->bs, handle, res))
        return;
    if (n->s->lk)
        sim_lookup_record(n->s, res);
}

static int node_start(struct sim *s, unsigned i, int bootstrap)
{
    struct sim_node *n = s->nodes[i];
    struct chord_config cfg;
    struct chord_callbacks cb = {.ctx = n, .lookup_done = on_lookup_done};

    chord_config_default(&cfg, &n->addr);
    if (s->cfg.blocks)
        cb.update = sim_blocks_on_update;
    cfg.vnodes = s->cfg.vnodes;
    cfg.succ_len = s->cfg.succ_len;
    if (s->cfg.stabilize_ms)
        cfg.stabilize_ms = s->cfg.stabilize_ms;
    n->env.now_ms = sim_env_now;
    n->env.send = sim_env_send;
    n->env.random = sim_env_random;
    n->env.wall_ms = sim_env_wall;
    n->env.ctx = n;
    int rc = chord_new(&cfg, &n->env, &cb, s->cfg.log ? &n->lg : NULL, &n->c);
    if (rc)
        return rc;
    if (s->cfg.blocks && (rc = sim_blocks_node_start(s, i)) != 0) {
        chord_free(n->c);
        n->c = NULL;
        return rc;
    }
    n->bootstrap = bootstrap;
    if (bootstrap < 0)
        rc = chord_create(n->c);
    else
        rc = chord_join(n->c, &s->nodes[bootstrap]->addr);
    if (rc) {
        sim_blocks_node_stop(s, i);
        chord_free(n->c);
        n->c = NULL;
        return rc;
    }
    n->alive = true;
    n->leaving = false;
    n->scheduled = UINT64_MAX;
    sim_after_event(s, i);
    return 0;
}

int sim_new(const struct sim_config *cfg, struct sim **out)
{
    struct sim *s;

    if (!cfg || cfg->vnodes < 1 || cfg->vnodes > CHORD_MAX_VNODES || cfg->succ_len < 2 ||
        cfg->succ_len > CHORD_SUCC_MAX || cfg->loss < 0 || cfg->loss > 1 || cfg->dup < 0 ||
        cfg->dup > 1 || cfg->reorder < 0 || cfg->reorder > 1 ||
        (cfg->blocks && (cfg->replicas < 1 || cfg->replicas > BS_REPLICAS_MAX)))
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    uint64_t x = cfg->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    s->trace = 0xcbf29ce484222325ull;
    s->loss = cfg->loss;
    s->dup = cfg->dup;
    s->reorder = cfg->reorder;
    s->stabilize_ms = cfg->stabilize_ms ? cfg->stabilize_ms : CHORD_STABILIZE_MS;
    s->now = 1000; /* a non-zero epoch, like a real clock */
    s->current = -1;
    const char *tr = getenv("COOPFS_SIM_BS_TRACE");
    s->bs_trace = cfg->blocks && tr && *tr == '1';
    *out = s;
    return 0;
}

void sim_free(struct sim *s)
{
    if (!s)
        return;
    /* Client operations fail with -ECANCELED while the sim is still whole:
     * their callbacks may look at it. */
    for (unsigned i = 0; i < s->nnodes; i++)
        sim_blocks_node_stop(s, i);
    for (size_t i = 0; i < s->nev; i++)
        free(s->ev[i].data);
    free(s->ev);
    for (unsigned i = 0; i < s->nnodes; i++) {
        chord_free(s->nodes[i]->c);
        sim_blocks_node_free(s->nodes[i]);
        free(s->nodes[i]);
    }
    free(s->nodes);
    free(s->touched);
    sim_check_free(s);
    free(s);
}

static int grow_nodes(struct sim *s)
{
    if (s->nnodes < s->cap_nodes)
        return 0;
    size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 64;
    struct sim_node **nn = realloc(s->nodes, cap * sizeof(*nn));
    if (!nn)
        return -ENOMEM;
    s->nodes = nn;
    s->cap_nodes = cap;
    return sim_check_grow(s, cap);
}

int sim_add_node(struct sim *s, int bootstrap)
{
    if (bootstrap >= 0 && ((unsigned)bootstrap >= s->nnodes || !s->nodes[bootstrap]->alive))
        return -EINVAL;
    if (s->nnodes >= (1u << 24) - 2)
        return -ENOSPC;
    int rc = grow_nodes(s);
    if (rc)
        return rc;
    struct sim_node *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    unsigned i = s->nnodes++;
    s->nodes[i] = n;
    n->s = s;
    n->index = i;
    node_addr(i, &n->addr);
    addr_format(&n->addr, n->name, sizeof(n->name));
    log_init(&n->lg, s->cfg.log, s->cfg.log_level);
    n->lg.now_ms = sim_env_now;
    n->lg.ctx = n;
    sim_check_node_added(s, i);
    rc = node_start(s, i, bootstrap);
    if (rc) {
        s->nnodes--;
        sim_blocks_node_free(n);
        free(n);
        return rc;
    }
    return (int)i;
}

static bool node_is_member(const struct sim *s, unsigned i)
{
    const struct sim_node *n = s->nodes[i];
    if (!n->alive || n->leaving)
        return false;
    for (unsigned v = 0; v < s->cfg.vnodes; v++)
        if (chord_vnode_joined(n->c, v))
            return true;
    return false;
}

/* A random live node with at least one joined vnode, or -1. */
int sim_random_member_node(struct sim *s)
{
    if (s->nnodes == 0)
        return -1;
    for (int tries = 0; tries < 64; tries++) {
        unsigned i = (unsigned)sim_random_below(s, s->nnodes);
        if (node_is_member(s, i))
            return (int)i;
    }
    unsigned start = (unsigned)sim_random_below(s, s->nnodes);
    for (unsigned k = 0; k < s->nnodes; k++) {
        unsigned i = (start + k) % s->nnodes;
        if (node_is_member(s, i))
            return (int)i;
    }
    return -1;
}

int sim_add_nodes(struct sim *s, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        int b = sim_random_member_node(s);
        /* No member at all: a new ring only if nobody is alive; otherwise
         * join through any live node, whose own join will complete. */
        if (b < 0 && sim_live_count(s) > 0) {
            for (unsigned i = 0; i < s->nnodes && b < 0; i++)
                if (s->nodes[i]->alive && !s->nodes[i]->leaving)
                    b = (int)i;
        }
        int rc = sim_add_node(s, b);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void node_kill(struct sim *s, unsigned i)
{
    struct sim_node *n = s->nodes[i];
    sim_blocks_node_stop(s, i);
    chord_free(n->c);
    n->c = NULL;
    n->alive = false;
    n->leaving = false;
    n->scheduled = UINT64_MAX;
    sim_check_node_died(s, i);
    /* A node still joining through the one that died would knock on a dead
     * door forever: like an operator, give it another member's address. */
    for (unsigned k = 0; k < s->nnodes; k++) {
        struct sim_node *j = s->nodes[k];
        if (!j->alive || j->bootstrap != (int)i)
            continue;
        bool joining = false;
        for (unsigned v = 0; v < s->cfg.vnodes; v++)
            joining |= !chord_vnode_joined(j->c, v);
        int b = joining ? sim_random_member_node(s) : -1;
        if (b >= 0 && chord_join(j->c, &s->nodes[b]->addr) == 0) {
            j->bootstrap = b;
            sim_after_event(s, k);
        }
    }
}

int sim_crash(struct sim *s, const unsigned *nodes, size_t n, bool respect_fail_rule)
{
    for (size_t k = 0; k < n; k++)
        if (nodes[k] >= s->nnodes || !s->nodes[nodes[k]]->alive)
            return -EINVAL;
    if (respect_fail_rule && !sim_fail_rule_allows(s, nodes, n))
        return -EPERM;
    if (respect_fail_rule)
        sim_fail_rule_mark_lone(s, nodes, n);
    if (!respect_fail_rule)
        s->degraded = true;
    for (size_t k = 0; k < n; k++) {
        trace_mix(s, 0xdead0000u ^ nodes[k]);
        node_kill(s, nodes[k]);
    }
    return 0;
}

size_t sim_crash_random(struct sim *s, size_t n)
{
    unsigned *victims = malloc((n + 1) * sizeof(*victims));
    unsigned *order = malloc(s->nnodes * sizeof(*order));
    size_t nv = 0, no = 0;

    if (!victims || !order) {
        free(victims);
        free(order);
        return 0;
    }
    for (unsigned i = 0; i < s->nnodes; i++)
        if (s->nodes[i]->alive && !s->nodes[i]->leaving)
            order[no++] = i;
    for (size_t i = no; i > 1; i--) { /* Fisher-Yates */
        size_t j = sim_random_below(s, i);
        unsigned t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    sim_fail_rule_begin(s);
    for (size_t k = 0; k < no && nv < n; k++) {
        if (sim_fail_rule_try_add(s, order[k]))
            victims[nv++] = order[k];
    }
    sim_fail_rule_end(s);
    for (size_t k = 0; k < nv; k++) {
        trace_mix(s, 0xdead0000u ^ victims[k]);
        node_kill(s, victims[k]);
    }
    free(victims);
    free(order);
    return nv;
}

int sim_restart(struct sim *s, unsigned node)
{
    if (node >= s->nnodes || s->nodes[node]->alive)
        return -EINVAL;
    int b = sim_random_member_node(s);
    trace_mix(s, 0xbeef0000u ^ node);
    return node_start(s, node, b);
}

int sim_leave(struct sim *s, unsigned node)
{
    if (node >= s->nnodes || !s->nodes[node]->alive || s->nodes[node]->leaving)
        return -EINVAL;
    if (!s->degraded && s->cfg.check == SIM_CHECK_FULL) {
        if (!sim_fail_rule_allows(s, &node, 1))
            return -EPERM;
        sim_fail_rule_mark_lone(s, &node, 1);
    }
    s->nodes[node]->leaving = true;
    trace_mix(s, 0x1eaf0000u ^ node);
    if (s->nodes[node]->bs)
        bs_leave(s->nodes[node]->bs);
    chord_leave(s->nodes[node]->c);
    sim_after_event(s, node);
    return 0;
}

void sim_partition(struct sim *s, const uint8_t *group)
{
    for (unsigned i = 0; i < s->nnodes; i++)
        s->nodes[i]->group = group[i];
    s->partitioned = true;
    s->degraded = true;
    trace_mix(s, 0x9a27u);
}

void sim_heal(struct sim *s)
{
    for (unsigned i = 0; i < s->nnodes; i++)
        s->nodes[i]->group = 0;
    s->partitioned = false;
    s->loss = s->dup = s->reorder = 0;
    trace_mix(s, 0x4ea1u);
}

void sim_set_faults(struct sim *s, double loss, double dup, double reorder)
{
    s->loss = loss;
    s->dup = dup;
    s->reorder = reorder;
}

void sim_after_event(struct sim *s, unsigned i)
{
    struct sim_node *n = s->nodes[i];
    if (!n->alive)
        return;
    if (n->leaving && chord_has_left(n->c)) {
        node_kill(s, i);
        return;
    }
    uint64_t d = chord_next_deadline(n->c);
    if (n->bs) {
        uint64_t db = bs_next_deadline(n->bs);
        d = db < d ? db : d;
    }
    if (d < s->now)
        d = s->now;
    if (d < n->scheduled) {
        struct sim_event ev = {.time = d, .node = i, .kind = SIM_EV_TIMER};
        if (heap_push(s, ev) == 0)
            n->scheduled = d;
    }
    sim_check_after(s, i);
}

static void process(struct sim *s, struct sim_event *ev)
{
    struct sim_node *n = s->nodes[ev->node];

    s->events++;
    trace_mix(s, ev->time);
    trace_mix(s, (uint64_t)ev->kind << 32 | ev->node);
    switch (ev->kind) {
    case SIM_EV_MSG:
        trace_bytes(s, ev->data, ev->len);
        if (n->alive && !(s->partitioned && s->nodes[ev->from]->group != n->group)) {
            if (!n->bs || !sim_blocks_input(s, ev->node, ev))
                chord_input(n->c, &s->nodes[ev->from]->addr, ev->data, ev->len);
            sim_after_event(s, ev->node);
        }
        free(ev->data);
        break;
    case SIM_EV_TIMER:
        if (n->alive && n->scheduled == ev->time) {
            n->scheduled = UINT64_MAX;
            chord_tick(n->c);
            if (n->bs)
                bs_tick(n->bs);
            sim_after_event(s, ev->node);
        }
        break;
    case SIM_EV_LOOKUP: {
        /* Lookups are generated one at a time as they fall due, so that a
         * million of them do not sit in the queue at once. */
        struct id key;
        for (int b = 0; b < ID_BYTES; b += 8) {
            uint64_t r = sim_random(s);
            memcpy(key.b + b, &r, 8);
        }
        if (s->lk && s->lk_left > 0) {
            s->lk_left--;
            s->lk->issued++;
            if (s->lk_left > 0) {
                struct sim_event next = {
                    .time = s->now + (s->lk_gap ? sim_random_below(s, 2 * s->lk_gap + 1) : 0),
                    .kind = SIM_EV_LOOKUP,
                };
                heap_push(s, next);
            }
        }
        int node = sim_random_member_node(s);
        uint64_t h;
        if (node < 0 || chord_lookup(s->nodes[node]->c, &key, &h) != 0) {
            if (s->lk)
                s->lk->failed++, s->lk->done++;
            break;
        }
        trace_mix(s, (uint64_t)node);
        sim_after_event(s, (unsigned)node);
        break;
    }
    case SIM_EV_PERSIST:
        sim_blocks_persist_event(s, ev);
        free(ev->data);
        break;
    default: break;
    }
}

void sim_run_one(struct sim *s)
{
    struct sim_event ev = heap_pop(s);
    if (ev.time > s->now)
        s->now = ev.time;
    if (ev.kind != SIM_EV_LOOKUP)
        s->current = (int)ev.node;
    process(s, &ev);
    s->current = -1;
    if (s->ntouched)
        flush_touched(s);
    if (s->degraded && !s->partitioned && s->now >= s->next_ideal_check) {
        s->next_ideal_check = s->now + s->stabilize_ms;
        if (s->loss == 0 && sim_ring_is_ideal(s, NULL, 0))
            s->degraded = false;
    }
}

size_t sim_run_for(struct sim *s, uint64_t ms)
{
    uint64_t end = s->now + ms;
    if (s->ntouched)
        flush_touched(s);
    while (s->nev > 0 && s->ev[0].time <= end)
        sim_run_one(s);
    s->now = end;
    return s->nviolations;
}

int64_t sim_run_until(struct sim *s, bool (*cond)(void *ctx), void *ctx, uint64_t max_ms)
{
    uint64_t start = s->now, end = start + max_ms;
    if (s->ntouched)
        flush_touched(s);
    for (;;) {
        if (cond(ctx))
            return (int64_t)(s->now - start);
        if (s->nev == 0 || s->ev[0].time > end) {
            s->now = end;
            return -ETIMEDOUT;
        }
        sim_run_one(s);
    }
}

int64_t sim_run_until_ideal(struct sim *s, uint64_t max_ms)
{
    uint64_t start = s->now;
    for (;;) {
        if (sim_ring_is_ideal(s, NULL, 0)) {
            if (!s->partitioned && s->loss == 0)
                s->degraded = false;
            return (int64_t)(s->now - start);
        }
        if (s->now - start >= max_ms)
            return -ETIMEDOUT;
        sim_run_for(s, s->stabilize_ms);
    }
}

void sim_lookups(struct sim *s, uint64_t n, uint64_t spread_ms, struct sim_lookup_stats *out)
{
    struct sim_lookup_acc acc;
    if (sim_lookup_acc_init(&acc) != 0) {
        memset(out, 0, sizeof(*out));
        return;
    }
    s->lk = &acc;
    s->lk_left = n;
    s->lk_gap = n ? spread_ms / n : 0;
    if (n > 0) {
        struct sim_event first = {.time = s->now, .kind = SIM_EV_LOOKUP};
        heap_push(s, first);
    }
    uint64_t limit = s->now + spread_ms + CHORD_LOOKUP_MAX_MS + 10000;
    while ((s->lk_left > 0 || acc.done < acc.issued) && s->now < limit)
        sim_run_for(s, 100);
    s->lk_left = 0;
    s->lk = NULL;
    sim_lookup_acc_finish(&acc, out);
}

uint64_t sim_now(const struct sim *s)
{
    return s->now;
}

uint64_t sim_events(const struct sim *s)
{
    return s->events;
}

uint64_t sim_trace_hash(const struct sim *s)
{
    return s->trace;
}

uint64_t sim_seed(const struct sim *s)
{
    return s->cfg.seed;
}

unsigned sim_node_count(const struct sim *s)
{
    return s->nnodes;
}

unsigned sim_live_count(const struct sim *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nnodes; i++)
        n += s->nodes[i]->alive;
    return n;
}

bool sim_node_alive(const struct sim *s, unsigned node)
{
    return node < s->nnodes && s->nodes[node]->alive;
}

struct chord *sim_node_chord(struct sim *s, unsigned node)
{
    return node < s->nnodes ? s->nodes[node]->c : NULL;
}

size_t sim_violations(const struct sim *s, const char **first)
{
    if (first)
        *first = s->nviolations ? s->first_violation : NULL;
    return s->nviolations;
}

size_t sim_memory_bytes(const struct sim *s)
{
    size_t b = sizeof(*s) + s->nnodes * sizeof(struct sim_node) + s->cap_nodes * sizeof(void *) +
               s->cap_ev * sizeof(struct sim_event) + s->queued_bytes + sim_check_bytes(s);
    for (unsigned i = 0; i < s->nnodes; i++)
        if (s->nodes[i]->c)
            b += chord_memory_bytes(s->nodes[i]->c);
    return b + sim_blocks_bytes(s);
}
