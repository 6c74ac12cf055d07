/* h2_pool.c: HTTP/2 upstream connections (see h2_pool.h).
 *
 * Lifetimes: a weft_h2up_stream is freed when both the weft stream
 * released it and nghttp2 closed it. A connection is freed when it failed
 * or went idle after a GOAWAY with no stream left; worker shutdown frees
 * everything (weft_h2up_free_all). */
#include "upstream/h2_pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "filter/transport.h"
#include "http/h2/h2_mem.h"
#include "http/h2/h2_nv.h"
#include "runtime/snapshot.h"
#include "upstream/up_user.h"
#include "common/ltimer.h"
#include "net/conn.h"

#define H2UP_CONN_WINDOW (16 * 1024 * 1024)
#define H2UP_STREAM_WINDOW (1024 * 1024)

struct weft_h2up_conn {
    weft_worker *w;
    weft_conn *conn;
    nghttp2_session *ng;
    char key[160];
    uint32_t max_streams; /* peer's SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t n_streams;
    uint64_t idle_timeout_ms;
    weft_stat_id cx_stat;
    weft_ltimer timer; /* connect timeout, then idle timeout */
    struct event ev_flush;
    bool connected;
    bool goaway;
    bool dead;
    bool in_cb;
    bool doomed;
    weft_h2up_stream *live; /* streams nghttp2 has not closed yet */
    weft_h2up_conn *next;
    /* A cluster's transport_filters (NULL without): the chain runs between
     * the socket and nghttp2; `connected` then means TCP up and every
     * handshake done (tcp_up: TCP alone). The connection holds its
     * snapshot (the filters' configs, and cs, live there). */
    struct weft_connection *tc;
    weft_snapshot *tsnap;
    const weft_cluster_snap *cs;
    char ep_name[96];
    bool tcp_up;
    bool tclose;
};

struct weft_h2up_stream {
    weft_h2up_conn *c;
    weft_up_user user; /* user.owner NULL once released */
    int32_t id;
    struct evbuffer *body; /* request body not yet framed */
    nghttp2_nv *trailers;
    size_t n_trailers;
    weft_resp_head resp; /* strings in the weft stream's arena */
    weft_hdrs *resp_trailers;
    size_t unconsumed;
    bool body_end;
    bool deferred;
    bool paused;
    bool head_seen;
    bool complete;
    bool closed; /* nghttp2 closed it */
    bool refused;
    weft_h2up_stream *live_prev, *live_next;
    /* Not submitted yet (id 0): its connection's transport handshake is
     * not done, and :scheme follows from it (https when the handshake
     * says TLS). The head, in the user's arena, waits here. */
    nghttp2_nv *nva;
    size_t n_nva;
    bool has_body;
};

static void live_unlink(weft_h2up_stream *us) {
    weft_h2up_conn *c = us->c;
    if (us->live_prev)
        us->live_prev->live_next = us->live_next;
    else if (c->live == us)
        c->live = us->live_next;
    if (us->live_next)
        us->live_next->live_prev = us->live_prev;
    us->live_prev = us->live_next = NULL;
}

static void conn_flush(weft_h2up_conn *c);
static void conn_fail(weft_h2up_conn *c, weft_up_err err);
static int submit(weft_h2up_stream *us);

static void schedule(weft_h2up_conn *c) {
    event_active(&c->ev_flush, EV_TIMEOUT, 0);
}

static void us_free(weft_h2up_stream *us) {
    evbuffer_free(us->body);
    free(us->trailers);
    free(us);
}

