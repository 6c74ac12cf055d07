/* stats.c: process-wide stats registry, per-thread value blocks and the
 * Prometheus text renderer.
 *
 * Slot layout. An id is the index of the metric's first value slot. A
 * counter or a gauge takes one slot; a histogram takes WEFT_HIST_SLOTS
 * consecutive slots: WEFT_HIST_BUCKETS non-cumulative bucket counts, then
 * the sum of observations in microseconds, then the observation count.
 * Slots live in pages of WEFT_STATS_PAGE_SLOTS; a histogram never straddles
 * a page boundary (the allocator skips to the next page instead), so every
 * hot-path operation touches a single page. Slots are handed out in
 * increasing order, so the entry array (registration order) is also sorted
 * by slot, which lets an id be mapped back to its entry by binary search.
 *
 * Blocks. Each block holds one page pointer per page; pages are allocated
 * when a registration first uses them, for every live block at once (and
 * for the internal retired and global blocks), and a new block gets every
 * page in use. A worker therefore never allocates and never finds a missing
 * page for an id it was handed. The owning thread is the only writer of its
 * block: relaxed load + relaxed store, no read-modify-write. Scrapers read
 * with relaxed loads under the registry mutex.
 *
 * One mutex (g_lock) guards the registry, the live block list, the retired
 * block and page allocation. Registration and scraping are rare. */
#include "stats/stats.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

const double weft_hist_bounds_ms[WEFT_HIST_BUCKETS] = {
    0.5,  1,    2,    5,     10,    20,    50,    100,    200,    500,
    1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000,
};

/* The same bounds in microseconds (exact integers), for the hot path and
 * for exact decimal rendering. Kept equal to weft_hist_bounds_ms * 1000. */
static const uint64_t hist_bounds_us[WEFT_HIST_BUCKETS] = {
    500,      1000,     2000,     5000,      10000,     20000,     50000,
    100000,   200000,   500000,   1000000,   2000000,   5000000,   10000000,
    15000000, 30000000, 60000000, 120000000, 300000000, 600000000,
};

#define HIST_SUM_SLOT WEFT_HIST_BUCKETS
#define HIST_COUNT_SLOT (WEFT_HIST_BUCKETS + 1)
#define PAGE_SHIFT 12
#define PAGE_MASK (WEFT_STATS_PAGE_SLOTS - 1u)

_Static_assert(WEFT_STATS_PAGE_SLOTS == (1u << PAGE_SHIFT), "page size must match PAGE_SHIFT");
_Static_assert(WEFT_HIST_SLOTS <= WEFT_STATS_PAGE_SLOTS, "a histogram must fit in one page");

typedef _Atomic uint64_t stat_slot;

struct weft_stats_block {
    _Atomic(stat_slot *) pages[WEFT_STATS_MAX_PAGES];
    struct weft_stats_block *prev, *next; /* live list (g_lock) */
};

typedef struct {
    char *name;
    char *help;
    weft_stat_kind kind;
    uint32_t first_entry, last_entry; /* series of this name, in registration order */
} stat_name;

typedef struct {
    char *labels;
    uint32_t name_idx;
    uint32_t slot;
    uint32_t next_same_name; /* UINT32_MAX ends the chain */
} stat_entry;

/* Open-addressing index of uint32 positions; UINT32_MAX marks a free cell. */
typedef struct {
    uint32_t *cells;
    uint32_t cap; /* power of two, or 0 */
    uint32_t used;
} stat_index;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static stat_name *g_names;
static uint32_t g_nnames, g_names_cap;
static stat_entry *g_entries;
static uint32_t g_nentries, g_entries_cap;
static stat_index g_name_index;  /* -> g_names */
static stat_index g_entry_index; /* -> g_entries, keyed by (name_idx, labels) */

static uint32_t g_next_slot;  /* first free slot */
static uint32_t g_pages_used; /* pages allocated in every block */

/* Staging (weft_stats_stage_begin): series registered since the marks
 * are hidden from scrapes until the stage ends, and forgotten if it ends
 * without keeping them. */
