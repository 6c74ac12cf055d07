/* stream_internal.h: what stream.c (exchange and upstream) and
 * stream_filters.c (the filter pipeline) share. Private to core/http and
 * core/filter. */
#ifndef WEFT_HTTP_STREAM_INTERNAL_H
#define WEFT_HTTP_STREAM_INTERNAL_H

#include <event2/buffer.h>

#include "filter/handles.h"
#include "http/stream.h"

enum { WEFT_DIR_REQ = 0, WEFT_DIR_RESP = 1 };

static inline weft_dir *stream_dir(weft_stream *s, int dir) {
    return dir == WEFT_DIR_REQ ? &s->rq : &s->rs;
}
/* What filter code gets for s: its handle (filter/handles.h). */
static inline weft_stream *stream_handle(const weft_stream *s) {
    return (weft_stream *)(uintptr_t)s->handle;
}
/* The stream of a filter's handle (filter/handles.h): the decode cache's
 * hit inline, the table lookup out of line. */
static inline weft_result weft_stream_from_handle(weft_stream *h, weft_stream **out) {
    uint64_t hv = (uint64_t)(uintptr_t)h;
    if (hv && hv == weft_tl_handle.h) {
        weft_stream *s = weft_tl_handle.s;
        if (s->handle == hv && s->magic == WEFT_STREAM_MAGIC && s->active) {
            *out = s;
            return WEFT_OK;
        }
    }
    return weft_stream_from_handle_slow(h, out);
}
static inline size_t stream_n_filters(const weft_stream *s) {
    return s->chain ? s->chain->n_http : 0;
}

static const weft_sv H_XFF = WEFT_SV_LIT("x-forwarded-for");
static const weft_sv H_XFP = WEFT_SV_LIT("x-forwarded-proto");
static const weft_sv H_VIA = WEFT_SV_LIT("via");
static const weft_sv H_RID = WEFT_SV_LIT("x-request-id");
static const weft_sv H_HOST = WEFT_SV_LIT("host");
static const weft_sv H_TE = WEFT_SV_LIT("transfer-encoding");
static const weft_sv H_EXPECT = WEFT_SV_LIT("expect");
static const weft_sv H_CT = WEFT_SV_LIT("content-type");
static const weft_sv H_CL = WEFT_SV_LIT("content-length");

/* The request is answered: a response is done, a local reply is in the
 * response hooks (or sent), or the exchange ended (a reset). Nothing more
 * of the request goes through the chain or upstream. */
static inline bool stream_answered(const weft_stream *s) {
    return s->resp_done || s->local_reply || s->t_end_us;
}

static inline size_t stream_buf_len(const struct evbuffer *b) {
    return b ? evbuffer_get_length(b) : 0;
}

/* The bytes waiting in d->pre: none while the direction is unused (every
 * write into pre/held/chunk sets d->used first, stream_dir_reset drains
 * them and clears it), so the usual exchange makes no libevent call. */
static inline size_t stream_pre_len(const weft_dir *d) {
    return d->used ? stream_buf_len(d->pre) : 0;
}

/* stream.c */
enum { STREAM_DEFER_RETRY = 1 << 0 };
/* Runs `what` from the worker loop, outside every hook and callback. */
void stream_defer(weft_stream *s, unsigned what);
void stream_dir_reset(weft_dir *d);
/* Forgets the previous attempt's response: head, trailers, body buffers,
 * the response direction's filter state (a retry starts it afresh). */
void stream_reset_response(weft_stream *s);
void stream_arm_idle(weft_stream *s);            /* stream idle timeout from now */
void stream_arm_request_timeout(weft_stream *s); /* route timeout / gRPC deadline */
void stream_req_write_end(weft_stream *s);       /* end of the request toward upstream */

/* stream_reply.c */
void stream_send_head(weft_stream *s, weft_resp_head *h, bool end); /* counted */
void stream_redirect_reply(weft_stream *s);
void stream_direct_reply(weft_stream *s);

/* stream_rewrite.c */
void stream_gen_request_id(weft_stream *s);
/* Normalizes the request path (listener options); false when it answered
 * the request itself (400, or a redirect). */
