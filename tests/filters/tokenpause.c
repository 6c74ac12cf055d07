/* tokenpause: pauses every request in on_request_headers and publishes
 * the pause's resume token (weft_stream_pause_token) as decimal in the
 * metadata key "tokenpause.token", for another filter to resume with
 * weft_stream_resume_token. A safety timer (default 2s) answers 504
 * (reason tokenpause_timeout) if nobody resumes.
 *
 *   config: {timeout: 2s}
 *
 * Stats: paused, token_failed (counters). */
#include <stdio.h>
#include <stdlib.h>

#include <weft/filter.h>

typedef struct tp_config {
    uint64_t timeout_ms;
    int32_t st_paused, st_failed;
} tp_config;

static int tp_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    tp_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->timeout_ms = 2000;
    const weft_config_node *n = weft_config_get(node, "timeout");
    if (n && weft_config_duration_ms(n, &c->timeout_ms) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, n, "timeout: expected a duration like \"2s\"");
    }
    c->st_paused = weft_stat_counter(setup, "paused", "requests paused");
    c->st_failed = weft_stat_counter(setup, "token_failed", "pause_token refusals");
    *config = c;
    return 0;
}

static void tp_config_destroy(void *config) {
    free(config);
}

static void *tp_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static void tp_timeout(weft_stream *s, void *ctx, void *arg) {
    weft_reply_simple(s, 504, WEFT_STR("tokenpause_timeout"), WEFT_STR("nobody resumed\n"));
}

static weft_status tp_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    tp_config *c = ctx;
    uint64_t token = 0, again = 0;
    if (weft_stream_pause_token(s, &token) != WEFT_OK ||
        weft_stream_pause_token(s, &again) != WEFT_OK || again != token) {
        weft_stat_inc(c->st_failed, 1);
        return WEFT_CONTINUE;
    }
    char v[32];
    int n = snprintf(v, sizeof(v), "%llu", (unsigned long long)token);
    weft_metadata_set(s, WEFT_STR("tokenpause.token"), (weft_str){v, (size_t)n});
    weft_timer_start(s, c->timeout_ms, tp_timeout, NULL, NULL);
    weft_stat_inc(c->st_paused, 1);
    return WEFT_STOP;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = tp_config_create,
    .config_destroy = tp_config_destroy,
    .stream_create = tp_stream_create,
    .on_request_headers = tp_request_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("tokenpause", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
