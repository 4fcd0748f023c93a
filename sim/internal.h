/* internal.h — the simulator's private state, shared by sim.c (events,
 * network, nodes), check.c (invariants, truth, lookup statistics) and
 * blocks.c (the block store of each node and its simulated disk). */
#ifndef COOPFS_SIM_INTERNAL_H
#define COOPFS_SIM_INTERNAL_H

#include "sim/sim.h"

enum sim_ev_kind { SIM_EV_MSG = 1, SIM_EV_TIMER = 2, SIM_EV_LOOKUP = 3, SIM_EV_PERSIST = 4 };

struct sim_event {
    uint64_t time;
    uint64_t seq;  /* tie-break: insertion order, so runs replay exactly */
    uint32_t node; /* destination */
    uint32_t from; /* SIM_EV_MSG: sender */
    uint32_t len;
    uint8_t kind;
    uint8_t *data; /* owned: frame bytes, the key of a lookup, a persist operation */
};

struct sim_disk; /* blocks.c */

struct sim_node {
    struct sim *s;
    unsigned index;
    struct chord *c;       /* NULL while crashed */
    struct bs *bs;         /* cfg.blocks: NULL while crashed */
    struct sim_disk *disk; /* cfg.blocks: survives crashes */
    uint32_t incarnation;  /* bumped at every start: persist events of an earlier life are lost */
    bool touched;          /* on s->touched, see sim.c */
    struct addr addr;
    bool alive, leaving;
    uint8_t group;      /* partition side */
    int bootstrap;      /* node it joined through, -1 if it created the ring */
    uint64_t scheduled; /* time of its queued timer event, UINT64_MAX if none */
    struct env env;
    struct logger lg;
    char name[ADDR_STR_MAX];
};

#define SIM_MS_HIST 60000

struct sim_lookup_acc {
    uint64_t issued, done, ok, wrong, failed, iterative;
    uint64_t hops_sum, ms_sum, answered;
    uint64_t hop_hist[CHORD_MAX_HOPS + 2];
    uint32_t *ms_hist; /* SIM_MS_HIST + 1 buckets of 1 ms */
};

struct sim_constraint {
    uint32_t n;
    uint32_t gv[CHORD_SUCC_MAX + 1];
};

struct sim {
    struct sim_config cfg;
    uint64_t rng[4];
    uint64_t now;
    uint64_t events, next_seq, trace;
    uint64_t frames_sent, frames_lost;
    double loss, dup, reorder;
    uint32_t stabilize_ms;
    bool partitioned;
    bool degraded; /* partition or broken fail rule: local checks only */
    uint64_t next_ideal_check;

    struct sim_node **nodes;
    unsigned nnodes, cap_nodes;

    struct sim_event *ev;
    size_t nev, cap_ev, queued_bytes;

    /* check.c: per global vnode (node * vnodes + v) */
    struct id *vid;
    uint8_t *member; /* alive and joined */
    uint8_t *lone;   /* survivor the fail rule was waived for: a ring of one */
    int32_t *best;   /* first live successor (global vnode) or -1 */
    uint32_t *stamp; /* scratch for cycle search */
    uint32_t stamp_gen;
    uint8_t *victim;  /* per node, fail-rule scratch */
    uint32_t *sorted; /* members ordered by id */
    size_t nsorted;
    bool sorted_dirty, members_changed;
    /* incremental fail rule */
    uint32_t *fr_cnt, *fr_rev_start, *fr_rev;
    struct sim_constraint *cons; /* lists in flight, see check.c */
    size_t ncons, cap_cons;

    size_t nviolations;
    char first_violation[640];

    struct sim_lookup_acc *lk; /* set while sim_lookups runs */
    uint64_t lk_left;          /* lookups still to issue */
    uint64_t lk_gap;           /* mean ms between them */

    /* blocks */
    int current;       /* node whose event is being processed, or -1 */
    unsigned *touched; /* nodes whose env was used outside their own event */
    size_t ntouched, cap_touched;
    uint64_t bs_malformed, persist_done, persist_lost, bad_reads;
    bool bs_trace; /* COOPFS_SIM_BS_TRACE=1: block-store frames to stderr */
};

uint64_t sim_random_below(struct sim *s, uint64_t n);
double sim_random_unit(struct sim *s);
int sim_node_of_addr(const struct sim *s, const struct addr *a);
int sim_random_member_node(struct sim *s);
void sim_after_event(struct sim *s, unsigned node);
void sim_violation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sim_event_push(struct sim *s, struct sim_event ev);
void sim_run_one(struct sim *s);

/* check.c */
void sim_dump(struct sim *s, FILE *f);
int sim_check_grow(struct sim *s, size_t cap_nodes);
void sim_check_free(struct sim *s);
size_t sim_check_bytes(const struct sim *s);
void sim_check_node_added(struct sim *s, unsigned node);
void sim_check_node_died(struct sim *s, unsigned node);
void sim_check_after(struct sim *s, unsigned node);
bool sim_fail_rule_allows(struct sim *s, const unsigned *nodes, size_t n);
void sim_fail_rule_mark_lone(struct sim *s, const unsigned *nodes, size_t n);
void sim_fail_rule_begin(struct sim *s);
bool sim_fail_rule_try_add(struct sim *s, unsigned node);
void sim_fail_rule_end(struct sim *s);
int sim_lookup_acc_init(struct sim_lookup_acc *a);
void sim_lookup_record(struct sim *s, const struct chord_lookup_result *res);
void sim_lookup_acc_finish(struct sim_lookup_acc *a, struct sim_lookup_stats *out);
/* The first k distinct physical member nodes from key's true successor. */
unsigned sim_check_replica_set(struct sim *s, const struct id *key, unsigned k, unsigned *out);

/* blocks.c: called by sim.c only when cfg.blocks is on. */
/* Gives node (its chord just made, not yet joined) a bs fed from its disk. */
int sim_blocks_node_start(struct sim *s, unsigned node);
/* Frees node's bs (client operations fail with -ECANCELED); the disk stays. */
void sim_blocks_node_stop(struct sim *s, unsigned node);
/* Frees node's disk (sim_free). */
void sim_blocks_node_free(struct sim_node *n);
/* Feeds a frame to node's bs if it is of the storage range; false if not. */
bool sim_blocks_input(struct sim *s, unsigned node, const struct sim_event *ev);
/* A SIM_EV_PERSIST event: applies the operation and delivers its completion. */
void sim_blocks_persist_event(struct sim *s, const struct sim_event *ev);
/* Chord upcalls, forwarded. */
void sim_blocks_on_update(void *ctx, unsigned vnode);
size_t sim_blocks_bytes(const struct sim *s);
/* Prints one block-store frame (what: "recv", "lost") to stderr. */
void sim_blocks_trace(struct sim *s, const char *what, unsigned from, unsigned to,
                      const void *frame, size_t len);

#endif
