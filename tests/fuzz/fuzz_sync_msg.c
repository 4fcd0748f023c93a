/* fuzz_sync_msg.c — libFuzzer harness for the maintenance codecs of
 * blockstore/sync_msg.c (SYNC_DIGEST, SYNC_DIGEST_OK, SYNC_KEYS,
 * SYNC_KEYS_OK): what a node reads from a peer during range sync and
 * handoff.
 *
 * The first input byte picks the decoder (its value mod 4, in that order);
 * the rest, copied to a heap block of exactly its size so ASan sees any read
 * past it, is the payload. SYNC_KEYS_OK is decoded for the count its first
 * two bytes announce (the request's count, in a node).
 *
 * Beyond "does not crash": every message that decodes encodes back to the
 * same bytes (each encoding is canonical), and its values are in range.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/sync_msg.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static uint8_t out[SYNC_REPLY_WIRE_MAX];

static void same(const uint8_t *p, size_t len, int rc, size_t olen)
{
    CHECK(rc == 0);
    CHECK(olen == len);
    CHECK(memcmp(out, p, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        return 0;
    memcpy(p, data + 1, len);
    size_t olen = 0;

    switch (data[0] % 4) {
    case 0: {
        struct sync_digest m;
        if (sync_digest_decode(p, len, &m) == 0) {
            CHECK(m.depth <= SYNC_DEPTH_MAX);
            same(p, len, sync_digest_encode(&m, out, sizeof(out), &olen), olen);
        }
        break;
    }
    case 1: {
        struct sync_reply r;
        if (sync_reply_decode(p, len, &r) == 0) {
            CHECK(r.nb <= SYNC_BUCKETS && r.nent <= SYNC_REPLY_MAX);
            for (unsigned i = 0; i < r.nb; i++) {
                CHECK(r.rb[i].mode <= SYNC_MODE_DESCEND);
                CHECK(r.rb[i].n <= SYNC_LIST_MAX);
                CHECK(r.rb[i].first + (size_t)r.rb[i].n <= r.nent);
                CHECK(i == 0 || r.rb[i].bucket > r.rb[i - 1].bucket);
            }
            for (uint32_t i = 0; i < r.nent; i++)
                CHECK(r.ent[i].type >= 1 && r.ent[i].type <= 3 && !(r.ent[i].flags & ~SYNC_F_ALL));
            same(p, len, sync_reply_encode(&r, out, sizeof(out), &olen), olen);
            sync_reply_release(&r);
        }
        break;
    }
    case 2: {
        static struct sync_entry e[SYNC_KEYS_MAX];
        size_t n;
        if (sync_keys_decode(p, len, e, &n) == 0) {
            CHECK(n >= 1 && n <= SYNC_KEYS_MAX);
            same(p, len, sync_keys_encode(e, n, out, sizeof(out), &olen), olen);
        }
        break;
    }
    case 3: {
        static struct sync_entry e[SYNC_KEYS_MAX];
        size_t n = len >= 2 ? (size_t)(p[0] << 8 | p[1]) : 0;
        if (n <= SYNC_KEYS_MAX && sync_keys_ok_decode(p, len, e, n) == 0)
            same(p, len, sync_keys_ok_encode(e, n, out, sizeof(out), &olen), olen);
        break;
    }
    }
    free(p);
    return 0;
}
