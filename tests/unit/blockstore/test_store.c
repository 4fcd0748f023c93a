/* test_store.c — the durable local store (blockstore/store.c, store_open.c,
 * store_log.c) on a real directory under /tmp.
 *
 * Each test gets a fresh directory from mkdtemp and removes it. Tests that
 * check durability close and reopen the store; tests of checks damage files
 * on disk by hand. The ENOSPC test needs root (a 1 MiB tmpfs mounted in a
 * private mount namespace) and the failure test needs an ext4-like file
 * system that honours the immutable flag; each skips, saying why, otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockstore/block.h"
#include "blockstore/store.h"
#include "blockstore/store_int.h" /* store_set_sync_mode: both barrier forms */
#include "common/hash.h"
#include "common/log.h"

#define REC_LEN (ID_BYTES + LEASE_LEN + 8) /* one leases.log record */

/* ---- fixture ---- */

struct fx {
    char root[64]; /* the mkdtemp directory */
    char dir[96];  /* root/store */
    struct store *st;
    struct logger lg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t wakes;       /* protected by lock */
    pthread_mutex_t gate; /* held by a test to stall the writer in on_wake */
    enum store_sync_mode mode;
    int no_sync;
};

static void on_wake(void *ctx)
{
    struct fx *f = ctx;
    pthread_mutex_lock(&f->gate);
    pthread_mutex_unlock(&f->gate);
    pthread_mutex_lock(&f->lock);
    f->wakes++;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int fx_open(struct fx *f)
{
    struct store_config cfg = {
        .dir = f->dir, .wake = on_wake, .wake_ctx = f, .no_sync = f->no_sync};
    int err = store_open(&cfg, &f->lg, &f->st);
    if (err == 0)
        store_set_sync_mode(f->st, f->mode);
    return err;
}

static void fx_reopen(struct fx *f)
{
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(fx_open(f), 0);
}

static int setup_mode(void **state, enum store_sync_mode mode)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->mode = mode;
    strcpy(f->root, "/tmp/coopfs-store-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof(f->dir), "%s/store", f->root);
    /* Warnings (quarantines, cut tails) show in the test log; info is noise. */
    log_init(&f->lg, stderr, LOG_WARN);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    pthread_mutex_init(&f->gate, NULL);
    assert_int_equal(fx_open(f), 0);
    *state = f;
    return 0;
}

/* syncfs() barriers (the default on Linux >= 5.8). */
static int setup(void **state)
{
    return setup_mode(state, STORE_SYNC_FS);
}

/* fdatasync/fsync barriers, file by file and directory by directory. */
static int setup_files(void **state)
{
    return setup_mode(state, STORE_SYNC_FILES);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    rm_rf(f->root);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->gate);
    free(f);
    return 0;
}

/* Collects exactly n completions (waiting on wake, 30 s at most). */
static void wait_n(struct fx *f, struct store_completion *out, size_t n)
{
    size_t got = 0;
    struct timespec dl;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    while (got < n) {
        uint64_t seen;
        pthread_mutex_lock(&f->lock);
        seen = f->wakes;
        pthread_mutex_unlock(&f->lock);
        size_t k = store_poll(f->st, out + got, n - got);
        got += k;
        if (got == n || k > 0)
            continue;
        pthread_mutex_lock(&f->lock);
        while (f->wakes == seen) {
            int rc = pthread_cond_timedwait(&f->cond, &f->lock, &dl);
            assert_int_not_equal(rc, ETIMEDOUT);
        }
        pthread_mutex_unlock(&f->lock);
    }
}

/* Waits for one completion and returns its status, checking its token. */
static int wait_one(struct fx *f, uint64_t token)
{
    struct store_completion c;
    wait_n(f, &c, 1);
    assert_int_equal(c.token, token);
    return c.status;
}

/* ---- records to store ---- */

static void make_content(uint32_t seed, size_t len, uint8_t *out, size_t *out_len, struct id *key)
{
    uint8_t *data = malloc(len ? len : 1);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
    assert_int_equal(block_encode(BLOCK_KIND_DATA, data, len, false, out, out_len, key), 0);
    free(data);
}

static void make_sig_key(uint8_t n, struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    memset(seed, n, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, k), 0);
}

static void make_root(uint8_t who, uint64_t version, size_t plen, uint8_t *out, size_t *out_len,
                      struct id *key)
{
    struct sig_key k;
    uint8_t payload[ROOT_MAX_PAYLOAD];
    make_sig_key(who, &k);
    memset(payload, (int)version, plen);
    assert_int_equal(root_encode(&k, version, payload, plen, out, out_len), 0);
    root_key(&k.pub, key);
}

static void make_kv(uint8_t n, uint64_t stamp, size_t vlen, uint8_t *out, size_t *out_len,
                    struct id *key)
{
    uint8_t value[KV_MAX_VALUE];
    memset(key, 0, sizeof(*key));
    key->b[0] = n;
    key->b[31] = 0x5a;
    memset(value, (int)stamp, vlen);
    assert_int_equal(kv_encode(key, stamp, 1893456000, 3, value, vlen, out, out_len), 0);
}

static void path_of(struct fx *f, enum store_type type, const struct id *key, char *out, size_t cap)
{
    char hex[ID_HEX_LEN + 1];
    id_to_hex(key, hex);
    if (type == STORE_CONTENT)
        snprintf(out, cap, "%s/blocks/%.2s/%s", f->dir, hex, hex);
    else
        snprintf(out, cap, "%s/%s/%s", f->dir, type == STORE_ROOT ? "roots" : "kv", hex);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static size_t count_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    size_t n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    }
    closedir(d);
    return n;
}

