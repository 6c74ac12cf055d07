/* stream_filters.c: running a stream through its listener's HTTP filter
 * chain (see the lifetimes and call order in weft/filter.h). Positions
 * count along the direction: the request runs filters 0..n-1, the response
 * runs them n-1..0, so response position k is filter n-1-k. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http/stream_internal.h"
#include "log/access_log.h"

static size_t filter_index(const weft_stream *s, int dir, size_t pos) {
    return dir == WEFT_DIR_REQ ? pos : stream_n_filters(s) - 1 - pos;
}

static const weft_filter_inst *inst(const weft_stream *s, size_t idx) {
    return &s->chain->http[idx];
}

/* A hook must answer with one of the three values; anything else is the
 * filter's bug, handled as a 500 rather than trusted. WEFT_REPLIED needs a
 * reply made during the hook (replies counts them before it). */
static weft_status checked(weft_stream *s, size_t idx, uint32_t replies, weft_status st) {
    if (st == WEFT_CONTINUE || st == WEFT_STOP)
        return st;
    if (st == WEFT_REPLIED && (s->n_replies != replies || s->resp_started || s->resp_done))
        return st;
    WEFT_ERROR("filter %s: hook returned %d%s", inst(s, idx)->name, (int)st,
               st == WEFT_REPLIED ? " (WEFT_REPLIED without sending a reply)" : "");
    weft_stream_local_reply(s, 500, "filter_error", WEFT_RF_LR, NULL);
    return WEFT_REPLIED;
}

/* ---------- owned pauses and resume tokens ----------
 * A pause belongs to the filter whose hook returned WEFT_STOP. A token
 * asked for inside that hook (weft_stream_pause_token) is attached to the
 * pause when the hook returns WEFT_STOP, and forgotten otherwise. */

/* After filter idx's hook returned: attach or forget the token it asked for. */
static void settle_token(weft_stream *s, weft_dir *d, size_t idx, bool paused_here) {
    if (d && paused_here && s->tok_pending && s->tok_filter == (int)idx)
        d->pause_token = s->tok_pending;
    s->tok_pending = 0;
    s->tok_filter = -1;
}

/* The filter (chain index) that holds direction d's pause, -1 none. */
static int pause_owner(const weft_stream *s, const weft_dir *d) {
    if (d->paused_at < 0)
        return -1;
    return (int)filter_index(s, d == &s->rq ? WEFT_DIR_REQ : WEFT_DIR_RESP, (size_t)d->paused_at);
}

static uint64_t new_token(weft_stream *s) {
    if (++s->pause_seq == 0)
        s->pause_seq = 1;
    /* the handle's generation in the high half: a token of an earlier
     * exchange on the same stream object never matches */
    return (s->handle & 0xffffffff00000000ull) | s->pause_seq;
}

void sf_begin(weft_stream *s) {
    size_t n = stream_n_filters(s);
    stream_dir_buffers(s);
    s->fctx = weft_arena_alloc(&s->arena, n * sizeof(void *));
    if (!s->fctx)
        return;
    size_t li = s->lst->idx;
    for (size_t i = 0; i < n; i++) {
        const weft_filter_inst *fi = inst(s, i);
        s->fctx[i] = NULL;
        if (fi->http->stream_create) {
            s->running = (int)i;
            s->fctx[i] = fi->http->stream_create(fi->config, weft_wsnap_filter_worker(s->ws, li, i),
                                                 stream_handle(s));
            s->running = -1;
            settle_token(s, NULL, i, false);
        }
    }
}

void sf_req_headers(weft_stream *s, size_t from) {
    size_t n = stream_n_filters(s);
    weft_dir *d = &s->rq;
    bool end = s->req->framing == WEFT_BODY_NONE;
    for (size_t pos = from; pos < n; pos++) {
        const weft_filter_inst *fi = inst(s, pos);
        if ((int)pos > s->req_reached)
            s->req_reached = (int)pos; /* this filter saw the request */
        if (!fi->http->on_request_headers)
            continue;
        uint32_t replies = s->n_replies;
        s->running = (int)pos;
        weft_status st = checked(s, pos, replies,
                                 fi->http->on_request_headers(s->fctx[pos], stream_handle(s), end));
        s->running = -1;
        settle_token(s, d, pos, st == WEFT_STOP && !stream_answered(s));
        if (st == WEFT_REPLIED || stream_answered(s))
            return;
        if (st == WEFT_STOP) {
            d->paused_at = (int)pos;
            d->paused_headers = true;
            return;
        }
    }
    stream_route_and_forward(s);
}

/* After a local reply's head passed the chain: its body (if any) runs
 * through the body hooks of the same filters, then the end. */
