/* test_stream.c — framed streams (net/stream.c) over real sockets: an
 * AF_UNIX socketpair whose one end is wrapped with net_stream_accept and
 * whose other end the test writes by hand, and TCP on 127.0.0.1 with a
 * stream at both ends. Frames arrive whole and in order however the bytes
 * are cut; bad headers, EOF inside a frame, a stalled frame and a refused
 * connect each close the stream with their reason; output is bounded;
 * closing from inside a callback is safe, and a close after flush hands
 * over nothing more and ends even if the peer never reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "net/listener.h"
#include "net/stream.h"
#include "net/timer.h"

struct got {
    struct frame_header h;
    uint8_t *bytes; /* a copy of the whole frame */
    size_t len;
};

/* One stream and everything its callbacks saw. */
struct end {
    struct net_loop *l;
    struct net_stream *s; /* NULL once closed */
    struct got *got;
    size_t ngot, cap;
    unsigned connected;
    unsigned closed;
    int reason, err;
    char why[256];
    /* behaviour */
    size_t close_at;         /* net_stream_close inside the frame callback at this frame */
    bool close_on_connect;   /* net_stream_close inside the connected callback */
    bool reply_flush_close;  /* answer each frame, then net_stream_close_after_flush */
    int reply_rc;            /* what that send returned */
    bool closed_after_reply; /* net_stream_close_after_flush ran */
    unsigned after_close;    /* frames delivered after that */
};

static void on_connected(void *ctx, struct net_stream *s)
{
    struct end *e = ctx;

    assert_ptr_equal(s, e->s);
    e->connected++;
    if (e->close_on_connect) {
        net_stream_close(s);
        e->s = NULL;
    }
}

static void on_frame(void *ctx, struct net_stream *s, const struct frame_header *h,
                     const uint8_t *frame, size_t len)
{
    struct end *e = ctx;

    if (e->closed_after_reply) {
        /* The owner asked the stream to close: nothing more should come. */
        e->after_close++;
        return;
    }
    assert_ptr_equal(s, e->s);
    if (e->ngot == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->got = realloc(e->got, e->cap * sizeof(*e->got));
        assert_non_null(e->got);
    }
    e->got[e->ngot].h = *h;
    e->got[e->ngot].len = len;
    e->got[e->ngot].bytes = malloc(len);
    assert_non_null(e->got[e->ngot].bytes);
    memcpy(e->got[e->ngot].bytes, frame, len);
    e->ngot++;

    if (e->reply_flush_close) {
        uint8_t reply[FRAME_HEADER_SIZE + 300];
        e->reply_rc = net_stream_send(s, reply, nt_frame_seq(reply, 77, 300));
        net_stream_close_after_flush(s);
        e->closed_after_reply = true;
        e->s = NULL;
    } else if (e->close_at && e->ngot == e->close_at) {
        net_stream_close(s);
        e->s = NULL;
    }
}

static void on_closed(void *ctx, struct net_stream *s, int reason, int err, const char *why)
{
    struct end *e = ctx;

    assert_ptr_equal(s, e->s);
    assert_non_null(why);
    e->closed++;
    e->reason = reason;
    e->err = err;
    snprintf(e->why, sizeof(e->why), "%s", why);
    e->s = NULL;
}

static void end_init(struct end *e, struct net_loop *l)
{
    memset(e, 0, sizeof(*e));
    e->l = l;
}

static struct net_stream_cbs end_cbs(struct end *e)
{
    return (struct net_stream_cbs){
        .ctx = e,
        .connected = on_connected,
        .frame = on_frame,
        .closed = on_closed,
    };
}

static void end_accept(struct end *e, int fd)
{
    struct net_stream_cbs cbs = end_cbs(e);
    assert_int_equal(net_stream_accept(e->l, fd, &cbs, &e->s), 0);
    assert_non_null(e->s);
}

static void end_release(struct end *e)
{
    net_stream_close(e->s);
    e->s = NULL;
    for (size_t i = 0; i < e->ngot; i++)
        free(e->got[i].bytes);
    free(e->got);
    e->got = NULL;
    e->ngot = e->cap = 0;
}

/* Checks that e received exactly the frames seeds first..first+n-1. */
static void end_check_seq(const struct end *e, size_t from, uint32_t first, size_t n)
{
    assert_true(e->ngot >= from + n);
    for (size_t i = 0; i < n; i++) {
        const struct got *g = &e->got[from + i];
        nt_frame_check(first + (uint32_t)i, &g->h, g->bytes, g->len);
    }
}

