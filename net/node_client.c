/* node_client.c — the block client of blockstore/bclient.h over the node
 * running in this process (net_node_blocks, node.h).
 *
 * A call copies what it was given into an operation and posts it to the
 * loop thread through the client's mailbox; there the operation calls
 * bs_put / bs_get / bs_root_put, and the block client's done callback (on
 * the loop thread) is the caller's. Room: a call first waits, on a
 * condition variable, until fewer than NET_NODE_CLIENT_OPS operations and
 * NET_NODE_CLIENT_BYTES bytes of puts and gets are outstanding (an operation is
 * outstanding from its call until its callback has returned). The block
 * client has a cap of its own, shared with the control socket and the DHT
 * API (BS_INFLIGHT_MAX): an operation it refuses with -EBUSY waits in a
 * queue on the loop, in order, and is tried again when one of ours ends or
 * RETRY_MS later.
 *
 * Bounded time: every operation handed to the block client ends through
 * its timeouts (bs.h: each request BS_RPC_TIMEOUT_MS x tries, a bounded
 * number of fresh starts, chord lookups bounded by CHORD_LOOKUP_MAX_MS),
 * also when every other node is dead; a refused connection ends a request
 * at once (bs_peer_unreachable). What it has not finished when the node
 * stops ends with -ECANCELED (bs_free), and so does everything still in
 * the mailbox or the queue (node_client_stop).
 *
 * The synchronous calls (holders, space) post a request the same way and
 * wait for its answer; the answer comes from the loop, or from
 * node_client_stop when the node stops first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/bs.h"
#include "net/node_internal.h"

#define RETRY_MS 50u /* the block client was at its cap: try again then */
/* holders: a locate the ring could not answer yet (a vnode not yet or no
 * longer responsible, a node that just died) is asked again from a fresh
 * lookup after HOLDERS_DELAY_MS, doubled each time, HOLDERS_TRIES times
 * in all, as the block client restarts its operations. */
#define HOLDERS_TRIES    4
#define HOLDERS_DELAY_MS 250u

enum nc_kind { NC_PUT, NC_GET, NC_ROOT_PUT, NC_LEASE };

struct node_client;

struct nc_op {
    struct nc_op *next; /* in the queue of operations the block client refused as busy */
    struct node_client *c;
    uint8_t kind; /* enum nc_kind */
    enum store_type type;
    struct id key;  /* get */
    uint8_t *bytes; /* put, root put: owned until the block client took its copy */
    size_t len;
    struct lease lease;
    uint64_t expect;
    size_t charge; /* bytes counted against NET_NODE_CLIENT_BYTES */
    bclient_done_fn done;
    void *arg;
};

enum nc_sync_kind { NC_HOLDERS, NC_SPACE };

/* A synchronous call; lives on the caller's stack until done is set. */
struct nc_sync {
    struct nc_sync *prev, *next; /* c->syncs: loop thread only */
    struct node_client *c;
    uint8_t kind; /* enum nc_sync_kind */
    struct id key;
    unsigned tries;          /* holders: locates started */
    struct net_timer *again; /* holders: the next locate, once a try failed */
    struct addr *out;
    unsigned max;
    struct bclient_space *space;
    int rc;    /* protected by c->lock */
    bool done; /* protected by c->lock */
};

struct node_client {
    struct net_node *n;
    pthread_t loop_thread;
    pthread_mutex_t lock;
    pthread_cond_t room;      /* ops or put_bytes went down, or closed */
    pthread_cond_t answer;    /* a synchronous call was answered, or users reached 0 */
    unsigned ops;             /* protected by lock: outstanding operations */
    uint64_t put_bytes;       /* protected by lock: their put bytes */
    unsigned users;           /* protected by lock: threads inside a call */
    bool closed;              /* protected by lock: calls are refused */
    struct net_mailbox *mail; /* protected by lock: NULL once stopped */
    /* loop thread only */
    struct nc_op *busy_head, *busy_tail;
    struct net_timer *retry;
    struct nc_sync *syncs; /* holders under way: in a locate or waiting for the next */
    bool stopped;
};

/* ---- on the loop thread ---- */

static void op_free(struct nc_op *op)
{
    free(op->bytes);
    free(op);
}

