/* test_handles.c: stream handles (sdk/common/wsh_handle.h, shared by the
 * core and the test kit, and core/filter/handles.c): encoding, decoding,
 * generations (including the wrap), domains, and the core's answers for
 * stale, foreign-thread and non-handle values, also through the host API. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter/filter.h"
#include "filter/handles.h"
#include "http/stream.h"
#include "http/stream_internal.h"
#include "loop/worker.h"

static void test_encode_decode(void **state) {
    (void)state;
    wsh_parts p = {0};
    uint64_t h = wsh_encode(5, 12345, 77);
    assert_true(wsh_decode(h, &p));
    assert_int_equal(p.domain, 5);
    assert_int_equal(p.slot, 12345);
    assert_int_equal(p.gen, 77);
    h = wsh_encode(WSH_MAX_DOMAINS - 1, WSH_MAX_SLOTS - 1, UINT32_MAX);
    assert_true(wsh_decode(h, &p));
    assert_int_equal(p.domain, WSH_MAX_DOMAINS - 1);
    assert_int_equal(p.slot, WSH_MAX_SLOTS - 1);
    assert_int_equal(p.gen, UINT32_MAX);
    /* What no table gives out: NULL, an aligned pointer, generation 0. */
    assert_false(wsh_decode(0, &p));
    int x;
    assert_false(wsh_decode((uint64_t)(uintptr_t)&x & ~(uint64_t)1, &p));
    assert_false(wsh_decode(wsh_encode(1, 1, 0), &p));
}

static void test_table_generations(void **state) {
    (void)state;
    wsh_table t;
    wsh_table_init(&t, 3);
    int a, b, c;
    uint64_t ha = wsh_alloc(&t, &a);
    assert_true(ha != 0);
    wsh_parts p = {0};
    assert_true(wsh_decode(ha, &p));
    assert_ptr_equal(wsh_lookup(&t, &p), &a);
    wsh_release(&t, ha);
    assert_null(wsh_lookup(&t, &p)); /* stale at once */
    wsh_release(&t, ha);             /* a second release is a no-op */
    assert_int_equal(t.live, 0);
    /* The slot is reused with a new generation: the old handle does not
     * name the new object. */
    uint64_t hb = wsh_alloc(&t, &b);
    wsh_parts pb = {0};
    assert_true(wsh_decode(hb, &pb));
    assert_int_equal(pb.slot, p.slot);
    assert_int_equal(pb.gen, p.gen + 1);
    assert_null(wsh_lookup(&t, &p));
    assert_ptr_equal(wsh_lookup(&t, &pb), &b);
    /* Another domain's table does not know the handle. */
    wsh_table other;
    wsh_table_init(&other, 4);
    uint64_t hc = wsh_alloc(&other, &c);
    wsh_parts pc = {0};
    assert_true(wsh_decode(hc, &pc));
    assert_null(wsh_lookup(&t, &pc));
    assert_null(wsh_lookup(&other, &pb));
    /* Many objects: the table grows, every handle stays right. */
    enum { N = 1000 };
    static int objs[N];
    uint64_t hs[N];
    for (int i = 0; i < N; i++)
        assert_true((hs[i] = wsh_alloc(&t, &objs[i])) != 0);
    for (int i = 0; i < N; i++) {
        assert_true(wsh_decode(hs[i], &p));
        assert_ptr_equal(wsh_lookup(&t, &p), &objs[i]);
    }
    for (int i = 0; i < N; i += 2)
        wsh_release(&t, hs[i]);
    for (int i = 0; i < N; i++) {
        assert_true(wsh_decode(hs[i], &p));
        assert_true((wsh_lookup(&t, &p) == NULL) == (i % 2 == 0));
    }
    assert_int_equal(t.live, N / 2 + 1);
    wsh_table_free(&t);
    wsh_table_free(&other);
}

static void test_generation_wrap(void **state) {
    (void)state;
    wsh_table t;
    wsh_table_init(&t, 0);
    int a, b, c;
    uint64_t h0 = wsh_alloc(&t, &a);
    wsh_parts p0 = {0};
    assert_true(wsh_decode(h0, &p0));
    wsh_release(&t, h0);
    wsh_debug_set_gen(&t, p0.slot, UINT32_MAX);
    uint64_t hmax = wsh_alloc(&t, &b);
    wsh_parts pmax = {0};
    assert_true(wsh_decode(hmax, &pmax));
    assert_int_equal(pmax.slot, p0.slot);
    assert_int_equal(pmax.gen, UINT32_MAX);
    wsh_release(&t, hmax);
    /* Wraps to 1, never 0 (0 would not decode). */
    uint64_t h1 = wsh_alloc(&t, &c);
    wsh_parts p1 = {0};
    assert_true(wsh_decode(h1, &p1));
    assert_int_equal(p1.slot, p0.slot);
    assert_int_equal(p1.gen, 1);
    assert_null(wsh_lookup(&t, &pmax));
    assert_ptr_equal(wsh_lookup(&t, &p1), &c);
    wsh_table_free(&t);
}

