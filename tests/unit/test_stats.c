/* Unit tests for core/stats: registry, per-thread blocks, Prometheus text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats/stats.h"
#include "stats_test_util.h"

static void assert_render(const char *expect) {
    char *got = render();
    assert_string_equal(got, expect);
    free(got);
}

/* The line of text that starts with prefix (up to the newline), or NULL. */
static char *find_line(const char *text, const char *prefix) {
    size_t plen = strlen(prefix);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len >= plen && memcmp(p, prefix, plen) == 0) {
            char *line = malloc(len + 1);
            assert_non_null(line);
            memcpy(line, p, len);
            line[len] = '\0';
            return line;
        }
        p += len + (nl ? 1 : 0);
    }
    return NULL;
}

static size_t count_occurrences(const char *text, const char *needle) {
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_dedupe_ids(void **state) {
    (void)state;
    weft_stat_id a = weft_stats_counter("weft_rq_total", "code=\"2xx\"", "Requests");
    weft_stat_id b = weft_stats_counter("weft_rq_total", "code=\"5xx\"", "Requests");
    weft_stat_id a2 = weft_stats_counter("weft_rq_total", "code=\"2xx\"", "other help");
    weft_stat_id plain = weft_stats_counter("weft_rq_total", "", "Requests");
    weft_stat_id plain_null = weft_stats_counter("weft_rq_total", NULL, NULL);
    weft_stat_id g = weft_stats_gauge("weft_active", "", "Active");
    weft_stat_id g2 = weft_stats_gauge("weft_active", "", "Active");
    weft_stat_id h = weft_stats_histogram("weft_latency", "", "Latency");
    weft_stat_id h2 = weft_stats_histogram("weft_latency", "", "Latency");

    assert_int_not_equal(a, WEFT_STAT_INVALID);
    assert_int_not_equal(b, WEFT_STAT_INVALID);
    assert_int_not_equal(a, b);
    assert_int_equal(a, a2);
    assert_int_not_equal(plain, a);
    assert_int_equal(plain, plain_null);
    assert_int_equal(g, g2);
    assert_int_equal(h, h2);
    assert_int_not_equal(g, h);
    /* The first registration's help wins. */
    char *text = render();
    char *help = find_line(text, "# HELP weft_rq_total ");
    assert_non_null(help);
    assert_string_equal(help, "# HELP weft_rq_total Requests");
    free(help);
    free(text);
}

static void test_kind_clash_and_bad_names(void **state) {
    (void)state;
    weft_stat_id c = weft_stats_counter("weft_x", "", "x");
    assert_int_not_equal(c, WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_gauge("weft_x", "", "x"), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_gauge("weft_x", "a=\"1\"", "x"), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_histogram("weft_x", "", "x"), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_counter("weft_x", "", "x"), c);

    weft_stat_id h = weft_stats_histogram("weft_h", "", "h");
    assert_int_not_equal(h, WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_counter("weft_h", "", "h"), WEFT_STAT_INVALID);

    assert_int_equal(weft_stats_counter(NULL, "", "x"), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_counter("", "", "x"), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_counter("9lives", "", "x"), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_counter("has space", "", "x"), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_counter("weft_y", "a=\"1\"\nb=\"2\"", "x"), WEFT_STAT_INVALID);
    assert_int_not_equal(weft_stats_counter("weft:ns_y9", "", "x"), WEFT_STAT_INVALID);

    /* Failed registrations left nothing behind. */
    assert_render("# HELP weft_x x\n"
                  "# TYPE weft_x counter\n"
                  "weft_x 0\n"
                  "# HELP weft_h h\n"
                  "# TYPE weft_h histogram\n"
                  "weft_h_bucket{le=\"0.0005\"} 0\n"
                  "weft_h_bucket{le=\"0.001\"} 0\n"
                  "weft_h_bucket{le=\"0.002\"} 0\n"
                  "weft_h_bucket{le=\"0.005\"} 0\n"
                  "weft_h_bucket{le=\"0.01\"} 0\n"
                  "weft_h_bucket{le=\"0.02\"} 0\n"
                  "weft_h_bucket{le=\"0.05\"} 0\n"
                  "weft_h_bucket{le=\"0.1\"} 0\n"
                  "weft_h_bucket{le=\"0.2\"} 0\n"
                  "weft_h_bucket{le=\"0.5\"} 0\n"
                  "weft_h_bucket{le=\"1\"} 0\n"
                  "weft_h_bucket{le=\"2\"} 0\n"
                  "weft_h_bucket{le=\"5\"} 0\n"
                  "weft_h_bucket{le=\"10\"} 0\n"
                  "weft_h_bucket{le=\"15\"} 0\n"
                  "weft_h_bucket{le=\"30\"} 0\n"
                  "weft_h_bucket{le=\"60\"} 0\n"
                  "weft_h_bucket{le=\"120\"} 0\n"
                  "weft_h_bucket{le=\"300\"} 0\n"
                  "weft_h_bucket{le=\"600\"} 0\n"
                  "weft_h_bucket{le=\"+Inf\"} 0\n"
                  "weft_h_sum 0\n"
                  "weft_h_count 0\n"
                  "# HELP weft:ns_y9 x\n"
                  "# TYPE weft:ns_y9 counter\n"
                  "weft:ns_y9 0\n");
}

#define THREAD_ITERS 200000

struct worker_arg {
    weft_stat_id counter, gauge, hist;
    weft_stats_block *block; /* out: the worker's block, left live */
    atomic_int *started;
};

static void *worker_main(void *p) {
    struct worker_arg *arg = p;
    weft_stats_block *b = weft_stats_block_new();
    assert_non_null(b);
    weft_stats_set_thread_block(b);
    assert_ptr_equal(weft_stats_thread_block(), b);
    atomic_fetch_add(arg->started, 1);
    for (int i = 0; i < THREAD_ITERS; i++) {
        weft_stats_inc(weft_stats_thread_block(), arg->counter, 1);
        weft_stats_gauge_add(b, arg->gauge, (i & 1) ? -1 : 2);
        if (i % 100 == 0)
            weft_stats_observe_us(b, arg->hist, 1500);
    }
    arg->block = b;
    return NULL;
}

static void test_counters_two_threads(void **state) {
    (void)state;
    weft_stat_id c = weft_stats_counter("weft_work_total", "", "Work");
    weft_stat_id g = weft_stats_gauge("weft_work_level", "", "Level");
    weft_stat_id h = weft_stats_histogram("weft_work_us", "", "Latency");
    atomic_int started = 0;
    struct worker_arg args[2] = {{c, g, h, NULL, &started}, {c, g, h, NULL, &started}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &args[i]), 0);

    /* Scrape while the workers write: values only grow. */
    uint64_t last = 0;
    while (atomic_load(&started) < 2 || last < 2 * THREAD_ITERS) {
        uint64_t v = weft_stats_counter_value(c);
        assert_true(v >= last);
        assert_true(v <= 2 * THREAD_ITERS);
        last = v;
        char *text = render();
        free(text);
        if (last == 2 * THREAD_ITERS)
            break;
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    /* Thread-local blocks are per thread. */
    assert_null(weft_stats_thread_block());

    assert_int_equal(weft_stats_counter_value(c), 2 * THREAD_ITERS);
    assert_int_equal(weft_stats_gauge_value(g), 2 * (THREAD_ITERS / 2));
    assert_int_equal(weft_stats_counter_value(h), 2 * (THREAD_ITERS / 100));

    weft_stats_block_free(args[0].block);
    assert_int_equal(weft_stats_counter_value(c), 2 * THREAD_ITERS);
    assert_int_equal(weft_stats_gauge_value(g), THREAD_ITERS / 2);
    weft_stats_block_free(args[1].block);
    assert_int_equal(weft_stats_counter_value(c), 2 * THREAD_ITERS);
    assert_int_equal(weft_stats_gauge_value(g), 0);
    assert_int_equal(weft_stats_counter_value(h), 2 * (THREAD_ITERS / 100));

    char *text = render();
    char *line = find_line(text, "weft_work_total ");
    assert_non_null(line);
    assert_string_equal(line, "weft_work_total 400000");
    free(line);
    line = find_line(text, "weft_work_us_bucket{le=\"0.002\"} ");
    assert_non_null(line);
    assert_string_equal(line, "weft_work_us_bucket{le=\"0.002\"} 4000");
    free(line);
    line = find_line(text, "weft_work_us_sum ");
    assert_non_null(line);
    assert_string_equal(line, "weft_work_us_sum 6");
    free(line);
    free(text);
}

static void test_freed_block_keeps_counters(void **state) {
    (void)state;
    weft_stat_id c = weft_stats_counter("weft_c", "", "C");
    weft_stats_block *a = weft_stats_block_new();
    weft_stats_block *b = weft_stats_block_new();
    assert_non_null(a);
    assert_non_null(b);
    weft_stats_inc(a, c, 5);
    weft_stats_inc(b, c, 7);
    assert_int_equal(weft_stats_counter_value(c), 12);

    weft_stats_set_thread_block(a);
    weft_stats_block_free(a);
    assert_null(weft_stats_thread_block()); /* freeing the own block clears it */
    assert_int_equal(weft_stats_counter_value(c), 12);
    assert_render("# HELP weft_c C\n# TYPE weft_c counter\nweft_c 12\n");

    weft_stats_inc(b, c, 1);
    weft_stats_block_free(b);
    assert_int_equal(weft_stats_counter_value(c), 13);

    /* A new block starts at zero; the total keeps counting from 13. */
    weft_stats_block *n = weft_stats_block_new();
    assert_non_null(n);
    weft_stats_inc(n, c, 2);
    assert_render("# HELP weft_c C\n# TYPE weft_c counter\nweft_c 15\n");
    weft_stats_block_free(n);
    weft_stats_block_free(NULL);
}

static void test_gauges(void **state) {
    (void)state;
    weft_stat_id g = weft_stats_gauge("weft_conns", "listener=\"http\"", "Connections");
    weft_stat_id gg = weft_stats_gauge("weft_hosts", "", "Hosts");
    weft_stats_block *a = weft_stats_block_new();
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_gauge_add(a, g, 5);
    weft_stats_gauge_add(a, g, -2);
    weft_stats_gauge_add(b, g, -10);
    assert_int_equal(weft_stats_gauge_value(g), -7);
    assert_render("# HELP weft_conns Connections\n"
                  "# TYPE weft_conns gauge\n"
                  "weft_conns{listener=\"http\"} -7\n"
                  "# HELP weft_hosts Hosts\n"
                  "# TYPE weft_hosts gauge\n"
                  "weft_hosts 0\n");

    weft_stats_gauge_set(gg, 42);
    assert_int_equal(weft_stats_gauge_value(gg), 42);
    weft_stats_gauge_set(gg, 40);
    assert_int_equal(weft_stats_gauge_value(gg), 40);
    /* Global value plus per-block deltas. */
    weft_stats_gauge_set(g, 100);
    assert_int_equal(weft_stats_gauge_value(g), 93);

    /* A freed block's gauge deltas go with it. */
    weft_stats_block_free(b);
    assert_int_equal(weft_stats_gauge_value(g), 103);
    assert_render("# HELP weft_conns Connections\n"
                  "# TYPE weft_conns gauge\n"
                  "weft_conns{listener=\"http\"} 103\n"
                  "# HELP weft_hosts Hosts\n"
                  "# TYPE weft_hosts gauge\n"
                  "weft_hosts 40\n");
    weft_stats_block_free(a);
    assert_int_equal(weft_stats_gauge_value(g), 100);
    assert_int_equal(weft_stats_counter_value(g), 100);
}

static void test_histogram_render(void **state) {
    (void)state;
    weft_stat_id h =
        weft_stats_histogram("weft_rq_duration_seconds", "route=\"r1\"", "Request time");
    weft_stats_block *a = weft_stats_block_new();
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_observe_us(a, h, 0);         /* le 0.0005 */
    weft_stats_observe_us(a, h, 500);       /* le 0.0005: bounds are inclusive */
    weft_stats_observe_us(b, h, 501);       /* le 0.001 */
    weft_stats_observe_us(b, h, 1500000);   /* le 2 */
    weft_stats_observe_us(a, h, 600000000); /* le 600 */
    weft_stats_observe_us(b, h, 700000000); /* +Inf only */
    weft_stats_observe_us(a, h, 7);         /* le 0.0005 */
    weft_stats_block_free(a);               /* histograms are folded too */
    assert_render("# HELP weft_rq_duration_seconds Request time\n"
                  "# TYPE weft_rq_duration_seconds histogram\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.0005\"} 3\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.001\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.002\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.005\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.01\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.02\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.05\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.1\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.2\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"0.5\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"1\"} 4\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"2\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"5\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"10\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"15\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"30\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"60\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"120\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"300\"} 5\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"600\"} 6\n"
                  "weft_rq_duration_seconds_bucket{route=\"r1\",le=\"+Inf\"} 7\n"
                  "weft_rq_duration_seconds_sum{route=\"r1\"} 1301.501008\n"
                  "weft_rq_duration_seconds_count{route=\"r1\"} 7\n");
    assert_int_equal(weft_stats_counter_value(h), 7);
    weft_stats_block_free(b);
}

static void test_hist_bounds_table(void **state) {
    (void)state;
    static const double expect[WEFT_HIST_BUCKETS] = {
        0.5,  1,    2,    5,     10,    20,    50,    100,    200,    500,
        1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000};
    for (int i = 0; i < WEFT_HIST_BUCKETS; i++)
        assert_true(weft_hist_bounds_ms[i] == expect[i]);
    /* Each bound is the inclusive top of its bucket: a value exactly on a
     * bound lands there, one microsecond more lands in the next. */
    weft_stat_id h = weft_stats_histogram("weft_edges", "", "");
    weft_stats_block *a = weft_stats_block_new();
    for (int i = 0; i < WEFT_HIST_BUCKETS; i++) {
        uint64_t us = (uint64_t)(weft_hist_bounds_ms[i] * 1000.0);
        weft_stats_observe_us(a, h, us);
        weft_stats_observe_us(a, h, us + 1);
    }
    char *text = render();
    /* le=bound[i] holds 2*i+1 observations (bound[0], then pairs). */
    for (int i = 0; i < WEFT_HIST_BUCKETS; i++) {
        char prefix[64], want[96];
        snprintf(prefix, sizeof prefix, "weft_edges_bucket{le=\"%g\"} ",
                 weft_hist_bounds_ms[i] / 1000.0);
        snprintf(want, sizeof want, "%s%d", prefix, 2 * i + 1);
        char *line = find_line(text, prefix);
        assert_non_null(line);
        assert_string_equal(line, want);
        free(line);
    }
    char *line = find_line(text, "weft_edges_bucket{le=\"+Inf\"} ");
    assert_non_null(line);
    assert_string_equal(line, "weft_edges_bucket{le=\"+Inf\"} 40");
    free(line);
    /* No help text: no HELP line, TYPE still present. */
    assert_null(strstr(text, "# HELP weft_edges"));
    assert_non_null(strstr(text, "# TYPE weft_edges histogram\n"));
    free(text);
    weft_stats_block_free(a);
}

static void test_help_type_once_per_name(void **state) {
    (void)state;
    weft_stat_id r2 = weft_stats_counter("weft_rq_total", "code=\"2xx\"", "Requests");
    weft_stat_id act = weft_stats_gauge("weft_active", "", "Active");
    weft_stat_id r5 = weft_stats_counter("weft_rq_total", "code=\"5xx\"", "Requests");
    weft_stat_id h1 = weft_stats_histogram("weft_lat", "r=\"a\"", "Lat");
    weft_stat_id r4 = weft_stats_counter("weft_rq_total", "code=\"4xx\"", "Requests");
    weft_stat_id h2 = weft_stats_histogram("weft_lat", "r=\"b\"", "Lat");
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_inc(b, r2, 10);
    weft_stats_inc(b, r5, 3);
    weft_stats_inc(b, r4, 1);
    weft_stats_gauge_add(b, act, 2);
    weft_stats_observe_us(b, h1, 3000);
    weft_stats_observe_us(b, h2, 250000);

    char *text = render();
    assert_int_equal(count_occurrences(text, "# HELP weft_rq_total "), 1);
    assert_int_equal(count_occurrences(text, "# TYPE weft_rq_total "), 1);
    assert_int_equal(count_occurrences(text, "# HELP weft_lat "), 1);
    assert_int_equal(count_occurrences(text, "# TYPE weft_lat "), 1);
    /* Grouped by name, names in first-registration order. */
    const char *expect_head = "# HELP weft_rq_total Requests\n"
                              "# TYPE weft_rq_total counter\n"
                              "weft_rq_total{code=\"2xx\"} 10\n"
                              "weft_rq_total{code=\"5xx\"} 3\n"
                              "weft_rq_total{code=\"4xx\"} 1\n"
                              "# HELP weft_active Active\n"
                              "# TYPE weft_active gauge\n"
                              "weft_active 2\n"
                              "# HELP weft_lat Lat\n"
                              "# TYPE weft_lat histogram\n"
                              "weft_lat_bucket{r=\"a\",le=\"0.0005\"} 0\n";
    assert_memory_equal(text, expect_head, strlen(expect_head));
    const char *a_tail = "weft_lat_bucket{r=\"a\",le=\"0.002\"} 0\n"
                         "weft_lat_bucket{r=\"a\",le=\"0.005\"} 1\n";
    assert_non_null(strstr(text, a_tail));
    const char *a_end = "weft_lat_bucket{r=\"a\",le=\"+Inf\"} 1\n"
                        "weft_lat_sum{r=\"a\"} 0.003\n"
                        "weft_lat_count{r=\"a\"} 1\n"
                        "weft_lat_bucket{r=\"b\",le=\"0.0005\"} 0\n";
    assert_non_null(strstr(text, a_end));
    const char *b_end = "weft_lat_bucket{r=\"b\",le=\"0.2\"} 0\n"
                        "weft_lat_bucket{r=\"b\",le=\"0.5\"} 1\n";
    assert_non_null(strstr(text, b_end));
    const char *tail = "weft_lat_sum{r=\"b\"} 0.25\nweft_lat_count{r=\"b\"} 1\n";
    size_t tl = strlen(tail), len = strlen(text);
    assert_true(len > tl);
    assert_string_equal(text + len - tl, tail);
    free(text);
    weft_stats_block_free(b);
}

static void test_labelless_and_help_escape(void **state) {
    (void)state;
    weft_stat_id c = weft_stats_counter("weft_up_total", "", "Line one\nback\\slash");
    weft_stat_id h = weft_stats_histogram("weft_t", "", "T");
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_inc(b, c, 1);
    weft_stats_observe_us(b, h, 20000);
    weft_stats_observe_us(b, h, 1);
    char *text = render();
    const char *head = "# HELP weft_up_total Line one\\nback\\\\slash\n"
                       "# TYPE weft_up_total counter\n"
                       "weft_up_total 1\n"
                       "# HELP weft_t T\n"
                       "# TYPE weft_t histogram\n"
                       "weft_t_bucket{le=\"0.0005\"} 1\n"
                       "weft_t_bucket{le=\"0.001\"} 1\n"
                       "weft_t_bucket{le=\"0.002\"} 1\n"
                       "weft_t_bucket{le=\"0.005\"} 1\n"
                       "weft_t_bucket{le=\"0.01\"} 1\n"
                       "weft_t_bucket{le=\"0.02\"} 2\n";
    assert_memory_equal(text, head, strlen(head));
    const char *tail = "weft_t_bucket{le=\"600\"} 2\n"
                       "weft_t_bucket{le=\"+Inf\"} 2\n"
                       "weft_t_sum 0.020001\n"
                       "weft_t_count 2\n";
    size_t tl = strlen(tail), len = strlen(text);
    assert_true(len > tl);
    assert_string_equal(text + len - tl, tail);
    assert_null(strstr(text, "{}"));
    free(text);
    weft_stats_block_free(b);
}

static void test_invalid_ids_and_null_blocks(void **state) {
    (void)state;
    weft_stat_id c = weft_stats_counter("weft_c", "", "C");
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_inc(NULL, c, 1);
    weft_stats_gauge_add(NULL, c, 1);
    weft_stats_observe_us(NULL, c, 1);
    weft_stats_inc(b, WEFT_STAT_INVALID, 1);
    weft_stats_gauge_add(b, WEFT_STAT_INVALID, 1);
    weft_stats_observe_us(b, WEFT_STAT_INVALID, 1);
    weft_stats_gauge_set(WEFT_STAT_INVALID, 1);
    assert_int_equal(weft_stats_counter_value(WEFT_STAT_INVALID), 0);
    assert_int_equal(weft_stats_gauge_value(WEFT_STAT_INVALID), 0);
    assert_int_equal(weft_stats_gauge_value(c), 0); /* not a gauge */
    assert_int_equal(weft_stats_counter_value(c), 0);
    assert_int_equal(weft_stats_render_prometheus(NULL), -1);
    weft_stats_block_free(b);
}

/* Pages are allocated at registration for blocks that already exist, and a
 * histogram never straddles a page. */
static void test_pages_and_capacity(void **state) {
    (void)state;
    weft_stats_block *early = weft_stats_block_new();
    assert_non_null(early);
    char name[48];
    weft_stat_id first = weft_stats_counter("weft_fill_0", "", "");
    assert_int_equal(first, 0);
    for (uint32_t i = 1; i < WEFT_STATS_PAGE_SLOTS - 5; i++) {
        snprintf(name, sizeof name, "weft_fill_%u", i);
        assert_int_equal(weft_stats_counter(name, "", ""), i);
    }
    /* 5 slots left in page 0: the histogram goes to the next page. */
    weft_stat_id h = weft_stats_histogram("weft_page_hist", "", "");
    assert_int_equal(h, WEFT_STATS_PAGE_SLOTS);
    weft_stat_id after = weft_stats_counter("weft_after", "", "");
    assert_int_equal(after, WEFT_STATS_PAGE_SLOTS + WEFT_HIST_SLOTS);

    weft_stats_observe_us(early, h, 100);
    weft_stats_inc(early, after, 9);
    weft_stats_block *late = weft_stats_block_new();
    weft_stats_inc(late, after, 1);
    assert_int_equal(weft_stats_counter_value(h), 1);
    assert_int_equal(weft_stats_counter_value(after), 10);
    weft_stats_block_free(early);
    weft_stats_block_free(late);
    assert_int_equal(weft_stats_counter_value(after), 10);

    /* Fill the registry to capacity. */
    uint32_t total = WEFT_STATS_PAGE_SLOTS * WEFT_STATS_MAX_PAGES;
    uint32_t next = after + 1, i = 0;
    while (next < total) {
        snprintf(name, sizeof name, "weft_cap_%u", i++);
        assert_int_equal(weft_stats_counter(name, "", ""), next);
        next++;
    }
    assert_int_equal(weft_stats_counter("weft_one_more", "", ""), WEFT_STAT_INVALID);
    assert_int_equal(weft_stats_histogram("weft_one_more_h", "", ""), WEFT_STAT_INVALID);
    /* Existing series are still found. */
    assert_int_equal(weft_stats_counter("weft_after", "", ""), after);
    weft_stats_block *full = weft_stats_block_new();
    assert_non_null(full);
    weft_stats_inc(full, total - 1, 4);
    assert_int_equal(weft_stats_counter_value(total - 1), 4);
    weft_stats_block_free(full);
}

/* A worker keeps writing while the main thread registers enough metrics to
 * allocate a new page in the worker's live block; the worker then uses an
 * id from that page, published to it like a config (release/acquire). */
struct grow_arg {
    weft_stat_id base;
    _Atomic uint32_t published; /* WEFT_STAT_INVALID until the new id is ready */
    atomic_int stop;
    weft_stats_block *block;
};

static void *grow_worker(void *p) {
    struct grow_arg *arg = p;
    weft_stats_block *b = weft_stats_block_new();
    assert_non_null(b);
    arg->block = b;
    weft_stat_id late = WEFT_STAT_INVALID;
    while (!atomic_load_explicit(&arg->stop, memory_order_acquire)) {
        weft_stats_inc(b, arg->base, 1);
        if (late == WEFT_STAT_INVALID)
            late = atomic_load_explicit(&arg->published, memory_order_acquire);
        if (late != WEFT_STAT_INVALID)
            weft_stats_inc(b, late, 2);
    }
    return NULL;
}

static void test_registration_while_writing(void **state) {
    (void)state;
    struct grow_arg arg = {.base = weft_stats_counter("weft_base", "", "")};
    atomic_init(&arg.published, WEFT_STAT_INVALID);
    atomic_init(&arg.stop, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, grow_worker, &arg), 0);
    char name[48];
    weft_stat_id last = WEFT_STAT_INVALID;
    for (uint32_t i = 0; i < WEFT_STATS_PAGE_SLOTS + 10; i++) {
        snprintf(name, sizeof name, "weft_grow_%u", i);
        last = weft_stats_counter(name, "", "");
        assert_int_not_equal(last, WEFT_STAT_INVALID);
    }
    assert_true(last >= WEFT_STATS_PAGE_SLOTS);
    atomic_store_explicit(&arg.published, last, memory_order_release);
    while (weft_stats_counter_value(last) < 200)
        ;
    atomic_store_explicit(&arg.stop, 1, memory_order_release);
    assert_int_equal(pthread_join(th, NULL), 0);
    uint64_t base = weft_stats_counter_value(arg.base);
    uint64_t v = weft_stats_counter_value(last);
    assert_true(v >= 200);
    assert_true(v % 2 == 0);
    assert_true(base >= v / 2);
    weft_stats_block_free(arg.block);
    assert_int_equal(weft_stats_counter_value(last), v);
    assert_int_equal(weft_stats_counter_value(arg.base), base);
}

