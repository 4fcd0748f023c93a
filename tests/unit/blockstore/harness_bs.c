/* harness_bs.c — several whole nodes in one process (see harness_bs.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "harness_bs.h"

/* ---- in-memory persist ---- */

struct hb_rec *hb_rec(struct hb_net *t, int i, uint8_t type, const struct id *key)
{
    struct hb_store *s = &t->n[i].st;
    for (size_t j = 0; j < s->n; j++)
        if (s->r[j].type == type && id_eq(&s->r[j].key, key))
            return &s->r[j];
    return NULL;
}

static void comp_add(struct hb_node *nd, uint64_t token)
{
    struct hb_net *t = nd->net;
    t->cq = realloc(t->cq, (t->ncq + 1) * sizeof(*t->cq));
    assert_non_null(t->cq);
    t->cq[t->ncq++] = (struct hb_comp){.node = nd->idx, .token = token};
}

static void rec_del(struct hb_store *s, struct hb_rec *r)
{
    free(r->bytes);
    *r = s->r[--s->n];
}

static int p_write(void *ctx, enum store_type type, const struct id *key, const void *bytes,
                   size_t len, uint64_t token)
{
    struct hb_node *nd = ctx;
    struct hb_store *s = &nd->st;
    struct hb_rec *r = hb_rec(nd->net, nd->idx, (uint8_t)type, key);
    if (!r) {
        s->r = realloc(s->r, (s->n + 1) * sizeof(*s->r));
        assert_non_null(s->r);
        r = &s->r[s->n++];
        r->type = (uint8_t)type;
        r->key = *key;
    } else {
        free(r->bytes);
    }
    r->damaged = false;
    r->bytes = malloc(len);
    assert_non_null(r->bytes);
    memcpy(r->bytes, bytes, len);
    r->len = len;
    s->writes++;
    comp_add(nd, token);
    return 0;
}

static int p_remove(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    struct hb_node *nd = ctx;
    struct hb_store *s = &nd->st;
    struct hb_rec *r = hb_rec(nd->net, nd->idx, (uint8_t)type, key);
    if (r)
        rec_del(s, r);
    /* As the disk store: the record's lease records go with it. */
    for (size_t i = 0; i < s->nl;) {
        if (type == STORE_CONTENT && id_eq(&s->l[i].key, key))
            s->l[i] = s->l[--s->nl];
        else
            i++;
    }
    s->removes++;
    comp_add(nd, token);
    return 0;
}

static int p_lease_append(void *ctx, const struct id *key, const struct lease *l, size_t n,
                          uint64_t token)
{
    struct hb_node *nd = ctx;
    struct hb_store *s = &nd->st;
    s->l = realloc(s->l, (s->nl + n) * sizeof(*s->l));
    assert_non_null(s->l);
    for (size_t i = 0; i < n; i++)
        s->l[s->nl++] = (struct hb_lrec){*key, l[i]};
    s->appends++;
    comp_add(nd, token);
    return 0;
}

static int p_read(void *ctx, enum store_type type, const struct id *key, uint8_t **bytes,
                  size_t *len)
{
    struct hb_node *nd = ctx;
    struct hb_rec *r = hb_rec(nd->net, nd->idx, (uint8_t)type, key);
    if (!r)
        return -ENOENT;
    if (r->damaged) {
        /* Quarantined, as the disk store does with a file that fails. */
        rec_del(&nd->st, r);
        nd->st.reads_bad++;
        return -EBADMSG;
    }
    *bytes = malloc(r->len);
    assert_non_null(*bytes);
    memcpy(*bytes, r->bytes, r->len);
    *len = r->len;
    return 0;
}

static int p_read_start(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    struct hb_node *nd = ctx;
    struct hb_net *t = nd->net;
    t->cq = realloc(t->cq, (t->ncq + 1) * sizeof(*t->cq));
    assert_non_null(t->cq);
    t->cq[t->ncq++] = (struct hb_comp){
        .node = nd->idx, .token = token, .read = true, .type = (uint8_t)type, .key = *key};
    return 0;
}

void hb_complete(struct hb_net *t, const struct hb_comp *c, int status)
{
    struct hb_node *nd = &t->n[c->node];
    uint8_t *bytes = NULL;
    size_t len = 0;

    if (!c->read) {
        bs_persist_done(nd->b, c->token, status);
        return;
    }
    if (status == 0)
        status = p_read(nd, (enum store_type)c->type, &c->key, &bytes, &len);
    bs_persist_read_done(nd->b, c->token, status, bytes, len);
}

/* ---- env and upcalls ---- */

static uint64_t e_now(void *ctx)
{
    return ((struct hb_node *)ctx)->net->now;
}

uint64_t hb_wall_ms(const struct hb_net *t)
{
    return HB_WALL0 + (t->now - HB_T0) + t->wall_off;
}

uint64_t hb_wall_s(const struct hb_net *t)
{
    return hb_wall_ms(t) / 1000;
}

static uint64_t e_wall(void *ctx)
{
    return hb_wall_ms(((struct hb_node *)ctx)->net);
}

