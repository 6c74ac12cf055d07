/* config_dump.c: the effective config as YAML, every default explicit.
 * Strings are always double-quoted and escaped (pure ASCII output), so the
 * dump loads back to an equal config, secrets aside: the admin token,
 * credential header values, filter config values tagged !secret and
 * values of keys named like *token*, *secret*, *password*, *private_key*
 * print as "[redacted]". */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

/* What a secret prints as (see weft_config_dump in config.h). */
#define REDACTED "[redacted]"

typedef struct dw {
    FILE *f;
    bool item; /* the next line starts a list item ("- ") */
} dw;

static void lead(dw *d, int indent) {
    if (d->item) {
        fprintf(d->f, "%*s- ", indent - 2, "");
        d->item = false;
    } else {
        fprintf(d->f, "%*s", indent, "");
    }
}

/* Length of the UTF-8 sequence at p and its code point; 0 if invalid. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp) {
    size_t n;
    uint32_t c;
    if (p[0] < 0xC2)
        return 0;
    if (p[0] < 0xE0) {
        n = 2;
        c = p[0] & 0x1F;
    } else if (p[0] < 0xF0) {
        n = 3;
        c = p[0] & 0x0F;
    } else if (p[0] < 0xF5) {
        n = 4;
        c = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch == '\n') {
            fputs("\\n", f);
        } else if (ch == '\t') {
            fputs("\\t", f);
        } else if (ch == '\r') {
            fputs("\\r", f);
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(f, "\\x%02x", ch);
        } else if (ch < 0x80) {
            fputc(ch, f);
        } else {
            uint32_t cp;
            size_t n = utf8_decode(p, &cp);
            if (n == 0) {
                fprintf(f, "\\x%02x", ch);
            } else {
                if (cp <= 0xFFFF)
                    fprintf(f, "\\u%04" PRIX32, cp);
                else
                    fprintf(f, "\\U%08" PRIX32, cp);
                p += n;
                continue;
            }
        }
        p++;
    }
    fputc('"', f);
}

static void kv_str(dw *d, int indent, const char *key, const char *v) {
    lead(d, indent);
    fprintf(d->f, "%s: ", key);
    put_str(d->f, v);
    fputc('\n', d->f);
}

static void kv_u64(dw *d, int indent, const char *key, uint64_t v) {
    lead(d, indent);
    fprintf(d->f, "%s: %" PRIu64 "\n", key, v);
}

static void kv_ms(dw *d, int indent, const char *key, uint64_t ms) {
    lead(d, indent);
    fprintf(d->f, "%s: %" PRIu64 "ms\n", key, ms);
}

static void kv_bool(dw *d, int indent, const char *key, bool v) {
    lead(d, indent);
    fprintf(d->f, "%s: %s\n", key, v ? "true" : "false");
}

/* "key:" opening a nested block; "key: []" when empty. */
static bool open_list(dw *d, int indent, const char *key, size_t n) {
    lead(d, indent);
    fprintf(d->f, n ? "%s:\n" : "%s: []\n", key);
    return n > 0;
}

static void open_map(dw *d, int indent, const char *key) {
    lead(d, indent);
    fprintf(d->f, "%s:\n", key);
}

static void str_list(dw *d, int indent, const char *key, char **v, size_t n) {
    if (!open_list(d, indent, key, n))
        return;
    for (size_t i = 0; i < n; i++) {
        fprintf(d->f, "%*s- ", indent + 2, "");
        put_str(d->f, v[i]);
        fputc('\n', d->f);
    }
}

static const char *kind_key(weft_str_match_kind k) {
    switch (k) {
    case WEFT_STR_EXACT:
        return "exact";
    case WEFT_STR_PREFIX:
        return "prefix";
    case WEFT_STR_SUFFIX:
        return "suffix";
    case WEFT_STR_REGEX:
        return "regex";
    case WEFT_STR_PRESENT:
        return "present";
    }
    return "exact";
}

static void kv_matches(dw *d, int indent, const char *key, const weft_cfg_kv_match *m, size_t n) {
    if (!open_list(d, indent, key, n))
        return;
    for (size_t i = 0; i < n; i++) {
        d->item = true;
        kv_str(d, indent + 4, "name", m[i].name);
        if (m[i].match.kind == WEFT_STR_PRESENT)
            kv_bool(d, indent + 4, "present", true);
        else
            kv_str(d, indent + 4, kind_key(m[i].match.kind),
                   m[i].match.value ? m[i].match.value : "");
        kv_bool(d, indent + 4, "invert", m[i].match.invert);
    }
}

