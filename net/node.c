/* node.c — a running node: wiring of loop, peers, chord, control socket,
 * HTTP pages and signals; run on the calling thread (net_node_run) or on a
 * thread of its own (net_node_start/net_node_stop). */
#include "net/node.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/frame.h"
#include "common/hash.h"
#include "net/api.h"
#include "net/control.h"
#include "net/http.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/node_internal.h"
#include "net/sigwatch.h"
#include "net/stream.h"
#include "net/timer.h"

#define MOD "node"


static const double hop_bounds[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32};
static const double sec_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

void hist_observe(struct hist *h, double v)
{
    unsigned i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

/* --- env for chord ------------------------------------------------------ */

static uint64_t node_env_now(void *ctx)
{
    (void)ctx;
    return net_now_ms();
}

static uint64_t node_env_wall(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_chord_update(void *ctx, unsigned vnode)
{
    struct net_node *n = ctx;
    if (n->bs)
        bs_on_update(n->bs, vnode);
}

static void env_random(void *ctx, void *buf, size_t len)
{
    uint8_t *p = buf;
    (void)ctx;
    while (len) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* the kernel's RNG does not fail once booted */
        }
        p += r;
        len -= (size_t)r;
    }
}

/* Remembers when a request left, to time its reply (Karn: a request sent
 * again is never timed). */
static void rtt_on_send(struct net_node *n, const uint8_t *frame, size_t len)
{
    struct frame_header h;
    if (frame_header_decode(frame, len, &h) || (h.flags & FRAME_F_REPLY) || !h.request_id)
        return;
    struct rtt_slot *s = &n->rtt[h.request_id % RTT_SLOTS];
    if (s->used && s->reqid == h.request_id) {
        s->resent = true;
        return;
    }
    *s = (struct rtt_slot){.reqid = h.request_id, .sent_us = net_now_us(), .used = true};
}

static void rtt_on_reply(struct net_node *n, const struct frame_header *h)
{
    struct rtt_slot *s = &n->rtt[h->request_id % RTT_SLOTS];
    if (!s->used || s->reqid != h->request_id)
        return;
    if (!s->resent)
        hist_observe(&n->m.rpc_seconds, (double)(net_now_us() - s->sent_us) / 1e6);
    s->used = false;
}

static void env_send(void *ctx, const struct addr *to, const void *msg, size_t len)
{
    struct net_node *n = ctx;
    rtt_on_send(n, msg, len);
    net_peers_send(n->peers, to, msg, len);
}

/* Tells a thread waiting in net_node_start that every vnode is in. */
static void node_check_joined(struct net_node *n)
{
    unsigned nv = chord_vnode_count(n->chord);

    for (unsigned i = 0; i < nv; i++)
        if (!chord_vnode_joined(n->chord, i))
            return;
    n->all_joined = true;
    pthread_mutex_lock(&n->start_lock);
    if (n->start_state == 0)
        n->start_state = 1;
    pthread_cond_broadcast(&n->start_cond);
    pthread_mutex_unlock(&n->start_lock);
}

void node_kick(struct net_node *n)
{
    uint64_t when = chord_next_deadline(n->chord);
    if (n->bs) {
        uint64_t b = bs_next_deadline(n->bs);
        if (b < when)
            when = b;
    }
    if (when != UINT64_MAX)
        net_timer_arm_at(n->chord_timer, when);
    if (!n->all_joined)
        node_check_joined(n);
    if (n->leaving && chord_has_left(n->chord) && !n->exiting) {
        LOG_I(&n->lg, MOD, "left the ring; exiting");
        n->exiting = true;
        net_loop_stop(n->loop);
    }
}

static void on_chord_timer(void *ctx)
{
    struct net_node *n = ctx;
    chord_tick(n->chord);
    if (n->bs)
        bs_tick(n->bs);
    node_kick(n);
}

/* --- peers -------------------------------------------------------------- */

