/* meddler: an unrelated filter whose short timer calls weft_stream_resume
 * on a stream that a LATER filter paused (an authorization filter waiting
 * on its callout, say). Pauses are owned (ABI 1.1): that resume must be
 * refused (WEFT_ERR_STATE) and the stream must stay paused.
 *
 *   config: {delay: 50ms, token_key: <metadata key>}
 *
 * on_request_headers arms the timer and returns WEFT_CONTINUE. The timer
 * calls weft_stream_resume(s); with token_key, it then reads a resume
 * token (decimal) that the pausing filter published under that metadata
 * key and calls weft_stream_resume_token twice (the second must fail: a
 * token resumes once). The results, space-separated ("-3", "-3 0 -3"),
 * go into metadata "meddler.rc" and, when a response comes, the response
 * header x-meddler-rc.
 * Stats: resume_refused, resume_ok, token_ok, token_refused (counters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct meddler_config {
    uint64_t delay_ms;
    char token_key[64];
    int32_t st_refused, st_ok, st_token_ok, st_token_refused;
} meddler_config;

static int meddler_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                 void **config) {
    meddler_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->delay_ms = 50;
    const weft_config_node *n = weft_config_get(node, "delay");
    if (n && weft_config_duration_ms(n, &c->delay_ms) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, n, "delay: expected a duration like \"50ms\"");
    }
    weft_str k;
    if ((n = weft_config_get(node, "token_key"))) {
        if (weft_config_string(n, &k) != WEFT_OK || !k.len || k.len >= sizeof(c->token_key)) {
            free(c);
            return weft_config_fail(setup, n, "token_key: expected a metadata key");
        }
        memcpy(c->token_key, k.ptr, k.len);
    }
    c->st_refused = weft_stat_counter(setup, "resume_refused", "resumes refused");
    c->st_ok = weft_stat_counter(setup, "resume_ok", "resumes that worked");
    c->st_token_ok = weft_stat_counter(setup, "token_ok", "token resumes that worked");
    c->st_token_refused = weft_stat_counter(setup, "token_refused", "token resumes refused");
    *config = c;
    return 0;
}

static void meddler_config_destroy(void *config) {
    free(config);
}

static void *meddler_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static void meddler_fire(weft_stream *s, void *ctx, void *arg) {
    meddler_config *c = ctx;
    char out[64];
    weft_result r = weft_stream_resume(s);
    weft_stat_inc(r == WEFT_OK ? c->st_ok : c->st_refused, 1);
    int n = snprintf(out, sizeof(out), "%d", (int)r);
    weft_str v;
    if (c->token_key[0] &&
        weft_metadata_get(s, (weft_str){c->token_key, strlen(c->token_key)}, &v) == WEFT_OK) {
        char num[32];
        snprintf(num, sizeof(num), "%.*s", (int)(v.len < 31 ? v.len : 31), v.ptr);
        uint64_t token = strtoull(num, NULL, 10);
        for (int i = 0; i < 2; i++) {
            weft_result t = weft_stream_resume_token(s, token);
            weft_stat_inc(t == WEFT_OK ? c->st_token_ok : c->st_token_refused, 1);
            n += snprintf(out + n, sizeof(out) - (size_t)n, " %d", (int)t);
        }
    }
    weft_metadata_set(s, WEFT_STR("meddler.rc"), (weft_str){out, (size_t)n});
}

static weft_status meddler_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    meddler_config *c = ctx;
    weft_timer_start(s, c->delay_ms, meddler_fire, NULL, NULL);
    return WEFT_CONTINUE;
}

static weft_status meddler_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    weft_str v;
    if (weft_metadata_get(s, WEFT_STR("meddler.rc"), &v) == WEFT_OK)
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-meddler-rc"), v);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = meddler_config_create,
    .config_destroy = meddler_config_destroy,
    .stream_create = meddler_stream_create,
    .on_request_headers = meddler_request_headers,
    .on_response_headers = meddler_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("meddler", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