/* Keys whose values are secrets whatever their tag: the name contains
 * one of these, in any case. */
static bool secret_key(const char *k) {
    static const char *const words[] = {"token", "secret", "password", "private_key", NULL};
    for (size_t i = 0; words[i]; i++)
        if (strcasestr(k, words[i]))
            return true;
    return false;
}

/* Header values that carry credentials. */
static bool secret_header(const char *name) {
    return strcasecmp(name, "authorization") == 0 || strcasecmp(name, "proxy-authorization") == 0 ||
           strcasecmp(name, "cookie") == 0 || secret_key(name);
}

static void header_adds(dw *d, int indent, const char *key, const weft_cfg_header_value *h,
                        size_t n) {
    if (!open_list(d, indent, key, n))
        return;
    for (size_t i = 0; i < n; i++) {
        d->item = true;
        kv_str(d, indent + 4, "name", h[i].name);
        kv_str(d, indent + 4, "value",
               secret_header(h[i].name) ? REDACTED
               : h[i].value             ? h[i].value
                                        : "");
        kv_bool(d, indent + 4, "append", h[i].append);
    }
}

static void put_node(FILE *f, const cy_node *n, int depth);

static void dump_route(dw *d, int indent, const weft_cfg_route *r) {
    kv_str(d, indent, "name", r->name ? r->name : "");
    open_map(d, indent, "match");
    const char *pk = r->path_kind == WEFT_STR_REGEX    ? "regex"
                     : r->path_kind == WEFT_STR_PREFIX ? "prefix"
                                                       : "path";
    kv_str(d, indent + 2, pk, r->path ? r->path : "/");
    kv_bool(d, indent + 2, "case_sensitive", r->case_sensitive);
    if (r->n_methods)
        str_list(d, indent + 2, "methods", r->methods, r->n_methods);
    if (r->n_headers)
        kv_matches(d, indent + 2, "headers", r->headers, r->n_headers);
    if (r->n_query)
        kv_matches(d, indent + 2, "query", r->query, r->n_query);
    switch (r->action) {
    case WEFT_ACTION_CLUSTER:
        kv_str(d, indent, "cluster", r->cluster ? r->cluster : "");
        kv_ms(d, indent, "timeout", r->timeout_ms);
        kv_ms(d, indent, "idle_timeout", r->idle_timeout_ms);
        if (r->prefix_rewrite)
            kv_str(d, indent, "prefix_rewrite", r->prefix_rewrite);
        if (r->host_rewrite)
            kv_str(d, indent, "host_rewrite", r->host_rewrite);
        break;
    case WEFT_ACTION_REDIRECT:
        open_map(d, indent, "redirect");
        if (r->redirect_scheme)
            kv_str(d, indent + 2, "scheme", r->redirect_scheme);
        if (r->redirect_host)
            kv_str(d, indent + 2, "host", r->redirect_host);
        if (r->redirect_path)
            kv_str(d, indent + 2, "path", r->redirect_path);
        if (r->redirect_prefix)
            kv_str(d, indent + 2, "prefix_rewrite", r->redirect_prefix);
        kv_u64(d, indent + 2, "response_code", r->redirect_code);
        break;
    case WEFT_ACTION_DIRECT:
        open_map(d, indent, "direct_response");
        kv_u64(d, indent + 2, "status", r->direct_status);
        if (r->direct_body)
            kv_str(d, indent + 2, "body", r->direct_body);
        break;
    }
    if (r->n_req_add)
        header_adds(d, indent, "request_headers_to_add", r->req_add, r->n_req_add);
    if (r->n_req_remove)
        str_list(d, indent, "request_headers_to_remove", r->req_remove, r->n_req_remove);
    if (r->n_resp_add)
        header_adds(d, indent, "response_headers_to_add", r->resp_add, r->n_resp_add);
    if (r->n_resp_remove)
        str_list(d, indent, "response_headers_to_remove", r->resp_remove, r->n_resp_remove);
    if (r->n_filter_cfgs) {
        open_map(d, indent, "filter_config");
        for (size_t i = 0; i < r->n_filter_cfgs; i++) {
            lead(d, indent + 2);
            put_str(d->f, r->filter_cfgs[i].name);
            fputs(": ", d->f);
            put_node(d->f, r->filter_cfgs[i].node, 0);
            fputc('\n', d->f);
        }
    }
}

