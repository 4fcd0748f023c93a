/* test_id.c — ring identifiers and interval arithmetic (common/id.c).
 *
 * Table-driven: each table row is one case, and a failure names its row.
 * Ids in the tables are written as four 64-bit words, most significant
 * first, so that 2^256 - 1, carries across word boundaries and values near
 * zero can all be spelled as constants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/id.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* clang-format off */
/* Eight big-endian bytes of the 64-bit word w, the i-th word of an id. */
#define WORD_(i, w)                                                                                \
    [8 * (i) + 0] = (uint8_t)((uint64_t)(w) >> 56), [8 * (i) + 1] = (uint8_t)((uint64_t)(w) >> 48), \
    [8 * (i) + 2] = (uint8_t)((uint64_t)(w) >> 40), [8 * (i) + 3] = (uint8_t)((uint64_t)(w) >> 32), \
    [8 * (i) + 4] = (uint8_t)((uint64_t)(w) >> 24), [8 * (i) + 5] = (uint8_t)((uint64_t)(w) >> 16), \
    [8 * (i) + 6] = (uint8_t)((uint64_t)(w) >> 8), [8 * (i) + 7] = (uint8_t)(w)
/* clang-format on */

/* The id w0 * 2^192 + w1 * 2^128 + w2 * 2^64 + w3. */
#define ID4(w0, w1, w2, w3)                                                                        \
    {                                                                                              \
        .b = { WORD_(0, w0), WORD_(1, w1), WORD_(2, w2), WORD_(3, w3) }                            \
    }
#define LO(v)  ID4(0, 0, 0, v) /* v in the low bytes */
#define HI(v)  ID4(v, 0, 0, 0) /* v in the high bytes */
#define M64    UINT64_MAX
#define ZERO   LO(0)
#define MAXID  ID4(M64, M64, M64, M64) /* 2^256 - 1 */
#define TOPBIT HI(0x8000000000000000u) /* 2^255 */

/* Runtime helpers for the non-table tests. */
static struct id id_lo(uint64_t v)
{
    struct id r = LO(v);
    return r;
}

static struct id id_hi(uint64_t v)
{
    struct id r = HI(v);
    return r;
}

static const char *hex(const struct id *a, char buf[ID_HEX_LEN + 1])
{
    id_to_hex(a, buf);
    return buf;
}

/* Fails the test with both values in hex when a != b. */
static void check_id_equal(const struct id *got, const struct id *want, size_t row)
{
    char g[ID_HEX_LEN + 1], w[ID_HEX_LEN + 1];

    if (memcmp(got->b, want->b, ID_BYTES) != 0)
        fail_msg("row %zu: got %s, want %s", row, hex(got, g), hex(want, w));
}

/* ---- interval membership ------------------------------------------------ */

struct interval_case {
    struct id x, a, b;
    bool oo, oc, co, cc;
};

