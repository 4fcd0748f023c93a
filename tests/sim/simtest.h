/* simtest.h — helpers shared by the simulator scenarios in tests/sim.
 *
 * Every scenario runs from a seed. COOPFS_SIM_SEED (decimal or 0x-hex)
 * sets a file's base seed, else the file's fixed default; the k-th
 * scenario of a file runs from base + k. Each scenario prints its seed,
 * and every failure message names it together with the virtual time and
 * the simulator's first recorded violation, so that
 *     COOPFS_SIM_SEED=<base> tests/sim/<test>
 * replays the failing run exactly. To follow a replay, COOPFS_SIM_LOG=debug
 * sends every node's log to stderr and COOPFS_SIM_DUMP=1 makes the
 * simulator print every table at the first violation.
 *
 * The helpers fail the running cmocka test themselves (print_error and
 * _fail), so a scenario reads as a list of expectations. A scenario keeps
 * its struct sim in *state, and simtest_teardown frees it even when the
 * test failed half-way.
 */
#ifndef COOPFS_TESTS_SIM_SIMTEST_H
#define COOPFS_TESTS_SIM_SIMTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim.h"

/* Virtual time in stabilization periods: every bound is written this way. */
#define PERIODS(n) ((uint64_t)(n)*CHORD_STABILIZE_MS)

/* Quiet mode drops the progress lines ("#   ...") and the per-scenario
 * seed line, for tests that run hundreds of small scenarios; failure
 * messages still name the seed. COOPFS_SIM_VERBOSE=1 overrides it. */
void simtest_set_quiet(bool quiet);

/* The unsigned value of environment variable name, or dflt when it is
 * unset or does not parse. */
uint64_t simtest_env_u64(const char *name, uint64_t dflt);

/* The base seed: COOPFS_SIM_SEED, or dflt. Prints which. */
uint64_t simtest_base_seed(uint64_t dflt);

/* Scenarios that loop over many seeds run only the one named by
 * COOPFS_SIM_ONLY when it is set: is this seed to run? */
bool simtest_selected(uint64_t seed);

/* Frees the sim held in *state (if any), makes a new one from cfg, prints
 * "<scenario>: seed S (replay: COOPFS_SIM_SEED=B)" unless quiet, and keeps
 * it in *state. base is the file's base seed, for the replay hints. Fails
 * the test if sim_new fails. */
struct sim *simtest_start(void **state, const struct sim_config *cfg, uint64_t base,
                          const char *scenario);
/* cmocka teardown: frees the sim held in *state. Always returns 0. */
int simtest_teardown(void **state);

/* Fails the test with the formatted message followed by the seed, the
 * virtual time and the first violation. Does not return. */
void simtest_fail_at(struct sim *s, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
#define SIMTEST_ASSERT(s, cond, ...)                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            simtest_fail_at((s), __FILE__, __LINE__, __VA_ARGS__);                                 \
    } while (0)

/* Runs fn(arg), catching a failure of the simtest helpers inside it
 * instead of failing the test: returns true if fn finished, or false with
 * the failure message (seed included) in msg. For tests that run many
 * scenarios and report every one that fails, not just the first. */
bool simtest_try(void (*fn)(void *arg), void *arg, char *msg, size_t len);

/* Does every live node have all its vnodes joined (or leaving)? A node
 * stuck joining must not pass for a settled ring. */
bool simtest_all_joined(struct sim *s);
/* The number of live nodes whose vnodes have all joined. */
unsigned simtest_joined_count(struct sim *s);

/* Runs until every live node has joined and the ring is ideal, for at
 * most bound_ms of virtual time (checked once per stabilization period,
 * then through sim_run_until_ideal). Returns the virtual ms it took or
 * -ETIMEDOUT. */
int64_t simtest_settle(struct sim *s, uint64_t bound_ms);

/* simtest_settle, failing the test on a timeout (with why the ring is not
 * ideal) or on any violation. Prints the time it took next to the bound
 * and returns it. */
uint64_t simtest_expect_ideal(struct sim *s, uint64_t bound_ms, const char *what);

/* Runs ms more of virtual time in 10 ms steps and fails the test unless
 * the ring is ideal at every step: with no faults, no churn and no leave
 * under way, an ideal ring must stay ideal (no successor flapping). */
/* Ends every fault (sim_heal) and runs until no request sent under the
 * faults can still time out (CHORD_RPC_TRIES tries of
 * CHORD_RPC_TIMEOUT_MS): a PING lost before the heal may still take a
 * live predecessor for dead just after it, which is the fault's doing,
 * not the healed ring's. */
void simtest_heal(struct sim *s);
void simtest_expect_stable(struct sim *s, uint64_t ms, const char *what);

/* Issues n lookups over spread_ms and fails the test unless every one
 * found the true successor. Prints the statistics. */
void simtest_expect_lookups(struct sim *s, uint64_t n, uint64_t spread_ms, const char *what);

/* Fails the test if any violation was recorded or the full invariant
 * check fails now. */
void simtest_expect_clean(struct sim *s, const char *what);

/* Grows the ring one node at a time to `target` nodes: the first creates
 * the ring, every later one joins through a random member, then
 * step_ms pass before the next. Fails at the first violation. */
void simtest_grow(struct sim *s, unsigned target, uint64_t step_ms);

/* simtest_grow at a pace that a ring of m vnodes absorbs: 500 ms between
 * joins below 16 vnodes, 250 ms below 64, then 100 ms, times the vnodes a
 * node brings. Chord moves a node's successor back over new joiners one
 * per stabilization, so joins landing in one gap faster than that pile up
 * there and take periods linear in their number to sort out (2 nodes with
 * a join every 100 ms: half of them land in one gap). Measured: 1,000
 * nodes grown this way are ideal 10-12 periods after the last join (seeds
 * 1-16); at a fixed 100 ms up to 62 periods (seed 4). */
void simtest_grow_paced(struct sim *s, unsigned target);

/* A uniformly random number below n (n > 0) from the run's generator. */
uint64_t simtest_below(struct sim *s, uint64_t n);
/* A number uniform in [0, 1) from the run's generator. */
double simtest_unit(struct sim *s);
/* A random live node (possibly one that is leaving), or -1. */
int simtest_pick_live(struct sim *s);
/* A random crashed node, or -1. */
int simtest_pick_dead(struct sim *s);

/* Churn: once per tick_ms, each of crash / restart / leave / join happens
 * with its probability. Crashes respect the fail rule
 * (sim_crash_random(s, 1)), leaves the simulator refuses (-EPERM) are
 * skipped, and nothing crashes or leaves below min_live live nodes. The
 * counters say what happened. */
struct simtest_churn {
    uint64_t tick_ms;
    double p_crash, p_restart, p_leave, p_join;
    unsigned min_live;
    unsigned crashed, restarted, left, joined, refused;
    /* Nodes asked to leave that are still alive: a restart or join needs
     * some other member to join through, or it would start a new ring. */
    int leaving[16];
    unsigned nleaving;
};
/* Runs churn for duration_ms of virtual time, failing the test at the
 * first violation. */
void simtest_churn_run(struct sim *s, struct simtest_churn *c, uint64_t duration_ms);
/* The number of nodes asked to leave by c that are still alive. */
unsigned simtest_churn_leaving(struct sim *s, struct simtest_churn *c);

#endif
