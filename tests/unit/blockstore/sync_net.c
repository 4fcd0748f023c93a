/* sync_net.c — whole nodes on a fake network for test_sync.c (sync_net.h). */
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
#include "sync_net.h"

struct mrec *ms_find(struct mstore *s, uint8_t type, const struct id *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->r[i].type == type && id_eq(&s->r[i].key, key))
            return &s->r[i];
    return NULL;
}

static void ms_put(struct mstore *s, uint8_t type, const struct id *key, const void *bytes,
                   size_t len)
{
    struct mrec *r = ms_find(s, type, key);
    if (!r) {
        s->r = realloc(s->r, (s->n + 1) * sizeof(*s->r));
        assert_non_null(s->r);
        r = &s->r[s->n++];
        r->type = type;
        r->key = *key;
    } else {
        free(r->bytes);
    }
    r->bytes = malloc(len);
    assert_non_null(r->bytes);
    memcpy(r->bytes, bytes, len);
    r->len = len;
}

void ms_lease(struct mstore *s, const struct id *key, const struct lease *l, size_t n)
{
    s->l = realloc(s->l, (s->nl + n) * sizeof(*s->l));
    assert_non_null(s->l);
    for (size_t i = 0; i < n; i++)
        s->l[s->nl++] = (struct mlease){*key, l[i]};
}

static void ms_release(struct mstore *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].bytes);
    free(s->r);
    free(s->l);
    memset(s, 0, sizeof(*s));
}

static void comp_add(struct tnode *nd, uint64_t token)
{
    struct tnet *t = nd->net;
    t->cq = realloc(t->cq, (t->ncq + 1) * sizeof(*t->cq));
    assert_non_null(t->cq);
    t->cq[t->ncq++] = (struct tcomp){.node = nd->idx, .token = token};
}

static int p_write(void *ctx, enum store_type type, const struct id *key, const void *bytes,
                   size_t len, uint64_t token)
{
    struct tnode *nd = ctx;
    ms_put(&nd->st, (uint8_t)type, key, bytes, len);
    comp_add(nd, token);
    return 0;
}

static int p_remove(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    struct tnode *nd = ctx;
    struct mrec *r = ms_find(&nd->st, (uint8_t)type, key);
    if (r) {
        free(r->bytes);
        *r = nd->st.r[--nd->st.n];
    }
    comp_add(nd, token);
    return 0;
}

static int p_lease_append(void *ctx, const struct id *key, const struct lease *l, size_t n,
                          uint64_t token)
{
    struct tnode *nd = ctx;
    ms_lease(&nd->st, key, l, n);
    comp_add(nd, token);
    return 0;
}

static int p_read(void *ctx, enum store_type type, const struct id *key, uint8_t **bytes,
                  size_t *len)
{
    struct tnode *nd = ctx;
    struct mrec *r = ms_find(&nd->st, (uint8_t)type, key);
    if (!r)
        return -ENOENT;
    *bytes = malloc(r->len);
    assert_non_null(*bytes);
    memcpy(*bytes, r->bytes, r->len);
    *len = r->len;
    return 0;
}

static int p_read_start(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    struct tnode *nd = ctx;
    struct tnet *t = nd->net;
    t->cq = realloc(t->cq, (t->ncq + 1) * sizeof(*t->cq));
    assert_non_null(t->cq);
    t->cq[t->ncq++] = (struct tcomp){
        .node = nd->idx, .token = token, .read = true, .type = (uint8_t)type, .key = *key};
    return 0;
}

/* Completes c: a read reads the record as the node holds it now. */
static void comp_deliver(struct tnet *t, const struct tcomp *c)
{
    struct tnode *nd = &t->n[c->node];
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc;

    if (!c->read) {
        bs_persist_done(nd->b, c->token, 0);
        return;
    }
    rc = p_read(nd, (enum store_type)c->type, &c->key, &bytes, &len);
    bs_persist_read_done(nd->b, c->token, rc, bytes, len);
}

/* ---- env and chord upcalls ---- */

static uint64_t e_now(void *ctx)
{
    return ((struct tnode *)ctx)->net->now;
}

static uint64_t e_wall(void *ctx)
{
    struct tnet *t = ((struct tnode *)ctx)->net;
    return T_WALL0 + (t->now - T0) + t->wall_off;
}