/* A filter's config node, in flow style (every scalar quoted: filters
 * read scalars through the SDK accessors, which do not depend on style).
 * A node tagged !secret, or the value of a secret-named key, prints as
 * "[redacted]" whole. */
static void put_node(FILE *f, const cy_node *n, int depth) {
    if (!n || depth > WEFT_CFG_MAX_DEPTH) {
        fputs("null", f);
        return;
    }
    if (n->secret) {
        put_str(f, REDACTED);
        return;
    }
    if (n->kind == CY_SCALAR) {
        put_str(f, n->str ? n->str : "");
        return;
    }
    bool map = n->kind == CY_MAP;
    fputc(map ? '{' : '[', f);
    for (const cy_node *c = n->first; c; c = c->next) {
        if (c != n->first)
            fputs(", ", f);
        put_node(f, c, depth + 1);
        if (map && c->next) {
            fputs(": ", f);
            bool hide = c->kind == CY_SCALAR && c->str && secret_key(c->str);
            c = c->next;
            if (hide)
                put_str(f, REDACTED);
            else
                put_node(f, c, depth + 1);
        }
    }
    fputc(map ? '}' : ']', f);
}

static void dump_filter_list(dw *d, int indent, const char *key, const weft_cfg_filter *fls,
                             size_t n) {
    if (!n || !open_list(d, indent, key, n))
        return;
    for (size_t i = 0; i < n; i++) {
        const weft_cfg_filter *fl = &fls[i];
        d->item = true;
        kv_str(d, indent + 4, "name", fl->name);
        if (fl->path)
            kv_str(d, indent + 4, "path", fl->path);
        if (fl->node) {
            lead(d, indent + 4);
            fputs("config: ", d->f);
            put_node(d->f, fl->node, 0);
            fputc('\n', d->f);
        }
    }
}

static void dump_listener(dw *d, int indent, const weft_cfg_listener *li) {
    const weft_cfg_limits *l = &li->limits;
    kv_str(d, indent, "name", li->name);
    kv_str(d, indent, "address", li->address);
    kv_u64(d, indent, "port", li->port);
    open_map(d, indent, "limits");
    kv_u64(d, indent + 2, "max_header_bytes", l->max_header_bytes);
    kv_u64(d, indent + 2, "max_headers", l->max_headers);
    kv_u64(d, indent + 2, "max_uri_length", l->max_uri_len);
    kv_u64(d, indent + 2, "max_body_bytes", l->max_body_bytes);
    kv_ms(d, indent + 2, "headers_timeout", l->headers_timeout_ms);
    kv_ms(d, indent + 2, "idle_timeout", l->idle_timeout_ms);
    kv_ms(d, indent + 2, "stream_idle_timeout", l->stream_idle_timeout_ms);
    kv_u64(d, indent + 2, "max_connections", l->max_connections);
    kv_u64(d, indent + 2, "buffer_high_watermark", l->buffer_high_watermark);
    kv_u64(d, indent + 2, "filter_arena_bytes", l->filter_arena_bytes);
    kv_u64(d, indent + 2, "filter_metadata_entries", l->filter_metadata_entries);
    kv_u64(d, indent + 2, "filter_timers", l->filter_timers);
    kv_u64(d, indent + 2, "filter_callouts", l->filter_callouts);
    open_map(d, indent, "http2");
    kv_u64(d, indent + 2, "max_concurrent_streams", li->h2.max_concurrent_streams);
    kv_u64(d, indent + 2, "initial_window_size", li->h2.initial_window_size);
    kv_u64(d, indent + 2, "max_frame_size", li->h2.max_frame_size);
    kv_u64(d, indent + 2, "max_header_list_size", li->h2.max_header_list_size);
    if (li->is_tcp) {
        open_map(d, indent, "tcp_proxy");
        kv_str(d, indent + 2, "cluster", li->tcp_cluster ? li->tcp_cluster : "");
        kv_ms(d, indent + 2, "idle_timeout", li->tcp_idle_timeout_ms);
        kv_u64(d, indent + 2, "max_connect_attempts", li->tcp_connect_attempts);
        return;
    }
    static const char *const slashes[] = {"keep", "reject", "unescape", "unescape_and_redirect"};
    kv_bool(d, indent, "normalize_path", li->normalize_path);
    kv_bool(d, indent, "merge_slashes", li->merge_slashes);
    kv_str(d, indent, "escaped_slashes", slashes[li->escaped_slashes & 3]);
    kv_bool(d, indent, "preserve_external_request_id", li->preserve_external_request_id);
    dump_filter_list(d, indent, "filters", li->filters, li->n_filters);
    if (!open_list(d, indent, "virtual_hosts", li->n_vhosts))
        return;
    for (size_t v = 0; v < li->n_vhosts; v++) {
        const weft_cfg_vhost *vh = &li->vhosts[v];
        int vi = indent + 4;
        d->item = true;
        kv_str(d, vi, "name", vh->name);
        str_list(d, vi, "domains", vh->domains, vh->n_domains);
        if (!open_list(d, vi, "routes", vh->n_routes))
            continue;
        for (size_t r = 0; r < vh->n_routes; r++) {
            d->item = true;
            dump_route(d, vi + 4, &vh->routes[r]);
        }
    }
}

