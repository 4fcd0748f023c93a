/* hash.c — SHA-256 through OpenSSL. */
#include "common/hash.h"

#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

void hash_sha256(struct id *out, const void *data, size_t len)
{
    /* SHA256() is the one-shot API that OpenSSL 3 keeps undeprecated; it
     * avoids the per-call algorithm fetch of EVP_Digest. */
    SHA256(data, len, out->b);
}

int hash_init(struct hash_ctx *h)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return -ENOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return -ENOMEM;
    }
    h->md = md;
    return 0;
}

void hash_update(struct hash_ctx *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->md, data, len);
}

void hash_final(struct hash_ctx *h, struct id *out)
{
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->md, out->b, &n);
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
}
