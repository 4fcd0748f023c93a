/* fuzz_store_log.c — libFuzzer harness for the replay of the store's lease
 * log at open (blockstore/store_log.c: store_log_open, and under it the
 * record checks, the choice of live records and the cut or rewrite of the
 * log).
 *
 * The records are only decoded inside store_log_open, which reads
 * DIR/leases.log through the store's directory fds, so the harness keeps
 * one scratch directory (made with mkdtemp under $TMPDIR, else /dev/shm,
 * else /tmp, at the first input; removed at exit, but left behind by a
 * crash), writes each input there as leases.log and opens it through a
 * struct store built by hand: no writer thread, no fsync (no_sync), a
 * silent logger. Each input costs a few dozen system calls on that
 * directory and the replay's buffers (some 300 KiB each), so this harness
 * runs at about a thousand inputs a second, not tens of thousands.
 *
 * The first input byte chooses how the rest becomes the log:
 *   even  as is: 152-byte records (key [32] | lease [112] | sum [8]) and
 *         any torn tail, so that sums are mostly wrong;
 *   odd   6 bytes per record (flags | key | owner | stamp | expiry | sig),
 *         written with a correct sum unless flags & 2, as a tombstone if
 *         flags & 1; the key's and the owner's first byte, the stamp in ms,
 *         the expiry in s and the signature's first byte come from the
 *         input, so that records often share a key and an owner; 1..5
 *         bytes left over append a torn tail of 30 bytes each.
 *
 * The result must be what store_int.h and store_log.c say, computed here
 * the simple way (quadratic, from the rules): the live set is, per key,
 * per owner, the lease_newer() winner among the key's non-tombstone
 * records after its last tombstone, sorted by key then owner; bad records
 * before the last good one are dropped, the bytes after it cut
 * (lease_tail_cut counts both); the log is rewritten as exactly the live
 * records (store_log_rec_encode, in that order) when a record was dropped
 * or fewer than half its records are live, else cut to the end of its last
 * good record. Then opening the result again must change nothing: the same
 * live set, nothing cut, the same bytes. No file descriptor may leak.
 *
 * Any violation calls abort(), which libFuzzer reports as a crash and saves
 * the input; the failed check is printed on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockstore/store_int.h"
#include "common/hash.h"

#define REC_LEN     STORE_LOG_REC_LEN
#define COMPACT_LEN 6
#define TORN_PER    30
#define MODEL_TAIL  0xee

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_store_log: %s\n", what);
    abort();
}

/* ---- the scratch directory ---- */

static char scratch[4096];
static int dir_fd = -1, tmp_fd = -1, probe_fd = -1;

static void scratch_remove(void)
{
    if (dir_fd < 0)
        return;
    unlinkat(tmp_fd, "leases.log.new", 0);
    unlinkat(dir_fd, STORE_LOG_NAME, 0);
    unlinkat(dir_fd, "tmp", AT_REMOVEDIR);
    close(tmp_fd);
    close(dir_fd);
    rmdir(scratch);
}

static void scratch_init(void)
{
    const char *base = getenv("TMPDIR");

    if (dir_fd >= 0)
        return;
    /* tmpfs if there is one: on ext4 a rename over a file just written
     * (the log's rewrite) forces its data out, which costs milliseconds. */
    if (!base || !*base)
        base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof(scratch), "%s/coopfs-fuzz-store-log-XXXXXX", base);
    if (!mkdtemp(scratch))
        fail("cannot make the scratch directory");
    dir_fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || mkdirat(dir_fd, "tmp", 0700) != 0)
        fail("cannot set up the scratch directory");
    tmp_fd = openat(dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tmp_fd < 0)
        fail("cannot open scratch/tmp");
    atexit(scratch_remove);
}

static void write_log(const uint8_t *p, size_t len)
{
    int fd = openat(dir_fd, STORE_LOG_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (len && write(fd, p, len) != (ssize_t)len) || close(fd) != 0)
        fail("cannot write leases.log");
}

/* The whole of leases.log; *len its size. The caller frees. */
static uint8_t *read_log(size_t *len)
{
    struct stat sb;
    int fd = openat(dir_fd, STORE_LOG_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0)
        fail("cannot open leases.log after open");
    uint8_t *b = malloc(sb.st_size ? (size_t)sb.st_size : 1);
    if (!b || (sb.st_size && pread(fd, b, (size_t)sb.st_size, 0) != sb.st_size))
        fail("cannot read leases.log after open");
    close(fd);
    *len = (size_t)sb.st_size;
    return b;
}

/* ---- the input as a log ---- */

