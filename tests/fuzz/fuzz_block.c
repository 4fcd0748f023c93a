/* fuzz_block.c — libFuzzer harness for the record formats of
 * blockstore/block.c and blockstore/file.c (and the Ed25519 checks of
 * common/sig.c under them): everything a node reads from a peer or from its
 * own disk as a block.
 *
 * The whole input is copied to a heap block of exactly its size (so ASan
 * sees any read past it) and handed to every decoder:
 *
 *   block_parse, block_verify, block_decode   a content block; the key given
 *                                             to verify is SHA-256(input), so
 *                                             the hash holds and the checks
 *                                             behind it run
 *   root_parse, root_verify                   a root block, under the key of
 *                                             the public key it carries
 *   kv_parse                                  a kv record
 *   lease_decode, lease_verify                block key [32] | lease [112]
 *                                             (a leases.log record without its
 *                                             checksum), when the input is
 *                                             exactly 144 bytes; any input of
 *                                             112 bytes or more is decoded
 *   file_manifest_parse, file_indirect_parse  the payload of a FILE or
 *                                             INDIRECT block; also fed the
 *                                             inflated payload of such a
 *                                             content block
 *
 * Beyond "does not crash", each decoded value must come back the same:
 *   content   decode succeeds exactly when verify does (and parse then
 *             agrees); a raw block re-encodes to the input itself; a zstd
 *             block re-encodes (with this zstd) to a block that decodes to
 *             the same bytes.
 *   root      the decoded fields lie inside the input; a root that verifies
 *             under the harness's own key (KEY_SEED, the key the corpus
 *             generator signs with) re-encodes to the input itself
 *             (Ed25519 is deterministic).
 *   kv        encode(parse(x)) == x, and parses to the same fields.
 *   lease     encode(decode(x)) == x; a lease of the harness's key that
 *             verifies is exactly what lease_sign makes.
 *   manifest  the header and keys written out again are the input; with
 *             levels 0, file_manifest_build makes one FILE block whose
 *             payload is the input.
 *   indirect  written out again, the input.
 *
 * Any violation calls abort(), which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/block.h"
#include "common/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The corpus generator's signing key: seed bytes 1, 2, ..., 32. Keep in
 * step with gen_block_corpus.c. */
static void key_seed(uint8_t seed[SIG_SEED_LEN])
{
    for (int i = 0; i < SIG_SEED_LEN; i++)
        seed[i] = (uint8_t)(i + 1);
}

static uint8_t raw[BLOCK_MAX_DATA], raw2[BLOCK_MAX_DATA], enc[BLOCK_MAX_ANY + KV_MAX_LEN];

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_block: %s\n", what);
    abort();
}

static const struct sig_key *harness_key(void)
{
    static struct sig_key k;
    static bool have;
    if (!have) {
        uint8_t seed[SIG_SEED_LEN];
        key_seed(seed);
        if (sig_key_from_seed(seed, &k) != 0)
            fail("cannot derive the harness key");
        have = true;
    }
    return &k;
}

