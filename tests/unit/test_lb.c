/* test_lb.c: hostsets, rings and every load-balancing policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "common/common.h"
#include "config/config.h"
#include "upstream/hostset.h"
#include "upstream/attempt.h"
#include "upstream/lb.h"

#define PICKS 10000

static weft_hostset *mkset(size_t n, const uint32_t *weights) {
    weft_hostset *hs = weft_hostset_new(n);
    assert_non_null(hs);
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.0.%zu", i + 1);
        assert_int_equal(weft_endpoint_set_ip(&hs->eps[i], ip, 8080), 0);
        hs->eps[i].weight = weights ? weights[i] : 1;
    }
    return hs;
}

static void set_healthy(weft_hostset *hs, size_t i, int v) {
    atomic_store(&hs->eps[i].healthy, v);
}

static void count_picks(weft_lb *lb, int *counts, size_t n, int picks) {
    memset(counts, 0, n * sizeof(*counts));
    for (int k = 0; k < picks; k++) {
        int i = weft_lb_pick(lb, 0, false, -1);
        assert_true(i >= 0 && (size_t)i < n);
        counts[i]++;
    }
}

static void assert_near(int got, double want, double rel_tol) {
    double lo = want * (1.0 - rel_tol), hi = want * (1.0 + rel_tol);
    if (got < lo || got > hi)
        fail_msg("count %d not within %.0f%% of %.1f", got, rel_tol * 100, want);
}

/* ---- hostset ---- */

static void test_hostset_new_and_refs(void **state) {
    (void)state;
    weft_hostset *hs = weft_hostset_new(3);
    assert_non_null(hs);
    assert_int_equal(hs->n, 3);
    assert_int_equal(atomic_load(&hs->refs), 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&hs->eps[i].healthy), 1);
        assert_int_equal(hs->eps[i].weight, 1);
    }
    assert_null(hs->ring);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, 1), 0);
    assert_int_equal(atomic_load(&hs->refs), 2);
    weft_lb_destroy(&lb);
    assert_int_equal(atomic_load(&hs->refs), 1);
    weft_hostset_unref(hs);
}

static void test_endpoint_set_ip(void **state) {
    (void)state;
    weft_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    assert_int_equal(weft_endpoint_set_ip(&ep, "127.0.0.1", 8080), 0);
    assert_string_equal(ep.name, "127.0.0.1:8080");
    assert_int_equal(ep.addrlen, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep.addr;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 8080);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);

    assert_int_equal(weft_endpoint_set_ip(&ep, "::1", 9000), 0);
    assert_string_equal(ep.name, "[::1]:9000");
    assert_int_equal(ep.addrlen, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ep.addr;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 9000);
    struct in6_addr lo6 = IN6ADDR_LOOPBACK_INIT;
    assert_memory_equal(&sin6->sin6_addr, &lo6, sizeof(lo6));

    assert_int_equal(weft_endpoint_set_ip(&ep, "[2001:db8:0:0::7]", 80), 0);
    assert_string_equal(ep.name, "[2001:db8::7]:80");

    assert_int_equal(weft_endpoint_set_ip(&ep, "fe80::1%1", 80), 0);
    assert_int_equal(((const struct sockaddr_in6 *)&ep.addr)->sin6_scope_id, 1);
    assert_string_equal(ep.name, "[fe80::1%1]:80");

    assert_int_equal(weft_endpoint_set_ip(&ep, "backend.local", 80), -1);
    assert_int_equal(weft_endpoint_set_ip(&ep, "300.1.1.1", 80), -1);
    assert_int_equal(weft_endpoint_set_ip(&ep, "", 80), -1);
    assert_int_equal(weft_endpoint_set_ip(&ep, "[]", 80), -1);
    assert_int_equal(weft_endpoint_set_ip(&ep, "::1%", 80), -1);
}

static void test_ring_build(void **state) {
    (void)state;
    uint32_t w[] = {1, 3};
    weft_hostset *hs = mkset(2, w);
    assert_int_equal(weft_hostset_build_ring(hs, 400), 0);
    /* ceil(400 / 4) = 100 points per unit of weight, rounded up to 128. */
    assert_int_equal(hs->ring_n, 512);
    size_t per[2] = {0, 0};
    for (size_t i = 0; i < hs->ring_n; i++) {
        per[hs->ring[i].ep]++;
        if (i)
            assert_true(hs->ring[i - 1].hash <= hs->ring[i].hash);
    }
    assert_int_equal(per[0], 128);
    assert_int_equal(per[1], 384);
    /* Points are hashes of "name#i". */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s#0", hs->eps[0].name);
    uint64_t h0 = weft_hash64(buf, strlen(buf), 0);
    bool found = false;
    for (size_t i = 0; i < hs->ring_n; i++)
        found |= hs->ring[i].hash == h0 && hs->ring[i].ep == 0;
    assert_true(found);
    /* A ring smaller than the total weight: max(1, size * w / total). */
    assert_int_equal(weft_hostset_build_ring(hs, 2), 0);
    assert_int_equal(hs->ring_n, 2);
    weft_hostset_unref(hs);
}

