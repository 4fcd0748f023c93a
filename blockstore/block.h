/* block.h — the bytes of every block coopfs stores, and their checks.
 *
 * Four self-verifying records, each laid out byte by byte in
 * docs/formats.md (all integers big-endian):
 *
 *   content block   key = SHA-256(stored bytes). Immutable.
 *     0 u8 format (1) | 1 u8 kind | 2 u8 codec | 3 u8 0 | 4 u32 raw length
 *     | 8 payload: raw, or one zstd frame that inflates to raw length
 *   root block      key = SHA-256(public key). Mutable, versioned, signed.
 *     0 u8 format (1) | 1 u8 kind (BLOCK_KIND_ROOT) | 2 u16 payload length
 *     | 4 public key [32] | 36 u64 version (>= 1) | 44 payload | signature [64]
 *     signed message: "coopfs root v1" NUL | key [32] | version u64
 *                     | payload length u16 | payload
 *   kv record       a value of the DHT API under a caller's 256-bit key.
 *     Anyone may write one, so nothing proves who did: the checksum only
 *     catches disk damage.
 *     0 u8 format (1) | 1 u8 kind (BLOCK_KIND_KV) | 2 u16 value length
 *     | 4 key [32] | 36 u64 stamp (writer's unix ms; the higher wins)
 *     | 44 u64 expiry (unix s) | 52 u8 replication | 53 u8[3] 0 | 56 value
 *     | first 8 bytes of SHA-256(everything before)
 *   lease record    one owner's claim on one block (112 bytes, fixed).
 *     0 owner public key [32] | 32 u64 stamp (unix ms when signed)
 *     | 40 u64 expiry (unix s; 0 = reclaimed) | 48 signature [64]
 *     signed message: "coopfs lease v1" NUL | block key [32] | stamp u64
 *                     | expiry u64
 *     Of two records of one owner on one block, the higher stamp wins, so a
 *     reclaim (expiry 0) beats every grant signed before it, and a replayed
 *     old grant never revives a reclaimed block.
 *
 * Content kinds: DATA (file bytes), FILE (a file manifest: its size, chunk
 * size and the keys of its chunks or of indirect blocks), INDIRECT (more
 * keys), and a range the file system of issue 5 fills in.
 *
 * Errors: 0 or a negative errno; -EBADMSG for bytes that do not decode or
 * do not verify, -EMSGSIZE for sizes over the limits.
 */
#ifndef COOPFS_BLOCKSTORE_BLOCK_H
#define COOPFS_BLOCKSTORE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/sig.h"

#define BLOCK_FORMAT     1
#define BLOCK_HDR_LEN    8
#define BLOCK_MAX_DATA   (256u * 1024u)                  /* raw payload of a content block */
#define BLOCK_MAX_STORED (BLOCK_HDR_LEN + BLOCK_MAX_DATA) /* compressed only when smaller */
#define ROOT_HDR_LEN     44
#define ROOT_MAX_PAYLOAD 1024u
#define ROOT_MAX_LEN     (ROOT_HDR_LEN + ROOT_MAX_PAYLOAD + SIG_LEN)
#define KV_HDR_LEN       56
#define KV_SUM_LEN       8
#define KV_MAX_VALUE     65000u /* the DHT API's u16 message size bounds it */
#define KV_MAX_LEN       (KV_HDR_LEN + KV_MAX_VALUE + KV_SUM_LEN)
#define LEASE_LEN        112
/* The largest record of any kind (a frame carries one with room to spare). */
#define BLOCK_MAX_ANY BLOCK_MAX_STORED

enum block_kind {
    BLOCK_KIND_DATA = 1,
    BLOCK_KIND_FILE = 2,
    BLOCK_KIND_INDIRECT = 3,
    BLOCK_KIND_FS_FIRST = 16, /* 16..63: the file system's objects (issue 5) */
    BLOCK_KIND_FS_LAST = 63,
    BLOCK_KIND_ROOT = 0x80,
    BLOCK_KIND_KV = 0x81,
};

enum block_codec { BLOCK_CODEC_RAW = 0, BLOCK_CODEC_ZSTD = 1 };

/* ---- content blocks ---- */

/* Encodes raw payload data[0..len) (len <= BLOCK_MAX_DATA) as a content
 * block of kind into out (room for BLOCK_MAX_STORED bytes). With compress,
 * tries zstd and keeps it only when it saves at least 1/16 of the size.
 * Sets *out_len and *key. Returns 0, -EINVAL (kind), -EMSGSIZE, -ENOMEM. */
int block_encode(uint8_t kind, const void *data, size_t len, bool compress, uint8_t *out,
                 size_t *out_len, struct id *key);

struct block_info {
    uint8_t kind, codec;
    uint32_t raw_len;
    const uint8_t *payload; /* inside the bytes parsed */
    size_t payload_len;
};
/* Checks the header of content-block bytes (not the hash, not the zstd
 * frame). Returns 0 and *out, or -EBADMSG. */
int block_parse(const void *bytes, size_t len, struct block_info *out);
/* Checks bytes as block_verify does and sets *key to their SHA-256,
 * hashing once (for a caller that does not know the key yet). Returns 0 or
 * -EBADMSG (*key untouched). */
int block_key(const void *bytes, size_t len, struct id *key);
/* Returns 0 if bytes are a well-formed content block whose SHA-256 is
 * key, else -EBADMSG. For zstd it checks the frame's structure (one standard
 * frame declaring the raw length, ending with the bytes), not its contents:
 * only block_decode finds damage inside a frame. */
