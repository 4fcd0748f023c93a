/* fs.h — the coopfs file system: a FUSE mount over the block client.
 *
 * A struct fs holds the tree of one signed root (the mount's key) in
 * memory, loaded on demand from content blocks (obj.h), and answers the
 * FUSE low-level operations on it. Writes go to a spool file on the local
 * disk; close() (FUSE flush) stores the file's chunks on the ring and
 * records the new inode in the on-disk journal (DATA/fs/journal) before it
 * returns; a publisher thread turns what changed into a commit, signs the
 * root with version + 1 and stores it with compare-and-swap, at most every
 * cfg.publish_ms, merging three ways (merge.h) when another writer got
 * there first. fsync, syncfs and unmount wait for a root that holds the
 * change. A read-only mount (no private key: --follow) polls the root and
 * shows each new version. Every version stays browsable under
 * /.snapshots/vN (not listed by readdir of the root).
 *
 * Threads: FUSE workers, a small pool that hashes, compresses, signs and
 * puts chunks (write-behind), the publisher, and the block client's own
 * thread (callbacks). One mutex guards the tree; no block I/O is waited
 * for while it is held.
 */
#ifndef COOPFS_FS_FS_H
#define COOPFS_FS_FS_H

#include <stdbool.h>
#include <stdint.h>

#include "blockstore/bclient.h"
#include "common/log.h"
#include "common/sig.h"

#define FS_PUBLISH_MS_DEFAULT  1000u
#define FS_CACHE_DEFAULT       (256ull << 20) /* decoded blocks kept in memory */
#define FS_SYNC_TIMEOUT_MS     30000u         /* fsync/sync give EIO after this */
#define FS_FOLLOW_POLL_MS      1000u
#define FS_SNAPSHOTS_MAX       256u           /* versions listed in .snapshots */
#define FS_SNAPSHOTS_NAME      ".snapshots"
#define FS_RENEW_PERIOD_S      (7u * 86400u)

struct fs_config {
    const char *datadir;  /* DATA/fs holds the journal and the spool */
    bool writable;        /* key is set: sign and publish */
    struct sig_key key;   /* writable */
    struct sig_pub pub;   /* the root's key (key.pub when writable) */
    unsigned min_copies;  /* a chunk stored on fewer nodes is EIO */
    uint64_t cache_bytes;
    uint32_t publish_ms;
    uint32_t lease_days;  /* leases of the blocks stored */
    uint32_t renew_period_s; /* renew every lease of the head this often (0: never) */
    unsigned workers;     /* chunk encoders; 0: number of CPUs */
    unsigned root_confirm; /* "no root" is asked this many more times, 0.7 s
                              apart, before an empty tree is believed (a
                              node that just joined may not know yet) */
    const char *tag;      /* names conflicts: NAME.conflict-TAG */
    const struct logger *log;
};
void fs_config_default(struct fs_config *cfg);

struct fs;

/* Opens the file system: reads the journal, fetches the current root
 * (a missing root is an empty tree), replays what the journal holds past
 * it. Returns 0 and *out, or a negative errno (logged). */
int fs_open(const struct fs_config *cfg, const struct bclient *bc, struct fs **out);

/* Mounts at mountpoint with the FUSE options in opts (comma separated,
 * may be NULL), calls ready(arg) once the kernel mount exists, and serves
 * until unmounted or fs_stop; then publishes what is pending (bounded by
 * FS_SYNC_TIMEOUT_MS) and unmounts. Returns 0, or a negative errno. */
int fs_serve(struct fs *f, const char *mountpoint, const char *opts, bool foreground_signals,
             void (*ready)(void *arg), void *arg);
/* Asks fs_serve to return (async-signal-safe). */
void fs_stop(struct fs *f);

/* Waits until everything changed so far is in a stored root, up to
 * timeout_ms. 0, -EIO, -ETIMEDOUT, -EROFS. */
int fs_sync(struct fs *f, uint32_t timeout_ms);
/* The published version (0 before the first). */
uint64_t fs_version(struct fs *f);
void fs_close(struct fs *f);

#endif