/* ---- round robin ---- */

static void test_rr_weighted_exact_and_smooth(void **state) {
    (void)state;
    uint32_t w[] = {1, 2, 7};
    weft_hostset *hs = mkset(3, w);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, 42), 0);
    int seq[PICKS];
    int counts[3] = {0, 0, 0};
    for (int k = 0; k < PICKS; k++) {
        seq[k] = weft_lb_pick(&lb, 0, false, -1);
        assert_true(seq[k] >= 0 && seq[k] < 3);
        counts[seq[k]]++;
    }
    assert_int_equal(counts[0], 1000);
    assert_int_equal(counts[1], 2000);
    assert_int_equal(counts[2], 7000);
    /* Smooth: every window of one full cycle (10 picks) holds the exact
     * proportions, and the weight-7 endpoint never runs longer than 3
     * (nginx's sequence for 1:2:7 is c c b c a c c b c c ...). */
    for (int k = 0; k + 10 <= PICKS; k++) {
        int c[3] = {0, 0, 0};
        for (int j = 0; j < 10; j++)
            c[seq[k + j]]++;
        assert_int_equal(c[0], 1);
        assert_int_equal(c[1], 2);
        assert_int_equal(c[2], 7);
    }
    int run = 0, max_run = 0;
    for (int k = 0; k < PICKS; k++) {
        run = (k && seq[k] == seq[k - 1]) ? run + 1 : 1;
        if (run > max_run)
            max_run = run;
    }
    assert_true(max_run <= 3);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_rr_equal_never_twice(void **state) {
    (void)state;
    weft_hostset *hs = mkset(4, NULL);
    for (uint64_t seed = 1; seed < 6; seed++) {
        weft_lb lb;
        assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, seed), 0);
        int prev = -1, counts[4] = {0, 0, 0, 0};
        for (int k = 0; k < PICKS; k++) {
            int i = weft_lb_pick(&lb, 0, false, -1);
            assert_true(i >= 0 && i < 4);
            assert_int_not_equal(i, prev);
            prev = i;
            counts[i]++;
        }
        for (int i = 0; i < 4; i++)
            assert_int_equal(counts[i], PICKS / 4);
        weft_lb_destroy(&lb);
    }
    weft_hostset_unref(hs);
}

static void test_rr_unhealthy_skipped_and_returns(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, 7), 0);
    set_healthy(hs, 1, 0);
    int counts[3];
    count_picks(&lb, counts, 3, 1000);
    assert_int_equal(counts[1], 0);
    /* Smooth WRR deviates from the exact share by less than the total
     * weight, whatever state the endpoints' current weights were in. */
    assert_in_range(counts[0], 497, 503);
    assert_in_range(counts[2], 497, 503);
    set_healthy(hs, 1, 1);
    count_picks(&lb, counts, 3, 3000);
    for (int i = 0; i < 3; i++)
        assert_in_range(counts[i], 996, 1004);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

/* ---- all policies ---- */

static const weft_lb_policy all_policies[] = {WEFT_LB_ROUND_ROBIN, WEFT_LB_LEAST_REQUEST,
                                              WEFT_LB_RANDOM, WEFT_LB_RING_HASH, WEFT_LB_PEAK_EWMA};

