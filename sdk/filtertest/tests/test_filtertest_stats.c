/* test_filtertest_stats: the kit mirrors SDK 1.1's labelled stat families
 * with weft's semantics, driven through the labelled test filter
 * (tests/filters/labelled.c, linked in): series by method and status
 * class read with wft_stat_series_value, the overflow series and its
 * count past max_series and for values above 256 bytes, the declaration
 * rules (the core's, sdk/common/wsh_rules.c), a reconfigure as weft's
 * reload (families not declared again leave, values kept for those that
 * are, labels may change), and misuse of the update calls. A family
 * declared from route_config_create (per-route config route_label): the
 * same family for every route that declares it, counted by route, kept
 * over a reconfigure that declares it again, gone when none does; and
 * the per-worker family (worker_label: the env is worker "N"). */
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

static wft_env *make_env(const char *yaml) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    if (wft_env_configure(env, yaml, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return env;
}

static void request(wft_env *env, const char *method, int status, const char *tag) {
    char hdr[400];
    snprintf(hdr, sizeof hdr, "x-tag: %s", tag ? tag : "");
    const char *const headers[] = {"host: a", tag ? hdr : NULL, NULL};
    wft_stream *st = wft_stream_new(env, method, "/", headers);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(st, status, NULL, true), WEFT_CONTINUE);
    assert_int_equal(wft_complete(st, NULL), 0);
    wft_stream_free(st);
}

static void test_series_by_method_and_class(void **state) {
    (void)state;
    wft_env *env = make_env("max_series: 3\n");
    request(env, "GET", 200, NULL);
    request(env, "GET", 204, NULL);
    request(env, "POST", 503, NULL);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", NULL), 2);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "POST", "5xx", NULL), 1);
    assert_false(wft_stat_series_exists(env, "requests_total", "POST", "2xx", NULL));
    assert_false(wft_stat_series_exists(env, "requests_total", "GET", NULL)); /* label count */
    assert_int_equal(wft_stat_family_series(env, "requests_total"), 2);
    assert_int_equal(wft_stat_family_overflow(env, "requests_total"), 0);
    assert_false(
        wft_stat_series_exists(env, "requests_total", "__overflow__", "__overflow__", NULL));

    /* Past max_series: the overflow series, and the count of what was folded. */
    request(env, "PUT", 200, NULL); /* third series */
    request(env, "DELETE", 404, NULL);
    request(env, "PATCH", 200, NULL);
    request(env, "GET", 200, NULL); /* an existing series still counts */
    assert_int_equal(wft_stat_family_series(env, "requests_total"), 3);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", NULL), 3);
    assert_false(wft_stat_series_exists(env, "requests_total", "DELETE", "4xx", NULL));
    assert_int_equal(
        wft_stat_series_value(env, "requests_total", "__overflow__", "__overflow__", NULL), 2);
    assert_int_equal(wft_stat_family_overflow(env, "requests_total"), 2);

    /* Reconfigured with the same family: values kept (weft's reload). */
    assert_int_equal(wft_env_configure(env, "max_series: 3\n", err, sizeof(err)), 0);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", NULL), 3);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

static void test_long_values_fold(void **state) {
    (void)state;
    wft_env *env = make_env("max_series: 10\ntag_header: x-tag\n");
    char v256[257], v257[258];
    memset(v256, 'a', 256);
    v256[256] = '\0';
    memset(v257, 'b', 257);
    v257[257] = '\0';
    request(env, "GET", 200, v256);
    request(env, "GET", 200, v257);
    request(env, "GET", 200, "a\"b\\c");
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", v256, NULL), 1);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", "a\"b\\c", NULL),
                     1);
    assert_int_equal(wft_stat_family_overflow(env, "requests_total"), 1);
    assert_int_equal(wft_stat_family_series(env, "requests_total"), 2);
    wft_env_free(env);
}

