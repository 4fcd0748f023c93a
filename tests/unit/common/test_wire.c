/* test_wire.c — the bounded reader and writer (common/wire.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define GUARD      0xee

static const uint8_t seq[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
                              0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
                              0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0xff};

/* ---- reader: exact lengths ---------------------------------------------- */

static void test_reader_exact(void **state)
{
    struct wire_reader r;
    (void)state;

    wire_reader_init(&r, seq, 1);
    assert_int_equal(wire_get_u8(&r), 0x01);
    assert_true(wire_reader_done(&r));

    wire_reader_init(&r, seq, 2);
    assert_int_equal(wire_get_u16(&r), 0x0102);
    assert_true(wire_reader_done(&r));

    wire_reader_init(&r, seq, 4);
    assert_int_equal(wire_get_u32(&r), 0x01020304);
    assert_true(wire_reader_done(&r));

    wire_reader_init(&r, seq, 8);
    assert_true(wire_get_u64(&r) == 0x0102030405060708u);
    assert_true(wire_reader_done(&r));

    uint8_t out[5];
    wire_reader_init(&r, seq, 5);
    wire_get_bytes(&r, out, 5);
    assert_memory_equal(out, seq, 5);
    assert_true(wire_reader_done(&r));

    struct id id;
    wire_reader_init(&r, seq, ID_BYTES);
    wire_get_id(&r, &id);
    assert_memory_equal(id.b, seq, ID_BYTES);
    assert_true(wire_reader_done(&r));

    /* the top bit set: no sign extension anywhere */
    static const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    wire_reader_init(&r, ff, 8);
    assert_true(wire_get_u64(&r) == 0xfffffffffffffffeu);
    wire_reader_init(&r, ff, 4);
    assert_true(wire_get_u32(&r) == 0xffffffffu);
    wire_reader_init(&r, ff, 2);
    assert_int_equal(wire_get_u16(&r), 0xffff);
    wire_reader_init(&r, ff, 1);
    assert_int_equal(wire_get_u8(&r), 0xff);

    /* consecutive reads advance */
    wire_reader_init(&r, seq, 15);
    assert_int_equal(wire_get_u8(&r), 0x01);
    assert_int_equal(wire_get_u16(&r), 0x0203);
    assert_int_equal(wire_get_u32(&r), 0x04050607);
    assert_true(wire_get_u64(&r) == 0x08090a0b0c0d0e0fu);
    assert_true(wire_reader_done(&r));
}

/* ---- reader: short and empty buffers ------------------------------------ */

/* Each getter on a buffer one byte short of what it needs and on an empty
 * one: an error, zeros returned or written, and the error sticks. */
enum getter { G_U8, G_U16, G_U32, G_U64, G_BYTES, G_ID, G_VIEW, G_COUNT };
static const size_t getter_size[G_COUNT] = {1, 2, 4, 8, 5, ID_BYTES, 3};

/* Runs getter g; returns whether everything it returned or wrote is zero
 * (NULL for a view). */
static bool run_getter(struct wire_reader *r, enum getter g)
{
    uint8_t out[ID_BYTES];
    struct id id;

    switch (g) {
    case G_U8: return wire_get_u8(r) == 0;
    case G_U16: return wire_get_u16(r) == 0;
    case G_U32: return wire_get_u32(r) == 0;
    case G_U64: return wire_get_u64(r) == 0;
    case G_BYTES:
        memset(out, 0xa5, sizeof(out));
        wire_get_bytes(r, out, getter_size[G_BYTES]);
        for (size_t i = 0; i < getter_size[G_BYTES]; i++)
            if (out[i])
                return false;
        return out[getter_size[G_BYTES]] == 0xa5; /* and no more than asked */
    case G_ID:
        memset(&id, 0xa5, sizeof(id));
        wire_get_id(r, &id);
        return id_is_zero(&id);
    case G_VIEW: return wire_get_view(r, getter_size[G_VIEW]) == NULL;
    default: return false;
    }
}

