/* fuzz_net_msg.c — libFuzzer harness for the payload codecs of net/: the
 * HELLO a peer sends first (net/hello.c) and the control protocol's
 * messages (net/ctl_codec.c).
 *
 * The first input byte chooses the decoder (its value modulo 9; 0..3 are
 * numbered as when there were only those, so old inputs keep their
 * meaning):
 *   0  net_hello_decode          the rest of the input is the payload
 *   1  ctl_lookup_req_decode     the rest of the input is the payload
 *   2  ctl_lookup_reply_decode   the rest of the input is the payload
 *   3  ctl_error_decode          the second byte chooses msg_size (below),
 *                                the rest is the payload
 *   4  ctl_bs_reply_decode       the rest of the input is the payload
 *   5  ctl_block_put_decode      (1210) the rest of the input is the payload (key | lease | block)
 *   6  ctl_block_get_decode      (1211) the rest of the input is the payload
 *   7  ctl_root_put_decode       (1212) the rest of the input is the payload
 *   8  ctl_lease_decode          (1213) the rest of the input is the payload
 *
 * For any input, decoding must not crash or read out of bounds (the payload
 * is copied to a heap block of exactly its size, so ASan sees any read past
 * it). When it decodes, the value must encode again, the encoding must
 * decode to the same value, and for every message but an error the
 * encoding must be the payload itself (one spelling per value), except
 * that a block reply's reason comes back with its control characters
 * replaced by '?'.
 *
 * ctl_error_decode writes into a heap block of exactly msg_size bytes; the
 * message must be NUL-terminated inside it, no longer than the payload's
 * text, free of control characters (C0, DEL, and C1 as UTF-8), and equal to
 * the payload's text apart from those.
 *
 * The block messages (4..8) are checked further: a decoder that fails
 * leaves its out-parameters alone, none writes into its input, views it
 * returns (the record of a put, a reply's bytes) lie inside the payload at
 * their place, and the encoders write into a heap block of exactly the
 * encoding's size and refuse (return 0) a buffer one byte shorter.
 *
 * Any violation calls abort(), which libFuzzer reports as a crash and saves
 * the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/store.h"
#include "net/control.h"
#include "net/peers.h"

/* Append new selectors at the end: the committed corpus names these by
 * number. */
enum {
    SEL_HELLO,
    SEL_LOOKUP_REQ,
    SEL_LOOKUP_REPLY,
    SEL_ERROR,
    SEL_BS_REPLY,
    SEL_BLOCK_PUT,
    SEL_BLOCK_GET,
    SEL_ROOT_PUT,
    SEL_LEASE,
    SEL_N
};

/* Larger than any encoding here: an error is 4 + CTL_ERROR_MAX bytes. */
static uint8_t enc1[4 + CTL_ERROR_MAX + 64], enc2[sizeof(enc1)];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_net_msg: %s\n", what);
    abort();
}

