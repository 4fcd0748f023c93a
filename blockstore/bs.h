/* bs.h — the block server and block client of one physical node (DHash /
 * PAST on our Chord), with no I/O.
 *
 * A struct bs sits beside the node's struct chord and shares its env. Like
 * chord it is a state machine: it is fed frames of the storage range
 * (types 1001..1049, docs/protocol.md) with bs_input, the passing of time
 * with bs_tick, the chord upcalls it needs (update, lookup_done) and the
 * completions of its durable writes (bs_persist_done); it acts only through
 * env->send and the struct bs_persist the runtime gives it. net/ drives it
 * over TCP with the disk store of store.h; sim/ over the simulated network
 * with an in-memory persist; fs/ and the tools reach blocks only through
 * the client calls below.
 *
 * Placement. The replica set of a key is the first k distinct physical
 * nodes among the vnode responsible for the key (its successor) and that
 * vnode's successors (chord_vnode_replica_set); k = cfg.replicas.
 *
 * Put (content blocks, kv records). The client finds the responsible vnode
 * (a cached range or chord_lookup) and sends it STORAGE PUT. That node, the
 * primary, verifies the block, stores it itself and sends STORE to the
 * other members, all in parallel. A member that refuses for space or quota
 * (PAST's replica diversion) or does not answer after every try is
 * replaced by the next distinct successor, up to BS_DIVERT_MAX past k. The
 * put succeeds when k copies are stored durably, or when fewer are and
 * every candidate that is not holding one was full or did not answer
 * (a ring with fewer than k live nodes): the result says how many copies.
 * It fails with BS_ERR_FULL when no copy could be placed for space and
 * every candidate answered, BS_ERR_QUOTA for an owner's cap, -ETIMEDOUT
 * when no copy was placed and some candidate did not answer (it might
 * have had room).
 * Storing a block that is already held only merges its lease.
 *
 * Get. The client asks the replica that answered it fastest before (the
 * primary when it knows none), verifies what comes back (content: SHA-256;
 * root: signature; kv: checksum and key), and on a timeout, a miss or a bad
 * block asks the next holder. A holder whose copy failed its check
 * (disk damage found on read, or bytes that did not verify at the client)
 * gets the good copy back (STORE with the repair flag).
 *
 * Roots (compare-and-swap, DhtFlex). A root put goes to the primary, which
 * handles root puts of one key one at a time: it reads the root of every
 * member of the replica set and of the next BS_DIVERT_MAX successors past
 * it (the nodes that held the range before joins pushed them out of the
 * set), waits for all of them (or their timeouts), and needs answers from
 * a majority of the members. The current root is the highest valid
 * version among all the answers; of two roots of that version with other
 * bytes (a fork), the one more answering nodes hold, and of as many the
 * larger fingerprint (the first 8 bytes of its SHA-256), never the first
 * answer. If its version is not expect_version, the put fails with
 * BS_ERR_CONFLICT and returns that root (nothing was written). Otherwise
 * it sends the new root to every member (only the members), which stores
 * it only if its version is higher than the one it holds (same version
 * and same bytes: already stored); a majority of
 * stores makes success. Fewer than a majority, after some stored it, is
 * BS_ERR_INDETERMINATE: the update may or may not become visible, and the
 * writer must read to know. A root get reads the same way, returns the
 * current root so chosen and pushes it to the members that held less
 * (repair of stale holders). A holder keeps only the highest version it
 * verified, and of one version the first bytes it took. The sync digest
 * of a root covers its fingerprint, so two holders of a fork differ.
 *
 * Leases and reclaim (PAST Reclaim, CFS expiry). Every content block is
 * held for owners: each lease (block.h) is signed by its owner and carries
 * an expiry. bs_lease_update sends a renewal (a later expiry) or a reclaim
 * (expiry 0) to every holder; holders merge leases per owner with
 * lease_newer(). A holder deletes a block only when none of its leases is
 * live, and keeps the reclaim records (tombstones) for BS_LEASE_MAX_S so a
 * replayed older grant cannot bring it back. Per-owner usage is accounted
 * (a block counts in full for each owner with a live lease on it) and
 * capped by cfg.owner_cap.
 *
 * Maintenance (sync.c). On chord's update upcall and every
 * cfg.sync_period_ms, each vnode compares the keys it is responsible for
 * with the other members of their replica set, by digests of key ranges
 * (Merkle-style: two members in sync exchange one digest per range), and
 * pushes or pulls what differs, blocks and leases, so that the replication
 * factor comes back by itself. A member that returns after a transient
 * failure still holds its copies and counts again (Carbonite). Blocks a
 * node holds outside every replica set it belongs to are offered to their
 * replica set and dropped only once k distinct nodes confirmed holding
 * them present (members, or the next spares in place of full members);
 * until then the copy stays (handoff). Expired
 * kv records and blocks without a live lease are deleted.
 *
 * Errors: 0 or a negative errno, or one of BS_ERR_*.
 */
