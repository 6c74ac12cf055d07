/* test_filtertest_local_reply.c: the kit mirrors the core's local replies
 * through the response hooks (ABI 1.1): a filter's own reply and weft's
 * (wft_local_reply) run its on_response_headers / on_response_body, which
 * may change them and STOP on them; weft_reply_is_local says so, and the
 * log phase's local_reply fields; a reply from a response-header hook, or
 * while the response headers are held, replaces the response without the
 * hooks running again; gRPC replies end with their headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filter.h>
#include <weft/filtertest.h>

/* ---------- the filter: stamps every response ---------- */

static struct {
    int resp_headers, resp_body, local_in_headers, local_in_body, local_in_req, headers_end;
    uint32_t info_local;
    char info_reason[64];
    int info_status;
    weft_result resume_rc;
} O;

static bool has(weft_stream *s, const char *name) {
    weft_str v;
    return weft_header_get(s, WEFT_REQUEST_HEADERS, weft_str_c(name), &v) == WEFT_OK;
}

static void resume_cb(weft_stream *s, void *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    O.resume_rc = weft_stream_resume(s);
}

static weft_status f_req(void *ctx, weft_stream *s, bool end) {
    (void)ctx;
    (void)end;
    O.local_in_req = weft_reply_is_local(s);
    if (has(s, "x-deny")) {
        weft_reply_simple(s, 403, WEFT_STR("denied"), WEFT_STR("denied\n"));
        return WEFT_REPLIED;
    }
    return WEFT_CONTINUE;
}

static weft_status f_resp(void *ctx, weft_stream *s, bool end) {
    (void)ctx;
    O.resp_headers++;
    O.headers_end = end;
    O.local_in_headers = weft_reply_is_local(s);
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-stamp"),
                    O.local_in_headers ? WEFT_STR("local") : WEFT_STR("upstream"));
    if (has(s, "x-teapot-on-response"))
        return weft_reply_simple(s, 418, WEFT_STR("teapot"), WEFT_STR("")) == WEFT_OK
                   ? WEFT_REPLIED
                   : WEFT_CONTINUE;
    if (has(s, "x-hold")) {
        weft_timer_start(s, 10, resume_cb, NULL, NULL);
        return WEFT_STOP;
    }
    if (weft_reply_is_local(s) && weft_response_status(s) == 503)
        weft_response_set_status(s, 502);
    return WEFT_CONTINUE;
}

static weft_status f_resp_body(void *ctx, weft_stream *s, weft_buffer *chunk, bool end) {
    (void)ctx;
    O.resp_body++;
    O.local_in_body = weft_reply_is_local(s);
    if (end && O.local_in_body)
        weft_buffer_append(chunk, "!", 1);
    return WEFT_CONTINUE;
}

static void f_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    (void)ctx;
    (void)s;
    O.info_status = info->status;
    O.info_local = info->local_reply;
    snprintf(O.info_reason, sizeof(O.info_reason), "%.*s", (int)info->local_reply_reason.len,
             info->local_reply_reason.ptr);
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_headers = f_req,
    .on_response_headers = f_resp,
    .on_response_body = f_resp_body,
    .on_stream_complete = f_complete,
};
static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("stamp", WEFT_FILTER_HTTP),
    .http = &ops,
};
WEFT_FILTER_DEFINE(desc)

/* ---------- tests ---------- */

static wft_env *env_new(void) {
    memset(&O, 0, sizeof(O));
    char err[256];
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    assert_non_null(env);
    return env;
}

static void test_own_reply_runs_response_hooks(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st = wft_stream_new(env, "GET", "/", (const char *[]){"x-deny: 1", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
    int status;
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 403);
    assert_int_equal(O.resp_headers, 1);
    assert_int_equal(O.local_in_req, 0);
    assert_int_equal(O.local_in_headers, 1);
    assert_int_equal(O.local_in_body, 1);
    assert_int_equal(O.headers_end, 0);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-stamp"), "local");
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "denied\n!");
    assert_true(wft_forwarded_end(st, WEFT_RESPONSE_BODY));
    wft_complete(st, "LR");
    assert_int_equal(O.info_local, 1);
    assert_string_equal(O.info_reason, "denied");
    assert_int_equal(wft_misuse_count(env), 0);
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_weft_local_reply(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_local_reply(st, 503, "no_healthy_upstream"), 0);
    int status;
    const char *reason;
    assert_true(wft_replied(st, &status, NULL, &reason));
    assert_int_equal(status, 502); /* the filter changed it */
    assert_string_equal(reason, "no_healthy_upstream");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-weft-reason"),
                        "no_healthy_upstream");
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "no_healthy_upstream\n!");
    wft_complete(st, "UH");
    assert_int_equal(O.info_status, 502);
    assert_int_equal(O.info_local, 1);
    /* Answered: no second reply. */
    assert_int_equal(wft_local_reply(st, 504, "x"), WFT_REJECTED);
    wft_stream_free(st);

    /* Before the request reached the filter: no hook runs. */
    memset(&O, 0, sizeof(O));
    st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_local_reply(st, 400, "bad_request"), 0);
    assert_int_equal(O.resp_headers, 0);
    assert_null(wft_header(st, WEFT_RESPONSE_HEADERS, "x-stamp"));
    wft_stream_free(st);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

