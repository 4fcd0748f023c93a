/* demo.c — coopfs sim demo: a local ring of nodes in the simulator, narrated.
 *
 * It builds a ring on
 * the real chord/ code, shows it, looks keys up, crashes nodes, lets one
 * leave, partitions the network and heals it, and checks Zave's invariants
 * all along. Everything follows from --seed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "sim/sim.h"
#include "tools/cmd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: coopfs sim demo [--nodes N] [--vnodes V] [--seed S] [--quiet]\n"
               "\n"
               "Runs a local ring of N nodes (default 12) in the deterministic simulator\n"
               "on the real Chord code and narrates what happens: joins, stabilization,\n"
               "lookups, crashes, a voluntary leave, a partition and its healing.\n");
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

static void short_hex(const struct id *id, char *buf)
{
    char hex[ID_HEX_LEN + 1];
    id_to_hex(id, hex);
    memcpy(buf, hex, 12);
    buf[12] = '\0';
}

static void show_ring(struct sim *s)
{
    char a[13], b[13], c[13], who[ADDR_STR_MAX];
    printf("    %-22s %-14s %-14s %-14s %s\n", "node", "vnode id", "predecessor", "successor",
           "list");
    for (unsigned i = 0; i < sim_node_count(s); i++) {
        struct chord *ch = sim_node_chord(s, i);
        if (!ch)
            continue;
        for (unsigned v = 0; v < chord_vnode_count(ch); v++) {
            const struct chord_peer *self = chord_vnode_self(ch, v), *list;
            struct chord_peer pred;
            size_t n = chord_vnode_successors(ch, v, &list);
            short_hex(&self->id, a);
            strcpy(b, "-");
            strcpy(c, "-");
            if (chord_vnode_predecessor(ch, v, &pred))
                short_hex(&pred.id, b);
            if (n)
                short_hex(&list[0].id, c);
            addr_format(&self->addr, who, sizeof(who));
            printf("    %-18s/%-3u %-14s %-14s %-14s %zu entr%s\n", who, v, a, b, c, n,
                   n == 1 ? "y" : "ies");
        }
    }
}

static int check(struct sim *s, const char *when)
{
    const char *first;
    if (sim_violations(s, &first)) {
        printf("  !! invariant violated %s: %s\n", when, first);
        return -1;
    }
    return 0;
}

static int heal(struct sim *s, const char *what)
{
    char why[256];
    int64_t t = sim_run_until_ideal(s, 300000);
    if (t < 0) {
        sim_ring_is_ideal(s, why, sizeof(why));
        printf("  !! the ring did not become ideal after %s: %s\n", what, why);
        return -1;
    }
    printf("  the ring is ideal again %.1f s after %s (%.0f stabilization periods)\n",
           (double)t / 1000.0, what, (double)t / CHORD_STABILIZE_MS);
    return 0;
}

static int lookups(struct sim *s, uint64_t n)
{
    struct sim_lookup_stats st;
    sim_lookups(s, n, 2000, &st);
    printf("  %" PRIu64 " lookups of random keys from random nodes: %" PRIu64 " correct, %" PRIu64
           " wrong, %" PRIu64 " failed; %.2f hops on average (99th percentile %u), %.0f ms\n",
           st.issued, st.ok, st.wrong, st.failed, st.mean_hops, st.p99_hops, st.mean_ms);
    return st.ok == st.issued ? 0 : -1;
}

int cmd_sim_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"nodes", required_argument, NULL, 'n'}, {"vnodes", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'},  {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    unsigned long long nodes = 12, vnodes = 1, seed = 1;
    bool quiet = false;
    int o, rc = 0;

    optind = 1;
    while ((o = getopt_long(argc, argv, "n:v:s:qh", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            if (parse_uint(optarg, 4096, &nodes) || nodes < 3) {
                fprintf(stderr, "coopfs sim demo: --nodes wants a number from 3 to 4096\n");
                return 2;
            }
            break;
        case 'v':
            if (parse_uint(optarg, CHORD_MAX_VNODES, &vnodes) || vnodes < 1) {
                fprintf(stderr, "coopfs sim demo: --vnodes wants a number from 1 to %d\n",
                        CHORD_MAX_VNODES);
                return 2;
            }
            break;
        case 's':
            if (parse_uint(optarg, UINT64_MAX, &seed)) {
                fprintf(stderr, "coopfs sim demo: --seed wants a non-negative number\n");
                return 2;
            }
            break;
        case 'q': quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "coopfs sim demo: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    struct sim_config cfg;
    struct sim *s;
    sim_config_default(&cfg, seed);
    cfg.vnodes = (unsigned)vnodes;
    if (!quiet) {
        cfg.log = stdout;
        cfg.log_level = LOG_INFO;
    }
    if (sim_new(&cfg, &s) != 0) {
        fprintf(stderr, "coopfs sim demo: cannot start the simulator\n");
        return 1;
    }
    printf("coopfs sim demo: %llu nodes x %llu vnode(s) in the simulator, seed %llu\n"
           "(the real Chord code; virtual time; network latency 5-50 ms; r = %d)\n\n",
           nodes, vnodes, seed, CHORD_SUCC_LEN);

    printf("== 1. one node creates the ring, the others join one by one\n");
    sim_add_node(s, -1);
    for (unsigned i = 1; i < nodes; i++) {
        sim_add_nodes(s, 1);
        sim_run_for(s, 300);
    }
    if (heal(s, "the last join") || check(s, "while joining"))
        rc = 1;
    printf("\n== 2. the ring as every node sees it\n");
    show_ring(s);
    sim_run_for(s, 20000); /* let fix-fingers fill the finger tables */
    printf("\n== 3. lookups on the stable ring\n");
    if (lookups(s, 20 * nodes))
        rc = 1;

    printf("\n== 4. a third of the nodes crash at the same instant\n");
    size_t crashed = sim_crash_random(s, nodes / 3);
    printf("  %zu nodes crashed (chosen so that every survivor keeps a live successor)\n", crashed);
    if (heal(s, "the crash") || check(s, "after the crash") || lookups(s, 20 * nodes))
        rc = 1;

    printf("\n== 5. a node leaves voluntarily (it hands over to its neighbours)\n");
    for (unsigned i = 0; i < sim_node_count(s); i++) {
        if (sim_node_alive(s, i) && sim_leave(s, i) == 0) {
            uint64_t start = sim_now(s);
            while (sim_node_alive(s, i) && sim_now(s) - start < 30000)
                sim_run_for(s, 10);
            printf("  node %u left after %" PRIu64 " ms (its neighbours acknowledged)\n", i,
                   sim_now(s) - start);
            break;
        }
    }
    if (heal(s, "the leave") || check(s, "after the leave"))
        rc = 1;

    printf("\n== 6. the network splits in two for 20 s, then heals\n");
    unsigned n = sim_node_count(s);
    uint8_t *group = calloc(n, 1);
    if (!group) {
        sim_free(s);
        return 1;
    }
    for (unsigned i = 0; i < n; i++)
        group[i] = (uint8_t)(sim_random(s) & 1);
    sim_partition(s, group);
    free(group);
    sim_run_for(s, 20000);
    printf("  split: each side stabilizes into a ring of its own\n");
    sim_heal(s);
    printf("  healed: nodes probe the peers they lost (long-term memory) and merge\n");
    if (heal(s, "the partition healed") || lookups(s, 20 * nodes))
        rc = 1;
    printf("\n== 7. the ring at the end\n");
    show_ring(s);
    char why[256];
    if (sim_check_now(s, why, sizeof(why)) != 0) {
        printf("  !! %s\n", why);
        rc = 1;
    }
    printf("\n%" PRIu64 " events in %.1f s of virtual time; trace hash %016" PRIx64
           " (the same seed gives the same hash)\n",
           sim_events(s), (double)sim_now(s) / 1000.0, sim_trace_hash(s));
    printf("%s\n", rc ? "coopfs sim demo: FAILED" : "coopfs sim demo: every check held");
    sim_free(s);
    return rc;
}