static const struct interval_case interval_cases[] = {
    /* a < b: (10, 20) */
    {LO(10), LO(10), LO(20), false, false, true, true},
    {LO(11), LO(10), LO(20), true, true, true, true},
    {LO(15), LO(10), LO(20), true, true, true, true},
    {LO(19), LO(10), LO(20), true, true, true, true},
    {LO(20), LO(10), LO(20), false, true, false, true},
    {LO(9), LO(10), LO(20), false, false, false, false},
    {LO(21), LO(10), LO(20), false, false, false, false},
    {ZERO, LO(10), LO(20), false, false, false, false},
    {MAXID, LO(10), LO(20), false, false, false, false},
    {HI(1), LO(10), LO(20), false, false, false, false},
    /* a < b in the high word, x differing only in a low word */
    {ID4(1, 0, 0, 1), HI(1), HI(2), true, true, true, true},
    {ID4(1, M64, M64, M64), HI(1), HI(2), true, true, true, true},
    {ID4(0, M64, M64, M64), HI(1), HI(2), false, false, false, false},
    {ID4(2, 0, 0, 1), HI(1), HI(2), false, false, false, false},
    /* a and b adjacent: the open interval is empty */
    {LO(5), LO(5), LO(6), false, false, true, true},
    {LO(6), LO(5), LO(6), false, true, false, true},
    {LO(7), LO(5), LO(6), false, false, false, false},
    /* the whole ring minus the ends: (0, 2^256-1) */
    {ZERO, ZERO, MAXID, false, false, true, true},
    {LO(1), ZERO, MAXID, true, true, true, true},
    {TOPBIT, ZERO, MAXID, true, true, true, true},
    {ID4(M64, M64, M64, M64 - 1), ZERO, MAXID, true, true, true, true},
    {MAXID, ZERO, MAXID, false, true, false, true},

    /* a > b: wraps past zero, (2^255, 10) */
    {TOPBIT, TOPBIT, LO(10), false, false, true, true},
    {ID4(0x8000000000000000u, 0, 0, 1), TOPBIT, LO(10), true, true, true, true},
    {MAXID, TOPBIT, LO(10), true, true, true, true},
    {ZERO, TOPBIT, LO(10), true, true, true, true},
    {LO(1), TOPBIT, LO(10), true, true, true, true},
    {LO(9), TOPBIT, LO(10), true, true, true, true},
    {LO(10), TOPBIT, LO(10), false, true, false, true},
    {LO(11), TOPBIT, LO(10), false, false, false, false},
    {HI(0x7fffffffffffffffu), TOPBIT, LO(10), false, false, false, false},
    {ID4(0x7fffffffffffffffu, M64, M64, M64), TOPBIT, LO(10), false, false, false, false},
    /* (2^256-1, 0): adjacent across zero, the open interval is empty */
    {MAXID, MAXID, ZERO, false, false, true, true},
    {ZERO, MAXID, ZERO, false, true, false, true},
    {LO(1), MAXID, ZERO, false, false, false, false},
    {TOPBIT, MAXID, ZERO, false, false, false, false},
    /* (2^256-1, 1): only zero inside */
    {ZERO, MAXID, LO(1), true, true, true, true},
    {LO(1), MAXID, LO(1), false, true, false, true},
    {LO(2), MAXID, LO(1), false, false, false, false},
    /* (1, 0): the open form is all but 0 and 1 */
    {LO(2), LO(1), ZERO, true, true, true, true},
    {MAXID, LO(1), ZERO, true, true, true, true},
    {ZERO, LO(1), ZERO, false, true, false, true},
    {LO(1), LO(1), ZERO, false, false, true, true},

    /* a == b: (a, a) is all but a; (a, a], [a, a), [a, a] are everything */
    {LO(7), LO(7), LO(7), false, true, true, true},
    {LO(8), LO(7), LO(7), true, true, true, true},
    {LO(6), LO(7), LO(7), true, true, true, true},
    {ZERO, LO(7), LO(7), true, true, true, true},
    {MAXID, LO(7), LO(7), true, true, true, true},
    {ZERO, ZERO, ZERO, false, true, true, true},
    {MAXID, ZERO, ZERO, true, true, true, true},
    {LO(1), ZERO, ZERO, true, true, true, true},
    {MAXID, MAXID, MAXID, false, true, true, true},
    {ZERO, MAXID, MAXID, true, true, true, true},
    {ID4(M64, M64, M64, M64 - 1), MAXID, MAXID, true, true, true, true},
    {TOPBIT, TOPBIT, TOPBIT, false, true, true, true},
};

static void test_id_intervals(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(interval_cases); i++) {
        const struct interval_case *c = &interval_cases[i];
        bool oo = id_in_oo(&c->x, &c->a, &c->b), oc = id_in_oc(&c->x, &c->a, &c->b);
        bool co = id_in_co(&c->x, &c->a, &c->b), cc = id_in_cc(&c->x, &c->a, &c->b);

        if (oo != c->oo || oc != c->oc || co != c->co || cc != c->cc) {
            char x[ID_HEX_LEN + 1], a[ID_HEX_LEN + 1], b[ID_HEX_LEN + 1];
            fail_msg("row %zu: x=%s a=%s b=%s: oo/oc/co/cc got %d%d%d%d want %d%d%d%d", i,
                     hex(&c->x, x), hex(&c->a, a), hex(&c->b, b), oo, oc, co, cc, c->oo, c->oc,
                     c->co, c->cc);
        }
    }
}

