/* sim_cmd.c — coopfs sim: the experiments of the Chord paper (Stoica et
 * al., SIGCOMM 2001, section 6) run on the real chord/ code in the
 * simulator.
 *
 *   paths    lookup path length against ring size in a stable ring (Fig. 10)
 *   balance  keys per node, with and without virtual nodes (Figs. 8 and 9)
 *   churn    lookups while nodes join and fail (lookups during stabilization)
 *
 * Each prints plain text tables on stdout (progress on stderr when it is a
 * terminal) and writes an SVG plot. Everything follows from --seed.
 */
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
#include "tools/svg.h"

#define LIST_MAX 32

/* ---- options ---------------------------------------------------------- */

enum opt_kind { OPT_U64, OPT_U64_LIST, OPT_DOUBLE_LIST, OPT_STR, OPT_FLAG };

struct u64_list {
    uint64_t v[LIST_MAX];
    size_t n;
};

struct double_list {
    double v[LIST_MAX];
    size_t n;
};

struct opt_spec {
    const char *name; /* without the leading "--" */
    enum opt_kind kind;
    void *dst;
    double min, max; /* bounds of every number given */
    const char *arg, *help;
};

struct sub {
    const char *name, *synopsis, *about;
    const struct opt_spec *opts;
    size_t nopts;
};

static void sub_usage(const struct sub *sub, FILE *f)
{
    fprintf(f, "usage: coopfs sim %s %s\n\n%s\n\noptions:\n", sub->name, sub->synopsis, sub->about);
    for (size_t i = 0; i < sub->nopts; i++) {
        char lhs[48];
        snprintf(lhs, sizeof(lhs), "--%s%s%s", sub->opts[i].name, sub->opts[i].arg ? " " : "",
                 sub->opts[i].arg ? sub->opts[i].arg : "");
        fprintf(f, "  %-26s %s\n", lhs, sub->opts[i].help);
    }
    fprintf(f, "  %-26s %s\n", "--help", "show this help");
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Digits, or a whole number below 2^53 in any form strtod takes (1e6). */
static int parse_u64(const char *s, double min, double max, uint64_t *out)
{
    char *end;
    double d;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s >= '0' && *s <= '9' && errno == 0 && *end == '\0') {
        if ((double)v < min || (double)v > max)
            return -EINVAL;
    } else if (parse_double(s, min, max, &d) == 0 && d == floor(d) && d >= 0 && d < 0x1p53) {
        v = (unsigned long long)d;
    } else {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_value(const struct opt_spec *o, const char *val)
{
    switch (o->kind) {
    case OPT_STR: *(const char **)o->dst = val; return 0;
    case OPT_U64: return parse_u64(val, o->min, o->max, o->dst);
    case OPT_U64_LIST:
    case OPT_DOUBLE_LIST: {
        struct u64_list *ul = o->dst;
        struct double_list *dl = o->dst;
        size_t n = 0;
        char buf[512];
        if (strlen(val) >= sizeof(buf))
            return -EINVAL;
        strcpy(buf, val);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            int rc = n == LIST_MAX             ? -EINVAL
                     : o->kind == OPT_U64_LIST ? parse_u64(tok, o->min, o->max, &ul->v[n])
                                               : parse_double(tok, o->min, o->max, &dl->v[n]);
            if (rc != 0)
                return rc;
            n++;
        }
        if (n == 0)
            return -EINVAL;
        if (o->kind == OPT_U64_LIST)
            ul->n = n;
        else
            dl->n = n;
        return 0;
    }
    case OPT_FLAG:
    default: return -EINVAL;
    }
}

/* Returns 0 to go on, or the exit status: 0 after --help, 2 on a bad
 * argument (with a message on stderr). */
static int parse_opts(const struct sub *sub, int argc, char **argv, bool *done)
{
    *done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sub_usage(sub, stdout);
            *done = true;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "coopfs sim %s: unexpected argument '%s'\n", sub->name, a);
            goto bad;
        }
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const struct opt_spec *o = NULL;
        for (size_t k = 0; k < sub->nopts && !o; k++)
            if (strlen(sub->opts[k].name) == len && strncmp(sub->opts[k].name, a + 2, len) == 0)
                o = &sub->opts[k];
        if (!o) {
            fprintf(stderr, "coopfs sim %s: unknown option '%.*s'\n", sub->name, (int)len + 2, a);
            goto bad;
        }
        if (o->kind == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "coopfs sim %s: --%s takes no value\n", sub->name, o->name);
                goto bad;
            }
            *(bool *)o->dst = true;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            fprintf(stderr, "coopfs sim %s: --%s needs a value (%s)\n", sub->name, o->name, o->arg);
            goto bad;
        }
        if (parse_value(o, val) != 0) {
            bool integer = o->kind == OPT_U64 || o->kind == OPT_U64_LIST;
            bool list = o->kind == OPT_U64_LIST || o->kind == OPT_DOUBLE_LIST;
            char range[80];
            if (integer && o->max >= 0x1p64)
                snprintf(range, sizeof(range), "an integer in 0..2^64-1");
            else
                snprintf(range, sizeof(range),
                         integer ? "an integer in %.0f..%.0f" : "a number in %g..%g", o->min,
                         o->max);
            fprintf(stderr, "coopfs sim %s: bad value '%s' for --%s %s: want %s%s\n", sub->name,
                    val, o->name, o->arg, list ? "a comma-separated list, each " : "", range);
            goto bad;
        }
    }
    return 0;
