/* upper: rewrites bodies in both directions.
 *
 * Request: on_request_body returns WEFT_STOP until end_stream, so the
 * core holds the body and calls again with everything held; at the end
 * the whole body is replaced (drain + append) by its upper-case version.
 * Same length, so the request's framing stays valid.
 *
 * Response: at the end of the body the configured suffix is appended
 * (default "|upper"); on_response_headers grows a content-length by the
 * suffix's length so that the framing stays right.
 *
 *   config: {suffix: "|upper"}
 *
 * Stats: request_bytes (counter: bytes upper-cased), request_calls
 * (counter: on_request_body calls). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct upper_config {
    char suffix[128];
    size_t suffix_len;
    int32_t st_bytes, st_calls;
} upper_config;

static int upper_config_create(const weft_config_node *node, weft_filter_setup *setup,
                               void **config) {
    upper_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    weft_str sfx = WEFT_STR("|upper");
    const weft_config_node *n = weft_config_get(node, "suffix");
    if (n && (weft_config_string(n, &sfx) != WEFT_OK || sfx.len >= sizeof(c->suffix))) {
        free(c);
        return weft_config_fail(setup, n, "suffix: expected a string shorter than 128 bytes");
    }
    memcpy(c->suffix, sfx.ptr, sfx.len);
    c->suffix_len = sfx.len;
    c->st_bytes = weft_stat_counter(setup, "request_bytes", "request body bytes upper-cased");
    c->st_calls = weft_stat_counter(setup, "request_calls", "on_request_body calls");
    *config = c;
    return 0;
}

static void upper_config_destroy(void *config) {
    free(config);
}

static void *upper_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static weft_status upper_request_body(void *ctx, weft_stream *s, weft_buffer *chunk,
                                      bool end_stream) {
    upper_config *c = ctx;
    weft_stat_inc(c->st_calls, 1);
    if (!end_stream)
        return WEFT_STOP; /* hold until the whole body is there */
    size_t n = weft_buffer_length(chunk);
    if (!n)
        return WEFT_CONTINUE;
    char *buf = malloc(n);
    if (!buf) {
        weft_reply_simple(s, 500, WEFT_STR("upper_oom"), WEFT_STR(""));
        return WEFT_REPLIED;
    }
    size_t got = weft_buffer_copy_out(chunk, 0, buf, n);
    for (size_t i = 0; i < got; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
    weft_buffer_drain(chunk, n);
    weft_buffer_append(chunk, buf, got);
    free(buf);
    weft_stat_inc(c->st_bytes, got);
    return WEFT_CONTINUE;
}

static weft_status upper_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    upper_config *c = ctx;
    weft_str cl;
    if (end_stream ||
        weft_header_get(s, WEFT_RESPONSE_HEADERS, WEFT_STR("content-length"), &cl) != WEFT_OK)
        return WEFT_CONTINUE;
    unsigned long long v = 0;
    for (size_t i = 0; i < cl.len; i++) {
        if (cl.ptr[i] < '0' || cl.ptr[i] > '9')
            return WEFT_CONTINUE;
        v = v * 10 + (unsigned long long)(cl.ptr[i] - '0');
    }
    char num[32];
    int k = snprintf(num, sizeof(num), "%llu", v + c->suffix_len);
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("content-length"),
                    (weft_str){num, (size_t)k});
    return WEFT_CONTINUE;
}

static weft_status upper_response_body(void *ctx, weft_stream *s, weft_buffer *chunk,
                                       bool end_stream) {
    upper_config *c = ctx;
    if (end_stream)
        weft_buffer_append(chunk, c->suffix, c->suffix_len);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = upper_config_create,
    .config_destroy = upper_config_destroy,
    .stream_create = upper_stream_create,
    .on_request_body = upper_request_body,
    .on_response_headers = upper_response_headers,
    .on_response_body = upper_response_body,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("upper", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
