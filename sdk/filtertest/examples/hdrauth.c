/* hdrauth: an example HTTP filter for the test kit, linked straight into
 * the test binary. It refuses paths under configured prefixes (403) and
 * requests without a required header (401), tags requests and responses
 * with headers, can refuse a request body containing a word (buffering
 * the whole body first), appends a trailer line to response bodies and
 * counts what it does.
 *
 *   deny_paths: ["/admin"]     # prefixes answered with deny_status
 *   deny_status: 403
 *   require_header: x-api-key  # absent: 401
 *   cluster: backend-v2        # route_set_cluster
 *   body_deny: secret          # buffer the request body; 400 if it has it
 *   max_body: 64KiB            # 413 past this many buffered bytes
 *   response_footer: "-- hdrauth"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct hdrauth_config {
    char **deny;
    size_t n_deny;
    int deny_status;
    char *require_header;
    char *cluster;
    char *body_deny;
    uint64_t max_body;
    char *footer;
    int32_t st_requests, st_denied, st_active, st_body;
} hdrauth_config;

typedef struct hdrauth_stream {
    hdrauth_config *cfg;
} hdrauth_stream;

static char *dup_str(weft_str s) {
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static void hdrauth_config_destroy(void *config) {
    hdrauth_config *c = config;
    if (!c)
        return;
    for (size_t i = 0; i < c->n_deny; i++)
        free(c->deny[i]);
    free(c->deny);
    free(c->require_header);
    free(c->cluster);
    free(c->body_deny);
    free(c->footer);
    free(c);
}

static int string_opt(const weft_config_node *node, const char *key, weft_filter_setup *setup,
                      char **out) {
    const weft_config_node *n = weft_config_get(node, key);
    weft_str s;
    if (!n)
        return 0;
    if (weft_config_string(n, &s) != WEFT_OK || s.len == 0)
        return weft_config_fail(setup, n, "expected a non-empty string");
    *out = dup_str(s);
    return *out ? 0 : -1;
}

static int parse(const weft_config_node *node, weft_filter_setup *setup, hdrauth_config *c) {
    static const char *const known[] = {"deny_paths", "deny_status", "require_header", "cluster",
                                        "body_deny",  "max_body",    "response_footer"};
    if (node && !weft_config_is_map(node))
        return weft_config_fail(setup, node, "hdrauth: the config must be a map");
    for (size_t i = 0; i < weft_config_len(node); i++) {
        weft_str key;
        const weft_config_node *v = weft_config_entry(node, i, &key);
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok = ok || (strlen(known[k]) == key.len && memcmp(known[k], key.ptr, key.len) == 0);
        if (!ok)
            return weft_config_fail(setup, v, "hdrauth: unknown option");
    }
    const weft_config_node *deny = weft_config_get(node, "deny_paths");
    if (deny) {
        if (!weft_config_is_list(deny))
            return weft_config_fail(setup, deny, "deny_paths: expected a list of path prefixes");
        c->n_deny = weft_config_len(deny);
        c->deny = calloc(c->n_deny ? c->n_deny : 1, sizeof(*c->deny));
        if (!c->deny)
            return -1;
        for (size_t i = 0; i < c->n_deny; i++) {
            const weft_config_node *item = weft_config_at(deny, i);
            weft_str s;
            if (weft_config_string(item, &s) != WEFT_OK || s.len == 0 || s.ptr[0] != '/')
                return weft_config_fail(setup, item, "deny_paths: a prefix starts with '/'");
            c->deny[i] = dup_str(s);
            if (!c->deny[i])
                return -1;
        }
    }
    const weft_config_node *status = weft_config_get(node, "deny_status");
    int64_t st;
    if (status && (weft_config_int(status, &st) != WEFT_OK || st < 400 || st > 599))
        return weft_config_fail(setup, status, "deny_status: expected a status in 400..599");
    if (status)
        c->deny_status = (int)st;
    const weft_config_node *max = weft_config_get(node, "max_body");
    if (max && weft_config_size(max, &c->max_body) != WEFT_OK)
        return weft_config_fail(setup, max, "max_body: expected a size like \"64KiB\"");
    if (string_opt(node, "require_header", setup, &c->require_header) ||
        string_opt(node, "cluster", setup, &c->cluster) ||
        string_opt(node, "body_deny", setup, &c->body_deny) ||
        string_opt(node, "response_footer", setup, &c->footer))
        return -1;
    c->st_requests = weft_stat_counter(setup, "requests_total", "requests seen");
    c->st_denied = weft_stat_counter(setup, "denied_total", "requests answered locally");
    c->st_active = weft_stat_gauge(setup, "active_streams", "streams alive");
    c->st_body = weft_stat_histogram(setup, "request_body_bytes", "buffered request body size");
    return 0;
}

static int hdrauth_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                 void **config) {
    hdrauth_config *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->deny_status = 403;
    c->max_body = 64 * 1024;
    if (parse(node, setup, c)) {
        hdrauth_config_destroy(c);
        return -1;
    }
    *config = c;
    return 0;
}

static void *hdrauth_stream_create(void *config, void *worker, weft_stream *s) {
    hdrauth_stream *hs = calloc(1, sizeof(*hs));
    if (hs)
        hs->cfg = config;
    weft_stat_gauge_add(((hdrauth_config *)config)->st_active, 1);
    return hs;
}

static void hdrauth_stream_destroy(void *ctx) {
    hdrauth_stream *hs = ctx;
    if (hs)
        weft_stat_gauge_add(hs->cfg->st_active, -1);
    free(hs);
}

static weft_status deny(weft_stream *s, hdrauth_config *c, int status, weft_str reason,
                        weft_str body) {
    weft_stat_inc(c->st_denied, 1);
    static const weft_str names[] = {WEFT_STR("cache-control")};
    static const weft_str values[] = {WEFT_STR("no-store")};
    weft_reply_send(s, status, reason, names, values, 1, body);
    return WEFT_REPLIED;
}

static weft_status hdrauth_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    hdrauth_stream *hs = ctx;
    hdrauth_config *c = hs->cfg;
    weft_stat_inc(c->st_requests, 1);
    weft_str path;
    weft_request_get(s, NULL, &path, NULL, NULL);
    for (size_t i = 0; i < c->n_deny; i++) {
        size_t pl = strlen(c->deny[i]);
        if (path.len >= pl && memcmp(path.ptr, c->deny[i], pl) == 0)
            return deny(s, c, c->deny_status, WEFT_STR("hdrauth_denied"), WEFT_STR("denied\n"));
    }
    if (c->require_header) {
        weft_str v;
        weft_str name = {c->require_header, strlen(c->require_header)};
        if (weft_header_get(s, WEFT_REQUEST_HEADERS, name, &v) != WEFT_OK)
            return deny(s, c, 401, WEFT_STR("hdrauth_missing_header"), WEFT_STR(""));
        weft_metadata_set(s, WEFT_STR("hdrauth.key"), v);
        weft_header_remove(s, WEFT_REQUEST_HEADERS, name);
    }
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-hdrauth"), WEFT_STR("checked"));
    weft_header_remove(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-internal"));
    weft_header_add(s, WEFT_REQUEST_HEADERS, WEFT_STR("via"), WEFT_STR("hdrauth"));
    if (c->cluster)
        weft_route_set_cluster(s, (weft_str){c->cluster, strlen(c->cluster)});
    return WEFT_CONTINUE;
}

static bool contains(const char *hay, size_t n, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= n; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            return true;
    return false;
}

static weft_status hdrauth_request_body(void *ctx, weft_stream *s, weft_buffer *chunk,
                                        bool end_stream) {
    hdrauth_config *c = ((hdrauth_stream *)ctx)->cfg;
    if (!c->body_deny)
        return WEFT_CONTINUE;
    size_t held = weft_body_buffered_length(s, WEFT_REQUEST_BODY);
    size_t len = weft_buffer_length(chunk);
    if (held + len > c->max_body)
        return deny(s, c, 413, WEFT_STR("hdrauth_body_too_large"), WEFT_STR(""));
    if (!end_stream)
        return WEFT_STOP; /* keep buffering until the whole body is here */
    char *all = malloc(held + len + 1);
    if (!all)
        return deny(s, c, 503, WEFT_STR("hdrauth_nomem"), WEFT_STR(""));
    weft_body_copy_out(s, WEFT_REQUEST_BODY, 0, all, held);
    weft_buffer_copy_out(chunk, 0, all + held, len);
    weft_stat_observe_us(c->st_body, held + len);
    bool bad = contains(all, held + len, c->body_deny);
    free(all);
    if (bad)
        return deny(s, c, 400, WEFT_STR("hdrauth_body_denied"), WEFT_STR("bad body\n"));
    return WEFT_CONTINUE;
}

