/* test_stream_upstream.c: the stream pipeline with an upstream: attempts
 * start and end exactly once (the cluster's lb has nothing in flight after
 * every exchange), retries asked from a response-header hook, from the
 * attempt hook and from a timer after STOP on the response headers reach a
 * second attempt with the response direction reset, failed connects are
 * retried on another endpoint and counted, upstream errors and timeouts
 * become the right local replies, an endpoint-set change mid-stream keeps
 * the in-flight attempt's endpoint valid (run under ASan), and the client
 * leaving mid-exchange releases the upstream. The upstreams are sockets
 * the test owns (stream_harness.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sys/socket.h>

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

/* The attempt had ended when the exchange was over for the codec, and
 * nothing is in flight on the cluster's current lb. */
static void assert_no_attempt_live(sh_ds *d) {
    assert_int_equal(d->dones, 1);
    assert_false(d->att_live_at_done);
    assert_int_equal(d->lb_active_at_done, 0);
    assert_int_equal(weft_lb_active(sh_lb(&H, 0), -1), 0);
}

static const char OK_SECOND[] = "HTTP/1.1 200 OK\r\nconnection: close\r\nx-attempt: 2\r\n"
                                "content-length: 6\r\n\r\nsecond";
static const char FIRST_503[] = "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n"
                                "x-attempt: 1\r\ntransfer-encoding: chunked\r\n"
                                "trailer: x-first\r\n\r\n5\r\nfirst\r\n0\r\nx-first: 1\r\n\r\n";

/* Upstream u takes the next connection and the request for `path`. */
static void up_takes(int u, const char *path) {
    char line[128];
    snprintf(line, sizeof(line), "GET %s HTTP/1.1\r\n", path);
    sh_up_accept(&H, u);
    sh_up_wait_for(&H, u, "\r\n\r\n");
    assert_non_null(strstr(sh_up_got(&H, u), line));
}

/* True once weft closed its side of upstream u's connection. */
static bool up_closed(void *arg) {
    int u = (int)(intptr_t)arg;
    char c;
    ssize_t r = recv(H.up[u].cfd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    return r == 0;
}

/* ---------- one exchange ---------- */

static void test_exchange_hook_order(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"}, f2 = {.name = "f2"};
    tf_script *fs[] = {&f1, &f2};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 2, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up/a", NULL);
    up_takes(u, "/up/a");
    assert_int_equal(weft_lb_active(sh_lb(&H, 0), -1), 1); /* one attempt in flight */
    sh_up_send(&H, u,
               "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n");
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 200);
    assert_string_equal(sh_ds_body(d), "hello");
    assert_true(d->trailers_sent);
    assert_string_equal(sh_ds_trailers(d), "x-t: 1\n");
    /* Request in list order, response in reverse, log phase in order; the
     * body of one upstream read reaches the body hooks with its end. */
    assert_string_equal(tf_log(),
                        "f1.req_headers:e f2.req_headers:e f1.attempt:0/200 "
                        "f2.attempt:0/200 f2.resp_headers:200 f1.resp_headers:200 "
                        "f2.resp_body:5e f1.resp_body:5e f2.resp_trailers f1.resp_trailers "
                        "f1.complete:200 f2.complete:200");
    assert_int_equal(f1.info.attempts, 1);
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

static void test_reply_on_response_headers(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"},
              f2 = {.name = "f2", .act[TF_RESP_HEADERS] = TF_REPLY, .reply_status = 502};
    tf_script *fs[] = {&f1, &f2};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 2, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_up_send(&H, u, "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nx-up: 1\r\n\r\nupstream");
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 502);
    assert_int_equal(d->heads, 1);
    assert_string_equal(sh_ds_body(d), "test_reply\n");
    assert_null(strstr(sh_ds_headers(d), "x-up"));
    /* f2's reply replaced the upstream's head: f1 (nearer the client) saw
     * only the reply, and f2 was not called again with it. */
    assert_int_equal(f1.calls[TF_RESP_HEADERS], 1);
    assert_int_equal(f2.calls[TF_RESP_HEADERS], 1);
    assert_int_equal(f1.calls[TF_RESP_BODY], 1);
    assert_int_equal(f2.calls[TF_RESP_BODY], 0);
    assert_no_attempt_live(d);
    /* The upstream connection, answered mid-response, is not pooled. */
    sh_run_until(&H, up_closed, (void *)(intptr_t)u, "the upstream connection to close");
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* ---------- retries ---------- */

/* The second attempt's answer, and nothing of the first's. */
static void assert_second_answer(sh_ds *d) {
    assert_int_equal(d->status, 200);
    assert_int_equal(d->heads, 1);
    assert_int_equal(d->ends, 1);
    assert_string_equal(sh_ds_body(d), "second");
    assert_false(d->trailers_sent);
    assert_non_null(strstr(sh_ds_headers(d), "x-attempt: 2\n"));
    assert_null(strstr(sh_ds_headers(d), "x-attempt: 1"));
}

static void test_retry_from_response_headers(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_HEADERS] = TF_RETRY, .times[TF_RESP_HEADERS] = 1};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_up_send(&H, u, FIRST_503);
    up_takes(u, "/up"); /* the retry: a new connection */
    assert_int_equal(f1.last_rc, WEFT_OK);
    assert_int_equal(weft_lb_active(sh_lb(&H, 0), -1), 1); /* the first attempt ended */
    sh_up_send(&H, u, OK_SECOND);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_string_equal(tf_log(), "f1.req_headers:e f1.attempt:0/503 f1.resp_headers:503 "
                                  "f1.attempt:0/200 f1.resp_headers:200 f1.resp_body:6e "
                                  "f1.complete:200");
    assert_int_equal(f1.n_attempts, 2);
    assert_int_equal(f1.attempts[0].attempt, 1);
    assert_int_equal(f1.attempts[1].attempt, 2);
    assert_int_equal(f1.info.attempts, 2);
    assert_int_equal(H.up[u].accepted, 2);
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

