/* config_load.c: the YAML node tree -> weft_config, validated whole.
 * Every problem is reported as "file:line:col: message" at the node that
 * causes it; the first problem stops the load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"

#define MAX_DURATION_MS (30ull * 24 * 3600 * 1000) /* 30 days */
#define MAX_WORKERS 1024
#define MAX_CONFIG_FILE (64u * 1024 * 1024)

/* A string -> index map (open addressing) so that duplicate checks and
 * cluster lookups stay linear in the size of big generated configs. The
 * keys are borrowed from the config being built. */
typedef struct name_set {
    const char **keys;
    size_t *vals;
    size_t mask;
} name_set;

static int ns_init(name_set *ns, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    ns->keys = calloc(cap, sizeof(*ns->keys));
    ns->vals = calloc(cap, sizeof(*ns->vals));
    ns->mask = cap - 1;
    return ns->keys && ns->vals ? 0 : -1;
}

static void ns_free(name_set *ns) {
    free(ns->keys);
    free(ns->vals);
    ns->keys = NULL;
    ns->vals = NULL;
}

/* Index stored for key, or -1. */
static long ns_get(const name_set *ns, const char *key) {
    if (!ns->keys)
        return -1;
    for (size_t i = weft_hash64(key, strlen(key), 0) & ns->mask;; i = (i + 1) & ns->mask) {
        if (!ns->keys[i])
            return -1;
        if (strcmp(ns->keys[i], key) == 0)
            return (long)ns->vals[i];
    }
}

/* Inserts key (absent, and the set sized for it by ns_init). */
static void ns_put(name_set *ns, const char *key, size_t val) {
    size_t i = weft_hash64(key, strlen(key), 0) & ns->mask;
    while (ns->keys[i])
        i = (i + 1) & ns->mask;
    ns->keys[i] = key;
    ns->vals[i] = val;
}

typedef struct ld {
    cfg_ctx c;
    weft_config *cfg;
    name_set clusters;        /* cluster name -> index */
    name_set listeners;       /* listener name -> index */
    uint8_t ports[65536 / 8]; /* listener ports in use */
} ld;

/* ---------------------------------------------------------------- tree */

static bool is_null(const cy_node *n) {
    if (n->kind != CY_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

/* The key node of `key` in map, or NULL. */
static const cy_node *key_of(const cy_node *map, const char *key) {
    for (const cy_node *k = map->first; k && k->next; k = k->next->next)
        if (strcmp(k->str, key) == 0)
            return k;
    return NULL;
}

/* The value of `key` in map; NULL when absent or null. */
static const cy_node *val(const cy_node *map, const char *key) {
    const cy_node *k = key_of(map, key);
    if (!k || is_null(k->next))
        return NULL;
    return k->next;
}

static const char *describe(char *buf, size_t sz, const cy_node *n) {
    if (n->kind == CY_MAP)
        return "a mapping";
    if (n->kind == CY_SEQ)
        return "a list";
    return cfg_quote(buf, sz, n->str);
}

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t prev[41], cur[41];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t m = del < ins ? del : ins;
            cur[j] = m < sub ? m : sub;
        }
        memcpy(prev, cur, sizeof(size_t) * (lb + 1));
    }
    return prev[lb];
}

/* Checks that n is a mapping whose keys are all in `keys` (NULL-ended)
 * and unique. `what` names the section in the type error. */
static int check_map(ld *L, const cy_node *n, const char *what, const char *const *keys) {
    char qb[96];
    if (n->kind != CY_MAP)
        return cfg_fail(&L->c, n, "expected a mapping for %s, got %s", what,
                        describe(qb, sizeof(qb), n));
    for (const cy_node *k = n->first; k && k->next; k = k->next->next) {
        bool known = false;
        const char *best = NULL;
        size_t best_d = 3;
        for (size_t i = 0; keys[i]; i++) {
            if (strcmp(k->str, keys[i]) == 0) {
                known = true;
                break;
            }
            size_t d = edit_distance(k->str, keys[i]);
            if (d < best_d) {
                best_d = d;
                best = keys[i];
            }
        }
        if (!known) {
            if (best)
                return cfg_fail(&L->c, k, "unknown key %s (did you mean \"%s\"?)",
                                cfg_quote(qb, sizeof(qb), k->str), best);
            return cfg_fail(&L->c, k, "unknown key %s", cfg_quote(qb, sizeof(qb), k->str));
        }
        for (const cy_node *e = n->first; e != k; e = e->next->next)
            if (strcmp(e->str, k->str) == 0)
                return cfg_fail(&L->c, k, "duplicate key %s", cfg_quote(qb, sizeof(qb), k->str));
    }
    return 0;
}

