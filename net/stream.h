/* stream.h — one framed byte stream (TCP or a Unix socket) on the loop.
 *
 * A stream cuts its input into frames (common/frame.h) and hands each
 * whole frame to its owner; it queues whole frames for output. It enforces
 * the rules that keep a node alive whatever a peer sends:
 *   - a header with a bad magic or version, or a length above
 *     FRAME_MAX_PAYLOAD, closes the stream;
 *   - a frame must arrive whole within NET_FRAME_TIMEOUT_MS of its first
 *     byte, and an accepted stream must deliver its first frame within the
 *     same time (slowloris);
 *   - sent data unacknowledged for NET_TCP_USER_TIMEOUT_MS fails a TCP
 *     stream (a cut path), so its owner redials instead of waiting;
 *   - a stream reads at most one maximal frame ahead (TCP flow control
 *     then slows the sender), and queues at most out_max bytes for
 *     output: a frame that does not fit is refused with -ENOBUFS
 *     (backpressure; a slow peer cannot make the node buffer without
 *     bound).
 * When a stream closes for any reason, its owner's closed callback runs
 * once, and the stream is freed after it returns.
 */
#ifndef COOPFS_NET_STREAM_H
#define COOPFS_NET_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/frame.h"
#include "net/loop.h"

#define NET_FRAME_TIMEOUT_MS 5000u
/* TCP_USER_TIMEOUT of peer streams: data unacknowledged this long fails
 * the connection (ETIMEDOUT), so a stream that lost its path is redialled
 * instead of waiting on kernel retransmissions. */
#define NET_TCP_USER_TIMEOUT_MS 5000u
#define NET_OUT_MAX_DEFAULT     (8u * 1024u * 1024u) /* queued output bytes per stream */

/* Why a stream closed (besides -errno values of the socket). */
enum {
    NET_CLOSE_EOF = 1,       /* the peer closed between frames */
    NET_CLOSE_MID_FRAME = 2, /* the peer closed inside a frame */
    NET_CLOSE_BAD_FRAME = 3, /* bad magic, version or length */
    NET_CLOSE_TIMEOUT = 4,   /* a frame did not complete in time */
    NET_CLOSE_BY_OWNER = 5,  /* net_stream_close() */
    NET_CLOSE_CONNECT = 6,   /* an outgoing connection failed; see err */
};

struct net_stream; /* opaque */

struct net_stream_cbs {
    void *ctx;
    /* Outgoing streams: the connection is up. May be NULL. */
    void (*connected)(void *ctx, struct net_stream *s);
    /* One whole frame: the header decoded, and `frame` the len bytes of
     * header and payload, valid during the call. The owner may close the
     * stream inside the call. */
    void (*frame)(void *ctx, struct net_stream *s, const struct frame_header *h,
                  const uint8_t *frame, size_t len);
    /* The stream closed: reason is NET_CLOSE_*, err the socket's errno
     * (0 if none), why a readable explanation. Not called after
     * net_stream_close(). The stream is freed when this returns. */
    void (*closed)(void *ctx, struct net_stream *s, int reason, int err, const char *why);
};

/* Connects to a TCP address, from local address `bind_ip` (its port is
 * ignored; NULL or unspecified: the kernel chooses). Frames sent before
 * the connection is up are queued. Returns 0 and *out, or -errno. */
int net_stream_connect(struct net_loop *l, const struct addr *to, const struct addr *bind_ip,
                       const struct net_stream_cbs *cbs, struct net_stream **out);
/* Connects to a Unix stream socket at path. */
int net_stream_connect_unix(struct net_loop *l, const char *path, const struct net_stream_cbs *cbs,
                            struct net_stream **out);
/* Wraps an accepted socket (the stream owns fd from now on, even on error).
 * The first-frame deadline starts now. */
int net_stream_accept(struct net_loop *l, int fd, const struct net_stream_cbs *cbs,
                      struct net_stream **out);

/* Queues one whole frame. Returns 0, -ENOBUFS when the output queue would
 * pass its limit (the frame is dropped), -EPIPE when closing, -ENOMEM. */
int net_stream_send(struct net_stream *s, const void *frame, size_t len);
/* Closes at once, dropping queued output; no closed callback. NULL-safe. */
void net_stream_close(struct net_stream *s);
/* Closes once queued output has been written (or after 2 s). */
void net_stream_close_after_flush(struct net_stream *s);

void net_stream_set_out_max(struct net_stream *s, size_t out_max);
void net_stream_set_cbs(struct net_stream *s, const struct net_stream_cbs *cbs);
/* Bytes queued for output. */
size_t net_stream_queued(const struct net_stream *s);
/* The peer's socket address (TCP streams; family ADDR_NONE for Unix). */
const struct addr *net_stream_peer(const struct net_stream *s);
/* Counters of this stream. */
uint64_t net_stream_bytes_in(const struct net_stream *s);
uint64_t net_stream_bytes_out(const struct net_stream *s);
/* Text for a NET_CLOSE_* reason. */
const char *net_close_reason(int reason);

#endif
