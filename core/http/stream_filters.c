/* stream_filters.c: running a stream through its listener's HTTP filter
 * chain (see the lifetimes and call order in weft/filter.h). Positions
 * count along the direction: the request runs filters 0..n-1, the response
 * runs them n-1..0, so response position k is filter n-1-k.
 *
 * Every pass walks the phase's list (weft_chain_phase, built once per
 * chain): only the filters that have the hook, with the hook's address at
 * hand. A filter without it is never visited; positions (pauses, resumes,
 * where a local reply starts) keep counting every filter. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "filter/handles.h"
#include "http/stream_internal.h"
#include "log/access_log.h"

static const weft_filter_inst *inst(const weft_stream *s, size_t idx) {
    return &s->chain->http[idx];
}

static const weft_chain_phase *phase(const weft_stream *s, int ph) {
    return &s->chain->phase[ph];
}

/* The first step of p at direction position >= pos. */
static uint32_t first_step(const weft_chain_phase *p, size_t pos) {
    return p->n ? p->from[pos] : 0;
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
    if (!s->tok_pending)
        return; /* the usual case: no token was asked for (tok_filter is -1) */
    if (d && paused_here && s->tok_filter == (int)idx)
        d->pause_token = s->tok_pending;
    s->tok_pending = 0;
    s->tok_filter = -1;
}

/* The filter (chain index) that holds direction d's pause, -1 none. */
static int pause_owner(const weft_stream *s, const weft_dir *d) {
    if (d->paused_at < 0)
        return -1;
    return d == &s->rq ? d->paused_at : (int)stream_n_filters(s) - 1 - d->paused_at;
}

static uint64_t new_token(weft_stream *s) {
    if (++s->pause_seq == 0)
        s->pause_seq = 1;
    /* the handle's generation in the high half: a token of an earlier
     * exchange on the same stream object never matches */
    return (s->handle & 0xffffffff00000000ull) | s->pause_seq;
}

/* The stream's own contexts: stream_create of each filter that has it. */
__attribute__((noinline)) static void begin_contexts(weft_stream *s, const weft_chain_phase *p) {
    size_t n = stream_n_filters(s);
    /* one arena slab for the per-filter contexts (the arena's inline
     * block first: no malloc for a short chain) */
    void **fctx = weft_arena_alloc(&s->arena, n * sizeof(void *));
    s->fctx = fctx;
    if (!fctx)
        return;
    memset(fctx, 0, n * sizeof(void *));
    if (!p->n)
        return;
    weft_stream *h = stream_handle(s);
    size_t li = s->lst->idx;
    for (uint32_t k = 0; k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        void *(*create)(void *, void *, weft_stream *) =
            (void *(*)(void *, void *, weft_stream *))st->fn;
        s->running = (int)st->idx;
        fctx[st->idx] =
            create(inst(s, st->idx)->config, weft_wsnap_filter_worker(s->ws, li, st->idx), h);
        s->running = -1;
        settle_token(s, NULL, st->idx, false);
    }
}

void sf_begin(weft_stream *s) {
    stream_dir_buffers(s);
    const weft_chain_phase *p = phase(s, WEFT_PH_STREAM_CREATE);
    if (!p->n && s->chain->no_ctx) {
        /* no filter makes a context: every one is NULL, and nothing
         * writes them (only begin_contexts' stream_create loop does) */
        s->fctx = s->chain->no_ctx;
        return;
    }
    begin_contexts(s, p);
}

/* The request header hooks of p's steps from k on: true when the chain
 * passed (no pause, no reply). Out of line: a chain without the hook (the
 * usual one) does not pay for the loop's frame. */
__attribute__((noinline)) static bool req_header_hooks(weft_stream *s, const weft_chain_phase *p,
                                                       uint32_t k) {
    weft_dir *d = &s->rq;
    bool end = s->req->framing == WEFT_BODY_NONE;
    weft_stream *h = stream_handle(s);
    for (; k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        size_t pos = st->pos;
        if ((int)pos > s->req_reached)
            s->req_reached = (int)pos; /* it and the filters before it saw the request */
        weft_status (*hook)(void *, weft_stream *, bool) =
            (weft_status(*)(void *, weft_stream *, bool))st->fn;
        uint32_t replies = s->n_replies;
        s->running = (int)pos;
        weft_status st_ = checked(s, pos, replies, hook(s->fctx[pos], h, end));
        s->running = -1;
        settle_token(s, d, pos, st_ == WEFT_STOP && !stream_answered(s));
        if (st_ == WEFT_REPLIED || stream_answered(s))
            return false;
        if (st_ == WEFT_STOP) {
            d->paused_at = (int)pos;
            d->paused_headers = true;
            return false;
        }
    }
    return true;
}

