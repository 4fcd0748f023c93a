/* node.h — a running coopfs node: the event loop, the TCP peers, the chord
 * overlay driven through struct env, the control socket, the HTTP status
 * pages and the signals that make it leave. tools/ parses the flags and
 * calls net_node_run(); docs/operations.md describes what an operator
 * sees.
 *
 * A process that does other work (the FUSE mount) runs the node on a
 * thread of its own instead: net_node_start() returns once the node has
 * joined, net_node_blocks() is the block client (blockstore/bclient.h) its
 * other threads use, net_node_stop() leaves the ring and frees it.
 */
#ifndef COOPFS_NET_NODE_H
#define COOPFS_NET_NODE_H

#include <stdbool.h>

#include "blockstore/bclient.h"
#include "common/addr.h"
#include "common/log.h"

#define NET_NODE_MAX_JOIN  16
#define NET_NODE_LEAVE_MS  4000u /* longest a voluntary leave may take */
#define NET_NODE_RATE_SECS 10    /* window of the message rates in status */
#define NET_NODE_CAPACITY_DEFAULT (10ull << 30) /* 10 GiB donated unless --capacity */
#define NET_NODE_API_PORT 7401 /* the DHT API listens on 127.0.0.1:7401 unless --api */
#define NET_NODE_JOIN_MS  20000u /* longest net_node_start() waits for the join */
/* What the block client of net_node_blocks() lets callers have outstanding
 * per node before a call blocks (blockstore/bclient.h, backpressure). The
 * bytes count a put's block and, for a get of a content block, the largest
 * reply it may bring (BLOCK_MAX_STORED). They stay below a peer stream's
 * output cap (NET_OUT_MAX_DEFAULT, 8 MiB): past it a stream drops frames,
 * and each dropped request or reply costs a whole BS_RPC_TIMEOUT_MS. */
#define NET_NODE_CLIENT_OPS   512u
#define NET_NODE_CLIENT_BYTES (6ull << 20)

struct net_node_config {
    const char *datadir; /* the state directory; created if missing */
    struct addr listen;  /* concrete IP; port 0 lets the kernel choose */
    struct addr join[NET_NODE_MAX_JOIN];
    unsigned njoin; /* 0: start a new ring */
    unsigned vnodes;
    bool http_on;
    struct addr http;
    /* The block store (blockstore/bs.h): bytes donated (DATA/store), the
     * replication factor, the most one owner may hold here. */
    uint64_t capacity;
    unsigned replicas;
    uint64_t owner_cap;
    /* The DHT API (docs/protocol.md, "DHT API"); api_on false: none. */
    bool api_on;
    struct addr api;
    enum log_level log_level;
    /* No SIGTERM/SIGINT watchers: libevent lets one event base per process
     * watch signals, and a process that embeds the node handles them
     * itself. net_node_start() always behaves as if this were true. */
    bool no_signals;
};

struct net_node; /* opaque */

/* Runs a node on the calling thread until SIGTERM or SIGINT (then leaves
 * the ring and returns 0) or a start-up failure (logged; returns 1). */
int net_node_run(const struct net_node_config *cfg);

/* Starts a node whose loop runs on a new thread, and returns once it
 * listens and every vnode has joined the ring (a new ring when cfg->njoin
 * is 0). Installs no signal handler and watches no signal (the new thread
 * blocks them all, so they go to the caller's threads); if SIGPIPE has its
 * default action it is set to ignored, as a peer that vanishes mid-write
 * must not kill the process. Copies cfg. Returns 0 and *out; the start-up
 * errors of a node (logged) as a negative errno (-EADDRINUSE, -EWOULDBLOCK
 * for a data directory in use, ...); -ETIMEDOUT when the join did not
 * finish within NET_NODE_JOIN_MS (the node is stopped again). */
int net_node_start(const struct net_node_config *cfg, struct net_node **out);
/* Leaves the ring (bounded by NET_NODE_LEAVE_MS), stops the loop, joins
 * its thread and frees the node. Every block client operation still
 * pending ends with -ECANCELED (its done callback runs) before this
 * returns; calls blocked for room, or waiting in holders/space, return
 * -ESHUTDOWN. Call once, from any thread but the node's (not from a done
 * callback). NULL-safe. */
void net_node_stop(struct net_node *n);
/* The address the node listens on, and names itself by on the ring (the
 * port the kernel chose when cfg->listen had port 0). */
struct addr net_node_addr(const struct net_node *n);
/* The block client of this node (net/node_client.c), valid until
 * net_node_stop(). Calls from other threads are posted to the loop through
 * the node's mailbox and done callbacks run on the loop thread; a call made
 * on the loop thread (inside a done callback) fails with -EDEADLK. Calls
 * after net_node_stop() began fail with -ESHUTDOWN. At most
 * NET_NODE_CLIENT_OPS operations, and NET_NODE_CLIENT_BYTES bytes of
 * puts and gets, are outstanding; a call beyond that blocks until one ends.
 *
 * Results: as bs.h's client (bs_put, bs_get, bs_root_put), including their
 * start-up errors (BS_ERR_BAD_BLOCK, BS_ERR_NO_LEASE, -EINVAL, -EAGAIN), which
 * arrive through the done callback; -ECANCELED when the node stopped first.
 * A result made here, not by the block client (those errors, -ECANCELED
 * before the operation reached it), has a zero key.
 *
 * holders: the first k distinct physical nodes of the replica set of the
 * key, as the vnode responsible for it reports them (a ring lookup and a
 * LOCATE, never the location cache, unless a local vnode is responsible);
 * a ring that cannot answer yet (WRONG_NODE, a timeout) is asked again up
 * to 4 times in about 2 s. Each try is bounded by CHORD_LOOKUP_MAX_MS plus
 * BS_RPC_TIMEOUT_MS x BS_RPC_TRIES.
 *
 * space: this node's donation scaled by an estimate N of the physical
 * nodes on the ring: total = capacity x N, free = (capacity - used) x N
 * (0 when over capacity), nodes = N, replicas = k. When a successor list
 * of a local vnode is shorter than CHORD_SUCC_LEN it holds the whole ring,
 * and N is exact: the distinct addresses in it, plus this node. Otherwise
 * N comes from the ring's density: a successor list of m vnodes spans a
 * fraction f of the identifier circle, so the ring has about m / f vnodes
 * (averaged over the local vnodes); other nodes are taken to run as many
 * vnodes as this one (the count follows the space donated), so N = m / f
 * divided by this node's vnode count, and never below the distinct
 * addresses seen plus one. It assumes the others donate as much as this
 * node, and it is as rough as one successor list is a sample: within a
 * factor of about 2 for lists of 16. */
struct bclient net_node_blocks(struct net_node *n);

#endif
