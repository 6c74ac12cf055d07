/* h1_downstream.c: client-side HTTP/1.1 connections (see h1_downstream.h). */
#include "http/h1/h1_downstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "http/h1/h1_codec.h"
#include "filter/transport.h"
#include "http/h2/h2_downstream.h"
#include "http/stream.h"
#include "common/ltimer.h"
#include "net/conn.h"

#define LINGER_MS 2000
#define WEFT_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h and ip6_tables.h (IP6T_) */
/* Drain: an HTTP/1.1 connection with no request in flight is closed after
 * this long without one (a request that comes first is answered with
 * Connection: close). Closing an idle connection races with a request the
 * client may be sending; a client that just had a response usually sends
 * its next request at once, so it gets an answer instead of an EOF. */
#define DRAIN_IDLE_MS 1000

/* The state of one HTTP/1.1 request: the stream and the parser. Made
 * when a request starts (its first byte) and released when the exchange
 * ends and no pipelined bytes wait, so that an idle keep-alive connection
 * holds none of it. Released ones wait on a per-worker list (at most
 * H1X_CACHE) for the next request of any connection of the worker. */
typedef struct h1x {
    weft_stream stream;
    weft_h1_parser *parser;
    struct h1x *next; /* in the worker's list */
} h1x;
#define H1X_CACHE 256

struct weft_dconn {
    weft_worker *w;
    const char *listener_name; /* in the config of ws (held) */
    weft_conn *conn;
    h1x *x;                   /* the current request's state; NULL between requests */
    struct event ev_deferred; /* runs after done()/reset()/resume outside callbacks */
    weft_ltimer timer;        /* keep-alive idle, request headers, lingering close */
    weft_dconn *prev, *next;
    weft_hdrs *req_trailers;
    weft_h1_limits limits;
    uint64_t headers_timeout_ms, idle_timeout_ms;
    uint32_t requests;
    bool exchange_done; /* stream finished; deferred handler moves on */
    bool closing;       /* close once the output is flushed */
    bool reset_now;     /* close now, drop pending output */
    bool lingering;     /* write side shut; discarding input until EOF */
    bool read_paused;
    bool chunked_out;
    bool head_timer; /* ev_timer currently measures the request head */
    bool in_process;
    bool unread;               /* the last request's body was not read whole */
    weft_wsnap *ws;            /* the snapshot the connection was accepted on (its
                                  transport chain lives there) */
    struct weft_connection tc; /* facts + transport filter state */
    struct event *ev_tx;       /* runs the transport chain on codec output; made only
                                  on a listener with transport filters (idle footprint) */
    weft_h2_session *h2;       /* set when the connection speaks HTTP/2 */
    bool sniffed;              /* the protocol was decided (preface or not) */
    bool tclose;               /* a transport filter closes: flush, then free */
};

/* With transport filters the codec reads and writes the top of the
 * transport chain; without, the socket buffers directly. */
static struct evbuffer *dc_in(weft_dconn *dc) {
    return dc->tc.n ? weft_transport_codec_in(&dc->tc) : weft_conn_input(dc->conn);
}
static struct evbuffer *dc_out(weft_dconn *dc) {
    return dc->tc.n ? weft_transport_codec_out(&dc->tc) : weft_conn_output(dc->conn);
}

static void dconn_process(weft_dconn *dc);
static void dconn_free(weft_dconn *dc);

static weft_dconn *ds_of(weft_stream *s) {
    return s->ds;
}

static void arm_timer(weft_dconn *dc, uint64_t ms) {
    weft_ltimer_set(&dc->timer, ms);
}

/* Keep-alive idle timeout: while draining, at most DRAIN_IDLE_MS. */
static uint64_t idle_ms(const weft_dconn *dc) {
    if (!dc->w->draining)
        return dc->idle_timeout_ms;
    return dc->idle_timeout_ms && dc->idle_timeout_ms < DRAIN_IDLE_MS ? dc->idle_timeout_ms
                                                                      : DRAIN_IDLE_MS;
}

static void schedule(weft_dconn *dc) {
    event_active(&dc->ev_deferred, EV_TIMEOUT, 0);
}

/* ---------- response writing (weft_downstream_ops) ---------- */

static void op_reset(weft_stream *s);

