/* test_filtertest: the test kit driving its example filters (hdrauth,
 * linked in; gate, dlopened) and small filters defined here (probe, whose
 * hooks each test programs; a transport filter; bad descriptors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include <weft/filtertest.h>

/* hdrauth's entry point (examples/hdrauth.c, WEFT_FILTER_DEFINE). */
const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);

static char err[512];

#define HDRS(...) ((const char *const[]){__VA_ARGS__, NULL})

static wft_env *hdrauth_env(const char *yaml) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, yaml, err, sizeof(err)), 0);
    return env;
}

static wft_env *gate_env(const char *yaml) {
    wft_env *env = wft_env_load(WFT_GATE_SO, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    if (wft_env_configure(env, yaml, err, sizeof(err)))
        fail_msg("%s", err);
    return env;
}

/* ------------------------------------------------------------------ */
/* probe: a filter whose hooks the tests program                       */
/* ------------------------------------------------------------------ */

typedef struct probe_hooks {
    weft_status (*req_headers)(weft_stream *s, bool end);
    weft_status (*req_body)(weft_stream *s, weft_buffer *b, bool end);
    weft_status (*req_trailers)(weft_stream *s);
    weft_status (*resp_headers)(weft_stream *s, bool end);
    weft_status (*resp_body)(weft_stream *s, weft_buffer *b, bool end);
    weft_status (*resp_trailers)(weft_stream *s);
    void (*complete)(weft_stream *s, const weft_stream_info *info);
} probe_hooks;

static probe_hooks probe;
static weft_stream *probe_stream; /* the last stream probe saw */

static void *probe_stream_create(void *config, void *worker, weft_stream *s) {
    probe_stream = s;
    return NULL;
}
static weft_status probe_rq_h(void *c, weft_stream *s, bool end) {
    return probe.req_headers ? probe.req_headers(s, end) : WEFT_CONTINUE;
}
static weft_status probe_rq_b(void *c, weft_stream *s, weft_buffer *b, bool end) {
    return probe.req_body ? probe.req_body(s, b, end) : WEFT_CONTINUE;
}
static weft_status probe_rq_t(void *c, weft_stream *s) {
    return probe.req_trailers ? probe.req_trailers(s) : WEFT_CONTINUE;
}
static weft_status probe_rs_h(void *c, weft_stream *s, bool end) {
    return probe.resp_headers ? probe.resp_headers(s, end) : WEFT_CONTINUE;
}
static weft_status probe_rs_b(void *c, weft_stream *s, weft_buffer *b, bool end) {
    return probe.resp_body ? probe.resp_body(s, b, end) : WEFT_CONTINUE;
}
static weft_status probe_rs_t(void *c, weft_stream *s) {
    return probe.resp_trailers ? probe.resp_trailers(s) : WEFT_CONTINUE;
}
static void probe_done(void *c, weft_stream *s, const weft_stream_info *info) {
    if (probe.complete)
        probe.complete(s, info);
}

static const weft_http_filter_ops probe_ops = {
    .size = sizeof(weft_http_filter_ops),
    .stream_create = probe_stream_create,
    .on_request_headers = probe_rq_h,
    .on_request_body = probe_rq_b,
    .on_request_trailers = probe_rq_t,
    .on_response_headers = probe_rs_h,
    .on_response_body = probe_rs_b,
    .on_response_trailers = probe_rs_t,
    .on_stream_complete = probe_done,
};

static weft_filter_descriptor probe_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("probe", WEFT_FILTER_HTTP),
    .http = &probe_ops,
};

/* hdrauth's WEFT_FILTER_DEFINE owns weft__host in this binary; probe's
 * entry sets it too (the kit hands every filter the same table). */
static const weft_filter_descriptor *probe_entry(const weft_host_api *host) {
    weft__host = host;
    return &probe_desc;
}

static wft_env *probe_env(void) {
    memset(&probe, 0, sizeof(probe));
    probe_stream = NULL;
    wft_env *env = wft_env_new(probe_entry, err, sizeof(err));
    assert_non_null(env);
    return env;
}

/* ------------------------------------------------------------------ */
/* headers                                                             */
/* ------------------------------------------------------------------ */

static void test_headers_visible(void **state) {
    wft_env *env = hdrauth_env("response_footer: \"-- hdrauth\"\n");
    wft_stream *st = wft_stream_new(env, "GET", "/api/items?page=2",
                                    HDRS("Host: a.example", "X-Internal: secret", "Accept: */*"));
    assert_non_null(st);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-hdrauth"), "checked");
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "VIA"), "hdrauth");
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-internal"));
    const char *name, *value;
    assert_true(wft_header_at(st, WEFT_REQUEST_HEADERS, 0, &name, &value));
    assert_string_equal(name, "host"); /* stored lower-case, in order */
    assert_string_equal(value, "a.example");
    assert_true(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_true(wft_forwarded_end(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_gauge(env, "active_streams"), 1);

    assert_int_equal(
        wft_response_headers(st, 500, HDRS("Server: nginx", "content-type: text/plain"), false),
        WEFT_CONTINUE);
    assert_null(wft_header(st, WEFT_RESPONSE_HEADERS, "server"));
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-hdrauth"), "seen");
    assert_int_equal(wft_response_status(st), 502);
    assert_int_equal(wft_response_body(st, "hello ", 6, false), WEFT_CONTINUE);
    assert_int_equal(wft_response_body(st, "world", 5, true), WEFT_CONTINUE);
    size_t len;
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, &len), "hello world-- hdrauth");
    assert_int_equal(len, 21);
    assert_true(wft_forwarded_end(st, WEFT_RESPONSE_BODY));

    wft_clock_advance(env, 12);
    assert_int_equal(wft_complete(st, "UF"), 0);
    assert_true(wft_log_contains(env, "status=502 flags=UF attempts=0"));
    assert_int_equal(wft_complete(st, NULL), WFT_REJECTED);
    wft_stream_free(st);
    assert_int_equal(wft_gauge(env, "active_streams"), 0);
    assert_int_equal(wft_stat(env, "requests_total"), 1);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