/* The declaration rules are weft's: a max_series out of range refuses the
 * config (the filter fails it), as in weft. */
static void test_declaration_rules(void **state) {
    (void)state;
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    assert_non_null(env);
    assert_int_not_equal(wft_env_configure(env, "max_series: 0\n", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "weft_stat_family refused the family"));
    assert_int_not_equal(wft_env_configure(env, "max_series: 10001\n", err, sizeof(err)), 0);
    assert_int_not_equal(wft_env_configure(env, "family: Bad-Name\n", err, sizeof(err)), 0);
    assert_int_equal(wft_env_configure(env, "max_series: 10000\n", err, sizeof(err)), 0);
    wft_env_free(env);
}

/* A configure is weft's reload: a family the new config does not declare
 * leaves, one declared again keeps its values, and a family may change
 * its labels (the old series come back if the old declaration does). */
static void test_reconfigure_is_a_reload(void **state) {
    (void)state;
    wft_env *env = make_env("max_series: 5\n");
    request(env, "GET", 200, NULL);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", NULL), 1);

    /* another family name: requests_total leaves */
    assert_int_equal(wft_env_configure(env, "family: hits_total\n", err, sizeof(err)), 0);
    request(env, "GET", 200, NULL);
    assert_false(wft_stat_series_exists(env, "requests_total", "GET", "2xx", NULL));
    assert_int_equal(wft_stat_family_series(env, "requests_total"), 0);
    assert_int_equal(wft_stat_series_value(env, "hits_total", "GET", "2xx", NULL), 1);

    /* requests_total back (same declaration): its value is back; with a third label */
    assert_int_equal(wft_env_configure(env, "max_series: 5\n", err, sizeof(err)), 0);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", NULL), 1);
    assert_false(wft_stat_series_exists(env, "hits_total", "GET", "2xx", NULL));
    assert_int_equal(wft_env_configure(env, "max_series: 5\ntag_header: x-tag\n", err, sizeof(err)),
                     0);
    request(env, "GET", 200, "t");
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", "t", NULL), 1);
    assert_false(wft_stat_series_exists(env, "requests_total", "GET", "2xx", NULL));

    /* a refused configure changes nothing shown */
    assert_int_not_equal(wft_env_configure(env, "max_series: 0\n", err, sizeof(err)), 0);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", "t", NULL), 1);
    assert_int_equal(wft_misuse_count(env), 1); /* the refused declaration */
    wft_env_free(env);
}

/* The update calls, straight through the host table the kit gave the
 * filter: weft's error codes. */
static const weft_host_api *g_host;
static int32_t g_fam = -1;
static weft_result g_rc[8];

static int probe_config(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    static const char *const names[] = {"a", "b"};
    static const char *const bad[] = {"a", "__b"};
    static const char *const reserved[] = {"listener"};
    int32_t f;
    g_rc[0] = g_host->stat_family(setup, WEFT_STAT_KIND_GAUGE, "g", "", names, 2, 4, &g_fam);
    g_rc[1] = g_host->stat_family(setup, WEFT_STAT_KIND_GAUGE, "h", "", bad, 2, 4, &f);
    g_rc[2] = g_host->stat_family(setup, WEFT_STAT_KIND_GAUGE, "i", "", reserved, 1, 4, &f);
    g_rc[3] = g_host->stat_family(setup, 7, "j", "", names, 2, 4, &f);
    *config = NULL;
    return 0;
}

static weft_status probe_headers(void *ctx, weft_stream *s, bool end) {
    weft_str v[2] = {WEFT_STR("x"), WEFT_STR("y")};
    g_rc[4] = g_host->stat_family_gauge_add(g_fam, v, 2, -3);
    g_rc[5] = g_host->stat_family_inc(g_fam, v, 2, 1);       /* a gauge */
    g_rc[6] = g_host->stat_family_gauge_add(g_fam, v, 1, 1); /* label count */
    g_rc[7] = g_host->stat_family_gauge_add(-1, v, 2, 1);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops probe_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = probe_config,
    .on_request_headers = probe_headers,
};
static const weft_filter_descriptor probe_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("probe", WEFT_FILTER_HTTP),
    .http = &probe_ops,
};
static const weft_filter_descriptor *probe_entry(const weft_host_api *h) {
    g_host = h;
    return &probe_desc;
}

