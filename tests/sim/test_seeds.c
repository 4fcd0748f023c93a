/* test_seeds.c — many random scenarios, one per seed, in the simulator.
 *
 * Each seed picks (from the seed alone) a ring size from 2 to 512,
 * weighted toward small rings so that the whole run stays fast, a
 * successor list length r, vnodes per node, a latency model, fault rates
 * (loss up to 30%, duplication, reordering) and churn rates (crashes within
 * the fail rule, restarts, leaves, joins). It builds the ring, runs the
 * churn over the faulty network, heals, and expects an ideal ring within a
 * bound, every lookup correct, and no invariant violation at any point.
 *
 * COOPFS_SIM_SEED sets the first seed (default below), COOPFS_SIM_SEEDS
 * the number of seeds (default 200); seeds are consecutive, so one seed
 * replays alone with COOPFS_SIM_SEED=<seed> COOPFS_SIM_SEEDS=1. Every seed
 * runs even after one fails, and each failing seed is listed. Seeds that
 * found bugs are kept in regressions[] and run every time.
 *
 * After the heal the ring must become ideal and then stay ideal for four
 * periods (no leave under way, no faults: nothing may change any more).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tests/sim/simtest.h"

#define DEFAULT_SEED  0x40400
#define DEFAULT_SEEDS 200

/* The slowest heal measured over seeds 1-2000 was 75 periods (seed 370):
 * a small ring whose survivors wait out the grace for dead successors. */
#define BOUND_HEAL PERIODS(200)

struct seed_run {
    void **state;
    uint64_t seed, base;
    /* Filled in by run_seed, for the summary line. */
    unsigned nodes, r, vnodes;
    double loss, dup, reorder;
    uint64_t churn_ms, heal_ms;
    struct simtest_churn churn;
};

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *const lat_name[] = {"fixed", "uniform", "exp"};

/* splitmix64: the scenario's choices, drawn from the seed alone. */
static uint64_t pick(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double pick_unit(uint64_t *x)
{
    return (double)(pick(x) >> 11) * (1.0 / 9007199254740992.0);
}

static void run_seed(void *arg)
{
    struct seed_run *x = arg;
    struct sim_config cfg;
    uint64_t g = x->seed ^ 0x5eed5eed5eed5eedull;
    char what[32];

    sim_config_default(&cfg, x->seed);
    /* Ring sizes: half tiny, where Zave's corner cases live, and few
     * large, which cost the most (time grows with nodes x virtual time). */
    static const struct {
        unsigned percent, lo, hi;
    } sizes[] = {{50, 2, 16}, {30, 17, 64}, {15, 65, 256}, {5, 257, 512}};
    unsigned p = (unsigned)(pick(&g) % 100), k = 0;
    while (p >= sizes[k].percent) {
        p -= sizes[k].percent;
        k++;
    }
    x->nodes = sizes[k].lo + (unsigned)(pick(&g) % (sizes[k].hi - sizes[k].lo + 1));
    x->r = pick(&g) % 2 ? CHORD_SUCC_LEN : 2 + (unsigned)(pick(&g) % 7);
    x->vnodes = pick(&g) % 4 ? 1 : 2 + (unsigned)(pick(&g) % 3);
    if (x->vnodes > 1 && x->nodes > 128)
        x->nodes = 128; /* keep vnodes * nodes modest */
    cfg.succ_len = x->r;
    cfg.vnodes = x->vnodes;
    cfg.latency = (enum sim_latency)(pick(&g) % 3);
    x->loss = 0.3 * pick_unit(&g);
    x->dup = 0.1 * pick_unit(&g);
    x->reorder = 0.3 * pick_unit(&g);
    x->churn_ms = 10000 + pick(&g) % 20001;
    struct simtest_churn c = {
        .tick_ms = CHORD_STABILIZE_MS,
        .p_crash = 0.2 * pick_unit(&g),
        .p_restart = 0.2 * pick_unit(&g),
        .p_leave = 0.2 * pick_unit(&g),
        .p_join = 0.2 * pick_unit(&g),
        .min_live = x->nodes / 2 > 1 ? x->nodes / 2 : 1,
    };
    snprintf(what, sizeof(what), "%s latency", lat_name[cfg.latency]);
    struct sim *s = simtest_start(x->state, &cfg, x->base, what);

    simtest_grow_paced(s, x->nodes);
    simtest_expect_ideal(s, PERIODS(60), what);
    sim_set_faults(s, x->loss, x->dup, x->reorder);
    simtest_churn_run(s, &c, x->churn_ms);
    x->churn = c;
    simtest_heal(s);
    x->heal_ms = simtest_expect_ideal(s, BOUND_HEAL, what);
    /* Once no leave is under way, nothing may change any more. */
    for (int w = 0; w < 20 && simtest_churn_leaving(s, &x->churn); w++)
        sim_run_for(s, PERIODS(1));
    if (simtest_churn_leaving(s, &x->churn) == 0) {
        simtest_expect_ideal(s, BOUND_HEAL, what);
        simtest_expect_stable(s, PERIODS(4), what);
    }
    simtest_expect_lookups(s, 200, 2000, what);
}

/* Runs the seeds in [first, first + n), or the listed ones, and fails
 * with the list of failing seeds. */
static void run_seeds(void **state, uint64_t first, uint64_t n, const uint64_t *list)
{
    unsigned failed = 0;
    uint64_t slowest = 0, slowest_seed = 0;
    char first_msg[1400] = "", msg[1024];

    simtest_set_quiet(true);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seed = list ? list[i] : first + i;
        struct seed_run x = {.state = state, .seed = seed, .base = seed};
        double t0 = wall_s();
        if (!simtest_try(run_seed, &x, msg, sizeof(msg))) {
            char line[1400];
            snprintf(line, sizeof(line),
                     "seed %" PRIu64 " (alone: COOPFS_SIM_SEED=%" PRIu64 " COOPFS_SIM_SEEDS=1), "
                     "%u nodes r=%u v=%u loss %.2f dup %.2f reorder %.2f: %s",
                     seed, seed, x.nodes, x.r, x.vnodes, x.loss, x.dup, x.reorder, msg);
            printf("# FAIL %s\n", line);
            if (failed++ == 0)
                snprintf(first_msg, sizeof(first_msg), "%s", line);
            continue;
        }
        printf("# seed %" PRIu64 ": %3u nodes r=%-2u v=%u loss %.2f dup %.2f reorder %.2f, "
               "%2us churn (%u crash %u restart %u leave %u join), ideal %.0f periods after heal"
               " (%.2fs)\n",
               x.seed, x.nodes, x.r, x.vnodes, x.loss, x.dup, x.reorder,
               (unsigned)(x.churn_ms / 1000), x.churn.crashed, x.churn.restarted, x.churn.left,
               x.churn.joined, (double)x.heal_ms / CHORD_STABILIZE_MS, wall_s() - t0);
        if (x.heal_ms > slowest) {
            slowest = x.heal_ms;
            slowest_seed = x.seed;
        }
    }
    simtest_set_quiet(false);
    printf("# %" PRIu64 " seeds, %u failed; slowest heal %.0f periods (seed %" PRIu64
           "), bound %.0f\n",
           n, failed, (double)slowest / CHORD_STABILIZE_MS, slowest_seed,
           (double)BOUND_HEAL / CHORD_STABILIZE_MS);
    if (failed)
        fail_msg("%u of %" PRIu64 " seeds failed; first: %s", failed, n, first_msg);
}

