/* past.h — what the PAST tools (past.c: shared parts; past_insert.c:
 * coopfs insert; past_fetch.c: coopfs lookup, reclaim, renew) share. They
 * talk to a running node over its control socket (net/control.h). */
#ifndef COOPFS_TOOLS_PAST_H
#define COOPFS_TOOLS_PAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/block.h"
#include "common/id.h"
#include "net/control.h"

#define CHUNK          BLOCK_MAX_DATA
#define WINDOW_DEFAULT 16 /* puts or gets in flight */
#define WINDOW_MAX     256
#define LEASE_WINDOW   128 /* lease updates in flight */

uint64_t past_wall_ms(void);

/* A progress bar on standard error, only on a terminal. */
struct progress {
    bool on;
    const char *what;
    uint64_t total;
    double start, last;
};
void past_progress_init(struct progress *p, const char *what, uint64_t total);
void past_progress_show(struct progress *p, uint64_t done, bool final);

/* Turns a call's outcome into 0 or an error, printing why (c may be NULL). */
int past_outcome(const char *prog, const char *what, int status, const uint8_t *p, size_t len,
                 struct ctl_bs_reply *out, struct ctl_client *c);
/* Fetches, verifies and inflates one content block. *payload is malloc'd. */
int past_get_one(const char *prog, struct ctl_client *c, const struct id *key, uint8_t **payload,
                 size_t *len);

/* A file's manifest tree: its chunks in order and its manifest blocks. */
struct tree {
    uint64_t size;
    uint32_t chunk_size;
    struct id *chunks; /* in file order */
    size_t nchunks;
    struct id *meta; /* the FILE block and every indirect block */
    size_t nmeta;
};
int past_tree_load(const char *prog, struct ctl_client *c, const struct id *file, struct tree *t);
void past_tree_release(struct tree *t);

struct past_opts {
    const char *datadir;
    const char *key_name;
    const char *out;
    unsigned window;
    uint64_t lease_days;
    bool no_compress;
};
/* Returns -1 to go on, or an exit status. */
int past_parse_opts(int argc, char **argv, const char *usage, struct past_opts *o);
int past_parse_key(const char *prog, const char *s, struct id *out);

#endif