static int on_peer_frame(void *ctx, const struct addr *from, const struct frame_header *h,
                         const uint8_t *frame, size_t len)
{
    struct net_node *n = ctx;
    int rc;

    if (h->flags & FRAME_F_REPLY)
        rtt_on_reply(n, h);
    if (h->type >= BS_MSG_FIRST && h->type <= BS_MSG_LAST) {
        rc = bs_input(n->bs, from, frame, len);
        node_kick(n);
        return rc == BS_ERR_MALFORMED ? -EBADMSG : 0;
    }
    rc = chord_input(n->chord, from, frame, len);
    node_kick(n);
    /* A type we do not know is the peer's business (a newer version);
     * bytes that do not decode are a broken or hostile peer. */
    return rc == CHORD_ERR_MALFORMED ? -EBADMSG : 0;
}

static void on_peer_unreachable(void *ctx, const struct addr *to)
{
    struct net_node *n = ctx;
    uint64_t now = net_now_ms();

    /* Once per address and 10 s: a dead peer is dialled by every vnode. */
    if (!addr_eq(&n->refused_logged, to) || now - n->refused_logged_ms > 10000) {
        char a[ADDR_STR_MAX];
        addr_format(to, a, sizeof(a));
        LOG_I(&n->lg, MOD, "no node listens at %s (connection refused)", a);
        n->refused_logged = *to;
        n->refused_logged_ms = now;
    }
    chord_peer_unreachable(n->chord, to);
    if (n->bs)
        bs_peer_unreachable(n->bs, to);
    node_kick(n);
}

/* --- control socket ------------------------------------------------------ */

void ctl_reply(struct ctl_conn *cc, uint16_t type, uint64_t reqid, const void *payload,
                      size_t len)
{
    struct frame_header h = {.version = FRAME_VERSION,
                             .flags = FRAME_F_REPLY,
                             .type = type,
                             .request_id = reqid,
                             .length = (uint32_t)len};
    uint8_t *frame = malloc(FRAME_HEADER_SIZE + len);
    if (!frame)
        return;
    frame_header_encode(&h, frame);
    if (len)
        memcpy(frame + FRAME_HEADER_SIZE, payload, len);
    if (!cc->s || net_stream_send(cc->s, frame, FRAME_HEADER_SIZE + len) < 0)
        cc->n->m.ctl_errors++;
    free(frame);
}

void ctl_error(struct ctl_conn *cc, uint64_t reqid, int err, const char *msg)
{
    uint8_t buf[CTL_ERROR_MAX + 8];
    size_t len = ctl_error_encode(err, msg, buf, sizeof(buf));
    cc->n->m.ctl_errors++;
    ctl_reply(cc, CTL_MSG_ERROR, reqid, buf, len);
}

static struct node_view node_view(const struct net_node *n)
{
    return (struct node_view){
        .chord = n->chord,
        .bs = n->bs,
        .peers = n->peers,
        .metrics = &n->m,
        .self = net_peers_self(n->peers),
        .http = n->http ? net_http_addr(n->http) : NULL,
        .started_ms = n->started_ms,
        .pid = (int)getpid(),
    };
}

static void ctl_on_lookup(struct ctl_conn *cc, uint64_t reqid, const uint8_t *p, size_t len)
{
    struct net_node *n = cc->n;
    struct id key;
    uint64_t handle;
    int rc;

    if (ctl_lookup_req_decode(p, len, &key) < 0) {
        ctl_error(cc, reqid, -EBADMSG, "a lookup carries one 32-byte key");
        return;
    }
    if (n->nlookups >= CTL_MAX_LOOKUPS) {
        ctl_error(cc, reqid, -EBUSY, "too many lookups in flight");
        return;
    }
    if (n->nlookups == n->cap_lookups) {
        size_t cap = n->cap_lookups ? n->cap_lookups * 2 : 64;
        struct ctl_lookup *nl = realloc(n->lookups, cap * sizeof(*nl));
        if (!nl) {
            ctl_error(cc, reqid, -ENOMEM, "out of memory");
            return;
        }
        n->lookups = nl;
        n->cap_lookups = cap;
    }
    rc = chord_lookup(n->chord, &key, &handle);
    if (rc) {
        ctl_error(cc, reqid, rc,
                  rc == -EAGAIN ? "the node has not joined the ring yet" : strerror(-rc));
        return;
    }
    n->lookups[n->nlookups++] =
        (struct ctl_lookup){.handle = handle, .reqid = reqid, .start_us = net_now_us(), .cc = cc};
    node_kick(n);
}

