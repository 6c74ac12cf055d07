/* test_stream_replies.c: the stream pipeline without an upstream answer:
 * local replies at every request-side stage (router, direct responses,
 * filters on request headers and body, from a timer), pauses and resumes
 * from timers (hook order), the stream ending while a filter is paused or
 * a timer is armed, and the limits that end a stream (filter buffer,
 * stream idle timeout). Driven through the harness (stream_harness.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

/* ---------- router and route actions ---------- */

static void test_direct_response(void **state) {
    (void)state;
    st_start(&H, NULL, 0, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    assert_int_equal(d->status, 200);
    assert_string_equal(sh_ds_body(d), "hello");
    assert_int_equal(d->ends, 1);
    assert_int_equal(d->dones, 1);
    assert_int_equal(d->ended, 0); /* the end runs from the deferred event */
    sh_run_to_end(&H, d);
    assert_int_equal(d->ended, 1);
    /* The connection is reused: a second exchange on the same stream object. */
    sh_request(d, "GET", "/redir/a?q=1", NULL);
    assert_int_equal(d->status, 301);
    assert_non_null(strstr(sh_ds_headers(d), "location: http://test.local/x?q=1\n"));
    assert_int_equal(d->heads, 1);
    assert_true(d->head_end_stream);
    sh_run_to_end(&H, d);
    assert_int_equal(atomic_load(&H.w->active_streams), 0);
    sh_ds_free(d);
}

static void test_route_not_found(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/nowhere", NULL);
    assert_int_equal(d->status, 404);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: route_not_found\n"));
    assert_string_equal(sh_ds_body(d), "route_not_found\n");
    sh_run_to_end(&H, d);
    /* weft's own reply runs through the response hooks of the filters that
     * saw the request (ABI 1.1), then the log phase. */
    assert_string_equal(tf_log(),
                        "f1.req_headers:e f1.resp_headers:404 f1.resp_body:16e f1.complete:404");
    assert_string_equal(f1.info_flags, "NR");
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* ---------- filter replies on the request side ---------- */

static void test_reply_on_request_headers(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"}, f2 = {.name = "f2", .act[TF_REQ_HEADERS] = TF_REPLY},
              f3 = {.name = "f3"};
    tf_script *fs[] = {&f1, &f2, &f3};
    st_start(&H, fs, 3, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    assert_int_equal(f2.last_rc, WEFT_OK);
    assert_int_equal(d->status, 403);
    assert_int_equal(d->heads, 1);
    assert_int_equal(d->ends, 1);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: test_reply\n"));
    sh_run_to_end(&H, d);
    /* f3 never saw the request (its response hooks are skipped too); the
     * reply runs through f2 (the replier) and f1, in reverse order; the
     * route's direct response never ran. */
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f2.resp_headers:403 "
                                  "f1.resp_headers:403 f2.resp_body:11e f1.resp_body:11e "
                                  "f1.complete:403 f2.complete:403 f3.complete:403");
    assert_int_equal(f3.calls[TF_RESP_HEADERS], 0);
    assert_int_equal(f3.calls[TF_REQ_HEADERS], 0);
    assert_string_equal(f1.info_flags, "LR");
    sh_assert_filters_released(fs, 3);
    sh_ds_free(d);
}

static void test_reply_on_request_body(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_BODY] = TF_REPLY, .reply_status = 413},
              f2 = {.name = "f2"};
    tf_script *fs[] = {&f1, &f2};
    /* The request goes to a cluster whose endpoint accepts (kernel backlog)
     * but never answers: the reply comes from the body hook. */
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 2, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_req(d, "POST", "/up");
    sh_req_head(d, 6);
    sh_req_body(d, "abc");
    assert_int_equal(d->status, 413);
    assert_true(d->s.close_after); /* the rest of the body was never read */
    sh_req_body(d, "def");         /* arrives after the reply: discarded */
    sh_req_end(d);
    sh_run_to_end(&H, d);
    /* Both filters saw the request head: both see the reply. */
    assert_string_equal(tf_log(), "f1.req_headers f2.req_headers f1.req_body:3 "
                                  "f2.resp_headers:413 f1.resp_headers:413 f2.resp_body:11e "
                                  "f1.resp_body:11e f1.complete:413 f2.complete:413");
    /* The upstream attempt the headers started ended with the reply. */
    assert_false(d->att_live_at_done);
    assert_int_equal(d->lb_active_at_done, 0);
    assert_int_equal(weft_lb_active(sh_lb(&H, 0), -1), 0);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

static void test_bad_hook_status_is_500(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_HEADERS] = TF_BAD_STATUS};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    assert_int_equal(d->status, 500);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: filter_error\n"));
    sh_run_to_end(&H, d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* ---------- pauses and resumes from timers ---------- */

static void test_pause_resume_from_timer(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"},
              f2 = {.name = "f2", .act[TF_REQ_HEADERS] = TF_STOP_RESUME, .timer_ms = 5},
              f3 = {.name = "f3", .act[TF_REQ_HEADERS] = TF_STOP_RESUME, .timer_ms = 1};
    tf_script *fs[] = {&f1, &f2, &f3};
    st_start(&H, fs, 3, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    /* Paused at f2: nothing sent, f3 not called yet. */
    assert_int_equal(d->heads, 0);
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e");
    sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
    assert_int_equal(f2.last_rc, WEFT_OK);
    assert_int_equal(f3.last_rc, WEFT_OK);
    /* The direct response runs through every filter's response hooks. */
    assert_string_equal(tf_log(),
                        "f1.req_headers:e f2.req_headers:e f2.timer f3.req_headers:e "
                        "f3.timer f3.resp_headers:200 f2.resp_headers:200 "
                        "f1.resp_headers:200 f3.resp_body:5e f2.resp_body:5e "
                        "f1.resp_body:5e f1.complete:200 f2.complete:200 f3.complete:200");
    assert_int_equal(d->status, 200);
    assert_string_equal(sh_ds_body(d), "hello");
    sh_assert_filters_released(fs, 3);
    sh_ds_free(d);
}

/* The request body that arrives while a filter holds the headers waits,
 * and reaches the body hooks after the resume, in order. */
static void test_body_waits_for_paused_headers(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_HEADERS] = TF_STOP_RESUME, .timer_ms = 1},
              f2 = {.name = "f2", .act[TF_REQ_BODY] = TF_REPLY, .reply_status = 418};
    tf_script *fs[] = {&f1, &f2};
    int u = sh_up_new(&H, true); /* accepts (backlog), never answers */
    st_start(&H, fs, 2, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_req(d, "POST", "/up");
    sh_req_head(d, 5);
    sh_req_body(d, "hello");
    sh_req_end(d);
    assert_int_equal(d->heads, 0);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 418);
    assert_string_equal(tf_log(), "f1.req_headers f1.timer f2.req_headers f1.req_body:5e "
                                  "f2.req_body:5e f2.resp_headers:418 f1.resp_headers:418 "
                                  "f2.resp_body:11e f1.resp_body:11e f1.complete:418 "
                                  "f2.complete:418");
    assert_false(d->att_live_at_done);
    assert_int_equal(d->lb_active_at_done, 0);
    assert_int_equal(weft_lb_active(sh_lb(&H, 0), -1), 0);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

static void test_reply_from_timer(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1",
                    .act[TF_REQ_HEADERS] = TF_STOP_REPLY,
                    .timer_ms = 1,
                    .reply_status = 429},
              f2 = {.name = "f2"};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(f1.last_rc, WEFT_OK);
    assert_int_equal(d->status, 429);
    assert_int_equal(d->heads, 1);
    /* Only f1 saw the request (it paused there): f2's hooks are skipped. */
    assert_string_equal(tf_log(), "f1.req_headers:e f1.timer f1.resp_headers:429 "
                                  "f1.resp_body:11e f1.complete:429 f2.complete:429");
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* ---------- the stream ends under a paused filter ---------- */

static void test_client_reset_while_paused(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_HEADERS] = TF_STOP}, f2 = {.name = "f2"};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_ds_client_reset(d);
    sh_run_to_end(&H, d);
    assert_int_equal(d->heads, 0);
    assert_string_equal(tf_log(), "f1.req_headers:e f1.complete:0 f2.complete:0");
    assert_string_equal(f1.info_flags, "DC");
    sh_assert_filters_released(fs, 2);
    /* A resume after the end is refused (the handle is not live). */
    assert_int_equal(weft_stream_resume(&d->s), WEFT_ERR_HANDLE);
    sh_ds_free(d);
}

