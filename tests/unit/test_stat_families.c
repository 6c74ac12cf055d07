/* Unit tests for core/stats labelled families (ABI 1.1 weft_stat_family):
 * registration rules, series made on first use, bounded cardinality with
 * the overflow series and its counter, label value escaping, staging, and
 * several writer threads making and bumping series at once (TSan). */
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
#include "stats/stats_fc.h"
#include "stats_test_util.h"

/* The three update kinds, as filter_host.c calls them: on the calling
 * thread's block (b here; NULL: none), through its family cache. */
static int fam_update(weft_stats_block *b, weft_stat_family_id f, weft_stat_kind kind,
                      const weft_sv *v, size_t n, uint64_t arg) {
    weft_stats_set_thread_block(b);
    return weft_stats_family_update_here(f, kind, v, n, arg);
}
static int fam_inc(weft_stats_block *b, weft_stat_family_id f, const weft_sv *v, size_t n,
                   uint64_t d) {
    return fam_update(b, f, WEFT_STAT_COUNTER, v, n, d);
}
static int fam_gauge(weft_stats_block *b, weft_stat_family_id f, const weft_sv *v, size_t n,
                     int64_t d) {
    return fam_update(b, f, WEFT_STAT_GAUGE, v, n, (uint64_t)d);
}
static int fam_observe(weft_stats_block *b, weft_stat_family_id f, const weft_sv *v, size_t n,
                       uint64_t us) {
    return fam_update(b, f, WEFT_STAT_HISTOGRAM, v, n, us);
}

static void assert_has(const char *text, const char *needle) {
    if (!strstr(text, needle))
        fail_msg("missing %s in:\n%s", needle, text);
}

static const char *const METHOD_CODE[] = {"method", "code"};
#define L "listener=\"http\""

static weft_stat_family_id family(weft_stat_kind kind, const char *name, uint32_t max) {
    weft_stat_family_id f;
    assert_int_equal(weft_stats_family(kind, name, L, "Requests", METHOD_CODE, 2, max, &f),
                     WEFT_STATS_OK);
    return f;
}

/* A counter family with one label, v, and no constant labels. */
static weft_stat_family_id family_v(const char *name, uint32_t max) {
    static const char *const names[] = {"v"};
    weft_stat_family_id f;
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, name, "", "", names, 1, max, &f),
                     WEFT_STATS_OK);
    return f;
}

static int inc(weft_stats_block *b, weft_stat_family_id f, const char *m, const char *c,
               uint64_t d) {
    weft_sv v[2] = {weft_sv_from(m), weft_sv_from(c)};
    return fam_inc(b, f, v, 2, d);
}

static uint64_t value(weft_stat_family_id f, const char *m, const char *c) {
    weft_sv v[2] = {weft_sv_from(m), weft_sv_from(c)};
    uint64_t out = 0;
    return weft_stats_family_value(f, v, 2, &out) ? out : UINT64_MAX;
}

static void test_counter_family(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_family_id f = family(WEFT_STAT_COUNTER, "weft_filter_x_requests_total", 10);
    assert_int_equal(weft_stats_family_series(f), 0);
    assert_int_equal(inc(b, f, "GET", "2xx", 1), WEFT_STATS_OK);
    assert_int_equal(inc(b, f, "GET", "2xx", 2), WEFT_STATS_OK);
    assert_int_equal(inc(b, f, "POST", "5xx", 1), WEFT_STATS_OK);
    assert_int_equal(inc(b, f, "", "", 4), WEFT_STATS_OK); /* empty values are values */
    assert_int_equal(weft_stats_family_series(f), 3);
    assert_int_equal(value(f, "GET", "2xx"), 3);
    assert_int_equal(value(f, "POST", "5xx"), 1);
    assert_int_equal(value(f, "", ""), 4);
    assert_int_equal(value(f, "GET", "5xx"), UINT64_MAX); /* no such series */
    /* "ab"+"c" and "a"+"bc" are different series */
    assert_int_equal(inc(b, f, "ab", "c", 1), WEFT_STATS_OK);
    assert_int_equal(inc(b, f, "a", "bc", 1), WEFT_STATS_OK);
    assert_int_equal(value(f, "ab", "c"), 1);
    assert_int_equal(weft_stats_family_series(f), 5);

    /* Same declaration: same family, values kept. */
    assert_int_equal(family(WEFT_STAT_COUNTER, "weft_filter_x_requests_total", 10), f);
    assert_int_equal(value(f, "GET", "2xx"), 3);

    char *text = render();
    assert_has(text,
               "# HELP weft_filter_x_requests_total Requests\n"
               "# TYPE weft_filter_x_requests_total counter\n"
               "weft_filter_x_requests_total{listener=\"http\",method=\"GET\",code=\"2xx\"} 3\n"
               "weft_filter_x_requests_total{listener=\"http\",method=\"POST\",code=\"5xx\"} 1\n"
               "weft_filter_x_requests_total{listener=\"http\",method=\"\",code=\"\"} 4\n");
    assert_has(text, "weft_filter_x_requests_overflow_total{listener=\"http\"} 0\n");
    assert_null(strstr(text, "__overflow__")); /* not used yet */
    free(text);

    /* A freed block's counts are kept (folded into the retired block). */
    weft_stats_block_free(b);
    assert_int_equal(value(f, "GET", "2xx"), 3);
}