static void conn_free(weft_h2up_conn *c) {
    weft_worker *w = c->w;
    for (weft_h2up_conn **pp = &w->h2up; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    weft_stats_gauge_add(w->stats, c->cx_stat, -1);
    weft_ltimer_stop(&c->timer);
    event_del(&c->ev_flush);
    nghttp2_session_del(c->ng); /* frees nothing of ours: stream data are ours */
    if (c->tc) {
        if (c->tc->magic)
            weft_transport_close(c->tc);
        free(c->tc);
    }
    if (c->tsnap)
        weft_snapshot_unref(c->tsnap);
    weft_conn_free(c->conn);
    free(c);
}

/* The pool key: the endpoint, and with transport filters the chain (its
 * address, unique while a connection holds the snapshot) and the SNI. */
static void conn_key(char *key, size_t len, const weft_cluster_snap *cs, const weft_endpoint *ep) {
    if (cs->tchain.n_transport)
        snprintf(key, len, "%s|tf%p|%s", ep->name, (const void *)&cs->tchain,
                 cs->cfg->sni ? cs->cfg->sni : "");
    else
        snprintf(key, len, "%s", ep->name);
}

/* ---------- request body provider ---------- */

static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
    weft_h2up_stream *us = src->ptr;
    size_t have = evbuffer_get_length(us->body);
    if (!have && !us->body_end) {
        us->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    int n = have ? evbuffer_remove(us->body, buf, len) : 0;
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (us->body_end && !evbuffer_get_length(us->body)) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (us->n_trailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(ng, id, us->trailers, us->n_trailers);
        }
    }
    if (n > 0 && us->user.owner)
        us->user.ev->writable(us->user.owner);
    return n;
}

/* ---------- response callbacks ---------- */

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    weft_h2up_stream *us = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!us || !us->user.owner)
        return 0;
    if (f->headers.cat == NGHTTP2_HCAT_RESPONSE ||
        (f->headers.cat == NGHTTP2_HCAT_HEADERS && !us->head_seen)) {
        memset(&us->resp, 0, sizeof(us->resp));
        weft_hdrs_init(&us->resp.headers, us->user.arena);
        us->resp.http_minor = 1;
        us->resp.keep_alive = true;
        us->resp.content_length = -1;
    } else if (!us->resp_trailers) {
        us->resp_trailers = weft_arena_alloc(us->user.arena, sizeof(weft_hdrs));
        if (us->resp_trailers)
            weft_hdrs_init(us->resp_trailers, us->user.arena);
    }
    return 0;
}

static int cb_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
    weft_h2up_stream *us = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!us || !us->user.owner)
        return 0;
    weft_sv n = {(const char *)name, namelen}, v = {(const char *)value, valuelen};
    if (us->head_seen) {
        if (us->resp_trailers)
            weft_hdrs_add(us->resp_trailers, n, v);
        return 0;
    }
    if (weft_sv_eq(n, WEFT_SV_LIT(":status"))) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        us->resp.status = (uint16_t)st;
        return 0;
    }
    if (namelen && name[0] == ':')
        return 0;
    if (weft_sv_eq(n, WEFT_SV_LIT("content-length")))
        us->resp.content_length = strtoll((const char *)value, NULL, 10);
    weft_hdrs_add(&us->resp.headers, n, v);
    return 0;
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    weft_h2up_conn *c = ud;
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->max_streams =
            nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true; /* in-flight streams finish; new ones go elsewhere */
        return 0;
    }
    weft_h2up_stream *us = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!us || !us->user.owner)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS) {
        if (!us->head_seen) {
            if (us->resp.status >= 100 && us->resp.status < 200)
                return 0; /* interim */
            us->head_seen = true;
            if (end)
                us->resp.framing = WEFT_BODY_NONE;
            else if (us->resp.content_length >= 0)
                us->resp.framing = WEFT_BODY_LENGTH;
            else
                us->resp.framing = WEFT_BODY_CHUNKED; /* length unknown */
            us->user.ev->head(us->user.owner, &us->resp);
        } else if (us->resp_trailers && us->user.owner) {
            us->user.ev->trailers(us->user.owner, us->resp_trailers);
        }
    }
    if (end && us->user.owner && us->head_seen && !us->complete) {
        us->complete = true;
        us->user.ev->complete(us->user.owner); /* releases us */
    }
    return 0;
}

