/* test_msg.c — the chord message codec (chord/msg.c).
 *
 * Every message type is encoded from representative values, decoded and
 * compared field by field, and re-encoded to the same bytes. Then each
 * encoding is damaged in the ways an untrusted peer could damage it, and
 * every damaged frame must be rejected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "chord/msg.h"
#include "common/wire.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define GUARD      0xee

/* Room for the largest message: a ROUTE with CHORD_ROUTE_MAX bytes of
 * payload, or a list of CHORD_SUCC_MAX IPv6 peers. */
#define BUF_MAX (FRAME_HEADER_SIZE + CHORD_ROUTE_MAX + 4096)

/* Offsets into an encoded frame (frame.h, msg.h). */
#define OFF_FRAME_FLAGS 5
#define OFF_TYPE        6
#define OFF_LENGTH      16
#define OFF_FLAGS       FRAME_HEADER_SIZE
#define OFF_SRC_FAMILY  (FRAME_HEADER_SIZE + 1 + ID_BYTES + ID_BYTES)

static uint8_t payload_bytes[CHORD_ROUTE_MAX + 1];
static uint8_t buf[BUF_MAX], buf2[BUF_MAX];

/* ---- building messages -------------------------------------------------- */

static struct id mkid(unsigned seed)
{
    struct id r;
    for (int i = 0; i < ID_BYTES; i++)
        r.b[i] = (uint8_t)(seed * 41 + (unsigned)i * 7);
    return r;
}

static struct chord_peer peer_v4(unsigned n)
{
    struct chord_peer p;
    p.id = mkid(n);
    addr_v4(&p.addr, 127, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, (uint16_t)(4000 + n));
    return p;
}

static struct chord_peer peer_v6(unsigned n)
{
    struct chord_peer p;
    p.id = mkid(n + 1000);
    memset(&p.addr, 0, sizeof(p.addr));
    p.addr.family = ADDR_V6;
    p.addr.port = (uint16_t)(65535 - n);
    static const uint8_t prefix[] = {0x20, 0x01, 0x0d, 0xb8};
    memcpy(p.addr.ip, prefix, sizeof(prefix));
    p.addr.ip[14] = (uint8_t)(n >> 8);
    p.addr.ip[15] = (uint8_t)n;
    return p;
}

struct msg_case {
    char name[48];
    struct chord_msg m;
};

static struct msg_case cases[64];
static size_t ncases;

/* Variant 0 is a plain request from an IPv4 node; variant 1 a reply with
 * CHORD_MF_ANY from an IPv6 node, with extreme ids and request id. */
static struct chord_msg *add_case(uint16_t type, unsigned variant, const char *what)
{
    assert_true(ncases < N_ELEMS(cases));
    struct msg_case *c = &cases[ncases++];
    struct chord_msg *m = &c->m;

    snprintf(c->name, sizeof(c->name), "%s/%u %s", chord_msg_name(type), variant, what);
    memset(m, 0, sizeof(*m));
    m->type = type;
    if (variant == 0) {
        m->request_id = 1;
        m->dst = mkid(1);
        m->src = peer_v4(1);
    } else {
        m->reply = true;
        m->request_id = UINT64_MAX;
        m->flags = CHORD_MF_ANY;
        memset(&m->dst, 0xff, sizeof(m->dst));
        m->src = peer_v6(2);
        memset(&m->src.id, 0, sizeof(m->src.id));
    }
    return m;
}

static void fill_peers(struct chord_msg *m, unsigned n)
{
    m->npeers = (uint8_t)n;
    for (unsigned i = 0; i < n; i++)
        m->peers[i] = i % 2 ? peer_v6(100 + i) : peer_v4(100 + i);
}

