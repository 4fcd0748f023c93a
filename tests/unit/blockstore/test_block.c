/* test_block.c — the record formats of blockstore/block.c: content blocks
 * (raw and zstd), root blocks, kv records and leases. Round trips, the
 * layouts of block.h byte by byte, size limits, and rejection of every
 * corruption. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "blockstore/block.h"
#include "common/hash.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

/* xorshift64*: reproducible "incompressible" bytes. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (uint8_t)((x * 0x2545f4914f6cdd1dull) >> 56);
    }
}

static void test_key(uint8_t tag, struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    memset(seed, tag, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, k), 0);
}

/* ---- content blocks ---- */

enum pattern { ZEROS, TEXT, RANDOM };

static void fill(uint8_t *p, size_t n, enum pattern pat)
{
    static const char words[] = "the quick brown fox jumps over the lazy dog; ";
    switch (pat) {
    case ZEROS: memset(p, 0, n); break;
    case TEXT:
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)words[i % (sizeof(words) - 1)];
        break;
    case RANDOM: fill_random(p, n, n); break;
    }
}

struct buffers {
    uint8_t *data, *block, *out;
};

static int setup_buffers(void **state)
{
    struct buffers *b = calloc(1, sizeof(*b));
    if (!b)
        return -1;
    b->data = malloc(BLOCK_MAX_DATA + 1);
    b->block = malloc(BLOCK_MAX_STORED + 64);
    b->out = malloc(BLOCK_MAX_DATA + 64);
    if (!b->data || !b->block || !b->out)
        return -1;
    *state = b;
    return 0;
}

static int teardown_buffers(void **state)
{
    struct buffers *b = *state;
    free(b->data);
    free(b->block);
    free(b->out);
    free(b);
    return 0;
}

static void test_content_round_trip(void **state)
{
    static const struct {
        uint8_t kind;
        size_t len;
        enum pattern pat;
        bool compress;
        uint8_t codec; /* expected */
    } cases[] = {
        {BLOCK_KIND_DATA, 0, ZEROS, true, BLOCK_CODEC_RAW},
        {BLOCK_KIND_DATA, 0, ZEROS, false, BLOCK_CODEC_RAW},
        {BLOCK_KIND_DATA, 1, ZEROS, true, BLOCK_CODEC_RAW},
        {BLOCK_KIND_DATA, 15, ZEROS, true, BLOCK_CODEC_RAW}, /* a frame is longer */
        {BLOCK_KIND_DATA, 100, ZEROS, true, BLOCK_CODEC_ZSTD},
        {BLOCK_KIND_DATA, 100, ZEROS, false, BLOCK_CODEC_RAW},
        {BLOCK_KIND_DATA, 4096, TEXT, true, BLOCK_CODEC_ZSTD},
        {BLOCK_KIND_DATA, 4096, RANDOM, true, BLOCK_CODEC_RAW},
        {BLOCK_KIND_FILE, 1000, TEXT, true, BLOCK_CODEC_ZSTD},
        {BLOCK_KIND_INDIRECT, 999, RANDOM, false, BLOCK_CODEC_RAW},
        {BLOCK_KIND_FS_FIRST, 50000, TEXT, true, BLOCK_CODEC_ZSTD},
        {BLOCK_KIND_FS_LAST, 3, TEXT, false, BLOCK_CODEC_RAW},
        {BLOCK_KIND_DATA, BLOCK_MAX_DATA, ZEROS, true, BLOCK_CODEC_ZSTD},
        {BLOCK_KIND_DATA, BLOCK_MAX_DATA, TEXT, false, BLOCK_CODEC_RAW},
        {BLOCK_KIND_DATA, BLOCK_MAX_DATA, RANDOM, true, BLOCK_CODEC_RAW},
    };
    struct buffers *b = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        size_t len = cases[i].len, blen = 0, olen = 0;
        struct block_info bi;
        struct id key, h;

        fill(b->data, len, cases[i].pat);
        assert_int_equal(
            block_encode(cases[i].kind, b->data, len, cases[i].compress, b->block, &blen, &key), 0);
        assert_true(blen <= BLOCK_MAX_STORED);
        hash_sha256(&h, b->block, blen);
        assert_memory_equal(h.b, key.b, ID_BYTES);

        /* the header of block.h */
        assert_int_equal(b->block[0], BLOCK_FORMAT);
        assert_int_equal(b->block[1], cases[i].kind);
        assert_int_equal(b->block[2], cases[i].codec);
        assert_int_equal(b->block[3], 0);
        assert_int_equal(be(b->block + 4, 4), len);
        if (cases[i].codec == BLOCK_CODEC_RAW) {
            assert_int_equal(blen, BLOCK_HDR_LEN + len);
            if (len)
                assert_memory_equal(b->block + BLOCK_HDR_LEN, b->data, len);
        } else {
            assert_true(blen - BLOCK_HDR_LEN < len);
        }

        assert_int_equal(block_parse(b->block, blen, &bi), 0);
        assert_int_equal(bi.kind, cases[i].kind);
        assert_int_equal(bi.codec, cases[i].codec);
        assert_int_equal(bi.raw_len, len);
        assert_ptr_equal(bi.payload, b->block + BLOCK_HDR_LEN);
        assert_int_equal(bi.payload_len, blen - BLOCK_HDR_LEN);

        assert_int_equal(block_verify(&key, b->block, blen), 0);
        memset(b->out, 0xee, len + 1);
        assert_int_equal(block_decode(b->block, blen, b->out, len, &olen), 0);
        assert_int_equal(olen, len);
        if (len)
            assert_memory_equal(b->out, b->data, len);
        if (len > 0)
            assert_int_equal(block_decode(b->block, blen, b->out, len - 1, &olen), -ENOBUFS);
    }
    /* an empty block may be decoded into nothing */
    size_t blen, olen = 99;
    struct id key;
    assert_int_equal(block_encode(BLOCK_KIND_DATA, NULL, 0, true, b->block, &blen, &key), 0);
    assert_int_equal(block_decode(b->block, blen, NULL, 0, &olen), 0);
    assert_int_equal(olen, 0);
}

