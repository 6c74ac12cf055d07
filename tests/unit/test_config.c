/* test_config.c: YAML config loader, validation errors, dump round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cpus.h"
#include "config/config.h"
#include "config/config_internal.h"

/* ------------------------------------------------------------ helpers */

static weft_config *load(const char *yaml, weft_config_error *err) {
    return weft_config_load_buffer(yaml, strlen(yaml), "weft.yaml", err);
}

static void expect_error(const char *yaml, const char *msg) {
    weft_config_error err;
    memset(&err, 0, sizeof(err));
    weft_config *cfg = load(yaml, &err);
    if (cfg) {
        weft_config_free(cfg);
        fail_msg("config loaded, expected error: %s", msg);
    }
    assert_string_equal(err.msg, msg);
}

static char *dump_to_string(const weft_config *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(weft_config_dump(cfg, f), 0);
    fclose(f);
    return buf;
}

static bool str_eq(const char *a, const char *b) {
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool strv_eq(char **a, size_t na, char **b, size_t nb) {
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return false;
    return true;
}

static bool labels_eq(const weft_cfg_endpoint *x, const weft_cfg_endpoint *y) {
    if (x->n_labels != y->n_labels)
        return false;
    for (size_t i = 0; i < x->n_labels; i++)
        if (!str_eq(x->labels[i].key, y->labels[i].key) ||
            !str_eq(x->labels[i].value, y->labels[i].value))
            return false;
    return true;
}

static bool kv_eq(const weft_cfg_kv_match *a, size_t na, const weft_cfg_kv_match *b, size_t nb) {
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i].name, b[i].name) || a[i].match.kind != b[i].match.kind ||
            !str_eq(a[i].match.value, b[i].match.value) || a[i].match.invert != b[i].match.invert)
            return false;
    return true;
}

static bool hv_eq(const weft_cfg_header_value *a, size_t na, const weft_cfg_header_value *b,
                  size_t nb) {
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i].name, b[i].name) || !str_eq(a[i].value, b[i].value) ||
            a[i].append != b[i].append)
            return false;
    return true;
}

static bool route_eq(const weft_cfg_route *a, const weft_cfg_route *b) {
    return str_eq(a->name, b->name) && a->path_kind == b->path_kind && str_eq(a->path, b->path) &&
           a->case_sensitive == b->case_sensitive &&
           strv_eq(a->methods, a->n_methods, b->methods, b->n_methods) &&
           kv_eq(a->headers, a->n_headers, b->headers, b->n_headers) &&
           kv_eq(a->query, a->n_query, b->query, b->n_query) && a->action == b->action &&
           str_eq(a->cluster, b->cluster) && a->timeout_ms == b->timeout_ms &&
           a->idle_timeout_ms == b->idle_timeout_ms &&
           str_eq(a->prefix_rewrite, b->prefix_rewrite) &&
           str_eq(a->host_rewrite, b->host_rewrite) &&
           str_eq(a->redirect_scheme, b->redirect_scheme) &&
           str_eq(a->redirect_host, b->redirect_host) &&
           str_eq(a->redirect_path, b->redirect_path) &&
           str_eq(a->redirect_prefix, b->redirect_prefix) && a->redirect_code == b->redirect_code &&
           a->direct_status == b->direct_status && str_eq(a->direct_body, b->direct_body) &&
           hv_eq(a->req_add, a->n_req_add, b->req_add, b->n_req_add) &&
           strv_eq(a->req_remove, a->n_req_remove, b->req_remove, b->n_req_remove) &&
           hv_eq(a->resp_add, a->n_resp_add, b->resp_add, b->n_resp_add) &&
           strv_eq(a->resp_remove, a->n_resp_remove, b->resp_remove, b->n_resp_remove);
}

static bool limits_eq(const weft_cfg_limits *a, const weft_cfg_limits *b) {
    return a->max_header_bytes == b->max_header_bytes && a->max_headers == b->max_headers &&
           a->max_uri_len == b->max_uri_len && a->max_body_bytes == b->max_body_bytes &&
           a->headers_timeout_ms == b->headers_timeout_ms &&
           a->idle_timeout_ms == b->idle_timeout_ms &&
           a->stream_idle_timeout_ms == b->stream_idle_timeout_ms &&
           a->max_connections == b->max_connections &&
           a->buffer_high_watermark == b->buffer_high_watermark &&
           a->filter_arena_bytes == b->filter_arena_bytes &&
           a->filter_metadata_entries == b->filter_metadata_entries &&
           a->filter_timers == b->filter_timers && a->filter_callouts == b->filter_callouts;
}

/* Deep equality of everything but positions and source. */
static bool config_eq(const weft_config *a, const weft_config *b) {
    if (a->workers != b->workers || a->drain_timeout_ms != b->drain_timeout_ms ||
        !str_eq(a->admin.address, b->admin.address) || a->admin.port != b->admin.port ||
        a->admin.max_header_bytes != b->admin.max_header_bytes ||
        a->admin.max_body_bytes != b->admin.max_body_bytes ||
        a->admin.request_timeout_ms != b->admin.request_timeout_ms ||
        a->admin.max_connections != b->admin.max_connections ||
        !str_eq(a->access_log.path, b->access_log.path) || a->n_listeners != b->n_listeners ||
        a->n_clusters != b->n_clusters)
        return false;
    for (size_t i = 0; i < a->n_listeners; i++) {
        const weft_cfg_listener *x = &a->listeners[i], *y = &b->listeners[i];
        if (!str_eq(x->name, y->name) || !str_eq(x->address, y->address) || x->port != y->port ||
            !limits_eq(&x->limits, &y->limits) || x->n_vhosts != y->n_vhosts ||
            x->is_tcp != y->is_tcp || !str_eq(x->tcp_cluster, y->tcp_cluster) ||
            x->tcp_idle_timeout_ms != y->tcp_idle_timeout_ms ||
            x->tcp_connect_attempts != y->tcp_connect_attempts ||
            x->normalize_path != y->normalize_path || x->merge_slashes != y->merge_slashes ||
            x->escaped_slashes != y->escaped_slashes ||
            x->preserve_external_request_id != y->preserve_external_request_id)
            return false;
        for (size_t v = 0; v < x->n_vhosts; v++) {
            const weft_cfg_vhost *p = &x->vhosts[v], *q = &y->vhosts[v];
            if (!str_eq(p->name, q->name) ||
                !strv_eq(p->domains, p->n_domains, q->domains, q->n_domains) ||
                p->n_routes != q->n_routes)
                return false;
            for (size_t r = 0; r < p->n_routes; r++)
                if (!route_eq(&p->routes[r], &q->routes[r]))
                    return false;
        }
    }
    for (size_t i = 0; i < a->n_clusters; i++) {
        const weft_cfg_cluster *x = &a->clusters[i], *y = &b->clusters[i];
        if (!str_eq(x->name, y->name) || x->n_endpoints != y->n_endpoints ||
            x->uses_dns != y->uses_dns || x->dns_refresh_ms != y->dns_refresh_ms ||
            x->lb != y->lb || x->hash_on != y->hash_on || !str_eq(x->hash_key, y->hash_key) ||
            x->ring_size != y->ring_size || x->connect_timeout_ms != y->connect_timeout_ms ||
            x->max_idle_per_endpoint != y->max_idle_per_endpoint ||
            x->pool_idle_timeout_ms != y->pool_idle_timeout_ms ||
            x->max_requests_per_connection != y->max_requests_per_connection)
            return false;
        for (size_t e = 0; e < x->n_endpoints; e++)
            if (!str_eq(x->endpoints[e].address, y->endpoints[e].address) ||
                x->endpoints[e].port != y->endpoints[e].port ||
                x->endpoints[e].weight != y->endpoints[e].weight ||
                !str_eq(x->endpoints[e].region, y->endpoints[e].region) ||
                !str_eq(x->endpoints[e].zone, y->endpoints[e].zone) ||
                !str_eq(x->endpoints[e].subzone, y->endpoints[e].subzone) ||
                !labels_eq(&x->endpoints[e], &y->endpoints[e]))
                return false;
        const weft_cfg_health_check *h = &x->health, *k = &y->health;
        if (h->enabled != k->enabled || !str_eq(h->path, k->path) || !str_eq(h->host, k->host) ||
            h->interval_ms != k->interval_ms || h->timeout_ms != k->timeout_ms ||
            h->healthy_threshold != k->healthy_threshold ||
            h->unhealthy_threshold != k->unhealthy_threshold ||
            h->expected_min != k->expected_min || h->expected_max != k->expected_max)
            return false;
    }
    return true;
}

/* Dumps cfg, loads the dump, checks equality and that dumping again gives
 * the same text. */
static void assert_round_trip(const weft_config *cfg) {
    char *text = dump_to_string(cfg);
    weft_config_error err;
    weft_config *again = weft_config_load_buffer(text, strlen(text), "dump.yaml", &err);
    if (!again)
        fail_msg("dump does not load: %s\n%s", err.msg, text);
    assert_true(config_eq(cfg, again));
    char *text2 = dump_to_string(again);
    /* identical but for the first line, which names the source */
    assert_non_null(strchr(text, '\n'));
    assert_non_null(strchr(text2, '\n'));
    assert_string_equal(strchr(text, '\n'), strchr(text2, '\n'));
    free(text2);
    free(text);
    weft_config_free(again);
}

/* ------------------------------------------------------- full config */

