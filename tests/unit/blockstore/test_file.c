/* test_file.c — file manifests (blockstore/file.c): build → parse → walk
 * back to the chunk keys for 0 to 20000 chunks, the shape rules the
 * parsers hold a manifest to, and tampered manifests refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/block.h"
#include "common/hash.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define F          BLOCK_FILE_FANOUT

static void put_be(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

/* ---- an in-memory block store for emit ---- */

struct emitted {
    struct id key;
    uint8_t *bytes;
    size_t len;
};

struct sink {
    struct emitted *v;
    size_t n, cap;
    size_t fail_at; /* emit fails on this call (1-based); 0: never */
    size_t calls;
};

static int sink_emit(void *ctx, const struct id *key, const uint8_t *bytes, size_t len)
{
    struct sink *s = ctx;
    if (++s->calls == s->fail_at)
        return -EIO;
    assert_int_equal(block_verify(key, bytes, len), 0);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        assert_non_null(s->v);
    }
    s->v[s->n].key = *key;
    s->v[s->n].bytes = malloc(len);
    assert_non_null(s->v[s->n].bytes);
    memcpy(s->v[s->n].bytes, bytes, len);
    s->v[s->n].len = len;
    s->n++;
    return 0;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].bytes);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* The index of the block under key, which must have been emitted before
 * position `before` (children come before the blocks naming them). */
static size_t sink_find(const struct sink *s, const uint8_t *key, size_t before)
{
    for (size_t i = 0; i < before; i++)
        if (memcmp(s->v[i].key.b, key, ID_BYTES) == 0)
            return i;
    fail_msg("block not emitted before its parent");
    return 0;
}

/* Inflates emitted block i of the expected kind into buf. */
static size_t sink_payload(const struct sink *s, size_t i, uint8_t kind, uint8_t *buf)
{
    struct block_info bi;
    size_t n;
    assert_int_equal(block_parse(s->v[i].bytes, s->v[i].len, &bi), 0);
    assert_int_equal(bi.kind, kind);
    assert_int_equal(block_decode(s->v[i].bytes, s->v[i].len, buf, BLOCK_MAX_DATA, &n), 0);
    return n;
}

/* Appends the chunk keys under emitted INDIRECT block i (of level) to out. */
static void walk(const struct sink *s, size_t i, uint8_t level, struct id *out, size_t *n,
                 size_t max)
{
    uint8_t *buf = malloc(BLOCK_MAX_DATA), lv;
    uint32_t nk;
    const uint8_t *keys;
    assert_non_null(buf);
    size_t len = sink_payload(s, i, BLOCK_KIND_INDIRECT, buf);
    assert_int_equal(file_indirect_parse(buf, len, &lv, &nk, &keys), 0);
    assert_int_equal(lv, level);
    for (uint32_t k = 0; k < nk; k++) {
        if (level == 1) {
            assert_true(*n < max);
            memcpy(out[(*n)++].b, keys + (size_t)k * ID_BYTES, ID_BYTES);
        } else {
            walk(s, sink_find(s, keys + (size_t)k * ID_BYTES, i), (uint8_t)(level - 1), out, n,
                 max);
        }
    }
    free(buf);
}

static void chunk_keys(struct id *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t x[8];
        put_be(x, 8, i);
        hash_sha256(&keys[i], x, sizeof(x));
    }
}

