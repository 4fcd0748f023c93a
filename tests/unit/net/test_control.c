/* test_control.c — the control protocol (net/ctl_codec.c, net/control.c):
 * its lookup and error codecs byte for byte (round trips, every truncation,
 * every bad field), the HELLO codec of net/hello.c, and the blocking client
 * against a fake node served by a thread over a real Unix socket. The
 * block requests 1210..1214 and their reply: test_control_block.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/wire.h"
#include "harness.h"
#include "net/control.h"
#include "net/peers.h"

#define REPLY_V4_LEN (4 + 2 + 1 + 8 + 32 + 7)
#define REPLY_V6_LEN (4 + 2 + 1 + 8 + 32 + 19)

/* --- lookup request ---------------------------------------------------- */

static void test_ctl_lookup_req(void **state)
{
    uint8_t buf[ID_BYTES + 1];
    struct id key, out;
    (void)state;

    nt_id_pattern(&key, 0x40);
    assert_int_equal(ctl_lookup_req_encode(&key, buf, sizeof(buf)), ID_BYTES);
    assert_memory_equal(buf, key.b, ID_BYTES); /* the key, as is */
    assert_int_equal(ctl_lookup_req_decode(buf, ID_BYTES, &out), 0);
    assert_true(id_eq(&key, &out));

    for (size_t cap = 0; cap < ID_BYTES; cap++)
        assert_int_equal(ctl_lookup_req_encode(&key, buf, cap), 0);

    /* Any other length is refused, and *key is left alone. */
    static const size_t lens[] = {0, 1, ID_BYTES - 1, ID_BYTES + 1};
    for (size_t i = 0; i < N_ELEMS(lens); i++) {
        memset(&out, 0x5a, sizeof(out));
        assert_int_equal(ctl_lookup_req_decode(buf, lens[i], &out), -EBADMSG);
        for (size_t k = 0; k < ID_BYTES; k++)
            assert_int_equal(out.b[k], 0x5a);
    }
}

/* --- lookup reply ------------------------------------------------------ */

static void reply_eq(const struct ctl_lookup_reply *a, const struct ctl_lookup_reply *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->hops, b->hops);
    assert_int_equal(a->iterative, b->iterative);
    assert_true(a->elapsed_us == b->elapsed_us);
    assert_true(id_eq(&a->id, &b->id));
    assert_true(addr_eq(&a->addr, &b->addr));
}

static void test_ctl_lookup_reply_golden(void **state)
{
    struct ctl_lookup_reply r = {
        .status = 0,
        .hops = 0x0102,
        .iterative = 1,
        .elapsed_us = 0x0a0b0c0d0e0f1011u,
    };
    uint8_t buf[REPLY_V4_LEN], want[REPLY_V4_LEN];
    struct wire_writer w;
    (void)state;

    nt_id_pattern(&r.id, 1);
    nt_addr("10.1.2.3", 4000, &r.addr);
    /* The layout of docs/protocol.md, written field by field. */
    wire_writer_init(&w, want, sizeof(want));
    wire_put_u32(&w, 0);
    wire_put_u16(&w, 0x0102);
    wire_put_u8(&w, 1);
    wire_put_u64(&w, 0x0a0b0c0d0e0f1011u);
    wire_put_bytes(&w, r.id.b, ID_BYTES);
    wire_put_u8(&w, 4);
    wire_put_u16(&w, 4000);
    wire_put_bytes(&w, (const uint8_t[]){10, 1, 2, 3}, 4);
    assert_true(wire_writer_ok(&w));
    assert_int_equal(w.len, REPLY_V4_LEN);

    assert_int_equal(ctl_lookup_reply_encode(&r, buf, sizeof(buf)), REPLY_V4_LEN);
    assert_memory_equal(buf, want, REPLY_V4_LEN);
}

