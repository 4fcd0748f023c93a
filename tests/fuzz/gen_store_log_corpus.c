/* gen_store_log_corpus.c — writes the seed corpus of fuzz_store_log.
 *
 *   gen_store_log_corpus DIR
 *
 * writes into DIR, one file each, a mode byte (fuzz_store_log.c: even, a
 * leases.log as is; odd, records of 6 bytes) and a log: empty, grants of
 * several keys and owners, renewals in and out of order, a reclaim beside
 * a grant of the same instant, tombstones before and after grants, a
 * damaged record in the middle, a torn or garbage tail, a mostly dead log
 * that open rewrites, and compact mixes of all of these. The output is
 * deterministic. The files are committed in tests/fuzz/corpus/store_log/;
 * run this again (and commit the result) when the record format changes:
 *
 *   rm -f tests/fuzz/corpus/store_log/[a-z]*
 *   gen_store_log_corpus tests/fuzz/corpus/store_log
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/store_int.h"

#define REC_LEN STORE_LOG_REC_LEN
#define MAX_REC 64

enum { MODE_RAW = 0, MODE_COMPACT = 1 };

static const char *out_dir;
static int status;

static uint8_t buf[1 + MAX_REC * REC_LEN + REC_LEN];
static size_t len;

static void emit(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        status = 1;
        len = 0;
        return;
    }
    if (fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "%s: write failed\n", path);
        status = 1;
    }
    len = 0;
}

static void start(uint8_t mode)
{
    len = 0;
    buf[len++] = mode;
}

static struct id key_of(unsigned k)
{
    struct id r;
    for (int i = 0; i < ID_BYTES; i++)
        r.b[i] = (uint8_t)(k * 37 + (unsigned)i);
    return r;
}

static struct lease lease_of(unsigned owner, uint64_t stamp_ms, uint64_t expiry_s)
{
    struct lease l;
    memset(&l, 0, sizeof(l));
    for (int i = 0; i < SIG_PUB_LEN; i++)
        l.owner.b[i] = (uint8_t)(owner * 11 + (unsigned)i);
    l.stamp_ms = stamp_ms;
    l.expiry_s = expiry_s;
    for (int i = 0; i < SIG_LEN; i++)
        l.sig[i] = (uint8_t)(stamp_ms + (unsigned)i);
    return l;
}

/* One 152-byte record of key k: a lease, or a tombstone when owner < 0. */
static void rec(unsigned k, int owner, uint64_t stamp_ms, uint64_t expiry_s)
{
    struct id key = key_of(k);
    struct lease l = lease_of((unsigned)(owner < 0 ? 0 : owner), stamp_ms, expiry_s);
    if (len + REC_LEN > sizeof(buf)) {
        fprintf(stderr, "seed too long\n");
        status = 1;
        return;
    }
    store_log_rec_encode(buf + len, &key, owner < 0 ? NULL : &l);
    len += REC_LEN;
}

static void raw(const void *p, size_t n)
{
    memcpy(buf + len, p, n);
    len += n;
}

/* A compact record: flags (1 tombstone, 2 bad sum) | key | owner | stamp
 * | expiry | sig. */
static void crec(uint8_t flags, uint8_t key, uint8_t owner, uint8_t stamp, uint8_t expiry,
                 uint8_t sig)
{
    uint8_t c[6] = {flags, key, owner, stamp, expiry, sig};
    raw(c, sizeof(c));
}