static void test_build_parse(void **state)
{
    static const struct {
        size_t n;
        uint32_t chunk_size;
        uint8_t levels;
        size_t blocks; /* emitted, FILE included */
    } cases[] = {
        {0, 262144, 0, 1},    {1, 262144, 0, 1},    {2, 1, 0, 1},           {8191, 4096, 0, 1},
        {8192, 262144, 1, 3}, {20000, 65536, 1, 4}, {2 * 8191, 1000, 1, 3}, {2 * 8191 + 1, 7, 1, 4},
    };
    uint8_t *buf = malloc(BLOCK_MAX_DATA);
    (void)state;
    assert_non_null(buf);

    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        size_t n = cases[c].n, got_n = 0;
        uint32_t cs = cases[c].chunk_size;
        /* the last chunk is partial when the chunk size allows */
        uint64_t size = n == 0 ? 0 : (uint64_t)(n - 1) * cs + (cs > 1 ? cs / 2 + 1 : 1);
        struct id *keys = malloc((n ? n : 1) * sizeof(*keys)),
                  *got = malloc((n + 1) * sizeof(*got));
        struct sink s = {0};
        struct file_manifest fm;
        struct id fk;

        assert_non_null(keys);
        assert_non_null(got);
        chunk_keys(keys, n);
        assert_int_equal(file_manifest_build(size, cs, n ? keys : NULL, n, sink_emit, &s, &fk), 0);
        assert_int_equal(s.n, cases[c].blocks);
        /* the FILE block comes last and is the one *file_key names */
        assert_memory_equal(s.v[s.n - 1].key.b, fk.b, ID_BYTES);

        size_t len = sink_payload(&s, s.n - 1, BLOCK_KIND_FILE, buf);
        assert_int_equal(len, BLOCK_FILE_HDR + ID_BYTES * (size_t)(cases[c].levels ? s.n - 1 : n));
        assert_int_equal(file_manifest_parse(buf, len, &fm), 0);
        assert_int_equal(fm.size, size);
        assert_int_equal(fm.chunk_size, cs);
        assert_int_equal(fm.levels, cases[c].levels);
        if (fm.levels == 0) {
            assert_int_equal(fm.nkeys, n);
            if (n)
                assert_memory_equal(fm.keys, keys, n * ID_BYTES);
        } else {
            /* full indirect blocks but the last one, and the tree gives
             * back every chunk key in order */
            for (uint32_t k = 0; k < fm.nkeys; k++) {
                size_t i = sink_find(&s, fm.keys + (size_t)k * ID_BYTES, s.n - 1);
                walk(&s, i, fm.levels, got, &got_n, n);
                if (k + 1 < fm.nkeys)
                    assert_int_equal(got_n, (size_t)(k + 1) * F);
            }
            assert_int_equal(got_n, n);
            assert_memory_equal(got, keys, n * ID_BYTES);
        }

        /* the same input builds the same blocks */
        struct sink s2 = {0};
        struct id fk2;
        assert_int_equal(file_manifest_build(size, cs, keys, n, sink_emit, &s2, &fk2), 0);
        assert_memory_equal(fk.b, fk2.b, ID_BYTES);
        sink_free(&s2);
        sink_free(&s);
        free(keys);
        free(got);
    }
    free(buf);
}

static void test_build_errors(void **state)
{
    struct id keys[3], fk, before;
    struct sink s = {0};
    (void)state;

    chunk_keys(keys, 3);
    memset(&fk, 0x5a, sizeof(fk));
    before = fk;
    /* chunk size out of range, key count not matching the size */
    assert_int_equal(file_manifest_build(10, 0, keys, 3, sink_emit, &s, &fk), -EINVAL);
    assert_int_equal(file_manifest_build(10, BLOCK_MAX_DATA + 1, keys, 1, sink_emit, &s, &fk),
                     -EINVAL);
    assert_int_equal(file_manifest_build(10, 4, keys, 2, sink_emit, &s, &fk), -EINVAL);
    assert_int_equal(file_manifest_build(10, 4, keys, 4, sink_emit, &s, &fk), -EINVAL);
    assert_int_equal(file_manifest_build(0, 4, keys, 1, sink_emit, &s, &fk), -EINVAL);
    assert_int_equal(file_manifest_build(1, 4, keys, 0, sink_emit, &s, &fk), -EINVAL);
    assert_int_equal(s.calls, 0);
    assert_memory_equal(fk.b, before.b, ID_BYTES);

    /* emit's error stops the build and is returned */
    size_t n = 8192;
    struct id *many = malloc(n * sizeof(*many));
    assert_non_null(many);
    chunk_keys(many, n);
    for (size_t fail = 1; fail <= 3; fail++) {
        struct sink f = {.fail_at = fail};
        assert_int_equal(file_manifest_build(n, 1, many, n, sink_emit, &f, &fk), -EIO);
        assert_int_equal(f.calls, fail);
        assert_memory_equal(fk.b, before.b, ID_BYTES);
        sink_free(&f);
    }
    free(many);
}

/* ---- parsing hand-made manifests ---- */

