/* test_message.c: header list operations, hop-by-hop stripping, status
 * helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/message.h"

static void dump(const weft_hdrs *h, char *out, size_t cap) {
    out[0] = '\0';
    for (uint32_t i = 0; i < h->n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%.*s=%.*s;", (int)h->v[i].name.len, h->v[i].name.p,
                 (int)h->v[i].value.len, h->v[i].value.p);
    }
}

static void test_add_copies_and_lowercases(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_hdrs h;
    weft_hdrs_init(&h, &a);
    char name[] = "X-Request-ID";
    char value[] = "Abc-123";
    assert_int_equal(weft_hdrs_add(&h, weft_sv_from(name), weft_sv_from(value)), 0);
    /* the list owns copies: changing the caller's buffers changes nothing */
    memset(name, 'z', sizeof(name) - 1);
    memset(value, 'z', sizeof(value) - 1);
    assert_int_equal(h.n, 1);
    assert_true(weft_sv_eq(h.v[0].name, WEFT_SV_LIT("x-request-id")));
    assert_true(weft_sv_eq(h.v[0].value, WEFT_SV_LIT("Abc-123")));
    const weft_sv *v = weft_hdrs_get(&h, WEFT_SV_LIT("X-REQUEST-id"));
    assert_non_null(v);
    assert_true(weft_sv_eq(*v, WEFT_SV_LIT("Abc-123")));
    assert_null(weft_hdrs_get(&h, WEFT_SV_LIT("x-request")));

    /* add_ref keeps the caller's views as they are */
    static const char keep[] = "kept";
    assert_int_equal(weft_hdrs_add_ref(&h, WEFT_SV_LIT("via"), (weft_sv){keep, 4}), 0);
    assert_ptr_equal(h.v[1].value.p, keep);
    weft_arena_free(&a);
}

static void test_growth_keeps_order(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_hdrs h;
    weft_hdrs_init(&h, &a);
    char n[16], v[16];
    for (int i = 0; i < 300; i++) {
        snprintf(n, sizeof(n), "H%d", i % 7);
        snprintf(v, sizeof(v), "%d", i);
        assert_int_equal(weft_hdrs_add(&h, weft_sv_from(n), weft_sv_from(v)), 0);
    }
    assert_int_equal(h.n, 300);
    assert_true(h.cap >= 300);
    for (int i = 0; i < 300; i++) {
        snprintf(v, sizeof(v), "%d", i);
        assert_true(weft_sv_eq(h.v[i].value, weft_sv_from(v)));
    }
    assert_int_equal(weft_hdrs_count(&h, WEFT_SV_LIT("h3")), 43);
    weft_arena_free(&a);
}

static void test_set_remove_count(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_hdrs h;
    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("a"), WEFT_SV_LIT("1"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Set-Cookie"), WEFT_SV_LIT("x=1"));
    weft_hdrs_add(&h, WEFT_SV_LIT("b"), WEFT_SV_LIT("2"));
    weft_hdrs_add(&h, WEFT_SV_LIT("set-cookie"), WEFT_SV_LIT("y=2"));
    weft_hdrs_add(&h, WEFT_SV_LIT("c"), WEFT_SV_LIT("3"));
    assert_int_equal(weft_hdrs_count(&h, WEFT_SV_LIT("SET-COOKIE")), 2);
    assert_int_equal(weft_hdrs_count(&h, WEFT_SV_LIT("nope")), 0);
    char buf[256];

    assert_int_equal(weft_hdrs_remove(&h, WEFT_SV_LIT("Set-Cookie")), 2);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "a=1;b=2;c=3;");
    assert_int_equal(weft_hdrs_remove(&h, WEFT_SV_LIT("set-cookie")), 0);

    weft_hdrs_add(&h, WEFT_SV_LIT("b"), WEFT_SV_LIT("again"));
    assert_int_equal(weft_hdrs_set(&h, WEFT_SV_LIT("B"), WEFT_SV_LIT("only")), 0);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "a=1;c=3;b=only;");
    assert_int_equal(weft_hdrs_set(&h, WEFT_SV_LIT("new"), WEFT_SV_LIT("v")), 0);
    assert_int_equal(h.n, 4);
    weft_arena_free(&a);
}