static uint64_t disk_bytes; /* for sum_files */

static int sum_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F && S_ISREG(sb->st_mode))
        disk_bytes += (uint64_t)sb->st_size;
    return 0;
}

/* The sum of the sizes of every file under blocks/, roots/ and kv/. */
static uint64_t sum_files(struct fx *f)
{
    static const char *const subs[] = {"blocks", "roots", "kv"};
    char p[160];
    disk_bytes = 0;
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, subs[i]);
        nftw(p, sum_one, 16, FTW_PHYS);
    }
    return disk_bytes;
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void expect_read(struct fx *f, enum store_type type, const struct id *key,
                        const uint8_t *want, size_t want_len)
{
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(store_read(f->st, type, key, &got, &len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
}

static void expect_absent(struct fx *f, enum store_type type, const struct id *key)
{
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(store_read(f->st, type, key, &got, &len), -ENOENT);
}

/* ---- scan ---- */

struct scan_ent {
    enum store_type type;
    struct id key;
    uint32_t size;
    struct lease leases[8];
    size_t nleases;
};

struct scan_res {
    struct scan_ent ents[64];
    size_t n;
};

static void on_scan(void *ctx, enum store_type type, const struct id *key, uint32_t size,
                    const struct lease *leases, size_t nleases)
{
    struct scan_res *r = ctx;
    assert_true(r->n < 64);
    assert_true(nleases <= 8);
    struct scan_ent *e = &r->ents[r->n++];
    e->type = type;
    e->key = *key;
    e->size = size;
    e->nleases = nleases;
    if (nleases)
        memcpy(e->leases, leases, nleases * sizeof(*leases));
}

static const struct scan_ent *scan_find(const struct scan_res *r, enum store_type type,
                                        const struct id *key)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->ents[i].type == type && id_eq(&r->ents[i].key, key))
            return &r->ents[i];
    }
    return NULL;
}

/* ---- tests ---- */

static uint8_t buf_a[BLOCK_MAX_STORED], buf_b[BLOCK_MAX_STORED], buf_c[KV_MAX_LEN];

static void test_write_read_each_type(void **state)
{
    struct fx *f = *state;
    struct id kc, kr, kk;
    size_t lc, lr, lk;
    struct store_stats s;

    make_content(1, 100000, buf_a, &lc, &kc);
    make_root(1, 1, 32, buf_b, &lr, &kr);
    make_kv(1, 1000, 500, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 3), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(wait_one(f, 2), 0);
    assert_int_equal(wait_one(f, 3), 0);

    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
    expect_read(f, STORE_ROOT, &kr, buf_b, lr);
    expect_read(f, STORE_KV, &kk, buf_c, lk);
    /* Each type has its own name space. */
    expect_absent(f, STORE_ROOT, &kc);
    expect_absent(f, STORE_KV, &kr);
    assert_int_equal(store_used(f->st), lc + lr + lk);
    assert_int_equal(store_used(f->st), sum_files(f));

    store_get_stats(f->st, &s);
    assert_int_equal(s.writes, 3);
    assert_int_equal(s.bytes_written, lc + lr + lk);
    assert_int_equal(s.reads, 5);
    assert_int_equal(s.read_bad, 0);
    assert_true(s.batches >= 1 && s.batches <= 3);
    assert_true(s.fsyncs >= 2 * s.batches); /* files, then directories */
    assert_false(store_failed(f->st));

    /* Bad arguments are refused before anything is queued. */
    assert_int_equal(store_write(f->st, (enum store_type)9, &kc, buf_a, lc, 4), -EINVAL);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_a, ROOT_MAX_LEN + 1, 4), -EINVAL);
    assert_int_equal(store_remove(f->st, (enum store_type)0, &kc, 4), -EINVAL);
}

static void test_replace(void **state)
{
    struct fx *f = *state;
    struct id kr, kr2, kk, kk2;
    size_t lr, lr2, lk, lk2;

    make_root(2, 1, 10, buf_a, &lr, &kr);
    make_root(2, 2, 300, buf_b, &lr2, &kr2);
    assert_true(id_eq(&kr, &kr2));
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_a, lr, 1), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(store_used(f->st), lr);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr2, 2), 0);
    assert_int_equal(wait_one(f, 2), 0);
    expect_read(f, STORE_ROOT, &kr, buf_b, lr2);
    assert_int_equal(store_used(f->st), lr2);

    make_kv(7, 10, 4000, buf_a, &lk, &kk);
    make_kv(7, 11, 20, buf_c, &lk2, &kk2);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_a, lk, 3), 0);
    /* Two writes of one key in one go: the later one is what stays. */
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk2, 4), 0);
    assert_int_equal(wait_one(f, 3), 0);
    assert_int_equal(wait_one(f, 4), 0);
    expect_read(f, STORE_KV, &kk2, buf_c, lk2);
    assert_int_equal(store_used(f->st), lr2 + lk2);
    assert_int_equal(store_used(f->st), sum_files(f));

    /* Rewriting a content block that is there changes nothing. */
    struct id kc;
    size_t lc;
    make_content(3, 5000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 5), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 6), 0);
    assert_int_equal(wait_one(f, 5), 0);
    assert_int_equal(wait_one(f, 6), 0);
    assert_int_equal(store_used(f->st), lr2 + lk2 + lc);
    fx_reopen(f);
    expect_read(f, STORE_ROOT, &kr, buf_b, lr2);
    expect_read(f, STORE_KV, &kk, buf_c, lk2);
    assert_int_equal(store_used(f->st), lr2 + lk2 + lc);
}

