/* outlier: a small outlier detector on SDK 1.1's state calls, for
 * test_shared_state.sh and the kit test.
 *
 *   config:
 *     cluster: be              # required: the cluster it watches
 *     consecutive_5xx: 3       # eject after N consecutive 5xx / connect failures (default 3)
 *     ejection_time: 2s        # for this long (default 1s)
 *     slot: 0                  # the endpoint counter slot it counts in (default 0)
 *     state_version: 1         # the layout version of its shared block (default 1)
 *     state_size: 64           # the size of its shared block (default 64, at least 16)
 *
 * Shared state, key "requests" (survives reloads while version and size
 * stay): a request counter, bumped per request; the response carries it
 * as x-outlier-requests, and the block's generation (how many blocks this
 * process created, from a global of the .so) as x-outlier-block.
 * on_upstream_attempt counts consecutive failures per endpoint of the
 * cluster in the endpoint counter `slot`; at N it ejects the endpoint for
 * ejection_time and resets the count (a success resets it too).
 * x-outlier-endpoints lists the cluster's endpoints as the worker sees
 * them: "ip:port=health/ejected_ms/weight[/label=value]" separated by ",".
 *
 * Stats: ejections (counter). Logs "outlier: shared block destroyed (N
 * requests)" at info level from the block's destroy callback. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

typedef struct outlier_block {
    _Atomic uint64_t requests;
    uint64_t generation; /* set by init */
} outlier_block;

typedef struct outlier_config {
    const weft_cluster *cluster;
    char cluster_name[128];
    int64_t threshold;
    uint64_t eject_ms;
    uint32_t slot;
    outlier_block *block;
    int32_t st_ejections;
} outlier_config;

typedef struct outlier_stream {
    outlier_config *cfg;
    uint64_t request_no;
} outlier_stream;

static _Atomic uint64_t blocks_made;

static void block_init(void *block, size_t size, void *arg) {
    (void)size;
    (void)arg;
    outlier_block *b = block;
    b->generation = atomic_fetch_add(&blocks_made, 1) + 1;
}

static void block_destroy(void *block, size_t size, void *arg) {
    (void)size;
    (void)arg;
    outlier_block *b = block;
    char msg[96];
    snprintf(msg, sizeof(msg), "outlier: shared block destroyed (%llu requests)",
             (unsigned long long)atomic_load(&b->requests));
    weft_log_msg(WEFT_LOG_LEVEL_INFO, "outlier", msg);
}

static int int_opt(const weft_config_node *node, const char *key, int64_t def, int64_t min,
                   int64_t max, weft_filter_setup *setup, int64_t *out) {
    const weft_config_node *n = weft_config_get(node, key);
    *out = def;
    if (!n)
        return 0;
    if (weft_config_int(n, out) != WEFT_OK || *out < min || *out > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s must be an integer in %lld..%lld", key, (long long)min,
                 (long long)max);
        return weft_config_fail(setup, n, msg);
    }
    return 0;
}

static int outlier_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                 void **config) {
    outlier_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    int64_t slot, version, size;
    weft_str name;
    const weft_config_node *cn = weft_config_get(node, "cluster");
    const weft_config_node *tn = weft_config_get(node, "ejection_time");
    if (!cn || weft_config_string(cn, &name) != WEFT_OK || name.len >= sizeof(c->cluster_name)) {
        free(c);
        return weft_config_fail(setup, cn ? cn : node, "cluster: a cluster name is required");
    }
    memcpy(c->cluster_name, name.ptr, name.len);
    c->eject_ms = 1000;
    if (tn && (weft_config_duration_ms(tn, &c->eject_ms) != WEFT_OK || c->eject_ms == 0)) {
        free(c);
        return weft_config_fail(setup, tn, "ejection_time must be a duration above 0");
    }
    if (int_opt(node, "consecutive_5xx", 3, 1, 1000, setup, &c->threshold) ||
        int_opt(node, "slot", 0, 0, WEFT_ENDPOINT_COUNTER_SLOTS - 1, setup, &slot) ||
        int_opt(node, "state_version", 1, 0, UINT32_MAX, setup, &version) ||
        int_opt(node, "state_size", 64, (int64_t)sizeof(outlier_block), 4096, setup, &size)) {
        free(c);
        return -1;
    }
    c->slot = (uint32_t)slot;
    weft_result r = weft_cluster_get(setup, name, &c->cluster);
    if (r != WEFT_OK) {
        free(c);
        return weft_config_fail(
            setup, cn, r == WEFT_ERR_NOT_FOUND ? "no such cluster" : "weft_cluster_get failed");
    }
    void *block;
    r = weft_shared_get(setup, WEFT_STR("requests"), (size_t)size, (uint32_t)version, block_init,
                        block_destroy, NULL, &block);
    if (r != WEFT_OK) {
        free(c);
        return weft_config_fail(setup, node, "weft_shared_get failed");
    }
    c->block = block;
    c->st_ejections = weft_stat_counter(setup, "ejections", "endpoints ejected");
    *config = c;
    return 0;
}