/* Compact records, expanded; torn tails appended. Returns the log's
 * length; *out is malloc'd. */
static size_t expand(const uint8_t *p, size_t len, uint8_t **out)
{
    size_t nrec = len / COMPACT_LEN, rest = len % COMPACT_LEN;
    size_t n = nrec * REC_LEN + rest * TORN_PER;
    uint8_t *b = malloc(n ? n : 1);

    if (!b)
        fail("out of memory");
    for (size_t i = 0; i < nrec; i++) {
        const uint8_t *c = p + i * COMPACT_LEN;
        struct id key;
        struct lease l;

        memset(key.b, 0x5a, ID_BYTES);
        key.b[0] = c[1];
        memset(&l, 0, sizeof(l));
        memset(l.owner.b, 0x33, SIG_PUB_LEN);
        l.owner.b[0] = c[2];
        l.stamp_ms = c[3];
        l.expiry_s = c[4];
        l.sig[0] = c[5];
        store_log_rec_encode(b + i * REC_LEN, &key, (c[0] & 1) ? NULL : &l);
        if (c[0] & 2)
            b[i * REC_LEN + REC_LEN - 1] ^= 0x01; /* a wrong sum */
    }
    memset(b + nrec * REC_LEN, MODEL_TAIL, rest * TORN_PER);
    *out = b;
    return n;
}

/* ---- the model ---- */

struct mrec {
    const uint8_t *p; /* the record in the log */
    size_t seq;
    bool tomb;
};

struct model {
    struct id *keys;
    struct lease *leases;
    size_t n;
    size_t end;     /* bytes up to the end of the last good record */
    size_t damaged; /* bad records before it */
    bool rewrite;
};

static bool sum_ok(const uint8_t *r)
{
    struct id sum;
    hash_sha256(&sum, r, ID_BYTES + LEASE_LEN);
    return memcmp(sum.b, r + ID_BYTES + LEASE_LEN, STORE_LOG_SUM_LEN) == 0;
}

static bool all_ff(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0xff)
            return false;
    return true;
}

static const uint8_t *lease_bytes(const struct mrec *r)
{
    return r->p + ID_BYTES;
}

/* Does record a lose to record b of the same key and owner? */
static bool loses(const struct mrec *a, const struct mrec *b)
{
    struct lease la, lb;
    lease_decode(lease_bytes(a), &la);
    lease_decode(lease_bytes(b), &lb);
    if (lease_newer(&lb, &la))
        return true;
    /* The same lease twice: the first one stands. */
    return !lease_newer(&la, &lb) && b->seq < a->seq;
}

static int winner_cmp(const void *pa, const void *pb)
{
    const struct mrec *a = *(const struct mrec *const *)pa, *b = *(const struct mrec *const *)pb;
    int c = memcmp(a->p, b->p, ID_BYTES);
    return c ? c : memcmp(lease_bytes(a), lease_bytes(b), SIG_PUB_LEN);
}

static void model_build(const uint8_t *log, size_t len, struct model *m)
{
    size_t nslots = len / REC_LEN, nv = 0, nw = 0;
    struct mrec *v = malloc((nslots ? nslots : 1) * sizeof(*v));
    const struct mrec **w = malloc((nslots ? nslots : 1) * sizeof(*w));

    memset(m, 0, sizeof(*m));
    if (!v || !w)
        fail("out of memory");
    size_t bad_run = 0;
    for (size_t i = 0; i < nslots; i++) {
        const uint8_t *r = log + i * REC_LEN;
        if (!sum_ok(r)) {
            bad_run++;
            continue;
        }
        m->damaged += bad_run;
        bad_run = 0;
        m->end = (i + 1) * REC_LEN;
        v[nv++] = (struct mrec){r, i, all_ff(r + ID_BYTES, LEASE_LEN)};
    }
    for (size_t i = 0; i < nv; i++) {
        bool live = !v[i].tomb;
        for (size_t j = 0; j < nv && live; j++) {
            if (j == i || memcmp(v[i].p, v[j].p, ID_BYTES) != 0)
                continue;
            if (v[j].tomb && v[j].seq > v[i].seq)
                live = false; /* removed after it */
            else if (!v[j].tomb &&
                     memcmp(lease_bytes(&v[i]), lease_bytes(&v[j]), SIG_PUB_LEN) == 0 &&
                     loses(&v[i], &v[j])) {
                /* b may itself be dead: only records after the key's last
                 * tombstone compete. */
                bool j_live = true;
                for (size_t k = 0; k < nv && j_live; k++)
                    if (v[k].tomb && v[k].seq > v[j].seq && memcmp(v[k].p, v[j].p, ID_BYTES) == 0)
                        j_live = false;
                if (j_live)
                    live = false;
            }
        }
        if (live)
            w[nw++] = &v[i];
    }
    if (nw > 1)
        qsort(w, nw, sizeof(*w), winner_cmp);
    m->keys = malloc((nw ? nw : 1) * sizeof(*m->keys));
    m->leases = malloc((nw ? nw : 1) * sizeof(*m->leases));
    if (!m->keys || !m->leases)
        fail("out of memory");
    for (size_t i = 0; i < nw; i++) {
        memcpy(m->keys[i].b, w[i]->p, ID_BYTES);
        lease_decode(lease_bytes(w[i]), &m->leases[i]);
    }
    m->n = nw;
    m->rewrite = m->damaged > 0 || m->end / REC_LEN > 2 * m->n;
    free(v);
    free(w);
}