static void e_send(void *ctx, const struct addr *to, const void *msg, size_t len)
{
    struct hb_node *nd = ctx;
    struct hb_net *t = nd->net;
    t->q = realloc(t->q, (t->nq + 1) * sizeof(*t->q));
    assert_non_null(t->q);
    struct hb_frame *f = &t->q[t->nq++];
    f->from = nd->idx;
    f->to = *to;
    f->bytes = malloc(len);
    assert_non_null(f->bytes);
    memcpy(f->bytes, msg, len);
    f->len = len;
}

static void e_random(void *ctx, void *buf, size_t len)
{
    struct hb_node *nd = ctx;
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        nd->rng ^= nd->rng << 13;
        nd->rng ^= nd->rng >> 7;
        nd->rng ^= nd->rng << 17;
        p[i] = (uint8_t)nd->rng;
    }
}

static void up_update(void *ctx, unsigned v)
{
    struct hb_node *nd = ctx;
    if (nd->b)
        bs_on_update(nd->b, v);
}

static void up_lookup_done(void *ctx, uint64_t handle, const struct chord_lookup_result *res)
{
    struct hb_node *nd = ctx;
    if (nd->b)
        bs_on_lookup_done(nd->b, handle, res);
}

/* ---- nodes and the network ---- */

static void node_start(struct hb_net *t, int i, int bootstrap)
{
    struct hb_node *nd = &t->n[i];
    struct chord_config cc;
    struct bs_config bc;
    struct env env = {e_now, e_send, e_random, e_wall, nd};
    struct chord_callbacks cb = {.ctx = nd, .update = up_update, .lookup_done = up_lookup_done};
    struct bs_persist p = {p_write, p_remove, p_lease_append, p_read, p_read_start, nd};

    nd->net = t;
    nd->idx = i;
    nd->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    addr_v4(&nd->addr, 10, 0, 1, (uint8_t)(i + 1), 4000);
    chord_config_default(&cc, &nd->addr);
    assert_int_equal(chord_new(&cc, &env, &cb, NULL, &nd->c), 0);
    bs_config_default(&bc);
    bc.replicas = t->k;
    bc.sync_period_ms = 0;
    assert_int_equal(bs_new(&bc, &env, nd->c, &p, NULL, &nd->b), 0);
    nd->up = true;
    if (bootstrap < 0)
        assert_int_equal(chord_create(nd->c), 0);
    else
        assert_int_equal(chord_join(nd->c, &t->n[bootstrap].addr), 0);
}

static struct hb_node *node_at(struct hb_net *t, const struct addr *a)
{
    for (int i = 0; i < t->nn; i++)
        if (addr_eq(&t->n[i].addr, a))
            return &t->n[i];
    return NULL;
}

static void deliver(struct hb_net *t, const struct hb_frame *f)
{
    struct frame_header h;
    struct hb_node *to = node_at(t, &f->to), *from = &t->n[f->from];

    assert_int_equal(frame_header_decode(f->bytes, f->len, &h), 0);
    if (!to || !to->up || !from->up || to->cut || from->cut)
        return;
    if (h.type == t->drop_type && (t->drop_mask & (1u << to->idx)))
        return;
    if (h.type >= 1000 && h.type < 1000 + N_ELEMS(t->count) && !(h.flags & FRAME_F_REPLY))
        t->count[h.type - 1000]++;
    if (h.type >= BS_MSG_FIRST && h.type <= BS_MSG_LAST)
        assert_int_equal(bs_input(to->b, &from->addr, f->bytes, f->len), 0);
    else
        chord_input(to->c, &from->addr, f->bytes, f->len);
}

bool hb_step(struct hb_net *t)
{
    if (t->ncq) {
        struct hb_comp c = t->cq[0];
        memmove(&t->cq[0], &t->cq[1], --t->ncq * sizeof(*t->cq));
        if (t->n[c.node].up)
            hb_complete(t, &c, 0);
        return true;
    }
    if (!t->nq)
        return false;
    struct hb_frame f = t->q[0];
    memmove(&t->q[0], &t->q[1], --t->nq * sizeof(*t->q));
    deliver(t, &f);
    free(f.bytes);
    return true;
}

void hb_flush(struct hb_net *t)
{
    for (unsigned guard = 0; hb_step(t); guard++)
        assert_true(guard < 10000000);
}

static void tick_all(struct hb_net *t)
{
    for (int i = 0; i < t->nn; i++) {
        if (!t->n[i].up)
            continue;
        chord_tick(t->n[i].c);
        bs_tick(t->n[i].b);
    }
}

static uint64_t next_deadline(struct hb_net *t)
{
    uint64_t d = UINT64_MAX;
    for (int i = 0; i < t->nn; i++) {
        if (!t->n[i].up)
            continue;
        uint64_t a = chord_next_deadline(t->n[i].c), b = bs_next_deadline(t->n[i].b);
        d = a < d ? a : d;
        d = b < d ? b : d;
    }
    return d;
}

void hb_advance(struct hb_net *t, uint64_t ms)
{
    t->now += ms;
    tick_all(t);
}

