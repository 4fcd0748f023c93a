/* test_node_client.c — nodes on threads of their own (net_node_start,
 * net_node_stop in net/node.c) and the block client over them
 * (net/node_client.c, blockstore/bclient.h): three nodes in one process on
 * loopback, each with a temporary data directory, the second and third
 * joining the first.
 *
 * The tests run in order on one ring: a block put through one node comes
 * back byte for byte through another; roots take compare-and-swap; holders
 * names the three nodes; space is sane; 8 threads x 200 puts at once all
 * succeed (more than NET_NODE_CLIENT_OPS, so callers block for room); gets
 * still succeed with one node stopped; a put through the last node left
 * ends; and a node stopped with operations pending ends each of them,
 * -ECANCELED, before net_node_stop returns.
 *
 * Every wait is bounded (WAIT_MS), so a client that loses a callback fails
 * the test instead of hanging it; meson's timeout bounds the rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blockstore/bclient.h"
#include "common/sig.h"
#include "harness.h"
#include "net/loop.h"
#include "net/node.h"

#define NNODES   3
#define NBLOCKS  32
#define NTHREADS 8
#define NPUTS    200
#define WAIT_MS  60000u /* longest one batch of operations may take */
#define CAPACITY (256ull << 20)

struct fix {
    char dir[64];
    char datadir[NNODES + 1][96];
    struct net_node *node[NNODES + 1];
    struct addr addr[NNODES + 1];
    struct sig_key owner;
    /* blocks put by test_put_get, read again after a node stopped */
    uint8_t *blocks[NBLOCKS];
    size_t lens[NBLOCKS];
    struct id keys[NBLOCKS];
};

/* ---- completions ---- */

/* Counts the callbacks of a batch of operations, from any thread. */
struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned done, ok, cancelled, mismatched;
    int last_status; /* of the latest failure */
    unsigned copies_min;
    uint64_t version;
    bool on_caller; /* a callback ran on a thread that made a call: must never be */
};

struct get_ctx {
    struct batch *b;
    const uint8_t *expect;
    size_t len;
};

static void batch_init(struct batch *b)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->copies_min = UINT32_MAX;
}

static void batch_release(struct batch *b)
{
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
}

static void batch_note(struct batch *b, const struct bs_result *r, bool mismatch)
{
    pthread_mutex_lock(&b->lock);
    b->done++;
    b->version = r->version;
    if (r->status == 0) {
        b->ok++;
        if (r->copies < b->copies_min)
            b->copies_min = r->copies;
    } else {
        b->last_status = r->status;
        if (r->status == -ECANCELED)
            b->cancelled++;
    }
    if (mismatch)
        b->mismatched++;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void on_done(void *arg, const struct bs_result *r)
{
    batch_note(arg, r, false);
}

/* A call made from inside a done callback (the loop thread) is refused. */
struct nested {
    struct batch b;
    struct bclient bc;
    int rc;
};

static void on_nested(void *arg, const struct bs_result *r)
{
    struct nested *ns = arg;
    struct bclient_space sp;

    ns->rc = ns->bc.ops->get(ns->bc.impl, STORE_CONTENT, &r->key, on_done, &ns->b);
    if (ns->rc == -EDEADLK)
        ns->rc = ns->bc.ops->space(ns->bc.impl, &sp);
    batch_note(&ns->b, r, false);
}

static void on_get(void *arg, const struct bs_result *r)
{
    struct get_ctx *g = arg;
    bool bad = r->status == 0 && (r->len != g->len || memcmp(r->bytes, g->expect, g->len) != 0);
    batch_note(g->b, r, bad);
}

/* Waits until n callbacks came, at most ms; returns whether they did. */
static bool batch_wait(struct batch *b, unsigned n, uint64_t ms)
{
    uint64_t until = net_now_ms() + ms;
    bool met;

    pthread_mutex_lock(&b->lock);
    while (b->done < n && net_now_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->cond, &b->lock, &ts);
    }
    met = b->done >= n;
    pthread_mutex_unlock(&b->lock);
    return met;
}

