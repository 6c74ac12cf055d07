/* test_router.c: virtual-host selection, route matching, rewrites,
 * redirects and build errors, on configs built by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"
#include "config/config.h"
#include "http/message.h"
#include "router/router.h"

#define S(x) ((char *)(x))

/* ---- request builder (headers laid out by hand: no codec needed) ---- */

typedef struct treq {
    weft_req_head h;
    weft_hdr hdrs[8];
} treq;

static void mkreq(treq *t, const char *method, const char *authority, const char *target) {
    memset(t, 0, sizeof(*t));
    t->h.method = weft_sv_from(method);
    t->h.authority = weft_sv_from(authority);
    t->h.target = weft_sv_from(target);
    const char *q = strchr(target, '?');
    if (q) {
        t->h.path = (weft_sv){target, (size_t)(q - target)};
        t->h.query = weft_sv_from(q + 1);
    } else {
        t->h.path = t->h.target;
        t->h.query = (weft_sv){target + strlen(target), 0};
    }
    t->h.http_minor = 1;
    t->h.content_length = -1;
    t->h.headers.v = t->hdrs;
    t->h.headers.n = 0;
    t->h.headers.cap = WEFT_ARRAY_LEN(t->hdrs);
}

static void addhdr(treq *t, const char *name, const char *value) {
    assert_true(t->h.headers.n < WEFT_ARRAY_LEN(t->hdrs));
    t->hdrs[t->h.headers.n].name = weft_sv_from(name);
    t->hdrs[t->h.headers.n].value = weft_sv_from(value);
    t->h.headers.n++;
}

/* ---- config builder ---- */

static weft_cfg_cluster clusters[] = {
    {.name = S("web")},
    {.name = S("api")},
    {.name = S("static")},
};

static weft_cfg_route route_prefix(const char *prefix, const char *cluster) {
    return (weft_cfg_route){.name = S(""),
                            .pos = {10, 5},
                            .path_kind = WEFT_STR_PREFIX,
                            .path = S(prefix),
                            .case_sensitive = true,
                            .action = WEFT_ACTION_CLUSTER,
                            .cluster = S(cluster),
                            .timeout_ms = 15000};
}

static weft_cfg_route route_kind(weft_str_match_kind kind, const char *path, const char *cluster) {
    weft_cfg_route r = route_prefix(path, cluster);
    r.path_kind = kind;
    return r;
}

static weft_config mkcfg(weft_cfg_listener *l) {
    return (weft_config){.source = S("weft.yaml"),
                         .listeners = l,
                         .n_listeners = 1,
                         .clusters = clusters,
                         .n_clusters = WEFT_ARRAY_LEN(clusters)};
}

static const char *cluster_of(const weft_router *r, treq *t) {
    const weft_route_entry *e = weft_router_match(r, &t->h);
    if (!e)
        return NULL;
    if (e->cluster_idx < 0)
        return "<none>";
    return clusters[e->cluster_idx].name;
}

static const char *match_c(const weft_router *r, const char *method, const char *authority,
                           const char *target) {
    treq t;
    mkreq(&t, method, authority, target);
    return cluster_of(r, &t);
}

static void assert_cluster(const char *got, const char *want) {
    if (!want) {
        if (got)
            fail_msg("expected no match, got \"%s\"", got);
        return;
    }
    if (!got)
        fail_msg("expected \"%s\", got no match", want);
    assert_string_equal(got, want);
}

/* ---- vhost selection ---- */