/* block_key computes the key block_encode gave, and refuses what
 * block_verify refuses. */
static void test_content_block_key(void **state)
{
    static uint8_t data[5000], out[BLOCK_MAX_STORED];
    struct id key, got, untouched;
    size_t len;
    (void)state;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i % 7);
    for (int compress = 0; compress <= 1; compress++) {
        assert_int_equal(block_encode(BLOCK_KIND_DATA, data, sizeof(data), compress, out, &len,
                                      &key), 0);
        assert_int_equal(block_key(out, len, &got), 0);
        assert_true(id_eq(&got, &key));
        memset(&untouched, 0x5a, sizeof(untouched));
        got = untouched;
        out[0] ^= 0xff; /* the format byte */
        assert_int_equal(block_key(out, len, &got), -EBADMSG);
        assert_true(id_eq(&got, &untouched));
        out[0] ^= 0xff;
    }
}

static void test_content_limits(void **state)
{
    static const uint8_t bad_kinds[] = {0, 4, 15, 64, 0x7f, BLOCK_KIND_ROOT, BLOCK_KIND_KV, 0xff};
    struct buffers *b = *state;
    size_t blen = 12345;
    struct id key, before;

    memset(b->data, 0, BLOCK_MAX_DATA + 1);
    memset(&key, 0x42, sizeof(key));
    before = key;
    assert_int_equal(
        block_encode(BLOCK_KIND_DATA, b->data, BLOCK_MAX_DATA + 1, true, b->block, &blen, &key),
        -EMSGSIZE);
    assert_int_equal(
        block_encode(BLOCK_KIND_DATA, b->data, BLOCK_MAX_DATA + 1, false, b->block, &blen, &key),
        -EMSGSIZE);
    assert_int_equal(blen, 12345);
    assert_memory_equal(key.b, before.b, ID_BYTES);
    for (size_t i = 0; i < N_ELEMS(bad_kinds); i++)
        assert_int_equal(block_encode(bad_kinds[i], b->data, 10, false, b->block, &blen, &key),
                         -EINVAL);

    /* BLOCK_MAX_STORED is the largest block; one more byte is refused */
    fill_random(b->data, BLOCK_MAX_DATA, 7);
    assert_int_equal(
        block_encode(BLOCK_KIND_DATA, b->data, BLOCK_MAX_DATA, true, b->block, &blen, &key), 0);
    assert_int_equal(blen, BLOCK_MAX_STORED);
    assert_int_equal(block_verify(&key, b->block, blen), 0);
    b->block[blen] = 0;
    struct block_info bi;
    assert_int_equal(block_parse(b->block, blen + 1, &bi), -EBADMSG);
    /* a raw length above the maximum, whatever the codec */
    put_be(b->block + 4, 4, BLOCK_MAX_DATA + 1);
    assert_int_equal(block_parse(b->block, blen + 1, &bi), -EBADMSG);
    b->block[2] = BLOCK_CODEC_ZSTD;
    assert_int_equal(block_parse(b->block, blen, &bi), -EBADMSG);
}

/* zstd is kept exactly when it saves at least 1/16: checked against
 * ZSTD_compress itself over inputs from incompressible to compressible. */
