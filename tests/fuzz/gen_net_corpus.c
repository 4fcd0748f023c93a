/* gen_net_corpus.c — writes the seed corpora of fuzz_frame and
 * fuzz_net_msg.
 *
 *   gen_net_corpus DIR
 *
 * writes DIR/frame/ (byte streams as a peer or a control client sends them:
 * whole frames of each kind, several frames in a row, and broken ones) and
 * DIR/net_msg/ (a selector byte, see fuzz_net_msg.c, then a HELLO or
 * control payload, valid or not, among them the block requests 1210..1213
 * and their reply), one file each. The files are committed in
 * tests/fuzz/corpus/; run this again (and commit the result) when a wire
 * format changes:
 *
 *   gen_net_corpus tests/fuzz/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "chord/msg.h"
#include "common/frame.h"
#include "common/wire.h"
#include "net/control.h"
#include "net/peers.h"

/* fuzz_net_msg's selectors (the first byte) and msg_size bytes (the
 * second byte of an error). */
enum {
    SEL_HELLO,
    SEL_LOOKUP_REQ,
    SEL_LOOKUP_REPLY,
    SEL_ERROR,
    SEL_BS_REPLY,
    SEL_BLOCK_PUT,
    SEL_BLOCK_GET,
    SEL_ROOT_PUT,
    SEL_LEASE
};
enum { MSG_SIZE_CLIENT = 0x80, MSG_SIZE_LARGE = 0xc0 };

static const char *out_dir;
static int status;

static uint8_t buf[2 * FRAME_HEADER_SIZE + 8192];
static size_t len;

static void put(const void *p, size_t n)
{
    if (n > sizeof(buf) - len) {
        fprintf(stderr, "seed too long\n");
        status = 1;
        return;
    }
    memcpy(buf + len, p, n);
    len += n;
}

static void put_u8(uint8_t v)
{
    put(&v, 1);
}

static void put_header(uint8_t version, uint8_t flags, uint16_t type, uint64_t rid, uint32_t length)
{
    struct frame_header h = {version, flags, type, rid, length};
    uint8_t hdr[FRAME_HEADER_SIZE];
    frame_header_encode(&h, hdr);
    put(hdr, sizeof(hdr));
}

/* A whole frame: header and payload. */
static void put_frame(uint8_t flags, uint16_t type, uint64_t rid, const void *payload, size_t n)
{
    put_header(FRAME_VERSION, flags, type, rid, (uint32_t)n);
    put(payload, n);
}

/* Writes buf[0..len) to out_dir/name and empties buf. */
static void emit(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        status = 1;
        len = 0;
        return;
    }
    size_t w = fwrite(buf, 1, len, f);
    if (fclose(f) != 0 || w != len) {
        fprintf(stderr, "%s: write failed\n", path);
        status = 1;
    }
    len = 0;
}

static struct id mkid(unsigned seed)
{
    struct id r;
    for (int i = 0; i < ID_BYTES; i++)
        r.b[i] = (uint8_t)(seed * 41 + (unsigned)i * 7);
    return r;
}

static struct addr v4(uint8_t d, uint16_t port)
{
    struct addr a;
    addr_v4(&a, 10, 0, 0, d, port);
    return a;
}

static struct addr v6(uint8_t last, uint16_t port)
{
    struct addr a;
    memset(&a, 0, sizeof(a));
    a.family = ADDR_V6;
    a.port = port;
    a.ip[0] = 0x20;
    a.ip[1] = 0x01;
    a.ip[2] = 0x0d;
    a.ip[3] = 0xb8;
    a.ip[15] = last;
    return a;
}

/* Payloads, into p; each returns the length (0 if it did not encode). */

static size_t hello(const struct addr *a, uint8_t *p, size_t cap)
{
    size_t n = net_hello_encode(a, p, cap);
    if (!n) {
        fprintf(stderr, "cannot encode a HELLO\n");
        status = 1;
    }
    return n;
}

