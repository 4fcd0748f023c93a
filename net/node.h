/* node.h — a running coopfs node: the event loop, the TCP peers, the chord
 * overlay driven through struct env, the control socket, the HTTP status
 * pages and the signals that make it leave. tools/ parses the flags and
 * calls net_node_run(); docs/operations.md describes what an operator
 * sees.
 */
#ifndef COOPFS_NET_NODE_H
#define COOPFS_NET_NODE_H

#include <stdbool.h>

#include "common/addr.h"
#include "common/log.h"

#define NET_NODE_MAX_JOIN  16
#define NET_NODE_LEAVE_MS  4000u /* longest a voluntary leave may take */
#define NET_NODE_RATE_SECS 10    /* window of the message rates in status */
#define NET_NODE_CAPACITY_DEFAULT (10ull << 30) /* 10 GiB donated unless --capacity */
#define NET_NODE_API_PORT 7401 /* the DHT API listens on 127.0.0.1:7401 unless --api */

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
};

/* Runs a node until SIGTERM or SIGINT (then leaves the ring and returns 0)
 * or a start-up failure (logged; returns 1). */
int net_node_run(const struct net_node_config *cfg);

#endif