static void test_content_compress_threshold(void **state)
{
    struct buffers *b = *state;
    uint8_t *z = malloc(ZSTD_compressBound(BLOCK_MAX_DATA));
    size_t seen_raw = 0, seen_zstd = 0;
    assert_non_null(z);

    for (size_t len = 64; len <= BLOCK_MAX_DATA; len *= 4) {
        for (unsigned zeros16 = 0; zeros16 <= 16; zeros16++) {
            size_t blen, nz = len * zeros16 / 16, c;
            struct id key;
            fill_random(b->data, len, len + zeros16);
            memset(b->data, 0, nz);
            assert_int_equal(
                block_encode(BLOCK_KIND_DATA, b->data, len, true, b->block, &blen, &key), 0);
            c = ZSTD_compress(z, ZSTD_compressBound(len), b->data, len, 1);
            assert_false(ZSTD_isError(c));
            bool worth = 16 * (len - (c < len ? c : len)) >= len && c < len;
            if (worth) {
                assert_int_equal(b->block[2], BLOCK_CODEC_ZSTD);
                assert_int_equal(blen, BLOCK_HDR_LEN + c);
                seen_zstd++;
            } else {
                assert_int_equal(b->block[2], BLOCK_CODEC_RAW);
                assert_int_equal(blen, BLOCK_HDR_LEN + len);
                seen_raw++;
            }
        }
    }
    assert_true(seen_raw > 0 && seen_zstd > 0);
    free(z);
}

struct mutation {
    const char *what;
    size_t off;
    uint8_t val;
};

static void test_content_parse_rejects(void **state)
{
    static const struct mutation header[] = {
        {"format 0", 0, 0},
        {"format 2", 0, 2},
        {"kind 0", 1, 0},
        {"kind 4", 1, 4},
        {"kind 15", 1, 15},
        {"kind 64", 1, 64},
        {"kind root", 1, BLOCK_KIND_ROOT},
        {"kind kv", 1, BLOCK_KIND_KV},
        {"codec 2", 2, 2},
        {"codec 255", 2, 255},
        {"reserved 1", 3, 1},
        {"reserved 0x80", 3, 0x80},
        {"raw length high byte", 4, 1},
        {"raw length low byte", 7, 41},
    };
    struct buffers *b = *state;
    struct block_info bi;
    size_t rlen, zlen;
    uint8_t raw[BLOCK_HDR_LEN + 40], zb[BLOCK_HDR_LEN + 200], copy[sizeof(zb) + 1];
    struct id key;

    fill(b->data, 40, TEXT);
    assert_int_equal(block_encode(BLOCK_KIND_DATA, b->data, 40, false, b->block, &rlen, &key), 0);
    assert_int_equal(rlen, sizeof(raw));
    memcpy(raw, b->block, rlen);
    memset(b->data, 0, 1000);
    assert_int_equal(block_encode(BLOCK_KIND_DATA, b->data, 1000, true, b->block, &zlen, &key), 0);
    assert_int_equal(b->block[2], BLOCK_CODEC_ZSTD);
    assert_true(zlen <= sizeof(zb));
    memcpy(zb, b->block, zlen);

    for (size_t i = 0; i < N_ELEMS(header); i++) {
        memcpy(copy, raw, rlen);
        copy[header[i].off] = header[i].val;
        assert_int_equal(block_parse(copy, rlen, &bi), -EBADMSG);
    }
    /* a zstd payload as long as its raw length or longer */
    memcpy(copy, zb, zlen);
    put_be(copy + 4, 4, zlen - BLOCK_HDR_LEN);
    assert_int_equal(block_parse(copy, zlen, &bi), -EBADMSG);
    put_be(copy + 4, 4, 0);
    assert_int_equal(block_parse(copy, zlen, &bi), -EBADMSG);
    /* a zstd block with no payload */
    assert_int_equal(block_parse(copy, BLOCK_HDR_LEN, &bi), -EBADMSG);

    /* every truncation, and a trailing byte */
    for (size_t n = 0; n < rlen; n++)
        assert_int_equal(block_parse(raw, n, &bi), -EBADMSG);
    memcpy(copy, raw, rlen);
    copy[rlen] = 0;
    assert_int_equal(block_parse(copy, rlen + 1, &bi), -EBADMSG);
    assert_int_equal(block_parse(raw, rlen, &bi), 0);
}