static void build_cases(void)
{
    struct chord_msg *m;

    ncases = 0;
    for (size_t i = 0; i < sizeof(payload_bytes); i++)
        payload_bytes[i] = (uint8_t)(i * 131 + (i >> 8));

    for (uint16_t t = CHORD_MSG_PEER_FIND; t <= CHORD_MSG_NO_SUCH_VNODE; t++) {
        for (unsigned v = 0; v < 2; v++) {
            m = add_case(t, v, "");
            switch (t) {
            case CHORD_MSG_PEER_FIND:
            case CHORD_MSG_PEER_FOUND:
                m->key = mkid(7 + v);
                m->has_peer = true; /* always present for these types */
                m->peer = v ? peer_v6(3) : peer_v4(3);
                m->hops = v ? UINT16_MAX : 0;
                break;
            case CHORD_MSG_PREDECESSOR_REPLY:
            case CHORD_MSG_LEAVE:
                m->has_peer = v;
                if (v)
                    m->peer = peer_v6(4);
                fill_peers(m, v ? CHORD_SUCC_MAX : 0);
                break;
            case CHORD_MSG_NEXT_HOP: m->key = mkid(9 + v); break;
            case CHORD_MSG_NEXT_HOP_REPLY:
                m->done = (uint8_t)v;
                fill_peers(m, v ? CHORD_SUCC_MAX : 1);
                break;
            case CHORD_MSG_ROUTE:
                m->key = mkid(11 + v);
                m->has_peer = true;
                m->peer = v ? peer_v6(5) : peer_v4(5);
                m->hops = (uint16_t)(v ? 3 : 0);
                m->app_type = (uint16_t)(v ? 0xbeef : 0);
                m->payload = v ? payload_bytes : NULL;
                m->payload_len = v ? 100 : 0;
                break;
            default: break; /* no body */
            }
        }
    }

    /* the other combinations of the optional peer and the lists */
    m = add_case(CHORD_MSG_PREDECESSOR_REPLY, 0, "pred, 1 succ");
    m->has_peer = true;
    m->peer = peer_v4(6);
    fill_peers(m, 1);
    m = add_case(CHORD_MSG_PREDECESSOR_REPLY, 1, "no pred, max succs");
    fill_peers(m, CHORD_SUCC_MAX);
    m = add_case(CHORD_MSG_LEAVE, 1, "pred, 16 succs");
    m->has_peer = true;
    m->peer = peer_v4(7);
    fill_peers(m, CHORD_SUCC_LEN);
    m = add_case(CHORD_MSG_NEXT_HOP_REPLY, 0, "no candidates");
    fill_peers(m, 0);
    m = add_case(CHORD_MSG_NEXT_HOP_REPLY, 1, "done, none");
    m->done = 1;
    m = add_case(CHORD_MSG_NEXT_HOP_REPLY, 0, "max candidates");
    fill_peers(m, CHORD_SUCC_MAX);

    /* the largest payload accepted */
    m = add_case(CHORD_MSG_ROUTE, 1, "max payload");
    m->key = mkid(13);
    m->has_peer = true;
    m->peer = peer_v4(8);
    m->hops = CHORD_MAX_HOPS;
    m->app_type = UINT16_MAX;
    m->payload = payload_bytes;
    m->payload_len = CHORD_ROUTE_MAX;
}

static int setup(void **state)
{
    (void)state;
    build_cases();
    return 0;
}

/* ---- comparing ---------------------------------------------------------- */

static bool peer_eq(const struct chord_peer *a, const struct chord_peer *b)
{
    /* struct addr has no padding holes (its pad byte is zero), so memcmp */
    return id_eq(&a->id, &b->id) && memcmp(&a->addr, &b->addr, sizeof(a->addr)) == 0;
}

#define CHECK_FIELD(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("%s: %s", name, #cond);                                                       \
    } while (0)

/* Fails unless every field of got equals want (fields the type does not use
 * must be zero in both). */
