/* retry_policy: a retry filter in the way of Istio's HTTPRetry / Envoy's
 * retry policy, on the ABI 1.1 retry calls.
 *
 *   - { name: retry_policy, config: { attempts: 3, per_try_timeout: 300ms,
 *       backoff_ms: 200, retry_on: "5xx,reset,connect-failure",
 *       other_endpoint: true, label: version } }
 *
 * attempts: most upstream attempts per request (first one included; 1..10,
 * default 2). per_try_timeout: weft_upstream_set_try_timeout (default none).
 * backoff_ms: delay before each retry (0..10000, default 0). retry_on: a
 * comma list (or YAML list) of 5xx (a 5xx response, or a per-try timeout),
 * reset (reset before the response), connect-failure (connect failure or
 * timeout); default "5xx,reset,connect-failure". other_endpoint: retries go
 * to an endpoint not tried yet (WEFT_RETRY_OTHER_ENDPOINT). label: the
 * endpoint label reported (default "version").
 *
 * Every attempt's upstream request carries x-weft-attempt-count: <n>
 * (on_upstream_request). The response (from the attempt that answered)
 * carries what the filter learnt from weft_attempt_info:
 *   x-retry-attempts   attempts made
 *   x-retry-history    "<result>@<endpoint index>" per attempt, comma
 *                      separated (result: the status, or timeout /
 *                      pertry / reset / connect)
 *   x-retry-endpoint   upstream_host of the answering attempt
 *   x-retry-locality   region/zone/subzone of it
 *   x-retry-label      the configured label of it (weft_attempt_endpoint_label)
 *   x-retry-labels     n_labels of it
 *   x-retry-backoff-us backoff_us of it (time waited before it started)
 *   x-retry-flags      its WEFT_ATTEMPT_F_* flags
 * Stats: retries (accepted), retry_refused. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

enum { ON_5XX = 1, ON_RESET = 2, ON_CONNECT = 4 };

typedef struct rp_config {
    uint32_t attempts;
    uint64_t per_try_ms;
    uint64_t backoff_ms;
    uint32_t retry_on;
    bool other_endpoint;
    char label[64];
    int32_t st_retries, st_refused;
} rp_config;

typedef struct rp_stream {
    rp_config *cfg;
    char history[256];
    size_t hlen;
    char endpoint[96], locality[200], label[128];
    uint32_t attempts, n_labels, flags;
    uint64_t backoff_us;
} rp_stream;

static bool word_is(weft_str w, const char *lit) {
    return w.len == strlen(lit) && memcmp(w.ptr, lit, w.len) == 0;
}

/* One retry_on word; false if unknown. */
static bool add_retry_on(rp_config *c, weft_str w) {
    while (w.len && (w.ptr[0] == ' '))
        w.ptr++, w.len--;
    while (w.len && w.ptr[w.len - 1] == ' ')
        w.len--;
    if (word_is(w, "5xx") || word_is(w, "gateway-error"))
        c->retry_on |= ON_5XX;
    else if (word_is(w, "reset"))
        c->retry_on |= ON_RESET;
    else if (word_is(w, "connect-failure"))
        c->retry_on |= ON_CONNECT;
    else
        return false;
    return true;
}

static int parse_retry_on(rp_config *c, const weft_config_node *n, weft_filter_setup *setup) {
    c->retry_on = 0;
    if (weft_config_is_list(n)) {
        for (size_t i = 0; i < weft_config_len(n); i++) {
            weft_str w;
            const weft_config_node *it = weft_config_at(n, i);
            if (weft_config_string(it, &w) != WEFT_OK || !add_retry_on(c, w))
                return weft_config_fail(setup, it, "retry_on: 5xx, reset or connect-failure");
        }
        return 0;
    }
    weft_str s;
    if (weft_config_string(n, &s) != WEFT_OK)
        return weft_config_fail(setup, n, "retry_on: a comma list or a list");
    size_t start = 0;
    for (size_t i = 0; i <= s.len; i++) {
        if (i < s.len && s.ptr[i] != ',')
            continue;
        if (!add_retry_on(c, (weft_str){s.ptr + start, i - start}))
            return weft_config_fail(setup, n, "retry_on: 5xx, reset or connect-failure");
        start = i + 1;
    }
    return 0;
}

