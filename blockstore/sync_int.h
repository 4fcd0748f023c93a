/* sync_int.h — what the maintenance sources share; not an API.
 *
 *   sync.c          rounds, the op table, the receiver's side, range walks
 *   sync_pair.c     pairwise range sessions: digests, descents, push/pull
 *   sync_handoff.c  handoff of records held outside this node's ranges,
 *                   expiry
 *   sync_msg.c      codecs (sync_msg.h)
 *
 * Everything runs on the one thread that feeds the struct bs.
 */
#ifndef COOPFS_BLOCKSTORE_SYNC_INT_H
#define COOPFS_BLOCKSTORE_SYNC_INT_H

#include <string.h>

#include "blockstore/internal.h"
#include "blockstore/sync_msg.h"

#define SYNC_DEBOUNCE_MS         200
#define SYNC_OPS_PER_VNODE       64   /* pushes, pulls, lease exchanges in flight */
#define SYNC_DIGESTS_INFLIGHT    4    /* per session */
#define SYNC_DIGESTS_PER_SESSION 1024 /* then the rest waits for the next round */
#define SYNC_LOCATES_PER_ROUND   16
#define SYNC_BATCHES_PER_ROUND   32
#define SYNC_HANDOFF_BATCH       32 /* records offered in one SYNC_KEYS */
#define SYNC_SCAN_MAX            65536
#define SYNC_EXPIRE_MAX          1024 /* drops per round */
#define SYNC_KEPT_MAX            64
#define SYNC_KEPT_MS             60000 /* a range found to be ours is not located again */
/* Expiry and handoff run at most this often: the rounds that follow
 * updates and transfers come every SYNC_DEBOUNCE_MS. */
#define SYNC_LOCAL_GAP_MS 1000
/* Handoff waits until this node's view of its neighbours has not changed
 * for this long: while a join or a failure propagates, a location another
 * node gives may be stale and leave this node out of a replica set it is
 * in. Longer than the client's location cache keeps an entry (10 s), so
 * an entry cached before the change has gone too. */
#define SYNC_HANDOFF_QUIET_MS 15000
/* A member that refused a push for space is not sent another for this
 * long (PAST: a full node refuses; the copy goes elsewhere). */
#define SYNC_FULL_BACKOFF_MS 60000
#define SYNC_FULL_MAX        16
#define SYNC_OP_SLOT_BITS    16
#define SYNC_OP_SLOTS        (1u << SYNC_OP_SLOT_BITS)

#define SYNC_N(a) (sizeof(a) / sizeof((a)[0]))

enum op_kind {
    OP_FREE = 0,
    OP_DIGEST, /* a SYNC_DIGEST of a session */
    OP_PUSH,
    OP_PULL,
    OP_LEASE,  /* then: OP_PULL or 0 */
    OP_LOCATE, /* handoff */
    OP_KEYS,   /* handoff: SYNC_KEYS to member hm */
    OP_HPUSH,  /* handoff: push key hk to member hm */
    OP_HLEASE, /* handoff: lease exchange of key hk with member hm */
};

struct sync_op {
    uint8_t kind;
    uint8_t type; /* enum store_type */
    uint8_t then;
    uint8_t depth;
    uint8_t hm;
    uint16_t hk;
    uint16_t vnode;
    uint32_t gen;
    uint32_t owner;     /* DIGEST: session slot */
    uint32_t owner_gen; /* DIGEST: session gen; handoff ops: batch gen */
    struct addr peer;
    struct id key;
    uint8_t prefix[SYNC_DEPTH_MAX];
};

struct sync_desc {
    uint8_t depth;
    uint8_t prefix[SYNC_DEPTH_MAX];
};

struct sync_session {
    bool used;
    uint32_t gen;
    unsigned vnode;
    struct addr peer;
    struct id lo, hi;
    unsigned inflight, sent;
    struct sync_desc *q; /* descents waiting to be sent */
    size_t nq, capq;
};

/* Handoff candidates of a location: its replica-set members (other than
 * this node) first, then its diversion spares (distinct physical nodes
 * after the first k, other than this node), in the location's order. */
#define SYNC_CAND_MAX (BS_REPLICAS_MAX + BS_DIVERT_MAX)