static weft_status rewrite_headers(weft_stream *s, bool end) {
    weft_str m, p, q, a, v;
    assert_int_equal(weft_request_get(s, &m, &p, &q, &a), WEFT_OK);
    assert_true(m.len == 4 && memcmp(m.ptr, "POST", 4) == 0);
    assert_true(p.len == 5 && memcmp(p.ptr, "/old/", 5) == 0);
    assert_true(q.len == 3 && memcmp(q.ptr, "a=1", 3) == 0);
    assert_true(a.len == 6 && memcmp(a.ptr, "h2.svc", 6) == 0);
    assert_int_equal(weft_header_count(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-multi")), 2);
    assert_int_equal(weft_header_get_nth(s, WEFT_REQUEST_HEADERS, WEFT_STR("X-Multi"), 1, &v),
                     WEFT_OK);
    assert_true(v.len == 1 && v.ptr[0] == 'b');
    assert_int_equal(weft_header_get_nth(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-multi"), 2, &v),
                     WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("X-Multi"), WEFT_STR("c")),
                     WEFT_OK);
    assert_int_equal(weft_header_remove(s, WEFT_REQUEST_HEADERS, WEFT_STR("absent")),
                     WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_request_set_path(s, WEFT_STR("/new/?b=2")), WEFT_OK);
    assert_int_equal(weft_route_set_cluster(s, WEFT_STR("nope")), WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_route_set_cluster(s, WEFT_STR("v2")), WEFT_OK);
    /* The response map does not exist yet: reads find nothing, changes
     * are refused. */
    assert_int_equal(weft_header_get(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x"), &v),
                     WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x"), WEFT_STR("y")),
                     WEFT_ERR_STATE);
    return WEFT_CONTINUE;
}

static void test_request_line_and_route(void **state) {
    wft_env *env = probe_env();
    probe.req_headers = rewrite_headers;
    assert_int_equal(wft_env_add_cluster(env, "v1"), 0);
    assert_int_equal(wft_env_add_cluster(env, "v2"), 0);
    wft_stream *st = wft_stream_new(env, "POST", "/old/?a=1",
                                    HDRS(":authority: h2.svc", "x-multi: a", "x-multi: b"));
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_request_path(st), "/new/?b=2");
    assert_string_equal(wft_cluster(st), "v2");
    assert_int_equal(wft_header_count(st, WEFT_REQUEST_HEADERS, "x-multi"), 1);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-multi"), "c");
    assert_int_equal(wft_misuse_count(env), 1); /* the change to the response map */
    wft_stream_free(st);
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* local replies                                                       */
/* ------------------------------------------------------------------ */

static void test_local_reply(void **state) {
    wft_env *env =
        hdrauth_env("deny_paths: [\"/admin\", \"/internal\"]\nrequire_header: x-api-key\n");
    wft_stream *st = wft_stream_new(env, "GET", "/admin/users", HDRS("host: a"));
    assert_int_equal(wft_request_headers(st, false), WEFT_REPLIED);
    int status;
    const char *body, *reason;
    assert_true(wft_replied(st, &status, &body, &reason));
    assert_int_equal(status, 403);
    assert_string_equal(body, "denied\n");
    assert_string_equal(reason, "hdrauth_denied");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-weft-reason"), "hdrauth_denied");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "cache-control"), "no-store");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "content-type"), "text/plain");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "content-length"), "7");
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "denied\n");
    assert_false(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_request_body(st, "x", 1, true), WFT_REJECTED);
    assert_non_null(strstr(wft_env_error(env), "local reply"));
    wft_stream_free(st);

    st = wft_stream_new(env, "GET", "/ok", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
    assert_true(wft_replied(st, &status, NULL, &reason));
    assert_int_equal(status, 401);
    assert_string_equal(reason, "hdrauth_missing_header");
    wft_stream_free(st);

    st = wft_stream_new(env, "GET", "/ok", HDRS("x-api-key: k1"));
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_false(wft_replied(st, NULL, NULL, NULL));
    assert_null(wft_header(st, WEFT_REQUEST_HEADERS, "x-api-key"));
    assert_string_equal(wft_metadata(st, "hdrauth.key"), "k1");
    wft_stream_free(st);
    assert_int_equal(wft_stat(env, "denied_total"), 2);
    assert_int_equal(wft_stat(env, "requests_total"), 3);
    wft_env_free(env);
}

static int g_reply_status;

static weft_status reply_with(weft_stream *s, bool end) {
    assert_true(weft_request_is_grpc(s));
    assert_int_equal(weft_reply_simple(s, g_reply_status, WEFT_STR("why"), WEFT_STR("")), WEFT_OK);
    return WEFT_REPLIED;
}

static void test_grpc_reply(void **state) {
    /* hdrauth's deny on a gRPC request: HTTP 200 + grpc-status. */
    wft_env *env = hdrauth_env("deny_paths: [\"/pkg.Svc/\"]\n");
    wft_stream *st =
        wft_stream_new(env, "POST", "/pkg.Svc/Get", HDRS("content-type: application/grpc+proto"));
    assert_int_equal(wft_request_headers(st, false), WEFT_REPLIED);
    int status;
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 200);
    assert_int_equal(wft_reply_http_status(st), 403);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "content-type"), "application/grpc");
    /* Trailers-Only: grpc-status in the one header block (both maps). */
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "grpc-status"), "7");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_TRAILERS, "grpc-status"), "7");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_TRAILERS, "grpc-message"), "denied");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "content-length"), "0");
    wft_stream_free(st);
    wft_env_free(env);

    static const struct {
        int http;
        const char *grpc;
    } map[] = {{403, "7"},  {429, "8"}, {503, "14"}, {504, "4"},  {401, "16"}, {404, "12"},
               {400, "13"}, {500, "2"}, {418, "2"},  {502, "14"}, {408, "4"}};
    env = probe_env();
    probe.req_headers = reply_with;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        g_reply_status = map[i].http;
        st = wft_stream_new(env, "POST", "/a.B/C", HDRS("content-type: application/grpc"));
        assert_int_equal(wft_request_headers(st, false), WEFT_REPLIED);
        assert_string_equal(wft_header(st, WEFT_RESPONSE_TRAILERS, "grpc-status"), map[i].grpc);
        assert_string_equal(wft_header(st, WEFT_RESPONSE_TRAILERS, "grpc-message"), "why");
        wft_stream_free(st);
    }
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* pause, timers, resume                                               */
/* ------------------------------------------------------------------ */

