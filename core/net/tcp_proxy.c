/* tcp_proxy.c: opaque TCP proxying (see tcp_proxy.h). */
#include "net/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/common.h"
#include "common/response_flags.h"
#include "filter/transport.h"
#include "log/access_log.h"
#include "common/ltimer.h"
#include "net/conn.h"
#include "runtime/wsnap.h"
#include "upstream/attempt.h"

#define DEFAULT_HIGH_WATERMARK (1024u * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 5000

struct weft_tcp_conn {
    weft_worker *w;
    weft_wsnap *ws;                /* snapshot the connection was accepted on (one ref) */
    const weft_listener_snap *lst; /* in ws */
    weft_cluster_wrk *cluster;     /* in ws: where the endpoint was picked */
    weft_attempt att;              /* the last attempt (holds its lb and hostset) */
    weft_conn *down, *up;
    weft_ltimer timer;        /* connect timeout, then idle timeout */
    struct event ev_deferred; /* retry or close, outside the conn callbacks */
    weft_tcp_conn *prev, *next;
    uint64_t t_start_us, t_attempt_us, t_connected_us;
    uint64_t rx, tx; /* bytes from / to downstream */
    size_t hw;       /* buffer_high_watermark */
    uint32_t attempts;
    uint32_t flags; /* WEFT_RF_* */
    char peer_ip[INET6_ADDRSTRLEN];
    bool connected;
    bool up_counted;         /* cluster cx_active holds `up` */
    bool down_eof, up_eof;   /* that side sent FIN */
    bool up_shut, down_shut; /* write side shut down (after flush) */
    bool retry;              /* the attempt failed: next endpoint from ev_deferred */
    bool closing;            /* freed from ev_deferred */
    /* Transport filters: the listener's on the client side (tdown), the
     * cluster's on the upstream side (tup); NULL without. `connected`
     * then means TCP up and the upstream handshakes done (tcp_up: TCP
     * alone); bytes move only once both sides' handshakes are done. */
    struct weft_connection *tdown, *tup;
    struct event ev_tx; /* a filter's write, close or handshake end, deferred */
    bool tcp_up;
    bool tclose, tclose_flush;
};

static weft_listener_snap *find_listener(weft_wsnap *ws, const char *name) {
    for (size_t i = 0; i < ws->snap->cfg->n_listeners; i++)
        if (strcmp(ws->snap->listeners[i].cfg->name, name) == 0)
            return &ws->snap->listeners[i];
    return NULL;
}

static weft_cluster_snap *cluster_shared(const weft_tcp_conn *tc) {
    return &tc->ws->snap->clusters[tc->lst->tcp_cluster];
}

/* What the relay reads from and writes to on each side: the top of the
 * side's transport chain, or its socket buffers. */
static struct evbuffer *side_in(weft_tcp_conn *tc, bool down) {
    struct weft_connection *t = down ? tc->tdown : tc->tup;
    return t ? weft_transport_codec_in(t) : weft_conn_input(down ? tc->down : tc->up);
}
static struct evbuffer *side_out(weft_tcp_conn *tc, bool down) {
    struct weft_connection *t = down ? tc->tdown : tc->tup;
    return t ? weft_transport_codec_out(t) : weft_conn_output(down ? tc->down : tc->up);
}
/* Bytes queued toward a side's peer: its socket output and its chain. */
static size_t side_queued(weft_tcp_conn *tc, bool down) {
    struct weft_connection *t = down ? tc->tdown : tc->tup;
    weft_conn *c = down ? tc->down : tc->up;
    size_t n = c ? evbuffer_get_length(weft_conn_output(c)) : 0;
    return t ? n + weft_transport_pending_out(t) : n;
}
/* Both sides may carry bytes: upstream connected (handshakes included)
 * and the client side's handshakes done. */
static bool relay_ready(const weft_tcp_conn *tc) {
    return tc->connected && (!tc->tdown || weft_transport_ready(tc->tdown));
}

