/* test_filtertest_retry.c: the kit's ABI 1.1 attempt simulation
 * (wft_upstream_request, per-try timeouts on the fake clock, delayed
 * retries, endpoints and their labels) with the retry_policy test filter
 * (tests/filters/retry_policy.c, linked in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filtertest.h>

const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);

static char err[512];

static wft_env *env_with(const char *yaml) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    if (wft_env_configure(env, yaml, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return env;
}

static wft_stream *get(wft_env *env) {
    wft_stream *st = wft_stream_new(env, "GET", "/r", (const char *[]){"host: a", NULL});
    assert_non_null(st);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    return st;
}

/* The first attempt runs past the per-try timeout on the fake clock: the
 * filter sees WEFT_ATTEMPT_TIMEOUT with the per-try flag and retries; each
 * attempt's head carries its own x-weft-attempt-count. */
static void test_per_try_timeout(void **state) {
    (void)state;
    wft_env *env = env_with("attempts: 2\nper_try_timeout: 300ms\n");
    wft_stream *st = get(env);
    assert_int_equal(wft_try_timeout(st), 300);
    assert_int_equal(wft_upstream_request(st), 0);
    assert_string_equal(wft_attempt_header(st, "x-weft-attempt-count"), "1");
    /* only this attempt's head has it */
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-weft-attempt-count"));
    /* one attempt at a time */
    assert_int_equal(wft_upstream_request(st), WFT_REJECTED);
    wft_clock_advance(env, 299);
    assert_int_equal(wft_try_timeouts(st), 0);
    assert_int_equal(wft_retry_count(st), 0);
    wft_clock_advance(env, 1);
    assert_int_equal(wft_try_timeouts(st), 1);
    assert_int_equal(wft_retry_count(st), 1);
    uint64_t delay = 9;
    uint32_t flags = 9;
    assert_true(wft_retry_options(st, &delay, &flags));
    assert_int_equal(delay, 0);
    assert_int_equal(flags, 0);
    assert_int_equal(wft_upstream_request(st), 0);
    assert_string_equal(wft_attempt_header(st, "x-weft-attempt-count"), "2");
    wft_clock_advance(env, 100);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 200, NULL, NULL, 100000), 0);
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-history"), "pertry@0,200@0");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-attempts"), "2");
    /* the answered attempt's per-try timer is gone */
    wft_clock_advance(env, 1000);
    assert_int_equal(wft_try_timeouts(st), 1);
    wft_stream_free(st);
    assert_int_equal(wft_stat(env, "retries"), 1);
    wft_env_free(env);
}

/* 503 on endpoint 0, a retry after 250 ms to another endpoint: no attempt
 * may start before the delay; the next one reports backoff_us, the
 * OTHER_ENDPOINT flag, the new endpoint's locality and labels. */
static void test_backoff_other_endpoint(void **state) {
    (void)state;
    wft_env *env = env_with("attempts: 3\nbackoff_ms: 250\nother_endpoint: true\n");
    wft_stream *st = get(env);
    assert_int_equal(
        wft_upstream_endpoint(st, 0, "eu", "eu-a", "r0", (const char *[]){"version=v1", NULL}), 0);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 503, NULL, NULL, 1000), 0);
    uint64_t delay = 0;
    uint32_t flags = 0;
    assert_true(wft_retry_options(st, &delay, &flags));
    assert_int_equal(delay, 250);
    assert_int_equal(flags, WEFT_RETRY_OTHER_ENDPOINT);
    assert_int_equal(wft_retry_due_us(st), wft_clock_now_us(env) + 250000);
    assert_int_equal(wft_upstream_request(st), WFT_REJECTED);
    wft_clock_advance(env, 249);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 200, NULL, NULL, 1),
                     WFT_REJECTED);
    wft_clock_advance(env, 1);
    assert_int_equal(wft_upstream_endpoint(st, 1, "eu", "eu-b", "r1",
                                           (const char *[]){"version=v2", "app=x", NULL}),
                     0);
    assert_int_equal(wft_upstream_request(st), 0);
    assert_string_equal(wft_attempt_header(st, "x-weft-attempt-count"), "2");
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 200, NULL, NULL, 1000), 0);
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-history"), "503@0,200@1");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-backoff-us"), "250000");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-flags"), "4");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-label"), "v2");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-labels"), "2");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-locality"), "eu/eu-b/r1");
    wft_stream_free(st);
    wft_env_free(env);
}