static void test_remove(void **state)
{
    struct fx *f = *state;
    struct id kc, kr, kk;
    size_t lc, lr, lk;
    struct store_stats s;

    make_content(4, 777, buf_a, &lc, &kc);
    make_root(4, 9, 0, buf_b, &lr, &kr);
    make_kv(4, 5, 0, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 3), 0);
    assert_int_equal(store_remove(f->st, STORE_ROOT, &kr, 4), 0);
    for (uint64_t t = 1; t <= 4; t++)
        assert_int_equal(wait_one(f, t), 0);
    expect_absent(f, STORE_ROOT, &kr);
    assert_int_equal(store_used(f->st), lc + lk);

    assert_int_equal(store_remove(f->st, STORE_CONTENT, &kc, 5), 0);
    assert_int_equal(store_remove(f->st, STORE_KV, &kk, 6), 0);
    assert_int_equal(store_remove(f->st, STORE_KV, &kk, 7), 0); /* absent: still 0 */
    for (uint64_t t = 5; t <= 7; t++)
        assert_int_equal(wait_one(f, t), 0);
    expect_absent(f, STORE_CONTENT, &kc);
    expect_absent(f, STORE_KV, &kk);
    assert_int_equal(store_used(f->st), 0);
    store_get_stats(f->st, &s);
    assert_int_equal(s.removes, 4);

    fx_reopen(f);
    expect_absent(f, STORE_CONTENT, &kc);
    assert_int_equal(store_used(f->st), 0);
    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 0);
}

static void test_completions_in_order(void **state)
{
    struct fx *f = *state;
    enum { N = 300 };
    struct store_completion c[N];
    struct sig_key k;
    struct lease l;
    struct id key;
    size_t len;

    make_sig_key(9, &k);
    for (uint64_t t = 0; t < N; t++) {
        switch (t % 4) {
        case 0:
            make_content((uint32_t)t, 64 + t, buf_a, &len, &key);
            assert_int_equal(store_write(f->st, STORE_CONTENT, &key, buf_a, len, 1000 + t), 0);
            break;
        case 1:
            assert_int_equal(lease_sign(&k, &key, t, 100 + t, &l), 0);
            assert_int_equal(store_lease_append(f->st, &key, &l, 1, 1000 + t), 0);
            break;
        case 2:
            make_kv((uint8_t)t, t, t, buf_c, &len, &key);
            assert_int_equal(store_write(f->st, STORE_KV, &key, buf_c, len, 1000 + t), 0);
            break;
        default: assert_int_equal(store_remove(f->st, STORE_KV, &key, 1000 + t), 0); break;
        }
    }
    /* Take them in small pieces: order holds across polls and batches. */
    for (size_t got = 0; got < N;) {
        size_t want = N - got < 7 ? N - got : 7;
        wait_n(f, c + got, want);
        got += want;
    }
    for (uint64_t t = 0; t < N; t++) {
        assert_int_equal(c[t].token, 1000 + t);
        assert_int_equal(c[t].status, 0);
    }
    assert_int_equal(store_poll(f->st, c, N), 0);
    /* Nothing queued: a poll with max 0 is fine too. */
    assert_int_equal(store_poll(f->st, c, 0), 0);
}

static void test_durable_reopen_and_scan(void **state)
{
    struct fx *f = *state;
    struct id kc[10], kr, kk;
    size_t lc[10], lr, lk;
    uint64_t total = 0;
    struct store_open_stats os;
    struct sig_key owner;
    struct lease l;

    make_sig_key(11, &owner);
    for (int i = 0; i < 10; i++) {
        make_content((uint32_t)(100 + i), (size_t)i * 20000, buf_a, &lc[i], &kc[i]);
        assert_int_equal(store_write(f->st, STORE_CONTENT, &kc[i], buf_a, lc[i], (uint64_t)i), 0);
        total += lc[i];
    }
    assert_int_equal(lease_sign(&owner, &kc[3], 5, 99, &l), 0);
    assert_int_equal(store_lease_append(f->st, &kc[3], &l, 1, 10), 0);
    make_root(12, 3, 40, buf_b, &lr, &kr);
    make_kv(12, 3, 40, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 11), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 12), 0);
    total += lr + lk;
    store_close(f->st); /* finishes the queue */
    f->st = NULL;
    assert_int_equal(fx_open(f), 0);

    store_get_open_stats(f->st, &os);
    assert_int_equal(os.checked, 12);
    assert_int_equal(os.quarantined, 0);
    assert_int_equal(os.tmp_removed, 0);
    assert_int_equal(os.lease_tail_cut, 0);
    assert_int_equal(store_used(f->st), total);
    for (int i = 0; i < 10; i++) {
        make_content((uint32_t)(100 + i), (size_t)i * 20000, buf_a, &lc[i], &kc[i]);
        expect_read(f, STORE_CONTENT, &kc[i], buf_a, lc[i]);
    }
    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 12);
    assert_int_equal(r.n, 12);
    for (int i = 0; i < 10; i++) {
        const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc[i]);
        assert_non_null(e);
        assert_int_equal(e->size, lc[i]);
        assert_int_equal(e->nleases, i == 3 ? 1 : 0);
    }
    const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc[3]);
    assert_memory_equal(&e->leases[0], &l, sizeof(l));
    e = scan_find(&r, STORE_ROOT, &kr);
    assert_non_null(e);
    assert_int_equal(e->size, lr);
    assert_int_equal(e->nleases, 0);
    e = scan_find(&r, STORE_KV, &kk);
    assert_non_null(e);
    assert_int_equal(e->size, lk);
}

