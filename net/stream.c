/* stream.c — framed streams over libevent bufferevents. */
#include "net/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "net/internal.h"
#include "net/sockaddr.h"

struct net_stream {
    struct bufferevent *bev;
    struct event *deadline; /* the current frame (or first frame) must be whole by then */
    struct net_stream_cbs cbs;
    struct addr peer;
    size_t out_max;
    uint64_t bytes_in, bytes_out;
    bool connecting;
    bool in_cb;        /* inside a callback to the owner: defer the free */
    bool dead;         /* closed; free when the callback returns */
    bool flush_close;  /* close when the output queue drains */
    bool deadline_set; /* deadline armed */
};

const char *net_close_reason(int reason)
{
    switch (reason) {
    case NET_CLOSE_EOF: return "peer closed the connection";
    case NET_CLOSE_MID_FRAME: return "peer closed the connection in the middle of a frame";
    case NET_CLOSE_BAD_FRAME: return "bad frame";
    case NET_CLOSE_TIMEOUT: return "frame incomplete for too long";
    case NET_CLOSE_BY_OWNER: return "closed";
    case NET_CLOSE_CONNECT: return "connect failed";
    default: return "socket error";
    }
}

static void stream_destroy(struct net_stream *s)
{
    if (s->deadline)
        event_free(s->deadline);
    if (s->bev)
        bufferevent_free(s->bev);
    free(s);
}

/* Ends the stream: tells the owner (unless it asked), then frees it now or
 * when the current callback unwinds. */
static void stream_end(struct net_stream *s, int reason, int err, const char *why)
{
    if (s->dead)
        return;
    s->dead = true;
    bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    if (reason != NET_CLOSE_BY_OWNER && s->cbs.closed) {
        bool outer = s->in_cb;
        s->in_cb = true;
        s->cbs.closed(s->cbs.ctx, s, reason, err, why);
        s->in_cb = outer;
    }
    if (!s->in_cb)
        stream_destroy(s);
}

