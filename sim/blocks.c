/* blocks.c — the block store of each simulated node and its disk.
 *
 * With cfg.blocks every node runs a struct bs beside its chord (sim.c
 * calls in here at start, crash, frame, tick and persist events). Its
 * struct bs_persist is a simulated disk that belongs to the node, not to
 * the bs, so it outlives crashes: an operation becomes visible, and its
 * completion is delivered, persist_delay_ms later as a SIM_EV_PERSIST
 * event, unless the node crashed meanwhile (then it never happened, as an
 * unsynced write on a real disk). A restart hands every surviving record
 * to the fresh bs through bs_load.
 *
 * The disk keeps, per (type, key), the record's bytes and, for content
 * blocks, the lease records appended for the key, reduced per owner to
 * the lease_newer() winner (what the real store's log replay keeps).
 *
 * Reads come in both forms of struct bs_persist: read answers at once;
 * read_start reads the disk read_delay_ms later, as a SIM_EV_PERSIST event
 * of its own (the real store's reader threads), and a crash meanwhile
 * loses it (its bs is gone).
 */
#include "sim/internal.h"

#include "common/frame.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_rec {
    struct id key;
    uint8_t type;   /* enum store_type */
    bool bad;       /* damaged: a read fails and drops it, a restart skips it */
    uint8_t *bytes; /* NULL: no record (only lease records) */
    size_t len;
    struct lease *leases; /* content blocks: one per owner */
    size_t nleases, cap_leases;
};

struct sim_disk {
    struct sim_rec **v; /* sorted by (type, key) */
    size_t n, cap;
    uint64_t bytes; /* record and lease bytes held */
};

enum { PW_WRITE = 1, PW_REMOVE = 2, PW_LEASES = 3, PW_READ = 4 };

/* One operation in flight to the disk: the data of a SIM_EV_PERSIST. */
struct sim_pw {
    uint64_t token;
    uint32_t incarnation;
    uint8_t op, type;
    struct id key;
    size_t len; /* bytes, or nleases * sizeof(struct lease) */
    uint8_t data[];
};

static int rec_cmp(uint8_t type, const struct id *key, const struct sim_rec *r)
{
    if (type != r->type)
        return type < r->type ? -1 : 1;
    return id_cmp(key, &r->key);
}

/* Position of (type, key), or where it would go; *found says which. */
static size_t disk_pos(const struct sim_disk *d, uint8_t type, const struct id *key, bool *found)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = rec_cmp(type, key, d->v[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

static struct sim_rec *disk_find(const struct sim_disk *d, uint8_t type, const struct id *key)
{
    bool found;
    size_t i = disk_pos(d, type, key, &found);
    return found ? d->v[i] : NULL;
}

static struct sim_rec *disk_get(struct sim_disk *d, uint8_t type, const struct id *key)
{
    bool found;
    size_t i = disk_pos(d, type, key, &found);
    if (found)
        return d->v[i];
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        struct sim_rec **nv = realloc(d->v, cap * sizeof(*nv));
        if (!nv)
            return NULL;
        d->v = nv;
        d->cap = cap;
    }
    struct sim_rec *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->type = type;
    r->key = *key;
    memmove(d->v + i + 1, d->v + i, (d->n - i) * sizeof(*d->v));
    d->v[i] = r;
    d->n++;
    return r;
}

static void rec_drop_bytes(struct sim_disk *d, struct sim_rec *r)
{
    d->bytes -= r->len;
    free(r->bytes);
    r->bytes = NULL;
    r->len = 0;
    r->bad = false;
}

/* Forgets r once nothing is left of it. */
static void disk_tidy(struct sim_disk *d, struct sim_rec *r)
{
    if (r->bytes || r->nleases)
        return;
    bool found;
    size_t i = disk_pos(d, r->type, &r->key, &found);
    if (!found)
        return;
    memmove(d->v + i, d->v + i + 1, (d->n - i - 1) * sizeof(*d->v));
    d->n--;
    free(r->leases);
    free(r);
}

static int disk_write(struct sim_disk *d, uint8_t type, const struct id *key, const uint8_t *b,
                      size_t len)
{
    struct sim_rec *r = disk_get(d, type, key);
    uint8_t *copy = malloc(len ? len : 1);
    if (!r || !copy) {
        free(copy);
        return -ENOMEM;
    }
    memcpy(copy, b, len);
    if (r->bytes)
        rec_drop_bytes(d, r);
    r->bytes = copy;
    r->len = len;
    d->bytes += len;
    return 0;
}

static void disk_remove(struct sim_disk *d, uint8_t type, const struct id *key)
{
    struct sim_rec *r = disk_find(d, type, key);
    if (!r)
        return;
    if (r->bytes)
        rec_drop_bytes(d, r);
    d->bytes -= r->nleases * LEASE_LEN;
    r->nleases = 0;
    disk_tidy(d, r);
}

static int disk_leases(struct sim_disk *d, const struct id *key, const struct lease *l, size_t n)
{
    struct sim_rec *r = disk_get(d, STORE_CONTENT, key);
    if (!r)
        return -ENOMEM;
    for (size_t k = 0; k < n; k++) {
        size_t j = 0;
        while (j < r->nleases && memcmp(&r->leases[j].owner, &l[k].owner, sizeof(l[k].owner)))
            j++;
        if (j < r->nleases) {
            if (lease_newer(&l[k], &r->leases[j]))
                r->leases[j] = l[k];
            continue;
        }
        if (r->nleases == r->cap_leases) {
            size_t cap = r->cap_leases ? 2 * r->cap_leases : 2;
            struct lease *nl = realloc(r->leases, cap * sizeof(*nl));
            if (!nl) {
                disk_tidy(d, r);
                return -ENOMEM;
            }
            r->leases = nl;
            r->cap_leases = cap;
        }
        r->leases[r->nleases++] = l[k];
        d->bytes += LEASE_LEN;
    }
    return 0;
}

static void disk_free(struct sim_disk *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i]->bytes);
        free(d->v[i]->leases);
        free(d->v[i]);
    }
    free(d->v);
    free(d);
}

