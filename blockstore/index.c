/* index.c — the records a node holds: a sorted index with exact accounting.
 *
 * Entries are heap objects kept in an array of pointers sorted by (key,
 * type), so that the ring ranges maintenance walks are contiguous runs and
 * lookups are binary searches. Insertion and removal move the tail of the
 * array with memmove: O(n) pointer moves, about a millisecond at a million
 * entries (8 MB moved). Past a few million records per node this wants a
 * B-tree or a skip list; the interface here does not change.
 *
 * Accounting is exact and never needs a scan:
 *   used      sum of size over entries that are PRESENT or WRITING
 *             (in-flight writes count, so admission sees them);
 *   counts    entries with PRESENT, by type;
 *   owners    per owner, the bytes of the entries (PRESENT or WRITING) on
 *             which it holds a lease that was live when the entry's leases
 *             were last evaluated (e->counted_s), plus how many lease
 *             records it has in the index, so the row lives exactly as long
 *             as a record refers to it and set_size never allocates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockstore/internal.h"
#include "blockstore/msg.h"
#include "common/hash.h"
#include "common/wire.h"

#define COUNTED_FLAGS (BS_E_PRESENT | BS_E_WRITING)

/* Most owners (lease records) one entry keeps. A record of an owner not
 * yet held is left out beyond it (the caller finds it missing: lease.c's
 * bs_lease_capped); records of owners held always merge. So an entry's
 * records always fit one message, and no truncation when sending them
 * (bs_leases_of) can drop a live lease. */
#define BS_LEASE_OWNERS_MAX 1024
_Static_assert(BS_LEASE_OWNERS_MAX <= BS_MSG_LEASES_MAX, "an entry's leases fit one message");

int bs_index_init(struct bs_index *ix)
{
    memset(ix, 0, sizeof(*ix));
    return 0;
}

void bs_index_release(struct bs_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n; i++) {
        free(ix->v[i]->leases);
        free(ix->v[i]);
    }
    free(ix->v);
    free(ix->owners);
    memset(ix, 0, sizeof(*ix));
}

static int entry_cmp(const struct bs_entry *e, enum store_type type, const struct id *key)
{
    int c = id_cmp(&e->key, key);
    if (c)
        return c;
    return (int)e->type - (int)type;
}

