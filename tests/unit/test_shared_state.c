/* test_shared_state.c: the shared state registry (common/shared_reg.c:
 * refcounts, compatibility by size and version, destroy callbacks and
 * their owners), endpoint state bound to hostsets (kept while any hostset
 * holds the endpoint) and ejection in the load balancer (skipped at once,
 * panic mode when every healthy endpoint is ejected, back after its time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"
#include "common/shared_reg.h"
#include "config/config.h"
#include "upstream/hostset.h"
#include "upstream/lb.h"

/* ---- registry ---- */

static int destroyed;
static size_t destroyed_size;
static void *destroyed_arg;
static int owners_released;

static void on_destroy(void *block, size_t size, void *arg) {
    (void)block;
    destroyed++;
    destroyed_size = size;
    destroyed_arg = arg;
}

static void on_owner_release(void *owner) {
    (void)owner;
    owners_released++;
}

static void test_same_key_same_block(void **state) {
    (void)state;
    size_t base = weft_shared_count();
    bool created = false;
    weft_shared_entry *a = weft_shared_acquire("f", "k", 1, 64, 1, &created);
    assert_non_null(a);
    assert_true(created);
    uint64_t *block = weft_shared_block(a);
    assert_int_equal(((uintptr_t)block) % 64, 0); /* 64-byte aligned */
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(block[i], 0); /* zeroed */
    block[0] = 42;
    /* The next snapshot asks for the same (ns, key, size, version). */
    weft_shared_entry *b = weft_shared_acquire("f", "k", 1, 64, 1, &created);
    assert_ptr_equal(a, b);
    assert_false(created);
    assert_int_equal(((uint64_t *)weft_shared_block(b))[0], 42);
    assert_int_equal(weft_shared_refs(a), 2);
    assert_int_equal(weft_shared_count(), base + 1);
    /* The old snapshot goes: the block stays for the new one. */
    weft_shared_release(a);
    assert_int_equal(weft_shared_refs(b), 1);
    assert_int_equal(((uint64_t *)weft_shared_block(b))[0], 42);
    weft_shared_release(b);
    assert_int_equal(weft_shared_count(), base);
    /* Gone: asking again gives a fresh zeroed block. */
    weft_shared_entry *c = weft_shared_acquire("f", "k", 1, 64, 1, &created);
    assert_true(created);
    assert_int_equal(((uint64_t *)weft_shared_block(c))[0], 0);
    weft_shared_release(c);
}

static void test_incompatible_layouts(void **state) {
    (void)state;
    size_t base = weft_shared_count();
    bool created;
    weft_shared_entry *v1 = weft_shared_acquire("f", "k", 1, 64, 1, &created);
    ((uint64_t *)weft_shared_block(v1))[0] = 7;
    weft_shared_entry *v2 = weft_shared_acquire("f", "k", 1, 64, 2, &created);
    assert_true(created); /* another version */
    assert_ptr_not_equal(v1, v2);
    assert_int_equal(((uint64_t *)weft_shared_block(v2))[0], 0);
    weft_shared_entry *big = weft_shared_acquire("f", "k", 1, 128, 1, &created);
    assert_true(created); /* another size */
    assert_ptr_not_equal(v1, big);
    /* Another namespace (filter name) or key: another block. */
    weft_shared_entry *g = weft_shared_acquire("g", "k", 1, 64, 1, &created);
    assert_true(created);
    weft_shared_entry *k2 = weft_shared_acquire("f", "k2", 2, 64, 1, &created);
    assert_true(created);
    /* Keys are bytes: an embedded NUL is part of the key. */
    weft_shared_entry *nul = weft_shared_acquire("f", "k\0x", 3, 64, 1, &created);
    assert_true(created);
    assert_ptr_not_equal(nul, v1);
    assert_int_equal(weft_shared_count(), base + 6);
    /* The v1 block still lives for its holder and is found again. */
    weft_shared_entry *again = weft_shared_find("f", "k", 1, 64, 1);
    assert_ptr_equal(again, v1);
    assert_int_equal(((uint64_t *)weft_shared_block(again))[0], 7);
    weft_shared_release(again);
    weft_shared_entry *all[] = {v1, v2, big, g, k2, nul};
    for (size_t i = 0; i < 6; i++)
        weft_shared_release(all[i]);
    assert_int_equal(weft_shared_count(), base);
    assert_null(weft_shared_find("f", "k", 1, 64, 1));
    /* Bad arguments. */
    assert_null(weft_shared_acquire("f", "k", 1, 0, 1, &created));
    assert_null(weft_shared_acquire(NULL, "k", 1, 8, 1, &created));
}

