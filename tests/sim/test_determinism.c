/* test_determinism.c — the same seed replays the same run.
 *
 * A scenario with joins, loss, duplication, reordering, crashes, restarts,
 * leaves, a partition, its heal and lookups runs twice from one seed: the
 * trace hash (which folds in every event's time, kind, node and bytes) and
 * the event count must agree at every checkpoint. A different seed must
 * give a different trace. This is what makes every other failure in this
 * directory replayable from the seed it prints.
 *
 * Only determinism is asserted here: whether the ring becomes ideal is
 * recorded and compared between the runs, and judged by the other tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tests/sim/simtest.h"

#define DEFAULT_SEED 0x50500
#define NODES        40

enum { CP_BUILT, CP_CHURNED, CP_SPLIT, CP_HEALED, CP_LOOKUPS, CP_COUNT };
static const char *const cp_name[CP_COUNT] = {"built", "churned", "split", "healed", "looked up"};

struct outcome {
    uint64_t hash[CP_COUNT], events[CP_COUNT];
    int64_t ideal_after_build, ideal_after_heal;
    struct simtest_churn churn;
    struct sim_lookup_stats lk;
    size_t violations;
};

static void checkpoint(struct sim *s, struct outcome *o, int cp)
{
    o->hash[cp] = sim_trace_hash(s);
    o->events[cp] = sim_events(s);
}

/* Bounds from measurement (seeds 1-8): ideal 15-23 periods after the
 * build, 16-21 after the heal. */
static void run_scenario(void **state, uint64_t seed, struct outcome *o)
{
    struct sim_config cfg;
    uint8_t group[2 * NODES];

    memset(o, 0, sizeof(*o));
    sim_config_default(&cfg, seed);
    cfg.vnodes = 2;
    cfg.loss = 0.10;
    cfg.dup = 0.05;
    cfg.reorder = 0.10;
    struct sim *s = simtest_start(state, &cfg, seed, "determinism");

    simtest_grow_paced(s, NODES);
    o->ideal_after_build = sim_run_until_ideal(s, PERIODS(60));
    checkpoint(s, o, CP_BUILT);

    o->churn = (struct simtest_churn){
        .tick_ms = CHORD_STABILIZE_MS,
        .p_crash = 0.2,
        .p_restart = 0.2,
        .p_leave = 0.1,
        .p_join = 0.1,
        .min_live = NODES / 2,
    };
    simtest_churn_run(s, &o->churn, 20000);
    checkpoint(s, o, CP_CHURNED);

    unsigned n = sim_node_count(s);
    SIMTEST_ASSERT(s, n <= sizeof(group), "%u nodes", n);
    for (unsigned i = 0; i < n; i++)
        group[i] = (uint8_t)(sim_random(s) % 2);
    sim_partition(s, group);
    sim_run_for(s, 10000);
    checkpoint(s, o, CP_SPLIT);

    sim_heal(s);
    o->ideal_after_heal = sim_run_until_ideal(s, PERIODS(100));
    checkpoint(s, o, CP_HEALED);

    sim_lookups(s, 200, 2000, &o->lk);
    checkpoint(s, o, CP_LOOKUPS);
    o->violations = sim_violations(s, NULL);
    printf("#   seed %" PRIu64 ": trace %016" PRIx64 ", %" PRIu64 " events; ideal %" PRId64
           " ms after build, %" PRId64 " ms after heal; %" PRIu64 " of %" PRIu64 " lookups ok\n",
           seed, o->hash[CP_LOOKUPS], o->events[CP_LOOKUPS], o->ideal_after_build,
           o->ideal_after_heal, o->lk.ok, o->lk.issued);
}

static void test_same_seed_same_trace(void **state)
{
    uint64_t base = simtest_base_seed(DEFAULT_SEED);
    struct outcome a, b;

    run_scenario(state, base, &a);
    run_scenario(state, base, &b);
    for (int cp = 0; cp < CP_COUNT; cp++) {
        if (a.hash[cp] != b.hash[cp] || a.events[cp] != b.events[cp])
            fail_msg("seed %" PRIu64 ": runs diverge by checkpoint '%s': trace %016" PRIx64
                     " vs %016" PRIx64 ", events %" PRIu64 " vs %" PRIu64,
                     base, cp_name[cp], a.hash[cp], b.hash[cp], a.events[cp], b.events[cp]);
    }
    assert_int_equal(a.ideal_after_build, b.ideal_after_build);
    assert_int_equal(a.ideal_after_heal, b.ideal_after_heal);
    assert_int_equal(a.churn.crashed, b.churn.crashed);
    assert_int_equal(a.churn.restarted, b.churn.restarted);
    assert_int_equal(a.churn.left, b.churn.left);
    assert_int_equal(a.churn.joined, b.churn.joined);
    assert_int_equal(a.lk.ok, b.lk.ok);
    assert_int_equal(a.lk.wrong, b.lk.wrong);
    assert_int_equal(a.lk.failed, b.lk.failed);
    assert_int_equal(a.violations, b.violations);
    /* The scenario must have exercised what it claims to. */
    if (a.churn.crashed == 0 || a.churn.restarted == 0 || a.churn.left == 0 ||
        a.churn.joined == 0 || a.lk.issued == 0)
        fail_msg("seed %" PRIu64 ": churn too thin (%u crashed, %u restarted, %u left, %u "
                 "joined)",
                 base, a.churn.crashed, a.churn.restarted, a.churn.left, a.churn.joined);
}

static void test_other_seed_other_trace(void **state)
{
    uint64_t base = simtest_base_seed(DEFAULT_SEED);
    struct outcome a, b;

    run_scenario(state, base, &a);
    run_scenario(state, base + 1, &b);
    if (a.hash[CP_LOOKUPS] == b.hash[CP_LOOKUPS])
        fail_msg("seeds %" PRIu64 " and %" PRIu64 " give the same trace %016" PRIx64, base,
                 base + 1, a.hash[CP_LOOKUPS]);
    /* Even the build already differs: latencies and jitter come from the seed. */
    if (a.hash[CP_BUILT] == b.hash[CP_BUILT])
        fail_msg("seeds %" PRIu64 " and %" PRIu64 " build identically (%016" PRIx64 ")", base,
                 base + 1, a.hash[CP_BUILT]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_same_seed_same_trace, simtest_teardown),
        cmocka_unit_test_teardown(test_other_seed_other_trace, simtest_teardown),
    };
    /* Line-buffered, so progress lines and cmocka's stderr interleave
     * whole in a captured log. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
