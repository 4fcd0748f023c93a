/* past.c — PAST's interface without a mount: coopfs insert, lookup,
 * reclaim and renew, over the control socket of a running node.
 *
 * insert splits a file into 256 KiB chunks, encodes them (zstd when it
 * pays, SHA-256, a signed lease) on worker threads, stores them with at
 * most --parallel puts in flight, then stores the file's manifest tree
 * (block.h) and prints the file's key alone on the last line of standard
 * output. lookup fetches the manifest and every chunk, verifies each
 * against its key and writes the exact bytes. reclaim and renew send a
 * signed lease record (expiry 0, or a later expiry) for every block of the
 * file to its holders.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blockstore/block.h"
#include "blockstore/bs.h"
#include "net/control.h"
#include "tools/cmd.h"
#include "tools/keys.h"

#define CHUNK          BLOCK_MAX_DATA
#define WINDOW_DEFAULT 16 /* puts or gets in flight */
#define WINDOW_MAX     256
#define LEASE_WINDOW   128 /* lease updates in flight */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- progress bar (standard error, only on a terminal) -------------------- */

struct progress {
    bool on;
    const char *what;
    uint64_t total;
    double start, last;
};

static void progress_init(struct progress *p, const char *what, uint64_t total)
{
    p->on = isatty(STDERR_FILENO);
    p->what = what;
    p->total = total;
    p->start = mono_s();
    p->last = 0;
}

