/* snapshot.c: building and releasing config snapshots. */
#include "runtime/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"

static const char *class_names[WEFT_CODE_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

static void register_listener_stats(weft_listener_snap *ls) {
    char labels[256];
    for (int i = 0; i < WEFT_CODE_CLASSES; i++) {
        snprintf(labels, sizeof(labels), "listener=\"%s\",response_code_class=\"%s\"",
                 ls->cfg->name, class_names[i]);
        ls->rq_total[i] = weft_stats_counter("weft_downstream_rq_total", labels,
                                             "Downstream requests completed, by status class");
    }
    snprintf(labels, sizeof(labels), "listener=\"%s\"", ls->cfg->name);
    ls->rq_time =
        weft_stats_histogram("weft_downstream_rq_duration_seconds", labels,
                             "Downstream request duration, first byte in to last byte out");
    ls->cx_total =
        weft_stats_counter("weft_downstream_cx_total", labels, "Downstream connections accepted");
    ls->cx_active =
        weft_stats_gauge("weft_downstream_cx_active", labels, "Downstream connections open");
    ls->cx_refused = weft_stats_counter("weft_downstream_cx_overflow_total", labels,
                                        "Downstream connections refused by max_connections");
    ls->rq_rejected = weft_stats_counter("weft_downstream_rq_rejected_total", labels,
                                         "Requests refused for protocol errors or limits");
    for (int i = 0; i < 17; i++) {
        snprintf(labels, sizeof(labels), "listener=\"%s\",grpc_status=\"%d\"", ls->cfg->name, i);
        ls->grpc_total[i] = weft_stats_counter("weft_downstream_grpc_total", labels,
                                               "gRPC responses, by grpc-status");
    }
}

static void register_tcp_stats(weft_listener_snap *ls, const weft_config *cfg) {
    char labels[256];
    ls->tcp_cluster = -1;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (strcmp(cfg->clusters[i].name, ls->cfg->tcp_cluster) == 0)
            ls->tcp_cluster = (int)i;
    snprintf(labels, sizeof(labels), "listener=\"%s\",cluster=\"%s\"", ls->cfg->name,
             ls->cfg->tcp_cluster);
    ls->tcp_cx_total =
        weft_stats_counter("weft_tcp_cx_total", labels, "TCP proxy connections accepted");
    ls->tcp_cx_active =
        weft_stats_gauge("weft_tcp_cx_active", labels, "TCP proxy connections open");
    ls->tcp_rx_bytes =
        weft_stats_counter("weft_tcp_rx_bytes_total", labels,
                           "TCP proxy bytes received from downstream (sent upstream)");
    ls->tcp_tx_bytes =
        weft_stats_counter("weft_tcp_tx_bytes_total", labels,
                           "TCP proxy bytes sent to downstream (received from upstream)");
    ls->tcp_connect_fail =
        weft_stats_counter("weft_tcp_connect_fail_total", labels,
                           "TCP proxy connections closed because no upstream connection "
                           "could be made");
}

static void register_cluster_stats(weft_cluster_snap *c) {
    char labels[256];
    for (int i = 0; i < WEFT_CODE_CLASSES; i++) {
        snprintf(labels, sizeof(labels), "cluster=\"%s\",response_code_class=\"%s\"", c->cfg->name,
                 class_names[i]);
        c->rq_total[i] = weft_stats_counter("weft_upstream_rq_total", labels,
                                            "Upstream responses received, by status class");
    }
    snprintf(labels, sizeof(labels), "cluster=\"%s\"", c->cfg->name);
#define C(field, name, help) c->field = weft_stats_counter(name, labels, help)
#define G(field, name, help) c->field = weft_stats_gauge(name, labels, help)
    c->rq_time = weft_stats_histogram("weft_upstream_rq_duration_seconds", labels,
                                      "Upstream request time, request sent to response complete");
    C(cx_total, "weft_upstream_cx_total", "Upstream connections opened");
    G(cx_active, "weft_upstream_cx_active", "Upstream connections open");
    C(cx_connect_fail, "weft_upstream_cx_connect_fail_total", "Upstream connect failures");
    C(cx_connect_timeout, "weft_upstream_cx_connect_timeout_total", "Upstream connect timeouts");
    C(rq_timeout, "weft_upstream_rq_timeout_total", "Requests that hit the route timeout");
    C(rq_reset, "weft_upstream_rq_reset_total", "Upstream resets before a complete response");
    C(rq_no_healthy, "weft_upstream_rq_no_healthy_total", "Requests with no healthy endpoint");
    C(rq_retry_stale, "weft_upstream_rq_retry_stale_total",
      "Requests re-sent after a pooled connection turned out closed");
    C(rq_retry_connect, "weft_upstream_rq_retry_connect_total",
      "Requests sent to another endpoint after a failed connect");
    G(pool_idle, "weft_upstream_pool_idle", "Idle pooled upstream connections");
    G(healthy_endpoints, "weft_upstream_endpoints_healthy", "Endpoints in rotation");
    C(hc_success, "weft_upstream_health_check_success_total", "Active health checks passed");
    C(hc_failure, "weft_upstream_health_check_failure_total", "Active health checks failed");
#undef C
#undef G
}

static bool endpoints_equal(const weft_cfg_cluster *a, const weft_cfg_cluster *b) {
    if (a->n_endpoints != b->n_endpoints || a->lb != b->lb || a->ring_size != b->ring_size)
        return false;
    for (size_t i = 0; i < a->n_endpoints; i++) {
        const weft_cfg_endpoint *x = &a->endpoints[i], *y = &b->endpoints[i];
        if (strcmp(x->address, y->address) || x->port != y->port || x->weight != y->weight)
            return false;
    }
    return true;
}

static const weft_cluster_snap *find_prev_cluster(const weft_snapshot *prev, const char *name) {
    if (!prev)
        return NULL;
    for (size_t i = 0; i < prev->cfg->n_clusters; i++)
        if (strcmp(prev->clusters[i].cfg->name, name) == 0)
            return &prev->clusters[i];
    return NULL;
}

/* Static clusters get their hostset now; DNS clusters start empty (or with
 * the previous snapshot's resolution) and the resolver publishes later. */
static int build_hostset(weft_cluster_snap *c, const weft_snapshot *prev, const char *src,
                         char *err, size_t errlen) {
    const weft_cluster_snap *old = find_prev_cluster(prev, c->cfg->name);
    if (old && endpoints_equal(old->cfg, c->cfg)) {
        /* Same endpoints: share the hostset (keeps health and DNS state). */
        c->hs = weft_cluster_snap_hostset((weft_cluster_snap *)old, NULL);
        atomic_store(&c->hs_gen, 1);
        return 0;
    }
    size_t n = c->cfg->uses_dns ? 0 : c->cfg->n_endpoints;
    weft_hostset *hs = weft_hostset_new(n);
    if (!hs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const weft_cfg_endpoint *e = &c->cfg->endpoints[i];
        if (weft_endpoint_set_ip(&hs->eps[i], e->address, e->port) != 0) {
            snprintf(err, errlen, "%s:%u:%u: endpoint address \"%s\" is not an IP address", src,
                     e->pos.line, e->pos.col, e->address);
            weft_hostset_unref(hs);
            return -1;
        }
        hs->eps[i].weight = e->weight ? e->weight : 1;
    }
    if (c->cfg->lb == WEFT_LB_RING_HASH && n && weft_hostset_build_ring(hs, c->cfg->ring_size)) {
        snprintf(err, errlen, "out of memory");
        weft_hostset_unref(hs);
        return -1;
    }
    c->hs = hs;
    atomic_store(&c->hs_gen, 1);
    return 0;
}

static int open_access_log(const weft_config *cfg, int *fd_out, char *err, size_t errlen) {
    const char *p = cfg->access_log.path;
    *fd_out = -1;
    if (!p || !*p)
        return 0;
    if (strcmp(p, "-") == 0 || strcmp(p, "stdout") == 0) {
        *fd_out = STDOUT_FILENO;
        return 0;
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "access_log: cannot open \"%s\": %s", p, strerror(errno));
        return -1;
    }
    *fd_out = fd;
    return 0;
}