static void test_retry_from_attempt_hook(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_ATTEMPT] = TF_RETRY, .times[TF_ATTEMPT] = 1};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_up_send(&H, u, FIRST_503);
    up_takes(u, "/up");
    sh_up_send(&H, u, OK_SECOND);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    /* The first response never reached the response hooks. */
    assert_string_equal(tf_log(), "f1.req_headers:e f1.attempt:0/503 f1.attempt:0/200 "
                                  "f1.resp_headers:200 f1.resp_body:6e f1.complete:200");
    assert_int_equal(f1.info.attempts, 2);
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* STOP on the response headers, then a timer asks for the retry: the
 * retry runs from the stream's deferred event, and the paused first
 * response (its head, body and trailers) is forgotten. */
static void test_retry_from_timer_after_stop(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"}, f2 = {.name = "f2",
                                         .act[TF_RESP_HEADERS] = TF_STOP_RETRY,
                                         .times[TF_RESP_HEADERS] = 1,
                                         .timer_ms = 2};
    tf_script *fs[] = {&f1, &f2};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 2, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_up_send(&H, u, FIRST_503);
    up_takes(u, "/up");
    assert_int_equal(f2.timer_fires, 1);
    assert_int_equal(f2.last_rc, WEFT_OK);
    assert_int_equal(d->heads, 0);
    sh_up_send(&H, u, OK_SECOND);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_string_equal(tf_log(), "f1.req_headers:e f2.req_headers:e f1.attempt:0/503 "
                                  "f2.attempt:0/503 f2.resp_headers:503 f2.timer "
                                  "f1.attempt:0/200 f2.attempt:0/200 f2.resp_headers:200 "
                                  "f1.resp_headers:200 f2.resp_body:6e f1.resp_body:6e "
                                  "f1.complete:200 f2.complete:200");
    assert_int_equal(f1.info.attempts, 2);
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 2);
    sh_ds_free(d);
}

