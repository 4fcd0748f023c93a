/* peers.c — the listener and connection cache of peers.h. */
#include "net/peers.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/listener.h"
#include "net/stream.h"
#include "net/timer.h"

#define MOD      "net"
#define SWEEP_MS 1000u

struct conn {
    struct net_peers *p;
    struct net_stream *s;
    struct addr addr; /* ring address: dialled, or named by HELLO; else family NONE */
    bool dialled;
    bool up;
    uint64_t opened_ms, used_ms;
};

struct self_frame {
    struct self_frame *next;
    size_t len;
    uint8_t data[];
};

struct net_peers {
    struct net_loop *loop;
    struct net_listener *ln;
    struct net_timer *sweep, *self_timer;
    struct net_peers_cbs cbs;
    const struct logger *lg;
    struct logger silent;
    struct addr self;
    struct conn **conns;
    size_t nconns, cap;
    struct self_frame *self_head, *self_tail;
    struct net_peers_stats st;
    uint64_t over_limit_logged_ms;
};

static void conn_name(const struct conn *c, char *buf, size_t size)
{
    char a[ADDR_STR_MAX];
    if (c->addr.family != ADDR_NONE)
        addr_format(&c->addr, a, sizeof(a));
    else
        addr_format(net_stream_peer(c->s), a, sizeof(a));
    snprintf(buf, size, "%s %s", c->dialled ? "to" : "from", a);
}

static void conn_forget(struct net_peers *p, struct conn *c)
{
    for (size_t i = 0; i < p->nconns; i++) {
        if (p->conns[i] == c) {
            p->conns[i] = p->conns[--p->nconns];
            break;
        }
    }
    p->st.bytes_in += net_stream_bytes_in(c->s);
    p->st.bytes_out += net_stream_bytes_out(c->s);
    free(c);
}

/* Closes c ourselves (no closed callback follows). */
static void conn_close(struct net_peers *p, struct conn *c)
{
    struct net_stream *s = c->s;
    conn_forget(p, c);
    net_stream_close(s);
}

static struct conn *conn_add(struct net_peers *p, struct net_stream *s, bool dialled)
{
    struct conn *c;

