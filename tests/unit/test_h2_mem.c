/* test_h2_mem.c: nghttp2's per-worker allocator (http/h2/h2_mem.h): size
 * classes, reuse, the per-class cap, realloc and calloc, release, and a
 * real client and server session exchanging requests through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2/h2_mem.h"

static void test_reuse_by_class(void **state) {
    (void)state;
    weft_worker w = {0};
    nghttp2_mem m = weft_h2_mem_of(&w);
    void *a = m.malloc(40, m.mem_user_data);  /* 64-byte class */
    void *b = m.malloc(100, m.mem_user_data); /* 128-byte class */
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal((uintptr_t)a % 16, 0);
    assert_int_equal((uintptr_t)b % 16, 0);
    memset(a, 0xab, 40);
    memset(b, 0xcd, 100);
    m.free(a, m.mem_user_data);
    m.free(b, m.mem_user_data);
    m.free(NULL, m.mem_user_data);
    assert_int_equal(weft_h2_mem_cached(&w), 2);
    /* same class: the cached block; another class: not that one */
    void *c = m.malloc(48, m.mem_user_data);
    assert_ptr_equal(c, a);
    void *d = m.malloc(200, m.mem_user_data); /* 256-byte class: fresh */
    assert_ptr_not_equal(d, b);
    assert_int_equal(weft_h2_mem_cached(&w), 1);
    m.free(c, m.mem_user_data);
    m.free(d, m.mem_user_data);
    weft_h2_mem_release(&w);
    assert_int_equal(weft_h2_mem_cached(&w), 0);
}

static void test_large_goes_to_malloc(void **state) {
    (void)state;
    weft_worker w = {0};
    nghttp2_mem m = weft_h2_mem_of(&w);
    size_t big = WEFT_H2MEM_MAX_BLOCK; /* + the header: over the last class */
    char *p = m.malloc(big, m.mem_user_data);
    assert_non_null(p);
    memset(p, 0x5a, big);
    m.free(p, m.mem_user_data);
    assert_int_equal(weft_h2_mem_cached(&w), 0);
    /* the largest that fits a class is cached */
    p = m.malloc(WEFT_H2MEM_MAX_BLOCK - 16, m.mem_user_data);
    memset(p, 0x5a, WEFT_H2MEM_MAX_BLOCK - 16);
    m.free(p, m.mem_user_data);
    assert_int_equal(weft_h2_mem_cached(&w), 1);
    assert_null(m.malloc(SIZE_MAX - 8, m.mem_user_data));
    weft_h2_mem_release(&w);
}

static void test_cap_per_class(void **state) {
    (void)state;
    weft_worker w = {0};
    nghttp2_mem m = weft_h2_mem_of(&w);
    enum { N = 200 };
    void *p[N];
    for (int i = 0; i < N; i++)
        assert_non_null(p[i] = m.malloc(30, m.mem_user_data));
    for (int i = 0; i < N; i++)
        m.free(p[i], m.mem_user_data);
    size_t cached = weft_h2_mem_cached(&w);
    assert_true(cached > 0 && cached < N); /* bounded: the rest went to free() */
    for (int i = 0; i < N; i++)
        assert_non_null(p[i] = m.malloc(3000, m.mem_user_data)); /* 4 KiB class */
    for (int i = 0; i < N; i++)
        m.free(p[i], m.mem_user_data);
    assert_true(weft_h2_mem_cached(&w) - cached <= 16);
    weft_h2_mem_release(&w);
    assert_int_equal(weft_h2_mem_cached(&w), 0);
}

