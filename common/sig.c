/* sig.c — Ed25519 through OpenSSL, and the key files of sig.h.
 *
 * OpenSSL 3.0 signs and verifies Ed25519 only through the one-shot
 * EVP_DigestSign/EVP_DigestVerify on an EVP_MD_CTX, so each call costs one
 * EVP_PKEY and one EVP_MD_CTX. Nothing is cached between calls: there is
 * no global state, and a struct sig_key stays plain bytes that callers may
 * copy and wipe as they please.
 */
#include "common/sig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static const char priv_magic[] = "coopfs-ed25519-private v1\n";
static const char pub_magic[] = "coopfs-ed25519-public v1\n";

/* The longest key file we read: magic, 64 digits, "\r\n", and one byte
 * more so that anything longer is seen as such. */
#define KEY_FILE_MAX (sizeof(priv_magic) - 1 + 2 * SIG_SEED_LEN + 2 + 1)

/* ---- key pairs and signatures ---- */

/* The public key OpenSSL derives from pk. Returns 0 or -EIO. */
static int raw_public(EVP_PKEY *pk, uint8_t out[SIG_PUB_LEN])
{
    size_t n = SIG_PUB_LEN;
    if (EVP_PKEY_get_raw_public_key(pk, out, &n) != 1 || n != SIG_PUB_LEN)
        return -EIO;
    return 0;
}

int sig_key_from_seed(const uint8_t seed[SIG_SEED_LEN], struct sig_key *out)
{
    struct sig_pub pub;
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SIG_SEED_LEN);
    int rc;

    if (!pk) {
        ERR_clear_error();
        return -EIO;
    }
    rc = raw_public(pk, pub.b);
    EVP_PKEY_free(pk); /* wipes its copy of the seed */
    if (rc < 0)
        return rc;
    memmove(out->seed, seed, SIG_SEED_LEN); /* seed may be out->seed */
    out->pub = pub;
    return 0;
}

int sig_keygen(struct sig_key *out)
{
    uint8_t seed[SIG_SEED_LEN];
    int rc = -EIO;

    if (RAND_priv_bytes(seed, sizeof(seed)) == 1)
        rc = sig_key_from_seed(seed, out);
    OPENSSL_cleanse(seed, sizeof(seed));
    return rc;
}

int sig_sign(const struct sig_key *k, const void *msg, size_t len, uint8_t sig[SIG_LEN])
{
    static const uint8_t empty;
    uint8_t derived[SIG_PUB_LEN], out[SIG_LEN];
    size_t n = SIG_LEN;
    EVP_MD_CTX *md = NULL;
    EVP_PKEY *pk;
    int rc = -EIO;

    if (!msg)
        msg = &empty; /* len is 0: OpenSSL wants a pointer all the same */
    pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->seed, SIG_SEED_LEN);
    if (!pk)
        goto out;
    /* OpenSSL signs with the public key it derives from the seed. If the
     * caller's copy differs, whatever embeds k->pub next to this signature
     * (a root block, a lease) would never verify: refuse instead. */
    if (raw_public(pk, derived) < 0)
        goto out;
    if (memcmp(derived, k->pub.b, SIG_PUB_LEN) != 0) {
        rc = -EINVAL;
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, pk) != 1 ||
        EVP_DigestSign(md, out, &n, msg, len) != 1 || n != SIG_LEN)
        goto out;
    memcpy(sig, out, SIG_LEN);
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return rc;
}

/* The encodings of the points of small order (dividing 8), canonical and
 * not (y = p and y = p + 1), with either sign bit: libsodium's list. Under
 * such a key, signatures verify that nobody signed (OpenSSL's check is
 * cofactorless and does not refuse them): with S = 0 and R the identity,
 * for one message in 1 to 8. */
static const uint8_t small_order[][SIG_PUB_LEN] = {
    {0x01}, /* the identity, y = 1 */
    {0x01, [31] = 0x80},
    {0}, /* y = 0, order 4 */
    {[31] = 0x80},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
     0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
     0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
     0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
     0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x85},
};

bool sig_pub_small_order(const struct sig_pub *pub)
{
    for (size_t i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++)
        if (!memcmp(pub->b, small_order[i], SIG_PUB_LEN))
            return true;
    return false;
}

bool sig_verify(const struct sig_pub *pub, const void *msg, size_t len, const uint8_t sig[SIG_LEN])
{
    static const uint8_t empty;
    EVP_MD_CTX *md = NULL;
    EVP_PKEY *pk;
    bool ok = false;

    if (!msg)
        msg = &empty;
    if (sig_pub_small_order(pub))
        return false;
    /* OpenSSL checks that the point decodes and that S < L (no malleable
     * signatures) during the verification itself. */
    pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub->b, SIG_PUB_LEN);
    if (pk) {
        md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(md, sig, SIG_LEN, msg, len) == 1;
    }
    if (!ok)
        ERR_clear_error(); /* a bad signature is an answer, not an error to keep */
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    return ok;
}