/* ---- blocks ---- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A DATA block of len bytes that depend on (seed, i), and its lease. */
static uint8_t *make_block(const struct sig_key *owner, uint32_t seed, uint32_t i, size_t len,
                           size_t *out_len, struct id *key, struct lease *l)
{
    uint8_t *raw = malloc(len), *out = malloc(BLOCK_MAX_STORED);

    assert_non_null(raw);
    assert_non_null(out);
    for (size_t j = 0; j < len; j++)
        raw[j] = (uint8_t)((seed * 2654435761u) ^ (i * 40503u) ^ (uint32_t)(j * 31u) ^
                           (uint32_t)(j >> 8));
    memcpy(raw, &seed, sizeof(seed));
    memcpy(raw + sizeof(seed), &i, sizeof(i));
    assert_int_equal(block_encode(BLOCK_KIND_DATA, raw, len, false, out, out_len, key), 0);
    free(raw);
    assert_int_equal(lease_sign(owner, key, wall_ms(), wall_ms() / 1000u + 3600u, l), 0);
    return out;
}

/* ---- nodes ---- */

static void node_config(struct net_node_config *cfg, const char *dir, const struct addr *join)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->datadir = dir;
    nt_addr("127.0.0.1", 0, &cfg->listen);
    if (join) {
        cfg->join[0] = *join;
        cfg->njoin = 1;
    }
    cfg->vnodes = 2;
    cfg->capacity = CAPACITY;
    cfg->replicas = 3;
    cfg->log_level = getenv("NC_LOG") ? LOG_DEBUG : LOG_ERROR;
}

static void start_node(struct fix *f, unsigned i, const struct addr *join)
{
    struct net_node_config cfg;
    char dir[sizeof(f->datadir[i])];

    snprintf(dir, sizeof(dir), "%s/node%u", f->dir, i);
    memcpy(f->datadir[i], dir, sizeof(dir));
    node_config(&cfg, f->datadir[i], join);
    assert_int_equal(net_node_start(&cfg, &f->node[i]), 0);
    f->addr[i] = net_node_addr(f->node[i]);
    assert_int_not_equal(f->addr[i].port, 0);
}

static void stop_node(struct fix *f, unsigned i)
{
    net_node_stop(f->node[i]);
    f->node[i] = NULL;
}

/* Do the nodes agree on the holders of a few keys, NNODES of them each? */
static bool ring_agrees(struct fix *f)
{
    for (unsigned k = 0; k < 16; k++) {
        struct addr first[BCLIENT_MAX_HOLDERS], h[BCLIENT_MAX_HOLDERS];
        struct id key;
        memset(&key, 0, sizeof(key));
        key.b[0] = (uint8_t)(k * 16 + 3);
        for (unsigned i = 0; i < NNODES; i++) {
            struct bclient bc = net_node_blocks(f->node[i]);
            int n = bc.ops->holders(bc.impl, &key, i ? h : first, BCLIENT_MAX_HOLDERS);
            if (n != NNODES || (i && memcmp(h, first, NNODES * sizeof(h[0])) != 0))
                return false;
        }
    }
    return true;
}

/* The joins return as soon as each vnode has a successor; stabilize takes
 * a few rounds more to put the ring in order. Waits (at most 20 s) until
 * the nodes agree on where keys live, twice 300 ms apart. */
static void wait_settled(struct fix *f)
{
    uint64_t t0 = net_now_ms();
    unsigned agreed = 0;

    while (agreed < 2) {
        assert_true(net_now_ms() - t0 < 20000);
        agreed = ring_agrees(f) ? agreed + 1 : 0;
        usleep(300 * 1000);
    }
    print_message("ring of %u nodes settled in %llu ms\n", NNODES,
                  (unsigned long long)(net_now_ms() - t0));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/coopfs-nc-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(sig_keygen(&f->owner), 0);
    start_node(f, 0, NULL);
    start_node(f, 1, &f->addr[0]);
    start_node(f, 2, &f->addr[0]);
    wait_settled(f);
    *state = f;
    return 0;
}

static void thaw(void);

