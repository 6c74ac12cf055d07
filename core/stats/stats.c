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
#include "stats/stats_fc.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "wsh_rules.h"

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

/* struct weft_stats_block: stats_fc.h (its page lookup is inline there) */

typedef struct {
    char *name;
    char *help;
    weft_stat_kind kind;
    uint32_t first_entry, last_entry; /* series of this name, in registration order */
} stat_name;

typedef struct {
    char *labels;        /* the key: the rendered label set; a family's adds "\x1f<signature>" */
    uint32_t labels_len; /* length of the rendered label set in labels */
    uint32_t name_idx;
    uint32_t slot;
    uint32_t next_same_name; /* UINT32_MAX ends the chain */
    uint32_t fam;            /* family index (g_fams), UINT32_MAX for a plain series */
    uint32_t stage;          /* scoped: the last config stage that registered it */
    uint32_t prev_stage;     /* stage and scoped before the open stage claimed it: */
    bool prev_scoped;        /* restored if that stage is rolled back */
    bool scoped;             /* registered by a config stage (see stage_claim) */
    bool hidden;             /* scoped, and the last kept stage did not register it */
} stat_entry;

/* A labelled family (see stats.h). Series records are immutable once
 * published; cells and by_idx are written under mu, read lock-free. */
typedef struct fam_series {
    uint64_t hash;
    uint32_t idx; /* series number: slot = fam->slots[idx] */
    uint32_t len; /* bytes in data */
    char data[];  /* per label value: uint32_t length (native order), bytes */
} fam_series;

typedef struct stat_family {
    weft_stat_kind kind;
    uint32_t n_labels;
    uint32_t max_series;
    uint32_t mask; /* cells - 1 */
    char *label_names[WEFT_STATS_FAMILY_MAX_LABELS];
    uint32_t *slots; /* max_series first slots, reserved at registration */
    uint32_t overflow_slot;
    weft_stat_id overflow_counter;
    _Atomic uint32_t nseries;
    _Atomic uint32_t overflow_used; /* 1 once the overflow series took an update */
    _Atomic(fam_series *) *cells;   /* open addressing by hash */
    _Atomic(fam_series *) *by_idx;  /* creation order, for rendering */
    pthread_mutex_t mu;             /* creation of a series only */
} stat_family;

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

/* Families by id; a published pointer never changes until reset or the
 * rollback of the stage that made it. */
static _Atomic(stat_family *) g_fams[WEFT_STATS_MAX_FAMILIES];
static uint32_t g_nfams;

static uint32_t g_next_slot;  /* first free slot */
static uint32_t g_pages_used; /* pages allocated in every block */

/* Staging (weft_stats_stage_begin): series registered since the marks
 * are hidden from scrapes until the stage ends, and forgotten if it ends
 * without keeping them. */
static bool g_staging;
static uint32_t g_stage_names, g_stage_entries, g_stage_slot, g_stage_fams;
/* Scoped series (stage_claim): a kept stage shows what it registered and
 * hides the scoped series it did not, so the series of a removed filter,
 * listener or cluster leave the output on reload. */
static uint32_t g_stage_id;
static pthread_t g_stage_thread;

static weft_stats_block *g_live;   /* head of the live list */
static weft_stats_block g_retired; /* folded counters/histograms of freed blocks */
static weft_stats_block g_global;  /* weft_stats_gauge_set values */

_Thread_local weft_stats_block *weft_stats_tls_block;

/* The per-thread family cache (stats_fc.h) is valid while
 * weft_stats_fc_epoch stays: bumped (under g_lock) whenever a family or a
 * block is freed or slots go back to the allocator, so no cached slot
 * pointer outlives what it points at. */
static void fc_forget_all(void);

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
#define slot_add weft_stats_slot_add

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
    return strpbrk(s, "\r\n\x1f") == NULL; /* \x1f separates a family's signature */
}

/* The copies a new entry needs (and its name's, when ni is UINT32_MAX),
 * with room in the arrays and indexes: everything that can fail, before
 * slots are taken. g_lock held. */
typedef struct {
    char *key, *name, *help;
} entry_copies;

static void copies_free(entry_copies *c) {
    free(c->key);
    free(c->name);
    free(c->help);
}

static bool entry_reserve(uint32_t ni, const char *name, const char *key, const char *help,
                          entry_copies *c) {
    *c = (entry_copies){0};
    if (!grow((void **)&g_entries, &g_entries_cap, g_nentries + 1, sizeof *g_entries) ||
        !index_reserve(&g_entry_index) || !(c->key = strdup(key)))
        return false;
    if (ni == UINT32_MAX &&
        (!(c->name = strdup(name)) || !(c->help = strdup(help)) ||
         !grow((void **)&g_names, &g_names_cap, g_nnames + 1, sizeof *g_names) ||
         !index_reserve(&g_name_index))) {
        copies_free(c);
        return false;
    }
    return true;
}

