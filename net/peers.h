/* peers.h — the TCP side of a node: one listener, and a cache of framed
 * connections to other nodes keyed by their ring address.
 *
 * A node sends to a ring address (struct addr, the address a node listens
 * on and is named by). The cache keeps one stream per peer: a connection
 * we dialled, or one the peer dialled and named with HELLO. A dialled
 * connection starts with our HELLO, so the other side can answer on it
 * instead of dialling back; the HELLO's IP must be the connection's source
 * IP. Frames sent to our own address are delivered back to us, from the
 * loop, never inside the send (vnodes of one node talk to each other).
 *
 * Failures the protocol above must know about come through the
 * unreachable callback: only a refused connection (no process listens at
 * that address, so none of its vnodes exists) counts, which is proof of
 * absence rather than suspicion. Everything else (timeouts, a full queue,
 * a cut link) is loss, which chord/ detects with its own timeouts.
 */
#ifndef COOPFS_NET_PEERS_H
#define COOPFS_NET_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/frame.h"
#include "common/log.h"
#include "net/loop.h"

#define NET_MSG_HELLO          1050    /* payload: the sender's ring address */
#define NET_MAX_CONNS          1024    /* streams at once; see net_peers_new */
#define NET_IDLE_MS            120000u /* a stream unused this long is closed */
#define NET_CONNECT_TIMEOUT_MS 3000u   /* a connect not up by then is abandoned */

struct net_peers; /* opaque */

struct net_peers_cbs {
    void *ctx;
    /* A frame from the peer at `from` (its ring address when known, else
     * the socket's address). Return 0, or a negative value if the frame
     * was malformed: the connection is then closed. */
    int (*frame)(void *ctx, const struct addr *from, const struct frame_header *h,
                 const uint8_t *frame, size_t len);
    /* A connection to `to` was refused: no node listens there. */
    void (*unreachable)(void *ctx, const struct addr *to);
};

struct net_peers_stats {
    uint64_t connections; /* open now */
    uint64_t accepted;    /* incoming, since start */
    uint64_t dialled;     /* outgoing, since start */
    uint64_t refused;     /* dials refused */
    uint64_t dial_failed; /* other dial failures and connect timeouts */
    uint64_t closed_bad;  /* closed for a bad frame, a bad HELLO or a malformed payload */
    uint64_t closed_slow; /* closed because a frame took too long */
    uint64_t over_limit;  /* connections refused above NET_MAX_CONNS */
    uint64_t evicted;     /* unnamed connections closed to make room */
    uint64_t dropped;     /* frames dropped: the peer's queue was full */
    uint64_t bytes_in, bytes_out;
    uint64_t frames_in, frames_out;
};

/* Listens on `listen` (port 0: the kernel picks) and makes the cache.
 * At most NET_MAX_CONNS streams are open at once; at the limit an accepted
 * stream that never sent HELLO makes room for a newcomer (least recently
 * used first), and only when every stream is named is the newcomer
 * refused.
 * lg may be NULL. Returns 0 and *out, or -errno from bind/listen. */
int net_peers_new(struct net_loop *l, const struct addr *listen, const struct net_peers_cbs *cbs,
                  const struct logger *lg, struct net_peers **out);
/* Closes every connection and the listener. NULL-safe. */
void net_peers_free(struct net_peers *p);
/* The ring address of this node: the listen address with the real port. */
const struct addr *net_peers_self(const struct net_peers *p);

/* Sends one whole frame to the node at `to`, dialling if needed.
 * Best-effort: returns 0 if queued, -ENOBUFS if the peer's queue is full,
 * -EMFILE if no connection could be made; the frame is dropped then. */
int net_peers_send(struct net_peers *p, const struct addr *to, const void *frame, size_t len);

/* The HELLO payload: the sender's ring address (wire_put_addr). Encode
 * returns the length or 0 if it does not fit; decode returns 0 or
 * -EBADMSG (trailing bytes, port 0 or an unspecified IP included). */
size_t net_hello_encode(const struct addr *self, uint8_t *buf, size_t cap);
int net_hello_decode(const uint8_t *p, size_t len, struct addr *out);

void net_peers_get_stats(const struct net_peers *p, struct net_peers_stats *out);
/* Calls fn for each open connection with its ring address (or socket
 * address), whether we dialled it, and the bytes queued to it. */
void net_peers_foreach(const struct net_peers *p,
                       void (*fn)(void *ctx, const struct addr *a, bool dialled, size_t queued),
                       void *ctx);

#endif