static void op_send_head(weft_stream *s, weft_resp_head *h, bool end_stream) {
    weft_dconn *dc = ds_of(s);
    struct evbuffer *out = dc_out(dc);
    const weft_req_head *req = s->req;
    bool client_11 = !req || req->http_minor >= 1;
    dc->chunked_out = false;
    if (!end_stream && h->framing != WEFT_BODY_LENGTH) {
        if (client_11) {
            weft_hdrs_add_ref_checked(&h->headers, WEFT_SV_LIT("transfer-encoding"),
                                      WEFT_SV_LIT("chunked"));
            dc->chunked_out = true;
        } else {
            s->close_after = true; /* HTTP/1.0 client: body ends with the connection */
        }
    }
    if (dc->w->draining)
        s->close_after = true;
    if (s->close_after)
        weft_hdrs_set(&h->headers, WEFT_SV_LIT("connection"), WEFT_SV_LIT("close"));
    else if (!client_11)
        weft_hdrs_set(&h->headers, WEFT_SV_LIT("connection"), WEFT_SV_LIT("keep-alive"));
    weft_resp_head out_head = *h;
    out_head.http_minor = 1;
    if (weft_h1_write_resp_head(out, &out_head) < 0) {
        /* A head the writer refuses (bytes no HTTP/1.1 head may carry, from
         * the upstream's HTTP/2 or a filter): the client must not wait for
         * it, so the connection is reset and the log says why. */
        WEFT_WARN("response head refused by the HTTP/1.1 writer (status %u): connection reset",
                  (unsigned)h->status);
        s->flags |= WEFT_RF_LR;
        s->reason = "response_head_invalid";
        s->close_after = true;
        op_reset(s);
    }
}

static void op_send_continue(weft_stream *s) {
    static const char c100[] = "HTTP/1.1 100 Continue\r\n\r\n";
    evbuffer_add(dc_out(ds_of(s)), c100, sizeof(c100) - 1);
}

static void op_send_body(weft_stream *s, const char *p, size_t n) {
    weft_dconn *dc = ds_of(s);
    if (!n || s->head_request)
        return;
    struct evbuffer *out = dc_out(dc);
    if (dc->chunked_out)
        weft_h1_write_chunk(out, p, n);
    else
        evbuffer_add(out, p, n);
}

static void op_send_body_buf(weft_stream *s, struct evbuffer *buf) {
    weft_dconn *dc = ds_of(s);
    size_t n = evbuffer_get_length(buf);
    if (!n || s->head_request) {
        evbuffer_drain(buf, n);
        return;
    }
    struct evbuffer *out = dc_out(dc);
    if (dc->chunked_out)
        weft_h1_write_chunk_buf(out, buf, false);
    else
        evbuffer_add_buffer(out, buf);
}

static void op_send_end(weft_stream *s, weft_hdrs *trailers) {
    weft_dconn *dc = ds_of(s);
    if (dc->chunked_out && !s->head_request)
        weft_h1_write_last_chunk(dc_out(dc), trailers);
    dc->chunked_out = false;
}

static size_t op_pending_out(weft_stream *s) {
    weft_dconn *dc = ds_of(s);
    size_t n = evbuffer_get_length(weft_conn_output(dc->conn));
    return dc->tc.n ? n + evbuffer_get_length(dc_out(dc)) : n;
}

static void op_pause_read(weft_stream *s) {
    weft_dconn *dc = ds_of(s);
    dc->read_paused = true;
    weft_conn_read_enable(dc->conn, false);
}

static void op_resume_read(weft_stream *s) {
    weft_dconn *dc = ds_of(s);
    dc->read_paused = false;
    weft_h1_parser_resume(dc->x->parser);
    weft_conn_read_enable(dc->conn, true);
    schedule(dc);
}

static void op_done(weft_stream *s) {
    weft_dconn *dc = ds_of(s);
    dc->exchange_done = true;
    if (s->close_after)
        dc->closing = true;
    schedule(dc);
}

static void op_reset(weft_stream *s) {
    weft_dconn *dc = ds_of(s);
    dc->reset_now = true;
    schedule(dc);
}

static const weft_conn_facts *op_facts(weft_stream *s) {
    return &ds_of(s)->tc.facts;
}

