/* test_msg.c — codecs of the storage messages 1001..1015 (blockstore/msg.c):
 * round trips of every type, every truncation and trailing byte refused,
 * out-of-range values refused, decode -> encode -> decode stable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/msg.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static uint8_t record[300];
static struct lease leases[3];

static void fill_loc(struct bs_location *loc, bool pred, unsigned n)
{
    memset(loc, 0, sizeof(*loc));
    loc->has_pred = pred;
    memset(loc->pred.b, 0x11, ID_BYTES);
    memset(loc->vnode.id.b, 0x22, ID_BYTES);
    addr_v4(&loc->vnode.addr, 10, 0, 0, 1, 4000);
    loc->n = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        memset(loc->set[i].id.b, 0x30 + i, ID_BYTES);
        if (i % 2)
            addr_v4(&loc->set[i].addr, 10, 0, 0, (uint8_t)(i + 2), 4000);
        else
            addr_parse("[2001:db8::7]:4001", &loc->set[i].addr);
    }
}

static void setup_data(void)
{
    for (size_t i = 0; i < sizeof(record); i++)
        record[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < N_ELEMS(leases); i++) {
        memset(&leases[i], 0, sizeof(leases[i]));
        memset(leases[i].owner.b, 0x40 + (int)i, SIG_PUB_LEN);
        leases[i].stamp_ms = 1700000000000ull + i;
        leases[i].expiry_s = i == 1 ? 0 : 1800000000ull;
        memset(leases[i].sig, 0x50 + (int)i, SIG_LEN);
    }
}

/* One message of every type, with every optional part present. */
static size_t all_messages(struct bs_msg *out)
{
    size_t n = 0;
    struct bs_msg m;

    setup_data();
#define NEW(t)                                                                                     \
    do {                                                                                           \
        memset(&m, 0, sizeof(m));                                                                  \
        m.type = (t);                                                                              \
        memset(m.key.b, 0xaa, ID_BYTES);                                                           \
    } while (0)
    NEW(BS_MSG_GET);
    m.rtype = STORE_ROOT;
    m.flags = BS_GET_F_PRIMARY;
    memset(m.target.b, 0xbb, ID_BYTES);
    out[n++] = m;
    NEW(BS_MSG_GET_OK);
    m.rtype = STORE_CONTENT;
    m.bytes = record;
    m.len = sizeof(record);
    m.leases = leases;
    m.nleases = 3;
    m.has_loc = true;
    fill_loc(&m.loc, true, 5);
    out[n++] = m;
    NEW(BS_MSG_PUT);
    m.rtype = STORE_CONTENT;
    memset(m.target.b, 0xbc, ID_BYTES);
    m.version = BS_ROOT_ANY;
    m.bytes = record;
    m.len = 100;
    m.leases = leases;
    m.nleases = 1;
    out[n++] = m;
    NEW(BS_MSG_PUT_OK);
    m.rtype = STORE_ROOT;
    m.copies = 3;
    m.version = 42;
    m.has_loc = true;
    fill_loc(&m.loc, false, BS_REPLICAS_MAX + BS_DIVERT_MAX);
    out[n++] = m;
    NEW(BS_MSG_FAILURE);
    memset(m.key.b, 0, ID_BYTES); /* a failure names no key */
    m.code = BS_ERR_CONFLICT;
    strcpy(m.reason, "expected version 3, found 4");
    m.has_loc = true;
    fill_loc(&m.loc, true, 3);
    m.bytes = record;
    m.len = 120;
    out[n++] = m;
    NEW(BS_MSG_STORE);
    m.rtype = STORE_KV;
    m.flags = BS_STORE_F_REPAIR;
    m.bytes = record;
    m.len = 77;
    m.leases = leases;
    m.nleases = 2;
    out[n++] = m;
    NEW(BS_MSG_STORE_OK);
    m.rtype = STORE_CONTENT;
    out[n++] = m;
    NEW(BS_MSG_LOCATE);
    memset(m.target.b, 0x01, ID_BYTES);
    out[n++] = m;
    NEW(BS_MSG_LOCATION);
    m.has_loc = true;
    fill_loc(&m.loc, true, 4);
    out[n++] = m;
    NEW(BS_MSG_LEASE);
    memset(m.target.b, 0x02, ID_BYTES);
    m.leases = leases;
    m.nleases = 1;
    out[n++] = m;
    NEW(BS_MSG_LEASE_OK);
    m.copies = 4;
    m.has_loc = true;
    fill_loc(&m.loc, true, 1);
    out[n++] = m;
    NEW(BS_MSG_LEASE_MERGE);
    m.leases = leases;
    m.nleases = 3;
    out[n++] = m;
    NEW(BS_MSG_LEASE_MERGE_OK);
    m.flags = BS_MERGE_F_HELD;
    m.leases = leases;
    m.nleases = 2;
    out[n++] = m;
    NEW(BS_MSG_ROOT_READ);
    out[n++] = m;
    NEW(BS_MSG_ROOT_READ_OK);
    m.bytes = record;
    m.len = 200;
    out[n++] = m;
#undef NEW
    return n;
}

