/* routecfg: exercises ABI 1.1 routing (route before filters, route info,
 * re-match, per-route config).
 *
 *   routes:
 *   - match: {prefix: /a}
 *     cluster: a
 *     filter_config:
 *       routecfg: {header_value: "alpha"}
 *
 * Filter config (optional): {header: <name>} renames x-route-cfg (two
 * instances of the filter in one chain then show that each gets its own
 * per-route config: the array is indexed by chain position).
 * Per-route config {header_value: "<non-empty string>"} (anything else is
 * refused with weft_config_fail on the offending node). On
 * on_request_headers:
 *   - a request header `x-rematch: <path>` makes it rewrite the path
 *     (weft_request_set_path) and re-match (weft_route_refresh);
 *   - `x-rewrite-only: <path>` rewrites the path WITHOUT a re-match (the
 *     request keeps its route: a 1.1 filter must ask for the re-match);
 *   - it adds to the upstream request x-route-name: <route name> (only
 *     when a route matched), x-route-vhost, x-route-cluster and, when the
 *     route gives this filter a per-route config, x-route-cfg: <value>;
 *   - a request header `x-cfg-in-timer: 1` makes it pause (WEFT_STOP)
 *     and read its per-route config again from a 1 ms timer callback
 *     (the host attributes the call to the filter that started the
 *     timer), set <header>-timer: <value> and resume.
 * On on_response_headers it adds <header>-resp: <value> (the per-route
 * config as the stream sees it at response time: a reload in between
 * leaves a stream its own snapshot's config). A request header
 * `x-refresh-late: 1` makes it try weft_route_refresh in
 * on_response_headers and report the result in x-refresh-late-result
 * (WEFT_ERR_STATE expected). Stat: route_configs (gauge of live per-route
 * configs: created minus destroyed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct rc_config {
    int32_t st_live; /* gauge: per-route configs alive */
    char header[64]; /* x-route-cfg, or config `header:` */
    char header_timer[72];
} rc_config;

typedef struct rc_route {
    char *value;
    size_t len;
} rc_route;

static int rc_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    rc_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, NULL, "out of memory");
    strcpy(c->header, "x-route-cfg");
    const weft_config_node *hn = node ? weft_config_get(node, "header") : NULL;
    if (hn) {
        weft_str h;
        if (weft_config_string(hn, &h) != WEFT_OK || !h.len || h.len >= sizeof(c->header)) {
            free(c);
            return weft_config_fail(setup, hn, "header must be a header name");
        }
        memcpy(c->header, h.ptr, h.len);
        c->header[h.len] = '\0';
    }
    snprintf(c->header_timer, sizeof(c->header_timer), "%s-timer", c->header);
    c->st_live = weft_stat_gauge(setup, "route_configs", "per-route configs alive");
    *config = c;
    return 0;
}

static void rc_config_destroy(void *config) {
    free(config);
}

static int rc_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                  void *filter_config, void **route_config) {
    rc_config *c = filter_config;
    if (!weft_config_is_map(node))
        return weft_config_fail(setup, node, "per-route config must be {header_value: \"...\"}");
    for (size_t i = 0; i < weft_config_len(node); i++) {
        weft_str key;
        const weft_config_node *v = weft_config_entry(node, i, &key);
        if (!(key.len == 12 && memcmp(key.ptr, "header_value", 12) == 0))
            return weft_config_fail(setup, v, "unknown key (expected header_value)");
    }
    const weft_config_node *vn = weft_config_get(node, "header_value");
    weft_str v;
    if (!vn || weft_config_string(vn, &v) != WEFT_OK || !v.len)
        return weft_config_fail(setup, vn ? vn : node, "header_value must be a non-empty string");
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.ptr[i] < 32 || v.ptr[i] == 127)
            return weft_config_fail(setup, vn, "header_value has a control character");
    rc_route *r = malloc(sizeof(*r));
    char *copy = malloc(v.len + 1);
    if (!r || !copy) {
        free(r);
        free(copy);
        return weft_config_fail(setup, node, "out of memory");
    }
    memcpy(copy, v.ptr, v.len);
    copy[v.len] = '\0';
    r->value = copy;
    r->len = v.len;
    *route_config = r;
    weft_stat_gauge_add(c->st_live, 1);
    return 0;
}

static void rc_route_config_destroy(void *filter_config, void *route_config) {
    rc_config *c = filter_config;
    rc_route *r = route_config;
    weft_stat_gauge_add(c->st_live, -1);
    free(r->value);
    free(r);
}

static void *rc_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    return config;
}

static weft_str hname(const char *h) {
    return (weft_str){h, strlen(h)};
}

static void rc_timer(weft_stream *s, void *ctx, void *arg) {
    rc_config *c = ctx;
    (void)arg;
    const rc_route *r = weft_route_config(s);
    weft_header_set(s, WEFT_REQUEST_HEADERS, hname(c->header_timer),
                    r ? (weft_str){r->value, r->len} : WEFT_STR("none"));
    weft_stream_resume(s);
}

static weft_status rc_req_headers(void *ctx, weft_stream *s, bool end_stream) {
    rc_config *c = ctx;
    (void)end_stream;
    weft_str to;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-rematch"), &to) == WEFT_OK) {
        if (weft_request_set_path(s, to) != WEFT_OK || weft_route_refresh(s) != WEFT_OK)
            return weft_reply_simple(s, 500, WEFT_STR("rematch_failed"), WEFT_STR("")) == WEFT_OK
                       ? WEFT_REPLIED
                       : WEFT_CONTINUE;
    }
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-rewrite-only"), &to) == WEFT_OK)
        weft_request_set_path(s, to); /* no refresh: the route stays (Envoy's semantics) */
    weft_route_facts ri = {.size = sizeof(ri)};
    if (weft_route_info(s, &ri) != WEFT_OK)
        return WEFT_CONTINUE;
    if (ri.has_route) {
        weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-route-name"), ri.route);
        weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-route-vhost"), ri.vhost);
    }
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-route-cluster"), ri.cluster);
    const rc_route *r = weft_route_config(s);
    if (r)
        weft_header_set(s, WEFT_REQUEST_HEADERS, hname(c->header), (weft_str){r->value, r->len});
    if (weft_header_count(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-cfg-in-timer")) &&
        weft_timer_start(s, 1, rc_timer, NULL, NULL) == WEFT_OK)
        return WEFT_STOP;
    return WEFT_CONTINUE;
}

static weft_status rc_resp_headers(void *ctx, weft_stream *s, bool end_stream) {
    rc_config *c = ctx;
    (void)end_stream;
    const rc_route *r = weft_route_config(s);
    char resp[80];
    snprintf(resp, sizeof(resp), "%s-resp", c->header);
    if (r)
        weft_header_set(s, WEFT_RESPONSE_HEADERS, hname(resp), (weft_str){r->value, r->len});
    if (weft_header_count(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-refresh-late"))) {
        char num[16];
        int n = snprintf(num, sizeof(num), "%d", (int)weft_route_refresh(s));
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-refresh-late-result"),
                        (weft_str){num, (size_t)n});
    }
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = rc_config_create,
    .config_destroy = rc_config_destroy,
    .stream_create = rc_stream_create,
    .on_request_headers = rc_req_headers,
    .on_response_headers = rc_resp_headers,
    .route_config_create = rc_route_config_create,
    .route_config_destroy = rc_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("routecfg", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
