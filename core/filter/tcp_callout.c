/* tcp_callout.c: raw TCP byte-stream callouts of filters (see
 * tcp_callout.h).
 *
 * State machine: the conn's callbacks only record what happened (ev_*)
 * and wake ev_deferred; tcpc_step() then does the work outside them:
 * retries a failed connect on another endpoint, moves the bytes written
 * while connecting, runs on_connect / on_data / on_close. A filter that
 * closes (weft_tcp_callout_close) or a scope that ends (stream, worker
 * snapshot) kills the callout: its handle is released at once (every
 * copy is stale), and it is freed now, or after the callback that is
 * running returns. A flush-close lingers without a handle or scope
 * until its bytes went out and the peer closed (at most LINGER_MS). */
#include "filter/tcp_callout.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/common.h"
#include "filter/callout.h"
#include "filter/filter.h"
#include "filter/fworker.h"
#include "filter/handles.h"
#include "http/stream_internal.h"
#include "common/ltimer.h"
#include "common/wctx.h"
#include "runtime/wsnap.h"
#include "net/conn.h"
#include "upstream/attempt.h"

#define TCPC_MAGIC 0x54435043u /* "TCPC"; a stream's magic differs (shared handle table) */
#define DEFAULT_CONNECT_MS 5000u
#define DEFAULT_BUF (1024u * 1024)
#define LINGER_MS 5000u

struct weft_tcpc {
    uint32_t magic; /* first: see filter/handles.h */
    uint64_t handle;
    weft_worker *w;
    weft_wsnap *ws;         /* clusters (the scope's snapshot; not referenced) */
    weft_stream *s;         /* stream scope, else NULL */
    const void *wscope;     /* worker scope: the filter worker object's key, else NULL */
    int filter;             /* chain index of the filter that opened it */
    const char *fname;      /* its YAML name (logs) */
    int cluster;            /* index in ws->snap */
    weft_stat_id st_active; /* the cluster's cx_active (held while counted) */
    weft_attempt att;
    weft_conn *conn;
    struct evbuffer *pending; /* written before the connect completed */
    weft_ltimer timer;        /* connect, then idle timeout; linger */
    struct event ev_deferred;
    weft_tcp_callout_cbs cbs;
    void *arg;
    uint32_t attempts, max_attempts;
    uint64_t connect_us; /* the attempt's connect latency (ended on the lb at close) */
    uint32_t connect_ms, idle_ms, max_write, max_read;
    bool ev_connected, ev_eof, ev_err; /* recorded by the conn callbacks */
    bool timed_out;                    /* the connect timer fired */
    bool connected;
    bool counted;   /* cx_active holds it */
    bool killed;    /* handle released: no callback any more */
    bool lingering; /* flush-closed: send what is queued, then go */
    bool in_cb;     /* a filter callback runs */
    bool ending;    /* on_close runs: no more writes */
    bool doomed;    /* free once the running callback returned */
    bool uncapped;  /* no longer counted in w->n_tcpcs (on_close runs) */
    struct weft_tcpc *prev, *next;
};
typedef struct weft_tcpc tcpc;

static void tcpc_step(tcpc *c);

/* ---------- lifetime ---------- */

static void tcpc_link(tcpc *c) {
    c->next = c->w->tcpcs;
    if (c->next)
        c->next->prev = c;
    c->w->tcpcs = c;
    c->w->n_tcpcs++;
}

static void drop_conn(tcpc *c) {
    if (c->conn) {
        weft_conn_free(c->conn);
        c->conn = NULL;
    }
    if (c->counted) {
        weft_stats_gauge_add(c->w->stats, c->st_active, -1);
        c->counted = false;
    }
}

static void tcpc_free(tcpc *c) {
    weft_handle_unregister(c->w, c->handle);
    c->handle = 0;
    drop_conn(c);
    weft_attempt_end(&c->att, c->connected, c->connect_us, weft_now_us());
    weft_attempt_clear(&c->att);
    weft_ltimer_stop(&c->timer);
    event_del(&c->ev_deferred);
    if (c->pending)
        evbuffer_free(c->pending);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->tcpcs = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->uncapped)
        c->w->n_tcpcs--;
    c->magic = 0;
    free(c);
}

/* The stream lets go of the callout (s->filter_tcp_callouts counts the
 * callouts whose c->s is s). */
static void stream_uncount(tcpc *c) {
    if (c->s)
        c->s->filter_tcp_callouts--;
}

/* No callback from now on, the handle is stale; freed now or once the
 * running callback returned. The scope lets go of it. */
