/* series: ABI 1.2 series handles through real weft
 * (tests/integration/test_stat_series.sh). One labelled counter family,
 *     weft_filter_<name>_hits_total{listener=...,value="<v>"}
 * whose series are resolved ahead into handles (weft_stat_family_series)
 * and bumped by handle (weft_stat_series_inc):
 * Config:
 *   values: [a, b, ...]   resolved in config_create, in this order (at
 *                         most 8; a value may be longer than 256 bytes:
 *                         its handle names the overflow series)
 *   max_series: 6         the family's max_series (default 100)
 *   refuse: true          config_create resolves the values, then refuses
 *                         its config (a refused reload after the resolves)
 * Per-route config (filter_config: {series: {value: x}}): resolved at
 * route_config_create into the same family.
 * Per request: the request header x-series: <i> bumps the handle of
 * values[i] by 1 (on_request_headers; an index out of range bumps
 * nothing); in on_stream_complete, the route's handle (found through
 * info->route_config, ABI 1.2) is bumped by 1. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define SER_VALUES 8

typedef struct {
    int32_t family;
    size_t n;
    weft_stat_series h[SER_VALUES];
} ser_config;

typedef struct {
    weft_stat_series h;
} ser_route;

static int ser_fail(weft_filter_setup *setup, const weft_config_node *at, ser_config *c,
                    const char *msg) {
    free(c);
    return weft_config_fail(setup, at, msg);
}

static int ser_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    ser_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    int64_t max = 100;
    bool refuse = false;
    const weft_config_node *n, *values = weft_config_get(node, "values");
    if ((n = weft_config_get(node, "max_series")) && weft_config_int(n, &max) != WEFT_OK)
        return ser_fail(setup, n, c, "max_series: an integer");
    if ((n = weft_config_get(node, "refuse")) && weft_config_bool(n, &refuse) != WEFT_OK)
        return ser_fail(setup, n, c, "refuse: true or false");
    if (values && (!weft_config_is_list(values) || weft_config_len(values) > SER_VALUES))
        return ser_fail(setup, values, c, "values: a list of at most 8 strings");
    static const char *const labels[] = {"value"};
    if (weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, "hits_total", "Hits by value", labels, 1,
                         (uint32_t)max, &c->family) != WEFT_OK)
        return ser_fail(setup, NULL, c, "weft_stat_family refused hits_total");
    for (c->n = 0; values && c->n < weft_config_len(values); c->n++) {
        const weft_config_node *v = weft_config_at(values, c->n);
        weft_str s;
        if (weft_config_string(v, &s) != WEFT_OK)
            return ser_fail(setup, v, c, "values: strings");
        if (weft_stat_family_series(c->family, &s, 1, &c->h[c->n]) != WEFT_OK)
            return ser_fail(setup, v, c, "weft_stat_family_series refused the value");
    }
    if (refuse)
        return ser_fail(setup, n, c, "series: refused as asked (after resolving its values)");
    *config = c;
    return 0;
}

static void ser_config_destroy(void *config) {
    free(config);
}

static int ser_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                   void *filter_config, void **route_config) {
    const ser_config *c = filter_config;
    const weft_config_node *n = weft_config_get(node, "value");
    weft_str v;
    if (!n || weft_config_string(n, &v) != WEFT_OK)
        return weft_config_fail(setup, n ? n : node, "value: a label value is required");
    ser_route *r = calloc(1, sizeof(*r));
    if (!r)
        return weft_config_fail(setup, node, "out of memory");
    if (weft_stat_family_series(c->family, &v, 1, &r->h) != WEFT_OK) {
        free(r);
        return weft_config_fail(setup, n, "weft_stat_family_series refused the value");
    }
    *route_config = r;
    return 0;
}

static void ser_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config;
    free(route_config);
}

static void *ser_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    return config;
}

static weft_status ser_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    const ser_config *c = ctx;
    (void)end_stream;
    weft_str v;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-series"), &v) == WEFT_OK &&
        v.len == 1 && v.ptr[0] >= '0' && (size_t)(v.ptr[0] - '0') < c->n)
        weft_stat_series_inc(c->h[v.ptr[0] - '0'], 1);
    return WEFT_CONTINUE;
}

static void ser_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    (void)ctx;
    (void)s;
    const ser_route *r = WEFT_STREAM_INFO_HAS(info, route_config) ? info->route_config : NULL;
    if (r)
        weft_stat_series_inc(r->h, 1);
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = ser_config_create,
    .config_destroy = ser_config_destroy,
    .stream_create = ser_stream_create,
    .on_request_headers = ser_request_headers,
    .on_stream_complete = ser_complete,
    .route_config_create = ser_route_config_create,
    .route_config_destroy = ser_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("series", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