static void test_registration_rules(void **state) {
    (void)state;
    weft_stat_family_id f, g;
    const char *bad[][2] = {{"__x", "a"}, {"1a", "b"},       {"a-b", "c"},
                            {"a", "a"},   {"listener", "b"}, {"", "b"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *names[2] = {bad[i][0], bad[i][1]};
        assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_f", L, "", names, 2, 5, &f),
                         WEFT_STATS_EINVAL);
        assert_int_equal(f, WEFT_STAT_INVALID);
    }
    const char *ok[] = {"_a", "A_9", "le_x"};
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_f", L, "", ok, 3, 5, &f),
                     WEFT_STATS_OK);
    const char *long_name[] = {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_g", L, "", long_name, 1, 5, &g),
                     WEFT_STATS_EINVAL); /* 65 bytes */
    /* max_series, kind, label count, name */
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_g", L, "", ok, 1, 0, &g),
                     WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_g", L, "", ok, 1,
                                       WEFT_STATS_FAMILY_MAX_SERIES + 1, &g),
                     WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_family((weft_stat_kind)3, "weft_g", L, "", ok, 1, 5, &g),
                     WEFT_STATS_EINVAL);
    const char *nine[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_g", L, "", nine, 9, 5, &g),
                     WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "bad-name", L, "", ok, 1, 5, &g),
                     WEFT_STATS_EINVAL);
    /* Same name + constant labels with another signature: refused while
     * the first is in use; another kind: refused. */
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_f", L, "", ok, 2, 5, &g),
                     WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_f", L, "", ok, 3, 6, &g),
                     WEFT_STATS_EINVAL);
    assert_int_equal(
        weft_stats_family(WEFT_STAT_GAUGE, "weft_f", "listener=\"b\"", "", ok, 3, 5, &g),
        WEFT_STATS_EINVAL);
    /* Another listener: another family of the same name. */
    assert_int_equal(
        weft_stats_family(WEFT_STAT_COUNTER, "weft_f", "listener=\"b\"", "", ok, 3, 5, &g),
        WEFT_STATS_OK);
    assert_int_not_equal(f, g);
    /* Updates: wrong count, wrong kind, unknown id, NULL values. */
    weft_stats_block *b = weft_stats_block_new();
    weft_sv v[3] = {WEFT_SV_LIT("1"), WEFT_SV_LIT("2"), WEFT_SV_LIT("3")};
    assert_int_equal(fam_inc(b, f, v, 2, 1), WEFT_STATS_EINVAL);
    assert_int_equal(fam_gauge(b, f, v, 3, 1), WEFT_STATS_EINVAL);
    assert_int_equal(fam_observe(b, f, v, 3, 1), WEFT_STATS_EINVAL);
    assert_int_equal(fam_inc(b, 999, v, 3, 1), WEFT_STATS_EINVAL);
    assert_int_equal(fam_inc(b, WEFT_STAT_INVALID, v, 3, 1), WEFT_STATS_EINVAL);
    assert_int_equal(fam_inc(b, f, NULL, 3, 1), WEFT_STATS_EINVAL);
    v[1] = (weft_sv){NULL, 3};
    assert_int_equal(fam_inc(b, f, v, 3, 1), WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_family_series(f), 0);
    v[1] = (weft_sv){NULL, 0};
    assert_int_equal(fam_inc(b, f, v, 3, 1), WEFT_STATS_OK);
    /* No block (a thread weft did not start): dropped, not an error. */
    assert_int_equal(fam_inc(NULL, f, v, 3, 1), WEFT_STATS_OK);
    assert_int_equal(weft_stats_family_series(f), 1);
    weft_stats_block_free(b);
}

