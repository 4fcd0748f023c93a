/* store.h — the durable local store: the disk space a node donates.
 *
 * Layout under DIR (the node's data directory + "/store"):
 *   blocks/XY/<64 hex>   content blocks (XY = first two hex digits)
 *   roots/<64 hex>       root blocks (replaced as versions rise)
 *   kv/<64 hex>          kv records (replaced as stamps rise)
 *   leases.log           append-only lease records (see below)
 *   quarantine/          files that failed a check, kept for the operator
 *   tmp/                 files being written
 * docs/formats.md describes the files byte by byte.
 *
 * Durability. A write is complete (its completion reports 0) only after
 * the file is written, fsynced, renamed into place and its directory
 * fsynced. Writes are done by a writer thread that takes every write queued
 * so far as one batch: it writes all their temporary files, makes them
 * durable (an fdatasync per file, or one syncfs() for a larger batch),
 * renames, then makes the names durable once per batch (an fsync of each
 * touched directory, or one syncfs()) (group commit), so that concurrent
 * puts share the cost of the syncs. A crash at any instant leaves each
 * block either absent or complete: tmp/ is emptied at open, and every file
 * is checked at open (content: SHA-256 equals its name; root: signature and
 * key; kv: checksum) and on every read; a file that fails is moved to
 * quarantine/ and reported, never served.
 *
 * Lease records are appended to leases.log, each as
 *   key [32] | lease [112] | first 8 bytes of SHA-256(key | lease)
 * and the log is fsynced before the write completes. At open the log is
 * replayed (a torn or damaged tail is cut off), keeping per (key, owner)
 * the record that lease_newer() prefers; when the log is more than twice the
 * live records it is rewritten durably.
 *
 * Space: store_used() is the exact sum of the sizes of the block, root
 * and kv files (the bytes the node accounts against --capacity). The store
 * does not refuse over capacity itself: the block server admits or refuses
 * puts from its index; the store reports -ENOSPC only when the disk itself
 * is full.
 *
 * Threads. Every function is called from one thread (the node's loop).
 * Writes are done by the writer thread; reads queued with
 * store_read_async() by a pool of STORE_READERS reader threads, each doing
 * what store_read() does (read, check, quarantine under the lock that
 * orders names against the writer's renames), so that the loop never
 * waits for the disk or hashes a block. Both post their completions to
 * one queue and call `wake` (from their own thread); the loop then calls
 * store_poll() until it returns 0. An fsync or rename failure is fatal
 * for the store (PostgreSQL's lesson): that write and every later one fail
 * with -EIO, and store_failed() turns true; reads go on.
 */
#ifndef COOPFS_BLOCKSTORE_STORE_H
#define COOPFS_BLOCKSTORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/block.h"
#include "common/id.h"
#include "common/log.h"

enum store_type { STORE_CONTENT = 1, STORE_ROOT = 2, STORE_KV = 3 };

#define STORE_READERS 2 /* reader threads of store_read_async */

struct store;

struct store_config {
    const char *dir;
    /* Called from the writer or a reader thread when store_poll() has
     * something: after every batch of writes, and when a read completes
     * into an empty queue (so the loop must poll until store_poll gives 0). */
    void (*wake)(void *ctx);
    void *wake_ctx;
    /* For tests: 0 = real fsyncs. 1 skips every fsync (never in a node). */
    int no_sync;
};

/* Opens or creates the store, empties tmp/, replays leases.log, checks every
 * file (quarantining bad ones, logged through lg) and starts the writer
 * thread. Returns 0 and *out, or -errno (the directory is unusable). */
int store_open(const struct store_config *cfg, const struct logger *lg, struct store **out);
/* Finishes every queued write, stops the threads and frees. Reads still
 * queued are dropped (no completion comes for them); the bytes of read
 * completions not yet polled are freed. NULL-safe. */
void store_close(struct store *st);

/* What open found, for the block server's index: called once per file
 * that passed its checks, with its lease records (content blocks only; n
 * may be 0), then once per content key that has lease records but no file,
 * with size 0 (a tombstone kept after a reclaim, or a block quarantined
 * that its peers will restore). Reports the state at open, not later writes. The leases array
 * is valid during the call only. Returns the number of entries. */
typedef void (*store_each_fn)(void *ctx, enum store_type type, const struct id *key,
                              uint32_t size, const struct lease *leases, size_t nleases);
size_t store_scan(struct store *st, store_each_fn each, void *ctx);
/* Counters from open: files checked, quarantined, tmp files removed, lease
 * log bytes cut. */
struct store_open_stats {
    uint64_t checked, quarantined, tmp_removed, lease_tail_cut;
};
void store_get_open_stats(const struct store *st, struct store_open_stats *out);

/* Queues a durable write of bytes (copied) as the file of (type, key),
 * replacing an existing one atomically. The completion carries token.
 * Returns 0, -EINVAL (unknown type, or len over the type's largest record),
 * -ENOMEM, or -EIO once the store has failed. */
int store_write(struct store *st, enum store_type type, const struct id *key,
                const void *bytes, size_t len, uint64_t token);
/* Queues a durable removal of (type, key) and of its lease records (a
 * removal of an absent file completes with 0). Returns as store_write. A
 * content block's removal completes with -ENOSPC when the disk had no room
 * left for the record that drops its leases; the file may be gone already,
 * and removing it again finishes the job. */
int store_remove(struct store *st, enum store_type type, const struct id *key, uint64_t token);
/* Queues a durable append of lease records for key. */
int store_lease_append(struct store *st, const struct id *key, const struct lease *l, size_t n,
                       uint64_t token);

struct store_completion {
    uint64_t token;
    /* write, remove, lease append: 0, -ENOSPC (disk full), -EIO (store
     * failed); read: as store_read returns, or -ENOMEM. */
    int status;
    bool read; /* the completion of store_read_async */
    /* A read with status 0: the record (malloc'd; the caller owns it from
     * store_poll on and frees it) and its length. Else NULL and 0. */
    uint8_t *bytes;
    size_t len;
};
/* Takes up to max completions: writes in the order they were queued,
 * reads as they finish, between them. Returns how many. */
size_t store_poll(struct store *st, struct store_completion *out, size_t max);

/* Reads the file of (type, key) and checks it as open does. Returns 0 with
 * *bytes (malloc'd, the caller frees) and *len; -ENOENT; -EBADMSG if it
 * failed its check (it has been moved to quarantine/); -EIO. Reads of a
 * file whose write is still queued see the previous state. */
int store_read(struct store *st, enum store_type type, const struct id *key, uint8_t **bytes,
               size_t *len);
/* Queues store_read of (type, key) for a reader thread; its completion
 * carries token, read = true, the status store_read returned and, with 0,
 * the bytes. Reads are not ordered with each other nor with writes: a
 * read sees a write once that write's completion has been polled, and may
 * see it earlier. Returns 0, -EINVAL (unknown type) or -ENOMEM (then no
 * completion comes). */
int store_read_async(struct store *st, enum store_type type, const struct id *key, uint64_t token);

uint64_t store_used(const struct store *st); /* bytes, exact */
bool store_failed(const struct store *st);

struct store_stats {
    uint64_t writes, removes, lease_appends;
    uint64_t batches, fsyncs;     /* group commit: writes per batch = writes / batches */
    uint64_t reads, read_bad;     /* read_bad: failed the check on read */
    uint64_t bytes_written;
};
void store_get_stats(const struct store *st, struct store_stats *out);

#endif
