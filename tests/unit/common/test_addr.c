/* test_addr.c — parsing, formatting and ordering of addresses (common/addr.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static struct addr v6(const uint8_t ip[16], uint16_t port)
{
    struct addr a;
    memset(&a, 0, sizeof(a));
    a.family = ADDR_V6;
    a.port = port;
    memcpy(a.ip, ip, 16);
    return a;
}

static const uint8_t ip6_loop[16] = {[15] = 1};
static const uint8_t ip6_any[16] = {0};
static const uint8_t ip6_doc[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}; /* 2001:db8::1 */
static const uint8_t ip6_mapped[16] = {[10] = 0xff, [11] = 0xff, 1, 2, 3, 4};
static const uint8_t ip6_max[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* ---- addr_parse --------------------------------------------------------- */

static void test_addr_parse_accepts(void **state)
{
    static const struct {
        const char *s;
        uint8_t family;
        uint8_t ip[16];
        uint16_t port;
    } good[] = {
        {"127.0.0.1:4000", ADDR_V4, {127, 0, 0, 1}, 4000},
        {"[::1]:1", ADDR_V6, {[15] = 1}, 1},
        {"0.0.0.0:65535", ADDR_V4, {0}, 65535},
        {"255.255.255.255:1", ADDR_V4, {255, 255, 255, 255}, 1},
        {"[2001:db8::1]:443", ADDR_V6, {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, 443},
        {"[::]:9", ADDR_V6, {0}, 9},
        {"[::ffff:1.2.3.4]:80", ADDR_V6, {[10] = 0xff, [11] = 0xff, 1, 2, 3, 4}, 80},
        {"[FFFF:ffff:FFFF:ffff:FFFF:ffff:FFFF:ffff]:65535",
         ADDR_V6,
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff},
         65535},
    };
    (void)state;

    for (size_t i = 0; i < N_ELEMS(good); i++) {
        struct addr a;
        memset(&a, 0xa5, sizeof(a));
        if (addr_parse(good[i].s, &a) != 0)
            fail_msg("\"%s\" rejected", good[i].s);
        assert_int_equal(a.family, good[i].family);
        assert_int_equal(a.pad, 0);
        assert_int_equal(a.port, good[i].port);
        assert_memory_equal(a.ip, good[i].ip, 16); /* IPv4: the rest zero */
    }
}

static void test_addr_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "1.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:0",
        "1.2.3.4:65536",
        ":80",
        "[::1]80",
        "[::1]180", /* "]" not followed by ":" */
        "host:80",
        "1.2.3.4:80x",
        "[::1:80",
        /* and a few more in the same spirit */
        "1.2.3.4:00000",
        "1.2.3.4:99999999999", /* would wrap a 32-bit port */
        "1.2.3.4:18446744073709551617",
        "1.2.3.4:-1",
        "1.2.3.4:+80",
        "1.2.3.4: 80",
        "1.2.3.4:80 ",
        "1.2.3.4:0x50",
        " 1.2.3.4:80",
        "1.2.3:80",
        "256.1.1.1:80",
        "1.2.3.4.5:80",
        "localhost:80",
        "::1:80", /* IPv6 needs brackets */
        "[::1]",
        "[::1]:",
        "[]:80",
        "[1.2.3.4]:80",
        "[::1]]:80",
        "[[::1]:80",
        "[::1]:80:80",
        "[::g]:80",
        "[::1%lo]:80",
        "[::1]:65536",
        "[::1]:0",
        /* a host part longer than any address */
        "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
        "1111111111111111111111111111111111111111111111111111111111111111111111111111:80",
        ":",
        "]:80",
    };
    (void)state;

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct addr a, untouched;
        memset(&a, 0xa5, sizeof(a));
        untouched = a;
        if (addr_parse(bad[i], &a) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        if (memcmp(&a, &untouched, sizeof(a)) != 0)
            fail_msg("\"%s\": *out written on failure", bad[i]);
    }

    struct addr a;
    assert_int_equal(addr_parse(NULL, &a), -EINVAL);
}

/* ---- addr_format -------------------------------------------------------- */

static void test_addr_format_round_trip(void **state)
{
    /* canonical spellings: format(parse(s)) == s */
    static const char *const canon[] = {
        "127.0.0.1:4000",
        "0.0.0.0:1",
        "255.255.255.255:65535",
        "[::1]:1",
        "[::]:65535",
        "[2001:db8::1]:443",
        "[::ffff:1.2.3.4]:80",
        "[fe80::1:2:3:4]:5",
        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", /* the longest: 47 characters */
    };
    (void)state;

    for (size_t i = 0; i < N_ELEMS(canon); i++) {
        struct addr a, b;
        char buf[ADDR_STR_MAX];

        assert_int_equal(addr_parse(canon[i], &a), 0);
        memset(buf, 'X', sizeof(buf));
        addr_format(&a, buf, sizeof(buf));
        assert_string_equal(buf, canon[i]);
        assert_int_equal(addr_parse(buf, &b), 0);
        assert_true(addr_eq(&a, &b));
        assert_memory_equal(&a, &b, sizeof(a));
    }

    /* the longest address fits in ADDR_STR_MAX exactly */
    struct addr a = v6(ip6_max, 65535);
    char buf[ADDR_STR_MAX];
    addr_format(&a, buf, sizeof(buf));
    assert_int_equal(strlen(buf), ADDR_STR_MAX - 1);

    /* built by addr_v4 */
    addr_v4(&a, 192, 168, 0, 254, 8080);
    addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "192.168.0.254:8080");

    /* no family */
    struct addr none;
    memset(&none, 0, sizeof(none));
    addr_format(&none, buf, sizeof(buf));
    assert_string_equal(buf, "(none)");

    /* a small buffer is truncated and still terminated, with nothing past it */
    char small[8];
    memset(small, 'X', sizeof(small));
    addr_v4(&a, 192, 168, 0, 254, 8080);
    addr_format(&a, small, 6);
    assert_string_equal(small, "192.1");
    assert_int_equal(small[6], 'X');
}

