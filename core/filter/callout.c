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
#include "runtime/wsnap.h"
#include "upstream/attempt.h"
#include "upstream/h2_pool.h"
#include "upstream/pool.h"

#define HCALLOUT_MAGIC 0x48434f55u /* "HCOU"; differs from streams' and TCP callouts' */
/* The request output a pooled connection buffers before it reports
 * "writable" (a callout writes its whole request at once). */
#define CALLOUT_HIGH_WATERMARK (1024u * 1024u)

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
    weft_lb *lb; /* referenced: retries pick from it (a detached callout outlives its wsnap) */
    /* the request, kept for every attempt */
    weft_req_head req;      /* method, authority, headers in `arena` (HTTP/2 frames it) */
    weft_sv target;         /* the path */
    struct evbuffer *rbody; /* the request body (kept whole: a retry sends it again) */
    /* the exchange: an HTTP/1.1 pooled connection or an HTTP/2 stream */
    weft_upconn *uc;
    weft_h2up_stream *us;
    uint32_t attempts, max_attempts;
    bool h2_ep;       /* an endpoint answered ALPN h2 (protocol auto): once */
    bool same_ep;     /* the next attempt on the same endpoint (as HTTP/2) */
    bool fresh_conn;  /* the next attempt on a new connection (a stale pooled one) */
    bool stale_retry; /* done once */
    weft_arena arena; /* request head, response heads */
    struct event timer;
    struct event done_ev; /* completion and retries run outside the upstream's callbacks */
    struct evbuffer *body;
    weft_resp_head *head; /* &head_copy once a final head came */
    weft_resp_head head_copy;
    int status;
    const char *reason;
    bool finished;
    bool uncapped;                     /* no longer counted in w->n_callouts (its callback runs) */
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

/* Lets go of the attempt's upstream: a finished HTTP/1.1 exchange goes
 * back to its pool when `reusable` (the pool decides: room, max requests);
 * anything else closes it, as for a client abort. An HTTP/2 stream not
 * complete is reset (RST_STREAM CANCEL); its connection stays. Safe from
 * inside the upstream's own callbacks (they defer their frees). */
static void release_up(hcallout *c, bool reusable) {
    if (c->uc) {
        weft_upconn *uc = c->uc;
        c->uc = NULL;
        weft_upconn_release(uc, reusable);
    }
    if (c->us) {
        weft_h2up_stream *us = c->us;
        c->us = NULL;
        weft_h2up_release(us);
    }
}

static void co_free(hcallout *c) {
    if (c->handle)
        weft_handle_unregister(c->w, c->handle);
    if (c->s)
        c->s->filter_callouts--;
    release_up(c, false);
    event_del(&c->timer);
    event_del(&c->done_ev);
    if (c->body)
        evbuffer_free(c->body);
    if (c->rbody)
        evbuffer_free(c->rbody);
    weft_attempt_clear(&c->att);
    if (c->lb)
        weft_lb_unref(c->lb);
    weft_arena_free(&c->arena);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->callouts = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->uncapped)
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

