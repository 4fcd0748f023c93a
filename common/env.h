/* env.h — everything protocol code may ask of the outside world.
 *
 * chord/ and blockstore/ never read a clock, a socket or a random source
 * themselves; they are handed a struct env. net/ implements it over
 * libevent and the system clock, sim/ over a virtual clock and simulated
 * network, and unit tests over a fake clock and a captured outbox.
 */
#ifndef COOPFS_COMMON_ENV_H
#define COOPFS_COMMON_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

struct env {
    /* Milliseconds on a monotonic clock. */
    uint64_t (*now_ms)(void *ctx);
    /* Sends one whole frame (common/frame.h) to the node at `to`. The
     * bytes are copied before the call returns. Delivery is best-effort:
     * the protocol above detects loss with its own timeouts. */
    void (*send)(void *ctx, const struct addr *to, const void *msg, size_t len);
    /* Fills buf with random bytes (seeded in the simulator). */
    void (*random)(void *ctx, void *buf, size_t len);
    /* Milliseconds since the Unix epoch (lease expiries and stamps, which
     * must mean the same on every node). chord/ never calls it; blockstore/
     * requires it. In the simulator it is a fixed epoch plus virtual time. */
    uint64_t (*wall_ms)(void *ctx);
    void *ctx;
};

static inline uint64_t env_now(const struct env *e)
{
    return e->now_ms(e->ctx);
}

static inline uint64_t env_wall(const struct env *e)
{
    return e->wall_ms(e->ctx);
}

static inline uint64_t env_random_u64(const struct env *e)
{
    uint64_t v;
    e->random(e->ctx, &v, sizeof(v));
    return v;
}

/* A uniformly distributed value in [0, n) (n > 0). */
static inline uint64_t env_random_below(const struct env *e, uint64_t n)
{
    /* Rejection sampling keeps the simulator's choices unbiased. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
    do
        v = env_random_u64(e);
    while (v >= limit);
    return v % n;
}

#endif
