/* hello.c — the HELLO payload codec of peers.h, apart from the connection
 * cache so that it builds without libevent (tests/fuzz). */
#include "net/peers.h"

#include <errno.h>

#include "common/wire.h"

size_t net_hello_encode(const struct addr *self, uint8_t *buf, size_t cap)
{
    struct wire_writer w;
    wire_writer_init(&w, buf, cap);
    wire_put_addr(&w, self);
    return wire_writer_ok(&w) ? w.len : 0;
}

int net_hello_decode(const uint8_t *p, size_t len, struct addr *out)
{
    struct wire_reader r;
    struct addr a;

    wire_reader_init(&r, p, len);
    wire_get_addr(&r, &a);
    if (!wire_reader_done(&r) || a.port == 0 || addr_is_unspecified(&a))
        return -EBADMSG;
    *out = a;
    return 0;
}