static void test_destroy_newest_callback_and_owner(void **state) {
    (void)state;
    destroyed = owners_released = 0;
    int owner1, owner2, arg1, arg2;
    weft_shared_entry *a = weft_shared_acquire("f", "d", 1, 24, 1, NULL);
    weft_shared_set_destroy(a, on_destroy, &arg1, &owner1, on_owner_release);
    weft_shared_entry *b = weft_shared_acquire("f", "d", 1, 24, 1, NULL);
    /* The newer config's callback replaces the older one; the older
     * owner (library) is released at once. */
    weft_shared_set_destroy(b, on_destroy, &arg2, &owner2, on_owner_release);
    assert_int_equal(owners_released, 1);
    weft_shared_release(b); /* the newer snapshot goes first */
    assert_int_equal(destroyed, 0);
    weft_shared_release(a); /* the last one: destroy with the newest arg, then its owner */
    assert_int_equal(destroyed, 1);
    assert_int_equal(destroyed_size, 24);
    assert_ptr_equal(destroyed_arg, &arg2);
    assert_int_equal(owners_released, 2);
}

static void test_many_entries(void **state) {
    (void)state;
    size_t base = weft_shared_count();
    enum { N = 3000 };
    weft_shared_entry **e = calloc(N, sizeof(*e));
    assert_non_null(e);
    char key[32];
    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof(key), "key-%d", i);
        e[i] = weft_shared_acquire("many", key, (size_t)len, 8, 1, NULL);
        assert_non_null(e[i]);
        *(int *)weft_shared_block(e[i]) = i;
    }
    assert_int_equal(weft_shared_count(), base + N);
    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof(key), "key-%d", i);
        weft_shared_entry *f = weft_shared_find("many", key, (size_t)len, 8, 1);
        assert_ptr_equal(f, e[i]);
        assert_int_equal(*(int *)weft_shared_block(f), i);
        weft_shared_release(f);
    }
    for (int i = 0; i < N; i++)
        weft_shared_release(e[i]);
    assert_int_equal(weft_shared_count(), base);
    free(e);
}

/* ---- endpoint state on hostsets ---- */

static weft_hostset *mkset(size_t n, uint16_t first_port) {
    weft_hostset *hs = weft_hostset_new(n);
    assert_non_null(hs);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_endpoint_set_ip(&hs->eps[i], "10.0.0.1", first_port + (uint16_t)i),
                         0);
    return hs;
}

static void test_endpoint_state_survives_hostset_change(void **state) {
    (void)state;
    size_t base = weft_shared_count();
    weft_hostset *a = mkset(3, 8080); /* :8080 :8081 :8082 */
    assert_int_equal(weft_hostset_bind_state(a, "c"), 0);
    assert_int_equal(weft_shared_count(), base + 3);
    weft_endpoint_set_ejected(&a->eps[1], 1000);
    atomic_store(&a->eps[1].state->counters[3], 5);
    /* A new hostset (DNS, push, reload) keeping :8081 and :8082, adding
     * :8083, bound while the old one lives. */
    weft_hostset *b = mkset(3, 8081);
    assert_int_equal(weft_hostset_bind_state(b, "c"), 0);
    assert_ptr_equal(b->eps[0].state, a->eps[1].state);
    assert_ptr_equal(b->eps[1].state, a->eps[2].state);
    assert_true(weft_endpoint_ejected(&b->eps[0], 999));
    assert_false(weft_endpoint_ejected(&b->eps[0], 1000));
    assert_int_equal(atomic_load(&b->eps[0].state->counters[3]), 5);
    assert_int_equal(atomic_load(&b->eps[0].state->ejections), 1);
    assert_false(weft_endpoint_ejected(&b->eps[2], 0)); /* new endpoint: fresh state */
    /* Another cluster with the same address has its own state. */
    weft_hostset *other = mkset(1, 8081);
    assert_int_equal(weft_hostset_bind_state(other, "d"), 0);
    assert_ptr_not_equal(other->eps[0].state, b->eps[0].state);
    assert_false(weft_endpoint_ejected(&other->eps[0], 0));
    weft_hostset_unref(other);
    /* The old hostset goes: :8080's state goes with it, the others stay. */
    weft_hostset_unref(a);
    assert_int_equal(weft_shared_count(), base + 3);
    assert_true(weft_endpoint_ejected(&b->eps[0], 999));
    weft_hostset_unref(b);
    assert_int_equal(weft_shared_count(), base);
    /* An endpoint that left every hostset and comes back starts fresh. */
    weft_hostset *c = mkset(1, 8081);
    assert_int_equal(weft_hostset_bind_state(c, "c"), 0);
    assert_false(weft_endpoint_ejected(&c->eps[0], 0));
    weft_hostset_unref(c);
}

/* ---- ejection in the load balancer ---- */

