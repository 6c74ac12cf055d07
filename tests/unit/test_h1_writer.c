/* test_h1_writer.c: heads and chunked framing on the wire, refusal of
 * values that would split a message, and writer -> parser round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http/h1/h1_codec.h"

/* Drains the evbuffer into a NUL-terminated string the test frees. */
static char *drain(struct evbuffer *b) {
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static void expect_out(struct evbuffer *b, const char *want) {
    char *got = drain(b);
    assert_string_equal(got, want);
    free(got);
}

static void test_req_head(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_req_head r;
    memset(&r, 0, sizeof(r));
    r.method = WEFT_SV_LIT("POST");
    r.target = WEFT_SV_LIT("/api/v1/items?x=1");
    weft_hdrs_init(&r.headers, &a);
    weft_hdrs_add(&r.headers, WEFT_SV_LIT("Host"), WEFT_SV_LIT("items.svc"));
    weft_hdrs_add(&r.headers, WEFT_SV_LIT("content-length"), WEFT_SV_LIT("3"));
    struct evbuffer *b = evbuffer_new();

    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), 0);
    expect_out(b,
               "POST /api/v1/items?x=1 HTTP/1.1\r\nhost: items.svc\r\ncontent-length: 3\r\n\r\n");

    /* target override (prefix rewrite); 1.0 requests go out as 1.1 */
    weft_sv t = WEFT_SV_LIT("/items?x=1");
    r.http_minor = 0;
    assert_int_equal(weft_h1_write_req_head(b, &r, &t), 0);
    expect_out(b, "POST /items?x=1 HTTP/1.1\r\nhost: items.svc\r\ncontent-length: 3\r\n\r\n");

    /* no headers at all */
    weft_hdrs_init(&r.headers, &a);
    r.method = WEFT_SV_LIT("GET");
    r.target = WEFT_SV_LIT("/");
    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), 0);
    expect_out(b, "GET / HTTP/1.1\r\n\r\n");
    evbuffer_free(b);
    weft_arena_free(&a);
}

static void test_req_head_refuses_injection(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_req_head r;
    memset(&r, 0, sizeof(r));
    r.method = WEFT_SV_LIT("GET");
    r.target = WEFT_SV_LIT("/");
    weft_hdrs_init(&r.headers, &a);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "pre", 3);

    weft_hdrs_add(&r.headers, WEFT_SV_LIT("x-a"), WEFT_SV_LIT("1\r\nInjected: yes"));
    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), -1);
    weft_hdrs_set(&r.headers, WEFT_SV_LIT("x-a"), WEFT_SV_LIT("bare\nlf"));
    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), -1);
    weft_hdrs_set(&r.headers, WEFT_SV_LIT("x-a"), (weft_sv){"nul\0x", 5});
    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), -1);
    weft_hdrs_init(&r.headers, &a);
    weft_hdrs_add(&r.headers, WEFT_SV_LIT("bad name"), WEFT_SV_LIT("v"));
    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), -1);
    weft_hdrs_init(&r.headers, &a);
    weft_hdrs_add(&r.headers, WEFT_SV_LIT(""), WEFT_SV_LIT("v"));
    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), -1);
    weft_hdrs_init(&r.headers, &a);
    weft_sv t = WEFT_SV_LIT("/a b");
    assert_int_equal(weft_h1_write_req_head(b, &r, &t), -1);
    t = WEFT_SV_LIT("/a\r\nX: y");
    assert_int_equal(weft_h1_write_req_head(b, &r, &t), -1);
    t = WEFT_SV_LIT("");
    assert_int_equal(weft_h1_write_req_head(b, &r, &t), -1);
    r.method = WEFT_SV_LIT("GE T");
    assert_int_equal(weft_h1_write_req_head(b, &r, NULL), -1);
    /* nothing was appended by any refused write */
    expect_out(b, "pre");
    evbuffer_free(b);
    weft_arena_free(&a);
}