/* Adds the entry reserved by entry_reserve (takes the copies). g_lock held. */
static uint32_t entry_commit(uint32_t ni, weft_stat_kind kind, entry_copies *c, uint32_t labels_len,
                             uint32_t slot, uint32_t fam) {
    uint32_t ei = g_nentries++;
    if (ni == UINT32_MAX) {
        ni = g_nnames++;
        g_names[ni] = (stat_name){
            .name = c->name, .help = c->help, .kind = kind, .first_entry = ei, .last_entry = ei};
        index_put(&g_name_index, name_hash(c->name), ni);
    } else {
        g_entries[g_names[ni].last_entry].next_same_name = ei;
        g_names[ni].last_entry = ei;
    }
    g_entries[ei] = (stat_entry){.labels = c->key,
                                 .labels_len = labels_len,
                                 .name_idx = ni,
                                 .slot = slot,
                                 .next_same_name = UINT32_MAX,
                                 .fam = fam};
    index_put(&g_entry_index, entry_hash(ni, c->key), ei);
    *c = (entry_copies){0};
    return ei;
}

/* Marks entry ei as registered by the open stage when the stage's own
 * thread (the one building the config) registers it: a series made or
 * found by a config build. Other threads' registrations (a worker's
 * gauge, the process counters) are never scoped. g_lock held. */
static void stage_claim(uint32_t ei) {
    stat_entry *e = &g_entries[ei];
    if (!g_staging || !pthread_equal(pthread_self(), g_stage_thread) ||
        (e->scoped && e->stage == g_stage_id))
        return;
    e->prev_stage = e->stage;
    e->prev_scoped = e->scoped;
    e->scoped = true;
    e->stage = g_stage_id;
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
            id = g_entries[ei].fam == UINT32_MAX ? g_entries[ei].slot : WEFT_STAT_INVALID;
            if (id != WEFT_STAT_INVALID)
                stage_claim(ei);
            goto out;
        }
    }
    entry_copies c;
    if (!entry_reserve(ni, name, labels, help, &c))
        goto out;
    uint32_t slot = alloc_slots(kind == WEFT_STAT_HISTOGRAM ? WEFT_HIST_SLOTS : 1);
    if (slot == WEFT_STAT_INVALID) {
        copies_free(&c);
        goto out;
    }
    stage_claim(entry_commit(ni, kind, &c, (uint32_t)strlen(labels), slot, UINT32_MAX));
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

static void hist_add(stat_slot *p, uint64_t value_us);

/* ------------------------------------------------------------- families */

/* Whether label `n` is set in a rendered label set ("a=\"1\",b=\"2\""). */
static bool labels_have(const char *labels, const char *n) {
    size_t len = strlen(n);
    for (const char *p = labels; (p = strstr(p, n)); p++)
        if ((p == labels || p[-1] == ',') && p[len] == '=')
            return true;
    return false;
}

