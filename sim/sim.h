/* sim.h — a deterministic simulator running the real chord/ code.
 *
 * Many physical nodes live in one process, each a struct chord driven
 * through its own struct env: a virtual millisecond clock, a seeded random
 * source, and a simulated network that delays (configurable distribution),
 * loses, duplicates and reorders frames, and drops those that cross a
 * partition. Nodes crash (state thrown away), restart (same address, fresh
 * state, rejoin) and leave voluntarily.
 *
 * Everything that happens follows from the seed: two runs with the same
 * seed and the same calls produce the same trace hash (sim_trace_hash),
 * which folds in every event's time, kind, node and bytes.
 *
 * Invariants (Zave's, plus ours) are checked after every event when
 * checking is on; a violation is recorded with the seed and the virtual
 * time, and sim_violations() reports it:
 *   local   every successor list is in ring order, without duplicates,
 *           never contains its owner, and is no longer than r;
 *   full    additionally: every live member has a live successor in its
 *           list (unless it is the only live member), and the graph of
 *           first live successors has exactly one cycle, which goes round
 *           the identifier ring exactly once (one ordered ring).
 * Full checks need the fail rule and no partition; while a partition is
 * up, or after the fail rule was broken on purpose, only local checks run.
 * sim_heal() re-enables full checks once the ring is ideal again.
 *
 * The fail rule is Zave's (no failure may leave a live member without a
 * live successor), translated to message passing, where her atomic steps
 * become requests and replies:
 *   - successor lists in flight (PREDECESSOR_REPLY, LEAVE) count as the
 *     list their receiver, member or joiner, will hold, cut as it will cut
 *     them;
 *   - a node that is leaving counts as failed: it is no longer a member;
 *   - the ring may not vanish: at least one member stays. When a failure
 *     leaves exactly one member, that member is a ring of one until it
 *     finds live nodes again, whoever joins meanwhile.
 *
 * "Ideal" means every live node has joined, every vnode's successor list
 * is exactly the next min(r, M-1) live members in id order (M = live
 * members) and its predecessor is the previous live member.
 */
#ifndef COOPFS_SIM_SIM_H
#define COOPFS_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "blockstore/bs.h"
#include "chord/chord.h"

enum sim_latency { SIM_LAT_FIXED, SIM_LAT_UNIFORM, SIM_LAT_EXP };
enum sim_check { SIM_CHECK_NONE, SIM_CHECK_LOCAL, SIM_CHECK_FULL };

struct sim_config {
    uint64_t seed;
    unsigned vnodes;          /* per physical node, default 1 */
    unsigned succ_len;        /* r, default CHORD_SUCC_LEN */
    enum sim_latency latency; /* default SIM_LAT_UNIFORM */
    uint32_t lat_min_ms;      /* default 5 */
    uint32_t lat_max_ms;      /* uniform: upper bound; exp: mean above min. default 50 */
    double loss;              /* 0..0.3: probability a frame is lost */
    double dup;               /* probability a frame is delivered twice */
    double reorder;           /* probability a frame gets an extra delay of up to 4x lat_max */
    enum sim_check check;     /* default SIM_CHECK_FULL */
    FILE *log;                /* node logs (NULL = silent) */
    enum log_level log_level;
    /* Optional chord timing overrides (0 = chord default). */
    uint32_t stabilize_ms;

    /* Block store (see "Blocks" below). Off by default: a chord-only run
     * is then exactly what it was before blocks existed (same trace). */
    bool blocks;
    unsigned replicas;          /* k, default BS_REPLICAS_DEFAULT */
    uint64_t capacity;          /* bytes each node donates, default 1 GiB */
    uint32_t sync_period_ms;    /* maintenance round, default BS_SYNC_PERIOD_MS; 0: none */
    uint32_t persist_delay_ms;  /* virtual time a durable write takes, default 2 */
    uint32_t read_delay_ms;     /* virtual time a read_start takes, default 1 */
    uint32_t bs_rpc_timeout_ms; /* one try of a block request; 0: bs default */
};

void sim_config_default(struct sim_config *cfg, uint64_t seed);

struct sim;

/* Returns 0 and *out, or -ENOMEM / -EINVAL. */
int sim_new(const struct sim_config *cfg, struct sim **out);
void sim_free(struct sim *s); /* NULL-safe */

/* Adds a physical node at a fresh loopback address (127.x.y.z:4000).
 * bootstrap < 0 makes it create a new ring; otherwise it joins through
 * node `bootstrap`. Returns the node's index (stable for the run) or
 * -errno. */
