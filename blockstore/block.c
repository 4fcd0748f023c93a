/* block.c — the bytes of content blocks, root blocks, kv records and
 * leases, and their checks (block.h; docs/formats.md has the tables).
 *
 * Every decoder here is fed bytes from the network or the disk: it checks
 * each length against what is left before it reads, refuses trailing
 * bytes, and writes its out-parameter only when everything held.
 */
#include "blockstore/block.h"

#include <errno.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "common/hash.h"

/* Domain separation: a signature over one kind of record can never be
 * taken for a signature over another. The NUL is part of the message. */
static const char root_domain[] = "coopfs root v1";
static const char lease_domain[] = "coopfs lease v1";

#define ROOT_MSG_MAX  (sizeof(root_domain) + ID_BYTES + 8 + 2 + ROOT_MAX_PAYLOAD)
#define LEASE_MSG_LEN (sizeof(lease_domain) + ID_BYTES + 8 + 8)

#define ZSTD_LEVEL 1

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* ---- content blocks ---- */

static bool content_kind(uint8_t kind)
{
    return kind == BLOCK_KIND_DATA || kind == BLOCK_KIND_FILE || kind == BLOCK_KIND_INDIRECT ||
           (kind >= BLOCK_KIND_FS_FIRST && kind <= BLOCK_KIND_FS_LAST);
}

int block_encode(uint8_t kind, const void *data, size_t len, bool compress, uint8_t *out,
                 size_t *out_len, struct id *key)
{
    uint8_t codec = BLOCK_CODEC_RAW;
    size_t stored = len;

    if (!content_kind(kind))
        return -EINVAL;
    if (len > BLOCK_MAX_DATA)
        return -EMSGSIZE;
    if (compress && len > 0) {
        /* The frame must save at least len/16 to be worth inflating on
         * every read. zstd gets all the room out has (with less it refuses
         * some small inputs that would fit: it wants its worst case), and a
         * frame that does not fit even there fails with dstSize_tooSmall. */
        size_t room =
            ZSTD_compressBound(len) < BLOCK_MAX_DATA ? ZSTD_compressBound(len) : BLOCK_MAX_DATA;
        size_t c = ZSTD_compress(out + BLOCK_HDR_LEN, room, data, len, ZSTD_LEVEL);
        if (!ZSTD_isError(c) && c <= len - (len + 15) / 16) {
            codec = BLOCK_CODEC_ZSTD;
            stored = c;
        } else if (ZSTD_getErrorCode(c) == ZSTD_error_memory_allocation) {
            return -ENOMEM;
        }
    }
    if (codec == BLOCK_CODEC_RAW && len > 0)
        memcpy(out + BLOCK_HDR_LEN, data, len);
    out[0] = BLOCK_FORMAT;
    out[1] = kind;
    out[2] = codec;
    out[3] = 0;
    put32(out + 4, (uint32_t)len);
    *out_len = BLOCK_HDR_LEN + stored;
    hash_sha256(key, out, *out_len);
    return 0;
}

int block_parse(const void *bytes, size_t len, struct block_info *out)
{
    const uint8_t *p = bytes;
    uint32_t raw_len;
    size_t plen;

    if (len < BLOCK_HDR_LEN || len > BLOCK_MAX_STORED)
        return -EBADMSG;
    raw_len = get32(p + 4);
    plen = len - BLOCK_HDR_LEN;
    if (p[0] != BLOCK_FORMAT || !content_kind(p[1]) || p[3] != 0 || raw_len > BLOCK_MAX_DATA)
        return -EBADMSG;
    switch (p[2]) {
    case BLOCK_CODEC_RAW:
        if (plen != raw_len)
            return -EBADMSG;
        break;
    case BLOCK_CODEC_ZSTD:
        /* Compressed only when smaller: this also bounds the stored size. */
        if (plen == 0 || plen >= raw_len)
            return -EBADMSG;
        break;
    default: return -EBADMSG;
    }
    out->kind = p[1];
    out->codec = p[2];
    out->raw_len = raw_len;
    out->payload = p + BLOCK_HDR_LEN;
    out->payload_len = plen;
    return 0;
}

/* Checks the structure of a zstd payload without inflating it: exactly one
 * standard frame (no legacy or skippable ones), which declares raw_len and
 * ends where the payload ends. */
static int zstd_frame_check(const uint8_t *p, size_t n, uint32_t raw_len)
{
    static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd}; /* ZSTD_MAGICNUMBER, LE */

    if (n < sizeof(magic) || memcmp(p, magic, sizeof(magic)) != 0)
        return -EBADMSG;
    /* ZSTD_CONTENTSIZE_UNKNOWN and _ERROR are far above any raw_len. */
    if (ZSTD_getFrameContentSize(p, n) != raw_len)
        return -EBADMSG;
    if (ZSTD_findFrameCompressedSize(p, n) != n) /* an error code is never n */
        return -EBADMSG;
    return 0;
}