static void test_upstream_response_not_local(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(
        wft_response_headers(st, 200, (const char *[]){"content-length: 2", NULL}, false),
        WEFT_CONTINUE);
    assert_int_equal(wft_response_body(st, "ok", 2, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-stamp"), "upstream");
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "ok");
    wft_complete(st, NULL);
    assert_int_equal(O.info_local, 0);
    assert_string_equal(O.info_reason, "");
    wft_stream_free(st);
    wft_env_free(env);
}

/* STOP on a local reply's headers: the reply waits for the resume. */
static void test_stop_on_local_reply(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st =
        wft_stream_new(env, "GET", "/", (const char *[]){"x-deny: 1", "x-hold: 1", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
    assert_true(wft_paused_dir(st, WEFT_RESPONSE_BODY));
    assert_false(wft_forwarded_headers(st, WEFT_RESPONSE_BODY));
    assert_int_equal(O.resp_body, 0);
    wft_clock_advance(env, 10);
    assert_int_equal(O.resume_rc, WEFT_OK);
    assert_true(wft_forwarded_headers(st, WEFT_RESPONSE_BODY));
    assert_int_equal(O.resp_body, 1);
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "denied\n!");
    assert_true(wft_forwarded_end(st, WEFT_RESPONSE_BODY));
    assert_int_equal(wft_misuse_count(env), 0);
    wft_stream_free(st);
    wft_env_free(env);
}

/* weft's reply while the filter holds an upstream response's headers
 * replaces it; the filter's hooks do not run again (the core goes on with
 * the filters after it: none here). */
static void test_local_reply_replaces_held_response(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st = wft_stream_new(env, "GET", "/", (const char *[]){"x-hold: 1", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(st, 200, NULL, false), WEFT_STOP);
    assert_int_equal(wft_local_reply(st, 504, "stream_idle_timeout"), 0);
    assert_int_equal(O.resp_headers, 1);
    int status;
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 504);
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "stream_idle_timeout\n");
    assert_false(wft_paused(st));
    wft_stream_free(st);
    wft_env_free(env);
}

/* A reply from the response-header hook replaces the upstream response
 * (no recursion: the hook is not called again). */
static void test_reply_from_response_hook(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st =
        wft_stream_new(env, "GET", "/", (const char *[]){"x-teapot-on-response: 1", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(st, 200, NULL, false), WEFT_REPLIED);
    assert_int_equal(O.resp_headers, 1);
    assert_int_equal(wft_reply_http_status(st), 418);
    assert_true(wft_forwarded_end(st, WEFT_RESPONSE_BODY));
    assert_int_equal(wft_misuse_count(env), 0);
    wft_stream_free(st);
    wft_env_free(env);
}

/* gRPC: Trailers-Only, end_stream on the headers hook, no body hook. */
static void test_grpc_local_reply(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st =
        wft_stream_new(env, "POST", "/pkg.Svc/M",
                       (const char *[]){"x-deny: 1", "content-type: application/grpc", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
    assert_int_equal(O.resp_headers, 1);
    assert_int_equal(O.headers_end, 1);
    assert_int_equal(O.resp_body, 0);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "grpc-status"), "7");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-stamp"), "local");
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "");
    wft_stream_free(st);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_reply_runs_response_hooks),
        cmocka_unit_test(test_weft_local_reply),
        cmocka_unit_test(test_upstream_response_not_local),
        cmocka_unit_test(test_stop_on_local_reply),
        cmocka_unit_test(test_local_reply_replaces_held_response),
        cmocka_unit_test(test_reply_from_response_hook),
        cmocka_unit_test(test_grpc_local_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