static void chain_free(struct weft_connection **t) {
    if (!*t)
        return;
    if ((*t)->magic)
        weft_transport_close(*t);
    free(*t);
    *t = NULL;
}

/* ---------- closing ---------- */

static void close_soon(weft_tcp_conn *tc) {
    if (tc->closing)
        return;
    tc->closing = true;
    weft_conn_read_enable(tc->down, false);
    if (tc->up)
        weft_conn_read_enable(tc->up, false);
    weft_ltimer_clear(&tc->timer);
    event_active(&tc->ev_deferred, EV_TIMEOUT, 0);
}

static void lb_end(weft_tcp_conn *tc, bool ok) {
    uint64_t lat =
        ok && tc->t_connected_us > tc->t_attempt_us ? tc->t_connected_us - tc->t_attempt_us : 0;
    weft_attempt_end(&tc->att, ok, lat, weft_now_us());
}

static void drop_up(weft_tcp_conn *tc) {
    chain_free(&tc->tup);
    tc->tcp_up = false;
    if (!tc->up)
        return;
    weft_conn_free(tc->up);
    tc->up = NULL;
    if (tc->up_counted) {
        weft_stats_gauge_add(tc->w->stats, cluster_shared(tc)->cx_active, -1);
        tc->up_counted = false;
    }
}

static void tc_free(weft_tcp_conn *tc) {
    weft_worker *w = tc->w;
    const weft_listener_snap *lst = tc->lst;
    lb_end(tc, tc->connected);
    drop_up(tc);
    weft_log_record r = {
        .protocol = WEFT_LOG_TCP,
        .listener = lst->cfg->name,
        .downstream_remote = tc->peer_ip,
        .upstream_host = tc->att.ep ? tc->att.ep->name : NULL,
        .upstream_cluster = lst->cfg->tcp_cluster,
        .bytes_received = tc->rx,
        .bytes_sent = tc->tx,
        .duration_us = weft_now_us() - tc->t_start_us,
        .flags = tc->flags,
        .upstream_service_us = -1,
        .grpc_status = -1,
    };
    weft_access_log_write(tc->ws->snap->access_log_fd, &r);
    chain_free(&tc->tdown);
    event_del(&tc->ev_tx);
    weft_conn_free(tc->down);
    weft_ltimer_stop(&tc->timer);
    event_del(&tc->ev_deferred);
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        w->tcp_conns = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    atomic_fetch_sub_explicit(&w->active_conns, 1, memory_order_relaxed);
    weft_stats_gauge_add(w->stats, lst->cx_active, -1);
    weft_stats_gauge_add(w->stats, lst->tcp_cx_active, -1);
    weft_attempt_clear(&tc->att);
    weft_wsnap_unref(tc->ws);
    free(tc);
}

/* ---------- moving bytes ---------- */

/* Moves what `to_up` (downstream -> upstream, else the reverse) has read
 * into the other side's output, pauses or resumes reading on the source
 * by the other side's output level, and forwards a FIN once the source's
 * input is empty. */
