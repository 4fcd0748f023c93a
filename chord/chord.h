/* chord.h — the Chord overlay of one physical node, with no I/O.
 *
 * A struct chord is a state machine for one physical node hosting one or
 * more virtual nodes (vnodes, CFS's virtual servers). It is fed frames
 * (chord_input) and the passing of time (chord_tick), and it acts only
 * through the struct env it was given: env->send for frames, env->now_ms
 * for time, env->random for jitter. net/ drives it over TCP, sim/ over a
 * simulated network, unit tests by hand.
 *
 * The protocol is Pamela Zave's corrected Chord ("Reasoning about identifier
 * spaces: How to make Chord correct", IEEE TSE 2017):
 *   - a joining vnode copies the successor list of the node it lands before;
 *   - stabilize asks the first successor for its predecessor and successor
 *     list, reconciles its own list from that list every time, and adopts
 *     the successor's predecessor only after hearing from it directly;
 *   - notify replaces a predecessor only if there is none (it was found
 *     dead by check-predecessor) or the notifier lies between it and us;
 *   - successor lists are kept in ring order, without duplicates or self.
 * Beyond Zave: a ring smaller than r+1 keeps every other node exactly once;
 * a vnode whose successors all died (the fail rule broken) recovers through
 * its fingers, predecessor and long-term memory; and each vnode keeps a
 * long-term memory of nodes it lost contact with and keeps probing them, so
 * two rings split by a partition merge again when it heals.
 *
 * Lookups are recursive (PEER FIND carries a reply-to address, as in the
 * VoidPhone DHT design); when the answer does not come in time the origin
 * falls back to an iterative lookup, asking each hop itself, which also
 * finds and drops dead fingers.
 *
 * The upcalls follow the Common API for structured overlays (Dabek et al.,
 * IPTPS 2003): deliver, forward and update; chord_route and chord_lookup
 * are the downcalls.
 *
 * Errors: functions return 0 or a negative errno.
 */
#ifndef COOPFS_CHORD_CHORD_H
#define COOPFS_CHORD_CHORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/env.h"
#include "common/id.h"
#include "common/log.h"

/* Defaults and limits. Times in milliseconds. */
#define CHORD_SUCC_LEN       16                  /* r, successor list length (as DHash) */
#define CHORD_SUCC_MAX       32                  /* largest r a config may ask for */
#define CHORD_FINGERS        64                  /* fingers kept, see chord_finger_start() */
#define CHORD_MAX_VNODES     64                  /* vnodes per physical node */
#define CHORD_MEMORY         8                   /* long-term memory entries per vnode */
#define CHORD_STABILIZE_MS   500                 /* stabilize period */
#define CHORD_CHECK_PRED_MS  1000                /* check-predecessor period */
#define CHORD_FIX_FINGER_MS  250                 /* one finger lookup per period */
#define CHORD_PROBE_MS       2000                /* long-term memory probe period */
#define CHORD_MEMORY_TTL_MS  (10u * 60u * 1000u) /* forget a peer silent this long */
#define CHORD_RPC_TIMEOUT_MS 300                 /* one try of a request */
#define CHORD_RPC_TRIES      6                   /* tries before a request fails */
/* Stabilize rounds in a row the first successor must miss before the node
 * fails over to the next one. A timeout is no proof of death; over a lossy
 * path (30% each way) one request of 6 tries still fails 1.8% of the time,
 * two rounds in a row 0.03%, and every false suspicion can skip a live node. */
#define CHORD_SUSPECT_ROUNDS 2
/* Silent successors, counted over rounds in which none answered, before a
 * vnode gives its successor list up: 6 rounds for a lone successor, one
 * round when 6 or more stayed silent in it. */
#define CHORD_LAST_SUCC_GRACE     6
#define CHORD_JOIN_RETRY_MS       1000  /* a join that got no answer starts over */
#define CHORD_LOOKUP_RECURSIVE_MS 2000  /* then the iterative fallback starts */
#define CHORD_LOOKUP_MAX_MS       20000 /* then a lookup fails with -ETIMEDOUT */
#define CHORD_MAX_HOPS            64    /* a routed message that hops more is dropped */
#define CHORD_ROUTE_MAX           65536 /* largest payload of chord_route() */

/* Message types (docs/protocol.md): the peer range of the VoidPhone
 * design, from 1051. */
