/* store.c — the durable local block store: open and close, the queue,
 * completions, reads and their checks. The writer thread and its group
 * commit live in store_writer.c, the reader threads in store_reader.c, the
 * layout and the walk at open in store_open.c, the lease log in
 * store_log.c.
 */
#include "blockstore/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/hash.h"

static const char *const type_names[] = {"?", "content", "root", "kv"};

static bool type_ok(enum store_type type)
{
    return type == STORE_CONTENT || type == STORE_ROOT || type == STORE_KV;
}

/* ---- small helpers shared with store_open.c ---- */

int store_file_dir(const struct store *st, enum store_type type)
{
    switch (type) {
    case STORE_CONTENT: return st->blocks_fd;
    case STORE_ROOT: return st->roots_fd;
    case STORE_KV: return st->kv_fd;
    }
    return -1;
}

void store_file_name(enum store_type type, const struct id *key, char name[68])
{
    char hex[ID_HEX_LEN + 1];
    id_to_hex(key, hex);
    if (type == STORE_CONTENT)
        snprintf(name, 68, "%.2s/%s", hex, hex);
    else
        memcpy(name, hex, sizeof(hex));
}

size_t store_max_len(enum store_type type)
{
    switch (type) {
    case STORE_CONTENT: return BLOCK_MAX_STORED;
    case STORE_ROOT: return ROOT_MAX_LEN;
    case STORE_KV: return KV_MAX_LEN;
    }
    return 0;
}

const char *store_check(enum store_type type, const struct id *key, const uint8_t *bytes,
                        size_t len)
{
    struct kv_info kv;

    if (len > store_max_len(type))
        return "larger than its kind allows";
    switch (type) {
    case STORE_CONTENT:
        return block_verify(key, bytes, len) == 0 ? NULL : "content hash does not match its name";
    case STORE_ROOT:
        return root_verify(key, bytes, len, NULL) == 0 ? NULL
                                                       : "root block fails its signature or key";
    case STORE_KV:
        if (kv_parse(bytes, len, &kv) != 0)
            return "kv record fails its checksum";
        return id_eq(&kv.key, key) ? NULL : "kv record's key differs from its name";
    }
    return "unknown type";
}

int store_read_fd(int fd, uint8_t *buf, size_t size)
{
    size_t off = 0;
    while (off < size) {
        ssize_t n = pread(fd, buf + off, size - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -EIO;
        if (n == 0)
            return -EBADMSG;
        off += (size_t)n;
    }
    return 0;
}

int store_fsync(struct store *st, int fd)
{
    if (st->no_sync)
        return 0;
    atomic_fetch_add_explicit(&st->n_fsyncs, 1, memory_order_relaxed);
    return fsync(fd) == 0 ? 0 : -errno;
}

int store_fdatasync(struct store *st, int fd)
{
    if (st->no_sync)
        return 0;
    atomic_fetch_add_explicit(&st->n_fsyncs, 1, memory_order_relaxed);
    return fdatasync(fd) == 0 ? 0 : -errno;
}

int store_syncfs(struct store *st)
{
    if (st->no_sync)
        return 0;
    atomic_fetch_add_explicit(&st->n_fsyncs, 1, memory_order_relaxed);
    return syncfs(st->tmp_fd) == 0 ? 0 : -errno;
}

void store_set_sync_mode(struct store *st, enum store_sync_mode mode)
{
    st->sync_mode = mode;
}

/* syncfs() reports writeback errors from Linux 5.8 on; before, it may
 * return 0 after losing data, so only the per-file form is safe there. */
static enum store_sync_mode sync_mode_default(void)
{
    struct utsname u;
    int major = 0, minor = 0;

    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return STORE_SYNC_FILES;
    return major > 5 || (major == 5 && minor >= 8) ? STORE_SYNC_FS : STORE_SYNC_FILES;
}

/* ---- the API ---- */

static void store_release(struct store *st)
{
    int *fds[] = {&st->dir_fd, &st->blocks_fd, &st->roots_fd, &st->kv_fd,
                  &st->tmp_fd, &st->quar_fd,   &st->log_fd};

    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    store_ops_free(st->q_head);
    store_ops_free(st->rq_head);
    store_ops_free(st->done_head);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->ns_lock);
    pthread_cond_destroy(&st->cond);
    pthread_cond_destroy(&st->rcond);
    free(st->found);
    free(st->lease_keys);
    free(st->leases);
    free(st->dir);
    free(st);
}