static void test_ctl_lookup_reply_round_trip(void **state)
{
    struct ctl_lookup_reply rs[4];
    static const size_t lens[] = {REPLY_V4_LEN, REPLY_V6_LEN, REPLY_V4_LEN, REPLY_V4_LEN};
    (void)state;

    memset(rs, 0, sizeof(rs));
    rs[0] = (struct ctl_lookup_reply){.status = 0, .hops = 3, .iterative = 0, .elapsed_us = 1234};
    nt_id_pattern(&rs[0].id, 7);
    nt_addr("127.0.0.1", 7000, &rs[0].addr);
    rs[1] = (struct ctl_lookup_reply){
        .status = 0, .hops = UINT16_MAX, .iterative = 1, .elapsed_us = UINT64_MAX};
    nt_id_pattern(&rs[1].id, 0xf0);
    assert_int_equal(addr_parse("[2001:db8::1]:65535", &rs[1].addr), 0);
    rs[2] = (struct ctl_lookup_reply){.status = -4095, .hops = 0};
    nt_addr("0.0.0.0", 0, &rs[2].addr); /* how a failed lookup travels */
    rs[3] = (struct ctl_lookup_reply){.status = -ETIMEDOUT, .hops = 9};
    nt_addr("0.0.0.0", 0, &rs[3].addr);

    for (size_t i = 0; i < N_ELEMS(rs); i++) {
        uint8_t buf[128];
        struct ctl_lookup_reply out;
        size_t n = ctl_lookup_reply_encode(&rs[i], buf, sizeof(buf));

        assert_int_equal(n, lens[i]);
        memset(&out, 0xa5, sizeof(out));
        assert_int_equal(ctl_lookup_reply_decode(buf, n, &out), 0);
        reply_eq(&out, &rs[i]);
        /* Every encoding that does not fit is refused whole. */
        for (size_t cap = 0; cap < n; cap++)
            assert_int_equal(ctl_lookup_reply_encode(&rs[i], buf, cap), 0);
    }
}

static void test_ctl_lookup_reply_failed_lookup_without_address(void **state)
{
    /* What net/node.c builds for a failed lookup: no id, no address. */
    struct ctl_lookup_reply r = {.status = -EHOSTUNREACH, .hops = 2, .elapsed_us = 99};
    struct ctl_lookup_reply out;
    uint8_t buf[128];
    (void)state;

    size_t n = ctl_lookup_reply_encode(&r, buf, sizeof(buf));
    assert_int_equal(n, REPLY_V4_LEN); /* family 4, port 0, 0.0.0.0 */
    assert_int_equal(ctl_lookup_reply_decode(buf, n, &out), 0);
    assert_int_equal(out.status, -EHOSTUNREACH);
    assert_int_equal(out.hops, 2);
    assert_true(id_is_zero(&out.id));
    assert_true(addr_is_unspecified(&out.addr));
    assert_int_equal(out.addr.port, 0);
}

static void test_ctl_lookup_reply_rejects(void **state)
{
    struct ctl_lookup_reply r = {.status = 0, .hops = 5, .iterative = 1, .elapsed_us = 77};
    uint8_t good[128], buf[129];
    size_t n;
    (void)state;

    nt_id_pattern(&r.id, 9);
    nt_addr("192.0.2.1", 1, &r.addr);
    n = ctl_lookup_reply_encode(&r, good, sizeof(good));
    assert_int_equal(n, REPLY_V4_LEN);

    /* Each bad field: (offset, bytes). */
    static const struct {
        const char *what;
        size_t off, len;
        uint8_t bytes[4];
    } bad[] = {
        {"status 1", 0, 4, {0, 0, 0, 1}},
        {"status INT32_MAX", 0, 4, {0x7f, 0xff, 0xff, 0xff}},
        {"status -4096", 0, 4, {0xff, 0xff, 0xf0, 0x00}},
        {"status INT32_MIN", 0, 4, {0x80, 0, 0, 0}},
        {"iterative 2", 6, 1, {2}},
        {"iterative 255", 6, 1, {0xff}},
        {"family 0", 47, 1, {0}},
        {"family 5", 47, 1, {5}},
        {"family 6 with 4 address bytes", 47, 1, {6}},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct ctl_lookup_reply out;
        memcpy(buf, good, n);
        memcpy(buf + bad[i].off, bad[i].bytes, bad[i].len);
        memset(&out, 0x5a, sizeof(out));
        print_message("%s\n", bad[i].what);
        assert_int_equal(ctl_lookup_reply_decode(buf, n, &out), -EBADMSG);
        assert_int_equal(out.hops, 0x5a5a); /* untouched */
    }

    /* The edges that are fine: status -4095, status 0, iterative 0. */
    memcpy(buf, good, n);
    memcpy(buf, (const uint8_t[]){0xff, 0xff, 0xf0, 0x01}, 4);
    buf[6] = 0;
    struct ctl_lookup_reply out;
    assert_int_equal(ctl_lookup_reply_decode(buf, n, &out), 0);
    assert_int_equal(out.status, -4095);
    assert_int_equal(out.iterative, 0);

    /* Every truncation, and a trailing byte. */
    for (size_t len = 0; len < n; len++)
        assert_int_equal(ctl_lookup_reply_decode(good, len, &out), -EBADMSG);
    memcpy(buf, good, n);
    buf[n] = 0;
    assert_int_equal(ctl_lookup_reply_decode(buf, n + 1, &out), -EBADMSG);
}