static void test_overflow(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_family_id f = family(WEFT_STAT_COUNTER, "weft_rq_total", 2);
    assert_int_equal(inc(b, f, "GET", "2xx", 1), WEFT_STATS_OK);
    assert_int_equal(inc(b, f, "PUT", "2xx", 1), WEFT_STATS_OK);
    assert_int_equal(inc(b, f, "POST", "2xx", 5), WEFT_STATS_OK); /* third: folded */
    assert_int_equal(inc(b, f, "HEAD", "2xx", 7), WEFT_STATS_OK);
    assert_int_equal(inc(b, f, "GET", "2xx", 1), WEFT_STATS_OK); /* existing: counted */
    char longv[WEFT_STATS_LABEL_VALUE_MAX + 2];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(inc(b, f, longv, "2xx", 1), WEFT_STATS_OK); /* too long: folded */
    longv[WEFT_STATS_LABEL_VALUE_MAX] = '\0';                    /* exactly the max: fine */
    assert_int_equal(weft_stats_family_series(f), 2);
    assert_int_equal(value(f, "GET", "2xx"), 2);
    assert_int_equal(value(f, "POST", "2xx"), UINT64_MAX);
    uint64_t ov = 0;
    assert_true(weft_stats_family_value(f, NULL, 0, &ov));
    assert_int_equal(ov, 13);
    assert_int_equal(weft_stats_family_overflow(f), 3); /* updates folded, not their deltas */
    char *text = render();
    assert_has(
        text,
        "weft_rq_total{listener=\"http\",method=\"__overflow__\",code=\"__overflow__\"} 13\n");
    assert_has(text, "# TYPE weft_rq_overflow_total counter\n"
                     "weft_rq_overflow_total{listener=\"http\"} 3\n");
    free(text);
    weft_stats_block_free(b);

    /* A family with room for one long value: 256 bytes is not folded. */
    b = weft_stats_block_new();
    weft_stat_family_id g = family(WEFT_STAT_COUNTER, "weft_long_total", 2);
    assert_int_equal(inc(b, g, longv, "x", 1), WEFT_STATS_OK);
    assert_int_equal(weft_stats_family_series(g), 1);
    assert_int_equal(weft_stats_family_overflow(g), 0);
    weft_stats_block_free(b);
}

static void test_escaping(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_family_id f = family_v("weft_esc_total", 10);
    const char *vals[] = {"a\"b",     "c\\d",        "e\nf",     "tab\tcr\r",
                          "\xff\xfe", "caf\xc3\xa9", "\xe2\x82", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        weft_sv v = weft_sv_from(vals[i]);
        assert_int_equal(fam_inc(b, f, &v, 1, i + 1), WEFT_STATS_OK);
    }
    weft_sv nul = {"x\0y", 3};
    assert_int_equal(fam_inc(b, f, &nul, 1, 9), WEFT_STATS_OK);
    char *text = render();
    assert_has(text, "weft_esc_total{v=\"a\\\"b\"} 1\n");
    assert_has(text, "weft_esc_total{v=\"c\\\\d\"} 2\n");
    assert_has(text, "weft_esc_total{v=\"e\\nf\"} 3\n");
    assert_has(text, "weft_esc_total{v=\"tab\xef\xbf\xbd"
                     "cr\xef\xbf\xbd\"} 4\n");
    assert_has(text, "weft_esc_total{v=\"\xef\xbf\xbd\xef\xbf\xbd\"} 5\n");
    assert_has(text, "weft_esc_total{v=\"caf\xc3\xa9\"} 6\n");
    assert_has(text, "weft_esc_total{v=\"\xef\xbf\xbd\xef\xbf\xbd\"} 7\n");
    assert_has(text, "weft_esc_total{v=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 8\n");
    assert_has(text, "weft_esc_total{v=\"x\xef\xbf\xbdy\"} 9\n");
    free(text);
    weft_stats_block_free(b);
}

