/* test_input.c — chord_input (chord/node.c) against bad and misdirected
 * input: damaged frames are rejected with CHORD_ERR_MALFORMED or
 * CHORD_ERR_TYPE, counted, and change nothing; requests for a vnode the
 * node does not host get NO_SUCH_VNODE; replies from anyone but the peer
 * asked are ignored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Offsets into an encoded frame (frame.h, msg.h). */
#define OFF_VERSION    4
#define OFF_TYPE       6
#define OFF_LENGTH     16
#define OFF_FLAGS      FRAME_HEADER_SIZE
#define OFF_SRC_FAMILY (FRAME_HEADER_SIZE + 1 + ID_BYTES + ID_BYTES)
/* After the prefix with an IPv4 source: flags, dst, src id, family, port, ip. */
#define OFF_BODY (FRAME_HEADER_SIZE + 1 + ID_BYTES + ID_BYTES + 1 + 2 + 4)

struct ifix {
    struct harness h;
    struct chord_peer p, a, b, c, d;
};

static int setup(void **state)
{
    struct ifix *f = calloc(1, sizeof(*f));
    struct chord_config cfg;
    struct addr boot;
    struct chord_msg m;
    h_config(&cfg, 1);
    h_config_quiet(&cfg);
    h_init(&f->h, &cfg);
    h_peer(&f->h, 0xf0, &f->p);
    h_peer(&f->h, 0x10, &f->a);
    h_peer(&f->h, 0x20, &f->b);
    h_peer(&f->h, 0x30, &f->c);
    h_peer(&f->h, 0x40, &f->d);
    h_bootstrap(&boot);
    assert_int_equal(chord_join(f->h.c, &boot), 0);
    struct chord_peer list[2] = {f->b, f->c};
    h_join(&f->h, &f->a, NULL, list, 2);
    h_msg(&f->h, &m, CHORD_MSG_PREDECESSOR_SET, &f->p);
    assert_int_equal(h_feed(&f->h, &m), 0);
    h_run(&f->h, 0);
    h_clear(&f->h);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct ifix *f = *state;
    h_release(&f->h);
    free(f);
    return 0;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- damaged frames ---------------------------------------------------- */

enum damage {
    D_EMPTY,
    D_SHORT_HEADER,
    D_HEADER_ONLY,
    D_TRUNCATED,
    D_TRAILING,
    D_GARBAGE,
    D_MAGIC,
    D_VERSION,
    D_TOO_BIG,
    D_TYPE_BELOW,
    D_TYPE_ABOVE,
    D_TYPE_ZERO,
    D_TYPE_MAX,
    D_CHORD_FLAGS,
    D_SRC_FAMILY,
    D_HAS_PEER,
    D_NPEERS,
    D_DONE,
};

static const struct {
    const char *name;
    enum damage d;
    uint16_t type; /* of the frame damaged */
    int rc;
} damage_cases[] = {
    {"empty", D_EMPTY, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"shorter than a header", D_SHORT_HEADER, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"header without its payload", D_HEADER_ONLY, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"truncated by one byte", D_TRUNCATED, CHORD_MSG_PREDECESSOR_GET, CHORD_ERR_MALFORMED},
    {"a trailing byte", D_TRAILING, CHORD_MSG_PREDECESSOR_GET, CHORD_ERR_MALFORMED},
    {"garbage", D_GARBAGE, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"wrong magic", D_MAGIC, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"wrong version", D_VERSION, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"length above the limit", D_TOO_BIG, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"type below the chord range", D_TYPE_BELOW, CHORD_MSG_PING, CHORD_ERR_TYPE},
    {"type above the chord range", D_TYPE_ABOVE, CHORD_MSG_PING, CHORD_ERR_TYPE},
    {"type 0", D_TYPE_ZERO, CHORD_MSG_PING, CHORD_ERR_TYPE},
    {"type 65535", D_TYPE_MAX, CHORD_MSG_PING, CHORD_ERR_TYPE},
    {"unknown chord flag", D_CHORD_FLAGS, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"bad source address family", D_SRC_FAMILY, CHORD_MSG_PING, CHORD_ERR_MALFORMED},
    {"has-predecessor flag 2", D_HAS_PEER, CHORD_MSG_PREDECESSOR_REPLY, CHORD_ERR_MALFORMED},
    {"33 successors", D_NPEERS, CHORD_MSG_PREDECESSOR_REPLY, CHORD_ERR_MALFORMED},
    {"done flag 2", D_DONE, CHORD_MSG_NEXT_HOP_REPLY, CHORD_ERR_MALFORMED},
};

/* Builds a frame of the given type from A that, undamaged, the node would
 * act on (a request to it, or the reply to its pending stabilize), then
 * damages it. Returns the damaged length. */
static size_t damaged_frame(struct ifix *f, uint16_t type, enum damage d,
                            const struct chord_msg *stab, uint8_t *buf, size_t cap)
{
    struct chord_msg m;
    size_t n;

    if (type == CHORD_MSG_PREDECESSOR_REPLY || type == CHORD_MSG_NEXT_HOP_REPLY) {
        h_reply(&m, stab, type, &f->a);
        m.npeers = 1;
        m.peers[0] = f->d;
    } else {
        h_msg(&f->h, &m, type, &f->a);
    }
    n = h_encode(&m, buf, cap);
    switch (d) {
    case D_EMPTY: return 0;
    case D_SHORT_HEADER: return FRAME_HEADER_SIZE - 1;
    case D_HEADER_ONLY: return FRAME_HEADER_SIZE;
    case D_TRUNCATED: return n - 1;
    case D_TRAILING:
        buf[n] = 0;
        put_u32(buf + OFF_LENGTH, (uint32_t)(n - FRAME_HEADER_SIZE)); /* unchanged */
        return n + 1;
    case D_GARBAGE:
        for (size_t i = 0; i < 64; i++)
            buf[i] = (uint8_t)(i * 37 + 11);
        return 64;
    case D_MAGIC: buf[0] ^= 0xff; return n;
    case D_VERSION: buf[OFF_VERSION] = FRAME_VERSION + 1; return n;
    case D_TOO_BIG: put_u32(buf + OFF_LENGTH, FRAME_MAX_PAYLOAD + 1); return n;
    case D_TYPE_BELOW: put_u16(buf + OFF_TYPE, CHORD_MSG_PEER_FIND - 1); return n;
    case D_TYPE_ABOVE: put_u16(buf + OFF_TYPE, CHORD_MSG_NO_SUCH_VNODE + 1); return n;
    case D_TYPE_ZERO: put_u16(buf + OFF_TYPE, 0); return n;
    case D_TYPE_MAX: put_u16(buf + OFF_TYPE, 0xffff); return n;
    case D_CHORD_FLAGS: buf[OFF_FLAGS] = 0x02; return n;
    case D_SRC_FAMILY: buf[OFF_SRC_FAMILY] = 5; return n;
    case D_HAS_PEER: buf[OFF_BODY] = 2; return n;
    case D_NPEERS: buf[OFF_BODY + 1] = CHORD_SUCC_MAX + 1; return n;
    case D_DONE: buf[OFF_BODY] = 2; return n;
    }
    return n;
}

static void test_damaged_frames_rejected(void **state)
{
    struct ifix *f = *state;
    struct chord_msg stab;
    struct chord_peer exp[3] = {f->a, f->b, f->c};
    uint8_t buf[H_FRAME_MAX];

    /* A stabilize in flight, so that damaged replies have something to
     * match. */
    assert_true(
        h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, 2 * CHORD_STABILIZE_MS, &stab) >= 0);
    for (size_t i = 0; i < N_ELEMS(damage_cases); i++) {
        struct chord_stats st0, st1;
        print_message("  case: %s\n", damage_cases[i].name);
        size_t n =
            damaged_frame(f, damage_cases[i].type, damage_cases[i].d, &stab, buf, sizeof(buf) - 1);
        uint64_t deadline = chord_next_deadline(f->h.c);
        unsigned updates = f->h.updates;
        chord_get_stats(f->h.c, &st0);
        h_clear(&f->h);
        assert_int_equal(h_feed_raw(&f->h, &f->a.addr, buf, n), damage_cases[i].rc);
        chord_get_stats(f->h.c, &st1);
        assert_int_equal(st1.bad_frames - st0.bad_frames, 1);
        assert_int_equal(st1.msgs_in, st0.msgs_in);
        assert_int_equal(f->h.nout, 0);
        assert_int_equal(f->h.updates, updates);
        assert_int_equal(chord_next_deadline(f->h.c), deadline);
        h_assert_succ(&f->h, exp, 3);
        h_assert_pred(&f->h, &f->p);
    }
    /* The stabilize is still pending: A's real answer is taken. */
    struct chord_msg rep;
    struct chord_peer exp2[2] = {f->a, f->d};
    h_reply(&rep, &stab, CHORD_MSG_PREDECESSOR_REPLY, &f->a);
    rep.npeers = 1;
    rep.peers[0] = f->d;
    assert_int_equal(h_feed(&f->h, &rep), 0);
    h_assert_succ(&f->h, exp2, 2);
    /* And the node still answers. */
    struct chord_msg ping;
    h_clear(&f->h);
    h_msg(&f->h, &ping, CHORD_MSG_PING, &f->b);
    assert_int_equal(h_feed(&f->h, &ping), 0);
    assert_true(h_find(&f->h, CHORD_MSG_PONG, &f->b.addr, NULL) >= 0);
}

