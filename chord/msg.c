/* msg.c — chord frames to bytes and back. */
#include "chord/msg.h"

#include <string.h>

#include "common/wire.h"

#define PEER_MAX_SIZE (ID_BYTES + 19)

static void put_peer(struct wire_writer *w, const struct chord_peer *p)
{
    wire_put_id(w, &p->id);
    wire_put_addr(w, &p->addr);
}

static void get_peer(struct wire_reader *r, struct chord_peer *p)
{
    wire_get_id(r, &p->id);
    wire_get_addr(r, &p->addr);
}

static void put_peers(struct wire_writer *w, const struct chord_msg *m)
{
    if (m->npeers > CHORD_SUCC_MAX) {
        w->err = true;
        return;
    }
    wire_put_u8(w, m->npeers);
    for (unsigned i = 0; i < m->npeers; i++)
        put_peer(w, &m->peers[i]);
}

static void get_peers(struct wire_reader *r, struct chord_msg *m)
{
    uint8_t n = wire_get_u8(r);
    if (n > CHORD_SUCC_MAX) {
        wire_reader_fail(r);
        return;
    }
    m->npeers = n;
    for (unsigned i = 0; i < n && wire_reader_ok(r); i++)
        get_peer(r, &m->peers[i]);
}

static void put_opt_peer(struct wire_writer *w, const struct chord_msg *m)
{
    wire_put_u8(w, m->has_peer ? 1 : 0);
    if (m->has_peer)
        put_peer(w, &m->peer);
}

static void get_opt_peer(struct wire_reader *r, struct chord_msg *m)
{
    uint8_t has = wire_get_u8(r);
    if (has > 1) {
        wire_reader_fail(r);
        return;
    }
    m->has_peer = has;
    if (has)
        get_peer(r, &m->peer);
}

const char *chord_msg_name(uint16_t type)
{
    switch (type) {
    case CHORD_MSG_PEER_FIND: return "PEER_FIND";
    case CHORD_MSG_PEER_FOUND: return "PEER_FOUND";
    case CHORD_MSG_PREDECESSOR_GET: return "PREDECESSOR_GET";
    case CHORD_MSG_PREDECESSOR_REPLY: return "PREDECESSOR_REPLY";
    case CHORD_MSG_PREDECESSOR_SET: return "PREDECESSOR_SET";
    case CHORD_MSG_PING: return "PING";
    case CHORD_MSG_PONG: return "PONG";
    case CHORD_MSG_LEAVE: return "LEAVE";
    case CHORD_MSG_LEAVE_ACK: return "LEAVE_ACK";
    case CHORD_MSG_NEXT_HOP: return "NEXT_HOP";
    case CHORD_MSG_NEXT_HOP_REPLY: return "NEXT_HOP_REPLY";
    case CHORD_MSG_ROUTE: return "ROUTE";
    case CHORD_MSG_NO_SUCH_VNODE: return "NO_SUCH_VNODE";
    default: return "?";
    }
}

size_t chord_msg_size_bound(const struct chord_msg *m)
{
    return FRAME_HEADER_SIZE + 1 + ID_BYTES + PEER_MAX_SIZE + ID_BYTES + 1 + PEER_MAX_SIZE + 2 + 2 +
           1 + 1 + (size_t)m->npeers * PEER_MAX_SIZE + 4 + m->payload_len;
}

