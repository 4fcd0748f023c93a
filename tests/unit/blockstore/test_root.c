/* test_root.c — root compare-and-swap when the replica set changes under
 * it (root.c, index.c's entry digest), on the multi-node harness:
 *   - two roots of one version (a fork: an unacknowledged put's root on
 *     one member, an acknowledged one's on others) are told apart by the
 *     sync digest, and a read chooses the one more members hold, not the
 *     one whose answer came first;
 *   - after nodes join in front of the members, the read of a put also
 *     asks the nodes the joins pushed out of the set, so a compare-and-swap
 *     cannot succeed on the new members alone.
 * Maintenance is off (each node's sync freed): these are the windows
 * before sync would have copied roots around.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "harness_bs.h"

static struct hb_res res;

static void sync_off(struct hb_net *t)
{
    for (int i = 0; i < t->nn; i++) {
        bs_sync_free(t->n[i].b->sync);
        t->n[i].b->sync = NULL;
    }
}

static size_t make_root(const struct sig_key *k, uint64_t version, const char *payload,
                        uint8_t *out)
{
    size_t len;
    assert_int_equal(root_encode(k, version, payload, strlen(payload), out, &len), 0);
    return len;
}

static int root_put_wait(struct hb_net *t, int client, const uint8_t *bytes, size_t len,
                         uint64_t expect)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_root_put(t->n[client].b, bytes, len, expect, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

static int root_get_wait(struct hb_net *t, int client, const struct id *key)
{
    memset(&res, 0, sizeof(res));
    int rc = bs_get(t->n[client].b, STORE_ROOT, key, hb_done, &res);
    if (rc)
        return rc;
    hb_wait(t, &res);
    return res.status;
}

/* Every up node's successor and predecessor are right (by the ids). */
static bool ring_ok(struct hb_net *t)
{
    for (int i = 0; i < t->nn; i++) {
        struct hb_node *a = &t->n[i];
        if (!a->up)
            continue;
        int order[HB_NODES];
        size_t n = hb_replica_set(t, &chord_vnode_self(a->c, 0)->id, order, true);
        if (n < 2)
            continue;
        const struct chord_peer *succ;
        struct chord_peer pred;
        if (chord_vnode_successors(a->c, 0, &succ) == 0 ||
            !addr_eq(&succ[0].addr, &t->n[order[1]].addr))
            return false;
        if (!chord_vnode_predecessor(a->c, 0, &pred) ||
            !addr_eq(&pred.addr, &t->n[order[n - 1]].addr))
            return false;
    }
    return true;
}

/* Runs until the ring is right again and node p's replica set of its
 * vnode is want[0..k) (successor lists refilled). */
static void settle(struct hb_net *t, int p, const int *want)
{
    for (int i = 0; i < 300; i++) {
        hb_run(t, 1000);
        if (!ring_ok(t))
            continue;
        struct chord_peer set[BS_REPLICAS_MAX];
        size_t n = chord_vnode_replica_set(t->n[p].c, 0, set, t->k);
        bool same = n == t->k;
        for (size_t j = 0; same && j < n; j++)
            same = addr_eq(&set[j].addr, &t->n[want[j]].addr);
        if (same) {
            hb_run(t, 5000);
            return;
        }
    }
    fail_msg("the ring did not settle");
}

static void stored(struct bs *b, void *ctx, int status)
{
    (void)b;
    *(int *)ctx = status;
}

static const struct bs_entry *root_entry(struct hb_net *t, int i, const struct id *key)
{
    const struct bs_entry *e = bs_index_find(&t->n[i].b->ix, STORE_ROOT, key);
    assert_non_null(e);
    return e;
}

/* k = 3, nodes P, B, C, D in ring order from the key. Version 1 is on
 * {P, B, C}. A put of 2a (expect 1) reached B only (INDETERMINATE). B is
 * cut off; the set is {P, C, D}, and a put of 2b (expect 1) stores on all
 * three: acknowledged. B comes back and P fails: the set is {B, C, D}, B
 * the primary, its own answer 2a the first it has. The read must choose
 * 2b (two holders of three), not 2a, and the next compare-and-swap builds
 * on 2b. The digests of B's and C's entries differ (same version, other
 * bytes), so sync sees the fork. */