static bool g_staging;
static uint32_t g_stage_names, g_stage_entries, g_stage_slot;

static weft_stats_block *g_live;   /* head of the live list */
static weft_stats_block g_retired; /* folded counters/histograms of freed blocks */
static weft_stats_block g_global;  /* weft_stats_gauge_set values */

static _Thread_local weft_stats_block *tls_block;

/* ---------------------------------------------------------------- slots */

static inline stat_slot *slot_ptr(const weft_stats_block *b, uint32_t id, memory_order mo) {
    uint32_t pg = id >> PAGE_SHIFT;
    if (pg >= WEFT_STATS_MAX_PAGES)
        return NULL;
    /* The cast drops const only to satisfy atomic_load's signature on
     * older compilers; the page array is not modified here. */
    stat_slot *page = atomic_load_explicit((_Atomic(stat_slot *) *)&b->pages[pg], mo);
    return page ? page + (id & PAGE_MASK) : NULL;
}

static inline uint64_t slot_read(const weft_stats_block *b, uint32_t id) {
    stat_slot *p = slot_ptr(b, id, memory_order_acquire);
    return p ? atomic_load_explicit(p, memory_order_relaxed) : 0;
}

/* Single-writer add: no read-modify-write instruction needed. */
static inline void slot_add(stat_slot *p, uint64_t v) {
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static void block_free_pages(weft_stats_block *b) {
    for (uint32_t i = 0; i < WEFT_STATS_MAX_PAGES; i++) {
        stat_slot *p = atomic_load_explicit(&b->pages[i], memory_order_relaxed);
        atomic_store_explicit(&b->pages[i], NULL, memory_order_relaxed);
        free(p);
    }
}

/* Gives block b pages [0, npages). Idempotent. g_lock held. */
static bool block_fill_pages(weft_stats_block *b, uint32_t npages) {
    for (uint32_t i = 0; i < npages; i++) {
        if (atomic_load_explicit(&b->pages[i], memory_order_relaxed))
            continue;
        stat_slot *p = calloc(WEFT_STATS_PAGE_SLOTS, sizeof *p);
        if (!p)
            return false;
        for (uint32_t j = 0; j < WEFT_STATS_PAGE_SLOTS; j++)
            atomic_init(&p[j], 0);
        atomic_store_explicit(&b->pages[i], p, memory_order_release);
    }
    return true;
}

/* Makes pages [0, npages) present in every block. g_lock held. */
static bool ensure_pages(uint32_t npages) {
    if (npages <= g_pages_used)
        return true;
    if (!block_fill_pages(&g_retired, npages) || !block_fill_pages(&g_global, npages))
        return false;
    for (weft_stats_block *b = g_live; b; b = b->next)
        if (!block_fill_pages(b, npages))
            return false;
    g_pages_used = npages;
    return true;
}

/* Reserves n consecutive slots within one page. g_lock held. */
static uint32_t alloc_slots(uint32_t n) {
    uint32_t start = g_next_slot;
    if ((start & PAGE_MASK) + n > WEFT_STATS_PAGE_SLOTS)
        start = (start | PAGE_MASK) + 1; /* next page */
    if ((uint64_t)start + n > (uint64_t)WEFT_STATS_PAGE_SLOTS * WEFT_STATS_MAX_PAGES)
        return WEFT_STAT_INVALID;
    if (!ensure_pages(((start + n - 1) >> PAGE_SHIFT) + 1))
        return WEFT_STAT_INVALID;
    g_next_slot = start + n;
    return start;
}

/* ------------------------------------------------------------- registry */

static uint64_t name_hash(const char *name) {
    return weft_hash64(name, strlen(name), 0x5157a75u);
}

static uint64_t entry_hash(uint32_t name_idx, const char *labels) {
    return weft_hash64(labels, strlen(labels), 0x9e3779b97f4a7c15ull ^ name_idx);
}

static uint64_t index_key_hash(const stat_index *ix, uint32_t pos) {
    if (ix == &g_name_index)
        return name_hash(g_names[pos].name);
    return entry_hash(g_entries[pos].name_idx, g_entries[pos].labels);
}

static void index_put(stat_index *ix, uint64_t h, uint32_t pos) {
    uint32_t m = ix->cap - 1;
    uint32_t i = (uint32_t)h & m;
    while (ix->cells[i] != UINT32_MAX)
        i = (i + 1) & m;
    ix->cells[i] = pos;
    ix->used++;
}

/* Keeps the load factor at or below 1/2 for one more insert. */
static bool index_reserve(stat_index *ix) {
    if ((uint64_t)(ix->used + 1) * 2 <= ix->cap)
        return true;
    uint32_t ncap = ix->cap ? ix->cap * 2 : 64;
    uint32_t *cells = malloc((size_t)ncap * sizeof *cells);
    if (!cells)
        return false;
    memset(cells, 0xff, (size_t)ncap * sizeof *cells);
    uint32_t *old = ix->cells, ocap = ix->cap;
    ix->cells = cells;
    ix->cap = ncap;
    ix->used = 0;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i] != UINT32_MAX)
            index_put(ix, index_key_hash(ix, old[i]), old[i]);
    free(old);
    return true;
}