static void check_msg_equal(const struct chord_msg *got, const struct chord_msg *want,
                            const char *name)
{
    CHECK_FIELD(got->type == want->type);
    CHECK_FIELD(got->reply == want->reply);
    CHECK_FIELD(got->request_id == want->request_id);
    CHECK_FIELD(got->flags == want->flags);
    CHECK_FIELD(id_eq(&got->dst, &want->dst));
    CHECK_FIELD(peer_eq(&got->src, &want->src));
    CHECK_FIELD(id_eq(&got->key, &want->key));
    CHECK_FIELD(got->has_peer == want->has_peer);
    CHECK_FIELD(peer_eq(&got->peer, &want->peer));
    CHECK_FIELD(got->hops == want->hops);
    CHECK_FIELD(got->app_type == want->app_type);
    CHECK_FIELD(got->done == want->done);
    CHECK_FIELD(got->npeers == want->npeers);
    for (unsigned i = 0; i < want->npeers && i < CHORD_SUCC_MAX; i++)
        if (!peer_eq(&got->peers[i], &want->peers[i]))
            fail_msg("%s: peers[%u] differs", name, i);
    CHECK_FIELD(got->payload_len == want->payload_len);
    if (want->payload_len)
        CHECK_FIELD(memcmp(got->payload, want->payload, want->payload_len) == 0);
    if (got->type != CHORD_MSG_ROUTE)
        CHECK_FIELD(got->payload == NULL);
}

/* Decodes bytes known to be good into *out (pre-filled with junk, to show
 * that decode sets every field). */
static void decode_ok(const uint8_t *b, size_t len, struct chord_msg *out, const char *name)
{
    memset(out, 0xa5, sizeof(*out));
    int rc = chord_msg_decode(b, len, out);
    if (rc != 0)
        fail_msg("%s: decode failed with %d", name, rc);
}

/* Decodes bytes that must be rejected with want. */
static void decode_err(const uint8_t *b, size_t len, int want, const char *name, const char *what)
{
    struct chord_msg m;
    int rc = chord_msg_decode(b, len, &m);
    if (rc != want)
        fail_msg("%s: %s: decode returned %d, want %d", name, what, rc, want);
}

static size_t encode_ok(const struct chord_msg *m, uint8_t *b, const char *name)
{
    size_t n = chord_msg_encode(m, b, BUF_MAX);
    if (n == 0)
        fail_msg("%s: encode failed", name);
    return n;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Sets the frame header's payload length. */
static void set_frame_len(uint8_t *b, size_t payload_len)
{
    put_be32(b + OFF_LENGTH, (uint32_t)payload_len);
}

/* Offset of the type's body: after flags, dst and src. */
static size_t body_off(const struct chord_msg *m)
{
    return OFF_SRC_FAMILY + wire_addr_size(&m->src.addr);
}

/* Offset of the npeers byte of a type that has a list, after the optional
 * peer or the done byte. */
static size_t npeers_off(const struct chord_msg *m)
{
    size_t off = body_off(m) + 1;
    if (m->type != CHORD_MSG_NEXT_HOP_REPLY && m->has_peer)
        off += ID_BYTES + wire_addr_size(&m->peer.addr);
    return off;
}

static bool has_list(uint16_t type)
{
    return type == CHORD_MSG_PREDECESSOR_REPLY || type == CHORD_MSG_LEAVE ||
           type == CHORD_MSG_NEXT_HOP_REPLY;
}

/* ---- round trips -------------------------------------------------------- */

static void test_msg_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        struct chord_msg m1, m2;

        assert_true(chord_msg_size_bound(&c->m) <= BUF_MAX);
        size_t n = encode_ok(&c->m, buf, c->name);
        if (n > chord_msg_size_bound(&c->m))
            fail_msg("%s: %zu bytes, above the bound %zu", c->name, n, chord_msg_size_bound(&c->m));

        /* the header says what the message says */
        struct frame_header h;
        assert_int_equal(frame_header_decode(buf, n, &h), 0);
        assert_int_equal(h.type, c->m.type);
        assert_int_equal(h.flags, c->m.reply ? FRAME_F_REPLY : 0);
        assert_true(h.request_id == c->m.request_id);
        assert_int_equal(h.length, n - FRAME_HEADER_SIZE);

        decode_ok(buf, n, &m1, c->name);
        check_msg_equal(&m1, &c->m, c->name);
        if (m1.type == CHORD_MSG_ROUTE) {
            /* the payload points into the decoded buffer */
            assert_true(m1.payload >= buf + body_off(&m1));
            assert_true(m1.payload + m1.payload_len == buf + n);
        }

        /* decode -> encode -> decode: same bytes, same message */
        size_t n2 = encode_ok(&m1, buf2, c->name);
        assert_int_equal(n2, n);
        assert_memory_equal(buf2, buf, n);
        decode_ok(buf2, n2, &m2, c->name);
        check_msg_equal(&m2, &m1, c->name);

        /* an exactly sized buffer is enough */
        memset(buf2, GUARD, n + 1);
        assert_int_equal(chord_msg_encode(&c->m, buf2, n), n);
        assert_memory_equal(buf2, buf, n);
        assert_int_equal(buf2[n], GUARD);
    }
}

