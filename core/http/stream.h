/* stream.h: one request/response exchange, independent of the codec that
 * carried it. The downstream codec (h1 today, h2 later) feeds request
 * events in and provides weft_downstream_ops to send the response; the
 * stream runs the pipeline:
 *
 *   request head -> [filter chain: decode] -> router -> cluster -> load
 *   balancer -> pooled upstream connection -> response head/body/trailers
 *   -> [filter chain: encode, reverse order] -> downstream
 *
 * and ends with the log phase (access log, stats). The filter chain of the
 * SDK slots in at weft_stream_on_req_head / the response forwarders. */
#ifndef WEFT_HTTP_STREAM_H
#define WEFT_HTTP_STREAM_H

#include <event2/event.h>
#include <event2/event_struct.h>

#include "filter/filter.h"
#include "common/response_flags.h"
#include "net/conn_facts.h"
#include "http/message.h"
#include "common/ltimer.h"
#include "common/wctx.h"
#include "runtime/wsnap.h"
#include "upstream/attempt.h"
#include "upstream/pool.h"

typedef struct weft_downstream_ops {
    /* Sends the response head; end_stream when there is no body. */
    void (*send_head)(weft_stream *s, weft_resp_head *h, bool end_stream);
    /* Sends "100 Continue" (the stream answers Expect itself). */
    void (*send_continue)(weft_stream *s);
    void (*send_body)(weft_stream *s, const char *p, size_t n);
    /* Same, moving every byte out of buf (no copy). */
    void (*send_body_buf)(weft_stream *s, struct evbuffer *buf);
    /* Ends the response (with trailers if any, may be NULL). */
    void (*send_end)(weft_stream *s, weft_hdrs *trailers);
    /* Bytes queued toward the client, for backpressure. */
    size_t (*pending_out)(weft_stream *s);
    void (*pause_read)(weft_stream *s);
    void (*resume_read)(weft_stream *s);
    /* The exchange is over (response sent or stream aborted). */
    void (*done)(weft_stream *s);
    /* Abort the downstream (h1: close the connection). */
    void (*reset)(weft_stream *s);
    /* Connection facts for the SDK (addresses, TLS, peer identity). */
    const struct weft_conn_facts *(*facts)(weft_stream *s);
} weft_downstream_ops;

/* An upstream kind (HTTP/1.1 pooled connection, HTTP/2 stream; tests
 * add a fake one): everything the exchange asks of its upstream. The
 * upstream reports back through the weft_stream_on_up_* calls below. The
 * handle lives in s->up (NULL while nothing is attached). */
typedef struct weft_upstream_ops {
    const char *name;
    /* Attaches an upstream for s's request (head prepared: s->req,
     * s->up_target) on endpoint ep; false on immediate failure. */
    bool (*start)(weft_stream *s, const weft_endpoint *ep, bool allow_idle);
    /* Already connected after start (an idle pooled connection). */
    bool (*connected)(weft_stream *s);
    /* Moves request bytes that waited for the connection to it (NULL: none wait). */
    void (*connected_flush)(weft_stream *s);
    /* A replacement attempt started: send again what only the previous
     * one had (HTTP/2: the body and the end). `unsent`: the body the
     * failed attempt took back (take_unsent), moved out; NULL: the kept
     * replay body, if any. */
    void (*restart)(weft_stream *s, struct evbuffer *unsent);
    /* After a failed connect, before the release: the request body the
     * attempt holds but never sent, in a new buffer (empty when there is
     * none); NULL when some of it may have been sent (or no memory). NULL
     * op: the kind keeps unsent bytes in the stream (keeps_unsent). */
    struct evbuffer *(*take_unsent)(weft_stream *s);
    void (*send_body)(weft_stream *s, struct evbuffer *chunk); /* moves every byte */
    void (*send_data)(weft_stream *s, const char *p, size_t n);
    void (*send_end)(weft_stream *s, const weft_hdrs *trailers);
    size_t (*pending)(weft_stream *s); /* request bytes not yet written */
    void (*pause)(weft_stream *s);     /* stop reading the response */
    void (*resume)(weft_stream *s);
    void (*release)(weft_stream *s, bool reusable); /* detach (s->up is cleared by the caller) */
    /* The request never reached the server (a pooled connection it had
     * closed, a refused stream): safe to send again. */
    bool (*unprocessed)(weft_stream *s);
    /* Raw tunnels after a 101 / CONNECT (NULL: this kind carries none). */
    struct evbuffer *(*tunnel_out)(weft_stream *s);
    void (*tunnel_begin)(weft_stream *s);
    void (*shutdown_write)(weft_stream *s);
    /* Response body of one read is gathered and passed once (feed_end). */
    bool gathers_reads;
    /* Request bytes wait in the stream (up_pending) until connected, so a
     * failed connect can be retried without a replay buffer. */
    bool keeps_unsent;
} weft_upstream_ops;

