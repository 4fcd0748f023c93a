/* harness.h — a fake world for unit tests of chord/.
 *
 * One struct harness holds one struct chord, a fake clock (the test sets
 * or advances it), a deterministic counter-based random source, and an
 * outbox that captures every frame the node sends. Tests feed frames built
 * from struct chord_msg with h_feed(), inspect the outbox with h_find(),
 * and pass time with h_run(), which behaves like an event loop: it ticks
 * the node at each of its deadlines up to the target time. Nothing sleeps.
 *
 * Peers are placed at offsets from the node's own id (which is SHA-256 of
 * its address, chord_vnode_id): h_peer(h, 0x10, &p) puts p at
 * self + 0x10 * 2^248, so 0x10 < 0x20 < ... is ring order clockwise from
 * the node, and 0xf0 lies just before it.
 *
 * A struct h_net wires two or three harnesses together by hand: frames in
 * an outbox go to the harness whose address they name, with no latency,
 * and all share one clock.
 *
 * Set H_LOG=1 in the environment to see the node's debug log on stderr.
 */
#ifndef COOPFS_TESTS_UNIT_CHORD_HARNESS_H
#define COOPFS_TESTS_UNIT_CHORD_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chord/chord.h"
#include "chord/msg.h"
#include "common/log.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The fake clock starts here, so that "time 0" bugs do not hide. */
#define H_T0 1000000u
/* Room for any frame the tests build. */
#define H_FRAME_MAX   (FRAME_HEADER_SIZE + 4096)
#define H_MAX_DONE    64
#define H_MAX_DELIVER 16
#define H_PAYLOAD_MAX 256

struct h_frame {
    struct addr to;
    uint8_t *bytes; /* owned */
    size_t len;
};

struct h_done {
    uint64_t handle;
    uint64_t at; /* clock when the upcall ran */
    struct chord_lookup_result res;
};

struct h_delivery {
    unsigned vnode;
    struct id key;
    struct chord_peer origin;
    uint16_t app_type;
    size_t len;
    uint8_t payload[H_PAYLOAD_MAX];
};

struct harness {
    uint64_t now;
    uint64_t *clock; /* &now, or the shared clock of an h_net */
    uint64_t rng_counter;
    struct env env;
    struct chord_config cfg;
    struct logger lg;
    struct chord *c;
    bool in_call; /* set while the test is inside a chord_* downcall */

    struct h_frame *out;
    size_t nout, cap_out;
    /* Frames the node sends to its own address (chord_route starts that
     * way): delivered back to it by h_step, never put in the outbox. */
    struct h_frame *loop;
    size_t nloop, cap_loop;
    bool in_net; /* wired into an h_net, which routes every frame */

    /* What the upcalls saw. */
    unsigned updates; /* all update upcalls */
    unsigned updates_vn[CHORD_MAX_VNODES];
    struct h_done done[H_MAX_DONE];
    size_t ndone;
    unsigned done_in_call;    /* lookup_done upcalls made inside h_lookup/h_route */
    unsigned deliver_in_call; /* deliver upcalls made inside h_lookup/h_route */
    unsigned forward_in_call; /* forward upcalls made inside h_lookup/h_route */
    struct h_delivery deliv[H_MAX_DELIVER];
    size_t ndeliv;
    unsigned nforward;
    struct chord_peer forward_next; /* next hop of the last forward upcall */
    bool forward_ret;               /* what the forward upcall returns */
};

/* ---- set-up ------------------------------------------------------------ */

/* Default config of a node at 127.0.0.host:4000 (nothing is ever sent). */
void h_config(struct chord_config *cfg, uint8_t host);
/* Pushes the background timers (check-predecessor, fix-finger, probe) an
 * hour away, so that a test sees only the traffic it provokes. */
void h_config_quiet(struct chord_config *cfg);
/* Makes the node (asserting success) with the clock at H_T0. */
void h_init(struct harness *h, const struct chord_config *cfg);
void h_release(struct harness *h);

/* The node's vnode v. */
const struct chord_peer *h_self(const struct harness *h);
const struct chord_peer *h_vself(const struct harness *h, unsigned v);
/* out = base + off * 2^248. */
void h_id_off(struct id *out, const struct id *base, uint8_t off);
/* A peer at h_self + off * 2^248, at address 10.1.<off>.<off>:5000
 * (off 0 gives the node's own id at another address). */
void h_peer(const struct harness *h, uint8_t off, struct chord_peer *out);
/* A peer whose id is self + off * 2^248 but whose address is at's. */
void h_peer_at_addr(const struct harness *h, uint8_t off, const struct addr *at,
                    struct chord_peer *out);
/* The address chord_join is given in h_join(). */
void h_bootstrap(struct addr *out);

/* ---- time -------------------------------------------------------------- */

/* Sets the clock (never backwards) and ticks once. */
void h_tick_at(struct harness *h, uint64_t t);
/* Passes ms milliseconds like an event loop: ticks at every deadline the
 * node reports up to now + ms, then sets the clock to now + ms. */
