/* gen_block_corpus.c — writes the seed corpus of fuzz_block.
 *
 *   gen_block_corpus DIR
 *
 * writes into DIR, one file each: valid content blocks (raw and zstd, of
 * each kind), root blocks signed with the harness's key, kv records, leases
 * (block key | lease, as fuzz_block reads them), FILE and INDIRECT payloads,
 * and near misses of each (a byte too many or too few, a wrong length,
 * format or reserved byte, a bad signature or checksum, a manifest whose
 * key count does not fit its size). The output is deterministic. The files
 * are committed in tests/fuzz/corpus/block/; run this again (and commit
 * the result) when a format changes:
 *
 *   rm -f tests/fuzz/corpus/block/[a-z]*
 *   gen_block_corpus tests/fuzz/corpus/block
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/block.h"
#include "common/hash.h"

static const char *out_dir;
static int status;

static uint8_t buf[BLOCK_MAX_STORED + KV_MAX_LEN];
static uint8_t data[BLOCK_MAX_DATA];

static void emit(const char *name, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        status = 1;
        return;
    }
    if (fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "%s: write failed\n", path);
        status = 1;
    }
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "gen_block_corpus: %s failed: %d\n", what, rc);
        exit(1);
    }
}

static void put_be(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

static struct id mkid(unsigned seed)
{
    struct id r;
    uint8_t x[4];
    put_be(x, 4, seed);
    hash_sha256(&r, x, sizeof(x));
    return r;
}

/* The harness's key (fuzz_block.c): seed bytes 1..32. */
static void harness_key(struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    for (int i = 0; i < SIG_SEED_LEN; i++)
        seed[i] = (uint8_t)(i + 1);
    check(sig_key_from_seed(seed, k), "sig_key_from_seed");
}

static void other_key(struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    memset(seed, 0x77, sizeof(seed));
    check(sig_key_from_seed(seed, k), "sig_key_from_seed");
}

static void text(uint8_t *p, size_t n)
{
    static const char words[] = "coopfs stores blocks on a chord ring; ";
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)words[i % (sizeof(words) - 1)];
}

static void content(void)
{
    struct id key;
    size_t n;

    text(data, 40);
    check(block_encode(BLOCK_KIND_DATA, data, 40, false, buf, &n, &key), "encode");
    emit("content_raw_data", buf, n);
    buf[n] = 0;
    emit("content_raw_trailing_byte", buf, n + 1);
    emit("content_raw_short", buf, n - 1);
    buf[7] ^= 1;
    emit("content_raw_wrong_length", buf, n);
    buf[7] ^= 1;
    buf[0] = 2;
    emit("content_format_2", buf, n);
    buf[0] = BLOCK_FORMAT;
    buf[3] = 1;
    emit("content_reserved_set", buf, n);
    buf[3] = 0;
    buf[1] = BLOCK_KIND_ROOT;
    emit("content_kind_root", buf, n);

    check(block_encode(BLOCK_KIND_DATA, NULL, 0, true, buf, &n, &key), "encode");
    emit("content_raw_empty", buf, n);

    text(data, 2000);
    check(block_encode(BLOCK_KIND_DATA, data, 2000, true, buf, &n, &key), "encode");
    if (buf[2] != BLOCK_CODEC_ZSTD)
        check(-1, "zstd expected");
    emit("content_zstd_data", buf, n);
    buf[n] = 0;
    emit("content_zstd_trailing_byte", buf, n + 1);
    emit("content_zstd_short", buf, n - 1);
    put_be(buf + 4, 4, 2001);
    emit("content_zstd_wrong_raw_length", buf, n);
    put_be(buf + 4, 4, 2000);
    buf[n - 3] ^= 0x55;
    emit("content_zstd_damaged_frame", buf, n);

    memset(data, 0, 5000);
    check(block_encode(BLOCK_KIND_FS_FIRST, data, 5000, true, buf, &n, &key), "encode");
    emit("content_zstd_fs_kind", buf, n);
    text(data, 300);
    check(block_encode(BLOCK_KIND_FS_LAST, data, 300, false, buf, &n, &key), "encode");
    emit("content_raw_fs_last_kind", buf, n);
}

/* A FILE payload of n keys into p; returns its length. */
static size_t manifest(uint8_t *p, uint64_t size, uint32_t cs, uint8_t levels, uint32_t n)
{
    memset(p, 0, BLOCK_FILE_HDR);
    put_be(p, 8, size);
    put_be(p + 8, 4, cs);
    p[12] = levels;
    put_be(p + 16, 4, n);
    for (uint32_t i = 0; i < n; i++) {
        struct id k = mkid(i);
        memcpy(p + BLOCK_FILE_HDR + (size_t)i * ID_BYTES, k.b, ID_BYTES);
    }
    return BLOCK_FILE_HDR + (size_t)n * ID_BYTES;
}

static size_t indirect(uint8_t *p, uint8_t level, uint32_t n)
{
    memset(p, 0, BLOCK_INDIRECT_HDR);
    p[0] = level;
    put_be(p + 4, 4, n);
    for (uint32_t i = 0; i < n; i++) {
        struct id k = mkid(100 + i);
        memcpy(p + BLOCK_INDIRECT_HDR + (size_t)i * ID_BYTES, k.b, ID_BYTES);
    }
    return BLOCK_INDIRECT_HDR + (size_t)n * ID_BYTES;
}

