/* test_stream_fake_upstream.c: the stream pipeline against a fake upstream
 * plugged in through the upstream ops table (weft_upstream_test_ops): the
 * test plays every upstream event itself, in orders a real connection
 * rarely produces on demand (a whole response with trailers arriving
 * while a filter holds the head, errors at each point). Checks that a
 * retry resets the whole response direction, that attempts start and end
 * exactly once (released once, nothing in flight when the codec is told
 * the exchange is over), connect failures and timeouts, errors after the
 * response started, and backpressure both ways. */
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

static uint32_t lb_active(void) {
    return weft_lb_active(sh_lb(&H, 0), -1);
}

/* Every fake attempt was released, and nothing was in flight when the
 * codec heard the exchange was over. */
static void assert_attempts_over(sh_ds *d) {
    for (int k = 0; k < sh_fake_count(); k++)
        assert_true(sh_fake_get(k)->released);
    assert_int_equal(d->dones, 1);
    assert_false(d->att_live_at_done);
    assert_int_equal(d->lb_active_at_done, 0);
    assert_int_equal(lb_active(), 0);
}

/* Two endpoints (fake: the ports are never used). */
static void start(tf_script **fs, size_t n, const char *limits, const char *cluster_extra) {
    int ups[2] = {sh_up_new(&H, false), sh_up_new(&H, false)};
    st_start(&H, fs, n, limits, cluster_extra, ups, 2);
    sh_fake_enable(&H);
}

static const char *const FIRST[] = {"x-attempt: 1", NULL};
static const char *const SECOND[] = {"x-attempt: 2", "content-length: 6", NULL};

static void assert_second_answer(sh_ds *d) {
    assert_int_equal(d->status, 200);
    assert_int_equal(d->heads, 1);
    assert_int_equal(d->ends, 1);
    assert_string_equal(sh_ds_body(d), "second");
    assert_false(d->trailers_sent);
    assert_string_equal(sh_ds_trailers(d), "");
    assert_non_null(strstr(sh_ds_headers(d), "x-attempt: 2\n"));
    assert_null(strstr(sh_ds_headers(d), "x-attempt: 1"));
}

/* ---------- retries reset the response direction ---------- */

/* A filter holds the first response's head (STOP) and a timer asks for
 * the retry; meanwhile the whole first response arrives (an HTTP/2
 * upstream delivers what it has: pausing only withholds flow control):
 * body, trailers, completion. None of it reaches the client. */
