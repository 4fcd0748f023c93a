/* table.c — the routing table of a vnode: successor list, predecessor,
 * fingers, long-term memory, and the choice of the next hop. */
#include <string.h>

#include "chord/internal.h"

#define MOD "chord"

bool peer_eq(const struct chord_peer *a, const struct chord_peer *b)
{
    return id_eq(&a->id, &b->id) && addr_eq(&a->addr, &b->addr);
}

void table_succ_set(struct chord *c, struct vnode *v, const struct chord_peer *list, size_t n)
{
    struct chord_peer out[CHORD_SUCC_MAX];
    struct id last_dist, d;
    size_t k = 0;

    for (size_t i = 0; i < n && k < c->cfg.succ_len; i++) {
        /* The list is in ring order from self: reaching self again means
         * the ring is smaller than r and the rest would repeat it. */
        if (id_eq(&list[i].id, &v->self.id))
            break;
        if (list[i].addr.family != ADDR_V4 && list[i].addr.family != ADDR_V6)
            continue;
        id_distance(&d, &v->self.id, &list[i].id);
        /* Keep distances strictly increasing: drops duplicates and any
         * entry out of ring order. */
        if (k > 0 && id_cmp(&d, &last_dist) <= 0)
            continue;
        out[k++] = list[i];
        last_dist = d;
    }
    bool same = k == v->nsucc;
    for (size_t i = 0; same && i < k; i++)
        same = peer_eq(&out[i], &v->succ[i]);
    if (same)
        return;
    bool first_changed = k == 0 || v->nsucc == 0 || !peer_eq(&out[0], &v->succ[0]);
    memcpy(v->succ, out, k * sizeof(out[0]));
    v->nsucc = (uint8_t)k;
    v->succ_gen++;
    v->dirty = true;
    v->last_succ_fail = 0;
    if (first_changed)
        v->succ_strikes = 0;
    c->stats.successor_changes++;
    if (first_changed && log_enabled(c->lg, LOG_DEBUG)) {
        char a[ID_HEX_LEN + 1], b[ID_HEX_LEN + 1] = "(none)";
        id_to_hex(&v->self.id, a);
        if (k)
            id_to_hex(&out[0].id, b);
        LOG_D(c->lg, MOD, "%s: vnode %.12s successor is now %.12s", c->name, a, b);
    }
}

void table_pred_set(struct chord *c, struct vnode *v, const struct chord_peer *p)
{
    if (id_eq(&p->id, &v->self.id))
        return;
    if (v->has_pred && peer_eq(&v->pred, p))
        return;
    v->pred = *p;
    v->has_pred = true;
    v->pred_heard = 0;
    v->dirty = true;
    c->stats.predecessor_changes++;
}

void table_pred_clear(struct chord *c, struct vnode *v)
{
    if (!v->has_pred)
        return;
    v->has_pred = false;
    v->dirty = true;
    c->stats.predecessor_changes++;
}

void table_finger_set(struct vnode *v, unsigned i, const struct chord_peer *p)
{
    if (id_eq(&p->id, &v->self.id)) {
        v->finger_valid &= ~(1ull << i);
        return;
    }
    v->finger[i] = *p;
    v->finger_valid |= 1ull << i;
}

void table_forget_finger(struct vnode *v, const struct id *id)
{
    for (unsigned i = 0; i < CHORD_FINGERS; i++)
        if ((v->finger_valid >> i & 1) && id_eq(&v->finger[i].id, id))
            v->finger_valid &= ~(1ull << i);
}

void table_memory_add(struct chord *c, struct vnode *v, const struct chord_peer *p)
{
    if (id_eq(&p->id, &v->self.id))
        return;
    for (unsigned i = 0; i < v->nmem; i++) {
        if (addr_eq(&v->mem[i].peer.addr, &p->addr) &&
            (id_eq(&v->mem[i].peer.id, &p->id) || id_is_zero(&v->mem[i].peer.id))) {
            v->mem[i].peer = *p;
            v->mem[i].agreed = 0;
            return;
        }
    }
    unsigned slot;
    if (v->nmem < CHORD_MEMORY) {
        slot = v->nmem++;
    } else {
        slot = v->mem_next;
        v->mem_next = (uint8_t)((v->mem_next + 1) % CHORD_MEMORY);
    }
    v->mem[slot].peer = *p;
    v->mem[slot].last_ok = chord_now(c);
    v->mem[slot].agreed = 0;
    if (v->nmem == 1)
        v->t_probe = chord_jitter(c, c->cfg.probe_ms);
}

void table_memory_remove(struct vnode *v, const struct id *id)
{
    for (unsigned i = 0; i < v->nmem; i++) {
        if (id_eq(&v->mem[i].peer.id, id)) {
            v->mem[i] = v->mem[--v->nmem];
            if (v->mem_next >= v->nmem)
                v->mem_next = 0;
            return;
        }
    }
}

const struct chord_peer *table_closest_preceding(const struct chord *c, const struct vnode *v,
                                                 const struct id *key)
{
    const struct chord_peer *best = NULL;

    /* Fingers grow in distance from self with their index, so the highest
     * one inside (self, key) is the best finger. */
    for (int i = CHORD_FINGERS - 1; i >= 0; i--) {
        if ((v->finger_valid >> i & 1) && id_in_oo(&v->finger[i].id, &v->self.id, key) &&
            !chord_addr_refused(c, &v->finger[i].addr)) {
            best = &v->finger[i];
            break;
        }
    }
    /* Successors are in ring order too: the last inside (self, key). */
    for (int i = v->nsucc - 1; i >= 0; i--) {
        if (id_in_oo(&v->succ[i].id, &v->self.id, key) &&
            !chord_addr_refused(c, &v->succ[i].addr)) {
            if (!best || id_in_oo(&v->succ[i].id, &best->id, key))
                best = &v->succ[i];
            break;
        }
    }
    return best;
}

static bool in_skip(const struct id *id, const struct id *skip, size_t nskip)
{
    for (size_t i = 0; i < nskip; i++)
        if (id_eq(id, &skip[i]))
            return true;
    return false;
}

static int cmp_dist_desc(const struct id *self, const struct chord_peer *a,
                         const struct chord_peer *b)
{
    struct id da, db;
    id_distance(&da, self, &a->id);
    id_distance(&db, self, &b->id);
    return -id_cmp(&da, &db);
}

size_t table_closest_list(const struct vnode *v, const struct id *key, const struct id *skip,
                          size_t nskip, struct chord_peer *out, size_t max)
{
    struct chord_peer all[CHORD_FINGERS + CHORD_SUCC_MAX];
    size_t n = 0;

    for (unsigned i = 0; i < CHORD_FINGERS; i++)
        if ((v->finger_valid >> i & 1) && id_in_oo(&v->finger[i].id, &v->self.id, key) &&
            !in_skip(&v->finger[i].id, skip, nskip))
            all[n++] = v->finger[i];
    for (unsigned i = 0; i < v->nsucc; i++)
        if (id_in_oo(&v->succ[i].id, &v->self.id, key) && !in_skip(&v->succ[i].id, skip, nskip))
            all[n++] = v->succ[i];
    /* Insertion sort, closest to key (farthest from self) first; n is small. */
    for (size_t i = 1; i < n; i++) {
        struct chord_peer p = all[i];
        size_t j = i;
        while (j > 0 && cmp_dist_desc(&v->self.id, &all[j - 1], &p) > 0) {
            all[j] = all[j - 1];
            j--;
        }
        all[j] = p;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        if (k == 0 || !id_eq(&out[k - 1].id, &all[i].id))
            out[k++] = all[i];
    return k;
}
