/* harness.c — the fake world of harness.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- env --------------------------------------------------------------- */

static uint64_t h_env_now(void *ctx)
{
    struct harness *h = ctx;
    return *h->clock;
}

/* splitmix64 of a counter: deterministic, and different on every call. */
static uint64_t h_rand64(struct harness *h)
{
    uint64_t z = (h->rng_counter += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void h_env_random(void *ctx, void *buf, size_t len)
{
    struct harness *h = ctx;
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t v = h_rand64(h);
        size_t k = len < sizeof(v) ? len : sizeof(v);
        memcpy(p, &v, k);
        p += k;
        len -= k;
    }
}

/* Appends a copy of a frame to a growable queue (the outbox or the
 * loopback queue). */
static void h_frames_push(struct h_frame **q, size_t *n, size_t *cap, const struct addr *to,
                          const void *msg, size_t len)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct h_frame *nq = realloc(*q, ncap * sizeof(*nq));
        assert_non_null(nq);
        *q = nq;
        *cap = ncap;
    }
    struct h_frame *f = &(*q)[(*n)++];
    f->to = *to;
    f->len = len;
    f->bytes = malloc(len ? len : 1);
    assert_non_null(f->bytes);
    memcpy(f->bytes, msg, len);
}

static void h_env_send(void *ctx, const struct addr *to, const void *msg, size_t len)
{
    struct harness *h = ctx;
    if (!h->in_net && addr_eq(to, &h->cfg.self))
        h_frames_push(&h->loop, &h->nloop, &h->cap_loop, to, msg, len);
    else
        h_frames_push(&h->out, &h->nout, &h->cap_out, to, msg, len);
}

/* ---- upcalls ----------------------------------------------------------- */

static void h_cb_update(void *ctx, unsigned vnode)
{
    struct harness *h = ctx;
    h->updates++;
    if (vnode < CHORD_MAX_VNODES)
        h->updates_vn[vnode]++;
}

static void h_cb_deliver(void *ctx, unsigned vnode, const struct id *key,
                         const struct chord_peer *origin, uint16_t app_type, const void *payload,
                         size_t len)
{
    struct harness *h = ctx;
    if (h->in_call)
        h->deliver_in_call++;
    assert_true(h->ndeliv < H_MAX_DELIVER);
    struct h_delivery *d = &h->deliv[h->ndeliv++];
    d->vnode = vnode;
    d->key = *key;
    d->origin = *origin;
    d->app_type = app_type;
    d->len = len;
    if (len)
        memcpy(d->payload, payload, len < H_PAYLOAD_MAX ? len : H_PAYLOAD_MAX);
}

static bool h_cb_forward(void *ctx, unsigned vnode, const struct id *key,
                         const struct chord_peer *next, uint16_t app_type, const void *payload,
                         size_t len)
{
    struct harness *h = ctx;
    (void)vnode;
    (void)key;
    (void)app_type;
    (void)payload;
    (void)len;
    if (h->in_call)
        h->forward_in_call++;
    h->nforward++;
    h->forward_next = *next;
    return h->forward_ret;
}

static void h_cb_lookup_done(void *ctx, uint64_t handle, const struct chord_lookup_result *res)
{
    struct harness *h = ctx;
    if (h->in_call)
        h->done_in_call++;
    assert_true(h->ndone < H_MAX_DONE);
    struct h_done *d = &h->done[h->ndone++];
    d->handle = handle;
    d->at = *h->clock;
    d->res = *res;
}

/* ---- set-up ------------------------------------------------------------ */

void h_config(struct chord_config *cfg, uint8_t host)
{
    struct addr a;
    addr_v4(&a, 127, 0, 0, host, 4000);
    chord_config_default(cfg, &a);
}

void h_config_quiet(struct chord_config *cfg)
{
    cfg->check_pred_ms = 3600u * 1000u;
    cfg->fix_finger_ms = 3600u * 1000u;
    cfg->probe_ms = 3600u * 1000u;
}

void h_init(struct harness *h, const struct chord_config *cfg)
{
    struct chord_callbacks cb = {
        .update = h_cb_update,
        .deliver = h_cb_deliver,
        .forward = h_cb_forward,
        .lookup_done = h_cb_lookup_done,
    };
    memset(h, 0, sizeof(*h));
    h->now = H_T0;
    h->clock = &h->now;
    h->forward_ret = true;
    h->cfg = *cfg;
    h->env.now_ms = h_env_now;
    h->env.send = h_env_send;
    h->env.random = h_env_random;
    h->env.ctx = h;
    cb.ctx = h;
    if (getenv("H_LOG")) {
        log_init(&h->lg, stderr, LOG_DEBUG);
        h->lg.now_ms = h_env_now;
        h->lg.ctx = h;
    }
    assert_int_equal(chord_new(cfg, &h->env, &cb, getenv("H_LOG") ? &h->lg : NULL, &h->c), 0);
}

