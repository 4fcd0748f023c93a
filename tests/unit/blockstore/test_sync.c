/* test_sync.c — maintenance (blockstore/sync*.c) on a few whole nodes:
 * real chord and block servers on the fake network of sync_net.c.
 * Records are planted as if they had been on disk at start (bs_load), so
 * the tests need nothing of the client. Maintenance runs only when a test
 * asks (sync_period_ms 0, rounds started through the update upcall), so
 * message counts are exact. The codecs are tested in test_sync_msg.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/core.h"
#include "blockstore/sync_int.h"
#include "common/frame.h"

#include "sync_net.h"

/* Two nodes, k = 2: one holds a block the other lacks. One round repairs
 * it; after that a round is one SYNC_DIGEST and one SYNC_DIGEST_OK per
 * node and member, and nothing else moves. */
static void test_two_nodes_one_block(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id key;
    struct lease l;

    net_init(&t, 2, 2);
    net_settle(&t);
    /* In sync and empty: one pair per node and member. */
    counts_reset(&t);
    round_all(&t);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST - 1000], 2);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST_OK - 1000], 2);

    for (unsigned i = 0; i < 20; i++) {
        make_block(&t, i, 90 * T_DAY_S, bytes, &len, &key, &l);
        plant(&t, 0, STORE_CONTENT, &key, bytes, len, &l);
        plant(&t, 1, STORE_CONTENT, &key, bytes, len, &l);
    }
    make_block(&t, 100, 90 * T_DAY_S, bytes, &len, &key, &l);
    plant(&t, 1, STORE_CONTENT, &key, bytes, len, &l);
    assert_int_equal(holders(&t, STORE_CONTENT, &key), 1);

    counts_reset(&t);
    round_all(&t);
    assert_int_equal(holders(&t, STORE_CONTENT, &key), 2);
    assert_int_equal(SUM(&t, sync_pushed) + SUM(&t, sync_pulled), 1);

    counts_reset(&t);
    uint64_t moved = SUM(&t, sync_pushed) + SUM(&t, sync_pulled);
    round_all(&t);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST - 1000], 2);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST_OK - 1000], 2);
    assert_int_equal(t.count[BS_MSG_STORE - 1000], 0);
    assert_int_equal(t.count[BS_MSG_GET - 1000], 0);
    assert_int_equal(SUM(&t, sync_pushed) + SUM(&t, sync_pulled), moved);
    net_free(&t);
}

/* Three nodes, k = 3: blocks held by a single member (the primary or not)
 * are back on all three after one round (a pull by the primary sets off a
 * follow-up round of its own, which pushes to the third member). */
static void test_one_of_three_returns_to_three(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id keys[6];
    struct lease l;

    net_init(&t, 3, 3);
    net_settle(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++) {
        make_block(&t, i, 90 * T_DAY_S, bytes, &len, &keys[i], &l);
        plant(&t, (int)(i % 3), STORE_CONTENT, &keys[i], bytes, len, &l);
    }
    counts_reset(&t);
    round_all(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++)
        assert_int_equal(holders(&t, STORE_CONTENT, &keys[i]), 3);
    assert_int_equal(t.stores_to[0] + t.stores_to[1] + t.stores_to[2] + t.count[BS_MSG_GET - 1000],
                     2 * N_ELEMS(keys));

    /* In sync: 3 nodes x 2 members, one pair each. */
    counts_reset(&t);
    round_all(&t);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST - 1000], 6);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST_OK - 1000], 6);
    assert_int_equal(t.count[BS_MSG_STORE - 1000] + t.count[BS_MSG_GET - 1000], 0);
    net_free(&t);
}

/* Many records, a few missing here and there: the digests descend into
 * the buckets that differ only, and everything converges. */
static void test_many_records_descend(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id keys[400];
    struct lease l;

    net_init(&t, 2, 2);
    net_settle(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++) {
        make_block(&t, 1000 + i, 90 * T_DAY_S, bytes, &len, &keys[i], &l);
        if (i % 97 != 1)
            plant(&t, 0, STORE_CONTENT, &keys[i], bytes, len, &l);
        if (i % 89 != 2)
            plant(&t, 1, STORE_CONTENT, &keys[i], bytes, len, &l);
    }
    round_all(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++)
        assert_int_equal(holders(&t, STORE_CONTENT, &keys[i]), 2);
    counts_reset(&t);
    round_all(&t);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST - 1000], 2);
    net_free(&t);
}

