/* addr.c — network addresses. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void addr_v4(struct addr *out, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    memset(out, 0, sizeof(*out));
    out->family = ADDR_V4;
    out->port = port;
    out->ip[0] = a;
    out->ip[1] = b;
    out->ip[2] = c;
    out->ip[3] = d;
}

bool addr_eq(const struct addr *a, const struct addr *b)
{
    return addr_cmp(a, b) == 0;
}

int addr_cmp(const struct addr *a, const struct addr *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int c = memcmp(a->ip, b->ip, sizeof(a->ip));
    if (c)
        return c;
    if (a->port != b->port)
        return a->port < b->port ? -1 : 1;
    return 0;
}

bool addr_is_loopback(const struct addr *a)
{
    static const uint8_t v6_loop[16] = {[15] = 1};
    if (a->family == ADDR_V4)
        return a->ip[0] == 127;
    if (a->family == ADDR_V6)
        return memcmp(a->ip, v6_loop, 16) == 0;
    return false;
}

void addr_format(const struct addr *a, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];

    if (a->family == ADDR_V4) {
        inet_ntop(AF_INET, a->ip, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, a->port);
    } else if (a->family == ADDR_V6) {
        inet_ntop(AF_INET6, a->ip, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, a->port);
    } else {
        snprintf(buf, size, "(none)");
    }
}

static int parse(const char *s, bool port0, struct addr *out)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *hs, *he;
    struct addr r;

    if (!s)
        return -EINVAL;
    memset(&r, 0, sizeof(r));
    if (s[0] == '[') {
        he = strchr(s, ']');
        if (!he || he[1] != ':')
            return -EINVAL;
        hs = s + 1;
        colon = he + 1;
        r.family = ADDR_V6;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        hs = s;
        he = colon;
        r.family = ADDR_V4;
    }
    if ((size_t)(he - hs) >= sizeof(host) || he == hs)
        return -EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (inet_pton(r.family == ADDR_V4 ? AF_INET : AF_INET6, host, r.ip) != 1)
        return -EINVAL;

    const char *p = colon + 1;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    char *end;
    unsigned long port = strtoul(p, &end, 10);
    if (*end != '\0' || (port == 0 && !port0) || port > 65535 || end - p > 5)
        return -EINVAL;
    r.port = (uint16_t)port;
    *out = r;
    return 0;
}

int addr_parse(const char *s, struct addr *out)
{
    return parse(s, false, out);
}

int addr_parse_listen(const char *s, struct addr *out)
{
    return parse(s, true, out);
}

bool addr_is_unspecified(const struct addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, sizeof(zero)) == 0;
}