static void assert_same(const struct bs_msg *a, const struct bs_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->rtype, b->rtype);
    assert_int_equal(a->flags, b->flags);
    assert_memory_equal(&a->key, &b->key, sizeof(a->key));
    assert_memory_equal(&a->target, &b->target, sizeof(a->target));
    assert_true(a->version == b->version);
    assert_int_equal(a->copies, b->copies);
    assert_int_equal(a->code, b->code);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->len, b->len);
    if (a->len)
        assert_memory_equal(a->bytes, b->bytes, a->len);
    assert_int_equal(a->nleases, b->nleases);
    for (size_t i = 0; i < a->nleases; i++) {
        struct lease x, y;
        bs_msg_lease(a, i, &x);
        bs_msg_lease(b, i, &y);
        assert_memory_equal(&x, &y, sizeof(x));
    }
    assert_int_equal(a->has_loc, b->has_loc);
    if (a->has_loc) {
        assert_int_equal(a->loc.has_pred, b->loc.has_pred);
        if (a->loc.has_pred)
            assert_memory_equal(&a->loc.pred, &b->loc.pred, sizeof(a->loc.pred));
        assert_memory_equal(&a->loc.vnode, &b->loc.vnode, sizeof(a->loc.vnode));
        assert_int_equal(a->loc.n, b->loc.n);
        assert_memory_equal(a->loc.set, b->loc.set, a->loc.n * sizeof(a->loc.set[0]));
    }
}

static uint8_t *encode(const struct bs_msg *m, size_t *len)
{
    size_t cap = bs_msg_size(m);
    assert_true(cap > 0);
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(bs_msg_encode(m, buf, cap, len), 0);
    assert_int_equal(*len, cap);
    return buf;
}

static void test_round_trips(void **state)
{
    (void)state;
    struct bs_msg all[20];
    size_t n = all_messages(all);
    assert_int_equal(n, BS_MSG_ROOT_READ_OK - BS_MSG_GET + 1);
    for (size_t i = 0; i < n; i++) {
        struct bs_msg d, d2;
        size_t len, len2;
        uint8_t *buf = encode(&all[i], &len);
        assert_int_equal(bs_msg_decode(all[i].type, buf, len, &d), 0);
        assert_same(&all[i], &d);
        /* decode -> encode -> decode: the same bytes, the same message. */
        uint8_t *buf2 = encode(&d, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        assert_int_equal(bs_msg_decode(d.type, buf2, len2, &d2), 0);
        assert_same(&d, &d2);
        free(buf);
        free(buf2);
    }
}

static void test_truncation_and_trailing(void **state)
{
    (void)state;
    struct bs_msg all[20];
    size_t n = all_messages(all);
    for (size_t i = 0; i < n; i++) {
        struct bs_msg d;
        size_t len;
        uint8_t *buf = encode(&all[i], &len);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(bs_msg_decode(all[i].type, buf, cut, &d), BS_ERR_MALFORMED);
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, buf, len);
        longer[len] = 0;
        assert_int_equal(bs_msg_decode(all[i].type, longer, len + 1, &d), BS_ERR_MALFORMED);
        /* The bytes of one type are not another's. */
        assert_int_equal(bs_msg_decode(BS_MSG_SYNC_DIGEST, buf, len, &d), BS_ERR_MALFORMED);
        free(longer);
        free(buf);
    }
}

/* Encodes m, lets mutate change one byte at offset off, expects refusal. */
static void refuse_patched(const struct bs_msg *m, size_t off, uint8_t value)
{
    struct bs_msg d;
    size_t len;
    uint8_t *buf = encode(m, &len);
    assert_true(off < len);
    buf[off] = value;
    assert_int_equal(bs_msg_decode(m->type, buf, len, &d), BS_ERR_MALFORMED);
    free(buf);
}