static void fam_free(stat_family *f) {
    if (!f)
        return;
    uint32_t n = f->by_idx ? atomic_load_explicit(&f->nseries, memory_order_relaxed) : 0;
    for (uint32_t i = 0; i < n; i++)
        free(atomic_load_explicit(&f->by_idx[i], memory_order_relaxed));
    for (uint32_t i = 0; i < WEFT_STATS_FAMILY_MAX_LABELS; i++)
        free(f->label_names[i]);
    free(f->slots);
    free(f->cells);
    free(f->by_idx);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static stat_family *fam_new(weft_stat_kind kind, const char *const *label_names, size_t n_labels,
                            uint32_t max_series) {
    stat_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->kind = kind;
    f->n_labels = (uint32_t)n_labels;
    f->max_series = max_series;
    uint32_t cap = 4;
    while (cap < 2 * max_series)
        cap *= 2;
    f->mask = cap - 1;
    f->slots = malloc((size_t)max_series * sizeof *f->slots);
    f->cells = malloc((size_t)cap * sizeof *f->cells);
    f->by_idx = malloc((size_t)max_series * sizeof *f->by_idx);
    bool ok = f->slots && f->cells && f->by_idx;
    for (size_t i = 0; ok && i < n_labels; i++)
        ok = (f->label_names[i] = strdup(label_names[i])) != NULL;
    if (!ok) {
        fam_free(f);
        return NULL;
    }
    for (uint32_t i = 0; i < cap; i++)
        atomic_init(&f->cells[i], NULL);
    for (uint32_t i = 0; i < max_series; i++)
        atomic_init(&f->by_idx[i], NULL);
    atomic_init(&f->nseries, 0);
    atomic_init(&f->overflow_used, 0);
    f->overflow_counter = WEFT_STAT_INVALID;
    return f;
}

/* "<kind>;<max>;a,b": what must match for a registration to find a family. */
static bool fam_key(char *out, size_t len, const char *labels, weft_stat_kind kind,
                    const char *const *label_names, size_t n, uint32_t max_series) {
    int w = snprintf(out, len, "%s\x1f%d;%u;", labels, (int)kind, (unsigned)max_series);
    for (size_t i = 0; i < n && w > 0 && (size_t)w < len; i++)
        w += snprintf(out + w, len - (size_t)w, "%s%s", i ? "," : "", label_names[i]);
    return w > 0 && (size_t)w < len;
}

/* Whether entry e is in use by the registry's current users: shown and
 * not scoped, or registered by the open stage (a series of the running
 * config that the stage being built has not registered again is not: a
 * reload may change a family's labels). g_lock held. */
static bool entry_in_use(const stat_entry *e) {
    if (e->hidden)
        return false;
    return !g_staging || !e->scoped || e->stage == g_stage_id;
}

/* Another family than entry `self` of this name with the same constant
 * labels in use. g_lock held. */
static bool fam_clash(uint32_t ni, const char *labels, uint32_t self) {
    size_t len = strlen(labels);
    for (uint32_t ei = g_names[ni].first_entry; ei != UINT32_MAX;
         ei = g_entries[ei].next_same_name) {
        const stat_entry *e = &g_entries[ei];
        if (ei != self && e->fam != UINT32_MAX && e->labels_len == len &&
            memcmp(e->labels, labels, len) == 0 && entry_in_use(e))
            return true;
    }
    return false;
}

/* Slots of a new family: the overflow series then max_series series.
 * g_lock held; on failure the allocator is left as it was. */
static bool fam_alloc_slots(stat_family *f) {
    uint32_t mark = g_next_slot, per = f->kind == WEFT_STAT_HISTOGRAM ? WEFT_HIST_SLOTS : 1;
    f->overflow_slot = alloc_slots(per);
    for (uint32_t i = 0; f->overflow_slot != WEFT_STAT_INVALID && i < f->max_series; i++)
        if ((f->slots[i] = alloc_slots(per)) == WEFT_STAT_INVALID) {
            g_next_slot = mark;
            return false;
        }
    return f->overflow_slot != WEFT_STAT_INVALID;
}

/* A new family is complete (its overflow counter included) before it is
 * published: workers read it without the lock. An existing one is left as
 * it is (its overflow counter is the same registered stat). */
static int fam_register_locked(weft_stat_kind kind, const char *name, const char *labels,
                               const char *key, const char *help, const char *const *label_names,
                               size_t n_labels, uint32_t max_series, weft_stat_id overflow_counter,
                               weft_stat_family_id *out) {
    uint32_t ni = name_find(name);
    if (ni != UINT32_MAX && g_names[ni].kind != kind)
        return WEFT_STATS_EINVAL;
    if (ni != UINT32_MAX) {
        uint32_t ei = entry_find(ni, key);
        if (fam_clash(ni, labels, ei))
            return WEFT_STATS_EINVAL;
        if (ei != UINT32_MAX) {
            stage_claim(ei);
            *out = g_entries[ei].fam;
            return WEFT_STATS_OK;
        }
    }
    if (g_nfams >= WEFT_STATS_MAX_FAMILIES)
        return WEFT_STATS_ELIMIT;
    stat_family *f = fam_new(kind, label_names, n_labels, max_series);
    entry_copies c;
    if (!f || !entry_reserve(ni, name, key, help, &c)) {
        fam_free(f);
        return WEFT_STATS_ENOMEM;
    }
    if (!fam_alloc_slots(f)) {
        copies_free(&c);
        fam_free(f);
        return WEFT_STATS_ELIMIT;
    }
    f->overflow_counter = overflow_counter;
    uint32_t id = g_nfams++;
    stage_claim(entry_commit(ni, kind, &c, (uint32_t)strlen(labels), f->overflow_slot, id));
    atomic_store_explicit(&g_fams[id], f, memory_order_release);
    *out = id;
    return WEFT_STATS_OK;
}

int weft_stats_family(weft_stat_kind kind, const char *name, const char *labels, const char *help,
                      const char *const *label_names, size_t n_labels, uint32_t max_series,
                      weft_stat_family_id *out) {
    if (out)
        *out = WEFT_STAT_INVALID;
    if (!labels)
        labels = "";
    if (!help)
        help = "";
    if (!out || (unsigned)kind > WEFT_STAT_HISTOGRAM || !valid_name(name) ||
        !valid_labels(labels) || n_labels > WEFT_STATS_FAMILY_MAX_LABELS ||
        (n_labels && !label_names) || max_series < 1 || max_series > WEFT_STATS_FAMILY_MAX_SERIES)
        return WEFT_STATS_EINVAL;
    for (size_t i = 0; i < n_labels; i++) {
        if (!wsh_stat_label_name_ok(label_names[i]) || labels_have(labels, label_names[i]))
            return WEFT_STATS_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[i], label_names[j]) == 0)
                return WEFT_STATS_EINVAL;
    }
    char key[1024], oname[256];
    if (!fam_key(key, sizeof key, labels, kind, label_names, n_labels, max_series))
        return WEFT_STATS_EINVAL;
    /* <name without _total>_overflow_total: what was folded into the overflow series */
    size_t base = strlen(name);
    if (base > 6 && strcmp(name + base - 6, "_total") == 0)
        base -= 6;
    if (snprintf(oname, sizeof oname, "%.*s_overflow_total", (int)base, name) >= (int)sizeof oname)
        return WEFT_STATS_EINVAL;
    char ohelp[320];
    snprintf(ohelp, sizeof ohelp, "Updates of %s folded into its overflow series", name);
    weft_stat_id oc = stats_register(WEFT_STAT_COUNTER, oname, labels, ohelp);
    if (oc == WEFT_STAT_INVALID)
        return WEFT_STATS_EINVAL;

    pthread_mutex_lock(&g_lock);
    int rc = fam_register_locked(kind, name, labels, key, help, label_names, n_labels, max_series,
                                 oc, out);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static inline stat_family *fam_get(weft_stat_family_id id) {
    return id < WEFT_STATS_MAX_FAMILIES ? atomic_load_explicit(&g_fams[id], memory_order_acquire)
                                        : NULL;
}