int block_key(const void *bytes, size_t len, struct id *key)
{
    struct block_info bi;

    if (block_parse(bytes, len, &bi) < 0)
        return -EBADMSG;
    if (bi.codec == BLOCK_CODEC_ZSTD &&
        zstd_frame_check(bi.payload, bi.payload_len, bi.raw_len) < 0)
        return -EBADMSG;
    hash_sha256(key, bytes, len);
    return 0;
}

int block_verify(const struct id *key, const void *bytes, size_t len)
{
    struct id h;

    if (block_key(bytes, len, &h) < 0)
        return -EBADMSG;
    return id_eq(&h, key) ? 0 : -EBADMSG;
}

int block_decode(const void *bytes, size_t len, void *out, size_t cap, size_t *out_len)
{
    struct block_info bi;
    size_t n;

    if (block_parse(bytes, len, &bi) < 0)
        return -EBADMSG;
    if (bi.codec == BLOCK_CODEC_ZSTD &&
        zstd_frame_check(bi.payload, bi.payload_len, bi.raw_len) < 0)
        return -EBADMSG;
    if (cap < bi.raw_len)
        return -ENOBUFS;
    if (bi.codec == BLOCK_CODEC_RAW) {
        if (bi.raw_len > 0)
            memcpy(out, bi.payload, bi.raw_len);
    } else {
        /* Exactly raw_len of room: a frame that inflates to more fails. */
        n = ZSTD_decompress(out, bi.raw_len, bi.payload, bi.payload_len);
        if (ZSTD_isError(n)) {
            return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM : -EBADMSG;
        }
        if (n != bi.raw_len)
            return -EBADMSG;
    }
    *out_len = bi.raw_len;
    return 0;
}

/* ---- root blocks ---- */

void root_key(const struct sig_pub *pub, struct id *out)
{
    hash_sha256(out, pub->b, SIG_PUB_LEN);
}

/* The message a root's signature covers (block.h). Returns its length. */
static size_t root_message(uint8_t m[ROOT_MSG_MAX], const struct id *key, uint64_t version,
                           const uint8_t *payload, uint16_t plen)
{
    uint8_t *p = m;
    memcpy(p, root_domain, sizeof(root_domain));
    p += sizeof(root_domain);
    memcpy(p, key->b, ID_BYTES);
    p += ID_BYTES;
    put64(p, version);
    p += 8;
    put16(p, plen);
    p += 2;
    if (plen > 0)
        memcpy(p, payload, plen);
    return (size_t)(p - m) + plen;
}

int root_encode(const struct sig_key *k, uint64_t version, const void *payload, size_t len,
                uint8_t *out, size_t *out_len)
{
    uint8_t m[ROOT_MSG_MAX], sig[SIG_LEN];
    struct id key;
    size_t mlen;
    int rc;

    if (version == 0)
        return -EINVAL;
    if (len > ROOT_MAX_PAYLOAD)
        return -EMSGSIZE;
    root_key(&k->pub, &key);
    mlen = root_message(m, &key, version, payload, (uint16_t)len);
    rc = sig_sign(k, m, mlen, sig);
    if (rc < 0)
        return rc;
    out[0] = BLOCK_FORMAT;
    out[1] = BLOCK_KIND_ROOT;
    put16(out + 2, (uint16_t)len);
    memcpy(out + 4, k->pub.b, SIG_PUB_LEN);
    put64(out + 36, version);
    if (len > 0)
        memcpy(out + ROOT_HDR_LEN, payload, len);
    memcpy(out + ROOT_HDR_LEN + len, sig, SIG_LEN);
    *out_len = ROOT_HDR_LEN + len + SIG_LEN;
    return 0;
}

int root_parse(const void *bytes, size_t len, struct root_info *out)
{
    const uint8_t *p = bytes;
    uint16_t plen;
    uint64_t version;

    if (len < ROOT_HDR_LEN + SIG_LEN || len > ROOT_MAX_LEN)
        return -EBADMSG;
    plen = get16(p + 2);
    version = get64(p + 36);
    if (p[0] != BLOCK_FORMAT || p[1] != BLOCK_KIND_ROOT || plen > ROOT_MAX_PAYLOAD ||
        len != (size_t)ROOT_HDR_LEN + plen + SIG_LEN || version == 0)
        return -EBADMSG;
    memcpy(out->pub.b, p + 4, SIG_PUB_LEN);
    out->version = version;
    out->payload = p + ROOT_HDR_LEN;
    out->payload_len = plen;
    out->sig = p + ROOT_HDR_LEN + plen;
    return 0;
}

int root_verify(const struct id *key, const void *bytes, size_t len, struct root_info *out)
{
    uint8_t m[ROOT_MSG_MAX];
    struct root_info ri;
    struct id k;
    size_t mlen;

    if (root_parse(bytes, len, &ri) < 0)
        return -EBADMSG;
    root_key(&ri.pub, &k);
    if (!id_eq(&k, key))
        return -EBADMSG;
    mlen = root_message(m, key, ri.version, ri.payload, ri.payload_len);
    if (!sig_verify(&ri.pub, m, mlen, ri.sig))
        return -EBADMSG;
    if (out)
        *out = ri;
    return 0;
}

