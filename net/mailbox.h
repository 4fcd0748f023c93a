/* mailbox.h — how other threads hand work to the loop thread.
 *
 * A locked queue plus a libevent wake-up: net_mailbox_post() may be called
 * from any thread; the posted functions run on the loop thread, in the
 * order they were posted, each exactly once (or, if the mailbox is freed
 * first, are dropped with their `drop` hook called). A poster that needs
 * an answer waits on its own completion (e.g. a condition variable the
 * function signals).
 */
#ifndef COOPFS_NET_MAILBOX_H
#define COOPFS_NET_MAILBOX_H

#include "net/loop.h"

struct net_mailbox; /* opaque */

typedef void (*net_mail_fn)(void *arg);

/* Returns 0 and *out, or -ENOMEM. */
int net_mailbox_new(struct net_loop *l, struct net_mailbox **out);
/* Frees the mailbox on the loop thread; mail still queued is not run, but
 * each item's drop(arg) is called (when given). NULL-safe. */
void net_mailbox_free(struct net_mailbox *m);

/* Queues fn(arg) to run on the loop thread. Thread-safe. drop may be NULL.
 * Returns 0, -ENOMEM, or -ESHUTDOWN after net_mailbox_close(). */
int net_mailbox_post(struct net_mailbox *m, net_mail_fn fn, net_mail_fn drop, void *arg);
/* Refuses further posts (-ESHUTDOWN); already queued mail still runs. */
void net_mailbox_close(struct net_mailbox *m);

#endif
