/* gen_sync_msg_corpus.c — writes seeds for fuzz_sync_msg into DIR: one
 * valid message of each kind and a few near misses. The first byte of
 * each file picks the decoder (fuzz_sync_msg.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/bs.h"
#include "blockstore/sync_msg.h"

static void put(const char *dir, const char *name, uint8_t kind, const uint8_t *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(&kind, 1, 1, f) != 1 || (len && fwrite(p, 1, len, f) != len) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    static uint8_t buf[SYNC_REPLY_WIRE_MAX];
    static struct sync_entry e[8];
    struct sync_digest d;
    struct sync_reply r;
    size_t len;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    memset(&d, 0, sizeof(d));
    memset(&d.lo, 0x10, sizeof(d.lo));
    memset(&d.hi, 0x20, sizeof(d.hi));
    sync_digest_encode(&d, buf, sizeof(buf), &len);
    put(argv[1], "digest-empty", 0, buf, len);
    d.depth = 2;
    d.prefix[0] = 0x10;
    d.prefix[1] = 0x10;
    for (unsigned i = 0; i < SYNC_BUCKETS; i += 37) {
        d.b[i].count = i + 1;
        memset(d.b[i].digest, (int)i, SYNC_DIGEST_LEN);
    }
    sync_digest_encode(&d, buf, sizeof(buf), &len);
    put(argv[1], "digest-some", 0, buf, len);
    put(argv[1], "digest-short", 0, buf, len - 3);

    memset(e, 0, sizeof(e));
    for (int i = 0; i < 8; i++) {
        e[i].type = (uint8_t)(1 + i % 3);
        e[i].flags = (uint8_t)(SYNC_F_HELD | (i & 1 ? SYNC_F_PRESENT | SYNC_F_LIVE : SYNC_F_BAD));
        memset(&e[i].key, 0x30 + i, sizeof(e[i].key));
        e[i].version = (uint64_t)i * 1000;
        memset(e[i].digest, 0xa0 + i, SYNC_DIGEST_LEN);
    }
    memset(&r, 0, sizeof(r));
    sync_reply_encode(&r, buf, sizeof(buf), &len);
    put(argv[1], "reply-in-sync", 1, buf, len);
    r.nb = 3;
    r.rb[0] = (struct sync_reply_bucket){3, SYNC_MODE_LIST, 5, 0};
    r.rb[1] = (struct sync_reply_bucket){7, SYNC_MODE_DESCEND, 0, 0};
    r.rb[2] = (struct sync_reply_bucket){250, SYNC_MODE_LIST, 3, 5};
    r.nent = 8;
    r.ent = e;
    sync_reply_encode(&r, buf, sizeof(buf), &len);
    put(argv[1], "reply-lists", 1, buf, len);
    buf[2] = 9; /* out of order */
    put(argv[1], "reply-order", 1, buf, len);

    sync_keys_encode(e, 8, buf, sizeof(buf), &len);
    put(argv[1], "keys", 2, buf, len);
    sync_keys_ok_encode(e, 8, buf, sizeof(buf), &len);
    put(argv[1], "keys-ok", 3, buf, len);
    put(argv[1], "keys-ok-short", 3, buf, len - 1);
    return 0;
}
