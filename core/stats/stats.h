/* stats.h: counters, gauges and histograms. Names are registered (with
 * their Prometheus labels) in one process-wide registry, which returns a
 * stable id; the same name+labels always gets the same id, so counters
 * survive config reloads. Each worker thread owns a block of values and is
 * its only writer (relaxed atomics, no read-modify-write locking); a scrape
 * sums the blocks. Registration is thread-safe (a mutex; config time only).
 * Gauges may also be "global": set by the main thread, not summed. */
#ifndef WEFT_STATS_H
#define WEFT_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct evbuffer;

typedef uint32_t weft_stat_id;
#define WEFT_STAT_INVALID UINT32_MAX

typedef enum { WEFT_STAT_COUNTER = 0, WEFT_STAT_GAUGE, WEFT_STAT_HISTOGRAM } weft_stat_kind;

/* Histogram buckets (upper bounds, milliseconds), Prometheus "le". */
#define WEFT_HIST_BUCKETS 20
extern const double weft_hist_bounds_ms[WEFT_HIST_BUCKETS];

/* Value storage: an id is the index of the metric's first value slot.
 * Counters and gauges take one slot, a histogram WEFT_HIST_SLOTS
 * consecutive ones (WEFT_HIST_BUCKETS bucket counts, sum in us, count).
 * Slots come in pages; the registry holds at most
 * WEFT_STATS_PAGE_SLOTS * WEFT_STATS_MAX_PAGES slots. */
#define WEFT_HIST_SLOTS (WEFT_HIST_BUCKETS + 2)
#define WEFT_STATS_PAGE_SLOTS 4096u
#define WEFT_STATS_MAX_PAGES 64u

/* name: Prometheus metric name ("weft_downstream_rq_total");
 * labels: rendered label set without braces ("listener=\"http\",code=\"2xx\""),
 * or "" for none; help: one line. Returns WEFT_STAT_INVALID when the
 * registry is full or the name is reused with another kind. */
weft_stat_id weft_stats_counter(const char *name, const char *labels, const char *help);
weft_stat_id weft_stats_gauge(const char *name, const char *labels, const char *help);
weft_stat_id weft_stats_histogram(const char *name, const char *labels, const char *help);

/* Staged registration, for a config that may still be refused: series
 * registered between weft_stats_stage_begin() and weft_stats_stage_end()
 * get ids as usual but stay out of scrapes until the stage ends; ending
 * with keep=false forgets them (names, labels and slots), as if they had
 * never been registered. Series that existed before the stage are found
 * as usual and never forgotten. One stage at a time; registrations from
 * other threads during a stage belong to it (config time is the main
 * thread's). */
void weft_stats_stage_begin(void);
void weft_stats_stage_end(bool keep);

typedef struct weft_stats_block weft_stats_block;
/* A worker's block; registered for scraping until freed. Each thread that
 * writes stats owns one (the main thread too). */
weft_stats_block *weft_stats_block_new(void);
void weft_stats_block_free(weft_stats_block *b); /* values are folded into a retired total */
/* The calling thread's block (set by the thread at start). */
void weft_stats_set_thread_block(weft_stats_block *b);
weft_stats_block *weft_stats_thread_block(void);

void weft_stats_inc(weft_stats_block *b, weft_stat_id id, uint64_t v);
void weft_stats_gauge_add(weft_stats_block *b, weft_stat_id id, int64_t delta);
void weft_stats_observe_us(weft_stats_block *b, weft_stat_id id, uint64_t value_us);
/* Global gauge value (main thread), reported as is. */
void weft_stats_gauge_set(weft_stat_id id, int64_t value);

/* Sums over all blocks. */
uint64_t weft_stats_counter_value(weft_stat_id id);
int64_t weft_stats_gauge_value(weft_stat_id id);
/* weft_stats_counter_value of a histogram id is its observation count;
 * both return 0 for an id that is not a registered metric. The hot-path
 * calls ignore a NULL block and WEFT_STAT_INVALID. */

/* Prometheus text exposition format 0.0.4: # HELP / # TYPE once per metric
 * name, one line per label set, histograms as _bucket{le=...}/_sum/_count
 * (sum in seconds, bounds in seconds). */
int weft_stats_render_prometheus(struct evbuffer *out);

/* ---- Labelled families ----
 * A family is one metric name + constant labels (the filter's listener)
 * whose series are made on the request path from label VALUES: the first
 * update with a new combination of values creates its series (one malloc
 * and the family's mutex, at most max_series times per family); every
 * later update finds it lock-free (an atomic open-addressing table, load
 * <= 1/2) and writes the calling thread's block like weft_stats_inc.
 * Series slots are reserved at registration (max_series + 1 overflow), so
 * the hot path never allocates a slot or a page. Past max_series, or for
 * a value longer than WEFT_STATS_LABEL_VALUE_MAX, an update goes to the
 * overflow series (every label "__overflow__") and bumps the counter
 * <name minus _total>_overflow_total, which counts such updates. */
