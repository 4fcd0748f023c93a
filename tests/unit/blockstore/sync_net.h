/* sync_net.h — whole nodes (struct chord + struct bs) on a fake network,
 * for the maintenance tests (test_sync.c).
 *
 * Frames arrive in order after latency_ms (none unless a test sets it: a
 * node that retries at once when refused would spin at one instant, and
 * the guards in net_run fail the test); one fake clock drives every node,
 * and the wall clock follows it from a fixed epoch plus an offset a test
 * can move (leases and kv records expire by it). Each node has an
 * in-memory persist (its "disk") whose completions arrive on the next
 * delivery pass; a crashed node keeps it and loads it when it starts
 * again. Every frame a node receives must be accepted by bs_input.
 * Maintenance runs only when asked (round_all), so message counts are
 * exact. Set T_LOG=1 in the environment for the block servers' debug log.
 */
#ifndef COOPFS_TESTS_UNIT_BLOCKSTORE_SYNC_NET_H
#define COOPFS_TESTS_UNIT_BLOCKSTORE_SYNC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/internal.h"
#include "common/log.h"

#define T_NODES    8 /* a location's whole list (k + BS_DIVERT_MAX, k = 3) and one more */
#define T_VNODES   8 /* most vnodes per node a test uses */
#define T0         1000000ull
#define T_WALL0    1700000000000ull /* 2023-11-14, in unix ms */
#define T_DAY_S    (24ull * 3600ull)
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- in-memory persist ---- */

struct mrec {
    uint8_t type;
    struct id key;
    uint8_t *bytes;
    size_t len;
};

struct mlease {
    struct id key;
    struct lease l;
};

struct mstore {
    struct mrec *r;
    size_t n;
    struct mlease *l;
    size_t nl;
};

struct tnet;

struct tnode {
    struct tnet *net;
    int idx;
    bool up;
    struct addr addr;
    struct chord *c;
    struct bs *b;
    struct mstore st;
    uint64_t rng;
};

struct tframe {
    uint64_t at; /* delivery time */
    int from;
    struct addr to;
    uint8_t *bytes;
    size_t len;
};

/* A persist operation to complete: a write, remove or lease append, or a
 * read_start (read: the record is read when it completes). */
struct tcomp {
    int node;
    uint64_t token;
    bool read;
    uint8_t type;
    struct id key;
};

struct tnet {
    uint64_t now;
    uint64_t wall_off;   /* ms added to the wall clock */
    uint64_t latency_ms; /* of every frame (net_init sets 0) */
    struct tnode n[T_NODES];
    int nn;
    unsigned k;
    unsigned vnodes;         /* per node (net_init sets 1) */
    uint32_t sync_period_ms; /* of the nodes started from now on (net_init sets 0) */
    struct tframe *q;
    size_t nq;
    struct tcomp *cq;
    size_t ncq;
    unsigned count[64];          /* frames delivered, by type - 1000 */
    unsigned stores_to[T_NODES]; /* STORE requests delivered to each node */
    bool no_space[T_NODES];      /* started with capacity 0: refuses every store */
    struct logger lg;            /* T_LOG=1 in the environment: debug log on stderr */
};

/* ---- persist records ---- */
struct mrec *ms_find(struct mstore *s, uint8_t type, const struct id *key);
void ms_lease(struct mstore *s, const struct id *key, const struct lease *l, size_t n);

/* ---- the network ---- */
/* Starts n nodes (node 0 creates the ring, the others join it), k replicas,
 * no periodic maintenance. */
void net_init(struct tnet *t, int n, unsigned k);
/* The same with vnodes per node and a maintenance period (0: none). */
void net_init_ex(struct tnet *t, int n, unsigned k, unsigned vnodes, uint32_t period_ms);
void net_free(struct tnet *t);
/* Starts node i (again), loading what its disk holds, and joins it through
 * node bootstrap (-1: creates a ring). */
void node_start(struct tnet *t, int i, int bootstrap);
/* A crash: the process is gone, its disk stays. */
void node_crash(struct tnet *t, int i);
/* Passes ms of fake time like an event loop. */
void net_run(struct tnet *t, uint64_t ms);
/* Runs until every up vnode has its ring neighbours right, then 7 s more. */
void net_settle(struct tnet *t);
void counts_reset(struct tnet *t);
/* One maintenance round on every up node, and 2 s for what it sets off. */
void round_all(struct tnet *t);
struct bs_stats stats_of(struct tnet *t, int i);
uint64_t stat_sum(struct tnet *t, size_t off);
#define SUM(t, field) stat_sum((t), offsetof(struct bs_stats, field))

/* ---- records ---- */
uint64_t wall_s(struct tnet *t);
void owner_key(struct sig_key *k);
/* A content block of distinct bytes and its owner's lease for lease_s. */
void make_block(struct tnet *t, unsigned n, uint64_t lease_s, uint8_t *bytes, size_t *len,
                struct id *key, struct lease *l);
/* Puts a record on node i's disk and into its index, as if there at start. */
void plant(struct tnet *t, int i, uint8_t type, const struct id *key, const uint8_t *bytes,
           size_t len, const struct lease *l);
/* Up nodes that hold (type, key). */
unsigned holders(struct tnet *t, uint8_t type, const struct id *key);
/* The first k distinct up nodes from the vnode that succeeds key, by the
 * vnode ids (not by any node's tables); returns how many. */
size_t replica_set(struct tnet *t, const struct id *key, int *out);
bool in_set(const int *set, size_t n, int i);
/* Is key held by exactly its replica set? */
bool placed_exactly(struct tnet *t, uint8_t type, const struct id *key);

#endif