static int rp_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    rp_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->attempts = 2;
    c->retry_on = ON_5XX | ON_RESET | ON_CONNECT;
    strcpy(c->label, "version");
    const weft_config_node *n;
    int64_t v;
    int rc = 0;
    if ((n = weft_config_get(node, "attempts")) &&
        (weft_config_int(n, &v) != WEFT_OK || v < 1 || v > 10))
        rc = weft_config_fail(setup, n, "attempts: 1..10");
    else if (n)
        c->attempts = (uint32_t)v;
    if (!rc && (n = weft_config_get(node, "per_try_timeout")) &&
        weft_config_duration_ms(n, &c->per_try_ms) != WEFT_OK)
        rc = weft_config_fail(setup, n, "per_try_timeout: a duration (300ms)");
    if (!rc && (n = weft_config_get(node, "backoff_ms")) &&
        (weft_config_int(n, &v) != WEFT_OK || v < 0 || v > 10000))
        rc = weft_config_fail(setup, n, "backoff_ms: 0..10000");
    else if (!rc && n)
        c->backoff_ms = (uint64_t)v;
    if (!rc && (n = weft_config_get(node, "retry_on")))
        rc = parse_retry_on(c, n, setup);
    if (!rc && (n = weft_config_get(node, "other_endpoint")) &&
        weft_config_bool(n, &c->other_endpoint) != WEFT_OK)
        rc = weft_config_fail(setup, n, "other_endpoint: true or false");
    weft_str l;
    if (!rc && (n = weft_config_get(node, "label"))) {
        if (weft_config_string(n, &l) != WEFT_OK || !l.len || l.len >= sizeof(c->label))
            rc = weft_config_fail(setup, n, "label: 1..63 characters");
        else {
            memcpy(c->label, l.ptr, l.len);
            c->label[l.len] = '\0';
        }
    }
    if (rc) {
        free(c);
        return rc;
    }
    c->st_retries = weft_stat_counter(setup, "retries", "upstream retries asked for");
    c->st_refused = weft_stat_counter(setup, "retry_refused", "upstream retries the core refused");
    *config = c;
    return 0;
}

static void rp_config_destroy(void *config) {
    free(config);
}

static void *rp_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    rp_stream *rs = calloc(1, sizeof(*rs));
    if (rs)
        rs->cfg = config;
    return rs;
}

static void rp_stream_destroy(void *ctx) {
    free(ctx);
}

static weft_status rp_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    rp_stream *rs = ctx;
    if (!rs)
        return WEFT_CONTINUE;
    weft_body_buffer_for_replay(s, 64 * 1024);
    if (rs->cfg->per_try_ms)
        weft_upstream_set_try_timeout(s, rs->cfg->per_try_ms);
    return WEFT_CONTINUE;
}

static void rp_upstream_request(void *ctx, weft_stream *s, uint32_t attempt) {
    (void)ctx;
    char v[16];
    int n = snprintf(v, sizeof(v), "%" PRIu32, attempt);
    weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-weft-attempt-count"),
                    (weft_str){v, (size_t)n});
}

static void copy_str(char *dst, size_t cap, weft_str v) {
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.ptr, n);
    dst[n] = '\0';
}