static void test_vhost_precedence(void **state) {
    (void)state;
    weft_cfg_route r_any[] = {route_prefix("/", "web")};
    weft_cfg_route r_wild[] = {route_prefix("/", "api")};
    weft_cfg_route r_deep[] = {route_prefix("/", "static")};
    weft_cfg_route r_exact[] = {route_prefix("/", "api")};
    weft_cfg_route r_v6[] = {route_prefix("/", "static")};
    char *d_any[] = {S("*")};
    char *d_wild[] = {S("*.example.com")};
    char *d_deep[] = {S("*.eu.example.com")};
    char *d_exact[] = {S("www.example.com"), S("example.org")};
    char *d_v6[] = {S("[::1]"), S("10.1.2.3")};
    weft_cfg_vhost vh[] = {
        {.name = S("any"), .domains = d_any, .n_domains = 1, .routes = r_any, .n_routes = 1},
        {.name = S("wild"), .domains = d_wild, .n_domains = 1, .routes = r_wild, .n_routes = 1},
        {.name = S("deep"), .domains = d_deep, .n_domains = 1, .routes = r_deep, .n_routes = 1},
        {.name = S("exact"), .domains = d_exact, .n_domains = 2, .routes = r_exact, .n_routes = 1},
        {.name = S("v6"), .domains = d_v6, .n_domains = 2, .routes = r_v6, .n_routes = 1},
    };
    weft_cfg_listener l = {.name = S("l"), .vhosts = vh, .n_vhosts = WEFT_ARRAY_LEN(vh)};
    weft_config cfg = mkcfg(&l);
    char err[256];
    weft_router *r = weft_router_build(&cfg, 0, err, sizeof(err));
    assert_non_null(r);

    treq t;
    const weft_route_entry *e;
    /* exact beats a matching wildcard; case-insensitive; port stripped */
    mkreq(&t, "GET", "WWW.Example.COM:8080", "/");
    e = weft_router_match(r, &t.h);
    assert_non_null(e);
    assert_string_equal(e->vhost->name, "exact");
    mkreq(&t, "GET", "example.org", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "exact");
    /* longest wildcard suffix wins regardless of order */
    mkreq(&t, "GET", "a.eu.example.com", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "deep");
    mkreq(&t, "GET", "a.us.example.com:443", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "wild");
    mkreq(&t, "GET", "API.Example.com", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "wild");
    /* "*.example.com" does not cover "example.com" itself */
    mkreq(&t, "GET", "example.com", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "any");
    /* default */
    mkreq(&t, "GET", "other.net", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "any");
    mkreq(&t, "GET", "", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "any");
    /* IPv6 with and without port, IPv4 with port */
    mkreq(&t, "GET", "[::1]:80", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "v6");
    mkreq(&t, "GET", "[::1]", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "v6");
    mkreq(&t, "GET", "[::2]:80", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "any");
    mkreq(&t, "GET", "10.1.2.3:9090", "/");
    assert_string_equal(weft_router_match(r, &t.h)->vhost->name, "v6");
    weft_router_free(r);
}

static void test_vhost_none(void **state) {
    (void)state;
    weft_cfg_route rs[] = {route_prefix("/", "web")};
    char *d[] = {S("a.com"), S("*.b.com")};
    weft_cfg_vhost vh[] = {
        {.name = S("v"), .domains = d, .n_domains = 2, .routes = rs, .n_routes = 1}};
    weft_cfg_listener l = {.name = S("l"), .vhosts = vh, .n_vhosts = 1};
    weft_config cfg = mkcfg(&l);
    char err[256];
    weft_router *r = weft_router_build(&cfg, 0, err, sizeof(err));
    assert_non_null(r);
    assert_cluster(match_c(r, "GET", "a.com", "/x"), "web");
    assert_cluster(match_c(r, "GET", "x.b.com", "/x"), "web");
    assert_cluster(match_c(r, "GET", "c.com", "/x"), NULL);
    assert_cluster(match_c(r, "GET", "b.com", "/x"), NULL);
    assert_cluster(match_c(r, "GET", "a.com.evil", "/x"), NULL);
    assert_cluster(match_c(r, "GET", "", "/x"), NULL);
    weft_router_free(r);
}

static void test_vhost_many_exact(void **state) {
    (void)state;
    /* Many exact domains over many vhosts: the sorted lookup finds each. */
    enum { NV = 40 };
    weft_cfg_route rs[NV][1];
    char names[NV][32];
    char doms[NV][2][40];
    char *dp[NV][2];
    weft_cfg_vhost vh[NV];
    for (int i = 0; i < NV; i++) {
        rs[i][0] = route_prefix("/", clusters[i % 3].name);
        snprintf(names[i], sizeof(names[i]), "v%d", i);
        snprintf(doms[i][0], sizeof(doms[i][0]), "svc%d.ns.svc.cluster.local", (i * 7) % NV);
        snprintf(doms[i][1], sizeof(doms[i][1]), "svc%d", (i * 7) % NV);
        dp[i][0] = doms[i][0];
        dp[i][1] = doms[i][1];
        vh[i] = (weft_cfg_vhost){
            .name = names[i], .domains = dp[i], .n_domains = 2, .routes = rs[i], .n_routes = 1};
    }
    weft_cfg_listener l = {.name = S("l"), .vhosts = vh, .n_vhosts = NV};
    weft_config cfg = mkcfg(&l);
    char err[256];
    weft_router *r = weft_router_build(&cfg, 0, err, sizeof(err));
    assert_non_null(r);
    for (int i = 0; i < NV; i++) {
        treq t;
        char host[64];
        snprintf(host, sizeof(host), "SVC%d.ns.svc.cluster.local:80", (i * 7) % NV);
        mkreq(&t, "GET", host, "/");
        const weft_route_entry *e = weft_router_match(r, &t.h);
        assert_non_null(e);
        assert_string_equal(e->vhost->name, names[i]);
        assert_int_equal(e->index, (uint32_t)i);
        snprintf(host, sizeof(host), "svc%d", (i * 7) % NV);
        mkreq(&t, "GET", host, "/");
        assert_string_equal(weft_router_match(r, &t.h)->vhost->name, names[i]);
    }
    assert_null(match_c(r, "GET", "svc999", "/"));
    weft_router_free(r);
}