#ifndef COOPFS_BLOCKSTORE_BS_H
#define COOPFS_BLOCKSTORE_BS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/block.h"
#include "blockstore/store.h"
#include "chord/chord.h"
#include "common/env.h"
#include "common/id.h"
#include "common/log.h"

#define BS_REPLICAS_DEFAULT 3
#define BS_REPLICAS_MAX     8
#define BS_DIVERT_MAX       4                      /* successors tried past k */
#define BS_RPC_TIMEOUT_MS   3000                   /* one try of a request */
#define BS_RPC_TRIES        2
#define BS_SYNC_PERIOD_MS   10000                  /* maintenance round */
#define BS_LEASE_MAX_S      (400u * 24u * 3600u)   /* longest lease a node accepts */
#define BS_LEASE_DEFAULT_S  (90u * 24u * 3600u)    /* what the tools ask for */
#define BS_LEASE_SKEW_MS    (10u * 60u * 1000u)    /* a stamp this far in the future is refused */
#define BS_INFLIGHT_MAX     4096                   /* client operations at once */
#define BS_ROOT_ANY         UINT64_MAX             /* root put without a condition */

/* Message types (docs/protocol.md): the storage range of the VoidPhone
 * design, 1001..1049. */
enum bs_msg_type {
    BS_MSG_GET = 1001,         /* STORAGE GET: client -> holder */
    BS_MSG_PUT = 1002,         /* STORAGE PUT: client -> primary */
    BS_MSG_GET_OK = 1003,      /* STORAGE GET SUCCESS */
    BS_MSG_PUT_OK = 1004,      /* STORAGE PUT SUCCESS */
    BS_MSG_FAILURE = 1005,     /* STORAGE FAILURE: code, reason, location */
    BS_MSG_STORE = 1006,       /* primary (or sync, repair) -> member */
    BS_MSG_STORE_OK = 1007,
    BS_MSG_LOCATE = 1008,      /* where is key? -> responsible vnode */
    BS_MSG_LOCATION = 1009,
    BS_MSG_LEASE = 1010,       /* client -> primary: renew or reclaim */
    BS_MSG_LEASE_OK = 1011,
    BS_MSG_LEASE_MERGE = 1012, /* primary (or sync) -> holder */
    BS_MSG_LEASE_MERGE_OK = 1013,
    BS_MSG_ROOT_READ = 1014,   /* primary -> member */
    BS_MSG_ROOT_READ_OK = 1015,
    /* 1020..1039: maintenance (sync.c) */
    BS_MSG_SYNC_DIGEST = 1020,
    BS_MSG_SYNC_DIGEST_OK = 1021,
    BS_MSG_SYNC_KEYS = 1022,
    BS_MSG_SYNC_KEYS_OK = 1023,
};
#define BS_MSG_FIRST 1001
#define BS_MSG_LAST  1049

/* Errors, below -4095 so they never collide with errno; the failure
 * message carries them across the wire. */
enum {
    BS_ERR_MALFORMED = -6001,     /* frame or payload does not decode */
    BS_ERR_FULL = -6002,          /* no space for the block (capacity) */
    BS_ERR_QUOTA = -6003,         /* the owner's cap on this node */
    BS_ERR_BAD_BLOCK = -6004,     /* does not verify */
    BS_ERR_CONFLICT = -6005,      /* root compare-and-swap lost: result holds the current root */
    BS_ERR_STALE = -6006,         /* root version not above the one held */
    BS_ERR_INDETERMINATE = -6007, /* root stored on some members only: read to know */
    BS_ERR_WRONG_NODE = -6008,    /* this vnode is not responsible for the key */
    BS_ERR_NO_LEASE = -6009,      /* a content block without a valid, live lease */
    BS_ERR_NOT_FOUND = -6010,     /* no holder has it */
    BS_ERR_LEAVING = -6011,       /* the node is leaving the ring */
    BS_ERR_STORE = -6012,         /* the holder's disk failed */
};
/* A short text for a BS_ERR_* value or a negative errno. */
const char *bs_strerror(int err);

/* Durability, supplied by the runtime (net/: store.h; sim/: memory). The
 * calls that start work (write, remove, lease_append, read_start) return 0
 * (the completion comes later through bs_persist_done, or for read_start
 * bs_persist_read_done, never from inside the call) or a negative errno
 * (no completion will come). read is synchronous, on the loop: it is
 * left to start-up (bs_load), the root and kv paths (records of a few KiB)
 * and pushes to peers (xfer.c); serving GET uses read_start. */
