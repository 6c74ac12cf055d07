/* abi_v1_1_filter: a filter compiled against the frozen ABI 1.1 header
 * (tests/abi/filter_v1_1.h), not the current SDK: it proves that what a
 * filter author built for 1.1 keeps loading and working in later weft.
 * It uses one call or hook of most 1.1 groups:
 *   - routing: per-route config ({tag: <text>}) read with
 *     weft_route_config, the route's name with weft_route_info; both are
 *     set as response headers x-abi11-tag and x-abi11-route;
 *   - local replies: a request with x-abi-reply gets a local 418 (reason
 *     abi_v1_1_reply) and its response hook marks it x-abi11-local: 1
 *     (weft_reply_is_local);
 *   - author helpers: weft_str_c, weft_metadata_set_int, weft_logf;
 *   - labelled stats: requests_total{route} (weft_stat_family);
 *   - worker handles and timers: every worker ticks a counter "ticks"
 *     every 50 ms from worker_create on, without traffic;
 *   - WEFT_HOST_HAS: the request header x-abi11-host says whether the host
 *     has the 1.1 TCP callout call (a 1.1 host: "tcp");
 *   - pooled callouts: a request with x-abi11-callout pauses on a
 *     weft_callout_start2 GET of that path to the cluster "be"; the
 *     callout's status goes upstream as x-abi11-callout-status.
 * Stats: ticks (counter), requests_total{route} (family). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_v1_1.h"

typedef struct a11_config {
    int32_t st_ticks;
    int32_t family; /* requests_total{route} */
} a11_config;

typedef struct a11_route {
    size_t len;
    char tag[32];
} a11_route;

typedef struct a11_worker {
    a11_config *c;
    weft_worker *w;
} a11_worker;

static int a11_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    (void)node;
    a11_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, NULL, "out of memory");
    static const char *const labels[] = {"route"};
    c->st_ticks = weft_stat_counter(setup, "ticks", "worker timer ticks");
    if (weft_stat_family(setup, WEFT_STAT_KIND_COUNTER, "requests_total", "requests by route",
                         labels, 1, 16, &c->family) != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, NULL, "cannot declare requests_total");
    }
    *config = c;
    return 0;
}

static void a11_config_destroy(void *config) {
    free(config);
}

static int a11_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                   void *filter_config, void **route_config) {
    (void)filter_config;
    const weft_config_node *t = weft_config_get(node, "tag");
    weft_str v;
    if (!t || weft_config_string(t, &v) != WEFT_OK || !v.len || v.len >= 32)
        return weft_config_fail(setup, t ? t : node, "tag: 1 to 31 characters");
    a11_route *r = calloc(1, sizeof(*r));
    if (!r)
        return weft_config_fail(setup, node, "out of memory");
    memcpy(r->tag, v.ptr, v.len);
    r->len = v.len;
    *route_config = r;
    return 0;
}

static void a11_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config;
    free(route_config);
}

static void a11_tick(weft_worker *w, void *arg) {
    a11_worker *aw = arg;
    weft_stat_inc(aw->c->st_ticks, 1);
    weft_worker_timer_start(w, 50, a11_tick, aw, NULL);
}

static void *a11_worker_create(void *config) {
    a11_worker *aw = calloc(1, sizeof(*aw));
    if (!aw)
        return NULL;
    aw->c = config;
    aw->w = weft_worker_current(config);
    weft_worker_timer_start(aw->w, 50, a11_tick, aw, NULL);
    return aw;
}

static void a11_worker_destroy(void *config, void *worker) {
    (void)config;
    free(worker); /* its timers were cancelled before this runs */
}

static void *a11_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    return config;
}

static void a11_callout_done(weft_stream *s, void *stream_ctx, void *arg,
                             const weft_callout_response *resp) {
    (void)stream_ctx;
    (void)arg;
    char st[16];
    snprintf(st, sizeof(st), "%d", resp->status);
    weft_header_set(s, WEFT_REQUEST_HEADERS, weft_str_c("x-abi11-callout-status"), weft_str_c(st));
    weft_stream_resume(s);
}

static weft_status a11_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)ctx;
    (void)end_stream;
    weft_str path;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-abi11-callout"), &path) == WEFT_OK) {
        weft_callout_request r = {.size = sizeof(r),
                                  .cluster = WEFT_STR("be"),
                                  .method = WEFT_STR("GET"),
                                  .path = path,
                                  .timeout_ms = 2000};
        weft_result rc = weft_callout_start2(s, &r, a11_callout_done, NULL, NULL);
        weft_header_remove(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-abi11-callout")); /* path dies */
        if (rc != WEFT_OK) {
            weft_reply_simple(s, 500, WEFT_STR("abi_v1_1_callout"), WEFT_STR("callout\n"));
            return WEFT_REPLIED;
        }
        return WEFT_STOP;
    }
    weft_metadata_set_int(s, weft_str_c("abi11.seen"), 11);
    weft_header_set(s, WEFT_REQUEST_HEADERS, weft_str_c("x-abi11-host"),
                    weft_str_c(WEFT_HOST_HAS(tcp_callout_open) ? "tcp" : "none"));
    if (weft_header_count(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-abi-reply"))) {
        weft_reply_simple(s, 418, WEFT_STR("abi_v1_1_reply"), WEFT_STR("abi 1.1 filter\n"));
        return WEFT_REPLIED;
    }
    return WEFT_CONTINUE;
}

static weft_status a11_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    a11_config *c = ctx;
    (void)end_stream;
    weft_route_facts f = {.size = sizeof(f)};
    if (weft_route_info(s, &f) == WEFT_OK && f.has_route) {
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-abi11-route"), f.route);
        weft_stat_family_inc(c->family, &f.route, 1, 1);
    }
    const a11_route *r = weft_route_config(s);
    if (r)
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-abi11-tag"),
                        (weft_str){r->tag, r->len});
    if (weft_reply_is_local(s)) {
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-abi11-local"), WEFT_STR("1"));
        weft_logf(s, WEFT_LOG_LEVEL_INFO, "abi 1.1 local reply %d", 418);
    }
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = a11_config_create,
    .config_destroy = a11_config_destroy,
    .worker_create = a11_worker_create,
    .worker_destroy = a11_worker_destroy,
    .stream_create = a11_stream_create,
    .on_request_headers = a11_request_headers,
    .on_response_headers = a11_response_headers,
    .route_config_create = a11_route_config_create,
    .route_config_destroy = a11_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("abi_v1_1", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
