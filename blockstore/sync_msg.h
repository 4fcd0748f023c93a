/* sync_msg.h — codecs of the maintenance messages, types 1020..1023
 * (docs/protocol.md, "Maintenance"). Pure functions over bytes: no state,
 * no allocation except the entry array of a decoded SYNC_DIGEST_OK.
 *
 *   SYNC_DIGEST      lo, hi, depth, prefix, and the (count, digest) of every
 *                    non-empty child bucket of the prefix inside (lo, hi]
 *   SYNC_DIGEST_OK   per differing bucket: the receiver's entries, or
 *                    "descend"
 *   SYNC_KEYS        a list of (type, key)
 *   SYNC_KEYS_OK     per key: whether and how the receiver holds it
 *
 * Decoders return 0 or BS_ERR_MALFORMED and check every length, count,
 * order and enum value; they write their out-parameters only on success,
 * and every message that decodes encodes back to the same bytes. Encoders
 * return 0, -EINVAL (a value out of range) or -EMSGSIZE (buffer too small).
 */
#ifndef COOPFS_BLOCKSTORE_SYNC_MSG_H
#define COOPFS_BLOCKSTORE_SYNC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/id.h"

#define SYNC_BUCKETS    256  /* children of a prefix: the next key byte */
#define SYNC_DEPTH_MAX  31   /* prefix bytes; a depth-31 bucket is one key */
#define SYNC_DIGEST_LEN 8    /* digest bytes kept per bucket and per entry */
#define SYNC_LIST_MAX   64   /* a bucket is listed when both sides hold at most this */
#define SYNC_REPLY_MAX  4096 /* entries listed in one SYNC_DIGEST_OK */
#define SYNC_KEYS_MAX   256  /* keys in one SYNC_KEYS */

/* Largest encodings. */
#define SYNC_DIGEST_WIRE_MAX                                                                       \
    (2 * ID_BYTES + 1 + SYNC_DEPTH_MAX + SYNC_BUCKETS / 8 + SYNC_BUCKETS * (4 + SYNC_DIGEST_LEN))
#define SYNC_ENTRY_WIRE       (2 + ID_BYTES + 8 + SYNC_DIGEST_LEN)
#define SYNC_REPLY_WIRE_MAX   (2 + SYNC_BUCKETS * 4 + SYNC_REPLY_MAX * SYNC_ENTRY_WIRE)
#define SYNC_KEYS_WIRE_MAX    (2 + SYNC_KEYS_MAX * (1 + ID_BYTES))
#define SYNC_KEYS_OK_WIRE     (1 + 8 + SYNC_DIGEST_LEN)
#define SYNC_KEYS_OK_WIRE_MAX (2 + SYNC_KEYS_MAX * SYNC_KEYS_OK_WIRE)

/* What a holder says about one record. */
enum sync_flag {
    SYNC_F_HELD = 0x01,    /* an entry exists (SYNC_KEYS_OK only; listed entries always are) */
    SYNC_F_PRESENT = 0x02, /* the bytes are held and passed their checks */
    SYNC_F_LIVE = 0x04,    /* content: a live lease; kv: not expired; root: always */
    SYNC_F_BAD = 0x08,     /* the copy failed a check and awaits repair */
    SYNC_F_BUSY = 0x10,    /* a durable write of it is in flight */
};
#define SYNC_F_ALL 0x1f

struct sync_bucket {
    uint32_t count; /* 0: empty (not on the wire) */
    uint8_t digest[SYNC_DIGEST_LEN];
};

struct sync_digest {
    struct id lo, hi; /* the range (lo, hi]; lo == hi is the whole ring */
    uint8_t depth;    /* 0..SYNC_DEPTH_MAX */
    uint8_t prefix[SYNC_DEPTH_MAX];
    struct sync_bucket b[SYNC_BUCKETS];
};

struct sync_entry {
    uint8_t type;  /* enum store_type */
    uint8_t flags; /* enum sync_flag */
    struct id key;
    uint64_t version; /* root: version; kv: stamp; content: 0 */
    uint8_t digest[SYNC_DIGEST_LEN];
};

enum { SYNC_MODE_LIST = 0, SYNC_MODE_DESCEND = 1 };

struct sync_reply_bucket {
    uint8_t bucket;
    uint8_t mode;   /* SYNC_MODE_* */
    uint16_t n;     /* LIST: entries */
    uint32_t first; /* LIST: index of the first in sync_reply.ent */
};

struct sync_reply {
    uint16_t nb; /* buckets described, ascending */
    struct sync_reply_bucket rb[SYNC_BUCKETS];
    uint32_t nent;
    struct sync_entry *ent; /* decode: malloc'd, sync_reply_release frees; encode: caller's */
};

int sync_digest_encode(const struct sync_digest *m, uint8_t *buf, size_t cap, size_t *len);
int sync_digest_decode(const uint8_t *p, size_t len, struct sync_digest *out);

int sync_reply_encode(const struct sync_reply *m, uint8_t *buf, size_t cap, size_t *len);
/* On success *out owns out->ent (NULL when nent is 0): release it. -ENOMEM
 * is possible too. */
int sync_reply_decode(const uint8_t *p, size_t len, struct sync_reply *out);
void sync_reply_release(struct sync_reply *m);

/* SYNC_KEYS: the type and key of e[0..n) (1 <= n <= SYNC_KEYS_MAX). */
int sync_keys_encode(const struct sync_entry *e, size_t n, uint8_t *buf, size_t cap, size_t *len);
/* Fills type and key of out[0..*n) (room for SYNC_KEYS_MAX); zeroes the rest. */
int sync_keys_decode(const uint8_t *p, size_t len, struct sync_entry *out, size_t *n);
/* SYNC_KEYS_OK: flags, version and digest of e[0..n). */
int sync_keys_ok_encode(const struct sync_entry *e, size_t n, uint8_t *buf, size_t cap,
                        size_t *len);
/* Fills flags, version and digest of out[0..n); the reply must describe
 * exactly n keys (those of the request). */
int sync_keys_ok_decode(const uint8_t *p, size_t len, struct sync_entry *out, size_t n);

#endif
