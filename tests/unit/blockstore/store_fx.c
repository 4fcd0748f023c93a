/* store_fx.c — the fixture shared by the local store tests (see store_fx.h). */
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
#include "store_fx.h"


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

void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fx_open(struct fx *f)
{
    struct store_config cfg = {
        .dir = f->dir, .wake = on_wake, .wake_ctx = f, .no_sync = f->no_sync};
    int err = store_open(&cfg, &f->lg, &f->st);
    if (err == 0)
        store_set_sync_mode(f->st, f->mode);
    return err;
}

void fx_reopen(struct fx *f)
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
int setup(void **state)
{
    return setup_mode(state, STORE_SYNC_FS);
}

/* fdatasync/fsync barriers, file by file and directory by directory. */
int setup_files(void **state)
{
    return setup_mode(state, STORE_SYNC_FILES);
}

int teardown(void **state)
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
void wait_n(struct fx *f, struct store_completion *out, size_t n)
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
int wait_one(struct fx *f, uint64_t token)
{
    struct store_completion c;
    wait_n(f, &c, 1);
    assert_int_equal(c.token, token);
    return c.status;
}

/* ---- records to store ---- */

void make_content(uint32_t seed, size_t len, uint8_t *out, size_t *out_len, struct id *key)
{
    uint8_t *data = malloc(len ? len : 1);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
    assert_int_equal(block_encode(BLOCK_KIND_DATA, data, len, false, out, out_len, key), 0);
    free(data);
}

void make_sig_key(uint8_t n, struct sig_key *k)
{
    uint8_t seed[SIG_SEED_LEN];
    memset(seed, n, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, k), 0);
}

void make_root(uint8_t who, uint64_t version, size_t plen, uint8_t *out, size_t *out_len,
               struct id *key)
{
    struct sig_key k;
    uint8_t payload[ROOT_MAX_PAYLOAD];
    make_sig_key(who, &k);
    memset(payload, (int)version, plen);
    assert_int_equal(root_encode(&k, version, payload, plen, out, out_len), 0);
    root_key(&k.pub, key);
}

void make_kv(uint8_t n, uint64_t stamp, size_t vlen, uint8_t *out, size_t *out_len,
             struct id *key)
{
    uint8_t value[KV_MAX_VALUE];
    memset(key, 0, sizeof(*key));
    key->b[0] = n;
    key->b[31] = 0x5a;
    memset(value, (int)stamp, vlen);
    assert_int_equal(kv_encode(key, stamp, 1893456000, 3, value, vlen, out, out_len), 0);
}

void path_of(struct fx *f, enum store_type type, const struct id *key, char *out, size_t cap)
{
    char hex[ID_HEX_LEN + 1];
    id_to_hex(key, hex);
    if (type == STORE_CONTENT)
        snprintf(out, cap, "%s/blocks/%.2s/%s", f->dir, hex, hex);
    else
        snprintf(out, cap, "%s/%s/%s", f->dir, type == STORE_ROOT ? "roots" : "kv", hex);
}

void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

size_t count_entries(const char *path)
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
uint64_t sum_files(struct fx *f)
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

off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

void expect_read(struct fx *f, enum store_type type, const struct id *key,
                 const uint8_t *want, size_t want_len)
{
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(store_read(f->st, type, key, &got, &len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
}

void expect_absent(struct fx *f, enum store_type type, const struct id *key)
{
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(store_read(f->st, type, key, &got, &len), -ENOENT);
}

void on_scan(void *ctx, enum store_type type, const struct id *key, uint32_t size,
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

const struct scan_ent *scan_find(const struct scan_res *r, enum store_type type,
                                 const struct id *key)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->ents[i].type == type && id_eq(&r->ents[i].key, key))
            return &r->ents[i];
    }
    return NULL;
}

/* ---- tests ---- */

uint8_t buf_a[BLOCK_MAX_STORED], buf_b[BLOCK_MAX_STORED], buf_c[KV_MAX_LEN];

void lease_log_path(struct fx *f, char *p, size_t cap)
{
    snprintf(p, cap, "%s/leases.log", f->dir);
}
