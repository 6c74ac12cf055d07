/* admin.c: admin endpoints (see admin.h).
 *
 * Connection limits: evhttp (libevent 2.1) has no connection count or
 * per-request deadline of its own, so every accepted connection gets a
 * bufferevent made here (evhttp_set_bevcb) on which the admin holds one
 * reference. evhttp clears a bufferevent's callbacks when it frees the
 * connection; the admin releases its reference at the next accept (or
 * timer) after that. The bufferevent does not own the fd (evhttp closes
 * it), so a released entry never touches a socket. A connection past
 * max_connections, or whose request (or idle wait) outlives
 * request_timeout, is shut down: evhttp then reads EOF and frees it. */
#include "admin/admin.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/common.h"
#include "http/message.h"

typedef struct admin_conn {
    weft_admin *a;
    struct bufferevent *bev; /* one reference is the admin's */
    struct event *timer;     /* request timeout, or the deferred refusal */
    bool refused;            /* past max_connections */
} admin_conn;

struct weft_admin {
    struct evhttp *http;
    struct event_base *base;
    weft_admin_host host;
    char *token; /* NULL = none */
    char address[64];
    uint16_t port;
    uint32_t max_header_bytes, max_body_bytes;
    struct timeval request_timeout;
    uint32_t max_connections;
    admin_conn **conns;
    size_t n_conns, cap_conns;
};

/* ------------------------------------------------------- connections */

static bool conn_alive(const admin_conn *c) {
    bufferevent_data_cb rd = NULL, wr = NULL;
    bufferevent_event_cb ev = NULL;
    void *arg = NULL;
    bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
    return rd || wr || ev;
}

static void conn_release(admin_conn *c) {
    event_free(c->timer);
    bufferevent_decref(c->bev);
    free(c);
}

/* Releases the entries evhttp is done with; returns the live,
 * not-refused count. */
static size_t conns_sweep(weft_admin *a) {
    size_t live = 0, j = 0;
    for (size_t i = 0; i < a->n_conns; i++) {
        admin_conn *c = a->conns[i];
        if (!conn_alive(c)) {
            conn_release(c);
            continue;
        }
        live += !c->refused;
        a->conns[j++] = c;
    }
    a->n_conns = j;
    return live;
}

/* Ends a connection evhttp still owns: both directions shut, so evhttp
 * sees EOF (or a write error) and frees it. */
static void conn_cut(admin_conn *c) {
    if (!conn_alive(c))
        return;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    admin_conn *c = arg;
    conn_cut(c);
    conns_sweep(c->a);
}

static struct bufferevent *on_accept_bev(struct event_base *base, void *arg) {
    weft_admin *a = arg;
    size_t live = conns_sweep(a);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (!bev)
        return NULL;
    admin_conn *c = calloc(1, sizeof(*c));
    if (c && a->n_conns == a->cap_conns) {
        size_t ncap = a->cap_conns ? a->cap_conns * 2 : 16;
        admin_conn **nv = realloc(a->conns, ncap * sizeof(*nv));
        if (nv) {
            a->conns = nv;
            a->cap_conns = ncap;
        }
    }
    if (!c || a->n_conns == a->cap_conns || !(c->timer = evtimer_new(base, on_conn_timer, c))) {
        /* Not tracked: evhttp still serves it, without our limits. */
        free(c);
        return bev;
    }
    c->a = a;
    c->bev = bev;
    bufferevent_incref(bev);
    c->refused = live >= a->max_connections;
    struct timeval now = {0, 0};
    evtimer_add(c->timer, c->refused ? &now : &a->request_timeout);
    a->conns[a->n_conns++] = c;
    return bev;
}

static admin_conn *conn_of(weft_admin *a, struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    for (size_t i = 0; bev && i < a->n_conns; i++)
        if (a->conns[i]->bev == bev)
            return a->conns[i];
    return NULL;
}

/* ------------------------------------------------------------ access */

