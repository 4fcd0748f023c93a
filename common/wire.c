/* wire.c — bounded big-endian reader and writer. */
#include "common/wire.h"

#include <string.h>

void wire_reader_init(struct wire_reader *r, const void *buf, size_t len)
{
    r->p = buf;
    r->left = len;
    r->err = false;
}

static const uint8_t *take(struct wire_reader *r, size_t n)
{
    if (r->err || r->left < n) {
        r->err = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t wire_get_u8(struct wire_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint16_t wire_get_u16(struct wire_reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t wire_get_u32(struct wire_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t wire_get_u64(struct wire_reader *r)
{
    const uint8_t *p = take(r, 8);
    uint64_t v = 0;
    if (p)
        for (int i = 0; i < 8; i++)
            v = v << 8 | p[i];
    return v;
}

void wire_get_bytes(struct wire_reader *r, void *out, size_t len)
{
    const uint8_t *p = take(r, len);
    if (p)
        memcpy(out, p, len);
    else
        memset(out, 0, len);
}

const uint8_t *wire_get_view(struct wire_reader *r, size_t len)
{
    return take(r, len);
}

void wire_get_id(struct wire_reader *r, struct id *out)
{
    wire_get_bytes(r, out->b, ID_BYTES);
}

void wire_get_addr(struct wire_reader *r, struct addr *out)
{
    memset(out, 0, sizeof(*out));
    uint8_t fam = wire_get_u8(r);
    uint16_t port = wire_get_u16(r);
    if (fam == ADDR_V4)
        wire_get_bytes(r, out->ip, 4);
    else if (fam == ADDR_V6)
        wire_get_bytes(r, out->ip, 16);
    else
        r->err = true;
    if (r->err) {
        memset(out, 0, sizeof(*out));
        return;
    }
    out->family = fam;
    out->port = port;
}

bool wire_reader_ok(const struct wire_reader *r)
{
    return !r->err;
}

bool wire_reader_done(const struct wire_reader *r)
{
    return !r->err && r->left == 0;
}

void wire_reader_fail(struct wire_reader *r)
{
    r->err = true;
}

void wire_writer_init(struct wire_writer *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = false;
}

static uint8_t *room(struct wire_writer *w, size_t n)
{
    if (w->err || w->cap - w->len < n) {
        w->err = true;
        return NULL;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

void wire_put_u8(struct wire_writer *w, uint8_t v)
{
    uint8_t *p = room(w, 1);
    if (p)
        p[0] = v;
}

void wire_put_u16(struct wire_writer *w, uint16_t v)
{
    uint8_t *p = room(w, 2);
    if (p) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    }
}

void wire_put_u32(struct wire_writer *w, uint32_t v)
{
    uint8_t *p = room(w, 4);
    if (p) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
    }
}

void wire_put_u64(struct wire_writer *w, uint64_t v)
{
    wire_put_u32(w, (uint32_t)(v >> 32));
    wire_put_u32(w, (uint32_t)v);
}

void wire_put_bytes(struct wire_writer *w, const void *data, size_t len)
{
    uint8_t *p = room(w, len);
    if (p && len)
        memcpy(p, data, len);
}

void wire_put_id(struct wire_writer *w, const struct id *id)
{
    wire_put_bytes(w, id->b, ID_BYTES);
}

void wire_put_addr(struct wire_writer *w, const struct addr *a)
{
    if (a->family != ADDR_V4 && a->family != ADDR_V6) {
        w->err = true;
        return;
    }
    wire_put_u8(w, a->family);
    wire_put_u16(w, a->port);
    wire_put_bytes(w, a->ip, a->family == ADDR_V4 ? 4 : 16);
}

void wire_patch_u32(struct wire_writer *w, size_t off, uint32_t v)
{
    if (w->err || off > w->len || w->len - off < 4) {
        w->err = true;
        return;
    }
    w->buf[off] = (uint8_t)(v >> 24);
    w->buf[off + 1] = (uint8_t)(v >> 16);
    w->buf[off + 2] = (uint8_t)(v >> 8);
    w->buf[off + 3] = (uint8_t)v;
}

bool wire_writer_ok(const struct wire_writer *w)
{
    return !w->err;
}

size_t wire_addr_size(const struct addr *a)
{
    return 3 + (a->family == ADDR_V6 ? 16 : 4);
}
