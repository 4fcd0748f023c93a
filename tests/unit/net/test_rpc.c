/* test_rpc.c — requests and replies (net/rpc.c) over a real socketpair:
 * the client end feeds what it receives to net_rpc_input, the server end
 * records requests and the test answers them by hand. Replies are matched
 * by id and stream; calls time out, can be cancelled, fail when their
 * stream closes or the table is freed; done runs once, never inside the
 * call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "net/rpc.h"
#include "net/stream.h"

#define MAX_IN 32
#define LONG   60000u /* a timeout that never fires during a test */

struct req {
    struct frame_header h;
    uint8_t payload[64];
};

struct fix {
    struct net_loop *l;
    struct net_rpc *r;
    struct net_stream *a, *b; /* client and server ends */
    int fds[2];
    bool in_call; /* inside net_rpc_call */
    /* client side: whether net_rpc_input took each frame */
    bool consumed[MAX_IN];
    size_t nin;
    unsigned a_closed;
    /* server side */
    struct req reqs[MAX_IN];
    size_t nreqs;
    unsigned b_closed;
};

/* What one call's done saw. */
struct call {
    struct fix *f;
    unsigned done;
    int status;
    bool args_null; /* h == NULL && frame == NULL && len == 0 */
    bool inside_call;
    struct frame_header h;
    uint8_t payload[64];
    size_t plen;
    /* a call to make from inside done */
    struct call *then;
    uint32_t then_timeout;
    int then_rc;
};

static void on_done(void *ctx, int status, const struct frame_header *h, const uint8_t *frame,
                    size_t len)
{
    struct call *c = ctx;

    c->done++;
    c->status = status;
    c->inside_call = c->f->in_call;
    c->args_null = h == NULL && frame == NULL && len == 0;
    if (h) {
        c->h = *h;
        assert_int_equal(len, FRAME_HEADER_SIZE + (size_t)h->length);
        c->plen = h->length < sizeof(c->payload) ? h->length : sizeof(c->payload);
        memcpy(c->payload, frame + FRAME_HEADER_SIZE, c->plen);
    }
    if (c->then) {
        c->then->f = c->f;
        c->then_rc =
            net_rpc_call(c->f->r, c->f->a, 99, NULL, 0, c->then_timeout, on_done, c->then, NULL);
    }
}

static void a_frame(void *ctx, struct net_stream *s, const struct frame_header *h,
                    const uint8_t *frame, size_t len)
{
    struct fix *f = ctx;

    assert_true(f->nin < MAX_IN);
    f->consumed[f->nin++] = net_rpc_input(f->r, s, h, frame, len);
}

static void a_closed(void *ctx, struct net_stream *s, int reason, int err, const char *why)
{
    struct fix *f = ctx;
    (void)reason;
    (void)err;
    (void)why;
    f->a_closed++;
    f->a = NULL;
    if (f->r)
        net_rpc_stream_closed(f->r, s);
}

static void b_frame(void *ctx, struct net_stream *s, const struct frame_header *h,
                    const uint8_t *frame, size_t len)
{
    struct fix *f = ctx;
    (void)s;

    assert_true(f->nreqs < MAX_IN);
    f->reqs[f->nreqs].h = *h;
    assert_true(h->length <= sizeof(f->reqs[0].payload));
    assert_int_equal(len, FRAME_HEADER_SIZE + (size_t)h->length);
    memcpy(f->reqs[f->nreqs].payload, frame + FRAME_HEADER_SIZE, h->length);
    f->nreqs++;
}