#define load64 weft_stats_load64
#define load32 weft_stats_load32
/* The last 1..8 bytes of a value as one word: overlapping loads cover
 * every byte (lengths are mixed in separately, so they need not be
 * unique on their own), as wyhash reads its tail. */
static inline uint64_t tail_word(const unsigned char *p, size_t len) {
    if (len >= 4)
        return load32(p) << 32 | load32(p + len - 4);
    return (uint64_t)p[0] << 16 | (uint64_t)p[len >> 1] << 8 | p[len - 1];
}

/* The hot path's hash of label values: 8 bytes per multiply, lengths
 * mixed in so ("ab","c") and ("a","bc") differ, one finalizer for the
 * table's low bits. */
#define HK 0x9e3779b97f4a7c15ull
static inline uint64_t hash_word(uint64_t h, uint64_t w) {
    h = (h ^ w) * HK;
    return h ^ (h >> 29);
}

static inline uint64_t values_hash(const weft_sv *v, size_t n) {
    uint64_t h = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)v[i].p;
        size_t len = v[i].len;
        h = hash_word(h, len);
        for (; len > 8; p += 8, len -= 8)
            h = hash_word(h, load64(p));
        if (len)
            h = hash_word(h, len == 8 ? load64(p) : tail_word(p, len));
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
}

/* Equal bytes: up to 16 with two overlapping loads per side, longer with
 * memcmp. */
static inline bool bytes_eq(const char *a, const char *b, size_t n) {
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    if (n > 16)
        return memcmp(a, b, n) == 0;
    if (n >= 8)
        return load64(x) == load64(y) && load64(x + n - 8) == load64(y + n - 8);
    return !n || tail_word(x, n) == tail_word(y, n);
}

static inline bool series_is(const fam_series *s, uint64_t h, const weft_sv *v, size_t n) {
    if (s->hash != h)
        return false;
    const char *p = s->data;
    for (size_t i = 0; i < n; i++) {
        uint32_t len;
        memcpy(&len, p, sizeof len);
        p += sizeof len;
        if (len != v[i].len || !bytes_eq(p, v[i].p, len))
            return false;
        p += len;
    }
    return true;
}

/* The series with these values, or NULL. Lock-free. */
static inline fam_series *fam_find(stat_family *f, uint64_t h, const weft_sv *v, size_t n) {
    for (uint32_t i = (uint32_t)h & f->mask;; i = (i + 1) & f->mask) {
        fam_series *s = atomic_load_explicit(&f->cells[i], memory_order_acquire);
        if (!s || series_is(s, h, v, n))
            return s;
    }
}

/* Makes the series (first update with these values), or NULL when the
 * family is full or memory is short: the caller folds the update. */