/* A reclaim reached two of three holders; the third kept the block with
 * the old grant. A round spreads the reclaim and the block goes. */
static void test_missed_reclaim_converges(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id key;
    struct lease grant, reclaim;
    struct sig_key k;

    net_init(&t, 3, 3);
    net_settle(&t);
    for (unsigned v = 0; v < 3; v++) {
        make_block(&t, 7 + v, 90 * T_DAY_S, bytes, &len, &key, &grant);
        for (int i = 0; i < 3; i++)
            plant(&t, i, STORE_CONTENT, &key, bytes, len, &grant);
        /* The reclaim, signed later, reaches every node but v. */
        owner_key(&k);
        assert_int_equal(lease_sign(&k, &key, wall_s(&t) * 1000, 0, &reclaim), 0);
        for (int i = 0; i < 3; i++) {
            if (i == (int)v)
                continue;
            struct bs_entry *e = bs_index_find(&t.n[i].b->ix, STORE_CONTENT, &key);
            assert_non_null(e);
            assert_int_equal(bs_index_merge_leases(&t.n[i].b->ix, e, &reclaim, 1, wall_s(&t), NULL),
                             0);
            ms_lease(&t.n[i].st, &key, &reclaim, 1);
        }
        assert_true(bs_holds(t.n[v].b, STORE_CONTENT, &key));
        round_all(&t);
        round_all(&t);
        assert_int_equal(holders(&t, STORE_CONTENT, &key), 0);
        /* Every node ends with the reclaim. */
        for (int i = 0; i < 3; i++) {
            struct bs_entry *e = bs_index_find(&t.n[i].b->ix, STORE_CONTENT, &key);
            if (e)
                assert_false(bs_entry_live(e, wall_s(&t)));
        }
    }
    net_free(&t);
}

/* Three nodes, k = 2, each block on its replica set. A fourth node joins:
 * it takes over its range, and the node that dropped out of a replica set
 * hands its copies off and drops them, leaving every block on exactly its
 * new replica set. */
static void test_join_takes_over_and_handoff(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id keys[40];
    struct lease l;

    net_init(&t, 3, 2);
    net_settle(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++) {
        int set[T_NODES];
        make_block(&t, 200 + i, 90 * T_DAY_S, bytes, &len, &keys[i], &l);
        size_t n = replica_set(&t, &keys[i], set);
        for (size_t j = 0; j < n; j++)
            plant(&t, set[j], STORE_CONTENT, &keys[i], bytes, len, &l);
    }
    t.nn = 4;
    node_start(&t, 3, 0);
    net_settle(&t);
    round_all(&t);
    net_run(&t, SYNC_HANDOFF_QUIET_MS); /* handoff waits for a quiet ring */
    round_all(&t);
    round_all(&t);
    unsigned on_new = 0;
    for (unsigned i = 0; i < N_ELEMS(keys); i++) {
        assert_true(placed_exactly(&t, STORE_CONTENT, &keys[i]));
        on_new += bs_holds(t.n[3].b, STORE_CONTENT, &keys[i]);
    }
    assert_true(on_new > 0);
    assert_true(SUM(&t, handed_off) > 0);
    net_free(&t);
}

/* Expired kv records and blocks whose only lease ran out are dropped. */
static void test_expiry(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[KV_MAX_LEN];
    size_t len;
    struct id kkey, bkey, keep;
    struct lease l;

    net_init(&t, 2, 2);
    net_settle(&t);
    memset(&kkey, 0x42, sizeof(kkey));
    assert_int_equal(
        kv_encode(&kkey, (wall_s(&t) - 1) * 1000, wall_s(&t) + 60, 2, "v", 1, bytes, &len), 0);
    plant(&t, 0, STORE_KV, &kkey, bytes, len, NULL);
    plant(&t, 1, STORE_KV, &kkey, bytes, len, NULL);
    make_block(&t, 300, 60, bytes, &len, &bkey, &l);
    plant(&t, 0, STORE_CONTENT, &bkey, bytes, len, &l);
    plant(&t, 1, STORE_CONTENT, &bkey, bytes, len, &l);
    make_block(&t, 301, 90 * T_DAY_S, bytes, &len, &keep, &l);
    plant(&t, 0, STORE_CONTENT, &keep, bytes, len, &l);
    plant(&t, 1, STORE_CONTENT, &keep, bytes, len, &l);

    round_all(&t);
    assert_int_equal(holders(&t, STORE_KV, &kkey), 2);
    assert_int_equal(holders(&t, STORE_CONTENT, &bkey), 2);
    t.wall_off += 120 * 1000;
    round_all(&t);
    assert_int_equal(holders(&t, STORE_KV, &kkey), 0);
    assert_int_equal(holders(&t, STORE_CONTENT, &bkey), 0);
    assert_int_equal(holders(&t, STORE_CONTENT, &keep), 2);
    assert_int_equal(SUM(&t, expired), 4);
    net_free(&t);
}

