/* sigwatch.c — the libevent signal adapter. */
#include "net/sigwatch.h"

#include <errno.h>
#include <stdlib.h>

#include "net/internal.h"

struct net_sigwatch {
    struct event *ev;
    void (*fn)(void *ctx, int signo);
    void *ctx;
};

static void on_signal(evutil_socket_t signo, short what, void *arg)
{
    struct net_sigwatch *w = arg;
    (void)what;
    w->fn(w->ctx, (int)signo);
}

int net_sigwatch_new(struct net_loop *l, int signo, void (*fn)(void *ctx, int signo), void *ctx,
                     struct net_sigwatch **out)
{
    struct net_sigwatch *w = calloc(1, sizeof(*w));

    if (!w)
        return -ENOMEM;
    w->fn = fn;
    w->ctx = ctx;
    w->ev = evsignal_new(l->base, signo, on_signal, w);
    if (!w->ev || evsignal_add(w->ev, NULL) < 0) {
        net_sigwatch_free(w);
        return -ENOMEM;
    }
    *out = w;
    return 0;
}

void net_sigwatch_free(struct net_sigwatch *w)
{
    if (!w)
        return;
    if (w->ev)
        event_free(w->ev);
    free(w);
}
