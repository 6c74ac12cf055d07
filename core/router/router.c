/* router.c: virtual hosts and routes of one listener, compiled once from
 * the config and shared read-only by all workers.
 *
 * Virtual host lookup: the authority's host (port stripped, IPv6 kept in
 * brackets) is compared case-insensitively with precomputed lower-case
 * domains: exact domains live in a sorted array (binary search), "*suffix"
 * wildcards in an array sorted longest-suffix first, "*" last.
 *
 * Matching allocates nothing; rewrite and redirect build their strings in
 * the caller's arena. */
#include "router/router.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rt_kv {
    const weft_cfg_kv_match *cfg;
    weft_sv name;
    weft_sv value;
    bool has_re;
    regex_t re;
} rt_kv;

typedef struct rt_route {
    weft_route_entry e;
    weft_sv path;
    bool icase;
    bool has_re;
    regex_t re;
    rt_kv *hdrs;
    size_t n_hdrs;
    rt_kv *query;
    size_t n_query;
} rt_route;

typedef struct rt_vhost {
    const weft_cfg_vhost *cfg;
    rt_route *routes;
    size_t n_routes;
} rt_vhost;

typedef struct rt_domain {
    char *name; /* lower-case; for wildcards the part after '*' */
    size_t len;
    uint32_t vh;    /* index into router->vh */
    uint32_t order; /* declaration order, breaks ties (first wins) */
} rt_domain;

struct weft_router {
    rt_vhost *vh;
    size_t n_vh;
    rt_domain *exact;
    size_t n_exact;
    rt_domain *wild;
    size_t n_wild;
    int star; /* vhost index of "*", or -1 */
};

/* ---- small helpers ---- */

static inline unsigned char lc(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool mem_ieq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
            return false;
    return true;
}

static bool mem_eq(const char *a, const char *b, size_t n) {
    return n == 0 || memcmp(a, b, n) == 0;
}

/* Matches the whole view with REG_STARTEND, so no NUL-terminated copy is
 * needed. The pattern was anchored at compile time. */
static bool regex_match_sv(const regex_t *re, weft_sv s) {
    static const char empty[] = "";
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)s.len;
    return regexec(re, s.p ? s.p : empty, 1, m, REG_STARTEND) == 0;
}

/* The host part of an authority: "[v6]:port" -> "[v6]", "host:port" ->
 * "host"; a bare IPv6 literal (several colons, no brackets) is kept whole. */
static weft_sv authority_host(weft_sv a) {
    if (a.len == 0)
        return a;
    if (a.p[0] == '[') {
        const char *e = memchr(a.p, ']', a.len);
        if (e)
            a.len = (size_t)(e - a.p) + 1;
        return a;
    }
    const char *c = memchr(a.p, ':', a.len);
    if (c && !memchr(c + 1, ':', a.len - (size_t)(c + 1 - a.p)))
        a.len = (size_t)(c - a.p);
    return a;
}

/* Compares a mixed-case host with a lower-case domain, like strcmp. */
static int host_cmp(weft_sv host, const char *dom, size_t dlen) {
    size_t n = host.len < dlen ? host.len : dlen;
    for (size_t i = 0; i < n; i++) {
        unsigned char h = lc((unsigned char)host.p[i]), d = (unsigned char)dom[i];
        if (h != d)
            return h < d ? -1 : 1;
    }
    return host.len < dlen ? -1 : host.len > dlen;
}

/* ---- build ---- */

static const char *src_name(const weft_config *cfg) {
    return cfg->source && *cfg->source ? cfg->source : "<config>";
}

static int compile_anchored(regex_t *re, const char *pat, bool icase, const weft_config *cfg,
                            const weft_cfg_route *rc, char *err, size_t errlen) {
    size_t plen = strlen(pat);
    char *anch = malloc(plen + 5);
    if (!anch) {
        snprintf(err, errlen, "%s:%u:%u: out of memory", src_name(cfg), rc->pos.line, rc->pos.col);
        return -1;
    }
    memcpy(anch, "^(", 2);
    memcpy(anch + 2, pat, plen);
    memcpy(anch + 2 + plen, ")$", 3);
    int flags = REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0);
    int rc_ = regcomp(re, anch, flags);
    free(anch);
    if (rc_ != 0) {
        char why[160];
        regerror(rc_, re, why, sizeof(why));
        snprintf(err, errlen, "%s:%u:%u: bad regex \"%s\": %s", src_name(cfg), rc->pos.line,
                 rc->pos.col, pat, why);
        return -1;
    }
    return 0;
}

