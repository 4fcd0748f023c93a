/* file.c — file content: the spool, reads, writes, truncate, and the
 * durable flush.
 *
 * A file's bytes are a table of chunks of FS_CHUNK bytes. A chunk is
 * either stored (a key; the all-zero key is a hole) or in the spool, an
 * unlinked file under DATA/fs/spool that holds the written chunks at their
 * offsets (so a 10 GiB file never sits in memory). A write first copies a
 * stored chunk it only partly covers into the spool. A chunk that a write
 * completes goes at once to the worker pool, which hashes, compresses,
 * signs its lease and puts it (write-behind); flush waits for every chunk
 * to be stored, stores the manifest, and records the new inode in the
 * journal. Small files (<= FS_INLINE_MAX) are kept inline instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_int.h"

#define READ_AHEAD 16 /* chunks fetched ahead of a sequential reader (4 MiB) */

struct fs_job {
    struct fs_job *next;
    struct fnode *n;
    size_t i;
    uint32_t gen;
};

static size_t nchunks(uint64_t size)
{
    return (size_t)((size + FS_CHUNK - 1) / FS_CHUNK);
}

/* Makes the chunk table hold at least want entries (new ones are holes). */
static int chunks_reserve(struct fnode *n, size_t want)
{
    if (want <= n->nch)
        return 0;
    struct chunk *c = realloc(n->ch, want * sizeof(*c));
    if (!c)
        return -ENOMEM;
    memset(c + n->nch, 0, (want - n->nch) * sizeof(*c));
    n->ch = c;
    n->nch = want;
    return 0;
}

int file_load_chunks(struct fs *f, struct fnode *n)
{
    while (!n->chunks_loaded) {
        if (n->a.ref != FS_REF_KEY) {
            n->chunks_loaded = true; /* inline or empty: no chunk table until a write */
            return 0;
        }
        struct id key = n->a.key;
        uint64_t want = n->a.size;
        struct id *keys = NULL;
        size_t nk = 0;
        uint64_t size = 0;
        pthread_mutex_unlock(&f->mu);
        int rc = fs_get_chunks(f, &key, &keys, &nk, &size);
        pthread_mutex_lock(&f->mu);
        if (rc == 0 && size != want)
            rc = -EIO;
        if (rc < 0) {
            free(keys);
            return rc;
        }
        if (n->chunks_loaded || n->a.ref != FS_REF_KEY || !id_eq(&n->a.key, &key)) {
            free(keys);
            continue;
        }
        struct chunk *c = calloc(nk ? nk : 1, sizeof(*c));
        if (!c) {
            free(keys);
            return -ENOMEM;
        }
        for (size_t i = 0; i < nk; i++)
            c[i].key = keys[i];
        free(keys);
        free(n->ch);
        n->ch = c;
        n->nch = nk;
        n->chunks_loaded = true;
    }
    return 0;
}

static int spool_open(struct fs *f, struct fnode *n)
{
    if (n->spool >= 0)
        return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/spool", f->dir);
    int fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(path, sizeof(path), "%s/spool/s.XXXXXX", f->dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
            return -errno;
        unlink(path);
    }
    n->spool = fd;
    if (n->a.ref == FS_REF_INLINE && n->a.size) {
        if (pwrite(fd, n->a.inline_data, n->a.size, 0) != (ssize_t)n->a.size) {
            close(fd);
            n->spool = -1;
            return -EIO;
        }
        if (chunks_reserve(n, 1) < 0)
            return -ENOMEM;
        n->ch[0].st = CH_DIRTY;
    }
    return 0;
}

void file_drop_spool(struct fs *f, struct fnode *n)
{
    (void)f;
    if (n->spool >= 0) {
        close(n->spool);
        n->spool = -1;
    }
}

int file_flush_held(struct fs *f, struct fnode *n)
{
    n->nopen++;
    pthread_mutex_unlock(&f->mu);
    int rc = file_flush(f, n);
    pthread_mutex_lock(&f->mu);
    n->nopen--;
    return rc;
}

