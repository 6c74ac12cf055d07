/* test_smallpool.c: the pool for libevent's small allocations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/smallpool.h"

#define N 10000 /* about 5 blocks of 2,046 slots */

static void test_small_in_pool_large_in_malloc(void **state) {
    (void)state;
    assert_true(weft_smallpool_init());
    void *a = weft_smallpool_alloc(20);
    void *b = weft_smallpool_alloc(WEFT_SMALLPOOL_MAX);
    void *c = weft_smallpool_alloc(WEFT_SMALLPOOL_MAX + 1);
    assert_true(weft_smallpool_owns(a));
    assert_true(weft_smallpool_owns(b));
    assert_false(weft_smallpool_owns(c));
    assert_int_equal((uintptr_t)a % 16, 0);
    memset(a, 0xab, 20);
    memset(b, 0xcd, WEFT_SMALLPOOL_MAX);
    assert_ptr_not_equal(a, b);
    weft_smallpool_free(a);
    weft_smallpool_free(b);
    weft_smallpool_free(c);
    weft_smallpool_free(NULL);
}

static void test_blocks_return_when_empty(void **state) {
    (void)state;
    size_t before = weft_smallpool_blocks_in_use();
    void **p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++) {
        p[i] = weft_smallpool_alloc(32);
        assert_true(weft_smallpool_owns(p[i]));
        memset(p[i], i & 0xff, 32);
    }
    assert_true(weft_smallpool_blocks_in_use() >= before + 4);
    for (int i = 0; i < N; i++) /* every slot still holds what was written */
        assert_int_equal(((unsigned char *)p[i])[31], i & 0xff);
    for (int i = 0; i < N; i++)
        weft_smallpool_free(p[i]);
    /* All blocks but the current one go back. */
    assert_true(weft_smallpool_blocks_in_use() <= before + 1);
    /* Reused, not carved anew. */
    size_t carved = weft_smallpool_blocks_carved();
    for (int i = 0; i < N; i++)
        p[i] = weft_smallpool_alloc(8);
    assert_int_equal(weft_smallpool_blocks_carved(), carved);
    for (int i = 0; i < N; i++)
        weft_smallpool_free(p[i]);
    free(p);
}

static void test_pool_realloc(void **state) {
    (void)state;
    char *p = weft_smallpool_realloc(NULL, 10);
    assert_true(weft_smallpool_owns(p));
    memcpy(p, "0123456789", 10);
    assert_ptr_equal(weft_smallpool_realloc(p, 30), p); /* still fits its slot */
    char *q = weft_smallpool_realloc(p, 1000);
    assert_false(weft_smallpool_owns(q));
    assert_memory_equal(q, "0123456789", 10);
    q = weft_smallpool_realloc(q, 2000); /* malloc'd memory stays with malloc */
    assert_memory_equal(q, "0123456789", 10);
    weft_smallpool_free(q);
}

/* Slots freed by another thread come back to their owner's blocks. */
typedef struct {
    void **p;
    int from, to;
} span;

static void *free_span(void *arg) {
    span *s = arg;
    for (int i = s->from; i < s->to; i++)
        weft_smallpool_free(s->p[i]);
    return NULL;
}

static void *alloc_free_loop(void *arg) {
    (void)arg;
    void *p[256];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 256; i++)
            p[i] = weft_smallpool_alloc(32);
        for (int i = 0; i < 256; i++)
            weft_smallpool_free(p[i]);
    }
    return NULL;
}

static void test_remote_free(void **state) {
    (void)state;
    size_t before = weft_smallpool_blocks_in_use();
    void **p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++)
        p[i] = weft_smallpool_alloc(24);
    /* Two threads free concurrently while a third allocates its own. */
    pthread_t t1, t2, t3;
    span a = {p, 0, N / 2}, b = {p, N / 2, N};
    assert_int_equal(pthread_create(&t1, NULL, free_span, &a), 0);
    assert_int_equal(pthread_create(&t2, NULL, free_span, &b), 0);
    assert_int_equal(pthread_create(&t3, NULL, alloc_free_loop, NULL), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    /* The owner collects them on its next allocations: the same slots
     * serve again and the emptied blocks go back. */
    for (int i = 0; i < N; i++)
        p[i] = weft_smallpool_alloc(24);
    for (int i = 0; i < N; i++)
        weft_smallpool_free(p[i]);
    void *x = weft_smallpool_alloc(24);
    weft_smallpool_free(x);
    /* t3's current block stays with the exited thread. */
    assert_true(weft_smallpool_blocks_in_use() <= before + 2);
    free(p);
}

/* Chain-sized blocks (513 B .. 32 KiB) come back from a per-thread spare
 * list by power-of-two class; smaller and larger ones go to malloc. */
static void test_chain_spares(void **state) {
    (void)state;
    weft_smallpool_chains_release();
    char *a = weft_smallpool_alloc(1024);
    char *b = weft_smallpool_alloc(32768);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 1, 1024);
    memset(b, 2, 32768);
    weft_smallpool_free(a);
    weft_smallpool_free(b);
    assert_int_equal(weft_smallpool_chains_spare(), 2);
    char *small = weft_smallpool_alloc(400); /* below the classes: malloc */
    assert_ptr_not_equal(small, a);
    assert_ptr_equal(weft_smallpool_alloc(600), a); /* (512 B, 1 KiB]: a again */
    char *c = weft_smallpool_alloc(20000);          /* (16 KiB, 32 KiB]: b again */
    assert_ptr_equal(c, b);
    assert_int_equal(weft_smallpool_chains_spare(), 0);
    char *d = weft_smallpool_alloc(20000); /* none left: malloc */
    assert_ptr_not_equal(d, b);
    memset(d, 3, 20000);
    weft_smallpool_free(c);
    weft_smallpool_free(d);
    weft_smallpool_free(small); /* below the classes: to malloc */
    assert_int_equal(weft_smallpool_chains_spare(), 2);
    char *big = weft_smallpool_alloc(70000); /* above: malloc, and back to it */
    memset(big, 4, 70000);
    weft_smallpool_free(big);
    assert_int_equal(weft_smallpool_chains_spare(), 2);
    /* a pool slot that grows takes a spare block too: c, the only one of the
     * 32 KiB class (d, 20,000 bytes usable, serves the 16 KiB class) */
    char *s = weft_smallpool_alloc(16);
    memcpy(s, "0123456789abcdef", 16);
    char *g = weft_smallpool_realloc(s, 30000);
    assert_ptr_equal(g, c);
    assert_memory_equal(g, "0123456789abcdef", 16);
    weft_smallpool_free(g);
    /* bounded: a burst of frees keeps a few and gives the rest back */
    enum { M = 300 };
    void *p[M];
    for (int i = 0; i < M; i++)
        p[i] = weft_smallpool_alloc(1024);
    for (int i = 0; i < M; i++)
        weft_smallpool_free(p[i]);
    size_t spare = weft_smallpool_chains_spare();
    assert_true(spare > 2 && spare < 100);
    weft_smallpool_chains_release();
    assert_int_equal(weft_smallpool_chains_spare(), 0);
    weft_smallpool_free(a);
    weft_smallpool_chains_release();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_in_pool_large_in_malloc),
        cmocka_unit_test(test_blocks_return_when_empty),
        cmocka_unit_test(test_pool_realloc),
        cmocka_unit_test(test_remote_free),
        cmocka_unit_test(test_chain_spares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
