/* gen_bs_msg_corpus.c — writes the seed corpus of fuzz_bs_msg.
 *
 *   gen_bs_msg_corpus DIR
 *
 * writes into DIR, one file each, a selector byte (fuzz_bs_msg.c) and a
 * payload: every storage message 1001..1015 with all its optional parts
 * (IPv4 and IPv6 peers, a full location, lease records) and without them,
 * every maintenance message 1020..1023, and near misses of each (cut by a
 * byte, a trailing byte, an unknown store type, flag, mode or lease count,
 * a non-printable reason, a code that is not an error, a location with
 * too many peers, buckets out of order). The output is deterministic. The
 * files are committed in tests/fuzz/corpus/bs_msg/; run this again (and
 * commit the result) when a wire format changes:
 *
 *   rm -f tests/fuzz/corpus/bs_msg/[a-z]*
 *   gen_bs_msg_corpus tests/fuzz/corpus/bs_msg
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/msg.h"
#include "blockstore/sync_msg.h"

/* fuzz_bs_msg's selectors: storage type - BS_MSG_GET, then these. */
enum { SEL_SYNC_DIGEST = 15, SEL_SYNC_REPLY, SEL_SYNC_KEYS, SEL_SYNC_KEYS_OK };

#define LOC_SET_MAX (BS_REPLICAS_MAX + BS_DIVERT_MAX)

static const char *out_dir;
static int status;

static uint8_t buf[SYNC_REPLY_WIRE_MAX + 4096];
static uint8_t record[600];
static struct lease leases[3];

/* Writes the selector and p[0..len) to out_dir/name. */
static void emit(const char *name, uint8_t sel, const uint8_t *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        status = 1;
        return;
    }
    if (fwrite(&sel, 1, 1, f) != 1 || (len && fwrite(p, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "%s: write failed\n", path);
        status = 1;
    }
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "gen_bs_msg_corpus: %s failed: %d\n", what, rc);
        exit(1);
    }
}

static void setup_data(void)
{
    for (size_t i = 0; i < sizeof(record); i++)
        record[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(leases) / sizeof(leases[0]); i++) {
        memset(&leases[i], 0, sizeof(leases[i]));
        memset(leases[i].owner.b, 0x40 + (int)i, SIG_PUB_LEN);
        leases[i].stamp_ms = 1700000000000ull + i;
        leases[i].expiry_s = i == 1 ? 0 : 1800000000ull;
        memset(leases[i].sig, 0x50 + (int)i, SIG_LEN);
    }
}

static void fill_loc(struct bs_location *loc, bool pred, unsigned n)
{
    memset(loc, 0, sizeof(*loc));
    loc->has_pred = pred;
    memset(loc->pred.b, 0x11, ID_BYTES);
    memset(loc->vnode.id.b, 0x22, ID_BYTES);
    addr_v4(&loc->vnode.addr, 10, 0, 0, 1, 4000);
    loc->n = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        memset(loc->set[i].id.b, 0x30 + (int)i, ID_BYTES);
        if (i % 2) {
            addr_v4(&loc->set[i].addr, 10, 0, 0, (uint8_t)(i + 2), 4000);
        } else {
            loc->set[i].addr.family = ADDR_V6;
            loc->set[i].addr.port = 4001;
            loc->set[i].addr.ip[0] = 0x20;
            loc->set[i].addr.ip[1] = 0x01;
            loc->set[i].addr.ip[2] = 0x0d;
            loc->set[i].addr.ip[3] = 0xb8;
            loc->set[i].addr.ip[15] = (uint8_t)i;
        }
    }
}

static void msg_new(struct bs_msg *m, uint16_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    memset(m->key.b, 0xaa, ID_BYTES);
}

static size_t enc(const struct bs_msg *m)
{
    size_t len = 0;
    check(bs_msg_encode(m, buf, sizeof(buf), &len), "bs_msg_encode");
    return len;
}

static uint8_t sel_of(uint16_t type)
{
    return (uint8_t)(type - BS_MSG_GET);
}

