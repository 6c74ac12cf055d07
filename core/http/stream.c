/* stream.c: the codec-independent exchange (see stream.h): lifecycle,
 * the request direction, timers and the log phase. */
#include "http/stream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "filter/handles.h"
#include "log/access_log.h"
#include "upstream/h2_pool.h"

uint32_t stream_high_watermark(const weft_stream *s) {
    uint32_t hw = s->lst ? s->lst->cfg->limits.buffer_high_watermark : 0;
    return hw ? hw : 1024 * 1024;
}

static void on_request_timeout(void *arg);
static void on_idle_timeout(void *arg);
static void on_try_timeout(void *arg);
static void on_backoff(void *arg);
static void on_deferred(evutil_socket_t fd, short what, void *arg);
static void log_phase(weft_stream *s);

void weft_stream_init(weft_stream *s, weft_worker *w, const weft_downstream_ops *ops, void *ds) {
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->ds_ops = ops;
    s->ds = ds;
    weft_arena_init(&s->arena);
    weft_ltimer_init(&s->t_request, w->base, on_request_timeout, s);
    weft_ltimer_init(&s->t_idle, w->base, on_idle_timeout, s);
    weft_ltimer_init(&s->t_try, w->base, on_try_timeout, s);
    weft_ltimer_init(&s->t_backoff, w->base, on_backoff, s);
    s->timers_init = true;
    event_assign(&s->ev_defer, w->base, -1, 0, on_deferred, s);
    weft_attempt_init(&s->att);
    s->up_pending = evbuffer_new();
}

void stream_defer(weft_stream *s, unsigned what) {
    s->deferred |= what;
    if (!event_pending(&s->ev_defer, EV_TIMEOUT, NULL))
        event_active(&s->ev_defer, EV_TIMEOUT, 0);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg) {
    weft_stream *s = arg;
    unsigned todo = s->deferred;
    s->deferred = 0;
    if ((todo & STREAM_DEFER_RETRY) && s->active)
        stream_deferred_retry(s);
}

/* The filter pipeline's buffers, made the first time a stream object runs
 * a filter chain and kept with it (an idle connection without filters does
 * not pay for six evbuffers). */
void stream_dir_buffers_make(weft_stream *s) {
    weft_dir *dirs[2] = {&s->rq, &s->rs};
    bool all = true;
    for (int i = 0; i < 2; i++) {
        if (!dirs[i]->pre)
            dirs[i]->pre = evbuffer_new();
        if (!dirs[i]->held)
            dirs[i]->held = evbuffer_new();
        if (!dirs[i]->chunk)
            dirs[i]->chunk = evbuffer_new();
        all = all && dirs[i]->pre && dirs[i]->held && dirs[i]->chunk;
    }
    s->dir_bufs = all; /* out of memory: tried again next time */
}

void stream_dir_reset(weft_dir *d) {
    d->headers_done = false;
    d->paused_at = -1;
    d->pause_token = 0;
    d->paused_headers = false;
    d->end_in = d->end_out = false;
    d->trailers = NULL;
    /* A direction whose body never went through the pipeline (every
     * exchange without a body hook, or without a body) has nothing to
     * drain: no libevent call then. */
    if (!d->used)
        return;
    d->used = false;
    struct evbuffer *bufs[3] = {d->pre, d->held, d->chunk};
    for (int i = 0; i < 3; i++) {
        size_t n = stream_buf_len(bufs[i]);
        if (n)
            evbuffer_drain(bufs[i], n);
    }
}

/* Stream idle timeout: every bit of activity moves the deadline (a lazy
 * timer, so this costs no timer-heap operation). */
void stream_arm_idle(weft_stream *s) {
    uint64_t ms = s->lst->cfg->limits.stream_idle_timeout_ms;
    if (s->route && s->route->cfg->idle_timeout_ms)
        ms = s->route->cfg->idle_timeout_ms;
    weft_ltimer_set(&s->t_idle, ms);
}

