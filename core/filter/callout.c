/* callout.c: filter HTTP callouts (see callout.h). */
#include "filter/callout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/common.h"
#include "filter/filter.h"
#include "filter/fworker.h"
#include "filter/handles.h"
#include "http/h1/h1_codec.h"
#include "http/stream_internal.h"
#include "net/conn.h"
#include "runtime/wsnap.h"
#include "upstream/attempt.h"

#define HCALLOUT_MAGIC 0x48434f55u /* "HCOU"; differs from streams' and TCP callouts' */

typedef struct weft_hcallout {
    uint32_t magic; /* first: see filter/handles.h */
    uint64_t handle;
    weft_worker *w;
    weft_snapshot *snap; /* referenced: its cluster and stats outlive a detached caller */
    weft_cluster_snap *cluster;
    weft_stream *s; /* stream scope */
    int filter;
    weft_fworker *fw; /* worker scope */
    bool detached;
    weft_callout_cb cb;
    weft_worker_callout_cb wcb;
    void *arg;
    uint64_t max_body;
    weft_attempt att;
    /* the exchange */
    weft_conn *conn;
    weft_h1_parser *parser;
    weft_arena arena; /* response head strings */
    struct event timer;
    struct event done_ev; /* completion runs outside the parser */
    struct evbuffer *body;
    weft_resp_head *head;
    int status;
    const char *reason;
    bool finished;
    bool connected;
    struct weft_hcallout *prev, *next; /* w->callouts */
} hcallout;

/* ---------- lifetime ---------- */

static void co_link(hcallout *c) {
    c->next = c->w->callouts;
    if (c->next)
        c->next->prev = c;
    c->w->callouts = c;
    c->w->n_callouts++;
}

static void co_free(hcallout *c) {
    if (c->handle)
        weft_handle_unregister(c->w, c->handle);
    if (c->s)
        c->s->filter_callouts--;
    event_del(&c->timer);
    event_del(&c->done_ev);
    if (c->conn)
        weft_conn_free(c->conn);
    if (c->parser)
        weft_h1_parser_free(c->parser);
    if (c->body)
        evbuffer_free(c->body);
    weft_attempt_clear(&c->att);
    weft_arena_free(&c->arena);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->callouts = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->w->n_callouts--;
    if (c->snap)
        weft_snapshot_unref(c->snap);
    c->magic = 0;
    free(c);
}

bool weft_callouts_worker_full(const weft_worker *w, const weft_config *cfg) {
    uint32_t cap =
        cfg->callouts_max_per_worker ? cfg->callouts_max_per_worker : WEFT_CALLOUTS_PER_WORKER;
    return (uint64_t)w->n_callouts + w->n_tcpcs >= cap;
}

/* ---------- completion ---------- */

/* Runs the filter's callback with what we have (none for a detached
 * callout: it is counted), then frees the callout. */
static void on_done(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    hcallout *c = arg;
    weft_attempt_end(&c->att, !c->reason, 0, weft_now_us());
    if (c->detached) {
        if (c->reason || c->status >= 500)
            weft_stats_inc(c->w->stats, c->cluster->callout_detached_failed, 1);
        co_free(c);
        return;
    }
    /* Every response header (the parser's limit, 100, makes more a
     * failure with reason too_many_headers: nothing is dropped silently). */
    size_t n = c->head && !c->reason ? c->head->headers.n : 0;
    weft_str *names = n ? weft_arena_alloc(&c->arena, 2 * n * sizeof(weft_str)) : NULL;
    weft_str *values = names ? names + n : NULL;
    if (n && !names)
        c->reason = "out_of_memory";
    size_t nh = 0;
    for (uint32_t i = 0; names && i < n; i++, nh++) {
        names[nh] = (weft_str){c->head->headers.v[i].name.p, c->head->headers.v[i].name.len};
        values[nh] = (weft_str){c->head->headers.v[i].value.p, c->head->headers.v[i].value.len};
    }
    size_t blen = c->reason ? 0 : evbuffer_get_length(c->body);
    weft_callout_response r = {
        .size = sizeof(r),
        .status = c->reason ? 0 : c->status,
        .reason = c->reason ? (weft_str){c->reason, strlen(c->reason)} : (weft_str){"", 0},
        .header_names = names,
        .header_values = values,
        .n_headers = c->reason ? 0 : nh,
        .body = {blen ? (const char *)evbuffer_pullup(c->body, -1) : "", blen},
    };
    /* The handle is dead from here: a cancel from inside the callback
     * finds nothing. */
    weft_handle_unregister(c->w, c->handle);
    c->handle = 0;
    if (c->s) {
        weft_stream *s = c->s;
        s->filter_callouts--;
        c->s = NULL;
        stream_cb_frame f = stream_cb_enter(s, c->filter);
        c->cb(stream_handle(s), s->fctx ? s->fctx[c->filter] : NULL, c->arg, &r);
        stream_cb_leave(s, f);
    } else if (c->fw) {
        weft_fworker *fw = c->fw;
        c->fw = NULL;
        c->wcb((weft_worker *)(uintptr_t)fw->handle, c->arg, &r);
    }
    co_free(c);
}