/* A POST is retried with its body when a filter kept it for replay. */
static void test_retry_replays_body(void **state) {
    (void)state;
    tf_script f1 = {
        .name = "f1", .replay_max = 1024, .act[TF_ATTEMPT] = TF_RETRY, .times[TF_ATTEMPT] = 1};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "POST", "/up", "payload");
    sh_up_accept(&H, u);
    sh_up_wait_for(&H, u, "\r\n\r\npayload");
    sh_up_send(&H, u, FIRST_503);
    sh_up_accept(&H, u);
    sh_up_wait_for(&H, u, "\r\n\r\npayload");
    assert_non_null(strstr(sh_up_got(&H, u), "POST /up HTTP/1.1\r\n"));
    sh_up_send(&H, u, OK_SECOND);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_no_attempt_live(d);
    sh_ds_free(d);
}

/* The same with a body a filter held whole (many buffer segments) before
 * passing it on. */
static void test_retry_replays_held_body(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1",
                    .replay_max = 1024,
                    .act[TF_REQ_BODY] = TF_STOP_TO_END,
                    .act[TF_ATTEMPT] = TF_RETRY,
                    .times[TF_ATTEMPT] = 1};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    char body[256] = "";
    sh_req(d, "POST", "/up");
    sh_req_head(d, 20 * 10);
    for (int i = 0; i < 20; i++) {
        char piece[11];
        snprintf(piece, sizeof(piece), "piece-%03d|", i);
        strcat(body, piece);
        sh_req_body(d, piece);
    }
    sh_req_end(d);
    char want[300];
    snprintf(want, sizeof(want), "\r\n\r\n%s", body);
    sh_up_accept(&H, u);
    sh_up_wait_for(&H, u, want);
    sh_up_send(&H, u, FIRST_503);
    sh_up_accept(&H, u);
    sh_up_wait_for(&H, u, want);
    sh_up_send(&H, u, OK_SECOND);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_no_attempt_live(d);
    sh_ds_free(d);
}

/* ---------- connect failures, errors, timeouts ---------- */

static void test_connect_failure_retried_on_other_endpoint(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    int ups[2] = {sh_up_new(&H, false), sh_up_new(&H, true)}; /* 0 refuses */
    st_start(&H, fs, 1, "", "connect_attempts: 2", ups, 2);
    weft_cluster_snap *c = &H.snap->clusters[0];
    uint64_t fail0 = sh_counter(&H, c->cx_connect_fail);
    uint64_t retry0 = sh_counter(&H, c->rq_retry_connect);
    sh_ds *d = sh_ds_new(&H);
    /* Round robin tries the refusing endpoint in one of two requests;
     * that request goes on to the other endpoint. */
    uint32_t attempts = 0;
    for (int i = 0; i < 2; i++) {
        sh_request(d, "GET", "/up", NULL);
        up_takes(ups[1], "/up");
        sh_up_send(&H, ups[1], OK_SECOND);
        sh_run_to_end(&H, d);
        assert_int_equal(d->status, 200);
        assert_string_equal(sh_ds_body(d), "second");
        attempts += f1.info.attempts;
        assert_no_attempt_live(d);
    }
    assert_int_equal(attempts, 3);
    assert_int_equal(sh_counter(&H, c->cx_connect_fail) - fail0, 1);
    assert_int_equal(sh_counter(&H, c->rq_retry_connect) - retry0, 1);
    assert_int_equal(H.up[ups[1]].accepted, 2);
    /* A connect failure is not shown to filters as an attempt: each
     * request shows one, the successful one. */
    assert_int_equal(f1.n_attempts, 2);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

static void test_connect_failure_answered_503(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, false);
    st_start(&H, fs, 1, "", "connect_attempts: 2", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_run_to_end(&H, d);
    assert_int_equal(d->status, 503);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: upstream_connect_failure\n"));
    assert_int_equal(f1.n_attempts, 1);
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_CONNECT_FAILURE);
    assert_string_equal(f1.info_flags, "UF");
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

static void test_upstream_reset_before_response(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    weft_cluster_snap *c = &H.snap->clusters[0];
    uint64_t rr0 = sh_counter(&H, c->rq_retry_reset);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_up_close(&H, u);
    /* An idempotent bodiless request is sent once more (the only endpoint
     * again); the second reset is answered. */
    up_takes(u, "/up");
    sh_up_close(&H, u);
    sh_run_to_end(&H, d);
    assert_int_equal(sh_counter(&H, c->rq_retry_reset) - rr0, 1);
    assert_int_equal(d->status, 503);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: upstream_reset_before_response\n"));
    assert_int_equal(f1.n_attempts, 1); /* the core's own retry is not shown to filters */
    assert_int_equal(f1.info.attempts, 2);
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_RESET);
    assert_string_equal(f1.info_flags, "UC");
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

static void test_route_timeout(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/slow", NULL);
    up_takes(u, "/slow");
    sh_run_to_end(&H, d); /* 150 ms */
    assert_int_equal(d->status, 504);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: upstream_response_timeout\n"));
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_TIMEOUT);
    assert_string_equal(f1.info_flags, "UT");
    assert_no_attempt_live(d);
    sh_run_until(&H, up_closed, (void *)(intptr_t)u, "the timed-out connection to close");
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

static void test_route_timeout_retried(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_ATTEMPT] = TF_RETRY, .times[TF_ATTEMPT] = 1};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/slow", NULL);
    up_takes(u, "/slow");
    up_takes(u, "/slow"); /* after 150 ms, the retry */
    sh_up_send(&H, u, OK_SECOND);
    sh_run_to_end(&H, d);
    assert_second_answer(d);
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_TIMEOUT);
    assert_int_equal(f1.attempts[1].result, WEFT_ATTEMPT_RESPONSE);
    assert_int_equal(f1.info.attempts, 2);
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* ---------- endpoint set change mid-stream ---------- */

