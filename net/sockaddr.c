/* sockaddr.c — struct addr to and from struct sockaddr. */
#include "net/sockaddr.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

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

int net_tcp_listen_socket(const struct addr *a, struct addr *bound)
{
    struct sockaddr_storage ss;
    socklen_t sl = net_sockaddr_from_addr(a, &ss);
    int fd, one = 1, rc;

    if (!sl)
        return -EAFNOSUPPORT;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0)
        goto err;
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        goto err;
    rc = net_addr_from_sockaddr((struct sockaddr *)&ss, bound);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
err:
    rc = -errno;
    close(fd);
    return rc;
}