/* ---- addr_v4, addr_is_loopback ------------------------------------------ */

static void test_addr_v4(void **state)
{
    struct addr a;
    (void)state;

    memset(&a, 0xa5, sizeof(a));
    addr_v4(&a, 1, 2, 3, 4, 5);
    assert_int_equal(a.family, ADDR_V4);
    assert_int_equal(a.pad, 0);
    assert_int_equal(a.port, 5);
    static const uint8_t ip[16] = {1, 2, 3, 4};
    assert_memory_equal(a.ip, ip, 16);
}

static void test_addr_is_loopback(void **state)
{
    static const struct {
        uint8_t a, b, c, d;
        bool loop;
    } v4s[] = {
        {127, 0, 0, 1, true},        {127, 255, 255, 254, true}, {127, 0, 0, 0, true},
        {126, 255, 255, 255, false}, {128, 0, 0, 1, false},      {10, 0, 0, 1, false},
        {0, 0, 0, 0, false},         {1, 127, 0, 1, false},
    };
    (void)state;

    for (size_t i = 0; i < N_ELEMS(v4s); i++) {
        struct addr a;
        addr_v4(&a, v4s[i].a, v4s[i].b, v4s[i].c, v4s[i].d, 80);
        if (addr_is_loopback(&a) != v4s[i].loop)
            fail_msg("%u.%u.%u.%u: want loopback=%d", v4s[i].a, v4s[i].b, v4s[i].c, v4s[i].d,
                     v4s[i].loop);
    }

    struct addr a = v6(ip6_loop, 1);
    assert_true(addr_is_loopback(&a));
    a = v6(ip6_any, 1);
    assert_false(addr_is_loopback(&a));
    a = v6(ip6_doc, 1);
    assert_false(addr_is_loopback(&a));
    static const uint8_t two[16] = {[15] = 2};
    a = v6(two, 1);
    assert_false(addr_is_loopback(&a));
    static const uint8_t high_one[16] = {1, [15] = 1};
    a = v6(high_one, 1);
    assert_false(addr_is_loopback(&a));
    /* an IPv6 address whose first byte is 127 is not IPv4 loopback */
    static const uint8_t v6_127[16] = {127, 0, 0, 1};
    a = v6(v6_127, 1);
    assert_false(addr_is_loopback(&a));

    /* no family */
    memset(&a, 0, sizeof(a));
    a.ip[0] = 127;
    assert_false(addr_is_loopback(&a));
}

/* ---- addr_cmp ----------------------------------------------------------- */

static int qsort_addr_cmp(const void *a, const void *b)
{
    return addr_cmp(a, b);
}

static void test_addr_cmp_order(void **state)
{
    /* In strictly increasing order: family, then ip, then port. */
    struct addr sorted[12];
    size_t n = 0;
    (void)state;

    memset(&sorted[n++], 0, sizeof(struct addr)); /* ADDR_NONE first */
    addr_v4(&sorted[n++], 0, 0, 0, 0, 1);
    addr_v4(&sorted[n++], 1, 2, 3, 4, 1);
    addr_v4(&sorted[n++], 1, 2, 3, 4, 2);
    addr_v4(&sorted[n++], 1, 2, 3, 4, 65535);
    addr_v4(&sorted[n++], 1, 2, 3, 5, 1); /* ip before port */
    addr_v4(&sorted[n++], 2, 0, 0, 0, 0);
    addr_v4(&sorted[n++], 255, 255, 255, 255, 65535);
    sorted[n++] = v6(ip6_any, 1); /* any v6 after every v4 */
    sorted[n++] = v6(ip6_loop, 1);
    sorted[n++] = v6(ip6_mapped, 1);
    sorted[n++] = v6(ip6_max, 0);
    assert_int_equal(n, N_ELEMS(sorted));

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int c = addr_cmp(&sorted[i], &sorted[j]);
            int want = (i > j) - (i < j);
            if ((c > 0) - (c < 0) != want)
                fail_msg("addr_cmp(sorted[%zu], sorted[%zu]) = %d, want sign %d", i, j, c, want);
            assert_int_equal(addr_eq(&sorted[i], &sorted[j]), i == j);
        }
    }

    /* qsort agrees */
    struct addr shuffled[N_ELEMS(sorted)];
    for (size_t i = 0; i < n; i++)
        shuffled[i] = sorted[(i * 5 + 3) % n]; /* 5 is coprime with 12 */
    qsort(shuffled, n, sizeof(shuffled[0]), qsort_addr_cmp);
    assert_memory_equal(shuffled, sorted, sizeof(sorted));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse_accepts),     cmocka_unit_test(test_addr_parse_rejects),
        cmocka_unit_test(test_addr_format_round_trip), cmocka_unit_test(test_addr_v4),
        cmocka_unit_test(test_addr_is_loopback),       cmocka_unit_test(test_addr_cmp_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
