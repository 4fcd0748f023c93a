/* frame.h — the frame header shared by every message between nodes.
 *
 *   magic u32 | version u8 | flags u8 | type u16 | request id u64 | length u32 | payload
 *
 * Big-endian, 20 bytes of header. docs/protocol.md describes each type.
 */
#ifndef COOPFS_COMMON_FRAME_H
#define COOPFS_COMMON_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAGIC       0x434f4f50u /* "COOP" */
#define FRAME_VERSION     1
#define FRAME_HEADER_SIZE 20
/* Largest payload a node accepts; a bigger length closes the connection. */
#define FRAME_MAX_PAYLOAD (1024u * 1024u)

/* flags */
#define FRAME_F_REPLY 0x01 /* a reply to the request with the same id */

struct frame_header {
    uint8_t version;
    uint8_t flags;
    uint16_t type;
    uint64_t request_id;
    uint32_t length; /* payload bytes after the header */
};

enum {
    FRAME_ERR_SHORT = -1,   /* fewer than FRAME_HEADER_SIZE bytes: wait for more */
    FRAME_ERR_MAGIC = -2,   /* not a coopfs frame: close */
    FRAME_ERR_VERSION = -3, /* a version this node does not speak: close */
    FRAME_ERR_TOO_BIG = -4, /* length above FRAME_MAX_PAYLOAD: close */
};

/* Decodes the header at buf. Returns 0 and fills *out, or a FRAME_ERR_*
 * value. It does not check that the payload has arrived. */
int frame_header_decode(const void *buf, size_t len, struct frame_header *out);
/* Writes the 20-byte header for h into buf. */
void frame_header_encode(const struct frame_header *h, void *buf);
/* A readable name for an error code above. */
const char *frame_strerror(int err);

#endif
