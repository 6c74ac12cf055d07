/* test_filtertest_state: the kit mirrors SDK 1.1's state group with weft's
 * semantics, driven through the outlier test filter
 * (tests/filters/outlier.c, linked in): shared state kept over a
 * reconfigure (the kit's reload) with the same layout and fresh with
 * another, the old block destroyed; clusters with test-defined endpoints
 * (address, weight, health, locality, labels); per-endpoint counters;
 * ejection on the kit's clock, seen by the kit's load balancer (skipped,
 * panic when every healthy endpoint is ejected, back after its time);
 * misuse (an unknown cluster, a call outside config_create, a foreign
 * cluster handle, bad slots and durations). The worker variants
 * (weft_worker_cluster_endpoint_count and the rest): a restore from a
 * worker timer before the ejection time is up, on the kit's clock; their
 * checks (NULL, stale and foreign-thread handles, worker_destroy). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filtertest.h>

const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);

static char err[512];

static wft_env *make_env(void) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_add_endpoint(env, "be", "10.0.0.1:80", 1), 0);
    assert_int_equal(wft_env_add_endpoint(env, "be", "10.0.0.2:80", 3), 0);
    assert_int_equal(wft_env_add_endpoint(env, "be", "10.0.0.2:80", 1), -1); /* duplicate */
    assert_int_equal(wft_env_endpoint_add_label(env, "be", "10.0.0.2:80", "version", "v2"), 0);
    assert_int_equal(wft_env_endpoint_add_label(env, "be", "10.0.0.2:80", "app", "x"), 0);
    assert_int_equal(wft_env_endpoint_set_locality(env, "be", "10.0.0.2:80", "eu", "eu-1a", ""), 0);
    return env;
}

static const char *const host_hdr[] = {"host: a", NULL};

/* One exchange; returns the response header `name` (copied to buf). */
static const char *exchange(wft_env *env, const char *upstream, int status, const char *name,
                            char *buf, size_t len) {
    wft_stream *st = wft_stream_new(env, "GET", "/", host_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    if (upstream)
        assert_int_equal(
            wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, status, upstream, "be", 1000), 0);
    assert_int_equal(wft_response_headers(st, status, NULL, true), WEFT_CONTINUE);
    const char *v = wft_header(st, WEFT_RESPONSE_HEADERS, name);
    snprintf(buf, len, "%s", v ? v : "");
    wft_stream_free(st);
    return buf;
}

static void test_shared_state_over_reconfigure(void **state) {
    (void)state;
    wft_env *env = make_env();
    char buf[512];
    const char *cfg = "cluster: be\n";
    assert_int_equal(wft_env_configure(env, cfg, err, sizeof(err)), 0);
    assert_int_equal(wft_shared_blocks(env), 1);
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-requests", buf, sizeof(buf)), "1");
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-requests", buf, sizeof(buf)), "2");
    const char *block = exchange(env, NULL, 200, "x-outlier-block", buf, sizeof(buf));
    char first_block[32];
    snprintf(first_block, sizeof(first_block), "%s", block);
    /* The kit's reload: same layout, same block, counter kept. */
    assert_int_equal(wft_env_configure(env, cfg, err, sizeof(err)), 0);
    assert_int_equal(wft_shared_blocks(env), 1);
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-requests", buf, sizeof(buf)), "4");
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-block", buf, sizeof(buf)), first_block);
    assert_false(wft_log_contains(env, "shared block destroyed"));
    /* Another version: a fresh block; the old one is destroyed. */
    assert_int_equal(wft_env_configure(env, "cluster: be\nstate_version: 2\n", err, sizeof(err)),
                     0);
    assert_int_equal(wft_shared_blocks(env), 1);
    assert_true(wft_log_contains(env, "shared block destroyed (5 requests)"));
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-requests", buf, sizeof(buf)), "1");
    assert_string_not_equal(exchange(env, NULL, 200, "x-outlier-block", buf, sizeof(buf)),
                            first_block);
    /* Another size: fresh again. */
    assert_int_equal(wft_env_configure(env, "cluster: be\nstate_version: 2\nstate_size: 256\n", err,
                                       sizeof(err)),
                     0);
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-requests", buf, sizeof(buf)), "1");
    /* A refused config keeps the running config's block. */
    assert_int_equal(wft_env_configure(env, "cluster: nope\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no such cluster"));
    assert_int_equal(wft_shared_blocks(env), 0); /* the kit unconfigures first: nothing holds it */
    wft_env_free(env);
}

