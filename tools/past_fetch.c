/* past_fetch.c — coopfs lookup (every chunk verified, written whole then
 * renamed), reclaim and renew (a signed lease record for every block). */
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
    rc = past_outcome(f->prog, what, status, p, len, &r, f->c);
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
    past_progress_show(&f->bar, f->done_bytes, false);
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
    int rc = past_parse_opts(argc, argv, lookup_usage, &o), status = 1;

    if (rc >= 0)
        return rc;
    if (optind + 1 != argc) {
        fputs(lookup_usage, stderr);
        return 2;
    }
    if (past_parse_key(prog, argv[optind], &key) < 0)
        return 2;
    c = tools_open_node(prog, o.datadir);
    if (!c)
        return 1;
    if (past_tree_load(prog, c, &key, &t))
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
    past_progress_init(&f.bar, "lookup", t.size);
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
    past_progress_show(&f.bar, f.done_bytes, true);
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
    past_tree_release(&t);
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
    if (past_outcome(lr->prog, "lease update", status, p, len, NULL, NULL) == 0)
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
    uint64_t stamp = past_wall_ms();
    int rc = past_parse_opts(argc, argv, usage, &o), status = 1;

    if (rc >= 0)
        return rc;
    if (optind + 1 != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (past_parse_key(prog, argv[optind], &key) < 0)
        return 2;
    if (tools_key_load(o.key_name, &sk) < 0)
        return 1;
    c = tools_open_node(prog, o.datadir);
    if (!c)
        goto out;
    if (past_tree_load(prog, c, &key, &t))
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
    past_tree_release(&t);
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
