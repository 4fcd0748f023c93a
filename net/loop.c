/* loop.c — the libevent event base, and the monotonic clock. */
#include "net/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <event2/thread.h>

#include "net/internal.h"

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static int threads_rc;

static void threads_init(void)
{
    threads_rc = evthread_use_pthreads();
}

int net_loop_new(struct net_loop **out)
{
    struct net_loop *l;

    pthread_once(&threads_once, threads_init);
    if (threads_rc)
        return -ENOMEM;
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->base = event_base_new();
    if (!l->base) {
        free(l);
        return -ENOMEM;
    }
    *out = l;
    return 0;
}

void net_loop_free(struct net_loop *l)
{
    if (!l)
        return;
    if (l->base)
        event_base_free(l->base);
    free(l);
}

int net_loop_run(struct net_loop *l)
{
    return event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0 ? -EIO : 0;
}

int net_loop_run_once(struct net_loop *l)
{
    return event_base_loop(l->base, 0) < 0 ? -EIO : 0;
}

void net_loop_stop(struct net_loop *l)
{
    event_base_loopbreak(l->base);
}

uint64_t net_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t net_now_ms(void)
{
    return net_now_us() / 1000u;
}
