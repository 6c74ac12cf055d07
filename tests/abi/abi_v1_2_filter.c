/* abi_v1_2_filter: a filter compiled against the frozen ABI 1.2 header
 * (tests/abi/filter_v1_2.h), not the current SDK: it proves that what a
 * filter author built for 1.2 keeps loading and working in later weft.
 * It uses the 1.2 additions:
 *   - series handles: per-route config {tag: <label>}; route_config_create
 *     resolves the route's series of three families (counter
 *     requests_total{route}, gauge balance{route}, histogram
 *     duration{route}) with weft_stat_family_series and keeps the handles
 *     in the route's config; a request bumps them by handle
 *     (weft_stat_series_gauge_add +3 in on_request_headers; in
 *     on_stream_complete weft_stat_series_inc +1, gauge_add -1,
 *     observe_us of the request's duration);
 *   - weft_stream_info.route_config: on_stream_complete finds the route's
 *     config there (WEFT_STREAM_INFO_HAS), and counts route_config_seen
 *     when it is the pointer weft_route_config returns, route_config_other
 *     when it is not, no_route_config when the route has none;
 *   - WEFT_HOST_HAS(stat_family_series): the request header x-abi12-host
 *     says "series" on a host that has it;
 *   - x-abi12-tag: the route's tag as a response header (1.1
 *     weft_route_config in a response hook).
 * Stats: route_config_seen, route_config_other, no_route_config (plain
 * counters) and the three families above (at most 4 series each). */
#include <stdlib.h>
#include <string.h>

#include "filter_v1_2.h"

typedef struct a12_config {
    int32_t requests, balance, duration; /* families {route} */
    int32_t seen, other, none;           /* counters */
} a12_config;

typedef struct a12_route {
    weft_stat_series requests, balance, duration;
    size_t len;
    char tag[32];
} a12_route;

static int a12_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    (void)node;
    a12_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, NULL, "out of memory");
    static const char *const labels[] = {"route"};
    c->seen = weft_stat_counter(setup, "route_config_seen", "info.route_config as expected");
    c->other = weft_stat_counter(setup, "route_config_other", "info.route_config differs");
    c->none = weft_stat_counter(setup, "no_route_config", "requests of a route without config");
    if (weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, "requests_total", "requests by route",
                         labels, 1, 4, &c->requests) != WEFT_OK ||
        weft_stat_family(setup, WEFT_STAT_KIND_GAUGE, "balance", "3 in, 1 out per request", labels,
                         1, 4, &c->balance) != WEFT_OK ||
        weft_stat_family(setup, WEFT_STAT_KIND_HISTOGRAM, "duration", "request duration", labels, 1,
                         4, &c->duration) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, NULL, "cannot declare the families");
    }
    *config = c;
    return 0;
}

static void a12_config_destroy(void *config) {
    free(config);
}

static int a12_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                   void *filter_config, void **route_config) {
    const a12_config *c = filter_config;
    const weft_config_node *t = weft_config_get(node, "tag");
    weft_str v;
    if (!t || weft_config_string(t, &v) != WEFT_OK || !v.len || v.len >= 32)
        return weft_config_fail(setup, t ? t : node, "tag: 1 to 31 characters");
    a12_route *r = calloc(1, sizeof(*r));
    if (!r)
        return weft_config_fail(setup, node, "out of memory");
    memcpy(r->tag, v.ptr, v.len);
    r->len = v.len;
    weft_str label = {r->tag, r->len};
    if (weft_stat_family_series(c->requests, &label, 1, &r->requests) != WEFT_OK ||
        weft_stat_family_series(c->balance, &label, 1, &r->balance) != WEFT_OK ||
        weft_stat_family_series(c->duration, &label, 1, &r->duration) != WEFT_OK) {
        free(r);
        return weft_config_fail(setup, t, "weft_stat_family_series refused the tag");
    }
    *route_config = r;
    return 0;
}

static void a12_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config;
    free(route_config);
}

static void *a12_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    return config;
}

static weft_status a12_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)ctx;
    (void)end_stream;
    weft_header_set(s, WEFT_REQUEST_HEADERS, weft_str_c("x-abi12-host"),
                    weft_str_c(WEFT_HOST_HAS(stat_family_series) ? "series" : "none"));
    const a12_route *r = weft_route_config(s);
    if (r)
        weft_stat_series_gauge_add(r->balance, 3);
    return WEFT_CONTINUE;
}

static weft_status a12_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)ctx;
    (void)end_stream;
    const a12_route *r = weft_route_config(s);
    if (r)
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-abi12-tag"),
                        (weft_str){r->tag, r->len});
    return WEFT_CONTINUE;
}

static void a12_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    const a12_config *c = ctx;
    const a12_route *r =
        WEFT_STREAM_INFO_HAS(info, route_config) ? (const a12_route *)info->route_config : NULL;
    if (r != weft_route_config(s)) {
        weft_stat_inc(c->other, 1);
        return;
    }
    if (!r) {
        weft_stat_inc(c->none, 1);
        return;
    }
    weft_stat_inc(c->seen, 1);
    weft_stat_series_inc(r->requests, 1);
    weft_stat_series_gauge_add(r->balance, -1);
    weft_stat_series_observe_us(r->duration, info->duration_us);
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = a12_config_create,
    .config_destroy = a12_config_destroy,
    .stream_create = a12_stream_create,
    .on_request_headers = a12_request_headers,
    .on_response_headers = a12_response_headers,
    .on_stream_complete = a12_complete,
    .route_config_create = a12_route_config_create,
    .route_config_destroy = a12_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("abi_v1_2", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