void sf_req_headers(weft_stream *s, size_t from) {
    size_t n = stream_n_filters(s);
    const weft_chain_phase *p = phase(s, WEFT_PH_REQ_HEADERS);
    uint32_t k = first_step(p, from);
    if (k < p->n && !req_header_hooks(s, p, k))
        return;
    if (n && s->req_reached < (int)n - 1)
        s->req_reached = (int)n - 1; /* the filters after the last hook saw it too */
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

static bool resp_end_stream(const weft_stream *s) {
    return weft_resp_is_bodyless(s->resp.status, s->head_request) ||
           s->resp.framing == WEFT_BODY_NONE;
}

/* The response header hooks of p's steps from k on (k < p->n): true when
 * the chain passed (no pause, no end, no retry). */
__attribute__((noinline)) static bool resp_header_hooks(weft_stream *s, const weft_chain_phase *p,
                                                        uint32_t k) {
    weft_dir *d = &s->rs;
    weft_stream *h = stream_handle(s);
    /* A reply from a hook replaces the response: recomputed after one. */
    bool end = resp_end_stream(s);
    for (; k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        size_t idx = st->idx;
        weft_status (*hook)(void *, weft_stream *, bool) =
            (weft_status(*)(void *, weft_stream *, bool))st->fn;
        uint32_t replies = s->n_replies;
        s->running = (int)idx;
        s->rs_hdr_hook = true;
        s->rs_hdr_pos = st->pos;
        weft_status st_ = checked(s, idx, replies, hook(s->fctx[idx], h, end));
        s->running = -1;
        settle_token(s, d, idx,
                     st_ == WEFT_STOP && !s->resp_done && !s->retry_requested &&
                         s->n_replies == replies);
        s->rs_hdr_hook = false;
        if (s->resp_done || s->t_end_us || s->retry_requested)
            return false;
        if (s->n_replies != replies) {
            end = resp_end_stream(s);
            continue; /* the filter replied: the next filters see its reply */
        }
        if (st_ == WEFT_STOP) {
            d->paused_at = (int)st->pos;
            d->paused_headers = true;
            return false;
        }
    }
    return true;
}

void sf_resp_headers(weft_stream *s, size_t from) {
    const weft_chain_phase *p = phase(s, WEFT_PH_RESP_HEADERS);
    uint32_t k = first_step(p, from);
    /* no hook to run (the usual chain): straight to the head */
    if (k < p->n && !resp_header_hooks(s, p, k))
        return;
    stream_send_resp_head(s);
    if (s->local_reply)
        local_reply_body(s);
}

/* Trailer hooks run once, at the end of the body, over the whole chain. A
 * STOP there cannot hold anything back and is treated as CONTINUE. */
static bool run_trailers(weft_stream *s, int dir) {
    weft_dir *d = stream_dir(s, dir);
    if (!d->trailers)
        return true;
    const weft_chain_phase *p =
        phase(s, dir == WEFT_DIR_REQ ? WEFT_PH_REQ_TRAILERS : WEFT_PH_RESP_TRAILERS);
    weft_stream *h = stream_handle(s);
    for (uint32_t k = 0; k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        size_t idx = st->idx;
        weft_status (*hook)(void *, weft_stream *) = (weft_status(*)(void *, weft_stream *))st->fn;
        uint32_t replies = s->n_replies;
        s->running = (int)idx;
        weft_status st_ = checked(s, idx, replies, hook(s->fctx[idx], h));
        s->running = -1;
        settle_token(s, NULL, idx, false); /* trailers cannot pause */
        if (st_ == WEFT_REPLIED || (dir == WEFT_DIR_REQ && stream_answered(s)) || s->t_end_us)
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

/* The pass's buffer: the bytes waiting before position 0 (`pre`, or the
 * codec's read put straight into `chunk`) pass through in place, without
 * a move; only bytes a filter held (`held`, on a resume) move out first,
 * as `held` keeps the next pause's bytes. */
void sf_push(weft_stream *s, int dir, struct evbuffer *src, size_t from) {
    weft_dir *d = stream_dir(s, dir);
    d->used = true; /* the filters' buffer calls may add bytes */
    struct evbuffer *chunk = src;
    if (src == d->held) {
        chunk = d->chunk;
        evbuffer_add_buffer(chunk, src);
    }
    bool end = d->end_in;
    const weft_chain_phase *p =
        phase(s, dir == WEFT_DIR_REQ ? WEFT_PH_REQ_BODY : WEFT_PH_RESP_BODY);
    weft_stream *h = stream_handle(s);
    for (uint32_t k = first_step(p, from); k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        size_t pos = st->pos, idx = st->idx;
        /* a pause in the body phase is always at a filter with the hook */
        bool holding = d->paused_at == (int)pos && !d->paused_headers;
        if (holding) {
            evbuffer_add_buffer(d->held, chunk);
            if (evbuffer_get_length(d->held) > stream_high_watermark(s)) {
                buffer_overflow(s, dir);
                return;
            }
        }
        struct evbuffer *view = holding ? d->held : chunk;
        if (!end && !evbuffer_get_length(view))
            return; /* nothing to show this filter yet */
        weft_status (*hook)(void *, weft_stream *, weft_buffer *, bool) =
            (weft_status(*)(void *, weft_stream *, weft_buffer *, bool))st->fn;
        uint32_t replies = s->n_replies;
        s->running = (int)idx;
        weft_status st_ = checked(s, idx, replies, hook(s->fctx[idx], h, (weft_buffer *)view, end));
        s->running = -1;
        settle_token(s, d, idx, st_ == WEFT_STOP);
        if (st_ == WEFT_REPLIED ||
            (dir == WEFT_DIR_REQ && ((s->resp_done && !s->resp_started) || s->local_reply)) ||
            (dir == WEFT_DIR_RESP && s->resp_done) || s->t_end_us)
            return;
        if (st_ == WEFT_STOP) {
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
    const weft_chain_phase *p = phase(s, WEFT_PH_ATTEMPT);
    if (!s->fctx || !p->n)
        return;
    /* A filter built against the 1.0 header (its ops table ends at
     * on_stream_complete) is handed the 1.0 struct's size. */
    weft_attempt_info old = *info;
    old.size = offsetof(weft_attempt_info, region);
    weft_stream *h = stream_handle(s);
    for (uint32_t k = 0; k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        void (*hook)(void *, weft_stream *, const weft_attempt_info *) =
            (void (*)(void *, weft_stream *, const weft_attempt_info *))st->fn;
        s->running = (int)st->idx;
        hook(s->fctx[st->idx], h, st->attempt_1_0 ? &old : info);
        s->running = -1;
        if (s->resp_done)
            return;
    }
}

void sf_up_request(weft_stream *s, uint32_t attempt) {
    const weft_chain_phase *p = phase(s, WEFT_PH_UP_REQUEST);
    if (!s->fctx)
        return;
    weft_stream *h = stream_handle(s);
    for (uint32_t k = 0; k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        void (*hook)(void *, weft_stream *, uint32_t) =
            (void (*)(void *, weft_stream *, uint32_t))st->fn;
        s->running = (int)st->idx;
        hook(s->fctx[st->idx], h, attempt);
        s->running = -1;
        settle_token(s, NULL, st->idx, false); /* cannot pause */
        if (stream_answered(s))
            return;
    }
}

void sf_log(weft_stream *s) {
    s->log_phase = true;
    const weft_chain_phase *p = phase(s, WEFT_PH_COMPLETE);
    if (!p->n)
        return; /* no filter has on_stream_complete: no facts to gather */
    /* every field set at once (no memset, then the stores) */
    weft_stream_info info = {
        .size = sizeof(info),
        .status = s->status_sent,
        .duration_us = s->t_end_us - s->t_start_us,
        .upstream_time_us =
            s->t_up_head_us && s->t_up_start_us ? s->t_up_head_us - s->t_up_start_us : 0,
        .bytes_received = s->bytes_in,
        .bytes_sent = s->bytes_out,
        .attempts = s->attempts,
        .response_flags = WEFT_STR("-"), /* no flag: what weft_response_flags_str writes */
        .upstream_host = {"", 0},
        .cluster = {"", 0},
        .local_reply = s->local_reply,
        .local_reply_reason = {"", 0},
    };
    char flags[64];
    if (s->flags)
        info.response_flags =
            (weft_str){flags, weft_response_flags_str(s->flags, flags, sizeof(flags))};
    if (s->att.ep)
        info.upstream_host = (weft_str){s->att.ep->name, strlen(s->att.ep->name)};
    if (s->cluster)
        info.cluster =
            (weft_str){s->cluster->shared->cfg->name, strlen(s->cluster->shared->cfg->name)};
    if (s->local_reply && s->reason)
        info.local_reply_reason = (weft_str){s->reason, strlen(s->reason)};
    weft_stream *h = stream_handle(s);
    weft_stream_handle_prime(s, s->handle);
    void **fctx = s->fctx; /* the log phase ends nothing: it stays */
    /* 1.2: each filter's per-route config (weft_route_config's answer) */
    void *const *rcfg = s->matched ? s->matched->filter_cfg : NULL;
    /* running names the filter of each hook; no hook runs between two */
    for (const weft_chain_step *st = p->steps, *end = st + p->n; st < end; st++) {
        void (*hook)(void *, weft_stream *, const weft_stream_info *) =
            (void (*)(void *, weft_stream *, const weft_stream_info *))st->fn;
        info.route_config = rcfg ? rcfg[st->idx] : NULL;
        s->running = (int)st->idx;
        hook(fctx ? fctx[st->idx] : NULL, h, &info);
    }
    s->running = -1;
}

void sf_end(weft_stream *s) {
    weft_filter_stream_cancel_async(s);
    if (!s->fctx)
        return;
    const weft_chain_phase *p = phase(s, WEFT_PH_STREAM_DESTROY);
    for (uint32_t k = 0; k < p->n; k++) {
        const weft_chain_step *st = &p->steps[k];
        if (s->fctx[st->idx])
            ((void (*)(void *))st->fn)(s->fctx[st->idx]);
    }
    s->fctx = NULL;
}
