/* test_stream_retry.c: the ABI 1.1 retry calls in the stream pipeline,
 * against the fake upstream (weft_upstream_test_ops): per-attempt request
 * heads (on_upstream_request), the per-try timeout (retried, or a 504 UT),
 * delayed retries (cancelled by the client leaving and by the route
 * timeout; refused while one waits), retries to an untried endpoint (and
 * the fall back to a tried one), attempt info flags and endpoint index,
 * and what on_upstream_request may not do. Attempts start and end once. */
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

static void start(tf_script **fs, size_t n) {
    int ups[2] = {sh_up_new(&H, false), sh_up_new(&H, false)};
    st_start(&H, fs, n, "", "", ups, 2);
    sh_fake_enable(&H);
}

static uint32_t lb_active(void) {
    return weft_lb_active(sh_lb(&H, 0), -1);
}

static bool fakes_at_least(void *n) {
    return sh_fake_count() >= *(int *)n;
}

static void wait_fakes(int n) {
    sh_run_until(&H, fakes_at_least, &n, "another upstream attempt");
}

static void assert_over(sh_ds *d, tf_script **fs, size_t n) {
    for (int k = 0; k < sh_fake_count(); k++)
        assert_true(sh_fake_get(k)->released);
    assert_int_equal(d->dones, 1);
    assert_false(d->att_live_at_done);
    assert_int_equal(lb_active(), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fs[i]->creates, fs[i]->destroys);
}

static const char *const OK[] = {"content-length: 2", NULL};

/* ---- per-attempt request heads ---- */

typedef struct up_seen {
    int reply_rc, retry_rc, path_rc, set_rc;
    int calls;
} up_seen;

static void mark_attempt(tf_script *sc, weft_stream *s, uint32_t attempt) {
    up_seen *u = sc->custom_arg;
    u->calls++;
    char v[8];
    int n = snprintf(v, sizeof(v), "%u", attempt);
    u->set_rc = weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-weft-attempt-count"),
                                (weft_str){v, (size_t)n});
    weft_header_remove(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-drop"));
    /* not allowed here */
    u->reply_rc = weft_reply_simple(s, 500, WEFT_STR("no"), WEFT_STR(""));
    u->retry_rc = weft_upstream_retry(s);
    u->path_rc = weft_request_set_path(s, WEFT_STR("/elsewhere"));
}

static void test_per_attempt_head(void **state) {
    (void)state;
    up_seen u = {0};
    tf_script f1 = {.name = "f1",
                    .up_request = mark_attempt,
                    .custom_arg = &u,
                    .act[TF_ATTEMPT] = TF_RETRY,
                    .times[TF_ATTEMPT] = 1};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_req(d, "GET", "/up");
    sh_req_header(d, "x-drop", "1");
    sh_req_head(d, -1);
    assert_int_equal(sh_fake_count(), 1);
    sh_fake_connect(0);
    assert_non_null(strstr(sh_fake_req(0), "x-weft-attempt-count: 1\r\n"));
    assert_null(strstr(sh_fake_req(0), "x-drop"));
    assert_non_null(strstr(sh_fake_req(0), "GET /up HTTP/1.1\r\n")); /* path not changed */
    sh_fake_head(0, 503, OK);
    assert_int_equal(sh_fake_count(), 2);
    sh_fake_connect(1);
    const char *r1 = sh_fake_req(1);
    assert_non_null(strstr(r1, "x-weft-attempt-count: 2\r\n"));
    assert_null(strstr(r1, "x-weft-attempt-count: 1"));
    assert_null(strstr(r1, "x-drop"));
    sh_fake_head(1, 200, OK);
    sh_fake_body(1, "ok");
    sh_fake_complete(1);
    sh_run_until(&H, sh_ds_ended, d, "the end");
    assert_int_equal(d->status, 200);
    assert_int_equal(u.calls, 2);
    assert_int_equal(u.set_rc, WEFT_OK);
    assert_int_equal(u.reply_rc, WEFT_ERR_STATE);
    assert_int_equal(u.retry_rc, WEFT_ERR_STATE);
    assert_int_equal(u.path_rc, WEFT_ERR_STATE);
    assert_int_equal(f1.attempts[0].attempt, 1);
    assert_int_equal(f1.attempts[1].attempt, 2);
    assert_int_equal(f1.attempts[0].size, sizeof(weft_attempt_info));
    assert_over(d, fs, 1);
    sh_ds_free(d);
}

/* ---- per-try timeout ---- */

typedef struct pt_cfg {
    uint64_t try_ms;
    bool retry;
    int retries; /* retry the first `retries` attempts (0: 1) */
    weft_retry_options opts;
    int retry_rc, again_rc;
} pt_cfg;

static void per_try(tf_script *sc, weft_stream *s, tf_hook hook) {
    pt_cfg *c = sc->custom_arg;
    if (hook == TF_REQ_HEADERS && c->try_ms)
        assert_int_equal(weft_upstream_set_try_timeout(s, c->try_ms), WEFT_OK);
    /* (custom runs before the hook records this attempt: n_attempts is
     * the number of earlier ones) */
    if (hook == TF_ATTEMPT && c->retry && sc->n_attempts < (c->retries ? c->retries : 1)) {
        c->retry_rc = weft_upstream_retry_ex(s, &c->opts);
        if (c->opts.delay_ms) /* a second call replaces the options (same delay) */
            c->again_rc = weft_upstream_retry_ex(s, &c->opts);
    }
}