static void test_has_token(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_hdrs h;
    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("Connection"), WEFT_SV_LIT("keep-alive , Upgrade"));
    weft_hdrs_add(&h, WEFT_SV_LIT("connection"), WEFT_SV_LIT(",,x-foo\t"));
    assert_true(weft_hdrs_has_token(&h, WEFT_SV_LIT("connection"), WEFT_SV_LIT("upgrade")));
    assert_true(weft_hdrs_has_token(&h, WEFT_SV_LIT("CONNECTION"), WEFT_SV_LIT("Keep-Alive")));
    assert_true(weft_hdrs_has_token(&h, WEFT_SV_LIT("connection"), WEFT_SV_LIT("x-foo")));
    assert_false(weft_hdrs_has_token(&h, WEFT_SV_LIT("connection"), WEFT_SV_LIT("keep")));
    assert_false(weft_hdrs_has_token(&h, WEFT_SV_LIT("connection"), WEFT_SV_LIT("close")));
    assert_false(weft_hdrs_has_token(&h, WEFT_SV_LIT("upgrade"), WEFT_SV_LIT("upgrade")));
    weft_arena_free(&a);
}

static void test_strip_hop_by_hop(void **state) {
    (void)state;
    weft_arena a;
    weft_arena_init(&a);
    weft_hdrs h;
    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("Host"), WEFT_SV_LIT("svc"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Connection"),
                  WEFT_SV_LIT("keep-alive, X-Secret, host, content-length"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Keep-Alive"), WEFT_SV_LIT("timeout=5"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Proxy-Connection"), WEFT_SV_LIT("close"));
    weft_hdrs_add(&h, WEFT_SV_LIT("TE"), WEFT_SV_LIT("gzip, trailers"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Trailer"), WEFT_SV_LIT("grpc-status"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Transfer-Encoding"), WEFT_SV_LIT("chunked"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Upgrade"), WEFT_SV_LIT("websocket"));
    weft_hdrs_add(&h, WEFT_SV_LIT("x-secret"), WEFT_SV_LIT("s"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Content-Length"), WEFT_SV_LIT("5"));
    weft_hdrs_add(&h, WEFT_SV_LIT("Proxy-Authenticate"), WEFT_SV_LIT("Basic"));
    weft_hdrs_add(&h, WEFT_SV_LIT("x-keep"), WEFT_SV_LIT("k"));
    weft_hdrs_strip_hop_by_hop(&h);
    char buf[512];
    dump(&h, buf, sizeof(buf));
    /* host and content-length survive even when Connection names them;
     * te is reduced to "trailers" */
    assert_string_equal(buf,
                        "host=svc;content-length=5;proxy-authenticate=Basic;x-keep=k;te=trailers;");

    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("te"), WEFT_SV_LIT("gzip"));
    weft_hdrs_add(&h, WEFT_SV_LIT("te"), WEFT_SV_LIT("deflate"));
    weft_hdrs_add(&h, WEFT_SV_LIT("a"), WEFT_SV_LIT("1"));
    weft_hdrs_strip_hop_by_hop(&h);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "a=1;");

    /* several te headers with trailers still give exactly one */
    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("te"), WEFT_SV_LIT("trailers"));
    weft_hdrs_add(&h, WEFT_SV_LIT("connection"), WEFT_SV_LIT("te"));
    weft_hdrs_add(&h, WEFT_SV_LIT("te"), WEFT_SV_LIT("Trailers"));
    weft_hdrs_strip_hop_by_hop(&h);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "te=trailers;");

    /* a header named by a Connection header that precedes a kept header
     * is still stripped (the Connection value is not lost while the list
     * is compacted); names given by reference keep their case */
    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("connection"), WEFT_SV_LIT("x-foo"));
    weft_hdrs_add(&h, WEFT_SV_LIT("a"), WEFT_SV_LIT("1"));
    weft_hdrs_add_ref(&h, WEFT_SV_LIT("X-Foo"), WEFT_SV_LIT("2"));
    weft_hdrs_add_ref(&h, WEFT_SV_LIT("Transfer-Encoding"), WEFT_SV_LIT("chunked"));
    weft_hdrs_add(&h, WEFT_SV_LIT("b"), WEFT_SV_LIT("3"));
    weft_hdrs_add_ref(&h, WEFT_SV_LIT("TE"), WEFT_SV_LIT("TRAILERS"));
    weft_hdrs_strip_hop_by_hop(&h);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "a=1;b=3;te=trailers;");

    /* more Connection headers than the fast path remembers */
    weft_hdrs_init(&h, &a);
    for (int i = 0; i < 12; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "x-%d", i);
        weft_hdrs_add(&h, WEFT_SV_LIT("connection"), weft_sv_from(nm));
        weft_hdrs_add(&h, WEFT_SV_LIT("keep"), WEFT_SV_LIT("k"));
    }
    weft_hdrs_add(&h, WEFT_SV_LIT("x-0"), WEFT_SV_LIT("0"));
    weft_hdrs_add(&h, WEFT_SV_LIT("x-11"), WEFT_SV_LIT("11"));
    weft_hdrs_add(&h, WEFT_SV_LIT("x-12"), WEFT_SV_LIT("12"));
    weft_hdrs_strip_hop_by_hop(&h);
    assert_int_equal(h.n, 13);
    assert_int_equal(weft_hdrs_count(&h, WEFT_SV_LIT("keep")), 12);
    assert_non_null(weft_hdrs_get(&h, WEFT_SV_LIT("x-12")));
    assert_null(weft_hdrs_get(&h, WEFT_SV_LIT("x-11")));
    assert_null(weft_hdrs_get(&h, WEFT_SV_LIT("x-0")));

    /* more Connection tokens than the fast path keeps (16), in one header */
    weft_hdrs_init(&h, &a);
    char list[256];
    size_t len = 0;
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%sx-%d", i ? " ,\t" : "", i);
    weft_hdrs_add(&h, WEFT_SV_LIT("x-0"), WEFT_SV_LIT("0"));
    weft_hdrs_add(&h, WEFT_SV_LIT("connection"), (weft_sv){list, len});
    weft_hdrs_add(&h, WEFT_SV_LIT("x-19"), WEFT_SV_LIT("19"));
    weft_hdrs_add(&h, WEFT_SV_LIT("x-20"), WEFT_SV_LIT("20"));
    weft_hdrs_add(&h, WEFT_SV_LIT("x-15"), WEFT_SV_LIT("15"));
    weft_hdrs_strip_hop_by_hop(&h);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "x-20=20;");

    /* tokens in any case; ones naming fixed hop-by-hop headers, host or
     * content-length change nothing; a name given by reference in capitals */
    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("connection"),
                  WEFT_SV_LIT("Keep-Alive, HOST, X-A, Content-Length, te, close"));
    weft_hdrs_add(&h, WEFT_SV_LIT("host"), WEFT_SV_LIT("h"));
    weft_hdrs_add_ref(&h, WEFT_SV_LIT("X-A"), WEFT_SV_LIT("a"));
    weft_hdrs_add(&h, WEFT_SV_LIT("x-ab"), WEFT_SV_LIT("ab"));
    weft_hdrs_add(&h, WEFT_SV_LIT("content-length"), WEFT_SV_LIT("1"));
    weft_hdrs_add(&h, WEFT_SV_LIT("close"), WEFT_SV_LIT("c"));
    weft_hdrs_strip_hop_by_hop(&h);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "host=h;x-ab=ab;content-length=1;");

    /* nothing hop-by-hop: unchanged */
    weft_hdrs_init(&h, &a);
    weft_hdrs_add(&h, WEFT_SV_LIT("a"), WEFT_SV_LIT("1"));
    weft_hdrs_add(&h, WEFT_SV_LIT("b"), WEFT_SV_LIT("2"));
    weft_hdrs_strip_hop_by_hop(&h);
    dump(&h, buf, sizeof(buf));
    assert_string_equal(buf, "a=1;b=2;");
    weft_arena_free(&a);
}