/* ---- path matching ---- */

static weft_router *one_vhost(weft_cfg_route *rs, size_t n, weft_cfg_vhost *vh,
                              weft_cfg_listener *l, weft_config *cfg) {
    static char *any[] = {S("*")};
    *vh = (weft_cfg_vhost){
        .name = S("v"), .domains = any, .n_domains = 1, .routes = rs, .n_routes = n};
    *l = (weft_cfg_listener){.name = S("l"), .vhosts = vh, .n_vhosts = 1};
    *cfg = mkcfg(l);
    char err[256] = "";
    weft_router *r = weft_router_build(cfg, 0, err, sizeof(err));
    if (!r)
        fail_msg("build failed: %s", err);
    return r;
}

static void test_path_kinds_and_order(void **state) {
    (void)state;
    weft_cfg_route rs[] = {
        route_kind(WEFT_STR_EXACT, "/exact", "static"),
        route_kind(WEFT_STR_REGEX, "/users/[0-9]+", "api"),
        route_prefix("/api/", "api"),
        route_prefix("/", "web"),
    };
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, WEFT_ARRAY_LEN(rs), &vh, &l, &cfg);
    assert_cluster(match_c(r, "GET", "h", "/exact"), "static");
    assert_cluster(match_c(r, "GET", "h", "/exact?x=1"), "static");
    assert_cluster(match_c(r, "GET", "h", "/exact/"), "web");
    assert_cluster(match_c(r, "GET", "h", "/exactly"), "web");
    assert_cluster(match_c(r, "GET", "h", "/EXACT"), "web");
    assert_cluster(match_c(r, "GET", "h", "/users/42"), "api");
    /* regex is anchored both ends */
    assert_cluster(match_c(r, "GET", "h", "/users/42/x"), "web");
    assert_cluster(match_c(r, "GET", "h", "/v1/users/42"), "web");
    assert_cluster(match_c(r, "GET", "h", "/users/"), "web");
    assert_cluster(match_c(r, "GET", "h", "/api/"), "api");
    assert_cluster(match_c(r, "GET", "h", "/api/v1/x"), "api");
    assert_cluster(match_c(r, "GET", "h", "/api"), "web");
    assert_cluster(match_c(r, "GET", "h", "/"), "web");
    /* first matching route wins */
    const weft_route_entry *e;
    treq t;
    mkreq(&t, "GET", "h", "/api/x");
    e = weft_router_match(r, &t.h);
    assert_ptr_equal(e->cfg, &rs[2]);
    assert_int_equal(e->index, 2);
    assert_null(e->filter_cfg); /* per-route filter configs: attached by the filter runtime */
    /* every route, in listener order (the snapshot build attaches
     * per-route filter configs through these) */
    assert_int_equal(weft_router_n_routes(r), WEFT_ARRAY_LEN(rs));
    for (size_t i = 0; i < WEFT_ARRAY_LEN(rs); i++) {
        weft_route_entry *ri = weft_router_route_at(r, i);
        assert_non_null(ri);
        assert_ptr_equal(ri->cfg, &rs[i]);
        assert_int_equal(ri->index, i);
    }
    assert_null(weft_router_route_at(r, WEFT_ARRAY_LEN(rs)));
    assert_ptr_equal(weft_router_route_at(r, 2), e); /* the entry the match returns */
    weft_router_free(r);
}