void file_release(struct fs *f, struct fnode *n)
{
    if (n->nopen)
        n->nopen--;
    if (n->nopen == 0 && !n->busy && !n->content_dirty) {
        bool spooled = false;
        for (size_t i = 0; i < n->nch; i++)
            if (n->ch[i].st != CH_KEY)
                spooled = true;
        if (!spooled)
            file_drop_spool(f, n);
    }
    fnode_maybe_free(f, n);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Brings chunk i into the spool if it is stored and not a hole (mu held;
 * drops it around the fetch). On return chunk i is in the spool or a
 * hole, or an error. */
static int chunk_fill(struct fs *f, struct fnode *n, size_t i)
{
    for (;;) {
        if (i >= n->nch || n->ch[i].st != CH_KEY || fs_key_is_hole(&n->ch[i].key))
            return 0;
        struct id key = n->ch[i].key;
        uint8_t *p = NULL;
        size_t len = 0;
        pthread_mutex_unlock(&f->mu);
        int rc = fs_cache_get(f, &key, &p, &len);
        pthread_mutex_lock(&f->mu);
        if (rc < 0)
            return rc;
        if (i < n->nch && n->ch[i].st == CH_KEY && id_eq(&n->ch[i].key, &key)) {
            uint64_t off = (uint64_t)i * FS_CHUNK;
            size_t want = len;
            if (off + want > n->size)
                want = n->size > off ? (size_t)(n->size - off) : 0;
            if (want && pwrite(n->spool, p, want, (off_t)off) != (ssize_t)want) {
                free(p);
                return -EIO;
            }
            n->ch[i].st = CH_DIRTY;
            n->ch[i].gen = ++n->gen_seq;
        }
        free(p);
    }
}

static bool job_enqueue(struct fs *f, struct fnode *n, size_t i)
{
    struct fs_job *j = malloc(sizeof(*j));
    if (!j)
        return false; /* it stays dirty: flush stores it or says ENOMEM */
    j->next = NULL;
    j->n = n;
    j->i = i;
    j->gen = n->ch[i].gen;
    n->ch[i].st = CH_BUSY;
    n->busy++;
    if (f->jobs_tail)
        f->jobs_tail->next = j;
    else
        f->jobs_head = j;
    f->jobs_tail = j;
    pthread_cond_signal(&f->jobs_cv);
    return true;
}

struct put_ctx {
    struct fs *f;
    struct fs_job *j;
    struct id key;
};

static void job_done(struct fs *f, struct fs_job *j, const struct id *key, int status)
{
    struct fnode *n = j->n;
    pthread_mutex_lock(&f->mu);
    if (j->i < n->nch && n->ch[j->i].st == CH_BUSY && n->ch[j->i].gen == j->gen) {
        if (status == 0 && key) {
            n->ch[j->i].st = CH_KEY;
            n->ch[j->i].key = *key;
        } else if (status) {
            n->ch[j->i].st = CH_DIRTY;
        }
    }
    if (status && !n->werr)
        n->werr = status;
    n->busy--;
    pthread_cond_broadcast(&f->cv);
    fnode_maybe_free(f, n);
    pthread_mutex_unlock(&f->mu);
    free(j);
}

static void on_chunk_put(void *arg, const struct bs_result *r)
{
    struct put_ctx *pc = arg;
    int st = r->status;
    if (st == 0 && r->copies < pc->f->cfg.min_copies)
        st = -EIO;
    job_done(pc->f, pc->j, &pc->key, fs_errno(st));
    free(pc);
}

static void *worker(void *arg)
{
    struct fs *f = arg;
    uint8_t *data = malloc(FS_CHUNK), *enc = malloc(BLOCK_MAX_STORED);
    for (;;) {
        pthread_mutex_lock(&f->mu);
        while (!f->jobs_head && !f->stopping)
            pthread_cond_wait(&f->jobs_cv, &f->mu);
        struct fs_job *j = f->jobs_head;
        if (!j) {
            pthread_mutex_unlock(&f->mu);
            break;
        }
        f->jobs_head = j->next;
        if (!f->jobs_head)
            f->jobs_tail = NULL;
        struct fnode *n = j->n;
        ssize_t len = -1;
        bool current = j->i < n->nch && n->ch[j->i].st == CH_BUSY &&
                       n->ch[j->i].gen == j->gen && n->spool >= 0;
        if (data && enc && current) {
            uint64_t off = (uint64_t)j->i * FS_CHUNK;
            size_t want = n->size > off ? (size_t)(n->size - off) : 0;
            if (want > FS_CHUNK)
                want = FS_CHUNK;
            len = pread(n->spool, data, want, (off_t)off);
            if (len >= 0 && (size_t)len < want) {
                memset(data + len, 0, want - (size_t)len);
                len = (ssize_t)want;
            }
        }
        pthread_mutex_unlock(&f->mu);
        if (len < 0) {
            /* superseded (nothing to do), or the spool could not be read:
             * the chunk goes back to dirty and the flush reports it */
            job_done(f, j, NULL, !current ? 0 : !(data && enc) ? -ENOMEM : -EIO);
            continue;
        }
        struct id key;
        if (all_zero(data, (size_t)len)) {
            memset(&key, 0, sizeof(key));
            job_done(f, j, &key, 0);
            continue;
        }
        size_t el = 0;
        struct lease l;
        uint64_t now = (uint64_t)(fs_now_ns() / 1000000);
        uint64_t expiry = now / 1000u + (uint64_t)f->cfg.lease_days * 86400u;
        struct put_ctx *pc = malloc(sizeof(*pc));
        int rc = pc ? block_encode(BLOCK_KIND_DATA, data, (size_t)len, true, enc, &el, &key)
                    : -ENOMEM;
        if (rc == 0 && lease_sign(&f->cfg.key, &key, now, expiry, &l) < 0)
            rc = -EIO;
        if (rc == 0) {
            pc->f = f;
            pc->j = j;
            pc->key = key;
            rc = f->bc.ops->put(f->bc.impl, enc, el, &l, on_chunk_put, pc);
        }
        if (rc < 0) {
            free(pc);
            job_done(f, j, NULL, fs_errno(rc));
        }
    }
    free(data);
    free(enc);
    return NULL;
}

int fs_workers_start(struct fs *f)
{
    unsigned n = f->cfg.workers;
    if (!n) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (unsigned)c : 2;
        if (n > 8)
            n = 8;
    }
    f->wk = calloc(n, sizeof(*f->wk));
    if (!f->wk)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&f->wk[i], NULL, worker, f) != 0)
            break;
        f->nwk++;
    }
    return f->nwk ? 0 : -EAGAIN;
}