int sim_add_node(struct sim *s, int bootstrap);
/* Adds n nodes, each joining through a random live member. They join
 * concurrently. Returns 0 or -errno. */
int sim_add_nodes(struct sim *s, unsigned n);

/* Crashes the given nodes at the same instant. With respect_fail_rule,
 * returns -EPERM and crashes nothing if that would leave some live member
 * without a live successor in its list; otherwise the fail rule may be
 * broken and checks drop to local until sim_heal(). Returns 0 or -errno. */
int sim_crash(struct sim *s, const unsigned *nodes, size_t n, bool respect_fail_rule);
/* Picks up to n random live nodes that can crash together within the fail
 * rule and crashes them. Returns how many crashed. */
size_t sim_crash_random(struct sim *s, size_t n);
/* Restarts a crashed node: same address, fresh state, joins through a
 * random live member. Returns 0 or -errno. */
int sim_restart(struct sim *s, unsigned node);
/* Starts a voluntary leave; the node is removed once it has left. */
int sim_leave(struct sim *s, unsigned node);

/* Partitions the network: group[i] is node i's side; frames between
 * different groups are dropped. Array of sim_node_count() entries. */
void sim_partition(struct sim *s, const uint8_t *group);
/* Ends partitions and stops loss, duplication and reordering. */
void sim_heal(struct sim *s);
/* Changes the fault rates for frames sent from now on. */
void sim_set_faults(struct sim *s, double loss, double dup, double reorder);

/* Runs events up to now + ms. Returns the number of violations so far. */
size_t sim_run_for(struct sim *s, uint64_t ms);
/* Runs until the ring is ideal, checking once per stabilize period, for at
 * most max_ms. Returns the virtual ms it took, or -ETIMEDOUT. */
int64_t sim_run_until_ideal(struct sim *s, uint64_t max_ms);
/* Is the ring ideal now? If not and why is given, describes the first
 * difference found. */
bool sim_ring_is_ideal(struct sim *s, char *why, size_t why_len);
/* Runs the full invariant check now (whatever the mode). Returns 0 or -1
 * with a description in why. */
int sim_check_now(struct sim *s, char *why, size_t why_len);

struct sim_lookup_stats {
    uint64_t issued, ok, wrong, failed; /* wrong: answered, but not the true successor */
    uint64_t iterative;
    double mean_hops;
    unsigned p1_hops, p50_hops, p99_hops, max_hops;
    double mean_ms;
    unsigned p99_ms;
};
/* Issues n lookups of random keys from random live members, spread over
 * spread_ms of virtual time, runs until all finish, and compares each
 * answer with the true successor at the time it arrives. */
void sim_lookups(struct sim *s, uint64_t n, uint64_t spread_ms, struct sim_lookup_stats *out);

/* Observations. */
uint64_t sim_now(const struct sim *s);
uint64_t sim_events(const struct sim *s);
uint64_t sim_trace_hash(const struct sim *s);
uint64_t sim_seed(const struct sim *s);
unsigned sim_node_count(const struct sim *s);
unsigned sim_live_count(const struct sim *s);
bool sim_node_alive(const struct sim *s, unsigned node);
struct chord *sim_node_chord(struct sim *s, unsigned node); /* NULL when dead */
/* Violations recorded so far; *first (if non-NULL) gets the first one's
 * text, which names the seed and the virtual time. */
size_t sim_violations(const struct sim *s, const char **first);
/* A uniformly random number from the run's own generator (for scenarios
 * that need choices that replay with the seed). */
uint64_t sim_random(struct sim *s);
/* The true successor of key among live joined vnodes; false if none. */
bool sim_true_successor(struct sim *s, const struct id *key, struct chord_peer *out);

/* Memory the simulator holds, in bytes (nodes, chord state, queued frames,
 * block stores and their simulated disks). */
size_t sim_memory_bytes(const struct sim *s);