/* A timer armed by a paused filter never fires once the stream ended. */
static void test_timer_after_stream_end(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_HEADERS] = TF_STOP_RESUME, .timer_ms = 20};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_ds_client_reset(d);
    sh_run_to_end(&H, d);
    sh_run_for(&H, 60);
    assert_int_equal(f1.timer_fires, 0);
    /* The next exchange on the same stream object works, and its own
     * timer fires. */
    sh_request(d, "GET", "/direct", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(f1.timer_fires, 1);
    assert_int_equal(d->status, 200);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* The stream object is destroyed (connection freed) while a filter is
 * paused and its timer armed: nothing fires later (ASan checks). */
static void test_destroy_while_paused(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_HEADERS] = TF_STOP_RESUME, .timer_ms = 10};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_ds_free(d);
    sh_run_for(&H, 40);
    assert_int_equal(f1.timer_fires, 0);
    sh_assert_filters_released(fs, 1);
}

/* ---------- limits ---------- */

static void test_filter_buffer_limit_request(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_BODY] = TF_STOP_TO_END};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "buffer_high_watermark: 16", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_req(d, "POST", "/up");
    sh_req_head(d, 40);
    sh_req_body(d, "0123456789");
    assert_int_equal(d->heads, 0); /* 10 bytes held: under the limit */
    sh_req_body(d, "0123456789");
    assert_int_equal(d->status, 413);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: filter_buffer_overflow\n"));
    sh_run_to_end(&H, d);
    assert_false(d->att_live_at_done);
    assert_int_equal(d->lb_active_at_done, 0);
    assert_int_equal(weft_lb_active(sh_lb(&H, 0), -1), 0);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