static void test_gauge_and_histogram(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    const char *names[] = {"route"};
    weft_stat_family_id g, h;
    assert_int_equal(
        weft_stats_family(WEFT_STAT_GAUGE, "weft_inflight", L, "In flight", names, 1, 4, &g),
        WEFT_STATS_OK);
    assert_int_equal(
        weft_stats_family(WEFT_STAT_HISTOGRAM, "weft_lat_seconds", L, "Latency", names, 1, 4, &h),
        WEFT_STATS_OK);
    weft_sv r = WEFT_SV_LIT("api");
    assert_int_equal(fam_gauge(b, g, &r, 1, 5), WEFT_STATS_OK);
    assert_int_equal(fam_gauge(b, g, &r, 1, -7), WEFT_STATS_OK);
    assert_int_equal(fam_inc(b, g, &r, 1, 1), WEFT_STATS_EINVAL); /* a gauge */
    assert_int_equal(fam_observe(b, h, &r, 1, 1500), WEFT_STATS_OK);
    assert_int_equal(fam_observe(b, h, &r, 1, 700000000), WEFT_STATS_OK);
    uint64_t v;
    assert_true(weft_stats_family_value(g, &r, 1, &v));
    assert_int_equal((int64_t)v, -2);
    assert_true(weft_stats_family_value(h, &r, 1, &v));
    assert_int_equal(v, 2);
    char *text = render();
    assert_has(text,
               "# TYPE weft_inflight gauge\nweft_inflight{listener=\"http\",route=\"api\"} -2\n");
    assert_has(text, "weft_lat_seconds_bucket{listener=\"http\",route=\"api\",le=\"0.002\"} 1\n");
    assert_has(text, "weft_lat_seconds_bucket{listener=\"http\",route=\"api\",le=\"+Inf\"} 2\n");
    assert_has(text, "weft_lat_seconds_sum{listener=\"http\",route=\"api\"} 700.0015\n");
    assert_has(text, "weft_lat_seconds_count{listener=\"http\",route=\"api\"} 2\n");
    assert_has(text, "weft_lat_seconds_overflow_total{listener=\"http\"} 0\n");
    free(text);
    weft_stats_block_free(b);
}

static void test_stage_rollback(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_family_id kept = family(WEFT_STAT_COUNTER, "weft_kept_total", 3);
    assert_int_equal(inc(b, kept, "GET", "2xx", 1), WEFT_STATS_OK);
    char *before = render();
    weft_stats_stage_begin();
    assert_int_equal(family(WEFT_STAT_COUNTER, "weft_kept_total", 3), kept);
    weft_stat_family_id staged = family(WEFT_STAT_COUNTER, "weft_staged_total", 3);
    assert_int_equal(inc(b, staged, "GET", "2xx", 1), WEFT_STATS_OK);
    char *during = render();
    assert_string_equal(during, before); /* hidden while staged */
    free(during);
    weft_stats_stage_end(false);
    char *after = render();
    assert_string_equal(after, before);
    free(after);
    free(before);
    assert_int_equal(inc(b, staged, "GET", "2xx", 1), WEFT_STATS_EINVAL); /* forgotten */
    assert_int_equal(value(kept, "GET", "2xx"), 1);
    /* The id is given again, clean. */
    assert_int_equal(family(WEFT_STAT_COUNTER, "weft_other_total", 3), staged);
    assert_int_equal(weft_stats_family_series(staged), 0);
    /* the same values again: a series of the new family (not a cached one) */
    assert_int_equal(inc(b, staged, "GET", "2xx", 1), WEFT_STATS_OK);
    assert_int_equal(weft_stats_family_series(staged), 1);
    assert_int_equal(value(staged, "GET", "2xx"), 1);
    weft_stats_block_free(b);
}

/* The per-thread cache of the last series per family: a hit needs equal
 * bytes (not the same pointer), every byte counts, ids sharing a cache
 * entry, kind and count checks on a cached family, a change of block. */