struct bs_persist {
    int (*write)(void *ctx, enum store_type type, const struct id *key, const void *bytes,
                 size_t len, uint64_t token);
    int (*remove)(void *ctx, enum store_type type, const struct id *key, uint64_t token);
    int (*lease_append)(void *ctx, const struct id *key, const struct lease *l, size_t n,
                        uint64_t token);
    /* 0 with *bytes (malloc'd; the caller frees) and *len, -ENOENT, or
     * -EBADMSG when the copy failed its check (it is gone from the store). */
    int (*read)(void *ctx, enum store_type type, const struct id *key, uint8_t **bytes,
                size_t *len);
    /* read off the loop: the same outcome, reported with token through
     * bs_persist_read_done. */
    int (*read_start)(void *ctx, enum store_type type, const struct id *key, uint64_t token);
    void *ctx;
};

struct bs_config {
    unsigned replicas;       /* k: 1..BS_REPLICAS_MAX */
    uint64_t capacity;       /* bytes this node donates (0: none, it only routes) */
    uint64_t owner_cap;      /* most bytes one owner may hold here; 0: no cap */
    uint32_t rpc_timeout_ms; /* one try */
    uint32_t rpc_tries;
    uint32_t sync_period_ms; /* 0: no periodic maintenance (unit tests) */
};
/* k = 3, 1 GiB donated, no owner cap, BS_RPC_TIMEOUT_MS x BS_RPC_TRIES,
 * maintenance every BS_SYNC_PERIOD_MS. */
void bs_config_default(struct bs_config *cfg);

struct bs;

/* Makes the block server/client of the node whose overlay is c. Copies cfg,
 * env and persist; c and lg (may be NULL) must outlive it. Returns 0 and
 * *out, -EINVAL, -ENOMEM. */
int bs_new(const struct bs_config *cfg, const struct env *env, struct chord *c,
           const struct bs_persist *persist, const struct logger *lg, struct bs **out);
/* Fails every client operation with -ECANCELED (their callbacks run), then
 * frees. NULL-safe. */
void bs_free(struct bs *b);

/* Start-up: tells the index about a record already on disk (from
 * store_scan). Call before the first bs_input/bs_tick. Roots and kv
 * records are read once through persist->read for their version. A
 * content key with size 0 and lease records is a tombstone: leases of a
 * block deleted on reclaim, kept so a replayed older grant is refused. */
void bs_load(struct bs *b, enum store_type type, const struct id *key, uint32_t size,
             const struct lease *leases, size_t nleases);

/* Feeds one whole frame of type BS_MSG_FIRST..BS_MSG_LAST received from
 * the transport address from. Returns 0 or BS_ERR_MALFORMED (the caller
 * closes that connection); state is unchanged by a frame it rejects. */
int bs_input(struct bs *b, const struct addr *from, const void *frame, size_t len);
/* Runs every timer due at env->now_ms (retries, timeouts, maintenance). */
void bs_tick(struct bs *b);
/* The earliest time bs_tick has something to do, or UINT64_MAX. */
uint64_t bs_next_deadline(const struct bs *b);
/* A persist write, remove or lease append started with token finished. */
void bs_persist_done(struct bs *b, uint64_t token, int status);
/* A persist read_start with token finished: status 0 with bytes (malloc'd;
 * bs takes them, also when the token is unknown or b is freeing) and len,
 * or the error of read (bytes NULL). */
void bs_persist_read_done(struct bs *b, uint64_t token, int status, uint8_t *bytes, size_t len);
/* The chord upcalls the runtime forwards: a vnode's neighbours changed;
 * a lookup finished (returns true if the lookup was one of bs's, which
 * then owns the result; false means it belongs to someone else). */
void bs_on_update(struct bs *b, unsigned vnode);
bool bs_on_lookup_done(struct bs *b, uint64_t handle, const struct chord_lookup_result *res);
/* The node is leaving: refuse new server work with BS_ERR_LEAVING. */
void bs_leave(struct bs *b);
/* The transport proved that no node listens at a (connection refused, as
 * for chord_peer_unreachable): every request pending to a fails at once
 * with -EHOSTUNREACH instead of waiting for its timeouts. */
void bs_peer_unreachable(struct bs *b, const struct addr *a);

/* ---- client ---- */

struct bs_result {
    int status; /* 0, BS_ERR_*, -ETIMEDOUT, -EHOSTUNREACH, -ECANCELED, -ENOMEM */
    struct id key;
    /* get: the verified record; a root put refused with CONFLICT, STALE
     * or INDETERMINATE: the current root when a server sent one (verified).
     * Valid only during the callback. */
    const uint8_t *bytes;
    size_t len;
    unsigned copies;  /* put, lease: holders that stored it durably */
    uint64_t version; /* root: the version stored, or found */
    const char *reason; /* a server's explanation of a failure, or NULL */
};
/* Called exactly once per operation that was started (returned 0), from
 * bs_input/bs_tick/bs_on_lookup_done/bs_persist_done, never from inside
 * the call that started it. */
