/* test_sig.c — Ed25519 signatures and key files (common/sig.c): the RFC 8032
 * vectors, rejection of every altered signature, hex, and the key files'
 * format, durability rules and permissions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sig.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void from_hex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* RFC 8032, section 7.1, tests 1 to 3. */
static const struct {
    const char *seed, *pub, *msg, *sig;
} rfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
};

static void test_rfc8032_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(rfc8032); i++) {
        uint8_t seed[SIG_SEED_LEN], pub[SIG_PUB_LEN], msg[8], want[SIG_LEN], sig[SIG_LEN];
        size_t mlen = strlen(rfc8032[i].msg) / 2;
        struct sig_key k;

        from_hex(rfc8032[i].seed, seed, sizeof(seed));
        from_hex(rfc8032[i].pub, pub, sizeof(pub));
        from_hex(rfc8032[i].msg, msg, mlen);
        from_hex(rfc8032[i].sig, want, sizeof(want));

        assert_int_equal(sig_key_from_seed(seed, &k), 0);
        assert_memory_equal(k.seed, seed, SIG_SEED_LEN);
        assert_memory_equal(k.pub.b, pub, SIG_PUB_LEN);
        /* the empty message also as a NULL pointer */
        assert_int_equal(sig_sign(&k, mlen ? msg : NULL, mlen, sig), 0);
        assert_memory_equal(sig, want, SIG_LEN);
        assert_true(sig_verify(&k.pub, msg, mlen, sig));
    }
}

/* sig_key_from_seed may be handed its own output's seed. */
static void test_from_seed_in_place(void **state)
{
    struct sig_key k;
    uint8_t pub[SIG_PUB_LEN];
    (void)state;

    from_hex(rfc8032[0].seed, k.seed, SIG_SEED_LEN);
    from_hex(rfc8032[0].pub, pub, SIG_PUB_LEN);
    memset(k.pub.b, 0, SIG_PUB_LEN);
    assert_int_equal(sig_key_from_seed(k.seed, &k), 0);
    assert_memory_equal(k.pub.b, pub, SIG_PUB_LEN);
}

