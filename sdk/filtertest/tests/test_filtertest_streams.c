/* test_filtertest_streams: the kit's stream handles and pauses follow the
 * core's semantics (ABI 1.1 group "streams"): a handle kept from an ended
 * stream is refused with WEFT_ERR_HANDLE even when a new stream takes its
 * memory; a pause belongs to the filter that made it (the case:
 * an authz-like filter waiting on a callout is not released by another
 * filter's resume); resume tokens resume that pause once. */
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

/* ---- authz: waits on a callout, owns its pause, publishes its token ---- */

static uint64_t g_token, g_token_again;
static weft_result g_token_rc, g_cb_rc;
static bool g_continue_instead; /* return CONTINUE after asking for a token */

static void authz_done(weft_stream *s, void *ctx, void *arg, const weft_callout_response *r) {
    if (r->status == 200)
        g_cb_rc = weft_stream_resume(s); /* its own pause: allowed */
    else
        g_cb_rc = weft_reply_simple(s, 403, WEFT_STR("auth_denied"), WEFT_STR(""));
}

static weft_status authz_request_headers(void *ctx, weft_stream *s, bool end) {
    g_token_rc = weft_stream_pause_token(s, &g_token);
    weft_stream_pause_token(s, &g_token_again);
    if (g_continue_instead)
        return WEFT_CONTINUE;
    weft_callout_start(s, WEFT_STR("auth"), WEFT_STR("GET"), WEFT_STR("/check"), NULL, NULL, 0,
                       WEFT_STR(""), 1000, authz_done, NULL, NULL);
    return WEFT_STOP;
}

static weft_stream *g_seen_last(void) {
    return g_nseen ? g_seen[g_nseen - 1] : NULL;
}

static void *authz_stream_create(void *config, void *worker, weft_stream *s) {
    g_nseen = 0;
    return keep_stream_create(config, worker, s);
}

static const weft_http_filter_ops authz_ops = {
    .size = sizeof(weft_http_filter_ops),
    .stream_create = authz_stream_create,
    .on_request_headers = authz_request_headers,
};

static const weft_filter_descriptor authz_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("authz", WEFT_FILTER_HTTP),
    .http = &authz_ops,
};

static const weft_filter_descriptor *authz_entry(const weft_host_api *host) {
    weft__host = host;
    return &authz_desc;
}

static wft_env *authz_env(void) {
    g_token = g_token_again = 0;
    g_token_rc = g_cb_rc = WEFT_ERR_NOMEM;
    g_continue_instead = false;
    wft_env *env = wft_env_new(authz_entry, err, sizeof(err));
    assert_non_null(env);
    return env;
}

/* The case: another filter's timer calls weft_stream_resume while
 * authz waits on its callout: refused, nothing goes upstream; the
 * decision decides. */
static void test_pause_owned(void **state) {
    (void)state;
    wft_env *env = authz_env();
    wft_stream *st = wft_stream_new(env, "GET", "/secret", HDRS("host: h"));
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_true(wft_paused(st));
    assert_int_equal(wft_stream_resume_as(st, "meddler"), WEFT_ERR_STATE);
    assert_true(wft_paused(st));
    assert_false(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_resume_count(st), 0);
    assert_non_null(strstr(wft_misuse_last(env), "filter meddler: stream_resume: the stream is "
                                                 "paused by filter authz"));
    /* The decision: deny. The request never went on. */
    assert_int_equal(wft_callout_respond(st, 0, 403, NULL, ""), 0);
    assert_int_equal(g_cb_rc, WEFT_OK);
    assert_int_equal(wft_reply_http_status(st), 403);
    assert_false(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    wft_stream_free(st);

    /* allow: the filter's own callback resumes. */
    st = wft_stream_new(env, "GET", "/fine", HDRS("host: h"));
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_stream_resume_as(st, "meddler"), WEFT_ERR_STATE);
    assert_int_equal(wft_callout_respond(st, 0, 200, NULL, ""), 0);
    assert_int_equal(g_cb_rc, WEFT_OK);
    assert_true(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_resume_count(st), 1);
    /* Not paused any more: another filter's resume is "not paused". */
    assert_int_equal(wft_stream_resume_as(st, "meddler"), WEFT_ERR_STATE);
    assert_non_null(strstr(wft_misuse_last(env), "not paused"));
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_resume_token(void **state) {
    (void)state;
    wft_env *env = authz_env();
    wft_stream *st = wft_stream_new(env, "GET", "/t", HDRS("host: h"));
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    weft_stream *h = g_seen_last();
    assert_int_equal(g_token_rc, WEFT_OK);
    assert_true(g_token != 0);
    assert_true(g_token == g_token_again); /* the same pause, the same token */
    /* Resumes that pause, once (test code plays any callback). */
    assert_int_equal(weft_stream_resume_token(h, g_token + 1), WEFT_ERR_STATE);
    assert_true(wft_paused(st));
    assert_int_equal(weft_stream_resume_token(h, g_token), WEFT_OK);
    assert_false(wft_paused(st));
    assert_true(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_int_equal(weft_stream_resume_token(h, g_token), WEFT_ERR_STATE);
    /* The callout answer comes later: the filter's own resume now finds
     * nothing paused. */
    assert_int_equal(wft_callout_respond(st, 0, 200, NULL, ""), 0);
    assert_int_equal(g_cb_rc, WEFT_ERR_STATE);
    wft_stream_free(st);

    /* A token asked for in a hook that returned CONTINUE never resumes. */
    g_continue_instead = true;
    st = wft_stream_new(env, "GET", "/t2", HDRS("host: h"));
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(g_token_rc, WEFT_OK);
    assert_int_equal(weft_stream_resume_token(g_seen_last(), g_token), WEFT_ERR_STATE);
    uint64_t t;
    /* Outside hooks and callbacks of a paused filter: no token. */
    assert_int_equal(weft_stream_pause_token(g_seen_last(), &t), WEFT_ERR_STATE);
    assert_int_equal(weft_stream_pause_token(g_seen_last(), NULL), WEFT_ERR_INVALID);
    wft_stream_free(st);
    /* A stale stream's token and handle. */
    assert_int_equal(weft_stream_resume_token(h, g_token), WEFT_ERR_HANDLE);
    wft_env_free(env);
}

/* ---- trailers cannot pause, as in weft ---- */

static weft_status stop_trailers(void *ctx, weft_stream *s) {
    uint64_t t;
    weft_stream_pause_token(s, &t);
    return WEFT_STOP;
}

static const weft_http_filter_ops trailers_ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_trailers = stop_trailers,
};

static const weft_filter_descriptor trailers_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("trl", WEFT_FILTER_HTTP),
    .http = &trailers_ops,
};

static const weft_filter_descriptor *trailers_entry(const weft_host_api *host) {
    weft__host = host;
    return &trailers_desc;
}

static void test_trailers_cannot_pause(void **state) {
    (void)state;
    wft_env *env = wft_env_new(trailers_entry, err, sizeof(err));
    assert_non_null(env);
    wft_stream *st = wft_stream_new(env, "POST", "/", HDRS("host: h"));
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_body(st, "ab", 2, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_trailers(st, HDRS("x-t: 1")), WEFT_STOP);
    assert_false(wft_paused(st));
    assert_true(wft_forwarded_end(st, WEFT_REQUEST_BODY));
    wft_stream_free(st);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_handle),
        cmocka_unit_test(test_pause_owned),
        cmocka_unit_test(test_resume_token),
        cmocka_unit_test(test_trailers_cannot_pause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