/* The wire layout pinned down byte by byte, independently of common/wire.c. */
struct bytes {
    uint8_t b[256];
    size_t n;
};

static void b_put(struct bytes *w, const void *p, size_t len)
{
    assert_true(w->n + len <= sizeof(w->b));
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

static void b_u8(struct bytes *w, uint8_t v)
{
    b_put(w, &v, 1);
}

static void b_u16(struct bytes *w, uint16_t v)
{
    b_u8(w, (uint8_t)(v >> 8));
    b_u8(w, (uint8_t)v);
}

static void b_u32(struct bytes *w, uint32_t v)
{
    b_u16(w, (uint16_t)(v >> 16));
    b_u16(w, (uint16_t)v);
}

static void b_u64(struct bytes *w, uint64_t v)
{
    b_u32(w, (uint32_t)(v >> 32));
    b_u32(w, (uint32_t)v);
}

static void test_msg_golden(void **state)
{
    struct chord_msg m;
    struct bytes want = {{0}, 0};
    uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 9};
    (void)state;

    /* ROUTE, a reply (unusual but legal), from 127.0.0.1:4000 to a vnode
     * of a node at [2001:db8::9]:5 */
    memset(&m, 0, sizeof(m));
    m.type = CHORD_MSG_ROUTE;
    m.reply = true;
    m.request_id = 0x0102030405060708u;
    m.flags = CHORD_MF_ANY;
    m.dst = mkid(1);
    m.src.id = mkid(2);
    addr_v4(&m.src.addr, 127, 0, 0, 1, 4000);
    m.key = mkid(3);
    m.has_peer = true;
    m.peer.id = mkid(4);
    m.peer.addr.family = ADDR_V6;
    m.peer.addr.port = 5;
    memcpy(m.peer.addr.ip, ip6, 16);
    m.hops = 0x1234;
    m.app_type = 0xabcd;
    m.payload = (const uint8_t *)"hello";
    m.payload_len = 5;

    size_t len = 1 + 32 + 32 + 7 + 32 + 32 + 19 + 2 + 2 + 4 + 5;
    b_u32(&want, 0x434f4f50); /* "COOP" */
    b_u8(&want, 1);           /* version */
    b_u8(&want, 0x01);        /* FRAME_F_REPLY */
    b_u16(&want, 1062);       /* ROUTE */
    b_u64(&want, 0x0102030405060708u);
    b_u32(&want, (uint32_t)len);
    b_u8(&want, 0x01); /* CHORD_MF_ANY */
    b_put(&want, m.dst.b, 32);
    b_put(&want, m.src.id.b, 32);
    b_u8(&want, 4);
    b_u16(&want, 4000);
    b_put(&want, (const uint8_t[]){127, 0, 0, 1}, 4);
    b_put(&want, m.key.b, 32);
    b_put(&want, m.peer.id.b, 32);
    b_u8(&want, 6);
    b_u16(&want, 5);
    b_put(&want, ip6, 16);
    b_u16(&want, 0x1234);
    b_u16(&want, 0xabcd);
    b_u32(&want, 5);
    b_put(&want, "hello", 5);
    assert_int_equal(want.n, FRAME_HEADER_SIZE + len);

    size_t n = chord_msg_encode(&m, buf, BUF_MAX);
    assert_int_equal(n, want.n);
    assert_memory_equal(buf, want.b, n);

    /* PING, a request: the common prefix and nothing else */
    memset(&m, 0, sizeof(m));
    m.type = CHORD_MSG_PING;
    m.request_id = 42;
    m.dst = mkid(5);
    m.src.id = mkid(6);
    addr_v4(&m.src.addr, 192, 168, 1, 1, 1);
    want.n = 0;
    b_u32(&want, 0x434f4f50);
    b_u8(&want, 1);
    b_u8(&want, 0);
    b_u16(&want, 1056);
    b_u64(&want, 42);
    b_u32(&want, 1 + 32 + 32 + 7);
    b_u8(&want, 0);
    b_put(&want, m.dst.b, 32);
    b_put(&want, m.src.id.b, 32);
    b_u8(&want, 4);
    b_u16(&want, 1);
    b_put(&want, (const uint8_t[]){192, 168, 1, 1}, 4);
    n = chord_msg_encode(&m, buf, BUF_MAX);
    assert_int_equal(n, want.n);
    assert_memory_equal(buf, want.b, n);
}