static bool is_closed(void *arg)
{
    const struct end *e = arg;
    return e->closed > 0;
}

struct want {
    const struct end *e;
    size_t n;
};

static bool has_frames(void *arg)
{
    const struct want *w = arg;
    return w->e->ngot >= w->n;
}

struct fix {
    struct net_loop *l;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(net_loop_new(&f->l), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;

    net_loop_free(f->l);
    free(f);
    return 0;
}

/* --- frames over a socketpair ------------------------------------------ */

static void test_stream_unix_frames_in_one_piece(void **state)
{
    struct fix *f = *state;
    struct end e;
    int fds[2];

    end_init(&e, f->l);
    nt_socketpair(fds);
    end_accept(&e, fds[0]);
    assert_int_equal(net_stream_peer(e.s)->family, ADDR_NONE);

    size_t total = 0;
    for (uint32_t seed = 0; seed < 6; seed++) {
        uint8_t buf[FRAME_HEADER_SIZE + 300];
        size_t n = nt_frame_seq(buf, seed, nt_seq_len(seed));
        struct want w = {&e, seed + 1};

        nt_send_all(fds[1], buf, n);
        total += n;
        nt_run_until(f->l, has_frames, &w);
    }
    nt_run_for(f->l, 5);
    assert_int_equal(e.ngot, 6);
    end_check_seq(&e, 0, 0, 6);
    assert_int_equal(e.got[0].h.length, 0); /* seed 0: an empty payload */
    assert_int_equal(net_stream_bytes_in(e.s), total);
    assert_int_equal(e.closed, 0);

    /* The peer closes between frames. */
    close(fds[1]);
    nt_run_until(f->l, is_closed, &e);
    assert_int_equal(e.closed, 1);
    assert_int_equal(e.reason, NET_CLOSE_EOF);
    assert_int_equal(e.err, 0);
    end_release(&e);
}

struct dribble {
    struct end *e;
    int fd;
    const uint8_t *buf;
    size_t len, off;
    const size_t *ends; /* offset just past each frame */
    size_t nends;
    size_t early; /* frames seen before their last byte was written */
    struct net_timer *t;
};

/* Writes one byte a tick, and checks that no frame came before its end. */
static void on_dribble(void *arg)
{
    struct dribble *d = arg;
    size_t complete = 0;

    for (size_t i = 0; i < d->nends; i++)
        if (d->ends[i] <= d->off)
            complete++;
    if (d->e->ngot > complete)
        d->early++;
    if (d->off == d->len)
        return;
    nt_send_all(d->fd, d->buf + d->off, 1);
    d->off++;
    net_timer_arm(d->t, 1);
}

static void test_stream_unix_byte_by_byte(void **state)
{
    struct fix *f = *state;
    uint8_t buf[3 * (FRAME_HEADER_SIZE + 64)];
    size_t ends[3], len = 0;
    struct end e;
    int fds[2];

    /* Seeds 1..3: payloads of 37, 0 (a bare header) and 64 bytes. */
    len += nt_frame_seq(buf + len, 1, 37);
    ends[0] = len;
    len += nt_frame_seq(buf + len, 2, 0);
    ends[1] = len;
    len += nt_frame_seq(buf + len, 3, 64);
    ends[2] = len;

    end_init(&e, f->l);
    nt_socketpair(fds);
    end_accept(&e, fds[0]);
    struct dribble d = {&e, fds[1], buf, len, 0, ends, 3, 0, NULL};
    assert_int_equal(net_timer_new(f->l, on_dribble, &d, &d.t), 0);
    net_timer_arm(d.t, 0);

    struct want w = {&e, 3};
    nt_run_until(f->l, has_frames, &w);
    nt_run_for(f->l, 5);
    assert_int_equal(d.off, len);
    assert_int_equal(d.early, 0);
    assert_int_equal(e.ngot, 3);
    end_check_seq(&e, 0, 1, 3);
    assert_int_equal(e.closed, 0);

    net_timer_free(d.t);
    end_release(&e);
    close(fds[1]);
}

#define MANY 200

static size_t build_many(uint8_t **out, uint32_t first, size_t n)
{
    size_t cap = n * (FRAME_HEADER_SIZE + 300), len = 0;
    uint8_t *buf = malloc(cap);

    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        uint32_t seed = first + (uint32_t)i;
        len += nt_frame_seq(buf + len, seed, nt_seq_len(seed));
    }
    *out = buf;
    return len;
}