void fs_workers_stop(struct fs *f)
{
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_broadcast(&f->jobs_cv);
    pthread_mutex_unlock(&f->mu);
    for (unsigned i = 0; i < f->nwk; i++)
        pthread_join(f->wk[i], NULL);
    free(f->wk);
    f->wk = NULL;
    f->nwk = 0;
}

ssize_t file_read(struct fs *f, struct fnode *n, char *buf, size_t size, off_t off)
{
    pthread_mutex_lock(&f->mu);
    int rc = file_load_chunks(f, n);
    if (rc < 0) {
        pthread_mutex_unlock(&f->mu);
        return rc;
    }
    if ((uint64_t)off >= n->size) {
        pthread_mutex_unlock(&f->mu);
        return 0;
    }
    if ((uint64_t)off + size > n->size)
        size = (size_t)(n->size - (uint64_t)off);
    if (n->spool < 0 && n->a.ref == FS_REF_INLINE) {
        memcpy(buf, n->a.inline_data + off, size);
        pthread_mutex_unlock(&f->mu);
        return (ssize_t)size;
    }
    size_t done = 0;
    while (done < size) {
        uint64_t pos = (uint64_t)off + done;
        size_t i = (size_t)(pos / FS_CHUNK), co = (size_t)(pos % FS_CHUNK);
        size_t cl = FS_CHUNK - co;
        if (cl > size - done)
            cl = size - done;
        if (i >= n->nch || (n->ch[i].st == CH_KEY && fs_key_is_hole(&n->ch[i].key))) {
            memset(buf + done, 0, cl);
        } else if (n->ch[i].st != CH_KEY) {
            ssize_t r = pread(n->spool, buf + done, cl, (off_t)pos);
            if (r < 0) {
                pthread_mutex_unlock(&f->mu);
                return -EIO;
            }
            if ((size_t)r < cl)
                memset(buf + done + r, 0, cl - (size_t)r);
        } else {
            struct id key = n->ch[i].key;
            bool seq = n->last_read_chunk == UINT32_MAX ? i == 0
                       : (i == n->last_read_chunk || i == n->last_read_chunk + 1);
            n->last_read_chunk = (uint32_t)i;
            struct id ahead[READ_AHEAD];
            size_t na = 0;
            for (size_t k = i + 1; seq && k < n->nch && na < READ_AHEAD; k++)
                if (n->ch[k].st == CH_KEY && !fs_key_is_hole(&n->ch[k].key))
                    ahead[na++] = n->ch[k].key;
            pthread_mutex_unlock(&f->mu);
            for (size_t k = 0; k < na; k++)
                fs_cache_prefetch(f, &ahead[k]);
            ssize_t m = fs_cache_read(f, &key, co, buf + done, cl);
            if (m < 0)
                return done ? (ssize_t)done : m;
            if ((size_t)m < cl)
                memset(buf + done + m, 0, cl - (size_t)m);
            pthread_mutex_lock(&f->mu);
        }
        done += cl;
        if ((uint64_t)off + size > n->size) /* truncated meanwhile */
            size = n->size > (uint64_t)off ? (size_t)(n->size - (uint64_t)off) : 0;
    }
    pthread_mutex_unlock(&f->mu);
    return (ssize_t)(done < size ? done : size);
}

