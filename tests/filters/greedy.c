/* greedy: takes as much as the host lets it from one stream, to test the
 * per-stream caps (listener limits.filter_*). The request header x-greedy
 * picks what to take; the filter answers with a local reply whose body is
 * "<taken> <result>[ <result after freeing one>]":
 *
 *   metadata  new metadata keys until a call fails
 *   arena     16 KiB values into one metadata key until a call fails
 *             (each copy stays in the stream arena)
 *   timers    60 s timers until a call fails; then one is cancelled and
 *             another started (third field)
 *   callouts  callouts to config.cluster until a call fails; then one is
 *             cancelled and another started (third field)
 *
 * Without x-greedy the request passes. At most 1000 tries each.
 *
 *   config: {cluster: be} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define MAX_TRIES 1000

typedef struct greedy_config {
    char cluster[64];
} greedy_config;

static int greedy_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                void **config) {
    greedy_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    weft_str v;
    const weft_config_node *n = weft_config_get(node, "cluster");
    if (n && weft_config_string(n, &v) == WEFT_OK && v.len < sizeof(c->cluster))
        memcpy(c->cluster, v.ptr, v.len);
    *config = c;
    return 0;
}

static void greedy_config_destroy(void *config) {
    free(config);
}

static void *greedy_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    return config;
}

static void on_timer(weft_stream *s, void *ctx, void *arg) {
    (void)s;
    (void)ctx;
    (void)arg;
}

static void on_callout(weft_stream *s, void *ctx, void *arg, const weft_callout_response *r) {
    (void)s;
    (void)ctx;
    (void)arg;
    (void)r;
}

static bool is(weft_str v, const char *lit) {
    return v.len == strlen(lit) && memcmp(v.ptr, lit, v.len) == 0;
}

static weft_status greedy_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    const greedy_config *cfg = ctx;
    weft_str what;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-greedy"), &what) != WEFT_OK)
        return WEFT_CONTINUE;
    int n = 0, rc = 0, rc2 = 1; /* rc2 1: not tried */
    if (is(what, "metadata")) {
        for (; n < MAX_TRIES; n++) {
            char k[32];
            int kl = snprintf(k, sizeof(k), "k%d", n);
            if ((rc = weft_metadata_set(s, (weft_str){k, (size_t)kl}, WEFT_STR("v"))) != WEFT_OK)
                break;
        }
    } else if (is(what, "arena")) {
        static char blob[16384];
        memset(blob, 'x', sizeof(blob));
        for (; n < MAX_TRIES; n++)
            if ((rc = weft_metadata_set(s, WEFT_STR("blob"), (weft_str){blob, sizeof(blob)})) !=
                WEFT_OK)
                break;
    } else if (is(what, "timers")) {
        weft_timer *first = NULL, *t;
        for (; n < MAX_TRIES; n++) {
            if ((rc = weft_timer_start(s, 60000, on_timer, NULL, &t)) != WEFT_OK)
                break;
            if (!first)
                first = t;
        }
        if (first && weft_timer_cancel(s, first) == WEFT_OK)
            rc2 = weft_timer_start(s, 60000, on_timer, NULL, NULL);
    } else if (is(what, "callouts")) {
        weft_callout *first = NULL, *c;
        weft_str cl = {cfg->cluster, strlen(cfg->cluster)};
        for (; n < MAX_TRIES; n++) {
            if ((rc = weft_callout_start(s, cl, WEFT_STR("GET"), WEFT_STR("/callout"), NULL, NULL,
                                         0, WEFT_STR(""), 60000, on_callout, NULL, &c)) != WEFT_OK)
                break;
            if (!first)
                first = c;
        }
        if (first && weft_callout_cancel(s, first) == WEFT_OK)
            rc2 = weft_callout_start(s, cl, WEFT_STR("GET"), WEFT_STR("/callout"), NULL, NULL, 0,
                                     WEFT_STR(""), 60000, on_callout, NULL, NULL);
    } else {
        return WEFT_CONTINUE;
    }
    char body[64];
    int bl = rc2 == 1 ? snprintf(body, sizeof(body), "%d %d", n, rc)
                      : snprintf(body, sizeof(body), "%d %d %d", n, rc, rc2);
    weft_reply_simple(s, 200, WEFT_STR("greedy"), (weft_str){body, (size_t)bl});
    return WEFT_REPLIED;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = greedy_config_create,
    .config_destroy = greedy_config_destroy,
    .stream_create = greedy_stream_create,
    .on_request_headers = greedy_request_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("greedy", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