static void on_lookup_done(void *ctx, uint64_t handle, const struct chord_lookup_result *res)
{
    struct net_node *n = ctx;

    if (n->bs && bs_on_lookup_done(n->bs, handle, res))
        return;

    for (size_t i = 0; i < n->nlookups; i++) {
        struct ctl_lookup l = n->lookups[i];
        if (l.handle != handle)
            continue;
        n->lookups[i] = n->lookups[--n->nlookups];
        uint64_t us = net_now_us() - l.start_us;
        if (res->status == 0) {
            hist_observe(&n->m.lookup_hops, res->hops);
            hist_observe(&n->m.lookup_seconds, (double)us / 1e6);
        }
        if (!l.cc)
            return;
        struct ctl_lookup_reply r = {
            .status = res->status,
            .hops = (uint16_t)res->hops,
            .iterative = res->iterative,
            .elapsed_us = us,
        };
        if (res->status == 0) {
            r.id = res->succ.id;
            r.addr = res->succ.addr;
        }
        uint8_t buf[128];
        size_t len = ctl_lookup_reply_encode(&r, buf, sizeof(buf));
        ctl_reply(l.cc, CTL_MSG_LOOKUP, l.reqid, buf, len);
        return;
    }
}

static void ctl_forget(struct net_node *n, struct ctl_conn *cc);

static void ctl_frame(void *ctx, struct net_stream *s, const struct frame_header *h,
                      const uint8_t *frame, size_t len)
{
    struct ctl_conn *cc = ctx;
    struct net_node *n = cc->n;
    const uint8_t *p = frame + FRAME_HEADER_SIZE;
    size_t plen = len - FRAME_HEADER_SIZE;
    (void)s;

    n->m.ctl_requests++;
    if (h->flags & FRAME_F_REPLY) {
        LOG_W(&n->lg, MOD, "control: closing a connection that sent a reply frame");
        net_stream_close(cc->s);
        ctl_forget(n, cc);
        return;
    }
    switch (h->type) {
    case CTL_MSG_STATUS:
    case CTL_MSG_STATUS_TEXT: {
        struct node_view v = node_view(n);
        struct buf b = BUF_INIT;
        if (h->type == CTL_MSG_STATUS)
            report_status_json(&v, &b);
        else
            report_status_text(&v, &b);
        if (b.failed || b.len > FRAME_MAX_PAYLOAD)
            ctl_error(cc, h->request_id, -ENOMEM, "status too large");
        else
            ctl_reply(cc, h->type, h->request_id, b.data, b.len);
        buf_release(&b);
        break;
    }
    case CTL_MSG_LOOKUP: ctl_on_lookup(cc, h->request_id, p, plen); break;
    default:
        if (!node_store_ctl(cc, h, p, plen))
            ctl_error(cc, h->request_id, -EOPNOTSUPP, "unknown control request");
        break;
    }
}

static void ctl_forget(struct net_node *n, struct ctl_conn *cc)
{
    for (size_t i = 0; i < n->nlookups; i++)
        if (n->lookups[i].cc == cc)
            n->lookups[i].cc = NULL;
    for (unsigned i = 0; i < n->nctl; i++) {
        if (n->ctl[i] == cc) {
            n->ctl[i] = n->ctl[--n->nctl];
            break;
        }
    }
    /* Block operations still running answer nobody, then let go. */
    cc->s = NULL;
    if (cc->refs == 0)
        free(cc);
}

