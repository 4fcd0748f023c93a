/* internal.h — state shared by the chord/ source files; not a public API.
 *
 *   node.c    lifecycle, frame dispatch, request/reply matching, timers
 *   table.c   successor list, fingers, long-term memory, next-hop choice
 *   ring.c    join, stabilize, notify, check-predecessor, leave, merge probes
 *   lookup.c  recursive and iterative lookups, routed messages
 */
#ifndef COOPFS_CHORD_INTERNAL_H
#define COOPFS_CHORD_INTERNAL_H

#include "chord/chord.h"
#include "chord/msg.h"

enum vn_state { VN_IDLE, VN_JOINING, VN_JOINED, VN_LEAVING, VN_LEFT };

struct mem_entry {
    struct chord_peer peer;
    uint64_t last_ok; /* last time it answered (or was learned) */
    uint8_t agreed;   /* probes in a row that found nothing to merge */
};

struct vnode {
    unsigned index;
    struct chord_peer self;
    enum vn_state state;

    uint8_t nsucc;
    struct chord_peer succ[CHORD_SUCC_MAX]; /* ring order, no self, no duplicates */
    bool has_pred;
    struct chord_peer pred;

    uint64_t finger_valid; /* bit i: finger[i] is known */
    struct chord_peer finger[CHORD_FINGERS];
    uint8_t next_finger;

    uint8_t nmem, mem_next, mem_probe;
    struct mem_entry mem[CHORD_MEMORY];

    uint64_t t_stabilize, t_check_pred, t_fix_finger, t_probe, t_join;
    bool stab_busy, pred_busy, finger_busy, probe_busy, adopt_busy, join_busy;
    uint8_t last_succ_fail; /* stabilizes in a row the only successor missed */
    uint8_t succ_strikes;   /* stabilizes in a row the first successor missed */
    uint32_t succ_gen;      /* bumped on every change of the successor list */
    uint64_t pred_heard;    /* last notify from the current predecessor */
    uint8_t recover_next;   /* rotates over recovery candidates */
    uint8_t leaves_pending; /* LEAVE frames not yet acknowledged */
    bool dirty;             /* successor list or predecessor changed */
};

enum pending_kind {
    P_STAB,      /* PREDECESSOR_GET to the first successor */
    P_ADOPT,     /* PREDECESSOR_GET to a candidate successor */
    P_PING_PRED, /* PING to the predecessor */
    P_JOIN_GET,  /* PREDECESSOR_GET to the successor found by a join */
    P_LEAVE,     /* LEAVE to a neighbour */
    P_ITER,      /* NEXT_HOP of an iterative lookup */
};

#define CHORD_REFUSED_MAX    16
#define CHORD_REFUSED_TTL_MS 15000u /* about as long as a successor list takes to forget a node */

struct pending {
    uint64_t reqid;
    uint64_t deadline;
    uint64_t sent;   /* first sent */
    uint64_t lookup; /* P_ITER: the lookup's handle; P_STAB: succ_gen when sent */
    struct chord_peer to;
    uint16_t vnode;
    uint8_t kind;
    uint8_t tries;
    bool refused;   /* ended by NO_SUCH_VNODE: proof, not suspicion */
    uint8_t *frame; /* owned copy, resent on timeout */
    uint32_t frame_len;
};

enum lookup_purpose { L_USER, L_FINGER, L_JOIN, L_PROBE, L_LOCAL };

#define LOOKUP_CAND 8

struct lookup {
    uint64_t handle; /* also the request id of its PEER_FIND */
    uint64_t started;
    uint64_t deadline; /* recursive phase, then the hard limit */
    uint16_t vnode;
    uint8_t purpose;
    uint8_t finger; /* L_FINGER: index; L_PROBE: memory slot */
    bool iterative;
    bool done; /* answered; reported at the next tick */
    struct id key;
    unsigned hops;
    struct chord_lookup_result res;
    uint8_t ncand, nfailed;
    struct chord_peer cand[LOOKUP_CAND];
    struct id failed[LOOKUP_CAND];
    uint8_t nasked;
    struct id asked[2 * LOOKUP_CAND]; /* answered already: never asked twice */
};

struct chord {
    struct chord_config cfg;
    struct env env;
    struct chord_callbacks cb;
    const struct logger *lg;
    bool started, leaving;
    uint64_t next_reqid;

    unsigned nvnodes;
    struct vnode *vn;

    size_t npending, cap_pending;
    struct pending *pending;
    size_t nlookups, cap_lookups;
    struct lookup *lookups;

    struct chord_stats stats;
    char name[ADDR_STR_MAX];
    /* Addresses the transport found with nobody listening
     * (chord_peer_unreachable), and until when: routing steps around
     * them while successor lists still name them. A frame from one
     * clears it. */
    struct {
        struct addr addr;
        uint64_t until;
    } refused[CHORD_REFUSED_MAX];
    unsigned nrefused;
};

