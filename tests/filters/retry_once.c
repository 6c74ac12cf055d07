/* retry_once: retries a failed upstream attempt once. on_request_headers
 * keeps up to 64 KiB of the request body for replay; on_upstream_attempt
 * asks for one more attempt when the first one answered 503 or could not
 * connect. The log phase records the attempts.
 *
 * Stats: retries (counter: weft_upstream_retry calls accepted),
 * retry_refused (counter), attempts (counter: sum of the attempts of
 * finished streams), last_attempts (gauge: attempts of the last stream). */
#include <stdatomic.h>
#include <stdlib.h>

#include <weft/filter.h>

typedef struct retry_config {
    int32_t st_retries, st_refused, st_attempts, st_last;
    _Atomic int64_t last; /* the gauge's current value, to set it by delta */
} retry_config;

typedef struct retry_stream {
    retry_config *cfg;
    bool retried;
} retry_stream;

static int retry_config_create(const weft_config_node *node, weft_filter_setup *setup,
                               void **config) {
    retry_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->st_retries = weft_stat_counter(setup, "retries", "upstream retries asked for");
    c->st_refused = weft_stat_counter(setup, "retry_refused", "upstream retries the core refused");
    c->st_attempts = weft_stat_counter(setup, "attempts", "upstream attempts of finished streams");
    c->st_last =
        weft_stat_gauge(setup, "last_attempts", "upstream attempts of the last finished stream");
    *config = c;
    return 0;
}

static void retry_config_destroy(void *config) {
    free(config);
}

static void *retry_stream_create(void *config, void *worker, weft_stream *s) {
    retry_stream *rs = calloc(1, sizeof(*rs));
    if (rs)
        rs->cfg = config;
    return rs;
}

static void retry_stream_destroy(void *ctx) {
    free(ctx);
}

static weft_status retry_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    weft_body_buffer_for_replay(s, 64 * 1024);
    return WEFT_CONTINUE;
}

static void retry_attempt(void *ctx, weft_stream *s, const weft_attempt_info *info) {
    retry_stream *rs = ctx;
    if (!rs || rs->retried)
        return;
    bool failed = (info->result == WEFT_ATTEMPT_RESPONSE && info->status == 503) ||
                  info->result == WEFT_ATTEMPT_CONNECT_FAILURE;
    if (!failed)
        return;
    rs->retried = true;
    if (weft_upstream_retry(s) == WEFT_OK)
        weft_stat_inc(rs->cfg->st_retries, 1);
    else
        weft_stat_inc(rs->cfg->st_refused, 1);
}

static void retry_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    retry_stream *rs = ctx;
    if (!rs)
        return;
    retry_config *c = rs->cfg;
    weft_stat_inc(c->st_attempts, info->attempts);
    int64_t prev = atomic_exchange(&c->last, (int64_t)info->attempts);
    weft_stat_gauge_add(c->st_last, (int64_t)info->attempts - prev);
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = retry_config_create,
    .config_destroy = retry_config_destroy,
    .stream_create = retry_stream_create,
    .stream_destroy = retry_stream_destroy,
    .on_request_headers = retry_request_headers,
    .on_upstream_attempt = retry_attempt,
    .on_stream_complete = retry_complete,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("retry_once", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
