/* test_filtertest_tcp: the kit mirrors SDK 1.1's raw TCP callouts with
 * weft's semantics and a scripted peer, driven through the redis_counter
 * test filter (tests/filters/redis_counter.c, linked in): what the filter
 * writes before the connect waits for it, a reply in two pieces resumes
 * the request only when complete, "-ERR" answers 502, a connect failure
 * and the connect and idle timeouts (kit clock; connect: 2 attempts x
 * connect_timeout) answer 503, the stream's end closes its callout
 * without a callback, the
 * peer closing, an unexpected reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filtertest.h>

const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);

static char err[512];

static wft_env *make_env(const char *cfg) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_add_cluster(env, "redis"), 0);
    assert_int_equal(wft_env_add_cluster(env, "be"), 0);
    assert_int_equal(wft_env_configure(env, cfg, err, sizeof(err)), 0);
    return env;
}

static const char *const key_hdr[] = {"host: a", "x-counter-key: k", NULL};

static void expect_written(wft_env *env, size_t i, const char *want) {
    size_t len = 0;
    char *got = wft_tcp_read(env, i, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
}

static void test_reply_in_pieces(void **state) {
    (void)state;
    wft_env *env = make_env("scope: stream\n");
    wft_stream *st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_count(env), 1);
    assert_string_equal(wft_tcp_cluster(env, 0), "redis");
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_CONNECTING);
    /* Written before the connect: it waits, the test reads it all. */
    expect_written(env, 0, "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n");
    assert_int_equal(wft_tcp_deliver(env, 0, ":1\r\n", 4), WFT_REJECTED); /* not connected */
    assert_int_equal(wft_tcp_connect(env, 0), 0);
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_CONNECTED);
    /* Half a reply: the filter leaves it in the buffer, the request waits. */
    assert_int_equal(wft_tcp_deliver(env, 0, ":4", 2), 0);
    assert_true(wft_paused(st));
    assert_int_equal(wft_tcp_pending_in(env, 0), 2);
    assert_int_equal(wft_tcp_deliver(env, 0, "2\r\n", 3), 0);
    assert_false(wft_paused(st));
    assert_int_equal(wft_resume_count(st), 1);
    assert_int_equal(wft_tcp_pending_in(env, 0), 0);
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-counter"), "42");
    /* The stream ends: its callout closes without a callback. */
    assert_int_equal(wft_complete(st, NULL), 0);
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_SCOPE_ENDED);
    assert_int_equal(wft_tcp_close_reason(env, 0), 0);
    assert_int_equal(wft_tcp_deliver(env, 0, ":1\r\n", 4), WFT_REJECTED);
    wft_stream_free(st);
    assert_int_equal(wft_stat(env, "opened"), 1);
    assert_int_equal(wft_stat(env, "replies"), 1);
    wft_env_free(env);
}

static void test_error_reply(void **state) {
    (void)state;
    wft_env *env = make_env("scope: stream\n");
    wft_stream *st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_connect(env, 0), 0);
    const char *e = "-ERR value is not an integer\r\n";
    assert_int_equal(wft_tcp_deliver(env, 0, e, strlen(e)), 0);
    int status = 0;
    const char *body = NULL, *reason = NULL;
    assert_true(wft_replied(st, &status, &body, &reason));
    assert_int_equal(status, 502);
    assert_string_equal(reason, "redis_error");
    assert_non_null(strstr(body, "not an integer"));
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_connect_failure_and_timeout(void **state) {
    (void)state;
    wft_env *env = make_env("scope: stream\nconnect_timeout: 100ms\ntimeout: 10s\n");
    /* Refused: on_close(CONNECT_FAILURE), 503. */
    wft_stream *st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_end(env, 0, WEFT_TCP_CLOSE_PEER), WFT_REJECTED); /* connecting */
    assert_int_equal(wft_tcp_end(env, 0, WEFT_TCP_CLOSE_CONNECT_FAILURE), 0);
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_ENDED);
    assert_int_equal(wft_tcp_close_reason(env, 0), WEFT_TCP_CLOSE_CONNECT_FAILURE);
    int status = 0;
    const char *body = NULL;
    assert_true(wft_replied(st, &status, &body, NULL));
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "connect_failure"));
    wft_stream_free(st);
    /* Never answers: 2 attempts (the default) x 100 ms on the kit clock. */
    st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    wft_clock_advance(env, 199);
    assert_int_equal(wft_tcp_state(env, 1), WFT_TCP_CONNECTING);
    assert_false(wft_replied(st, NULL, NULL, NULL));
    wft_clock_advance(env, 1);
    assert_int_equal(wft_tcp_state(env, 1), WFT_TCP_ENDED);
    assert_int_equal(wft_tcp_close_reason(env, 1), WEFT_TCP_CLOSE_CONNECT_TIMEOUT);
    assert_true(wft_replied(st, &status, &body, NULL));
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "connect_timeout"));
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_peer_close_and_protocol_error(void **state) {
    (void)state;
    wft_env *env = make_env("scope: stream\n");
    wft_stream *st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_connect(env, 0), 0);
    assert_int_equal(wft_tcp_end(env, 0, WEFT_TCP_CLOSE_CONNECT_FAILURE), WFT_REJECTED);
    assert_int_equal(wft_tcp_end(env, 0, WEFT_TCP_CLOSE_PEER), 0);
    int status = 0;
    const char *body = NULL;
    assert_true(wft_replied(st, &status, &body, NULL));
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "peer"));
    wft_stream_free(st);
    /* A reply type INCR never gives: the filter closes the connection. */
    st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_connect(env, 1), 0);
    assert_int_equal(wft_tcp_deliver(env, 1, "+OK\r\n", 5), 0);
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 502);
    /* Stream scope: the filter leaves the connection to the stream's end. */
    assert_int_equal(wft_tcp_state(env, 1), WFT_TCP_CONNECTED);
    wft_stream_free(st);
    assert_int_equal(wft_tcp_state(env, 1), WFT_TCP_SCOPE_ENDED);
    wft_env_free(env);
}