static void outlier_config_destroy(void *config) {
    free(config);
}

static void *outlier_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    outlier_stream *os = calloc(1, sizeof(*os));
    if (os)
        os->cfg = config;
    return os;
}

static void outlier_stream_destroy(void *ctx) {
    free(ctx);
}

static weft_status outlier_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)s;
    (void)end_stream;
    outlier_stream *os = ctx;
    if (os)
        os->request_no = atomic_fetch_add(&os->cfg->block->requests, 1) + 1;
    return WEFT_CONTINUE;
}

static void outlier_attempt(void *ctx, weft_stream *s, const weft_attempt_info *info) {
    outlier_stream *os = ctx;
    if (!os)
        return;
    outlier_config *c = os->cfg;
    if (info->cluster.len != strlen(c->cluster_name) ||
        memcmp(info->cluster.ptr, c->cluster_name, info->cluster.len) != 0)
        return;
    size_t i;
    if (weft_cluster_endpoint_find(s, c->cluster, info->upstream_host, &i) != WEFT_OK)
        return;
    bool failed = (info->result == WEFT_ATTEMPT_RESPONSE && info->status >= 500) ||
                  info->result == WEFT_ATTEMPT_CONNECT_FAILURE ||
                  info->result == WEFT_ATTEMPT_CONNECT_TIMEOUT;
    if (!failed) {
        weft_endpoint_counter_set(s, c->cluster, i, c->slot, 0);
        return;
    }
    uint64_t n = 0;
    if (weft_endpoint_counter_add(s, c->cluster, i, c->slot, 1, &n) != WEFT_OK)
        return;
    if (n >= (uint64_t)c->threshold) {
        weft_endpoint_counter_set(s, c->cluster, i, c->slot, 0);
        if (weft_endpoint_eject(s, c->cluster, i, c->eject_ms) == WEFT_OK)
            weft_stat_inc(c->st_ejections, 1);
    }
}

static weft_status outlier_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    outlier_stream *os = ctx;
    if (!os)
        return WEFT_CONTINUE;
    char buf[1024];
    int len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)os->request_no);
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-outlier-requests"),
                    (weft_str){buf, (size_t)len});
    len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)os->cfg->block->generation);
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-outlier-block"),
                    (weft_str){buf, (size_t)len});
    size_t n = 0, off = 0;
    weft_cluster_endpoint_count(s, os->cfg->cluster, &n);
    for (size_t i = 0; i < n && off < sizeof(buf) - 200; i++) {
        weft_endpoint_info info = {.size = sizeof(info)};
        if (weft_cluster_endpoint_get(s, os->cfg->cluster, i, &info) != WEFT_OK)
            continue;
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%.*s=%u/%llu/%u", i ? "," : "",
                                (int)info.address.len, info.address.ptr, info.health,
                                (unsigned long long)info.ejected_ms, info.weight);
        weft_str k, v;
        if (info.n_labels &&
            weft_cluster_endpoint_label(s, os->cfg->cluster, i, 0, &k, &v) == WEFT_OK)
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, "/%.*s=%.*s", (int)k.len, k.ptr,
                                    (int)v.len, v.ptr);
    }
    if (off)
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-outlier-endpoints"),
                        (weft_str){buf, off});
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = outlier_config_create,
    .config_destroy = outlier_config_destroy,
    .stream_create = outlier_stream_create,
    .stream_destroy = outlier_stream_destroy,
    .on_request_headers = outlier_request_headers,
    .on_upstream_attempt = outlier_attempt,
    .on_response_headers = outlier_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("outlier", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