static void test_per_try_timeout_retried(void **state) {
    (void)state;
    pt_cfg c = {.try_ms = 100, .retry = true, .opts = {sizeof(weft_retry_options), 0, 0}};
    tf_script f1 = {.name = "f1", .custom = per_try, .custom_arg = &c};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    uint64_t pt0 = sh_counter(&H, H.snap->clusters[0].rq_per_try_timeout);
    uint64_t rt0 = sh_counter(&H, H.snap->clusters[0].rq_retry_filter);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    wait_fakes(2); /* the first attempt is cut after 100 ms */
    assert_true(sh_fake_get(0)->released);
    assert_int_equal(f1.n_attempts, 1);
    assert_int_equal(f1.attempts[0].result, WEFT_ATTEMPT_TIMEOUT);
    assert_true(f1.attempts[0].flags & WEFT_ATTEMPT_F_PER_TRY_TIMEOUT);
    assert_true(f1.attempts[0].duration_us >= 100000);
    assert_int_equal(c.retry_rc, WEFT_OK);
    sh_fake_connect(1);
    sh_fake_head(1, 200, OK);
    sh_fake_body(1, "ok");
    sh_fake_complete(1);
    sh_run_until(&H, sh_ds_ended, d, "the end");
    assert_int_equal(d->status, 200);
    /* (the stats registry outlives the harness: deltas) */
    assert_int_equal(sh_counter(&H, H.snap->clusters[0].rq_per_try_timeout) - pt0, 1);
    assert_int_equal(sh_counter(&H, H.snap->clusters[0].rq_retry_filter) - rt0, 1);
    assert_over(d, fs, 1);
    sh_ds_free(d);
}

static void test_per_try_timeout_alone_is_504(void **state) {
    (void)state;
    pt_cfg c = {.try_ms = 100};
    tf_script f1 = {.name = "f1", .custom = per_try, .custom_arg = &c};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_run_until(&H, sh_ds_ended, d, "the 504");
    assert_int_equal(d->status, 504);
    assert_non_null(strstr(sh_ds_headers(d), "x-weft-reason: upstream_per_try_timeout"));
    assert_int_equal(sh_fake_count(), 1);
    assert_over(d, fs, 1);
    sh_ds_free(d);
    assert_string_equal(f1.info_flags, "UT");
}

/* ---- delayed retries ---- */

static void test_backoff_cancelled_by_client_reset(void **state) {
    (void)state;
    pt_cfg c = {.retry = true, .opts = {sizeof(weft_retry_options), 300, 0}};
    tf_script f1 = {.name = "f1", .custom = per_try, .custom_arg = &c};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 503, OK);
    assert_int_equal(c.retry_rc, WEFT_OK);
    assert_int_equal(c.again_rc, WEFT_OK);
    assert_true(sh_fake_get(0)->released);
    assert_int_equal(lb_active(), 0); /* nothing in flight while it waits */
    assert_int_equal(d->heads, 0);
    sh_ds_client_reset(d);
    sh_run_for(&H, 500);
    assert_int_equal(sh_fake_count(), 1); /* the wait was cancelled */
    assert_int_equal(d->dones, 1);
    assert_int_equal(f1.creates, f1.destroys);
    sh_ds_free(d);
}

static void test_backoff_then_attempt(void **state) {
    (void)state;
    pt_cfg c = {.retry = true, .opts = {sizeof(weft_retry_options), 200, 0}};
    tf_script f1 = {.name = "f1", .custom = per_try, .custom_arg = &c};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    uint64_t bo0 = sh_counter(&H, H.snap->clusters[0].rq_retry_backoff);
    uint64_t t0 = weft_now_us();
    sh_fake_head(0, 503, OK);
    wait_fakes(2);
    uint64_t waited = weft_now_us() - t0;
    assert_true(waited >= 200000);
    sh_fake_connect(1);
    assert_non_null(strstr(sh_fake_req(1), "GET /up HTTP/1.1\r\n"));
    sh_fake_head(1, 200, OK);
    sh_fake_body(1, "ok");
    sh_fake_complete(1);
    sh_run_until(&H, sh_ds_ended, d, "the end");
    assert_int_equal(d->status, 200);
    assert_int_equal(f1.n_attempts, 2);
    assert_true(f1.attempts[1].backoff_us >= 200000);
    assert_int_equal(f1.attempts[0].backoff_us, 0);
    assert_int_equal(sh_counter(&H, H.snap->clusters[0].rq_retry_backoff) - bo0, 1);
    assert_over(d, fs, 1);
    sh_ds_free(d);
}