/* ---- the struct bs_persist of a node ---- */

static int persist_queue(struct sim_node *n, uint8_t op, uint8_t type, const struct id *key,
                         const void *data, size_t len, uint64_t token)
{
    uint32_t delay = op == PW_READ ? n->s->cfg.read_delay_ms : n->s->cfg.persist_delay_ms;
    struct sim *s = n->s;
    struct sim_pw *pw = malloc(sizeof(*pw) + len);
    if (!pw)
        return -ENOMEM;
    pw->token = token;
    pw->incarnation = n->incarnation;
    pw->op = op;
    pw->type = type;
    pw->key = *key;
    pw->len = len;
    if (len)
        memcpy(pw->data, data, len);
    struct sim_event ev = {
        .time = s->now + delay,
        .node = n->index,
        .kind = SIM_EV_PERSIST,
        .len = (uint32_t)(sizeof(*pw) + len),
        .data = (uint8_t *)pw,
    };
    if (sim_event_push(s, ev) != 0) {
        free(pw);
        return -ENOMEM;
    }
    return 0;
}

static int persist_write(void *ctx, enum store_type type, const struct id *key, const void *bytes,
                         size_t len, uint64_t token)
{
    return persist_queue(ctx, PW_WRITE, (uint8_t)type, key, bytes, len, token);
}

static int persist_remove(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    return persist_queue(ctx, PW_REMOVE, (uint8_t)type, key, NULL, 0, token);
}

static int persist_lease_append(void *ctx, const struct id *key, const struct lease *l, size_t n,
                                uint64_t token)
{
    return persist_queue(ctx, PW_LEASES, STORE_CONTENT, key, l, n * sizeof(*l), token);
}

static int persist_read(void *ctx, enum store_type type, const struct id *key, uint8_t **bytes,
                        size_t *len)
{
    struct sim_node *n = ctx;
    struct sim_rec *r = disk_find(n->disk, (uint8_t)type, key);
    if (!r || !r->bytes)
        return -ENOENT;
    if (r->bad) {
        /* The real store moves it to quarantine/: it is gone. */
        n->s->bad_reads++;
        rec_drop_bytes(n->disk, r);
        disk_tidy(n->disk, r);
        return -EBADMSG;
    }
    uint8_t *copy = malloc(r->len ? r->len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, r->bytes, r->len);
    *bytes = copy;
    *len = r->len;
    return 0;
}

static int persist_read_start(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    return persist_queue(ctx, PW_READ, (uint8_t)type, key, NULL, 0, token);
}

void sim_blocks_persist_event(struct sim *s, const struct sim_event *ev)
{
    struct sim_node *n = s->nodes[ev->node];
    const struct sim_pw *pw = (const struct sim_pw *)ev->data;
    int rc = 0;

    if (!n->alive || !n->bs || pw->incarnation != n->incarnation) {
        if (pw->op != PW_READ)
            s->persist_lost++; /* cut short by a crash: it never reached the disk */
        return;
    }
    if (pw->op == PW_READ) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        rc = persist_read(n, (enum store_type)pw->type, &pw->key, &bytes, &len);
        bs_persist_read_done(n->bs, pw->token, rc, rc == 0 ? bytes : NULL, len);
        sim_after_event(s, ev->node);
        return;
    }
    switch (pw->op) {
    case PW_WRITE: rc = disk_write(n->disk, pw->type, &pw->key, pw->data, pw->len); break;
    case PW_REMOVE: disk_remove(n->disk, pw->type, &pw->key); break;
    case PW_LEASES: {
        size_t nl = pw->len / sizeof(struct lease);
        struct lease *l = malloc(pw->len ? pw->len : 1); /* aligned */
        if (!l) {
            rc = -ENOMEM;
            break;
        }
        memcpy(l, pw->data, pw->len);
        rc = disk_leases(n->disk, &pw->key, l, nl);
        free(l);
        break;
    }
    default: rc = -EIO; break;
    }
    s->persist_done++;
    bs_persist_done(n->bs, pw->token, rc);
    sim_after_event(s, ev->node);
}