static const char FULL[] =
    "workers: 2\n"
    "drain_timeout: 20s\n"
    "admin: {address: 127.0.0.1, port: 15001}\n"
    "access_log: {path: stdout}\n"
    "listeners:\n"
    "  - name: ingress\n"
    "    address: 127.0.0.1\n"
    "    port: 10000\n"
    "    limits:\n"
    "      max_header_bytes: 32KiB\n"
    "      max_headers: 50\n"
    "      max_uri_length: 4KiB\n"
    "      max_body_bytes: 1MiB\n"
    "      headers_timeout: 5s\n"
    "      idle_timeout: 30s\n"
    "      stream_idle_timeout: 2m\n"
    "      max_connections: 1000\n"
    "      buffer_high_watermark: 256KiB\n"
    "    virtual_hosts:\n"
    "      - name: default\n"
    "        domains: [\"*\", \"API.Example.com\", \"*.svc.local\"]\n"
    "        routes:\n"
    "          - name: api\n"
    "            match:\n"
    "              prefix: /api\n"
    "              case_sensitive: false\n"
    "              methods: [GET, POST]\n"
    "              headers: [{name: X-Canary, exact: \"1\"}, {name: x-a, prefix: \"v\"},\n"
    "                        {name: x-b, regex: \"[0-9]+\"}, {name: x-c, present: true},\n"
    "                        {name: x-d, suffix: \".json\", invert: true}]\n"
    "              query: [{name: debug, exact: \"1\"}, {name: Q, present: true}]\n"
    "            cluster: backend\n"
    "            timeout: 2500ms\n"
    "            idle_timeout: 1m\n"
    "            prefix_rewrite: /v2\n"
    "            host_rewrite: example.internal\n"
    "            request_headers_to_add: [{name: X-Env, value: prod, append: false},\n"
    "                                     {name: x-multi, value: \"a, b\", append: true}]\n"
    "            request_headers_to_remove: [X-Debug]\n"
    "            response_headers_to_add: [{name: x-served-by, value: weft}]\n"
    "            response_headers_to_remove: [server]\n"
    "          - match: {path: /old}\n"
    "            redirect: {scheme: https, host: h, path: /new, response_code: 308}\n"
    "          - match: {prefix: /legacy}\n"
    "            redirect: {prefix_rewrite: /x}\n"
    "          - match: {prefix: /health}\n"
    "            direct_response: {status: 200, body: \"ok\\n\"}\n"
    "          - match: {regex: \"/items/[0-9]+\"}\n"
    "            direct_response: {status: 404}\n"
    "          - match: {prefix: /}\n"
    "            cluster: dns\n"
    "  - name: v6\n"
    "    address: \"::1\"\n"
    "    port: 10001\n"
    "clusters:\n"
    "  - name: backend\n"
    "    endpoints:\n"
    "      - {address: 127.0.0.1, port: 8080, weight: 1}\n"
    "      - {address: \"::1\", port: 8081, weight: 1000}\n"
    "    lb_policy: ring_hash\n"
    "    ring_hash: {hash_on: header, name: X-User, ring_size: 2048}\n"
    "    connect_timeout: 2s\n"
    "    max_idle_per_endpoint: 8\n"
    "    pool_idle_timeout: 90s\n"
    "    max_requests_per_connection: 100\n"
    "    health_check: {path: /healthz, host: backend, interval: 3s, timeout: 500ms,\n"
    "                   healthy_threshold: 1, unhealthy_threshold: 4,\n"
    "                   expected_statuses: {min: 200, max: 299}}\n"
    "  - name: dns\n"
    "    endpoints:\n"
    "      - {address: backend.local, port: 8080}\n"
    "    dns_refresh: 10s\n"
    "    lb_policy: least_request\n";

static void test_full_config(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load(FULL, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg->source, "weft.yaml");
    assert_int_equal(cfg->workers, 2);
    assert_int_equal(cfg->drain_timeout_ms, 20000);
    assert_string_equal(cfg->admin.address, "127.0.0.1");
    assert_int_equal(cfg->admin.port, 15001);
    assert_string_equal(cfg->access_log.path, "stdout");

    assert_int_equal(cfg->n_listeners, 2);
    const weft_cfg_listener *li = &cfg->listeners[0];
    assert_string_equal(li->name, "ingress");
    assert_string_equal(li->address, "127.0.0.1");
    assert_int_equal(li->port, 10000);
    assert_int_equal(li->pos.line, 6);
    assert_int_equal(li->pos.col, 5);
    assert_int_equal(li->limits.max_header_bytes, 32 * 1024);
    assert_int_equal(li->limits.max_headers, 50);
    assert_int_equal(li->limits.max_uri_len, 4096);
    assert_int_equal(li->limits.max_body_bytes, 1024 * 1024);
    assert_int_equal(li->limits.headers_timeout_ms, 5000);
    assert_int_equal(li->limits.idle_timeout_ms, 30000);
    assert_int_equal(li->limits.stream_idle_timeout_ms, 120000);
    assert_int_equal(li->limits.max_connections, 1000);
    assert_int_equal(li->limits.buffer_high_watermark, 256 * 1024);

    assert_int_equal(li->n_vhosts, 1);
    const weft_cfg_vhost *vh = &li->vhosts[0];
    assert_string_equal(vh->name, "default");
    assert_int_equal(vh->n_domains, 3);
    assert_string_equal(vh->domains[0], "*");
    assert_string_equal(vh->domains[1], "api.example.com");
    assert_string_equal(vh->domains[2], "*.svc.local");
    assert_int_equal(vh->n_routes, 6);

    const weft_cfg_route *r = &vh->routes[0];
    assert_string_equal(r->name, "api");
    assert_int_equal(r->pos.line, 23);
    assert_int_equal(r->pos.col, 13);
    assert_int_equal(r->path_kind, WEFT_STR_PREFIX);
    assert_string_equal(r->path, "/api");
    assert_false(r->case_sensitive);
    assert_int_equal(r->n_methods, 2);
    assert_string_equal(r->methods[0], "GET");
    assert_string_equal(r->methods[1], "POST");
    assert_int_equal(r->n_headers, 5);
    assert_string_equal(r->headers[0].name, "x-canary");
    assert_int_equal(r->headers[0].match.kind, WEFT_STR_EXACT);
    assert_string_equal(r->headers[0].match.value, "1");
    assert_false(r->headers[0].match.invert);
    assert_int_equal(r->headers[1].match.kind, WEFT_STR_PREFIX);
    assert_string_equal(r->headers[1].match.value, "v");
    assert_int_equal(r->headers[2].match.kind, WEFT_STR_REGEX);
    assert_string_equal(r->headers[2].match.value, "[0-9]+");
    assert_int_equal(r->headers[3].match.kind, WEFT_STR_PRESENT);
    assert_null(r->headers[3].match.value);
    assert_int_equal(r->headers[4].match.kind, WEFT_STR_SUFFIX);
    assert_string_equal(r->headers[4].match.value, ".json");
    assert_true(r->headers[4].match.invert);
    assert_int_equal(r->n_query, 2);
    assert_string_equal(r->query[0].name, "debug");
    assert_string_equal(r->query[1].name, "Q"); /* query names keep their case */
    assert_int_equal(r->query[1].match.kind, WEFT_STR_PRESENT);
    assert_int_equal(r->action, WEFT_ACTION_CLUSTER);
    assert_string_equal(r->cluster, "backend");
    assert_int_equal(r->timeout_ms, 2500);
    assert_int_equal(r->idle_timeout_ms, 60000);
    assert_string_equal(r->prefix_rewrite, "/v2");
    assert_string_equal(r->host_rewrite, "example.internal");
    assert_int_equal(r->n_req_add, 2);
    assert_string_equal(r->req_add[0].name, "x-env");
    assert_string_equal(r->req_add[0].value, "prod");
    assert_false(r->req_add[0].append);
    assert_string_equal(r->req_add[1].value, "a, b");
    assert_true(r->req_add[1].append);
    assert_int_equal(r->n_req_remove, 1);
    assert_string_equal(r->req_remove[0], "x-debug");
    assert_int_equal(r->n_resp_add, 1);
    assert_string_equal(r->resp_add[0].name, "x-served-by");
    assert_false(r->resp_add[0].append);
    assert_int_equal(r->n_resp_remove, 1);
    assert_string_equal(r->resp_remove[0], "server");

    r = &vh->routes[1];
    assert_string_equal(r->name, "");
    assert_int_equal(r->path_kind, WEFT_STR_EXACT);
    assert_string_equal(r->path, "/old");
    assert_true(r->case_sensitive);
    assert_int_equal(r->action, WEFT_ACTION_REDIRECT);
    assert_string_equal(r->redirect_scheme, "https");
    assert_string_equal(r->redirect_host, "h");
    assert_string_equal(r->redirect_path, "/new");
    assert_null(r->redirect_prefix);
    assert_int_equal(r->redirect_code, 308);
    assert_null(r->cluster);

    r = &vh->routes[2];
    assert_int_equal(r->action, WEFT_ACTION_REDIRECT);
    assert_null(r->redirect_scheme);
    assert_null(r->redirect_path);
    assert_string_equal(r->redirect_prefix, "/x");
    assert_int_equal(r->redirect_code, 301);

    r = &vh->routes[3];
    assert_int_equal(r->action, WEFT_ACTION_DIRECT);
    assert_int_equal(r->direct_status, 200);
    assert_string_equal(r->direct_body, "ok\n");

    r = &vh->routes[4];
    assert_int_equal(r->path_kind, WEFT_STR_REGEX);
    assert_string_equal(r->path, "/items/[0-9]+");
    assert_int_equal(r->direct_status, 404);
    assert_null(r->direct_body);

    r = &vh->routes[5];
    assert_string_equal(r->cluster, "dns");
    assert_int_equal(r->timeout_ms, 15000);
    assert_null(r->prefix_rewrite);
    assert_null(r->host_rewrite);

    li = &cfg->listeners[1];
    assert_string_equal(li->address, "::1");
    assert_int_equal(li->n_vhosts, 0);
    assert_int_equal(li->limits.max_headers, 100);

    assert_int_equal(cfg->n_clusters, 2);
    const weft_cfg_cluster *cl = weft_config_find_cluster(cfg, "backend");
    assert_ptr_equal(cl, &cfg->clusters[0]);
    assert_int_equal(cl->pos.line, 56);
    assert_int_equal(cl->pos.col, 5);
    assert_int_equal(cl->n_endpoints, 2);
    assert_string_equal(cl->endpoints[0].address, "127.0.0.1");
    assert_int_equal(cl->endpoints[0].port, 8080);
    assert_int_equal(cl->endpoints[0].weight, 1);
    assert_string_equal(cl->endpoints[1].address, "::1");
    assert_int_equal(cl->endpoints[1].weight, 1000);
    assert_int_equal(cl->endpoints[1].pos.line, 59);
    assert_int_equal(cl->endpoints[1].pos.col, 9);
    assert_false(cl->uses_dns);
    assert_int_equal(cl->lb, WEFT_LB_RING_HASH);
    assert_int_equal(cl->hash_on, WEFT_HASH_HEADER);
    assert_string_equal(cl->hash_key, "x-user");
    assert_int_equal(cl->ring_size, 2048);
    assert_int_equal(cl->connect_timeout_ms, 2000);
    assert_int_equal(cl->max_idle_per_endpoint, 8);
    assert_int_equal(cl->pool_idle_timeout_ms, 90000);
    assert_int_equal(cl->max_requests_per_connection, 100);
    assert_true(cl->health.enabled);
    assert_string_equal(cl->health.path, "/healthz");
    assert_string_equal(cl->health.host, "backend");
    assert_int_equal(cl->health.interval_ms, 3000);
    assert_int_equal(cl->health.timeout_ms, 500);
    assert_int_equal(cl->health.healthy_threshold, 1);
    assert_int_equal(cl->health.unhealthy_threshold, 4);
    assert_int_equal(cl->health.expected_min, 200);
    assert_int_equal(cl->health.expected_max, 299);

    cl = weft_config_find_cluster(cfg, "dns");
    assert_non_null(cl);
    assert_true(cl->uses_dns);
    assert_int_equal(cl->dns_refresh_ms, 10000);
    assert_int_equal(cl->lb, WEFT_LB_LEAST_REQUEST);
    assert_false(cl->health.enabled);
    assert_null(weft_config_find_cluster(cfg, "nope"));

    assert_round_trip(cfg);
    weft_config_free(cfg);
}