/* One exchange on route `route` (NULL: none). */
static void route_request(wft_env *env, const char *route, int status) {
    const char *const headers[] = {"host: a", NULL};
    wft_stream *st = wft_stream_new(env, "GET", "/", headers);
    assert_int_equal(wft_stream_set_route(st, route), 0);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(st, status, NULL, true), WEFT_CONTINUE);
    assert_int_equal(wft_complete(st, NULL), 0);
    wft_stream_free(st);
}

static void add_route(wft_env *env, const char *name, const char *prefix, const char *yaml) {
    if (wft_env_add_route(env, name, "default", "be", prefix, yaml, err, sizeof(err)) != 0)
        fail_msg("%s", err);
}

static void test_family_from_route_config(void **state) {
    (void)state;
    wft_env *env = make_env("worker_label: true\n");
    add_route(env, "r-ok", "/ok", "route_label: ok\n");
    add_route(env, "r-down", "/down", "route_label: down\n");
    add_route(env, "r-plain", "/plain", NULL);
    route_request(env, "r-ok", 200);
    route_request(env, "r-ok", 204);
    route_request(env, "r-down", 503);
    route_request(env, "r-plain", 200); /* no per-route config: not counted by route */
    route_request(env, NULL, 404);
    assert_int_equal(wft_stat_series_value(env, "route_requests_total", "ok", "2xx", NULL), 2);
    assert_int_equal(wft_stat_series_value(env, "route_requests_total", "down", "5xx", NULL), 1);
    assert_int_equal(wft_stat_family_series(env, "route_requests_total"), 2);
    assert_int_equal(wft_stat_series_value(env, "requests_total", "GET", "2xx", NULL), 3);
    /* One worker: every request in its series. */
    assert_int_equal(wft_stat_family_series(env, "worker_requests_total"), 1);
    /* Another max_series for the same family on a third route: refused
     * (one family, one shape per config), nothing added. */
    assert_int_not_equal(wft_env_add_route(env, "r-odd", "default", "be", "/odd",
                                           "route_label: odd\nroute_max_series: 5\n", err,
                                           sizeof(err)),
                         0);
    /* A reconfigure (the kit's reload) drops the routes: declared again
     * by the new routes, the family keeps its values. */
    assert_int_equal(wft_env_configure(env, "worker_label: true\n", err, sizeof(err)), 0);
    add_route(env, "r-ok", "/ok", "route_label: ok\n");
    route_request(env, "r-ok", 200);
    assert_int_equal(wft_stat_series_value(env, "route_requests_total", "ok", "2xx", NULL), 3);
    /* Declared by no route of the new config: the family leaves. */
    assert_int_equal(wft_env_configure(env, "worker_label: true\n", err, sizeof(err)), 0);
    assert_false(wft_stat_series_exists(env, "route_requests_total", "ok", "2xx", NULL));
    wft_env_free(env);
}

