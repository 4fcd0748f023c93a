/* bs.c — the block store's lifecycle, frame dispatch, timers, deferred
 * calls, start-up loading and introspection. Requests, replies and
 * persist tokens are in rpc.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"
#include "common/hash.h"

#define MOD "bs"

/* ---- small helpers ---- */

void bs_list_init(struct bs_link *head)
{
    head->prev = head->next = head;
}

void bs_list_add(struct bs_link *head, struct bs_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

void bs_list_del(struct bs_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

bool bs_list_empty(const struct bs_link *head)
{
    return head->next == head;
}

uint64_t bs_now(const struct bs *b)
{
    return b->env.now_ms(b->env.ctx);
}

uint64_t bs_wall_ms(const struct bs *b)
{
    return b->env.wall_ms(b->env.ctx);
}

uint64_t bs_now_s(const struct bs *b)
{
    return bs_wall_ms(b) / 1000;
}

bool bs_is_self(const struct bs *b, const struct addr *a)
{
    return addr_eq(&b->core->self, a);
}

/* An entry keeps at most BS_LEASE_OWNERS_MAX records (index.c), which is
 * within BS_MSG_LEASES_MAX (a static assertion there): they always travel
 * whole, so no truncation can leave out a live lease or a reclaim. The
 * bound below only guards the message codec. */
void bs_leases_of(const struct bs_entry *e, struct bs_msg *m)
{
    m->leases = e->leases;
    m->lease_raw = NULL;
    m->nleases = e->nleases > BS_MSG_LEASES_MAX ? BS_MSG_LEASES_MAX : e->nleases;
}

void bs_config_default(struct bs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->replicas = BS_REPLICAS_DEFAULT;
    cfg->capacity = 1ull << 30;
    cfg->owner_cap = 0;
    cfg->rpc_timeout_ms = BS_RPC_TIMEOUT_MS;
    cfg->rpc_tries = BS_RPC_TRIES;
    cfg->sync_period_ms = BS_SYNC_PERIOD_MS;
}

const char *bs_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case BS_ERR_MALFORMED: return "malformed message";
    case BS_ERR_FULL: return "no space for the block";
    case BS_ERR_QUOTA: return "over the owner's quota";
    case BS_ERR_BAD_BLOCK: return "block does not verify";
    case BS_ERR_CONFLICT: return "root compare-and-swap conflict";
    case BS_ERR_STALE: return "version not above the one held";
    case BS_ERR_INDETERMINATE: return "root stored on a minority: read to know";
    case BS_ERR_WRONG_NODE: return "not responsible for the key";
    case BS_ERR_NO_LEASE: return "no valid, live lease";
    case BS_ERR_NOT_FOUND: return "not found";
    case BS_ERR_LEAVING: return "node is leaving";
    case BS_ERR_STORE: return "disk store failed";
    case -ETIMEDOUT: return "timed out";
    case -EHOSTUNREACH: return "no node listens there";
    case -ECANCELED: return "cancelled";
    case -ENOMEM: return "out of memory";
    case -EBUSY: return "too many operations in flight";
    case -EINVAL: return "invalid argument";
    default: return err < -4095 ? "unknown block store error" : "system error";
    }
}

/* ---- lifecycle ---- */

