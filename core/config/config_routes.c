/* config_routes.c: virtual hosts and their routes (matches, actions,
 * header edits) -> weft_cfg_vhost / weft_cfg_route, and their release. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static int load_kv_match(cfg_ld *L, const cy_node *n, weft_cfg_kv_match *m, bool header) {
    static const char *const keys[] = {"name",  "exact",   "prefix", "suffix",
                                       "regex", "present", "invert", NULL};
    static const char *const kinds[] = {"exact", "prefix", "suffix", "regex", "present", NULL};
    const char *what = header ? "header match" : "query match";
    char qb[96];
    if (cfg_check_map(L, n, what, keys) || cfg_req_str(L, n, "name", &m->name, what))
        return -1;
    if (header) {
        if (!cfg_is_token(m->name))
            return cfg_fail(&L->c, cfg_val(n, "name"), "invalid header name %s",
                            cfg_quote(qb, sizeof(qb), m->name));
        cfg_lower(m->name);
    } else if (!*m->name) {
        return cfg_fail(&L->c, cfg_val(n, "name"), "query parameter name must not be empty");
    }
    const char *kind;
    if (cfg_exactly_one(L, n, kinds, what, &kind))
        return -1;
    if (strcmp(kind, "present") == 0) {
        bool present = false;
        if (cfg_get_bool(L, n, "present", &present) < 0)
            return -1;
        if (!present)
            return cfg_fail(&L->c, cfg_val(n, "present"),
                            "present must be true (use invert: true to match a missing %s)",
                            header ? "header" : "parameter");
        m->match.kind = WEFT_STR_PRESENT;
    } else {
        if (cfg_get_str(L, n, kind, &m->match.value) < 0)
            return -1;
        if (!strcmp(kind, "exact"))
            m->match.kind = WEFT_STR_EXACT;
        else if (!strcmp(kind, "prefix"))
            m->match.kind = WEFT_STR_PREFIX;
        else if (!strcmp(kind, "suffix"))
            m->match.kind = WEFT_STR_SUFFIX;
        else
            m->match.kind = WEFT_STR_REGEX;
        char rmsg[128];
        if (m->match.kind == WEFT_STR_REGEX &&
            !cfg_regex_ok(m->match.value, false, rmsg, sizeof(rmsg)))
            return cfg_fail(&L->c, cfg_val(n, "regex"), "invalid regex %s: %s",
                            cfg_quote(qb, sizeof(qb), m->match.value), rmsg);
    }
    return cfg_get_bool(L, n, "invert", &m->match.invert) < 0 ? -1 : 0;
}

static int load_kv_list(cfg_ld *L, const cy_node *map, const char *key, weft_cfg_kv_match **out,
                        size_t *n_out, bool header) {
    const cy_node *seq = NULL;
    int rc = cfg_get_seq(L, map, key, &seq);
    if (rc <= 0 || seq->n == 0)
        return rc < 0 ? -1 : 0;
    *out = calloc(seq->n, sizeof(**out));
    if (!*out)
        return cfg_oom(L, seq);
    *n_out = seq->n;
    size_t i = 0;
    for (const cy_node *e = seq->first; e; e = e->next, i++)
        if (load_kv_match(L, e, &(*out)[i], header))
            return -1;
    return 0;
}

static int load_match(cfg_ld *L, const cy_node *n, weft_cfg_route *r) {
    static const char *const keys[] = {"prefix",  "path",    "regex", "case_sensitive",
                                       "methods", "headers", "query", NULL};
    static const char *const kinds[] = {"prefix", "path", "regex", NULL};
    char qb[96];
    if (cfg_check_map(L, n, "match", keys))
        return -1;
    const char *kind;
    if (cfg_exactly_one(L, n, kinds, "match", &kind))
        return -1;
    if (cfg_get_bool(L, n, "case_sensitive", &r->case_sensitive) < 0 ||
        cfg_get_str(L, n, kind, &r->path) < 0)
        return -1;
    const cy_node *pv = cfg_val(n, kind);
    if (strcmp(kind, "regex") == 0) {
        char rmsg[128];
        r->path_kind = WEFT_STR_REGEX;
        if (!cfg_regex_ok(r->path, !r->case_sensitive, rmsg, sizeof(rmsg)))
            return cfg_fail(&L->c, pv, "invalid regex %s: %s", cfg_quote(qb, sizeof(qb), r->path),
                            rmsg);
    } else {
        r->path_kind = strcmp(kind, "prefix") == 0 ? WEFT_STR_PREFIX : WEFT_STR_EXACT;
        if (!cfg_is_path(r->path))
            return cfg_fail(&L->c, pv,
                            "%s must start with \"/\" and contain only visible ASCII, got %s", kind,
                            cfg_quote(qb, sizeof(qb), r->path));
    }
    const cy_node *ms = NULL;
    int rc = cfg_get_seq(L, n, "methods", &ms);
    if (rc < 0)
        return -1;
    if (rc == 1 && ms->n) {
        r->methods = calloc(ms->n, sizeof(char *));
        if (!r->methods)
            return cfg_oom(L, ms);
        r->n_methods = ms->n;
        size_t i = 0;
        for (const cy_node *e = ms->first; e; e = e->next, i++) {
            if (cfg_scalar(L, e, "methods"))
                return -1;
            if (!cfg_is_token(e->str))
                return cfg_fail(&L->c, e, "invalid method %s", cfg_quote(qb, sizeof(qb), e->str));
            if (!(r->methods[i] = cfg_dup_str(e->str)))
                return cfg_oom(L, e);
        }
    }
    if (load_kv_list(L, n, "headers", &r->headers, &r->n_headers, true) ||
        load_kv_list(L, n, "query", &r->query, &r->n_query, false))
        return -1;
    return 0;
}

static int load_header_adds(cfg_ld *L, const cy_node *map, const char *key,
                            weft_cfg_header_value **out, size_t *n_out) {
    static const char *const keys[] = {"name", "value", "append", NULL};
    char qb[96];
    const cy_node *seq = NULL;
    int rc = cfg_get_seq(L, map, key, &seq);
    if (rc <= 0 || seq->n == 0)
        return rc < 0 ? -1 : 0;
    *out = calloc(seq->n, sizeof(**out));
    if (!*out)
        return cfg_oom(L, seq);
    *n_out = seq->n;
    size_t i = 0;
    for (const cy_node *e = seq->first; e; e = e->next, i++) {
        weft_cfg_header_value *hv = &(*out)[i];
        if (cfg_check_map(L, e, "header", keys) || cfg_req_str(L, e, "name", &hv->name, "header") ||
            cfg_req_str(L, e, "value", &hv->value, "header") ||
            cfg_get_bool(L, e, "append", &hv->append) < 0)
            return -1;
        if (!cfg_is_token(hv->name))
            return cfg_fail(&L->c, cfg_val(e, "name"), "invalid header name %s",
                            cfg_quote(qb, sizeof(qb), hv->name));
        if (!cfg_is_header_value(hv->value))
            return cfg_fail(&L->c, cfg_val(e, "value"),
                            "header value %s contains control characters",
                            cfg_quote(qb, sizeof(qb), hv->value));
        cfg_lower(hv->name);
    }
    return 0;
}

static int load_header_removes(cfg_ld *L, const cy_node *map, const char *key, char ***out,
                               size_t *n_out) {
    char qb[96];
    const cy_node *seq = NULL;
    int rc = cfg_get_seq(L, map, key, &seq);
    if (rc <= 0 || seq->n == 0)
        return rc < 0 ? -1 : 0;
    *out = calloc(seq->n, sizeof(char *));
    if (!*out)
        return cfg_oom(L, seq);
    *n_out = seq->n;
    size_t i = 0;
    for (const cy_node *e = seq->first; e; e = e->next, i++) {
        if (cfg_scalar(L, e, key))
            return -1;
        if (!cfg_is_token(e->str))
            return cfg_fail(&L->c, e, "invalid header name %s", cfg_quote(qb, sizeof(qb), e->str));
        if (!((*out)[i] = cfg_dup_str(e->str)))
            return cfg_oom(L, e);
        cfg_lower((*out)[i]);
    }
    return 0;
}

static int load_redirect(cfg_ld *L, const cy_node *n, weft_cfg_route *r) {
    static const char *const keys[] = {"scheme",         "host",          "path",
                                       "prefix_rewrite", "response_code", NULL};
    char qb[96];
    if (cfg_check_map(L, n, "redirect", keys))
        return -1;
    int rc;
    if ((rc = cfg_get_str(L, n, "scheme", &r->redirect_scheme)) < 0)
        return -1;
    if (rc == 1 && strcmp(r->redirect_scheme, "http") != 0 &&
        strcmp(r->redirect_scheme, "https") != 0)
        return cfg_fail(&L->c, cfg_val(n, "scheme"),
                        "redirect scheme must be \"http\" or \"https\", got %s",
                        cfg_quote(qb, sizeof(qb), r->redirect_scheme));
    if ((rc = cfg_get_str(L, n, "host", &r->redirect_host)) < 0)
        return -1;
    if (rc == 1 && (!*r->redirect_host || !cfg_is_name(r->redirect_host)))
        return cfg_fail(&L->c, cfg_val(n, "host"),
                        "redirect host must be non-empty visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), r->redirect_host));
    if ((rc = cfg_get_str(L, n, "path", &r->redirect_path)) < 0)
        return -1;
    if (rc == 1 && !cfg_is_path(r->redirect_path))
        return cfg_fail(&L->c, cfg_val(n, "path"),
                        "path must start with \"/\" and contain only visible ASCII, got %s",
                        cfg_quote(qb, sizeof(qb), r->redirect_path));
    if ((rc = cfg_get_str(L, n, "prefix_rewrite", &r->redirect_prefix)) < 0)
        return -1;
    if (rc == 1) {
        const cy_node *pv = cfg_val(n, "prefix_rewrite");
        if (r->redirect_path)
            return cfg_fail(&L->c, cfg_key_of(n, "prefix_rewrite"),
                            "redirect takes only one of \"path\" or \"prefix_rewrite\"");
        if (r->path_kind != WEFT_STR_PREFIX)
            return cfg_fail(&L->c, pv, "prefix_rewrite needs a \"prefix\" match");
        if (*r->redirect_prefix && !cfg_is_path(r->redirect_prefix))
            return cfg_fail(&L->c, pv,
                            "prefix_rewrite must be empty or start with \"/\" and contain only "
                            "visible ASCII, got %s",
                            cfg_quote(qb, sizeof(qb), r->redirect_prefix));
    }
    if (!r->redirect_scheme && !r->redirect_host && !r->redirect_path && !r->redirect_prefix)
        return cfg_fail(
            &L->c, n,
            "redirect needs at least one of \"scheme\", \"host\", \"path\" or \"prefix_rewrite\"");
    if (cfg_get_u16(L, n, "response_code", 0, 65535, &r->redirect_code) < 0)
        return -1;
    uint16_t c = r->redirect_code;
    if (c != 301 && c != 302 && c != 303 && c != 307 && c != 308)
        return cfg_fail(&L->c, cfg_val(n, "response_code"),
                        "redirect response_code must be 301, 302, 303, 307 or 308, got %u",
                        (unsigned)c);
    return 0;
}

static int load_direct(cfg_ld *L, const cy_node *n, weft_cfg_route *r) {
    static const char *const keys[] = {"status", "body", NULL};
    if (cfg_check_map(L, n, "direct_response", keys))
        return -1;
    int rc = cfg_get_u16(L, n, "status", 100, 599, &r->direct_status);
    if (rc == 0)
        return cfg_fail(&L->c, n, "direct_response is missing \"status\"");
    if (rc < 0)
        return -1;
    return cfg_get_str(L, n, "body", &r->direct_body) < 0 ? -1 : 0;
}

/* filter_config: {<filter yaml name>: <any node>}. Each name must be a
 * filter of the listener's `filters:`; the node itself is the filter's to
 * judge (its route_config_create, at snapshot build). */