static void test_all_unhealthy_returns_minus_one(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, NULL);
    assert_int_equal(weft_hostset_build_ring(hs, 64), 0);
    for (size_t i = 0; i < 3; i++)
        set_healthy(hs, i, 0);
    for (size_t p = 0; p < WEFT_ARRAY_LEN(all_policies); p++) {
        weft_lb lb;
        assert_int_equal(weft_lb_init(&lb, all_policies[p], hs, 3), 0);
        assert_int_equal(weft_lb_pick(&lb, 0, false, -1), -1);
        assert_int_equal(weft_lb_pick(&lb, 12345, true, -1), -1);
        assert_int_equal(weft_lb_pick(&lb, 0, false, 1), -1);
        weft_lb_destroy(&lb);
    }
    /* An empty hostset as well. */
    weft_hostset *empty = weft_hostset_new(0);
    assert_non_null(empty);
    for (size_t p = 0; p < WEFT_ARRAY_LEN(all_policies); p++) {
        weft_lb lb;
        assert_int_equal(weft_lb_init(&lb, all_policies[p], empty, 3), 0);
        assert_int_equal(weft_lb_pick(&lb, 1, true, -1), -1);
        weft_lb_destroy(&lb);
    }
    weft_hostset_unref(empty);
    weft_hostset_unref(hs);
}

static void test_unhealthy_skipped_every_policy(void **state) {
    (void)state;
    weft_hostset *hs = mkset(4, NULL);
    assert_int_equal(weft_hostset_build_ring(hs, 256), 0);
    set_healthy(hs, 2, 0);
    for (size_t p = 0; p < WEFT_ARRAY_LEN(all_policies); p++) {
        weft_lb lb;
        assert_int_equal(weft_lb_init(&lb, all_policies[p], hs, 11), 0);
        int counts[4] = {0, 0, 0, 0};
        for (uint64_t k = 0; k < 2000; k++) {
            int i = weft_lb_pick(&lb, weft_hash64(&k, sizeof(k), 0), true, -1);
            assert_true(i >= 0 && i < 4);
            counts[i]++;
        }
        assert_int_equal(counts[2], 0);
        assert_true(counts[0] > 0 && counts[1] > 0 && counts[3] > 0);
        weft_lb_destroy(&lb);
    }
    weft_hostset_unref(hs);
}

/* weft_lb_pick_skip (filter retries to an untried endpoint): every
 * policy avoids the skipped endpoints while an unskipped healthy one
 * exists, and falls back to the skipped ones otherwise; more than 64
 * endpoints use more than one word. */
static void test_pick_skip(void **state) {
    (void)state;
    weft_hostset *hs = mkset(4, NULL);
    assert_int_equal(weft_hostset_build_ring(hs, 256), 0);
    for (size_t p = 0; p < WEFT_ARRAY_LEN(all_policies); p++) {
        weft_lb lb;
        assert_int_equal(weft_lb_init(&lb, all_policies[p], hs, 9), 0);
        uint64_t skip = (1u << 0) | (1u << 2);
        int counts[4] = {0, 0, 0, 0};
        for (uint64_t k = 0; k < 1000; k++) {
            int i = weft_lb_pick_skip(&lb, weft_hash64(&k, sizeof(k), 2), true, -1, &skip, 1);
            assert_true(i >= 0 && i < 4);
            counts[i]++;
        }
        assert_int_equal(counts[0] + counts[2], 0);
        assert_true(counts[1] > 0 && counts[3] > 0);
        /* skip + exclude leave one */
        for (uint64_t k = 0; k < 100; k++)
            assert_int_equal(
                weft_lb_pick_skip(&lb, weft_hash64(&k, sizeof(k), 3), true, 3, &skip, 1), 1);
        /* the untried ones are down: a tried one again */
        set_healthy(hs, 1, 0);
        set_healthy(hs, 3, 0);
        for (uint64_t k = 0; k < 100; k++) {
            int i = weft_lb_pick_skip(&lb, weft_hash64(&k, sizeof(k), 4), true, -1, &skip, 1);
            assert_true(i == 0 || i == 2);
        }
        set_healthy(hs, 1, 1);
        set_healthy(hs, 3, 1);
        weft_lb_destroy(&lb);
    }
    weft_hostset_unref(hs);
    /* 100 endpoints, all but #77 skipped */
    hs = mkset(100, NULL);
    uint64_t words[2] = {~0ull, ~0ull};
    words[1] &= ~(1ull << (77 - 64));
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, 1), 0);
    for (int k = 0; k < 10; k++)
        assert_int_equal(weft_lb_pick_skip(&lb, 0, false, -1, words, 1), 77);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_exclude(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, NULL);
    assert_int_equal(weft_hostset_build_ring(hs, 256), 0);
    for (size_t p = 0; p < WEFT_ARRAY_LEN(all_policies); p++) {
        weft_lb lb;
        assert_int_equal(weft_lb_init(&lb, all_policies[p], hs, 5), 0);
        for (uint64_t k = 0; k < 1000; k++) {
            int i = weft_lb_pick(&lb, weft_hash64(&k, sizeof(k), 1), true, 1);
            assert_true(i == 0 || i == 2);
        }
        /* The excluded endpoint is still used when it is the only healthy one. */
        set_healthy(hs, 0, 0);
        set_healthy(hs, 2, 0);
        assert_int_equal(weft_lb_pick(&lb, 99, true, 1), 1);
        /* Out-of-range exclude is ignored. */
        assert_int_equal(weft_lb_pick(&lb, 99, true, 17), 1);
        set_healthy(hs, 0, 1);
        set_healthy(hs, 2, 1);
        weft_lb_destroy(&lb);
    }
    weft_hostset_unref(hs);
}