static bool addr_same(const struct addr *a, const struct addr *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* An address as wire_get_addr leaves it: a known family, pad and unused IP
 * bytes zero (so addresses compare with memcmp). */
static void check_addr(const struct addr *a)
{
    static const uint8_t zero[16];
    if (a->family != ADDR_V4 && a->family != ADDR_V6)
        fail("decoded an address of no family");
    if (a->pad != 0 || (a->family == ADDR_V4 && memcmp(a->ip + 4, zero, 12) != 0))
        fail("decoded address has non-zero padding");
}

static void check_same_bytes(const uint8_t *enc, size_t n, const uint8_t *p, size_t len)
{
    if (n != len || memcmp(enc, p, len) != 0)
        fail("re-encoding differs from the input");
}

static void fuzz_hello(const uint8_t *p, size_t len)
{
    struct addr a, b;

    if (net_hello_decode(p, len, &a) != 0)
        return;
    check_addr(&a);
    if (a.port == 0 || addr_is_unspecified(&a))
        fail("HELLO decoded port 0 or an unspecified IP");
    size_t n = net_hello_encode(&a, enc1, sizeof(enc1));
    if (n == 0)
        fail("a decoded HELLO does not encode");
    if (net_hello_decode(enc1, n, &b) != 0)
        fail("a re-encoded HELLO does not decode");
    if (!addr_same(&a, &b))
        fail("HELLO differs after a round trip");
    check_same_bytes(enc1, n, p, len);
}

static void fuzz_lookup_req(const uint8_t *p, size_t len)
{
    struct id k1, k2;

    if (ctl_lookup_req_decode(p, len, &k1) != 0)
        return;
    size_t n = ctl_lookup_req_encode(&k1, enc1, sizeof(enc1));
    if (n == 0)
        fail("a decoded lookup request does not encode");
    if (ctl_lookup_req_decode(enc1, n, &k2) != 0)
        fail("a re-encoded lookup request does not decode");
    if (!id_eq(&k1, &k2))
        fail("lookup request differs after a round trip");
    check_same_bytes(enc1, n, p, len);
}

static void fuzz_lookup_reply(const uint8_t *p, size_t len)
{
    struct ctl_lookup_reply r1, r2;

    if (ctl_lookup_reply_decode(p, len, &r1) != 0)
        return;
    if (r1.status > 0 || r1.status < -4095 || r1.iterative > 1)
        fail("lookup reply decoded a status or flag out of range");
    check_addr(&r1.addr);
    size_t n = ctl_lookup_reply_encode(&r1, enc1, sizeof(enc1));
    if (n == 0)
        fail("a decoded lookup reply does not encode");
    if (ctl_lookup_reply_decode(enc1, n, &r2) != 0)
        fail("a re-encoded lookup reply does not decode");
    if (r1.status != r2.status || r1.hops != r2.hops || r1.iterative != r2.iterative ||
        r1.elapsed_us != r2.elapsed_us || !id_eq(&r1.id, &r2.id) || !addr_same(&r1.addr, &r2.addr))
        fail("lookup reply differs after a round trip");
    check_same_bytes(enc1, n, p, len);
}

/* Is there a control character at s[i]? Returns its length in bytes, or
 * 0: C0 and DEL, and C1 (U+0080..U+009F) spelt in UTF-8 as C2 80..C2 9F. */
static size_t control_at(const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f)
        return 1;
    if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
        (unsigned char)s[i + 1] <= 0x9f)
        return 2;
    return 0;
}

/* Is the payload byte text[i] part of a control character (as above)? */
static bool control_byte(const uint8_t *text, size_t len, size_t i)
{
    if (control_at((const char *)text, len, i))
        return true;
    return text[i] >= 0x80 && text[i] <= 0x9f && i > 0 && text[i - 1] == 0xc2;
}

static void check_error_text(const char *msg, size_t msg_size, const uint8_t *text, size_t len)
{
    size_t n = strnlen(msg, msg_size);

    if (n == msg_size)
        fail("error message is not NUL-terminated within msg_size");
    if (n != (len < msg_size ? len : msg_size - 1))
        fail("error message is not the payload's text cut to msg_size - 1 bytes");
    for (size_t i = 0; i < n; i++)
        if (control_at(msg, n, i))
            fail("error message contains a control character");
    /* Apart from control characters replaced by '?', the text is the
     * payload's. */
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)msg[i] != text[i] && !(msg[i] == '?' && control_byte(text, len, i)))
            fail("error message differs from the payload's text");
}

static void fuzz_error(const uint8_t *p, size_t len, size_t msg_size)
{
    /* Exactly msg_size bytes, so that ASan reports a write past them. */
    char *m1 = malloc(msg_size), *m2 = malloc(msg_size);
    int32_t e1, e2;

    if (msg_size && (!m1 || !m2))
        fail("out of memory");
    if (ctl_error_decode(p, len, &e1, m1, msg_size) != 0)
        goto out;
    if (e1 > 0 || e1 < -4095)
        fail("error decoded an errno out of range");
    if (len < 4 || len - 4 > CTL_ERROR_MAX)
        fail("error decoded a payload of a bad length");
    if (msg_size == 0)
        goto out; /* nothing was copied */
    check_error_text(m1, msg_size, p + 4, len - 4);

    size_t n = ctl_error_encode(e1, m1, enc1, sizeof(enc1));
    if (n == 0)
        fail("a decoded error does not encode");
    if (n != 4 + strlen(m1) || memcmp(enc1, p, 4) != 0)
        fail("re-encoded error has the wrong length or errno");
    if (ctl_error_decode(enc1, n, &e2, m2, msg_size) != 0)
        fail("a re-encoded error does not decode");
    if (e1 != e2 || strcmp(m1, m2) != 0)
        fail("error differs after a round trip");
    size_t n2 = ctl_error_encode(e2, m2, enc2, sizeof(enc2));
    if (n2 != n || memcmp(enc1, enc2, n) != 0)
        fail("re-encoding an error is not stable");
out:
    free(m1);
    free(m2);
}