static void b_closed(void *ctx, struct net_stream *s, int reason, int err, const char *why)
{
    struct fix *f = ctx;
    (void)s;
    (void)reason;
    (void)err;
    (void)why;
    f->b_closed++;
    f->b = NULL;
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    struct net_stream_cbs ca = {.frame = a_frame, .closed = a_closed};
    struct net_stream_cbs cb = {.frame = b_frame, .closed = b_closed};

    assert_non_null(f);
    assert_int_equal(net_loop_new(&f->l), 0);
    assert_int_equal(net_rpc_new(f->l, &f->r), 0);
    nt_socketpair(f->fds);
    ca.ctx = cb.ctx = f;
    assert_int_equal(net_stream_accept(f->l, f->fds[0], &ca, &f->a), 0);
    assert_int_equal(net_stream_accept(f->l, f->fds[1], &cb, &f->b), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;

    net_rpc_free(f->r);
    f->r = NULL;
    net_stream_close(f->a);
    net_stream_close(f->b);
    net_loop_free(f->l);
    free(f);
    return 0;
}

/* Makes a call; checks that done did not run inside it. */
static int call(struct fix *f, struct net_stream *s, uint16_t type, const char *payload,
                uint32_t timeout_ms, struct call *c, uint64_t *id)
{
    int rc;

    c->f = f;
    f->in_call = true;
    rc = net_rpc_call(f->r, s, type, payload, payload ? strlen(payload) : 0, timeout_ms, on_done, c,
                      id);
    f->in_call = false;
    assert_int_equal(c->done, 0);
    return rc;
}

/* The server answers request id with payload, as a reply or not. */
static void answer(struct fix *f, uint64_t id, uint8_t flags, const char *payload)
{
    uint8_t buf[FRAME_HEADER_SIZE + 64];
    size_t n = nt_frame(buf, 7, flags, id, payload, (uint32_t)strlen(payload));
    assert_int_equal(net_stream_send(f->b, buf, n), 0);
}

struct nreq {
    const struct fix *f;
    size_t n;
};

static bool has_reqs(void *arg)
{
    const struct nreq *w = arg;
    return w->f->nreqs >= w->n;
}

static bool has_input(void *arg)
{
    const struct nreq *w = arg;
    return w->f->nin >= w->n;
}

struct calls {
    struct call *c;
    size_t n;
};

static bool all_done(void *arg)
{
    const struct calls *cs = arg;
    for (size_t i = 0; i < cs->n; i++)
        if (!cs->c[i].done)
            return false;
    return true;
}

static void test_rpc_reply_matched_by_id(void **state)
{
    struct fix *f = *state;
    static const char *payloads[] = {"a", "bb", "ccc"};
    struct call c[3] = {0};
    uint64_t id[3];

    for (int i = 0; i < 3; i++)
        assert_int_equal(call(f, f->a, (uint16_t)(10 + i), payloads[i], LONG, &c[i], &id[i]), 0);
    assert_int_equal(net_rpc_pending(f->r), 3);
    assert_true(id[0] != id[1] && id[1] != id[2] && id[0] != id[2]);

    struct nreq w = {f, 3};
    nt_run_until(f->l, has_reqs, &w);
    for (int i = 0; i < 3; i++) {
        const struct req *q = &f->reqs[i];
        assert_int_equal(q->h.type, 10 + i);
        assert_int_equal(q->h.flags & FRAME_F_REPLY, 0);
        assert_true(q->h.request_id == id[i]);
        assert_int_equal(q->h.length, strlen(payloads[i]));
        assert_memory_equal(q->payload, payloads[i], strlen(payloads[i]));
    }

    /* Answered in reverse order; each reply goes to its own call. */
    answer(f, id[2], FRAME_F_REPLY, "re:ccc");
    answer(f, id[0], FRAME_F_REPLY, "re:a");
    answer(f, id[1], FRAME_F_REPLY, "re:bb");
    struct calls cs = {c, 3};
    nt_run_until(f->l, all_done, &cs);
    nt_run_for(f->l, 5);
    for (int i = 0; i < 3; i++) {
        char want[8];
        snprintf(want, sizeof(want), "re:%s", payloads[i]);
        assert_int_equal(c[i].done, 1);
        assert_int_equal(c[i].status, 0);
        assert_false(c[i].inside_call);
        assert_true(c[i].h.request_id == id[i]);
        assert_true(c[i].h.flags & FRAME_F_REPLY);
        assert_int_equal(c[i].plen, strlen(want));
        assert_memory_equal(c[i].payload, want, strlen(want));
    }
    assert_int_equal(f->nin, 3);
    for (int i = 0; i < 3; i++)
        assert_true(f->consumed[i]);
    assert_int_equal(net_rpc_pending(f->r), 0);
}

static void test_rpc_unmatched_frames_not_consumed(void **state)
{
    struct fix *f = *state;
    struct call c = {0};
    uint64_t id;

    assert_int_equal(call(f, f->a, 20, "q", LONG, &c, &id), 0);

    /* The right id and flag, but another stream: not ours. */
    {
        uint8_t buf[FRAME_HEADER_SIZE];
        struct frame_header h = {
            .version = FRAME_VERSION, .flags = FRAME_F_REPLY, .request_id = id};
        frame_header_encode(&h, buf);
        assert_false(net_rpc_input(f->r, f->b, &h, buf, sizeof(buf)));
    }

    answer(f, id + 100, FRAME_F_REPLY, "unknown id");
    answer(f, id, 0, "no reply flag");
    answer(f, id, FRAME_F_REPLY, "the answer");
    answer(f, id, FRAME_F_REPLY, "a second answer");
    struct nreq w = {f, 4};
    nt_run_until(f->l, has_input, &w);
    nt_run_for(f->l, 5);

    assert_false(f->consumed[0]);
    assert_false(f->consumed[1]);
    assert_true(f->consumed[2]);
    assert_false(f->consumed[3]); /* already answered */
    assert_int_equal(c.done, 1);
    assert_int_equal(c.status, 0);
    assert_memory_equal(c.payload, "the answer", 10);
    assert_int_equal(net_rpc_pending(f->r), 0);
}

static void test_rpc_timeout(void **state)
{
    struct fix *f = *state;
    struct call c[3] = {0};
    static const uint32_t timeouts[] = {50, 20, 80};
    uint64_t id[3];

    for (int i = 0; i < 3; i++)
        assert_int_equal(call(f, f->a, 30, "t", timeouts[i], &c[i], &id[i]), 0);
    struct calls cs = {c, 3};
    nt_run_until(f->l, all_done, &cs);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].done, 1);
        assert_int_equal(c[i].status, -ETIMEDOUT);
        assert_true(c[i].args_null);
        assert_false(c[i].inside_call);
    }
    assert_int_equal(net_rpc_pending(f->r), 0);

    /* A reply that comes after its call timed out is not consumed. */
    answer(f, id[1], FRAME_F_REPLY, "late");
    struct nreq w = {f, 1};
    nt_run_until(f->l, has_input, &w);
    assert_false(f->consumed[0]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i].done, 1);
}

