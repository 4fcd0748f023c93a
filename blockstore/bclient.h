/* bclient.h — the block client interface the file system uses.
 *
 * DESIGN.md section 1: fs/ reaches blocks only through this interface.
 * net/ implements it over an in-process node (net/node.h,
 * net_node_blocks); tests implement it over memory (tests/unit/fs). Every
 * call is thread-safe and may be made from any thread except the one that
 * runs the callbacks. A call that returns 0 has started an operation whose
 * done callback runs exactly once, later, on a thread of the
 * implementation (never inside the call). A call that returns an error
 * started nothing.
 *
 * Results use struct bs_result (bs.h): status 0, a BS_ERR_* value or a
 * negative errno; bytes/len are valid only during the callback.
 *
 * The implementation bounds what it has in flight: when too many
 * operations are outstanding, a call blocks the caller until there is room
 * (backpressure), it never fails with -EBUSY.
 */
#ifndef COOPFS_BLOCKSTORE_BCLIENT_H
#define COOPFS_BLOCKSTORE_BCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "blockstore/block.h"
#include "blockstore/bs.h"
#include "blockstore/store.h"
#include "common/addr.h"
#include "common/id.h"

#define BCLIENT_MAX_HOLDERS 16

typedef void (*bclient_done_fn)(void *arg, const struct bs_result *r);

struct bclient_space {
    uint64_t total; /* bytes the ring donates, estimated */
    uint64_t free;  /* of which not used, estimated */
    unsigned replicas; /* k */
    unsigned nodes;    /* physical nodes known, estimated */
};

struct bclient_ops {
    /* bs_put: a content block (block_encode bytes) with its owner's lease.
     * r->copies says how many nodes hold it durably. */
    int (*put)(void *impl, const uint8_t *bytes, size_t len, const struct lease *lease,
               bclient_done_fn done, void *arg);
    /* bs_get: fetches and verifies (type, key). */
    int (*get)(void *impl, enum store_type type, const struct id *key, bclient_done_fn done,
               void *arg);
    /* bs_root_put: compare-and-swap of a root block (expect_version 0: no
     * root yet; BS_ROOT_ANY: unconditional). */
    int (*root_put)(void *impl, const uint8_t *bytes, size_t len, uint64_t expect_version,
                    bclient_done_fn done, void *arg);
    /* bs_lease_update: sends a lease record (a renewal with a later expiry,
     * or a reclaim) for content block key to its holders. May be NULL in
     * an implementation without leases (callers then skip renewals). */
    int (*lease)(void *impl, const struct id *key, const struct lease *l, bclient_done_fn done,
                 void *arg);
    /* Synchronous: the addresses of the nodes of key's replica set (the
     * holders a get would ask), at most max; returns how many (>= 0) or a
     * negative errno. May take a ring lookup (bounded by the RPC timeouts). */
    int (*holders)(void *impl, const struct id *key, struct addr *out, unsigned max);
    /* Synchronous: an estimate of the ring's donated and free space. */
    int (*space)(void *impl, struct bclient_space *out);
};

struct bclient {
    const struct bclient_ops *ops;
    void *impl;
};

#endif
