/* test_hash.c — SHA-256 (common/hash.c) against the FIPS 180-2 vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *msg;
    const char *digest;
} vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", /* 448 bits */
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
};

/* One million 'a's (FIPS 180-2, appendix B.3). */
#define MILLION_A_DIGEST "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static void check_digest(const struct id *got, const char *want)
{
    char hex[ID_HEX_LEN + 1];
    id_to_hex(got, hex);
    assert_string_equal(hex, want);
}

static void test_hash_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(vectors); i++) {
        struct id out;
        memset(&out, 0xa5, sizeof(out));
        hash_sha256(&out, vectors[i].msg, strlen(vectors[i].msg));
        check_digest(&out, vectors[i].digest);
    }

    /* a NULL pointer with length 0 is the empty message */
    struct id out;
    hash_sha256(&out, NULL, 0);
    check_digest(&out, vectors[0].digest);
}

static void test_hash_million_a(void **state)
{
    enum { N = 1000000 };
    char *a = malloc(N);
    struct hash_ctx h;
    struct id out;
    (void)state;

    assert_non_null(a);
    memset(a, 'a', N);
    hash_sha256(&out, a, N);
    check_digest(&out, MILLION_A_DIGEST);

    /* in uneven pieces that straddle the 64-byte block size */
    assert_int_equal(hash_init(&h), 0);
    for (size_t off = 0, step = 1; off < N; step = step * 3 % 1021 + 1) {
        size_t n = step < N - off ? step : N - off;
        hash_update(&h, a + off, n);
        off += n;
    }
    hash_final(&h, &out);
    check_digest(&out, MILLION_A_DIGEST);
    free(a);
}

/* Feeding a message in two pieces split at every position, or in pieces
 * of every fixed size, gives the one-shot digest. */
static void test_hash_incremental(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(vectors); i++) {
        const char *m = vectors[i].msg;
        size_t len = strlen(m);
        struct id one_shot, out;
        struct hash_ctx h;

        hash_sha256(&one_shot, m, len);

        for (size_t split = 0; split <= len; split++) {
            assert_int_equal(hash_init(&h), 0);
            hash_update(&h, m, split);
            hash_update(&h, m + split, len - split);
            hash_final(&h, &out);
            assert_true(id_eq(&out, &one_shot));
        }

        for (size_t piece = 1; piece <= len; piece++) {
            assert_int_equal(hash_init(&h), 0);
            for (size_t off = 0; off < len; off += piece) {
                hash_update(&h, m + off, piece < len - off ? piece : len - off);
                hash_update(&h, m, 0); /* empty updates change nothing */
            }
            hash_final(&h, &out);
            assert_true(id_eq(&out, &one_shot));
        }

        /* no update at all */
        if (len == 0) {
            assert_int_equal(hash_init(&h), 0);
            hash_final(&h, &out);
            assert_true(id_eq(&out, &one_shot));
        }
    }
}

static void test_hash_final_releases(void **state)
{
    struct hash_ctx h;
    struct id out;
    (void)state;

    assert_int_equal(hash_init(&h), 0);
    assert_non_null(h.md);
    hash_update(&h, "abc", 3);
    hash_final(&h, &out);
    assert_null(h.md);
    check_digest(&out, vectors[1].digest);

    /* two contexts at once do not interfere */
    struct hash_ctx h1, h2;
    struct id o1, o2;
    assert_int_equal(hash_init(&h1), 0);
    assert_int_equal(hash_init(&h2), 0);
    hash_update(&h1, "a", 1);
    hash_update(&h2, "abcdbcdecdefdefgefghfghighijhijk", 32);
    hash_update(&h1, "bc", 2);
    hash_update(&h2, "ijkljklmklmnlmnomnopnopq", 24);
    hash_final(&h1, &o1);
    hash_final(&h2, &o2);
    check_digest(&o1, vectors[1].digest);
    check_digest(&o2, vectors[2].digest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_hash_million_a),
        cmocka_unit_test(test_hash_incremental),
        cmocka_unit_test(test_hash_final_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
