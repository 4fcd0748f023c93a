/* cache.c — the block cache, and synchronous block calls over bclient.
 *
 * The cache keeps decoded payloads of content blocks, which never change,
 * by key in LRU order within a byte limit. A get of a key being fetched
 * waits for that fetch instead of starting another. Fetches complete on
 * the block client's thread, which only copies the verified bytes; the
 * decode (zstd) happens on the thread that wants the payload.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/fs_int.h"

struct centry {
    struct id key;
    uint8_t *data; /* decoded payload when ready, else NULL */
    size_t len;
    uint8_t *raw;  /* the block bytes as fetched, before decoding */
    size_t raw_len;
    bool fetching;
    int status;    /* of the last fetch, when it failed */
    struct centry *hnext;
    struct centry *prev, *next; /* LRU: head most recent */
};

struct fs_cache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct centry **tab;
    size_t cap, count;
    struct centry *head, *tail;
    uint64_t bytes, limit;
};

uint64_t fs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t fs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int fs_errno(int status)
{
    if (status == 0)
        return 0;
    if (status == BS_ERR_FULL || status == BS_ERR_QUOTA)
        return -ENOSPC;
    if (status == -ENOMEM)
        return -ENOMEM;
    return -EIO;
}

int fs_cache_new(uint64_t limit, struct fs_cache **out)
{
    struct fs_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cap = 4096;
    c->tab = calloc(c->cap, sizeof(*c->tab));
    if (!c->tab) {
        free(c);
        return -ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->limit = limit;
    *out = c;
    return 0;
}

static size_t slot(const struct fs_cache *c, const struct id *k)
{
    uint64_t h;
    memcpy(&h, k->b, sizeof(h));
    return (size_t)(h % c->cap);
}

static struct centry *find(struct fs_cache *c, const struct id *k)
{
    for (struct centry *e = c->tab[slot(c, k)]; e; e = e->hnext)
        if (id_cmp(&e->key, k) == 0)
            return e;
    return NULL;
}

static void lru_unlink(struct fs_cache *c, struct centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else if (c->head == e)
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else if (c->tail == e)
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct fs_cache *c, struct centry *e)
{
    lru_unlink(c, e);
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void drop(struct fs_cache *c, struct centry *e)
{
    struct centry **pp = &c->tab[slot(c, &e->key)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->bytes -= e->len + e->raw_len;
    c->count--;
    free(e->data);
    free(e->raw);
    free(e);
}

static void trim(struct fs_cache *c)
{
    struct centry *e = c->tail;
    while (c->bytes > c->limit && e) {
        struct centry *prev = e->prev;
        if (!e->fetching)
            drop(c, e);
        e = prev;
    }
}

static void grow(struct fs_cache *c)
{
    if (c->count < c->cap)
        return;
    size_t ncap = c->cap * 2;
    struct centry **nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return;
    struct centry **old = c->tab;
    size_t ocap = c->cap;
    c->tab = nt;
    c->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        for (struct centry *e = old[i], *nx; e; e = nx) {
            nx = e->hnext;
            size_t s = slot(c, &e->key);
            e->hnext = c->tab[s];
            c->tab[s] = e;
        }
    free(old);
}

static struct centry *add(struct fs_cache *c, const struct id *k)
{
    struct centry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    grow(c);
    e->key = *k;
    size_t s = slot(c, k);
    e->hnext = c->tab[s];
    c->tab[s] = e;
    c->count++;
    lru_front(c, e);
    return e;
}

void fs_cache_free(struct fs_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        for (struct centry *e = c->tab[i], *nx; e; e = nx) {
            nx = e->hnext;
            free(e->data);
            free(e->raw);
            free(e);
        }
    free(c->tab);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

struct fetch {
    struct fs_cache *c;
    struct id key;
};

static void on_fetched(void *arg, const struct bs_result *r)
{
    struct fetch *fe = arg;
    struct fs_cache *c = fe->c;
    pthread_mutex_lock(&c->mu);
    struct centry *e = find(c, &fe->key);
    if (e && e->fetching) {
        e->fetching = false;
        e->status = r->status;
        if (r->status == 0) {
            e->raw = malloc(r->len ? r->len : 1);
            if (e->raw) {
                memcpy(e->raw, r->bytes, r->len);
                e->raw_len = r->len;
                c->bytes += r->len;
            } else {
                e->status = -ENOMEM;
            }
        }
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    free(fe);
}

/* Starts a fetch of e (c->mu held). */
static int start_fetch(struct fs *f, struct centry *e)
{
    struct fetch *fe = malloc(sizeof(*fe));
    if (!fe)
        return -ENOMEM;
    fe->c = f->cache;
    fe->key = e->key;
    e->fetching = true;
    e->status = 0;
    /* The call may block for backpressure: not under the cache lock. */
    pthread_mutex_unlock(&f->cache->mu);
    int rc = f->bc.ops->get(f->bc.impl, STORE_CONTENT, &fe->key, on_fetched, fe);
    pthread_mutex_lock(&f->cache->mu);
    if (rc < 0) {
        struct centry *again = find(f->cache, &fe->key);
        free(fe);
        if (again) {
            again->fetching = false;
            again->status = rc;
        }
        pthread_cond_broadcast(&f->cache->cv);
    }
    return rc;
}

void fs_cache_prefetch(struct fs *f, const struct id *key)
{
    struct fs_cache *c = f->cache;
    pthread_mutex_lock(&c->mu);
    if (!find(c, key)) {
        struct centry *e = add(c, key);
        if (e)
            start_fetch(f, e);
    }
    pthread_mutex_unlock(&c->mu);
}

void fs_cache_put(struct fs *f, const struct id *key, const uint8_t *payload, size_t len)
{
    struct fs_cache *c = f->cache;
    pthread_mutex_lock(&c->mu);
    struct centry *e = find(c, key);
    if (!e)
        e = add(c, key);
    if (e && !e->data && !e->fetching) {
        e->data = malloc(len ? len : 1);
        if (e->data) {
            memcpy(e->data, payload, len);
            e->len = len;
            c->bytes += len;
            e->status = 0;
        }
        trim(c);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Decodes e->raw into e->data (c->mu held). */
static int decode(struct fs_cache *c, struct centry *e)
{
    struct block_info bi;
    if (block_parse(e->raw, e->raw_len, &bi) < 0)
        return -EIO;
    uint8_t *out = malloc(bi.raw_len ? bi.raw_len : 1);
    if (!out)
        return -ENOMEM;
    size_t n = 0;
    if (block_decode(e->raw, e->raw_len, out, bi.raw_len, &n) < 0) {
        free(out);
        return -EIO;
    }
    c->bytes -= e->raw_len;
    free(e->raw);
    e->raw = NULL;
    e->raw_len = 0;
    e->data = out;
    e->len = n;
    c->bytes += n;
    return 0;
}

/* Finds key's decoded payload, fetching it if needed: 0 with c->mu held
 * and *out the entry, or an error (c->mu released). */
static int get_locked(struct fs *f, const struct id *key, struct centry **out)
{
    struct fs_cache *c = f->cache;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    struct centry *e = find(c, key);
    if (e && !e->fetching && !e->data && !e->raw) {
        drop(c, e); /* a failed fetch: try again */
        e = NULL;
    }
    if (!e) {
        e = add(c, key);
        if (!e) {
            pthread_mutex_unlock(&c->mu);
            return -ENOMEM;
        }
        start_fetch(f, e);
    }
    for (unsigned refetch = 0;;) {
        e = find(c, key);
        if (!e && refetch++ < 3) {
            /* evicted between its fetch and this waiter: fetch again */
            if (!(e = add(c, key))) {
                rc = -ENOMEM;
                break;
            }
            start_fetch(f, e);
            continue;
        }
        if (!e) {
            rc = -EIO;
            break;
        }
        if (e->fetching) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        if (!e->data && e->raw && (rc = decode(c, e)) < 0) {
            drop(c, e);
            break;
        }
        if (!e->data) {
            rc = fs_errno(e->status ? e->status : -EIO);
            drop(c, e);
            break;
        }
        lru_front(c, e);
        *out = e;
        return 0;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int fs_cache_get(struct fs *f, const struct id *key, uint8_t **out, size_t *len)
{
    struct centry *e;
    int rc = get_locked(f, key, &e);
    if (rc < 0)
        return rc;
    *out = malloc(e->len ? e->len : 1);
    if (*out) {
        memcpy(*out, e->data, e->len);
        *len = e->len;
    } else {
        rc = -ENOMEM;
    }
    trim(f->cache);
    pthread_mutex_unlock(&f->cache->mu);
    return rc;
}

ssize_t fs_cache_read(struct fs *f, const struct id *key, size_t off, void *buf, size_t want)
{
    struct centry *e;
    int rc = get_locked(f, key, &e);
    if (rc < 0)
        return rc;
    size_t n = off < e->len ? e->len - off : 0;
    if (n > want)
        n = want;
    memcpy(buf, e->data + off, n);
    trim(f->cache);
    pthread_mutex_unlock(&f->cache->mu);
    return (ssize_t)n;
}

/* ---- synchronous calls ---- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned pending;
    int status;        /* the first failure */
    unsigned min_copies;
};

static void waiter_init(struct waiter *w, unsigned min_copies)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->pending = 0;
    w->status = 0;
    w->min_copies = min_copies;
}

static void waiter_wait(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->pending)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void on_put(void *arg, const struct bs_result *r)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    int st = r->status;
    if (st == 0 && r->copies < w->min_copies)
        st = -EIO;
    if (st && !w->status)
        w->status = st;
    if (--w->pending == 0)
        pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Starts a put of encoded bytes counted in w. */
static int put_start(struct fs *f, struct waiter *w, const uint8_t *bytes, size_t len,
                     const struct id *key)
{
    struct lease l;
    uint64_t now = (uint64_t)(fs_now_ns() / 1000000);
    uint64_t expiry = now / 1000u + (uint64_t)f->cfg.lease_days * 86400u;
    if (lease_sign(&f->cfg.key, key, now, expiry, &l) < 0)
        return -EIO;
    pthread_mutex_lock(&w->mu);
    w->pending++;
    pthread_mutex_unlock(&w->mu);
    int rc = f->bc.ops->put(f->bc.impl, bytes, len, &l, on_put, w);
    if (rc < 0) {
        pthread_mutex_lock(&w->mu);
        w->pending--;
        if (!w->status)
            w->status = rc;
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

int fs_put_block(struct fs *f, uint8_t kind, const void *data, size_t len, struct id *key)
{
    uint8_t *buf = malloc(BLOCK_MAX_STORED);
    if (!buf)
        return -ENOMEM;
    size_t n = 0;
    int rc = block_encode(kind, data, len, true, buf, &n, key);
    if (rc == 0) {
        struct waiter w;
        waiter_init(&w, f->cfg.min_copies);
        put_start(f, &w, buf, n, key);
        waiter_wait(&w);
        rc = fs_errno(w.status);
    }
    free(buf);
    return rc;
}

struct emit_ctx {
    struct fs *f;
    struct waiter *w;
};

static int emit_put(void *ctx, const struct id *key, const uint8_t *bytes, size_t len)
{
    struct emit_ctx *ec = ctx;
    return put_start(ec->f, ec->w, bytes, len, key) < 0 ? -EIO : 0;
}

int fs_put_manifest(struct fs *f, uint64_t size, const struct id *keys, size_t n, struct id *key)
{
    struct waiter w;
    waiter_init(&w, f->cfg.min_copies);
    struct emit_ctx ec = { f, &w };
    int rc = file_manifest_build(size, FS_CHUNK, keys, n, emit_put, &ec, key);
    waiter_wait(&w);
    return rc ? rc : fs_errno(w.status);
}

int fs_put_stream(struct fs *f, const uint8_t *bytes, size_t len, struct id *key)
{
    size_t n = (len + FS_CHUNK - 1) / FS_CHUNK;
    struct id *keys = calloc(n ? n : 1, sizeof(*keys));
    uint8_t *buf = malloc(BLOCK_MAX_STORED);
    int rc = (keys && buf) ? 0 : -ENOMEM;
    struct waiter w;
    waiter_init(&w, f->cfg.min_copies);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t off = i * FS_CHUNK, cl = len - off < FS_CHUNK ? len - off : FS_CHUNK;
        size_t bl = 0;
        rc = block_encode(BLOCK_KIND_DATA, bytes + off, cl, true, buf, &bl, &keys[i]);
        if (rc == 0)
            rc = put_start(f, &w, buf, bl, &keys[i]) < 0 ? -EIO : 0;
        if (rc == 0)
            fs_cache_put(f, &keys[i], bytes + off, cl);
    }
    if (rc == 0) {
        struct emit_ctx ec = { f, &w };
        rc = file_manifest_build(len, FS_CHUNK, keys, n, emit_put, &ec, key);
    }
    waiter_wait(&w);
    if (rc == 0)
        rc = fs_errno(w.status);
    free(keys);
    free(buf);
    return rc;
}

int fs_get_chunks(struct fs *f, const struct id *key, struct id **keys, size_t *n, uint64_t *size)
{
    return fs_walk_manifest(f, key, NULL, NULL, keys, n, size);
}

int fs_walk_manifest(struct fs *f, const struct id *key,
                     void (*indirect)(void *ctx, const struct id *key), void *ctx,
                     struct id **keys, size_t *n, uint64_t *size)
{
    uint8_t *p = NULL;
    size_t len = 0;
    int rc = fs_cache_get(f, key, &p, &len);
    if (rc < 0)
        return rc;
    struct file_manifest m;
    if (file_manifest_parse(p, len, &m) < 0 || m.chunk_size != FS_CHUNK) {
        free(p);
        return -EIO;
    }
    size_t total = (size_t)((m.size + FS_CHUNK - 1) / FS_CHUNK);
    struct id *out = calloc(total ? total : 1, sizeof(*out));
    if (!out) {
        free(p);
        return -ENOMEM;
    }
    *size = m.size;
    size_t got = 0;
    if (m.levels == 0) {
        for (uint32_t i = 0; i < m.nkeys && got < total; i++)
            memcpy(out[got++].b, m.keys + (size_t)i * ID_BYTES, ID_BYTES);
    } else {
        /* Walk the indirect levels depth first, in order. */
        struct frame {
            uint8_t *p;
            const uint8_t *keys;
            uint32_t n, i;
        } st[BLOCK_FILE_MAX_LEVELS + 1];
        int depth = 0;
        st[0].p = p;
        st[0].keys = m.keys;
        st[0].n = m.nkeys;
        st[0].i = 0;
        p = NULL;
        while (depth >= 0 && rc == 0) {
            struct frame *fr = &st[depth];
            if (fr->i == fr->n) {
                free(fr->p);
                depth--;
                continue;
            }
            struct id k;
            memcpy(k.b, fr->keys + (size_t)fr->i++ * ID_BYTES, ID_BYTES);
            if ((size_t)depth == m.levels) {
                if (got < total)
                    out[got++] = k;
                continue;
            }
            uint8_t *q = NULL;
            size_t ql = 0;
            uint8_t lvl;
            uint32_t nk;
            const uint8_t *ks;
            if (indirect)
                indirect(ctx, &k);
            rc = fs_cache_get(f, &k, &q, &ql);
            if (rc == 0 && file_indirect_parse(q, ql, &lvl, &nk, &ks) < 0)
                rc = -EIO;
            if (rc < 0) {
                free(q);
                break;
            }
            depth++;
            st[depth].p = q;
            st[depth].keys = ks;
            st[depth].n = nk;
            st[depth].i = 0;
        }
        while (depth >= 0)
            free(st[depth--].p);
    }
    free(p);
    if (rc == 0 && got != total)
        rc = -EIO;
    if (rc < 0) {
        free(out);
        return rc;
    }
    *keys = out;
    *n = total;
    return 0;
}

int fs_get_stream(struct fs *f, const struct id *key, uint64_t size, uint8_t **out, size_t *len)
{
    struct id *keys = NULL;
    size_t n = 0;
    uint64_t msize = 0;
    int rc = fs_get_chunks(f, key, &keys, &n, &msize);
    if (rc < 0)
        return rc;
    if (msize != size || size > (1ull << 31)) {
        free(keys);
        return -EIO;
    }
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        free(keys);
        return -ENOMEM;
    }
    for (size_t i = 0; i + 1 < n + 1 && i < n; i++)
        fs_cache_prefetch(f, &keys[i]);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t off = i * FS_CHUNK, want = size - off < FS_CHUNK ? size - off : FS_CHUNK;
        if (fs_key_is_hole(&keys[i])) {
            memset(buf + off, 0, want);
            continue;
        }
        uint8_t *p = NULL;
        size_t pl = 0;
        rc = fs_cache_get(f, &keys[i], &p, &pl);
        if (rc == 0 && pl != want)
            rc = -EIO;
        if (rc == 0)
            memcpy(buf + off, p, want);
        free(p);
    }
    free(keys);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = size;
    return 0;
}

/* ---- encoded blocks stored later ---- */

void blist_clear(struct blist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].bytes);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int blist_add(struct blist *l, const struct id *key, const uint8_t *bytes, size_t len)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        struct bitem *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return -ENOMEM;
    memcpy(b, bytes, len);
    l->v[l->n].key = *key;
    l->v[l->n].bytes = b;
    l->v[l->n].len = len;
    l->n++;
    return 0;
}

static int emit_list(void *ctx, const struct id *key, const uint8_t *bytes, size_t len)
{
    return blist_add(ctx, key, bytes, len);
}

int fs_stream_encode(struct fs *f, const uint8_t *bytes, size_t len, struct blist *l,
                     struct id *key)
{
    size_t n = (len + FS_CHUNK - 1) / FS_CHUNK;
    struct id *keys = calloc(n ? n : 1, sizeof(*keys));
    uint8_t *buf = malloc(BLOCK_MAX_STORED);
    int rc = (keys && buf) ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t off = i * FS_CHUNK, cl = len - off < FS_CHUNK ? len - off : FS_CHUNK;
        size_t bl = 0;
        rc = block_encode(BLOCK_KIND_DATA, bytes + off, cl, true, buf, &bl, &keys[i]);
        if (rc == 0)
            rc = blist_add(l, &keys[i], buf, bl);
        if (rc == 0)
            fs_cache_put(f, &keys[i], bytes + off, cl);
    }
    if (rc == 0)
        rc = file_manifest_build(len, FS_CHUNK, keys, n, emit_list, l, key);
    free(keys);
    free(buf);
    return rc;
}

int fs_put_blist(struct fs *f, const struct blist *l)
{
    struct waiter w;
    waiter_init(&w, f->cfg.min_copies);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        rc = put_start(f, &w, l->v[i].bytes, l->v[i].len, &l->v[i].key) < 0 ? -EIO : 0;
    waiter_wait(&w);
    return rc ? rc : fs_errno(w.status);
}