static fam_series *fam_create(stat_family *f, uint64_t h, const weft_sv *v, size_t n) {
    pthread_mutex_lock(&f->mu);
    fam_series *s = fam_find(f, h, v, n); /* another thread may have made it */
    uint32_t idx = atomic_load_explicit(&f->nseries, memory_order_relaxed);
    if (s || idx >= f->max_series)
        goto out;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += sizeof(uint32_t) + v[i].len;
    s = malloc(sizeof *s + len);
    if (!s)
        goto out;
    s->hash = h;
    s->idx = idx;
    s->len = (uint32_t)len;
    char *p = s->data;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)v[i].len;
        memcpy(p, &l, sizeof l);
        if (l)
            memcpy(p + sizeof l, v[i].p, l);
        p += sizeof l + l;
    }
    atomic_store_explicit(&f->by_idx[idx], s, memory_order_release);
    uint32_t i = (uint32_t)h & f->mask;
    while (atomic_load_explicit(&f->cells[i], memory_order_relaxed))
        i = (i + 1) & f->mask;
    atomic_store_explicit(&f->cells[i], s, memory_order_release);
    atomic_store_explicit(&f->nseries, idx + 1, memory_order_release);
out:
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* The series of these values, made if new and there is room; NULL: the
 * overflow series (or *bad: a value with ptr NULL and len > 0). */
static fam_series *fam_series_of(stat_family *f, const weft_sv *v, size_t n, bool *bad) {
    bool fold = false;
    *bad = false;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].p && v[i].len) {
            *bad = true;
            return NULL;
        }
        fold |= v[i].len > WEFT_STATS_LABEL_VALUE_MAX;
    }
    if (fold)
        return NULL;
    uint64_t h = values_hash(v, n);
    fam_series *s = fam_find(f, h, v, n);
    if (!s && atomic_load_explicit(&f->nseries, memory_order_relaxed) < f->max_series)
        s = fam_create(f, h, v, n);
    return s;
}

/* First slot of the series an update goes to (folded: the overflow
 * series, counted; *made false), or WEFT_STAT_INVALID for a bad value. */
static uint32_t fam_slot(weft_stats_block *b, stat_family *f, const weft_sv *v, size_t n,
                         bool *series) {
    bool bad;
    fam_series *s = fam_series_of(f, v, n, &bad);
    if (bad)
        return WEFT_STAT_INVALID;
    *series = s != NULL;
    if (s)
        return f->slots[s->idx];
    if (!atomic_load_explicit(&f->overflow_used, memory_order_relaxed))
        atomic_store_explicit(&f->overflow_used, 1, memory_order_relaxed);
    weft_stats_inc(b, f->overflow_counter, 1);
    return f->overflow_slot;
}

/* ------------------------------------------------- per-thread family cache
 * (stats_fc.h) */

_Thread_local weft_stats_fc_entry weft_stats_tls_fc[WEFT_STATS_FC_ENTRIES];
_Atomic uint64_t weft_stats_fc_epoch = 1;

static void fc_forget_all(void) {
    memset(weft_stats_tls_fc, 0, sizeof weft_stats_tls_fc);
}

static void fc_fill(weft_stats_fc_entry *c, uint64_t key, uint64_t epoch, stat_slot *slot,
                    const weft_sv *v, size_t n) {
    c->epoch = 0;
    if (!slot || n > WEFT_STATS_FC_LABELS)
        return;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len > WEFT_STATS_FC_VALUE_MAX)
            return;
        c->v[i].len = v[i].len;
        c->v[i].w[0] = c->v[i].w[1] = 0;
        if (v[i].len)
            weft_stats_value_words((const unsigned char *)v[i].p, v[i].len, c->v[i].w);
    }
    c->key = key;
    c->n = n;
    c->slot = slot;
    c->epoch = epoch;
}

static inline void fam_add(stat_slot *p, weft_stat_kind kind, uint64_t arg) {
    if (kind == WEFT_STAT_HISTOGRAM)
        hist_add(p, arg);
    else
        slot_add(p, arg); /* a gauge's delta wraps as weft_stats_gauge_add's */
}

/* The update without the cache's help; fills entry c (NULL: none) when
 * b is this thread's block and the update went to a series. */
static int fam_update_slow(weft_stats_block *b, weft_stat_family_id id, weft_stat_kind kind,
                           const weft_sv *v, size_t n, uint64_t arg, weft_stats_fc_entry *c,
                           uint64_t epoch) {
    stat_family *f = fam_get(id);
    if (!f || f->kind != kind || n != f->n_labels || (n && !v))
        return WEFT_STATS_EINVAL;
    if (!b) /* a thread without a block: dropped, like weft_stats_inc */
        return WEFT_STATS_OK;
    bool series = false;
    uint32_t slot = fam_slot(b, f, v, n, &series);
    if (slot == WEFT_STAT_INVALID)
        return WEFT_STATS_EINVAL;
    stat_slot *p = slot_ptr(b, slot, memory_order_acquire);
    if (p)
        fam_add(p, kind, arg);
    if (c && series && b == weft_stats_tls_block)
        fc_fill(c, weft_stats_fc_key(id, kind), epoch, p, v, n);
    return WEFT_STATS_OK;
}

