/* node_store.c — the node's blocks: the disk store of store.h under
 * DATA/store, the block server/client of bs.h driven on the loop, and the
 * block requests of the control socket (docs/protocol.md, "Control
 * protocol"). The store's writer thread finishes durable writes, and its
 * reader threads the reads of blocks served, in the background; they wake
 * the loop through the mailbox, and the loop hands the completions to the
 * block server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/api.h"
#include "net/control.h"
#include "net/node_internal.h"

#define MOD "store"

/* --- persist: bs.h's durability over store.h ---------------------------- */

static int persist_write(void *ctx, enum store_type type, const struct id *key, const void *bytes,
                         size_t len, uint64_t token)
{
    return store_write(ctx, type, key, bytes, len, token);
}

static int persist_remove(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    return store_remove(ctx, type, key, token);
}

static int persist_lease_append(void *ctx, const struct id *key, const struct lease *l, size_t n,
                                uint64_t token)
{
    return store_lease_append(ctx, key, l, n, token);
}

static int persist_read(void *ctx, enum store_type type, const struct id *key, uint8_t **bytes,
                        size_t *len)
{
    return store_read(ctx, type, key, bytes, len);
}

static int persist_read_start(void *ctx, enum store_type type, const struct id *key, uint64_t token)
{
    return store_read_async(ctx, type, key, token);
}

/* On the loop thread: hand every finished write and read to the block
 * server (which takes a read's bytes). The store wakes us only when its
 * queue turns non-empty: poll until it is empty. */
static void on_store_mail(void *arg)
{
    struct net_node *n = arg;
    struct store_completion c[256];
    size_t got;

    if (!n->store || !n->bs)
        return;
    while ((got = store_poll(n->store, c, sizeof(c) / sizeof(c[0]))) > 0)
        for (size_t i = 0; i < got; i++)
            if (c[i].read)
                bs_persist_read_done(n->bs, c[i].token, c[i].status, c[i].bytes, c[i].len);
            else
                bs_persist_done(n->bs, c[i].token, c[i].status);
    if (store_failed(n->store))
        LOG_E(&n->lg, MOD, "the store under %s failed (a disk error): it accepts no more writes",
              n->store_path);
    node_kick(n);
}

/* From the writer or a reader thread. */
static void store_wake(void *ctx)
{
    struct net_node *n = ctx;
    /* A failed post means the node is shutting down. */
    (void)net_mailbox_post(n->store_mail, on_store_mail, NULL, n);
}

static void on_scanned(void *ctx, enum store_type type, const struct id *key, uint32_t size,
                       const struct lease *leases, size_t nleases)
{
    bs_load(ctx, type, key, size, leases, nleases);
}