static void test_rpc_call_from_done(void **state)
{
    struct fix *f = *state;
    struct call second = {0}, first = {.then = &second, .then_timeout = 30};

    /* first times out; its done makes a second call, which times out too. */
    assert_int_equal(call(f, f->a, 31, NULL, 20, &first, NULL), 0);
    struct calls cs = {&second, 1};
    nt_run_until(f->l, all_done, &cs);
    assert_int_equal(first.done, 1);
    assert_int_equal(first.status, -ETIMEDOUT);
    assert_int_equal(first.then_rc, 0);
    assert_int_equal(second.done, 1);
    assert_int_equal(second.status, -ETIMEDOUT);
    assert_int_equal(net_rpc_pending(f->r), 0);
}

static void test_rpc_cancel(void **state)
{
    struct fix *f = *state;
    struct call gone = {0}, kept = {0}, late = {0};
    uint64_t gid, kid, lid;

    assert_int_equal(call(f, f->a, 40, "x", 50, &gone, &gid), 0);
    assert_int_equal(call(f, f->a, 41, "y", LONG, &kept, &kid), 0);
    assert_int_equal(call(f, f->a, 42, "z", 100, &late, &lid), 0);
    assert_int_equal(net_rpc_cancel(f->r, gid), 0);
    assert_int_equal(net_rpc_cancel(f->r, gid), -ENOENT);
    assert_int_equal(net_rpc_cancel(f->r, gid + kid + lid + 1000), -ENOENT);
    assert_int_equal(net_rpc_pending(f->r), 2);

    /* A reply to the cancelled call is not consumed; the others' are. */
    answer(f, gid, FRAME_F_REPLY, "for gone");
    answer(f, kid, FRAME_F_REPLY, "for kept");
    struct nreq w = {f, 2};
    nt_run_until(f->l, has_input, &w);
    assert_false(f->consumed[0]);
    assert_true(f->consumed[1]);
    assert_int_equal(kept.done, 1);
    assert_int_equal(kept.status, 0);

    /* Past the cancelled call's deadline: late times out, gone stays silent. */
    struct calls cs = {&late, 1};
    nt_run_until(f->l, all_done, &cs);
    assert_int_equal(late.status, -ETIMEDOUT);
    assert_int_equal(gone.done, 0);
    assert_int_equal(net_rpc_pending(f->r), 0);

    /* Cancelling the only pending call leaves nothing armed. */
    assert_int_equal(call(f, f->a, 43, NULL, 20, &gone, &gid), 0);
    assert_int_equal(net_rpc_cancel(f->r, gid), 0);
    nt_run_for(f->l, 40);
    assert_int_equal(gone.done, 0);
}