static void index_free(stat_index *ix) {
    free(ix->cells);
    ix->cells = NULL;
    ix->cap = ix->used = 0;
}

static uint32_t name_find(const char *name) {
    if (!g_name_index.cap)
        return UINT32_MAX;
    uint32_t m = g_name_index.cap - 1;
    for (uint32_t i = (uint32_t)name_hash(name) & m;; i = (i + 1) & m) {
        uint32_t pos = g_name_index.cells[i];
        if (pos == UINT32_MAX || strcmp(g_names[pos].name, name) == 0)
            return pos;
    }
}

static uint32_t entry_find(uint32_t name_idx, const char *labels) {
    if (!g_entry_index.cap)
        return UINT32_MAX;
    uint32_t m = g_entry_index.cap - 1;
    for (uint32_t i = (uint32_t)entry_hash(name_idx, labels) & m;; i = (i + 1) & m) {
        uint32_t pos = g_entry_index.cells[i];
        if (pos == UINT32_MAX ||
            (g_entries[pos].name_idx == name_idx && strcmp(g_entries[pos].labels, labels) == 0))
            return pos;
    }
}

static bool grow(void **arr, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap)
        return true;
    uint32_t ncap = *cap ? *cap * 2 : 64;
    void *n = realloc(*arr, (size_t)ncap * elem);
    if (!n)
        return false;
    *arr = n;
    *cap = ncap;
    return true;
}

/* Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool valid_name(const char *s) {
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* A label set is one line of text: no line breaks. */
static bool valid_labels(const char *s) {
    return strpbrk(s, "\r\n") == NULL;
}