/* Four nodes, k = 3. One crashes; its blocks are re-replicated on the
 * next node. It returns with its disk: its copies count again (nothing is
 * stored to it), and the stand-in hands its extra copies off. */
static void test_crash_return_counts_again(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id keys[30];
    struct lease l;
    const int victim = 2;

    net_init(&t, 4, 3);
    net_settle(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++) {
        int set[T_NODES];
        make_block(&t, 400 + i, 90 * T_DAY_S, bytes, &len, &keys[i], &l);
        size_t n = replica_set(&t, &keys[i], set);
        for (size_t j = 0; j < n; j++)
            plant(&t, set[j], STORE_CONTENT, &keys[i], bytes, len, &l);
    }
    node_crash(&t, victim);
    net_settle(&t);
    round_all(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++)
        assert_int_equal(holders(&t, STORE_CONTENT, &keys[i]), 3);

    counts_reset(&t);
    node_start(&t, victim, 0);
    net_settle(&t);
    round_all(&t);
    net_run(&t, SYNC_HANDOFF_QUIET_MS); /* handoff waits for a quiet ring */
    round_all(&t);
    round_all(&t);
    assert_int_equal(t.stores_to[victim], 0);
    for (unsigned i = 0; i < N_ELEMS(keys); i++)
        assert_true(placed_exactly(&t, STORE_CONTENT, &keys[i]));
    assert_true(SUM(&t, handed_off) > 0);
    net_free(&t);
}

/* Three nodes, k = 2. A block sits only on the node outside its replica
 * set (the location's one spare), and both members are full: the copy
 * stays (never the last one). Handoff asks the members again in every
 * round (a push; only the answer says a member is full, not a mark of an
 * earlier refusal). Once the members have room, the copy is handed off
 * and dropped. */
static void test_full_members_keep_last_copy(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id key;
    struct lease l;
    int set[T_NODES], out = -1;

    memset(&t, 0, sizeof(t));
    net_init(&t, 3, 2);
    net_settle(&t);
    make_block(&t, 500, 90 * T_DAY_S, bytes, &len, &key, &l);
    assert_int_equal(replica_set(&t, &key, set), 2);
    for (int i = 0; i < 3; i++)
        if (!in_set(set, 2, i))
            out = i;
    /* The members come back without space (their disks are empty). */
    for (int j = 0; j < 2; j++) {
        node_crash(&t, set[j]);
        t.no_space[set[j]] = true;
        node_start(&t, set[j], out);
    }
    net_settle(&t);
    plant(&t, out, STORE_CONTENT, &key, bytes, len, &l);
    counts_reset(&t);
    net_run(&t, SYNC_HANDOFF_QUIET_MS);
    for (int r = 0; r < 4; r++)
        round_all(&t);
    assert_true(bs_holds(t.n[out].b, STORE_CONTENT, &key));
    assert_int_equal(holders(&t, STORE_CONTENT, &key), 1);
    assert_int_equal(SUM(&t, handed_off), 0);
    assert_int_equal(t.stores_to[set[0]], 4);
    assert_int_equal(t.stores_to[set[1]], 4);

    /* Room at last. */
    for (int j = 0; j < 2; j++) {
        node_crash(&t, set[j]);
        t.no_space[set[j]] = false;
        node_start(&t, set[j], out);
    }
    net_settle(&t);
    net_run(&t, SYNC_FULL_BACKOFF_MS);
    round_all(&t);
    round_all(&t);
    assert_true(placed_exactly(&t, STORE_CONTENT, &key));
    assert_int_equal(SUM(&t, handed_off), 1);
    net_free(&t);
}

/* Node i's copy of key fails its check: gone from its disk, held bad. */
static void turn_bad(struct tnet *t, int i, const struct id *key)
{
    struct tnode *nd = &t->n[i];
    struct bs_entry *e = bs_index_find(&nd->b->ix, STORE_CONTENT, key);
    assert_non_null(e);
    bs_index_set_size(&nd->b->ix, e, e->size, BS_E_BAD);
    struct mrec *r = ms_find(&nd->st, STORE_CONTENT, key);
    assert_non_null(r);
    free(r->bytes);
    *r = nd->st.r[--nd->st.n];
}