/* node.c */
uint64_t chord_now(const struct chord *c);
uint64_t chord_jitter(struct chord *c, uint32_t period);
uint64_t chord_new_reqid(struct chord *c);
void chord_msg_prepare(struct chord *c, const struct vnode *v, struct chord_msg *m, uint16_t type,
                       const struct chord_peer *to, bool any);
/* Encodes and sends m to addr. Returns the frame length or 0. */
size_t chord_send(struct chord *c, const struct addr *to, const struct chord_msg *m);
/* Sends a request and remembers it for matching and retries. Returns 0 or -ENOMEM. */
int chord_request(struct chord *c, struct vnode *v, enum pending_kind kind,
                  const struct chord_peer *to, struct chord_msg *m, uint64_t lookup);
void chord_reply(struct chord *c, struct vnode *v, const struct chord_msg *req,
                 struct chord_msg *rep, uint16_t type);
struct vnode *chord_vnode_first_joined(struct chord *c);

/* table.c */
bool peer_eq(const struct chord_peer *a, const struct chord_peer *b);
/* Replaces the successor list with a normalised copy of list: ring order
 * from self, stopping at self, no duplicates, at most r entries. */
void table_succ_set(struct chord *c, struct vnode *v, const struct chord_peer *list, size_t n);
void table_pred_set(struct chord *c, struct vnode *v, const struct chord_peer *p);
void table_pred_clear(struct chord *c, struct vnode *v);
void table_finger_set(struct vnode *v, unsigned i, const struct chord_peer *p);
/* Forgets a peer found dead in fingers (the successor list and the
 * predecessor are left to stabilize and check-predecessor). */
void table_forget_finger(struct vnode *v, const struct id *id);
void table_memory_add(struct chord *c, struct vnode *v, const struct chord_peer *p);
void table_memory_remove(struct vnode *v, const struct id *id);
/* The known peer closest before key, or NULL when none lies in (self, key);
 * peers at refused addresses are passed over. */
const struct chord_peer *table_closest_preceding(const struct chord *c, const struct vnode *v,
                                                 const struct id *key);
/* Is a listed as refusing connections (see struct chord.refused)? */
bool chord_addr_refused(const struct chord *c, const struct addr *a);
/* Up to max peers lying in (self, key), closest to key first. */
size_t table_closest_list(const struct vnode *v, const struct id *key, const struct id *skip,
                          size_t nskip, struct chord_peer *out, size_t max);

/* ring.c */
void ring_vnode_joined(struct chord *c, struct vnode *v);
void ring_tick_vnode(struct chord *c, struct vnode *v, uint64_t now);
void ring_on_request(struct chord *c, struct vnode *v, const struct chord_msg *m);
void ring_on_reply(struct chord *c, struct vnode *v, struct pending *p, const struct chord_msg *m);
void ring_on_fail(struct chord *c, struct vnode *v, struct pending *p);
void ring_adopt_try(struct chord *c, struct vnode *v, const struct chord_peer *cand);
void ring_start_leave(struct chord *c, struct vnode *v);
void ring_lookup_answered(struct chord *c, struct vnode *v, struct lookup *l);
void ring_lookup_failed(struct chord *c, struct vnode *v, struct lookup *l);

/* lookup.c */
struct lookup *lookup_find(struct chord *c, uint64_t handle);
/* Starts a lookup from vnode v. Returns it, or NULL on -ENOMEM. */
struct lookup *lookup_start(struct chord *c, struct vnode *v, const struct id *key,
                            enum lookup_purpose purpose, uint8_t arg);
/* Sends a PEER_FIND for l straight to a given address (joins and probes). */
void lookup_send_find(struct chord *c, struct vnode *v, struct lookup *l,
                      const struct chord_peer *to, bool any);
void lookup_on_find(struct chord *c, struct vnode *v, const struct chord_msg *m);
void lookup_on_found(struct chord *c, const struct chord_msg *m);
void lookup_on_next_hop(struct chord *c, struct vnode *v, const struct chord_msg *m);
void lookup_on_step_reply(struct chord *c, struct pending *p, const struct chord_msg *m);
void lookup_on_step_fail(struct chord *c, struct pending *p);
void lookup_on_route(struct chord *c, struct vnode *v, const struct chord_msg *m);
void lookup_tick(struct chord *c, uint64_t now);
uint64_t lookup_next_deadline(const struct chord *c);
void lookup_free_all(struct chord *c);
/* Ends every lookup in flight with -ECANCELED (reported at the next tick). */
void lookup_cancel_all(struct chord *c);

#endif
