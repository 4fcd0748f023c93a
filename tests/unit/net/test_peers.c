/* test_peers.c — the connection cache (net/peers.c): two or three
 * net_peers on one loop, listening on 127.0.0.1, 127.0.0.2 and 127.0.0.3.
 * Frames carry the sender's ring address (HELLO), replies travel back on
 * the connection that brought the request, frames to ourselves come from
 * the loop, a refused dial is reported as unreachable, a malformed frame
 * closes its connection, and a HELLO must name the IP it comes from.
 *
 * Set NT_LOG=1 in the environment to see net/'s log on stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "harness.h"
#include "net/peers.h"
#include "net/stream.h"

#define T_PING 2001 /* answered with T_PONG by a node that echoes */
#define T_PONG 2002
#define T_BAD  2003 /* "malformed": a node's frame callback returns -EBADMSG */

#define MAX_RX      64
#define MAX_PAYLOAD 64

struct rx {
    struct addr from;
    struct frame_header h;
    uint8_t payload[MAX_PAYLOAD];
};

struct node {
    struct net_peers *p;
    struct addr self;
    struct rx rx[MAX_RX];
    size_t nrx;
    bool in_send;
    unsigned inside_send; /* frames delivered inside net_peers_send */
    int echo_rc;          /* the last echo's net_peers_send */
    struct addr unreach[8];
    size_t nunreach;
    unsigned resend; /* sends to make again from the unreachable callback */
    int resend_rc;
};

struct fix {
    struct net_loop *l;
    struct logger lg;
    struct node n[3];
};

static int node_frame(void *ctx, const struct addr *from, const struct frame_header *h,
                      const uint8_t *frame, size_t len)
{
    struct node *n = ctx;
    struct rx *r;

    if (n->in_send)
        n->inside_send++;
    assert_int_equal(len, FRAME_HEADER_SIZE + (size_t)h->length);
    assert_true(n->nrx < MAX_RX);
    r = &n->rx[n->nrx++];
    r->from = *from;
    r->h = *h;
    memcpy(r->payload, frame + FRAME_HEADER_SIZE,
           h->length < MAX_PAYLOAD ? h->length : MAX_PAYLOAD);
    if (h->type == T_BAD)
        return -EBADMSG;
    if (h->type == T_PING) {
        uint8_t buf[FRAME_HEADER_SIZE + MAX_PAYLOAD];
        size_t n2 = nt_frame(buf, T_PONG, FRAME_F_REPLY, h->request_id, frame + FRAME_HEADER_SIZE,
                             h->length);
        n->in_send = true;
        n->echo_rc = net_peers_send(n->p, from, buf, n2);
        n->in_send = false;
    }
    return 0;
}

static void node_unreachable(void *ctx, const struct addr *to)
{
    struct node *n = ctx;

    assert_true(n->nunreach < N_ELEMS(n->unreach));
    n->unreach[n->nunreach++] = *to;
    if (n->resend) {
        uint8_t buf[FRAME_HEADER_SIZE + 8];
        n->resend--;
        n->resend_rc = net_peers_send(n->p, to, buf, nt_frame(buf, T_PING, 0, 99, "retry", 5));
    }
}

static void node_start(struct fix *f, unsigned i, const char *ip)
{
    struct node *n = &f->n[i];
    struct net_peers_cbs cbs = {.ctx = n, .frame = node_frame, .unreachable = node_unreachable};
    struct addr listen;

    nt_addr(ip, 0, &listen);
    assert_int_equal(net_peers_new(f->l, &listen, &cbs, &f->lg, &n->p), 0);
    n->self = *net_peers_self(n->p);
    assert_int_not_equal(n->self.port, 0);
    listen.port = n->self.port;
    assert_true(addr_eq(&n->self, &listen));
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    if (getenv("NT_LOG"))
        log_init(&f->lg, stderr, LOG_DEBUG);
    else
        log_init_silent(&f->lg);
    assert_int_equal(net_loop_new(&f->l), 0);
    node_start(f, 0, "127.0.0.1");
    node_start(f, 1, "127.0.0.2");
    node_start(f, 2, "127.0.0.3");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;

    for (unsigned i = 0; i < 3; i++)
        net_peers_free(f->n[i].p);
    net_loop_free(f->l);
    free(f);
    return 0;
}

