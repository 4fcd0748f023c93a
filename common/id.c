/* id.c — 256-bit ring identifiers and interval arithmetic. */
#include "common/id.h"

#include <errno.h>
#include <string.h>

int id_cmp(const struct id *a, const struct id *b)
{
    return memcmp(a->b, b->b, ID_BYTES);
}

bool id_eq(const struct id *a, const struct id *b)
{
    return memcmp(a->b, b->b, ID_BYTES) == 0;
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

void id_add(struct id *out, const struct id *a, const struct id *b)
{
    struct id r;
    unsigned carry = 0;

    for (int i = ID_BYTES - 1; i >= 0; i--) {
        unsigned v = (unsigned)a->b[i] + b->b[i] + carry;
        r.b[i] = (uint8_t)v;
        carry = v >> 8;
    }
    *out = r;
}

void id_distance(struct id *out, const struct id *a, const struct id *b)
{
    struct id r;
    int borrow = 0;

    for (int i = ID_BYTES - 1; i >= 0; i--) {
        int v = (int)b->b[i] - a->b[i] - borrow;
        borrow = v < 0;
        r.b[i] = (uint8_t)(v + (borrow ? 256 : 0));
    }
    *out = r;
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
