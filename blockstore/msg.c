/* msg.c — codecs of the storage messages 1001..1015 (docs/protocol.md). */
#include <errno.h>
#include <string.h>

#include "blockstore/msg.h"

#define LOC_F_PRED  0x01
#define LOC_SET_MAX (BS_REPLICAS_MAX + BS_DIVERT_MAX)

static bool rtype_ok(uint8_t t)
{
    return t == STORE_CONTENT || t == STORE_ROOT || t == STORE_KV;
}

static bool printable(char c)
{
    return c >= 0x20 && c <= 0x7e;
}

/* ---- location ---- */

size_t bs_location_size(const struct bs_location *loc)
{
    size_t n = 1 + (loc->has_pred ? ID_BYTES : 0) + ID_BYTES + wire_addr_size(&loc->vnode.addr) + 1;
    for (unsigned i = 0; i < loc->n && i < LOC_SET_MAX; i++)
        n += ID_BYTES + wire_addr_size(&loc->set[i].addr);
    return n;
}

void bs_location_put(struct wire_writer *w, const struct bs_location *loc)
{
    unsigned n = loc->n;
    if (n > LOC_SET_MAX) {
        w->err = true;
        return;
    }
    wire_put_u8(w, loc->has_pred ? LOC_F_PRED : 0);
    if (loc->has_pred)
        wire_put_id(w, &loc->pred);
    wire_put_id(w, &loc->vnode.id);
    wire_put_addr(w, &loc->vnode.addr);
    wire_put_u8(w, (uint8_t)n);
    for (unsigned i = 0; i < n; i++) {
        wire_put_id(w, &loc->set[i].id);
        wire_put_addr(w, &loc->set[i].addr);
    }
}

void bs_location_get(struct wire_reader *r, struct bs_location *loc)
{
    memset(loc, 0, sizeof(*loc));
    uint8_t f = wire_get_u8(r);
    if (f & ~LOC_F_PRED) {
        wire_reader_fail(r);
        return;
    }
    loc->has_pred = f & LOC_F_PRED;
    if (loc->has_pred)
        wire_get_id(r, &loc->pred);
    wire_get_id(r, &loc->vnode.id);
    wire_get_addr(r, &loc->vnode.addr);
    uint8_t n = wire_get_u8(r);
    if (n > LOC_SET_MAX) {
        wire_reader_fail(r);
        return;
    }
    loc->n = n;
    for (unsigned i = 0; i < n; i++) {
        wire_get_id(r, &loc->set[i].id);
        wire_get_addr(r, &loc->set[i].addr);
    }
}

/* ---- pieces ---- */

static void put_bytes32(struct wire_writer *w, const uint8_t *b, size_t len)
{
    if (len > BLOCK_MAX_ANY || (len && !b)) {
        w->err = true;
        return;
    }
    wire_put_u32(w, (uint32_t)len);
    wire_put_bytes(w, b, len);
}

/* A record: 1..BLOCK_MAX_ANY bytes, or 0.. when may_be_empty. */
static void get_bytes32(struct wire_reader *r, struct bs_msg *m, bool may_be_empty)
{
    uint32_t len = wire_get_u32(r);
    if (len > BLOCK_MAX_ANY || (len == 0 && !may_be_empty)) {
        wire_reader_fail(r);
        return;
    }
    m->bytes = len ? wire_get_view(r, len) : NULL;
    m->len = len;
}

static void put_leases(struct wire_writer *w, const struct bs_msg *m)
{
    if (m->nleases > BS_MSG_LEASES_MAX || (m->nleases && !m->leases && !m->lease_raw)) {
        w->err = true;
        return;
    }
    wire_put_u16(w, m->nleases);
    for (size_t i = 0; i < m->nleases; i++) {
        uint8_t rec[LEASE_LEN];
        if (m->leases)
            lease_encode(&m->leases[i], rec);
        else
            memcpy(rec, m->lease_raw + i * LEASE_LEN, LEASE_LEN);
        wire_put_bytes(w, rec, LEASE_LEN);
    }
}