static void test_update_errors(void **state) {
    (void)state;
    wft_env *env = wft_env_new(probe_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    assert_int_equal(g_rc[0], WEFT_OK);
    assert_int_equal(g_rc[1], WEFT_ERR_INVALID);
    assert_int_equal(g_rc[2], WEFT_ERR_INVALID);
    assert_int_equal(g_rc[3], WEFT_ERR_INVALID);
    const char *const headers[] = {"host: a", NULL};
    wft_stream *st = wft_stream_new(env, "GET", "/", headers);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    wft_stream_free(st);
    assert_int_equal(g_rc[4], WEFT_OK);
    assert_int_equal(g_rc[5], WEFT_ERR_INVALID);
    assert_int_equal(g_rc[6], WEFT_ERR_INVALID);
    assert_int_equal(g_rc[7], WEFT_ERR_INVALID);
    assert_int_equal(wft_stat_series_gauge(env, "g", "x", "y", NULL), -3);
    wft_env_free(env);
}

/* ABI 1.2 series handles through the kit's table: resolved at config
 * time (made at 0, nothing counted), updated by handle; past max_series
 * the overflow handle, each update counted as folded; another kind's
 * update is a misuse line and counts nothing; NONE is ignored. */
static weft_stat_series g_cx, g_cy, g_cz, g_gx, g_bad = 1;
static weft_result g_src[3];

static int sprobe_config(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    (void)node;
    static const char *const names[] = {"a"};
    int32_t c = -1, g = -1;
    g_src[0] = g_host->stat_family(setup, WEFT_STAT_KIND_COUNTER, "c_total", "", names, 1, 2, &c);
    g_src[1] = g_host->stat_family(setup, WEFT_STAT_KIND_GAUGE, "g", "", names, 1, 2, &g);
    weft_str x = WEFT_STR("x"), y = WEFT_STR("y"), z = WEFT_STR("z");
    weft_str two[2] = {x, y};
    g_host->stat_family_series(c, &x, 1, &g_cx);
    g_host->stat_family_series(c, &y, 1, &g_cy);
    g_host->stat_family_series(c, &z, 1, &g_cz); /* third: the overflow series */
    g_host->stat_family_series(g, &x, 1, &g_gx);
    g_src[2] = g_host->stat_family_series(c, two, 2, &g_bad);
    *config = NULL;
    return 0;
}

static weft_status sprobe_headers(void *ctx, weft_stream *s, bool end) {
    (void)ctx, (void)s, (void)end;
    g_host->stat_series_inc(g_cx, 2);
    g_host->stat_series_inc(g_cz, 5);
    g_host->stat_series_inc(g_cz, 1);
    g_host->stat_series_gauge_add(g_gx, -4);
    g_host->stat_series_inc(g_gx, 1); /* a gauge's handle: misuse, nothing */
    g_host->stat_series_inc(WEFT_STAT_SERIES_NONE, 1);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops sprobe_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = sprobe_config,
    .on_request_headers = sprobe_headers,
};
static const weft_filter_descriptor sprobe_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("sprobe", WEFT_FILTER_HTTP),
    .http = &sprobe_ops,
};
static const weft_filter_descriptor *sprobe_entry(const weft_host_api *h) {
    g_host = h;
    return &sprobe_desc;
}