ssize_t file_write(struct fs *f, struct fnode *n, const char *buf, size_t size, off_t off)
{
    if (size == 0)
        return 0;
    uint64_t end = (uint64_t)off + size;
    if (end < (uint64_t)off || end > (1ull << 50))
        return -EFBIG;
    pthread_mutex_lock(&f->mu);
    int rc = file_load_chunks(f, n);
    if (rc == 0)
        rc = spool_open(f, n);
    size_t first = (size_t)((uint64_t)off / FS_CHUNK), last = (size_t)((end - 1) / FS_CHUNK);
    /* chunk_fill drops the lock: when the file changed meanwhile (a
     * truncate, another write), size the table and fill again. */
    for (uint32_t wg = n->wgen + 1; rc == 0 && wg != n->wgen;) {
        wg = n->wgen;
        rc = chunks_reserve(n, nchunks(end > n->size ? end : n->size));
        /* Growing past a last chunk that ends inside it: that chunk must
         * become whole (zeros after the old end), as every chunk but the
         * last is. */
        if (rc == 0 && end > n->size && n->size % FS_CHUNK &&
            (size_t)(n->size / FS_CHUNK) < first)
            rc = chunk_fill(f, n, (size_t)(n->size / FS_CHUNK));
        for (size_t i = first; rc == 0 && i <= last; i++) {
            uint64_t cs = (uint64_t)i * FS_CHUNK, ce = cs + FS_CHUNK;
            uint64_t have = n->size < ce ? n->size : ce; /* existing bytes of the chunk end here */
            bool covers = (uint64_t)off <= cs && end >= have;
            if (!covers)
                rc = chunk_fill(f, n, i);
        }
    }
    if (rc == 0 && pwrite(n->spool, buf, size, off) != (ssize_t)size)
        rc = -EIO;
    if (rc < 0) {
        pthread_mutex_unlock(&f->mu);
        return rc;
    }
    for (size_t i = first; i <= last; i++) {
        n->ch[i].st = CH_DIRTY; /* a running store of it is not taken */
        n->ch[i].gen = ++n->gen_seq;
    }
    if (end > n->size)
        n->size = end;
    n->content_dirty = true;
    n->wgen++;
    n->a.mtime_ns = n->a.ctime_ns = fs_now_ns();
    /* Write-behind: chunks this write completed go to the workers. */
    if (f->cfg.writable)
        for (size_t i = first; i <= last; i++)
            if ((uint64_t)(i + 1) * FS_CHUNK <= end && n->ch[i].st == CH_DIRTY &&
                n->size > FS_INLINE_MAX)
                job_enqueue(f, n, i);
    pthread_mutex_unlock(&f->mu);
    return (ssize_t)size;
}

int file_truncate(struct fs *f, struct fnode *n, uint64_t size)
{
    if (size > (1ull << 50))
        return -EFBIG;
    int rc = file_load_chunks(f, n);
    if (rc == 0)
        rc = spool_open(f, n);
    if (rc < 0)
        return rc;
    if (size == n->size)
        return 0;
    /* The chunk that ends the shorter of the two sizes must be in the
     * spool, so its tail reads as zeros and every chunk but the last is
     * whole. */
    uint64_t edge = size < n->size ? size : n->size;
    if (edge % FS_CHUNK && (rc = chunk_fill(f, n, (size_t)(edge / FS_CHUNK))) < 0)
        return rc;
    if (ftruncate(n->spool, (off_t)size) < 0)
        return -errno;
    if (size < n->size) {
        size_t keep = nchunks(size);
        if (keep < n->nch)
            n->nch = keep;
        if (size % FS_CHUNK && keep) {
            n->ch[keep - 1].st = n->ch[keep - 1].st == CH_KEY &&
                                         fs_key_is_hole(&n->ch[keep - 1].key)
                                     ? CH_KEY
                                     : CH_DIRTY;
            n->ch[keep - 1].gen = ++n->gen_seq;
        }
    } else if ((rc = chunks_reserve(n, nchunks(size))) < 0) {
        return rc;
    } else if (edge % FS_CHUNK) {
        size_t i = (size_t)(edge / FS_CHUNK);
        if (n->ch[i].st != CH_KEY) {
            n->ch[i].st = CH_DIRTY;
            n->ch[i].gen = ++n->gen_seq;
        }
    }
    n->size = size;
    n->content_dirty = true;
    n->wgen++;
    n->a.mtime_ns = n->a.ctime_ns = fs_now_ns();
    return 0;
}

/* Waits until every chunk of n is stored (mu held). 0 or the error of a
 * store that failed twice. */
