/* node_internal.h — the node's state, shared by node.c (wiring and
 * control) and report.c (status JSON, metrics, ring picture). */
#ifndef COOPFS_NET_NODE_INTERNAL_H
#define COOPFS_NET_NODE_INTERNAL_H

#include <pthread.h>

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

struct node_client;

struct net_node {
    const struct net_node_config *cfg;
    /* net_node_start(): the copy cfg points at, and the loop's thread */
    struct net_node_config cfg_copy;
    char *datadir_copy;
    pthread_t thread;
    bool threaded;
    /* Start-up as the starting thread sees it: start_state 0 while under
     * way, 1 once every vnode joined, a negative errno if start-up failed;
     * self is the listening address from then on. Protected by
     * start_lock. */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    int start_state;
    struct addr self;
    bool all_joined; /* loop thread only */
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
    /* node_client.c: the block client of net_node_blocks, with the
     * mailbox other threads post to (its operations, net_node_stop) */
    struct node_client *client;
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

/* node_client.c. start runs on the loop thread in node_start (makes
 * n->client and its mailbox). close, from any thread, refuses new calls
 * (-ESHUTDOWN) and wakes the callers blocked for room. stop runs on the
 * loop thread once the loop has ended, after the block server is freed
 * (which ended the operations it had with -ECANCELED): it ends every other
 * operation still pending with -ECANCELED, answers the synchronous calls
 * still waiting, and frees the mailbox. free, by the owner of n after
 * that, waits for the callers still inside a call to leave it. All four
 * are NULL-safe about n->client. post queues fn(arg) on the loop thread
 * through the mailbox: 0, or -ESHUTDOWN once stop ran (then fn never runs
 * and drop is not called). */
int node_client_start(struct net_node *n);
void node_client_close(struct net_node *n);
void node_client_stop(struct net_node *n);
void node_client_free(struct net_node *n);
int node_client_post(struct net_node *n, void (*fn)(void *), void (*drop)(void *), void *arg);

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
