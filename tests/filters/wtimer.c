/* wtimer: worker and config timers (SDK 1.1, group "callout"), for
 * test_worker_timers.sh and test_filtertest_async.
 *
 * config: { tag: 0..7, period_ms: 50, config_period_ms: 0 (none) }
 *
 * worker_create takes the worker's handle (weft_worker_current) and
 * starts a worker timer that re-arms itself every period_ms and bumps the
 * stat "ticks"; a config_period_ms starts a config timer in config_create
 * that re-arms itself and bumps "config_ticks" (on the main thread: the
 * thread of config_create; anything else counts as wrong). Counts live in
 * process-wide atomics per tag (the .so stays loaded across reloads), so
 * a test can tell an old config's timers from a new one's: every request
 * is answered locally with one line per tag that has counts:
 *   tag=T created=C destroyed=D ticking=K ticks=N cfg_ticks=M cfg_destroyed=E bad=B
 * created/destroyed: worker_create/worker_destroy calls; ticking: worker
 * contexts whose timer fired at least once; cfg_destroyed: config_destroy
 * calls; bad: handle and thread checks
 * that failed (worker_current NULL in worker_create or not the timer's
 * handle, a config timer off the main thread or seeing a worker handle,
 * worker_timer_start inside worker_destroy not refused with
 * WEFT_ERR_STATE). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/filter.h>

#define TAGS 8

static struct {
    _Atomic uint64_t created, destroyed, ticking, ticks, cfg_ticks, cfg_destroyed, bad;
} g[TAGS];

typedef struct cfg {
    int64_t tag;
    uint64_t period_ms, config_period_ms;
    pthread_t main_thread;
    int32_t st_ticks, st_config_ticks;
} cfg;

typedef struct wrk {
    cfg *c;
    weft_worker *w;
    uint64_t ticks;
} wrk;

static void config_tick(void *config, void *arg) {
    cfg *c = config;
    if (c != arg || !pthread_equal(pthread_self(), c->main_thread) || weft_worker_current(c))
        atomic_fetch_add(&g[c->tag].bad, 1);
    atomic_fetch_add(&g[c->tag].cfg_ticks, 1);
    weft_stat_inc(c->st_config_ticks, 1);
    if (weft_config_timer_start(c, c->config_period_ms, config_tick, c, NULL) != WEFT_OK)
        atomic_fetch_add(&g[c->tag].bad, 1);
}

static int wt_config_create(const weft_config_node *node, weft_filter_setup *st, void **out) {
    cfg *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(st, node, "out of memory");
    c->period_ms = 50;
    const weft_config_node *n;
    if ((n = weft_config_get(node, "tag")) &&
        (weft_config_int(n, &c->tag) != WEFT_OK || c->tag < 0 || c->tag >= TAGS)) {
        free(c);
        return weft_config_fail(st, n, "tag: 0..7");
    }
    int64_t v;
    if ((n = weft_config_get(node, "period_ms")) && weft_config_int(n, &v) == WEFT_OK && v >= 0)
        c->period_ms = (uint64_t)v;
    if ((n = weft_config_get(node, "config_period_ms")) && weft_config_int(n, &v) == WEFT_OK &&
        v >= 0)
        c->config_period_ms = (uint64_t)v;
    c->main_thread = pthread_self();
    c->st_ticks = weft_stat_counter(st, "ticks", "worker timer ticks");
    c->st_config_ticks = weft_stat_counter(st, "config_ticks", "config timer ticks");
    if (weft_worker_current(c) != NULL) /* config_create: no worker */
        atomic_fetch_add(&g[c->tag].bad, 1);
    if (c->config_period_ms &&
        weft_config_timer_start(c, c->config_period_ms, config_tick, c, NULL) != WEFT_OK) {
        free(c);
        return weft_config_fail(st, node, "config timer refused");
    }
    *out = c;
    return 0;
}

static void wt_config_destroy(void *config) {
    cfg *c = config;
    atomic_fetch_add(&g[c->tag].cfg_destroyed, 1);
    free(c);
}

static void worker_tick(weft_worker *w, void *arg) {
    wrk *k = arg;
    if (w != k->w || weft_worker_current(k->c) != w)
        atomic_fetch_add(&g[k->c->tag].bad, 1);
    if (k->ticks++ == 0)
        atomic_fetch_add(&g[k->c->tag].ticking, 1);
    atomic_fetch_add(&g[k->c->tag].ticks, 1);
    weft_stat_inc(k->c->st_ticks, 1);
    if (weft_worker_timer_start(w, k->c->period_ms, worker_tick, k, NULL) != WEFT_OK)
        atomic_fetch_add(&g[k->c->tag].bad, 1);
}

static void *wt_worker_create(void *config) {
    cfg *c = config;
    wrk *k = calloc(1, sizeof(*k));
    atomic_fetch_add(&g[c->tag].created, 1);
    if (!k)
        return NULL;
    k->c = c;
    k->w = weft_worker_current(c);
    if (!k->w || weft_worker_timer_start(k->w, c->period_ms, worker_tick, k, NULL) != WEFT_OK)
        atomic_fetch_add(&g[c->tag].bad, 1);
    return k;
}

static void wt_worker_destroy(void *config, void *worker) {
    cfg *c = config;
    wrk *k = worker;
    atomic_fetch_add(&g[c->tag].destroyed, 1);
    if (k && weft_worker_timer_start(k->w, 1, worker_tick, k, NULL) != WEFT_ERR_STATE)
        atomic_fetch_add(&g[c->tag].bad, 1);
    free(k);
}

static void *wt_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}
static void wt_stream_destroy(void *ctx) {}

static weft_status wt_headers(void *ctx, weft_stream *s, bool end_stream) {
    char body[1024];
    size_t n = 0;
    for (int t = 0; t < TAGS; t++) {
        if (!atomic_load(&g[t].created) && !atomic_load(&g[t].cfg_ticks))
            continue;
        int r = snprintf(body + n, sizeof(body) - n,
                         "tag=%d created=%llu destroyed=%llu ticking=%llu ticks=%llu "
                         "cfg_ticks=%llu cfg_destroyed=%llu bad=%llu\n",
                         t, (unsigned long long)atomic_load(&g[t].created),
                         (unsigned long long)atomic_load(&g[t].destroyed),
                         (unsigned long long)atomic_load(&g[t].ticking),
                         (unsigned long long)atomic_load(&g[t].ticks),
                         (unsigned long long)atomic_load(&g[t].cfg_ticks),
                         (unsigned long long)atomic_load(&g[t].cfg_destroyed),
                         (unsigned long long)atomic_load(&g[t].bad));
        if (r < 0 || (size_t)r >= sizeof(body) - n)
            break;
        n += (size_t)r;
    }
    weft_reply_simple(s, 200, WEFT_STR(""), (weft_str){body, n});
    return WEFT_REPLIED;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = wt_config_create,
    .config_destroy = wt_config_destroy,
    .worker_create = wt_worker_create,
    .worker_destroy = wt_worker_destroy,
    .stream_create = wt_stream_create,
    .stream_destroy = wt_stream_destroy,
    .on_request_headers = wt_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("wtimer", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
