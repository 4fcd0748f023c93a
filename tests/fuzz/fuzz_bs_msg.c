/* fuzz_bs_msg.c — libFuzzer harness for the codecs of the messages nodes
 * exchange about blocks: the storage messages 1001..1015
 * (blockstore/msg.c) and the maintenance messages 1020..1023
 * (blockstore/sync_msg.c).
 *
 * The first input byte chooses the decoder (its value modulo 19); the rest
 * of the input is the payload, copied to a heap block of exactly its size
 * so that ASan sees any read past it:
 *   0..14  bs_msg_decode of type 1001 + the selector (GET, PUT, GET_OK,
 *          PUT_OK, FAILURE, STORE, STORE_OK, LOCATE, LOCATION, LEASE,
 *          LEASE_OK, LEASE_MERGE, LEASE_MERGE_OK, ROOT_READ, ROOT_READ_OK)
 *   15     sync_digest_decode    (1020 SYNC_DIGEST)
 *   16     sync_reply_decode     (1021 SYNC_DIGEST_OK)
 *   17     sync_keys_decode      (1022 SYNC_KEYS)
 *   18     sync_keys_ok_decode   (1023 SYNC_KEYS_OK), for the count the
 *          payload's first two bytes announce (a node passes the count of
 *          its own request), and again for one key more and one less,
 *          which must fail
 *
 * Beyond "does not crash":
 *   - a decoder that fails leaves its out-parameters alone and leaks
 *     nothing (LeakSanitizer sees a SYNC_DIGEST_OK entry array that is not
 *     freed); SYNC_KEYS_OK fills only flags, version and digest;
 *   - a decoded value is in range (known store types, only defined flags,
 *     a printable reason, at most BS_MSG_LEASES_MAX leases, a location of
 *     at most BS_REPLICAS_MAX + BS_DIVERT_MAX peers with known address
 *     families, sync buckets ascending, ...), and the views it returns
 *     (a record, the lease records) lie inside the payload at their place;
 *   - bs_msg_size() is the payload's length;
 *   - it encodes again into a heap block of exactly the payload's length,
 *     to the payload itself (each encoding is canonical), and a buffer one
 *     byte shorter is refused with -EMSGSIZE;
 *   - storage messages with lease records encode the same from the records
 *     as decoded (lease_raw) and from struct leases (bs_msg_lease);
 *   - the encoding decodes to the same value.
 * No decoder may write into its input.
 *
 * Any violation calls abort(), which libFuzzer reports as a crash and saves
 * the input; the failed check is printed on stderr.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/msg.h"
#include "blockstore/sync_msg.h"

/* Selectors: 0..14 are the storage types in order; append new ones at the
 * end, the committed corpus names them by number. */
enum {
    SEL_BS_FIRST = 0,
    SEL_BS_LAST = BS_MSG_ROOT_READ_OK - BS_MSG_GET,
    SEL_SYNC_DIGEST,
    SEL_SYNC_REPLY,
    SEL_SYNC_KEYS,
    SEL_SYNC_KEYS_OK,
    SEL_N
};

#define LOC_SET_MAX (BS_REPLICAS_MAX + BS_DIVERT_MAX)
#define SENTINEL    0xa5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_bs_msg: %s\n", what);
    abort();
}

static bool untouched(const void *obj, size_t n)
{
    const uint8_t *b = obj;
    for (size_t i = 0; i < n; i++)
        if (b[i] != SENTINEL)
            return false;
    return true;
}

static bool inside(const uint8_t *v, size_t n, const uint8_t *base, size_t len)
{
    return v >= base && n <= len && (size_t)(v - base) <= len - n;
}

/* A heap block of exactly n bytes (1 for n == 0), so that ASan reports a
 * write past the length an encoder claims. */
static uint8_t *exact(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        fail("out of memory");
    return b;
}

/* ---- storage messages 1001..1015 ---- */

static bool rtype_ok(uint8_t t)
{
    return t == STORE_CONTENT || t == STORE_ROOT || t == STORE_KV;
}