static void test_pause_timer_resume(void **state) {
    wft_env *env = gate_env("max_delay: 1s\n");
    uint64_t t0 = wft_clock_now_us(env);
    wft_stream *st = wft_stream_new(env, "POST", "/upload", HDRS("x-delay-ms: 30"));
    assert_int_equal(wft_request_headers(st, false), WEFT_STOP);
    assert_true(wft_paused(st));
    assert_true(wft_paused_dir(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_timers_pending(st), 1);
    assert_int_equal(wft_request_body(st, "abc", 3, true), WFT_QUEUED);
    assert_false(wft_forwarded_headers(st, WEFT_REQUEST_BODY));

    wft_clock_advance(env, 29);
    assert_true(wft_paused(st));
    wft_clock_advance(env, 1);
    assert_false(wft_paused(st));
    assert_int_equal(wft_resume_count(st), 1);
    assert_int_equal(wft_timers_pending(st), 0);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-delayed-ms"), "30");
    assert_true(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_string_equal(wft_forwarded_body(st, WEFT_REQUEST_BODY, NULL), "abc");
    assert_true(wft_forwarded_end(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_clock_now_us(env), t0 + 30000);

    uint64_t count, sum;
    assert_true(wft_histogram(env, "wait_us", &count, &sum));
    assert_int_equal(count, 1);
    assert_int_equal(sum, 30000);
    assert_int_equal(wft_stat(env, "paused_total"), 1);
    assert_string_equal(wft_stat_help(env, "paused_total"), "requests held back");
    wft_stream_free(st);

    /* A delay past max_delay is capped; completing the stream cancels it. */
    st = wft_stream_new(env, "GET", "/", HDRS("x-delay-ms: 99999"));
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_complete(st, "DC"), 0);
    assert_int_equal(wft_timers_pending(st), 0);
    wft_clock_advance(env, 5000);
    assert_int_equal(wft_resume_count(st), 0);
    wft_stream_free(st);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

static char order[64];

static void mark_timer(weft_stream *s, void *ctx, void *arg) {
    char c[2] = {(char)(uintptr_t)arg, 0};
    strcat(order, c);
    if (strlen(order) == 3) {
        assert_int_equal(weft_stream_resume(s), WEFT_OK);
        assert_int_equal(weft_stream_resume(s), WEFT_ERR_STATE); /* not paused any more */
    }
}

static weft_timer *g_cancel_me;

static weft_status three_timers(weft_stream *s, bool end) {
    weft_timer *t;
    assert_int_equal(weft_timer_start(s, 20, mark_timer, (void *)(uintptr_t)'b', &t), WEFT_OK);
    assert_int_equal(weft_timer_start(s, 10, mark_timer, (void *)(uintptr_t)'a', &t), WEFT_OK);
    assert_int_equal(weft_timer_start(s, 20, mark_timer, (void *)(uintptr_t)'c', &t), WEFT_OK);
    assert_int_equal(weft_timer_start(s, 15, mark_timer, (void *)(uintptr_t)'x', &g_cancel_me),
                     WEFT_OK);
    assert_int_equal(weft_timer_cancel(s, g_cancel_me), WEFT_OK);
    assert_int_equal(weft_timer_cancel(s, g_cancel_me), WEFT_ERR_STATE); /* harmless, no misuse */
    return WEFT_STOP;
}

static void test_timer_order(void **state) {
    wft_env *env = probe_env();
    probe.req_headers = three_timers;
    order[0] = '\0';
    wft_stream *st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    wft_clock_advance(env, 100);
    /* deadline order; equal deadlines in start order */
    assert_string_equal(order, "abc");
    assert_true(wft_log_contains(env, "weft_stream_resume: the stream is not paused"));
    assert_false(wft_paused(st));
    assert_int_equal(wft_resume_count(st), 1);
    assert_int_equal(wft_misuse_count(env), 1); /* the second resume */
    wft_stream_free(st);
    wft_env_free(env);
}

static weft_status stop_response(weft_stream *s, bool end) {
    weft_timer *t;
    weft_header_add(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-held"), WEFT_STR("1"));
    assert_int_equal(weft_timer_start(s, 5, mark_timer, (void *)(uintptr_t)'r', &t), WEFT_OK);
    return WEFT_STOP;
}

static void resume_now(weft_stream *s, void *ctx, void *arg) {
    assert_int_equal(weft_stream_resume(s), WEFT_OK);
}

static weft_status stop_response_then_resume(weft_stream *s, bool end) {
    weft_timer *t;
    assert_int_equal(weft_timer_start(s, 5, resume_now, NULL, &t), WEFT_OK);
    return stop_response(s, end);
}

static weft_status trailers_add(weft_stream *s) {
    assert_int_equal(weft_header_add(s, WEFT_RESPONSE_TRAILERS, WEFT_STR("x-sum"), WEFT_STR("42")),
                     WEFT_OK);
    return WEFT_CONTINUE;
}

static weft_status req_trailers_seen(weft_stream *s) {
    weft_str v;
    assert_int_equal(weft_header_get(s, WEFT_REQUEST_TRAILERS, WEFT_STR("x-check"), &v), WEFT_OK);
    return WEFT_CONTINUE;
}

static void test_response_pause_and_trailers(void **state) {
    wft_env *env = probe_env();
    probe.resp_headers = stop_response_then_resume;
    probe.resp_trailers = trailers_add;
    probe.req_trailers = req_trailers_seen;
    order[0] = '\0';
    wft_stream *st = wft_stream_new(env, "POST", "/", NULL);
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_body(st, "q", 1, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_trailers(st, HDRS("x-check: 1")), WEFT_CONTINUE);
    assert_true(wft_forwarded_end(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 200, NULL, NULL, 800), 0);
    assert_int_equal(wft_response_headers(st, 200, HDRS("content-length: 2"), false), WEFT_STOP);
    assert_true(wft_paused_dir(st, WEFT_RESPONSE_BODY));
    assert_int_equal(wft_response_body(st, "ok", 2, false), WFT_QUEUED);
    assert_int_equal(wft_response_trailers(st, HDRS("grpc-status: 0")), WFT_QUEUED);
    assert_false(wft_forwarded_headers(st, WEFT_RESPONSE_BODY));
    wft_clock_advance(env, 5);
    assert_true(wft_forwarded_headers(st, WEFT_RESPONSE_BODY));
    assert_string_equal(wft_forwarded_body(st, WEFT_RESPONSE_BODY, NULL), "ok");
    assert_true(wft_forwarded_end(st, WEFT_RESPONSE_BODY));
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-held"), "1");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_TRAILERS, "x-sum"), "42");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_TRAILERS, "grpc-status"), "0");
    assert_string_equal(order, "r");
    assert_int_equal(wft_misuse_count(env), 0);
    wft_stream_free(st);
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* callouts                                                            */
/* ------------------------------------------------------------------ */

static void test_callout_canned(void **state) {
    wft_env *env = gate_env("authz_cluster: authz\n");
    assert_int_equal(wft_callout_canned(env, "authz", "/check", 200, HDRS("x-user: alice"), "ok"),
                     0);
    wft_stream *st = wft_stream_new(env, "GET", "/orders", HDRS("host: shop"));
    /* The hook paused; the canned answer came right after it returned. */
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_false(wft_paused(st));
    assert_int_equal(wft_resume_count(st), 1);
    assert_int_equal(wft_callout_started(st), 1);
    assert_int_equal(wft_callout_pending(st), 0);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-user"), "alice");
    assert_string_equal(wft_metadata(st, "gate.decision"), "allow");
    assert_true(wft_forwarded_end(st, WEFT_REQUEST_BODY));
    wft_stream_free(st);

    /* A later, more specific registration wins: a canned failure. */
    assert_int_equal(wft_callout_canned_fail(env, "authz", NULL, "connect_failure"), 0);
    st = wft_stream_new(env, "GET", "/orders", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    int status;
    const char *body;
    assert_true(wft_replied(st, &status, &body, NULL));
    assert_int_equal(status, 503);
    assert_string_equal(body, "connect_failure");
    wft_stream_free(st);
    assert_int_equal(wft_gauge(env, "authz_inflight"), 0);
    wft_env_free(env);
}

static void test_callout_answered_by_test(void **state) {
    wft_env *env = gate_env("authz_cluster: authz\nauthz_timeout: 250ms\n");
    wft_stream *st = wft_stream_new(env, "DELETE", "/orders/7", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_callout_pending(st), 1);
    assert_int_equal(wft_gauge(env, "authz_inflight"), 1);
    const char *cluster, *method, *path, *body;
    uint64_t timeout;
    assert_true(wft_callout_request(st, 0, &cluster, &method, &path, &body, &timeout));
    assert_string_equal(cluster, "authz");
    assert_string_equal(method, "POST");
    assert_string_equal(path, "/check");
    assert_string_equal(body, "/orders/7");
    assert_int_equal(timeout, 250);
    assert_string_equal(wft_callout_header(st, 0, "x-original-method"), "DELETE");
    assert_false(wft_callout_request(st, 1, NULL, NULL, NULL, NULL, NULL));
    assert_int_equal(wft_callout_respond(st, 1, 200, NULL, NULL), WFT_REJECTED);

    wft_clock_advance(env, 100);
    assert_int_equal(wft_callout_respond(st, 0, 403, HDRS("content-type: text/plain"), "nope"), 0);
    int status;
    const char *rbody, *reason;
    assert_true(wft_replied(st, &status, &rbody, &reason));
    assert_int_equal(status, 403);
    assert_string_equal(rbody, "nope");
    assert_string_equal(reason, "gate_denied");
    assert_int_equal(wft_gauge(env, "authz_inflight"), 0);
    uint64_t count, sum;
    assert_true(wft_histogram(env, "wait_us", &count, &sum));
    assert_int_equal(sum, 100000);
    wft_stream_free(st);

    /* Timeout on the fake clock, then an explicit failure. */
    st = wft_stream_new(env, "GET", "/x", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    wft_clock_advance(env, 249);
    assert_false(wft_replied(st, NULL, NULL, NULL));
    wft_clock_advance(env, 1);
    assert_true(wft_replied(st, &status, &rbody, NULL));
    assert_int_equal(status, 503);
    assert_string_equal(rbody, "timeout");
    wft_stream_free(st);

    st = wft_stream_new(env, "GET", "/x", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_callout_fail(st, 0, "reset"), 0);
    assert_true(wft_replied(st, &status, &rbody, NULL));
    assert_string_equal(rbody, "reset");
    wft_stream_free(st);

    /* Still pending when the stream completes: cancelled, no callback. */
    st = wft_stream_new(env, "GET", "/x", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_complete(st, NULL), 0);
    assert_int_equal(wft_callout_pending(st), 0);
    assert_int_equal(wft_callout_fail(st, 0, "reset"), WFT_REJECTED);
    wft_stream_free(st);
    assert_int_equal(wft_gauge(env, "authz_inflight"), 0);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* bodies                                                              */
/* ------------------------------------------------------------------ */

static void test_body_buffering(void **state) {
    wft_env *env = hdrauth_env("body_deny: secret\nmax_body: 16\n");
    wft_stream *st = wft_stream_new(env, "POST", "/in", NULL);
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_body(st, "hello ", 6, false), WEFT_STOP);
    assert_int_equal(wft_request_body(st, "wor", 3, false), WEFT_STOP);
    assert_int_equal(wft_held_body_length(st, WEFT_REQUEST_BODY), 9);
    assert_string_equal(wft_forwarded_body(st, WEFT_REQUEST_BODY, NULL), "");
    assert_true(wft_paused(st));
    assert_int_equal(wft_request_body(st, "ld", 2, true), WEFT_CONTINUE);
    assert_false(wft_paused(st));
    assert_string_equal(wft_forwarded_body(st, WEFT_REQUEST_BODY, NULL), "hello world");
    assert_true(wft_forwarded_end(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_held_body_length(st, WEFT_REQUEST_BODY), 0);
    wft_stream_free(st);

    st = wft_stream_new(env, "POST", "/in", NULL);
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_body(st, "my sec", 6, false), WEFT_STOP);
    assert_int_equal(wft_request_body(st, "ret", 3, true), WEFT_REPLIED);
    int status;
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 400);
    assert_string_equal(wft_forwarded_body(st, WEFT_REQUEST_BODY, NULL), "");
    wft_stream_free(st);

    st = wft_stream_new(env, "POST", "/in", NULL);
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_body(st, "0123456789", 10, false), WEFT_STOP);
    assert_int_equal(wft_request_body(st, "0123456789", 10, false), WEFT_REPLIED);
    assert_int_equal(wft_reply_http_status(st), 413);
    wft_stream_free(st);

    uint64_t count, sum;
    assert_true(wft_histogram(env, "request_body_bytes", &count, &sum));
    assert_int_equal(count, 2);
    assert_int_equal(sum, 20);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_env_free(env);
}

static weft_status edit_chunk(weft_stream *s, weft_buffer *b, bool end) {
    weft_str seg[4];
    assert_int_equal(weft_buffer_prepend(b, "<", 1), WEFT_OK);
    assert_int_equal(weft_buffer_append(b, ">", 1), WEFT_OK);
    size_t n = weft_buffer_peek(b, seg, 4);
    assert_int_equal(n, 3);
    assert_true(seg[0].len == 1 && seg[0].ptr[0] == '<');
    assert_int_equal(weft_buffer_drain(b, 2), WEFT_OK); /* "<" and the first data byte */
    assert_int_equal(weft_buffer_drain(b, 1000), WEFT_ERR_INVALID);
    char out[16] = {0};
    assert_int_equal(weft_buffer_copy_out(b, 1, out, sizeof(out)), weft_buffer_length(b) - 1);
    return WEFT_CONTINUE;
}

static void test_body_edit(void **state) {
    wft_env *env = probe_env();
    probe.req_body = edit_chunk;
    wft_stream *st = wft_stream_new(env, "PUT", "/", NULL);
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_body(st, "abc", 3, true), WEFT_CONTINUE);
    assert_string_equal(wft_forwarded_body(st, WEFT_REQUEST_BODY, NULL), "bc>");
    assert_int_equal(wft_misuse_count(env), 1); /* the drain past the end */
    wft_stream_free(st);
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* retries                                                             */
/* ------------------------------------------------------------------ */

static void test_retry(void **state) {
    wft_env *env = gate_env("retries: 1\n");
    wft_stream *st = wft_stream_new(env, "POST", "/pay", NULL);
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_replay_limit(st), 4096);
    assert_int_equal(wft_request_body(st, "amount=5", 8, true), WEFT_CONTINUE);
    assert_int_equal(
        wft_upstream_attempt(st, WEFT_ATTEMPT_CONNECT_FAILURE, 0, "10.0.0.9:80", "pay", 100), 0);
    assert_int_equal(wft_retry_count(st), 1);
    assert_int_equal(wft_upstream_attempt(st, WEFT_ATTEMPT_RESPONSE, 503, NULL, NULL, 100), 0);
    assert_int_equal(wft_retry_count(st), 1); /* only one retry configured */
    assert_int_equal(wft_response_headers(st, 503, NULL, true), WEFT_CONTINUE);
    assert_int_equal(wft_misuse_count(env), 0);
    wft_stream_free(st);
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* config                                                              */
/* ------------------------------------------------------------------ */

static void test_config_errors(void **state) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, "deny_paths: [\"/a\"\nx: 1\n", err, sizeof(err)), -1);
    assert_true(strncmp(err, "filter-config:", 14) == 0);
    assert_non_null(strstr(err, "invalid YAML"));

    assert_int_equal(
        wft_env_configure(env, "deny_paths: [\"/a\"]\ndeny_status: 99\n", err, sizeof(err)), -1);
    assert_string_equal(err, "filter-config:2:14: deny_status: expected a status in 400..599");
    assert_int_equal(wft_env_configure(env, "deny_paths:\n  - /ok\n  - nope\n", err, sizeof(err)),
                     -1);
    assert_string_equal(err, "filter-config:3:5: deny_paths: a prefix starts with '/'");
    assert_int_equal(wft_env_configure(env, "max_body: lots\n", err, sizeof(err)), -1);
    assert_string_equal(err, "filter-config:1:11: max_body: expected a size like \"64KiB\"");
    assert_int_equal(wft_env_configure(env, "colour: red\n", err, sizeof(err)), -1);
    assert_string_equal(err, "filter-config:1:9: hdrauth: unknown option");
    assert_int_equal(wft_env_configure(env, "a: 1\na: 2\n", err, sizeof(err)), -1);
    assert_string_equal(err, "filter-config:2:1: duplicate key \"a\"");
    assert_int_equal(wft_env_configure(env, "- 1\n", err, sizeof(err)), -1);
    assert_string_equal(err, "filter-config:1:1: hdrauth: the config must be a map");
    assert_string_equal(wft_env_error(env), err);

    /* From a file: errors name it; anchors work (aliases are refused, as
     * weft refuses them). */
    char path[512];
    snprintf(path, sizeof(path), "%s/hdrauth-test.yaml", WFT_TEST_DIR);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("deny_paths: &p [\"/a\"]\nmax_body: 1MiB\ndeny_status: x\n", f);
    fclose(f);
    assert_int_equal(wft_env_configure_file(env, path, err, sizeof(err)), -1);
    char want[600];
    snprintf(want, sizeof(want), "%s:3:14: deny_status: expected a status in 400..599", path);
    assert_string_equal(err, want);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("deny_paths: &p [\"/a\"]\nmax_body: 1MiB\ndeny_status: 429\n", f);
    fclose(f);
    assert_int_equal(wft_env_configure_file(env, path, err, sizeof(err)), 0);
    assert_non_null(wft_env_config(env));
    remove(path);

    wft_stream *st = wft_stream_new(env, "GET", "/a", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
    assert_int_equal(wft_reply_http_status(st), 429);
    /* Reconfiguring needs the streams gone. */
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), -1);
    wft_stream_free(st);
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_int_equal(wft_stat(env, "denied_total"), 1); /* stats survive a new config */
    wft_env_free(env);

    env = wft_env_load(WFT_GATE_SO, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, "authz_timeout: soon\n", err, sizeof(err)), -1);
    assert_string_equal(err,
                        "filter-config:1:16: authz_timeout: expected a duration like \"200ms\"");
    assert_int_equal(wft_env_configure(env, "retries: 9\n", err, sizeof(err)), -1);
    assert_string_equal(err, "filter-config:1:10: retries: expected 0..5");
    wft_env_free(env);
}

