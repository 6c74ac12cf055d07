/* config_listeners.c: the "listeners" list -> weft_cfg_listener (address,
 * limits, filters, HTTP/2 settings, tcp_proxy; virtual hosts are read by
 * config_routes.c), and its release. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

void weft_cfg_limits_default(weft_cfg_limits *l) {
    l->max_header_bytes = 60 * 1024;
    l->max_headers = 100;
    l->max_uri_len = 8 * 1024;
    l->max_body_bytes = 0;
    l->headers_timeout_ms = 10000;
    l->idle_timeout_ms = 60000;
    l->stream_idle_timeout_ms = 300000;
    l->max_connections = 0;
    l->buffer_high_watermark = 1024 * 1024;
    l->filter_arena_bytes = 1024 * 1024;
    l->filter_metadata_entries = 64;
    l->filter_timers = 16;
    l->filter_callouts = 8;
}

/* ---------------------------------------------------------- listeners */

static int load_limits(cfg_ld *L, const cy_node *n, weft_cfg_limits *l) {
    static const char *const keys[] = {"max_header_bytes",        "max_headers",
                                       "max_uri_length",          "max_body_bytes",
                                       "headers_timeout",         "idle_timeout",
                                       "stream_idle_timeout",     "max_connections",
                                       "buffer_high_watermark",   "filter_arena_bytes",
                                       "filter_metadata_entries", "filter_timers",
                                       "filter_callouts",         NULL};
    if (cfg_check_map(L, n, "limits", keys))
        return -1;
    if (cfg_get_size32(L, n, "max_header_bytes", 1, &l->max_header_bytes) < 0 ||
        cfg_get_u32(L, n, "max_headers", 1, 100000, &l->max_headers) < 0 ||
        cfg_get_size32(L, n, "max_uri_length", 1, &l->max_uri_len) < 0 ||
        cfg_get_size(L, n, "max_body_bytes", 0, UINT64_MAX, &l->max_body_bytes) < 0 ||
        cfg_get_duration(L, n, "headers_timeout", 0, &l->headers_timeout_ms) < 0 ||
        cfg_get_duration(L, n, "idle_timeout", 0, &l->idle_timeout_ms) < 0 ||
        cfg_get_duration(L, n, "stream_idle_timeout", 0, &l->stream_idle_timeout_ms) < 0 ||
        cfg_get_u32(L, n, "max_connections", 0, UINT32_MAX, &l->max_connections) < 0 ||
        cfg_get_size32(L, n, "buffer_high_watermark", 1, &l->buffer_high_watermark) < 0 ||
        cfg_get_size(L, n, "filter_arena_bytes", 0, 1ull << 32, &l->filter_arena_bytes) < 0 ||
        cfg_get_u32(L, n, "filter_metadata_entries", 0, 100000, &l->filter_metadata_entries) < 0 ||
        cfg_get_u32(L, n, "filter_timers", 0, 100000, &l->filter_timers) < 0 ||
        cfg_get_u32(L, n, "filter_callouts", 0, 100000, &l->filter_callouts) < 0)
        return -1;
    return 0;
}

