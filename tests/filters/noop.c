/* noop: implements every HTTP hook and does nothing in any of them (each
 * returns WEFT_CONTINUE). The benchmark stacks eight of them to measure
 * the cost of the chain itself. */
#include <weft/filter.h>

static int noop_config_create(const weft_config_node *node, weft_filter_setup *setup,
                              void **config) {
    *config = NULL;
    return 0;
}
static void noop_config_destroy(void *config) {}
static void *noop_worker_create(void *config) {
    return NULL;
}
static void noop_worker_destroy(void *config, void *worker) {}
static void *noop_stream_create(void *config, void *worker, weft_stream *s) {
    return NULL;
}
static void noop_stream_destroy(void *ctx) {}
static weft_status noop_headers(void *ctx, weft_stream *s, bool end_stream) {
    return WEFT_CONTINUE;
}
static weft_status noop_body(void *ctx, weft_stream *s, weft_buffer *chunk, bool end_stream) {
    return WEFT_CONTINUE;
}
static weft_status noop_trailers(void *ctx, weft_stream *s) {
    return WEFT_CONTINUE;
}
static void noop_attempt(void *ctx, weft_stream *s, const weft_attempt_info *info) {}
static void noop_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = noop_config_create,
    .config_destroy = noop_config_destroy,
    .worker_create = noop_worker_create,
    .worker_destroy = noop_worker_destroy,
    .stream_create = noop_stream_create,
    .stream_destroy = noop_stream_destroy,
    .on_request_headers = noop_headers,
    .on_request_body = noop_body,
    .on_request_trailers = noop_trailers,
    .on_upstream_attempt = noop_attempt,
    .on_response_headers = noop_headers,
    .on_response_body = noop_body,
    .on_response_trailers = noop_trailers,
    .on_stream_complete = noop_complete,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("noop", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
