/* test_filtertest_async: the kit mirrors SDK 1.1's worker handles and
 * worker/config timers with weft's semantics, driven through the wtimer
 * test filter (tests/filters/wtimer.c, linked in): worker timers and
 * config timers fire on the kit's clock, each at its deadline; a
 * reconfigure (the kit's reload) cancels the old config's worker timers
 * before its worker_destroy and its config timers before config_destroy,
 * and the new config's timers take over; the worker handle is NULL in
 * config_create and stale after worker_destroy; misuse (a stale, NULL or
 * another thread's handle, a NULL callback, an unknown timer, a config
 * timer outside a config). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filtertest.h>

const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);

static char err[512];

static wft_env *make_env(const char *yaml) {
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    if (!env)
        fail_msg("%s", err);
    if (wft_env_configure(env, yaml, err, sizeof(err)))
        fail_msg("%s", err);
    return env;
}

/* The filter's line for `tag` ("" when none), from a local reply. */
static const char *counts(wft_env *env, int tag, char *buf, size_t len) {
    wft_stream *st = wft_stream_new(env, "GET", "/", (const char *[]){"host: a", NULL});
    assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
    int status;
    const char *body = NULL;
    assert_true(wft_replied(st, &status, &body, NULL));
    char want[16];
    snprintf(want, sizeof(want), "tag=%d ", tag);
    const char *line = body ? strstr(body, want) : NULL;
    size_t n = line ? strcspn(line, "\n") : 0;
    snprintf(buf, len, "%.*s", (int)n, line ? line : "");
    wft_stream_free(st);
    return buf;
}

static void test_worker_timer_on_the_clock(void **state) {
    (void)state;
    wft_env *env = make_env("tag: 1\nperiod_ms: 50\n");
    char buf[256];
    assert_non_null(wft_env_worker(env));
    assert_int_equal(wft_worker_timers_pending(env), 1); /* started in worker_create */
    assert_int_equal(wft_config_timers_pending(env), 0);
    wft_clock_advance(env, 49);
    assert_int_equal(wft_stat(env, "ticks"), 0);
    wft_clock_advance(env, 1);
    assert_int_equal(wft_stat(env, "ticks"), 1);
    wft_clock_advance(env, 500); /* each tick at its own deadline: 10 more */
    assert_int_equal(wft_stat(env, "ticks"), 11);
    assert_int_equal(wft_worker_timers_pending(env), 1);
    assert_string_equal(
        counts(env, 1, buf, sizeof(buf)),
        "tag=1 created=1 destroyed=0 ticking=1 ticks=11 cfg_ticks=0 cfg_destroyed=0 bad=0");
    wft_env_free(env);
}

static void test_reconfigure_stops_old_timers(void **state) {
    (void)state;
    wft_env *env = make_env("tag: 2\nperiod_ms: 10\nconfig_period_ms: 25\n");
    char buf[256];
    assert_int_equal(wft_config_timers_pending(env), 1); /* started in config_create */
    wft_clock_advance(env, 100);
    assert_int_equal(wft_stat(env, "ticks"), 10);
    assert_int_equal(wft_stat(env, "config_ticks"), 4);
    weft_worker *old = wft_env_worker(env);
    if (wft_env_configure(env, "tag: 3\nperiod_ms: 20\n", err, sizeof(err)))
        fail_msg("%s", err);
    /* the old worker timer went before worker_destroy (which checked that
     * a new one is refused), the config timer before config_destroy */
    assert_string_equal(
        counts(env, 2, buf, sizeof(buf)),
        "tag=2 created=1 destroyed=1 ticking=1 ticks=10 cfg_ticks=4 cfg_destroyed=1 bad=0");
    assert_int_equal(wft_config_timers_pending(env), 0);
    assert_int_equal(wft_worker_timers_pending(env), 1);
    assert_ptr_not_equal(wft_env_worker(env), old);
    wft_clock_advance(env, 100);
    assert_string_equal(
        counts(env, 2, buf, sizeof(buf)),
        "tag=2 created=1 destroyed=1 ticking=1 ticks=10 cfg_ticks=4 cfg_destroyed=1 bad=0");
    assert_string_equal(
        counts(env, 3, buf, sizeof(buf)),
        "tag=3 created=1 destroyed=0 ticking=1 ticks=5 cfg_ticks=0 cfg_destroyed=0 bad=0");
    /* a kept handle of the old config is stale */
    size_t m = wft_misuse_count(env);
    assert_int_equal(weft_worker_timer_start(old, 1, NULL, NULL, NULL), WEFT_ERR_HANDLE);
    assert_int_equal(wft_misuse_count(env), m + 1);
    wft_env_free(env);
}