static void test_timer_retry_forgets_whole_first_response(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"}, f2 = {.name = "f2",
                                         .act[TF_RESP_HEADERS] = TF_STOP_RETRY,
                                         .times[TF_RESP_HEADERS] = 1,
                                         .timer_ms = 5};
    tf_script *fs[] = {&f1, &f2};
    start(fs, 2, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    assert_int_equal(sh_fake_count(), 1);
    assert_int_equal(lb_active(), 1);
    sh_fake_connect(0);
    assert_non_null(strstr(sh_fake_req(0), "GET /up HTTP/1.1\r\n"));
    sh_fake_head(0, 503, FIRST);
    assert_int_equal(sh_fake_get(0)->pauses, 1); /* the filter holds the head */
    sh_fake_body(0, "first");
    sh_fake_trailers(0, "x-first", "1");
    sh_fake_complete(0);
    assert_true(sh_fake_get(0)->released);
    assert_int_equal(lb_active(), 0); /* the first attempt ended, once */
    assert_int_equal(d->heads, 0);
    /* The timer fires, the retry runs from the deferred event. */
    for (int i = 0; i < 2000 && sh_fake_count() < 2; i++)
        sh_run_for(&H, 1);
    assert_int_equal(sh_fake_count(), 2);
    assert_int_equal(f2.last_rc, WEFT_OK);
    assert_int_equal(lb_active(), 1);
    sh_fake_connect(1);
    assert_non_null(strstr(sh_fake_req(1), "GET /up HTTP/1.1\r\n"));
    sh_fake_head(1, 200, SECOND);
    sh_fake_body(1, "second");
    sh_fake_complete(1);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_int_equal(f1.info.attempts, 2);
    assert_attempts_over(d);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* Same, the retry asked from the response-header hook itself: the first
 * attempt is released at once and says nothing more. */
static void test_hook_retry_releases_first_attempt(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_HEADERS] = TF_RETRY, .times[TF_RESP_HEADERS] = 1};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 503, FIRST);
    assert_true(sh_fake_get(0)->released);
    assert_false(sh_fake_get(0)->reusable); /* its response was not read */
    assert_int_equal(sh_fake_count(), 2);
    assert_int_equal(lb_active(), 1);
    sh_fake_connect(1);
    sh_fake_head(1, 200, SECOND);
    sh_fake_body(1, "second");
    sh_fake_complete(1);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_attempts_over(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* A filter that buffers the response body (STOP until the end) asks for
 * nothing; a second filter nearer the upstream retries from its attempt
 * hook on the first 503: the first response's body never reaches the
 * buffering filter. */
static void test_attempt_retry_before_body_filters(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_BODY] = TF_STOP_TO_END},
              f2 = {.name = "f2", .act[TF_ATTEMPT] = TF_RETRY, .times[TF_ATTEMPT] = 1};
    tf_script *fs[] = {&f1, &f2};
    start(fs, 2, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 503, FIRST);
    assert_int_equal(sh_fake_count(), 2);
    sh_fake_connect(1);
    sh_fake_head(1, 200, SECOND);
    sh_fake_body(1, "sec");
    sh_fake_body(1, "ond");
    sh_fake_complete(1);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f1.attempt:0/503 "
                                  "f2.attempt:0/503 f1.attempt:0/200 f2.attempt:0/200 "
                                  "f2.resp_headers:200 f1.resp_headers:200 f2.resp_body:3 "
                                  "f1.resp_body:3 f2.resp_body:3 f1.resp_body:6 f2.resp_body:0e "
                                  "f1.resp_body:6e f1.complete:200 f2.complete:200");
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* ---------- connect failures ---------- */

static void test_connect_failure_moves_to_other_endpoint(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "connect_attempts: 2");
    weft_cluster_snap *c = &H.snap->clusters[0];
    uint64_t fail0 = sh_counter(&H, c->cx_connect_fail);
    uint64_t retry0 = sh_counter(&H, c->rq_retry_connect);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "POST", "/up", "body!");
    /* The request waits for the connection: nothing reached attempt 0. */
    assert_int_equal(evbuffer_get_length(sh_fake_get(0)->req), 0);
    sh_fake_error(0, WEFT_UP_ERR_CONNECT);
    assert_int_equal(sh_fake_count(), 2);
    assert_string_not_equal(sh_fake_get(0)->ep, sh_fake_get(1)->ep);
    assert_int_equal(lb_active(), 1);
    sh_fake_connect(1);
    /* The whole request went to the second endpoint, without a replay
     * buffer: it had waited in the stream. */
    const char *got = sh_fake_req(1);
    assert_non_null(strstr(got, "POST /up HTTP/1.1\r\n"));
    assert_non_null(strstr(got, "\r\n\r\nbody!"));
    sh_fake_head(1, 200, SECOND);
    sh_fake_body(1, "second");
    sh_fake_complete(1);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_int_equal(sh_counter(&H, c->cx_connect_fail) - fail0, 1);
    assert_int_equal(sh_counter(&H, c->rq_retry_connect) - retry0, 1);
    assert_string_equal(f1.info_host, sh_fake_get(1)->ep);
    assert_int_equal(f1.info.attempts, 2);
    assert_attempts_over(d);
    sh_ds_free(d);
}

static void test_connect_timeout_counted_and_answered(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "connect_attempts: 1");
    weft_cluster_snap *c = &H.snap->clusters[0];
    uint64_t fail0 = sh_counter(&H, c->cx_connect_fail);
    uint64_t to0 = sh_counter(&H, c->cx_connect_timeout);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_error(0, WEFT_UP_ERR_CONNECT_TIMEOUT);
    assert_int_equal(sh_fake_count(), 1); /* one attempt allowed */
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 503);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: upstream_connect_timeout\n"));
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_CONNECT_TIMEOUT);
    assert_int_equal(sh_counter(&H, c->cx_connect_fail) - fail0, 1);
    assert_int_equal(sh_counter(&H, c->cx_connect_timeout) - to0, 1);
    assert_attempts_over(d);
    sh_ds_free(d);
}

