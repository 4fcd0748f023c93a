/* internal.h — what the blockstore/ sources share; not a public API.
 *
 *   index.c    the records a node holds: sorted index, leases, accounting
 *   msg.c      codecs of the storage messages (msg.h)
 *   bs.c       lifecycle, frame dispatch, requests/replies, persist tokens
 *   server.c   the server side: PUT as primary, STORE, GET, LOCATE, roots,
 *              leases
 *   client.c   the client side: location cache, put/get/root/lease/kv
 *   sync.c     maintenance: range digests, push/pull, handoff, expiry
 *
 * Everything runs on the one thread that feeds the struct bs.
 */
#ifndef COOPFS_BLOCKSTORE_INTERNAL_H
#define COOPFS_BLOCKSTORE_INTERNAL_H

#include "blockstore/bs.h"
#include "common/frame.h"

/* ---- the index (index.c) ---- */

enum bs_entry_flag {
    BS_E_PRESENT = 0x01, /* the record's bytes are on disk */
    BS_E_WRITING = 0x02, /* a durable write of it is in flight */
    BS_E_BAD = 0x04,     /* its copy failed a check; leases kept until repaired */
};

struct bs_entry {
    struct id key;
    uint8_t type;  /* enum store_type */
    uint8_t flags; /* enum bs_entry_flag */
    uint16_t nleases;
    uint32_t size;     /* bytes of the record (what counts against capacity) */
    uint64_t version;  /* root: version; kv: stamp_ms */
    uint64_t expiry_s; /* kv: expiry; content: latest live lease expiry (0: none) */
    struct lease *leases; /* content: one per owner, lease_newer() winners, sorted by
                           * owner; owned */
    struct id digest;     /* sync digest of this entry, see bs_entry_digest() */
    /* The now_s of the last lease evaluation (bs_index_merge_leases): while
     * the entry is present or being written, each lease with expiry_s >
     * counted_s counts size against its owner. Kept so the index takes back
     * exactly what it added. */
    uint64_t counted_s;
};

struct bs_index {
    struct bs_entry **v; /* sorted by (key, type) */
    size_t n, cap;
    uint64_t used;       /* sum of size over entries with BS_E_PRESENT or BS_E_WRITING */
    uint64_t counts[4];  /* by type: entries with BS_E_PRESENT */
    struct bs_owner_use *owners; /* per-owner usage, sorted by owner */
    size_t nowners, cap_owners;
};

struct bs_owner_use {
    struct sig_pub owner;
    uint64_t bytes;
    uint64_t records; /* lease records of this owner in the index; the row goes at 0 */
};

int bs_index_init(struct bs_index *ix);
void bs_index_release(struct bs_index *ix);
struct bs_entry *bs_index_find(const struct bs_index *ix, enum store_type type,
                               const struct id *key);
/* Adds an empty entry (no flags, no leases); -EEXIST, -ENOMEM. */
int bs_index_add(struct bs_index *ix, enum store_type type, const struct id *key,
                 struct bs_entry **out);
/* Removes and frees the entry, fixing the accounting. */
void bs_index_remove(struct bs_index *ix, struct bs_entry *e);
/* Position of the first entry whose key is >= key (0..n). Entries of the
 * ring range (lo, hi] are found from bs_index_lower_bound(lo) onward,
 * skipping a key equal to lo and wrapping past n to 0 when hi < lo. */
size_t bs_index_lower_bound(const struct bs_index *ix, const struct id *key);
/* Sets size and flags (the whole flag byte: PRESENT, WRITING, BAD), keeping
 * used, counts and owner usage exact; recomputes the digest. */
void bs_index_set_size(struct bs_index *ix, struct bs_entry *e, uint32_t size, uint8_t flags);
/* Merges lease records (each already verified) into e: per owner the
 * lease_newer() winner stays. Sets *changed if anything changed (may be
 * NULL). Updates owner usage and e->expiry_s for now_s (n = 0 only
 * re-evaluates them: what maintenance does as leases expire). Recomputes
 * the digest. Returns 0 or -ENOMEM (nothing changed). */
int bs_index_merge_leases(struct bs_index *ix, struct bs_entry *e, const struct lease *l,
                          size_t n, uint64_t now_s, bool *changed);
/* Does e have a lease that is live at now_s? */
bool bs_entry_live(const struct bs_entry *e, uint64_t now_s);
/* Bytes the owner holds here (blocks on which it has a live lease). */
uint64_t bs_index_owner_bytes(const struct bs_index *ix, const struct sig_pub *owner);
/* Recomputes e->digest: SHA-256 over type, key, whether present, the
 * version (root, kv) and the lease records in owner order. Two holders with
 * the same record and the same leases have the same digest. add, set_size
 * and merge_leases call it; code that sets e->version itself calls it. */
void bs_entry_digest(struct bs_entry *e);

/* ---- requests and replies (bs.c) ---- */

/* A reply arrived (status 0, payload of the reply frame of type h_type) or
 * the request failed (-ETIMEDOUT after every try, -ECANCELED at bs_free,
 * -EHOSTUNREACH when the transport proved nobody listens there). */
typedef void (*bs_rpc_fn)(struct bs *b, void *ctx, int status, uint16_t type,
                          const uint8_t *payload, size_t len);

/* Sends a request frame to `to`; retries after cfg.rpc_timeout_ms up to
 * cfg.rpc_tries. Copies payload. Returns 0 (cb will run once, never inside
 * this call), -ENOMEM, -EMSGSIZE. */
int bs_rpc(struct bs *b, const struct addr *to, uint16_t type, const void *payload, size_t len,
           bs_rpc_fn cb, void *ctx, uint64_t *reqid);