static void test_thread_cache(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_family_id f = family_v("weft_c_total", 256);
    /* one buffer, other bytes: values of 1..17 bytes differing in one byte */
    char buf[32];
    for (size_t len = 1; len <= 17; len++) {
        for (size_t at = 0; at < len; at++) {
            memset(buf, 'a', len);
            buf[at] = 'b';
            weft_sv v = {buf, len};
            assert_int_equal(fam_inc(b, f, &v, 1, 1), WEFT_STATS_OK);
            memset(buf, 'a', len);
            assert_int_equal(fam_inc(b, f, &v, 1, 1), WEFT_STATS_OK);
            uint64_t got = 0;
            buf[at] = 'b';
            assert_true(weft_stats_family_value(f, &v, 1, &got));
            assert_int_equal(got, 1);
        }
        memset(buf, 'a', len);
        weft_sv v = {buf, len};
        uint64_t got = 0;
        assert_true(weft_stats_family_value(f, &v, 1, &got));
        assert_int_equal(got, len); /* "aaa..." once per position */
    }
    assert_int_equal(weft_stats_family_series(f), 17 + 17 * 18 / 2);
    assert_int_equal(weft_stats_family_overflow(f), 0);

    /* ids 32 apart share a cache entry: alternate them */
    weft_stats_block_free(b);
    weft_stats_reset_for_tests();
    b = weft_stats_block_new();
    weft_stat_family_id ids[33];
    for (int i = 0; i < 33; i++) {
        char name[32];
        snprintf(name, sizeof name, "weft_c%d_total", i);
        ids[i] = family(WEFT_STAT_COUNTER, name, 4);
    }
    assert_int_equal(ids[32] % 32, ids[0] % 32);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(inc(b, ids[0], "GET", "2xx", 1), WEFT_STATS_OK);
        assert_int_equal(inc(b, ids[32], "GET", "2xx", 10), WEFT_STATS_OK);
    }
    assert_int_equal(value(ids[0], "GET", "2xx"), 5);
    assert_int_equal(value(ids[32], "GET", "2xx"), 50);

    /* a cached family still checks kind, count, values */
    weft_sv v[2] = {WEFT_SV_LIT("GET"), WEFT_SV_LIT("2xx")};
    assert_int_equal(fam_gauge(b, ids[0], v, 2, 1), WEFT_STATS_EINVAL);
    assert_int_equal(fam_inc(b, ids[0], v, 1, 1), WEFT_STATS_EINVAL);
    assert_int_equal(fam_inc(b, ids[0], NULL, 2, 1), WEFT_STATS_EINVAL);
    v[1] = (weft_sv){NULL, 3};
    assert_int_equal(fam_inc(b, ids[0], v, 2, 1), WEFT_STATS_EINVAL);
    assert_int_equal(value(ids[0], "GET", "2xx"), 5);

    /* another block on this thread, then the first freed and a new one */
    weft_stats_block *b2 = weft_stats_block_new();
    assert_int_equal(inc(b2, ids[0], "GET", "2xx", 100), WEFT_STATS_OK);
    assert_int_equal(inc(b, ids[0], "GET", "2xx", 1), WEFT_STATS_OK);
    weft_stats_block_free(b);
    weft_stats_block *b3 = weft_stats_block_new(); /* possibly b's address */
    assert_int_equal(inc(b3, ids[0], "GET", "2xx", 1000), WEFT_STATS_OK);
    assert_int_equal(value(ids[0], "GET", "2xx"), 1106);
    weft_stats_set_thread_block(NULL);
    weft_stats_block_free(b2);
    weft_stats_block_free(b3);
    assert_int_equal(value(ids[0], "GET", "2xx"), 1106);
}

/* Reloads: a kept stage shows what it registered; the scoped series it
 * did not register (a removed filter's, listener's, cluster's) leave the
 * output, and come back with their values if a later config registers
 * them again. A family may change its labels over a reload. Series
 * registered outside stages (process counters) stay. */
static void test_reload_removes_unregistered(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_id proc = weft_stats_counter("weft_proc_total", "", "Process");
    weft_stats_inc(b, proc, 1);

    weft_stats_stage_begin(); /* config 1: filter a (family + plain), filter b */
    weft_stat_family_id fa = family(WEFT_STAT_COUNTER, "weft_filter_a_rq_total", 5);
    weft_stat_id pa = weft_stats_counter("weft_filter_a_seen_total", L, "Seen");
    weft_stat_family_id fb = family(WEFT_STAT_COUNTER, "weft_filter_b_rq_total", 5);
    weft_stats_stage_end(true);
    assert_int_equal(inc(b, fa, "GET", "2xx", 2), WEFT_STATS_OK);
    assert_int_equal(inc(b, fb, "GET", "2xx", 3), WEFT_STATS_OK);
    weft_stats_inc(b, pa, 4);
    char *text = render();
    assert_has(text, "weft_filter_b_rq_total{listener=\"http\",method=\"GET\",code=\"2xx\"} 3\n");
    free(text);

    weft_stats_stage_begin(); /* config 2: b removed; a's family gets a third label */
    const char *three[] = {"method", "code", "route"};
    weft_stat_family_id fa3;
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_filter_a_rq_total", L, "Requests",
                                       three, 3, 5, &fa3),
                     WEFT_STATS_OK);
    assert_int_not_equal(fa3, fa);
    /* while it is staged, the running config's series are still shown */
    text = render();
    assert_has(text, "weft_filter_b_rq_total{");
    assert_has(text, "weft_filter_a_rq_total{listener=\"http\",method=\"GET\",code=\"2xx\"} 2\n");
    free(text);
    /* the same family twice in one config with other labels: refused */
    weft_stat_family_id dup;
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_filter_a_rq_total", L, "",
                                       METHOD_CODE, 2, 5, &dup),
                     WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_counter("weft_filter_a_seen_total", L, "Seen"), pa);
    weft_stats_stage_end(true);
    weft_sv v3[3] = {WEFT_SV_LIT("GET"), WEFT_SV_LIT("2xx"), WEFT_SV_LIT("r1")};
    assert_int_equal(fam_inc(b, fa3, v3, 3, 1), WEFT_STATS_OK);
    assert_int_equal(inc(b, fb, "GET", "2xx", 1), WEFT_STATS_OK); /* an old stream: no harm */
    text = render();
    assert_null(strstr(text, "weft_filter_b_rq"));  /* b's family and its overflow counter */
    assert_null(strstr(text, "code=\"2xx\"} 2\n")); /* a's 2-label family */
    assert_has(
        text,
        "weft_filter_a_rq_total{listener=\"http\",method=\"GET\",code=\"2xx\",route=\"r1\"} 1\n");
    assert_has(text, "weft_filter_a_seen_total{listener=\"http\"} 4\n"); /* kept, value kept */
    assert_has(text, "weft_proc_total 1\n");                             /* never scoped */
    assert_has(text, "weft_filter_a_rq_overflow_total{listener=\"http\"} 0\n");
    free(text);

    /* A refused config changes nothing shown, and its claims are undone. */
    weft_stats_stage_begin();
    assert_int_equal(family(WEFT_STAT_COUNTER, "weft_filter_b_rq_total", 5), fb);
    assert_int_equal(weft_stats_counter("weft_proc_total", "", "Process"), proc);
    weft_stats_stage_end(false);
    weft_stats_stage_begin(); /* config 3: a only (3 labels) */
    assert_int_equal(weft_stats_family(WEFT_STAT_COUNTER, "weft_filter_a_rq_total", L, "Requests",
                                       three, 3, 5, &dup),
                     WEFT_STATS_OK);
    weft_stats_stage_end(true);
    text = render();
    assert_null(strstr(text, "weft_filter_b_rq"));
    assert_has(text, "weft_proc_total 1\n"); /* found by a refused stage: still not scoped */
    assert_null(strstr(text, "weft_filter_a_seen_total")); /* not registered by config 3 */
    free(text);

    weft_stats_stage_begin(); /* config 4: b is back, with its values */
    assert_int_equal(family(WEFT_STAT_COUNTER, "weft_filter_b_rq_total", 5), fb);
    weft_stats_stage_end(true);
    text = render();
    assert_has(text, "weft_filter_b_rq_total{listener=\"http\",method=\"GET\",code=\"2xx\"} 4\n");
    free(text);
    weft_stats_block_free(b);
}