static void test_resp_head(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_resp_head r;
    memset(&r, 0, sizeof(r));
    r.status = 404;
    r.reason = WEFT_SV_LIT("Nope");
    weft_hdrs_init(&r.headers, &a);
    weft_hdrs_add(&r.headers, WEFT_SV_LIT("content-length"), WEFT_SV_LIT("0"));
    weft_hdrs_add(&r.headers, WEFT_SV_LIT("x-weft-reason"), WEFT_SV_LIT("no_route"));
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(weft_h1_write_resp_head(b, &r), 0);
    expect_out(b, "HTTP/1.1 404 Nope\r\ncontent-length: 0\r\nx-weft-reason: no_route\r\n\r\n");

    /* no reason given: the standard one */
    r.reason = (weft_sv){NULL, 0};
    r.status = 503;
    weft_hdrs_init(&r.headers, &a);
    assert_int_equal(weft_h1_write_resp_head(b, &r), 0);
    expect_out(b, "HTTP/1.1 503 Service Unavailable\r\n\r\n");
    r.status = 299;
    assert_int_equal(weft_h1_write_resp_head(b, &r), 0);
    expect_out(b, "HTTP/1.1 299 \r\n\r\n");

    r.status = 99;
    assert_int_equal(weft_h1_write_resp_head(b, &r), -1);
    r.status = 200;
    r.reason = WEFT_SV_LIT("OK\r\nX: y");
    assert_int_equal(weft_h1_write_resp_head(b, &r), -1);
    r.reason = WEFT_SV_LIT("OK");
    weft_hdrs_add(&r.headers, WEFT_SV_LIT("set-cookie"), WEFT_SV_LIT("a\rb"));
    assert_int_equal(weft_h1_write_resp_head(b, &r), -1);
    assert_int_equal(evbuffer_get_length(b), 0);
    evbuffer_free(b);
    weft_arena_free(&a);
}

/* Every byte value at every position of values long enough for the
 * word-at-a-time check (and its tail): accepted exactly when the bytewise
 * rule (HTAB, SP, VCHAR, obs-text) accepts it; refusals append nothing. */
static void test_value_bytes_exhaustive(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_resp_head r;
    memset(&r, 0, sizeof(r));
    r.status = 200;
    struct evbuffer *b = evbuffer_new();
    char v[19];
    for (size_t len = 7; len <= sizeof(v); len += 6) {
        for (size_t pos = 0; pos < len; pos++) {
            for (int c = 0; c < 256; c++) {
                memset(v, 'a', sizeof(v));
                v[(pos + 3) % len] = (char)0xff; /* obs-text is always fine */
                if ((pos + 3) % len != pos)
                    v[pos] = (char)c;
                else
                    continue;
                weft_hdrs_init(&r.headers, &a);
                weft_hdrs_add_ref(&r.headers, WEFT_SV_LIT("x-v"), (weft_sv){v, len});
                bool ok = (c >= 0x20 || c == '\t') && c != 0x7f;
                assert_int_equal(weft_h1_write_resp_head(b, &r), ok ? 0 : -1);
                assert_int_equal(evbuffer_get_length(b) == 0, !ok);
                evbuffer_drain(b, evbuffer_get_length(b));
                r.reason = (weft_sv){v, len};
                weft_hdrs_init(&r.headers, &a);
                assert_int_equal(weft_h1_write_resp_head(b, &r), ok ? 0 : -1);
                evbuffer_drain(b, evbuffer_get_length(b));
                r.reason = (weft_sv){NULL, 0};
            }
        }
    }
    /* three-digit status lines from 100 to 999 */
    weft_hdrs_init(&r.headers, &a);
    r.reason = WEFT_SV_LIT("R");
    for (unsigned st = 100; st <= 999; st += 101) {
        r.status = (uint16_t)st;
        char want[32];
        snprintf(want, sizeof(want), "HTTP/1.1 %03u R\r\n\r\n", st);
        assert_int_equal(weft_h1_write_resp_head(b, &r), 0);
        expect_out(b, want);
    }
    r.status = 1000;
    assert_int_equal(weft_h1_write_resp_head(b, &r), -1);
    evbuffer_free(b);
    weft_arena_free(&a);
}

static void test_chunks(void **state) {
    (void)state;
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(weft_h1_write_chunk(b, "hello", 5), 0);
    expect_out(b, "5\r\nhello\r\n");

    char big[4096];
    memset(big, 'x', sizeof(big));
    assert_int_equal(weft_h1_write_chunk(b, big, 255), 0);
    assert_int_equal(evbuffer_get_length(b), 2 + 2 + 255 + 2);
    char head[5] = {0};
    evbuffer_copyout(b, head, 4);
    assert_string_equal(head, "ff\r\n");
    evbuffer_drain(b, evbuffer_get_length(b));
    assert_int_equal(weft_h1_write_chunk(b, big, 4096), 0);
    evbuffer_copyout(b, head, 4);
    assert_memory_equal(head, "1000", 4);
    evbuffer_drain(b, evbuffer_get_length(b));

    assert_int_equal(weft_h1_write_chunk(b, "x", 0), -1);
    assert_int_equal(evbuffer_get_length(b), 0);

    assert_int_equal(weft_h1_write_last_chunk(b, NULL), 0);
    expect_out(b, "0\r\n\r\n");

    weft_arena a;
    weft_arena_init(&a);
    weft_hdrs t;
    weft_hdrs_init(&t, &a);
    assert_int_equal(weft_h1_write_last_chunk(b, &t), 0);
    expect_out(b, "0\r\n\r\n");
    weft_hdrs_add(&t, WEFT_SV_LIT("grpc-status"), WEFT_SV_LIT("0"));
    weft_hdrs_add(&t, WEFT_SV_LIT("grpc-message"), WEFT_SV_LIT("ok"));
    assert_int_equal(weft_h1_write_last_chunk(b, &t), 0);
    expect_out(b, "0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n");
    weft_hdrs_add(&t, WEFT_SV_LIT("x"), WEFT_SV_LIT("a\nb"));
    assert_int_equal(weft_h1_write_last_chunk(b, &t), -1);
    assert_int_equal(evbuffer_get_length(b), 0);
    weft_arena_free(&a);
    evbuffer_free(b);
}

