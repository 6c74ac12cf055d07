/* test_stream_local_reply.c: local replies through the response hooks
 * (ABI 1.1). weft's own replies (404, a direct response, the idle
 * timeout), a filter's weft_reply_send from a request hook, a timer or a
 * response hook, run through on_response_headers / on_response_body of
 * the filters that saw the request, in reverse order; filters may change
 * them, STOP on them and resume; a reply from a response hook (or while
 * the response is paused) replaces the response without recursion; gRPC
 * Trailers-Only replies end with their headers; weft_reply_is_local and
 * the log phase's local_reply fields say what was local. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stream_harness.h"
#include "stream_test_config.h"

static sh H;

static int teardown(void **state) {
    (void)state;
    sh_free(&H);
    memset(&H, 0, sizeof(H));
    return 0;
}

/* ---------- a stamping filter ---------- */

typedef struct stamp_obs {
    int local_in_headers; /* weft_reply_is_local in the last response-header hook */
    int local_in_body;
    int local_in_req;    /* ...in the request-header hook: always false */
    int local_in_log;    /* ...in the log phase */
    uint32_t info_local; /* weft_stream_info.local_reply */
    char info_reason[64];
    int set_status; /* >0: response_set_status there */
    weft_result retry_rc;
    bool try_retry;
} stamp_obs;

static void stamp(tf_script *sc, weft_stream *s, tf_hook hook) {
    stamp_obs *o = sc->custom_arg;
    switch (hook) {
    case TF_REQ_HEADERS:
        o->local_in_req = weft_reply_is_local(s);
        break;
    case TF_RESP_HEADERS: {
        o->local_in_headers = weft_reply_is_local(s);
        char v[64];
        snprintf(v, sizeof(v), "%s%s", sc->name, o->local_in_headers ? ":local" : ":upstream");
        assert_int_equal(
            weft_header_add(s, WEFT_RESPONSE_HEADERS, weft_str_c("x-stamp"), weft_str_c(v)),
            WEFT_OK);
        if (o->set_status)
            assert_int_equal(weft_response_set_status(s, o->set_status), WEFT_OK);
        if (o->try_retry)
            o->retry_rc = weft_upstream_retry(s);
        break;
    }
    case TF_RESP_BODY:
        o->local_in_body = weft_reply_is_local(s);
        break;
    case TF_COMPLETE:
        o->local_in_log = weft_reply_is_local(s);
        o->info_local =
            sc->info.size >= offsetof(weft_stream_info, local_reply_reason) + sizeof(weft_str)
                ? sc->info.local_reply
                : 99;
        break;
    default:
        break;
    }
}

/* tf_complete copied the info before calling custom; the reason view is
 * read here, during the log phase. */
static void stamp_reason(tf_script *sc, weft_stream *s, tf_hook hook) {
    stamp(sc, s, hook);
    if (hook == TF_COMPLETE) {
        stamp_obs *o = sc->custom_arg;
        snprintf(o->info_reason, sizeof(o->info_reason), "%.*s",
                 (int)sc->info.local_reply_reason.len, sc->info.local_reply_reason.ptr);
    }
}

#define STAMP(var, nm, obs) tf_script var = {.name = nm, .custom = stamp_reason, .custom_arg = obs}

/* ---------- weft's own replies ---------- */