static void local_reply_body(weft_stream *s) {
    weft_dir *d = &s->rs;
    if (s->resp_done || s->t_end_us)
        return;
    bool bodyless =
        weft_resp_is_bodyless(s->resp.status, s->head_request) || s->resp.framing == WEFT_BODY_NONE;
    if (bodyless) {
        evbuffer_drain(d->pre, evbuffer_get_length(d->pre));
        d->end_out = true;
        stream_sink_resp(s, d->pre, true);
        return;
    }
    sf_push(s, WEFT_DIR_RESP, d->pre, s->rs_from);
}

void sf_resp_headers(weft_stream *s, size_t from) {
    size_t n = stream_n_filters(s);
    weft_dir *d = &s->rs;
    for (size_t pos = from; pos < n; pos++) {
        size_t idx = filter_index(s, WEFT_DIR_RESP, pos);
        const weft_filter_inst *fi = inst(s, idx);
        if (!fi->http->on_response_headers)
            continue;
        /* A reply from a hook replaces the response: computed per filter. */
        bool end = weft_resp_is_bodyless(s->resp.status, s->head_request) ||
                   s->resp.framing == WEFT_BODY_NONE;
        uint32_t replies = s->n_replies;
        s->running = (int)idx;
        s->rs_hdr_hook = true;
        s->rs_hdr_pos = (uint32_t)pos;
        weft_status st = checked(
            s, idx, replies, fi->http->on_response_headers(s->fctx[idx], stream_handle(s), end));
        s->running = -1;
        settle_token(s, d, idx,
                     st == WEFT_STOP && !s->resp_done && !s->retry_requested &&
                         s->n_replies == replies);
        s->rs_hdr_hook = false;
        if (s->resp_done || s->t_end_us || s->retry_requested)
            return;
        if (s->n_replies != replies)
            continue; /* the filter replied: the next filters see its reply */
        if (st == WEFT_STOP) {
            d->paused_at = (int)pos;
            d->paused_headers = true;
            return;
        }
    }
    stream_send_resp_head(s);
    if (s->local_reply)
        local_reply_body(s);
}

/* Trailer hooks run once, at the end of the body, over the whole chain. A
 * STOP there cannot hold anything back and is treated as CONTINUE. */
static bool run_trailers(weft_stream *s, int dir) {
    weft_dir *d = stream_dir(s, dir);
    size_t n = stream_n_filters(s);
    if (!d->trailers)
        return true;
    for (size_t pos = 0; pos < n; pos++) {
        size_t idx = filter_index(s, dir, pos);
        const weft_http_filter_ops *o = inst(s, idx)->http;
        weft_status (*hook)(void *, weft_stream *) =
            dir == WEFT_DIR_REQ ? o->on_request_trailers : o->on_response_trailers;
        if (!hook)
            continue;
        uint32_t replies = s->n_replies;
        s->running = (int)idx;
        weft_status st = checked(s, idx, replies, hook(s->fctx[idx], stream_handle(s)));
        s->running = -1;
        settle_token(s, NULL, idx, false); /* trailers cannot pause */
        if (st == WEFT_REPLIED || (dir == WEFT_DIR_REQ && stream_answered(s)) || s->t_end_us)
            return false;
    }
    return true;
}

static void buffer_overflow(weft_stream *s, int dir) {
    if (dir == WEFT_DIR_REQ)
        weft_stream_local_reply(s, 413, "filter_buffer_overflow", WEFT_RF_LR, NULL);
    else
        weft_stream_local_reply(s, 500, "filter_buffer_overflow", WEFT_RF_LR, NULL);
}

