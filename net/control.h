/* control.h — the local control protocol between the coopfs tools and a
 * running node, over the Unix socket DATA/control.sock.
 *
 * Frames as between nodes (common/frame.h); requests carry a request id,
 * replies FRAME_F_REPLY and the same id. docs/protocol.md describes the
 * bytes. Any request may be answered by CTL_MSG_ERROR instead.
 *
 * The decoders take outside bytes and check every length.
 */
#ifndef COOPFS_NET_CONTROL_H
#define COOPFS_NET_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "blockstore/block.h"
#include "common/addr.h"
#include "common/id.h"

enum ctl_msg_type {
    CTL_MSG_STATUS = 1201,      /* request: empty; reply: the status JSON, UTF-8 */
    CTL_MSG_LOOKUP = 1202,      /* request: key; reply: struct ctl_lookup_reply */
    CTL_MSG_STATUS_TEXT = 1203, /* request: empty; reply: the status for people, UTF-8 */
    /* Block operations, answered by the node's block client (bs.h) with a
     * struct ctl_bs_reply of the same type. */
    CTL_MSG_BLOCK_PUT = 1210, /* request: key [32] | lease [112] | content block bytes */
    CTL_MSG_BLOCK_GET = 1211, /* request: u8 store type | key [32] */
    CTL_MSG_ROOT_PUT = 1212,  /* request: u64 expected version | root block bytes */
    CTL_MSG_LEASE = 1213,     /* request: key [32] | lease [112] (renewal or reclaim) */
    CTL_MSG_KV_PUT = 1214,    /* request: kv record bytes */
    CTL_MSG_ERROR = 1299,     /* reply: errno i32, then a message in UTF-8 */
};

#define CTL_TIMEOUT_MS 30000u /* how long a tool waits for one reply */
#define CTL_ERROR_MAX  512    /* longest error message */

struct ctl_lookup_reply {
    int32_t status; /* 0 or a negative errno (-ETIMEDOUT, -EHOSTUNREACH, -EAGAIN) */
    uint16_t hops;
    uint8_t iterative;
    uint64_t elapsed_us;
    struct id id;     /* the responsible vnode, when status is 0 */
    struct addr addr; /* its node's address */
};

/* Each encoder writes at most cap bytes and returns the length, or 0 if it
 * does not fit. Each decoder returns 0 or -EBADMSG. */
size_t ctl_lookup_req_encode(const struct id *key, uint8_t *buf, size_t cap);
int ctl_lookup_req_decode(const uint8_t *p, size_t len, struct id *key);
size_t ctl_lookup_reply_encode(const struct ctl_lookup_reply *r, uint8_t *buf, size_t cap);
int ctl_lookup_reply_decode(const uint8_t *p, size_t len, struct ctl_lookup_reply *out);
size_t ctl_error_encode(int32_t err, const char *msg, uint8_t *buf, size_t cap);
/* Copies the message, NUL-terminated and cut to msg_size, into msg. */
int ctl_error_decode(const uint8_t *p, size_t len, int32_t *err, char *msg, size_t msg_size);

/* The answer to a block operation:
 *   i32 status | key [32] | u8 copies | u64 version | u16 reason length
 *   | reason (UTF-8, at most CTL_REASON_MAX) | u32 length | bytes
 * status is 0, a negative errno or a BS_ERR_* value (bs.h). bytes: the
 * record a get fetched, or the current root after a CAS conflict. */
#define CTL_REASON_MAX 200
struct ctl_bs_reply {
    int32_t status;
    struct id key;
    uint8_t copies;
    uint64_t version;
    char reason[CTL_REASON_MAX + 1]; /* control characters replaced by '?' */
    const uint8_t *bytes;            /* inside the decoded buffer */
    uint32_t len;
};
size_t ctl_bs_reply_encode(const struct ctl_bs_reply *r, uint8_t *buf, size_t cap);
int ctl_bs_reply_decode(const uint8_t *p, size_t len, struct ctl_bs_reply *out);
/* The requests. Decoders leave *bytes pointing into p. */
/* BLOCK_PUT carries the block's key (the sender computed it): the node
 * routes by it without hashing the block again; the primary verifies block
 * and lease against it and refuses a mismatch (BAD_BLOCK). */
size_t ctl_block_put_encode(const struct id *key, const struct lease *l, const uint8_t *bytes,
                            size_t blen, uint8_t *buf, size_t cap);
int ctl_block_put_decode(const uint8_t *p, size_t len, struct id *key, struct lease *l,
                         const uint8_t **bytes, size_t *blen);
size_t ctl_block_get_encode(uint8_t type, const struct id *key, uint8_t *buf, size_t cap);
int ctl_block_get_decode(const uint8_t *p, size_t len, uint8_t *type, struct id *key);
size_t ctl_root_put_encode(uint64_t expect, const uint8_t *bytes, size_t blen, uint8_t *buf,
                           size_t cap);
int ctl_root_put_decode(const uint8_t *p, size_t len, uint64_t *expect, const uint8_t **bytes,
                        size_t *blen);
size_t ctl_lease_encode(const struct id *key, const struct lease *l, uint8_t *buf, size_t cap);
int ctl_lease_decode(const uint8_t *p, size_t len, struct id *key, struct lease *l);

/* The client side, for tools: a blocking connection to a node. */
struct ctl_client; /* opaque */

/* Connects to DATA/control.sock. Returns 0 and *out, -ENOENT or
 * -ECONNREFUSED when no node runs there, or another -errno. */
int ctl_client_open(const char *datadir, struct ctl_client **out);
void ctl_client_free(struct ctl_client *c); /* NULL-safe */
/* The node's status JSON, NUL-terminated; the caller frees *json. Returns
 * 0 or -errno (-ETIMEDOUT, -ECONNRESET, or the node's error). */
int ctl_client_status(struct ctl_client *c, char **json);
/* The same status laid out for people (what `coopfs status` prints). */
int ctl_client_status_text(struct ctl_client *c, char **text);
/* Looks up n keys with at most `parallel` in flight, calling each(ctx, i,
 * reply) as answers come. Returns 0 when every request was answered (the
 * replies carry their own status), or -errno if the connection failed. */
int ctl_client_lookup(struct ctl_client *c, const struct id *keys, size_t n, unsigned parallel,
                      void (*each)(void *ctx, size_t i, const struct ctl_lookup_reply *r),
                      void *ctx);
/* Pipelined calls. ctl_client_call sends a request and returns at once;
 * done(ctx, status, type, payload, len) runs inside a later
 * ctl_client_wait: status 0 with the reply's type and payload, the node's
 * error (a CTL_MSG_ERROR reply; see ctl_client_error), -ETIMEDOUT after
 * CTL_TIMEOUT_MS, or -ECONNRESET. Returns 0, -ECONNRESET, -ENOMEM,
 * -EMSGSIZE, -ENOBUFS (too much queued: wait first). */
typedef void (*ctl_call_fn)(void *ctx, int status, uint16_t type, const uint8_t *payload,
                            size_t len);
int ctl_client_call(struct ctl_client *c, uint16_t type, const void *payload, size_t len,
                    ctl_call_fn done, void *ctx);
/* Runs until at least one call has finished (or none is pending).
 * Returns 0, or -ECONNRESET once the connection is gone (pending calls
 * have then finished with it). */
int ctl_client_wait(struct ctl_client *c);
size_t ctl_client_pending(const struct ctl_client *c);
/* The text of the last error the node sent, or "". */
const char *ctl_client_error(const struct ctl_client *c);

#endif