static void test_corrupt_quarantined_at_open(void **state)
{
    struct fx *f = *state;
    struct id kc, kc2, kr, kk;
    size_t lc, lc2, lr, lk;
    char p[256], q[256];
    struct store_open_stats os;

    make_content(20, 3000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    make_content(21, 3000, buf_a, &lc2, &kc2);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc2, buf_a, lc2, 2), 0);
    make_root(20, 1, 8, buf_b, &lr, &kr);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 3), 0);
    make_kv(20, 1, 8, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 4), 0);
    store_close(f->st);
    f->st = NULL;

    path_of(f, STORE_CONTENT, &kc, p, sizeof(p));
    flip_byte(p, 1000);
    path_of(f, STORE_ROOT, &kr, p, sizeof(p));
    flip_byte(p, 40); /* the version: the signature no longer holds */
    path_of(f, STORE_KV, &kk, p, sizeof(p));
    flip_byte(p, 60);
    /* A file with a name that is no key, a block in the wrong fan-out
     * directory, a stray file in blocks/. */
    snprintf(p, sizeof(p), "%s/roots/junk", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("junk", fp);
    fclose(fp);
    char hex[ID_HEX_LEN + 1];
    id_to_hex(&kc2, hex);
    path_of(f, STORE_CONTENT, &kc2, p, sizeof(p));
    snprintf(q, sizeof(q), "%s/blocks/%02x/%s", f->dir, (unsigned)(kc2.b[0] ^ 1), hex);
    assert_int_equal(link(p, q), 0);
    snprintf(q, sizeof(q), "%s/blocks/stray", f->dir);
    assert_int_equal(link(p, q), 0);

    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.checked, 7);
    assert_int_equal(os.quarantined, 6);
    snprintf(p, sizeof(p), "%s/quarantine", f->dir);
    assert_int_equal(count_entries(p), 6);
    assert_int_equal(store_used(f->st), lc2);
    assert_int_equal(store_used(f->st), sum_files(f));
    expect_absent(f, STORE_CONTENT, &kc);
    expect_absent(f, STORE_ROOT, &kr);
    expect_absent(f, STORE_KV, &kk);
    expect_read(f, STORE_CONTENT, &kc2, buf_a, lc2);
    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 1);
    assert_true(id_eq(&r.ents[0].key, &kc2));

    /* Quarantine keeps what it has: the same names again get new ones. */
    store_close(f->st);
    f->st = NULL;
    snprintf(p, sizeof(p), "%s/roots/junk", f->dir);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(fx_open(f), 0);
    snprintf(p, sizeof(p), "%s/quarantine", f->dir);
    assert_int_equal(count_entries(p), 7);
}

static void test_corrupt_quarantined_at_read(void **state)
{
    struct fx *f = *state;
    struct id kc, kr, kk;
    size_t lc, lr, lk;
    char p[256];
    uint8_t *got = NULL;
    size_t len = 0;
    struct store_stats s;

    make_content(30, 200000, buf_a, &lc, &kc);
    make_root(30, 5, 100, buf_b, &lr, &kr);
    make_kv(30, 5, 100, buf_c, &lk, &kk);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_KV, &kk, buf_c, lk, 3), 0);
    for (uint64_t t = 1; t <= 3; t++)
        assert_int_equal(wait_one(f, t), 0);
    assert_int_equal(store_used(f->st), lc + lr + lk);

    path_of(f, STORE_CONTENT, &kc, p, sizeof(p));
    flip_byte(p, 150000);
    assert_int_equal(store_read(f->st, STORE_CONTENT, &kc, &got, &len), -EBADMSG);
    assert_null(got);
    assert_int_equal(file_size(p), -1);
    assert_int_equal(store_used(f->st), lr + lk);
    expect_absent(f, STORE_CONTENT, &kc);

    path_of(f, STORE_ROOT, &kr, p, sizeof(p));
    flip_byte(p, lr - 1); /* the signature */
    assert_int_equal(store_read(f->st, STORE_ROOT, &kr, &got, &len), -EBADMSG);
    path_of(f, STORE_KV, &kk, p, sizeof(p));
    flip_byte(p, lk - 3); /* the checksum */
    assert_int_equal(store_read(f->st, STORE_KV, &kk, &got, &len), -EBADMSG);
    assert_int_equal(store_used(f->st), 0);
    assert_int_equal(sum_files(f), 0);

    store_get_stats(f->st, &s);
    assert_int_equal(s.read_bad, 3);
    snprintf(p, sizeof(p), "%s/quarantine", f->dir);
    assert_int_equal(count_entries(p), 3);

    /* The block comes back from a replica: it is stored again. */
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 4), 0);
    assert_int_equal(wait_one(f, 4), 0);
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
    assert_int_equal(store_used(f->st), lc);
}

static void test_tmp_emptied_at_open(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct store_open_stats os;

    store_close(f->st);
    f->st = NULL;
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof(p), "%s/tmp/%016x", f->dir, i);
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fputs("half a block", fp);
        fclose(fp);
    }
    snprintf(p, sizeof(p), "%s/tmp/leases.log.new", f->dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.tmp_removed, 6);
    snprintf(p, sizeof(p), "%s/tmp", f->dir);
    assert_int_equal(count_entries(p), 0);
    assert_int_equal(store_used(f->st), 0);
}

static void lease_log_path(struct fx *f, char *p, size_t cap)
{
    snprintf(p, cap, "%s/leases.log", f->dir);
}

