/* sig.h — Ed25519 key pairs, signatures and key files (OpenSSL).
 *
 * A key pair is kept as its 32-byte private seed plus the 32-byte public
 * key derived from it. Signatures are 64 bytes (RFC 8032, pure Ed25519).
 *
 * Key files are text, one per half, so an operator can read and copy them:
 *   NAME.key  "coopfs-ed25519-private v1\n" + 64 hex digits (seed) + "\n",
 *             mode 0600, written durably (temp file, fsync, rename, fsync dir)
 *   NAME.pub  "coopfs-ed25519-public v1\n"  + 64 hex digits (public key) + "\n"
 * docs/formats.md describes them byte by byte.
 *
 * Errors: 0 or a negative errno.
 */
#ifndef COOPFS_COMMON_SIG_H
#define COOPFS_COMMON_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIG_PUB_LEN  32
#define SIG_SEED_LEN 32
#define SIG_LEN      64

struct sig_pub {
    uint8_t b[SIG_PUB_LEN];
};

struct sig_key {
    uint8_t seed[SIG_SEED_LEN]; /* the secret */
    struct sig_pub pub;
};

/* Makes a fresh key pair from the system's random source.
 * Returns 0, or -EIO if OpenSSL fails. */
int sig_keygen(struct sig_key *out);
/* Derives the key pair of a given seed (tests and the simulator use fixed
 * seeds). Returns 0 or -EIO. */
int sig_key_from_seed(const uint8_t seed[SIG_SEED_LEN], struct sig_key *out);

/* sig = Ed25519 signature of msg under k. Returns 0, -EINVAL if k->pub is not
 * the public key of k->seed (nothing signed with it would verify), or -EIO. */
int sig_sign(const struct sig_key *k, const void *msg, size_t len, uint8_t sig[SIG_LEN]);
/* True if pub encodes a point of small order (dividing 8): no key pair
 * has it, and under it signatures verify that nobody made. */
bool sig_pub_small_order(const struct sig_pub *pub);
/* True only if sig is a valid signature of msg under pub. A small-order pub
 * never verifies (OpenSSL alone would accept some signatures under it). */
bool sig_verify(const struct sig_pub *pub, const void *msg, size_t len,
                const uint8_t sig[SIG_LEN]);

/* Key files (see above). save_* fail with -EEXIST rather than overwrite.
 * load_* return -ENOENT, -EACCES, ... from the file system, or -EINVAL for
 * a file that is not a coopfs key file; a private key file readable by
 * group or others is refused with -EPERM (as ssh does). */
int sig_key_save(const char *path, const struct sig_key *k);
int sig_key_load(const char *path, struct sig_key *out);
int sig_pub_save(const char *path, const struct sig_pub *p);
int sig_pub_load(const char *path, struct sig_pub *out);

/* 64 lower-case hex digits and a NUL; parse accepts either case. */
void sig_pub_to_hex(const struct sig_pub *p, char out[2 * SIG_PUB_LEN + 1]);
int sig_pub_from_hex(const char *s, struct sig_pub *out);

#endif
