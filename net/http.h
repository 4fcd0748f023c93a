/* http.h — a small HTTP server on the loop (libevent's evhttp), for the
 * status pages. GET and HEAD only; every path goes to one handler. */
#ifndef COOPFS_NET_HTTP_H
#define COOPFS_NET_HTTP_H

#include "common/addr.h"
#include "common/buf.h"
#include "net/loop.h"

struct net_http; /* opaque */

/* Fills body and *content_type (a static string) for path (without the
 * query), and returns the HTTP status code. */
typedef int (*net_http_handler)(void *ctx, const char *path, struct buf *body,
                                const char **content_type);

/* Serves on a (port 0: the kernel picks). Returns 0 and *out, or -errno. */
int net_http_new(struct net_loop *l, const struct addr *a, net_http_handler fn, void *ctx,
                 struct net_http **out);
void net_http_free(struct net_http *h); /* NULL-safe */
/* The address actually bound. */
const struct addr *net_http_addr(const struct net_http *h);

#endif