static void op_finish(struct nc_op *op, const struct bs_result *r)
{
    struct node_client *c = op->c;

    op->done(op->arg, r);
    pthread_mutex_lock(&c->lock);
    c->ops--;
    c->put_bytes -= op->charge;
    pthread_cond_broadcast(&c->room);
    pthread_mutex_unlock(&c->lock);
    op_free(op);
    /* Room in the block client too: the queue goes first. */
    if (c->busy_head && !c->stopped)
        net_timer_arm(c->retry, 0);
}

static void op_fail(struct nc_op *op, int status)
{
    struct bs_result r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    if (op->kind == NC_GET)
        r.key = op->key;
    op_finish(op, &r);
}

static void op_done(void *arg, const struct bs_result *r)
{
    op_finish(arg, r);
}

/* Hands op to the block client. Returns false if it was busy (op is still
 * ours); true if op started, or failed and ended. */
static bool op_try(struct nc_op *op)
{
    struct net_node *n = op->c->n;
    int rc;

    switch (op->kind) {
    case NC_PUT:
        rc = bs_put_checked(n->bs, &op->key, op->bytes, op->len, &op->lease, op_done, op);
        break;
    case NC_GET: rc = bs_get(n->bs, op->type, &op->key, op_done, op); break;
    case NC_LEASE: rc = bs_lease_update(n->bs, &op->key, &op->lease, op_done, op); break;
    default: rc = bs_root_put(n->bs, op->bytes, op->len, op->expect, op_done, op); break;
    }
    if (rc == -EBUSY)
        return false;
    if (rc) {
        op_fail(op, rc);
        return true;
    }
    /* The block client keeps a copy of its own. */
    free(op->bytes);
    op->bytes = NULL;
    node_kick(n);
    return true;
}

static void busy_push(struct node_client *c, struct nc_op *op, bool front)
{
    if (front) {
        op->next = c->busy_head;
        c->busy_head = op;
        if (!c->busy_tail)
            c->busy_tail = op;
        return;
    }
    op->next = NULL;
    if (c->busy_tail)
        c->busy_tail->next = op;
    else
        c->busy_head = op;
    c->busy_tail = op;
}

static struct nc_op *busy_pop(struct node_client *c)
{
    struct nc_op *op = c->busy_head;

    if (op) {
        c->busy_head = op->next;
        if (!c->busy_head)
            c->busy_tail = NULL;
        op->next = NULL;
    }
    return op;
}

static void on_retry(void *arg)
{
    struct node_client *c = arg;
    struct nc_op *op;

    while ((op = busy_pop(c)) != NULL) {
        if (!op_try(op)) {
            busy_push(c, op, true);
            net_timer_arm(c->retry, RETRY_MS);
            return;
        }
    }
}

static void on_op_mail(void *arg)
{
    struct nc_op *op = arg;
    struct node_client *c = op->c;

    /* Behind the ones already waiting, to keep the order of the calls. */
    if (c->busy_head || !op_try(op)) {
        busy_push(c, op, false);
        net_timer_arm(c->retry, RETRY_MS);
    }
}

static void on_op_drop(void *arg)
{
    op_fail(arg, -ECANCELED);
}

static void holders_locate(void *arg);

static void sync_answer(struct nc_sync *s, int rc)
{
    struct node_client *c = s->c;

    pthread_mutex_lock(&c->lock);
    s->rc = rc;
    s->done = true; /* the caller may return, and s go, from here on */
    pthread_cond_broadcast(&c->answer);
    pthread_mutex_unlock(&c->lock);
}

