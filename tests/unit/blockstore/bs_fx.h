/* bs_fx.h — helpers shared by the block server tests (test_bs.c,
 * test_bs_root.c, test_bs_limits.c) on top of harness_bs.c: waiting puts,
 * gets and lease updates, a node's stats, roots to store, and raw requests
 * from a stranger's address with their queued replies. */
#ifndef BS_FX_H
#define BS_FX_H

#include <stddef.h>
#include <stdint.h>

#include "blockstore/core.h"
#include "blockstore/msg.h"
#include "harness_bs.h"

extern uint8_t buf[BLOCK_MAX_STORED];
extern struct hb_res res, res2;

/* A node that is not in the replica set of key (the client). */
int outsider(struct hb_net *t, const struct id *key);
int put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len,
             const struct lease *l);
int get_wait(struct hb_net *t, int client, enum store_type type, const struct id *key);
int lease_wait(struct hb_net *t, int client, const struct id *key, const struct lease *l);
struct bs_stats stats(struct hb_net *t, int i);

size_t make_root(const struct sig_key *k, uint64_t version, const char *payload, uint8_t *out);
int root_put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len,
                  uint64_t expect);

/* Sends node `to` a request frame from the stranger address with request
 * id reqid, without delivering anything (the replies stay queued). */
void raw_request(struct hb_net *t, int to, const struct bs_msg *m, uint64_t reqid);
/* Counts the replies queued for the stranger, by failure code; removes
 * them. Returns how many there were. */
unsigned stranger_replies(struct hb_net *t, int code, unsigned *with_code);
/* Delivers persist completions and runs due ticks of every node's block
 * store, delivering no frame. */
void settle(struct hb_net *t);

#endif