static void pump(weft_tcp_conn *tc, bool to_up) {
    weft_conn *src = to_up ? tc->down : tc->up;
    weft_conn *dst = to_up ? tc->up : tc->down;
    if (!src || !dst || tc->closing || !relay_ready(tc))
        return;
    struct evbuffer *in = side_in(tc, to_up), *out = side_out(tc, !to_up);
    struct weft_connection *chain = to_up ? tc->tup : tc->tdown;
    size_t n = evbuffer_get_length(in);
    size_t queued = side_queued(tc, !to_up);
    if (n && queued < tc->hw) {
        evbuffer_add_buffer(out, in);
        /* Through the destination's filters now (not at the end of the
         * turn): a FIN below must not overtake these bytes. */
        if (chain && weft_transport_write(chain) != 0) {
            tc->flags |= to_up ? WEFT_RF_UC : WEFT_RF_DC;
            close_soon(tc);
            return;
        }
        queued += n;
        if (to_up) {
            tc->rx += n;
            weft_stats_inc(tc->w->stats, tc->lst->tcp_rx_bytes, n);
        } else {
            tc->tx += n;
            weft_stats_inc(tc->w->stats, tc->lst->tcp_tx_bytes, n);
        }
        weft_ltimer_set(&tc->timer, tc->lst->cfg->tcp_idle_timeout_ms);
    }
    weft_conn_read_enable(src, queued < tc->hw);
    bool eof = to_up ? tc->down_eof : tc->up_eof;
    bool *shut = to_up ? &tc->up_shut : &tc->down_shut;
    if (eof && !*shut && !evbuffer_get_length(in) &&
        (!chain || !weft_transport_pending_out(chain))) {
        *shut = true;
        weft_conn_shutdown_write(dst); /* may report an error: close_soon, nothing freed here */
    }
}

/* Both sides sent FIN and everything was delivered: a normal close. */
static void maybe_done(weft_tcp_conn *tc) {
    if (tc->closing || !tc->down_eof || !tc->up_eof || !tc->up)
        return;
    if (evbuffer_get_length(side_in(tc, true)) || evbuffer_get_length(side_in(tc, false)) ||
        side_queued(tc, true) || side_queued(tc, false))
        return;
    close_soon(tc);
}

/* ---------- upstream attempts ---------- */

static void connect_next(weft_tcp_conn *tc);

/* The current attempt failed (refused, reset or timed out): count it and
 * release its connection. Not called from inside the conn's callbacks. */
static void attempt_failed(weft_tcp_conn *tc, bool timeout) {
    weft_cluster_snap *cs = cluster_shared(tc);
    weft_stats_inc(tc->w->stats, timeout ? cs->cx_connect_timeout : cs->cx_connect_fail, 1);
    lb_end(tc, false);
    drop_up(tc);
    weft_ltimer_clear(&tc->timer);
}

static void up_read(void *ud) {
    weft_tcp_conn *tc = ud;
    if (tc->tup && !tc->closing && weft_transport_read(tc->tup) != 0) {
        if (!tc->connected) { /* a failed handshake: like a failed connect */
            tc->retry = true;
            event_active(&tc->ev_deferred, EV_TIMEOUT, 0);
            return;
        }
        tc->flags |= WEFT_RF_UC;
        close_soon(tc);
        return;
    }
    pump(tc, false);
}

/* The upstream connection can carry bytes (TCP up, handshakes done). */
static void up_ready(weft_tcp_conn *tc) {
    tc->connected = true;
    tc->t_connected_us = weft_now_us();
    weft_conn_set_watermarks(tc->up, tc->hw, tc->hw / 2);
    weft_ltimer_set(&tc->timer, tc->lst->cfg->tcp_idle_timeout_ms); /* 0 clears */
    pump(tc, true);
    pump(tc, false);
}

/* ---------- transport filters ---------- */

static void t_kick(void *owner) {
    weft_tcp_conn *tc = owner;
    event_active(&tc->ev_tx, EV_TIMEOUT, 0);
}
static void t_close(void *owner, bool flush) {
    weft_tcp_conn *tc = owner;
    if (!tc->tclose)
        tc->tclose_flush = flush;
    else if (!flush)
        tc->tclose_flush = false;
    tc->tclose = true;
    event_active(&tc->ev_tx, EV_TIMEOUT, 0);
}
static const weft_transport_owner_ops tcp_towner = {t_kick, t_close, t_kick};

/* Deferred: filters' own writes go down their chains, a close is carried
 * out, and the end of the handshakes lets bytes move. */
