/* stale_handle: keeps the weft_stream * of each request in its worker
 * object and uses it during the NEXT request of that worker (on HTTP/1.1
 * keep-alive the same stream object, on HTTP/2 a recycled one): a header
 * change and a read through the old handle. Both must be refused with
 * WEFT_ERR_HANDLE and leave the new request alone.
 *
 * The request being served gets, toward the upstream and in its response:
 *   x-stale-set  result of weft_header_set(old, request headers,
 *                "x-injected", "stale") ("none" on a worker's first request)
 *   x-stale-get  result of weft_request_get(old, ...)
 * Stats: refused (counter: stale calls refused), accepted (counter: stale
 * calls that worked, which is the bug). */
#include <stdio.h>
#include <stdlib.h>

#include <weft/filter.h>

typedef struct sh_config {
    int32_t st_refused, st_accepted;
} sh_config;

typedef struct sh_worker {
    weft_stream *kept; /* the previous request's handle */
} sh_worker;

typedef struct sh_stream {
    sh_config *cfg;
    char set_rc[16], get_rc[16];
} sh_stream;

static int sh_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    sh_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->st_refused = weft_stat_counter(setup, "refused", "stale handle calls refused");
    c->st_accepted = weft_stat_counter(setup, "accepted", "stale handle calls that worked");
    *config = c;
    return 0;
}

static void sh_config_destroy(void *config) {
    free(config);
}

static void *sh_worker_create(void *config) {
    return calloc(1, sizeof(sh_worker));
}

static void sh_worker_destroy(void *config, void *worker) {
    free(worker);
}

static void *sh_stream_create(void *config, void *worker, weft_stream *s) {
    sh_stream *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->cfg = config;
    snprintf(x->set_rc, sizeof(x->set_rc), "none");
    snprintf(x->get_rc, sizeof(x->get_rc), "none");
    sh_worker *w = worker;
    if (w && w->kept) {
        weft_result set = weft_header_set(w->kept, WEFT_REQUEST_HEADERS, WEFT_STR("x-injected"),
                                          WEFT_STR("stale"));
        weft_str method;
        weft_result get = weft_request_get(w->kept, &method, NULL, NULL, NULL);
        snprintf(x->set_rc, sizeof(x->set_rc), "%d", (int)set);
        snprintf(x->get_rc, sizeof(x->get_rc), "%d", (int)get);
        weft_stat_inc(set == WEFT_ERR_HANDLE ? x->cfg->st_refused : x->cfg->st_accepted, 1);
        weft_stat_inc(get == WEFT_ERR_HANDLE ? x->cfg->st_refused : x->cfg->st_accepted, 1);
    }
    if (w)
        w->kept = s;
    return x;
}

static void sh_stream_destroy(void *ctx) {
    free(ctx);
}

static weft_str cstr(const char *p) {
    size_t n = 0;
    while (p[n])
        n++;
    return (weft_str){p, n};
}

static weft_status sh_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    sh_stream *x = ctx;
    if (!x)
        return WEFT_CONTINUE;
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-stale-set"), cstr(x->set_rc));
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-stale-get"), cstr(x->get_rc));
    return WEFT_CONTINUE;
}

static weft_status sh_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    sh_stream *x = ctx;
    if (!x)
        return WEFT_CONTINUE;
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-stale-set"), cstr(x->set_rc));
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-stale-get"), cstr(x->get_rc));
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = sh_config_create,
    .config_destroy = sh_config_destroy,
    .worker_create = sh_worker_create,
    .worker_destroy = sh_worker_destroy,
    .stream_create = sh_stream_create,
    .stream_destroy = sh_stream_destroy,
    .on_request_headers = sh_request_headers,
    .on_response_headers = sh_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("stale_handle", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