static void test_lb_skips_ejected_at_once(void **state) {
    (void)state;
    weft_lb_policy policies[] = {WEFT_LB_ROUND_ROBIN, WEFT_LB_LEAST_REQUEST, WEFT_LB_RANDOM,
                                 WEFT_LB_RING_HASH, WEFT_LB_PEAK_EWMA};
    for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
        weft_hostset *hs = mkset(3, 9000);
        assert_int_equal(weft_hostset_bind_state(hs, "lb"), 0);
        if (policies[p] == WEFT_LB_RING_HASH)
            assert_int_equal(weft_hostset_build_ring(hs, 64), 0);
        /* Two workers' balancers over the same hostset. */
        weft_lb w1, w2;
        assert_int_equal(weft_lb_init(&w1, policies[p], hs, 1), 0);
        assert_int_equal(weft_lb_init(&w2, policies[p], hs, 2), 0);
        uint64_t now = 5000000;
        /* Worker 1's filter ejects endpoint 1: both skip it on their next pick. */
        weft_endpoint_set_ejected(&hs->eps[1], now + 1000000);
        for (int k = 0; k < 300; k++) {
            assert_int_not_equal(
                weft_lb_pick_at(&w1, (uint64_t)k * 0x9e3779b97f4a7c15ull, true, -1, now), 1);
            assert_int_not_equal(
                weft_lb_pick_at(&w2, (uint64_t)k * 0x9e3779b97f4a7c15ull, true, -1, now), 1);
        }
        /* After the time it is picked again. */
        bool seen = false;
        for (int k = 0; k < 300 && !seen; k++)
            seen = weft_lb_pick_at(&w2, (uint64_t)k * 0x9e3779b97f4a7c15ull, true, -1,
                                   now + 1000000) == 1;
        assert_true(seen);
        /* Restored early: picked again at once. */
        weft_endpoint_set_ejected(&hs->eps[1], now + 1000000);
        weft_endpoint_set_ejected(&hs->eps[1], 0);
        seen = false;
        for (int k = 0; k < 300 && !seen; k++)
            seen = weft_lb_pick_at(&w1, (uint64_t)k * 0x9e3779b97f4a7c15ull, true, -1, now) == 1;
        assert_true(seen);
        weft_lb_destroy(&w1);
        weft_lb_destroy(&w2);
        weft_hostset_unref(hs);
    }
}

static void test_lb_panic_when_all_ejected(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, 9100);
    assert_int_equal(weft_hostset_bind_state(hs, "panic"), 0);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, 3), 0);
    uint64_t now = 1000000;
    atomic_store(&hs->eps[2].healthy, 0); /* active health: down */
    weft_endpoint_set_ejected(&hs->eps[0], now + 1000);
    weft_endpoint_set_ejected(&hs->eps[1], now + 1000);
    /* Every healthy endpoint ejected: ejection ignored, the healthy ones
     * take traffic; the unhealthy one never does. */
    int counts[3] = {0};
    for (int k = 0; k < 100; k++) {
        int i = weft_lb_pick_at(&lb, 0, false, -1, now);
        assert_true(i == 0 || i == 1);
        counts[i]++;
    }
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 50);
    /* One healthy endpoint not ejected: it takes everything. */
    weft_endpoint_set_ejected(&hs->eps[1], 0);
    for (int k = 0; k < 50; k++)
        assert_int_equal(weft_lb_pick_at(&lb, 0, false, -1, now), 1);
    /* Ejection beats passive avoidance: avoided-but-not-ejected is chosen
     * over ejected. */
    weft_endpoint_avoid(&hs->eps[1], now + 1000);
    for (int k = 0; k < 50; k++)
        assert_int_equal(weft_lb_pick_at(&lb, 0, false, -1, now), 1);
    /* Nothing healthy: no pick, ejected or not. */
    atomic_store(&hs->eps[0].healthy, 0);
    atomic_store(&hs->eps[1].healthy, 0);
    assert_int_equal(weft_lb_pick_at(&lb, 0, false, -1, now), -1);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

/* An endpoint without state (unbound hostset, or OOM) is never ejected. */
static void test_unbound_endpoint(void **state) {
    (void)state;
    weft_hostset *hs = mkset(2, 9200);
    weft_endpoint_set_ejected(&hs->eps[0], UINT64_MAX);
    assert_false(weft_endpoint_ejected(&hs->eps[0], 0));
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, 1), 0);
    int counts[2] = {0};
    for (int k = 0; k < 10; k++)
        counts[weft_lb_pick_at(&lb, 0, false, -1, 1)]++;
    assert_int_equal(counts[0], 5);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_same_block),
        cmocka_unit_test(test_incompatible_layouts),
        cmocka_unit_test(test_destroy_newest_callback_and_owner),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_endpoint_state_survives_hostset_change),
        cmocka_unit_test(test_lb_skips_ejected_at_once),
        cmocka_unit_test(test_lb_panic_when_all_ejected),
        cmocka_unit_test(test_unbound_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
