/* core.h — the private state of bs.c, rpc.c, server.c, server_get.c,
 * xfer.c, put.c, root.c, lease.c and client.c (struct bs_core behind struct
 * bs.core). Not seen by sync.c, which works through internal.h only.
 *
 * Ownership: every operation object below is owned by the list it is on
 * and freed by the file that made it. Callbacks of requests (bs_rpc) and
 * of persist operations hold plain pointers to those objects, so an object
 * lives until every request it started has ended or been cancelled and
 * every persist operation it started has completed.
 */
#ifndef COOPFS_BLOCKSTORE_CORE_H
#define COOPFS_BLOCKSTORE_CORE_H

#include "blockstore/internal.h"
#include "blockstore/msg.h"

#define BS_SET_MAX       (BS_REPLICAS_MAX + BS_DIVERT_MAX)
#define BS_CACHE_MAX     4096  /* location cache entries */
#define BS_CACHE_TTL_MS  10000 /* a cached location is trusted this long */
#define BS_RTT_MAX       1024  /* peers with an RTT estimate */
#define BS_LOOP_BATCH    1024  /* loopback frames handled per tick */
#define BS_REPLAY_MAX    512   /* primary requests remembered */
#define BS_REPLAY_TTL_MS 60000 /* longer than a client retries one */
#define BS_PPUT_MAX       1024                 /* puts in progress as primary */
#define BS_PPUT_BYTES_MAX (256ull << 20)       /* bytes those puts hold */
/* Flow control (rpc.c): the bytes of requests in flight to one peer plus
 * the bytes their replies may bring back. A request past it waits in order
 * until earlier ones to that peer end. Twice this (our requests plus the
 * replies to the peer's own requests) stays under a stream's output cap,
 * NET_OUT_MAX_DEFAULT = 8 MiB, past which net/ drops frames. */
#define BS_FLOW_WINDOW (3u << 20)

/* Intrusive doubly linked list. */
struct bs_link {
    struct bs_link *prev, *next;
};
void bs_list_init(struct bs_link *head);
void bs_list_add(struct bs_link *head, struct bs_link *l); /* at the tail */
void bs_list_del(struct bs_link *l);
bool bs_list_empty(const struct bs_link *head);
#define BS_CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* A request waiting for its reply (bs.c). */
struct bs_pending {
    uint64_t reqid;
    uint64_t deadline;
    uint64_t sent; /* time of the latest try */
    uint32_t timeout_ms;
    uint16_t type;
    uint8_t tries, max_tries;
    struct addr to;
    bs_rpc_fn cb;
    void *ctx;
    uint8_t *frame; /* owned, resent on timeout */
    size_t frame_len;
    /* Flow control: queued = not sent yet, waiting for room in the window
     * to `to` (its deadline is then the end of its whole budget, tries x
     * timeout); cost = frame_len plus the reply it may bring; seq orders the
     * queue. */
    bool queued;
    uint32_t cost;
    uint64_t seq;
    /* A request addressed to the responsible vnode target about key (GET,
     * PUT, LOCATE, LEASE): the only requests whose replies may teach the
     * location cache (bs_cache_learn_from). */
    bool has_target;
    struct id key, target;
};

/* The window to one peer (rpc.c); an entry lives while it has requests. */
struct bs_flow {
    struct addr to;
    uint64_t inflight; /* cost of the requests sent and not ended */
    uint32_t nqueued;  /* requests waiting for room */
};

/* A persist operation in flight: a write, remove or lease append (cb), or
 * a read (rcb). */
struct bs_ptoken {
    uint64_t token;
    bs_persist_fn cb;
    bs_read_fn rcb;
    void *ctx;
};

struct bs_deferred {
    void (*fn)(struct bs *b, void *ctx);
    void *ctx;
};

struct bs_rtt {
    struct addr addr;
    uint32_t srtt_ms; /* EWMA, 1/8 gain */
    uint64_t at;      /* last sample */
};