/* Forgets a request without calling its cb. */
void bs_rpc_cancel(struct bs *b, uint64_t reqid);
/* Sends a reply frame (FRAME_F_REPLY, same request id). */
void bs_reply(struct bs *b, const struct addr *to, uint64_t reqid, uint16_t type,
              const void *payload, size_t len);
/* Sends a BS_MSG_FAILURE reply with code, a reason text and, when vnode >= 0,
 * the location of that local vnode. */
void bs_reply_failure(struct bs *b, const struct addr *to, uint64_t reqid, int code,
                      const char *reason, int vnode);

/* Starts a durable persist operation; cb runs when it completes. */
typedef void (*bs_persist_fn)(struct bs *b, void *ctx, int status);
int bs_persist_write(struct bs *b, enum store_type type, const struct id *key,
                     const void *bytes, size_t len, bs_persist_fn cb, void *ctx);
int bs_persist_remove(struct bs *b, enum store_type type, const struct id *key,
                      bs_persist_fn cb, void *ctx);
int bs_persist_leases(struct bs *b, const struct id *key, const struct lease *l, size_t n,
                      bs_persist_fn cb, void *ctx);
/* Starts a read of the local copy of (type, key) off the loop. cb runs once,
 * never inside the call, with 0 and the bytes (valid during cb only), or
 * -ENOENT, -EBADMSG (the copy failed its check and is gone from the
 * store), -EIO, -ENOMEM, -ECANCELED (bs_free) and NULL. The index is not
 * touched: see bs_read_mark. Returns 0 or a negative errno (no cb). */
typedef void (*bs_read_fn)(struct bs *b, void *ctx, int status, const uint8_t *bytes, size_t len);
int bs_persist_read(struct bs *b, enum store_type type, const struct id *key, bs_read_fn cb,
                    void *ctx);

/* ---- server helpers that maintenance uses (server.c) ---- */

/* Verifies a record received from a peer (type, key, bytes, leases; leases
 * checked with lease_verify) and stores it durably if admitted (capacity,
 * quota, root version rules, kv stamps), merging leases. cb gets 0,
 * BS_ERR_FULL, BS_ERR_QUOTA, BS_ERR_BAD_BLOCK, BS_ERR_STALE, BS_ERR_NO_LEASE
 * or a persist error. Returns 0 (cb will run) or one of those at once.
 * flags: BS_STORE_REPAIR (a good copy for a holder whose own went bad: no
 * new lease needed), BS_STORE_VERIFIED (the caller has just checked the
 * block against its key and the leases' signatures, as the primary of a
 * put does, so they are not checked twice). */
enum { BS_STORE_REPAIR = 1, BS_STORE_VERIFIED = 2 };
int bs_store_record(struct bs *b, enum store_type type, const struct id *key,
                    const uint8_t *bytes, size_t len, const struct lease *l, size_t nleases,
                    unsigned flags, bs_persist_fn cb, void *ctx);
/* Sends the local copy of (type, key), with its leases, to `to` as a STORE.
 * The copy is read off the loop first (bs_persist_read). done gets 0 when
 * the peer stored it (or already had it), else an error (BS_ERR_BAD_BLOCK
 * or -ENOENT when the local copy failed its check or was gone: the entry is
 * then marked bad, as a GET would). Returns -ENOENT at once when the index
 * holds no copy. */
int bs_push(struct bs *b, const struct addr *to, enum store_type type, const struct id *key,
            bs_persist_fn done, void *ctx);
/* Fetches (type, key) from the holder at `from`, verifies it and stores it
 * here with the leases the holder sent. */
int bs_pull(struct bs *b, const struct addr *from, enum store_type type, const struct id *key,
            bs_persist_fn done, void *ctx);
/* Exchanges the lease records of key with the holder at `to`: sends ours,
 * merges the ones it answers with. */
int bs_lease_exchange(struct bs *b, const struct addr *to, const struct id *key,
                      bs_persist_fn done, void *ctx);
/* Deletes a record held here (index and disk). */
void bs_drop(struct bs *b, struct bs_entry *e);

/* The location of a local vnode (for replies). */
void bs_location_of(struct bs *b, unsigned vnode, struct bs_location *out);
/* Asks the ring where key lives (cache, then chord_lookup and LOCATE);
 * bs_locate_fresh (bs.h) skips the cache. */
int bs_locate(struct bs *b, const struct id *key, bs_locate_fn cb, void *ctx);

/* ---- maintenance (sync.c) ---- */

struct bs_sync;
int bs_sync_new(struct bs *b, struct bs_sync **out);
void bs_sync_free(struct bs_sync *s);
void bs_sync_tick(struct bs_sync *s, uint64_t now);
uint64_t bs_sync_next_deadline(const struct bs_sync *s);
void bs_sync_on_update(struct bs_sync *s, unsigned vnode);
/* A request of the sync range (1020..1039) arrived; answers it. Returns 0
 * or BS_ERR_MALFORMED. */
int bs_sync_input(struct bs_sync *s, const struct addr *from, const struct frame_header *h,
                  const uint8_t *payload, size_t len);

/* ---- the node's state ---- */

struct bs {
    struct bs_config cfg;
    struct env env;
    struct chord *chord;
    struct bs_persist persist;
    const struct logger *lg;
    struct bs_index ix;
    struct bs_sync *sync;
    bool leaving;
    struct bs_stats stats;
    /* bs.c, server.c and client.c add what they need below; sync.c keeps
     * its state in struct bs_sync. */
    struct bs_core *core;
};

#endif