/* Every prefix of a valid frame is rejected without an answer; a frame
 * with one header byte flipped is rejected or, if still valid (the
 * request id, an unused flag bit), handled as what it still is. */
static void test_prefixes_and_header_flips(void **state)
{
    struct ifix *f = *state;
    struct chord_msg m;
    uint8_t buf[H_FRAME_MAX], dam[H_FRAME_MAX];
    struct chord_peer exp[3] = {f->a, f->b, f->c};

    h_msg(&f->h, &m, CHORD_MSG_LEAVE, &f->a);
    m.has_peer = true;
    m.peer = *h_self(&f->h);
    m.npeers = 2;
    m.peers[0] = f->b;
    m.peers[1] = f->c;
    size_t n = h_encode(&m, buf, sizeof(buf));
    for (size_t k = 0; k < n; k++) {
        h_clear(&f->h);
        assert_int_equal(h_feed_raw(&f->h, &f->a.addr, buf, k), CHORD_ERR_MALFORMED);
        assert_int_equal(f->h.nout, 0);
    }

    h_msg(&f->h, &m, CHORD_MSG_PING, &f->a);
    n = h_encode(&m, buf, sizeof(buf));
    for (size_t k = 0; k < FRAME_HEADER_SIZE; k++) {
        memcpy(dam, buf, n);
        dam[k] ^= 0x40;
        h_clear(&f->h);
        int rc = h_feed_raw(&f->h, &f->a.addr, dam, n);
        if (k >= 8 && k < 16) /* the request id: any value is valid */
            assert_int_equal(rc, 0);
        else if (k == OFF_TYPE || k == OFF_TYPE + 1)
            assert_int_equal(rc, CHORD_ERR_TYPE);
        else if (k != 5) /* frame flags: only the reply bit has a meaning */
            assert_int_equal(rc, CHORD_ERR_MALFORMED);
        if (rc != 0)
            assert_int_equal(f->h.nout, 0);
    }
    h_assert_succ(&f->h, exp, 3);
    h_assert_pred(&f->h, &f->p);
}

