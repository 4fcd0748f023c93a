/* sockaddr.h — struct addr to and from the socket API's addresses. */
#ifndef COOPFS_NET_SOCKADDR_H
#define COOPFS_NET_SOCKADDR_H

#include <sys/socket.h>

#include "common/addr.h"

/* Fills ss from a (family ADDR_V4 or ADDR_V6); returns its length, or 0. */
socklen_t net_sockaddr_from_addr(const struct addr *a, struct sockaddr_storage *ss);
/* Fills *out from sa (AF_INET or AF_INET6); returns 0 or -EAFNOSUPPORT. */
int net_addr_from_sockaddr(const struct sockaddr *sa, struct addr *out);

/* A non-blocking, close-on-exec TCP socket listening on a (port 0: the
 * kernel picks) with SO_REUSEADDR, so a restarted node gets its port back.
 * Returns the fd and fills *bound with the address actually bound, or
 * returns -errno. */
int net_tcp_listen_socket(const struct addr *a, struct addr *bound);

#endif