static void test_lease_torn_tail_cut(void **state)
{
    struct fx *f = *state;
    struct id kc;
    size_t lc;
    struct sig_key k;
    struct lease l[3];
    char p[256];
    struct store_open_stats os;

    make_content(40, 100, buf_a, &lc, &kc);
    make_sig_key(40, &k);
    for (int i = 0; i < 3; i++)
        assert_int_equal(lease_sign(&k, &kc, 10 + (uint64_t)i, 1000, &l[i]), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_lease_append(f->st, &kc, l, 2, 2), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(wait_one(f, 2), 0);
    store_close(f->st);
    f->st = NULL;

    /* A torn append: most of a third record, never finished. */
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), 2 * REC_LEN);
    uint8_t rec[REC_LEN];
    memset(rec, 0, sizeof(rec));
    memcpy(rec, kc.b, ID_BYTES);
    lease_encode(&l[2], rec + ID_BYTES);
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, 100), 100);
    close(fd);

    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, 100);
    assert_int_equal(file_size(p), 2 * REC_LEN);
    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ents[0].nleases, 1); /* one owner: the newer of its two */
    assert_int_equal(r.ents[0].leases[0].stamp_ms, 11);

    /* A whole record of garbage (zeros, as a crash may leave after a size
     * update) is a torn tail too; then appends go on after the cut. */
    store_close(f->st);
    f->st = NULL;
    memset(rec, 0, sizeof(rec));
    fd = open(p, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, REC_LEN), REC_LEN);
    assert_int_equal(write(fd, rec, 7), 7);
    close(fd);
    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, REC_LEN + 7);
    assert_int_equal(store_lease_append(f->st, &kc, &l[2], 1, 3), 0);
    assert_int_equal(wait_one(f, 3), 0);
    fx_reopen(f);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, 0);
    memset(&r, 0, sizeof(r));
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.ents[0].nleases, 1);
    assert_int_equal(r.ents[0].leases[0].stamp_ms, 12);
}

static void test_lease_damaged_middle_record(void **state)
{
    struct fx *f = *state;
    struct id kc;
    size_t lc;
    struct sig_key k[3];
    struct lease l[3];
    char p[256];
    struct store_open_stats os;

    make_content(41, 100, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    for (int i = 0; i < 3; i++) {
        make_sig_key((uint8_t)(50 + i), &k[i]);
        assert_int_equal(lease_sign(&k[i], &kc, 10, 1000, &l[i]), 0);
        assert_int_equal(store_lease_append(f->st, &kc, &l[i], 1, 2 + (uint64_t)i), 0);
    }
    for (uint64_t t = 1; t <= 4; t++)
        assert_int_equal(wait_one(f, t), 0);
    store_close(f->st);
    f->st = NULL;
    lease_log_path(f, p, sizeof(p));
    flip_byte(p, REC_LEN + 60); /* the second record */
    assert_int_equal(fx_open(f), 0);
    store_get_open_stats(f->st, &os);
    assert_int_equal(os.lease_tail_cut, REC_LEN);
    /* The third record, acknowledged after the damaged one, stays. */
    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.ents[0].nleases, 2);
    bool saw0 = false, saw2 = false;
    for (size_t i = 0; i < 2; i++) {
        saw0 |= memcmp(&r.ents[0].leases[i], &l[0], sizeof(l[0])) == 0;
        saw2 |= memcmp(&r.ents[0].leases[i], &l[2], sizeof(l[2])) == 0;
    }
    assert_true(saw0 && saw2);
    /* The log was rewritten without it. */
    assert_int_equal(file_size(p), 2 * REC_LEN);
}

static void test_lease_replay_keeps_newest_and_compacts(void **state)
{
    struct fx *f = *state;
    struct id kc, kc2;
    size_t lc, lc2;
    struct sig_key a, b;
    struct lease la[4], lb[3];
    char p[256];

    make_content(60, 1000, buf_a, &lc, &kc);
    make_content(61, 1000, buf_b, &lc2, &kc2);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc2, buf_b, lc2, 2), 0);
    make_sig_key(60, &a);
    make_sig_key(61, &b);
    /* Owner a: stamps arrive out of order; the highest (30) wins. */
    assert_int_equal(lease_sign(&a, &kc, 10, 500, &la[0]), 0);
    assert_int_equal(lease_sign(&a, &kc, 30, 700, &la[1]), 0);
    assert_int_equal(lease_sign(&a, &kc, 20, 900, &la[2]), 0);
    assert_int_equal(lease_sign(&a, &kc2, 5, 900, &la[3]), 0);
    /* Owner b: a grant and a reclaim of the same instant: the reclaim wins,
     * and an older grant replayed after it does not revive the block. */
    assert_int_equal(lease_sign(&b, &kc, 40, 800, &lb[0]), 0);
    assert_int_equal(lease_sign(&b, &kc, 40, 0, &lb[1]), 0);
    assert_int_equal(lease_sign(&b, &kc, 35, 999, &lb[2]), 0);
    assert_int_equal(store_lease_append(f->st, &kc, la, 3, 3), 0);
    assert_int_equal(store_lease_append(f->st, &kc2, &la[3], 1, 4), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &lb[1], 1, 5), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &lb[0], 1, 6), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &lb[2], 1, 7), 0);
    for (uint64_t t = 1; t <= 7; t++)
        assert_int_equal(wait_one(f, t), 0);
    store_close(f->st);
    f->st = NULL;
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), 7 * REC_LEN);
    assert_int_equal(fx_open(f), 0);

    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc);
    assert_non_null(e);
    assert_int_equal(e->nleases, 2);
    for (size_t i = 0; i < 2; i++) {
        if (memcmp(&e->leases[i].owner, &a.pub, sizeof(a.pub)) == 0)
            assert_memory_equal(&e->leases[i], &la[1], sizeof(la[1]));
        else
            assert_memory_equal(&e->leases[i], &lb[1], sizeof(lb[1]));
    }
    e = scan_find(&r, STORE_CONTENT, &kc2);
    assert_non_null(e);
    assert_int_equal(e->nleases, 1);
    assert_memory_equal(&e->leases[0], &la[3], sizeof(la[3]));
    /* 7 records, 3 live: more than twice, so the log was rewritten. */
    assert_int_equal(file_size(p), 3 * REC_LEN);

    /* Removing a block drops its leases, durably: a block stored again
     * under the same key starts with none. */
    assert_int_equal(store_remove(f->st, STORE_CONTENT, &kc, 8), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 9), 0);
    assert_int_equal(wait_one(f, 8), 0);
    assert_int_equal(wait_one(f, 9), 0);
    fx_reopen(f);
    memset(&r, 0, sizeof(r));
    store_scan(f->st, on_scan, &r);
    e = scan_find(&r, STORE_CONTENT, &kc);
    assert_non_null(e);
    assert_int_equal(e->nleases, 0);
    e = scan_find(&r, STORE_CONTENT, &kc2);
    assert_int_equal(e->nleases, 1);
    /* 3 + tombstone = 4 records, 1 live: rewritten again. */
    assert_int_equal(file_size(p), REC_LEN);
}