static void deliver(hcallout *c) {
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
     * finds nothing. The callout is over (its connection went back to the
     * pool or closed): neither the stream's cap nor the worker's counts it
     * while its callback runs, which may start the next one. */
    weft_handle_unregister(c->w, c->handle);
    c->handle = 0;
    c->w->n_callouts--;
    c->uncapped = true;
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

static bool attempt_next(hcallout *c);

/* Deferred: the result goes to the filter, or the next attempt starts. */
static void on_done(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    hcallout *c = arg;
    if (!c->finished && !attempt_next(c))
        return; /* attempt_next finished it: on_done runs again */
    if (c->finished)
        deliver(c);
}

static void finish(hcallout *c, const char *reason) {
    if (c->finished)
        return;
    c->finished = true;
    c->reason = reason;
    weft_attempt_end(&c->att, !reason, 0, weft_now_us());
    event_del(&c->timer);
    event_active(&c->done_ev, EV_TIMEOUT, 0);
}

/* The attempt failed in a way another attempt may fix. */
static void retry_later(hcallout *c) {
    weft_attempt_end(&c->att, false, 0, weft_now_us());
    event_active(&c->done_ev, EV_TIMEOUT, 0);
}

/* ---------- what the upstream reports (up_user.h) ---------- */

static void ev_connected(void *o) {
    hcallout *c = o;
    if (!c->uc)
        return;
    /* HTTP/1.1: the head by the codec's writer, then the body (HTTP/2
     * frames both from c->req and c->rbody). The host call checked every
     * field already: the writer refusing is an internal error. */
    struct evbuffer *out = weft_upconn_output(c->uc);
    size_t blen = evbuffer_get_length(c->rbody);
    if (weft_h1_write_req_head(out, &c->req, &c->target) != 0)
        finish(c, "invalid_request");
    else if (blen)
        evbuffer_add(out, evbuffer_pullup(c->rbody, -1), blen);
}

static int ev_head(void *o, weft_resp_head *h) {
    hcallout *c = o;
    if (h->status < 200)
        return WEFT_H1_CB_OK;
    /* A copy: HTTP/2 keeps the head in its stream object, which goes with
     * the release (its strings and header array are in c->arena). */
    c->head_copy = *h;
    c->head = &c->head_copy;
    c->status = h->status;
    return WEFT_H1_CB_OK;
}

static int ev_body(void *o, const char *p, size_t n) {
    hcallout *c = o;
    if (c->detached || c->finished)
        return WEFT_H1_CB_OK; /* discarded */
    if (evbuffer_get_length(c->body) + n > c->max_body) {
        finish(c, "body_too_large");
        release_up(c, false);
        return WEFT_H1_CB_ABORT;
    }
    evbuffer_add(c->body, p, n);
    return WEFT_H1_CB_OK;
}

static int ev_trailers(void *o, weft_hdrs *t) {
    (void)o;
    (void)t;
    return WEFT_H1_CB_OK;
}

static int ev_complete(void *o) {
    hcallout *c = o;
    bool reusable = c->head && c->head->keep_alive;
    release_up(c, reusable);
    finish(c, NULL);
    return WEFT_H1_CB_PAUSE;
}

static void ev_error(void *o, weft_up_err err) {
    hcallout *c = o;
    if (c->finished) {
        release_up(c, false);
        return;
    }
    const weft_cfg_cluster *cc = c->cluster->cfg;
    /* A pooled connection the server had closed, or a stream the peer
     * refused: the request never got there; a fresh connection may. */
    bool unprocessed =
        err == WEFT_UP_ERR_RESET && ((c->uc && c->uc->requests > 0 && !c->uc->got_bytes) ||
                                     (c->us && weft_h2up_refused(c->us)));
    const char *why =
        c->uc && err == WEFT_UP_ERR_PROTOCOL ? weft_h1_parser_error_reason(c->uc->parser) : NULL;
    release_up(c, false);
    if (err == WEFT_UP_ERR_ALPN_H2 && !c->h2_ep) {
        /* protocol auto: the endpoint speaks HTTP/2; nothing was sent */
        weft_endpoint_set_h2((weft_endpoint *)c->att.ep);
        c->h2_ep = true;
        c->same_ep = true;
        c->max_attempts++; /* the same endpoint again, as HTTP/2 */
        retry_later(c);
        return;
    }
    if (err == WEFT_UP_ERR_CONNECT || err == WEFT_UP_ERR_CONNECT_TIMEOUT) {
        weft_stats_inc(c->w->stats, c->cluster->cx_connect_fail, 1);
        if (err == WEFT_UP_ERR_CONNECT_TIMEOUT)
            weft_stats_inc(c->w->stats, c->cluster->cx_connect_timeout, 1);
        if (cc->connect_failure_avoid_ms)
            weft_endpoint_avoid((weft_endpoint *)c->att.ep,
                                weft_now_us() + cc->connect_failure_avoid_ms * 1000);
        if (c->attempts < c->max_attempts) {
            retry_later(c);
            return;
        }
        finish(c, "connect_failure");
        return;
    }
    if (unprocessed && !c->stale_retry) {
        c->stale_retry = true;
        c->fresh_conn = true;
        c->max_attempts++;
        weft_stats_inc(c->w->stats, c->cluster->rq_retry_stale, 1);
        retry_later(c);
        return;
    }
    finish(c, err == WEFT_UP_ERR_PROTOCOL
                  ? (why && !strcmp(why, "upstream_too_many_headers") ? "too_many_headers"
                                                                      : "protocol_error")
                  : "upstream_reset");
}

static void ev_writable(void *o) {
    (void)o;
}
static void ev_feed_end(void *o) {
    (void)o;
}
static void ev_tunnel_data(void *o, struct evbuffer *in) {
    (void)o;
    evbuffer_drain(in, evbuffer_get_length(in));
}

static const weft_up_events co_events = {
    .connected = ev_connected,
    .head = ev_head,
    .body = ev_body,
    .trailers = ev_trailers,
    .complete = ev_complete,
    .error = ev_error,
    .writable = ev_writable,
    .feed_end = ev_feed_end,
    .tunnel_data = ev_tunnel_data,
};

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    hcallout *c = arg;
    finish(c, "timeout");
    release_up(c, false);
}

