/* node_cmd.c — coopfs node, status and lookup-key: argument parsing only;
 * net/ does the work. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/id.h"
#include "net/control.h"
#include "blockstore/bs.h"
#include "net/node.h"
#include "tools/cmd.h"

/* The default data directory: $XDG_DATA_HOME/coopfs or
 * ~/.local/share/coopfs. Returns a static buffer or NULL. */
int tools_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!*s || *s == '-')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -EINVAL;
    }
    if (*end == 'i' && shift)
        end++;
    if ((*end == 'B' || *end == 'b') && (shift || end != s))
        end++;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

const char *tools_default_datadir(void)
{
    static char path[4096];
    const char *x = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;

    if (x && *x)
        n = snprintf(path, sizeof(path), "%s/coopfs", x);
    else if (home && *home)
        n = snprintf(path, sizeof(path), "%s/.local/share/coopfs", home);
    else
        return NULL;
    return n > 0 && (size_t)n < sizeof(path) ? path : NULL;
}

static const char node_usage[] =
    "usage: coopfs node [--data DIR] [--listen HOST:PORT] [--join HOST:PORT]...\n"
    "                   [--vnodes N] [--http HOST:PORT] [--log-level LEVEL]\n"
    "                   [--capacity SIZE] [--replicas K] [--owner-cap SIZE]\n"
    "                   [--api HOST:PORT | --no-api]\n"
    "\n"
    "Runs a node in the foreground until SIGTERM or SIGINT, which make it\n"
    "leave the ring. See docs/operations.md.\n"
    "\n"
    "  --data DIR         state directory (default $XDG_DATA_HOME/coopfs or\n"
    "                     ~/.local/share/coopfs)\n"
    "  --listen HOST:PORT where other nodes reach this one (default 127.0.0.1:4000;\n"
    "                     port 0: the kernel picks, see DIR/node.json)\n"
    "  --join HOST:PORT   a member of the ring to join (repeatable); without it\n"
    "                     the node starts a new ring\n"
    "  --vnodes N         virtual nodes, 1..64 (default 1)\n"
    "  --http HOST:PORT   serve /status, /metrics and /ring.svg\n"
    "  --log-level LEVEL  debug, info, warn or error (default info)\n"
    "  --capacity SIZE    disk space donated to the ring under DIR/store, e.g. 500M,\n"
    "                     20G (default 10G)\n"
    "  --replicas K       copies of every block, 1..8 (default 3); the same on every\n"
    "                     node of a ring\n"
    "  --owner-cap SIZE   most one owner (public key) may store here (default: no cap)\n"
    "  --api HOST:PORT    the DHT API for local programs (default 127.0.0.1:7401;\n"
    "                     port 0: the kernel picks, see DIR/node.json)\n"
    "  --no-api           no DHT API\n";

void tools_node_defaults(struct net_node_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->vnodes = 1;
    cfg->log_level = LOG_INFO;
    cfg->capacity = NET_NODE_CAPACITY_DEFAULT;
    cfg->replicas = BS_REPLICAS_DEFAULT;
    cfg->api_on = true;
    addr_parse("127.0.0.1:4000", &cfg->listen);
    addr_parse("127.0.0.1:7401", &cfg->api);
}