void h_release(struct harness *h)
{
    chord_free(h->c);
    h->c = NULL;
    h_clear(h);
    free(h->out);
    h->out = NULL;
    h->cap_out = 0;
    for (size_t i = 0; i < h->nloop; i++)
        free(h->loop[i].bytes);
    free(h->loop);
    h->loop = NULL;
    h->nloop = h->cap_loop = 0;
}

const struct chord_peer *h_vself(const struct harness *h, unsigned v)
{
    const struct chord_peer *p = chord_vnode_self(h->c, v);
    assert_non_null(p);
    return p;
}

const struct chord_peer *h_self(const struct harness *h)
{
    return h_vself(h, 0);
}

void h_id_off(struct id *out, const struct id *base, uint8_t off)
{
    struct id d;
    memset(&d, 0, sizeof(d));
    d.b[0] = off;
    id_add(out, base, &d);
}

void h_peer(const struct harness *h, uint8_t off, struct chord_peer *out)
{
    h_id_off(&out->id, &h_self(h)->id, off);
    addr_v4(&out->addr, 127, 1, off, off, 5000);
}

void h_peer_at_addr(const struct harness *h, uint8_t off, const struct addr *at,
                    struct chord_peer *out)
{
    h_id_off(&out->id, &h_self(h)->id, off);
    out->addr = *at;
}

void h_bootstrap(struct addr *out)
{
    addr_v4(out, 127, 9, 9, 9, 4000);
}

/* ---- time -------------------------------------------------------------- */

void h_tick_at(struct harness *h, uint64_t t)
{
    if (t > *h->clock)
        *h->clock = t;
    chord_tick(h->c);
}

/* Ticks at the next deadline if it is at most limit. A node whose deadline
 * stays in the past after many ticks is livelocked: that fails the test. */
static bool h_step(struct harness *h, uint64_t limit, unsigned *same_time)
{
    if (h->nloop > 0) {
        struct h_frame f = h->loop[0];
        memmove(h->loop, h->loop + 1, (h->nloop - 1) * sizeof(*h->loop));
        h->nloop--;
        chord_input(h->c, &h->cfg.self, f.bytes, f.len);
        free(f.bytes);
        return true;
    }
    uint64_t d = chord_next_deadline(h->c);
    if (d > limit)
        return false;
    if (d > *h->clock) {
        *h->clock = d;
        *same_time = 0;
    } else if (++*same_time > 1000) {
        fail_msg("node keeps a deadline in the past (%llu <= now %llu)", (unsigned long long)d,
                 (unsigned long long)*h->clock);
    }
    chord_tick(h->c);
    return true;
}

void h_run(struct harness *h, uint64_t ms)
{
    uint64_t target = *h->clock + ms;
    unsigned same = 0;
    while (h_step(h, target, &same))
        ;
    *h->clock = target;
}

int h_await(struct harness *h, uint16_t type, const struct addr *to, uint64_t ms,
            struct chord_msg *m)
{
    uint64_t target = *h->clock + ms;
    size_t from = h->nout;
    unsigned same = 0;
    for (;;) {
        int i = h_find_from(h, from, type, to, m);
        if (i >= 0)
            return i;
        if (!h_step(h, target, &same)) {
            *h->clock = target;
            return -1;
        }
    }
}

/* ---- the outbox -------------------------------------------------------- */

void h_out_msg(const struct harness *h, size_t i, struct chord_msg *m)
{
    assert_true(i < h->nout);
    assert_int_equal(chord_msg_decode(h->out[i].bytes, h->out[i].len, m), 0);
}

int h_find_from(const struct harness *h, size_t from, uint16_t type, const struct addr *to,
                struct chord_msg *m)
{
    struct chord_msg tmp;
    for (size_t i = from; i < h->nout; i++) {
        if (to && !addr_eq(to, &h->out[i].to))
            continue;
        h_out_msg(h, i, &tmp);
        if (tmp.type != type)
            continue;
        if (m)
            *m = tmp;
        return (int)i;
    }
    return -1;
}

int h_find(const struct harness *h, uint16_t type, const struct addr *to, struct chord_msg *m)
{
    return h_find_from(h, 0, type, to, m);
}

int h_find_last(const struct harness *h, uint16_t type, const struct addr *to, struct chord_msg *m)
{
    int last = -1;
    for (int i = h_find_from(h, 0, type, to, NULL); i >= 0;
         i = h_find_from(h, (size_t)i + 1, type, to, NULL))
        last = i;
    if (last >= 0 && m)
        h_out_msg(h, (size_t)last, m);
    return last;
}