static int store_chunks(struct fs *f, struct fnode *n)
{
    unsigned tries = 0;
    for (;;) {
        if (n->size > FS_INLINE_MAX)
            for (size_t i = 0; i < n->nch; i++)
                if (n->ch[i].st == CH_DIRTY && !job_enqueue(f, n, i))
                    return -ENOMEM;
        while (n->busy)
            pthread_cond_wait(&f->cv, &f->mu);
        /* A store that failed left its chunk dirty: one more try of all of
         * them before the error goes to the program (a put can fail for
         * a moment while the ring repairs itself after a crash). */
        if (n->werr && ++tries < 2) {
            LOG_W(f->cfg.log, "fs", "storing a chunk failed (%s); trying again",
                  strerror(-n->werr));
            n->werr = 0;
            continue;
        }
        if (n->werr) {
            LOG_W(f->cfg.log, "fs", "close fails: a chunk could not be stored: %s",
                  strerror(-n->werr));
            int rc = n->werr;
            n->werr = 0;
            return rc;
        }
        bool again = false;
        for (size_t i = 0; n->size > FS_INLINE_MAX && i < n->nch; i++)
            if (n->ch[i].st != CH_KEY)
                again = true;
        if (!again)
            return 0;
    }
}

/* One flush of n (mu held, n->flushing set): the chunks, the manifest or
 * the inline bytes, the new inode record in the journal. Starts over when
 * the file changed while the lock was dropped, so an older state is never
 * recorded over a newer one. */
static int flush_locked(struct fs *f, struct fnode *n)
{
    for (;;) {
        if (!n->content_dirty || n->ro) {
            int rc = n->werr;
            n->werr = 0;
            return rc;
        }
        int rc = store_chunks(f, n);
        if (rc < 0)
            return rc;
        uint32_t wg = n->wgen;
        uint64_t size = n->size;
        struct fs_inode na;
        if (fs_inode_copy(&na, &n->a) < 0)
            return -ENOMEM;
        free(na.inline_data);
        na.inline_data = NULL;
        na.size = size;
        if (size == 0) {
            na.ref = FS_REF_EMPTY;
        } else if (size <= FS_INLINE_MAX) {
            na.ref = FS_REF_INLINE;
            na.inline_data = malloc(size);
            pthread_mutex_unlock(&f->mu);
            ssize_t r = na.inline_data ? file_read(f, n, (char *)na.inline_data, size, 0)
                                       : -ENOMEM;
            pthread_mutex_lock(&f->mu);
            if (r != (ssize_t)size)
                rc = r < 0 ? (int)r : -EIO;
        } else {
            size_t nk = nchunks(size);
            struct id *keys = malloc(nk * sizeof(*keys));
            if (!keys) {
                rc = -ENOMEM;
            } else {
                for (size_t i = 0; i < nk; i++)
                    keys[i] = i < n->nch ? n->ch[i].key : (struct id){ { 0 } };
                pthread_mutex_unlock(&f->mu);
                rc = fs_put_manifest(f, size, keys, nk, &na.key);
                pthread_mutex_lock(&f->mu);
                free(keys);
                na.ref = FS_REF_KEY;
            }
        }
        if (n->wgen != wg) { /* written or truncated meanwhile: flush that */
            fs_inode_clear(&na);
            continue;
        }
        if (rc < 0) {
            fs_inode_clear(&na);
            return rc;
        }
        na.mtime_ns = n->a.mtime_ns;
        na.ctime_ns = n->a.ctime_ns;
        na.mode = n->a.mode;
        na.uid = n->a.uid;
        na.gid = n->a.gid;
        /* keep the xattrs as they are now */
        struct fs_xattr *x = n->a.xattr;
        uint16_t nx = n->a.nxattr;
        n->a.xattr = na.xattr;
        n->a.nxattr = na.nxattr;
        na.xattr = x;
        na.nxattr = nx;
        fs_inode_clear(&n->a);
        n->a = na;
        n->content_dirty = false;
        if (n->a.ref != FS_REF_KEY) { /* inline or empty: the record holds it all */
            file_drop_spool(f, n);
            n->nch = 0;
        }
        if (n->parent) {
            fnode_touch(f, n);
            rc = journal_set(f, n, true);
        }
        return rc;
    }
}

int file_flush(struct fs *f, struct fnode *n)
{
    pthread_mutex_lock(&f->mu);
    while (n->flushing) /* one flush of a file at a time */
        pthread_cond_wait(&f->cv, &f->mu);
    n->flushing = true;
    int rc = flush_locked(f, n);
    n->flushing = false;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return rc;
}