static int build_kvs(rt_kv **out, size_t *n_out, const weft_cfg_kv_match *src, size_t n,
                     const weft_config *cfg, const weft_cfg_route *rc, char *err, size_t errlen) {
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    rt_kv *v = calloc(n, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "%s:%u:%u: out of memory", src_name(cfg), rc->pos.line, rc->pos.col);
        return -1;
    }
    *out = v;
    for (size_t i = 0; i < n; i++) {
        v[i].cfg = &src[i];
        v[i].name = weft_sv_from(src[i].name);
        v[i].value = weft_sv_from(src[i].match.value);
        if (src[i].match.kind == WEFT_STR_REGEX) {
            if (compile_anchored(&v[i].re, src[i].match.value ? src[i].match.value : "", false, cfg,
                                 rc, err, errlen))
                return -1;
            v[i].has_re = true;
        }
        *n_out = i + 1;
    }
    return 0;
}

static void free_kvs(rt_kv *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i].has_re)
            regfree(&v[i].re);
    free(v);
}

static int find_cluster(const weft_config *cfg, const char *name) {
    if (!name)
        return -1;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (cfg->clusters[i].name && strcmp(cfg->clusters[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int build_route(rt_route *r, const weft_config *cfg, const weft_cfg_vhost *vh,
                       const weft_cfg_route *rc, uint32_t index, char *err, size_t errlen) {
    r->e.cfg = rc;
    r->e.vhost = vh;
    r->e.index = index;
    r->e.cluster_idx = -1;
    r->path = weft_sv_from(rc->path);
    r->icase = !rc->case_sensitive;
    if (rc->action == WEFT_ACTION_CLUSTER) {
        r->e.cluster_idx = find_cluster(cfg, rc->cluster);
        if (r->e.cluster_idx < 0) {
            if (rc->cluster)
                snprintf(err, errlen, "%s:%u:%u: route names unknown cluster \"%s\"", src_name(cfg),
                         rc->pos.line, rc->pos.col, rc->cluster);
            else
                snprintf(err, errlen, "%s:%u:%u: route has no cluster", src_name(cfg), rc->pos.line,
                         rc->pos.col);
            return -1;
        }
    }
    if (rc->path_kind == WEFT_STR_REGEX) {
        if (compile_anchored(&r->re, rc->path ? rc->path : "", r->icase, cfg, rc, err, errlen))
            return -1;
        r->has_re = true;
    }
    if (build_kvs(&r->hdrs, &r->n_hdrs, rc->headers, rc->n_headers, cfg, rc, err, errlen))
        return -1;
    if (build_kvs(&r->query, &r->n_query, rc->query, rc->n_query, cfg, rc, err, errlen))
        return -1;
    return 0;
}

static int exact_cmp(const void *a, const void *b) {
    const rt_domain *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int wild_cmp(const void *a, const void *b) {
    const rt_domain *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static char *lower_dup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)lc((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

static int build_domains(weft_router *r, const weft_cfg_listener *l, const weft_config *cfg,
                         char *err, size_t errlen) {
    size_t total = 0;
    for (size_t i = 0; i < l->n_vhosts; i++)
        total += l->vhosts[i].n_domains;
    r->exact = calloc(total ? total : 1, sizeof(*r->exact));
    r->wild = calloc(total ? total : 1, sizeof(*r->wild));
    if (!r->exact || !r->wild)
        goto oom;
    uint32_t order = 0;
    for (size_t i = 0; i < l->n_vhosts; i++) {
        const weft_cfg_vhost *vh = &l->vhosts[i];
        for (size_t j = 0; j < vh->n_domains; j++, order++) {
            const char *d = vh->domains[j];
            if (!d)
                continue;
            size_t len = strlen(d);
            if (len == 1 && d[0] == '*') {
                if (r->star < 0)
                    r->star = (int)i;
                continue;
            }
            rt_domain *slot = d[0] == '*' ? &r->wild[r->n_wild++] : &r->exact[r->n_exact++];
            const char *s = d[0] == '*' ? d + 1 : d;
            size_t slen = d[0] == '*' ? len - 1 : len;
            slot->name = lower_dup(s, slen);
            if (!slot->name)
                goto oom;
            slot->len = slen;
            slot->vh = (uint32_t)i;
            slot->order = order;
        }
    }
    if (r->n_exact)
        qsort(r->exact, r->n_exact, sizeof(*r->exact), exact_cmp);
    if (r->n_wild)
        qsort(r->wild, r->n_wild, sizeof(*r->wild), wild_cmp);
    return 0;
oom:
    snprintf(err, errlen, "%s:%u:%u: out of memory", src_name(cfg), l->pos.line, l->pos.col);
    return -1;
}

weft_router *weft_router_build(const weft_config *cfg, size_t listener_idx, char *err,
                               size_t errlen) {
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!cfg || listener_idx >= cfg->n_listeners) {
        snprintf(err, errlen, "%s: no listener #%zu", cfg ? src_name(cfg) : "<config>",
                 listener_idx);
        return NULL;
    }
    const weft_cfg_listener *l = &cfg->listeners[listener_idx];
    weft_router *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", src_name(cfg));
        return NULL;
    }
    r->star = -1;
    r->vh = calloc(l->n_vhosts ? l->n_vhosts : 1, sizeof(*r->vh));
    if (!r->vh) {
        snprintf(err, errlen, "%s: out of memory", src_name(cfg));
        free(r);
        return NULL;
    }
    r->n_vh = l->n_vhosts;
    uint32_t index = 0;
    for (size_t i = 0; i < l->n_vhosts; i++) {
        const weft_cfg_vhost *vh = &l->vhosts[i];
        r->vh[i].cfg = vh;
        if (vh->n_routes == 0)
            continue;
        r->vh[i].routes = calloc(vh->n_routes, sizeof(*r->vh[i].routes));
        if (!r->vh[i].routes) {
            snprintf(err, errlen, "%s:%u:%u: out of memory", src_name(cfg), vh->pos.line,
                     vh->pos.col);
            goto fail;
        }
        for (size_t j = 0; j < vh->n_routes; j++) {
            /* Count the route before building it so that free releases
             * whatever part of it was built. */
            r->vh[i].n_routes = j + 1;
            if (build_route(&r->vh[i].routes[j], cfg, vh, &vh->routes[j], index++, err, errlen))
                goto fail;
        }
    }
    if (build_domains(r, l, cfg, err, errlen))
        goto fail;
    return r;
fail:
    weft_router_free(r);
    return NULL;
}

size_t weft_router_n_routes(const weft_router *r) {
    size_t n = 0;
    for (size_t i = 0; r && i < r->n_vh; i++)
        n += r->vh[i].n_routes;
    return n;
}

weft_route_entry *weft_router_route_at(weft_router *r, size_t i) {
    for (size_t v = 0; r && v < r->n_vh; v++) {
        if (i < r->vh[v].n_routes)
            return &r->vh[v].routes[i].e;
        i -= r->vh[v].n_routes;
    }
    return NULL;
}

void weft_router_free(weft_router *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n_vh; i++) {
        rt_vhost *vh = &r->vh[i];
        for (size_t j = 0; j < vh->n_routes; j++) {
            rt_route *rt = &vh->routes[j];
            if (rt->has_re)
                regfree(&rt->re);
            free_kvs(rt->hdrs, rt->n_hdrs);
            free_kvs(rt->query, rt->n_query);
        }
        free(vh->routes);
    }
    free(r->vh);
    if (r->exact)
        for (size_t i = 0; i < r->n_exact; i++)
            free(r->exact[i].name);
    if (r->wild)
        for (size_t i = 0; i < r->n_wild; i++)
            free(r->wild[i].name);
    free(r->exact);
    free(r->wild);
    free(r);
}

/* ---- match ---- */

static const rt_vhost *find_vhost(const weft_router *r, weft_sv authority) {
    weft_sv host = authority_host(authority);
    /* Exact: lower_bound on the sorted domains; equal names are ordered by
     * declaration, so the first hit is the first declared. */
    size_t lo = 0, hi = r->n_exact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (host_cmp(host, r->exact[mid].name, r->exact[mid].len) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < r->n_exact && host_cmp(host, r->exact[lo].name, r->exact[lo].len) == 0)
        return &r->vh[r->exact[lo].vh];
    /* Wildcards, longest suffix first; "*.a.com" needs at least one char
     * before the suffix, so it does not match "a.com" itself. */
    for (size_t i = 0; i < r->n_wild; i++) {
        const rt_domain *d = &r->wild[i];
        if (host.len > d->len &&
            host_cmp((weft_sv){host.p + host.len - d->len, d->len}, d->name, d->len) == 0)
            return &r->vh[d->vh];
    }
    if (r->star >= 0)
        return &r->vh[r->star];
    return NULL;
}

static bool path_matches(const rt_route *rt, weft_sv path) {
    switch (rt->e.cfg->path_kind) {
    case WEFT_STR_EXACT:
        if (path.len != rt->path.len)
            return false;
        return rt->icase ? mem_ieq(path.p, rt->path.p, path.len)
                         : mem_eq(path.p, rt->path.p, path.len);
    case WEFT_STR_PREFIX:
        if (path.len < rt->path.len)
            return false;
        return rt->icase ? mem_ieq(path.p, rt->path.p, rt->path.len)
                         : mem_eq(path.p, rt->path.p, rt->path.len);
    case WEFT_STR_REGEX:
        return rt->has_re && regex_match_sv(&rt->re, path);
    case WEFT_STR_SUFFIX:
        if (path.len < rt->path.len)
            return false;
        return rt->icase ? mem_ieq(path.p + path.len - rt->path.len, rt->path.p, rt->path.len)
                         : mem_eq(path.p + path.len - rt->path.len, rt->path.p, rt->path.len);
    case WEFT_STR_PRESENT:
        return true;
    }
    return false;
}

/* Value test of one header/query condition (PRESENT is handled by the
 * caller: any value satisfies it). */
static bool value_matches(const rt_kv *k, weft_sv v) {
    switch (k->cfg->match.kind) {
    case WEFT_STR_EXACT:
        return v.len == k->value.len && mem_eq(v.p, k->value.p, v.len);
    case WEFT_STR_PREFIX:
        return weft_sv_has_prefix(v, k->value);
    case WEFT_STR_SUFFIX:
        return weft_sv_has_suffix(v, k->value);
    case WEFT_STR_REGEX:
        return k->has_re && regex_match_sv(&k->re, v);
    case WEFT_STR_PRESENT:
        return true;
    }
    return false;
}

/* A header condition holds when some header of that name is present and
 * its value matches (any value for PRESENT); "invert" negates that, so an
 * inverted condition also holds when the header is absent. */
static bool header_cond(const rt_kv *k, const weft_hdrs *h) {
    bool hit = false;
    for (uint32_t i = 0; i < h->n && !hit; i++) {
        const weft_hdr *x = &h->v[i];
        if (x->name.len == k->name.len && mem_ieq(x->name.p, k->name.p, x->name.len))
            hit = value_matches(k, x->value);
    }
    return hit != k->cfg->match.invert;
}

/* Same for query parameters: "a=1&b&c=" gives a="1", b="" and c="". */
static bool query_cond(const rt_kv *k, weft_sv q) {
    bool hit = false;
    const char *p = q.p, *end = q.p + q.len;
    while (p && p < end && !hit) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        weft_sv name = {p, (size_t)((eq ? eq : stop) - p)};
        weft_sv val = eq ? (weft_sv){eq + 1, (size_t)(stop - eq - 1)} : (weft_sv){stop, 0};
        if (name.len == k->name.len && mem_eq(name.p, k->name.p, name.len))
            hit = value_matches(k, val);
        p = amp ? amp + 1 : end;
    }
    return hit != k->cfg->match.invert;
}

static bool route_matches(const rt_route *rt, const weft_req_head *req) {
    const weft_cfg_route *rc = rt->e.cfg;
    if (!path_matches(rt, req->path))
        return false;
    if (rc->n_methods) {
        bool ok = false;
        for (size_t i = 0; i < rc->n_methods && !ok; i++) {
            size_t ml = strlen(rc->methods[i]);
            ok = req->method.len == ml && mem_eq(req->method.p, rc->methods[i], ml);
        }
        if (!ok)
            return false;
    }
    for (size_t i = 0; i < rt->n_hdrs; i++)
        if (!header_cond(&rt->hdrs[i], &req->headers))
            return false;
    for (size_t i = 0; i < rt->n_query; i++)
        if (!query_cond(&rt->query[i], req->query))
            return false;
    return true;
}

const weft_route_entry *weft_router_match(const weft_router *r, const weft_req_head *req) {
    if (!r || !req)
        return NULL;
    const rt_vhost *vh = find_vhost(r, req->authority);
    if (!vh)
        return NULL;
    for (size_t i = 0; i < vh->n_routes; i++)
        if (route_matches(&vh->routes[i], req))
            return &vh->routes[i].e;
    return NULL;
}

/* ---- rewrite / redirect ---- */

typedef struct sbuild {
    weft_sv part[8];
    size_t n;
} sbuild;

static void sb_add(sbuild *b, weft_sv s) {
    if (s.len && b->n < WEFT_ARRAY_LEN(b->part))
        b->part[b->n++] = s;
}

/* Concatenates the parts into the arena; {NULL, 0} on OOM. */
static weft_sv sb_finish(const sbuild *b, weft_arena *a) {
    size_t len = 0;
    for (size_t i = 0; i < b->n; i++)
        len += b->part[i].len;
    char *out = weft_arena_alloc(a, len + 1);
    if (!out)
        return (weft_sv){NULL, 0};
    size_t off = 0;
    for (size_t i = 0; i < b->n; i++) {
        memcpy(out + off, b->part[i].p, b->part[i].len);
        off += b->part[i].len;
    }
    out[len] = '\0';
    return (weft_sv){out, len};
}

/* The rest of the path after what the route matched: after the prefix for
 * PREFIX routes; nothing for EXACT and REGEX routes (they match it all). */
static weft_sv path_rest(const weft_cfg_route *rc, weft_sv path) {
    if (rc->path_kind == WEFT_STR_PREFIX && rc->path) {
        size_t cut = strlen(rc->path);
        if (cut > path.len)
            cut = path.len;
        return (weft_sv){path.p + cut, path.len - cut};
    }
    return (weft_sv){path.p, 0};
}

static bool target_has_query(const weft_req_head *req) {
    return req->query.len > 0 || (req->target.len && memchr(req->target.p, '?', req->target.len));
}

weft_sv weft_route_rewrite_target(const weft_route_entry *e, const weft_req_head *req,
                                  weft_arena *a) {
    const weft_cfg_route *rc = e->cfg;
    if (!rc->prefix_rewrite)
        return req->target;
    sbuild b = {.n = 0};
    sb_add(&b, weft_sv_from(rc->prefix_rewrite));
    sb_add(&b, path_rest(rc, req->path));
    if (b.n == 0)
        sb_add(&b, WEFT_SV_LIT("/"));
    if (target_has_query(req)) {
        sb_add(&b, WEFT_SV_LIT("?"));
        sb_add(&b, req->query);
    }
    return sb_finish(&b, a);
}

/* "host:80" for http (":443" for https) loses its port when the scheme
 * changes, the way browsers and Envoy treat default ports. */
static weft_sv strip_default_port(weft_sv authority, const char *old_scheme) {
    weft_sv host = authority_host(authority);
    if (host.len == authority.len)
        return authority;
    weft_sv port = {authority.p + host.len + 1, authority.len - host.len - 1};
    if ((strcmp(old_scheme, "http") == 0 && weft_sv_eq(port, WEFT_SV_LIT("80"))) ||
        (strcmp(old_scheme, "https") == 0 && weft_sv_eq(port, WEFT_SV_LIT("443"))))
        return host;
    return authority;
}

weft_sv weft_route_redirect_location(const weft_route_entry *e, const weft_req_head *req,
                                     const char *scheme, weft_arena *a) {
    const weft_cfg_route *rc = e->cfg;
    const char *in_scheme = scheme && *scheme ? scheme : "http";
    const char *out_scheme = rc->redirect_scheme ? rc->redirect_scheme : in_scheme;

    weft_sv host;
    if (rc->redirect_host)
        host = weft_sv_from(rc->redirect_host);
    else if (strcmp(out_scheme, in_scheme) != 0)
        host = strip_default_port(req->authority, in_scheme);
    else
        host = req->authority;

    sbuild b = {.n = 0};
    sb_add(&b, weft_sv_from(out_scheme));
    sb_add(&b, WEFT_SV_LIT("://"));
    sb_add(&b, host);
    bool keep_query = true;
    size_t before_path = b.n;
    if (rc->redirect_path) {
        sb_add(&b, weft_sv_from(rc->redirect_path));
        keep_query = strchr(rc->redirect_path, '?') == NULL;
    } else if (rc->redirect_prefix) {
        sb_add(&b, weft_sv_from(rc->redirect_prefix));
        sb_add(&b, path_rest(rc, req->path));
    } else {
        sb_add(&b, req->path);
    }
    if (b.n == before_path)
        sb_add(&b, WEFT_SV_LIT("/"));
    if (keep_query && target_has_query(req)) {
        sb_add(&b, WEFT_SV_LIT("?"));
        sb_add(&b, req->query);
    }
    return sb_finish(&b, a);
}
