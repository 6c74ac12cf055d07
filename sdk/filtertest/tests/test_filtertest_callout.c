/* test_filtertest_callout: the kit mirrors SDK 1.1's HTTP callouts with
 * weft's semantics, driven through the copool test filter
 * (tests/filters/copool.c, linked in; weft runs the same filter in
 * integration/test_callout_pool): weft_callout_start2 answered by the test
 * (method, path, body, authority as "host"), the response body limit (per
 * request and the env's default) and the 5 s default timeout, a request
 * body moved out of the filter's buffer; detached callouts (the stream
 * goes on and may complete first, the test answers or fails them, sent and
 * failed counts, the worker's cap, not the stream's); worker-scoped
 * callouts from a worker timer (callback with the worker handle, outside
 * any stream; cancelled without a callback before worker_destroy) and
 * weft_worker_callout_cancel; the per-worker cap shared with TCP callouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filtertest.h>

const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);

static char err[512];

static wft_env *make_env(const char *yaml) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    assert_int_equal(wft_env_add_cluster(env, "be"), 0);
    assert_int_equal(wft_env_add_cluster(env, "mirror"), 0);
    if (wft_env_configure(env, yaml, err, sizeof(err)))
        fail_msg("%s", err);
    return env;
}

#define CFG "cluster: be\nmirror_cluster: mirror\n"

static const char *resp(wft_stream *st, const char *name) {
    const char *v = wft_header(st, WEFT_RESPONSE_HEADERS, name);
    return v ? v : "(none)";
}

/* A stream whose request headers (x-co: mode, then extra lines) reach
 * the filter; returns what the hook returned through *rs. */
static wft_stream *co_stream(wft_env *env, const char *const *hdrs, int *rs) {
    wft_stream *st = wft_stream_new(env, "GET", "/", hdrs);
    assert_non_null(st);
    *rs = wft_request_headers(st, true);
    return st;
}