struct hkey {
    uint8_t type;
    struct id key;
    struct id digest;   /* at batch start: a change since cancels the drop */
    uint16_t confirmed; /* bit c: candidate c holds the record present */
    uint8_t next_spare; /* the spare the next member refusing FULL sends to */
};

struct kept_range {
    struct id lo, hi;
    uint64_t until; /* env now_ms */
};

struct handoff {
    uint32_t gen;
    bool running;    /* a locate or a batch is under way */
    bool done;       /* this round's walk is over */
    struct id start; /* this round's walk began after this key */
    struct id cursor;
    unsigned locates, batches;
    struct id probe; /* the key being located */
    bool have_loc;
    struct id loc_lo, loc_hi;        /* (lo, hi]: the location's range */
    struct id bcur;                  /* its records up to here are offered */
    struct addr cand[SYNC_CAND_MAX]; /* members [0, nmem), spares [nmem, ncand) */
    unsigned nmem, ncand;
    bool self_in_set; /* this node is one of the location's diversion spares */
    size_t nkeys;
    struct hkey keys[SYNC_HANDOFF_BATCH];
    unsigned pending;
};

struct bs_sync {
    struct bs *b;
    uint64_t next_round; /* periodic, UINT64_MAX with no period */
    uint64_t update_at;  /* debounced round after an update, or UINT64_MAX */
    uint64_t rounds;
    struct sync_op *ops;
    size_t cap_ops, nops;
    uint32_t op_gen;
    struct sync_session *sess;
    size_t nsess;
    uint32_t sess_gen;
    unsigned vn_ops[CHORD_MAX_VNODES];
    struct handoff ho;
    struct kept_range kept[SYNC_KEPT_MAX];
    size_t nkept;
    struct id expire_cursor;
    uint64_t local_at; /* when expiry and handoff last ran */
    struct {
        struct addr a;
        uint64_t until;
    } full[SYNC_FULL_MAX];    /* members that said BS_ERR_FULL lately */
    uint64_t view_hash;       /* of every vnode's predecessor and successors */
    uint64_t view_changed_at; /* when the round saw view_hash change */
};

/* ---- lease exchange telling whether the peer holds the block (xfer.c) ---- */

/* status as bs_lease_exchange's done; held: the peer answered with
 * BS_MERGE_F_HELD (it holds the block, present or being written). A peer
 * with no entry, a tombstone or a bad copy answers without it, and the
 * exchange still succeeds (status 0, held false). */
typedef void (*bs_exchange_fn)(struct bs *b, void *ctx, int status, bool held);
/* bs_lease_exchange with that completion. */
int bs_lease_exchange_held(struct bs *b, const struct addr *to, const struct id *key,
                           bs_exchange_fn done, void *ctx);

/* ---- small helpers ---- */

/* Wall-clock seconds (lease and kv expiries). */
static inline uint64_t sync_now_s(const struct bs *b)
{
    return env_wall(&b->env) / 1000;
}

static inline void sync_id_dec(struct id *x)
{
    for (int i = ID_BYTES - 1; i >= 0; i--)
        if (x->b[i]-- != 0)
            break;
}

static inline void sync_id_inc(struct id *x)
{
    for (int i = ID_BYTES - 1; i >= 0; i--)
        if (++x->b[i] != 0)
            break;
}

/* The entry has, or is getting, bytes: it counts in digests. A pure
 * tombstone (reclaimed leases kept, no bytes) does not. */
static inline bool sync_counted(const struct bs_entry *e)
{
    return e->flags & (BS_E_PRESENT | BS_E_WRITING | BS_E_BAD);
}

/* The bytes are here and passed their checks. */
static inline bool sync_good(const struct bs_entry *e)
{
    return (e->flags & BS_E_PRESENT) && !(e->flags & BS_E_BAD);
}

/* Worth keeping at wall time t: content with a live lease, kv not expired,
 * any root. */
static inline bool sync_live(const struct bs_entry *e, uint64_t t)
{
    if (e->type == STORE_CONTENT)
        return bs_entry_live(e, t);
    if (e->type == STORE_KV)
        return e->expiry_s > t;
    return true;
}

