/* sim_balance.c — coopfs sim balance: keys per node, with and without
 * virtual nodes (Chord paper Figs. 8 and 9). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chord/chord.h"
#include "sim/sim.h"
#include "tools/cmd.h"
#include "tools/sim_cmd.h"
#include "tools/svg.h"

/* ---- balance ----------------------------------------------------------- */

struct bal_opts {
    uint64_t nodes, seed;
    struct u64_list keys, vnodes;
    const char *svg;
    bool nosvg;
};

struct bal_row {
    uint64_t keys, vnodes;
    double mean, p1, p99, max;
};

struct vslot {
    struct id id;
    uint32_t node;
};

static int cmp_vslot(const void *a, const void *b)
{
    return id_cmp(&((const struct vslot *)a)->id, &((const struct vslot *)b)->id);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The simulator's address of node i (sim.c): 127.a.b.c:4000, a.b.c = i + 1. */
static void sim_node_addr(uint32_t i, struct addr *out)
{
    uint32_t n = i + 1;
    addr_v4(out, 127, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, 4000);
}

/* The value at rank floor(q * n) of sorted[0..n), as sim.c ranks hops. */
static uint32_t rank(const uint32_t *sorted, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n);
    return sorted[i < n ? i : n - 1];
}

/* Counts keys per physical node with v vnodes each, after each key count
 * of o->keys; keys[] are the random keys in the order they are added.
 * Fills one row per key count. Returns 0 or -ENOMEM. */
static int bal_run(const struct bal_opts *o, unsigned v, const struct id *keys,
                   struct bal_row *rows)
{
    uint32_t nodes = (uint32_t)o->nodes;
    size_t nv = (size_t)nodes * v;
    struct vslot *slots = malloc(nv * sizeof(*slots));
    uint32_t *count = calloc(nodes, sizeof(*count));
    uint32_t *sorted = malloc(nodes * sizeof(*sorted));
    int rc = -ENOMEM;

