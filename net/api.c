/* api.c — the DHT API listener and its connections (api.h). */
#include "net/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "blockstore/block.h"
#include "net/internal.h"
#include "net/node_internal.h"

#define MOD "api"

struct api_conn {
    struct net_api *api;
    struct bufferevent *bev; /* NULL once closed */
    unsigned pending;        /* requests in flight (each holds a reference) */
    bool paused;
};

struct net_api {
    struct net_node *n;
    struct net_listener *ln;
    struct api_conn *conns[API_MAX_CONNS];
    unsigned nconns;
    uint64_t requests, bad;
};

struct api_op {
    struct api_conn *c;
    struct id key;
    uint16_t type; /* the request's */
};

static void conn_read(struct bufferevent *bev, void *ctx);

static void conn_free_if_done(struct api_conn *c)
{
    if (!c->bev && c->pending == 0)
        free(c);
}

static void conn_close(struct api_conn *c, const char *why)
{
    struct net_api *api = c->api;

    if (!c->bev)
        return;
    if (why)
        LOG_W(&api->n->lg, MOD, "closing a DHT API connection: %s", why);
    bufferevent_free(c->bev);
    c->bev = NULL;
    for (unsigned i = 0; i < api->nconns; i++) {
        if (api->conns[i] == c) {
            api->conns[i] = api->conns[--api->nconns];
            break;
        }
    }
    conn_free_if_done(c);
}

static void conn_send(struct api_conn *c, uint16_t type, const struct id *key, const void *value,
                      size_t vlen)
{
    uint8_t hdr[4 + ID_BYTES];
    size_t size = sizeof(hdr) + vlen;

    if (!c->bev)
        return;
    hdr[0] = (uint8_t)(size >> 8);
    hdr[1] = (uint8_t)size;
    hdr[2] = (uint8_t)(type >> 8);
    hdr[3] = (uint8_t)type;
    memcpy(hdr + 4, key->b, ID_BYTES);
    bufferevent_write(c->bev, hdr, sizeof(hdr));
    if (vlen)
        bufferevent_write(c->bev, value, vlen);
}

static void op_done(void *ctx, const struct bs_result *r)
{
    struct api_op *op = ctx;
    struct api_conn *c = op->c;
    struct kv_info kv;

    if (r->status == 0 && op->type == API_MSG_PUT) {
        conn_send(c, API_MSG_SUCCESS, &op->key, NULL, 0);
    } else if (r->status == 0 && kv_parse(r->bytes, r->len, &kv) == 0 && id_eq(&kv.key, &op->key) &&
               kv.expiry_s * 1000u > env_wall(&c->api->n->chord_env)) {
        conn_send(c, API_MSG_SUCCESS, &op->key, kv.value, kv.value_len);
    } else {
        conn_send(c, API_MSG_FAILURE, &op->key, NULL, 0);
    }
    c->pending--;
    free(op);
    if (c->bev && c->paused && c->pending < API_MAX_PENDING) {
        c->paused = false;
        bufferevent_enable(c->bev, EV_READ);
        /* Messages may wait in the buffer already. Reading may close the
         * connection: the extra reference keeps c until we are done. */
        c->pending++;
        conn_read(c->bev, c);
        c->pending--;
    }
    conn_free_if_done(c);
}

