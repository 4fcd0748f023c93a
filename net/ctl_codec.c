/* ctl_codec.c — the control protocol's message codecs (control.h), apart
 * from the client so that they build without libevent (tests/fuzz). */
#include "net/control.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/wire.h"

/* Control characters would garble a terminal; each byte of one becomes
 * '?'. They are C0, DEL, and C1 (U+0080..U+009F, spelt C2 80..C2 9F in
 * UTF-8; U+009B is CSI, like ESC [). */
static void text_sanitize(char *msg, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c < 0x20 || c == 0x7f) {
            msg[i] = '?';
        } else if (c == 0xc2 && i + 1 < n && (unsigned char)msg[i + 1] >= 0x80 &&
                   (unsigned char)msg[i + 1] <= 0x9f) {
            msg[i] = '?';
            msg[++i] = '?';
        }
    }
}

size_t ctl_lookup_req_encode(const struct id *key, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    wire_writer_init(&w, buf, cap);
    wire_put_id(&w, key);
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_lookup_req_decode(const uint8_t *p, size_t len, struct id *key)
{
    struct wire_reader r;
    struct id k;
    wire_reader_init(&r, p, len);
    wire_get_id(&r, &k);
    if (!wire_reader_done(&r))
        return -EBADMSG;
    *key = k;
    return 0;
}

size_t ctl_lookup_reply_encode(const struct ctl_lookup_reply *r, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    wire_writer_init(&w, buf, cap);
    wire_put_u32(&w, (uint32_t)r->status);
    wire_put_u16(&w, r->hops);
    wire_put_u8(&w, r->iterative);
    wire_put_u64(&w, r->elapsed_us);
    wire_put_id(&w, &r->id);
    if (r->addr.family == ADDR_NONE) {
        /* A failed lookup names nobody: 0.0.0.0 port 0. */
        struct addr none = {.family = ADDR_V4};
        wire_put_addr(&w, &none);
    } else {
        wire_put_addr(&w, &r->addr);
    }
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_lookup_reply_decode(const uint8_t *p, size_t len, struct ctl_lookup_reply *out)
{
    struct wire_reader r;
    struct ctl_lookup_reply v;

    memset(&v, 0, sizeof(v));
    wire_reader_init(&r, p, len);
    v.status = (int32_t)wire_get_u32(&r);
    v.hops = wire_get_u16(&r);
    v.iterative = wire_get_u8(&r);
    v.elapsed_us = wire_get_u64(&r);
    wire_get_id(&r, &v.id);
    wire_get_addr(&r, &v.addr);
    if (!wire_reader_done(&r) || v.iterative > 1 || v.status > 0 || v.status < -4095)
        return -EBADMSG;
    *out = v;
    return 0;
}

size_t ctl_error_encode(int32_t err, const char *msg, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    size_t n = strlen(msg);
    if (n > CTL_ERROR_MAX)
        n = CTL_ERROR_MAX;
    wire_writer_init(&w, buf, cap);
    wire_put_u32(&w, (uint32_t)err);
    wire_put_bytes(&w, msg, n);
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_error_decode(const uint8_t *p, size_t len, int32_t *err, char *msg, size_t msg_size)
{
    struct wire_reader r;
    int32_t e;
    size_t n;

    wire_reader_init(&r, p, len);
    e = (int32_t)wire_get_u32(&r);
    if (!wire_reader_ok(&r) || len - 4 > CTL_ERROR_MAX || e > 0 || e < -4095)
        return -EBADMSG;
    n = len - 4;
    if (msg_size) {
        if (n >= msg_size)
            n = msg_size - 1;
        memcpy(msg, p + 4, n);
        msg[n] = '\0';
        text_sanitize(msg, n);
    }
    *err = e;
    return 0;
}


static bool status_ok(int32_t st)
{
    return st <= 0 && st >= -9999;
}

size_t ctl_bs_reply_encode(const struct ctl_bs_reply *r, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    size_t n = strnlen(r->reason, CTL_REASON_MAX);
    wire_writer_init(&w, buf, cap);
    wire_put_u32(&w, (uint32_t)r->status);
    wire_put_id(&w, &r->key);
    wire_put_u8(&w, r->copies);
    wire_put_u64(&w, r->version);
    wire_put_u16(&w, (uint16_t)n);
    wire_put_bytes(&w, r->reason, n);
    wire_put_u32(&w, r->len);
    if (r->len)
        wire_put_bytes(&w, r->bytes, r->len);
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_bs_reply_decode(const uint8_t *p, size_t len, struct ctl_bs_reply *out)
{
    struct wire_reader r;
    struct ctl_bs_reply v;
    const uint8_t *reason;
    uint16_t n;

    memset(&v, 0, sizeof(v));
    wire_reader_init(&r, p, len);
    v.status = (int32_t)wire_get_u32(&r);
    wire_get_id(&r, &v.key);
    v.copies = wire_get_u8(&r);
    v.version = wire_get_u64(&r);
    n = wire_get_u16(&r);
    if (n > CTL_REASON_MAX)
        return -EBADMSG;
    reason = wire_get_view(&r, n);
    v.len = wire_get_u32(&r);
    v.bytes = wire_get_view(&r, v.len);
    if (!wire_reader_done(&r) || !status_ok(v.status) || memchr(reason, 0, n))
        return -EBADMSG;
    memcpy(v.reason, reason, n);
    v.reason[n] = '\0';
    text_sanitize(v.reason, n);
    if (!v.len)
        v.bytes = NULL;
    *out = v;
    return 0;
}

size_t ctl_block_put_encode(const struct id *key, const struct lease *l, const uint8_t *bytes,
                            size_t blen, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    uint8_t lb[LEASE_LEN];
    if (blen == 0 || blen > BLOCK_MAX_STORED)
        return 0; /* what the decoder would refuse */
    lease_encode(l, lb);
    wire_writer_init(&w, buf, cap);
    wire_put_bytes(&w, key->b, ID_BYTES);
    wire_put_bytes(&w, lb, sizeof(lb));
    wire_put_bytes(&w, bytes, blen);
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_block_put_decode(const uint8_t *p, size_t len, struct id *key, struct lease *l,
                         const uint8_t **bytes, size_t *blen)
{
    if (len <= ID_BYTES + LEASE_LEN || len - ID_BYTES - LEASE_LEN > BLOCK_MAX_STORED)
        return -EBADMSG;
    memcpy(key->b, p, ID_BYTES);
    lease_decode(p + ID_BYTES, l);
    *bytes = p + ID_BYTES + LEASE_LEN;
    *blen = len - ID_BYTES - LEASE_LEN;
    return 0;
}

size_t ctl_block_get_encode(uint8_t type, const struct id *key, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    wire_writer_init(&w, buf, cap);
    wire_put_u8(&w, type);
    wire_put_id(&w, key);
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_block_get_decode(const uint8_t *p, size_t len, uint8_t *type, struct id *key)
{
    struct wire_reader r;
    uint8_t t;
    struct id k;
    wire_reader_init(&r, p, len);
    t = wire_get_u8(&r);
    wire_get_id(&r, &k);
    if (!wire_reader_done(&r) || t < 1 || t > 3)
        return -EBADMSG;
    *type = t;
    *key = k;
    return 0;
}

size_t ctl_root_put_encode(uint64_t expect, const uint8_t *bytes, size_t blen, uint8_t *buf,
                           size_t cap)
{
    struct wire_writer w;
    if (blen == 0 || blen > ROOT_MAX_LEN)
        return 0; /* what the decoder would refuse */
    wire_writer_init(&w, buf, cap);
    wire_put_u64(&w, expect);
    wire_put_bytes(&w, bytes, blen);
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_root_put_decode(const uint8_t *p, size_t len, uint64_t *expect, const uint8_t **bytes,
                        size_t *blen)
{
    struct wire_reader r;
    uint64_t e;
    if (len <= 8 || len - 8 > ROOT_MAX_LEN)
        return -EBADMSG;
    wire_reader_init(&r, p, len);
    e = wire_get_u64(&r);
    *expect = e;
    *bytes = p + 8;
    *blen = len - 8;
    return 0;
}

size_t ctl_lease_encode(const struct id *key, const struct lease *l, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    uint8_t lb[LEASE_LEN];
    lease_encode(l, lb);
    wire_writer_init(&w, buf, cap);
    wire_put_id(&w, key);
    wire_put_bytes(&w, lb, sizeof(lb));
    return wire_writer_ok(&w) ? w.len : 0;
}

int ctl_lease_decode(const uint8_t *p, size_t len, struct id *key, struct lease *l)
{
    if (len != ID_BYTES + LEASE_LEN)
        return -EBADMSG;
    memcpy(key->b, p, ID_BYTES);
    lease_decode(p + ID_BYTES, l);
    return 0;
}