static void on_tx(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    weft_tcp_conn *tc = arg;
    if (tc->closing)
        return;
    if ((tc->tdown && weft_transport_write(tc->tdown) != 0) ||
        (tc->tup && tc->tup->magic && weft_transport_write(tc->tup) != 0))
        tc->tclose = true;
    if (tc->tclose) {
        if (tc->tclose_flush) {
            weft_conn_flush(tc->down);
            if (tc->up)
                weft_conn_flush(tc->up);
        }
        close_soon(tc);
        return;
    }
    if (tc->tup && tc->tcp_up && !tc->connected && weft_transport_ready(tc->tup)) {
        up_ready(tc);
        return;
    }
    if (relay_ready(tc)) {
        pump(tc, true);
        pump(tc, false);
    }
}

static int chain_start(weft_tcp_conn *tc, struct weft_connection **out, const weft_filter_chain *ch,
                       weft_conn *c) {
    *out = calloc(1, sizeof(**out));
    if (!*out)
        return -1;
    return weft_transport_init(*out, ch->transport, ch->n_transport, tc->w->base,
                               weft_conn_input(c), weft_conn_output(c), &tcp_towner, tc, tc->hw);
}

static void up_drained(void *ud) {
    weft_tcp_conn *tc = ud;
    pump(tc, true);
    maybe_done(tc);
}

static void up_event(void *ud, int what) {
    weft_tcp_conn *tc = ud;
    if (tc->closing)
        return;
    if (what & WEFT_CONN_CONNECTED) {
        tc->tcp_up = true;
        weft_cluster_snap *cs = cluster_shared(tc);
        if (cs->tchain.n_transport) {
            /* The connect timeout runs on until the handshakes end. */
            if (chain_start(tc, &tc->tup, &cs->tchain, tc->up) != 0 ||
                weft_transport_start_upstream(tc->tup, cs->cfg->name,
                                              tc->att.ep ? tc->att.ep->name : "", "",
                                              cs->cfg->sni) != 0) {
                tc->retry = true;
                event_active(&tc->ev_deferred, EV_TIMEOUT, 0);
                return;
            }
            if (weft_transport_ready(tc->tup))
                event_active(&tc->ev_tx, EV_TIMEOUT, 0);
            return;
        }
        up_ready(tc);
        return;
    }
    if (what & WEFT_CONN_ERROR) {
        if (!tc->connected) {
            /* The next attempt runs from ev_deferred: the conn that is
             * calling us is freed there. */
            tc->retry = true;
            event_active(&tc->ev_deferred, EV_TIMEOUT, 0);
            return;
        }
        tc->flags |= WEFT_RF_UC;
        close_soon(tc);
        return;
    }
    if (what & WEFT_CONN_EOF) {
        if (!tc->connected) { /* closed during the handshake: a failed attempt */
            tc->retry = true;
            event_active(&tc->ev_deferred, EV_TIMEOUT, 0);
            return;
        }
        tc->up_eof = true;
        pump(tc, false);
        maybe_done(tc);
    }
}

static const weft_conn_cbs up_cbs = {up_read, up_drained, up_event};

static uint64_t source_hash(const weft_tcp_conn *tc, const weft_cluster_wrk *c, bool *has) {
    *has = false;
    if (c->lb->policy != WEFT_LB_RING_HASH || c->shared->cfg->hash_on != WEFT_HASH_SOURCE_IP)
        return 0; /* header and cookie keys do not exist on a TCP stream: ring hash picks at random
                   */
    *has = true;
    return weft_hash64(tc->peer_ip, strlen(tc->peer_ip), 0);
}

/* Picks an endpoint and starts connecting, trying the next ones (up to
 * max_connect_attempts in all) while connect fails at once. Closes the
 * connection when no attempt is left or no endpoint is healthy. */