/* A FILE payload with nkeys keys (all bytes 0xkk). */
static size_t manifest(uint8_t *buf, uint64_t size, uint32_t cs, uint8_t levels, uint32_t nkeys)
{
    put_be(buf, 8, size);
    put_be(buf + 8, 4, cs);
    buf[12] = levels;
    buf[13] = buf[14] = buf[15] = 0;
    put_be(buf + 16, 4, nkeys);
    memset(buf + BLOCK_FILE_HDR, 0xcc, (size_t)nkeys * ID_BYTES);
    return BLOCK_FILE_HDR + (size_t)nkeys * ID_BYTES;
}

static void test_manifest_shapes(void **state)
{
    static const uint64_t F2 = (uint64_t)F * F, F3 = F2 * F, F4 = F3 * F;
    static const struct {
        uint64_t size;
        uint32_t cs;
        uint8_t levels;
        uint32_t nkeys;
        bool ok;
    } cases[] = {
        {0, 1, 0, 0, true},
        {0, BLOCK_MAX_DATA, 0, 0, true},
        {0, 1, 0, 1, false},
        {0, 1, 1, 0, false},
        {0, 1, 1, 1, false},
        {1, 1, 0, 1, true},
        {1, 1, 0, 0, false},
        {1, 4096, 0, 1, true},
        {4096, 4096, 0, 1, true},
        {4097, 4096, 0, 1, false},
        {4097, 4096, 0, 2, true},
        {F, 1, 0, F, true},
        {F, 1, 1, 1, false}, /* a level that was not needed */
        {F + 1, 1, 0, F + 1, false},
        {F + 1, 1, 1, 2, true},
        {F + 1, 1, 1, 1, false},
        {F + 1, 1, 1, 3, false},
        {F2, 1, 1, F, true},
        {F2 + 1, 1, 1, F, false},
        {F2 + 1, 1, 2, 2, true},
        {F2 + 1, 1, 2, 1, false},
        {F2, 1, 2, 1, false},
        {F3 + 1, 1, 3, 2, true},
        {F4, 1, 3, F, true},
        {F4 + 1, 1, 4, 2, true},
        {UINT64_MAX, 1, 4, (uint32_t)((UINT64_MAX - 1) / F4 + 1), true},
        {UINT64_MAX, 1, 3, F, false},
        {UINT64_MAX, BLOCK_MAX_DATA, 3, (uint32_t)((UINT64_MAX / BLOCK_MAX_DATA + 1 - 1) / F3 + 1),
         true},
        {F4 + 1, 1, 5, 1, false}, /* more levels than BLOCK_FILE_MAX_LEVELS */
        {1, 0, 0, 1, false},      /* chunk size 0 */
        {1, BLOCK_MAX_DATA + 1, 0, 1, false},
    };
    uint8_t *buf = malloc(BLOCK_FILE_HDR + (size_t)(F + 1) * ID_BYTES);
    (void)state;
    assert_non_null(buf);

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct file_manifest fm;
        size_t len = manifest(buf, cases[i].size, cases[i].cs, cases[i].levels, cases[i].nkeys);
        int rc = file_manifest_parse(buf, len, &fm);
        if (rc != (cases[i].ok ? 0 : -EBADMSG))
            fail_msg("case %zu: size %llu chunk %u levels %u nkeys %u: got %d", i,
                     (unsigned long long)cases[i].size, cases[i].cs, cases[i].levels,
                     cases[i].nkeys, rc);
        if (rc == 0) {
            assert_int_equal(fm.size, cases[i].size);
            assert_int_equal(fm.nkeys, cases[i].nkeys);
            assert_ptr_equal(fm.keys, buf + BLOCK_FILE_HDR);
        }
    }
    free(buf);
}

