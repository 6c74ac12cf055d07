/* labelled: counts requests by method and status class in a labelled
 * counter family (ABI 1.1 weft_stat_family), in the log phase:
 *     weft_filter_<name>_requests_total{listener=...,method="GET",code="2xx"}
 * Config (all optional):
 *   max_series: 3          the family's max_series (default 100)
 *   tag_header: x-tag      adds a third label, tag, whose value is that
 *                          request header's ("" when absent)
 *   family: requests_total the family's name
 *   worker_label: true     also counts in weft_filter_<name>_worker_requests_total
 *                          {worker="N"}, N the worker object's number (1, 2, ...
 *                          in worker_create order, process-wide), and answers
 *                          with x-labelled-worker: N (which worker counted)
 * Per-route config (route_config_create; filter_config: {labelled: ...}):
 *   route_label: ok        this route's requests also count in
 *                          weft_filter_<name>_route_requests_total{route="ok",
 *                          code="2xx"}, a family declared by
 *                          route_config_create (each route declares it again:
 *                          the same family)
 *   route_max_series: 10   that family's max_series (default 10)
 * The request headers are read in on_request_headers (kept in the stream
 * context: a copy, at most 300 bytes: longer values are cut to 300 so
 * the overflow path for long values can be driven). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define TAG_MAX 300

typedef struct {
    int32_t family;
    int32_t worker_family; /* -1: no worker_label */
    char tag_header[64];
} lab_config;

typedef struct {
    int32_t family;
    char route[64];
    size_t route_len;
} lab_route;

typedef struct {
    char number[24];
    size_t len;
} lab_worker;

static _Atomic unsigned long long workers_made;

typedef struct {
    const lab_config *config;
    const lab_worker *worker;
    char method[16];
    size_t method_len;
    char tag[TAG_MAX];
    size_t tag_len;
} lab_stream;

static int lab_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    lab_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    int64_t max = 100;
    char name[64] = "requests_total";
    const weft_config_node *n;
    weft_str v;
    if ((n = weft_config_get(node, "max_series")) && weft_config_int(n, &max) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, n, "max_series: an integer");
    }
    if ((n = weft_config_get(node, "tag_header")) &&
        (weft_config_string(n, &v) != WEFT_OK || !v.len || v.len >= sizeof(c->tag_header))) {
        free(c);
        return weft_config_fail(setup, n, "tag_header: a header name");
    }
    if (n)
        memcpy(c->tag_header, v.ptr, v.len);
    if ((n = weft_config_get(node, "family")) &&
        (weft_config_string(n, &v) != WEFT_OK || !v.len || v.len >= sizeof(name))) {
        free(c);
        return weft_config_fail(setup, n, "family: a stat name");
    }
    if (n) {
        memcpy(name, v.ptr, v.len);
        name[v.len] = '\0';
    }
    bool per_worker = false;
    if ((n = weft_config_get(node, "worker_label")) &&
        weft_config_bool(n, &per_worker) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, n, "worker_label: true or false");
    }
    static const char *const labels[] = {"method", "code", "tag"};
    static const char *const worker_labels[] = {"worker"};
    c->worker_family = -1;
    weft_result r =
        weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, name, "Requests by method and status class",
                         labels, c->tag_header[0] ? 3 : 2, (uint32_t)max, &c->family);
    if (r == WEFT_OK && per_worker)
        r = weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, "worker_requests_total",
                             "Requests by the worker that counted them", worker_labels, 1, 64,
                             &c->worker_family);
    if (r != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, NULL, "weft_stat_family refused the family");
    }
    *config = c;
    return 0;
}

static void lab_config_destroy(void *config) {
    free(config);
}

