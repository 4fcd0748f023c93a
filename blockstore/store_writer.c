/* store_writer.c — the writer thread of the store and its group commit.
 *
 * One batch is everything queued when the writer thread wakes. It goes to
 * disk in phases, so that the disk sees one burst and the batch shares the
 * flushes:
 *   1. every write's temporary file is created in tmp/ and written, and its
 *      writeback started at once (sync_file_range(SYNC_FILE_RANGE_WRITE));
 *   2. barrier: the temporaries' data is made durable;
 *   3. in queue order, temporaries are renamed into place and removed files
 *      unlinked (under ns_lock, so a read's quarantine never races them);
 *   4. the lease records of the batch (and the tombstones of removed
 *      content blocks) go to leases.log in one write;
 *   5. barrier: the names of 3 and the records of 4 are made durable;
 *   6. the completions are posted, in queue order, and wake() is called.
 * Phase 1 runs in chunks of STORE_OPEN_FILES temporaries so a large batch
 * never holds more file descriptors than that.
 *
 * The two barriers come in two forms:
 *   per file  fdatasync() of each temporary in 2; in 5, fdatasync of
 *             leases.log and fsync() of each touched directory;
 *   syncfs    one syncfs() each: two device flushes per batch, however
 *             many files and directories it touched.
 * The 256 fan-out directories of blocks/ mean a batch of n content blocks
 * touches nearly n directories, and on the development machine (ext4 on a
 * virtio disk) every fsync costs a device flush of 1-4 ms, so the per-file
 * form costs about 2n flushes a batch. Measured with 400 durable 256 KiB
 * writes (a loaded, noisy machine; ranges over three runs):
 *                      1 in flight      8 in flight      32 in flight
 *   per file           29-291 MB/s      31-442 MB/s      30-287 MB/s
 *   syncfs             35-332 MB/s     160-821 MB/s     176-982 MB/s
 * syncfs() wins clearly (2-8x) once writes share batches; for a batch of
 * one write the two cost the same flushes on paper, but syncfs() also
 * pays for whatever else is dirty on the file system, and with other
 * programs writing it measured up to 4x slower there (62 against 290
 * MB/s). So a batch uses syncfs() when the
 * per-file form would need SYNCFS_FROM syncs or more, else the per-file
 * form. Before Linux 5.8 syncfs() did not report writeback errors at all,
 * so on an older kernel the store always uses the per-file form
 * (st->sync_mode, decided by store_open). With syncfs(), a writeback error
 * anywhere on the file system since the store opened fails the store:
 * conservative, never silent. A node's data directory is best on a file
 * system of its own.
 *
 * Errors. ENOSPC (or EDQUOT) while making a temporary file fails that write
 * alone with -ENOSPC; the temporary is removed and the store goes on. Any
 * other write, fsync or rename error marks the store failed: the batch and
 * every later operation complete with -EIO (an fsync error is never retried
 * as if nothing happened: the kernel may have dropped the dirty pages).
 * Running out of file descriptors or memory fails the one write with -EIO
 * but is not a disk fault, so the store goes on.
 */
#include "blockstore/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORE_OPEN_FILES 64 /* temporaries open at once in a batch */
#define SYNCFS_FROM      4  /* per-file syncs a batch needs before syncfs() pays */

