/* fuzz_net_msg.c — libFuzzer harness for the payload codecs of net/: the
 * HELLO a peer sends first (net/hello.c) and the control protocol's
 * messages (net/ctl_codec.c).
 *
 * The first input byte chooses the decoder (its value modulo 4):
 *   0  net_hello_decode          the rest of the input is the payload
 *   1  ctl_lookup_req_decode     the rest of the input is the payload
 *   2  ctl_lookup_reply_decode   the rest of the input is the payload
 *   3  ctl_error_decode          the second byte chooses msg_size (below),
 *                                the rest is the payload
 *
 * For any input, decoding must not crash or read out of bounds (the payload
 * is copied to a heap block of exactly its size, so ASan sees any read past
 * it). When it decodes, the value must encode again, the encoding must
 * decode to the same value, and for HELLO and the lookup messages the
 * encoding must be the payload itself (one spelling per value).
 *
 * ctl_error_decode writes into a heap block of exactly msg_size bytes; the
 * message must be NUL-terminated inside it, no longer than the payload's
 * text, free of control characters (C0, DEL, and C1 as UTF-8), and equal to
 * the payload's text apart from those.
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

#include "net/control.h"
#include "net/peers.h"

enum { SEL_HELLO, SEL_LOOKUP_REQ, SEL_LOOKUP_REPLY, SEL_ERROR, SEL_N };

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
    default: fuzz_error(p, len, msg_size); break;
    }
    free(p);
    return 0;
}
