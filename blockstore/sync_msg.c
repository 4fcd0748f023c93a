/* sync_msg.c — codecs of the maintenance messages (sync_msg.h). */
#include "blockstore/sync_msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/bs.h"
#include "common/wire.h"

static bool type_ok(uint8_t t)
{
    return t == STORE_CONTENT || t == STORE_ROOT || t == STORE_KV;
}

static int finish(const struct wire_writer *w, size_t *len)
{
    if (!wire_writer_ok(w))
        return -EMSGSIZE;
    *len = w->len;
    return 0;
}

/* ---- SYNC_DIGEST ----
 * lo [32] | hi [32] | depth u8 | prefix [depth] | bitmap [32]
 * | per set bit, ascending: count u32 | digest [8]
 * Bit i of the bitmap is bit (7 - i % 8) of byte i / 8: bucket 0 is the top
 * bit of the first byte. */

int sync_digest_encode(const struct sync_digest *m, uint8_t *buf, size_t cap, size_t *len)
{
    struct wire_writer w;
    uint8_t bitmap[SYNC_BUCKETS / 8] = {0};

    if (m->depth > SYNC_DEPTH_MAX)
        return -EINVAL;
    for (unsigned i = 0; i < SYNC_BUCKETS; i++)
        if (m->b[i].count)
            bitmap[i / 8] |= (uint8_t)(0x80u >> (i % 8));
    wire_writer_init(&w, buf, cap);
    wire_put_id(&w, &m->lo);
    wire_put_id(&w, &m->hi);
    wire_put_u8(&w, m->depth);
    wire_put_bytes(&w, m->prefix, m->depth);
    wire_put_bytes(&w, bitmap, sizeof(bitmap));
    for (unsigned i = 0; i < SYNC_BUCKETS; i++) {
        if (!m->b[i].count)
            continue;
        wire_put_u32(&w, m->b[i].count);
        wire_put_bytes(&w, m->b[i].digest, SYNC_DIGEST_LEN);
    }
    return finish(&w, len);
}

int sync_digest_decode(const uint8_t *p, size_t len, struct sync_digest *out)
{
    struct wire_reader r;
    struct sync_digest m;
    uint8_t bitmap[SYNC_BUCKETS / 8];

    memset(&m, 0, sizeof(m));
    wire_reader_init(&r, p, len);
    wire_get_id(&r, &m.lo);
    wire_get_id(&r, &m.hi);
    m.depth = wire_get_u8(&r);
    if (m.depth > SYNC_DEPTH_MAX)
        return BS_ERR_MALFORMED;
    wire_get_bytes(&r, m.prefix, m.depth);
    wire_get_bytes(&r, bitmap, sizeof(bitmap));
    for (unsigned i = 0; i < SYNC_BUCKETS && wire_reader_ok(&r); i++) {
        if (!(bitmap[i / 8] & (0x80u >> (i % 8))))
            continue;
        m.b[i].count = wire_get_u32(&r);
        wire_get_bytes(&r, m.b[i].digest, SYNC_DIGEST_LEN);
        if (m.b[i].count == 0)
            return BS_ERR_MALFORMED; /* a set bit says non-empty */
    }
    if (!wire_reader_done(&r))
        return BS_ERR_MALFORMED;
    *out = m;
    return 0;
}

/* ---- SYNC_DIGEST_OK ----
 * nb u16 | per bucket, ascending: bucket u8 | mode u8
 *   | (mode LIST) n u16 | n entries: type u8 | flags u8 | key [32]
 *                                   | version u64 | digest [8] */

static void put_entry(struct wire_writer *w, const struct sync_entry *e)
{
    wire_put_u8(w, e->type);
    wire_put_u8(w, e->flags);
    wire_put_id(w, &e->key);
    wire_put_u64(w, e->version);
    wire_put_bytes(w, e->digest, SYNC_DIGEST_LEN);
}

static void get_entry(struct wire_reader *r, struct sync_entry *e)
{
    e->type = wire_get_u8(r);
    e->flags = wire_get_u8(r);
    wire_get_id(r, &e->key);
    e->version = wire_get_u64(r);
    wire_get_bytes(r, e->digest, SYNC_DIGEST_LEN);
    if (!type_ok(e->type) || (e->flags & ~SYNC_F_ALL))
        wire_reader_fail(r);
}

int sync_reply_encode(const struct sync_reply *m, uint8_t *buf, size_t cap, size_t *len)
{
    struct wire_writer w;

    wire_writer_init(&w, buf, cap);
    wire_put_u16(&w, m->nb);
    for (unsigned i = 0; i < m->nb; i++) {
        const struct sync_reply_bucket *rb = &m->rb[i];
        wire_put_u8(&w, rb->bucket);
        wire_put_u8(&w, rb->mode);
        if (rb->mode != SYNC_MODE_LIST)
            continue;
        if (rb->first + (size_t)rb->n > m->nent)
            return -EINVAL;
        wire_put_u16(&w, rb->n);
        for (unsigned j = 0; j < rb->n; j++)
            put_entry(&w, &m->ent[rb->first + j]);
    }
    return finish(&w, len);
}