/* Renewals pile up while a node runs: the writer compacts the log once it
 * has doubled (and passed 1 MiB), without waiting for a restart. */
static void test_lease_log_compacted_while_running(void **state)
{
    struct fx *f = *state;
    enum { N = 7500 }; /* 7500 records: just over 1 MiB */
    struct id kc;
    size_t lc;
    struct sig_key k;
    struct lease *ls = malloc(N * sizeof(*ls));
    char p[256];

    assert_non_null(ls);
    make_content(62, 10, buf_a, &lc, &kc);
    make_sig_key(62, &k);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(lease_sign(&k, &kc, 100, 1000, &ls[0]), 0);
    for (size_t i = 1; i < N; i++)
        ls[i] = ls[0];
    assert_int_equal(lease_sign(&k, &kc, 101, 1000, &ls[N / 2]), 0); /* the newest */
    assert_int_equal(store_lease_append(f->st, &kc, ls, N, 2), 0);
    assert_int_equal(wait_one(f, 1), 0);
    assert_int_equal(wait_one(f, 2), 0);
    /* The writer compacts after a batch, before it takes the next one. */
    assert_int_equal(store_lease_append(f->st, &kc, NULL, 0, 3), 0);
    assert_int_equal(wait_one(f, 3), 0);
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), REC_LEN);
    /* And appends go on into the new log. */
    assert_int_equal(store_lease_append(f->st, &kc, &ls[0], 1, 4), 0);
    assert_int_equal(wait_one(f, 4), 0);
    assert_int_equal(file_size(p), 2 * REC_LEN);
    fx_reopen(f);
    struct scan_res r = {0};
    store_scan(f->st, on_scan, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ents[0].nleases, 1);
    assert_memory_equal(&r.ents[0].leases[0], &ls[N / 2], sizeof(ls[0]));
    free(ls);
}

/* A reclaimed block leaves its lease records without a file (a tombstone,
 * bs_drop): scan reports them with size 0 so the server keeps refusing a
 * replayed older grant after a restart. */
