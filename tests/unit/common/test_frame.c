/* test_frame.c — frame headers (common/frame.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/frame.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define GUARD      0xee

/* A header and its bytes, spelled out from the layout in frame.h. */
static const struct frame_header golden = {
    .version = FRAME_VERSION,
    .flags = FRAME_F_REPLY,
    .type = 0x041b, /* 1051 */
    .request_id = 0x0102030405060708u,
    .length = 0xb0c0,
};
/* clang-format off */
static const uint8_t golden_bytes[FRAME_HEADER_SIZE] = {
    0x43, 0x4f, 0x4f, 0x50,                         /* "COOP" */
    FRAME_VERSION, FRAME_F_REPLY, 0x04, 0x1b,       /* version, flags, type */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* request id */
    0x00, 0x00, 0xb0, 0xc0,                         /* length */
};
/* clang-format on */

static void check_header_equal(const struct frame_header *a, const struct frame_header *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->type, b->type);
    assert_true(a->request_id == b->request_id);
    assert_int_equal(a->length, b->length);
}

static void test_frame_golden(void **state)
{
    uint8_t buf[FRAME_HEADER_SIZE + 1];
    struct frame_header h;
    (void)state;

    memset(buf, GUARD, sizeof(buf));
    frame_header_encode(&golden, buf);
    assert_memory_equal(buf, golden_bytes, FRAME_HEADER_SIZE);
    assert_int_equal(buf[FRAME_HEADER_SIZE], GUARD); /* 20 bytes, no more */

    assert_int_equal(frame_header_decode(golden_bytes, sizeof(golden_bytes), &h), 0);
    check_header_equal(&h, &golden);
}

static void test_frame_round_trip(void **state)
{
    static const struct frame_header hs[] = {
        {FRAME_VERSION, 0, 0, 0, 0},
        {FRAME_VERSION, FRAME_F_REPLY, 1051, 1, 100},
        {FRAME_VERSION, 0xff, 0xffff, UINT64_MAX, FRAME_MAX_PAYLOAD}, /* exactly the max */
        {FRAME_VERSION, 0x80, 0x8000, 0x8000000000000000u, FRAME_MAX_PAYLOAD - 1},
    };
    (void)state;

    for (size_t i = 0; i < N_ELEMS(hs); i++) {
        uint8_t buf[FRAME_HEADER_SIZE + 8];
        struct frame_header h;

        memset(buf, GUARD, sizeof(buf));
        frame_header_encode(&hs[i], buf);
        for (size_t k = FRAME_HEADER_SIZE; k < sizeof(buf); k++)
            assert_int_equal(buf[k], GUARD);

        memset(&h, 0xa5, sizeof(h));
        assert_int_equal(frame_header_decode(buf, FRAME_HEADER_SIZE, &h), 0);
        check_header_equal(&h, &hs[i]);

        /* bytes after the header (the payload) are not its business */
        memset(&h, 0xa5, sizeof(h));
        assert_int_equal(frame_header_decode(buf, sizeof(buf), &h), 0);
        check_header_equal(&h, &hs[i]);
    }
}

/* Decodes bytes that must fail with want; *out must stay untouched. */
static void check_decode_error(const uint8_t *buf, size_t len, int want)
{
    struct frame_header h, untouched;

    memset(&h, 0xa5, sizeof(h));
    untouched = h;
    int rc = frame_header_decode(buf, len, &h);
    if (rc != want)
        fail_msg("len %zu: got %d (%s), want %d (%s)", len, rc, frame_strerror(rc), want,
                 frame_strerror(want));
    assert_memory_equal(&h, &untouched, sizeof(h));
}

static void test_frame_errors(void **state)
{
    uint8_t buf[FRAME_HEADER_SIZE];
    struct frame_header h = golden;
    (void)state;

    /* short, at every length */
    frame_header_encode(&golden, buf);
    for (size_t len = 0; len < FRAME_HEADER_SIZE; len++)
        check_decode_error(buf, len, FRAME_ERR_SHORT);
    check_decode_error(NULL, 0, FRAME_ERR_SHORT);

    /* wrong magic: any one byte of it changed */
    for (size_t k = 0; k < 4; k++) {
        static const uint8_t flips[] = {0x01, 0x20, 0x80, 0xff};
        for (size_t f = 0; f < N_ELEMS(flips); f++) {
            frame_header_encode(&golden, buf);
            buf[k] ^= flips[f];
            check_decode_error(buf, sizeof(buf), FRAME_ERR_MAGIC);
        }
    }
    /* the magic byte-swapped */
    frame_header_encode(&golden, buf);
    buf[0] = 0x50, buf[1] = 0x4f, buf[2] = 0x4f, buf[3] = 0x43;
    check_decode_error(buf, sizeof(buf), FRAME_ERR_MAGIC);

    /* wrong version */
    static const uint8_t versions[] = {0, FRAME_VERSION + 1, 0x80, 0xff};
    for (size_t i = 0; i < N_ELEMS(versions); i++) {
        h = golden;
        h.version = versions[i];
        frame_header_encode(&h, buf);
        check_decode_error(buf, sizeof(buf), FRAME_ERR_VERSION);
    }

    /* too big; exactly the max is accepted */
    static const uint32_t lengths[] = {FRAME_MAX_PAYLOAD + 1, FRAME_MAX_PAYLOAD * 2, 0x80000000u,
                                       UINT32_MAX};
    for (size_t i = 0; i < N_ELEMS(lengths); i++) {
        h = golden;
        h.length = lengths[i];
        frame_header_encode(&h, buf);
        check_decode_error(buf, sizeof(buf), FRAME_ERR_TOO_BIG);
    }
    h = golden;
    h.length = FRAME_MAX_PAYLOAD;
    frame_header_encode(&h, buf);
    struct frame_header out;
    assert_int_equal(frame_header_decode(buf, sizeof(buf), &out), 0);
    assert_int_equal(out.length, FRAME_MAX_PAYLOAD);

    /* the order of the checks: short before magic, magic before the rest */
    h = golden;
    h.version = 0;
    h.length = UINT32_MAX;
    frame_header_encode(&h, buf);
    check_decode_error(buf, FRAME_HEADER_SIZE - 1, FRAME_ERR_SHORT);
    buf[0] = 0;
    check_decode_error(buf, FRAME_HEADER_SIZE, FRAME_ERR_MAGIC);
}

static void test_frame_strerror(void **state)
{
    static const int codes[] = {0, FRAME_ERR_SHORT, FRAME_ERR_MAGIC, FRAME_ERR_VERSION,
                                FRAME_ERR_TOO_BIG};
    (void)state;

    for (size_t i = 0; i < N_ELEMS(codes); i++) {
        const char *s = frame_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, frame_strerror(-100));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, frame_strerror(codes[j]));
    }
    assert_string_equal(frame_strerror(0), "ok");
    assert_string_equal(frame_strerror(-100), "unknown frame error");
    assert_string_equal(frame_strerror(1), "unknown frame error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_golden),
        cmocka_unit_test(test_frame_round_trip),
        cmocka_unit_test(test_frame_errors),
        cmocka_unit_test(test_frame_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
