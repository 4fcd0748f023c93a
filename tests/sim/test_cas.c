/* test_cas.c — the block store (blockstore/) on every node of the
 * simulator: root compare-and-swap under faults, and the replay of a run
 * of no_loss (test_blocks.c) and of a race. The helpers it shares with
 * test_blocks.c are in blocks_common.c.
 *
 *   replay       one seed of no_loss and one race, each run twice: the
 *                same trace hash and event count.
 *   cas_race     two writers racing compare-and-swap on one root block
 *                over a lossy, reordering network, 50 seeds; the recorded
 *                history must be linearizable (see check_race).
 *   cas_race_crash  the same, 10 seeds, each with a crash of a member of
 *                the root's replica set during the race.
 *
 * Each scenario prints its seed; every failure names the seed and the
 * virtual time. COOPFS_SIM_SEED sets the file's base seed; a failing seed
 * of a loop replays alone with the COOPFS_SIM_TEST and COOPFS_SIM_ONLY its
 * message names. COOPFS_SIM_SEEDS changes the number of seeds of no_loss,
 * COOPFS_SIM_RACES that of cas_race (a fifth of it with crashes),
 * COOPFS_SIM_TEST (a cmocka glob: * and ?) runs only the matching tests,
 * COOPFS_SIM_HISTORY=1 prints each race's history, and
 * COOPFS_SIM_BS_TRACE=1 makes the simulator print every block-store frame
 * delivered or lost.
 *
 * Callbacks of the block store run inside simulator events, so these
 * scenarios never crash nodes or start operations from a callback: they
 * record the outcome, and the scenario acts between events
 * (sim_run_until stops as soon as there is something to do).
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

static uint64_t g_base;

/* ---- two writers racing compare-and-swap on one root ----
 *
 * Each writer loops: read the root (version v, or none: v = 0), then
 * bs_root_put(version v + 1, expect v) with a payload naming the writer, a
 * counter, and the write it replaces (the id in the root it read); on any
 * outcome, read again. Every operation goes into a history with its
 * invocation and completion times.
 *
 * check_race then requires, of the history and a final read after the
 * heal:
 *  - successful writes have distinct versions, each one above the version
 *    it expected, and the bs reports the version written;
 *  - every root ever read (or returned by a conflict) is one some writer
 *    wrote with that version, invoked before the read finished, and if a
 *    write of that version succeeded, it is that one;
 *  - a read never returns a version below one whose write succeeded before
 *    the read began;
 *  - the final root is the latest successful write, or a write whose
 *    outcome was unknown (indeterminate, timed out) with a higher version;
 *  - following "replaces" links from the final root down to version 1
 *    walks versions v, v-1, ..., 1 through writes that were made, and
 *    passes every successful write: none was lost from the chain.
 */

#define RACE_WRITERS 2
#define RACE_OPS     4096
#define ROOT_PAYLOAD 10

enum hop_kind { HOP_READ, HOP_WRITE };

struct hop {
    uint8_t kind, writer;
    bool done;
    int status;
    uint64_t t_inv, t_done;
    uint64_t version; /* read: the version found (0: none); write: the version written */
    uint64_t expect;  /* write */
    uint32_t id;      /* write: its own id; read: the id of the root found (0: none) */
    uint32_t prev;    /* write: the id of the root it replaces (0: none) */
    uint64_t seen;    /* write: the version a conflict returned */
    uint32_t seen_id;
    char reason[72]; /* the server's explanation of a failure */
};

struct race;

struct writer {
    struct race *r;
    unsigned idx, node;
    uint32_t counter;
    bool ready;    /* the last operation finished: the scenario acts */
    bool finished; /* enough successful writes, or out of time */
    int cur;       /* history index of the operation in flight */
    uint64_t v;    /* the version the last read found */
    uint32_t v_id;
    unsigned ok;
};

struct race {
    struct sim *s;
    struct id key;
    struct hop hist[RACE_OPS];
    size_t nhist;
    struct writer w[RACE_WRITERS];
    uint64_t crash_at; /* UINT64_MAX: no crash */
};

static uint32_t make_id(unsigned writer, uint32_t counter)
{
    return (uint32_t)(writer + 1) << 24 | (counter & 0xffffff);
}