static size_t lookup_reply(int32_t st, uint8_t iterative, const struct addr *a, uint8_t *p,
                           size_t cap)
{
    struct ctl_lookup_reply r;
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.hops = 3;
    r.iterative = iterative;
    r.elapsed_us = 1234567;
    r.id = mkid(7);
    r.addr = *a;
    size_t n = ctl_lookup_reply_encode(&r, p, cap);
    if (!n) {
        fprintf(stderr, "cannot encode a lookup reply\n");
        status = 1;
    }
    return n;
}

static size_t error_payload(int32_t err, const char *msg, uint8_t *p, size_t cap)
{
    size_t n = ctl_error_encode(err, msg, p, cap);
    if (!n) {
        fprintf(stderr, "cannot encode an error\n");
        status = 1;
    }
    return n;
}

static size_t chord_ping(uint8_t *p, size_t cap)
{
    struct chord_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHORD_MSG_PING;
    m.request_id = 42;
    m.dst = mkid(1);
    m.src.id = mkid(2);
    m.src.addr = v4(2, 4002);
    size_t n = chord_msg_encode(&m, p, cap);
    if (!n) {
        fprintf(stderr, "cannot encode a chord PING\n");
        status = 1;
    }
    return n;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void gen_frame(void)
{
    uint8_t p[2048];
    size_t n;
    struct addr a4 = v4(1, 4001), a6 = v6(1, 5001);
    struct id key = mkid(3);
    static const char json[] = "{\"node\":\"10.0.0.1:4001\",\"vnodes\":4}";

    /* One whole frame of each kind a node reads. */
    n = hello(&a4, p, sizeof(p));
    put_frame(0, NET_MSG_HELLO, 0, p, n);
    emit("hello_v4");
    n = hello(&a6, p, sizeof(p));
    put_frame(0, NET_MSG_HELLO, 0, p, n);
    emit("hello_v6");
    n = chord_ping(p, sizeof(p)); /* a chord frame is a whole frame already */
    put(p, n);
    emit("chord_ping");
    put_frame(0, CTL_MSG_STATUS, 1, NULL, 0);
    emit("status_req");
    put_frame(FRAME_F_REPLY, CTL_MSG_STATUS, 1, json, sizeof(json) - 1);
    emit("status_reply");
    n = ctl_lookup_req_encode(&key, p, sizeof(p));
    put_frame(0, CTL_MSG_LOOKUP, 2, p, n);
    emit("lookup_req");
    n = lookup_reply(0, 1, &a6, p, sizeof(p));
    put_frame(FRAME_F_REPLY, CTL_MSG_LOOKUP, 2, p, n);
    emit("lookup_reply_v6");
    n = error_payload(-ENOENT, "no such key", p, sizeof(p));
    put_frame(FRAME_F_REPLY, CTL_MSG_ERROR, 3, p, n);
    emit("error");
    n = ctl_block_get_encode(1, &key, p, sizeof(p));
    put_frame(0, CTL_MSG_BLOCK_GET, 4, p, n);
    emit("block_get_req");
    {
        struct ctl_bs_reply r;
        memset(&r, 0, sizeof(r));
        r.status = -ETIMEDOUT;
        r.key = key;
        snprintf(r.reason, sizeof(r.reason), "no holder answered");
        n = ctl_bs_reply_encode(&r, p, sizeof(p));
        put_frame(FRAME_F_REPLY, CTL_MSG_BLOCK_GET, 4, p, n);
        emit("block_get_reply");
    }

    /* A connection's first bytes: HELLO, then frames back to back, the
     * last one cut short. */
    n = hello(&a4, p, sizeof(p));
    put_frame(0, NET_MSG_HELLO, 0, p, n);
    n = chord_ping(p, sizeof(p));
    put(p, n);
    put_frame(0, CTL_MSG_STATUS, 7, NULL, 0);
    n = ctl_lookup_req_encode(&key, p, sizeof(p));
    put_frame(0, CTL_MSG_LOOKUP, 8, p, n);
    put_header(FRAME_VERSION, 0, CTL_MSG_LOOKUP, 9, (uint32_t)n);
    put(p, n / 2);
    emit("stream_partial");
    /* Two frames, then one with a bad magic: the splitter stops there. */
    put_frame(0, CTL_MSG_STATUS, 1, NULL, 0);
    put_frame(0, CTL_MSG_STATUS, 2, NULL, 0);
    put("XOOP", 4);
    put_header(FRAME_VERSION, 0, CTL_MSG_STATUS, 3, 0);
    emit("stream_bad_magic");

    /* Edge cases. */
    put_header(FRAME_VERSION, 0, CTL_MSG_STATUS, 1, 0);
    len = FRAME_HEADER_SIZE - 1;
    emit("short_header");
    n = error_payload(-EIO, "cut", p, sizeof(p));
    put_frame(FRAME_F_REPLY, CTL_MSG_ERROR, 1, p, n - 2);
    emit("short_payload");
    put_header(FRAME_VERSION, 0, CTL_MSG_STATUS, 1, FRAME_MAX_PAYLOAD);
    put("just the start", 14);
    emit("length_max");
    put_header(FRAME_VERSION, 0, CTL_MSG_STATUS, 1, FRAME_MAX_PAYLOAD + 1);
    emit("length_max_plus_1");
    put_header(FRAME_VERSION, 0, CTL_MSG_STATUS, 1, 0xffffffffu);
    emit("length_all_ones");
    put_header(FRAME_VERSION, 0, CTL_MSG_STATUS, 1, 0);
    memcpy(buf, "POOC", 4);
    emit("wrong_magic");
    put("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    emit("http_request");
    put_header(0, 0, CTL_MSG_STATUS, 1, 0);
    emit("version_0");
    put_header(FRAME_VERSION + 1, 0, CTL_MSG_STATUS, 1, 0);
    emit("version_next");
    put_header(FRAME_VERSION, 0xff, 0xffff, UINT64_MAX, 0);
    emit("all_ones_fields");
}

/* fuzz_net_msg inputs: selector, [msg_size,] payload. */
static void gen_net_msg(void)
{
    uint8_t p[2048];
    size_t n;
    struct addr a4 = v4(1, 4001), a6 = v6(1, 5001), zero_port = v4(1, 0), unspec;
    struct id key = mkid(3);

    memset(&unspec, 0, sizeof(unspec));
    unspec.family = ADDR_V4;
    unspec.port = 4001;

    /* HELLO */
    put_u8(SEL_HELLO);
    put(p, hello(&a4, p, sizeof(p)));
    emit("hello_v4");
    put_u8(SEL_HELLO);
    put(p, hello(&a6, p, sizeof(p)));
    emit("hello_v6");
    put_u8(SEL_HELLO);
    put(p, hello(&zero_port, p, sizeof(p)));
    emit("hello_port_0");
    put_u8(SEL_HELLO);
    put(p, hello(&unspec, p, sizeof(p)));
    emit("hello_unspecified");
    put_u8(SEL_HELLO);
    n = hello(&a4, p, sizeof(p));
    put(p, n);
    put_u8(0);
    emit("hello_trailing");
    put_u8(SEL_HELLO);
    n = hello(&a6, p, sizeof(p));
    put(p, n - 1);
    emit("hello_v6_short");
    put_u8(SEL_HELLO);
    n = hello(&a4, p, sizeof(p));
    p[0] = 5; /* no such family */
    put(p, n);
    emit("hello_family_5");

    /* lookup request */
    put_u8(SEL_LOOKUP_REQ);
    put(p, ctl_lookup_req_encode(&key, p, sizeof(p)));
    emit("lookup_req");
    put_u8(SEL_LOOKUP_REQ);
    put(p, ctl_lookup_req_encode(&key, p, sizeof(p)) - 1);
    emit("lookup_req_short");
    put_u8(SEL_LOOKUP_REQ);
    put(p, ctl_lookup_req_encode(&key, p, sizeof(p)));
    put_u8(0);
    emit("lookup_req_trailing");

    /* lookup reply */
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(0, 0, &a4, p, sizeof(p)));
    emit("lookup_reply_v4");
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(0, 1, &a6, p, sizeof(p)));
    emit("lookup_reply_v6");
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(-ETIMEDOUT, 1, &a4, p, sizeof(p)));
    emit("lookup_reply_timeout");
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(-4095, 0, &a4, p, sizeof(p)));
    emit("lookup_reply_status_min");
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(-4096, 0, &a4, p, sizeof(p)));
    emit("lookup_reply_status_below_min");
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(1, 0, &a4, p, sizeof(p)));
    emit("lookup_reply_status_positive");
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(0, 2, &a4, p, sizeof(p)));
    emit("lookup_reply_iterative_2");
    put_u8(SEL_LOOKUP_REPLY);
    put(p, lookup_reply(0, 0, &a6, p, sizeof(p)) - 3);
    emit("lookup_reply_v6_short");

    /* error */
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_CLIENT);
    put(p, error_payload(-ENOENT, "no such key", p, sizeof(p)));
    emit("error");
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_CLIENT);
    put(p, error_payload(-EINVAL, "", p, sizeof(p)));
    emit("error_empty");
    put_u8(SEL_ERROR);
    put_u8(5);
    put(p, error_payload(-EAGAIN, "cut to four bytes", p, sizeof(p)));
    emit("error_msg_size_5");
    put_u8(SEL_ERROR);
    put_u8(0);
    put(p, error_payload(-EAGAIN, "nowhere to put it", p, sizeof(p)));
    emit("error_msg_size_0");
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_CLIENT);
    put(p, error_payload(-EIO, "\x1b[31mred\x1b[0m\ttab\r\nDEL\x7f", p, sizeof(p)));
    emit("error_control_c0");
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_CLIENT);
    put(p, error_payload(-EIO,
                         "CSI \xc2\x9b"
                         "31m, caf\xc3\xa9",
                         p, sizeof(p)));
    emit("error_control_c1");
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_LARGE);
    error_payload(-EIO, "", p, sizeof(p)); /* the errno */
    memset(p + 4, 'e', CTL_ERROR_MAX);     /* the longest message */
    put(p, 4 + CTL_ERROR_MAX);
    emit("error_longest");
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_LARGE);
    memset(p + 4, 'e', CTL_ERROR_MAX + 1); /* one byte too long */
    put(p, 4 + CTL_ERROR_MAX + 1);
    emit("error_too_long");
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_CLIENT);
    put(p, error_payload(1, "positive errno", p, sizeof(p)));
    emit("error_errno_positive");
    put_u8(SEL_ERROR);
    put_u8(MSG_SIZE_CLIENT);
    put(p, 2);
    emit("error_short");
}

