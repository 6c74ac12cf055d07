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
#include <stdint.h>

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

void weft_stats_reset_for_tests(void);

#endif