/* Writes m as NAME, then NAME_short (cut by a byte) and NAME_trailing. */
static void emit_msg(const char *name, const struct bs_msg *m)
{
    char n2[128];
    size_t len = enc(m);
    emit(name, sel_of(m->type), buf, len);
    snprintf(n2, sizeof(n2), "%s_short", name);
    emit(n2, sel_of(m->type), buf, len - 1);
    buf[len] = 0;
    snprintf(n2, sizeof(n2), "%s_trailing", name);
    emit(n2, sel_of(m->type), buf, len + 1);
}

/* Writes m with byte off set to v, as name. */
static void emit_patched(const char *name, const struct bs_msg *m, size_t off, uint8_t v)
{
    size_t len = enc(m);
    if (off >= len) {
        fprintf(stderr, "gen_bs_msg_corpus: %s: offset %zu past %zu\n", name, off, len);
        status = 1;
        return;
    }
    buf[off] = v;
    emit(name, sel_of(m->type), buf, len);
}

static void gen_storage(void)
{
    struct bs_msg m;
    size_t len;

    setup_data();

    /* GET: rtype u8 | flags u8 | target | key */
    msg_new(&m, BS_MSG_GET);
    m.rtype = STORE_ROOT;
    m.flags = BS_GET_F_PRIMARY;
    memset(m.target.b, 0xbb, ID_BYTES);
    emit_msg("get_root_primary", &m);
    emit_patched("get_rtype_0", &m, 0, 0);
    emit_patched("get_rtype_4", &m, 0, 4);
    emit_patched("get_flag_unknown", &m, 1, 0x02);

    /* GET_OK: rtype | key | u32 len | bytes | u16 n | leases | u8 has_loc [| loc] */
    msg_new(&m, BS_MSG_GET_OK);
    m.rtype = STORE_CONTENT;
    m.bytes = record;
    m.len = 300;
    m.leases = leases;
    m.nleases = 3;
    m.has_loc = true;
    fill_loc(&m.loc, true, 5);
    emit_msg("get_ok_content_leases_loc", &m);
    emit_patched("get_ok_has_loc_2", &m, 1 + ID_BYTES + 4 + 300 + 2 + 3 * LEASE_LEN, 2);
    emit_patched("get_ok_loc_flag_unknown", &m, 1 + ID_BYTES + 4 + 300 + 2 + 3 * LEASE_LEN + 1,
                 0x02);
    m.has_loc = false;
    m.nleases = 0;
    m.rtype = STORE_KV;
    m.len = 40;
    emit_msg("get_ok_kv", &m);
    /* an empty record */
    len = enc(&m);
    memset(buf + 1 + ID_BYTES, 0, 4);
    memmove(buf + 1 + ID_BYTES + 4, buf + 1 + ID_BYTES + 4 + 40, len - (1 + ID_BYTES + 4 + 40));
    emit("get_ok_empty_record", sel_of(BS_MSG_GET_OK), buf, len - 40);

    /* PUT: rtype | flags | target | key | u64 version | u32 len | bytes | u16 n | leases */
    msg_new(&m, BS_MSG_PUT);
    m.rtype = STORE_CONTENT;
    memset(m.target.b, 0xbc, ID_BYTES);
    m.version = BS_ROOT_ANY;
    m.bytes = record;
    m.len = 100;
    m.leases = leases;
    m.nleases = 1;
    emit_msg("put_content", &m);
    emit_patched("put_flag_set", &m, 1, 0x01);
    /* a lease count one past the limit */
    len = enc(&m);
    buf[len - LEASE_LEN - 2] = (uint8_t)((BS_MSG_LEASES_MAX + 1) >> 8);
    buf[len - LEASE_LEN - 1] = (uint8_t)(BS_MSG_LEASES_MAX + 1);
    emit("put_leases_over_max", sel_of(BS_MSG_PUT), buf, len);
    m.rtype = STORE_ROOT;
    m.version = 41;
    m.nleases = 0;
    emit_msg("put_root", &m);

    /* PUT_OK: rtype | key | copies | u64 version | has_loc [| loc] */
    msg_new(&m, BS_MSG_PUT_OK);
    m.rtype = STORE_ROOT;
    m.copies = 3;
    m.version = 42;
    m.has_loc = true;
    fill_loc(&m.loc, false, LOC_SET_MAX);
    emit_msg("put_ok_full_loc", &m);
    emit_patched("put_ok_loc_too_many", &m, 1 + ID_BYTES + 1 + 8 + 1 + 1 + ID_BYTES + 7,
                 LOC_SET_MAX + 1);
    m.has_loc = false;
    emit_msg("put_ok_no_loc", &m);

    /* FAILURE: i32 code | u8 rl | reason | has_loc [| loc] | u32 len | bytes */
    msg_new(&m, BS_MSG_FAILURE);
    memset(m.key.b, 0, ID_BYTES);
    m.code = BS_ERR_CONFLICT;
    strcpy(m.reason, "expected version 3, found 4");
    m.has_loc = true;
    fill_loc(&m.loc, true, 3);
    m.bytes = record;
    m.len = 120;
    emit_msg("failure_conflict", &m);
    emit_patched("failure_reason_control", &m, 5 + 3, 0x1b);
    emit_patched("failure_reason_high", &m, 5 + 3, 0x80);
    emit_patched("failure_code_positive", &m, 0, 0x00);
    m.has_loc = false;
    m.len = 0;
    m.bytes = NULL;
    m.code = -ETIMEDOUT;
    memset(m.reason, 'r', BS_REASON_MAX);
    m.reason[BS_REASON_MAX] = '\0';
    emit_msg("failure_longest_reason", &m);
    emit_patched("failure_reason_too_long", &m, 4, BS_REASON_MAX + 1);
    m.reason[0] = '\0';
    emit_msg("failure_empty", &m);

    /* STORE: rtype | flags | key | u32 len | bytes | u16 n | leases */
    msg_new(&m, BS_MSG_STORE);
    m.rtype = STORE_KV;
    m.flags = BS_STORE_F_REPAIR;
    m.bytes = record;
    m.len = 77;
    m.leases = leases;
    m.nleases = 2;
    emit_msg("store_repair", &m);
    emit_patched("store_flag_unknown", &m, 1, 0x02);

    /* STORE_OK: rtype | key */
    msg_new(&m, BS_MSG_STORE_OK);
    m.rtype = STORE_CONTENT;
    emit_msg("store_ok", &m);

    /* LOCATE: target | key */
    msg_new(&m, BS_MSG_LOCATE);
    memset(m.target.b, 0x01, ID_BYTES);
    emit_msg("locate", &m);

    /* LOCATION: key | loc */
    msg_new(&m, BS_MSG_LOCATION);
    m.has_loc = true;
    fill_loc(&m.loc, true, 4);
    emit_msg("location", &m);
    fill_loc(&m.loc, false, 0);
    emit_msg("location_no_pred_empty_set", &m);
    emit_patched("location_addr_family_5", &m, ID_BYTES + 1 + ID_BYTES, 5);

    /* LEASE: target | key | u16 n (>= 1) | leases */
    msg_new(&m, BS_MSG_LEASE);
    memset(m.target.b, 0x02, ID_BYTES);
    m.leases = leases;
    m.nleases = 1;
    emit_msg("lease", &m);
    len = enc(&m);
    buf[2 * ID_BYTES + 1] = 0;
    emit("lease_none", sel_of(BS_MSG_LEASE), buf, 2 * ID_BYTES + 2);

    /* LEASE_OK: key | copies | has_loc [| loc] */
    msg_new(&m, BS_MSG_LEASE_OK);
    m.copies = 4;
    m.has_loc = true;
    fill_loc(&m.loc, true, 1);
    emit_msg("lease_ok", &m);

    /* LEASE_MERGE: key | u16 n | leases */
    msg_new(&m, BS_MSG_LEASE_MERGE);
    m.leases = leases;
    m.nleases = 3;
    emit_msg("lease_merge", &m);
    m.nleases = 0;
    emit_msg("lease_merge_empty", &m);

    /* LEASE_MERGE_OK: key | flags | u16 n | leases */
    msg_new(&m, BS_MSG_LEASE_MERGE_OK);
    m.flags = BS_MERGE_F_HELD;
    m.leases = leases;
    m.nleases = 2;
    emit_msg("lease_merge_ok", &m);
    emit_patched("lease_merge_ok_flag_unknown", &m, ID_BYTES, 0x03);

    /* ROOT_READ: key */
    msg_new(&m, BS_MSG_ROOT_READ);
    emit_msg("root_read", &m);

    /* ROOT_READ_OK: key | u32 len | bytes (may be empty) */
    msg_new(&m, BS_MSG_ROOT_READ_OK);
    m.bytes = record;
    m.len = 200;
    emit_msg("root_read_ok", &m);
    m.bytes = NULL;
    m.len = 0;
    emit_msg("root_read_ok_none", &m);
}