static void test_scan_reports_tombstones(void **state)
{
    struct fx *f = *state;
    struct id kc, kt;
    size_t lc, lt;
    struct sig_key a;
    struct lease grant, reclaim;

    make_content(70, 500, buf_a, &lc, &kc);
    make_content(71, 500, buf_b, &lt, &kt);
    make_sig_key(70, &a);
    assert_int_equal(lease_sign(&a, &kc, 10, 900, &grant), 0);
    assert_int_equal(lease_sign(&a, &kt, 20, 0, &reclaim), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(store_lease_append(f->st, &kc, &grant, 1, 2), 0);
    /* kt: its block was removed, then its reclaim record appended again. */
    assert_int_equal(store_lease_append(f->st, &kt, &reclaim, 1, 3), 0);
    for (uint64_t t = 1; t <= 3; t++)
        assert_int_equal(wait_one(f, t), 0);
    fx_reopen(f);

    struct scan_res r = {0};
    assert_int_equal(store_scan(f->st, on_scan, &r), 2);
    const struct scan_ent *e = scan_find(&r, STORE_CONTENT, &kc);
    assert_non_null(e);
    assert_int_equal(e->size, lc);
    assert_int_equal(e->nleases, 1);
    e = scan_find(&r, STORE_CONTENT, &kt);
    assert_non_null(e);
    assert_int_equal(e->size, 0);
    assert_int_equal(e->nleases, 1);
    assert_int_equal(e->leases[0].expiry_s, 0);
    assert_int_equal(e->leases[0].stamp_ms, 20);
}

static void test_used_exact(void **state)
{
    struct fx *f = *state;
    struct id keys[40];
    size_t len;

    for (int i = 0; i < 40; i++) {
        make_content((uint32_t)(70 + i), (size_t)(i * 6553 % BLOCK_MAX_DATA), buf_a, &len,
                     &keys[i]);
        assert_int_equal(store_write(f->st, STORE_CONTENT, &keys[i], buf_a, len, (uint64_t)i), 0);
    }
    for (int i = 0; i < 40; i += 3)
        assert_int_equal(store_remove(f->st, STORE_CONTENT, &keys[i], 100 + (uint64_t)i), 0);
    for (int i = 0; i < 20; i++) {
        struct id k;
        make_root((uint8_t)(i % 5), (uint64_t)i + 1, (size_t)i * 40, buf_b, &len, &k);
        assert_int_equal(store_write(f->st, STORE_ROOT, &k, buf_b, len, 200 + (uint64_t)i), 0);
        make_kv((uint8_t)(i % 7), (uint64_t)i, (size_t)i * 900, buf_c, &len, &k);
        assert_int_equal(store_write(f->st, STORE_KV, &k, buf_c, len, 300 + (uint64_t)i), 0);
    }
    struct store_completion c[40 + 14 + 40];
    wait_n(f, c, 40 + 14 + 40);
    for (size_t i = 0; i < 40 + 14 + 40; i++)
        assert_int_equal(c[i].status, 0);
    uint64_t used = store_used(f->st);
    assert_int_equal(used, sum_files(f));
    fx_reopen(f);
    assert_int_equal(store_used(f->st), used);
}

/* Writes queued while the writer is busy go to disk as one batch. The test
 * holds the writer in its wake callback after the first batch (the gate),
 * queues the rest, and lets it go: exactly one more batch takes them all. */
static void test_group_commit(void **state)
{
    struct fx *f = *state;
    enum { N = 100 };
    struct store_completion c[N];
    struct store_stats s;
    size_t len[N];
    struct id key[N];
    uint8_t *blocks = malloc((size_t)N * 64 * 1024 + N * BLOCK_HDR_LEN);

    assert_non_null(blocks);
    for (uint64_t t = 0; t < N; t++)
        make_content((uint32_t)(1000 + t), 64 * 1024, blocks + t * (64 * 1024 + BLOCK_HDR_LEN),
                     &len[t], &key[t]);
    pthread_mutex_lock(&f->gate);
    for (uint64_t t = 0; t < N; t++)
        assert_int_equal(store_write(f->st, STORE_CONTENT, &key[t],
                                     blocks + t * (64 * 1024 + BLOCK_HDR_LEN), len[t], t),
                         0);
    pthread_mutex_unlock(&f->gate);
    wait_n(f, c, N);
    free(blocks);
    for (uint64_t t = 0; t < N; t++) {
        assert_int_equal(c[t].token, t);
        assert_int_equal(c[t].status, 0);
    }
    store_get_stats(f->st, &s);
    print_message("group commit: %llu writes in %llu batches, %llu fsyncs\n",
                  (unsigned long long)s.writes, (unsigned long long)s.batches,
                  (unsigned long long)s.fsyncs);
    assert_int_equal(s.writes, N);
    assert_true(s.batches <= 2);
    /* A file sync per write, and one per directory touched in a batch (the
     * 100 keys fall in fewer than 100 of the 256 fan-out directories). */
    assert_true(s.fsyncs < 2 * s.writes);
}

/* ENOSPC: a 1 MiB tmpfs in a private mount namespace, in a child. */
static int enospc_child(enum store_sync_mode mode)
{
    char mnt[] = "/tmp/coopfs-store-nospc-XXXXXX";
    char dir[96];
    struct logger lg;
    struct fx f;
    int rc = 1;

    if (!mkdtemp(mnt))
        return 77;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        rmdir(mnt);
        return 77;
    }
    memset(&f, 0, sizeof(f));
    f.mode = mode;
    snprintf(dir, sizeof(dir), "%s/store", mnt);
    strcpy(f.dir, dir);
    log_init_silent(&lg);
    f.lg = lg;
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    pthread_mutex_init(&f.gate, NULL);
    if (fx_open(&f) != 0)
        goto out;

    /* Fill the disk: 256 KiB blocks until one is refused. */
    struct id keys[16];
    size_t len, stored = 0;
    int status = 0;
    for (uint32_t i = 0; i < 16 && status == 0; i++) {
        make_content(5000 + i, BLOCK_MAX_DATA, buf_a, &len, &keys[i]);
        if (store_write(f.st, STORE_CONTENT, &keys[i], buf_a, len, i) != 0)
            goto out;
        status = wait_one(&f, i);
        if (status == 0)
            stored++;
    }
    if (status != -ENOSPC || stored == 0 || store_failed(f.st)) {
        fprintf(stderr, "enospc: status %d after %zu blocks\n", status, stored);
        goto out;
    }
    /* The refused write left nothing in tmp/, and used is still exact. */
    char p[160];
    snprintf(p, sizeof(p), "%s/tmp", dir);
    if (count_entries(p) != 0 || store_used(f.st) != stored * len || sum_files(&f) != stored * len)
        goto out;
    /* A lease append that does not fit fails alone, and leaves the log
     * whole: nothing of it stays, and a small one still fits. */
    enum { NL = 2000 }; /* 304,000 bytes: more than the 61 pages left */
    struct lease *ls = calloc(NL, sizeof(*ls));
    struct sig_key k;
    if (!ls)
        goto out;
    make_sig_key(3, &k);
    lease_sign(&k, &keys[1], 1, 1000, &ls[0]);
    for (size_t i = 1; i < NL; i++)
        ls[i] = ls[0];
    status = store_lease_append(f.st, &keys[1], ls, NL, 50) == 0 ? wait_one(&f, 50) : 0;
    free(ls);
    snprintf(p, sizeof(p), "%s/leases.log", dir);
    if (status != -ENOSPC || file_size(p) != 0 || store_failed(f.st)) {
        fprintf(stderr, "enospc: lease append status %d, log %lld bytes\n", status,
                (long long)file_size(p));
        goto out;
    }
    if (store_lease_append(f.st, &keys[1], NULL, 0, 51) != 0 || wait_one(&f, 51) != 0)
        goto out;
    struct lease one;
    lease_sign(&k, &keys[1], 2, 1000, &one);
    if (store_lease_append(f.st, &keys[1], &one, 1, 52) != 0 || wait_one(&f, 52) != 0 ||
        file_size(p) != REC_LEN)
        goto out;
    /* The store goes on: free a block, and a write fits again. */
    if (store_remove(f.st, STORE_CONTENT, &keys[0], 100) != 0 || wait_one(&f, 100) != 0)
        goto out;
    if (store_write(f.st, STORE_CONTENT, &keys[stored], buf_a, len, 101) != 0 ||
        wait_one(&f, 101) != 0)
        goto out;
    uint8_t *got = NULL;
    size_t got_len = 0;
    if (store_read(f.st, STORE_CONTENT, &keys[stored], &got, &got_len) != 0)
        goto out;
    bool same = got_len == len && memcmp(got, buf_a, len) == 0;
    free(got);
    if (!same || store_used(f.st) != stored * len || store_failed(f.st))
        goto out;
    rc = 0;
out:
    store_close(f.st);
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    return rc;
}