static int teardown(void **state)
{
    struct fix *f = *state;

    thaw();
    for (unsigned i = 0; i <= NNODES; i++)
        if (f->node[i])
            stop_node(f, i);
    for (unsigned i = 0; i < NBLOCKS; i++)
        free(f->blocks[i]);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* holders through node i names every node, once the ring has stabilized
 * (joins return before every successor list is complete). */
static unsigned holders_of(struct fix *f, unsigned i, const struct id *key, struct addr *out)
{
    struct bclient bc = net_node_blocks(f->node[i]);
    uint64_t until = net_now_ms() + 10000;
    int n;

    do {
        n = bc.ops->holders(bc.impl, key, out, BCLIENT_MAX_HOLDERS);
        assert_true(n >= 0);
        if (n == NNODES)
            break;
        usleep(50 * 1000);
    } while (net_now_ms() < until);
    return (unsigned)n;
}

/* ---- tests ---- */

static void test_put_get(void **state)
{
    struct fix *f = *state;
    struct bclient a = net_node_blocks(f->node[0]), b = net_node_blocks(f->node[1]);
    struct get_ctx g[NBLOCKS];
    struct batch puts, gets;
    struct addr h[BCLIENT_MAX_HOLDERS];

    /* Puts go to replica sets of three. */
    assert_int_equal(holders_of(f, 0, &(struct id){{1}}, h), NNODES);
    batch_init(&puts);
    for (unsigned i = 0; i < NBLOCKS; i++) {
        struct lease l;
        uint8_t *bytes = make_block(&f->owner, 1, i, 100 + i * 997, &f->lens[i], &f->keys[i], &l);
        /* A copy the client must not depend on: freed at once. */
        f->blocks[i] = malloc(f->lens[i]);
        memcpy(f->blocks[i], bytes, f->lens[i]);
        assert_int_equal(a.ops->put(a.impl, bytes, f->lens[i], &l, on_done, &puts), 0);
        memset(bytes, 0xa5, f->lens[i]);
        free(bytes);
    }
    assert_true(batch_wait(&puts, NBLOCKS, WAIT_MS));
    assert_int_equal(puts.ok, NBLOCKS);
    assert_int_equal(puts.copies_min, NNODES);

    batch_init(&gets);
    for (unsigned i = 0; i < NBLOCKS; i++) {
        g[i] = (struct get_ctx){.b = &gets, .expect = f->blocks[i], .len = f->lens[i]};
        assert_int_equal(b.ops->get(b.impl, STORE_CONTENT, &f->keys[i], on_get, &g[i]), 0);
    }
    assert_true(batch_wait(&gets, NBLOCKS, WAIT_MS));
    assert_int_equal(gets.ok, NBLOCKS);
    assert_int_equal(gets.mismatched, 0);

    /* A key nobody stored. */
    struct batch miss;
    struct id none;
    memset(&none, 0x5a, sizeof(none));
    batch_init(&miss);
    assert_int_equal(b.ops->get(b.impl, STORE_CONTENT, &none, on_done, &miss), 0);
    assert_true(batch_wait(&miss, 1, WAIT_MS));
    assert_int_equal(miss.last_status, BS_ERR_NOT_FOUND);

    /* From inside a callback: -EDEADLK, for the asynchronous calls and
     * the synchronous ones. */
    struct nested ns = {.bc = b};
    batch_init(&ns.b);
    assert_int_equal(b.ops->get(b.impl, STORE_CONTENT, &f->keys[0], on_nested, &ns), 0);
    assert_true(batch_wait(&ns.b, 1, WAIT_MS));
    assert_int_equal(ns.rc, -EDEADLK);
    batch_release(&ns.b);

    /* Refused at once, nothing started. */
    assert_int_equal(a.ops->put(a.impl, f->blocks[0], 0, NULL, on_done, &miss), BS_ERR_BAD_BLOCK);
    assert_int_equal(a.ops->get(a.impl, (enum store_type)99, &none, on_done, &miss), -EINVAL);
    batch_release(&miss);
    batch_release(&puts);
    batch_release(&gets);
}

static int root_put(struct bclient bc, const struct sig_key *k, uint64_t version, uint64_t expect,
                    uint64_t *found)
{
    uint8_t root[ROOT_MAX_LEN];
    char payload[32];
    size_t len;
    struct batch b;
    int rc;

    snprintf(payload, sizeof(payload), "root version %llu", (unsigned long long)version);
    assert_int_equal(root_encode(k, version, payload, strlen(payload), root, &len), 0);
    batch_init(&b);
    assert_int_equal(bc.ops->root_put(bc.impl, root, len, expect, on_done, &b), 0);
    assert_true(batch_wait(&b, 1, WAIT_MS));
    rc = b.ok ? 0 : b.last_status;
    if (found)
        *found = b.version;
    batch_release(&b);
    return rc;
}

static void test_root_cas(void **state)
{
    struct fix *f = *state;
    struct bclient a = net_node_blocks(f->node[0]), c = net_node_blocks(f->node[2]);
    struct sig_key k;
    uint64_t found = 0;

    assert_int_equal(sig_keygen(&k), 0);
    assert_int_equal(root_put(a, &k, 1, 0, NULL), 0);
    assert_int_equal(root_put(c, &k, 2, 1, NULL), 0);
    /* Version 2 is current: expecting 1 again loses, and says what is. */
    assert_int_equal(root_put(a, &k, 3, 1, &found), BS_ERR_CONFLICT);
    assert_int_equal(found, 2);
    assert_int_equal(root_put(a, &k, 3, 2, NULL), 0);

    /* Read back through another node. */
    struct batch b;
    struct id key;
    root_key(&k.pub, &key);
    batch_init(&b);
    assert_int_equal(c.ops->get(c.impl, STORE_ROOT, &key, on_done, &b), 0);
    assert_true(batch_wait(&b, 1, WAIT_MS));
    assert_int_equal(b.ok, 1);
    assert_int_equal(b.version, 3);
    batch_release(&b);
}

static bool addr_in(const struct addr *v, unsigned n, const struct addr *a)
{
    for (unsigned i = 0; i < n; i++)
        if (addr_eq(&v[i], a))
            return true;
    return false;
}

static void test_holders_space(void **state)
{
    struct fix *f = *state;
    struct addr h[BCLIENT_MAX_HOLDERS];
    struct bclient_space sp;

    for (unsigned i = 0; i < NNODES; i++) {
        struct bclient bc = net_node_blocks(f->node[i]);
        for (unsigned j = 0; j < 4; j++) {
            assert_int_equal(holders_of(f, i, &f->keys[j], h), NNODES);
            for (unsigned m = 0; m < NNODES; m++)
                assert_true(addr_in(h, NNODES, &f->addr[m]));
        }
        /* max bounds what is written */
        assert_int_equal(bc.ops->holders(bc.impl, &f->keys[0], h, 1), 1);
        assert_true(addr_in(f->addr, NNODES, &h[0]));

        assert_int_equal(bc.ops->space(bc.impl, &sp), 0);
        assert_int_equal(sp.nodes, NNODES);
        assert_int_equal(sp.replicas, 3);
        assert_int_equal(sp.total, NNODES * CAPACITY);
        assert_true(sp.free < sp.total);
        assert_true(sp.free > sp.total / 2);
    }
}

struct putter {
    struct fix *f;
    unsigned node, seed;
    struct batch *b;
    int first_error;
};

static void *putter_main(void *arg)
{
    struct putter *p = arg;
    struct bclient bc = net_node_blocks(p->f->node[p->node]);

    for (unsigned i = 0; i < NPUTS; i++) {
        struct lease l;
        struct id key;
        size_t len;
        uint8_t *bytes = make_block(&p->f->owner, p->seed, i, 512 + (i % 7) * 1024, &len, &key, &l);
        int rc = bc.ops->put(bc.impl, bytes, len, &l, on_done, p->b);
        free(bytes);
        if (rc && !p->first_error)
            p->first_error = rc;
    }
    return NULL;
}

static void test_concurrent_puts(void **state)
{
    struct fix *f = *state;
    struct putter p[NTHREADS];
    pthread_t t[NTHREADS];
    struct batch b;
    uint64_t t0 = net_now_ms();

    batch_init(&b);
    for (unsigned i = 0; i < NTHREADS; i++) {
        p[i] = (struct putter){.f = f, .node = i % NNODES, .seed = 100 + i, .b = &b};
        assert_int_equal(pthread_create(&t[i], NULL, putter_main, &p[i]), 0);
    }
    for (unsigned i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(p[i].first_error, 0);
    }
    assert_true(batch_wait(&b, NTHREADS * NPUTS, WAIT_MS));
    print_message("%u puts from %u threads in %llu ms; failures %u (last %d), fewest copies %u\n",
                  NTHREADS * NPUTS, NTHREADS, (unsigned long long)(net_now_ms() - t0),
                  b.done - b.ok, b.last_status, b.copies_min);
    assert_int_equal(b.ok, NTHREADS * NPUTS);
    batch_release(&b);
}

static void get_all(struct fix *f, unsigned node)
{
    struct bclient bc = net_node_blocks(f->node[node]);
    struct get_ctx g[NBLOCKS];
    struct batch b;

    batch_init(&b);
    for (unsigned i = 0; i < NBLOCKS; i++) {
        g[i] = (struct get_ctx){.b = &b, .expect = f->blocks[i], .len = f->lens[i]};
        assert_int_equal(bc.ops->get(bc.impl, STORE_CONTENT, &f->keys[i], on_get, &g[i]), 0);
    }
    assert_true(batch_wait(&b, NBLOCKS, WAIT_MS));
    if (b.ok != NBLOCKS)
        print_message("gets through node %u: %u of %u, last status %d\n", node, b.ok, NBLOCKS,
                      b.last_status);
    assert_int_equal(b.ok, NBLOCKS);
    assert_int_equal(b.mismatched, 0);
    batch_release(&b);
}

static void test_stop_one(void **state)
{
    struct fix *f = *state;
    struct bclient_space sp;
    struct bclient a = net_node_blocks(f->node[0]);

    stop_node(f, 2);
    get_all(f, 0);
    get_all(f, 1);
    /* space follows the ring down, once stabilize noticed */
    uint64_t until = net_now_ms() + 10000;
    do {
        assert_int_equal(a.ops->space(a.impl, &sp), 0);
        if (sp.nodes == NNODES - 1)
            break;
        usleep(50 * 1000);
    } while (net_now_ms() < until);
    assert_int_equal(sp.nodes, NNODES - 1);
}

static void test_last_node(void **state)
{
    struct fix *f = *state;
    struct bclient a = net_node_blocks(f->node[0]);
    struct lease l;
    struct id key;
    size_t len;
    struct batch b;
    uint64_t t0;

    stop_node(f, 1);
    uint8_t *bytes = make_block(&f->owner, 7, 7, 4000, &len, &key, &l);
    batch_init(&b);
    t0 = net_now_ms();
    assert_int_equal(a.ops->put(a.impl, bytes, len, &l, on_done, &b), 0);
    free(bytes);
    /* It must end (WAIT_MS bounds it); what it ends with is reported. */
    assert_true(batch_wait(&b, 1, WAIT_MS));
    print_message("put through the last node: status %d (%s), copies %u, %llu ms\n",
                  b.ok ? 0 : b.last_status, b.ok ? "ok" : bs_strerror(b.last_status),
                  b.ok ? b.copies_min : 0, (unsigned long long)(net_now_ms() - t0));
    batch_release(&b);
    get_all(f, 0);
}

/* Freezes a node's loop: a done callback that waits to be released. */
struct freeze {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered, released;
};

static struct freeze frozen = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, true};

