/* abi_v1_0_filter: a filter compiled against the frozen ABI 1.0 header
 * (tests/abi/filter_v1_0.h), not the current SDK: it proves that what a
 * filter author built for 1.0 keeps loading and working. It uses the
 * config accessors, a stat, the request and response header calls and a
 * local reply:
 *   - adds response header <header> (config, default x-abi) with the
 *     value "1.0" and request header x-abi-request: 1.0;
 *   - a request with x-abi-reply gets a local 418 (reason
 *     abi_v1_0_reply).
 * Stat: requests (counter). */
#include <stdlib.h>
#include <string.h>

#include "filter_v1_0.h"

typedef struct abi_config {
    char header[64];
    size_t header_len;
    int32_t st_requests;
} abi_config;

static int abi_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    abi_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    weft_str h = WEFT_STR("x-abi");
    const weft_config_node *n = weft_config_get(node, "header");
    if (n && (weft_config_string(n, &h) != WEFT_OK || !h.len || h.len >= sizeof(c->header))) {
        free(c);
        return weft_config_fail(setup, n, "header: expected a header name");
    }
    memcpy(c->header, h.ptr, h.len);
    c->header_len = h.len;
    c->st_requests = weft_stat_counter(setup, "requests", "requests seen");
    *config = c;
    return 0;
}

static void abi_config_destroy(void *config) {
    free(config);
}

static void *abi_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static weft_status abi_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    abi_config *c = ctx;
    weft_stat_inc(c->st_requests, 1);
    if (weft_header_count(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-abi-reply"))) {
        weft_reply_simple(s, 418, WEFT_STR("abi_v1_0_reply"), WEFT_STR("abi 1.0 filter\n"));
        return WEFT_REPLIED;
    }
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-abi-request"), WEFT_STR("1.0"));
    return WEFT_CONTINUE;
}

static weft_status abi_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    abi_config *c = ctx;
    weft_header_set(s, WEFT_RESPONSE_HEADERS, (weft_str){c->header, c->header_len},
                    WEFT_STR("1.0"));
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = abi_config_create,
    .config_destroy = abi_config_destroy,
    .stream_create = abi_stream_create,
    .on_request_headers = abi_request_headers,
    .on_response_headers = abi_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("abi_v1_0", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