static const char *lb_name(weft_lb_policy lb) {
    switch (lb) {
    case WEFT_LB_ROUND_ROBIN:
        return "round_robin";
    case WEFT_LB_LEAST_REQUEST:
        return "least_request";
    case WEFT_LB_RANDOM:
        return "random";
    case WEFT_LB_RING_HASH:
        return "ring_hash";
    case WEFT_LB_PEAK_EWMA:
        return "peak_ewma";
    }
    return "round_robin";
}

static void dump_endpoint_meta(dw *d, int indent, const weft_cfg_endpoint *ep) {
    const char *parts[3] = {ep->region, ep->zone, ep->subzone};
    static const char *const names[3] = {"region", "zone", "subzone"};
    bool any = false;
    for (int i = 0; i < 3; i++)
        any |= parts[i] && *parts[i];
    if (any) {
        open_map(d, indent, "locality");
        for (int i = 0; i < 3; i++)
            if (parts[i] && *parts[i])
                kv_str(d, indent + 2, names[i], parts[i]);
    }
    if (ep->n_labels) {
        open_map(d, indent, "labels");
        for (size_t i = 0; i < ep->n_labels; i++) {
            fprintf(d->f, "%*s", indent + 2, "");
            put_str(d->f, ep->labels[i].key);
            fputs(": ", d->f);
            put_str(d->f, ep->labels[i].value);
            fputc('\n', d->f);
        }
    }
}

static void dump_cluster(dw *d, int indent, const weft_cfg_cluster *cl) {
    kv_str(d, indent, "name", cl->name);
    if (cl->protocol != WEFT_PROTO_HTTP1)
        kv_str(d, indent, "protocol", cl->protocol == WEFT_PROTO_HTTP2 ? "http2" : "auto");
    if (cl->sni)
        kv_str(d, indent, "sni", cl->sni);
    dump_filter_list(d, indent, "transport_filters", cl->transport_filters,
                     cl->n_transport_filters);
    if (open_list(d, indent, "endpoints", cl->n_endpoints)) {
        for (size_t e = 0; e < cl->n_endpoints; e++) {
            d->item = true;
            kv_str(d, indent + 4, "address", cl->endpoints[e].address);
            kv_u64(d, indent + 4, "port", cl->endpoints[e].port);
            kv_u64(d, indent + 4, "weight", cl->endpoints[e].weight);
            dump_endpoint_meta(d, indent + 4, &cl->endpoints[e]);
        }
    }
    kv_ms(d, indent, "dns_refresh", cl->dns_refresh_ms);
    kv_str(d, indent, "lb_policy", lb_name(cl->lb));
    if (cl->lb == WEFT_LB_RING_HASH) {
        open_map(d, indent, "ring_hash");
        kv_str(d, indent + 2, "hash_on",
               cl->hash_on == WEFT_HASH_HEADER   ? "header"
               : cl->hash_on == WEFT_HASH_COOKIE ? "cookie"
                                                 : "source_ip");
        if (cl->hash_on != WEFT_HASH_SOURCE_IP)
            kv_str(d, indent + 2, "name", cl->hash_key ? cl->hash_key : "");
        kv_u64(d, indent + 2, "ring_size", cl->ring_size);
    }
    kv_ms(d, indent, "connect_timeout", cl->connect_timeout_ms);
    kv_u64(d, indent, "connect_attempts", cl->connect_attempts);
    kv_ms(d, indent, "connect_failure_avoid", cl->connect_failure_avoid_ms);
    kv_str(d, indent, "reset_retry",
           cl->reset_retry_unprocessed_only ? "unprocessed" : "idempotent");
    kv_u64(d, indent, "max_idle_per_endpoint", cl->max_idle_per_endpoint);
    kv_ms(d, indent, "pool_idle_timeout", cl->pool_idle_timeout_ms);
    kv_u64(d, indent, "max_requests_per_connection", cl->max_requests_per_connection);
    if (cl->health.enabled) {
        const weft_cfg_health_check *h = &cl->health;
        open_map(d, indent, "health_check");
        kv_str(d, indent + 2, "path", h->path ? h->path : "/healthz");
        kv_str(d, indent + 2, "host", h->host ? h->host : cl->name);
        kv_ms(d, indent + 2, "interval", h->interval_ms);
        kv_ms(d, indent + 2, "timeout", h->timeout_ms);
        kv_u64(d, indent + 2, "healthy_threshold", h->healthy_threshold);
        kv_u64(d, indent + 2, "unhealthy_threshold", h->unhealthy_threshold);
        open_map(d, indent + 2, "expected_statuses");
        kv_u64(d, indent + 4, "min", h->expected_min);
        kv_u64(d, indent + 4, "max", h->expected_max);
    }
}