static int load_route_filters(cfg_ld *L, const cy_node *n, const weft_cfg_listener *li,
                              weft_cfg_route *r) {
    char qb[96], qb2[96];
    const cy_node *m = cfg_val(n, "filter_config");
    if (!m)
        return 0;
    if (m->kind != CY_MAP)
        return cfg_fail(&L->c, m,
                        "filter_config must be a map of filter name to its per-route "
                        "config");
    size_t cnt = m->n / 2;
    if (!cnt)
        return 0;
    r->filter_cfgs = calloc(cnt, sizeof(*r->filter_cfgs));
    if (!r->filter_cfgs)
        return cfg_oom(L, m);
    for (const cy_node *k = m->first; k && k->next; k = k->next->next) {
        if (k->kind != CY_SCALAR)
            return cfg_fail(&L->c, k, "filter_config keys must be filter names");
        bool known = false;
        for (size_t f = 0; f < li->n_filters && !known; f++)
            known = strcmp(li->filters[f].name, k->str) == 0;
        if (!known)
            return cfg_fail(&L->c, k,
                            "filter_config names filter %s, which is not in the filters of "
                            "listener %s",
                            cfg_quote(qb, sizeof(qb), k->str),
                            cfg_quote(qb2, sizeof(qb2), li->name ? li->name : ""));
        for (size_t j = 0; j < r->n_filter_cfgs; j++)
            if (strcmp(r->filter_cfgs[j].name, k->str) == 0)
                return cfg_fail(&L->c, k, "duplicate filter_config entry %s",
                                cfg_quote(qb, sizeof(qb), k->str));
        weft_cfg_route_filter *rf = &r->filter_cfgs[r->n_filter_cfgs];
        if (!(rf->name = cfg_dup_str(k->str)))
            return cfg_oom(L, k);
        r->n_filter_cfgs++;
        rf->pos = (weft_cfg_pos){k->line, k->col};
        rf->node = cfg_is_null(k->next) ? NULL : k->next;
    }
    return 0;
}