static weft_stat_id stats_register(weft_stat_kind kind, const char *name, const char *labels,
                                   const char *help) {
    if (!labels)
        labels = "";
    if (!help)
        help = "";
    if (!valid_name(name) || !valid_labels(labels))
        return WEFT_STAT_INVALID;

    weft_stat_id id = WEFT_STAT_INVALID;
    pthread_mutex_lock(&g_lock);

    uint32_t ni = name_find(name);
    if (ni != UINT32_MAX && g_names[ni].kind != kind)
        goto out;
    if (ni != UINT32_MAX) {
        uint32_t ei = entry_find(ni, labels);
        if (ei != UINT32_MAX) {
            id = g_entries[ei].slot;
            goto out;
        }
    }

    /* New series: reserve everything that can fail before slots, so a
     * failed registration leaves no half-built entry behind. */
    if (!grow((void **)&g_entries, &g_entries_cap, g_nentries + 1, sizeof *g_entries) ||
        !index_reserve(&g_entry_index))
        goto out;
    char *labels_copy = strdup(labels);
    if (!labels_copy)
        goto out;
    char *name_copy = NULL, *help_copy = NULL;
    if (ni == UINT32_MAX) {
        name_copy = strdup(name);
        help_copy = strdup(help);
        if (!name_copy || !help_copy ||
            !grow((void **)&g_names, &g_names_cap, g_nnames + 1, sizeof *g_names) ||
            !index_reserve(&g_name_index)) {
            free(name_copy);
            free(help_copy);
            free(labels_copy);
            goto out;
        }
    }
    uint32_t slot = alloc_slots(kind == WEFT_STAT_HISTOGRAM ? WEFT_HIST_SLOTS : 1);
    if (slot == WEFT_STAT_INVALID) {
        free(name_copy);
        free(help_copy);
        free(labels_copy);
        goto out;
    }

    uint32_t ei = g_nentries++;
    if (ni == UINT32_MAX) {
        ni = g_nnames++;
        g_names[ni] = (stat_name){.name = name_copy,
                                  .help = help_copy,
                                  .kind = kind,
                                  .first_entry = ei,
                                  .last_entry = ei};
        index_put(&g_name_index, name_hash(name_copy), ni);
    } else {
        g_entries[g_names[ni].last_entry].next_same_name = ei;
        g_names[ni].last_entry = ei;
    }
    g_entries[ei] = (stat_entry){
        .labels = labels_copy, .name_idx = ni, .slot = slot, .next_same_name = UINT32_MAX};
    index_put(&g_entry_index, entry_hash(ni, labels_copy), ei);
    id = slot;

out:
    pthread_mutex_unlock(&g_lock);
    return id;
}

weft_stat_id weft_stats_counter(const char *name, const char *labels, const char *help) {
    return stats_register(WEFT_STAT_COUNTER, name, labels, help);
}

weft_stat_id weft_stats_gauge(const char *name, const char *labels, const char *help) {
    return stats_register(WEFT_STAT_GAUGE, name, labels, help);
}

weft_stat_id weft_stats_histogram(const char *name, const char *labels, const char *help) {
    return stats_register(WEFT_STAT_HISTOGRAM, name, labels, help);
}

/* ---------------------------------------------------------------- stage */

void weft_stats_stage_begin(void) {
    pthread_mutex_lock(&g_lock);
    g_staging = true;
    g_stage_names = g_nnames;
    g_stage_entries = g_nentries;
    g_stage_slot = g_next_slot;
    pthread_mutex_unlock(&g_lock);
}

/* Zeroes slots [from, to) of one block. g_lock held. */
static void block_zero(weft_stats_block *b, uint32_t from, uint32_t to) {
    for (uint32_t id = from; id < to; id++) {
        stat_slot *p = slot_ptr(b, id, memory_order_relaxed);
        if (p)
            atomic_store_explicit(p, 0, memory_order_relaxed);
    }
}

/* Forgets every series registered since the marks. g_lock held. */
static void stage_rollback(void) {
    for (uint32_t i = g_stage_entries; i < g_nentries; i++)
        free(g_entries[i].labels);
    for (uint32_t i = g_stage_names; i < g_nnames; i++) {
        free(g_names[i].name);
        free(g_names[i].help);
    }
    g_nentries = g_stage_entries;
    g_nnames = g_stage_names;
    /* Older names may have grown a staged tail: cut their chains. */
    for (uint32_t ni = 0; ni < g_nnames; ni++) {
        stat_name *n = &g_names[ni];
        if (n->last_entry < g_nentries)
            continue;
        uint32_t last = n->first_entry;
        while (g_entries[last].next_same_name < g_nentries)
            last = g_entries[last].next_same_name;
        g_entries[last].next_same_name = UINT32_MAX;
        n->last_entry = last;
    }
    /* Rebuild both indexes (same capacity) from the kept positions. */
    stat_index *ixs[2] = {&g_name_index, &g_entry_index};
    uint32_t counts[2] = {g_nnames, g_nentries};
    for (int k = 0; k < 2; k++) {
        stat_index *ix = ixs[k];
        if (!ix->cap)
            continue;
        memset(ix->cells, 0xff, (size_t)ix->cap * sizeof *ix->cells);
        ix->used = 0;
        for (uint32_t pos = 0; pos < counts[k]; pos++)
            index_put(ix, index_key_hash(ix, pos), pos);
    }
    /* The slots go back to the allocator clean (pages stay). Nobody wrote
     * them but, possibly, a filter's config_create on this thread. */
    block_zero(&g_retired, g_stage_slot, g_next_slot);
    block_zero(&g_global, g_stage_slot, g_next_slot);
    for (weft_stats_block *b = g_live; b; b = b->next)
        block_zero(b, g_stage_slot, g_next_slot);
    g_next_slot = g_stage_slot;
}