weft_snapshot *weft_snapshot_build(weft_config *cfg, const weft_snapshot *prev, uint64_t version,
                                   char *err, size_t errlen) {
    weft_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        weft_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_store(&s->refs, 1);
    s->version = version;
    s->cfg = cfg;
    s->access_log_fd = -1;
    s->listeners = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*s->listeners));
    s->clusters = calloc(cfg->n_clusters ? cfg->n_clusters : 1, sizeof(*s->clusters));
    if (!s->listeners || !s->clusters) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_clusters; i++) {
        weft_cluster_snap *c = &s->clusters[i];
        c->cfg = &cfg->clusters[i];
        c->idx = (uint32_t)i;
        pthread_mutex_init(&c->mu, NULL);
        register_cluster_stats(c);
        if (build_hostset(c, prev, cfg->source, err, errlen))
            goto fail;
        weft_cluster_snap_update_health_gauge(c);
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        weft_listener_snap *ls = &s->listeners[i];
        ls->cfg = &cfg->listeners[i];
        ls->idx = (uint32_t)i;
        ls->router = weft_router_build(cfg, i, err, errlen);
        if (!ls->router)
            goto fail;
        if (weft_filter_chain_build(&ls->chain, cfg, i, ls->cfg->name, err, errlen))
            goto fail;
        register_listener_stats(ls);
        if (ls->cfg->is_tcp)
            register_tcp_stats(ls, cfg);
    }
    s->rq_local_reply =
        weft_stats_counter("weft_local_reply_total", "", "Responses generated by weft itself");
    if (open_access_log(cfg, &s->access_log_fd, err, errlen))
        goto fail;
    return s;