/* n sends one frame of type to `to`, with payload "<tag>" and id. */
static int send_to(struct node *n, const struct addr *to, uint16_t type, uint64_t id,
                   const char *tag)
{
    uint8_t buf[FRAME_HEADER_SIZE + MAX_PAYLOAD];
    size_t len = nt_frame(buf, type, 0, id, tag, (uint32_t)strlen(tag));
    int rc;

    n->in_send = true;
    rc = net_peers_send(n->p, to, buf, len);
    n->in_send = false;
    return rc;
}

struct want {
    const struct node *n;
    size_t nrx;
};

static bool has_rx(void *arg)
{
    const struct want *w = arg;
    return w->n->nrx >= w->nrx;
}

static void check_rx(const struct rx *r, const struct addr *from, uint16_t type, uint64_t id,
                     const char *tag)
{
    char a[ADDR_STR_MAX], b[ADDR_STR_MAX];

    addr_format(&r->from, a, sizeof(a));
    addr_format(from, b, sizeof(b));
    if (!addr_eq(&r->from, from))
        fail_msg("frame from %s, expected from %s", a, b);
    assert_int_equal(r->h.type, type);
    assert_true(r->h.request_id == id);
    assert_int_equal(r->h.length, strlen(tag));
    assert_memory_equal(r->payload, tag, strlen(tag));
}

static struct net_peers_stats stats(const struct node *n)
{
    struct net_peers_stats st;
    net_peers_get_stats(n->p, &st);
    return st;
}

static void test_peers_from_is_ring_address_and_reply_reuses_connection(void **state)
{
    struct fix *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];

    assert_int_equal(send_to(a, &b->self, T_PING, 1, "hello b"), 0);
    struct want w = {a, 1};
    nt_run_until(f->l, has_rx, &w);
    /* b heard a by its ring address (127.0.0.1 and a's listening port),
     * and a heard the answer from b's ring address. */
    assert_int_equal(b->nrx, 1);
    check_rx(&b->rx[0], &a->self, T_PING, 1, "hello b");
    assert_int_equal(b->echo_rc, 0);
    check_rx(&a->rx[0], &b->self, T_PONG, 1, "hello b");
    assert_true(a->rx[0].h.flags & FRAME_F_REPLY);

    /* More traffic both ways, in order, on the one connection. */
    for (uint64_t i = 2; i <= 10; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "ping %u", (unsigned)i);
        assert_int_equal(send_to(a, &b->self, T_PING, i, tag), 0);
    }
    w.nrx = 10;
    nt_run_until(f->l, has_rx, &w);
    for (uint64_t i = 2; i <= 10; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "ping %u", (unsigned)i);
        check_rx(&b->rx[i - 1], &a->self, T_PING, i, tag);
        check_rx(&a->rx[i - 1], &b->self, T_PONG, i, tag);
    }

    struct net_peers_stats sa = stats(a), sb = stats(b);
    assert_int_equal(sa.dialled, 1);
    assert_int_equal(sa.accepted, 0);
    assert_int_equal(sb.dialled, 0);
    assert_int_equal(sb.accepted, 1);
    assert_int_equal(sa.connections, 1);
    assert_int_equal(sb.connections, 1);
    assert_int_equal(sa.frames_out, 10);
    assert_int_equal(sa.frames_in, 10);
    assert_int_equal(sb.frames_out, 10);
    assert_int_equal(sa.closed_bad + sb.closed_bad, 0);
    assert_int_equal(sa.bytes_out, sb.bytes_in);
    assert_int_equal(sb.bytes_out, sa.bytes_in);
    assert_int_equal(a->inside_send + b->inside_send, 0);
}