void weft_stream_begin(weft_stream *s, weft_listener_snap *lst, weft_wsnap *ws) {
    s->magic = WEFT_STREAM_MAGIC;
    weft_stream_handle_open(s);
    s->lst = lst;
    s->ws = weft_wsnap_ref(ws);
    s->active = true;
    s->chain = &lst->chain;
    s->fctx = NULL;
    s->running = -1;
    s->in_async_cb = false;
    s->tok_pending = 0;
    s->tok_filter = -1;
    s->pause_seq = 0;
    stream_dir_reset(&s->rq);
    stream_dir_reset(&s->rs);
    s->cluster_override = -1;
    s->replay_max = 0;
    s->replay_overflow = s->retry_requested = s->log_phase = false;
    s->attempts = 0;
    s->try_timeout_ms = s->att_try_ms = s->retry_delay_ms = 0;
    s->retry_flags = s->att_flags = 0;
    s->t_backoff_start_us = s->backoff_us = s->backoff_want_us = 0;
    s->up_req = NULL;
    s->in_up_request = false;
    s->tried_hs = NULL;
    s->tried = NULL;
    s->timers = NULL;
    s->filter_callouts = 0;
    s->filter_tcp_callouts = 0;
    weft_hdrs_init(&s->metadata, &s->arena);
    s->filter_arena = 0;
    s->filter_timers = 0;
    s->req_reached = -1;
    s->local_reply = s->rs_hdr_hook = false;
    s->rs_hdr_pos = s->rs_from = s->n_replies = 0;
    s->req = NULL;
    s->route = NULL;
    s->matched = NULL;
    s->route_dirty = false;
    s->cluster = NULL;
    weft_attempt_init(&s->att);
    s->connect_attempts = 0;
    s->up = NULL;
    s->up_ops = NULL;
    s->request_id = (weft_sv){"", 0};
    s->resp_trailers = NULL;
    s->req_done = s->up_req_done = s->up_req_chunked = s->resp_started = s->resp_done = false;
    s->head_request = s->stale_retry_done = s->ds_read_paused = s->up_read_paused = false;
    s->alpn_switched = false;
    s->close_after = s->is_grpc = false;
    s->flags = 0;
    s->reason = NULL;
    s->t_start_us = weft_now_us();
    s->t_up_start_us = s->t_up_head_us = s->t_end_us = 0;
    s->bytes_in = s->bytes_out = 0;
    s->status_sent = 0;
    memset(&s->resp, 0, sizeof(s->resp));
    weft_hdrs_init(&s->resp.headers, &s->arena);
    atomic_fetch_add_explicit(&s->w->active_streams, 1, memory_order_relaxed);
    stream_arm_idle(s);
}

void stream_reset_response(weft_stream *s) {
    stream_dir_reset(&s->rs);
    s->resp_trailers = NULL;
    s->rs_gathering = false;
    s->up_read_paused = false;
    s->t_up_head_us = 0;
    memset(&s->resp, 0, sizeof(s->resp));
    weft_hdrs_init(&s->resp.headers, &s->arena);
}

/* The end of an exchange, called by the codec from its own deferred
 * handler (never inside a filter hook or a codec callback): the log phase
 * runs here, then everything the exchange held is released. */
void weft_stream_end(weft_stream *s) {
    if (!s->active)
        return;
    if (stream_up_attached(s))
        stream_up_release(s, false);
    if (s->t_end_us)
        log_phase(s);
    if (event_initialized(&s->ev_defer))
        event_del(&s->ev_defer);
    s->deferred = 0;
    sf_end(s);
    weft_attempt_clear(&s->att);
    if (s->replay) {
        evbuffer_free(s->replay);
        s->replay = NULL;
    }
    s->magic = 0;
    weft_stream_handle_close(s);
    weft_ltimer_clear(&s->t_request);
    weft_ltimer_clear(&s->t_idle);
    weft_ltimer_clear(&s->t_try);
    weft_ltimer_clear(&s->t_backoff);
    s->t_backoff_start_us = 0;
    s->up_req = NULL;
    s->tried = NULL;
    s->tried_hs = NULL;
    evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
    weft_wsnap_unref(s->ws);
    s->ws = NULL;
    weft_arena_reset(&s->arena);
    s->req = NULL;
    s->active = false;
}