static void test_reader_short(void **state)
{
    (void)state;
    for (int g = 0; g < G_COUNT; g++) {
        /* 4 to 7 bytes for a u64: see test_reader_short_u64 */
        size_t end = g == G_U64 ? 4 : getter_size[g];
        for (size_t len = 0; len < end; len++) {
            struct wire_reader r;
            wire_reader_init(&r, seq, len);
            if (!run_getter(&r, (enum getter)g))
                fail_msg("getter %d on %zu bytes did not return zeros", g, len);
            assert_false(wire_reader_ok(&r));
            assert_false(wire_reader_done(&r));
        }
    }
}

static void test_reader_short_u64(void **state)
{
    struct wire_reader r;
    (void)state;

    for (size_t len = 0; len < 4; len++) {
        wire_reader_init(&r, seq, len);
        assert_true(wire_get_u64(&r) == 0);
        assert_false(wire_reader_ok(&r));
    }

    for (size_t len = 4; len < 8; len++) {
        wire_reader_init(&r, seq, len);
        uint64_t v = wire_get_u64(&r);
        assert_false(wire_reader_ok(&r));
        if (v != 0)
            fail_msg("wire_get_u64 on %zu bytes returned 0x%016llx, want 0", len,
                     (unsigned long long)v);
    }
}

static void test_reader_empty(void **state)
{
    (void)state;
    for (int g = 0; g < G_COUNT; g++) {
        struct wire_reader r;
        wire_reader_init(&r, seq, 0);
        assert_true(wire_reader_done(&r)); /* nothing read, nothing left */
        if (!run_getter(&r, (enum getter)g))
            fail_msg("getter %d on an empty buffer did not return zeros", g);
        assert_false(wire_reader_ok(&r));
        assert_false(wire_reader_done(&r));

        /* a NULL buffer of length 0 is empty too */
        wire_reader_init(&r, NULL, 0);
        assert_true(run_getter(&r, (enum getter)g));
        assert_false(wire_reader_ok(&r));
    }
}

static void test_reader_sticky(void **state)
{
    (void)state;
    /* after a short read, every getter fails though enough bytes remain */
    for (int g = 0; g < G_COUNT; g++) {
        struct wire_reader r;
        wire_reader_init(&r, seq, sizeof(seq));
        assert_null(wire_get_view(&r, sizeof(seq) + 1));
        assert_false(wire_reader_ok(&r));
        if (!run_getter(&r, (enum getter)g))
            fail_msg("getter %d returned data after an error", g);
        assert_false(wire_reader_ok(&r));
    }

    /* a short read fails the reader even for smaller reads that would fit */
    struct wire_reader r;
    wire_reader_init(&r, seq, 3);
    assert_int_equal(wire_get_u32(&r), 0);
    assert_int_equal(wire_get_u8(&r), 0);
    assert_int_equal(wire_get_u16(&r), 0);
    assert_false(wire_reader_ok(&r));

    /* wire_reader_fail marks it failed */
    wire_reader_init(&r, seq, sizeof(seq));
    assert_true(wire_reader_ok(&r));
    wire_reader_fail(&r);
    assert_false(wire_reader_ok(&r));
    assert_false(wire_reader_done(&r));
    assert_int_equal(wire_get_u8(&r), 0);
}

static void test_reader_done_vs_ok(void **state)
{
    struct wire_reader r;
    (void)state;

    wire_reader_init(&r, seq, 3);
    assert_true(wire_reader_ok(&r));
    assert_false(wire_reader_done(&r)); /* bytes left */
    wire_get_u16(&r);
    assert_true(wire_reader_ok(&r));
    assert_false(wire_reader_done(&r));
    wire_get_u8(&r);
    assert_true(wire_reader_ok(&r));
    assert_true(wire_reader_done(&r));
    wire_get_u8(&r); /* one past the end */
    assert_false(wire_reader_ok(&r));
    assert_false(wire_reader_done(&r));

    /* a failure with bytes left is neither ok nor done */
    wire_reader_init(&r, seq, 8);
    wire_reader_fail(&r);
    assert_false(wire_reader_done(&r));

    /* a failure after consuming everything is not done */
    wire_reader_init(&r, seq, 2);
    wire_get_u16(&r);
    wire_reader_fail(&r);
    assert_false(wire_reader_done(&r));
}