/* Tests only: when set, every stream uses these ops (a fake upstream). */
extern const weft_upstream_ops *weft_upstream_test_ops;

/* One direction of the filter pipeline (request: chain order; response:
 * reverse). Body that arrives while the header phase has not passed the
 * whole chain waits in `pre`; a filter that returned WEFT_STOP on a body
 * hook holds the body in `held` and is called again with all of it when
 * more arrives. */
typedef struct weft_dir {
    bool headers_done;      /* the header phase passed the whole chain */
    int paused_at;          /* chain position that returned STOP, -1 none */
    uint64_t pause_token;   /* the pause's resume token (weft_stream_pause_token), 0 none */
    bool paused_headers;    /* ...in the header phase (else body) */
    bool end_in;            /* the source ended (end_stream seen) */
    bool end_out;           /* the sink got end_stream */
    bool used;              /* bytes may have entered pre/held/chunk since the last reset */
    struct evbuffer *pre;   /* before position 0 */
    struct evbuffer *held;  /* at paused_at */
    struct evbuffer *chunk; /* scratch for one pass */
    weft_hdrs *trailers;    /* from the source, in arena */
} weft_dir;

typedef struct weft_stream_timer weft_stream_timer;

#define WEFT_STREAM_MAGIC 0x77656674u /* "weft" */

struct weft_stream {
    uint32_t magic;  /* WEFT_STREAM_MAGIC while alive (SDK handle check) */
    uint64_t handle; /* what filters get as weft_stream * (filter/handles.h), 0 none */
    /* set by the downstream codec */
    const weft_downstream_ops *ds_ops;
    void *ds; /* the codec's connection */
    weft_worker *w;
    weft_wsnap *ws; /* referenced for the stream's life */
    weft_listener_snap *lst;
    const char *peer_ip; /* downstream peer, owned by the codec */
    bool tls;            /* downstream is TLS (x-forwarded-proto) */
    bool h2;             /* downstream is HTTP/2 (access log protocol) */

    weft_arena arena;                /* per-request strings; reset per stream */
    weft_req_head *req;              /* owned by the codec's parser message (in arena) */
    weft_resp_head resp;             /* response being forwarded/generated */
    const weft_route_entry *route;   /* the route the request goes upstream with (set when the
                                      * request header phase passed the chain) */
    const weft_route_entry *matched; /* the router's match, made before the filters run
                                      * (weft_route_refresh re-makes it), NULL none */
    bool route_dirty; /* a filter built for ABI 1.0 changed the request head since the
                       * last match: match again when the header phase passed (1.0
                       * routed after the filters) */
    weft_cluster_wrk *cluster;
    weft_attempt att;                /* the current (or last) upstream attempt: holds its lb
                                      * and hostset, so att.ep stays valid to the log phase */
    uint32_t connect_attempts;       /* failed connects retried on another endpoint */
    void *up;                        /* the attached upstream's handle, NULL none */
    const weft_upstream_ops *up_ops; /* its kind */
    struct evbuffer *up_pending;     /* request bytes before the upstream is attached */
    weft_sv request_id;
    weft_hdrs *resp_trailers; /* from the upstream, in arena */
    weft_sv up_target;