typedef void (*bs_done_fn)(void *ctx, const struct bs_result *r);

/* Stores a content block (bytes as block_encode made them) with the lease
 * of its owner (required: a block without an owner would be deleted at
 * once). Returns 0, BS_ERR_BAD_BLOCK, BS_ERR_NO_LEASE, -EBUSY (too many
 * operations in flight: wait for one to finish), -ENOMEM. */
int bs_put(struct bs *b, const uint8_t *bytes, size_t len, const struct lease *lease,
           bs_done_fn done, void *ctx);
/* The checks bs_put makes before it starts: the bytes are a well-formed
 * content block (sets *key, its SHA-256) and the lease's signature holds
 * for it. 0, BS_ERR_BAD_BLOCK or BS_ERR_NO_LEASE. Touches no state: any
 * thread may call it. */
int bs_put_check(const uint8_t *bytes, size_t len, const struct lease *lease, struct id *key);
/* bs_put for a caller that has already made bs_put_check, e.g. on a
 * thread of its own so the loop does not hash: the same, without it. The primary
 * checks both again, so a wrong key is refused there (BAD_BLOCK). */
int bs_put_checked(struct bs *b, const struct id *key, const uint8_t *bytes, size_t len,
                   const struct lease *lease, bs_done_fn done, void *ctx);
/* Fetches and verifies the record (type, key). */
int bs_get(struct bs *b, enum store_type type, const struct id *key, bs_done_fn done, void *ctx);
/* Stores root block bytes if the current version is expect_version (0: no
 * root yet; BS_ROOT_ANY: any version below the new one). A put that had to
 * start over after an attempt got no answer reports a conflict as
 * BS_ERR_INDETERMINATE: the first attempt may have stored the root that a
 * newer version now covers. */
int bs_root_put(struct bs *b, const uint8_t *bytes, size_t len, uint64_t expect_version,
                bs_done_fn done, void *ctx);
/* Sends a lease record (renewal or reclaim) for key to its holders. */
int bs_lease_update(struct bs *b, const struct id *key, const struct lease *l, bs_done_fn done,
                    void *ctx);
/* Stores a kv record (kv_encode) on min(its replication, k) nodes; of two
 * records of one key the higher stamp wins. */
int bs_kv_put(struct bs *b, const uint8_t *bytes, size_t len, bs_done_fn done, void *ctx);

/* Where a key lives, as a responsible vnode sees it. */
struct bs_location {
    bool has_pred;
    struct id pred;         /* the range is (pred, vnode] */
    struct chord_peer vnode;
    uint8_t n;
    struct chord_peer set[BS_REPLICAS_MAX + BS_DIVERT_MAX]; /* replica set, then diversion spares */
};
typedef void (*bs_locate_fn)(struct bs *b, void *ctx, int status, const struct bs_location *loc);
/* Asks the ring where key lives, never from the location cache: a chord
 * lookup and a LOCATE to the vnode found (what handoff uses before it
 * drops a copy, as a cached range may have been taught by a peer that
 * lied; and what the file system shows as a file's holders). cb runs once,
 * later. Returns 0 or a negative errno. */
int bs_locate_fresh(struct bs *b, const struct id *key, bs_locate_fn cb, void *ctx);

/* ---- introspection (status pages, tests, the simulator) ---- */

struct bs_stats {
    uint64_t blocks, roots, kvs;       /* records held */
    uint64_t used;                     /* bytes held, exact */
    uint64_t capacity;
    uint64_t puts_ok, puts_failed, gets_ok, gets_failed; /* as a client */
    uint64_t stores, stores_refused_full, stores_refused_quota, stores_bad;
    uint64_t reads_bad;        /* copies that failed their check on read */
    uint64_t repairs_sent;     /* good copies pushed to a holder with a bad or stale one */
    uint64_t sync_rounds, sync_pushed, sync_pulled, handed_off, expired;
    uint64_t cas_ok, cas_conflict, cas_indeterminate;
    uint64_t inflight;
};
void bs_get_stats(const struct bs *b, struct bs_stats *out);
/* Does this node hold (type, key)? (The simulator counts replicas with it.) */
bool bs_holds(const struct bs *b, enum store_type type, const struct id *key);
/* The version of the root held for key, 0 if none. */
uint64_t bs_root_version(const struct bs *b, const struct id *key);
/* Calls each for every record held. */
void bs_each(const struct bs *b,
             void (*each)(void *ctx, enum store_type type, const struct id *key, uint32_t size),
             void *ctx);
size_t bs_memory_bytes(const struct bs *b);

#endif