/* First position whose (key, type) is >= (key, type). */
static size_t lower_bound_kt(const struct bs_index *ix, enum store_type type, const struct id *key)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_cmp(ix->v[mid], type, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t bs_index_lower_bound(const struct bs_index *ix, const struct id *key)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(&ix->v[mid]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct bs_entry *bs_index_find(const struct bs_index *ix, enum store_type type,
                               const struct id *key)
{
    size_t i = lower_bound_kt(ix, type, key);
    if (i < ix->n && entry_cmp(ix->v[i], type, key) == 0)
        return ix->v[i];
    return NULL;
}

/* Position of e in the array (it must be there). */
static size_t entry_pos(const struct bs_index *ix, const struct bs_entry *e)
{
    return lower_bound_kt(ix, e->type, &e->key);
}

/* ---- owners ---- */

static int owner_cmp(const struct sig_pub *a, const struct sig_pub *b)
{
    return memcmp(a->b, b->b, SIG_PUB_LEN);
}

static size_t owner_lower_bound(const struct bs_index *ix, const struct sig_pub *owner)
{
    size_t lo = 0, hi = ix->nowners;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (owner_cmp(&ix->owners[mid].owner, owner) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct bs_owner_use *owner_find(const struct bs_index *ix, const struct sig_pub *owner)
{
    size_t i = owner_lower_bound(ix, owner);
    if (i < ix->nowners && owner_cmp(&ix->owners[i].owner, owner) == 0)
        return &ix->owners[i];
    return NULL;
}

static int owners_reserve(struct bs_index *ix, size_t more)
{
    if (ix->nowners + more <= ix->cap_owners)
        return 0;
    size_t cap = ix->cap_owners ? ix->cap_owners : 8;
    while (cap < ix->nowners + more)
        cap *= 2;
    struct bs_owner_use *o = realloc(ix->owners, cap * sizeof(*o));
    if (!o)
        return -ENOMEM;
    ix->owners = o;
    ix->cap_owners = cap;
    return 0;
}

/* Adds one record reference to owner; room must have been reserved. */
static void owner_ref(struct bs_index *ix, const struct sig_pub *owner)
{
    size_t i = owner_lower_bound(ix, owner);
    if (i < ix->nowners && owner_cmp(&ix->owners[i].owner, owner) == 0) {
        ix->owners[i].records++;
        return;
    }
    memmove(&ix->owners[i + 1], &ix->owners[i], (ix->nowners - i) * sizeof(ix->owners[0]));
    ix->owners[i].owner = *owner;
    ix->owners[i].bytes = 0;
    ix->owners[i].records = 1;
    ix->nowners++;
}

static void owner_unref(struct bs_index *ix, const struct sig_pub *owner)
{
    size_t i = owner_lower_bound(ix, owner);
    if (i >= ix->nowners || owner_cmp(&ix->owners[i].owner, owner) != 0)
        return;
    if (--ix->owners[i].records > 0)
        return;
    memmove(&ix->owners[i], &ix->owners[i + 1], (ix->nowners - i - 1) * sizeof(ix->owners[0]));
    ix->nowners--;
}

/* Adds (sign > 0) or takes back (sign < 0) what e counts against its
 * owners, per its current flags, size, leases and counted_s. */
static void owners_account(struct bs_index *ix, const struct bs_entry *e, int sign)
{
    if (!(e->flags & COUNTED_FLAGS) || e->size == 0)
        return;
    for (size_t i = 0; i < e->nleases; i++) {
        if (e->leases[i].expiry_s <= e->counted_s)
            continue;
        struct bs_owner_use *o = owner_find(ix, &e->leases[i].owner);
        if (!o)
            continue; /* cannot happen: every record holds a reference */
        if (sign > 0)
            o->bytes += e->size;
        else
            o->bytes = o->bytes >= e->size ? o->bytes - e->size : 0;
    }
}

static void entry_account(struct bs_index *ix, const struct bs_entry *e, int sign)
{
    if (e->flags & COUNTED_FLAGS) {
        if (sign > 0)
            ix->used += e->size;
        else
            ix->used -= e->size;
    }
    if ((e->flags & BS_E_PRESENT) && e->type < 4) {
        if (sign > 0)
            ix->counts[e->type]++;
        else
            ix->counts[e->type]--;
    }
    owners_account(ix, e, sign);
}

/* ---- entries ---- */

int bs_index_add(struct bs_index *ix, enum store_type type, const struct id *key,
                 struct bs_entry **out)
{
    size_t i = lower_bound_kt(ix, type, key);
    if (i < ix->n && entry_cmp(ix->v[i], type, key) == 0)
        return -EEXIST;
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 64;
        struct bs_entry **v = realloc(ix->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        ix->v = v;
        ix->cap = cap;
    }
    struct bs_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->key = *key;
    e->type = (uint8_t)type;
    bs_entry_digest(e);
    memmove(&ix->v[i + 1], &ix->v[i], (ix->n - i) * sizeof(ix->v[0]));
    ix->v[i] = e;
    ix->n++;
    if (out)
        *out = e;
    return 0;
}

void bs_index_remove(struct bs_index *ix, struct bs_entry *e)
{
    size_t i = entry_pos(ix, e);
    if (i >= ix->n || ix->v[i] != e)
        return;
    entry_account(ix, e, -1);
    for (size_t j = 0; j < e->nleases; j++)
        owner_unref(ix, &e->leases[j].owner);
    memmove(&ix->v[i], &ix->v[i + 1], (ix->n - i - 1) * sizeof(ix->v[0]));
    ix->n--;
    free(e->leases);
    free(e);
}

void bs_index_set_size(struct bs_index *ix, struct bs_entry *e, uint32_t size, uint8_t flags)
{
    entry_account(ix, e, -1);
    e->size = size;
    e->flags = flags;
    entry_account(ix, e, +1);
    bs_entry_digest(e);
}

static size_t lease_find(const struct lease *v, size_t n, const struct sig_pub *owner, bool *hit)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (owner_cmp(&v[mid].owner, owner) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *hit = lo < n && owner_cmp(&v[lo].owner, owner) == 0;
    return lo;
}

int bs_index_merge_leases(struct bs_index *ix, struct bs_entry *e, const struct lease *l, size_t n,
                          uint64_t now_s, bool *changed)
{
    struct lease *nv = NULL;
    size_t nn = e->nleases, added = 0;
    bool diff = false;

    if (e->nleases + n > UINT16_MAX)
        return -ENOMEM;
    /* Build the merged set aside, so a failed allocation changes nothing. */
    if (n > 0) {
        nv = malloc((e->nleases + n) * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        if (e->nleases)
            memcpy(nv, e->leases, e->nleases * sizeof(*nv));
    }
    for (size_t i = 0; i < n; i++) {
        bool hit;
        size_t at = lease_find(nv, nn, &l[i].owner, &hit);
        if (hit) {
            if (lease_newer(&l[i], &nv[at])) {
                nv[at] = l[i];
                diff = true;
            }
            continue;
        }
        if (nn >= BS_LEASE_OWNERS_MAX)
            continue; /* a new owner past the cap: left out */
        memmove(&nv[at + 1], &nv[at], (nn - at) * sizeof(*nv));
        nv[at] = l[i];
        nn++;
        added++;
        diff = true;
    }
    /* Owners of new records need a row; reserve before touching anything. */
    if (added && owners_reserve(ix, added) < 0) {
        free(nv);
        return -ENOMEM;
    }

    owners_account(ix, e, -1);
    if (added) {
        /* The new owners are those of nv not in the old array. */
        for (size_t i = 0; i < nn; i++) {
            bool hit;
            lease_find(e->leases, e->nleases, &nv[i].owner, &hit);
            if (!hit)
                owner_ref(ix, &nv[i].owner);
        }
    }
    if (diff || !e->leases) {
        free(e->leases);
        e->leases = nv;
        e->nleases = (uint16_t)nn;
    } else {
        free(nv);
    }
    e->counted_s = now_s;
    owners_account(ix, e, +1);

    uint64_t latest = 0;
    for (size_t i = 0; i < e->nleases; i++)
        if (e->leases[i].expiry_s > now_s && e->leases[i].expiry_s > latest)
            latest = e->leases[i].expiry_s;
    if (e->type == STORE_CONTENT)
        e->expiry_s = latest;
    if (diff)
        bs_entry_digest(e);
    if (changed)
        *changed = diff;
    return 0;
}

bool bs_entry_live(const struct bs_entry *e, uint64_t now_s)
{
    for (size_t i = 0; i < e->nleases; i++)
        if (e->leases[i].expiry_s > now_s)
            return true;
    return false;
}

uint64_t bs_index_owner_bytes(const struct bs_index *ix, const struct sig_pub *owner)
{
    const struct bs_owner_use *o = owner_find(ix, owner);
    return o ? o->bytes : 0;
}

void bs_entry_digest(struct bs_entry *e)
{
    /* A chain, h = SHA-256(h | lease), rather than one hash over a buffer
     * of every lease: no allocation, so it cannot fail. */
    uint8_t buf[ID_BYTES + LEASE_LEN];
    struct wire_writer w;
    struct id h;

    wire_writer_init(&w, buf, sizeof(buf));
    wire_put_u8(&w, e->type);
    wire_put_id(&w, &e->key);
    wire_put_u8(&w, (e->flags & BS_E_PRESENT) ? 1 : 0);
    wire_put_u64(&w, e->type == STORE_CONTENT ? 0 : e->version);
    /* Which bytes of that version: a root's fingerprint (the first 8 bytes
     * of its SHA-256, kept in expiry_s), a kv record's expiry (part of its
     * signed bytes). Two holders of one version with different bytes (a
     * fork of a root) then differ in their digests, and sync sees it. */
    wire_put_u64(&w, e->type == STORE_CONTENT ? 0 : e->expiry_s);
    wire_put_u16(&w, e->nleases);
    hash_sha256(&h, buf, w.len);
    for (size_t i = 0; i < e->nleases; i++) {
        memcpy(buf, h.b, ID_BYTES);
        lease_encode(&e->leases[i], buf + ID_BYTES);
        hash_sha256(&h, buf, sizeof(buf));
    }
    e->digest = h;
}