/* ---- round trip: parse, write back, parse again ---- */

typedef struct {
    weft_arena *arena;
    struct evbuffer *out;
    weft_hdrs trailers;
    bool chunked;
    bool have_trailers;
    int completes;
    char seen[512];
} rt;

static int rt_req_head(void *ud, weft_req_head *r) {
    rt *c = ud;
    c->chunked = r->framing == WEFT_BODY_CHUNKED;
    snprintf(c->seen, sizeof(c->seen), "%.*s %.*s %u %d %lld", (int)r->method.len, r->method.p,
             (int)r->target.len, r->target.p, r->headers.n, r->framing,
             (long long)r->content_length);
    assert_int_equal(weft_h1_write_req_head(c->out, r, NULL), 0);
    return WEFT_H1_CB_OK;
}

static int rt_body(void *ud, const char *p, size_t n) {
    rt *c = ud;
    if (c->chunked)
        assert_int_equal(weft_h1_write_chunk(c->out, p, n), 0);
    else
        evbuffer_add(c->out, p, n);
    return WEFT_H1_CB_OK;
}

static int rt_trailers(void *ud, weft_hdrs *t) {
    rt *c = ud;
    c->trailers = *t;
    c->have_trailers = true;
    return WEFT_H1_CB_OK;
}

static int rt_complete(void *ud) {
    rt *c = ud;
    if (c->chunked)
        assert_int_equal(weft_h1_write_last_chunk(c->out, c->have_trailers ? &c->trailers : NULL),
                         0);
    c->completes++;
    return WEFT_H1_CB_OK;
}

static void round_trip(const char *in, const char *want_wire) {
    weft_h1_callbacks cbs = {rt_req_head, NULL, rt_body, rt_trailers, rt_complete};
    weft_arena a;
    weft_arena_init(&a);
    rt c1 = {&a, evbuffer_new(), {0}, false, false, 0, ""};
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c1);
    weft_h1_parser_next(p, &a, 0);
    size_t used;
    assert_int_equal(weft_h1_parser_feed(p, in, strlen(in), &used), WEFT_H1_DONE);
    char *wire = drain(c1.out);
    if (want_wire)
        assert_string_equal(wire, want_wire);

    rt c2 = {&a, evbuffer_new(), {0}, false, false, 0, ""};
    weft_h1_parser *q = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c2);
    weft_h1_parser_next(q, &a, 0);
    assert_int_equal(weft_h1_parser_feed(q, wire, strlen(wire), &used), WEFT_H1_DONE);
    assert_int_equal(used, strlen(wire));
    assert_string_equal(c1.seen, c2.seen);
    char *wire2 = drain(c2.out);
    assert_string_equal(wire, wire2); /* writing is a fixed point */
    free(wire);
    free(wire2);
    evbuffer_free(c1.out);
    evbuffer_free(c2.out);
    weft_h1_parser_free(p);
    weft_h1_parser_free(q);
    weft_arena_free(&a);
}

static void test_round_trip(void **state) {
    (void)state;
    round_trip("GET /x?y=1 HTTP/1.1\r\nHost: a\r\nAccept:  */*  \r\n\r\n",
               "GET /x?y=1 HTTP/1.1\r\nhost: a\r\naccept: */*\r\n\r\n");
    round_trip("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
               "POST /p HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n\r\nbody");
    round_trip("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 9\r\n\r\n",
               "POST /c HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-sum: 9\r\n\r\n");
}

/* ---- the parser's checked fields ---- */

typedef struct {
    weft_req_head req;
    weft_hdrs trailers;
    bool have_trailers;
} ck;

static int ck_req_head(void *ud, weft_req_head *r) {
    ((ck *)ud)->req = *r;
    return WEFT_H1_CB_OK;
}

static int ck_trailers(void *ud, weft_hdrs *t) {
    ck *c = ud;
    c->trailers = *t;
    c->have_trailers = true;
    return WEFT_H1_CB_OK;
}

