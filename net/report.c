/* report.c — what a node tells its operator: the status JSON, Prometheus
 * metrics and a picture of the ring as the node knows it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "net/loop.h"
#include "net/node_internal.h"

#ifndef COOPFS_VERSION
#define COOPFS_VERSION "0.1.0"
#endif

static void json_peer(struct buf *b, const struct chord_peer *p)
{
    char hex[ID_HEX_LEN + 1], a[ADDR_STR_MAX];
    id_to_hex(&p->id, hex);
    addr_format(&p->addr, a, sizeof(a));
    buf_printf(b, "{\"id\": \"%s\", \"addr\": ", hex);
    buf_json_str(b, a);
    buf_puts(b, "}");
}

/* The distinct fingers of vnode v from the top: each target once, under
 * the highest index pointing to it. Fills out and idx; returns the count. */
static size_t distinct_fingers(const struct chord *c, unsigned v, struct chord_peer *out,
                               unsigned *idx)
{
    size_t n = 0;
    for (int k = CHORD_FINGERS - 1; k >= 0; k--) {
        struct chord_peer f;
        if (!chord_vnode_finger(c, v, (unsigned)k, &f))
            continue;
        if (n && id_eq(&f.id, &out[n - 1].id))
            continue;
        out[n] = f;
        idx[n++] = (unsigned)k;
    }
    return n;
}

struct conn_count {
    unsigned n, dialled;
};

static void count_conn(void *ctx, const struct addr *a, bool dialled, size_t queued)
{
    struct conn_count *cc = ctx;
    (void)a;
    (void)queued;
    cc->n++;
    cc->dialled += dialled;
}

/* Rate of one counter over the sample window, per second. */
static double rate_of(const struct node_metrics *m, size_t field)
{
    unsigned window = NET_NODE_RATE_SECS + 1;
    if (m->nrates < 2)
        return 0;
    const struct rate_sample *new = &m->rates[m->rate_head];
    const struct rate_sample *old = &m->rates[(m->rate_head + window - (m->nrates - 1)) % window];
    uint64_t a, b;
    memcpy(&a, (const char *)new + field, sizeof(a));
    memcpy(&b, (const char *)old + field, sizeof(b));
    if (new->ms <= old->ms)
        return 0;
    return (double)(a - b) * 1000.0 / (double)(new->ms - old->ms);
}

static void report_store_json(const struct node_view *v, struct buf *b)
{
    struct bs_stats s;

    if (!v->bs) {
        buf_puts(b, " \"store\": null,\n");
        return;
    }
    bs_get_stats(v->bs, &s);
    buf_printf(b,
               " \"store\": {\"blocks\": %llu, \"roots\": %llu, \"kvs\": %llu, \"used\": %llu, "
               "\"capacity\": %llu, \"puts_ok\": %llu, \"puts_failed\": %llu, \"gets_ok\": %llu, "
               "\"gets_failed\": %llu, \"stores\": %llu, \"refused_full\": %llu, "
               "\"refused_quota\": %llu, \"refused_bad\": %llu, \"reads_bad\": %llu, "
               "\"repairs_sent\": %llu, \"sync_rounds\": %llu, \"sync_pushed\": %llu, "
               "\"sync_pulled\": %llu, \"handed_off\": %llu, \"expired\": %llu, "
               "\"cas_ok\": %llu, \"cas_conflict\": %llu, \"cas_indeterminate\": %llu, "
               "\"inflight\": %llu, \"memory_bytes\": %zu},\n",
               (unsigned long long)s.blocks, (unsigned long long)s.roots, (unsigned long long)s.kvs,
               (unsigned long long)s.used, (unsigned long long)s.capacity,
               (unsigned long long)s.puts_ok, (unsigned long long)s.puts_failed,
               (unsigned long long)s.gets_ok, (unsigned long long)s.gets_failed,
               (unsigned long long)s.stores, (unsigned long long)s.stores_refused_full,
               (unsigned long long)s.stores_refused_quota, (unsigned long long)s.stores_bad,
               (unsigned long long)s.reads_bad, (unsigned long long)s.repairs_sent,
               (unsigned long long)s.sync_rounds, (unsigned long long)s.sync_pushed,
               (unsigned long long)s.sync_pulled, (unsigned long long)s.handed_off,
               (unsigned long long)s.expired, (unsigned long long)s.cas_ok,
               (unsigned long long)s.cas_conflict, (unsigned long long)s.cas_indeterminate,
               (unsigned long long)s.inflight, bs_memory_bytes(v->bs));
}

