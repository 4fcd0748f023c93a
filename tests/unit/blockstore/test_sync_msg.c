/* test_sync_msg.c — the codecs of the maintenance messages
 * (blockstore/sync_msg.c): round trips, sizes, and every rejection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "blockstore/bs.h"
#include "blockstore/sync_msg.h"

static void test_codec_digest(void **state)
{
    (void)state;
    struct sync_digest m, d;
    uint8_t buf[SYNC_DIGEST_WIRE_MAX];
    size_t len;

    memset(&m, 0, sizeof(m));
    memset(&m.lo, 0x11, sizeof(m.lo));
    memset(&m.hi, 0x22, sizeof(m.hi));
    m.depth = 3;
    m.prefix[0] = 1, m.prefix[1] = 2, m.prefix[2] = 3;
    m.b[0].count = 1;
    m.b[0].digest[0] = 0xaa;
    m.b[255].count = 70000;
    m.b[255].digest[7] = 0x55;
    assert_int_equal(sync_digest_encode(&m, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 64 + 1 + 3 + 32 + 2 * 12);
    assert_int_equal(sync_digest_decode(buf, len, &d), 0);
    assert_memory_equal(&m, &d, sizeof(m));
    /* Truncated, trailing byte, depth too big, a set bit with count 0. */
    assert_int_equal(sync_digest_decode(buf, len - 1, &d), BS_ERR_MALFORMED);
    buf[len] = 0;
    assert_int_equal(sync_digest_decode(buf, len + 1, &d), BS_ERR_MALFORMED);
    buf[64] = SYNC_DEPTH_MAX + 1;
    assert_int_equal(sync_digest_decode(buf, len, &d), BS_ERR_MALFORMED);
    buf[64] = 3;
    memset(buf + 64 + 1 + 3 + 32, 0, 4);
    assert_int_equal(sync_digest_decode(buf, len, &d), BS_ERR_MALFORMED);
    assert_int_equal(sync_digest_encode(&m, buf, 10, &len), -EMSGSIZE);
}

static void test_codec_reply(void **state)
{
    (void)state;
    struct sync_entry ent[3];
    struct sync_reply m, d;
    static uint8_t buf[SYNC_REPLY_WIRE_MAX];
    size_t len;

    memset(ent, 0, sizeof(ent));
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 3; i++) {
        ent[i].type = STORE_CONTENT + (uint8_t)i;
        ent[i].flags = SYNC_F_HELD | SYNC_F_PRESENT;
        memset(&ent[i].key, i + 1, sizeof(ent[i].key));
        ent[i].version = 100u + (unsigned)i;
        ent[i].digest[0] = (uint8_t)i;
    }
    m.nb = 3;
    m.rb[0] = (struct sync_reply_bucket){4, SYNC_MODE_LIST, 2, 0};
    m.rb[1] = (struct sync_reply_bucket){9, SYNC_MODE_DESCEND, 0, 0};
    m.rb[2] = (struct sync_reply_bucket){200, SYNC_MODE_LIST, 1, 2};
    m.nent = 3;
    m.ent = ent;
    assert_int_equal(sync_reply_encode(&m, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 2 + 4 + 2 + 4 + 3 * SYNC_ENTRY_WIRE);
    assert_int_equal(sync_reply_decode(buf, len, &d), 0);
    assert_int_equal(d.nb, 3);
    assert_int_equal(d.nent, 3);
    assert_memory_equal(d.ent, ent, sizeof(ent));
    assert_int_equal(d.rb[2].first, 2);
    sync_reply_release(&d);
    /* Truncated; buckets out of order; a bad type; a bad mode. */
    assert_int_equal(sync_reply_decode(buf, len - 1, &d), BS_ERR_MALFORMED);
    buf[2 + 4 + 2 * SYNC_ENTRY_WIRE] = 4;
    assert_int_equal(sync_reply_decode(buf, len, &d), BS_ERR_MALFORMED);
    buf[2 + 4 + 2 * SYNC_ENTRY_WIRE] = 9;
    buf[2 + 4] = 9;
    assert_int_equal(sync_reply_decode(buf, len, &d), BS_ERR_MALFORMED);
    buf[2 + 4] = STORE_CONTENT;
    buf[2 + 1] = 7;
    assert_int_equal(sync_reply_decode(buf, len, &d), BS_ERR_MALFORMED);
    buf[2 + 1] = SYNC_MODE_LIST;
    assert_int_equal(sync_reply_decode(buf, len, &d), 0);
    sync_reply_release(&d);
}

static void test_codec_keys(void **state)
{
    (void)state;
    struct sync_entry q[2], d[SYNC_KEYS_MAX];
    uint8_t buf[SYNC_KEYS_WIRE_MAX];
    size_t len, n;

    memset(q, 0, sizeof(q));
    q[0].type = STORE_ROOT;
    memset(&q[0].key, 3, sizeof(q[0].key));
    q[1].type = STORE_KV;
    memset(&q[1].key, 4, sizeof(q[1].key));
    assert_int_equal(sync_keys_encode(q, 2, buf, sizeof(buf), &len), 0);
    assert_int_equal(sync_keys_decode(buf, len, d, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(&d[1].key, &q[1].key, sizeof(q[1].key));
    assert_int_equal(d[0].type, STORE_ROOT);
    assert_int_equal(sync_keys_decode(buf, len - 1, d, &n), BS_ERR_MALFORMED);
    buf[2] = 9;
    assert_int_equal(sync_keys_decode(buf, len, d, &n), BS_ERR_MALFORMED);
    assert_int_equal(sync_keys_encode(q, 0, buf, sizeof(buf), &len), -EINVAL);

    q[0].flags = SYNC_F_HELD | SYNC_F_BUSY;
    q[0].version = 77;
    q[0].digest[3] = 9;
    assert_int_equal(sync_keys_ok_encode(q, 2, buf, sizeof(buf), &len), 0);
    assert_int_equal(sync_keys_ok_decode(buf, len, d, 2), 0);
    assert_int_equal(d[0].flags, q[0].flags);
    assert_int_equal(d[0].version, 77);
    assert_int_equal(d[0].digest[3], 9);
    assert_int_equal(sync_keys_ok_decode(buf, len, d, 3), BS_ERR_MALFORMED);
    buf[2] = 0xff;
    assert_int_equal(sync_keys_ok_decode(buf, len, d, 2), BS_ERR_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_digest),
        cmocka_unit_test(test_codec_reply),
        cmocka_unit_test(test_codec_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
