/* control.c — the control protocol's blocking client (the codecs are in ctl_codec.c). */
#include "net/control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "net/rpc.h"
#include "net/stream.h"

struct ctl_client {
    struct net_loop *loop;
    struct net_stream *s;
    struct net_rpc *rpc;
    bool closed;
    uint64_t finished; /* pipelined calls done so far */
    char error[CTL_ERROR_MAX + 1];
};

static void client_frame(void *ctx, struct net_stream *s, const struct frame_header *h,
                         const uint8_t *frame, size_t len)
{
    struct ctl_client *c = ctx;
    net_rpc_input(c->rpc, s, h, frame, len);
}

static void client_closed(void *ctx, struct net_stream *s, int reason, int err, const char *why)
{
    struct ctl_client *c = ctx;
    (void)reason;
    (void)err;
    (void)why;
    c->closed = true;
    c->s = NULL;
    net_rpc_stream_closed(c->rpc, s);
    net_loop_stop(c->loop);
}

int ctl_client_open(const char *datadir, struct ctl_client **out)
{
    struct net_stream_cbs cbs = {.frame = client_frame, .closed = client_closed};
    struct ctl_client *c = calloc(1, sizeof(*c));
    char path[4096];
    int rc;

    if (!c)
        return -ENOMEM;
    if ((size_t)snprintf(path, sizeof(path), "%s/control.sock", datadir) >= sizeof(path)) {
        rc = -ENAMETOOLONG;
        goto err;
    }
    rc = net_loop_new(&c->loop);
    if (rc)
        goto err;
    rc = net_rpc_new(c->loop, &c->rpc);
    if (rc)
        goto err;
    cbs.ctx = c;
    rc = net_stream_connect_unix(c->loop, path, &cbs, &c->s);
    if (rc)
        goto err;
    *out = c;
    return 0;
err:
    ctl_client_free(c);
    return rc;
}

void ctl_client_free(struct ctl_client *c)
{
    if (!c)
        return;
    net_stream_close(c->s);
    net_rpc_free(c->rpc);
    net_loop_free(c->loop);
    free(c);
}

const char *ctl_client_error(const struct ctl_client *c)
{
    return c->error;
}

/* Turns an error reply into its errno, keeping the message. */
static int client_reply_error(struct ctl_client *c, const struct frame_header *h,
                              const uint8_t *frame, size_t len)
{
    int32_t err;
    if (h->type != CTL_MSG_ERROR)
        return 0;
    if (ctl_error_decode(frame + FRAME_HEADER_SIZE, len - FRAME_HEADER_SIZE, &err, c->error,
                         sizeof(c->error)) < 0)
        return -EBADMSG;
    return err ? err : -EIO;
}

struct status_wait {
    struct ctl_client *c;
    uint16_t type;
    bool done;
    int rc;
    char *text;
};

static void status_done(void *ctx, int status, const struct frame_header *h, const uint8_t *frame,
                        size_t len)
{
    struct status_wait *w = ctx;
    w->done = true;
    w->rc = status;
    if (status == 0) {
        w->rc = client_reply_error(w->c, h, frame, len);
        if (w->rc == 0 && h->type != w->type)
            w->rc = -EBADMSG;
        if (w->rc == 0) {
            size_t n = len - FRAME_HEADER_SIZE;
            w->text = malloc(n + 1);
            if (!w->text) {
                w->rc = -ENOMEM;
            } else {
                memcpy(w->text, frame + FRAME_HEADER_SIZE, n);
                w->text[n] = '\0';
            }
        }
    }
    net_loop_stop(w->c->loop);
}

/* Asks for a status in the form `type` names and waits for it. */
static int client_status(struct ctl_client *c, uint16_t type, char **out)
{
    struct status_wait w = {.c = c, .type = type};
    int rc;

    if (c->closed)
        return -ECONNRESET;
    rc = net_rpc_call(c->rpc, c->s, type, NULL, 0, CTL_TIMEOUT_MS, status_done, &w, NULL);
    if (rc)
        return rc;
    while (!w.done)
        net_loop_run(c->loop);
    if (w.rc == 0)
        *out = w.text;
    return w.rc;
}

int ctl_client_status(struct ctl_client *c, char **json)
{
    return client_status(c, CTL_MSG_STATUS, json);
}

int ctl_client_status_text(struct ctl_client *c, char **text)
{
    return client_status(c, CTL_MSG_STATUS_TEXT, text);
}

struct lookup_wait {
    struct ctl_client *c;
    const struct id *keys;
    size_t n, next, answered;
    unsigned inflight, parallel;
    int rc;
    void (*each)(void *ctx, size_t i, const struct ctl_lookup_reply *r);
    void *ctx;
};

