/* sim_bench.c — how fast the simulator runs and how much memory a node
 * costs in it.
 *
 * For each ring size: grow a stable ring (doubling batches of concurrent
 * joins, each settling until the ring is ideal, checks off), warm up, then
 * time several steady-state phases of virtual time and report the median
 * events per second (wall clock and CPU), sim_memory_bytes() per node and
 * peak RSS per node. Each size runs in its own child process, so peak RSS
 * is that size's own, under a wall-clock limit (SIGALRM); progress lines on
 * stderr say how far a size got.
 *
 * The project's aim: >= 1 million events per second, 100,000 nodes in a
 * few GiB.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/sim.h"

#define MAX_SIZES 16
#define MAX_REPS  9

struct bench_opts {
    unsigned sizes[MAX_SIZES];
    size_t nsizes;
    uint64_t seed;
    uint64_t steady_ms; /* virtual time of one timed phase */
    uint64_t warmup_ms;
    unsigned reps;
    unsigned time_limit_s; /* per size, wall clock */
};

struct phase {
    double events_per_s, events_per_cpu_s;
    uint64_t events;
    double wall_s;
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

static bool all_joined(struct sim *s)
{
    for (unsigned i = 0; i < sim_node_count(s); i++) {
        struct chord *c = sim_node_chord(s, i);
        if (c && !chord_vnode_joined(c, 0))
            return false;
    }
    return true;
}

/* Doubling batches, each settled (all joined, ideal). Returns 0 or -ETIMEDOUT. */
static int build(struct sim *s, unsigned n, double t0)
{
    if (sim_add_node(s, -1) < 0)
        return -ENOMEM;
    while (sim_node_count(s) < n) {
        unsigned have = sim_node_count(s), batch = n - have < have ? n - have : have;
        if (sim_add_nodes(s, batch) < 0)
            return -ENOMEM;
        uint64_t start = sim_now(s);
        while (sim_run_until_ideal(s, 600000) < 0 || !all_joined(s)) {
            if (sim_now(s) - start > 600000)
                return -ETIMEDOUT;
            sim_run_for(s, 500);
        }
        if (sim_node_count(s) >= 4096)
            say("  %u nodes: ring of %u settled at %.1f s virtual, %.1f s wall, %.1fM events\n", n,
                sim_node_count(s), (double)sim_now(s) / 1000.0, clock_s(CLOCK_MONOTONIC) - t0,
                (double)sim_events(s) / 1e6);
    }
    return 0;
}

static int cmp_phase(const void *a, const void *b)
{
    double x = ((const struct phase *)a)->events_per_s, y = ((const struct phase *)b)->events_per_s;
    return x < y ? -1 : x > y;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* KiB on Linux */
}

/* Runs one size; prints its table row. Returns the exit status. */
static int run_size(const struct bench_opts *o, unsigned n)
{
    struct sim_config cfg;
    struct sim *s;
    double t0 = clock_s(CLOCK_MONOTONIC);
    struct phase ph[MAX_REPS];
    unsigned done = 0;

    sim_config_default(&cfg, o->seed);
    cfg.check = SIM_CHECK_NONE;
    if (sim_new(&cfg, &s) != 0)
        return 1;
    int rc = build(s, n, t0);
    if (rc != 0) {
        say("  %u nodes: ring did not settle (%s)\n", n, strerror(-rc));
        sim_free(s);
        return 1;
    }
    double build_s = clock_s(CLOCK_MONOTONIC) - t0;
    uint64_t build_ms = sim_now(s);
    sim_run_for(s, o->warmup_ms);
    say("  %u nodes: built in %.1f s wall (%.1f s virtual), warmed up %.1f s virtual\n", n, build_s,
        (double)build_ms / 1000.0, (double)o->warmup_ms / 1000.0);

    for (; done < o->reps; done++) {
        double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        /* Leave the last phase room inside the limit; alarm() is the backstop. */
        if (done > 0 && w0 - t0 + ph[done - 1].wall_s > 0.9 * o->time_limit_s) {
            say("  %u nodes: stopping after %u of %u phases (time limit %u s)\n", n, done, o->reps,
                o->time_limit_s);
            break;
        }
        uint64_t e0 = sim_events(s);
        sim_run_for(s, o->steady_ms);
        double w = clock_s(CLOCK_MONOTONIC) - w0, c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        ph[done].events = sim_events(s) - e0;
        ph[done].wall_s = w;
        ph[done].events_per_s = (double)ph[done].events / w;
        ph[done].events_per_cpu_s = (double)ph[done].events / c;
        say("  %u nodes: phase %u: %.2fM events in %.2f s wall = %.2fM events/s\n", n, done + 1,
            (double)ph[done].events / 1e6, w, ph[done].events_per_s / 1e6);
    }
    size_t mem = sim_memory_bytes(s);
    sim_free(s);
    qsort(ph, done, sizeof(ph[0]), cmp_phase);
    const struct phase *med = &ph[done / 2];
    double rss = (double)peak_rss_kib() * 1024.0;
    printf("%7u %8.1f %8.1f %6u %10.2f %9.2f %9.2f %10.0f %10.0f %9.2f %8.1f\n", n, build_s,
           (double)build_ms / 1000.0, done, (double)med->events / 1e6, med->events_per_s / 1e6,
           med->events_per_cpu_s / 1e6, (double)mem / n, rss / n, rss / (1024.0 * 1024.0 * 1024.0),
           clock_s(CLOCK_MONOTONIC) - t0);
    fflush(stdout);
    return 0;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sim_bench [--nodes N,...] [--steady MS] [--warmup MS] [--reps R]\n"
               "                 [--time-limit S] [--seed S]\n"
               "Measures the simulator: events per second in a steady-state ring and memory per\n"
               "node. Defaults: --nodes 1024,16384,100000 --steady 10000 --warmup 5000 --reps 3\n"
               "--time-limit 1200 (wall seconds per size) --seed 1.\n");
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!v)
            goto bad;
        i++;
        if (strcmp(a, "--nodes") == 0) {
            char buf[256];
            snprintf(buf, sizeof(buf), "%s", v);
            o->nsizes = 0;
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (o->nsizes == MAX_SIZES || parse_u64(t, 2, 10000000, &x) != 0)
                    goto bad;
                o->sizes[o->nsizes++] = (unsigned)x;
            }
            if (o->nsizes == 0)
                goto bad;
        } else if (strcmp(a, "--steady") == 0 && parse_u64(v, 100, 3600000, &x) == 0) {
            o->steady_ms = x;
        } else if (strcmp(a, "--warmup") == 0 && parse_u64(v, 0, 3600000, &x) == 0) {
            o->warmup_ms = x;
        } else if (strcmp(a, "--reps") == 0 && parse_u64(v, 1, MAX_REPS, &x) == 0) {
            o->reps = (unsigned)x;
        } else if (strcmp(a, "--time-limit") == 0 && parse_u64(v, 1, 86400, &x) == 0) {
            o->time_limit_s = (unsigned)x;
        } else if (strcmp(a, "--seed") == 0 && parse_u64(v, 0, UINT64_MAX, &x) == 0) {
            o->seed = x;
        } else {
            goto bad;
        }
    }
    return 0;