typedef struct cfg_seen {
    int64_t i;
    bool b;
    uint64_t ms, us_ms, size;
    double pct, pct2;
    size_t n_map;
    const char *dir;
    weft_result absent, wrong_kind, bad_int;
} cfg_seen;
static cfg_seen seen;

static int accessors_config(const weft_config_node *n, weft_filter_setup *setup, void **config) {
    memset(&seen, 0, sizeof(seen));
    assert_true(weft_config_is_map(n));
    seen.n_map = weft_config_len(n);
    assert_int_equal(weft_config_int(weft_config_get(n, "i"), &seen.i), WEFT_OK);
    assert_int_equal(weft_config_bool(weft_config_get(n, "b"), &seen.b), WEFT_OK);
    assert_int_equal(weft_config_duration_ms(weft_config_get(n, "d"), &seen.ms), WEFT_OK);
    assert_int_equal(weft_config_duration_ms(weft_config_get(n, "us"), &seen.us_ms), WEFT_OK);
    assert_int_equal(weft_config_size(weft_config_get(n, "s"), &seen.size), WEFT_OK);
    assert_int_equal(weft_config_percent(weft_config_get(n, "p"), &seen.pct), WEFT_OK);
    assert_int_equal(weft_config_percent(weft_config_get(n, "p2"), &seen.pct2), WEFT_OK);
    const weft_config_node *l = weft_config_get(n, "l");
    assert_true(weft_config_is_list(l));
    assert_int_equal(weft_config_len(l), 2);
    weft_str s;
    assert_int_equal(weft_config_string(weft_config_at(l, 1), &s), WEFT_OK);
    assert_true(s.len == 1 && s.ptr[0] == 'y');
    assert_null(weft_config_at(l, 2));
    weft_str key;
    assert_non_null(weft_config_entry(n, 0, &key));
    assert_true(key.len == 1 && key.ptr[0] == 'i');
    assert_true(weft_config_is_scalar(weft_config_get(weft_config_get(n, "alias"), "k")));
    seen.absent = weft_config_int(weft_config_get(n, "nope"), &seen.i);
    seen.wrong_kind = weft_config_string(l, &s);
    seen.bad_int = weft_config_int(weft_config_get(n, "bad"), &seen.i);
    seen.dir = weft_config_dir(setup);
    assert_int_equal(weft_config_int(weft_config_get(n, "i"), &seen.i), WEFT_OK);
    *config = &seen;
    return 0;
}