/* Per-route shared state (route_config_create's weft_shared_get): kept
 * over the kit's reload when the new routes ask again, destroyed when the
 * traffic after a reload that dropped it starts (as weft: once the old
 * snapshot is gone). */
static void test_route_shared_state(void **state) {
    (void)state;
    wft_env *env = make_env();
    char buf[512], err2[256];
    assert_int_equal(wft_env_configure(env, "cluster: be\n", err, sizeof(err)), 0);
    assert_int_equal(wft_env_add_route(env, "r-solo", "default", "be", "/", "route_counter: solo\n",
                                       err2, sizeof(err2)),
                     0);
    assert_int_equal(wft_shared_blocks(env), 2);
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-route-requests", buf, sizeof(buf)),
                        "1");
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-route-requests", buf, sizeof(buf)),
                        "2");
    /* The reload: the route comes back with its config: the same block. */
    assert_int_equal(wft_env_configure(env, "cluster: be\n", err, sizeof(err)), 0);
    assert_int_equal(wft_env_add_route(env, "r-solo", "default", "be", "/", "route_counter: solo\n",
                                       err2, sizeof(err2)),
                     0);
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-route-requests", buf, sizeof(buf)),
                        "3");
    assert_false(wft_log_contains(env, "route block solo destroyed"));
    /* A reload whose routes do not ask for it: gone when traffic starts. */
    assert_int_equal(wft_env_configure(env, "cluster: be\n", err, sizeof(err)), 0);
    assert_false(wft_log_contains(env, "route block solo destroyed"));
    assert_string_equal(exchange(env, NULL, 200, "x-outlier-route-requests", buf, sizeof(buf)), "");
    assert_true(wft_log_contains(env, "route block solo destroyed (3 requests)"));
    assert_int_equal(wft_shared_blocks(env), 1);
    wft_env_free(env);
}