void weft_stats_stage_end(bool keep) {
    pthread_mutex_lock(&g_lock);
    if (g_staging && !keep)
        stage_rollback();
    g_staging = false;
    pthread_mutex_unlock(&g_lock);
}

/* Entry whose first slot is id, or NULL. g_lock held. */
static const stat_entry *entry_by_id(weft_stat_id id) {
    uint32_t lo = 0, hi = g_nentries;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g_entries[mid].slot < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < g_nentries && g_entries[lo].slot == id ? &g_entries[lo] : NULL;
}

/* --------------------------------------------------------------- blocks */

weft_stats_block *weft_stats_block_new(void) {
    weft_stats_block *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    for (uint32_t i = 0; i < WEFT_STATS_MAX_PAGES; i++)
        atomic_init(&b->pages[i], NULL);
    pthread_mutex_lock(&g_lock);
    if (!block_fill_pages(b, g_pages_used)) {
        pthread_mutex_unlock(&g_lock);
        block_free_pages(b);
        free(b);
        return NULL;
    }
    b->next = g_live;
    if (g_live)
        g_live->prev = b;
    g_live = b;
    pthread_mutex_unlock(&g_lock);
    return b;
}

/* Adds n slots from id of b into the retired block. g_lock held. */
static void fold_slots(const weft_stats_block *b, uint32_t id, uint32_t n) {
    stat_slot *dst = slot_ptr(&g_retired, id, memory_order_relaxed);
    stat_slot *src = slot_ptr(b, id, memory_order_relaxed);
    if (!dst || !src)
        return;
    for (uint32_t i = 0; i < n; i++)
        slot_add(&dst[i], atomic_load_explicit(&src[i], memory_order_relaxed));
}

void weft_stats_block_free(weft_stats_block *b) {
    if (!b)
        return;
    if (tls_block == b)
        tls_block = NULL;
    pthread_mutex_lock(&g_lock);
    for (uint32_t i = 0; i < g_nentries; i++) {
        const stat_entry *e = &g_entries[i];
        switch (g_names[e->name_idx].kind) {
        case WEFT_STAT_COUNTER:
            fold_slots(b, e->slot, 1);
            break;
        case WEFT_STAT_HISTOGRAM:
            fold_slots(b, e->slot, WEFT_HIST_SLOTS);
            break;
        case WEFT_STAT_GAUGE:
            break; /* the owner is gone: its deltas go too */
        }
    }
    if (b->prev)
        b->prev->next = b->next;
    else
        g_live = b->next;
    if (b->next)
        b->next->prev = b->prev;
    pthread_mutex_unlock(&g_lock);
    block_free_pages(b);
    free(b);
}

void weft_stats_set_thread_block(weft_stats_block *b) {
    tls_block = b;
}

weft_stats_block *weft_stats_thread_block(void) {
    return tls_block;
}

/* ------------------------------------------------------------- hot path */

void weft_stats_inc(weft_stats_block *b, weft_stat_id id, uint64_t v) {
    if (!b)
        return;
    stat_slot *p = slot_ptr(b, id, memory_order_acquire);
    if (p)
        slot_add(p, v);
}

void weft_stats_gauge_add(weft_stats_block *b, weft_stat_id id, int64_t delta) {
    if (!b)
        return;
    stat_slot *p = slot_ptr(b, id, memory_order_acquire);
    if (p)
        slot_add(p, (uint64_t)delta); /* two's complement wrap = signed add */
}

