/* test_store_crash.c — kill a writer at random points, restart, and find
 * only complete, valid blocks (blockstore/store*.c).
 *
 * Each round forks a child that opens the store and, as fast as it can,
 * writes content blocks of random sizes up to BLOCK_MAX_STORED, root blocks
 * of rising versions, lease records and removals, with up to 32 operations
 * in flight, with syncfs() or per-file barriers (by round). Before it queues an operation it tells
 * the parent (an intent), and when the completion comes it tells the parent again (an ack). The
 * parent SIGKILLs the child after a random delay (0-300 ms), reopens the
 * store itself and checks it against what it was told:
 *   - open found nothing to quarantine (a partial file would fail its
 *     check) and left tmp/ empty;
 *   - every acknowledged block is there and valid, every block there was at
 *     least intended, and an acknowledged removal stays removed;
 *   - a root block is never older than its last acknowledged version, nor
 *     newer than any version ever sent;
 *   - every acknowledged lease is there (or a newer one of its owner), and
 *     every lease reported verifies;
 *   - used is the sum of the sizes reported, and of the files on disk.
 * After a check, what the disk holds becomes the state later rounds must
 * not lose. Every fourth round or so the parent kills the child within
 * 20 ms and does not check, so the next child starts on a store whose
 * recovery (tmp/ cleanup, lease-log cut and rewrite) was itself cut short.
 * All rounds share one directory.
 *
 * What this does not test: SIGKILL kills a process, not the machine. The
 * page cache survives, so a write() that returned is on "disk" here whether
 * or not it was fsynced. Power loss is covered by the fsync discipline, not
 * by this test: file data fdatasynced before the rename, the directory
 * fsynced before the completion, the lease log fdatasynced before its
 * completion (store.c), each checked by code review and by the unit tests'
 * fsync counts; a power-cut test needs a VM or dm-log-writes.
 *
 * The seed (COOPFS_SEED to set it) fixes the sizes, the operations and the
 * kill delays; the instant the kill lands still depends on the machine's
 * speed, so a failure is replayed in kind, not to the byte.
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
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockstore/block.h"
#include "blockstore/store.h"
#include "blockstore/store_int.h" /* store_set_sync_mode: both barrier forms */
#include "common/log.h"

#define ROUNDS      30
#define MAX_KILL_MS 300
#define TIME_BUDGET 40.0 /* seconds: stop early rather than pass 60 */
#define NROOTS      4
#define NOWNERS     2
#define IN_FLIGHT   32
#define MODEL_SLOTS (1u << 17)
#define LIVE_TARGET 250 /* content blocks the child aims to keep */

/* ---- deterministic randomness ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- keys shared by parent and child ---- */

static struct sig_key root_keys[NROOTS], owner_keys[NOWNERS];
static struct id root_ids[NROOTS];

static int keys_init(void)
{
    uint8_t seed[SIG_SEED_LEN];
    for (int i = 0; i < NROOTS; i++) {
        memset(seed, 0x10 + i, sizeof(seed));
        if (sig_key_from_seed(seed, &root_keys[i]) != 0)
            return -1;
        root_key(&root_keys[i].pub, &root_ids[i]);
    }
    for (int i = 0; i < NOWNERS; i++) {
        memset(seed, 0x20 + i, sizeof(seed));
        if (sig_key_from_seed(seed, &owner_keys[i]) != 0)
            return -1;
    }
    return 0;
}

/* ---- the child's reports ---- */

enum { MSG_INTENT = 1, MSG_ACK = 2, MSG_FAIL = 3 };
enum { OP_CONTENT = 1, OP_ROOT = 2, OP_LEASE = 3, OP_REMOVE = 4 };

struct msg {
    uint8_t kind, op, who, pad;
    int32_t status;
    uint32_t len;
    uint32_t pad2;
    uint64_t val; /* root version, lease stamp */
    struct id key;
};

/* ---- the child ---- */

struct child {
    struct store *st;
    int out; /* the pipe to the parent */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t wakes;                /* protected by lock */
    struct msg pending[IN_FLIGHT]; /* acks to send, in queue order */
    size_t head, count;
    uint64_t token;
    struct id *cands; /* content blocks it may remove or lease */
    size_t ncands, capcands;
    uint64_t root_ver[NROOTS];
    uint64_t stamp;
};