static void on_freeze(void *arg, const struct bs_result *r)
{
    struct freeze *z = arg;
    (void)r;
    pthread_mutex_lock(&z->lock);
    z->entered = true;
    pthread_cond_broadcast(&z->cond);
    while (!z->released)
        pthread_cond_wait(&z->cond, &z->lock);
    pthread_mutex_unlock(&z->lock);
}

/* Blocks node i's loop thread inside a done callback, until thaw(). */
static void freeze(struct fix *f, unsigned i)
{
    struct bclient bc = net_node_blocks(f->node[i]);

    pthread_mutex_lock(&frozen.lock);
    frozen.entered = frozen.released = false;
    pthread_mutex_unlock(&frozen.lock);
    assert_int_equal(bc.ops->get(bc.impl, STORE_CONTENT, &f->keys[0], on_freeze, &frozen), 0);
    pthread_mutex_lock(&frozen.lock);
    while (!frozen.entered)
        pthread_cond_wait(&frozen.cond, &frozen.lock);
    pthread_mutex_unlock(&frozen.lock);
}

/* Also what teardown calls, so a failed test does not hang in stop. */
static void thaw(void)
{
    pthread_mutex_lock(&frozen.lock);
    frozen.released = true;
    pthread_cond_broadcast(&frozen.cond);
    pthread_mutex_unlock(&frozen.lock);
}