void h_run(struct harness *h, uint64_t ms);
/* Like h_run, but stops right after the tick that sends a frame of the
 * given type to the given address (NULL: any). Returns its outbox index,
 * or -1 if none was sent within ms. Fills *m if not NULL. */
int h_await(struct harness *h, uint16_t type, const struct addr *to, uint64_t ms,
            struct chord_msg *m);

/* ---- the outbox -------------------------------------------------------- */

/* Decodes outbox entry i (asserting it decodes). */
void h_out_msg(const struct harness *h, size_t i, struct chord_msg *m);
/* The first entry at index >= from of that type sent to `to` (NULL: any),
 * or -1. Fills *m if found and m is not NULL. */
int h_find_from(const struct harness *h, size_t from, uint16_t type, const struct addr *to,
                struct chord_msg *m);
int h_find(const struct harness *h, uint16_t type, const struct addr *to, struct chord_msg *m);
/* The last such entry, or -1. */
int h_find_last(const struct harness *h, uint16_t type, const struct addr *to, struct chord_msg *m);
size_t h_count(const struct harness *h, uint16_t type, const struct addr *to);
void h_clear(struct harness *h);

/* ---- input ------------------------------------------------------------- */

/* A zeroed request of a type from a peer to the node's vnode 0. */
void h_msg(const struct harness *h, struct chord_msg *m, uint16_t type,
           const struct chord_peer *from);
/* A reply of a type to req (as decoded from the outbox) from a peer. */
void h_reply(struct chord_msg *rep, const struct chord_msg *req, uint16_t type,
             const struct chord_peer *from);
/* Encodes m (asserting success). Returns the frame length. */
size_t h_encode(const struct chord_msg *m, uint8_t *buf, size_t cap);
/* Encodes m and feeds it to the node as if received from m->src.addr.
 * Returns what chord_input returns. */
int h_feed(struct harness *h, const struct chord_msg *m);
int h_feed_raw(struct harness *h, const struct addr *from, const void *buf, size_t len);

/* Plays the other side of vnode 0's join, which must have been started
 * with chord_join(h_bootstrap()): waits for the PEER_FIND to the
 * bootstrap and answers it with a PEER_FOUND naming succ, then answers
 * the PREDECESSOR_GET to succ with pred (NULL: none) and list. Asserts
 * the vnode joined, and clears the outbox. */
void h_join(struct harness *h, const struct chord_peer *succ, const struct chord_peer *pred,
            const struct chord_peer *list, size_t n);
/* Feeds the PREDECESSOR_REPLY of `from` to request req: predecessor pred
 * (NULL for none) and successor list[0..n). */
void h_reply_state(struct harness *h, const struct chord_msg *req, const struct chord_peer *from,
                   const struct chord_peer *pred, const struct chord_peer *list, size_t n);
/* Waits (up to a stabilize period and a bit) for the PREDECESSOR_GET of a
 * stabilize to succ and answers it with pred (NULL: none) and list. */
void h_stabilize(struct harness *h, const struct chord_peer *succ, const struct chord_peer *pred,
                 const struct chord_peer *list, size_t n);

/* chord_lookup and chord_route, noting whether upcalls run inside them. */
int h_lookup(struct harness *h, const struct id *key, uint64_t *handle);
int h_route(struct harness *h, const struct id *key, uint16_t app_type, const void *payload,
            size_t len);
/* The result reported for handle, or NULL if none yet. */
const struct h_done *h_done_for(const struct harness *h, uint64_t handle);

/* ---- checks ------------------------------------------------------------ */

/* Asserts that vnode 0's successor list is exactly `expect`. */
void h_assert_succ(const struct harness *h, const struct chord_peer *expect, size_t n);
/* Asserts vnode 0's predecessor (NULL: none). */
void h_assert_pred(const struct harness *h, const struct chord_peer *expect);
void h_assert_peer_eq(const struct chord_peer *a, const struct chord_peer *b);
bool h_peer_eq(const struct chord_peer *a, const struct chord_peer *b);

/* ---- a hand-wired network of a few nodes ------------------------------- */

#define H_NET_MAX 4

struct h_net {
    uint64_t now;
    size_t n;
    struct harness *node[H_NET_MAX];
    bool down[H_NET_MAX]; /* crashed: frames to it are lost, it is not ticked */
};

/* Ties harnesses (already h_init'ed) to a shared clock starting at H_T0. */
void h_net_init(struct h_net *net, struct harness **nodes, size_t n);
/* Delivers every frame in the outboxes (to its addressee, or to nobody)
 * until none is left, clearing the outboxes. */
void h_net_flush(struct h_net *net);
/* Passes ms milliseconds: delivers frames and ticks each node at its
 * deadlines. */
void h_net_run(struct h_net *net, uint64_t ms);

#endif