struct lookup_call {
    struct lookup_wait *w;
    size_t i;
};

static void lookup_pump(struct lookup_wait *w);

static void lookup_done(void *ctx, int status, const struct frame_header *h, const uint8_t *frame,
                        size_t len)
{
    struct lookup_call *lc = ctx;
    struct lookup_wait *w = lc->w;
    struct ctl_lookup_reply r;

    w->inflight--;
    if (status == 0) {
        int e = client_reply_error(w->c, h, frame, len);
        memset(&r, 0, sizeof(r));
        if (e) {
            r.status = e;
        } else if (h->type != CTL_MSG_LOOKUP ||
                   ctl_lookup_reply_decode(frame + FRAME_HEADER_SIZE, len - FRAME_HEADER_SIZE, &r) <
                       0) {
            w->rc = -EBADMSG;
        }
        if (w->rc == 0) {
            w->answered++;
            w->each(w->ctx, lc->i, &r);
        }
    } else if (w->rc == 0) {
        w->rc = status;
    }
    free(lc);
    lookup_pump(w);
}

static void lookup_pump(struct lookup_wait *w)
{
    if (w->c->closed && w->rc == 0)
        w->rc = -ECONNRESET;
    while (w->rc == 0 && w->inflight < w->parallel && w->next < w->n) {
        uint8_t req[64];
        size_t len = ctl_lookup_req_encode(&w->keys[w->next], req, sizeof(req));
        struct lookup_call *lc = malloc(sizeof(*lc));
        int rc;
        if (!lc) {
            w->rc = -ENOMEM;
            break;
        }
        lc->w = w;
        lc->i = w->next;
        rc = net_rpc_call(w->c->rpc, w->c->s, CTL_MSG_LOOKUP, req, len, CTL_TIMEOUT_MS, lookup_done,
                          lc, NULL);
        if (rc) {
            free(lc);
            w->rc = rc;
            break;
        }
        w->next++;
        w->inflight++;
    }
    if (w->inflight == 0)
        net_loop_stop(w->c->loop);
}

int ctl_client_lookup(struct ctl_client *c, const struct id *keys, size_t n, unsigned parallel,
                      void (*each)(void *ctx, size_t i, const struct ctl_lookup_reply *r),
                      void *ctx)
{
    struct lookup_wait w = {.c = c,
                            .keys = keys,
                            .n = n,
                            .parallel = parallel ? parallel : 1,
                            .each = each,
                            .ctx = ctx};

    if (c->closed)
        return -ECONNRESET;
    lookup_pump(&w);
    while (w.inflight > 0)
        net_loop_run(c->loop);
    return w.rc;
}

struct call_wait {
    struct ctl_client *c;
    ctl_call_fn done;
    void *ctx;
};

static void call_done(void *ctx, int status, const struct frame_header *h, const uint8_t *frame,
                      size_t len)
{
    struct call_wait *cw = ctx;
    struct ctl_client *c = cw->c;

    c->finished++;
    if (status == 0) {
        int e = client_reply_error(c, h, frame, len);
        if (e)
            cw->done(cw->ctx, e, h->type, NULL, 0);
        else
            cw->done(cw->ctx, 0, h->type, frame + FRAME_HEADER_SIZE, len - FRAME_HEADER_SIZE);
    } else {
        cw->done(cw->ctx, status, 0, NULL, 0);
    }
    free(cw);
    net_loop_stop(c->loop);
}

int ctl_client_call(struct ctl_client *c, uint16_t type, const void *payload, size_t len,
                    ctl_call_fn done, void *ctx)
{
    struct call_wait *cw;
    int rc;

    if (c->closed)
        return -ECONNRESET;
    cw = malloc(sizeof(*cw));
    if (!cw)
        return -ENOMEM;
    *cw = (struct call_wait){.c = c, .done = done, .ctx = ctx};
    rc = net_rpc_call(c->rpc, c->s, type, payload, len, CTL_TIMEOUT_MS, call_done, cw, NULL);
    if (rc)
        free(cw);
    return rc;
}

int ctl_client_wait(struct ctl_client *c)
{
    uint64_t before = c->finished;

    while (net_rpc_pending(c->rpc) > 0 && c->finished == before)
        net_loop_run(c->loop);
    return c->closed && net_rpc_pending(c->rpc) == 0 ? -ECONNRESET : 0;
}

size_t ctl_client_pending(const struct ctl_client *c)
{
    return net_rpc_pending(c->rpc);
}