static void connect_next(weft_tcp_conn *tc) {
    const weft_cfg_listener *cl = tc->lst->cfg;
    weft_cluster_snap *cs = cluster_shared(tc);
    while (tc->attempts < cl->tcp_connect_attempts) {
        weft_cluster_wrk *c = weft_wsnap_cluster(tc->ws, tc->lst->tcp_cluster);
        /* Avoid the endpoint that just failed when another one is healthy. */
        int exclude = c && tc->att.lb == c->lb ? tc->att.idx : -1;
        bool has_hash = false;
        uint64_t h = c ? source_hash(tc, c, &has_hash) : 0;
        int idx = c ? weft_lb_pick(c->lb, h, has_hash, exclude) : -1;
        if (idx < 0) {
            weft_stats_inc(tc->w->stats, cs->rq_no_healthy, 1);
            if (!tc->attempts)
                tc->flags |= WEFT_RF_UH;
            break;
        }
        tc->cluster = c;
        tc->attempts++;
        tc->t_attempt_us = weft_now_us();
        weft_attempt_start(&tc->att, c->lb, idx, tc->t_attempt_us);
        tc->up = weft_conn_new(tc->w->base, -1, &up_cbs, tc);
        if (!tc->up) {
            lb_end(tc, false);
            break;
        }
        weft_stats_inc(tc->w->stats, cs->cx_total, 1);
        weft_stats_gauge_add(tc->w->stats, cs->cx_active, 1);
        tc->up_counted = true;
        if (weft_conn_connect(tc->up, (const struct sockaddr *)&tc->att.ep->addr,
                              tc->att.ep->addrlen) < 0) {
            WEFT_DEBUG("tcp_proxy %s: connect to %s failed: %s", cl->name, tc->att.ep->name,
                       strerror(weft_conn_error(tc->up)));
            attempt_failed(tc, false);
            continue;
        }
        uint64_t ct =
            cs->cfg->connect_timeout_ms ? cs->cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
        weft_ltimer_set(&tc->timer, ct);
        return;
    }
    if (!(tc->flags & WEFT_RF_UH)) {
        tc->flags |= WEFT_RF_UF;
        weft_stats_inc(tc->w->stats, tc->lst->tcp_connect_fail, 1);
    }
    close_soon(tc);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg) {
    weft_tcp_conn *tc = arg;
    if (tc->closing) {
        tc_free(tc);
        return;
    }
    if (tc->retry) {
        tc->retry = false;
        attempt_failed(tc, false);
        connect_next(tc);
    }
}

static void on_timer(void *arg) {
    weft_tcp_conn *tc = arg;
    if (tc->closing || tc->retry)
        return;
    if (!tc->connected) {
        attempt_failed(tc, true);
        connect_next(tc);
        return;
    }
    tc->flags |= WEFT_RF_SI;
    close_soon(tc);
}

/* ---------- downstream ---------- */

static void down_read(void *ud) {
    weft_tcp_conn *tc = ud;
    if (tc->tdown && !tc->closing && weft_transport_read(tc->tdown) != 0) {
        tc->flags |= WEFT_RF_DC;
        close_soon(tc);
        return;
    }
    if (tc->connected)
        pump(tc, true);
    /* Not connected yet: the bytes wait in the input (reading stops at
     * the watermark) and go up once the connection is made. */
}

static void down_drained(void *ud) {
    weft_tcp_conn *tc = ud;
    pump(tc, false);
    maybe_done(tc);
}

static void down_event(void *ud, int what) {
    weft_tcp_conn *tc = ud;
    if (tc->closing)
        return;
    if (what & WEFT_CONN_ERROR) {
        tc->flags |= WEFT_RF_DC;
        close_soon(tc);
        return;
    }
    if (what & WEFT_CONN_EOF) {
        tc->down_eof = true;
        if (tc->connected)
            pump(tc, true);
        maybe_done(tc);
    }
}

static const weft_conn_cbs down_cbs = {down_read, down_drained, down_event};

