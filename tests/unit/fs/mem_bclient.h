/* mem_bclient.h — an in-memory block client (blockstore/bclient.h) for the
 * fs/ unit tests (DESIGN.md section 1: "an in-memory fake implements it
 * for fs unit tests").
 *
 * A struct mem_store is the ring: content blocks, roots and the fault
 * switches. Any number of struct mem_bclient share one store, as two
 * mounts of one key on two machines share the ring; each client has its
 * own worker thread and queue, and every callback runs on that thread,
 * never inside the call that started the operation (bclient.h).
 *
 * Faithful to bs.h where fs/ can tell:
 *   put       the bytes must be a content block (block_key) and the lease
 *             must verify over its key and be live, else the callback gets
 *             BS_ERR_BAD_BLOCK / BS_ERR_NO_LEASE; a block already held only
 *             merges the lease (lease_newer per owner). r->copies is the
 *             store's copies (default 3).
 *   get       verified again on the way out (block_verify / root_verify);
 *             an unknown key is BS_ERR_NOT_FOUND. r->version for roots.
 *   root_put  root_verify, then compare-and-swap: the current version must
 *             be expect_version (0: no root yet; BS_ROOT_ANY: any below the
 *             new one), else BS_ERR_CONFLICT with the current root's bytes
 *             (none when there is no root) and its version; a new version
 *             not above the current one is BS_ERR_STALE (same version and
 *             bytes: already stored, success). A call whose version is not
 *             above expect_version returns -EINVAL, as bs_root_put does.
 *   holders   min(copies, max) made-up addresses 10.0.0.i:4000+i.
 *   space     3 nodes of 1 GiB, less what the blocks use times copies.
 * An operation takes effect when it completes on the worker, not when it
 * is called, as on a real ring. At most MEM_BCLIENT_INFLIGHT operations
 * per client are outstanding; a call beyond blocks until there is room
 * (backpressure, never -EBUSY). A call from the client's own worker thread
 * returns -EDEADLK, as net/node_client.c does.
 *
 * Faults (may be flipped at any time, from any thread):
 *   mem_store_set_fail(s, -ETIMEDOUT): every operation that completes from
 *     then on fails with that status, and holders/space return it (the ring
 *     is gone); 0 heals.
 *   mem_store_set_copies(s, 1): puts report one copy.
 *   mem_store_set_delay(s, ms): each operation completes after a random
 *     0..ms milliseconds, so operations finish out of order.
 *   mem_store_set_hold(s, true): nothing completes until released.
 */
#ifndef COOPFS_TESTS_FS_MEM_BCLIENT_H
#define COOPFS_TESTS_FS_MEM_BCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/bclient.h"

#define MEM_BCLIENT_INFLIGHT 256
#define MEM_STORE_COPIES     3

struct mem_store;
struct mem_bclient;

/* An empty store, healthy, copies = MEM_STORE_COPIES, no delay. Returns 0
 * and *out, or -ENOMEM. Free it with mem_store_free after every client. */
int mem_store_new(struct mem_store **out);
void mem_store_free(struct mem_store *s); /* NULL-safe */

void mem_store_set_fail(struct mem_store *s, int status);
void mem_store_set_copies(struct mem_store *s, unsigned copies);
/* seed makes the delays reproducible. */
void mem_store_set_delay(struct mem_store *s, uint32_t max_ms, uint64_t seed);

/* While held, no operation completes (they stay queued, in order);
 * releasing runs them. For forcing one interleaving deterministically. */
void mem_store_set_hold(struct mem_store *s, bool hold);
/* Operations queued and not yet run, over every client of s. */
unsigned mem_store_queued(struct mem_store *s);

struct mem_store_stats {
    uint64_t blocks, roots;        /* held now */
    uint64_t bytes;                /* of the content blocks held */
    uint64_t puts, puts_ok, puts_refused; /* refused: bad block or lease */
    uint64_t gets, gets_ok, gets_missed;
    uint64_t root_puts, root_ok, root_conflicts, root_stale;
    uint64_t failed;               /* operations failed by set_fail */
    uint64_t max_inflight;         /* the most one client had outstanding */
};
void mem_store_get_stats(struct mem_store *s, struct mem_store_stats *out);
/* The version of the root of key held, 0 if none. */
uint64_t mem_store_root_version(struct mem_store *s, const struct id *key);
/* Is (type, key) held? */
bool mem_store_has(struct mem_store *s, enum store_type type, const struct id *key);

/* A client of s with its worker thread. Returns 0 and *out, -ENOMEM or
 * -EAGAIN (no thread). */
int mem_bclient_new(struct mem_store *s, struct mem_bclient **out);
/* Ends every operation still queued with -ECANCELED (its callback runs on
 * the worker), stops the worker and frees. NULL-safe. */
void mem_bclient_free(struct mem_bclient *c);
/* The interface to hand to fs_open. */
struct bclient mem_bclient_iface(struct mem_bclient *c);
/* Waits until no operation of c is outstanding, up to timeout_ms. Returns
 * 0 or -ETIMEDOUT. */
int mem_bclient_drain(struct mem_bclient *c, uint32_t timeout_ms);

#endif
