/* test_control_block.c — the block requests of the control protocol
 * (1210..1214, net/ctl_codec.c) and their block reply, byte for byte:
 * round trips, every truncation, every bad field, and control characters
 * in reasons replaced. The rest of the control protocol: test_control.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "harness.h"
#include "net/control.h"

/* --- block requests (1210..1213) and their reply ----------------------- */

static void lease_pattern(struct lease *l, uint8_t seed, uint64_t expiry_s)
{
    memset(l, 0, sizeof(*l));
    for (size_t i = 0; i < SIG_PUB_LEN; i++)
        l->owner.b[i] = (uint8_t)(seed + i);
    l->stamp_ms = 0x0102030405060708u + seed;
    l->expiry_s = expiry_s;
    for (size_t i = 0; i < SIG_LEN; i++)
        l->sig[i] = (uint8_t)(seed * 3 + i);
}

#define BS_REPLY_FIXED (4 + ID_BYTES + 1 + 8 + 2 + 4) /* without reason and bytes */

static void bs_reply_eq(const struct ctl_bs_reply *a, const struct ctl_bs_reply *b)
{
    assert_int_equal(a->status, b->status);
    assert_true(id_eq(&a->key, &b->key));
    assert_int_equal(a->copies, b->copies);
    assert_true(a->version == b->version);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->len, b->len);
    if (a->len)
        assert_memory_equal(a->bytes, b->bytes, a->len);
    else
        assert_null(b->bytes);
}