int weft_stats_family_update_miss(weft_stat_family_id id, weft_stat_kind kind, const void *pairs,
                                  size_t n, uint64_t arg, weft_stats_fc_entry *c, uint64_t epoch) {
    weft_sv v[WEFT_STATS_FAMILY_MAX_LABELS];
    if (n > WEFT_STATS_FAMILY_MAX_LABELS || (n && !pairs))
        return WEFT_STATS_EINVAL;
    for (size_t i = 0; i < n; i++)
        v[i] = weft_stats_pair_at(pairs, i);
    return fam_update_slow(weft_stats_tls_block, id, kind, v, n, arg, c, epoch);
}

int weft_stats_family_update_here(weft_stat_family_id id, weft_stat_kind kind, const void *pairs,
                                  size_t n, uint64_t arg) {
    weft_stats_fc_entry *c = weft_stats_fc_entry_of(id);
    uint64_t epoch = atomic_load_explicit(&weft_stats_fc_epoch, memory_order_relaxed);
    stat_slot *p = weft_stats_fc_lookup(c, id, kind, pairs, n, epoch);
    if (p) {
        fam_add(p, kind, arg);
        return WEFT_STATS_OK;
    }
    return weft_stats_family_update_miss(id, kind, pairs, n, arg, c, epoch);
}

int weft_stats_family_update(weft_stats_block *b, weft_stat_family_id id, weft_stat_kind kind,
                             const weft_sv *v, size_t n, uint64_t arg) {
    if (b && b == weft_stats_tls_block)
        return weft_stats_family_update_here(id, kind, v, n, arg);
    return fam_update_slow(b, id, kind, v, n, arg, NULL, 0);
}

/* ------------------------------------------------------ series handles */

int weft_stats_series_resolve(weft_stat_family_id id, const void *pairs, size_t n,
                              weft_stats_series_ref *out) {
    weft_sv v[WEFT_STATS_FAMILY_MAX_LABELS];
    if (out)
        *out = 0;
    stat_family *f = fam_get(id);
    if (!out || !f || n != f->n_labels || (n && !pairs))
        return WEFT_STATS_EINVAL;
    for (size_t i = 0; i < n; i++)
        v[i] = weft_stats_pair_at(pairs, i);
    bool bad;
    fam_series *s = fam_series_of(f, v, n, &bad);
    if (bad)
        return WEFT_STATS_EINVAL;
    *out = WEFT_STATS_SERIES_VALID | (uint64_t)f->kind << WEFT_STATS_SERIES_KIND_SHIFT |
           (uint64_t)id << 32 |
           (s ? f->slots[s->idx] : WEFT_STATS_SERIES_OVERFLOW | f->overflow_slot);
    return WEFT_STATS_OK;
}

void weft_stats_series_update_slow(weft_stats_series_ref r, weft_stat_kind kind, uint64_t arg) {
    if (!(r & WEFT_STATS_SERIES_VALID) ||
        (weft_stat_kind)(r >> WEFT_STATS_SERIES_KIND_SHIFT & 3) != kind || !weft_stats_tls_block)
        return;
    if (r & WEFT_STATS_SERIES_OVERFLOW) {
        stat_family *f = fam_get((uint32_t)(r >> 32) & 0xffff);
        if (!f)
            return;
        if (!atomic_load_explicit(&f->overflow_used, memory_order_relaxed))
            atomic_store_explicit(&f->overflow_used, 1, memory_order_relaxed);
        weft_stats_inc(weft_stats_tls_block, f->overflow_counter, 1);
    }
    stat_slot *p = slot_ptr(weft_stats_tls_block, (uint32_t)r, memory_order_acquire);
    if (p)
        fam_add(p, kind, arg);
}

/* ---------------------------------------------------------------- stage */

