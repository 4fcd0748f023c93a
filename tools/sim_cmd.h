/* sim_cmd.h — shared parts of coopfs sim (not a public API): option
 * parsing, timing, sorting, plotting and ring building helpers used by
 * sim_paths.c, sim_balance.c and sim_churn.c. */
#ifndef COOPFS_TOOLS_SIM_CMD_H
#define COOPFS_TOOLS_SIM_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/sim.h"
#include "tools/svg.h"

#define LIST_MAX 32

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

int simcmd_parse_opts(const struct sub *sub, int argc, char **argv, bool *done);
double simcmd_wall_now(void);
bool simcmd_progress_on(void);
void simcmd_u64_list_sort(struct u64_list *l);
void simcmd_double_list_sort(struct double_list *l);
int simcmd_save_plot(struct svg_plot *p, const char *path);
int simcmd_ring_build(struct sim *s, unsigned n, char *why, size_t why_len);
double simcmd_fingers_converge(struct sim *s, uint64_t max_ms);

/* The experiments, each given argv[0] = its name. */
int sim_paths(int argc, char **argv);
int sim_balance(int argc, char **argv);
int sim_churn(int argc, char **argv);

#endif
