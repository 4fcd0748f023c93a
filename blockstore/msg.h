/* msg.h — codecs of the storage messages 1001..1015 (not the sync range).
 *
 * One struct bs_msg holds the fields of every message type; each type uses
 * the subset listed below (docs/protocol.md, "Storage", byte by byte).
 * Decoding checks every length and value, rejects trailing bytes, and
 * points into the payload (bytes, lease records) instead of copying, so a
 * decoded message is valid only as long as the payload. decode -> encode
 * -> decode gives the same message.
 *
 *   GET            rtype flags target key
 *   GET_OK         rtype key bytes leases [location]
 *   PUT            rtype flags target key expect bytes leases
 *   PUT_OK         rtype key copies version [location]
 *   FAILURE        code reason [location] bytes
 *   STORE          rtype flags key bytes leases
 *   STORE_OK       rtype key
 *   LOCATE         target key
 *   LOCATION       key location
 *   LEASE          target key leases (at least one)
 *   LEASE_OK       key copies [location]
 *   LEASE_MERGE    key leases
 *   LEASE_MERGE_OK key flags leases
 *   ROOT_READ      key
 *   ROOT_READ_OK   key bytes (empty: no root held)
 *
 * Errors: BS_ERR_MALFORMED from decode; -EINVAL, -EMSGSIZE from encode.
 */
#ifndef COOPFS_BLOCKSTORE_MSG_H
#define COOPFS_BLOCKSTORE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/internal.h"
#include "common/wire.h"

#define BS_REASON_MAX     200  /* bytes of a failure's reason, printable ASCII */
#define BS_MSG_LEASES_MAX 4096 /* lease records in one message */
/* Largest payload any storage message can have: a PUT of the largest
 * record with the most leases. Below FRAME_MAX_PAYLOAD. */
#define BS_MSG_MAX                                                                                 \
    (1 + 1 + 2 * ID_BYTES + 8 + 4 + BLOCK_MAX_ANY + 2 + BS_MSG_LEASES_MAX * LEASE_LEN + 1024)

/* flags of GET */
#define BS_GET_F_PRIMARY                                                                           \
    0x01 /* asked as the responsible vnode target: roots are read                                  \
          * from a majority of the replica set */
/* flags of STORE */
#define BS_STORE_F_REPAIR 0x01 /* a good copy for a holder whose copy failed a check */
/* flags of LEASE_MERGE_OK */
#define BS_MERGE_F_HELD 0x01 /* the answering node holds the block (the leases merged) */

struct bs_msg {
    uint16_t type; /* enum bs_msg_type, 1001..1015 */
    uint8_t rtype; /* enum store_type */
    uint8_t flags; /* per type, above */
    struct id key;
    struct id target;               /* requests to the responsible vnode: its id */
    uint64_t version;               /* PUT: expected root version (BS_ROOT_ANY for none);
                                     * PUT_OK: version stored (roots; 0 otherwise) */
    uint8_t copies;                 /* PUT_OK, LEASE_OK */
    int32_t code;                   /* FAILURE: a BS_ERR_* or negative errno */
    char reason[BS_REASON_MAX + 1]; /* FAILURE: NUL-terminated */
    const uint8_t *bytes;           /* a record; inside the decoded payload or the caller's */
    size_t len;
    /* Lease records: encode uses leases (structs) when not NULL, else
     * lease_raw; decode sets lease_raw (nleases * LEASE_LEN bytes inside the
     * payload) and leaves leases NULL. */
    const struct lease *leases;
    const uint8_t *lease_raw;
    uint16_t nleases;
    bool has_loc;
    struct bs_location loc;
};

/* Bytes bs_msg_encode will write for m (0 for an unknown type). */
size_t bs_msg_size(const struct bs_msg *m);
/* Encodes the payload of m (frame header not included) into out. Returns 0
 * and *len, -EINVAL (unknown type or a field out of range), -EMSGSIZE
 * (cap too small or over the limits). A reason longer than BS_REASON_MAX is
 * cut and non-printable characters become '?'. */
int bs_msg_encode(const struct bs_msg *m, uint8_t *out, size_t cap, size_t *len);
/* Decodes the payload of a frame of type. Returns 0 and *out, or
 * BS_ERR_MALFORMED. */
int bs_msg_decode(uint16_t type, const uint8_t *payload, size_t len, struct bs_msg *out);
/* Lease record i of a message (decoded or to be encoded). */
void bs_msg_lease(const struct bs_msg *m, size_t i, struct lease *out);

/* The location block alone (also used by the sync codecs). */
void bs_location_put(struct wire_writer *w, const struct bs_location *loc);
void bs_location_get(struct wire_reader *r, struct bs_location *loc);
size_t bs_location_size(const struct bs_location *loc);

#endif
