/* id.h — 256-bit ring identifiers and ring-interval arithmetic.
 *
 * An identifier is a big-endian unsigned 256-bit integer; the ring is the
 * integers modulo 2^256. Intervals run clockwise from their first bound to
 * their second and may wrap past zero. When both bounds are equal, the open
 * interval (a, a) is the whole ring except a, the half-open ones (a, a] and
 * [a, a) are the whole ring, and the closed [a, a] is the whole ring too
 * (the conventions that make Chord's single-node ring work).
 */
#ifndef COOPFS_COMMON_ID_H
#define COOPFS_COMMON_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_BYTES   32
#define ID_BITS    256
#define ID_HEX_LEN 64

struct id {
    uint8_t b[ID_BYTES]; /* big-endian */
};

/* Returns <0, 0, >0 as a is below, equal to or above b (as integers). */
int id_cmp(const struct id *a, const struct id *b);
bool id_eq(const struct id *a, const struct id *b);
bool id_is_zero(const struct id *a);

/* out = a + 2^bit (mod 2^256), for bit in [0, 255]. out may alias a. */
void id_add_pow2(struct id *out, const struct id *a, unsigned bit);
/* out = a + b (mod 2^256). */
void id_add(struct id *out, const struct id *a, const struct id *b);
/* out = b - a (mod 2^256): the clockwise distance from a to b. */
void id_distance(struct id *out, const struct id *a, const struct id *b);

/* Interval membership, clockwise from a to b. */
bool id_in_oo(const struct id *x, const struct id *a, const struct id *b); /* (a, b) */
bool id_in_oc(const struct id *x, const struct id *a, const struct id *b); /* (a, b] */
bool id_in_co(const struct id *x, const struct id *a, const struct id *b); /* [a, b) */
bool id_in_cc(const struct id *x, const struct id *a, const struct id *b); /* [a, b] */

/* The top 64 bits of an id: handy for plots and balance maths. */
uint64_t id_top64(const struct id *a);
/* The id whose top 64 bits are v and the rest zero. */
void id_from_top64(struct id *out, uint64_t v);

/* Formats 64 lower-case hex digits and a NUL into buf (ID_HEX_LEN + 1 bytes). */
void id_to_hex(const struct id *a, char *buf);
/* Parses exactly 64 hex digits (either case). Returns 0 or -EINVAL; *out is
 * written only on success. */
int id_from_hex(const char *s, struct id *out);

#endif