static int oom(ld *L, const cy_node *n) {
    return cfg_fail(&L->c, n, "out of memory");
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------------------- scalars */

static int scalar(ld *L, const cy_node *v, const char *key) {
    char qb[96];
    if (v->kind != CY_SCALAR)
        return cfg_fail(&L->c, v, "expected a string for \"%s\", got %s", key,
                        describe(qb, sizeof(qb), v));
    return 0;
}

/* Optional string: returns 1 and replaces *out when present, 0 when absent. */
static int get_str(ld *L, const cy_node *map, const char *key, char **out) {
    const cy_node *v = val(map, key);
    if (!v)
        return 0;
    if (scalar(L, v, key))
        return -1;
    char *s = dup_str(v->str);
    if (!s)
        return oom(L, v);
    free(*out);
    *out = s;
    return 1;
}

static int req_str(ld *L, const cy_node *map, const char *key, char **out, const char *what) {
    int rc = get_str(L, map, key, out);
    if (rc == 0)
        return cfg_fail(&L->c, map, "%s is missing \"%s\"", what, key);
    return rc < 0 ? -1 : 0;
}

static int parse_uint(const char *s, uint64_t *out) {
    if (!*s || strlen(s) > 20)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

static int get_uint(ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                    uint64_t *out) {
    char qb[96];
    const cy_node *v = val(map, key);
    if (!v)
        return 0;
    uint64_t x;
    if (v->kind != CY_SCALAR || parse_uint(v->str, &x))
        return cfg_fail(&L->c, v, "expected an integer, got %s", describe(qb, sizeof(qb), v));
    if (x < min || x > max)
        return cfg_fail(&L->c, v, "%s must be between %llu and %llu, got %llu", key,
                        (unsigned long long)min, (unsigned long long)max, (unsigned long long)x);
    *out = x;
    return 1;
}

static int get_u32(ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                   uint32_t *out) {
    uint64_t x;
    int rc = get_uint(L, map, key, min, max, &x);
    if (rc == 1)
        *out = (uint32_t)x;
    return rc;
}

static int get_u16(ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                   uint16_t *out) {
    uint64_t x;
    int rc = get_uint(L, map, key, min, max, &x);
    if (rc == 1)
        *out = (uint16_t)x;
    return rc;
}

static int get_duration(ld *L, const cy_node *map, const char *key, uint64_t min_ms,
                        uint64_t *out) {
    char qb[96];
    const cy_node *v = val(map, key);
    if (!v)
        return 0;
    uint64_t ms;
    if (v->kind != CY_SCALAR || weft_parse_duration_ms(v->str, &ms))
        return cfg_fail(&L->c, v, "expected a duration like \"250ms\", got %s",
                        describe(qb, sizeof(qb), v));
    if (ms > MAX_DURATION_MS)
        return cfg_fail(&L->c, v, "%s must be at most 720h, got %s", key,
                        cfg_quote(qb, sizeof(qb), v->str));
    if (ms < min_ms)
        return cfg_fail(&L->c, v, "%s must be at least %llums, got %s", key,
                        (unsigned long long)min_ms, cfg_quote(qb, sizeof(qb), v->str));
    *out = ms;
    return 1;
}

static int get_size(ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                    uint64_t *out) {
    char qb[96];
    const cy_node *v = val(map, key);
    if (!v)
        return 0;
    uint64_t x;
    if (v->kind != CY_SCALAR || weft_parse_size(v->str, &x))
        return cfg_fail(&L->c, v, "expected a size like \"64KiB\", got %s",
                        describe(qb, sizeof(qb), v));
    if (x < min || x > max)
        return cfg_fail(&L->c, v, "%s must be between %llu and %llu bytes, got %s", key,
                        (unsigned long long)min, (unsigned long long)max,
                        cfg_quote(qb, sizeof(qb), v->str));
    *out = x;
    return 1;
}

static int get_size32(ld *L, const cy_node *map, const char *key, uint64_t min, uint32_t *out) {
    uint64_t x;
    int rc = get_size(L, map, key, min, UINT32_MAX, &x);
    if (rc == 1)
        *out = (uint32_t)x;
    return rc;
}

static int get_bool(ld *L, const cy_node *map, const char *key, bool *out) {
    char qb[96];
    const cy_node *v = val(map, key);
    if (!v)
        return 0;
    if (v->kind == CY_SCALAR) {
        const char *s = v->str;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            *out = true;
            return 1;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            *out = false;
            return 1;
        }
    }
    return cfg_fail(&L->c, v, "expected true or false, got %s", describe(qb, sizeof(qb), v));
}

/* Optional list: returns 1 with *out set, 0 when absent. */
static int get_seq(ld *L, const cy_node *map, const char *key, const cy_node **out) {
    char qb[96];
    const cy_node *v = val(map, key);
    if (!v)
        return 0;
    if (v->kind != CY_SEQ)
        return cfg_fail(&L->c, v, "expected a list for \"%s\", got %s", key,
                        describe(qb, sizeof(qb), v));
    *out = v;
    return 1;
}

/* Names of listeners, clusters, virtual hosts, routes: visible ASCII. */
static bool is_name(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

static int req_name(ld *L, const cy_node *map, char **out, const char *what) {
    char qb[96];
    if (req_str(L, map, "name", out, what))
        return -1;
    const cy_node *v = val(map, "name");
    if (!**out || !is_name(*out))
        return cfg_fail(&L->c, v, "%s name must be non-empty visible ASCII without spaces, got %s",
                        what, cfg_quote(qb, sizeof(qb), *out));
    return 0;
}

/* Counts which of `keys` are present (non-null); the second one found
 * is reported when more than one is set. */
static int exactly_one(ld *L, const cy_node *map, const char *const *keys, const char *what,
                       const char **which) {
    const char *found = NULL;
    char list[128] = "";
    size_t n = 0;
    for (size_t i = 0; keys[i]; i++)
        n++;
    for (size_t i = 0; i < n; i++) {
        char part[40];
        snprintf(part, sizeof(part), "%s\"%s\"", i == 0 ? "" : (i + 1 == n ? " or " : ", "),
                 keys[i]);
        strncat(list, part, sizeof(list) - strlen(list) - 1);
    }
    for (const cy_node *k = map->first; k && k->next; k = k->next->next) {
        if (is_null(k->next))
            continue;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(k->str, keys[i]) != 0)
                continue;
            if (found)
                return cfg_fail(&L->c, k, "%s takes only one of %s", what, list);
            found = keys[i];
        }
    }
    if (!found)
        return cfg_fail(&L->c, map, "%s needs one of %s", what, list);
    *which = found;
    return 0;
}

/* ---------------------------------------------------------- defaults */

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
}

/* ------------------------------------------------------------ clusters */

static int load_health(ld *L, const cy_node *n, weft_cfg_cluster *cl) {
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
    if (check_map(L, n, "health_check", keys))
        return -1;
    h->enabled = true;
    int rc = get_str(L, n, "path", &h->path);
    if (rc < 0)
        return -1;
    if (rc == 1 && !cfg_is_path(h->path))
        return cfg_fail(
            &L->c, val(n, "path"),
            "health check path must start with \"/\" and contain only visible ASCII, got %s",
            cfg_quote(qb, sizeof(qb), h->path));
    rc = get_str(L, n, "host", &h->host);
    if (rc < 0)
        return -1;
    if (rc == 1 && (!*h->host || !is_name(h->host)))
        return cfg_fail(&L->c, val(n, "host"),
                        "health check host must be non-empty visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), h->host));
    if (get_duration(L, n, "interval", 1, &h->interval_ms) < 0 ||
        get_duration(L, n, "timeout", 1, &h->timeout_ms) < 0 ||
        get_u32(L, n, "healthy_threshold", 1, 1000, &h->healthy_threshold) < 0 ||
        get_u32(L, n, "unhealthy_threshold", 1, 1000, &h->unhealthy_threshold) < 0)
        return -1;
    const cy_node *es = val(n, "expected_statuses");
    if (es) {
        if (check_map(L, es, "expected_statuses", range_keys) ||
            get_u16(L, es, "min", 100, 599, &h->expected_min) < 0 ||
            get_u16(L, es, "max", 100, 599, &h->expected_max) < 0)
            return -1;
        if (h->expected_min > h->expected_max)
            return cfg_fail(&L->c, es, "expected_statuses min (%u) is greater than max (%u)",
                            (unsigned)h->expected_min, (unsigned)h->expected_max);
    }
    return 0;
}

static int load_ring_hash(ld *L, const cy_node *n, weft_cfg_cluster *cl) {
    static const char *const keys[] = {"hash_on", "name", "ring_size", NULL};
    char qb[96];
    if (check_map(L, n, "ring_hash", keys))
        return -1;
    const cy_node *on = val(n, "hash_on");
    if (!on)
        return cfg_fail(&L->c, n, "ring_hash is missing \"hash_on\"");
    if (scalar(L, on, "hash_on"))
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
        if (val(n, "name"))
            return cfg_fail(&L->c, key_of(n, "name"),
                            "\"name\" is not used with hash_on: source_ip");
    } else {
        if (req_str(L, n, "name", &cl->hash_key, "ring_hash"))
            return -1;
        if (!cfg_is_token(cl->hash_key))
            return cfg_fail(&L->c, val(n, "name"), "invalid %s name %s",
                            cl->hash_on == WEFT_HASH_HEADER ? "header" : "cookie",
                            cfg_quote(qb, sizeof(qb), cl->hash_key));
        if (cl->hash_on == WEFT_HASH_HEADER)
            cfg_lower(cl->hash_key);
    }
    return get_u32(L, n, "ring_size", 1, 1u << 23, &cl->ring_size) < 0 ? -1 : 0;
}