/* The writer finishes what is queued; a reader finishes the read it is
 * doing and takes no other. */
static void store_stop_threads(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_signal(&st->cond);
    pthread_cond_broadcast(&st->rcond);
    pthread_mutex_unlock(&st->lock);
    if (st->thread_started)
        pthread_join(st->thread, NULL);
    st->thread_started = false;
    for (unsigned i = 0; i < st->nreaders; i++)
        pthread_join(st->readers[i], NULL);
    st->nreaders = 0;
}

int store_open(const struct store_config *cfg, const struct logger *lg, struct store **out)
{
    struct store *st;
    int err;

    if (!cfg || !cfg->dir || !cfg->dir[0] || !out)
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->dir_fd = st->blocks_fd = st->roots_fd = st->kv_fd = st->tmp_fd = st->quar_fd = -1;
    st->log_fd = -1;
    st->q_tail = &st->q_head;
    st->rq_tail = &st->rq_head;
    st->done_tail = &st->done_head;
    st->wake = cfg->wake;
    st->wake_ctx = cfg->wake_ctx;
    st->no_sync = cfg->no_sync != 0;
    st->sync_mode = sync_mode_default();
    if (lg)
        st->lg = *lg;
    else
        log_init_silent(&st->lg);
    atomic_init(&st->failed, false);
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        return -ENOMEM;
    }
    if (pthread_mutex_init(&st->ns_lock, NULL) != 0) {
        pthread_mutex_destroy(&st->lock);
        free(st);
        return -ENOMEM;
    }
    if (pthread_cond_init(&st->cond, NULL) != 0) {
        pthread_mutex_destroy(&st->ns_lock);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return -ENOMEM;
    }
    if (pthread_cond_init(&st->rcond, NULL) != 0) {
        pthread_cond_destroy(&st->cond);
        pthread_mutex_destroy(&st->ns_lock);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return -ENOMEM;
    }
    st->dir = strdup(cfg->dir);
    if (!st->dir) {
        err = -ENOMEM;
        goto err_release;
    }
    err = store_open_layout(st);
    if (err)
        goto err_release;
    err = store_log_open(st);
    if (err)
        goto err_release;
    err = store_open_walk(st);
    if (err)
        goto err_release;
    err = -pthread_create(&st->thread, NULL, store_writer_main, st);
    if (err)
        goto err_release;
    st->thread_started = true;
    for (unsigned i = 0; i < STORE_READERS; i++) {
        err = -pthread_create(&st->readers[i], NULL, store_reader_main, st);
        if (err)
            goto err_stop;
        st->nreaders++;
    }
    LOG_I(&st->lg, STORE_MOD,
          "%s: %" PRIu64 " files checked, %" PRIu64 " quarantined, %" PRIu64
          " bytes used, %zu live leases",
          st->dir, st->open_stats.checked, st->open_stats.quarantined, atomic_load(&st->used),
          st->nleases);
    *out = st;
    return 0;

err_stop:
    store_stop_threads(st);
err_release:
    store_release(st);
    return err;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    store_stop_threads(st);
    store_release(st);
}