static void test_start_failure(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "");
    sh_fake_refuse_start = true;
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 503);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: upstream_connect_failure\n"));
    assert_int_equal(f1.info.attempts, 1);
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* ---------- errors ---------- */

static void test_protocol_error_is_502(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_error(0, WEFT_UP_ERR_PROTOCOL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 502);
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_PROTOCOL_ERROR);
    assert_string_equal(f1.info_flags, "UPE");
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* The upstream fails after the head went out: the client connection is
 * reset (the only honest signal left), the attempt ends once. */
static void test_reset_mid_body(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 200, FIRST);
    sh_fake_body(0, "part");
    assert_int_equal(d->heads, 1);
    sh_fake_error(0, WEFT_UP_ERR_RESET);
    sh_run_to_end(&H, d);
    assert_int_equal(d->resets, 1);
    assert_string_equal(sh_ds_body(d), "part");
    assert_non_null(strstr(f1.info_flags, "LR"));
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* A POST without a body is not idempotent: a reset before the head is
 * not sent again by the core; the filters see it and the client gets 503. */
static void test_post_reset_not_resent(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "POST", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_error(0, WEFT_UP_ERR_RESET);
    sh_run_to_end(&H, d);
    assert_int_equal(sh_fake_count(), 1);
    assert_int_equal(d->status, 503);
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_RESET);
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* A filter answers from its attempt hook (a circuit breaker, say): the
 * upstream's head is dropped, the attempt released once. */
static void test_reply_from_attempt_hook(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_ATTEMPT] = TF_REPLY, .reply_status = 429},
              f2 = {.name = "f2"};
    tf_script *fs[] = {&f1, &f2};
    start(fs, 2, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 200, SECOND);
    assert_true(sh_fake_get(0)->released);
    sh_run_to_end(&H, d);
    assert_int_equal(f1.last_rc, WEFT_OK);
    assert_int_equal(d->status, 429);
    assert_null(strstr(sh_ds_headers(d), "x-attempt"));
    /* f2's attempt hook was skipped; the reply ran through the response
     * hooks of both filters (both saw the request), in reverse order, and
     * the upstream's head never reached them. */
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f1.attempt:0/200 "
                                  "f2.resp_headers:429 f1.resp_headers:429 f2.resp_body:11e "
                                  "f1.resp_body:11e f1.complete:429 f2.complete:429");
    assert_attempts_over(d);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* A retry asked from a timer for a POST whose body was not kept is
 * refused; the paused stream then ends by its idle timeout and the
 * attempt still ends exactly once. */