static void check_addr(const struct addr *a)
{
    static const uint8_t zero[16];
    if (a->family != ADDR_V4 && a->family != ADDR_V6)
        fail("decoded an address of no family");
    if (a->pad != 0 || (a->family == ADDR_V4 && memcmp(a->ip + 4, zero, 12) != 0))
        fail("decoded address has non-zero padding");
}

static void check_loc(const struct bs_location *loc)
{
    static const struct id zero;
    if (loc->n > LOC_SET_MAX)
        fail("a location with too many peers");
    if (!loc->has_pred && !id_eq(&loc->pred, &zero))
        fail("a location without predecessor has one");
    check_addr(&loc->vnode.addr);
    for (unsigned i = 0; i < loc->n; i++)
        check_addr(&loc->set[i].addr);
}

static bool peer_eq(const struct chord_peer *a, const struct chord_peer *b)
{
    return id_eq(&a->id, &b->id) && addr_eq(&a->addr, &b->addr) && a->addr.port == b->addr.port;
}

static bool loc_eq(const struct bs_location *a, const struct bs_location *b)
{
    if (a->has_pred != b->has_pred || (a->has_pred && !id_eq(&a->pred, &b->pred)) ||
        !peer_eq(&a->vnode, &b->vnode) || a->n != b->n)
        return false;
    for (unsigned i = 0; i < a->n; i++)
        if (!peer_eq(&a->set[i], &b->set[i]))
            return false;
    return true;
}

static bool msg_eq(const struct bs_msg *a, const struct bs_msg *b)
{
    if (a->type != b->type || a->rtype != b->rtype || a->flags != b->flags ||
        !id_eq(&a->key, &b->key) || !id_eq(&a->target, &b->target) || a->version != b->version ||
        a->copies != b->copies || a->code != b->code || strcmp(a->reason, b->reason) != 0 ||
        a->len != b->len || (a->len && memcmp(a->bytes, b->bytes, a->len) != 0) ||
        a->nleases != b->nleases || a->has_loc != b->has_loc)
        return false;
    if (a->nleases && memcmp(a->lease_raw, b->lease_raw, (size_t)a->nleases * LEASE_LEN) != 0)
        return false;
    return !a->has_loc || loc_eq(&a->loc, &b->loc);
}

/* What each type may carry: the fields it does not use must stay zero. */
static void check_msg(const struct bs_msg *m, uint16_t type, const uint8_t *p, size_t len)
{
    bool has_rtype = false, has_bytes = false, has_leases = false;
    uint8_t flags_ok = 0;

    if (m->type != type)
        fail("decoded message has another type");
    switch (type) {
    case BS_MSG_GET:
        has_rtype = true;
        flags_ok = BS_GET_F_PRIMARY;
        break;
    case BS_MSG_PUT: has_rtype = has_bytes = has_leases = true; break;
    case BS_MSG_GET_OK: has_rtype = has_bytes = has_leases = true; break;
    case BS_MSG_PUT_OK: has_rtype = true; break;
    case BS_MSG_FAILURE: has_bytes = true; break;
    case BS_MSG_STORE:
        has_rtype = has_bytes = has_leases = true;
        flags_ok = BS_STORE_F_REPAIR;
        break;
    case BS_MSG_STORE_OK: has_rtype = true; break;
    case BS_MSG_LEASE:
    case BS_MSG_LEASE_MERGE: has_leases = true; break;
    case BS_MSG_LEASE_MERGE_OK:
        has_leases = true;
        flags_ok = BS_MERGE_F_HELD;
        break;
    case BS_MSG_ROOT_READ_OK: has_bytes = true; break;
    default: break;
    }
    if (has_rtype ? !rtype_ok(m->rtype) : m->rtype != 0)
        fail("decoded an unknown store type");
    if (m->flags & ~flags_ok)
        fail("decoded a flag the type does not define");
    if (!has_bytes && (m->len || m->bytes))
        fail("decoded bytes for a type without a record");
    if (m->len > BLOCK_MAX_ANY || (m->len == 0) != (m->bytes == NULL) ||
        (m->len && !inside(m->bytes, m->len, p, len)))
        fail("decoded record out of range or outside the payload");
    if ((type == BS_MSG_PUT || type == BS_MSG_GET_OK || type == BS_MSG_STORE) && m->len == 0)
        fail("decoded an empty record where one is required");
    if (!has_leases && (m->nleases || m->lease_raw))
        fail("decoded leases for a type without leases");
    if (m->leases || m->nleases > BS_MSG_LEASES_MAX ||
        (m->nleases == 0) != (m->lease_raw == NULL) ||
        (m->nleases && !inside(m->lease_raw, (size_t)m->nleases * LEASE_LEN, p, len)))
        fail("decoded lease records out of range or outside the payload");
    if (type == BS_MSG_LEASE && m->nleases == 0)
        fail("decoded a LEASE without leases");
    if (type == BS_MSG_FAILURE) {
        size_t rl = strnlen(m->reason, sizeof(m->reason));
        if (m->code >= 0)
            fail("decoded a FAILURE with a non-negative code");
        if (rl > BS_REASON_MAX)
            fail("decoded reason is not NUL-terminated");
        for (size_t i = 0; i < rl; i++)
            if (m->reason[i] < 0x20 || m->reason[i] > 0x7e)
                fail("decoded reason has a non-printable character");
    } else if (m->code != 0 || m->reason[0] != '\0') {
        fail("decoded a code or reason for a type without one");
    }
    if (type == BS_MSG_LOCATION && !m->has_loc)
        fail("a LOCATION without its location");
    if (m->has_loc)
        check_loc(&m->loc);
}