static bool is_nospace(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

/* The directories a batch touched: 256 block fan-out directories, roots/,
 * kv/. */
#define DIR_ROOTS 256
#define DIR_KV    257
#define DIR_COUNT 258

struct batch {
    struct store *st;
    bool touched[DIR_COUNT];
    bool logged;           /* records went to leases.log */
    bool syncfs;           /* this batch's barriers are syncfs() */
    const char *fail_what; /* the first fatal error, for the log */
    int fail_err;
};

static void batch_fail(struct batch *b, const char *what, int err)
{
    if (!b->fail_what) {
        b->fail_what = what;
        b->fail_err = err;
    }
}

static void tmp_name(uint64_t seq, char out[20])
{
    snprintf(out, 20, "%016" PRIx64, seq);
}

static void tmp_discard(struct store *st, struct store_op *op)
{
    char name[20];
    if (op->fd >= 0) {
        close(op->fd);
        op->fd = -1;
    }
    if (op->tmp) {
        tmp_name(op->tmp_seq, name);
        unlinkat(st->tmp_fd, name, 0);
        op->tmp = false;
    }
}

int store_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Phase 1 for one write: the temporary file, written, writeback started.
 * Sets op->status to -ENOSPC/-EIO for a failure of this write alone;
 * returns a negative errno for a fatal one. */
static int tmp_write(struct batch *b, struct store_op *op)
{
    struct store *st = b->st;
    char name[20];
    int err;

    op->tmp_seq = st->tmp_seq++;
    tmp_name(op->tmp_seq, name);
    op->fd = openat(st->tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (op->fd < 0) {
        err = errno;
        if (is_nospace(err)) {
            op->status = -ENOSPC;
            return 0;
        }
        if (err == EMFILE || err == ENFILE || err == ENOMEM) {
            LOG_W(&st->lg, STORE_MOD, "cannot create a temporary file: %s", strerror(err));
            op->status = -EIO;
            return 0;
        }
        batch_fail(b, "create a temporary file", err);
        return -err;
    }
    op->tmp = true;
    err = store_write_all(op->fd, op->data, op->len);
    if (err) {
        if (is_nospace(-err)) {
            op->status = -ENOSPC;
            tmp_discard(st, op);
            return 0;
        }
        batch_fail(b, "write a temporary file", -err);
        return err;
    }
    if (!st->no_sync && op->len > 0)
        sync_file_range(op->fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint: errors show later */
    return 0;
}

static bool any_write(const struct store_op *ops)
{
    for (; ops; ops = ops->next) {
        if (ops->kind == STORE_OP_WRITE && ops->status == 0)
            return true;
    }
    return false;
}

/* Phases 1 and 2: every write's temporary file, in chunks. Returns 0 or a
 * fatal negative errno. */
static int batch_tmp_files(struct batch *b, struct store_op *ops)
{
    struct store *st = b->st;
    struct store_op *chunk = ops;

    while (chunk) {
        struct store_op *op, *end;
        int n = 0, err = 0;

        for (op = chunk; op && n < STORE_OPEN_FILES; op = op->next) {
            if (op->kind != STORE_OP_WRITE || op->status != 0)
                continue;
            n++;
            err = tmp_write(b, op);
            if (err) {
                op = op->next;
                break;
            }
        }
        end = op;
        for (op = chunk; op != end; op = op->next) {
            if (op->kind != STORE_OP_WRITE || op->fd < 0)
                continue;
            if (!err && op->status == 0 && !b->syncfs) {
                int e = store_fdatasync(st, op->fd);
                if (e && is_nospace(-e)) {
                    /* Only a temporary is lost; nothing acknowledged depends on it. */
                    op->status = -ENOSPC;
                    tmp_discard(st, op);
                    continue;
                }
                if (e) {
                    batch_fail(b, "fdatasync a temporary file", -e);
                    err = e;
                }
            }
            close(op->fd);
            op->fd = -1;
        }
        if (err)
            return err;
        chunk = end;
    }
    if (b->syncfs && any_write(ops)) {
        int err = store_syncfs(st);
        if (err) {
            batch_fail(b, "syncfs after writing the temporary files", -err);
            return err;
        }
    }
    return 0;
}

static int dir_index(enum store_type type, const struct id *key)
{
    return type == STORE_CONTENT ? key->b[0] : type == STORE_ROOT ? DIR_ROOTS : DIR_KV;
}

/* Size of dirfd/name, 0 if absent. Returns 0 or a negative errno. */
static int file_size(int dirfd, const char *name, uint64_t *size)
{
    struct stat sb;
    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        *size = S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
        return 0;
    }
    if (errno == ENOENT) {
        *size = 0;
        return 0;
    }
    return -errno;
}

/* Phase 3: renames and unlinks in queue order. Returns 0 or a fatal
 * negative errno. */
static int batch_names(struct batch *b, struct store_op *ops)
{
    struct store *st = b->st;
    int err = 0;

    pthread_mutex_lock(&st->ns_lock);
    for (struct store_op *op = ops; op && !err; op = op->next) {
        char name[68], tname[20];
        uint64_t old;
        int dirfd;

        if (op->status != 0 || op->kind == STORE_OP_LEASE)
            continue;
        dirfd = store_file_dir(st, (enum store_type)op->type);
        store_file_name((enum store_type)op->type, &op->key, name);
        err = file_size(dirfd, name, &old);
        if (err) {
            batch_fail(b, "stat a block file", -err);
            break;
        }
        if (op->kind == STORE_OP_WRITE) {
            tmp_name(op->tmp_seq, tname);
            if (renameat(st->tmp_fd, tname, dirfd, name) != 0) {
                err = -errno;
                if (is_nospace(-err)) {
                    op->status = -ENOSPC;
                    tmp_discard(st, op);
                    err = 0;
                    continue;
                }
                batch_fail(b, "rename a block file into place", -err);
                break;
            }
            op->tmp = false;
            atomic_fetch_add(&st->used, (uint64_t)op->len);
            atomic_fetch_sub(&st->used, old);
        } else {
            if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
                err = -errno;
                batch_fail(b, "unlink a block file", -err);
                break;
            }
            atomic_fetch_sub(&st->used, old);
        }
        b->touched[dir_index((enum store_type)op->type, &op->key)] = true;
    }
    pthread_mutex_unlock(&st->ns_lock);
    return err;
}

/* The log records of op (its lease records, or the tombstone of a removed
 * content block): sets *p, or returns 0 when op has none. */
static size_t op_log_bytes(const struct store_op *op, const uint8_t **p,
                           uint8_t tomb[STORE_LOG_REC_LEN])
{
    if (op->status != 0)
        return 0;
    if (op->kind == STORE_OP_LEASE) {
        *p = op->data;
        return op->len;
    }
    if (op->kind == STORE_OP_REMOVE && op->type == STORE_CONTENT) {
        store_log_rec_encode(tomb, &op->key, NULL);
        *p = tomb;
        return STORE_LOG_REC_LEN;
    }
    return 0;
}

/* Phase 4: one append of every lease record of the batch (and, per file,
 * one fdatasync). Returns 0 or a fatal negative errno; on ENOSPC the log is
 * cut back and the batch's lease appends and content removes complete with
 * -ENOSPC. */
static int batch_log(struct batch *b, struct store_op *ops)
{
    struct store *st = b->st;
    uint8_t tomb[STORE_LOG_REC_LEN];
    const uint8_t *p;
    size_t total = 0, off = 0;
    uint8_t *buf;
    int err = 0;

    for (struct store_op *op = ops; op; op = op->next)
        total += op_log_bytes(op, &p, tomb);
    if (total == 0)
        return 0;
    buf = malloc(total);
    if (buf) {
        for (struct store_op *op = ops; op; op = op->next) {
            size_t n = op_log_bytes(op, &p, tomb);
            memcpy(buf + off, p, n);
            off += n;
        }
        err = store_write_all(st->log_fd, buf, total);
        free(buf);
    } else {
        /* No memory for one write: the same bytes in several. */
        for (struct store_op *op = ops; op && !err; op = op->next) {
            size_t n = op_log_bytes(op, &p, tomb);
            err = n ? store_write_all(st->log_fd, p, n) : 0;
        }
    }
    if (err && is_nospace(-err)) {
        /* A partial record would shift every later one: cut it off. */
        if (ftruncate(st->log_fd, (off_t)st->log_size) != 0) {
            batch_fail(b, "cut back leases.log after ENOSPC", errno);
            return -EIO;
        }
        for (struct store_op *op = ops; op; op = op->next) {
            if (op->status == 0 && (op->kind == STORE_OP_LEASE ||
                                    (op->kind == STORE_OP_REMOVE && op->type == STORE_CONTENT)))
                op->status = -ENOSPC;
        }
        return 0;
    }
    if (err) {
        batch_fail(b, "append to leases.log", -err);
        return err;
    }
    st->log_size += total;
    b->logged = true;
    if (b->syncfs)
        return 0; /* phase 5's syncfs covers it */
    err = store_fdatasync(st, st->log_fd);
    if (err)
        batch_fail(b, "fdatasync leases.log", -err);
    return err;
}

/* Phase 5: the second barrier. */
static int batch_dirs(struct batch *b)
{
    struct store *st = b->st;

    if (st->no_sync)
        return 0;
    if (b->syncfs) {
        bool any = b->logged;
        for (int i = 0; i < DIR_COUNT && !any; i++)
            any = b->touched[i];
        if (!any)
            return 0;
        int err = store_syncfs(st);
        if (err)
            batch_fail(b, "syncfs after the renames", -err);
        return err;
    }
    for (int i = 0; i < DIR_COUNT; i++) {
        char sub[3];
        int fd, err;

        if (!b->touched[i])
            continue;
        if (i == DIR_ROOTS) {
            err = store_fsync(st, st->roots_fd);
        } else if (i == DIR_KV) {
            err = store_fsync(st, st->kv_fd);
        } else {
            snprintf(sub, sizeof(sub), "%02x", (unsigned)i);
            fd = openat(st->blocks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) {
                batch_fail(b, "open a block directory", errno);
                return -EIO;
            }
            err = store_fsync(st, fd);
            close(fd);
        }
        if (err) {
            batch_fail(b, "fsync a directory", -err);
            return err;
        }
    }
    return 0;
}

/* How many fsyncs the per-file form would make for ops: one per written
 * file, one per directory touched, one for the log. */
static unsigned per_file_syncs(const struct store_op *ops)
{
    bool dirs[DIR_COUNT] = {false}, log = false;
    unsigned n = 0;

    for (; ops; ops = ops->next) {
        if (ops->kind == STORE_OP_LEASE ||
            (ops->kind == STORE_OP_REMOVE && ops->type == STORE_CONTENT))
            log = true;
        if (ops->kind == STORE_OP_LEASE)
            continue;
        if (ops->kind == STORE_OP_WRITE)
            n++;
        int d = dir_index((enum store_type)ops->type, &ops->key);
        n += !dirs[d];
        dirs[d] = true;
    }
    return n + log;
}

static void batch_run(struct store *st, struct store_op *ops)
{
    struct batch b;
    uint64_t writes = 0, removes = 0, leases = 0, bytes = 0;
    int err = 0;

    memset(&b, 0, sizeof(b));
    b.st = st;
    b.syncfs = st->sync_mode == STORE_SYNC_FS && per_file_syncs(ops) >= SYNCFS_FROM;
    if (atomic_load(&st->failed)) {
        err = -EIO;
    } else {
        err = batch_tmp_files(&b, ops);
        if (!err)
            err = batch_names(&b, ops);
        if (!err)
            err = batch_log(&b, ops);
        if (!err)
            err = batch_dirs(&b);
        if (err) {
            atomic_store(&st->failed, true);
            LOG_E(&st->lg, STORE_MOD,
                  "%s: cannot %s: %s; the store has failed, every write now "
                  "fails with EIO",
                  st->dir, b.fail_what ? b.fail_what : "write",
                  strerror(b.fail_err ? b.fail_err : -err));
        }
    }
    for (struct store_op *op = ops; op; op = op->next) {
        if (err) {
            tmp_discard(st, op);
            if (op->status == 0)
                op->status = -EIO;
            continue;
        }
        if (op->status != 0)
            continue;
        switch ((enum store_op_kind)op->kind) {
        case STORE_OP_WRITE:
            writes++;
            bytes += op->len;
            break;
        case STORE_OP_REMOVE: removes++; break;
        case STORE_OP_LEASE: leases++; break;
        case STORE_OP_READ: break; /* never queued to the writer */
        }
    }
    atomic_fetch_add(&st->n_batches, 1);
    atomic_fetch_add(&st->n_writes, writes);
    atomic_fetch_add(&st->n_removes, removes);
    atomic_fetch_add(&st->n_leases, leases);
    atomic_fetch_add(&st->n_bytes, bytes);
}

void *store_writer_main(void *arg)
{
    struct store *st = arg;

    for (;;) {
        struct store_op *ops, *last;

        pthread_mutex_lock(&st->lock);
        while (!st->q_head && !st->stopping)
            pthread_cond_wait(&st->cond, &st->lock);
        if (!st->q_head) {
            pthread_mutex_unlock(&st->lock);
            break;
        }
        ops = st->q_head;
        st->q_head = NULL;
        st->q_tail = &st->q_head;
        pthread_mutex_unlock(&st->lock);

        batch_run(st, ops);

        for (last = ops; last->next; last = last->next)
            ;
        pthread_mutex_lock(&st->lock);
        *st->done_tail = ops;
        st->done_tail = &last->next;
        pthread_mutex_unlock(&st->lock);
        if (st->wake)
            st->wake(st->wake_ctx);

        /* After the completions, so that they do not wait for it. */
        if (!atomic_load(&st->failed)) {
            int err = store_log_compact_maybe(st);
            if (err) {
                atomic_store(&st->failed, true);
                LOG_E(&st->lg, STORE_MOD,
                      "%s: cannot compact %s: %s; the store has failed, "
                      "every write now fails with EIO",
                      st->dir, STORE_LOG_NAME, strerror(-err));
            }
        }
    }
    return NULL;
}