static weft_status hdrauth_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    weft_header_remove(s, WEFT_RESPONSE_HEADERS, WEFT_STR("server"));
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-hdrauth"), WEFT_STR("seen"));
    if (weft_response_status(s) == 500)
        weft_response_set_status(s, 502);
    return WEFT_CONTINUE;
}

static weft_status hdrauth_response_body(void *ctx, weft_stream *s, weft_buffer *chunk,
                                         bool end_stream) {
    hdrauth_config *c = ((hdrauth_stream *)ctx)->cfg;
    if (end_stream && c->footer)
        weft_buffer_append(chunk, c->footer, strlen(c->footer));
    return WEFT_CONTINUE;
}

static void hdrauth_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    char line[160];
    snprintf(line, sizeof(line), "status=%d flags=%.*s attempts=%u", info->status,
             (int)info->response_flags.len, info->response_flags.ptr, info->attempts);
    if (weft_log_enabled(WEFT_LOG_LEVEL_INFO))
        weft_log_msg(WEFT_LOG_LEVEL_INFO, "hdrauth", line);
}

static const weft_http_filter_ops hdrauth_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = hdrauth_config_create,
    .config_destroy = hdrauth_config_destroy,
    .stream_create = hdrauth_stream_create,
    .stream_destroy = hdrauth_stream_destroy,
    .on_request_headers = hdrauth_request_headers,
    .on_request_body = hdrauth_request_body,
    .on_response_headers = hdrauth_response_headers,
    .on_response_body = hdrauth_response_body,
    .on_stream_complete = hdrauth_complete,
};

static const weft_filter_descriptor hdrauth_descriptor = {
    WEFT_FILTER_DESCRIPTOR_INIT("hdrauth", WEFT_FILTER_HTTP),
    .http = &hdrauth_ops,
};

WEFT_FILTER_DEFINE(hdrauth_descriptor)