static const weft_http_filter_ops accessors_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = accessors_config,
};
static const weft_filter_descriptor accessors_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("accessors", WEFT_FILTER_HTTP),
    .http = &accessors_ops,
};
static const weft_filter_descriptor *accessors_entry(const weft_host_api *host) {
    weft__host = host;
    return &accessors_desc;
}

static void test_config_accessors(void **state) {
    wft_env *env = wft_env_new(accessors_entry, err, sizeof(err));
    assert_non_null(env);
    wft_env_set_config_dir(env, "/etc/weft");
    assert_int_equal(
        wft_env_configure(env,
                          "i: -42\nb: true\nd: 2s\nus: 1500us\ns: 64KiB\np: 12.5%\np2: 7\n"
                          "l: [x, y]\nm: &m {k: v}\nalias: {k: v}\nbad: 1x\n",
                          err, sizeof(err)),
        0);
    assert_ptr_equal(wft_env_config(env), &seen);
    assert_int_equal(seen.i, -42);
    assert_true(seen.b);
    assert_int_equal(seen.ms, 2000);
    assert_int_equal(seen.us_ms, 2);
    assert_int_equal(seen.size, 65536);
    assert_true(seen.pct == 12.5 && seen.pct2 == 7.0);
    assert_int_equal(seen.n_map, 11);
    assert_int_equal(seen.absent, WEFT_ERR_INVALID);
    assert_int_equal(seen.wrong_kind, WEFT_ERR_INVALID);
    assert_int_equal(seen.bad_int, WEFT_ERR_INVALID);
    assert_string_equal(seen.dir, "/etc/weft");
    /* As weft: an alias is refused (anchors alone are fine). */
    assert_int_equal(wft_env_configure(env, "m: &m {k: v}\nalias: *m\n", err, sizeof(err)), -1);
    assert_string_equal(err, "filter-config:2:8: YAML aliases are not supported");
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* ABI                                                                 */
/* ------------------------------------------------------------------ */

static weft_filter_descriptor bad_desc;
static const weft_filter_descriptor *bad_entry(const weft_host_api *host) {
    return &bad_desc;
}
static const weft_filter_descriptor *null_entry(const weft_host_api *host) {
    return NULL;
}

static void test_abi_refusal(void **state) {
    bad_desc = probe_desc;
    bad_desc.abi_major = WEFT_ABI_MAJOR + 1;
    bad_desc.abi_minor = 0;
    assert_null(wft_env_new(bad_entry, err, sizeof(err)));
    char want[256];
    snprintf(want, sizeof(want),
             "filter: filter ABI %d.0 is not supported by this weft (ABI %d.%d)",
             WEFT_ABI_MAJOR + 1, WEFT_ABI_MAJOR, WEFT_ABI_MINOR);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    assert_non_null(strstr(err, "another major"));

    bad_desc = probe_desc;
    bad_desc.abi_minor = WEFT_ABI_MINOR + 1;
    assert_null(wft_env_new(bad_entry, err, sizeof(err)));
    assert_non_null(strstr(err, "built for a newer weft"));

    bad_desc = probe_desc;
    bad_desc.name = "Bad-Name";
    assert_null(wft_env_new(bad_entry, err, sizeof(err)));
    assert_non_null(strstr(err, "no name, a bad kind or no hooks"));

    bad_desc = probe_desc;
    bad_desc.kind = WEFT_FILTER_TRANSPORT; /* without a transport table */
    assert_null(wft_env_new(bad_entry, err, sizeof(err)));

    bad_desc = probe_desc;
    bad_desc.size = sizeof(size_t);
    assert_null(wft_env_new(bad_entry, err, sizeof(err)));
    assert_non_null(strstr(err, "no valid descriptor"));

    assert_null(wft_env_new(null_entry, err, sizeof(err)));
    assert_null(wft_env_load("/nonexistent/filter.so", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/filter.so: cannot load"));

    /* The same major and this minor load; the host tells its version. */
    bad_desc = probe_desc;
    wft_env *env = wft_env_new(bad_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_host_api()->abi_major, WEFT_ABI_MAJOR);
    assert_int_equal(wft_host_api()->abi_minor, WEFT_ABI_MINOR);
    assert_int_equal(wft_host_api()->size, sizeof(weft_host_api));
    assert_string_equal(wft_env_descriptor(env)->name, "probe");
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* misuse                                                              */
/* ------------------------------------------------------------------ */

static weft_status misuse_headers(weft_stream *s, bool end) {
    weft_str v;
    weft_stream *foreign = (weft_stream *)(void *)&v;
    assert_int_equal(weft_stream_resume(s), WEFT_ERR_STATE);
    assert_int_equal(weft_header_get(NULL, WEFT_REQUEST_HEADERS, WEFT_STR("a"), &v),
                     WEFT_ERR_HANDLE);
    assert_int_equal(weft_header_set(foreign, WEFT_REQUEST_HEADERS, WEFT_STR("a"), WEFT_STR("b")),
                     WEFT_ERR_HANDLE);
    assert_int_equal(weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("bad name"), WEFT_STR("b")),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("a"), WEFT_STR("x\r\ny: z")),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_header_set(s, (weft_header_map)9, WEFT_STR("a"), WEFT_STR("b")),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_upstream_retry(s), WEFT_ERR_STATE);
    assert_int_equal(weft_timer_start(s, 1, NULL, NULL, NULL), WEFT_ERR_INVALID);
    assert_int_equal(weft_timer_cancel(s, (weft_timer *)(void *)&v), WEFT_ERR_INVALID);
    assert_int_equal(weft_buffer_append(NULL, "x", 1), WEFT_ERR_INVALID);
    assert_int_equal(weft_reply_simple(s, 99, WEFT_STR(""), WEFT_STR("")), WEFT_ERR_INVALID);
    assert_int_equal(weft_request_set_path(s, WEFT_STR("no-slash")), WEFT_ERR_INVALID);
    weft_stat_inc(12345, 1);
    return WEFT_STOP;
}

static weft_result g_after[4];

static void misuse_complete(weft_stream *s, const weft_stream_info *info) {
    weft_str v;
    g_after[0] = weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("a"), WEFT_STR("b"));
    g_after[1] = weft_stream_resume(s);
    g_after[2] =
        weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("host"), &v); /* reads still work */
    g_after[3] = weft_reply_simple(s, 500, WEFT_STR(""), WEFT_STR(""));
}

