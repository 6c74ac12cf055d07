/* pool.c: upstream HTTP/1.1 connections and per-worker idle pools. */
#include "upstream/pool.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "filter/transport.h"
#include "runtime/wsnap.h"

/* The bytes the response parser reads: the top of the transport chain,
 * or the socket's input. */
static struct evbuffer *uc_in(weft_upconn *uc) {
    return uc->tc ? weft_transport_codec_in(uc->tc) : weft_conn_input(uc->conn);
}

struct evbuffer *weft_upconn_output(weft_upconn *uc) {
    return uc->tc ? weft_transport_codec_out(uc->tc) : weft_conn_output(uc->conn);
}

static unsigned pool_bucket(const char *key) {
    return (unsigned)(weft_hash64(key, strlen(key), 0) % WEFT_POOL_BUCKETS);
}

static weft_pool *pool_get(weft_worker *w, const char *key) {
    unsigned b = pool_bucket(key);
    for (weft_pool *p = w->pools[b]; p; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p;
    weft_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->next = w->pools[b];
    w->pools[b] = p;
    return p;
}

static void idle_unlink(weft_upconn *uc) {
    weft_pool *p = uc->pool;
    for (weft_upconn **pp = &p->idle; *pp; pp = &(*pp)->next)
        if (*pp == uc) {
            *pp = uc->next;
            uc->next = NULL;
            uc->is_idle = false;
            p->n_idle--;
            weft_stats_gauge_add(uc->w->stats, uc->idle_stat, -1);
            return;
        }
}

/* Frees the connection. Never called from inside its own parser callback
 * (see in_cb below). */
static void upconn_free(weft_upconn *uc) {
    if (uc->is_idle)
        idle_unlink(uc);
    if (uc->pool)
        uc->pool->n_total--;
    weft_stats_gauge_add(uc->w->stats, uc->cx_stat, -1);
    weft_ltimer_stop(&uc->timer);
    event_del(&uc->ev_resume);
    if (uc->tc) {
        event_del(&uc->ev_tx);
        if (uc->tc->magic)
            weft_transport_close(uc->tc);
        free(uc->tc);
    }
    if (uc->tsnap)
        weft_snapshot_unref(uc->tsnap);
    if (uc->conn)
        weft_conn_free(uc->conn);
    if (uc->parser)
        weft_h1_parser_free(uc->parser);
    free(uc);
}

/* Parser callbacks: forward to the attached stream. */
static int cb_resp_head(void *ud, weft_resp_head *h) {
    weft_upconn *uc = ud;
    uc->got_bytes = true;
    return uc->user.owner ? uc->user.ev->head(uc->user.owner, h) : WEFT_H1_CB_ABORT;
}
static int cb_body(void *ud, const char *p, size_t n) {
    weft_upconn *uc = ud;
    return uc->user.owner ? uc->user.ev->body(uc->user.owner, p, n) : WEFT_H1_CB_ABORT;
}
static int cb_trailers(void *ud, weft_hdrs *t) {
    weft_upconn *uc = ud;
    return uc->user.owner ? uc->user.ev->trailers(uc->user.owner, t) : WEFT_H1_CB_ABORT;
}
static int cb_complete(void *ud) {
    weft_upconn *uc = ud;
    return uc->user.owner ? uc->user.ev->complete(uc->user.owner) : WEFT_H1_CB_PAUSE;
}

static const weft_h1_callbacks up_cbs = {
    .on_resp_head = cb_resp_head,
    .on_body = cb_body,
    .on_trailers = cb_trailers,
    .on_complete = cb_complete,
};

static void up_fail(weft_upconn *uc, weft_up_err err) {
    if (uc->user.owner)
        uc->user.ev->error(uc->user.owner, err); /* releases uc */
    else
        uc->doomed = true;
}

/* Feeds buffered response bytes to the parser. Caller has set in_cb. */
static void up_process(weft_upconn *uc) {
    struct evbuffer *in = uc_in(uc);
    if (uc->tunnel) {
        if (uc->user.owner && !uc->read_paused)
            uc->user.ev->tunnel_data(uc->user.owner, in);
        return;
    }
    while ((evbuffer_get_length(in) || weft_h1_parser_needs_feed(uc->parser)) && uc->user.owner &&
           !uc->doomed && !uc->read_paused) {
        struct evbuffer_iovec v = {NULL, 0};
        if (evbuffer_get_length(in) && evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t consumed = 0;
        weft_h1_result r =
            weft_h1_parser_feed(uc->parser, v.iov_base ? v.iov_base : "", v.iov_len, &consumed);
        evbuffer_drain(in, consumed);
        if (r == WEFT_H1_ERROR) {
            up_fail(uc, WEFT_UP_ERR_PROTOCOL);
            break;
        }
        if (r == WEFT_H1_DONE || r == WEFT_H1_PAUSED || (r == WEFT_H1_OK && consumed == 0))
            break;
    }
    if (uc->user.owner && !uc->doomed)
        uc->user.ev->feed_end(uc->user.owner);
    if (!uc->user.owner && evbuffer_get_length(in))
        uc->doomed = true; /* bytes nobody asked for: the connection is unusable */
}

static void up_cb_exit(weft_upconn *uc) {
    uc->in_cb = false;
    if (uc->doomed)
        upconn_free(uc);
}

static void up_read_cb(void *arg) {
    weft_upconn *uc = arg;
    uc->in_cb = true;
    if (uc->tc && !uc->tclose && weft_transport_read(uc->tc) != 0) {
        /* A transport filter refused the bytes (-1): like a reset, or a
         * failed connect before its handshake was done. */
        up_fail(uc, uc->connected ? WEFT_UP_ERR_RESET : WEFT_UP_ERR_CONNECT);
        uc->user.owner = NULL;
        uc->doomed = true;
        up_cb_exit(uc);
        return;
    }
    if (uc->connected)
        up_process(uc);
    else if (uc->tc && evbuffer_get_length(uc_in(uc)))
        uc->doomed = !uc->user.owner; /* bytes before the handshake ended: none expected */
    up_cb_exit(uc);
}

/* ---------- transport filters (a cluster's transport_filters) ---------- */

/* TCP and every handshake are done: the request may go. */
static void up_ready(weft_upconn *uc) {
    uc->connected = true;
    weft_ltimer_clear(&uc->timer);
    if (uc->user.owner)
        uc->user.ev->connected(uc->user.owner);
}

static void t_kick(void *owner) {
    weft_upconn *uc = owner;
    event_active(&uc->ev_tx, EV_TIMEOUT, 0);
}
static void t_close(void *owner, bool flush) {
    weft_upconn *uc = owner;
    (void)flush; /* the flush happens in on_tx before the connection goes */
    uc->tclose = true;
    event_active(&uc->ev_tx, EV_TIMEOUT, 0);
}
static void t_ready(void *owner) {
    weft_upconn *uc = owner;
    if (uc->tcp_up && !uc->connected)
        event_active(&uc->ev_tx, EV_TIMEOUT, 0);
}
static const weft_transport_owner_ops upconn_towner = {t_kick, t_close, t_ready};

/* Deferred (never inside a filter hook): the chain's write side, the end
 * of the handshakes, a filter's close. */
static void up_tx_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    weft_upconn *uc = arg;
    if (uc->doomed || !uc->tc)
        return;
    uc->in_cb = true;
    if (weft_transport_write(uc->tc) != 0)
        uc->tclose = true;
    if (uc->tclose) {
        weft_conn_flush(uc->conn);
        up_fail(uc, uc->connected ? WEFT_UP_ERR_RESET : WEFT_UP_ERR_CONNECT);
        uc->user.owner = NULL;
        uc->doomed = true;
    } else if (uc->tcp_up && !uc->connected && weft_transport_ready(uc->tc) && uc->tc->facts.alpn &&
               strcmp(uc->tc->facts.alpn, "h2") == 0) {
        /* This pool's codec is HTTP/1.1: a handshake that picked h2 cannot
         * be served here. `protocol: auto` offered h2: the user sends the
         * request again as HTTP/2 (nothing was sent on this connection). */
        bool is_auto = uc->cluster->cfg->protocol == WEFT_PROTO_AUTO;
        if (is_auto)
            WEFT_DEBUG("upstream %s: ALPN h2 (protocol auto): switching to HTTP/2",
                       uc->pool->ep_name);
        else
            WEFT_WARN("upstream %s: transport filters negotiated ALPN h2 on an HTTP/1.1 connection",
                      uc->pool->ep_name);
        up_fail(uc, is_auto ? WEFT_UP_ERR_ALPN_H2 : WEFT_UP_ERR_PROTOCOL);
        uc->user.owner = NULL;
        uc->doomed = true;
    } else if (uc->tcp_up && !uc->connected && weft_transport_ready(uc->tc)) {
        up_ready(uc);
        if (uc->user.owner && evbuffer_get_length(uc_in(uc)))
            up_process(uc); /* a response begun in the handshake's last segment */
    }
    up_cb_exit(uc);
}

static void codec_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    (void)buf;
    weft_upconn *uc = arg;
    if (info->n_added)
        event_active(&uc->ev_tx, EV_TIMEOUT, 0);
}