void weft_stats_stage_begin(void) {
    pthread_mutex_lock(&g_lock);
    g_staging = true;
    g_stage_id++;
    g_stage_thread = pthread_self();
    g_stage_names = g_nnames;
    g_stage_entries = g_nentries;
    g_stage_slot = g_next_slot;
    g_stage_fams = g_nfams;
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
    for (uint32_t i = 0; i < g_nentries; i++) /* older series: their claims undone */
        if (g_entries[i].scoped && g_entries[i].stage == g_stage_id) {
            g_entries[i].stage = g_entries[i].prev_stage;
            g_entries[i].scoped = g_entries[i].prev_scoped;
        }
    atomic_fetch_add_explicit(&weft_stats_fc_epoch, 1, memory_order_relaxed);
    for (uint32_t i = g_stage_fams; i < g_nfams; i++) {
        fam_free(atomic_load_explicit(&g_fams[i], memory_order_relaxed));
        atomic_store_explicit(&g_fams[i], NULL, memory_order_relaxed);
    }
    g_nfams = g_stage_fams;
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
    if (g_staging && keep) /* what this config registered is shown, other scoped series leave */
        for (uint32_t i = 0; i < g_nentries; i++)
            if (g_entries[i].scoped)
                g_entries[i].hidden = g_entries[i].stage != g_stage_id;
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
    if (weft_stats_tls_block == b) {
        weft_stats_tls_block = NULL;
        fc_forget_all();
    }
    pthread_mutex_lock(&g_lock);
    atomic_fetch_add_explicit(&weft_stats_fc_epoch, 1,
                              memory_order_relaxed); /* other threads' caches */
    for (uint32_t i = 0; i < g_nentries; i++) {
        const stat_entry *e = &g_entries[i];
        weft_stat_kind kind = g_names[e->name_idx].kind;
        if (kind == WEFT_STAT_GAUGE)
            continue; /* the owner is gone: its deltas go too */
        uint32_t per = kind == WEFT_STAT_HISTOGRAM ? WEFT_HIST_SLOTS : 1;
        fold_slots(b, e->slot, per); /* a family's: its overflow series */
        const stat_family *f = e->fam == UINT32_MAX
                                   ? NULL
                                   : atomic_load_explicit(&g_fams[e->fam], memory_order_relaxed);
        for (uint32_t k = 0; f && k < f->max_series; k++)
            fold_slots(b, f->slots[k], per);
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
    if (weft_stats_tls_block != b)
        fc_forget_all();
    weft_stats_tls_block = b;
}

weft_stats_block *weft_stats_thread_block(void) {
    return weft_stats_tls_block;
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

/* One observation into the histogram whose first slot is p. */
static void hist_add(stat_slot *p, uint64_t value_us) {
    unsigned k = hist_bucket(value_us);
    if (k < WEFT_HIST_BUCKETS) /* beyond the last bound: only +Inf (count) */
        slot_add(&p[k], 1);
    slot_add(&p[HIST_SUM_SLOT], value_us);
    slot_add(&p[HIST_COUNT_SLOT], 1);
}

void weft_stats_observe_us(weft_stats_block *b, weft_stat_id id, uint64_t value_us) {
    if (!b)
        return;
    stat_slot *p = slot_ptr(b, id, memory_order_acquire);
    if (!p || (id & PAGE_MASK) + WEFT_HIST_SLOTS > WEFT_STATS_PAGE_SLOTS)
        return;
    hist_add(p, value_us);
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

bool weft_stats_family_value(weft_stat_family_id id, const weft_sv *v, size_t n, uint64_t *out) {
    stat_family *f = fam_get(id);
    if (!f || (v && n != f->n_labels))
        return false;
    uint32_t slot = f->overflow_slot;
    if (v) {
        fam_series *s = fam_find(f, values_hash(v, n), v, n);
        if (!s)
            return false;
        slot = f->slots[s->idx];
    }
    pthread_mutex_lock(&g_lock);
    uint64_t val = f->kind == WEFT_STAT_COUNTER ? sum_slot(slot, true)
                   : f->kind == WEFT_STAT_GAUGE ? (uint64_t)gauge_sum(slot)
                                                : sum_slot(slot + HIST_COUNT_SLOT, true);
    pthread_mutex_unlock(&g_lock);
    if (out)
        *out = val;
    return true;
}

uint32_t weft_stats_family_series(weft_stat_family_id id) {
    stat_family *f = fam_get(id);
    return f ? atomic_load_explicit(&f->nseries, memory_order_acquire) : 0;
}

uint64_t weft_stats_family_overflow(weft_stat_family_id id) {
    stat_family *f = fam_get(id);
    return f ? weft_stats_counter_value(f->overflow_counter) : 0;
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

/* One series: labels is the rendered label set ("" for none). g_lock held. */
static int render_series(struct evbuffer *out, const stat_name *n, const char *labels,
                         uint32_t slot) {
    const char *lo = *labels ? "{" : "", *lc = *labels ? "}" : "";
    switch (n->kind) {
    case WEFT_STAT_COUNTER:
        return evbuffer_add_printf(out, "%s%s%s%s %llu\n", n->name, lo, labels, lc,
                                   (unsigned long long)sum_slot(slot, true)) < 0
                   ? -1
                   : 0;
    case WEFT_STAT_GAUGE:
        return evbuffer_add_printf(out, "%s%s%s%s %lld\n", n->name, lo, labels, lc,
                                   (long long)gauge_sum(slot)) < 0
                   ? -1
                   : 0;
    case WEFT_STAT_HISTOGRAM:
        return render_histogram(out, n->name, labels, slot);
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xe0) == 0xc0 ? 2
                 : (c & 0xf0) == 0xe0 ? 3
                 : (c & 0xf8) == 0xf0 ? 4
                                      : 0;
    if (!len || len > n || (len == 2 && c < 0xc2) || (c == 0xf4 && p[1] > 0x8f) || c > 0xf4)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)))
        return 0; /* overlong, surrogate */
    if (len == 4 && c == 0xf0 && p[1] < 0x90)
        return 0; /* overlong */
    return len;
}

/* A label value as the text format wants it: \\, \" and \n escaped; other
 * control characters and bytes that are not UTF-8 become U+FFFD. */
static void add_escaped_value(struct evbuffer *out, const char *v, size_t n) {
    const unsigned char *p = (const unsigned char *)v;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = utf8_len(p + i, n - i);
        if (c == '\\' || c == '"')
            evbuffer_add(out, c == '\\' ? "\\\\" : "\\\"", 2);
        else if (c == '\n')
            evbuffer_add(out, "\\n", 2);
        else if (!len || c < 0x20 || c == 0x7f)
            evbuffer_add(out, "\xef\xbf\xbd", 3);
        else
            evbuffer_add(out, p + i, len);
        i += len ? len : 1;
    }
}