static void files(void)
{
    const uint64_t F = BLOCK_FILE_FANOUT, F4 = F * F * F * F;
    struct id key;
    size_t n, m;

    n = manifest(data, 3 * 4096 - 100, 4096, 0, 3);
    emit("manifest_levels0", data, n);
    check(block_encode(BLOCK_KIND_FILE, data, n, true, buf, &m, &key), "encode");
    emit("content_file_block", buf, m);
    data[n] = 0;
    emit("manifest_trailing_byte", data, n + 1);
    put_be(data, 8, 3 * 4096 + 1); /* four chunks, three keys */
    emit("manifest_size_mismatch", data, n);
    put_be(data, 8, 3 * 4096 - 100);
    data[12] = 1; /* a level that was not needed */
    emit("manifest_needless_level", data, n);

    n = manifest(data, 0, BLOCK_MAX_DATA, 0, 0);
    emit("manifest_empty_file", data, n);
    n = manifest(data, F + 1, 1, 1, 2);
    emit("manifest_levels1", data, n);
    n = manifest(data, F4 + 1, 1, 4, 2);
    emit("manifest_levels4", data, n);
    n = manifest(data, UINT64_MAX, BLOCK_MAX_DATA, 3, 128);
    emit("manifest_levels3_max_size", data, n);
    n = manifest(data, 1, 0, 0, 1);
    emit("manifest_chunk_size_0", data, n);

    n = indirect(data, 1, 3);
    emit("indirect_level1", data, n);
    check(block_encode(BLOCK_KIND_INDIRECT, data, n, true, buf, &m, &key), "encode");
    emit("content_indirect_block", buf, m);
    data[0] = 0;
    emit("indirect_level0", data, n);
    n = indirect(data, 2, 0);
    emit("indirect_no_keys", data, n);
    n = indirect(data, 4, 2);
    emit("indirect_level4", data, n);
}

static void roots(void)
{
    uint8_t payload[ROOT_MAX_PAYLOAD];
    struct sig_key k, o;
    size_t n;

    harness_key(&k);
    other_key(&o);
    text(payload, sizeof(payload));

    check(root_encode(&k, 1, NULL, 0, buf, &n), "root_encode");
    emit("root_v1_empty", buf, n);
    check(root_encode(&k, 7, payload, 32, buf, &n), "root_encode");
    emit("root_v7_commit_key", buf, n);
    buf[n] = 0;
    emit("root_trailing_byte", buf, n + 1);
    emit("root_short", buf, n - 1);
    buf[n - 1] ^= 1;
    emit("root_bad_signature", buf, n);
    buf[n - 1] ^= 1;
    put_be(buf + 36, 8, 0);
    emit("root_version_0", buf, n);
    put_be(buf + 36, 8, 8);
    emit("root_version_changed", buf, n);
    check(root_encode(&k, UINT64_MAX, payload, ROOT_MAX_PAYLOAD, buf, &n), "root_encode");
    emit("root_max_payload", buf, n);
    check(root_encode(&o, 3, payload, 10, buf, &n), "root_encode");
    emit("root_other_key", buf, n);
}

static void kvs(void)
{
    struct id key = mkid(7);
    size_t n;

    check(kv_encode(&key, 1700000000000ull, 1700003600ull, 3, NULL, 0, buf, &n), "kv_encode");
    emit("kv_empty", buf, n);
    text(data, 100);
    check(kv_encode(&key, 1700000000001ull, 0, 1, data, 100, buf, &n), "kv_encode");
    emit("kv_value", buf, n);
    buf[n] = 0;
    emit("kv_trailing_byte", buf, n + 1);
    buf[n - 1] ^= 1;
    emit("kv_bad_checksum", buf, n);
    buf[n - 1] ^= 1;
    buf[54] = 1; /* reserved, checksum made to fit */
    struct id sum;
    hash_sha256(&sum, buf, n - KV_SUM_LEN);
    memcpy(buf + n - KV_SUM_LEN, sum.b, KV_SUM_LEN);
    emit("kv_reserved_set", buf, n);
}

static void leases(void)
{
    uint8_t rec[ID_BYTES + LEASE_LEN];
    struct id key = mkid(9);
    struct sig_key k, o;
    struct lease l;

    harness_key(&k);
    other_key(&o);
    memcpy(rec, key.b, ID_BYTES);

    check(lease_sign(&k, &key, 1700000000000ull, 1800000000ull, &l), "lease_sign");
    lease_encode(&l, rec + ID_BYTES);
    emit("lease_grant", rec, sizeof(rec));
    emit("lease_record_only", rec + ID_BYTES, LEASE_LEN);
    rec[0] ^= 1;
    emit("lease_other_block", rec, sizeof(rec));
    rec[0] ^= 1;

    check(lease_sign(&k, &key, 1700000001000ull, 0, &l), "lease_sign");
    lease_encode(&l, rec + ID_BYTES);
    emit("lease_reclaim", rec, sizeof(rec));
    rec[ID_BYTES + 47] = 1; /* a reclaim turned into a grant */
    emit("lease_reclaim_altered", rec, sizeof(rec));

    check(lease_sign(&o, &key, 5, 6, &l), "lease_sign");
    lease_encode(&l, rec + ID_BYTES);
    emit("lease_other_owner", rec, sizeof(rec));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_block_corpus DIR\n");
        return 2;
    }
    out_dir = argv[1];
    content();
    files();
    roots();
    kvs();
    leases();
    return status;
}