static void test_peers_three_nodes(void **state)
{
    struct fix *f = *state;
    static const unsigned first[][2] = {{0, 1}, {0, 2}, {1, 2}}; /* dials */
    static const unsigned then[][2] = {{2, 0}, {1, 0}, {2, 1}};  /* reuse */
    size_t want_rx[3] = {0};

    for (int round = 0; round < 2; round++) {
        const unsigned(*pairs)[2] = round == 0 ? first : then;
        for (unsigned k = 0; k < 3; k++) {
            struct node *src = &f->n[pairs[k][0]], *dst = &f->n[pairs[k][1]];
            char tag[16];
            snprintf(tag, sizeof(tag), "%u to %u", pairs[k][0], pairs[k][1]);
            assert_int_equal(send_to(src, &dst->self, T_PING, 100 + k, tag), 0);
            want_rx[pairs[k][0]]++; /* the pong */
            want_rx[pairs[k][1]]++; /* the ping */
        }
        for (unsigned i = 0; i < 3; i++) {
            struct want w = {&f->n[i], want_rx[i]};
            nt_run_until(f->l, has_rx, &w);
        }
    }
    /* Every frame came from the ring address of its sender. */
    for (unsigned i = 0; i < 3; i++) {
        const struct node *n = &f->n[i];
        assert_int_equal(n->nrx, 4);
        for (size_t k = 0; k < n->nrx; k++) {
            const struct rx *r = &n->rx[k];
            bool known = false;
            for (unsigned j = 0; j < 3; j++)
                if (j != i && addr_eq(&r->from, &f->n[j].self))
                    known = true;
            assert_true(known);
            /* A ping's payload names its sender and receiver. */
            if (r->h.type == T_PING) {
                unsigned s = r->payload[0] - '0', d = r->payload[5] - '0';
                assert_int_equal(d, i);
                assert_true(addr_eq(&r->from, &f->n[s].self));
            }
        }
    }
    /* One connection per pair, dialled by whoever spoke first. */
    struct net_peers_stats s0 = stats(&f->n[0]), s1 = stats(&f->n[1]), s2 = stats(&f->n[2]);
    assert_int_equal(s0.dialled, 2);
    assert_int_equal(s0.accepted, 0);
    assert_int_equal(s1.dialled, 1);
    assert_int_equal(s1.accepted, 1);
    assert_int_equal(s2.dialled, 0);
    assert_int_equal(s2.accepted, 2);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(stats(&f->n[i]).connections, 2);
}

static void test_peers_send_to_self_from_the_loop(void **state)
{
    struct fix *f = *state;
    struct node *a = &f->n[0];

    assert_int_equal(send_to(a, &a->self, T_PONG, 1, "one"), 0);
    assert_int_equal(send_to(a, &a->self, T_PONG, 2, "two"), 0);
    assert_int_equal(send_to(a, &a->self, T_PING, 3, "echo me"), 0);
    assert_int_equal(a->nrx, 0); /* nothing inside the sends */

    /* The ping's echo is sent to ourselves from inside the frame
     * callback, and must arrive after it returns, not inside. */
    struct want w = {a, 4};
    nt_run_until(f->l, has_rx, &w);
    assert_int_equal(a->inside_send, 0);
    check_rx(&a->rx[0], &a->self, T_PONG, 1, "one");
    check_rx(&a->rx[1], &a->self, T_PONG, 2, "two");
    check_rx(&a->rx[2], &a->self, T_PING, 3, "echo me");
    check_rx(&a->rx[3], &a->self, T_PONG, 3, "echo me");
    assert_int_equal(a->echo_rc, 0);

    struct net_peers_stats st = stats(a);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.dialled, 0);
    assert_int_equal(st.accepted, 0);
}

static bool has_unreach(void *arg)
{
    const struct want *w = arg;
    return w->n->nunreach >= w->nrx;
}

