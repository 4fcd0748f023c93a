/* node_internal.h — the node's state, shared by node.c (wiring and
 * control) and report.c (status JSON, metrics, ring picture). */
#ifndef COOPFS_NET_NODE_INTERNAL_H
#define COOPFS_NET_NODE_INTERNAL_H

#include "chord/chord.h"
#include "common/buf.h"
#include "net/node.h"
#include "net/peers.h"
#include "net/stream.h"
#include "net/timer.h"
#include "net/listener.h"
#include "net/http.h"
#include "net/sigwatch.h"
#include "net/mailbox.h"
#include "blockstore/bs.h"
#include "blockstore/store.h"
#include "common/frame.h"

#define HIST_MAX 24

/* A Prometheus histogram with fixed upper bounds. */
struct hist {
    const double *bounds; /* ascending; +Inf is implicit */
    unsigned nbounds;
    uint64_t counts[HIST_MAX]; /* per bucket, not cumulative; [nbounds] is +Inf */
    double sum;
    uint64_t n;
};

void hist_observe(struct hist *h, double v);

struct rate_sample {
    uint64_t ms;
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
};

struct node_metrics {
    struct hist lookup_hops;    /* hops of lookups asked through the control socket */
    struct hist lookup_seconds; /* their latency */
    struct hist rpc_seconds;    /* round trips of chord requests answered on the first try */
    uint64_t ctl_requests, ctl_errors;
    struct rate_sample rates[NET_NODE_RATE_SECS + 1];
    unsigned nrates, rate_head;
};

#define RTT_SLOTS       1024 /* request ids whose send time we remember */
#define CTL_MAX_CONNS   64   /* control connections at once */
#define CTL_MAX_LOOKUPS 4096 /* control lookups in flight */

struct rtt_slot {
    uint64_t reqid;
    uint64_t sent_us;
    bool used, resent;
};

struct ctl_conn {
    struct net_node *n;
    struct net_stream *s; /* NULL once the connection closed */
    unsigned refs;        /* block operations still running for it */
};

struct ctl_lookup {
    uint64_t handle;
    uint64_t reqid;
    uint64_t start_us;
    struct ctl_conn *cc; /* NULL once the connection closed */
};

struct net_node {
    const struct net_node_config *cfg;
    struct logger lg;
    char prefix[ADDR_STR_MAX + 2];
    struct net_loop *loop;
    struct net_peers *peers;
    struct chord *chord;
    struct env chord_env; /* what chord and the block server are driven through */
    struct net_timer *chord_timer, *leave_timer, *rate_timer;
    struct net_listener *ctl_ln;
    struct net_http *http;
    struct net_sigwatch *sig_term, *sig_int;
    struct ctl_conn *ctl[CTL_MAX_CONNS];
    unsigned nctl;
    struct ctl_lookup *lookups;
    size_t nlookups, cap_lookups;
    struct rtt_slot rtt[RTT_SLOTS];
    struct node_metrics m;
    uint64_t started_ms;
    int lock_fd;
    char *json_path, *sock_path, *lock_path;
    bool leaving, exiting;
    bool joined_logged;
    uint64_t join_warned_ms;
    struct addr refused_logged; /* last refusal logged, and when */
    uint64_t refused_logged_ms;
    /* node_store.c: the disk store, the block server/client, the DHT API */
    struct store *store;
    struct bs *bs;
    struct net_mailbox *store_mail;
    struct net_api *api;
    char *store_path;
};


/* node.c, for node_store.c and api.c */
void node_kick(struct net_node *n);
void ctl_reply(struct ctl_conn *cc, uint16_t type, uint64_t reqid, const void *payload,
               size_t len);
void ctl_error(struct ctl_conn *cc, uint64_t reqid, int err, const char *msg);
void ctl_conn_put(struct ctl_conn *cc); /* drops a reference taken by a block operation */

/* node_store.c */
int node_store_start(struct net_node *n);  /* opens the store, makes the block server */
void node_store_stop(struct net_node *n);
bool node_store_ctl(struct ctl_conn *cc, const struct frame_header *h, const uint8_t *p,
                    size_t len); /* a block request: true if it was one */

/* What report.c reads. */
struct node_view {
    const struct chord *chord;
    const struct bs *bs; /* NULL before the store is open */
    const struct net_peers *peers;
    const struct node_metrics *metrics;
    const struct addr *self;
    const struct addr *http; /* NULL if off */
    uint64_t started_ms;
    int pid;
};

void report_status_json(const struct node_view *v, struct buf *out);
void report_status_text(const struct node_view *v, struct buf *out);
void report_metrics(const struct node_view *v, struct buf *out);
void report_ring_svg(const struct node_view *v, struct buf *out);

#endif