/* Host is absent (HTTP/1.0), "localhost" or an IP literal, with an
 * optional port. */
static bool host_ok(const char *h) {
    if (!h)
        return true;
    char buf[64];
    size_t n = strlen(h);
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, h, n + 1);
    char *end = buf + n;
    if (buf[0] == '[') {
        char *rb = strchr(buf, ']');
        if (!rb || (rb[1] && rb[1] != ':'))
            return false;
        *rb = '\0';
        unsigned char sa[16];
        return inet_pton(AF_INET6, buf + 1, sa) == 1;
    }
    char *colon = strchr(buf, ':');
    if (colon) {
        if (strchr(colon + 1, ':'))
            return false;
        *colon = '\0';
        end = colon;
    }
    for (char *p = buf; p < end; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    unsigned char sa[4];
    return strcmp(buf, "localhost") == 0 || inet_pton(AF_INET, buf, sa) == 1;
}

/* Constant time in the contents (the length of the configured token is
 * not a secret worth hiding). */
static bool token_equal(const char *want, const char *got, size_t got_len) {
    size_t n = strlen(want);
    unsigned char diff = (unsigned char)(n != got_len);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(want[i] ^ (i < got_len ? got[i] : 0));
    return diff == 0;
}

static void refuse(struct evhttp_request *req, int code, const char *why) {
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", "text/plain");
    evhttp_add_header(oh, "Connection", "close");
    if (code == 401)
        evhttp_add_header(oh, "WWW-Authenticate", "Bearer realm=\"weft-admin\"");
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add_printf(b, "%s\n", why);
    evhttp_send_reply(req, code, weft_status_reason((uint16_t)code), b);
    if (b)
        evbuffer_free(b);
}

/* Every request: re-arms the connection's request timeout (it now covers
 * the response and the wait for the next request) and checks Host. */
static bool admin_enter(weft_admin *a, struct evhttp_request *req) {
    admin_conn *c = conn_of(a, req);
    if (c && !c->refused)
        evtimer_add(c->timer, &a->request_timeout);
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (!host_ok(host)) {
        refuse(req, 403, "admin: Host must be an IP address or localhost");
        return false;
    }
    return true;
}

/* A state-changing endpoint: POST only, and a token or X-Weft-Admin. */
static bool admin_enter_post(weft_admin *a, struct evhttp_request *req) {
    if (!admin_enter(a, req))
        return false;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        refuse(req, 405, "admin: use POST");
        return false;
    }
    const struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    if (a->token) {
        const char *auth = evhttp_find_header(ih, "Authorization");
        if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
            refuse(req, 401, "admin: Authorization: Bearer <token> required");
            return false;
        }
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            n--;
        if (!token_equal(a->token, t, n)) {
            refuse(req, 401, "admin: wrong token");
            return false;
        }
        return true;
    }
    const char *x = evhttp_find_header(ih, "X-Weft-Admin");
    if (!x || !*x) {
        refuse(req, 403, "admin: POST needs an X-Weft-Admin header (or a configured token)");
        return false;
    }
    return true;
}

/* --------------------------------------------------------- endpoints */

static void reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, weft_status_reason((uint16_t)code), body);
}

