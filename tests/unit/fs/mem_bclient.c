/* mem_bclient.c — the in-memory block client of mem_bclient.h.
 *
 * The store is a hash table of records under one mutex. A client queues
 * operations in order of their due time (now, or now plus a random delay)
 * and its worker runs each when due: it applies it to the store under the
 * store's lock, copies the result, drops every lock and calls back.
 */
#include "tests/unit/fs/mem_bclient.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/addr.h"

#define TAB_SIZE 4096u

struct rec {
    struct rec *next;
    enum store_type type;
    struct id key;
    uint8_t *bytes;
    size_t len;
    uint64_t version;     /* roots */
    struct lease *leases; /* content: one per owner */
    size_t nleases;
};

struct mem_store {
    pthread_mutex_t mu;
    struct rec *tab[TAB_SIZE];  /* protected by mu */
    struct mem_store_stats st;  /* protected by mu */
    int fail;                   /* protected by mu */
    unsigned copies;            /* protected by mu */
    uint32_t delay_ms;          /* protected by mu */
    uint64_t rng;               /* protected by mu */
    bool hold;                  /* protected by mu */
    unsigned queued;            /* protected by mu: over every client */
};

enum op_kind { OP_PUT, OP_GET, OP_ROOT_PUT };

struct op {
    struct op *next;
    uint8_t kind;
    enum store_type type;
    struct id key;
    uint8_t *bytes;
    size_t len;
    struct lease lease;
    uint64_t expect;
    uint64_t due_ms;
    bclient_done_fn done;
    void *arg;
};

