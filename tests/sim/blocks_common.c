/* blocks_common.c — helpers shared by test_blocks.c and test_cas.c (see
 * blocks_common.h).
 */
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
#include <time.h>

#include "tests/sim/blocks_common.h"

bool g_quiet;

double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- shared helpers ---- */

/* The one owner of every block (a fixed key, the same in every run). */
const struct sig_key *owner(void)
{
    static struct sig_key k;
    static bool made;
    if (!made) {
        uint8_t seed[SIG_SEED_LEN];
        for (unsigned i = 0; i < SIG_SEED_LEN; i++)
            seed[i] = (uint8_t)(0xb0 + i);
        assert_int_equal(sig_key_from_seed(seed, &k), 0);
        made = true;
    }
    return &k;
}

void blks_free(struct blk *b, size_t n)
{
    for (size_t i = 0; b && i < n; i++) {
        free(b[i].bytes);
        sim_op_release(&b[i].put);
    }
    free(b);
}

/* n content blocks of random bytes (64..2047 of them), from the run's
 * generator. */
struct blk *blks_make(struct sim *s, size_t n)
{
    struct blk *b = calloc(n, sizeof(*b));
    uint8_t raw[2048];
    SIMTEST_ASSERT(s, b != NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = 64 + (size_t)simtest_below(s, sizeof(raw) - 64);
        for (size_t j = 0; j < len; j += 8) {
            uint64_t r = sim_random(s);
            memcpy(raw + j, &r, len - j < 8 ? len - j : 8);
        }
        b[i].bytes = malloc(BLOCK_MAX_STORED);
        SIMTEST_ASSERT(s, b[i].bytes != NULL, "out of memory");
        int rc = block_encode(BLOCK_KIND_DATA, raw, len, false, b[i].bytes, &b[i].len, &b[i].key);
        SIMTEST_ASSERT(s, rc == 0, "block_encode: %d", rc);
    }
    return b;
}

/* A random live node that has joined, or -1. */
int pick_joined(struct sim *s)
{
    unsigned n = sim_node_count(s), start = (unsigned)simtest_below(s, n);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (start + k) % n;
        struct chord *c = sim_node_chord(s, i);
        if (c && sim_node_bs(s, i) && chord_vnode_joined(c, 0))
            return (int)i;
    }
    return -1;
}

void lease_now(struct sim *s, const struct id *key, struct lease *l)
{
    uint64_t wall = SIM_WALL_EPOCH_MS + sim_now(s);
    int rc = lease_sign(owner(), key, wall, wall / 1000 + BS_LEASE_DEFAULT_S, l);
    SIMTEST_ASSERT(s, rc == 0, "lease_sign: %d", rc);
}

/* Starts the put of b from a random joined node. */
void blk_put_start(struct sim *s, struct blk *b)
{
    struct lease l;
    int node = pick_joined(s);
    SIMTEST_ASSERT(s, node >= 0, "no joined node to put from");
    lease_now(s, &b->key, &l);
    sim_op_init(&b->put, s);
    int rc = bs_put(sim_node_bs(s, (unsigned)node), b->bytes, b->len, &l, sim_op_done, &b->put);
    SIMTEST_ASSERT(s, rc == 0, "bs_put from node %d: %s", node, bs_strerror(rc));
    b->issued = true;
}

struct blks_wait {
    const struct blk *b;
    size_t n, next; /* b[0..next) are finished or were never issued */
};

static bool blks_finished(void *ctx)
{
    struct blks_wait *w = ctx;
    while (w->next < w->n && (!w->b[w->next].issued || w->b[w->next].put.done))
        w->next++;
    return w->next == w->n;
}

/* Runs until every put issued of b[0..n) has its answer, then marks the
 * acknowledged ones (status 0, at least one copy). Returns how many of
 * b[0..n) are acknowledged. */
size_t blks_wait(struct sim *s, struct blk *b, size_t n)
{
    struct blks_wait w = {.b = b, .n = n};
    size_t acked = 0;
    sim_run_until(s, blks_finished, &w, OP_MAX_MS);
    for (size_t i = 0; i < n; i++) {
        SIMTEST_ASSERT(s, !b[i].issued || b[i].put.done,
                       "put %zu never finished (%d ms after it began)", i, OP_MAX_MS);
        b[i].acked |= b[i].issued && b[i].put.status == 0 && b[i].put.copies > 0;
        acked += b[i].acked;
    }
    return acked;
}

/* Puts b[0..n) concurrently from random nodes and waits for every answer.
 * Returns how many were acknowledged. */
size_t blks_put(struct sim *s, struct blk *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        blk_put_start(s, &b[i]);
    return blks_wait(s, b, n);
}

/* Does block b have a copy on every member of its true replica set (the
 * first k distinct live members from its key)? Holders elsewhere do not
 * count: a get asks the replica set. */
static bool fully_replicated(struct sim *s, const struct blk *b)
{
    unsigned set[K], ns = sim_replica_set(s, &b->key, K, set);
    struct bs *bs;
    for (unsigned j = 0; j < ns; j++)
        if (!(bs = sim_node_bs(s, set[j])) || !bs_holds(bs, STORE_CONTENT, &b->key))
            return false;
    return ns > 0;
}

