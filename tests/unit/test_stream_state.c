/* test_stream_state.c: the core's endpoint calls of SDK 1.1's state group
 * (core/filter/filter_state.c) on live streams, against a fake upstream:
 * the view is the worker's load-balancer hostset (addresses, health,
 * ejection time), an ejection from a hook is honoured by the very pick
 * that follows it, counters, the log phase, and misuse: a cluster handle
 * that is not one of the stream's snapshot, bad slots and durations, a
 * stale stream handle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stream_harness.h"
#include "stream_test_config.h"

static sh H;

static int teardown(void **state) {
    (void)state;
    sh_free(&H);
    memset(&H, 0, sizeof(H));
    return 0;
}

static const weft_cluster *cluster0(void) {
    return (const weft_cluster *)&H.snap->clusters[0];
}

static char ep_name[2][80];
static weft_stream *kept_handle;
static int checks_done, complete_rc;

static bool same(weft_str a, const char *b) {
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

/* Request headers of the first stream: read the view, eject endpoint 0. */
static void on_hook(tf_script *sc, weft_stream *s, tf_hook hook) {
    (void)sc;
    const weft_cluster *c = cluster0();
    if (hook == TF_COMPLETE) {
        uint64_t v = 0;
        complete_rc = weft_endpoint_counter_add(s, c, 1, 2, 1, &v); /* log phase: allowed */
        kept_handle = s;
        return;
    }
    if (hook != TF_REQ_HEADERS || checks_done++)
        return;
    size_t n = 0, idx = 9;
    assert_int_equal(weft_cluster_endpoint_count(s, c, &n), WEFT_OK);
    assert_int_equal(n, 2);
    weft_endpoint_info info = {.size = sizeof(info)};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(weft_cluster_endpoint_get(s, c, i, &info), WEFT_OK);
        assert_true(same(info.address, ep_name[i]));
        assert_int_equal(info.health, WEFT_ENDPOINT_HEALTHY);
        assert_int_equal(info.ejected_ms, 0);
        assert_int_equal(info.weight, 1);
        assert_int_equal(info.n_labels, 0);
        assert_int_equal(info.region.len, 0);
        assert_int_equal(weft_cluster_endpoint_find(s, c, info.address, &idx), WEFT_OK);
        assert_int_equal(idx, i);
    }
    assert_int_equal(weft_cluster_endpoint_get(s, c, 2, &info), WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_cluster_endpoint_find(s, c, WEFT_STR("127.0.0.1:1"), &idx),
                     WEFT_ERR_NOT_FOUND);
    weft_str k, v;
    assert_int_equal(weft_cluster_endpoint_label(s, c, 0, 0, &k, &v), WEFT_ERR_NOT_FOUND);
    /* Handles that are not a cluster of this stream's snapshot. */
    assert_int_equal(weft_cluster_endpoint_count(s, NULL, &n), WEFT_ERR_INVALID);
    assert_int_equal(
        weft_cluster_endpoint_count(s, (const weft_cluster *)((const char *)c + 1), &n),
        WEFT_ERR_INVALID);
    assert_int_equal(weft_cluster_endpoint_count(s, (const weft_cluster *)&n, &n),
                     WEFT_ERR_INVALID);
    info.size = 8;
    assert_int_equal(weft_cluster_endpoint_get(s, c, 0, &info), WEFT_ERR_INVALID);
    info.size = sizeof(info);
    /* Counters. */
    uint64_t val = 0;
    assert_int_equal(weft_endpoint_counter_add(s, c, 0, WEFT_ENDPOINT_COUNTER_SLOTS, 1, &val),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_endpoint_counter_add(s, c, 0, 3, 2, &val), WEFT_OK);
    assert_int_equal(val, 2);
    assert_int_equal(weft_endpoint_counter_set(s, c, 0, 3, 40), WEFT_OK);
    assert_int_equal(weft_endpoint_counter_add(s, c, 0, 3, 0, &val), WEFT_OK);
    assert_int_equal(val, 40);
    assert_int_equal(weft_endpoint_counter_add(s, c, 7, 3, 0, &val), WEFT_ERR_NOT_FOUND);
    /* Ejection: bad durations, then endpoint 0 for 10 s. */
    assert_int_equal(weft_endpoint_eject(s, c, 0, 0), WEFT_ERR_INVALID);
    assert_int_equal(weft_endpoint_eject(s, c, 0, 86400001), WEFT_ERR_INVALID);
    assert_int_equal(weft_endpoint_eject(s, c, 0, 10000), WEFT_OK);
    assert_int_equal(weft_cluster_endpoint_get(s, c, 0, &info), WEFT_OK);
    assert_int_equal(info.health, WEFT_ENDPOINT_EJECTED);
    assert_true(info.ejected_ms > 9000 && info.ejected_ms <= 10000);
}

static void test_endpoint_calls_and_ejection(void **state) {
    (void)state;
    tf_script f = {.name = "f", .custom = on_hook};
    tf_script *fs[] = {&f};
    int ups[2] = {sh_up_new(&H, false), sh_up_new(&H, false)};
    st_start(&H, fs, 1, "", "lb_policy: round_robin", ups, 2);
    sh_fake_enable(&H);
    for (int i = 0; i < 2; i++)
        snprintf(ep_name[i], sizeof(ep_name[i]), "127.0.0.1:%u", H.up[ups[i]].port);
    /* Every request goes to endpoint 1: the first is picked right after
     * the hook that ejected endpoint 0. */
    for (int r = 0; r < 4; r++) {
        sh_ds *d = sh_ds_new(&H);
        sh_request(d, "GET", "/up", NULL);
        assert_int_equal(sh_fake_count(), r + 1);
        assert_string_equal(sh_fake_get(r)->ep, ep_name[1]);
        sh_fake_connect(r);
        sh_fake_head(r, 200, (const char *const[]){"content-length: 0", NULL});
        sh_fake_complete(r);
        sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
        assert_int_equal(d->status, 200);
        sh_ds_free(d);
    }
    assert_int_equal(checks_done, 4);
    assert_int_equal(complete_rc, WEFT_OK);
    /* The handle of an exchange that ended is stale. */
    size_t n = 0;
    assert_int_equal(weft_cluster_endpoint_count(kept_handle, cluster0(), &n), WEFT_ERR_HANDLE);
    /* What the filters left is on the shared endpoint state. */
    weft_lb *lb = sh_lb(&H, 0);
    assert_int_equal(atomic_load(&lb->hs->eps[0].state->counters[3]), 40);
    assert_int_equal(atomic_load(&lb->hs->eps[1].state->counters[2]), 4);
    assert_true(weft_endpoint_ejected(&lb->hs->eps[0], weft_now_us()));
    /* Restored: the balancer picks endpoint 0 again. */
    weft_endpoint_set_ejected(&lb->hs->eps[0], 0);
    bool seen0 = false;
    for (int i = 0; i < 4 && !seen0; i++)
        seen0 = weft_lb_pick(lb, 0, false, -1) == 0;
    assert_true(seen0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_endpoint_calls_and_ejection, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
