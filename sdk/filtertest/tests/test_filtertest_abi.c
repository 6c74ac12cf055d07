/* test_filtertest_abi: ABI hygiene through the kit. A filter built with
 * this (1.1) header, declaring that it runs down to 1.0
 * (WEFT_FILTER_DESCRIPTOR_INIT_MINOR), loaded by a host whose table is
 * cut at the 1.0 size (wft_env_new_abi(entry, 0)): it loads, sees the 1.0
 * functions, sees every function past the 1.0 table as absent
 * (WEFT_HOST_HAS false) and degrades; on the full table it sees them.
 * A filter asking for 1.1 is refused by the 1.0 host, with the core's
 * wording. */
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on_a_1_0_host),
        cmocka_unit_test(test_on_the_current_host),
        cmocka_unit_test(test_1_1_filter_refused_by_1_0_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