/* ---- misdirected requests ---------------------------------------------- */

static void test_unknown_vnode_gets_no_such_vnode(void **state)
{
    static const uint16_t types[] = {
        CHORD_MSG_PING,     CHORD_MSG_PREDECESSOR_GET, CHORD_MSG_PEER_FIND,
        CHORD_MSG_NEXT_HOP, CHORD_MSG_LEAVE,
    };
    struct ifix *f = *state;
    struct chord_peer exp[3] = {f->a, f->b, f->c};

    for (size_t i = 0; i < N_ELEMS(types); i++) {
        struct chord_msg m, rep;
        print_message("  %s\n", chord_msg_name(types[i]));
        h_msg(&f->h, &m, types[i], &f->d);
        m.request_id = 1000 + i;
        h_id_off(&m.dst, &h_self(&f->h)->id, 0x01); /* nobody here */
        if (types[i] == CHORD_MSG_PEER_FIND) {
            h_id_off(&m.key, &h_self(&f->h)->id, 0x80);
            m.peer = f->d;
            m.has_peer = true;
            m.hops = 1;
        }
        if (types[i] == CHORD_MSG_LEAVE) {
            m.has_peer = true;
            m.peer = *h_self(&f->h);
        }
        h_clear(&f->h);
        assert_int_equal(h_feed(&f->h, &m), 0);
        assert_int_equal(f->h.nout, 1);
        assert_true(h_find(&f->h, CHORD_MSG_NO_SUCH_VNODE, &f->d.addr, &rep) >= 0);
        assert_true(rep.reply);
        assert_int_equal(rep.request_id, m.request_id);
        assert_true(id_eq(&rep.src.id, &m.dst)); /* the vnode asked for */
        assert_true(addr_eq(&rep.src.addr, &f->h.cfg.self));
        assert_true(id_eq(&rep.dst, &f->d.id));
        h_assert_succ(&f->h, exp, 3);
        h_assert_pred(&f->h, &f->p);
    }
}