/* Properties that hold for any x, a, b, checked over every row's ids. */
static void test_id_interval_relations(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(interval_cases); i++) {
        const struct interval_case *c = &interval_cases[i];
        const struct id *x = &c->x, *a = &c->a, *b = &c->b;
        bool ab = id_eq(a, b);

        /* the closed forms are the open form plus the named end points */
        assert_int_equal(id_in_oc(x, a, b), id_in_oo(x, a, b) || id_eq(x, b));
        assert_int_equal(id_in_co(x, a, b), id_in_oo(x, a, b) || id_eq(x, a));
        assert_int_equal(id_in_cc(x, a, b), id_in_oo(x, a, b) || id_eq(x, a) || id_eq(x, b));
        /* for a != b, (a, b) and [b, a] partition the ring */
        if (!ab)
            assert_int_not_equal(id_in_oo(x, a, b), id_in_cc(x, b, a));
        /* (a, b] and (b, a] partition it too (when a != b) */
        if (!ab)
            assert_int_not_equal(id_in_oc(x, a, b), id_in_oc(x, b, a));
    }
}

/* ---- addition ----------------------------------------------------------- */

struct pow2_case {
    struct id a;
    unsigned bit;
    struct id want;
};

static const struct pow2_case pow2_cases[] = {
    {ZERO, 0, LO(1)},
    {ZERO, 7, LO(0x80)},
    {ZERO, 8, LO(0x100)},
    {ZERO, 63, LO(0x8000000000000000u)},
    {ZERO, 64, ID4(0, 0, 1, 0)},
    {ZERO, 255, TOPBIT},
    /* carries */
    {LO(1), 0, LO(2)},
    {LO(0xff), 0, LO(0x100)},
    {LO(0x80), 7, LO(0x100)},
    {LO(0x7f), 7, LO(0xff)},
    {LO(0xff00), 8, LO(0x10000)},
    {LO(0xffff), 8, LO(0x100ff)},
    {LO(M64), 0, ID4(0, 0, 1, 0)},
    {ID4(0, M64, M64, M64), 0, HI(1)},
    {ID4(0, M64, M64, M64), 7, ID4(1, 0, 0, 0x7f)},
    {ID4(0x7fffffffffffffffu, M64, M64, M64), 0, TOPBIT},
    {ID4(0, 0, 0, 0x8000000000000000u), 63, ID4(0, 0, 1, 0)},
    /* wrap past 2^256 */
    {MAXID, 0, ZERO},
    {MAXID, 7, LO(0x7f)},
    {MAXID, 8, LO(0xff)},
    {MAXID, 255, ID4(0x7fffffffffffffffu, M64, M64, M64)},
    {TOPBIT, 255, ZERO},
    {ID4(0xc000000000000000u, 0, 0, 5), 255, ID4(0x4000000000000000u, 0, 0, 5)},
    {ID4(0xff00000000000000u, 0, 0, 0), 248, ZERO},
};

static void test_id_add_pow2(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(pow2_cases); i++) {
        const struct pow2_case *c = &pow2_cases[i];
        struct id out;

        memset(&out, 0xa5, sizeof(out));
        id_add_pow2(&out, &c->a, c->bit);
        check_id_equal(&out, &c->want, i);

        /* out may alias a */
        out = c->a;
        id_add_pow2(&out, &out, c->bit);
        check_id_equal(&out, &c->want, i);

        /* same as id_add with the power of two spelled out */
        struct id p = ZERO;
        p.b[ID_BYTES - 1 - c->bit / 8] = (uint8_t)(1u << (c->bit % 8));
        id_add(&out, &c->a, &p);
        check_id_equal(&out, &c->want, i);
    }
}