    if (!slots || !count || !sorted)
        goto out;
    for (uint32_t i = 0; i < nodes; i++) {
        struct addr a;
        sim_node_addr(i, &a);
        for (unsigned k = 0; k < v; k++) {
            chord_vnode_id(&a, k, &slots[(size_t)i * v + k].id);
            slots[(size_t)i * v + k].node = i;
        }
    }
    qsort(slots, nv, sizeof(*slots), cmp_vslot);
    uint64_t done = 0;
    for (size_t r = 0; r < o->keys.n; r++) {
        for (; done < o->keys.v[r]; done++) {
            /* The successor: the first vnode id >= key, else the first. */
            size_t lo = 0, hi = nv;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (id_cmp(&slots[mid].id, &keys[done]) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            count[slots[lo == nv ? 0 : lo].node]++;
        }
        memcpy(sorted, count, nodes * sizeof(*sorted));
        qsort(sorted, nodes, sizeof(*sorted), cmp_u32);
        rows[r].keys = o->keys.v[r];
        rows[r].vnodes = v;
        rows[r].mean = (double)o->keys.v[r] / nodes;
        rows[r].p1 = rank(sorted, nodes, 0.01);
        rows[r].p99 = rank(sorted, nodes, 0.99);
        rows[r].max = sorted[nodes - 1];
    }
    rc = 0;
out:
    free(slots);
    free(count);
    free(sorted);
    return rc;
}

/* Plots the rows of the largest key count, one per vnode count. */
static int bal_plot(const struct bal_opts *o, const struct bal_row *rows)
{
    struct svg_plot *p = svg_plot_new("Load balance: keys per physical node",
                                      "virtual nodes per physical node", "keys per node / mean");
    char sub[200];
    size_t last = o->keys.n - 1;
    if (!p)
        return -ENOMEM;
    snprintf(sub, sizeof(sub),
             "coopfs sim balance --seed %" PRIu64 ": %" PRIu64 " nodes, %" PRIu64
             " keys; real vnode ids, no protocol run",
             o->seed, o->nodes, o->keys.v[last]);
    svg_plot_set_subtitle(p, sub);
    int s99 = svg_plot_add_series(p, "99th percentile / mean", SVG_LINE | SVG_MARKERS);
    int s1 = svg_plot_add_series(p, "1st percentile / mean", SVG_LINE | SVG_MARKERS);
    int s0 = svg_plot_add_series(p, "mean", SVG_LINE | SVG_DASHED);
    for (size_t j = 0; j < o->vnodes.n; j++) {
        const struct bal_row *b = &rows[j * o->keys.n + last];
        svg_series_add(p, s99, (double)b->vnodes, b->p99 / b->mean);
        svg_series_add(p, s1, (double)b->vnodes, b->p1 / b->mean);
        svg_series_add(p, s0, (double)b->vnodes, 1.0);
    }
    int rc = simcmd_save_plot(p, o->svg);
    svg_plot_free(p);
    return rc;
}

static void bal_print(const struct bal_opts *o, const struct bal_row *rows)
{
    size_t last = o->keys.n - 1;

    printf("Keys per node against the number of keys, %" PRIu64
           " vnode(s) per node (paper Fig. 8a):\n",
           o->vnodes.v[0]);
    printf("%9s %9s %7s %7s %7s %9s %9s\n", "keys", "mean", "p1", "p99", "max", "p1/mean",
           "p99/mean");
    for (size_t r = 0; r < o->keys.n; r++) {
        const struct bal_row *b = &rows[r];
        printf("%9" PRIu64 " %9.1f %7.0f %7.0f %7.0f %9.3f %9.3f\n", b->keys, b->mean, b->p1,
               b->p99, b->max, b->p1 / b->mean, b->p99 / b->mean);
    }
    printf("\nKeys per node against virtual nodes per node, %" PRIu64 " keys (paper Fig. 9):\n",
           o->keys.v[last]);
    printf("%7s %9s %9s %7s %7s %7s %9s %9s\n", "vnodes", "vnode ids", "mean", "p1", "p99", "max",
           "p1/mean", "p99/mean");
    for (size_t j = 0; j < o->vnodes.n; j++) {
        const struct bal_row *b = &rows[j * o->keys.n + last];
        printf("%7" PRIu64 " %9" PRIu64 " %9.1f %7.0f %7.0f %7.0f %9.3f %9.3f\n", b->vnodes,
               b->vnodes * o->nodes, b->mean, b->p1, b->p99, b->max, b->p1 / b->mean,
               b->p99 / b->mean);
    }
}

int sim_balance(int argc, char **argv)
{
    struct bal_opts o = {
        .nodes = 10000,
        .seed = 1,
        .keys = {{100000, 200000, 300000, 400000, 500000, 600000, 700000, 800000, 900000, 1000000},
                 10},
        .vnodes = {{1, 2, 5, 10, 20}, 5},
        .svg = "balance.svg",
    };
    const struct opt_spec specs[] = {
        {"nodes", OPT_U64, &o.nodes, 1, (1 << 24) - 2, "N", "physical nodes (default 10000)"},
        {"keys", OPT_U64_LIST, &o.keys, 1, 1e8, "K,...",
         "key counts (default 100000,200000,...,1000000)"},
        {"vnodes", OPT_U64_LIST, &o.vnodes, 1, CHORD_MAX_VNODES, "V,...",
         "virtual nodes per node (default 1,2,5,10,20)"},
        {"seed", OPT_U64, &o.seed, 0, 18446744073709551615.0, "S",
         "random seed of the keys (default 1)"},
        {"svg", OPT_STR, &o.svg, 0, 0, "FILE", "plot file (default balance.svg)"},
        {"no-svg", OPT_FLAG, &o.nosvg, 0, 0, NULL, "write no plot"},
    };
    const struct sub sub = {
        "balance", "[--nodes N] [--keys K,...] [--vnodes V,...] [--seed S] [--svg FILE | --no-svg]",
        "Keys per physical node (Chord paper, Figs. 8 and 9), computed from the real vnode\n"
        "ids (chord_vnode_id of the simulator's addresses) without running the protocol:\n"
        "each random key goes to its successor among the sorted vnode ids.",
        specs, sizeof(specs) / sizeof(specs[0])};
    bool done;
    int rc = simcmd_parse_opts(&sub, argc, argv, &done);
    if (done)
        return rc;
    simcmd_u64_list_sort(&o.keys);
    simcmd_u64_list_sort(&o.vnodes);
    uint64_t kmax = o.keys.v[o.keys.n - 1];
    if ((double)o.nodes * (double)o.vnodes.v[o.vnodes.n - 1] > 64e6) {
        fprintf(stderr, "coopfs sim balance: --nodes times the largest --vnodes is above 64 "
                        "million\n");
        return 2;
    }

    struct id *keys = malloc(kmax * sizeof(*keys));
    struct bal_row *rows = calloc(o.keys.n * o.vnodes.n, sizeof(*rows));
    struct sim *gen = NULL;
    struct sim_config cfg;
    int status = 1;
    double t0 = simcmd_wall_now();

    sim_config_default(&cfg, o.seed);
    if (!keys || !rows || sim_new(&cfg, &gen) != 0)
        goto oom;
    /* Keys from the simulator's own generator, so they replay with the seed. */
    for (uint64_t k = 0; k < kmax; k++)
        for (int b = 0; b < ID_BYTES; b += 8) {
            uint64_t r = sim_random(gen);
            memcpy(keys[k].b + b, &r, 8);
        }
    for (size_t j = 0; j < o.vnodes.n; j++)
        if (bal_run(&o, (unsigned)o.vnodes.v[j], keys, &rows[j * o.keys.n]) != 0)
            goto oom;

    printf("coopfs sim balance --seed %" PRIu64 " --nodes %" PRIu64 "\n", o.seed, o.nodes);
    printf("Keys per physical node, computed from the real vnode ids (chord_vnode_id of the\n"
           "simulator's addresses 127.a.b.c:4000) without running the protocol: %" PRIu64
           " nodes,\nrandom keys from seed %" PRIu64
           ", each stored at its successor vnode and counted for\nthat vnode's physical "
           "node.\n\n",
           o.nodes, o.seed);
    bal_print(&o, rows);
    printf("\nwall time %.1f s\n", simcmd_wall_now() - t0);
    status = 0;
    if (!o.nosvg && bal_plot(&o, rows) != 0)
        status = 1;
    goto out;
oom:
    fprintf(stderr, "coopfs sim balance: out of memory\n");
out:
    sim_free(gen);
    free(keys);
    free(rows);
    return status;
}