/* Reads the writer id, counter and replaced id from root bytes. */
static bool root_ids(const uint8_t *bytes, size_t len, uint64_t *version, uint32_t *id,
                     uint32_t *prev)
{
    struct root_info ri;
    if (root_parse(bytes, len, &ri) != 0 || ri.payload_len != ROOT_PAYLOAD)
        return false;
    *version = ri.version;
    *id = (uint32_t)ri.payload[0] << 24 | (uint32_t)ri.payload[1] << 16 |
          (uint32_t)ri.payload[2] << 8 | ri.payload[3];
    if (prev)
        *prev = (uint32_t)ri.payload[4] << 24 | (uint32_t)ri.payload[5] << 16 |
                (uint32_t)ri.payload[6] << 8 | ri.payload[7];
    return true;
}

static void race_done(void *ctx, const struct bs_result *res)
{
    struct writer *w = ctx;
    struct race *r = w->r;
    struct hop *h = &r->hist[w->cur];

    h->done = true;
    h->status = res->status;
    h->t_done = sim_now(r->s);
    if (res->reason)
        snprintf(h->reason, sizeof(h->reason), "%s", res->reason);
    if (res->status == -ECANCELED)
        return; /* the sim is going away */
    if (h->kind == HOP_READ) {
        if (res->status == 0) {
            uint64_t v = 0;
            uint32_t id = 0;
            if (!root_ids(res->bytes, res->len, &v, &id, NULL))
                h->status = -EBADMSG; /* judged in check_race */
            h->version = v;
            h->id = id;
        }
    } else if (res->status == BS_ERR_CONFLICT && res->bytes) {
        uint64_t v = 0;
        uint32_t id = 0;
        if (root_ids(res->bytes, res->len, &v, &id, NULL)) {
            h->seen = v;
            h->seen_id = id;
        }
    } else if (res->status == 0) {
        h->seen = res->version; /* what the bs says it stored */
    }
    w->ready = true;
}

static struct hop *race_hop(struct race *r, struct writer *w, uint8_t kind)
{
    SIMTEST_ASSERT(r->s, r->nhist < RACE_OPS, "history full");
    w->cur = (int)r->nhist;
    struct hop *h = &r->hist[r->nhist++];
    memset(h, 0, sizeof(*h));
    h->kind = kind;
    h->writer = (uint8_t)w->idx;
    h->t_inv = sim_now(r->s);
    w->ready = false;
    return h;
}

static void race_read(struct race *r, struct writer *w)
{
    race_hop(r, w, HOP_READ);
    int rc = bs_get(sim_node_bs(r->s, w->node), STORE_ROOT, &r->key, race_done, w);
    SIMTEST_ASSERT(r->s, rc == 0, "writer %u: bs_get: %s", w->idx, bs_strerror(rc));
}

static void race_write(struct race *r, struct writer *w)
{
    uint8_t payload[ROOT_PAYLOAD] = {0}, bytes[ROOT_MAX_LEN];
    size_t len;
    struct hop *h = race_hop(r, w, HOP_WRITE);

    h->id = make_id(w->idx, ++w->counter);
    h->prev = w->v_id;
    h->version = w->v + 1;
    h->expect = w->v;
    for (int i = 0; i < 4; i++) {
        payload[i] = (uint8_t)(h->id >> (24 - 8 * i));
        payload[4 + i] = (uint8_t)(h->prev >> (24 - 8 * i));
    }
    int rc = root_encode(owner(), h->version, payload, sizeof(payload), bytes, &len);
    SIMTEST_ASSERT(r->s, rc == 0, "root_encode: %d", rc);
    rc = bs_root_put(sim_node_bs(r->s, w->node), bytes, len, h->expect, race_done, w);
    SIMTEST_ASSERT(r->s, rc == 0, "writer %u: bs_root_put: %s", w->idx, bs_strerror(rc));
}

static bool race_wake(void *ctx)
{
    struct race *r = ctx;
    for (unsigned i = 0; i < RACE_WRITERS; i++)
        if (r->w[i].ready && !r->w[i].finished)
            return true;
    return sim_now(r->s) >= r->crash_at;
}

/* The write with id, or NULL. */
static const struct hop *race_write_of(const struct race *r, uint32_t id)
{
    for (size_t i = 0; i < r->nhist; i++)
        if (r->hist[i].kind == HOP_WRITE && r->hist[i].id == id)
            return &r->hist[i];
    return NULL;
}

static bool unknown_outcome(int status)
{
    return status != 0 && status != BS_ERR_CONFLICT;
}

/* A root (version v, id) observed by an operation that finished at t_done
 * and began at t_inv: checks it against the writes. */
