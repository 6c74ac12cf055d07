/* stats_fc.h: the per-thread family cache of core/stats (stats.c), whose
 * hit is inline here for the filter host's family calls. Internal to
 * core/stats and core/filter/filter_host.c.
 *
 * Each thread keeps, per family (by id, direct-mapped), the last series
 * that family updated on the thread: the label values it matched, as words
 * that cover every byte of each value (weft_stats_value_words), and the
 * address of the series' first slot in the thread's block. A hit compares
 * the caller's values with the words (no hash, no probe, no lock) and the
 * caller adds to the slot as the block's only writer. Only series (never
 * the overflow series, whose updates are counted) of at most
 * WEFT_STATS_FC_LABELS values of at most WEFT_STATS_FC_VALUE_MAX bytes are
 * cached. An entry is valid while weft_stats_fc_epoch is what it was at the
 * fill (bumped whenever a family or a block is freed); a thread drops its
 * own entries when its block changes, so a valid entry implies the
 * thread's block is the one it was filled with. */
#ifndef WEFT_STATS_FC_H
#define WEFT_STATS_FC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "stats/stats.h"

#define WEFT_STATS_FC_ENTRIES 32u
#define WEFT_STATS_FC_LABELS 4u
#define WEFT_STATS_FC_VALUE_MAX 16u

typedef struct weft_stats_fc_entry {
    uint64_t epoch;         /* weft_stats_fc_epoch at the fill; 0: empty (it starts at 1) */
    uint64_t key;           /* weft_stats_fc_key(id, kind) */
    size_t n;               /* values */
    _Atomic uint64_t *slot; /* the series' first slot in the thread's block */
    struct {
        size_t len;
        uint64_t w[2]; /* weft_stats_value_words */
    } v[WEFT_STATS_FC_LABELS];
} weft_stats_fc_entry;

/* A thread's value slots: pages of WEFT_STATS_PAGE_SLOTS, made at
 * registration (the hot path never allocates). */
struct weft_stats_block {
    _Atomic(_Atomic uint64_t *) pages[WEFT_STATS_MAX_PAGES];
    struct weft_stats_block *prev, *next; /* live list (stats.c's g_lock) */
};

/* The calling thread's block (weft_stats_set_thread_block). */
extern _Thread_local weft_stats_block *weft_stats_tls_block;

extern _Thread_local weft_stats_fc_entry weft_stats_tls_fc[WEFT_STATS_FC_ENTRIES];
extern _Atomic uint64_t weft_stats_fc_epoch;

/* Loads of label value bytes without loops or library calls (values are
 * short: methods, status classes, names). */
static inline uint64_t weft_stats_load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}
static inline uint64_t weft_stats_load32(const unsigned char *p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* Two words holding every byte of a value of 1..16 bytes (overlapping
 * loads from both ends); for values of equal length, equal words mean
 * equal bytes. */
static inline void weft_stats_value_words(const unsigned char *p, size_t len, uint64_t w[2]) {
    if (len >= 8) {
        w[0] = weft_stats_load64(p);
        w[1] = weft_stats_load64(p + len - 8);
    } else if (len >= 4) {
        w[0] = weft_stats_load32(p);
        w[1] = weft_stats_load32(p + len - 4);
    } else {
        w[0] = (uint64_t)p[0] | (uint64_t)p[len >> 1] << 8;
        w[1] = p[len - 1];
    }
}

/* The i-th of n (pointer, length) pairs laid out as weft_sv, read bytewise
 * (so an array of another struct of this layout may be passed). */
static inline weft_sv weft_stats_pair_at(const void *pairs, size_t i) {
    weft_sv v;
    memcpy(&v, (const char *)pairs + i * sizeof v, sizeof v);
    return v;
}

static inline uint64_t weft_stats_fc_key(weft_stat_family_id id, weft_stat_kind kind) {
    return (uint64_t)(uint32_t)kind << 32 | id;
}

static inline weft_stats_fc_entry *weft_stats_fc_entry_of(weft_stat_family_id id) {
    weft_stats_fc_entry *c = &weft_stats_tls_fc[id & (WEFT_STATS_FC_ENTRIES - 1)];
    /* one register for the entry's address (GCC would recompute the
     * thread-local address at every use) */
    __asm__("" : "+r"(c));
    return c;
}

/* The cached slot of family id's series with these values on this thread,
 * or NULL (not cached: the caller takes stats.c's path, which checks
 * everything and fills the entry). */
static inline _Atomic uint64_t *weft_stats_fc_lookup(const weft_stats_fc_entry *c,
                                                     weft_stat_family_id id, weft_stat_kind kind,
                                                     const void *pairs, size_t n, uint64_t epoch) {
    if (c->epoch != epoch || c->key != weft_stats_fc_key(id, kind) || c->n != n || (!pairs && n))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        weft_sv v = weft_stats_pair_at(pairs, i);
        if (v.len != c->v[i].len)
            return NULL;
        if (!v.len)
            continue;
        if (!v.p)
            return NULL; /* the uncached path says EINVAL */
        uint64_t w[2];
        weft_stats_value_words((const unsigned char *)v.p, v.len, w);
        if (w[0] != c->v[i].w[0] || w[1] != c->v[i].w[1])
            return NULL;
    }
    return c->slot;
}

/* A counter's or gauge's update (the block's only writer: no
 * read-modify-write). */
static inline void weft_stats_slot_add(_Atomic uint64_t *p, uint64_t v) {
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* weft_stats_inc (or gauge_add, two's complement) on the calling
 * thread's block, inline: a plain stat's or a series handle's update. */
static inline void weft_stats_add_here(uint32_t id, uint64_t v) {
    weft_stats_block *b = weft_stats_tls_block;
    uint32_t pg = id / WEFT_STATS_PAGE_SLOTS;
    if (!b || pg >= WEFT_STATS_MAX_PAGES)
        return;
    _Atomic uint64_t *page = atomic_load_explicit(&b->pages[pg], memory_order_acquire);
    if (page)
        weft_stats_slot_add(page + (id % WEFT_STATS_PAGE_SLOTS), v);
}

/* weft_stats_family_update_here past the cache; c is the entry to fill. */
int weft_stats_family_update_miss(weft_stat_family_id id, weft_stat_kind kind, const void *pairs,
                                  size_t n, uint64_t arg, weft_stats_fc_entry *c, uint64_t epoch);

/* weft_stats_family_update_here for a counter or a gauge, its hit inline. */
static inline int weft_stats_family_add_here(weft_stat_family_id id, weft_stat_kind kind,
                                             const void *pairs, size_t n, uint64_t arg) {
    weft_stats_fc_entry *c = weft_stats_fc_entry_of(id);
    uint64_t epoch = atomic_load_explicit(&weft_stats_fc_epoch, memory_order_relaxed);
    _Atomic uint64_t *p = weft_stats_fc_lookup(c, id, kind, pairs, n, epoch);
    if (p && kind != WEFT_STAT_HISTOGRAM) {
        weft_stats_slot_add(p, arg);
        return WEFT_STATS_OK;
    }
    return weft_stats_family_update_miss(id, kind, pairs, n, arg, c, epoch);
}

#endif