/* Gets through a node until a call fails or FLOOD_MAX were made. */
#define FLOOD_MAX (NET_NODE_CLIENT_OPS + 100)

struct flooder {
    struct bclient bc;
    struct batch *b;
    pthread_mutex_t lock;
    unsigned calling, returned; /* protected by lock */
    int rc;                     /* of the call that failed */
};

static void *flooder_main(void *arg)
{
    struct flooder *fl = arg;

    for (unsigned i = 0; i < FLOOD_MAX; i++) {
        struct id key;
        memset(&key, 0, sizeof(key));
        key.b[0] = (uint8_t)i;
        key.b[1] = (uint8_t)(i >> 8);
        key.b[31] = 2;
        pthread_mutex_lock(&fl->lock);
        fl->calling++;
        pthread_mutex_unlock(&fl->lock);
        int rc = fl->bc.ops->get(fl->bc.impl, STORE_CONTENT, &key, on_done, fl->b);
        pthread_mutex_lock(&fl->lock);
        if (rc == 0)
            fl->returned++;
        else
            fl->rc = rc;
        pthread_mutex_unlock(&fl->lock);
        if (rc)
            break;
    }
    return NULL;
}

/* Is the flooder blocked in a call (or done with all of them)? */
static bool flooder_stuck(struct flooder *fl)
{
    unsigned calling, returned;

    for (unsigned i = 0; i < 100; i++) {
        pthread_mutex_lock(&fl->lock);
        calling = fl->calling;
        returned = fl->returned;
        pthread_mutex_unlock(&fl->lock);
        if (returned == FLOOD_MAX)
            return true;
        if (calling != returned + 1)
            return false;
        usleep(2000);
    }
    return calling == returned + 1; /* the same call for 200 ms */
}