/* ---- random ---- */

static void test_random_weighted(void **state) {
    (void)state;
    uint32_t w[] = {1, 2, 7};
    weft_hostset *hs = mkset(3, w);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_RANDOM, hs, 2024), 0);
    int counts[3];
    count_picks(&lb, counts, 3, PICKS);
    assert_near(counts[0], 1000, 0.15);
    assert_near(counts[1], 2000, 0.10);
    assert_near(counts[2], 7000, 0.05);
    weft_lb_destroy(&lb);

    /* Same seed, same sequence; different seed, different sequence. */
    weft_lb a, b, c;
    weft_lb_init(&a, WEFT_LB_RANDOM, hs, 9);
    weft_lb_init(&b, WEFT_LB_RANDOM, hs, 9);
    weft_lb_init(&c, WEFT_LB_RANDOM, hs, 10);
    int diff = 0;
    for (int k = 0; k < 100; k++) {
        int x = weft_lb_pick(&a, 0, false, -1);
        assert_int_equal(x, weft_lb_pick(&b, 0, false, -1));
        diff += x != weft_lb_pick(&c, 0, false, -1);
    }
    assert_true(diff > 0);
    weft_lb_destroy(&a);
    weft_lb_destroy(&b);
    weft_lb_destroy(&c);
    weft_hostset_unref(hs);
}

/* ---- least request (P2C) ---- */

static void test_p2c_even_when_idle(void **state) {
    (void)state;
    weft_hostset *hs = mkset(4, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_LEAST_REQUEST, hs, 77), 0);
    int counts[4];
    count_picks(&lb, counts, 4, PICKS);
    for (int i = 0; i < 4; i++)
        assert_near(counts[i], PICKS / 4.0, 0.10);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_p2c_avoids_loaded(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_LEAST_REQUEST, hs, 13), 0);
    for (int k = 0; k < 5; k++)
        weft_lb_on_start(&lb, 1);
    assert_int_equal(lb.st[1].active, 5);
    int counts[3];
    count_picks(&lb, counts, 3, PICKS);
    assert_int_equal(counts[1], 0);
    assert_near(counts[0], PICKS / 2.0, 0.10);
    assert_near(counts[2], PICKS / 2.0, 0.10);

    /* Requests end: it comes back. */
    for (int k = 0; k < 5; k++)
        weft_lb_on_end(&lb, 1, 1000, true, 1);
    assert_int_equal(lb.st[1].active, 0);
    /* An end without its start is refused and changes nothing. */
    assert_int_equal(weft_lb_on_end(&lb, 1, 1000, true, 1), -1);
    assert_int_equal(lb.st[1].active, 0);
    count_picks(&lb, counts, 3, 3000);
    assert_true(counts[1] > 600);
    weft_lb_destroy(&lb);

    /* Two endpoints, one busy: the other wins every time. */
    weft_hostset *two = mkset(2, NULL);
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_LEAST_REQUEST, two, 1), 0);
    weft_lb_on_start(&lb, 0);
    for (int k = 0; k < 1000; k++)
        assert_int_equal(weft_lb_pick(&lb, 0, false, -1), 1);
    weft_lb_destroy(&lb);
    weft_hostset_unref(two);
    weft_hostset_unref(hs);
}

static void test_p2c_weighted_load(void **state) {
    (void)state;
    /* active/weight: 4/8 beats 1/1. */
    uint32_t w[] = {1, 8};
    weft_hostset *hs = mkset(2, w);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_LEAST_REQUEST, hs, 3), 0);
    weft_lb_on_start(&lb, 0);
    for (int k = 0; k < 4; k++)
        weft_lb_on_start(&lb, 1);
    for (int k = 0; k < 100; k++)
        assert_int_equal(weft_lb_pick(&lb, 0, false, -1), 1);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

/* ---- ring hash ---- */

