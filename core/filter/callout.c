/* callout.c: filter HTTP callouts (see callout.h). */
#include "filter/callout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "http/h1/h1_codec.h"
#include "http/stream_internal.h"
#include "net/conn.h"

struct weft_stream_callout {
    weft_stream *s;
    int filter;
    weft_callout_cb cb;
    void *arg;
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
    struct weft_stream_callout *next;
};

static void callout_free(struct weft_stream_callout *c) {
    event_del(&c->timer);
    event_del(&c->done_ev);
    if (c->conn)
        weft_conn_free(c->conn);
    if (c->parser)
        weft_h1_parser_free(c->parser);
    if (c->body)
        evbuffer_free(c->body);
    weft_arena_free(&c->arena);
    free(c);
}

static void unlink_callout(weft_stream *s, struct weft_stream_callout *c) {
    for (struct weft_stream_callout **pp = &s->callouts; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

/* Runs the filter's callback with what we have, then frees the callout. */
static void on_done(evutil_socket_t fd, short what, void *arg) {
    struct weft_stream_callout *c = arg;
    weft_stream *s = c->s;
    unlink_callout(s, c);
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
    size_t blen = evbuffer_get_length(c->body);
    weft_callout_response r = {
        .size = sizeof(r),
        .status = c->reason ? 0 : c->status,
        .reason = c->reason ? (weft_str){c->reason, strlen(c->reason)} : (weft_str){"", 0},
        .header_names = names,
        .header_values = values,
        .n_headers = c->reason ? 0 : nh,
        .body = {(const char *)evbuffer_pullup(c->body, -1), blen},
    };
    stream_cb_frame f = stream_cb_enter(s, c->filter);
    c->cb(stream_handle(s), s->fctx ? s->fctx[c->filter] : NULL, c->arg, &r);
    stream_cb_leave(s, f);
    callout_free(c);
}

static void finish(struct weft_stream_callout *c, const char *reason) {
    if (c->finished)
        return;
    c->finished = true;
    c->reason = reason;
    event_del(&c->timer);
    event_active(&c->done_ev, EV_TIMEOUT, 0);
}

static int cb_head(void *ud, weft_resp_head *h) {
    struct weft_stream_callout *c = ud;
    if (h->status < 200)
        return WEFT_H1_CB_OK;
    c->head = h;
    c->status = h->status;
    return WEFT_H1_CB_OK;
}

static int cb_body(void *ud, const char *p, size_t n) {
    struct weft_stream_callout *c = ud;
    if (evbuffer_get_length(c->body) + n > WEFT_CALLOUT_MAX_BODY) {
        finish(c, "response_too_large");
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
    struct weft_stream_callout *c = arg;
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
    struct weft_stream_callout *c = arg;
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
    finish(arg, "timeout");
}

static const weft_conn_cbs conn_cbs = {on_read, on_drained, on_event};

weft_result weft_filter_callout_start(weft_stream *s, weft_str cluster, weft_str method,
                                      weft_str path, const weft_str *hn, const weft_str *hv,
                                      size_t n, weft_str body, uint64_t timeout_ms,
                                      weft_callout_cb cb, void *arg, weft_callout **out) {
    const weft_config *cfg = s->ws->snap->cfg;
    int idx = -1;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (strlen(cfg->clusters[i].name) == cluster.len &&
            memcmp(cfg->clusters[i].name, cluster.ptr, cluster.len) == 0)
            idx = (int)i;
    if (idx < 0)
        return WEFT_ERR_NOT_FOUND;
    weft_cluster_wrk *cw = weft_wsnap_cluster(s->ws, idx);
    int ep = cw ? weft_lb_pick(cw->lb, 0, false, -1) : -1;
    if (ep < 0)
        return WEFT_ERR_NOT_FOUND;
    struct weft_stream_callout *c = calloc(1, sizeof(*c));
    if (!c)
        return WEFT_ERR_NOMEM;
    c->s = s;
    c->filter = s->running;
    c->cb = cb;
    c->arg = arg;
    weft_arena_init(&c->arena);
    c->body = evbuffer_new();
    c->conn = weft_conn_new(s->w->base, -1, &conn_cbs, c);
    c->parser = weft_h1_parser_new(WEFT_H1_RESPONSE, NULL, &callout_cbs, c);
    event_assign(&c->timer, s->w->base, -1, 0, on_timeout, c);
    event_assign(&c->done_ev, s->w->base, -1, 0, on_done, c);
    if (!c->body || !c->conn || !c->parser) {
        callout_free(c);
        return WEFT_ERR_NOMEM;
    }
    const weft_endpoint *e = &cw->lb->hs->eps[ep];
    weft_h1_parser_next(c->parser, &c->arena,
                        method.len == 4 && !memcmp(method.ptr, "HEAD", 4) ? HTTP_HEAD : HTTP_GET);
    struct evbuffer *o = weft_conn_output(c->conn);
    evbuffer_add_printf(o, "%.*s %.*s HTTP/1.1\r\nhost: %s\r\ncontent-length: %zu\r\n",
                        (int)method.len, method.ptr, (int)path.len, path.ptr,
                        cfg->clusters[idx].name, body.len);
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(o, "%.*s: %.*s\r\n", (int)hn[i].len, hn[i].ptr, (int)hv[i].len,
                            hv[i].ptr);
    evbuffer_add(o, "\r\n", 2);
    if (body.len)
        evbuffer_add(o, body.ptr, body.len);
    if (weft_conn_connect(c->conn, (const struct sockaddr *)&e->addr, e->addrlen) != 0) {
        callout_free(c);
        return WEFT_ERR_NOT_FOUND;
    }
    uint64_t ms = timeout_ms ? timeout_ms : 5000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(&c->timer, &tv);
    c->next = s->callouts;
    s->callouts = c;
    if (out)
        *out = (weft_callout *)c;
    return WEFT_OK;
}

weft_result weft_filter_callout_cancel(weft_stream *s, weft_callout *handle) {
    for (struct weft_stream_callout *c = s->callouts; c; c = c->next)
        if ((weft_callout *)c == handle) {
            unlink_callout(s, c);
            callout_free(c);
            return WEFT_OK;
        }
    return WEFT_ERR_INVALID;
}

size_t weft_callouts_live(const weft_stream *s) {
    size_t n = 0;
    for (const struct weft_stream_callout *c = s->callouts; c; c = c->next)
        n++;
    return n;
}

void weft_callouts_cancel_all(weft_stream *s) {
    while (s->callouts) {
        struct weft_stream_callout *c = s->callouts;
        s->callouts = c->next;
        callout_free(c);
    }
}