/* Every single-bit change of signature, message or public key fails. */
static void test_verify_rejects_changes(void **state)
{
    static const char text[] = "coopfs root v1 and some payload";
    uint8_t msg[sizeof(text)], sig[SIG_LEN];
    struct sig_key k;
    struct sig_pub pub;
    (void)state;

    memcpy(msg, text, sizeof(msg));
    assert_int_equal(sig_keygen(&k), 0);
    assert_int_equal(sig_sign(&k, msg, sizeof(msg), sig), 0);
    assert_true(sig_verify(&k.pub, msg, sizeof(msg), sig));

    for (size_t i = 0; i < SIG_LEN * 8; i++) {
        sig[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_false(sig_verify(&k.pub, msg, sizeof(msg), sig));
        sig[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t i = 0; i < sizeof(msg) * 8; i++) {
        msg[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_false(sig_verify(&k.pub, msg, sizeof(msg), sig));
        msg[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t i = 0; i < SIG_PUB_LEN * 8; i++) {
        pub = k.pub;
        pub.b[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_false(sig_verify(&pub, msg, sizeof(msg), sig));
    }
    /* shorter and longer messages */
    assert_false(sig_verify(&k.pub, msg, sizeof(msg) - 1, sig));
    assert_true(sig_verify(&k.pub, msg, sizeof(msg), sig));
}

/* S + L is the same signature to a lax verifier; it must be refused
 * (RFC 8032 5.1.7: S must be below L), so that nobody can make a second
 * valid encoding of a signed record. */
static void test_verify_rejects_malleable_s(void **state)
{
    /* L = 2^252 + 27742317777372353535851937790883648493, little-endian */
    static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                  0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
    uint8_t seed[SIG_SEED_LEN], sig[SIG_LEN];
    struct sig_key k;
    unsigned carry = 0;
    (void)state;

    from_hex(rfc8032[0].seed, seed, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, &k), 0);
    from_hex(rfc8032[0].sig, sig, sizeof(sig));
    assert_true(sig_verify(&k.pub, NULL, 0, sig));
    for (size_t i = 0; i < 32; i++) {
        unsigned v = sig[32 + i] + L[i] + carry;
        sig[32 + i] = (uint8_t)v;
        carry = v >> 8;
    }
    assert_int_equal(carry, 0);
    assert_false(sig_verify(&k.pub, NULL, 0, sig));
}

static void test_verify_odd_public_keys(void **state)
{
    uint8_t sig[SIG_LEN];
    struct sig_pub pub;
    (void)state;

    from_hex(rfc8032[0].sig, sig, sizeof(sig));
    memset(pub.b, 0, sizeof(pub.b)); /* a small-order point */
    assert_false(sig_verify(&pub, NULL, 0, sig));
    memset(pub.b, 0xff, sizeof(pub.b)); /* not a point at all */
    assert_false(sig_verify(&pub, NULL, 0, sig));
}

/* Under each small-order key, R = the identity and S = 0 is a signature that
 * OpenSSL's cofactorless check accepts for one message in 1 to 8 (checked
 * by hand: 400 of 400 down to 41 of 400). sig_verify refuses them all. */
static void test_verify_refuses_small_order_keys(void **state)
{
    static const char *keys[] = {
        "0100000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000080",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    };
    uint8_t sig[SIG_LEN] = {0x01}, msg[64];
    struct sig_pub pub;
    (void)state;

    for (size_t k = 0; k < N_ELEMS(keys); k++) {
        from_hex(keys[k], pub.b, sizeof(pub.b));
        assert_true(sig_pub_small_order(&pub));
        for (unsigned i = 0; i < 64; i++) {
            for (unsigned j = 0; j < sizeof(msg); j++)
                msg[j] = (uint8_t)(i * 7 + j * i + 3);
            assert_false(sig_verify(&pub, msg, sizeof(msg), sig));
        }
    }
    /* A real key is not one of them. */
    from_hex(rfc8032[0].pub, pub.b, sizeof(pub.b));
    assert_false(sig_pub_small_order(&pub));
}

static void test_keygen_fresh(void **state)
{
    struct sig_key a, b, c;
    uint8_t sig[SIG_LEN];
    (void)state;

    assert_int_equal(sig_keygen(&a), 0);
    assert_int_equal(sig_keygen(&b), 0);
    assert_memory_not_equal(a.seed, b.seed, SIG_SEED_LEN);
    assert_memory_not_equal(a.pub.b, b.pub.b, SIG_PUB_LEN);
    assert_int_equal(sig_key_from_seed(a.seed, &c), 0);
    assert_memory_equal(c.pub.b, a.pub.b, SIG_PUB_LEN);
    assert_int_equal(sig_sign(&a, "x", 1, sig), 0);
    assert_true(sig_verify(&a.pub, "x", 1, sig));
    assert_false(sig_verify(&b.pub, "x", 1, sig));
}

/* A key pair whose halves do not belong together signs nothing. */
static void test_sign_refuses_mismatched_pair(void **state)
{
    struct sig_key a, b;
    uint8_t sig[SIG_LEN], before[SIG_LEN];
    (void)state;

    assert_int_equal(sig_keygen(&a), 0);
    assert_int_equal(sig_keygen(&b), 0);
    a.pub = b.pub;
    memset(sig, 0x5a, sizeof(sig));
    memcpy(before, sig, sizeof(sig));
    assert_int_equal(sig_sign(&a, "x", 1, sig), -EINVAL);
    assert_memory_equal(sig, before, SIG_LEN);
}

static void test_hex(void **state)
{
    char hex[2 * SIG_PUB_LEN + 1], upper[2 * SIG_PUB_LEN + 1];
    struct sig_pub p, q;
    (void)state;

    from_hex(rfc8032[0].pub, p.b, SIG_PUB_LEN);
    sig_pub_to_hex(&p, hex);
    assert_string_equal(hex, rfc8032[0].pub);
    assert_int_equal(sig_pub_from_hex(hex, &q), 0);
    assert_memory_equal(p.b, q.b, SIG_PUB_LEN);

    for (size_t i = 0; i <= 2 * SIG_PUB_LEN; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 'A' : hex[i]);
    memset(&q, 0, sizeof(q));
    assert_int_equal(sig_pub_from_hex(upper, &q), 0);
    assert_memory_equal(p.b, q.b, SIG_PUB_LEN);

    static const char *bad[] = {
        "",
        "d75a",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511",   /* 63 */
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a0", /* 65 */
        "g75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511 ",
        " d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511",
        "0xd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f70751",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        memset(&q, 0x77, sizeof(q));
        assert_int_equal(sig_pub_from_hex(bad[i], &q), -EINVAL);
        for (size_t j = 0; j < SIG_PUB_LEN; j++)
            assert_int_equal(q.b[j], 0x77); /* untouched on failure */
    }
}

/* ---- key files ---- */

struct tmpdir {
    char path[64];
};

static int setup_dir(void **state)
{
    struct tmpdir *d = malloc(sizeof(*d));
    if (!d)
        return -1;
    strcpy(d->path, "/tmp/coopfs-test-sig-XXXXXX");
    if (!mkdtemp(d->path)) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static int teardown_dir(void **state)
{
    struct tmpdir *d = *state;
    DIR *dir = opendir(d->path);
    struct dirent *e;
    char p[512];

    while (dir && (e = readdir(dir))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
        unlink(p);
    }
    if (dir)
        closedir(dir);
    rmdir(d->path);
    free(d);
    return 0;
}

static void path_in(const struct tmpdir *d, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", d->path, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0); /* whatever the umask */
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap);
    assert_true(n >= 0);
    close(fd);
    return (size_t)n;
}

static size_t count_entries(const char *dirpath)
{
    DIR *dir = opendir(dirpath);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(dir);
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dir);
    return n;
}

static void test_key_files_round_trip(void **state)
{
    struct tmpdir *d = *state;
    char kp[256], pp[256], text[256];
    uint8_t seed[SIG_SEED_LEN];
    struct sig_key k, k2;
    struct sig_pub p2;
    struct stat st;
    size_t n;

    from_hex(rfc8032[0].seed, seed, sizeof(seed));
    assert_int_equal(sig_key_from_seed(seed, &k), 0);
    path_in(d, "alice.key", kp, sizeof(kp));
    path_in(d, "alice.pub", pp, sizeof(pp));

    assert_int_equal(sig_key_save(kp, &k), 0);
    assert_int_equal(sig_pub_save(pp, &k.pub), 0);

    /* the exact bytes of sig.h */
    n = read_file(kp, text, sizeof(text) - 1);
    text[n] = '\0';
    assert_string_equal(text, "coopfs-ed25519-private v1\n"
                              "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n");
    n = read_file(pp, text, sizeof(text) - 1);
    text[n] = '\0';
    assert_string_equal(text, "coopfs-ed25519-public v1\n"
                              "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n");

    assert_int_equal(stat(kp, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(pp, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(count_entries(d->path), 2); /* no temporary file left */

    assert_int_equal(sig_key_load(kp, &k2), 0);
    assert_memory_equal(&k2, &k, sizeof(k));
    assert_int_equal(sig_pub_load(pp, &p2), 0);
    assert_memory_equal(&p2, &k.pub, sizeof(p2));
}

static void test_key_files_never_overwrite(void **state)
{
    struct tmpdir *d = *state;
    char kp[256], pp[256];
    struct sig_key a, b, got;
    struct sig_pub gotp;

    assert_int_equal(sig_keygen(&a), 0);
    assert_int_equal(sig_keygen(&b), 0);
    path_in(d, "k.key", kp, sizeof(kp));
    path_in(d, "k.pub", pp, sizeof(pp));
    assert_int_equal(sig_key_save(kp, &a), 0);
    assert_int_equal(sig_key_save(kp, &b), -EEXIST);
    assert_int_equal(sig_pub_save(pp, &a.pub), 0);
    assert_int_equal(sig_pub_save(pp, &b.pub), -EEXIST);
    assert_int_equal(sig_key_load(kp, &got), 0);
    assert_memory_equal(&got, &a, sizeof(got));
    assert_int_equal(sig_pub_load(pp, &gotp), 0);
    assert_memory_equal(&gotp, &a.pub, sizeof(gotp));
    assert_int_equal(count_entries(d->path), 2);

    /* a dangling symlink is a name taken too */
    path_in(d, "link.key", kp, sizeof(kp));
    assert_int_equal(symlink("/nonexistent/coopfs", kp), 0);
    assert_int_equal(sig_key_save(kp, &a), -EEXIST);
    unlink(kp);

    /* no directory */
    path_in(d, "missing/k.key", kp, sizeof(kp));
    assert_int_equal(sig_key_save(kp, &a), -ENOENT);
}

static void test_key_file_permissions(void **state)
{
    static const mode_t refused[] = {0640, 0604, 0644, 0660, 0610, 0601, 0666, 0700 | 0040};
    struct tmpdir *d = *state;
    char kp[256], pp[256];
    struct sig_key k, got;
    struct sig_pub gotp;

    assert_int_equal(sig_keygen(&k), 0);
    path_in(d, "perm.key", kp, sizeof(kp));
    path_in(d, "perm.pub", pp, sizeof(pp));
    assert_int_equal(sig_key_save(kp, &k), 0);
    assert_int_equal(sig_pub_save(pp, &k.pub), 0);

    for (size_t i = 0; i < N_ELEMS(refused); i++) {
        assert_int_equal(chmod(kp, refused[i]), 0);
        memset(&got, 0x33, sizeof(got));
        assert_int_equal(sig_key_load(kp, &got), -EPERM);
        for (size_t j = 0; j < sizeof(got.seed); j++)
            assert_int_equal(got.seed[j], 0x33);
    }
    assert_int_equal(chmod(kp, 0400), 0);
    assert_int_equal(sig_key_load(kp, &got), 0);
    assert_memory_equal(&got, &k, sizeof(got));

    /* a public key may be world-readable */
    assert_int_equal(chmod(pp, 0644), 0);
    assert_int_equal(sig_pub_load(pp, &gotp), 0);
}

static void test_key_file_errors(void **state)
{
    static const struct {
        const char *text;
        int priv_rc; /* as a private key file */
    } cases[] = {
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
         0},
        {"coopfs-ed25519-private v1\n"
         "9D61B19DEFFD5A60BA844AF492EC2CC44449C5697B326919703BAC031CAE7F60\n",
         0},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         0},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\r\n",
         0},
        {"", -EINVAL},
        {"coopfs-ed25519-private v1\n", -EINVAL},
        {"coopfs-ed25519-private v2\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
         -EINVAL},
        {"coopfs-ed25519-public v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
         -EINVAL},
        {"coopfs-ed25519-private v1\r\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
         -EINVAL},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6\n",
         -EINVAL},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f600\n",
         -EINVAL},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7fzz\n",
         -EINVAL},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n\n",
         -EINVAL},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60 \n",
         -EINVAL},
        {" coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
         -EINVAL},
        {"coopfs-ed25519-private v1\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n"
         "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n",
         -EINVAL},
    };
    struct tmpdir *d = *state;
    char path[256];
    struct sig_key got;
    struct sig_pub gotp;

    path_in(d, "case.key", path, sizeof(path));
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        unlink(path);
        write_file(path, cases[i].text, strlen(cases[i].text), 0600);
        assert_int_equal(sig_key_load(path, &got), cases[i].priv_rc);
        if (cases[i].priv_rc == 0) {
            char hex[2 * SIG_PUB_LEN + 1];
            sig_pub_to_hex(&got.pub, hex);
            assert_string_equal(hex, rfc8032[0].pub);
        }
        /* nor, apart from the one with its magic, a public key file */
        if (strncmp(cases[i].text, "coopfs-ed25519-public v1\n", 25) == 0)
            assert_int_equal(sig_pub_load(path, &gotp), 0);
        else
            assert_int_equal(sig_pub_load(path, &gotp), -EINVAL);
    }
    unlink(path);

    /* a public key file's magic */
    static const char pub_text[] =
        "coopfs-ed25519-public v1\n"
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n";
    write_file(path, pub_text, strlen(pub_text), 0644);
    assert_int_equal(sig_pub_load(path, &gotp), 0);
    assert_int_equal(sig_key_load(path, &got), -EPERM); /* mode first */
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(sig_key_load(path, &got), -EINVAL);
    unlink(path);

    /* a large file, a directory, a missing file */
    char big[4096];
    memset(big, 'a', sizeof(big));
    write_file(path, big, sizeof(big), 0600);
    assert_int_equal(sig_key_load(path, &got), -EINVAL);
    assert_int_equal(sig_pub_load(path, &gotp), -EINVAL);
    unlink(path);
    assert_int_equal(sig_key_load(d->path, &got), -EINVAL);
    assert_int_equal(sig_key_load(path, &got), -ENOENT);
    assert_int_equal(sig_pub_load(path, &gotp), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vectors),
        cmocka_unit_test(test_from_seed_in_place),
        cmocka_unit_test(test_verify_rejects_changes),
        cmocka_unit_test(test_verify_rejects_malleable_s),
        cmocka_unit_test(test_verify_odd_public_keys),
        cmocka_unit_test(test_verify_refuses_small_order_keys),
        cmocka_unit_test(test_keygen_fresh),
        cmocka_unit_test(test_sign_refuses_mismatched_pair),
        cmocka_unit_test(test_hex),
        cmocka_unit_test_setup_teardown(test_key_files_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_key_files_never_overwrite, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_key_file_permissions, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_key_file_errors, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
