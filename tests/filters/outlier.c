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
 *     restore_after: 500ms     # un-eject from a worker timer after this long (default: never,
 *                              # the ejection runs its ejection_time)
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
 *
 * Per-route config (filter_config: {outlier: {route_counter: NAME}}):
 * route_config_create asks for the shared block "route:NAME" (per-route
 * state, kept over reloads like the filter's own); each request of the
 * route bumps it and the response carries x-outlier-route-requests. Its
 * destroy callback logs "outlier: route block NAME destroyed (N
 * requests)".
 *
 * Worker-scoped (the [1.1 state] worker variants, weft_worker_*): each
 * worker object keeps its worker handle and a worker number (1, 2, ...
 * in worker_create order, process-wide), sent as x-outlier-worker. With
 * restore_after, an ejection starts a worker timer on the ejecting worker
 * that finds the endpoint again by address (weft_worker_cluster_endpoint_
 * find), restores it if it is still ejected and clears its counter. A
 * request header "x-outlier-restore-in: MS" starts a worker timer (MS
 * milliseconds) on the worker of that request that restores every
 * ejected endpoint of the cluster (a sweep: count, get, restore). Each
 * restore done from a worker timer counts in the stat "restores".
 * worker_destroy checks that the worker calls answer WEFT_ERR_STATE there
 * and a NULL handle WEFT_ERR_HANDLE; each request tries the previous
 * request's worker handle (kept in a global): another worker's must get
 * WEFT_ERR_THREAD (counted in "foreign_thread"), an older config's of
 * this worker WEFT_ERR_HANDLE; a wrong answer counts in "bad".
 *
 * Stats: ejections, restores, bad, foreign_thread (counters). Logs "outlier: shared block destroyed
 * (N requests)" at info level from the block's destroy callback. */
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
    uint64_t restore_ms; /* 0: no restore timer */
    outlier_block *block;
    int32_t st_ejections, st_restores, st_bad, st_foreign;
} outlier_config;

/* A restore timer's argument: one endpoint (by address), or all (n 0). */
typedef struct outlier_restore {
    struct outlier_worker *ow;
    size_t n;
    char address[64];
    struct outlier_restore *next; /* the worker's pending restores */
} outlier_restore;

/* Per (config, worker): the worker handle for the worker-scoped calls. */
typedef struct outlier_worker {
    outlier_config *cfg;
    weft_worker *w;
    uint64_t number;
    outlier_restore *pending; /* armed restore timers (freed in worker_destroy: weft cancels
                               * them without their callback) */
} outlier_worker;

typedef struct outlier_stream {
    outlier_config *cfg;
    outlier_worker *ow;
    uint64_t request_no;
    uint64_t route_request_no; /* 0: the route has no route_counter */
} outlier_stream;

/* A route's shared block (key "route:NAME"). */
typedef struct route_block {
    _Atomic uint64_t requests;
    char name[64]; /* set by init */
} route_block;

/* Per-route config: the route's shared block. */
typedef struct outlier_route {
    route_block *block;
} outlier_route;

static _Atomic uint64_t blocks_made;
static _Atomic uint64_t workers_made;
/* The worker handle of the last request (any worker): the next request's
 * worker tries it, another worker's must get WEFT_ERR_THREAD. */
static _Atomic uintptr_t last_handle;

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
    const weft_config_node *rn = weft_config_get(node, "restore_after");
    if (rn && (weft_config_duration_ms(rn, &c->restore_ms) != WEFT_OK || c->restore_ms == 0 ||
               c->restore_ms > WEFT_TIMER_MAX_MS)) {
        free(c);
        return weft_config_fail(setup, rn, "restore_after must be a duration above 0");
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
    c->st_restores = weft_stat_counter(setup, "restores", "endpoints restored by a worker timer");
    c->st_bad = weft_stat_counter(setup, "bad", "worker calls that answered wrongly");
    c->st_foreign = weft_stat_counter(setup, "foreign_thread",
                                      "another worker's handle refused with WEFT_ERR_THREAD");
    *config = c;
    return 0;
}

static void outlier_config_destroy(void *config) {
    free(config);
}

