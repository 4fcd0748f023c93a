/* sockaddr.h — struct addr to and from the socket API's addresses. */
#ifndef COOPFS_NET_SOCKADDR_H
#define COOPFS_NET_SOCKADDR_H

#include <sys/socket.h>

#include "common/addr.h"

/* Fills ss from a (family ADDR_V4 or ADDR_V6); returns its length, or 0. */
socklen_t net_sockaddr_from_addr(const struct addr *a, struct sockaddr_storage *ss);
/* Fills *out from sa (AF_INET or AF_INET6); returns 0 or -EAFNOSUPPORT. */
int net_addr_from_sockaddr(const struct sockaddr *sa, struct addr *out);

#endif
