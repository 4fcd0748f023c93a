/* timer.c — the libevent timer adapter. */
#include "net/timer.h"

#include <errno.h>
#include <stdlib.h>

#include "net/internal.h"

struct net_timer {
    struct event *ev;
    void (*fn)(void *ctx);
    void *ctx;
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct net_timer *t = arg;
    (void)fd;
    (void)what;
    t->fn(t->ctx);
}

int net_timer_new(struct net_loop *l, void (*fn)(void *ctx), void *ctx, struct net_timer **out)
{
    struct net_timer *t = calloc(1, sizeof(*t));

    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->ctx = ctx;
    t->ev = evtimer_new(l->base, on_timer, t);
    if (!t->ev) {
        free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

void net_timer_free(struct net_timer *t)
{
    if (!t)
        return;
    if (t->ev)
        event_free(t->ev);
    free(t);
}

void net_timer_arm(struct net_timer *t, uint64_t delay_ms)
{
    struct timeval tv;

    if (delay_ms > 86400000u)
        delay_ms = 86400000u;
    tv.tv_sec = (time_t)(delay_ms / 1000u);
    tv.tv_usec = (suseconds_t)(delay_ms % 1000u) * 1000;
    evtimer_add(t->ev, &tv);
}

void net_timer_arm_at(struct net_timer *t, uint64_t when_ms)
{
    uint64_t now = net_now_ms();
    net_timer_arm(t, when_ms > now ? when_ms - now : 0);
}

void net_timer_disarm(struct net_timer *t)
{
    evtimer_del(t->ev);
}
