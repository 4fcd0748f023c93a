/* root_cmd.c — coopfs root get/put: read and write the signed, versioned
 * root block of an owner (block.h, "root blocks") through a running node.
 *
 * get asks the node for the root of a public key (given in hex, or as the
 * .pub of a named key), checks the signature itself and prints its version,
 * payload and key. put signs a root of the given version with a named key
 * and stores it with compare-and-swap (bs.h: the node stores it only if
 * the current version is the one expected), then prints the outcome.
 *
 * Exit status: 0 ok; 1 refused or failed (the node's reason on stderr);
 * 2 usage; 3 a compare-and-swap conflict (another version is current:
 * stderr names it), so that scripts can tell a lost race from an error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/block.h"
#include "blockstore/bs.h"
#include "common/sig.h"
#include "net/control.h"
#include "tools/cmd.h"
#include "tools/keys.h"

#define ROOT_EXIT_CONFLICT 3

static const char root_usage[] =
    "usage: coopfs root [--data DIR] get PUBKEY_HEX | --key NAME\n"
    "       coopfs root [--data DIR] put --key NAME --version V [--expect E | --any]\n"
    "                   PAYLOAD_HEX\n"
    "\n"
    "get prints the current root of an owner (its public key in hex, or the\n"
    "key NAME made with 'coopfs keygen'): version, payload in hex, root key.\n"
    "put signs a root of version V with the key NAME and stores it if the\n"
    "current version is E (default V-1; 0 means no root yet), or with --any\n"
    "whatever the current version below V is. PAYLOAD_HEX may be empty ('').\n"
    "Exit status: 0 stored or found, 1 refused (reason on stderr), 2 usage,\n"
    "3 compare-and-swap conflict (the current version is on stderr).\n";

/* --- one call, waited for ------------------------------------------------- */

struct call_wait {
    bool done;
    int status;
    uint8_t *payload; /* a copy of the reply payload */
    size_t len;
};

static void call_done(void *ctx, int status, uint16_t type, const uint8_t *p, size_t len)
{
    struct call_wait *w = ctx;
    (void)type;
    w->done = true;
    w->status = status;
    if (status == 0) {
        w->payload = malloc(len ? len : 1);
        if (!w->payload) {
            w->status = -ENOMEM;
            return;
        }
        memcpy(w->payload, p, len);
        w->len = len;
    }
}

/* Sends one request and waits for its reply. Returns 0 and the reply
 * payload in *w (the caller frees w->payload), or prints why not and
 * returns the error. */
static int call(const char *prog, struct ctl_client *c, uint16_t type, const uint8_t *req,
                size_t rlen, struct call_wait *w)
{
    int rc = ctl_client_call(c, type, req, rlen, call_done, w);

    if (rc == 0)
        while (!w->done)
            if (ctl_client_wait(c) < 0 && !w->done) {
                rc = -ECONNRESET;
                break;
            }
    if (rc == 0)
        rc = w->status;
    if (rc) {
        const char *detail = ctl_client_error(c);
        fprintf(stderr, "%s: %s%s%s\n", prog,
                rc == -ECONNRESET ? "the node closed the connection" : bs_strerror(rc),
                *detail ? ": " : "", detail);
        free(w->payload);
        w->payload = NULL;
    }
    return rc;
}

static void print_hex(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

/* Parses hex of even length (at most cap bytes). Returns the length or -1. */
static long parse_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);

    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
            return -1;
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* --- get -------------------------------------------------------------------- */