static void test_defaults(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("listeners:\n"
                            "  - name: in\n"
                            "    port: 9000\n"
                            "    virtual_hosts:\n"
                            "      - routes:\n"
                            "          - match: {prefix: /}\n"
                            "            cluster: c\n"
                            "clusters:\n"
                            "  - name: c\n"
                            "    endpoints: [{address: 10.0.0.1, port: 80}]\n",
                            &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    /* the CPUs the process may use (affinity mask, cgroup quota) */
    assert_int_equal(cfg->workers, weft_usable_cpus(1024, NULL, 0));
    assert_int_equal(cfg->drain_timeout_ms, 15000);
    assert_string_equal(cfg->admin.address, "127.0.0.1");
    assert_int_equal(cfg->admin.port, 15000);
    assert_null(cfg->access_log.path);

    const weft_cfg_listener *li = &cfg->listeners[0];
    assert_string_equal(li->address, "0.0.0.0");
    weft_cfg_limits def;
    weft_cfg_limits_default(&def);
    assert_true(limits_eq(&li->limits, &def));
    assert_int_equal(def.max_header_bytes, 60 * 1024);
    assert_int_equal(def.max_headers, 100);
    assert_int_equal(def.max_uri_len, 8192);
    assert_int_equal(def.max_body_bytes, 0);
    assert_int_equal(def.headers_timeout_ms, 10000);
    assert_int_equal(def.idle_timeout_ms, 60000);
    assert_int_equal(def.stream_idle_timeout_ms, 300000);
    assert_int_equal(def.max_connections, 0);
    assert_int_equal(def.buffer_high_watermark, 1024 * 1024);
    assert_int_equal(def.filter_arena_bytes, 1024 * 1024);
    assert_int_equal(def.filter_metadata_entries, 64);
    assert_int_equal(def.filter_timers, 16);
    assert_int_equal(def.filter_callouts, 8);

    const weft_cfg_vhost *vh = &li->vhosts[0];
    assert_string_equal(vh->name, "*");
    assert_int_equal(vh->n_domains, 1);
    assert_string_equal(vh->domains[0], "*");
    const weft_cfg_route *r = &vh->routes[0];
    assert_string_equal(r->name, "");
    assert_true(r->case_sensitive);
    assert_int_equal(r->timeout_ms, 15000);
    assert_int_equal(r->idle_timeout_ms, 0);
    assert_int_equal(r->redirect_code, 301);
    assert_int_equal(r->n_methods, 0);
    assert_null(r->methods);

    const weft_cfg_cluster *cl = &cfg->clusters[0];
    assert_int_equal(cl->endpoints[0].weight, 1);
    assert_false(cl->uses_dns);
    assert_int_equal(cl->dns_refresh_ms, 5000);
    assert_int_equal(cl->lb, WEFT_LB_ROUND_ROBIN);
    assert_null(cl->hash_key);
    assert_int_equal(cl->ring_size, 1024);
    assert_int_equal(cl->connect_timeout_ms, 5000);
    assert_int_equal(cl->connect_attempts, 2);
    assert_int_equal(cl->connect_failure_avoid_ms, 10000);
    assert_false(cl->reset_retry_unprocessed_only);
    assert_int_equal(cl->max_idle_per_endpoint, 1024);
    assert_int_equal(cl->pool_idle_timeout_ms, 60000);
    assert_int_equal(cl->max_requests_per_connection, 0);
    assert_false(cl->health.enabled);
    assert_string_equal(cl->health.path, "/healthz");
    assert_string_equal(cl->health.host, "c");
    assert_int_equal(cl->health.interval_ms, 5000);
    assert_int_equal(cl->health.timeout_ms, 1000);
    assert_int_equal(cl->health.healthy_threshold, 2);
    assert_int_equal(cl->health.unhealthy_threshold, 3);
    assert_int_equal(cl->health.expected_min, 200);
    assert_int_equal(cl->health.expected_max, 399);
    assert_round_trip(cfg);
    weft_config_free(cfg);
}

static void test_health_check_defaults(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("clusters:\n"
                            "  - name: c\n"
                            "    endpoints: []\n"
                            "    health_check: {}\n",
                            &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    const weft_cfg_cluster *cl = &cfg->clusters[0];
    assert_int_equal(cl->n_endpoints, 0);
    assert_true(cl->health.enabled);
    assert_string_equal(cl->health.path, "/healthz");
    assert_string_equal(cl->health.host, "c");
    assert_int_equal(cl->health.interval_ms, 5000);
    assert_int_equal(cl->health.expected_max, 399);
    assert_round_trip(cfg);
    weft_config_free(cfg);
}

static void test_empty_and_workers(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("", &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_listeners, 0);
    assert_int_equal(cfg->n_clusters, 0);
    assert_true(cfg->workers >= 1);
    assert_round_trip(cfg);
    weft_config_free(cfg);

    cfg = load("# only a comment\n---\n", &err);
    assert_non_null(cfg);
    weft_config_free(cfg);

    cfg = load("workers: 0\nadmin: {port: 0}\ndrain_timeout: 0\n", &err);
    assert_non_null(cfg);
    assert_true(cfg->workers >= 1);
    assert_int_equal(cfg->admin.port, 0);
    assert_int_equal(cfg->drain_timeout_ms, 0);
    weft_config_free(cfg);

    /* bare integers are milliseconds; null values mean "not set" */
    cfg = load("workers: 3\ndrain_timeout: 1500\naccess_log: ~\n", &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->drain_timeout_ms, 1500);
    assert_null(cfg->access_log.path);
    weft_config_free(cfg);
}

static void test_ipv6(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("admin: {address: \"::1\", port: 15000}\n"
                            "listeners:\n"
                            "  - {name: a, address: \"::\", port: 80,\n"
                            "     virtual_hosts: [{domains: [\"[::1]\", \"[2001:DB8::1]\"]}]}\n"
                            "  - {name: b, address: \"fe80::1\", port: 81}\n"
                            "clusters:\n"
                            "  - name: v6\n"
                            "    endpoints:\n"
                            "      - {address: \"::1\", port: 8080}\n"
                            "      - {address: \"2001:db8::10\", port: 8080}\n"
                            "      - {address: \"::ffff:10.0.0.1\", port: 8080}\n",
                            &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg->admin.address, "::1");
    assert_string_equal(cfg->listeners[0].address, "::");
    assert_string_equal(cfg->listeners[0].vhosts[0].domains[0], "[::1]");
    assert_string_equal(cfg->listeners[0].vhosts[0].domains[1], "[2001:db8::1]");
    assert_string_equal(cfg->listeners[1].address, "fe80::1");
    assert_int_equal(cfg->clusters[0].n_endpoints, 3);
    assert_false(cfg->clusters[0].uses_dns);
    assert_round_trip(cfg);
    weft_config_free(cfg);

    expect_error("listeners:\n  - {name: a, address: \"[::1]\", port: 80}\n",
                 "weft.yaml:2:24: listener address must be an IP address, got \"[::1]\"");
}

static void test_uses_dns(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("clusters:\n"
                            "  - {name: a, endpoints: [{address: 10.1.2.3, port: 1}]}\n"
                            "  - {name: b, endpoints: [{address: 10.1.2.3, port: 1},\n"
                            "                          {address: reviews.default.svc, port: 2}]}\n"
                            "  - {name: c, endpoints: [{address: localhost, port: 3}]}\n",
                            &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_false(cfg->clusters[0].uses_dns);
    assert_true(cfg->clusters[1].uses_dns);
    assert_true(cfg->clusters[2].uses_dns);
    weft_config_free(cfg);
}

static void test_ring_hash_variants(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("clusters:\n"
                            "  - name: a\n"
                            "    endpoints: [{address: 10.0.0.1, port: 1}]\n"
                            "    lb_policy: ring_hash\n"
                            "    ring_hash: {hash_on: source_ip}\n"
                            "  - name: b\n"
                            "    endpoints: [{address: 10.0.0.1, port: 1}]\n"
                            "    lb_policy: ring_hash\n"
                            "    ring_hash: {hash_on: cookie, name: Session}\n"
                            "  - {name: c, endpoints: [], lb_policy: random}\n"
                            "  - {name: d, endpoints: [], lb_policy: peak_ewma}\n",
                            &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->clusters[0].hash_on, WEFT_HASH_SOURCE_IP);
    assert_null(cfg->clusters[0].hash_key);
    assert_int_equal(cfg->clusters[1].hash_on, WEFT_HASH_COOKIE);
    assert_string_equal(cfg->clusters[1].hash_key, "Session"); /* cookie names keep case */
    assert_int_equal(cfg->clusters[2].lb, WEFT_LB_RANDOM);
    assert_int_equal(cfg->clusters[3].lb, WEFT_LB_PEAK_EWMA);
    assert_round_trip(cfg);
    weft_config_free(cfg);
}

static void test_dump_escapes(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg =
        load("listeners:\n"
             "  - name: \"in\"\n"
             "    port: 1\n"
             "    virtual_hosts:\n"
             "      - name: 'v#1:x'\n"
             "        routes:\n"
             "          - match: {regex: \"^/a\\\\.b\\\"c[ ]+$\"}\n"
             "            direct_response:\n"
             "              status: 200\n"
             "              body: \"line1\\nline2\\t\\\"q\\\" \\\\ caf\\u00e9 \\u20ac "
             "\\U0001F600 \\x01 \\uFFFE end\"\n"
             "          - match: {prefix: \"/p\"}\n"
             "            direct_response: {status: 204, body: \"\"}\n"
             "            response_headers_to_add: [{name: x-v, value: \"- [not a list]: #\"}]\n",
             &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    const weft_cfg_route *r = &cfg->listeners[0].vhosts[0].routes[0];
    assert_string_equal(r->path, "^/a\\.b\"c[ ]+$");
    assert_string_equal(r->direct_body, "line1\nline2\t\"q\" \\ caf\xc3\xa9 \xe2\x82\xac "
                                        "\xf0\x9f\x98\x80 \x01 \xef\xbf\xbe end");
    assert_string_equal(cfg->listeners[0].vhosts[0].name, "v#1:x");
    assert_string_equal(cfg->listeners[0].vhosts[0].routes[1].direct_body, "");
    char *text = dump_to_string(cfg);
    /* pure ASCII, everything quoted */
    for (const char *p = text; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    assert_non_null(strstr(text, "body: \"line1\\nline2\\t\\\"q\\\" \\\\ caf\\u00E9 \\u20AC "
                                 "\\U0001F600 \\x01 \\uFFFE end\""));
    free(text);
    assert_round_trip(cfg);
    weft_config_free(cfg);
}

static void test_dump_text(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("workers: 1\n"
                            "listeners:\n"
                            "  - name: in\n"
                            "    address: 127.0.0.1\n"
                            "    port: 10000\n"
                            "    virtual_hosts:\n"
                            "      - domains: [\"*\"]\n"
                            "        routes:\n"
                            "          - match: {prefix: /}\n"
                            "            cluster: b\n"
                            "clusters:\n"
                            "  - name: b\n"
                            "    endpoints: [{address: 127.0.0.1, port: 8080}]\n",
                            &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    char *text = dump_to_string(cfg);
    assert_string_equal(text, "# weft effective configuration (source: \"weft.yaml\")\n"
                              "workers: 1\n"
                              "drain_timeout: 15000ms\n"
                              "callouts:\n"
                              "  max_per_worker: 1024\n"
                              "  max_response_body: 1048576\n"
                              "admin:\n"
                              "  address: \"127.0.0.1\"\n"
                              "  port: 15000\n"
                              "  max_header_bytes: 8192\n"
                              "  max_body_bytes: 4096\n"
                              "  request_timeout: 10000ms\n"
                              "  max_connections: 16\n"
                              "clusters:\n"
                              "  - name: \"b\"\n"
                              "    endpoints:\n"
                              "      - address: \"127.0.0.1\"\n"
                              "        port: 8080\n"
                              "        weight: 1\n"
                              "    dns_refresh: 5000ms\n"
                              "    lb_policy: \"round_robin\"\n"
                              "    connect_timeout: 5000ms\n"
                              "    connect_attempts: 2\n"
                              "    connect_failure_avoid: 10000ms\n"
                              "    reset_retry: \"idempotent\"\n"
                              "    max_idle_per_endpoint: 1024\n"
                              "    pool_idle_timeout: 60000ms\n"
                              "    max_requests_per_connection: 0\n"
                              "listeners:\n"
                              "  - name: \"in\"\n"
                              "    address: \"127.0.0.1\"\n"
                              "    port: 10000\n"
                              "    limits:\n"
                              "      max_header_bytes: 61440\n"
                              "      max_headers: 100\n"
                              "      max_uri_length: 8192\n"
                              "      max_body_bytes: 0\n"
                              "      headers_timeout: 10000ms\n"
                              "      idle_timeout: 60000ms\n"
                              "      stream_idle_timeout: 300000ms\n"
                              "      max_connections: 0\n"
                              "      buffer_high_watermark: 1048576\n"
                              "      filter_arena_bytes: 1048576\n"
                              "      filter_metadata_entries: 64\n"
                              "      filter_timers: 16\n"
                              "      filter_callouts: 8\n"
                              "    http2:\n"
                              "      max_concurrent_streams: 100\n"
                              "      initial_window_size: 1048576\n"
                              "      max_frame_size: 16384\n"
                              "      max_header_list_size: 61440\n"
                              "    normalize_path: true\n"
                              "    merge_slashes: false\n"
                              "    escaped_slashes: \"keep\"\n"
                              "    preserve_external_request_id: false\n"
                              "    virtual_hosts:\n"
                              "      - name: \"*\"\n"
                              "        domains:\n"
                              "          - \"*\"\n"
                              "        routes:\n"
                              "          - name: \"\"\n"
                              "            match:\n"
                              "              prefix: \"/\"\n"
                              "              case_sensitive: true\n"
                              "            cluster: \"b\"\n"
                              "            timeout: 15000ms\n"
                              "            idle_timeout: 0ms\n");
    free(text);
    weft_config_free(cfg);
}

static void test_request_path_keys(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg =
        load("listeners:\n"
             "  - {name: a, port: 10000}\n"
             "  - {name: b, port: 10001, normalize_path: false, merge_slashes: true,\n"
             "     escaped_slashes: unescape_and_redirect,\n"
             "     preserve_external_request_id: true}\n",
             &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_true(cfg->listeners[0].normalize_path);
    assert_false(cfg->listeners[0].merge_slashes);
    assert_int_equal(cfg->listeners[0].escaped_slashes, WEFT_CFG_SLASHES_KEEP);
    assert_false(cfg->listeners[0].preserve_external_request_id);
    assert_false(cfg->listeners[1].normalize_path);
    assert_true(cfg->listeners[1].merge_slashes);
    assert_int_equal(cfg->listeners[1].escaped_slashes, WEFT_CFG_SLASHES_UNESCAPE_AND_REDIRECT);
    assert_true(cfg->listeners[1].preserve_external_request_id);
    assert_round_trip(cfg);
    weft_config_free(cfg);
    expect_error("listeners: [{name: a, port: 1, escaped_slashes: decode}]\n",
                 "weft.yaml:1:49: escaped_slashes must be keep, reject, unescape or "
                 "unescape_and_redirect, got \"decode\"");
    expect_error("listeners: [{name: a, port: 1, merge_slashes: 1}]\n",
                 "weft.yaml:1:47: expected true or false, got \"1\"");
}

/* reset_retry: idempotent (the default) or unprocessed; anything else is
 * refused where it stands. */
static void test_reset_retry(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("clusters:\n"
                            "  - {name: a, reset_retry: unprocessed, endpoints: [{address: "
                            "127.0.0.1, port: 1}]}\n"
                            "  - {name: b, reset_retry: idempotent, endpoints: [{address: "
                            "127.0.0.1, port: 1}]}\n",
                            &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_true(cfg->clusters[0].reset_retry_unprocessed_only);
    assert_false(cfg->clusters[1].reset_retry_unprocessed_only);
    assert_round_trip(cfg);
    weft_config_free(cfg);
    expect_error("clusters: [{name: a, reset_retry: always, endpoints: []}]\n",
                 "weft.yaml:1:35: unknown reset_retry \"always\" (expected idempotent or "
                 "unprocessed)");
}

static void test_admin(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("admin: {port: 15001}\n", &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_null(cfg->admin.token);
    assert_int_equal(cfg->admin.max_header_bytes, 8192);
    assert_int_equal(cfg->admin.max_body_bytes, 4096);
    assert_int_equal(cfg->admin.request_timeout_ms, 10000);
    assert_int_equal(cfg->admin.max_connections, 16);
    weft_config_free(cfg);

    cfg = load("admin: {token: abc.DEF-123, max_header_bytes: 2KiB, max_body_bytes: 0,\n"
               "        request_timeout: 3s, max_connections: 4}\n",
               &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg->admin.token, "abc.DEF-123");
    assert_int_equal(cfg->admin.max_header_bytes, 2048);
    assert_int_equal(cfg->admin.max_body_bytes, 0);
    assert_int_equal(cfg->admin.request_timeout_ms, 3000);
    assert_int_equal(cfg->admin.max_connections, 4);
    char *text = dump_to_string(cfg);
    assert_null(strstr(text, "abc.DEF-123"));
    assert_non_null(strstr(text, "  token: \"[redacted]\"\n"));
    free(text);
    weft_config_free(cfg);

    char dir[] = "/tmp/weft-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], yaml[512];
    snprintf(path, sizeof(path), "%s/tok", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("from-file-token\nsecond line\n", f);
    fclose(f);
    snprintf(yaml, sizeof(yaml), "admin: {token_file: %s}\n", path);
    cfg = load(yaml, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg->admin.token, "from-file-token");
    weft_config_free(cfg);
    unlink(path);
    rmdir(dir);

    expect_error("admin: {token: a, token_file: /x}\n",
                 "weft.yaml:1:31: admin: give either \"token\" or \"token_file\", not both");
    expect_error("admin: {token: \"\"}\n", "weft.yaml:1:16: admin token must not be empty");
    expect_error("admin: {token: \"a b\"}\n",
                 "weft.yaml:1:16: admin token must be visible ASCII (no spaces or control "
                 "characters)");
    expect_error("admin: {max_connections: 0}\n",
                 "weft.yaml:1:26: max_connections must be between 1 and 65536, got 0");
    expect_error("admin: {request_timeout: 0s}\n",
                 "weft.yaml:1:26: request_timeout must be at least 1ms, got \"0s\"");
    expect_error("admin: {token_file: /nonexistent/weft-token}\n",
                 "weft.yaml:1:21: cannot open admin token_file \"/nonexistent/weft-token\": No "
                 "such file or directory");
}

static void test_dump_redacts_secrets(void **state) {
    (void)state;
    weft_config_error err;
    const char *yaml = "listeners:\n"
                       "  - name: in\n"
                       "    port: 10000\n"
                       "    filters:\n"
                       "      - name: f\n"
                       "        config:\n"
                       "          a: !secret S1\n"
                       "          b: !secret {x: S2}\n"
                       "          c: [!secret S3, V1]\n"
                       "          API_TOKEN: S4\n"
                       "          my_secret: [S5]\n"
                       "          Password: S6\n"
                       "          ssh_private_key: S7\n"
                       "          private: V2\n"
                       "          d: {k: V3}\n"
                       "    virtual_hosts:\n"
                       "      - domains: [\"*\"]\n"
                       "        routes:\n"
                       "          - match: {prefix: /}\n"
                       "            direct_response: {status: 200}\n"
                       "            request_headers_to_add:\n"
                       "              - {name: Authorization, value: S8}\n"
                       "              - {name: proxy-authorization, value: S9}\n"
                       "              - {name: x-session-token, value: S10}\n"
                       "              - {name: x-other, value: V4}\n";
    weft_config *cfg = load(yaml, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    char *text = dump_to_string(cfg);
    for (int i = 1; i <= 10; i++) {
        char needle[8];
        snprintf(needle, sizeof(needle), "\"S%d\"", i);
        if (strstr(text, needle))
            fail_msg("%s shown in:\n%s", needle, text);
    }
    for (int i = 1; i <= 4; i++) {
        char needle[8];
        snprintf(needle, sizeof(needle), "\"V%d\"", i);
        if (!strstr(text, needle))
            fail_msg("%s missing in:\n%s", needle, text);
    }
    /* the dump of the dump is the same text (fuzz_config's invariant) */
    weft_config *again = weft_config_load_buffer(text, strlen(text), "dump.yaml", &err);
    if (!again)
        fail_msg("%s", err.msg);
    char *text2 = dump_to_string(again);
    assert_string_equal(strchr(text, '\n'), strchr(text2, '\n'));
    free(text);
    free(text2);
    weft_config_free(again);
    weft_config_free(cfg);
}

/* dns: resolvers (address:port list) and query options; each bad
 * resolver refused at its position. */
static void test_dns(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("workers: 1\n", &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->dns.n_resolvers, 0); /* the system's */
    assert_int_equal(cfg->dns.query_timeout_ms, 0);
    assert_int_equal(cfg->dns.query_attempts, 0);
    char *text = dump_to_string(cfg);
    assert_null(strstr(text, "dns:"));
    free(text);
    weft_config_free(cfg);

    cfg =
        load("dns:\n"
             "  resolvers: [\"127.0.0.1:5353\", 10.1.2.3, \"[::1]:5300\", \"fe80::1\", \"[::2]\"]\n"
             "  query_timeout: 250ms\n"
             "  query_attempts: 1\n",
             &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->dns.n_resolvers, 5);
    assert_string_equal(cfg->dns.resolvers[0].address, "127.0.0.1");
    assert_int_equal(cfg->dns.resolvers[0].port, 5353);
    assert_string_equal(cfg->dns.resolvers[1].address, "10.1.2.3");
    assert_int_equal(cfg->dns.resolvers[1].port, 53);
    assert_string_equal(cfg->dns.resolvers[2].address, "::1");
    assert_int_equal(cfg->dns.resolvers[2].port, 5300);
    assert_string_equal(cfg->dns.resolvers[3].address, "fe80::1");
    assert_int_equal(cfg->dns.resolvers[3].port, 53);
    assert_string_equal(cfg->dns.resolvers[4].address, "::2");
    assert_int_equal(cfg->dns.query_timeout_ms, 250);
    assert_int_equal(cfg->dns.query_attempts, 1);
    /* The dump loads again to the same resolvers. */
    text = dump_to_string(cfg);
    assert_non_null(strstr(text, "dns:\n  resolvers:\n    - \"127.0.0.1:5353\"\n"
                                 "    - \"10.1.2.3:53\"\n    - \"[::1]:5300\"\n"));
    weft_config *again = load(text, &err);
    if (!again)
        fail_msg("%s\n%s", err.msg, text);
    assert_int_equal(again->dns.n_resolvers, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(again->dns.resolvers[i].address, cfg->dns.resolvers[i].address);
        assert_int_equal(again->dns.resolvers[i].port, cfg->dns.resolvers[i].port);
    }
    assert_int_equal(again->dns.query_timeout_ms, 250);
    assert_int_equal(again->dns.query_attempts, 1);
    weft_config_free(again);
    free(text);
    weft_config_free(cfg);

    cfg = load("dns: {resolvers: []}\n", &err); /* empty = the system's */
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->dns.n_resolvers, 0);
    weft_config_free(cfg);

    expect_error("dns:\n  resolvers: [\"127.0.0.1:5353\", localhost]\n",
                 "weft.yaml:2:33: dns resolver \"localhost\": expected an IP address with an "
                 "optional port (\"10.0.0.2:53\", \"[::1]:5353\")");
    expect_error("dns: {resolvers: [\"127.0.0.1:0\"]}\n",
                 "weft.yaml:1:19: dns resolver \"127.0.0.1:0\": port must be between 1 and 65535");
    expect_error("dns: {resolvers: [\"127.0.0.1:65536\"]}\n",
                 "weft.yaml:1:19: dns resolver \"127.0.0.1:65536\": port must be between 1 and "
                 "65535");
    expect_error("dns: {resolvers: [\"127.0.0.1:\"]}\n",
                 "weft.yaml:1:19: dns resolver \"127.0.0.1:\": port must be between 1 and 65535");
    expect_error("dns: {resolvers: [\"[::1\"]}\n",
                 "weft.yaml:1:19: dns resolver \"[::1\": expected an IP address with an optional "
                 "port (\"10.0.0.2:53\", \"[::1]:5353\")");
    expect_error(
        "dns: {resolvers: [\"[::1]53\"]}\n",
        "weft.yaml:1:19: dns resolver \"[::1]53\": expected an IP address with an optional "
        "port (\"10.0.0.2:53\", \"[::1]:5353\")");
    expect_error("dns: {resolvers: [\"[127.0.0.1]:53\"]}\n",
                 "weft.yaml:1:19: dns resolver \"[127.0.0.1]:53\": expected an IP address with an "
                 "optional port (\"10.0.0.2:53\", \"[::1]:5353\")");
    expect_error("dns: {resolvers: [\"300.1.1.1:53\"]}\n",
                 "weft.yaml:1:19: dns resolver \"300.1.1.1:53\": expected an IP address with an "
                 "optional port (\"10.0.0.2:53\", \"[::1]:5353\")");
    expect_error("dns: {resolvers: [{address: 127.0.0.1}]}\n",
                 "weft.yaml:1:19: dns resolver: expected an address string, got a mapping");
    expect_error("dns: {resolvers: 127.0.0.1}\n",
                 "weft.yaml:1:18: expected a list for \"resolvers\", got \"127.0.0.1\"");
    expect_error("dns: {resolver: [127.0.0.1]}\n",
                 "weft.yaml:1:7: unknown key \"resolver\" (did you mean \"resolvers\"?)");
    expect_error("dns: {query_timeout: 0s}\n",
                 "weft.yaml:1:22: query_timeout must be at least 1ms, got \"0s\"");
    expect_error("dns: {query_attempts: 0}\n",
                 "weft.yaml:1:23: query_attempts must be between 1 and 255, got 0");
    expect_error("dns: {query_attempts: 256}\n",
                 "weft.yaml:1:23: query_attempts must be between 1 and 255, got 256");
    expect_error("dns: [127.0.0.1]\n", "weft.yaml:1:6: expected a mapping for dns, got a list");
    /* At most 16 resolvers. */
    char many[1024] = "dns:\n  resolvers:\n";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "    - 127.0.0.%d\n", i + 1);
    expect_error(many, "weft.yaml:3:5: dns resolvers: at most 16, got 17");
    many[strlen(many) - strlen("    - 127.0.0.17\n")] = '\0';
    cfg = load(many, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->dns.n_resolvers, 16);
    weft_config_free(cfg);
}

static void test_load_file(void **state) {
    (void)state;
    weft_config_error err;
    assert_null(weft_config_load_file("/nonexistent/dir/weft.yaml", &err));
    assert_string_equal(err.msg,
                        "/nonexistent/dir/weft.yaml: cannot open: No such file or directory");

    char path[] = "/tmp/weft_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char body[] = "workers: 1\nlisteners:\n  - {name: x, port: 0}\n";
    assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)(sizeof(body) - 1));
    close(fd);
    assert_null(weft_config_load_file(path, &err));
    char want[256];
    snprintf(want, sizeof(want), "%s:3:21: port must be between 1 and 65535, got 0", path);
    assert_string_equal(err.msg, want);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    weft_config *cfg = load(FULL, &err);
    assert_non_null(cfg);
    assert_int_equal(weft_config_dump(cfg, f), 0);
    fclose(f);
    weft_config *back = weft_config_load_file(path, &err);
    if (!back)
        fail_msg("%s", err.msg);
    assert_string_equal(back->source, path);
    assert_true(config_eq(cfg, back));
    weft_config_free(back);
    weft_config_free(cfg);
    unlink(path);

    /* the shipped quickstart config loads */
    cfg = weft_config_load_file("examples/quickstart/weft.yaml", &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->n_listeners, 1);
    assert_int_equal(cfg->listeners[0].port, 10000);
    assert_string_equal(cfg->listeners[0].address, "127.0.0.1");
    assert_int_equal(cfg->admin.port, 15000);
    assert_string_equal(cfg->access_log.path, "stdout");
    const weft_cfg_cluster *cl = weft_config_find_cluster(cfg, "backend");
    assert_non_null(cl);
    assert_string_equal(cl->endpoints[0].address, "127.0.0.1");
    assert_int_equal(cl->endpoints[0].port, 8080);
    assert_string_equal(cfg->listeners[0].vhosts[0].routes[0].cluster, "backend");
    weft_config_free(cfg);
}

/* ------------------------------------------------------------- errors */

/* Lines 1-9; a route's keys start on line 10 at column 13. */
#define ROUTES                                                                                     \
    "clusters:\n"                                                                                  \
    "  - name: backend\n"                                                                          \
    "    endpoints: [{address: 127.0.0.1, port: 8080}]\n"                                          \
    "listeners:\n"                                                                                 \
    "  - name: ingress\n"                                                                          \
    "    port: 10000\n"                                                                            \
    "    virtual_hosts:\n"                                                                         \
    "      - domains: [\"*\"]\n"                                                                   \
    "        routes:\n"

/* Lines 1-2; a cluster's keys start on line 3 at column 5. */
#define CLUSTER "clusters:\n  - name: c\n"

static void test_error_yaml(void **state) {
    (void)state;
    expect_error("listeners: [1, 2\n",
                 "weft.yaml:2:1: invalid YAML: did not find expected ',' or ']' "
                 "(while parsing a flow sequence that started at 1:12)");
    expect_error("a: b: c\n",
                 "weft.yaml:1:5: invalid YAML: mapping values are not allowed in this context");
    expect_error("workers: 1\n\tadmin: {}\n",
                 "weft.yaml:2:1: invalid YAML: found a tab character that violates indentation "
                 "(while scanning a plain scalar that started at 1:10)");
    expect_error("workers: 1\nadmin: \xff\n",
                 "weft.yaml:2:8: invalid YAML: invalid leading UTF-8 octet (#xFF)");
    expect_error("base: &b {port: 1}\nadmin: *b\n",
                 "weft.yaml:2:8: YAML aliases are not supported");
    /* a UTF-8 BOM and CRLF line ends are fine; positions ignore the BOM */
    expect_error("\xef\xbb\xbfworkers: 1\r\nlisteners:\r\n  - {name: a, port: 0}\r\n",
                 "weft.yaml:3:21: port must be between 1 and 65535, got 0");
    expect_error("workers: 1\n---\nworkers: 2\n",
                 "weft.yaml:2:1: multiple YAML documents are not supported");
    expect_error("access_log: {path: \"a\\0b\"}\n",
                 "weft.yaml:1:20: strings must not contain NUL characters");
    expect_error("? [a]\n: b\n", "weft.yaml:1:3: mapping keys must be strings, got a list");

    char deep[200];
    size_t o = 0;
    for (int i = 0; i < 70; i++)
        deep[o++] = '[';
    for (int i = 0; i < 70; i++)
        deep[o++] = ']';
    deep[o++] = '\n';
    deep[o] = '\0';
    expect_error(deep, "weft.yaml:1:65: nesting deeper than 64 levels");
}

static void test_error_structure(void **state) {
    (void)state;
    expect_error("workers: 1\nlisteners: []\nlistners: []\n",
                 "weft.yaml:3:1: unknown key \"listners\" (did you mean \"listeners\"?)");
    expect_error("admin: {adress: 127.0.0.1}\n",
                 "weft.yaml:1:9: unknown key \"adress\" (did you mean \"address\"?)");
    expect_error("tracing: {}\n", "weft.yaml:1:1: unknown key \"tracing\"");
    expect_error("workers: 1\nworkers: 2\n", "weft.yaml:2:1: duplicate key \"workers\"");
    expect_error("- a\n", "weft.yaml:1:1: expected a mapping for the top level, got a list");
    expect_error("listeners: {name: a}\n",
                 "weft.yaml:1:12: expected a list for \"listeners\", got a mapping");
    expect_error("listeners: [x]\n", "weft.yaml:1:13: expected a mapping for listener, got \"x\"");
    expect_error("listeners:\n  - port: 80\n", "weft.yaml:2:5: listener is missing \"name\"");
    expect_error("listeners:\n  - name: [a]\n    port: 80\n",
                 "weft.yaml:2:11: expected a string for \"name\", got a list");
    expect_error("listeners:\n  - name: \"a b\"\n    port: 80\n",
                 "weft.yaml:2:11: listener name must be non-empty visible ASCII without spaces, "
                 "got \"a b\"");
    expect_error("listeners:\n  - name: a\n", "weft.yaml:2:5: listener is missing \"port\"");
}

static void test_error_values(void **state) {
    (void)state;
    expect_error("drain_timeout: fast\n",
                 "weft.yaml:1:16: expected a duration like \"250ms\", got \"fast\"");
    expect_error("drain_timeout: 1000h\n",
                 "weft.yaml:1:16: drain_timeout must be at most 720h, got \"1000h\"");
    expect_error("workers: many\n", "weft.yaml:1:10: expected an integer, got \"many\"");
    expect_error("workers: -1\n", "weft.yaml:1:10: expected an integer, got \"-1\"");
    expect_error("workers: 5000\n", "weft.yaml:1:10: workers must be between 0 and 1024, got 5000");
    expect_error("admin: {port: 65536}\n",
                 "weft.yaml:1:15: port must be between 0 and 65535, got 65536");
    expect_error("admin: {address: localhost}\n",
                 "weft.yaml:1:18: admin address must be an IP address, got \"localhost\"");
    expect_error(
        "access_log: {path: \"\"}\n",
        "weft.yaml:1:20: access_log path must not be empty (omit access_log to turn it off)");
    expect_error("access_log: {}\n", "weft.yaml:1:13: access_log is missing \"path\"");
    expect_error("listeners:\n  - {name: a, port: 80, limits: {max_header_bytes: big}}\n",
                 "weft.yaml:2:52: expected a size like \"64KiB\", got \"big\"");
    expect_error("listeners:\n  - {name: a, port: 80, limits: {max_headers: 0}}\n",
                 "weft.yaml:2:47: max_headers must be between 1 and 100000, got 0");
    expect_error("listeners:\n  - {name: a, port: 80, limits: {buffer_high_watermark: 8GiB}}\n",
                 "weft.yaml:2:57: buffer_high_watermark must be between 1 and 4294967295 bytes, "
                 "got \"8GiB\"");
}

static void test_error_listeners(void **state) {
    (void)state;
    expect_error("listeners:\n  - {name: a, port: 0}\n",
                 "weft.yaml:2:21: port must be between 1 and 65535, got 0");
    expect_error("listeners:\n  - {name: a, port: 70000}\n",
                 "weft.yaml:2:21: port must be between 1 and 65535, got 70000");
    expect_error("listeners:\n  - {name: a, port: 80}\n  - {name: a, port: 81}\n",
                 "weft.yaml:3:12: duplicate listener name \"a\" (first defined at 2:5)");
    expect_error("listeners:\n  - {name: a, port: 80}\n  - {name: b, address: \"::\", port: 80}\n",
                 "weft.yaml:3:36: port 80 is already used by listener \"a\"");
    expect_error("listeners:\n  - {name: a, port: 15000}\n",
                 "weft.yaml:2:21: port 15000 is already used by the admin server");
    expect_error("listeners:\n  - {name: a, address: example.com, port: 80}\n",
                 "weft.yaml:2:24: listener address must be an IP address, got \"example.com\"");
    expect_error(
        "listeners:\n"
        "  - name: a\n"
        "    port: 80\n"
        "    virtual_hosts:\n"
        "      - {name: one, domains: [\"*.Example.com\"]}\n"
        "      - {name: two, domains: [a.com, \"*.example.COM\"]}\n",
        "weft.yaml:6:38: domain \"*.example.com\" is already used by virtual host \"one\"");
    expect_error("listeners:\n"
                 "  - name: a\n"
                 "    port: 80\n"
                 "    virtual_hosts:\n"
                 "      - {name: first}\n"
                 "      - {name: second}\n",
                 "weft.yaml:6:9: domain \"*\" is already used by virtual host \"first\"");
    expect_error(
        "listeners:\n"
        "  - name: a\n"
        "    port: 80\n"
        "    virtual_hosts:\n"
        "      - {domains: [\"a.*.com\"]}\n",
        "weft.yaml:5:20: invalid domain \"a.*.com\" (expected a host name, \"*.suffix\" or \"*\")");
    expect_error("listeners:\n"
                 "  - name: a\n"
                 "    port: 80\n"
                 "    virtual_hosts:\n"
                 "      - {name: v, domains: [a.com]}\n"
                 "      - {name: v, domains: [b.com]}\n",
                 "weft.yaml:6:16: duplicate virtual host name \"v\" (first defined at 5:9)");
    expect_error("listeners:\n"
                 "  - name: a\n"
                 "    port: 80\n"
                 "    virtual_hosts:\n"
                 "      - {domains: []}\n",
                 "weft.yaml:5:19: domains must not be empty (use [\"*\"] to match any host)");
}

static void test_error_routes(void **state) {
    (void)state;
    expect_error(ROUTES "          - match: {prefix: /}\n"
                        "            cluster: reviews\n",
                 "weft.yaml:11:22: cluster \"reviews\" is not defined");
    expect_error(ROUTES "          - match: {prefix: /}\n"
                        "            cluster: backend\n"
                        "            timeout: fast\n",
                 "weft.yaml:12:22: expected a duration like \"250ms\", got \"fast\"");
    expect_error(ROUTES "          - match: {prefix: /, path: /x}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:32: match takes only one of \"prefix\", \"path\" or \"regex\"");
    expect_error(ROUTES "          - match: {methods: [GET]}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:20: match needs one of \"prefix\", \"path\" or \"regex\"");
    expect_error(
        ROUTES "          - match: {prefix: /}\n",
        "weft.yaml:10:13: route needs one of \"cluster\", \"redirect\" or \"direct_response\"");
    expect_error(ROUTES "          - match: {prefix: /}\n"
                        "            cluster: backend\n"
                        "            direct_response: {status: 200}\n",
                 "weft.yaml:12:13: route takes only one of \"cluster\", \"redirect\" or "
                 "\"direct_response\"");
    expect_error(ROUTES "          - cluster: backend\n",
                 "weft.yaml:10:13: route is missing \"match\"");
    expect_error(ROUTES "          - match: {prefix: api}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:29: prefix must start with \"/\" and contain only visible ASCII, "
                 "got \"api\"");
    expect_error(ROUTES "          - match: {regex: \"/a/([0-9]+\"}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:28: invalid regex \"/a/([0-9]+\": Unmatched ( or \\(");
    expect_error(ROUTES "          - match:\n"
                        "              prefix: /\n"
                        "              headers: [{name: x-id, regex: \"a{2,1}\"}]\n"
                        "            cluster: backend\n",
                 "weft.yaml:12:45: invalid regex \"a{2,1}\": Invalid content of \\{\\}");
    expect_error(ROUTES "          - match: {regex: \"/b++\"}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:28: invalid regex \"/b++\": a repetition operator follows another "
                 "repetition");
    expect_error(ROUTES "          - match: {regex: \"((a{100}){100}){100}\"}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:28: invalid regex \"((a{100}){100}){100}\": too complex "
                 "(repetitions expand too far)");
    expect_error(ROUTES
                 "          - match: {prefix: /, headers: [{name: x, regex: \"(a)\\\\1\"}]}\n"
                 "            cluster: backend\n",
                 "weft.yaml:10:59: invalid regex \"(a)\\\\1\": back-references are not supported");
    expect_error(
        ROUTES "          - match: {path: /old}\n"
               "            redirect: {path: /new, response_code: 200}\n",
        "weft.yaml:11:51: redirect response_code must be 301, 302, 303, 307 or 308, got 200");
    expect_error(
        ROUTES "          - match: {path: /old}\n"
               "            redirect: {response_code: 302}\n",
        "weft.yaml:11:23: redirect needs at least one of \"scheme\", \"host\", \"path\" or "
        "\"prefix_rewrite\"");
    expect_error(ROUTES "          - match: {path: /old}\n"
                        "            redirect: {scheme: ftp}\n",
                 "weft.yaml:11:32: redirect scheme must be \"http\" or \"https\", got \"ftp\"");
    expect_error(ROUTES "          - match: {path: /old}\n"
                        "            redirect: {prefix_rewrite: /new}\n",
                 "weft.yaml:11:40: prefix_rewrite needs a \"prefix\" match");
    expect_error(ROUTES "          - match: {prefix: /h}\n"
                        "            direct_response: {status: 600}\n",
                 "weft.yaml:11:39: status must be between 100 and 599, got 600");
    expect_error(ROUTES "          - match: {prefix: /h}\n"
                        "            direct_response: {body: ok}\n",
                 "weft.yaml:11:30: direct_response is missing \"status\"");
    expect_error(ROUTES "          - match: {prefix: /h}\n"
                        "            direct_response: {status: 200}\n"
                        "            timeout: 1s\n",
                 "weft.yaml:12:13: \"timeout\" is only valid on routes with \"cluster\"");
    expect_error(ROUTES "          - match: {prefix: /}\n"
                        "            cluster: backend\n"
                        "            request_headers_to_add: [{name: \"bad header\", value: x}]\n",
                 "weft.yaml:12:45: invalid header name \"bad header\"");
    expect_error(ROUTES
                 "          - match: {prefix: /}\n"
                 "            cluster: backend\n"
                 "            response_headers_to_add: [{name: x-a, value: \"a\\r\\nb: c\"}]\n",
                 "weft.yaml:12:58: header value \"a\\x0d\\nb: c\" contains control characters");
    expect_error(
        ROUTES "          - match: {prefix: /, headers: [{name: x-a, present: false}]}\n"
               "            cluster: backend\n",
        "weft.yaml:10:63: present must be true (use invert: true to match a missing header)");
    expect_error(ROUTES "          - match: {prefix: /, headers: [{name: x-a}]}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:42: header match needs one of \"exact\", \"prefix\", \"suffix\", "
                 "\"regex\" or \"present\"");
    expect_error(ROUTES "          - match: {prefix: /, case_sensitive: yes}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:48: expected true or false, got \"yes\"");
    expect_error(ROUTES "          - match: {prefix: /, methods: [\"GE T\"]}\n"
                        "            cluster: backend\n",
                 "weft.yaml:10:42: invalid method \"GE T\"");
    expect_error(ROUTES "          - match: {path: /a}\n"
                        "            cluster: backend\n"
                        "            prefix_rewrite: /b\n",
                 "weft.yaml:12:29: prefix_rewrite needs a \"prefix\" match");
    expect_error(ROUTES "          - match: {prefix: /}\n"
                        "            clustre: backend\n",
                 "weft.yaml:11:13: unknown key \"clustre\" (did you mean \"cluster\"?)");
}

static void test_endpoint_locality_labels(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg =
        load("clusters:\n"
             "  - name: c\n"
             "    endpoints:\n"
             "      - address: 10.0.0.1\n"
             "        port: 80\n"
             "        locality: us-east1/us-east1-b/rack-7\n"
             "        labels: {version: v2, app: reviews, \"topology.kubernetes.io/zone\": b}\n"
             "      - address: 10.0.0.2\n"
             "        port: 80\n"
             "        locality: {region: eu-west1, subzone: r1}\n"
             "      - address: 10.0.0.3\n"
             "        port: 80\n"
             "        locality: us-east1\n"
             "        labels: {version: \"\"}\n"
             "      - {address: 10.0.0.4, port: 80}\n",
             &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    const weft_cfg_cluster *cl = &cfg->clusters[0];
    const weft_cfg_endpoint *e = cl->endpoints;
    assert_string_equal(e[0].region, "us-east1");
    assert_string_equal(e[0].zone, "us-east1-b");
    assert_string_equal(e[0].subzone, "rack-7");
    assert_int_equal(e[0].n_labels, 3);
    /* sorted by key */
    assert_string_equal(e[0].labels[0].key, "app");
    assert_string_equal(e[0].labels[0].value, "reviews");
    assert_string_equal(e[0].labels[1].key, "topology.kubernetes.io/zone");
    assert_string_equal(e[0].labels[2].key, "version");
    assert_string_equal(e[0].labels[2].value, "v2");
    assert_string_equal(e[1].region, "eu-west1");
    assert_null(e[1].zone); /* not given: NULL, nothing allocated */
    assert_string_equal(e[1].subzone, "r1");
    assert_int_equal(e[1].n_labels, 0);
    assert_string_equal(e[2].region, "us-east1");
    assert_null(e[2].zone);    /* not given: NULL, nothing allocated */
    assert_null(e[2].subzone); /* not given: NULL, nothing allocated */
    assert_int_equal(e[2].n_labels, 1);
    assert_string_equal(e[2].labels[0].value, "");
    assert_null(e[3].region); /* not given: NULL, nothing allocated */
    assert_int_equal(e[3].n_labels, 0);
    assert_round_trip(cfg);
    weft_config_free(cfg);
}

static void test_error_endpoint_meta(void **state) {
    (void)state;
#define EP "    endpoints:\n      - address: 10.0.0.1\n        port: 80\n"
    expect_error(CLUSTER EP "        locality: a/b/c/d\n",
                 "weft.yaml:6:19: locality \"a/b/c/d\" has more than 3 parts (expected "
                 "region/zone/subzone)");
    expect_error(CLUSTER EP "        locality: \"a b\"\n",
                 "weft.yaml:6:19: locality \"a b\": each part must be visible ASCII without "
                 "spaces, at most 128 bytes");
    expect_error(CLUSTER EP "        locality: {region: a, zne: b}\n",
                 "weft.yaml:6:31: unknown key \"zne\" (did you mean \"zone\"?)");
    expect_error(CLUSTER EP "        locality: {zone: a/b}\n",
                 "weft.yaml:6:26: locality zone \"a/b\" must be visible ASCII without spaces "
                 "or '/', at most 128 bytes");
    expect_error(CLUSTER EP "        locality: [a]\n",
                 "weft.yaml:6:19: expected \"region/zone/subzone\" or a mapping for locality, "
                 "got a list");
    expect_error(CLUSTER EP "        labels: [a]\n",
                 "weft.yaml:6:17: expected a mapping for labels, got a list");
    expect_error(CLUSTER EP "        labels: {-bad: x}\n",
                 "weft.yaml:6:18: invalid label key \"-bad\" (expected [prefix/]name, name 1-63 "
                 "of [A-Za-z0-9._-] starting and ending alphanumeric)");
    expect_error(CLUSTER EP "        labels: {\"Ex.com/a\": x}\n",
                 "weft.yaml:6:18: invalid label key \"Ex.com/a\" (expected [prefix/]name, name "
                 "1-63 of [A-Za-z0-9._-] starting and ending alphanumeric)");
    expect_error(CLUSTER EP "        labels: {a: \"x y\"}\n",
                 "weft.yaml:6:21: invalid label value \"x y\" (at most 63 of [A-Za-z0-9._-], "
                 "starting and ending alphanumeric)");
    expect_error(CLUSTER EP "        labels: {a: {b: c}}\n",
                 "weft.yaml:6:21: expected a string for label \"a\", got a mapping");
    expect_error(CLUSTER EP "        labels: {a: x, a: y}\n",
                 "weft.yaml:6:24: duplicate label \"a\"");
    /* 65 labels: one over the cap */
    char yaml[4096];
    int len = snprintf(yaml, sizeof(yaml), "%s", CLUSTER EP "        labels: {");
    for (int i = 0; i < 65; i++)
        len += snprintf(yaml + len, sizeof(yaml) - (size_t)len, "%sk%d: v", i ? ", " : "", i);
    snprintf(yaml + len, sizeof(yaml) - (size_t)len, "}\n");
    expect_error(yaml, "weft.yaml:6:17: an endpoint has at most 64 labels, got 65");
#undef EP
}

static void test_error_clusters(void **state) {
    (void)state;
    expect_error("clusters:\n  - {name: a, endpoints: []}\n  - {name: a, endpoints: []}\n",
                 "weft.yaml:3:12: duplicate cluster name \"a\" (first defined at 2:5)");
    expect_error(CLUSTER "    lb_policy: round_robin\n",
                 "weft.yaml:2:5: cluster \"c\" has no endpoints");
    expect_error(CLUSTER "    endpoints: [{address: 10.0.0.1, port: 80, weight: 0}]\n",
                 "weft.yaml:3:55: weight must be between 1 and 1000, got 0");
    expect_error(CLUSTER "    endpoints: [{address: 10.0.0.1, port: 80, weight: 1001}]\n",
                 "weft.yaml:3:55: weight must be between 1 and 1000, got 1001");
    expect_error(CLUSTER "    endpoints: [{address: 10.0.0.1, port: 0}]\n",
                 "weft.yaml:3:43: port must be between 1 and 65535, got 0");
    expect_error(CLUSTER "    endpoints: [{address: 10.0.0.1}]\n",
                 "weft.yaml:3:17: endpoint is missing \"port\"");
    expect_error(CLUSTER "    endpoints: [{address: \"bad host!\", port: 1}]\n",
                 "weft.yaml:3:27: endpoint address \"bad host!\" is neither an IP address nor a "
                 "host name");
    expect_error(CLUSTER "    endpoints: []\n    lb_policy: fastest\n",
                 "weft.yaml:4:16: unknown lb_policy \"fastest\" (expected round_robin, "
                 "least_request, random, ring_hash or peak_ewma)");
    expect_error(
        CLUSTER "    endpoints: []\n    lb_policy: ring_hash\n",
        "weft.yaml:4:16: lb_policy ring_hash needs a \"ring_hash\" section with \"hash_on\"");
    expect_error(CLUSTER "    endpoints: []\n    ring_hash: {hash_on: source_ip}\n",
                 "weft.yaml:4:5: \"ring_hash\" settings need lb_policy: ring_hash");
    expect_error(CLUSTER
                 "    endpoints: []\n    lb_policy: ring_hash\n    ring_hash: {hash_on: header}\n",
                 "weft.yaml:5:16: ring_hash is missing \"name\"");
    expect_error(CLUSTER
                 "    endpoints: []\n    lb_policy: ring_hash\n    ring_hash: {hash_on: body}\n",
                 "weft.yaml:5:26: unknown hash_on \"body\" (expected header, cookie or source_ip)");
    expect_error(CLUSTER "    endpoints: []\n    health_check: {healthy_threshold: 0}\n",
                 "weft.yaml:4:39: healthy_threshold must be between 1 and 1000, got 0");
    expect_error(CLUSTER "    endpoints: []\n    health_check: {unhealthy_threshold: 0}\n",
                 "weft.yaml:4:41: unhealthy_threshold must be between 1 and 1000, got 0");
    expect_error(CLUSTER "    endpoints: []\n"
                         "    health_check: {expected_statuses: {min: 400, max: 200}}\n",
                 "weft.yaml:4:39: expected_statuses min (400) is greater than max (200)");
    expect_error(CLUSTER "    endpoints: []\n    health_check: {interval: 0}\n",
                 "weft.yaml:4:30: interval must be at least 1ms, got \"0\"");
    expect_error(CLUSTER "    endpoints: []\n    health_check: {path: healthz}\n",
                 "weft.yaml:4:26: health check path must start with \"/\" and contain only visible "
                 "ASCII, got \"healthz\"");
    expect_error(CLUSTER "    endpoints: []\n    connect_timeout: 0s\n",
                 "weft.yaml:4:22: connect_timeout must be at least 1ms, got \"0s\"");
}

/* A big generated config (as weftd produces for an outbound sidecar):
 * loads, and a duplicate at the very end is still found and placed. */
/* ------------------------------------------------------- tcp_proxy */

static const char TCP[] = "admin: {port: 15001}\n"
                          "clusters:\n"
                          "  - name: redis\n"
                          "    endpoints: [{address: 127.0.0.1, port: 6379}]\n"
                          "    connect_timeout: 250ms\n"
                          "listeners:\n"
                          "  - name: http\n"
                          "    port: 8080\n"
                          "  - name: redis-in\n"
                          "    address: 127.0.0.1\n"
                          "    port: 7000\n"
                          "    limits: {buffer_high_watermark: 64KiB, max_connections: 10}\n"
                          "    tcp_proxy:\n"
                          "      cluster: redis\n"
                          "      idle_timeout: 90s\n"
                          "      max_connect_attempts: 3\n"
                          "  - name: defaults\n"
                          "    port: 7001\n"
                          "    tcp_proxy: {cluster: redis}\n";

static void test_tcp_proxy(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load(TCP, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->n_listeners, 3);
    const weft_cfg_listener *h = &cfg->listeners[0], *t = &cfg->listeners[1],
                            *d = &cfg->listeners[2];
    assert_false(h->is_tcp);
    assert_null(h->tcp_cluster);
    assert_true(t->is_tcp);
    assert_string_equal(t->tcp_cluster, "redis");
    assert_int_equal(t->tcp_idle_timeout_ms, 90000);
    assert_int_equal(t->tcp_connect_attempts, 3);
    assert_int_equal(t->tcp_pos.line, 14);
    assert_int_equal(t->tcp_pos.col, 7);
    assert_int_equal(t->limits.buffer_high_watermark, 64 * 1024);
    assert_int_equal(t->n_vhosts, 0);
    assert_int_equal(t->n_filters, 0);
    assert_true(d->is_tcp);
    assert_string_equal(d->tcp_cluster, "redis");
    assert_int_equal(d->tcp_idle_timeout_ms, 3600 * 1000);
    assert_int_equal(d->tcp_connect_attempts, 1);
    assert_round_trip(cfg);
    char *text = dump_to_string(cfg);
    assert_non_null(strstr(text, "    tcp_proxy:\n"
                                 "      cluster: \"redis\"\n"
                                 "      idle_timeout: 90000ms\n"
                                 "      max_connect_attempts: 3\n"));
    free(text);
    weft_config_free(cfg);

    /* idle_timeout: 0 turns the idle timeout off */
    cfg = load("clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]\n"
               "listeners: [{name: t, port: 7000, tcp_proxy: {cluster: c, idle_timeout: 0}}]\n",
               &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->listeners[0].tcp_idle_timeout_ms, 0);
    assert_round_trip(cfg);
    weft_config_free(cfg);
}

#define TCP_CLUSTER "clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]\n"

static void test_error_tcp_proxy(void **state) {
    (void)state;
    expect_error(TCP_CLUSTER "listeners:\n"
                             "  - name: t\n"
                             "    port: 7000\n"
                             "    tcp_proxy: {cluster: x}\n",
                 "weft.yaml:5:26: tcp_proxy names unknown cluster \"x\"");
    expect_error(TCP_CLUSTER "listeners:\n"
                             "  - name: t\n"
                             "    port: 7000\n"
                             "    virtual_hosts: [{name: v}]\n"
                             "    tcp_proxy: {cluster: c}\n",
                 "weft.yaml:5:5: a tcp_proxy listener takes no \"virtual_hosts\" "
                 "(they apply to HTTP listeners)");
    expect_error(TCP_CLUSTER "listeners:\n"
                             "  - name: t\n"
                             "    port: 7000\n"
                             "    tcp_proxy: {cluster: c}\n"
                             "    merge_slashes: true\n",
                 "weft.yaml:6:5: a tcp_proxy listener takes no \"merge_slashes\" "
                 "(they apply to HTTP listeners)");
    expect_error(TCP_CLUSTER "listeners: [{name: t, port: 7000, tcp_proxy: {idle_timeout: 1h}}]\n",
                 "weft.yaml:2:46: tcp_proxy is missing \"cluster\"");
    expect_error(TCP_CLUSTER
                 "listeners: [{name: t, port: 7000, tcp_proxy: {cluster: c, retries: 2}}]\n",
                 "weft.yaml:2:59: unknown key \"retries\"");
    expect_error(TCP_CLUSTER
                 "listeners: [{name: t, port: 7000, tcp_proxy: {cluster: c, idle_timout: 1s}}]\n",
                 "weft.yaml:2:59: unknown key \"idle_timout\" (did you mean \"idle_timeout\"?)");
    expect_error(
        TCP_CLUSTER
        "listeners: [{name: t, port: 7000, tcp_proxy: {cluster: c, max_connect_attempts: 0}}]\n",
        "weft.yaml:2:81: max_connect_attempts must be between 1 and 100, got 0");
    expect_error(
        TCP_CLUSTER
        "listeners: [{name: t, port: 7000, tcp_proxy: {cluster: c, idle_timeout: soon}}]\n",
        "weft.yaml:2:73: expected a duration like \"250ms\", got \"soon\"");
    expect_error(TCP_CLUSTER "listeners: [{name: t, port: 7000, tcp_proxy: [c]}]\n",
                 "weft.yaml:2:46: expected a mapping for tcp_proxy, got a list");
}

static void test_large_config(void **state) {
    (void)state;
    enum { N = 3000 };
    size_t cap = (size_t)N * 256 + 1024, o = 0;
    char *y = malloc(cap);
    assert_non_null(y);
    o += (size_t)snprintf(y + o, cap - o, "clusters:\n");
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(y + o, cap - o,
                              "  - {name: \"outbound|80||svc%d.ns.svc\", endpoints: [{address: "
                              "10.%d.%d.1, port: 80}]}\n",
                              i, i / 250, i % 250);
    o += (size_t)snprintf(y + o, cap - o,
                          "listeners:\n  - name: outbound\n    port: 15001\n    virtual_hosts:\n");
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(y + o, cap - o,
                              "      - {domains: [svc%d, svc%d.ns.svc], routes: [{match: {prefix: "
                              "/}, cluster: \"outbound|80||svc%d.ns.svc\"}]}\n",
                              i, i, N - 1 - i);
    weft_config_error err;
    weft_config *cfg = load(y, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg->n_clusters, N);
    assert_int_equal(cfg->listeners[0].n_vhosts, N);
    assert_string_equal(cfg->listeners[0].vhosts[N - 1].name, "svc2999");
    weft_config_free(cfg);

    /* line of the added vhost: 1 + N clusters + 4 listener lines + N vhosts + 1 */
    snprintf(y + o, cap - o, "      - {domains: [SVC7.ns.svc]}\n");
    char want[128];
    snprintf(want, sizeof(want),
             "weft.yaml:%d:20: domain \"svc7.ns.svc\" is already used by virtual host \"svc7\"",
             1 + N + 4 + N + 1);
    expect_error(y, want);
    free(y);
}

/* The YAML document is freed after the load; the filters' `config:` nodes
 * are copied into a small document the config keeps, with their values,
 * order and positions. */
static void test_filter_config_kept(void **state) {
    (void)state;
    const char *y = "listeners:\n"
                    "  - name: a\n"
                    "    port: 8080\n"
                    "    filters:\n"
                    "      - name: f1\n"
                    "        config:\n"
                    "          list: [1, \"two\", {k: v}]\n"
                    "          empty: ''\n"
                    "      - name: f2\n"
                    "      - name: f3\n"
                    "        config: plain\n"
                    "clusters: []\n";
    weft_config_error err;
    weft_config *cfg = load(y, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    const weft_cfg_listener *li = &cfg->listeners[0];
    assert_int_equal(li->n_filters, 3);
    const cy_node *c = li->filters[0].node;
    assert_non_null(c);
    assert_int_equal(c->kind, CY_MAP);
    assert_int_equal(c->n, 4);
    assert_int_equal(c->line, 7);
    assert_int_equal(c->col, 11);
    const cy_node *k = c->first;
    assert_string_equal(k->str, "list");
    const cy_node *l = k->next;
    assert_int_equal(l->kind, CY_SEQ);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->first->str, "1");
    assert_true(l->first->plain);
    assert_string_equal(l->first->next->str, "two");
    assert_false(l->first->next->plain);
    const cy_node *m = l->first->next->next;
    assert_int_equal(m->kind, CY_MAP);
    assert_string_equal(m->first->str, "k");
    assert_string_equal(m->first->next->str, "v");
    assert_null(m->first->next->next);
    assert_null(m->next);
    const cy_node *e = l->next;
    assert_string_equal(e->str, "empty");
    assert_int_equal(e->next->len, 0);
    assert_string_equal(e->next->str, "");
    assert_null(e->next->next);
    assert_null(li->filters[1].node);
    assert_non_null(li->filters[2].node);
    assert_string_equal(((const cy_node *)li->filters[2].node)->str, "plain");
    assert_int_equal(((const cy_node *)li->filters[2].node)->line, 11);
    char *text = dump_to_string(cfg);
    assert_non_null(strstr(text, "{\"list\": [\"1\", \"two\", {\"k\": \"v\"}], \"empty\": \"\"}"));
    free(text);
    weft_config_free(cfg);
}

/* Routes' filter_config: {<filter>: <node>}: names checked against the
 * listener's filters, nodes kept (with positions) after the document is
 * freed, shown by the dump; errors at file:line:col. */
static void test_route_filter_config(void **state) {
    (void)state;
    const char *y = "listeners:\n"
                    "  - name: a\n"
                    "    port: 8080\n"
                    "    filters: [{name: f1}, {name: f2}]\n"
                    "    virtual_hosts:\n"
                    "      - name: v\n"
                    "        routes:\n"
                    "          - name: r1\n"
                    "            match: {prefix: /}\n"
                    "            cluster: c\n"
                    "            filter_config:\n"
                    "              f2: {header_value: x}\n"
                    "              f1: ~\n"
                    "          - {match: {prefix: /b}, cluster: c}\n"
                    "clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]\n";
    weft_config_error err;
    weft_config *cfg = load(y, &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    const weft_cfg_route *r = &cfg->listeners[0].vhosts[0].routes[0];
    assert_int_equal(r->n_filter_cfgs, 2);
    assert_string_equal(r->filter_cfgs[0].name, "f2");
    assert_int_equal(r->filter_cfgs[0].pos.line, 12);
    assert_int_equal(r->filter_cfgs[0].pos.col, 15);
    const cy_node *n = r->filter_cfgs[0].node;
    assert_non_null(n);
    assert_int_equal(n->kind, CY_MAP);
    assert_string_equal(n->first->str, "header_value");
    assert_string_equal(n->first->next->str, "x");
    assert_string_equal(r->filter_cfgs[1].name, "f1");
    assert_null(r->filter_cfgs[1].node);
    assert_int_equal(cfg->listeners[0].vhosts[0].routes[1].n_filter_cfgs, 0);
    char *text = dump_to_string(cfg);
    assert_non_null(strstr(text, "filter_config:"));
    assert_non_null(strstr(text, "{\"header_value\": \"x\"}"));
    free(text);
    weft_config_free(cfg);

    const char *head = "listeners:\n"
                       "  - name: a\n"
                       "    port: 8080\n"
                       "    filters: [{name: f1}]\n"
                       "    virtual_hosts:\n"
                       "      - name: v\n"
                       "        routes:\n"
                       "          - match: {prefix: /}\n"
                       "            cluster: c\n";
    const char *tail = "clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]\n";
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s            filter_config: {nope: {}}\n%s", head, tail);
    expect_error(buf, "weft.yaml:10:29: filter_config names filter \"nope\", which is not in the "
                      "filters of listener \"a\"");
    snprintf(buf, sizeof(buf), "%s            filter_config: [f1]\n%s", head, tail);
    expect_error(buf, "weft.yaml:10:28: filter_config must be a map of filter name to its "
                      "per-route config");
    snprintf(buf, sizeof(buf), "%s            filter_config: {f1: 1, f1: 2}\n%s", head, tail);
    weft_config_error e2;
    memset(&e2, 0, sizeof(e2));
    weft_config *c2 = load(buf, &e2);
    if (c2)
        weft_config_free(c2);
    assert_null(c2); /* a duplicate key: refused (by the YAML loader or by filter_config) */
    assert_non_null(strstr(e2.msg, "weft.yaml:10:"));
}

/* Caps on what filters consume per stream (limits.filter_*). */
static void test_filter_caps(void **state) {
    (void)state;
    weft_config_error err;
    const char *y = "listeners:\n"
                    "  - {name: a, port: 80, limits: {filter_arena_bytes: 64KiB, "
                    "filter_metadata_entries: 5, filter_timers: 3, filter_callouts: 0}}\n";
    weft_config *cfg = load(y, &err);
    assert_non_null(cfg);
    const weft_cfg_limits *l = &cfg->listeners[0].limits;
    assert_int_equal(l->filter_arena_bytes, 64 * 1024);
    assert_int_equal(l->filter_metadata_entries, 5);
    assert_int_equal(l->filter_timers, 3);
    assert_int_equal(l->filter_callouts, 0);
    weft_config_free(cfg);
    cfg = load("listeners:\n  - {name: a, port: 80, limits: {filter_timers: -1}}\n", &err);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "weft.yaml:2:"));
}

/* callouts: the per-worker cap and the default response body limit. */
static void test_callouts(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load("workers: 1\n", &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->callouts_max_per_worker, 1024);
    assert_int_equal(cfg->callouts_max_response_body, 1024 * 1024);
    weft_config_free(cfg);
    cfg = load("callouts: {max_per_worker: 3, max_response_body: 64KiB}\n", &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->callouts_max_per_worker, 3);
    assert_int_equal(cfg->callouts_max_response_body, 64 * 1024);
    weft_config_free(cfg);
    expect_error("workers: 1\ncallouts: {max_per_worker: 0}\n",
                 "weft.yaml:2:28: max_per_worker must be between 1 and 1000000, got 0");
    cfg = load("callouts: {max_response_body: lots}\n", &err);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "weft.yaml:1:"));
    cfg = load("callouts: {max_inflight: 3}\n", &err);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "max_inflight"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callouts),
        cmocka_unit_test(test_filter_caps),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_health_check_defaults),
        cmocka_unit_test(test_empty_and_workers),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_uses_dns),
        cmocka_unit_test(test_ring_hash_variants),
        cmocka_unit_test(test_dump_escapes),
        cmocka_unit_test(test_dump_text),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_request_path_keys),
        cmocka_unit_test(test_dump_redacts_secrets),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_large_config),
        cmocka_unit_test(test_filter_config_kept),
        cmocka_unit_test(test_route_filter_config),
        cmocka_unit_test(test_error_yaml),
        cmocka_unit_test(test_error_structure),
        cmocka_unit_test(test_error_values),
        cmocka_unit_test(test_error_listeners),
        cmocka_unit_test(test_error_routes),
        cmocka_unit_test(test_error_clusters),
        cmocka_unit_test(test_endpoint_locality_labels),
        cmocka_unit_test(test_error_endpoint_meta),
        cmocka_unit_test(test_tcp_proxy),
        cmocka_unit_test(test_reset_retry),
        cmocka_unit_test(test_error_tcp_proxy),
        cmocka_unit_test(test_dns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