static void test_stream_unix_many_frames_one_write(void **state)
{
    struct fix *f = *state;
    struct end e;
    uint8_t *buf;
    int fds[2];
    size_t len = build_many(&buf, 0, MANY);

    end_init(&e, f->l);
    nt_socketpair(fds);
    end_accept(&e, fds[0]);
    nt_send_all(fds[1], buf, len);

    struct want w = {&e, MANY};
    nt_run_until(f->l, has_frames, &w);
    nt_run_for(f->l, 5);
    assert_int_equal(e.ngot, MANY);
    end_check_seq(&e, 0, 0, MANY);
    assert_int_equal(net_stream_bytes_in(e.s), len);

    free(buf);
    end_release(&e);
    close(fds[1]);
}

/* --- TCP: a listener and a connecting stream --------------------------- */

struct tcp {
    struct net_loop *l;
    struct net_listener *ln;
    struct end server, client;
    unsigned accepted;
};

static void on_accept(void *ctx, int fd)
{
    struct tcp *t = ctx;

    t->accepted++;
    assert_int_equal(t->accepted, 1);
    end_accept(&t->server, fd);
}

static void tcp_listen(struct tcp *t, struct net_loop *l)
{
    struct addr a;

    memset(t, 0, sizeof(*t));
    t->l = l;
    end_init(&t->server, l);
    end_init(&t->client, l);
    nt_addr("127.0.0.1", 0, &a);
    assert_int_equal(net_listener_new_tcp(l, &a, on_accept, t, &t->ln), 0);
    assert_int_not_equal(net_listener_addr(t->ln)->port, 0);
}

static void tcp_connect(struct tcp *t)
{
    struct net_stream_cbs cbs = end_cbs(&t->client);
    assert_int_equal(net_stream_connect(t->l, net_listener_addr(t->ln), NULL, &cbs, &t->client.s),
                     0);
}

static void tcp_release(struct tcp *t)
{
    end_release(&t->client);
    end_release(&t->server);
    net_listener_free(t->ln);
}

static void test_stream_tcp_frames_both_ways(void **state)
{
    struct fix *f = *state;
    struct tcp t;
    uint8_t *buf, *big;
    size_t len, biglen, sent = 0;

    tcp_listen(&t, f->l);
    tcp_connect(&t);

    /* Queued before the connection is up: many small frames, one of the
     * largest size a stream accepts, and more small ones. */
    len = build_many(&buf, 0, 50);
    assert_int_equal(net_stream_send(t.client.s, buf, len), 0);
    sent += len;
    big = malloc(FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD);
    assert_non_null(big);
    biglen = nt_frame_seq(big, 50, FRAME_MAX_PAYLOAD);
    assert_int_equal(net_stream_send(t.client.s, big, biglen), 0);
    sent += biglen;
    free(buf);
    len = build_many(&buf, 51, 49);
    for (size_t off = 0; off < len;) {
        /* one frame per send this time */
        struct frame_header h;
        assert_int_equal(frame_header_decode(buf + off, len - off, &h), 0);
        assert_int_equal(net_stream_send(t.client.s, buf + off, FRAME_HEADER_SIZE + h.length), 0);
        off += FRAME_HEADER_SIZE + h.length;
    }
    sent += len;
    assert_int_equal(net_stream_bytes_out(t.client.s), sent);

    struct want w = {&t.server, 100};
    nt_run_until(f->l, has_frames, &w);
    assert_int_equal(t.client.connected, 1);
    assert_int_equal(t.server.connected, 0);
    assert_int_equal(t.server.ngot, 100);
    end_check_seq(&t.server, 0, 0, 100);
    assert_int_equal(net_stream_bytes_in(t.server.s), sent);
    assert_int_equal(t.server.got[50].h.length, FRAME_MAX_PAYLOAD);

    /* Addresses: the client's peer is the listener; the server's peer is
     * the client's socket on 127.0.0.1. */
    assert_true(addr_eq(net_stream_peer(t.client.s), net_listener_addr(t.ln)));
    struct addr lo;
    nt_addr("127.0.0.1", net_stream_peer(t.server.s)->port, &lo);
    assert_true(addr_eq(net_stream_peer(t.server.s), &lo));
    assert_int_not_equal(lo.port, 0);

    /* And back. */
    free(buf);
    len = build_many(&buf, 200, 20);
    assert_int_equal(net_stream_send(t.server.s, buf, len), 0);
    struct want wc = {&t.client, 20};
    nt_run_until(f->l, has_frames, &wc);
    end_check_seq(&t.client, 0, 200, 20);

    /* The client hangs up: the server sees EOF, the client no callback. */
    net_stream_close(t.client.s);
    t.client.s = NULL;
    nt_run_until(f->l, is_closed, &t.server);
    assert_int_equal(t.server.reason, NET_CLOSE_EOF);
    assert_int_equal(t.client.closed, 0);

    free(buf);
    free(big);
    tcp_release(&t);
}