static void test_peers_refused_dial_is_unreachable(void **state)
{
    struct fix *f = *state;
    struct node *a = &f->n[0];
    struct addr closed;
    int hold = nt_tcp_closed_port("127.0.0.1", &closed);

    assert_int_equal(send_to(a, &closed, T_PING, 1, "anyone?"), 0);
    struct want w = {a, 1};
    nt_run_until(f->l, has_unreach, &w);
    assert_true(addr_eq(&a->unreach[0], &closed));
    struct net_peers_stats st = stats(a);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.connections, 0);

    /* Sending again dials again, and is refused again. */
    assert_int_equal(send_to(a, &closed, T_PING, 2, "still?"), 0);
    w.nrx = 2;
    nt_run_until(f->l, has_unreach, &w);
    assert_true(addr_eq(&a->unreach[1], &closed));
    st = stats(a);
    assert_int_equal(st.dialled, 2);
    assert_int_equal(st.refused, 2);
    assert_int_equal(a->nrx, 0);

    /* A send from inside the callback dials afresh (the refused stream is
     * out of the cache by then), and is refused in its turn. */
    a->resend = 1;
    assert_int_equal(send_to(a, &closed, T_PING, 3, "once more"), 0);
    w.nrx = 4;
    nt_run_until(f->l, has_unreach, &w);
    assert_int_equal(a->resend_rc, 0);
    assert_true(addr_eq(&a->unreach[3], &closed));
    st = stats(a);
    assert_int_equal(st.dialled, 4);
    assert_int_equal(st.refused, 4);
    assert_int_equal(st.connections, 0);
    close(hold);
}

struct closed_both {
    const struct node *a, *b;
};

static bool no_connections(void *arg)
{
    const struct closed_both *c = arg;
    return stats(c->a).connections == 0 && stats(c->b).connections == 0;
}

static void test_peers_malformed_frame_closes_connection(void **state)
{
    struct fix *f = *state;
    struct node *a = &f->n[0], *b = &f->n[1];

    assert_int_equal(send_to(a, &b->self, T_PING, 1, "fine"), 0);
    struct want w = {a, 1};
    nt_run_until(f->l, has_rx, &w);

    /* b's frame callback refuses T_BAD: b closes, a sees the close. */
    assert_int_equal(send_to(a, &b->self, T_BAD, 2, "garbage"), 0);
    assert_int_equal(send_to(a, &b->self, T_PING, 3, "after garbage"), 0);
    struct closed_both cb = {a, b};
    nt_run_until(f->l, no_connections, &cb);
    assert_int_equal(b->nrx, 2); /* the ping and the bad frame, nothing after */
    assert_int_equal(b->rx[1].h.type, T_BAD);
    assert_int_equal(stats(b).closed_bad, 1);
    assert_int_equal(stats(a).closed_bad, 0);
    assert_int_equal(a->nunreach, 0); /* a closed connection is not absence */

    /* The next send dials a new connection, which works. */
    assert_int_equal(send_to(a, &b->self, T_PING, 4, "again"), 0);
    w.nrx = 2;
    nt_run_until(f->l, has_rx, &w);
    check_rx(&a->rx[1], &b->self, T_PONG, 4, "again");
    assert_int_equal(stats(a).dialled, 2);
    assert_int_equal(stats(b).accepted, 2);
}

/* --- HELLO from a raw socket ------------------------------------------- */

/* A HELLO claiming `claim`, then a ping, in one buffer. */
static size_t hello_and_ping(const struct addr *claim, uint8_t *buf, size_t cap)
{
    struct frame_header h = {.version = FRAME_VERSION, .type = NET_MSG_HELLO};
    size_t n = net_hello_encode(claim, buf + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE);

    assert_int_not_equal(n, 0);
    h.length = (uint32_t)n;
    frame_header_encode(&h, buf);
    n += FRAME_HEADER_SIZE;
    return n + nt_frame(buf + n, T_PING, 0, 42, "raw", 3);
}

struct bad_count {
    const struct node *n;
    uint64_t closed_bad;
};

static bool has_closed_bad(void *arg)
{
    const struct bad_count *c = arg;
    return stats(c->n).closed_bad >= c->closed_bad;
}

struct rawrx {
    int fd;
    uint8_t buf[1024];
    size_t n;
};

static bool raw_has_frame(void *arg)
{
    struct rawrx *r = arg;
    struct frame_header h;
    ssize_t k = recv(r->fd, r->buf + r->n, sizeof(r->buf) - r->n, MSG_DONTWAIT);

    if (k > 0)
        r->n += (size_t)k;
    return frame_header_decode(r->buf, r->n, &h) == 0 && r->n >= FRAME_HEADER_SIZE + h.length;
}

