/* internal.h — what net/'s libevent adapters share. Included only by the
 * adapter files (loop.c, timer.c, sigwatch.c, mailbox.c, stream.c,
 * listener.c, http.c). */
#ifndef COOPFS_NET_INTERNAL_H
#define COOPFS_NET_INTERNAL_H

#include <event2/event.h>

#include "net/loop.h"

struct net_loop {
    struct event_base *base;
};

#endif