static void fuzz_bs(uint16_t type, const uint8_t *p, size_t len)
{
    struct bs_msg m, m2;
    size_t n = 0;

    memset(&m, SENTINEL, sizeof(m));
    if (bs_msg_decode(type, p, len, &m) != 0) {
        if (!untouched(&m, sizeof(m)))
            fail("a message that does not decode was written out");
        return;
    }
    check_msg(&m, type, p, len);
    if (bs_msg_size(&m) != len)
        fail("bs_msg_size differs from the payload's length");
    if (len > FRAME_MAX_PAYLOAD) {
        uint8_t *big = exact(len);
        if (bs_msg_encode(&m, big, len, &n) != -EMSGSIZE)
            fail("a message larger than a frame encodes");
        free(big);
        return;
    }

    uint8_t *e = exact(len);
    if (bs_msg_encode(&m, e, len, &n) != 0)
        fail("a decoded message does not encode");
    if (n != len || memcmp(e, p, len) != 0)
        fail("a message re-encodes to other bytes");
    if (len > 0) {
        uint8_t *s = exact(len - 1);
        size_t n2 = 12345;
        if (bs_msg_encode(&m, s, len - 1, &n2) != -EMSGSIZE || n2 != 12345)
            fail("a message encodes into a buffer one byte too small");
        free(s);
    }

    /* The same records as struct leases. */
    if (m.nleases) {
        struct lease *ls = malloc((size_t)m.nleases * sizeof(*ls));
        if (!ls)
            fail("out of memory");
        for (size_t i = 0; i < m.nleases; i++)
            bs_msg_lease(&m, i, &ls[i]);
        m2 = m;
        m2.leases = ls;
        m2.lease_raw = NULL;
        uint8_t *e2 = exact(len);
        if (bs_msg_encode(&m2, e2, len, &n) != 0 || n != len || memcmp(e2, p, len) != 0)
            fail("leases encode differently from struct leases than from their records");
        free(e2);
        free(ls);
    }

    memset(&m2, SENTINEL, sizeof(m2));
    if (bs_msg_decode(type, e, len, &m2) != 0)
        fail("a re-encoded message does not decode");
    if (!msg_eq(&m, &m2))
        fail("a message differs after a round trip");
    free(e);
}

/* ---- maintenance messages 1020..1023 ---- */

