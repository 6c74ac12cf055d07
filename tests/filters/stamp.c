/* stamp: adds `x-stamp: <tag>:<local|upstream>` to EVERY response it sees,
 * local replies included (ABI 1.1: local replies run through the response
 * hooks of the filters that saw the request), and counts them
 * (weft_filter_<yaml name>_responses_local_total / _upstream_total,
 * _complete_local_total from the log phase's weft_stream_info.local_reply).
 * Also exercises the 1.1 author helpers: weft_setup_logf at config time,
 * weft_logf per response (the line names the YAML name), weft_str_c, and
 * typed metadata: each stamp increments the integer "stamp.depth" on the
 * request and reports the value it saw in x-stamp-depth-<tag>.
 * Config: { tag: <string> } (default "stamp"). */
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct stamp_cfg {
    char tag[64];
    int32_t st_local, st_upstream, st_complete_local;
} stamp_cfg;

typedef struct stamp_ctx {
    stamp_cfg *cfg;
    int64_t depth; /* the stamp.depth this filter set, 0: never saw the request */
} stamp_ctx;

static int stamp_config(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    stamp_cfg *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    strcpy(c->tag, "stamp");
    const weft_config_node *t = node ? weft_config_get(node, "tag") : NULL;
    weft_str v;
    if (t) {
        if (weft_config_string(t, &v) != WEFT_OK || !v.len || v.len >= sizeof(c->tag)) {
            free(c);
            return weft_config_fail(setup, t, "tag: a string of 1..63 characters");
        }
        memcpy(c->tag, v.ptr, v.len);
        c->tag[v.len] = '\0';
    }
    c->st_local = weft_stat_counter(setup, "responses_local_total", "local replies stamped");
    c->st_upstream =
        weft_stat_counter(setup, "responses_upstream_total", "upstream responses stamped");
    c->st_complete_local =
        weft_stat_counter(setup, "complete_local_total", "streams whose final response was local");
    weft_setup_logf(setup, WEFT_LOG_LEVEL_INFO, "stamp configured with tag %s", c->tag);
    *config = c;
    return 0;
}

static void stamp_config_destroy(void *config) {
    free(config);
}

static void *stamp_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    stamp_ctx *x = calloc(1, sizeof(*x));
    if (x)
        x->cfg = config;
    return x;
}

static void stamp_destroy(void *ctx) {
    free(ctx);
}

static weft_status stamp_request(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    stamp_ctx *x = ctx;
    if (!x)
        return WEFT_CONTINUE;
    int64_t d = 0;
    if (weft_metadata_get_int(s, weft_str_c("stamp.depth"), &d) != WEFT_OK)
        d = 0;
    x->depth = d + 1;
    weft_metadata_set_int(s, weft_str_c("stamp.depth"), x->depth);
    return WEFT_CONTINUE;
}

static weft_status stamp_response(void *ctx, weft_stream *s, bool end_stream) {
    stamp_ctx *x = ctx;
    if (!x)
        return WEFT_CONTINUE;
    bool local = weft_reply_is_local(s);
    char v[96], name[96], d[24];
    size_t tl = strlen(x->cfg->tag);
    memcpy(v, x->cfg->tag, tl);
    strcpy(v + tl, local ? ":local" : ":upstream");
    weft_header_add(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-stamp"), weft_str_c(v));
    memcpy(name, "x-stamp-depth-", 14);
    memcpy(name + 14, x->cfg->tag, tl + 1);
    int64_t depth = x->depth, n = 0;
    char tmp[24];
    do {
        tmp[n++] = (char)('0' + depth % 10);
        depth /= 10;
    } while (depth && n < 20);
    for (int64_t i = 0; i < n; i++)
        d[i] = tmp[n - 1 - i];
    d[n] = '\0';
    weft_header_set(s, WEFT_RESPONSE_HEADERS, weft_str_c(name), weft_str_c(d));
    weft_stat_inc(local ? x->cfg->st_local : x->cfg->st_upstream, 1);
    weft_logf(s, WEFT_LOG_LEVEL_INFO, "stamped %d local=%d end_stream=%d", weft_response_status(s),
              (int)local, (int)end_stream);
    return WEFT_CONTINUE;
}

static void stamp_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    stamp_ctx *x = ctx;
    if (!x)
        return;
    if (info->size >= offsetof(weft_stream_info, local_reply_reason) + sizeof(weft_str) &&
        info->local_reply) {
        weft_stat_inc(x->cfg->st_complete_local, 1);
        weft_logf(s, WEFT_LOG_LEVEL_INFO, "complete status=%d local reason=%.*s", info->status,
                  (int)info->local_reply_reason.len, info->local_reply_reason.ptr);
    }
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = stamp_config,
    .config_destroy = stamp_config_destroy,
    .stream_create = stamp_create,
    .stream_destroy = stamp_destroy,
    .on_request_headers = stamp_request,
    .on_response_headers = stamp_response,
    .on_stream_complete = stamp_complete,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("stamp", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