size_t chord_msg_encode(const struct chord_msg *m, void *buf, size_t cap)
{
    struct wire_writer w;
    struct frame_header h = {
        .version = FRAME_VERSION,
        .flags = m->reply ? FRAME_F_REPLY : 0,
        .type = m->type,
        .request_id = m->request_id,
    };

    if (cap < FRAME_HEADER_SIZE)
        return 0;
    wire_writer_init(&w, (uint8_t *)buf + FRAME_HEADER_SIZE, cap - FRAME_HEADER_SIZE);
    wire_put_u8(&w, m->flags);
    wire_put_id(&w, &m->dst);
    put_peer(&w, &m->src);

    switch (m->type) {
    case CHORD_MSG_PEER_FIND:
    case CHORD_MSG_PEER_FOUND:
        wire_put_id(&w, &m->key);
        put_peer(&w, &m->peer);
        wire_put_u16(&w, m->hops);
        break;
    case CHORD_MSG_PREDECESSOR_REPLY:
    case CHORD_MSG_LEAVE:
        put_opt_peer(&w, m);
        put_peers(&w, m);
        break;
    case CHORD_MSG_NEXT_HOP: wire_put_id(&w, &m->key); break;
    case CHORD_MSG_NEXT_HOP_REPLY:
        wire_put_u8(&w, m->done ? 1 : 0);
        put_peers(&w, m);
        break;
    case CHORD_MSG_ROUTE:
        wire_put_id(&w, &m->key);
        put_peer(&w, &m->peer);
        wire_put_u16(&w, m->hops);
        wire_put_u16(&w, m->app_type);
        if (m->payload_len > CHORD_ROUTE_MAX) {
            w.err = true;
            break;
        }
        wire_put_u32(&w, m->payload_len);
        wire_put_bytes(&w, m->payload, m->payload_len);
        break;
    case CHORD_MSG_PREDECESSOR_GET:
    case CHORD_MSG_PREDECESSOR_SET:
    case CHORD_MSG_PING:
    case CHORD_MSG_PONG:
    case CHORD_MSG_LEAVE_ACK:
    case CHORD_MSG_NO_SUCH_VNODE: break;
    default: return 0;
    }
    if (!wire_writer_ok(&w) || w.len > FRAME_MAX_PAYLOAD)
        return 0;
    h.length = (uint32_t)w.len;
    frame_header_encode(&h, buf);
    return FRAME_HEADER_SIZE + w.len;
}

int chord_msg_decode(const void *buf, size_t len, struct chord_msg *m)
{
    struct frame_header h;
    struct wire_reader r;

    if (frame_header_decode(buf, len, &h) != 0 || len != FRAME_HEADER_SIZE + (size_t)h.length)
        return CHORD_ERR_MALFORMED;
    if (h.type < CHORD_MSG_PEER_FIND || h.type > CHORD_MSG_NO_SUCH_VNODE)
        return CHORD_ERR_TYPE;
    memset(m, 0, offsetof(struct chord_msg, peers));
    m->payload = NULL;
    m->payload_len = 0;
    m->type = h.type;
    m->reply = (h.flags & FRAME_F_REPLY) != 0;
    m->request_id = h.request_id;

    wire_reader_init(&r, (const uint8_t *)buf + FRAME_HEADER_SIZE, h.length);
    m->flags = wire_get_u8(&r);
    if (m->flags & ~CHORD_MF_ANY)
        return CHORD_ERR_MALFORMED;
    wire_get_id(&r, &m->dst);
    get_peer(&r, &m->src);

    switch (m->type) {
    case CHORD_MSG_PEER_FIND:
    case CHORD_MSG_PEER_FOUND:
        wire_get_id(&r, &m->key);
        get_peer(&r, &m->peer);
        m->has_peer = true;
        m->hops = wire_get_u16(&r);
        break;
    case CHORD_MSG_PREDECESSOR_REPLY:
    case CHORD_MSG_LEAVE:
        get_opt_peer(&r, m);
        get_peers(&r, m);
        break;
    case CHORD_MSG_NEXT_HOP: wire_get_id(&r, &m->key); break;
    case CHORD_MSG_NEXT_HOP_REPLY:
        m->done = wire_get_u8(&r);
        if (m->done > 1)
            return CHORD_ERR_MALFORMED;
        get_peers(&r, m);
        break;
    case CHORD_MSG_ROUTE: {
        wire_get_id(&r, &m->key);
        get_peer(&r, &m->peer);
        m->has_peer = true;
        m->hops = wire_get_u16(&r);
        m->app_type = wire_get_u16(&r);
        uint32_t n = wire_get_u32(&r);
        if (n > CHORD_ROUTE_MAX)
            return CHORD_ERR_MALFORMED;
        m->payload = wire_get_view(&r, n);
        m->payload_len = n;
        break;
    }
    default: break;
    }
    return wire_reader_done(&r) ? 0 : CHORD_ERR_MALFORMED;
}
