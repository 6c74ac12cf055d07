/* test_filtertest_abi: ABI hygiene through the kit. A filter built with
 * this header, declaring that it runs down to 1.0
 * (WEFT_FILTER_DESCRIPTOR_INIT_MINOR), loaded by a host whose table is
 * cut at the 1.0 size (wft_env_new_abi(entry, 0)): it loads, sees the 1.0
 * functions, sees every function past the 1.0 table as absent
 * (WEFT_HOST_HAS false) and degrades; on the full table it sees them.
 * A filter asking for 1.1 is refused by the 1.0 host, with the core's
 * wording. ABI 1.2 on a 1.1 host (wft_env_new_abi(entry, 1)): a filter
 * declaring 1.2 is refused; one declaring 1.1 loads, sees no series
 * handles (WEFT_HOST_HAS) and no info->route_config
 * (WEFT_STREAM_INFO_HAS), and counts by values instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filtertest.h>

/* Two entry points in one binary: written out instead of
 * WEFT_FILTER_DEFINE (which defines one). */
const weft_host_api *weft__host;

/* The size of the 1.0 host table: up to its last function. */
#define SIZE_1_0                                                                                   \
    (offsetof(weft_host_api, connection_set_tls) + sizeof(((weft_host_api *)0)->connection_set_tls))

typedef struct seen {
    size_t size;
    unsigned minor;
    bool has_first_1_0, has_last_1_0;
    bool has_past_1_0; /* the first slot past the 1.0 table, when 1.1 has one */
    bool degraded;
} seen;
static seen g_seen;

/* What WEFT_HOST_HAS decides for the first function past the 1.0 table,
 * whatever its name: the macro's own test (size covers the slot, slot
 * set) at that offset. Groups of 1.1 add named checks below. */
static bool host_has_slot_at(size_t off) {
    if (weft__host->size < off + sizeof(void (*)(void)))
        return false;
    void (*fn)(void);
    memcpy(&fn, (const char *)weft__host + off, sizeof(fn));
    return fn != NULL;
}

static int probe_config_create(const weft_config_node *node, weft_filter_setup *setup,
                               void **config) {
    (void)node;
    (void)setup;
    g_seen.size = weft__host->size;
    g_seen.minor = weft__host->abi_minor;
    g_seen.has_first_1_0 = WEFT_HOST_HAS(header_get);
    g_seen.has_last_1_0 = WEFT_HOST_HAS(connection_set_tls);
    g_seen.has_past_1_0 = sizeof(weft_host_api) > SIZE_1_0 && host_has_slot_at(SIZE_1_0);
    g_seen.degraded = !g_seen.has_past_1_0;
    *config = NULL;
    return 0;
}

static weft_status probe_req_headers(void *ctx, weft_stream *s, bool end) {
    (void)ctx;
    (void)end;
    /* 1.0 calls work on either host. */
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-host-minor"),
                    weft__host->abi_minor ? WEFT_STR("1") : WEFT_STR("0"));
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops probe_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = probe_config_create,
    .on_request_headers = probe_req_headers,
};

static const weft_filter_descriptor desc_down_to_1_0 = {
    WEFT_FILTER_DESCRIPTOR_INIT_MINOR("probe", WEFT_FILTER_HTTP, 0),
    .http = &probe_ops,
};
static const weft_filter_descriptor desc_1_1 = {
    WEFT_FILTER_DESCRIPTOR_INIT_MINOR("probe", WEFT_FILTER_HTTP, 1),
    .http = &probe_ops,
};

static const weft_filter_descriptor *entry_down_to_1_0(const weft_host_api *h) {
    weft__host = h;
    return &desc_down_to_1_0;
}
static const weft_filter_descriptor *entry_1_1(const weft_host_api *h) {
    weft__host = h;
    return &desc_1_1;
}

static char err[512];