static int load_route(cfg_ld *L, const cy_node *n, const weft_cfg_listener *li, weft_cfg_route *r) {
    static const char *const keys[] = {"name",
                                       "match",
                                       "cluster",
                                       "redirect",
                                       "direct_response",
                                       "timeout",
                                       "idle_timeout",
                                       "prefix_rewrite",
                                       "host_rewrite",
                                       "request_headers_to_add",
                                       "request_headers_to_remove",
                                       "response_headers_to_add",
                                       "response_headers_to_remove",
                                       "filter_config",
                                       NULL};
    static const char *const actions[] = {"cluster", "redirect", "direct_response", NULL};
    static const char *const upstream_only[] = {"timeout", "idle_timeout", "prefix_rewrite",
                                                "host_rewrite", NULL};
    char qb[96];
    if (cfg_check_map(L, n, "route", keys))
        return -1;
    r->pos = (weft_cfg_pos){n->line, n->col};
    r->case_sensitive = true;
    r->timeout_ms = 15000;
    r->redirect_code = 301;
    if (cfg_get_str(L, n, "name", &r->name) < 0)
        return -1;
    if (!r->name && !(r->name = cfg_dup_str("")))
        return cfg_oom(L, n);
    if (!cfg_is_name(r->name))
        return cfg_fail(&L->c, cfg_val(n, "name"),
                        "route name must be visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), r->name));
    const cy_node *m = cfg_val(n, "match");
    if (!m)
        return cfg_fail(&L->c, n, "route is missing \"match\"");
    if (load_match(L, m, r))
        return -1;
    const char *action;
    if (cfg_exactly_one(L, n, actions, "route", &action))
        return -1;
    if (strcmp(action, "cluster") == 0) {
        r->action = WEFT_ACTION_CLUSTER;
        if (cfg_get_str(L, n, "cluster", &r->cluster) < 0)
            return -1;
        if (cfg_ns_get(&L->clusters, r->cluster) < 0)
            return cfg_fail(&L->c, cfg_val(n, "cluster"), "cluster %s is not defined",
                            cfg_quote(qb, sizeof(qb), r->cluster));
    } else {
        for (size_t i = 0; upstream_only[i]; i++)
            if (cfg_val(n, upstream_only[i]))
                return cfg_fail(&L->c, cfg_key_of(n, upstream_only[i]),
                                "\"%s\" is only valid on routes with \"cluster\"",
                                upstream_only[i]);
        if (strcmp(action, "redirect") == 0) {
            r->action = WEFT_ACTION_REDIRECT;
            if (load_redirect(L, cfg_val(n, "redirect"), r))
                return -1;
        } else {
            r->action = WEFT_ACTION_DIRECT;
            if (load_direct(L, cfg_val(n, "direct_response"), r))
                return -1;
        }
    }
    if (cfg_get_duration(L, n, "timeout", 0, &r->timeout_ms) < 0 ||
        cfg_get_duration(L, n, "idle_timeout", 0, &r->idle_timeout_ms) < 0)
        return -1;
    int rc = cfg_get_str(L, n, "prefix_rewrite", &r->prefix_rewrite);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        const cy_node *pv = cfg_val(n, "prefix_rewrite");
        if (r->path_kind != WEFT_STR_PREFIX)
            return cfg_fail(&L->c, pv, "prefix_rewrite needs a \"prefix\" match");
        if (*r->prefix_rewrite && !cfg_is_path(r->prefix_rewrite))
            return cfg_fail(&L->c, pv,
                            "prefix_rewrite must be empty or start with \"/\" and contain only "
                            "visible ASCII, got %s",
                            cfg_quote(qb, sizeof(qb), r->prefix_rewrite));
    }
    rc = cfg_get_str(L, n, "host_rewrite", &r->host_rewrite);
    if (rc < 0)
        return -1;
    if (rc == 1 && (!*r->host_rewrite || !cfg_is_name(r->host_rewrite)))
        return cfg_fail(&L->c, cfg_val(n, "host_rewrite"),
                        "host_rewrite must be non-empty visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), r->host_rewrite));
    if (load_header_adds(L, n, "request_headers_to_add", &r->req_add, &r->n_req_add) ||
        load_header_removes(L, n, "request_headers_to_remove", &r->req_remove, &r->n_req_remove) ||
        load_header_adds(L, n, "response_headers_to_add", &r->resp_add, &r->n_resp_add) ||
        load_header_removes(L, n, "response_headers_to_remove", &r->resp_remove,
                            &r->n_resp_remove) ||
        load_route_filters(L, n, li, r))
        return -1;
    return 0;
}

/* ------------------------------------------------------ virtual hosts */

/* `domains` maps every domain of the listener's earlier virtual hosts to
 * its virtual host, `names` their names. */
int cfg_load_vhost(cfg_ld *L, const cy_node *n, weft_cfg_listener *li, size_t idx,
                   cfg_name_set *domains, cfg_name_set *names) {
    static const char *const keys[] = {"name", "domains", "routes", NULL};
    char qb[96], qb2[96];
    weft_cfg_vhost *vh = &li->vhosts[idx];
    if (cfg_check_map(L, n, "virtual host", keys))
        return -1;
    vh->pos = (weft_cfg_pos){n->line, n->col};
    const cy_node *ds = NULL;
    int rc = cfg_get_seq(L, n, "domains", &ds);
    if (rc < 0)
        return -1;
    if (rc == 1 && ds->n == 0)
        return cfg_fail(&L->c, ds, "domains must not be empty (use [\"*\"] to match any host)");
    vh->domains = calloc(rc == 1 ? ds->n : 1, sizeof(char *));
    if (!vh->domains)
        return cfg_oom(L, n);
    vh->n_domains = rc == 1 ? ds->n : 1;
    const cy_node *e = rc == 1 ? ds->first : NULL;
    for (size_t i = 0; i < vh->n_domains; i++, e = e ? e->next : NULL) {
        /* without "domains" the virtual host matches "*"; errors point at it */
        const cy_node *at = e ? e : n;
        if (e && cfg_scalar(L, e, "domains"))
            return -1;
        if (!(vh->domains[i] = cfg_dup_str(e ? e->str : "*")))
            return cfg_oom(L, at);
        cfg_lower(vh->domains[i]);
        if (!cfg_is_domain(vh->domains[i]))
            return cfg_fail(&L->c, at,
                            "invalid domain %s (expected a host name, \"*.suffix\" or \"*\")",
                            cfg_quote(qb, sizeof(qb), e ? e->str : vh->domains[i]));
        long owner = cfg_ns_get(domains, vh->domains[i]);
        if (owner == (long)idx)
            return cfg_fail(&L->c, at, "duplicate domain %s",
                            cfg_quote(qb, sizeof(qb), vh->domains[i]));
        if (owner >= 0)
            return cfg_fail(&L->c, at, "domain %s is already used by virtual host %s",
                            cfg_quote(qb, sizeof(qb), vh->domains[i]),
                            cfg_quote(qb2, sizeof(qb2), li->vhosts[owner].name));
        cfg_ns_put(domains, vh->domains[i], idx);
    }
    if (cfg_val(n, "name")) {
        if (cfg_req_name(L, n, &vh->name, "virtual host"))
            return -1;
    } else if (!(vh->name = cfg_dup_str(vh->domains[0]))) {
        return cfg_oom(L, n);
    }
    long prev = cfg_ns_get(names, vh->name);
    if (prev >= 0)
        return cfg_fail(&L->c, cfg_val(n, "name") ? cfg_val(n, "name") : n,
                        "duplicate virtual host name %s (first defined at %u:%u)",
                        cfg_quote(qb, sizeof(qb), vh->name), (unsigned)li->vhosts[prev].pos.line,
                        (unsigned)li->vhosts[prev].pos.col);
    cfg_ns_put(names, vh->name, idx);
    const cy_node *rs = NULL;
    rc = cfg_get_seq(L, n, "routes", &rs);
    if (rc < 0)
        return -1;
    if (rc == 1 && rs->n) {
        vh->routes = calloc(rs->n, sizeof(*vh->routes));
        if (!vh->routes)
            return cfg_oom(L, rs);
        vh->n_routes = rs->n;
        size_t i = 0;
        for (const cy_node *rn = rs->first; rn; rn = rn->next, i++)
            if (load_route(L, rn, li, &vh->routes[i]))
                return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- free */

static void free_kv(weft_cfg_kv_match *m, size_t n) {
    for (size_t i = 0; m && i < n; i++) {
        free(m[i].name);
        free(m[i].match.value);
    }
    free(m);
}

static void free_hv(weft_cfg_header_value *h, size_t n) {
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

static void free_route(weft_cfg_route *r) {
    free(r->name);
    free(r->path);
    cfg_free_strv(r->methods, r->n_methods);
    free_kv(r->headers, r->n_headers);
    free_kv(r->query, r->n_query);
    free(r->cluster);
    free(r->prefix_rewrite);
    free(r->host_rewrite);
    free(r->redirect_scheme);
    free(r->redirect_host);
    free(r->redirect_path);
    free(r->redirect_prefix);
    free(r->direct_body);
    free_hv(r->req_add, r->n_req_add);
    cfg_free_strv(r->req_remove, r->n_req_remove);
    free_hv(r->resp_add, r->n_resp_add);
    cfg_free_strv(r->resp_remove, r->n_resp_remove);
    for (size_t i = 0; r->filter_cfgs && i < r->n_filter_cfgs; i++)
        free(r->filter_cfgs[i].name);
    free(r->filter_cfgs);
}

void cfg_free_vhost(weft_cfg_vhost *vh) {
    for (size_t r = 0; vh->routes && r < vh->n_routes; r++)
        free_route(&vh->routes[r]);
    free(vh->routes);
    cfg_free_strv(vh->domains, vh->n_domains);
    free(vh->name);
}