/* ---- block requests (1210..1213) and their reply ----
 * KV_PUT (1214) is a bare kv record: fuzz_block's kv_parse covers it. */

static const uint8_t SENTINEL = 0xa5;

/* Was the object left as the harness filled it (all SENTINEL)? */
static bool untouched(const void *obj, size_t n)
{
    const uint8_t *b = obj;
    for (size_t i = 0; i < n; i++)
        if (b[i] != SENTINEL)
            return false;
    return true;
}

/* A heap block of exactly n bytes (1 for n == 0), so that ASan reports an
 * encoder writing past the length it returns. */
static uint8_t *exact(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        fail("out of memory");
    return b;
}

/* The encoder's cap edge: with cap n the encoding must be n bytes, with n -
 * 1 it must be refused (0). enc(ctx, buf, cap) is the encoder. */
static uint8_t *encode_exact(size_t (*enc)(const void *ctx, uint8_t *buf, size_t cap),
                             const void *ctx, size_t n, const char *what)
{
    uint8_t *b = exact(n);
    if (enc(ctx, b, n) != n) {
        fprintf(stderr, "fuzz_net_msg: %s: ", what);
        fail("a decoded value does not encode to the payload's length");
    }
    if (n > 0) {
        uint8_t *s = exact(n - 1);
        if (enc(ctx, s, n - 1) != 0) {
            fprintf(stderr, "fuzz_net_msg: %s: ", what);
            fail("an encoder wrote into a buffer one byte too small");
        }
        free(s);
    }
    return b;
}

/* ctl_bs_reply: i32 status | key [32] | u8 copies | u64 version | u16 n
 * | reason [n] | u32 length | bytes */
#define BS_REPLY_REASON_OFF (4 + ID_BYTES + 1 + 8 + 2)

static size_t enc_bs_reply(const void *ctx, uint8_t *buf, size_t cap)
{
    return ctl_bs_reply_encode(ctx, buf, cap);
}

static void fuzz_bs_reply(const uint8_t *p, size_t len)
{
    struct ctl_bs_reply r1, r2;

    memset(&r1, SENTINEL, sizeof(r1));
    if (ctl_bs_reply_decode(p, len, &r1) != 0) {
        if (!untouched(&r1, sizeof(r1)))
            fail("a block reply that does not decode was written out");
        return;
    }
    if (r1.status > 0 || r1.status < -9999)
        fail("block reply decoded a status out of range");
    size_t rl = strnlen(r1.reason, sizeof(r1.reason));
    if (rl == sizeof(r1.reason))
        fail("block reply's reason is not NUL-terminated");
    if (len < BS_REPLY_REASON_OFF ||
        rl != ((size_t)p[BS_REPLY_REASON_OFF - 2] << 8 | p[BS_REPLY_REASON_OFF - 1]))
        fail("block reply's reason is not as long as the payload says");
    for (size_t i = 0; i < rl; i++) {
        unsigned char c = (unsigned char)r1.reason[i];
        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && i + 1 < rl && (unsigned char)r1.reason[i + 1] >= 0x80 &&
             (unsigned char)r1.reason[i + 1] <= 0x9f))
            fail("block reply's reason contains a control character");
    }
    for (size_t i = 0; i < rl; i++) {
        uint8_t c = p[BS_REPLY_REASON_OFF + i];
        bool ctl = c < 0x20 || c == 0x7f || c == 0xc2 || (c >= 0x80 && c <= 0x9f);
        if ((uint8_t)r1.reason[i] != c && !(r1.reason[i] == '?' && ctl))
            fail("block reply's reason differs from the payload's");
    }
    size_t boff = BS_REPLY_REASON_OFF + rl + 4;
    if (boff + r1.len != len || (r1.len == 0) != (r1.bytes == NULL) ||
        (r1.len && r1.bytes != p + boff))
        fail("block reply's bytes are not the rest of the payload");

    /* The same bytes, but for the reason's control characters. */
    uint8_t *e1 = encode_exact(enc_bs_reply, &r1, len, "block reply");
    for (size_t i = 0; i < len; i++)
        if (e1[i] != p[i] &&
            !(i >= BS_REPLY_REASON_OFF && i < BS_REPLY_REASON_OFF + rl && e1[i] == '?'))
            fail("block reply re-encodes to other bytes");
    if (ctl_bs_reply_decode(e1, len, &r2) != 0)
        fail("a re-encoded block reply does not decode");
    if (r1.status != r2.status || !id_eq(&r1.key, &r2.key) || r1.copies != r2.copies ||
        r1.version != r2.version || strcmp(r1.reason, r2.reason) != 0 || r1.len != r2.len ||
        (r1.len && memcmp(r1.bytes, r2.bytes, r1.len) != 0))
        fail("block reply differs after a round trip");
    uint8_t *e2 = encode_exact(enc_bs_reply, &r2, len, "block reply");
    if (memcmp(e1, e2, len) != 0)
        fail("re-encoding a block reply is not stable");
    free(e1);
    free(e2);
}