/* The label set of one series of family f into tmp (NUL-terminated);
 * s NULL: the overflow series. NULL on OOM. g_lock held. */
static const char *family_labels(struct evbuffer *tmp, const stat_entry *e, const stat_family *f,
                                 const fam_series *s) {
    evbuffer_drain(tmp, evbuffer_get_length(tmp));
    evbuffer_add(tmp, e->labels, e->labels_len);
    const char *p = s ? s->data : NULL;
    for (uint32_t i = 0; i < f->n_labels; i++) {
        if (i || e->labels_len)
            evbuffer_add(tmp, ",", 1);
        evbuffer_add_printf(tmp, "%s=\"", f->label_names[i]);
        if (p) {
            uint32_t len;
            memcpy(&len, p, sizeof len);
            add_escaped_value(tmp, p + sizeof len, len);
            p += sizeof len + len;
        } else {
            evbuffer_add(tmp, WEFT_STATS_OVERFLOW_VALUE, sizeof WEFT_STATS_OVERFLOW_VALUE - 1);
        }
        evbuffer_add(tmp, "\"", 1);
    }
    evbuffer_add(tmp, "", 1);
    return (const char *)evbuffer_pullup(tmp, -1);
}

static int render_family(struct evbuffer *out, struct evbuffer *tmp, const stat_name *n,
                         const stat_entry *e) {
    const stat_family *f = atomic_load_explicit(&g_fams[e->fam], memory_order_relaxed);
    uint32_t count = atomic_load_explicit(&f->nseries, memory_order_acquire);
    for (uint32_t i = 0; i < count; i++) {
        const fam_series *s = atomic_load_explicit(&f->by_idx[i], memory_order_acquire);
        const char *labels = s ? family_labels(tmp, e, f, s) : NULL;
        if (s && (!labels || render_series(out, n, labels, f->slots[i]) < 0))
            return -1;
    }
    if (atomic_load_explicit(&f->overflow_used, memory_order_relaxed)) {
        const char *labels = family_labels(tmp, e, f, NULL);
        if (!labels || render_series(out, n, labels, f->overflow_slot) < 0)
            return -1;
    }
    return 0;
}

static int render_locked(struct evbuffer *out, struct evbuffer *tmp) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    uint32_t nnames = g_staging ? g_stage_names : g_nnames;
    uint32_t nentries = g_staging ? g_stage_entries : g_nentries;
    for (uint32_t ni = 0; ni < nnames; ni++) {
        const stat_name *n = &g_names[ni];
        uint32_t first = n->first_entry; /* the first entry shown */
        while (first != UINT32_MAX && first < nentries && g_entries[first].hidden)
            first = g_entries[first].next_same_name;
        if (first == UINT32_MAX || first >= nentries)
            continue; /* nothing of this name is shown */
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
            if (e->hidden)
                continue;
            int rc = e->fam != UINT32_MAX ? render_family(out, tmp, n, e)
                                          : render_series(out, n, e->labels, e->slot);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

int weft_stats_render_prometheus(struct evbuffer *out) {
    if (!out)
        return -1;
    struct evbuffer *tmp = evbuffer_new(); /* a family series' label set */
    if (!tmp)
        return -1;
    pthread_mutex_lock(&g_lock);
    int rc = render_locked(out, tmp);
    pthread_mutex_unlock(&g_lock);
    evbuffer_free(tmp);
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
    atomic_fetch_add_explicit(&weft_stats_fc_epoch, 1, memory_order_relaxed);
    for (uint32_t i = 0; i < g_nfams; i++) {
        fam_free(atomic_load_explicit(&g_fams[i], memory_order_relaxed));
        atomic_store_explicit(&g_fams[i], NULL, memory_order_relaxed);
    }
    g_nfams = 0;
    g_next_slot = 0;
    g_pages_used = 0;
    g_staging = false;
    pthread_mutex_unlock(&g_lock);
    weft_stats_tls_block = NULL;
    fc_forget_all();
}