static int lab_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                   void *filter_config, void **route_config) {
    (void)filter_config;
    lab_route *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return weft_config_fail(setup, node, "out of memory");
    const weft_config_node *n = weft_config_get(node, "route_label");
    weft_str v;
    if (!n || weft_config_string(n, &v) != WEFT_OK || v.len >= sizeof(rc->route)) {
        free(rc);
        return weft_config_fail(setup, n ? n : node, "route_label: a label value is required");
    }
    memcpy(rc->route, v.ptr, v.len);
    rc->route_len = v.len;
    int64_t max = 10;
    if ((n = weft_config_get(node, "route_max_series")) && weft_config_int(n, &max) != WEFT_OK) {
        free(rc);
        return weft_config_fail(setup, n, "route_max_series: an integer");
    }
    static const char *const labels[] = {"route", "code"};
    if (weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, "route_requests_total",
                         "Requests by route and status class", labels, 2, (uint32_t)max,
                         &rc->family) != WEFT_OK) {
        free(rc);
        return weft_config_fail(setup, n ? n : node, "weft_stat_family refused the route family");
    }
    *route_config = rc;
    return 0;
}

static void lab_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config;
    free(route_config);
}

static void *lab_worker_create(void *config) {
    (void)config;
    lab_worker *w = calloc(1, sizeof(*w));
    if (w) {
        int len =
            snprintf(w->number, sizeof(w->number), "%llu", atomic_fetch_add(&workers_made, 1) + 1);
        w->len = len > 0 ? (size_t)len : 0;
    }
    return w;
}

static void lab_worker_destroy(void *config, void *worker) {
    (void)config;
    free(worker);
}

static void *lab_stream_create(void *config, void *worker, weft_stream *s) {
    lab_stream *st = calloc(1, sizeof(*st));
    if (st) {
        st->config = config;
        st->worker = worker;
    }
    return st;
}

static void lab_stream_destroy(void *ctx) {
    free(ctx);
}

static void keep(char *dst, size_t cap, size_t *len, weft_str v) {
    *len = v.len < cap ? v.len : cap;
    memcpy(dst, v.ptr, *len);
}

static weft_status lab_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    lab_stream *st = ctx;
    if (!st)
        return WEFT_CONTINUE;
    weft_str v;
    if (weft_request_get(s, &v, NULL, NULL, NULL) == WEFT_OK)
        keep(st->method, sizeof(st->method), &st->method_len, v);
    const char *h = st->config->tag_header;
    if (*h && weft_header_get(s, WEFT_REQUEST_HEADERS, (weft_str){h, strlen(h)}, &v) == WEFT_OK)
        keep(st->tag, sizeof(st->tag), &st->tag_len, v);
    return WEFT_CONTINUE;
}

/* The log phase: every request counts once, local replies included. */
static void lab_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    lab_stream *st = ctx;
    if (!st)
        return;
    static const char *const classes[] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};
    int k = info->status / 100;
    const char *code = k >= 1 && k <= 5 ? classes[k] : classes[0];
    weft_str values[3] = {{st->method, st->method_len}, weft_str_c(code), {st->tag, st->tag_len}};
    weft_stat_family_inc(st->config->family, values, st->config->tag_header[0] ? 3 : 2, 1);
    if (st->config->worker_family >= 0 && st->worker) {
        weft_str w = {st->worker->number, st->worker->len};
        weft_stat_family_inc(st->config->worker_family, &w, 1, 1);
    }
    const lab_route *rc = weft_route_config(s);
    if (rc) {
        weft_str rv[2] = {{rc->route, rc->route_len}, weft_str_c(code)};
        weft_stat_family_inc(rc->family, rv, 2, 1);
    }
}

/* Which worker counts this request (worker_label). */
static weft_status lab_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    lab_stream *st = ctx;
    if (st && st->worker && st->config->worker_family >= 0)
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-labelled-worker"),
                        (weft_str){st->worker->number, st->worker->len});
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = lab_config_create,
    .config_destroy = lab_config_destroy,
    .worker_create = lab_worker_create,
    .worker_destroy = lab_worker_destroy,
    .stream_create = lab_stream_create,
    .stream_destroy = lab_stream_destroy,
    .on_request_headers = lab_request_headers,
    .on_response_headers = lab_response_headers,
    .on_stream_complete = lab_complete,
    .route_config_create = lab_route_config_create,
    .route_config_destroy = lab_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("labelled", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