/* --- error reply ------------------------------------------------------- */

static void test_ctl_error_round_trip(void **state)
{
    uint8_t buf[4 + CTL_ERROR_MAX + 8];
    char msg[CTL_ERROR_MAX + 1];
    int32_t err = 1;
    size_t n;
    (void)state;

    n = ctl_error_encode(-ENOENT, "no such key", buf, sizeof(buf));
    assert_int_equal(n, 4 + 11);
    assert_memory_equal(buf, ((const uint8_t[]){0xff, 0xff, 0xff, 0xfe}), 4); /* -2 */
    assert_memory_equal(buf + 4, "no such key", 11);                          /* no NUL */
    assert_int_equal(ctl_error_decode(buf, n, &err, msg, sizeof(msg)), 0);
    assert_int_equal(err, -ENOENT);
    assert_string_equal(msg, "no such key");

    /* An empty message, and the smallest and largest errno. */
    static const int32_t errs[] = {0, -1, -4095};
    for (size_t i = 0; i < N_ELEMS(errs); i++) {
        n = ctl_error_encode(errs[i], "", buf, sizeof(buf));
        assert_int_equal(n, 4);
        memset(msg, 'x', sizeof(msg));
        assert_int_equal(ctl_error_decode(buf, n, &err, msg, sizeof(msg)), 0);
        assert_int_equal(err, errs[i]);
        assert_string_equal(msg, "");
    }

    /* Too small a buffer: 0. */
    for (size_t cap = 0; cap < 4 + 5; cap++)
        assert_int_equal(ctl_error_encode(-EIO, "hello", buf, cap), 0);
}

static void test_ctl_error_lengths(void **state)
{
    uint8_t buf[4 + CTL_ERROR_MAX + 8];
    char longmsg[CTL_ERROR_MAX + 100];
    char msg[CTL_ERROR_MAX + 1];
    int32_t err;
    size_t n;
    (void)state;

    /* The encoder cuts a message to CTL_ERROR_MAX bytes. */
    memset(longmsg, 'm', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    n = ctl_error_encode(-EINVAL, longmsg, buf, sizeof(buf));
    assert_int_equal(n, 4 + CTL_ERROR_MAX);
    assert_int_equal(ctl_error_decode(buf, n, &err, msg, sizeof(msg)), 0);
    assert_int_equal(strlen(msg), CTL_ERROR_MAX);

    /* The decoder refuses anything longer, and anything without an errno. */
    memset(buf + 4, 'm', CTL_ERROR_MAX + 1);
    err = 12345;
    assert_int_equal(ctl_error_decode(buf, 4 + CTL_ERROR_MAX + 1, &err, msg, sizeof(msg)),
                     -EBADMSG);
    assert_int_equal(err, 12345); /* untouched */
    for (size_t len = 0; len < 4; len++)
        assert_int_equal(ctl_error_decode(buf, len, &err, msg, sizeof(msg)), -EBADMSG);

    /* A message cut to the caller's buffer, always NUL-terminated. */
    n = ctl_error_encode(-EIO, "abcdefgh", buf, sizeof(buf));
    memset(msg, 'x', sizeof(msg));
    assert_int_equal(ctl_error_decode(buf, n, &err, msg, 5), 0);
    assert_string_equal(msg, "abcd");
    assert_int_equal(msg[5], 'x');
    assert_int_equal(ctl_error_decode(buf, n, &err, msg, 1), 0);
    assert_string_equal(msg, "");
    /* msg_size 0: only the errno. */
    msg[0] = 'x';
    err = 0;
    assert_int_equal(ctl_error_decode(buf, n, &err, msg, 0), 0);
    assert_int_equal(err, -EIO);
    assert_int_equal(msg[0], 'x');
}

static void test_ctl_error_rejects_bad_errno(void **state)
{
    static const int32_t bad[] = {1, 22, INT32_MAX, -4096, INT32_MIN};
    uint8_t buf[16];
    char msg[16];
    (void)state;

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        int32_t err = 12345;
        size_t n = ctl_error_encode(bad[i], "x", buf, sizeof(buf));
        assert_int_equal(n, 5);
        assert_int_equal(ctl_error_decode(buf, n, &err, msg, sizeof(msg)), -EBADMSG);
        assert_int_equal(err, 12345);
    }
}

