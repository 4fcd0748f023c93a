/* hash.h — SHA-256 (OpenSSL). */
#ifndef COOPFS_COMMON_HASH_H
#define COOPFS_COMMON_HASH_H

#include <stddef.h>

#include "common/id.h"

/* out = SHA-256(data[0..len)). Never fails for in-memory input. */
void hash_sha256(struct id *out, const void *data, size_t len);

/* Incremental form, for data in several pieces. The context is opaque
 * storage sized for OpenSSL's SHA-256 state; init, any number of updates,
 * then final (which also releases it). */
struct hash_ctx {
    void *md; /* EVP_MD_CTX *, owned */
};
int hash_init(struct hash_ctx *h); /* 0 or -ENOMEM */
void hash_update(struct hash_ctx *h, const void *data, size_t len);
void hash_final(struct hash_ctx *h, struct id *out);

#endif
