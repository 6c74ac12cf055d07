/* test_h1_parser.c: the HTTP/1.1 parser, fed whole, byte at a time and in
 * odd-sized pieces; every input must give the same events in every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1/h1_codec.h"

/* ---- collector ---- */

typedef struct {
    char log[4096]; /* event log: compared between split modes */
    char body[8192];
    size_t body_len;
    /* last head, copied out of the parser's storage */
    char method[16], target[256], path[256], query[256], authority[256];
    int method_id;
    int minor;
    bool keep_alive, expect, upgrade;
    int framing;
    int64_t cl;
    char hdrs[2048];
    uint32_t nhdrs;
    uint16_t status;
    char reason[64];
    char trailers[512];
    int heads, completes, trailer_calls;
    /* behaviour */
    int head_rc; /* returned by on_*_head */
    int body_rc; /* returned by on_body */
    int trailers_rc;
    int complete_rc;
    int pauses;
    bool in_body_at_body;
} col;

static void logf_(col *c, const char *fmt, ...) {
    size_t l = strlen(c->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->log + l, sizeof(c->log) - l, fmt, ap);
    va_end(ap);
}

static void sv_copy(char *dst, size_t cap, weft_sv s) {
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static void hdrs_copy(char *dst, size_t cap, const weft_hdrs *h) {
    dst[0] = '\0';
    for (uint32_t i = 0; i < h->n; i++) {
        size_t l = strlen(dst);
        snprintf(dst + l, cap - l, "%.*s=%.*s;", (int)h->v[i].name.len, h->v[i].name.p,
                 (int)h->v[i].value.len, h->v[i].value.p);
    }
}

static int on_req_head(void *ud, weft_req_head *r) {
    col *c = ud;
    sv_copy(c->method, sizeof(c->method), r->method);
    sv_copy(c->target, sizeof(c->target), r->target);
    sv_copy(c->path, sizeof(c->path), r->path);
    sv_copy(c->query, sizeof(c->query), r->query);
    sv_copy(c->authority, sizeof(c->authority), r->authority);
    c->method_id = r->method_id;
    c->minor = r->http_minor;
    c->keep_alive = r->keep_alive;
    c->expect = r->expect_continue;
    c->upgrade = r->upgrade;
    c->framing = r->framing;
    c->cl = r->content_length;
    c->nhdrs = r->headers.n;
    hdrs_copy(c->hdrs, sizeof(c->hdrs), &r->headers);
    c->heads++;
    logf_(c, "REQ %s %s;", c->method, c->target);
    return c->head_rc;
}

static int on_resp_head(void *ud, weft_resp_head *r) {
    col *c = ud;
    c->status = r->status;
    sv_copy(c->reason, sizeof(c->reason), r->reason);
    c->minor = r->http_minor;
    c->keep_alive = r->keep_alive;
    c->framing = r->framing;
    c->cl = r->content_length;
    c->nhdrs = r->headers.n;
    hdrs_copy(c->hdrs, sizeof(c->hdrs), &r->headers);
    c->heads++;
    logf_(c, "RESP %u;", r->status);
    return c->head_rc;
}

static int on_body(void *ud, const char *p, size_t n) {
    col *c = ud;
    assert_true(n > 0);
    assert_true(c->body_len + n <= sizeof(c->body));
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    return c->body_rc;
}

static int on_trailers(void *ud, weft_hdrs *t) {
    col *c = ud;
    hdrs_copy(c->trailers, sizeof(c->trailers), t);
    c->trailer_calls++;
    logf_(c, "TRAILERS %u;", t->n);
    return c->trailers_rc;
}

static int on_complete(void *ud) {
    col *c = ud;
    c->completes++;
    logf_(c, "BODY %zu;DONE;", c->body_len);
    return c->complete_rc;
}

static const weft_h1_callbacks cbs = {on_req_head, on_resp_head, on_body, on_trailers, on_complete};

/* ---- driver ---- */

typedef struct {
    weft_h1_result last;
    uint16_t err_status;
    const char *err_reason;
    int dones;
    size_t consumed_total;
} run_out;

/* Simulates bytes arriving `step` at a time (0 = all at once). Unconsumed
 * bytes after DONE/PAUSED are fed again, as the proxy engine does. */
static run_out run_parser(col *c, weft_h1_kind kind, const char *in, size_t len, size_t step,
                          int method_id, const weft_h1_limits *lim, bool send_eof, bool one_pass) {
    run_out o = {WEFT_H1_OK, 0, "", 0, 0};
    weft_arena arena;
    weft_arena_init(&arena);
    weft_h1_parser *p = weft_h1_parser_new(kind, lim, &cbs, c);
    assert_non_null(p);
    weft_h1_parser_set_one_pass(p, one_pass);
    weft_h1_parser_next(p, &arena, method_id);
    size_t off = 0, arrived = step ? (step < len ? step : len) : len;
    for (int guard = 0; guard < 1000000; guard++) {
        size_t used = 0;
        weft_h1_result r = weft_h1_parser_feed(p, in + off, arrived - off, &used);
        assert_true(used <= arrived - off);
        off += used;
        o.last = r;
        if (r == WEFT_H1_DONE) {
            o.dones++;
            weft_arena_reset(&arena);
            weft_h1_parser_next(p, &arena, method_id);
            continue;
        }
        if (r == WEFT_H1_PAUSED) {
            c->pauses++;
            weft_h1_parser_resume(p);
            continue;
        }
        if (r == WEFT_H1_ERROR) {
            o.err_status = weft_h1_parser_error_status(p);
            o.err_reason = weft_h1_parser_error_reason(p);
            break;
        }
        assert_int_equal(off, arrived);
        if (arrived == len)
            break;
        arrived = step ? (arrived + step < len ? arrived + step : len) : len;
    }
    if (send_eof && o.last != WEFT_H1_ERROR) {
        weft_h1_result r = weft_h1_parser_eof(p);
        o.last = r;
        if (r == WEFT_H1_DONE)
            o.dones++;
        if (r == WEFT_H1_ERROR) {
            o.err_status = weft_h1_parser_error_status(p);
            o.err_reason = weft_h1_parser_error_reason(p);
        }
    }
    o.consumed_total = off;
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
    return o;
}

static const size_t steps[] = {0, 1, 2, 3, 7, 13};

/* The one-pass head reading and llhttp reading every head (one pass
 * off) give the same events, results and collected heads for the same
 * split. */
static run_out run_both(col *c, const col *tmpl, weft_h1_kind kind, const char *in, size_t len,
                        size_t step, int method_id, const weft_h1_limits *lim, bool send_eof) {
    col c2;
    if (tmpl) {
        *c = *tmpl;
        c2 = *tmpl;
    } else {
        memset(c, 0, sizeof(*c));
        memset(&c2, 0, sizeof(c2));
    }
    run_out o = run_parser(c, kind, in, len, step, method_id, lim, send_eof, true);
    run_out o2 = run_parser(&c2, kind, in, len, step, method_id, lim, send_eof, false);
    if (o.last != o2.last || o.dones != o2.dones || o.err_status != o2.err_status ||
        strcmp(o.err_reason, o2.err_reason) != 0 || o.consumed_total != o2.consumed_total ||
        memcmp(c, &c2, sizeof(c2)) != 0)
        fail_msg("step %zu: one pass %d %d %u %s %zu [%s] [%s], llhttp %d %d %u %s %zu [%s] [%s]",
                 step, o.last, o.dones, o.err_status, o.err_reason, o.consumed_total, c->log,
                 c->hdrs, o2.last, o2.dones, o2.err_status, o2.err_reason, o2.consumed_total,
                 c2.log, c2.hdrs);
    return o;
}

/* Runs the input in every split mode; asserts identical outcomes and
 * returns the collector of the whole-buffer run in *out. */
static run_out run_all_ex(col *out, weft_h1_kind kind, const char *in, size_t len, int method_id,
                          const weft_h1_limits *lim, bool send_eof, const col *tmpl) {
    run_out first = {0};
    col c0;
    for (size_t i = 0; i < WEFT_ARRAY_LEN(steps); i++) {
        col c;
        run_out o = run_both(&c, tmpl, kind, in, len, steps[i], method_id, lim, send_eof);
        if (i == 0) {
            first = o;
            c0 = c;
        } else {
            assert_int_equal(o.last, first.last);
            assert_int_equal(o.dones, first.dones);
            assert_int_equal(o.err_status, first.err_status);
            assert_string_equal(o.err_reason, first.err_reason);
            assert_string_equal(c.log, c0.log);
            /* on error, how much body streamed out first depends on the split */
            if (o.last != WEFT_H1_ERROR) {
                assert_int_equal(c.body_len, c0.body_len);
                assert_memory_equal(c.body, c0.body, c.body_len);
            }
            assert_string_equal(c.hdrs, c0.hdrs);
            assert_string_equal(c.trailers, c0.trailers);
        }
    }
    *out = c0;
    return first;
}

static run_out req_all(col *out, const char *in) {
    return run_all_ex(out, WEFT_H1_REQUEST, in, strlen(in), 0, NULL, false, NULL);
}

static run_out resp_all(col *out, const char *in, int method_id, bool eof) {
    return run_all_ex(out, WEFT_H1_RESPONSE, in, strlen(in), method_id, NULL, eof, NULL);
}

static void expect_req_error(const char *in, size_t len, uint16_t status, const char *reason,
                             const weft_h1_limits *lim) {
    col c;
    run_out o = run_all_ex(&c, WEFT_H1_REQUEST, in, len, 0, lim, false, NULL);
    if (o.last != WEFT_H1_ERROR || o.err_status != status || strcmp(o.err_reason, reason) != 0)
        fail_msg("input %.*s: got result %d status %u reason %s, want %u %s", (int)len, in, o.last,
                 o.err_status, o.err_reason, status, reason);
    assert_int_equal(c.completes, 0);
}

#define REQ_ERR(lit, status, reason) expect_req_error(lit, sizeof(lit) - 1, status, reason, NULL)

/* ---- requests ---- */

static void test_simple_get(void **state) {
    (void)state;
    col c;
    run_out o = req_all(
        &c, "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.com\r\nX-Mixed-Case: Va lue \r\n\r\n");
    assert_int_equal(o.last, WEFT_H1_OK);
    assert_int_equal(o.dones, 1);
    assert_string_equal(c.method, "GET");
    assert_int_equal(c.method_id, HTTP_GET);
    assert_string_equal(c.target, "/a/b?x=1&y=2");
    assert_string_equal(c.path, "/a/b");
    assert_string_equal(c.query, "x=1&y=2");
    assert_string_equal(c.authority, "Example.com");
    assert_int_equal(c.minor, 1);
    assert_true(c.keep_alive);
    assert_false(c.expect);
    assert_false(c.upgrade);
    assert_int_equal(c.framing, WEFT_BODY_NONE);
    assert_int_equal(c.cl, -1);
    /* names lower-cased, values trimmed of OWS but otherwise as sent */
    assert_string_equal(c.hdrs, "host=Example.com;x-mixed-case=Va lue;");
    assert_string_equal(c.log, "REQ GET /a/b?x=1&y=2;BODY 0;DONE;");
}

static void test_target_forms(void **state) {
    (void)state;
    col c;
    req_all(&c, "GET http://api.example:8080/v1/x?q=2 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_int_equal(c.completes, 1);
    assert_string_equal(c.authority, "api.example:8080"); /* absolute-form wins over Host */
    assert_string_equal(c.path, "/v1/x");
    assert_string_equal(c.query, "q=2");
    assert_string_equal(c.target, "http://api.example:8080/v1/x?q=2"); /* as received */
    /* and the Host to forward is generated from it (RFC 9112 3.2.2) */
    assert_string_equal(c.hdrs, "host=api.example:8080;");

    /* HTTP/1.0 absolute-form without Host: one is added */
    req_all(&c, "GET http://b.example/p HTTP/1.0\r\nX: 1\r\n\r\n");
    assert_int_equal(c.completes, 1);
    assert_string_equal(c.authority, "b.example");
    assert_string_equal(c.hdrs, "x=1;host=b.example;");

    req_all(&c, "GET http://api.example HTTP/1.1\r\nHost: api.example\r\n\r\n");
    assert_int_equal(c.completes, 1);
    assert_string_equal(c.path, "/");
    assert_string_equal(c.query, "");

    req_all(&c, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(c.completes, 1);
    assert_string_equal(c.path, "*");

    req_all(&c, "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
    assert_int_equal(c.completes, 1);
    assert_int_equal(c.method_id, HTTP_CONNECT);
    assert_string_equal(c.authority, "db.internal:5432");
    assert_true(c.upgrade);
    assert_int_equal(c.framing, WEFT_BODY_NONE);

    req_all(&c, "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n");
    assert_string_equal(c.authority, "[::1]:443");

    REQ_ERR("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_target");
    REQ_ERR("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_target");
    REQ_ERR("CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_target");
    REQ_ERR("CONNECT a:443 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 400,
            "h1_bad_connect");
    REQ_ERR("GET http://user@evil/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_target");
    REQ_ERR("GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_target");
    REQ_ERR("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_target");
}

static void test_versions_keepalive(void **state) {
    (void)state;
    col c;
    req_all(&c, "GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(c.completes, 1);
    assert_int_equal(c.minor, 0);
    assert_false(c.keep_alive);
    assert_string_equal(c.authority, "");

    req_all(&c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(c.keep_alive);

    req_all(&c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_false(c.keep_alive);

    req_all(&c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, foo\r\n\r\n");
    assert_true(c.keep_alive);

    REQ_ERR("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "h1_bad_version");
    REQ_ERR("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "h1_bad_version");
    REQ_ERR("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
}

static void test_expect_upgrade(void **state) {
    (void)state;
    col c;
    req_all(&c,
            "POST /u HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok");
    assert_true(c.expect);
    assert_int_equal(c.framing, WEFT_BODY_LENGTH);
    assert_int_equal(c.cl, 2);
    assert_int_equal(c.body_len, 2);

    req_all(&c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_true(c.upgrade);
    assert_int_equal(c.completes, 1);

    /* Upgrade without Connection: upgrade is only an announcement */
    req_all(&c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert_false(c.upgrade);
}

static void test_bodies(void **state) {
    (void)state;
    col c;
    run_out o = req_all(&c, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.framing, WEFT_BODY_LENGTH);
    assert_int_equal(c.body_len, 11);
    assert_memory_equal(c.body, "hello world", 11);

    o = req_all(&c, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.framing, WEFT_BODY_NONE);
    assert_int_equal(c.cl, 0);

    o = req_all(&c, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;a;b\r\nhello\r\n1A;name=val\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                    "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n");
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.framing, WEFT_BODY_CHUNKED);
    assert_int_equal(c.body_len, 31);
    assert_memory_equal(c.body, "helloabcdefghijklmnopqrstuvwxyz", 31);
    assert_int_equal(c.trailer_calls, 1);
    assert_string_equal(c.trailers, "x-checksum=abc;x-other=1;");
    assert_string_equal(c.log, "REQ POST /c;TRAILERS 2;BODY 31;DONE;");

    /* no trailers: on_trailers is not called */
    o = req_all(&c, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.trailer_calls, 0);

    /* the coding is matched case-insensitively, OWS around it ignored */
    o = req_all(
        &c,
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n1\r\nz\r\n0\r\n\r\n");
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.body_len, 1);

    /* 16 hex digits (leading zeros) are still a valid chunk size */
    o = req_all(&c, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                    "chunked\r\n\r\n0000000000000003\r\nabc\r\n0\r\n\r\n");
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.body_len, 3);
}

static void test_pipelining_consumed(void **state) {
    (void)state;
    const char *a = "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    const char *b = "GET /two HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *ch =
        "POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
    char buf[512];
    snprintf(buf, sizeof(buf), "%s%s%s\r\n%s", a, b, ch, b);

    /* exact consumed positions, one message at a time */
    weft_arena arena;
    weft_arena_init(&arena);
    col c;
    memset(&c, 0, sizeof(c));
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, 0);
    size_t used, off = 0, len = strlen(buf);
    assert_false(weft_h1_parser_in_message(p));
    assert_int_equal(weft_h1_parser_feed(p, buf, len, &used), WEFT_H1_DONE);
    assert_int_equal(used, strlen(a));
    /* without next(), the parser stays done and takes nothing */
    size_t again = 99;
    assert_int_equal(weft_h1_parser_feed(p, buf + used, len - used, &again), WEFT_H1_DONE);
    assert_int_equal(again, 0);
    off += used;
    weft_h1_parser_next(p, &arena, 0);
    assert_int_equal(weft_h1_parser_feed(p, buf + off, len - off, &used), WEFT_H1_DONE);
    assert_int_equal(used, strlen(b));
    off += used;
    weft_h1_parser_next(p, &arena, 0);
    assert_int_equal(weft_h1_parser_feed(p, buf + off, len - off, &used), WEFT_H1_DONE);
    assert_int_equal(used, strlen(ch));
    off += used;
    weft_h1_parser_next(p, &arena, 0);
    /* an empty line between pipelined requests is tolerated */
    assert_int_equal(weft_h1_parser_feed(p, buf + off, len - off, &used), WEFT_H1_DONE);
    assert_int_equal(off + used, len);
    assert_string_equal(
        c.log, "REQ POST /one;BODY 3;DONE;REQ GET /two;BODY 3;DONE;REQ POST /three;BODY 4;DONE;"
               "REQ GET /two;BODY 4;DONE;");
    weft_h1_parser_free(p);
    weft_arena_free(&arena);

    /* and the same through every split mode */
    run_out o = req_all(&c, buf);
    assert_int_equal(o.dones, 4);
    assert_int_equal(o.consumed_total, len);
}

static void test_host_rules(void **state) {
    (void)state;
    REQ_ERR("GET / HTTP/1.1\r\n\r\n", 400, "h1_missing_host");
    REQ_ERR("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "h1_missing_host");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "h1_multiple_host");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", 400, "h1_multiple_host");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "h1_bad_host");
    REQ_ERR("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "h1_bad_host");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400, "h1_bad_host");
}

static void test_smuggling(void **state) {
    (void)state;
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400, "h1_cl_and_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            400, "h1_cl_and_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400,
            "h1_multiple_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400,
            "h1_multiple_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nabcde", 400, "h1_bad_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400, "h1_bad_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "h1_bad_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, "h1_bad_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, "h1_bad_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
            "h1_bad_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400, "h1_bad_cl");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400,
            "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "chunked\r\n\r\n0\r\n\r\n",
            400, "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400,
            "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 400,
            "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
            "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400, "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", 400,
            "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
            "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
            "gzip\r\n\r\n",
            400, "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400, "h1_bad_te");
    REQ_ERR("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400, "h1_bad_te");
    REQ_ERR("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
            "h1_te_in_http10");
}

static void test_header_syntax(void **state) {
    (void)state;
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n", 400, "h1_obs_fold");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tfolded\r\n\r\n", 400, "h1_obs_fold");
    REQ_ERR("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "h1_obs_fold");
    REQ_ERR("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "h1_space_before_colon");
    REQ_ERR("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, "h1_space_before_colon");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\0002\r\n\r\n", 400, "h1_bad_header_value");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\0012\r\n\r\n", 400, "h1_bad_header_value");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\1772\r\n\r\n", 400, "h1_bad_header_value");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", 400, "h1_bare_cr");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\n\r\n", 400, "h1_bare_lf");
    REQ_ERR("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "h1_bare_lf");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "h1_bare_lf");
    REQ_ERR("GET / HTTP/1.1\r\nHost: a\r\n\r\r", 400, "h1_bare_cr");
    REQ_ERR("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bare_lf");
    REQ_ERR("GET / HTTP/1.1\r\nHo\001st: a\r\n\r\n", 400, "h1_bad_header_name");
    REQ_ERR("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400, "h1_bad_header_name");
    REQ_ERR("GET / HTTP/1.1\r\n: a\r\n\r\n", 400, "h1_bad_header_name");
    REQ_ERR("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "h1_bad_header_name");
    REQ_ERR("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR("GET /\177 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR("GET /caf\303\251 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR("GET / x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR("GET /\r\nHost: a\r\n\r\n", 400, "h1_bad_request_line");
    REQ_ERR("BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "h1_bad_method");

    /* obs-text in a value and an empty value are both valid */
    col c;
    req_all(&c,
            "GET / HTTP/1.1\r\nHost: a\r\nX-Bin: caf\303\251\r\nX-Empty:\r\nX-After: 1\r\n\r\n");
    assert_int_equal(c.completes, 1);
    assert_string_equal(c.hdrs, "host=a;x-bin=caf\303\251;x-empty=;x-after=1;");
    /* empty lines before the request line are skipped */
    req_all(&c, "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(c.completes, 1);
}

static void test_chunk_errors(void **state) {
    (void)state;
#define CH "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    REQ_ERR(CH "00000000000000003\r\nabc\r\n0\r\n\r\n", 400, "h1_bad_chunk_size");
    REQ_ERR(CH "fffffffffffffffff\r\n", 400, "h1_bad_chunk_size");
    REQ_ERR(CH "g\r\n", 400, "h1_bad_chunk_size");
    REQ_ERR(CH "\r\n", 400, "h1_bad_chunk_size");
    REQ_ERR(CH "-1\r\n", 400, "h1_bad_chunk_size");
    REQ_ERR(CH "3\nabc\r\n0\r\n\r\n", 400, "h1_bare_lf");
    REQ_ERR(CH "3\rabc\r\n0\r\n\r\n", 400, "h1_bare_cr");
    REQ_ERR(CH "3\r\nabcd\r\n0\r\n\r\n", 400, "h1_bad_chunk");
    REQ_ERR(CH "3\r\nabc\n0\r\n\r\n", 400, "h1_bare_lf");
    REQ_ERR(CH "3\r\nabc\r0\r\n\r\n", 400, "h1_bare_cr");
    REQ_ERR(CH "3;a=\001\r\nabc\r\n0\r\n\r\n", 400, "h1_bad_chunk");
    REQ_ERR(CH "0\r\nX: 1\n\r\n", 400, "h1_bare_lf");
    REQ_ERR(CH "0\r\nX: 1\r\n folded\r\n\r\n", 400, "h1_obs_fold");
    REQ_ERR(CH "0\r\nContent-Length: 5\r\n\r\n", 400, "h1_bad_trailer");
    REQ_ERR(CH "0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "h1_bad_trailer");
    REQ_ERR(CH "0\r\nX : 1\r\n\r\n", 400, "h1_space_before_colon");

    weft_h1_limits lim;
    weft_h1_limits_default(&lim);
    lim.max_chunk_ext_bytes = 8;
    const char ok[] = CH "1;abcdef\r\nx\r\n0\r\n\r\n";
    col c;
    run_out o = run_all_ex(&c, WEFT_H1_REQUEST, ok, sizeof(ok) - 1, 0, &lim, false, NULL);
    assert_int_equal(o.dones, 1);
    const char big[] = CH "1;abcdefgh\r\nx\r\n0\r\n\r\n";
    expect_req_error(big, sizeof(big) - 1, 400, "h1_chunk_ext_too_large", &lim);
#undef CH
}

static void test_limits(void **state) {
    (void)state;
    weft_h1_limits lim;
    weft_h1_limits_default(&lim);
    assert_int_equal(lim.max_header_bytes, 60 * 1024);
    assert_int_equal(lim.max_headers, 100);
    assert_int_equal(lim.max_uri_len, 8 * 1024);
    assert_int_equal(lim.max_body_bytes, 0);
    assert_int_equal(lim.max_chunk_ext_bytes, 4 * 1024);

    /* head size: the request line and headers, exactly at the limit ok */
    const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"; /* 27 bytes */
    lim.max_header_bytes = 27;
    col c;
    run_out o = run_all_ex(&c, WEFT_H1_REQUEST, head, sizeof(head) - 1, 0, &lim, false, NULL);
    assert_int_equal(o.dones, 1);
    lim.max_header_bytes = 26;
    expect_req_error(head, sizeof(head) - 1, 431, "h1_header_too_large", &lim);
    /* a head that never ends is refused once it passes the limit */
    lim.max_header_bytes = 64;
    char endless[256];
    memset(endless, 'a', sizeof(endless));
    memcpy(endless, "GET / HTTP/1.1\r\nX: ", 19);
    expect_req_error(endless, sizeof(endless), 431, "h1_header_too_large", &lim);

    weft_h1_limits_default(&lim);
    lim.max_headers = 2;
    const char two[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";
    o = run_all_ex(&c, WEFT_H1_REQUEST, two, sizeof(two) - 1, 0, &lim, false, NULL);
    assert_int_equal(o.dones, 1);
    const char three[] = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n";
    expect_req_error(three, sizeof(three) - 1, 431, "h1_too_many_headers", &lim);

    weft_h1_limits_default(&lim);
    lim.max_uri_len = 6;
    const char u6[] = "GET /12345 HTTP/1.1\r\nHost: a\r\n\r\n";
    o = run_all_ex(&c, WEFT_H1_REQUEST, u6, sizeof(u6) - 1, 0, &lim, false, NULL);
    assert_int_equal(o.dones, 1);
    const char u7[] = "GET /123456 HTTP/1.1\r\nHost: a\r\n\r\n";
    expect_req_error(u7, sizeof(u7) - 1, 414, "h1_uri_too_long", &lim);

    weft_h1_limits_default(&lim);
    lim.max_body_bytes = 4;
    const char cl4[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd";
    o = run_all_ex(&c, WEFT_H1_REQUEST, cl4, sizeof(cl4) - 1, 0, &lim, false, NULL);
    assert_int_equal(o.dones, 1);
    const char cl5[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde";
    expect_req_error(cl5, sizeof(cl5) - 1, 413, "h1_body_too_large", &lim);
    const char ch4[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                       "chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
    o = run_all_ex(&c, WEFT_H1_REQUEST, ch4, sizeof(ch4) - 1, 0, &lim, false, NULL);
    assert_int_equal(o.dones, 1);
    const char ch5[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                       "chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
    expect_req_error(ch5, sizeof(ch5) - 1, 413, "h1_body_too_large", &lim);
    /* a huge declared chunk is refused before any of its bytes arrive */
    const char chbig[] =
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n";
    expect_req_error(chbig, sizeof(chbig) - 1, 413, "h1_body_too_large", &lim);
}

static void test_pause_body(void **state) {
    (void)state;
    col tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.body_rc = WEFT_H1_CB_PAUSE;
    col c;
    const char cl[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET /n "
                      "HTTP/1.1\r\nHost: a\r\n\r\n";
    run_out o = run_all_ex(&c, WEFT_H1_REQUEST, cl, sizeof(cl) - 1, 0, NULL, false, &tmpl);
    assert_int_equal(o.dones, 2);
    assert_int_equal(c.body_len, 10);
    assert_true(c.pauses >= 1);
    const char ch[] =
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n4\r\ndefg\r\n0\r\nT: 1\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n";
    o = run_all_ex(&c, WEFT_H1_REQUEST, ch, sizeof(ch) - 1, 0, NULL, false, &tmpl);
    assert_int_equal(o.dones, 2);
    assert_int_equal(c.body_len, 7);
    assert_memory_equal(c.body, "abcdefg", 7);
    assert_string_equal(c.trailers, "t=1;");

    /* exact semantics: PAUSED with consumed just past the delivered bytes */
    weft_arena arena;
    weft_arena_init(&arena);
    memset(&c, 0, sizeof(c));
    c.body_rc = WEFT_H1_CB_PAUSE;
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, 0);
    size_t used, len = strlen(ch);
    size_t body_at = strstr(ch, "abc") - ch;
    assert_int_equal(weft_h1_parser_feed(p, ch, len, &used), WEFT_H1_PAUSED);
    assert_int_equal(used, body_at + 3);
    assert_true(weft_h1_parser_in_body(p));
    assert_true(weft_h1_parser_needs_feed(p));
    /* feeding again resumes implicitly (no weft_h1_parser_resume call) */
    size_t off = used;
    assert_int_equal(weft_h1_parser_feed(p, ch + off, len - off, &used), WEFT_H1_PAUSED);
    off += used;
    assert_int_equal(c.body_len, 7);
    weft_h1_parser_resume(p);
    assert_int_equal(weft_h1_parser_feed(p, ch + off, len - off, &used), WEFT_H1_DONE);
    off += used;
    assert_memory_equal(ch + off, "GET /n", 6);
    assert_false(weft_h1_parser_in_body(p));
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
}

static void test_pause_head_and_trailers(void **state) {
    (void)state;
    weft_arena arena;
    weft_arena_init(&arena);
    col c;
    memset(&c, 0, sizeof(c));
    c.head_rc = WEFT_H1_CB_PAUSE;
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, 0);
    const char *in = "GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\n";
    size_t used, head = strlen("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(weft_h1_parser_feed(p, in, strlen(in), &used), WEFT_H1_PAUSED);
    assert_int_equal(used, head);
    assert_int_equal(c.completes, 0);
    assert_true(weft_h1_parser_needs_feed(p));
    weft_h1_parser_resume(p);
    /* the message completes on the next feed, even an empty one */
    size_t z = 5;
    assert_int_equal(weft_h1_parser_feed(p, NULL, 0, &z), WEFT_H1_DONE);
    assert_int_equal(z, 0);
    assert_int_equal(c.completes, 1);
    assert_false(weft_h1_parser_needs_feed(p));
    weft_h1_parser_free(p);

    memset(&c, 0, sizeof(c));
    c.trailers_rc = WEFT_H1_CB_PAUSE;
    p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, 0);
    const char *ch = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n1\r\nx\r\n0\r\nT: v\r\n\r\n";
    assert_int_equal(weft_h1_parser_feed(p, ch, strlen(ch), &used), WEFT_H1_PAUSED);
    assert_int_equal(used, strlen(ch));
    assert_int_equal(c.trailer_calls, 1);
    assert_int_equal(c.completes, 0);
    weft_h1_parser_resume(p);
    assert_int_equal(weft_h1_parser_feed(p, ch + used, 0, &z), WEFT_H1_DONE);
    assert_int_equal(c.completes, 1);
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
}

static void test_abort_and_eof(void **state) {
    (void)state;
    col tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.head_rc = WEFT_H1_CB_ABORT;
    col c;
    const char g[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    run_out o = run_all_ex(&c, WEFT_H1_REQUEST, g, sizeof(g) - 1, 0, NULL, false, &tmpl);
    assert_int_equal(o.last, WEFT_H1_ERROR);
    assert_string_equal(o.err_reason, "h1_aborted");

    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.body_rc = WEFT_H1_CB_ABORT;
    const char b[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx";
    o = run_all_ex(&c, WEFT_H1_REQUEST, b, sizeof(b) - 1, 0, NULL, false, &tmpl);
    assert_int_equal(o.last, WEFT_H1_ERROR);
    assert_string_equal(o.err_reason, "h1_aborted");

    /* EOF in the middle of a request is an error; between requests it is not */
    const char half[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab";
    o = run_all_ex(&c, WEFT_H1_REQUEST, half, sizeof(half) - 1, 0, NULL, true, NULL);
    assert_int_equal(o.last, WEFT_H1_ERROR);
    assert_int_equal(o.err_status, 400);
    assert_string_equal(o.err_reason, "h1_premature_eof");
    o = run_all_ex(&c, WEFT_H1_REQUEST, g, sizeof(g) - 1, 0, NULL, true, NULL);
    assert_int_equal(o.last, WEFT_H1_OK);
    assert_int_equal(o.dones, 1);
    const char crlf[] = "\r\n";
    o = run_all_ex(&c, WEFT_H1_REQUEST, crlf, 2, 0, NULL, true, NULL);
    assert_int_equal(o.last, WEFT_H1_OK);

    /* errors are sticky, even across next() */
    weft_arena arena;
    weft_arena_init(&arena);
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, 0);
    size_t used;
    assert_int_equal(weft_h1_parser_feed(p, "GET / HTTP/1.1\nHost: a\r\n\r\n", 26, &used),
                     WEFT_H1_ERROR);
    weft_h1_parser_next(p, &arena, 0);
    assert_int_equal(weft_h1_parser_feed(p, g, sizeof(g) - 1, &used), WEFT_H1_ERROR);
    assert_int_equal(weft_h1_parser_error_status(p), 400);
    assert_string_equal(weft_h1_parser_error_reason(p), "h1_bare_lf");
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
}

static void test_state_flags(void **state) {
    (void)state;
    weft_arena arena;
    weft_arena_init(&arena);
    col c;
    memset(&c, 0, sizeof(c));
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, 0);
    size_t used;
    assert_false(weft_h1_parser_in_message(p));
    assert_int_equal(weft_h1_parser_feed(p, "\r\n", 2, &used), WEFT_H1_OK);
    assert_false(weft_h1_parser_in_message(p));
    assert_int_equal(weft_h1_parser_feed(p, "PO", 2, &used), WEFT_H1_OK);
    assert_true(weft_h1_parser_in_message(p));
    assert_false(weft_h1_parser_in_body(p));
    const char *rest = "ST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\na";
    assert_int_equal(weft_h1_parser_feed(p, rest, strlen(rest), &used), WEFT_H1_OK);
    assert_true(weft_h1_parser_in_body(p));
    assert_int_equal(weft_h1_parser_error_status(p), 0);
    assert_int_equal(weft_h1_parser_feed(p, "b", 1, &used), WEFT_H1_DONE);
    assert_false(weft_h1_parser_in_body(p));
    weft_h1_parser_next(p, &arena, 0);
    assert_false(weft_h1_parser_in_message(p));
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
}

/* ---- responses ---- */

static void expect_resp_error(const char *in, int method, bool eof, const char *reason) {
    col c;
    run_out o = run_all_ex(&c, WEFT_H1_RESPONSE, in, strlen(in), method, NULL, eof, NULL);
    if (o.last != WEFT_H1_ERROR || o.err_status != 502 || strcmp(o.err_reason, reason) != 0)
        fail_msg("input %s: got result %d status %u reason %s, want 502 %s", in, o.last,
                 o.err_status, o.err_reason, reason);
}

static void test_resp_basic(void **state) {
    (void)state;
    col c;
    run_out o = resp_all(&c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello",
                         HTTP_GET, false);
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.reason, "OK");
    assert_int_equal(c.framing, WEFT_BODY_LENGTH);
    assert_int_equal(c.cl, 5);
    assert_true(c.keep_alive);
    assert_memory_equal(c.body, "hello", 5);
    assert_string_equal(c.hdrs, "content-length=5;server=x;");

    o = resp_all(&c, "HTTP/1.1 404 Not  Found Here\r\nContent-Length: 0\r\n\r\n", HTTP_GET, false);
    assert_string_equal(c.reason, "Not  Found Here");
    assert_int_equal(c.framing, WEFT_BODY_NONE);
    /* no reason phrase at all */
    o = resp_all(&c, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", HTTP_GET, false);
    assert_int_equal(o.dones, 1);
    assert_string_equal(c.reason, "");

    o = resp_all(&c,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n4\r\nwxyz\r\n0\r\nGrpc-Status: 0\r\n\r\n",
                 HTTP_POST, false);
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.framing, WEFT_BODY_CHUNKED);
    assert_string_equal(c.trailers, "grpc-status=0;");

    o = resp_all(&c, "HTTP/1.0 200 OK\r\n\r\nuntil the end", HTTP_GET, true);
    assert_int_equal(o.last, WEFT_H1_DONE);
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.framing, WEFT_BODY_UNTIL_CLOSE);
    assert_false(c.keep_alive);
    assert_int_equal(c.body_len, 13);

    o = resp_all(&c, "HTTP/1.1 200 OK\r\n\r\nabc", HTTP_GET, false);
    assert_int_equal(o.last, WEFT_H1_OK);
    assert_int_equal(o.dones, 0);
    assert_int_equal(c.framing, WEFT_BODY_UNTIL_CLOSE);

    o = resp_all(&c, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
                 HTTP_GET, false);
    assert_true(c.keep_alive);
    o = resp_all(&c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", HTTP_GET,
                 false);
    assert_false(c.keep_alive);
}

static void test_resp_bodyless(void **state) {
    (void)state;
    col c;
    /* HEAD: the Content-Length describes the GET body, none follows; the
     * next pipelined response must still parse */
    run_out o =
        resp_all(&c, "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
                 HTTP_HEAD, false);
    assert_int_equal(o.dones, 2);
    assert_int_equal(c.body_len, 0);
    assert_string_equal(c.log, "RESP 200;BODY 0;DONE;RESP 204;BODY 0;DONE;");

    o = resp_all(&c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", HTTP_GET, false);
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.framing, WEFT_BODY_NONE);
    assert_int_equal(c.cl, 10);

    o = resp_all(&c, "HTTP/1.1 204 No Content\r\n\r\n", HTTP_GET, false);
    assert_int_equal(o.dones, 1);
    assert_true(c.keep_alive);

    /* CONNECT 2xx: what follows is the tunnel, never a body */
    weft_arena arena;
    weft_arena_init(&arena);
    memset(&c, 0, sizeof(c));
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_RESPONSE, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, HTTP_CONNECT);
    const char *in = "HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01";
    size_t used;
    assert_int_equal(weft_h1_parser_feed(p, in, strlen(in), &used), WEFT_H1_DONE);
    assert_int_equal(used, strlen(in) - 3);
    assert_int_equal(c.framing, WEFT_BODY_NONE);

    /* 101: final; the rest belongs to the new protocol */
    memset(&c, 0, sizeof(c));
    weft_h1_parser_next(p, &arena, HTTP_GET);
    in = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\n\r\n\x81\x05";
    assert_int_equal(weft_h1_parser_feed(p, in, strlen(in), &used), WEFT_H1_DONE);
    assert_int_equal(used, strlen(in) - 2);
    assert_int_equal(c.heads, 1);
    assert_int_equal(c.completes, 1);

    /* on_resp_head may ask for no body itself */
    memset(&c, 0, sizeof(c));
    c.head_rc = WEFT_H1_CB_SKIP_BODY;
    weft_h1_parser_next(p, &arena, HTTP_GET);
    in = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(weft_h1_parser_feed(p, in, strlen(in), &used), WEFT_H1_DONE);
    assert_int_equal(used, strlen(in) - 3);
    assert_int_equal(c.body_len, 0);

    /* pausing in on_resp_head of a HEAD response still skips the body */
    memset(&c, 0, sizeof(c));
    c.head_rc = WEFT_H1_CB_PAUSE;
    weft_h1_parser_next(p, &arena, HTTP_HEAD);
    assert_int_equal(weft_h1_parser_feed(p, in, strlen(in), &used), WEFT_H1_PAUSED);
    assert_int_equal(used, strlen(in) - 3);
    weft_h1_parser_resume(p);
    size_t z;
    assert_int_equal(weft_h1_parser_feed(p, in + used, 3, &z), WEFT_H1_DONE);
    assert_int_equal(z, 0);
    assert_int_equal(c.body_len, 0);
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
}

static void test_resp_interim(void **state) {
    (void)state;
    col c;
    run_out o =
        resp_all(&c,
                 "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
                 HTTP_POST, false);
    assert_int_equal(o.dones, 1);
    assert_int_equal(c.heads, 3);
    assert_int_equal(c.completes, 1);
    assert_string_equal(c.log, "RESP 100;RESP 103;RESP 200;BODY 2;DONE;");
    assert_int_equal(c.status, 200);
    assert_string_equal(c.hdrs, "content-length=2;");

    /* between interim and final: in a message, not in a body */
    weft_arena arena;
    weft_arena_init(&arena);
    memset(&c, 0, sizeof(c));
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_RESPONSE, NULL, &cbs, &c);
    weft_h1_parser_next(p, &arena, HTTP_POST);
    size_t used;
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
    assert_int_equal(weft_h1_parser_feed(p, cont, strlen(cont), &used), WEFT_H1_OK);
    assert_int_equal(used, strlen(cont));
    assert_int_equal(c.status, 100);
    assert_true(weft_h1_parser_in_message(p));
    assert_false(weft_h1_parser_in_body(p));
    /* EOF after only an interim response is a premature close */
    assert_int_equal(weft_h1_parser_eof(p), WEFT_H1_ERROR);
    assert_string_equal(weft_h1_parser_error_reason(p), "upstream_premature_eof");
    weft_h1_parser_free(p);
    weft_arena_free(&arena);

    expect_resp_error("HTTP/1.0 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n", HTTP_GET, false,
                      "upstream_bad_1xx");
    expect_resp_error("HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
                      HTTP_GET, false, "upstream_bad_1xx");
    char many[2048] = "";
    for (int i = 0; i < 20; i++)
        strcat(many, "HTTP/1.1 100 Continue\r\n\r\n");
    expect_resp_error(many, HTTP_GET, false, "upstream_bad_1xx");
}

static void test_resp_errors(void **state) {
    (void)state;
    expect_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                      HTTP_GET, false, "upstream_cl_and_te");
    expect_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                      HTTP_GET, false, "upstream_multiple_cl");
    expect_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_GET, false,
                      "upstream_bad_te");
    expect_resp_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTP_GET,
                      false, "upstream_bad_te");
    expect_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n",
                      HTTP_GET, false, "upstream_bad_chunk");
    expect_resp_error("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HTTP_GET, false,
                      "upstream_protocol_error");
    expect_resp_error("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", HTTP_GET, false,
                      "upstream_protocol_error");
    expect_resp_error("HTTP/1.1 099 Low\r\n\r\n", HTTP_GET, false, "upstream_bad_status");
    expect_resp_error("HTTP/1.1 600 High\r\n\r\n", HTTP_GET, false, "upstream_bad_status");
    expect_resp_error("HTTP/1.1  200 OK\r\n\r\n", HTTP_GET, false, "upstream_bad_status_line");
    expect_resp_error("HTTP/1.1 20 OK\r\n\r\n", HTTP_GET, false, "upstream_bad_status_line");
    expect_resp_error("HTTP/2.0 200 OK\r\n\r\n", HTTP_GET, false, "upstream_bad_version");
    expect_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", HTTP_GET, true,
                      "upstream_premature_eof");
    expect_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", HTTP_GET,
                      true, "upstream_premature_eof");
    expect_resp_error("HTTP/1.1 200 OK\r\nContent-", HTTP_GET, true, "upstream_premature_eof");

    weft_h1_limits lim;
    weft_h1_limits_default(&lim);
    lim.max_header_bytes = 20;
    col c;
    const char big[] = "HTTP/1.1 200 OK\r\nServer: something long\r\n\r\n";
    run_out o = run_all_ex(&c, WEFT_H1_RESPONSE, big, sizeof(big) - 1, HTTP_GET, &lim, false, NULL);
    assert_int_equal(o.err_status, 502);
    assert_string_equal(o.err_reason, "upstream_header_too_large");

    /* a body read until close is counted against the limit as it arrives */
    weft_h1_limits_default(&lim);
    lim.max_body_bytes = 4;
    const char uc[] = "HTTP/1.1 200 OK\r\n\r\nabcdef";
    o = run_all_ex(&c, WEFT_H1_RESPONSE, uc, sizeof(uc) - 1, HTTP_GET, &lim, false, NULL);
    assert_int_equal(o.err_status, 502);
    assert_string_equal(o.err_reason, "upstream_body_too_large");
}

/* Which heads the one pass takes: the common ones (whole in one feed),
 * not those it leaves to llhttp; either way the results are the same
 * (run_both, for every test above). */
static uint32_t one_pass_heads(weft_h1_kind kind, const char *in, int method_id, size_t step) {
    col c;
    memset(&c, 0, sizeof(c));
    weft_arena arena;
    weft_arena_init(&arena);
    weft_h1_parser *p = weft_h1_parser_new(kind, NULL, &cbs, &c);
    assert_non_null(p);
    weft_h1_parser_next(p, &arena, method_id);
    size_t len = strlen(in), off = 0;
    for (int guard = 0; guard < 1000 && off < len; guard++) {
        size_t n = step && len - off > step ? step : len - off, used = 0;
        weft_h1_result r = weft_h1_parser_feed(p, in + off, n, &used);
        off += used;
        if (r == WEFT_H1_DONE) {
            weft_arena_reset(&arena);
            weft_h1_parser_next(p, &arena, method_id);
        } else if (r == WEFT_H1_ERROR) {
            break;
        }
    }
    uint32_t k = weft_h1_parser_one_pass_heads(p);
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
    return k;
}

static void test_one_pass_taken(void **state) {
    (void)state;
    const weft_h1_kind Q = WEFT_H1_REQUEST, S = WEFT_H1_RESPONSE;
    /* taken */
    assert_int_equal(one_pass_heads(Q,
                                    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                                    "GET /x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                    "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok"
                                    "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                    "\r\n2\r\nok\r\n0\r\n\r\n",
                                    0, 0),
                     4);
    assert_int_equal(one_pass_heads(S,
                                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                    "Connection: keep-alive\r\n\r\nok"
                                    "HTTP/1.1 204 No Content\r\n\r\n"
                                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "0\r\n\r\n",
                                    HTTP_GET, 0),
                     3);
    assert_int_equal(
        one_pass_heads(S, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", HTTP_HEAD, 0), 1);
    /* left to llhttp: cut by the read, absolute-form, CONNECT, Upgrade, a
     * Connection list, TE or CL in another shape, 1xx, until close, a
     * refusal */
    assert_int_equal(one_pass_heads(Q, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, 5), 0);
    assert_int_equal(one_pass_heads(Q, "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 0, 0), 0);
    assert_int_equal(one_pass_heads(Q, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 0, 0), 0);
    assert_int_equal(
        one_pass_heads(Q, "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n",
                       0, 0),
        0);
    assert_int_equal(
        one_pass_heads(Q, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, te\r\n\r\n", 0, 0), 0);
    assert_int_equal(
        one_pass_heads(
            Q, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\t\r\n\r\n0\r\n\r\n", 0, 0),
        0);
    assert_int_equal(
        one_pass_heads(Q, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t1\r\n\r\nx", 0, 0), 0);
    assert_int_equal(one_pass_heads(S, "HTTP/1.1 100 Continue\r\n\r\n", HTTP_GET, 0), 0);
    assert_int_equal(one_pass_heads(S, "HTTP/1.1 200 OK\r\n\r\nbody", HTTP_GET, 0), 0);
    assert_int_equal(one_pass_heads(Q, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, 0), 0);
}

/* Every byte in a target's path and query, a field name and a field value
 * gives the same result with and without the one pass (run_both). */
static void test_one_pass_bytes(void **state) {
    (void)state;
    for (int b = 1; b < 256; b++) {
        char in[160];
        col c;
        int n = snprintf(in, sizeof(in), "GET /a%cb?c%cd HTTP/1.1\r\nHost: h\r\n\r\n", b, b);
        run_all_ex(&c, WEFT_H1_REQUEST, in, (size_t)n, 0, NULL, false, NULL);
        n = snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\nx%cy: v%cw\r\n\r\n", b, b);
        run_all_ex(&c, WEFT_H1_REQUEST, in, (size_t)n, 0, NULL, false, NULL);
        n = snprintf(in, sizeof(in),
                     "HTTP/1.1 200 O%cK\r\nContent-Length: 0\r\nConnection: %cclose\r\n\r\n", b, b);
        run_all_ex(&c, WEFT_H1_RESPONSE, in, (size_t)n, HTTP_GET, NULL, false, NULL);
        n = snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1%c\r\n\r\nxy",
                     b);
        run_all_ex(&c, WEFT_H1_REQUEST, in, (size_t)n, 0, NULL, false, NULL);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_target_forms),
        cmocka_unit_test(test_versions_keepalive),
        cmocka_unit_test(test_expect_upgrade),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_pipelining_consumed),
        cmocka_unit_test(test_host_rules),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_header_syntax),
        cmocka_unit_test(test_chunk_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_pause_body),
        cmocka_unit_test(test_pause_head_and_trailers),
        cmocka_unit_test(test_abort_and_eof),
        cmocka_unit_test(test_state_flags),
        cmocka_unit_test(test_resp_basic),
        cmocka_unit_test(test_resp_bodyless),
        cmocka_unit_test(test_resp_interim),
        cmocka_unit_test(test_resp_errors),
        cmocka_unit_test(test_one_pass_taken),
        cmocka_unit_test(test_one_pass_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