static void e_send(void *ctx, const struct addr *to, const void *msg, size_t len)
{
    struct tnode *nd = ctx;
    struct tnet *t = nd->net;
    t->q = realloc(t->q, (t->nq + 1) * sizeof(*t->q));
    assert_non_null(t->q);
    struct tframe *f = &t->q[t->nq++];
    f->at = t->now + t->latency_ms;
    f->from = nd->idx;
    f->to = *to;
    f->bytes = malloc(len);
    assert_non_null(f->bytes);
    memcpy(f->bytes, msg, len);
    f->len = len;
}

static void e_random(void *ctx, void *buf, size_t len)
{
    struct tnode *nd = ctx;
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
    struct tnode *nd = ctx;
    if (nd->b)
        bs_on_update(nd->b, v);
}

static void up_lookup_done(void *ctx, uint64_t handle, const struct chord_lookup_result *res)
{
    struct tnode *nd = ctx;
    if (nd->b)
        bs_on_lookup_done(nd->b, handle, res);
}

/* ---- the network ---- */

void node_start(struct tnet *t, int i, int bootstrap)
{
    struct tnode *nd = &t->n[i];
    struct chord_config cc;
    struct bs_config bc;
    struct env env = {e_now, e_send, e_random, e_wall, nd};
    struct chord_callbacks cb = {.ctx = nd, .update = up_update, .lookup_done = up_lookup_done};
    struct bs_persist p = {p_write, p_remove, p_lease_append, p_read, p_read_start, nd};

    nd->net = t;
    nd->idx = i;
    nd->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    addr_v4(&nd->addr, 10, 0, 0, (uint8_t)(i + 1), 4000);
    chord_config_default(&cc, &nd->addr);
    cc.vnodes = t->vnodes;
    assert_int_equal(chord_new(&cc, &env, &cb, NULL, &nd->c), 0);
    bs_config_default(&bc);
    bc.replicas = t->k;
    bc.sync_period_ms = t->sync_period_ms;
    if (t->no_space[i])
        bc.capacity = 0;
    assert_int_equal(bs_new(&bc, &env, nd->c, &p, getenv("T_LOG") ? &t->lg : NULL, &nd->b), 0);
    /* What the store held at start: records, then their leases. */
    for (size_t r = 0; r < nd->st.n; r++) {
        struct lease ls[8];
        size_t nl = 0;
        for (size_t j = 0; j < nd->st.nl && nl < N_ELEMS(ls); j++)
            if (id_eq(&nd->st.l[j].key, &nd->st.r[r].key))
                ls[nl++] = nd->st.l[j].l;
        bs_load(nd->b, nd->st.r[r].type, &nd->st.r[r].key, (uint32_t)nd->st.r[r].len, ls,
                nd->st.r[r].type == STORE_CONTENT ? nl : 0);
    }
    nd->up = true;
    if (bootstrap < 0)
        assert_int_equal(chord_create(nd->c), 0);
    else
        assert_int_equal(chord_join(nd->c, &t->n[bootstrap].addr), 0);
}

/* A crash: the process is gone, its disk (the mstore) stays. */
void node_crash(struct tnet *t, int i)
{
    struct tnode *nd = &t->n[i];
    nd->up = false;
    bs_free(nd->b);
    chord_free(nd->c);
    nd->b = NULL;
    nd->c = NULL;
}

static struct tnode *node_at(struct tnet *t, const struct addr *a)
{
    for (int i = 0; i < t->nn; i++)
        if (addr_eq(&t->n[i].addr, a))
            return &t->n[i];
    return NULL;
}

static void deliver(struct tnet *t, struct tframe *f)
{
    struct frame_header h;
    struct tnode *to = node_at(t, &f->to), *from = &t->n[f->from];

    assert_int_equal(frame_header_decode(f->bytes, f->len, &h), 0);
    if (!to || !to->up || !from->up)
        return; /* a crashed node: the frame is lost */
    if (h.type >= 1000 && h.type < 1000 + N_ELEMS(t->count))
        t->count[h.type - 1000]++;
    if (h.type == BS_MSG_STORE && !(h.flags & FRAME_F_REPLY))
        t->stores_to[to->idx]++;
    if (h.type >= BS_MSG_FIRST && h.type <= BS_MSG_LAST)
        assert_int_equal(bs_input(to->b, &from->addr, f->bytes, f->len), 0);
    else
        chord_input(to->c, &from->addr, f->bytes, f->len);
}