static int cb_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud) {
    weft_h2up_stream *us = nghttp2_session_get_stream_user_data(ng, id);
    if (!us || !us->user.owner) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    us->user.ev->body(us->user.owner, (const char *)data, len);
    if (us->paused)
        us->unconsumed += len; /* acknowledged when the client catches up */
    else
        nghttp2_session_consume(ng, id, len);
    return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t id, uint32_t error, void *ud) {
    weft_h2up_conn *c = ud;
    weft_h2up_stream *us = nghttp2_session_get_stream_user_data(ng, id);
    if (!us)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    live_unlink(us);
    us->closed = true;
    c->n_streams--;
    us->refused = error == NGHTTP2_REFUSED_STREAM;
    if (us->user.owner && !us->complete)
        us->user.ev->error(us->user.owner, WEFT_UP_ERR_RESET); /* releases: frees us (closed) */
    else if (!us->user.owner)
        us_free(us);
    if (c->n_streams == 0)
        weft_ltimer_set(&c->timer, c->idle_timeout_ms ? c->idle_timeout_ms : 60000);
    return 0;
}

/* ---------- connection ---------- */

static void conn_flush(weft_h2up_conn *c) {
    if (!c->connected || c->dead)
        return;
    struct evbuffer *out = c->tc ? weft_transport_codec_out(c->tc) : weft_conn_output(c->conn);
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ng, &data);
        if (n <= 0) {
            if (n < 0)
                conn_fail(c, WEFT_UP_ERR_PROTOCOL);
            break;
        }
        evbuffer_add(out, data, (size_t)n);
    }
    if (c->tc && !c->dead && weft_transport_write(c->tc) != 0)
        conn_fail(c, WEFT_UP_ERR_RESET);
}

static void on_flush(evutil_socket_t fd, short what, void *arg) {
    weft_h2up_conn *c = arg;
    c->in_cb = true;
    if (c->tc && !c->dead) {
        /* A filter's own writes (a ClientHello), its close, the end of
         * the handshakes. */
        if (c->tclose || (c->tc->magic && weft_transport_write(c->tc) != 0)) {
            conn_fail(c, c->connected ? WEFT_UP_ERR_RESET : WEFT_UP_ERR_CONNECT);
        } else if (c->tcp_up && !c->connected && weft_transport_ready(c->tc)) {
            const char *alpn = c->tc->facts.alpn;
            if (alpn && *alpn && strcmp(alpn, "h2") != 0) {
                WEFT_WARN("upstream %s: transport filters negotiated ALPN %s on an HTTP/2 "
                          "connection",
                          c->ep_name, alpn);
                conn_fail(c, WEFT_UP_ERR_PROTOCOL);
            } else {
                c->connected = true;
                weft_ltimer_clear(&c->timer);
                if (c->n_streams == 0)
                    weft_ltimer_set(&c->timer, c->idle_timeout_ms);
                /* The streams that waited for the handshake, oldest first
                 * (the list is newest first); one that cannot be submitted
                 * fails alone (its release unlinks and frees it). */
                weft_h2up_stream *last = c->live;
                while (last && last->live_next)
                    last = last->live_next;
                for (weft_h2up_stream *us = last, *prev; us; us = prev) {
                    prev = us->live_prev;
                    if (!us->id && submit(us) != 0 && us->user.owner)
                        us->user.ev->error(us->user.owner, WEFT_UP_ERR_PROTOCOL);
                }
            }
        }
    }
    conn_flush(c);
    c->in_cb = false;
    if (c->doomed || (c->goaway && c->n_streams == 0))
        conn_free(c);
}

/* Every stream on the connection fails; the connection goes. */
static void conn_fail(weft_h2up_conn *c, weft_up_err err) {
    if (c->dead)
        return;
    c->dead = true;
    c->goaway = true;
    while (c->live) {
        weft_h2up_stream *us = c->live;
        live_unlink(us);
        nghttp2_session_set_stream_user_data(c->ng, us->id, NULL);
        us->closed = true;
        if (us->user.owner && !us->complete)
            us->user.ev->error(us->user.owner, err); /* releases: frees us */
        else if (!us->user.owner)
            us_free(us);
    }
    c->n_streams = 0;
    c->doomed = true;
    if (!c->in_cb)
        schedule(c);
}

static void t_kick(void *owner) {
    schedule(owner);
}
static void t_close(void *owner, bool flush) {
    (void)flush; /* on_flush runs the chain's write side before the close */
    weft_h2up_conn *c = owner;
    c->tclose = true;
    schedule(c);
}
static const weft_transport_owner_ops h2up_towner = {t_kick, t_close, t_kick};