struct put_args {
    struct lease l;
    uint64_t expect;
    struct id key;
    uint8_t type;
    const uint8_t *bytes;
    size_t blen;
};

static size_t enc_block_put(const void *ctx, uint8_t *buf, size_t cap)
{
    const struct put_args *a = ctx;
    return ctl_block_put_encode(&a->key, &a->l, a->bytes, a->blen, buf, cap);
}

static size_t enc_block_get(const void *ctx, uint8_t *buf, size_t cap)
{
    const struct put_args *a = ctx;
    return ctl_block_get_encode(a->type, &a->key, buf, cap);
}

static size_t enc_root_put(const void *ctx, uint8_t *buf, size_t cap)
{
    const struct put_args *a = ctx;
    return ctl_root_put_encode(a->expect, a->bytes, a->blen, buf, cap);
}

static size_t enc_lease(const void *ctx, uint8_t *buf, size_t cap)
{
    const struct put_args *a = ctx;
    return ctl_lease_encode(&a->key, &a->l, buf, cap);
}

/* Decodes with sentinels in every out-parameter; on failure they must be
 * untouched. */
static void fuzz_block_put(const uint8_t *p, size_t len)
{
    struct put_args a, b;

    memset(&a, SENTINEL, sizeof(a));
    if (ctl_block_put_decode(p, len, &a.key, &a.l, &a.bytes, &a.blen) != 0) {
        if (!untouched(&a, sizeof(a)))
            fail("a block put that does not decode was written out");
        if (len > ID_BYTES + LEASE_LEN && len - ID_BYTES - LEASE_LEN <= BLOCK_MAX_STORED)
            fail("a block put of a good length is refused");
        return;
    }
    if (a.blen == 0 || a.blen > BLOCK_MAX_STORED || a.bytes != p + ID_BYTES + LEASE_LEN ||
        a.blen != len - ID_BYTES - LEASE_LEN)
        fail("block put's record is not the rest of the payload");
    uint8_t *e = encode_exact(enc_block_put, &a, len, "block put");
    check_same_bytes(e, len, p, len);
    memset(&b, SENTINEL, sizeof(b));
    if (ctl_block_put_decode(e, len, &b.key, &b.l, &b.bytes, &b.blen) != 0)
        fail("a re-encoded block put does not decode");
    if (memcmp(&a.key, &b.key, sizeof(a.key)) != 0 || memcmp(&a.l, &b.l, sizeof(a.l)) != 0 ||
        a.blen != b.blen || memcmp(a.bytes, b.bytes, a.blen) != 0)
        fail("block put differs after a round trip");
    free(e);
}

