/* simtest.c — helpers shared by the simulator scenarios (see simtest.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/simtest.h"

/* The base seed of the running file, for replay hints in failures. */
static uint64_t g_base;
static bool g_quiet;
/* Set while simtest_try runs: failures jump there instead of failing. */
static jmp_buf *g_catch;
static char g_caught[1024];

void simtest_set_quiet(bool quiet)
{
    g_quiet = quiet && simtest_env_u64("COOPFS_SIM_VERBOSE", 0) == 0;
}

uint64_t simtest_env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    char *end;

    if (!v || !*v)
        return dflt;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno || *end)
        return dflt;
    return (uint64_t)x;
}

uint64_t simtest_base_seed(uint64_t dflt)
{
    uint64_t base = simtest_env_u64("COOPFS_SIM_SEED", dflt);
    printf("# base seed %" PRIu64 " (%s)\n", base,
           base == dflt && !getenv("COOPFS_SIM_SEED") ? "default; set COOPFS_SIM_SEED to vary"
                                                      : "from COOPFS_SIM_SEED");
    fflush(stdout);
    g_base = base;
    return base;
}

bool simtest_selected(uint64_t seed)
{
    const char *only = getenv("COOPFS_SIM_ONLY");
    return !only || !*only || simtest_env_u64("COOPFS_SIM_ONLY", seed + 1) == seed;
}

struct sim *simtest_start(void **state, const struct sim_config *cfg, uint64_t base,
                          const char *scenario)
{
    struct sim *s = NULL;

    sim_free(*state);
    *state = NULL;
    g_base = base;
    /* COOPFS_SIM_LOG=debug|info|... sends every node's log to stderr, to
     * follow a replayed failure; logging draws no random numbers, so the
     * run stays the same. */
    struct sim_config c = *cfg;
    const char *lvl = getenv("COOPFS_SIM_LOG");
    if (lvl && *lvl && log_level_parse(lvl, &c.log_level) == 0)
        c.log = stderr;
    int rc = sim_new(&c, &s);
    if (rc != 0) {
        print_error("%s: sim_new failed (%d), seed %" PRIu64 "\n", scenario, rc, cfg->seed);
        _fail(__FILE__, __LINE__);
    }
    *state = s;
    if (g_quiet)
        return s;
    printf("# %s: seed %" PRIu64 " (replay: COOPFS_SIM_SEED=%" PRIu64 ")\n", scenario, cfg->seed,
           base);
    fflush(stdout);
    return s;
}

int simtest_teardown(void **state)
{
    sim_free(*state);
    *state = NULL;
    return 0;
}

static void short_hex(const struct id *id, char out[13])
{
    char hex[ID_HEX_LEN + 1];
    id_to_hex(id, hex);
    memcpy(out, hex, 12);
    out[12] = '\0';
}

/* Every live vnode's tables, through the public introspection calls. */
static void dump(struct sim *s, FILE *f)
{
    char a[13], b[13];

    fprintf(f, "--- tables at t=%" PRIu64 "ms (seed %" PRIu64 ")\n", sim_now(s), sim_seed(s));
    for (unsigned i = 0; i < sim_node_count(s); i++) {
        struct chord *c = sim_node_chord(s, i);
        if (!c) {
            fprintf(f, "node %u: dead\n", i);
            continue;
        }
        for (unsigned v = 0; v < chord_vnode_count(c); v++) {
            const struct chord_peer *list;
            struct chord_peer p, mem[CHORD_MEMORY];
            short_hex(&chord_vnode_self(c, v)->id, a);
            fprintf(f, "node %u/%u %s %s pred=", i, v, a,
                    chord_vnode_joined(c, v) ? "joined" : "not-joined");
            if (chord_vnode_predecessor(c, v, &p)) {
                short_hex(&p.id, b);
                fprintf(f, "%s", b);
            } else {
                fprintf(f, "-");
            }
            size_t n = chord_vnode_successors(c, v, &list);
            fprintf(f, " succ=[");
            for (size_t k = 0; k < n; k++) {
                short_hex(&list[k].id, b);
                fprintf(f, "%s%s", k ? " " : "", b);
            }
            /* Fingers: each distinct target once, with the lowest index
             * that points at it. */
            struct id last;
            bool any = false;
            fprintf(f, "] fingers=[");
            for (unsigned k = 0; k < CHORD_FINGERS; k++) {
                if (!chord_vnode_finger(c, v, k, &p) || (any && id_eq(&p.id, &last)))
                    continue;
                short_hex(&p.id, b);
                fprintf(f, "%s%u:%s", any ? " " : "", k, b);
                last = p.id;
                any = true;
            }
            size_t nm = chord_vnode_memory(c, v, mem, CHORD_MEMORY);
            fprintf(f, "] memory=[");
            for (size_t k = 0; k < nm; k++) {
                short_hex(&mem[k].id, b);
                fprintf(f, "%s%s", k ? " " : "", b);
            }
            fprintf(f, "]\n");
        }
    }
}