static void test_stream_unix_connect(void **state)
{
    struct fix *f = *state;
    char dir[] = "/tmp/coopfs-test-stream-XXXXXX";
    char path[sizeof(dir) + 16];
    struct tcp t; /* the listener is a Unix one here */
    uint8_t buf[FRAME_HEADER_SIZE + 300];

    memset(&t, 0, sizeof(t));
    t.l = f->l;
    end_init(&t.server, f->l);
    end_init(&t.client, f->l);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s.sock", dir);
    assert_int_equal(net_listener_new_unix(f->l, path, on_accept, &t, &t.ln), 0);
    struct net_stream_cbs cbs = end_cbs(&t.client);
    assert_int_equal(net_stream_connect_unix(f->l, path, &cbs, &t.client.s), 0);
    assert_int_equal(net_stream_peer(t.client.s)->family, ADDR_NONE);

    assert_int_equal(net_stream_send(t.client.s, buf, nt_frame_seq(buf, 9, 123)), 0);
    struct want w = {&t.server, 1};
    nt_run_until(f->l, has_frames, &w);
    end_check_seq(&t.server, 0, 9, 1);
    assert_int_equal(net_stream_send(t.server.s, buf, nt_frame_seq(buf, 10, 0)), 0);
    struct want wc = {&t.client, 1};
    nt_run_until(f->l, has_frames, &wc);
    end_check_seq(&t.client, 0, 10, 1);

    tcp_release(&t);
    assert_int_equal(access(path, F_OK), -1); /* the listener removed its file */
    assert_int_equal(rmdir(dir), 0);

    /* No one listens there now. */
    end_init(&t.client, f->l);
    cbs = end_cbs(&t.client);
    assert_int_equal(net_stream_connect_unix(f->l, path, &cbs, &t.client.s), -ENOENT);
}

/* --- bad input closes the stream --------------------------------------- */

struct bad_case {
    const char *name;
    size_t at;     /* byte of the header to change */
    uint8_t value; /* its new value */
};

static void test_stream_bad_header_closes(void **state)
{
    struct fix *f = *state;
    static const struct bad_case cases[] = {
        {"magic byte 0", 0, 'X'},
        {"magic byte 3", 3, 'Q'},
        {"version 0", 4, 0},
        {"version 2", 4, FRAME_VERSION + 1},
        {"version 255", 4, 0xff},
        {"length 2^20 + 1", 16, 0xff}, /* patched below to FRAME_MAX_PAYLOAD + 1 */
        {"length 2^32 - 1", 16, 0xfe}, /* patched below to UINT32_MAX */
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        uint8_t buf[2 * FRAME_HEADER_SIZE + 300];
        size_t n = nt_frame_seq(buf, 7, 100); /* a good frame first */
        uint8_t *bad = buf + n;
        struct end e;
        int fds[2];

        nt_frame_seq(bad, 8, 0);
        if (cases[i].at == 16) {
            struct frame_header h = {.version = FRAME_VERSION, .type = 1};
            h.length = cases[i].value == 0xff ? FRAME_MAX_PAYLOAD + 1 : UINT32_MAX;
            frame_header_encode(&h, bad);
        } else {
            bad[cases[i].at] = cases[i].value;
        }
        /* Some payload after the bad header, as an attacker would send. */
        memset(bad + FRAME_HEADER_SIZE, 0xab, 64);

        end_init(&e, f->l);
        nt_socketpair(fds);
        end_accept(&e, fds[0]);
        nt_send_all(fds[1], buf, n + FRAME_HEADER_SIZE + 64);
        nt_run_until(f->l, is_closed, &e);
        print_message("%s: %s\n", cases[i].name, e.why);
        assert_int_equal(e.closed, 1);
        assert_int_equal(e.reason, NET_CLOSE_BAD_FRAME);
        assert_int_equal(e.err, 0);
        assert_true(e.why[0] != '\0');
        assert_int_equal(e.ngot, 1); /* the good frame before it was delivered */
        end_check_seq(&e, 0, 7, 1);
        /* The stream's socket is closed. */
        nt_run_until(f->l, nt_fd_eof_cond, &fds[1]);
        close(fds[1]);
        end_release(&e);
    }
}

