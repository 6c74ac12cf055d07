/* snapshot.c: building, committing and releasing config snapshots.
 * build is pure (a refused config leaves nothing behind); commit makes
 * the side effects (access log, stats); the final free always runs on
 * the main thread. */
#include "runtime/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include <event2/event.h>

#include "common/common.h"
#include "log/access_log.h"

static void snapshot_free(weft_snapshot *s);

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

static void register_tcp_stats(weft_listener_snap *ls) {
    char labels[256];
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
    C(rq_retry_reset, "weft_upstream_rq_retry_reset_total",
      "Idempotent requests sent again after an upstream reset before the response head");
    C(rq_per_try_timeout, "weft_upstream_rq_per_try_timeout_total",
      "Upstream attempts cut by a filter's per-try timeout");
    C(rq_retry_filter, "weft_upstream_rq_retry_total", "Upstream attempts retried by a filter");
    C(rq_retry_backoff, "weft_upstream_rq_retry_backoff_total",
      "Filter retries that waited for a delay before their attempt");
    G(pool_idle, "weft_upstream_pool_idle", "Idle pooled upstream connections");
    G(healthy_endpoints, "weft_upstream_endpoints_healthy", "Endpoints in rotation");
    C(hc_success, "weft_upstream_health_check_success_total", "Active health checks passed");
    C(hc_failure, "weft_upstream_health_check_failure_total", "Active health checks failed");
    C(callout_detached_sent, "weft_upstream_callout_detached_sent_total",
      "Detached (fire-and-forget) filter callouts started");
    C(callout_detached_failed, "weft_upstream_callout_detached_failed_total",
      "Detached filter callouts that got no response or a 5xx");
#undef C
#undef G
}

static bool str_eq0(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Same locality and labels (labels are sorted by key at load). */
static bool cfg_endpoint_meta_equal(const weft_cfg_endpoint *x, const weft_cfg_endpoint *y) {
    if (!str_eq0(x->region, y->region) || !str_eq0(x->zone, y->zone) ||
        !str_eq0(x->subzone, y->subzone) || x->n_labels != y->n_labels)
        return false;
    for (size_t i = 0; i < x->n_labels; i++)
        if (strcmp(x->labels[i].key, y->labels[i].key) ||
            strcmp(x->labels[i].value, y->labels[i].value))
            return false;
    return true;
}

static bool endpoints_equal(const weft_cfg_cluster *a, const weft_cfg_cluster *b) {
    if (a->n_endpoints != b->n_endpoints || a->lb != b->lb || a->ring_size != b->ring_size)
        return false;
    for (size_t i = 0; i < a->n_endpoints; i++) {
        const weft_cfg_endpoint *x = &a->endpoints[i], *y = &b->endpoints[i];
        if (strcmp(x->address, y->address) || x->port != y->port || x->weight != y->weight ||
            !cfg_endpoint_meta_equal(x, y))
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
        if (weft_endpoint_set_meta(&hs->eps[i], e)) {
            snprintf(err, errlen, "out of memory");
            weft_hostset_unref(hs);
            return -1;
        }
    }
    /* Ejection and endpoint counters of endpoints the previous snapshot
     * (still alive here) has under this cluster name carry over. */
    if (weft_hostset_bind_state(hs, c->cfg->name)) {
        snprintf(err, errlen, "out of memory");
        weft_hostset_unref(hs);
        return -1;
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

/* ---------- build: pure (validate, compile, create filter configs) ---------- */

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
    /* Filters may register stats from config_create: staged until commit. */
    weft_stats_stage_begin();
    s->staged = true;
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
        c->snap = s;
        pthread_mutex_init(&c->mu, NULL);
        if (build_hostset(c, prev, cfg->source, err, errlen))
            goto fail;
        if (weft_filter_chain_build_cluster(&c->tchain, cfg, i, err, errlen))
            goto fail;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        weft_listener_snap *ls = &s->listeners[i];
        ls->cfg = &cfg->listeners[i];
        ls->idx = (uint32_t)i;
        ls->tcp_cluster = -1;
        if (ls->cfg->is_tcp)
            for (size_t k = 0; k < cfg->n_clusters; k++)
                if (strcmp(cfg->clusters[k].name, ls->cfg->tcp_cluster) == 0)
                    ls->tcp_cluster = (int)k;
        ls->router = weft_router_build(cfg, i, err, errlen);
        if (!ls->router)
            goto fail;
        weft_filter_setup_clusters(s->clusters, cfg->n_clusters); /* weft_cluster_get */
        int rc = weft_filter_chain_build(&ls->chain, cfg, i, ls->cfg->name, err, errlen) ||
                 weft_filter_route_configs_build(&ls->chain, ls->router, cfg, i, ls->cfg->name, err,
                                                 errlen);
        weft_filter_setup_clusters(NULL, 0);
        if (rc)
            goto fail;
    }
    return s;
fail:
    weft_snapshot_discard(s);
    return NULL;
}

/* ---------- commit: the side effects ---------- */

int weft_snapshot_commit(weft_snapshot *s, char *err, size_t errlen) {
    /* The only step that can fail comes first: a refusal leaves nothing. */
    if (weft_access_log_open(s->cfg->access_log.path, &s->access_log_fd, err, errlen))
        return -1;
    for (size_t i = 0; i < s->cfg->n_clusters; i++) {
        register_cluster_stats(&s->clusters[i]);
        weft_cluster_snap_update_health_gauge(&s->clusters[i]);
    }
    for (size_t i = 0; i < s->cfg->n_listeners; i++) {
        register_listener_stats(&s->listeners[i]);
        if (s->listeners[i].cfg->is_tcp)
            register_tcp_stats(&s->listeners[i]);
    }
    s->rq_local_reply =
        weft_stats_counter("weft_local_reply_total", "", "Responses generated by weft itself");
    weft_stats_stage_end(true);
    s->staged = false;
    s->committed = true;
    return 0;
}

void weft_snapshot_discard(weft_snapshot *s) {
    weft_snapshot_unref(s); /* a staged snapshot's free ends its stage */
}

/* ---------- release: always on the main thread ---------- */

/* Snapshots whose last reference went on a worker thread wait here for
 * the main thread (filter.h: config_destroy and dlclose happen there). */
static struct {
    pthread_mutex_t mu;
    weft_snapshot *list; /* via reap_next */
    int fd;              /* eventfd: wakes the main loop */
    struct event *ev;
    pthread_t main_thread;
    bool on;
} g_reaper = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static void reap_all(void) {
    pthread_mutex_lock(&g_reaper.mu);
    weft_snapshot *l = g_reaper.list;
    g_reaper.list = NULL;
    pthread_mutex_unlock(&g_reaper.mu);
    while (l) {
        weft_snapshot *next = l->reap_next;
        snapshot_free(l);
        l = next;
    }
}

static void on_reap(evutil_socket_t fd, short what, void *arg) {
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
    reap_all();
}

int weft_snapshot_reaper_start(struct event_base *main_base) {
    g_reaper.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g_reaper.fd < 0)
        return -1;
    g_reaper.ev = event_new(main_base, g_reaper.fd, EV_READ | EV_PERSIST, on_reap, NULL);
    if (!g_reaper.ev || event_add(g_reaper.ev, NULL)) {
        weft_snapshot_reaper_stop();
        return -1;
    }
    g_reaper.main_thread = pthread_self();
    g_reaper.on = true;
    return 0;
}