bad:
    fprintf(stderr, "'coopfs sim %s --help' lists the options.\n", sub->name);
    *done = true;
    return 2;
}

/* ---- shared helpers ---------------------------------------------------- */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool progress_on(void)
{
    return isatty(STDERR_FILENO);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts a list and drops repeats. */
static void u64_list_sort(struct u64_list *l)
{
    size_t k = 0;
    qsort(l->v, l->n, sizeof(l->v[0]), cmp_u64);
    for (size_t i = 0; i < l->n; i++)
        if (k == 0 || l->v[i] != l->v[k - 1])
            l->v[k++] = l->v[i];
    l->n = k;
}

static void double_list_sort(struct double_list *l)
{
    size_t k = 0;
    qsort(l->v, l->n, sizeof(l->v[0]), cmp_double);
    for (size_t i = 0; i < l->n; i++)
        if (k == 0 || l->v[i] != l->v[k - 1])
            l->v[k++] = l->v[i];
    l->n = k;
}

static int save_plot(struct svg_plot *p, const char *path)
{
    int rc = svg_plot_save(p, path);
    if (rc != 0)
        fprintf(stderr, "coopfs sim: cannot write %s: %s\n", path, strerror(-rc));
    else
        printf("plot written to %s\n", path);
    return rc;
}

static bool all_joined(struct sim *s)
{
    for (unsigned i = 0; i < sim_node_count(s); i++) {
        struct chord *c = sim_node_chord(s, i);
        if (!c)
            continue;
        for (unsigned v = 0; v < chord_vnode_count(c); v++)
            if (!chord_vnode_joined(c, v))
                return false;
    }
    return true;
}

/* Runs until every live node has joined and the ring is ideal, for at most
 * max_ms. Returns 0 or -ETIMEDOUT with why filled in. */
static int ring_settle(struct sim *s, uint64_t max_ms, char *why, size_t why_len)
{
    uint64_t start = sim_now(s);
    for (;;) {
        uint64_t spent = sim_now(s) - start;
        if (spent < max_ms && sim_run_until_ideal(s, max_ms - spent) >= 0 && all_joined(s))
            return 0;
        if (sim_now(s) - start >= max_ms)
            break;
        sim_run_for(s, CHORD_STABILIZE_MS);
    }
    char buf[160] = "some nodes have not joined";
    sim_ring_is_ideal(s, buf, sizeof(buf));
    snprintf(why, why_len, "ring of %u not settled after %.0f s (at %.1f s virtual): %s",
             sim_live_count(s), (double)max_ms / 1000.0, (double)sim_now(s) / 1000.0, buf);
    return -ETIMEDOUT;
}

/* Grows a ring of n nodes from one, doubling it: each batch joins
 * concurrently through random members and the ring settles (every node
 * joined, ideal) before the next. Returns 0, or -ETIMEDOUT / -errno with
 * why filled in. */
static int ring_build(struct sim *s, unsigned n, char *why, size_t why_len)
{
    int rc = sim_add_node(s, -1);
    if (rc < 0) {
        snprintf(why, why_len, "sim_add_node: %s", strerror(-rc));
        return rc;
    }
    while (sim_node_count(s) < n) {
        unsigned have = sim_node_count(s), batch = n - have < have ? n - have : have;
        rc = sim_add_nodes(s, batch);
        if (rc < 0) {
            snprintf(why, why_len, "sim_add_nodes: %s", strerror(-rc));
            return rc;
        }
        /* Settling per batch keeps joins from piling up in one gap, where
         * they would enter the ring one per stabilize round. */
        rc = ring_settle(s, 600000, why, why_len);
        if (rc)
            return rc;
        if (progress_on())
            fprintf(stderr, "    %u nodes settled at %.1f s virtual, %.1fM events\n",
                    sim_node_count(s), (double)sim_now(s) / 1000.0, (double)sim_events(s) / 1e6);
    }
    return 0;
}

/* Fraction of fingers (over every joined vnode and every finger index)
 * that are known and point at the true successor of their start. */
static double fingers_correct(struct sim *s)
{
    uint64_t good = 0, total = 0;
    for (unsigned i = 0; i < sim_node_count(s); i++) {
        struct chord *c = sim_node_chord(s, i);
        if (!c)
            continue;
        for (unsigned v = 0; v < chord_vnode_count(c); v++) {
            if (!chord_vnode_joined(c, v))
                continue;
            struct id self = chord_vnode_self(c, v)->id;
            for (unsigned f = 0; f < CHORD_FINGERS; f++) {
                struct id start;
                struct chord_peer have, want;
                chord_finger_start(&self, f, &start);
                total++;
                good += chord_vnode_finger(c, v, f, &have) &&
                        sim_true_successor(s, &start, &want) && id_eq(&have.id, &want.id);
            }
        }
    }
    return total ? (double)good / (double)total : 1.0;
}

/* Runs until every finger is right, checking each second, for at most
 * max_ms. Fix-fingers refreshes one distinct finger per 250 ms per vnode,
 * so a ring of n needs about (log2 n + 1) * 250 ms after it is ideal.
 * Returns the fraction of correct fingers at the end. */
static double fingers_converge(struct sim *s, uint64_t max_ms)
{
    double ok = fingers_correct(s);
    for (uint64_t t = 0; ok < 1.0 && t < max_ms; t += 1000) {
        sim_run_for(s, 1000);
        ok = fingers_correct(s);
    }
    return ok;
}

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
    double t0 = wall_now();

    memset(row, 0, sizeof(*row));
    row->n = n;
    sim_config_default(&cfg, o->seed);
    cfg.check = SIM_CHECK_NONE; /* invariants are tested elsewhere; this is about speed */
    row->rc = sim_new(&cfg, &s);
    if (row->rc) {
        snprintf(row->why, sizeof(row->why), "sim_new: %s", strerror(-row->rc));
        return;
    }
    row->rc = ring_build(s, n, row->why, sizeof(row->why));
    if (row->rc == 0) {
        /* One full check of the built ring is cheap next to the run. */
        char why[200];
        if (sim_check_now(s, why, sizeof(why)) != 0) {
            row->rc = -EPROTO;
            snprintf(row->why, sizeof(row->why), "invariant broken after build: %s", why);
        }
    }
    if (row->rc == 0) {
        row->fingers = fingers_converge(s, (uint64_t)(log2(n) + 4) * CHORD_FIX_FINGER_MS * 8);
        row->build_s = wall_now() - t0;
        if (progress_on())
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
    row->wall_s = wall_now() - t0;
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
    int rc = save_plot(p, o->svg);
    svg_plot_free(p);
    return rc;
}

static int sim_paths(int argc, char **argv)
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
    int rc = parse_opts(&sub, argc, argv, &done);
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
    double t0 = wall_now();
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
    printf("\ntotal wall time %.1f s\n", wall_now() - t0);
    if (!o.nosvg && paths_plot(&o, rows, nsizes) != 0)
        status = 1;
    free(rows);
    return status;
}

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
    int rc = save_plot(p, o->svg);
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