static void test_reader_view(void **state)
{
    struct wire_reader r;
    (void)state;

    wire_reader_init(&r, seq, 10);
    const uint8_t *v = wire_get_view(&r, 3);
    assert_ptr_equal(v, seq); /* points into the buffer, no copy */
    v = wire_get_view(&r, 0);
    assert_ptr_equal(v, seq + 3);
    assert_true(wire_reader_ok(&r));
    v = wire_get_view(&r, 7);
    assert_ptr_equal(v, seq + 3);
    assert_true(wire_reader_done(&r));
    v = wire_get_view(&r, 0); /* zero bytes at the very end */
    assert_non_null(v);
    assert_true(wire_reader_done(&r));
    assert_null(wire_get_view(&r, 1));
    assert_false(wire_reader_ok(&r));

    /* a huge length neither wraps nor passes */
    wire_reader_init(&r, seq, 10);
    wire_get_u8(&r);
    assert_null(wire_get_view(&r, SIZE_MAX));
    assert_false(wire_reader_ok(&r));
    wire_reader_init(&r, seq, 10);
    assert_null(wire_get_view(&r, 11));
    assert_false(wire_reader_ok(&r));
}

/* ---- reader: addresses -------------------------------------------------- */

static void test_reader_addr(void **state)
{
    struct wire_reader r;
    struct addr a;
    (void)state;

    static const struct addr zero;
    static const uint8_t v4[] = {4, 0x0f, 0xa0, 192, 168, 1, 2};
    memset(&a, 0xa5, sizeof(a));
    wire_reader_init(&r, v4, sizeof(v4));
    wire_get_addr(&r, &a);
    assert_true(wire_reader_done(&r));
    struct addr want;
    addr_v4(&want, 192, 168, 1, 2, 4000);
    assert_memory_equal(&a, &want, sizeof(a)); /* pad and ip[4..15] zero */

    static const uint8_t v6[] = {6,    0xff, 0xff,                               /* family, port */
                                 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, /* 2001:db8:: */
                                 0,    0,    0,    1};                           /* ::1 */
    memset(&a, 0xa5, sizeof(a));
    wire_reader_init(&r, v6, sizeof(v6));
    wire_get_addr(&r, &a);
    assert_true(wire_reader_done(&r));
    assert_int_equal(a.family, ADDR_V6);
    assert_int_equal(a.pad, 0);
    assert_int_equal(a.port, 65535);
    assert_memory_equal(a.ip, v6 + 3, 16);

    /* bad families: error, and *out all zero */
    static const uint8_t fams[] = {0, 1, 5, 7, 41, 255};
    for (size_t i = 0; i < N_ELEMS(fams); i++) {
        uint8_t b[19] = {fams[i], 0, 80};
        memset(&a, 0xa5, sizeof(a));
        wire_reader_init(&r, b, sizeof(b));
        wire_get_addr(&r, &a);
        assert_false(wire_reader_ok(&r));
        assert_memory_equal(&a, &zero, sizeof(a));
    }

    /* every truncation of either form is an error and leaves *out zero */
    for (size_t len = 0; len < sizeof(v6); len++) {
        for (int k = 0; k < 2; k++) {
            const uint8_t *src = k ? v6 : v4;
            if (!k && len >= sizeof(v4))
                continue;
            memset(&a, 0xa5, sizeof(a));
            wire_reader_init(&r, src, len);
            wire_get_addr(&r, &a);
            if (wire_reader_ok(&r))
                fail_msg("v%d address truncated to %zu bytes accepted", k ? 6 : 4, len);
            assert_memory_equal(&a, &zero, sizeof(a));
        }
    }

    /* a v4 address followed by more: only 7 bytes consumed */
    uint8_t more[8];
    memcpy(more, v4, sizeof(v4));
    more[7] = 0x42;
    wire_reader_init(&r, more, sizeof(more));
    wire_get_addr(&r, &a);
    assert_true(wire_reader_ok(&r));
    assert_int_equal(wire_get_u8(&r), 0x42);
    assert_true(wire_reader_done(&r));
}