static void test_hostset_change_mid_stream(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    int ups[2] = {sh_up_new(&H, true), sh_up_new(&H, true)};
    st_start(&H, fs, 1, "", "", ups, 1); /* c0 = {up0} */
    char name0[64], name1[64];
    snprintf(name0, sizeof(name0), "127.0.0.1:%u", H.up[ups[0]].port);
    snprintf(name1, sizeof(name1), "127.0.0.1:%u", H.up[ups[1]].port);

    sh_ds *a = sh_ds_new(&H);
    sh_request(a, "GET", "/up/a", NULL);
    up_takes(ups[0], "/up/a");
    weft_lb *old = weft_lb_ref(sh_lb(&H, 0));
    assert_int_equal(weft_lb_active(old, -1), 1);

    /* The endpoints become {up1}; the old hostset's last holder is now
     * the in-flight attempt. */
    uint16_t p1 = H.up[ups[1]].port;
    sh_publish(&H, 0, &p1, 1);
    sh_ds *b = sh_ds_new(&H);
    sh_request(b, "GET", "/up/b", NULL);
    up_takes(ups[1], "/up/b");
    weft_lb *cur = sh_lb(&H, 0);
    assert_ptr_not_equal(cur, old);
    sh_up_send(&H, ups[1], OK_SECOND);
    sh_run_to_end(&H, b);
    assert_int_equal(b->status, 200);
    assert_false(b->att_live_at_done);
    assert_int_equal(b->lb_active_at_done, 0);
    assert_string_equal(f1.info_host, name1);
    assert_int_equal(weft_lb_active(cur, -1), 0);

    /* The old attempt finishes on its own endpoint and lb. */
    weft_lb_unref(old); /* only the attempt keeps it now */
    sh_up_send(&H, ups[0], "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nA");
    sh_run_to_end(&H, a);
    assert_int_equal(a->status, 200);
    assert_string_equal(sh_ds_body(a), "A");
    assert_false(a->att_live_at_done);
    assert_int_equal(a->lb_active_at_done, 0);       /* on the old lb */
    assert_string_equal(f1.info_host, name0);        /* att.ep read in the log phase */
    assert_string_equal(f1.attempt_hosts[0], name1); /* b answered first */
    assert_string_equal(f1.attempt_hosts[1], name0);
    assert_int_equal(weft_lb_active(sh_lb(&H, 0), -1), 0);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(a);
    sh_ds_free(b);
}