static void gen_sync(void)
{
    static struct sync_digest d;
    static struct sync_reply r;
    static struct sync_entry e[SYNC_KEYS_MAX + 1];
    size_t len;

    /* SYNC_DIGEST */
    memset(&d, 0, sizeof(d));
    memset(d.lo.b, 0x10, ID_BYTES);
    memset(d.hi.b, 0x20, ID_BYTES);
    check(sync_digest_encode(&d, buf, sizeof(buf), &len), "sync_digest_encode");
    emit("digest_empty", SEL_SYNC_DIGEST, buf, len);
    d.depth = 2;
    d.prefix[0] = d.prefix[1] = 0x10;
    for (unsigned i = 0; i < SYNC_BUCKETS; i += 37) {
        d.b[i].count = i + 1;
        memset(d.b[i].digest, (int)i, SYNC_DIGEST_LEN);
    }
    check(sync_digest_encode(&d, buf, sizeof(buf), &len), "sync_digest_encode");
    emit("digest_some", SEL_SYNC_DIGEST, buf, len);
    emit("digest_short", SEL_SYNC_DIGEST, buf, len - 1);
    buf[len] = 0;
    emit("digest_trailing", SEL_SYNC_DIGEST, buf, len + 1);
    /* bucket 0's count 0 although its bit is set */
    memset(buf + 2 * ID_BYTES + 1 + 2 + SYNC_BUCKETS / 8, 0, 4);
    emit("digest_count_0", SEL_SYNC_DIGEST, buf, len);
    d.depth = SYNC_DEPTH_MAX;
    memset(d.prefix, 0x10, SYNC_DEPTH_MAX);
    for (unsigned i = 0; i < SYNC_BUCKETS; i++) {
        d.b[i].count = 0xffffffffu - i;
        memset(d.b[i].digest, (int)(i * 3), SYNC_DIGEST_LEN);
    }
    check(sync_digest_encode(&d, buf, sizeof(buf), &len), "sync_digest_encode");
    emit("digest_deepest_full", SEL_SYNC_DIGEST, buf, len);
    buf[2 * ID_BYTES] = SYNC_DEPTH_MAX + 1;
    emit("digest_too_deep", SEL_SYNC_DIGEST, buf, len);

    /* SYNC_DIGEST_OK */
    for (unsigned i = 0; i <= SYNC_KEYS_MAX; i++) {
        memset(&e[i], 0, sizeof(e[i]));
        e[i].type = (uint8_t)(1 + i % 3);
        e[i].flags = (uint8_t)(SYNC_F_HELD | (i & 1 ? SYNC_F_PRESENT | SYNC_F_LIVE : SYNC_F_BAD));
        memset(e[i].key.b, (int)(0x30 + i), ID_BYTES);
        e[i].key.b[0] = (uint8_t)(i >> 8);
        e[i].version = (uint64_t)i * 1000;
        memset(e[i].digest, (int)(0xa0 + i), SYNC_DIGEST_LEN);
    }
    memset(&r, 0, sizeof(r));
    check(sync_reply_encode(&r, buf, sizeof(buf), &len), "sync_reply_encode");
    emit("reply_in_sync", SEL_SYNC_REPLY, buf, len);
    r.nb = 3;
    r.rb[0] = (struct sync_reply_bucket){3, SYNC_MODE_LIST, 5, 0};
    r.rb[1] = (struct sync_reply_bucket){7, SYNC_MODE_DESCEND, 0, 0};
    r.rb[2] = (struct sync_reply_bucket){250, SYNC_MODE_LIST, 3, 5};
    r.nent = 8;
    r.ent = e;
    check(sync_reply_encode(&r, buf, sizeof(buf), &len), "sync_reply_encode");
    emit("reply_lists", SEL_SYNC_REPLY, buf, len);
    emit("reply_lists_short", SEL_SYNC_REPLY, buf, len - 1);
    buf[len] = 0;
    emit("reply_lists_trailing", SEL_SYNC_REPLY, buf, len + 1);
    buf[2] = 9; /* bucket 9 before 7 */
    emit("reply_out_of_order", SEL_SYNC_REPLY, buf, len);
    buf[2] = 3;
    buf[3] = 2; /* no such mode */
    emit("reply_mode_2", SEL_SYNC_REPLY, buf, len);
    buf[3] = SYNC_MODE_LIST;
    buf[6] = 0; /* an entry of store type 0 */
    emit("reply_entry_type_0", SEL_SYNC_REPLY, buf, len);
    /* SYNC_LIST_MAX entries in one bucket, and one more */
    r.nb = 1;
    r.rb[0] = (struct sync_reply_bucket){0, SYNC_MODE_LIST, SYNC_LIST_MAX, 0};
    r.nent = SYNC_LIST_MAX;
    check(sync_reply_encode(&r, buf, sizeof(buf), &len), "sync_reply_encode");
    emit("reply_list_max", SEL_SYNC_REPLY, buf, len);
    r.rb[0].n = SYNC_LIST_MAX + 1;
    r.nent = SYNC_LIST_MAX + 1;
    check(sync_reply_encode(&r, buf, sizeof(buf), &len), "sync_reply_encode");
    emit("reply_list_over_max", SEL_SYNC_REPLY, buf, len);
    /* every bucket descends */
    r.nb = SYNC_BUCKETS;
    for (unsigned i = 0; i < SYNC_BUCKETS; i++)
        r.rb[i] = (struct sync_reply_bucket){(uint8_t)i, SYNC_MODE_DESCEND, 0, 0};
    r.nent = 0;
    check(sync_reply_encode(&r, buf, sizeof(buf), &len), "sync_reply_encode");
    emit("reply_all_descend", SEL_SYNC_REPLY, buf, len);

    /* SYNC_KEYS */
    check(sync_keys_encode(e, 8, buf, sizeof(buf), &len), "sync_keys_encode");
    emit("keys", SEL_SYNC_KEYS, buf, len);
    emit("keys_short", SEL_SYNC_KEYS, buf, len - 1);
    buf[2] = 4; /* no such store type */
    emit("keys_type_4", SEL_SYNC_KEYS, buf, len);
    check(sync_keys_encode(e, 1, buf, sizeof(buf), &len), "sync_keys_encode");
    emit("keys_one", SEL_SYNC_KEYS, buf, len);
    check(sync_keys_encode(e, SYNC_KEYS_MAX, buf, sizeof(buf), &len), "sync_keys_encode");
    emit("keys_max", SEL_SYNC_KEYS, buf, len);
    buf[0] = 0;
    buf[1] = 0;
    emit("keys_count_0", SEL_SYNC_KEYS, buf, 2);

    /* SYNC_KEYS_OK */
    check(sync_keys_ok_encode(e, 8, buf, sizeof(buf), &len), "sync_keys_ok_encode");
    emit("keys_ok", SEL_SYNC_KEYS_OK, buf, len);
    emit("keys_ok_short", SEL_SYNC_KEYS_OK, buf, len - 1);
    buf[2] = 0x20; /* an undefined flag */
    emit("keys_ok_flag_unknown", SEL_SYNC_KEYS_OK, buf, len);
    check(sync_keys_ok_encode(e, 0, buf, sizeof(buf), &len), "sync_keys_ok_encode");
    emit("keys_ok_none", SEL_SYNC_KEYS_OK, buf, len);
    check(sync_keys_ok_encode(e, SYNC_KEYS_MAX, buf, sizeof(buf), &len), "sync_keys_ok_encode");
    emit("keys_ok_max", SEL_SYNC_KEYS_OK, buf, len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    gen_storage();
    gen_sync();
    return status;
}