static void race_check_seen(struct race *r, const char *what, size_t at, uint64_t v, uint32_t id,
                            uint64_t t_inv, uint64_t t_done)
{
    struct sim *s = r->s;
    if (v > 0) {
        const struct hop *w = race_write_of(r, id);
        SIMTEST_ASSERT(s, w && w->version == v,
                       "%s (op %zu) found version %" PRIu64 " id %08x that no writer wrote", what,
                       at, v, id);
        SIMTEST_ASSERT(s, w->t_inv <= t_done,
                       "%s (op %zu) found version %" PRIu64 " before its write began", what, at, v);
        SIMTEST_ASSERT(s, !(w->done && w->status == BS_ERR_CONFLICT),
                       "%s (op %zu) found version %" PRIu64 " id %08x, whose write failed with "
                       "a conflict (nothing written)",
                       what, at, v, id);
    }
    for (size_t i = 0; i < r->nhist; i++) {
        const struct hop *w = &r->hist[i];
        if (w->kind != HOP_WRITE || w->status != 0)
            continue;
        SIMTEST_ASSERT(s, !(w->version == v && w->id != id),
                       "%s (op %zu) found version %" PRIu64 " id %08x, but the write that "
                       "succeeded with that version was %08x (op %zu)",
                       what, at, v, id, w->id, i);
        SIMTEST_ASSERT(s, !(w->t_done < t_inv && w->version > v),
                       "%s (op %zu, began t=%" PRIu64 ") found version %" PRIu64
                       ", below version %" PRIu64 " acknowledged at t=%" PRIu64 " (op %zu)",
                       what, at, t_inv, v, w->version, w->t_done, i);
    }
}

/* COOPFS_SIM_HISTORY=1 prints the history of a race before it is
 * checked, to follow a failure. */
static void race_dump(const struct race *r)
{
    if (simtest_env_u64("COOPFS_SIM_HISTORY", 0) != 1)
        return;
    fprintf(stderr, "--- history (seed %" PRIu64 ")\n", sim_seed(r->s));
    for (size_t i = 0; i < r->nhist; i++) {
        const struct hop *h = &r->hist[i];
        if (h->kind == HOP_READ)
            fprintf(stderr,
                    "%3zu w%u read  t=%" PRIu64 "..%" PRIu64 " %-14s v%" PRIu64 " id %08x %s\n", i,
                    h->writer, h->t_inv, h->t_done, h->status ? bs_strerror(h->status) : "ok",
                    h->version, h->id, h->reason);
        else
            fprintf(stderr,
                    "%3zu w%u write t=%" PRIu64 "..%" PRIu64 " %-14s v%" PRIu64 " (expect %" PRIu64
                    ") id %08x prev %08x seen v%" PRIu64 " %08x %s\n",
                    i, h->writer, h->t_inv, h->t_done, h->status ? bs_strerror(h->status) : "ok",
                    h->version, h->expect, h->id, h->prev, h->seen, h->seen_id, h->reason);
    }
}