/* ---------- attempts ---------- */

/* Starts the next attempt: an endpoint from the cluster's load balancer
 * (another than the last one when there is one), then an HTTP/1.1 pooled
 * connection (an idle one when the pool has it) or an HTTP/2 stream, as
 * the cluster's protocol says. false: no attempt could start (the callout
 * is finished). */
static bool attempt_next(hcallout *c) {
    while (c->attempts < c->max_attempts) {
        int idx = c->same_ep ? c->att.idx : weft_lb_pick(c->lb, 0, false, c->att.idx);
        c->same_ep = false;
        if (idx < 0)
            break;
        c->attempts++;
        weft_attempt_start(&c->att, c->lb, idx, weft_now_us());
        const weft_endpoint *ep = c->att.ep;
        weft_upstream_protocol proto = c->cluster->cfg->protocol;
        bool h2 = proto == WEFT_PROTO_HTTP2 || (proto == WEFT_PROTO_AUTO && weft_endpoint_h2(ep));
        weft_up_user u = {.owner = c,
                          .ev = &co_events,
                          .arena = &c->arena,
                          .req = &c->req,
                          .target = c->target,
                          .high_watermark = CALLOUT_HIGH_WATERMARK};
        if (h2) {
            size_t blen = evbuffer_get_length(c->rbody);
            c->us = weft_h2up_start(c->w, &u, c->cluster, ep, blen > 0);
            if (c->us) {
                if (blen)
                    weft_h2up_body_data(c->us, (const char *)evbuffer_pullup(c->rbody, -1), blen);
                weft_h2up_end(c->us, NULL);
                return true;
            }
        } else {
            bool reused = false;
            c->uc = weft_pool_acquire(c->w, c->cluster, ep, &u, !c->fresh_conn, &reused);
            c->fresh_conn = false;
            if (c->uc) {
                if (c->uc->connected)
                    ev_connected(c);
                return true;
            }
        }
        /* failed at once (no socket): the next endpoint */
        weft_stats_inc(c->w->stats, c->cluster->cx_connect_fail, 1);
        weft_attempt_end(&c->att, false, 0, weft_now_us());
    }
    finish(c, "connect_failure");
    return false;
}

/* ---------- the request ---------- */

/* Builds the request head both protocols write from (HTTP/1.1 with the
 * codec's writer, HTTP/2 framed by h2_pool from the same fields: host
 * becomes :authority) and keeps the body in c->rbody. */
