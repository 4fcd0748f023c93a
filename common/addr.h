/* addr.h — a node's network address (IPv4 or IPv6 and a TCP port). */
#ifndef COOPFS_COMMON_ADDR_H
#define COOPFS_COMMON_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDR_STR_MAX 48 /* "[" 39-char IPv6 "]:" 5-digit port NUL, rounded up */

enum { ADDR_NONE = 0, ADDR_V4 = 4, ADDR_V6 = 6 };

struct addr {
    uint8_t family; /* ADDR_NONE, ADDR_V4, ADDR_V6 */
    uint8_t pad;    /* always zero, so addresses compare with memcmp */
    uint16_t port;  /* host byte order */
    uint8_t ip[16]; /* network byte order; IPv4 uses the first 4, rest zero */
};

/* Builds an IPv4 address from host-order a.b.c.d and a port. */
void addr_v4(struct addr *out, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port);
bool addr_eq(const struct addr *a, const struct addr *b);
/* Total order (for sorting and lookups); family, then ip, then port. */
int addr_cmp(const struct addr *a, const struct addr *b);
/* Is it a loopback address (127.0.0.0/8 or ::1)? */
bool addr_is_loopback(const struct addr *a);

/* Formats "1.2.3.4:5" or "[::1]:5" into buf (ADDR_STR_MAX bytes). */
void addr_format(const struct addr *a, char *buf, size_t size);
/* Parses "HOST:PORT" where HOST is a numeric IPv4 address or a bracketed
 * IPv6 address, and PORT is 1..65535. Returns 0 or -EINVAL; *out is
 * written only on success. */
int addr_parse(const char *s, struct addr *out);
/* The same, but port 0 ("let the kernel choose") is accepted too. */
int addr_parse_listen(const char *s, struct addr *out);
/* Is the IP all zeros (0.0.0.0 or ::)? */
bool addr_is_unspecified(const struct addr *a);

#endif
