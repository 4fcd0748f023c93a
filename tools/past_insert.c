/* past_insert.c — coopfs insert: chunks encoded on worker threads, puts
 * pipelined over the control socket, then the manifest tree. */
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
#include "tools/past.h"

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
    if (past_outcome(in->prog, what, status, p, len, NULL, NULL) && !in->err)
        in->err = -EIO;
    else if (!in->err)
        in->acked_bytes += j->raw_len;
    pthread_mutex_lock(&in->mu);
    in->outstanding--;
    pthread_cond_signal(&in->room_cv);
    pthread_mutex_unlock(&in->mu);
    job_free(j);
    past_progress_show(&in->prog_bar, in->acked_bytes, false);
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
    size_t cap = ID_BYTES + LEASE_LEN + j->len, len;
    uint8_t *req = malloc(cap);
    int rc;

    if (!req)
        return -ENOMEM;
    len = ctl_block_put_encode(&j->key, &j->lease, j->bytes, j->len, req, cap);
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
    int rc = past_parse_opts(argc, argv, insert_usage, &o), status = 1;
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
    in.stamp = past_wall_ms();
    in.expiry = in.stamp / 1000u + o.lease_days * 86400u;
    in.compress = !o.no_compress;
    past_progress_init(&in.prog_bar, "insert", S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
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
    past_progress_show(&in.prog_bar, in.acked_bytes, true);
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
