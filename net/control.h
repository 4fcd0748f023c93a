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

#include "common/addr.h"
#include "common/id.h"

enum ctl_msg_type {
    CTL_MSG_STATUS = 1201,      /* request: empty; reply: the status JSON, UTF-8 */
    CTL_MSG_LOOKUP = 1202,      /* request: key; reply: struct ctl_lookup_reply */
    CTL_MSG_STATUS_TEXT = 1203, /* request: empty; reply: the status for people, UTF-8 */
    CTL_MSG_ERROR = 1299,       /* reply: errno i32, then a message in UTF-8 */
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
/* The text of the last error the node sent, or "". */
const char *ctl_client_error(const struct ctl_client *c);

#endif