static void tcpc_kill(tcpc *c) {
    weft_handle_unregister(c->w, c->handle);
    c->handle = 0;
    c->killed = true;
    stream_uncount(c);
    c->s = NULL;
    c->wscope = NULL;
    if (c->in_cb) {
        c->doomed = true;
        event_active(&c->ev_deferred, EV_TIMEOUT, 0);
        return;
    }
    tcpc_free(c);
}

/* ---------- filter callbacks ---------- */

enum { CB_CONNECT, CB_DATA, CB_CLOSE };

/* Runs one callback as the filter's; false when the callout was killed
 * meanwhile (nothing of it may be touched but `doomed`). */
static bool run_cb(tcpc *c, int which, uint32_t reason) {
    weft_tcp_callout *h = (weft_tcp_callout *)(uintptr_t)c->handle;
    weft_stream *s = c->s;
    stream_cb_frame f = {0};
    if (s)
        f = stream_cb_enter(s, c->filter);
    c->in_cb = true;
    if (which == CB_CONNECT && c->cbs.on_connect)
        c->cbs.on_connect(h, c->arg);
    else if (which == CB_DATA)
        c->cbs.on_data(h, c->arg, (weft_buffer *)weft_conn_input(c->conn));
    else if (which == CB_CLOSE && c->cbs.on_close)
        c->cbs.on_close(h, c->arg, reason);
    c->in_cb = false;
    if (s)
        stream_cb_leave(s, f);
    if (c->doomed) {
        tcpc_free(c);
        return false;
    }
    return !c->killed;
}

/* The connection ended by itself: on_close, then the callout goes. */
static void tcpc_end(tcpc *c, uint32_t reason) {
    if (c->lingering || c->killed) {
        tcpc_free(c);
        return;
    }
    drop_conn(c);
    weft_ltimer_clear(&c->timer);
    c->ending = true;
    /* Its connection is gone: on_close may open the next one, past
     * neither the stream's cap nor the worker's. (A flush-closed callout
     * that lingers keeps counting: it holds a socket and its bytes.) */
    c->w->n_tcpcs--;
    c->uncapped = true;
    if (run_cb(c, CB_CLOSE, reason))
        tcpc_kill(c);
}

/* ---------- the connection ---------- */

static void wake(tcpc *c) {
    event_active(&c->ev_deferred, EV_TIMEOUT, 0);
}

static void c_read(void *ud) {
    wake(ud);
}
static void c_drained(void *ud) {
    tcpc *c = ud;
    if (c->lingering)
        wake(c);
}
static void c_event(void *ud, int what) {
    tcpc *c = ud;
    if (what & WEFT_CONN_CONNECTED)
        c->ev_connected = true;
    if (what & WEFT_CONN_ERROR)
        c->ev_err = true;
    if (what & WEFT_CONN_EOF)
        c->ev_eof = true;
    wake(c);
}
static const weft_conn_cbs conn_cbs = {c_read, c_drained, c_event};

static weft_cluster_snap *cluster_shared(const tcpc *c) {
    return &c->ws->snap->clusters[c->cluster];
}

/* Counts the failed attempt and drops its connection. */
static void attempt_failed(tcpc *c, bool timeout) {
    weft_cluster_snap *cs = cluster_shared(c);
    weft_stats_inc(c->w->stats, timeout ? cs->cx_connect_timeout : cs->cx_connect_fail, 1);
    weft_attempt_end(&c->att, false, 0, weft_now_us());
    drop_conn(c);
    c->ev_connected = c->ev_eof = c->ev_err = false;
}

/* Starts the next connect attempt. Returns 0 when one is in progress,
 * -1 when no endpoint or attempt is left (the caller ends the callout). */
static int connect_next(tcpc *c) {
    while (c->attempts < c->max_attempts) {
        weft_cluster_wrk *cw = weft_wsnap_cluster(c->ws, c->cluster);
        int exclude = cw && c->att.lb == cw->lb ? c->att.idx : -1;
        int idx = cw ? weft_lb_pick(cw->lb, 0, false, exclude) : -1;
        if (idx < 0)
            return -1;
        c->attempts++;
        weft_attempt_start(&c->att, cw->lb, idx, weft_now_us());
        c->conn = weft_conn_new(c->w->base, -1, &conn_cbs, c);
        if (!c->conn) {
            weft_attempt_end(&c->att, false, 0, weft_now_us());
            return -1;
        }
        weft_cluster_snap *cs = cluster_shared(c);
        weft_stats_inc(c->w->stats, cs->cx_total, 1);
        weft_stats_gauge_add(c->w->stats, cs->cx_active, 1);
        c->st_active = cs->cx_active;
        c->counted = true;
        weft_conn_set_watermarks(c->conn, c->max_read, 0);
        if (weft_conn_connect(c->conn, (const struct sockaddr *)&c->att.ep->addr,
                              c->att.ep->addrlen) < 0) {
            WEFT_DEBUG("filter %s: tcp callout: connect to %s failed: %s", c->fname,
                       c->att.ep->name, strerror(weft_conn_error(c->conn)));
            attempt_failed(c, false);
            continue;
        }
        weft_ltimer_set(&c->timer, c->connect_ms);
        return 0;
    }
    return -1;
}

