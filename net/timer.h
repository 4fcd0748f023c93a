/* timer.h — one-shot timers on the loop. */
#ifndef COOPFS_NET_TIMER_H
#define COOPFS_NET_TIMER_H

#include <stdint.h>

#include "net/loop.h"

struct net_timer; /* opaque */

/* Makes a disarmed timer that calls fn(ctx) on the loop thread when it
 * fires. Returns 0 and *out, or -ENOMEM. */
int net_timer_new(struct net_loop *l, void (*fn)(void *ctx), void *ctx, struct net_timer **out);
/* Disarms and frees; NULL-safe. */
void net_timer_free(struct net_timer *t);
/* (Re)arms the timer to fire once, delay_ms from now. */
void net_timer_arm(struct net_timer *t, uint64_t delay_ms);
/* (Re)arms the timer to fire at a net_now_ms() time (at once if past). */
void net_timer_arm_at(struct net_timer *t, uint64_t when_ms);
void net_timer_disarm(struct net_timer *t);

#endif
