/* store_log.c — leases.log: the lease records of the store, their replay
 * at open, the cut of a torn tail and the rewrite of a mostly dead log.
 *
 * The log is a sequence of fixed 152-byte records (store_int.h). The writer
 * thread appends one batch of records with one write() and fdatasyncs it
 * before any of them completes, so a crash can damage only the records of
 * the last, unacknowledged batch: a torn or garbage tail. Replay keeps every
 * record that passes its checksum up to the last one that does, and cuts
 * everything after it. A damaged record before that point can only be disk
 * damage: it is skipped (with a warning) and the log is rewritten without
 * it, so the records after it, which were acknowledged, stay.
 *
 * Of the records of one (key, owner) pair, the one lease_newer() prefers
 * wins, among those after the key's last tombstone. The winners are the
 * live records. When the log holds more than twice as many records as are
 * live, it is rewritten with just the live ones: tmp/leases.log.new is
 * written, fsynced, renamed over leases.log and the directory fsynced, so a
 * crash leaves either the old log or the new one.
 *
 * Open does that once. A node runs for months and its owners renew their
 * leases all the while, so the writer thread also compacts: when the log
 * has grown past twice its live size after the last compaction (and past
 * STORE_LOG_COMPACT_MIN), it rereads it and rewrites it the same way. Each
 * compaction reads at most twice what it keeps, so its cost per appended
 * record is constant.
 *
 * Lease records of a key with no content block are kept: the block may be
 * quarantined and about to come back from a replica, and the lease is the
 * owner's claim on it. Only a removal of the block (a tombstone) drops them.
 */
#include "blockstore/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"

#define LOG_NEW_NAME    "leases.log.new"
#define READ_CHUNK_RECS 2048

/* A valid record read back, with its position in the log. */
struct rec {
    struct id key;
    uint8_t lease[LEASE_LEN];
    uint64_t seq;
};

void store_log_rec_encode(uint8_t out[STORE_LOG_REC_LEN], const struct id *key,
                          const struct lease *l)
{
    struct id sum;

    memcpy(out, key->b, ID_BYTES);
    if (l)
        lease_encode(l, out + ID_BYTES);
    else
        memset(out + ID_BYTES, 0xff, LEASE_LEN);
    hash_sha256(&sum, out, ID_BYTES + LEASE_LEN);
    memcpy(out + ID_BYTES + LEASE_LEN, sum.b, STORE_LOG_SUM_LEN);
}

static bool rec_sum_ok(const uint8_t *p)
{
    struct id sum;
    hash_sha256(&sum, p, ID_BYTES + LEASE_LEN);
    return memcmp(sum.b, p + ID_BYTES + LEASE_LEN, STORE_LOG_SUM_LEN) == 0;
}

static bool is_tombstone(const uint8_t lease[LEASE_LEN])
{
    for (size_t i = 0; i < LEASE_LEN; i++) {
        if (lease[i] != 0xff)
            return false;
    }
    return true;
}

/* Key, then owner (the first SIG_PUB_LEN bytes of a lease), then order in
 * the log. */