/* ---------- the client leaves ---------- */

static void test_client_reset_with_upstream_in_flight(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1"};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_ds_client_reset(d);
    sh_run_to_end(&H, d);
    assert_int_equal(d->heads, 0);
    assert_string_equal(f1.info_flags, "DC");
    assert_no_attempt_live(d);
    sh_run_until(&H, up_closed, (void *)(intptr_t)u, "the upstream connection to close");
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* The client leaves while a filter holds the response head with a timer
 * armed: the upstream is released, the timer never fires. */
static void test_client_reset_while_response_paused(void **state) {
    (void)state;
    /* The timer is long enough that the client's reset always comes first
     * (a loaded sanitizer build may take tens of ms per loop turn), and
     * the loop then runs past it to show it was cancelled. */
    tf_script f1 = {.name = "f1", .act[TF_RESP_HEADERS] = TF_STOP_RESUME, .timer_ms = 400};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_up_send(&H, u, OK_SECOND);
    for (int i = 0; i < 2000 && !f1.calls[TF_RESP_HEADERS]; i++)
        sh_run_for(&H, 1);
    assert_int_equal(f1.calls[TF_RESP_HEADERS], 1);
    sh_ds_client_reset(d);
    sh_run_to_end(&H, d);
    sh_run_for(&H, 500);
    assert_int_equal(f1.timer_fires, 0);
    assert_int_equal(d->heads, 0);
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

/* ---------- response-side limit ---------- */

static void test_filter_buffer_limit_response(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .act[TF_RESP_BODY] = TF_STOP_TO_END};
    tf_script *fs[] = {&f1};
    int u = sh_up_new(&H, true);
    st_start(&H, fs, 1, "buffer_high_watermark: 16", "", &u, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    up_takes(u, "/up");
    sh_up_send(&H, u, "HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n0123456789");
    sh_run_for(&H, 20);
    sh_up_send(&H, u, "0123456789");
    sh_run_to_end(&H, d);
    /* The head went out before the body hooks: the only signal left is a
     * reset. */
    assert_int_equal(d->heads, 1);
    assert_int_equal(d->resets, 1);
    assert_string_equal(sh_ds_body(d), "");
    assert_non_null(strstr(f1.info_flags, "LR"));
    assert_no_attempt_live(d);
    sh_assert_filters_released(fs, 1);
    sh_ds_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exchange_hook_order, teardown),
        cmocka_unit_test_teardown(test_reply_on_response_headers, teardown),
        cmocka_unit_test_teardown(test_retry_from_response_headers, teardown),
        cmocka_unit_test_teardown(test_retry_from_attempt_hook, teardown),
        cmocka_unit_test_teardown(test_retry_from_timer_after_stop, teardown),
        cmocka_unit_test_teardown(test_retry_replays_body, teardown),
        cmocka_unit_test_teardown(test_retry_replays_held_body, teardown),
        cmocka_unit_test_teardown(test_connect_failure_retried_on_other_endpoint, teardown),
        cmocka_unit_test_teardown(test_connect_failure_answered_503, teardown),
        cmocka_unit_test_teardown(test_upstream_reset_before_response, teardown),
        cmocka_unit_test_teardown(test_route_timeout, teardown),
        cmocka_unit_test_teardown(test_route_timeout_retried, teardown),
        cmocka_unit_test_teardown(test_hostset_change_mid_stream, teardown),
        cmocka_unit_test_teardown(test_client_reset_with_upstream_in_flight, teardown),
        cmocka_unit_test_teardown(test_client_reset_while_response_paused, teardown),
        cmocka_unit_test_teardown(test_filter_buffer_limit_response, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