/* How many acknowledged blocks are not on all of their true replica set;
 * *first gets the index of the first. */
static size_t under_replicated(struct sim *s, const struct blk *b, size_t n, size_t *first)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!b[i].acked || fully_replicated(s, &b[i]))
            continue;
        if (bad++ == 0 && first)
            *first = i;
    }
    return bad;
}

/* Runs until every acknowledged block is on its true replica set (k
 * nodes, or every member when fewer), at most max_ms.
 * Returns the virtual ms it took or -1. */
static int64_t wait_replicated(struct sim *s, const struct blk *b, size_t n, uint64_t max_ms)
{
    uint64_t start = sim_now(s);
    for (;;) {
        if (under_replicated(s, b, n, NULL) == 0)
            return (int64_t)(sim_now(s) - start);
        if (sim_now(s) - start >= max_ms)
            return -1;
        sim_run_for(s, 500);
    }
}

static void describe_holders(struct sim *s, const struct blk *b, char *out, size_t len)
{
    unsigned holders[256], set[K], nh, ns;
    char hex[ID_HEX_LEN + 1];
    size_t o = 0;

    nh = sim_block_holders(s, STORE_CONTENT, &b->key, holders);
    ns = sim_replica_set(s, &b->key, K, set);
    id_to_hex(&b->key, hex);
    hex[12] = '\0';
    o += (size_t)snprintf(out + o, len - o, "block %s: holders", hex);
    for (unsigned i = 0; i < nh && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, " %u", holders[i]);
    if (o < len)
        o += (size_t)snprintf(out + o, len - o, "; true replica set");
    for (unsigned i = 0; i < ns && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, " %u", set[i]);
    if (o < len)
        o += (size_t)snprintf(out + o, len - o, "; on the disks of dead nodes");
    for (unsigned i = 0; i < sim_node_count(s) && o < len; i++)
        if (sim_disk_holds(s, i, STORE_CONTENT, &b->key) && !sim_node_alive(s, i))
            o += (size_t)snprintf(out + o, len - o, " %u", i);
}

void expect_replicated(struct sim *s, const struct blk *b, size_t n, uint64_t max_ms,
                       const char *what)
{
    int64_t took = wait_replicated(s, b, n, max_ms);
    if (took < 0) {
        size_t first = 0, bad = under_replicated(s, b, n, &first);
        char desc[512];
        describe_holders(s, &b[first], desc, sizeof(desc));
        simtest_fail_at(s, __FILE__, __LINE__,
                        "%s: %zu acknowledged blocks not on all k=%u members of their "
                        "replica set after %" PRIu64 " ms; first %s",
                        what, bad, K, max_ms, desc);
    }
    if (!g_quiet)
        printf("#   %s: every acknowledged block on its k=%u replica set after %" PRId64 " ms\n",
               what, K, took);
}

/* Gets every acknowledged block from a random joined node, all at once,
 * and compares the bytes. */
void expect_retrievable(struct sim *s, const struct blk *b, size_t n, const char *what)
{
    struct sim_op *ops = calloc(n, sizeof(*ops));
    int *from = calloc(n, sizeof(*from));
    SIMTEST_ASSERT(s, ops && from, "out of memory");
    for (size_t i = 0; i < n; i++) {
        sim_op_init(&ops[i], s);
        if (!b[i].acked) {
            ops[i].done = true;
            continue;
        }
        from[i] = pick_joined(s);
        SIMTEST_ASSERT(s, from[i] >= 0, "no joined node");
        int rc = bs_get(sim_node_bs(s, (unsigned)from[i]), STORE_CONTENT, &b[i].key, sim_op_done,
                        &ops[i]);
        SIMTEST_ASSERT(s, rc == 0, "bs_get: %s", bs_strerror(rc));
    }
    sim_run_until_done(s, ops, n, OP_MAX_MS);
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        if (!b[i].acked)
            continue;
        char desc[512];
        if (!ops[i].done || ops[i].status != 0) {
            describe_holders(s, &b[i], desc, sizeof(desc));
            simtest_fail_at(s, __FILE__, __LINE__,
                            "%s: acknowledged block %zu lost: get from node %d %s (%s); %s", what,
                            i, from[i], ops[i].done ? "failed" : "never finished",
                            ops[i].done ? bs_strerror(ops[i].status) : "-", desc);
        }
        SIMTEST_ASSERT(s, ops[i].len == b[i].len && memcmp(ops[i].bytes, b[i].bytes, b[i].len) == 0,
                       "%s: block %zu: get from node %d returned other bytes (%zu, put %zu)", what,
                       i, from[i], ops[i].len, b[i].len);
        got++;
    }
    for (size_t i = 0; i < n; i++)
        sim_op_release(&ops[i]);
    free(ops);
    free(from);
    if (!g_quiet)
        printf("#   %s: %zu acknowledged blocks retrieved, identical bytes\n", what, got);
}