int sync_reply_decode(const uint8_t *p, size_t len, struct sync_reply *out)
{
    struct wire_reader r;
    struct sync_reply mm, *m = &mm;
    int last = -1;

    memset(m, 0, sizeof(*m));
    wire_reader_init(&r, p, len);
    m->nb = wire_get_u16(&r);
    if (m->nb > SYNC_BUCKETS)
        return BS_ERR_MALFORMED;
    /* A first pass counts the entries, so the array is sized once. */
    struct wire_reader scan = r;
    size_t total = 0;
    for (unsigned i = 0; i < m->nb && wire_reader_ok(&scan); i++) {
        wire_get_u8(&scan);
        if (wire_get_u8(&scan) != SYNC_MODE_LIST)
            continue;
        uint16_t n = wire_get_u16(&scan);
        if (n > SYNC_LIST_MAX || total + n > SYNC_REPLY_MAX)
            return BS_ERR_MALFORMED;
        total += n;
        if (!wire_get_view(&scan, (size_t)n * SYNC_ENTRY_WIRE))
            return BS_ERR_MALFORMED;
    }
    if (!wire_reader_done(&scan))
        return BS_ERR_MALFORMED;
    if (total) {
        m->ent = calloc(total, sizeof(*m->ent));
        if (!m->ent)
            return -ENOMEM;
    }
    for (unsigned i = 0; i < m->nb; i++) {
        struct sync_reply_bucket *rb = &m->rb[i];
        rb->bucket = wire_get_u8(&r);
        rb->mode = wire_get_u8(&r);
        if ((int)rb->bucket <= last || rb->mode > SYNC_MODE_DESCEND)
            goto bad;
        last = rb->bucket;
        if (rb->mode != SYNC_MODE_LIST)
            continue;
        rb->n = wire_get_u16(&r);
        rb->first = m->nent;
        for (unsigned j = 0; j < rb->n; j++)
            get_entry(&r, &m->ent[m->nent++]);
        if (!wire_reader_ok(&r))
            goto bad;
    }
    if (!wire_reader_done(&r))
        goto bad;
    *out = mm;
    return 0;
bad:
    sync_reply_release(m);
    return BS_ERR_MALFORMED;
}

void sync_reply_release(struct sync_reply *m)
{
    if (!m)
        return;
    free(m->ent);
    m->ent = NULL;
    m->nent = 0;
    m->nb = 0;
}

/* ---- SYNC_KEYS ----
 * n u16 (1..256) | n × (type u8 | key [32]) */

int sync_keys_encode(const struct sync_entry *e, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    struct wire_writer w;

    if (n == 0 || n > SYNC_KEYS_MAX)
        return -EINVAL;
    wire_writer_init(&w, buf, cap);
    wire_put_u16(&w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        wire_put_u8(&w, e[i].type);
        wire_put_id(&w, &e[i].key);
    }
    return finish(&w, len);
}

int sync_keys_decode(const uint8_t *p, size_t len, struct sync_entry *out, size_t *n)
{
    size_t cnt = len >= 2 ? (size_t)(p[0] << 8 | p[1]) : 0;

    if (cnt == 0 || cnt > SYNC_KEYS_MAX || len != 2 + cnt * (1 + ID_BYTES))
        return BS_ERR_MALFORMED;
    for (size_t i = 0; i < cnt; i++)
        if (!type_ok(p[2 + i * (1 + ID_BYTES)]))
            return BS_ERR_MALFORMED;
    /* Valid: only now is out written. */
    memset(out, 0, SYNC_KEYS_MAX * sizeof(*out));
    for (size_t i = 0; i < cnt; i++) {
        const uint8_t *q = p + 2 + i * (1 + ID_BYTES);
        out[i].type = q[0];
        memcpy(out[i].key.b, q + 1, ID_BYTES);
    }
    *n = cnt;
    return 0;
}

/* ---- SYNC_KEYS_OK ----
 * n u16 | n × (flags u8 | version u64 | digest [8]), in request order */

int sync_keys_ok_encode(const struct sync_entry *e, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    struct wire_writer w;

    if (n > SYNC_KEYS_MAX)
        return -EINVAL;
    wire_writer_init(&w, buf, cap);
    wire_put_u16(&w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        wire_put_u8(&w, e[i].flags);
        wire_put_u64(&w, e[i].version);
        wire_put_bytes(&w, e[i].digest, SYNC_DIGEST_LEN);
    }
    return finish(&w, len);
}

int sync_keys_ok_decode(const uint8_t *p, size_t len, struct sync_entry *out, size_t n)
{
    struct wire_reader r;

    if (len < 2 || (size_t)(p[0] << 8 | p[1]) != n || len != 2 + n * SYNC_KEYS_OK_WIRE)
        return BS_ERR_MALFORMED;
    for (size_t i = 0; i < n; i++)
        if (p[2 + i * SYNC_KEYS_OK_WIRE] & ~SYNC_F_ALL)
            return BS_ERR_MALFORMED;
    /* Valid: only now is out written. */
    wire_reader_init(&r, p + 2, len - 2);
    for (size_t i = 0; i < n; i++) {
        out[i].flags = wire_get_u8(&r);
        out[i].version = wire_get_u64(&r);
        wire_get_bytes(&r, out[i].digest, SYNC_DIGEST_LEN);
    }
    return 0;
}