static void on_read(void *arg) {
    weft_h2up_conn *c = arg;
    c->in_cb = true;
    if (c->tc && !c->dead && weft_transport_read(c->tc) != 0)
        conn_fail(c, c->connected ? WEFT_UP_ERR_RESET : WEFT_UP_ERR_CONNECT);
    struct evbuffer *in = c->tc ? weft_transport_codec_in(c->tc) : weft_conn_input(c->conn);
    if (!c->connected) { /* the handshake is not done: the bytes wait */
        c->in_cb = false;
        if (c->doomed)
            schedule(c);
        return;
    }
    while (!c->dead && evbuffer_get_length(in)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t rv = nghttp2_session_mem_recv(c->ng, v.iov_base, v.iov_len);
        if (rv < 0) {
            conn_fail(c, WEFT_UP_ERR_PROTOCOL);
            break;
        }
        evbuffer_drain(in, (size_t)rv);
    }
    conn_flush(c);
    c->in_cb = false;
    if (c->doomed)
        schedule(c);
}

static void on_drained(void *arg) {
    schedule(arg);
}

static void on_event(void *arg, int what) {
    weft_h2up_conn *c = arg;
    if (what & WEFT_CONN_CONNECTED) {
        int one = 1;
        setsockopt(weft_conn_fd(c->conn), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->tcp_up = true;
        if (c->tc) {
            /* The connect timeout runs on until the handshakes end. */
            if (weft_transport_init(c->tc, c->cs->tchain.transport, c->cs->tchain.n_transport,
                                    c->w->base, weft_conn_input(c->conn), weft_conn_output(c->conn),
                                    &h2up_towner, c, 1024 * 1024) ||
                weft_transport_start_upstream(c->tc, c->cs->cfg->name, c->ep_name, "h2",
                                              c->cs->cfg->sni))
                c->tclose = true;
            schedule(c);
            return;
        }
        c->connected = true;
        weft_ltimer_clear(&c->timer);
        schedule(c);
        return;
    }
    c->in_cb = true;
    conn_fail(c, c->connected ? WEFT_UP_ERR_RESET : WEFT_UP_ERR_CONNECT);
    c->in_cb = false;
    schedule(c);
}

static void on_timer(void *arg) {
    weft_h2up_conn *c = arg;
    if (!c->connected) {
        c->in_cb = true;
        conn_fail(c, WEFT_UP_ERR_CONNECT_TIMEOUT);
        c->in_cb = false;
        schedule(c);
    } else if (c->n_streams == 0) {
        c->goaway = true; /* idle: close */
        schedule(c);
    }
}

static const weft_conn_cbs conn_cbs = {on_read, on_drained, on_event};

/* conn_new's failure after the transport part was set up. */
static weft_h2up_conn *conn_new_fail(weft_h2up_conn *c) {
    free(c->tc);
    if (c->tsnap)
        weft_snapshot_unref(c->tsnap);
    free(c);
    return NULL;
}

static weft_h2up_conn *conn_new(weft_worker *w, weft_cluster_snap *cs, const weft_endpoint *ep) {
    weft_h2up_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->w = w;
    conn_key(c->key, sizeof(c->key), cs, ep);
    snprintf(c->ep_name, sizeof(c->ep_name), "%s", ep->name);
    if (cs->tchain.n_transport) {
        if (!(c->tc = calloc(1, sizeof(*c->tc)))) {
            free(c);
            return NULL;
        }
        c->cs = cs;
        c->tsnap = cs->snap;
        weft_snapshot_ref(c->tsnap);
    }
    c->max_streams = 100; /* until the peer's SETTINGS say otherwise */
    c->idle_timeout_ms = cs->cfg->pool_idle_timeout_ms;
    c->cx_stat = cs->cx_active;
    c->conn = weft_conn_new(w->base, -1, &conn_cbs, c);
    nghttp2_session_callbacks *cbs = NULL;
    if (!c->conn || nghttp2_session_callbacks_new(&cbs) != 0) {
        if (c->conn)
            weft_conn_free(c->conn);
        return conn_new_fail(c);
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
    nghttp2_option *opt = NULL;
    nghttp2_option_new(&opt);
    if (opt)
        nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_mem mem = weft_h2_mem_of(c->w);
    int rv = nghttp2_session_client_new3(&c->ng, cbs, c, opt, &mem);
    nghttp2_session_callbacks_del(cbs);
    if (opt)
        nghttp2_option_del(opt);
    if (rv != 0) {
        weft_conn_free(c->conn);
        return conn_new_fail(c);
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2UP_STREAM_WINDOW},
    };
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, WEFT_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2UP_CONN_WINDOW);
    weft_ltimer_init(&c->timer, w->base, on_timer, c);
    event_assign(&c->ev_flush, w->base, -1, 0, on_flush, c);
    if (weft_conn_connect(c->conn, (const struct sockaddr *)&ep->addr, ep->addrlen) != 0) {
        nghttp2_session_del(c->ng);
        weft_conn_free(c->conn);
        return conn_new_fail(c);
    }
    uint32_t hw = 1024 * 1024;
    weft_conn_set_watermarks(c->conn, hw, hw / 2);
    weft_ltimer_set(&c->timer, cs->cfg->connect_timeout_ms ? cs->cfg->connect_timeout_ms : 1000);
    c->next = w->h2up;
    w->h2up = c;
    weft_stats_inc(w->stats, cs->cx_total, 1);
    weft_stats_gauge_add(w->stats, c->cx_stat, 1);
    return c;
}

