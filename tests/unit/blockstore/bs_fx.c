/* bs_fx.c — helpers shared by the block server tests (see bs_fx.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"
#include "blockstore/msg.h"
#include "common/frame.h"
#include "harness_bs.h"
#include "bs_fx.h"


uint8_t buf[BLOCK_MAX_STORED];
struct hb_res res, res2;

/* A node that is not in the replica set of key (the client). */
int outsider(struct hb_net *t, const struct id *key)
{
    int set[HB_NODES];
    size_t n = hb_replica_set(t, key, set, false);
    for (int i = 0; i < t->nn; i++) {
        bool in = false;
        for (size_t j = 0; j < n; j++)
            in |= set[j] == i;
        if (!in)
            return i;
    }
    fail_msg("every node is in the replica set");
    return -1;
}

int put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len,
             const struct lease *l)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_put(t->n[client].b, bytes, len, l, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

int get_wait(struct hb_net *t, int client, enum store_type type, const struct id *key)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_get(t->n[client].b, type, key, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

int lease_wait(struct hb_net *t, int client, const struct id *key, const struct lease *l)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_lease_update(t->n[client].b, key, l, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

struct bs_stats stats(struct hb_net *t, int i)
{
    struct bs_stats s;
    bs_get_stats(t->n[i].b, &s);
    return s;
}

/* ---- roots ---- */

size_t make_root(const struct sig_key *k, uint64_t version, const char *payload,
                 uint8_t *out)
{
    size_t len;
    assert_int_equal(root_encode(k, version, payload, strlen(payload), out, &len), 0);
    return len;
}

int root_put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len,
                  uint64_t expect)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_root_put(t->n[client].b, bytes, len, expect, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

/* Sends node `to` a request frame from the stranger address with request
 * id reqid, without delivering anything (the replies stay queued). */
void raw_request(struct hb_net *t, int to, const struct bs_msg *m, uint64_t reqid)
{
    struct addr stranger;
    size_t cap = FRAME_HEADER_SIZE + bs_msg_size(m), len;
    uint8_t *f = malloc(cap);
    assert_non_null(f);
    addr_v4(&stranger, 10, 9, 9, 9, 4000);
    assert_int_equal(bs_msg_encode(m, f + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE, &len), 0);
    struct frame_header h = {
        .version = FRAME_VERSION, .type = m->type, .request_id = reqid, .length = (uint32_t)len};
    frame_header_encode(&h, f);
    assert_int_equal(bs_input(t->n[to].b, &stranger, f, FRAME_HEADER_SIZE + len), 0);
    free(f);
}

/* Counts the replies queued for the stranger, by failure code; removes
 * them. Returns how many there were. */
unsigned stranger_replies(struct hb_net *t, int code, unsigned *with_code)
{
    struct addr stranger;
    unsigned n = 0;
    addr_v4(&stranger, 10, 9, 9, 9, 4000);
    *with_code = 0;
    for (size_t i = 0; i < t->nq;) {
        if (!addr_eq(&t->q[i].to, &stranger)) {
            i++;
            continue;
        }
        struct frame_header h;
        struct bs_msg rep;
        assert_int_equal(frame_header_decode(t->q[i].bytes, t->q[i].len, &h), 0);
        assert_int_equal(bs_msg_decode(h.type, t->q[i].bytes + FRAME_HEADER_SIZE, h.length, &rep),
                         0);
        if (h.type == BS_MSG_FAILURE && rep.code == code)
            (*with_code)++;
        n++;
        free(t->q[i].bytes);
        memmove(&t->q[i], &t->q[i + 1], (t->nq - i - 1) * sizeof(t->q[0]));
        t->nq--;
    }
    return n;
}

/* Delivers persist completions and runs due ticks of every node's block
 * store, delivering no frame (hb_flush would drop the replies to the
 * stranger; frames between nodes wait in the queue). */
void settle(struct hb_net *t)
{
    for (unsigned guard = 0;; guard++) {
        assert_true(guard < 100000);
        if (t->ncq) {
            struct hb_comp c = t->cq[0];
            memmove(&t->cq[0], &t->cq[1], --t->ncq * sizeof(*t->cq));
            hb_complete(t, &c, 0);
            continue;
        }
        bool ran = false;
        for (int i = 0; i < t->nn; i++) {
            if (bs_next_deadline(t->n[i].b) <= t->now) {
                bs_tick(t->n[i].b);
                ran = true;
            }
        }
        if (!ran)
            return;
    }
}
