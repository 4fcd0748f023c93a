/* test_join.c — rings built by joins, in the simulator.
 *
 * Full invariant checks run after every event throughout (SIM_CHECK_FULL,
 * the default). Each scenario ends with an ideal ring — every successor
 * list exactly the next min(r, M-1) members, every predecessor right —
 * reached within a bound in stabilization periods, and lookups that all
 * find the true successor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "tests/sim/simtest.h"

#define DEFAULT_SEED 0x10100

static uint64_t g_base;

/* Bounds, from measurements over seeds 1-16 (see each scenario). */
#define BOUND_1000        PERIODS(40)  /* measured 10-12 periods */
#define BOUND_100_AT_ONCE PERIODS(200) /* measured 38-98 */
#define BOUND_SMALL_STEP  PERIODS(40)  /* one join into <= 2r nodes: measured 1-14 */
#define BOUND_SMALL_BATCH PERIODS(60)  /* r - 1 joins at once: measured up to 23 */

/* 1,000 nodes join one at a time, at the pace of simtest_grow_paced
 * (100 ms apart from 64 nodes on; a join takes about 200 ms, so two or
 * three are in flight at once). Measured over seeds 1-16: ideal 10-12
 * periods after the last join. */
static void test_join_one_at_a_time_1000(void **state)
{
    struct sim_config cfg;
    sim_config_default(&cfg, g_base + 0);
    struct sim *s = simtest_start(state, &cfg, g_base, "1,000 joins one at a time");

    simtest_grow_paced(s, 1000);
    SIMTEST_ASSERT(s, sim_live_count(s) == 1000, "%u nodes live", sim_live_count(s));
    simtest_expect_ideal(s, BOUND_1000, "1,000 nodes");
    simtest_expect_stable(s, PERIODS(2), "1,000 nodes");
    simtest_expect_lookups(s, 2000, 5000, "1,000 nodes");
}

/* 100 nodes join at the same instant a settled ring of 4 nodes. They land
 * in four gaps, and the node before each gap learns its new successors
 * from stabilization, one per period, so this takes periods linear in
 * the number of joiners in the largest gap. Measured over seeds 1-16:
 * 38-98 periods. */
static void test_join_100_at_once(void **state)
{
    struct sim_config cfg;
    sim_config_default(&cfg, g_base + 1);
    struct sim *s = simtest_start(state, &cfg, g_base, "100 joins at once into 4 nodes");

    simtest_grow(s, 4, CHORD_STABILIZE_MS);
    simtest_expect_ideal(s, PERIODS(20), "4 nodes");
    int rc = sim_add_nodes(s, 100);
    SIMTEST_ASSERT(s, rc == 0, "sim_add_nodes: %d", rc);
    simtest_expect_ideal(s, BOUND_100_AT_ONCE, "4 + 100 nodes");
    SIMTEST_ASSERT(s, sim_live_count(s) == 104, "%u nodes live", sim_live_count(s));
    simtest_expect_stable(s, PERIODS(2), "4 + 100 nodes");
    simtest_expect_lookups(s, 1000, 5000, "104 nodes");
}

/* Rings of at most r + 1 nodes: every successor list must hold every other
 * node exactly once (sim_ring_is_ideal). Grown one node at a time with the
 * ring settled after every join, and checked at every size from 1 to
 * 2r + 1 (so at r, r + 1 and 2r). Measured: 1-4 periods a join for
 * r = 2, 3; up to 14 for r = 16, whose lists take that many rounds to
 * fill. */
static void grow_small(void **state, unsigned r, uint64_t seed)
{
    struct sim_config cfg;
    char what[64];
    sim_config_default(&cfg, seed);
    cfg.succ_len = r;
    snprintf(what, sizeof(what), "r = %u, grown one at a time", r);
    struct sim *s = simtest_start(state, &cfg, g_base, what);

    simtest_grow(s, 1, 0);
    for (unsigned n = 1; n <= 2 * r + 1; n++) {
        simtest_grow(s, n, 0);
        snprintf(what, sizeof(what), "r = %u, %u nodes", r, n);
        simtest_expect_ideal(s, BOUND_SMALL_STEP, what);
        if (n == r || n == r + 1 || n == 2 * r)
            simtest_expect_lookups(s, 200, 2000, what);
    }
}

/* The same sizes reached by concurrent joins: 1 -> r -> r + 1 -> 2r. */
static void grow_small_concurrent(void **state, unsigned r, uint64_t seed)
{
    static const char *const label[] = {"r", "r + 1", "2r"};
    struct sim_config cfg;
    char what[64];
    sim_config_default(&cfg, seed);
    cfg.succ_len = r;
    snprintf(what, sizeof(what), "r = %u, concurrent joins", r);
    struct sim *s = simtest_start(state, &cfg, g_base, what);

    simtest_grow(s, 1, 0);
    unsigned sizes[] = {r, r + 1, 2 * r};
    for (unsigned k = 0; k < 3; k++) {
        int rc = sim_add_nodes(s, sizes[k] - sim_live_count(s));
        SIMTEST_ASSERT(s, rc == 0, "sim_add_nodes: %d", rc);
        snprintf(what, sizeof(what), "r = %u, %u nodes (%s) at once", r, sizes[k], label[k]);
        simtest_expect_ideal(s, BOUND_SMALL_BATCH, what);
        SIMTEST_ASSERT(s, sim_live_count(s) == sizes[k], "%u nodes live", sim_live_count(s));
        simtest_expect_lookups(s, 200, 2000, what);
    }
}

static void test_join_small_rings(void **state)
{
    grow_small(state, 2, g_base + 2);
    grow_small(state, 3, g_base + 3);
    grow_small(state, CHORD_SUCC_LEN, g_base + 4);
    grow_small_concurrent(state, 2, g_base + 5);
    grow_small_concurrent(state, 3, g_base + 6);
    grow_small_concurrent(state, CHORD_SUCC_LEN, g_base + 7);
}

/* A ring of one: no successor, no predecessor, and it answers every key. */
static void test_join_lone_node(void **state)
{
    struct sim_config cfg;
    sim_config_default(&cfg, g_base + 8);
    struct sim *s = simtest_start(state, &cfg, g_base, "a ring of one");

    simtest_grow(s, 1, CHORD_STABILIZE_MS);
    simtest_expect_ideal(s, PERIODS(2), "1 node");
    sim_run_for(s, PERIODS(10));
    simtest_expect_ideal(s, 0, "1 node, 10 periods later");
    simtest_expect_lookups(s, 100, 1000, "1 node");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_join_lone_node, simtest_teardown),
        cmocka_unit_test_teardown(test_join_small_rings, simtest_teardown),
        cmocka_unit_test_teardown(test_join_100_at_once, simtest_teardown),
        cmocka_unit_test_teardown(test_join_one_at_a_time_1000, simtest_teardown),
    };
    /* Line-buffered, so progress lines and cmocka's stderr interleave
     * whole in a captured log. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_base = simtest_base_seed(DEFAULT_SEED);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