static void child_wake(void *ctx)
{
    struct child *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->wakes++;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void child_send(struct child *c, const struct msg *m)
{
    /* A pipe write of at most PIPE_BUF bytes is atomic. */
    if (write(c->out, m, sizeof(*m)) != (ssize_t)sizeof(*m))
        _exit(3);
}

static void child_fail(struct child *c, int status)
{
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.kind = MSG_FAIL;
    m.status = status;
    child_send(c, &m);
    _exit(2);
}

static void cand_add(struct child *c, const struct id *key)
{
    if (c->ncands == c->capcands) {
        c->capcands = c->capcands ? 2 * c->capcands : 256;
        c->cands = realloc(c->cands, c->capcands * sizeof(*c->cands));
        if (!c->cands)
            child_fail(c, -ENOMEM);
    }
    c->cands[c->ncands++] = *key;
}

static void on_child_scan(void *ctx, enum store_type type, const struct id *key, uint32_t size,
                          const struct lease *leases, size_t nleases)
{
    (void)size;
    (void)leases;
    (void)nleases;
    if (type == STORE_CONTENT)
        cand_add(ctx, key);
}

/* Collects completions; with block, waits for at least one. */
static void child_reap(struct child *c, bool block)
{
    struct store_completion comp[IN_FLIGHT];
    for (;;) {
        uint64_t seen;
        pthread_mutex_lock(&c->lock);
        seen = c->wakes;
        pthread_mutex_unlock(&c->lock);
        size_t n = store_poll(c->st, comp, IN_FLIGHT);
        for (size_t i = 0; i < n; i++) {
            struct msg *m = &c->pending[c->head];
            if (c->count == 0 || comp[i].token != c->token - c->count)
                child_fail(c, -EPROTO); /* out of order */
            if (comp[i].status != 0)
                child_fail(c, comp[i].status);
            m->kind = MSG_ACK;
            child_send(c, m);
            c->head = (c->head + 1) % IN_FLIGHT;
            c->count--;
        }
        if (n > 0 || !block)
            return;
        pthread_mutex_lock(&c->lock);
        while (c->wakes == seen)
            pthread_cond_wait(&c->cond, &c->lock);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Tells the parent, then remembers the message to ack. */
static uint64_t child_intent(struct child *c, struct msg *m)
{
    m->kind = MSG_INTENT;
    child_send(c, m);
    c->pending[(c->head + c->count) % IN_FLIGHT] = *m;
    c->count++;
    return c->token++;
}

static void child_run(int out, const char *dir, uint64_t seed)
{
    static uint8_t data[BLOCK_MAX_DATA], block[BLOCK_MAX_STORED];
    struct store_config cfg = {.dir = dir, .wake = child_wake};
    struct child c;
    uint64_t rng = seed;
    int err;

    memset(&c, 0, sizeof(c));
    c.out = out;
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    cfg.wake_ctx = &c;
    err = store_open(&cfg, NULL, &c.st);
    if (err)
        child_fail(&c, err);
    store_set_sync_mode(c.st, seed & 1 ? STORE_SYNC_FILES : STORE_SYNC_FS);
    store_scan(c.st, on_child_scan, &c);
    for (int r = 0; r < NROOTS; r++) {
        uint8_t *b;
        size_t len;
        struct root_info ri;
        if (store_read(c.st, STORE_ROOT, &root_ids[r], &b, &len) == 0) {
            if (root_parse(b, len, &ri) == 0)
                c.root_ver[r] = ri.version;
            free(b);
        }
    }
    c.stamp = seed & 0xffffffffu; /* leases: stamps rise within a round */

    for (;;) {
        struct msg m;
        uint64_t pick = rng_next(&rng) % 100;
        bool crowded = c.ncands > LIVE_TARGET;
        unsigned w_content = crowded ? 30 : 50, w_remove = crowded ? 40 : 10, w_root = 10;

        while (c.count >= IN_FLIGHT)
            child_reap(&c, true);
        child_reap(&c, false);
        memset(&m, 0, sizeof(m));
        if (pick < w_content) {
            size_t n = 16 + (size_t)(rng_next(&rng) % (BLOCK_MAX_DATA - 15)), len;
            uint64_t x = rng_next(&rng);
            for (size_t i = 0; i + 8 <= n; i += 8) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                memcpy(data + i, &x, 8);
            }
            memset(data + (n & ~(size_t)7), 0x5a, n & 7);
            /* Every block distinct: the parent's model follows one key
             * through one life (written, maybe removed), never two. */
            memcpy(data, &seed, 8);
            memcpy(data + 8, &c.token, 8);
            if (block_encode(BLOCK_KIND_DATA, data, n, false, block, &len, &m.key) != 0)
                child_fail(&c, -EINVAL);
            m.op = OP_CONTENT;
            m.len = (uint32_t)len;
            uint64_t t = child_intent(&c, &m);
            if ((err = store_write(c.st, STORE_CONTENT, &m.key, block, len, t)) != 0)
                child_fail(&c, err);
            cand_add(&c, &m.key);
        } else if (pick < w_content + w_remove) {
            if (c.ncands == 0)
                continue;
            size_t i = (size_t)(rng_next(&rng) % c.ncands);
            m.op = OP_REMOVE;
            m.key = c.cands[i];
            c.cands[i] = c.cands[--c.ncands];
            uint64_t t = child_intent(&c, &m);
            if ((err = store_remove(c.st, STORE_CONTENT, &m.key, t)) != 0)
                child_fail(&c, err);
        } else if (pick < w_content + w_remove + w_root) {
            int r = (int)(rng_next(&rng) % NROOTS);
            uint8_t payload[64];
            size_t plen = (size_t)(rng_next(&rng) % sizeof(payload)), len;
            memset(payload, (int)c.root_ver[r], plen);
            m.op = OP_ROOT;
            m.who = (uint8_t)r;
            m.val = ++c.root_ver[r];
            m.key = root_ids[r];
            if (root_encode(&root_keys[r], m.val, payload, plen, block, &len) != 0)
                child_fail(&c, -EINVAL);
            m.len = (uint32_t)len;
            uint64_t t = child_intent(&c, &m);
            if ((err = store_write(c.st, STORE_ROOT, &m.key, block, len, t)) != 0)
                child_fail(&c, err);
        } else {
            /* A lease renewal: the same owner again and again on few
             * blocks, so the log fills with dead records and open rewrites
             * it. */
            if (c.ncands == 0)
                continue;
            struct lease l;
            size_t i = (size_t)(rng_next(&rng) % (c.ncands < 16 ? c.ncands : 16));
            int o = (int)(rng_next(&rng) % NOWNERS);
            m.op = OP_LEASE;
            m.who = (uint8_t)o;
            m.key = c.cands[c.ncands - 1 - i];
            m.val = ++c.stamp;
            if (lease_sign(&owner_keys[o], &m.key, m.val, 2000000000, &l) != 0)
                child_fail(&c, -EINVAL);
            uint64_t t = child_intent(&c, &m);
            if ((err = store_lease_append(c.st, &m.key, &l, 1, t)) != 0)
                child_fail(&c, err);
        }
    }
}

/* ---- the parent's model ---- */

enum { ST_EMPTY = 0, ST_WRITING, ST_PRESENT, ST_REMOVING, ST_GONE, ST_SEEN };

struct blk {
    struct id key;
    uint8_t state;
    uint32_t len;
    uint64_t lease[NOWNERS]; /* the highest acknowledged stamp, 0 = none */
};

struct model {
    struct blk *slots; /* open addressing on the key's first bytes */
    size_t nblk;
    uint64_t root_acked[NROOTS], root_max[NROOTS];
    uint64_t acks, intents;
};

static struct blk *model_find(struct model *md, const struct id *key, bool add)
{
    uint64_t h;
    memcpy(&h, key->b, sizeof(h));
    for (size_t i = 0; i < MODEL_SLOTS; i++) {
        struct blk *b = &md->slots[(h + i) & (MODEL_SLOTS - 1)];
        if (b->state == ST_EMPTY) {
            if (!add)
                return NULL;
            assert_true(md->nblk < MODEL_SLOTS / 2);
            b->key = *key;
            md->nblk++;
            return b;
        }
        if (id_eq(&b->key, key))
            return b;
    }
    return NULL;
}

static void model_apply(struct model *md, const struct msg *m)
{
    struct blk *b;

    if (m->kind == MSG_FAIL)
        fail_msg("the child failed with status %d (%s)", m->status, strerror(-m->status));
    if (m->kind == MSG_INTENT)
        md->intents++;
    else
        md->acks++;
    switch (m->op) {
    case OP_CONTENT:
        b = model_find(md, &m->key, true);
        b->len = m->len;
        /* A removal may be queued before the write's ack arrives: then
         * the ack no longer promises that the block is there. */
        if (m->kind == MSG_INTENT)
            b->state = ST_WRITING;
        else if (b->state == ST_WRITING)
            b->state = ST_PRESENT;
        break;
    case OP_REMOVE:
        b = model_find(md, &m->key, false);
        assert_non_null(b); /* only blocks it wrote or found are removed */
        b->state = m->kind == MSG_INTENT ? ST_REMOVING : ST_GONE;
        break;
    case OP_ROOT:
        if (m->kind == MSG_INTENT && m->val > md->root_max[m->who])
            md->root_max[m->who] = m->val;
        if (m->kind == MSG_ACK && m->val > md->root_acked[m->who])
            md->root_acked[m->who] = m->val;
        break;
    case OP_LEASE:
        if (m->kind == MSG_ACK) {
            b = model_find(md, &m->key, false);
            assert_non_null(b);
            if (m->val > b->lease[m->who])
                b->lease[m->who] = m->val;
        }
        break;
    default: fail_msg("bad message op %u", m->op);
    }
}

/* ---- the check ---- */

struct seen {
    struct model *md;
    uint64_t sum;
    size_t content, leases;
};

static void on_check_scan(void *ctx, enum store_type type, const struct id *key, uint32_t size,
                          const struct lease *leases, size_t nleases)
{
    struct seen *s = ctx;
    s->sum += size;
    if (type == STORE_ROOT) {
        bool known = false;
        for (int r = 0; r < NROOTS; r++)
            known |= id_eq(key, &root_ids[r]);
        assert_true(known);
        return;
    }
    assert_int_equal(type, STORE_CONTENT);
    if (size == 0) {
        /* Lease records whose block has no file (its write never finished,
         * or it was removed and leases came after): reported for the block
         * server's tombstones. The records must still be whole. */
        for (size_t i = 0; i < nleases; i++)
            assert_true(lease_verify(&leases[i], key));
        return;
    }
    s->content++;
    struct blk *b = model_find(s->md, key, false);
    if (!b || b->state == ST_GONE) {
        char hex[ID_HEX_LEN + 1];
        id_to_hex(key, hex);
        fail_msg("block %s is on disk but was %s", hex,
                 b ? "acknowledged as removed" : "never written");
    }
    assert_int_equal(size, b->len);
    for (size_t i = 0; i < nleases; i++)
        assert_true(lease_verify(&leases[i], key)); /* never a torn record */
    s->leases += nleases;
    /* A removal in flight (REMOVING) may have dropped the leases; nothing
     * acknowledged a lease on a block still being written (WRITING). */
    for (int o = 0; o < NOWNERS && b->state == ST_PRESENT; o++) {
        bool ok = b->lease[o] == 0;
        for (size_t i = 0; i < nleases && !ok; i++)
            ok = memcmp(&leases[i].owner, &owner_keys[o].pub, sizeof(struct sig_pub)) == 0 &&
                 leases[i].stamp_ms >= b->lease[o];
        if (!ok)
            fail_msg("an acknowledged lease of owner %d (stamp %" PRIu64 ") is missing", o,
                     b->lease[o]);
    }
    b->state = ST_SEEN; /* on disk: PRESENT again after the check */
}

static int sum_disk_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw);
static uint64_t disk_sum;
static int sum_disk_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        disk_sum += (uint64_t)sb->st_size;
    return 0;
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

static void check_store(const char *dir, struct model *md, struct store_open_stats *os_out)
{
    struct store_config cfg = {.dir = dir};
    struct logger lg;
    struct store *st;
    struct seen s = {.md = md};
    char p[256];

    log_init(&lg, stderr, LOG_ERROR);
    assert_int_equal(store_open(&cfg, &lg, &st), 0);
    store_get_open_stats(st, os_out);
    assert_int_equal(os_out->quarantined, 0); /* no partial or damaged file */
    snprintf(p, sizeof(p), "%s/quarantine", dir);
    assert_int_equal(count_entries(p), 0);
    snprintf(p, sizeof(p), "%s/tmp", dir);
    assert_int_equal(count_entries(p), 0);

    store_scan(st, on_check_scan, &s);
    /* Every block acknowledged and not being removed is there. */
    for (size_t i = 0; i < MODEL_SLOTS; i++) {
        struct blk *b = &md->slots[i];
        if (b->state == ST_SEEN) {
            b->state = ST_PRESENT;
            uint8_t *bytes;
            size_t len;
            assert_int_equal(store_read(st, STORE_CONTENT, &b->key, &bytes, &len), 0);
            assert_int_equal(len, b->len);
            free(bytes);
            continue;
        }
        if (b->state == ST_PRESENT) {
            char hex[ID_HEX_LEN + 1];
            id_to_hex(&b->key, hex);
            fail_msg("acknowledged block %s is missing", hex);
        }
        /* What the disk holds now is the state to keep: an unfinished
         * write that did not land never appears later. */
        if (b->state == ST_WRITING || b->state == ST_REMOVING)
            b->state = ST_GONE;
    }
    for (int r = 0; r < NROOTS; r++) {
        uint8_t *bytes;
        size_t len;
        struct root_info ri;
        int rc = store_read(st, STORE_ROOT, &root_ids[r], &bytes, &len);
        if (rc == -ENOENT) {
            assert_int_equal(md->root_acked[r], 0);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(root_verify(&root_ids[r], bytes, len, &ri), 0);
        free(bytes);
        if (ri.version < md->root_acked[r] || ri.version > md->root_max[r])
            fail_msg("root %d: version %" PRIu64 " on disk, acknowledged %" PRIu64
                     ", highest sent %" PRIu64,
                     r, ri.version, md->root_acked[r], md->root_max[r]);
        md->root_acked[r] = ri.version;
    }
    assert_int_equal(store_used(st), s.sum);
    disk_sum = 0;
    const char *subs[] = {"blocks", "roots", "kv"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
        nftw(p, sum_disk_one, 16, FTW_PHYS);
    }
    assert_int_equal(disk_sum, s.sum);
    store_close(st);
}

/* ---- the rounds ---- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Reads the child's reports until the deadline (then kills it) or its end. */
static int run_round(const char *dir, uint64_t seed, double kill_after, struct model *md)
{
    int fds[2];
    uint8_t carry[sizeof(struct msg) * 256];
    size_t have = 0;
    bool killed = false;
    int ws;

    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_run(fds[1], dir, seed);
        _exit(0);
    }
    close(fds[1]);
    double deadline = now_s() + kill_after;
    for (;;) {
        int timeout = -1;
        if (!killed) {
            double left = deadline - now_s();
            if (left <= 0) {
                kill(pid, SIGKILL);
                killed = true;
            } else {
                timeout = (int)(left * 1000) + 1;
            }
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int rc = poll(&pfd, 1, killed ? -1 : timeout);
        if (rc < 0 && errno == EINTR)
            continue;
        assert_true(rc >= 0);
        if (rc == 0)
            continue;
        ssize_t n = read(fds[0], carry + have, sizeof(carry) - have);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break; /* the child is gone: everything it said is here */
        have += (size_t)n;
        size_t used = 0;
        while (have - used >= sizeof(struct msg)) {
            struct msg m;
            memcpy(&m, carry + used, sizeof(m));
            model_apply(md, &m);
            used += sizeof(m);
        }
        memmove(carry, carry + used, have - used);
        have -= used;
    }
    close(fds[0]);
    assert_int_equal(have, 0);
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    if (!(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL))
        fail_msg("the child ended by itself (status %#x)", ws);
    return 0;
}

static void test_crash_rounds(void **state)
{
    (void)state;
    char root[] = "/tmp/coopfs-store-crash-XXXXXX", dir[96];
    const char *env = getenv("COOPFS_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    uint64_t rng = seed;
    struct model md;
    double t0 = now_s();
    int rounds = 0, checks = 0;

    print_message("store crash test: seed %" PRIu64 " (COOPFS_SEED=%" PRIu64 " replays it)\n", seed,
                  seed);
    assert_int_equal(keys_init(), 0);
    memset(&md, 0, sizeof(md));
    md.slots = calloc(MODEL_SLOTS, sizeof(*md.slots));
    assert_non_null(md.slots);
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof(dir), "%s/store", root);

    for (int i = 0; i < ROUNDS && now_s() - t0 < TIME_BUDGET; i++) {
        bool recovery_crash = i + 1 < ROUNDS && rng_next(&rng) % 4 == 0;
        double ms = recovery_crash ? (double)(rng_next(&rng) % 21)
                                   : (double)(rng_next(&rng) % (MAX_KILL_MS + 1));
        uint64_t child_seed = rng_next(&rng);
        uint64_t acks0 = md.acks;
        struct store_open_stats os = {0};

        run_round(dir, child_seed, ms / 1000.0, &md);
        rounds++;
        if (!recovery_crash) {
            check_store(dir, &md, &os);
            checks++;
        }
        print_message("round %2d: killed after %3.0f ms, %5" PRIu64 " acks%s; open: %" PRIu64
                      " files, %" PRIu64 " tmp removed, %" PRIu64 " lease bytes cut\n",
                      i, ms, md.acks - acks0, recovery_crash ? " (not checked)" : "", os.checked,
                      os.tmp_removed, os.lease_tail_cut);
    }
    if (checks == 0 || rounds > checks) {
        struct store_open_stats os;
        check_store(dir, &md, &os);
        checks++;
    }
    print_message("store crash test: %d rounds, %d checks, %" PRIu64 " intents, %" PRIu64
                  " acks, %zu blocks known, %.1f s\n",
                  rounds, checks, md.intents, md.acks, md.nblk, now_s() - t0);
    assert_true(md.acks > 0);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(md.slots);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