/* ---- block requests and their reply (selectors 4..8) ---- */

static void mklease(unsigned seed, uint64_t expiry_s, struct lease *l)
{
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < SIG_PUB_LEN; i++)
        l->owner.b[i] = (uint8_t)(seed * 13 + (unsigned)i);
    l->stamp_ms = 1700000000000ull + seed;
    l->expiry_s = expiry_s;
    for (int i = 0; i < SIG_LEN; i++)
        l->sig[i] = (uint8_t)(seed * 29 + (unsigned)i * 3);
}

/* A real content block of kind DATA holding n bytes of text, into out;
 * returns its length. */
static size_t content_block(size_t n, uint8_t *out)
{
    uint8_t data[256];
    struct id k;
    size_t blen = 0;
    for (size_t i = 0; i < n && i < sizeof(data); i++)
        data[i] = (uint8_t)('a' + i % 26);
    if (block_encode(BLOCK_KIND_DATA, data, n, false, out, &blen, &k) != 0) {
        fprintf(stderr, "cannot encode a content block\n");
        status = 1;
        return 0;
    }
    return blen;
}

/* A root block of version v with payload_len bytes, signed with seed bytes
 * 1..32 (fuzz_block's key), into out; returns its length. */
static size_t root_block(uint64_t v, size_t payload_len, uint8_t *out)
{
    uint8_t seed[SIG_SEED_LEN], payload[ROOT_MAX_PAYLOAD];
    struct sig_key k;
    size_t blen = 0;
    for (int i = 0; i < SIG_SEED_LEN; i++)
        seed[i] = (uint8_t)(i + 1);
    memset(payload, 'r', sizeof(payload));
    if (sig_key_from_seed(seed, &k) != 0 ||
        root_encode(&k, v, payload, payload_len, out, &blen) != 0) {
        fprintf(stderr, "cannot encode a root block\n");
        status = 1;
        return 0;
    }
    return blen;
}