static const weft_downstream_ops h1_ops = {
    .send_head = op_send_head,
    .send_continue = op_send_continue,
    .send_body = op_send_body,
    .send_body_buf = op_send_body_buf,
    .send_end = op_send_end,
    .pending_out = op_pending_out,
    .pause_read = op_pause_read,
    .resume_read = op_resume_read,
    .done = op_done,
    .reset = op_reset,
    .facts = op_facts,
};

/* ---------- request parsing ---------- */

static int cb_req_head(void *ud, weft_req_head *req) {
    weft_dconn *dc = ud;
    dc->head_timer = false;
    weft_ltimer_clear(&dc->timer);
    dc->requests++;
    weft_stream_on_req_head(&dc->x->stream, req);
    return dc->read_paused ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
}

static int cb_body(void *ud, const char *p, size_t n) {
    weft_dconn *dc = ud;
    weft_stream_on_req_body(&dc->x->stream, p, n);
    return dc->read_paused ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
}

static int cb_trailers(void *ud, weft_hdrs *t) {
    weft_dconn *dc = ud;
    dc->req_trailers = t;
    return WEFT_H1_CB_OK;
}

static int cb_complete(void *ud) {
    weft_dconn *dc = ud;
    weft_stream_on_req_end(&dc->x->stream, dc->req_trailers);
    return WEFT_H1_CB_OK;
}

static const weft_h1_callbacks req_cbs = {
    .on_req_head = cb_req_head,
    .on_body = cb_body,
    .on_trailers = cb_trailers,
    .on_complete = cb_complete,
};

static weft_listener_snap *find_listener(weft_wsnap *ws, const char *name) {
    for (size_t i = 0; i < ws->snap->cfg->n_listeners; i++)
        if (strcmp(ws->snap->listeners[i].cfg->name, name) == 0)
            return &ws->snap->listeners[i];
    return NULL;
}

/* ---------- request state (h1x) ---------- */

static bool dc_active(const weft_dconn *dc) {
    return dc->x && dc->x->stream.active;
}

/* The connection's request state, from the worker's list or new. */
static h1x *x_acquire(weft_dconn *dc) {
    if (dc->x)
        return dc->x;
    weft_worker *w = dc->w;
    h1x *x = w->h1x_cache;
    if (x) {
        w->h1x_cache = x->next;
        w->h1x_cached--;
        weft_h1_parser_reset(x->parser, &dc->limits, dc);
        x->stream.ds = dc;
    } else {
        x = malloc(sizeof(*x));
        if (!x)
            return NULL;
        x->parser = weft_h1_parser_new(WEFT_H1_REQUEST, &dc->limits, &req_cbs, dc);
        if (!x->parser) {
            free(x);
            return NULL;
        }
        weft_stream_init(&x->stream, w, &h1_ops, dc);
    }
    x->next = NULL;
    x->stream.peer_ip = dc->tc.peer_ip;
    dc->x = x;
    return x;
}

static void x_destroy(h1x *x) {
    weft_stream_destroy(&x->stream);
    weft_h1_parser_free(x->parser);
    free(x);
}

/* Gives the request state back (the exchange is over: ended or never
 * begun): to the worker's list, or freed when the list is full. */
static void x_release(weft_dconn *dc) {
    h1x *x = dc->x;
    if (!x)
        return;
    dc->x = NULL;
    weft_stream_end(&x->stream);
    weft_worker *w = dc->w;
    if (w->h1x_cached >= H1X_CACHE) {
        x_destroy(x);
        return;
    }
    x->stream.ds = NULL;
    x->next = w->h1x_cache;
    w->h1x_cache = x;
    w->h1x_cached++;
}

void weft_h1_cache_free(weft_worker *w) {
    while (w->h1x_cache) {
        h1x *x = w->h1x_cache;
        w->h1x_cache = x->next;
        x_destroy(x);
    }
    w->h1x_cached = 0;
}

static bool begin_exchange(weft_dconn *dc) {
    weft_listener_snap *lst = find_listener(dc->w->cur, dc->listener_name);
    if (!lst)
        return false; /* the listener left the config: stop serving here */
    h1x *x = x_acquire(dc);
    if (!x)
        return false;
    dc->req_trailers = NULL;
    x->stream.tls = dc->tc.facts.tls; /* a transport filter's handshake said TLS */
    weft_stream_begin(&x->stream, lst, dc->w->cur);
    weft_h1_parser_next(x->parser, &x->stream.arena, 0);
    dc->head_timer = true;
    arm_timer(dc, dc->headers_timeout_ms);
    return true;
}