static int load_endpoint(ld *L, const cy_node *n, weft_cfg_endpoint *ep, bool *dns) {
    static const char *const keys[] = {"address", "port", "weight", NULL};
    char qb[96];
    if (check_map(L, n, "endpoint", keys))
        return -1;
    ep->pos = (weft_cfg_pos){n->line, n->col};
    ep->weight = 1;
    if (req_str(L, n, "address", &ep->address, "endpoint"))
        return -1;
    if (!cfg_is_ip_literal(ep->address)) {
        if (!cfg_is_hostname(ep->address))
            return cfg_fail(&L->c, val(n, "address"),
                            "endpoint address %s is neither an IP address nor a host name",
                            cfg_quote(qb, sizeof(qb), ep->address));
        *dns = true;
    }
    int rc = get_u16(L, n, "port", 1, 65535, &ep->port);
    if (rc == 0)
        return cfg_fail(&L->c, n, "endpoint is missing \"port\"");
    if (rc < 0)
        return -1;
    return get_u32(L, n, "weight", 1, 1000, &ep->weight) < 0 ? -1 : 0;
}

static int load_cluster(ld *L, const cy_node *n, size_t idx) {
    static const char *const keys[] = {"name",
                                       "endpoints",
                                       "dns_refresh",
                                       "lb_policy",
                                       "ring_hash",
                                       "connect_timeout",
                                       "max_idle_per_endpoint",
                                       "pool_idle_timeout",
                                       "max_requests_per_connection",
                                       "health_check",
                                       "protocol",
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
    if (check_map(L, n, "cluster", keys))
        return -1;
    cl->pos = (weft_cfg_pos){n->line, n->col};
    cl->dns_refresh_ms = 5000;
    cl->lb = WEFT_LB_ROUND_ROBIN;
    cl->hash_on = WEFT_HASH_SOURCE_IP;
    cl->ring_size = 1024;
    cl->connect_timeout_ms = 1000;
    cl->max_idle_per_endpoint = 1024; /* multiplexed clients need many */
    cl->pool_idle_timeout_ms = 60000;
    cl->max_requests_per_connection = 0;
    weft_cfg_health_check *h = &cl->health;
    h->interval_ms = 5000;
    h->timeout_ms = 1000;
    h->healthy_threshold = 2;
    h->unhealthy_threshold = 3;
    h->expected_min = 200;
    h->expected_max = 399;

    if (req_name(L, n, &cl->name, "cluster"))
        return -1;
    long prev = ns_get(&L->clusters, cl->name);
    if (prev >= 0)
        return cfg_fail(&L->c, val(n, "name"), "duplicate cluster name %s (first defined at %u:%u)",
                        cfg_quote(qb, sizeof(qb), cl->name), (unsigned)cfg->clusters[prev].pos.line,
                        (unsigned)cfg->clusters[prev].pos.col);
    ns_put(&L->clusters, cl->name, idx);

    const cy_node *eps = NULL;
    int rc = get_seq(L, n, "endpoints", &eps);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return cfg_fail(&L->c, n, "cluster %s has no endpoints",
                        cfg_quote(qb, sizeof(qb), cl->name));
    if (eps->n) {
        cl->endpoints = calloc(eps->n, sizeof(*cl->endpoints));
        if (!cl->endpoints)
            return oom(L, eps);
        cl->n_endpoints = eps->n;
        size_t i = 0;
        for (const cy_node *e = eps->first; e; e = e->next, i++)
            if (load_endpoint(L, e, &cl->endpoints[i], &cl->uses_dns))
                return -1;
    }
    if (get_duration(L, n, "dns_refresh", 1, &cl->dns_refresh_ms) < 0)
        return -1;

    const cy_node *pn = val(n, "protocol");
    if (pn) {
        if (scalar(L, pn, "protocol"))
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
    const cy_node *lbn = val(n, "lb_policy");
    if (lbn) {
        if (scalar(L, lbn, "lb_policy"))
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
    const cy_node *rh = val(n, "ring_hash");
    if (rh) {
        if (cl->lb != WEFT_LB_RING_HASH)
            return cfg_fail(&L->c, key_of(n, "ring_hash"),
                            "\"ring_hash\" settings need lb_policy: ring_hash");
        if (load_ring_hash(L, rh, cl))
            return -1;
    } else if (cl->lb == WEFT_LB_RING_HASH) {
        return cfg_fail(&L->c, lbn,
                        "lb_policy ring_hash needs a \"ring_hash\" section with \"hash_on\"");
    }
    if (get_duration(L, n, "connect_timeout", 1, &cl->connect_timeout_ms) < 0 ||
        get_u32(L, n, "max_idle_per_endpoint", 0, 1000000, &cl->max_idle_per_endpoint) < 0 ||
        get_duration(L, n, "pool_idle_timeout", 0, &cl->pool_idle_timeout_ms) < 0 ||
        get_u32(L, n, "max_requests_per_connection", 0, UINT32_MAX,
                &cl->max_requests_per_connection) < 0)
        return -1;
    const cy_node *hc = val(n, "health_check");
    if (hc && load_health(L, hc, cl))
        return -1;
    if (!h->path && !(h->path = dup_str("/healthz")))
        return oom(L, n);
    if (!h->host && !(h->host = dup_str(cl->name)))
        return oom(L, n);
    return 0;
}

/* -------------------------------------------------------------- routes */

static int load_kv_match(ld *L, const cy_node *n, weft_cfg_kv_match *m, bool header) {
    static const char *const keys[] = {"name",  "exact",   "prefix", "suffix",
                                       "regex", "present", "invert", NULL};
    static const char *const kinds[] = {"exact", "prefix", "suffix", "regex", "present", NULL};
    const char *what = header ? "header match" : "query match";
    char qb[96];
    if (check_map(L, n, what, keys) || req_str(L, n, "name", &m->name, what))
        return -1;
    if (header) {
        if (!cfg_is_token(m->name))
            return cfg_fail(&L->c, val(n, "name"), "invalid header name %s",
                            cfg_quote(qb, sizeof(qb), m->name));
        cfg_lower(m->name);
    } else if (!*m->name) {
        return cfg_fail(&L->c, val(n, "name"), "query parameter name must not be empty");
    }
    const char *kind;
    if (exactly_one(L, n, kinds, what, &kind))
        return -1;
    if (strcmp(kind, "present") == 0) {
        bool present = false;
        if (get_bool(L, n, "present", &present) < 0)
            return -1;
        if (!present)
            return cfg_fail(&L->c, val(n, "present"),
                            "present must be true (use invert: true to match a missing %s)",
                            header ? "header" : "parameter");
        m->match.kind = WEFT_STR_PRESENT;
    } else {
        if (get_str(L, n, kind, &m->match.value) < 0)
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
            return cfg_fail(&L->c, val(n, "regex"), "invalid regex %s: %s",
                            cfg_quote(qb, sizeof(qb), m->match.value), rmsg);
    }
    return get_bool(L, n, "invert", &m->match.invert) < 0 ? -1 : 0;
}

static int load_kv_list(ld *L, const cy_node *map, const char *key, weft_cfg_kv_match **out,
                        size_t *n_out, bool header) {
    const cy_node *seq = NULL;
    int rc = get_seq(L, map, key, &seq);
    if (rc <= 0 || seq->n == 0)
        return rc < 0 ? -1 : 0;
    *out = calloc(seq->n, sizeof(**out));
    if (!*out)
        return oom(L, seq);
    *n_out = seq->n;
    size_t i = 0;
    for (const cy_node *e = seq->first; e; e = e->next, i++)
        if (load_kv_match(L, e, &(*out)[i], header))
            return -1;
    return 0;
}

static int load_match(ld *L, const cy_node *n, weft_cfg_route *r) {
    static const char *const keys[] = {"prefix",  "path",    "regex", "case_sensitive",
                                       "methods", "headers", "query", NULL};
    static const char *const kinds[] = {"prefix", "path", "regex", NULL};
    char qb[96];
    if (check_map(L, n, "match", keys))
        return -1;
    const char *kind;
    if (exactly_one(L, n, kinds, "match", &kind))
        return -1;
    if (get_bool(L, n, "case_sensitive", &r->case_sensitive) < 0 ||
        get_str(L, n, kind, &r->path) < 0)
        return -1;
    const cy_node *pv = val(n, kind);
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
    int rc = get_seq(L, n, "methods", &ms);
    if (rc < 0)
        return -1;
    if (rc == 1 && ms->n) {
        r->methods = calloc(ms->n, sizeof(char *));
        if (!r->methods)
            return oom(L, ms);
        r->n_methods = ms->n;
        size_t i = 0;
        for (const cy_node *e = ms->first; e; e = e->next, i++) {
            if (scalar(L, e, "methods"))
                return -1;
            if (!cfg_is_token(e->str))
                return cfg_fail(&L->c, e, "invalid method %s", cfg_quote(qb, sizeof(qb), e->str));
            if (!(r->methods[i] = dup_str(e->str)))
                return oom(L, e);
        }
    }
    if (load_kv_list(L, n, "headers", &r->headers, &r->n_headers, true) ||
        load_kv_list(L, n, "query", &r->query, &r->n_query, false))
        return -1;
    return 0;
}

static int load_header_adds(ld *L, const cy_node *map, const char *key, weft_cfg_header_value **out,
                            size_t *n_out) {
    static const char *const keys[] = {"name", "value", "append", NULL};
    char qb[96];
    const cy_node *seq = NULL;
    int rc = get_seq(L, map, key, &seq);
    if (rc <= 0 || seq->n == 0)
        return rc < 0 ? -1 : 0;
    *out = calloc(seq->n, sizeof(**out));
    if (!*out)
        return oom(L, seq);
    *n_out = seq->n;
    size_t i = 0;
    for (const cy_node *e = seq->first; e; e = e->next, i++) {
        weft_cfg_header_value *hv = &(*out)[i];
        if (check_map(L, e, "header", keys) || req_str(L, e, "name", &hv->name, "header") ||
            req_str(L, e, "value", &hv->value, "header") ||
            get_bool(L, e, "append", &hv->append) < 0)
            return -1;
        if (!cfg_is_token(hv->name))
            return cfg_fail(&L->c, val(e, "name"), "invalid header name %s",
                            cfg_quote(qb, sizeof(qb), hv->name));
        if (!cfg_is_header_value(hv->value))
            return cfg_fail(&L->c, val(e, "value"), "header value %s contains control characters",
                            cfg_quote(qb, sizeof(qb), hv->value));
        cfg_lower(hv->name);
    }
    return 0;
}

static int load_header_removes(ld *L, const cy_node *map, const char *key, char ***out,
                               size_t *n_out) {
    char qb[96];
    const cy_node *seq = NULL;
    int rc = get_seq(L, map, key, &seq);
    if (rc <= 0 || seq->n == 0)
        return rc < 0 ? -1 : 0;
    *out = calloc(seq->n, sizeof(char *));
    if (!*out)
        return oom(L, seq);
    *n_out = seq->n;
    size_t i = 0;
    for (const cy_node *e = seq->first; e; e = e->next, i++) {
        if (scalar(L, e, key))
            return -1;
        if (!cfg_is_token(e->str))
            return cfg_fail(&L->c, e, "invalid header name %s", cfg_quote(qb, sizeof(qb), e->str));
        if (!((*out)[i] = dup_str(e->str)))
            return oom(L, e);
        cfg_lower((*out)[i]);
    }
    return 0;
}

static int load_redirect(ld *L, const cy_node *n, weft_cfg_route *r) {
    static const char *const keys[] = {"scheme",         "host",          "path",
                                       "prefix_rewrite", "response_code", NULL};
    char qb[96];
    if (check_map(L, n, "redirect", keys))
        return -1;
    int rc;
    if ((rc = get_str(L, n, "scheme", &r->redirect_scheme)) < 0)
        return -1;
    if (rc == 1 && strcmp(r->redirect_scheme, "http") != 0 &&
        strcmp(r->redirect_scheme, "https") != 0)
        return cfg_fail(&L->c, val(n, "scheme"),
                        "redirect scheme must be \"http\" or \"https\", got %s",
                        cfg_quote(qb, sizeof(qb), r->redirect_scheme));
    if ((rc = get_str(L, n, "host", &r->redirect_host)) < 0)
        return -1;
    if (rc == 1 && (!*r->redirect_host || !is_name(r->redirect_host)))
        return cfg_fail(&L->c, val(n, "host"),
                        "redirect host must be non-empty visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), r->redirect_host));
    if ((rc = get_str(L, n, "path", &r->redirect_path)) < 0)
        return -1;
    if (rc == 1 && !cfg_is_path(r->redirect_path))
        return cfg_fail(&L->c, val(n, "path"),
                        "path must start with \"/\" and contain only visible ASCII, got %s",
                        cfg_quote(qb, sizeof(qb), r->redirect_path));
    if ((rc = get_str(L, n, "prefix_rewrite", &r->redirect_prefix)) < 0)
        return -1;
    if (rc == 1) {
        const cy_node *pv = val(n, "prefix_rewrite");
        if (r->redirect_path)
            return cfg_fail(&L->c, key_of(n, "prefix_rewrite"),
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
    if (get_u16(L, n, "response_code", 0, 65535, &r->redirect_code) < 0)
        return -1;
    uint16_t c = r->redirect_code;
    if (c != 301 && c != 302 && c != 303 && c != 307 && c != 308)
        return cfg_fail(&L->c, val(n, "response_code"),
                        "redirect response_code must be 301, 302, 303, 307 or 308, got %u",
                        (unsigned)c);
    return 0;
}

static int load_direct(ld *L, const cy_node *n, weft_cfg_route *r) {
    static const char *const keys[] = {"status", "body", NULL};
    if (check_map(L, n, "direct_response", keys))
        return -1;
    int rc = get_u16(L, n, "status", 100, 599, &r->direct_status);
    if (rc == 0)
        return cfg_fail(&L->c, n, "direct_response is missing \"status\"");
    if (rc < 0)
        return -1;
    return get_str(L, n, "body", &r->direct_body) < 0 ? -1 : 0;
}

static int load_route(ld *L, const cy_node *n, weft_cfg_route *r) {
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
                                       NULL};
    static const char *const actions[] = {"cluster", "redirect", "direct_response", NULL};
    static const char *const upstream_only[] = {"timeout", "idle_timeout", "prefix_rewrite",
                                                "host_rewrite", NULL};
    char qb[96];
    if (check_map(L, n, "route", keys))
        return -1;
    r->pos = (weft_cfg_pos){n->line, n->col};
    r->case_sensitive = true;
    r->timeout_ms = 15000;
    r->redirect_code = 301;
    if (get_str(L, n, "name", &r->name) < 0)
        return -1;
    if (!r->name && !(r->name = dup_str("")))
        return oom(L, n);
    if (!is_name(r->name))
        return cfg_fail(&L->c, val(n, "name"),
                        "route name must be visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), r->name));
    const cy_node *m = val(n, "match");
    if (!m)
        return cfg_fail(&L->c, n, "route is missing \"match\"");
    if (load_match(L, m, r))
        return -1;
    const char *action;
    if (exactly_one(L, n, actions, "route", &action))
        return -1;
    if (strcmp(action, "cluster") == 0) {
        r->action = WEFT_ACTION_CLUSTER;
        if (get_str(L, n, "cluster", &r->cluster) < 0)
            return -1;
        if (ns_get(&L->clusters, r->cluster) < 0)
            return cfg_fail(&L->c, val(n, "cluster"), "cluster %s is not defined",
                            cfg_quote(qb, sizeof(qb), r->cluster));
    } else {
        for (size_t i = 0; upstream_only[i]; i++)
            if (val(n, upstream_only[i]))
                return cfg_fail(&L->c, key_of(n, upstream_only[i]),
                                "\"%s\" is only valid on routes with \"cluster\"",
                                upstream_only[i]);
        if (strcmp(action, "redirect") == 0) {
            r->action = WEFT_ACTION_REDIRECT;
            if (load_redirect(L, val(n, "redirect"), r))
                return -1;
        } else {
            r->action = WEFT_ACTION_DIRECT;
            if (load_direct(L, val(n, "direct_response"), r))
                return -1;
        }
    }
    if (get_duration(L, n, "timeout", 0, &r->timeout_ms) < 0 ||
        get_duration(L, n, "idle_timeout", 0, &r->idle_timeout_ms) < 0)
        return -1;
    int rc = get_str(L, n, "prefix_rewrite", &r->prefix_rewrite);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        const cy_node *pv = val(n, "prefix_rewrite");
        if (r->path_kind != WEFT_STR_PREFIX)
            return cfg_fail(&L->c, pv, "prefix_rewrite needs a \"prefix\" match");
        if (*r->prefix_rewrite && !cfg_is_path(r->prefix_rewrite))
            return cfg_fail(&L->c, pv,
                            "prefix_rewrite must be empty or start with \"/\" and contain only "
                            "visible ASCII, got %s",
                            cfg_quote(qb, sizeof(qb), r->prefix_rewrite));
    }
    rc = get_str(L, n, "host_rewrite", &r->host_rewrite);
    if (rc < 0)
        return -1;
    if (rc == 1 && (!*r->host_rewrite || !is_name(r->host_rewrite)))
        return cfg_fail(&L->c, val(n, "host_rewrite"),
                        "host_rewrite must be non-empty visible ASCII without spaces, got %s",
                        cfg_quote(qb, sizeof(qb), r->host_rewrite));
    if (load_header_adds(L, n, "request_headers_to_add", &r->req_add, &r->n_req_add) ||
        load_header_removes(L, n, "request_headers_to_remove", &r->req_remove, &r->n_req_remove) ||
        load_header_adds(L, n, "response_headers_to_add", &r->resp_add, &r->n_resp_add) ||
        load_header_removes(L, n, "response_headers_to_remove", &r->resp_remove, &r->n_resp_remove))
        return -1;
    return 0;
}

/* ---------------------------------------------------------- listeners */

/* `domains` maps every domain of the listener's earlier virtual hosts to
 * its virtual host, `names` their names. */
static int load_vhost(ld *L, const cy_node *n, weft_cfg_listener *li, size_t idx, name_set *domains,
                      name_set *names) {
    static const char *const keys[] = {"name", "domains", "routes", NULL};
    char qb[96], qb2[96];
    weft_cfg_vhost *vh = &li->vhosts[idx];
    if (check_map(L, n, "virtual host", keys))
        return -1;
    vh->pos = (weft_cfg_pos){n->line, n->col};
    const cy_node *ds = NULL;
    int rc = get_seq(L, n, "domains", &ds);
    if (rc < 0)
        return -1;
    if (rc == 1 && ds->n == 0)
        return cfg_fail(&L->c, ds, "domains must not be empty (use [\"*\"] to match any host)");
    vh->domains = calloc(rc == 1 ? ds->n : 1, sizeof(char *));
    if (!vh->domains)
        return oom(L, n);
    vh->n_domains = rc == 1 ? ds->n : 1;
    const cy_node *e = rc == 1 ? ds->first : NULL;
    for (size_t i = 0; i < vh->n_domains; i++, e = e ? e->next : NULL) {
        /* without "domains" the virtual host matches "*"; errors point at it */
        const cy_node *at = e ? e : n;
        if (e && scalar(L, e, "domains"))
            return -1;
        if (!(vh->domains[i] = dup_str(e ? e->str : "*")))
            return oom(L, at);
        cfg_lower(vh->domains[i]);
        if (!cfg_is_domain(vh->domains[i]))
            return cfg_fail(&L->c, at,
                            "invalid domain %s (expected a host name, \"*.suffix\" or \"*\")",
                            cfg_quote(qb, sizeof(qb), e ? e->str : vh->domains[i]));
        long owner = ns_get(domains, vh->domains[i]);
        if (owner == (long)idx)
            return cfg_fail(&L->c, at, "duplicate domain %s",
                            cfg_quote(qb, sizeof(qb), vh->domains[i]));
        if (owner >= 0)
            return cfg_fail(&L->c, at, "domain %s is already used by virtual host %s",
                            cfg_quote(qb, sizeof(qb), vh->domains[i]),
                            cfg_quote(qb2, sizeof(qb2), li->vhosts[owner].name));
        ns_put(domains, vh->domains[i], idx);
    }
    if (val(n, "name")) {
        if (req_name(L, n, &vh->name, "virtual host"))
            return -1;
    } else if (!(vh->name = dup_str(vh->domains[0]))) {
        return oom(L, n);
    }
    long prev = ns_get(names, vh->name);
    if (prev >= 0)
        return cfg_fail(&L->c, val(n, "name") ? val(n, "name") : n,
                        "duplicate virtual host name %s (first defined at %u:%u)",
                        cfg_quote(qb, sizeof(qb), vh->name), (unsigned)li->vhosts[prev].pos.line,
                        (unsigned)li->vhosts[prev].pos.col);
    ns_put(names, vh->name, idx);
    const cy_node *rs = NULL;
    rc = get_seq(L, n, "routes", &rs);
    if (rc < 0)
        return -1;
    if (rc == 1 && rs->n) {
        vh->routes = calloc(rs->n, sizeof(*vh->routes));
        if (!vh->routes)
            return oom(L, rs);
        vh->n_routes = rs->n;
        size_t i = 0;
        for (const cy_node *rn = rs->first; rn; rn = rn->next, i++)
            if (load_route(L, rn, &vh->routes[i]))
                return -1;
    }
    return 0;
}

static int load_limits(ld *L, const cy_node *n, weft_cfg_limits *l) {
    static const char *const keys[] = {"max_header_bytes",      "max_headers",
                                       "max_uri_length",        "max_body_bytes",
                                       "headers_timeout",       "idle_timeout",
                                       "stream_idle_timeout",   "max_connections",
                                       "buffer_high_watermark", NULL};
    if (check_map(L, n, "limits", keys))
        return -1;
    if (get_size32(L, n, "max_header_bytes", 1, &l->max_header_bytes) < 0 ||
        get_u32(L, n, "max_headers", 1, 100000, &l->max_headers) < 0 ||
        get_size32(L, n, "max_uri_length", 1, &l->max_uri_len) < 0 ||
        get_size(L, n, "max_body_bytes", 0, UINT64_MAX, &l->max_body_bytes) < 0 ||
        get_duration(L, n, "headers_timeout", 0, &l->headers_timeout_ms) < 0 ||
        get_duration(L, n, "idle_timeout", 0, &l->idle_timeout_ms) < 0 ||
        get_duration(L, n, "stream_idle_timeout", 0, &l->stream_idle_timeout_ms) < 0 ||
        get_u32(L, n, "max_connections", 0, UINT32_MAX, &l->max_connections) < 0 ||
        get_size32(L, n, "buffer_high_watermark", 1, &l->buffer_high_watermark) < 0)
        return -1;
    return 0;
}

static bool filter_name_ok(const char *s) {
    if (!*s || strlen(s) > 48)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* filters: [{name: authz, path: ./x.so, config: {...}}]. The config node
 * stays in the kept YAML document: the filter reads it at snapshot build
 * through the SDK accessors and reports its own errors with positions. */
static int load_filters(ld *L, const cy_node *n, weft_cfg_listener *li) {
    static const char *const keys[] = {"name", "path", "config", NULL};
    char qb[96];
    const cy_node *fs = NULL;
    int rc = get_seq(L, n, "filters", &fs);
    if (rc <= 0 || !fs->n)
        return rc < 0 ? -1 : 0;
    li->filters = calloc(fs->n, sizeof(*li->filters));
    if (!li->filters)
        return oom(L, fs);
    for (const cy_node *e = fs->first; e; e = e->next) {
        weft_cfg_filter *f = &li->filters[li->n_filters];
        if (check_map(L, e, "filter", keys))
            return -1;
        f->pos = (weft_cfg_pos){e->line, e->col};
        li->n_filters++;
        if (req_name(L, e, &f->name, "filter"))
            return -1;
        if (!filter_name_ok(f->name))
            return cfg_fail(&L->c, val(e, "name"), "filter name %s must be 1-48 of [a-z0-9_]",
                            cfg_quote(qb, sizeof(qb), f->name));
        if (get_str(L, e, "path", &f->path) < 0)
            return -1;
        const cy_node *c = val(e, "config");
        f->node = c && !is_null(c) ? c : NULL;
    }
    return 0;
}

static int load_h2(ld *L, const cy_node *n, weft_cfg_listener *li) {
    static const char *const keys[] = {"max_concurrent_streams", "initial_window_size",
                                       "max_frame_size", "max_header_list_size", NULL};
    weft_cfg_h2 *h = &li->h2;
    h->max_concurrent_streams = 100;
    h->initial_window_size = 1024 * 1024;
    h->max_frame_size = 16384;
    h->max_header_list_size = li->limits.max_header_bytes;
    const cy_node *c = val(n, "http2");
    if (!c || is_null(c))
        return 0;
    if (check_map(L, c, "http2", keys))
        return -1;
    /* RFC 9113 6.5.2 bounds: window <= 2^31-1, frame size 2^14..2^24-1. */
    if (get_u32(L, c, "max_concurrent_streams", 1, 1000000, &h->max_concurrent_streams) < 0 ||
        get_u32(L, c, "initial_window_size", 1, 2147483647u, &h->initial_window_size) < 0 ||
        get_u32(L, c, "max_frame_size", 16384, 16777215, &h->max_frame_size) < 0 ||
        get_u32(L, c, "max_header_list_size", 1024, 16u * 1024 * 1024, &h->max_header_list_size) <
            0)
        return -1;
    return 0;
}

/* tcp_proxy: {cluster: NAME, idle_timeout: 1h, max_connect_attempts: 1},
 * instead of virtual_hosts and filters (an opaque TCP listener has no
 * HTTP codec for either to act on). */
static int load_tcp_proxy(ld *L, const cy_node *listener, const cy_node *n, weft_cfg_listener *li) {
    static const char *const keys[] = {"cluster", "idle_timeout", "max_connect_attempts", NULL};
    static const char *const http_only[] = {"virtual_hosts", "filters", NULL};
    char qb[96];
    for (size_t i = 0; http_only[i]; i++) {
        const cy_node *k = key_of(listener, http_only[i]);
        if (k)
            return cfg_fail(&L->c, k,
                            "a tcp_proxy listener takes no \"%s\" (they apply to HTTP listeners)",
                            http_only[i]);
    }
    if (check_map(L, n, "tcp_proxy", keys))
        return -1;
    li->is_tcp = true;
    li->tcp_pos = (weft_cfg_pos){n->line, n->col};
    li->tcp_idle_timeout_ms = 3600 * 1000;
    li->tcp_connect_attempts = 1;
    if (req_str(L, n, "cluster", &li->tcp_cluster, "tcp_proxy"))
        return -1;
    if (ns_get(&L->clusters, li->tcp_cluster) < 0)
        return cfg_fail(&L->c, val(n, "cluster"), "tcp_proxy names unknown cluster %s",
                        cfg_quote(qb, sizeof(qb), li->tcp_cluster));
    if (get_duration(L, n, "idle_timeout", 0, &li->tcp_idle_timeout_ms) < 0 ||
        get_u32(L, n, "max_connect_attempts", 1, 100, &li->tcp_connect_attempts) < 0)
        return -1;
    return 0;
}

static int load_listener(ld *L, const cy_node *n, size_t idx) {
    static const char *const keys[] = {"name",    "address", "port",      "limits", "virtual_hosts",
                                       "filters", "http2",   "tcp_proxy", NULL};
    char qb[96];
    weft_config *cfg = L->cfg;
    weft_cfg_listener *li = &cfg->listeners[idx];
    if (check_map(L, n, "listener", keys))
        return -1;
    li->pos = (weft_cfg_pos){n->line, n->col};
    weft_cfg_limits_default(&li->limits);
    if (req_name(L, n, &li->name, "listener"))
        return -1;
    long prev = ns_get(&L->listeners, li->name);
    if (prev >= 0)
        return cfg_fail(
            &L->c, val(n, "name"), "duplicate listener name %s (first defined at %u:%u)",
            cfg_quote(qb, sizeof(qb), li->name), (unsigned)cfg->listeners[prev].pos.line,
            (unsigned)cfg->listeners[prev].pos.col);
    ns_put(&L->listeners, li->name, idx);
    int rc = get_str(L, n, "address", &li->address);
    if (rc < 0)
        return -1;
    if (rc == 0 && !(li->address = dup_str("0.0.0.0")))
        return oom(L, n);
    if (!cfg_is_ip_literal(li->address))
        return cfg_fail(&L->c, val(n, "address"), "listener address must be an IP address, got %s",
                        cfg_quote(qb, sizeof(qb), li->address));
    rc = get_u16(L, n, "port", 1, 65535, &li->port);
    if (rc == 0)
        return cfg_fail(&L->c, n, "listener is missing \"port\"");
    if (rc < 0)
        return -1;
    const cy_node *pv = val(n, "port");
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
    const cy_node *lim = val(n, "limits");
    if (lim && load_limits(L, lim, &li->limits))
        return -1;
    if (load_filters(L, n, li) || load_h2(L, n, li))
        return -1;
    const cy_node *tp = val(n, "tcp_proxy");
    if (tp)
        return load_tcp_proxy(L, n, tp, li);
    const cy_node *vs = NULL;
    rc = get_seq(L, n, "virtual_hosts", &vs);
    if (rc < 0)
        return -1;
    if (rc == 1 && vs->n) {
        li->vhosts = calloc(vs->n, sizeof(*li->vhosts));
        if (!li->vhosts)
            return oom(L, vs);
        li->n_vhosts = vs->n;
        size_t n_domains = 0;
        for (const cy_node *e = vs->first; e; e = e->next) {
            const cy_node *ds = e->kind == CY_MAP ? val(e, "domains") : NULL;
            n_domains += ds && ds->kind == CY_SEQ ? ds->n : 1;
        }
        name_set domains = {0}, names = {0};
        rc = ns_init(&domains, n_domains) || ns_init(&names, vs->n) ? oom(L, vs) : 0;
        size_t i = 0;
        for (const cy_node *e = vs->first; e && rc == 0; e = e->next, i++)
            rc = load_vhost(L, e, li, i, &domains, &names);
        ns_free(&domains);
        ns_free(&names);
        return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- top */

static uint32_t online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    if (n > MAX_WORKERS)
        return MAX_WORKERS;
    return (uint32_t)n;
}

static int load_root(ld *L, const cy_node *root) {
    static const char *const keys[] = {"workers",   "drain_timeout", "admin",       "access_log",
                                       "listeners", "clusters",      "filter_path", NULL};
    static const char *const admin_keys[] = {"address", "port", NULL};
    static const char *const log_keys[] = {"path", NULL};
    char qb[96];
    weft_config *cfg = L->cfg;
    cfg->drain_timeout_ms = 15000;
    cfg->admin.port = 15000;
    if (!(cfg->admin.address = dup_str("127.0.0.1")))
        return oom(L, root);
    if (root && is_null(root))
        root = NULL;
    if (root && check_map(L, root, "the top level", keys))
        return -1;
    if (root) {
        if (get_u32(L, root, "workers", 0, MAX_WORKERS, &cfg->workers) < 0 ||
            get_duration(L, root, "drain_timeout", 0, &cfg->drain_timeout_ms) < 0)
            return -1;
        const cy_node *adm = val(root, "admin");
        if (adm) {
            if (check_map(L, adm, "admin", admin_keys))
                return -1;
            int rc = get_str(L, adm, "address", &cfg->admin.address);
            if (rc < 0)
                return -1;
            if (rc == 1 && !cfg_is_ip_literal(cfg->admin.address))
                return cfg_fail(&L->c, val(adm, "address"),
                                "admin address must be an IP address, got %s",
                                cfg_quote(qb, sizeof(qb), cfg->admin.address));
            if (get_u16(L, adm, "port", 0, 65535, &cfg->admin.port) < 0)
                return -1;
        }
        const cy_node *al = val(root, "access_log");
        if (al) {
            if (check_map(L, al, "access_log", log_keys) ||
                req_str(L, al, "path", &cfg->access_log.path, "access_log"))
                return -1;
            if (!*cfg->access_log.path)
                return cfg_fail(
                    &L->c, val(al, "path"),
                    "access_log path must not be empty (omit access_log to turn it off)");
        }
        const cy_node *fp = NULL;
        int rc = get_seq(L, root, "filter_path", &fp);
        if (rc < 0)
            return -1;
        if (rc == 1 && fp->n) {
            cfg->filter_paths = calloc(fp->n, sizeof(char *));
            if (!cfg->filter_paths)
                return oom(L, fp);
            for (const cy_node *e = fp->first; e; e = e->next) {
                if (e->kind != CY_SCALAR || !e->len)
                    return cfg_fail(&L->c, e, "filter_path entries must be directory names");
                if (!(cfg->filter_paths[cfg->n_filter_paths++] = dup_str(e->str)))
                    return oom(L, e);
            }
        }
        const cy_node *cs = NULL;
        rc = get_seq(L, root, "clusters", &cs);
        if (rc < 0)
            return -1;
        if (rc == 1 && cs->n) {
            cfg->clusters = calloc(cs->n, sizeof(*cfg->clusters));
            if (!cfg->clusters || ns_init(&L->clusters, cs->n))
                return oom(L, cs);
            size_t i = 0;
            for (const cy_node *e = cs->first; e; e = e->next, i++) {
                /* n_clusters grows with each loaded cluster so that route
                 * lookups and duplicate checks see only complete entries. */
                cfg->n_clusters = i + 1;
                if (load_cluster(L, e, i))
                    return -1;
            }
        }
        const cy_node *ls = NULL;
        rc = get_seq(L, root, "listeners", &ls);
        if (rc < 0)
            return -1;
        if (rc == 1 && ls->n) {
            cfg->listeners = calloc(ls->n, sizeof(*cfg->listeners));
            if (!cfg->listeners || ns_init(&L->listeners, ls->n))
                return oom(L, ls);
            cfg->n_listeners = ls->n;
            size_t i = 0;
            for (const cy_node *e = ls->first; e; e = e->next, i++)
                if (load_listener(L, e, i))
                    return -1;
        }
    }
    if (cfg->workers == 0)
        cfg->workers = online_cpus();
    return 0;
}

weft_config *weft_config_load_buffer(const char *data, size_t len, const char *name,
                                     weft_config_error *err) {
    weft_config_error scratch;
    if (!err)
        err = &scratch;
    err->msg[0] = '\0';
    if (!name)
        name = "<config>";
    /* The document is kept (filter config nodes point into it): it lives
     * on the heap with the config that owns it. */
    cy_doc *doc = malloc(sizeof(*doc));
    if (!doc) {
        snprintf(err->msg, sizeof(err->msg), "%.200s: out of memory", name);
        return NULL;
    }
    if (cy_parse(doc, data ? data : "", data ? len : 0, name, err)) {
        free(doc);
        return NULL;
    }
    ld L;
    memset(&L, 0, sizeof(L));
    L.c = (cfg_ctx){name, err};
    L.cfg = calloc(1, sizeof(*L.cfg));
    if (!L.cfg || !(L.cfg->source = dup_str(name))) {
        cfg_fail_at(&L.c, 1, 1, "out of memory");
        free(L.cfg);
        cy_free(doc);
        free(doc);
        return NULL;
    }
    L.cfg->doc = doc;
    int rc = load_root(&L, doc->root);
    ns_free(&L.clusters);
    ns_free(&L.listeners);
    if (rc == 0 && !L.cfg->source_dir) {
        const char *slash = strrchr(name, '/');
        L.cfg->source_dir =
            slash ? strndup(name, (size_t)(slash - name) + (slash == name)) : dup_str(".");
        if (!L.cfg->source_dir)
            rc = cfg_fail_at(&L.c, 1, 1, "out of memory");
    }
    if (rc) {
        weft_config_free(L.cfg);
        return NULL;
    }
    return L.cfg;
}

weft_config *weft_config_load_file(const char *path, weft_config_error *err) {
    weft_config_error scratch;
    if (!err)
        err = &scratch;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->msg, sizeof(err->msg), "%.200s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_CONFIG_FILE) {
                snprintf(err->msg, sizeof(err->msg), "%.200s: file is larger than %u bytes", path,
                         MAX_CONFIG_FILE);
                free(buf);
                fclose(f);
                return NULL;
            }
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                snprintf(err->msg, sizeof(err->msg), "%.200s: out of memory", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int read_err = ferror(f);
    int saved = errno;
    fclose(f);
    if (read_err) {
        snprintf(err->msg, sizeof(err->msg), "%.200s: cannot read: %s", path, strerror(saved));
        free(buf);
        return NULL;
    }
    weft_config *cfg = weft_config_load_buffer(buf, len, path, err);
    free(buf);
    return cfg;
}

/* --------------------------------------------------------------- free */

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

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
    free_strv(r->methods, r->n_methods);
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
    free_strv(r->req_remove, r->n_req_remove);
    free_hv(r->resp_add, r->n_resp_add);
    free_strv(r->resp_remove, r->n_resp_remove);
}

void weft_config_free(weft_config *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; cfg->listeners && i < cfg->n_listeners; i++) {
        weft_cfg_listener *li = &cfg->listeners[i];
        for (size_t v = 0; li->vhosts && v < li->n_vhosts; v++) {
            weft_cfg_vhost *vh = &li->vhosts[v];
            for (size_t r = 0; vh->routes && r < vh->n_routes; r++)
                free_route(&vh->routes[r]);
            free(vh->routes);
            free_strv(vh->domains, vh->n_domains);
            free(vh->name);
        }
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
    free_strv(cfg->filter_paths, cfg->n_filter_paths);
    free(cfg->source_dir);
    if (cfg->doc) {
        cy_free(cfg->doc);
        free(cfg->doc);
    }
    free(cfg->listeners);
    for (size_t i = 0; cfg->clusters && i < cfg->n_clusters; i++) {
        weft_cfg_cluster *cl = &cfg->clusters[i];
        for (size_t e = 0; cl->endpoints && e < cl->n_endpoints; e++)
            free(cl->endpoints[e].address);
        free(cl->endpoints);
        free(cl->name);
        free(cl->hash_key);
        free(cl->health.path);
        free(cl->health.host);
    }
    free(cfg->clusters);
    free(cfg->admin.address);
    free(cfg->access_log.path);
    free(cfg->source);
    free(cfg);
}

const weft_cfg_cluster *weft_config_find_cluster(const weft_config *cfg, const char *name) {
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (cfg->clusters[i].name && strcmp(cfg->clusters[i].name, name) == 0)
            return &cfg->clusters[i];
    return NULL;
}
