/* blocks_common.h — helpers shared by the block-store scenarios,
 * test_blocks.c (replication and maintenance) and test_cas.c (root
 * compare-and-swap): the blocks they put, replication and retrieval
 * checks, the configuration of a ring with blocks, and one seed of no_loss
 * (run by test_blocks.c, replayed by test_cas.c).
 *
 * Both files use the same default base seed, so every scenario runs from
 * the seed it did when they were one file.
 */
#ifndef COOPFS_TESTS_SIM_BLOCKS_COMMON_H
#define COOPFS_TESTS_SIM_BLOCKS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/block.h"
#include "blockstore/bs.h"
#include "common/sig.h"
#include "tests/sim/simtest.h"

#define DEFAULT_SEED 0x60600
#define K            3
#define OP_MAX_MS    60000 /* a client operation that takes longer is stuck */

extern bool g_quiet; /* the loops over seeds print one line per seed */

struct blk {
    struct id key;
    uint8_t *bytes;
    size_t len;
    struct sim_op put;
    bool issued, acked;
};

double wall_s(void);

/* The one owner of every block (a fixed key, the same in every run). */
const struct sig_key *owner(void);

void blks_free(struct blk *b, size_t n);

/* n content blocks of random bytes (64..2047 of them), from the run's
 * generator. */
struct blk *blks_make(struct sim *s, size_t n);

/* A random live node that has joined, or -1. */
int pick_joined(struct sim *s);

void lease_now(struct sim *s, const struct id *key, struct lease *l);

/* Starts the put of b from a random joined node. */
void blk_put_start(struct sim *s, struct blk *b);

/* Runs until every put issued of b[0..n) has its answer, then marks the
 * acknowledged ones (status 0, at least one copy). Returns how many of
 * b[0..n) are acknowledged. */
size_t blks_wait(struct sim *s, struct blk *b, size_t n);

/* Puts b[0..n) concurrently from random nodes and waits for every answer.
 * Returns how many were acknowledged. */
size_t blks_put(struct sim *s, struct blk *b, size_t n);

void expect_replicated(struct sim *s, const struct blk *b, size_t n, uint64_t max_ms,
                       const char *what);

/* Gets every acknowledged block from a random joined node, all at once,
 * and compares the bytes. */
void expect_retrievable(struct sim *s, const struct blk *b, size_t n, const char *what);

void print_stats(struct sim *s, const char *what);

void expect_no_malformed(struct sim *s, const char *what);

/* The seeds a loop runs: [*first, *first + *n), or only COOPFS_SIM_ONLY
 * (a failure prints it, with the test's name for COOPFS_SIM_TEST). */
void seed_range(uint64_t *first, uint64_t *n);

void config(struct sim_config *cfg, uint64_t seed, uint32_t sync_ms);

/* ---- no acknowledged block lost ---- */

struct loss_run {
    void **state;
    uint64_t seed;
    unsigned nodes, rounds, crashed, restarted;
    size_t acked;
    int64_t repair_max_ms; /* slowest return to k holders after a round of crashes */
    uint64_t trace, events;
};

#define LOSS_BLOCKS 30
#define LOSS_SYNC   2000
/* A round of crashes waits at least this long before the next: a
 * maintenance round plus slack for chord's failure detection (its RPC
 * tries) and the block RPCs' own. */
#define LOSS_WAIT (LOSS_SYNC + 8000)
/* Every block must be back on k live nodes this long after a round. */
#define LOSS_REPAIR_MAX 60000

/* One seed of no_loss; arg is a struct loss_run. */
void loss_seed(void *arg);

#endif
