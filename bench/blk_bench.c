/* blk_bench.c — latency of single small-block operations through a node's
 * control socket, for bench/blocks.py.
 *
 *   blk_bench DATADIR COUNT [SIZE] [WARMUP]
 *
 * Makes a fresh owner key, then COUNT content blocks of SIZE random bytes
 * (default 4096, stored raw), and times each BLOCK_PUT (1210) alone in
 * flight from send to reply, then each BLOCK_GET (1211) of the same keys
 * alone in flight; WARMUP (default 20) operations of each kind run first,
 * untimed. A put is answered once every replica stored it durably
 * (bs.h), so its time includes the replicas' fsyncs.
 *
 * Prints two lines, "put_us" and "get_us" followed by every latency in
 * microseconds, in the order measured. Exit status 0, 1 if any operation
 * failed (said on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blockstore/block.h"
#include "blockstore/bs.h"
#include "common/sig.h"
#include "net/control.h"

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct wait1 {
    bool done;
    int status;
};

static void one_done(void *ctx, int status, uint16_t type, const uint8_t *p, size_t len)
{
    struct wait1 *w = ctx;
    struct ctl_bs_reply r;
    (void)type;

    w->done = true;
    w->status = status;
    if (status == 0)
        w->status = ctl_bs_reply_decode(p, len, &r) < 0 ? -EBADMSG : r.status;
}

/* One request alone in flight; returns its status and sets *us. */
static int timed_call(struct ctl_client *c, uint16_t type, const uint8_t *req, size_t len,
                      uint64_t *us)
{
    struct wait1 w = {0};
    uint64_t t0 = mono_us();
    int rc = ctl_client_call(c, type, req, len, one_done, &w);

    if (rc)
        return rc;
    while (!w.done)
        if (ctl_client_wait(c) < 0 && !w.done)
            return -ECONNRESET;
    *us = mono_us() - t0;
    return w.status;
}

/* xorshift64*: the payloads only need to differ, not to be secret. */
static uint64_t rng_state;
static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        p[i] = (uint8_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

int main(int argc, char **argv)
{
    struct ctl_client *c = NULL;
    struct sig_key sk;
    unsigned long count, size = 4096, warm = 20;
    uint8_t *raw, *block, *req;
    struct id *keys;
    uint64_t *put_us, *get_us;
    int rc, status = 1;

    if (argc < 3 || argc > 5)
        goto usage;
    count = strtoul(argv[2], NULL, 10);
    if (argc > 3)
        size = strtoul(argv[3], NULL, 10);
    if (argc > 4)
        warm = strtoul(argv[4], NULL, 10);
    if (count == 0 || count > 1000000 || size == 0 || size > BLOCK_MAX_DATA || warm > 100000)
        goto usage;
    rng_state = mono_us() | 1;
    if (sig_keygen(&sk) < 0) {
        fprintf(stderr, "blk_bench: no key\n");
        return 1;
    }
    rc = ctl_client_open(argv[1], &c);
    if (rc) {
        fprintf(stderr, "blk_bench: cannot reach the node of %s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    raw = malloc(size);
    block = malloc(BLOCK_MAX_STORED);
    req = malloc(ID_BYTES + LEASE_LEN + BLOCK_MAX_STORED + 64);
    keys = calloc(count + warm, sizeof(*keys));
    put_us = calloc(count, sizeof(*put_us));
    get_us = calloc(count, sizeof(*get_us));
    if (!raw || !block || !req || !keys || !put_us || !get_us)
        goto out;

    for (unsigned long i = 0; i < warm + count; i++) {
        struct lease l;
        size_t blen, rl;
        uint64_t us = 0, now = wall_ms();

        fill_random(raw, size);
        if (block_encode(BLOCK_KIND_DATA, raw, size, false, block, &blen, &keys[i]) < 0 ||
            lease_sign(&sk, &keys[i], now, now / 1000u + 86400u, &l) < 0)
            goto out;
        rl = ctl_block_put_encode(&keys[i], &l, block, blen, req,
                                  ID_BYTES + LEASE_LEN + BLOCK_MAX_STORED + 64);
        rc = timed_call(c, CTL_MSG_BLOCK_PUT, req, rl, &us);
        if (rc) {
            fprintf(stderr, "blk_bench: put %lu: %s\n", i, bs_strerror(rc));
            goto out;
        }
        if (i >= warm)
            put_us[i - warm] = us;
    }
    for (unsigned long i = 0; i < warm + count; i++) {
        uint8_t g[64];
        size_t gl = ctl_block_get_encode(STORE_CONTENT, &keys[i], g, sizeof(g));
        uint64_t us = 0;

        rc = timed_call(c, CTL_MSG_BLOCK_GET, g, gl, &us);
        if (rc) {
            fprintf(stderr, "blk_bench: get %lu: %s\n", i, bs_strerror(rc));
            goto out;
        }
        if (i >= warm)
            get_us[i - warm] = us;
    }
    printf("put_us");
    for (unsigned long i = 0; i < count; i++)
        printf(" %" PRIu64, put_us[i]);
    printf("\nget_us");
    for (unsigned long i = 0; i < count; i++)
        printf(" %" PRIu64, get_us[i]);
    printf("\n");
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    free(raw);
    free(block);
    free(req);
    free(keys);
    free(put_us);
    free(get_us);
    ctl_client_free(c);
    memset(&sk, 0, sizeof(sk));
    return status;
usage:
    fputs("usage: blk_bench DATADIR COUNT [SIZE] [WARMUP]\n", stderr);
    return 2;
}