static void get_leases(struct wire_reader *r, struct bs_msg *m, bool at_least_one)
{
    uint16_t n = wire_get_u16(r);
    if (n > BS_MSG_LEASES_MAX || (n == 0 && at_least_one)) {
        wire_reader_fail(r);
        return;
    }
    m->nleases = n;
    m->leases = NULL;
    m->lease_raw = n ? wire_get_view(r, (size_t)n * LEASE_LEN) : NULL;
}

static void put_opt_loc(struct wire_writer *w, const struct bs_msg *m)
{
    wire_put_u8(w, m->has_loc ? 1 : 0);
    if (m->has_loc)
        bs_location_put(w, &m->loc);
}

static void get_opt_loc(struct wire_reader *r, struct bs_msg *m)
{
    uint8_t has = wire_get_u8(r);
    if (has > 1) {
        wire_reader_fail(r);
        return;
    }
    m->has_loc = has;
    if (has)
        bs_location_get(r, &m->loc);
}

static void put_rtype(struct wire_writer *w, uint8_t t)
{
    if (!rtype_ok(t))
        w->err = true;
    wire_put_u8(w, t);
}

static uint8_t get_rtype(struct wire_reader *r)
{
    uint8_t t = wire_get_u8(r);
    if (!rtype_ok(t))
        wire_reader_fail(r);
    return t;
}

static void get_flags(struct wire_reader *r, struct bs_msg *m, uint8_t allowed)
{
    m->flags = wire_get_u8(r);
    if (m->flags & ~allowed)
        wire_reader_fail(r);
}

/* ---- messages ---- */

static void encode(struct wire_writer *w, const struct bs_msg *m)
{
    switch (m->type) {
    case BS_MSG_GET:
        put_rtype(w, m->rtype);
        wire_put_u8(w, m->flags);
        wire_put_id(w, &m->target);
        wire_put_id(w, &m->key);
        break;
    case BS_MSG_GET_OK:
        put_rtype(w, m->rtype);
        wire_put_id(w, &m->key);
        if (m->len == 0)
            w->err = true;
        put_bytes32(w, m->bytes, m->len);
        put_leases(w, m);
        put_opt_loc(w, m);
        break;
    case BS_MSG_PUT:
        put_rtype(w, m->rtype);
        wire_put_u8(w, m->flags);
        wire_put_id(w, &m->target);
        wire_put_id(w, &m->key);
        wire_put_u64(w, m->version);
        if (m->len == 0)
            w->err = true;
        put_bytes32(w, m->bytes, m->len);
        put_leases(w, m);
        break;
    case BS_MSG_PUT_OK:
        put_rtype(w, m->rtype);
        wire_put_id(w, &m->key);
        wire_put_u8(w, m->copies);
        wire_put_u64(w, m->version);
        put_opt_loc(w, m);
        break;
    case BS_MSG_FAILURE: {
        char reason[BS_REASON_MAX];
        size_t rl = strnlen(m->reason, sizeof(m->reason));
        if (rl > BS_REASON_MAX)
            rl = BS_REASON_MAX;
        for (size_t i = 0; i < rl; i++)
            reason[i] = printable(m->reason[i]) ? m->reason[i] : '?';
        if (m->code >= 0)
            w->err = true;
        wire_put_u32(w, (uint32_t)m->code);
        wire_put_u8(w, (uint8_t)rl);
        wire_put_bytes(w, reason, rl);
        put_opt_loc(w, m);
        put_bytes32(w, m->bytes, m->len);
        break;
    }
    case BS_MSG_STORE:
        put_rtype(w, m->rtype);
        wire_put_u8(w, m->flags);
        wire_put_id(w, &m->key);
        if (m->len == 0)
            w->err = true;
        put_bytes32(w, m->bytes, m->len);
        put_leases(w, m);
        break;
    case BS_MSG_STORE_OK:
        put_rtype(w, m->rtype);
        wire_put_id(w, &m->key);
        break;
    case BS_MSG_LOCATE:
        wire_put_id(w, &m->target);
        wire_put_id(w, &m->key);
        break;
    case BS_MSG_LOCATION:
        wire_put_id(w, &m->key);
        bs_location_put(w, &m->loc);
        break;
    case BS_MSG_LEASE:
        wire_put_id(w, &m->target);
        wire_put_id(w, &m->key);
        if (m->nleases == 0)
            w->err = true;
        put_leases(w, m);
        break;
    case BS_MSG_LEASE_OK:
        wire_put_id(w, &m->key);
        wire_put_u8(w, m->copies);
        put_opt_loc(w, m);
        break;
    case BS_MSG_LEASE_MERGE:
        wire_put_id(w, &m->key);
        put_leases(w, m);
        break;
    case BS_MSG_LEASE_MERGE_OK:
        wire_put_id(w, &m->key);
        wire_put_u8(w, m->flags);
        put_leases(w, m);
        break;
    case BS_MSG_ROOT_READ: wire_put_id(w, &m->key); break;
    case BS_MSG_ROOT_READ_OK:
        wire_put_id(w, &m->key);
        put_bytes32(w, m->bytes, m->len);
        break;
    default: w->err = true; break;
    }
}