enum chord_msg_type {
    CHORD_MSG_PEER_FIND = 1051,
    CHORD_MSG_PEER_FOUND = 1052,
    CHORD_MSG_PREDECESSOR_GET = 1053,
    CHORD_MSG_PREDECESSOR_REPLY = 1054,
    CHORD_MSG_PREDECESSOR_SET = 1055, /* notify */
    CHORD_MSG_PING = 1056,
    CHORD_MSG_PONG = 1057,
    CHORD_MSG_LEAVE = 1058,
    CHORD_MSG_LEAVE_ACK = 1059,
    CHORD_MSG_NEXT_HOP = 1060,
    CHORD_MSG_NEXT_HOP_REPLY = 1061,
    CHORD_MSG_ROUTE = 1062,
    CHORD_MSG_NO_SUCH_VNODE = 1063,
};

/* Errors of chord_input(), below -4095 so they never collide with errno. */
enum {
    CHORD_ERR_MALFORMED = -5001, /* frame or payload does not decode: close the stream */
    CHORD_ERR_TYPE = -5002,      /* a message type this layer does not know */
};

struct chord; /* opaque */

/* A ring member: a vnode's identifier and the address of its physical node. */
struct chord_peer {
    struct id id;
    struct addr addr;
};

struct chord_config {
    struct addr self;  /* where other nodes reach this node */
    unsigned vnodes;   /* 1..CHORD_MAX_VNODES */
    unsigned succ_len; /* r, 2..CHORD_SUCC_MAX: with r = 1 a node that
                        * adopts a successor which dies right after
                        * answering has no live successor left */
    uint32_t stabilize_ms;
    uint32_t check_pred_ms;
    uint32_t fix_finger_ms;
    uint32_t probe_ms;
    uint32_t rpc_timeout_ms;
    uint32_t rpc_tries;
    uint32_t lookup_recursive_ms;
    uint32_t lookup_max_ms;
};

/* Fills cfg with the defaults above for a node reachable at self. */
void chord_config_default(struct chord_config *cfg, const struct addr *self);

struct chord_lookup_result {
    int status; /* 0, -ETIMEDOUT, -EHOSTUNREACH (every path dead), -ECANCELED (node left) */
    struct id key;
    struct chord_peer succ; /* the vnode responsible for key, when status is 0 */
    unsigned hops;          /* overlay hops from the origin to the node that answered */
    bool iterative;         /* the iterative fallback produced the answer */
    uint64_t elapsed_ms;
};

/* Upcalls. Any may be NULL. They run inside chord_input/chord_tick and must
 * not call chord_free; they may start lookups and routes. */
struct chord_callbacks {
    void *ctx;
    /* A vnode's successor list or predecessor changed (so did the range of
     * keys it is responsible for, (predecessor, self]). */
    void (*update)(void *ctx, unsigned vnode);
    /* A routed message reached vnode, responsible for key. payload is only
     * valid during the call. */
    void (*deliver)(void *ctx, unsigned vnode, const struct id *key,
                    const struct chord_peer *origin, uint16_t app_type, const void *payload,
                    size_t len);
    /* A routed message passes through vnode on its way to next. Return
     * false to consume it here. */
    bool (*forward)(void *ctx, unsigned vnode, const struct id *key, const struct chord_peer *next,
                    uint16_t app_type, const void *payload, size_t len);
    /* A lookup started with chord_lookup() finished. */
    void (*lookup_done)(void *ctx, uint64_t handle, const struct chord_lookup_result *res);
};

/* The identifier of virtual node vindex of the node at a:
 * SHA-256(family u8 | ip 16 bytes | port u16 | vindex u32), big-endian. */
void chord_vnode_id(const struct addr *a, unsigned vindex, struct id *out);

/* The start of finger i (0 <= i < CHORD_FINGERS) of self:
 * self + 2^(256 - CHORD_FINGERS + i). Fingers closer than 2^192 would only
 * differ from the successor in a ring of more than 2^64 nodes, so they are
 * not kept. */
void chord_finger_start(const struct id *self, unsigned i, struct id *out);

/* Makes a node. Copies cfg, env and cb; lg may be NULL (silent) and must
 * outlive the node. Returns 0 and *out, -EINVAL for a bad config, -ENOMEM. */
int chord_new(const struct chord_config *cfg, const struct env *env,
              const struct chord_callbacks *cb, const struct logger *lg, struct chord **out);
/* Frees the node without telling anyone (a crash, as far as peers know).
 * NULL-safe. */
void chord_free(struct chord *c);

/* Starts a new ring of this node alone (its vnodes join each other).
 * Returns 0, or -EALREADY if the node was already started. */