static void test_series_handles(void **state) {
    (void)state;
    wft_env *env = wft_env_new(sprobe_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    assert_int_equal(g_src[0], WEFT_OK);
    assert_int_equal(g_src[1], WEFT_OK);
    assert_int_equal(g_src[2], WEFT_ERR_INVALID); /* label count */
    assert_true(g_bad == WEFT_STAT_SERIES_NONE);
    assert_true(g_cx != WEFT_STAT_SERIES_NONE && g_cz != WEFT_STAT_SERIES_NONE);
    /* resolved: made at 0, nothing folded yet */
    assert_int_equal(wft_stat_family_series(env, "c_total"), 2);
    assert_true(wft_stat_series_exists(env, "c_total", "y", NULL));
    assert_int_equal(wft_stat_family_overflow(env, "c_total"), 0);
    size_t misuse = wft_misuse_count(env);
    const char *const headers[] = {"host: a", NULL};
    wft_stream *st = wft_stream_new(env, "GET", "/", headers);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    wft_stream_free(st);
    assert_int_equal(wft_stat_series_value(env, "c_total", "x", NULL), 2);
    assert_int_equal(wft_stat_series_value(env, "c_total", "y", NULL), 0);
    assert_int_equal(wft_stat_series_value(env, "c_total", "__overflow__", NULL), 6);
    assert_int_equal(wft_stat_family_overflow(env, "c_total"), 2);
    assert_int_equal(wft_stat_series_gauge(env, "g", "x", NULL), -4);
    assert_int_equal(wft_misuse_count(env), misuse + 1);
    assert_non_null(strstr(wft_misuse_last(env), "another kind"));
    wft_env_free(env);
}

/* ABI 1.2 series handles over a refused configure, as in weft
 * (docs/sdk.md 2.5b): a series a refused config resolved into a family
 * the kept config declares too stays, at 0, and takes its place in
 * max_series; the next config's new value lands on the overflow series. */
static const char *g_rvalue;
static bool g_rrefuse;
static weft_stat_series g_rh;

static int rprobe_config(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    (void)node;
    static const char *const names[] = {"v"};
    int32_t f = -1;
    weft_str v = {g_rvalue, strlen(g_rvalue)};
    if (g_host->stat_family(setup, WEFT_STAT_KIND_COUNTER, "r_total", "", names, 1, 2, &f) !=
            WEFT_OK ||
        g_host->stat_family_series(f, &v, 1, &g_rh) != WEFT_OK)
        return g_host->config_fail(setup, NULL, "family");
    if (g_rrefuse)
        return g_host->config_fail(setup, NULL, "refused as asked");
    *config = NULL;
    return 0;
}

static weft_status rprobe_headers(void *ctx, weft_stream *s, bool end) {
    (void)ctx, (void)s, (void)end;
    g_host->stat_series_inc(g_rh, 1);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops rprobe_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = rprobe_config,
    .on_request_headers = rprobe_headers,
};
static const weft_filter_descriptor rprobe_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("rprobe", WEFT_FILTER_HTTP),
    .http = &rprobe_ops,
};
static const weft_filter_descriptor *rprobe_entry(const weft_host_api *h) {
    g_host = h;
    return &rprobe_desc;
}

static void rprobe_request(wft_env *env) {
    const char *const headers[] = {"host: a", NULL};
    wft_stream *st = wft_stream_new(env, "GET", "/", headers);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    wft_stream_free(st);
}

static void test_series_refused_configure(void **state) {
    (void)state;
    wft_env *env = wft_env_new(rprobe_entry, err, sizeof(err));
    assert_non_null(env);
    g_rvalue = "a";
    g_rrefuse = false;
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    rprobe_request(env);
    assert_int_equal(wft_stat_series_value(env, "r_total", "a", NULL), 1);
    /* refused after resolving "q": q stays, at 0, and fills the family */
    g_rvalue = "q";
    g_rrefuse = true;
    assert_int_not_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    assert_true(wft_stat_series_exists(env, "r_total", "q", NULL));
    assert_int_equal(wft_stat_series_value(env, "r_total", "q", NULL), 0);
    assert_int_equal(wft_stat_family_series(env, "r_total"), 2);
    /* the next config's "w" is past max_series: the overflow series */
    g_rvalue = "w";
    g_rrefuse = false;
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    rprobe_request(env);
    assert_false(wft_stat_series_exists(env, "r_total", "w", NULL));
    assert_int_equal(wft_stat_series_value(env, "r_total", "__overflow__", NULL), 1);
    assert_int_equal(wft_stat_family_overflow(env, "r_total"), 1);
    assert_int_equal(wft_stat_series_value(env, "r_total", "a", NULL), 1);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_refused_configure),
        cmocka_unit_test(test_series_by_method_and_class),
        cmocka_unit_test(test_long_values_fold),
        cmocka_unit_test(test_declaration_rules),
        cmocka_unit_test(test_reconfigure_is_a_reload),
        cmocka_unit_test(test_family_from_route_config),
        cmocka_unit_test(test_update_errors),
        cmocka_unit_test(test_series_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