/* ---- rejections --------------------------------------------------------- */

static void test_msg_truncated(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        size_t n = encode_ok(&c->m, buf, c->name);
        char what[64];

        /* cut short, the header still claiming the full length */
        for (size_t len = 0; len < n; len++) {
            snprintf(what, sizeof(what), "cut to %zu of %zu", len, n);
            decode_err(buf, len, CHORD_ERR_MALFORMED, c->name, what);
        }

        /* cut short with a header that agrees, so the body parser meets the
         * end: every proper prefix of a payload is malformed */
        for (size_t k = 0; k < n - FRAME_HEADER_SIZE; k++) {
            set_frame_len(buf, k);
            snprintf(what, sizeof(what), "payload cut to %zu of %zu", k, n - FRAME_HEADER_SIZE);
            decode_err(buf, FRAME_HEADER_SIZE + k, CHORD_ERR_MALFORMED, c->name, what);
        }
        set_frame_len(buf, n - FRAME_HEADER_SIZE);
    }
}

static void test_msg_trailing(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        size_t n = encode_ok(&c->m, buf, c->name);

        buf[n] = 0;
        /* a byte after the frame */
        decode_err(buf, n + 1, CHORD_ERR_MALFORMED, c->name, "byte after the frame");
        /* a byte after the body, inside the frame */
        set_frame_len(buf, n + 1 - FRAME_HEADER_SIZE);
        decode_err(buf, n + 1, CHORD_ERR_MALFORMED, c->name, "byte after the body");
    }
}

static void test_msg_bad_flags(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        size_t n = encode_ok(&c->m, buf, c->name);
        uint8_t orig = buf[OFF_FLAGS];

        for (unsigned bit = 1; bit < 8; bit++) {
            char what[32];
            snprintf(what, sizeof(what), "flags bit %u", bit);
            buf[OFF_FLAGS] = (uint8_t)(orig | 1u << bit);
            decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, what);
            buf[OFF_FLAGS] = (uint8_t)(1u << bit);
            decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, what);
        }
        buf[OFF_FLAGS] = 0xff;
        decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, "flags 0xff");
    }
}