void report_status_json(const struct node_view *v, struct buf *b)
{
    const struct chord *c = v->chord;
    struct chord_stats st;
    struct net_peers_stats ps;
    struct conn_count cc = {0, 0};
    char a[ADDR_STR_MAX];

    chord_get_stats(c, &st);
    net_peers_get_stats(v->peers, &ps);
    net_peers_foreach(v->peers, count_conn, &cc);
    buf_printf(b, "{\"version\": \"%s\", \"pid\": %d, \"uptime_s\": %.3f, \"listen\": ",
               COOPFS_VERSION, v->pid, (double)(net_now_ms() - v->started_ms) / 1000.0);
    addr_format(v->self, a, sizeof(a));
    buf_json_str(b, a);
    buf_puts(b, ", \"http\": ");
    if (v->http) {
        addr_format(v->http, a, sizeof(a));
        buf_json_str(b, a);
    } else {
        buf_puts(b, "null");
    }
    buf_puts(b, ",\n \"vnodes\": [");
    for (unsigned i = 0; i < chord_vnode_count(c); i++) {
        const struct chord_peer *succ;
        struct chord_peer pred, fingers[CHORD_FINGERS];
        unsigned fidx[CHORD_FINGERS];
        size_t ns = chord_vnode_successors(c, i, &succ), nf;
        char hex[ID_HEX_LEN + 1];

        id_to_hex(&chord_vnode_self(c, i)->id, hex);
        buf_printf(b, "%s\n  {\"index\": %u, \"id\": \"%s\", \"joined\": %s, \"predecessor\": ",
                   i ? "," : "", i, hex, chord_vnode_joined(c, i) ? "true" : "false");
        if (chord_vnode_predecessor(c, i, &pred))
            json_peer(b, &pred);
        else
            buf_puts(b, "null");
        buf_puts(b, ",\n   \"successors\": [");
        for (size_t k = 0; k < ns; k++) {
            if (k)
                buf_puts(b, ", ");
            json_peer(b, &succ[k]);
        }
        buf_puts(b, "],\n   \"fingers\": [");
        nf = distinct_fingers(c, i, fingers, fidx);
        for (size_t k = 0; k < nf; k++) {
            id_to_hex(&fingers[k].id, hex);
            addr_format(&fingers[k].addr, a, sizeof(a));
            buf_printf(b, "%s{\"i\": %u, \"id\": \"%s\", \"addr\": ", k ? ", " : "", fidx[k], hex);
            buf_json_str(b, a);
            buf_puts(b, "}");
        }
        buf_puts(b, "]}");
    }
    buf_printf(
        b,
        "],\n \"peers\": {\"connections\": %u, \"dialled\": %u, \"accepted_total\": %llu, "
        "\"dialled_total\": %llu, \"refused\": %llu, \"dial_failed\": %llu, "
        "\"closed_bad\": %llu, \"closed_slow\": %llu, \"evicted\": %llu, \"over_limit\": %llu, "
        "\"dropped_frames\": %llu},\n",
        cc.n, cc.dialled, (unsigned long long)ps.accepted, (unsigned long long)ps.dialled,
        (unsigned long long)ps.refused, (unsigned long long)ps.dial_failed,
        (unsigned long long)ps.closed_bad, (unsigned long long)ps.closed_slow,
        (unsigned long long)ps.evicted, (unsigned long long)ps.over_limit,
        (unsigned long long)ps.dropped);
    buf_printf(b,
               " \"stats\": {\"msgs_in\": %llu, \"msgs_out\": %llu, \"bytes_in\": %llu, "
               "\"bytes_out\": %llu, \"tcp_bytes_in\": %llu, \"tcp_bytes_out\": %llu, "
               "\"bad_frames\": %llu, \"rpc_timeouts\": %llu, \"lookups_started\": %llu, "
               "\"lookups_ok\": %llu, \"lookups_failed\": %llu, \"lookups_iterative\": %llu, "
               "\"finds_forwarded\": %llu, \"stabilizations\": %llu, \"successor_changes\": %llu, "
               "\"predecessor_changes\": %llu, \"merges\": %llu, \"memory_bytes\": %zu},\n",
               (unsigned long long)st.msgs_in, (unsigned long long)st.msgs_out,
               (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
               (unsigned long long)ps.bytes_in, (unsigned long long)ps.bytes_out,
               (unsigned long long)st.bad_frames, (unsigned long long)st.rpc_timeouts,
               (unsigned long long)st.lookups_started, (unsigned long long)st.lookups_ok,
               (unsigned long long)st.lookups_failed, (unsigned long long)st.lookups_iterative,
               (unsigned long long)st.finds_forwarded, (unsigned long long)st.stabilizations,
               (unsigned long long)st.successor_changes, (unsigned long long)st.predecessor_changes,
               (unsigned long long)st.merges, chord_memory_bytes(c));
    report_store_json(v, b);
    buf_printf(b,
               " \"rates\": {\"window_s\": %d, \"msgs_in_per_s\": %.1f, \"msgs_out_per_s\": %.1f, "
               "\"bytes_in_per_s\": %.1f, \"bytes_out_per_s\": %.1f}}\n",
               NET_NODE_RATE_SECS, rate_of(v->metrics, offsetof(struct rate_sample, msgs_in)),
               rate_of(v->metrics, offsetof(struct rate_sample, msgs_out)),
               rate_of(v->metrics, offsetof(struct rate_sample, bytes_in)),
               rate_of(v->metrics, offsetof(struct rate_sample, bytes_out)));
}

/* "9f86d081884c7d65… at 127.0.0.1:4000" */
static void text_peer(struct buf *b, const struct chord_peer *p)
{
    char hex[ID_HEX_LEN + 1], a[ADDR_STR_MAX];
    id_to_hex(&p->id, hex);
    addr_format(&p->addr, a, sizeof(a));
    buf_printf(b, "%.16s… at %s", hex, a);
}

void report_status_text(const struct node_view *v, struct buf *b)
{
    const struct chord *c = v->chord;
    struct chord_stats st;
    struct net_peers_stats ps;
    const struct node_metrics *m = v->metrics;
    char a[ADDR_STR_MAX];

    chord_get_stats(c, &st);
    net_peers_get_stats(v->peers, &ps);
    addr_format(v->self, a, sizeof(a));
    buf_printf(b, "coopfs node %s, version %s, pid %d, up %.1f s", a, COOPFS_VERSION, v->pid,
               (double)(net_now_ms() - v->started_ms) / 1000.0);
    if (v->http) {
        addr_format(v->http, a, sizeof(a));
        buf_printf(b, ", http://%s/", a);
    }
    buf_puts(b, "\n");
    for (unsigned i = 0; i < chord_vnode_count(c); i++) {
        const struct chord_peer *succ;
        struct chord_peer pred, fingers[CHORD_FINGERS];
        unsigned fidx[CHORD_FINGERS];
        size_t ns = chord_vnode_successors(c, i, &succ);
        size_t nf = distinct_fingers(c, i, fingers, fidx);
        char hex[ID_HEX_LEN + 1];

        id_to_hex(&chord_vnode_self(c, i)->id, hex);
        buf_printf(b, "\nvnode %u  %.16s…  %s\n  predecessor  ", i, hex,
                   chord_vnode_joined(c, i) ? "joined" : "not joined yet");
        if (chord_vnode_predecessor(c, i, &pred))
            text_peer(b, &pred);
        else
            buf_puts(b, "none");
        buf_puts(b, "\n");
        for (size_t k = 0; k < ns; k++) {
            buf_printf(b, "  %-12s ", k ? "" : "successors");
            text_peer(b, &succ[k]);
            buf_puts(b, "\n");
        }
        buf_printf(b, "  fingers      %zu distinct", nf);
        if (nf) {
            buf_puts(b, ", farthest ");
            text_peer(b, &fingers[0]);
        }
        buf_puts(b, "\n");
    }
    buf_printf(b, "\nconnections  %llu open; %llu accepted and %llu dialled in all, %llu refused\n",
               (unsigned long long)ps.connections, (unsigned long long)ps.accepted,
               (unsigned long long)ps.dialled, (unsigned long long)ps.refused);
    buf_printf(b, "messages     %llu in, %llu out; %llu requests timed out, %llu bad frames\n",
               (unsigned long long)st.msgs_in, (unsigned long long)st.msgs_out,
               (unsigned long long)st.rpc_timeouts, (unsigned long long)st.bad_frames);
    buf_printf(b, "lookups      %llu started, %llu answered, %llu failed\n",
               (unsigned long long)st.lookups_started, (unsigned long long)st.lookups_ok,
               (unsigned long long)st.lookups_failed);
    if (v->bs) {
        struct bs_stats bst;
        bs_get_stats(v->bs, &bst);
        buf_printf(b,
                   "store        %llu blocks, %llu roots, %llu kv records; %.1f of %.1f MiB "
                   "used\n"
                   "             %llu puts and %llu gets done for clients (%llu and %llu failed); "
                   "%llu refused full\n"
                   "             maintenance: %llu rounds, %llu pushed, %llu pulled, %llu handed "
                   "off, %llu expired; %llu bad copies found, %llu repaired\n",
                   (unsigned long long)bst.blocks, (unsigned long long)bst.roots,
                   (unsigned long long)bst.kvs, (double)bst.used / 1048576.0,
                   (double)bst.capacity / 1048576.0, (unsigned long long)bst.puts_ok,
                   (unsigned long long)bst.gets_ok, (unsigned long long)bst.puts_failed,
                   (unsigned long long)bst.gets_failed, (unsigned long long)bst.stores_refused_full,
                   (unsigned long long)bst.sync_rounds, (unsigned long long)bst.sync_pushed,
                   (unsigned long long)bst.sync_pulled, (unsigned long long)bst.handed_off,
                   (unsigned long long)bst.expired, (unsigned long long)bst.reads_bad,
                   (unsigned long long)bst.repairs_sent);
    }
    buf_printf(b, "rates        %.1f msgs/s in, %.1f out; %.0f B/s in, %.0f out (last %d s)\n",
               rate_of(m, offsetof(struct rate_sample, msgs_in)),
               rate_of(m, offsetof(struct rate_sample, msgs_out)),
               rate_of(m, offsetof(struct rate_sample, bytes_in)),
               rate_of(m, offsetof(struct rate_sample, bytes_out)), NET_NODE_RATE_SECS);
}

static void prom_counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
               (unsigned long long)v);
}