void print_stats(struct sim *s, const char *what)
{
    struct sim_blocks_stats st;
    sim_blocks_stats(s, &st);
    printf("#   %s: %" PRIu64 " blocks held, %" PRIu64 " stores, %" PRIu64 " sync rounds, %" PRIu64
           " pushed, %" PRIu64 " pulled, %" PRIu64 " handed off; disk: %" PRIu64 " done, %" PRIu64
           " lost in crashes; %" PRIu64 " malformed\n",
           what, st.bs.blocks, st.bs.stores, st.bs.sync_rounds, st.bs.sync_pushed,
           st.bs.sync_pulled, st.bs.handed_off, st.persist_done, st.persist_lost, st.malformed);
}

void expect_no_malformed(struct sim *s, const char *what)
{
    struct sim_blocks_stats st;
    sim_blocks_stats(s, &st);
    SIMTEST_ASSERT(s, st.malformed == 0, "%s: %" PRIu64 " block-store frames refused as malformed",
                   what, st.malformed);
}

/* The seeds a loop runs: [*first, *first + *n), or only COOPFS_SIM_ONLY
 * (a failure prints it, with the test's name for COOPFS_SIM_TEST). */
void seed_range(uint64_t *first, uint64_t *n)
{
    uint64_t only = simtest_env_u64("COOPFS_SIM_ONLY", UINT64_MAX);
    if (only != UINT64_MAX) {
        *first = only;
        *n = 1;
    }
}

void config(struct sim_config *cfg, uint64_t seed, uint32_t sync_ms)
{
    sim_config_default(cfg, seed);
    cfg->blocks = true;
    cfg->replicas = K;
    cfg->sync_period_ms = sync_ms;
    /* Small rings: r = 8 successors are plenty and cheaper to check. */
    cfg->succ_len = 8;
}

/* ---- one seed of no_loss (test_blocks.c; replayed by test_cas.c) ---- */

void loss_seed(void *arg)
{
    struct loss_run *x = arg;
    struct sim_config cfg;
    char what[64];

    config(&cfg, x->seed, LOSS_SYNC);
    struct sim *s = simtest_start(x->state, &cfg, x->seed, "no loss");
    x->nodes = 10 + (unsigned)simtest_below(s, 7);
    snprintf(what, sizeof(what), "%u nodes", x->nodes);
    simtest_grow_paced(s, x->nodes);
    simtest_expect_ideal(s, PERIODS(40), what);
    struct blk *b = blks_make(s, LOSS_BLOCKS);
    x->acked = blks_put(s, b, LOSS_BLOCKS);
    SIMTEST_ASSERT(s, x->acked == LOSS_BLOCKS, "%s: only %zu of %u puts acknowledged", what,
                   x->acked, LOSS_BLOCKS);

    x->rounds = 6;
    for (unsigned r = 0; r < x->rounds; r++) {
        /* Up to k-1 members of one block's true replica set at once. */
        unsigned set[K], victims[K - 1];
        const struct blk *target = &b[simtest_below(s, LOSS_BLOCKS)];
        unsigned ns = sim_replica_set(s, &target->key, K, set);
        unsigned want = 1 + (unsigned)simtest_below(s, K - 1), nv = 0;
        while (nv < want && ns > 0 && sim_live_count(s) > 6) {
            unsigned j = (unsigned)simtest_below(s, ns);
            victims[nv++] = set[j];
            set[j] = set[--ns];
        }
        uint64_t t0 = sim_now(s);
        if (nv > 0 && sim_crash(s, victims, nv, true) == 0)
            x->crashed += nv;
        else if (nv > 1 && sim_crash(s, victims, 1, true) == 0)
            x->crashed++;
        /* Before the next round, every block is back to k copies: then no
         * block ever loses k replicas between two rounds. */
        char round[96];
        snprintf(round, sizeof(round), "%s, round %u", what, r);
        expect_replicated(s, b, LOSS_BLOCKS, LOSS_REPAIR_MAX, round);
        int64_t took = (int64_t)(sim_now(s) - t0);
        if (took > x->repair_max_ms)
            x->repair_max_ms = took;
        if (sim_now(s) - t0 < LOSS_WAIT)
            sim_run_for(s, LOSS_WAIT - (sim_now(s) - t0));
        /* Restart some of the dead (they come back with their disks). */
        int d = simtest_pick_dead(s);
        if (d >= 0 && simtest_unit(s) < 0.5 && sim_restart(s, (unsigned)d) == 0)
            x->restarted++;
        SIMTEST_ASSERT(s, sim_violations(s, NULL) == 0, "%s: chord invariant violated", what);
    }
    simtest_expect_ideal(s, PERIODS(60), what);
    expect_replicated(s, b, LOSS_BLOCKS, LOSS_REPAIR_MAX, what);
    expect_retrievable(s, b, LOSS_BLOCKS, what);
    expect_no_malformed(s, what);
    blks_free(b, LOSS_BLOCKS);
    x->trace = sim_trace_hash(s);
    x->events = sim_events(s);
}