static void test_seeds_random(void **state)
{
    uint64_t base = simtest_base_seed(DEFAULT_SEED);
    uint64_t n = simtest_env_u64("COOPFS_SIM_SEEDS", DEFAULT_SEEDS);

    printf("# %" PRIu64 " seeds from %" PRIu64 " (COOPFS_SIM_SEED, COOPFS_SIM_SEEDS)\n", n, base);
    run_seeds(state, base, n, NULL);
}

/* Seeds that once found a bug, run every time. Each replays with the
 * scenario generator above: change the generator (or the pacing in
 * simtest.c) and they no longer mean what the comments say. */
static const uint64_t regressions[] = {
    /* Leaves and the fail rule (sim): a node whose leave is under way
     * still counts as a live successor and as a member, so a crash or a
     * second leave is allowed that leaves a survivor with no live
     * successor once the leaver is gone. */
    242,  /* 2 nodes: "no live successor (2 members)" */
    1928, /* 2 nodes: "2 rings among 2 members" */
    167,  /* 2 nodes, 2 vnodes: "no live successor (3 members)" */
    82,   /* 5 nodes: every member left, two joiners wait forever */
    /* A lone node (no successor) that remembers a dead node and has a live
     * predecessor livelocks retrying the dead one (chord/ring.c). */
    263343,
    /* A stabilize reply from the former first successor, late after
     * retries, drops the successor adopted meanwhile: the list flaps after
     * the heal and lookups answer wrong (chord/ring.c). */
    944,
    /* PINGs to the predecessor all lost before the heal time out after it
     * and clear a live predecessor (chord/ring.c: a notify heard since
     * the first PING now proves it alive). */
    777322, 777655, 778029,
    /* A PING to the predecessor lost before the heal timed out just after
     * it, before any notify arrived (tests: the stability check now starts
     * once such requests have drained). */
    5550344,
    /* The last member, allowed to lose its only successor by the fail
     * rule's waiver, meets a joiner before it learns it is alone (sim:
     * such a survivor counts as a ring of one). */
    777602,
    /* A join completes from a reply sent just before the last member node
     * started to leave: the joiner's whole list is leaving (sim: the fail
     * rule now also protects lists in flight to joiners). */
    5551180,
    /* Every successor of a 4-vnode node died; the grace counted rounds of
     * sixteen silent entries each and took minutes (chord/ring.c: it now
     * counts silent successors). */
    9991080,
};

static void test_seeds_regressions(void **state)
{
    size_t n = sizeof(regressions) / sizeof(regressions[0]);

    if (getenv("COOPFS_SIM_SEED")) {
        printf("# skipped: COOPFS_SIM_SEED replays a random seed\n");
        return;
    }
    printf("# %zu regression seeds\n", n);
    run_seeds(state, 0, n, regressions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_seeds_regressions, simtest_teardown),
        cmocka_unit_test_teardown(test_seeds_random, simtest_teardown),
    };
    /* Line-buffered, so progress lines and cmocka's stderr interleave
     * whole in a captured log. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