static void test_msg_bad_family(void **state)
{
    static const uint8_t fams[] = {ADDR_NONE, 1, 5, 255};
    (void)state;

    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        const struct chord_msg *m = &c->m;
        size_t n = encode_ok(m, buf, c->name);
        size_t offs[4], noffs = 0;

        offs[noffs++] = OFF_SRC_FAMILY;
        if (m->type == CHORD_MSG_PEER_FIND || m->type == CHORD_MSG_PEER_FOUND ||
            m->type == CHORD_MSG_ROUTE)
            offs[noffs++] = body_off(m) + 2 * ID_BYTES; /* key, then the peer's id */
        if (has_list(m->type) && m->type != CHORD_MSG_NEXT_HOP_REPLY && m->has_peer)
            offs[noffs++] = body_off(m) + 1 + ID_BYTES;
        if (has_list(m->type) && m->npeers)
            offs[noffs++] = npeers_off(m) + 1 + ID_BYTES; /* peers[0] */

        for (size_t k = 0; k < noffs; k++) {
            uint8_t orig = buf[offs[k]];
            if (orig != ADDR_V4 && orig != ADDR_V6)
                fail_msg("%s: no family byte at %zu (%u)", c->name, offs[k], orig);
            for (size_t f = 0; f < N_ELEMS(fams); f++) {
                char what[48];
                snprintf(what, sizeof(what), "family %u at %zu", fams[f], offs[k]);
                buf[offs[k]] = fams[f];
                decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, what);
            }
            buf[offs[k]] = orig;
        }
    }
}

static void test_msg_bad_has_peer_and_done(void **state)
{
    static const uint8_t bad[] = {2, 3, 0x80, 0xff};
    (void)state;

    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        if (!has_list(c->m.type))
            continue;
        size_t n = encode_ok(&c->m, buf, c->name);
        size_t off = body_off(&c->m); /* has_peer, or done */
        uint8_t orig = buf[off];
        for (size_t k = 0; k < N_ELEMS(bad); k++) {
            char what[32];
            snprintf(what, sizeof(what), "%s byte %u",
                     c->m.type == CHORD_MSG_NEXT_HOP_REPLY ? "done" : "has_peer", bad[k]);
            buf[off] = bad[k];
            decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, what);
        }
        buf[off] = orig;
    }
}

/* A list of CHORD_SUCC_MAX + 1 well-formed peers is refused. */
static void test_msg_too_many_peers(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        if (!has_list(c->m.type) || c->m.npeers != CHORD_SUCC_MAX)
            continue;
        size_t n = encode_ok(&c->m, buf, c->name);
        size_t off = npeers_off(&c->m);
        assert_int_equal(buf[off], CHORD_SUCC_MAX);

        /* append one more peer and count it */
        struct wire_writer w;
        struct chord_peer extra = peer_v4(77);
        wire_writer_init(&w, buf + n, BUF_MAX - n);
        wire_put_id(&w, &extra.id);
        wire_put_addr(&w, &extra.addr);
        assert_true(wire_writer_ok(&w));
        buf[off] = CHORD_SUCC_MAX + 1;
        set_frame_len(buf, n + w.len - FRAME_HEADER_SIZE);
        decode_err(buf, n + w.len, CHORD_ERR_MALFORMED, c->name, "npeers = CHORD_SUCC_MAX + 1");

        /* and the most a byte can say */
        buf[off] = 0xff;
        decode_err(buf, n + w.len, CHORD_ERR_MALFORMED, c->name, "npeers = 255");

        /* the control: with the count put back, the extra bytes trail */
        buf[off] = CHORD_SUCC_MAX;
        decode_err(buf, n + w.len, CHORD_ERR_MALFORMED, c->name, "one peer too many");
        set_frame_len(buf, n - FRAME_HEADER_SIZE);
        struct chord_msg m;
        decode_ok(buf, n, &m, c->name);
    }

    /* the encoder refuses too */
    struct chord_msg m = cases[0].m;
    for (uint16_t t = CHORD_MSG_PEER_FIND; t <= CHORD_MSG_NO_SUCH_VNODE; t++) {
        if (!has_list(t))
            continue;
        m.type = t;
        fill_peers(&m, CHORD_SUCC_MAX);
        assert_int_not_equal(chord_msg_encode(&m, buf, BUF_MAX), 0);
        m.npeers = CHORD_SUCC_MAX + 1;
        assert_int_equal(chord_msg_encode(&m, buf, BUF_MAX), 0);
        m.npeers = 255;
        assert_int_equal(chord_msg_encode(&m, buf, BUF_MAX), 0);
    }
}