static void test_regex_alternation_anchored(void **state) {
    (void)state;
    /* "^(a|b)$" not "^a|b$": the alternation must not escape the anchors. */
    weft_cfg_route rs[] = {route_kind(WEFT_STR_REGEX, "/a|/b", "api"), route_prefix("/", "web")};
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, 2, &vh, &l, &cfg);
    assert_cluster(match_c(r, "GET", "h", "/a"), "api");
    assert_cluster(match_c(r, "GET", "h", "/b"), "api");
    assert_cluster(match_c(r, "GET", "h", "/ab"), "web");
    assert_cluster(match_c(r, "GET", "h", "/xx/b"), "web");
    assert_cluster(match_c(r, "GET", "h", "/a/x"), "web");
    /* the path view is not NUL-terminated at its end: the query follows */
    assert_cluster(match_c(r, "GET", "h", "/a?q=/b"), "api");
    weft_router_free(r);
}

static void test_case_insensitive(void **state) {
    (void)state;
    weft_cfg_route rs[] = {
        route_kind(WEFT_STR_EXACT, "/Login", "static"),
        route_prefix("/Api/", "api"),
        route_kind(WEFT_STR_REGEX, "/img/[a-z]+\\.png", "static"),
        route_prefix("/", "web"),
    };
    for (size_t i = 0; i < 3; i++)
        rs[i].case_sensitive = false;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, WEFT_ARRAY_LEN(rs), &vh, &l, &cfg);
    assert_cluster(match_c(r, "GET", "h", "/LOGIN"), "static");
    assert_cluster(match_c(r, "GET", "h", "/login"), "static");
    assert_cluster(match_c(r, "GET", "h", "/api/x"), "api");
    assert_cluster(match_c(r, "GET", "h", "/API/x"), "api");
    assert_cluster(match_c(r, "GET", "h", "/IMG/Cat.PNG"), "static");
    assert_cluster(match_c(r, "GET", "h", "/img/cat.gif"), "web");
    weft_router_free(r);

    /* case-sensitive (default) does not fold */
    weft_cfg_route cs[] = {route_prefix("/Api/", "api"), route_prefix("/", "web")};
    r = one_vhost(cs, 2, &vh, &l, &cfg);
    assert_cluster(match_c(r, "GET", "h", "/api/x"), "web");
    assert_cluster(match_c(r, "GET", "h", "/Api/x"), "api");
    weft_router_free(r);
}

static void test_methods(void **state) {
    (void)state;
    char *m[] = {S("POST"), S("PUT")};
    weft_cfg_route rs[] = {route_prefix("/", "api"), route_prefix("/", "web")};
    rs[0].methods = m;
    rs[0].n_methods = 2;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, 2, &vh, &l, &cfg);
    assert_cluster(match_c(r, "POST", "h", "/x"), "api");
    assert_cluster(match_c(r, "PUT", "h", "/x"), "api");
    assert_cluster(match_c(r, "GET", "h", "/x"), "web");
    assert_cluster(match_c(r, "POSTX", "h", "/x"), "web");
    assert_cluster(match_c(r, "POS", "h", "/x"), "web");
    weft_router_free(r);
}

/* ---- header matching ---- */