static void test_bad_values(void **state)
{
    (void)state;
    struct bs_msg all[20], m;
    all_messages(all);

    /* GET: rtype 0 and 4, an unknown flag. */
    m = all[0];
    refuse_patched(&m, 0, 0);
    refuse_patched(&m, 0, 4);
    refuse_patched(&m, 1, 0x80);
    /* PUT: flags must be 0; an empty record; a record over the limit. */
    m = all[2];
    refuse_patched(&m, 1, 1);
    size_t len_off = 1 + 1 + 2 * ID_BYTES + 8;
    {
        size_t len;
        struct bs_msg d;
        uint8_t *buf = encode(&m, &len);
        memset(buf + len_off, 0, 4); /* length 0 and the bytes left over */
        assert_int_equal(bs_msg_decode(m.type, buf, len, &d), BS_ERR_MALFORMED);
        buf[len_off] = 0xff; /* far over BLOCK_MAX_ANY */
        assert_int_equal(bs_msg_decode(m.type, buf, len, &d), BS_ERR_MALFORMED);
        free(buf);
    }
    /* FAILURE: a code >= 0, a reason over 200 or not printable. */
    m = all[4];
    refuse_patched(&m, 0, 0x00);
    refuse_patched(&m, 4, BS_REASON_MAX + 1);
    refuse_patched(&m, 5, 0x07);
    refuse_patched(&m, 5, 0x7f);
    /* The optional location flag is 0 or 1; location flags only bit 0;
     * a replica set larger than k + divert. */
    size_t loc_off = 4 + 1 + strlen(m.reason);
    refuse_patched(&m, loc_off, 2);
    refuse_patched(&m, loc_off + 1, 0x03);
    {
        struct bs_msg l = all[8]; /* LOCATION: key, then the location */
        size_t n_off = ID_BYTES + 1 + ID_BYTES + ID_BYTES + 1 + 2 + 4;
        refuse_patched(&l, n_off, BS_REPLICAS_MAX + BS_DIVERT_MAX + 1);
        refuse_patched(&l, ID_BYTES + 1 + 2 * ID_BYTES, 5); /* address family */
    }
    /* LEASE needs at least one record. */
    m = all[9];
    m.nleases = 0;
    {
        uint8_t buf[256];
        size_t len;
        assert_int_equal(bs_msg_encode(&m, buf, sizeof(buf), &len), -EINVAL);
        struct bs_msg ok = all[9], d;
        uint8_t *enc = encode(&ok, &len);
        enc[2 * ID_BYTES] = 0;
        enc[2 * ID_BYTES + 1] = 0;
        assert_int_equal(bs_msg_decode(ok.type, enc, 2 * ID_BYTES + 2, &d), BS_ERR_MALFORMED);
        free(enc);
    }
    /* LEASE_MERGE_OK: an unknown flag. */
    m = all[12];
    refuse_patched(&m, ID_BYTES, 0x02);
    /* Unknown types. */
    {
        struct bs_msg d;
        uint8_t z[64] = {0};
        assert_int_equal(bs_msg_decode(1000, z, sizeof(z), &d), BS_ERR_MALFORMED);
        assert_int_equal(bs_msg_decode(1016, z, sizeof(z), &d), BS_ERR_MALFORMED);
        m.type = 1016;
        assert_int_equal(bs_msg_size(&m), 0);
        assert_int_equal(bs_msg_encode(&m, z, sizeof(z), &(size_t){0}), -EINVAL);
    }
}

static void test_encode_limits(void **state)
{
    (void)state;
    struct bs_msg all[20], m;
    uint8_t small[16];
    size_t len;
    all_messages(all);
    m = all[0]; /* the GET */
    assert_int_equal(bs_msg_encode(&m, small, sizeof(small), &len), -EMSGSIZE);

    /* The largest PUT fits a frame. */
    static uint8_t big[BLOCK_MAX_ANY];
    static struct lease many[BS_MSG_LEASES_MAX];
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_PUT;
    m.rtype = STORE_CONTENT;
    m.bytes = big;
    m.len = sizeof(big);
    m.leases = many;
    m.nleases = BS_MSG_LEASES_MAX;
    assert_true(bs_msg_size(&m) <= BS_MSG_MAX);
    assert_true(BS_MSG_MAX <= FRAME_MAX_PAYLOAD);
    uint8_t *buf = encode(&m, &len);
    struct bs_msg d;
    assert_int_equal(bs_msg_decode(m.type, buf, len, &d), 0);
    assert_int_equal(d.len, sizeof(big));
    assert_int_equal(d.nleases, BS_MSG_LEASES_MAX);
    free(buf);
    /* One record too many, one byte too many. */
    m.nleases = BS_MSG_LEASES_MAX + 1;
    assert_int_not_equal(bs_msg_encode(&m, small, sizeof(small), &len), 0);
    m.nleases = 0;
    m.len = BLOCK_MAX_ANY + 1;
    buf = malloc(bs_msg_size(&m));
    assert_int_equal(bs_msg_encode(&m, buf, bs_msg_size(&m), &len), -EINVAL);
    free(buf);

    /* Reasons are cut to 200 and made printable on encode. */
    memset(&m, 0, sizeof(m));
    m.type = BS_MSG_FAILURE;
    m.code = BS_ERR_FULL;
    memset(m.reason, 'x', BS_REASON_MAX);
    m.reason[3] = '\n';
    buf = encode(&m, &len);
    assert_int_equal(bs_msg_decode(m.type, buf, len, &d), 0);
    assert_int_equal(strlen(d.reason), BS_REASON_MAX);
    assert_int_equal(d.reason[3], '?');
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_truncation_and_trailing),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_encode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