/* TCP is up: start the chain (filters may write first, a ClientHello). */
static int up_transport_start(weft_upconn *uc, const weft_cluster_snap *c, const char *ep_name) {
    const weft_cfg_cluster *cc = c->cfg;
    const char *offer = cc->protocol == WEFT_PROTO_HTTP2  ? "h2"
                        : cc->protocol == WEFT_PROTO_AUTO ? "h2,http/1.1"
                                                          : "http/1.1";
    if (weft_transport_init(uc->tc, c->tchain.transport, c->tchain.n_transport, uc->w->base,
                            weft_conn_input(uc->conn), weft_conn_output(uc->conn), &upconn_towner,
                            uc, uc->hw))
        return -1;
    evbuffer_add_cb(weft_transport_codec_out(uc->tc), codec_out_cb, uc);
    return weft_transport_start_upstream(uc->tc, cc->name, ep_name, offer, cc->sni);
}

static void up_write_cb(void *arg) {
    weft_upconn *uc = arg;
    if (uc->user.owner)
        uc->user.ev->writable(uc->user.owner);
}

static void up_event_cb(void *arg, int what) {
    weft_upconn *uc = arg;
    if (what & WEFT_CONN_CONNECTED) {
        uc->tcp_up = true;
        int one = 1;
        setsockopt(weft_conn_fd(uc->conn), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (uc->tc) {
            /* The connect timeout keeps running until the handshakes end. */
            if (up_transport_start(uc, uc->cluster, uc->pool->ep_name) != 0) {
                uc->tclose = true;
                event_active(&uc->ev_tx, EV_TIMEOUT, 0);
            } else if (weft_transport_ready(uc->tc)) {
                event_active(&uc->ev_tx, EV_TIMEOUT, 0);
            }
            return;
        }
        uc->connected = true;
        weft_ltimer_clear(&uc->timer);
        if (uc->user.owner)
            uc->user.ev->connected(uc->user.owner);
        return;
    }
    if (!(what & (WEFT_CONN_EOF | WEFT_CONN_ERROR)))
        return;
    uc->in_cb = true;
    if (!uc->user.owner) {
        /* An idle pooled connection closed by the server. */
    } else if (!uc->connected) {
        if (uc->tc && uc->tc->magic && what & WEFT_CONN_EOF)
            weft_transport_read(uc->tc); /* a filter may want the last bytes (an alert) */
        up_fail(uc, WEFT_UP_ERR_CONNECT);
    } else if (what & WEFT_CONN_EOF) {
        /* Drain what is left, then let the parser decide: a response framed
         * by close completes here; anything else was cut short. */
        if (uc->tc && uc->tc->magic && weft_transport_read(uc->tc) != 0)
            evbuffer_drain(uc_in(uc), evbuffer_get_length(uc_in(uc)));
        up_process(uc);
        if (uc->tunnel && uc->user.owner)
            up_fail(uc, WEFT_UP_ERR_RESET); /* the tunnel's upstream side ended */
        else if (uc->user.owner && !uc->doomed && weft_h1_parser_eof(uc->parser) != WEFT_H1_DONE &&
                 uc->user.owner)
            up_fail(uc, WEFT_UP_ERR_RESET);
    } else {
        up_fail(uc, WEFT_UP_ERR_RESET);
    }
    uc->user.owner = NULL;
    uc->doomed = true; /* the socket is gone either way */
    up_cb_exit(uc);
}

static void up_resume_cb(evutil_socket_t fd, short what, void *arg) {
    up_read_cb(arg);
}

static const weft_conn_cbs upconn_cbs = {up_read_cb, up_write_cb, up_event_cb};

static void up_timer_cb(void *arg) {
    weft_upconn *uc = arg;
    if (!uc->connected && uc->user.owner) {
        uc->in_cb = true;
        up_fail(uc, WEFT_UP_ERR_CONNECT_TIMEOUT);
        uc->user.owner = NULL;
        uc->doomed = true;
        up_cb_exit(uc);
    } else if (!uc->user.owner) {
        upconn_free(uc); /* idle past pool_idle_timeout */
    }
}

static void attach(weft_upconn *uc, const weft_up_user *u) {
    uc->user = *u;
    uc->got_bytes = false;
    uc->read_paused = false;
    weft_h1_parser_next(uc->parser, u->arena, u->req->method_id);
    weft_conn_read_enable(uc->conn, true);
}

/* What a connection needs from its cluster after the stream lets go:
 * copied, because an idle pooled connection outlives config snapshots
 * (stats ids are stable across reloads). */
static void copy_limits(weft_upconn *uc, const weft_cluster_snap *c) {
    uc->max_idle = c->cfg->max_idle_per_endpoint;
    uc->max_req = c->cfg->max_requests_per_connection;
    uc->idle_timeout_ms = c->cfg->pool_idle_timeout_ms;
    uc->idle_stat = c->pool_idle;
}

weft_upconn *weft_pool_acquire(weft_worker *w, weft_cluster_snap *c, const weft_endpoint *ep,
                               const weft_up_user *u, bool allow_idle, bool *reused) {
    /* Connections with transport filters are keyed by the chain too (its
     * address is unique while a connection holds its snapshot) and the
     * SNI: two clusters, or two configs, never share one. */
    char key[sizeof(((weft_pool *)0)->key)];
    bool transport = c->tchain.n_transport > 0;
    if (transport)
        snprintf(key, sizeof(key), "%s|tf%p|%s", ep->name, (const void *)&c->tchain,
                 c->cfg->sni ? c->cfg->sni : "");
    weft_pool *p = pool_get(w, transport ? key : ep->name);
    if (!p)
        return NULL;
    if (!p->ep_name[0])
        snprintf(p->ep_name, sizeof(p->ep_name), "%s", ep->name);
    if (allow_idle && p->idle) {
        weft_upconn *uc = p->idle;
        idle_unlink(uc);
        weft_ltimer_clear(&uc->timer);
        uc->cluster = c;
        copy_limits(uc, c);
        *reused = true;
        attach(uc, u);
        return uc;
    }
    *reused = false;
    weft_upconn *uc = calloc(1, sizeof(*uc));
    if (!uc)
        return NULL;
    uc->w = w;
    uc->pool = p;
    uc->cluster = c;
    copy_limits(uc, c);
    uc->cx_stat = c->cx_active;
    uc->hw = u->high_watermark;
    if (transport) {
        uc->tc = calloc(1, sizeof(*uc->tc));
        if (!uc->tc) {
            free(uc);
            return NULL;
        }
        uc->tsnap = c->snap;
        weft_snapshot_ref(uc->tsnap);
        event_assign(&uc->ev_tx, w->base, -1, 0, up_tx_cb, uc);
    }
    uc->conn = weft_conn_new(w->base, -1, &upconn_cbs, uc);
    uc->parser = weft_h1_parser_new(WEFT_H1_RESPONSE, NULL, &up_cbs, uc);
    weft_ltimer_init(&uc->timer, w->base, up_timer_cb, uc);
    event_assign(&uc->ev_resume, w->base, -1, 0, up_resume_cb, uc);
    if (!uc->conn || !uc->parser) {
        if (uc->conn)
            weft_conn_free(uc->conn);
        if (uc->parser)
            weft_h1_parser_free(uc->parser);
        free(uc->tc);
        if (uc->tsnap)
            weft_snapshot_unref(uc->tsnap);
        free(uc);
        return NULL;
    }
    p->n_total++;
    weft_stats_inc(w->stats, c->cx_total, 1);
    weft_stats_gauge_add(w->stats, c->cx_active, 1);
    /* The drained callback fires when the output is back under half the
     * watermark: that is when a paused downstream may read again. */
    uint32_t hw = u->high_watermark;
    weft_conn_set_watermarks(uc->conn, hw, hw / 2);
    weft_ltimer_set(&uc->timer, c->cfg->connect_timeout_ms ? c->cfg->connect_timeout_ms : 1000);
    attach(uc, u);
    if (weft_conn_connect(uc->conn, (const struct sockaddr *)&ep->addr, ep->addrlen) < 0) {
        uc->user.owner = NULL;
        weft_stats_inc(w->stats, c->cx_connect_fail, 1);
        upconn_free(uc);
        return NULL;
    }
    return uc;
}

void weft_upconn_release(weft_upconn *uc, bool reusable) {
    if (!uc)
        return;
    bool had_user = uc->user.owner != NULL;
    uc->user.owner = NULL;
    if (had_user)
        uc->requests++;
    uint32_t max_idle = uc->max_idle;
    uint32_t max_req = uc->max_req;
    weft_worker *w = uc->w;
    if (reusable && !uc->tunnel && uc->connected && uc->pool->n_idle < max_idle &&
        (!max_req || uc->requests < max_req)) {
        /* Bytes beyond the response (still in the input while the parser
         * callback runs) are caught by up_process(), which dooms it. */
        uc->next = uc->pool->idle;
        uc->pool->idle = uc;
        uc->pool->n_idle++;
        uc->is_idle = true;
        uc->idle_since_ms = weft_now_ms();
        weft_stats_gauge_add(w->stats, uc->idle_stat, 1);
        uc->cluster = NULL;                    /* an idle connection may outlive its snapshot */
        weft_conn_read_enable(uc->conn, true); /* notice the server closing it */
        weft_ltimer_set(&uc->timer, uc->idle_timeout_ms);
        return;
    }
    if (uc->in_cb)
        uc->doomed = true;
    else
        upconn_free(uc);
}

void weft_upconn_pause_read(weft_upconn *uc) {
    uc->read_paused = true;
    weft_conn_read_enable(uc->conn, false);
}

void weft_upconn_resume_read(weft_upconn *uc) {
    uc->read_paused = false;
    weft_conn_read_enable(uc->conn, true);
    if (evbuffer_get_length(weft_conn_input(uc->conn)) || evbuffer_get_length(uc_in(uc)))
        event_active(&uc->ev_resume, EV_TIMEOUT, 0);
}

void weft_pools_sweep(weft_worker *w) {
    for (int b = 0; b < WEFT_POOL_BUCKETS; b++) {
        weft_pool **pp = &w->pools[b];
        while (*pp) {
            weft_pool *p = *pp;
            /* Idle connections whose transport filters belong to a config
             * the worker no longer runs: new requests never pick them
             * (their key names the old chain); close them and let the old
             * snapshot go. */
            for (weft_upconn **up = &p->idle; *up;) {
                weft_upconn *uc = *up;
                if (uc->tsnap && w->cur && uc->tsnap != w->cur->snap) {
                    upconn_free(uc); /* unlinks it from p->idle */
                    continue;
                }
                up = &uc->next;
            }
            if (p->n_total == 0 && p->n_idle == 0) {
                *pp = p->next;
                free(p);
                continue;
            }
            pp = &p->next;
        }
    }
}

void weft_pools_free_all(weft_worker *w) {
    for (int b = 0; b < WEFT_POOL_BUCKETS; b++) {
        weft_pool *p = w->pools[b];
        while (p) {
            while (p->idle)
                upconn_free(p->idle);
            weft_pool *next = p->next;
            p->n_total = 0;
            /* Connections still attached to streams are freed with their
             * streams before this runs (worker shutdown order). */
            free(p);
            p = next;
        }
        w->pools[b] = NULL;
    }
}
