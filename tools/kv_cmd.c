/* kv_cmd.c — coopfs kv put/get: command-line clients of the DHT API
 * (net/api.h) of a running node. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "blockstore/block.h"
#include "common/addr.h"
#include "common/hash.h"
#include "net/api.h"
#include "net/sockaddr.h"
#include "tools/cmd.h"

#define KV_TIMEOUT_MS 30000

static const char kv_usage[] =
    "usage: coopfs kv [--data DIR | --api HOST:PORT] put [--ttl SECONDS]\n"
    "                 [--replication N] KEY VALUE|-\n"
    "       coopfs kv [--data DIR | --api HOST:PORT] get KEY\n"
    "\n"
    "Stores or fetches a value through the DHT API of a running node (the\n"
    "address in DIR/node.json unless --api). KEY is 64 hex digits, or any other\n"
    "text, which is hashed with SHA-256. VALUE '-' reads standard input (at most\n"
    "65000 bytes). get writes the value to standard output; exit status 1 if\n"
    "no node has it.\n";

/* The "api" address from DATA/node.json. */
static int api_from_datadir(const char *datadir, struct addr *out)
{
    char path[4096], buf[8192], *p, *q;
    FILE *f;
    size_t n;

    if (!datadir)
        datadir = tools_default_datadir();
    if (!datadir || (size_t)snprintf(path, sizeof(path), "%s/node.json", datadir) >= sizeof(path))
        return -ENOENT;
    f = fopen(path, "re");
    if (!f)
        return -errno;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strstr(buf, "\"api\": \"");
    if (!p)
        return -ENOENT;
    p += strlen("\"api\": \"");
    q = strchr(p, '"');
    if (!q)
        return -EINVAL;
    *q = '\0';
    return addr_parse(p, out);
}