static size_t queued(tcpc *c) {
    size_t n = evbuffer_get_length(c->pending);
    return c->conn ? n + evbuffer_get_length(weft_conn_output(c->conn)) : n;
}

static void on_timer(void *arg) {
    tcpc *c = arg;
    if (c->lingering || (c->connected && !c->idle_ms)) {
        if (c->lingering)
            tcpc_free(c);
        return;
    }
    c->timed_out = true;
    tcpc_step(c);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    tcpc *c = arg;
    if (c->doomed) {
        tcpc_free(c);
        return;
    }
    tcpc_step(c);
}

/* A flush-closed callout: once connected, its bytes go and the write
 * side shuts; it goes when the peer closes, fails or LINGER_MS passed. */
static void linger_step(tcpc *c) {
    if (!c->connected) {
        if (c->ev_err || c->ev_eof || c->timed_out) {
            tcpc_free(c); /* no retry: the scope (and its snapshot) may be gone */
            return;
        }
        if (!c->ev_connected)
            return;
        c->connected = true;
        evbuffer_add_buffer(weft_conn_output(c->conn), c->pending);
        weft_conn_shutdown_write(c->conn);
        weft_ltimer_set(&c->timer, LINGER_MS);
    }
    if (c->ev_err || c->ev_eof) {
        tcpc_free(c);
        return;
    }
    evbuffer_drain(weft_conn_input(c->conn), evbuffer_get_length(weft_conn_input(c->conn)));
}

static void tcpc_step(tcpc *c) {
    if (c->lingering) {
        linger_step(c);
        return;
    }
    if (!c->connected) {
        if (!c->conn) { /* every endpoint refused at once (open_start) */
            tcpc_end(c, WEFT_TCP_CLOSE_CONNECT_FAILURE);
            return;
        }
        if (c->ev_err || c->ev_eof || c->timed_out) {
            bool timeout = c->timed_out && !c->ev_err && !c->ev_eof;
            c->timed_out = false;
            attempt_failed(c, timeout);
            if (connect_next(c) != 0)
                tcpc_end(c,
                         timeout ? WEFT_TCP_CLOSE_CONNECT_TIMEOUT : WEFT_TCP_CLOSE_CONNECT_FAILURE);
            return;
        }
        if (!c->ev_connected)
            return;
        c->connected = true;
        c->connect_us = weft_now_us() - c->att.t_start_us;
        evbuffer_add_buffer(weft_conn_output(c->conn), c->pending);
        weft_ltimer_set(&c->timer, c->idle_ms); /* 0 clears */
        if (!run_cb(c, CB_CONNECT, 0))
            return;
    }
    if (c->timed_out) {
        tcpc_end(c, WEFT_TCP_CLOSE_IDLE_TIMEOUT);
        return;
    }
    struct evbuffer *in = weft_conn_input(c->conn);
    if (evbuffer_get_length(in)) {
        weft_ltimer_set(&c->timer, c->idle_ms);
        if (!run_cb(c, CB_DATA, 0))
            return;
        if (evbuffer_get_length(in) >= c->max_read) {
            tcpc_end(c, WEFT_TCP_CLOSE_OVERFLOW);
            return;
        }
    }
    if (c->ev_err)
        tcpc_end(c, WEFT_TCP_CLOSE_RESET);
    else if (c->ev_eof)
        tcpc_end(c, WEFT_TCP_CLOSE_PEER);
}

/* ---------- host calls ---------- */