void hb_run(struct hb_net *t, uint64_t ms)
{
    uint64_t end = t->now + ms;
    for (unsigned guard = 0;; guard++) {
        assert_true(guard < 1000000);
        hb_flush(t);
        uint64_t d = next_deadline(t);
        if (d > end)
            break;
        if (d > t->now)
            t->now = d;
        tick_all(t);
    }
    t->now = end;
    hb_flush(t);
}

void hb_wait(struct hb_net *t, struct hb_res *r)
{
    uint64_t end = t->now + 60000;
    for (unsigned guard = 0; !r->done; guard++) {
        assert_true(guard < 1000000);
        hb_flush(t);
        if (r->done)
            break;
        uint64_t d = next_deadline(t);
        assert_true(d <= end);
        if (d > t->now)
            t->now = d;
        tick_all(t);
    }
}

void hb_done(void *ctx, const struct bs_result *r)
{
    struct hb_res *h = ctx;
    assert_false(h->done);
    h->done = true;
    h->status = r->status;
    h->len = r->len;
    if (r->len) {
        assert_true(r->len <= sizeof(h->bytes));
        memcpy(h->bytes, r->bytes, r->len);
    }
    h->copies = r->copies;
    h->version = r->version;
    snprintf(h->reason, sizeof(h->reason), "%s", r->reason ? r->reason : "");
}

static bool ring_ok(struct hb_net *t)
{
    for (int i = 0; i < t->nn; i++) {
        struct hb_node *a = &t->n[i];
        if (!a->up)
            continue;
        if (!chord_vnode_joined(a->c, 0))
            return false;
        int order[HB_NODES];
        size_t n = hb_replica_set(t, &chord_vnode_self(a->c, 0)->id, order, true);
        /* order[0] is a itself; its successor is order[1], its
         * predecessor order[n - 1]. */
        if (n < 2)
            continue;
        const struct chord_peer *succ;
        struct chord_peer pred;
        if (chord_vnode_successors(a->c, 0, &succ) == 0 ||
            !addr_eq(&succ[0].addr, &t->n[order[1]].addr))
            return false;
        if (!chord_vnode_predecessor(a->c, 0, &pred) ||
            !addr_eq(&pred.addr, &t->n[order[n - 1]].addr))
            return false;
    }
    return true;
}

void hb_init(struct hb_net *t, int n, unsigned k)
{
    memset(t, 0, sizeof(*t));
    t->now = HB_T0;
    t->k = k;
    t->nn = n;
    for (int i = 0; i < n; i++)
        node_start(t, i, i == 0 ? -1 : 0);
    for (int i = 0; i < 120 && !ring_ok(t); i++)
        hb_run(t, 1000);
    assert_true(ring_ok(t));
    hb_run(t, 2000);
}

void hb_free(struct hb_net *t)
{
    for (int i = 0; i < t->nn; i++) {
        struct hb_node *nd = &t->n[i];
        if (nd->up) {
            bs_free(nd->b);
            chord_free(nd->c);
        }
        for (size_t j = 0; j < nd->st.n; j++)
            free(nd->st.r[j].bytes);
        free(nd->st.r);
        free(nd->st.l);
    }
    for (size_t i = 0; i < t->nq; i++)
        free(t->q[i].bytes);
    free(t->q);
    free(t->cq);
}

size_t hb_replica_set(struct hb_net *t, const struct id *key, int *out, bool all)
{
    size_t n = 0;
    bool used[HB_NODES] = {false};
    for (;;) {
        int best = -1;
        struct id bd, d;
        for (int i = 0; i < t->nn; i++) {
            if (!t->n[i].up || used[i])
                continue;
            /* Successor order: distance from key to the node's id. */
            id_distance(&d, key, &chord_vnode_self(t->n[i].c, 0)->id);
            if (best < 0 || id_cmp(&d, &bd) < 0)
                best = i, bd = d;
        }
        if (best < 0 || (!all && n == t->k))
            break;
        used[best] = true;
        out[n++] = best;
    }
    return n;
}

unsigned hb_holders(struct hb_net *t, enum store_type type, const struct id *key)
{
    unsigned h = 0;
    for (int i = 0; i < t->nn; i++)
        if (t->n[i].up && bs_holds(t->n[i].b, type, key))
            h++;
    return h;
}

void hb_owner(uint8_t seed_byte, struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    memset(seed, seed_byte, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, k), 0);
}

void hb_block(unsigned n, size_t size, uint8_t *bytes, size_t *len, struct id *key)
{
    uint8_t *data = malloc(size ? size : 1);
    assert_non_null(data);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(n * 131 + i * 7 + (i >> 8));
    int dl = snprintf((char *)data, size, "block %u", n);
    (void)dl;
    assert_int_equal(block_encode(BLOCK_KIND_DATA, data, size, false, bytes, len, key), 0);
    free(data);
}

void hb_lease(struct hb_net *t, const struct sig_key *k, const struct id *key, uint64_t secs,
              struct lease *out)
{
    assert_int_equal(lease_sign(k, key, hb_wall_ms(t), secs ? hb_wall_s(t) + secs : 0, out), 0);
}
