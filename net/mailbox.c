/* mailbox.c — the cross-thread queue of mailbox.h, woken by event_active. */
#include "net/mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "net/internal.h"

struct mail {
    struct mail *next;
    net_mail_fn fn, drop;
    void *arg;
};

struct net_mailbox {
    struct event *ev;
    pthread_mutex_t lock;
    struct mail *head, *tail; /* protected by lock */
    bool closed;              /* protected by lock */
};

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct net_mailbox *m = arg;
    struct mail *list, *next;

    (void)fd;
    (void)what;
    /* Take the whole queue at once, so posts made by the functions we run
     * wake us again instead of running inside this callback. */
    pthread_mutex_lock(&m->lock);
    list = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    for (; list; list = next) {
        next = list->next;
        list->fn(list->arg);
        free(list);
    }
}

int net_mailbox_new(struct net_loop *l, struct net_mailbox **out)
{
    struct net_mailbox *m = calloc(1, sizeof(*m));

    if (!m)
        return -ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL)) {
        free(m);
        return -ENOMEM;
    }
    m->ev = event_new(l->base, -1, 0, on_wake, m);
    if (!m->ev) {
        pthread_mutex_destroy(&m->lock);
        free(m);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

void net_mailbox_free(struct net_mailbox *m)
{
    struct mail *list, *next;

    if (!m)
        return;
    event_free(m->ev);
    pthread_mutex_lock(&m->lock);
    list = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    for (; list; list = next) {
        next = list->next;
        if (list->drop)
            list->drop(list->arg);
        free(list);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int net_mailbox_post(struct net_mailbox *m, net_mail_fn fn, net_mail_fn drop, void *arg)
{
    struct mail *it = malloc(sizeof(*it));

    if (!it)
        return -ENOMEM;
    it->next = NULL;
    it->fn = fn;
    it->drop = drop;
    it->arg = arg;
    pthread_mutex_lock(&m->lock);
    if (m->closed) {
        pthread_mutex_unlock(&m->lock);
        free(it);
        return -ESHUTDOWN;
    }
    if (m->tail)
        m->tail->next = it;
    else
        m->head = it;
    m->tail = it;
    pthread_mutex_unlock(&m->lock);
    /* Thread-safe with evthread: wakes the loop through its notify fd. An
     * event already active is not queued twice, and on_wake drains all. */
    event_active(m->ev, 0, 0);
    return 0;
}

void net_mailbox_close(struct net_mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    m->closed = true;
    pthread_mutex_unlock(&m->lock);
}