int chord_create(struct chord *c);
/* Joins the ring that the node at bootstrap belongs to; every vnode looks
 * up its own successor through it and retries until it is in. Called again
 * while a join is under way, it adds another bootstrap address, and the
 * retries rotate over all of them. Returns 0, -EINVAL for a bad address,
 * or -EALREADY when every vnode has joined. */
int chord_join(struct chord *c, const struct addr *bootstrap);
/* Voluntary leave: every vnode hands its predecessor its successor list and
 * its successor its predecessor, and waits for their acknowledgements
 * (or their timeouts). chord_has_left() turns true when done; meanwhile
 * the node refuses new requests (NO_SUCH_VNODE), so that nobody joins
 * before it or relies on it while it goes. */
void chord_leave(struct chord *c);
bool chord_has_left(const struct chord *c);

/* Feeds one whole frame received from the transport address `from`.
 * Returns 0, CHORD_ERR_MALFORMED or CHORD_ERR_TYPE; the node's state is
 * unchanged by a frame it rejects. */
int chord_input(struct chord *c, const struct addr *from, const void *frame, size_t len);
/* The transport reports that no node listens at a (its connection was
 * refused). That is proof, not suspicion, that none of a's vnodes exists:
 * every request pending to a ends at once as if each had answered
 * NO_SUCH_VNODE, so a dead successor is replaced without waiting for
 * timeouts, and every finger at a is forgotten. A mere timeout or a cut
 * link must not be reported this way. */
void chord_peer_unreachable(struct chord *c, const struct addr *a);
/* Runs every timer that is due at env->now_ms. */
void chord_tick(struct chord *c);
/* The earliest time chord_tick has something to do, or UINT64_MAX. */
uint64_t chord_next_deadline(const struct chord *c);

/* Starts a lookup of the vnode responsible for key (its successor),
 * from the local vnode closest before key. Sets *handle; the result comes
 * through cb->lookup_done, never from inside this call. Returns 0,
 * -EAGAIN when no vnode has joined yet, -ENOMEM. */
int chord_lookup(struct chord *c, const struct id *key, uint64_t *handle);

/* Routes an application message to the vnode responsible for key, where
 * cb->deliver receives it (cb->forward sees it on each hop). Best-effort
 * and unacknowledged. Returns 0, -EAGAIN (not joined), -EMSGSIZE. */
int chord_route(struct chord *c, const struct id *key, uint16_t app_type, const void *payload,
                size_t len);

/* Introspection, for the simulator's invariant checks, status pages and
 * the block store. Pointers stay valid until the next call that feeds the
 * node (input, tick, lookup, route, leave). */
unsigned chord_vnode_count(const struct chord *c);
bool chord_vnode_joined(const struct chord *c, unsigned v);
const struct chord_peer *chord_vnode_self(const struct chord *c, unsigned v);
/* The successor list of vnode v in ring order; returns its length. */
size_t chord_vnode_successors(const struct chord *c, unsigned v, const struct chord_peer **out);
/* Sets *out to the predecessor and returns true, or returns false if none. */
bool chord_vnode_predecessor(const struct chord *c, unsigned v, struct chord_peer *out);
/* Sets *out to finger i and returns true, or returns false if unknown. */
bool chord_vnode_finger(const struct chord *c, unsigned v, unsigned i, struct chord_peer *out);
/* Fills out with up to max peers of vnode v's long-term memory. */
size_t chord_vnode_memory(const struct chord *c, unsigned v, struct chord_peer *out, size_t max);
/* The local replica set of a key owned by vnode v: v itself, then its
 * successors, skipping any physical node already chosen, up to k entries.
 * Returns the count written. */
size_t chord_vnode_replica_set(const struct chord *c, unsigned v, struct chord_peer *out, size_t k);
/* The local vnode responsible for key per local knowledge ((pred, self]),
 * or -1. */
int chord_vnode_for_key(const struct chord *c, const struct id *key);

struct chord_stats {
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
    uint64_t bad_frames;
    uint64_t rpc_timeouts;
    uint64_t lookups_started, lookups_ok, lookups_failed, lookups_iterative;
    uint64_t lookup_hops_total;
    uint64_t finds_forwarded, routes_forwarded, routes_delivered;
    uint64_t stabilizations, successor_changes, predecessor_changes;
    uint64_t probes, merges;
};
void chord_get_stats(const struct chord *c, struct chord_stats *out);

/* Bytes of memory the node holds (its tables, requests and lookups). */
size_t chord_memory_bytes(const struct chord *c);

#endif