int bs_new(const struct bs_config *cfg, const struct env *env, struct chord *c,
           const struct bs_persist *persist, const struct logger *lg, struct bs **out)
{
    struct bs *b;
    int rc;

    if (!cfg || !env || !c || !persist || !env->now_ms || !env->send || !env->random ||
        !env->wall_ms || cfg->replicas < 1 || cfg->replicas > BS_REPLICAS_MAX ||
        cfg->rpc_timeout_ms == 0 || cfg->rpc_tries == 0 || cfg->rpc_tries > 100 || !persist->read ||
        !persist->write || !persist->remove || !persist->lease_append)
        return -EINVAL;
    if (chord_vnode_count(c) == 0)
        return -EINVAL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->core = calloc(1, sizeof(*b->core));
    if (!b->core) {
        free(b);
        return -ENOMEM;
    }
    b->cfg = *cfg;
    b->env = *env;
    b->chord = c;
    b->persist = *persist;
    b->lg = lg;
    b->stats.capacity = cfg->capacity;
    b->core->self = chord_vnode_self(c, 0)->addr;
    /* A secret from which request ids are made (rpc.c next_id): a peer
     * cannot guess ids it has not seen, and replies meant for an earlier
     * incarnation at the same address do not match this one's requests. */
    b->core->reqid_secret = env_random_u64(&b->env);
    b->core->next_token = 1;
    b->core->pend_earliest = UINT64_MAX;
    rc = bs_index_init(&b->ix);
    if (rc < 0)
        goto err_free;
    rc = bs_server_init(b);
    if (rc < 0)
        goto err_index;
    rc = bs_client_init(b);
    if (rc < 0)
        goto err_server;
    rc = bs_sync_new(b, &b->sync);
    if (rc < 0)
        goto err_client;
    *out = b;
    return 0;

err_client:
    bs_client_release(b);
err_server:
    bs_server_release(b);
err_index:
    bs_index_release(&b->ix);
err_free:
    free(b->core);
    free(b);
    return rc;
}

static void run_all_deferred(struct bs *b)
{
    struct bs_core *k = b->core;
    /* Deferred calls may defer more; each round runs what was there. */
    for (unsigned round = 0; k->ndef && round < 64; round++) {
        size_t n = k->ndef;
        for (size_t i = 0; i < n; i++)
            k->def[i].fn(b, k->def[i].ctx);
        memmove(k->def, k->def + n, (k->ndef - n) * sizeof(*k->def));
        k->ndef -= n;
    }
}

void bs_free(struct bs *b)
{
    struct bs_core *k;

    if (!b)
        return;
    k = b->core;
    if (k) {
        /* Nothing new starts while freeing (requests and persist calls
         * refuse with -ECANCELED). Deferred calls run first, as they
         * would at the next tick; then client operations end with their
         * callbacks; then every request and persist operation still open
         * tells its owner, which frees what it holds. */
        k->freeing = true;
        run_all_deferred(b);
        bs_client_release(b);
        bs_rpc_fail_all(b, -ECANCELED);
        bs_persist_cancel_all(b);
        run_all_deferred(b);
        bs_rpc_fail_all(b, -ECANCELED);
    }
    bs_sync_free(b->sync);
    if (k) {
        bs_server_release(b);
        for (size_t i = 0; i < k->nloop; i++)
            free(k->loop[i].bytes);
        for (size_t i = 0; i < k->nreplay; i++)
            free(k->replay[i].frame);
        free(k->loop);
        free(k->pend);
        free(k->flow);
        free(k->tok);
        free(k->def);
        free(k->cache);
        free(k);
    }
    bs_index_release(&b->ix);
    free(b);
}

void bs_leave(struct bs *b)
{
    b->leaving = true;
}

/* ---- deferred calls ---- */

int bs_defer_reserve(struct bs *b)
{
    struct bs_core *k = b->core;
    if (k->ndef == k->cap_def) {
        size_t cap = k->cap_def ? k->cap_def * 2 : 16;
        struct bs_deferred *d = realloc(k->def, cap * sizeof(*d));
        if (!d)
            return -ENOMEM;
        k->def = d;
        k->cap_def = cap;
    }
    return 0;
}

int bs_defer(struct bs *b, void (*fn)(struct bs *b, void *ctx), void *ctx)
{
    struct bs_core *k = b->core;
    if (bs_defer_reserve(b) < 0)
        return -ENOMEM;
    k->def[k->ndef].fn = fn;
    k->def[k->ndef].ctx = ctx;
    k->ndef++;
    return 0;
}

