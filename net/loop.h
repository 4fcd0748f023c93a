/* loop.h — the event loop of a node: one thread, libevent underneath.
 *
 * Everything in net/ runs on the loop's thread except net_loop_stop() and
 * net_mailbox_post(), which any thread may call. Only the adapter files of
 * net/ (loop.c, timer.c, sigwatch.c, mailbox.c, stream.c, listener.c,
 * http.c) include libevent; the rest of the tree sees these handles.
 *
 * Errors: functions return 0 or a negative errno.
 */
#ifndef COOPFS_NET_LOOP_H
#define COOPFS_NET_LOOP_H

#include <stdint.h>

struct net_loop; /* opaque */

/* Makes a loop. Turns on libevent's pthreads locking the first time, so
 * other threads may wake the loop. Returns 0 and *out, or -ENOMEM. */
int net_loop_new(struct net_loop **out);
/* NULL-safe. Every timer, stream and listener on the loop must be freed
 * first. */
void net_loop_free(struct net_loop *l);

/* Runs the loop on the calling thread until net_loop_stop(). Returns 0,
 * or -EIO if libevent failed. */
int net_loop_run(struct net_loop *l);
/* Runs the loop until nothing is pending or net_loop_stop() (clients). */
int net_loop_run_once(struct net_loop *l);
/* Makes net_loop_run return after the current callback. Thread-safe. */
void net_loop_stop(struct net_loop *l);

/* Monotonic clock (CLOCK_MONOTONIC), in milliseconds and microseconds. */
uint64_t net_now_ms(void);
uint64_t net_now_us(void);

#endif