struct add_case {
    struct id a, b, sum;
};

static const struct add_case add_cases[] = {
    {ZERO, ZERO, ZERO},
    {LO(1), LO(2), LO(3)},
    {LO(0xff), LO(1), LO(0x100)},
    {LO(M64), LO(1), ID4(0, 0, 1, 0)},
    {ID4(0, M64, M64, M64), LO(1), HI(1)},
    {ID4(0, M64, M64, M64), ID4(0, M64, M64, M64), ID4(1, M64, M64, M64 - 1)},
    {MAXID, LO(1), ZERO},
    {MAXID, MAXID, ID4(M64, M64, M64, M64 - 1)},
    {TOPBIT, TOPBIT, ZERO},
    {MAXID, ZERO, MAXID},
    {ID4(1, 2, 3, 4), ID4(5, 6, 7, 8), ID4(6, 8, 10, 12)},
    {HI(0x0123456789abcdefu), LO(0xfedcba9876543210u),
     ID4(0x0123456789abcdefu, 0, 0, 0xfedcba9876543210u)},
};

static void test_id_add(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(add_cases); i++) {
        const struct add_case *c = &add_cases[i];
        struct id out, tmp;

        id_add(&out, &c->a, &c->b);
        check_id_equal(&out, &c->sum, i);
        id_add(&out, &c->b, &c->a); /* commutes */
        check_id_equal(&out, &c->sum, i);

        tmp = c->a; /* out may alias either operand */
        id_add(&tmp, &tmp, &c->b);
        check_id_equal(&tmp, &c->sum, i);
        tmp = c->b;
        id_add(&tmp, &c->a, &tmp);
        check_id_equal(&tmp, &c->sum, i);

        /* the distance from a to a + b is b */
        id_distance(&out, &c->a, &c->sum);
        check_id_equal(&out, &c->b, i);
    }
}

/* ---- distance ----------------------------------------------------------- */

struct distance_case {
    struct id a, b, d; /* d = b - a mod 2^256 */
};

static const struct distance_case distance_cases[] = {
    {ZERO, ZERO, ZERO},
    {LO(7), LO(7), ZERO},
    {MAXID, MAXID, ZERO},
    {LO(10), LO(20), LO(10)},
    {LO(20), LO(10), ID4(M64, M64, M64, M64 - 9)},
    {ZERO, MAXID, MAXID},
    {MAXID, ZERO, LO(1)},
    {MAXID, LO(5), LO(6)},
    {LO(1), HI(1), ID4(0, M64, M64, M64)},
    {HI(1), LO(1), ID4(M64, 0, 0, 1)},
    {TOPBIT, ZERO, TOPBIT},
    {ZERO, TOPBIT, TOPBIT},
    {LO(0x100), LO(0xff), MAXID},
    {ID4(0, 0, 1, 0), LO(M64), MAXID},
};

static void test_id_distance(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(distance_cases); i++) {
        const struct distance_case *c = &distance_cases[i];
        struct id out, back, tmp;

        memset(&out, 0xa5, sizeof(out));
        id_distance(&out, &c->a, &c->b);
        check_id_equal(&out, &c->d, i);

        /* a + (b - a) = b */
        id_add(&back, &c->a, &out);
        check_id_equal(&back, &c->b, i);

        /* d(a, b) + d(b, a) = 0 */
        id_distance(&tmp, &c->b, &c->a);
        id_add(&tmp, &tmp, &out);
        check_id_equal(&tmp, &(struct id)ZERO, i);

        tmp = c->a; /* out may alias a */
        id_distance(&tmp, &tmp, &c->b);
        check_id_equal(&tmp, &c->d, i);
        tmp = c->b; /* or b */
        id_distance(&tmp, &c->a, &tmp);
        check_id_equal(&tmp, &c->d, i);
    }
}

/* ---- comparison --------------------------------------------------------- */

struct cmp_case {
    struct id a, b;
    int sign;
};

