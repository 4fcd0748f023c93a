/* rpc.c — the request table of rpc.h: a flat array and one timer at the
 * earliest deadline (a node has few calls in flight on one stream). */
#include "net/rpc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/timer.h"

struct call {
    uint64_t id;
    uint64_t deadline_ms;
    struct net_stream *s;
    net_rpc_done done;
    void *ctx;
};

struct net_rpc {
    struct net_timer *timer;
    struct call *calls;
    size_t ncalls, cap;
    uint64_t next_id;
};

static void rpc_rearm(struct net_rpc *r)
{
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < r->ncalls; i++)
        if (r->calls[i].deadline_ms < first)
            first = r->calls[i].deadline_ms;
    if (first == UINT64_MAX)
        net_timer_disarm(r->timer);
    else
        net_timer_arm_at(r->timer, first);
}

/* Removes call i and returns it. */
static struct call call_take(struct net_rpc *r, size_t i)
{
    struct call c = r->calls[i];
    r->calls[i] = r->calls[--r->ncalls];
    return c;
}

static void on_timer(void *ctx)
{
    struct net_rpc *r = ctx;
    uint64_t now = net_now_ms();

    for (size_t i = 0; i < r->ncalls;) {
        if (r->calls[i].deadline_ms <= now) {
            struct call c = call_take(r, i);
            c.done(c.ctx, -ETIMEDOUT, NULL, NULL, 0);
            i = 0; /* done may have changed the table */
            continue;
        }
        i++;
    }
    rpc_rearm(r);
}

int net_rpc_new(struct net_loop *l, struct net_rpc **out)
{
    struct net_rpc *r = calloc(1, sizeof(*r));
    int rc;

    if (!r)
        return -ENOMEM;
    rc = net_timer_new(l, on_timer, r, &r->timer);
    if (rc) {
        free(r);
        return rc;
    }
    r->next_id = 1;
    *out = r;
    return 0;
}

void net_rpc_free(struct net_rpc *r)
{
    if (!r)
        return;
    while (r->ncalls) {
        struct call c = call_take(r, 0);
        c.done(c.ctx, -ECANCELED, NULL, NULL, 0);
    }
    net_timer_free(r->timer);
    free(r->calls);
    free(r);
}

int net_rpc_call(struct net_rpc *r, struct net_stream *s, uint16_t type, const void *payload,
                 size_t len, uint32_t timeout_ms, net_rpc_done done, void *ctx, uint64_t *id)
{
    struct frame_header h = {.version = FRAME_VERSION, .type = type};
    uint8_t *frame;
    int rc;

    if (len > FRAME_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (r->ncalls == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct call *n = realloc(r->calls, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        r->calls = n;
        r->cap = cap;
    }
    frame = malloc(FRAME_HEADER_SIZE + len);
    if (!frame)
        return -ENOMEM;
    h.request_id = r->next_id++;
    h.length = (uint32_t)len;
    frame_header_encode(&h, frame);
    if (len)
        memcpy(frame + FRAME_HEADER_SIZE, payload, len);
    rc = net_stream_send(s, frame, FRAME_HEADER_SIZE + len);
    free(frame);
    if (rc)
        return rc;
    r->calls[r->ncalls++] = (struct call){
        .id = h.request_id,
        .deadline_ms = net_now_ms() + timeout_ms,
        .s = s,
        .done = done,
        .ctx = ctx,
    };
    rpc_rearm(r);
    if (id)
        *id = h.request_id;
    return 0;
}

bool net_rpc_input(struct net_rpc *r, struct net_stream *s, const struct frame_header *h,
                   const uint8_t *frame, size_t len)
{
    if (!(h->flags & FRAME_F_REPLY))
        return false;
    for (size_t i = 0; i < r->ncalls; i++) {
        if (r->calls[i].id == h->request_id && r->calls[i].s == s) {
            struct call c = call_take(r, i);
            rpc_rearm(r);
            c.done(c.ctx, 0, h, frame, len);
            return true;
        }
    }
    return false;
}

int net_rpc_cancel(struct net_rpc *r, uint64_t id)
{
    for (size_t i = 0; i < r->ncalls; i++) {
        if (r->calls[i].id == id) {
            call_take(r, i);
            rpc_rearm(r);
            return 0;
        }
    }
    return -ENOENT;
}

void net_rpc_stream_closed(struct net_rpc *r, struct net_stream *s)
{
    for (size_t i = 0; i < r->ncalls;) {
        if (r->calls[i].s == s) {
            struct call c = call_take(r, i);
            c.done(c.ctx, -ECONNRESET, NULL, NULL, 0);
            i = 0;
            continue;
        }
        i++;
    }
    rpc_rearm(r);
}

size_t net_rpc_pending(const struct net_rpc *r)
{
    return r->ncalls;
}