static void *thread_resume(void *arg) {
    static weft_result r;
    r = weft_stream_resume(arg);
    return &r;
}

static weft_status replied_without_reply(weft_stream *s, bool end) {
    return WEFT_REPLIED;
}

static weft_status reply_but_continue(weft_stream *s, bool end) {
    weft_reply_simple(s, 404, WEFT_STR("gone"), WEFT_STR(""));
    assert_int_equal(weft_reply_simple(s, 404, WEFT_STR("again"), WEFT_STR("")), WEFT_ERR_STATE);
    return WEFT_CONTINUE;
}

static weft_status retry_with_body(weft_stream *s, bool end) {
    return WEFT_CONTINUE;
}

static void test_misuse(void **state) {
    wft_env *env = probe_env();
    probe.req_headers = misuse_headers;
    wft_stream *st = wft_stream_new(env, "GET", "/", HDRS("host: h"));
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_misuse_count(env), 13);
    assert_non_null(strstr(wft_misuse_last(env), "no stat with id 12345"));
    assert_true(wft_log_contains(env, "weft_stream_resume: not from inside a hook"));

    /* Another thread: refused. */
    pthread_t th;
    void *res;
    assert_int_equal(pthread_create(&th, NULL, thread_resume, probe_stream), 0);
    pthread_join(th, &res);
    assert_int_equal(*(weft_result *)res, WEFT_ERR_THREAD);
    assert_true(wft_paused(st));

    probe.complete = misuse_complete;
    assert_int_equal(wft_complete(st, NULL), 0);
    assert_int_equal(g_after[0], WEFT_ERR_STATE);
    assert_int_equal(g_after[1], WEFT_ERR_STATE);
    assert_int_equal(g_after[2], WEFT_OK);
    assert_int_equal(g_after[3], WEFT_ERR_STATE);
    assert_int_equal(wft_request_body(st, "x", 1, true), WFT_REJECTED);
    weft_stream *stale = probe_stream;
    wft_stream_free(st);
    /* A freed stream is no live handle (checked without touching it). */
    assert_int_equal(wft_host_api()->stream_resume(stale), WEFT_ERR_HANDLE);

    /* WEFT_REPLIED without a reply: the kit fails closed with a 500. */
    memset(&probe, 0, sizeof(probe));
    probe.req_headers = replied_without_reply;
    size_t before = wft_misuse_count(env);
    st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
    assert_int_equal(wft_reply_http_status(st), 500);
    assert_int_equal(wft_misuse_count(env), before + 1);
    wft_stream_free(st);

    /* A reply but WEFT_CONTINUE: the reply stands, the slip is recorded. */
    probe.req_headers = reply_but_continue;
    st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_reply_http_status(st), 404);
    assert_non_null(strstr(wft_misuse_last(env), "sent a local reply but returned WEFT_CONTINUE"));
    wft_stream_free(st);

    /* Driving the stream out of order is refused, with a reason. */
    probe.req_headers = retry_with_body;
    st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_request_body(st, "x", 1, false), WFT_REJECTED);
    assert_non_null(strstr(wft_env_error(env), "before request headers"));
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WFT_REJECTED);
    assert_int_equal(wft_request_headers(st, false), WEFT_CONTINUE);
    assert_int_equal(wft_request_headers(st, false), WFT_REJECTED);
    wft_stream_free(st);
    assert_null(wft_stream_new(env, "GET", "no-slash", NULL));
    assert_null(wft_stream_new(env, "GET", "/", HDRS("no colon")));
    wft_env_free(env);
}