static void test_stream_eof_mid_frame(void **state)
{
    struct fix *f = *state;
    /* How much of a 120-byte frame arrives before the peer closes. */
    static const size_t cuts[] = {1, 10, FRAME_HEADER_SIZE - 1, FRAME_HEADER_SIZE, 60, 119};
    uint8_t buf[FRAME_HEADER_SIZE + 100];

    assert_int_equal(nt_frame_seq(buf, 5, 100), 120);
    for (size_t i = 0; i < N_ELEMS(cuts); i++) {
        struct end e;
        int fds[2];

        end_init(&e, f->l);
        nt_socketpair(fds);
        end_accept(&e, fds[0]);
        nt_send_all(fds[1], buf, cuts[i]);
        assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
        nt_run_until(f->l, is_closed, &e);
        print_message("%zu bytes: %s\n", cuts[i], e.why);
        assert_int_equal(e.closed, 1);
        assert_int_equal(e.reason, NET_CLOSE_MID_FRAME);
        assert_int_equal(e.ngot, 0);
        close(fds[1]);
        end_release(&e);
    }

    /* A whole frame, then EOF: a clean close. */
    struct end e;
    int fds[2];
    end_init(&e, f->l);
    nt_socketpair(fds);
    end_accept(&e, fds[0]);
    nt_send_all(fds[1], buf, sizeof(buf));
    assert_int_equal(shutdown(fds[1], SHUT_WR), 0);
    nt_run_until(f->l, is_closed, &e);
    assert_int_equal(e.ngot, 1);
    assert_int_equal(e.reason, NET_CLOSE_EOF);
    close(fds[1]);
    end_release(&e);
}

/* --- backpressure ------------------------------------------------------ */

#define OUT_MAX   8192u
#define OUT_FRAME 1024u /* header and payload */

static bool fd_writable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

struct fill {
    struct end *e;
    int fd; /* the stream's own socket, only polled */
};

static bool drained_or_full(void *arg)
{
    const struct fill *fl = arg;
    return net_stream_queued(fl->e->s) == 0 || !fd_writable(fl->fd);
}

static int send_seq(struct net_stream *s, uint32_t seed)
{
    uint8_t buf[OUT_FRAME];
    return net_stream_send(s, buf, nt_frame_seq(buf, seed, OUT_FRAME - FRAME_HEADER_SIZE));
}

static void test_stream_out_max_refuses_while_peer_reads_nothing(void **state)
{
    struct fix *f = *state;
    struct end e, rd;
    uint32_t sent = 0;
    int fds[2], sndbuf = 4096, rc;

    end_init(&e, f->l);
    end_init(&rd, f->l);
    nt_socketpair(fds);
    /* A small kernel buffer, so that it fills after a few frames. */
    assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    end_accept(&e, fds[0]);
    net_stream_set_out_max(e.s, OUT_MAX);

    /* Nothing written yet: exactly OUT_MAX / OUT_FRAME frames fit. */
    while ((rc = send_seq(e.s, sent)) == 0)
        sent++;
    assert_int_equal(rc, -ENOBUFS);
    assert_int_equal(sent, OUT_MAX / OUT_FRAME);
    assert_int_equal(net_stream_queued(e.s), OUT_MAX);
    assert_int_equal(net_stream_bytes_out(e.s), OUT_MAX); /* the refused frame is not counted */

    /* Let the stream write until the kernel holds no more, topping the
     * queue up each time it drains. */
    struct fill fl = {&e, fds[0]};
    for (;;) {
        nt_run_until(f->l, drained_or_full, &fl);
        if (!fd_writable(fds[0]))
            break;
        while ((rc = send_seq(e.s, sent)) == 0)
            sent++;
        assert_int_equal(rc, -ENOBUFS);
        assert_true(sent < 10000); /* the kernel buffer is small */
    }
    while ((rc = send_seq(e.s, sent)) == 0)
        sent++;
    assert_int_equal(rc, -ENOBUFS);
    assert_true(net_stream_queued(e.s) <= OUT_MAX);
    assert_true(net_stream_queued(e.s) > OUT_MAX - OUT_FRAME);

    /* Still refused while the peer reads nothing, however long the loop runs. */
    nt_run_for(f->l, 20);
    assert_int_equal(send_seq(e.s, sent), -ENOBUFS);
    assert_true(net_stream_queued(e.s) <= OUT_MAX);
    assert_int_equal(e.closed, 0);

    /* The peer starts reading: everything accepted arrives, in order, and
     * the stream takes frames again. */
    end_accept(&rd, fds[1]);
    struct want w = {&rd, sent};
    nt_run_until(f->l, has_frames, &w);
    end_check_seq(&rd, 0, 0, sent);
    assert_int_equal(send_seq(e.s, sent), 0);
    w.n = sent + 1;
    nt_run_until(f->l, has_frames, &w);
    end_check_seq(&rd, sent, sent, 1);
    print_message("%u frames of %u bytes accepted before the first refusal held\n", sent,
                  OUT_FRAME);

    end_release(&e);
    end_release(&rd);
}