static unsigned hist_bucket(uint64_t value_us) {
    unsigned lo = 0, hi = WEFT_HIST_BUCKETS; /* first bound >= value, or BUCKETS */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (hist_bounds_us[mid] < value_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void weft_stats_observe_us(weft_stats_block *b, weft_stat_id id, uint64_t value_us) {
    if (!b)
        return;
    stat_slot *p = slot_ptr(b, id, memory_order_acquire);
    if (!p || (id & PAGE_MASK) + WEFT_HIST_SLOTS > WEFT_STATS_PAGE_SLOTS)
        return;
    unsigned k = hist_bucket(value_us);
    if (k < WEFT_HIST_BUCKETS) /* beyond the last bound: only +Inf (count) */
        slot_add(&p[k], 1);
    slot_add(&p[HIST_SUM_SLOT], value_us);
    slot_add(&p[HIST_COUNT_SLOT], 1);
}

void weft_stats_gauge_set(weft_stat_id id, int64_t value) {
    stat_slot *p = slot_ptr(&g_global, id, memory_order_acquire);
    if (p)
        atomic_store_explicit(p, (uint64_t)value, memory_order_relaxed);
}

/* ------------------------------------------------------------- reading */

/* Sum of slot id over live blocks, plus the retired block if asked. g_lock held. */
static uint64_t sum_slot(uint32_t id, bool with_retired) {
    uint64_t v = with_retired ? slot_read(&g_retired, id) : 0;
    for (const weft_stats_block *b = g_live; b; b = b->next)
        v += slot_read(b, id);
    return v;
}

static int64_t gauge_sum(uint32_t id) {
    return (int64_t)(slot_read(&g_global, id) + sum_slot(id, false));
}

uint64_t weft_stats_counter_value(weft_stat_id id) {
    uint64_t v = 0;
    pthread_mutex_lock(&g_lock);
    const stat_entry *e = entry_by_id(id);
    if (e) {
        switch (g_names[e->name_idx].kind) {
        case WEFT_STAT_COUNTER:
            v = sum_slot(id, true);
            break;
        case WEFT_STAT_HISTOGRAM:
            v = sum_slot(id + HIST_COUNT_SLOT, true);
            break;
        case WEFT_STAT_GAUGE:
            v = (uint64_t)gauge_sum(id);
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return v;
}

int64_t weft_stats_gauge_value(weft_stat_id id) {
    int64_t v = 0;
    pthread_mutex_lock(&g_lock);
    const stat_entry *e = entry_by_id(id);
    if (e && g_names[e->name_idx].kind == WEFT_STAT_GAUGE)
        v = gauge_sum(id);
    pthread_mutex_unlock(&g_lock);
    return v;
}

/* ------------------------------------------------------------ rendering */

/* Microseconds as decimal seconds, exact, without trailing zeros:
 * 1500000 -> "1.5", 500 -> "0.0005", 0 -> "0". buf holds >= 32 bytes. */
static const char *us_to_seconds(uint64_t us, char *buf, size_t len) {
    uint64_t whole = us / 1000000u;
    unsigned frac = (unsigned)(us % 1000000u);
    if (!frac) {
        snprintf(buf, len, "%llu", (unsigned long long)whole);
        return buf;
    }
    int digits = 6;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(buf, len, "%llu.%0*u", (unsigned long long)whole, digits, frac);
    return buf;
}

static int add_escaped_help(struct evbuffer *out, const char *s) {
    const char *run = s;
    for (const char *p = s;; p++) {
        if (*p != '\\' && *p != '\n' && *p != '\0')
            continue;
        if (p > run && evbuffer_add(out, run, (size_t)(p - run)) < 0)
            return -1;
        if (*p == '\0')
            return 0;
        if (evbuffer_add(out, *p == '\\' ? "\\\\" : "\\n", 2) < 0)
            return -1;
        run = p + 1;
    }
}

static int render_histogram(struct evbuffer *out, const char *name, const char *labels,
                            uint32_t id) {
    const char *sep = *labels ? "," : "";
    char num[32];
    uint64_t cum = 0;
    for (unsigned k = 0; k < WEFT_HIST_BUCKETS; k++) {
        cum += sum_slot(id + k, true);
        if (evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep,
                                us_to_seconds(hist_bounds_us[k], num, sizeof num),
                                (unsigned long long)cum) < 0)
            return -1;
    }
    uint64_t count = sum_slot(id + HIST_COUNT_SLOT, true);
    if (count < cum) /* a concurrent writer may be between bucket and count */
        count = cum;
    uint64_t sum_us = sum_slot(id + HIST_SUM_SLOT, true);
    if (evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                            (unsigned long long)count) < 0)
        return -1;
    const char *lo = *labels ? "{" : "", *lc = *labels ? "}" : "";
    if (evbuffer_add_printf(out, "%s_sum%s%s%s %s\n", name, lo, labels, lc,
                            us_to_seconds(sum_us, num, sizeof num)) < 0 ||
        evbuffer_add_printf(out, "%s_count%s%s%s %llu\n", name, lo, labels, lc,
                            (unsigned long long)count) < 0)
        return -1;
    return 0;
}

static int render_locked(struct evbuffer *out) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    uint32_t nnames = g_staging ? g_stage_names : g_nnames;
    uint32_t nentries = g_staging ? g_stage_entries : g_nentries;
    for (uint32_t ni = 0; ni < nnames; ni++) {
        const stat_name *n = &g_names[ni];
        if (*n->help) {
            if (evbuffer_add_printf(out, "# HELP %s ", n->name) < 0 ||
                add_escaped_help(out, n->help) < 0 || evbuffer_add(out, "\n", 1) < 0)
                return -1;
        }
        if (evbuffer_add_printf(out, "# TYPE %s %s\n", n->name, type_names[n->kind]) < 0)
            return -1;
        for (uint32_t ei = n->first_entry; ei != UINT32_MAX && ei < nentries;
             ei = g_entries[ei].next_same_name) {
            const stat_entry *e = &g_entries[ei];
            const char *lo = *e->labels ? "{" : "", *lc = *e->labels ? "}" : "";
            int rc = 0;
            switch (n->kind) {
            case WEFT_STAT_COUNTER:
                rc = evbuffer_add_printf(out, "%s%s%s%s %llu\n", n->name, lo, e->labels, lc,
                                         (unsigned long long)sum_slot(e->slot, true));
                break;
            case WEFT_STAT_GAUGE:
                rc = evbuffer_add_printf(out, "%s%s%s%s %lld\n", n->name, lo, e->labels, lc,
                                         (long long)gauge_sum(e->slot));
                break;
            case WEFT_STAT_HISTOGRAM:
                rc = render_histogram(out, n->name, e->labels, e->slot);
                break;
            }
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

int weft_stats_render_prometheus(struct evbuffer *out) {
    if (!out)
        return -1;
    pthread_mutex_lock(&g_lock);
    int rc = render_locked(out);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

/* ---------------------------------------------------------------- reset */

void weft_stats_reset_for_tests(void) {
    pthread_mutex_lock(&g_lock);
    while (g_live) {
        weft_stats_block *b = g_live;
        g_live = b->next;
        block_free_pages(b);
        free(b);
    }
    block_free_pages(&g_retired);
    block_free_pages(&g_global);
    for (uint32_t i = 0; i < g_nentries; i++)
        free(g_entries[i].labels);
    for (uint32_t i = 0; i < g_nnames; i++) {
        free(g_names[i].name);
        free(g_names[i].help);
    }
    free(g_entries);
    free(g_names);
    g_entries = NULL;
    g_names = NULL;
    g_nentries = g_entries_cap = g_nnames = g_names_cap = 0;
    index_free(&g_name_index);
    index_free(&g_entry_index);
    g_next_slot = 0;
    g_pages_used = 0;
    g_staging = false;
    pthread_mutex_unlock(&g_lock);
    tls_block = NULL;
}