static void progress_show(struct progress *p, uint64_t done, bool final)
{
    double now = mono_s();
    if (!p->on || (!final && now - p->last < 0.1))
        return;
    p->last = now;
    double secs = now - p->start > 1e-6 ? now - p->start : 1e-6;
    double mib = (double)done / 1048576.0;
    unsigned pct = p->total ? (unsigned)(done * 100 / p->total) : 100;
    unsigned bar = pct * 30 / 100;
    char b[31];
    memset(b, '#', bar);
    memset(b + bar, '.', 30 - bar);
    b[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3u%% %.1f of %.1f MiB  %.1f MiB/s ", p->what, b, pct, mib,
            (double)p->total / 1048576.0, mib / secs);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* --- one reply of a block operation ---------------------------------------- */

/* Turns a call's outcome into 0 or an error, printing why. */
static int bs_outcome(const char *prog, const char *what, int status, const uint8_t *p, size_t len,
                      struct ctl_bs_reply *out, struct ctl_client *c)
{
    struct ctl_bs_reply r;

    if (status) {
        const char *detail = c ? ctl_client_error(c) : "";
        fprintf(stderr, "%s: %s: %s%s%s\n", prog, what,
                status == -ECONNRESET ? "the node closed the connection" : bs_strerror(status),
                *detail ? ": " : "", detail);
        return status;
    }
    if (ctl_bs_reply_decode(p, len, &r) < 0) {
        fprintf(stderr, "%s: %s: the node's reply does not decode\n", prog, what);
        return -EBADMSG;
    }
    if (r.status) {
        fprintf(stderr, "%s: %s: %s\n", prog, what, r.reason[0] ? r.reason : bs_strerror(r.status));
        return r.status;
    }
    if (out)
        *out = r;
    return 0;
}

/* --- synchronous get of one content block ------------------------------------ */

struct get_wait {
    const char *prog;
    struct ctl_client *c;
    struct id key;
    bool done;
    int rc;
    uint8_t *payload; /* inflated */
    size_t len;
};

static void get_one_done(void *ctx, int status, uint16_t type, const uint8_t *p, size_t len)
{
    struct get_wait *w = ctx;
    struct ctl_bs_reply r;
    char hex[ID_HEX_LEN + 1], what[100];
    (void)type;

    w->done = true;
    id_to_hex(&w->key, hex);
    snprintf(what, sizeof(what), "block %.16s", hex);
    w->rc = bs_outcome(w->prog, what, status, p, len, &r, w->c);
    if (w->rc)
        return;
    /* The node verified it; so do we: the key is all we trust. */
    if (block_verify(&w->key, r.bytes, r.len) < 0) {
        fprintf(stderr, "%s: %s does not match its key\n", w->prog, what);
        w->rc = BS_ERR_BAD_BLOCK;
        return;
    }
    w->payload = malloc(BLOCK_MAX_DATA ? BLOCK_MAX_DATA : 1);
    if (!w->payload) {
        w->rc = -ENOMEM;
        return;
    }
    w->rc = block_decode(r.bytes, r.len, w->payload, BLOCK_MAX_DATA, &w->len);
    if (w->rc) {
        fprintf(stderr, "%s: %s does not decode\n", w->prog, what);
        free(w->payload);
        w->payload = NULL;
    }
}

static int get_one(const char *prog, struct ctl_client *c, const struct id *key, uint8_t **payload,
                   size_t *len)
{
    struct get_wait w = {.prog = prog, .c = c, .key = *key};
    uint8_t req[64];
    size_t rl = ctl_block_get_encode(STORE_CONTENT, key, req, sizeof(req));
    int rc = ctl_client_call(c, CTL_MSG_BLOCK_GET, req, rl, get_one_done, &w);

    if (rc)
        return rc;
    while (!w.done)
        if (ctl_client_wait(c) < 0 && !w.done)
            return -ECONNRESET;
    if (w.rc)
        return w.rc;
    *payload = w.payload;
    *len = w.len;
    return 0;
}

/* --- the manifest tree ------------------------------------------------------- */

struct tree {
    uint64_t size;
    uint32_t chunk_size;
    struct id *chunks; /* in file order */
    size_t nchunks;
    struct id *meta; /* the FILE block and every indirect block */
    size_t nmeta;
};

static void tree_release(struct tree *t)
{
    free(t->chunks);
    free(t->meta);
}

static int push_id(struct id **v, size_t *n, const uint8_t *raw)
{
    if ((*n & (*n - 1)) == 0 || *n == 0) {
        size_t cap = *n ? *n * 2 : 16;
        struct id *nv = realloc(*v, cap * sizeof(**v));
        if (!nv)
            return -ENOMEM;
        *v = nv;
    }
    memcpy((*v)[*n].b, raw, ID_BYTES);
    (*n)++;
    return 0;
}

/* Adds the keys under an indirect block of `level` (1: chunks). */
static int tree_walk(const char *prog, struct ctl_client *c, struct tree *t, const uint8_t *raw,
                     uint8_t level)
{
    struct id key;
    uint8_t *payload;
    size_t len;
    uint8_t got_level;
    uint32_t n;
    const uint8_t *keys;
    int rc;

    memcpy(key.b, raw, ID_BYTES);
    if ((rc = push_id(&t->meta, &t->nmeta, raw)) || (rc = get_one(prog, c, &key, &payload, &len)))
        return rc;
    rc = file_indirect_parse(payload, len, &got_level, &n, &keys);
    if (rc == 0 && got_level != level)
        rc = -EBADMSG;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = level == 1 ? push_id(&t->chunks, &t->nchunks, keys + (size_t)i * ID_BYTES)
                        : tree_walk(prog, c, t, keys + (size_t)i * ID_BYTES, level - 1);
    if (rc == -EBADMSG)
        fprintf(stderr, "%s: an indirect block of the file is malformed\n", prog);
    free(payload);
    return rc;
}

static int tree_load(const char *prog, struct ctl_client *c, const struct id *file, struct tree *t)
{
    struct file_manifest m;
    uint8_t *payload;
    size_t len;
    int rc;

    memset(t, 0, sizeof(*t));
    if ((rc = push_id(&t->meta, &t->nmeta, file->b)) ||
        (rc = get_one(prog, c, file, &payload, &len)))
        return rc;
    rc = file_manifest_parse(payload, len, &m);
    if (rc) {
        fprintf(stderr, "%s: that key names a block that is not a file manifest\n", prog);
        free(payload);
        return rc;
    }
    t->size = m.size;
    t->chunk_size = m.chunk_size;
    for (uint32_t i = 0; rc == 0 && i < m.nkeys; i++)
        rc = m.levels == 0 ? push_id(&t->chunks, &t->nchunks, m.keys + (size_t)i * ID_BYTES)
                           : tree_walk(prog, c, t, m.keys + (size_t)i * ID_BYTES, m.levels);
    free(payload);
    if (rc == 0 && t->chunk_size && t->nchunks != (t->size + t->chunk_size - 1) / t->chunk_size) {
        fprintf(stderr, "%s: the manifest lists %zu chunks for %" PRIu64 " bytes\n", prog,
                t->nchunks, t->size);
        rc = -EBADMSG;
    }
    return rc;
}

/* --- options ---------------------------------------------------------------- */

struct past_opts {
    const char *datadir;
    const char *key_name;
    const char *out;
    unsigned window;
    uint64_t lease_days;
    bool no_compress;
};

/* Returns -1 to go on, or an exit status. */
static int parse_opts(int argc, char **argv, const char *usage, struct past_opts *o)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"key", required_argument, NULL, 'k'},
        {"output", required_argument, NULL, 'o'},
        {"parallel", required_argument, NULL, 'p'},
        {"lease-days", required_argument, NULL, 'l'},
        {"no-compress", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    o->window = WINDOW_DEFAULT;
    o->lease_days = BS_LEASE_DEFAULT_S / 86400u;
    o->key_name = "default";
    optind = 1;
    while ((opt = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        char *end;
        unsigned long v;
        switch (opt) {
        case 'd': o->datadir = optarg; break;
        case 'k': o->key_name = optarg; break;
        case 'o': o->out = optarg; break;
        case 'n': o->no_compress = true; break;
        case 'p':
            v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > WINDOW_MAX) {
                fprintf(stderr, "%s: --parallel wants 1..%d\n", argv[0], WINDOW_MAX);
                return 2;
            }
            o->window = (unsigned)v;
            break;
        case 'l':
            v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > BS_LEASE_MAX_S / 86400u) {
                fprintf(stderr, "%s: --lease-days wants 1..%u\n", argv[0], BS_LEASE_MAX_S / 86400u);
                return 2;
            }
            o->lease_days = v;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    return -1;
}

static int parse_key_arg(const char *prog, const char *s, struct id *out)
{
    if (id_from_hex(s, out) < 0) {
        fprintf(stderr, "%s: a file key is 64 hex digits, not '%s'\n", prog, s);
        return -EINVAL;
    }
    return 0;
}

/* --- insert -------------------------------------------------------------- */

struct job {
    size_t index;
    size_t raw_len;
    struct id key;
    struct lease lease;
    size_t len;
    uint8_t *bytes;
    int rc;
    struct job *next;
    struct inserter *ins;
};

struct inserter {
    const char *prog;
    pthread_mutex_t mu;
    pthread_cond_t ready_cv, room_cv;
    int fd;
    bool eof, stop;
    int read_err;
    size_t next_index;
    unsigned outstanding, window, running;
    struct job *ready_head, *ready_tail; /* protected by mu */
    const struct sig_key *key;
    uint64_t stamp, expiry;
    bool compress;
    /* main thread only */
    struct id *keys;
    size_t nkeys, cap_keys;
    uint64_t size, acked_bytes;
    unsigned inflight;
    int err;
    struct progress prog_bar;
};

static void *encode_worker(void *arg)
{
    struct inserter *in = arg;
    uint8_t *raw = malloc(CHUNK);

    for (;;) {
        struct job *j;
        size_t got = 0;

        pthread_mutex_lock(&in->mu);
        while (!in->stop && !in->eof && in->outstanding >= in->window)
            pthread_cond_wait(&in->room_cv, &in->mu);
        if (!raw && !in->eof) {
            in->read_err = -ENOMEM;
            in->eof = true;
        }
        if (in->stop || in->eof)
            break;
        /* Reads stay in file order under the lock; encoding runs outside. */
        while (got < CHUNK) {
            ssize_t r = read(in->fd, raw + got, CHUNK - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                in->read_err = -errno;
                in->eof = true;
                break;
            }
            if (r == 0) {
                in->eof = true;
                break;
            }
            got += (size_t)r;
        }
        if (got == 0 || in->read_err)
            break;
        j = calloc(1, sizeof(*j));
        if (!j) {
            in->read_err = -ENOMEM;
            in->eof = true;
            break;
        }
        j->index = in->next_index++;
        j->raw_len = got;
        j->ins = in;
        in->outstanding++;
        pthread_mutex_unlock(&in->mu);

        j->bytes = malloc(BLOCK_MAX_STORED);
        j->rc = j->bytes ? block_encode(BLOCK_KIND_DATA, raw, got, in->compress, j->bytes, &j->len,
                                        &j->key)
                         : -ENOMEM;
        if (j->rc == 0)
            j->rc = lease_sign(in->key, &j->key, in->stamp, in->expiry, &j->lease);

        pthread_mutex_lock(&in->mu);
        if (in->ready_tail)
            in->ready_tail->next = j;
        else
            in->ready_head = j;
        in->ready_tail = j;
        pthread_cond_signal(&in->ready_cv);
        pthread_mutex_unlock(&in->mu);
    }
    in->running--;
    pthread_cond_broadcast(&in->ready_cv);
    pthread_mutex_unlock(&in->mu);
    free(raw);
    return NULL;
}

static void job_free(struct job *j)
{
    free(j->bytes);
    free(j);
}

static void put_done(void *ctx, int status, uint16_t type, const uint8_t *p, size_t len)
{
    struct job *j = ctx;
    struct inserter *in = j->ins;
    char what[64];
    (void)type;

    in->inflight--;
    snprintf(what, sizeof(what), "chunk %zu", j->index);
    if (bs_outcome(in->prog, what, status, p, len, NULL, NULL) && !in->err)
        in->err = -EIO;
    else if (!in->err)
        in->acked_bytes += j->raw_len;
    pthread_mutex_lock(&in->mu);
    in->outstanding--;
    pthread_cond_signal(&in->room_cv);
    pthread_mutex_unlock(&in->mu);
    job_free(j);
    progress_show(&in->prog_bar, in->acked_bytes, false);
}

static int keys_set(struct inserter *in, size_t index, const struct id *key)
{
    if (index >= in->cap_keys) {
        size_t cap = in->cap_keys ? in->cap_keys : 1024;
        while (cap <= index)
            cap *= 2;
        struct id *nk = realloc(in->keys, cap * sizeof(*nk));
        if (!nk)
            return -ENOMEM;
        in->keys = nk;
        in->cap_keys = cap;
    }
    in->keys[index] = *key;
    if (index + 1 > in->nkeys)
        in->nkeys = index + 1;
    return 0;
}

/* Sends one put; the job is freed by put_done (or here on failure). */
static int send_put(struct ctl_client *c, struct job *j)
{
    size_t cap = LEASE_LEN + j->len, len;
    uint8_t *req = malloc(cap);
    int rc;

    if (!req)
        return -ENOMEM;
    len = ctl_block_put_encode(&j->lease, j->bytes, j->len, req, cap);
    rc = ctl_client_call(c, CTL_MSG_BLOCK_PUT, req, len, put_done, j);
    free(req);
    if (rc == 0)
        j->ins->inflight++;
    return rc;
}

/* Waits for the worker threads to stop (after an error or the end). */
static void stop_workers(struct inserter *in, pthread_t *th, unsigned n)
{
    pthread_mutex_lock(&in->mu);
    in->stop = true;
    pthread_cond_broadcast(&in->room_cv);
    pthread_mutex_unlock(&in->mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    while (in->ready_head) {
        struct job *j = in->ready_head;
        in->ready_head = j->next;
        job_free(j);
    }
    in->ready_tail = NULL;
}

struct meta_ctx {
    struct ctl_client *c;
    struct inserter *in;
};

/* file_manifest_build's emit: stores one manifest block, in flight with
 * the others, under the same lease. */
static int emit_meta(void *ctx, const struct id *key, const uint8_t *bytes, size_t len)
{
    struct meta_ctx *m = ctx;
    struct job *j = calloc(1, sizeof(*j));
    int rc;

    if (!j)
        return -ENOMEM;
    j->ins = m->in;
    j->key = *key;
    j->index = SIZE_MAX;
    j->bytes = malloc(len);
    if (!j->bytes) {
        free(j);
        return -ENOMEM;
    }
    memcpy(j->bytes, bytes, len);
    j->len = len;
    rc = lease_sign(m->in->key, key, m->in->stamp, m->in->expiry, &j->lease);
    if (rc == 0) {
        pthread_mutex_lock(&m->in->mu);
        m->in->outstanding++;
        pthread_mutex_unlock(&m->in->mu);
        rc = send_put(m->c, j);
    }
    if (rc) {
        job_free(j);
        return rc;
    }
    return 0;
}

static const char insert_usage[] =
    "usage: coopfs insert [--data DIR] [--key NAME] [--lease-days N] [--parallel N]\n"
    "                     [--no-compress] FILE\n"
    "\n"
    "Stores FILE in the ring under a lease of the key NAME (default 'default',\n"
    "made with 'coopfs keygen NAME') and prints the file's key on the last line.\n"
    "  --lease-days N  how long the ring keeps it unless renewed (default 90)\n"
    "  --parallel N    blocks in flight (default 16)\n";

int cmd_insert(int argc, char **argv)
{
    const char *prog = "coopfs insert";
    struct past_opts o = {0};
    struct sig_key key;
    struct ctl_client *c = NULL;
    struct inserter in;
    pthread_t th[8];
    unsigned nth = 0;
    struct stat st;
    struct id file_key;
    char hex[ID_HEX_LEN + 1];
    int rc = parse_opts(argc, argv, insert_usage, &o), status = 1;
    long ncpu;

    if (rc >= 0)
        return rc;
    if (optind + 1 != argc) {
        fputs(insert_usage, stderr);
        return 2;
    }
    if (tools_key_load(o.key_name, &key) < 0)
        return 1;
    memset(&in, 0, sizeof(in));
    in.prog = prog;
    in.fd =
        strcmp(argv[optind], "-") == 0 ? STDIN_FILENO : open(argv[optind], O_RDONLY | O_CLOEXEC);
    if (in.fd < 0) {
        fprintf(stderr, "%s: cannot open %s: %s\n", prog, argv[optind], strerror(errno));
        return 1;
    }
    if (fstat(in.fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s is not a file\n", prog, argv[optind]);
        goto out_close;
    }
    c = tools_open_node(prog, o.datadir);
    if (!c)
        goto out_close;
    pthread_mutex_init(&in.mu, NULL);
    pthread_cond_init(&in.ready_cv, NULL);
    pthread_cond_init(&in.room_cv, NULL);
    in.window = o.window * 2; /* encoded ahead of the puts in flight */
    in.key = &key;
    in.stamp = wall_ms();
    in.expiry = in.stamp / 1000u + o.lease_days * 86400u;
    in.compress = !o.no_compress;
    progress_init(&in.prog_bar, "insert", S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    nth = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (unsigned)ncpu;
    in.running = nth;
    for (unsigned i = 0; i < nth; i++) {
        if (pthread_create(&th[i], NULL, encode_worker, &in)) {
            in.running -= nth - i;
            nth = i;
            break;
        }
    }
    if (nth == 0) {
        fprintf(stderr, "%s: cannot start a thread\n", prog);
        goto out_client;
    }

    for (;;) {
        struct job *batch;
        bool workers_done;

        pthread_mutex_lock(&in.mu);
        while (!in.ready_head && in.running > 0 && in.inflight == 0)
            pthread_cond_wait(&in.ready_cv, &in.mu);
        batch = in.ready_head;
        in.ready_head = in.ready_tail = NULL;
        workers_done = in.running == 0;
        if (in.read_err && !in.err)
            in.err = in.read_err;
        pthread_mutex_unlock(&in.mu);

        while (batch) {
            struct job *j = batch;
            batch = j->next;
            j->next = NULL;
            if (!in.err && j->rc)
                in.err = j->rc;
            if (in.err || (rc = keys_set(&in, j->index, &j->key)) || (rc = send_put(c, j))) {
                if (!in.err)
                    in.err = rc;
                pthread_mutex_lock(&in.mu);
                in.outstanding--;
                pthread_mutex_unlock(&in.mu);
                job_free(j);
                continue;
            }
            in.size += j->raw_len;
        }
        if (in.err)
            break;
        if (workers_done && !in.ready_head && in.inflight == 0)
            break;
        if (in.inflight > 0 && ctl_client_wait(c) < 0 && !in.err)
            in.err = -ECONNRESET;
    }
    if (in.read_err) {
        fprintf(stderr, "%s: reading %s: %s\n", prog, argv[optind], strerror(-in.read_err));
        in.err = in.read_err;
    }
    stop_workers(&in, th, nth);
    while (in.inflight > 0 && ctl_client_wait(c) == 0)
        ;
    if (in.err) {
        if (in.err != -EIO && in.err != in.read_err)
            fprintf(stderr, "%s: %s\n", prog, bs_strerror(in.err));
        goto out_client;
    }
    {
        struct meta_ctx m = {.c = c, .in = &in};
        rc = file_manifest_build(in.size, CHUNK, in.keys, in.nkeys, emit_meta, &m, &file_key);
        while (in.inflight > 0 && ctl_client_wait(c) == 0)
            ;
        if (rc || in.err) {
            if (rc)
                fprintf(stderr, "%s: building the manifest: %s\n", prog, bs_strerror(rc));
            goto out_client;
        }
    }
    progress_show(&in.prog_bar, in.acked_bytes, true);
    id_to_hex(&file_key, hex);
    printf("%s\n", hex);
    status = fflush(stdout) == 0 ? 0 : 1;
out_client:
    ctl_client_free(c);
    free(in.keys);
    pthread_mutex_destroy(&in.mu);
    pthread_cond_destroy(&in.ready_cv);
    pthread_cond_destroy(&in.room_cv);
out_close:
    if (in.fd != STDIN_FILENO)
        close(in.fd);
    memset(&key, 0, sizeof(key));
    return status;
}

/* --- lookup ---------------------------------------------------------------- */

struct fetcher {
    const char *prog;
    struct ctl_client *c;
    struct tree *t;
    int fd;         /* the output */
    bool seekable;  /* pwrite at offsets; else write in order */
    uint8_t **held; /* out-of-order chunks waiting (not seekable) */
    size_t *held_len;
    size_t next_write, next_send;
    unsigned inflight;
    uint64_t done_bytes;
    int err;
    struct progress bar;
};

struct fetch_call {
    struct fetcher *f;
    size_t index;
};

static int write_all(int fd, const uint8_t *p, size_t len, off_t off, bool at)
{
    while (len) {
        ssize_t w = at ? pwrite(fd, p, len, off) : write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

static void fetch_done(void *ctx, int status, uint16_t type, const uint8_t *p, size_t len)
{
    struct fetch_call *fc = ctx;
    struct fetcher *f = fc->f;
    size_t i = fc->index;
    struct tree *t = f->t;
    size_t want =
        i + 1 < t->nchunks ? t->chunk_size : (size_t)(t->size - (uint64_t)i * t->chunk_size);
    struct ctl_bs_reply r;
    char what[64];
    uint8_t *raw = NULL;
    size_t raw_len;
    int rc;
    (void)type;

    free(fc);
    f->inflight--;
    if (f->err)
        return;
    snprintf(what, sizeof(what), "chunk %zu", i);
    rc = bs_outcome(f->prog, what, status, p, len, &r, f->c);
    if (rc == 0 && block_verify(&t->chunks[i], r.bytes, r.len) < 0) {
        fprintf(stderr, "%s: chunk %zu does not match its key\n", f->prog, i);
        rc = BS_ERR_BAD_BLOCK;
    }
    if (rc == 0 && !(raw = malloc(t->chunk_size ? t->chunk_size : 1)))
        rc = -ENOMEM;
    if (rc == 0 &&
        (block_decode(r.bytes, r.len, raw, t->chunk_size, &raw_len) < 0 || raw_len != want)) {
        fprintf(stderr, "%s: chunk %zu does not decode to %zu bytes\n", f->prog, i, want);
        rc = -EBADMSG;
    }
    if (rc) {
        free(raw);
        f->err = rc;
        return;
    }
    if (f->seekable) {
        rc = write_all(f->fd, raw, raw_len, (off_t)((uint64_t)i * t->chunk_size), true);
        free(raw);
    } else {
        f->held[i] = raw;
        f->held_len[i] = raw_len;
        while (rc == 0 && f->next_write < t->nchunks && f->held[f->next_write]) {
            size_t k = f->next_write++;
            rc = write_all(f->fd, f->held[k], f->held_len[k], 0, false);
            free(f->held[k]);
            f->held[k] = NULL;
        }
    }
    if (rc) {
        fprintf(stderr, "%s: writing the output: %s\n", f->prog, strerror(-rc));
        f->err = rc;
        return;
    }
    f->done_bytes += raw_len;
    progress_show(&f->bar, f->done_bytes, false);
}

static int fetch_all(struct fetcher *f, unsigned window)
{
    uint8_t req[64];

    while (!f->err && (f->next_send < f->t->nchunks || f->inflight > 0)) {
        /* Not seekable: never run more than a window ahead of the writes. */
        while (!f->err && f->inflight < window && f->next_send < f->t->nchunks &&
               (f->seekable || f->next_send < f->next_write + 4 * (size_t)window)) {
            struct fetch_call *fc = malloc(sizeof(*fc));
            size_t rl =
                ctl_block_get_encode(STORE_CONTENT, &f->t->chunks[f->next_send], req, sizeof(req));
            int rc;
            if (!fc)
                return -ENOMEM;
            *fc = (struct fetch_call){.f = f, .index = f->next_send};
            rc = ctl_client_call(f->c, CTL_MSG_BLOCK_GET, req, rl, fetch_done, fc);
            if (rc) {
                free(fc);
                return rc;
            }
            f->next_send++;
            f->inflight++;
        }
        if (f->inflight > 0 && ctl_client_wait(f->c) < 0 && !f->err)
            f->err = -ECONNRESET;
    }
    while (f->inflight > 0 && ctl_client_wait(f->c) == 0)
        ;
    return f->err;
}

static const char lookup_usage[] =
    "usage: coopfs lookup [--data DIR] [--parallel N] KEY [-o FILE]\n"
    "\n"
    "Fetches the file KEY (as 'coopfs insert' printed it), verifies every block\n"
    "and writes its exact bytes to FILE (written whole, then renamed into place)\n"
    "or to standard output.\n";

int cmd_lookup(int argc, char **argv)
{
    const char *prog = "coopfs lookup";
    struct past_opts o = {0};
    struct ctl_client *c = NULL;
    struct tree t = {0};
    struct fetcher f = {.fd = -1};
    struct id key;
    char *tmp = NULL;
    int rc = parse_opts(argc, argv, lookup_usage, &o), status = 1;

    if (rc >= 0)
        return rc;
    if (optind + 1 != argc) {
        fputs(lookup_usage, stderr);
        return 2;
    }
    if (parse_key_arg(prog, argv[optind], &key) < 0)
        return 2;
    c = tools_open_node(prog, o.datadir);
    if (!c)
        return 1;
    if (tree_load(prog, c, &key, &t))
        goto out;
    f = (struct fetcher){.prog = prog, .c = c, .t = &t, .fd = STDOUT_FILENO};
    if (o.out) {
        char *slash = strrchr(o.out, '/');
        int n = slash ? (int)(slash - o.out) : 1;
        if (asprintf(&tmp, "%.*s/.coopfs-lookup-XXXXXX", n, slash ? o.out : ".") < 0) {
            tmp = NULL;
            goto out;
        }
        f.fd = mkstemp(tmp);
        if (f.fd < 0) {
            fprintf(stderr, "%s: cannot create a file beside %s: %s\n", prog, o.out,
                    strerror(errno));
            free(tmp);
            tmp = NULL;
            goto out;
        }
        mode_t um = umask(0);
        umask(um);
        fchmod(f.fd, 0666 & ~um); /* mkstemp made it 0600 */
        f.seekable = true;
        if (ftruncate(f.fd, (off_t)t.size) < 0) {
            fprintf(stderr, "%s: cannot size %s: %s\n", prog, o.out, strerror(errno));
            goto out;
        }
    } else {
        f.held = calloc(t.nchunks ? t.nchunks : 1, sizeof(*f.held));
        f.held_len = calloc(t.nchunks ? t.nchunks : 1, sizeof(*f.held_len));
        if (!f.held || !f.held_len)
            goto out;
    }
    progress_init(&f.bar, "lookup", t.size);
    if (o.out == NULL && isatty(STDOUT_FILENO))
        f.bar.on = false; /* the bytes go to the same terminal */
    if (fetch_all(&f, o.window))
        goto out;
    if (o.out) {
        if (fsync(f.fd) < 0 || rename(tmp, o.out) < 0) {
            fprintf(stderr, "%s: cannot write %s: %s\n", prog, o.out, strerror(errno));
            goto out;
        }
        free(tmp);
        tmp = NULL;
    }
    progress_show(&f.bar, f.done_bytes, true);
    status = 0;
out:
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    if (o.out && f.fd >= 0 && f.fd != STDOUT_FILENO)
        close(f.fd);
    if (f.held)
        for (size_t i = 0; i < t.nchunks; i++)
            free(f.held[i]);
    free(f.held);
    free(f.held_len);
    tree_release(&t);
    ctl_client_free(c);
    return status;
}

/* --- reclaim and renew ------------------------------------------------------- */

static int id_cmp_qsort(const void *a, const void *b)
{
    return id_cmp(a, b);
}

struct lease_run {
    const char *prog;
    unsigned inflight;
    size_t ok, failed;
};

static void lease_done(void *ctx, int status, uint16_t type, const uint8_t *p, size_t len)
{
    struct lease_run *lr = ctx;
    (void)type;
    lr->inflight--;
    if (bs_outcome(lr->prog, "lease update", status, p, len, NULL, NULL) == 0)
        lr->ok++;
    else
        lr->failed++;
}

static int lease_all(const char *prog, int argc, char **argv, const char *usage, bool reclaim)
{
    struct past_opts o = {0};
    struct ctl_client *c = NULL;
    struct sig_key sk;
    struct tree t = {0};
    struct id key, *all = NULL;
    size_t n = 0;
    struct lease_run lr = {.prog = prog};
    uint64_t stamp = wall_ms();
    int rc = parse_opts(argc, argv, usage, &o), status = 1;

    if (rc >= 0)
        return rc;
    if (optind + 1 != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (parse_key_arg(prog, argv[optind], &key) < 0)
        return 2;
    if (tools_key_load(o.key_name, &sk) < 0)
        return 1;
    c = tools_open_node(prog, o.datadir);
    if (!c)
        goto out;
    if (tree_load(prog, c, &key, &t))
        goto out;
    n = t.nchunks + t.nmeta;
    all = malloc((n ? n : 1) * sizeof(*all));
    if (!all)
        goto out;
    memcpy(all, t.chunks, t.nchunks * sizeof(*all));
    memcpy(all + t.nchunks, t.meta, t.nmeta * sizeof(*all));
    /* A file may hold one chunk many times (runs of zeros). */
    qsort(all, n, sizeof(*all), id_cmp_qsort);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || !id_eq(&all[u - 1], &all[i]))
            all[u++] = all[i];
    n = u;
    for (size_t i = 0; i < n; i++) {
        struct lease l;
        uint8_t req[ID_BYTES + LEASE_LEN];
        uint64_t expiry = reclaim ? 0 : stamp / 1000u + o.lease_days * 86400u;
        if (lease_sign(&sk, &all[i], stamp, expiry, &l) < 0)
            goto out;
        size_t rl = ctl_lease_encode(&all[i], &l, req, sizeof(req));
        while (lr.inflight >= LEASE_WINDOW)
            if (ctl_client_wait(c) < 0)
                goto out;
        if (ctl_client_call(c, CTL_MSG_LEASE, req, rl, lease_done, &lr) < 0)
            goto out;
        lr.inflight++;
    }
    while (lr.inflight > 0 && ctl_client_wait(c) == 0)
        ;
    fprintf(stderr, "%s: %zu blocks %s%s", prog, lr.ok, reclaim ? "reclaimed" : "renewed",
            lr.failed ? "" : "\n");
    if (lr.failed)
        fprintf(stderr, ", %zu failed\n", lr.failed);
    status = lr.failed || lr.ok != n ? 1 : 0;
out:
    free(all);
    tree_release(&t);
    ctl_client_free(c);
    memset(&sk, 0, sizeof(sk));
    return status;
}

static const char reclaim_usage[] =
    "usage: coopfs reclaim [--data DIR] [--key NAME] KEY\n"
    "\n"
    "Removes the lease of key NAME (default 'default') on every block of the\n"
    "file KEY. A block is deleted once no owner holds a lease on it, so files\n"
    "of other owners that share blocks stay whole.\n";

int cmd_reclaim(int argc, char **argv)
{
    return lease_all("coopfs reclaim", argc, argv, reclaim_usage, true);
}

static const char renew_usage[] =
    "usage: coopfs renew [--data DIR] [--key NAME] [--lease-days N] KEY\n"
    "\n"
    "Extends the lease of key NAME on every block of the file KEY to N days\n"
    "from now (default 90).\n";

int cmd_renew(int argc, char **argv)
{
    return lease_all("coopfs renew", argc, argv, renew_usage, false);
}
