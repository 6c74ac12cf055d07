/* test_filtertest_streams: the kit's stream handles and pauses follow the
 * core's semantics (ABI 1.1 group "streams"): a handle kept from an ended
 * stream is refused with WEFT_ERR_HANDLE even when a new stream takes its
 * memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filtertest.h>

const weft_host_api *weft__host;

static char err[512];

#define HDRS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- keep: a filter that remembers the handles it was given ---- */

static weft_stream *g_seen[8];
static size_t g_nseen;

static void *keep_stream_create(void *config, void *worker, weft_stream *s) {
    if (g_nseen < 8)
        g_seen[g_nseen++] = s;
    return NULL;
}

static const weft_http_filter_ops keep_ops = {
    .size = sizeof(weft_http_filter_ops),
    .stream_create = keep_stream_create,
};

static const weft_filter_descriptor keep_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("keep", WEFT_FILTER_HTTP),
    .http = &keep_ops,
};

static const weft_filter_descriptor *keep_entry(const weft_host_api *host) {
    weft__host = host;
    return &keep_desc;
}

static void test_stale_handle(void **state) {
    (void)state;
    g_nseen = 0;
    wft_env *env = wft_env_new(keep_entry, err, sizeof(err));
    assert_non_null(env);
    wft_stream *a = wft_stream_new(env, "GET", "/a", HDRS("host: h"));
    assert_int_equal(wft_request_headers(a, true), WEFT_CONTINUE);
    assert_int_equal(g_nseen, 1);
    weft_stream *ha = g_seen[0];
    weft_str v;
    assert_int_equal(weft_header_get(ha, WEFT_REQUEST_HEADERS, WEFT_STR("host"), &v), WEFT_OK);
    wft_stream_free(a);

    /* Many new streams (the allocator hands A's memory out again): A's
     * handle names none of them. */
    for (int i = 0; i < 4; i++) {
        wft_stream *b = wft_stream_new(env, "GET", "/b", HDRS("host: b"));
        assert_int_equal(wft_request_headers(b, false), WEFT_CONTINUE);
        weft_stream *hb = g_seen[g_nseen - 1];
        assert_true(hb != ha);
        size_t before = wft_misuse_count(env);
        assert_int_equal(
            weft_header_set(ha, WEFT_REQUEST_HEADERS, WEFT_STR("x-injected"), WEFT_STR("stale")),
            WEFT_ERR_HANDLE);
        assert_int_equal(weft_header_get(ha, WEFT_REQUEST_HEADERS, WEFT_STR("host"), &v),
                         WEFT_ERR_HANDLE);
        assert_int_equal(weft_stream_resume(ha), WEFT_ERR_HANDLE);
        assert_int_equal(wft_misuse_count(env), before + 3);
        assert_null(wft_header(b, WEFT_REQUEST_HEADERS, "x-injected"));
        assert_int_equal(weft_header_get(hb, WEFT_REQUEST_HEADERS, WEFT_STR("host"), &v), WEFT_OK);
        assert_int_equal(v.len, 1);
        wft_stream_free(b);
        assert_int_equal(weft_header_get(hb, WEFT_REQUEST_HEADERS, WEFT_STR("host"), &v),
                         WEFT_ERR_HANDLE);
    }
    /* Not handles at all. */
    assert_int_equal(weft_header_get(NULL, WEFT_REQUEST_HEADERS, WEFT_STR("host"), &v),
                     WEFT_ERR_HANDLE);
    assert_int_equal(
        weft_header_get((weft_stream *)(void *)&v, WEFT_REQUEST_HEADERS, WEFT_STR("host"), &v),
        WEFT_ERR_HANDLE);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