/* The up nodes in ring order from key's successor (each node has one
 * vnode): the replica set, then the diversion spares. */
static size_t ring_from(struct tnet *t, const struct id *key, int *out)
{
    unsigned k = t->k;
    t->k = T_NODES;
    size_t n = replica_set(t, key, out);
    t->k = k;
    return n;
}

/* Four nodes, k = 3; the fourth, X, holds a block outside the replica set
 * {A, B, M}. All three hold it too, M with an older lease, so SYNC_KEYS_OK
 * says PRESENT with another digest and X exchanges leases with M. Between
 * the two, M's copy fails its check: M answers LEASE_MERGE_OK without
 * HELD. X must not count M: it keeps its copy and pushes M the block, and
 * drops only once M stored it. */
static void test_handoff_lease_exchange_not_held(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id key;
    struct lease l, renewed;
    struct sig_key k;
    int ring[T_NODES];

    net_init(&t, 4, 3);
    /* Frames take 1 ms, so that the exchange can be stepped below and M's
     * copy turned bad between SYNC_KEYS and LEASE_MERGE. */
    t.latency_ms = 1;
    net_settle(&t);
    round_all(&t);
    net_run(&t, SYNC_HANDOFF_QUIET_MS); /* handoff waits for a quiet ring */
    make_block(&t, 800, 90 * T_DAY_S, bytes, &len, &key, &l);
    assert_int_equal(ring_from(&t, &key, ring), 4);
    const int a = ring[0], bb = ring[1], m = ring[2], x = ring[3];
    owner_key(&k);
    assert_int_equal(lease_sign(&k, &key, wall_s(&t) * 1000, wall_s(&t) + 90 * T_DAY_S, &renewed),
                     0);
    const int with_renewal[] = {x, a, bb};
    plant(&t, m, STORE_CONTENT, &key, bytes, len, &l);
    for (unsigned i = 0; i < N_ELEMS(with_renewal); i++) {
        int n = with_renewal[i];
        plant(&t, n, STORE_CONTENT, &key, bytes, len, &l);
        struct bs_entry *e = bs_index_find(&t.n[n].b->ix, STORE_CONTENT, &key);
        assert_int_equal(bs_index_merge_leases(&t.n[n].b->ix, e, &renewed, 1, wall_s(&t), NULL), 0);
        ms_lease(&t.n[n].st, &key, &renewed, 1);
    }
    counts_reset(&t);
    /* Only X runs a round (the members' range sync would mend M first),
     * stepped until the three members answered SYNC_KEYS. */
    bs_on_update(t.n[x].b, 0);
    for (unsigned ms = 0; t.count[BS_MSG_SYNC_KEYS - 1000] < 3; ms++) {
        assert_true(ms < 2000);
        net_run(&t, 1);
    }
    assert_int_equal(t.count[BS_MSG_LEASE_MERGE - 1000], 0);
    turn_bad(&t, m, &key);
    net_run(&t, 2000);
    assert_int_equal(t.count[BS_MSG_LEASE_MERGE - 1000], 1);
    /* M got the block pushed, and only then did X drop its copy: three
     * good copies. */
    assert_int_equal(holders(&t, STORE_CONTENT, &key), 3);
    assert_int_equal(t.stores_to[m], 1);
    assert_true(bs_holds(t.n[m].b, STORE_CONTENT, &key));
    assert_true(placed_exactly(&t, STORE_CONTENT, &key));
    assert_int_equal(SUM(&t, handed_off), 1);
    net_free(&t);
}

/* A node restarted with its disk, with or without space. */
static void restart(struct tnet *t, int i, bool no_space, int via)
{
    node_crash(t, i);
    t->no_space[i] = no_space;
    node_start(t, i, via);
}

/* Eight nodes, k = 3. X holds a block outside its location's list: the
 * replica set {A, B, C} and the BS_DIVERT_MAX = 4 spares S1..S4 after it.
 * B and C are full, and S2, S3, S4 too: A stores it, B's refusal sends it
 * to S1, C's down the spares to S4, which all refuse. Two holders
 * confirmed: X keeps its copy (a full member is no holder). Once S2 has
 * room, the next round confirms A, S1 (for B) and S2 (for C), and X
 * drops. */