void weft_snapshot_reaper_stop(void) {
    g_reaper.on = false;
    reap_all();
    if (g_reaper.ev)
        event_free(g_reaper.ev);
    g_reaper.ev = NULL;
    if (g_reaper.fd >= 0)
        close(g_reaper.fd);
    g_reaper.fd = -1;
}

void weft_snapshot_ref(weft_snapshot *s) {
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void weft_snapshot_unref(weft_snapshot *s) {
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (!g_reaper.on || pthread_equal(pthread_self(), g_reaper.main_thread)) {
        snapshot_free(s);
        return;
    }
    pthread_mutex_lock(&g_reaper.mu);
    s->reap_next = g_reaper.list;
    g_reaper.list = s;
    pthread_mutex_unlock(&g_reaper.mu);
    uint64_t one = 1;
    ssize_t r = write(g_reaper.fd, &one, sizeof(one));
    (void)r;
}

static void snapshot_free(weft_snapshot *s) {
    if (s->listeners)
        for (size_t i = 0; i < s->cfg->n_listeners; i++) {
            /* per-route configs before the filters' own configs */
            if (s->listeners[i].router)
                weft_filter_route_configs_destroy(&s->listeners[i].chain, s->listeners[i].router);
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
            weft_filter_chain_destroy(&c->tchain);
            pthread_mutex_destroy(&c->mu);
        }
    if (s->access_log_fd > STDERR_FILENO)
        close(s->access_log_fd);
    free(s->listeners);
    free(s->clusters);
    weft_config_free(s->cfg);
    bool staged = s->staged;
    free(s);
    /* Never committed: the stats its filters registered are forgotten
     * (after their configs were destroyed above). */
    if (staged)
        weft_stats_stage_end(false);
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
    /* Endpoints that stay keep their shared state (ejection, counters):
     * bound while the old hostset still holds it. On OOM the endpoints
     * left unbound simply cannot be ejected. */
    if (hs && weft_hostset_bind_state(hs, c->cfg->name))
        WEFT_WARN("cluster %s: out of memory binding endpoint state", c->cfg->name);
    pthread_mutex_lock(&c->mu);
    weft_hostset *old = c->hs;
    c->hs = hs;
    atomic_fetch_add_explicit(&c->hs_gen, 1, memory_order_release);
    pthread_mutex_unlock(&c->mu);
    if (old)
        weft_hostset_unref(old);
}
