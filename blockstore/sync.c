/* sync.c — maintenance: range digests, push/pull, handoff, expiry.
 *
 * First cut: the lifecycle and an input handler that refuses every sync
 * request, so that the rest of blockstore/ links. The rounds follow. */
#include <errno.h>
#include <stdlib.h>

#include "blockstore/internal.h"

struct bs_sync {
    struct bs *b;
};

int bs_sync_new(struct bs *b, struct bs_sync **out)
{
    struct bs_sync *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->b = b;
    *out = s;
    return 0;
}

void bs_sync_free(struct bs_sync *s)
{
    free(s);
}

void bs_sync_tick(struct bs_sync *s, uint64_t now)
{
    (void)s;
    (void)now;
}

uint64_t bs_sync_next_deadline(const struct bs_sync *s)
{
    (void)s;
    return UINT64_MAX;
}

void bs_sync_on_update(struct bs_sync *s, unsigned vnode)
{
    (void)s;
    (void)vnode;
}

int bs_sync_input(struct bs_sync *s, const struct addr *from, const struct frame_header *h,
                  const uint8_t *payload, size_t len)
{
    (void)s;
    (void)from;
    (void)h;
    (void)payload;
    (void)len;
    return BS_ERR_MALFORMED;
}