#define WEFT_STATS_FAMILY_MAX_LABELS 8u
#define WEFT_STATS_FAMILY_MAX_SERIES 10000u
#define WEFT_STATS_MAX_FAMILIES 4096u
#define WEFT_STATS_LABEL_VALUE_MAX 256u
#define WEFT_STATS_OVERFLOW_VALUE "__overflow__"

typedef uint32_t weft_stat_family_id; /* WEFT_STAT_INVALID: none */

/* Results of the family calls. */
#define WEFT_STATS_OK 0
#define WEFT_STATS_EINVAL (-1) /* bad name, label, kind, count, id */
#define WEFT_STATS_ELIMIT (-2) /* registry full (slots or families) */
#define WEFT_STATS_ENOMEM (-3)

/* Registers (or finds, with the same kind, label names and max_series:
 * values kept) the family `name`{const_labels}. const_labels as for
 * weft_stats_counter; a label name may not repeat or appear in it.
 * n_labels 0..WEFT_STATS_FAMILY_MAX_LABELS, max_series
 * 1..WEFT_STATS_FAMILY_MAX_SERIES. The same name and const labels with
 * other label names or max_series while the first is in use (registered
 * outside a stage, or by the current stage) is EINVAL. Thread-safe. */
int weft_stats_family(weft_stat_kind kind, const char *name, const char *const_labels,
                      const char *help, const char *const *label_names, size_t n_labels,
                      uint32_t max_series, weft_stat_family_id *out);

/* Hot path (any thread; a NULL block drops the update and returns OK):
 * one update of family f, which must be of `kind`; arg is the counter's
 * delta, the gauge's delta (two's complement) or the histogram's sample
 * in microseconds. EINVAL: unknown family, another kind, n not the
 * family's label count, values NULL with n > 0, a value with ptr NULL and
 * len > 0. */
int weft_stats_family_update(weft_stats_block *b, weft_stat_family_id f, weft_stat_kind kind,
                             const weft_sv *values, size_t n, uint64_t arg);
/* The same update on the calling thread's block (weft_stats_set_thread_block;
 * none: dropped, OK), with the values as n (pointer, length) pairs laid
 * out as weft_sv and read bytewise, so an array of another struct of that
 * layout (the SDK's weft_str) is passed as is. Each thread keeps the last
 * series each family updated (at most 4 values of at most 16 bytes): an
 * update with the same values adds to that series' slot without hashing,
 * probing or locking. weft_stats_family_update with b the thread's block
 * takes the same path. */
int weft_stats_family_update_here(weft_stat_family_id f, weft_stat_kind kind, const void *pairs,
                                  size_t n, uint64_t arg);

/* Series handles (ABI 1.2 weft_stat_series): a family's series resolved
 * once for known values, then updated like a plain stat id. A handle is
 * opaque and non-zero: the series' first slot, the family, its kind and
 * whether it is the overflow series (values past max_series, or a value
 * above WEFT_STATS_LABEL_VALUE_MAX). Resolving makes the series if needed
 * (it shows in scrapes from then on, at 0) and never counts anything; an
 * update through an overflow handle counts in the overflow counter as a
 * folded update does. A handle lives as long as its family (the config
 * that declared it). Any thread. EINVAL as weft_stats_family_update. */
typedef uint64_t weft_stats_series_ref; /* 0: none */
#define WEFT_STATS_SERIES_VALID (1ull << 63)
#define WEFT_STATS_SERIES_OVERFLOW (1ull << 50)
#define WEFT_STATS_SERIES_KIND_SHIFT 48
int weft_stats_series_resolve(weft_stat_family_id f, const void *pairs, size_t n,
                              weft_stats_series_ref *out);
/* The update of a handle of `kind` on the calling thread's block (none:
 * dropped); a handle of another kind, or 0, is ignored. A counter's or a
 * gauge's ordinary series costs weft_stats_inc (inline test below). */
void weft_stats_series_update_slow(weft_stats_series_ref r, weft_stat_kind kind, uint64_t arg);
static inline bool weft_stats_series_plain(weft_stats_series_ref r, weft_stat_kind kind) {
    return (r >> WEFT_STATS_SERIES_KIND_SHIFT) ==
           (WEFT_STATS_SERIES_VALID >> WEFT_STATS_SERIES_KIND_SHIFT | (uint64_t)kind);
}

/* Reading (tests, the kit conformance suite): the series' value summed
 * over blocks (counter; gauge as two's complement; histogram: count).
 * false when the family has no such series. values NULL: the overflow
 * series. */
bool weft_stats_family_value(weft_stat_family_id f, const weft_sv *values, size_t n, uint64_t *out);
/* Series made so far (the overflow series not included). */
uint32_t weft_stats_family_series(weft_stat_family_id f);
/* Its overflow counter (updates folded so far). */
uint64_t weft_stats_family_overflow(weft_stat_family_id f);

void weft_stats_reset_for_tests(void);

#endif
