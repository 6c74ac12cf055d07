/* authcall: asks an auth service before letting a request through (the
 * ext_authz pattern). on_request_headers starts a callout to the named
 * cluster, copying the request's x-token header, and returns WEFT_STOP;
 * the answer decides:
 *   2xx             the stream resumes, with request headers x-auth-headers:
 *                   <response headers of the answer> and x-auth-last-x: the
 *                   value of its last header named x-h-* (when any)
 *   other status    403 (reason auth_denied), x-auth-status: <status>
 *   no answer       503 (reason auth_unavailable), x-auth-error: <why>
 *                   (timeout, connect_failure, ...)
 *
 *   config: {cluster: auth, path: /check, timeout: 300ms}
 *
 * Stats: allowed, denied, failed (counters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct authcall_config {
    char cluster[128], path[256];
    uint64_t timeout_ms;
    int32_t st_allowed, st_denied, st_failed;
} authcall_config;

static int copy_string(const weft_config_node *n, weft_filter_setup *setup, char *dst, size_t cap,
                       const char *what) {
    weft_str v;
    if (!n || weft_config_string(n, &v) != WEFT_OK || !v.len || v.len >= cap)
        return weft_config_fail(setup, n, what);
    memcpy(dst, v.ptr, v.len);
    dst[v.len] = '\0';
    return 0;
}

static int authcall_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                  void **config) {
    if (!weft_config_is_map(node))
        return weft_config_fail(setup, node, "config must be a map {cluster, path, timeout}");
    authcall_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->timeout_ms = 1000;
    const weft_config_node *n;
    if (copy_string(weft_config_get(node, "cluster"), setup, c->cluster, sizeof(c->cluster),
                    "cluster: expected a cluster name") ||
        copy_string(weft_config_get(node, "path"), setup, c->path, sizeof(c->path),
                    "path: expected a path starting with /")) {
        free(c);
        return -1;
    }
    if (c->path[0] != '/') {
        free(c);
        return weft_config_fail(setup, weft_config_get(node, "path"),
                                "path: expected a path starting with /");
    }
    if ((n = weft_config_get(node, "timeout")) &&
        weft_config_duration_ms(n, &c->timeout_ms) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, n, "timeout: expected a duration like \"300ms\"");
    }
    c->st_allowed = weft_stat_counter(setup, "allowed", "requests the auth service allowed");
    c->st_denied = weft_stat_counter(setup, "denied", "requests the auth service denied");
    c->st_failed = weft_stat_counter(setup, "failed", "callouts without an answer");
    *config = c;
    return 0;
}

static void authcall_config_destroy(void *config) {
    free(config);
}

static void *authcall_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static void authcall_done(weft_stream *s, void *ctx, void *arg, const weft_callout_response *resp) {
    authcall_config *c = ctx;
    char v[64];
    if (resp->status >= 200 && resp->status < 300) {
        weft_stat_inc(c->st_allowed, 1);
        int n = snprintf(v, sizeof(v), "%zu", resp->n_headers);
        weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-auth-headers"),
                        (weft_str){v, (size_t)n});
        for (size_t i = resp->n_headers; i-- > 0;)
            if (resp->header_names[i].len > 4 && !memcmp(resp->header_names[i].ptr, "x-h-", 4)) {
                weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-auth-last-x"),
                                resp->header_values[i]);
                break;
            }
        if (weft_stream_resume(s) != WEFT_OK)
            weft_reply_simple(s, 500, WEFT_STR("authcall_resume_failed"),
                              WEFT_STR("resume failed\n"));
        return;
    }
    if (resp->status == 0) {
        weft_stat_inc(c->st_failed, 1);
        int n = snprintf(v, sizeof(v), "%.*s", (int)resp->reason.len, resp->reason.ptr);
        weft_str hn = WEFT_STR("x-auth-error"), hv = {v, (size_t)n};
        weft_reply_send(s, 503, WEFT_STR("auth_unavailable"), &hn, &hv, 1,
                        WEFT_STR("auth service unavailable\n"));
        return;
    }
    weft_stat_inc(c->st_denied, 1);
    int n = snprintf(v, sizeof(v), "%d", resp->status);
    weft_str hn = WEFT_STR("x-auth-status"), hv = {v, (size_t)n};
    weft_reply_send(s, 403, WEFT_STR("auth_denied"), &hn, &hv, 1,
                    WEFT_STR("denied by the auth service\n"));
}

static weft_status authcall_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    authcall_config *c = ctx;
    weft_str token = WEFT_STR("");
    weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-token"), &token);
    weft_str hn = WEFT_STR("x-token");
    weft_result r =
        weft_callout_start(s, (weft_str){c->cluster, strlen(c->cluster)}, WEFT_STR("GET"),
                           (weft_str){c->path, strlen(c->path)}, &hn, &token, 1, WEFT_STR(""),
                           c->timeout_ms, authcall_done, NULL, NULL);
    if (r != WEFT_OK) {
        weft_stat_inc(c->st_failed, 1);
        weft_reply_simple(s, 503, WEFT_STR("auth_unavailable"), WEFT_STR("callout refused\n"));
        return WEFT_REPLIED;
    }
    return WEFT_STOP;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = authcall_config_create,
    .config_destroy = authcall_config_destroy,
    .stream_create = authcall_stream_create,
    .on_request_headers = authcall_request_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("authcall", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