static tcpc *tcpc_new(weft_worker *w, weft_wsnap *ws, int cluster, const weft_tcp_callout_opts *o,
                      const weft_tcp_callout_cbs *cbs, void *arg) {
    tcpc *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->pending = evbuffer_new();
    if (!c->pending) {
        free(c);
        return NULL;
    }
    c->magic = TCPC_MAGIC;
    c->w = w;
    c->ws = ws;
    c->cluster = cluster;
    c->cbs = *cbs;
    c->arg = arg;
    weft_attempt_init(&c->att);
    const weft_cfg_cluster *cc = ws->snap->clusters[cluster].cfg;
    c->connect_ms = o && o->connect_timeout_ms ? o->connect_timeout_ms
                    : cc->connect_timeout_ms   ? (uint32_t)cc->connect_timeout_ms
                                               : DEFAULT_CONNECT_MS;
    c->idle_ms = o ? o->idle_timeout_ms : 0;
    c->max_attempts = o && o->connect_attempts ? o->connect_attempts : cc->connect_attempts;
    c->max_write = o && o->max_write_bytes ? o->max_write_bytes : DEFAULT_BUF;
    c->max_read = o && o->max_read_bytes ? o->max_read_bytes : DEFAULT_BUF;
    weft_ltimer_init(&c->timer, w->base, on_timer, c);
    event_assign(&c->ev_deferred, w->base, -1, 0, on_deferred, c);
    tcpc_link(c);
    return c;
}

/* Common checks of an open; the cluster's index or an error. */
static weft_result open_checks(weft_worker *w, weft_wsnap *ws, const char *fname, weft_str cluster,
                               const weft_tcp_callout_opts *o, const weft_tcp_callout_cbs *cbs,
                               weft_tcp_callout **out, int *idx) {
    if (!cbs || cbs->size < sizeof(weft_tcp_callout_cbs) || !cbs->on_data || !out ||
        (o && (o->size < sizeof(weft_tcp_callout_opts) || o->flags)) ||
        (cluster.len && !cluster.ptr)) {
        WEFT_WARN("filter %s: tcp_callout_open: invalid argument (callbacks with on_data and "
                  "their size, options size and flags 0, out)",
                  fname);
        return WEFT_ERR_INVALID;
    }
    const weft_config *cfg = ws->snap->cfg;
    *idx = -1;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (strlen(cfg->clusters[i].name) == cluster.len &&
            memcmp(cfg->clusters[i].name, cluster.ptr, cluster.len) == 0)
            *idx = (int)i;
    if (*idx < 0)
        return WEFT_ERR_NOT_FOUND;
    if (ws->snap->clusters[*idx].tchain.n_transport) {
        WEFT_WARN("filter %s: tcp_callout_open: cluster %s has transport_filters, which TCP "
                  "callouts do not run: refused (use a cluster without them)",
                  fname, cfg->clusters[*idx].name);
        return WEFT_ERR_INVALID;
    }
    if (weft_callouts_worker_full(w, cfg))
        return WEFT_ERR_LIMIT;
    return WEFT_OK;
}

/* Registers the handle and makes the first attempt. */
static weft_result open_start(tcpc *c, weft_tcp_callout **out) {
    c->handle = weft_handle_register(c->w, c);
    if (!c->handle) {
        tcpc_free(c);
        return WEFT_ERR_NOMEM;
    }
    if (connect_next(c) != 0) {
        if (c->attempts == 0) { /* no healthy endpoint */
            tcpc_free(c);
            return WEFT_ERR_NOT_FOUND;
        }
        wake(c); /* every endpoint refused at once: on_close, as for a later failure */
    }
    *out = (weft_tcp_callout *)(uintptr_t)c->handle;
    return WEFT_OK;
}

weft_result weft_tcp_callout_open_stream(weft_stream *s, weft_str cluster,
                                         const weft_tcp_callout_opts *opts,
                                         const weft_tcp_callout_cbs *cbs, void *arg,
                                         weft_tcp_callout **out) {
    const char *fname = s->chain->http[s->running].name;
    int idx;
    weft_result r = open_checks(s->w, s->ws, fname, cluster, opts, cbs, out, &idx);
    if (r != WEFT_OK)
        return r;
    tcpc *c = tcpc_new(s->w, s->ws, idx, opts, cbs, arg);
    if (!c)
        return WEFT_ERR_NOMEM;
    c->s = s;
    c->filter = s->running;
    c->fname = fname;
    r = open_start(c, out); /* frees c on an error */
    if (r == WEFT_OK)
        s->filter_tcp_callouts++; /* nothing ran since: on_close comes deferred */
    return r;
}

