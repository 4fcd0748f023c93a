/* id.c — 256-bit ring identifiers and interval arithmetic. */
#include "common/id.h"

#include <errno.h>
#include <string.h>

/* The first 8 bytes as a big-endian number: ids are hashes, so they
 * nearly always differ there, and one integer compare beats memcmp. */
static uint64_t head64(const struct id *a)
{
    uint64_t v;
    memcpy(&v, a->b, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

int id_cmp(const struct id *a, const struct id *b)
{
    uint64_t x = head64(a), y = head64(b);
    if (x != y)
        return x < y ? -1 : 1;
    return memcmp(a->b + 8, b->b + 8, ID_BYTES - 8);
}

bool id_eq(const struct id *a, const struct id *b)
{
    return head64(a) == head64(b) && memcmp(a->b + 8, b->b + 8, ID_BYTES - 8) == 0;
}

bool id_is_zero(const struct id *a)
{
    static const struct id zero;
    return id_eq(a, &zero);
}

void id_add_pow2(struct id *out, const struct id *a, unsigned bit)
{
    struct id r = *a;
    unsigned byte = ID_BYTES - 1 - bit / 8;
    unsigned carry = 1u << (bit % 8);

    for (int i = (int)byte; i >= 0 && carry; i--) {
        unsigned v = r.b[i] + carry;
        r.b[i] = (uint8_t)v;
        carry = v >> 8;
    }
    *out = r;
}

/* Ids as four 64-bit limbs, most significant first. */
static void limbs(const struct id *a, uint64_t l[4])
{
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        memcpy(&v, a->b + 8 * i, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        l[i] = v;
    }
}

static void from_limbs(struct id *out, const uint64_t l[4])
{
    for (int i = 0; i < 4; i++) {
        uint64_t v = l[i];
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        memcpy(out->b + 8 * i, &v, 8);
    }
}

void id_add(struct id *out, const struct id *a, const struct id *b)
{
    uint64_t x[4], y[4], r[4];
    unsigned carry = 0;

    limbs(a, x);
    limbs(b, y);
    for (int i = 3; i >= 0; i--) {
        uint64_t t = x[i] + y[i];
        unsigned c1 = t < x[i];
        r[i] = t + carry;
        carry = c1 | (r[i] < t);
    }
    from_limbs(out, r);
}

void id_distance(struct id *out, const struct id *a, const struct id *b)
{
    uint64_t x[4], y[4], r[4];
    unsigned borrow = 0;

    limbs(a, x);
    limbs(b, y);
    for (int i = 3; i >= 0; i--) {
        uint64_t t = y[i] - x[i];
        unsigned b1 = y[i] < x[i];
        r[i] = t - borrow;
        borrow = b1 | (t < borrow);
    }
    from_limbs(out, r);
}

bool id_in_oo(const struct id *x, const struct id *a, const struct id *b)
{
    int ab = id_cmp(a, b);

    if (ab < 0)
        return id_cmp(a, x) < 0 && id_cmp(x, b) < 0;
    if (ab > 0) /* wraps past zero */
        return id_cmp(a, x) < 0 || id_cmp(x, b) < 0;
    return !id_eq(x, a);
}

bool id_in_oc(const struct id *x, const struct id *a, const struct id *b)
{
    return id_eq(x, b) || id_in_oo(x, a, b);
}

bool id_in_co(const struct id *x, const struct id *a, const struct id *b)
{
    return id_eq(x, a) || id_in_oo(x, a, b);
}

bool id_in_cc(const struct id *x, const struct id *a, const struct id *b)
{
    return id_eq(x, a) || id_eq(x, b) || id_in_oo(x, a, b);
}

uint64_t id_top64(const struct id *a)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | a->b[i];
    return v;
}

void id_from_top64(struct id *out, uint64_t v)
{
    memset(out, 0, sizeof(*out));
    for (int i = 7; i >= 0; i--) {
        out->b[i] = (uint8_t)v;
        v >>= 8;
    }
}

void id_to_hex(const struct id *a, char *buf)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < ID_BYTES; i++) {
        buf[2 * i] = digits[a->b[i] >> 4];
        buf[2 * i + 1] = digits[a->b[i] & 15];
    }
    buf[ID_HEX_LEN] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int id_from_hex(const char *s, struct id *out)
{
    struct id r;

    if (!s || strlen(s) != ID_HEX_LEN)
        return -EINVAL;
    for (int i = 0; i < ID_BYTES; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        r.b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = r;
    return 0;
}