static void test_peers_hello_from_another_ip_rejected(void **state)
{
    struct fix *f = *state;
    struct node *b = &f->n[1];
    uint8_t buf[128];
    struct addr claim;
    int fd = nt_tcp_dial("127.0.0.1", &b->self);

    nt_addr("127.0.0.9", 1234, &claim);
    nt_send_all(fd, buf, hello_and_ping(&claim, buf, sizeof(buf)));
    struct bad_count c = {b, 1};
    nt_run_until(f->l, has_closed_bad, &c);
    nt_run_until(f->l, nt_fd_eof_cond, &fd);
    assert_int_equal(b->nrx, 0); /* the ping behind it never surfaced */
    assert_int_equal(stats(b).connections, 0);
    close(fd);

    /* A malformed HELLO (port 0) is rejected too. */
    fd = nt_tcp_dial("127.0.0.1", &b->self);
    nt_addr("127.0.0.1", 0, &claim);
    {
        struct frame_header h = {.version = FRAME_VERSION, .type = NET_MSG_HELLO, .length = 7};
        uint8_t hello[FRAME_HEADER_SIZE + 7] = {0};
        frame_header_encode(&h, hello);
        hello[FRAME_HEADER_SIZE] = ADDR_V4; /* family 4, port 0, 127.0.0.1 */
        hello[FRAME_HEADER_SIZE + 3] = 127;
        hello[FRAME_HEADER_SIZE + 6] = 1;
        nt_send_all(fd, hello, sizeof(hello));
    }
    c.closed_bad = 2;
    nt_run_until(f->l, has_closed_bad, &c);
    nt_run_until(f->l, nt_fd_eof_cond, &fd);
    close(fd);
    assert_int_equal(b->nrx, 0);
}

static void test_peers_hello_from_its_own_ip_names_the_connection(void **state)
{
    struct fix *f = *state;
    struct node *b = &f->n[1];
    struct rawrx r = {0};
    struct frame_header h;
    uint8_t buf[128];
    struct addr claim;
    int fd = nt_tcp_dial("127.0.0.1", &b->self);

    /* Same IP as the socket, another port (the node's listening one). */
    nt_addr("127.0.0.1", 1234, &claim);
    nt_send_all(fd, buf, hello_and_ping(&claim, buf, sizeof(buf)));
    struct want w = {b, 1};
    nt_run_until(f->l, has_rx, &w);
    check_rx(&b->rx[0], &claim, T_PING, 42, "raw");

    /* b's answer to 127.0.0.1:1234 comes back on this socket: no dial. */
    r.fd = fd;
    nt_run_until(f->l, raw_has_frame, &r);
    assert_int_equal(frame_header_decode(r.buf, r.n, &h), 0);
    assert_int_equal(h.type, T_PONG);
    assert_true(h.request_id == 42);
    assert_int_equal(stats(b).dialled, 0);
    assert_int_equal(stats(b).closed_bad, 0);
    close(fd);
}

static void test_peers_frame_before_hello_is_from_socket_address(void **state)
{
    struct fix *f = *state;
    struct node *b = &f->n[1];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    uint8_t buf[64];
    struct addr sock;
    int fd = nt_tcp_dial("127.0.0.1", &b->self);

    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    nt_addr("127.0.0.1", ntohs(((struct sockaddr_in *)&ss)->sin_port), &sock);
    nt_send_all(fd, buf, nt_frame(buf, T_PONG, 0, 5, "anon", 4));
    struct want w = {b, 1};
    nt_run_until(f->l, has_rx, &w);
    check_rx(&b->rx[0], &sock, T_PONG, 5, "anon");
    close(fd);
}

/* --- a dialled connection to a raw socket ------------------------------ */

struct acceptor {
    int lfd, fd;
};

static bool accepted(void *arg)
{
    struct acceptor *ac = arg;

    if (ac->fd < 0)
        ac->fd = accept(ac->lfd, NULL, NULL);
    return ac->fd >= 0;
}

