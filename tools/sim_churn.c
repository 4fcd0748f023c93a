/* sim_churn.c — coopfs sim churn: lookups while nodes join and fail. */
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

/* ---- churn ------------------------------------------------------------- */

/* Three lookups per sim_lookups() call: its p1, p50 and p99 are then the
 * three path lengths themselves, so the histogram over the run is exact.
 * The call returns only when its lookups are done, and churn waits for it
 * (see "late ms" in the output). */
#define CHURN_BATCH     3
#define CHURN_SPREAD_MS 100

struct churn_opts {
    uint64_t nodes, seed, duration;
    struct double_list rates;
    const char *svg;
    bool nosvg;
};

struct churn_row {
    double rate;
    uint64_t issued, ok, wrong, failed, iterative, answered;
    uint64_t hist[CHORD_MAX_HOPS + 2];
    double hops_sum, ms_sum;
    uint64_t joins, fails, virt_ms, late_sum, late_n;
    unsigned live_min, live_max;
    size_t violations;
    char first_violation[700];
    double wall_s;
    int rc;
    char why[200];
};

static void churn_add_hops(struct churn_row *r, unsigned h)
{
    r->hist[h <= CHORD_MAX_HOPS ? h : CHORD_MAX_HOPS + 1]++;
}

static void churn_record(struct churn_row *r, const struct sim_lookup_stats *st)
{
    uint64_t a = st->ok + st->wrong;
    r->issued += st->issued;
    r->ok += st->ok;
    r->wrong += st->wrong;
    r->failed += st->failed;
    r->iterative += st->iterative;
    r->answered += a;
    r->hops_sum += st->mean_hops * (double)a;
    r->ms_sum += st->mean_ms * (double)a;
    if (a >= 1)
        churn_add_hops(r, st->p1_hops);
    if (a >= 3)
        churn_add_hops(r, st->p50_hops);
    if (a >= 2)
        churn_add_hops(r, st->max_hops);
}

/* Path length at rank floor(q * answered), as sim.c ranks them. */
static unsigned churn_rank(const struct churn_row *r, double q)
{
    uint64_t want = (uint64_t)(q * (double)r->answered), acc = 0;
    for (unsigned i = 0; i < CHORD_MAX_HOPS + 2; i++) {
        acc += r->hist[i];
        if (acc > want)
            return i;
    }
    return 0;
}

static unsigned churn_max(const struct churn_row *r)
{
    unsigned m = 0;
    for (unsigned i = 0; i < CHORD_MAX_HOPS + 2; i++)
        if (r->hist[i])
            m = i;
    return m;
}

/* An exponential inter-arrival time in ms for a rate per second. */
static uint64_t exp_ms(struct sim *s, double rate)
{
    double u = (double)(sim_random(s) >> 11) * (1.0 / 9007199254740992.0);
    return (uint64_t)(-log(1.0 - u) / rate * 1000.0) + 1;
}

/* One join: restarts a random crashed node if there is one (its address
 * and id come back), else adds a new node. Returns 0 or -errno. */
static int churn_join(struct sim *s)
{
    unsigned n = sim_node_count(s), dead = n - sim_live_count(s);
    if (dead > 0) {
        uint64_t k = sim_random(s) % dead;
        for (unsigned i = 0; i < n; i++)
            if (!sim_node_alive(s, i) && k-- == 0)
                return sim_restart(s, i);
    }
    return sim_add_nodes(s, 1);
}

static void churn_run(const struct churn_opts *o, struct sim *s, double rate, struct churn_row *r)
{
    uint64_t start = sim_now(s), end = start + o->duration * 1000;
    uint64_t next_join = rate > 0 ? start + exp_ms(s, rate) : UINT64_MAX;
    uint64_t next_fail = rate > 0 ? start + exp_ms(s, rate) : UINT64_MAX;

    r->live_min = r->live_max = sim_live_count(s);
    while (sim_now(s) < end) {
        uint64_t now = sim_now(s);
        while (next_fail <= now || next_join <= now) {
            bool fail = next_fail <= next_join;
            uint64_t *due = fail ? &next_fail : &next_join;
            if (fail)
                r->fails += sim_crash_random(s, 1);
            else if (churn_join(s) == 0)
                r->joins++;
            r->late_sum += now - *due;
            r->late_n++;
            *due += exp_ms(s, rate);
        }
        unsigned live = sim_live_count(s);
        r->live_min = live < r->live_min ? live : r->live_min;
        r->live_max = live > r->live_max ? live : r->live_max;
        struct sim_lookup_stats st;
        sim_lookups(s, CHURN_BATCH, CHURN_SPREAD_MS, &st);
        churn_record(r, &st);
    }
    r->virt_ms = sim_now(s) - start;
}