static void test_ring_same_key_same_endpoint(void **state) {
    (void)state;
    weft_hostset *hs = mkset(5, NULL);
    assert_int_equal(weft_hostset_build_ring(hs, 1024), 0);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_RING_HASH, hs, 1), 0);
    weft_lb other;
    assert_int_equal(weft_lb_init(&other, WEFT_LB_RING_HASH, hs, 999), 0);
    int counts[5] = {0, 0, 0, 0, 0};
    for (uint64_t k = 0; k < PICKS; k++) {
        uint64_t h = weft_hash64(&k, sizeof(k), 0);
        int i = weft_lb_pick(&lb, h, true, -1);
        assert_true(i >= 0 && i < 5);
        assert_int_equal(weft_lb_pick(&lb, h, true, -1), i);
        assert_int_equal(weft_lb_pick(&other, h, true, -1), i); /* rng plays no part */
        counts[i]++;
    }
    for (int i = 0; i < 5; i++)
        assert_near(counts[i], PICKS / 5.0, 0.30);
    /* Wraparound: a hash above the last point lands on the first point. */
    assert_int_equal(weft_lb_pick(&lb, UINT64_MAX, true, -1),
                     hs->ring[hs->ring_n - 1].hash == UINT64_MAX ? (int)hs->ring[hs->ring_n - 1].ep
                                                                 : (int)hs->ring[0].ep);
    assert_int_equal(weft_lb_pick(&lb, 0, true, -1), (int)hs->ring[0].ep);
    /* No hash: random over healthy endpoints. */
    int nh[5] = {0, 0, 0, 0, 0};
    count_picks(&lb, nh, 5, 5000);
    for (int i = 0; i < 5; i++)
        assert_near(nh[i], 1000, 0.20);
    weft_lb_destroy(&other);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_ring_remap_minimal(void **state) {
    (void)state;
    const size_t n = 5;
    weft_hostset *full = mkset(n, NULL);
    /* Same endpoints minus the third one (10.0.0.3). */
    weft_hostset *less = weft_hostset_new(n - 1);
    for (size_t i = 0, j = 0; i < n; i++) {
        if (i == 2)
            continue;
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.0.%zu", i + 1);
        assert_int_equal(weft_endpoint_set_ip(&less->eps[j++], ip, 8080), 0);
    }
    assert_int_equal(weft_hostset_build_ring(full, 1024), 0);
    assert_int_equal(weft_hostset_build_ring(less, 1024), 0);
    weft_lb a, b;
    assert_int_equal(weft_lb_init(&a, WEFT_LB_RING_HASH, full, 1), 0);
    assert_int_equal(weft_lb_init(&b, WEFT_LB_RING_HASH, less, 1), 0);
    int moved = 0;
    for (uint64_t k = 0; k < PICKS; k++) {
        uint64_t h = weft_hash64(&k, sizeof(k), 7);
        int x = weft_lb_pick(&a, h, true, -1);
        int y = weft_lb_pick(&b, h, true, -1);
        const char *nx = full->eps[x].name, *ny = less->eps[y].name;
        if (strcmp(nx, ny) != 0) {
            /* Only keys of the removed endpoint move. */
            assert_int_equal(x, 2);
            moved++;
        } else {
            assert_int_not_equal(x, 2);
        }
    }
    assert_near(moved, PICKS / (double)n, 0.35);

    /* Marking one unhealthy moves only its keys too, to the next point. */
    set_healthy(full, 4, 0);
    int moved2 = 0;
    weft_lb c;
    assert_int_equal(weft_lb_init(&c, WEFT_LB_RING_HASH, full, 1), 0);
    for (uint64_t k = 0; k < PICKS; k++) {
        uint64_t h = weft_hash64(&k, sizeof(k), 7);
        set_healthy(full, 4, 1);
        int before = weft_lb_pick(&c, h, true, -1);
        set_healthy(full, 4, 0);
        int after = weft_lb_pick(&c, h, true, -1);
        assert_int_not_equal(after, 4);
        if (before != after) {
            assert_int_equal(before, 4);
            moved2++;
        }
    }
    assert_near(moved2, PICKS / (double)n, 0.35);
    weft_lb_destroy(&c);
    weft_lb_destroy(&a);
    weft_lb_destroy(&b);
    weft_hostset_unref(full);
    weft_hostset_unref(less);
}