static void run_one_request(wft_env *env, const char *want_minor) {
    wft_stream *st = wft_stream_new(env, "GET", "/", (const char *const[]){"host: a", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-host-minor"), want_minor);
    wft_stream_free(st);
}

static void test_on_a_1_0_host(void **state) {
    (void)state;
    memset(&g_seen, 0, sizeof(g_seen));
    wft_env *env = wft_env_new_abi(entry_down_to_1_0, 0, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_int_equal(g_seen.size, SIZE_1_0);
    assert_int_equal(g_seen.minor, 0);
    assert_true(g_seen.has_first_1_0);
    assert_true(g_seen.has_last_1_0);
    assert_false(g_seen.has_past_1_0);
    assert_true(g_seen.degraded);
    run_one_request(env, "0");
    wft_env_free(env);
}

static void test_on_the_current_host(void **state) {
    (void)state;
    memset(&g_seen, 0, sizeof(g_seen));
    wft_env *env = wft_env_new(entry_down_to_1_0, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_int_equal(g_seen.size, sizeof(weft_host_api));
    assert_int_equal(g_seen.minor, WEFT_ABI_MINOR);
    assert_true(g_seen.has_last_1_0);
    /* Once 1.1 has host functions, the first of them is present here. */
    assert_int_equal(g_seen.has_past_1_0, sizeof(weft_host_api) > SIZE_1_0);
    run_one_request(env, "1");
    wft_env_free(env);
}

static void test_1_1_filter_refused_by_1_0_host(void **state) {
    (void)state;
    assert_null(wft_env_new_abi(entry_1_1, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "filter ABI 1.1 is not supported by this weft (ABI 1.0)"));
    assert_non_null(strstr(err, "built for a newer weft"));
    /* A host newer than the kit cannot be faked. */
    assert_null(wft_env_new_abi(entry_1_1, WEFT_ABI_MINOR + 1, err, sizeof(err)));
    wft_env *env = wft_env_new_abi(entry_1_1, WEFT_ABI_MINOR, err, sizeof(err));
    assert_non_null(env);
    wft_env_free(env);
}

/* ABI 1.2 on a 1.1 host: a filter built with this header that declares
 * minor 1 and degrades: series handles when the host has them, else
 * weft_stat_family_inc by values; info->route_config when the info has
 * it. One requested series, "hits_total{how}", counts which path ran. */
typedef struct seen12 {
    size_t size;
    unsigned minor;
    bool has_1_1_call, has_series, info_has_route_config;
} seen12;
static seen12 g_seen12;
static int32_t g_fam12 = -1;
static weft_stat_series g_h12;

static int deg_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    (void)node;
    static const char *const labels[] = {"how"};
    g_seen12.size = weft__host->size;
    g_seen12.minor = weft__host->abi_minor;
    g_seen12.has_1_1_call = WEFT_HOST_HAS(tcp_callout_open);
    g_seen12.has_series = WEFT_HOST_HAS(stat_family_series);
    g_h12 = WEFT_STAT_SERIES_NONE;
    if (weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, "hits_total", "", labels, 1, 4, &g_fam12) !=
        WEFT_OK)
        return weft_config_fail(setup, NULL, "family");
    weft_str how = WEFT_STR("handle");
    if (g_seen12.has_series && weft_stat_family_series(g_fam12, &how, 1, &g_h12) != WEFT_OK)
        return weft_config_fail(setup, NULL, "series");
    *config = NULL;
    return 0;
}

static void deg_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    (void)ctx;
    (void)s;
    g_seen12.info_has_route_config = WEFT_STREAM_INFO_HAS(info, route_config);
    weft_str how = WEFT_STR("values");
    if (g_h12 != WEFT_STAT_SERIES_NONE)
        weft_stat_series_inc(g_h12, 1);
    else
        weft_stat_family_inc(g_fam12, &how, 1, 1);
}

static const weft_http_filter_ops deg_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = deg_config_create,
    .on_request_headers = probe_req_headers,
    .on_stream_complete = deg_complete,
};
static const weft_filter_descriptor desc_deg = {
    WEFT_FILTER_DESCRIPTOR_INIT_MINOR("deg", WEFT_FILTER_HTTP, 1),
    .http = &deg_ops,
};
static const weft_filter_descriptor desc_1_2 = {
    WEFT_FILTER_DESCRIPTOR_INIT("deg", WEFT_FILTER_HTTP),
    .http = &deg_ops,
};
static const weft_filter_descriptor *entry_deg(const weft_host_api *h) {
    weft__host = h;
    return &desc_deg;
}
static const weft_filter_descriptor *entry_1_2(const weft_host_api *h) {
    weft__host = h;
    return &desc_1_2;
}

static void run_one_complete(wft_env *env) {
    wft_stream *st = wft_stream_new(env, "GET", "/", (const char *const[]){"host: a", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_int_equal(wft_complete(st, NULL), 0);
    wft_stream_free(st);
}

static void test_1_2_filter_on_a_1_1_host(void **state) {
    (void)state;
    /* Built for 1.2 (the default minor): a 1.1 host refuses it. */
    assert_int_equal(WEFT_ABI_MINOR, 2);
    assert_null(wft_env_new_abi(entry_1_2, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "filter ABI 1.2 is not supported by this weft (ABI 1.1)"));
    /* Declaring minor 1, it loads and degrades. */
    memset(&g_seen12, 0, sizeof(g_seen12));
    wft_env *env = wft_env_new_abi(entry_deg, 1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_int_equal(g_seen12.size, offsetof(weft_host_api, stat_family_series));
    assert_int_equal(g_seen12.minor, 1);
    assert_true(g_seen12.has_1_1_call);
    assert_false(g_seen12.has_series);
    run_one_complete(env);
    assert_false(g_seen12.info_has_route_config);
    assert_int_equal(wft_stat_series_value(env, "hits_total", "values", NULL), 1);
    assert_false(wft_stat_series_exists(env, "hits_total", "handle", NULL));
    wft_env_free(env);
    /* The same filter on the kit's own (1.2) host takes the handle. */
    memset(&g_seen12, 0, sizeof(g_seen12));
    env = wft_env_new(entry_deg, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_int_equal(g_seen12.size, sizeof(weft_host_api));
    assert_true(g_seen12.has_series);
    run_one_complete(env);
    assert_true(g_seen12.info_has_route_config);
    assert_int_equal(wft_stat_series_value(env, "hits_total", "handle", NULL), 1);
    assert_false(wft_stat_series_exists(env, "hits_total", "values", NULL));
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_2_filter_on_a_1_1_host),
        cmocka_unit_test(test_on_a_1_0_host),
        cmocka_unit_test(test_on_the_current_host),
        cmocka_unit_test(test_1_1_filter_refused_by_1_0_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