static void test_handoff_full_members_spares(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id key;
    struct lease l;
    int ring[T_NODES];

    memset(&t, 0, sizeof(t));
    net_init(&t, 8, 3);
    net_settle(&t);
    make_block(&t, 900, 90 * T_DAY_S, bytes, &len, &key, &l);
    assert_int_equal(ring_from(&t, &key, ring), 8);
    const int a = ring[0], bb = ring[1], c = ring[2], s1 = ring[3], x = ring[7];
    const int full[] = {bb, c, ring[4], ring[5], ring[6]};
    for (unsigned i = 0; i < N_ELEMS(full); i++)
        restart(&t, full[i], true, x);
    net_settle(&t);
    round_all(&t);
    net_run(&t, SYNC_HANDOFF_QUIET_MS);
    plant(&t, x, STORE_CONTENT, &key, bytes, len, &l);
    counts_reset(&t);
    bs_on_update(t.n[x].b, 0);
    net_run(&t, 2000);
    assert_true(bs_holds(t.n[x].b, STORE_CONTENT, &key));
    for (int i = 0; i < 7; i++)
        assert_int_equal(t.stores_to[ring[i]], 1);
    assert_true(bs_holds(t.n[a].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t.n[s1].b, STORE_CONTENT, &key));
    assert_int_equal(holders(&t, STORE_CONTENT, &key), 3);
    assert_int_equal(SUM(&t, handed_off), 0);

    /* Room on S2. */
    restart(&t, ring[4], false, x);
    net_settle(&t);
    round_all(&t);
    net_run(&t, SYNC_HANDOFF_QUIET_MS);
    assert_int_equal(holders(&t, STORE_CONTENT, &key), 3);
    counts_reset(&t);
    bs_on_update(t.n[x].b, 0);
    net_run(&t, 2000);
    assert_false(bs_holds(t.n[x].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t.n[a].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t.n[s1].b, STORE_CONTENT, &key));
    assert_true(bs_holds(t.n[ring[4]].b, STORE_CONTENT, &key));
    assert_int_equal(holders(&t, STORE_CONTENT, &key), 3);
    assert_int_equal(stats_of(&t, x).handed_off, 1);
    net_free(&t);
}

/* Roots and kv records move towards the higher version (stamp), whichever
 * member holds it; a copy that failed its check is repaired. */
static void test_versions_and_repair(void **state)
{
    (void)state;
    struct tnet t;
    static uint8_t bytes[KV_MAX_LEN];
    size_t len;
    struct sig_key k;
    struct id rkey, kkey, bkey;
    struct lease l;
    uint64_t high = 0;

    net_init(&t, 3, 3);
    net_settle(&t);
    owner_key(&k);
    root_key(&k.pub, &rkey);
    memset(&kkey, 0x77, sizeof(kkey));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(root_encode(&k, i == 1 ? 5 : 4, "c", 1, bytes, &len), 0);
        plant(&t, i, STORE_ROOT, &rkey, bytes, len, NULL);
        uint64_t stamp = (wall_s(&t) - (i == 2 ? 1 : 2)) * 1000;
        high = stamp > high ? stamp : high;
        assert_int_equal(kv_encode(&kkey, stamp, wall_s(&t) + 3600, 3, "v", 1, bytes, &len), 0);
        plant(&t, i, STORE_KV, &kkey, bytes, len, NULL);
    }
    make_block(&t, 600, 90 * T_DAY_S, bytes, &len, &bkey, &l);
    for (int i = 0; i < 3; i++)
        plant(&t, i, STORE_CONTENT, &bkey, bytes, len, &l);
    /* Node 0's copy of the block is found bad: gone from its disk. */
    struct bs_entry *e = bs_index_find(&t.n[0].b->ix, STORE_CONTENT, &bkey);
    bs_index_set_size(&t.n[0].b->ix, e, e->size, BS_E_BAD);
    free(t.n[0].st.r[t.n[0].st.n - 1].bytes);
    t.n[0].st.n--;

    round_all(&t);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bs_root_version(t.n[i].b, &rkey), 5);
        e = bs_index_find(&t.n[i].b->ix, STORE_KV, &kkey);
        assert_non_null(e);
        assert_int_equal(e->version, high);
        assert_true(bs_holds(t.n[i].b, STORE_CONTENT, &bkey));
    }
    assert_non_null(ms_find(&t.n[0].st, STORE_CONTENT, &bkey));
    counts_reset(&t);
    round_all(&t);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST - 1000], 6);
    assert_int_equal(t.count[BS_MSG_STORE - 1000] + t.count[BS_MSG_GET - 1000], 0);
    net_free(&t);
}