static void test_stop_cancels(void **state)
{
    struct fix *f = *state;
    struct batch b;
    unsigned started = 0;

    /* A fourth node joins the last one; then that one stops answering. */
    start_node(f, NNODES, &f->addr[0]);
    freeze(f, 0);

    /* Through the new node, operations that need the frozen one: gets of
     * keys nobody has (a holder that does not answer takes tries x
     * BS_RPC_TIMEOUT_MS, longer than the leave) and puts. */
    struct bclient d = net_node_blocks(f->node[NNODES]);
    batch_init(&b);
    /* (16 gets: each counts as the largest reply against the bytes in
     * flight, NET_NODE_CLIENT_BYTES, so these do not fill it) */
    for (unsigned i = 0; i < 16; i++) {
        struct id key;
        memset(&key, 0, sizeof(key));
        key.b[0] = (uint8_t)(i * 6);
        key.b[31] = 1;
        assert_int_equal(d.ops->get(d.impl, STORE_CONTENT, &key, on_done, &b), 0);
        started++;
    }
    for (unsigned i = 0; i < 20; i++) {
        struct lease l;
        struct id key;
        size_t len;
        uint8_t *bytes = make_block(&f->owner, 9, i, 2000, &len, &key, &l);
        assert_int_equal(d.ops->put(d.impl, bytes, len, &l, on_done, &b), 0);
        free(bytes);
        started++;
    }
    /* Backpressure: with nothing ending, a thread that keeps calling
     * blocks once NET_NODE_CLIENT_OPS operations or NET_NODE_CLIENT_BYTES
     * are outstanding (gets: the bytes, here)... */
    struct flooder fl = {.bc = d, .b = &b, .lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t ft;
    assert_int_equal(pthread_create(&ft, NULL, flooder_main, &fl), 0);
    uint64_t until = net_now_ms() + 10000;
    while (!flooder_stuck(&fl))
        assert_true(net_now_ms() < until);
    pthread_mutex_lock(&fl.lock);
    unsigned flooded = fl.returned;
    pthread_mutex_unlock(&fl.lock);
    assert_true(flooded < FLOOD_MAX);
    assert_true(started + flooded >= NET_NODE_CLIENT_OPS ||
                (started + flooded) * (uint64_t)BLOCK_MAX_STORED + BLOCK_MAX_STORED >
                    NET_NODE_CLIENT_BYTES);

    uint64_t t0 = net_now_ms();
    stop_node(f, NNODES);
    /* ... and the stop frees it with -ESHUTDOWN (nothing started). */
    pthread_join(ft, NULL);
    assert_int_equal(fl.rc, -ESHUTDOWN);
    assert_int_equal(fl.returned, flooded);
    started += flooded;
    /* Every callback ran before net_node_stop returned. */
    pthread_mutex_lock(&b.lock);
    unsigned done = b.done, cancelled = b.cancelled, ok = b.ok;
    pthread_mutex_unlock(&b.lock);
    print_message("stop with %u operations pending (a caller blocked at %u) took %llu ms: "
                  "%u cancelled, %u ok, %u other\n",
                  started, flooded, (unsigned long long)(net_now_ms() - t0), cancelled, ok,
                  done - cancelled - ok);
    assert_int_equal(done, started);
    assert_true(cancelled > 0);
    thaw();
    batch_release(&b);
}

static void test_silent_peer(void **state)
{
    struct fix *f = *state;
    struct lease l;
    struct id key;
    size_t len;
    struct batch b;

    /* A put through a node whose only peer is silent (not refusing: a
     * crash without a reset, a partition) must end too. */
    start_node(f, NNODES, &f->addr[0]);
    freeze(f, 0);
    struct bclient d = net_node_blocks(f->node[NNODES]);
    uint8_t *bytes = make_block(&f->owner, 8, 8, 3000, &len, &key, &l);
    uint64_t t0 = net_now_ms();
    batch_init(&b);
    assert_int_equal(d.ops->put(d.impl, bytes, len, &l, on_done, &b), 0);
    free(bytes);
    assert_true(batch_wait(&b, 1, WAIT_MS));
    print_message("put with the only peer silent: status %d (%s), copies %u, %llu ms\n",
                  b.ok ? 0 : b.last_status, b.ok ? "ok" : bs_strerror(b.last_status),
                  b.ok ? b.copies_min : 0, (unsigned long long)(net_now_ms() - t0));
    batch_release(&b);
    stop_node(f, NNODES);
    thaw();

    /* The last node, still with work of its own when it stops. */
    struct bclient a = net_node_blocks(f->node[0]);
    batch_init(&b);
    for (unsigned i = 0; i < NBLOCKS; i++)
        assert_int_equal(a.ops->get(a.impl, STORE_CONTENT, &f->keys[i], on_done, &b), 0);
    stop_node(f, 0);
    assert_int_equal(b.done, NBLOCKS);
    batch_release(&b);
}

static void test_start_fails(void **state)
{
    struct fix *f = *state;
    struct net_node_config cfg;
    struct net_node *n = NULL;

    /* The data directory of a running node is locked. */
    if (!f->node[0])
        return;
    node_config(&cfg, f->datadir[0], NULL);
    assert_true(net_node_start(&cfg, &n) < 0);
    assert_null(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),         cmocka_unit_test(test_root_cas),
        cmocka_unit_test(test_holders_space),   cmocka_unit_test(test_start_fails),
        cmocka_unit_test(test_concurrent_puts), cmocka_unit_test(test_stop_one),
        cmocka_unit_test(test_last_node),       cmocka_unit_test(test_stop_cancels),
        cmocka_unit_test(test_silent_peer),
    };

    nt_init();
    return cmocka_run_group_tests(tests, setup, teardown);
}