static void test_root_fork_majority_wins(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v1[ROOT_MAX_LEN], v2a[ROOT_MAX_LEN], v2b[ROOT_MAX_LEN], v3[ROOT_MAX_LEN];
    int o[HB_NODES];

    assert_non_null(t);
    hb_init(t, 4, 3);
    sync_off(t);
    hb_owner(21, &k);
    root_key(&k.pub, &key);
    assert_int_equal(hb_replica_set(t, &key, o, true), 4);
    const int p = o[0], bn = o[1], c = o[2], d = o[3];
    size_t l1 = make_root(&k, 1, "one", v1);
    size_t l2a = make_root(&k, 2, "two, never acknowledged", v2a);
    size_t l2b = make_root(&k, 2, "two, acknowledged", v2b);
    size_t l3 = make_root(&k, 3, "three, on top of two b", v3);

    assert_int_equal(root_put_wait(t, d, v1, l1, 0), 0);
    assert_int_equal(bs_root_version(t->n[d].b, &key), 0);

    /* The put of 2a that stored on B alone. */
    int st = 1;
    assert_int_equal(
        bs_store_record(t->n[bn].b, STORE_ROOT, &key, v2a, l2a, NULL, 0, false, stored, &st), 0);
    hb_flush(t);
    assert_int_equal(st, 0);
    assert_int_equal(bs_root_version(t->n[bn].b, &key), 2);

    /* B away: 2b goes to {P, C, D}. */
    t->n[bn].up = false;
    const int set1[] = {p, c, d};
    settle(t, p, set1);
    assert_int_equal(root_put_wait(t, c, v2b, l2b, 1), 0);
    assert_int_equal(res.copies, 3);

    /* B back, P gone: {B, C, D}. */
    t->n[bn].up = true;
    t->n[p].up = false;
    const int set2[] = {bn, c, d};
    settle(t, bn, set2);

    /* Same version, other bytes: the digests tell them apart. */
    const struct bs_entry *eb = root_entry(t, bn, &key), *ec = root_entry(t, c, &key),
                          *ed = root_entry(t, d, &key);
    assert_int_equal(eb->version, ec->version);
    assert_memory_not_equal(eb->digest.b, ec->digest.b, ID_BYTES);
    assert_memory_equal(ec->digest.b, ed->digest.b, ID_BYTES);

    /* The read at B chooses the root two of three hold. */
    assert_int_equal(root_get_wait(t, d, &key), 0);
    assert_int_equal(res.len, l2b);
    assert_memory_equal(res.bytes, v2b, l2b);

    /* Compare-and-swap on 2: version 3 goes on, and 2b stays its parent
     * on the majority that acknowledged it. */
    assert_int_equal(root_put_wait(t, d, v3, l3, 2), 0);
    assert_int_equal(root_get_wait(t, c, &key), 0);
    assert_int_equal(res.len, l3);
    assert_memory_equal(res.bytes, v3, l3);
    t->n[p].up = true; /* hb_free frees the nodes that are up */
    hb_free(t);
    free(t);
}

/* k = 3, five nodes N1, N2, P, X, Y in ring order from the key. N1 and
 * N2 are away: the set is {P, X, Y} and version 1 goes on all three. N1
 * and N2 join in front of P: the set is {N1, N2, P}, and neither holds
 * the root (no sync yet). P does not answer root reads. A put expecting
 * no root must not succeed on {N1, N2}: the read also asks X and Y, the
 * nodes the joins pushed out, finds version 1 and answers CONFLICT with
 * it. A read finds it too, and pushes it to the new members. */
static void test_root_read_past_joins(void **state)
{
    (void)state;
    struct hb_net *t = calloc(1, sizeof(*t));
    struct sig_key k;
    struct id key;
    uint8_t v1[ROOT_MAX_LEN], w1[ROOT_MAX_LEN];
    int o[HB_NODES];

    assert_non_null(t);
    hb_init(t, 5, 3);
    sync_off(t);
    hb_owner(22, &k);
    root_key(&k.pub, &key);
    assert_int_equal(hb_replica_set(t, &key, o, true), 5);
    const int n1 = o[0], n2 = o[1], p = o[2], x = o[3], y = o[4];
    size_t l1 = make_root(&k, 1, "one", v1);
    size_t lw = make_root(&k, 1, "one, from a writer who saw no root", w1);

    t->n[n1].up = false;
    t->n[n2].up = false;
    const int set1[] = {p, x, y};
    settle(t, p, set1);
    assert_int_equal(root_put_wait(t, x, v1, l1, 0), 0);
    assert_int_equal(res.copies, 3);

    t->n[n1].up = true;
    t->n[n2].up = true;
    const int set2[] = {n1, n2, p};
    settle(t, n1, set2);
    assert_int_equal(bs_root_version(t->n[n1].b, &key), 0);
    assert_int_equal(bs_root_version(t->n[n2].b, &key), 0);

    /* P's answers to root reads are lost: N1 and N2 are a majority of
     * the set, and both hold nothing. */
    t->drop_type = BS_MSG_ROOT_READ;
    t->drop_mask = 1u << p;
    assert_int_equal(root_put_wait(t, y, w1, lw, 0), BS_ERR_CONFLICT);
    assert_int_equal(res.len, l1);
    assert_memory_equal(res.bytes, v1, l1);
    assert_int_equal(bs_root_version(t->n[n1].b, &key), 0);
    assert_int_equal(bs_root_version(t->n[n2].b, &key), 0);

    /* A read finds version 1 past the new members and repairs them. */
    assert_int_equal(root_get_wait(t, y, &key), 0);
    assert_int_equal(res.len, l1);
    assert_memory_equal(res.bytes, v1, l1);
    hb_run(t, 1000);
    assert_int_equal(bs_root_version(t->n[n1].b, &key), 1);
    assert_int_equal(bs_root_version(t->n[n2].b, &key), 1);
    t->drop_mask = 0;
    hb_free(t);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_fork_majority_wins),
        cmocka_unit_test(test_root_read_past_joins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