int weft_config_dump(const weft_config *cfg, FILE *out) {
    if (!cfg || !out)
        return -1;
    dw d = {out, false};
    fputs("# weft effective configuration", out);
    if (cfg->source) {
        fputs(" (source: ", out);
        put_str(out, cfg->source);
        fputc(')', out);
    }
    fputc('\n', out);
    kv_u64(&d, 0, "workers", cfg->workers);
    kv_ms(&d, 0, "drain_timeout", cfg->drain_timeout_ms);
    open_map(&d, 0, "callouts");
    kv_u64(&d, 2, "max_per_worker", cfg->callouts_max_per_worker);
    kv_u64(&d, 2, "max_response_body", cfg->callouts_max_response_body);
    open_map(&d, 0, "admin");
    kv_str(&d, 2, "address", cfg->admin.address ? cfg->admin.address : "127.0.0.1");
    kv_u64(&d, 2, "port", cfg->admin.port);
    if (cfg->admin.token)
        kv_str(&d, 2, "token", REDACTED);
    kv_u64(&d, 2, "max_header_bytes", cfg->admin.max_header_bytes);
    kv_u64(&d, 2, "max_body_bytes", cfg->admin.max_body_bytes);
    kv_ms(&d, 2, "request_timeout", cfg->admin.request_timeout_ms);
    kv_u64(&d, 2, "max_connections", cfg->admin.max_connections);
    if (cfg->access_log.path) {
        open_map(&d, 0, "access_log");
        kv_str(&d, 2, "path", cfg->access_log.path);
    }
    if (cfg->dns.n_resolvers || cfg->dns.query_timeout_ms || cfg->dns.query_attempts)
        open_map(&d, 0, "dns"); /* absent = the system's resolver, as the default */
    if (cfg->dns.n_resolvers && open_list(&d, 2, "resolvers", cfg->dns.n_resolvers))
        for (size_t i = 0; i < cfg->dns.n_resolvers; i++) {
            const weft_cfg_dns_resolver *r = &cfg->dns.resolvers[i];
            bool v6 = strchr(r->address, ':') != NULL;
            fprintf(d.f, "    - \"%s%s%s:%u\"\n", v6 ? "[" : "", r->address, v6 ? "]" : "",
                    (unsigned)r->port);
        }
    if (cfg->dns.query_timeout_ms)
        kv_ms(&d, 2, "query_timeout", cfg->dns.query_timeout_ms);
    if (cfg->dns.query_attempts)
        kv_u64(&d, 2, "query_attempts", cfg->dns.query_attempts);
    if (cfg->n_filter_paths)
        str_list(&d, 0, "filter_path", cfg->filter_paths, cfg->n_filter_paths);
    if (cfg->allow_filter_paths)
        fputs("allow_filter_paths: true\n", d.f);
    if (open_list(&d, 0, "clusters", cfg->n_clusters)) {
        for (size_t i = 0; i < cfg->n_clusters; i++) {
            d.item = true;
            dump_cluster(&d, 4, &cfg->clusters[i]);
        }
    }
    if (open_list(&d, 0, "listeners", cfg->n_listeners)) {
        for (size_t i = 0; i < cfg->n_listeners; i++) {
            d.item = true;
            dump_listener(&d, 4, &cfg->listeners[i]);
        }
    }
    if (fflush(out) != 0 || ferror(out))
        return -1;
    return 0;
}