static void test_manifest_tampered(void **state)
{
    static const struct {
        size_t off;
        uint8_t val;
    } bad[] = {
        {6, 0x30},                    /* size: three chunks become four */
        {7, 0x00},                    /* or two */
        {0, 1},                       /* size far larger */
        {11, 0x02},                   /* chunk size */
        {12, 1},                      /* levels */
        {12, 5},                      /* levels above the maximum */
        {13, 1},                      /* reserved */
        {14, 0x80}, {15, 1}, {19, 2}, /* nkeys */
        {19, 4},    {16, 1},
    };
    uint8_t buf[BLOCK_FILE_HDR + 4 * ID_BYTES], copy[sizeof(buf)];
    struct file_manifest fm;
    size_t len = manifest(buf, 0x2001, 0x1000, 0, 3); /* three chunks, the last of 1 byte */
    (void)state;

    assert_int_equal(file_manifest_parse(buf, len, &fm), 0);
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        memcpy(copy, buf, len);
        copy[bad[i].off] = bad[i].val;
        assert_int_equal(file_manifest_parse(copy, len, &fm), -EBADMSG);
    }
    for (size_t n = 0; n < len; n++)
        assert_int_equal(file_manifest_parse(buf, n, &fm), -EBADMSG);
    memcpy(copy, buf, len);
    copy[len] = 0;
    assert_int_equal(file_manifest_parse(copy, len + 1, &fm), -EBADMSG);
    /* more keys than any block holds */
    put_be(copy + 16, 4, F + 1);
    assert_int_equal(file_manifest_parse(copy, len, &fm), -EBADMSG);
    put_be(copy + 16, 4, UINT32_MAX);
    assert_int_equal(file_manifest_parse(copy, len, &fm), -EBADMSG);
}

static void test_indirect_parse(void **state)
{
    uint8_t buf[BLOCK_INDIRECT_HDR + 3 * ID_BYTES + 1], copy[sizeof(buf)];
    const uint8_t *keys;
    uint8_t level;
    uint32_t nkeys;
    size_t len = BLOCK_INDIRECT_HDR + 3 * ID_BYTES;
    (void)state;

    buf[0] = 2;
    buf[1] = buf[2] = buf[3] = 0;
    put_be(buf + 4, 4, 3);
    memset(buf + 8, 0xdd, 3 * ID_BYTES);
    assert_int_equal(file_indirect_parse(buf, len, &level, &nkeys, &keys), 0);
    assert_int_equal(level, 2);
    assert_int_equal(nkeys, 3);
    assert_ptr_equal(keys, buf + 8);

    static const struct {
        size_t off;
        uint8_t val;
    } bad[] = {
        {0, 0},    {0, BLOCK_FILE_MAX_LEVELS + 1},
        {0, 0xff}, {1, 1},
        {2, 1},    {3, 0x40},
        {7, 0},    {7, 2},
        {7, 4},    {4, 1},
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        memcpy(copy, buf, len);
        copy[bad[i].off] = bad[i].val;
        level = 99;
        assert_int_equal(file_indirect_parse(copy, len, &level, &nkeys, &keys), -EBADMSG);
        assert_int_equal(level, 99);
    }
    for (size_t n = 0; n < len; n++)
        assert_int_equal(file_indirect_parse(buf, n, &level, &nkeys, &keys), -EBADMSG);
    buf[len] = 0;
    assert_int_equal(file_indirect_parse(buf, len + 1, &level, &nkeys, &keys), -EBADMSG);
    /* levels 1 and BLOCK_FILE_MAX_LEVELS are fine */
    buf[0] = 1;
    assert_int_equal(file_indirect_parse(buf, len, &level, &nkeys, &keys), 0);
    buf[0] = BLOCK_FILE_MAX_LEVELS;
    assert_int_equal(file_indirect_parse(buf, len, &level, &nkeys, &keys), 0);

    /* a full block: BLOCK_FILE_FANOUT keys, and one more is refused */
    uint8_t *big = malloc(BLOCK_INDIRECT_HDR + (size_t)(F + 1) * ID_BYTES);
    assert_non_null(big);
    memset(big, 0, BLOCK_INDIRECT_HDR + (size_t)(F + 1) * ID_BYTES);
    big[0] = 1;
    put_be(big + 4, 4, F);
    assert_int_equal(
        file_indirect_parse(big, BLOCK_INDIRECT_HDR + (size_t)F * ID_BYTES, &level, &nkeys, &keys),
        0);
    assert_true(BLOCK_INDIRECT_HDR + (size_t)F * ID_BYTES <= BLOCK_MAX_DATA);
    put_be(big + 4, 4, F + 1);
    assert_int_equal(file_indirect_parse(big, BLOCK_INDIRECT_HDR + (size_t)(F + 1) * ID_BYTES,
                                         &level, &nkeys, &keys),
                     -EBADMSG);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_parse),     cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_manifest_shapes), cmocka_unit_test(test_manifest_tampered),
        cmocka_unit_test(test_indirect_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
