/* rpc.h — requests and replies over framed streams.
 *
 * A call sends one request frame with a fresh 64-bit request id and waits
 * for the frame that carries FRAME_F_REPLY and the same id on the same
 * stream. Each call has its own timeout; a call can be cancelled; a call
 * whose stream closes fails at once. The done callback runs exactly once
 * per call that was not cancelled, on the loop thread, never inside
 * net_rpc_call().
 */
#ifndef COOPFS_NET_RPC_H
#define COOPFS_NET_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/frame.h"
#include "net/loop.h"
#include "net/stream.h"

struct net_rpc; /* opaque */

/* status: 0 with the reply (header, whole frame, its length), or
 * -ETIMEDOUT, -ECONNRESET (the stream closed), -ECANCELED (the rpc table
 * was freed); then h and frame are NULL. */
typedef void (*net_rpc_done)(void *ctx, int status, const struct frame_header *h,
                             const uint8_t *frame, size_t len);

int net_rpc_new(struct net_loop *l, struct net_rpc **out);
/* Fails every pending call with -ECANCELED, then frees. NULL-safe. */
void net_rpc_free(struct net_rpc *r);

/* Sends a request of `type` with payload on s. Returns 0 and *id (may be
 * NULL), -EMSGSIZE, -ENOMEM, or the stream's refusal (-ENOBUFS, -EPIPE);
 * done is called only if this returns 0. */
int net_rpc_call(struct net_rpc *r, struct net_stream *s, uint16_t type, const void *payload,
                 size_t len, uint32_t timeout_ms, net_rpc_done done, void *ctx, uint64_t *id);
/* Offers a frame received on s. Returns true if it answered a call (whose
 * done has then run), false if it is not a reply we wait for. */
bool net_rpc_input(struct net_rpc *r, struct net_stream *s, const struct frame_header *h,
                   const uint8_t *frame, size_t len);
/* Forgets a call without calling its done. Returns 0 or -ENOENT. */
int net_rpc_cancel(struct net_rpc *r, uint64_t id);
/* Fails every call made on s with -ECONNRESET (the stream closed). */
void net_rpc_stream_closed(struct net_rpc *r, struct net_stream *s);
size_t net_rpc_pending(const struct net_rpc *r);

#endif