static bool a_is_closed(void *arg)
{
    const struct fix *f = arg;
    return f->a_closed > 0;
}

static void test_rpc_stream_closed_resets_its_calls(void **state)
{
    struct fix *f = *state;
    struct net_stream_cbs ca = {.ctx = f, .frame = a_frame}; /* a second, unrelated stream */
    struct net_stream *other;
    struct call on_a[2] = {0}, on_other = {0};
    int fds[2];

    nt_socketpair(fds);
    assert_int_equal(net_stream_accept(f->l, fds[0], &ca, &other), 0);
    assert_int_equal(call(f, f->a, 50, "1", LONG, &on_a[0], NULL), 0);
    assert_int_equal(call(f, other, 51, "2", LONG, &on_other, NULL), 0);
    assert_int_equal(call(f, f->a, 52, "3", LONG, &on_a[1], NULL), 0);

    /* The server end goes away; a sees EOF and tells the table. */
    net_stream_close(f->b);
    f->b = NULL;
    nt_run_until(f->l, a_is_closed, f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(on_a[i].done, 1);
        assert_int_equal(on_a[i].status, -ECONNRESET);
        assert_true(on_a[i].args_null);
    }
    assert_int_equal(on_other.done, 0);
    assert_int_equal(net_rpc_pending(f->r), 1);

    net_rpc_stream_closed(f->r, other); /* as its owner would when it closes */
    assert_int_equal(on_other.done, 1);
    assert_int_equal(on_other.status, -ECONNRESET);
    assert_int_equal(net_rpc_pending(f->r), 0);
    net_stream_close(other);
    close(fds[1]);
}

static void test_rpc_free_cancels_pending(void **state)
{
    struct fix *f = *state;
    struct call c[3] = {0};

    for (int i = 0; i < 3; i++)
        assert_int_equal(call(f, f->a, 60, "f", i == 0 ? 50 : LONG, &c[i], NULL), 0);
    net_rpc_free(f->r);
    f->r = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].done, 1);
        assert_int_equal(c[i].status, -ECANCELED);
        assert_true(c[i].args_null);
    }
    /* Nothing fires later (the table's timer went with it). */
    nt_run_for(f->l, 80);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i].done, 1);
    net_rpc_free(NULL);
}

static void test_rpc_call_refused(void **state)
{
    struct fix *f = *state;
    static uint8_t big[64];
    struct call c = {0};
    uint64_t id = 12345;

    /* Too big for a frame: refused before anything is sent. */
    assert_int_equal(
        net_rpc_call(f->r, f->a, 70, big, FRAME_MAX_PAYLOAD + 1, LONG, on_done, &c, &id),
        -EMSGSIZE);
    assert_true(id == 12345); /* out-parameter untouched on failure */

    /* The stream's queue is full. */
    net_stream_set_out_max(f->a, FRAME_HEADER_SIZE + 10);
    assert_int_equal(call(f, f->a, 71, "0123456789", LONG, &c, NULL), 0);
    assert_int_equal(call(f, f->a, 72, "x", LONG, &c, &id), -ENOBUFS);
    assert_true(id == 12345);

    /* The stream is closing. */
    net_stream_close_after_flush(f->a);
    assert_int_equal(call(f, f->a, 73, "y", LONG, &c, &id), -EPIPE);
    assert_int_equal(net_rpc_pending(f->r), 1);
    f->a = NULL;

    /* Only the accepted call's done ever runs (-ECANCELED, from the free). */
    nt_run_for(f->l, 20);
    assert_int_equal(c.done, 0);
    net_rpc_free(f->r);
    f->r = NULL;
    assert_int_equal(c.done, 1);
    assert_int_equal(c.status, -ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rpc_reply_matched_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_unmatched_frames_not_consumed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_call_from_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_stream_closed_resets_its_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_free_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rpc_call_refused, setup, teardown),
    };

    nt_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