static void test_msg_bad_type(void **state)
{
    static const uint16_t types[] = {
        0, 1, CHORD_MSG_PEER_FIND - 1, CHORD_MSG_NO_SUCH_VNODE + 1, 0x8000, 0xffff};
    (void)state;

    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        size_t n = encode_ok(&c->m, buf, c->name);
        for (size_t k = 0; k < N_ELEMS(types); k++) {
            char what[32];
            snprintf(what, sizeof(what), "type %u", types[k]);
            buf[OFF_TYPE] = (uint8_t)(types[k] >> 8);
            buf[OFF_TYPE + 1] = (uint8_t)types[k];
            decode_err(buf, n, CHORD_ERR_TYPE, c->name, what);
        }
    }

    /* whatever the payload */
    uint8_t hdr[FRAME_HEADER_SIZE];
    struct frame_header h = {FRAME_VERSION, 0, CHORD_MSG_NO_SUCH_VNODE + 1, 0, 0};
    frame_header_encode(&h, hdr);
    decode_err(hdr, sizeof(hdr), CHORD_ERR_TYPE, "empty frame", "type 1064");

    /* and the encoder refuses them */
    for (size_t k = 0; k < N_ELEMS(types); k++) {
        struct chord_msg m = cases[0].m;
        m.type = types[k];
        assert_int_equal(chord_msg_encode(&m, buf, BUF_MAX), 0);
    }
}

static void test_msg_bad_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        size_t n = encode_ok(&c->m, buf, c->name);

        buf[0] ^= 1;
        decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, "magic");
        buf[0] ^= 1;
        buf[4] = FRAME_VERSION + 1;
        decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, "version");
        buf[4] = FRAME_VERSION;
        set_frame_len(buf, FRAME_MAX_PAYLOAD + 1);
        decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, "length above the max");
        set_frame_len(buf, UINT32_MAX);
        decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, "length 2^32-1");
    }
}

static void test_msg_route_payload_limit(void **state)
{
    const struct msg_case *c = NULL;
    (void)state;

    for (size_t i = 0; i < ncases; i++)
        if (cases[i].m.type == CHORD_MSG_ROUTE && cases[i].m.payload_len == CHORD_ROUTE_MAX)
            c = &cases[i];
    assert_non_null(c);

    /* CHORD_ROUTE_MAX + 1 bytes, with the lengths all agreeing */
    size_t n = encode_ok(&c->m, buf, c->name);
    size_t len_off = n - CHORD_ROUTE_MAX - 4;
    put_be32(buf + len_off, CHORD_ROUTE_MAX + 1);
    buf[n] = 0x42;
    set_frame_len(buf, n + 1 - FRAME_HEADER_SIZE);
    decode_err(buf, n + 1, CHORD_ERR_MALFORMED, c->name, "payload CHORD_ROUTE_MAX + 1");

    /* a payload length far beyond the frame */
    put_be32(buf + len_off, UINT32_MAX);
    decode_err(buf, n + 1, CHORD_ERR_MALFORMED, c->name, "payload length 2^32-1");

    /* a payload length that disagrees with what follows */
    struct chord_msg m = c->m;
    m.payload_len = 10;
    n = encode_ok(&m, buf, c->name);
    put_be32(buf + n - 10 - 4, 11);
    decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, "payload length past the end");
    put_be32(buf + n - 10 - 4, 9);
    decode_err(buf, n, CHORD_ERR_MALFORMED, c->name, "payload length short of the end");

    /* the encoder refuses an oversized payload */
    m = c->m;
    m.payload_len = CHORD_ROUTE_MAX + 1;
    assert_int_equal(chord_msg_encode(&m, buf, BUF_MAX), 0);
}

/* ---- encoder errors ----------------------------------------------------- */

