/* config_clusters.c: the "clusters" list -> weft_cfg_cluster (endpoints,
 * load balancing, health checks, DNS), and its release. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

static int load_health(cfg_ld *L, const cy_node *n, weft_cfg_cluster *cl) {
    static const char *const keys[] = {"path",
                                       "host",
                                       "interval",
                                       "timeout",
                                       "healthy_threshold",
                                       "unhealthy_threshold",
                                       "expected_statuses",
                                       NULL};
    static const char *const range_keys[] = {"min", "max", NULL};
    char qb[96];
    weft_cfg_health_check *h = &cl->health;
    if (cfg_check_map(L, n, "health_check", keys))
        return -1;
    h->enabled = true;
    int rc = cfg_get_str(L, n, "path", &h->path);
    if (rc < 0)
        return -1;
    if (rc == 1 && !cfg_is_path(h->path))
        return cfg_fail(
            &L->c, cfg_val(n, "path"),
            "health check path must start with \"/\" and contain only visible ASCII, got %s",
            cfg_quote(qb, sizeof(qb), h->path));
    rc = cfg_get_str(L, n, "host", &h->host);
    if (rc < 0)
        return -1;
    if (rc == 1 && (!*h->host || !cfg_is_name(h->host)))
        return cfg_fail(&L->c, cfg_val(n, "host"),
                        "health check host must be non-empty visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), h->host));
    if (cfg_get_duration(L, n, "interval", 1, &h->interval_ms) < 0 ||
        cfg_get_duration(L, n, "timeout", 1, &h->timeout_ms) < 0 ||
        cfg_get_u32(L, n, "healthy_threshold", 1, 1000, &h->healthy_threshold) < 0 ||
        cfg_get_u32(L, n, "unhealthy_threshold", 1, 1000, &h->unhealthy_threshold) < 0)
        return -1;
    const cy_node *es = cfg_val(n, "expected_statuses");
    if (es) {
        if (cfg_check_map(L, es, "expected_statuses", range_keys) ||
            cfg_get_u16(L, es, "min", 100, 599, &h->expected_min) < 0 ||
            cfg_get_u16(L, es, "max", 100, 599, &h->expected_max) < 0)
            return -1;
        if (h->expected_min > h->expected_max)
            return cfg_fail(&L->c, es, "expected_statuses min (%u) is greater than max (%u)",
                            (unsigned)h->expected_min, (unsigned)h->expected_max);
    }
    return 0;
}

static int load_ring_hash(cfg_ld *L, const cy_node *n, weft_cfg_cluster *cl) {
    static const char *const keys[] = {"hash_on", "name", "ring_size", NULL};
    char qb[96];
    if (cfg_check_map(L, n, "ring_hash", keys))
        return -1;
    const cy_node *on = cfg_val(n, "hash_on");
    if (!on)
        return cfg_fail(&L->c, n, "ring_hash is missing \"hash_on\"");
    if (cfg_scalar(L, on, "hash_on"))
        return -1;
    if (strcmp(on->str, "header") == 0)
        cl->hash_on = WEFT_HASH_HEADER;
    else if (strcmp(on->str, "cookie") == 0)
        cl->hash_on = WEFT_HASH_COOKIE;
    else if (strcmp(on->str, "source_ip") == 0)
        cl->hash_on = WEFT_HASH_SOURCE_IP;
    else
        return cfg_fail(&L->c, on, "unknown hash_on %s (expected header, cookie or source_ip)",
                        cfg_quote(qb, sizeof(qb), on->str));
    if (cl->hash_on == WEFT_HASH_SOURCE_IP) {
        if (cfg_val(n, "name"))
            return cfg_fail(&L->c, cfg_key_of(n, "name"),
                            "\"name\" is not used with hash_on: source_ip");
    } else {
        if (cfg_req_str(L, n, "name", &cl->hash_key, "ring_hash"))
            return -1;
        if (!cfg_is_token(cl->hash_key))
            return cfg_fail(&L->c, cfg_val(n, "name"), "invalid %s name %s",
                            cl->hash_on == WEFT_HASH_HEADER ? "header" : "cookie",
                            cfg_quote(qb, sizeof(qb), cl->hash_key));
        if (cl->hash_on == WEFT_HASH_HEADER)
            cfg_lower(cl->hash_key);
    }
    return cfg_get_u32(L, n, "ring_size", 1, 1u << 23, &cl->ring_size) < 0 ? -1 : 0;
}

/* A locality part: visible ASCII without '/', at most
 * WEFT_CFG_MAX_LOCALITY_PART bytes; may be empty. */