void weft_stream_destroy(weft_stream *s) {
    weft_stream_end(s);
    weft_ltimer_stop(&s->t_request);
    weft_ltimer_stop(&s->t_idle);
    weft_ltimer_stop(&s->t_try);
    weft_ltimer_stop(&s->t_backoff);
    if (s->up_pending)
        evbuffer_free(s->up_pending);
    s->up_pending = NULL;
    weft_dir *dirs[2] = {&s->rq, &s->rs};
    for (int i = 0; i < 2; i++) {
        if (dirs[i]->pre)
            evbuffer_free(dirs[i]->pre);
        if (dirs[i]->held)
            evbuffer_free(dirs[i]->held);
        if (dirs[i]->chunk)
            evbuffer_free(dirs[i]->chunk);
        dirs[i]->pre = dirs[i]->held = dirs[i]->chunk = NULL;
    }
    s->dir_bufs = false;
}

/* ---------- local replies ---------- */

/* The route of a request whose cluster a filter chose when no configured
 * route matches: default timeout, no header operations. */
static const weft_cfg_route default_route_cfg = {
    .name = "", .timeout_ms = 15000, .case_sensitive = true};
static const weft_route_entry default_route = {.cfg = &default_route_cfg, .cluster_idx = -1};

void weft_stream_on_req_head(weft_stream *s, weft_req_head *req) {
    s->req = req;
    s->head_request = weft_sv_eq(req->method, WEFT_SV_LIT("HEAD"));
    const weft_sv *ct = weft_hdrs_get(&req->headers, H_CT);
    s->is_grpc = ct && weft_sv_has_prefix(*ct, WEFT_SV_LIT("application/grpc"));
    s->grpc_status = -1;
    s->grpc_deadline_ms = 0;
    s->is_connect = req->method_id == HTTP_CONNECT;
    const weft_sv *up = weft_hdrs_get(&req->headers, WEFT_SV_LIT("upgrade"));
    s->upgrade_value = up ? *up : (weft_sv){"", 0};
    s->upgrade_req = s->is_connect || (req->upgrade && up && up->len);
    if (s->is_connect && !req->path.len)
        req->path = WEFT_SV_LIT("/"); /* authority-form: routes match CONNECT on "/" */
    s->tunnel = false;
    s->rs_gathering = false;
    if (!req->keep_alive)
        s->close_after = true;
    stream_gen_request_id(s);
    stream_arm_idle(s);
    if (!s->is_connect && !stream_normalize_path(s))
        return; /* answered: 400 or a redirect */
    /* The route is resolved before the filters run (as Envoy does for its
     * filters): they see it (weft_route_info, weft_route_config) and may
     * re-match it (weft_route_refresh). No match is not an error yet. */
    s->matched = weft_router_match(s->lst->router, req);
    if (stream_n_filters(s)) {
        sf_begin(s);
        sf_req_headers(s, 0); /* calls stream_route_and_forward when the chain passes */
        return;
    }
    s->rq.headers_done = true;
    stream_route_and_forward(s);
}