/* ---- kv records ---- */

int kv_encode(const struct id *key, uint64_t stamp_ms, uint64_t expiry_s, uint8_t replication,
              const void *value, size_t len, uint8_t *out, size_t *out_len)
{
    struct id sum;

    if (len > KV_MAX_VALUE)
        return -EMSGSIZE;
    out[0] = BLOCK_FORMAT;
    out[1] = BLOCK_KIND_KV;
    put16(out + 2, (uint16_t)len);
    memcpy(out + 4, key->b, ID_BYTES);
    put64(out + 36, stamp_ms);
    put64(out + 44, expiry_s);
    out[52] = replication;
    memset(out + 53, 0, 3);
    if (len > 0)
        memcpy(out + KV_HDR_LEN, value, len);
    hash_sha256(&sum, out, KV_HDR_LEN + len);
    memcpy(out + KV_HDR_LEN + len, sum.b, KV_SUM_LEN);
    *out_len = KV_HDR_LEN + len + KV_SUM_LEN;
    return 0;
}

int kv_parse(const void *bytes, size_t len, struct kv_info *out)
{
    const uint8_t *p = bytes;
    uint16_t vlen;
    struct id sum;

    if (len < KV_HDR_LEN + KV_SUM_LEN || len > KV_MAX_LEN)
        return -EBADMSG;
    vlen = get16(p + 2);
    if (p[0] != BLOCK_FORMAT || p[1] != BLOCK_KIND_KV || vlen > KV_MAX_VALUE ||
        len != (size_t)KV_HDR_LEN + vlen + KV_SUM_LEN || p[53] || p[54] || p[55])
        return -EBADMSG;
    hash_sha256(&sum, p, KV_HDR_LEN + vlen);
    if (memcmp(sum.b, p + KV_HDR_LEN + vlen, KV_SUM_LEN) != 0)
        return -EBADMSG;
    memcpy(out->key.b, p + 4, ID_BYTES);
    out->stamp_ms = get64(p + 36);
    out->expiry_s = get64(p + 44);
    out->replication = p[52];
    out->value = p + KV_HDR_LEN;
    out->value_len = vlen;
    return 0;
}

/* ---- leases ---- */

static void lease_message(uint8_t m[LEASE_MSG_LEN], const struct id *key, uint64_t stamp_ms,
                          uint64_t expiry_s)
{
    memcpy(m, lease_domain, sizeof(lease_domain));
    memcpy(m + sizeof(lease_domain), key->b, ID_BYTES);
    put64(m + sizeof(lease_domain) + ID_BYTES, stamp_ms);
    put64(m + sizeof(lease_domain) + ID_BYTES + 8, expiry_s);
}

int lease_sign(const struct sig_key *k, const struct id *key, uint64_t stamp_ms, uint64_t expiry_s,
               struct lease *out)
{
    uint8_t m[LEASE_MSG_LEN], sig[SIG_LEN];
    int rc;

    lease_message(m, key, stamp_ms, expiry_s);
    rc = sig_sign(k, m, sizeof(m), sig);
    if (rc < 0)
        return rc;
    out->owner = k->pub;
    out->stamp_ms = stamp_ms;
    out->expiry_s = expiry_s;
    memcpy(out->sig, sig, SIG_LEN);
    return 0;
}

bool lease_verify(const struct lease *l, const struct id *key)
{
    uint8_t m[LEASE_MSG_LEN];
    lease_message(m, key, l->stamp_ms, l->expiry_s);
    return sig_verify(&l->owner, m, sizeof(m), l->sig);
}

void lease_encode(const struct lease *l, uint8_t out[LEASE_LEN])
{
    memcpy(out, l->owner.b, SIG_PUB_LEN);
    put64(out + 32, l->stamp_ms);
    put64(out + 40, l->expiry_s);
    memcpy(out + 48, l->sig, SIG_LEN);
}

void lease_decode(const uint8_t in[LEASE_LEN], struct lease *out)
{
    memcpy(out->owner.b, in, SIG_PUB_LEN);
    out->stamp_ms = get64(in + 32);
    out->expiry_s = get64(in + 40);
    memcpy(out->sig, in + 48, SIG_LEN);
}

bool lease_newer(const struct lease *a, const struct lease *b)
{
    int c;

    if (a->stamp_ms != b->stamp_ms)
        return a->stamp_ms > b->stamp_ms;
    if ((a->expiry_s == 0) != (b->expiry_s == 0))
        return a->expiry_s == 0; /* a reclaim beats a grant of the same instant */
    if (a->expiry_s != b->expiry_s)
        return a->expiry_s > b->expiry_s;
    c = memcmp(a->sig, b->sig, SIG_LEN);
    if (c != 0)
        return c > 0;
    /* Only for records of different owners, which callers do not compare:
     * it keeps the order total all the same. */
    return memcmp(a->owner.b, b->owner.b, SIG_PUB_LEN) > 0;
}