static void test_headers(void **state) {
    (void)state;
    weft_cfg_kv_match h_exact[] = {
        {.name = S("x-env"), .match = {.kind = WEFT_STR_EXACT, .value = S("canary")}}};
    weft_cfg_kv_match h_prefix[] = {
        {.name = S("user-agent"), .match = {.kind = WEFT_STR_PREFIX, .value = S("curl/")}}};
    weft_cfg_kv_match h_suffix[] = {
        {.name = S("x-user"), .match = {.kind = WEFT_STR_SUFFIX, .value = S("@corp.com")}}};
    weft_cfg_kv_match h_regex[] = {
        {.name = S("x-ver"), .match = {.kind = WEFT_STR_REGEX, .value = S("v[0-9]+")}}};
    weft_cfg_kv_match h_present[] = {{.name = S("x-debug"), .match = {.kind = WEFT_STR_PRESENT}}};
    weft_cfg_kv_match h_two[] = {
        {.name = S("x-a"), .match = {.kind = WEFT_STR_EXACT, .value = S("1")}},
        {.name = S("x-b"), .match = {.kind = WEFT_STR_EXACT, .value = S("2")}},
    };
    weft_cfg_route rs[] = {
        route_prefix("/e", "api"), route_prefix("/p", "api"), route_prefix("/s", "api"),
        route_prefix("/r", "api"), route_prefix("/d", "api"), route_prefix("/t", "api"),
        route_prefix("/", "web"),
    };
    rs[0].headers = h_exact, rs[0].n_headers = 1;
    rs[1].headers = h_prefix, rs[1].n_headers = 1;
    rs[2].headers = h_suffix, rs[2].n_headers = 1;
    rs[3].headers = h_regex, rs[3].n_headers = 1;
    rs[4].headers = h_present, rs[4].n_headers = 1;
    rs[5].headers = h_two, rs[5].n_headers = 2;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, WEFT_ARRAY_LEN(rs), &vh, &l, &cfg);
    treq t;

    mkreq(&t, "GET", "h", "/e");
    addhdr(&t, "x-env", "canary");
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/e");
    addhdr(&t, "x-env", "Canary"); /* values compare exactly */
    assert_cluster(cluster_of(r, &t), "web");
    mkreq(&t, "GET", "h", "/e");
    addhdr(&t, "x-env", "prod");
    addhdr(&t, "x-env", "canary"); /* any of the values */
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/e");
    assert_cluster(cluster_of(r, &t), "web");

    mkreq(&t, "GET", "h", "/p");
    addhdr(&t, "user-agent", "curl/8.5.0");
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/p");
    addhdr(&t, "user-agent", "Mozilla/5.0 curl/");
    assert_cluster(cluster_of(r, &t), "web");

    mkreq(&t, "GET", "h", "/s");
    addhdr(&t, "x-user", "ann@corp.com");
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/s");
    addhdr(&t, "x-user", "ann@corp.com.evil");
    assert_cluster(cluster_of(r, &t), "web");

    mkreq(&t, "GET", "h", "/r");
    addhdr(&t, "x-ver", "v12");
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/r");
    addhdr(&t, "x-ver", "v12-beta"); /* anchored */
    assert_cluster(cluster_of(r, &t), "web");

    mkreq(&t, "GET", "h", "/d");
    addhdr(&t, "x-debug", "");
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/d");
    addhdr(&t, "x-debugger", "1");
    assert_cluster(cluster_of(r, &t), "web");

    /* all conditions must hold */
    mkreq(&t, "GET", "h", "/t");
    addhdr(&t, "x-a", "1");
    assert_cluster(cluster_of(r, &t), "web");
    addhdr(&t, "x-b", "2");
    assert_cluster(cluster_of(r, &t), "api");
    weft_router_free(r);
}

static void test_headers_invert(void **state) {
    (void)state;
    weft_cfg_kv_match not_prod[] = {
        {.name = S("x-env"),
         .match = {.kind = WEFT_STR_EXACT, .value = S("prod"), .invert = true}}};
    weft_cfg_kv_match no_auth[] = {
        {.name = S("authorization"), .match = {.kind = WEFT_STR_PRESENT, .invert = true}}};
    weft_cfg_route rs[] = {route_prefix("/a", "api"), route_prefix("/b", "static"),
                           route_prefix("/", "web")};
    rs[0].headers = not_prod, rs[0].n_headers = 1;
    rs[1].headers = no_auth, rs[1].n_headers = 1;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, 3, &vh, &l, &cfg);
    treq t;
    mkreq(&t, "GET", "h", "/a");
    addhdr(&t, "x-env", "prod");
    assert_cluster(cluster_of(r, &t), "web");
    mkreq(&t, "GET", "h", "/a");
    addhdr(&t, "x-env", "dev");
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/a"); /* absent: "not prod" holds */
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "GET", "h", "/b");
    assert_cluster(cluster_of(r, &t), "static");
    mkreq(&t, "GET", "h", "/b");
    addhdr(&t, "authorization", "Bearer x");
    assert_cluster(cluster_of(r, &t), "web");
    weft_router_free(r);
}

/* ---- query matching ---- */

