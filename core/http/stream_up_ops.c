/* stream_up_ops.c: the two kinds of upstream a stream can use, behind one
 * ops table (weft_upstream_ops, stream.h), so the exchange code never asks
 * which protocol the upstream speaks: an HTTP/1.1 connection from the
 * per-worker pool (pool.c), or a stream on a multiplexed HTTP/2 client
 * session (h2_pool.c). TLS upstreams and shadow requests will be further
 * kinds; tests plug in a fake one (weft_upstream_test_ops). */
#include "http/stream_internal.h"

#include <event2/buffer.h>

#include "upstream/h2_pool.h"

const weft_upstream_ops *weft_upstream_test_ops;

/* What the upstream layer reports, delivered to the stream. */
static void ev_connected(void *o) {
    weft_stream_on_up_connected(o);
}
static int ev_head(void *o, weft_resp_head *h) {
    return weft_stream_on_up_head(o, h);
}
static int ev_body(void *o, const char *p, size_t n) {
    return weft_stream_on_up_body(o, p, n);
}
static int ev_trailers(void *o, weft_hdrs *t) {
    return weft_stream_on_up_trailers(o, t);
}
static int ev_complete(void *o) {
    return weft_stream_on_up_complete(o);
}
static void ev_error(void *o, weft_up_err err) {
    weft_stream_on_up_error(o, err);
}
static void ev_writable(void *o) {
    weft_stream_on_up_writable(o);
}
static void ev_feed_end(void *o) {
    weft_stream_on_up_feed_end(o);
}
static void ev_tunnel_data(void *o, struct evbuffer *in) {
    weft_stream_tunnel_up(o, in);
}