/* The index of the first live lease of key, or nleases. */
static size_t lease_first(const struct store *st, const struct id *key)
{
    size_t lo = 0, hi = st->nleases;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(&st->lease_keys[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int id_qsort_cmp(const void *a, const void *b)
{
    return id_cmp(a, b);
}

size_t store_scan(struct store *st, store_each_fn each, void *ctx)
{
    struct id *have = NULL;
    size_t nhave = 0, reported = 0;

    for (size_t i = 0; i < st->nfound; i++) {
        const struct store_found *f = &st->found[i];
        size_t first = 0, n = 0;

        if (f->type == STORE_CONTENT) {
            first = lease_first(st, &f->key);
            while (first + n < st->nleases && id_eq(&st->lease_keys[first + n], &f->key))
                n++;
        }
        each(ctx, (enum store_type)f->type, &f->key, f->size, n ? &st->leases[first] : NULL, n);
        reported++;
    }
    /* Lease records whose block has no file: a tombstone the server keeps
     * so a replayed old grant cannot bring a reclaimed block back, or a
     * block that was quarantined and is to be fetched again. Reported with
     * size 0 (see bs_load). */
    for (size_t i = 0; i < st->nfound; i++)
        if (st->found[i].type == STORE_CONTENT)
            nhave++;
    if (nhave) {
        have = malloc(nhave * sizeof(*have));
        if (!have)
            return reported; /* the server relearns them from its peers */
        nhave = 0;
        for (size_t i = 0; i < st->nfound; i++)
            if (st->found[i].type == STORE_CONTENT)
                have[nhave++] = st->found[i].key;
        qsort(have, nhave, sizeof(*have), id_qsort_cmp);
    }
    for (size_t first = 0; first < st->nleases;) {
        size_t n = 1;
        while (first + n < st->nleases && id_eq(&st->lease_keys[first + n], &st->lease_keys[first]))
            n++;
        if (!have || !bsearch(&st->lease_keys[first], have, nhave, sizeof(*have), id_qsort_cmp)) {
            each(ctx, STORE_CONTENT, &st->lease_keys[first], 0, &st->leases[first], n);
            reported++;
        }
        first += n;
    }
    free(have);
    return reported;
}

void store_get_open_stats(const struct store *st, struct store_open_stats *out)
{
    *out = st->open_stats;
}

static int enqueue(struct store *st, struct store_op *op)
{
    pthread_mutex_lock(&st->lock);
    *st->q_tail = op;
    st->q_tail = &op->next;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
    return 0;
}

static struct store_op *op_new(enum store_op_kind kind, enum store_type type, const struct id *key,
                               size_t len, uint64_t token)
{
    struct store_op *op = malloc(sizeof(*op) + len);
    if (!op)
        return NULL;
    memset(op, 0, sizeof(*op));
    op->kind = (uint8_t)kind;
    op->type = (uint8_t)type;
    op->fd = -1;
    op->key = *key;
    op->token = token;
    op->len = len;
    return op;
}

int store_write(struct store *st, enum store_type type, const struct id *key, const void *bytes,
                size_t len, uint64_t token)
{
    struct store_op *op;

    if (!type_ok(type) || len > store_max_len(type) || (len > 0 && !bytes))
        return -EINVAL;
    if (atomic_load(&st->failed))
        return -EIO;
    op = op_new(STORE_OP_WRITE, type, key, len, token);
    if (!op)
        return -ENOMEM;
    if (len > 0)
        memcpy(op->data, bytes, len);
    return enqueue(st, op);
}

int store_remove(struct store *st, enum store_type type, const struct id *key, uint64_t token)
{
    struct store_op *op;

    if (!type_ok(type))
        return -EINVAL;
    if (atomic_load(&st->failed))
        return -EIO;
    op = op_new(STORE_OP_REMOVE, type, key, 0, token);
    if (!op)
        return -ENOMEM;
    return enqueue(st, op);
}

int store_lease_append(struct store *st, const struct id *key, const struct lease *l, size_t n,
                       uint64_t token)
{
    struct store_op *op;

    if (n > 0 && !l)
        return -EINVAL;
    if (n > SIZE_MAX / STORE_LOG_REC_LEN - 1)
        return -ENOMEM;
    if (atomic_load(&st->failed))
        return -EIO;
    op = op_new(STORE_OP_LEASE, STORE_CONTENT, key, n * STORE_LOG_REC_LEN, token);
    if (!op)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        store_log_rec_encode(op->data + i * STORE_LOG_REC_LEN, key, &l[i]);
    return enqueue(st, op);
}

size_t store_poll(struct store *st, struct store_completion *out, size_t max)
{
    struct store_op *ops = NULL, **tail = &ops;
    size_t n = 0;

    pthread_mutex_lock(&st->lock);
    while (n < max && st->done_head) {
        struct store_op *op = st->done_head;
        st->done_head = op->next;
        out[n].token = op->token;
        out[n].status = op->status;
        out[n].read = op->kind == STORE_OP_READ;
        out[n].bytes = op->out; /* the caller's now */
        out[n].len = op->out_len;
        op->out = NULL;
        n++;
        *tail = op;
        tail = &op->next;
    }
    if (!st->done_head)
        st->done_tail = &st->done_head;
    *tail = NULL;
    pthread_mutex_unlock(&st->lock);
    while (ops) {
        struct store_op *next = ops->next;
        free(ops);
        ops = next;
    }
    return n;
}

/* Moves a file that failed its check on read aside, unless the writer has
 * replaced it since we opened it (then the caller reads again). Returns 0
 * when moved, -EAGAIN when replaced, or -errno. */
static int read_quarantine(struct store *st, int dirfd, const char *name, enum store_type type,
                           const struct stat *was)
{
    struct stat now;
    int err;

    pthread_mutex_lock(&st->ns_lock);
    if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) != 0) {
        err = errno == ENOENT ? -EAGAIN : -errno;
    } else if (now.st_dev != was->st_dev || now.st_ino != was->st_ino) {
        err = -EAGAIN;
    } else {
        err = store_quarantine_move(st, dirfd, name, type_names[type]);
        if (err == 0 && S_ISREG(now.st_mode))
            atomic_fetch_sub(&st->used, (uint64_t)now.st_size);
    }
    pthread_mutex_unlock(&st->ns_lock);
    return err;
}

int store_read(struct store *st, enum store_type type, const struct id *key, uint8_t **bytes,
               size_t *len)
{
    char name[68];
    int dirfd;

    if (!type_ok(type))
        return -EINVAL;
    dirfd = store_file_dir(st, type);
    store_file_name(type, key, name);
    atomic_fetch_add(&st->n_reads, 1);
    for (int attempt = 0; attempt < 4; attempt++) {
        const char *why = NULL;
        struct stat sb;
        uint8_t *buf = NULL;
        int fd, err;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return errno == ENOENT ? -ENOENT : errno == ELOOP ? -EBADMSG : -EIO;
        if (fstat(fd, &sb) != 0) {
            close(fd);
            return -EIO;
        }
        if (!S_ISREG(sb.st_mode)) {
            why = "not a regular file";
        } else if ((uint64_t)sb.st_size > store_max_len(type)) {
            why = "larger than its kind allows";
        } else {
            buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
            if (!buf) {
                close(fd);
                return -ENOMEM;
            }
            err = store_read_fd(fd, buf, (size_t)sb.st_size);
            if (err == -EIO) {
                LOG_W(&st->lg, STORE_MOD, "%s: read error on %s/%s", st->dir, type_names[type],
                      name);
                free(buf);
                close(fd);
                return -EIO;
            }
            why = err ? "shorter than its size" : store_check(type, key, buf, (size_t)sb.st_size);
        }
        close(fd);
        if (!why) {
            *bytes = buf;
            *len = (size_t)sb.st_size;
            return 0;
        }
        free(buf);
        err = read_quarantine(st, dirfd, name, type, &sb);
        if (err == -EAGAIN)
            continue; /* replaced meanwhile: read the new file */
        atomic_fetch_add(&st->n_read_bad, 1);
        if (err)
            LOG_E(&st->lg, STORE_MOD,
                  "%s: %s %s failed its check (%s) and cannot be moved to "
                  "quarantine/: %s",
                  st->dir, type_names[type], name, why, strerror(-err));
        else
            LOG_W(&st->lg, STORE_MOD,
                  "%s: %s %s failed its check on read (%s); moved to "
                  "quarantine/",
                  st->dir, type_names[type], name, why);
        return -EBADMSG;
    }
    return -EIO; /* replaced four times while we read: give up */
}

uint64_t store_used(const struct store *st)
{
    return atomic_load(&((struct store *)st)->used);
}

bool store_failed(const struct store *st)
{
    return atomic_load(&((struct store *)st)->failed);
}

void store_get_stats(const struct store *st, struct store_stats *out)
{
    struct store *s = (struct store *)st; /* atomics are read, never changed */

    out->writes = atomic_load(&s->n_writes);
    out->removes = atomic_load(&s->n_removes);
    out->lease_appends = atomic_load(&s->n_leases);
    out->batches = atomic_load(&s->n_batches);
    out->fsyncs = atomic_load(&s->n_fsyncs);
    out->reads = atomic_load(&s->n_reads);
    out->read_bad = atomic_load(&s->n_read_bad);
    out->bytes_written = atomic_load(&s->n_bytes);
}