/* A node that has not started answers nothing. */
static void test_not_started_silent(void **state)
{
    struct harness h;
    struct chord_config cfg;
    struct chord_peer a;
    struct chord_msg m;
    (void)state;

    h_config(&cfg, 1);
    h_init(&h, &cfg);
    h_peer(&h, 0x10, &a);
    h_msg(&h, &m, CHORD_MSG_PING, &a);
    assert_int_equal(h_feed(&h, &m), 0);
    assert_int_equal(h.nout, 0);
    h_release(&h);
}

/* ---- replies ----------------------------------------------------------- */

/* The stabilize reply must come from A itself: the same request id from
 * another node, or from another vnode at A's address, is ignored, as is
 * a reply to a request never made; A's own reply is then still taken. */
static void test_reply_from_other_peer_ignored(void **state)
{
    struct ifix *f = *state;
    struct chord_msg get, rep;
    struct chord_peer a2, exp[3] = {f->a, f->b, f->c}, exp2[2] = {f->a, f->d};

    h_peer_at_addr(&f->h, 0x18, &f->a.addr, &a2);
    assert_true(
        h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, 2 * CHORD_STABILIZE_MS, &get) >= 0);
    const struct chord_peer *liars[] = {&f->b, &a2, &f->p};
    for (size_t i = 0; i < N_ELEMS(liars); i++) {
        h_reply(&rep, &get, CHORD_MSG_PREDECESSOR_REPLY, liars[i]);
        rep.has_peer = true;
        rep.peer = f->d; /* would be adopted as a candidate... */
        rep.npeers = 0;  /* ...and would empty the list */
        h_clear(&f->h);
        assert_int_equal(h_feed(&f->h, &rep), 0);
        h_assert_succ(&f->h, exp, 3);
        assert_int_equal(f->h.nout, 0);
    }
    h_reply(&rep, &get, CHORD_MSG_PREDECESSOR_REPLY, &f->a);
    rep.request_id ^= 0x5555;
    rep.npeers = 0;
    assert_int_equal(h_feed(&f->h, &rep), 0);
    h_assert_succ(&f->h, exp, 3);

    h_reply(&rep, &get, CHORD_MSG_PREDECESSOR_REPLY, &f->a);
    rep.npeers = 1;
    rep.peers[0] = f->d;
    assert_int_equal(h_feed(&f->h, &rep), 0);
    h_assert_succ(&f->h, exp2, 2);
    /* A duplicate of it is late, and ignored. */
    rep.npeers = 0;
    assert_int_equal(h_feed(&f->h, &rep), 0);
    h_assert_succ(&f->h, exp2, 2);
}

/* A's node no longer hosts A: NO_SUCH_VNODE ends the request at once,
 * without retries, and B is asked straight away. */
static void test_no_such_vnode_fails_request(void **state)
{
    struct ifix *f = *state;
    struct chord_msg get, rep;

    assert_true(
        h_await(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr, 2 * CHORD_STABILIZE_MS, &get) >= 0);
    h_reply(&rep, &get, CHORD_MSG_NO_SUCH_VNODE, &f->a);
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, &rep), 0);
    h_run(&f->h, 0);
    /* A refusal is proof, not suspicion: no retry and no second round;
     * B is asked at once. */
    assert_true(h_find(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->b.addr, &get) >= 0);
    assert_true(id_eq(&get.dst, &f->b.id));
    assert_int_equal(h_count(&f->h, CHORD_MSG_PREDECESSOR_GET, &f->a.addr), 0);
}

/* A reply type sent as a request, and a request type sent as a reply, do
 * nothing. */
static void test_wrong_direction_ignored(void **state)
{
    struct ifix *f = *state;
    struct chord_msg m;
    struct chord_peer exp[3] = {f->a, f->b, f->c};

    h_msg(&f->h, &m, CHORD_MSG_PREDECESSOR_REPLY, &f->a);
    m.npeers = 0;
    h_clear(&f->h);
    assert_int_equal(h_feed(&f->h, &m), 0);
    h_assert_succ(&f->h, exp, 3);
    assert_int_equal(f->h.nout, 0);

    h_msg(&f->h, &m, CHORD_MSG_PING, &f->a);
    m.reply = true;
    assert_int_equal(h_feed(&f->h, &m), 0);
    assert_int_equal(f->h.nout, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_damaged_frames_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefixes_and_header_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_vnode_gets_no_such_vnode, setup, teardown),
        cmocka_unit_test(test_not_started_silent),
        cmocka_unit_test_setup_teardown(test_reply_from_other_peer_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_such_vnode_fails_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_direction_ignored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
