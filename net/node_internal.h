/* node_internal.h — the node's state, shared by node.c (wiring and
 * control) and report.c (status JSON, metrics, ring picture). */
#ifndef COOPFS_NET_NODE_INTERNAL_H
#define COOPFS_NET_NODE_INTERNAL_H

#include "chord/chord.h"
#include "common/buf.h"
#include "net/node.h"
#include "net/peers.h"

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

struct net_node; /* defined in node.c */

/* What report.c reads. */
struct node_view {
    const struct chord *chord;
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