static bool inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static void put_be(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

/* ---- file manifests ---- */

struct build_check {
    const uint8_t *want;
    size_t want_len;
    int calls;
};

static int check_emitted(void *ctx, const struct id *key, const uint8_t *bytes, size_t len)
{
    struct build_check *c = ctx;
    struct block_info bi;
    size_t n;

    c->calls++;
    if (block_verify(key, bytes, len) != 0 || block_parse(bytes, len, &bi) != 0)
        fail("file_manifest_build emitted a block that does not verify");
    if (bi.kind != BLOCK_KIND_FILE)
        fail("file_manifest_build emitted an indirect block for levels 0");
    if (block_decode(bytes, len, raw2, sizeof(raw2), &n) != 0)
        fail("file_manifest_build emitted a block that does not decode");
    if (n != c->want_len || memcmp(raw2, c->want, n) != 0)
        fail("rebuilt manifest differs from the input");
    return 0;
}

static void fuzz_manifest(const uint8_t *p, size_t len)
{
    struct file_manifest fm;

    if (file_manifest_parse(p, len, &fm) != 0)
        return;
    if (fm.nkeys > BLOCK_FILE_FANOUT || fm.levels > BLOCK_FILE_MAX_LEVELS || fm.chunk_size == 0 ||
        fm.chunk_size > BLOCK_MAX_DATA)
        fail("manifest decoded out of range");
    if (!inside(fm.keys, (size_t)fm.nkeys * ID_BYTES, p, len))
        fail("manifest keys outside the input");
    /* one spelling per manifest */
    uint8_t hdr[BLOCK_FILE_HDR] = {0};
    put_be(hdr, 8, fm.size);
    put_be(hdr + 8, 4, fm.chunk_size);
    hdr[12] = fm.levels;
    put_be(hdr + 16, 4, fm.nkeys);
    if (len != BLOCK_FILE_HDR + (size_t)fm.nkeys * ID_BYTES ||
        memcmp(hdr, p, BLOCK_FILE_HDR) != 0 || fm.keys != p + BLOCK_FILE_HDR)
        fail("manifest written out again differs from the input");
    if (fm.levels == 0) {
        struct build_check c = {p, len, 0};
        struct id fk;
        /* keys inside p are not aligned for struct id: copy them */
        struct id *keys = malloc(fm.nkeys ? (size_t)fm.nkeys * sizeof(*keys) : 1);
        if (!keys)
            fail("out of memory");
        if (fm.nkeys)
            memcpy(keys, fm.keys, (size_t)fm.nkeys * ID_BYTES);
        if (file_manifest_build(fm.size, fm.chunk_size, keys, fm.nkeys, check_emitted, &c, &fk) !=
                0 ||
            c.calls != 1)
            fail("a parsed manifest of levels 0 does not build");
        free(keys);
    }
}

static void fuzz_indirect(const uint8_t *p, size_t len)
{
    uint8_t level;
    uint32_t nkeys;
    const uint8_t *keys;

    if (file_indirect_parse(p, len, &level, &nkeys, &keys) != 0)
        return;
    if (level == 0 || level > BLOCK_FILE_MAX_LEVELS || nkeys == 0 || nkeys > BLOCK_FILE_FANOUT)
        fail("indirect block decoded out of range");
    uint8_t hdr[BLOCK_INDIRECT_HDR] = {level};
    put_be(hdr + 4, 4, nkeys);
    if (len != BLOCK_INDIRECT_HDR + (size_t)nkeys * ID_BYTES ||
        memcmp(hdr, p, BLOCK_INDIRECT_HDR) != 0 || keys != p + BLOCK_INDIRECT_HDR)
        fail("indirect block written out again differs from the input");
}

/* ---- content blocks ---- */

static void fuzz_content(const uint8_t *p, size_t len)
{
    struct block_info bi, bi2;
    struct id key, key2;
    size_t n = 0, n2 = 0, elen = 0;
    int prc, vrc, drc;

    hash_sha256(&key, p, len);
    prc = block_parse(p, len, &bi);
    vrc = block_verify(&key, p, len);
    drc = block_decode(p, len, raw, sizeof(raw), &n);
    if (prc != 0 && prc != -EBADMSG)
        fail("block_parse returned an unexpected error");
    if (vrc != 0 && vrc != -EBADMSG)
        fail("block_verify returned an unexpected error");
    if (drc != 0 && drc != -EBADMSG && drc != -ENOMEM)
        fail("block_decode returned an unexpected error");
    if ((vrc == 0 || drc == 0) && prc != 0)
        fail("a block verifies or decodes but does not parse");
    if (drc == 0 && vrc != 0)
        fail("a block decodes but does not verify under its own hash");
    if (prc != 0)
        return;
    if (!inside(bi.payload, bi.payload_len, p, len) || bi.payload_len != len - BLOCK_HDR_LEN ||
        bi.raw_len > BLOCK_MAX_DATA)
        fail("block_parse gave a payload outside the input");
    if (bi.codec == BLOCK_CODEC_RAW && (vrc != 0 || drc != 0))
        fail("a raw block that parses does not verify or decode");
    if (block_verify(&key, p, len - 1) == 0)
        fail("a block verifies without its last byte");
    if (drc != 0)
        return;
    if (n != bi.raw_len)
        fail("block_decode returned a length other than the raw length");
    /* a buffer one byte short is refused */
    if (n > 0 && block_decode(p, len, raw2, n - 1, &n2) != -ENOBUFS)
        fail("block_decode wrote into a buffer too small");

    int erc = block_encode(bi.kind, raw, n, bi.codec == BLOCK_CODEC_ZSTD, enc, &elen, &key2);
    if (erc == -ENOMEM)
        return;
    if (erc != 0)
        fail("a decoded block does not encode");
    if (bi.codec == BLOCK_CODEC_RAW && (elen != len || memcmp(enc, p, len) != 0))
        fail("a raw block re-encodes to other bytes");
    if (block_verify(&key2, enc, elen) != 0 || block_parse(enc, elen, &bi2) != 0 ||
        bi2.kind != bi.kind)
        fail("a re-encoded block does not verify");
    if (block_decode(enc, elen, raw2, sizeof(raw2), &n2) != 0 || n2 != n ||
        memcmp(raw, raw2, n) != 0)
        fail("a re-encoded block decodes to other bytes");

    /* What a file reader does next, on a heap block of exactly n bytes
     * (raw2 is check_emitted's). */
    if (bi.kind == BLOCK_KIND_FILE || bi.kind == BLOCK_KIND_INDIRECT) {
        uint8_t *m = malloc(n ? n : 1);
        if (!m)
            fail("out of memory");
        if (n)
            memcpy(m, raw, n);
        if (bi.kind == BLOCK_KIND_FILE)
            fuzz_manifest(m, n);
        else
            fuzz_indirect(m, n);
        free(m);
    }
}

/* ---- root blocks ---- */

static void fuzz_root(const uint8_t *p, size_t len)
{
    struct root_info ri, rv;
    struct id key;

    if (root_parse(p, len, &ri) != 0)
        return;
    if (ri.version == 0 || ri.payload_len > ROOT_MAX_PAYLOAD ||
        !inside(ri.payload, ri.payload_len, p, len) || !inside(ri.sig, SIG_LEN, p, len) ||
        len != ROOT_HDR_LEN + (size_t)ri.payload_len + SIG_LEN)
        fail("root_parse decoded out of range");
    root_key(&ri.pub, &key);
    int rc = root_verify(&key, p, len, &rv);
    if (rc != 0 && rc != -EBADMSG)
        fail("root_verify returned an unexpected error");
    if (rc != 0)
        return;
    if (rv.version != ri.version || rv.payload != ri.payload || rv.payload_len != ri.payload_len ||
        memcmp(rv.pub.b, ri.pub.b, SIG_PUB_LEN) != 0)
        fail("root_verify and root_parse disagree");
    key.b[0] ^= 1;
    if (root_verify(&key, p, len, NULL) == 0)
        fail("a root verifies under another key");
    const struct sig_key *k = harness_key();
    if (memcmp(ri.pub.b, k->pub.b, SIG_PUB_LEN) == 0) {
        size_t elen = 0;
        if (root_encode(k, ri.version, ri.payload, ri.payload_len, enc, &elen) != 0 ||
            elen != len || memcmp(enc, p, len) != 0)
            fail("a verified root of the harness key re-encodes to other bytes");
    }
}

/* ---- kv records ---- */

static void fuzz_kv(const uint8_t *p, size_t len)
{
    struct kv_info kv, kv2;
    size_t n = 0;

    if (kv_parse(p, len, &kv) != 0)
        return;
    if (kv.value_len > KV_MAX_VALUE || !inside(kv.value, kv.value_len, p, len))
        fail("kv_parse decoded out of range");
    if (kv_encode(&kv.key, kv.stamp_ms, kv.expiry_s, kv.replication, kv.value, kv.value_len, enc,
                  &n) != 0)
        fail("a parsed kv record does not encode");
    if (n != len || memcmp(enc, p, len) != 0)
        fail("a kv record re-encodes to other bytes");
    if (kv_parse(enc, n, &kv2) != 0 || !id_eq(&kv.key, &kv2.key) || kv.stamp_ms != kv2.stamp_ms ||
        kv.expiry_s != kv2.expiry_s || kv.replication != kv2.replication ||
        kv.value_len != kv2.value_len || memcmp(kv.value, kv2.value, kv.value_len) != 0)
        fail("a re-encoded kv record parses to other fields");
}

/* ---- leases ---- */

static void fuzz_lease(const uint8_t *p, size_t len)
{
    uint8_t out[LEASE_LEN];
    struct lease l, l2;
    const uint8_t *rec = len == ID_BYTES + LEASE_LEN ? p + ID_BYTES : p;

    if (len < LEASE_LEN)
        return;
    lease_decode(rec, &l);
    lease_encode(&l, out);
    if (memcmp(out, rec, LEASE_LEN) != 0)
        fail("a lease re-encodes to other bytes");
    lease_decode(out, &l2);
    if (memcmp(&l, &l2, sizeof(l)) != 0)
        fail("a re-encoded lease decodes to another lease");
    if (lease_newer(&l, &l2) || lease_newer(&l2, &l))
        fail("a lease is newer than itself");
    if (len != ID_BYTES + LEASE_LEN)
        return;

    struct id key;
    memcpy(key.b, p, ID_BYTES);
    if (!lease_verify(&l, &key))
        return;
    const struct sig_key *k = harness_key();
    if (memcmp(l.owner.b, k->pub.b, SIG_PUB_LEN) == 0) {
        if (lease_sign(k, &key, l.stamp_ms, l.expiry_s, &l2) != 0 ||
            memcmp(&l, &l2, sizeof(l)) != 0)
            fail("a verified lease of the harness key is not what lease_sign makes");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly size bytes, so that ASan sees any read past the input. */
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    if (size)
        memcpy(p, data, size);

    fuzz_content(p, size);
    fuzz_root(p, size);
    fuzz_kv(p, size);
    fuzz_lease(p, size);
    fuzz_manifest(p, size);
    fuzz_indirect(p, size);

    if (memcmp(p, data, size) != 0)
        fail("a decoder wrote into its input");
    free(p);
    return 0;
}