void sf_push(weft_stream *s, int dir, struct evbuffer *src, size_t from) {
    weft_dir *d = stream_dir(s, dir);
    size_t n = stream_n_filters(s);
    struct evbuffer *chunk = d->chunk;
    if (src != chunk)
        evbuffer_add_buffer(chunk, src);
    bool end = d->end_in;
    for (size_t pos = from; pos < n; pos++) {
        size_t idx = filter_index(s, dir, pos);
        const weft_http_filter_ops *o = inst(s, idx)->http;
        weft_status (*hook)(void *, weft_stream *, weft_buffer *, bool) =
            dir == WEFT_DIR_REQ ? o->on_request_body : o->on_response_body;
        bool holding = d->paused_at == (int)pos && !d->paused_headers;
        if (holding) {
            evbuffer_add_buffer(d->held, chunk);
            if (evbuffer_get_length(d->held) > stream_high_watermark(s)) {
                buffer_overflow(s, dir);
                return;
            }
        }
        if (!hook)
            continue;
        struct evbuffer *view = holding ? d->held : chunk;
        if (!evbuffer_get_length(view) && !end)
            return; /* nothing to show this filter yet */
        uint32_t replies = s->n_replies;
        s->running = (int)idx;
        weft_status st = checked(s, idx, replies,
                                 hook(s->fctx[idx], stream_handle(s), (weft_buffer *)view, end));
        s->running = -1;
        settle_token(s, d, idx, st == WEFT_STOP);
        if (st == WEFT_REPLIED ||
            (dir == WEFT_DIR_REQ && ((s->resp_done && !s->resp_started) || s->local_reply)) ||
            (dir == WEFT_DIR_RESP && s->resp_done) || s->t_end_us)
            return;
        if (st == WEFT_STOP) {
            if (!holding) {
                evbuffer_add_buffer(d->held, chunk);
                d->paused_at = (int)pos;
                d->paused_headers = false;
            }
            return;
        }
        if (holding) {
            d->paused_at = -1;
            d->pause_token = 0;
            evbuffer_add_buffer(chunk, d->held);
        }
    }
    if (end && !d->end_out) {
        d->end_out = true;
        if (!run_trailers(s, dir))
            return;
        if (dir == WEFT_DIR_REQ)
            stream_sink_req(s, chunk, true);
        else
            stream_sink_resp(s, chunk, true);
        return;
    }
    if (dir == WEFT_DIR_REQ)
        stream_sink_req(s, chunk, false);
    else
        stream_sink_resp(s, chunk, false);
}

static int resume_dir(weft_stream *s, weft_dir *d);

/* Resume is refused inside a hook (return WEFT_CONTINUE there instead)
 * and in the log phase. */
static bool resume_allowed(const weft_stream *s) {
    return !(s->running >= 0 && !s->in_async_cb) && !s->log_phase;
}

static int resume_now(weft_stream *s, weft_dir *d);

int weft_stream_resume_filters(weft_stream *s, int *owner) {
    *owner = -1;
    if (!resume_allowed(s))
        return -1;
    /* The caller's own pause, the request direction first. A caller that
     * is no filter (code outside any hook or callback of this stream)
     * owns no pause: it needs the pause's token. */
    weft_dir *dirs[2] = {&s->rq, &s->rs};
    for (int i = 0; i < 2; i++)
        if (s->running >= 0 && pause_owner(s, dirs[i]) == s->running)
            return resume_now(s, dirs[i]);
    for (int i = 0; i < 2; i++)
        if ((*owner = pause_owner(s, dirs[i])) >= 0)
            return -2;
    return -1;
}

int stream_pause_token_of(weft_stream *s, uint64_t *token) {
    int f = s->running;
    if (f < 0 || s->log_phase)
        return -1;
    /* The pause this filter holds already (a body hook called again while
     * it holds, or a callback of the filter): its token, made on demand. */
    weft_dir *dirs[2] = {&s->rq, &s->rs};
    for (int i = 0; i < 2; i++)
        if (pause_owner(s, dirs[i]) == f) {
            if (!dirs[i]->pause_token)
                dirs[i]->pause_token = new_token(s);
            *token = dirs[i]->pause_token;
            if (!s->in_async_cb) {
                s->tok_pending = *token; /* a STOP again keeps it */
                s->tok_filter = f;
            }
            return 0;
        }
    if (s->in_async_cb)
        return -1; /* a callback of a filter that holds no pause */
    if (s->tok_filter != f || !s->tok_pending) {
        s->tok_pending = new_token(s);
        s->tok_filter = f;
    }
    *token = s->tok_pending;
    return 0;
}

int stream_resume_by_token(weft_stream *s, uint64_t token) {
    if (!token || !resume_allowed(s))
        return -1;
    weft_dir *dirs[2] = {&s->rq, &s->rs};
    for (int i = 0; i < 2; i++)
        if (dirs[i]->paused_at >= 0 && dirs[i]->pause_token == token)
            return resume_now(s, dirs[i]);
    return -1;
}

static int resume_now(weft_stream *s, weft_dir *d) {
    int saved_running = s->running;
    bool saved_async = s->in_async_cb;
    s->running = -1;
    s->in_async_cb = false;
    int rc = resume_dir(s, d);
    if (s->magic == WEFT_STREAM_MAGIC && s->active) {
        s->running = saved_running;
        s->in_async_cb = saved_async;
    }
    return rc;
}