void simtest_fail_at(struct sim *s, const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    const char *first = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t nv = sim_violations(s, &first);
    snprintf(g_caught, sizeof(g_caught),
             "%s\n  seed %" PRIu64 " (replay: COOPFS_SIM_SEED=%" PRIu64 "), t=%" PRIu64
             "ms, %u/%u nodes live, %zu violation(s)%s%s (%s:%d)",
             msg, sim_seed(s), g_base, sim_now(s), sim_live_count(s), sim_node_count(s), nv,
             first ? "; first: " : "", first ? first : "", file, line);
    /* COOPFS_SIM_DUMP=1: the simulator dumps at the first violation, and
     * we dump at the failure. */
    if (simtest_env_u64("COOPFS_SIM_DUMP", 0) == 1)
        dump(s, stderr);
    if (g_catch)
        longjmp(*g_catch, 1);
    print_error("%s\n", g_caught);
    _fail(file, line);
    abort(); /* _fail jumps out of the test */
}

bool simtest_try(void (*fn)(void *arg), void *arg, char *msg, size_t len)
{
    jmp_buf env;
    jmp_buf *prev = g_catch;

    g_catch = &env;
    if (setjmp(env) == 0) {
        fn(arg);
        g_catch = prev;
        return true;
    }
    g_catch = prev;
    snprintf(msg, len, "%s", g_caught);
    return false;
}

unsigned simtest_joined_count(struct sim *s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < sim_node_count(s); i++) {
        struct chord *c = sim_node_chord(s, i);
        if (!c)
            continue;
        bool all = true;
        for (unsigned v = 0; v < chord_vnode_count(c) && all; v++)
            all = chord_vnode_joined(c, v);
        n += all;
    }
    return n;
}

bool simtest_all_joined(struct sim *s)
{
    return simtest_joined_count(s) == sim_live_count(s);
}

int64_t simtest_settle(struct sim *s, uint64_t bound_ms)
{
    uint64_t start = sim_now(s);

    while (!simtest_all_joined(s)) {
        if (sim_now(s) - start >= bound_ms)
            return -ETIMEDOUT;
        sim_run_for(s, CHORD_STABILIZE_MS);
    }
    uint64_t spent = sim_now(s) - start;
    if (spent > bound_ms)
        return -ETIMEDOUT;
    int64_t r = sim_run_until_ideal(s, bound_ms - spent);
    if (r < 0)
        return r;
    return (int64_t)(sim_now(s) - start);
}

uint64_t simtest_expect_ideal(struct sim *s, uint64_t bound_ms, const char *what)
{
    int64_t took = simtest_settle(s, bound_ms);
    if (took < 0) {
        char why[256] = "";
        if (!sim_ring_is_ideal(s, why, sizeof(why)))
            simtest_fail_at(s, __FILE__, __LINE__,
                            "%s: ring not ideal within %" PRIu64 " ms (%u of %u live joined): %s",
                            what, bound_ms, simtest_joined_count(s), sim_live_count(s), why);
        simtest_fail_at(s, __FILE__, __LINE__,
                        "%s: %u of %u live nodes still not joined after %" PRIu64 " ms", what,
                        simtest_joined_count(s), sim_live_count(s), bound_ms);
    }
    if (!g_quiet)
        printf("#   %s: ideal after %" PRId64 " ms = %.1f periods (bound %.0f), %u nodes\n", what,
               took, (double)took / CHORD_STABILIZE_MS, (double)bound_ms / CHORD_STABILIZE_MS,
               sim_live_count(s));
    fflush(stdout);
    simtest_expect_clean(s, what);
    return (uint64_t)took;
}