static bool known_type(uint16_t t)
{
    return t >= BS_MSG_GET && t <= BS_MSG_ROOT_READ_OK;
}

size_t bs_msg_size(const struct bs_msg *m)
{
    if (!known_type(m->type))
        return 0;
    size_t n = 0, leases = 2 + (size_t)m->nleases * LEASE_LEN;
    size_t loc = 1 + (m->has_loc ? bs_location_size(&m->loc) : 0);
    switch (m->type) {
    case BS_MSG_GET: return 1 + 1 + 2 * ID_BYTES;
    case BS_MSG_GET_OK: return 1 + ID_BYTES + 4 + m->len + leases + loc;
    case BS_MSG_PUT: return 1 + 1 + 2 * ID_BYTES + 8 + 4 + m->len + leases;
    case BS_MSG_PUT_OK: return 1 + ID_BYTES + 1 + 8 + loc;
    case BS_MSG_FAILURE:
        n = strnlen(m->reason, sizeof(m->reason));
        if (n > BS_REASON_MAX)
            n = BS_REASON_MAX;
        return 4 + 1 + n + loc + 4 + m->len;
    case BS_MSG_STORE: return 1 + 1 + ID_BYTES + 4 + m->len + leases;
    case BS_MSG_STORE_OK: return 1 + ID_BYTES;
    case BS_MSG_LOCATE: return 2 * ID_BYTES;
    case BS_MSG_LOCATION: return ID_BYTES + bs_location_size(&m->loc);
    case BS_MSG_LEASE: return 2 * ID_BYTES + leases;
    case BS_MSG_LEASE_OK: return ID_BYTES + 1 + loc;
    case BS_MSG_LEASE_MERGE: return ID_BYTES + leases;
    case BS_MSG_LEASE_MERGE_OK: return ID_BYTES + 1 + leases;
    case BS_MSG_ROOT_READ: return ID_BYTES;
    case BS_MSG_ROOT_READ_OK: return ID_BYTES + 4 + m->len;
    }
    return 0;
}