static void test_enospc(void **state)
{
    enum store_sync_mode mode = *state ? STORE_SYNC_FILES : STORE_SYNC_FS;
    if (geteuid() != 0) {
        print_message("skipped: the ENOSPC test mounts a 1 MiB tmpfs, which needs root\n");
        skip();
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(enospc_child(mode));
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 77) {
        print_message("skipped: cannot mount a tmpfs in a private mount namespace here\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(ws), 0);
}

/* A rename that fails (an immutable roots/ directory) fails the store: that
 * write and every later one report EIO, and nothing is lost that was
 * acknowledged before. */
static void test_failure_is_fatal(void **state)
{
    struct fx *f = *state;
    struct id kc, kr;
    size_t lc, lr;
    char p[256];
    int fd, flags;

    make_content(80, 1000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(wait_one(f, 1), 0);

    snprintf(p, sizeof(p), "%s/roots", f->dir);
    fd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) {
        close(fd);
        print_message("skipped: no immutable flag on this file system (%s)\n", strerror(errno));
        skip();
    }
    int iflags = flags | FS_IMMUTABLE_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &iflags) != 0) {
        close(fd);
        print_message("skipped: cannot set the immutable flag (%s)\n", strerror(errno));
        skip();
    }
    make_root(80, 1, 8, buf_b, &lr, &kr);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 3), 0);
    int s2 = wait_one(f, 2), s3 = wait_one(f, 3);
    ioctl(fd, FS_IOC_SETFLAGS, &flags);
    close(fd);
    assert_int_equal(s2, -EIO);
    assert_int_equal(s3, -EIO);
    assert_true(store_failed(f->st));
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 4), -EIO);
    assert_int_equal(store_remove(f->st, STORE_CONTENT, &kc, 4), -EIO);
    assert_int_equal(store_lease_append(f->st, &kc, NULL, 0, 4), -EIO);
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);

    /* A restart finds the acknowledged block and an empty tmp/. */
    fx_reopen(f);
    assert_false(store_failed(f->st));
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
    expect_absent(f, STORE_ROOT, &kr);
    snprintf(p, sizeof(p), "%s/tmp", f->dir);
    assert_int_equal(count_entries(p), 0);
    assert_int_equal(store_used(f->st), lc);
}

static void test_open_creates_layout(void **state)
{
    struct fx *f = *state;
    char p[256];
    struct stat sb;
    static const char *const subs[] = {"blocks", "blocks/00",  "blocks/ff", "roots",
                                       "kv",     "quarantine", "tmp"};

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, subs[i]);
        assert_int_equal(stat(p, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 0777, 0700);
    }
    snprintf(p, sizeof(p), "%s/blocks", f->dir);
    assert_int_equal(count_entries(p), 256);
    lease_log_path(f, p, sizeof(p));
    assert_int_equal(file_size(p), 0);
    /* A nested path is made as mkdir -p would. */
    struct store *st2;
    struct store_config cfg = {.dir = p, .no_sync = 1};
    snprintf(p, sizeof(p), "%s/a/b/c", f->root);
    assert_int_equal(store_open(&cfg, NULL, &st2), 0);
    store_close(st2);
    store_close(NULL);
    /* A path that cannot be a directory is refused. */
    snprintf(p, sizeof(p), "%s/leases.log/x", f->dir);
    assert_true(store_open(&cfg, NULL, &st2) < 0);
}

static void test_no_sync_mode(void **state)
{
    struct fx *f = *state;
    struct store_stats s;
    struct id kc;
    size_t lc;

    store_close(f->st);
    f->st = NULL;
    f->no_sync = 1;
    assert_int_equal(fx_open(f), 0);
    make_content(90, 1000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(wait_one(f, 1), 0);
    store_get_stats(f->st, &s);
    assert_int_equal(s.fsyncs, 0);
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
}

static int files_mode = 1;

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_read_each_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completions_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_reopen_and_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_quarantined_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_quarantined_at_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmp_emptied_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_torn_tail_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_damaged_middle_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_replay_keeps_newest_and_compacts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_log_compacted_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_used_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_reports_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_fatal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_sync_mode, setup, teardown),
        cmocka_unit_test_prestate(test_enospc, NULL),
        /* The same with per-file barriers. */
        cmocka_unit_test_setup_teardown(test_write_read_each_type, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_completions_in_order, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_durable_reopen_and_scan, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_lease_replay_keeps_newest_and_compacts, setup_files,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_log_compacted_while_running, setup_files,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_used_exact, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup_files, teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_fatal, setup_files, teardown),
        cmocka_unit_test_prestate(test_enospc, &files_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