static void protocol_error(weft_dconn *dc) {
    weft_stream *s = &dc->x->stream;
    uint16_t status = weft_h1_parser_error_status(dc->x->parser);
    const char *reason = weft_h1_parser_error_reason(dc->x->parser);
    weft_stats_inc(dc->w->stats, s->lst->rq_rejected, 1);
    s->close_after = true;
    dc->closing = true;
    weft_conn_read_enable(dc->conn, false);
    weft_stream_local_reply(s, status ? status : 400, reason ? reason : "h1_protocol_error",
                            WEFT_RF_DPE, NULL);
    if (s->active && !s->t_end_us) {
        /* local_reply finishes once it knows the request is over; it is. */
        s->req_done = true;
        weft_stream_on_req_end(s, NULL);
    }
}

/* ---------- HTTP/2 (the connection began with the h2 preface) ---------- */

static struct evbuffer *h2_out(void *ctx) {
    return dc_out(ctx);
}
static weft_listener_snap *h2_listener(void *ctx) {
    weft_dconn *dc = ctx;
    return find_listener(dc->w->cur, dc->listener_name);
}
static const weft_conn_facts *h2_facts(void *ctx) {
    return &((weft_dconn *)ctx)->tc.facts;
}
static void h2_activity(void *ctx) {
    weft_dconn *dc = ctx;
    arm_timer(dc, dc->idle_timeout_ms);
}
static void h2_finished(void *ctx) {
    weft_dconn *dc = ctx;
    dc->closing = true;
    schedule(dc);
}

/* Bytes that begin like the HTTP/2 client preface ("PRI ") but are not
 * it: an HTTP/2 client with a broken preface, answered in HTTP/2 (RFC 9113
 * 3.4): the server preface (an empty SETTINGS) and GOAWAY PROTOCOL_ERROR
 * with last stream id 0, then the connection closes (lingering: the
 * client may still be writing). */
static void bad_preface(weft_dconn *dc) {
    static const uint8_t frames[] = {
        0, 0, 0, 0x4, 0, 0, 0, 0, 0,                           /* SETTINGS, empty */
        0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1, /* GOAWAY 0 PROTOCOL_ERROR */
    };
    WEFT_DEBUG("http2: invalid connection preface from %s", dc->tc.peer_ip);
    struct evbuffer *in = dc_in(dc);
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_add(dc_out(dc), frames, sizeof(frames));
    dc->unread = true;
    dc->closing = true;
    schedule(dc);
}

/* Decides HTTP/1.1 or HTTP/2 from the first bytes: ALPN "h2" from a
 * transport filter, or the client preface (h2c with prior knowledge).
 * Returns false while it cannot tell yet. */
static bool sniff(weft_dconn *dc) {
    struct evbuffer *in = dc_in(dc);
    const char *alpn = dc->tc.facts.alpn;
    bool h2 = alpn && strcmp(alpn, "h2") == 0;
    if (!h2 && !(alpn && *alpn)) {
        char head[WEFT_H2_PREFACE_LEN];
        size_t n =
            evbuffer_copyout(in, head, sizeof(head)) > 0 ? (size_t)evbuffer_get_length(in) : 0;
        if (n > sizeof(head))
            n = sizeof(head);
        if (n && weft_h2_is_preface_prefix(head, n)) {
            if (n < WEFT_H2_PREFACE_LEN)
                return false; /* a prefix so far: wait for the rest */
            h2 = true;
        } else if (n >= 4 && memcmp(head, "PRI ", 4) == 0) {
            dc->sniffed = true;
            bad_preface(dc);
            return true;
        }
    }
    dc->sniffed = true;
    if (!h2)
        return true;
    weft_listener_snap *lst = find_listener(dc->w->cur, dc->listener_name);
    weft_h2_session_host host = {
        .ctx = dc,
        .w = dc->w,
        .out = h2_out,
        .listener = h2_listener,
        .facts = h2_facts,
        .activity = h2_activity,
        .finished = h2_finished,
        .peer_ip = dc->tc.peer_ip,
    };
    dc->h2 = lst ? weft_h2_session_new(&host, lst->cfg) : NULL;
    if (!dc->h2)
        dc->reset_now = true;
    else if (dc->w->draining)
        weft_h2_session_drain(dc->h2); /* accepted during the drain */
    return true;
}