void stream_route_and_forward(weft_stream *s) {
    weft_req_head *req = s->req;
    s->rq.headers_done = true;
    if (s->resp_done || s->resp_started || s->local_reply)
        return;
    if (s->route_dirty) {
        /* A 1.0 filter changed the path or headers: it was promised that
         * routing sees them (1.0 routed after the chain). */
        s->matched = weft_router_match(s->lst->router, req);
        s->route_dirty = false;
    }
    if (s->cluster_override < 0) {
        s->route = s->matched;
        if (!s->route) {
            weft_stream_local_reply(s, 404, "route_not_found", WEFT_RF_NR, NULL);
            return;
        }
        switch (s->route->cfg->action) {
        case WEFT_ACTION_DIRECT:
            stream_direct_reply(s);
            return;
        case WEFT_ACTION_REDIRECT:
            stream_redirect_reply(s);
            return;
        case WEFT_ACTION_CLUSTER:
            break;
        }
    } else if (!s->route) {
        /* A filter chose the cluster: the route still supplies timeouts and
         * header operations when one matches; otherwise defaults. */
        s->route = s->matched;
        if (!s->route || s->route->cfg->action != WEFT_ACTION_CLUSTER)
            s->route = &default_route;
    }
    stream_arm_idle(s); /* the route may set its own idle timeout */
    if (s->is_grpc) {
        uint64_t gt = stream_grpc_timeout_ms(&req->headers);
        if (gt) {
            s->grpc_deadline_ms = weft_now_ms() + gt;
            weft_ltimer_set(&s->t_request, gt);
        }
    }
    int idx = s->cluster_override >= 0 ? s->cluster_override : s->route->cluster_idx;
    s->cluster = weft_wsnap_cluster(s->ws, idx);
    if (!s->cluster) {
        weft_stream_local_reply(s, 503, "cluster_not_found", WEFT_RF_NR, NULL);
        return;
    }
    stream_prepare_upstream_headers(s);
    if (s->is_connect) {
        /* CONNECT is terminated here: a fresh TCP connection to the
         * cluster's endpoint, then 200 and raw bytes. */
        stream_start_upstream(s, false);
        return;
    }
    stream_prepare_attempt_head(s);
    stream_write_up_head(s, s->up_pending);
    if (req->expect_continue && req->framing != WEFT_BODY_NONE && s->ds_ops->send_continue)
        s->ds_ops->send_continue(s);
    stream_start_upstream(s, s->upgrade_req ? false : true);
    if (stream_answered(s))
        return;
    /* Body that waited for the header phase. */
    if (stream_pre_len(&s->rq))
        sf_push(s, WEFT_DIR_REQ, s->rq.pre, 0);
    else if (s->rq.end_in && req->framing != WEFT_BODY_NONE && s->chain && s->chain->any_req_body)
        sf_push(s, WEFT_DIR_REQ, s->rq.pre, 0);
    else if (s->rq.end_in && stream_up_attached(s) && !s->up_req_done)
        stream_req_write_end(s);
}

static void keep_for_replay(weft_stream *s, const char *p, size_t n, struct evbuffer *buf) {
    if (!s->replay || s->replay_overflow)
        return;
    if (evbuffer_get_length(s->replay) + n > s->replay_max) {
        s->replay_overflow = true;
        evbuffer_drain(s->replay, evbuffer_get_length(s->replay));
        return;
    }
    if (!buf) {
        evbuffer_add(s->replay, p, n);
        return;
    }
    /* Copied, not referenced: a retry references the replay buffer, and
     * libevent refuses to reference a buffer that holds references (the
     * replayed request would go out without its body). */
    struct evbuffer_ptr pos;
    evbuffer_ptr_set(buf, &pos, 0, EVBUFFER_PTR_SET);
    for (size_t off = 0; off < n;) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(buf, -1, &pos, &v, 1) < 1 || !v.iov_len)
            break;
        evbuffer_add(s->replay, v.iov_base, v.iov_len);
        off += v.iov_len;
        if (off < n && evbuffer_ptr_set(buf, &pos, v.iov_len, EVBUFFER_PTR_ADD) != 0)
            break;
    }
}

/* The route timeout runs from the end of the request (Envoy's meaning);
 * a gRPC deadline (grpc-timeout) runs from the request head; the earlier
 * of the two wins. */