struct mem_bclient {
    struct mem_store *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the queue changed, or room, or drained */
    struct op *queue;    /* protected by mu: sorted by due_ms, FIFO among equals */
    unsigned inflight;   /* protected by mu: called and not yet called back */
    bool stopping;       /* protected by mu */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void abs_time(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000u);
    ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* ---- the store ---- */

int mem_store_new(struct mem_store **out)
{
    struct mem_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    s->copies = MEM_STORE_COPIES;
    s->rng = 0x9e3779b97f4a7c15ull;
    *out = s;
    return 0;
}

void mem_store_free(struct mem_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < TAB_SIZE; i++)
        for (struct rec *r = s->tab[i], *nx; r; r = nx) {
            nx = r->next;
            free(r->bytes);
            free(r->leases);
            free(r);
        }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void mem_store_set_fail(struct mem_store *s, int status)
{
    pthread_mutex_lock(&s->mu);
    s->fail = status;
    pthread_mutex_unlock(&s->mu);
}

void mem_store_set_copies(struct mem_store *s, unsigned copies)
{
    pthread_mutex_lock(&s->mu);
    s->copies = copies;
    pthread_mutex_unlock(&s->mu);
}

void mem_store_set_delay(struct mem_store *s, uint32_t max_ms, uint64_t seed)
{
    pthread_mutex_lock(&s->mu);
    s->delay_ms = max_ms;
    s->rng = seed ? seed : 1;
    pthread_mutex_unlock(&s->mu);
}

void mem_store_set_hold(struct mem_store *s, bool hold)
{
    pthread_mutex_lock(&s->mu);
    s->hold = hold;
    pthread_mutex_unlock(&s->mu);
}

unsigned mem_store_queued(struct mem_store *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->queued;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void mem_store_get_stats(struct mem_store *s, struct mem_store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

static struct rec **slot(struct mem_store *s, const struct id *key)
{
    uint32_t h;
    memcpy(&h, key->b, sizeof(h));
    return &s->tab[h % TAB_SIZE];
}

/* s->mu held. */
static struct rec *find(struct mem_store *s, enum store_type type, const struct id *key)
{
    for (struct rec *r = *slot(s, key); r; r = r->next)
        if (r->type == type && id_eq(&r->key, key))
            return r;
    return NULL;
}

static struct rec *add(struct mem_store *s, enum store_type type, const struct id *key)
{
    struct rec *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->type = type;
    r->key = *key;
    struct rec **pp = slot(s, key);
    r->next = *pp;
    *pp = r;
    return r;
}

uint64_t mem_store_root_version(struct mem_store *s, const struct id *key)
{
    pthread_mutex_lock(&s->mu);
    struct rec *r = find(s, STORE_ROOT, key);
    uint64_t v = r ? r->version : 0;
    pthread_mutex_unlock(&s->mu);
    return v;
}

bool mem_store_has(struct mem_store *s, enum store_type type, const struct id *key)
{
    pthread_mutex_lock(&s->mu);
    bool has = find(s, type, key) != NULL;
    pthread_mutex_unlock(&s->mu);
    return has;
}

static uint64_t rng_next(struct mem_store *s)
{
    uint64_t x = s->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* What the worker hands the callback; bytes are a private copy. */
struct outcome {
    struct bs_result r;
    uint8_t *bytes;
};

static int keep_lease(struct rec *r, const struct lease *l)
{
    for (size_t i = 0; i < r->nleases; i++)
        if (memcmp(&r->leases[i].owner, &l->owner, sizeof(l->owner)) == 0) {
            if (lease_newer(l, &r->leases[i]))
                r->leases[i] = *l;
            return 0;
        }
    struct lease *nl = realloc(r->leases, (r->nleases + 1) * sizeof(*nl));
    if (!nl)
        return -ENOMEM;
    nl[r->nleases++] = *l;
    r->leases = nl;
    return 0;
}

/* A holder's checks and store of a content block (s->mu held). */
static void do_put(struct mem_store *s, const struct op *op, struct outcome *o)
{
    struct id key;
    s->st.puts++;
    if (block_key(op->bytes, op->len, &key) != 0) {
        o->r.status = BS_ERR_BAD_BLOCK;
        o->r.reason = "block does not verify";
        s->st.puts_refused++;
        return;
    }
    o->r.key = key;
    if (!lease_verify(&op->lease, &key) || op->lease.expiry_s <= (uint64_t)time(NULL)) {
        o->r.status = BS_ERR_NO_LEASE;
        o->r.reason = "no valid, live lease";
        s->st.puts_refused++;
        return;
    }
    struct rec *r = find(s, STORE_CONTENT, &key);
    if (!r) {
        uint8_t *b = malloc(op->len);
        r = b ? add(s, STORE_CONTENT, &key) : NULL;
        if (!r) {
            free(b);
            o->r.status = -ENOMEM;
            return;
        }
        memcpy(b, op->bytes, op->len);
        r->bytes = b;
        r->len = op->len;
        s->st.blocks++;
        s->st.bytes += op->len;
    }
    if (keep_lease(r, &op->lease) < 0) {
        o->r.status = -ENOMEM;
        return;
    }
    o->r.copies = s->copies;
    s->st.puts_ok++;
}

static void give_bytes(struct outcome *o, const struct rec *r)
{
    o->bytes = malloc(r->len);
    if (!o->bytes) {
        o->r.status = -ENOMEM;
        return;
    }
    memcpy(o->bytes, r->bytes, r->len);
    o->r.bytes = o->bytes;
    o->r.len = r->len;
}

/* s->mu held. The client verifies what it got, as bs_get does. */
static void do_get(struct mem_store *s, const struct op *op, struct outcome *o)
{
    s->st.gets++;
    o->r.key = op->key;
    struct rec *r = find(s, op->type, &op->key);
    if (!r) {
        o->r.status = BS_ERR_NOT_FOUND;
        s->st.gets_missed++;
        return;
    }
    struct root_info ri;
    if (op->type == STORE_CONTENT && block_verify(&op->key, r->bytes, r->len) != 0)
        o->r.status = BS_ERR_BAD_BLOCK;
    else if (op->type == STORE_ROOT && root_verify(&op->key, r->bytes, r->len, &ri) != 0)
        o->r.status = BS_ERR_BAD_BLOCK;
    if (o->r.status)
        return;
    give_bytes(o, r);
    if (o->r.status)
        return;
    if (op->type == STORE_ROOT)
        o->r.version = r->version;
    s->st.gets_ok++;
}

/* Compare-and-swap as bs.h describes it (s->mu held). */
static void do_root_put(struct mem_store *s, const struct op *op, struct outcome *o)
{
    struct root_info ri;
    struct id key;
    s->st.root_puts++;
    if (root_parse(op->bytes, op->len, &ri) != 0) {
        o->r.status = BS_ERR_BAD_BLOCK;
        return;
    }
    root_key(&ri.pub, &key);
    o->r.key = key;
    if (root_verify(&key, op->bytes, op->len, NULL) != 0) {
        o->r.status = BS_ERR_BAD_BLOCK;
        return;
    }
    struct rec *cur = find(s, STORE_ROOT, &key);
    uint64_t curv = cur ? cur->version : 0;
    if (op->expect != BS_ROOT_ANY && curv != op->expect) {
        o->r.status = BS_ERR_CONFLICT;
        o->r.reason = "root compare-and-swap lost";
        o->r.version = curv;
        if (cur)
            give_bytes(o, cur);
        if (o->r.status == BS_ERR_CONFLICT)
            s->st.root_conflicts++;
        return;
    }
    if (cur && ri.version <= curv) {
        if (ri.version == curv && cur->len == op->len &&
            memcmp(cur->bytes, op->bytes, op->len) == 0) {
            o->r.version = curv; /* already stored */
            o->r.copies = s->copies;
            s->st.root_ok++;
            return;
        }
        o->r.status = BS_ERR_STALE;
        o->r.version = curv;
        give_bytes(o, cur);
        if (o->r.status == BS_ERR_STALE)
            s->st.root_stale++;
        return;
    }
    uint8_t *b = malloc(op->len);
    if (!b || (!cur && !(cur = add(s, STORE_ROOT, &key)))) {
        free(b);
        o->r.status = -ENOMEM;
        return;
    }
    if (!cur->bytes)
        s->st.roots++;
    memcpy(b, op->bytes, op->len);
    free(cur->bytes);
    cur->bytes = b;
    cur->len = op->len;
    cur->version = ri.version;
    o->r.version = ri.version;
    o->r.copies = s->copies;
    s->st.root_ok++;
}

static void run(struct mem_store *s, const struct op *op, int cancel, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    if (op->kind != OP_GET)
        o->r.key = op->key;
    if (cancel) {
        o->r.status = cancel;
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->fail) {
        o->r.status = s->fail;
        o->r.reason = "fault injected: the ring is gone";
        s->st.failed++;
    } else if (op->kind == OP_PUT) {
        do_put(s, op, o);
    } else if (op->kind == OP_GET) {
        do_get(s, op, o);
    } else {
        do_root_put(s, op, o);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- the client ---- */

static void *worker(void *arg)
{
    struct mem_bclient *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        struct op *op = c->queue;
        if (!op) {
            if (c->stopping)
                break;
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        pthread_mutex_lock(&c->s->mu);
        bool hold = c->s->hold;
        pthread_mutex_unlock(&c->s->mu);
        uint64_t now = now_ms();
        if (!c->stopping && hold) { /* nobody signals the release: look again soon */
            struct timespec ts;
            abs_time(&ts, 2);
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
            continue;
        }
        if (!c->stopping && op->due_ms > now) {
            struct timespec ts;
            abs_time(&ts, op->due_ms - now);
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
            continue;
        }
        c->queue = op->next;
        bool cancel = c->stopping;
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_lock(&c->s->mu);
        c->s->queued--;
        pthread_mutex_unlock(&c->s->mu);
        struct outcome o;
        run(c->s, op, cancel ? -ECANCELED : 0, &o);
        op->done(op->arg, &o.r); /* no lock held: the callback may take fs's */
        free(o.bytes);
        free(op->bytes);
        free(op);
        pthread_mutex_lock(&c->mu);
        c->inflight--;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Queues op (owned from now on) after waiting for room. 0 or an error
 * (op freed, nothing started). */
static int submit(struct mem_bclient *c, struct op *op)
{
    if (pthread_equal(pthread_self(), c->thread)) {
        free(op->bytes);
        free(op);
        return -EDEADLK;
    }
    pthread_mutex_lock(&c->s->mu);
    uint32_t delay = c->s->delay_ms;
    uint64_t r = delay ? rng_next(c->s) : 0;
    pthread_mutex_unlock(&c->s->mu);
    op->due_ms = now_ms() + (delay ? r % ((uint64_t)delay + 1) : 0);
    pthread_mutex_lock(&c->mu);
    while (c->inflight >= MEM_BCLIENT_INFLIGHT && !c->stopping)
        pthread_cond_wait(&c->cv, &c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        free(op->bytes);
        free(op);
        return -ESHUTDOWN;
    }
    struct op **pp = &c->queue;
    while (*pp && (*pp)->due_ms <= op->due_ms)
        pp = &(*pp)->next;
    op->next = *pp;
    *pp = op;
    c->inflight++;
    pthread_mutex_lock(&c->s->mu); /* lock order: c->mu, then s->mu */
    c->s->queued++;
    if (c->inflight > c->s->st.max_inflight)
        c->s->st.max_inflight = c->inflight;
    pthread_mutex_unlock(&c->s->mu);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static struct op *op_new(uint8_t kind, const uint8_t *bytes, size_t len, bclient_done_fn done,
                         void *arg)
{
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->kind = kind;
    op->done = done;
    op->arg = arg;
    if (len) {
        op->bytes = malloc(len);
        if (!op->bytes) {
            free(op);
            return NULL;
        }
        memcpy(op->bytes, bytes, len);
        op->len = len;
    }
    return op;
}

static int mc_put(void *impl, const uint8_t *bytes, size_t len, const struct lease *lease,
                  bclient_done_fn done, void *arg)
{
    if (!done)
        return -EINVAL;
    if (!bytes || len == 0 || len > BLOCK_MAX_STORED)
        return BS_ERR_BAD_BLOCK;
    if (!lease)
        return BS_ERR_NO_LEASE;
    struct op *op = op_new(OP_PUT, bytes, len, done, arg);
    if (!op)
        return -ENOMEM;
    op->type = STORE_CONTENT;
    op->lease = *lease;
    return submit(impl, op);
}

static int mc_get(void *impl, enum store_type type, const struct id *key, bclient_done_fn done,
                  void *arg)
{
    if (!done || !key || (type != STORE_CONTENT && type != STORE_ROOT && type != STORE_KV))
        return -EINVAL;
    struct op *op = op_new(OP_GET, NULL, 0, done, arg);
    if (!op)
        return -ENOMEM;
    op->type = type;
    op->key = *key;
    return submit(impl, op);
}

static int mc_root_put(void *impl, const uint8_t *bytes, size_t len, uint64_t expect_version,
                       bclient_done_fn done, void *arg)
{
    struct root_info ri;
    if (!done)
        return -EINVAL;
    if (!bytes || len == 0 || len > ROOT_MAX_LEN || root_parse(bytes, len, &ri) != 0)
        return BS_ERR_BAD_BLOCK;
    if (expect_version != BS_ROOT_ANY && ri.version <= expect_version)
        return -EINVAL;
    struct op *op = op_new(OP_ROOT_PUT, bytes, len, done, arg);
    if (!op)
        return -ENOMEM;
    op->type = STORE_ROOT;
    op->expect = expect_version;
    return submit(impl, op);
}

static int mc_holders(void *impl, const struct id *key, struct addr *out, unsigned max)
{
    struct mem_bclient *c = impl;
    if (!key || (max && !out))
        return -EINVAL;
    pthread_mutex_lock(&c->s->mu);
    int fail = c->s->fail;
    unsigned n = c->s->copies;
    pthread_mutex_unlock(&c->s->mu);
    if (fail)
        return fail;
    if (n > max)
        n = max;
    for (unsigned i = 0; i < n; i++)
        addr_v4(&out[i], 10, 0, 0, (uint8_t)(i + 1), (uint16_t)(4000 + i));
    return (int)n;
}

static int mc_space(void *impl, struct bclient_space *out)
{
    struct mem_bclient *c = impl;
    if (!out)
        return -EINVAL;
    pthread_mutex_lock(&c->s->mu);
    int fail = c->s->fail;
    unsigned k = c->s->copies;
    uint64_t used = c->s->st.bytes * (k ? k : 1);
    pthread_mutex_unlock(&c->s->mu);
    if (fail)
        return fail;
    out->nodes = 3;
    out->replicas = k;
    out->total = 3ull << 30;
    out->free = used < out->total ? out->total - used : 0;
    return 0;
}

static const struct bclient_ops mc_ops = {
    .put = mc_put,
    .get = mc_get,
    .root_put = mc_root_put,
    .holders = mc_holders,
    .space = mc_space,
};

int mem_bclient_new(struct mem_store *s, struct mem_bclient **out)
{
    struct mem_bclient *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->s = s;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, worker, c) != 0) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return -EAGAIN;
    }
    *out = c;
    return 0;
}

void mem_bclient_free(struct mem_bclient *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

struct bclient mem_bclient_iface(struct mem_bclient *c)
{
    return (struct bclient){ .ops = &mc_ops, .impl = c };
}

int mem_bclient_drain(struct mem_bclient *c, uint32_t timeout_ms)
{
    struct timespec ts;
    abs_time(&ts, timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    while (c->inflight && rc == 0)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT && c->inflight)
            rc = -ETIMEDOUT;
    pthread_mutex_unlock(&c->mu);
    return rc;
}