void ctl_conn_put(struct ctl_conn *cc)
{
    if (--cc->refs == 0 && !cc->s)
        free(cc);
}

static void ctl_closed(void *ctx, struct net_stream *s, int reason, int err, const char *why)
{
    struct ctl_conn *cc = ctx;
    (void)s;
    (void)err;
    if (reason != NET_CLOSE_EOF)
        LOG_W(&cc->n->lg, MOD, "control: closing connection: %s", why);
    ctl_forget(cc->n, cc);
}

static void on_ctl_accept(void *ctx, int fd)
{
    struct net_node *n = ctx;
    struct net_stream_cbs cbs = {.frame = ctl_frame, .closed = ctl_closed};
    struct ctl_conn *cc;

    if (n->nctl >= CTL_MAX_CONNS) {
        LOG_W(&n->lg, MOD, "control: refusing a connection: %d open already", CTL_MAX_CONNS);
        close(fd);
        return;
    }
    cc = calloc(1, sizeof(*cc));
    if (!cc) {
        close(fd);
        return;
    }
    cc->n = n;
    cbs.ctx = cc;
    if (net_stream_accept(n->loop, fd, &cbs, &cc->s) < 0) {
        free(cc);
        return;
    }
    n->ctl[n->nctl++] = cc;
}

/* --- HTTP ---------------------------------------------------------------- */

static int on_http(void *ctx, const char *path, struct buf *body, const char **ctype)
{
    struct net_node *n = ctx;
    struct node_view v = node_view(n);

    if (!strcmp(path, "/status")) {
        report_status_json(&v, body);
        *ctype = "application/json";
        return 200;
    }
    if (!strcmp(path, "/metrics")) {
        report_metrics(&v, body);
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        return 200;
    }
    if (!strcmp(path, "/ring.svg")) {
        report_ring_svg(&v, body);
        *ctype = "image/svg+xml";
        return 200;
    }
    if (!strcmp(path, "/")) {
        buf_puts(body, "<!DOCTYPE html><html><head><title>coopfs node</title></head><body>"
                       "<h1>coopfs node</h1><ul><li><a href=\"/status\">/status</a></li>"
                       "<li><a href=\"/metrics\">/metrics</a></li>"
                       "<li><a href=\"/ring.svg\">/ring.svg</a></li></ul>"
                       "<img src=\"/ring.svg\" width=\"800\" height=\"800\"></body></html>");
        *ctype = "text/html; charset=utf-8";
        return 200;
    }
    buf_puts(body, "not found\n");
    return 404;
}

/* --- rates, signals, leave ------------------------------------------------ */

static void on_rate_timer(void *ctx)
{
    struct net_node *n = ctx;
    struct chord_stats st;
    struct node_metrics *m = &n->m;

    chord_get_stats(n->chord, &st);
    m->rate_head = (m->rate_head + 1) % (NET_NODE_RATE_SECS + 1);
    m->rates[m->rate_head] = (struct rate_sample){.ms = net_now_ms(),
                                                  .msgs_in = st.msgs_in,
                                                  .msgs_out = st.msgs_out,
                                                  .bytes_in = st.bytes_in,
                                                  .bytes_out = st.bytes_out};
    if (m->nrates < NET_NODE_RATE_SECS + 1)
        m->nrates++;
    /* Tell the operator how the join goes. */
    unsigned joined = 0, nv = chord_vnode_count(n->chord);
    for (unsigned i = 0; i < nv; i++)
        joined += chord_vnode_joined(n->chord, i);
    uint64_t now = net_now_ms();
    if (joined == nv && !n->joined_logged) {
        n->joined_logged = true;
        LOG_I(&n->lg, MOD, "all %u vnodes are members of the ring (%.1f s after start)", nv,
              (double)(now - n->started_ms) / 1000.0);
    } else if (joined < nv && !n->leaving && now - n->started_ms >= 5000 &&
               now - n->join_warned_ms >= 10000) {
        char a[ADDR_STR_MAX];
        n->join_warned_ms = now;
        addr_format(&n->cfg->join[0], a, sizeof(a));
        LOG_W(&n->lg, MOD, "%u of %u vnodes joined after %.0f s; still trying %s%s", joined, nv,
              (double)(now - n->started_ms) / 1000.0, a,
              n->cfg->njoin > 1 ? " and the other --join addresses" : "");
    }
    net_timer_arm(n->rate_timer, 1000);
}