/* A request to the primary, remembered so a retry of it (same sender,
 * same id) is not done twice: while in progress it is ignored, after the
 * answer the answer is sent again. */
struct bs_replay {
    struct addr from;
    uint64_t reqid;
    uint64_t at;
    uint8_t *frame; /* the reply, once sent; owned */
    size_t len;
};

struct bs_cache_ent {
    uint64_t expires;
    struct bs_location loc; /* has_pred always true: the range (pred, vnode] */
};

struct bs_core {
    struct addr self;
    bool freeing;
    uint64_t reqid_secret, reqid_count; /* request ids: rpc.c next_id */
    uint64_t next_token;

    struct bs_pending *pend; /* sorted by reqid (ids unpredictable) */
    size_t npend, cap_pend;
    uint64_t pend_earliest; /* no deadline earlier than this (may be stale low) */
    struct bs_flow *flow;   /* one per peer with requests pending */
    size_t nflow, cap_flow;
    uint64_t flow_seq;
    bool flow_hold; /* flow_pump sends nothing (bs_peer_unreachable) */

    struct bs_ptoken *tok; /* sorted by token */
    size_t ntok, cap_tok;

    struct bs_deferred *def; /* run at the next tick */
    size_t ndef, cap_def;

    struct {
        uint8_t *bytes;
        size_t len;
    } * loop; /* frames to self */
    size_t nloop, cap_loop;

    struct bs_rtt rtt[BS_RTT_MAX];
    size_t nrtt;

    struct bs_replay replay[BS_REPLAY_MAX];
    size_t nreplay;

    /* server side */
    struct bs_link sops;  /* struct bs_sop: stores in progress */
    struct bs_link pputs; /* struct bs_pput: puts as primary */
    size_t npputs;        /* on pputs; past BS_PPUT_MAX a PUT gets -EBUSY */
    uint64_t pput_bytes;  /* record bytes they hold; capped by BS_PPUT_BYTES_MAX */
    struct bs_link rops;  /* struct bs_rop: root puts and gets as primary */
    struct bs_link lops;  /* struct bs_lop: lease updates as primary and merges */
    struct bs_link xops;  /* struct bs_xop: push, pull, exchange */
    struct bs_link gops;  /* struct bs_gop: GETs waiting for their read */

    /* client side */
    struct bs_link cops;        /* struct bs_cop: client operations */
    struct bs_link locs;        /* struct bs_locop: locates */
    struct bs_cache_ent *cache; /* sorted by vnode id */
    size_t ncache, cap_cache;
};

/* ---- rpc.c ---- */
/* The reply path of bs_input; m is the decoded message or NULL (sync). */
void bs_rpc_reply_in(struct bs *b, const struct addr *from, const struct frame_header *h,
                     const uint8_t *payload, const struct bs_msg *m);
/* Ends every request with status (their callbacks run). */
void bs_rpc_fail_all(struct bs *b, int status);
/* Completes every persist operation still open with -ECANCELED. */
void bs_persist_cancel_all(struct bs *b);
/* Retries and timeouts due at now; frames sent to self. */
void bs_rpc_tick(struct bs *b, uint64_t now);
void bs_loop_tick(struct bs *b);

/* ---- bs.c ---- */
uint64_t bs_now(const struct bs *b);
uint64_t bs_now_s(const struct bs *b); /* wall clock, seconds */
uint64_t bs_wall_ms(const struct bs *b);
/* bs_rpc with an explicit timeout per try and number of tries. */
int bs_rpc_ex(struct bs *b, const struct addr *to, uint16_t type, const void *payload, size_t len,
              uint32_t timeout_ms, unsigned tries, bs_rpc_fn cb, void *ctx, uint64_t *reqid);
/* Encodes m and sends it as a request (bs_rpc_ex) or a reply. */
int bs_rpc_msg(struct bs *b, const struct addr *to, const struct bs_msg *m, uint32_t timeout_ms,
               unsigned tries, bs_rpc_fn cb, void *ctx, uint64_t *reqid);