/* A plain name: it becomes <dir>/<name>.so, so no '/', no "..". */
static bool filter_name_ok(const char *s) {
    if (!*s || strlen(s) > 48)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* filters: [{name: authz, path: ./x.so, config: {...}}]. The config node
 * stays in the kept YAML document: the filter reads it at snapshot build
 * through the SDK accessors and reports its own errors with positions. */
int cfg_load_filter_list(cfg_ld *L, const cy_node *n, const char *key, weft_cfg_filter **out,
                         size_t *nout) {
    static const char *const keys[] = {"name", "path", "config", NULL};
    char qb[96];
    const cy_node *fs = NULL;
    int rc = cfg_get_seq(L, n, key, &fs);
    if (rc <= 0 || !fs->n)
        return rc < 0 ? -1 : 0;
    *out = calloc(fs->n, sizeof(**out));
    if (!*out)
        return cfg_oom(L, fs);
    for (const cy_node *e = fs->first; e; e = e->next) {
        weft_cfg_filter *f = &(*out)[*nout];
        if (cfg_check_map(L, e, "filter", keys))
            return -1;
        f->pos = (weft_cfg_pos){e->line, e->col};
        (*nout)++;
        if (cfg_req_name(L, e, &f->name, "filter"))
            return -1;
        if (!filter_name_ok(f->name))
            return cfg_fail(&L->c, cfg_val(e, "name"),
                            "filter name %s must be 1-48 of [a-z0-9_-] (a name, not a path: "
                            "<name>.so is looked up in filter_path)",
                            cfg_quote(qb, sizeof(qb), f->name));
        if (cfg_get_str(L, e, "path", &f->path) < 0)
            return -1;
        if (f->path && L->cfg->origin == WEFT_CONFIG_PUSHED)
            return cfg_fail(&L->c, cfg_val(e, "path"),
                            "filter %s: a pushed config cannot load a filter by path (name it; "
                            "it is found in the proxy's filter directories)",
                            cfg_quote(qb, sizeof(qb), f->name));
        if (f->path && !L->cfg->allow_filter_paths)
            return cfg_fail(&L->c, cfg_val(e, "path"),
                            "filter %s: loading by path needs allow_filter_paths: true at the top "
                            "level; or drop path and put %s.so in a filter_path directory",
                            cfg_quote(qb, sizeof(qb), f->name), f->name);
        const cy_node *c = cfg_val(e, "config");
        f->node = c && !cfg_is_null(c) ? c : NULL;
    }
    return 0;
}

static int load_h2(cfg_ld *L, const cy_node *n, weft_cfg_listener *li) {
    static const char *const keys[] = {"max_concurrent_streams", "initial_window_size",
                                       "max_frame_size", "max_header_list_size", NULL};
    weft_cfg_h2 *h = &li->h2;
    h->max_concurrent_streams = 100;
    h->initial_window_size = 1024 * 1024;
    h->max_frame_size = 16384;
    h->max_header_list_size = li->limits.max_header_bytes;
    const cy_node *c = cfg_val(n, "http2");
    if (!c || cfg_is_null(c))
        return 0;
    if (cfg_check_map(L, c, "http2", keys))
        return -1;
    /* RFC 9113 6.5.2 bounds: window <= 2^31-1, frame size 2^14..2^24-1. */
    if (cfg_get_u32(L, c, "max_concurrent_streams", 1, 1000000, &h->max_concurrent_streams) < 0 ||
        cfg_get_u32(L, c, "initial_window_size", 1, 2147483647u, &h->initial_window_size) < 0 ||
        cfg_get_u32(L, c, "max_frame_size", 16384, 16777215, &h->max_frame_size) < 0 ||
        cfg_get_u32(L, c, "max_header_list_size", 1024, 16u * 1024 * 1024,
                    &h->max_header_list_size) < 0)
        return -1;
    return 0;
}

/* tcp_proxy: {cluster: NAME, idle_timeout: 1h, max_connect_attempts: 1},
 * instead of virtual_hosts and filters (an opaque TCP listener has no
 * HTTP codec for either to act on). */
static int load_tcp_proxy(cfg_ld *L, const cy_node *listener, const cy_node *n,
                          weft_cfg_listener *li) {
    static const char *const keys[] = {"cluster", "idle_timeout", "max_connect_attempts", NULL};
    /* filters: transport filters only (checked when the chain is built) */
    static const char *const http_only[] = {"virtual_hosts",
                                            "normalize_path",
                                            "merge_slashes",
                                            "escaped_slashes",
                                            "preserve_external_request_id",
                                            NULL};
    char qb[96];
    for (size_t i = 0; http_only[i]; i++) {
        const cy_node *k = cfg_key_of(listener, http_only[i]);
        if (k)
            return cfg_fail(&L->c, k,
                            "a tcp_proxy listener takes no \"%s\" (they apply to HTTP listeners)",
                            http_only[i]);
    }
    if (cfg_check_map(L, n, "tcp_proxy", keys))
        return -1;
    li->is_tcp = true;
    li->tcp_pos = (weft_cfg_pos){n->line, n->col};
    li->tcp_idle_timeout_ms = 3600 * 1000;
    li->tcp_connect_attempts = 1;
    if (cfg_req_str(L, n, "cluster", &li->tcp_cluster, "tcp_proxy"))
        return -1;
    if (cfg_ns_get(&L->clusters, li->tcp_cluster) < 0)
        return cfg_fail(&L->c, cfg_val(n, "cluster"), "tcp_proxy names unknown cluster %s",
                        cfg_quote(qb, sizeof(qb), li->tcp_cluster));
    if (cfg_get_duration(L, n, "idle_timeout", 0, &li->tcp_idle_timeout_ms) < 0 ||
        cfg_get_u32(L, n, "max_connect_attempts", 1, 100, &li->tcp_connect_attempts) < 0)
        return -1;
    return 0;
}

/* normalize_path, merge_slashes, escaped_slashes,
 * preserve_external_request_id (defaults as Envoy's). */
static int load_request_paths(cfg_ld *L, const cy_node *n, weft_cfg_listener *li) {
    static const char *const actions[] = {"keep", "reject", "unescape", "unescape_and_redirect",
                                          NULL};
    char qb[96];
    li->normalize_path = true;
    if (cfg_get_bool(L, n, "normalize_path", &li->normalize_path) < 0 ||
        cfg_get_bool(L, n, "merge_slashes", &li->merge_slashes) < 0 ||
        cfg_get_bool(L, n, "preserve_external_request_id", &li->preserve_external_request_id) < 0)
        return -1;
    const cy_node *v = cfg_val(n, "escaped_slashes");
    if (!v)
        return 0;
    for (size_t i = 0; v->kind == CY_SCALAR && actions[i]; i++)
        if (strcmp(v->str, actions[i]) == 0) {
            li->escaped_slashes = (weft_cfg_escaped_slashes)i;
            return 0;
        }
    return cfg_fail(&L->c, v,
                    "escaped_slashes must be keep, reject, unescape or unescape_and_redirect, "
                    "got %s",
                    v->kind == CY_SCALAR ? cfg_quote(qb, sizeof(qb), v->str) : "a collection");
}

int cfg_load_listener(cfg_ld *L, const cy_node *n, size_t idx) {
    static const char *const keys[] = {"name",
                                       "address",
                                       "port",
                                       "limits",
                                       "virtual_hosts",
                                       "filters",
                                       "http2",
                                       "tcp_proxy",
                                       "normalize_path",
                                       "merge_slashes",
                                       "escaped_slashes",
                                       "preserve_external_request_id",
                                       NULL};
    char qb[96];
    weft_config *cfg = L->cfg;
    weft_cfg_listener *li = &cfg->listeners[idx];
    if (cfg_check_map(L, n, "listener", keys))
        return -1;
    li->pos = (weft_cfg_pos){n->line, n->col};
    weft_cfg_limits_default(&li->limits);
    if (cfg_req_name(L, n, &li->name, "listener"))
        return -1;
    long prev = cfg_ns_get(&L->listeners, li->name);
    if (prev >= 0)
        return cfg_fail(
            &L->c, cfg_val(n, "name"), "duplicate listener name %s (first defined at %u:%u)",
            cfg_quote(qb, sizeof(qb), li->name), (unsigned)cfg->listeners[prev].pos.line,
            (unsigned)cfg->listeners[prev].pos.col);
    cfg_ns_put(&L->listeners, li->name, idx);
    int rc = cfg_get_str(L, n, "address", &li->address);
    if (rc < 0)
        return -1;
    if (rc == 0 && !(li->address = cfg_dup_str("0.0.0.0")))
        return cfg_oom(L, n);
    if (!cfg_is_ip_literal(li->address))
        return cfg_fail(&L->c, cfg_val(n, "address"),
                        "listener address must be an IP address, got %s",
                        cfg_quote(qb, sizeof(qb), li->address));
    rc = cfg_get_u16(L, n, "port", 1, 65535, &li->port);
    if (rc == 0)
        return cfg_fail(&L->c, n, "listener is missing \"port\"");
    if (rc < 0)
        return -1;
    const cy_node *pv = cfg_val(n, "port");
    if (L->ports[li->port / 8] & (1u << (li->port % 8))) {
        for (size_t i = 0; i < idx; i++)
            if (cfg->listeners[i].port == li->port)
                return cfg_fail(&L->c, pv, "port %u is already used by listener %s",
                                (unsigned)li->port,
                                cfg_quote(qb, sizeof(qb), cfg->listeners[i].name));
    }
    L->ports[li->port / 8] |= (uint8_t)(1u << (li->port % 8));
    if (cfg->admin.port != 0 && cfg->admin.port == li->port)
        return cfg_fail(&L->c, pv, "port %u is already used by the admin server",
                        (unsigned)li->port);
    const cy_node *lim = cfg_val(n, "limits");
    if (lim && load_limits(L, lim, &li->limits))
        return -1;
    if (cfg_load_filter_list(L, n, "filters", &li->filters, &li->n_filters) || load_h2(L, n, li) ||
        load_request_paths(L, n, li))
        return -1;
    const cy_node *tp = cfg_val(n, "tcp_proxy");
    if (tp)
        return load_tcp_proxy(L, n, tp, li);
    const cy_node *vs = NULL;
    rc = cfg_get_seq(L, n, "virtual_hosts", &vs);
    if (rc < 0)
        return -1;
    if (rc == 1 && vs->n) {
        li->vhosts = calloc(vs->n, sizeof(*li->vhosts));
        if (!li->vhosts)
            return cfg_oom(L, vs);
        li->n_vhosts = vs->n;
        size_t n_domains = 0;
        for (const cy_node *e = vs->first; e; e = e->next) {
            const cy_node *ds = e->kind == CY_MAP ? cfg_val(e, "domains") : NULL;
            n_domains += ds && ds->kind == CY_SEQ ? ds->n : 1;
        }
        cfg_name_set domains = {0}, names = {0};
        rc = cfg_ns_init(&domains, n_domains) || cfg_ns_init(&names, vs->n) ? cfg_oom(L, vs) : 0;
        size_t i = 0;
        for (const cy_node *e = vs->first; e && rc == 0; e = e->next, i++)
            rc = cfg_load_vhost(L, e, li, i, &domains, &names);
        cfg_ns_free(&domains);
        cfg_ns_free(&names);
        return rc;
    }
    return 0;
}

void cfg_free_listener(weft_cfg_listener *li) {
    for (size_t v = 0; li->vhosts && v < li->n_vhosts; v++)
        cfg_free_vhost(&li->vhosts[v]);
    free(li->vhosts);
    free(li->tcp_cluster);
    free(li->name);
    free(li->address);
    for (size_t f = 0; li->filters && f < li->n_filters; f++) {
        free(li->filters[f].name);
        free(li->filters[f].path);
    }
    free(li->filters);
}