int block_verify(const struct id *key, const void *bytes, size_t len);
/* Inflates the payload of well-formed content-block bytes into out
 * (cap >= raw length). Sets *out_len. Returns 0, -EBADMSG (bad zstd frame or
 * size mismatch), -ENOBUFS (cap too small), -ENOMEM. */
int block_decode(const void *bytes, size_t len, void *out, size_t cap, size_t *out_len);

/* ---- root blocks ---- */

struct root_info {
    struct sig_pub pub;
    uint64_t version;
    const uint8_t *payload; /* inside the bytes parsed */
    uint16_t payload_len;
    const uint8_t *sig;
};
/* The key of the root block of pub: SHA-256(pub). */
void root_key(const struct sig_pub *pub, struct id *out);
/* Signs a root block of version (>= 1) with payload into out (room for
 * ROOT_MAX_LEN). Sets *out_len. Returns 0, -EINVAL, -EMSGSIZE, -EIO. */
int root_encode(const struct sig_key *k, uint64_t version, const void *payload, size_t len,
                uint8_t *out, size_t *out_len);
/* Decodes without checking the signature. Returns 0 and *out, or -EBADMSG. */
int root_parse(const void *bytes, size_t len, struct root_info *out);
/* Decodes and checks that SHA-256(pub) == key and the signature holds.
 * Returns 0 and *out (may be NULL), or -EBADMSG. */
int root_verify(const struct id *key, const void *bytes, size_t len, struct root_info *out);

/* ---- kv records (DHT API values) ---- */

struct kv_info {
    struct id key;
    uint64_t stamp_ms, expiry_s;
    uint8_t replication;
    const uint8_t *value; /* inside the bytes parsed */
    uint16_t value_len;
};
/* Encodes a kv record into out (room for KV_MAX_LEN). Returns 0 or
 * -EMSGSIZE. */
int kv_encode(const struct id *key, uint64_t stamp_ms, uint64_t expiry_s, uint8_t replication,
              const void *value, size_t len, uint8_t *out, size_t *out_len);
/* Decodes and checks the checksum. Returns 0 and *out, or -EBADMSG. */
int kv_parse(const void *bytes, size_t len, struct kv_info *out);

/* ---- lease records ---- */

struct lease {
    struct sig_pub owner;
    uint64_t stamp_ms;
    uint64_t expiry_s; /* 0: reclaimed */
    uint8_t sig[SIG_LEN];
};
/* Fills and signs a lease of k's owner on block key. expiry_s 0 makes a
 * reclaim. Returns 0 or -EIO. */
int lease_sign(const struct sig_key *k, const struct id *key, uint64_t stamp_ms,
               uint64_t expiry_s, struct lease *out);
/* True if l's signature over key holds. */
bool lease_verify(const struct lease *l, const struct id *key);
void lease_encode(const struct lease *l, uint8_t out[LEASE_LEN]);
void lease_decode(const uint8_t in[LEASE_LEN], struct lease *out); /* never fails */
/* Does a (same owner) win over b? Higher stamp wins; on equal stamps the
 * reclaim wins, then the larger expiry, then the larger signature bytes, so
 * every node picks the same record. */
bool lease_newer(const struct lease *a, const struct lease *b);

/* ---- files (PAST insert/lookup) ----
 * A file is a FILE block whose payload is
 *   u64 file size | u32 chunk size | u8 levels | u8[3] 0 | u32 n | n keys [32]
 * With levels 0 the keys are DATA chunks in order; with levels L > 0 they
 * are INDIRECT blocks, whose payload is
 *   u8 level (L..1) | u8[3] 0 | u32 n | n keys [32]
 * and a level-1 indirect block lists DATA chunks. Every block except the
 * last at each level is full (BLOCK_FILE_FANOUT keys). */
#define BLOCK_FILE_HDR      20
#define BLOCK_INDIRECT_HDR  8
#define BLOCK_FILE_FANOUT   ((BLOCK_MAX_DATA - BLOCK_FILE_HDR) / ID_BYTES) /* 8191 */
#define BLOCK_FILE_MAX_LEVELS 4

struct file_manifest {
    uint64_t size;
    uint32_t chunk_size; /* 1..BLOCK_MAX_DATA */
    uint8_t levels;
    uint32_t nkeys;
    const uint8_t *keys; /* nkeys * 32 bytes, inside the payload parsed */
};
/* Parses the inflated payload of a FILE block. Checks that the number of
 * keys fits size, chunk size and levels. Returns 0 or -EBADMSG. */
int file_manifest_parse(const void *payload, size_t len, struct file_manifest *out);
/* Parses the inflated payload of an INDIRECT block. Returns 0, sets *level,
 * *nkeys and *keys, or -EBADMSG. */
int file_indirect_parse(const void *payload, size_t len, uint8_t *level, uint32_t *nkeys,
                        const uint8_t **keys);

/* Builds the manifest tree of a file whose chunk keys are keys[0..n) and
 * hands every block it makes (indirect ones first, the FILE block last) to
 * emit, which returns 0 or a negative errno that stops the build. Sets
 * *file_key to the FILE block's key. Returns 0, -EMSGSIZE (more than
 * BLOCK_FILE_MAX_LEVELS levels), -EINVAL (chunk_size not in 1..BLOCK_MAX_DATA,
 * or n != ceil(size / chunk_size)), -ENOMEM, or emit's error. */
typedef int (*file_emit_fn)(void *ctx, const struct id *key, const uint8_t *bytes, size_t len);
int file_manifest_build(uint64_t size, uint32_t chunk_size, const struct id *keys, size_t n,
                        file_emit_fn emit, void *ctx, struct id *file_key);

#endif
