/* bench_route: the filter of issue 8's chain benchmark (tests/bench/instr.sh,
 * BENCH_FILTER=bench_route; eight instances in one chain). Per request it
 * reads its per-route config and bumps a labelled counter, as a metrics
 * filter does, and nothing else:
 *
 *   routes:
 *   - match: {prefix: /}
 *     cluster: backend
 *     filter_config:
 *       bench_route: {route: "bench"}
 *
 * Per-route config {route: "<label>"}: [a-z0-9_], 1 to 32 characters
 * (anything else is refused with weft_config_fail on the offending node).
 * It registers, at config time, the counter series of that route, one per
 * status class:
 *   weft_filter_bench_route_requests_<label>_<N>xx{listener="..."}
 * (the labels route and status class live in the name until the labelled
 * stat families of ABI 1.1 land; every instance of the filter in a chain
 * bumps the same series, as they share the YAML name). Its only hook is
 * on_stream_complete: weft_route_config(s), then weft_stat_inc on the
 * series of the response's class (a status outside 100-599 counts as 5xx).
 * A request whose route has no config for it is not counted. No filter
 * config, no stream context, no worker object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct br_route {
    int32_t by_class[5]; /* 1xx .. 5xx */
} br_route;

static int br_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    if (node && !(weft_config_is_map(node) && weft_config_len(node) == 0))
        return weft_config_fail(setup, node, "bench_route takes no config (per-route only)");
    *config = NULL;
    return 0;
}

static int br_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                  void *filter_config, void **route_config) {
    (void)filter_config;
    if (!weft_config_is_map(node))
        return weft_config_fail(setup, node, "per-route config must be {route: \"<label>\"}");
    for (size_t i = 0; i < weft_config_len(node); i++) {
        weft_str key;
        const weft_config_node *v = weft_config_entry(node, i, &key);
        if (!(key.len == 5 && memcmp(key.ptr, "route", 5) == 0))
            return weft_config_fail(setup, v, "unknown key (expected route)");
    }
    const weft_config_node *rn = weft_config_get(node, "route");
    weft_str v;
    if (!rn || weft_config_string(rn, &v) != WEFT_OK || !v.len || v.len > 32)
        return weft_config_fail(setup, rn ? rn : node,
                                "route must be a label of 1 to 32 characters");
    for (size_t i = 0; i < v.len; i++) {
        char ch = v.ptr[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return weft_config_fail(setup, rn, "route may hold only a-z, 0-9 and _");
    }
    br_route *r = malloc(sizeof(*r));
    if (!r)
        return weft_config_fail(setup, node, "out of memory");
    for (int k = 0; k < 5; k++) {
        char name[64];
        snprintf(name, sizeof(name), "requests_%.*s_%dxx", (int)v.len, v.ptr, k + 1);
        r->by_class[k] = weft_stat_counter(setup, name, "requests by route and status class");
    }
    *route_config = r;
    return 0;
}

static void br_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config;
    free(route_config);
}

static void br_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    (void)ctx;
    const br_route *r = weft_route_config(s);
    if (!r)
        return;
    uint32_t cls = info->status / 100;
    weft_stat_inc(r->by_class[cls >= 1 && cls <= 5 ? cls - 1 : 4], 1);
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = br_config_create,
    .on_stream_complete = br_complete,
    .route_config_create = br_route_config_create,
    .route_config_destroy = br_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("bench_route", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
