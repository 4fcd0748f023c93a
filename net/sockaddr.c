/* sockaddr.c — struct addr to and from struct sockaddr. */
#include "net/sockaddr.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

socklen_t net_sockaddr_from_addr(const struct addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == ADDR_V4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->ip, 4);
        return sizeof(*sin);
    }
    if (a->family == ADDR_V6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        memcpy(&sin6->sin6_addr, a->ip, 16);
        return sizeof(*sin6);
    }
    return 0;
}

int net_addr_from_sockaddr(const struct sockaddr *sa, struct addr *out)
{
    struct addr r;

    memset(&r, 0, sizeof(r));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        r.family = ADDR_V4;
        r.port = ntohs(sin->sin_port);
        memcpy(r.ip, &sin->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        r.family = ADDR_V6;
        r.port = ntohs(sin6->sin6_port);
        memcpy(r.ip, &sin6->sin6_addr, 16);
    } else {
        return -EAFNOSUPPORT;
    }
    *out = r;
    return 0;
}