/* Flipping any bit of a small block, raw or zstd, fails verification. */
static void test_content_every_flip_fails(void **state)
{
    struct buffers *b = *state;
    for (int compress = 0; compress <= 1; compress++) {
        uint8_t blk[BLOCK_HDR_LEN + 300];
        size_t blen, olen;
        struct id key;

        fill(b->data, 300, compress ? ZEROS : TEXT);
        assert_int_equal(
            block_encode(BLOCK_KIND_DATA, b->data, 300, compress, b->block, &blen, &key), 0);
        assert_int_equal(b->block[2], compress ? BLOCK_CODEC_ZSTD : BLOCK_CODEC_RAW);
        memcpy(blk, b->block, blen);
        for (size_t i = 0; i < blen * 8; i++) {
            blk[i / 8] ^= (uint8_t)(1u << (i % 8));
            assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
            /* and decoding the damaged bytes is safe: an error, or exactly
             * the declared length */
            int rc = block_decode(blk, blen, b->out, BLOCK_MAX_DATA, &olen);
            assert_true(rc == -EBADMSG || (rc == 0 && olen == be(blk + 4, 4)));
            blk[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        assert_int_equal(block_verify(&key, blk, blen), 0);
        struct id other = key;
        other.b[31] ^= 1;
        assert_int_equal(block_verify(&other, blk, blen), -EBADMSG);
    }
}

/* Builds a content block around any zstd payload, hashed so that only the
 * frame checks can refuse it. */
static size_t zstd_block(uint8_t *out, uint32_t raw_len, const uint8_t *frame, size_t n,
                         struct id *key)
{
    out[0] = BLOCK_FORMAT;
    out[1] = BLOCK_KIND_DATA;
    out[2] = BLOCK_CODEC_ZSTD;
    out[3] = 0;
    put_be(out + 4, 4, raw_len);
    memcpy(out + BLOCK_HDR_LEN, frame, n);
    hash_sha256(key, out, BLOCK_HDR_LEN + n);
    return BLOCK_HDR_LEN + n;
}

static void test_content_bad_frames(void **state)
{
    struct buffers *b = *state;
    uint8_t frame[2048], blk[4096];
    size_t fn, blen, olen;
    struct id key;
    enum { RAW = 1000 };

    memset(b->data, 'a', RAW);
    fn = ZSTD_compress(frame, sizeof(frame), b->data, RAW, 1);
    assert_false(ZSTD_isError(fn));
    assert_true(2 * fn + 8 < RAW);

    /* the frame as is */
    blen = zstd_block(blk, RAW, frame, fn, &key);
    assert_int_equal(block_verify(&key, blk, blen), 0);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), 0);

    /* a declared raw length other than the frame's */
    blen = zstd_block(blk, RAW + 1, frame, fn, &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW + 1, &olen), -EBADMSG);
    blen = zstd_block(blk, RAW - 1, frame, fn, &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), -EBADMSG);

    /* trailing bytes after the frame */
    memcpy(b->block, frame, fn);
    memset(b->block + fn, 0, 8);
    blen = zstd_block(blk, RAW, b->block, fn + 8, &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), -EBADMSG);

    /* two frames of 500 each (ZSTD_decompress would take both) */
    size_t h1 = ZSTD_compress(b->block, 1024, b->data, RAW / 2, 1);
    size_t h2 = ZSTD_compress(b->block + h1, 1024, b->data, RAW / 2, 1);
    assert_false(ZSTD_isError(h1) || ZSTD_isError(h2));
    blen = zstd_block(blk, RAW, b->block, h1 + h2, &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), -EBADMSG);

    /* a frame that does not declare its size */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    assert_non_null(cc);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)));
    size_t un = ZSTD_compress2(cc, b->block, 1024, b->data, RAW);
    assert_false(ZSTD_isError(un));
    ZSTD_freeCCtx(cc);
    assert_int_equal(ZSTD_getFrameContentSize(b->block, un), ZSTD_CONTENTSIZE_UNKNOWN);
    blen = zstd_block(blk, RAW, b->block, un, &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), -EBADMSG);

    /* a skippable frame: magic 0x184D2A50, length 8 */
    static const uint8_t skip[] = {0x50, 0x2a, 0x4d, 0x18, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    blen = zstd_block(blk, RAW, skip, sizeof(skip), &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), -EBADMSG);

    /* not a frame at all */
    memset(b->block, 0x28, 64);
    blen = zstd_block(blk, RAW, b->block, 64, &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), -EBADMSG);

    /* a frame cut short */
    blen = zstd_block(blk, RAW, frame, fn - 1, &key);
    assert_int_equal(block_verify(&key, blk, blen), -EBADMSG);
    assert_int_equal(block_decode(blk, blen, b->out, RAW, &olen), -EBADMSG);
}

/* ---- root blocks ---- */

/* The signed message of block.h, built here independently of block.c. */
static size_t root_message(uint8_t *m, const struct sig_pub *pub, uint64_t version,
                           const uint8_t *payload, size_t plen)
{
    static const char domain[] = "coopfs root v1"; /* and its NUL */
    struct id key;
    size_t n = 0;
    hash_sha256(&key, pub->b, SIG_PUB_LEN);
    memcpy(m, domain, sizeof(domain));
    n += sizeof(domain);
    memcpy(m + n, key.b, ID_BYTES);
    n += ID_BYTES;
    put_be(m + n, 8, version);
    n += 8;
    put_be(m + n, 2, plen);
    n += 2;
    memcpy(m + n, payload, plen);
    return n + plen;
}