/* What SYNC_DIGEST_OK and SYNC_KEYS_OK say about e. */
void sync_entry_describe(const struct bs_entry *e, uint64_t t, struct sync_entry *out);
/* This node's transport address, or NULL before chord has a vnode. */
const struct addr *sync_self_addr(const struct bs *b);

/* ---- walking a ring range restricted to a key prefix (sync.c) ---- */

struct sync_range_it {
    const struct bs_index *ix;
    struct id a[2], z[2]; /* closed segments [a, z], in ring order */
    int nseg, seg;
    size_t i;
};
/* Entries whose key is in (lo, hi] (lo == hi: the whole ring) and starts
 * with prefix[0..depth), in ring order from lo. The index must not change
 * while the walk goes on. */
void sync_it_init(struct sync_range_it *it, const struct bs_index *ix, const struct id *lo,
                  const struct id *hi, uint8_t depth, const uint8_t *prefix);
struct bs_entry *sync_it_next(struct sync_range_it *it);
/* Count and XOR of the first SYNC_DIGEST_LEN digest bytes of the counted
 * entries in each child bucket (key byte depth) of prefix within (lo, hi]. */
void sync_buckets_compute(const struct bs_index *ix, const struct id *lo, const struct id *hi,
                          uint8_t depth, const uint8_t *prefix, struct sync_bucket *out);

/* ---- ops (sync.c) ---- */

/* A free slot with a new generation, or NULL (-ENOMEM or too many). */
struct sync_op *sync_op_new(struct bs_sync *s, uint8_t kind);
void sync_op_free(struct bs_sync *s, struct sync_op *op);
/* The op a callback's ctx names, or NULL if it ended (or s is NULL). */
struct sync_op *sync_op_from_ctx(struct bs_sync *s, void *ctx);
/* The ctx a callback of op is given: slot and generation, never a pointer. */
void *sync_op_ctx(const struct bs_sync *s, const struct sync_op *op);
/* Starts op (PUSH, HPUSH, PULL, LEASE, HLEASE; peer, type and key filled);
 * frees it when it cannot start. */
void sync_op_start(struct bs_sync *s, struct sync_op *op);
/* Is a push, pull or lease exchange of key under way? */
bool sync_key_busy(const struct bs_sync *s, const struct id *key);
/* Did a push to a refuse for space within SYNC_FULL_BACKOFF_MS? */
bool sync_peer_full(const struct bs_sync *s, const struct addr *a);
void sync_peer_mark_full(struct bs_sync *s, const struct addr *a);
/* A push or pull moved a record: compare again soon (SYNC_DEBOUNCE_MS),
 * to carry on within the budgets and reach the members that lack it too. */
void sync_follow_up(struct bs_sync *s);
/* The bs_rpc callback of every sync request. */
void sync_on_rpc(struct bs *b, void *ctx, int status, uint16_t type, const uint8_t *payload,
                 size_t len);

/* ---- pairwise sessions (sync_pair.c) ---- */

/* Starts a session with each other replica-set member of every vnode. */
void sync_pair_round(struct bs_sync *s);
void sync_digest_reply(struct bs_sync *s, struct sync_op *op, int status, uint16_t type,
                       const uint8_t *payload, size_t len);
/* A PUSH, PULL or LEASE finished; frees op or starts its follow-up. */
void sync_pair_done(struct bs_sync *s, struct sync_op *op, int status);

/* ---- handoff and expiry (sync_handoff.c) ---- */

/* Notes when this node's view (see view_hash) changed. Every round calls
 * it, also one that skips expiry and handoff for SYNC_LOCAL_GAP_MS: the
 * quiet time that gates handoff runs from the change, not from the next
 * round that happens to run handoff (with no periodic rounds, that may be
 * long after). */
void sync_view_note(struct bs_sync *s);
void sync_handoff_round(struct bs_sync *s);
void sync_keys_reply(struct bs_sync *s, struct sync_op *op, int status, uint16_t type,
                     const uint8_t *payload, size_t len);
/* An HPUSH or HLEASE finished; frees op. held: the peer holds the record
 * present (a push it stored; a lease exchange answered with
 * BS_MERGE_F_HELD). */
void sync_handoff_done(struct bs_sync *s, struct sync_op *op, int status, bool held);
void sync_expire_run(struct bs_sync *s);

#endif