/* ---- hex ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parses exactly 2 * n hex digits at s into out. Returns 0 or -EINVAL;
 * out may be partly written on failure (callers parse into scratch). */
static int hex_parse(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]), lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void hex_format(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void sig_pub_to_hex(const struct sig_pub *p, char out[2 * SIG_PUB_LEN + 1])
{
    hex_format(p->b, SIG_PUB_LEN, out);
}

int sig_pub_from_hex(const char *s, struct sig_pub *out)
{
    struct sig_pub p;
    if (strnlen(s, 2 * SIG_PUB_LEN + 1) != 2 * SIG_PUB_LEN || hex_parse(s, p.b, SIG_PUB_LEN) < 0)
        return -EINVAL;
    *out = p;
    return 0;
}

/* ---- key files ---- */

/* Parses a key file's text: magic, 64 hex digits, then "\n", "\r\n" or
 * nothing. Returns 0 or -EINVAL. */
static int key_text_parse(const char *magic, const char *text, size_t len, uint8_t out[32])
{
    size_t m = strlen(magic), rest;

    if (len < m + 64 || memcmp(text, magic, m) != 0)
        return -EINVAL;
    rest = len - m - 64;
    if (!(rest == 0 || (rest == 1 && text[len - 1] == '\n') ||
          (rest == 2 && text[len - 2] == '\r' && text[len - 1] == '\n')))
        return -EINVAL;
    return hex_parse(text + m, out, 32);
}

/* Reads the whole of a small regular file into buf (cap bytes; a longer
 * file is -EINVAL). A private key file must give no permission to group
 * or others (-EPERM). Returns 0 and *len, or a negative errno. */
static int key_file_read(const char *path, bool private, char *buf, size_t cap, size_t *len)
{
    struct stat st;
    size_t n = 0;
    int rc = 0;
    /* O_NONBLOCK: opening a FIFO someone put there must not hang. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    if (private && (st.st_mode & 077)) {
        rc = -EPERM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            rc = -EINVAL; /* longer than any key file */
            goto out;
        }
    }
    *len = n;
out:
    close(fd);
    return rc;
}

int sig_key_load(const char *path, struct sig_key *out)
{
    char text[KEY_FILE_MAX];
    uint8_t seed[SIG_SEED_LEN];
    size_t len = 0;
    int rc = key_file_read(path, true, text, sizeof(text), &len);

    if (rc == 0)
        rc = key_text_parse(priv_magic, text, len, seed);
    if (rc == 0)
        rc = sig_key_from_seed(seed, out);
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_cleanse(seed, sizeof(seed));
    return rc;
}

int sig_pub_load(const char *path, struct sig_pub *out)
{
    char text[KEY_FILE_MAX];
    struct sig_pub p;
    size_t len = 0;
    int rc = key_file_read(path, false, text, sizeof(text), &len);

    if (rc == 0)
        rc = key_text_parse(pub_magic, text, len, p.b);
    if (rc == 0)
        *out = p;
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Moves tmp to path unless path exists (-EEXIST). renameat2 does it in one
 * step; file systems without RENAME_NOREPLACE get link + unlink, which is
 * just as atomic about the target. */
static int place_new(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -errno;
    if (link(tmp, path) < 0)
        return -errno;
    unlink(tmp);
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, rc = 0;

    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir))
            return -ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Writes text to a new file at path with mode, durably: a temporary file
 * in the same directory, fsync, rename without replacing, fsync of the
 * directory. Returns 0, -EEXIST, or another negative errno; an error after
 * the rename (the directory's fsync) leaves the file in place. */
static int key_file_write(const char *path, const char *text, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    struct stat st;
    int fd, rc, n = snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);

    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    /* Fail early in the common case; place_new() is what makes it safe. */
    if (lstat(path, &st) == 0)
        return -EEXIST;
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 from the start */
    if (fd < 0)
        return -errno;
    rc = mode == 0600 ? 0 : fchmod(fd, mode) < 0 ? -errno : 0;
    if (rc == 0)
        rc = write_all(fd, text, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0)
        rc = place_new(tmp, path);
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    return fsync_dir_of(path);
}

/* The text of a key file: magic, hex of b, newline. */
static size_t key_text_format(const char *magic, const uint8_t b[32], char *out)
{
    size_t m = strlen(magic);
    memcpy(out, magic, m);
    hex_format(b, 32, out + m);
    out[m + 64] = '\n';
    return m + 65;
}

int sig_key_save(const char *path, const struct sig_key *k)
{
    char text[KEY_FILE_MAX];
    size_t len = key_text_format(priv_magic, k->seed, text);
    int rc = key_file_write(path, text, len, 0600);
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

int sig_pub_save(const char *path, const struct sig_pub *p)
{
    char text[KEY_FILE_MAX];
    size_t len = key_text_format(pub_magic, p->b, text);
    return key_file_write(path, text, len, 0644);
}