/* --- closing from inside callbacks ------------------------------------- */

static void test_stream_close_inside_frame_callback(void **state)
{
    struct fix *f = *state;
    /* Close at the second of five frames in one write (more are buffered
     * behind it), and at the only frame. */
    static const struct {
        size_t nframes, close_at;
    } cases[] = {{5, 2}, {1, 1}, {5, 5}};

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct end e;
        uint8_t *buf;
        int fds[2];
        size_t len = build_many(&buf, 0, cases[i].nframes);

        end_init(&e, f->l);
        e.close_at = cases[i].close_at;
        nt_socketpair(fds);
        end_accept(&e, fds[0]);
        nt_send_all(fds[1], buf, len);
        nt_run_until(f->l, nt_fd_eof_cond, &fds[1]);
        nt_run_for(f->l, 5);
        assert_int_equal(e.ngot, cases[i].close_at);
        end_check_seq(&e, 0, 0, cases[i].close_at);
        assert_int_equal(e.closed, 0); /* no closed callback after net_stream_close */
        assert_null(e.s);
        close(fds[1]);
        free(buf);
        end_release(&e);
    }
}

struct rawrx {
    int fd;
    uint8_t buf[4096];
    size_t n;
    bool eof;
};

static bool raw_read_to_eof(void *arg)
{
    struct rawrx *r = arg;

    for (;;) {
        ssize_t n = recv(r->fd, r->buf + r->n, sizeof(r->buf) - r->n, MSG_DONTWAIT);
        if (n > 0) {
            r->n += (size_t)n;
            continue;
        }
        if (n == 0 || errno == ECONNRESET) {
            r->eof = true;
            return true;
        }
        return false;
    }
}

static void test_stream_reply_then_close_after_flush(void **state)
{
    struct fix *f = *state;
    uint8_t buf[FRAME_HEADER_SIZE + 300];
    struct rawrx r = {0};
    struct frame_header h;
    struct end e;
    int fds[2];

    end_init(&e, f->l);
    e.reply_flush_close = true;
    nt_socketpair(fds);
    end_accept(&e, fds[0]);
    /* Three requests in one write; the first is answered and closes. */
    size_t n = nt_frame_seq(buf, 1, 10);
    for (int i = 0; i < 3; i++)
        nt_send_all(fds[1], buf, n);
    r.fd = fds[1];
    nt_run_until(f->l, raw_read_to_eof, &r);
    assert_int_equal(e.ngot, 1);
    assert_int_equal(e.reply_rc, 0);
    assert_int_equal(e.closed, 0);
    /* The frames behind the one that closed are not handed to an owner
     * that has let go of the stream (it gets no closed callback either,
     * so it may have freed its context already). */
    assert_int_equal(e.after_close, 0);
    /* The reply was written whole before the close. */
    assert_int_equal(r.n, FRAME_HEADER_SIZE + 300);
    assert_int_equal(frame_header_decode(r.buf, r.n, &h), 0);
    nt_frame_check(77, &h, r.buf, r.n);
    close(fds[1]);
    end_release(&e);
}