/* ---- Blocks (cfg.blocks) ----
 *
 * Every node then runs a struct bs beside its chord, sharing its env
 * (which gives wall_ms = SIM_WALL_EPOCH_MS + virtual now). Frames of types
 * BS_MSG_FIRST..BS_MSG_LAST go to bs_input, all others to chord_input;
 * chord's update and lookup_done upcalls go to the bs first; a node's
 * timer is the earlier of both deadlines and runs both ticks.
 *
 * Each node has a simulated disk (a struct bs_persist in memory) that
 * survives crashes: a write, remove or lease append becomes visible, and
 * its completion reaches bs_persist_done, persist_delay_ms after it was
 * started, as an event of its own. A crash loses the operations not yet
 * completed and keeps the completed ones. sim_restart builds a fresh
 * chord and bs and hands them every record that survived (bs_load, with
 * its leases) before the node rejoins; a record damaged with
 * sim_corrupt_record is left out, as the real store's check at open
 * quarantines it. Reads return copies: read at once, read_start (GET,
 * push) read_delay_ms later, as an event.
 *
 * Scenarios call the bs of a node directly (sim_node_bs): whatever the
 * call arms is scheduled before the next event runs. Its completion
 * callbacks run inside simulator events, so they must not crash, restart
 * or add nodes, nor free the sim: record the outcome and act between
 * events (sim_run_until stops as soon as a condition holds). A crash
 * (and sim_free) fails the node's client operations with -ECANCELED,
 * their callbacks running while the sim is still whole.
 * COOPFS_SIM_BS_TRACE=1 prints every block-store frame delivered or lost
 * to stderr. */

#define SIM_WALL_EPOCH_MS 1700000000000ull /* wall clock at virtual time 0 */

/* The node's block store, or NULL when it is dead (or blocks are off). */
struct bs *sim_node_bs(struct sim *s, unsigned node);

/* The outcome of one client operation: pass sim_op_done as the bs_done_fn
 * and the op as its ctx. */
struct sim_op {
    struct sim *s;
    bool done;
    int status;
    unsigned copies;
    uint64_t version;
    uint64_t start_ms, end_ms; /* virtual times of sim_op_init and of the completion */
    uint8_t *bytes;            /* a copy of r->bytes (get, CAS conflict), or NULL */
    size_t len;
};
/* Resets op (freeing bytes it holds) and stamps its start time. */
void sim_op_init(struct sim_op *op, struct sim *s);
/* Frees what op holds. NULL-safe. */
void sim_op_release(struct sim_op *op);
/* A bs_done_fn: ctx is a struct sim_op. */
void sim_op_done(void *ctx, const struct bs_result *r);

/* Runs event by event until cond(ctx) holds (checked first, then after
 * every event), for at most max_ms of virtual time. Returns the virtual
 * ms it took, or -ETIMEDOUT (then now is start + max_ms). */
int64_t sim_run_until(struct sim *s, bool (*cond)(void *ctx), void *ctx, uint64_t max_ms);
/* sim_run_until every ops[i] (i < n) is done. */
int64_t sim_run_until_done(struct sim *s, struct sim_op *ops, size_t n, uint64_t max_ms);

/* The live nodes whose bs holds (type, key) (bs_holds), in node order,
 * written to nodes_out (may be NULL; room for sim_node_count() entries).
 * Returns how many. */
unsigned sim_block_holders(struct sim *s, enum store_type type, const struct id *key,
                           unsigned *nodes_out);
/* The true replica set of key: the first k distinct physical nodes among
 * the live joined vnodes that succeed key (from its true successor), as
 * node indexes in ring order, written to nodes_out (room for k). Returns
 * how many (fewer than k when fewer nodes are members). */
unsigned sim_replica_set(struct sim *s, const struct id *key, unsigned k, unsigned *nodes_out);

/* Does node's simulated disk hold an undamaged copy of (type, key) (dead
 * nodes too)? */
bool sim_disk_holds(const struct sim *s, unsigned node, enum store_type type, const struct id *key);
/* Damages the stored copy of (type, key) on node's disk (flips the byte at
 * offset % length): the next persist read of it returns -EBADMSG and drops
 * it, and a restart leaves it out. Returns 0, -EINVAL (no such node),
 * -ENOENT (not on that disk). */
int sim_corrupt_record(struct sim *s, unsigned node, enum store_type type, const struct id *key,
                       size_t offset);

struct sim_blocks_stats {
    struct bs_stats bs;    /* summed over live nodes (capacity too) */
    uint64_t malformed;    /* frames bs_input refused: a bug between correct nodes */
    uint64_t persist_done; /* operations completed on the simulated disks */
    uint64_t persist_lost; /* operations a crash cut short */
    uint64_t bad_reads;    /* reads that found a damaged copy */
    uint64_t disk_records; /* records on all disks, dead nodes included */
};
void sim_blocks_stats(struct sim *s, struct sim_blocks_stats *out);

#endif