static void dconn_process(weft_dconn *dc) {
    struct evbuffer *in = dc_in(dc);
    if (dc->in_process || dc->tclose)
        return;
    /* Before every handshake filter is done, the codec is not chosen and
     * the bytes wait at the top of the transport chain. */
    if (!weft_transport_ready(&dc->tc))
        return;
    if (!dc->sniffed && evbuffer_get_length(in) && !sniff(dc))
        return;
    if (dc->h2 || dc->reset_now) {
        if (dc->reset_now) {
            schedule(dc);
            return;
        }
        dc->in_process = true;
        if (weft_h2_session_recv(dc->h2, in) != 0) {
            dc->closing = true;
            schedule(dc);
        }
        dc->in_process = false;
        return;
    }
    if (dc_active(dc) && dc->x->stream.tunnel) {
        if (!dc->read_paused)
            weft_stream_tunnel_down(&dc->x->stream, in);
        return;
    }
    dc->in_process = true;
    while (
        !dc->closing && !dc->reset_now && !dc->read_paused && !dc->exchange_done &&
        (evbuffer_get_length(in) || (dc_active(dc) && weft_h1_parser_needs_feed(dc->x->parser)))) {
        if (!dc_active(dc)) {
            if (!begin_exchange(dc)) {
                dc->closing = true;
                break;
            }
        } else if (dc->x->stream.req_done) {
            break; /* pipelined: the next request waits for this response */
        }
        /* An empty feed lets the parser finish a message whose last byte
         * it already saw before a pause (llhttp completes on its next run). */
        struct evbuffer_iovec v = {NULL, 0};
        if (evbuffer_get_length(in) && evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t consumed = 0;
        weft_h1_result r =
            weft_h1_parser_feed(dc->x->parser, v.iov_base ? v.iov_base : "", v.iov_len, &consumed);
        evbuffer_drain(in, consumed);
        if (r == WEFT_H1_ERROR) {
            protocol_error(dc);
            break;
        }
        if (r == WEFT_H1_PAUSED || (r == WEFT_H1_OK && consumed == 0))
            break; /* paused, or the parser wants more than this segment */
    }
    dc->in_process = false;
}

/* ---------- connection lifecycle ---------- */

/* Unread request bytes would make close() send RST, which can destroy
 * the response still in flight to the client: shut the write side and
 * read until EOF for a little while instead (lingering close). HTTP/2
 * always lingers: the client may have frames in flight when the GOAWAY
 * goes out. */
static void close_or_linger(weft_dconn *dc) {
    if (!dc->lingering && !dc->unread && !dc->h2 && evbuffer_get_length(dc_in(dc)) == 0) {
        dconn_free(dc);
        return;
    }
    if (dc->lingering)
        return;
    dc->lingering = true;
    weft_conn_shutdown_write(dc->conn);
    struct evbuffer *in = dc_in(dc);
    evbuffer_drain(in, evbuffer_get_length(in));
    weft_conn_read_enable(dc->conn, true);
    arm_timer(dc, LINGER_MS);
}

static void maybe_close(weft_dconn *dc) {
    if (dc->reset_now || (dc->tclose && evbuffer_get_length(weft_conn_output(dc->conn)) == 0 &&
                          weft_transport_pending_out(&dc->tc) == 0)) {
        dconn_free(dc);
        return;
    }
    if (dc->h2) {
        if (dc->closing && evbuffer_get_length(dc_out(dc)) == 0 &&
            evbuffer_get_length(weft_conn_output(dc->conn)) == 0)
            close_or_linger(dc);
        return;
    }
    if (dc->closing && !dc_active(dc) && evbuffer_get_length(dc_out(dc)) == 0 &&
        evbuffer_get_length(weft_conn_output(dc->conn)) == 0)
        close_or_linger(dc);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg) {
    weft_dconn *dc = arg;
    if (dc->reset_now) {
        dconn_free(dc);
        return;
    }
    if (dc->tclose) {
        /* A transport filter closes with a flush: what its chain holds goes
         * out, then the connection is freed (a request in flight is reset
         * there); LINGER_MS bounds the wait for a slow peer. */
        weft_conn_read_enable(dc->conn, false);
        if (weft_transport_write(&dc->tc) != 0) {
            dconn_free(dc);
            return;
        }
        arm_timer(dc, LINGER_MS);
        maybe_close(dc);
        return;
    }
    if (dc->exchange_done) {
        dc->exchange_done = false;
        dc->unread = !dc->x->stream.req_done;
        bool close_after = dc->x->stream.close_after || dc->unread;
        /* The connection is between requests: its request state goes back
         * (a pipelined request takes it again right away). */
        x_release(dc);
        /* While draining a response said Connection: close, unless its
         * head went out before the drain: then the client may be sending
         * its next request already, which gets the Connection: close. */
        if (close_after)
            dc->closing = true;
        if (!dc->closing) {
            dc->head_timer = false;
            arm_timer(dc, idle_ms(dc));
            if (dc->read_paused) {
                dc->read_paused = false;
                weft_conn_read_enable(dc->conn, true);
            }
        }
    }
    if (dc->closing) {
        if (!dc->lingering) /* lingering reads until the client's EOF */
            weft_conn_read_enable(dc->conn, false);
        maybe_close(dc);
        return;
    }
    dconn_process(dc);
}

static void on_read(void *arg) {
    weft_dconn *dc = arg;
    if (dc->tc.n && !dc->lingering && weft_transport_read(&dc->tc) != 0) {
        dconn_free(dc);
        return;
    }
    if (dc->lingering) {
        struct evbuffer *in = dc_in(dc);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    dconn_process(dc);
}

static void on_write(void *arg) {
    weft_dconn *dc = arg;
    if (dc->h2)
        weft_h2_session_flush(dc->h2);
    if (dc_active(dc))
        weft_stream_on_downstream_writable(&dc->x->stream);
    maybe_close(dc);
}

static void on_event(void *arg, int what) {
    weft_dconn *dc = arg;
    if (what & (WEFT_CONN_EOF | WEFT_CONN_ERROR))
        dconn_free(dc);
}

static const weft_conn_cbs dconn_cbs = {on_read, on_write, on_event};

static void on_timer(void *arg) {
    weft_dconn *dc = arg;
    if (dc->tclose) {
        dconn_free(dc);
        return;
    }
    if (dc->h2 && !dc->lingering) {
        /* Idle means no stream running and no frame moved for the idle
         * timeout (this also ends a client that never opens its window). */
        if (weft_h2_session_active(dc->h2) &&
            evbuffer_get_length(weft_conn_output(dc->conn)) == 0) {
            arm_timer(dc, dc->idle_timeout_ms);
            return;
        }
        dconn_free(dc);
        return;
    }
    if (dc->lingering || !dc_active(dc) || !dc->head_timer ||
        !weft_h1_parser_in_message(dc->x->parser)) {
        dconn_free(dc); /* keep-alive idle, or lingering done */
        return;
    }
    /* The request head did not arrive in time (slowloris). */
    dc->closing = true;
    weft_conn_read_enable(dc->conn, false);
    weft_stream *s = &dc->x->stream;
    s->close_after = true;
    weft_stream_local_reply(s, 408, "request_headers_timeout", WEFT_RF_DPE, NULL);
    if (s->active && !s->t_end_us) {
        s->req_done = true;
        weft_stream_on_req_end(s, NULL);
    }
}

static void dconn_free(weft_dconn *dc) {
    weft_worker *w = dc->w;
    if (dc_active(dc)) {
        if (!dc->x->stream.t_end_us)
            weft_stream_on_downstream_reset(&dc->x->stream, WEFT_RF_DC);
    }
    if (dc->h2)
        weft_h2_session_free(dc->h2);
    dc->h2 = NULL;
    if (dc->x) {
        /* A request cut short may leave work behind in its stream (an
         * upstream attempt, filter state): such a state is not reused. */
        h1x *x = dc->x;
        dc->x = NULL;
        x_destroy(x);
    }
    if (dc->tc.magic)
        weft_transport_close(&dc->tc);
    if (dc->ev_tx)
        event_free(dc->ev_tx);
    event_del(&dc->ev_deferred);
    weft_ltimer_stop(&dc->timer);
    weft_conn_free(dc->conn);
    if (dc->prev)
        dc->prev->next = dc->next;
    else
        w->conns = dc->next;
    if (dc->next)
        dc->next->prev = dc->prev;
    atomic_fetch_sub_explicit(&w->active_conns, 1, memory_order_relaxed);
    weft_listener_snap *lst = dc->listener_name ? find_listener(w->cur, dc->listener_name) : NULL;
    if (lst)
        weft_stats_gauge_add(w->stats, lst->cx_active, -1);
    if (dc->ws) /* after the last use of listener_name, which lives in its config */
        weft_wsnap_unref(dc->ws);
    free(dc);
}

/* Where the client connected to, when the kernel redirected the
 * connection to this socket (iptables REDIRECT/DNAT: SO_ORIGINAL_DST);
 * recorded only when it differs from the local address. */
static void fill_orig_dst(weft_dconn *dc, evutil_socket_t fd, const struct sockaddr_storage *ls) {
    struct sockaddr_storage od;
    socklen_t ol = sizeof(od);
    char ip[64];
    uint16_t port;
    if (ls->ss_family == AF_INET) {
        if (getsockopt(fd, SOL_IP, WEFT_SO_ORIGINAL_DST, &od, &ol) != 0 || od.ss_family != AF_INET)
            return;
        const struct sockaddr_in *a = (const struct sockaddr_in *)&od;
        const struct sockaddr_in *l = (const struct sockaddr_in *)ls;
        if (a->sin_addr.s_addr == l->sin_addr.s_addr && a->sin_port == l->sin_port)
            return;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ls->ss_family == AF_INET6) {
        if (getsockopt(fd, SOL_IPV6, WEFT_SO_ORIGINAL_DST, &od, &ol) != 0 ||
            od.ss_family != AF_INET6)
            return;
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&od;
        const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)ls;
        if (!memcmp(&a->sin6_addr, &l->sin6_addr, sizeof(a->sin6_addr)) &&
            a->sin6_port == l->sin6_port)
            return;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    } else {
        return;
    }
    weft_transport_set_orig_dst(&dc->tc, ip, port);
}

static void fill_facts(weft_dconn *dc, evutil_socket_t fd, const struct sockaddr *sa) {
    weft_conn_facts *f = &dc->tc.facts;
    f->peer_ip = dc->tc.peer_ip;
    f->peer_port = sa->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
                                             : ntohs(((const struct sockaddr_in *)sa)->sin_port);
    struct sockaddr_storage ls;
    socklen_t ll = sizeof(ls);
    if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0) {
        if (ls.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ls)->sin_addr, dc->tc.local_ip,
                      sizeof(dc->tc.local_ip));
            f->local_port = ntohs(((struct sockaddr_in *)&ls)->sin_port);
        } else {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ls)->sin6_addr, dc->tc.local_ip,
                      sizeof(dc->tc.local_ip));
            f->local_port = ntohs(((struct sockaddr_in6 *)&ls)->sin6_port);
        }
        f->local_ip = dc->tc.local_ip;
        fill_orig_dst(dc, fd, &ls);
    }
}