static void noop_tick(weft_worker *w, void *arg) {
    (*(int *)arg)++;
}

static void noop_config_tick(void *config, void *arg) {
    (*(int *)arg)++;
}

static void *other_thread(void *arg) {
    return (void *)(intptr_t)weft_worker_timer_start(arg, 1, noop_tick, NULL, NULL);
}

static void test_misuse(void **state) {
    (void)state;
    wft_env *env = make_env("tag: 4\nperiod_ms: 1000\n");
    weft_worker *w = wft_env_worker(env);
    int fired = 0;
    weft_wtimer *t = NULL;
    assert_int_equal(weft_worker_timer_start(NULL, 1, noop_tick, &fired, NULL), WEFT_ERR_HANDLE);
    assert_int_equal(weft_worker_timer_start(w, 1, NULL, NULL, NULL), WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_timer_start(w, WEFT_TIMER_MAX_MS + 1, noop_tick, &fired, NULL),
                     WEFT_ERR_INVALID);
    /* cancel: an armed timer never fires; twice or unknown: NOT_FOUND */
    assert_int_equal(weft_worker_timer_start(w, 5, noop_tick, &fired, &t), WEFT_OK);
    assert_int_equal(weft_worker_timer_cancel(w, t), WEFT_OK);
    assert_int_equal(weft_worker_timer_cancel(w, t), WEFT_ERR_NOT_FOUND);
    wft_clock_advance(env, 10);
    assert_int_equal(fired, 0);
    assert_int_equal(weft_worker_timer_start(w, 0, noop_tick, &fired, &t), WEFT_OK);
    wft_clock_advance(env, 0);
    assert_int_equal(fired, 1);
    assert_int_equal(weft_worker_timer_cancel(w, t), WEFT_ERR_NOT_FOUND); /* fired */
    /* another thread: WEFT_ERR_THREAD */
    pthread_t th;
    void *rv;
    assert_int_equal(pthread_create(&th, NULL, other_thread, w), 0);
    pthread_join(th, &rv);
    assert_int_equal((int)(intptr_t)rv, WEFT_ERR_THREAD);
    /* the limit */
    size_t armed = wft_worker_timers_pending(env);
    weft_result r = WEFT_OK;
    for (size_t i = armed; i <= WEFT_WORKER_TIMERS_MAX && r == WEFT_OK; i++)
        r = weft_worker_timer_start(w, 100000, noop_tick, &fired, NULL);
    assert_int_equal(r, WEFT_ERR_LIMIT);
    assert_int_equal(wft_worker_timers_pending(env), WEFT_WORKER_TIMERS_MAX);
    /* config timers: outside config_create they need a live config */
    void *cfg = wft_env_config(env);
    int cfired = 0;
    assert_int_equal(weft_config_timer_start(&cfired, 1, noop_config_tick, &cfired, NULL),
                     WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_config_timer_start(cfg, 1, NULL, NULL, NULL), WEFT_ERR_INVALID);
    assert_int_equal(weft_config_timer_start(cfg, 3, noop_config_tick, &cfired, &t), WEFT_OK);
    assert_int_equal(wft_config_timers_pending(env), 1);
    wft_clock_advance(env, 3);
    assert_int_equal(cfired, 1);
    assert_int_equal(weft_config_timer_cancel(cfg, t), WEFT_ERR_NOT_FOUND);
    /* worker_current: the env's handle for its config, NULL for another */
    assert_ptr_equal(weft_worker_current(cfg), w);
    assert_null(weft_worker_current(&cfired));
    assert_null(weft_worker_current(NULL));
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_timer_on_the_clock),
        cmocka_unit_test(test_reconfigure_stops_old_timers),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
