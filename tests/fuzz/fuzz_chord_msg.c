/* fuzz_chord_msg.c — libFuzzer harness for the chord message codec
 * (chord/msg.c), the first code to see a peer's bytes.
 *
 * For any input: decoding must not crash or read out of bounds. When the
 * input decodes, the message must encode again, the encoding must decode to
 * the same message, and encoding that message must give the same bytes
 * (decode -> encode -> decode is the identity). Beyond that, the encoding
 * must equal the input itself, except for frame flag bits the codec does
 * not define (which it ignores and does not re-encode): a frame that
 * decodes has exactly one spelling.
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

#include "chord/msg.h"

/* The largest frame the codec can produce or accept. */
#define BUF_MAX (FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD)

static uint8_t enc1[BUF_MAX], enc2[BUF_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool peer_eq(const struct chord_peer *a, const struct chord_peer *b)
{
    return id_eq(&a->id, &b->id) && memcmp(&a->addr, &b->addr, sizeof(a->addr)) == 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_chord_msg: %s\n", what);
    abort();
}

/* Every field decode sets; peers past npeers are not part of the value. */
static void check_msg_equal(const struct chord_msg *a, const struct chord_msg *b)
{
    if (a->type != b->type || a->reply != b->reply || a->request_id != b->request_id ||
        a->flags != b->flags)
        fail("header fields differ after a round trip");
    if (!id_eq(&a->dst, &b->dst) || !peer_eq(&a->src, &b->src))
        fail("dst or src differs after a round trip");
    if (!id_eq(&a->key, &b->key) || a->has_peer != b->has_peer || !peer_eq(&a->peer, &b->peer) ||
        a->hops != b->hops || a->app_type != b->app_type || a->done != b->done)
        fail("body fields differ after a round trip");
    if (a->npeers != b->npeers || a->npeers > CHORD_SUCC_MAX)
        fail("npeers differs after a round trip");
    for (unsigned i = 0; i < a->npeers; i++)
        if (!peer_eq(&a->peers[i], &b->peers[i]))
            fail("a peer differs after a round trip");
    if (a->payload_len != b->payload_len || a->payload_len > CHORD_ROUTE_MAX ||
        (a->payload_len && memcmp(a->payload, b->payload, a->payload_len) != 0))
        fail("payload differs after a round trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chord_msg m1, m2;

    if (chord_msg_decode(data, size, &m1) != 0)
        return 0;

    /* A ROUTE payload must lie inside the input. */
    if (m1.payload_len &&
        (m1.payload < data || m1.payload_len > size || m1.payload > data + size - m1.payload_len))
        fail("payload points outside the input");

    size_t n1 = chord_msg_encode(&m1, enc1, sizeof(enc1));
    if (n1 == 0)
        fail("a decoded message does not encode");
    if (n1 > chord_msg_size_bound(&m1))
        fail("encoding longer than chord_msg_size_bound");
    if (chord_msg_decode(enc1, n1, &m2) != 0)
        fail("a re-encoded message does not decode");
    check_msg_equal(&m1, &m2);

    size_t n2 = chord_msg_encode(&m2, enc2, sizeof(enc2));
    if (n2 != n1 || memcmp(enc1, enc2, n1) != 0)
        fail("re-encoding is not stable");

    /* One spelling per message: only undefined frame flag bits may differ. */
    if (n1 != size)
        fail("re-encoding has a different length from the input");
    for (size_t i = 0; i < size; i++) {
        uint8_t mask = i == 5 ? FRAME_F_REPLY : 0xff; /* byte 5: frame flags */
        if ((enc1[i] ^ data[i]) & mask)
            fail("re-encoding differs from the input");
    }
    return 0;
}
