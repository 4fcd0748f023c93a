/* sigwatch.h — POSIX signals delivered as loop callbacks. */
#ifndef COOPFS_NET_SIGWATCH_H
#define COOPFS_NET_SIGWATCH_H

#include "net/loop.h"

struct net_sigwatch; /* opaque */

/* Calls fn(ctx, signo) on the loop thread each time signo arrives, for as
 * long as the watch lives. Returns 0 and *out, or -ENOMEM. */
int net_sigwatch_new(struct net_loop *l, int signo, void (*fn)(void *ctx, int signo), void *ctx,
                     struct net_sigwatch **out);
void net_sigwatch_free(struct net_sigwatch *w); /* NULL-safe */

#endif