static void run_deferred(struct bs *b)
{
    struct bs_core *k = b->core;
    /* Only what was deferred before this tick: what these calls defer runs
     * at the next one. */
    size_t n = k->ndef;
    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        k->def[i].fn(b, k->def[i].ctx);
    memmove(k->def, k->def + n, (k->ndef - n) * sizeof(*k->def));
    k->ndef -= n;
}

/* ---- input ---- */

static bool request_type(uint16_t t)
{
    switch (t) {
    case BS_MSG_GET:
    case BS_MSG_PUT:
    case BS_MSG_STORE:
    case BS_MSG_LOCATE:
    case BS_MSG_LEASE:
    case BS_MSG_LEASE_MERGE:
    case BS_MSG_ROOT_READ: return true;
    default: return false;
    }
}

int bs_input(struct bs *b, const struct addr *from, const void *frame, size_t len)
{
    struct frame_header h;
    struct bs_msg m;
    const uint8_t *payload;

    if (frame_header_decode(frame, len, &h) != 0 || len != FRAME_HEADER_SIZE + (size_t)h.length ||
        h.type < BS_MSG_FIRST || h.type > BS_MSG_LAST || (h.flags & ~FRAME_F_REPLY))
        return BS_ERR_MALFORMED;
    payload = (const uint8_t *)frame + FRAME_HEADER_SIZE;
    bool ours = h.type >= BS_MSG_GET && h.type <= BS_MSG_ROOT_READ_OK;
    bool sync = h.type >= BS_MSG_SYNC_DIGEST && h.type <= 1039;
    if (!ours && !sync)
        return BS_ERR_MALFORMED;
    if (ours && bs_msg_decode(h.type, payload, h.length, &m) != 0)
        return BS_ERR_MALFORMED;

    if (h.flags & FRAME_F_REPLY) {
        if (ours && request_type(h.type))
            return BS_ERR_MALFORMED;
        bs_rpc_reply_in(b, from, &h, payload, ours ? &m : NULL);
        return 0;
    }
    if (sync)
        return bs_sync_input(b->sync, from, &h, payload, h.length);
    if (!request_type(h.type))
        return BS_ERR_MALFORMED;
    bs_server_request(b, from, h.request_id, &m);
    return 0;
}

/* ---- time ---- */
void bs_tick(struct bs *b)
{
    uint64_t now = bs_now(b);
    bs_loop_tick(b);
    run_deferred(b);
    bs_rpc_tick(b, now);
    bs_server_tick(b, now);
    bs_client_tick(b, now);
    bs_sync_tick(b->sync, now);
}

uint64_t bs_next_deadline(const struct bs *b)
{
    const struct bs_core *k = b->core;
    uint64_t d = k->pend_earliest;
    if (k->ndef || k->nloop)
        return bs_now(b);
    uint64_t s = bs_server_next_deadline(b);
    if (s < d)
        d = s;
    s = bs_sync_next_deadline(b->sync);
    if (s < d)
        d = s;
    s = bs_client_next_deadline(b);
    if (s < d)
        d = s;
    return d;
}

/* ---- chord upcalls ---- */

void bs_on_update(struct bs *b, unsigned vnode)
{
    bs_sync_on_update(b->sync, vnode);
}

/* ---- start-up ---- */