/* Writers making and bumping series at once (run under TSan too): every
 * update lands exactly once, in its series or in the overflow series. */
#define FAM_THREADS 4
#define FAM_ITERS 20000
#define FAM_VALUES 48
#define FAM_MAX 32

struct fam_arg {
    weft_stat_family_id f;
    int seed;
};

static void *fam_writer(void *p) {
    struct fam_arg *a = p;
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_set_thread_block(b);
    char m[16];
    for (int i = 0; i < FAM_ITERS; i++) {
        snprintf(m, sizeof m, "v%d", (i * 7 + a->seed) % FAM_VALUES);
        weft_sv v[2] = {weft_sv_from(m), WEFT_SV_LIT("2xx")};
        if (fam_inc(weft_stats_thread_block(), a->f, v, 2, 1) != WEFT_STATS_OK)
            return (void *)1;
    }
    return b; /* freed by the test after the join: folded into the retired block */
}

static void test_threads(void **state) {
    (void)state;
    weft_stat_family_id f = family(WEFT_STAT_COUNTER, "weft_mt_total", FAM_MAX);
    pthread_t th[FAM_THREADS];
    struct fam_arg args[FAM_THREADS];
    for (int i = 0; i < FAM_THREADS; i++) {
        args[i] = (struct fam_arg){f, i * 13};
        assert_int_equal(pthread_create(&th[i], NULL, fam_writer, &args[i]), 0);
    }
    for (int k = 0; k < 20; k++) { /* scrape while they write */
        char *text = render();
        free(text);
    }
    weft_stats_block *blocks[FAM_THREADS];
    for (int i = 0; i < FAM_THREADS; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_true(r != (void *)1);
        blocks[i] = r;
    }
    assert_int_equal(weft_stats_family_series(f), FAM_MAX);
    uint64_t total = 0, v;
    char m[16];
    for (int i = 0; i < FAM_VALUES; i++) {
        snprintf(m, sizeof m, "v%d", i);
        if ((v = value(f, m, "2xx")) != UINT64_MAX)
            total += v;
    }
    assert_true(weft_stats_family_value(f, NULL, 0, &v));
    assert_int_equal(weft_stats_family_overflow(f), v); /* delta 1: updates == values */
    total += v;
    assert_int_equal(total, (uint64_t)FAM_THREADS * FAM_ITERS);
    for (int i = 0; i < FAM_THREADS; i++)
        weft_stats_block_free(blocks[i]);
    assert_int_equal(weft_stats_family_overflow(f), v);
}