static void finish(hcallout *c, const char *reason) {
    if (c->finished)
        return;
    c->finished = true;
    c->reason = reason;
    event_del(&c->timer);
    event_active(&c->done_ev, EV_TIMEOUT, 0);
}

/* ---------- the exchange: one HTTP/1.1 connection ---------- */

static int cb_head(void *ud, weft_resp_head *h) {
    hcallout *c = ud;
    if (h->status < 200)
        return WEFT_H1_CB_OK;
    c->head = h;
    c->status = h->status;
    return WEFT_H1_CB_OK;
}

static int cb_body(void *ud, const char *p, size_t n) {
    hcallout *c = ud;
    if (c->detached)
        return WEFT_H1_CB_OK; /* discarded */
    if (evbuffer_get_length(c->body) + n > c->max_body) {
        finish(c, "body_too_large");
        return WEFT_H1_CB_ABORT;
    }
    evbuffer_add(c->body, p, n);
    return WEFT_H1_CB_OK;
}

static int cb_complete(void *ud) {
    finish(ud, NULL);
    return WEFT_H1_CB_PAUSE;
}

static const weft_h1_callbacks callout_cbs = {
    .on_resp_head = cb_head,
    .on_body = cb_body,
    .on_complete = cb_complete,
};

static void on_read(void *arg) {
    hcallout *c = arg;
    struct evbuffer *in = weft_conn_input(c->conn);
    while (!c->finished && evbuffer_get_length(in)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = 0;
        weft_h1_result r = weft_h1_parser_feed(c->parser, v.iov_base, v.iov_len, &used);
        evbuffer_drain(in, used);
        if (r == WEFT_H1_ERROR) {
            const char *why = weft_h1_parser_error_reason(c->parser);
            finish(c, why && !strcmp(why, "upstream_too_many_headers") ? "too_many_headers"
                                                                       : "protocol_error");
        }
        if (r != WEFT_H1_OK)
            break;
    }
}

static void on_drained(void *arg) {
    (void)arg;
}

static void on_event(void *arg, int what) {
    hcallout *c = arg;
    if (what & WEFT_CONN_CONNECTED) {
        c->connected = true;
        return;
    }
    if (c->finished)
        return;
    if ((what & WEFT_CONN_EOF) && weft_h1_parser_eof(c->parser) == WEFT_H1_DONE)
        return; /* completed by close; finish() already ran */
    finish(c, c->connected ? "upstream_reset" : "connect_failure");
    weft_conn_read_enable(c->conn, false);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    finish(arg, "timeout");
}

static const weft_conn_cbs conn_cbs = {on_read, on_drained, on_event};

/* Writes the request and connects. -1: the connect failed at once. */
static int exchange_start(hcallout *c, const weft_callout_request *req) {
    weft_h1_parser_next(c->parser, &c->arena,
                        req->method.len == 4 && !memcmp(req->method.ptr, "HEAD", 4) ? HTTP_HEAD
                                                                                    : HTTP_GET);
    struct evbuffer *o = weft_conn_output(c->conn);
    struct evbuffer *bb = (struct evbuffer *)req->body_buffer;
    size_t blen = bb ? evbuffer_get_length(bb) : req->body.len;
    weft_str host = req->authority.len
                        ? req->authority
                        : (weft_str){c->cluster->cfg->name, strlen(c->cluster->cfg->name)};
    evbuffer_add_printf(o, "%.*s %.*s HTTP/1.1\r\nhost: %.*s\r\ncontent-length: %zu\r\n",
                        (int)req->method.len, req->method.ptr, (int)req->path.len, req->path.ptr,
                        (int)host.len, host.ptr, blen);
    for (size_t i = 0; i < req->n_headers; i++)
        evbuffer_add_printf(o, "%.*s: %.*s\r\n", (int)req->header_names[i].len,
                            req->header_names[i].ptr, (int)req->header_values[i].len,
                            req->header_values[i].ptr);
    evbuffer_add(o, "\r\n", 2);
    if (bb)
        evbuffer_add_buffer(o, bb);
    else if (req->body.len)
        evbuffer_add(o, req->body.ptr, req->body.len);
    return weft_conn_connect(c->conn, (const struct sockaddr *)&c->att.ep->addr,
                             c->att.ep->addrlen);
}