static void test_endpoint_view(void **state) {
    (void)state;
    wft_env *env = make_env();
    char buf[512];
    assert_int_equal(wft_env_configure(env, "cluster: be\n", err, sizeof(err)), 0);
    assert_int_equal(wft_env_endpoint_set_healthy(env, "be", "10.0.0.1:80", false), 0);
    exchange(env, NULL, 200, "x-outlier-endpoints", buf, sizeof(buf));
    /* health/ejected_ms/weight[/first label], labels sorted by key. */
    assert_string_equal(buf, "10.0.0.1:80=1/0/1,10.0.0.2:80=0/0/3/app=x");
    assert_int_equal(wft_env_remove_endpoint(env, "be", "10.0.0.1:80"), 0);
    exchange(env, NULL, 200, "x-outlier-endpoints", buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.2:80=0/0/3/app=x");
    wft_env_free(env);
}

static void test_ejection_and_kit_lb(void **state) {
    (void)state;
    wft_env *env = make_env();
    char buf[512];
    assert_int_equal(
        wft_env_configure(env, "cluster: be\nconsecutive_5xx: 2\nejection_time: 1500ms\nslot: 5\n",
                          err, sizeof(err)),
        0);
    /* Round robin over both. */
    const char *a = wft_env_pick_endpoint(env, "be"), *b = wft_env_pick_endpoint(env, "be");
    assert_string_not_equal(a, b);
    /* Two consecutive 503 from .2: ejected for 1.5 s; the counter restarts. */
    exchange(env, "10.0.0.2:80", 503, "x-outlier-endpoints", buf, sizeof(buf));
    assert_int_equal(wft_endpoint_counter(env, "be", "10.0.0.2:80", 5), 1);
    exchange(env, "10.0.0.2:80", 503, "x-outlier-endpoints", buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.1:80=0/0/1,10.0.0.2:80=2/1500/3/app=x");
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 1500);
    assert_int_equal(wft_endpoint_counter(env, "be", "10.0.0.2:80", 5), 0);
    assert_int_equal(wft_stat(env, "ejections"), 1);
    for (int k = 0; k < 10; k++)
        assert_string_equal(wft_env_pick_endpoint(env, "be"), "10.0.0.1:80");
    /* A success resets .1's count: 503, 200, 503 never ejects it. */
    exchange(env, "10.0.0.1:80", 503, "x", buf, sizeof(buf));
    exchange(env, "10.0.0.1:80", 200, "x", buf, sizeof(buf));
    exchange(env, "10.0.0.1:80", 503, "x", buf, sizeof(buf));
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.1:80"), 0);
    /* 500 ms later .1 fails again: both ejected: panic, both picked. */
    wft_clock_advance(env, 500);
    exchange(env, "10.0.0.1:80", 503, "x", buf, sizeof(buf));
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.1:80"), 1500);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 1000);
    a = wft_env_pick_endpoint(env, "be");
    b = wft_env_pick_endpoint(env, "be");
    assert_string_not_equal(a, b);
    /* The kit's clock: .2 is back after its 1.5 s, .1 still ejected. */
    wft_clock_advance(env, 999);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 1);
    wft_clock_advance(env, 1);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 0);
    for (int k = 0; k < 4; k++)
        assert_string_equal(wft_env_pick_endpoint(env, "be"), "10.0.0.2:80");
    /* Ejection and counters belong to the endpoint: kept over a reconfigure. */
    assert_int_equal(
        wft_env_configure(env, "cluster: be\nconsecutive_5xx: 2\nslot: 5\n", err, sizeof(err)), 0);
    assert_true(wft_endpoint_ejected_ms(env, "be", "10.0.0.1:80") > 0);
    /* No healthy endpoint: no pick. */
    wft_env_endpoint_set_healthy(env, "be", "10.0.0.1:80", false);
    wft_env_endpoint_set_healthy(env, "be", "10.0.0.2:80", false);
    assert_null(wft_env_pick_endpoint(env, "be"));
    wft_env_free(env);
}

static void test_worker_restore(void **state) {
    (void)state;
    wft_env *env = make_env();
    char buf[512];
    assert_int_equal(wft_env_configure(env,
                                       "cluster: be\nconsecutive_5xx: 1\nejection_time: 10s\n"
                                       "restore_after: 500ms\nslot: 3\n",
                                       err, sizeof(err)),
                     0);
    assert_int_equal(wft_worker_timers_pending(env), 0);
    assert_string_not_equal(exchange(env, NULL, 200, "x-outlier-worker", buf, sizeof(buf)), "");
    /* One 503: ejected for 10 s, and a restore timer armed for 500 ms. */
    exchange(env, "10.0.0.2:80", 503, "x", buf, sizeof(buf));
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 10000);
    assert_int_equal(wft_worker_timers_pending(env), 1);
    for (int k = 0; k < 4; k++)
        assert_string_equal(wft_env_pick_endpoint(env, "be"), "10.0.0.1:80");
    wft_clock_advance(env, 499);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 9501);
    assert_int_equal(wft_stat(env, "restores"), 0);
    /* The worker timer restores it 9.5 s before its ejection time. */
    wft_clock_advance(env, 1);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 0);
    assert_int_equal(wft_worker_timers_pending(env), 0);
    assert_int_equal(wft_stat(env, "restores"), 1);
    const char *a = wft_env_pick_endpoint(env, "be"), *b = wft_env_pick_endpoint(env, "be");
    assert_string_not_equal(a, b);
    /* Both ejected (panic), then the sweep a request asks for (x-outlier-
     * restore-in: 0, on the next loop turn) restores both. */
    exchange(env, "10.0.0.1:80", 503, "x", buf, sizeof(buf));
    exchange(env, "10.0.0.2:80", 503, "x", buf, sizeof(buf));
    assert_int_equal(wft_worker_timers_pending(env), 2);
    static const char *const sweep_hdr[] = {"host: a", "x-outlier-restore-in: 0", NULL};
    wft_stream *st = wft_stream_new(env, "GET", "/", sweep_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    wft_stream_free(st);
    assert_int_equal(wft_worker_timers_pending(env), 3);
    wft_clock_advance(env, 0);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.1:80"), 0);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 0);
    assert_int_equal(wft_stat(env, "restores"), 3);
    /* The two per-endpoint timers find nothing to restore later. */
    wft_clock_advance(env, 500);
    assert_int_equal(wft_worker_timers_pending(env), 0);
    assert_int_equal(wft_stat(env, "restores"), 3);
    /* Pending restores at a reconfigure are cancelled with the worker (no
     * leak: the filter frees them in worker_destroy, where its checks of
     * WEFT_ERR_STATE hold). */
    exchange(env, "10.0.0.2:80", 503, "x", buf, sizeof(buf));
    assert_int_equal(wft_worker_timers_pending(env), 1);
    assert_int_equal(wft_env_configure(env, "cluster: be\n", err, sizeof(err)), 0);
    assert_int_equal(wft_worker_timers_pending(env), 0);
    assert_int_equal(wft_stat(env, "bad"), 0);
    /* worker_destroy's two probes (and the filter's probe of an earlier
     * test's worker handle, kept in a global of the filter: stale) */
    assert_true(wft_misuse_count(env) >= 2);
    assert_true(wft_log_contains(
        env, "worker_cluster_endpoint_count: not allowed now (worker_destroy is running)"));
    wft_env_free(env);
}