static void churn_one(const struct churn_opts *o, double rate, struct churn_row *r)
{
    struct sim_config cfg;
    struct sim *s;
    double t0 = simcmd_wall_now();
    const char *first;

    memset(r, 0, sizeof(*r));
    r->rate = rate;
    sim_config_default(&cfg, o->seed);
    cfg.check = SIM_CHECK_LOCAL;
    r->rc = sim_new(&cfg, &s);
    if (r->rc) {
        snprintf(r->why, sizeof(r->why), "sim_new: %s", strerror(-r->rc));
        return;
    }
    r->rc = simcmd_ring_build(s, (unsigned)o->nodes, r->why, sizeof(r->why));
    if (r->rc == 0) {
        simcmd_fingers_converge(s, 60000);
        churn_run(o, s, rate, r);
    }
    r->violations = sim_violations(s, &first);
    if (first)
        snprintf(r->first_violation, sizeof(r->first_violation), "%s", first);
    sim_free(s);
    r->wall_s = simcmd_wall_now() - t0;
}

static int churn_plot(const struct churn_opts *o, const struct churn_row *rows)
{
    struct svg_plot *p = svg_plot_new("Lookups under churn", "joins and failures per second (each)",
                                      "percent of lookups");
    char sub[200];
    double rmin = rows[0].rate, rmax = rows[o->rates.n - 1].rate;
    if (!p)
        return -ENOMEM;
    snprintf(sub, sizeof(sub),
             "coopfs sim churn --seed %" PRIu64 ": %" PRIu64 " nodes, %" PRIu64
             " s of virtual time per rate",
             o->seed, o->nodes, o->duration);
    svg_plot_set_subtitle(p, sub);
    svg_plot_set_y2(p, "mean path length (hops)");
    if (rmin > 0 && rmax / rmin > 20)
        svg_plot_set_xscale(p, SVG_LOG10);
    int ok = svg_plot_add_series(p, "answered right (%, left)", SVG_LINE | SVG_MARKERS);
    int bad = svg_plot_add_series(p, "wrong or failed (%, left)", SVG_LINE | SVG_MARKERS);
    int path = svg_plot_add_series(p, "mean path length (right)",
                                   SVG_LINE | SVG_MARKERS | SVG_DASHED | SVG_Y2);
    for (size_t i = 0; i < o->rates.n; i++) {
        const struct churn_row *r = &rows[i];
        if (r->issued == 0)
            continue;
        double pct = 100.0 / (double)r->issued;
        svg_series_add(p, ok, r->rate, (double)r->ok * pct);
        svg_series_add(p, bad, r->rate, (double)(r->wrong + r->failed) * pct);
        if (r->answered)
            svg_series_add(p, path, r->rate, r->hops_sum / (double)r->answered);
    }
    int rc = simcmd_save_plot(p, o->svg);
    svg_plot_free(p);
    return rc;
}