static void test_ring_weighted(void **state) {
    (void)state;
    uint32_t w[] = {1, 4};
    weft_hostset *hs = mkset(2, w);
    assert_int_equal(weft_hostset_build_ring(hs, 2000), 0);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_RING_HASH, hs, 1), 0);
    int counts[2] = {0, 0};
    for (uint64_t k = 0; k < PICKS; k++)
        counts[weft_lb_pick(&lb, weft_hash64(&k, sizeof(k), 3), true, -1)]++;
    assert_near(counts[0], PICKS / 5.0, 0.25);
    assert_near(counts[1], PICKS * 4 / 5.0, 0.07);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

/* ---- peak EWMA ---- */

static void test_ewma_prefers_fast(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_PEAK_EWMA, hs, 21), 0);
    uint64_t now = 1000000;
    /* Unprobed endpoints cost nothing, so each gets tried early: an
     * unprobed endpoint wins whenever it is one of the two choices. */
    bool tried[3] = {false, false, false};
    for (int k = 0; k < 12; k++) {
        int i = weft_lb_pick_at(&lb, 0, false, -1, now);
        tried[i] = true;
        weft_lb_on_start(&lb, i);
        weft_lb_on_end(&lb, i, i == 0 ? 1000 : 50000, true, now);
        now += 1000;
    }
    assert_true(tried[0] && tried[1] && tried[2]);
    assert_true(lb.st[0].ewma_us > 0 && lb.st[1].ewma_us > 0 && lb.st[2].ewma_us > 0);
    int counts[3] = {0, 0, 0};
    for (int k = 0; k < PICKS; k++) {
        int i = weft_lb_pick_at(&lb, 0, false, -1, now);
        counts[i]++;
        weft_lb_on_start(&lb, i);
        weft_lb_on_end(&lb, i, i == 0 ? 1000 : 50000, true, now);
        now += 100;
    }
    /* Fast wins whenever it is one of the two choices (2/3 of the time). */
    assert_near(counts[0], PICKS * 2 / 3.0, 0.05);
    assert_true(counts[0] > 3 * counts[1] && counts[0] > 3 * counts[2]);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_ewma_peak_and_decay(void **state) {
    (void)state;
    weft_hostset *hs = mkset(2, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_PEAK_EWMA, hs, 5), 0);
    uint64_t t = 5000000;
    weft_lb_on_start(&lb, 0);
    weft_lb_on_end(&lb, 0, 1000, true, t);
    assert_true(lb.st[0].ewma_us == 1000.0);
    /* A slower sample takes over at once (peak). */
    weft_lb_on_start(&lb, 0);
    weft_lb_on_end(&lb, 0, 80000, true, t + 10);
    assert_true(lb.st[0].ewma_us == 80000.0);
    /* A faster sample one time constant later moves it 1-1/e of the way. */
    weft_lb_on_start(&lb, 0);
    weft_lb_on_end(&lb, 0, 1000, true, t + 10 + lb.ewma_decay_us);
    double want = 80000.0 * 0.36787944117 + 1000.0 * (1 - 0.36787944117);
    assert_true(lb.st[0].ewma_us > want - 1 && lb.st[0].ewma_us < want + 1);

    /* Endpoint 1 slow now; after long idleness its cost decays and it is
     * preferred over a busy endpoint 0. */
    weft_lb_on_start(&lb, 1);
    weft_lb_on_end(&lb, 1, 200000, true, t);
    uint64_t soon = t + 10 + lb.ewma_decay_us + 1000;
    assert_int_equal(weft_lb_pick_at(&lb, 0, false, -1, soon), 0);
    for (int k = 0; k < 3; k++)
        weft_lb_on_start(&lb, 0);
    uint64_t later = soon + 10 * lb.ewma_decay_us;
    assert_int_equal(weft_lb_pick_at(&lb, 0, false, -1, later), 1);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_ewma_failure_penalty(void **state) {
    (void)state;
    weft_hostset *hs = mkset(2, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_PEAK_EWMA, hs, 8), 0);
    uint64_t t = 1000;
    for (int i = 0; i < 2; i++) {
        weft_lb_on_start(&lb, i);
        weft_lb_on_end(&lb, i, 2000, true, t);
    }
    weft_lb_on_start(&lb, 1);
    weft_lb_on_end(&lb, 1, 0, false, t + 100);
    assert_true(lb.st[1].ewma_us >= (double)lb.ewma_decay_us);
    for (int k = 0; k < 100; k++)
        assert_int_equal(weft_lb_pick_at(&lb, 0, false, -1, t + 200), 0);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_ewma_unprobed_busy_not_flooded(void **state) {
    (void)state;
    /* An endpoint that has requests in flight but no answer yet is not
     * free any more: a probed, fast endpoint wins. */
    weft_hostset *hs = mkset(2, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_PEAK_EWMA, hs, 8), 0);
    weft_lb_on_start(&lb, 0);
    weft_lb_on_end(&lb, 0, 5000, true, 100);
    weft_lb_on_start(&lb, 1);
    for (int k = 0; k < 50; k++)
        assert_int_equal(weft_lb_pick_at(&lb, 0, false, -1, 200), 0);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_on_start_end_bounds(void **state) {
    (void)state;
    weft_hostset *hs = mkset(2, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_LEAST_REQUEST, hs, 8), 0);
    weft_lb_on_start(&lb, -1);
    weft_lb_on_start(&lb, 2);
    assert_int_equal(weft_lb_on_end(&lb, 5, 10, true, 1), -1);
    assert_int_equal(weft_lb_on_end(&lb, 0, 10, true, 1), -1); /* nothing in flight */
    assert_int_equal(lb.st[0].active, 0);
    assert_int_equal(lb.st[1].active, 0);
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

