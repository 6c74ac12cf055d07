/* gate: an example HTTP filter for the test kit, built as a .so and
 * dlopened. It holds requests back: an "x-delay-ms" header pauses the
 * request on a timer; with `authz_cluster` every request waits for a
 * callout to that cluster (200 lets it through and copies x-user, a
 * failure answers 503, anything else 403). It retries a failed upstream
 * attempt up to `retries` times.
 *
 *   authz_cluster: authz
 *   authz_timeout: 200ms
 *   max_delay: 1s
 *   retries: 1
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct gate_config {
    char *authz_cluster;
    uint64_t authz_timeout_ms;
    uint64_t max_delay_ms;
    int64_t retries;
    int32_t st_paused, st_inflight, st_wait;
} gate_config;

typedef struct gate_stream {
    gate_config *cfg;
    weft_timer *timer;     /* pending delay timer */
    weft_callout *callout; /* pending authz callout */
    uint64_t paused_at_us;
} gate_stream;

static void gate_config_destroy(void *config) {
    gate_config *c = config;
    if (c)
        free(c->authz_cluster);
    free(c);
}

static int gate_config_create(const weft_config_node *node, weft_filter_setup *setup,
                              void **config) {
    gate_config *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->authz_timeout_ms = 200;
    c->max_delay_ms = 1000;
    const weft_config_node *n;
    weft_str s;
    if ((n = weft_config_get(node, "authz_cluster")) != NULL) {
        if (weft_config_string(n, &s) != WEFT_OK || s.len == 0) {
            gate_config_destroy(c);
            return weft_config_fail(setup, n, "authz_cluster: expected a cluster name");
        }
        c->authz_cluster = calloc(1, s.len + 1);
        if (!c->authz_cluster) {
            gate_config_destroy(c);
            return -1;
        }
        memcpy(c->authz_cluster, s.ptr, s.len);
    }
    if ((n = weft_config_get(node, "authz_timeout")) != NULL &&
        weft_config_duration_ms(n, &c->authz_timeout_ms) != WEFT_OK) {
        gate_config_destroy(c);
        return weft_config_fail(setup, n, "authz_timeout: expected a duration like \"200ms\"");
    }
    if ((n = weft_config_get(node, "max_delay")) != NULL &&
        weft_config_duration_ms(n, &c->max_delay_ms) != WEFT_OK) {
        gate_config_destroy(c);
        return weft_config_fail(setup, n, "max_delay: expected a duration like \"1s\"");
    }
    if ((n = weft_config_get(node, "retries")) != NULL &&
        (weft_config_int(n, &c->retries) != WEFT_OK || c->retries < 0 || c->retries > 5)) {
        gate_config_destroy(c);
        return weft_config_fail(setup, n, "retries: expected 0..5");
    }
    c->st_paused = weft_stat_counter(setup, "paused_total", "requests held back");
    c->st_inflight = weft_stat_gauge(setup, "authz_inflight", "authz callouts in flight");
    c->st_wait = weft_stat_histogram(setup, "wait_us", "time requests were held");
    *config = c;
    return 0;
}

static void *gate_stream_create(void *config, void *worker, weft_stream *s) {
    gate_stream *gs = calloc(1, sizeof(*gs));
    if (gs)
        gs->cfg = config;
    return gs;
}

static void gate_stream_destroy(void *ctx) {
    free(ctx);
}

static void held_done(gate_stream *gs) {
    weft_stat_observe_us(gs->cfg->st_wait, weft_clock_now_us() - gs->paused_at_us);
}

static void on_delay(weft_stream *s, void *ctx, void *arg) {
    gate_stream *gs = ctx;
    gs->timer = NULL;
    held_done(gs);
    char v[32];
    int n = snprintf(v, sizeof(v), "%llu", (unsigned long long)(uintptr_t)arg);
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-delayed-ms"), (weft_str){v, (size_t)n});
    weft_stream_resume(s);
}