int tools_node_option(const char *prog, int opt, const char *arg, struct net_node_config *cfg)
{
    switch (opt) {
    case 'd': cfg->datadir = arg; return 0;
    case 'l':
        if (addr_parse_listen(arg, &cfg->listen) < 0) {
            fprintf(stderr, "%s: --listen wants HOST:PORT with a numeric host, not '%s'\n", prog,
                    arg);
            return 2;
        }
        if (addr_is_unspecified(&cfg->listen)) {
            fprintf(stderr,
                    "%s: --listen needs a concrete address: '%s' cannot name this node on the "
                    "ring\n",
                    prog, arg);
            return 2;
        }
        return 0;
    case 'j':
        if (cfg->njoin == NET_NODE_MAX_JOIN) {
            fprintf(stderr, "%s: at most %d --join addresses\n", prog, NET_NODE_MAX_JOIN);
            return 2;
        }
        if (addr_parse(arg, &cfg->join[cfg->njoin]) < 0) {
            fprintf(stderr, "%s: --join wants HOST:PORT, not '%s'\n", prog, arg);
            return 2;
        }
        cfg->njoin++;
        return 0;
    case 'v': {
        char *end;
        unsigned long v = strtoul(arg, &end, 10);
        if (*end || v < 1 || v > 64) {
            fprintf(stderr, "%s: --vnodes wants 1..64, not '%s'\n", prog, arg);
            return 2;
        }
        cfg->vnodes = (unsigned)v;
        return 0;
    }
    case 'H':
        if (addr_parse_listen(arg, &cfg->http) < 0) {
            fprintf(stderr, "%s: --http wants HOST:PORT, not '%s'\n", prog, arg);
            return 2;
        }
        cfg->http_on = true;
        return 0;
    case 'L':
        if (log_level_parse(arg, &cfg->log_level) < 0) {
            fprintf(stderr, "%s: --log-level wants debug, info, warn or error\n", prog);
            return 2;
        }
        return 0;
    case 'c':
    case 'C': {
        uint64_t v;
        if (tools_parse_size(arg, &v) < 0) {
            fprintf(stderr, "%s: --%s wants a size such as 4096, 500M or 20G, not '%s'\n", prog,
                    opt == 'c' ? "capacity" : "owner-cap", arg);
            return 2;
        }
        if (opt == 'c')
            cfg->capacity = v;
        else
            cfg->owner_cap = v;
        return 0;
    }
    case 'r': {
        char *end;
        unsigned long v = strtoul(arg, &end, 10);
        if (*end || v < 1 || v > BS_REPLICAS_MAX) {
            fprintf(stderr, "%s: --replicas wants 1..%d, not '%s'\n", prog, BS_REPLICAS_MAX,
                    arg);
            return 2;
        }
        cfg->replicas = (unsigned)v;
        return 0;
    }
    case 'a':
        if (addr_parse_listen(arg, &cfg->api) < 0 || addr_is_unspecified(&cfg->api)) {
            fprintf(stderr,
                    "%s: --api wants HOST:PORT with a concrete numeric host, not '%s'\n", prog,
                    arg);
            return 2;
        }
        cfg->api_on = true;
        return 0;
    case 'A': cfg->api_on = false; return 0;
    default: return 1;
    }
}

int cmd_node(int argc, char **argv)
{
    static const struct option opts[] = {
        TOOLS_NODE_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct net_node_config cfg;
    int opt;

    tools_node_defaults(&cfg);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(node_usage, stdout);
            return 0;
        }
        int rc = tools_node_option("coopfs node", opt, optarg, &cfg);
        if (rc == 1) {
            fputs(node_usage, stderr);
            return 2;
        }
        if (rc)
            return rc;
    }
    if (optind != argc) {
        fprintf(stderr, "coopfs node: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!cfg.datadir)
        cfg.datadir = tools_default_datadir();
    if (!cfg.datadir) {
        fprintf(stderr, "coopfs node: no --data and neither XDG_DATA_HOME nor HOME is set\n");
        return 2;
    }
    return net_node_run(&cfg);
}

/* Opens the control connection of the node of datadir, or explains. */
struct ctl_client *tools_open_node(const char *prog, const char *datadir)
{
    struct ctl_client *c;
    int rc;

    if (!datadir)
        datadir = tools_default_datadir();
    if (!datadir) {
        fprintf(stderr, "%s: no --data and neither XDG_DATA_HOME nor HOME is set\n", prog);
        return NULL;
    }
    rc = ctl_client_open(datadir, &c);
    if (rc == -ENOENT || rc == -ECONNREFUSED) {
        fprintf(stderr,
                "%s: no node is running with data directory %s (start one with "
                "'coopfs node --data %s')\n",
                prog, datadir, datadir);
        return NULL;
    }
    if (rc) {
        fprintf(stderr, "%s: cannot reach the node of %s: %s\n", prog, datadir, strerror(-rc));
        return NULL;
    }
    return c;
}

/* The options of the commands that talk to a running node: --data DIR,
 * --json, --help. Returns -1 to go on, or the exit status. */
static int parse_client_opts(int argc, char **argv, const char *usage, const char **datadir,
                             bool *json)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': *datadir = optarg; break;
        case 'J': *json = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    return -1;
}

static const char status_usage[] = "usage: coopfs status [--data DIR] [--json]\n";