static const struct cmp_case cmp_cases[] = {
    {ZERO, ZERO, 0},
    {MAXID, MAXID, 0},
    {ZERO, LO(1), -1},
    {LO(1), ZERO, 1},
    {LO(0xff), LO(0x100), -1},
    {HI(1), LO(M64), 1},
    {ID4(0, 0, 1, 0), LO(M64), 1},
    {TOPBIT, ID4(0x7fffffffffffffffu, M64, M64, M64), 1},
    {ZERO, MAXID, -1},
    {ID4(M64, M64, M64, M64 - 1), MAXID, -1},
    {ID4(1, 2, 3, 4), ID4(1, 2, 3, 4), 0},
    {ID4(1, 2, 3, 4), ID4(1, 2, 4, 3), -1},
};

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void test_id_cmp(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(cmp_cases); i++) {
        const struct cmp_case *c = &cmp_cases[i];
        if (sign(id_cmp(&c->a, &c->b)) != c->sign || sign(id_cmp(&c->b, &c->a)) != -c->sign)
            fail_msg("row %zu: id_cmp sign wrong (want %d)", i, c->sign);
        assert_int_equal(id_eq(&c->a, &c->b), c->sign == 0);
    }

    struct id z = ZERO, one = LO(1), top = TOPBIT, mx = MAXID;
    assert_true(id_is_zero(&z));
    assert_false(id_is_zero(&one));
    assert_false(id_is_zero(&top));
    assert_false(id_is_zero(&mx));
}

/* ---- top 64 bits -------------------------------------------------------- */

static void test_id_top64(void **state)
{
    static const uint64_t vals[] = {0, 1, 0x80, 0x0123456789abcdefu, 0x8000000000000000u, M64};
    (void)state;

    for (size_t i = 0; i < N_ELEMS(vals); i++) {
        struct id a;
        memset(&a, 0xff, sizeof(a)); /* the low bits must be cleared */
        id_from_top64(&a, vals[i]);
        struct id want = id_hi(vals[i]);
        check_id_equal(&a, &want, i);
        assert_true(id_top64(&a) == vals[i]);
    }

    /* only the top 64 bits count */
    struct id a = ID4(0x0123456789abcdefu, M64, M64, M64);
    assert_true(id_top64(&a) == 0x0123456789abcdefu);
    struct id b = id_lo(M64);
    assert_true(id_top64(&b) == 0);
    struct id mx = MAXID;
    assert_true(id_top64(&mx) == M64);
    struct id top = TOPBIT;
    assert_true(id_top64(&top) == 0x8000000000000000u);
}

/* ---- hex ---------------------------------------------------------------- */

struct hex_case {
    struct id id;
    const char *hex;
};

static const struct hex_case hex_cases[] = {
    {ZERO, "0000000000000000000000000000000000000000000000000000000000000000"},
    {LO(1), "0000000000000000000000000000000000000000000000000000000000000001"},
    {TOPBIT, "8000000000000000000000000000000000000000000000000000000000000000"},
    {MAXID, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
    {ID4(0x0123456789abcdefu, 0xfedcba9876543210u, 0x00ff00ff00ff00ffu, 0xa5),
     "0123456789abcdeffedcba987654321000ff00ff00ff00ff00000000000000a5"},
};

static void test_id_hex_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(hex_cases); i++) {
        const struct hex_case *c = &hex_cases[i];
        char buf[ID_HEX_LEN + 2];
        struct id back;

        memset(buf, 'X', sizeof(buf));
        id_to_hex(&c->id, buf);
        assert_string_equal(buf, c->hex);
        assert_int_equal(buf[ID_HEX_LEN + 1], 'X'); /* nothing past the NUL */

        memset(&back, 0xa5, sizeof(back));
        assert_int_equal(id_from_hex(c->hex, &back), 0);
        check_id_equal(&back, &c->id, i);

        /* upper case parses to the same id */
        char upper[ID_HEX_LEN + 1];
        for (size_t k = 0; k <= ID_HEX_LEN; k++)
            upper[k] = (c->hex[k] >= 'a' && c->hex[k] <= 'f') ? (char)(c->hex[k] - 32) : c->hex[k];
        memset(&back, 0xa5, sizeof(back));
        assert_int_equal(id_from_hex(upper, &back), 0);
        check_id_equal(&back, &c->id, i);
    }

    /* every byte value survives */
    struct id all, back;
    char buf[ID_HEX_LEN + 1];
    for (int v = 0; v < 256; v += ID_BYTES) {
        for (int k = 0; k < ID_BYTES; k++)
            all.b[k] = (uint8_t)(v + k);
        id_to_hex(&all, buf);
        assert_int_equal(id_from_hex(buf, &back), 0);
        check_id_equal(&back, &all, (size_t)v);
    }
}