/* ABI 1.2 series handles, updated as filter_host.c does: a counter's
 * ordinary series by weft_stats_inc on the thread's block, the rest
 * through weft_stats_series_update_slow. */
static void series_inc(weft_stats_block *b, weft_stats_series_ref r, uint64_t d) {
    weft_stats_set_thread_block(b);
    if (weft_stats_series_plain(r, WEFT_STAT_COUNTER))
        weft_stats_add_here((uint32_t)r, d);
    else
        weft_stats_series_update_slow(r, WEFT_STAT_COUNTER, d);
}
static weft_stats_series_ref resolve(weft_stat_family_id f, const char *m, const char *c) {
    weft_sv v[2] = {weft_sv_from(m), weft_sv_from(c)};
    weft_stats_series_ref r = 1;
    assert_int_equal(weft_stats_series_resolve(f, v, 2, &r), WEFT_STATS_OK);
    assert_true(r != 0);
    return r;
}

static void test_series_handles(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_family_id f = family(WEFT_STAT_COUNTER, "weft_sh_total", 2);
    /* Resolving makes the series (shown at 0) and counts nothing. */
    weft_stats_series_ref get = resolve(f, "GET", "2xx");
    assert_int_equal(weft_stats_family_series(f), 1);
    assert_int_equal(value(f, "GET", "2xx"), 0);
    assert_true(weft_stats_series_plain(get, WEFT_STAT_COUNTER));
    assert_false(weft_stats_series_plain(get, WEFT_STAT_GAUGE));
    assert_true(resolve(f, "GET", "2xx") == get); /* same values, same handle */
    char *text = render();
    assert_has(text, "weft_sh_total{listener=\"http\",method=\"GET\",code=\"2xx\"} 0\n");
    free(text);
    series_inc(b, get, 3);
    assert_int_equal(inc(b, f, "GET", "2xx", 2), WEFT_STATS_OK); /* by values: same series */
    series_inc(b, get, 1);
    assert_int_equal(value(f, "GET", "2xx"), 6);

    /* Past max_series: the overflow handle; each update through it is
     * counted as folded, the resolve is not. */
    weft_stats_series_ref put = resolve(f, "PUT", "2xx");
    weft_stats_series_ref post = resolve(f, "POST", "5xx");
    assert_int_equal(weft_stats_family_series(f), 2);
    assert_false(weft_stats_series_plain(post, WEFT_STAT_COUNTER));
    assert_int_equal(weft_stats_family_overflow(f), 0);
    series_inc(b, post, 5);
    series_inc(b, post, 1);
    series_inc(b, put, 4);
    assert_int_equal(value(f, "PUT", "2xx"), 4);
    assert_int_equal(value(f, "POST", "5xx"), UINT64_MAX);
    uint64_t ov = 0;
    assert_true(weft_stats_family_value(f, NULL, 0, &ov));
    assert_int_equal(ov, 6);
    assert_int_equal(weft_stats_family_overflow(f), 2);
    char longv[WEFT_STATS_LABEL_VALUE_MAX + 2];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_false(weft_stats_series_plain(resolve(f, "GET", longv), WEFT_STAT_COUNTER));

    /* Another kind's update, the null handle, no block: ignored. */
    weft_stats_series_update_slow(get, WEFT_STAT_GAUGE, 100);
    weft_stats_series_update_slow(0, WEFT_STAT_COUNTER, 100);
    series_inc(NULL, get, 100);
    assert_int_equal(value(f, "GET", "2xx"), 6);

    /* Errors: *out is 0. */
    weft_sv one = WEFT_SV_LIT("GET"), nullv = {NULL, 1};
    weft_sv two[2] = {nullv, one};
    weft_stats_series_ref r = 1;
    assert_int_equal(weft_stats_series_resolve(f, &one, 1, &r), WEFT_STATS_EINVAL);
    assert_true(r == 0);
    assert_int_equal(weft_stats_series_resolve(f, two, 2, &r), WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_series_resolve(f, NULL, 2, &r), WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_series_resolve(4000, two, 2, &r), WEFT_STATS_EINVAL);
    assert_int_equal(weft_stats_series_resolve(f, two, 2, NULL), WEFT_STATS_EINVAL);

    /* Declared again (a reload): same family, the handle names the same series. */
    assert_int_equal(family(WEFT_STAT_COUNTER, "weft_sh_total", 2), f);
    assert_true(resolve(f, "GET", "2xx") == get);

    /* A histogram's handle takes the slow path and observes. */
    const char *names[] = {"route"};
    weft_stat_family_id h;
    assert_int_equal(
        weft_stats_family(WEFT_STAT_HISTOGRAM, "weft_sh_seconds", L, "", names, 1, 4, &h),
        WEFT_STATS_OK);
    weft_sv api = WEFT_SV_LIT("api");
    weft_stats_series_ref hr = 0;
    assert_int_equal(weft_stats_series_resolve(h, &api, 1, &hr), WEFT_STATS_OK);
    weft_stats_set_thread_block(b);
    weft_stats_series_update_slow(hr, WEFT_STAT_HISTOGRAM, 1500);
    weft_stats_series_update_slow(hr, WEFT_STAT_COUNTER, 1); /* another kind: ignored */
    uint64_t n = 0;
    assert_true(weft_stats_family_value(h, &api, 1, &n));
    assert_int_equal(n, 1);
    weft_stats_set_thread_block(NULL);
    weft_stats_block_free(b);
}

