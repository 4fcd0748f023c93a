/* fuzz_fsobj.c — libFuzzer harness for the file system's object formats
 * (fs/obj.c): what a mount reads from the ring or its journal.
 *
 * The whole input is copied to a heap block of exactly its size (so ASan
 * sees any read past it) and handed to every decoder:
 *
 *   fs_dir_decode      a directory stream; the inline streams of the
 *                      directories it lists are decoded in turn
 *   fs_commit_decode   a commit payload
 *   fs_rootref_decode  the root block's payload
 *
 * Beyond "does not crash", each decoded value must come back the same:
 *   - a failed decode returns -EBADMSG (or -ENOMEM) and leaves a directory
 *     empty, a commit untouched;
 *   - what decodes obeys the rules the decoders promise (fs_name_valid,
 *     strictly sorted names, fs_inode_valid, a commit's root a directory);
 *   - it re-encodes to the input itself (one spelling per value), and that
 *     decodes to an equal value;
 *   - no decoder writes into its input.
 * Any violation calls abort(), which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/obj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_fsobj: %s\n", what);
    abort();
}

static void check_dir_equal(const struct fs_dir *a, const struct fs_dir *b)
{
    if (a->n != b->n)
        fail("a re-encoded directory decodes to another entry count");
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->e[i].name, b->e[i].name) != 0 || !fs_inode_equal(&a->e[i].ino, &b->e[i].ino))
            fail("a re-encoded directory decodes to other entries");
}

static void fuzz_dir(const uint8_t *p, size_t len, int depth)
{
    struct fs_dir d, d2;
    uint8_t *enc;
    size_t elen;

    int rc = fs_dir_decode(p, len, &d);
    if (rc != 0) {
        if (rc != -EBADMSG && rc != -ENOMEM)
            fail("fs_dir_decode returned an unexpected error");
        if (d.n != 0 || d.e != NULL)
            fail("a refused directory is not left empty");
        return;
    }
    for (size_t i = 0; i < d.n; i++) {
        if (!fs_name_valid(d.e[i].name, strlen(d.e[i].name)) || !fs_inode_valid(&d.e[i].ino))
            fail("a decoded entry breaks the rules");
        if (i > 0 && strcmp(d.e[i - 1].name, d.e[i].name) >= 0)
            fail("decoded names out of order");
    }
    if (fs_dir_encode(&d, &enc, &elen) != 0)
        fail("a decoded directory does not encode");
    if (elen != len || memcmp(enc, p, len) != 0)
        fail("a directory re-encodes to other bytes");
    if (fs_dir_decode(enc, elen, &d2) != 0)
        fail("a re-encoded directory does not decode");
    check_dir_equal(&d, &d2);
    fs_dir_clear(&d2);
    free(enc);
    /* what a reader does next: the directories held inline */
    for (size_t i = 0; i < d.n && depth < 4; i++) {
        const struct fs_inode *e = &d.e[i].ino;
        if (e->type == FS_T_DIR && e->ref == FS_REF_INLINE)
            fuzz_dir(e->inline_data, (size_t)e->size, depth + 1);
    }
    fs_dir_clear(&d);
}

static void fuzz_commit(const uint8_t *p, size_t len)
{
    struct fs_commit c, c2;
    uint8_t *enc;
    size_t elen;

    memset(&c, 0xa5, sizeof(c));
    int rc = fs_commit_decode(p, len, &c);
    if (rc != 0) {
        if (rc != -EBADMSG && rc != -ENOMEM)
            fail("fs_commit_decode returned an unexpected error");
        if (c.nparents != 0xa5 || c.root.type != 0xa5)
            fail("a refused commit was written");
        return;
    }
    if (c.root.type != FS_T_DIR || !fs_inode_valid(&c.root) || c.nparents > FS_COMMIT_PARENTS ||
        strlen(c.message) > FS_MESSAGE_MAX)
        fail("a decoded commit breaks the rules");
    if (fs_commit_encode(&c, &enc, &elen) != 0)
        fail("a decoded commit does not encode");
    if (elen != len || memcmp(enc, p, len) != 0)
        fail("a commit re-encodes to other bytes");
    if (fs_commit_decode(enc, elen, &c2) != 0)
        fail("a re-encoded commit does not decode");
    if (c.version != c2.version || c.time_ns != c2.time_ns ||
        memcmp(c.author.b, c2.author.b, SIG_PUB_LEN) != 0 || c.nparents != c2.nparents ||
        strcmp(c.message, c2.message) != 0 || !fs_inode_equal(&c.root, &c2.root))
        fail("a re-encoded commit decodes to other fields");
    for (uint8_t i = 0; i < c.nparents; i++)
        if (!id_eq(&c.parents[i], &c2.parents[i]))
            fail("a re-encoded commit decodes to other parents");
    if (c.root.ref == FS_REF_INLINE)
        fuzz_dir(c.root.inline_data, (size_t)c.root.size, 1);
    fs_commit_clear(&c2);
    fs_commit_clear(&c);
    free(enc);
}

static void fuzz_rootref(const uint8_t *p, size_t len)
{
    struct id k, k2;
    uint8_t out[FS_ROOTREF_LEN];

    memset(&k, 0x5a, sizeof(k));
    int rc = fs_rootref_decode(p, len, &k);
    if (rc != 0) {
        if (rc != -EBADMSG)
            fail("fs_rootref_decode returned an unexpected error");
        for (int i = 0; i < ID_BYTES; i++)
            if (k.b[i] != 0x5a)
                fail("a refused root payload was written");
        return;
    }
    fs_rootref_encode(&k, out);
    if (len != FS_ROOTREF_LEN || memcmp(out, p, len) != 0)
        fail("a root payload re-encodes to other bytes");
    if (fs_rootref_decode(out, sizeof(out), &k2) != 0 || !id_eq(&k, &k2))
        fail("a re-encoded root payload decodes to another key");
    (void)fs_key_is_hole(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly size bytes, so that ASan sees any read past the input. */
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    if (size)
        memcpy(p, data, size);

    fuzz_dir(p, size, 0);
    fuzz_commit(p, size);
    fuzz_rootref(p, size);

    if (memcmp(p, data, size) != 0)
        fail("a decoder wrote into its input");
    free(p);
    return 0;
}