static int connect_api(const struct addr *a)
{
    struct sockaddr_storage ss;
    socklen_t sl = net_sockaddr_from_addr(a, &ss);
    int fd;

    if (!sl)
        return -EAFNOSUPPORT;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int io_all(int fd, uint8_t *p, size_t len, bool rd)
{
    while (len) {
        struct pollfd pfd = {.fd = fd, .events = rd ? POLLIN : POLLOUT};
        int pr = poll(&pfd, 1, KV_TIMEOUT_MS);
        ssize_t r;
        if (pr == 0)
            return -ETIMEDOUT;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        r = rd ? read(fd, p, len) : write(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ECONNRESET;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static void key_of(const char *s, struct id *out)
{
    if (strlen(s) == ID_HEX_LEN && id_from_hex(s, out) == 0)
        return;
    hash_sha256(out, s, strlen(s));
}

struct kv_opts {
    const char *datadir, *api_s;
    unsigned long ttl, repl;
};

/* One option of either position (before or after the verb). Returns -1 to
 * go on, or an exit status. */
static int kv_opt(int opt, struct kv_opts *o)
{
    char *end;

    switch (opt) {
    case 'd': o->datadir = optarg; return -1;
    case 'a': o->api_s = optarg; return -1;
    case 't':
        o->ttl = strtoul(optarg, &end, 10);
        if (*end || o->ttl > 65535) {
            fprintf(stderr, "coopfs kv: --ttl wants 0..65535 seconds\n");
            return 2;
        }
        return -1;
    case 'r':
        o->repl = strtoul(optarg, &end, 10);
        if (*end || o->repl < 1 || o->repl > 255) {
            fprintf(stderr, "coopfs kv: --replication wants 1..255\n");
            return 2;
        }
        return -1;
    case 'h': fputs(kv_usage, stdout); return 0;
    default: fputs(kv_usage, stderr); return 2;
    }
}

int cmd_kv(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'}, {"api", required_argument, NULL, 'a'},
        {"ttl", required_argument, NULL, 't'},  {"replication", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    struct kv_opts o = {.repl = 3};
    struct addr api;
    struct id key;
    uint8_t *msg = NULL, hdr[4 + ID_BYTES];
    size_t mlen, vlen = 0;
    int opt, fd = -1, rc, status = 1;
    bool put;

    optind = 1;
    /* "+": options stop at the verb, so put's own options come after it. */
    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if ((rc = kv_opt(opt, &o)) >= 0)
            return rc;
        if (optind < argc && (!strcmp(argv[optind], "put") || !strcmp(argv[optind], "get")))
            break;
    }
    if (optind >= argc) {
        fputs(kv_usage, stderr);
        return 2;
    }
    put = strcmp(argv[optind], "put") == 0;
    if (!put && strcmp(argv[optind], "get") != 0) {
        fprintf(stderr, "coopfs kv: unknown verb '%s' (put or get)\n", argv[optind]);
        return 2;
    }
    /* The verb's own options (put: --ttl, --replication). */
    argc -= optind;
    argv += optind;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if ((rc = kv_opt(opt, &o)) >= 0)
            return rc;
    if (argc - optind != (put ? 2 : 1)) {
        fputs(kv_usage, stderr);
        return 2;
    }
    key_of(argv[optind], &key);
    if (o.api_s) {
        if (addr_parse(o.api_s, &api) < 0) {
            fprintf(stderr, "coopfs kv: --api wants HOST:PORT, not '%s'\n", o.api_s);
            return 2;
        }
    } else if ((rc = api_from_datadir(o.datadir, &api)) < 0) {
        fprintf(stderr,
                "coopfs kv: no DHT API address: no running node with one in %s/node.json "
                "(%s); give --api HOST:PORT\n",
                o.datadir ? o.datadir : tools_default_datadir(), strerror(-rc));
        return 1;
    }
    msg = malloc(8 + ID_BYTES + KV_MAX_VALUE + 1);
    if (!msg)
        return 1;
    if (put) {
        const char *v = argv[optind + 1];
        if (strcmp(v, "-") == 0) {
            size_t r;
            while ((r = fread(msg + 8 + ID_BYTES + vlen, 1, KV_MAX_VALUE + 1 - vlen, stdin)) > 0)
                vlen += r;
        } else {
            vlen = strlen(v);
            if (vlen <= KV_MAX_VALUE)
                memcpy(msg + 8 + ID_BYTES, v, vlen);
        }
        if (vlen > KV_MAX_VALUE) {
            fprintf(stderr, "coopfs kv: a value holds at most %u bytes\n", KV_MAX_VALUE);
            goto out;
        }
        mlen = 8 + ID_BYTES + vlen;
        msg[0] = (uint8_t)(mlen >> 8);
        msg[1] = (uint8_t)mlen;
        msg[2] = API_MSG_PUT >> 8;
        msg[3] = API_MSG_PUT & 0xff;
        msg[4] = (uint8_t)(o.ttl >> 8);
        msg[5] = (uint8_t)o.ttl;
        msg[6] = (uint8_t)o.repl;
        msg[7] = 0;
        memcpy(msg + 8, key.b, ID_BYTES);
    } else {
        mlen = 4 + ID_BYTES;
        msg[0] = 0;
        msg[1] = (uint8_t)mlen;
        msg[2] = API_MSG_GET >> 8;
        msg[3] = API_MSG_GET & 0xff;
        memcpy(msg + 4, key.b, ID_BYTES);
    }
    fd = connect_api(&api);
    if (fd < 0) {
        char a[ADDR_STR_MAX];
        addr_format(&api, a, sizeof(a));
        fprintf(stderr, "coopfs kv: cannot reach the DHT API at %s: %s\n", a, strerror(-fd));
        goto out;
    }
    if ((rc = io_all(fd, msg, mlen, false)) < 0 || (rc = io_all(fd, hdr, sizeof(hdr), true)) < 0) {
        fprintf(stderr, "coopfs kv: %s\n", strerror(-rc));
        goto out;
    }
    size_t size = (size_t)(hdr[0] << 8 | hdr[1]);
    uint16_t type = (uint16_t)(hdr[2] << 8 | hdr[3]);
    if (size < sizeof(hdr) || memcmp(hdr + 4, key.b, ID_BYTES) != 0 ||
        (type != API_MSG_SUCCESS && type != API_MSG_FAILURE)) {
        fprintf(stderr, "coopfs kv: the node's answer does not decode\n");
        goto out;
    }
    vlen = size - sizeof(hdr);
    if (vlen && (rc = io_all(fd, msg, vlen, true)) < 0) {
        fprintf(stderr, "coopfs kv: %s\n", strerror(-rc));
        goto out;
    }
    if (type == API_MSG_FAILURE) {
        fprintf(stderr, put ? "coopfs kv: the ring did not store the value\n"
                            : "coopfs kv: no value under that key\n");
        goto out;
    }
    if (!put && fwrite(msg, 1, vlen, stdout) != vlen)
        goto out;
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    if (fd >= 0)
        close(fd);
    free(msg);
    return status;
}