/* One whole message. Returns false if it does not decode. */
static bool conn_message(struct api_conn *c, const uint8_t *m, size_t size)
{
    struct net_api *api = c->api;
    struct net_node *n = api->n;
    uint16_t type = (uint16_t)(m[2] << 8 | m[3]);
    struct api_op *op;
    int rc;

    api->requests++;
    if (type == API_MSG_GET && size == 4 + ID_BYTES) {
        op = malloc(sizeof(*op));
        if (!op)
            return true;
        *op = (struct api_op){.c = c, .type = type};
        memcpy(op->key.b, m + 4, ID_BYTES);
        rc = bs_get(n->bs, STORE_KV, &op->key, op_done, op);
    } else if (type == API_MSG_PUT && size >= 8 + ID_BYTES) {
        uint16_t ttl = (uint16_t)(m[4] << 8 | m[5]);
        uint8_t repl = m[6];
        size_t vlen = size - 8 - ID_BYTES;
        uint8_t *rec;
        size_t rlen;
        struct id key;
        uint64_t now = env_wall(&n->chord_env);

        memcpy(key.b, m + 8, ID_BYTES);
        if (m[7] != 0 || vlen > KV_MAX_VALUE)
            return false;
        rec = malloc(KV_MAX_LEN);
        op = malloc(sizeof(*op));
        if (!rec || !op ||
            kv_encode(&key, now, now / 1000u + (ttl ? ttl : API_TTL_DEFAULT_S), repl ? repl : 1,
                      m + 8 + ID_BYTES, vlen, rec, &rlen) < 0) {
            free(rec);
            free(op);
            return true;
        }
        *op = (struct api_op){.c = c, .type = type, .key = key};
        rc = bs_kv_put(n->bs, rec, rlen, op_done, op);
        free(rec);
    } else {
        return false;
    }
    if (rc) {
        conn_send(c, API_MSG_FAILURE, &op->key, NULL, 0);
        free(op);
        return true;
    }
    c->pending++;
    return true;
}

static void conn_read(struct bufferevent *bev, void *ctx)
{
    struct api_conn *c = ctx;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (c->bev && c->pending < API_MAX_PENDING) {
        size_t avail = evbuffer_get_length(in);
        uint8_t hdr[4];
        uint8_t *m;
        size_t size;

        if (avail < 4)
            break;
        evbuffer_copyout(in, hdr, 4);
        size = (size_t)(hdr[0] << 8 | hdr[1]);
        if (size < 4) {
            c->api->bad++;
            conn_close(c, "a message shorter than its header");
            return;
        }
        if (avail < size)
            break;
        m = evbuffer_pullup(in, (ssize_t)size);
        if (!m || !conn_message(c, m, size)) {
            c->api->bad++;
            conn_close(c, "a message that does not decode (types 650 PUT and 651 GET only)");
            return;
        }
        if (c->bev)
            evbuffer_drain(in, size);
    }
    if (c->bev && c->pending >= API_MAX_PENDING && !c->paused) {
        c->paused = true;
        bufferevent_disable(c->bev, EV_READ);
    }
    node_kick(c->api->n);
}

static void conn_event(struct bufferevent *bev, short what, void *ctx)
{
    struct api_conn *c = ctx;
    (void)bev;
    if (what & BEV_EVENT_TIMEOUT)
        conn_close(c, "idle too long");
    else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_close(c, NULL);
}

static void on_accept(void *ctx, int fd)
{
    struct net_api *api = ctx;
    struct net_loop *l = api->n->loop;
    struct timeval idle = {.tv_sec = API_IDLE_MS / 1000};
    struct api_conn *c;

    if (api->nconns >= API_MAX_CONNS) {
        LOG_W(&api->n->lg, MOD, "refusing a DHT API connection: %d open already", API_MAX_CONNS);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->api = api;
    c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    /* At most one whole message is read ahead. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, 65535);
    bufferevent_set_timeouts(c->bev, &idle, NULL);
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    api->conns[api->nconns++] = c;
}

int net_api_new(struct net_node *n, const struct addr *a, struct net_api **out)
{
    struct net_api *api = calloc(1, sizeof(*api));
    int rc;

    if (!api)
        return -ENOMEM;
    api->n = n;
    rc = net_listener_new_tcp(n->loop, a, on_accept, api, &api->ln);
    if (rc) {
        free(api);
        return rc;
    }
    *out = api;
    return 0;
}

void net_api_free(struct net_api *api)
{
    if (!api)
        return;
    while (api->nconns)
        conn_close(api->conns[0], NULL);
    net_listener_free(api->ln);
    free(api);
}

const struct addr *net_api_addr(const struct net_api *api)
{
    return net_listener_addr(api->ln);
}