/* ---- node lifecycle ---- */

int sim_blocks_node_start(struct sim *s, unsigned node)
{
    struct sim_node *n = s->nodes[node];
    struct bs_config cfg;

    if (!n->disk && !(n->disk = calloc(1, sizeof(*n->disk))))
        return -ENOMEM;
    n->incarnation++;
    bs_config_default(&cfg);
    cfg.replicas = s->cfg.replicas;
    cfg.capacity = s->cfg.capacity;
    cfg.sync_period_ms = s->cfg.sync_period_ms;
    if (s->cfg.bs_rpc_timeout_ms)
        cfg.rpc_timeout_ms = s->cfg.bs_rpc_timeout_ms;
    struct bs_persist p = {
        .write = persist_write,
        .remove = persist_remove,
        .lease_append = persist_lease_append,
        .read = persist_read,
        .read_start = persist_read_start,
        .ctx = n,
    };
    int rc = bs_new(&cfg, &n->env, n->c, &p, s->cfg.log ? &n->lg : NULL, &n->bs);
    if (rc)
        return rc;
    /* What the real store's open does: damaged files are quarantined, the
     * rest reported with their leases. */
    struct sim_disk *d = n->disk;
    for (size_t i = 0; i < d->n;) {
        struct sim_rec *r = d->v[i];
        if (r->bytes && r->bad) {
            s->bad_reads++;
            rec_drop_bytes(d, r);
            size_t before = d->n;
            disk_tidy(d, r);
            if (d->n < before)
                continue;
        }
        /* A content key with lease records but no block is a tombstone
         * (size 0): its leases refuse replayed older grants. */
        if (r->bytes || (r->type == STORE_CONTENT && r->nleases > 0))
            bs_load(n->bs, (enum store_type)r->type, &r->key, (uint32_t)r->len,
                    r->type == STORE_CONTENT ? r->leases : NULL,
                    r->type == STORE_CONTENT ? r->nleases : 0);
        i++;
    }
    return 0;
}

void sim_blocks_node_stop(struct sim *s, unsigned node)
{
    struct sim_node *n = s->nodes[node];
    struct bs *b = n->bs;
    /* Callbacks of the cancelled operations must not find it. */
    n->bs = NULL;
    bs_free(b);
}

void sim_blocks_node_free(struct sim_node *n)
{
    disk_free(n->disk);
    n->disk = NULL;
}

void sim_blocks_trace(struct sim *s, const char *what, unsigned from, unsigned to,
                      const void *frame, size_t len)
{
    struct frame_header h;
    if (frame_header_decode(frame, len, &h) != 0 || h.type < BS_MSG_FIRST || h.type > BS_MSG_LAST)
        return;
    /* A GET names its key at payload offset 34 (docs/protocol.md). */
    char key[24] = "";
    const uint8_t *p = (const uint8_t *)frame + FRAME_HEADER_SIZE;
    if (h.type == BS_MSG_GET && !(h.flags & FRAME_F_REPLY) && len >= FRAME_HEADER_SIZE + 34 + 6)
        snprintf(key, sizeof(key), " key %02x%02x%02x%02x%02x%02x", p[34], p[35], p[36], p[37],
                 p[38], p[39]);
    fprintf(stderr, "t=%" PRIu64 ".%03u bs %s %u -> %u type %u%s req %" PRIu64 " len %u%s\n",
            s->now / 1000, (unsigned)(s->now % 1000), what, from, to, h.type,
            (h.flags & FRAME_F_REPLY) ? " reply" : "", h.request_id, h.length, key);
}

bool sim_blocks_input(struct sim *s, unsigned node, const struct sim_event *ev)
{
    struct sim_node *n = s->nodes[node];
    struct frame_header h;

    if (frame_header_decode(ev->data, ev->len, &h) != 0 || h.type < BS_MSG_FIRST ||
        h.type > BS_MSG_LAST)
        return false;
    if (s->bs_trace)
        sim_blocks_trace(s, "recv", ev->from, node, ev->data, ev->len);
    if (bs_input(n->bs, &s->nodes[ev->from]->addr, ev->data, ev->len) != 0)
        s->bs_malformed++;
    return true;
}