static int root_get(struct ctl_client *c, const struct sig_pub *pub)
{
    const char *prog = "coopfs root get";
    struct call_wait w = {0};
    struct ctl_bs_reply r;
    struct root_info ri;
    struct id key;
    char hex[ID_HEX_LEN + 1];
    uint8_t req[64];
    size_t rl;
    int status = 1;

    root_key(pub, &key);
    id_to_hex(&key, hex);
    rl = ctl_block_get_encode(STORE_ROOT, &key, req, sizeof(req));
    if (call(prog, c, CTL_MSG_BLOCK_GET, req, rl, &w))
        return 1;
    if (ctl_bs_reply_decode(w.payload, w.len, &r) < 0) {
        fprintf(stderr, "%s: the node's reply does not decode\n", prog);
        goto out;
    }
    if (r.status) {
        fprintf(stderr, "%s: root %s: %s\n", prog, hex,
                r.reason[0] ? r.reason : bs_strerror(r.status));
        goto out;
    }
    /* The node verified it; so do we: the public key is all we trust. */
    if (root_verify(&key, r.bytes, r.len, &ri) < 0 || memcmp(ri.pub.b, pub->b, SIG_PUB_LEN) != 0) {
        fprintf(stderr, "%s: the node returned a root that does not verify under that key\n", prog);
        goto out;
    }
    printf("version %" PRIu64 "\npayload ", ri.version);
    print_hex(stdout, ri.payload, ri.payload_len);
    printf("\nkey %s\n", hex);
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    free(w.payload);
    return status;
}

/* --- put -------------------------------------------------------------------- */

static int root_put(struct ctl_client *c, const struct sig_key *sk, uint64_t version,
                    uint64_t expect, const uint8_t *payload, size_t plen)
{
    const char *prog = "coopfs root put";
    struct call_wait w = {0};
    struct ctl_bs_reply r;
    struct id key;
    char hex[ID_HEX_LEN + 1];
    uint8_t block[ROOT_MAX_LEN], req[8 + ROOT_MAX_LEN];
    size_t blen, rl;
    int rc, status = 1;

    rc = root_encode(sk, version, payload, plen, block, &blen);
    if (rc) {
        fprintf(stderr, "%s: cannot sign the root: %s\n", prog, strerror(-rc));
        return 1;
    }
    root_key(&sk->pub, &key);
    id_to_hex(&key, hex);
    rl = ctl_root_put_encode(expect, block, blen, req, sizeof(req));
    if (rl == 0) {
        fprintf(stderr, "%s: the request does not fit\n", prog);
        return 1;
    }
    if (call(prog, c, CTL_MSG_ROOT_PUT, req, rl, &w))
        return 1;
    if (ctl_bs_reply_decode(w.payload, w.len, &r) < 0) {
        fprintf(stderr, "%s: the node's reply does not decode\n", prog);
        goto out;
    }
    if (r.status == BS_ERR_CONFLICT) {
        /* The version comes from the root the node returned, if it verifies;
         * else from the reply's field. */
        struct root_info ri;
        uint64_t cur = r.version;
        if (r.len && root_verify(&key, r.bytes, r.len, &ri) == 0)
            cur = ri.version;
        fprintf(stderr, "%s: conflict: the current version is %" PRIu64 ", not %" PRIu64 "%s%s\n",
                prog, cur, expect, r.reason[0] ? ": " : "", r.reason);
        status = ROOT_EXIT_CONFLICT;
        goto out;
    }
    if (r.status) {
        fprintf(stderr, "%s: refused: %s\n", prog, r.reason[0] ? r.reason : bs_strerror(r.status));
        goto out;
    }
    printf("stored version %" PRIu64 " on %u copies\nkey %s\n", version, (unsigned)r.copies, hex);
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    free(w.payload);
    return status;
}

/* --- the command -------------------------------------------------------------- */