static void on_leave_deadline(void *ctx)
{
    struct net_node *n = ctx;
    LOG_W(&n->lg, MOD, "leave not acknowledged within %u ms; exiting anyway", NET_NODE_LEAVE_MS);
    n->exiting = true;
    net_loop_stop(n->loop);
}

/* Starts the voluntary leave; the loop stops when chord has left, or at
 * the latest after NET_NODE_LEAVE_MS. */
static void node_leave(struct net_node *n)
{
    n->leaving = true;
    if (n->bs)
        bs_leave(n->bs);
    chord_leave(n->chord);
    net_timer_arm(n->leave_timer, NET_NODE_LEAVE_MS);
    node_kick(n);
}

static void on_signal(void *ctx, int signo)
{
    struct net_node *n = ctx;

    if (n->leaving) {
        LOG_W(&n->lg, MOD, "%s again: exiting without waiting for the leave", strsignal(signo));
        n->exiting = true;
        net_loop_stop(n->loop);
        return;
    }
    LOG_I(&n->lg, MOD, "%s: leaving the ring", strsignal(signo));
    node_leave(n);
}

/* net_node_stop, on the loop thread. A node that never joined has nothing
 * to hand over. */
static void on_stop_mail(void *arg)
{
    struct net_node *n = arg;

    if (n->leaving)
        return;
    if (!n->all_joined) {
        n->exiting = true;
        net_loop_stop(n->loop);
        return;
    }
    LOG_I(&n->lg, MOD, "stopping: leaving the ring");
    node_leave(n);
}