static int resume_dir(weft_stream *s, weft_dir *d) {
    int dir = d == &s->rq ? WEFT_DIR_REQ : WEFT_DIR_RESP;
    size_t next = (size_t)d->paused_at + 1;
    bool headers = d->paused_headers;
    d->paused_at = -1;
    d->pause_token = 0; /* once */
    d->paused_headers = false;
    if (dir == WEFT_DIR_REQ) {
        if (headers) {
            sf_req_headers(s, next); /* routes and pushes `pre` when done */
        } else {
            sf_push(s, dir, d->held, next);
        }
        if (s->ds_read_paused && evbuffer_get_length(s->rq.pre) < stream_high_watermark(s)) {
            s->ds_read_paused = false;
            s->ds_ops->resume_read(s);
        }
        return 0;
    }
    if (headers) {
        sf_resp_headers(s, next); /* a local reply's body follows from there */
        if (!s->rs.headers_done || s->resp_done || s->local_reply)
            return 0;
        if (evbuffer_get_length(s->rs.pre) || s->rs.end_in)
            sf_push(s, dir, s->rs.pre, 0);
    } else {
        sf_push(s, dir, d->held, next);
    }
    if (stream_up_attached(s) && s->up_read_paused && !s->resp_done) {
        s->up_read_paused = false;
        stream_up_resume(s);
    }
    return 0;
}

void sf_attempt(weft_stream *s, const weft_attempt_info *info) {
    size_t n = stream_n_filters(s);
    /* A filter built against the 1.0 header (its ops table ends at
     * on_stream_complete) is handed the 1.0 struct's size. */
    weft_attempt_info old = *info;
    old.size = offsetof(weft_attempt_info, region);
    const size_t ops_1_0 = offsetof(weft_http_filter_ops, on_stream_complete) + sizeof(void *);
    for (size_t i = 0; i < n && s->fctx; i++) {
        const weft_filter_inst *fi = inst(s, i);
        const weft_http_filter_ops *o = fi->http;
        if (!o->on_upstream_attempt)
            continue;
        s->running = (int)i;
        o->on_upstream_attempt(s->fctx[i], stream_handle(s),
                               fi->lib && fi->lib->desc->http->size <= ops_1_0 ? &old : info);
        s->running = -1;
        if (s->resp_done)
            return;
    }
}

void sf_up_request(weft_stream *s, uint32_t attempt) {
    size_t n = stream_n_filters(s);
    for (size_t i = 0; i < n && s->fctx; i++) {
        const weft_http_filter_ops *o = inst(s, i)->http;
        if (!o->on_upstream_request)
            continue;
        s->running = (int)i;
        o->on_upstream_request(s->fctx[i], stream_handle(s), attempt);
        s->running = -1;
        settle_token(s, NULL, i, false); /* cannot pause */
        if (stream_answered(s))
            return;
    }
}

void sf_log(weft_stream *s) {
    weft_stream_info info;
    memset(&info, 0, sizeof(info));
    info.size = sizeof(info);
    info.status = s->status_sent;
    info.duration_us = s->t_end_us - s->t_start_us;
    info.upstream_time_us =
        s->t_up_head_us && s->t_up_start_us ? s->t_up_head_us - s->t_up_start_us : 0;
    info.bytes_received = s->bytes_in;
    info.bytes_sent = s->bytes_out;
    info.attempts = s->attempts;
    char flags[64];
    size_t fl = weft_response_flags_str(s->flags, flags, sizeof(flags));
    info.response_flags = (weft_str){flags, fl};
    if (s->att.ep)
        info.upstream_host = (weft_str){s->att.ep->name, strlen(s->att.ep->name)};
    else
        info.upstream_host = (weft_str){"", 0};
    if (s->cluster)
        info.cluster =
            (weft_str){s->cluster->shared->cfg->name, strlen(s->cluster->shared->cfg->name)};
    else
        info.cluster = (weft_str){"", 0};
    info.local_reply = s->local_reply;
    info.local_reply_reason =
        s->local_reply && s->reason ? (weft_str){s->reason, strlen(s->reason)} : (weft_str){"", 0};
    s->log_phase = true;
    size_t n = stream_n_filters(s);
    for (size_t i = 0; i < n; i++) {
        const weft_http_filter_ops *o = inst(s, i)->http;
        if (!o->on_stream_complete)
            continue;
        s->running = (int)i;
        o->on_stream_complete(s->fctx[i], stream_handle(s), &info);
        s->running = -1;
    }
}

void sf_end(weft_stream *s) {
    weft_filter_stream_cancel_async(s);
    if (!s->fctx)
        return;
    size_t n = stream_n_filters(s);
    for (size_t i = 0; i < n; i++) {
        const weft_http_filter_ops *o = inst(s, i)->http;
        if (o->stream_destroy && s->fctx[i])
            o->stream_destroy(s->fctx[i]);
    }
    s->fctx = NULL;
}