static void test_ctl_bs_reply_round_trip(void **state)
{
    static const uint8_t rec[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct ctl_bs_reply rs[4];
    uint8_t buf[BS_REPLY_FIXED + CTL_REASON_MAX + sizeof(rec)];
    (void)state;

    memset(rs, 0, sizeof(rs));
    rs[0].status = 0; /* a get: the record */
    nt_id_pattern(&rs[0].key, 1);
    rs[0].copies = 3;
    rs[0].bytes = rec;
    rs[0].len = sizeof(rec);
    rs[1].status = -6005; /* a CAS conflict: the current root and a reason */
    nt_id_pattern(&rs[1].key, 2);
    rs[1].version = UINT64_MAX;
    strcpy(rs[1].reason, "expected 3, found 4");
    rs[1].bytes = rec;
    rs[1].len = 4;
    rs[2].status = -9999; /* the lowest status, the longest reason */
    memset(rs[2].reason, 'r', CTL_REASON_MAX);
    rs[2].copies = 255;
    rs[3].status = -ETIMEDOUT; /* nothing but a status */

    for (size_t i = 0; i < N_ELEMS(rs); i++) {
        struct ctl_bs_reply out;
        size_t want = BS_REPLY_FIXED + strlen(rs[i].reason) + rs[i].len;
        size_t n = ctl_bs_reply_encode(&rs[i], buf, sizeof(buf));

        assert_int_equal(n, want);
        memset(&out, 0xa5, sizeof(out));
        assert_int_equal(ctl_bs_reply_decode(buf, n, &out), 0);
        bs_reply_eq(&rs[i], &out);
        if (out.len) /* a view into the payload, not a copy */
            assert_ptr_equal(out.bytes, buf + n - out.len);
        for (size_t cap = 0; cap < n; cap++)
            assert_int_equal(ctl_bs_reply_encode(&rs[i], buf, cap), 0);
    }

    /* The bytes: status, key, copies, version, reason length, reason,
     * length, bytes. */
    uint8_t want[BS_REPLY_FIXED + 2 + 3];
    struct wire_writer w;
    struct ctl_bs_reply r = {.status = -2, .copies = 4, .version = 0x1122334455667788u};
    nt_id_pattern(&r.key, 9);
    strcpy(r.reason, "no");
    r.bytes = rec;
    r.len = 3;
    wire_writer_init(&w, want, sizeof(want));
    wire_put_u32(&w, (uint32_t)-2);
    wire_put_id(&w, &r.key);
    wire_put_u8(&w, 4);
    wire_put_u64(&w, 0x1122334455667788u);
    wire_put_u16(&w, 2);
    wire_put_bytes(&w, "no", 2);
    wire_put_u32(&w, 3);
    wire_put_bytes(&w, rec, 3);
    assert_true(wire_writer_ok(&w));
    assert_int_equal(ctl_bs_reply_encode(&r, buf, sizeof(buf)), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

static void test_ctl_bs_reply_rejects(void **state)
{
    static const uint8_t rec[] = {0xde, 0xad, 0xbe, 0xef};
    struct ctl_bs_reply r = {.status = -5, .copies = 1, .version = 2};
    uint8_t good[BS_REPLY_FIXED + 8 + sizeof(rec)], buf[sizeof(good) + CTL_REASON_MAX + 2];
    struct ctl_bs_reply out;
    size_t n;
    (void)state;

    nt_id_pattern(&r.key, 3);
    strcpy(r.reason, "abcdefgh");
    r.bytes = rec;
    r.len = sizeof(rec);
    n = ctl_bs_reply_encode(&r, good, sizeof(good));
    assert_int_equal(n, sizeof(good));

    /* Every truncation, and a trailing byte; *out is left alone. */
    for (size_t len = 0; len < n; len++) {
        memset(&out, 0x5a, sizeof(out));
        assert_int_equal(ctl_bs_reply_decode(good, len, &out), -EBADMSG);
        assert_int_equal(out.copies, 0x5a);
    }
    memcpy(buf, good, n);
    buf[n] = 0;
    assert_int_equal(ctl_bs_reply_decode(buf, n + 1, &out), -EBADMSG);

    /* Statuses: positive, below -9999. */
    static const int32_t bad_status[] = {1, INT32_MAX, -10000, INT32_MIN};
    for (size_t i = 0; i < N_ELEMS(bad_status); i++) {
        r.status = bad_status[i];
        n = ctl_bs_reply_encode(&r, buf, sizeof(buf));
        assert_int_equal(ctl_bs_reply_decode(buf, n, &out), -EBADMSG);
    }
    r.status = -9999;
    n = ctl_bs_reply_encode(&r, buf, sizeof(buf));
    assert_int_equal(ctl_bs_reply_decode(buf, n, &out), 0);

    /* A NUL inside the reason. */
    memcpy(buf, good, sizeof(good));
    buf[BS_REPLY_FIXED - 4 + 2] = 0;
    assert_int_equal(ctl_bs_reply_decode(buf, sizeof(good), &out), -EBADMSG);

    /* A reason one byte longer than CTL_REASON_MAX. */
    struct wire_writer w;
    wire_writer_init(&w, buf, sizeof(buf));
    wire_put_bytes(&w, good, BS_REPLY_FIXED - 6); /* status .. version */
    wire_put_u16(&w, CTL_REASON_MAX + 1);
    for (size_t i = 0; i < CTL_REASON_MAX + 1; i++)
        wire_put_u8(&w, 'x');
    wire_put_u32(&w, 0);
    assert_true(wire_writer_ok(&w));
    assert_int_equal(ctl_bs_reply_decode(buf, w.len, &out), -EBADMSG);

    /* A length past the end. */
    memcpy(buf, good, sizeof(good));
    buf[sizeof(good) - sizeof(rec) - 1] = sizeof(rec) + 1;
    assert_int_equal(ctl_bs_reply_decode(buf, sizeof(good), &out), -EBADMSG);
}

static void test_ctl_bs_reply_control_characters_replaced(void **state)
{
    struct ctl_bs_reply r = {.status = -5}, out;
    uint8_t buf[BS_REPLY_FIXED + CTL_REASON_MAX];
    (void)state;

    strcpy(r.reason, "\x1b[31mred\tDEL\x7f caf\xc3\xa9");
    size_t n = ctl_bs_reply_encode(&r, buf, sizeof(buf));
    assert_int_equal(ctl_bs_reply_decode(buf, n, &out), 0);
    assert_string_equal(out.reason, "?[31mred?DEL? caf\xc3\xa9");
}

static void test_ctl_block_put(void **state)
{
    enum { HDR = ID_BYTES + LEASE_LEN };
    struct lease l, lo;
    struct id key, ko;
    uint8_t *rec = malloc(BLOCK_MAX_STORED + 1);
    uint8_t *buf = malloc(HDR + BLOCK_MAX_STORED + 1);
    const uint8_t *bytes;
    size_t blen, n;
    (void)state;

    assert_non_null(rec);
    assert_non_null(buf);
    for (size_t i = 0; i <= BLOCK_MAX_STORED; i++)
        rec[i] = (uint8_t)(i * 13);
    lease_pattern(&l, 1, 1800000000u);
    nt_id_pattern(&key, 0x31);

    /* The key, the lease, then the block as is; one byte and the largest
     * block. */
    static const size_t lens[] = {1, 100, BLOCK_MAX_STORED};
    for (size_t i = 0; i < N_ELEMS(lens); i++) {
        uint8_t lb[LEASE_LEN];
        n = ctl_block_put_encode(&key, &l, rec, lens[i], buf, HDR + lens[i]);
        assert_int_equal(n, HDR + lens[i]);
        lease_encode(&l, lb);
        assert_memory_equal(buf, key.b, ID_BYTES);
        assert_memory_equal(buf + ID_BYTES, lb, LEASE_LEN);
        assert_memory_equal(buf + HDR, rec, lens[i]);
        assert_int_equal(ctl_block_put_decode(buf, n, &ko, &lo, &bytes, &blen), 0);
        assert_true(id_eq(&ko, &key));
        assert_memory_equal(&lo, &l, sizeof(l));
        assert_ptr_equal(bytes, buf + HDR);
        assert_int_equal(blen, lens[i]);
        assert_int_equal(ctl_block_put_encode(&key, &l, rec, lens[i], buf, n - 1), 0);
    }

    /* No block, a block too large, and every cut of the key and lease:
     * refused, the out-parameters left alone. The encoder refuses what the
     * decoder would; the message is made by hand to feed the decoder. */
    assert_int_equal(
        ctl_block_put_encode(&key, &l, rec, BLOCK_MAX_STORED + 1, buf, HDR + BLOCK_MAX_STORED + 1),
        0);
    assert_int_equal(ctl_block_put_encode(&key, &l, rec, 0, buf, HDR + BLOCK_MAX_STORED + 1), 0);
    memcpy(buf, key.b, ID_BYTES);
    lease_encode(&l, buf + ID_BYTES);
    memcpy(buf + HDR, rec, BLOCK_MAX_STORED + 1);
    n = HDR + BLOCK_MAX_STORED + 1;
    blen = 12345;
    bytes = NULL;
    memset(&lo, 0x5a, sizeof(lo));
    memset(&ko, 0x5a, sizeof(ko));
    assert_int_equal(ctl_block_put_decode(buf, n, &ko, &lo, &bytes, &blen), -EBADMSG);
    for (size_t len = 0; len <= HDR; len++)
        assert_int_equal(ctl_block_put_decode(buf, len, &ko, &lo, &bytes, &blen), -EBADMSG);
    assert_int_equal(blen, 12345);
    assert_null(bytes);
    assert_int_equal(lo.owner.b[0], 0x5a);
    assert_int_equal(ko.b[0], 0x5a);
    free(rec);
    free(buf);
}

static void test_ctl_block_get(void **state)
{
    uint8_t buf[1 + ID_BYTES + 1];
    struct id key, ko;
    uint8_t type;
    (void)state;

    nt_id_pattern(&key, 0x20);
    for (uint8_t t = 1; t <= 3; t++) {
        size_t n = ctl_block_get_encode(t, &key, buf, sizeof(buf));
        assert_int_equal(n, 1 + ID_BYTES);
        assert_int_equal(buf[0], t);
        assert_memory_equal(buf + 1, key.b, ID_BYTES);
        assert_int_equal(ctl_block_get_decode(buf, n, &type, &ko), 0);
        assert_int_equal(type, t);
        assert_true(id_eq(&key, &ko));
        for (size_t cap = 0; cap < n; cap++)
            assert_int_equal(ctl_block_get_encode(t, &key, buf, cap), 0);
    }

    /* Store types 0 and 4, every cut, a trailing byte. */
    type = 0x5a;
    memset(&ko, 0x5a, sizeof(ko));
    static const uint8_t bad_types[] = {0, 4, 0xff};
    for (size_t i = 0; i < N_ELEMS(bad_types); i++) {
        size_t n = ctl_block_get_encode(bad_types[i], &key, buf, sizeof(buf));
        assert_int_equal(ctl_block_get_decode(buf, n, &type, &ko), -EBADMSG);
    }
    ctl_block_get_encode(1, &key, buf, sizeof(buf));
    for (size_t len = 0; len < 1 + ID_BYTES; len++)
        assert_int_equal(ctl_block_get_decode(buf, len, &type, &ko), -EBADMSG);
    buf[1 + ID_BYTES] = 0;
    assert_int_equal(ctl_block_get_decode(buf, 1 + ID_BYTES + 1, &type, &ko), -EBADMSG);
    assert_int_equal(type, 0x5a);
    assert_int_equal(ko.b[0], 0x5a);
}

static void test_ctl_root_put(void **state)
{
    uint8_t rec[ROOT_MAX_LEN + 1], buf[8 + ROOT_MAX_LEN + 1];
    const uint8_t *bytes;
    uint64_t expect;
    size_t blen, n;
    (void)state;

    for (size_t i = 0; i < sizeof(rec); i++)
        rec[i] = (uint8_t)(i * 5 + 1);
    static const uint64_t expects[] = {0, 1, 0x0102030405060708u, UINT64_MAX};
    static const size_t lens[] = {1, ROOT_HDR_LEN + SIG_LEN, 300, ROOT_MAX_LEN};
    for (size_t i = 0; i < N_ELEMS(expects); i++) {
        n = ctl_root_put_encode(expects[i], rec, lens[i], buf, sizeof(buf));
        assert_int_equal(n, 8 + lens[i]);
        for (size_t b = 0; b < 8; b++) /* big-endian */
            assert_int_equal(buf[b], (uint8_t)(expects[i] >> (56 - 8 * b)));
        assert_memory_equal(buf + 8, rec, lens[i]);
        assert_int_equal(ctl_root_put_decode(buf, n, &expect, &bytes, &blen), 0);
        assert_true(expect == expects[i]);
        assert_ptr_equal(bytes, buf + 8);
        assert_int_equal(blen, lens[i]);
        assert_int_equal(ctl_root_put_encode(expects[i], rec, lens[i], buf, n - 1), 0);
    }

    /* No root, a root too long, every cut of the version. */
    expect = 77;
    blen = 12345;
    bytes = NULL;
    assert_int_equal(ctl_root_put_encode(5, rec, ROOT_MAX_LEN + 1, buf, sizeof(buf)), 0);
    assert_int_equal(ctl_root_put_encode(5, rec, 0, buf, sizeof(buf)), 0);
    memset(buf, 0, 8);
    buf[7] = 5;
    memcpy(buf + 8, rec, ROOT_MAX_LEN + 1);
    n = 8 + ROOT_MAX_LEN + 1;
    assert_int_equal(ctl_root_put_decode(buf, n, &expect, &bytes, &blen), -EBADMSG);
    for (size_t len = 0; len <= 8; len++)
        assert_int_equal(ctl_root_put_decode(buf, len, &expect, &bytes, &blen), -EBADMSG);
    assert_true(expect == 77);
    assert_int_equal(blen, 12345);
    assert_null(bytes);
}

static void test_ctl_lease_req(void **state)
{
    uint8_t buf[ID_BYTES + LEASE_LEN + 1], lb[LEASE_LEN];
    struct lease l, lo;
    struct id key, ko;
    (void)state;

    nt_id_pattern(&key, 0x60);
    static const uint64_t expiries[] = {1800000000u, 0 /* a reclaim */};
    for (size_t i = 0; i < N_ELEMS(expiries); i++) {
        lease_pattern(&l, (uint8_t)(7 + i), expiries[i]);
        size_t n = ctl_lease_encode(&key, &l, buf, sizeof(buf));
        assert_int_equal(n, ID_BYTES + LEASE_LEN);
        assert_memory_equal(buf, key.b, ID_BYTES);
        lease_encode(&l, lb);
        assert_memory_equal(buf + ID_BYTES, lb, LEASE_LEN);
        assert_int_equal(ctl_lease_decode(buf, n, &ko, &lo), 0);
        assert_true(id_eq(&key, &ko));
        assert_memory_equal(&lo, &l, sizeof(l));
        for (size_t cap = 0; cap < n; cap++)
            assert_int_equal(ctl_lease_encode(&key, &l, buf, cap), 0);
    }

    /* Any other length. */
    memset(&ko, 0x5a, sizeof(ko));
    memset(&lo, 0x5a, sizeof(lo));
    ctl_lease_encode(&key, &l, buf, sizeof(buf));
    buf[ID_BYTES + LEASE_LEN] = 0;
    for (size_t len = 0; len <= ID_BYTES + LEASE_LEN + 1; len++) {
        if (len == ID_BYTES + LEASE_LEN)
            continue;
        assert_int_equal(ctl_lease_decode(buf, len, &ko, &lo), -EBADMSG);
    }
    assert_int_equal(ko.b[0], 0x5a);
    assert_int_equal(lo.owner.b[0], 0x5a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctl_bs_reply_round_trip),
        cmocka_unit_test(test_ctl_bs_reply_rejects),
        cmocka_unit_test(test_ctl_bs_reply_control_characters_replaced),
        cmocka_unit_test(test_ctl_block_put),
        cmocka_unit_test(test_ctl_block_get),
        cmocka_unit_test(test_ctl_root_put),
        cmocka_unit_test(test_ctl_lease_req),
    };

    nt_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