static int sim_balance(int argc, char **argv)
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
    int rc = parse_opts(&sub, argc, argv, &done);
    if (done)
        return rc;
    u64_list_sort(&o.keys);
    u64_list_sort(&o.vnodes);
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
    double t0 = wall_now();

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
    printf("\nwall time %.1f s\n", wall_now() - t0);
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
    double t0 = wall_now();
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
    r->rc = ring_build(s, (unsigned)o->nodes, r->why, sizeof(r->why));
    if (r->rc == 0) {
        fingers_converge(s, 60000);
        churn_run(o, s, rate, r);
    }
    r->violations = sim_violations(s, &first);
    if (first)
        snprintf(r->first_violation, sizeof(r->first_violation), "%s", first);
    sim_free(s);
    r->wall_s = wall_now() - t0;
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
    int rc = save_plot(p, o->svg);
    svg_plot_free(p);
    return rc;
}

static int sim_churn(int argc, char **argv)
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
    int rc = parse_opts(&sub, argc, argv, &done);
    if (done)
        return rc;
    double_list_sort(&o.rates);

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

/* ---- dispatch ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: coopfs sim EXPERIMENT [OPTIONS]\n\n"
               "The experiments of the Chord paper (Stoica et al., SIGCOMM 2001) on the real\n"
               "chord/ code in the deterministic simulator:\n"
               "  paths    lookup path length against ring size (stable ring)\n"
               "  balance  keys per node with 1..20 virtual nodes per node\n"
               "  churn    lookups while nodes join and fail\n\n"
               "'coopfs sim EXPERIMENT --help' lists its options.\n");
}

int cmd_sim(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "paths") == 0)
        return sim_paths(argc - 1, argv + 1);
    if (strcmp(argv[1], "balance") == 0)
        return sim_balance(argc - 1, argv + 1);
    if (strcmp(argv[1], "churn") == 0)
        return sim_churn(argc - 1, argv + 1);
    fprintf(stderr, "coopfs sim: unknown experiment '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