static void test_peers_dialled_hello_must_name_the_dialled_node(void **state)
{
    struct fix *f = *state;
    struct node *a = &f->n[0];
    struct addr raw, other;
    struct rawrx r = {0};
    struct frame_header h;
    struct addr said;
    uint8_t buf[128];

    /* a dials a raw socket, which sees a's HELLO first. */
    struct acceptor ac = {nt_tcp_listen("127.0.0.1", &raw), -1};
    assert_int_equal(send_to(a, &raw, T_PONG, 1, "first"), 0);
    nt_run_until(f->l, accepted, &ac);
    r.fd = ac.fd;
    nt_run_until(f->l, raw_has_frame, &r);
    assert_int_equal(frame_header_decode(r.buf, r.n, &h), 0);
    assert_int_equal(h.type, NET_MSG_HELLO);
    assert_int_equal(net_hello_decode(r.buf + FRAME_HEADER_SIZE, h.length, &said), 0);
    assert_true(addr_eq(&said, &a->self));

    /* A HELLO back that names the address a dialled is fine. */
    nt_send_all(ac.fd, buf, hello_and_ping(&raw, buf, sizeof(buf)));
    struct want w = {a, 1};
    nt_run_until(f->l, has_rx, &w);
    check_rx(&a->rx[0], &raw, T_PING, 42, "raw");
    assert_int_equal(stats(a).closed_bad, 0);

    /* One that names another node closes the connection. */
    nt_addr("127.0.0.1", (uint16_t)(raw.port == 1 ? 2 : raw.port - 1), &other);
    nt_send_all(ac.fd, buf, hello_and_ping(&other, buf, sizeof(buf)));
    struct bad_count c = {a, 1};
    nt_run_until(f->l, has_closed_bad, &c);
    nt_run_until(f->l, nt_fd_eof_cond, &ac.fd);
    assert_int_equal(a->nrx, 1);
    assert_int_equal(stats(a).connections, 0);
    close(ac.fd);
    close(ac.lfd);
}

static void test_peers_full_queue_drops(void **state)
{
    struct fix *f = *state;
    struct node *a = &f->n[0];
    const size_t len = FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD;
    uint8_t *big = calloc(1, len);
    struct addr raw, none;
    unsigned sent = 0;
    int rc;

    /* A peer that never accepts: everything stays queued at a. */
    int lfd = nt_tcp_listen("127.0.0.1", &raw);
    assert_non_null(big);
    nt_frame(big, T_PONG, 0, 1, big + FRAME_HEADER_SIZE, FRAME_MAX_PAYLOAD);
    while ((rc = net_peers_send(a->p, &raw, big, len)) == 0)
        sent++;
    assert_int_equal(rc, -ENOBUFS);
    assert_true(sent >= 1 && (size_t)sent * len <= NET_OUT_MAX_DEFAULT);
    assert_int_equal(stats(a).dropped, 1);
    assert_int_equal(stats(a).frames_out, sent);
    assert_int_equal(stats(a).connections, 1);

    /* An address no socket can reach: no connection, the frame dropped. */
    memset(&none, 0, sizeof(none));
    assert_int_equal(net_peers_send(a->p, &none, big, FRAME_HEADER_SIZE), -EMFILE);
    assert_int_equal(stats(a).dial_failed, 1);
    free(big);
    close(lfd);
}

static void test_peers_hello_codec(void **state)
{
    (void)state;
    /* The rest of the codec is in test_control.c next to the other
     * codecs; here, only that the HELLO peers sends is what peers reads. */
    uint8_t buf[32];
    struct addr a, b;
    nt_addr("127.0.0.2", 4000, &a);
    size_t n = net_hello_encode(&a, buf, sizeof(buf));
    assert_int_equal(n, 7);
    assert_int_equal(net_hello_decode(buf, n, &b), 0);
    assert_true(addr_eq(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peers_from_is_ring_address_and_reply_reuses_connection,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_three_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_send_to_self_from_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_refused_dial_is_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_malformed_frame_closes_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peers_hello_from_another_ip_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_hello_from_its_own_ip_names_the_connection,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_frame_before_hello_is_from_socket_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peers_dialled_hello_must_name_the_dialled_node, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peers_full_queue_drops, setup, teardown),
        cmocka_unit_test(test_peers_hello_codec),
    };

    nt_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