static void test_reset(void **state) {
    (void)state;
    weft_stat_id c = weft_stats_counter("weft_c", "", "C");
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_set_thread_block(b);
    weft_stats_inc(b, c, 3);
    weft_stats_reset_for_tests(); /* frees b */
    assert_null(weft_stats_thread_block());
    assert_render("");
    assert_int_equal(weft_stats_counter_value(c), 0);
    assert_int_equal(weft_stats_gauge("weft_c", "", "now a gauge"), 0);
}

/* Staged series stay out of scrapes; a dropped stage forgets them (names,
 * labels, chains, indexes, slots), a kept one shows them. */
static void test_stage(void **state) {
    (void)state;
    weft_stat_id old = weft_stats_counter("weft_rq_total", "l=\"a\"", "Requests");
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_set_thread_block(b);
    weft_stats_inc(b, old, 2);
    char *before = render();

    weft_stats_stage_begin();
    assert_int_equal(weft_stats_counter("weft_rq_total", "l=\"a\"", "x"), old); /* found */
    weft_stat_id tail = weft_stats_counter("weft_rq_total", "l=\"refused\"", "Requests");
    weft_stat_id fresh = weft_stats_gauge("weft_refused_only", "", "New name");
    weft_stat_id hist = weft_stats_histogram("weft_refused_hist", "", "New histogram");
    assert_int_not_equal(tail, WEFT_STAT_INVALID);
    assert_int_not_equal(fresh, WEFT_STAT_INVALID);
    assert_int_not_equal(hist, WEFT_STAT_INVALID);
    weft_stats_inc(b, tail, 5);
    weft_stats_gauge_set(fresh, 7);
    char *during = render();
    assert_string_equal(during, before); /* hidden while staged */
    free(during);
    weft_stats_stage_end(false);

    char *after = render();
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(weft_stats_counter_value(old), 2);
    /* Forgotten: the same names register anew, on the same (clean) slots,
     * and a name may even come back with another kind. */
    weft_stat_id tail2 = weft_stats_counter("weft_rq_total", "l=\"refused\"", "Requests");
    assert_int_equal(tail2, tail);
    assert_int_equal(weft_stats_counter_value(tail2), 0);
    weft_stat_id fresh2 = weft_stats_counter("weft_refused_only", "", "Now a counter");
    assert_int_equal(fresh2, fresh);
    assert_int_equal(weft_stats_counter_value(fresh2), 0);
    char *text = render();
    assert_non_null(strstr(text, "weft_rq_total{l=\"refused\"} 0\n"));
    assert_non_null(strstr(text, "# TYPE weft_refused_only counter\n"));
    assert_null(strstr(text, "weft_refused_hist"));
    free(text);

    /* A kept stage shows its series. */
    weft_stats_stage_begin();
    weft_stat_id kept = weft_stats_gauge("weft_kept", "k=\"1\"", "Kept");
    weft_stats_gauge_set(kept, 3);
    weft_stats_stage_end(true);
    text = render();
    assert_non_null(strstr(text, "weft_kept{k=\"1\"} 3\n"));
    free(text);
    free(before);
    weft_stats_block_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dedupe_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kind_clash_and_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_two_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freed_block_keeps_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hist_bounds_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_type_once_per_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labelless_and_help_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_ids_and_null_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pages_and_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registration_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