static void route_block_init(void *block, size_t size, void *arg) {
    (void)size;
    route_block *b = block;
    snprintf(b->name, sizeof(b->name), "%s", (const char *)arg);
}

/* arg (route_config_create's stack buffer, for init) is not used here. */
static void route_block_destroy(void *block, size_t size, void *arg) {
    (void)size;
    (void)arg;
    route_block *b = block;
    char msg[160];
    snprintf(msg, sizeof(msg), "outlier: route block %s destroyed (%llu requests)", b->name,
             (unsigned long long)atomic_load(&b->requests));
    weft_log_msg(WEFT_LOG_LEVEL_INFO, "outlier", msg);
}

static int outlier_route_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                       void *filter_config, void **route_config) {
    (void)filter_config;
    const weft_config_node *n = weft_config_get(node, "route_counter");
    weft_str name;
    outlier_route *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return weft_config_fail(setup, node, "out of memory");
    if (!n || weft_config_string(n, &name) != WEFT_OK || !name.len ||
        name.len >= sizeof(((route_block *)0)->name)) {
        free(rc);
        return weft_config_fail(setup, n ? n : node, "route_counter: a name is required");
    }
    char key[80], plain[64];
    int klen = snprintf(key, sizeof(key), "route:%.*s", (int)name.len, name.ptr);
    snprintf(plain, sizeof(plain), "%.*s", (int)name.len, name.ptr);
    void *block = NULL;
    if (weft_shared_get(setup, (weft_str){key, (size_t)klen}, sizeof(route_block), 1,
                        route_block_init, route_block_destroy, plain, &block) != WEFT_OK) {
        free(rc);
        return weft_config_fail(setup, n, "weft_shared_get failed");
    }
    rc->block = block;
    *route_config = rc;
    return 0;
}

static void outlier_route_config_destroy(void *filter_config, void *route_config) {
    (void)filter_config;
    outlier_route *rc = route_config;
    /* the block is still held here (released after config_destroy) */
    (void)atomic_load(&rc->block->requests);
    free(rc);
}

static void *outlier_worker_create(void *config) {
    outlier_worker *ow = calloc(1, sizeof(*ow));
    if (!ow)
        return NULL;
    ow->cfg = config;
    ow->w = weft_worker_current(config);
    ow->number = atomic_fetch_add(&workers_made, 1) + 1;
    return ow;
}

static void outlier_worker_destroy(void *config, void *worker) {
    outlier_config *c = config;
    outlier_worker *ow = worker;
    size_t n;
    /* The worker's view is gone here: STATE; a NULL handle: HANDLE. */
    if ((ow && ow->w &&
         weft_worker_cluster_endpoint_count(ow->w, c->cluster, &n) != WEFT_ERR_STATE) ||
        weft_worker_endpoint_restore(NULL, c->cluster, 0) != WEFT_ERR_HANDLE)
        weft_stat_inc(c->st_bad, 1);
    while (ow && ow->pending) {
        outlier_restore *rs = ow->pending;
        ow->pending = rs->next;
        free(rs);
    }
    free(ow);
}

/* Restores endpoint i of the worker's view if it is ejected. */
static void restore_one(outlier_worker *ow, size_t i) {
    outlier_config *c = ow->cfg;
    weft_endpoint_info info = {.size = sizeof(info)};
    if (weft_worker_cluster_endpoint_get(ow->w, c->cluster, i, &info) != WEFT_OK ||
        info.health != WEFT_ENDPOINT_EJECTED)
        return;
    if (weft_worker_endpoint_restore(ow->w, c->cluster, i) == WEFT_OK &&
        weft_worker_endpoint_counter_set(ow->w, c->cluster, i, c->slot, 0) == WEFT_OK)
        weft_stat_inc(c->st_restores, 1);
    else
        weft_stat_inc(c->st_bad, 1);
}

/* A worker timer: restore one endpoint (found again by its address: the
 * view may have changed since the ejection) or sweep the cluster. */
