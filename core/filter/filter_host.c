/* filter_host.c: the host side of the SDK (weft_host_api). Every call
 * checks its handle and thread first; misuse returns an error code and
 * logs one line naming the filter, never crashes. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/config_internal.h"
#include "filter/callout.h"
#include "filter/filter.h"
#include "filter/filter_setup.h"
#include "filter/filter_state.h"
#include "filter/config_timer.h"
#include "filter/fworker.h"
#include "filter/handles.h"
#include "filter/tcp_callout.h"
#include "filter/transport.h"
#include "http/stream_internal.h"
#include "stats/stats_fc.h"
#include "wsh_rules.h"

struct weft_stream_timer {
    struct event ev;
    weft_stream *s;
    weft_timer_cb cb;
    void *arg;
    int filter;
    bool armed;
    struct weft_stream_timer *next;
};

static inline weft_str S(weft_sv v) {
    return (weft_str){v.p, v.len};
}
static inline weft_sv V(weft_str v) {
    return (weft_sv){v.ptr, v.len};
}

static const char *running_name(const weft_stream *s) {
    return s->running >= 0 && s->chain ? s->chain->http[s->running].name : "?";
}

static weft_result misuse(const weft_stream *s, weft_result r, const char *what) {
    WEFT_WARN("filter %s: %s: %s", s ? running_name(s) : "?", what,
              r == WEFT_ERR_STATE    ? "not allowed in this state"
              : r == WEFT_ERR_THREAD ? "called from a thread that does not own the stream"
              : r == WEFT_ERR_HANDLE ? "not a live stream handle"
                                     : "invalid argument");
    return r;
}

/* Every stream call starts here: the filter's handle (filter/handles.h)
 * becomes the live stream it names, checked against its generation and
 * its worker's thread before anything of the stream is read. A stale
 * handle (an earlier exchange of the same HTTP/1.1 connection, a recycled
 * HTTP/2 stream object) never reaches the stream now using its memory. */
static weft_stream *live(weft_stream *h) {
    weft_stream *s = NULL;
    return weft_stream_from_handle(h, &s) == WEFT_OK ? s : NULL;
}

/* Decodes the handle parameter `s` in place (the rest of the call works
 * on the stream), or returns the error (logged without the stream: it is
 * stale, or another thread's). */
#define CHECK(s, what)                                                                             \
    do {                                                                                           \
        weft_stream *d_ = NULL;                                                                    \
        weft_result r_ = weft_stream_from_handle((s), &d_);                                        \
        if (r_ != WEFT_OK)                                                                         \
            return misuse(NULL, r_, what);                                                         \
        (s) = d_;                                                                                  \
    } while (0)

/* ---------- caps on what filters consume per stream ----------
 * The listener's limits.filter_*: bytes host calls take from the stream
 * arena on a filter's behalf, metadata keys, timers armed at once,
 * callouts in flight at once. Beyond them a call returns WEFT_ERR_LIMIT
 * (no log line: a filter may probe the cap in a loop). */

static const weft_cfg_limits *caps(const weft_stream *s) {
    return &s->lst->cfg->limits;
}

/* Whether about `need` more arena bytes would pass the cap. */
static bool arena_over(const weft_stream *s, size_t need) {
    uint64_t cap = caps(s)->filter_arena_bytes;
    return need > cap || s->filter_arena > cap - need;
}

/* Charges what the arena handed out since `before` (its total then). */
static void arena_charge(weft_stream *s, size_t before) {
    s->filter_arena += s->arena.total - before;
}

/* A change to the request head by a filter built for ABI 1.0: 1.0 routed
 * after the chain, so its path and header changes steer routing; the
 * stream matches again once the header phase passed (1.1 filters call
 * weft_route_refresh instead, as with Envoy's clearRouteCache). */
static void note_route_input(weft_stream *s) {
    if (s->in_up_request)
        return; /* on_upstream_request changes one attempt's copy (routed already) */
    if (s->running >= 0 && (size_t)s->running < stream_n_filters(s) &&
        s->chain->http[s->running].lib && s->chain->http[s->running].lib->desc->abi_minor == 0)
        s->route_dirty = true;
}

/* ---------- headers ---------- */