static void test_bodyless_and_reasons(void **state) {
    (void)state;
    assert_true(weft_resp_is_bodyless(100, false));
    assert_true(weft_resp_is_bodyless(103, false));
    assert_true(weft_resp_is_bodyless(204, false));
    assert_true(weft_resp_is_bodyless(304, false));
    assert_true(weft_resp_is_bodyless(200, true));
    assert_true(weft_resp_is_bodyless(500, true));
    assert_false(weft_resp_is_bodyless(200, false));
    assert_false(weft_resp_is_bodyless(205, false));
    assert_false(weft_resp_is_bodyless(404, false));

    assert_string_equal(weft_status_reason(200), "OK");
    assert_string_equal(weft_status_reason(100), "Continue");
    assert_string_equal(weft_status_reason(101), "Switching Protocols");
    assert_string_equal(weft_status_reason(204), "No Content");
    assert_string_equal(weft_status_reason(301), "Moved Permanently");
    assert_string_equal(weft_status_reason(304), "Not Modified");
    assert_string_equal(weft_status_reason(400), "Bad Request");
    assert_string_equal(weft_status_reason(403), "Forbidden");
    assert_string_equal(weft_status_reason(404), "Not Found");
    assert_string_equal(weft_status_reason(413), "Content Too Large");
    assert_string_equal(weft_status_reason(414), "URI Too Long");
    assert_string_equal(weft_status_reason(429), "Too Many Requests");
    assert_string_equal(weft_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(weft_status_reason(502), "Bad Gateway");
    assert_string_equal(weft_status_reason(503), "Service Unavailable");
    assert_string_equal(weft_status_reason(504), "Gateway Timeout");
    assert_string_equal(weft_status_reason(505), "HTTP Version Not Supported");
    assert_string_equal(weft_status_reason(299), "");
    assert_string_equal(weft_status_reason(0), "");
}

/* Arena blocks come back through the thread's spare list: the same block
 * serves the next request, whole and writable (AddressSanitizer would
 * report a spare block handed out still poisoned), and more arenas than
 * the list holds reset and regrow without trouble. */
static void test_arena_spare_blocks(void **state) {
    (void)state;
    weft_arena a[80]; /* more than the 64 the list holds */
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 80; k++) {
            weft_arena_init(&a[k]);
            char *p = weft_arena_alloc(&a[k], 2000); /* past the inline buffer */
            char *q = weft_arena_alloc(&a[k], 2000);
            assert_non_null(p);
            assert_non_null(q);
            memset(p, 'a' + k, 2000);
            memset(q, 'A' + k, 2000);
            char *big = weft_arena_alloc(&a[k], 9000); /* a block of its own size */
            assert_non_null(big);
            memset(big, 'x', 9000);
        }
        for (int k = 0; k < 80; k++)
            weft_arena_reset(&a[k]);
    }
    weft_arena one;
    weft_arena_init(&one);
    char *first = weft_arena_alloc(&one, 3000);
    weft_arena_reset(&one);
    char *again = weft_arena_alloc(&one, 3000);
    assert_ptr_equal(first, again); /* the spare block, not a new one */
    memset(again, 'z', 3000);
    weft_arena_free(&one);
    /* an idle worker gives them back; growth goes to malloc again */
    weft_arena_spares_release();
    weft_arena_spares_release();
    weft_arena_init(&one);
    char *fresh = weft_arena_alloc(&one, 3000);
    assert_non_null(fresh);
    memset(fresh, 'y', 3000);
    weft_arena_free(&one);
    weft_arena_spares_release();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_copies_and_lowercases),
        cmocka_unit_test(test_growth_keeps_order),
        cmocka_unit_test(test_set_remove_count),
        cmocka_unit_test(test_has_token),
        cmocka_unit_test(test_strip_hop_by_hop),
        cmocka_unit_test(test_bodyless_and_reasons),
        cmocka_unit_test(test_arena_spare_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