static int rec_cmp(const void *pa, const void *pb)
{
    const struct rec *a = pa, *b = pb;
    int c = id_cmp(&a->key, &b->key);
    if (c)
        return c;
    c = memcmp(a->lease, b->lease, SIG_PUB_LEN);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct live {
    struct id *keys;
    struct lease *leases;
    size_t n;
};

/* Picks the winners among recs[0..n), sorted by rec_cmp. Returns 0 or
 * -ENOMEM. */
static int live_build(const struct rec *recs, size_t n, struct live *out)
{
    size_t g0 = 0;

    memset(out, 0, sizeof(*out));
    if (n == 0)
        return 0;
    /* At most one winner per record: n bounds the arrays. */
    out->keys = malloc(n * sizeof(*out->keys));
    out->leases = malloc(n * sizeof(*out->leases));
    if (!out->keys || !out->leases) {
        free(out->keys);
        free(out->leases);
        memset(out, 0, sizeof(*out));
        return -ENOMEM;
    }
    while (g0 < n) {
        size_t g1 = g0, o0;
        bool tomb = false;
        uint64_t tomb_seq = 0;

        while (g1 < n && id_eq(&recs[g1].key, &recs[g0].key))
            g1++;
        for (size_t j = g0; j < g1; j++) {
            if (is_tombstone(recs[j].lease) && (!tomb || recs[j].seq > tomb_seq)) {
                tomb = true;
                tomb_seq = recs[j].seq;
            }
        }
        for (o0 = g0; o0 < g1;) {
            size_t o1 = o0;
            bool have = false;
            struct lease best, cur;

            while (o1 < g1 && memcmp(recs[o1].lease, recs[o0].lease, SIG_PUB_LEN) == 0)
                o1++;
            for (size_t j = o0; j < o1; j++) {
                if ((tomb && recs[j].seq < tomb_seq) || is_tombstone(recs[j].lease))
                    continue;
                lease_decode(recs[j].lease, &cur);
                if (!have || lease_newer(&cur, &best)) {
                    best = cur;
                    have = true;
                }
            }
            if (have) {
                out->keys[out->n] = recs[g0].key;
                out->leases[out->n] = best;
                out->n++;
            }
            o0 = o1;
        }
        g0 = g1;
    }
    return 0;
}

/* Writes the live records to tmp/leases.log.new and renames it over
 * leases.log, durably. Returns the new log's fd (O_APPEND) or -errno. */
static int log_rewrite(struct store *st, const struct live *lv)
{
    uint8_t *buf;
    size_t cap = READ_CHUNK_RECS, fill = 0;
    int fd, err = 0;

    buf = malloc(cap * STORE_LOG_REC_LEN);
    if (!buf)
        return -ENOMEM;
    unlinkat(st->tmp_fd, LOG_NEW_NAME, 0);
    fd = openat(st->tmp_fd, LOG_NEW_NAME, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(buf);
        return -errno;
    }
    for (size_t i = 0; i < lv->n && !err; i++) {
        store_log_rec_encode(buf + fill * STORE_LOG_REC_LEN, &lv->keys[i], &lv->leases[i]);
        if (++fill == cap || i + 1 == lv->n) {
            err = store_write_all(fd, buf, fill * STORE_LOG_REC_LEN);
            fill = 0;
        }
    }
    free(buf);
    if (!err)
        err = store_fsync(st, fd);
    close(fd);
    if (!err && renameat(st->tmp_fd, LOG_NEW_NAME, st->dir_fd, STORE_LOG_NAME) != 0)
        err = -errno;
    if (!err)
        err = store_fsync(st, st->dir_fd);
    if (err) {
        unlinkat(st->tmp_fd, LOG_NEW_NAME, 0);
        return err;
    }
    fd = openat(st->dir_fd, STORE_LOG_NAME, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    return fd >= 0 ? fd : -errno;
}

/* Reads every whole record of fd. Sets *recs_out, *nrecs_out to the valid ones,
 * *end to the end of the last valid one and *damaged to the number of bad
 * records before it. Returns 0, -EIO, -ENOMEM. */
static int log_read(int fd, uint64_t size, struct rec **recs_out, size_t *nrecs_out, uint64_t *end,
                    uint64_t *damaged)
{
    uint8_t *buf;
    struct rec *recs = NULL;
    size_t nrecs = 0, cap = 0;
    uint64_t off = 0, bad_run = 0;
    int err = 0;

    *end = 0;
    *damaged = 0;
    buf = malloc((size_t)READ_CHUNK_RECS * STORE_LOG_REC_LEN);
    if (!buf)
        return -ENOMEM;
    while (off + STORE_LOG_REC_LEN <= size && !err) {
        uint64_t whole = (size - off) / STORE_LOG_REC_LEN;
        size_t k = whole < READ_CHUNK_RECS ? (size_t)whole : READ_CHUNK_RECS;
        size_t got = 0;

        while (got < k * STORE_LOG_REC_LEN) {
            ssize_t r = pread(fd, buf + got, k * STORE_LOG_REC_LEN - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got < k * STORE_LOG_REC_LEN) {
            err = -EIO; /* a read error, or the file shrank under us */
            break;
        }
        for (size_t i = 0; i < k; i++, off += STORE_LOG_REC_LEN) {
            const uint8_t *p = buf + i * STORE_LOG_REC_LEN;
            if (!rec_sum_ok(p)) {
                bad_run++;
                continue;
            }
            if (nrecs == cap) {
                size_t ncap = cap ? cap * 2 : 1024;
                struct rec *n = realloc(recs, ncap * sizeof(*recs));
                if (!n) {
                    err = -ENOMEM;
                    break;
                }
                recs = n;
                cap = ncap;
            }
            memcpy(recs[nrecs].key.b, p, ID_BYTES);
            memcpy(recs[nrecs].lease, p + ID_BYTES, LEASE_LEN);
            recs[nrecs].seq = off / STORE_LOG_REC_LEN;
            nrecs++;
            *damaged += bad_run; /* bad records followed by a good one */
            bad_run = 0;
            *end = off + STORE_LOG_REC_LEN;
        }
    }
    free(buf);
    if (err) {
        free(recs);
        return err;
    }
    *recs_out = recs;
    *nrecs_out = nrecs;
    return 0;
}

static int log_open_fd(struct store *st, int *fd_out)
{
    int fd = openat(st->dir_fd, STORE_LOG_NAME,
                    O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        /* A new log's name must survive a crash before any record in it. */
        int err = store_fsync(st, st->dir_fd);
        if (err) {
            close(fd);
            return err;
        }
        *fd_out = fd;
        return 0;
    }
    if (errno != EEXIST)
        return -errno;
    fd = openat(st->dir_fd, STORE_LOG_NAME, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    *fd_out = fd;
    return 0;
}

/* Reads the first size bytes of fd and builds the live set. Sets *end to
 * the end of the last valid record and *damaged to the bad records before
 * it. Returns 0, -EIO, -ENOMEM. */
static int log_load(int fd, uint64_t size, struct live *lv, uint64_t *end, uint64_t *damaged)
{
    struct rec *recs = NULL;
    size_t nrecs = 0;
    int err;

    err = log_read(fd, size, &recs, &nrecs, end, damaged);
    if (err)
        return err;
    if (nrecs > 1)
        qsort(recs, nrecs, sizeof(*recs), rec_cmp);
    err = live_build(recs, nrecs, lv);
    free(recs);
    return err;
}

int store_log_compact_maybe(struct store *st)
{
    struct live lv;
    uint64_t end, damaged;
    int fd, err;

    if (st->log_size <= STORE_LOG_COMPACT_MIN || st->log_size <= 2 * st->log_base)
        return 0;
    err = log_load(st->log_fd, st->log_size, &lv, &end, &damaged);
    if (err == -ENOMEM) {
        st->log_base = st->log_size; /* try again when it has doubled */
        return 0;
    }
    if (err)
        return err;
    if (damaged > 0)
        LOG_W(&st->lg, STORE_MOD, "%s: %s has %" PRIu64 " damaged records; they are dropped",
              st->dir, STORE_LOG_NAME, damaged);
    fd = log_rewrite(st, &lv);
    free(lv.keys);
    free(lv.leases);
    if (fd == -ENOSPC || fd == -EDQUOT) {
        /* The old log is intact: go on with it, retry when it has doubled. */
        st->log_base = st->log_size;
        return 0;
    }
    if (fd < 0)
        return fd;
    LOG_D(&st->lg, STORE_MOD, "%s: %s compacted from %" PRIu64 " to %zu records", st->dir,
          STORE_LOG_NAME, st->log_size / STORE_LOG_REC_LEN, lv.n);
    close(st->log_fd);
    st->log_fd = fd;
    st->log_size = st->log_base = (uint64_t)lv.n * STORE_LOG_REC_LEN;
    return 0;
}

int store_log_open(struct store *st)
{
    struct live lv;
    struct stat sb;
    uint64_t size, end, damaged, tail, slots;
    int fd = -1, err;

    err = log_open_fd(st, &fd);
    if (err)
        return err;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -EIO;
    }
    size = (uint64_t)sb.st_size;
    err = log_load(fd, size, &lv, &end, &damaged);
    if (err) {
        LOG_E(&st->lg, STORE_MOD, "%s: cannot read %s: %s", st->dir, STORE_LOG_NAME,
              strerror(-err));
        close(fd);
        return err;
    }
    tail = size - end;
    slots = end / STORE_LOG_REC_LEN;
    if (damaged > 0)
        LOG_W(&st->lg, STORE_MOD,
              "%s: %s has %" PRIu64 " damaged records before its end; they are dropped", st->dir,
              STORE_LOG_NAME, damaged);
    if (tail > 0)
        LOG_W(&st->lg, STORE_MOD, "%s: %s: cut a torn tail of %" PRIu64 " bytes", st->dir,
              STORE_LOG_NAME, tail);
    st->open_stats.lease_tail_cut = tail + damaged * STORE_LOG_REC_LEN;

    if (damaged > 0 || slots > 2 * (uint64_t)lv.n) {
        int nfd = log_rewrite(st, &lv);
        if (nfd < 0) {
            LOG_E(&st->lg, STORE_MOD, "%s: cannot rewrite %s: %s", st->dir, STORE_LOG_NAME,
                  strerror(-nfd));
            err = nfd;
            goto err_free;
        }
        LOG_I(&st->lg, STORE_MOD, "%s: %s rewritten: %" PRIu64 " records, %zu live", st->dir,
              STORE_LOG_NAME, slots, lv.n);
        close(fd);
        fd = nfd;
        st->log_size = (uint64_t)lv.n * STORE_LOG_REC_LEN;
    } else if (tail > 0) {
        if (ftruncate(fd, (off_t)end) != 0) {
            err = -errno;
            goto err_free;
        }
        err = store_fsync(st, fd);
        if (err)
            goto err_free;
        st->log_size = end;
    } else {
        st->log_size = size;
    }
    st->log_fd = fd;
    st->log_base = (uint64_t)lv.n * STORE_LOG_REC_LEN;
    st->lease_keys = lv.keys;
    st->leases = lv.leases;
    st->nleases = lv.n;
    return 0;

err_free:
    close(fd);
    free(lv.keys);
    free(lv.leases);
    return err;
}