/* ---- writer ------------------------------------------------------------- */

static void test_writer_exact(void **state)
{
    uint8_t buf[64];
    struct wire_writer w;
    (void)state;

    memset(buf, GUARD, sizeof(buf));
    wire_writer_init(&w, buf, 15);
    wire_put_u8(&w, 0x01);
    wire_put_u16(&w, 0x0203);
    wire_put_u32(&w, 0x04050607);
    wire_put_u64(&w, 0x08090a0b0c0d0e0fu);
    assert_true(wire_writer_ok(&w));
    assert_int_equal(w.len, 15);
    assert_memory_equal(buf, seq, 15);
    assert_int_equal(buf[15], GUARD);

    memset(buf, GUARD, sizeof(buf));
    wire_writer_init(&w, buf, 8);
    wire_put_u64(&w, UINT64_MAX);
    assert_true(wire_writer_ok(&w));
    for (int i = 0; i < 8; i++)
        assert_int_equal(buf[i], 0xff);
    assert_int_equal(buf[8], GUARD);

    /* zero bytes fit into zero capacity, from a NULL source too */
    wire_writer_init(&w, buf, 0);
    wire_put_bytes(&w, NULL, 0);
    assert_true(wire_writer_ok(&w));
    assert_int_equal(w.len, 0);
}

enum putter { P_U8, P_U16, P_U32, P_U64, P_BYTES, P_ID, P_ADDR4, P_ADDR6, P_COUNT };
static const size_t putter_size[P_COUNT] = {1, 2, 4, 8, 5, ID_BYTES, 7, 19};

static void run_putter(struct wire_writer *w, enum putter p)
{
    struct id id;
    struct addr a;

    memcpy(id.b, seq, ID_BYTES);
    switch (p) {
    case P_U8: wire_put_u8(w, 0x11); break;
    case P_U16: wire_put_u16(w, 0x1122); break;
    case P_U32: wire_put_u32(w, 0x11223344); break;
    case P_U64: wire_put_u64(w, 0x1122334455667788u); break;
    case P_BYTES: wire_put_bytes(w, seq, putter_size[P_BYTES]); break;
    case P_ID: wire_put_id(w, &id); break;
    case P_ADDR4:
        addr_v4(&a, 10, 0, 0, 1, 80);
        wire_put_addr(w, &a);
        break;
    case P_ADDR6:
        memset(&a, 0, sizeof(a));
        a.family = ADDR_V6;
        a.port = 443;
        a.ip[15] = 1;
        wire_put_addr(w, &a);
        break;
    default: break;
    }
}

/* Every putter, into every capacity too small for it: a sticky error, len
 * unchanged... and never a byte written past cap. */
static void test_writer_overflow(void **state)
{
    (void)state;
    for (int p = 0; p < P_COUNT; p++) {
        for (size_t cap = 0; cap < putter_size[p]; cap++) {
            uint8_t buf[64];
            struct wire_writer w;

            memset(buf, GUARD, sizeof(buf));
            wire_writer_init(&w, buf, cap);
            run_putter(&w, (enum putter)p);
            assert_false(wire_writer_ok(&w));
            for (size_t i = cap; i < sizeof(buf); i++)
                if (buf[i] != GUARD)
                    fail_msg("putter %d, cap %zu: byte %zu overwritten", p, cap, i);

            /* sticky: a u8 that would fit is refused too */
            size_t len = w.len;
            wire_put_u8(&w, 0x99);
            assert_false(wire_writer_ok(&w));
            assert_int_equal(w.len, len);
            assert_true(w.len <= cap);
            for (size_t i = cap; i < sizeof(buf); i++)
                assert_int_equal(buf[i], GUARD);
        }
    }

    /* after some bytes went in, an overflow keeps them and writes nothing more */
    uint8_t buf[8];
    struct wire_writer w;
    memset(buf, GUARD, sizeof(buf));
    wire_writer_init(&w, buf, 6);
    wire_put_u32(&w, 0x01020304);
    wire_put_u32(&w, 0x05060708); /* needs 4, 2 left */
    assert_false(wire_writer_ok(&w));
    assert_int_equal(w.len, 4);
    assert_memory_equal(buf, seq, 4);
    assert_int_equal(buf[4], GUARD);
    assert_int_equal(buf[5], GUARD);
    assert_int_equal(buf[6], GUARD);

    /* a huge byte count neither wraps nor writes */
    memset(buf, GUARD, sizeof(buf));
    wire_writer_init(&w, buf, 6);
    wire_put_u8(&w, 1);
    wire_put_bytes(&w, seq, SIZE_MAX);
    assert_false(wire_writer_ok(&w));
    assert_int_equal(buf[1], GUARD);
}