static void deadline_arm(struct net_stream *s)
{
    struct timeval tv = {NET_FRAME_TIMEOUT_MS / 1000, (NET_FRAME_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(s->deadline, &tv);
    s->deadline_set = true;
}

static void deadline_clear(struct net_stream *s)
{
    if (s->deadline_set) {
        evtimer_del(s->deadline);
        s->deadline_set = false;
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct net_stream *s = arg;
    char why[96];
    (void)fd;
    (void)what;
    s->deadline_set = false;
    if (s->flush_close) {
        stream_end(s, NET_CLOSE_BY_OWNER, 0, "closed");
        return;
    }
    snprintf(why, sizeof(why), "no complete frame within %u ms (%zu bytes pending)",
             NET_FRAME_TIMEOUT_MS, evbuffer_get_length(bufferevent_get_input(s->bev)));
    stream_end(s, NET_CLOSE_TIMEOUT, 0, why);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct net_stream *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    bool delivered = false;

    s->in_cb = true;
    /* After close_after_flush the owner wants no more frames. */
    while (!s->dead && !s->flush_close) {
        size_t have = evbuffer_get_length(in);
        struct frame_header h;
        uint8_t hdr[FRAME_HEADER_SIZE];
        int rc;

        if (have < FRAME_HEADER_SIZE)
            break;
        evbuffer_copyout(in, hdr, sizeof(hdr));
        rc = frame_header_decode(hdr, sizeof(hdr), &h);
        if (rc) {
            char why[96];
            snprintf(why, sizeof(why), "%s", frame_strerror(rc));
            stream_end(s, NET_CLOSE_BAD_FRAME, 0, why);
            break;
        }
        size_t total = FRAME_HEADER_SIZE + (size_t)h.length;
        if (have < total)
            break;
        const uint8_t *frame = evbuffer_pullup(in, (ev_ssize_t)total);
        if (!frame) {
            stream_end(s, NET_CLOSE_BAD_FRAME, ENOMEM, "out of memory");
            break;
        }
        s->bytes_in += total;
        delivered = true;
        if (s->cbs.frame)
            s->cbs.frame(s->cbs.ctx, s, &h, frame, total);
        if (!s->dead)
            evbuffer_drain(in, total);
    }
    s->in_cb = false;
    if (s->dead) {
        stream_destroy(s);
        return;
    }
    if (s->flush_close)
        return; /* the flush deadline stays */
    /* A new frame's clock starts when its first byte is here: rearm after
     * each complete frame, keep the old deadline while one is partial. */
    if (evbuffer_get_length(in) == 0)
        deadline_clear(s);
    else if (delivered || !s->deadline_set)
        deadline_arm(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct net_stream *s = arg;
    (void)bev;
    if (s->flush_close)
        stream_end(s, NET_CLOSE_BY_OWNER, 0, "closed");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct net_stream *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    char why[128];

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        s->connecting = false;
        if (s->cbs.connected) {
            s->in_cb = true;
            s->cbs.connected(s->cbs.ctx, s);
            s->in_cb = false;
            if (s->dead)
                stream_destroy(s);
        }
        return;
    }
    if (s->flush_close) {
        stream_end(s, NET_CLOSE_BY_OWNER, 0, "closed");
        return;
    }
    if (s->connecting) {
        snprintf(why, sizeof(why), "connect failed: %s", strerror(err));
        stream_end(s, NET_CLOSE_CONNECT, err, why);
    } else if (what & BEV_EVENT_EOF) {
        size_t pending = evbuffer_get_length(bufferevent_get_input(s->bev));
        if (pending) {
            snprintf(why, sizeof(why),
                     "peer closed the connection in the middle of a frame (%zu "
                     "bytes pending)",
                     pending);
            stream_end(s, NET_CLOSE_MID_FRAME, 0, why);
        } else {
            stream_end(s, NET_CLOSE_EOF, 0, "peer closed the connection");
        }
    } else {
        snprintf(why, sizeof(why), "socket error: %s", strerror(err));
        stream_end(s, -err, err, why);
    }
}

static struct net_stream *stream_alloc(struct net_loop *l, int fd, const struct net_stream_cbs *cbs)
{
    struct net_stream *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->cbs = *cbs;
    s->out_max = NET_OUT_MAX_DEFAULT;
    s->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    s->deadline = evtimer_new(l->base, on_deadline, s);
    if (!s->bev || !s->deadline) {
        if (!s->bev && fd >= 0)
            close(fd);
        stream_destroy(s);
        return NULL;
    }
    bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
    /* Read at most one maximal frame ahead; TCP flow control does the rest. */
    bufferevent_setwatermark(s->bev, EV_READ, 0, FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    return s;
}

/* TCP options of every peer stream: no Nagle delay (frames are small
 * requests), and a cap on how long sent data may stay unacknowledged. A
 * connection that lost its path (a cut link, a partition) would otherwise
 * keep queueing frames behind kernel retransmissions minutes apart, and
 * keep doing so after the path heals; this way it fails, the cache drops
 * it, and the next frame dials afresh. */
static void tcp_tune(int fd)
{
    int one = 1;
    unsigned int user_timeout = NET_TCP_USER_TIMEOUT_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

static int socket_nonblock(int domain)
{
    int fd = socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int net_stream_connect(struct net_loop *l, const struct addr *to, const struct addr *bind_ip,
                       const struct net_stream_cbs *cbs, struct net_stream **out)
{
    struct sockaddr_storage ss;
    socklen_t sl = net_sockaddr_from_addr(to, &ss);
    struct net_stream *s;
    int fd;

    if (!sl)
        return -EAFNOSUPPORT;
    fd = socket_nonblock(ss.ss_family);
    if (fd < 0)
        return fd;
    tcp_tune(fd);
    if (bind_ip && bind_ip->family == to->family && !addr_is_unspecified(bind_ip)) {
        /* Speak from the address we are known by, so that peers (and
         * their checks of HELLO) see the node's own address. */
        struct addr b = *bind_ip;
        struct sockaddr_storage bs;
        b.port = 0;
        socklen_t bl = net_sockaddr_from_addr(&b, &bs);
        if (bind(fd, (struct sockaddr *)&bs, bl) < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
    }
    s = stream_alloc(l, fd, cbs);
    if (!s)
        return -ENOMEM;
    s->peer = *to;
    s->connecting = true;
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss, (int)sl) < 0) {
        int e = errno ? -errno : -ECONNREFUSED;
        stream_destroy(s);
        return e;
    }
    *out = s;
    return 0;
}

int net_stream_connect_unix(struct net_loop *l, const char *path, const struct net_stream_cbs *cbs,
                            struct net_stream **out)
{
    struct sockaddr_un sun;
    struct net_stream *s;
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    fd = socket_nonblock(AF_UNIX);
    if (fd < 0)
        return fd;
    /* A Unix connect completes or fails at once. */
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(fd);
        return e;
    }
    s = stream_alloc(l, fd, cbs);
    if (!s)
        return -ENOMEM;
    *out = s;
    return 0;
}

int net_stream_accept(struct net_loop *l, int fd, const struct net_stream_cbs *cbs,
                      struct net_stream **out)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct net_stream *s;

    evutil_make_socket_nonblocking(fd);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
        tcp_tune(fd);
    else
        ss.ss_family = AF_UNSPEC;
    s = stream_alloc(l, fd, cbs);
    if (!s)
        return -ENOMEM;
    if (ss.ss_family != AF_UNSPEC)
        net_addr_from_sockaddr((struct sockaddr *)&ss, &s->peer);
    deadline_arm(s);
    *out = s;
    return 0;
}

int net_stream_send(struct net_stream *s, const void *frame, size_t len)
{
    struct evbuffer *outb;

    if (s->dead || s->flush_close)
        return -EPIPE;
    outb = bufferevent_get_output(s->bev);
    if (evbuffer_get_length(outb) + len > s->out_max)
        return -ENOBUFS;
    if (evbuffer_add(outb, frame, len) < 0)
        return -ENOMEM;
    s->bytes_out += len;
    return 0;
}

void net_stream_close(struct net_stream *s)
{
    if (!s)
        return;
    stream_end(s, NET_CLOSE_BY_OWNER, 0, "closed");
}

void net_stream_close_after_flush(struct net_stream *s)
{
    struct timeval tv = {2, 0};

    if (s->dead)
        return;
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
        net_stream_close(s);
        return;
    }
    s->flush_close = true;
    bufferevent_disable(s->bev, EV_READ);
    /* The frame deadline becomes the flush deadline. */
    evtimer_add(s->deadline, &tv);
    s->deadline_set = true;
}

void net_stream_set_out_max(struct net_stream *s, size_t out_max)
{
    s->out_max = out_max;
}

void net_stream_set_cbs(struct net_stream *s, const struct net_stream_cbs *cbs)
{
    s->cbs = *cbs;
}

size_t net_stream_queued(const struct net_stream *s)
{
    return evbuffer_get_length(bufferevent_get_output(s->bev));
}

const struct addr *net_stream_peer(const struct net_stream *s)
{
    return &s->peer;
}

uint64_t net_stream_bytes_in(const struct net_stream *s)
{
    return s->bytes_in;
}

uint64_t net_stream_bytes_out(const struct net_stream *s)
{
    return s->bytes_out;
}