static void fuzz_block_get(const uint8_t *p, size_t len)
{
    struct put_args a, b;

    memset(&a, SENTINEL, sizeof(a));
    if (ctl_block_get_decode(p, len, &a.type, &a.key) != 0) {
        if (!untouched(&a, sizeof(a)))
            fail("a block get that does not decode was written out");
        return;
    }
    if (a.type < STORE_CONTENT || a.type > STORE_KV)
        fail("block get decoded an unknown store type");
    uint8_t *e = encode_exact(enc_block_get, &a, len, "block get");
    check_same_bytes(e, len, p, len);
    if (ctl_block_get_decode(e, len, &b.type, &b.key) != 0)
        fail("a re-encoded block get does not decode");
    if (a.type != b.type || !id_eq(&a.key, &b.key))
        fail("block get differs after a round trip");
    free(e);
}

static void fuzz_root_put(const uint8_t *p, size_t len)
{
    struct put_args a, b;

    memset(&a, SENTINEL, sizeof(a));
    if (ctl_root_put_decode(p, len, &a.expect, &a.bytes, &a.blen) != 0) {
        if (!untouched(&a, sizeof(a)))
            fail("a root put that does not decode was written out");
        if (len > 8 && len - 8 <= ROOT_MAX_LEN)
            fail("a root put of a good length is refused");
        return;
    }
    if (a.blen == 0 || a.blen > ROOT_MAX_LEN || a.bytes != p + 8 || a.blen != len - 8)
        fail("root put's record is not the rest of the payload");
    uint8_t *e = encode_exact(enc_root_put, &a, len, "root put");
    check_same_bytes(e, len, p, len);
    if (ctl_root_put_decode(e, len, &b.expect, &b.bytes, &b.blen) != 0)
        fail("a re-encoded root put does not decode");
    if (a.expect != b.expect || a.blen != b.blen || memcmp(a.bytes, b.bytes, a.blen) != 0)
        fail("root put differs after a round trip");
    free(e);
}

static void fuzz_lease_req(const uint8_t *p, size_t len)
{
    struct put_args a, b;

    memset(&a, SENTINEL, sizeof(a));
    if (ctl_lease_decode(p, len, &a.key, &a.l) != 0) {
        if (!untouched(&a, sizeof(a)))
            fail("a lease request that does not decode was written out");
        if (len == ID_BYTES + LEASE_LEN)
            fail("a lease request of the right length is refused");
        return;
    }
    if (len != ID_BYTES + LEASE_LEN)
        fail("a lease request of a wrong length decodes");
    uint8_t *e = encode_exact(enc_lease, &a, len, "lease request");
    check_same_bytes(e, len, p, len);
    if (ctl_lease_decode(e, len, &b.key, &b.l) != 0)
        fail("a re-encoded lease request does not decode");
    if (!id_eq(&a.key, &b.key) || memcmp(&a.l, &b.l, sizeof(a.l)) != 0)
        fail("lease request differs after a round trip");
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t msg_size = 0, skip = 1;

    if (size < 1)
        return 0;
    unsigned sel = data[0] % SEL_N;
    if (sel == SEL_ERROR) {
        if (size < 2)
            return 0;
        /* msg_size: small buffers that cut the message (0..127), the
         * client's CTL_ERROR_MAX + 1, or more than any message needs. */
        uint8_t b = data[1];
        msg_size = b < 0x80 ? b : b < 0xc0 ? CTL_ERROR_MAX + 1 : 4096;
        skip = 2;
    }

    /* An exact copy, so that ASan reports a read past the payload. */
    size_t len = size - skip;
    uint8_t *p = malloc(len);
    if (len && !p)
        fail("out of memory");
    if (len)
        memcpy(p, data + skip, len);
    switch (sel) {
    case SEL_HELLO: fuzz_hello(p, len); break;
    case SEL_LOOKUP_REQ: fuzz_lookup_req(p, len); break;
    case SEL_LOOKUP_REPLY: fuzz_lookup_reply(p, len); break;
    case SEL_ERROR: fuzz_error(p, len, msg_size); break;
    case SEL_BS_REPLY: fuzz_bs_reply(p, len); break;
    case SEL_BLOCK_PUT: fuzz_block_put(p, len); break;
    case SEL_BLOCK_GET: fuzz_block_get(p, len); break;
    case SEL_ROOT_PUT: fuzz_root_put(p, len); break;
    default: fuzz_lease_req(p, len); break;
    }
    if (sel >= SEL_BS_REPLY && len && memcmp(p, data + skip, len) != 0)
        fail("a decoder wrote into its input");
    free(p);
    return 0;
}