static void test_stream_idle_timeout_while_paused(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_REQ_HEADERS] = TF_STOP};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "stream_idle_timeout: 30ms", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    assert_int_equal(d->heads, 0);
    sh_run_to_end(&H, d);
    /* The whole request arrived: the stream idled waiting for the answer. */
    assert_int_equal(d->status, 504);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: stream_idle_timeout\n"));
    assert_string_equal(f1.info_flags, "SI");
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_direct_response, teardown),
        cmocka_unit_test_teardown(test_route_not_found, teardown),
        cmocka_unit_test_teardown(test_reply_on_request_headers, teardown),
        cmocka_unit_test_teardown(test_reply_on_request_body, teardown),
        cmocka_unit_test_teardown(test_bad_hook_status_is_500, teardown),
        cmocka_unit_test_teardown(test_pause_resume_from_timer, teardown),
        cmocka_unit_test_teardown(test_body_waits_for_paused_headers, teardown),
        cmocka_unit_test_teardown(test_reply_from_timer, teardown),
        cmocka_unit_test_teardown(test_client_reset_while_paused, teardown),
        cmocka_unit_test_teardown(test_timer_after_stream_end, teardown),
        cmocka_unit_test_teardown(test_destroy_while_paused, teardown),
        cmocka_unit_test_teardown(test_filter_buffer_limit_request, teardown),
        cmocka_unit_test_teardown(test_stream_idle_timeout_while_paused, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