static void test_route_not_found_is_stamped(void **state) {
    (void)state;
    stamp_obs o1 = {0}, o2 = {0};
    STAMP(f1, "f1", &o1);
    STAMP(f2, "f2", &o2);
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/nowhere", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 404);
    const char *hd = sh_ds_headers(d);
    /* Reverse order: f2 stamps first, f1 (nearest the client) last. */
    const char *a = strstr(hd, "x-stamp: f2:local\n"), *b = strstr(hd, "x-stamp: f1:local\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_non_null(strstr(hd, "x-weft-reason: route_not_found\n"));
    assert_string_equal(sh_ds_body(d), "route_not_found\n");
    assert_int_equal(o1.local_in_req, 0);
    assert_int_equal(o1.local_in_headers, 1);
    assert_int_equal(o1.local_in_body, 1);
    assert_int_equal(o1.local_in_log, 1);
    assert_int_equal(o1.info_local, 1);
    assert_string_equal(o1.info_reason, "route_not_found");
    assert_string_equal(f1.info_flags, "NR");
    assert_int_equal(f1.info.status, 404);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* An upstream response is not local; its log phase says so. */
static void test_upstream_response_not_local(void **state) {
    (void)state;
    stamp_obs o1 = {0};
    STAMP(f1, "f1", &o1);
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_up_accept(&H, u);
    sh_up_wait_for(&H, u, "\r\n\r\n");
    sh_up_send(&H, u, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 200);
    assert_non_null(strstr(sh_ds_headers(d), "x-stamp: f1:upstream\n"));
    assert_int_equal(o1.local_in_headers, 0);
    assert_int_equal(o1.local_in_log, 0);
    assert_int_equal(o1.info_local, 0);
    assert_string_equal(o1.info_reason, "");
    sh_ds_free(d);
}

/* A filter changes a local reply's status as it would an upstream's; an
 * upstream retry from there is refused (nothing to retry). */
static void test_change_status_of_local_reply(void **state) {
    (void)state;
    stamp_obs o1 = {.set_status = 451, .try_retry = true};
    STAMP(f1, "f1", &o1);
    tf_script f2 = {.name = "f2", .act[TF_REQ_HEADERS] = TF_REPLY, .reply_status = 403};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 451);
    assert_int_equal(o1.retry_rc, WEFT_ERR_STATE);
    assert_int_equal(f1.info.status, 451);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: test_reply\n"));
    assert_string_equal(o1.info_reason, "test_reply");
    assert_string_equal(f1.info_flags, "LR");
    sh_ds_free(d);
}

/* ---------- pauses on a local reply ---------- */

static void test_stop_on_local_reply_headers_resumes(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"},
              f2 = {.name = "f2", .act[TF_RESP_HEADERS] = TF_STOP_RESUME, .timer_ms = 5};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/nowhere", NULL);
    /* Held at f2: nothing sent yet. */
    assert_int_equal(d->heads, 0);
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f2.resp_headers:404");
    sh_run_to_end(&H, d);
    assert_int_equal(f2.last_rc, WEFT_OK);
    assert_int_equal(d->status, 404);
    assert_int_equal(d->heads, 1);
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f2.resp_headers:404 f2.timer "
                                  "f1.resp_headers:404 f2.resp_body:16e f1.resp_body:16e "
                                  "f1.complete:404 f2.complete:404");
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

static void test_stop_on_local_reply_body_resumes(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_BODY] = TF_STOP_RESUME, .timer_ms = 5},
              f2 = {.name = "f2"};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    /* The head went out; the body waits at f1. */
    assert_int_equal(d->heads, 1);
    assert_int_equal(d->ends, 0);
    sh_run_to_end(&H, d);
    assert_int_equal(d->ends, 1);
    assert_string_equal(sh_ds_body(d), "hello");
    assert_string_equal(tf_log(),
                        "f1.req_headers:e f2.req_headers:e f2.resp_headers:200 f1.resp_headers:200 "
                        "f2.resp_body:5e f1.resp_body:5e f1.timer f1.complete:200 f2.complete:200");
    sh_ds_free(d);
}

/* A local reply held by a filter that never resumes ends by the stream
 * idle timeout: its 504 replaces the held reply and goes on from the
 * filter after the one that held it (no loop back to it). */
static void test_idle_timeout_replaces_held_local_reply(void **state) {
    (void)state;
    stamp_obs o1 = {0};
    STAMP(f1, "f1", &o1);
    tf_script f2 = {.name = "f2", .act[TF_RESP_HEADERS] = TF_STOP};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "stream_idle_timeout: 30ms", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/nowhere", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 504);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: stream_idle_timeout\n"));
    assert_non_null(strstr(sh_ds_headers(d), "x-stamp: f1:local\n"));
    assert_int_equal(f2.calls[TF_RESP_HEADERS], 1);
    assert_int_equal(f1.calls[TF_RESP_HEADERS], 1);
    assert_string_equal(f1.info_flags, "NR,SI");
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* ---------- replies that replace a local reply ---------- */

static void test_reply_from_local_reply_hook_replaces(void **state) {
    (void)state;
    stamp_obs o1 = {0};
    STAMP(f1, "f1", &o1);
    tf_script f2 = {.name = "f2", .act[TF_RESP_HEADERS] = TF_REPLY, .reply_status = 503};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/nowhere", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(f2.last_rc, WEFT_OK);
    assert_int_equal(d->status, 503);
    assert_int_equal(d->heads, 1);
    assert_null(strstr(sh_ds_headers(d), "route_not_found"));
    assert_non_null(strstr(sh_ds_headers(d), "x-stamp: f1:local\n"));
    /* No recursion: f2 saw the 404 once, f1 only the 503. */
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f2.resp_headers:404 "
                                  "f1.resp_headers:503 f1.resp_body:11e f1.complete:503 "
                                  "f2.complete:503");
    assert_string_equal(o1.info_reason, "test_reply");
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