static bool locality_part_ok(const char *s, size_t len) {
    if (len > WEFT_CFG_MAX_LOCALITY_PART)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '/')
            return false;
    return true;
}

static char *dup_len(const char *s, size_t len) {
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static int load_locality(cfg_ld *L, const cy_node *v, weft_cfg_endpoint *ep) {
    static const char *const keys[] = {"region", "zone", "subzone", NULL};
    char qb[96];
    char **parts[3] = {&ep->region, &ep->zone, &ep->subzone};
    if (v->kind == CY_SCALAR) {
        /* "region/zone/subzone", parts may be left off from the right. */
        const char *p = v->str;
        for (int i = 0; i < 3; i++) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            if (slash && i == 2)
                return cfg_fail(&L->c, v,
                                "locality %s has more than 3 parts (expected "
                                "region/zone/subzone)",
                                cfg_quote(qb, sizeof(qb), v->str));
            if (!locality_part_ok(p, len))
                return cfg_fail(&L->c, v,
                                "locality %s: each part must be visible ASCII without "
                                "spaces, at most %d bytes",
                                cfg_quote(qb, sizeof(qb), v->str), WEFT_CFG_MAX_LOCALITY_PART);
            free(*parts[i]);
            if (!(*parts[i] = dup_len(p, len)))
                return cfg_oom(L, v);
            if (!slash)
                break;
            p = slash + 1;
        }
        return 0;
    }
    if (v->kind != CY_MAP)
        return cfg_fail(&L->c, v,
                        "expected \"region/zone/subzone\" or a mapping for locality, got %s",
                        cfg_describe(qb, sizeof(qb), v));
    if (cfg_check_map(L, v, "locality", keys))
        return -1;
    for (int i = 0; i < 3; i++) {
        int rc = cfg_get_str(L, v, keys[i], parts[i]);
        if (rc < 0)
            return -1;
        if (rc == 1 && !locality_part_ok(*parts[i], strlen(*parts[i])))
            return cfg_fail(&L->c, cfg_val(v, keys[i]),
                            "locality %s %s must be visible ASCII without spaces or '/', at "
                            "most %d bytes",
                            keys[i], cfg_quote(qb, sizeof(qb), *parts[i]),
                            WEFT_CFG_MAX_LOCALITY_PART);
    }
    return 0;
}

/* Kubernetes label name: 1..63 of [A-Za-z0-9._-], alphanumeric at both
 * ends (empty allowed for values when allow_empty). */
static bool label_name_ok(const char *s, size_t len, bool allow_empty) {
    if (len == 0)
        return allow_empty;
    if (len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && ((i == 0 || i == len - 1) || (c != '-' && c != '_' && c != '.')))
            return false;
    }
    return true;
}

/* Kubernetes label key: [prefix/]name, prefix a DNS subdomain (<= 253). */
static bool label_key_ok(const char *k) {
    const char *slash = strchr(k, '/');
    if (!slash)
        return label_name_ok(k, strlen(k), false);
    size_t plen = (size_t)(slash - k);
    if (plen == 0 || plen > 253)
        return false;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return label_name_ok(slash + 1, strlen(slash + 1), false);
}

static int label_cmp(const void *a, const void *b) {
    return strcmp(((const weft_cfg_label *)a)->key, ((const weft_cfg_label *)b)->key);
}

