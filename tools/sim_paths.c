/* sim_paths.c — coopfs sim paths: lookup path length against ring size in
 * a stable ring (Chord paper Fig. 10). */
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

/* ---- paths ------------------------------------------------------------- */

struct paths_opts {
    uint64_t nodes, min, seed, spread;
    const char *svg;
    bool nosvg;
};

struct paths_row {
    unsigned n;
    struct sim_lookup_stats st;
    double fingers, build_s, wall_s;
    uint64_t events;
    int rc;
    char why[256];
};

static void paths_one(const struct paths_opts *o, unsigned n, struct paths_row *row)
{
    struct sim_config cfg;
    struct sim *s;
    double t0 = simcmd_wall_now();

    memset(row, 0, sizeof(*row));
    row->n = n;
    sim_config_default(&cfg, o->seed);
    cfg.check = SIM_CHECK_NONE; /* invariants are tested elsewhere; this is about speed */
    row->rc = sim_new(&cfg, &s);
    if (row->rc) {
        snprintf(row->why, sizeof(row->why), "sim_new: %s", strerror(-row->rc));
        return;
    }
    row->rc = simcmd_ring_build(s, n, row->why, sizeof(row->why));
    if (row->rc == 0) {
        /* One full check of the built ring is cheap next to the run. */
        char why[200];
        if (sim_check_now(s, why, sizeof(why)) != 0) {
            row->rc = -EPROTO;
            snprintf(row->why, sizeof(row->why), "invariant broken after build: %s", why);
        }
    }
    if (row->rc == 0) {
        row->fingers =
            simcmd_fingers_converge(s, (uint64_t)(log2(n) + 4) * CHORD_FIX_FINGER_MS * 8);
        row->build_s = simcmd_wall_now() - t0;
        if (simcmd_progress_on())
            fprintf(stderr, "  N=%u: ring built in %.1f s (%.1f s virtual), fingers %.2f%%\n", n,
                    row->build_s, (double)sim_now(s) / 1000.0, 100.0 * row->fingers);
        sim_lookups(s, 100ull * n, o->spread, &row->st);
        if (row->st.ok != row->st.issued) {
            row->rc = -EIO;
            snprintf(row->why, sizeof(row->why),
                     "%" PRIu64 " of %" PRIu64 " lookups not ok on a stable ring: %" PRIu64
                     " wrong, %" PRIu64 " failed",
                     row->st.issued - row->st.ok, row->st.issued, row->st.wrong, row->st.failed);
        }
    }
    row->events = sim_events(s);
    sim_free(s);
    row->wall_s = simcmd_wall_now() - t0;
}

static int paths_plot(const struct paths_opts *o, const struct paths_row *rows, size_t nrows)
{
    struct svg_plot *p = svg_plot_new("Chord lookup path length in a stable ring",
                                      "number of nodes N", "path length (overlay hops)");
    char sub[160];
    if (!p)
        return -ENOMEM;
    snprintf(sub, sizeof(sub), "coopfs sim paths --seed %" PRIu64 ", 100*N lookups per N", o->seed);
    svg_plot_set_subtitle(p, sub);
    svg_plot_set_xscale(p, SVG_LOG2);
    int mean = svg_plot_add_series(p, "mean path length, 1st..99th percentile",
                                   SVG_LINE | SVG_MARKERS | SVG_ERR_BAND | SVG_ERR_BARS);
    int half = svg_plot_add_series(p, "0.5 log2 N (Chord paper)", SVG_LINE | SVG_DASHED);
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].st.ok + rows[i].st.wrong == 0)
            continue;
        svg_series_add_range(p, mean, rows[i].n, rows[i].st.mean_hops, rows[i].st.p1_hops,
                             rows[i].st.p99_hops);
        svg_series_add(p, half, rows[i].n, 0.5 * log2(rows[i].n));
    }
    int rc = simcmd_save_plot(p, o->svg);
    svg_plot_free(p);
    return rc;
}