/* The fields the parser read are marked checked (the writer does not check
 * them again); everything added, set or moved after that is still checked,
 * and removals keep the count of checked fields in step. */
static void test_checked_prefix(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    ck c;
    memset(&c, 0, sizeof(c));
    weft_h1_callbacks cbs = {ck_req_head, NULL, NULL, ck_trailers, NULL};
    weft_h1_parser *p = weft_h1_parser_new(WEFT_H1_REQUEST, NULL, &cbs, &c);
    weft_h1_parser_next(p, &a, 0);
    const char *in = "POST / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nConnection: x-c\r\nX-C: 3\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-T: t\r\n\r\n";
    size_t used;
    assert_int_equal(weft_h1_parser_feed(p, in, strlen(in), &used), WEFT_H1_DONE);
    weft_hdrs *h = &c.req.headers;
    assert_int_equal(h->n, 5);
    assert_int_equal(h->checked, 5);
    assert_true(c.have_trailers);
    assert_int_equal(c.trailers.n, 1);
    assert_int_equal(c.trailers.checked, 1);

    /* the hop-by-hop strip drops connection, x-c and transfer-encoding */
    weft_hdrs_strip_hop_by_hop(h);
    assert_int_equal(h->n, 2);
    assert_int_equal(h->checked, 2);
    /* additions go after the checked fields and are checked */
    weft_hdrs_add(h, WEFT_SV_LIT("x-b"), WEFT_SV_LIT("1\r\nInjected: yes"));
    assert_int_equal(h->checked, 2);
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(weft_h1_write_req_head(b, &c.req, NULL), -1);
    /* removing a checked field before the bad one keeps the bad one checked */
    assert_int_equal(weft_hdrs_remove(h, WEFT_SV_LIT("host")), 1);
    assert_int_equal(h->n, 2);
    assert_int_equal(h->checked, 1);
    assert_int_equal(weft_h1_write_req_head(b, &c.req, NULL), -1);
    assert_int_equal(weft_hdrs_remove(h, WEFT_SV_LIT("x-b")), 1);
    assert_int_equal(h->checked, 1);
    assert_int_equal(weft_h1_write_req_head(b, &c.req, NULL), 0);
    expect_out(b, "POST / HTTP/1.1\r\nx-a: 1\r\n\r\n");
    /* setting a checked field's value moves it after the checked ones */
    weft_hdrs_set(h, WEFT_SV_LIT("x-a"), WEFT_SV_LIT("bare\nlf"));
    assert_int_equal(h->checked, 0);
    assert_int_equal(weft_h1_write_req_head(b, &c.req, NULL), -1);
    weft_hdrs_set(h, WEFT_SV_LIT("X-A"), WEFT_SV_LIT("2"));
    assert_int_equal(weft_h1_write_req_head(b, &c.req, NULL), 0);
    expect_out(b, "POST / HTTP/1.1\r\nx-a: 2\r\n\r\n");
    /* trailers too */
    weft_hdrs_add(&c.trailers, WEFT_SV_LIT("x-u"), WEFT_SV_LIT("a\rb"));
    assert_int_equal(weft_h1_write_last_chunk(b, &c.trailers), -1);
    weft_hdrs_remove(&c.trailers, WEFT_SV_LIT("x-u"));
    assert_int_equal(weft_h1_write_last_chunk(b, &c.trailers), 0);
    expect_out(b, "0\r\nx-t: t\r\n\r\n");
    /* a list that did not come from the parser is checked whole */
    weft_hdrs fresh;
    weft_hdrs_init(&fresh, &a);
    assert_int_equal(fresh.checked, 0);
    /* weft's own fields join the checked prefix only right after it */
    weft_hdrs_add_ref_checked(&fresh, WEFT_SV_LIT("via"), WEFT_SV_LIT("1.1 weft"));
    assert_int_equal(fresh.checked, 1);
    weft_hdrs_add_ref(&fresh, WEFT_SV_LIT("x-f"), WEFT_SV_LIT("from\na filter"));
    weft_hdrs_add_ref_checked(&fresh, WEFT_SV_LIT("x-w"), WEFT_SV_LIT("w"));
    assert_int_equal(fresh.n, 3);
    assert_int_equal(fresh.checked, 1);
    assert_int_equal(weft_h1_write_last_chunk(b, &fresh), -1);
    assert_int_equal(evbuffer_get_length(b), 0);
    evbuffer_free(b);
    weft_h1_parser_free(p);
    weft_arena_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_req_head),
        cmocka_unit_test(test_req_head_refuses_injection),
        cmocka_unit_test(test_resp_head),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_value_bytes_exhaustive),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_checked_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
