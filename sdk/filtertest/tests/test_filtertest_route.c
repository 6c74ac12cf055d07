/* test_filtertest_route: the kit's mirror of ABI 1.1 routing, driving the
 * routecfg test filter (tests/filters/routecfg.c, linked in): routes
 * declared with a per-route config, the route a stream sees before the
 * filter runs, route info, re-match (weft_route_refresh) and its state
 * rule, pinned routes, per-route config errors and lifetimes. */
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

static wft_env *env_with_routes(void) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    if (wft_env_add_route(env, "r-alpha", "main", "ca", "/alpha", "header_value: alpha", err,
                          sizeof(err)) ||
        wft_env_add_route(env, "r-beta", "main", "cb", "/beta", "{header_value: beta}", err,
                          sizeof(err)) ||
        wft_env_add_route(env, "r-plain", "other", "ca", "/plain", NULL, err, sizeof(err)))
        fail_msg("%s", err);
    return env;
}

static wft_stream *get(wft_env *env, const char *path, const char *extra) {
    wft_stream *st =
        wft_stream_new(env, "GET", path, (const char *const[]){"host: a", extra, NULL});
    assert_non_null(st);
    return st;
}

static void test_route_and_config_seen_by_the_filter(void **state) {
    (void)state;
    wft_env *env = env_with_routes();
    assert_int_equal(wft_gauge(env, "route_configs"), 2);

    wft_stream *st = get(env, "/alpha/x?q=1", NULL);
    assert_string_equal(wft_stream_route(st), "r-alpha");
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-name"), "r-alpha");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-vhost"), "main");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cluster"), "ca");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cfg"), "alpha");
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-route-cfg-resp"), "alpha");
    wft_stream_free(st);

    st = get(env, "/plain/x", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-name"), "r-plain");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-vhost"), "other");
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cfg"));
    wft_stream_free(st);

    /* no route: the filter still runs, without a route */
    st = get(env, "/elsewhere", NULL);
    assert_null(wft_stream_route(st));
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-name"));
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cluster"), "");
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cfg"));
    wft_stream_free(st);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

static void test_rematch(void **state) {
    (void)state;
    wft_env *env = env_with_routes();
    wft_stream *st = get(env, "/alpha/x", "x-rematch: /beta/moved");
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_stream_route(st), "r-beta");
    assert_string_equal(wft_request_path(st), "/beta/moved");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-name"), "r-beta");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cluster"), "cb");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cfg"), "beta");
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-route-cfg-resp"), "beta");
    wft_stream_free(st);

    /* re-match to no route */
    st = get(env, "/alpha/x", "x-rematch: /nowhere");
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_null(wft_stream_route(st));
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cfg"));
    wft_stream_free(st);

    /* after the request header phase: WEFT_ERR_STATE, one misuse line */
    st = get(env, "/alpha/x", "x-refresh-late: 1");
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-refresh-late-result"), "-3");
    assert_string_equal(wft_stream_route(st), "r-alpha");
    assert_int_equal(wft_misuse_count(env), 1);
    assert_non_null(strstr(wft_misuse_last(env), "route_refresh"));
    wft_stream_free(st);
    wft_env_free(env);
}