fail:
    weft_snapshot_unref(s);
    return NULL;
}

void weft_snapshot_ref(weft_snapshot *s) {
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void weft_snapshot_unref(weft_snapshot *s) {
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (s->listeners)
        for (size_t i = 0; i < s->cfg->n_listeners; i++) {
            weft_router_free(s->listeners[i].router);
            weft_filter_chain_destroy(&s->listeners[i].chain);
        }
    if (s->clusters)
        for (size_t i = 0; i < s->cfg->n_clusters; i++) {
            weft_cluster_snap *c = &s->clusters[i];
            if (!c->cfg)
                continue;
            if (c->hs)
                weft_hostset_unref(c->hs);
            pthread_mutex_destroy(&c->mu);
        }
    if (s->access_log_fd > STDERR_FILENO)
        close(s->access_log_fd);
    free(s->listeners);
    free(s->clusters);
    weft_config_free(s->cfg);
    free(s);
}

void weft_cluster_snap_update_health_gauge(weft_cluster_snap *c) {
    weft_hostset *hs = weft_cluster_snap_hostset(c, NULL);
    int64_t n = 0;
    for (size_t i = 0; hs && i < hs->n; i++)
        n += atomic_load_explicit(&hs->eps[i].healthy, memory_order_relaxed) != 0;
    weft_stats_gauge_set(c->healthy_endpoints, n);
    if (hs)
        weft_hostset_unref(hs);
}

weft_hostset *weft_cluster_snap_hostset(weft_cluster_snap *c, uint64_t *gen_out) {
    pthread_mutex_lock(&c->mu);
    weft_hostset *hs = c->hs;
    if (hs)
        weft_hostset_ref(hs);
    if (gen_out)
        *gen_out = atomic_load_explicit(&c->hs_gen, memory_order_relaxed);
    pthread_mutex_unlock(&c->mu);
    return hs;
}

void weft_cluster_snap_publish(weft_cluster_snap *c, weft_hostset *hs) {
    pthread_mutex_lock(&c->mu);
    weft_hostset *old = c->hs;
    c->hs = hs;
    atomic_fetch_add_explicit(&c->hs_gen, 1, memory_order_release);
    pthread_mutex_unlock(&c->mu);
    if (old)
        weft_hostset_unref(old);
}