void stream_arm_request_timeout(weft_stream *s) {
    uint64_t ms = s->route ? s->route->cfg->timeout_ms : 0;
    if (stream_answered(s))
        return;
    uint64_t now = weft_now_ms();
    uint64_t deadline = ms ? now + ms : 0;
    if (s->grpc_deadline_ms && (!deadline || s->grpc_deadline_ms < deadline))
        deadline = s->grpc_deadline_ms;
    if (deadline)
        weft_ltimer_set(&s->t_request, deadline > now ? deadline - now : 1);
}

void stream_req_write_end(weft_stream *s) {
    s->up_ops->send_end(s, s->rq.trailers);
    s->up_req_done = true;
    stream_arm_request_timeout(s);
    stream_arm_try_timeout(s);
}

void stream_sink_req(weft_stream *s, struct evbuffer *chunk, bool end) {
    size_t n = evbuffer_get_length(chunk);
    if (stream_answered(s) || !s->cluster || !stream_up_attached(s)) {
        evbuffer_drain(chunk, n); /* answered locally: the body is discarded */
        return;
    }
    if (n) {
        keep_for_replay(s, NULL, n, chunk);
        s->up_ops->send_body(s, chunk);
    }
    if (end && !s->up_req_done)
        stream_req_write_end(s);
    stream_check_up_backpressure(s);
}

void weft_stream_on_req_body(weft_stream *s, const char *p, size_t n) {
    s->bytes_in += n;
    stream_arm_idle(s);
    if (s->is_connect) {
        /* HTTP/2 CONNECT: DATA frames are the tunnel's bytes. */
        struct evbuffer *dst = stream_tunnel_dst(s);
        if (dst) {
            evbuffer_add(dst, p, n);
            stream_check_up_backpressure(s);
        }
        return;
    }
    if (s->resp_done || s->local_reply)
        return; /* answered locally: the body is discarded */
    weft_dir *d = &s->rq;
    if (d->headers_done && d->paused_at < 0 && !(s->chain && s->chain->any_req_body)) {
        /* Fast path: no filter looks at request bodies. */
        if (!s->cluster || !stream_up_attached(s))
            return;
        keep_for_replay(s, p, n, NULL);
        s->up_ops->send_data(s, p, n);
        stream_check_up_backpressure(s);
        return;
    }
    stream_dir_buffers(s);
    d->used = true;
    if (d->headers_done && d->paused_at < 0) {
        evbuffer_add(d->chunk, p, n);
        sf_push(s, WEFT_DIR_REQ, d->chunk, 0);
        return;
    }
    evbuffer_add(d->pre, p, n);
    if (d->headers_done)
        sf_push(s, WEFT_DIR_REQ, d->pre, 0);
    else if (!s->ds_read_paused && evbuffer_get_length(d->pre) > stream_high_watermark(s)) {
        s->ds_read_paused = true; /* a filter holds the headers: stop reading */
        s->ds_ops->pause_read(s);
    }
}

void weft_stream_on_req_end(weft_stream *s, weft_hdrs *trailers) {
    s->req_done = true;
    s->rq.end_in = true;
    s->rq.trailers = trailers;
    if (s->is_connect && !s->resp_done) {
        /* HTTP/2 CONNECT with END_STREAM: the client half-closed the tunnel
         * (HTTP/1.1 CONNECT ends its "request" right after the head). */
        if (s->h2 && s->tunnel && s->up && s->up_ops->shutdown_write)
            s->up_ops->shutdown_write(s);
        return;
    }
    if (s->resp_done) {
        stream_finish(s);
        return;
    }
    if (s->local_reply)
        return; /* a local reply in the response hooks finishes when it is sent */
    if (!s->rq.headers_done)
        return; /* sf_req_headers/route will push the end when it gets there */
    /* A request without a body ended with its headers (end_stream was
     * true there): body hooks are not called for it, as in Envoy. */
    bool bodyless = s->req->framing == WEFT_BODY_NONE;
    if (s->rq.paused_at >= 0 || stream_pre_len(&s->rq) ||
        (!bodyless && (s->chain->any_req_body || s->chain->any_req_trailers))) {
        sf_push(s, WEFT_DIR_REQ, s->rq.pre, 0);
        return;
    }
    if (stream_up_attached(s))
        stream_req_write_end(s);
}