/* The encoders, alike: (message, count, buf, cap, &len). */
typedef int (*sync_enc_fn)(const void *m, size_t n, uint8_t *buf, size_t cap, size_t *len);

static int enc_digest(const void *m, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    (void)n;
    return sync_digest_encode(m, buf, cap, len);
}

static int enc_reply(const void *m, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    (void)n;
    return sync_reply_encode(m, buf, cap, len);
}

static int enc_keys(const void *m, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    return sync_keys_encode(m, n, buf, cap, len);
}

static int enc_keys_ok(const void *m, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    return sync_keys_ok_encode(m, n, buf, cap, len);
}

/* Encodes m into exactly len bytes, which must be p; into len - 1 bytes it
 * must fail with -EMSGSIZE and leave *len alone. Returns the encoding (the
 * caller frees it). */
static uint8_t *reencode(sync_enc_fn enc, const void *m, size_t n, const uint8_t *p, size_t len,
                         const char *what)
{
    uint8_t *e = exact(len);
    size_t elen = 0;

    if (enc(m, n, e, len, &elen) != 0 || elen != len || memcmp(e, p, len) != 0) {
        fprintf(stderr, "fuzz_bs_msg: %s: ", what);
        fail("re-encodes to other bytes");
    }
    if (len > 0) {
        uint8_t *s = exact(len - 1);
        elen = 12345;
        if (enc(m, n, s, len - 1, &elen) != -EMSGSIZE || elen != 12345) {
            fprintf(stderr, "fuzz_bs_msg: %s: ", what);
            fail("encodes into a buffer one byte too small");
        }
        free(s);
    }
    return e;
}

static void fuzz_sync_digest(const uint8_t *p, size_t len)
{
    struct sync_digest *m = malloc(sizeof(*m)), *m2 = malloc(sizeof(*m2));
    uint8_t *enc = NULL;

    if (!m || !m2)
        fail("out of memory");
    memset(m, SENTINEL, sizeof(*m));
    if (sync_digest_decode(p, len, m) != 0) {
        if (!untouched(m, sizeof(*m)))
            fail("a digest that does not decode was written out");
        goto out;
    }
    if (m->depth > SYNC_DEPTH_MAX)
        fail("digest decoded a depth out of range");
    for (unsigned i = m->depth; i < SYNC_DEPTH_MAX; i++)
        if (m->prefix[i] != 0)
            fail("digest has prefix bytes past its depth");
    for (unsigned i = 0; i < SYNC_BUCKETS; i++) {
        static const uint8_t zero[SYNC_DIGEST_LEN];
        if (!m->b[i].count && memcmp(m->b[i].digest, zero, SYNC_DIGEST_LEN) != 0)
            fail("digest has an empty bucket with a digest");
    }
    enc = reencode(enc_digest, m, 0, p, len, "SYNC_DIGEST");
    memset(m2, SENTINEL, sizeof(*m2));
    if (sync_digest_decode(enc, len, m2) != 0)
        fail("a re-encoded digest does not decode");
    if (memcmp(m, m2, sizeof(*m)) != 0)
        fail("a digest differs after a round trip");
out:
    free(enc);
    free(m);
    free(m2);
}

static bool entry_eq(const struct sync_entry *a, const struct sync_entry *b)
{
    return a->type == b->type && a->flags == b->flags && id_eq(&a->key, &b->key) &&
           a->version == b->version && memcmp(a->digest, b->digest, SYNC_DIGEST_LEN) == 0;
}

static void check_entry(const struct sync_entry *e)
{
    if (!rtype_ok(e->type) || (e->flags & ~SYNC_F_ALL))
        fail("decoded an entry of an unknown type or with an undefined flag");
}