void bs_reply_msg(struct bs *b, const struct addr *to, uint64_t reqid, const struct bs_msg *m);
/* bs_reply_failure with the record bytes a failure may carry. */
void bs_reply_failure_ex(struct bs *b, const struct addr *to, uint64_t reqid, int code,
                         const char *reason, int vnode, const uint8_t *bytes, size_t len);
/* Called first by the handlers of requests to the primary (PUT, LEASE,
 * root GET): returns true if (from, reqid) is a retry of one seen before,
 * which has been dealt with (ignored while in progress, else answered
 * again); false if it is new, and then its reply will be remembered. */
bool bs_replay_seen(struct bs *b, const struct addr *from, uint64_t reqid);
/* Runs fn(b, ctx) at the next tick (never inside the current call).
 * Returns 0 or -ENOMEM. */
int bs_defer(struct bs *b, void (*fn)(struct bs *b, void *ctx), void *ctx);
/* Makes room so that the next bs_defer cannot fail. 0 or -ENOMEM. */
int bs_defer_reserve(struct bs *b);
/* The smoothed RTT to a peer, or 0 when unknown. */
uint32_t bs_rtt_get(const struct bs *b, const struct addr *a);
bool bs_is_self(const struct bs *b, const struct addr *a);
/* Points m's lease records at e's (for encoding while e lives). */
void bs_leases_of(const struct bs_entry *e, struct bs_msg *m);

/* ---- server.c ---- */
int bs_server_init(struct bs *b);
void bs_server_release(struct bs *b);
/* A decoded request of 1001..1015 (not a reply). */
void bs_server_request(struct bs *b, const struct addr *from, uint64_t reqid,
                       const struct bs_msg *m);
/* The local vnode responsible for key if it is the vnode with id target;
 * else replies WRONG_NODE (or LEAVING) and returns -1. */
int bs_server_check_target(struct bs *b, const struct addr *from, uint64_t reqid,
                           const struct id *target, const struct id *key);
/* Checks the rules of a lease record received from outside: signature
 * over key (else BS_ERR_BAD_BLOCK), stamp not too far ahead and expiry not
 * too far away (else BS_ERR_NO_LEASE). */
int bs_lease_check(struct bs *b, const struct id *key, const struct lease *l);
/* bs_lease_check without the signature (for records already verified):
 * the stamp not too far ahead, the expiry not too far out. */
int bs_lease_limits(struct bs *b, const struct lease *l);
/* Reads the local copy of a record, on the loop (small records only: see
 * bs_persist). -EBADMSG and -ENOENT mark the entry bad (bs_read_mark). */
int bs_read_local(struct bs *b, enum store_type type, const struct id *key, uint8_t **bytes,
                  size_t *len);
/* After a read of (type, key) ended with rc: -EBADMSG or -ENOENT mark the
 * entry, if it is present, bad (its leases stay, so a good copy can come
 * back) and count it. Other values change nothing. */
void bs_read_mark(struct bs *b, enum store_type type, const struct id *key, int rc);
/* The lease records of a message, copied out (malloc'd; at least one
 * element allocated), or NULL. */
struct lease *bs_msg_leases(const struct bs_msg *m);
/* A persist error as a BS_ERR_*. */
int bs_persist_err(int status);
/* A drop overtook the writes in flight of (type, key): they must not
 * mark the entry present when they complete. */
void bs_server_drop_writes(struct bs *b, enum store_type type, const struct id *key);
uint64_t bs_server_next_deadline(const struct bs *b);
void bs_server_tick(struct bs *b, uint64_t now);

/* ---- server_get.c: GET, LOCATE ---- */
void bs_server_on_get(struct bs *b, const struct addr *from, uint64_t reqid,
                      const struct bs_msg *m);
void bs_server_on_locate(struct bs *b, const struct addr *from, uint64_t reqid,
                         const struct bs_msg *m);