static void test_root_round_trip(void **state)
{
    static const struct {
        uint64_t version;
        size_t plen;
    } cases[] = {
        {1, 0}, {1, 32}, {2, 32}, {1000000, 100}, {UINT64_MAX, 7}, {42, ROOT_MAX_PAYLOAD},
    };
    uint8_t payload[ROOT_MAX_PAYLOAD], blk[ROOT_MAX_LEN], m[2048];
    struct sig_key k;
    (void)state;

    test_key(1, &k);
    fill_random(payload, sizeof(payload), 3);
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        size_t blen = 0, plen = cases[i].plen;
        struct root_info ri;
        struct id key;

        assert_int_equal(root_encode(&k, cases[i].version, payload, plen, blk, &blen), 0);
        assert_int_equal(blen, ROOT_HDR_LEN + plen + SIG_LEN);
        /* the layout of block.h */
        assert_int_equal(blk[0], BLOCK_FORMAT);
        assert_int_equal(blk[1], BLOCK_KIND_ROOT);
        assert_int_equal(be(blk + 2, 2), plen);
        assert_memory_equal(blk + 4, k.pub.b, SIG_PUB_LEN);
        assert_int_equal(be(blk + 36, 8), cases[i].version);
        if (plen)
            assert_memory_equal(blk + ROOT_HDR_LEN, payload, plen);
        /* what is signed */
        size_t mlen = root_message(m, &k.pub, cases[i].version, payload, plen);
        assert_true(sig_verify(&k.pub, m, mlen, blk + ROOT_HDR_LEN + plen));

        assert_int_equal(root_parse(blk, blen, &ri), 0);
        assert_memory_equal(ri.pub.b, k.pub.b, SIG_PUB_LEN);
        assert_int_equal(ri.version, cases[i].version);
        assert_ptr_equal(ri.payload, blk + ROOT_HDR_LEN);
        assert_int_equal(ri.payload_len, plen);
        assert_ptr_equal(ri.sig, blk + ROOT_HDR_LEN + plen);

        root_key(&k.pub, &key);
        memset(&ri, 0, sizeof(ri));
        assert_int_equal(root_verify(&key, blk, blen, &ri), 0);
        assert_int_equal(ri.version, cases[i].version);
        assert_int_equal(root_verify(&key, blk, blen, NULL), 0);
    }
    /* the empty payload may be NULL */
    size_t blen;
    struct id key;
    assert_int_equal(root_encode(&k, 9, NULL, 0, blk, &blen), 0);
    root_key(&k.pub, &key);
    assert_int_equal(root_verify(&key, blk, blen, NULL), 0);
}

static void test_root_limits(void **state)
{
    uint8_t payload[ROOT_MAX_PAYLOAD + 1] = {0}, blk[ROOT_MAX_LEN + 8];
    size_t blen = 777;
    struct sig_key k, odd;
    (void)state;

    test_key(2, &k);
    assert_int_equal(root_encode(&k, 0, payload, 1, blk, &blen), -EINVAL);
    assert_int_equal(root_encode(&k, 1, payload, ROOT_MAX_PAYLOAD + 1, blk, &blen), -EMSGSIZE);
    assert_int_equal(blen, 777);
    assert_int_equal(root_encode(&k, 1, payload, ROOT_MAX_PAYLOAD, blk, &blen), 0);
    assert_int_equal(blen, ROOT_MAX_LEN);
    /* a key pair whose public half was changed */
    odd = k;
    odd.pub.b[0] ^= 1;
    assert_int_equal(root_encode(&odd, 1, payload, 1, blk, &blen), -EINVAL);
}

/* Signs whatever header bytes we like, so that only the parser's own
 * checks can refuse them. */
static size_t forge_root(const struct sig_key *k, uint8_t format, uint8_t kind, uint64_t version,
                         const uint8_t *payload, size_t plen, uint8_t *out)
{
    uint8_t m[2048];
    size_t mlen = root_message(m, &k->pub, version, payload, plen);
    out[0] = format;
    out[1] = kind;
    put_be(out + 2, 2, plen);
    memcpy(out + 4, k->pub.b, SIG_PUB_LEN);
    put_be(out + 36, 8, version);
    memcpy(out + ROOT_HDR_LEN, payload, plen);
    assert_int_equal(sig_sign(k, m, mlen, out + ROOT_HDR_LEN + plen), 0);
    return ROOT_HDR_LEN + plen + SIG_LEN;
}