static void fuzz_sync_reply(const uint8_t *p, size_t len)
{
    struct sync_reply *m = malloc(sizeof(*m)), *m2 = malloc(sizeof(*m2));
    uint8_t *enc = NULL;

    if (!m || !m2)
        fail("out of memory");
    memset(m, SENTINEL, sizeof(*m));
    int rc = sync_reply_decode(p, len, m);
    if (rc == -ENOMEM)
        goto out;
    if (rc != 0) {
        if (!untouched(m, sizeof(*m)))
            fail("a reply that does not decode was written out");
        goto out;
    }
    if (m->nb > SYNC_BUCKETS || m->nent > SYNC_REPLY_MAX || (m->nent == 0) != (m->ent == NULL))
        fail("reply decoded counts out of range");
    uint32_t next = 0;
    for (unsigned i = 0; i < m->nb; i++) {
        const struct sync_reply_bucket *rb = &m->rb[i];
        if (i > 0 && rb->bucket <= m->rb[i - 1].bucket)
            fail("reply buckets are not ascending");
        if (rb->mode > SYNC_MODE_DESCEND)
            fail("reply decoded an unknown mode");
        if (rb->mode == SYNC_MODE_DESCEND) {
            if (rb->n || rb->first)
                fail("a descended bucket lists entries");
            continue;
        }
        if (rb->n > SYNC_LIST_MAX || rb->first != next)
            fail("a listed bucket's entries are out of range or out of order");
        next += rb->n;
    }
    if (next != m->nent)
        fail("reply buckets do not account for every entry");
    for (uint32_t j = 0; j < m->nent; j++)
        check_entry(&m->ent[j]);
    enc = reencode(enc_reply, m, 0, p, len, "SYNC_DIGEST_OK");
    memset(m2, SENTINEL, sizeof(*m2));
    if (sync_reply_decode(enc, len, m2) != 0)
        fail("a re-encoded reply does not decode");
    if (m2->nb != m->nb || m2->nent != m->nent)
        fail("a reply differs after a round trip");
    for (unsigned i = 0; i < m->nb; i++)
        if (m->rb[i].bucket != m2->rb[i].bucket || m->rb[i].mode != m2->rb[i].mode ||
            m->rb[i].n != m2->rb[i].n || m->rb[i].first != m2->rb[i].first)
            fail("a reply's buckets differ after a round trip");
    for (uint32_t j = 0; j < m->nent; j++)
        if (!entry_eq(&m->ent[j], &m2->ent[j]))
            fail("a reply's entries differ after a round trip");
    sync_reply_release(m2);
    sync_reply_release(m);
out:
    free(enc);
    free(m);
    free(m2);
}

static void fuzz_sync_keys(const uint8_t *p, size_t len)
{
    /* Exactly the room the decoder is promised. */
    struct sync_entry *e = malloc(SYNC_KEYS_MAX * sizeof(*e)),
                      *e2 = malloc(SYNC_KEYS_MAX * sizeof(*e2));
    size_t n = 12345, n2 = 0;
    uint8_t *enc = NULL;

    if (!e || !e2)
        fail("out of memory");
    memset(e, SENTINEL, SYNC_KEYS_MAX * sizeof(*e));
    if (sync_keys_decode(p, len, e, &n) != 0) {
        if (n != 12345 || !untouched(e, SYNC_KEYS_MAX * sizeof(*e)))
            fail("SYNC_KEYS that does not decode was written out");
        goto out;
    }
    if (n == 0 || n > SYNC_KEYS_MAX || len != 2 + n * (1 + ID_BYTES))
        fail("SYNC_KEYS decoded a count out of range");
    for (size_t i = 0; i < SYNC_KEYS_MAX; i++) {
        static const struct id zero_id;
        static const uint8_t zero[SYNC_DIGEST_LEN];
        if (i < n && !rtype_ok(e[i].type))
            fail("SYNC_KEYS decoded an unknown type");
        if (e[i].flags || e[i].version || memcmp(e[i].digest, zero, SYNC_DIGEST_LEN) != 0 ||
            (i >= n && (e[i].type || !id_eq(&e[i].key, &zero_id))))
            fail("SYNC_KEYS did not zero what it does not fill");
    }
    enc = reencode(enc_keys, e, n, p, len, "SYNC_KEYS");
    if (sync_keys_decode(enc, len, e2, &n2) != 0 || n2 != n)
        fail("a re-encoded SYNC_KEYS does not decode");
    for (size_t i = 0; i < n; i++)
        if (e[i].type != e2[i].type || !id_eq(&e[i].key, &e2[i].key))
            fail("SYNC_KEYS differs after a round trip");
out:
    free(enc);
    free(e);
    free(e2);
}