/* A write of (type, key) completed: the GETs reading it must not mark the
 * entry bad for what they found (they may have read the file it replaced). */
void bs_server_get_overtaken(struct bs *b, enum store_type type, const struct id *key);
/* Frees GETs still waiting (none once persist operations are cancelled). */
void bs_server_get_release(struct bs *b);

/* ---- xfer.c: push, pull, lease exchange ---- */
void bs_xfer_release(struct bs *b);

/* ---- put.c ---- */
void bs_put_on_request(struct bs *b, const struct addr *from, uint64_t reqid,
                       const struct bs_msg *m);
uint64_t bs_put_next_deadline(const struct bs *b);
void bs_put_tick(struct bs *b, uint64_t now);
void bs_put_release(struct bs *b);

/* ---- root.c ---- */
void bs_root_on_put(struct bs *b, const struct addr *from, uint64_t reqid, int vnode,
                    const struct bs_msg *m);
void bs_root_on_get(struct bs *b, const struct addr *from, uint64_t reqid, int vnode,
                    const struct bs_msg *m);
void bs_root_on_read(struct bs *b, const struct addr *from, uint64_t reqid, const struct bs_msg *m);
void bs_root_release(struct bs *b);

/* ---- lease.c ---- */
void bs_lease_on_request(struct bs *b, const struct addr *from, uint64_t reqid,
                         const struct bs_msg *m);
void bs_lease_on_merge(struct bs *b, const struct addr *from, uint64_t reqid,
                       const struct bs_msg *m);
/* bs_drop with a completion: cb (may be NULL) gets 0 or a persist error
 * once the removal (and the tombstone records) are durable, never inside
 * the call. Returns 0, or -ENOMEM with nothing dropped. */
int bs_drop_cb(struct bs *b, struct bs_entry *e, bs_persist_fn cb, void *ctx);
/* Merges lease records (each passed bs_lease_check) into the local entry
 * of key, appends them durably, and drops the block when no lease of it is
 * live any more (keeping the records as a tombstone). *held tells whether
 * the block was held here. cb gets 0 or an error once that is durable;
 * never inside the call. Returns 0 or -ENOMEM. */
int bs_lease_merge_local(struct bs *b, const struct id *key, const struct lease *l, size_t n,
                         bool *held, bs_persist_fn cb, void *ctx);
void bs_lease_release(struct bs *b);
/* Keeps, in place, the records from a peer or client (each passed
 * bs_lease_check) that may merge into e (may be NULL): a live one, or a
 * dead one (expired, or a reclaim) of an owner with a record in e or a
 * live one among l. Returns how many are kept. */
size_t bs_lease_admit(const struct bs_entry *e, struct lease *l, size_t n, uint64_t now_s);
/* After a merge of l into e: was a live record of an owner new to e left
 * out for the cap on owners per entry (index.c)? */
bool bs_lease_capped(const struct bs_entry *e, const struct lease *l, size_t n, uint64_t now_s);

/* ---- client.c ---- */
int bs_client_init(struct bs *b);
/* Puts whose primary answered -EBUSY, asked again when their wait is over. */
void bs_client_tick(struct bs *b, uint64_t now);
uint64_t bs_client_next_deadline(const struct bs *b);
/* Ends every client operation with -ECANCELED and frees the client. */
void bs_client_release(struct bs *b);
/* Puts a location in the cache as it is (no check: callers vouch for it). */
void bs_cache_learn(struct bs *b, const struct bs_location *loc);
/* A location carried by the reply from `from` to a request about key sent
 * to the vnode target: learned only when from is the location's vnode,
 * that vnode is the one asked (target) and its range (pred, vnode]
 * contains key. Anything else (a FAILURE naming some other range, a
 * location of a third node, a range that does not cover the key asked
 * about) is ignored: a peer can speak only for itself, about the key it
 * was asked. */
void bs_cache_learn_from(struct bs *b, const struct addr *from, const struct id *key,
                         const struct id *target, const struct bs_location *loc);

#endif