static void gen_raw(void)
{
    start(MODE_RAW);
    emit("raw_empty");

    start(MODE_RAW);
    rec(1, 1, 1000, 2000);
    rec(2, 1, 1001, 2000);
    rec(3, 2, 1002, 2000);
    emit("raw_three_keys");

    /* One key, two owners, renewals in and out of order. */
    start(MODE_RAW);
    rec(1, 1, 1000, 2000);
    rec(1, 2, 1000, 2000);
    rec(1, 1, 3000, 4000);
    rec(1, 2, 2000, 3000);
    rec(1, 1, 2000, 9000); /* older stamp, later in the log: loses */
    emit("raw_renewals");

    /* A reclaim beats a grant of the same instant. */
    start(MODE_RAW);
    rec(4, 3, 5000, 6000);
    rec(4, 3, 5000, 0);
    emit("raw_reclaim_same_stamp");

    /* A tombstone drops what came before it, not what comes after. */
    start(MODE_RAW);
    rec(5, 1, 1000, 2000);
    rec(5, 2, 1000, 2000);
    rec(5, -1, 0, 0);
    rec(5, 2, 900, 2000);
    rec(6, 1, 1000, 2000);
    emit("raw_tombstone");
    start(MODE_RAW);
    rec(5, -1, 0, 0);
    rec(5, -1, 0, 0);
    emit("raw_only_tombstones");

    /* A damaged record between good ones: dropped, and the log rewritten. */
    start(MODE_RAW);
    rec(1, 1, 1000, 2000);
    rec(2, 1, 1000, 2000);
    buf[len - 1] ^= 0x40;
    rec(3, 1, 1000, 2000);
    emit("raw_damaged_middle");

    /* A torn tail: a part of a record, or a whole one of garbage. */
    start(MODE_RAW);
    rec(1, 1, 1000, 2000);
    rec(2, 1, 1000, 2000);
    len -= REC_LEN / 2;
    emit("raw_torn_tail");
    start(MODE_RAW);
    rec(1, 1, 1000, 2000);
    memset(buf + len, 0, REC_LEN + 17);
    len += REC_LEN + 17;
    emit("raw_zero_tail");

    /* Mostly dead: renewals of one lease, so that open rewrites it. */
    start(MODE_RAW);
    for (unsigned i = 0; i < 7; i++)
        rec(7, 1, 1000 + i, 2000 + i);
    rec(8, 2, 1000, 2000);
    emit("raw_mostly_dead");

    /* A lease whose owner is all 0xff, beside a tombstone. */
    start(MODE_RAW);
    {
        struct id key = key_of(9);
        struct lease l = lease_of(0, 1000, 2000);
        memset(l.owner.b, 0xff, SIG_PUB_LEN);
        store_log_rec_encode(buf + len, &key, &l);
        len += REC_LEN;
    }
    rec(9, -1, 0, 0);
    emit("raw_owner_ff_tombstone");
}

static void gen_compact(void)
{
    start(MODE_COMPACT);
    crec(0, 1, 1, 10, 20, 1);
    crec(0, 1, 2, 10, 20, 1);
    crec(0, 2, 1, 10, 20, 1);
    emit("compact_grants");

    /* Renewals, a reclaim, equal stamps decided by expiry and signature. */
    start(MODE_COMPACT);
    crec(0, 1, 1, 10, 20, 1);
    crec(0, 1, 1, 10, 30, 1);
    crec(0, 1, 1, 10, 30, 2);
    crec(0, 1, 1, 10, 0, 0);
    crec(0, 1, 1, 9, 99, 9);
    crec(0, 1, 1, 10, 30, 2); /* the same lease again */
    emit("compact_ties");

    /* Tombstones between grants of several keys. */
    start(MODE_COMPACT);
    crec(0, 1, 1, 10, 20, 1);
    crec(0, 2, 1, 10, 20, 1);
    crec(1, 1, 0, 0, 0, 0);
    crec(0, 1, 2, 5, 20, 1);
    crec(1, 2, 0, 0, 0, 0);
    crec(1, 2, 0, 0, 0, 0);
    crec(0, 3, 3, 1, 1, 1);
    emit("compact_tombstones");

    /* Bad sums in the middle and at the end, and a torn tail. */
    start(MODE_COMPACT);
    crec(0, 1, 1, 10, 20, 1);
    crec(2, 1, 1, 11, 20, 1);
    crec(0, 2, 1, 10, 20, 1);
    crec(2, 3, 1, 10, 20, 1);
    raw("\x01\x02\x03", 3);
    emit("compact_damage_and_tail");

    /* Many renewals of few leases: a rewrite at open. */
    start(MODE_COMPACT);
    for (uint8_t i = 0; i < 40; i++)
        crec(0, (uint8_t)(i % 3), (uint8_t)(i % 2), i, (uint8_t)(i * 7), (uint8_t)(i * 13));
    emit("compact_mostly_dead");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    gen_raw();
    gen_compact();
    return status;
}
