/* file.c — the manifest tree of a file: its FILE block and INDIRECT
 * blocks (block.h; docs/formats.md has the tables).
 *
 * The tree has one shape per (size, chunk size): levels are added only
 * while a level has more than BLOCK_FILE_FANOUT keys, and every block
 * except the last of each level is full. The parsers hold a manifest to
 * that shape, so the number of keys it claims always matches its size.
 */
#include "blockstore/block.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

/* Keys are handed over as arrays of struct id and written as 32-byte runs. */
_Static_assert(sizeof(struct id) == ID_BYTES, "struct id has padding");

#define FANOUT ((uint32_t)BLOCK_FILE_FANOUT)

/* ceil(a / b) for b > 0, without overflow. */
static uint64_t div_ceil(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* Whether a FILE block of levels with nkeys (<= FANOUT) keys is the one the
 * builder makes for a file of chunks chunks. */
static bool manifest_count_ok(uint64_t chunks, uint8_t levels, uint32_t nkeys)
{
    uint64_t span = 1; /* chunks under one top-level key: FANOUT^levels < 2^53 */

    if (levels == 0)
        return chunks == nkeys;
    for (uint8_t i = 0; i < levels; i++)
        span *= FANOUT;
    /* A level is added only above one of more than FANOUT keys, so the
     * level under the top one holds more than FANOUT keys. */
    return chunks > span && nkeys == div_ceil(chunks, span);
}

int file_manifest_parse(const void *payload, size_t len, struct file_manifest *out)
{
    struct wire_reader r;
    uint64_t size;
    uint32_t chunk_size, nkeys;
    uint8_t levels, z0, z1, z2;
    const uint8_t *keys;

    wire_reader_init(&r, payload, len);
    size = wire_get_u64(&r);
    chunk_size = wire_get_u32(&r);
    levels = wire_get_u8(&r);
    z0 = wire_get_u8(&r);
    z1 = wire_get_u8(&r);
    z2 = wire_get_u8(&r);
    nkeys = wire_get_u32(&r);
    if (!wire_reader_ok(&r) || chunk_size == 0 || chunk_size > BLOCK_MAX_DATA ||
        levels > BLOCK_FILE_MAX_LEVELS || z0 || z1 || z2 || nkeys > FANOUT)
        return -EBADMSG;
    keys = wire_get_view(&r, (size_t)nkeys * ID_BYTES);
    if (!wire_reader_done(&r) || !manifest_count_ok(div_ceil(size, chunk_size), levels, nkeys))
        return -EBADMSG;
    out->size = size;
    out->chunk_size = chunk_size;
    out->levels = levels;
    out->nkeys = nkeys;
    out->keys = keys;
    return 0;
}

int file_indirect_parse(const void *payload, size_t len, uint8_t *level, uint32_t *nkeys,
                        const uint8_t **keys)
{
    struct wire_reader r;
    uint8_t lv, z0, z1, z2;
    uint32_t n;
    const uint8_t *k;

    wire_reader_init(&r, payload, len);
    lv = wire_get_u8(&r);
    z0 = wire_get_u8(&r);
    z1 = wire_get_u8(&r);
    z2 = wire_get_u8(&r);
    n = wire_get_u32(&r);
    if (!wire_reader_ok(&r) || lv == 0 || lv > BLOCK_FILE_MAX_LEVELS || z0 || z1 || z2 || n == 0 ||
        n > FANOUT)
        return -EBADMSG;
    k = wire_get_view(&r, (size_t)n * ID_BYTES);
    if (!wire_reader_done(&r))
        return -EBADMSG;
    *level = lv;
    *nkeys = n;
    *keys = k;
    return 0;
}

/* Writes an INDIRECT payload into buf (BLOCK_MAX_DATA bytes). */
static size_t indirect_payload(uint8_t *buf, uint8_t level, const struct id *keys, size_t n)
{
    struct wire_writer w;
    wire_writer_init(&w, buf, BLOCK_MAX_DATA);
    wire_put_u8(&w, level);
    wire_put_u8(&w, 0);
    wire_put_u8(&w, 0);
    wire_put_u8(&w, 0);
    wire_put_u32(&w, (uint32_t)n);
    wire_put_bytes(&w, keys, n * ID_BYTES);
    return w.len; /* n <= FANOUT always fits */
}

/* Writes a FILE payload into buf (BLOCK_MAX_DATA bytes). */
static size_t file_payload(uint8_t *buf, uint64_t size, uint32_t chunk_size, uint8_t levels,
                           const struct id *keys, size_t n)
{
    struct wire_writer w;
    wire_writer_init(&w, buf, BLOCK_MAX_DATA);
    wire_put_u64(&w, size);
    wire_put_u32(&w, chunk_size);
    wire_put_u8(&w, levels);
    wire_put_u8(&w, 0);
    wire_put_u8(&w, 0);
    wire_put_u8(&w, 0);
    wire_put_u32(&w, (uint32_t)n);
    wire_put_bytes(&w, keys, n * ID_BYTES);
    return w.len;
}

int file_manifest_build(uint64_t size, uint32_t chunk_size, const struct id *keys, size_t n,
                        file_emit_fn emit, void *ctx, struct id *file_key)
{
    uint8_t *payload = NULL, *block = NULL;
    struct id *level_keys = NULL, *next, fk;
    const struct id *cur = keys;
    size_t count = n, blen, plen;
    uint8_t levels = 0;
    int rc;

    if (chunk_size == 0 || chunk_size > BLOCK_MAX_DATA || div_ceil(size, chunk_size) != n)
        return -EINVAL;
    /* Count the levels first, so that a file too large emits nothing. */
    for (size_t c = n; c > FANOUT; c = (size_t)div_ceil(c, FANOUT))
        if (++levels > BLOCK_FILE_MAX_LEVELS)
            return -EMSGSIZE;

    payload = malloc(BLOCK_MAX_DATA);
    block = malloc(BLOCK_MAX_STORED);
    if (!payload || !block) {
        rc = -ENOMEM;
        goto out;
    }
    /* Bottom-up: each pass groups the keys of one level into INDIRECT
     * blocks and continues with their keys, so children are emitted before
     * the blocks that name them. */
    for (uint8_t level = 1; level <= levels; level++) {
        size_t groups = (size_t)div_ceil(count, FANOUT);
        next = malloc(groups * sizeof(*next));
        if (!next) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t g = 0; g < groups; g++) {
            size_t first = g * FANOUT, k = count - first < FANOUT ? count - first : FANOUT;
            plen = indirect_payload(payload, level, cur + first, k);
            rc = block_encode(BLOCK_KIND_INDIRECT, payload, plen, true, block, &blen, &next[g]);
            if (rc == 0)
                rc = emit(ctx, &next[g], block, blen);
            if (rc < 0) {
                free(next);
                goto out;
            }
        }
        free(level_keys);
        level_keys = next;
        cur = next;
        count = groups;
    }
    plen = file_payload(payload, size, chunk_size, levels, cur, count);
    rc = block_encode(BLOCK_KIND_FILE, payload, plen, true, block, &blen, &fk);
    if (rc == 0)
        rc = emit(ctx, &fk, block, blen);
    if (rc == 0)
        *file_key = fk;
out:
    free(level_keys);
    free(block);
    free(payload);
    return rc;
}