    if (p->nconns == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct conn **n = realloc(p->conns, cap * sizeof(*n));
        if (!n)
            return NULL;
        p->conns = n;
        p->cap = cap;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->p = p;
    c->s = s;
    c->dialled = dialled;
    c->opened_ms = c->used_ms = net_now_ms();
    p->conns[p->nconns++] = c;
    return c;
}

static int hello_frame(const struct addr *self, uint8_t *buf, size_t cap)
{
    struct frame_header h = {.version = FRAME_VERSION, .type = NET_MSG_HELLO};
    size_t n = net_hello_encode(self, buf + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE);

    if (!n)
        return -EINVAL;
    h.length = (uint32_t)n;
    frame_header_encode(&h, buf);
    return (int)(FRAME_HEADER_SIZE + n);
}

static void on_hello(struct net_peers *p, struct conn *c, const uint8_t *payload, size_t len)
{
    struct addr a;
    char name[ADDR_STR_MAX + 8];

    conn_name(c, name, sizeof(name));
    if (net_hello_decode(payload, len, &a) < 0) {
        LOG_W(p->lg, MOD, "closing connection %s: malformed HELLO", name);
        goto bad;
    }
    if (c->dialled || c->addr.family != ADDR_NONE) {
        if (!addr_eq(&a, &c->addr)) {
            LOG_W(p->lg, MOD, "closing connection %s: HELLO names a different node", name);
            goto bad;
        }
        return;
    }
    /* A peer names itself only by an address it speaks from. */
    const struct addr *sock = net_stream_peer(c->s);
    if (sock->family != a.family || memcmp(sock->ip, a.ip, sizeof(a.ip)) != 0) {
        char claimed[ADDR_STR_MAX];
        addr_format(&a, claimed, sizeof(claimed));
        LOG_W(p->lg, MOD, "closing connection %s: HELLO claims %s, another IP address", name,
              claimed);
        goto bad;
    }
    c->addr = a;
    c->up = true;
    return;
bad:
    p->st.closed_bad++;
    conn_close(p, c);
}

static void on_conn_frame(void *ctx, struct net_stream *s, const struct frame_header *h,
                          const uint8_t *frame, size_t len)
{
    struct conn *c = ctx;
    struct net_peers *p = c->p;
    (void)s;

    c->used_ms = net_now_ms();
    p->st.frames_in++;
    if (h->type == NET_MSG_HELLO) {
        on_hello(p, c, frame + FRAME_HEADER_SIZE, len - FRAME_HEADER_SIZE);
        return;
    }
    const struct addr *from = c->addr.family != ADDR_NONE ? &c->addr : net_stream_peer(c->s);
    if (p->cbs.frame(p->cbs.ctx, from, h, frame, len) < 0) {
        char name[ADDR_STR_MAX + 8];
        conn_name(c, name, sizeof(name));
        LOG_W(p->lg, MOD, "closing connection %s: malformed payload of a type %u frame (%zu bytes)",
              name, h->type, len);
        p->st.closed_bad++;
        conn_close(p, c);
    }
}

static void on_conn_up(void *ctx, struct net_stream *s)
{
    struct conn *c = ctx;
    (void)s;
    c->up = true;
}

static void on_conn_closed(void *ctx, struct net_stream *s, int reason, int err, const char *why)
{
    struct conn *c = ctx;
    struct net_peers *p = c->p;
    char name[ADDR_STR_MAX + 8];
    struct addr to = c->addr;
    bool refused = reason == NET_CLOSE_CONNECT && err == ECONNREFUSED;
    (void)s;

    conn_name(c, name, sizeof(name));
    switch (reason) {
    case NET_CLOSE_EOF: LOG_D(p->lg, MOD, "connection %s closed by the peer", name); break;
    case NET_CLOSE_CONNECT:
        if (refused)
            p->st.refused++;
        else
            p->st.dial_failed++;
        LOG_D(p->lg, MOD, "connection %s: %s", name, why);
        break;
    case NET_CLOSE_BAD_FRAME:
        p->st.closed_bad++;
        LOG_W(p->lg, MOD, "closing connection %s: %s", name, why);
        break;
    case NET_CLOSE_TIMEOUT:
        p->st.closed_slow++;
        LOG_W(p->lg, MOD, "closing connection %s: %s", name, why);
        break;
    case NET_CLOSE_MID_FRAME: LOG_W(p->lg, MOD, "closing connection %s: %s", name, why); break;
    default: LOG_I(p->lg, MOD, "connection %s: %s", name, why); break;
    }
    conn_forget(p, c);
    /* After the stream is gone from the cache, so that a send made by the
     * callback dials afresh. */
    if (refused && p->cbs.unreachable)
        p->cbs.unreachable(p->cbs.ctx, &to);
}

static const struct net_stream_cbs conn_cbs_proto = {
    .connected = on_conn_up,
    .frame = on_conn_frame,
    .closed = on_conn_closed,
};

/* At the connection limit, a newcomer takes the place of the accepted
 * connection that never named itself with HELLO and was used least
 * recently: real peers name themselves, so someone holding many unnamed
 * connections cannot lock the node's peers out. Returns whether one went. */
static bool evict_unnamed(struct net_peers *p)
{
    struct conn *victim = NULL;
    char name[ADDR_STR_MAX + 8];

    for (size_t i = 0; i < p->nconns; i++) {
        struct conn *c = p->conns[i];
        if (!c->dialled && c->addr.family == ADDR_NONE && (!victim || c->used_ms < victim->used_ms))
            victim = c;
    }
    if (!victim)
        return false;
    conn_name(victim, name, sizeof(name));
    LOG_D(p->lg, MOD, "closing connection %s: at the connection limit, it never sent HELLO", name);
    p->st.evicted++;
    conn_close(p, victim);
    return true;
}

static void on_accept(void *ctx, int fd)
{
    struct net_peers *p = ctx;
    struct net_stream_cbs cbs = conn_cbs_proto;
    struct net_stream *s;
    struct conn *c;

    if (p->nconns >= NET_MAX_CONNS && !evict_unnamed(p)) {
        uint64_t now = net_now_ms();
        p->st.over_limit++;
        if (now - p->over_limit_logged_ms >= 10000) {
            p->over_limit_logged_ms = now;
            LOG_W(p->lg, MOD,
                  "refusing connections: %d open already, all from named peers (%llu refused "
                  "so far)",
                  NET_MAX_CONNS, (unsigned long long)p->st.over_limit);
        }
        close(fd);
        return;
    }
    if (net_stream_accept(p->loop, fd, &cbs, &s) < 0)
        return;
    c = conn_add(p, s, false);
    if (!c) {
        net_stream_close(s);
        return;
    }
    cbs.ctx = c;
    net_stream_set_cbs(s, &cbs);
    p->st.accepted++;
}

static struct conn *conn_find(struct net_peers *p, const struct addr *to)
{
    struct conn *best = NULL;
    for (size_t i = 0; i < p->nconns; i++) {
        struct conn *c = p->conns[i];
        if (!addr_eq(&c->addr, to))
            continue;
        /* Prefer a connection that is up over one still connecting. */
        if (c->up)
            return c;
        if (!best)
            best = c;
    }
    return best;
}

static struct conn *conn_dial(struct net_peers *p, const struct addr *to)
{
    struct net_stream_cbs cbs = conn_cbs_proto;
    struct net_stream *s;
    struct conn *c;
    uint8_t hello[FRAME_HEADER_SIZE + 32];
    int n, rc;