/* Several threads, each with its block, bump the handles one thread
 * resolved (TSan: the handle is a plain value, the slots per thread). */
struct sh_arg {
    weft_stats_series_ref r[2];
};
static void *sh_writer(void *p) {
    struct sh_arg *a = p;
    weft_stats_block *b = weft_stats_block_new();
    for (int i = 0; i < FAM_ITERS; i++)
        series_inc(b, a->r[i & 1], 1);
    weft_stats_set_thread_block(NULL);
    return b;
}

static void test_series_handles_threads(void **state) {
    (void)state;
    weft_stat_family_id f = family(WEFT_STAT_COUNTER, "weft_shmt_total", 1);
    struct sh_arg a = {{resolve(f, "GET", "2xx"), resolve(f, "PUT", "2xx")}}; /* 2nd: overflow */
    pthread_t th[FAM_THREADS];
    for (int i = 0; i < FAM_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sh_writer, &a), 0);
    weft_stats_block *blocks[FAM_THREADS];
    for (int i = 0; i < FAM_THREADS; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        blocks[i] = r;
    }
    uint64_t half = (uint64_t)FAM_THREADS * FAM_ITERS / 2, ov = 0;
    assert_int_equal(value(f, "GET", "2xx"), half);
    assert_true(weft_stats_family_value(f, NULL, 0, &ov));
    assert_int_equal(ov, half);
    assert_int_equal(weft_stats_family_overflow(f), half);
    for (int i = 0; i < FAM_THREADS; i++)
        weft_stats_block_free(blocks[i]);
    assert_int_equal(value(f, "GET", "2xx"), half); /* folded into the retired block */
}

/* The reload contract of docs/sdk.md 2.5b: a stage that is rolled back
 * (a refused reload) does not undo a resolve into a family declared before
 * it: the series stays, at 0, and takes its place in max_series; a family
 * the stage made is gone with it (its handle's updates are dropped). */
static void test_series_handles_refused_stage(void **state) {
    (void)state;
    weft_stats_block *b = weft_stats_block_new();
    weft_stat_family_id f = family(WEFT_STAT_COUNTER, "weft_shr_total", 2);
    weft_stats_series_ref a = resolve(f, "GET", "2xx");
    series_inc(b, a, 1);
    weft_stats_stage_begin();
    assert_int_equal(family(WEFT_STAT_COUNTER, "weft_shr_total", 2), f); /* declared again */
    weft_stats_series_ref q = resolve(f, "PUT", "2xx");
    weft_stat_family_id nf = family(WEFT_STAT_COUNTER, "weft_shr_new_total", 2);
    weft_stats_series_ref n = resolve(nf, "GET", "2xx");
    weft_stats_stage_end(false);
    assert_int_equal(weft_stats_family_series(f), 2); /* q stayed */
    assert_int_equal(value(f, "PUT", "2xx"), 0);
    char *text = render();
    assert_has(text, "weft_shr_total{listener=\"http\",method=\"PUT\",code=\"2xx\"} 0\n");
    assert_null(strstr(text, "weft_shr_new_total"));
    free(text);
    /* the next value is past max_series: the overflow series */
    assert_false(weft_stats_series_plain(resolve(f, "POST", "2xx"), WEFT_STAT_COUNTER));
    series_inc(b, q, 2);
    assert_int_equal(value(f, "PUT", "2xx"), 2);
    assert_int_equal(value(f, "GET", "2xx"), 1);
    /* the rolled-back family's handle: its family is gone, the id and
     * slots free again; an overflow-path update finds no family */
    weft_stats_series_update_slow(n | WEFT_STATS_SERIES_OVERFLOW, WEFT_STAT_COUNTER, 1);
    weft_stats_set_thread_block(NULL);
    weft_stats_block_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_series_handles_refused_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registration_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauge_and_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_removes_unregistered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_handles_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