/* ---- misuse through a filter of the test's own ---- */

static const weft_cluster *g_cluster;
static int mis_config_obj; /* the config object (a worker handle needs a non-NULL config) */
static weft_worker *g_worker;
static int mis_destroyed;

static int mis_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    (void)node;
    void *block;
    assert_int_equal(weft_shared_get(setup, (weft_str){"", 0}, 8, 1, NULL, NULL, NULL, &block),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_shared_get(setup, WEFT_STR("k"), 0, 1, NULL, NULL, NULL, &block),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_cluster_get(setup, WEFT_STR("be"), &g_cluster), WEFT_OK);
    const weft_cluster *none;
    assert_int_equal(weft_cluster_get(setup, WEFT_STR("other"), &none), WEFT_ERR_NOT_FOUND);
    *config = &mis_config_obj;
    return 0;
}

static weft_status mis_req_headers(void *ctx, weft_stream *s, bool end) {
    (void)ctx;
    (void)end;
    size_t n = 0, i = 9;
    assert_int_equal(weft_cluster_endpoint_count(s, g_cluster, &n), WEFT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(weft_cluster_endpoint_count(s, (const weft_cluster *)&n, &n),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_cluster_endpoint_count(NULL, g_cluster, &n), WEFT_ERR_HANDLE);
    assert_int_equal(weft_cluster_endpoint_find(s, g_cluster, WEFT_STR("10.0.0.2:80"), &i),
                     WEFT_OK);
    assert_int_equal(i, 1);
    assert_int_equal(weft_cluster_endpoint_find(s, g_cluster, WEFT_STR("10.0.0.9:80"), &i),
                     WEFT_ERR_NOT_FOUND);
    weft_endpoint_info info = {.size = 4};
    assert_int_equal(weft_cluster_endpoint_get(s, g_cluster, 0, &info), WEFT_ERR_INVALID);
    info.size = sizeof(info);
    assert_int_equal(weft_cluster_endpoint_get(s, g_cluster, 2, &info), WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_cluster_endpoint_get(s, g_cluster, 1, &info), WEFT_OK);
    assert_int_equal(info.weight, 3);
    assert_int_equal(info.n_labels, 2);
    assert_true(info.region.len == 2 && memcmp(info.region.ptr, "eu", 2) == 0);
    weft_str k, v;
    assert_int_equal(weft_cluster_endpoint_label(s, g_cluster, 1, 1, &k, &v), WEFT_OK);
    assert_true(k.len == 7 && memcmp(k.ptr, "version", 7) == 0);
    assert_int_equal(weft_cluster_endpoint_label(s, g_cluster, 1, 2, &k, &v), WEFT_ERR_NOT_FOUND);
    uint64_t val = 0;
    assert_int_equal(
        weft_endpoint_counter_add(s, g_cluster, 0, WEFT_ENDPOINT_COUNTER_SLOTS, 1, &val),
        WEFT_ERR_INVALID);
    assert_int_equal(weft_endpoint_counter_add(s, g_cluster, 0, 7, -1, &val), WEFT_OK);
    assert_true(val == UINT64_MAX); /* modulo 2^64 */
    assert_int_equal(weft_endpoint_counter_add(s, g_cluster, 0, 7, 0, &val), WEFT_OK);
    assert_true(val == UINT64_MAX); /* delta 0 reads */
    assert_int_equal(weft_endpoint_eject(s, g_cluster, 0, 0), WEFT_ERR_INVALID);
    assert_int_equal(weft_endpoint_eject(s, g_cluster, 0, 86400001), WEFT_ERR_INVALID);
    assert_int_equal(weft_endpoint_eject(s, g_cluster, 0, 10), WEFT_OK);
    assert_int_equal(weft_endpoint_restore(s, g_cluster, 0), WEFT_OK);
    assert_int_equal(weft_endpoint_restore(s, g_cluster, 0), WEFT_OK);
    return WEFT_CONTINUE;
}

static void *mis_worker_create(void *config) {
    g_worker = weft_worker_current(config);
    assert_non_null(g_worker);
    return NULL;
}

static void mis_worker_destroy(void *config, void *worker) {
    (void)config;
    (void)worker;
    size_t n;
    assert_int_equal(weft_worker_cluster_endpoint_count(g_worker, g_cluster, &n), WEFT_ERR_STATE);
    assert_int_equal(weft_worker_endpoint_restore(g_worker, g_cluster, 0), WEFT_ERR_STATE);
    mis_destroyed++;
}

static void *other_thread_count(void *arg) {
    size_t n;
    (void)arg;
    return (void *)(intptr_t)weft_worker_cluster_endpoint_count(g_worker, g_cluster, &n);
}

/* The worker variants' checks, on the env's worker handle (test thread). */
static void worker_misuse(wft_env *env) {
    weft_worker *w = wft_env_worker(env);
    assert_non_null(w);
    assert_ptr_equal(w, g_worker);
    size_t n = 0, i = 9;
    assert_int_equal(weft_worker_cluster_endpoint_count(w, g_cluster, &n), WEFT_OK);
    assert_int_equal(n, 2);
    assert_int_equal(weft_worker_cluster_endpoint_count(NULL, g_cluster, &n), WEFT_ERR_HANDLE);
    assert_int_equal(
        weft_worker_cluster_endpoint_count((weft_worker *)(uintptr_t)0x12345, g_cluster, &n),
        WEFT_ERR_HANDLE);
    assert_int_equal(weft_worker_cluster_endpoint_count(w, (const weft_cluster *)&n, &n),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_cluster_endpoint_count(w, g_cluster, NULL), WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_cluster_endpoint_find(w, g_cluster, WEFT_STR("10.0.0.2:80"), &i),
                     WEFT_OK);
    assert_int_equal(i, 1);
    assert_int_equal(weft_worker_cluster_endpoint_find(w, g_cluster, WEFT_STR("10.0.0.9:80"), &i),
                     WEFT_ERR_NOT_FOUND);
    weft_endpoint_info info = {.size = 4};
    assert_int_equal(weft_worker_cluster_endpoint_get(w, g_cluster, 1, &info), WEFT_ERR_INVALID);
    info.size = sizeof(info);
    assert_int_equal(weft_worker_cluster_endpoint_get(w, g_cluster, 2, &info), WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_worker_cluster_endpoint_get(w, g_cluster, 1, &info), WEFT_OK);
    assert_int_equal(info.weight, 3);
    assert_int_equal(info.health, WEFT_ENDPOINT_HEALTHY);
    weft_str k, v;
    assert_int_equal(weft_worker_cluster_endpoint_label(w, g_cluster, 1, 0, &k, &v), WEFT_OK);
    assert_true(k.len == 3 && memcmp(k.ptr, "app", 3) == 0);
    assert_int_equal(weft_worker_cluster_endpoint_label(w, g_cluster, 1, 2, &k, &v),
                     WEFT_ERR_NOT_FOUND);
    uint64_t val = 0;
    assert_int_equal(weft_worker_endpoint_counter_add(w, g_cluster, 1, 8, 1, &val),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_endpoint_counter_add(w, g_cluster, 1, 6, 5, &val), WEFT_OK);
    assert_true(val == 5);
    assert_int_equal(weft_worker_endpoint_counter_set(w, g_cluster, 1, 6, 2), WEFT_OK);
    assert_int_equal(wft_endpoint_counter(env, "be", "10.0.0.2:80", 6), 2);
    assert_int_equal(weft_worker_endpoint_eject(w, g_cluster, 1, 0), WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_endpoint_eject(w, g_cluster, 1, 86400001), WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_endpoint_eject(w, g_cluster, 1, 250), WEFT_OK);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 250);
    assert_int_equal(weft_worker_cluster_endpoint_get(w, g_cluster, 1, &info), WEFT_OK);
    assert_int_equal(info.health, WEFT_ENDPOINT_EJECTED);
    assert_int_equal(info.ejected_ms, 250);
    assert_int_equal(weft_worker_endpoint_restore(w, g_cluster, 1), WEFT_OK);
    assert_int_equal(weft_worker_endpoint_restore(w, g_cluster, 1), WEFT_OK);
    assert_int_equal(wft_endpoint_ejected_ms(env, "be", "10.0.0.2:80"), 0);
    pthread_t th;
    void *res = NULL;
    assert_int_equal(pthread_create(&th, NULL, other_thread_count, NULL), 0);
    pthread_join(th, &res);
    assert_int_equal((int)(intptr_t)res, WEFT_ERR_THREAD);
}