static void test_root_rejects(void **state)
{
    uint8_t payload[40], blk[ROOT_MAX_LEN + 8], copy[sizeof(blk)];
    struct root_info ri;
    struct sig_key k, other;
    struct id key, okey;
    size_t blen;
    (void)state;

    test_key(3, &k);
    test_key(4, &other);
    root_key(&k.pub, &key);
    root_key(&other.pub, &okey);
    fill(payload, sizeof(payload), TEXT);

    /* forge_root itself makes valid roots */
    blen = forge_root(&k, BLOCK_FORMAT, BLOCK_KIND_ROOT, 5, payload, sizeof(payload), blk);
    assert_int_equal(root_verify(&key, blk, blen, &ri), 0);

    static const struct {
        uint8_t format, kind;
        uint64_t version;
    } bad[] = {
        {0, BLOCK_KIND_ROOT, 5},
        {2, BLOCK_KIND_ROOT, 5},
        {BLOCK_FORMAT, BLOCK_KIND_KV, 5},
        {BLOCK_FORMAT, BLOCK_KIND_DATA, 5},
        {BLOCK_FORMAT, BLOCK_KIND_ROOT, 0},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        size_t n = forge_root(&k, bad[i].format, bad[i].kind, bad[i].version, payload,
                              sizeof(payload), copy);
        assert_int_equal(root_parse(copy, n, &ri), -EBADMSG);
        assert_int_equal(root_verify(&key, copy, n, &ri), -EBADMSG);
    }

    /* every bit flipped */
    blen = forge_root(&k, BLOCK_FORMAT, BLOCK_KIND_ROOT, 5, payload, sizeof(payload), blk);
    for (size_t i = 0; i < blen * 8; i++) {
        memcpy(copy, blk, blen);
        copy[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(root_verify(&key, copy, blen, &ri), -EBADMSG);
    }
    /* every truncation and a trailing byte */
    for (size_t n = 0; n < blen; n++)
        assert_int_equal(root_verify(&key, blk, n, &ri), -EBADMSG);
    memcpy(copy, blk, blen);
    copy[blen] = 0;
    assert_int_equal(root_parse(copy, blen + 1, &ri), -EBADMSG);
    /* somebody else's key, or another root under this key */
    assert_int_equal(root_verify(&okey, blk, blen, &ri), -EBADMSG);
    size_t on = forge_root(&other, BLOCK_FORMAT, BLOCK_KIND_ROOT, 5, payload, 8, copy);
    assert_int_equal(root_verify(&key, copy, on, &ri), -EBADMSG);
    assert_int_equal(root_verify(&okey, copy, on, &ri), 0);
    /* another key's signature pasted under this public key */
    memcpy(copy + 4, k.pub.b, SIG_PUB_LEN);
    assert_int_equal(root_verify(&key, copy, on, &ri), -EBADMSG);
    /* a payload length above the maximum */
    memcpy(copy, blk, blen);
    put_be(copy + 2, 2, ROOT_MAX_PAYLOAD + 1);
    assert_int_equal(root_parse(copy, ROOT_HDR_LEN + ROOT_MAX_PAYLOAD + 1 + SIG_LEN, &ri),
                     -EBADMSG);
    /* out is untouched on failure */
    memset(&ri, 0x5c, sizeof(ri));
    struct root_info before = ri;
    assert_int_equal(root_verify(&okey, blk, blen, &ri), -EBADMSG);
    assert_memory_equal(&ri, &before, sizeof(ri));
}

/* ---- kv records ---- */

static void test_kv_round_trip(void **state)
{
    static const size_t lens[] = {0, 1, 100, KV_MAX_VALUE};
    uint8_t *value = malloc(KV_MAX_VALUE + 1), *rec = malloc(KV_MAX_LEN + 8);
    struct id key, sum;
    (void)state;

    assert_non_null(value);
    assert_non_null(rec);
    fill_random(key.b, ID_BYTES, 11);
    fill_random(value, KV_MAX_VALUE + 1, 12);
    for (size_t i = 0; i < N_ELEMS(lens); i++) {
        size_t n = 0, len = lens[i];
        struct kv_info kv;

        assert_int_equal(kv_encode(&key, 1700000000123ull, 1700086400ull, 3, value, len, rec, &n),
                         0);
        assert_int_equal(n, KV_HDR_LEN + len + KV_SUM_LEN);
        /* the layout of block.h */
        assert_int_equal(rec[0], BLOCK_FORMAT);
        assert_int_equal(rec[1], BLOCK_KIND_KV);
        assert_int_equal(be(rec + 2, 2), len);
        assert_memory_equal(rec + 4, key.b, ID_BYTES);
        assert_int_equal(be(rec + 36, 8), 1700000000123ull);
        assert_int_equal(be(rec + 44, 8), 1700086400ull);
        assert_int_equal(rec[52], 3);
        assert_int_equal(be(rec + 53, 3), 0);
        hash_sha256(&sum, rec, KV_HDR_LEN + len);
        assert_memory_equal(rec + KV_HDR_LEN + len, sum.b, KV_SUM_LEN);

        assert_int_equal(kv_parse(rec, n, &kv), 0);
        assert_memory_equal(kv.key.b, key.b, ID_BYTES);
        assert_int_equal(kv.stamp_ms, 1700000000123ull);
        assert_int_equal(kv.expiry_s, 1700086400ull);
        assert_int_equal(kv.replication, 3);
        assert_ptr_equal(kv.value, rec + KV_HDR_LEN);
        assert_int_equal(kv.value_len, len);

        /* trailing byte, truncations */
        rec[n] = 0;
        assert_int_equal(kv_parse(rec, n + 1, &kv), -EBADMSG);
        for (size_t cut = n > 200 ? n - 200 : 0; cut < n; cut++)
            assert_int_equal(kv_parse(rec, cut, &kv), -EBADMSG);
    }
    size_t n = 5;
    assert_int_equal(kv_encode(&key, 1, 1, 1, value, KV_MAX_VALUE + 1, rec, &n), -EMSGSIZE);
    assert_int_equal(n, 5);
    assert_int_equal(kv_encode(&key, 1, 1, 1, NULL, 0, rec, &n), 0);
    free(value);
    free(rec);
}

/* Rewrites the checksum so that only the other checks can refuse. */
static void kv_reseal(uint8_t *rec, size_t n)
{
    struct id sum;
    hash_sha256(&sum, rec, n - KV_SUM_LEN);
    memcpy(rec + n - KV_SUM_LEN, sum.b, KV_SUM_LEN);
}

static void test_kv_rejects(void **state)
{
    static const struct mutation bad[] = {
        {"format 0", 0, 0},     {"format 2", 0, 2},        {"kind root", 1, BLOCK_KIND_ROOT},
        {"kind data", 1, 1},    {"value length", 3, 11},   {"value length hi", 2, 1},
        {"reserved 53", 53, 1}, {"reserved 54", 54, 0x80}, {"reserved 55", 55, 1},
    };
    uint8_t rec[KV_HDR_LEN + 10 + KV_SUM_LEN + 1], copy[sizeof(rec)];
    struct kv_info kv;
    struct id key;
    size_t n;
    (void)state;

    memset(&key, 9, sizeof(key));
    assert_int_equal(kv_encode(&key, 5, 6, 2, "0123456789", 10, rec, &n), 0);
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        memcpy(copy, rec, n);
        copy[bad[i].off] = bad[i].val;
        kv_reseal(copy, n);
        assert_int_equal(kv_parse(copy, n, &kv), -EBADMSG);
    }
    /* any flip without resealing: the checksum catches it */
    for (size_t i = 0; i < n * 8; i++) {
        memcpy(copy, rec, n);
        copy[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(kv_parse(copy, n, &kv), -EBADMSG);
    }
    /* replication, stamp and expiry take any value */
    memcpy(copy, rec, n);
    copy[52] = 0xff;
    put_be(copy + 36, 8, UINT64_MAX);
    kv_reseal(copy, n);
    assert_int_equal(kv_parse(copy, n, &kv), 0);
    assert_int_equal(kv.replication, 0xff);
}

/* ---- leases ---- */

static size_t lease_message(uint8_t *m, const struct id *key, uint64_t stamp, uint64_t expiry)
{
    static const char domain[] = "coopfs lease v1";
    memcpy(m, domain, sizeof(domain));
    memcpy(m + sizeof(domain), key->b, ID_BYTES);
    put_be(m + sizeof(domain) + ID_BYTES, 8, stamp);
    put_be(m + sizeof(domain) + ID_BYTES + 8, 8, expiry);
    return sizeof(domain) + ID_BYTES + 16;
}

static void test_lease_round_trip(void **state)
{
    uint8_t enc[LEASE_LEN], enc2[LEASE_LEN], m[128];
    struct lease l, d;
    struct sig_key k;
    struct id key;
    (void)state;

    test_key(5, &k);
    memset(&key, 0xab, sizeof(key));
    for (int reclaim = 0; reclaim <= 1; reclaim++) {
        uint64_t expiry = reclaim ? 0 : 1800000000ull;
        assert_int_equal(lease_sign(&k, &key, 1700000000456ull, expiry, &l), 0);
        assert_memory_equal(l.owner.b, k.pub.b, SIG_PUB_LEN);
        assert_int_equal(l.stamp_ms, 1700000000456ull);
        assert_int_equal(l.expiry_s, expiry);
        assert_true(lease_verify(&l, &key));

        lease_encode(&l, enc);
        assert_memory_equal(enc, k.pub.b, SIG_PUB_LEN);
        assert_int_equal(be(enc + 32, 8), 1700000000456ull);
        assert_int_equal(be(enc + 40, 8), expiry);
        assert_memory_equal(enc + 48, l.sig, SIG_LEN);
        size_t mlen = lease_message(m, &key, 1700000000456ull, expiry);
        assert_true(sig_verify(&k.pub, m, mlen, enc + 48));

        lease_decode(enc, &d);
        assert_memory_equal(&d, &l, sizeof(d));
        lease_encode(&d, enc2);
        assert_memory_equal(enc, enc2, LEASE_LEN);
        assert_true(lease_verify(&d, &key));

        /* every bit flipped, and another block */
        for (size_t i = 0; i < LEASE_LEN * 8; i++) {
            enc[i / 8] ^= (uint8_t)(1u << (i % 8));
            lease_decode(enc, &d);
            assert_false(lease_verify(&d, &key));
            enc[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        struct id other = key;
        other.b[0] ^= 0x80;
        assert_false(lease_verify(&l, &other));
    }
    struct sig_key odd = k;
    odd.pub.b[5] ^= 1;
    assert_int_equal(lease_sign(&odd, &key, 1, 1, &l), -EINVAL);
}

static struct lease mk(uint64_t stamp, uint64_t expiry, uint8_t sig0)
{
    struct lease l;
    memset(&l, 0, sizeof(l));
    memset(l.owner.b, 0x11, SIG_PUB_LEN);
    l.stamp_ms = stamp;
    l.expiry_s = expiry;
    l.sig[0] = sig0;
    return l;
}

static void test_lease_newer(void **state)
{
    static const struct {
        uint64_t as, ae;
        uint8_t asig;
        uint64_t bs, be_;
        uint8_t bsig;
        bool a_wins;
    } cases[] = {
        {2, 100, 0, 1, 100, 0, true}, /* higher stamp */
        {1, 100, 0, 2, 100, 0, false},
        {2, 0, 0, 1, 100, 0, true},  /* a reclaim after a grant */
        {1, 100, 0, 2, 0, 0, false}, /* a grant replayed after a reclaim */
        {3, 100, 0, 2, 0, 0, true},  /* a grant after the reclaim */
        {1, 100, 0, 1, 0, 0, false}, /* same instant: the reclaim wins */
        {1, 0, 0, 1, 100, 0, true},
        {1, 0, 0, 1, UINT64_MAX, 0, true},
        {1, 200, 0, 1, 100, 0, true}, /* then the larger expiry */
        {1, 100, 0, 1, 200, 0, false},
        {1, 100, 2, 1, 100, 1, true}, /* then the larger signature */
        {1, 100, 1, 1, 100, 2, false},
        {1, 100, 1, 1, 100, 1, false}, /* the same record is not newer */
        {UINT64_MAX, 1, 0, UINT64_MAX - 1, 0, 0, true},
    };
    (void)state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct lease a = mk(cases[i].as, cases[i].ae, cases[i].asig);
        struct lease b = mk(cases[i].bs, cases[i].be_, cases[i].bsig);
        assert_int_equal(lease_newer(&a, &b), cases[i].a_wins);
        if (cases[i].a_wins)
            assert_false(lease_newer(&b, &a));
    }

    /* a strict total order over a set of distinct records */
    struct lease set[4 * 4 * 3];
    size_t n = 0;
    static const uint64_t stamps[] = {0, 1, 2, UINT64_MAX};
    static const uint64_t expiries[] = {0, 1, 1000, UINT64_MAX};
    for (size_t s = 0; s < 4; s++)
        for (size_t e = 0; e < 4; e++)
            for (uint8_t g = 0; g < 3; g++)
                set[n++] = mk(stamps[s], expiries[e], g);
    for (size_t i = 0; i < n; i++) {
        assert_false(lease_newer(&set[i], &set[i]));
        for (size_t j = 0; j < n; j++) {
            if (i == j)
                continue;
            assert_true(lease_newer(&set[i], &set[j]) != lease_newer(&set[j], &set[i]));
            for (size_t l = 0; l < n; l++)
                if (lease_newer(&set[i], &set[j]) && lease_newer(&set[j], &set[l]))
                    assert_true(lease_newer(&set[i], &set[l]));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_content_round_trip, setup_buffers, teardown_buffers),
        cmocka_unit_test_setup_teardown(test_content_limits, setup_buffers, teardown_buffers),
        cmocka_unit_test_setup_teardown(test_content_compress_threshold, setup_buffers,
                                        teardown_buffers),
        cmocka_unit_test_setup_teardown(test_content_parse_rejects, setup_buffers,
                                        teardown_buffers),
        cmocka_unit_test_setup_teardown(test_content_every_flip_fails, setup_buffers,
                                        teardown_buffers),
        cmocka_unit_test_setup_teardown(test_content_bad_frames, setup_buffers, teardown_buffers),
        cmocka_unit_test(test_content_block_key),
        cmocka_unit_test(test_root_round_trip),
        cmocka_unit_test(test_root_limits),
        cmocka_unit_test(test_root_rejects),
        cmocka_unit_test(test_kv_round_trip),
        cmocka_unit_test(test_kv_rejects),
        cmocka_unit_test(test_lease_round_trip),
        cmocka_unit_test(test_lease_newer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