static int request_build(hcallout *c, const weft_callout_request *rq) {
    weft_arena *a = &c->arena;
    struct evbuffer *bb = (struct evbuffer *)rq->body_buffer;
    weft_str host = rq->authority.len
                        ? rq->authority
                        : (weft_str){c->cluster->cfg->name, strlen(c->cluster->cfg->name)};
    char *m = weft_arena_strndup(a, rq->method.ptr, rq->method.len);
    char *t = weft_arena_strndup(a, rq->path.ptr, rq->path.len);
    char *h = weft_arena_strndup(a, host.ptr, host.len);
    if (!m || !t || !h)
        return -1;
    c->req.method = (weft_sv){m, rq->method.len};
    c->req.method_id = rq->method.len == 4 && !memcmp(m, "HEAD", 4) ? HTTP_HEAD : HTTP_GET;
    c->req.target = c->req.path = c->target = (weft_sv){t, rq->path.len};
    c->req.authority = (weft_sv){h, host.len};
    c->req.http_minor = 1;
    c->req.keep_alive = true;
    weft_hdrs_init(&c->req.headers, a);
    if (bb)
        evbuffer_add_buffer(c->rbody, bb);
    else if (rq->body.len && evbuffer_add(c->rbody, rq->body.ptr, rq->body.len) != 0)
        return -1;
    size_t blen = evbuffer_get_length(c->rbody);
    c->req.framing = blen ? WEFT_BODY_LENGTH : WEFT_BODY_NONE;
    c->req.content_length = blen ? (int64_t)blen : -1;
    /* The filter's fields first: a host among them stays the HTTP/2
     * :authority (weft_hdrs_get finds the first). */
    for (size_t i = 0; i < rq->n_headers; i++) {
        weft_sv n = {rq->header_names[i].ptr, rq->header_names[i].len};
        weft_sv v = {rq->header_values[i].ptr, rq->header_values[i].len};
        if (weft_hdrs_add(&c->req.headers, n, v) != 0)
            return -1;
    }
    char len[24];
    int k = snprintf(len, sizeof(len), "%zu", blen);
    if (weft_hdrs_add_ref(&c->req.headers, WEFT_SV_LIT("host"), c->req.authority) != 0 ||
        weft_hdrs_add(&c->req.headers, WEFT_SV_LIT("content-length"), (weft_sv){len, (size_t)k}) !=
            0)
        return -1;
    return 0;
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
    if (!cw)
        return WEFT_ERR_NOT_FOUND; /* no endpoint at all: the first attempt tells */
    hcallout *c = calloc(1, sizeof(*c));
    if (!c)
        return WEFT_ERR_NOMEM;
    c->magic = HCALLOUT_MAGIC;
    c->w = sc->w;
    c->snap = sc->ws->snap;
    weft_snapshot_ref(c->snap);
    c->cluster = &c->snap->clusters[idx];
    c->lb = weft_lb_ref(cw->lb);
    c->detached = detached;
    c->cb = cb;
    c->wcb = wcb;
    c->arg = arg;
    c->max_body = req->max_response_body            ? req->max_response_body
                  : cfg->callouts_max_response_body ? cfg->callouts_max_response_body
                                                    : WEFT_CALLOUT_MAX_BODY;
    c->max_attempts = c->cluster->cfg->connect_attempts ? c->cluster->cfg->connect_attempts : 1;
    weft_attempt_init(&c->att);
    weft_arena_init(&c->arena);
    event_assign(&c->timer, c->w->base, -1, 0, on_timeout, c);
    event_assign(&c->done_ev, c->w->base, -1, 0, on_done, c);
    co_link(c);
    c->body = evbuffer_new();
    c->rbody = evbuffer_new();
    if (!detached)
        c->handle = weft_handle_register(c->w, c);
    if (!c->body || !c->rbody || (!detached && !c->handle) || request_build(c, req) != 0) {
        co_free(c);
        return WEFT_ERR_NOMEM;
    }
    if (!attempt_next(c) && c->attempts == 0) {
        co_free(c);
        return WEFT_ERR_NOT_FOUND;
    }
    uint64_t ms = req->timeout_ms ? req->timeout_ms : WEFT_CALLOUT_TIMEOUT_MS;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (!c->finished)
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
