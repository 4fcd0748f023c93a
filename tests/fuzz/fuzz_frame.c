/* fuzz_frame.c — libFuzzer harness for the frame header codec
 * (common/frame.c), which every byte from a peer or a control client meets
 * first.
 *
 * For any input:
 *  - frame_header_decode must not crash or read past the input, and its
 *    result must agree with a reference parse of the 20 bytes written out
 *    from the layout in frame.h (the error code included);
 *  - when it decodes, version is FRAME_VERSION, length is at most
 *    FRAME_MAX_PAYLOAD, encoding the header gives back the first 20 input
 *    bytes, and decoding that encoding gives the same header;
 *  - a frame splitter over the whole input, the loop of net/stream.c (decode
 *    a header; stop on an error or when fewer than 20 + length bytes are
 *    left; else consume 20 + length), always ends and only touches bytes
 *    inside the input.
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

#include "common/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_frame: %s\n", what);
    abort();
}

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static bool header_eq(const struct frame_header *a, const struct frame_header *b)
{
    return a->version == b->version && a->flags == b->flags && a->type == b->type &&
           a->request_id == b->request_id && a->length == b->length;
}

/* What frame_header_decode must return for these bytes, from frame.h. */
static int reference_decode(const uint8_t *p, size_t len, struct frame_header *out)
{
    if (len < FRAME_HEADER_SIZE)
        return FRAME_ERR_SHORT;
    if (be(p, 4) != FRAME_MAGIC)
        return FRAME_ERR_MAGIC;
    out->version = p[4];
    out->flags = p[5];
    out->type = (uint16_t)be(p + 6, 2);
    out->request_id = be(p + 8, 8);
    out->length = (uint32_t)be(p + 16, 4);
    if (out->version != FRAME_VERSION)
        return FRAME_ERR_VERSION;
    if (out->length > FRAME_MAX_PAYLOAD)
        return FRAME_ERR_TOO_BIG;
    return 0;
}

/* Decodes one header at p, checks it, and returns decode's result. */
static int check_header(const uint8_t *p, size_t len, struct frame_header *h)
{
    struct frame_header ref, h2;
    uint8_t enc[FRAME_HEADER_SIZE + 1];
    int rc = frame_header_decode(p, len, h);

    if (rc != reference_decode(p, len, &ref))
        fail("decode's result differs from the reference parse");
    if (strcmp(frame_strerror(rc), "unknown frame error") == 0)
        fail("decode returned an undocumented error");
    if (rc != 0)
        return rc;
    if (!header_eq(h, &ref))
        fail("decoded header differs from the reference parse");
    if (h->version != FRAME_VERSION)
        fail("decoded a version other than FRAME_VERSION");
    if (h->length > FRAME_MAX_PAYLOAD)
        fail("decoded a length above FRAME_MAX_PAYLOAD");

    enc[FRAME_HEADER_SIZE] = 0xee;
    frame_header_encode(h, enc);
    if (enc[FRAME_HEADER_SIZE] != 0xee)
        fail("encode wrote more than FRAME_HEADER_SIZE bytes");
    if (memcmp(enc, p, FRAME_HEADER_SIZE) != 0)
        fail("encoding differs from the input header");
    if (frame_header_decode(enc, FRAME_HEADER_SIZE, &h2) != 0)
        fail("an encoded header does not decode");
    if (!header_eq(h, &h2))
        fail("header differs after a round trip");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct frame_header h;
    size_t off = 0, frames = 0;

    /* As net/stream.c does: the header first, then the frame when whole.
     * libFuzzer's input is a heap block of exactly size bytes, so ASan
     * reports any read past it. */
    while (off < size) {
        size_t left = size - off;

        if (check_header(data + off, left, &h) != 0)
            break;
        size_t total = FRAME_HEADER_SIZE + (size_t)h.length;
        if (total < FRAME_HEADER_SIZE || total > FRAME_HEADER_SIZE + FRAME_MAX_PAYLOAD)
            fail("frame size overflows");
        if (left < total)
            break;
        /* The frame is handed on as [off, off + total): it must be inside
         * the input. */
        volatile uint8_t first = data[off], last = data[off + total - 1];
        (void)first;
        (void)last;
        off += total;
        if (++frames > size / FRAME_HEADER_SIZE)
            fail("the splitter does not advance");
    }
    if (off > size)
        fail("the splitter consumed past the input");
    return 0;
}