static weft_h2up_conn *conn_pick(weft_worker *w, weft_cluster_snap *cs, const weft_endpoint *ep) {
    char key[sizeof(((weft_h2up_conn *)0)->key)];
    conn_key(key, sizeof(key), cs, ep);
    for (weft_h2up_conn *c = w->h2up; c; c = c->next)
        if (!c->goaway && !c->dead && c->n_streams < c->max_streams && strcmp(c->key, key) == 0)
            return c;
    return conn_new(w, cs, ep);
}

/* Submits us's request: :scheme https when the connection's transport
 * handshake said TLS. 0, or -1 (us untouched). */
static int submit(weft_h2up_stream *us) {
    weft_h2up_conn *c = us->c;
    bool tls = c->tc && c->tc->facts.tls;
    us->nva[1].value = (uint8_t *)(tls ? "https" : "http");
    us->nva[1].valuelen = tls ? 5 : 4;
    nghttp2_data_provider prd = {.source.ptr = us, .read_callback = body_read};
    int32_t id =
        nghttp2_submit_request(c->ng, NULL, us->nva, us->n_nva, us->has_body ? &prd : NULL, us);
    if (id < 0)
        return -1;
    us->id = id;
    return 0;
}

weft_h2up_stream *weft_h2up_start(weft_worker *w, const weft_up_user *u, weft_cluster_snap *cs,
                                  const weft_endpoint *ep, bool has_body) {
    weft_h2up_conn *c = conn_pick(w, cs, ep);
    if (!c)
        return NULL;
    weft_h2up_stream *us = calloc(1, sizeof(*us));
    if (!us || !(us->body = evbuffer_new())) {
        free(us);
        return NULL;
    }
    us->c = c;
    us->user = *u;
    const weft_req_head *r = u->req;
    const weft_sv *host = weft_hdrs_get(&r->headers, WEFT_SV_LIT("host"));
    weft_sv authority = host ? *host : r->authority;
    size_t cap = (size_t)r->headers.n + 4;
    nghttp2_nv *nva = weft_arena_alloc(u->arena, cap * sizeof(*nva));
    if (!nva) {
        us_free(us);
        return NULL;
    }
    size_t n = 0;
#define NV(k, v, vl)                                                                               \
    (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, (vl), NGHTTP2_NV_FLAG_NONE}
    nva[n++] = NV(":method", r->method.p, r->method.len);
    nva[n++] = NV(":scheme", "http", 4);
    nva[n++] = NV(":authority", authority.p, authority.len);
    nva[n++] = NV(":path", u->target.p, u->target.len);
#undef NV
    for (uint32_t i = 0; i < r->headers.n; i++) {
        const weft_hdr *x = &r->headers.v[i];
        if (weft_h2_connection_specific(x->name, true))
            continue;
        if (weft_sv_eq(x->name, WEFT_SV_LIT("te")) && !weft_sv_ieq_cstr(x->value, "trailers"))
            continue;
        nva[n++] = (nghttp2_nv){(uint8_t *)x->name.p, (uint8_t *)x->value.p, x->name.len,
                                x->value.len, NGHTTP2_NV_FLAG_NONE};
    }
    us->nva = nva;
    us->n_nva = n;
    us->has_body = has_body;
    c->n_streams++;
    us->live_next = c->live;
    if (c->live)
        c->live->live_prev = us;
    c->live = us;
    /* Over transport filters the head waits for the handshake (:scheme). */
    if ((!c->tc || c->connected) && submit(us) != 0) {
        live_unlink(us);
        c->n_streams--;
        us_free(us);
        return NULL;
    }
    weft_ltimer_clear(&c->timer);
    if (!c->connected)
        weft_ltimer_set(&c->timer,
                        cs->cfg->connect_timeout_ms ? cs->cfg->connect_timeout_ms : 1000);
    schedule(c);
    return us;
}