void simtest_heal(struct sim *s)
{
    sim_heal(s);
    sim_run_for(s, (uint64_t)CHORD_RPC_TIMEOUT_MS * CHORD_RPC_TRIES);
}

void simtest_expect_stable(struct sim *s, uint64_t ms, const char *what)
{
    uint64_t start = sim_now(s);
    char why[256];

    while (sim_now(s) - start < ms) {
        sim_run_for(s, 10);
        SIMTEST_ASSERT(s, sim_ring_is_ideal(s, why, sizeof(why)),
                       "%s: ideal ring changed %.2f periods later without any fault: %s", what,
                       (double)(sim_now(s) - start) / CHORD_STABILIZE_MS, why);
    }
    simtest_expect_clean(s, what);
}

void simtest_expect_lookups(struct sim *s, uint64_t n, uint64_t spread_ms, const char *what)
{
    struct sim_lookup_stats st;

    sim_lookups(s, n, spread_ms, &st);
    if (!g_quiet)
        printf("#   %s: %" PRIu64 " lookups, %" PRIu64 " ok, %" PRIu64 " wrong, %" PRIu64
               " failed, %" PRIu64 " iterative, hops mean %.2f p99 %u, p99 %u ms\n",
               what, st.issued, st.ok, st.wrong, st.failed, st.iterative, st.mean_hops, st.p99_hops,
               st.p99_ms);
    fflush(stdout);
    SIMTEST_ASSERT(s, st.issued == n && st.ok == st.issued,
                   "%s: %" PRIu64 " of %" PRIu64 " lookups correct (%" PRIu64 " wrong, %" PRIu64
                   " failed)",
                   what, st.ok, n, st.wrong, st.failed);
    simtest_expect_clean(s, what);
}

void simtest_expect_clean(struct sim *s, const char *what)
{
    char why[640];

    SIMTEST_ASSERT(s, sim_violations(s, NULL) == 0, "%s: invariant violated", what);
    SIMTEST_ASSERT(s, sim_check_now(s, why, sizeof(why)) == 0, "%s: full check fails now: %s", what,
                   why);
}

void simtest_grow(struct sim *s, unsigned target, uint64_t step_ms)
{
    if (sim_node_count(s) == 0) {
        int rc = sim_add_node(s, -1);
        SIMTEST_ASSERT(s, rc == 0, "creating the ring: %d", rc);
        sim_run_for(s, step_ms);
    }
    while (sim_live_count(s) < target) {
        int rc = sim_add_nodes(s, 1);
        SIMTEST_ASSERT(s, rc == 0, "adding node %u: %d", sim_node_count(s), rc);
        sim_run_for(s, step_ms);
        SIMTEST_ASSERT(s, sim_violations(s, NULL) == 0, "growing: violation with %u nodes",
                       sim_node_count(s));
    }
}

void simtest_grow_paced(struct sim *s, unsigned target)
{
    while (sim_live_count(s) < target) {
        unsigned n = sim_live_count(s), v = 1;
        for (unsigned i = 0; i < sim_node_count(s); i++) {
            struct chord *c = sim_node_chord(s, i);
            if (c) {
                v = chord_vnode_count(c);
                break;
            }
        }
        /* Every vnode of a new node joins at once: pace by vnodes. */
        unsigned m = n * v;
        uint64_t step = m < 16   ? CHORD_STABILIZE_MS
                        : m < 64 ? CHORD_STABILIZE_MS / 2
                                 : CHORD_STABILIZE_MS / 5;
        simtest_grow(s, n + 1, step * v);
    }
}

uint64_t simtest_below(struct sim *s, uint64_t n)
{
    /* The bias of a plain modulo is below 2^-40 for the small n used here. */
    return sim_random(s) % n;
}