static const weft_http_filter_ops mis_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = mis_config_create,
    .worker_create = mis_worker_create,
    .worker_destroy = mis_worker_destroy,
    .on_request_headers = mis_req_headers,
};
static const weft_filter_descriptor mis_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("misuse", WEFT_FILTER_HTTP),
    .http = &mis_ops,
};
static const weft_filter_descriptor *mis_entry(const weft_host_api *h) {
    weft__host = h; /* defined by the outlier filter's WEFT_FILTER_DEFINE */
    return &mis_desc;
}

static void test_misuse(void **state) {
    (void)state;
    wft_env *env = wft_env_new(mis_entry, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_add_endpoint(env, "be", "10.0.0.1:80", 1), 0);
    assert_int_equal(wft_env_add_endpoint(env, "be", "10.0.0.2:80", 3), 0);
    assert_int_equal(wft_env_endpoint_add_label(env, "be", "10.0.0.2:80", "version", "v2"), 0);
    assert_int_equal(wft_env_endpoint_add_label(env, "be", "10.0.0.2:80", "app", "x"), 0);
    assert_int_equal(wft_env_endpoint_set_locality(env, "be", "10.0.0.2:80", "eu", "", ""), 0);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    wft_stream *st = wft_stream_new(env, "GET", "/", host_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_true(wft_misuse_count(env) > 0);
    wft_stream_free(st);
    worker_misuse(env);
    /* A reconfigure: worker_destroy (STATE there), then the old handle is stale. */
    weft_worker *old = g_worker;
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_int_equal(mis_destroyed, 1);
    size_t n;
    assert_int_equal(weft_worker_cluster_endpoint_count(old, g_cluster, &n), WEFT_ERR_HANDLE);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_state_over_reconfigure),
        cmocka_unit_test(test_endpoint_view),
        cmocka_unit_test(test_route_shared_state),
        cmocka_unit_test(test_ejection_and_kit_lb),
        cmocka_unit_test(test_worker_restore),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