int cmd_root(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"key", required_argument, NULL, 'k'},
        {"version", required_argument, NULL, 'V'},
        {"expect", required_argument, NULL, 'e'},
        {"any", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *datadir = NULL, *key_name = NULL, *verb = NULL;
    uint64_t version = 0, expect = 0;
    bool have_version = false, have_expect = false, any = false;
    struct ctl_client *c;
    int opt, status;

    /* Options may come before or after the verb: the first pass stops at the
     * verb ("+"), the second takes everything after it, in any order. */
    optind = 1;
    for (int pass = 0; pass < 2; pass++) {
        while ((opt = getopt_long(argc, argv, pass == 0 ? "+h" : "h", opts, NULL)) != -1) {
            switch (opt) {
            case 'd': datadir = optarg; break;
            case 'k': key_name = optarg; break;
            case 'V':
                if (!parse_u64(optarg, &version) || version == 0) {
                    fprintf(stderr, "coopfs root: --version wants a number >= 1, not '%s'\n",
                            optarg);
                    return 2;
                }
                have_version = true;
                break;
            case 'e':
                if (!parse_u64(optarg, &expect) || expect == BS_ROOT_ANY) {
                    fprintf(stderr,
                            "coopfs root: --expect wants a version (0: none yet), "
                            "not '%s'\n",
                            optarg);
                    return 2;
                }
                have_expect = true;
                break;
            case 'a': any = true; break;
            case 'h': fputs(root_usage, stdout); return 0;
            default: fputs(root_usage, stderr); return 2;
            }
        }
        if (pass == 0) {
            if (optind >= argc) {
                fputs(root_usage, stderr);
                return 2;
            }
            verb = argv[optind];
            /* getopt starts again after the verb (0: glibc re-initializes). */
            argv += optind;
            argc -= optind;
            optind = 0;
        }
    }

    if (strcmp(verb, "get") == 0) {
        struct sig_pub pub;
        if (have_version || have_expect || any || (key_name != NULL) == (optind < argc) ||
            optind + (key_name ? 0 : 1) != argc) {
            fputs(root_usage, stderr);
            return 2;
        }
        if (key_name) {
            char path[4096];
            int rc = tools_key_path(key_name, ".pub", path, sizeof(path));
            if (rc < 0) {
                fprintf(stderr, "coopfs root get: no path for the key '%s': %s\n", key_name,
                        strerror(-rc));
                return 1;
            }
            rc = sig_pub_load(path, &pub);
            if (rc < 0) {
                fprintf(stderr, "coopfs root get: cannot load the public key %s: %s%s\n", path,
                        strerror(-rc),
                        rc == -ENOENT ? " (make a key pair with 'coopfs keygen NAME')" : "");
                return 1;
            }
        } else if (sig_pub_from_hex(argv[optind], &pub) < 0) {
            fprintf(stderr, "coopfs root get: a public key is 64 hex digits, not '%s'\n",
                    argv[optind]);
            return 2;
        }
        c = tools_open_node("coopfs root get", datadir);
        if (!c)
            return 1;
        status = root_get(c, &pub);
        ctl_client_free(c);
        return status;
    }
    if (strcmp(verb, "put") == 0) {
        uint8_t payload[ROOT_MAX_PAYLOAD];
        struct sig_key sk;
        long plen;

        if (!key_name || !have_version || (have_expect && any) || optind + 1 != argc) {
            fputs(root_usage, stderr);
            return 2;
        }
        plen = parse_hex(argv[optind], payload, sizeof(payload));
        if (plen < 0) {
            fprintf(stderr,
                    "coopfs root put: the payload is hex of at most %u bytes, not '%.80s'\n",
                    ROOT_MAX_PAYLOAD, argv[optind]);
            return 2;
        }
        if (any)
            expect = BS_ROOT_ANY;
        else if (!have_expect)
            expect = version - 1;
        if (!any && expect >= version) {
            fprintf(stderr,
                    "coopfs root put: --expect %" PRIu64 " is not below --version %" PRIu64 "\n",
                    expect, version);
            return 2;
        }
        if (tools_key_load(key_name, &sk) < 0)
            return 1;
        c = tools_open_node("coopfs root put", datadir);
        if (!c) {
            memset(&sk, 0, sizeof(sk));
            return 1;
        }
        status = root_put(c, &sk, version, expect, payload, (size_t)plen);
        memset(&sk, 0, sizeof(sk));
        ctl_client_free(c);
        return status;
    }
    fprintf(stderr, "coopfs root: unknown verb '%s' (get or put)\n\n", verb);
    fputs(root_usage, stderr);
    return 2;
}