int bs_msg_encode(const struct bs_msg *m, uint8_t *out, size_t cap, size_t *len)
{
    struct wire_writer w;

    if (!known_type(m->type))
        return -EINVAL;
    if (bs_msg_size(m) > FRAME_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (bs_msg_size(m) > cap)
        return -EMSGSIZE;
    wire_writer_init(&w, out, cap);
    encode(&w, m);
    if (!wire_writer_ok(&w))
        return -EINVAL;
    *len = w.len;
    return 0;
}

int bs_msg_decode(uint16_t type, const uint8_t *payload, size_t len, struct bs_msg *out)
{
    struct wire_reader r;
    struct bs_msg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    wire_reader_init(&r, payload, len);
    switch (type) {
    case BS_MSG_GET:
        m.rtype = get_rtype(&r);
        get_flags(&r, &m, BS_GET_F_PRIMARY);
        wire_get_id(&r, &m.target);
        wire_get_id(&r, &m.key);
        break;
    case BS_MSG_GET_OK:
        m.rtype = get_rtype(&r);
        wire_get_id(&r, &m.key);
        get_bytes32(&r, &m, false);
        get_leases(&r, &m, false);
        get_opt_loc(&r, &m);
        break;
    case BS_MSG_PUT:
        m.rtype = get_rtype(&r);
        get_flags(&r, &m, 0);
        wire_get_id(&r, &m.target);
        wire_get_id(&r, &m.key);
        m.version = wire_get_u64(&r);
        get_bytes32(&r, &m, false);
        get_leases(&r, &m, false);
        break;
    case BS_MSG_PUT_OK:
        m.rtype = get_rtype(&r);
        wire_get_id(&r, &m.key);
        m.copies = wire_get_u8(&r);
        m.version = wire_get_u64(&r);
        get_opt_loc(&r, &m);
        break;
    case BS_MSG_FAILURE: {
        m.code = (int32_t)wire_get_u32(&r);
        if (m.code >= 0)
            wire_reader_fail(&r);
        uint8_t rl = wire_get_u8(&r);
        if (rl > BS_REASON_MAX)
            wire_reader_fail(&r);
        const uint8_t *p = wire_get_view(&r, rl);
        if (p && rl <= BS_REASON_MAX) {
            for (size_t i = 0; i < rl; i++)
                if (!printable((char)p[i]))
                    wire_reader_fail(&r);
            memcpy(m.reason, p, rl);
        }
        m.reason[rl <= BS_REASON_MAX ? rl : 0] = 0;
        get_opt_loc(&r, &m);
        get_bytes32(&r, &m, true);
        break;
    }
    case BS_MSG_STORE:
        m.rtype = get_rtype(&r);
        get_flags(&r, &m, BS_STORE_F_REPAIR);
        wire_get_id(&r, &m.key);
        get_bytes32(&r, &m, false);
        get_leases(&r, &m, false);
        break;
    case BS_MSG_STORE_OK:
        m.rtype = get_rtype(&r);
        wire_get_id(&r, &m.key);
        break;
    case BS_MSG_LOCATE:
        wire_get_id(&r, &m.target);
        wire_get_id(&r, &m.key);
        break;
    case BS_MSG_LOCATION:
        wire_get_id(&r, &m.key);
        bs_location_get(&r, &m.loc);
        m.has_loc = true;
        break;
    case BS_MSG_LEASE:
        wire_get_id(&r, &m.target);
        wire_get_id(&r, &m.key);
        get_leases(&r, &m, true);
        break;
    case BS_MSG_LEASE_OK:
        wire_get_id(&r, &m.key);
        m.copies = wire_get_u8(&r);
        get_opt_loc(&r, &m);
        break;
    case BS_MSG_LEASE_MERGE:
        wire_get_id(&r, &m.key);
        get_leases(&r, &m, false);
        break;
    case BS_MSG_LEASE_MERGE_OK:
        wire_get_id(&r, &m.key);
        get_flags(&r, &m, BS_MERGE_F_HELD);
        get_leases(&r, &m, false);
        break;
    case BS_MSG_ROOT_READ: wire_get_id(&r, &m.key); break;
    case BS_MSG_ROOT_READ_OK:
        wire_get_id(&r, &m.key);
        get_bytes32(&r, &m, true);
        break;
    default: return BS_ERR_MALFORMED;
    }
    if (!wire_reader_done(&r))
        return BS_ERR_MALFORMED;
    *out = m;
    return 0;
}

void bs_msg_lease(const struct bs_msg *m, size_t i, struct lease *out)
{
    if (m->leases)
        *out = m->leases[i];
    else
        lease_decode(m->lease_raw + i * LEASE_LEN, out);
}