    if (p->nconns >= NET_MAX_CONNS)
        return NULL;
    rc = net_stream_connect(p->loop, to, &p->self, &cbs, &s);
    if (rc < 0) {
        char a[ADDR_STR_MAX];
        addr_format(to, a, sizeof(a));
        LOG_D(p->lg, MOD, "cannot dial %s: %s", a, strerror(-rc));
        p->st.dial_failed++;
        return NULL;
    }
    c = conn_add(p, s, true);
    if (!c) {
        net_stream_close(s);
        return NULL;
    }
    c->addr = *to;
    cbs.ctx = c;
    net_stream_set_cbs(s, &cbs);
    n = hello_frame(&p->self, hello, sizeof(hello));
    if (n > 0)
        net_stream_send(s, hello, (size_t)n);
    p->st.dialled++;
    return c;
}

static void on_self_timer(void *ctx)
{
    struct net_peers *p = ctx;
    struct self_frame *list = p->self_head, *next;

    p->self_head = p->self_tail = NULL;
    for (; list; list = next) {
        struct frame_header h;
        next = list->next;
        if (frame_header_decode(list->data, list->len, &h) == 0) {
            p->st.frames_in++;
            p->cbs.frame(p->cbs.ctx, &p->self, &h, list->data, list->len);
        }
        free(list);
    }
}

int net_peers_send(struct net_peers *p, const struct addr *to, const void *frame, size_t len)
{
    struct conn *c;
    int rc;

    if (addr_eq(to, &p->self)) {
        struct self_frame *f = malloc(sizeof(*f) + len);
        if (!f)
            return -ENOMEM;
        f->next = NULL;
        f->len = len;
        memcpy(f->data, frame, len);
        if (p->self_tail)
            p->self_tail->next = f;
        else
            p->self_head = f;
        p->self_tail = f;
        net_timer_arm(p->self_timer, 0);
        p->st.frames_out++;
        return 0;
    }
    c = conn_find(p, to);
    if (!c)
        c = conn_dial(p, to);
    if (!c)
        return -EMFILE;
    rc = net_stream_send(c->s, frame, len);
    if (rc == -ENOBUFS) {
        p->st.dropped++;
        return rc;
    }
    if (rc == 0) {
        c->used_ms = net_now_ms();
        p->st.frames_out++;
    }
    return rc;
}

static void on_sweep(void *ctx)
{
    struct net_peers *p = ctx;
    uint64_t now = net_now_ms();

    for (size_t i = 0; i < p->nconns;) {
        struct conn *c = p->conns[i];
        char name[ADDR_STR_MAX + 8];
        if (c->dialled && !c->up && now - c->opened_ms > NET_CONNECT_TIMEOUT_MS) {
            conn_name(c, name, sizeof(name));
            LOG_I(p->lg, MOD, "connection %s: not up after %u ms, abandoned", name,
                  NET_CONNECT_TIMEOUT_MS);
            p->st.dial_failed++;
            conn_close(p, c);
            continue;
        }
        if (now - c->used_ms > NET_IDLE_MS) {
            conn_name(c, name, sizeof(name));
            LOG_D(p->lg, MOD, "connection %s: idle, closed", name);
            conn_close(p, c);
            continue;
        }
        i++;
    }
    net_timer_arm(p->sweep, SWEEP_MS);
}

int net_peers_new(struct net_loop *l, const struct addr *listen, const struct net_peers_cbs *cbs,
                  const struct logger *lg, struct net_peers **out)
{
    struct net_peers *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return -ENOMEM;
    p->loop = l;
    p->cbs = *cbs;
    log_init_silent(&p->silent);
    p->lg = lg ? lg : &p->silent;
    rc = net_listener_new_tcp(l, listen, on_accept, p, &p->ln);
    if (rc)
        goto err;
    p->self = *net_listener_addr(p->ln);
    rc = net_timer_new(l, on_sweep, p, &p->sweep);
    if (rc)
        goto err;
    rc = net_timer_new(l, on_self_timer, p, &p->self_timer);
    if (rc)
        goto err;
    net_timer_arm(p->sweep, SWEEP_MS);
    *out = p;
    return 0;
err:
    net_peers_free(p);
    return rc;
}

void net_peers_free(struct net_peers *p)
{
    if (!p)
        return;
    while (p->nconns)
        conn_close(p, p->conns[0]);
    free(p->conns);
    while (p->self_head) {
        struct self_frame *f = p->self_head;
        p->self_head = f->next;
        free(f);
    }
    net_timer_free(p->sweep);
    net_timer_free(p->self_timer);
    net_listener_free(p->ln);
    free(p);
}

const struct addr *net_peers_self(const struct net_peers *p)
{
    return &p->self;
}

void net_peers_get_stats(const struct net_peers *p, struct net_peers_stats *out)
{
    *out = p->st;
    out->connections = p->nconns;
    for (size_t i = 0; i < p->nconns; i++) {
        out->bytes_in += net_stream_bytes_in(p->conns[i]->s);
        out->bytes_out += net_stream_bytes_out(p->conns[i]->s);
    }
}

void net_peers_foreach(const struct net_peers *p,
                       void (*fn)(void *ctx, const struct addr *a, bool dialled, size_t queued),
                       void *ctx)
{
    for (size_t i = 0; i < p->nconns; i++) {
        const struct conn *c = p->conns[i];
        fn(ctx, c->addr.family != ADDR_NONE ? &c->addr : net_stream_peer(c->s), c->dialled,
           net_stream_queued(c->s));
    }
}