static void test_timeouts_on_kit_clock(void **state) {
    (void)state;
    /* Idle timeout 1 s: bytes either way restart it. */
    wft_env *env = make_env("scope: stream\ntimeout: 5s\nidle_timeout: 1s\n");
    wft_stream *st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_connect(env, 0), 0);
    wft_clock_advance(env, 900);
    assert_int_equal(wft_tcp_deliver(env, 0, ":", 1), 0); /* partial, restarts it */
    wft_clock_advance(env, 999);
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_CONNECTED);
    wft_clock_advance(env, 1);
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_ENDED);
    assert_int_equal(wft_tcp_close_reason(env, 0), WEFT_TCP_CLOSE_IDLE_TIMEOUT);
    int status = 0;
    const char *body = NULL;
    assert_true(wft_replied(st, &status, &body, NULL));
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "idle_timeout"));
    wft_stream_free(st);
    /* No idle timeout: only the filter's own reply timer (504) ends it. */
    assert_int_equal(wft_env_configure(env, "scope: stream\ntimeout: 5s\n", err, sizeof(err)), 0);
    st = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_connect(env, 1), 0);
    wft_clock_advance(env, 4999);
    assert_int_equal(wft_tcp_state(env, 1), WFT_TCP_CONNECTED);
    wft_clock_advance(env, 1);
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 504);
    wft_stream_free(st);
    assert_int_equal(wft_tcp_state(env, 1), WFT_TCP_SCOPE_ENDED);
    wft_env_free(env);
}

/* scope: worker: one connection for every stream, commands pipelined,
 * replies matched in order (two in one delivery), a stream gone while
 * waiting keeps its place; closed before worker_destroy. */
static void test_worker_scope_pipelining(void **state) {
    (void)state;
    wft_env *env = make_env("scope: worker\n");
    wft_stream *a = wft_stream_new(env, "GET", "/", key_hdr);
    wft_stream *b = wft_stream_new(env, "GET", "/", key_hdr);
    wft_stream *c = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(a, true), WEFT_STOP);
    assert_int_equal(wft_request_headers(b, true), WEFT_STOP);
    assert_int_equal(wft_request_headers(c, true), WEFT_STOP);
    assert_int_equal(wft_tcp_count(env), 1); /* one connection, three commands */
    expect_written(env, 0,
                   "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
                   "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n");
    assert_int_equal(wft_tcp_connect(env, 0), 0);
    wft_stream_free(b); /* gone while waiting: its reply is still consumed */
    assert_int_equal(wft_tcp_deliver(env, 0, ":1\r\n:2\r\n:3", 10), 0);
    assert_false(wft_paused(a));
    assert_true(wft_paused(c));
    assert_int_equal(wft_tcp_deliver(env, 0, "\r\n", 2), 0);
    assert_false(wft_paused(c));
    assert_int_equal(wft_response_headers(a, 200, NULL, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(c, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(a, WEFT_RESPONSE_HEADERS, "x-counter"), "1");
    assert_string_equal(wft_header(c, WEFT_RESPONSE_HEADERS, "x-counter"), "3");
    wft_stream_free(a);
    wft_stream_free(c);
    /* The streams ended; the worker's connection stays for the next. */
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_CONNECTED);
    wft_stream *d = wft_stream_new(env, "GET", "/", key_hdr);
    assert_int_equal(wft_request_headers(d, true), WEFT_STOP);
    assert_int_equal(wft_tcp_count(env), 1);
    assert_int_equal(wft_tcp_deliver(env, 0, ":4\r\n", 4), 0);
    assert_int_equal(wft_response_headers(d, 200, NULL, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(d, WEFT_RESPONSE_HEADERS, "x-counter"), "4");
    wft_stream_free(d);
    assert_int_equal(wft_stat(env, "opened"), 1);
    /* Reconfiguring retires the worker object: closed without callback. */
    assert_int_equal(wft_env_configure(env, "scope: worker\n", err, sizeof(err)), 0);
    assert_int_equal(wft_tcp_state(env, 0), WFT_TCP_SCOPE_ENDED);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_in_pieces),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_connect_failure_and_timeout),
        cmocka_unit_test(test_peer_close_and_protocol_error),
        cmocka_unit_test(test_timeouts_on_kit_clock),
        cmocka_unit_test(test_worker_scope_pipelining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