static void rp_attempt(void *ctx, weft_stream *s, const weft_attempt_info *info) {
    rp_stream *rs = ctx;
    if (!rs)
        return;
    const rp_config *c = rs->cfg;
    bool per_try =
        WEFT_ATTEMPT_INFO_HAS(info, flags) && (info->flags & WEFT_ATTEMPT_F_PER_TRY_TIMEOUT) != 0;
    char what[16];
    switch (info->result) {
    case WEFT_ATTEMPT_RESPONSE:
        snprintf(what, sizeof(what), "%d", info->status);
        break;
    case WEFT_ATTEMPT_TIMEOUT:
        snprintf(what, sizeof(what), "%s", per_try ? "pertry" : "timeout");
        break;
    case WEFT_ATTEMPT_RESET:
        snprintf(what, sizeof(what), "reset");
        break;
    default:
        snprintf(what, sizeof(what), "connect");
        break;
    }
    int32_t idx = WEFT_ATTEMPT_INFO_HAS(info, endpoint_index) ? info->endpoint_index : -1;
    int n = snprintf(rs->history + rs->hlen, sizeof(rs->history) - rs->hlen, "%s%s@%" PRId32,
                     rs->hlen ? "," : "", what, idx);
    if (n > 0 && (size_t)n < sizeof(rs->history) - rs->hlen)
        rs->hlen += (size_t)n;
    rs->attempts = info->attempt;
    copy_str(rs->endpoint, sizeof(rs->endpoint), info->upstream_host);
    if (WEFT_ATTEMPT_INFO_HAS(info, n_labels)) {
        snprintf(rs->locality, sizeof(rs->locality), "%.*s/%.*s/%.*s", (int)info->region.len,
                 info->region.ptr, (int)info->zone.len, info->zone.ptr, (int)info->subzone.len,
                 info->subzone.ptr);
        rs->n_labels = info->n_labels;
        rs->flags = info->flags;
        rs->backoff_us = info->backoff_us;
    }
    weft_str lv = {"", 0};
    if (weft_attempt_endpoint_label(s, (weft_str){c->label, strlen(c->label)}, &lv) != WEFT_OK)
        lv = (weft_str){"-", 1};
    copy_str(rs->label, sizeof(rs->label), lv);

    bool want = false;
    switch (info->result) {
    case WEFT_ATTEMPT_RESPONSE:
        want = info->status >= 500 && (c->retry_on & ON_5XX);
        break;
    case WEFT_ATTEMPT_TIMEOUT:
        want = per_try && (c->retry_on & ON_5XX); /* the route timeout ends it all */
        break;
    case WEFT_ATTEMPT_RESET:
        want = (c->retry_on & ON_RESET) != 0;
        break;
    case WEFT_ATTEMPT_CONNECT_FAILURE:
    case WEFT_ATTEMPT_CONNECT_TIMEOUT:
        want = (c->retry_on & ON_CONNECT) != 0;
        break;
    default:
        break;
    }
    if (!want || info->attempt >= c->attempts)
        return;
    weft_retry_options o = {
        .size = sizeof(o),
        .delay_ms = c->backoff_ms,
        .flags = c->other_endpoint ? WEFT_RETRY_OTHER_ENDPOINT : 0,
    };
    if (weft_upstream_retry_ex(s, &o) == WEFT_OK)
        weft_stat_inc(c->st_retries, 1);
    else
        weft_stat_inc(c->st_refused, 1);
}

static void set_hdr(weft_stream *s, const char *name, const char *value) {
    weft_header_set(s, WEFT_RESPONSE_HEADERS, (weft_str){name, strlen(name)},
                    (weft_str){value, strlen(value)});
}

static weft_status rp_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    rp_stream *rs = ctx;
    if (!rs || !rs->attempts)
        return WEFT_CONTINUE;
    char v[32];
    snprintf(v, sizeof(v), "%" PRIu32, rs->attempts);
    set_hdr(s, "x-retry-attempts", v);
    set_hdr(s, "x-retry-history", rs->history);
    set_hdr(s, "x-retry-endpoint", rs->endpoint);
    set_hdr(s, "x-retry-locality", rs->locality);
    set_hdr(s, "x-retry-label", rs->label);
    snprintf(v, sizeof(v), "%" PRIu32, rs->n_labels);
    set_hdr(s, "x-retry-labels", v);
    snprintf(v, sizeof(v), "%" PRIu64, rs->backoff_us);
    set_hdr(s, "x-retry-backoff-us", v);
    snprintf(v, sizeof(v), "%" PRIu32, rs->flags);
    set_hdr(s, "x-retry-flags", v);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = rp_config_create,
    .config_destroy = rp_config_destroy,
    .stream_create = rp_stream_create,
    .stream_destroy = rp_stream_destroy,
    .on_request_headers = rp_request_headers,
    .on_upstream_attempt = rp_attempt,
    .on_response_headers = rp_response_headers,
    .on_upstream_request = rp_upstream_request,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("retry_policy", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