static size_t bs_reply(int32_t st, const char *reason, const uint8_t *bytes, uint32_t blen,
                       uint8_t *p, size_t cap)
{
    struct ctl_bs_reply r;
    memset(&r, 0, sizeof(r));
    r.status = st;
    r.key = mkid(11);
    r.copies = 3;
    r.version = 7;
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    r.bytes = bytes;
    r.len = blen;
    size_t n = ctl_bs_reply_encode(&r, p, cap);
    if (!n) {
        fprintf(stderr, "cannot encode a block reply\n");
        status = 1;
    }
    return n;
}

/* Offset of a block reply's u16 reason length. */
#define BS_REPLY_REASON_LEN_OFF (4 + ID_BYTES + 1 + 8)

static void gen_block_msgs(void)
{
    uint8_t p[2048], rec[1200];
    size_t n, rn;
    struct lease grant, reclaim;
    struct id key = mkid(5);
    char reason[CTL_REASON_MAX + 2];

    mklease(1, 1800000000u, &grant);
    mklease(2, 0, &reclaim);

    /* the reply */
    rn = content_block(40, rec);
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(0, "", rec, (uint32_t)rn, p, sizeof(p)));
    emit("bs_reply_get");
    rn = root_block(4, 16, rec);
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(-6005, "conflict: version 4 is current", rec, (uint32_t)rn, p, sizeof(p)));
    emit("bs_reply_conflict_root");
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(-ETIMEDOUT, "no holder answered", NULL, 0, p, sizeof(p)));
    emit("bs_reply_timeout");
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(0, "", NULL, 0, p, sizeof(p)));
    emit("bs_reply_empty");
    put_u8(SEL_BS_REPLY);
    put(p,
        bs_reply(-9999, "\x1b[31mred\x1b[0m\ttab\r\nDEL\x7f, caf\xc3\xa9", NULL, 0, p, sizeof(p)));
    emit("bs_reply_control_chars");
    memset(reason, 'x', CTL_REASON_MAX);
    reason[CTL_REASON_MAX] = '\0';
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(-EIO, reason, NULL, 0, p, sizeof(p)));
    emit("bs_reply_reason_longest");
    /* one byte too long: the encoder cuts, so the length is patched */
    put_u8(SEL_BS_REPLY);
    n = bs_reply(-EIO, reason, NULL, 0, p, sizeof(p));
    memmove(p + BS_REPLY_REASON_LEN_OFF + 2 + CTL_REASON_MAX + 1,
            p + BS_REPLY_REASON_LEN_OFF + 2 + CTL_REASON_MAX, 4);
    p[BS_REPLY_REASON_LEN_OFF + 2 + CTL_REASON_MAX] = 'x';
    p[BS_REPLY_REASON_LEN_OFF + 1] = (uint8_t)(CTL_REASON_MAX + 1);
    put(p, n + 1);
    emit("bs_reply_reason_too_long");
    put_u8(SEL_BS_REPLY);
    n = bs_reply(-EIO, "a\x01z", NULL, 0, p, sizeof(p));
    p[BS_REPLY_REASON_LEN_OFF + 2 + 1] = 0; /* a NUL inside the reason */
    put(p, n);
    emit("bs_reply_reason_nul");
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(-10000, "", NULL, 0, p, sizeof(p)));
    emit("bs_reply_status_below_min");
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(1, "", NULL, 0, p, sizeof(p)));
    emit("bs_reply_status_positive");
    rn = content_block(10, rec);
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(0, "ok", rec, (uint32_t)rn, p, sizeof(p)) - 1);
    emit("bs_reply_short");
    put_u8(SEL_BS_REPLY);
    put(p, bs_reply(0, "ok", rec, (uint32_t)rn, p, sizeof(p)));
    put_u8(0);
    emit("bs_reply_trailing");

    /* BLOCK_PUT: key | lease | content block */
    rn = content_block(64, rec);
    struct id rkey;
    if (block_key(rec, rn, &rkey) != 0)
        rkey = key;
    put_u8(SEL_BLOCK_PUT);
    put(p, ctl_block_put_encode(&rkey, &grant, rec, rn, p, sizeof(p)));
    emit("block_put");
    put_u8(SEL_BLOCK_PUT);
    put(p, ctl_block_put_encode(&rkey, &grant, rec, 1, p, sizeof(p)));
    emit("block_put_one_byte");
    put_u8(SEL_BLOCK_PUT);
    put(p, ctl_block_put_encode(&rkey, &grant, rec, 0, p, sizeof(p)));
    emit("block_put_no_block");
    put_u8(SEL_BLOCK_PUT);
    put(p, ID_BYTES + LEASE_LEN - 1);
    emit("block_put_short_lease");

    /* BLOCK_GET: type | key */
    for (uint8_t t = 0; t <= 4; t++) {
        static const char *const names[] = {"block_get_type_0", "block_get_content",
                                            "block_get_root", "block_get_kv", "block_get_type_4"};
        put_u8(SEL_BLOCK_GET);
        put(p, ctl_block_get_encode(t, &key, p, sizeof(p)));
        emit(names[t]);
    }
    put_u8(SEL_BLOCK_GET);
    put(p, ctl_block_get_encode(1, &key, p, sizeof(p)) - 1);
    emit("block_get_short");
    put_u8(SEL_BLOCK_GET);
    put(p, ctl_block_get_encode(1, &key, p, sizeof(p)));
    put_u8(0);
    emit("block_get_trailing");

    /* ROOT_PUT: expected version | root block */
    rn = root_block(2, 32, rec);
    put_u8(SEL_ROOT_PUT);
    put(p, ctl_root_put_encode(1, rec, rn, p, sizeof(p)));
    emit("root_put");
    put_u8(SEL_ROOT_PUT);
    put(p, ctl_root_put_encode(UINT64_MAX, rec, rn, p, sizeof(p)));
    emit("root_put_any_version");
    rn = root_block(9, ROOT_MAX_PAYLOAD, rec);
    put_u8(SEL_ROOT_PUT);
    put(p, ctl_root_put_encode(8, rec, rn, p, sizeof(p)));
    emit("root_put_longest");
    rec[rn] = 0;
    put_u8(SEL_ROOT_PUT);
    put(p, ctl_root_put_encode(8, rec, rn + 1, p, sizeof(p)));
    emit("root_put_too_long");
    put_u8(SEL_ROOT_PUT);
    put(p, ctl_root_put_encode(1, rec, 0, p, sizeof(p)));
    emit("root_put_no_root");
    put_u8(SEL_ROOT_PUT);
    put(p, 7);
    emit("root_put_short");

    /* LEASE: key | lease */
    put_u8(SEL_LEASE);
    put(p, ctl_lease_encode(&key, &grant, p, sizeof(p)));
    emit("lease_renew");
    put_u8(SEL_LEASE);
    put(p, ctl_lease_encode(&key, &reclaim, p, sizeof(p)));
    emit("lease_reclaim");
    put_u8(SEL_LEASE);
    put(p, ctl_lease_encode(&key, &grant, p, sizeof(p)) - 1);
    emit("lease_short");
    put_u8(SEL_LEASE);
    put(p, ctl_lease_encode(&key, &grant, p, sizeof(p)));
    put_u8(0);
    emit("lease_trailing");
}

int main(int argc, char **argv)
{
    static char dir[512];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s/frame", argv[1]);
    if (make_dir(dir) != 0)
        return 1;
    out_dir = dir;
    gen_frame();
    snprintf(dir, sizeof(dir), "%s/net_msg", argv[1]);
    if (make_dir(dir) != 0)
        return 1;
    out_dir = dir;
    gen_net_msg();
    gen_block_msgs();
    return status;
}