static void prom_gauge(struct buf *b, const char *name, const char *help, double v)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v);
}

static void prom_hist(struct buf *b, const char *name, const char *help, const struct hist *h)
{
    uint64_t cum = 0;
    buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (unsigned i = 0; i < h->nbounds; i++) {
        cum += h->counts[i];
        buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->nbounds];
    buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
               (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->n);
}

void report_metrics(const struct node_view *v, struct buf *b)
{
    struct chord_stats st;
    struct net_peers_stats ps;
    unsigned joined = 0;

    chord_get_stats(v->chord, &st);
    net_peers_get_stats(v->peers, &ps);
    for (unsigned i = 0; i < chord_vnode_count(v->chord); i++)
        joined += chord_vnode_joined(v->chord, i);
    prom_gauge(b, "coopfs_uptime_seconds", "Seconds since the node started.",
               (double)(net_now_ms() - v->started_ms) / 1000.0);
    prom_gauge(b, "coopfs_vnodes_joined", "Virtual nodes that are members of the ring.", joined);
    prom_counter(b, "coopfs_lookups_started_total", "Lookups started by this node.",
                 st.lookups_started);
    prom_counter(b, "coopfs_lookups_ok_total", "Lookups that found the responsible node.",
                 st.lookups_ok);
    prom_counter(b, "coopfs_lookups_failed_total", "Lookups that failed.", st.lookups_failed);
    prom_counter(b, "coopfs_lookups_iterative_total", "Lookups answered by the iterative fallback.",
                 st.lookups_iterative);
    prom_hist(b, "coopfs_lookup_hops", "Overlay hops of lookups asked through the control socket.",
              &v->metrics->lookup_hops);
    prom_hist(b, "coopfs_lookup_duration_seconds",
              "Time of lookups asked through the control socket.", &v->metrics->lookup_seconds);
    prom_hist(b, "coopfs_rpc_duration_seconds",
              "Round-trip time of overlay requests answered on their first try.",
              &v->metrics->rpc_seconds);
    if (v->bs) {
        struct bs_stats bst;
        bs_get_stats(v->bs, &bst);
        prom_gauge(b, "coopfs_store_used_bytes",
                   "Bytes of records held (what counts against --capacity).", (double)bst.used);
        prom_gauge(b, "coopfs_store_capacity_bytes", "Bytes donated (--capacity).",
                   (double)bst.capacity);
        prom_gauge(b, "coopfs_store_blocks", "Content blocks held.", (double)bst.blocks);
        prom_counter(b, "coopfs_block_puts_ok_total", "Client puts that succeeded.", bst.puts_ok);
        prom_counter(b, "coopfs_block_puts_failed_total", "Client puts that failed.",
                     bst.puts_failed);
        prom_counter(b, "coopfs_block_gets_ok_total", "Client gets that succeeded.", bst.gets_ok);
        prom_counter(b, "coopfs_block_gets_failed_total", "Client gets that failed.",
                     bst.gets_failed);
        prom_counter(b, "coopfs_store_refused_full_total", "Stores refused for capacity.",
                     bst.stores_refused_full);
        prom_counter(b, "coopfs_store_reads_bad_total", "Copies that failed their check on read.",
                     bst.reads_bad);
        prom_counter(b, "coopfs_repairs_sent_total",
                     "Good copies pushed to a holder of a bad or stale one.", bst.repairs_sent);
        prom_counter(b, "coopfs_sync_rounds_total", "Maintenance rounds.", bst.sync_rounds);
        prom_counter(b, "coopfs_sync_pushed_total", "Records pushed by maintenance.",
                     bst.sync_pushed);
        prom_counter(b, "coopfs_sync_pulled_total", "Records pulled by maintenance.",
                     bst.sync_pulled);
    }
    prom_counter(b, "coopfs_rpc_timeouts_total", "Overlay requests that got no answer.",
                 st.rpc_timeouts);
    prom_counter(b, "coopfs_messages_in_total", "Overlay messages received.", st.msgs_in);
    prom_counter(b, "coopfs_messages_out_total", "Overlay messages sent.", st.msgs_out);
    prom_counter(b, "coopfs_bad_frames_total", "Frames that did not decode.", st.bad_frames);
    prom_counter(b, "coopfs_bytes_in_total", "Bytes received over TCP.", ps.bytes_in);
    prom_counter(b, "coopfs_bytes_out_total", "Bytes queued to TCP.", ps.bytes_out);
    prom_gauge(b, "coopfs_connections", "TCP connections to other nodes open now.",
               (double)ps.connections);
    prom_counter(b, "coopfs_connections_accepted_total", "TCP connections accepted.", ps.accepted);
    prom_counter(b, "coopfs_connections_dialled_total", "TCP connections dialled.", ps.dialled);
    prom_counter(b, "coopfs_connections_refused_total", "Dials refused (no node there).",
                 ps.refused);
    prom_counter(b, "coopfs_connections_failed_total", "Dials that failed or timed out.",
                 ps.dial_failed);
    prom_counter(b, "coopfs_connections_closed_bad_total",
                 "Connections closed for a bad or malformed frame.", ps.closed_bad);
    prom_counter(b, "coopfs_connections_closed_slow_total",
                 "Connections closed because a frame took too long.", ps.closed_slow);
    prom_counter(b, "coopfs_connections_evicted_total",
                 "Connections that never sent HELLO, closed at the limit to make room.",
                 ps.evicted);
    prom_counter(b, "coopfs_connections_over_limit_total",
                 "Connections refused because every stream was in use by a named peer.",
                 ps.over_limit);
    prom_counter(b, "coopfs_frames_dropped_total",
                 "Frames dropped because a peer's queue was full.", ps.dropped);
    prom_gauge(b, "coopfs_chord_memory_bytes", "Bytes held by the overlay's tables.",
               (double)chord_memory_bytes(v->chord));
}