static const weft_up_events stream_events = {
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

static weft_up_user stream_user(weft_stream *s) {
    return (weft_up_user){.owner = s,
                          .ev = &stream_events,
                          .arena = &s->arena,
                          .req = stream_up_req(s),
                          .target = s->up_target,
                          .high_watermark = stream_high_watermark(s)};
}

/* ---------- HTTP/1.1: a pooled connection ---------- */

static weft_upconn *uc_of(weft_stream *s) {
    return s->up;
}

static bool h1_start(weft_stream *s, const weft_endpoint *ep, bool allow_idle) {
    bool reused = false;
    weft_up_user u = stream_user(s);
    s->up = weft_pool_acquire(s->w, s->cluster->shared, ep, &u, allow_idle, &reused);
    return s->up != NULL;
}

static bool h1_connected(weft_stream *s) {
    return uc_of(s)->connected;
}

/* Request bytes go to the connection once it is connected; before that
 * they wait in the stream's up_pending (which is what lets a failed
 * connect be retried elsewhere without replaying anything). */
static struct evbuffer *h1_out(weft_stream *s) {
    weft_upconn *uc = uc_of(s);
    return uc && uc->connected ? weft_upconn_output(uc) : s->up_pending;
}

static void h1_restart(weft_stream *s, struct evbuffer *unsent) {
    (void)s; /* the bytes wait in up_pending */
    (void)unsent;
}

static void h1_send_body(weft_stream *s, struct evbuffer *chunk) {
    if (s->up_req_chunked)
        weft_h1_write_chunk_buf(h1_out(s), chunk, false);
    else
        evbuffer_add_buffer(h1_out(s), chunk);
}

static void h1_send_data(weft_stream *s, const char *p, size_t n) {
    if (s->up_req_chunked)
        weft_h1_write_chunk(h1_out(s), p, n);
    else
        evbuffer_add(h1_out(s), p, n);
}

static void h1_send_end(weft_stream *s, const weft_hdrs *trailers) {
    if (s->up_req_chunked)
        weft_h1_write_last_chunk(h1_out(s), (weft_hdrs *)trailers);
}

static size_t h1_pending(weft_stream *s) {
    return evbuffer_get_length(h1_out(s));
}
static void h1_pause(weft_stream *s) {
    weft_upconn_pause_read(uc_of(s));
}
static void h1_resume(weft_stream *s) {
    weft_upconn_resume_read(uc_of(s));
}
static void h1_release(weft_stream *s, bool reusable) {
    weft_upconn_release(uc_of(s), reusable);
}

/* A pooled connection the server had closed: reset before any byte of
 * the response, on a connection that served requests before. */
static bool h1_unprocessed(weft_stream *s) {
    weft_upconn *uc = uc_of(s);
    return uc->requests > 0 && !uc->got_bytes;
}

static void h1_connected_flush(weft_stream *s) {
    if (evbuffer_get_length(s->up_pending))
        evbuffer_add_buffer(weft_upconn_output(uc_of(s)), s->up_pending);
}

static struct evbuffer *h1_tunnel_out(weft_stream *s) {
    return weft_upconn_output(uc_of(s));
}
static void h1_tunnel_begin(weft_stream *s) {
    uc_of(s)->tunnel = true;
}
static void h1_shutdown_write(weft_stream *s) {
    weft_conn_shutdown_write(uc_of(s)->conn);
}

static const weft_upstream_ops h1_ops = {
    .name = "http1",
    .start = h1_start,
    .connected = h1_connected,
    .connected_flush = h1_connected_flush,
    .restart = h1_restart,
    .send_body = h1_send_body,
    .send_data = h1_send_data,
    .send_end = h1_send_end,
    .pending = h1_pending,
    .pause = h1_pause,
    .resume = h1_resume,
    .release = h1_release,
    .unprocessed = h1_unprocessed,
    .tunnel_out = h1_tunnel_out,
    .tunnel_begin = h1_tunnel_begin,
    .shutdown_write = h1_shutdown_write,
    .gathers_reads = true,
    .keeps_unsent = true,
};

/* ---------- HTTP/2: a stream on a client session ---------- */

static weft_h2up_stream *us_of(weft_stream *s) {
    return s->up;
}

static bool h2_start(weft_stream *s, const weft_endpoint *ep, bool allow_idle) {
    (void)allow_idle;
    /* The request goes as frames, not the HTTP/1.1 bytes prepared for a
     * pooled connection. */
    evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
    weft_up_user u = stream_user(s);
    s->up = weft_h2up_start(s->w, &u, s->cluster->shared, ep, s->req->framing != WEFT_BODY_NONE);
    return s->up != NULL;
}

static bool h2_connected(weft_stream *s) {
    (void)s;
    return false; /* h2_pool reports nothing through on_up_connected */
}

/* A new stream for the same request: the body the failed connect took
 * back, or the kept body, again; and its end. */
static void h2_restart(weft_stream *s, struct evbuffer *unsent) {
    if (unsent) {
        weft_h2up_body(us_of(s), unsent);
    } else if (s->req->framing != WEFT_BODY_NONE && s->replay && !s->replay_overflow) {
        struct evbuffer *copy = evbuffer_new();
        if (copy) {
            evbuffer_add_buffer_reference(copy, s->replay);
            weft_h2up_body(us_of(s), copy);
            evbuffer_free(copy);
        }
    }
    if (s->req_done) {
        weft_h2up_end(us_of(s), s->rq.trailers);
        s->up_req_done = true;
    }
}

static void h2_send_body(weft_stream *s, struct evbuffer *chunk) {
    weft_h2up_body(us_of(s), chunk);
}
static void h2_send_data(weft_stream *s, const char *p, size_t n) {
    weft_h2up_body_data(us_of(s), p, n);
}
static void h2_send_end(weft_stream *s, const weft_hdrs *t) {
    weft_h2up_end(us_of(s), t);
}
static size_t h2_pending(weft_stream *s) {
    return weft_h2up_pending(us_of(s));
}
static void h2_pause(weft_stream *s) {
    weft_h2up_pause(us_of(s));
}
static void h2_resume(weft_stream *s) {
    weft_h2up_resume(us_of(s));
}
static void h2_release(weft_stream *s, bool reusable) {
    (void)reusable;
    weft_h2up_release(us_of(s));
}
/* The body of a stream whose connection never came up: it was not sent,
 * so the stream keeps it for the next endpoint (nothing is lost, whatever
 * the method, and no replay buffer is needed). */
static struct evbuffer *h2_take_unsent(weft_stream *s) {
    struct evbuffer *b = evbuffer_new();
    if (b && !weft_h2up_take_unsent(us_of(s), b)) {
        evbuffer_free(b);
        b = NULL;
    }
    return b;
}

/* Refused (REFUSED_STREAM, or above a GOAWAY's last stream id). */
static bool h2_unprocessed(weft_stream *s) {
    return weft_h2up_refused(us_of(s));
}

static const weft_upstream_ops h2_ops = {
    .name = "http2",
    .start = h2_start,
    .connected = h2_connected,
    .restart = h2_restart,
    .take_unsent = h2_take_unsent,
    .send_body = h2_send_body,
    .send_data = h2_send_data,
    .send_end = h2_send_end,
    .pending = h2_pending,
    .pause = h2_pause,
    .resume = h2_resume,
    .release = h2_release,
    .unprocessed = h2_unprocessed,
};

const weft_upstream_ops *stream_upstream_ops(const weft_stream *s) {
    if (weft_upstream_test_ops)
        return weft_upstream_test_ops;
    weft_upstream_protocol p = s->cluster->shared->cfg->protocol;
    /* auto: HTTP/2 to an endpoint whose handshake picked ALPN h2 before. */
    bool h2 =
        p == WEFT_PROTO_HTTP2 || (p == WEFT_PROTO_AUTO && s->att.ep && weft_endpoint_h2(s->att.ep));
    return h2 ? &h2_ops : &h1_ops;
}