static void test_ctl_error_control_characters_replaced(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\x1b[31mred\x1b[0m", "?[31mred?[0m"},
        {"line\nbreak\rtab\t", "line?break?tab?"},
        {"\x01\x02\x1f", "???"},
        {"bell\a", "bell?"},
        {"del\x7f", "del?"},
        {"csi \xc2\x9b"
         "31m",
         "csi ??31m"},                                            /* U+009B, C1 */
        {"\xc2\x80\xc2\x9f", "????"},                             /* the ends of C1 */
        {"nbsp\xc2\xa0", "nbsp\xc2\xa0"},                         /* U+00A0 is no control */
        {"caf\xc3\xa9 \xe2\x9c\x93", "caf\xc3\xa9 \xe2\x9c\x93"}, /* UTF-8 stays */
        {"plain text, 100%", "plain text, 100%"},
    };
    (void)state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        uint8_t buf[64];
        char msg[64];
        int32_t err;
        size_t n = ctl_error_encode(-EIO, cases[i].in, buf, sizeof(buf));

        assert_int_equal(ctl_error_decode(buf, n, &err, msg, sizeof(msg)), 0);
        assert_string_equal(msg, cases[i].out);
    }

    /* A NUL inside the bytes does not cut the message short silently. */
    {
        uint8_t buf[16] = {0xff, 0xff, 0xff, 0xfb, 'a', 'b', 0, 'c', 'd'};
        char msg[16];
        int32_t err;
        assert_int_equal(ctl_error_decode(buf, 9, &err, msg, sizeof(msg)), 0);
        assert_int_equal(err, -5);
        assert_string_equal(msg, "ab?cd");
    }
}

/* --- HELLO ------------------------------------------------------------- */

static void test_hello_round_trip(void **state)
{
    static const char *addrs[] = {"127.0.0.1:1", "10.0.0.2:65535", "[::1]:4000",
                                  "[2001:db8::ff]:7"};
    (void)state;

    for (size_t i = 0; i < N_ELEMS(addrs); i++) {
        struct addr a, out;
        uint8_t buf[32];
        size_t n;

        assert_int_equal(addr_parse(addrs[i], &a), 0);
        n = net_hello_encode(&a, buf, sizeof(buf));
        assert_int_equal(n, a.family == ADDR_V4 ? 7 : 19);
        assert_int_equal(n, wire_addr_size(&a));
        memset(&out, 0xa5, sizeof(out));
        assert_int_equal(net_hello_decode(buf, n, &out), 0);
        assert_true(addr_eq(&a, &out));
        assert_int_equal(out.pad, 0);
        for (size_t cap = 0; cap < n; cap++)
            assert_int_equal(net_hello_encode(&a, buf, cap), 0);
    }

    /* The bytes: family, port, address. */
    struct addr a;
    uint8_t buf[8];
    nt_addr("192.0.2.7", 0x1f90, &a);
    assert_int_equal(net_hello_encode(&a, buf, sizeof(buf)), 7);
    assert_memory_equal(buf, ((const uint8_t[]){4, 0x1f, 0x90, 192, 0, 2, 7}), 7);

    /* An address of no family cannot be said. */
    memset(&a, 0, sizeof(a));
    assert_int_equal(net_hello_encode(&a, buf, sizeof(buf)), 0);
}

static void test_hello_rejects(void **state)
{
    /* clang-format off */
    static const struct {
        const char *what;
        size_t len;
        uint8_t bytes[24];
    } bad[] = {
        {"empty", 0, {0}},
        {"family only", 1, {4}},
        {"short v4", 6, {4, 0, 80, 127, 0, 0}},
        {"short v6", 18, {6, 0, 80, 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0}},
        {"trailing byte", 8, {4, 0, 80, 127, 0, 0, 1, 0}},
        {"port 0", 7, {4, 0, 0, 127, 0, 0, 1}},
        {"0.0.0.0", 7, {4, 0, 80, 0, 0, 0, 0}},
        {"::", 19, {6, 0, 80, 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,0}},
        {"family 0", 7, {0, 0, 80, 127, 0, 0, 1}},
        {"family 5", 7, {5, 0, 80, 127, 0, 0, 1}},
        {"family 6, v4 length", 7, {6, 0, 80, 127, 0, 0, 1}},
    };
    /* clang-format on */
    (void)state;

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct addr out;
        memset(&out, 0x5a, sizeof(out));
        print_message("%s\n", bad[i].what);
        assert_int_equal(net_hello_decode(bad[i].bytes, bad[i].len, &out), -EBADMSG);
        assert_int_equal(out.family, 0x5a); /* untouched */
    }
}

/* --- the client, against a fake node ----------------------------------- */

struct fake {
    char dir[64];
    char path[96];
    int lfd;
    pthread_t th;
    unsigned statuses;     /* STATUS requests seen */
    unsigned lookups;      /* LOOKUP requests seen */
    unsigned max_inflight; /* most LOOKUP requests read before answering */
};

static bool recv_exact(int fd, void *buf, size_t len)
{
    return len == 0 || recv(fd, buf, len, MSG_WAITALL) == (ssize_t)len;
}

static void reply(int fd, uint16_t type, uint64_t id, const void *payload, size_t len)
{
    uint8_t buf[FRAME_HEADER_SIZE + 1024];
    size_t n = nt_frame(buf, type, FRAME_F_REPLY, id, payload, (uint32_t)len);
    (void)!send(fd, buf, n, MSG_NOSIGNAL);
}

struct pending {
    uint64_t id;
    struct id key;
};

static void answer_lookup(int fd, const struct pending *p)
{
    struct ctl_lookup_reply r = {.hops = p->key.b[1], .iterative = 0, .elapsed_us = 10};
    uint8_t buf[128];

    if (p->key.b[0] == 0xee) {
        uint8_t err[32];
        size_t n = ctl_error_encode(-EBUSY, "too many lookups", err, sizeof(err));
        reply(fd, CTL_MSG_ERROR, p->id, err, n);
        return;
    }
    if (p->key.b[0] == 0xff) {
        r.status = -ETIMEDOUT;
    } else {
        r.id = p->key;
        nt_addr("127.0.0.1", (uint16_t)(5000 + p->key.b[1]), &r.addr);
    }
    reply(fd, CTL_MSG_LOOKUP, p->id, buf, ctl_lookup_reply_encode(&r, buf, sizeof(buf)));
}

/* Serves one connection: STATUS answers JSON the first time, ERROR the
 * second, and hangs up the third; LOOKUPs are answered two at a time in
 * reverse order, so that replies arrive out of order. */
static void *fake_main(void *arg)
{
    struct fake *fk = arg;
    struct pending held = {0};
    bool holding = false;
    int fd = accept(fk->lfd, NULL, NULL);

    if (fd < 0)
        return NULL;
    for (;;) {
        uint8_t hdr[FRAME_HEADER_SIZE], payload[64];
        struct frame_header h;

        if (!recv_exact(fd, hdr, sizeof(hdr)) || frame_header_decode(hdr, sizeof(hdr), &h) ||
            h.length > sizeof(payload) || !recv_exact(fd, payload, h.length))
            break;
        if (h.type == CTL_MSG_STATUS) {
            fk->statuses++;
            if (fk->statuses == 1) {
                reply(fd, CTL_MSG_STATUS, h.request_id, "{\"ok\":true}", 11);
            } else if (fk->statuses == 2) {
                uint8_t buf[64];
                size_t n = ctl_error_encode(-EAGAIN, "busy\x1b[0m", buf, sizeof(buf));
                reply(fd, CTL_MSG_ERROR, h.request_id, buf, n);
            } else {
                break;
            }
        } else if (h.type == CTL_MSG_LOOKUP) {
            struct pending p = {.id = h.request_id};
            fk->lookups++;
            if (ctl_lookup_req_decode(payload, h.length, &p.key) < 0)
                break;
            if (!holding) {
                held = p;
                holding = true;
                continue;
            }
            answer_lookup(fd, &p);
            answer_lookup(fd, &held);
            holding = false;
        }
    }
    close(fd);
    return NULL;
}

static void fake_start(struct fake *fk)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    snprintf(fk->dir, sizeof(fk->dir), "/tmp/coopfs-test-ctl-XXXXXX");
    assert_non_null(mkdtemp(fk->dir));
    snprintf(fk->path, sizeof(fk->path), "%s/control.sock", fk->dir);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fk->path);
    fk->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fk->lfd >= 0);
    assert_int_equal(bind(fk->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
}

static void fake_listen(struct fake *fk)
{
    assert_int_equal(listen(fk->lfd, 4), 0);
    assert_int_equal(pthread_create(&fk->th, NULL, fake_main, fk), 0);
}

static void fake_stop(struct fake *fk, bool listening)
{
    if (listening)
        pthread_join(fk->th, NULL);
    close(fk->lfd);
    unlink(fk->path);
    rmdir(fk->dir);
}

struct seen {
    unsigned calls;
    bool twice;
    bool seen[16];
    bool wrong;
};

static void on_each(void *ctx, size_t i, const struct ctl_lookup_reply *r)
{
    struct seen *s = ctx;

    s->calls++;
    if (i >= 16 || s->seen[i])
        s->twice = true;
    else
        s->seen[i] = true;
    /* Key i was {i == 7 ? 0xff : i == 3 ? 0xee : 0, i, ...}: check the
     * answer is its own. */
    if (i == 7) {
        if (r->status != -ETIMEDOUT)
            s->wrong = true;
    } else if (i == 3) {
        if (r->status != -EBUSY) /* an ERROR reply, as the lookup's status */
            s->wrong = true;
    } else if (r->status != 0 || (size_t)r->hops != i || (size_t)r->id.b[1] != i ||
               (size_t)r->addr.port != 5000 + i) {
        s->wrong = true;
    }
}

static void test_ctl_client_against_fake_node(void **state)
{
    struct fake fk = {0};
    struct ctl_client *c;
    struct id keys[10];
    struct seen seen = {0};
    char *json = NULL;
    (void)state;

    alarm(20); /* the client blocks: a hang would otherwise last CTL_TIMEOUT_MS */
    fake_start(&fk);
    fake_listen(&fk);
    assert_int_equal(ctl_client_open(fk.dir, &c), 0);
    assert_string_equal(ctl_client_error(c), "");

    assert_int_equal(ctl_client_status(c, &json), 0);
    assert_string_equal(json, "{\"ok\":true}");
    free(json);
    json = NULL;

    assert_int_equal(ctl_client_status(c, &json), -EAGAIN);
    assert_null(json);
    assert_string_equal(ctl_client_error(c), "busy?[0m");

    memset(keys, 0, sizeof(keys));
    for (size_t i = 0; i < N_ELEMS(keys); i++) {
        keys[i].b[0] = i == 7 ? 0xff : i == 3 ? 0xee : 0;
        keys[i].b[1] = (uint8_t)i;
    }
    assert_int_equal(ctl_client_lookup(c, keys, N_ELEMS(keys), 4, on_each, &seen), 0);
    assert_int_equal(seen.calls, N_ELEMS(keys));
    assert_false(seen.twice);
    assert_false(seen.wrong);
    assert_int_equal(fk.lookups, N_ELEMS(keys));
    assert_string_equal(ctl_client_error(c), "too many lookups");

    /* The node hangs up on the third STATUS. */
    assert_int_equal(ctl_client_status(c, &json), -ECONNRESET);
    assert_null(json);
    assert_int_equal(ctl_client_status(c, &json), -ECONNRESET);
    assert_int_equal(ctl_client_lookup(c, keys, 1, 1, on_each, &seen), -ECONNRESET);
    ctl_client_free(c);
    fake_stop(&fk, true);
    alarm(0);
}

static void test_ctl_client_no_node(void **state)
{
    struct fake fk = {0};
    struct ctl_client *c = NULL;
    (void)state;

    /* No socket file. */
    assert_int_equal(ctl_client_open("/nonexistent/coopfs-test", &c), -ENOENT);
    assert_null(c);
    /* A socket file nobody listens on (a node that died). */
    fake_start(&fk);
    assert_int_equal(ctl_client_open(fk.dir, &c), -ECONNREFUSED);
    assert_null(c);
    fake_stop(&fk, false);
    ctl_client_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_lookup_req),
        cmocka_unit_test(test_ctl_lookup_reply_golden),
        cmocka_unit_test(test_ctl_lookup_reply_round_trip),
        cmocka_unit_test(test_ctl_lookup_reply_failed_lookup_without_address),
        cmocka_unit_test(test_ctl_lookup_reply_rejects),
        cmocka_unit_test(test_ctl_error_round_trip),
        cmocka_unit_test(test_ctl_error_lengths),
        cmocka_unit_test(test_ctl_error_rejects_bad_errno),
        cmocka_unit_test(test_ctl_error_control_characters_replaced),
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_hello_rejects),
        cmocka_unit_test(test_ctl_client_against_fake_node),
        cmocka_unit_test(test_ctl_client_no_node),
    };

    nt_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