/* --- the ring picture -------------------------------------------------- */

#define SVG_SIZE   800
#define SVG_R      270.0
#define SVG_MAXPTS 512

struct pt {
    struct chord_peer p;
    unsigned kind; /* bit 0 self, bit 1 successor, bit 2 predecessor, bit 3 finger */
};

static double id_angle(const struct id *id)
{
    /* Clockwise from the top, 0 at 12 o'clock. */
    return (double)id_top64(id) / 18446744073709551616.0 * 2.0 * M_PI;
}

static void pos(const struct id *id, double r, double *x, double *y)
{
    double a = id_angle(id);
    *x = SVG_SIZE / 2.0 + r * sin(a);
    *y = SVG_SIZE / 2.0 - r * cos(a);
}

static unsigned pt_add(struct pt *pts, unsigned n, const struct chord_peer *p, unsigned kind)
{
    for (unsigned i = 0; i < n; i++) {
        if (id_eq(&pts[i].p.id, &p->id)) {
            pts[i].kind |= kind;
            return n;
        }
    }
    if (n == SVG_MAXPTS)
        return n;
    pts[n].p = *p;
    pts[n].kind = kind;
    return n + 1;
}

void report_ring_svg(const struct node_view *v, struct buf *b)
{
    static struct pt pts[SVG_MAXPTS]; /* the loop thread is the only caller */
    const struct chord *c = v->chord;
    unsigned n = 0;
    char a[ADDR_STR_MAX];

    for (unsigned i = 0; i < chord_vnode_count(c); i++) {
        const struct chord_peer *succ;
        struct chord_peer p;
        size_t ns = chord_vnode_successors(c, i, &succ);
        n = pt_add(pts, n, chord_vnode_self(c, i), 1);
        for (size_t k = 0; k < ns; k++)
            n = pt_add(pts, n, &succ[k], 2);
        if (chord_vnode_predecessor(c, i, &p))
            n = pt_add(pts, n, &p, 4);
        for (unsigned k = 0; k < CHORD_FINGERS; k++)
            if (chord_vnode_finger(c, i, k, &p))
                n = pt_add(pts, n, &p, 8);
    }
    addr_format(v->self, a, sizeof(a));
    buf_printf(b,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"20\" y=\"30\" font-size=\"18\">The ring as ",
               SVG_SIZE, SVG_SIZE, SVG_SIZE, SVG_SIZE);
    buf_xml_str(b, a);
    buf_printf(b,
               " knows it: %u nodes</text>\n"
               "<circle cx=\"%d\" cy=\"%d\" r=\"%g\" fill=\"none\" stroke=\"#bbb\" "
               "stroke-width=\"2\"/>\n",
               n, SVG_SIZE / 2, SVG_SIZE / 2, SVG_R);
    /* Fingers as chords from each local vnode, successor pointers as arcs
     * drawn in a second colour. */
    for (unsigned i = 0; i < chord_vnode_count(c); i++) {
        double x0, y0, x1, y1;
        struct chord_peer fingers[CHORD_FINGERS];
        unsigned fidx[CHORD_FINGERS];
        const struct chord_peer *succ;
        size_t ns = chord_vnode_successors(c, i, &succ);
        size_t nf = distinct_fingers(c, i, fingers, fidx);

        pos(&chord_vnode_self(c, i)->id, SVG_R, &x0, &y0);
        for (size_t k = 0; k < nf; k++) {
            pos(&fingers[k].id, SVG_R, &x1, &y1);
            buf_printf(b,
                       "<path d=\"M %.1f %.1f Q %d %d %.1f %.1f\" fill=\"none\" "
                       "stroke=\"#2a7ab0\" stroke-width=\"1.5\" opacity=\"0.8\"/>\n",
                       x0, y0, SVG_SIZE / 2, SVG_SIZE / 2, x1, y1);
        }
        if (ns) {
            pos(&succ[0].id, SVG_R, &x1, &y1);
            buf_printf(b,
                       "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e07b00\" "
                       "stroke-width=\"3\"/>\n",
                       x0, y0, x1, y1);
        }
    }
    /* Labels go round the circle in id order; one that would sit on the
     * previous label is left out (the dot keeps its tooltip). The local
     * vnodes are always labelled. */
    static unsigned order[SVG_MAXPTS];
    for (unsigned i = 0; i < n; i++)
        order[i] = i;
    for (unsigned i = 1; i < n; i++) {
        unsigned k = order[i], j = i;
        while (j > 0 && id_cmp(&pts[order[j - 1]].p.id, &pts[k].p.id) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    double last_label = -1.0;
    for (unsigned oi = 0; oi < n; oi++) {
        unsigned i = order[oi];
        double x, y, tx, ty, ang = id_angle(&pts[i].p.id);
        const char *fill = pts[i].kind & 1   ? "#d62728"
                           : pts[i].kind & 2 ? "#e07b00"
                           : pts[i].kind & 4 ? "#9467bd"
                                             : "#2a7ab0";
        char hex[ID_HEX_LEN + 1];
        pos(&pts[i].p.id, SVG_R, &x, &y);
        id_to_hex(&pts[i].p.id, hex);
        addr_format(&pts[i].p.addr, a, sizeof(a));
        buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"><title>%.16s… ", x, y,
                   pts[i].kind & 1 ? 8 : 5, fill, hex);
        buf_xml_str(b, a);
        buf_puts(b, "</title></circle>\n");
        /* Labels point outwards along the radius, so neighbours need only
         * a font's height of arc between them; on the left half they are
         * turned round to stay readable. */
        bool near_self = false;
        for (unsigned k = 0; k < chord_vnode_count(c) && !(pts[i].kind & 1); k++)
            near_self |= fabs(id_angle(&chord_vnode_self(c, k)->id) - ang) < 11.0 / SVG_R;
        if ((pts[i].kind & 1) ||
            (!near_self && (last_label < 0 || ang - last_label > 11.0 / SVG_R))) {
            double deg = ang * 180.0 / M_PI;
            bool left = deg > 180.0;
            last_label = ang;
            pos(&pts[i].p.id, SVG_R + 12, &tx, &ty);
            buf_printf(b,
                       "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" "
                       "dominant-baseline=\"middle\" transform=\"rotate(%.1f %.1f %.1f)\"%s>",
                       tx, ty, pts[i].kind & 1 ? 11 : 9, left ? "end" : "start",
                       left ? deg - 270.0 : deg - 90.0, tx, ty,
                       pts[i].kind & 1 ? " font-weight=\"bold\"" : "");
            buf_xml_str(b, a);
            buf_puts(b, "</text>\n");
        }
    }
    buf_printf(b,
               "<g font-size=\"13\" transform=\"translate(20,%d)\">"
               "<circle cx=\"6\" cy=\"0\" r=\"6\" fill=\"#d62728\"/><text x=\"18\" y=\"4\">this "
               "node's vnodes</text>"
               "<circle cx=\"156\" cy=\"0\" r=\"5\" fill=\"#e07b00\"/><text x=\"166\" y=\"4\">"
               "successors</text>"
               "<circle cx=\"266\" cy=\"0\" r=\"5\" fill=\"#9467bd\"/><text x=\"276\" y=\"4\">"
               "predecessor</text>"
               "<circle cx=\"386\" cy=\"0\" r=\"5\" fill=\"#2a7ab0\"/><text x=\"396\" y=\"4\">"
               "fingers (drawn as chords)</text></g>\n</svg>\n",
               SVG_SIZE - 24);
}
