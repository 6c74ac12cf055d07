/* health.c: active HTTP health checks (see health.h). */
#include "upstream/health.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/common.h"

typedef struct hc_target {
    struct hc_cluster *hc;
    char name[80]; /* endpoint name: the key across hostsets */
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    struct evhttp_connection *conn;
    uint32_t ok_streak, fail_streak;
    bool healthy;
    bool in_flight;
} hc_target;

typedef struct hc_cluster {
    weft_health *h;
    weft_cluster_snap *c;
    struct event *tick;
    hc_target *targets;
    size_t n;
    uint64_t hs_gen;
} hc_cluster;

struct weft_health {
    struct event_base *base;
    weft_snapshot *snap; /* referenced */
    hc_cluster *clusters;
    size_t n;
};

static void set_endpoint_health(hc_target *t, bool healthy) {
    weft_hostset *hs = weft_cluster_snap_hostset(t->hc->c, NULL);
    if (!hs)
        return;
    for (size_t i = 0; i < hs->n; i++)
        if (strcmp(hs->eps[i].name, t->name) == 0)
            atomic_store_explicit(&hs->eps[i].healthy, healthy ? 1 : 0, memory_order_relaxed);
    weft_hostset_unref(hs);
    weft_cluster_snap_update_health_gauge(t->hc->c);
}

static void on_result(hc_target *t, bool ok) {
    const weft_cfg_health_check *cfg = &t->hc->c->cfg->health;
    weft_stats_block *b = weft_stats_thread_block();
    weft_stats_inc(b, ok ? t->hc->c->hc_success : t->hc->c->hc_failure, 1);
    if (ok) {
        t->fail_streak = 0;
        t->ok_streak++;
        if (!t->healthy && t->ok_streak >= cfg->healthy_threshold) {
            t->healthy = true;
            WEFT_INFO("cluster %s: endpoint %s is healthy again", t->hc->c->cfg->name, t->name);
            set_endpoint_health(t, true);
        }
    } else {
        t->ok_streak = 0;
        t->fail_streak++;
        if (t->healthy && t->fail_streak >= cfg->unhealthy_threshold) {
            t->healthy = false;
            WEFT_WARN("cluster %s: endpoint %s failed %u health checks, out of rotation",
                      t->hc->c->cfg->name, t->name, t->fail_streak);
            set_endpoint_health(t, false);
        }
    }
}

static void on_response(struct evhttp_request *req, void *arg) {
    hc_target *t = arg;
    t->in_flight = false;
    const weft_cfg_health_check *cfg = &t->hc->c->cfg->health;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    on_result(t, code >= cfg->expected_min && code <= cfg->expected_max);
}

static void check_target(hc_target *t) {
    const weft_cfg_health_check *cfg = &t->hc->c->cfg->health;
    if (t->in_flight)
        return; /* still waiting: the timeout will count it */
    if (!t->conn) {
        t->conn = evhttp_connection_base_new(t->hc->h->base, NULL, t->ip, t->port);
        if (!t->conn) {
            on_result(t, false);
            return;
        }
        struct timeval tv = {(time_t)(cfg->timeout_ms / 1000),
                             (suseconds_t)((cfg->timeout_ms % 1000) * 1000)};
        evhttp_connection_set_timeout_tv(t->conn, &tv);
        evhttp_connection_set_retries(t->conn, 0);
    }
    struct evhttp_request *req = evhttp_request_new(on_response, t);
    if (!req) {
        on_result(t, false);
        return;
    }
    struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
    evhttp_add_header(hdrs, "Host", cfg->host ? cfg->host : t->hc->c->cfg->name);
    evhttp_add_header(hdrs, "User-Agent", "weft-health-check");
    t->in_flight = true;
    if (evhttp_make_request(t->conn, req, EVHTTP_REQ_GET, cfg->path ? cfg->path : "/healthz") !=
        0) {
        t->in_flight = false;
        on_result(t, false);
    }
}

