/* harness_bs.h — several whole nodes (struct chord + struct bs) in one
 * process, for the block server and client tests (test_bs.c).
 *
 * A fake network delivers frames in order with no latency; a test can cut
 * a node off (every frame to or from it is lost) or lose the frames of one
 * type to one node. One fake clock drives every node; the wall clock is a
 * fixed epoch plus that clock plus an offset the test may move (leases and
 * kv records expire by it). Each node has an in-memory persist whose
 * completions arrive on the next delivery pass; a record can be marked
 * damaged, so that its next read fails its check (-EBADMSG) and it is gone,
 * as the disk store quarantines it. Client results land in struct hb_res.
 *
 * Every frame a node receives must be accepted by bs_input (a frame one
 * correct node sends another is never malformed): the harness asserts it.
 */
#ifndef COOPFS_TESTS_UNIT_BLOCKSTORE_HARNESS_BS_H
#define COOPFS_TESTS_UNIT_BLOCKSTORE_HARNESS_BS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/internal.h"

#define HB_NODES   8
#define HB_T0      1000000ull
#define HB_WALL0   1700000000000ull /* unix ms */
#define HB_DAY_S   (24ull * 3600ull)
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct hb_rec {
    uint8_t type;
    bool damaged; /* the next read fails its check */
    struct id key;
    uint8_t *bytes;
    size_t len;
};

struct hb_lrec {
    struct id key;
    struct lease l;
};

struct hb_store {
    struct hb_rec *r;
    size_t n;
    struct hb_lrec *l;
    size_t nl;
    unsigned writes, removes, appends, reads_bad;
};

struct hb_net;

struct hb_node {
    struct hb_net *net;
    int idx;
    bool up, cut;
    struct addr addr;
    struct chord *c;
    struct bs *b;
    struct hb_store st;
    uint64_t rng;
};

struct hb_frame {
    int from;
    struct addr to;
    uint8_t *bytes;
    size_t len;
};

/* A persist operation to complete: a write, remove or lease append, or a
 * read_start (read: the record is read when it completes). */
struct hb_comp {
    int node;
    uint64_t token;
    bool read;
    uint8_t type;
    struct id key;
};

struct hb_net {
    uint64_t now;
    uint64_t wall_off;
    struct hb_node n[HB_NODES];
    int nn;
    unsigned k;
    struct hb_frame *q;
    size_t nq;
    struct hb_comp *cq;
    size_t ncq;
    unsigned count[64]; /* requests delivered, by type - 1000 */
    uint16_t drop_type; /* frames of this type to the nodes in drop_mask are lost */
    uint32_t drop_mask; /* bit i: node i */
};

/* A client operation's outcome. */
struct hb_res {
    bool done;
    int status;
    uint8_t bytes[BLOCK_MAX_ANY];
    size_t len;
    unsigned copies;
    uint64_t version;
    char reason[256];
};

/* Starts n nodes (node 0 creates the ring, the others join it) with k
 * replicas and no periodic maintenance, and waits until the ring is right. */
void hb_init(struct hb_net *t, int n, unsigned k);
void hb_free(struct hb_net *t);
/* Completes c (taken off t->cq) with status: bs_persist_done, or for a
 * read the record as node c->node holds it now (status 0) through
 * bs_persist_read_done. */
void hb_complete(struct hb_net *t, const struct hb_comp *c, int status);
/* Delivers every frame and completion queued, without passing time. */
void hb_flush(struct hb_net *t);
/* Delivers one completion (first) or frame. Returns false if none was queued. */
bool hb_step(struct hb_net *t);
/* Passes ms of fake time and ticks every node once, delivering nothing. */
void hb_advance(struct hb_net *t, uint64_t ms);
/* Passes ms of fake time, ticking every node at its deadlines. */
void hb_run(struct hb_net *t, uint64_t ms);
/* Runs until r is done (asserts it comes within a minute). */
void hb_wait(struct hb_net *t, struct hb_res *r);
/* The done callback that fills a struct hb_res (ctx). */
void hb_done(void *ctx, const struct bs_result *r);

/* The nodes that should hold key: the first k distinct nodes from its
 * successor on (by the ids, not by any node's tables). Returns how many;
 * out[0] is the primary. With all = true, every up node in ring order. */
size_t hb_replica_set(struct hb_net *t, const struct id *key, int *out, bool all);
/* Up nodes whose bs holds (type, key). */
unsigned hb_holders(struct hb_net *t, enum store_type type, const struct id *key);
/* Node i's persist record of (type, key), or NULL. */
struct hb_rec *hb_rec(struct hb_net *t, int i, uint8_t type, const struct id *key);

uint64_t hb_wall_s(const struct hb_net *t);
uint64_t hb_wall_ms(const struct hb_net *t);
/* An owner's key pair from a seed byte. */
void hb_owner(uint8_t seed, struct sig_key *k);
/* A content block of distinct bytes (n, size bytes of payload). */
void hb_block(unsigned n, size_t size, uint8_t *bytes, size_t *len, struct id *key);
/* A lease of owner k on key signed now, expiring after secs (0: a reclaim). */
void hb_lease(struct hb_net *t, const struct sig_key *k, const struct id *key, uint64_t secs,
              struct lease *out);

#endif