/* Codec output goes down through the transport filters at the end of the
 * loop turn (one pass for everything the codec wrote in it). */
static void on_tx(evutil_socket_t fd, short what, void *arg) {
    weft_dconn *dc = arg;
    if (weft_transport_write(&dc->tc) != 0) {
        dc->reset_now = true;
        schedule(dc);
    }
}

/* What a transport filter may ask on its own (weft_transport_owner_ops). */
static void t_kick(void *owner) {
    weft_dconn *dc = owner;
    if (dc->ev_tx)
        event_active(dc->ev_tx, EV_TIMEOUT, 0);
}
static void t_close(void *owner, bool flush) {
    weft_dconn *dc = owner;
    if (flush)
        dc->tclose = true;
    else
        dc->reset_now = true;
    schedule(dc);
}
static void t_ready(void *owner) {
    schedule(owner); /* the deferred handler feeds the codec what waits */
}
static const weft_transport_owner_ops dconn_towner = {t_kick, t_close, t_ready};

static void codec_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    weft_dconn *dc = arg;
    if (info->n_added && dc->ev_tx)
        event_active(dc->ev_tx, EV_TIMEOUT, 0);
}

void weft_dconn_accept(weft_worker *w, const char *listener_name, evutil_socket_t fd,
                       const struct sockaddr *sa, int salen) {
    weft_listener_snap *lst = find_listener(w->cur, listener_name);
    if (!lst) {
        evutil_closesocket(fd);
        return;
    }
    const weft_cfg_limits *lim = &lst->cfg->limits;
    uint32_t nworkers = w->cur->snap->cfg->workers ? w->cur->snap->cfg->workers : 1;
    if (lim->max_connections) {
        /* The limit is per listener; each worker enforces its share. */
        int per_worker = (int)((lim->max_connections + nworkers - 1) / nworkers);
        if (atomic_load_explicit(&w->active_conns, memory_order_relaxed) >= per_worker) {
            weft_stats_inc(w->stats, lst->cx_refused, 1);
            evutil_closesocket(fd);
            return;
        }
    }
    weft_dconn *dc = calloc(1, sizeof(*dc));
    if (!dc) {
        evutil_closesocket(fd);
        return;
    }
    dc->w = w;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, dc->tc.peer_ip,
                  sizeof(dc->tc.peer_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, dc->tc.peer_ip,
                  sizeof(dc->tc.peer_ip));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    weft_h1_limits_default(&dc->limits);
    dc->limits.max_header_bytes = lim->max_header_bytes;
    dc->limits.max_headers = lim->max_headers;
    dc->limits.max_uri_len = lim->max_uri_len;
    dc->limits.max_body_bytes = lim->max_body_bytes;
    dc->headers_timeout_ms = lim->headers_timeout_ms;
    dc->idle_timeout_ms = lim->idle_timeout_ms;
    dc->conn = weft_conn_new(w->base, fd, &dconn_cbs, dc);
    if (!dc->conn) {
        evutil_closesocket(fd);
        free(dc);
        return;
    }
    dc->ws = weft_wsnap_ref(w->cur);
    dc->listener_name = lst->cfg->name;
    fill_facts(dc, fd, sa);
    event_assign(&dc->ev_deferred, w->base, -1, 0, on_deferred, dc);
    weft_ltimer_init(&dc->timer, w->base, on_timer, dc);
    uint32_t hw = lim->buffer_high_watermark ? lim->buffer_high_watermark : 1024 * 1024;
    uint32_t read_hw = hw > lim->max_header_bytes + 1024 ? hw : lim->max_header_bytes + 1024;
    weft_conn_set_watermarks(dc->conn, read_hw, hw / 2);
    dc->next = w->conns;
    if (w->conns)
        w->conns->prev = dc;
    w->conns = dc;
    atomic_fetch_add_explicit(&w->active_conns, 1, memory_order_relaxed);
    weft_stats_inc(w->stats, lst->cx_total, 1);
    weft_stats_gauge_add(w->stats, lst->cx_active, 1);
    arm_timer(dc, idle_ms(dc));
    if (lst->chain.n_transport && !(dc->ev_tx = event_new(w->base, -1, 0, on_tx, dc))) {
        dconn_free(dc);
        return;
    }
    if (weft_transport_init(&dc->tc, lst->chain.transport, lst->chain.n_transport, w->base,
                            weft_conn_input(dc->conn), weft_conn_output(dc->conn), &dconn_towner,
                            dc, hw)) {
        dconn_free(dc);
        return;
    }
    if (dc->tc.n)
        evbuffer_add_cb(dc_out(dc), codec_out_cb, dc);
    weft_transport_start_downstream(&dc->tc);
}

void weft_dconn_drain_all(weft_worker *w) {
    for (weft_dconn *dc = w->conns; dc; dc = dc->next) {
        if (dc->h2)
            weft_h2_session_drain(dc->h2); /* GOAWAY; finishes when streams end */
        else if (!dc_active(dc) && !dc->closing && !dc->lingering)
            arm_timer(dc, idle_ms(dc)); /* idle: closed if no request comes */
        /* A request in flight: its response carries Connection: close
         * (or, if its head is out already, the next response does). */
    }
}

void weft_dconn_free_all(weft_worker *w) {
    while (w->conns)
        dconn_free(w->conns);
}
