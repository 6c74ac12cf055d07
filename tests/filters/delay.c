/* delay: holds every request back for a configured time before it goes
 * on: on_request_headers starts a stream timer and returns WEFT_STOP, the
 * timer resumes the stream. A paused stream holds no worker: thousands
 * of them wait side by side.
 *
 *   config: {delay: 200ms}
 *
 * Stats: delayed (counter), resumed (counter), resume_failed (counter). */
#include <stdlib.h>

#include <weft/filter.h>

typedef struct delay_config {
    uint64_t delay_ms;
    int32_t st_delayed, st_resumed, st_resume_failed;
} delay_config;

static int delay_config_create(const weft_config_node *node, weft_filter_setup *setup,
                               void **config) {
    delay_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->delay_ms = 200;
    const weft_config_node *n = weft_config_get(node, "delay");
    if (n && weft_config_duration_ms(n, &c->delay_ms) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, n, "delay: expected a duration like \"200ms\"");
    }
    c->st_delayed = weft_stat_counter(setup, "delayed", "requests paused on the timer");
    c->st_resumed = weft_stat_counter(setup, "resumed", "requests resumed by the timer");
    c->st_resume_failed = weft_stat_counter(setup, "resume_failed", "weft_stream_resume refusals");
    *config = c;
    return 0;
}

static void delay_config_destroy(void *config) {
    free(config);
}

static void *delay_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static void delay_fire(weft_stream *s, void *ctx, void *arg) {
    delay_config *c = ctx;
    if (weft_stream_resume(s) == WEFT_OK) {
        weft_stat_inc(c->st_resumed, 1);
        return;
    }
    weft_stat_inc(c->st_resume_failed, 1);
    weft_reply_simple(s, 500, WEFT_STR("delay_resume_failed"), WEFT_STR("resume failed\n"));
}

static weft_status delay_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    delay_config *c = ctx;
    if (weft_timer_start(s, c->delay_ms, delay_fire, NULL, NULL) != WEFT_OK)
        return WEFT_CONTINUE;
    weft_stat_inc(c->st_delayed, 1);
    return WEFT_STOP;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = delay_config_create,
    .config_destroy = delay_config_destroy,
    .stream_create = delay_stream_create,
    .on_request_headers = delay_request_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("delay", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