int node_store_start(struct net_node *n)
{
    const struct net_node_config *cfg = n->cfg;
    struct store_config scfg = {.wake = store_wake, .wake_ctx = n};
    struct bs_config bcfg;
    struct bs_persist persist = {.write = persist_write,
                                 .remove = persist_remove,
                                 .lease_append = persist_lease_append,
                                 .read = persist_read,
                                 .read_start = persist_read_start};
    struct bs_stats st;
    int rc;

    if (asprintf(&n->store_path, "%s/store", cfg->datadir) < 0) {
        n->store_path = NULL;
        return -ENOMEM;
    }
    rc = net_mailbox_new(n->loop, &n->store_mail);
    if (rc)
        return rc;
    scfg.dir = n->store_path;
    rc = store_open(&scfg, &n->lg, &n->store);
    if (rc) {
        LOG_E(&n->lg, MOD, "cannot open the store under %s: %s", n->store_path, strerror(-rc));
        return rc;
    }
    persist.ctx = n->store;
    bs_config_default(&bcfg);
    bcfg.capacity = cfg->capacity;
    if (cfg->replicas)
        bcfg.replicas = cfg->replicas;
    bcfg.owner_cap = cfg->owner_cap;
    rc = bs_new(&bcfg, &n->chord_env, n->chord, &persist, &n->lg, &n->bs);
    if (rc) {
        LOG_E(&n->lg, MOD, "bad block store configuration: %s", strerror(-rc));
        return rc;
    }
    store_scan(n->store, on_scanned, n->bs);
    bs_get_stats(n->bs, &st);
    LOG_I(&n->lg, MOD,
          "store: %llu records held, %.1f of %.1f MiB donated in use (%u copies of each block)",
          (unsigned long long)(st.blocks + st.roots + st.kvs), (double)st.used / 1048576.0,
          (double)cfg->capacity / 1048576.0, bcfg.replicas);
    if (st.used > cfg->capacity)
        LOG_W(&n->lg, MOD,
              "the store holds more than --capacity: it refuses new blocks until maintenance "
              "hands some over");
    if (cfg->api_on) {
        rc = net_api_new(n, &cfg->api, &n->api);
        if (rc) {
            char a[ADDR_STR_MAX];
            addr_format(&cfg->api, a, sizeof(a));
            LOG_E(&n->lg, MOD, "cannot serve the DHT API on %s: %s", a, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

void node_store_stop(struct net_node *n)
{
    net_api_free(n->api);
    n->api = NULL;
    /* Client operations end (-ECANCELED) before the store goes; writes
     * already queued are finished by store_close. */
    bs_free(n->bs);
    n->bs = NULL;
    store_close(n->store);
    n->store = NULL;
    net_mailbox_free(n->store_mail);
    n->store_mail = NULL;
    free(n->store_path);
    n->store_path = NULL;
}

/* --- block requests on the control socket --------------------------------- */

struct ctl_op {
    struct ctl_conn *cc;
    uint64_t reqid;
    uint16_t type;
};

static void ctl_op_done(void *ctx, const struct bs_result *r)
{
    struct ctl_op *op = ctx;
    struct ctl_bs_reply rep = {.status = r->status,
                               .key = r->key,
                               .copies = (uint8_t)(r->copies > 255 ? 255 : r->copies),
                               .version = r->version,
                               .bytes = r->bytes,
                               .len = (uint32_t)r->len};
    size_t cap = 128 + CTL_REASON_MAX + r->len, len;
    uint8_t *buf;

    if (r->reason)
        snprintf(rep.reason, sizeof(rep.reason), "%s", r->reason);
    else if (r->status)
        snprintf(rep.reason, sizeof(rep.reason), "%s", bs_strerror(r->status));
    buf = malloc(cap);
    if (buf && (len = ctl_bs_reply_encode(&rep, buf, cap)) > 0)
        ctl_reply(op->cc, op->type, op->reqid, buf, len);
    else
        ctl_error(op->cc, op->reqid, -ENOMEM, "out of memory");
    free(buf);
    ctl_conn_put(op->cc);
    free(op);
}

static const char *start_error(int rc)
{
    switch (rc) {
    case -EBUSY: return "too many block operations in flight; wait for some";
    case -EAGAIN: return "the node has not joined the ring yet";
    default: return bs_strerror(rc);
    }
}

bool node_store_ctl(struct ctl_conn *cc, const struct frame_header *h, const uint8_t *p, size_t len)
{
    struct net_node *n = cc->n;
    struct ctl_op *op;
    const uint8_t *bytes;
    size_t blen;
    struct lease l;
    struct id key;
    uint64_t expect;
    uint8_t type;
    int rc;

    if (h->type < CTL_MSG_BLOCK_PUT || h->type > CTL_MSG_KV_PUT)
        return false;
    op = malloc(sizeof(*op));
    if (!op) {
        ctl_error(cc, h->request_id, -ENOMEM, "out of memory");
        return true;
    }
    *op = (struct ctl_op){.cc = cc, .reqid = h->request_id, .type = h->type};
    switch (h->type) {
    case CTL_MSG_BLOCK_PUT:
        rc = ctl_block_put_decode(p, len, &key, &l, &bytes, &blen);
        /* Routed by the key the sender gave, not hashed again here: the
         * primary verifies block and lease against it before anything is
         * stored, and a mismatch comes back as BAD_BLOCK. */
        if (rc == 0)
            rc = bs_put_checked(n->bs, &key, bytes, blen, &l, ctl_op_done, op);
        break;
    case CTL_MSG_BLOCK_GET:
        rc = ctl_block_get_decode(p, len, &type, &key);
        if (rc == 0)
            rc = bs_get(n->bs, (enum store_type)type, &key, ctl_op_done, op);
        break;
    case CTL_MSG_ROOT_PUT:
        rc = ctl_root_put_decode(p, len, &expect, &bytes, &blen);
        if (rc == 0)
            rc = bs_root_put(n->bs, bytes, blen, expect, ctl_op_done, op);
        break;
    case CTL_MSG_LEASE:
        rc = ctl_lease_decode(p, len, &key, &l);
        if (rc == 0)
            rc = bs_lease_update(n->bs, &key, &l, ctl_op_done, op);
        break;
    default: /* CTL_MSG_KV_PUT */ rc = bs_kv_put(n->bs, p, len, ctl_op_done, op); break;
    }
    if (rc) {
        free(op);
        ctl_error(cc, h->request_id, rc,
                  rc == -EBADMSG ? "the request does not decode" : start_error(rc));
        return true;
    }
    cc->refs++;
    node_kick(n);
    return true;
}