/* An attempt holds its lb (and so its hostset): after the cluster moves to
 * a new lb on a new hostset, the endpoint it points to stays readable and
 * its end is counted on the lb that counted its start, exactly once. */
static void test_attempt_outlives_hostset(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, NULL);
    weft_lb *lb = weft_lb_new(WEFT_LB_LEAST_REQUEST, hs, 3, NULL);
    weft_hostset_unref(hs); /* the lb holds it */
    assert_non_null(lb);
    weft_attempt a;
    weft_attempt_init(&a);
    int idx = weft_lb_pick(lb, 0, false, -1);
    weft_attempt_start(&a, lb, idx, 1);
    assert_int_equal(weft_lb_active(lb, -1), 1);
    char name[80];
    snprintf(name, sizeof(name), "%s", a.ep->name);

    /* The hostset changes: the cluster drops its reference to the old lb. */
    weft_hostset *hs2 = mkset(2, NULL);
    weft_lb *lb2 = weft_lb_new(WEFT_LB_LEAST_REQUEST, hs2, 4, lb);
    weft_hostset_unref(hs2);
    weft_lb_unref(lb);
    assert_string_equal(a.ep->name, name); /* still valid (ASan checks) */
    weft_attempt_end(&a, true, 10, 2);
    weft_attempt_end(&a, true, 10, 2); /* a second end is a no-op */
    assert_int_equal(weft_lb_active(a.lb, -1), 0);
    assert_int_equal(weft_lb_active(lb2, -1), 0);
    weft_attempt_clear(&a); /* drops the last reference to the old lb */
    weft_lb_unref(lb2);
}

/* A cleared attempt that never ended ends as a failure, once. */
static void test_attempt_clear_ends_once(void **state) {
    (void)state;
    weft_hostset *hs = mkset(2, NULL);
    weft_lb *lb = weft_lb_new(WEFT_LB_ROUND_ROBIN, hs, 3, NULL);
    weft_hostset_unref(hs);
    weft_attempt a;
    weft_attempt_init(&a);
    weft_attempt_start(&a, lb, 0, 1);
    weft_attempt_start(&a, lb, 1, 2); /* the previous one ends first */
    assert_int_equal(weft_lb_active(lb, 0), 0);
    assert_int_equal(weft_lb_active(lb, 1), 1);
    weft_attempt_clear(&a);
    assert_int_equal(weft_lb_active(lb, -1), 0);
    weft_attempt_clear(&a);
    assert_int_equal(weft_lb_active(lb, -1), 0);
    weft_lb_unref(lb);
}

/* Passive health: an avoided endpoint is not picked while another is
 * eligible, is picked when all are avoided, and comes back after. */
static void test_passive_avoid(void **state) {
    (void)state;
    weft_hostset *hs = mkset(3, NULL);
    weft_lb lb;
    assert_int_equal(weft_lb_init(&lb, WEFT_LB_ROUND_ROBIN, hs, 9), 0);
    uint64_t now = 1000000;
    weft_endpoint_avoid(&hs->eps[1], now + 500);
    for (int k = 0; k < 60; k++)
        assert_int_not_equal(weft_lb_pick_at(&lb, 0, false, -1, now), 1);
    weft_endpoint_avoid(&hs->eps[0], now + 500);
    weft_endpoint_avoid(&hs->eps[2], now + 500);
    int seen[3] = {0, 0, 0};
    for (int k = 0; k < 60; k++)
        seen[weft_lb_pick_at(&lb, 0, false, -1, now)]++;
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0); /* all avoided: all eligible */
    weft_endpoint_avoid(&hs->eps[0], 0);
    weft_endpoint_avoid(&hs->eps[2], 0);
    seen[0] = seen[1] = seen[2] = 0;
    for (int k = 0; k < 60; k++)
        seen[weft_lb_pick_at(&lb, 0, false, -1, now + 501)]++;
    assert_true(seen[1] > 0); /* avoidance over */
    weft_lb_destroy(&lb);
    weft_hostset_unref(hs);
}