static void test_writer_bad_addr(void **state)
{
    static const uint8_t fams[] = {ADDR_NONE, 1, 5, 255};
    (void)state;

    for (size_t i = 0; i < N_ELEMS(fams); i++) {
        uint8_t buf[32];
        struct wire_writer w;
        struct addr a;

        addr_v4(&a, 1, 2, 3, 4, 5);
        a.family = fams[i];
        memset(buf, GUARD, sizeof(buf));
        wire_writer_init(&w, buf, sizeof(buf));
        wire_put_addr(&w, &a);
        assert_false(wire_writer_ok(&w));
        assert_int_equal(w.len, 0);
        assert_int_equal(buf[0], GUARD);
    }

    struct addr a;
    addr_v4(&a, 1, 2, 3, 4, 5);
    assert_int_equal(wire_addr_size(&a), 7);
    a.family = ADDR_V6;
    assert_int_equal(wire_addr_size(&a), 19);
}

static void test_writer_patch(void **state)
{
    uint8_t buf[16];
    struct wire_writer w;
    (void)state;

    memset(buf, GUARD, sizeof(buf));
    wire_writer_init(&w, buf, 12);
    wire_put_u32(&w, 0);
    wire_put_u32(&w, 0xaaaaaaaa);
    wire_put_u8(&w, 0xbb);
    wire_patch_u32(&w, 0, 0x01020304);
    assert_true(wire_writer_ok(&w));
    wire_patch_u32(&w, 5, 0x06070809); /* the last 4 bytes written */
    assert_true(wire_writer_ok(&w));
    static const uint8_t want[] = {1, 2, 3, 4, 0xaa, 6, 7, 8, 9};
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(w.len, 9); /* patching does not grow */
    assert_int_equal(buf[9], GUARD);

    /* past what was written (though inside cap): refused, nothing written */
    wire_patch_u32(&w, 6, 0xdddddddd);
    assert_false(wire_writer_ok(&w));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(buf[9], GUARD);

    /* a writer already failed refuses a patch too */
    wire_writer_init(&w, buf, 4);
    wire_put_u32(&w, 0);
    wire_put_u8(&w, 1); /* overflow */
    wire_patch_u32(&w, 0, 0xdddddddd);
    assert_false(wire_writer_ok(&w));
    assert_int_equal(buf[0], 0);

    /* an empty writer has nothing to patch */
    memset(buf, GUARD, sizeof(buf));
    wire_writer_init(&w, buf, sizeof(buf));
    wire_patch_u32(&w, 0, 0xdddddddd);
    assert_false(wire_writer_ok(&w));
    assert_int_equal(buf[0], GUARD);
}

static void test_writer_patch_huge_offset(void **state)
{
    /* The writer sits inside a larger array, so that the bytes the bug
     * writes (just before buf) are guard bytes that the test can check. */
    uint8_t big[32];
    uint8_t *buf = big + 8;
    struct wire_writer w;
    (void)state;

    memset(big, GUARD, sizeof(big));
    wire_writer_init(&w, buf, 16);
    wire_put_u64(&w, 0);
    wire_patch_u32(&w, SIZE_MAX - 1, 0xdddddddd);
    for (size_t i = 0; i < 8; i++)
        if (big[i] != GUARD)
            fail_msg("wire_patch_u32(off = SIZE_MAX - 1) wrote %zu bytes before the buffer", 8 - i);
    assert_false(wire_writer_ok(&w));
}