static void check_race(struct race *r, uint64_t final_v, uint32_t final_id, uint64_t t_final)
{
    struct sim *s = r->s;
    uint64_t max_ok = 0;
    uint32_t max_ok_id = 0;

    for (size_t i = 0; i < r->nhist; i++) {
        const struct hop *h = &r->hist[i];
        SIMTEST_ASSERT(s, h->done, "op %zu never finished", i);
        if (h->kind == HOP_READ) {
            SIMTEST_ASSERT(s, h->status != -EBADMSG, "read %zu returned a root not written here",
                           i);
            if (h->status == 0 || h->status == BS_ERR_NOT_FOUND)
                race_check_seen(r, "read", i, h->status == 0 ? h->version : 0, h->id, h->t_inv,
                                h->t_done);
            continue;
        }
        if (h->status == BS_ERR_CONFLICT && h->seen > 0)
            race_check_seen(r, "conflict", i, h->seen, h->seen_id, h->t_inv, h->t_done);
        if (h->status != 0)
            continue;
        SIMTEST_ASSERT(s, h->version == h->expect + 1,
                       "write %zu: version %" PRIu64 " expected %" PRIu64, i, h->version,
                       h->expect);
        SIMTEST_ASSERT(s, h->seen == h->version,
                       "write %zu succeeded with version %" PRIu64 " but reports %" PRIu64, i,
                       h->version, h->seen);
        for (size_t j = 0; j < i; j++)
            SIMTEST_ASSERT(s,
                           !(r->hist[j].kind == HOP_WRITE && r->hist[j].status == 0 &&
                             r->hist[j].version == h->version),
                           "writes %zu and %zu both succeeded with version %" PRIu64, j, i,
                           h->version);
        if (h->version > max_ok) {
            max_ok = h->version;
            max_ok_id = h->id;
        }
    }
    race_check_seen(r, "final read", r->nhist, final_v, final_id, t_final, t_final);
    if (final_v == max_ok)
        SIMTEST_ASSERT(s, final_id == max_ok_id,
                       "final root %08x is not the latest successful write %08x (version %" PRIu64
                       ")",
                       final_id, max_ok_id, max_ok);
    else {
        const struct hop *w = race_write_of(r, final_id);
        SIMTEST_ASSERT(s, final_v > max_ok && w && unknown_outcome(w->status),
                       "final root version %" PRIu64 " (id %08x, status %s) but the latest "
                       "successful write is version %" PRIu64,
                       final_v, final_id, w ? bs_strerror(w->status) : "none", max_ok);
    }
    /* The chain from the final root down to version 1. */
    bool *on_chain = calloc(r->nhist + 1, sizeof(*on_chain));
    SIMTEST_ASSERT(s, on_chain != NULL, "out of memory");
    uint64_t v = final_v;
    uint32_t id = final_id;
    while (v > 0) {
        const struct hop *w = race_write_of(r, id);
        SIMTEST_ASSERT(s, w && w->version == v,
                       "the chain from the final root breaks at version %" PRIu64 " (id %08x)", v,
                       id);
        on_chain[w - r->hist] = true;
        id = w->prev;
        v--;
        SIMTEST_ASSERT(s, (v == 0) == (id == 0),
                       "the chain: write %08x replaces %08x, expected version %" PRIu64, w->id, id,
                       v);
    }
    for (size_t i = 0; i < r->nhist; i++) {
        const struct hop *h = &r->hist[i];
        if (h->kind == HOP_WRITE && h->status == 0 && !on_chain[i]) {
            free(on_chain);
            simtest_fail_at(s, __FILE__, __LINE__,
                            "write %zu (id %08x, version %" PRIu64 ", acknowledged at t=%" PRIu64
                            ") is lost: not on the chain from the final root",
                            i, h->id, h->version, h->t_done);
        }
    }
    free(on_chain);
}

struct race_run {
    void **state;
    uint64_t seed;
    bool crash;
    unsigned ok, conflicts, unknown, reads;
    uint64_t final_v;
    uint64_t trace, events;
    double loss;
};

/* One reader at a time on a healed ring: a root read from node. */
static void race_final_read(struct race *r, unsigned node, uint64_t *v, uint32_t *id)
{
    struct sim_op op = {0};
    sim_op_init(&op, r->s);
    int rc = bs_get(sim_node_bs(r->s, node), STORE_ROOT, &r->key, sim_op_done, &op);
    SIMTEST_ASSERT(r->s, rc == 0, "final read: %s", bs_strerror(rc));
    sim_run_until_done(r->s, &op, 1, OP_MAX_MS);
    SIMTEST_ASSERT(r->s, op.done && (op.status == 0 || op.status == BS_ERR_NOT_FOUND),
                   "final read from node %u: %s", node,
                   op.done ? bs_strerror(op.status) : "never finished");
    *v = 0;
    *id = 0;
    if (op.status == 0)
        SIMTEST_ASSERT(r->s, root_ids(op.bytes, op.len, v, id, NULL),
                       "final read: a root not written here");
    sim_op_release(&op);
}