static void h_ready(struct evhttp_request *req, void *arg) {
    weft_admin *a = arg;
    if (!admin_enter(a, req))
        return;
    struct evbuffer *b = evbuffer_new();
    bool dr = a->host.draining(a->host.ctx);
    evbuffer_add_printf(b, "%s\n", dr ? "DRAINING" : "LIVE");
    reply(req, dr ? 503 : 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_prom(struct evhttp_request *req, void *arg) {
    if (!admin_enter(arg, req))
        return;
    struct evbuffer *b = evbuffer_new();
    weft_stats_render_prometheus(b);
    reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

static void h_config(struct evhttp_request *req, void *arg) {
    weft_admin *a = arg;
    if (!admin_enter(a, req))
        return;
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
    if (!admin_enter(a, req))
        return;
    weft_snapshot *s = a->host.current(a->host.ctx);
    struct evbuffer *b = evbuffer_new();
    static const char *lb_names[] = {"round_robin", "least_request", "random", "ring_hash",
                                     "peak_ewma"};
    uint64_t now = weft_now_us();
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
            /* Envoy's flags: /failed_active_hc, /failed_outlier_check. */
            bool up = atomic_load(&ep->healthy);
            bool ejected = weft_endpoint_ejected(ep, now);
            evbuffer_add_printf(b, "%s::%s::health_flags::%s%s\n", c->cfg->name, ep->name,
                                up && !ejected ? "healthy"
                                : up           ? ""
                                               : "/failed_active_hc",
                                ejected ? "/failed_outlier_check" : "");
            if (ejected)
                evbuffer_add_printf(
                    b, "%s::%s::ejected_remaining_ms::%llu\n", c->cfg->name, ep->name,
                    (unsigned long long)((atomic_load(&ep->state->ejected_until_us) - now + 999) /
                                         1000));
            if (ep->state && atomic_load(&ep->state->ejections))
                evbuffer_add_printf(b, "%s::%s::ejections::%llu\n", c->cfg->name, ep->name,
                                    (unsigned long long)atomic_load(&ep->state->ejections));
            if (*ep->region || *ep->zone || *ep->subzone)
                evbuffer_add_printf(b, "%s::%s::locality::%s/%s/%s\n", c->cfg->name, ep->name,
                                    ep->region, ep->zone, ep->subzone);
            if (ep->n_labels) {
                evbuffer_add_printf(b, "%s::%s::labels::", c->cfg->name, ep->name);
                for (uint32_t l = 0; l < ep->n_labels; l++)
                    evbuffer_add_printf(b, "%s%s=%s", l ? "," : "", ep->labels[l].key,
                                        ep->labels[l].value);
                evbuffer_add_printf(b, "\n");
            }
        }
        if (hs)
            weft_hostset_unref(hs);
    }
    reply(req, 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_drain(struct evhttp_request *req, void *arg) {
    weft_admin *a = arg;
    if (!admin_enter_post(a, req))
        return;
    a->host.drain(a->host.ctx);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "draining\n");
    reply(req, 200, "text/plain", b);
    evbuffer_free(b);
}

static void h_index(struct evhttp_request *req, void *arg) {
    if (!admin_enter(arg, req))
        return;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(
        b, "weft admin\n  /ready\n  /stats/prometheus\n  /config_dump\n  /clusters\n"
           "  POST /drain (Authorization: Bearer <token>, or X-Weft-Admin: 1 without a token)\n");
    reply(req,
          evhttp_request_get_uri(req) && strcmp(evhttp_request_get_uri(req), "/") == 0 ? 200 : 404,
          "text/plain", b);
    evbuffer_free(b);
}

/* The limits of cfg, on the server and for connections accepted from
 * now on. */
static void set_limits(weft_admin *a, const weft_cfg_admin *cfg) {
    a->max_connections = cfg->max_connections ? cfg->max_connections : 16;
    uint64_t ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 10000;
    a->request_timeout.tv_sec = (time_t)(ms / 1000);
    a->request_timeout.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    a->max_header_bytes = cfg->max_header_bytes ? cfg->max_header_bytes : 8192;
    a->max_body_bytes = cfg->max_body_bytes;
    evhttp_set_max_headers_size(a->http, a->max_header_bytes);
    evhttp_set_max_body_size(a->http, a->max_body_bytes);
    evhttp_set_timeout_tv(a->http, &a->request_timeout);
}

static void token_free(weft_admin *a) {
    if (a->token) {
        explicit_bzero(a->token, strlen(a->token));
        free(a->token);
    }
    a->token = NULL;
}

weft_admin *weft_admin_start(struct event_base *base, const weft_cfg_admin *cfg,
                             const weft_admin_host *host, char *err, size_t errlen) {
    weft_admin *a = calloc(1, sizeof(*a));
    if (!a || (cfg->token && !(a->token = strdup(cfg->token)))) {
        snprintf(err, errlen, "out of memory");
        free(a);
        return NULL;
    }
    a->host = *host;
    a->base = base;
    const char *address = cfg->address ? cfg->address : "127.0.0.1";
    snprintf(a->address, sizeof(a->address), "%s", address);
    a->port = cfg->port;
    a->http = evhttp_new(base);
    if (!a->http || evhttp_bind_socket(a->http, address, cfg->port) != 0) {
        snprintf(err, errlen, "admin: cannot listen on %s:%u", address, cfg->port);
        weft_admin_free(a);
        return NULL;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    set_limits(a, cfg);
    evhttp_set_bevcb(a->http, on_accept_bev, a);
    evhttp_set_cb(a->http, "/ready", h_ready, a);
    evhttp_set_cb(a->http, "/stats/prometheus", h_prom, a);
    evhttp_set_cb(a->http, "/config_dump", h_config, a);
    evhttp_set_cb(a->http, "/clusters", h_clusters, a);
    evhttp_set_cb(a->http, "/drain", h_drain, a);
    evhttp_set_gencb(a->http, h_index, a);
    return a;
}

void weft_admin_reconfigure(weft_admin *a, const weft_cfg_admin *cfg) {
    const char *address = cfg->address ? cfg->address : "127.0.0.1";
    if (!a) {
        if (cfg->port)
            WEFT_WARN("admin: the reload turns the admin server on (%s:%u): that needs a restart; "
                      "it stays off",
                      address, cfg->port);
        return;
    }
    if (!cfg->port) {
        WEFT_WARN("admin: the reload turns the admin server off: that needs a restart; it keeps "
                  "listening on %s:%u",
                  a->address, a->port);
    } else if (strcmp(address, a->address) != 0 || cfg->port != a->port) {
        WEFT_WARN("admin: address %s:%u -> %s:%u needs a restart; it keeps listening on %s:%u (the "
                  "token and limits of the new config apply)",
                  a->address, a->port, address, cfg->port, a->address, a->port);
    }
    bool token_changed = (a->token == NULL) != (cfg->token == NULL) ||
                         (a->token && strcmp(a->token, cfg->token) != 0);
    if (token_changed) {
        char *t = cfg->token ? strdup(cfg->token) : NULL;
        if (cfg->token && !t) {
            WEFT_ERROR("admin: out of memory: the token was not changed");
        } else {
            token_free(a);
            a->token = t;
            WEFT_INFO("admin: token %s", !t ? "removed (POSTs need X-Weft-Admin)"
                                            : "changed (POSTs need the new one)");
        }
    }
    struct timeval old_to = a->request_timeout;
    uint32_t old_mc = a->max_connections, old_hb = a->max_header_bytes, old_bb = a->max_body_bytes;
    set_limits(a, cfg);
    if (old_to.tv_sec != a->request_timeout.tv_sec ||
        old_to.tv_usec != a->request_timeout.tv_usec || old_mc != a->max_connections ||
        old_hb != a->max_header_bytes || old_bb != a->max_body_bytes)
        WEFT_INFO("admin: limits now max_header_bytes %u, max_body_bytes %u, request_timeout "
                  "%llums, max_connections %u",
                  a->max_header_bytes, a->max_body_bytes,
                  (unsigned long long)a->request_timeout.tv_sec * 1000 +
                      (unsigned long long)a->request_timeout.tv_usec / 1000,
                  a->max_connections);
}

void weft_admin_free(weft_admin *a) {
    if (!a)
        return;
    if (a->http)
        evhttp_free(a->http); /* frees its connections first */
    for (size_t i = 0; i < a->n_conns; i++)
        conn_release(a->conns[i]);
    free(a->conns);
    token_free(a);
    free(a);
}