static void sync_unlink(struct nc_sync *s)
{
    struct node_client *c = s->c;

    if (s->prev)
        s->prev->next = s->next;
    else
        c->syncs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static unsigned node_replicas(const struct net_node *n)
{
    return n->cfg->replicas ? n->cfg->replicas : BS_REPLICAS_DEFAULT;
}

/* Answers a holders call that is on c->syncs. */
static void holders_end(struct nc_sync *s, int rc)
{
    sync_unlink(s);
    net_timer_free(s->again);
    s->again = NULL;
    sync_answer(s, rc);
}

static bool holders_retryable(int status)
{
    return status == -ETIMEDOUT || status == -EHOSTUNREACH || status == BS_ERR_WRONG_NODE ||
           status == BS_ERR_LEAVING;
}

static void on_located(struct bs *b, void *ctx, int status, const struct bs_location *loc)
{
    struct nc_sync *s = ctx;
    struct node_client *c = s->c;
    unsigned k = node_replicas(c->n), got = 0;

    (void)b;
    if (status) {
        if (holders_retryable(status) && s->tries < HOLDERS_TRIES &&
            (s->again || net_timer_new(c->n->loop, holders_locate, s, &s->again) == 0)) {
            net_timer_arm(s->again, (uint64_t)HOLDERS_DELAY_MS << (s->tries - 1));
            return;
        }
        holders_end(s, status);
        return;
    }
    /* The first k of the set are the members; the spares follow. */
    for (unsigned i = 0; i < loc->n && i < k && got < s->max; i++)
        s->out[got++] = loc->set[i].addr;
    holders_end(s, (int)got);
}

/* Starts a locate of s->key. Never from the location cache: an entry
 * there may be up to BS_CACHE_TTL_MS old, and a get that finds it stale
 * starts over from a lookup, so the fresh answer is the one it ends with. */
static void holders_locate(void *arg)
{
    struct nc_sync *s = arg;
    struct net_node *n = s->c->n;
    int rc;

    s->tries++;
    rc = bs_locate_fresh(n->bs, &s->key, on_located, s);
    if (rc < 0) {
        holders_end(s, rc);
        return;
    }
    node_kick(n);
}

/* The top 64 bits of the clockwise distance from a to b, over 2^64. */
static double ring_fraction(const struct id *a, const struct id *b)
{
    uint64_t x = 0, y = 0;

    for (unsigned i = 0; i < 8; i++) {
        x = x << 8 | a->b[i];
        y = y << 8 | b->b[i];
    }
    return (double)(y - x) * 0x1p-64;
}

static bool addr_seen(const struct addr *v, size_t n, const struct addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (addr_eq(&v[i], a))
            return true;
    return false;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* The estimate described at net_node_blocks (node.h). */
static int space_estimate(struct net_node *n, struct bclient_space *out)
{
    const struct addr *self = &n->self;
    unsigned nv = chord_vnode_count(n->chord), sampled = 0;
    struct addr *seen = malloc((size_t)nv * CHORD_SUCC_MAX * sizeof(*seen));
    size_t nseen = 0;
    bool whole = false;
    double vnodes = 0;
    struct bs_stats st;

    if (!seen)
        return -ENOMEM;
    for (unsigned v = 0; v < nv; v++) {
        const struct chord_peer *succ;
        size_t len;

        if (!chord_vnode_joined(n->chord, v))
            continue;
        len = chord_vnode_successors(n->chord, v, &succ);
        for (size_t i = 0; i < len; i++)
            if (!addr_eq(&succ[i].addr, self) && !addr_seen(seen, nseen, &succ[i].addr))
                seen[nseen++] = succ[i].addr;
        if (len < CHORD_SUCC_LEN) {
            whole = true; /* a ring smaller than r + 1: every node is in the list */
            continue;
        }
        double f = ring_fraction(&chord_vnode_self(n->chord, v)->id, &succ[len - 1].id);
        if (f > 0) {
            vnodes += (double)len / f;
            sampled++;
        }
    }
    free(seen);
    double nodes = (double)nseen + 1;
    if (!whole && sampled) {
        double est = vnodes / sampled / (nv ? nv : 1);
        if (est > nodes)
            nodes = est < 1e9 ? est + 0.5 : 1e9;
    }
    bs_get_stats(n->bs, &st);
    out->nodes = (unsigned)nodes;
    out->replicas = node_replicas(n);
    out->total = mul_sat(st.capacity, out->nodes);
    out->free = mul_sat(st.capacity > st.used ? st.capacity - st.used : 0, out->nodes);
    return 0;
}

static void on_sync_mail(void *arg)
{
    struct nc_sync *s = arg;
    struct node_client *c = s->c;
    struct bclient_space sp;
    int rc;

    if (s->kind == NC_SPACE) {
        rc = space_estimate(c->n, &sp);
        if (rc == 0)
            *s->space = sp;
        sync_answer(s, rc);
        return;
    }
    s->prev = NULL;
    s->next = c->syncs;
    if (c->syncs)
        c->syncs->prev = s;
    c->syncs = s;
    holders_locate(s);
}

static void on_sync_drop(void *arg)
{
    sync_answer(arg, -ECANCELED);
}

/* ---- from the caller's thread ---- */

static bool on_loop_thread(const struct node_client *c)
{
    return pthread_equal(pthread_self(), c->loop_thread);
}

/* Waits for room, then posts op. Returns 0 or -ESHUTDOWN, -ENOMEM (op
 * freed). */
static int op_call(struct node_client *c, struct nc_op *op)
{
    int rc;

    pthread_mutex_lock(&c->lock);
    c->users++;
    /* One put larger than the byte bound still goes, alone. */
    while (!c->closed && (c->ops >= NET_NODE_CLIENT_OPS ||
                          (c->ops > 0 && c->put_bytes + op->charge > NET_NODE_CLIENT_BYTES)))
        pthread_cond_wait(&c->room, &c->lock);
    if (c->closed || !c->mail)
        rc = -ESHUTDOWN;
    else
        rc = net_mailbox_post(c->mail, on_op_mail, on_op_drop, op);
    if (rc == 0) {
        c->ops++;
        c->put_bytes += op->charge;
    }
    if (--c->users == 0)
        pthread_cond_broadcast(&c->answer);
    pthread_mutex_unlock(&c->lock);
    if (rc)
        op_free(op);
    return rc;
}

static struct nc_op *op_new(struct node_client *c, uint8_t kind, const uint8_t *bytes, size_t len,
                            bclient_done_fn done, void *arg)
{
    struct nc_op *op = calloc(1, sizeof(*op));

    if (!op)
        return NULL;
    if (len) {
        op->bytes = malloc(len);
        if (!op->bytes) {
            free(op);
            return NULL;
        }
        memcpy(op->bytes, bytes, len);
        op->len = len;
        op->charge = len;
    }
    op->c = c;
    op->kind = kind;
    op->done = done;
    op->arg = arg;
    return op;
}

static int nc_put(void *impl, const uint8_t *bytes, size_t len, const struct lease *lease,
                  bclient_done_fn done, void *arg)
{
    struct node_client *c = impl;
    struct nc_op *op;

    if (!done)
        return -EINVAL;
    if (on_loop_thread(c))
        return -EDEADLK;
    /* The checks bs_put would make on the loop thread, made here on the
     * caller's (hashing 256 KiB and an Ed25519 verify per block). */
    struct id key;
    int rc = bs_put_check(bytes, len, lease, &key);
    if (rc)
        return rc;
    op = op_new(c, NC_PUT, bytes, len, done, arg);
    if (!op)
        return -ENOMEM;
    op->lease = *lease;
    op->key = key;
    return op_call(c, op);
}

static int nc_get(void *impl, enum store_type type, const struct id *key, bclient_done_fn done,
                  void *arg)
{
    struct node_client *c = impl;
    struct nc_op *op;

    if (!done || !key || (type != STORE_CONTENT && type != STORE_ROOT && type != STORE_KV))
        return -EINVAL;
    if (on_loop_thread(c))
        return -EDEADLK;
    op = op_new(c, NC_GET, NULL, 0, done, arg);
    if (!op)
        return -ENOMEM;
    /* the reply may be this large: it counts against the room too */
    op->charge = type == STORE_CONTENT ? BLOCK_MAX_STORED : ROOT_MAX_LEN;
    op->type = type;
    op->key = *key;
    return op_call(c, op);
}

static int nc_root_put(void *impl, const uint8_t *bytes, size_t len, uint64_t expect_version,
                       bclient_done_fn done, void *arg)
{
    struct node_client *c = impl;
    struct nc_op *op;

    if (!done)
        return -EINVAL;
    if (!bytes || len == 0 || len > ROOT_MAX_LEN)
        return BS_ERR_BAD_BLOCK;
    if (on_loop_thread(c))
        return -EDEADLK;
    op = op_new(c, NC_ROOT_PUT, bytes, len, done, arg);
    if (!op)
        return -ENOMEM;
    op->expect = expect_version;
    return op_call(c, op);
}

static int nc_lease(void *impl, const struct id *key, const struct lease *l,
                    bclient_done_fn done, void *arg)
{
    struct node_client *c = impl;
    struct nc_op *op;

    if (!done || !key || !l)
        return -EINVAL;
    if (on_loop_thread(c))
        return -EDEADLK;
    op = op_new(c, NC_LEASE, NULL, 0, done, arg);
    if (!op)
        return -ENOMEM;
    op->key = *key;
    op->lease = *l;
    return op_call(c, op);
}

/* Posts s and waits for its answer. */
static int sync_call(struct node_client *c, struct nc_sync *s)
{
    int rc;

    if (on_loop_thread(c))
        return -EDEADLK;
    s->c = c;
    pthread_mutex_lock(&c->lock);
    if (c->closed || !c->mail)
        rc = -ESHUTDOWN;
    else
        rc = net_mailbox_post(c->mail, on_sync_mail, on_sync_drop, s);
    if (rc == 0) {
        c->users++;
        while (!s->done)
            pthread_cond_wait(&c->answer, &c->lock);
        rc = s->rc;
        if (--c->users == 0)
            pthread_cond_broadcast(&c->answer);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int nc_holders(void *impl, const struct id *key, struct addr *out, unsigned max)
{
    struct nc_sync s = {.kind = NC_HOLDERS, .out = out, .max = max};

    if (!key || (max && !out))
        return -EINVAL;
    s.key = *key;
    return sync_call(impl, &s);
}

static int nc_space(void *impl, struct bclient_space *out)
{
    struct nc_sync s = {.kind = NC_SPACE, .space = out};

    if (!out)
        return -EINVAL;
    return sync_call(impl, &s);
}

static const struct bclient_ops nc_ops = {
    .put = nc_put,
    .get = nc_get,
    .root_put = nc_root_put,
    .lease = nc_lease,
    .holders = nc_holders,
    .space = nc_space,
};

struct bclient net_node_blocks(struct net_node *n)
{
    return (struct bclient){.ops = &nc_ops, .impl = n->client};
}

/* ---- life cycle ---- */

int node_client_start(struct net_node *n)
{
    struct node_client *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    c->n = n;
    c->loop_thread = pthread_self();
    if (pthread_mutex_init(&c->lock, NULL)) {
        free(c);
        return -ENOMEM;
    }
    if (pthread_cond_init(&c->room, NULL)) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -ENOMEM;
    }
    if (pthread_cond_init(&c->answer, NULL)) {
        pthread_cond_destroy(&c->room);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -ENOMEM;
    }
    /* From here on node_client_free undoes it all. */
    n->client = c;
    rc = net_mailbox_new(n->loop, &c->mail);
    if (rc)
        return rc;
    return net_timer_new(n->loop, on_retry, c, &c->retry);
}

void node_client_close(struct net_node *n)
{
    struct node_client *c = n->client;

    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_cond_broadcast(&c->room);
    pthread_mutex_unlock(&c->lock);
}

int node_client_post(struct net_node *n, void (*fn)(void *), void (*drop)(void *), void *arg)
{
    struct node_client *c = n->client;
    int rc = -ESHUTDOWN;

    if (!c)
        return rc;
    pthread_mutex_lock(&c->lock);
    if (c->mail)
        rc = net_mailbox_post(c->mail, fn, drop, arg);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void node_client_stop(struct net_node *n)
{
    struct node_client *c = n->client;
    struct net_mailbox *mail;
    struct nc_op *op;

    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    mail = c->mail;
    c->mail = NULL;
    pthread_cond_broadcast(&c->room);
    pthread_mutex_unlock(&c->lock);
    c->stopped = true;
    /* Mail not run yet: operations end -ECANCELED, calls are answered. */
    net_mailbox_free(mail);
    while ((op = busy_pop(c)) != NULL)
        op_fail(op, -ECANCELED);
    net_timer_free(c->retry);
    c->retry = NULL;
    /* bs_free has dropped their locates without a word. */
    while (c->syncs)
        holders_end(c->syncs, -ECANCELED);
}

void node_client_free(struct net_node *n)
{
    struct node_client *c = n->client;

    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    pthread_cond_broadcast(&c->room);
    while (c->users)
        pthread_cond_wait(&c->answer, &c->lock);
    pthread_mutex_unlock(&c->lock);
    /* node_client_stop freed the mailbox and the timer, with the loop. */
    pthread_cond_destroy(&c->answer);
    pthread_cond_destroy(&c->room);
    pthread_mutex_destroy(&c->lock);
    free(c);
    n->client = NULL;
}