static void on_authz(weft_stream *s, void *ctx, void *arg, const weft_callout_response *resp) {
    gate_stream *gs = ctx;
    gs->callout = NULL;
    weft_stat_gauge_add(gs->cfg->st_inflight, -1);
    held_done(gs);
    if (resp->status == 0) {
        weft_reply_simple(s, 503, WEFT_STR("gate_authz_unavailable"), resp->reason);
        return;
    }
    if (resp->status != 200) {
        weft_reply_simple(s, 403, WEFT_STR("gate_denied"), resp->body);
        return;
    }
    for (size_t i = 0; i < resp->n_headers; i++)
        if (resp->header_names[i].len == 6 && memcmp(resp->header_names[i].ptr, "x-user", 6) == 0)
            weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-user"), resp->header_values[i]);
    weft_metadata_set(s, WEFT_STR("gate.decision"), WEFT_STR("allow"));
    weft_stream_resume(s);
}

static weft_status gate_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    gate_stream *gs = ctx;
    gate_config *c = gs->cfg;
    if (c->retries > 0)
        weft_body_buffer_for_replay(s, 4096);
    weft_str v;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-delay-ms"), &v) == WEFT_OK) {
        uint64_t ms = 0;
        for (size_t i = 0; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9'; i++)
            ms = ms * 10 + (uint64_t)(v.ptr[i] - '0');
        if (ms > c->max_delay_ms)
            ms = c->max_delay_ms;
        if (weft_timer_start(s, ms, on_delay, (void *)(uintptr_t)ms, &gs->timer) != WEFT_OK)
            return WEFT_CONTINUE;
        gs->paused_at_us = weft_clock_now_us();
        weft_stat_inc(c->st_paused, 1);
        return WEFT_STOP;
    }
    if (c->authz_cluster) {
        weft_str method, path;
        weft_request_get(s, &method, &path, NULL, NULL);
        weft_str hn[] = {WEFT_STR("x-original-method"), WEFT_STR("x-original-path")};
        weft_str hv[] = {method, path};
        weft_str cluster = {c->authz_cluster, strlen(c->authz_cluster)};
        if (weft_callout_start(s, cluster, WEFT_STR("POST"), WEFT_STR("/check"), hn, hv, 2, path,
                               c->authz_timeout_ms, on_authz, NULL, &gs->callout) != WEFT_OK)
            return weft_reply_simple(s, 503, WEFT_STR("gate_callout_failed"), WEFT_STR("")) ==
                           WEFT_OK
                       ? WEFT_REPLIED
                       : WEFT_CONTINUE;
        weft_stat_gauge_add(c->st_inflight, 1);
        gs->paused_at_us = weft_clock_now_us();
        weft_stat_inc(c->st_paused, 1);
        return WEFT_STOP;
    }
    return WEFT_CONTINUE;
}

static void gate_upstream_attempt(void *ctx, weft_stream *s, const weft_attempt_info *info) {
    gate_stream *gs = ctx;
    bool failed = info->result != WEFT_ATTEMPT_RESPONSE || info->status == 503;
    if (failed && info->attempt <= (uint32_t)gs->cfg->retries)
        weft_upstream_retry(s);
}

static void gate_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    gate_stream *gs = ctx;
    /* Pending work is cancelled by the host when the stream ends. */
    gs->timer = NULL;
    if (gs->callout)
        weft_stat_gauge_add(gs->cfg->st_inflight, -1);
    gs->callout = NULL;
}

static const weft_http_filter_ops gate_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = gate_config_create,
    .config_destroy = gate_config_destroy,
    .stream_create = gate_stream_create,
    .stream_destroy = gate_stream_destroy,
    .on_request_headers = gate_request_headers,
    .on_upstream_attempt = gate_upstream_attempt,
    .on_stream_complete = gate_complete,
};

static const weft_filter_descriptor gate_descriptor = {
    WEFT_FILTER_DESCRIPTOR_INIT("gate", WEFT_FILTER_HTTP),
    .http = &gate_ops,
};

WEFT_FILTER_DEFINE(gate_descriptor)