static void kick(weft_h2up_stream *us) {
    if (us->deferred && !us->closed) {
        us->deferred = false;
        nghttp2_session_resume_data(us->c->ng, us->id);
    }
    schedule(us->c);
}

void weft_h2up_body(weft_h2up_stream *us, struct evbuffer *chunk) {
    evbuffer_add_buffer(us->body, chunk);
    kick(us);
}

void weft_h2up_body_data(weft_h2up_stream *us, const char *p, size_t n) {
    evbuffer_add(us->body, p, n);
    kick(us);
}

void weft_h2up_end(weft_h2up_stream *us, const weft_hdrs *trailers) {
    if (us->body_end)
        return;
    us->body_end = true;
    us->trailers = weft_h2_nv_block(trailers, &us->n_trailers);
    kick(us);
}

size_t weft_h2up_pending(const weft_h2up_stream *us) {
    return evbuffer_get_length(us->body);
}

bool weft_h2up_take_unsent(weft_h2up_stream *us, struct evbuffer *dst) {
    if (us->c->connected) /* conn_flush frames nothing before this */
        return false;
    evbuffer_add_buffer(dst, us->body);
    return true;
}

void weft_h2up_pause(weft_h2up_stream *us) {
    us->paused = true;
}

void weft_h2up_resume(weft_h2up_stream *us) {
    us->paused = false;
    if (us->unconsumed && !us->closed) {
        nghttp2_session_consume(us->c->ng, us->id, us->unconsumed);
        us->unconsumed = 0;
        schedule(us->c);
    }
}

bool weft_h2up_refused(const weft_h2up_stream *us) {
    return us->refused;
}

void weft_h2up_release(weft_h2up_stream *us) {
    if (!us)
        return;
    us->user.owner = NULL;
    if (us->closed) {
        us_free(us);
        return;
    }
    if (!us->id) { /* never submitted: nghttp2 knows nothing of it */
        weft_h2up_conn *c = us->c;
        live_unlink(us);
        c->n_streams--;
        us_free(us);
        if (c->n_streams == 0 && c->connected)
            weft_ltimer_set(&c->timer, c->idle_timeout_ms ? c->idle_timeout_ms : 60000);
        return;
    }
    if (!us->complete) {
        nghttp2_submit_rst_stream(us->c->ng, NGHTTP2_FLAG_NONE, us->id, NGHTTP2_CANCEL);
        schedule(us->c);
    }
    /* freed in cb_stream_close */
}

void weft_h2up_free_all(weft_worker *w) {
    while (w->h2up) {
        weft_h2up_conn *c = w->h2up;
        while (c->live) {
            weft_h2up_stream *us = c->live;
            live_unlink(us);
            nghttp2_session_set_stream_user_data(c->ng, us->id, NULL);
            if (!us->user.owner)
                us_free(us);
            else
                us->closed = true; /* its stream frees it on release */
        }
        conn_free(c);
    }
}