void bs_load(struct bs *b, enum store_type type, const struct id *key, uint32_t size,
             const struct lease *leases, size_t nleases)
{
    struct bs_entry *e;
    uint64_t version = 0, expiry = 0;

    if (type != STORE_CONTENT && type != STORE_ROOT && type != STORE_KV)
        return;
    if (type != STORE_CONTENT) {
        /* The version (root) or stamp (kv) decides what a holder accepts
         * next: read it now, once. */
        uint8_t *bytes;
        size_t len;
        if (b->persist.read(b->persist.ctx, type, key, &bytes, &len) != 0)
            return;
        if (type == STORE_ROOT) {
            struct root_info ri;
            if (root_parse(bytes, len, &ri) == 0) {
                /* expiry_s of a root: the fingerprint of its bytes, as
                 * server.c's root_fp (first 8 bytes of SHA-256, never 0). */
                struct id h;
                hash_sha256(&h, bytes, len);
                for (int i = 0; i < 8; i++)
                    expiry = expiry << 8 | h.b[i];
                expiry = expiry ? expiry : 1;
                version = ri.version;
            }
        } else {
            struct kv_info ki;
            if (kv_parse(bytes, len, &ki) == 0) {
                version = ki.stamp_ms;
                expiry = ki.expiry_s;
            }
        }
        free(bytes);
        if (!version)
            return;
        size = (uint32_t)len;
    }
    e = bs_index_find(&b->ix, type, key);
    if (!e && bs_index_add(&b->ix, type, key, &e) < 0) {
        LOG_E(b->lg, MOD, "out of memory loading the index");
        return;
    }
    e->version = version;
    if (type != STORE_CONTENT)
        e->expiry_s = expiry;
    /* A content key of size 0 is lease records without a block: a
     * tombstone (see bs_drop). */
    bs_index_set_size(&b->ix, e, size, size || type != STORE_CONTENT ? BS_E_PRESENT : 0);
    if (nleases && type == STORE_CONTENT &&
        bs_index_merge_leases(&b->ix, e, leases, nleases, bs_now_s(b), NULL) < 0)
        LOG_E(b->lg, MOD, "out of memory loading leases");
}

/* ---- introspection ---- */

void bs_get_stats(const struct bs *b, struct bs_stats *out)
{
    *out = b->stats;
    out->blocks = b->ix.counts[STORE_CONTENT];
    out->roots = b->ix.counts[STORE_ROOT];
    out->kvs = b->ix.counts[STORE_KV];
    out->used = b->ix.used;
    out->capacity = b->cfg.capacity;
}

bool bs_holds(const struct bs *b, enum store_type type, const struct id *key)
{
    const struct bs_entry *e = bs_index_find(&b->ix, type, key);
    return e && (e->flags & BS_E_PRESENT);
}

uint64_t bs_root_version(const struct bs *b, const struct id *key)
{
    const struct bs_entry *e = bs_index_find(&b->ix, STORE_ROOT, key);
    return e && (e->flags & BS_E_PRESENT) ? e->version : 0;
}

void bs_each(const struct bs *b,
             void (*each)(void *ctx, enum store_type type, const struct id *key, uint32_t size),
             void *ctx)
{
    for (size_t i = 0; i < b->ix.n; i++) {
        const struct bs_entry *e = b->ix.v[i];
        if (e->flags & BS_E_PRESENT)
            each(ctx, (enum store_type)e->type, &e->key, e->size);
    }
}

size_t bs_memory_bytes(const struct bs *b)
{
    const struct bs_core *k = b->core;
    size_t n = sizeof(*b) + sizeof(*k);
    n += b->ix.cap * sizeof(b->ix.v[0]) + b->ix.cap_owners * sizeof(b->ix.owners[0]);
    for (size_t i = 0; i < b->ix.n; i++)
        n += sizeof(struct bs_entry) + b->ix.v[i]->nleases * sizeof(struct lease);
    n += k->cap_pend * sizeof(*k->pend) + k->cap_tok * sizeof(*k->tok) +
         k->cap_def * sizeof(*k->def) + k->cap_loop * sizeof(*k->loop) +
         k->cap_cache * sizeof(*k->cache) + k->cap_flow * sizeof(*k->flow);
    for (size_t i = 0; i < k->npend; i++)
        n += k->pend[i].frame_len;
    for (size_t i = 0; i < k->nloop; i++)
        n += k->loop[i].len;
    for (size_t i = 0; i < k->nreplay; i++)
        n += k->replay[i].len;
    return n;
}