/* ---- round trips -------------------------------------------------------- */

static void test_round_trip(void **state)
{
    static const uint64_t u64s[] = {
        0, 1, 0x7fffffffffffffffu, 0x8000000000000000u, UINT64_MAX, 0x0102030405060708u};
    uint8_t buf[512];
    struct wire_writer w;
    struct wire_reader r;
    struct id id;
    struct addr a4, a6, got;
    (void)state;

    memcpy(id.b, seq, ID_BYTES);
    addr_v4(&a4, 127, 0, 0, 1, 1);
    memset(&a6, 0, sizeof(a6));
    a6.family = ADDR_V6;
    a6.port = 65535;
    for (int i = 0; i < 16; i++)
        a6.ip[i] = (uint8_t)(0xf0 + i);

    wire_writer_init(&w, buf, sizeof(buf));
    for (size_t i = 0; i < N_ELEMS(u64s); i++) {
        wire_put_u8(&w, (uint8_t)u64s[i]);
        wire_put_u16(&w, (uint16_t)u64s[i]);
        wire_put_u32(&w, (uint32_t)u64s[i]);
        wire_put_u64(&w, u64s[i]);
    }
    wire_put_bytes(&w, seq, sizeof(seq));
    wire_put_id(&w, &id);
    wire_put_addr(&w, &a4);
    wire_put_addr(&w, &a6);
    size_t len_off = w.len;
    wire_put_u32(&w, 0);
    wire_put_bytes(&w, "tail", 4);
    wire_patch_u32(&w, len_off, 0xcafef00d);
    assert_true(wire_writer_ok(&w));
    assert_int_equal(w.len, N_ELEMS(u64s) * 15 + sizeof(seq) + ID_BYTES + wire_addr_size(&a4) +
                                wire_addr_size(&a6) + 4 + 4);

    wire_reader_init(&r, buf, w.len);
    for (size_t i = 0; i < N_ELEMS(u64s); i++) {
        assert_int_equal(wire_get_u8(&r), (uint8_t)u64s[i]);
        assert_int_equal(wire_get_u16(&r), (uint16_t)u64s[i]);
        assert_true(wire_get_u32(&r) == (uint32_t)u64s[i]);
        assert_true(wire_get_u64(&r) == u64s[i]);
    }
    uint8_t bytes[sizeof(seq)];
    wire_get_bytes(&r, bytes, sizeof(bytes));
    assert_memory_equal(bytes, seq, sizeof(seq));
    struct id id2;
    wire_get_id(&r, &id2);
    assert_true(id_eq(&id, &id2));
    wire_get_addr(&r, &got);
    assert_memory_equal(&got, &a4, sizeof(got));
    wire_get_addr(&r, &got);
    assert_memory_equal(&got, &a6, sizeof(got));
    assert_true(wire_get_u32(&r) == 0xcafef00d);
    const uint8_t *tail = wire_get_view(&r, 4);
    assert_non_null(tail);
    assert_memory_equal(tail, "tail", 4);
    assert_true(wire_reader_done(&r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_exact),
        cmocka_unit_test(test_reader_short),
        cmocka_unit_test(test_reader_short_u64),
        cmocka_unit_test(test_reader_empty),
        cmocka_unit_test(test_reader_sticky),
        cmocka_unit_test(test_reader_done_vs_ok),
        cmocka_unit_test(test_reader_view),
        cmocka_unit_test(test_reader_addr),
        cmocka_unit_test(test_writer_exact),
        cmocka_unit_test(test_writer_overflow),
        cmocka_unit_test(test_writer_bad_addr),
        cmocka_unit_test(test_writer_patch),
        cmocka_unit_test(test_writer_patch_huge_offset),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