static void test_retry_refused_without_replay(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_HEADERS] = TF_STOP_RETRY, .timer_ms = 1};
    tf_script *fs[] = {&f1};
    start(fs, 1, "stream_idle_timeout: 50ms", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "POST", "/up", "abc");
    sh_fake_connect(0);
    sh_fake_head(0, 503, FIRST);
    sh_run_to_end(&H, d);
    assert_int_equal(f1.timer_fires, 1);
    assert_int_equal(f1.last_rc, WEFT_ERR_STATE);
    assert_int_equal(sh_fake_count(), 1);
    assert_int_equal(d->status, 504);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: stream_idle_timeout\n"));
    assert_attempts_over(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* ---------- request and response flow ---------- */

/* Request body before and after the connection: in order, ended once;
 * the answer comes before the request ended (the connection is then not
 * reused and the exchange closes). */
static void test_request_body_around_connect(void **state) {
    (void)state;
    start(NULL, 0, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_req(d, "POST", "/up");
    sh_req_head(d, 9);
    sh_req_body(d, "abc");
    sh_fake_connect(0);
    sh_req_body(d, "def");
    assert_false(sh_fake_get(0)->req_end);
    sh_fake_head(0, 200, SECOND);
    sh_fake_body(0, "second");
    sh_fake_complete(0);
    assert_false(sh_fake_get(0)->reusable); /* the request had not ended */
    assert_true(d->s.close_after);
    sh_req_body(d, "ghi"); /* after the response: discarded */
    sh_req_end(d);
    sh_run_to_end(&H, d);
    const char *got = sh_fake_req(0);
    assert_non_null(strstr(got, "\r\n\r\nabcdef"));
    assert_null(strstr(got, "ghi"));
    assert_second_answer(d);
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* A whole exchange ends with the connection reusable. */
static void test_upstream_reusable_after_full_exchange(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "POST", "/up", "abc");
    sh_fake_connect(0);
    assert_true(sh_fake_get(0)->req_end || !d->s.up_req_chunked);
    sh_fake_head(0, 200, SECOND);
    sh_fake_body(0, "second");
    sh_fake_complete(0);
    sh_run_to_end(&H, d);
    assert_true(sh_fake_get(0)->reusable);
    assert_second_answer(d);
    assert_string_equal(f1.info_flags, "-"); /* no response flag */
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* The client reads slowly: above the high watermark the stream stops
 * reading the upstream, and starts again when the client drained. */
static void test_response_backpressure(void **state) {
    (void)state;
    start(NULL, 0, "buffer_high_watermark: 1KiB", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 200, FIRST);
    sh_fake_body(0, "abc");
    assert_int_equal(sh_fake_get(0)->pauses, 0);
    d->pending_out = 4096;
    sh_fake_body(0, "def");
    assert_int_equal(sh_fake_get(0)->pauses, 1);
    assert_true(sh_fake_get(0)->paused);
    d->pending_out = 0;
    weft_stream_on_downstream_writable(&d->s);
    assert_int_equal(sh_fake_get(0)->resumes, 1);
    sh_fake_complete(0);
    sh_run_to_end(&H, d);
    assert_string_equal(sh_ds_body(d), "abcdef");
    assert_attempts_over(d);
    sh_ds_free(d);
}

/* A filter holding the response head stops the upstream reads; its
 * resume from a timer starts them again and the held body follows. */
static void test_response_pause_resume_from_timer(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_HEADERS] = TF_STOP_RESUME, .timer_ms = 2};
    tf_script *fs[] = {&f1};
    start(fs, 1, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 200, SECOND);
    assert_true(sh_fake_get(0)->paused);
    sh_fake_body(0, "sec");
    assert_int_equal(d->heads, 0);
    for (int i = 0; i < 2000 && !f1.timer_fires; i++)
        sh_run_for(&H, 1);
    assert_int_equal(f1.last_rc, WEFT_OK);
    assert_int_equal(d->heads, 1);
    assert_false(sh_fake_get(0)->paused);
    sh_fake_body(0, "ond");
    sh_fake_complete(0);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_string_equal(tf_log(), "f1.req_headers:e f1.attempt:0/200 f1.resp_headers:200 "
                                  "f1.timer f1.resp_body:3 f1.resp_body:3 f1.resp_body:0e "
                                  "f1.complete:200");
    assert_attempts_over(d);
    sh_ds_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_timer_retry_forgets_whole_first_response, teardown),
        cmocka_unit_test_teardown(test_hook_retry_releases_first_attempt, teardown),
        cmocka_unit_test_teardown(test_attempt_retry_before_body_filters, teardown),
        cmocka_unit_test_teardown(test_connect_failure_moves_to_other_endpoint, teardown),
        cmocka_unit_test_teardown(test_connect_timeout_counted_and_answered, teardown),
        cmocka_unit_test_teardown(test_start_failure, teardown),
        cmocka_unit_test_teardown(test_protocol_error_is_502, teardown),
        cmocka_unit_test_teardown(test_reset_mid_body, teardown),
        cmocka_unit_test_teardown(test_post_reset_not_resent, teardown),
        cmocka_unit_test_teardown(test_reply_from_attempt_hook, teardown),
        cmocka_unit_test_teardown(test_retry_refused_without_replay, teardown),
        cmocka_unit_test_teardown(test_request_body_around_connect, teardown),
        cmocka_unit_test_teardown(test_upstream_reusable_after_full_exchange, teardown),
        cmocka_unit_test_teardown(test_response_backpressure, teardown),
        cmocka_unit_test_teardown(test_response_pause_resume_from_timer, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