static void test_msg_encode_small_buffer(void **state)
{
    (void)state;
    for (size_t i = 0; i < ncases; i++) {
        const struct msg_case *c = &cases[i];
        size_t n = encode_ok(&c->m, buf2, c->name);

        /* caps in ascending order, so a failed attempt can only have
         * written below every later cap */
        memset(buf, GUARD, n + 16);
        for (size_t cap = 0; cap < n; cap++) {
            if (cap > 512 && cap < n - 512)
                cap = n - 512; /* the middle of a big message says nothing new */
            if (chord_msg_encode(&c->m, buf, cap) != 0)
                fail_msg("%s: encode into %zu of %zu bytes succeeded", c->name, cap, n);
            for (size_t k = cap; k < n + 16; k++)
                if (buf[k] != GUARD)
                    fail_msg("%s: cap %zu: byte %zu written", c->name, cap, k);
        }
    }
}

static void test_msg_encode_invalid(void **state)
{
    struct chord_msg m;
    (void)state;

    /* an address without a family, wherever it is encoded */
    m = cases[0].m;
    m.src.addr.family = ADDR_NONE;
    assert_int_equal(chord_msg_encode(&m, buf, BUF_MAX), 0);

    for (size_t i = 0; i < ncases; i++) {
        m = cases[i].m;
        if (m.type == CHORD_MSG_PEER_FIND || m.type == CHORD_MSG_PEER_FOUND ||
            m.type == CHORD_MSG_ROUTE ||
            (has_list(m.type) && m.has_peer && m.type != CHORD_MSG_NEXT_HOP_REPLY)) {
            m.peer.addr.family = 5;
            if (chord_msg_encode(&m, buf, BUF_MAX) != 0)
                fail_msg("%s: peer with family 5 encoded", cases[i].name);
        }
        m = cases[i].m;
        if (has_list(m.type) && m.npeers) {
            m.peers[m.npeers - 1].addr.family = ADDR_NONE;
            if (chord_msg_encode(&m, buf, BUF_MAX) != 0)
                fail_msg("%s: list peer without family encoded", cases[i].name);
        }
    }

    /* an absent predecessor is not encoded, so its address does not matter */
    for (size_t i = 0; i < ncases; i++) {
        m = cases[i].m;
        if (has_list(m.type) && m.type != CHORD_MSG_NEXT_HOP_REPLY && !m.has_peer) {
            m.peer.addr.family = 5;
            assert_int_not_equal(chord_msg_encode(&m, buf, BUF_MAX), 0);
        }
    }
}

static void test_msg_names(void **state)
{
    (void)state;
    for (uint16_t t = CHORD_MSG_PEER_FIND; t <= CHORD_MSG_NO_SUCH_VNODE; t++) {
        const char *s = chord_msg_name(t);
        assert_non_null(s);
        assert_string_not_equal(s, "?");
        for (uint16_t u = CHORD_MSG_PEER_FIND; u < t; u++)
            assert_string_not_equal(s, chord_msg_name(u));
    }
    assert_string_equal(chord_msg_name(CHORD_MSG_PEER_FIND), "PEER_FIND");
    assert_string_equal(chord_msg_name(CHORD_MSG_NO_SUCH_VNODE), "NO_SUCH_VNODE");
    assert_string_equal(chord_msg_name(0), "?");
    assert_string_equal(chord_msg_name(CHORD_MSG_PEER_FIND - 1), "?");
    assert_string_equal(chord_msg_name(CHORD_MSG_NO_SUCH_VNODE + 1), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_round_trip),
        cmocka_unit_test(test_msg_golden),
        cmocka_unit_test(test_msg_truncated),
        cmocka_unit_test(test_msg_trailing),
        cmocka_unit_test(test_msg_bad_flags),
        cmocka_unit_test(test_msg_bad_family),
        cmocka_unit_test(test_msg_bad_has_peer_and_done),
        cmocka_unit_test(test_msg_too_many_peers),
        cmocka_unit_test(test_msg_bad_type),
        cmocka_unit_test(test_msg_bad_header),
        cmocka_unit_test(test_msg_route_payload_limit),
        cmocka_unit_test(test_msg_encode_small_buffer),
        cmocka_unit_test(test_msg_encode_invalid),
        cmocka_unit_test(test_msg_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