static void test_endpoint_meta(void **state) {
    (void)state;
    weft_hostset *hs = weft_hostset_new(2);
    assert_non_null(hs);
    /* a fresh endpoint: empty locality, no labels */
    assert_string_equal(hs->eps[0].region, "");
    assert_int_equal(hs->eps[0].n_labels, 0);
    assert_null(weft_endpoint_label_get(&hs->eps[0], "version"));
    assert_true(weft_endpoint_meta_equal(&hs->eps[0], &hs->eps[1]));
    char k1[] = "app", v1[] = "reviews", k2[] = "version", v2[] = "v2";
    weft_cfg_label labels[2] = {{k1, v1}, {k2, v2}};
    char r[] = "us-east1", z[] = "us-east1-b", sz[] = "";
    weft_cfg_endpoint cfg = {
        .region = r, .zone = z, .subzone = sz, .labels = labels, .n_labels = 2};
    assert_int_equal(weft_endpoint_set_meta(&hs->eps[0], &cfg), 0);
    /* the hostset owns a copy: the config may go */
    memset(k2, 'x', 3);
    memset(r, 'x', 3);
    assert_string_equal(hs->eps[0].region, "us-east1");
    assert_string_equal(hs->eps[0].zone, "us-east1-b");
    assert_string_equal(hs->eps[0].subzone, "");
    assert_int_equal(hs->eps[0].n_labels, 2);
    assert_string_equal(weft_endpoint_label_get(&hs->eps[0], "version"), "v2");
    assert_string_equal(weft_endpoint_label_get(&hs->eps[0], "app"), "reviews");
    assert_null(weft_endpoint_label_get(&hs->eps[0], "zone"));
    assert_false(weft_endpoint_meta_equal(&hs->eps[0], &hs->eps[1]));
    /* replacing frees the previous copy (ASan would see a leak) */
    weft_cfg_endpoint none = {0};
    assert_int_equal(weft_endpoint_set_meta(&hs->eps[0], &none), 0);
    assert_string_equal(hs->eps[0].region, "");
    assert_int_equal(hs->eps[0].n_labels, 0);
    assert_true(weft_endpoint_meta_equal(&hs->eps[0], &hs->eps[1]));
    assert_int_equal(weft_endpoint_set_meta(&hs->eps[1], &cfg), 0);
    weft_hostset_unref(hs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_meta),
        cmocka_unit_test(test_hostset_new_and_refs),
        cmocka_unit_test(test_endpoint_set_ip),
        cmocka_unit_test(test_ring_build),
        cmocka_unit_test(test_rr_weighted_exact_and_smooth),
        cmocka_unit_test(test_rr_equal_never_twice),
        cmocka_unit_test(test_rr_unhealthy_skipped_and_returns),
        cmocka_unit_test(test_all_unhealthy_returns_minus_one),
        cmocka_unit_test(test_unhealthy_skipped_every_policy),
        cmocka_unit_test(test_pick_skip),
        cmocka_unit_test(test_exclude),
        cmocka_unit_test(test_random_weighted),
        cmocka_unit_test(test_p2c_even_when_idle),
        cmocka_unit_test(test_p2c_avoids_loaded),
        cmocka_unit_test(test_p2c_weighted_load),
        cmocka_unit_test(test_ring_same_key_same_endpoint),
        cmocka_unit_test(test_ring_remap_minimal),
        cmocka_unit_test(test_ring_weighted),
        cmocka_unit_test(test_ewma_prefers_fast),
        cmocka_unit_test(test_ewma_peak_and_decay),
        cmocka_unit_test(test_ewma_failure_penalty),
        cmocka_unit_test(test_ewma_unprobed_busy_not_flooded),
        cmocka_unit_test(test_on_start_end_bounds),
        cmocka_unit_test(test_attempt_outlives_hostset),
        cmocka_unit_test(test_attempt_clear_ends_once),
        cmocka_unit_test(test_passive_avoid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