static void race_seed(void *arg)
{
    struct race_run *x = arg;
    struct sim_config cfg;
    static struct race r; /* large; callbacks may still hold it at teardown */

    config(&cfg, x->seed, 3000);
    cfg.lat_max_ms = 80;
    struct sim *s = simtest_start(x->state, &cfg, x->seed, x->crash ? "race, crash" : "race");
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.crash_at = UINT64_MAX;
    root_key(&owner()->pub, &r.key);
    simtest_grow_paced(s, 10);
    simtest_expect_ideal(s, PERIODS(60), "built");
    /* 5, 10, 15 or 20% of the frames lost, 10% delayed up to four times
     * the latency bound more (reordered), 2% duplicated. */
    x->loss = 0.05 * (double)(1 + x->seed % 4);
    sim_set_faults(s, x->loss, 0.02, 0.1);

    /* Writers away from the root's replica set, so a member can crash
     * under them without cancelling their operations. */
    unsigned set[K], ns = sim_replica_set(s, &r.key, K, set);
    SIMTEST_ASSERT(s, ns == K, "replica set of %u", ns);
    for (unsigned i = 0; i < RACE_WRITERS; i++) {
        unsigned node;
        bool bad;
        do {
            node = (unsigned)simtest_below(s, sim_node_count(s));
            bad = false;
            for (unsigned j = 0; j < ns; j++)
                bad |= set[j] == node;
            for (unsigned j = 0; j < i; j++)
                bad |= r.w[j].node == node;
        } while (bad);
        r.w[i] = (struct writer){.r = &r, .idx = i, .node = node, .ready = true, .cur = -1};
    }
    uint64_t start = sim_now(s), end = start + 60000;
    if (x->crash)
        r.crash_at = start + 1000 + simtest_below(s, 20000);
    const unsigned target = 8;

    for (;;) {
        if (sim_now(s) >= r.crash_at) {
            unsigned victim = set[simtest_below(s, ns)];
            r.crash_at = UINT64_MAX;
            SIMTEST_ASSERT(s, sim_crash(s, &victim, 1, true) == 0, "crash of %u refused", victim);
        }
        bool busy = false;
        for (unsigned i = 0; i < RACE_WRITERS; i++) {
            struct writer *w = &r.w[i];
            if (w->finished)
                continue;
            if (!w->ready) {
                busy = true;
                continue;
            }
            const struct hop *h = w->cur >= 0 ? &r.hist[w->cur] : NULL;
            if (h && h->kind == HOP_READ && (h->status == 0 || h->status == BS_ERR_NOT_FOUND)) {
                w->v = h->status == 0 ? h->version : 0;
                w->v_id = h->status == 0 ? h->id : 0;
                race_write(&r, w);
                busy = true;
                continue;
            }
            if (h && h->kind == HOP_WRITE && h->status == 0)
                w->ok++;
            if (w->ok >= target || sim_now(s) >= end) {
                w->finished = true;
                continue;
            }
            race_read(&r, w);
            busy = true;
        }
        if (!busy)
            break;
        int64_t rc = sim_run_until(s, race_wake, &r, OP_MAX_MS);
        SIMTEST_ASSERT(s, rc >= 0, "the racing writers' operations are stuck");
    }

    /* Heal, let maintenance settle any indeterminate write, and read. */
    simtest_heal(s);
    simtest_expect_ideal(s, PERIODS(80), "healed");
    sim_run_for(s, 3 * 3000);
    uint64_t v1, v2;
    uint32_t id1, id2;
    int a = pick_joined(s), b2 = pick_joined(s);
    SIMTEST_ASSERT(s, a >= 0 && b2 >= 0, "no joined node");
    uint64_t t_final = sim_now(s);
    race_final_read(&r, (unsigned)a, &v1, &id1);
    race_final_read(&r, (unsigned)b2, &v2, &id2);
    SIMTEST_ASSERT(s, v1 == v2 && id1 == id2,
                   "after the heal two reads disagree: node %d version %" PRIu64
                   " (%08x), node %d version %" PRIu64 " (%08x)",
                   a, v1, id1, b2, v2, id2);
    for (size_t i = 0; i < r.nhist; i++) {
        const struct hop *h = &r.hist[i];
        if (h->kind == HOP_READ)
            x->reads++;
        else if (h->status == 0)
            x->ok++;
        else if (h->status == BS_ERR_CONFLICT)
            x->conflicts++;
        else
            x->unknown++;
    }
    x->final_v = v1;
    x->trace = sim_trace_hash(s);
    x->events = sim_events(s);
    race_dump(&r);
    check_race(&r, v1, id1, t_final);
    SIMTEST_ASSERT(s, x->ok >= 2, "only %u writes succeeded in 60 s of racing", x->ok);
    expect_no_malformed(s, "race");
}

