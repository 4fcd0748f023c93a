/* forge_root.c — test-only: makes root blocks (blockstore/block.h) for
 * test_blocks.py, valid and forged, and prints their bytes in hex on one
 * line. The test sends them to a node over the control socket (ROOT_PUT,
 * docs/protocol.md) itself.
 *
 *   forge_root MODE KEYFILE VERSION PAYLOAD_HEX
 *
 * KEYFILE is a private key file as `coopfs keygen` writes it (NAME.key).
 * MODE:
 *   valid     signed by KEYFILE's key: what `coopfs root put` would send
 *   flip      the valid block with one bit of its signature flipped
 *   tamper    the valid block with one bit of its payload flipped (the
 *             signature no longer covers what is there); PAYLOAD_HEX must
 *             not be empty
 *   otherkey  the victim's public key (KEYFILE's) and a well-formed
 *             signature over the victim's root key, version and payload,
 *             made by a fresh key that is not the victim's
 *
 * Exit status 0, 2 on a usage error, 1 on any other failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/block.h"
#include "common/id.h"
#include "common/sig.h"

static int usage(void)
{
    fputs("usage: forge_root valid|flip|tamper|otherkey KEYFILE VERSION PAYLOAD_HEX\n", stderr);
    return 2;
}

static long parse_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);

    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

int main(int argc, char **argv)
{
    uint8_t payload[ROOT_MAX_PAYLOAD], out[ROOT_MAX_LEN];
    struct sig_key victim;
    size_t out_len;
    long plen;
    char *end;
    uint64_t version;
    int rc;

    if (argc != 5)
        return usage();
    errno = 0;
    version = strtoull(argv[3], &end, 10);
    if (errno || *end || version == 0)
        return usage();
    plen = parse_hex(argv[4], payload, sizeof(payload));
    if (plen < 0)
        return usage();
    rc = sig_key_load(argv[2], &victim);
    if (rc < 0) {
        fprintf(stderr, "forge_root: cannot load %s: %s\n", argv[2], strerror(-rc));
        return 1;
    }
    rc = root_encode(&victim, version, payload, (size_t)plen, out, &out_len);
    if (rc < 0) {
        fprintf(stderr, "forge_root: root_encode: %s\n", strerror(-rc));
        return 1;
    }
    if (strcmp(argv[1], "valid") == 0) {
        /* as encoded */
    } else if (strcmp(argv[1], "flip") == 0) {
        out[out_len - SIG_LEN / 2] ^= 0x01;
    } else if (strcmp(argv[1], "tamper") == 0) {
        if (plen == 0)
            return usage();
        out[ROOT_HDR_LEN] ^= 0x01;
    } else if (strcmp(argv[1], "otherkey") == 0) {
        /* The message of block.h, signed by someone else: layout and the
         * victim's public key are right, the signature is not the victim's. */
        static const char domain[] = "coopfs root v1";
        uint8_t m[sizeof(domain) + ID_BYTES + 8 + 2 + ROOT_MAX_PAYLOAD], *p = m;
        struct sig_key mallory;
        struct id key;

        if (sig_keygen(&mallory) < 0)
            return 1;
        root_key(&victim.pub, &key);
        memcpy(p, domain, sizeof(domain));
        p += sizeof(domain);
        memcpy(p, key.b, ID_BYTES);
        p += ID_BYTES;
        put_be(p, version, 8);
        p += 8;
        put_be(p, (uint64_t)plen, 2);
        p += 2;
        memcpy(p, payload, (size_t)plen);
        p += plen;
        if (sig_sign(&mallory, m, (size_t)(p - m), out + out_len - SIG_LEN) < 0)
            return 1;
        /* Sanity: the same message under mallory's own key would verify, so
         * only the key differs. */
        if (!sig_verify(&mallory.pub, m, (size_t)(p - m), out + out_len - SIG_LEN))
            return 1;
    } else {
        return usage();
    }
    for (size_t i = 0; i < out_len; i++)
        printf("%02x", out[i]);
    printf("\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