void weft_tcp_proxy_accept(weft_worker *w, const char *listener_name, evutil_socket_t fd,
                           const struct sockaddr *sa, int salen) {
    (void)salen;
    weft_listener_snap *lst = find_listener(w->cur, listener_name);
    if (!lst || !lst->cfg->is_tcp || lst->tcp_cluster < 0 || w->draining) {
        evutil_closesocket(fd);
        return;
    }
    const weft_cfg_limits *lim = &lst->cfg->limits;
    if (lim->max_connections) {
        /* The limit is per listener; each worker enforces its share. */
        uint32_t nworkers = w->cur->snap->cfg->workers ? w->cur->snap->cfg->workers : 1;
        int per_worker = (int)((lim->max_connections + nworkers - 1) / nworkers);
        if (atomic_load_explicit(&w->active_conns, memory_order_relaxed) >= per_worker) {
            weft_stats_inc(w->stats, lst->cx_refused, 1);
            evutil_closesocket(fd);
            return;
        }
    }
    weft_tcp_conn *tc = calloc(1, sizeof(*tc));
    if (!tc) {
        evutil_closesocket(fd);
        return;
    }
    tc->w = w;
    tc->lst = lst;
    weft_attempt_init(&tc->att);
    tc->t_start_us = weft_now_us();
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, tc->peer_ip,
                  sizeof(tc->peer_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, tc->peer_ip,
                  sizeof(tc->peer_ip));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    tc->down = weft_conn_new(w->base, fd, &down_cbs, tc);
    if (!tc->down) {
        evutil_closesocket(fd);
        free(tc);
        return;
    }
    tc->ws = weft_wsnap_ref(w->cur);
    tc->hw = lim->buffer_high_watermark ? lim->buffer_high_watermark : DEFAULT_HIGH_WATERMARK;
    weft_conn_set_watermarks(tc->down, tc->hw, tc->hw / 2);
    event_assign(&tc->ev_deferred, w->base, -1, 0, on_deferred, tc);
    event_assign(&tc->ev_tx, w->base, -1, 0, on_tx, tc);
    weft_ltimer_init(&tc->timer, w->base, on_timer, tc);
    tc->next = w->tcp_conns;
    if (w->tcp_conns)
        w->tcp_conns->prev = tc;
    w->tcp_conns = tc;
    atomic_fetch_add_explicit(&w->active_conns, 1, memory_order_relaxed);
    weft_stats_inc(w->stats, lst->cx_total, 1);
    weft_stats_gauge_add(w->stats, lst->cx_active, 1);
    weft_stats_inc(w->stats, lst->tcp_cx_total, 1);
    weft_stats_gauge_add(w->stats, lst->tcp_cx_active, 1);
    if (lst->chain.n_transport) {
        if (chain_start(tc, &tc->tdown, &lst->chain, tc->down) != 0) {
            close_soon(tc);
            return;
        }
        weft_conn_facts *f = &tc->tdown->facts;
        snprintf(tc->tdown->peer_ip, sizeof(tc->tdown->peer_ip), "%s", tc->peer_ip);
        f->peer_ip = tc->tdown->peer_ip;
        f->peer_port = sa->sa_family == AF_INET6
                           ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
                           : ntohs(((const struct sockaddr_in *)sa)->sin_port);
        struct sockaddr_storage ls;
        socklen_t ll = sizeof(ls);
        if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0 &&
            (ls.ss_family == AF_INET || ls.ss_family == AF_INET6)) {
            bool v6 = ls.ss_family == AF_INET6;
            inet_ntop(ls.ss_family,
                      v6 ? (const void *)&((struct sockaddr_in6 *)&ls)->sin6_addr
                         : (const void *)&((struct sockaddr_in *)&ls)->sin_addr,
                      tc->tdown->local_ip, sizeof(tc->tdown->local_ip));
            f->local_ip = tc->tdown->local_ip;
            f->local_port = ntohs(v6 ? ((struct sockaddr_in6 *)&ls)->sin6_port
                                     : ((struct sockaddr_in *)&ls)->sin_port);
        }
        weft_transport_start_downstream(tc->tdown);
    }
    connect_next(tc);
}

void weft_tcp_proxy_free_all(weft_worker *w) {
    while (w->tcp_conns)
        tc_free(w->tcp_conns);
}