static void test_reply_while_local_reply_paused_replaces(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"}, f2 = {.name = "f2",
                                         .act[TF_RESP_HEADERS] = TF_STOP_REPLY,
                                         .timer_ms = 2,
                                         .reply_status = 429};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(f2.last_rc, WEFT_OK);
    assert_int_equal(d->status, 429);
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f2.resp_headers:200 f2.timer "
                                  "f1.resp_headers:429 f1.resp_body:11e f1.complete:429 "
                                  "f2.complete:429");
    sh_ds_free(d);
}

/* A reply from a body hook of a local reply: the head went out, so the
 * stream is reset (as for any response). */
static void test_reply_after_local_head_resets(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_BODY] = TF_REPLY, .reply_status = 500};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 200);
    assert_int_equal(d->heads, 1);
    assert_int_equal(d->resets, 1);
    assert_string_equal(f1.info_flags, "DR,LR");
    sh_ds_free(d);
}

/* A hook returning a bad status on a local reply: the 500 replaces it. */
static void test_bad_status_on_local_reply(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"}, f2 = {.name = "f2", .act[TF_RESP_HEADERS] = TF_BAD_STATUS};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/nowhere", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 500);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: filter_error\n"));
    assert_int_equal(f1.calls[TF_RESP_HEADERS], 1);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* ---------- shapes ---------- */

/* gRPC Trailers-Only: the reply ends with its headers (end_stream in the
 * hook, no body hook), grpc-status in the head. */
static void test_grpc_local_reply_headers_only(void **state) {
    (void)state;
    stamp_obs o1 = {0};
    STAMP(f1, "f1", &o1);
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_req(d, "POST", "/nowhere");
    sh_req_header(d, "content-type", "application/grpc");
    sh_req_head(d, -1);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 200);
    assert_true(d->head_end_stream);
    const char *hd = sh_ds_headers(d);
    assert_non_null(strstr(hd, "grpc-status: 12\n"));
    assert_non_null(strstr(hd, "x-stamp: f1:local\n"));
    assert_string_equal(sh_ds_body(d), "");
    assert_string_equal(tf_log(), "f1.req_headers:e f1.resp_headers:200e f1.complete:200");
    sh_ds_free(d);
}

/* HEAD: the reply's head only (content-length of the body it would have). */
static void test_head_local_reply(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "HEAD", "/nowhere", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 404);
    assert_string_equal(sh_ds_body(d), "");
    assert_non_null(strstr(sh_ds_headers(d), "content-length: 16\n"));
    assert_string_equal(tf_log(), "f1.req_headers:e f1.resp_headers:404e f1.complete:404");
    sh_ds_free(d);
}

/* The request body that arrives while a local reply is held in the
 * response hooks never reaches the request body hooks. */
static void test_request_body_after_held_local_reply(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_HEADERS] = TF_STOP_RESUME, .timer_ms = 5};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_req(d, "POST", "/nowhere");
    sh_req_head(d, 6);
    assert_int_equal(d->heads, 0);
    sh_req_body(d, "abcdef");
    sh_req_end(d);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 404);
    assert_int_equal(f1.calls[TF_REQ_BODY], 0);
    assert_string_equal(tf_log(), "f1.req_headers f1.resp_headers:404 f1.timer f1.resp_body:16e "
                                  "f1.complete:404");
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_route_not_found_is_stamped, teardown),
        cmocka_unit_test_teardown(test_upstream_response_not_local, teardown),
        cmocka_unit_test_teardown(test_change_status_of_local_reply, teardown),
        cmocka_unit_test_teardown(test_stop_on_local_reply_headers_resumes, teardown),
        cmocka_unit_test_teardown(test_stop_on_local_reply_body_resumes, teardown),
        cmocka_unit_test_teardown(test_idle_timeout_replaces_held_local_reply, teardown),
        cmocka_unit_test_teardown(test_reply_from_local_reply_hook_replaces, teardown),
        cmocka_unit_test_teardown(test_reply_while_local_reply_paused_replaces, teardown),
        cmocka_unit_test_teardown(test_reply_after_local_head_resets, teardown),
        cmocka_unit_test_teardown(test_bad_status_on_local_reply, teardown),
        cmocka_unit_test_teardown(test_grpc_local_reply_headers_only, teardown),
        cmocka_unit_test_teardown(test_head_local_reply, teardown),
        cmocka_unit_test_teardown(test_request_body_after_held_local_reply, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