int sim_churn(int argc, char **argv)
{
    struct churn_opts o = {.nodes = 500,
                           .seed = 1,
                           .duration = 120,
                           .rates = {{0.05, 0.1, 0.2, 0.4}, 4},
                           .svg = "churn.svg"};
    const struct opt_spec specs[] = {
        {"nodes", OPT_U64, &o.nodes, 2, 100000, "N", "ring size (default 500)"},
        {"rate", OPT_DOUBLE_LIST, &o.rates, 0, 1000, "R,...",
         "joins and failures per second, each (default 0.05,0.1,0.2,0.4)"},
        {"duration", OPT_U64, &o.duration, 1, 86400, "S",
         "seconds of virtual time per rate (default 120)"},
        {"seed", OPT_U64, &o.seed, 0, 18446744073709551615.0, "S", "random seed (default 1)"},
        {"svg", OPT_STR, &o.svg, 0, 0, "FILE", "plot file (default churn.svg)"},
        {"no-svg", OPT_FLAG, &o.nosvg, 0, 0, NULL, "write no plot"},
    };
    const struct sub sub = {
        "churn", "[--nodes N] [--rate R,...] [--duration S] [--seed S] [--svg FILE | --no-svg]",
        "Lookups while nodes fail and join, each a Poisson process of rate R per second\n"
        "(the Chord paper's lookups during stabilization). Exits 1 on an invariant violation.",
        specs, sizeof(specs) / sizeof(specs[0])};
    bool done;
    int rc = simcmd_parse_opts(&sub, argc, argv, &done);
    if (done)
        return rc;
    simcmd_double_list_sort(&o.rates);

    printf("coopfs sim churn --seed %" PRIu64 " --nodes %" PRIu64 " --duration %" PRIu64 "\n",
           o.seed, o.nodes, o.duration);
    printf("Lookups under churn (the Chord paper's lookups during stabilization). For each\n"
           "rate R: a fresh stable ring of %" PRIu64 " nodes from seed %" PRIu64 ", then %" PRIu64
           " s of virtual\n"
           "time in which nodes fail (sim_crash_random, within the fail rule) and join (a\n"
           "crashed node restarts) as Poisson processes of rate R/s each, while lookups of\n"
           "random keys from random nodes run %d at a time. ok = answered with the true\n"
           "successor at answer time; wrong = answered with another node; fail = no answer;\n"
           "iter = answered by the iterative fallback; live = live nodes (min-max); virt s =\n"
           "virtual time run; late ms = mean delay of a join or failure behind its Poisson\n"
           "time (churn waits for running lookups). Local invariants are checked after every\n"
           "event.\n\n",
           o.nodes, o.seed, o.duration, CHURN_BATCH);
    printf("%5s %5s %5s %7s %6s %7s %7s %6s %6s %6s %5s %3s %3s %7s %7s %4s %6s\n", "R/s", "fails",
           "joins", "live", "virt s", "lookups", "ok%", "wrong%", "fail%", "iter%", "mean", "p99",
           "max", "mean ms", "late ms", "viol", "wall s");

    struct churn_row *rows = calloc(o.rates.n, sizeof(*rows));
    if (!rows)
        return 1;
    int status = 0;
    for (size_t i = 0; i < o.rates.n; i++) {
        struct churn_row *r = &rows[i];
        char live[24];
        churn_one(&o, o.rates.v[i], r);
        double pct = r->issued ? 100.0 / (double)r->issued : 0;
        double a = r->answered ? (double)r->answered : 1;
        snprintf(live, sizeof(live), "%u-%u", r->live_min, r->live_max);
        printf("%5.2f %5" PRIu64 " %5" PRIu64 " %7s %6.1f %7" PRIu64
               " %7.2f %6.2f %6.2f %6.2f %5.2f %3u %3u %7.1f %7.0f %4zu %6.1f\n",
               r->rate, r->fails, r->joins, live, (double)r->virt_ms / 1000.0, r->issued,
               (double)r->ok * pct, (double)r->wrong * pct, (double)r->failed * pct,
               (double)r->iterative * pct, r->hops_sum / a, churn_rank(r, 0.99), churn_max(r),
               r->ms_sum / a, r->late_n ? (double)r->late_sum / (double)r->late_n : 0.0,
               r->violations, r->wall_s);
        fflush(stdout);
        if (r->rc != 0) {
            printf("  R=%g FAILED (seed %" PRIu64 "): %s\n", r->rate, o.seed, r->why);
            status = 1;
        }
        if (r->violations) {
            printf("  R=%g: %zu invariant violations, the first: %s\n", r->rate, r->violations,
                   r->first_violation);
            status = 1;
        }
    }
    if (!o.nosvg && churn_plot(&o, rows) != 0)
        status = 1;
    free(rows);
    return status;
}