static bool valid_name(weft_str n) {
    if (!n.ptr || !n.len)
        return false;
    for (size_t i = 0; i < n.len; i++) {
        unsigned char c = (unsigned char)n.ptr[i];
        if (c <= 32 || c >= 127 || strchr("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    return true;
}

static bool valid_value(weft_str v) {
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if ((c < 32 && c != '\t') || c == 127)
            return false;
    }
    return true;
}

/* The map, or NULL when it does not exist (yet). *writable tells whether
 * changing it still has an effect. */
static weft_hdrs *header_map(weft_stream *s, weft_header_map m, bool *writable) {
    switch (m) {
    case WEFT_REQUEST_HEADERS:
        if (s->in_up_request && s->up_req) {
            /* on_upstream_request: this attempt's copy (1.1 retry) */
            *writable = true;
            return &s->up_req->headers;
        }
        *writable = s->req && !s->rq.headers_done;
        return s->req ? &s->req->headers : NULL;
    case WEFT_REQUEST_TRAILERS:
        *writable = s->rq.trailers && !s->rq.end_out;
        return s->rq.trailers;
    case WEFT_RESPONSE_HEADERS:
        *writable = (s->t_up_head_us || s->resp.status) && !s->resp_started;
        return s->resp.status ? &s->resp.headers : NULL;
    case WEFT_RESPONSE_TRAILERS:
        *writable = s->rs.trailers && !s->rs.end_out;
        return s->rs.trailers;
    }
    return NULL;
}

static weft_result h_header_get(weft_stream *s, weft_header_map m, weft_str name, size_t index,
                                weft_str *value) {
    CHECK(s, "header_get");
    bool w;
    weft_hdrs *h = header_map(s, m, &w);
    if (!h || !value)
        return h ? WEFT_ERR_INVALID : WEFT_ERR_NOT_FOUND;
    size_t k = 0;
    for (uint32_t i = 0; i < h->n; i++)
        if (weft_sv_ieq(h->v[i].name, V(name)) && k++ == index) {
            *value = S(h->v[i].value);
            return WEFT_OK;
        }
    return WEFT_ERR_NOT_FOUND;
}

static size_t h_header_count(weft_stream *s, weft_header_map m, weft_str name) {
    bool w;
    if (!(s = live(s)))
        return 0;
    weft_hdrs *h = header_map(s, m, &w);
    return h ? (size_t)weft_hdrs_count(h, V(name)) : 0;
}

static weft_result change(weft_stream *s, weft_header_map m, weft_str name, weft_str value, int op,
                          const char *what) {
    CHECK(s, what);
    if (s->log_phase)
        return misuse(s, WEFT_ERR_STATE, what);
    if (!valid_name(name) || (op != 2 && !valid_value(value)))
        return misuse(s, WEFT_ERR_INVALID, what);
    bool w;
    weft_hdrs *h = header_map(s, m, &w);
    if (!h || !w)
        return misuse(s, WEFT_ERR_STATE, what);
    /* name and value copies, and room for the map to grow */
    if (op != 2 && arena_over(s, name.len + value.len + 2 + sizeof(weft_hdr)))
        return WEFT_ERR_LIMIT;
    if (m == WEFT_REQUEST_HEADERS)
        note_route_input(s);
    size_t before = s->arena.total;
    int rc = op == 0   ? weft_hdrs_set(h, V(name), V(value))
             : op == 1 ? weft_hdrs_add(h, V(name), V(value))
                       : (weft_hdrs_remove(h, V(name)), 0);
    arena_charge(s, before);
    return rc == 0 ? WEFT_OK : WEFT_ERR_NOMEM;
}

static weft_result h_header_set(weft_stream *s, weft_header_map m, weft_str n, weft_str v) {
    return change(s, m, n, v, 0, "header_set");
}
static weft_result h_header_add(weft_stream *s, weft_header_map m, weft_str n, weft_str v) {
    return change(s, m, n, v, 1, "header_add");
}
static weft_result h_header_remove(weft_stream *s, weft_header_map m, weft_str n) {
    return change(s, m, n, (weft_str){"", 0}, 2, "header_remove");
}

static weft_result h_header_iterate(weft_stream *s, weft_header_map m, weft_header_visit visit,
                                    void *arg) {
    CHECK(s, "header_iterate");
    bool w;
    weft_hdrs *h = header_map(s, m, &w);
    if (!h)
        return WEFT_ERR_NOT_FOUND;
    if (!visit)
        return WEFT_ERR_INVALID;
    for (uint32_t i = 0; i < h->n; i++)
        if (!visit(S(h->v[i].name), S(h->v[i].value), arg))
            break;
    return WEFT_OK;
}

static weft_result h_request_get(weft_stream *s, weft_str *method, weft_str *path, weft_str *query,
                                 weft_str *authority) {
    CHECK(s, "request_get");
    if (!s->req)
        return WEFT_ERR_STATE;
    if (method)
        *method = S(s->req->method);
    if (path)
        *path = S(s->req->path);
    if (query)
        *query = S(s->req->query);
    if (authority)
        *authority = S(s->req->authority);
    return WEFT_OK;
}

static weft_result h_request_set_path(weft_stream *s, weft_str pq) {
    CHECK(s, "request_set_path");
    if (!s->req || s->rq.headers_done)
        return misuse(s, WEFT_ERR_STATE, "request_set_path");
    if (!pq.len || pq.ptr[0] != '/' || !valid_value(pq) || memchr(pq.ptr, ' ', pq.len))
        return misuse(s, WEFT_ERR_INVALID, "request_set_path");
    if (arena_over(s, pq.len + 1))
        return WEFT_ERR_LIMIT;
    size_t before = s->arena.total;
    char *copy = weft_arena_strndup(&s->arena, pq.ptr, pq.len);
    arena_charge(s, before);
    if (!copy)
        return WEFT_ERR_NOMEM;
    note_route_input(s);
    weft_req_head *r = s->req;
    r->target = (weft_sv){copy, pq.len};
    const char *q = memchr(copy, '?', pq.len);
    r->path = (weft_sv){copy, q ? (size_t)(q - copy) : pq.len};
    r->query = q ? (weft_sv){q + 1, pq.len - (size_t)(q - copy) - 1} : (weft_sv){"", 0};
    return WEFT_OK;
}

static int h_response_status(weft_stream *s) {
    return (s = live(s)) ? s->resp.status : 0;
}

static weft_result h_response_set_status(weft_stream *s, int status) {
    CHECK(s, "response_set_status");
    if (status < 200 || status > 599)
        return misuse(s, WEFT_ERR_INVALID, "response_set_status");
    if (!s->resp.status || s->resp_started)
        return misuse(s, WEFT_ERR_STATE, "response_set_status");
    s->resp.status = (uint16_t)status;
    s->resp.reason = weft_sv_from(weft_status_reason((uint16_t)status));
    return WEFT_OK;
}

/* ---------- buffers and bodies ---------- */

static size_t h_buffer_length(const weft_buffer *b) {
    return b ? evbuffer_get_length((const struct evbuffer *)b) : 0;
}

static size_t h_buffer_copy_out(const weft_buffer *b, size_t off, void *dst, size_t len) {
    struct evbuffer *e = (struct evbuffer *)b;
    if (!e || !dst || off >= evbuffer_get_length(e))
        return 0;
    struct evbuffer_ptr p;
    if (evbuffer_ptr_set(e, &p, off, EVBUFFER_PTR_SET) != 0)
        return 0;
    ev_ssize_t n = evbuffer_copyout_from(e, &p, dst, len);
    return n > 0 ? (size_t)n : 0;
}

static size_t h_buffer_peek(const weft_buffer *b, weft_str *seg, size_t max) {
    struct evbuffer *e = (struct evbuffer *)b;
    if (!e)
        return 0;
    int total = evbuffer_peek(e, -1, NULL, NULL, 0);
    if (total <= 0)
        return 0;
    struct evbuffer_iovec v[16];
    size_t want = max < 16 ? max : 16;
    int got = want ? evbuffer_peek(e, -1, NULL, v, (int)want) : 0;
    for (int i = 0; i < got && (size_t)i < want; i++)
        seg[i] = (weft_str){v[i].iov_base, v[i].iov_len};
    return (size_t)total;
}

static weft_result h_buffer_append(weft_buffer *b, const void *d, size_t n) {
    if (!b || (!d && n))
        return WEFT_ERR_INVALID;
    return evbuffer_add((struct evbuffer *)b, d, n) == 0 ? WEFT_OK : WEFT_ERR_NOMEM;
}

static weft_result h_buffer_prepend(weft_buffer *b, const void *d, size_t n) {
    if (!b || (!d && n))
        return WEFT_ERR_INVALID;
    return evbuffer_prepend((struct evbuffer *)b, d, n) == 0 ? WEFT_OK : WEFT_ERR_NOMEM;
}

static weft_result h_buffer_drain(weft_buffer *b, size_t n) {
    if (!b)
        return WEFT_ERR_INVALID;
    return evbuffer_drain((struct evbuffer *)b, n) == 0 ? WEFT_OK : WEFT_ERR_INVALID;
}

static weft_result h_body_buffer_for_replay(weft_stream *s, size_t max) {
    CHECK(s, "body_buffer_for_replay");
    if (s->bytes_in || s->rq.headers_done)
        return misuse(s, WEFT_ERR_STATE,
                      "body_buffer_for_replay (call it from on_request_headers)");
    if (!s->replay && !(s->replay = evbuffer_new()))
        return WEFT_ERR_NOMEM;
    if (max > s->replay_max)
        s->replay_max = max;
    return WEFT_OK;
}

static size_t h_body_buffered_length(weft_stream *s, weft_body_dir d) {
    if (!(s = live(s)))
        return 0;
    return evbuffer_get_length(d == WEFT_REQUEST_BODY ? s->rq.held : s->rs.held);
}

static size_t h_body_copy_out(weft_stream *s, weft_body_dir d, size_t off, void *dst, size_t len) {
    if (!(s = live(s)))
        return 0;
    return h_buffer_copy_out((weft_buffer *)(d == WEFT_REQUEST_BODY ? s->rq.held : s->rs.held), off,
                             dst, len);
}

/* ---------- control ---------- */

static weft_result h_reply_send(weft_stream *s, int status, weft_str reason, const weft_str *hn,
                                const weft_str *hv, size_t n, weft_str body) {
    CHECK(s, "reply_send");
    if (status < 200 || status > 599 || (n && (!hn || !hv)))
        return misuse(s, WEFT_ERR_INVALID, "reply_send");
    if (s->log_phase || s->resp_done || s->in_up_request)
        return misuse(s, WEFT_ERR_STATE, "reply_send");
    for (size_t i = 0; i < n; i++)
        if (!valid_name(hn[i]) || !valid_value(hv[i]))
            return misuse(s, WEFT_ERR_INVALID, "reply_send header");
    if (!valid_value(reason))
        return misuse(s, WEFT_ERR_INVALID, "reply_send reason");
    /* Charged to the arena cap but never refused by it: a filter that
     * could not reply would leave the stream with nothing to send. */
    size_t before = s->arena.total;
    weft_hdrs extra;
    weft_hdrs_init(&extra, &s->arena);
    for (size_t i = 0; i < n; i++)
        weft_hdrs_add(&extra, V(hn[i]), V(hv[i]));
    const char *r = reason.len ? weft_arena_strndup(&s->arena, reason.ptr, reason.len) : NULL;
    /* A NULL body means "the default body" ("<reason>\n"), an empty one
     * means none. */
    char *b = body.ptr ? weft_arena_strndup(&s->arena, body.ptr, body.len) : NULL;
    arena_charge(s, before);
    s->flags |= WEFT_RF_LR;
    weft_stream_reply_full(s, (uint16_t)status, r, &extra, (weft_sv){b, b ? body.len : 0});
    return WEFT_OK;
}

static const char *filter_name(const weft_stream *s, int idx) {
    return idx >= 0 && s->chain && (size_t)idx < s->chain->n_http ? s->chain->http[idx].name : "?";
}

static bool h_reply_is_local(weft_stream *s) {
    return (s = live(s)) && s->local_reply;
}

static weft_result h_stream_resume(weft_stream *s) {
    CHECK(s, "stream_resume");
    int owner;
    int rc = weft_stream_resume_filters(s, &owner);
    if (rc == -2) {
        /* Owned pauses: one line naming both filters. */
        WEFT_WARN("filter %s: stream_resume: the stream is paused by filter %s, not by this "
                  "filter: only the filter that paused (or a holder of its resume token) resumes",
                  running_name(s), filter_name(s, owner));
        return WEFT_ERR_STATE;
    }
    if (rc != 0)
        return misuse(s, WEFT_ERR_STATE,
                      s->log_phase || (s->running >= 0 && !s->in_async_cb)
                          ? "stream_resume (not from inside a hook or the log phase)"
                          : "stream_resume (the stream is not paused)");
    return WEFT_OK;
}

static weft_result h_stream_pause_token(weft_stream *s, uint64_t *token) {
    CHECK(s, "stream_pause_token");
    if (!token)
        return misuse(s, WEFT_ERR_INVALID, "stream_pause_token (NULL token)");
    if (stream_pause_token_of(s, token) != 0)
        return misuse(s, WEFT_ERR_STATE,
                      "stream_pause_token (call it from the hook that returns WEFT_STOP, or from "
                      "a callback of the filter holding the pause)");
    return WEFT_OK;
}

static weft_result h_stream_resume_token(weft_stream *s, uint64_t token) {
    CHECK(s, "stream_resume_token");
    if (stream_resume_by_token(s, token) != 0)
        return misuse(s, WEFT_ERR_STATE,
                      s->log_phase || (s->running >= 0 && !s->in_async_cb)
                          ? "stream_resume_token (not from inside a hook or the log phase)"
                          : "stream_resume_token (no pause holds this token: stale, used, or "
                            "its hook did not return WEFT_STOP)");
    return WEFT_OK;
}

static weft_result h_route_set_cluster(weft_stream *s, weft_str cluster) {
    CHECK(s, "route_set_cluster");
    if (!s->req || s->rq.headers_done)
        return misuse(s, WEFT_ERR_STATE, "route_set_cluster");
    const weft_config *cfg = s->ws->snap->cfg;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (strlen(cfg->clusters[i].name) == cluster.len &&
            memcmp(cfg->clusters[i].name, cluster.ptr, cluster.len) == 0) {
            s->cluster_override = (int)i;
            return WEFT_OK;
        }
    return WEFT_ERR_NOT_FOUND;
}

/* ---------- routing (1.1) ---------- */

static weft_str cstr(const char *c) {
    return (weft_str){c ? c : "", c ? strlen(c) : 0};
}

static weft_result h_route_info(weft_stream *s, weft_route_facts *out) {
    CHECK(s, "route_info");
    if (!out || out->size < offsetof(weft_route_facts, has_route) + sizeof(out->has_route))
        return misuse(s, WEFT_ERR_INVALID, "route_info (out NULL or out->size too small)");
    size_t sz = out->size;
    const weft_route_entry *e = s->matched;
    weft_route_facts ri = {.size = sz, .has_route = e != NULL};
    ri.route = cstr(e ? e->cfg->name : NULL);
    ri.vhost = cstr(e && e->vhost ? e->vhost->name : NULL);
    const weft_config *cfg = s->ws->snap->cfg;
    if (s->cluster_override >= 0 && (size_t)s->cluster_override < cfg->n_clusters)
        ri.cluster = cstr(cfg->clusters[s->cluster_override].name);
    else
        ri.cluster = cstr(e && e->cfg->action == WEFT_ACTION_CLUSTER ? e->cfg->cluster : NULL);
    /* fill what fits: a caller built with an older, smaller struct */
    memcpy(out, &ri, sz < sizeof(ri) ? sz : sizeof(ri));
    out->size = sz;
    return WEFT_OK;
}

static weft_result h_route_refresh(weft_stream *s) {
    CHECK(s, "route_refresh");
    if (!s->req || s->rq.headers_done || s->log_phase || s->resp_done)
        return misuse(s, WEFT_ERR_STATE, "route_refresh (routing is done)");
    s->matched = weft_router_match(s->lst->router, s->req);
    s->route_dirty = false;
    return WEFT_OK;
}

static const void *h_route_config(weft_stream *s) {
    weft_stream *h = s;
    weft_result r = weft_stream_from_handle(h, &s);
    if (r != WEFT_OK) {
        misuse(NULL, r, "route_config");
        return NULL;
    }
    const weft_route_entry *e = s->matched;
    if (!e || !e->filter_cfg || s->running < 0 || (size_t)s->running >= stream_n_filters(s))
        return NULL;
    return e->filter_cfg[s->running];
}

static weft_result h_upstream_retry(weft_stream *s) {
    CHECK(s, "upstream_retry");
    if (s->log_phase || weft_stream_retry(s) != 0)
        return misuse(s, WEFT_ERR_STATE,
                      "upstream_retry (response started or body not kept for replay)");
    return WEFT_OK;
}

/* ---------- 1.1 retry: per-try timeout, retry options, endpoint labels ---------- */

static weft_result h_upstream_set_try_timeout(weft_stream *s, uint64_t ms) {
    CHECK(s, "upstream_set_try_timeout");
    if (ms > 86400000u)
        return misuse(s, WEFT_ERR_INVALID, "upstream_set_try_timeout (at most one day)");
    if (s->log_phase || s->resp_started || s->resp_done)
        return misuse(s, WEFT_ERR_STATE, "upstream_set_try_timeout");
    s->try_timeout_ms = ms;
    if (s->in_up_request)
        s->att_try_ms = ms; /* the attempt about to start takes it too */
    return WEFT_OK;
}

static weft_result h_upstream_retry_ex(weft_stream *s, const weft_retry_options *o) {
    CHECK(s, "upstream_retry_ex");
    if (!o || o->size < offsetof(weft_retry_options, flags) + sizeof(o->flags) ||
        (o->flags & ~WEFT_RETRY_OTHER_ENDPOINT) || o->delay_ms > 3600000u)
        return misuse(s, WEFT_ERR_INVALID, "upstream_retry_ex (options)");
    if (s->log_phase || weft_stream_retry_ex(s, o->delay_ms, o->flags) != 0)
        return misuse(s, WEFT_ERR_STATE,
                      "upstream_retry_ex (response started, body not kept for replay, or inside "
                      "on_upstream_request)");
    return WEFT_OK;
}

static weft_result h_attempt_endpoint_label(weft_stream *s, weft_str key, weft_str *value) {
    CHECK(s, "attempt_endpoint_label");
    if (!value || (!key.ptr && key.len))
        return misuse(s, WEFT_ERR_INVALID, "attempt_endpoint_label");
    const weft_endpoint *ep = s->att.ep;
    if (!ep)
        return WEFT_ERR_NOT_FOUND;
    for (uint32_t i = 0; i < ep->n_labels; i++) {
        const char *k = ep->labels[i].key;
        if (strlen(k) == key.len && memcmp(k, key.ptr, key.len) == 0) {
            *value = (weft_str){ep->labels[i].value, strlen(ep->labels[i].value)};
            return WEFT_OK;
        }
    }
    return WEFT_ERR_NOT_FOUND;
}

static void timer_fire(evutil_socket_t fd, short what, void *arg) {
    struct weft_stream_timer *t = arg;
    weft_stream *s = t->s;
    t->armed = false;
    s->filter_timers--;
    stream_cb_frame f = stream_cb_enter(s, t->filter);
    t->cb(stream_handle(s), s->fctx ? s->fctx[t->filter] : NULL, t->arg);
    stream_cb_leave(s, f);
}

static weft_result h_timer_start(weft_stream *s, uint64_t ms, weft_timer_cb cb, void *arg,
                                 weft_timer **out) {
    CHECK(s, "timer_start");
    if (!cb || s->running < 0)
        return misuse(s, !cb ? WEFT_ERR_INVALID : WEFT_ERR_STATE,
                      "timer_start (call it from a hook)");
    if (s->log_phase)
        return misuse(s, WEFT_ERR_STATE, "timer_start");
    if (s->filter_timers >= caps(s)->filter_timers ||
        arena_over(s, sizeof(struct weft_stream_timer)))
        return WEFT_ERR_LIMIT;
    size_t before = s->arena.total;
    struct weft_stream_timer *t = weft_arena_alloc(&s->arena, sizeof(*t));
    arena_charge(s, before);
    if (!t)
        return WEFT_ERR_NOMEM;
    memset(t, 0, sizeof(*t));
    t->s = s;
    t->cb = cb;
    t->arg = arg;
    t->filter = s->running;
    event_assign(&t->ev, s->w->base, -1, 0, timer_fire, t);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(&t->ev, &tv);
    t->armed = true;
    s->filter_timers++;
    t->next = s->timers;
    s->timers = t;
    if (out)
        *out = (weft_timer *)t;
    return WEFT_OK;
}

static weft_result h_timer_cancel(weft_stream *s, weft_timer *handle) {
    CHECK(s, "timer_cancel");
    for (struct weft_stream_timer *t = s->timers; t; t = t->next)
        if ((weft_timer *)t == handle) {
            if (!t->armed)
                return WEFT_ERR_STATE;
            event_del(&t->ev);
            t->armed = false;
            s->filter_timers--;
            return WEFT_OK;
        }
    return misuse(s, WEFT_ERR_INVALID, "timer_cancel (unknown timer)");
}

void weft_filter_stream_cancel_async(weft_stream *s) {
    for (struct weft_stream_timer *t = s->timers; t; t = t->next)
        if (t->armed) {
            event_del(&t->ev);
            t->armed = false;
        }
    s->timers = NULL;
    s->filter_timers = 0;
    weft_callouts_stream_end(s);
    weft_tcp_callouts_stream_end(s);
}

/* ---------- HTTP callouts (filter/callout.c) ---------- */

/* The request's own checks (the scope's come from the caller); NULL when
 * valid, else what is wrong (logged). */
static const char *request_problem(const weft_callout_request *req, bool has_cb) {
    if (!req || req->size < sizeof(weft_callout_request))
        return "request NULL or its size below the 1.1 struct";
    if (req->flags & ~(uint32_t)WEFT_CALLOUT_DETACHED)
        return "unknown flags";
    if (has_cb == !!(req->flags & WEFT_CALLOUT_DETACHED))
        return "a callback is required, and must be NULL for WEFT_CALLOUT_DETACHED";
    if ((req->cluster.len && !req->cluster.ptr) || !valid_name(req->method) || !req->path.ptr ||
        !req->path.len || req->path.ptr[0] != '/' || !valid_value(req->path) ||
        memchr(req->path.ptr, ' ', req->path.len))
        return "needs a cluster, a method token and a path starting with '/'";
    if ((req->authority.len && !req->authority.ptr) || !valid_value(req->authority) ||
        memchr(req->authority.ptr ? req->authority.ptr : "", ' ', req->authority.len))
        return "invalid authority";
    if (req->n_headers && (!req->header_names || !req->header_values))
        return "n_headers without header arrays";
    for (size_t i = 0; i < req->n_headers; i++)
        if (!valid_name(req->header_names[i]) || !valid_value(req->header_values[i]))
            return "invalid header name or value";
    if (!req->body_buffer && req->body.len && !req->body.ptr)
        return "body with a NULL pointer";
    return NULL;
}

static weft_result stream_callout(weft_stream *s, const weft_callout_request *req,
                                  weft_callout_cb cb, void *arg, weft_callout **out,
                                  const char *what) {
    const char *bad = request_problem(req, cb != NULL);
    if (bad) {
        WEFT_WARN("filter %s: %s: %s", running_name(s), what, bad);
        return WEFT_ERR_INVALID;
    }
    if (s->running < 0 || s->log_phase)
        return misuse(s, WEFT_ERR_STATE, "callout_start (call it from a hook or callback)");
    if (!(req->flags & WEFT_CALLOUT_DETACHED) && s->filter_callouts >= caps(s)->filter_callouts)
        return WEFT_ERR_LIMIT;
    weft_callout_scope sc = {.w = s->w, .ws = s->ws, .s = s};
    return weft_callout_begin(&sc, req, cb, NULL, arg, out);
}

static weft_result h_callout_start(weft_stream *s, weft_str cluster, weft_str method, weft_str path,
                                   const weft_str *hn, const weft_str *hv, size_t n, weft_str body,
                                   uint64_t timeout_ms, weft_callout_cb cb, void *arg,
                                   weft_callout **out) {
    CHECK(s, "callout_start");
    weft_callout_request req = {.size = sizeof(req),
                                .cluster = cluster,
                                .method = method,
                                .path = path,
                                .header_names = hn,
                                .header_values = hv,
                                .n_headers = n,
                                .body = body,
                                .timeout_ms = timeout_ms};
    if (!cb)
        return misuse(s, WEFT_ERR_INVALID, "callout_start (callback NULL)");
    return stream_callout(s, &req, cb, arg, out, "callout_start");
}

static weft_result h_callout_start2(weft_stream *s, const weft_callout_request *req,
                                    weft_callout_cb cb, void *arg, weft_callout **out) {
    CHECK(s, "callout_start2");
    return stream_callout(s, req, cb, arg, out, "callout_start2");
}

static weft_result h_callout_cancel(weft_stream *s, weft_callout *c) {
    CHECK(s, "callout_cancel");
    if (weft_callout_cancel_in(s, NULL, c) != WEFT_OK)
        return misuse(s, WEFT_ERR_INVALID,
                      "callout_cancel (not a callout of this stream in flight)");
    return WEFT_OK;
}

static weft_result worker_misuse(const weft_fworker *fw, weft_result r, const char *what,
                                 const char *why) {
    WEFT_WARN("filter %s: %s: %s", fw ? fw->inst->name : "?", what, why);
    return r;
}

/* The live context of worker handle w, or the error (logged). */
static weft_result worker_of(weft_worker *w, weft_fworker **fw, const char *what) {
    weft_result r = weft_fworker_from_handle(w, fw);
    if (r != WEFT_OK)
        return worker_misuse(NULL, r, what,
                             r == WEFT_ERR_THREAD ? "another worker's handle"
                                                  : "not a live worker handle");
    return WEFT_OK;
}

static weft_result h_worker_callout_start(weft_worker *w, const weft_callout_request *req,
                                          weft_worker_callout_cb cb, void *arg,
                                          weft_callout **out) {
    weft_fworker *fw = NULL;
    weft_result r = worker_of(w, &fw, "worker_callout_start");
    if (r != WEFT_OK)
        return r;
    const char *bad = request_problem(req, cb != NULL);
    if (bad)
        return worker_misuse(fw, WEFT_ERR_INVALID, "worker_callout_start", bad);
    if (fw->closing)
        return worker_misuse(fw, WEFT_ERR_STATE, "worker_callout_start",
                             "worker_destroy runs: not allowed in this state");
    weft_callout_scope sc = {.w = fw->w, .ws = fw->ws, .fw = fw};
    return weft_callout_begin(&sc, req, NULL, cb, arg, out);
}

static weft_result h_worker_callout_cancel(weft_worker *w, weft_callout *c) {
    weft_fworker *fw = NULL;
    weft_result r = worker_of(w, &fw, "worker_callout_cancel");
    return r != WEFT_OK ? r : weft_callout_cancel_in(NULL, fw, c);
}

/* ---------- 1.1 raw TCP callouts (filter/tcp_callout.c) ---------- */

static weft_result h_tcp_callout_open(weft_stream *s, weft_str cluster,
                                      const weft_tcp_callout_opts *opts,
                                      const weft_tcp_callout_cbs *cbs, void *arg,
                                      weft_tcp_callout **out) {
    CHECK(s, "tcp_callout_open");
    if (s->running < 0 || s->log_phase)
        return misuse(s, WEFT_ERR_STATE, "tcp_callout_open (call it from a hook or callback)");
    if (weft_tcp_callouts_of_stream(s) >= caps(s)->filter_callouts)
        return WEFT_ERR_LIMIT;
    return weft_tcp_callout_open_stream(s, cluster, opts, cbs, arg, out);
}

/* Metadata values carry their type in the byte before the value (the
 * arena copy is [type][bytes][NUL]), so the map stays a weft_hdrs and a
 * typed get can tell a mismatch. */
enum { MD_STR = 0, MD_INT = 1, MD_BYTES = 2 };

static weft_result md_put(weft_stream *s, weft_str k, int type, const void *data, size_t len) {
    uint32_t at = s->metadata.n;
    for (uint32_t i = 0; i < s->metadata.n && at == s->metadata.n; i++)
        if (weft_sv_eq(s->metadata.v[i].name, V(k)))
            at = i;
    /* a new key counts against the entries cap; every value copy against
     * the arena cap (a replaced value stays in the arena) */
    bool new_key = at == s->metadata.n;
    if ((new_key && s->metadata.n >= caps(s)->filter_metadata_entries) ||
        arena_over(s, (new_key ? k.len + 1 + sizeof(weft_hdr) : 0) + len + 2))
        return WEFT_ERR_LIMIT;
    size_t before = s->arena.total;
    char *kc = new_key ? weft_arena_strndup(&s->arena, k.ptr, k.len) : NULL;
    char *vc = weft_arena_alloc(&s->arena, len + 2);
    int rc = (new_key && !kc) || !vc ? -1 : 0;
    if (vc) {
        vc[0] = (char)type;
        if (len)
            memcpy(vc + 1, data, len);
        vc[len + 1] = '\0';
    }
    if (rc == 0 && !new_key)
        s->metadata.v[at].value = (weft_sv){vc + 1, len};
    else if (rc == 0)
        rc = weft_hdrs_add_ref(&s->metadata, (weft_sv){kc, k.len}, (weft_sv){vc + 1, len});
    arena_charge(s, before);
    return rc == 0 ? WEFT_OK : WEFT_ERR_NOMEM;
}

/* The value of key k and its type; NULL when absent. */
static const weft_sv *md_find(weft_stream *s, weft_str k, int *type) {
    for (uint32_t i = 0; i < s->metadata.n; i++)
        if (weft_sv_eq(s->metadata.v[i].name, V(k))) {
            *type = (unsigned char)s->metadata.v[i].value.p[-1];
            return &s->metadata.v[i].value;
        }
    return NULL;
}

static weft_result h_metadata_set(weft_stream *s, weft_str k, weft_str v) {
    CHECK(s, "metadata_set");
    if (!k.len || !k.ptr || (!v.ptr && v.len))
        return misuse(s, WEFT_ERR_INVALID, "metadata_set");
    return md_put(s, k, MD_STR, v.ptr, v.len);
}

static weft_result h_metadata_get(weft_stream *s, weft_str k, weft_str *v) {
    CHECK(s, "metadata_get");
    int type;
    const weft_sv *val = md_find(s, k, &type);
    if (!val)
        return WEFT_ERR_NOT_FOUND;
    if (type != MD_STR)
        return misuse(s, WEFT_ERR_INVALID, "metadata_get (the key holds an integer or bytes)");
    if (v)
        *v = S(*val);
    return WEFT_OK;
}

static weft_result h_metadata_set_int(weft_stream *s, weft_str k, int64_t value) {
    CHECK(s, "metadata_set_int");
    if (!k.len || !k.ptr)
        return misuse(s, WEFT_ERR_INVALID, "metadata_set_int");
    return md_put(s, k, MD_INT, &value, sizeof(value));
}

static weft_result h_metadata_get_int(weft_stream *s, weft_str k, int64_t *value) {
    CHECK(s, "metadata_get_int");
    if (!value)
        return misuse(s, WEFT_ERR_INVALID, "metadata_get_int");
    int type;
    const weft_sv *val = md_find(s, k, &type);
    if (!val)
        return WEFT_ERR_NOT_FOUND;
    if (type != MD_INT || val->len != sizeof(*value))
        return misuse(s, WEFT_ERR_INVALID, "metadata_get_int (the key holds another type)");
    memcpy(value, val->p, sizeof(*value));
    return WEFT_OK;
}

static weft_result h_metadata_set_bytes(weft_stream *s, weft_str k, const void *data, size_t len) {
    CHECK(s, "metadata_set_bytes");
    if (!k.len || !k.ptr || (!data && len))
        return misuse(s, WEFT_ERR_INVALID, "metadata_set_bytes");
    return md_put(s, k, MD_BYTES, data, len);
}

static weft_result h_metadata_get_bytes(weft_stream *s, weft_str k, const void **data,
                                        size_t *len) {
    CHECK(s, "metadata_get_bytes");
    if (!data || !len)
        return misuse(s, WEFT_ERR_INVALID, "metadata_get_bytes");
    int type;
    const weft_sv *val = md_find(s, k, &type);
    if (!val)
        return WEFT_ERR_NOT_FOUND;
    if (type != MD_BYTES)
        return misuse(s, WEFT_ERR_INVALID, "metadata_get_bytes (the key holds another type)");
    *data = val->p;
    *len = val->len;
    return WEFT_OK;
}

/* ---------- connection facts ---------- */

static const weft_conn_facts *facts(weft_stream *s) {
    return s->ds_ops->facts ? s->ds_ops->facts(s) : NULL;
}

static weft_result h_peer_address(weft_stream *s, weft_str *ip, uint16_t *port) {
    CHECK(s, "conn_peer_address");
    const weft_conn_facts *f = facts(s);
    if (!f || !f->peer_ip)
        return WEFT_ERR_NOT_FOUND;
    if (ip)
        *ip = (weft_str){f->peer_ip, strlen(f->peer_ip)};
    if (port)
        *port = f->peer_port;
    return WEFT_OK;
}

static weft_result h_local_address(weft_stream *s, weft_str *ip, uint16_t *port) {
    CHECK(s, "conn_local_address");
    const weft_conn_facts *f = facts(s);
    if (!f || !f->local_ip)
        return WEFT_ERR_NOT_FOUND;
    if (ip)
        *ip = (weft_str){f->local_ip, strlen(f->local_ip)};
    if (port)
        *port = f->local_port;
    return WEFT_OK;
}

static weft_result h_peer_identity(weft_stream *s, weft_str *id) {
    CHECK(s, "conn_peer_identity");
    const weft_conn_facts *f = facts(s);
    if (!f || !f->peer_identity || !*f->peer_identity)
        return WEFT_ERR_NOT_FOUND;
    if (id)
        *id = (weft_str){f->peer_identity, strlen(f->peer_identity)};
    return WEFT_OK;
}

static bool h_is_tls(weft_stream *s) {
    if (!(s = live(s)))
        return false;
    const weft_conn_facts *f = facts(s);
    return f && f->tls;
}

static bool h_is_grpc(weft_stream *s) {
    return (s = live(s)) && s->is_grpc;
}

/* ---------- stats, log, time ---------- */

/* The metric name weft_filter_<yaml name>_<name> and the constant label
 * (listener, or cluster for a cluster's transport filters) of a filter's
 * stat; false for a bad name. */
static bool stat_naming(const weft_filter_setup *st, const char *name, char full[160],
                        char labels[160]) {
    if (!st || !name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    snprintf(full, 160, "weft_filter_%s_%s", st->filter->name, name);
    for (char *p = full; *p; p++) /* filter names may have '-'; metric names may not */
        if (*p == '-')
            *p = '_';
    if (st->cluster)
        snprintf(labels, 160, "cluster=\"%s\"", st->cluster);
    else
        snprintf(labels, 160, "listener=\"%s\"", st->listener ? st->listener : "");
    return true;
}

static int32_t stat_register(weft_filter_setup *st, const char *name, const char *help,
                             weft_stat_kind kind) {
    char full[160], labels[160];
    if (!stat_naming(st, name, full, labels))
        return -1;
    weft_stat_id id = kind == WEFT_STAT_COUNTER ? weft_stats_counter(full, labels, help ? help : "")
                      : kind == WEFT_STAT_GAUGE
                          ? weft_stats_gauge(full, labels, help ? help : "")
                          : weft_stats_histogram(full, labels, help ? help : "");
    return id == WEFT_STAT_INVALID || id > INT32_MAX ? -1 : (int32_t)id;
}

static int32_t h_stat_counter(weft_filter_setup *st, const char *n, const char *h) {
    return stat_register(st, n, h, WEFT_STAT_COUNTER);
}
static int32_t h_stat_gauge(weft_filter_setup *st, const char *n, const char *h) {
    return stat_register(st, n, h, WEFT_STAT_GAUGE);
}
static int32_t h_stat_histogram(weft_filter_setup *st, const char *n, const char *h) {
    return stat_register(st, n, h, WEFT_STAT_HISTOGRAM);
}
static void h_stat_inc(int32_t id, uint64_t d) {
    if (id >= 0)
        weft_stats_add_here((uint32_t)id, d); /* weft_stats_inc on this thread's block */
}
static void h_stat_gauge_add(int32_t id, int64_t d) {
    if (id >= 0)
        weft_stats_add_here((uint32_t)id, (uint64_t)d);
}
static void h_stat_observe_us(int32_t id, uint64_t us) {
    if (id >= 0)
        weft_stats_observe_us(weft_stats_thread_block(), (weft_stat_id)id, us);
}

/* [1.1 stats] labelled families (core/stats: weft_stats_family) */
_Static_assert(WEFT_STAT_FAMILY_MAX_LABELS == WEFT_STATS_FAMILY_MAX_LABELS &&
                   WEFT_STAT_FAMILY_MAX_SERIES == WEFT_STATS_FAMILY_MAX_SERIES &&
                   WEFT_STAT_LABEL_VALUE_MAX == WEFT_STATS_LABEL_VALUE_MAX &&
                   WEFT_STAT_KIND_COUNTER == WEFT_STAT_COUNTER &&
                   WEFT_STAT_KIND_GAUGE == WEFT_STAT_GAUGE &&
                   WEFT_STAT_KIND_HISTOGRAM == WEFT_STAT_HISTOGRAM,
               "filter.h and core/stats agree on families");
static weft_result h_stat_family(weft_filter_setup *st, uint32_t kind, const char *name,
                                 const char *help, const char *const *label_names, size_t n_labels,
                                 uint32_t max_series, int32_t *family) {
    if (family)
        *family = -1;
    char full[160], labels[160];
    /* the rules the test kit applies too (sdk/common/wsh_rules.c) */
    if (!family || !stat_naming(st, name, full, labels) ||
        wsh_stat_family_refusal(kind, label_names, n_labels, max_series))
        return WEFT_ERR_INVALID;
    weft_stat_family_id id;
    int rc = weft_stats_family((weft_stat_kind)kind, full, labels, help, label_names, n_labels,
                               max_series, &id);
    if (rc == WEFT_STATS_OK && id <= INT32_MAX)
        *family = (int32_t)id;
    return rc == WEFT_STATS_OK       ? WEFT_OK
           : rc == WEFT_STATS_ELIMIT ? WEFT_ERR_LIMIT
           : rc == WEFT_STATS_ENOMEM ? WEFT_ERR_NOMEM
                                     : WEFT_ERR_INVALID;
}

/* The updates of a family: the delta (a gauge's as two's complement) or
 * the sample. The weft_str values are read as they are (same layout as
 * the registry's weft_sv, read bytewise); a counter's or a gauge's cache
 * hit is inline (stats/stats_fc.h). A negative family is an id the
 * registry never gave: EINVAL there. */
_Static_assert(sizeof(weft_str) == sizeof(weft_sv) &&
                   offsetof(weft_str, ptr) == offsetof(weft_sv, p) &&
                   offsetof(weft_str, len) == offsetof(weft_sv, len),
               "weft_str and weft_sv share a layout");
static weft_result family_result(int rc) {
    return rc == WEFT_STATS_OK ? WEFT_OK : WEFT_ERR_INVALID;
}
static weft_result h_stat_family_inc(int32_t f, const weft_str *v, size_t n, uint64_t d) {
    return family_result(weft_stats_family_add_here((uint32_t)f, WEFT_STAT_COUNTER, v, n, d));
}
static weft_result h_stat_family_gauge_add(int32_t f, const weft_str *v, size_t n, int64_t d) {
    return family_result(
        weft_stats_family_add_here((uint32_t)f, WEFT_STAT_GAUGE, v, n, (uint64_t)d));
}
static weft_result h_stat_family_observe_us(int32_t f, const weft_str *v, size_t n, uint64_t us) {
    return family_result(weft_stats_family_update_here((uint32_t)f, WEFT_STAT_HISTOGRAM, v, n, us));
}
/* [end 1.1 stats] */

/* [1.2 stats series] series handles (core/stats: weft_stats_series_resolve).
 * A counter's or gauge's ordinary series is a slot id: the update is
 * weft_stats_inc's; overflow handles and histograms take the slow path. */
_Static_assert(sizeof(weft_stat_series) == sizeof(weft_stats_series_ref),
               "filter.h and core/stats agree on series handles");
static weft_result h_stat_family_series(int32_t f, const weft_str *v, size_t n,
                                        weft_stat_series *out) {
    if (f < 0) {
        if (out)
            *out = WEFT_STAT_SERIES_NONE;
        return WEFT_ERR_INVALID;
    }
    return family_result(weft_stats_series_resolve((uint32_t)f, v, n, out));
}
static void h_stat_series_inc(weft_stat_series r, uint64_t d) {
    if (weft_stats_series_plain(r, WEFT_STAT_COUNTER))
        weft_stats_add_here((uint32_t)r, d);
    else
        weft_stats_series_update_slow(r, WEFT_STAT_COUNTER, d);
}
static void h_stat_series_gauge_add(weft_stat_series r, int64_t d) {
    if (weft_stats_series_plain(r, WEFT_STAT_GAUGE))
        weft_stats_add_here((uint32_t)r, (uint64_t)d);
    else
        weft_stats_series_update_slow(r, WEFT_STAT_GAUGE, (uint64_t)d);
}
static void h_stat_series_observe_us(weft_stat_series r, uint64_t us) {
    weft_stats_series_update_slow(r, WEFT_STAT_HISTOGRAM, us);
}
/* [end 1.2 stats series] */

static void h_log(weft_log_level_t level, const char *filter, const char *msg) {
    int l = level < WEFT_LOG_LEVEL_DEBUG ? 0 : level > WEFT_LOG_LEVEL_ERROR ? 3 : (int)level;
    if (l < weft_log_min_level)
        return;
    weft_log((weft_log_level)l, "filter %s: %s", filter ? filter : "?", msg ? msg : "");
}
/* Formatted filter log lines (weft_logf, weft_setup_logf): the message is
 * formatted into a bounded buffer, control characters become \xNN, and
 * the line is cut at WSH_LOG_MAX bytes with "..." (wsh_log_format, shared
 * with the test kit). */

static void log_formatted(weft_log_level_t level, const char *name, const char *fmt, va_list ap) {
    int l = level < WEFT_LOG_LEVEL_DEBUG ? 0 : level > WEFT_LOG_LEVEL_ERROR ? 3 : (int)level;
    if (l < weft_log_min_level)
        return;
    char out[WSH_LOG_MAX + 1];
    wsh_log_format(out, fmt, ap);
    weft_log((weft_log_level)l, "filter %s: %s", name, out);
}

static void h_log_v(weft_stream *s, weft_log_level_t level, const char *fmt, va_list ap) {
    /* The name only from a live stream on its own worker: reading another
     * worker's stream would race. */
    const char *name = (s = live(s)) ? running_name(s) : "?";
    log_formatted(level, name, fmt, ap);
}

static void h_setup_log_v(weft_filter_setup *st, weft_log_level_t level, const char *fmt,
                          va_list ap) {
    log_formatted(level, st && st->filter ? st->filter->name : "?", fmt, ap);
}

static bool h_log_enabled(weft_log_level_t level) {
    return (int)level >= weft_log_min_level;
}
static uint64_t h_now_us(void) {
    return weft_now_us();
}

/* ---------- config accessors (over core/config's node tree) ---------- */

static const cy_node *N(const weft_config_node *n) {
    return (const cy_node *)n;
}

static const weft_config_node *h_config_get(const weft_config_node *m, const char *key) {
    const cy_node *n = N(m);
    if (!n || n->kind != CY_MAP || !key)
        return NULL;
    for (const cy_node *k = n->first; k && k->next; k = k->next->next)
        if (k->kind == CY_SCALAR && strcmp(k->str, key) == 0)
            return (const weft_config_node *)k->next;
    return NULL;
}
static bool h_is_map(const weft_config_node *n) {
    return N(n) && N(n)->kind == CY_MAP;
}
static bool h_is_list(const weft_config_node *n) {
    return N(n) && N(n)->kind == CY_SEQ;
}
static bool h_is_scalar(const weft_config_node *n) {
    return N(n) && N(n)->kind == CY_SCALAR;
}
static size_t h_config_len(const weft_config_node *n) {
    if (!N(n))
        return 0;
    return N(n)->kind == CY_MAP ? N(n)->n / 2 : N(n)->kind == CY_SEQ ? N(n)->n : 0;
}
static const weft_config_node *h_config_at(const weft_config_node *l, size_t i) {
    if (!h_is_list(l))
        return NULL;
    const cy_node *c = N(l)->first;
    while (c && i--)
        c = c->next;
    return (const weft_config_node *)c;
}
static const weft_config_node *h_config_entry(const weft_config_node *m, size_t i, weft_str *key) {
    if (!h_is_map(m))
        return NULL;
    const cy_node *k = N(m)->first;
    while (k && k->next && i--)
        k = k->next->next;
    if (!k || !k->next)
        return NULL;
    if (key)
        *key = (weft_str){k->str ? k->str : "", k->str ? k->len : 0};
    return (const weft_config_node *)k->next;
}
static weft_result h_config_string(const weft_config_node *n, weft_str *o) {
    if (!h_is_scalar(n) || !o)
        return WEFT_ERR_INVALID;
    *o = (weft_str){N(n)->str, N(n)->len};
    return WEFT_OK;
}
static weft_result h_config_int(const weft_config_node *n, int64_t *o) {
    if (!h_is_scalar(n) || !o || !N(n)->len)
        return WEFT_ERR_INVALID;
    errno = 0;
    char *end;
    long long v = strtoll(N(n)->str, &end, 10);
    if (errno || *end)
        return WEFT_ERR_INVALID;
    *o = v;
    return WEFT_OK;
}
static weft_result h_config_bool(const weft_config_node *n, bool *o) {
    if (!h_is_scalar(n) || !o)
        return WEFT_ERR_INVALID;
    const char *v = N(n)->str;
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
        *o = true;
    else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
        *o = false;
    else
        return WEFT_ERR_INVALID;
    return WEFT_OK;
}
static weft_result h_config_duration(const weft_config_node *n, uint64_t *o) {
    if (!h_is_scalar(n) || !o)
        return WEFT_ERR_INVALID;
    return weft_parse_duration_ms(N(n)->str, o) == 0 ? WEFT_OK : WEFT_ERR_INVALID;
}
static weft_result h_config_size(const weft_config_node *n, uint64_t *o) {
    if (!h_is_scalar(n) || !o)
        return WEFT_ERR_INVALID;
    return weft_parse_size(N(n)->str, o) == 0 ? WEFT_OK : WEFT_ERR_INVALID;
}
static weft_result h_config_percent(const weft_config_node *n, double *o) {
    if (!h_is_scalar(n) || !o || !N(n)->len)
        return WEFT_ERR_INVALID;
    char *end;
    errno = 0;
    double v = strtod(N(n)->str, &end);
    if (errno || end == N(n)->str || (*end && strcmp(end, "%") != 0) || !(v >= 0.0 && v <= 100.0))
        return WEFT_ERR_INVALID;
    *o = v;
    return WEFT_OK;
}
static int h_config_fail(weft_filter_setup *st, const weft_config_node *n, const char *msg) {
    if (!st)
        return -1;
    uint32_t line = N(n) ? N(n)->line : st->filter->pos.line;
    uint32_t col = N(n) ? N(n)->col : st->filter->pos.col;
    snprintf(st->err, st->errlen, "%s:%u:%u: filter \"%s\": %s",
             st->cfg->source ? st->cfg->source : "config", line, col, st->filter->name,
             msg ? msg : "invalid config");
    st->failed = true;
    return -1;
}
static const char *h_config_dir(weft_filter_setup *st) {
    return st && st->cfg->source_dir ? st->cfg->source_dir : ".";
}

/* ---------- transport ---------- */

static weft_result conn_check(weft_connection *c) {
    if (!c || c->magic != WEFT_CONNECTION_MAGIC)
        return WEFT_ERR_HANDLE;
    return pthread_equal(pthread_self(), c->thread) ? WEFT_OK : WEFT_ERR_THREAD;
}
static weft_result h_set_alpn(weft_connection *c, weft_str alpn) {
    weft_result r = conn_check(c);
    if (r != WEFT_OK)
        return r;
    if (alpn.len >= sizeof(c->alpn) || (alpn.len && !alpn.ptr))
        return WEFT_ERR_INVALID;
    memcpy(c->alpn, alpn.ptr, alpn.len);
    c->alpn[alpn.len] = '\0';
    c->facts.alpn = c->alpn;
    return WEFT_OK;
}
static weft_result h_set_identity(weft_connection *c, weft_str id) {
    weft_result r = conn_check(c);
    if (r != WEFT_OK)
        return r;
    if (!valid_value(id))
        return WEFT_ERR_INVALID;
    return weft_transport_api_set_identity(c, id);
}
static weft_result h_set_tls(weft_connection *c, bool tls) {
    weft_result r = conn_check(c);
    if (r != WEFT_OK)
        return r;
    c->facts.tls = tls;
    return WEFT_OK;
}

static weft_result h_conn_sni(weft_stream *s, weft_str *sni) {
    CHECK(s, "conn_sni");
    const weft_conn_facts *f = facts(s);
    if (!f || !f->sni || !*f->sni)
        return WEFT_ERR_NOT_FOUND;
    if (sni)
        *sni = (weft_str){f->sni, strlen(f->sni)};
    return WEFT_OK;
}

static weft_result h_conn_original_dst(weft_stream *s, weft_str *ip, uint16_t *port) {
    CHECK(s, "conn_original_dst");
    const weft_conn_facts *f = facts(s);
    const char *a = f ? (f->orig_dst_ip ? f->orig_dst_ip : f->local_ip) : NULL;
    if (!a)
        return WEFT_ERR_NOT_FOUND;
    if (ip)
        *ip = (weft_str){a, strlen(a)};
    if (port)
        *port = f->orig_dst_ip ? f->orig_dst_port : f->local_port;
    return WEFT_OK;
}

static const weft_host_api host_api = {
    .size = sizeof(weft_host_api),
    .abi_major = WEFT_ABI_MAJOR,
    .abi_minor = WEFT_ABI_MINOR,
    .header_get = h_header_get,
    .header_count = h_header_count,
    .header_set = h_header_set,
    .header_add = h_header_add,
    .header_remove = h_header_remove,
    .header_iterate = h_header_iterate,
    .request_get = h_request_get,
    .request_set_path = h_request_set_path,
    .response_status = h_response_status,
    .response_set_status = h_response_set_status,
    .buffer_length = h_buffer_length,
    .buffer_copy_out = h_buffer_copy_out,
    .buffer_peek = h_buffer_peek,
    .buffer_append = h_buffer_append,
    .buffer_prepend = h_buffer_prepend,
    .buffer_drain = h_buffer_drain,
    .body_buffer_for_replay = h_body_buffer_for_replay,
    .body_buffered_length = h_body_buffered_length,
    .body_copy_out = h_body_copy_out,
    .reply_send = h_reply_send,
    .stream_resume = h_stream_resume,
    .route_set_cluster = h_route_set_cluster,
    .upstream_retry = h_upstream_retry,
    .timer_start = h_timer_start,
    .timer_cancel = h_timer_cancel,
    .callout_start = h_callout_start,
    .callout_cancel = h_callout_cancel,
    .metadata_set = h_metadata_set,
    .metadata_get = h_metadata_get,
    .conn_peer_address = h_peer_address,
    .conn_local_address = h_local_address,
    .conn_peer_identity = h_peer_identity,
    .conn_is_tls = h_is_tls,
    .request_is_grpc = h_is_grpc,
    .stat_counter = h_stat_counter,
    .stat_gauge = h_stat_gauge,
    .stat_histogram = h_stat_histogram,
    .stat_inc = h_stat_inc,
    .stat_gauge_add = h_stat_gauge_add,
    .stat_observe_us = h_stat_observe_us,
    .log = h_log,
    .log_enabled = h_log_enabled,
    .now_us = h_now_us,
    .config_get = h_config_get,
    .config_is_map = h_is_map,
    .config_is_list = h_is_list,
    .config_is_scalar = h_is_scalar,
    .config_len = h_config_len,
    .config_at = h_config_at,
    .config_entry = h_config_entry,
    .config_string = h_config_string,
    .config_int = h_config_int,
    .config_bool = h_config_bool,
    .config_duration_ms = h_config_duration,
    .config_size = h_config_size,
    .config_percent = h_config_percent,
    .config_fail = h_config_fail,
    .config_filter_dir = h_config_dir,
    .connection_set_alpn = h_set_alpn,
    .connection_set_peer_identity = h_set_identity,
    .connection_set_tls = h_set_tls,

    /* [1.1 routing] route before filters, per-route config, re-match, local replies */
    .route_info = h_route_info,
    .route_refresh = h_route_refresh,
    .route_config = h_route_config,
    .reply_is_local = h_reply_is_local,
    /* [end 1.1 routing] */

    /* [1.1 streams] stream handles with generations, owned pauses, author helpers, typed metadata
     */
    .stream_pause_token = h_stream_pause_token,
    .stream_resume_token = h_stream_resume_token,
    .log_v = h_log_v,
    .setup_log_v = h_setup_log_v,
    .metadata_set_int = h_metadata_set_int,
    .metadata_get_int = h_metadata_get_int,
    .metadata_set_bytes = h_metadata_set_bytes,
    .metadata_get_bytes = h_metadata_get_bytes,
    /* [end 1.1 streams] */

    /* [1.1 retry] per-try timeout, delayed retry, untried endpoint, per-attempt headers */
    .upstream_set_try_timeout = h_upstream_set_try_timeout,
    .upstream_retry_ex = h_upstream_retry_ex,
    .attempt_endpoint_label = h_attempt_endpoint_label,
    /* [end 1.1 retry] */

    /* [1.1 state] shared state across reloads, cluster and endpoint handles, worker/config-scoped
       timers */
    .shared_get = weft_fs_shared_get,
    .cluster_get = weft_fs_cluster_get,
    .cluster_endpoint_count = weft_fs_endpoint_count,
    .cluster_endpoint_get = weft_fs_endpoint_get,
    .cluster_endpoint_label = weft_fs_endpoint_label,
    .cluster_endpoint_find = weft_fs_endpoint_find,
    .endpoint_counter_add = weft_fs_counter_add,
    .endpoint_counter_set = weft_fs_counter_set,
    .endpoint_eject = weft_fs_eject,
    .endpoint_restore = weft_fs_restore,
    .worker_cluster_endpoint_count = weft_fs_worker_endpoint_count,
    .worker_cluster_endpoint_get = weft_fs_worker_endpoint_get,
    .worker_cluster_endpoint_label = weft_fs_worker_endpoint_label,
    .worker_cluster_endpoint_find = weft_fs_worker_endpoint_find,
    .worker_endpoint_counter_add = weft_fs_worker_counter_add,
    .worker_endpoint_counter_set = weft_fs_worker_counter_set,
    .worker_endpoint_eject = weft_fs_worker_eject,
    .worker_endpoint_restore = weft_fs_worker_restore,
    /* [end 1.1 state] */

    /* [1.1 callout] pooled callouts, TCP callouts, fire-and-forget */
    .worker_current = weft_fw_current,
    .worker_timer_start = weft_fw_timer_start,
    .worker_timer_cancel = weft_fw_timer_cancel,
    .config_timer_start = weft_cfg_timer_start,
    .config_timer_cancel = weft_cfg_timer_cancel,
    .callout_start2 = h_callout_start2,
    .worker_callout_start = h_worker_callout_start,
    .worker_callout_cancel = h_worker_callout_cancel,
    /* [end 1.1 callout] */

    /* [1.1 tcp callout] raw TCP byte-stream callouts */
    .tcp_callout_open = h_tcp_callout_open,
    .tcp_callout_write = weft_tcp_callout_write_h,
    .tcp_callout_close = weft_tcp_callout_close_h,
    .worker_tcp_callout_open = weft_tcp_callout_open_worker,
    /* [end 1.1 tcp callout] */

    /* [1.1 stats] labelled stat families */
    .stat_family = h_stat_family,
    .stat_family_inc = h_stat_family_inc,
    .stat_family_gauge_add = h_stat_family_gauge_add,
    .stat_family_observe_us = h_stat_family_observe_us,
    /* [end 1.1 stats] */

    /* [1.1 transport] transport filters: write, timers, handshake, upstream side */
    .connection_write = weft_transport_api_write,
    .connection_close = weft_transport_api_close,
    .connection_timer_start = weft_transport_api_timer_start,
    .connection_timer_cancel = weft_transport_api_timer_cancel,
    .connection_handshake_done = weft_transport_api_handshake_done,
    .connection_get_info = weft_transport_api_get_info,
    .conn_sni = h_conn_sni,
    .conn_original_dst = h_conn_original_dst,
    /* [end 1.1 transport] */

    /* [1.2 stats series] series handles of labelled families */
    .stat_family_series = h_stat_family_series,
    .stat_series_inc = h_stat_series_inc,
    .stat_series_gauge_add = h_stat_series_gauge_add,
    .stat_series_observe_us = h_stat_series_observe_us,
    /* [end 1.2 stats series] */
};

const weft_host_api *weft_filter_host_api(void) {
    return &host_api;
}