    /* state */
    bool active;
    bool req_done;    /* whole request received from downstream */
    bool up_req_done; /* whole request written toward upstream */
    bool up_req_chunked;
    uint32_t up_head_len; /* bytes of the HTTP/1.1 head last written to up_pending */
    bool resp_started;    /* head sent downstream */
    bool resp_done;
    bool resp_chunked_out; /* (codec decides; informational) */
    bool head_request;
    bool stale_retry_done;
    bool alpn_switched; /* protocol auto: this request moved to HTTP/2 once */
    bool ds_read_paused;
    bool up_read_paused;
    bool close_after; /* the codec must close after this exchange */
    bool is_grpc;
    bool upgrade_req; /* Upgrade (e.g. websocket) or CONNECT request */
    bool is_connect;
    bool tunnel;               /* bytes flow raw both ways now (after 101 / CONNECT 200) */
    bool rs_gathering;         /* response body of this upstream read waits in rs.pre */
    weft_sv upgrade_value;     /* the request's Upgrade header */
    int grpc_status;           /* from the response (trailers or Trailers-Only head), -1 unknown */
    uint64_t grpc_deadline_ms; /* from grpc-timeout (monotonic ms), 0 none */
    uint32_t flags;            /* WEFT_RF_* */
    const char *reason;        /* x-weft-reason / access log detail */

    /* filter pipeline */
    const weft_filter_chain *chain; /* the listener's (snapshot-owned) */
    void **fctx;                    /* per-filter stream contexts (arena) */
    int running;                    /* filter whose hook or callback runs, -1 */
    uint64_t tok_pending;           /* token asked for in the running hook, for its STOP */
    int tok_filter;                 /* ...by this filter, -1 none */
    uint32_t pause_seq;             /* tokens made in this exchange */
    bool in_async_cb;               /* ...and it is a timer/callout callback */
    weft_dir rq, rs;                /* request and response directions */
    bool dir_bufs;                  /* rq and rs have their three evbuffers (stream_dir_buffers) */
    int cluster_override;           /* route_set_cluster, -1 none */
    struct evbuffer *replay;        /* request body kept for replays, or NULL */
    size_t replay_max;
    bool replay_overflow;
    bool retry_requested;
    bool log_phase;
    uint32_t attempts;
    /* filter retries (SDK 1.1): per-try timeout, delayed retry, untried
     * endpoints, the per-attempt request head */
    uint64_t try_timeout_ms;      /* weft_upstream_set_try_timeout: attempts started later */
    uint64_t att_try_ms;          /* ...as the current attempt took it */
    uint64_t t_try_start_us;      /* its per-try timeout runs since */
    uint64_t retry_delay_ms;      /* options of the requested retry */
    uint32_t retry_flags;         /* WEFT_RETRY_* */
    uint32_t att_flags;           /* WEFT_ATTEMPT_F_* of the current attempt */
    uint64_t t_backoff_start_us;  /* a delayed retry waits since (0: none waits) */
    uint64_t backoff_us;          /* the current attempt waited that long */
    uint64_t backoff_want_us;     /* the delay asked for the waiting retry */
    weft_req_head *up_req;        /* this attempt's head (on_upstream_request), or NULL: req */
    bool in_up_request;           /* on_upstream_request runs */
    const weft_hostset *tried_hs; /* endpoints tried, as bits over this hostset's list */
    uint64_t *tried;              /* &tried_inline or arena words */
    uint64_t tried_inline;
    weft_stream_timer *timers;
    uint32_t filter_callouts;     /* stream-scoped HTTP callouts in flight (cap: limits) */
    uint32_t filter_tcp_callouts; /* TCP callouts scoped to this stream */
    weft_hdrs metadata;           /* shared between filters: key -> value */
    size_t filter_arena;          /* arena bytes host calls took for filters (cap: limits) */
    uint32_t filter_timers;       /* filter timers armed now (cap: limits) */
    /* local replies through the response hooks (stream_reply.c) */
    int req_reached;     /* highest chain index the request reached, -1 none */
    bool local_reply;    /* the response in the hooks (or sent) is weft's own */
    bool rs_hdr_hook;    /* a response-header hook runs now (sf_resp_headers)... */
    uint32_t rs_hdr_pos; /* ...at this response position */
    uint32_t rs_from;    /* first response position of the current response */
    uint32_t n_replies;  /* local replies made in this exchange */

    /* timers */
    weft_ltimer t_request; /* route timeout, from end of request */
    weft_ltimer t_idle;    /* stream idle timeout */
    weft_ltimer t_try;     /* per-try timeout of the current attempt */
    weft_ltimer t_backoff; /* a delayed retry's wait */
    struct event ev_defer; /* stream_defer: work run outside hooks */
    unsigned deferred;     /* STREAM_DEFER_* pending */
    bool timers_init;