static void restore_timer(weft_worker *w, void *arg) {
    outlier_restore *rs = arg;
    outlier_worker *ow = rs->ow;
    for (outlier_restore **pp = &ow->pending; *pp; pp = &(*pp)->next)
        if (*pp == rs) {
            *pp = rs->next;
            break;
        }
    if (w != ow->w)
        weft_stat_inc(ow->cfg->st_bad, 1);
    size_t i, n = 0;
    if (rs->n) {
        if (weft_worker_cluster_endpoint_find(w, ow->cfg->cluster, (weft_str){rs->address, rs->n},
                                              &i) == WEFT_OK)
            restore_one(ow, i);
    } else if (weft_worker_cluster_endpoint_count(w, ow->cfg->cluster, &n) == WEFT_OK) {
        for (i = 0; i < n; i++)
            restore_one(ow, i);
    }
    free(rs);
}

/* Starts a restore timer on the worker of ow in ms (address NULL: all). */
static void restore_later(outlier_worker *ow, uint64_t ms, weft_str address) {
    outlier_restore *rs = calloc(1, sizeof(*rs));
    if (!rs || !ow || !ow->w || address.len >= sizeof(rs->address)) {
        free(rs);
        return;
    }
    rs->ow = ow;
    rs->n = address.len;
    if (address.len)
        memcpy(rs->address, address.ptr, address.len);
    if (weft_worker_timer_start(ow->w, ms, restore_timer, rs, NULL) != WEFT_OK) {
        free(rs);
        return;
    }
    rs->next = ow->pending;
    ow->pending = rs;
}

static void *outlier_stream_create(void *config, void *worker, weft_stream *s) {
    (void)s;
    outlier_stream *os = calloc(1, sizeof(*os));
    if (os) {
        os->cfg = config;
        os->ow = worker;
    }
    return os;
}

static void outlier_stream_destroy(void *ctx) {
    free(ctx);
}

/* Tries the last request's worker handle: another worker's must be
 * refused with THREAD (its table is not read), a stale one of this worker
 * (an older config's) with HANDLE; then leaves this worker's handle. */
static void foreign_probe(outlier_stream *os) {
    if (!os->ow || !os->ow->w)
        return;
    weft_worker *other = (weft_worker *)atomic_exchange(&last_handle, (uintptr_t)os->ow->w);
    if (!other || other == os->ow->w)
        return;
    size_t n;
    weft_result r = weft_worker_cluster_endpoint_count(other, os->cfg->cluster, &n);
    if (r == WEFT_ERR_THREAD)
        weft_stat_inc(os->cfg->st_foreign, 1);
    else if (r != WEFT_ERR_HANDLE)
        weft_stat_inc(os->cfg->st_bad, 1);
}

static weft_status outlier_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    outlier_stream *os = ctx;
    if (!os)
        return WEFT_CONTINUE;
    os->request_no = atomic_fetch_add(&os->cfg->block->requests, 1) + 1;
    foreign_probe(os);
    const outlier_route *rc = weft_route_config(s);
    if (rc)
        os->route_request_no = atomic_fetch_add(&rc->block->requests, 1) + 1;
    weft_str v;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-outlier-restore-in"), &v) == WEFT_OK &&
        v.len && v.len < 10) {
        char num[16];
        memcpy(num, v.ptr, v.len);
        num[v.len] = '\0';
        restore_later(os->ow, strtoull(num, NULL, 10), (weft_str){NULL, 0});
    }
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
        if (weft_endpoint_eject(s, c->cluster, i, c->eject_ms) == WEFT_OK) {
            weft_stat_inc(c->st_ejections, 1);
            if (c->restore_ms)
                restore_later(os->ow, c->restore_ms, info->upstream_host);
        }
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
    if (os->route_request_no) {
        len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)os->route_request_no);
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-outlier-route-requests"),
                        (weft_str){buf, (size_t)len});
    }
    if (os->ow) {
        len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)os->ow->number);
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-outlier-worker"),
                        (weft_str){buf, (size_t)len});
    }
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
    .worker_create = outlier_worker_create,
    .worker_destroy = outlier_worker_destroy,
    .stream_create = outlier_stream_create,
    .stream_destroy = outlier_stream_destroy,
    .on_request_headers = outlier_request_headers,
    .on_upstream_attempt = outlier_attempt,
    .on_response_headers = outlier_response_headers,
    .route_config_create = outlier_route_config_create,
    .route_config_destroy = outlier_route_config_destroy,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("outlier", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