void sim_blocks_on_update(void *ctx, unsigned vnode)
{
    struct sim_node *n = ctx;
    if (n->bs)
        bs_on_update(n->bs, vnode);
}

size_t sim_blocks_bytes(const struct sim *s)
{
    size_t b = 0;
    for (unsigned i = 0; i < s->nnodes; i++) {
        const struct sim_node *n = s->nodes[i];
        if (n->bs)
            b += bs_memory_bytes(n->bs);
        if (n->disk)
            b += sizeof(*n->disk) + n->disk->cap * sizeof(void *) +
                 n->disk->n * sizeof(struct sim_rec) + (size_t)n->disk->bytes;
    }
    return b;
}

/* ---- the scenario's view ---- */

struct bs *sim_node_bs(struct sim *s, unsigned node)
{
    return node < s->nnodes && s->nodes[node]->alive ? s->nodes[node]->bs : NULL;
}

void sim_op_init(struct sim_op *op, struct sim *s)
{
    free(op->bytes);
    memset(op, 0, sizeof(*op));
    op->s = s;
    op->start_ms = sim_now(s);
}

void sim_op_release(struct sim_op *op)
{
    if (!op)
        return;
    free(op->bytes);
    op->bytes = NULL;
    op->len = 0;
}

void sim_op_done(void *ctx, const struct bs_result *r)
{
    struct sim_op *op = ctx;
    op->done = true;
    op->status = r->status;
    op->copies = r->copies;
    op->version = r->version;
    op->end_ms = sim_now(op->s);
    free(op->bytes);
    op->bytes = NULL;
    op->len = 0;
    if (r->bytes && r->len && (op->bytes = malloc(r->len)) != NULL) {
        memcpy(op->bytes, r->bytes, r->len);
        op->len = r->len;
    }
}

struct ops_wait {
    struct sim_op *ops;
    size_t n, next; /* ops[0..next) are done */
};

static bool ops_done(void *ctx)
{
    struct ops_wait *w = ctx;
    while (w->next < w->n && w->ops[w->next].done)
        w->next++;
    return w->next == w->n;
}

int64_t sim_run_until_done(struct sim *s, struct sim_op *ops, size_t n, uint64_t max_ms)
{
    struct ops_wait w = {.ops = ops, .n = n};
    return sim_run_until(s, ops_done, &w, max_ms);
}

unsigned sim_block_holders(struct sim *s, enum store_type type, const struct id *key,
                           unsigned *nodes_out)
{
    unsigned k = 0;
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct sim_node *n = s->nodes[i];
        if (!n->alive || !n->bs || !bs_holds(n->bs, type, key))
            continue;
        if (nodes_out)
            nodes_out[k] = i;
        k++;
    }
    return k;
}

unsigned sim_replica_set(struct sim *s, const struct id *key, unsigned k, unsigned *nodes_out)
{
    return sim_check_replica_set(s, key, k, nodes_out);
}

bool sim_disk_holds(const struct sim *s, unsigned node, enum store_type type, const struct id *key)
{
    if (node >= s->nnodes || !s->nodes[node]->disk)
        return false;
    const struct sim_rec *r = disk_find(s->nodes[node]->disk, (uint8_t)type, key);
    return r && r->bytes && !r->bad;
}

int sim_corrupt_record(struct sim *s, unsigned node, enum store_type type, const struct id *key,
                       size_t offset)
{
    if (node >= s->nnodes)
        return -EINVAL;
    struct sim_rec *r =
        s->nodes[node]->disk ? disk_find(s->nodes[node]->disk, (uint8_t)type, key) : NULL;
    if (!r || !r->bytes || r->len == 0)
        return -ENOENT;
    r->bytes[offset % r->len] ^= 0x5a;
    r->bad = true;
    return 0;
}

void sim_blocks_stats(struct sim *s, struct sim_blocks_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < s->nnodes; i++) {
        struct sim_node *n = s->nodes[i];
        if (n->disk)
            out->disk_records += n->disk->n;
        if (!n->alive || !n->bs)
            continue;
        struct bs_stats st;
        bs_get_stats(n->bs, &st);
        uint64_t *sum = (uint64_t *)&out->bs;
        const uint64_t *add = (const uint64_t *)&st;
        for (size_t k = 0; k < sizeof(st) / sizeof(uint64_t); k++)
            sum[k] += add[k];
    }
    out->malformed = s->bs_malformed;
    out->persist_done = s->persist_done;
    out->persist_lost = s->persist_lost;
    out->bad_reads = s->bad_reads;
}
