/* past.c — what the PAST tools share (past.h): the progress bar, the
 * outcome of a block request, a verified get of one block, the manifest
 * tree and the options. The tools are PAST's interface without a mount,
 * over the control socket of a running node:
 *
 * insert (past_insert.c) splits a file into 256 KiB chunks, encodes them
 * (zstd when it pays, SHA-256, a signed lease) on worker threads, stores
 * them with at most --parallel puts in flight, then stores the file's
 * manifest tree (block.h) and prints the file's key alone on the last line
 * of standard output. lookup (past_fetch.c) fetches the manifest and every
 * chunk, verifies each against its key and writes the exact bytes. reclaim
 * and renew send a signed lease record (expiry 0, or a later expiry) for
 * every block of the file to its holders.
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
#include "tools/past.h"

uint64_t past_wall_ms(void)
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

void past_progress_init(struct progress *p, const char *what, uint64_t total)
{
    p->on = isatty(STDERR_FILENO);
    p->what = what;
    p->total = total;
    p->start = mono_s();
    p->last = 0;
}

void past_progress_show(struct progress *p, uint64_t done, bool final)
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
int past_outcome(const char *prog, const char *what, int status, const uint8_t *p, size_t len,
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
    w->rc = past_outcome(w->prog, what, status, p, len, &r, w->c);
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

int past_get_one(const char *prog, struct ctl_client *c, const struct id *key, uint8_t **payload,
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

void past_tree_release(struct tree *t)
{
    free(t->chunks);
    free(t->meta);
}

static int past_push_id(struct id **v, size_t *n, const uint8_t *raw)
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
    if ((rc = past_push_id(&t->meta, &t->nmeta, raw)) ||
        (rc = past_get_one(prog, c, &key, &payload, &len)))
        return rc;
    rc = file_indirect_parse(payload, len, &got_level, &n, &keys);
    if (rc == 0 && got_level != level)
        rc = -EBADMSG;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = level == 1 ? past_push_id(&t->chunks, &t->nchunks, keys + (size_t)i * ID_BYTES)
                        : tree_walk(prog, c, t, keys + (size_t)i * ID_BYTES, level - 1);
    if (rc == -EBADMSG)
        fprintf(stderr, "%s: an indirect block of the file is malformed\n", prog);
    free(payload);
    return rc;
}

int past_tree_load(const char *prog, struct ctl_client *c, const struct id *file, struct tree *t)
{
    struct file_manifest m;
    uint8_t *payload;
    size_t len;
    int rc;

    memset(t, 0, sizeof(*t));
    if ((rc = past_push_id(&t->meta, &t->nmeta, file->b)) ||
        (rc = past_get_one(prog, c, file, &payload, &len)))
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
        rc = m.levels == 0 ? past_push_id(&t->chunks, &t->nchunks, m.keys + (size_t)i * ID_BYTES)
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

/* Returns -1 to go on, or an exit status. */
int past_parse_opts(int argc, char **argv, const char *usage, struct past_opts *o)
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

int past_parse_key(const char *prog, const char *s, struct id *out)
{
    if (id_from_hex(s, out) < 0) {
        fprintf(stderr, "%s: a file key is 64 hex digits, not '%s'\n", prog, s);
        return -EINVAL;
    }
    return 0;
}