/* ------------------------------------------------------------------ */
/* connection facts, metadata, log                                     */
/* ------------------------------------------------------------------ */

static weft_status facts(weft_stream *s, bool end) {
    weft_str ip, id, v;
    uint16_t port;
    assert_int_equal(weft_conn_peer_address(s, &ip, &port), WEFT_OK);
    assert_true(ip.len == 8 && memcmp(ip.ptr, "10.1.2.3", 8) == 0 && port == 5555);
    assert_int_equal(weft_conn_local_address(s, &ip, &port), WEFT_OK);
    assert_int_equal(port, 15001);
    assert_int_equal(weft_conn_peer_identity(s, &id), WEFT_OK);
    assert_true(id.len == 36 && memcmp(id.ptr, "spiffe://mesh.local/ns/shop/sa/front", 36) == 0);
    assert_true(weft_conn_is_tls(s));
    assert_false(weft_request_is_grpc(s));
    assert_int_equal(weft_metadata_get(s, WEFT_STR("earlier.filter"), &v), WEFT_OK);
    assert_true(v.len == 3 && memcmp(v.ptr, "yes", 3) == 0);
    assert_int_equal(weft_metadata_set(s, WEFT_STR("probe.k"), WEFT_STR("one")), WEFT_OK);
    weft_str old;
    assert_int_equal(weft_metadata_get(s, WEFT_STR("probe.k"), &old), WEFT_OK);
    assert_int_equal(weft_metadata_set(s, WEFT_STR("probe.k"), WEFT_STR("two")), WEFT_OK);
    assert_true(old.len == 3 && memcmp(old.ptr, "one", 3) == 0); /* still valid */
    assert_int_equal(weft_metadata_get(s, WEFT_STR("Probe.K"), &v), WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_metadata_set(s, WEFT_STR(""), WEFT_STR("x")), WEFT_ERR_INVALID);
    uint64_t t = weft_clock_now_us();
    assert_int_equal(t, 1000000);
    assert_false(weft_log_enabled(WEFT_LOG_LEVEL_INFO));
    weft_log_msg(WEFT_LOG_LEVEL_INFO, "probe", "dropped");
    weft_log_msg(WEFT_LOG_LEVEL_WARN, "probe", "kept");
    return WEFT_CONTINUE;
}