/* ---- the core's side: workers are domains ---- */

static weft_worker *fake_worker(int id) {
    weft_worker *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->id = id;
    weft_handles_attach(w);
    assert_true(w->hdomain >= 0);
    return w;
}

static void fake_stream(weft_stream *s, weft_worker *w) {
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->magic = WEFT_STREAM_MAGIC;
    s->active = true;
    weft_stream_handle_open(s);
    assert_true(s->handle != 0);
}

static weft_stream *H(const weft_stream *s) {
    return (weft_stream *)(uintptr_t)s->handle;
}

static void *other_thread(void *arg) {
    static weft_result r;
    weft_stream *out = NULL;
    r = weft_stream_from_handle(arg, &out);
    return &r;
}

static void test_core_handles(void **state) {
    (void)state;
    weft_worker *w1 = fake_worker(1), *w2 = fake_worker(2);
    assert_int_not_equal(w1->hdomain, w2->hdomain);
    weft_stream s1, s2;
    fake_stream(&s1, w1);
    fake_stream(&s2, w2);
    weft_stream *out = NULL;
    assert_int_equal(weft_stream_from_handle(H(&s1), &out), WEFT_OK);
    assert_ptr_equal(out, &s1);
    assert_int_equal(weft_stream_from_handle(H(&s2), &out), WEFT_OK);
    assert_ptr_equal(out, &s2);
    /* Not handles: NULL, the stream's address. */
    assert_int_equal(weft_stream_from_handle(NULL, &out), WEFT_ERR_HANDLE);
    assert_int_equal(weft_stream_from_handle(&s1, &out), WEFT_ERR_HANDLE);

    /* A worker with a thread: its handles from another thread are
     * WEFT_ERR_THREAD (the table is not read), from its own thread fine. */
    w1->thread = pthread_self();
    w1->thread_started = true;
    assert_int_equal(weft_stream_from_handle(H(&s1), &out), WEFT_OK);
    pthread_t th;
    void *res;
    assert_int_equal(pthread_create(&th, NULL, other_thread, H(&s1)), 0);
    pthread_join(th, &res);
    assert_int_equal(*(weft_result *)res, WEFT_ERR_THREAD);

    /* The same object begins a new exchange (HTTP/1.1 keep-alive, a
     * recycled HTTP/2 stream): the old handle is stale, the new one works. */
    weft_stream *old = H(&s1);
    weft_stream_handle_close(&s1);
    assert_int_equal(weft_stream_from_handle(old, &out), WEFT_ERR_HANDLE);
    weft_stream_handle_open(&s1);
    assert_true(H(&s1) != old);
    assert_int_equal(weft_stream_from_handle(old, &out), WEFT_ERR_HANDLE);
    assert_int_equal(weft_stream_from_handle(H(&s1), &out), WEFT_OK);
    assert_ptr_equal(out, &s1);

    /* Through the host API: a stale handle is WEFT_ERR_HANDLE for every
     * kind of call, and reads give their neutral value. */
    const weft_host_api *api = weft_filter_host_api();
    weft_str v;
    assert_int_equal(api->header_get(old, WEFT_REQUEST_HEADERS, WEFT_STR("a"), 0, &v),
                     WEFT_ERR_HANDLE);
    assert_int_equal(api->stream_resume(old), WEFT_ERR_HANDLE);
    assert_int_equal(api->metadata_set(old, WEFT_STR("k"), WEFT_STR("v")), WEFT_ERR_HANDLE);
    assert_int_equal(api->response_status(old), 0);
    assert_int_equal(api->header_count(old, WEFT_REQUEST_HEADERS, WEFT_STR("a")), 0);
    assert_false(api->request_is_grpc(old));

    /* A stream that ended (inactive) is refused even with its handle. */
    s2.active = false;
    assert_int_equal(weft_stream_from_handle(H(&s2), &out), WEFT_ERR_HANDLE);
    s2.active = true;
    /* A freed worker's handles name nothing. */
    weft_stream *h2 = H(&s2);
    weft_handles_detach(w2);
    assert_int_equal(weft_stream_from_handle(h2, &out), WEFT_ERR_HANDLE);

    weft_stream_handle_close(&s1);
    w1->thread_started = false;
    weft_handles_detach(w1);
    free(w1);
    free(w2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_table_generations),
        cmocka_unit_test(test_generation_wrap),
        cmocka_unit_test(test_core_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