bad:
    fprintf(stderr, "sim_bench: bad arguments\n");
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    struct bench_opts o = {.sizes = {1024, 16384, 100000},
                           .nsizes = 3,
                           .seed = 1,
                           .steady_ms = 10000,
                           .warmup_ms = 5000,
                           .reps = 3,
                           .time_limit_s = 1200};
    int status = 0;

    if (parse_args(argc, argv, &o) != 0)
        return 2;
    printf("sim_bench --seed %" PRIu64 " --steady %" PRIu64 " --warmup %" PRIu64
           " --reps %u --time-limit %u\n",
           o.seed, o.steady_ms, o.warmup_ms, o.reps, o.time_limit_s);
    printf("Simulator speed in a steady-state stable ring (checks off, default chord timers,\n"
           "uniform 5..50 ms latency, no lookups): events per second over %.0f s of virtual\n"
           "time, median of %u phases, by wall clock and by process CPU time; memory per node\n"
           "from sim_memory_bytes() and from peak RSS (each size in its own process).\n\n",
           (double)o.steady_ms / 1000.0, o.reps);
    printf("%7s %8s %8s %6s %10s %9s %9s %10s %10s %9s %8s\n", "nodes", "build s", "virt s",
           "phases", "Mev/phase", "Mev/s", "Mev/cpu-s", "sim B/node", "RSS B/node", "RSS GiB",
           "total s");
    fflush(stdout);
    for (size_t i = 0; i < o.nsizes; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("sim_bench: fork");
            return 1;
        }
        if (pid == 0) {
            alarm(o.time_limit_s);
            _exit(run_size(&o, o.sizes[i]));
        }
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        if (WIFSIGNALED(ws)) {
            if (WTERMSIG(ws) == SIGALRM)
                printf("%7u  stopped at the time limit of %u s (progress on stderr)\n", o.sizes[i],
                       o.time_limit_s);
            else
                printf("%7u  killed by signal %d\n", o.sizes[i], WTERMSIG(ws));
            status = 1;
        } else if (WEXITSTATUS(ws) != 0) {
            printf("%7u  failed (exit status %d)\n", o.sizes[i], WEXITSTATUS(ws));
            status = 1;
        }
        fflush(stdout);
    }
    return status;
}