int cmd_status(int argc, char **argv)
{
    const char *datadir = NULL;
    bool json = false;
    struct ctl_client *c;
    char *out = NULL;
    int rc;

    rc = parse_client_opts(argc, argv, status_usage, &datadir, &json);
    if (rc >= 0)
        return rc;
    if (optind != argc) {
        fputs(status_usage, stderr);
        return 2;
    }
    c = tools_open_node("coopfs status", datadir);
    if (!c)
        return 1;
    rc = json ? ctl_client_status(c, &out) : ctl_client_status_text(c, &out);
    if (rc) {
        fprintf(stderr, "coopfs status: %s%s%s\n", strerror(-rc), *ctl_client_error(c) ? ": " : "",
                ctl_client_error(c));
        ctl_client_free(c);
        return 1;
    }
    fputs(out, stdout);
    free(out);
    ctl_client_free(c);
    return 0;
}

static const char lookup_usage[] =
    "usage: coopfs lookup-key [--data DIR] [--json] KEY... | -\n"
    "KEY is 64 hex digits; '-' reads keys from standard input, one per line.\n";

struct lookup_out {
    const struct id *keys;
    bool json;
    unsigned failed;
};

static void print_lookup(void *ctx, size_t i, const struct ctl_lookup_reply *r)
{
    struct lookup_out *o = ctx;
    char key[ID_HEX_LEN + 1], id[ID_HEX_LEN + 1], a[ADDR_STR_MAX];

    id_to_hex(&o->keys[i], key);
    if (r->status) {
        o->failed++;
        if (o->json)
            printf("{\"key\": \"%s\", \"ok\": false, \"error\": \"%s\"}\n", key,
                   strerror(-r->status));
        else
            printf("%s  lookup failed: %s\n", key, strerror(-r->status));
        return;
    }
    id_to_hex(&r->id, id);
    addr_format(&r->addr, a, sizeof(a));
    if (o->json)
        printf("{\"key\": \"%s\", \"ok\": true, \"id\": \"%s\", \"addr\": \"%s\", \"hops\": %u, "
               "\"ms\": %.3f, \"iterative\": %s}\n",
               key, id, a, r->hops, (double)r->elapsed_us / 1000.0,
               r->iterative ? "true" : "false");
    else
        printf("%s\n  -> %s at %s, %u hop%s, %.3f ms%s\n", key, id, a, r->hops,
               r->hops == 1 ? "" : "s", (double)r->elapsed_us / 1000.0,
               r->iterative ? " (iterative fallback)" : "");
}

static int read_key(const char *s, struct id *out)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n != ID_HEX_LEN)
        return -EINVAL;
    char tmp[ID_HEX_LEN + 1];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return id_from_hex(tmp, out);
}

int cmd_lookup_key(int argc, char **argv)
{
    const char *datadir = NULL;
    struct lookup_out out = {0};
    struct id *keys = NULL;
    size_t n = 0, cap = 0;
    struct ctl_client *c;
    int rc;

    rc = parse_client_opts(argc, argv, lookup_usage, &datadir, &out.json);
    if (rc >= 0)
        return rc;
    if (optind == argc) {
        fputs(lookup_usage, stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        char line[256];
        bool from_stdin = strcmp(argv[i], "-") == 0;
        while (true) {
            const char *s = argv[i];
            if (from_stdin) {
                if (!fgets(line, sizeof(line), stdin))
                    break;
                if (line[strspn(line, " \r\n")] == '\0')
                    continue;
                s = line;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                struct id *nk = realloc(keys, cap * sizeof(*nk));
                if (!nk) {
                    fprintf(stderr, "coopfs lookup-key: out of memory\n");
                    free(keys);
                    return 1;
                }
                keys = nk;
            }
            if (read_key(s, &keys[n]) < 0) {
                fprintf(stderr, "coopfs lookup-key: a key is 64 hex digits, not '%.*s'\n",
                        (int)strcspn(s, "\r\n"), s);
                free(keys);
                return 2;
            }
            n++;
            if (!from_stdin)
                break;
        }
    }
    c = tools_open_node("coopfs lookup-key", datadir);
    if (!c) {
        free(keys);
        return 1;
    }
    out.keys = keys;
    rc = ctl_client_lookup(c, keys, n, 64, print_lookup, &out);
    if (rc) {
        fprintf(stderr, "coopfs lookup-key: %s%s%s\n", strerror(-rc),
                *ctl_client_error(c) ? ": " : "", ctl_client_error(c));
    }
    ctl_client_free(c);
    free(keys);
    fflush(stdout);
    return rc || out.failed ? 1 : 0;
}