static void test_connection_facts(void **state) {
    wft_env *env = probe_env();
    probe.req_headers = facts;
    wft_log_set_level(env, WEFT_LOG_LEVEL_WARN);
    wft_stream *st = wft_stream_new(env, "GET", "/", NULL);
    wft_stream_set_peer(st, "10.1.2.3", 5555);
    wft_stream_set_local(st, "10.1.2.4", 15001);
    wft_stream_set_tls(st, true);
    wft_stream_set_peer_identity(st, "spiffe://mesh.local/ns/shop/sa/front");
    wft_metadata_put(st, "earlier.filter", "yes");
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_string_equal(wft_metadata(st, "probe.k"), "two");
    assert_int_equal(wft_log_count(env), 2); /* the misuse line, then "kept" */
    weft_log_level_t lvl;
    assert_string_equal(wft_log_line(env, 1, &lvl), "probe: kept");
    assert_int_equal(lvl, WEFT_LOG_LEVEL_WARN);
    assert_false(wft_log_contains(env, "dropped"));
    assert_int_equal(wft_misuse_count(env), 1);
    wft_stream_free(st);
    wft_env_free(env);
}

/* Two envs side by side (one linked filter, one dlopened) keep apart. */
static void test_two_envs(void **state) {
    wft_env *a = hdrauth_env(NULL);
    wft_env *b = gate_env("max_delay: 10ms\n");
    wft_stream *sa = wft_stream_new(a, "GET", "/", NULL);
    wft_stream *sb = wft_stream_new(b, "GET", "/", HDRS("x-delay-ms: 50"));
    assert_int_equal(wft_request_headers(sa, true), WEFT_CONTINUE);
    assert_int_equal(wft_request_headers(sb, true), WEFT_STOP);
    wft_clock_advance(a, 10); /* a's clock: b's timer does not fire */
    assert_true(wft_paused(sb));
    wft_clock_advance(b, 10);
    assert_false(wft_paused(sb));
    assert_string_equal(wft_header(sb, WEFT_REQUEST_HEADERS, "x-delayed-ms"), "10");
    assert_int_equal(wft_stat(a, "requests_total"), 1);
    assert_false(wft_stat_exists(a, "paused_total"));
    assert_int_equal(wft_stat(b, "paused_total"), 1);
    assert_null(wft_conn_new(a));
    /* wft_env_free frees the streams still open. */
    wft_env_free(b);
    wft_env_free(a);
}

/* ------------------------------------------------------------------ */
/* transport filters                                                   */
/* ------------------------------------------------------------------ */

static int closes;

static void *xor_create(void *config, weft_connection *c) {
    return NULL;
}

/* Decodes pairs of bytes (XOR 0x20 on each); an odd last byte waits. */
static int xor_read(void *ctx, weft_connection *c, weft_buffer *in, weft_buffer *out) {
    size_t n = weft_buffer_length(in) & ~(size_t)1;
    char buf[64];
    if (n > sizeof(buf))
        n = sizeof(buf);
    weft_buffer_copy_out(in, 0, buf, n);
    for (size_t i = 0; i < n; i++)
        buf[i] ^= 0x20;
    weft_buffer_drain(in, n);
    weft_buffer_append(out, buf, n);
    weft_connection_set_alpn(c, WEFT_STR("h2"));
    weft_connection_set_tls(c, true);
    weft_connection_set_peer_identity(c, WEFT_STR("spiffe://td/ns/a/sa/b"));
    return n && buf[0] == 'Q' ? -1 : 0;
}

static void xor_close(void *ctx, weft_connection *c) {
    closes++;
}

static const weft_transport_filter_ops xor_ops = {
    .size = sizeof(weft_transport_filter_ops),
    .connection_create = xor_create,
    .on_read = xor_read,
    .on_close = xor_close,
};
static const weft_filter_descriptor xor_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("xor", WEFT_FILTER_TRANSPORT),
    .transport = &xor_ops,
};
static const weft_filter_descriptor *xor_entry(const weft_host_api *host) {
    weft__host = host;
    return &xor_desc;
}

static void test_transport(void **state) {
    closes = 0;
    wft_env *env = wft_env_new(xor_entry, err, sizeof(err));
    assert_non_null(env);
    assert_null(wft_stream_new(env, "GET", "/", NULL));
    wft_conn *c = wft_conn_new(env);
    assert_non_null(c);
    assert_null(wft_conn_alpn(c));
    assert_int_equal(wft_conn_read(c, "HELLO", 5), 0);
    size_t len;
    assert_string_equal(wft_conn_to_codec(c, &len), "hell");
    assert_int_equal(wft_conn_pending_in(c, false), 1);
    assert_int_equal(wft_conn_read(c, "!", 1), 0);
    assert_string_equal(wft_conn_to_codec(c, NULL), "hello\x01");
    assert_string_equal(wft_conn_alpn(c), "h2");
    assert_true(wft_conn_tls(c));
    assert_string_equal(wft_conn_peer_identity(c), "spiffe://td/ns/a/sa/b");
    /* No on_write hook: bytes pass through. */
    assert_int_equal(wft_conn_write(c, "resp", 4), 0);
    assert_string_equal(wft_conn_to_network(c, &len), "resp");
    /* -1 closes the connection once. */
    assert_int_equal(wft_conn_read(c, "qq", 2), -1);
    assert_int_equal(closes, 1);
    assert_int_equal(wft_conn_read(c, "ab", 2), -1);
    wft_conn_free(c);
    assert_int_equal(closes, 1);
    c = wft_conn_new(env);
    wft_env_free(env); /* frees the connection, closing it */
    assert_int_equal(closes, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_visible),
        cmocka_unit_test(test_request_line_and_route),
        cmocka_unit_test(test_local_reply),
        cmocka_unit_test(test_grpc_reply),
        cmocka_unit_test(test_pause_timer_resume),
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_response_pause_and_trailers),
        cmocka_unit_test(test_callout_canned),
        cmocka_unit_test(test_callout_answered_by_test),
        cmocka_unit_test(test_body_buffering),
        cmocka_unit_test(test_body_edit),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_accessors),
        cmocka_unit_test(test_abi_refusal),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_connection_facts),
        cmocka_unit_test(test_two_envs),
        cmocka_unit_test(test_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
