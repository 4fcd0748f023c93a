/* listener.h — listening sockets (TCP, or Unix stream) on the loop. */
#ifndef COOPFS_NET_LISTENER_H
#define COOPFS_NET_LISTENER_H

#include "common/addr.h"
#include "net/loop.h"

struct net_listener; /* opaque */

/* fn(ctx, fd) receives each accepted socket (non-blocking, close-on-exec)
 * and owns it. */
typedef void (*net_accept_fn)(void *ctx, int fd);

/* Listens on a TCP address (port 0: the kernel picks one; see
 * net_listener_addr). SO_REUSEADDR is set so a restarted node gets its
 * port back. Returns 0 and *out, or -errno (-EADDRINUSE...). */
int net_listener_new_tcp(struct net_loop *l, const struct addr *a, net_accept_fn fn, void *ctx,
                         struct net_listener **out);
/* Listens on a Unix stream socket at path, made mode 0600. A stale socket
 * file at path is replaced. Returns 0 and *out, or -errno. */
int net_listener_new_unix(struct net_loop *l, const char *path, net_accept_fn fn, void *ctx,
                          struct net_listener **out);
/* Stops listening; a Unix listener's socket file is removed. NULL-safe. */
void net_listener_free(struct net_listener *ln);
/* The address actually bound (TCP). */
const struct addr *net_listener_addr(const struct net_listener *ln);

#endif