/* /slow has a 150 ms route timeout: a 2 s backoff ends with the 504. */
static void test_backoff_cut_by_route_timeout(void **state) {
    (void)state;
    pt_cfg c = {.retry = true, .opts = {sizeof(weft_retry_options), 2000, 0}};
    tf_script f1 = {.name = "f1", .custom = per_try, .custom_arg = &c};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    sh_ds *d = sh_ds_new(&H);
    uint64_t t0 = weft_now_us();
    sh_request(d, "GET", "/slow", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 503, OK);
    sh_run_until(&H, sh_ds_ended, d, "the 504");
    assert_true(weft_now_us() - t0 < 1500000);
    assert_int_equal(d->status, 504);
    assert_int_equal(sh_fake_count(), 1);
    assert_over(d, fs, 1);
    sh_ds_free(d);
}

/* Bad options. */
static void bad_opts(tf_script *sc, weft_stream *s, tf_hook hook) {
    int *rc = sc->custom_arg;
    if (hook != TF_ATTEMPT)
        return;
    weft_retry_options small = {sizeof(size_t), 0, 0};
    weft_retry_options flags = {sizeof(weft_retry_options), 0, 0x80};
    weft_retry_options delay = {sizeof(weft_retry_options), 3600001, 0};
    rc[0] = weft_upstream_retry_ex(s, NULL);
    rc[1] = weft_upstream_retry_ex(s, &small);
    rc[2] = weft_upstream_retry_ex(s, &flags);
    rc[3] = weft_upstream_retry_ex(s, &delay);
    rc[4] = weft_upstream_set_try_timeout(s, 86400001);
    weft_str v;
    rc[5] = weft_attempt_endpoint_label(s, WEFT_STR("version"), &v);
    rc[6] = weft_attempt_endpoint_label(s, WEFT_STR("version"), NULL);
}

static void test_bad_options(void **state) {
    (void)state;
    int rc[7] = {0};
    tf_script f1 = {.name = "f1", .custom = bad_opts, .custom_arg = rc};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_fake_connect(0);
    sh_fake_head(0, 503, OK);
    sh_fake_body(0, "no");
    sh_fake_complete(0);
    sh_run_until(&H, sh_ds_ended, d, "the end");
    assert_int_equal(d->status, 503);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rc[i], WEFT_ERR_INVALID);
    assert_int_equal(rc[5], WEFT_ERR_NOT_FOUND); /* no labels configured */
    assert_int_equal(rc[6], WEFT_ERR_INVALID);
    assert_int_equal(sh_fake_count(), 1);
    assert_over(d, fs, 1);
    sh_ds_free(d);
}

/* ---- untried endpoints ---- */

static void test_other_endpoint_then_fallback(void **state) {
    (void)state;
    pt_cfg c = {.retry = true,
                .retries = 2,
                .opts = {sizeof(weft_retry_options), 0, WEFT_RETRY_OTHER_ENDPOINT}};
    tf_script f1 = {.name = "f1", .custom = per_try, .custom_arg = &c};
    tf_script *fs[] = {&f1};
    start(fs, 1);
    for (int round = 0; round < 4; round++) {
        sh_ds *d = sh_ds_new(&H);
        int base = sh_fake_count();
        f1.n_attempts = 0;
        sh_request(d, "GET", "/up", NULL);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(sh_fake_count(), base + k + 1);
            sh_fake_connect(base + k);
            sh_fake_head(base + k, 503, OK);
            if (k == 2) {
                sh_fake_body(base + k, "no");
                sh_fake_complete(base + k);
            }
        }
        sh_run_until(&H, sh_ds_ended, d, "the end");
        assert_int_equal(d->status, 503);
        assert_int_equal(f1.n_attempts, 3);
        /* two endpoints: the second attempt goes to the other one, the
         * third has only tried ones left */
        assert_true(f1.attempts[0].endpoint_index >= 0 && f1.attempts[0].endpoint_index < 2);
        assert_int_equal(f1.attempts[1].endpoint_index, 1 - f1.attempts[0].endpoint_index);
        assert_string_not_equal(sh_fake_get(base)->ep, sh_fake_get(base + 1)->ep);
        assert_int_equal(f1.attempts[0].flags, 0);
        assert_int_equal(f1.attempts[1].flags, WEFT_ATTEMPT_F_OTHER_ENDPOINT);
        assert_int_equal(f1.attempts[2].flags,
                         WEFT_ATTEMPT_F_OTHER_ENDPOINT | WEFT_ATTEMPT_F_ENDPOINT_TRIED);
        assert_over(d, fs, 1);
        sh_ds_free(d);
    }
}

int main(void) {
    const struct CMUnitTest t[] = {
        cmocka_unit_test_teardown(test_per_attempt_head, teardown),
        cmocka_unit_test_teardown(test_per_try_timeout_retried, teardown),
        cmocka_unit_test_teardown(test_per_try_timeout_alone_is_504, teardown),
        cmocka_unit_test_teardown(test_backoff_cancelled_by_client_reset, teardown),
        cmocka_unit_test_teardown(test_backoff_then_attempt, teardown),
        cmocka_unit_test_teardown(test_backoff_cut_by_route_timeout, teardown),
        cmocka_unit_test_teardown(test_bad_options, teardown),
        cmocka_unit_test_teardown(test_other_endpoint_then_fallback, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
