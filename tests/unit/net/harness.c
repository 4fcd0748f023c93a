/* harness.c — see harness.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "net/timer.h"

struct wait {
    struct net_loop *l;
    bool (*cond)(void *ctx);
    void *ctx;
    struct net_timer *poll;
    bool met, expired;
};

static void on_poll(void *arg)
{
    struct wait *w = arg;

    if (w->cond && w->cond(w->ctx)) {
        w->met = true;
        net_loop_stop(w->l);
        return;
    }
    net_timer_arm(w->poll, 1);
}

static void on_guard(void *arg)
{
    struct wait *w = arg;

    w->expired = true;
    net_loop_stop(w->l);
}

/* Runs l until w->cond holds (cond NULL: until the guard, after limit_ms). */
static void run(struct wait *w, uint64_t limit_ms)
{
    struct net_timer *guard;

    assert_int_equal(net_timer_new(w->l, on_poll, w, &w->poll), 0);
    assert_int_equal(net_timer_new(w->l, on_guard, w, &guard), 0);
    net_timer_arm(w->poll, 1);
    net_timer_arm(guard, limit_ms);
    assert_int_equal(net_loop_run(w->l), 0);
    net_timer_free(guard);
    net_timer_free(w->poll);
}

void nt_run_until_(struct net_loop *l, bool (*cond)(void *ctx), void *ctx, const char *what,
                   const char *file, int line)
{
    struct wait w = {.l = l, .cond = cond, .ctx = ctx};

    if (cond(ctx))
        return;
    run(&w, NT_GUARD_MS);
    if (!w.met)
        fail_msg("%s:%d: still waiting for %s after %u ms", file, line, what, NT_GUARD_MS);
}

void nt_run_for(struct net_loop *l, uint64_t ms)
{
    struct wait w = {.l = l};

    run(&w, ms);
    assert_true(w.expired);
}

size_t nt_frame(uint8_t *buf, uint16_t type, uint8_t flags, uint64_t id, const void *payload,
                uint32_t len)
{
    struct frame_header h = {
        .version = FRAME_VERSION,
        .flags = flags,
        .type = type,
        .request_id = id,
        .length = len,
    };

    frame_header_encode(&h, buf);
    if (len)
        memcpy(buf + FRAME_HEADER_SIZE, payload, len);
    return FRAME_HEADER_SIZE + (size_t)len;
}

static uint16_t seq_type(uint32_t seed)
{
    return (uint16_t)(0x100 + seed % 0x1000);
}

static uint64_t seq_id(uint32_t seed)
{
    return (uint64_t)seed * 0x9e3779b97f4a7c15u + 1;
}

static uint8_t seq_byte(uint32_t seed, size_t k)
{
    return (uint8_t)(seed * 31u + k * 7u + k / 251u + 3u);
}

uint32_t nt_seq_len(uint32_t seed)
{
    return seed % 5 == 0 ? 0 : (seed * 37u) % 300u;
}

size_t nt_frame_seq(uint8_t *buf, uint32_t seed, uint32_t len)
{
    struct frame_header h = {
        .version = FRAME_VERSION,
        .type = seq_type(seed),
        .request_id = seq_id(seed),
        .length = len,
    };

    frame_header_encode(&h, buf);
    for (size_t k = 0; k < len; k++)
        buf[FRAME_HEADER_SIZE + k] = seq_byte(seed, k);
    return FRAME_HEADER_SIZE + (size_t)len;
}

void nt_frame_check(uint32_t seed, const struct frame_header *h, const uint8_t *frame, size_t len)
{
    struct frame_header again;

    assert_int_equal(h->type, seq_type(seed));
    assert_true(h->request_id == seq_id(seed));
    assert_int_equal(h->flags, 0);
    assert_int_equal(len, FRAME_HEADER_SIZE + (size_t)h->length);
    /* The bytes handed over start with the very header that was decoded. */
    assert_int_equal(frame_header_decode(frame, len, &again), 0);
    assert_int_equal(again.type, h->type);
    assert_int_equal(again.length, h->length);
    for (size_t k = 0; k < h->length; k++)
        if (frame[FRAME_HEADER_SIZE + k] != seq_byte(seed, k))
            fail_msg("frame %u: payload byte %zu is 0x%02x, sent 0x%02x", seed, k,
                     frame[FRAME_HEADER_SIZE + k], seq_byte(seed, k));
}

void nt_socketpair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
}

void nt_send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_msg("send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

bool nt_fd_at_eof(int fd)
{
    uint8_t buf[4096];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        return errno == ECONNRESET;
    }
}

bool nt_fd_eof_cond(void *fdp)
{
    return nt_fd_at_eof(*(int *)fdp);
}

void nt_addr(const char *ip, uint16_t port, struct addr *out)
{
    char s[ADDR_STR_MAX];

    snprintf(s, sizeof(s), "%s:%u", ip, port);
    assert_int_equal(addr_parse_listen(s, out), 0);
}

void nt_id_pattern(struct id *id, uint8_t seed)
{
    for (size_t i = 0; i < ID_BYTES; i++)
        id->b[i] = (uint8_t)(seed + i * 3);
}

static void sin_of(const char *ip, uint16_t port, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
}

int nt_tcp_closed_port(const char *ip, struct addr *out)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin_of(ip, 0, &sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    nt_addr(ip, ntohs(sin.sin_port), out);
    return fd;
}

int nt_tcp_listen(const char *ip, struct addr *out)
{
    int fd = nt_tcp_closed_port(ip, out);

    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return fd;
}

int nt_tcp_dial(const char *from_ip, const struct addr *to)
{
    struct sockaddr_in sin;
    char ip[INET_ADDRSTRLEN];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin_of(from_ip, 0, &sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(to->family, ADDR_V4);
    assert_non_null(inet_ntop(AF_INET, to->ip, ip, sizeof(ip)));
    sin_of(ip, to->port, &sin);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

void nt_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}
