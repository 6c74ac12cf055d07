/* admin.c: admin endpoints (see admin.h). */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/common.h"
#include "http/message.h"

struct weft_admin {
    struct evhttp *http;
    weft_admin_host host;
};

static void reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, weft_status_reason((uint16_t)code), body);
}

static void h_ready(struct evhttp_request *req, void *arg) {
    weft_admin *a = arg;
    struct evbuffer *b = evbuffer_new();
    bool dr = a->host.draining(a->host.ctx);
    evbuffer_add_printf(b, "%s\n", dr ? "DRAINING" : "LIVE");
    reply(req, dr ? 503 : 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_prom(struct evhttp_request *req, void *arg) {
    struct evbuffer *b = evbuffer_new();
    weft_stats_render_prometheus(b);
    reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

static void h_config(struct evhttp_request *req, void *arg) {
    weft_admin *a = arg;
    weft_snapshot *s = a->host.current(a->host.ctx);
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    struct evbuffer *b = evbuffer_new();
    if (f) {
        fprintf(f, "# config version %llu from %s\n", (unsigned long long)s->version,
                s->cfg->source ? s->cfg->source : "-");
        weft_config_dump(s->cfg, f);
        fclose(f);
        evbuffer_add(b, mem, len);
    }
    free(mem);
    reply(req, 200, "application/yaml", b);
    evbuffer_free(b);
}

static void h_clusters(struct evhttp_request *req, void *arg) {
    weft_admin *a = arg;
    weft_snapshot *s = a->host.current(a->host.ctx);
    struct evbuffer *b = evbuffer_new();
    static const char *lb_names[] = {"round_robin", "least_request", "random", "ring_hash",
                                     "peak_ewma"};
    for (size_t i = 0; i < s->cfg->n_clusters; i++) {
        weft_cluster_snap *c = &s->clusters[i];
        weft_hostset *hs = weft_cluster_snap_hostset(c, NULL);
        uint64_t total = 0;
        for (int k = 0; k < WEFT_CODE_CLASSES; k++)
            total += weft_stats_counter_value(c->rq_total[k]);
        evbuffer_add_printf(b, "%s::lb_policy::%s\n", c->cfg->name, lb_names[c->cfg->lb]);
        evbuffer_add_printf(b, "%s::health_check::%s\n", c->cfg->name,
                            c->cfg->health.enabled ? "on" : "off");
        evbuffer_add_printf(b, "%s::upstream_rq_total::%llu\n", c->cfg->name,
                            (unsigned long long)total);
        evbuffer_add_printf(b, "%s::upstream_cx_active::%lld\n", c->cfg->name,
                            (long long)weft_stats_gauge_value(c->cx_active));
        evbuffer_add_printf(b, "%s::pool_idle::%lld\n", c->cfg->name,
                            (long long)weft_stats_gauge_value(c->pool_idle));
        for (size_t j = 0; hs && j < hs->n; j++) {
            const weft_endpoint *ep = &hs->eps[j];
            evbuffer_add_printf(b, "%s::%s::weight::%u\n", c->cfg->name, ep->name, ep->weight);
            evbuffer_add_printf(b, "%s::%s::health_flags::%s\n", c->cfg->name, ep->name,
                                atomic_load(&ep->healthy) ? "healthy" : "/failed_active_hc");
        }
        if (hs)
            weft_hostset_unref(hs);
    }
    reply(req, 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_drain(struct evhttp_request *req, void *arg) {
    weft_admin *a = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, "use POST");
        return;
    }
    a->host.drain(a->host.ctx);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "draining\n");
    reply(req, 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_index(struct evhttp_request *req, void *arg) {
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b,
                        "weft admin\n  /ready\n  /stats/prometheus\n  /config_dump\n  /clusters\n"
                        "  POST /drain\n");
    reply(req,
          evhttp_request_get_uri(req) && strcmp(evhttp_request_get_uri(req), "/") == 0 ? 200 : 404,
          "text/plain", b);
    evbuffer_free(b);
}

weft_admin *weft_admin_start(struct event_base *base, const char *address, uint16_t port,
                             const weft_admin_host *host, char *err, size_t errlen) {
    weft_admin *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->host = *host;
    a->http = evhttp_new(base);
    if (!a->http || evhttp_bind_socket(a->http, address, port) != 0) {
        snprintf(err, errlen, "admin: cannot listen on %s:%u", address, port);
        weft_admin_free(a);
        return NULL;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_cb(a->http, "/ready", h_ready, a);
    evhttp_set_cb(a->http, "/stats/prometheus", h_prom, a);
    evhttp_set_cb(a->http, "/config_dump", h_config, a);
    evhttp_set_cb(a->http, "/clusters", h_clusters, a);
    evhttp_set_cb(a->http, "/drain", h_drain, a);
    evhttp_set_gencb(a->http, h_index, a);
    return a;
}

void weft_admin_free(weft_admin *a) {
    if (!a)
        return;
    if (a->http)
        evhttp_free(a->http);
    free(a);
}