size_t h_count(const struct harness *h, uint16_t type, const struct addr *to)
{
    size_t n = 0;
    for (int i = h_find_from(h, 0, type, to, NULL); i >= 0;
         i = h_find_from(h, (size_t)i + 1, type, to, NULL))
        n++;
    return n;
}

void h_clear(struct harness *h)
{
    for (size_t i = 0; i < h->nout; i++)
        free(h->out[i].bytes);
    h->nout = 0;
}

/* ---- input ------------------------------------------------------------- */

void h_msg(const struct harness *h, struct chord_msg *m, uint16_t type,
           const struct chord_peer *from)
{
    memset(m, 0, sizeof(*m));
    m->dst = h_self(h)->id;
    m->type = type;
    m->request_id = 0x5eed0000u + type;
    m->src = *from;
}

void h_reply(struct chord_msg *rep, const struct chord_msg *req, uint16_t type,
             const struct chord_peer *from)
{
    memset(rep, 0, sizeof(*rep));
    rep->type = type;
    rep->reply = true;
    rep->request_id = req->request_id;
    rep->dst = req->src.id;
    rep->src = *from;
}

size_t h_encode(const struct chord_msg *m, uint8_t *buf, size_t cap)
{
    size_t n = chord_msg_encode(m, buf, cap);
    assert_true(n > 0);
    return n;
}

int h_feed(struct harness *h, const struct chord_msg *m)
{
    uint8_t buf[H_FRAME_MAX];
    size_t n = h_encode(m, buf, sizeof(buf));
    return chord_input(h->c, &m->src.addr, buf, n);
}

int h_feed_raw(struct harness *h, const struct addr *from, const void *buf, size_t len)
{
    return chord_input(h->c, from, buf, len);
}

void h_join(struct harness *h, const struct chord_peer *succ, const struct chord_peer *pred,
            const struct chord_peer *list, size_t n)
{
    struct chord_msg find, get, m;
    struct chord_peer boot;
    struct addr ba;

    h_bootstrap(&ba);
    h_peer_at_addr(h, 0x80, &ba, &boot);
    assert_true(h_await(h, CHORD_MSG_PEER_FIND, &ba, CHORD_JOIN_RETRY_MS, &find) >= 0);
    h_reply(&m, &find, CHORD_MSG_PEER_FOUND, &boot);
    m.key = find.key;
    m.peer = *succ;
    m.has_peer = true;
    m.hops = 1;
    assert_int_equal(h_feed(h, &m), 0);
    assert_true(h_await(h, CHORD_MSG_PREDECESSOR_GET, &succ->addr, 1, &get) >= 0);
    h_reply_state(h, &get, succ, pred, list, n);
    assert_true(chord_vnode_joined(h->c, 0));
    h_clear(h);
}

void h_reply_state(struct harness *h, const struct chord_msg *req, const struct chord_peer *from,
                   const struct chord_peer *pred, const struct chord_peer *list, size_t n)
{
    struct chord_msg m;

    h_reply(&m, req, CHORD_MSG_PREDECESSOR_REPLY, from);
    if (pred) {
        m.has_peer = true;
        m.peer = *pred;
    }
    assert_true(n <= CHORD_SUCC_MAX);
    m.npeers = (uint8_t)n;
    if (n)
        memcpy(m.peers, list, n * sizeof(list[0]));
    assert_int_equal(h_feed(h, &m), 0);
}

void h_stabilize(struct harness *h, const struct chord_peer *succ, const struct chord_peer *pred,
                 const struct chord_peer *list, size_t n)
{
    struct chord_msg get;
    uint64_t within = h->cfg.stabilize_ms + h->cfg.stabilize_ms / 5 + 1;

    assert_true(h_await(h, CHORD_MSG_PREDECESSOR_GET, &succ->addr, within, &get) >= 0);
    assert_true(id_eq(&get.dst, &succ->id));
    h_reply_state(h, &get, succ, pred, list, n);
}

int h_lookup(struct harness *h, const struct id *key, uint64_t *handle)
{
    h->in_call = true;
    int rc = chord_lookup(h->c, key, handle);
    h->in_call = false;
    return rc;
}

int h_route(struct harness *h, const struct id *key, uint16_t app_type, const void *payload,
            size_t len)
{
    h->in_call = true;
    int rc = chord_route(h->c, key, app_type, payload, len);
    h->in_call = false;
    return rc;
}