int sim_paths(int argc, char **argv)
{
    struct paths_opts o = {.nodes = 16384, .min = 8, .seed = 1, .spread = 5000, .svg = "paths.svg"};
    const struct opt_spec specs[] = {
        {"nodes", OPT_U64, &o.nodes, 2, 1 << 20, "N", "largest ring (default 16384 = 2^14)"},
        {"min", OPT_U64, &o.min, 2, 1 << 20, "N", "smallest ring (default 8 = 2^3)"},
        {"spread", OPT_U64, &o.spread, 0, 3600000, "MS",
         "virtual time the lookups start over (default 5000)"},
        {"seed", OPT_U64, &o.seed, 0, 18446744073709551615.0, "S", "random seed (default 1)"},
        {"svg", OPT_STR, &o.svg, 0, 0, "FILE", "plot file (default paths.svg)"},
        {"no-svg", OPT_FLAG, &o.nosvg, 0, 0, NULL, "write no plot"},
    };
    const struct sub sub = {
        "paths", "[--nodes N] [--min N] [--seed S] [--svg FILE | --no-svg]",
        "Lookup path length in stable rings of N = min, 2*min, ... nodes up to --nodes:\n"
        "100*N lookups of random keys from random nodes in each (Chord paper, Fig. 10).\n"
        "Exits 1 if any lookup on a stable ring is not answered with the true successor.",
        specs, sizeof(specs) / sizeof(specs[0])};
    bool done;
    int rc = simcmd_parse_opts(&sub, argc, argv, &done);
    if (done)
        return rc;
    if (o.min > o.nodes) {
        fprintf(stderr, "coopfs sim paths: --min %" PRIu64 " is above --nodes %" PRIu64 "\n", o.min,
                o.nodes);
        return 2;
    }
    unsigned sizes[64];
    size_t nsizes = 0;
    for (uint64_t n = o.min; n <= o.nodes && nsizes < 63; n *= 2)
        sizes[nsizes++] = (unsigned)n;
    if (sizes[nsizes - 1] != o.nodes)
        sizes[nsizes++] = (unsigned)o.nodes;

    printf("coopfs sim paths --seed %" PRIu64 " --min %" PRIu64 " --nodes %" PRIu64
           " --spread %" PRIu64 "\n",
           o.seed, o.min, o.nodes, o.spread);
    printf("Lookup path length in a stable ring (Chord paper Fig. 10). For each N a fresh\n"
           "simulation from seed %" PRIu64 " grows a ring by concurrent joins (doubling, settling\n"
           "after each batch) until it is ideal and every finger is right, then starts 100*N\n"
           "lookups of random keys at random nodes over %.1f s of virtual time. Path = overlay\n"
           "hops from the origin to the node that answers; success = answered with the true\n"
           "successor. Replay one row with --min N --nodes N --seed %" PRIu64 ".\n\n",
           o.seed, (double)o.spread / 1000.0, o.seed);
    printf("%6s %6s %8s %6s %3s %3s %3s %3s %8s %9s %8s %7s %7s %7s\n", "N", "log2N", "log2N/2",
           "mean", "p1", "p50", "p99", "max", "lookups", "success", "fingers", "events", "build s",
           "wall s");

    struct paths_row *rows = calloc(nsizes, sizeof(*rows));
    if (!rows)
        return 1;
    int status = 0;
    double t0 = simcmd_wall_now();
    for (size_t i = 0; i < nsizes; i++) {
        struct paths_row *r = &rows[i];
        paths_one(&o, sizes[i], r);
        double ok = r->st.issued ? 100.0 * (double)r->st.ok / (double)r->st.issued : 0;
        printf("%6u %6.2f %8.2f %6.3f %3u %3u %3u %3u %8" PRIu64 " %8.3f%% %7.2f%% %6.1fM "
               "%7.1f %7.1f\n",
               r->n, log2(r->n), 0.5 * log2(r->n), r->st.mean_hops, r->st.p1_hops, r->st.p50_hops,
               r->st.p99_hops, r->st.max_hops, r->st.issued, ok, 100.0 * r->fingers,
               (double)r->events / 1e6, r->build_s, r->wall_s);
        fflush(stdout);
        if (r->rc != 0) {
            printf("  N=%u FAILED (seed %" PRIu64 "): %s\n", r->n, o.seed, r->why);
            status = 1;
        }
    }
    printf("\ntotal wall time %.1f s\n", simcmd_wall_now() - t0);
    if (!o.nosvg && paths_plot(&o, rows, nsizes) != 0)
        status = 1;
    free(rows);
    return status;
}
