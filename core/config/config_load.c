/* config_load.c: the YAML node tree -> weft_config, validated whole.
 * Every problem is reported as "file:line:col: message" at the node that
 * causes it; the first problem stops the load. This file holds the top
 * level (workers, admin, access_log, filter_path, the clusters and
 * listeners lists), the helpers every resource type shares (declared in
 * config_internal.h) and weft_config_free; clusters, routes and listeners
 * are read by config_clusters.c, config_routes.c and config_listeners.c,
 * the `dns:` mapping by config_dns.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cpus.h"
#include "common/memtrim.h"
#include "config/config_internal.h"

#define MAX_DURATION_MS (30ull * 24 * 3600 * 1000) /* 30 days */
#define MAX_WORKERS 1024
#define MAX_CONFIG_FILE (64u * 1024 * 1024)

int cfg_ns_init(cfg_name_set *ns, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    ns->keys = calloc(cap, sizeof(*ns->keys));
    ns->vals = calloc(cap, sizeof(*ns->vals));
    ns->mask = cap - 1;
    return ns->keys && ns->vals ? 0 : -1;
}

void cfg_ns_free(cfg_name_set *ns) {
    free(ns->keys);
    free(ns->vals);
    ns->keys = NULL;
    ns->vals = NULL;
}

/* Index stored for key, or -1. */
long cfg_ns_get(const cfg_name_set *ns, const char *key) {
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
void cfg_ns_put(cfg_name_set *ns, const char *key, size_t val) {
    size_t i = weft_hash64(key, strlen(key), 0) & ns->mask;
    while (ns->keys[i])
        i = (i + 1) & ns->mask;
    ns->keys[i] = key;
    ns->vals[i] = val;
}

/* ---------------------------------------------------------------- tree */

bool cfg_is_null(const cy_node *n) {
    if (n->kind != CY_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

/* The key node of `key` in map, or NULL. */
const cy_node *cfg_key_of(const cy_node *map, const char *key) {
    if (map->kind != CY_MAP)
        return NULL;
    for (const cy_node *k = map->first; k && k->next; k = k->next->next)
        if (strcmp(k->str, key) == 0)
            return k;
    return NULL;
}

/* The value of `key` in map; NULL when absent or null. */
const cy_node *cfg_val(const cy_node *map, const char *key) {
    const cy_node *k = cfg_key_of(map, key);
    if (!k || cfg_is_null(k->next))
        return NULL;
    return k->next;
}

const char *cfg_describe(char *buf, size_t sz, const cy_node *n) {
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
int cfg_check_map(cfg_ld *L, const cy_node *n, const char *what, const char *const *keys) {
    char qb[96];
    if (n->kind != CY_MAP)
        return cfg_fail(&L->c, n, "expected a mapping for %s, got %s", what,
                        cfg_describe(qb, sizeof(qb), n));
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

int cfg_oom(cfg_ld *L, const cy_node *n) {
    return cfg_fail(&L->c, n, "out of memory");
}

char *cfg_dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------------------- scalars */

int cfg_scalar(cfg_ld *L, const cy_node *v, const char *key) {
    char qb[96];
    if (v->kind != CY_SCALAR)
        return cfg_fail(&L->c, v, "expected a string for \"%s\", got %s", key,
                        cfg_describe(qb, sizeof(qb), v));
    return 0;
}

/* Optional string: returns 1 and replaces *out when present, 0 when absent. */
int cfg_get_str(cfg_ld *L, const cy_node *map, const char *key, char **out) {
    const cy_node *v = cfg_val(map, key);
    if (!v)
        return 0;
    if (cfg_scalar(L, v, key))
        return -1;
    char *s = cfg_dup_str(v->str);
    if (!s)
        return cfg_oom(L, v);
    free(*out);
    *out = s;
    return 1;
}

int cfg_req_str(cfg_ld *L, const cy_node *map, const char *key, char **out, const char *what) {
    int rc = cfg_get_str(L, map, key, out);
    if (rc == 0)
        return cfg_fail(&L->c, map, "%s is missing \"%s\"", what, key);
    return rc < 0 ? -1 : 0;
}

int cfg_parse_uint(const char *s, uint64_t *out) {
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

int cfg_get_uint(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                 uint64_t *out) {
    char qb[96];
    const cy_node *v = cfg_val(map, key);
    if (!v)
        return 0;
    uint64_t x;
    if (v->kind != CY_SCALAR || cfg_parse_uint(v->str, &x))
        return cfg_fail(&L->c, v, "expected an integer, got %s", cfg_describe(qb, sizeof(qb), v));
    if (x < min || x > max)
        return cfg_fail(&L->c, v, "%s must be between %llu and %llu, got %llu", key,
                        (unsigned long long)min, (unsigned long long)max, (unsigned long long)x);
    *out = x;
    return 1;
}

int cfg_get_u32(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                uint32_t *out) {
    uint64_t x;
    int rc = cfg_get_uint(L, map, key, min, max, &x);
    if (rc == 1)
        *out = (uint32_t)x;
    return rc;
}

int cfg_get_u16(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                uint16_t *out) {
    uint64_t x;
    int rc = cfg_get_uint(L, map, key, min, max, &x);
    if (rc == 1)
        *out = (uint16_t)x;
    return rc;
}

int cfg_get_duration(cfg_ld *L, const cy_node *map, const char *key, uint64_t min_ms,
                     uint64_t *out) {
    char qb[96];
    const cy_node *v = cfg_val(map, key);
    if (!v)
        return 0;
    uint64_t ms;
    if (v->kind != CY_SCALAR || weft_parse_duration_ms(v->str, &ms))
        return cfg_fail(&L->c, v, "expected a duration like \"250ms\", got %s",
                        cfg_describe(qb, sizeof(qb), v));
    if (ms > MAX_DURATION_MS)
        return cfg_fail(&L->c, v, "%s must be at most 720h, got %s", key,
                        cfg_quote(qb, sizeof(qb), v->str));
    if (ms < min_ms)
        return cfg_fail(&L->c, v, "%s must be at least %llums, got %s", key,
                        (unsigned long long)min_ms, cfg_quote(qb, sizeof(qb), v->str));
    *out = ms;
    return 1;
}

int cfg_get_size(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                 uint64_t *out) {
    char qb[96];
    const cy_node *v = cfg_val(map, key);
    if (!v)
        return 0;
    uint64_t x;
    if (v->kind != CY_SCALAR || weft_parse_size(v->str, &x))
        return cfg_fail(&L->c, v, "expected a size like \"64KiB\", got %s",
                        cfg_describe(qb, sizeof(qb), v));
    if (x < min || x > max)
        return cfg_fail(&L->c, v, "%s must be between %llu and %llu bytes, got %s", key,
                        (unsigned long long)min, (unsigned long long)max,
                        cfg_quote(qb, sizeof(qb), v->str));
    *out = x;
    return 1;
}

int cfg_get_size32(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint32_t *out) {
    uint64_t x;
    int rc = cfg_get_size(L, map, key, min, UINT32_MAX, &x);
    if (rc == 1)
        *out = (uint32_t)x;
    return rc;
}

int cfg_get_bool(cfg_ld *L, const cy_node *map, const char *key, bool *out) {
    char qb[96];
    const cy_node *v = cfg_val(map, key);
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
    return cfg_fail(&L->c, v, "expected true or false, got %s", cfg_describe(qb, sizeof(qb), v));
}

/* Optional list: returns 1 with *out set, 0 when absent. */
int cfg_get_seq(cfg_ld *L, const cy_node *map, const char *key, const cy_node **out) {
    char qb[96];
    const cy_node *v = cfg_val(map, key);
    if (!v)
        return 0;
    if (v->kind != CY_SEQ)
        return cfg_fail(&L->c, v, "expected a list for \"%s\", got %s", key,
                        cfg_describe(qb, sizeof(qb), v));
    *out = v;
    return 1;
}

/* Names of listeners, clusters, virtual hosts, routes: visible ASCII. */
bool cfg_is_name(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

int cfg_req_name(cfg_ld *L, const cy_node *map, char **out, const char *what) {
    char qb[96];
    if (cfg_req_str(L, map, "name", out, what))
        return -1;
    const cy_node *v = cfg_val(map, "name");
    if (!**out || !cfg_is_name(*out))
        return cfg_fail(&L->c, v, "%s name must be non-empty visible ASCII without spaces, got %s",
                        what, cfg_quote(qb, sizeof(qb), *out));
    return 0;
}

/* Counts which of `keys` are present (non-null); the second one found
 * is reported when more than one is set. */
int cfg_exactly_one(cfg_ld *L, const cy_node *map, const char *const *keys, const char *what,
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
        if (cfg_is_null(k->next))
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

/* ---------------------------------------------------------------- top */

/* The first line of a token file (relative to the config file's
 * directory), at most 4 KiB. */
static int read_token_file(cfg_ld *L, const cy_node *v, char **out) {
    char qb[96];
    const char *slash = strrchr(L->c.name, '/');
    char path[4096];
    if (v->str[0] == '/' || !slash)
        snprintf(path, sizeof(path), "%s", v->str);
    else
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - L->c.name), L->c.name, v->str);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cfg_fail(&L->c, v, "cannot open admin token_file %s: %s",
                        cfg_quote(qb, sizeof(qb), path), strerror(errno));
    char buf[4097];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    buf[n] = '\0';
    char *nl = strpbrk(buf, "\r\n");
    if (nl)
        *nl = '\0';
    else if (more)
        return cfg_fail(&L->c, v, "admin token_file %s: first line longer than 4096 bytes",
                        cfg_quote(qb, sizeof(qb), path));
    *out = cfg_dup_str(buf);
    explicit_bzero(buf, sizeof(buf));
    return *out ? 0 : cfg_oom(L, v);
}

static int load_admin(cfg_ld *L, const cy_node *adm) {
    static const char *const keys[] = {"address",
                                       "port",
                                       "token",
                                       "token_file",
                                       "max_header_bytes",
                                       "max_body_bytes",
                                       "request_timeout",
                                       "max_connections",
                                       NULL};
    char qb[96];
    weft_cfg_admin *a = &L->cfg->admin;
    if (cfg_check_map(L, adm, "admin", keys))
        return -1;
    int rc = cfg_get_str(L, adm, "address", &a->address);
    if (rc < 0)
        return -1;
    if (rc == 1 && !cfg_is_ip_literal(a->address))
        return cfg_fail(&L->c, cfg_val(adm, "address"),
                        "admin address must be an IP address, got %s",
                        cfg_quote(qb, sizeof(qb), a->address));
    if (cfg_get_u16(L, adm, "port", 0, 65535, &a->port) < 0 ||
        cfg_get_size32(L, adm, "max_header_bytes", 256, &a->max_header_bytes) < 0 ||
        cfg_get_size32(L, adm, "max_body_bytes", 0, &a->max_body_bytes) < 0 ||
        cfg_get_duration(L, adm, "request_timeout", 1, &a->request_timeout_ms) < 0 ||
        cfg_get_u32(L, adm, "max_connections", 1, 65536, &a->max_connections) < 0)
        return -1;
    const cy_node *tv = cfg_val(adm, "token"), *tf = cfg_val(adm, "token_file");
    if (tv && tf)
        return cfg_fail(&L->c, tf, "admin: give either \"token\" or \"token_file\", not both");
    if (tv && cfg_get_str(L, adm, "token", &a->token) < 0)
        return -1;
    if (tf && (cfg_scalar(L, tf, "token_file") || read_token_file(L, tf, &a->token)))
        return -1;
    if (a->token) {
        const cy_node *at = tv ? tv : tf;
        if (!*a->token)
            return cfg_fail(&L->c, at, "admin token must not be empty");
        for (const char *p = a->token; *p; p++)
            if (*p <= ' ' || *p >= 0x7f)
                return cfg_fail(&L->c, at,
                                "admin token must be visible ASCII (no spaces or control "
                                "characters)");
    }
    return 0;
}

static int load_root(cfg_ld *L, const cy_node *root) {
    static const char *const keys[] = {
        "workers",   "drain_timeout", "admin",       "access_log",         "dns",
        "listeners", "clusters",      "filter_path", "allow_filter_paths", "callouts",
        NULL};
    static const char *const callout_keys[] = {"max_per_worker", "max_response_body", NULL};
    static const char *const log_keys[] = {"path", NULL};
    weft_config *cfg = L->cfg;
    cfg->drain_timeout_ms = 15000;
    cfg->callouts_max_per_worker = 1024;
    cfg->callouts_max_response_body = 1024 * 1024;
    cfg->admin.port = 15000;
    cfg->admin.max_header_bytes = 8192;
    cfg->admin.max_body_bytes = 4096;
    cfg->admin.request_timeout_ms = 10000;
    cfg->admin.max_connections = 16;
    cfg_dns_defaults(&cfg->dns);
    if (!(cfg->admin.address = cfg_dup_str("127.0.0.1")))
        return cfg_oom(L, root);
    if (root && cfg_is_null(root))
        root = NULL;
    if (root && cfg_check_map(L, root, "the top level", keys))
        return -1;
    if (root) {
        if (cfg_get_u32(L, root, "workers", 0, MAX_WORKERS, &cfg->workers) < 0 ||
            cfg_get_duration(L, root, "drain_timeout", 0, &cfg->drain_timeout_ms) < 0)
            return -1;
        const cy_node *co = cfg_val(root, "callouts");
        if (co &&
            (cfg_check_map(L, co, "callouts", callout_keys) ||
             cfg_get_u32(L, co, "max_per_worker", 1, 1000000, &cfg->callouts_max_per_worker) < 0 ||
             cfg_get_size(L, co, "max_response_body", 1, 1ull << 32,
                          &cfg->callouts_max_response_body) < 0))
            return -1;
        const cy_node *adm = cfg_val(root, "admin");
        if (adm && load_admin(L, adm))
            return -1;
        const cy_node *al = cfg_val(root, "access_log");
        if (al) {
            if (cfg_check_map(L, al, "access_log", log_keys) ||
                cfg_req_str(L, al, "path", &cfg->access_log.path, "access_log"))
                return -1;
            if (!*cfg->access_log.path)
                return cfg_fail(
                    &L->c, cfg_val(al, "path"),
                    "access_log path must not be empty (omit access_log to turn it off)");
        }
        const cy_node *dns = cfg_val(root, "dns");
        if (dns && cfg_load_dns(L, dns))
            return -1;
        /* A pushed config does not choose files: the filter directories
         * and loading by path are the operator's (static config). */
        static const char *const static_only[] = {"allow_filter_paths", "filter_path"};
        for (size_t k = 0; cfg->origin == WEFT_CONFIG_PUSHED && k < 2; k++)
            if (cfg_val(root, static_only[k]))
                return cfg_fail(&L->c, cfg_val(root, static_only[k]),
                                "%s is a static-config option: a pushed config cannot set it",
                                static_only[k]);
        if (cfg_get_bool(L, root, "allow_filter_paths", &cfg->allow_filter_paths) < 0)
            return -1;
        const cy_node *fp = NULL;
        int rc = cfg_get_seq(L, root, "filter_path", &fp);
        if (rc < 0)
            return -1;
        if (rc == 1 && fp->n) {
            cfg->filter_paths = calloc(fp->n, sizeof(char *));
            if (!cfg->filter_paths)
                return cfg_oom(L, fp);
            for (const cy_node *e = fp->first; e; e = e->next) {
                if (e->kind != CY_SCALAR || !e->len)
                    return cfg_fail(&L->c, e, "filter_path entries must be directory names");
                if (!(cfg->filter_paths[cfg->n_filter_paths++] = cfg_dup_str(e->str)))
                    return cfg_oom(L, e);
            }
        }
        const cy_node *cs = NULL;
        rc = cfg_get_seq(L, root, "clusters", &cs);
        if (rc < 0)
            return -1;
        if (rc == 1 && cs->n) {
            cfg->clusters = calloc(cs->n, sizeof(*cfg->clusters));
            if (!cfg->clusters || cfg_ns_init(&L->clusters, cs->n))
                return cfg_oom(L, cs);
            size_t i = 0;
            for (const cy_node *e = cs->first; e; e = e->next, i++) {
                /* n_clusters grows with each loaded cluster so that route
                 * lookups and duplicate checks see only complete entries. */
                cfg->n_clusters = i + 1;
                if (cfg_load_cluster(L, e, i))
                    return -1;
            }
        }
        const cy_node *ls = NULL;
        rc = cfg_get_seq(L, root, "listeners", &ls);
        if (rc < 0)
            return -1;
        if (rc == 1 && ls->n) {
            cfg->listeners = calloc(ls->n, sizeof(*cfg->listeners));
            if (!cfg->listeners || cfg_ns_init(&L->listeners, ls->n))
                return cfg_oom(L, ls);
            cfg->n_listeners = ls->n;
            size_t i = 0;
            for (const cy_node *e = ls->first; e; e = e->next, i++)
                if (cfg_load_listener(L, e, i))
                    return -1;
        }
    }
    if (cfg->workers == 0)
        cfg->workers = weft_usable_cpus(MAX_WORKERS, NULL, 0);
    return 0;
}

/* The document is freed once the config is built: only the `config:`
 * nodes of filters and the routes' `filter_config:` nodes are read later
 * (at snapshot build, through the SDK accessors), so they are copied into
 * a small document the config keeps. A big config thus holds its node
 * tree only while it is converted. */
static int keep_node(cfg_ld *L, cy_doc **keep, const void **node) {
    if (!*node)
        return 0;
    if (!*keep) {
        if (!(*keep = malloc(sizeof(**keep))))
            return cfg_fail_at(&L->c, 1, 1, "out of memory");
        weft_arena_init(&(*keep)->arena);
        (*keep)->root = NULL;
        (*keep)->scur = (*keep)->send = NULL;
        L->cfg->doc = *keep;
    }
    if (!(*node = cy_copy(*keep, *node)))
        return cfg_fail_at(&L->c, 1, 1, "out of memory");
    return 0;
}

static int keep_filter_nodes(cfg_ld *L) {
    weft_config *cfg = L->cfg;
    cy_doc *keep = NULL;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        weft_cfg_listener *li = &cfg->listeners[i];
        for (size_t f = 0; f < li->n_filters; f++)
            if (keep_node(L, &keep, &li->filters[f].node))
                return -1;
        for (size_t v = 0; li->vhosts && v < li->n_vhosts; v++)
            for (size_t r = 0; r < li->vhosts[v].n_routes; r++) {
                weft_cfg_route *rt = &li->vhosts[v].routes[r];
                for (size_t k = 0; k < rt->n_filter_cfgs; k++)
                    if (keep_node(L, &keep, &rt->filter_cfgs[k].node))
                        return -1;
            }
    }
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        weft_cfg_cluster *cl = &cfg->clusters[i];
        for (size_t f = 0; f < cl->n_transport_filters; f++)
            if (keep_node(L, &keep, &cl->transport_filters[f].node))
                return -1;
    }
    return 0;
}

/* Converts a parsed document (freed here) into a config. */
static weft_config *load_doc(cy_doc *doc, const char *name, weft_config_origin origin,
                             weft_config_error *err) {
    cfg_ld L;
    memset(&L, 0, sizeof(L));
    L.c = (cfg_ctx){name, err};
    L.cfg = calloc(1, sizeof(*L.cfg));
    if (!L.cfg || !(L.cfg->source = cfg_dup_str(name))) {
        cfg_fail_at(&L.c, 1, 1, "out of memory");
        free(L.cfg);
        cy_free(doc);
        free(doc);
        return NULL;
    }
    L.cfg->origin = origin;
    int rc = load_root(&L, doc->root);
    cfg_ns_free(&L.clusters);
    cfg_ns_free(&L.listeners);
    if (rc == 0)
        rc = keep_filter_nodes(&L);
    cy_free(doc);
    free(doc);
    if (rc == 0 && !L.cfg->source_dir) {
        const char *slash = strrchr(name, '/');
        L.cfg->source_dir =
            slash ? strndup(name, (size_t)(slash - name) + (slash == name)) : cfg_dup_str(".");
        if (!L.cfg->source_dir)
            rc = cfg_fail_at(&L.c, 1, 1, "out of memory");
    }
    if (rc) {
        weft_config_free(L.cfg); /* reads no filter node */
        return NULL;
    }
    return L.cfg;
}

static cy_doc *parse_doc(const char *data, size_t len, const char *name, weft_config_error *err) {
    cy_doc *doc = malloc(sizeof(*doc));
    if (!doc) {
        snprintf(err->msg, sizeof(err->msg), "%.200s: out of memory", name);
        return NULL;
    }
    if (cy_parse(doc, data ? data : "", data ? len : 0, name, err)) {
        free(doc);
        return NULL;
    }
    return doc;
}

weft_config *weft_config_load_buffer(const char *data, size_t len, const char *name,
                                     weft_config_error *err) {
    return weft_config_load_buffer_from(data, len, name, WEFT_CONFIG_STATIC, err);
}

weft_config *weft_config_load_buffer_from(const char *data, size_t len, const char *name,
                                          weft_config_origin origin, weft_config_error *err) {
    weft_config_error scratch;
    if (!err)
        err = &scratch;
    err->msg[0] = '\0';
    if (!name)
        name = "<config>";
    cy_doc *doc = parse_doc(data, len, name, err);
    return doc ? load_doc(doc, name, origin, err) : NULL;
}

weft_config *weft_config_load_file(const char *path, weft_config_error *err) {
    weft_config_error scratch;
    if (!err)
        err = &scratch;
    err->msg[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->msg, sizeof(err->msg), "%.200s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* Sized from fstat (plus one spare byte to see the end), so that a big
     * file is not copied into a buffer twice its size; a file that grows
     * while read still works through the doubling below. */
    struct stat st;
    size_t cap = 16384;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
        (uint64_t)st.st_size < MAX_CONFIG_FILE)
        cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    size_t len = 0;
    if (!buf) {
        snprintf(err->msg, sizeof(err->msg), "%.200s: out of memory", path);
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_CONFIG_FILE) {
                snprintf(err->msg, sizeof(err->msg), "%.200s: file is larger than %u bytes", path,
                         MAX_CONFIG_FILE);
                free(buf);
                fclose(f);
                return NULL;
            }
            size_t ncap = cap * 2 > MAX_CONFIG_FILE ? MAX_CONFIG_FILE : cap * 2;
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
    /* The text is freed before the conversion: the tree holds all of it. */
    cy_doc *doc = parse_doc(buf, len, path, err);
    free(buf);
    return doc ? load_doc(doc, path, WEFT_CONFIG_STATIC, err) : NULL;
}

/* --------------------------------------------------------------- free */

void cfg_free_strv(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void weft_config_free(weft_config *cfg) {
    if (!cfg)
        return;
    for (size_t i = 0; cfg->listeners && i < cfg->n_listeners; i++)
        cfg_free_listener(&cfg->listeners[i]);
    cfg_free_strv(cfg->filter_paths, cfg->n_filter_paths);
    free(cfg->source_dir);
    if (cfg->doc) {
        cy_free(cfg->doc);
        free(cfg->doc);
    }
    free(cfg->listeners);
    for (size_t i = 0; cfg->clusters && i < cfg->n_clusters; i++)
        cfg_free_cluster(&cfg->clusters[i]);
    free(cfg->clusters);
    free(cfg->admin.address);
    if (cfg->admin.token) {
        explicit_bzero(cfg->admin.token, strlen(cfg->admin.token));
        free(cfg->admin.token);
    }
    free(cfg->access_log.path);
    cfg_free_dns(&cfg->dns);
    free(cfg->source);
    free(cfg);
    /* A config goes with its snapshot (after a reload, once the last
     * stream on it ended): a big one leaves megabytes free in the heap,
     * which a worker's next idle tick gives back (common/memtrim.h). */
    weft_memtrim_request();
}