static void test_realloc_calloc(void **state) {
    (void)state;
    weft_worker w = {0};
    nghttp2_mem m = weft_h2_mem_of(&w);
    void *u = m.mem_user_data;
    char *p = m.realloc(NULL, 10, u);
    assert_non_null(p);
    memcpy(p, "0123456789", 10);
    char *q = m.realloc(p, 40, u); /* still in its 64-byte block */
    assert_ptr_equal(q, p);
    memcpy(q + 10, "abcdefghijklmnopqrstuvwxyz0123", 30);
    char *r = m.realloc(q, 500, u); /* moves to a larger class */
    assert_non_null(r);
    assert_memory_equal(r, "0123456789abcdefghijklmnopqrstuvwxyz0123", 40);
    memset(r + 40, 1, 460);
    char *s = m.realloc(r, 2 * WEFT_H2MEM_MAX_BLOCK, u); /* to malloc */
    assert_non_null(s);
    assert_memory_equal(s, "0123456789abcdefghijklmnopqrstuvwxyz0123", 40);
    memset(s + 500, 2, 2 * WEFT_H2MEM_MAX_BLOCK - 500);
    char *t = m.realloc(s, 4 * WEFT_H2MEM_MAX_BLOCK, u); /* malloc to malloc */
    assert_non_null(t);
    assert_int_equal(t[600], 2);
    char *v = m.realloc(t, 20, u); /* back into a class */
    assert_memory_equal(v, "0123456789abcdefghij", 20);
    m.free(v, u);

    unsigned char *z = m.calloc(10, 30, u);
    assert_non_null(z);
    for (int i = 0; i < 300; i++)
        assert_int_equal(z[i], 0);
    memset(z, 0xff, 300);
    m.free(z, u);
    z = m.calloc(10, 30, u); /* the same block again: zeroed again */
    for (int i = 0; i < 300; i++)
        assert_int_equal(z[i], 0);
    m.free(z, u);
    assert_null(m.calloc(SIZE_MAX / 2, 4, u));
    weft_h2_mem_release(&w);
}

/* ---------- a client and a server session on the allocator ---------- */

typedef struct {
    int responses;
    int requests;
} counts;

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    counts *c = ud;
    if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        if (nghttp2_session_check_server_session(ng)) {
            c->requests++;
            nghttp2_nv nv[] = {
                {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
                {(uint8_t *)"x-test", (uint8_t *)"a value of some length", 6, 22, 0},
            };
            assert_int_equal(nghttp2_submit_response(ng, f->hd.stream_id, nv, 2, NULL), 0);
        } else {
            c->responses++;
        }
    }
    return 0;
}

static void pump(nghttp2_session *from, nghttp2_session *to) {
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(from, &data)) > 0)
        assert_int_equal(nghttp2_session_mem_recv(to, data, (size_t)n), n);
    assert_true(n == 0);
}

static void test_sessions(void **state) {
    (void)state;
    weft_worker w = {0};
    nghttp2_mem m = weft_h2_mem_of(&w);
    nghttp2_session_callbacks *cbs;
    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
    counts sc = {0}, cc = {0};
    nghttp2_session *srv, *cli;
    assert_int_equal(nghttp2_session_server_new3(&srv, cbs, &sc, NULL, &m), 0);
    assert_int_equal(nghttp2_session_client_new3(&cli, cbs, &cc, NULL, &m), 0);
    nghttp2_session_callbacks_del(cbs);
    assert_int_equal(nghttp2_submit_settings(srv, 0, NULL, 0), 0);
    assert_int_equal(nghttp2_submit_settings(cli, 0, NULL, 0), 0);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 10; i++) {
            char path[32];
            int len = snprintf(path, sizeof(path), "/r/%d/%d", round, i);
            nghttp2_nv nv[] = {
                {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
                {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
                {(uint8_t *)":authority", (uint8_t *)"example", 10, 7, 0},
                {(uint8_t *)":path", (uint8_t *)path, 5, (size_t)len, 0},
            };
            assert_true(nghttp2_submit_request(cli, NULL, nv, 4, NULL, NULL) > 0);
        }
        pump(cli, srv);
        pump(srv, cli);
        pump(cli, srv);
    }
    assert_int_equal(sc.requests, 500);
    assert_int_equal(cc.responses, 500);
    assert_true(weft_h2_mem_cached(&w) > 0); /* streams and frames recycled */
    nghttp2_session_del(cli);
    nghttp2_session_del(srv);
    weft_h2_mem_release(&w);
    assert_int_equal(weft_h2_mem_cached(&w), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_by_class), cmocka_unit_test(test_large_goes_to_malloc),
        cmocka_unit_test(test_cap_per_class),  cmocka_unit_test(test_realloc_calloc),
        cmocka_unit_test(test_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