const struct h_done *h_done_for(const struct harness *h, uint64_t handle)
{
    for (size_t i = 0; i < h->ndone; i++)
        if (h->done[i].handle == handle)
            return &h->done[i];
    return NULL;
}

/* ---- checks ------------------------------------------------------------ */

bool h_peer_eq(const struct chord_peer *a, const struct chord_peer *b)
{
    return id_eq(&a->id, &b->id) && addr_eq(&a->addr, &b->addr);
}

static void h_peer_str(const struct chord_peer *p, char *buf, size_t size)
{
    char hex[ID_HEX_LEN + 1], a[ADDR_STR_MAX];
    id_to_hex(&p->id, hex);
    addr_format(&p->addr, a, sizeof(a));
    snprintf(buf, size, "%.12s@%s", hex, a);
}

void h_assert_peer_eq(const struct chord_peer *a, const struct chord_peer *b)
{
    if (!h_peer_eq(a, b)) {
        char sa[96], sb[96];
        h_peer_str(a, sa, sizeof(sa));
        h_peer_str(b, sb, sizeof(sb));
        fail_msg("peer %s != %s", sa, sb);
    }
}

void h_assert_succ(const struct harness *h, const struct chord_peer *expect, size_t n)
{
    const struct chord_peer *got;
    size_t k = chord_vnode_successors(h->c, 0, &got);
    bool same = k == n;
    for (size_t i = 0; same && i < n; i++)
        same = h_peer_eq(&got[i], &expect[i]);
    if (same)
        return;
    char s[96];
    print_error("successor list: got %zu entries, expected %zu\n", k, n);
    for (size_t i = 0; i < k; i++) {
        h_peer_str(&got[i], s, sizeof(s));
        print_error("  got[%zu]    %s\n", i, s);
    }
    for (size_t i = 0; i < n; i++) {
        h_peer_str(&expect[i], s, sizeof(s));
        print_error("  expect[%zu] %s\n", i, s);
    }
    fail_msg("successor list differs");
}

void h_assert_pred(const struct harness *h, const struct chord_peer *expect)
{
    struct chord_peer p;
    bool has = chord_vnode_predecessor(h->c, 0, &p);
    if (!expect) {
        assert_false(has);
        return;
    }
    assert_true(has);
    h_assert_peer_eq(&p, expect);
}

/* ---- a hand-wired network ---------------------------------------------- */

void h_net_init(struct h_net *net, struct harness **nodes, size_t n)
{
    assert_true(n <= H_NET_MAX);
    memset(net, 0, sizeof(*net));
    net->now = H_T0;
    net->n = n;
    for (size_t i = 0; i < n; i++) {
        net->node[i] = nodes[i];
        nodes[i]->clock = &net->now;
        nodes[i]->in_net = true; /* the net delivers frames to self too */
    }
}

static struct harness *h_net_dest(struct h_net *net, const struct addr *to)
{
    for (size_t j = 0; j < net->n; j++)
        if (!net->down[j] && addr_eq(&net->node[j]->cfg.self, to))
            return net->node[j];
    return NULL;
}

void h_net_flush(struct h_net *net)
{
    for (unsigned rounds = 0;; rounds++) {
        bool any = false;
        assert_true(rounds < 100000);
        for (size_t i = 0; i < net->n; i++) {
            struct harness *src = net->node[i];
            if (src->nout == 0)
                continue;
            struct h_frame *frames = src->out;
            size_t n = src->nout;
            src->out = NULL;
            src->nout = src->cap_out = 0;
            any = true;
            for (size_t k = 0; k < n; k++) {
                struct harness *dst = net->down[i] ? NULL : h_net_dest(net, &frames[k].to);
                if (dst)
                    chord_input(dst->c, &src->cfg.self, frames[k].bytes, frames[k].len);
                free(frames[k].bytes);
            }
            free(frames);
        }
        if (!any)
            return;
    }
}

void h_net_run(struct h_net *net, uint64_t ms)
{
    uint64_t target = net->now + ms;
    unsigned same = 0;
    for (;;) {
        uint64_t d = UINT64_MAX;
        h_net_flush(net);
        for (size_t i = 0; i < net->n; i++) {
            uint64_t di = net->down[i] ? UINT64_MAX : chord_next_deadline(net->node[i]->c);
            if (di < d)
                d = di;
        }
        if (d > target)
            break;
        if (d > net->now) {
            net->now = d;
            same = 0;
        } else {
            assert_true(++same < 1000);
        }
        for (size_t i = 0; i < net->n; i++)
            if (!net->down[i] && chord_next_deadline(net->node[i]->c) <= net->now)
                chord_tick(net->node[i]->c);
    }
    net->now = target;
    h_net_flush(net);
}