/* Delivers the persist completions and the frames due by now. */
static void net_flush(struct tnet *t)
{
    for (unsigned guard = 0;; guard++) {
        assert_true(guard < 10000000);
        if (t->ncq) {
            struct tcomp c = t->cq[0];
            memmove(&t->cq[0], &t->cq[1], --t->ncq * sizeof(*t->cq));
            if (t->n[c.node].up)
                comp_deliver(t, &c);
            continue;
        }
        if (t->nq == 0 || t->q[0].at > t->now)
            return;
        struct tframe f = t->q[0];
        memmove(&t->q[0], &t->q[1], --t->nq * sizeof(*t->q));
        deliver(t, &f);
        free(f.bytes);
    }
}

/* Passes ms of fake time like an event loop: frames arrive and nodes are
 * ticked at their deadlines. */
void net_run(struct tnet *t, uint64_t ms)
{
    uint64_t end = t->now + ms;
    for (unsigned guard = 0;; guard++) {
        assert_true(guard < 10000000);
        net_flush(t);
        uint64_t d = t->nq ? t->q[0].at : UINT64_MAX;
        for (int i = 0; i < t->nn; i++) {
            if (!t->n[i].up)
                continue;
            uint64_t a = chord_next_deadline(t->n[i].c), b = bs_next_deadline(t->n[i].b);
            d = a < d ? a : d;
            d = b < d ? b : d;
        }
        if (d > end)
            break;
        if (d > t->now)
            t->now = d;
        net_flush(t);
        for (int i = 0; i < t->nn; i++) {
            if (!t->n[i].up)
                continue;
            chord_tick(t->n[i].c);
            bs_tick(t->n[i].b);
        }
    }
    t->now = end;
    net_flush(t);
}

struct vn {
    int node;
    unsigned v;
    const struct id *id;
};

/* Every vnode of the up nodes. */
static size_t all_vnodes(struct tnet *t, struct vn *out)
{
    size_t n = 0;
    for (int i = 0; i < t->nn; i++)
        for (unsigned v = 0; t->n[i].up && v < t->vnodes; v++)
            out[n++] = (struct vn){i, v, &chord_vnode_self(t->n[i].c, v)->id};
    return n;
}

/* Does every up vnode have its ring neighbours right? */
static bool ring_ok(struct tnet *t)
{
    struct vn all[T_NODES * T_VNODES];
    size_t n = all_vnodes(t, all);
    for (size_t i = 0; i < n; i++) {
        struct chord *c = t->n[all[i].node].c;
        unsigned v = all[i].v;
        const struct chord_peer *succ;
        struct chord_peer pred;
        int ws = -1, wp = -1;
        struct id ds, dp, d;
        if (!chord_vnode_joined(c, v))
            return false;
        for (size_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            id_distance(&d, all[i].id, all[j].id);
            if (ws < 0 || id_cmp(&d, &ds) < 0)
                ws = (int)j, ds = d;
            id_distance(&d, all[j].id, all[i].id);
            if (wp < 0 || id_cmp(&d, &dp) < 0)
                wp = (int)j, dp = d;
        }
        if (ws < 0)
            continue;
        if (chord_vnode_successors(c, v, &succ) == 0 || !id_eq(&succ[0].id, all[ws].id))
            return false;
        if (!chord_vnode_predecessor(c, v, &pred) || !id_eq(&pred.id, all[wp].id))
            return false;
    }
    return true;
}

void net_settle(struct tnet *t)
{
    for (int i = 0; i < 120 && !ring_ok(t); i++)
        net_run(t, 1000);
    assert_true(ring_ok(t));
    net_run(t, 7000); /* the rounds the joins set off, and their retries */
}

void net_init_ex(struct tnet *t, int n, unsigned k, unsigned vnodes, uint32_t period_ms)
{
    assert_true(n <= T_NODES && vnodes <= T_VNODES);
    memset(t, 0, sizeof(*t));
    t->now = T0;
    log_init(&t->lg, stderr, LOG_DEBUG);
    t->k = k;
    t->nn = n;
    t->vnodes = vnodes;
    t->sync_period_ms = period_ms;
    for (int i = 0; i < n; i++)
        node_start(t, i, i == 0 ? -1 : 0);
}

void net_init(struct tnet *t, int n, unsigned k)
{
    net_init_ex(t, n, k, 1, 0);
}

