/* msg.h — encoding and decoding of chord's frames (docs/protocol.md).
 *
 * Every chord payload starts with the same prefix:
 *   flags u8 | dst id [32] | src id [32] | src addr
 * flags bit 0 (CHORD_MF_ANY) asks the receiving node to hand the message
 * to any of its joined vnodes (used to bootstrap, when only an address is
 * known). The body depends on the frame type; see struct chord_msg.
 */
#ifndef COOPFS_CHORD_MSG_H
#define COOPFS_CHORD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chord/chord.h"
#include "common/frame.h"

#define CHORD_MF_ANY 0x01

struct chord_msg {
    uint16_t type; /* enum chord_msg_type */
    bool reply;    /* FRAME_F_REPLY */
    uint64_t request_id;
    uint8_t flags; /* CHORD_MF_* */
    struct id dst;
    struct chord_peer src;

    /* Body fields; which ones a type uses:
     *   PEER_FIND         key, peer (reply-to), hops
     *   PEER_FOUND        key, peer (successor), hops
     *   PREDECESSOR_REPLY has_peer/peer (predecessor), peers (successors)
     *   LEAVE             has_peer/peer (predecessor), peers (successors)
     *   NEXT_HOP          key
     *   NEXT_HOP_REPLY    done, peers (done: successors; else candidates)
     *   ROUTE             key, peer (origin), hops, app_type, payload
     *   others            nothing */
    struct id key;
    bool has_peer;
    struct chord_peer peer;
    uint16_t hops;
    uint16_t app_type;
    uint8_t done;
    uint8_t npeers; /* <= CHORD_SUCC_MAX */
    struct chord_peer peers[CHORD_SUCC_MAX];
    const uint8_t *payload; /* ROUTE: points into the decoded buffer */
    uint32_t payload_len;
};

/* Decodes a whole frame (header and payload, nothing after). Returns 0, or
 * CHORD_ERR_MALFORMED (bad header, short or trailing bytes, bad address,
 * too many peers), or CHORD_ERR_TYPE (not a chord type). *out is written
 * only in part on failure and must then be ignored. */
int chord_msg_decode(const void *buf, size_t len, struct chord_msg *out);

/* Encodes m as a whole frame into buf. Returns the frame length, or 0 if
 * cap is too small or a field is invalid. */
size_t chord_msg_encode(const struct chord_msg *m, void *buf, size_t cap);

/* An upper bound on the encoded size of m. */
size_t chord_msg_size_bound(const struct chord_msg *m);

/* The name of a message type, for logs ("PEER_FIND"), or "?". */
const char *chord_msg_name(uint16_t type);

#endif