static void test_query(void **state) {
    (void)state;
    weft_cfg_kv_match q_exact[] = {
        {.name = S("v"), .match = {.kind = WEFT_STR_EXACT, .value = S("2")}}};
    weft_cfg_kv_match q_present[] = {{.name = S("debug"), .match = {.kind = WEFT_STR_PRESENT}}};
    weft_cfg_kv_match q_regex[] = {
        {.name = S("id"), .match = {.kind = WEFT_STR_REGEX, .value = S("[0-9]{3}")}}};
    weft_cfg_kv_match q_inv[] = {
        {.name = S("beta"), .match = {.kind = WEFT_STR_PRESENT, .invert = true}}};
    weft_cfg_route rs[] = {route_prefix("/e", "api"), route_prefix("/d", "api"),
                           route_prefix("/r", "api"), route_prefix("/i", "api"),
                           route_prefix("/", "web")};
    rs[0].query = q_exact, rs[0].n_query = 1;
    rs[1].query = q_present, rs[1].n_query = 1;
    rs[2].query = q_regex, rs[2].n_query = 1;
    rs[3].query = q_inv, rs[3].n_query = 1;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, WEFT_ARRAY_LEN(rs), &vh, &l, &cfg);
    assert_cluster(match_c(r, "GET", "h", "/e?v=2"), "api");
    assert_cluster(match_c(r, "GET", "h", "/e?a=1&v=2&b"), "api");
    assert_cluster(match_c(r, "GET", "h", "/e?v=22"), "web");
    assert_cluster(match_c(r, "GET", "h", "/e?vv=2"), "web");
    assert_cluster(match_c(r, "GET", "h", "/e?V=2"), "web");
    assert_cluster(match_c(r, "GET", "h", "/e?x=v=2"), "web");
    assert_cluster(match_c(r, "GET", "h", "/e"), "web");
    assert_cluster(match_c(r, "GET", "h", "/d?debug"), "api");
    assert_cluster(match_c(r, "GET", "h", "/d?a=1&debug="), "api");
    assert_cluster(match_c(r, "GET", "h", "/d?debug=0&&"), "api");
    assert_cluster(match_c(r, "GET", "h", "/d?debugx=1"), "web");
    assert_cluster(match_c(r, "GET", "h", "/d?"), "web");
    assert_cluster(match_c(r, "GET", "h", "/r?id=123"), "api");
    assert_cluster(match_c(r, "GET", "h", "/r?id=1234"), "web");
    assert_cluster(match_c(r, "GET", "h", "/r?id=123&z=1"), "api");
    assert_cluster(match_c(r, "GET", "h", "/i?x=1"), "api");
    assert_cluster(match_c(r, "GET", "h", "/i"), "api");
    assert_cluster(match_c(r, "GET", "h", "/i?x=1&beta=1"), "web");
    weft_router_free(r);
}

static void test_all_conditions(void **state) {
    (void)state;
    char *m[] = {S("GET")};
    weft_cfg_kv_match hs[] = {
        {.name = S("x-t"), .match = {.kind = WEFT_STR_EXACT, .value = S("1")}}};
    weft_cfg_kv_match qs[] = {{.name = S("q"), .match = {.kind = WEFT_STR_PRESENT}}};
    weft_cfg_route rs[] = {route_prefix("/x", "api"), route_prefix("/", "web")};
    rs[0].methods = m, rs[0].n_methods = 1;
    rs[0].headers = hs, rs[0].n_headers = 1;
    rs[0].query = qs, rs[0].n_query = 1;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, 2, &vh, &l, &cfg);
    treq t;
    mkreq(&t, "GET", "h", "/x?q");
    addhdr(&t, "x-t", "1");
    assert_cluster(cluster_of(r, &t), "api");
    mkreq(&t, "POST", "h", "/x?q");
    addhdr(&t, "x-t", "1");
    assert_cluster(cluster_of(r, &t), "web");
    mkreq(&t, "GET", "h", "/x");
    addhdr(&t, "x-t", "1");
    assert_cluster(cluster_of(r, &t), "web");
    mkreq(&t, "GET", "h", "/x?q");
    assert_cluster(cluster_of(r, &t), "web");
    mkreq(&t, "GET", "h", "/y?q");
    addhdr(&t, "x-t", "1");
    assert_cluster(cluster_of(r, &t), "web");
    weft_router_free(r);
}

static void test_non_cluster_actions(void **state) {
    (void)state;
    weft_cfg_route rs[] = {route_prefix("/old", NULL), route_prefix("/health", NULL)};
    rs[0].action = WEFT_ACTION_REDIRECT;
    rs[0].redirect_code = 301;
    rs[1].action = WEFT_ACTION_DIRECT;
    rs[1].direct_status = 200;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, 2, &vh, &l, &cfg);
    treq t;
    mkreq(&t, "GET", "h", "/old/x");
    const weft_route_entry *e = weft_router_match(r, &t.h);
    assert_non_null(e);
    assert_int_equal(e->cluster_idx, -1);
    assert_int_equal(e->cfg->action, WEFT_ACTION_REDIRECT);
    mkreq(&t, "GET", "h", "/health");
    e = weft_router_match(r, &t.h);
    assert_non_null(e);
    assert_int_equal(e->cluster_idx, -1);
    assert_int_equal(e->cfg->action, WEFT_ACTION_DIRECT);
    assert_null(match_c(r, "GET", "h", "/other"));
    weft_router_free(r);
}

/* ---- rewrite and redirect ---- */

static weft_sv rewrite(weft_router *r, const char *target, weft_arena *a) {
    treq t;
    mkreq(&t, "GET", "h", target);
    const weft_route_entry *e = weft_router_match(r, &t.h);
    assert_non_null(e);
    return weft_route_rewrite_target(e, &t.h, a);
}