/* Fails unless s is rejected and *out left as it was. */
static void check_hex_rejected(const char *s, const char *what)
{
    struct id out, untouched;

    memset(&out, 0xa5, sizeof(out));
    untouched = out;
    if (id_from_hex(s, &out) != -EINVAL)
        fail_msg("%s: \"%s\" was accepted", what, s ? s : "(null)");
    if (memcmp(&out, &untouched, sizeof(out)) != 0)
        fail_msg("%s: *out written on failure", what);
}

static void test_id_hex_rejects(void **state)
{
    /* clang-format off */
    /* Wrong lengths, all digits valid. */
    static const size_t lengths[] = {0, 1, 2, 32, ID_HEX_LEN - 2, ID_HEX_LEN - 1, ID_HEX_LEN + 1,
                                     ID_HEX_LEN + 2, 2 * ID_HEX_LEN};
    /* One bad character in an otherwise valid 64-digit string. */
    static const struct {
        size_t pos;
        char c;
    } chars[] = {
        {0, 'g'}, {63, 'g'}, {31, ':'}, {32, ' '}, {1, 'x'}, {63, '\n'}, {0, '-'}, {0, '+'},
        {5, 'z'}, {7, '\xff'}, {8, '\x80'},
        /* just outside the digit ranges: '0' - 1, 'A' - 1, 'F' + 1, 'a' - 1 */
        {5, '/'}, {5, '@'}, {5, 'G'}, {5, '`'},
    };
    /* clang-format on */
    char s[2 * ID_HEX_LEN + 1];
    (void)state;

    for (size_t i = 0; i < N_ELEMS(lengths); i++) {
        char what[32];
        memset(s, '0', lengths[i]);
        s[lengths[i]] = '\0';
        snprintf(what, sizeof(what), "length %zu", lengths[i]);
        check_hex_rejected(s, what);
    }

    for (size_t i = 0; i < N_ELEMS(chars); i++) {
        char what[32];
        memset(s, 'a', ID_HEX_LEN);
        s[ID_HEX_LEN] = '\0';
        s[chars[i].pos] = chars[i].c;
        snprintf(what, sizeof(what), "char 0x%02x at %zu", (unsigned char)chars[i].c, chars[i].pos);
        check_hex_rejected(s, what);
    }

    /* "0x" prefix: 66 characters, and the 'x' would be bad anyway */
    check_hex_rejected("0x0000000000000000000000000000000000000000000000000000000000000000",
                       "0x prefix");

    /* a NUL inside the 64 characters makes it short */
    memset(s, '0', ID_HEX_LEN);
    s[ID_HEX_LEN] = '\0';
    s[10] = '\0';
    check_hex_rejected(s, "embedded NUL");

    check_hex_rejected(NULL, "NULL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_intervals),   cmocka_unit_test(test_id_interval_relations),
        cmocka_unit_test(test_id_add_pow2),    cmocka_unit_test(test_id_add),
        cmocka_unit_test(test_id_distance),    cmocka_unit_test(test_id_cmp),
        cmocka_unit_test(test_id_top64),       cmocka_unit_test(test_id_hex_round_trip),
        cmocka_unit_test(test_id_hex_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
