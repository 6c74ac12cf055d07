/* bench_route: the filter of issue 8's chain benchmark (tests/bench/instr.sh,
 * target weft_routeN; eight instances in one chain). Per request it reads
 * its per-route config and bumps a labelled counter, as a metrics filter
 * does, and nothing else:
 *
 *   routes:
 *   - match: {prefix: /}
 *     cluster: backend
 *     filter_config:
 *       bench_route: {route: "bench"}
 *
 * config_create declares the labelled counter family (ABI 1.1)
 *   weft_filter_bench_route_requests_total{listener="...",route="<label>",status_class="<N>xx"}
 * (at most 64 series; every instance of the filter in a chain declares
 * and bumps the same family, as they share the YAML name). Per-route
 * config {route: "<label>"}: [a-z0-9_], 1 to 32 characters (anything else
 * is refused with weft_config_fail on the offending node);
 * route_config_create resolves the route's five series (route x 1xx..5xx)
 * to handles (ABI 1.2 weft_stat_family_series). The only hook is
 * on_stream_complete: the per-route config (ABI 1.2: info->route_config,
 * which is weft_route_config(s)'s answer), then weft_stat_series_inc on
 * the handle of the response's status class (a status outside 100-599
 * counts as 5xx): the labelled counter {route, status_class} is bumped at
 * the cost of a plain counter. A request whose route has no config for it
 * is not counted. No stream context, no worker object.
 * A/B of the benchmark: with BENCH_ROUTE_FAMILY_INC=1 in weft's
 * environment (read at route_config_create) the hook bumps by values
 * instead (weft_stat_family_inc with the route's label and the class: the
 * ABI 1.1 update path, the per-route config still from info), on the same
 * binary: tests/bench/README and docs/benchmarks.md give both figures. */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct br_config {
    int32_t family; /* requests_total{route, status_class} */
} br_config;

typedef struct br_route {
    weft_stat_series series[5]; /* {route, 1xx} .. {route, 5xx} */
    bool by_values;             /* BENCH_ROUTE_FAMILY_INC: the 1.1 path */
    int32_t family;
    weft_str route; /* the label value: points at name */
    char name[33];
} br_route;

static const weft_str br_classes[5] = {{"1xx", 3}, {"2xx", 3}, {"3xx", 3}, {"4xx", 3}, {"5xx", 3}};

static int br_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    if (node && !(weft_config_is_map(node) && weft_config_len(node) == 0))
        return weft_config_fail(setup, node, "bench_route takes no config (per-route only)");
    br_config *c = malloc(sizeof(*c));
    if (!c)
        return weft_config_fail(setup, NULL, "out of memory");
    static const char *const labels[] = {"route", "status_class"};
    if (weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, "requests_total",
                         "requests by route and status class", labels, 2, 64,
                         &c->family) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, NULL, "cannot declare requests_total");
    }
    *config = c;
    return 0;
}

static void br_config_destroy(void *config) {
    free(config);
}

static int br_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                  void *filter_config, void **route_config) {
    const br_config *c = filter_config;
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
    for (size_t i = 0; i < 5; i++) {
        weft_str values[2] = {v, br_classes[i]};
        if (weft_stat_family_series(c->family, values, 2, &r->series[i]) != WEFT_OK) {
            free(r);
            return weft_config_fail(setup, rn, "cannot resolve the route's series");
        }
    }
    const char *ab = getenv("BENCH_ROUTE_FAMILY_INC");
    r->by_values = ab && ab[0] == '1';
    r->family = c->family;
    memcpy(r->name, v.ptr, v.len);
    r->name[v.len] = '\0';
    r->route = (weft_str){r->name, v.len};
    *route_config = r;
    return 0;
}

static void br_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config;
    free(route_config);
}

static void br_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    (void)ctx;
    /* 1.2: the per-route config comes with the facts (no host call) */
    const br_route *r =
        WEFT_STREAM_INFO_HAS(info, route_config) ? info->route_config : weft_route_config(s);
    if (!r)
        return;
    uint32_t cls = info->status / 100;
    uint32_t k = cls >= 1 && cls <= 5 ? cls - 1 : 4;
    if (r->by_values) {
        weft_str values[2] = {r->route, br_classes[k]};
        weft_stat_family_inc(r->family, values, 2, 1);
        return;
    }
    weft_stat_series_inc(r->series[k], 1);
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = br_config_create,
    .config_destroy = br_config_destroy,
    .on_stream_complete = br_complete,
    .route_config_create = br_route_config_create,
    .route_config_destroy = br_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("bench_route", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
