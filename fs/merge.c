/* merge.c — three-way merge of directory trees (fs/merge.h). */
#include "fs/merge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_MAX 64u

struct merge {
    const struct fs_merge_io *io;
    char tag[TAG_MAX + 1]; /* sanitized: no '/', no NUL inside */
    unsigned conflicts;
};

/* An inode that lost its name, to be placed once every plain name is. */
struct loser {
    const char *name; /* the name it lost (owned by a side's fs_dir) */
    const struct fs_inode *ino;
};

static int merge_dirs(struct merge *m, const struct fs_inode *base, const struct fs_inode *ours,
                      const struct fs_inode *theirs, struct fs_inode *out);

static bool same(const struct fs_inode *a, const struct fs_inode *b)
{
    if (!a || !b)
        return a == b;
    return fs_inode_equal(a, b);
}

static bool is_dir(const struct fs_inode *a)
{
    return a && a->type == FS_T_DIR;
}

/* Cuts len back so that name[0..len) does not end inside a UTF-8
 * sequence (a cut before a continuation byte drops its lead too). */
static size_t utf8_cut(const char *name, size_t len)
{
    size_t n = len;
    while (n > 1 && ((unsigned char)name[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* Writes a free conflict name for name into buf (FS_NAME_MAX + 1). */
static int conflict_name(const struct merge *m, const struct fs_dir *d, const char *name, char *buf)
{
    char suffix[sizeof(".conflict-") + TAG_MAX + 16];
    size_t nl = strlen(name);

    for (unsigned k = 1; k < 1000000; k++) {
        int sl;
        if (k == 1)
            sl = snprintf(suffix, sizeof(suffix), ".conflict%s%s", m->tag[0] ? "-" : "", m->tag);
        else
            sl = snprintf(suffix, sizeof(suffix), ".conflict%s%s-%u", m->tag[0] ? "-" : "", m->tag,
                          k);
        if (sl < 0 || (size_t)sl >= sizeof(suffix))
            return -EINVAL;
        size_t keep = nl;
        if (keep + (size_t)sl > FS_NAME_MAX)
            keep = utf8_cut(name, FS_NAME_MAX - (size_t)sl);
        memcpy(buf, name, keep);
        memcpy(buf + keep, suffix, (size_t)sl + 1);
        if (!fs_dir_find(d, buf))
            return 0;
    }
    return -EEXIST;
}

/* Decides one name. Sets what goes under the name in *keep (an inode of a
 * side, or NULL) or, for two directories, merges them into *merged and
 * sets *keep to it; a conflict loser goes to *lost. */
static int merge_name(struct merge *m, const struct fs_inode *b, const struct fs_inode *o,
                      const struct fs_inode *t, const struct fs_inode **keep,
                      const struct fs_inode **lost, struct fs_inode *merged)
{
    *lost = NULL;
    if (same(o, t) || same(o, b)) {
        *keep = t;
        return 0;
    }
    if (same(t, b)) {
        *keep = o;
        return 0;
    }
    if (!o || !t) { /* deleted one side, changed the other */
        *keep = o ? o : t;
        return 0;
    }
    if (is_dir(o) && is_dir(t)) {
        int rc = merge_dirs(m, is_dir(b) ? b : NULL, o, t, merged);
        if (rc == 0)
            *keep = merged;
        return rc;
    }
    m->conflicts++;
    if (is_dir(o)) { /* the directory keeps the name */
        *keep = o;
        *lost = t;
    } else {
        *keep = t;
        *lost = o;
    }
    return 0;
}

static const struct fs_dirent *next_of(const struct fs_dir *d, size_t i)
{
    return i < d->n ? &d->e[i] : NULL;
}

/* Walks the three sorted entry lists in step, deciding each name. */
static int merge_entries(struct merge *m, const struct fs_dir *bd, const struct fs_dir *od,
                         const struct fs_dir *td, struct fs_dir *out)
{
    size_t bi = 0, oi = 0, ti = 0, nlost = 0;
    struct loser *lost = calloc(od->n + td->n + 1, sizeof(*lost));
    char *cname = malloc(FS_NAME_MAX + 1);
    int rc = 0;

    if (!lost || !cname) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        const struct fs_dirent *be = next_of(bd, bi), *oe = next_of(od, oi), *te = next_of(td, ti);
        const char *name = NULL;
        if (be)
            name = be->name;
        if (oe && (!name || strcmp(oe->name, name) < 0))
            name = oe->name;
        if (te && (!name || strcmp(te->name, name) < 0))
            name = te->name;
        if (!name)
            break;
        const struct fs_inode *b = NULL, *o = NULL, *t = NULL, *keep = NULL, *lose = NULL;
        if (be && strcmp(be->name, name) == 0)
            b = &bd->e[bi++].ino;
        if (oe && strcmp(oe->name, name) == 0)
            o = &od->e[oi++].ino;
        if (te && strcmp(te->name, name) == 0)
            t = &td->e[ti++].ino;
        struct fs_inode merged = {0};
        rc = merge_name(m, b, o, t, &keep, &lose, &merged);
        if (rc == 0 && keep)
            rc = fs_dir_set(out, name, keep);
        fs_inode_clear(&merged);
        if (rc != 0)
            goto out;
        if (lose) {
            /* a loser is from ours or theirs, whose dirs outlive this */
            lost[nlost].name = lose == o ? od->e[oi - 1].name : td->e[ti - 1].name;
            lost[nlost++].ino = lose;
        }
    }
    /* Conflict copies last, so that none takes a plain name. */
    for (size_t i = 0; i < nlost; i++) {
        rc = conflict_name(m, out, lost[i].name, cname);
        if (rc == 0)
            rc = fs_dir_set(out, cname, lost[i].ino);
        if (rc != 0)
            goto out;
    }
out:
    free(cname);
    free(lost);
    return rc;
}

static int copy_attrs(struct fs_inode *out, const struct fs_inode *src)
{
    struct fs_inode a = *src;

    /* only the attributes: the reference is store_dir's */
    a.ref = FS_REF_EMPTY;
    a.size = 0;
    a.inline_data = NULL;
    memset(&a.key, 0, sizeof(a.key));
    return fs_inode_copy(out, &a);
}

static int merge_dirs(struct merge *m, const struct fs_inode *base, const struct fs_inode *ours,
                      const struct fs_inode *theirs, struct fs_inode *out)
{
    struct fs_dir bd, od, td, res;
    struct fs_inode r;
    int rc;

    if (fs_inode_equal(ours, theirs) || (base && fs_inode_equal(ours, base)))
        return fs_inode_copy(out, theirs);
    if (base && fs_inode_equal(theirs, base))
        return fs_inode_copy(out, ours);

    fs_dir_init(&bd);
    fs_dir_init(&od);
    fs_dir_init(&td);
    fs_dir_init(&res);
    if (base && (rc = m->io->load_dir(m->io->ctx, base, &bd)) != 0)
        goto err_dirs;
    if ((rc = m->io->load_dir(m->io->ctx, ours, &od)) != 0)
        goto err_dirs;
    if ((rc = m->io->load_dir(m->io->ctx, theirs, &td)) != 0)
        goto err_dirs;
    if ((rc = merge_entries(m, &bd, &od, &td, &res)) != 0)
        goto err_dirs;

    /* theirs' attributes unless only ours changed them */
    bool ours_only = base && fs_inode_attr_equal(theirs, base) && !fs_inode_attr_equal(ours, base);
    if ((rc = copy_attrs(&r, ours_only ? ours : theirs)) != 0)
        goto err_dirs;
    if ((rc = m->io->store_dir(m->io->ctx, &res, &r)) != 0) {
        fs_inode_clear(&r);
        goto err_dirs;
    }
    *out = r;

err_dirs:
    fs_dir_clear(&res);
    fs_dir_clear(&td);
    fs_dir_clear(&od);
    fs_dir_clear(&bd);
    return rc;
}

int fs_merge3(const struct fs_merge_io *io, const struct fs_inode *base,
              const struct fs_inode *ours, const struct fs_inode *theirs, const char *conflict_tag,
              struct fs_inode *out, unsigned *nconflicts)
{
    struct merge m = {.io = io};
    struct fs_inode r;

    if (!is_dir(ours) || !is_dir(theirs))
        return -EINVAL;
    if (conflict_tag) {
        size_t n = strnlen(conflict_tag, TAG_MAX + 1);
        if (n > TAG_MAX)
            n = utf8_cut(conflict_tag, TAG_MAX);
        memcpy(m.tag, conflict_tag, n);
        for (size_t i = 0; i < n; i++)
            if (m.tag[i] == '/')
                m.tag[i] = '_';
    }
    int rc = merge_dirs(&m, is_dir(base) ? base : NULL, ours, theirs, &r);
    if (rc != 0)
        return rc;
    *out = r;
    if (nconflicts)
        *nconflicts = m.conflicts;
    return 0;
}