bool stream_normalize_path(weft_stream *s);
void stream_prepare_upstream_headers(weft_stream *s);
uint64_t stream_grpc_timeout_ms(const weft_hdrs *h); /* grpc-timeout, 0 none */

/* stream_upstream.c */
struct evbuffer *stream_tunnel_dst(weft_stream *s);
/* stream_up_ops.c: the ops of the stream's cluster (or the test ops). */
const weft_upstream_ops *stream_upstream_ops(const weft_stream *s);
void stream_check_up_backpressure(weft_stream *s);
void stream_write_up_head(weft_stream *s, struct evbuffer *out);
void stream_start_upstream(weft_stream *s, bool allow_idle);
void stream_attempt_info(weft_stream *s, weft_attempt_info *ai, weft_attempt_result r, int status);
bool stream_do_retry(weft_stream *s);
void stream_on_backoff(weft_stream *s);           /* a delayed retry's wait ended */
void stream_arm_try_timeout(weft_stream *s);      /* per-try timeout from now */
void stream_prepare_attempt_head(weft_stream *s); /* on_upstream_request, the attempt's head */
static inline weft_req_head *stream_up_req(const weft_stream *s) {
    return s->up_req ? s->up_req : s->req;
}
void stream_deferred_retry(weft_stream *s);

/* stream.c */
/* The filter pipeline's buffers, on first use (made once per stream
 * object: the check inline). */
void stream_dir_buffers_make(weft_stream *s);
static inline void stream_dir_buffers(weft_stream *s) {
    if (!s->dir_bufs)
        stream_dir_buffers_make(s);
}
void stream_up_release(weft_stream *s, bool reusable); /* detach the upstream (h1 or h2) */
void stream_up_pause(weft_stream *s);
void stream_up_resume(weft_stream *s);
static inline bool stream_up_attached(const weft_stream *s) {
    return s->up != NULL;
}
void stream_route_and_forward(weft_stream *s); /* after the request header phase */
void stream_sink_req(weft_stream *s, struct evbuffer *chunk, bool end);
void stream_send_resp_head(weft_stream *s); /* after the response header phase */
void stream_sink_resp(weft_stream *s, struct evbuffer *chunk, bool end);
void stream_finish(weft_stream *s);
uint32_t stream_high_watermark(const weft_stream *s);

/* stream_filters.c */
void sf_begin(weft_stream *s); /* stream_create for each filter */
void sf_end(weft_stream *s);   /* timers, callouts, stream_destroy */
void sf_req_headers(weft_stream *s, size_t from);
void sf_resp_headers(weft_stream *s, size_t from);
/* Runs body through chain positions from..n-1 (taking src's bytes), then
 * the sink. end = the direction's source has ended. */
void sf_push(weft_stream *s, int dir, struct evbuffer *src, size_t from);
void sf_attempt(weft_stream *s, const weft_attempt_info *info);
void sf_up_request(weft_stream *s, uint32_t attempt); /* on_upstream_request */
void sf_log(weft_stream *s);
/* Some filter of the stream's chain has phase ph's hook (WEFT_PH_*). */
static inline bool sf_has(const weft_stream *s, int ph) {
    return s->chain && s->chain->phase[ph].n;
}

/* A timer or callout callback of filter `idx` runs between these two: the
 * host calls it makes are attributed to that filter, and resume is allowed
 * (it is refused inside hooks). The stream may have ended by the time the
 * callback returns: then nothing is restored. */
typedef struct stream_cb_frame {
    int running;
    bool async;
} stream_cb_frame;

static inline stream_cb_frame stream_cb_enter(weft_stream *s, int idx) {
    stream_cb_frame f = {s->running, s->in_async_cb};
    s->running = idx;
    s->in_async_cb = true;
    return f;
}

static inline void stream_cb_leave(weft_stream *s, stream_cb_frame f) {
    if (s->magic == WEFT_STREAM_MAGIC && s->active) {
        s->running = f.running;
        s->in_async_cb = f.async;
    }
}

/* core/filter/filter_host.c: cancels the stream's timers and callouts. */
void weft_filter_stream_cancel_async(weft_stream *s);

#endif