void weft_stream_on_downstream_writable(weft_stream *s) {
    if (s->up_read_paused && stream_up_attached(s) && s->rs.paused_at < 0) {
        s->up_read_paused = false;
        stream_up_resume(s);
    }
}

void weft_stream_on_downstream_reset(weft_stream *s, uint32_t flag) {
    if (!s->active)
        return;
    s->flags |= flag;
    s->close_after = true;
    if (stream_up_attached(s))
        stream_up_release(s, false); /* ends the attempt */
    stream_finish(s);
}

/* ---------- response path ---------- */

static void on_request_timeout(void *arg) {
    weft_stream *s = arg;
    if (s->cluster)
        weft_stats_inc(s->w->stats, s->cluster->shared->rq_timeout, 1);
    weft_ltimer_clear(&s->t_try);
    if (s->t_backoff_start_us) {
        /* The route timeout passed while a delayed retry waited: no
         * attempt is in flight to report. */
        weft_ltimer_clear(&s->t_backoff);
        s->t_backoff_start_us = 0;
    } else if (stream_n_filters(s) && !s->resp_started && s->cluster) {
        weft_attempt_info ai;
        stream_attempt_info(s, &ai, WEFT_ATTEMPT_TIMEOUT, 0);
        weft_attempt_end(&s->att, false, 0, weft_now_us());
        sf_attempt(s, &ai);
        if (stream_answered(s))
            return;
        if (s->retry_requested && stream_do_retry(s))
            return;
    }
    weft_stream_local_reply(s, 504, "upstream_response_timeout", WEFT_RF_UT, NULL);
}

/* A filter's per-try timeout (weft_upstream_set_try_timeout): the attempt
 * is cut and reported; a retry may follow while the route timeout runs. */
static void on_try_timeout(void *arg) {
    weft_stream *s = arg;
    if (!s->active || s->t_end_us || s->resp_started || s->resp_done || s->t_up_head_us ||
        !s->cluster)
        return;
    /* Never early by the precise clock (the timer runs on the coarse one). */
    uint64_t ran = weft_now_us() - s->t_try_start_us;
    if (ran < s->att_try_ms * 1000) {
        weft_ltimer_set(&s->t_try, (s->att_try_ms * 1000 - ran + 999) / 1000);
        return;
    }
    WEFT_DEBUG("per-try timeout (%llu ms) of attempt %u", (unsigned long long)s->att_try_ms,
               s->attempts);
    weft_stats_inc(s->w->stats, s->cluster->shared->rq_per_try_timeout, 1);
    if (stream_up_attached(s))
        stream_up_release(s, false); /* closes it; ends the attempt as a failure */
    if (stream_n_filters(s)) {
        weft_attempt_info ai;
        stream_attempt_info(s, &ai, WEFT_ATTEMPT_TIMEOUT, 0);
        ai.flags |= WEFT_ATTEMPT_F_PER_TRY_TIMEOUT;
        sf_attempt(s, &ai);
        if (s->resp_done)
            return;
        if (s->retry_requested && stream_do_retry(s))
            return;
    }
    weft_stream_local_reply(s, 504, "upstream_per_try_timeout", WEFT_RF_UT, NULL);
}

static void on_backoff(void *arg) {
    stream_on_backoff(arg);
}

static void on_idle_timeout(void *arg) {
    weft_stream *s = arg;
    if (!s->req_done)
        weft_stream_local_reply(s, 408, "stream_idle_timeout", WEFT_RF_SI, NULL);
    else
        weft_stream_local_reply(s, 504, "stream_idle_timeout", WEFT_RF_SI, NULL);
}