double simtest_unit(struct sim *s)
{
    return (double)(sim_random(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* A random node satisfying want_alive, by rejection, then by a scan. */
static int pick(struct sim *s, bool want_alive)
{
    unsigned n = sim_node_count(s);
    if (n == 0)
        return -1;
    for (int tries = 0; tries < 32; tries++) {
        unsigned i = (unsigned)simtest_below(s, n);
        if (sim_node_alive(s, i) == want_alive)
            return (int)i;
    }
    unsigned start = (unsigned)simtest_below(s, n);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (start + k) % n;
        if (sim_node_alive(s, i) == want_alive)
            return (int)i;
    }
    return -1;
}

int simtest_pick_live(struct sim *s)
{
    return pick(s, true);
}

int simtest_pick_dead(struct sim *s)
{
    return pick(s, false);
}

/* Is there a joined member that is not on its way out? sim_add_nodes and
 * sim_restart join through one; without one they would create a ring of
 * their own. */
static bool churn_has_member(struct sim *s, struct simtest_churn *c)
{
    unsigned k = 0;
    for (unsigned i = 0; i < c->nleaving; i++)
        if (sim_node_alive(s, (unsigned)c->leaving[i]))
            c->leaving[k++] = c->leaving[i];
    c->nleaving = k;
    return simtest_joined_count(s) > c->nleaving;
}

/* With COOPFS_SIM_LOG set, the churn says what it does, between the
 * nodes' own log lines. */
static bool churn_tracing(void)
{
    const char *lvl = getenv("COOPFS_SIM_LOG");
    return lvl && *lvl;
}

static void churn_trace(struct sim *s, const char *what, int node, int rc)
{
    fprintf(stderr, "t=%" PRIu64 ".%03u churn: %s node %d%s (%u live, %u joined)\n",
            sim_now(s) / 1000, (unsigned)(sim_now(s) % 1000), what, node, rc == 0 ? "" : " refused",
            sim_live_count(s), simtest_joined_count(s));
}

/* One crash within the fail rule; with tracing, names the victim. */
static void churn_crash(struct sim *s, struct simtest_churn *c, bool trace)
{
    unsigned n = sim_node_count(s);
    uint8_t *alive = trace ? calloc(n ? n : 1, 1) : NULL;

    for (unsigned i = 0; alive && i < n; i++)
        alive[i] = sim_node_alive(s, i);
    c->crashed += (unsigned)sim_crash_random(s, 1);
    for (unsigned i = 0; alive && i < n; i++)
        if (alive[i] && !sim_node_alive(s, i))
            churn_trace(s, "crash", (int)i, 0);
    free(alive);
}

unsigned simtest_churn_leaving(struct sim *s, struct simtest_churn *c)
{
    churn_has_member(s, c); /* prunes the nodes that are gone */
    return c->nleaving;
}

void simtest_churn_run(struct sim *s, struct simtest_churn *c, uint64_t duration_ms)
{
    uint64_t end = sim_now(s) + duration_ms;
    bool trace = churn_tracing();

    while (sim_now(s) < end) {
        if (simtest_unit(s) < c->p_crash && sim_live_count(s) > c->min_live)
            churn_crash(s, c, trace);
        if (simtest_unit(s) < c->p_restart && churn_has_member(s, c)) {
            int d = simtest_pick_dead(s);
            int rc = d >= 0 ? sim_restart(s, (unsigned)d) : -1;
            if (rc == 0)
                c->restarted++;
            if (trace && d >= 0)
                churn_trace(s, "restart", d, rc);
        }
        if (simtest_unit(s) < c->p_leave && sim_live_count(s) > c->min_live &&
            churn_has_member(s, c) && c->nleaving < sizeof(c->leaving) / sizeof(c->leaving[0])) {
            int l = simtest_pick_live(s);
            int rc = l >= 0 ? sim_leave(s, (unsigned)l) : -ENOENT;
            if (rc == 0) {
                c->leaving[c->nleaving++] = l;
                c->left++;
            } else {
                c->refused++; /* -EPERM (the fail rule) or already leaving */
            }
            if (trace)
                churn_trace(s, "leave", l, rc);
        }
        if (simtest_unit(s) < c->p_join && churn_has_member(s, c) && sim_add_nodes(s, 1) == 0) {
            c->joined++;
            if (trace)
                churn_trace(s, "join", (int)sim_node_count(s) - 1, 0);
        }
        sim_run_for(s, c->tick_ms);
        SIMTEST_ASSERT(s, sim_violations(s, NULL) == 0,
                       "churn: violation (%u crashed, %u restarted, %u left, %u joined so far)",
                       c->crashed, c->restarted, c->left, c->joined);
    }
}