/* Back on an endpoint tried before: WEFT_ATTEMPT_F_ENDPOINT_TRIED; the
 * attempt limit stops the retries; no labels: the filter reports "-". */
static void test_endpoint_tried_and_limit(void **state) {
    (void)state;
    wft_env *env = env_with("attempts: 2\n");
    wft_stream *st = get(env);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESET, 0, NULL, NULL, 1000), 0);
    assert_int_equal(wft_retry_count(st), 1);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 503, NULL, NULL, 1000), 0);
    assert_int_equal(wft_retry_count(st), 1); /* attempts: 2 */
    assert_int_equal(wft_response_headers(st, 503, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-history"), "reset@0,503@0");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-flags"), "2");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-label"), "-");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-retry-locality"), "//");
    wft_stream_free(st);
    wft_env_free(env);
}

/* A filter built against the 1.0 header (its ops table ends at
 * on_stream_complete) gets the 1.0 size of weft_attempt_info and no
 * on_upstream_request, as in the core. */
static size_t g_info_size;
static unsigned g_up_requests;
static void old_attempt(void *ctx, weft_stream *s, const weft_attempt_info *info) {
    (void)ctx;
    (void)s;
    g_info_size = info->size;
}
static void old_up_request(void *ctx, weft_stream *s, uint32_t attempt) {
    (void)ctx;
    (void)s;
    (void)attempt;
    g_up_requests++;
}
static weft_http_filter_ops old_ops = {
    .size = offsetof(weft_http_filter_ops, on_stream_complete) + sizeof(void *),
    .on_upstream_attempt = old_attempt,
    .on_upstream_request = old_up_request, /* past its size: never called */
};
static const weft_filter_descriptor old_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT_MINOR("old", WEFT_FILTER_HTTP, 0),
    .http = &old_ops,
};
static const weft_filter_descriptor *old_entry(const weft_host_api *host) {
    (void)host;
    return &old_desc;
}

static void test_1_0_filter_sees_1_0_size(void **state) {
    (void)state;
    wft_env *env = wft_env_new(old_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    wft_stream *st = get(env);
    assert_int_equal(wft_upstream_request(st), 0);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 200, NULL, NULL, 10), 0);
    assert_int_equal(g_info_size, offsetof(weft_attempt_info, region));
    assert_int_equal(g_up_requests, 0);
    wft_stream_free(st);
    wft_env_free(env);
    /* the same hooks in a 1.1-sized table: the whole struct, the hook runs */
    old_ops.size = sizeof(weft_http_filter_ops);
    env = wft_env_new(old_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    st = get(env);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 200, NULL, NULL, 10), 0);
    assert_int_equal(g_info_size, sizeof(weft_attempt_info));
    assert_int_equal(g_up_requests, 1);
    wft_stream_free(st);
    wft_env_free(env);
    old_ops.size = offsetof(weft_http_filter_ops, on_stream_complete) + sizeof(void *);
}

/* The filter refuses a bad config with the node's position. */
static void test_config_errors(void **state) {
    (void)state;
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, "retry_on: 5xx,bogus\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "1:11"));
    assert_int_equal(wft_env_configure(env, "attempts: 0\n", err, sizeof(err)), -1);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_per_try_timeout),
        cmocka_unit_test(test_backoff_other_endpoint),
        cmocka_unit_test(test_endpoint_tried_and_limit),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_1_0_filter_sees_1_0_size),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