static void model_free(struct model *m)
{
    free(m->keys);
    free(m->leases);
}

/* ---- one open ---- */

/* Opens the log in the scratch directory and checks the live set against
 * m and the bytes cut. Leaves the log's fd closed and the store's arrays
 * freed. */
static void open_and_check(const struct model *m, uint64_t want_cut)
{
    struct store st;
    struct stat sb;

    memset(&st, 0, sizeof(st));
    st.dir = scratch;
    st.dir_fd = dir_fd;
    st.tmp_fd = tmp_fd;
    st.blocks_fd = st.roots_fd = st.kv_fd = st.quar_fd = st.log_fd = -1;
    st.no_sync = true;
    log_init_silent(&st.lg);

    int rc = store_log_open(&st);
    if (rc != 0) {
        fprintf(stderr, "fuzz_store_log: store_log_open: %d\n", rc);
        fail("store_log_open failed");
    }
    if (st.log_fd < 0 || fstat(st.log_fd, &sb) != 0 || !(fcntl(st.log_fd, F_GETFL) & O_APPEND))
        fail("the log's fd is not an open O_APPEND file");
    if (st.nleases != m->n)
        fail("the live set has another size than the rules give");
    if (m->n && (memcmp(st.lease_keys, m->keys, m->n * sizeof(*m->keys)) != 0 ||
                 memcmp(st.leases, m->leases, m->n * sizeof(*m->leases)) != 0))
        fail("the live set differs from what the rules give");
    if (st.open_stats.lease_tail_cut != want_cut)
        fail("lease_tail_cut is not the bytes dropped and cut");
    if (st.log_base != (uint64_t)m->n * REC_LEN)
        fail("log_base is not the live records' size");
    if (st.log_size != (uint64_t)sb.st_size)
        fail("log_size is not the file's size");
    close(st.log_fd);
    free(st.lease_keys);
    free(st.leases);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *log;
    size_t len;
    struct model m;

    if (size < 1)
        return 0;
    scratch_init();
    if (data[0] & 1) {
        len = expand(data + 1, size - 1, &log);
    } else {
        len = size - 1;
        log = malloc(len ? len : 1);
        if (!log)
            fail("out of memory");
        if (len)
            memcpy(log, data + 1, len);
    }
    model_build(log, len, &m);
    write_log(log, len);

    open_and_check(&m, (uint64_t)(len - m.end) + (uint64_t)m.damaged * REC_LEN);

    /* What open left: the live records, or the log up to its last good
     * record. */
    size_t alen;
    uint8_t *after = read_log(&alen);
    if (m.rewrite) {
        if (alen != m.n * REC_LEN)
            fail("a rewritten log is not its live records");
        for (size_t i = 0; i < m.n; i++) {
            uint8_t rec[REC_LEN];
            store_log_rec_encode(rec, &m.keys[i], &m.leases[i]);
            if (memcmp(after + i * REC_LEN, rec, REC_LEN) != 0)
                fail("a rewritten log is not its live records in order");
        }
    } else if (alen != m.end || memcmp(after, log, alen) != 0) {
        fail("a log that needed no rewrite is not cut at its last good record");
    }

    /* Open is idempotent. */
    open_and_check(&m, 0);
    size_t alen2;
    uint8_t *again = read_log(&alen2);
    if (alen2 != alen || memcmp(again, after, alen) != 0)
        fail("opening the log a second time changed it");

    free(again);
    free(after);
    free(log);
    model_free(&m);

    /* The lowest free fd is the same after every input. */
    int fd = dup(dir_fd);
    if (fd < 0)
        fail("dup failed");
    close(fd);
    if (probe_fd < 0)
        probe_fd = fd;
    else if (fd != probe_fd)
        fail("a file descriptor leaked");
    return 0;
}