static hc_target *find_old(weft_health *prev, const char *cluster, const char *name) {
    if (!prev)
        return NULL;
    for (size_t i = 0; i < prev->n; i++) {
        if (strcmp(prev->clusters[i].c->cfg->name, cluster))
            continue;
        for (size_t j = 0; j < prev->clusters[i].n; j++)
            if (strcmp(prev->clusters[i].targets[j].name, name) == 0)
                return &prev->clusters[i].targets[j];
    }
    return NULL;
}

static void free_targets(hc_cluster *hc) {
    for (size_t i = 0; i < hc->n; i++)
        if (hc->targets[i].conn)
            evhttp_connection_free(hc->targets[i].conn);
    free(hc->targets);
    hc->targets = NULL;
    hc->n = 0;
}

/* (Re)builds the target list from the cluster's current hostset. */
static void sync_targets(hc_cluster *hc, weft_health *prev) {
    uint64_t gen = 0;
    weft_hostset *hs = weft_cluster_snap_hostset(hc->c, &gen);
    if (!hs)
        return;
    if (hc->targets && gen == hc->hs_gen) {
        weft_hostset_unref(hs);
        return;
    }
    hc_target *nt = calloc(hs->n ? hs->n : 1, sizeof(*nt));
    if (!nt) {
        weft_hostset_unref(hs);
        return;
    }
    for (size_t i = 0; i < hs->n; i++) {
        hc_target *t = &nt[i];
        const weft_endpoint *ep = &hs->eps[i];
        t->hc = hc;
        snprintf(t->name, sizeof(t->name), "%s", ep->name);
        if (ep->addr.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ep->addr;
            inet_ntop(AF_INET, &a->sin_addr, t->ip, sizeof(t->ip));
            t->port = ntohs(a->sin_port);
        } else {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ep->addr;
            inet_ntop(AF_INET6, &a->sin6_addr, t->ip, sizeof(t->ip));
            t->port = ntohs(a->sin6_port);
        }
        /* Keep what we knew about this endpoint (same cluster, same name). */
        hc_target *old = find_old(prev, hc->c->cfg->name, t->name);
        if (!old)
            for (size_t j = 0; j < hc->n; j++)
                if (strcmp(hc->targets[j].name, t->name) == 0)
                    old = &hc->targets[j];
        t->healthy = old ? old->healthy : atomic_load(&ep->healthy) != 0;
        t->ok_streak = old ? old->ok_streak : 0;
        t->fail_streak = old ? old->fail_streak : 0;
        atomic_store(&hs->eps[i].healthy, t->healthy ? 1 : 0);
    }
    free_targets(hc);
    hc->targets = nt;
    hc->n = hs->n;
    hc->hs_gen = gen;
    weft_hostset_unref(hs);
    weft_cluster_snap_update_health_gauge(hc->c);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    hc_cluster *hc = arg;
    sync_targets(hc, NULL);
    for (size_t i = 0; i < hc->n; i++)
        check_target(&hc->targets[i]);
}

weft_health *weft_health_start(struct event_base *base, weft_snapshot *snap, weft_health *prev) {
    weft_health *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->base = base;
    h->snap = snap;
    weft_snapshot_ref(snap);
    h->clusters = calloc(snap->cfg->n_clusters ? snap->cfg->n_clusters : 1, sizeof(*h->clusters));
    for (size_t i = 0; h->clusters && i < snap->cfg->n_clusters; i++) {
        weft_cluster_snap *c = &snap->clusters[i];
        if (!c->cfg->health.enabled)
            continue;
        hc_cluster *hc = &h->clusters[h->n++];
        hc->h = h;
        hc->c = c;
        sync_targets(hc, prev);
        hc->tick = event_new(base, -1, EV_PERSIST, on_tick, hc);
        uint64_t ms = c->cfg->health.interval_ms ? c->cfg->health.interval_ms : 5000;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        event_add(hc->tick, &tv);
        /* First round right away, so that a dead endpoint leaves soon. */
        event_active(hc->tick, EV_TIMEOUT, 0);
    }
    weft_health_free(prev);
    return h;
}

void weft_health_free(weft_health *h) {
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        if (h->clusters[i].tick)
            event_free(h->clusters[i].tick);
        free_targets(&h->clusters[i]);
    }
    free(h->clusters);
    weft_snapshot_unref(h->snap);
    free(h);
}