/* The exchange is over (response sent, or aborted): timers stop and the
 * codec is told; the log phase runs from weft_stream_end. */
void stream_finish(weft_stream *s) {
    if (!s->active || s->t_end_us)
        return;
    s->t_end_us = weft_now_us();
    weft_ltimer_clear(&s->t_request);
    weft_ltimer_clear(&s->t_idle);
    weft_ltimer_clear(&s->t_try);
    weft_ltimer_clear(&s->t_backoff);
    s->t_backoff_start_us = 0;
    atomic_fetch_sub_explicit(&s->w->active_streams, 1, memory_order_relaxed);
    s->ds_ops->done(s);
}

/* The access log's view of the exchange (log/ never reads the stream). */
static void log_record_fill(const weft_stream *s, weft_log_record *r) {
    const weft_req_head *req = s->req;
    const weft_sv empty = {"", 0};
    const weft_sv *ua = req ? weft_hdrs_get(&req->headers, WEFT_SV_LIT("user-agent")) : NULL;
    /* the route the request went with, else the one matched before the
     * filters (a filter's local reply still names its route) */
    const weft_route_entry *re = s->route ? s->route : s->matched;
    *r = (weft_log_record){
        .protocol = s->h2 ? WEFT_LOG_HTTP2 : WEFT_LOG_HTTP1,
        .http_minor = req ? (uint32_t)req->http_minor : 1,
        .method = req ? req->method : empty,
        .authority = req ? req->authority : empty,
        .path = req ? req->target : empty,
        .status = s->status_sent,
        .flags = s->flags,
        .reason = s->reason,
        .bytes_received = s->bytes_in,
        .bytes_sent = s->bytes_out,
        .duration_us = s->t_end_us > s->t_start_us ? s->t_end_us - s->t_start_us : 0,
        .upstream_service_us = s->t_up_head_us && s->t_up_start_us
                                   ? (int64_t)(s->t_up_head_us - s->t_up_start_us)
                                   : -1,
        .grpc_status = s->is_grpc ? s->grpc_status : -1,
        .upstream_host = s->att.ep ? s->att.ep->name : NULL,
        .upstream_cluster = s->cluster ? s->cluster->shared->cfg->name : NULL,
        .route = re ? re->cfg->name : NULL,
        .request_id = s->request_id,
        .downstream_remote = s->peer_ip,
        .user_agent = ua ? *ua : empty,
        .listener = s->lst ? s->lst->cfg->name : NULL,
    };
}

/* Stats, the access log and the filters' on_stream_complete, once per
 * exchange, outside every hook. */
static void log_phase(weft_stream *s) {
    if (s->status_sent)
        weft_stats_inc(s->w->stats, s->lst->rq_total[weft_code_class(s->status_sent)], 1);
    if (s->is_grpc) {
        const weft_sv *gs =
            s->resp_trailers ? weft_hdrs_get(s->resp_trailers, WEFT_SV_LIT("grpc-status")) : NULL;
        if (!gs && s->resp.status)
            gs = weft_hdrs_get(&s->resp.headers, WEFT_SV_LIT("grpc-status"));
        if (gs && gs->len && gs->len <= 2) {
            int code = 0;
            for (size_t i = 0; i < gs->len; i++)
                code = code * 10 + (gs->p[i] - '0');
            if (code >= 0 && code <= 16) {
                s->grpc_status = code;
                weft_stats_inc(s->w->stats, s->lst->grpc_total[code], 1);
            }
        }
    }
    weft_stats_observe_us(s->w->stats, s->lst->rq_time, s->t_end_us - s->t_start_us);
    if (s->ws->snap->access_log_fd >= 0) {
        weft_log_record r;
        log_record_fill(s, &r);
        weft_access_log_write(s->ws->snap->access_log_fd, &r);
    }
    if (s->fctx)
        sf_log(s);
}