static int load_labels(cfg_ld *L, const cy_node *v, weft_cfg_endpoint *ep) {
    char qb[96], qd[96];
    if (v->kind != CY_MAP)
        return cfg_fail(&L->c, v, "expected a mapping for labels, got %s",
                        cfg_describe(qb, sizeof(qb), v));
    size_t n = v->n / 2;
    if (n == 0)
        return 0;
    if (n > WEFT_CFG_MAX_LABELS)
        return cfg_fail(&L->c, v, "an endpoint has at most %d labels, got %zu", WEFT_CFG_MAX_LABELS,
                        n);
    ep->labels = calloc(n, sizeof(*ep->labels));
    if (!ep->labels)
        return cfg_oom(L, v);
    for (const cy_node *k = v->first; k && k->next; k = k->next->next) {
        const cy_node *val = k->next;
        if (!label_key_ok(k->str))
            return cfg_fail(&L->c, k,
                            "invalid label key %s (expected [prefix/]name, name 1-63 of "
                            "[A-Za-z0-9._-] starting and ending alphanumeric)",
                            cfg_quote(qb, sizeof(qb), k->str));
        for (const cy_node *e = v->first; e != k; e = e->next->next)
            if (strcmp(e->str, k->str) == 0)
                return cfg_fail(&L->c, k, "duplicate label %s", cfg_quote(qb, sizeof(qb), k->str));
        if (val->kind != CY_SCALAR)
            return cfg_fail(&L->c, val, "expected a string for label %s, got %s",
                            cfg_quote(qb, sizeof(qb), k->str), cfg_describe(qd, sizeof(qd), val));
        if (!label_name_ok(val->str, strlen(val->str), true))
            return cfg_fail(&L->c, val,
                            "invalid label value %s (at most 63 of [A-Za-z0-9._-], starting "
                            "and ending alphanumeric)",
                            cfg_quote(qb, sizeof(qb), val->str));
        weft_cfg_label *lb = &ep->labels[ep->n_labels++];
        if (!(lb->key = cfg_dup_str(k->str)) || !(lb->value = cfg_dup_str(val->str)))
            return cfg_oom(L, k);
    }
    qsort(ep->labels, ep->n_labels, sizeof(*ep->labels), label_cmp);
    return 0;
}

static int load_endpoint(cfg_ld *L, const cy_node *n, weft_cfg_endpoint *ep, bool *dns) {
    static const char *const keys[] = {"address", "port", "weight", "locality", "labels", NULL};
    char qb[96];
    if (cfg_check_map(L, n, "endpoint", keys))
        return -1;
    ep->pos = (weft_cfg_pos){n->line, n->col};
    ep->weight = 1;
    if (cfg_req_str(L, n, "address", &ep->address, "endpoint"))
        return -1;
    if (!cfg_is_ip_literal(ep->address)) {
        if (!cfg_is_hostname(ep->address))
            return cfg_fail(&L->c, cfg_val(n, "address"),
                            "endpoint address %s is neither an IP address nor a host name",
                            cfg_quote(qb, sizeof(qb), ep->address));
        *dns = true;
    }
    int rc = cfg_get_u16(L, n, "port", 1, 65535, &ep->port);
    if (rc == 0)
        return cfg_fail(&L->c, n, "endpoint is missing \"port\"");
    if (rc < 0)
        return -1;
    if (cfg_get_u32(L, n, "weight", 1, 1000, &ep->weight) < 0)
        return -1;
    const cy_node *loc = cfg_val(n, "locality");
    if (loc && load_locality(L, loc, ep))
        return -1;
    const cy_node *lbl = cfg_val(n, "labels");
    return lbl ? load_labels(L, lbl, ep) : 0;
}