/* ---------- host calls ---------- */

static int cluster_index(const weft_config *cfg, weft_str name) {
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (strlen(cfg->clusters[i].name) == name.len &&
            memcmp(cfg->clusters[i].name, name.ptr, name.len) == 0)
            return (int)i;
    return -1;
}

weft_result weft_callout_begin(const weft_callout_scope *sc, const weft_callout_request *req,
                               weft_callout_cb cb, weft_worker_callout_cb wcb, void *arg,
                               weft_callout **out) {
    const weft_config *cfg = sc->ws->snap->cfg;
    bool detached = req->flags & WEFT_CALLOUT_DETACHED;
    if (out)
        *out = NULL;
    int idx = cluster_index(cfg, req->cluster);
    if (idx < 0)
        return WEFT_ERR_NOT_FOUND;
    if (weft_callouts_worker_full(sc->w, cfg))
        return WEFT_ERR_LIMIT;
    weft_cluster_wrk *cw = weft_wsnap_cluster(sc->ws, idx);
    int ep = cw ? weft_lb_pick(cw->lb, 0, false, -1) : -1;
    if (ep < 0)
        return WEFT_ERR_NOT_FOUND;
    hcallout *c = calloc(1, sizeof(*c));
    if (!c)
        return WEFT_ERR_NOMEM;
    c->magic = HCALLOUT_MAGIC;
    c->w = sc->w;
    c->snap = sc->ws->snap;
    weft_snapshot_ref(c->snap);
    c->cluster = &c->snap->clusters[idx];
    c->detached = detached;
    c->cb = cb;
    c->wcb = wcb;
    c->arg = arg;
    c->max_body = req->max_response_body            ? req->max_response_body
                  : cfg->callouts_max_response_body ? cfg->callouts_max_response_body
                                                    : WEFT_CALLOUT_MAX_BODY;
    weft_attempt_init(&c->att);
    weft_arena_init(&c->arena);
    event_assign(&c->timer, c->w->base, -1, 0, on_timeout, c);
    event_assign(&c->done_ev, c->w->base, -1, 0, on_done, c);
    co_link(c);
    c->body = evbuffer_new();
    c->conn = weft_conn_new(c->w->base, -1, &conn_cbs, c);
    c->parser = weft_h1_parser_new(WEFT_H1_RESPONSE, NULL, &callout_cbs, c);
    if (!detached)
        c->handle = weft_handle_register(c->w, c);
    if (!c->body || !c->conn || !c->parser || (!detached && !c->handle)) {
        co_free(c);
        return WEFT_ERR_NOMEM;
    }
    weft_attempt_start(&c->att, cw->lb, ep, weft_now_us());
    if (exchange_start(c, req) != 0) {
        co_free(c);
        return WEFT_ERR_NOT_FOUND;
    }
    uint64_t ms = req->timeout_ms ? req->timeout_ms : WEFT_CALLOUT_TIMEOUT_MS;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(&c->timer, &tv);
    if (detached) {
        weft_stats_inc(c->w->stats, c->cluster->callout_detached_sent, 1);
        return WEFT_OK;
    }
    if (sc->s) {
        c->s = sc->s;
        c->filter = sc->s->running;
        sc->s->filter_callouts++;
    } else {
        c->fw = sc->fw;
    }
    if (out)
        *out = (weft_callout *)(uintptr_t)c->handle;
    return WEFT_OK;
}

weft_result weft_callout_cancel_in(weft_stream *s, weft_fworker *fw, weft_callout *h) {
    void *obj = NULL;
    if (weft_handle_object(h, HCALLOUT_MAGIC, &obj) != WEFT_OK)
        return WEFT_ERR_NOT_FOUND;
    hcallout *c = obj;
    if ((s && c->s != s) || (fw && c->fw != fw) || (!s && !fw))
        return WEFT_ERR_NOT_FOUND;
    co_free(c);
    return WEFT_OK;
}

void weft_callouts_stream_end(weft_stream *s) {
    if (!s->w || !s->filter_callouts)
        return;
    for (hcallout *c = s->w->callouts, *next; c; c = next) {
        next = c->next;
        if (c->s == s)
            co_free(c);
    }
}

void weft_callouts_wsnap_end(weft_wsnap *ws) {
    for (hcallout *c = ws->w ? ws->w->callouts : NULL, *next; c; c = next) {
        next = c->next;
        if (c->fw && c->fw->ws == ws)
            co_free(c);
    }
}

void weft_callouts_free_all(weft_worker *w) {
    while (w->callouts)
        co_free(w->callouts);
}
