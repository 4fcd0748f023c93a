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
#include "tools/sim_cmd.h"
#include "tools/svg.h"

/* ---- options ---------------------------------------------------------- */

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
int simcmd_parse_opts(const struct sub *sub, int argc, char **argv, bool *done)
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

double simcmd_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool simcmd_progress_on(void)
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
void simcmd_u64_list_sort(struct u64_list *l)
{
    size_t k = 0;
    qsort(l->v, l->n, sizeof(l->v[0]), cmp_u64);
    for (size_t i = 0; i < l->n; i++)
        if (k == 0 || l->v[i] != l->v[k - 1])
            l->v[k++] = l->v[i];
    l->n = k;
}

void simcmd_double_list_sort(struct double_list *l)
{
    size_t k = 0;
    qsort(l->v, l->n, sizeof(l->v[0]), cmp_double);
    for (size_t i = 0; i < l->n; i++)
        if (k == 0 || l->v[i] != l->v[k - 1])
            l->v[k++] = l->v[i];
    l->n = k;
}

int simcmd_save_plot(struct svg_plot *p, const char *path)
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
int simcmd_ring_build(struct sim *s, unsigned n, char *why, size_t why_len)
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
        if (simcmd_progress_on())
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
double simcmd_fingers_converge(struct sim *s, uint64_t max_ms)
{
    double ok = fingers_correct(s);
    for (uint64_t t = 0; ok < 1.0 && t < max_ms; t += 1000) {
        sim_run_for(s, 1000);
        ok = fingers_correct(s);
    }
    return ok;
}

/* ---- dispatch ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: coopfs sim EXPERIMENT [OPTIONS]\n\n"
               "The experiments of the Chord paper (Stoica et al., SIGCOMM 2001) on the real\n"
               "chord/ code in the deterministic simulator:\n"
               "  demo     a ring in the simulator, narrated (joins, crashes, a partition)\n"
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
    if (strcmp(argv[1], "demo") == 0)
        return cmd_sim_demo(argc - 1, argv + 1);
    if (strcmp(argv[1], "balance") == 0)
        return sim_balance(argc - 1, argv + 1);
    if (strcmp(argv[1], "churn") == 0)
        return sim_churn(argc - 1, argv + 1);
    fprintf(stderr, "coopfs sim: unknown experiment '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