/* Four nodes of four vnodes each, k = 3, every block on its replica set:
 * rounds change nothing and cost one message pair per vnode and member; a
 * fifth node joins and every block ends on exactly its new replica set. */
static void test_vnodes_steady_then_join(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t bytes[BLOCK_MAX_STORED];
    size_t len;
    struct id keys[48];
    struct lease l;

    net_init_ex(&t, 4, 3, 4, 0);
    net_settle(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++) {
        int set[T_NODES];
        make_block(&t, 700 + i, 90 * T_DAY_S, bytes, &len, &keys[i], &l);
        size_t n = replica_set(&t, &keys[i], set);
        assert_int_equal(n, 3);
        for (size_t j = 0; j < n; j++)
            plant(&t, set[j], STORE_CONTENT, &keys[i], bytes, len, &l);
    }
    net_run(&t, SYNC_HANDOFF_QUIET_MS);
    counts_reset(&t);
    round_all(&t);
    /* 16 vnodes, 2 other members each: 32 pairs. */
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST - 1000], 32);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST_OK - 1000], 32);
    assert_int_equal(t.count[BS_MSG_STORE - 1000] + t.count[BS_MSG_GET - 1000], 0);
    assert_int_equal(SUM(&t, handed_off), 0);

    t.nn = 5;
    node_start(&t, 4, 0);
    net_settle(&t);
    round_all(&t);
    net_run(&t, SYNC_HANDOFF_QUIET_MS);
    round_all(&t);
    round_all(&t);
    for (unsigned i = 0; i < N_ELEMS(keys); i++)
        assert_true(placed_exactly(&t, STORE_CONTENT, &keys[i]));
    net_free(&t);
}

/* With a period, rounds come by themselves, each 10 s ± 10% apart. */
static void test_periodic_rounds(void **state)
{
    (void)state;
    struct tnet t;

    net_init_ex(&t, 2, 2, 1, 10000);
    net_settle(&t);
    uint64_t r0 = SUM(&t, sync_rounds);
    counts_reset(&t);
    net_run(&t, 100000);
    uint64_t r = SUM(&t, sync_rounds) - r0;
    assert_true(r >= 2 * 9 && r <= 2 * 12);
    assert_int_equal(t.count[BS_MSG_SYNC_DIGEST - 1000], r);
    net_free(&t);
}

/* Malformed sync requests are refused as such; a reply type sent as a
 * request too. */
static void test_malformed_input(void **state)
{
    (void)state;
    struct tnet t;
    uint8_t frame[FRAME_HEADER_SIZE + 64];
    struct frame_header h = {FRAME_VERSION, 0, BS_MSG_SYNC_DIGEST, 7, 10};

    net_init(&t, 1, 1);
    net_settle(&t);
    memset(frame, 0, sizeof(frame));
    frame_header_encode(&h, frame);
    assert_int_equal(bs_input(t.n[0].b, &t.n[0].addr, frame, FRAME_HEADER_SIZE + 10),
                     BS_ERR_MALFORMED);
    h.type = BS_MSG_SYNC_KEYS;
    frame_header_encode(&h, frame);
    assert_int_equal(bs_input(t.n[0].b, &t.n[0].addr, frame, FRAME_HEADER_SIZE + 10),
                     BS_ERR_MALFORMED);
    h.type = BS_MSG_SYNC_DIGEST_OK;
    h.length = 2;
    frame_header_encode(&h, frame);
    assert_int_equal(bs_input(t.n[0].b, &t.n[0].addr, frame, FRAME_HEADER_SIZE + 2),
                     BS_ERR_MALFORMED);
    net_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_input),
        cmocka_unit_test(test_two_nodes_one_block),
        cmocka_unit_test(test_one_of_three_returns_to_three),
        cmocka_unit_test(test_many_records_descend),
        cmocka_unit_test(test_missed_reclaim_converges),
        cmocka_unit_test(test_join_takes_over_and_handoff),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_crash_return_counts_again),
        cmocka_unit_test(test_full_members_keep_last_copy),
        cmocka_unit_test(test_handoff_lease_exchange_not_held),
        cmocka_unit_test(test_handoff_full_members_spares),
        cmocka_unit_test(test_versions_and_repair),
        cmocka_unit_test(test_vnodes_steady_then_join),
        cmocka_unit_test(test_periodic_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