/* From a timer callback the call is the timer owner's. */
static void test_config_in_timer_callback(void **state) {
    (void)state;
    wft_env *env = env_with_routes();
    wft_stream *st = get(env, "/beta/x", "x-cfg-in-timer: 1");
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_false(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    wft_clock_advance(env, 1);
    assert_true(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cfg-timer"), "beta");
    wft_stream_free(st);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

static void test_pinned_route(void **state) {
    (void)state;
    wft_env *env = env_with_routes();
    wft_stream *st = get(env, "/alpha/x", NULL);
    assert_int_equal(wft_stream_set_route(st, "r-beta"), 0);
    assert_int_equal(wft_stream_set_route(st, "r-none"), -1);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-cfg"), "beta");
    assert_int_equal(wft_stream_set_route(st, NULL), -1); /* after the first event */
    wft_stream_free(st);
    st = get(env, "/alpha/x", NULL);
    assert_int_equal(wft_stream_set_route(st, NULL), 0);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-route-name"));
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_route_config_errors_and_lifetime(void **state) {
    (void)state;
    wft_env *env = env_with_routes();
    /* the filter refuses a value: its config_fail, with the node's position */
    assert_int_equal(wft_env_add_route(env, "r-bad", "main", "ca", "/bad", "header_value: \"\"",
                                       err, sizeof(err)),
                     -1);
    assert_string_equal(err, "route-config:1:15: header_value must be a non-empty string");
    assert_int_equal(
        wft_env_add_route(env, "r-bad", "main", "ca", "/bad", "[1, 2]", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "route-config:1:1: per-route config must be"));
    assert_int_equal(
        wft_env_add_route(env, "r-bad", "main", "ca", "/bad", "{header_value: [", err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "route-config:"));
    assert_non_null(strstr(err, "invalid YAML"));
    assert_int_equal(wft_env_add_route(env, "r-alpha", "main", "ca", "/x", NULL, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "exists already"));
    /* refused ones were not kept (nor destroyed after -1) */
    assert_int_equal(wft_gauge(env, "route_configs"), 2);
    /* configuring again drops the routes: route_config_destroy for each */
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_int_equal(wft_gauge(env, "route_configs"), 0);
    wft_stream *st = get(env, "/alpha/x", NULL);
    assert_null(wft_stream_route(st));
    wft_stream_free(st);
    /* live streams: no new routes */
    st = get(env, "/alpha/x", NULL);
    assert_int_equal(wft_env_add_route(env, "r-late", "main", "ca", "/", NULL, err, sizeof(err)),
                     -1);
    wft_stream_free(st);
    wft_env_free(env);
}

/* A filter declaring ABI 1.0 (its path rewrite is routed on, as in the
 * core) next to the linked-in routecfg: both share weft__host. */
static weft_status old_req_headers(void *ctx, weft_stream *s, bool end) {
    (void)ctx;
    (void)end;
    weft_str to;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-reroute-path"), &to) == WEFT_OK)
        weft_request_set_path(s, to);
    return WEFT_CONTINUE;
}
static const weft_http_filter_ops old_ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_headers = old_req_headers,
};
static const weft_filter_descriptor old_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT_MINOR("old", WEFT_FILTER_HTTP, 0),
    .http = &old_ops,
};
static const weft_filter_descriptor *old_entry(const weft_host_api *h) {
    weft__host = h;
    return &old_desc;
}

static void test_1_0_filter_rewrite_is_routed_on(void **state) {
    (void)state;
    wft_env *env = wft_env_new(old_entry, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(
        wft_env_add_route(env, "r-alpha", "main", "ca", "/alpha", NULL, err, sizeof(err)), 0);
    assert_int_equal(
        wft_env_add_route(env, "r-beta", "main", "cb", "/beta", NULL, err, sizeof(err)), 0);
    wft_stream *st = get(env, "/alpha/x", "x-reroute-path: /beta/y");
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_stream_route(st), "r-beta");
    wft_stream_free(st);
    wft_env_free(env);
    /* a 1.1 filter's rewrite alone keeps the route */
    env = env_with_routes();
    st = get(env, "/alpha/x", "x-rewrite-only: /beta/y");
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_stream_route(st), "r-alpha");
    assert_string_equal(wft_request_path(st), "/beta/y");
    wft_stream_free(st);
    wft_env_free(env);
}

/* The kit's table has the routing functions (WEFT_HOST_HAS true). */
static void test_host_has(void **state) {
    (void)state;
    const weft_host_api *h = wft_host_api();
    assert_true(h->size >= offsetof(weft_host_api, route_config) + sizeof(h->route_config));
    assert_non_null(h->route_info);
    assert_non_null(h->route_refresh);
    assert_non_null(h->route_config);
}

/* ABI 1.2: on_stream_complete's info carries the filter's per-route
 * config, the same pointer weft_route_config(s) returns there. */
static const weft_host_api *g_rhost;
static const void *g_info_cfg, *g_call_cfg;
static int g_marker;

static int rprobe_route_config(const weft_config_node *node, weft_filter_setup *setup,
                               void *filter_config, void **route_config) {
    (void)node, (void)setup, (void)filter_config;
    *route_config = &g_marker;
    return 0;
}
static void rprobe_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config, (void)route_config;
}
static void rprobe_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    (void)ctx;
    assert_true(info->size > offsetof(weft_stream_info, route_config));
    g_info_cfg = info->route_config;
    g_call_cfg = g_rhost->route_config(s);
}
static const weft_http_filter_ops rprobe_ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_stream_complete = rprobe_complete,
    .route_config_create = rprobe_route_config,
    .route_config_destroy = rprobe_route_config_destroy,
};
static const weft_filter_descriptor rprobe_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("rprobe", WEFT_FILTER_HTTP),
    .http = &rprobe_ops,
};
static const weft_filter_descriptor *rprobe_entry(const weft_host_api *h) {
    g_rhost = h;
    return &rprobe_desc;
}

static void test_stream_info_route_config(void **state) {
    (void)state;
    wft_env *env = wft_env_new(rprobe_entry, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    if (wft_env_add_route(env, "r-cfg", "main", "ca", "/cfg", "{x: 1}", err, sizeof(err)) ||
        wft_env_add_route(env, "r-plain", "main", "ca", "/plain", NULL, err, sizeof(err)))
        fail_msg("%s", err);
    const char *paths[] = {"/cfg/a", "/plain/a"};
    for (int i = 0; i < 2; i++) {
        g_info_cfg = g_call_cfg = (const void *)1;
        wft_stream *st = get(env, paths[i], NULL);
        assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
        assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
        assert_int_equal(wft_complete(st, NULL), 0);
        wft_stream_free(st);
        assert_ptr_equal(g_info_cfg, i == 0 ? (const void *)&g_marker : NULL);
        assert_ptr_equal(g_info_cfg, g_call_cfg);
    }
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_and_config_seen_by_the_filter),
        cmocka_unit_test(test_rematch),
        cmocka_unit_test(test_config_in_timer_callback),
        cmocka_unit_test(test_pinned_route),
        cmocka_unit_test(test_route_config_errors_and_lifetime),
        cmocka_unit_test(test_1_0_filter_rewrite_is_routed_on),
        cmocka_unit_test(test_host_has),
        cmocka_unit_test(test_stream_info_route_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