static void fuzz_sync_keys_ok(const uint8_t *p, size_t len)
{
    /* The count of the request, as a node knows it: here the one the
     * payload announces (a node never asks for more than SYNC_KEYS_MAX). */
    size_t n = len >= 2 ? (size_t)p[0] << 8 | p[1] : 0;
    if (n > SYNC_KEYS_MAX)
        n = SYNC_KEYS_MAX;
    /* Exactly n entries (and one more for the n + 1 probe below). */
    struct sync_entry *e = calloc(n + 1, sizeof(*e)), *e2 = calloc(n + 1, sizeof(*e2));
    uint8_t *enc = NULL;

    if (!e || !e2)
        fail("out of memory");
    memset(e, SENTINEL, (n + 1) * sizeof(*e));
    if (n > 0 && sync_keys_ok_decode(p, len, e, n - 1) == 0)
        fail("SYNC_KEYS_OK decodes for a count other than its own");
    if (n < SYNC_KEYS_MAX && sync_keys_ok_decode(p, len, e, n + 1) == 0)
        fail("SYNC_KEYS_OK decodes for a count other than its own");
    if (!untouched(e, (n + 1) * sizeof(*e)))
        fail("SYNC_KEYS_OK that does not decode was written out");
    struct sync_entry *exact_e = malloc(n ? n * sizeof(*exact_e) : 1);
    if (!exact_e)
        fail("out of memory");
    memset(exact_e, SENTINEL, n * sizeof(*exact_e));
    if (sync_keys_ok_decode(p, len, exact_e, n) != 0) {
        if (!untouched(exact_e, n * sizeof(*exact_e)))
            fail("SYNC_KEYS_OK that does not decode was written out");
        goto out;
    }
    if (len != 2 + n * SYNC_KEYS_OK_WIRE)
        fail("SYNC_KEYS_OK of a wrong length decodes");
    for (size_t i = 0; i < n; i++) {
        if (exact_e[i].flags & ~SYNC_F_ALL)
            fail("SYNC_KEYS_OK decoded an undefined flag");
        if (exact_e[i].type != SENTINEL || !untouched(exact_e[i].key.b, ID_BYTES))
            fail("SYNC_KEYS_OK wrote an entry's type or key");
    }
    enc = reencode(enc_keys_ok, exact_e, n, p, len, "SYNC_KEYS_OK");
    memset(e2, SENTINEL, (n + 1) * sizeof(*e2));
    if (sync_keys_ok_decode(enc, len, e2, n) != 0)
        fail("a re-encoded SYNC_KEYS_OK does not decode");
    for (size_t i = 0; i < n; i++)
        if (!entry_eq(&exact_e[i], &e2[i]))
            fail("SYNC_KEYS_OK differs after a round trip");
out:
    free(enc);
    free(exact_e);
    free(e);
    free(e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0] % SEL_N;
    size_t len = size - 1;
    /* An exact copy, so that ASan reports a read past the payload. */
    uint8_t *p = exact(len);
    if (len)
        memcpy(p, data + 1, len);

    if (sel <= SEL_BS_LAST)
        fuzz_bs((uint16_t)(BS_MSG_GET + sel), p, len);
    else if (sel == SEL_SYNC_DIGEST)
        fuzz_sync_digest(p, len);
    else if (sel == SEL_SYNC_REPLY)
        fuzz_sync_reply(p, len);
    else if (sel == SEL_SYNC_KEYS)
        fuzz_sync_keys(p, len);
    else
        fuzz_sync_keys_ok(p, len);

    if (len && memcmp(p, data + 1, len) != 0)
        fail("a decoder wrote into its input");
    free(p);
    return 0;
}