static void run_races(void **state, uint64_t first, uint64_t n, bool crash)
{
    unsigned failed = 0;
    char msg[1024], first_msg[1200] = "";

    seed_range(&first, &n);
    printf("# %" PRIu64 " races from seed %" PRIu64 "%s\n", n, first,
           crash ? ", each with a crash of a replica-set member" : "");
    simtest_set_quiet(true);
    g_quiet = true;
    for (uint64_t i = 0; i < n; i++) {
        struct race_run x = {.state = state, .seed = first + i, .crash = crash};
        double t0 = wall_s();
        if (!simtest_try(race_seed, &x, msg, sizeof(msg))) {
            printf("# FAIL seed %" PRIu64 " (alone: COOPFS_SIM_TEST=test_blocks_cas_race%s "
                   "COOPFS_SIM_ONLY=%" PRIu64 "): %s\n",
                   x.seed, x.crash ? "_crash" : "", x.seed, msg);
            if (failed++ == 0)
                snprintf(first_msg, sizeof(first_msg), "seed %" PRIu64 ": %s", x.seed, msg);
            continue;
        }
        printf("# seed %" PRIu64 "%s, %2.0f%% loss: %u ok, %u conflicts, %u unknown, %u reads; "
               "final version "
               "%" PRIu64 "; trace %016" PRIx64 ", %" PRIu64 " events (%.2fs)\n",
               x.seed, x.crash ? " (crash)" : "", 100 * x.loss, x.ok, x.conflicts, x.unknown,
               x.reads, x.final_v, x.trace, x.events, wall_s() - t0);
    }
    simtest_set_quiet(false);
    g_quiet = false;
    if (failed)
        fail_msg("%u of %" PRIu64 " races failed; first: %s", failed, n, first_msg);
}

static void test_blocks_cas_race(void **state)
{
    run_races(state, g_base + 5000, simtest_env_u64("COOPFS_SIM_RACES", 50), false);
}

static void test_blocks_cas_race_crash(void **state)
{
    /* Found: when the primary crashed after storing a root on a majority
     * but before answering, the client started the put over (a new
     * request to the new primary), found a later version and reported
     * BS_ERR_CONFLICT for a write that was in the chain (seed 400774,
     * op 3; blockstore/client.c, fixed in c0a20df). */
    run_races(state, g_base + 6000, simtest_env_u64("COOPFS_SIM_RACES", 50) / 5, true);
}

/* ---- replay ----
 * The same seed replays the same run with blocks too: one seed of
 * no_loss and one race with a crash, each run twice, must give the same
 * trace hash and event count. This is what makes a failing seed above
 * worth printing. */
static void test_blocks_replay(void **state)
{
    struct loss_run a = {.state = state, .seed = g_base + 77};
    struct loss_run b = a;
    struct race_run c = {.state = state, .seed = g_base + 78, .crash = true};
    struct race_run d = c;
    char msg[1024];

    /* Only the replay is judged here: a run the checks fail still has a
     * trace, taken from the sim where it stopped. */
    g_quiet = true;
    simtest_set_quiet(true);
#define RUN(fn, x)                                                                                 \
    do {                                                                                           \
        simtest_try(fn, &(x), msg, sizeof(msg));                                                   \
        (x).trace = sim_trace_hash(*state);                                                        \
        (x).events = sim_events(*state);                                                           \
    } while (0)
    RUN(loss_seed, a);
    RUN(loss_seed, b);
    RUN(race_seed, c);
    RUN(race_seed, d);
#undef RUN
    g_quiet = false;
    simtest_set_quiet(false);
    printf("# seed %" PRIu64 ": trace %016" PRIx64 " / %016" PRIx64 ", %" PRIu64 " / %" PRIu64
           " events\n",
           a.seed, a.trace, b.trace, a.events, b.events);
    printf("# seed %" PRIu64 " (race, crash): trace %016" PRIx64 " / %016" PRIx64 ", %" PRIu64
           " / %" PRIu64 " events\n",
           c.seed, c.trace, d.trace, c.events, d.events);
    if (a.trace != b.trace || a.events != b.events)
        fail_msg("seed %" PRIu64 ": two runs diverge", a.seed);
    if (c.trace != d.trace || c.events != d.events)
        fail_msg("seed %" PRIu64 " (race): two runs diverge", c.seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_blocks_replay, simtest_teardown),
        cmocka_unit_test_teardown(test_blocks_cas_race, simtest_teardown),
        cmocka_unit_test_teardown(test_blocks_cas_race_crash, simtest_teardown),
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* COOPFS_SIM_TEST=test_blocks_cas_race (a glob) runs only that test. */
    const char *only = getenv("COOPFS_SIM_TEST");
    if (only && *only)
        cmocka_set_test_filter(only);
    g_base = simtest_base_seed(DEFAULT_SEED);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