/* --- data directory ------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, dir, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

/* Writes data to path durably: a temporary, fsync, rename, fsync the dir. */
static int write_durable(const char *dir, const char *path, const char *data, size_t len)
{
    char *tmp = NULL;
    int fd = -1, dfd = -1, rc = 0;

    if (asprintf(&tmp, "%s.tmp", path) < 0)
        return -ENOMEM;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || rename(tmp, path) < 0) {
        rc = -errno;
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        rc = -errno;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

static int write_node_json(struct net_node *n)
{
    struct buf b = BUF_INIT;
    char a[ADDR_STR_MAX];
    int rc;

    addr_format(net_peers_self(n->peers), a, sizeof(a));
    buf_printf(&b, "{\"pid\": %d, \"listen\": ", (int)getpid());
    buf_json_str(&b, a);
    buf_puts(&b, ", \"http\": ");
    if (n->http) {
        addr_format(net_http_addr(n->http), a, sizeof(a));
        buf_json_str(&b, a);
    } else {
        buf_puts(&b, "null");
    }
    buf_puts(&b, ", \"control\": ");
    buf_json_str(&b, n->sock_path);
    buf_puts(&b, ", \"api\": ");
    if (n->api) {
        addr_format(net_api_addr(n->api), a, sizeof(a));
        buf_json_str(&b, a);
    } else {
        buf_puts(&b, "null");
    }
    buf_puts(&b, ", \"vnodes\": [");
    for (unsigned i = 0; i < chord_vnode_count(n->chord); i++) {
        char hex[ID_HEX_LEN + 1];
        id_to_hex(&chord_vnode_self(n->chord, i)->id, hex);
        buf_printf(&b, "%s\"%s\"", i ? ", " : "", hex);
    }
    buf_puts(&b, "]}\n");
    rc = b.failed ? -ENOMEM : write_durable(n->cfg->datadir, n->json_path, b.data, b.len);
    buf_release(&b);
    return rc;
}

static int lock_datadir(struct net_node *n)
{
    n->lock_fd = open(n->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (n->lock_fd < 0) {
        LOG_E(&n->lg, MOD, "cannot open %s: %s", n->lock_path, strerror(errno));
        return -errno;
    }
    if (flock(n->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t r = pread(n->lock_fd, pid, sizeof(pid) - 1, 0);
        if (r > 0) {
            pid[r] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
        }
        LOG_E(&n->lg, MOD, "data directory %s is in use by another node (pid %s)", n->cfg->datadir,
              r > 0 ? pid : "unknown");
        return -e;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(n->lock_fd, 0) == 0 && pwrite(n->lock_fd, pid, (size_t)len, 0) < 0)
        LOG_W(&n->lg, MOD, "cannot write the pid into %s", n->lock_path);
    return 0;
}

/* --- life cycle ------------------------------------------------------------ */

static int node_start(struct net_node *n)
{
    const struct net_node_config *cfg = n->cfg;
    struct net_peers_cbs pcbs = {
        .ctx = n, .frame = on_peer_frame, .unreachable = on_peer_unreachable};
    struct chord_callbacks ccbs = {
        .ctx = n, .lookup_done = on_lookup_done, .update = on_chord_update};
    struct chord_config ccfg;
    struct env env = {.now_ms = node_env_now,
                      .send = env_send,
                      .random = env_random,
                      .wall_ms = node_env_wall,
                      .ctx = n};
    char a[ADDR_STR_MAX];
    int rc;

    rc = mkdir_p(cfg->datadir);
    if (rc) {
        LOG_E(&n->lg, MOD, "cannot create data directory %s: %s", cfg->datadir, strerror(-rc));
        return rc;
    }
    n->json_path = path_join(cfg->datadir, "node.json");
    n->sock_path = path_join(cfg->datadir, "control.sock");
    n->lock_path = path_join(cfg->datadir, "lock");
    if (!n->json_path || !n->sock_path || !n->lock_path)
        return -ENOMEM;
    rc = lock_datadir(n);
    if (rc)
        return rc;
    rc = net_loop_new(&n->loop);
    if (rc)
        return rc;
    rc = net_peers_new(n->loop, &cfg->listen, &pcbs, &n->lg, &n->peers);
    if (rc) {
        addr_format(&cfg->listen, a, sizeof(a));
        LOG_E(&n->lg, MOD, "cannot listen on %s: %s", a, strerror(-rc));
        return rc;
    }
    addr_format(net_peers_self(n->peers), a, sizeof(a));
    snprintf(n->prefix, sizeof(n->prefix), "%s ", a);
    n->lg.prefix = n->prefix;
    pthread_mutex_lock(&n->start_lock);
    n->self = *net_peers_self(n->peers);
    pthread_mutex_unlock(&n->start_lock);

    chord_config_default(&ccfg, net_peers_self(n->peers));
    ccfg.vnodes = cfg->vnodes;
    n->chord_env = env;
    rc = chord_new(&ccfg, &env, &ccbs, &n->lg, &n->chord);
    if (rc) {
        LOG_E(&n->lg, MOD, "bad overlay configuration: %s", strerror(-rc));
        return rc;
    }
    if ((rc = net_timer_new(n->loop, on_chord_timer, n, &n->chord_timer)) ||
        (rc = net_timer_new(n->loop, on_leave_deadline, n, &n->leave_timer)) ||
        (rc = net_timer_new(n->loop, on_rate_timer, n, &n->rate_timer)))
        return rc;
    if (!cfg->no_signals &&
        ((rc = net_sigwatch_new(n->loop, SIGTERM, on_signal, n, &n->sig_term)) ||
         (rc = net_sigwatch_new(n->loop, SIGINT, on_signal, n, &n->sig_int))))
        return rc;
    rc = node_store_start(n);
    if (rc)
        return rc;
    rc = node_client_start(n);
    if (rc)
        return rc;
    rc = net_listener_new_unix(n->loop, n->sock_path, on_ctl_accept, n, &n->ctl_ln);
    if (rc) {
        LOG_E(&n->lg, MOD, "cannot listen on %s: %s", n->sock_path, strerror(-rc));
        return rc;
    }
    if (cfg->http_on) {
        rc = net_http_new(n->loop, &cfg->http, on_http, n, &n->http);
        if (rc) {
            addr_format(&cfg->http, a, sizeof(a));
            LOG_E(&n->lg, MOD, "cannot serve HTTP on %s: %s", a, strerror(-rc));
            return rc;
        }
    }
    rc = write_node_json(n);
    if (rc) {
        LOG_E(&n->lg, MOD, "cannot write %s: %s", n->json_path, strerror(-rc));
        return rc;
    }
    n->started_ms = net_now_ms();
    if (cfg->njoin == 0) {
        rc = chord_create(n->chord);
        LOG_I(&n->lg, MOD, "started a new ring with %u vnodes", cfg->vnodes);
    } else {
        for (unsigned i = 0; i < cfg->njoin && rc == 0; i++)
            rc = chord_join(n->chord, &cfg->join[i]);
        addr_format(&cfg->join[0], a, sizeof(a));
        LOG_I(&n->lg, MOD, "joining the ring through %s%s with %u vnodes", a,
              cfg->njoin > 1 ? " and others" : "", cfg->vnodes);
    }
    if (rc) {
        LOG_E(&n->lg, MOD, "cannot start the overlay: %s", strerror(-rc));
        return rc;
    }
    on_rate_timer(n);
    node_kick(n);
    return 0;
}

static void node_stop(struct net_node *n)
{
    if (n->json_path && n->peers)
        unlink(n->json_path);
    while (n->nctl) {
        struct ctl_conn *cc = n->ctl[0];
        net_stream_close(cc->s);
        ctl_forget(n, cc);
    }
    net_listener_free(n->ctl_ln);
    node_store_stop(n);
    node_client_stop(n);
    net_http_free(n->http);
    net_sigwatch_free(n->sig_term);
    net_sigwatch_free(n->sig_int);
    net_timer_free(n->chord_timer);
    net_timer_free(n->leave_timer);
    net_timer_free(n->rate_timer);
    chord_free(n->chord);
    net_peers_free(n->peers);
    net_loop_free(n->loop);
    if (n->lock_fd >= 0)
        close(n->lock_fd);
    free(n->lookups);
    free(n->json_path);
    free(n->sock_path);
    free(n->lock_path);
}

/* A node with cfg (not copied), or NULL. */
static struct net_node *node_new(const struct net_node_config *cfg)
{
    struct net_node *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    if (pthread_mutex_init(&n->start_lock, NULL)) {
        free(n);
        return NULL;
    }
    if (pthread_cond_init(&n->start_cond, NULL)) {
        pthread_mutex_destroy(&n->start_lock);
        free(n);
        return NULL;
    }
    n->cfg = cfg;
    n->lock_fd = -1;
    log_init(&n->lg, stderr, cfg->log_level);
    n->m.lookup_hops =
        (struct hist){.bounds = hop_bounds, .nbounds = sizeof(hop_bounds) / sizeof(hop_bounds[0])};
    n->m.lookup_seconds =
        (struct hist){.bounds = sec_bounds, .nbounds = sizeof(sec_bounds) / sizeof(sec_bounds[0])};
    n->m.rpc_seconds = n->m.lookup_seconds;
    /* Room for NET_MAX_CONNS peers, the control clients and the store:
     * the soft limit is often 1,024, the hard one much higher. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return n;
}

/* After node_stop (and the end of the loop's thread). */
static void node_free(struct net_node *n)
{
    node_client_free(n);
    pthread_cond_destroy(&n->start_cond);
    pthread_mutex_destroy(&n->start_lock);
    free(n->datadir_copy);
    free(n);
}

int net_node_run(const struct net_node_config *cfg)
{
    struct net_node *n = node_new(cfg);
    int rc;

    if (!n)
        return 1;
    /* A peer that vanishes mid-write must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    rc = node_start(n);
    if (rc == 0) {
        rc = net_loop_run(n->loop);
        if (rc)
            LOG_E(&n->lg, MOD, "event loop failed");
    }
    node_stop(n);
    node_free(n);
    return rc ? 1 : 0;
}

/* --- a node on a thread of its own ------------------------------------------ */

static void *node_thread(void *arg)
{
    struct net_node *n = arg;
    int rc = node_start(n);

    if (rc == 0) {
        /* From here on net_node_start may post to the mailbox. */
        pthread_mutex_lock(&n->start_lock);
        n->threaded = true;
        pthread_cond_broadcast(&n->start_cond);
        pthread_mutex_unlock(&n->start_lock);
        rc = net_loop_run(n->loop);
        if (rc)
            LOG_E(&n->lg, MOD, "event loop failed");
    }
    node_stop(n);
    pthread_mutex_lock(&n->start_lock);
    if (n->start_state == 0)
        n->start_state = rc < 0 ? rc : -ECANCELED;
    pthread_cond_broadcast(&n->start_cond);
    pthread_mutex_unlock(&n->start_lock);
    return NULL;
}

/* Ignores SIGPIPE unless the process chose what it does. */
static void sigpipe_ignore(void)
{
    struct sigaction sa;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

int net_node_start(const struct net_node_config *cfg, struct net_node **out)
{
    struct net_node *n;
    struct timespec until;
    sigset_t all, old;
    int rc;

    if (!cfg || !cfg->datadir || !out)
        return -EINVAL;
    n = node_new(cfg);
    if (!n)
        return -ENOMEM;
    n->cfg_copy = *cfg;
    n->cfg_copy.no_signals = true;
    n->datadir_copy = strdup(cfg->datadir);
    if (!n->datadir_copy) {
        node_free(n);
        return -ENOMEM;
    }
    n->cfg_copy.datadir = n->datadir_copy;
    n->cfg = &n->cfg_copy;
    sigpipe_ignore();
    /* The loop's thread takes no signal: they are the caller's. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&n->thread, NULL, node_thread, n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        node_free(n);
        return rc;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += NET_NODE_JOIN_MS / 1000u;
    until.tv_nsec += (long)(NET_NODE_JOIN_MS % 1000u) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->start_lock);
    bool late = false;
    /* Wait for the join, a failure, or the deadline once the loop runs. */
    while (n->start_state == 0 && !(late && n->threaded)) {
        if (late)
            pthread_cond_wait(&n->start_cond, &n->start_lock);
        else if (pthread_cond_timedwait(&n->start_cond, &n->start_lock, &until) == ETIMEDOUT)
            late = true;
    }
    rc = n->start_state;
    pthread_mutex_unlock(&n->start_lock);
    if (rc == 1) {
        *out = n;
        return 0;
    }
    if (rc == 0) {
        char a[ADDR_STR_MAX];
        addr_format(n->cfg->njoin ? &n->cfg->join[0] : &n->cfg->listen, a, sizeof(a));
        LOG_E(&n->lg, MOD, "the join through %s did not finish within %u ms", a, NET_NODE_JOIN_MS);
        node_client_close(n);
        (void)node_client_post(n, on_stop_mail, NULL, n); /* fails if the loop ended */
        rc = -ETIMEDOUT;
    }
    pthread_join(n->thread, NULL);
    node_free(n);
    return rc;
}

void net_node_stop(struct net_node *n)
{
    if (!n)
        return;
    node_client_close(n);
    /* Fails only if the loop has ended already. */
    (void)node_client_post(n, on_stop_mail, NULL, n);
    pthread_join(n->thread, NULL);
    node_free(n);
}

struct addr net_node_addr(const struct net_node *n)
{
    /* Written before net_node_start returned, never after. */
    return n->self;
}