static void assert_sv(weft_sv got, const char *want) {
    if (got.len != strlen(want) || memcmp(got.p, want, got.len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)got.len, got.p ? got.p : "", want);
}

static void test_rewrite(void **state) {
    (void)state;
    weft_cfg_route rs[] = {
        route_prefix("/api/v1/", "api"),
        route_kind(WEFT_STR_EXACT, "/old-home", "web"),
        route_prefix("/Static", "static"),
        route_prefix("/", "web"),
    };
    rs[0].prefix_rewrite = S("/v1/");
    rs[1].prefix_rewrite = S("/home");
    rs[2].prefix_rewrite = S("/assets");
    rs[2].case_sensitive = false;
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, WEFT_ARRAY_LEN(rs), &vh, &l, &cfg);
    weft_arena a;
    weft_arena_init(&a);
    assert_sv(rewrite(r, "/api/v1/users/7", &a), "/v1/users/7");
    assert_sv(rewrite(r, "/api/v1/users?limit=5&x=1", &a), "/v1/users?limit=5&x=1");
    assert_sv(rewrite(r, "/api/v1/", &a), "/v1/");
    assert_sv(rewrite(r, "/old-home?ref=a", &a), "/home?ref=a");
    assert_sv(rewrite(r, "/STATIC/app.js", &a), "/assets/app.js");
    /* no rewrite: the original target, untouched */
    const char *orig = "/plain/path?a=b";
    weft_sv same = rewrite(r, orig, &a);
    assert_ptr_equal(same.p, orig);
    assert_int_equal(same.len, strlen(orig));
    /* result is NUL-terminated arena memory */
    weft_sv rw = rewrite(r, "/api/v1/z", &a);
    assert_int_equal(rw.p[rw.len], '\0');
    weft_arena_free(&a);
    weft_router_free(r);
}

static weft_sv redirect(weft_router *r, const char *authority, const char *target,
                        const char *scheme, weft_arena *a) {
    treq t;
    mkreq(&t, "GET", authority, target);
    const weft_route_entry *e = weft_router_match(r, &t.h);
    assert_non_null(e);
    assert_int_equal(e->cfg->action, WEFT_ACTION_REDIRECT);
    return weft_route_redirect_location(e, &t.h, scheme, a);
}

static void test_redirect(void **state) {
    (void)state;
    weft_cfg_route rs[] = {
        route_prefix("/secure", NULL), route_prefix("/move", NULL), route_prefix("/old/", NULL),
        route_prefix("/fixed", NULL),  route_prefix("/q", NULL),    route_prefix("/gone", NULL),
        route_prefix("/", NULL),
    };
    for (size_t i = 0; i < WEFT_ARRAY_LEN(rs); i++) {
        rs[i].action = WEFT_ACTION_REDIRECT;
        rs[i].redirect_code = 301;
    }
    rs[0].redirect_scheme = S("https");
    rs[1].redirect_host = S("new.example.com");
    rs[2].redirect_prefix = S("/new/");
    rs[3].redirect_path = S("/landing");
    rs[4].redirect_path = S("/search?src=redirect");
    rs[5].redirect_prefix = S("");
    weft_cfg_vhost vh;
    weft_cfg_listener l;
    weft_config cfg;
    weft_router *r = one_vhost(rs, WEFT_ARRAY_LEN(rs), &vh, &l, &cfg);
    weft_arena a;
    weft_arena_init(&a);
    assert_sv(redirect(r, "example.com", "/secure/x?a=1", "http", &a),
              "https://example.com/secure/x?a=1");
    /* the default port of the old scheme goes away with the scheme */
    assert_sv(redirect(r, "example.com:80", "/secure", "http", &a), "https://example.com/secure");
    assert_sv(redirect(r, "example.com:8080", "/secure", "http", &a),
              "https://example.com:8080/secure");
    assert_sv(redirect(r, "[::1]:80", "/secure", "http", &a), "https://[::1]/secure");
    assert_sv(redirect(r, "example.com", "/move/a?b=c", "http", &a),
              "http://new.example.com/move/a?b=c");
    assert_sv(redirect(r, "example.com", "/old/page/1?p=2", "https", &a),
              "https://example.com/new/page/1?p=2");
    assert_sv(redirect(r, "example.com", "/fixed/x?keep=1", "http", &a),
              "http://example.com/landing?keep=1");
    /* redirect_path with its own query drops the request's query */
    assert_sv(redirect(r, "example.com", "/q?term=x", "http", &a),
              "http://example.com/search?src=redirect");
    /* prefix replaced by "": the rest of the path remains; empty -> "/" */
    assert_sv(redirect(r, "example.com", "/gone/x?y", "http", &a), "http://example.com/x?y");
    assert_sv(redirect(r, "example.com", "/gone", "http", &a), "http://example.com/");
    assert_sv(redirect(r, "Example.com:8443", "/else", "https", &a),
              "https://Example.com:8443/else");
    weft_arena_free(&a);
    weft_router_free(r);
}