void net_free(struct tnet *t)
{
    for (int i = 0; i < t->nn; i++) {
        if (t->n[i].up)
            node_crash(t, i);
        ms_release(&t->n[i].st);
    }
    for (size_t i = 0; i < t->nq; i++)
        free(t->q[i].bytes);
    free(t->q);
    free(t->cq);
}

void counts_reset(struct tnet *t)
{
    memset(t->count, 0, sizeof(t->count));
    memset(t->stores_to, 0, sizeof(t->stores_to));
}

/* One maintenance round on every up node (as chord's update upcall starts
 * one), and the time for what it sets off. */
void round_all(struct tnet *t)
{
    for (int i = 0; i < t->nn; i++)
        if (t->n[i].up)
            bs_on_update(t->n[i].b, 0);
    net_run(t, 2000);
}

struct bs_stats stats_of(struct tnet *t, int i)
{
    struct bs_stats st;
    bs_get_stats(t->n[i].b, &st);
    return st;
}

uint64_t stat_sum(struct tnet *t, size_t off)
{
    uint64_t s = 0;
    for (int i = 0; i < t->nn; i++) {
        if (!t->n[i].up)
            continue;
        struct bs_stats st = stats_of(t, i);
        s += *(uint64_t *)((char *)&st + off);
    }
    return s;
}

/* ---- records ---- */

uint64_t wall_s(struct tnet *t)
{
    return (T_WALL0 + (t->now - T0) + t->wall_off) / 1000;
}

void owner_key(struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    memset(seed, 0x5a, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, k), 0);
}

/* A content block of distinct bytes and its owner's lease. */
void make_block(struct tnet *t, unsigned n, uint64_t lease_s, uint8_t *bytes, size_t *len,
                struct id *key, struct lease *l)
{
    char data[64];
    struct sig_key k;
    int dl = snprintf(data, sizeof(data), "block number %u of the sync tests", n);
    assert_int_equal(block_encode(BLOCK_KIND_DATA, data, (size_t)dl, false, bytes, len, key), 0);
    owner_key(&k);
    assert_int_equal(lease_sign(&k, key, (wall_s(t) - 10) * 1000, wall_s(t) + lease_s, l), 0);
}

/* Puts a record on node i's disk and into its index, as if there at start. */
void plant(struct tnet *t, int i, uint8_t type, const struct id *key, const uint8_t *bytes,
           size_t len, const struct lease *l)
{
    struct tnode *nd = &t->n[i];
    ms_put(&nd->st, type, key, bytes, len);
    if (l)
        ms_lease(&nd->st, key, l, 1);
    bs_load(nd->b, type, key, (uint32_t)len, l, l ? 1 : 0);
}

unsigned holders(struct tnet *t, uint8_t type, const struct id *key)
{
    unsigned h = 0;
    for (int i = 0; i < t->nn; i++)
        if (t->n[i].up && bs_holds(t->n[i].b, type, key))
            h++;
    return h;
}

/* The nodes that should hold key: the first k up nodes from its
 * successor on, in ring order (each node has one vnode). */
size_t replica_set(struct tnet *t, const struct id *key, int *out)
{
    struct vn all[T_NODES * T_VNODES];
    size_t n = all_vnodes(t, all), k = 0;
    /* Sort by clockwise distance from key to the vnode's id. */
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++) {
            struct id da, db;
            id_distance(&da, key, all[a].id);
            id_distance(&db, key, all[b].id);
            if (id_cmp(&db, &da) < 0) {
                struct vn x = all[a];
                all[a] = all[b];
                all[b] = x;
            }
        }
    for (size_t i = 0; i < n && k < t->k; i++)
        if (!in_set(out, k, all[i].node))
            out[k++] = all[i].node;
    return k;
}

bool in_set(const int *set, size_t n, int i)
{
    for (size_t j = 0; j < n; j++)
        if (set[j] == i)
            return true;
    return false;
}

/* Is key held by exactly its replica set? */
bool placed_exactly(struct tnet *t, uint8_t type, const struct id *key)
{
    int set[T_NODES];
    size_t n = replica_set(t, key, set);
    for (int i = 0; i < t->nn; i++)
        if (t->n[i].up && bs_holds(t->n[i].b, type, key) != in_set(set, n, i))
            return false;
    return true;
}