    /* accounting */
    uint64_t t_start_us, t_up_start_us, t_up_head_us, t_end_us;
    uint64_t bytes_in, bytes_out;
    uint16_t status_sent;
};

/* Lifecycle, called by the downstream codec. */
void weft_stream_init(weft_stream *s, weft_worker *w, const weft_downstream_ops *ops, void *ds);
/* Begins an exchange on the worker's current snapshot. */
void weft_stream_begin(weft_stream *s, weft_listener_snap *lst, weft_wsnap *ws);
void weft_stream_on_req_head(weft_stream *s, weft_req_head *req);
void weft_stream_on_req_body(weft_stream *s, const char *p, size_t n);
void weft_stream_on_req_end(weft_stream *s, weft_hdrs *trailers);
/* Downstream output drained below its low watermark. */
void weft_stream_on_downstream_writable(weft_stream *s);
/* The client went away (or the codec aborts): the stream ends now. */
void weft_stream_on_downstream_reset(weft_stream *s, uint32_t flag);
/* Releases everything the last exchange held (after done()). */
void weft_stream_end(weft_stream *s);
void weft_stream_destroy(weft_stream *s);

/* A reply generated by weft: status, x-weft-reason, small body. It runs
 * through the response hooks of the filters that saw the request (those
 * up to the one that replied, in reverse order), as Envoy's
 * sendLocalReply runs the encoder filters; a reply made while a response
 * is in the response-header phase (an upstream response or another local
 * reply, head not sent) replaces that response, and the header phase goes
 * on with the next filter toward the client. If the response head was
 * already sent, the stream is reset instead. */
void weft_stream_local_reply(weft_stream *s, uint16_t status, const char *reason, uint32_t flag,
                             const char *body);

/* Tunnels (after a 101 or a CONNECT's 200): raw bytes from the client
 * (the codec hands over its whole input buffer) and from the upstream. */
void weft_stream_tunnel_down(weft_stream *s, struct evbuffer *in);
void weft_stream_tunnel_up(weft_stream *s, struct evbuffer *in);

/* SDK: continue a direction paused by a filter. Pauses are owned: the
 * caller (s->running: the hook's filter, or the filter whose timer or
 * callout callback runs) resumes only its own pause (the request
 * direction first). 0 resumed; -1 nothing to resume or not allowed now
 * (inside a hook, log phase); -2 paused, but by another filter (*owner:
 * its chain index). */
int weft_stream_resume_filters(weft_stream *s, int *owner);
/* SDK: the resume token of the calling filter's pause: inside a hook, of
 * the pause its WEFT_STOP will make (valid only once the hook returned
 * WEFT_STOP); in a callback, of the pause it holds now. -1 if none. */
int stream_pause_token_of(weft_stream *s, uint64_t *token);
/* SDK: resume the pause that holds `token` (once), from any callback on
 * the stream's worker. 0 resumed, -1 no pause holds it or not now. */
int stream_resume_by_token(weft_stream *s, uint64_t token);
/* SDK: try the upstream again (replaying the request). */
int weft_stream_retry(weft_stream *s);
/* SDK 1.1: the same with a delay (ms) and WEFT_RETRY_* flags. */
int weft_stream_retry_ex(weft_stream *s, uint64_t delay_ms, uint32_t flags);
/* SDK local reply with extra headers; gRPC requests get a gRPC status. */
void weft_stream_reply_full(weft_stream *s, uint16_t status, const char *reason,
                            const weft_hdrs *extra, weft_sv body);

/* Called by the upstream connection (pool.c). */
void weft_stream_on_up_connected(weft_stream *s);
int weft_stream_on_up_head(weft_stream *s, weft_resp_head *h);
int weft_stream_on_up_body(weft_stream *s, const char *p, size_t n);
int weft_stream_on_up_trailers(weft_stream *s, weft_hdrs *t);
int weft_stream_on_up_complete(weft_stream *s);
void weft_stream_on_up_error(weft_stream *s, weft_up_err err);
void weft_stream_on_up_writable(weft_stream *s);
/* The upstream parser consumed what one read brought. */
void weft_stream_on_up_feed_end(weft_stream *s);

#endif
