/* frame.c — frame headers. */
#include "common/frame.h"

#include "common/wire.h"

int frame_header_decode(const void *buf, size_t len, struct frame_header *out)
{
    struct wire_reader r;
    struct frame_header h;

    if (len < FRAME_HEADER_SIZE)
        return FRAME_ERR_SHORT;
    wire_reader_init(&r, buf, len);
    if (wire_get_u32(&r) != FRAME_MAGIC)
        return FRAME_ERR_MAGIC;
    h.version = wire_get_u8(&r);
    h.flags = wire_get_u8(&r);
    h.type = wire_get_u16(&r);
    h.request_id = wire_get_u64(&r);
    h.length = wire_get_u32(&r);
    if (h.version != FRAME_VERSION)
        return FRAME_ERR_VERSION;
    if (h.length > FRAME_MAX_PAYLOAD)
        return FRAME_ERR_TOO_BIG;
    *out = h;
    return 0;
}

void frame_header_encode(const struct frame_header *h, void *buf)
{
    struct wire_writer w;
    wire_writer_init(&w, buf, FRAME_HEADER_SIZE);
    wire_put_u32(&w, FRAME_MAGIC);
    wire_put_u8(&w, h->version);
    wire_put_u8(&w, h->flags);
    wire_put_u16(&w, h->type);
    wire_put_u64(&w, h->request_id);
    wire_put_u32(&w, h->length);
}

const char *frame_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case FRAME_ERR_SHORT: return "short frame header";
    case FRAME_ERR_MAGIC: return "wrong magic (not a coopfs peer)";
    case FRAME_ERR_VERSION: return "unsupported protocol version";
    case FRAME_ERR_TOO_BIG: return "frame length above the maximum";
    default: return "unknown frame error";
    }
}