/* ---- build errors ---- */

static void test_build_errors(void **state) {
    (void)state;
    char *any[] = {S("*")};
    char err[256];

    weft_cfg_route bad_cluster[] = {route_prefix("/", "web"), route_prefix("/x", "reviews")};
    bad_cluster[1].pos = (weft_cfg_pos){14, 7};
    weft_cfg_vhost vh = {
        .name = S("v"), .domains = any, .n_domains = 1, .routes = bad_cluster, .n_routes = 2};
    weft_cfg_listener l = {.name = S("l"), .vhosts = &vh, .n_vhosts = 1};
    weft_config cfg = mkcfg(&l);
    assert_null(weft_router_build(&cfg, 0, err, sizeof(err)));
    assert_string_equal(err, "weft.yaml:14:7: route names unknown cluster \"reviews\"");

    weft_cfg_route bad_re[] = {route_kind(WEFT_STR_REGEX, "/a(b", "web")};
    bad_re[0].pos = (weft_cfg_pos){3, 9};
    vh.routes = bad_re;
    vh.n_routes = 1;
    assert_null(weft_router_build(&cfg, 0, err, sizeof(err)));
    assert_true(strncmp(err, "weft.yaml:3:9: bad regex \"/a(b\"",
                        strlen("weft.yaml:3:9: bad regex \"/a(b\"")) == 0);

    weft_cfg_kv_match bad_hdr[] = {
        {.name = S("x"), .match = {.kind = WEFT_STR_REGEX, .value = S("[z-a]")}}};
    weft_cfg_route hr[] = {route_prefix("/", "web")};
    hr[0].pos = (weft_cfg_pos){22, 3};
    hr[0].headers = bad_hdr;
    hr[0].n_headers = 1;
    vh.routes = hr;
    assert_null(weft_router_build(&cfg, 0, err, sizeof(err)));
    assert_true(strncmp(err, "weft.yaml:22:3: bad regex \"[z-a]\"",
                        strlen("weft.yaml:22:3: bad regex \"[z-a]\"")) == 0);

    weft_cfg_kv_match bad_q[] = {
        {.name = S("x"), .match = {.kind = WEFT_STR_REGEX, .value = S("a{2,1}")}}};
    hr[0].headers = NULL;
    hr[0].n_headers = 0;
    hr[0].query = bad_q;
    hr[0].n_query = 1;
    assert_null(weft_router_build(&cfg, 0, err, sizeof(err)));
    assert_true(strncmp(err, "weft.yaml:22:3: bad regex", strlen("weft.yaml:22:3: bad regex")) ==
                0);

    /* out-of-range listener */
    assert_null(weft_router_build(&cfg, 3, err, sizeof(err)));
    assert_true(strlen(err) > 0);

    /* a valid config after the failures still builds (nothing leaked: ASan) */
    hr[0].query = NULL;
    hr[0].n_query = 0;
    weft_router *r = weft_router_build(&cfg, 0, err, sizeof(err));
    assert_non_null(r);
    weft_router_free(r);
    weft_router_free(NULL);
}

static void test_empty_listener(void **state) {
    (void)state;
    weft_cfg_listener l = {.name = S("l")};
    weft_config cfg = mkcfg(&l);
    char err[64];
    weft_router *r = weft_router_build(&cfg, 0, err, sizeof(err));
    assert_non_null(r);
    assert_null(match_c(r, "GET", "h", "/"));
    assert_int_equal(weft_router_n_routes(r), 0);
    assert_null(weft_router_route_at(r, 0));
    weft_router_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vhost_precedence),
        cmocka_unit_test(test_vhost_none),
        cmocka_unit_test(test_vhost_many_exact),
        cmocka_unit_test(test_path_kinds_and_order),
        cmocka_unit_test(test_regex_alternation_anchored),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_headers_invert),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_all_conditions),
        cmocka_unit_test(test_non_cluster_actions),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_empty_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