/* Has the other end gone, seen without reading what it sent? */
static bool peer_hung_up(void *arg)
{
    struct pollfd p = {.fd = *(int *)arg, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

static void test_stream_close_after_flush_gives_up_on_a_peer_that_does_not_read(void **state)
{
    struct fix *f = *state;
    uint8_t buf[FRAME_HEADER_SIZE + 10];
    int fds[2], sndbuf = 4096;
    struct end e;

    end_init(&e, f->l);
    e.reply_flush_close = true;
    nt_socketpair(fds);
    assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    end_accept(&e, fds[0]);
    /* Far more output than the kernel holds; the peer never reads it. */
    for (uint32_t i = 0; i < 256; i++)
        assert_int_equal(send_seq(e.s, i), 0);
    nt_send_all(fds[1], buf, nt_frame_seq(buf, 1, 10));

    /* The flush can never finish: the stream must still close, by its
     * flush deadline (2 s), rather than hold the socket for ever. */
    nt_run_until(f->l, peer_hung_up, &fds[1]);
    assert_int_equal(e.ngot, 1);
    assert_int_equal(e.closed, 0);
    close(fds[1]);
    end_release(&e);
}

static void test_stream_close_inside_connected_callback(void **state)
{
    struct fix *f = *state;
    struct tcp t;

    tcp_listen(&t, f->l);
    t.client.close_on_connect = true;
    tcp_connect(&t);
    nt_run_until(f->l, is_closed, &t.server);
    assert_int_equal(t.client.connected, 1);
    assert_int_equal(t.client.closed, 0);
    assert_null(t.client.s);
    assert_int_equal(t.server.reason, NET_CLOSE_EOF);
    tcp_release(&t);
}

/* --- connect failures and the frame deadline --------------------------- */

static void test_stream_connect_refused(void **state)
{
    struct fix *f = *state;
    struct end e;
    struct addr a;
    uint8_t buf[FRAME_HEADER_SIZE];
    int hold = nt_tcp_closed_port("127.0.0.1", &a);

    end_init(&e, f->l);
    struct net_stream_cbs cbs = end_cbs(&e);
    assert_int_equal(net_stream_connect(f->l, &a, NULL, &cbs, &e.s), 0);
    /* Queued while connecting; dropped with the stream. */
    assert_int_equal(net_stream_send(e.s, buf, nt_frame_seq(buf, 1, 0)), 0);
    nt_run_until(f->l, is_closed, &e);
    print_message("%s\n", e.why);
    assert_int_equal(e.closed, 1);
    assert_int_equal(e.connected, 0);
    assert_int_equal(e.reason, NET_CLOSE_CONNECT);
    assert_int_equal(e.err, ECONNREFUSED);
    close(hold);
    end_release(&e);
}

static void test_stream_partial_frame_times_out(void **state)
{
    struct fix *f = *state;
    uint8_t buf[FRAME_HEADER_SIZE + 50];
    struct end e;
    int fds[2];

    end_init(&e, f->l);
    nt_socketpair(fds);
    end_accept(&e, fds[0]);
    /* A whole frame, then the first 30 bytes of the next, then silence. */
    nt_send_all(fds[1], buf, nt_frame_seq(buf, 1, 50));
    nt_send_all(fds[1], buf, 30);
    nt_run_until(f->l, is_closed, &e);
    print_message("%s\n", e.why);
    assert_int_equal(e.reason, NET_CLOSE_TIMEOUT);
    assert_int_equal(e.ngot, 1);
    nt_run_until(f->l, nt_fd_eof_cond, &fds[1]);
    close(fds[1]);
    end_release(&e);
}

static void test_stream_close_reason_text(void **state)
{
    (void)state;
    for (int r = NET_CLOSE_EOF; r <= NET_CLOSE_CONNECT; r++) {
        assert_non_null(net_close_reason(r));
        assert_true(net_close_reason(r)[0] != '\0');
    }
    assert_non_null(net_close_reason(-ECONNRESET));
    net_stream_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_unix_frames_in_one_piece, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_unix_byte_by_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_unix_many_frames_one_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tcp_frames_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_unix_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_bad_header_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_eof_mid_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_out_max_refuses_while_peer_reads_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stream_close_inside_frame_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_reply_then_close_after_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_stream_close_after_flush_gives_up_on_a_peer_that_does_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_close_inside_connected_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stream_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_partial_frame_times_out, setup, teardown),
        cmocka_unit_test(test_stream_close_reason_text),
    };

    nt_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