int cfg_load_cluster(cfg_ld *L, const cy_node *n, size_t idx) {
    static const char *const keys[] = {"name",
                                       "endpoints",
                                       "dns_refresh",
                                       "lb_policy",
                                       "ring_hash",
                                       "connect_timeout",
                                       "connect_attempts",
                                       "connect_failure_avoid",
                                       "reset_retry",
                                       "max_idle_per_endpoint",
                                       "pool_idle_timeout",
                                       "max_requests_per_connection",
                                       "health_check",
                                       "protocol",
                                       "transport_filters",
                                       "sni",
                                       NULL};
    static const struct {
        const char *name;
        weft_lb_policy lb;
    } policies[] = {{"round_robin", WEFT_LB_ROUND_ROBIN},
                    {"least_request", WEFT_LB_LEAST_REQUEST},
                    {"random", WEFT_LB_RANDOM},
                    {"ring_hash", WEFT_LB_RING_HASH},
                    {"peak_ewma", WEFT_LB_PEAK_EWMA}};
    char qb[96];
    weft_config *cfg = L->cfg;
    weft_cfg_cluster *cl = &cfg->clusters[idx];
    if (cfg_check_map(L, n, "cluster", keys))
        return -1;
    cl->pos = (weft_cfg_pos){n->line, n->col};
    cl->dns_refresh_ms = 5000;
    cl->lb = WEFT_LB_ROUND_ROBIN;
    cl->hash_on = WEFT_HASH_SOURCE_IP;
    cl->ring_size = 1024;
    cl->connect_timeout_ms = 5000; /* Envoy's default */
    cl->connect_attempts = 2;
    cl->connect_failure_avoid_ms = 10000; /* nginx's fail_timeout */
    cl->max_idle_per_endpoint = 1024;     /* multiplexed clients need many */
    cl->pool_idle_timeout_ms = 60000;
    cl->max_requests_per_connection = 0;
    weft_cfg_health_check *h = &cl->health;
    h->interval_ms = 5000;
    h->timeout_ms = 1000;
    h->healthy_threshold = 2;
    h->unhealthy_threshold = 3;
    h->expected_min = 200;
    h->expected_max = 399;

    if (cfg_req_name(L, n, &cl->name, "cluster"))
        return -1;
    long prev = cfg_ns_get(&L->clusters, cl->name);
    if (prev >= 0)
        return cfg_fail(&L->c, cfg_val(n, "name"),
                        "duplicate cluster name %s (first defined at %u:%u)",
                        cfg_quote(qb, sizeof(qb), cl->name), (unsigned)cfg->clusters[prev].pos.line,
                        (unsigned)cfg->clusters[prev].pos.col);
    cfg_ns_put(&L->clusters, cl->name, idx);

    const cy_node *eps = NULL;
    int rc = cfg_get_seq(L, n, "endpoints", &eps);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return cfg_fail(&L->c, n, "cluster %s has no endpoints",
                        cfg_quote(qb, sizeof(qb), cl->name));
    if (eps->n) {
        cl->endpoints = calloc(eps->n, sizeof(*cl->endpoints));
        if (!cl->endpoints)
            return cfg_oom(L, eps);
        cl->n_endpoints = eps->n;
        size_t i = 0;
        for (const cy_node *e = eps->first; e; e = e->next, i++)
            if (load_endpoint(L, e, &cl->endpoints[i], &cl->uses_dns))
                return -1;
    }
    if (cfg_get_duration(L, n, "dns_refresh", 1, &cl->dns_refresh_ms) < 0)
        return -1;

    const cy_node *pn = cfg_val(n, "protocol");
    if (pn) {
        if (cfg_scalar(L, pn, "protocol"))
            return -1;
        if (strcmp(pn->str, "http1") == 0)
            cl->protocol = WEFT_PROTO_HTTP1;
        else if (strcmp(pn->str, "http2") == 0)
            cl->protocol = WEFT_PROTO_HTTP2;
        else if (strcmp(pn->str, "auto") == 0)
            cl->protocol = WEFT_PROTO_AUTO;
        else
            return cfg_fail(&L->c, pn, "unknown protocol %s (expected http1, http2 or auto)",
                            cfg_quote(qb, sizeof(qb), pn->str));
    }
    const cy_node *rr = cfg_val(n, "reset_retry");
    if (rr) {
        if (cfg_scalar(L, rr, "reset_retry"))
            return -1;
        if (strcmp(rr->str, "unprocessed") == 0)
            cl->reset_retry_unprocessed_only = true;
        else if (strcmp(rr->str, "idempotent") != 0)
            return cfg_fail(&L->c, rr,
                            "unknown reset_retry %s (expected idempotent or unprocessed)",
                            cfg_quote(qb, sizeof(qb), rr->str));
    }
    const cy_node *lbn = cfg_val(n, "lb_policy");
    if (lbn) {
        if (cfg_scalar(L, lbn, "lb_policy"))
            return -1;
        size_t i;
        for (i = 0; i < WEFT_ARRAY_LEN(policies); i++)
            if (strcmp(lbn->str, policies[i].name) == 0)
                break;
        if (i == WEFT_ARRAY_LEN(policies))
            return cfg_fail(&L->c, lbn,
                            "unknown lb_policy %s (expected round_robin, least_request, random, "
                            "ring_hash or peak_ewma)",
                            cfg_quote(qb, sizeof(qb), lbn->str));
        cl->lb = policies[i].lb;
    }
    const cy_node *rh = cfg_val(n, "ring_hash");
    if (rh) {
        if (cl->lb != WEFT_LB_RING_HASH)
            return cfg_fail(&L->c, cfg_key_of(n, "ring_hash"),
                            "\"ring_hash\" settings need lb_policy: ring_hash");
        if (load_ring_hash(L, rh, cl))
            return -1;
    } else if (cl->lb == WEFT_LB_RING_HASH) {
        return cfg_fail(&L->c, lbn,
                        "lb_policy ring_hash needs a \"ring_hash\" section with \"hash_on\"");
    }
    if (cfg_get_duration(L, n, "connect_timeout", 1, &cl->connect_timeout_ms) < 0 ||
        cfg_get_u32(L, n, "connect_attempts", 1, 16, &cl->connect_attempts) < 0 ||
        cfg_get_duration(L, n, "connect_failure_avoid", 0, &cl->connect_failure_avoid_ms) < 0 ||
        cfg_get_u32(L, n, "max_idle_per_endpoint", 0, 1000000, &cl->max_idle_per_endpoint) < 0 ||
        cfg_get_duration(L, n, "pool_idle_timeout", 0, &cl->pool_idle_timeout_ms) < 0 ||
        cfg_get_u32(L, n, "max_requests_per_connection", 0, UINT32_MAX,
                    &cl->max_requests_per_connection) < 0)
        return -1;
    const cy_node *hc = cfg_val(n, "health_check");
    if (hc && load_health(L, hc, cl))
        return -1;
    if (cfg_load_filter_list(L, n, "transport_filters", &cl->transport_filters,
                             &cl->n_transport_filters))
        return -1;
    if (cfg_get_str(L, n, "sni", &cl->sni) < 0)
        return -1;
    if (cl->sni) {
        size_t len = strlen(cl->sni);
        bool ok = len > 0 && len <= 253;
        for (const char *p = cl->sni; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '-' || *p == '.' || *p == '_';
        if (!ok)
            return cfg_fail(&L->c, cfg_val(n, "sni"),
                            "sni %s must be a host name (1-253 of [A-Za-z0-9.-_])",
                            cfg_quote(qb, sizeof(qb), cl->sni));
        if (!cl->n_transport_filters)
            return cfg_fail(&L->c, cfg_key_of(n, "sni"),
                            "\"sni\" is sent by transport filters: cluster %s has no "
                            "transport_filters",
                            cfg_quote(qb, sizeof(qb), cl->name));
    }
    if (!h->path && !(h->path = cfg_dup_str("/healthz")))
        return cfg_oom(L, n);
    if (!h->host && !(h->host = cfg_dup_str(cl->name)))
        return cfg_oom(L, n);
    return 0;
}

void cfg_free_cluster(weft_cfg_cluster *cl) {
    for (size_t e = 0; cl->endpoints && e < cl->n_endpoints; e++) {
        weft_cfg_endpoint *ep = &cl->endpoints[e];
        free(ep->address);
        free(ep->region);
        free(ep->zone);
        free(ep->subzone);
        for (size_t i = 0; i < ep->n_labels; i++) {
            free(ep->labels[i].key);
            free(ep->labels[i].value);
        }
        free(ep->labels);
    }
    free(cl->endpoints);
    free(cl->name);
    free(cl->hash_key);
    for (size_t f = 0; cl->transport_filters && f < cl->n_transport_filters; f++) {
        free(cl->transport_filters[f].name);
        free(cl->transport_filters[f].path);
    }
    free(cl->transport_filters);
    free(cl->sni);
    free(cl->health.path);
    free(cl->health.host);
}

const weft_cfg_cluster *weft_config_find_cluster(const weft_config *cfg, const char *name) {
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (cfg->clusters[i].name && strcmp(cfg->clusters[i].name, name) == 0)
            return &cfg->clusters[i];
    return NULL;
}