weft_result weft_tcp_callout_open_worker(weft_worker *wh, weft_str cluster,
                                         const weft_tcp_callout_opts *opts,
                                         const weft_tcp_callout_cbs *cbs, void *arg,
                                         weft_tcp_callout **out) {
    weft_fworker *fw = NULL;
    weft_result r = weft_fworker_from_handle(wh, &fw);
    if (r != WEFT_OK) {
        WEFT_WARN("filter ?: worker_tcp_callout_open: %s",
                  r == WEFT_ERR_THREAD ? "another worker's handle" : "not a live worker handle");
        return r;
    }
    const char *fname = fw->inst->name;
    if (fw->closing) {
        WEFT_WARN("filter %s: worker_tcp_callout_open: worker_destroy runs: not allowed in this "
                  "state",
                  fname);
        return WEFT_ERR_STATE;
    }
    int idx;
    r = open_checks(fw->w, fw->ws, fname, cluster, opts, cbs, out, &idx);
    if (r != WEFT_OK)
        return r;
    tcpc *c = tcpc_new(fw->w, fw->ws, idx, opts, cbs, arg);
    if (!c)
        return WEFT_ERR_NOMEM;
    c->wscope = fw;
    c->filter = -1;
    c->fname = fname;
    return open_start(c, out);
}

static weft_result lookup(weft_tcp_callout *h, const char *what, tcpc **out) {
    void *obj = NULL;
    weft_result r = weft_handle_object(h, TCPC_MAGIC, &obj);
    if (r != WEFT_OK) {
        WEFT_WARN("filter ?: %s: %s", what,
                  r == WEFT_ERR_THREAD ? "a TCP callout of another worker"
                                       : "not a live TCP callout handle");
        return r;
    }
    *out = obj;
    return WEFT_OK;
}

weft_result weft_tcp_callout_write_h(weft_tcp_callout *h, const void *data, size_t len) {
    tcpc *c;
    weft_result r = lookup(h, "tcp_callout_write", &c);
    if (r != WEFT_OK)
        return r;
    if (c->ending) {
        WEFT_WARN("filter %s: tcp_callout_write: inside on_close: not allowed in this state",
                  c->fname);
        return WEFT_ERR_STATE;
    }
    if (!data && len)
        return WEFT_ERR_INVALID;
    size_t q = queued(c);
    if (len > c->max_write || q > c->max_write - len)
        return WEFT_ERR_LIMIT;
    if (!len)
        return WEFT_OK;
    struct evbuffer *dst = c->connected ? weft_conn_output(c->conn) : c->pending;
    if (evbuffer_add(dst, data, len) != 0)
        return WEFT_ERR_NOMEM;
    if (c->connected)
        weft_ltimer_set(&c->timer, c->idle_ms);
    return WEFT_OK;
}

weft_result weft_tcp_callout_close_h(weft_tcp_callout *h, bool flush) {
    tcpc *c;
    weft_result r = lookup(h, "tcp_callout_close", &c);
    if (r != WEFT_OK)
        return r;
    if (!flush || !c->conn || !queued(c) || c->ending) {
        tcpc_kill(c);
        return WEFT_OK;
    }
    weft_handle_unregister(c->w, c->handle);
    c->handle = 0;
    c->killed = true;
    c->lingering = true;
    stream_uncount(c);
    c->s = NULL;
    c->wscope = NULL;
    if (c->connected) {
        weft_conn_shutdown_write(c->conn);
        weft_ltimer_set(&c->timer, LINGER_MS);
    }
    return WEFT_OK;
}

size_t weft_tcp_callouts_of_stream(const weft_stream *s) {
    size_t n = 0;
    if (!s->filter_tcp_callouts)
        return 0; /* the usual case: no walk over the worker's callouts */
    for (const tcpc *c = s->w->tcpcs; c; c = c->next)
        n += c->s == s && !c->ending; /* one whose on_close runs is over (as in the kit) */
    return n;
}

void weft_tcp_callouts_stream_end(weft_stream *s) {
    if (!s->w || !s->filter_tcp_callouts)
        return; /* the usual case: no walk over the worker's callouts */
    tcpc *c = s->w->tcpcs;
    while (c) {
        tcpc *next = c->next;
        if (c->s == s)
            tcpc_kill(c);
        c = next;
    }
}

void weft_tcp_callouts_wsnap_end(weft_wsnap *ws) {
    tcpc *c = ws->w ? ws->w->tcpcs : NULL;
    while (c) {
        tcpc *next = c->next;
        if (c->ws == ws && (c->wscope || c->lingering))
            tcpc_kill(c);
        c = next;
    }
}

void weft_tcp_callouts_free_all(weft_worker *w) {
    while (w->tcpcs)
        tcpc_free(w->tcpcs);
}