static void test_stream_callout_answered(void **state) {
    (void)state;
    wft_env *env = make_env(CFG);
    int rs;
    wft_stream *st =
        co_stream(env,
                  (const char *[]){"host: a", "x-co: one", "x-co-path: /p?q=1", "x-co-body: hello",
                                   "x-co-authority: auth.example", NULL},
                  &rs);
    assert_int_equal(rs, WEFT_STOP);
    assert_int_equal(wft_callout_pending(st), 1);
    assert_int_equal(wft_env_callout_pending(env), 0); /* the stream's */
    const char *cluster, *method, *path, *body;
    uint64_t timeout = 9;
    assert_true(wft_callout_request(st, 0, &cluster, &method, &path, &body, &timeout));
    assert_string_equal(cluster, "be");
    assert_string_equal(method, "POST");
    assert_string_equal(path, "/p?q=1");
    assert_string_equal(body, "hello");
    assert_int_equal(timeout, 0);
    assert_string_equal(wft_callout_header(st, 0, "host"), "auth.example");
    assert_int_equal(
        wft_callout_respond(st, 0, 200, (const char *[]){"x-h-a: 1", "x-conn-seq: 7", NULL}, "abc"),
        0);
    int status = 0;
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 200);
    assert_string_equal(resp(st, "x-co-status"), "200");
    assert_string_equal(resp(st, "x-co-reason"), "");
    assert_string_equal(resp(st, "x-co-nh"), "2");
    assert_string_equal(resp(st, "x-co-body-len"), "3");
    assert_string_equal(resp(st, "x-co-conn"), "7");
    assert_string_equal(resp(st, "x-co-last"), "x-h-a");
    wft_stream_free(st);
    /* Without an authority: the cluster's name. */
    st = co_stream(env, (const char *[]){"host: a", "x-co: one", NULL}, &rs);
    assert_string_equal(wft_callout_header(st, 0, "host"), "be");
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_body_limit_and_timeout(void **state) {
    (void)state;
    wft_env *env = make_env(CFG);
    int rs;
    /* The request's own limit: 2 bytes. */
    wft_stream *st =
        co_stream(env, (const char *[]){"host: a", "x-co: one", "x-co-max-body: 2", NULL}, &rs);
    assert_int_equal(wft_callout_respond(st, 0, 200, NULL, "abc"), 0);
    assert_string_equal(resp(st, "x-co-status"), "0");
    assert_string_equal(resp(st, "x-co-reason"), "body_too_large");
    assert_string_equal(resp(st, "x-co-body-len"), "0");
    wft_stream_free(st);
    /* The env's default (callouts.max_response_body): 4 bytes. */
    assert_int_equal(wft_env_set_callout_limits(env, 0, 4), 0);
    st = co_stream(env, (const char *[]){"host: a", "x-co: one", NULL}, &rs);
    assert_int_equal(wft_callout_respond(st, 0, 200, NULL, "hello"), 0);
    assert_string_equal(resp(st, "x-co-reason"), "body_too_large");
    wft_stream_free(st);
    st = co_stream(env, (const char *[]){"host: a", "x-co: one", NULL}, &rs);
    assert_int_equal(wft_callout_respond(st, 0, 200, NULL, "abcd"), 0);
    assert_string_equal(resp(st, "x-co-status"), "200");
    assert_string_equal(resp(st, "x-co-body-len"), "4");
    wft_stream_free(st);
    /* timeout_ms 0 is 5 s on the kit clock; a set one is its own. */
    st = co_stream(env, (const char *[]){"host: a", "x-co: one", NULL}, &rs);
    wft_clock_advance(env, 4999);
    assert_int_equal(wft_callout_pending(st), 1);
    wft_clock_advance(env, 1);
    assert_int_equal(wft_callout_pending(st), 0);
    assert_string_equal(resp(st, "x-co-reason"), "timeout");
    wft_stream_free(st);
    st = co_stream(env, (const char *[]){"host: a", "x-co: one", "x-co-timeout: 100", NULL}, &rs);
    wft_clock_advance(env, 100);
    assert_string_equal(resp(st, "x-co-reason"), "timeout");
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_body_buffer_moved(void **state) {
    (void)state;
    wft_env *env = make_env(CFG);
    wft_stream *st =
        wft_stream_new(env, "POST", "/",
                       (const char *[]){"host: a", "x-co: echo-body", "content-length: 10", NULL});
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_body(st, "part1", 5, false), WEFT_CONTINUE);
    assert_int_equal(wft_callout_pending(st), 0);
    assert_int_equal(wft_request_body(st, "part2", 5, true), WEFT_STOP);
    assert_int_equal(wft_callout_pending(st), 1);
    const char *path, *body;
    assert_true(wft_callout_request(st, 0, NULL, NULL, &path, &body, NULL));
    assert_string_equal(path, "/echo");
    assert_string_equal(body, "part1part2");
    assert_int_equal(wft_callout_respond(st, 0, 200, NULL, "part1part2"), 0);
    assert_string_equal(resp(st, "x-co-left"), "0"); /* moved out of the filter's buffer */
    assert_string_equal(resp(st, "x-co-body-len"), "10");
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_detached(void **state) {
    (void)state;
    wft_env *env = make_env(CFG);
    int rs;
    /* A mirror: the request goes on at once, the callout is the env's. */
    wft_stream *st =
        co_stream(env, (const char *[]){"host: a", "x-co: mirror", "x-co-path: /m", NULL}, &rs);
    assert_int_equal(rs, WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-co-mirror"), "0");
    assert_int_equal(wft_callout_pending(st), 0);
    assert_int_equal(wft_env_callout_pending(env), 1);
    assert_true(wft_env_callout_detached(env, 0));
    const char *cluster, *path;
    assert_true(wft_env_callout_request(env, 0, &cluster, NULL, &path, NULL, NULL));
    assert_string_equal(cluster, "mirror");
    assert_string_equal(path, "/m");
    assert_int_equal(wft_callout_detached_sent(env, "mirror"), 1);
    /* The stream completes first; the mirror is still in flight. */
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_int_equal(wft_complete(st, NULL), 0);
    wft_stream_free(st);
    assert_int_equal(wft_env_callout_pending(env), 1);
    /* A 5xx counts as failed; a 2xx does not; a failure (drop) does. */
    assert_int_equal(wft_env_callout_respond(env, 0, 503, NULL, "no"), 0);
    assert_int_equal(wft_callout_detached_failed(env, "mirror"), 1);
    assert_int_equal(wft_env_callout_pending(env), 0);
    assert_int_equal(wft_env_callout_respond(env, 0, 200, NULL, ""), WFT_REJECTED);
    /* A burst of 10: the stream's cap (8) does not apply to detached ones;
     * the worker's (3 here) does, HTTP and TCP callouts together. */
    st = co_stream(env, (const char *[]){"host: a", "x-co: burst 10", NULL}, &rs);
    assert_int_equal(rs, WEFT_REPLIED);
    assert_string_equal(resp(st, "x-co-ok"), "10");
    assert_string_equal(resp(st, "x-co-limit"), "0");
    wft_stream_free(st);
    assert_int_equal(wft_env_callout_pending(env), 10);
    assert_int_equal(wft_callout_detached_sent(env, "mirror"), 11);
    for (int i = 0; i < 10; i++)
        assert_int_equal(i < 5 ? wft_env_callout_respond(env, 0, 200, NULL, "")
                               : wft_env_callout_fail(env, 0, "timeout"),
                         0);
    assert_int_equal(wft_callout_detached_failed(env, "mirror"), 6);
    assert_int_equal(wft_env_set_callout_limits(env, 3, 0), 0);
    st = co_stream(env, (const char *[]){"host: a", "x-co: burst 5", NULL}, &rs);
    assert_string_equal(resp(st, "x-co-ok"), "3");
    assert_string_equal(resp(st, "x-co-limit"), "2");
    wft_stream_free(st);
    /* A detached callout that is never answered fails at its timeout. */
    wft_clock_advance(env, 5000);
    assert_int_equal(wft_env_callout_pending(env), 0);
    assert_int_equal(wft_callout_detached_failed(env, "mirror"), 9);
    assert_int_equal(wft_callout_detached_sent(env, "be"), 0);
    wft_env_free(env);
}

/* The filter's worker-scope counts for `tag` (its "wstat" reply line, up
 * to the counts of its "multi" mode, which these tests do not use). */
static const char *wstat(wft_env *env, int tag, char *buf, size_t len) {
    int rs;
    wft_stream *st = co_stream(env, (const char *[]){"host: a", "x-co: wstat", NULL}, &rs);
    const char *body = NULL;
    assert_true(wft_replied(st, NULL, &body, NULL));
    char want[16];
    snprintf(want, sizeof(want), "tag=%d ", tag);
    const char *line = body ? strstr(body, want) : NULL;
    assert_non_null(line);
    snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
    char *multi = strstr(buf, " mstarted=");
    if (multi)
        *multi = '\0';
    wft_stream_free(st);
    return buf;
}

static int cancelled_cb_runs;
static void never(weft_worker *w, void *arg, const weft_callout_response *r) {
    (void)w;
    (void)arg;
    (void)r;
    cancelled_cb_runs++;
}

static void test_worker_scope(void **state) {
    (void)state;
    char b[160];
    wft_env *env = make_env(CFG "tag: 2\nworker_path: /w\nworker_period_ms: 50\n");
    /* worker_create armed a timer (0 ms): its callback starts a worker
     * callout, which the test answers; the callback has the worker. */
    assert_int_equal(wft_env_callout_pending(env), 0);
    wft_clock_advance(env, 0);
    assert_int_equal(wft_env_callout_pending(env), 1);
    assert_false(wft_env_callout_detached(env, 0));
    const char *path;
    assert_true(wft_env_callout_request(env, 0, NULL, NULL, &path, NULL, NULL));
    assert_string_equal(path, "/w");
    assert_int_equal(wft_env_callout_respond(env, 0, 200, NULL, "ok"), 0);
    assert_string_equal(wstat(env, 2, b, sizeof(b)),
                        "tag=2 started=1 done=1 ok=1 bad=0 destroyed=0");
    /* The next one 50 ms later; it fails (timeout after 5 s). */
    wft_clock_advance(env, 50);
    assert_int_equal(wft_env_callout_pending(env), 1);
    wft_clock_advance(env, 5000);
    assert_string_equal(wstat(env, 2, b, sizeof(b)),
                        "tag=2 started=2 done=2 ok=1 bad=0 destroyed=0");
    /* weft_worker_callout_cancel: no callback; a second cancel, a callout
     * that is not the worker's, a bad handle. */
    weft_worker *w = wft_env_worker(env);
    assert_non_null(w);
    weft_callout_request req = {.size = sizeof(req),
                                .cluster = WEFT_STR("be"),
                                .method = WEFT_STR("GET"),
                                .path = WEFT_STR("/c")};
    weft_callout *co = NULL;
    assert_int_equal(weft_worker_callout_start(w, &req, never, NULL, &co), WEFT_OK);
    assert_non_null(co);
    assert_int_equal(weft_worker_callout_cancel(w, co), WEFT_OK);
    assert_int_equal(weft_worker_callout_cancel(w, co), WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_worker_callout_cancel(w, NULL), WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_worker_callout_cancel(NULL, co), WEFT_ERR_HANDLE);
    req.flags = WEFT_CALLOUT_DETACHED;
    co = (weft_callout *)&req;
    assert_int_equal(weft_worker_callout_start(w, &req, NULL, NULL, &co), WEFT_OK);
    assert_null(co); /* detached: no handle */
    assert_int_equal(weft_worker_callout_start(w, &req, never, NULL, &co), WEFT_ERR_INVALID);
    req.flags = 0;
    assert_int_equal(weft_worker_callout_start(w, &req, NULL, NULL, &co), WEFT_ERR_INVALID);
    req.cluster = WEFT_STR("nope");
    assert_int_equal(weft_worker_callout_start(w, &req, never, NULL, &co), WEFT_ERR_NOT_FOUND);
    /* Reconfigure (weft's reload): the pending worker callout is cancelled
     * before worker_destroy (no callback), where a start is STATE. */
    wft_clock_advance(env, 50);
    assert_int_equal(wft_env_callout_pending(env), 2); /* the timer's + the detached one */
    if (wft_env_configure(env, CFG "tag: 3\n", err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(wft_env_callout_pending(env), 1); /* the detached one stays */
    assert_true(wft_env_callout_detached(env, 0));
    assert_string_equal(wstat(env, 2, b, sizeof(b)),
                        "tag=2 started=3 done=2 ok=1 bad=0 destroyed=1");
    assert_int_equal(weft_worker_callout_cancel(w, co), WEFT_ERR_HANDLE); /* the old worker */
    assert_int_equal(cancelled_cb_runs, 0);
    wft_env_free(env);
}

static void no_data(weft_tcp_callout *c, void *arg, weft_buffer *data) {
    (void)c;
    (void)arg;
    (void)data;
}

static void test_worker_cap_with_tcp(void **state) {
    (void)state;
    wft_env *env = make_env(CFG);
    assert_int_equal(wft_env_set_callout_limits(env, 2, 0), 0);
    weft_worker *w = wft_env_worker(env);
    weft_callout_request req = {.size = sizeof(req),
                                .cluster = WEFT_STR("be"),
                                .method = WEFT_STR("GET"),
                                .path = WEFT_STR("/"),
                                .flags = WEFT_CALLOUT_DETACHED};
    assert_int_equal(weft_worker_callout_start(w, &req, NULL, NULL, NULL), WEFT_OK);
    static const weft_tcp_callout_cbs cbs = {sizeof(weft_tcp_callout_cbs), NULL, no_data, NULL};
    weft_tcp_callout *t = NULL;
    assert_int_equal(weft_worker_tcp_callout_open(w, WEFT_STR("be"), NULL, &cbs, NULL, &t),
                     WEFT_OK);
    assert_int_equal(weft_worker_callout_start(w, &req, NULL, NULL, NULL), WEFT_ERR_LIMIT);
    weft_tcp_callout *t2 = NULL;
    assert_int_equal(weft_worker_tcp_callout_open(w, WEFT_STR("be"), NULL, &cbs, NULL, &t2),
                     WEFT_ERR_LIMIT);
    /* A closed TCP callout frees its place. */
    assert_int_equal(weft_tcp_callout_close(t, false), WEFT_OK);
    assert_int_equal(weft_worker_callout_start(w, &req, NULL, NULL, NULL), WEFT_OK);
    wft_env_free(env);
}

/* ---- a filter that opens callouts from worker_destroy ---- */

static weft_result destroy_rc[2];

static int wd_config(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    (void)node;
    (void)setup;
    static int cfg;
    *config = &cfg;
    return 0;
}
static void *wd_worker_create(void *config) {
    return weft_worker_current(config);
}
static void wd_worker_destroy(void *config, void *worker) {
    (void)config;
    static const weft_tcp_callout_cbs cbs = {sizeof(weft_tcp_callout_cbs), NULL, no_data, NULL};
    weft_callout_request req = {.size = sizeof(req),
                                .cluster = WEFT_STR("be"),
                                .method = WEFT_STR("GET"),
                                .path = WEFT_STR("/"),
                                .flags = WEFT_CALLOUT_DETACHED};
    weft_tcp_callout *t = NULL;
    destroy_rc[0] = weft_worker_tcp_callout_open(worker, WEFT_STR("be"), NULL, &cbs, NULL, &t);
    destroy_rc[1] = weft_worker_callout_start(worker, &req, NULL, NULL, NULL);
}
static const weft_http_filter_ops wd_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = wd_config,
    .worker_create = wd_worker_create,
    .worker_destroy = wd_worker_destroy,
};
static const weft_filter_descriptor wd_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("wd", WEFT_FILTER_HTTP),
    .http = &wd_ops,
};
static const weft_filter_descriptor *wd_entry(const weft_host_api *host) {
    weft__host = host;
    return &wd_desc;
}

/* As weft: from worker_destroy, a worker-scoped open (HTTP or TCP) is
 * WEFT_ERR_STATE; the handle is stale afterwards. */
static void test_worker_destroy_refuses(void **state) {
    (void)state;
    wft_env *env = wft_env_new(wd_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    weft_worker *w = wft_env_worker(env);
    assert_non_null(w);
    wft_env_free(env);
    assert_int_equal(destroy_rc[0], WEFT_ERR_STATE);
    assert_int_equal(destroy_rc[1], WEFT_ERR_STATE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_callout_answered),
        cmocka_unit_test(test_body_limit_and_timeout),
        cmocka_unit_test(test_body_buffer_moved),
        cmocka_unit_test(test_detached),
        cmocka_unit_test(test_worker_scope),
        cmocka_unit_test(test_worker_cap_with_tcp),
        cmocka_unit_test(test_worker_destroy_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
