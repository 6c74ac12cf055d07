/* hdr: adds one request header and one response header, counts requests.
 *
 *   config:
 *     request_header:  {name: x-a, value: "1"}
 *     response_header: {name: x-b, value: "2"}
 *
 * When the header is already there, the value is appended to it
 * ("old,new"): two hdr filters on the same header show the order the
 * chain ran in (request: YAML order; response: reverse). Stat: requests
 * (counter). A malformed config is refused on the offending node. */
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct hdr_pair {
    bool set;
    char *name, *value;
} hdr_pair;

typedef struct hdr_config {
    hdr_pair req, resp;
    int32_t st_requests;
} hdr_config;

static char *dup_str(weft_str s) {
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static bool token_ok(weft_str s) {
    if (!s.len)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static void hdr_config_destroy(void *config) {
    hdr_config *c = config;
    if (!c)
        return;
    free(c->req.name);
    free(c->req.value);
    free(c->resp.name);
    free(c->resp.value);
    free(c);
}

/* Parses {name, value} at n into p; 0, or -1 after weft_config_fail. */
static int parse_pair(const weft_config_node *n, weft_filter_setup *setup, hdr_pair *p,
                      const char *what) {
    if (!weft_config_is_map(n))
        return weft_config_fail(setup, n, what);
    for (size_t i = 0; i < weft_config_len(n); i++) {
        weft_str key;
        const weft_config_node *v = weft_config_entry(n, i, &key);
        if (!(key.len == 4 && (memcmp(key.ptr, "name", 4) == 0)) &&
            !(key.len == 5 && memcmp(key.ptr, "value", 5) == 0))
            return weft_config_fail(setup, v, "unknown key (expected name and value)");
    }
    const weft_config_node *nn = weft_config_get(n, "name"), *vn = weft_config_get(n, "value");
    weft_str name, value;
    if (!nn)
        return weft_config_fail(setup, n, "missing name");
    if (weft_config_string(nn, &name) != WEFT_OK || !token_ok(name))
        return weft_config_fail(setup, nn, "name must be a lower-case header name ([a-z0-9-]+)");
    if (!vn || weft_config_string(vn, &value) != WEFT_OK)
        return weft_config_fail(setup, vn ? vn : n, "value must be a string");
    for (size_t i = 0; i < value.len; i++)
        if ((unsigned char)value.ptr[i] < 32 || value.ptr[i] == 127)
            return weft_config_fail(setup, vn, "value has a control character");
    p->name = dup_str(name);
    p->value = dup_str(value);
    if (!p->name || !p->value)
        return weft_config_fail(setup, n, "out of memory");
    p->set = true;
    return 0;
}

static int hdr_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    if (!node || !weft_config_is_map(node))
        return weft_config_fail(setup, node,
                                "config must be a map with request_header and/or response_header");
    hdr_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    for (size_t i = 0; i < weft_config_len(node); i++) {
        weft_str key;
        const weft_config_node *v = weft_config_entry(node, i, &key);
        int rc;
        if (key.len == 14 && memcmp(key.ptr, "request_header", 14) == 0)
            rc = parse_pair(v, setup, &c->req, "request_header must be a map {name, value}");
        else if (key.len == 15 && memcmp(key.ptr, "response_header", 15) == 0)
            rc = parse_pair(v, setup, &c->resp, "response_header must be a map {name, value}");
        else
            rc = weft_config_fail(setup, v,
                                  "unknown key (expected request_header, response_header)");
        if (rc != 0) {
            hdr_config_destroy(c);
            return -1;
        }
    }
    c->st_requests = weft_stat_counter(setup, "requests", "requests seen by this hdr filter");
    *config = c;
    return 0;
}

/* Adds name: value, or appends ",value" to the first existing one. */
static void add_or_append(weft_stream *s, weft_header_map m, const hdr_pair *p) {
    weft_str name = {p->name, strlen(p->name)}, value = {p->value, strlen(p->value)}, old;
    if (weft_header_get(s, m, name, &old) != WEFT_OK) {
        weft_header_add(s, m, name, value);
        return;
    }
    size_t n = old.len + 1 + value.len;
    char *buf = malloc(n);
    if (!buf)
        return;
    memcpy(buf, old.ptr, old.len);
    buf[old.len] = ',';
    memcpy(buf + old.len + 1, value.ptr, value.len);
    weft_header_set(s, m, name, (weft_str){buf, n});
    free(buf);
}

static void *hdr_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static weft_status hdr_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    hdr_config *c = ctx;
    weft_stat_inc(c->st_requests, 1);
    if (c->req.set)
        add_or_append(s, WEFT_REQUEST_HEADERS, &c->req);
    return WEFT_CONTINUE;
}

static weft_status hdr_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    hdr_config *c = ctx;
    if (c->resp.set)
        add_or_append(s, WEFT_RESPONSE_HEADERS, &c->resp);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = hdr_config_create,
    .config_destroy = hdr_config_destroy,
    .stream_create = hdr_stream_create,
    .on_request_headers = hdr_request_headers,
    .on_response_headers = hdr_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("hdr", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
