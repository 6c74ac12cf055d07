/* weft/filter.h: the filter SDK of weft, ABI v1.
 *
 * The one header a filter includes. Pure C11, libc types only, usable from
 * C++. A filter is a shared object exporting one symbol,
 *
 *     const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);
 *
 * (WEFT_FILTER_DEFINE writes it for you). The core dlopens the .so with
 * RTLD_LOCAL, calls the entry once with its table of host functions, and
 * checks the descriptor's ABI version: another major, or a newer minor than
 * the core knows, is refused with one line naming the file and both
 * versions. Host calls go through that table (the inline wrappers below),
 * so a filter needs no symbols from the weft binary.
 *
 * VERSIONING: a breaking change bumps WEFT_ABI_MAJOR; a new function or a
 * new field bumps WEFT_ABI_MINOR. Enum values are never renumbered; structs
 * only grow at the end and start with their own size.
 *
 * LIFETIMES (kept apart):
 *   config  per config snapshot: config_create() parses the filter's YAML
 *           node once; the object is shared read-only by every worker (use
 *           C11 atomics for what must be shared: counters, buckets).
 *           Destroyed when the last stream of that snapshot ends.
 *   worker  per worker thread and config: worker_create(), when the
 *           worker adopts the config (1.1); only that thread touches it,
 *           no locks needed. Its worker handle (weft_worker_current)
 *           carries work that belongs to no stream (worker timers).
 *   stream  per request (http) or per connection (transport).
 *
 * HTTP HOOKS, in call order (NULL = not interested):
 *   stream_create -> on_request_headers -> on_request_body* ->
 *   on_request_trailers? -> [router] -> (on_upstream_request (1.1) ->
 *   [upstream] -> on_upstream_attempt)* ->
 *   on_response_headers -> on_response_body* -> on_response_trailers? ->
 *   on_stream_complete -> stream_destroy
 * The request path runs the chain in YAML order; the response path runs it
 * in REVERSE order (the filter nearest the client sees the response last).
 * A local reply (weft's own or a filter's) runs the response hooks of the
 * filters that saw the request (ABI 1.1, see weft_reply_send).
 * A message that ends with its headers (end_stream true in the headers
 * hook: a GET, a 204) gets no body hook calls; otherwise the last body
 * call has end_stream true (possibly with an empty chunk).
 *
 * THREADING: every hook and host call of a stream happens on the worker
 * thread that owns the stream. Host calls from another thread are refused
 * (WEFT_ERR_THREAD). Config-time calls happen on the main thread.
 * What the host guarantees, call by call:
 *   ANY THREAD (a thread the filter started included): weft_log_msg,
 *     weft_log_enabled, weft_clock_now_us, weft_logf with s == NULL,
 *     weft_str_c, WEFT_HOST_HAS; weft_stat_inc, weft_stat_gauge_add,
 *     weft_stat_observe_us, weft_stat_family_inc/_gauge_add/_observe_us
 *     (lock-free per-thread slots: every thread weft runs has its own,
 *     workers and main, so hooks, worker- and config-scoped timers and
 *     config_create may all count; an update from a thread weft did not
 *     start is dropped, not an error).
 *   MAIN THREAD, inside config_create only (the setup handle lives just
 *     that long): weft_stat_counter/gauge/histogram, weft_stat_family,
 *     weft_config_*,
 *     weft_config_fail, weft_config_dir, weft_setup_logf.
 *   MAIN THREAD: weft_config_timer_start/_cancel (config_create and
 *     config timer callbacks, which run there).
 *   THE HANDLE'S WORKER: every call taking a weft_worker * (checked:
 *     WEFT_ERR_THREAD); worker timer callbacks run there.
 *   THE STREAM'S WORKER ONLY: every call taking a weft_stream * (checked:
 *     WEFT_ERR_THREAD; weft_logf from another thread still logs, without
 *     the filter's name), and the weft_buffer_* calls, which check
 *     neither thread nor handle: use a buffer only inside the hook that
 *     handed it to you. The weft_connection_* calls: inside that
 *     connection's transport hooks (same worker, not thread-checked).
 *   Hand work from your own thread back to a stream with a timer or a
 *   callout, never by calling with a kept weft_stream *.
 *
 * ERRORS: host calls return weft_result (0 ok, negative error). Misuse
 * the host can detect returns an error and logs one line naming the filter
 * instead of crashing: a call from a thread that does not own the stream
 * (WEFT_ERR_THREAD), a weft_stream * that is not a live stream, NULL
 * included, or a handle kept from an earlier exchange (WEFT_ERR_HANDLE:
 * see HANDLES), resume when not paused, from inside a hook or of another
 * filter's pause (see weft_stream_resume), a change
 * after it can take effect or in the log phase
 * (WEFT_ERR_STATE), invalid names, values or statuses (WEFT_ERR_INVALID),
 * a hook returning a value that is not a weft_status (500 filter_error).
 * What the host CANNOT check, and what therefore CAN crash or corrupt the
 * proxy (native code in weft's address space, no isolation): a dangling
 * or random pointer passed as a weft_buffer, weft_timer, weft_callout,
 * weft_connection or config node (the weft_buffer_* calls check neither
 * handle nor thread), a view (weft_str) read after its lifetime, writes
 * through views, memory corruption, a crash or an endless loop in a hook.
 * docs/sdk.md 2.12 and 2.13 give the same list.
 *
 * HANDLES (generation-checked since ABI 1.1; nothing changes for a
 * filter's code): a weft_stream * is a handle, not an address. Never
 * dereference it; compare it only for identity. Each exchange gets its
 * own, also when weft reuses the object behind it (HTTP/1.1 keep-alive,
 * recycled HTTP/2 streams). EVERY call taking a weft_stream * checks it
 * against the exchange it was given for, without reading the stream's
 * memory first: a handle kept past its stream_destroy (a queue, a budget
 * in worker state) gets WEFT_ERR_HANDLE and never acts on a later
 * request; another worker's handle gets WEFT_ERR_THREAD. The calls that
 * return no weft_result then give their neutral value (0, false).
 * Checked now: weft_stream on every call. weft_timer and weft_callout are
 * looked up in the (checked) stream's own list (unknown: WEFT_ERR_INVALID).
 * weft_connection: a magic number only (a dangling one is not detected).
 * Not checked: weft_buffer, weft_config_node, weft_filter_setup.
 *
 * PER-STREAM CAPS: what one stream's filters consume through the host is
 * capped by the listener's limits (filter_arena_bytes 1 MiB,
 * filter_metadata_entries 64, filter_timers 16, filter_callouts 8 by
 * default). A call past a cap returns WEFT_ERR_LIMIT and changes nothing;
 * the calls that can are marked "LIMIT:" below. */
#ifndef WEFT_FILTER_H
#define WEFT_FILTER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_ABI_MAJOR 1
#define WEFT_ABI_MINOR 2

#if defined(__GNUC__)
#define WEFT_EXPORT __attribute__((visibility("default")))
#else
#define WEFT_EXPORT
#endif

/* ------------------------------------------------------------------ */
/* Opaque handles                                                      */
/* ------------------------------------------------------------------ */

typedef struct weft_stream weft_stream;         /* an HTTP exchange */
typedef struct weft_connection weft_connection; /* a downstream connection (transport filters) */
typedef struct weft_buffer weft_buffer;         /* a chain of bytes (body chunk, transport bytes) */
typedef struct weft_config_node weft_config_node;   /* a node of the filter's YAML config */
typedef struct weft_filter_setup weft_filter_setup; /* config-time services (stats, log) */
typedef struct weft_callout weft_callout;           /* an HTTP callout in flight */
typedef struct weft_timer weft_timer;               /* a stream timer */

/* A borrowed string view: never NUL-terminated by contract. */
typedef struct weft_str {
    const char *ptr;
    size_t len;
} weft_str;

#define WEFT_STR(lit) ((weft_str){(lit), sizeof(lit) - 1})

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/* What a hook returns. */
typedef enum weft_status {
    WEFT_CONTINUE = 0, /* go on to the next filter */
    WEFT_STOP = 1,     /* pause this direction; weft_stream_resume() continues
                          with the next filter. Body arriving meanwhile is
                          buffered (up to the listener's buffer limit). */
    WEFT_REPLIED = 2,  /* the filter sent a local reply (weft_reply_send) */
} weft_status;

/* What a host call returns. */
typedef enum weft_result {
    WEFT_OK = 0,
    WEFT_ERR_INVALID = -1,   /* bad argument */
    WEFT_ERR_NOT_FOUND = -2, /* no such header / key / cluster */
    WEFT_ERR_STATE = -3,     /* not allowed now (stream ended, not paused, ...) */
    WEFT_ERR_THREAD = -4,    /* called from a thread that does not own the stream */
    WEFT_ERR_LIMIT = -5,     /* a configured limit would be exceeded */
    WEFT_ERR_NOMEM = -6,
    WEFT_ERR_HANDLE = -7, /* the handle is not a live weft object */
} weft_result;

typedef enum weft_filter_kind {
    WEFT_FILTER_HTTP = 1,
    WEFT_FILTER_TRANSPORT = 2,
} weft_filter_kind;

typedef enum weft_log_level {
    WEFT_LOG_LEVEL_DEBUG = 0,
    WEFT_LOG_LEVEL_INFO = 1,
    WEFT_LOG_LEVEL_WARN = 2,
    WEFT_LOG_LEVEL_ERROR = 3,
} weft_log_level_t;

/* Which header map a header call works on. */
typedef enum weft_header_map {
    WEFT_REQUEST_HEADERS = 0,
    WEFT_REQUEST_TRAILERS = 1,
    WEFT_RESPONSE_HEADERS = 2,
    WEFT_RESPONSE_TRAILERS = 3,
} weft_header_map;

/* Which body a body call works on. */
typedef enum weft_body_dir {
    WEFT_REQUEST_BODY = 0,
    WEFT_RESPONSE_BODY = 1,
} weft_body_dir;

/* Outcome of one upstream attempt (on_upstream_attempt). */
typedef enum weft_attempt_result {
    WEFT_ATTEMPT_RESPONSE = 0, /* got response headers (status set) */
    WEFT_ATTEMPT_CONNECT_FAILURE = 1,
    WEFT_ATTEMPT_CONNECT_TIMEOUT = 2,
    WEFT_ATTEMPT_RESET = 3,   /* reset before a complete response */
    WEFT_ATTEMPT_TIMEOUT = 4, /* route timeout, or the per-try timeout (1.1: see
                                 WEFT_ATTEMPT_F_PER_TRY_TIMEOUT) */
    WEFT_ATTEMPT_PROTOCOL_ERROR = 5,
} weft_attempt_result;

/* weft_attempt_info.flags (ABI 1.1).
 * PER_TRY_TIMEOUT: WEFT_ATTEMPT_TIMEOUT came from the per-try timeout
 *   (weft_upstream_set_try_timeout): the route timeout still runs.
 * ENDPOINT_TRIED: an earlier attempt of this stream went to the same
 *   endpoint (the stream had retried away from it).
 * OTHER_ENDPOINT: the attempt was started by a retry that asked for
 *   WEFT_RETRY_OTHER_ENDPOINT. */
#define WEFT_ATTEMPT_F_PER_TRY_TIMEOUT 0x1u
#define WEFT_ATTEMPT_F_ENDPOINT_TRIED 0x2u
#define WEFT_ATTEMPT_F_OTHER_ENDPOINT 0x4u

typedef struct weft_attempt_info {
    size_t size; /* sizeof(weft_attempt_info) as the core built it: a filter
                    built for ABI 1.0 is handed the 1.0 size; read a 1.1 field
                    only when size covers it (WEFT_ATTEMPT_INFO_HAS) */
    weft_attempt_result result;
    int status;             /* HTTP status for WEFT_ATTEMPT_RESPONSE, else 0 */
    uint32_t attempt;       /* 1 for the first attempt */
    weft_str upstream_host; /* "10.0.0.1:8080"; valid during the hook */
    weft_str cluster;
    uint64_t duration_us; /* attempt start to response headers or failure */
    /* ---- ABI 1.1 ---- views valid during the hook */
    weft_str region; /* the endpoint's locality ("" when not configured) */
    weft_str zone;
    weft_str subzone;
    int32_t endpoint_index; /* position of the endpoint in the cluster's current
                               endpoint list, -1 when no endpoint was picked */
    uint32_t flags;         /* WEFT_ATTEMPT_F_* */
    uint64_t backoff_us;    /* time this attempt waited for a delayed retry
                               (weft_upstream_retry_after) before it started, 0 none */
    uint32_t n_labels;      /* labels of the endpoint (weft_attempt_endpoint_label) */
} weft_attempt_info;

/* Whether `info` (built by the host) carries `field`. */
#define WEFT_ATTEMPT_INFO_HAS(info, field)                                                         \
    ((info)->size >= offsetof(weft_attempt_info, field) + sizeof((info)->field))

/* Options of weft_upstream_retry_ex (ABI 1.1). */
typedef struct weft_retry_options {
    size_t size;       /* sizeof(weft_retry_options) */
    uint64_t delay_ms; /* start the next attempt after this delay (backoff); 0: at once */
    uint32_t flags;    /* WEFT_RETRY_* */
} weft_retry_options;

/* weft_retry_options.flags. OTHER_ENDPOINT: pick an endpoint this stream
 * has not tried yet (Envoy's previous_hosts predicate), a tried one when no
 * other healthy endpoint is left. */
#define WEFT_RETRY_OTHER_ENDPOINT 0x1u

/* Final facts of a stream (on_stream_complete: the log phase). */
typedef struct weft_stream_info {
    size_t size;
    int status;                /* status sent downstream, 0 if none */
    uint64_t duration_us;      /* first request byte to last response byte */
    uint64_t upstream_time_us; /* request sent to response headers, 0 if none */
    uint64_t bytes_received;   /* request body bytes */
    uint64_t bytes_sent;       /* response body bytes */
    uint32_t attempts;         /* upstream attempts made */
    weft_str response_flags;   /* "UT,UC" or "-" */
    weft_str upstream_host;    /* "" if none */
    weft_str cluster;          /* "" if none */
    /* ABI 1.1 (present when size covers them; a 1.0 filter never reads
     * them): the final response was a local reply (weft's own 404, 503,
     * 504, ..., a direct response or redirect route, a filter's
     * weft_reply_send), 0/1, and its reason (x-weft-reason; "" if none or
     * not local). Valid during on_stream_complete. */
    uint32_t local_reply;
    weft_str local_reply_reason;
    /* ABI 1.2 (present when size covers it): the called filter's per-route
     * config, what weft_route_config(s) returns in this hook (NULL when
     * the route has none for it, or no route matched), without the host
     * call. Valid during on_stream_complete. */
    const void *route_config;
} weft_stream_info;

/* Whether `info` (built by the host) carries `field` (ABI 1.2; a 1.1 host's
 * info ends at local_reply_reason): WEFT_STREAM_INFO_HAS(info, route_config). */
#define WEFT_STREAM_INFO_HAS(info, field)                                                          \
    ((info)->size >= offsetof(weft_stream_info, field) + sizeof((info)->field))

/* [1.1 routing types] */
/* ABI 1.1: the route a stream sees (weft_route_facts). Size-prefixed: the
 * caller sets `size` to sizeof(weft_route_facts) as it was built, the host
 * fills the fields that fit. Views point into the config snapshot the
 * stream runs on: valid until the stream ends or the next re-match
 * (weft_route_refresh), whichever comes first. */
typedef struct weft_route_facts {
    size_t size;        /* set by the caller */
    uint32_t has_route; /* 1 when a route matched, else 0 (then the names are "") */
    weft_str route;     /* the route's `name:` ("" when it has none) */
    weft_str vhost;     /* its virtual host's name */
    weft_str cluster;   /* where the request goes now: the route_set_cluster override
                           if set, else the route's cluster; "" for none (no route, or a
                           redirect / direct_response route) */
} weft_route_facts;
/* [end 1.1 routing types] */

/* Timer and callout completions. */
typedef void (*weft_timer_cb)(weft_stream *s, void *stream_ctx, void *arg);

typedef struct weft_callout_response {
    size_t size;
    int status;                   /* 0 when the callout failed (see reason) */
    weft_str reason;              /* "" on success; "timeout", "connect_failure", ... */
    const weft_str *header_names; /* n_headers entries, lower-case */
    const weft_str *header_values;
    size_t n_headers;
    weft_str body;
} weft_callout_response;
typedef void (*weft_callout_cb)(weft_stream *s, void *stream_ctx, void *arg,
                                const weft_callout_response *resp);

/* Iteration over a header map: return false to stop. */
typedef bool (*weft_header_visit)(weft_str name, weft_str value, void *arg);

/* [1.1 state] types: shared state, clusters and endpoints */
/* A cluster of the filter's config snapshot (weft_cluster_get). Valid as
 * long as the config object of the config_create that got it. */
typedef struct weft_cluster weft_cluster;

/* weft_shared_get: `init` runs once, when the block is created (zeroed
 * before), on the main thread inside weft_shared_get. `destroy` runs once,
 * just before the block is freed (main thread), with the `arg` of the
 * newest config that asked for the block; its code stays loaded until
 * then. */
typedef void (*weft_shared_init_fn)(void *block, size_t size, void *arg);
typedef void (*weft_shared_destroy_fn)(void *block, size_t size, void *arg);

/* weft_endpoint_info.health */
#define WEFT_ENDPOINT_HEALTHY 0u   /* in rotation */
#define WEFT_ENDPOINT_UNHEALTHY 1u /* failed active health checks (whether ejected or not) */
#define WEFT_ENDPOINT_EJECTED 2u   /* healthy but ejected (weft_endpoint_eject) */

/* Counter slots per endpoint (weft_endpoint_counter_add). */
#define WEFT_ENDPOINT_COUNTER_SLOTS 8u

/* One endpoint of a cluster as the calling worker's load balancer sees
 * it now (weft_cluster_endpoint_get). The caller sets `size`. */
typedef struct weft_endpoint_info {
    size_t size;                    /* sizeof(weft_endpoint_info), set by the caller */
    weft_str address;               /* "10.0.0.1:8080" or "[::1]:8080": the endpoint's identity, the
                                     * same as weft_attempt_info.upstream_host */
    uint32_t weight;                /* >= 1 */
    uint32_t health;                /* WEFT_ENDPOINT_HEALTHY, _UNHEALTHY or _EJECTED */
    uint64_t ejected_ms;            /* ejection time left in ms (rounded up), 0 when not ejected */
    weft_str region, zone, subzone; /* locality; "" for a part not given */
    uint32_t n_labels;              /* weft_cluster_endpoint_label(..., 0 .. n_labels-1, ...) */
} weft_endpoint_info;
/* [end 1.1 state] */

/* [1.1 callout types] worker handles, worker and config timers, pooled callouts */
/* A worker handle: ONE HTTP filter config on ONE worker thread (the host's
 * per-(config, worker) context, whose filter object is what worker_create
 * returned). Work that belongs to no stream (a refresh, a batch export, an
 * un-ejection) hangs on it: it runs on that worker and is cancelled
 * before the filter's worker_destroy. A handle, not an address: never
 * dereference it (see weft_worker_current). */
typedef struct weft_worker weft_worker;
/* A worker or config timer in flight (an id, not an address). */
typedef struct weft_wtimer weft_wtimer;
/* A worker timer fired: on the worker thread of `w`, outside any stream. */
typedef void (*weft_worker_timer_cb)(weft_worker *w, void *arg);
/* A config timer fired: on the main thread; `config` is the filter's
 * config object (what its config_create returned). */
typedef void (*weft_config_timer_cb)(void *config, void *arg);
/* ABI 1.1: an HTTP callout request (weft_callout_start2,
 * weft_worker_callout_start). Size-prefixed: set size =
 * sizeof(weft_callout_request); a zero field takes its default. The host
 * copies what it needs during the call: views may die when it returns. */
typedef struct weft_callout_request {
    size_t size;        /* sizeof(weft_callout_request) */
    weft_str cluster;   /* a cluster of the config snapshot the caller runs on */
    weft_str method;    /* a token: "GET", "POST", ... */
    weft_str path;      /* starts with '/', no space or control character */
    weft_str authority; /* the host header; empty: the cluster's name */
    const weft_str *header_names, *header_values; /* n_headers entries each */
    size_t n_headers;
    weft_buffer *body_buffer;   /* optional: its bytes are the body, MOVED out (the buffer is
                                   empty after WEFT_OK, untouched on an error); or */
    weft_str body;              /* a body copied by the host, when body_buffer is NULL */
    uint64_t timeout_ms;        /* whole exchange, connect included; 0: 5 s */
    uint64_t max_response_body; /* bytes of response body kept at most; 0: the top-level
                                   callouts.max_response_body (default 1 MiB) */
    uint32_t flags;             /* WEFT_CALLOUT_* (another bit: WEFT_ERR_INVALID) */
} weft_callout_request;
/* weft_callout_request.flags. DETACHED: fire and forget (mirroring): no
 * callback, no handle; the caller never waits for it and it never fails
 * or slows the caller; it is the worker's, also after the stream that
 * made it ended. */
#define WEFT_CALLOUT_DETACHED (1u << 0)
/* A worker-scoped callout completed: on the worker thread of `w`, outside
 * any stream. resp as for weft_callout_cb (valid during the call). */
typedef void (*weft_worker_callout_cb)(weft_worker *w, void *arg,
                                       const weft_callout_response *resp);
/* [end 1.1 callout types] */
/* [1.1 tcp callout types] */
/* ABI 1.1: a raw TCP byte-stream callout (weft_tcp_callout_open): a
 * connection a filter opens to an endpoint of a cluster, for protocols
 * such as Redis's RESP. A handle like weft_stream *: never dereference it.
 */
typedef struct weft_tcp_callout weft_tcp_callout;

/* Why a TCP callout ended by itself (the on_close reason). */
#define WEFT_TCP_CLOSE_PEER 1u            /* the peer closed the connection (EOF) */
#define WEFT_TCP_CLOSE_RESET 2u           /* a connection error after the connect (reset) */
#define WEFT_TCP_CLOSE_CONNECT_FAILURE 3u /* every connect attempt failed (refused, ...) */
#define WEFT_TCP_CLOSE_CONNECT_TIMEOUT 4u /* the last connect attempt timed out */
#define WEFT_TCP_CLOSE_IDLE_TIMEOUT 5u    /* no byte either way for idle_timeout_ms */
#define WEFT_TCP_CLOSE_OVERFLOW 6u        /* on_data left max_read_bytes undrained */

/* Options (size-prefixed: set .size = sizeof; a zero field takes its
 * default). */
typedef struct weft_tcp_callout_opts {
    size_t size;
    uint32_t connect_timeout_ms; /* per attempt; 0: the cluster's connect_timeout (5 s) */
    uint32_t idle_timeout_ms;    /* after the connect: no byte either way; 0: none */
    uint32_t connect_attempts;   /* endpoints tried while connecting fails; 0: the cluster's
                                    connect_attempts (2 by default) */
    uint32_t max_write_bytes;    /* bytes queued toward the peer at most; 0: 1 MiB */
    uint32_t max_read_bytes;     /* bytes received and not drained at most; 0: 1 MiB */
    uint32_t flags;              /* none defined: 0 (another bit: WEFT_ERR_INVALID) */
} weft_tcp_callout_opts;

/* The callbacks (size-prefixed; the host copies the table). They run on
 * the worker that opened the callout, from the event loop (never from
 * inside a host call): on_connect once when the connection is up (NULL:
 * not interested); on_data when bytes arrived, with everything received
 * and not drained yet (required; drain what you consumed, the rest is
 * handed again with the next bytes); on_close once when the connection
 * ended by itself (NULL: not interested), after on_data had the last
 * bytes; the handle is dead when it returns. None runs after
 * weft_tcp_callout_close, nor after the callout's scope ended (the stream
 * for weft_tcp_callout_open). `data` is valid during the call. */
typedef struct weft_tcp_callout_cbs {
    size_t size;
    void (*on_connect)(weft_tcp_callout *c, void *arg);
    void (*on_data)(weft_tcp_callout *c, void *arg, weft_buffer *data);
    void (*on_close)(weft_tcp_callout *c, void *arg, uint32_t reason);
} weft_tcp_callout_cbs;
/* [end 1.1 tcp callout types] */

/* ------------------------------------------------------------------ */
/* The hooks a filter implements                                       */
/* ------------------------------------------------------------------ */

typedef struct weft_http_filter_ops {
    size_t size; /* sizeof(weft_http_filter_ops) the filter was built with */

    /* CONFIG. Parse `node` (may be NULL when the YAML gives no config).
     * Return 0 and set *config, or -1 after weft_config_fail() explained
     * why: that refuses the whole config snapshot. After a -1,
     * config_destroy is NOT called: free what you allocated first. */
    int (*config_create)(const weft_config_node *node, weft_filter_setup *setup, void **config);
    void (*config_destroy)(void *config);

    /* WORKER. Optional; the result is passed to stream_create. */
    void *(*worker_create)(void *config);
    void (*worker_destroy)(void *config, void *worker);

    /* STREAM. stream_create returns the filter's per-stream context (may be
     * NULL when the filter needs none). stream_destroy frees it. */
    void *(*stream_create)(void *config, void *worker, weft_stream *s);
    void (*stream_destroy)(void *stream_ctx);

    weft_status (*on_request_headers)(void *stream_ctx, weft_stream *s, bool end_stream);
    /* `chunk` is this part of the body; inspect or change it with the
     * weft_buffer_* calls. Returning WEFT_STOP holds it at this filter; each
     * later chunk still reaches this hook, with `chunk` then being ALL the
     * held body so far (so a filter that wants the whole body returns
     * WEFT_STOP until end_stream). WEFT_CONTINUE, or weft_stream_resume()
     * from a callback, passes everything held on. Held body above the
     * listener's buffer_high_watermark ends the stream (request: 413,
     * response: 500, reason filter_buffer_overflow). A filter that changes
     * the body's length must fix content-length in the matching headers
     * hook: set the new value if it knows it, or remove the header, and
     * weft sends the body chunked (HTTP/1.1) instead. */
    weft_status (*on_request_body)(void *stream_ctx, weft_stream *s, weft_buffer *chunk,
                                   bool end_stream);
    weft_status (*on_request_trailers)(void *stream_ctx, weft_stream *s);

    void (*on_upstream_attempt)(void *stream_ctx, weft_stream *s, const weft_attempt_info *info);

    weft_status (*on_response_headers)(void *stream_ctx, weft_stream *s, bool end_stream);
    weft_status (*on_response_body)(void *stream_ctx, weft_stream *s, weft_buffer *chunk,
                                    bool end_stream);
    weft_status (*on_response_trailers)(void *stream_ctx, weft_stream *s);

    /* LOG PHASE. Called once per stream for EVERY filter of the chain, in
     * YAML order, including filters that never saw a hook of this stream
     * (a local reply or a reset before them): when the exchange has ended
     * (response complete, or the stream reset or replied), after the
     * access log line is written, and before stream_destroy. Also for
     * local replies and resets. Calls that change the exchange (headers,
     * replies, resume, retry, timers, callouts) return WEFT_ERR_STATE
     * here; reads, metadata reads, stats and logging work. */
    void (*on_stream_complete)(void *stream_ctx, weft_stream *s, const weft_stream_info *info);

    /* ---- ABI 1.1 hooks ---- */
    /* [1.1 routing] */
    /* PER-ROUTE CONFIG (optional). A route may carry a node for this
     * filter under `filter_config: {<filter yaml name>: <node>}`. At
     * snapshot build, after config_create, each such node is handed here
     * with this filter's config: return 0 and set *route_config, or -1
     * after weft_config_fail() (the whole snapshot is refused with
     * file:line:col: filter "<name>": <msg>; route_config_destroy is NOT
     * called for that node). A filter without this hook that is given a
     * per-route node refuses the snapshot too. THREAD: main thread.
     * LIFETIME: per snapshot, like the filter's config; read-only and
     * shared by every worker; route_config_destroy runs when the snapshot
     * goes, BEFORE the filter's config_destroy. Streams read it with
     * weft_route_config(). */
    int (*route_config_create)(const weft_config_node *node, weft_filter_setup *setup,
                               void *filter_config, void **route_config);
    void (*route_config_destroy)(void *filter_config, void *route_config);
    /* [end 1.1 routing] */

    /* [1.1 retry] */
    /* PER-ATTEMPT REQUEST (1.1). Called before each upstream attempt's
     * request head is written, in YAML order, with the number the attempt
     * will have (1, 2, ...: weft_attempt_info.attempt), before the endpoint
     * is picked. The request headers (WEFT_REQUEST_HEADERS) here are a copy
     * made for this attempt from the request as the request header phase
     * left it: header_set/add/remove change only this attempt's upstream
     * request (x-weft-attempt-count: 2), the next attempt starts from the
     * original again. Allowed: header_get/count/iterate/set/add/remove on
     * WEFT_REQUEST_HEADERS, request_get, metadata, weft_upstream_set_try_timeout
     * (applies to this attempt), timers, callouts, stats, log, clock. Refused
     * with WEFT_ERR_STATE: reply_send, retries, route_set_cluster,
     * request_set_path, resume. weft's own resends of the same attempt
     * (connect failure to another endpoint, a stale pooled connection) reuse
     * the head and do not call the hook again. */
    void (*on_upstream_request)(void *stream_ctx, weft_stream *s, uint32_t attempt);
    /* [end 1.1 retry] */
} weft_http_filter_ops;

/* ABI 1.1, transport: what a transport filter reports when its handshake
 * is done (weft_connection_handshake_done), and what it can read about its
 * connection (weft_connection_get_info, upstream_connection_create). Views
 * passed in are copied; size-prefixed (set .size = sizeof). */
#define WEFT_HANDSHAKE_TLS 0x1u           /* the connection is TLS (https, h2 over TLS) */
#define WEFT_HANDSHAKE_PEER_VERIFIED 0x2u /* the peer identity was verified (mTLS) */
typedef struct weft_handshake_info {
    size_t size;            /* sizeof(weft_handshake_info) as the filter built it */
    weft_str alpn;          /* negotiated protocol: "h2", "http/1.1" or empty; < 32 bytes */
    weft_str peer_identity; /* SPIFFE URI of the peer or empty; at most 2048 bytes */
    weft_str tls_version;   /* "TLSv1.3" or empty; < 32 bytes */
    weft_str cipher;        /* "TLS_AES_128_GCM_SHA256" or empty; < 64 bytes */
    weft_str sni;           /* server name the client asked for (downstream) or sent
                               (upstream), or empty; at most 255 bytes */
    uint32_t flags;         /* WEFT_HANDSHAKE_* */
} weft_handshake_info;

#define WEFT_CONNECTION_DOWNSTREAM 0u /* accepted by a listener */
#define WEFT_CONNECTION_UPSTREAM 1u   /* opened by weft to a cluster's endpoint */
/* What a connection knows about itself. The host fills the fields that
 * fit in .size (set by the caller); views live as long as the connection,
 * except alpn, peer_identity and sni, which a later handshake_done may
 * replace (valid until then). */
typedef struct weft_connection_info {
    size_t size;
    uint32_t side;  /* WEFT_CONNECTION_DOWNSTREAM or _UPSTREAM */
    uint32_t flags; /* WEFT_HANDSHAKE_* reported so far */
    weft_str peer_ip, local_ip;
    uint16_t peer_port, local_port;
    /* downstream: where the client connected to: SO_ORIGINAL_DST when the
     * connection was redirected (iptables REDIRECT/TPROXY), else the local
     * address; upstream: the endpoint */
    weft_str original_dst_ip;
    uint16_t original_dst_port;
    weft_str sni;        /* downstream: from a handshake_done; upstream: the cluster's sni: */
    weft_str cluster;    /* upstream: the cluster's name; downstream: empty */
    weft_str endpoint;   /* upstream: "10.0.0.1:8080"; downstream: empty */
    weft_str alpn_offer; /* upstream: what the cluster can speak, in preference
                            order: "h2,http/1.1", "h2" or "http/1.1"; downstream: empty */
    weft_str alpn;       /* negotiated so far, or empty */
    weft_str peer_identity;
} weft_connection_info;

/* A connection timer's callback (weft_connection_timer_start). */
typedef void (*weft_connection_timer_cb)(weft_connection *c, void *conn_ctx, void *arg);

/* TRANSPORT filters see the bytes of a downstream connection before the
 * HTTP codec (TLS termination, for instance). on_read turns bytes from the
 * network (`in`) into bytes for the codec (`out`); on_write turns bytes
 * from the codec (`in`) into bytes for the network (`out`). Both may
 * consume partially and keep state. Return 0, or -1 to close the
 * connection. */
typedef struct weft_transport_filter_ops {
    size_t size;
    int (*config_create)(const weft_config_node *node, weft_filter_setup *setup, void **config);
    void (*config_destroy)(void *config);
    void *(*connection_create)(void *config, weft_connection *c);
    void (*connection_destroy)(void *conn_ctx);
    int (*on_read)(void *conn_ctx, weft_connection *c, weft_buffer *in, weft_buffer *out);
    int (*on_write)(void *conn_ctx, weft_connection *c, weft_buffer *in, weft_buffer *out);
    void (*on_close)(void *conn_ctx, weft_connection *c);

    /* ---- ABI 1.1 hooks ---- */
    /* [1.1 transport] */
    /* WEFT_TRANSPORT_HANDSHAKE: the filter has a handshake: the codec is
     * not chosen and gets no byte on this connection until the filter
     * called weft_connection_handshake_done (with several such filters:
     * until each did). A filter without the flag (1.0 filters) changes
     * nothing: the codec starts at once. */
    uint32_t flags;
    /* UPSTREAM side (the client part, e.g. mTLS to a cluster): called for
     * each new connection weft opens to an endpoint of a cluster that lists
     * the filter in transport_filters:, once the TCP connection is up,
     * before any byte of a request. on_read then turns the server's bytes
     * into bytes for weft's HTTP client codec (responses), on_write the
     * requests into bytes for the server; the same write, close, timer and
     * handshake calls apply. With WEFT_TRANSPORT_HANDSHAKE, no request is
     * sent before handshake_done, and its ALPN ("h2"/"http/1.1") picks
     * the protocol where the cluster allows both. `info` is valid during
     * the call. NULL: the filter has no upstream side (a cluster naming
     * it is refused). A NULL return with no error means no context. */
    void *(*upstream_connection_create)(void *config, weft_connection *c,
                                        const weft_connection_info *info);
    /* [end 1.1 transport] */
} weft_transport_filter_ops;

#define WEFT_TRANSPORT_HANDSHAKE 0x1u /* weft_transport_filter_ops.flags */

typedef struct weft_filter_descriptor {
    size_t size;        /* sizeof(weft_filter_descriptor) */
    uint16_t abi_major; /* WEFT_ABI_MAJOR the filter was built with */
    uint16_t abi_minor; /* WEFT_ABI_MINOR the filter was built with */
    const char *name;   /* "authz"; [a-z0-9_]: the loader's log lines. Stats names and
                           the host's filter log lines carry the YAML name
                           (filters[].name), which may differ */
    weft_filter_kind kind;
    const weft_http_filter_ops *http;           /* kind == WEFT_FILTER_HTTP */
    const weft_transport_filter_ops *transport; /* kind == WEFT_FILTER_TRANSPORT */
} weft_filter_descriptor;

/* ------------------------------------------------------------------ */
/* The host functions (implemented by the core)                        */
/* ------------------------------------------------------------------ */

/* ABI 1.2: a labelled family's series handle (weft_stat_family_series). */
typedef uint64_t weft_stat_series; /* opaque; 0 (WEFT_STAT_SERIES_NONE): none */
#define WEFT_STAT_SERIES_NONE ((weft_stat_series)0)

typedef struct weft_host_api {
    size_t size; /* grows at the end with each minor version */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* headers and trailers */
    weft_result (*header_get)(weft_stream *s, weft_header_map m, weft_str name, size_t index,
                              weft_str *value);
    size_t (*header_count)(weft_stream *s, weft_header_map m, weft_str name);
    weft_result (*header_set)(weft_stream *s, weft_header_map m, weft_str name, weft_str value);
    weft_result (*header_add)(weft_stream *s, weft_header_map m, weft_str name, weft_str value);
    weft_result (*header_remove)(weft_stream *s, weft_header_map m, weft_str name);
    weft_result (*header_iterate)(weft_stream *s, weft_header_map m, weft_header_visit visit,
                                  void *arg);
    /* request line and response status */
    weft_result (*request_get)(weft_stream *s, weft_str *method, weft_str *path, weft_str *query,
                               weft_str *authority);
    weft_result (*request_set_path)(weft_stream *s, weft_str path_and_query);
    int (*response_status)(weft_stream *s);
    weft_result (*response_set_status)(weft_stream *s, int status);

    /* body buffers */
    size_t (*buffer_length)(const weft_buffer *b);
    size_t (*buffer_copy_out)(const weft_buffer *b, size_t offset, void *dst, size_t len);
    size_t (*buffer_peek)(const weft_buffer *b, weft_str *segments, size_t max_segments);
    weft_result (*buffer_append)(weft_buffer *b, const void *data, size_t len);
    weft_result (*buffer_prepend)(weft_buffer *b, const void *data, size_t len);
    weft_result (*buffer_drain)(weft_buffer *b, size_t len);
    weft_result (*body_buffer_for_replay)(weft_stream *s, size_t max_bytes);
    size_t (*body_buffered_length)(weft_stream *s, weft_body_dir dir);
    size_t (*body_copy_out)(weft_stream *s, weft_body_dir dir, size_t offset, void *dst,
                            size_t len);

    /* control */
    weft_result (*reply_send)(weft_stream *s, int status, weft_str reason,
                              const weft_str *header_names, const weft_str *header_values,
                              size_t n_headers, weft_str body);
    weft_result (*stream_resume)(weft_stream *s);
    weft_result (*route_set_cluster)(weft_stream *s, weft_str cluster);
    weft_result (*upstream_retry)(weft_stream *s);
    weft_result (*timer_start)(weft_stream *s, uint64_t delay_ms, weft_timer_cb cb, void *arg,
                               weft_timer **out);
    weft_result (*timer_cancel)(weft_stream *s, weft_timer *t);
    weft_result (*callout_start)(weft_stream *s, weft_str cluster, weft_str method, weft_str path,
                                 const weft_str *header_names, const weft_str *header_values,
                                 size_t n_headers, weft_str body, uint64_t timeout_ms,
                                 weft_callout_cb cb, void *arg, weft_callout **out);
    weft_result (*callout_cancel)(weft_stream *s, weft_callout *c);

    /* per-stream metadata shared between filters (copied in; values live
     * until the stream ends) */
    weft_result (*metadata_set)(weft_stream *s, weft_str key, weft_str value);
    weft_result (*metadata_get)(weft_stream *s, weft_str key, weft_str *value);

    /* connection facts of the stream's downstream connection */
    weft_result (*conn_peer_address)(weft_stream *s, weft_str *ip, uint16_t *port);
    weft_result (*conn_local_address)(weft_stream *s, weft_str *ip, uint16_t *port);
    weft_result (*conn_peer_identity)(weft_stream *s,
                                      weft_str *identity); /* SPIFFE id; NOT_FOUND if none */
    bool (*conn_is_tls)(weft_stream *s);
    bool (*request_is_grpc)(weft_stream *s);

    /* stats: declared at config time, bumped by id on the request path;
     * they appear in /stats/prometheus as weft_filter_<yaml name>_<name>. */
    int32_t (*stat_counter)(weft_filter_setup *setup, const char *name, const char *help);
    int32_t (*stat_gauge)(weft_filter_setup *setup, const char *name, const char *help);
    int32_t (*stat_histogram)(weft_filter_setup *setup, const char *name, const char *help);
    void (*stat_inc)(int32_t id, uint64_t delta);
    void (*stat_gauge_add)(int32_t id, int64_t delta);
    void (*stat_observe_us)(int32_t id, uint64_t value_us);

    /* logging and time */
    void (*log)(weft_log_level_t level, const char *filter_name, const char *msg);
    bool (*log_enabled)(weft_log_level_t level);
    uint64_t (*now_us)(void); /* monotonic clock (the test kit controls it) */

    /* config accessors. Secrets: the admin /config_dump prints
     * "[redacted]" for a value the user tags `!secret` (scalar, map or
     * list: `api_key: !secret abc`) and for the value of any key whose
     * name contains token, secret, password or private_key (any case).
     * The tag changes nothing a filter reads: accessors return the real
     * value. Name secret keys that way, or tell users to tag them. */
    const weft_config_node *(*config_get)(const weft_config_node *map, const char *key);
    bool (*config_is_map)(const weft_config_node *n);
    bool (*config_is_list)(const weft_config_node *n);
    bool (*config_is_scalar)(const weft_config_node *n);
    size_t (*config_len)(const weft_config_node *n); /* list items / map entries */
    const weft_config_node *(*config_at)(const weft_config_node *list, size_t i);
    const weft_config_node *(*config_entry)(const weft_config_node *map, size_t i, weft_str *key);
    weft_result (*config_string)(const weft_config_node *n, weft_str *out);
    weft_result (*config_int)(const weft_config_node *n, int64_t *out);
    weft_result (*config_bool)(const weft_config_node *n, bool *out);
    weft_result (*config_duration_ms)(const weft_config_node *n, uint64_t *out); /* "250ms", "2s" */
    weft_result (*config_size)(const weft_config_node *n, uint64_t *out);        /* "64KiB" */
    weft_result (*config_percent)(const weft_config_node *n,
                                  double *out); /* "12.5%" or 12.5 -> 12.5 */
    /* Records `file:line:col: filter "<name>": <msg>` for node n (the
     * filter's own position when n is NULL); msg is a plain string, not a
     * format. Returns -1 so that config_create can
     * `return weft_config_fail(...)`. */
    int (*config_fail)(weft_filter_setup *setup, const weft_config_node *n, const char *msg);
    const char *(*config_filter_dir)(weft_filter_setup *setup); /* dir of the config file */

    /* transport filters */
    weft_result (*connection_set_alpn)(weft_connection *c, weft_str alpn);
    weft_result (*connection_set_peer_identity)(weft_connection *c, weft_str identity);
    weft_result (*connection_set_tls)(weft_connection *c, bool tls);

    /* ---- ABI 1.1 (functions below exist when host->size covers them) ---- */
    /* [1.1 routing] route before filters, per-route config, re-match, local replies */
    weft_result (*route_info)(weft_stream *s, weft_route_facts *out);
    weft_result (*route_refresh)(weft_stream *s);
    const void *(*route_config)(weft_stream *s);
    /* local replies (weft_reply_is_local) */
    bool (*reply_is_local)(weft_stream *s);
    /* [end 1.1 routing] */

    /* [1.1 streams] stream handles with generations, owned pauses, author helpers, typed metadata
     */
    /* owned pauses: resume tokens (weft_stream_pause_token,
     * weft_stream_resume_token) */
    weft_result (*stream_pause_token)(weft_stream *s, uint64_t *token);
    weft_result (*stream_resume_token)(weft_stream *s, uint64_t token);
    /* author helpers: formatted log lines naming the filter's YAML name,
     * typed metadata (see the wrappers weft_logf, weft_setup_logf,
     * weft_metadata_set_int and the rest) */
    void (*log_v)(weft_stream *s, weft_log_level_t level, const char *fmt, va_list ap);
    void (*setup_log_v)(weft_filter_setup *setup, weft_log_level_t level, const char *fmt,
                        va_list ap);
    weft_result (*metadata_set_int)(weft_stream *s, weft_str key, int64_t value);
    weft_result (*metadata_get_int)(weft_stream *s, weft_str key, int64_t *value);
    weft_result (*metadata_set_bytes)(weft_stream *s, weft_str key, const void *data, size_t len);
    weft_result (*metadata_get_bytes)(weft_stream *s, weft_str key, const void **data, size_t *len);
    /* [end 1.1 streams] */

    /* [1.1 retry] per-try timeout, delayed retry, untried endpoint, per-attempt headers */
    weft_result (*upstream_set_try_timeout)(weft_stream *s, uint64_t ms);
    weft_result (*upstream_retry_ex)(weft_stream *s, const weft_retry_options *opts);
    weft_result (*attempt_endpoint_label)(weft_stream *s, weft_str key, weft_str *value);
    /* [end 1.1 retry] */

    /* [1.1 state] shared state across reloads, cluster and endpoint handles, worker/config-scoped
     * timers */
    weft_result (*shared_get)(weft_filter_setup *setup, weft_str key, size_t size, uint32_t version,
                              weft_shared_init_fn init, weft_shared_destroy_fn destroy, void *arg,
                              void **out);
    weft_result (*cluster_get)(weft_filter_setup *setup, weft_str name, const weft_cluster **out);
    weft_result (*cluster_endpoint_count)(weft_stream *s, const weft_cluster *c, size_t *count);
    weft_result (*cluster_endpoint_get)(weft_stream *s, const weft_cluster *c, size_t i,
                                        weft_endpoint_info *out);
    weft_result (*cluster_endpoint_label)(weft_stream *s, const weft_cluster *c, size_t i,
                                          size_t label, weft_str *key, weft_str *value);
    weft_result (*cluster_endpoint_find)(weft_stream *s, const weft_cluster *c, weft_str address,
                                         size_t *index);
    weft_result (*endpoint_counter_add)(weft_stream *s, const weft_cluster *c, size_t i,
                                        uint32_t slot, int64_t delta, uint64_t *value);
    weft_result (*endpoint_counter_set)(weft_stream *s, const weft_cluster *c, size_t i,
                                        uint32_t slot, uint64_t value);
    weft_result (*endpoint_eject)(weft_stream *s, const weft_cluster *c, size_t i,
                                  uint64_t duration_ms);
    weft_result (*endpoint_restore)(weft_stream *s, const weft_cluster *c, size_t i);
    /* the same for a worker handle (worker timers, worker-scoped callouts) */
    weft_result (*worker_cluster_endpoint_count)(weft_worker *w, const weft_cluster *c,
                                                 size_t *count);
    weft_result (*worker_cluster_endpoint_get)(weft_worker *w, const weft_cluster *c, size_t i,
                                               weft_endpoint_info *out);
    weft_result (*worker_cluster_endpoint_label)(weft_worker *w, const weft_cluster *c, size_t i,
                                                 size_t label, weft_str *key, weft_str *value);
    weft_result (*worker_cluster_endpoint_find)(weft_worker *w, const weft_cluster *c,
                                                weft_str address, size_t *index);
    weft_result (*worker_endpoint_counter_add)(weft_worker *w, const weft_cluster *c, size_t i,
                                               uint32_t slot, int64_t delta, uint64_t *value);
    weft_result (*worker_endpoint_counter_set)(weft_worker *w, const weft_cluster *c, size_t i,
                                               uint32_t slot, uint64_t value);
    weft_result (*worker_endpoint_eject)(weft_worker *w, const weft_cluster *c, size_t i,
                                         uint64_t duration_ms);
    weft_result (*worker_endpoint_restore)(weft_worker *w, const weft_cluster *c, size_t i);
    /* [end 1.1 state] */

    /* [1.1 callout] pooled callouts, TCP callouts, fire-and-forget */
    /* worker handles, worker and config timers (weft_worker_current, weft_worker_timer_start,
     * weft_config_timer_start) */
    weft_worker *(*worker_current)(void *config);
    weft_result (*worker_timer_start)(weft_worker *w, uint64_t delay_ms, weft_worker_timer_cb cb,
                                      void *arg, weft_wtimer **out);
    weft_result (*worker_timer_cancel)(weft_worker *w, weft_wtimer *t);
    weft_result (*config_timer_start)(void *config, uint64_t delay_ms, weft_config_timer_cb cb,
                                      void *arg, weft_wtimer **out);
    weft_result (*config_timer_cancel)(void *config, weft_wtimer *t);
    /* HTTP callouts with a request struct, worker-scoped, detached (weft_callout_start2,
     * weft_worker_callout_start, weft_worker_callout_cancel) */
    weft_result (*callout_start2)(weft_stream *s, const weft_callout_request *req,
                                  weft_callout_cb cb, void *arg, weft_callout **out);
    weft_result (*worker_callout_start)(weft_worker *w, const weft_callout_request *req,
                                        weft_worker_callout_cb cb, void *arg, weft_callout **out);
    weft_result (*worker_callout_cancel)(weft_worker *w, weft_callout *c);
    /* [end 1.1 callout] */

    /* [1.1 tcp callout] raw TCP byte-stream callouts */
    weft_result (*tcp_callout_open)(weft_stream *s, weft_str cluster,
                                    const weft_tcp_callout_opts *opts,
                                    const weft_tcp_callout_cbs *cbs, void *arg,
                                    weft_tcp_callout **out);
    weft_result (*tcp_callout_write)(weft_tcp_callout *c, const void *data, size_t len);
    weft_result (*tcp_callout_close)(weft_tcp_callout *c, bool flush);
    weft_result (*worker_tcp_callout_open)(weft_worker *w, weft_str cluster,
                                           const weft_tcp_callout_opts *opts,
                                           const weft_tcp_callout_cbs *cbs, void *arg,
                                           weft_tcp_callout **out);
    /* [end 1.1 tcp callout] */

    /* [1.1 stats] labelled stat families */
    weft_result (*stat_family)(weft_filter_setup *setup, uint32_t kind, const char *name,
                               const char *help, const char *const *label_names, size_t n_labels,
                               uint32_t max_series, int32_t *family);
    weft_result (*stat_family_inc)(int32_t family, const weft_str *label_values, size_t n,
                                   uint64_t delta);
    weft_result (*stat_family_gauge_add)(int32_t family, const weft_str *label_values, size_t n,
                                         int64_t delta);
    weft_result (*stat_family_observe_us)(int32_t family, const weft_str *label_values, size_t n,
                                          uint64_t value_us);
    /* [end 1.1 stats] */

    /* [1.1 transport] transport filters: write, timers, handshake, upstream side */
    weft_result (*connection_write)(weft_connection *c, const void *data, size_t len);
    weft_result (*connection_close)(weft_connection *c, bool flush);
    weft_result (*connection_timer_start)(weft_connection *c, uint64_t delay_ms,
                                          weft_connection_timer_cb cb, void *arg, weft_timer **out);
    weft_result (*connection_timer_cancel)(weft_connection *c, weft_timer *t);
    weft_result (*connection_handshake_done)(weft_connection *c, const weft_handshake_info *info);
    weft_result (*connection_get_info)(weft_connection *c, weft_connection_info *info);
    weft_result (*conn_sni)(weft_stream *s, weft_str *sni);
    weft_result (*conn_original_dst)(weft_stream *s, weft_str *ip, uint16_t *port);
    /* [end 1.1 transport] */

    /* [1.2 stats series] series handles of labelled families */
    weft_result (*stat_family_series)(int32_t family, const weft_str *label_values, size_t n,
                                      weft_stat_series *out);
    void (*stat_series_inc)(weft_stat_series series, uint64_t delta);
    void (*stat_series_gauge_add)(weft_stat_series series, int64_t delta);
    void (*stat_series_observe_us)(weft_stat_series series, uint64_t value_us);
    /* [end 1.2 stats series] */
} weft_host_api;

/* ------------------------------------------------------------------ */
/* Convenience wrappers: weft_<noun>_<verb>(...)                       */
/* ------------------------------------------------------------------ */

/* Set by WEFT_FILTER_DEFINE's entry point before any hook runs; hidden in
 * the filter's .so so two filters never share it. */
#if defined(__GNUC__)
#define WEFT_HIDDEN __attribute__((visibility("hidden")))
#else
#define WEFT_HIDDEN
#endif
extern const weft_host_api *weft__host WEFT_HIDDEN;

/* WEFT_HOST_HAS(field): whether the host that loaded this filter has the
 * host function `field` of weft_host_api: the table's size (host->size)
 * covers it and the entry is set. 1.0 functions are always there.
 * A filter built with this (1.1) header that must also run on a 1.0 host
 * declares the oldest minor it needs with WEFT_FILTER_DESCRIPTOR_INIT_MINOR
 * (name, kind, 0) (a 1.0 host refuses a descriptor asking for 1.1), then
 * tests each newer function before calling it and degrades without it:
 *     if (WEFT_HOST_HAS(some_1_1_call)) ... else ...
 * Calling a wrapper whose function the host lacks reads past the host's
 * table: undefined behaviour, not an error code. Hooks the host does not
 * know are simply never called. THREAD: any. */
#define WEFT_HOST_HAS(field)                                                                       \
    (weft__host != NULL &&                                                                         \
     weft__host->size >= offsetof(weft_host_api, field) + sizeof(weft__host->field) &&             \
     weft__host->field != NULL)

/* Returns the value of the index-th header `name` (case-insensitive).
 * OWNERSHIP: the view is valid until the hook returns or the map changes.
 * Errors: WEFT_ERR_NOT_FOUND (no such header, or the map does not exist
 * yet: response headers before the response, trailers of a message
 * without), WEFT_ERR_HANDLE (not a live stream, NULL included). Changing a
 * map after it was sent returns WEFT_ERR_STATE: request headers can change
 * until the request header phase has passed the whole chain, response
 * headers until the response head is sent. */
static inline weft_result weft_header_get(weft_stream *s, weft_header_map m, weft_str name,
                                          weft_str *value) {
    return weft__host->header_get(s, m, name, 0, value);
}
static inline weft_result weft_header_get_nth(weft_stream *s, weft_header_map m, weft_str name,
                                              size_t i, weft_str *value) {
    return weft__host->header_get(s, m, name, i, value);
}
static inline size_t weft_header_count(weft_stream *s, weft_header_map m, weft_str name) {
    return weft__host->header_count(s, m, name);
}
/* Replaces every header `name` with one (value copied).
 * LIMIT: header_set/header_add, when the copies would pass the stream's
 * filter_arena_bytes. */
static inline weft_result weft_header_set(weft_stream *s, weft_header_map m, weft_str name,
                                          weft_str value) {
    return weft__host->header_set(s, m, name, value);
}
static inline weft_result weft_header_add(weft_stream *s, weft_header_map m, weft_str name,
                                          weft_str value) {
    return weft__host->header_add(s, m, name, value);
}
static inline weft_result weft_header_remove(weft_stream *s, weft_header_map m, weft_str name) {
    return weft__host->header_remove(s, m, name);
}
static inline weft_result weft_header_iterate(weft_stream *s, weft_header_map m,
                                              weft_header_visit v, void *arg) {
    return weft__host->header_iterate(s, m, v, arg);
}
/* Any out-parameter may be NULL. Views valid until the hook returns. */
static inline weft_result weft_request_get(weft_stream *s, weft_str *method, weft_str *path,
                                           weft_str *query, weft_str *authority) {
    return weft__host->request_get(s, method, path, query, authority);
}
/* Routing sees the new path after weft_route_refresh (the route is matched
 * before the filters since ABI 1.1; for a filter built for 1.0 the host
 * matches again after the chain).
 * LIMIT: when the copy would pass the stream's filter_arena_bytes. */
static inline weft_result weft_request_set_path(weft_stream *s, weft_str path_and_query) {
    return weft__host->request_set_path(s, path_and_query);
}
static inline int weft_response_status(weft_stream *s) {
    return weft__host->response_status(s);
}
static inline weft_result weft_response_set_status(weft_stream *s, int status) {
    return weft__host->response_set_status(s, status);
}

static inline size_t weft_buffer_length(const weft_buffer *b) {
    return weft__host->buffer_length(b);
}
static inline size_t weft_buffer_copy_out(const weft_buffer *b, size_t off, void *dst, size_t len) {
    return weft__host->buffer_copy_out(b, off, dst, len);
}
/* Fills up to max views of the buffer's contiguous segments, returns how
 * many segments the buffer has. Views valid until the buffer changes. */
static inline size_t weft_buffer_peek(const weft_buffer *b, weft_str *seg, size_t max) {
    return weft__host->buffer_peek(b, seg, max);
}
static inline weft_result weft_buffer_append(weft_buffer *b, const void *d, size_t n) {
    return weft__host->buffer_append(b, d, n);
}
static inline weft_result weft_buffer_prepend(weft_buffer *b, const void *d, size_t n) {
    return weft__host->buffer_prepend(b, d, n);
}
static inline weft_result weft_buffer_drain(weft_buffer *b, size_t n) {
    return weft__host->buffer_drain(b, n);
}
/* Keep a copy of the request body, up to max_bytes, so that an upstream
 * attempt can be replayed (retries). Call it from on_request_headers
 * (later: WEFT_ERR_STATE). Past max_bytes nothing fails at once: the copy
 * is dropped and the request can no longer be replayed, so a later
 * weft_upstream_retry is refused (see there). OWNERSHIP: the host keeps
 * the copy until the stream ends. */
static inline weft_result weft_body_buffer_for_replay(weft_stream *s, size_t max_bytes) {
    return weft__host->body_buffer_for_replay(s, max_bytes);
}
/* The body held back while this filter returned WEFT_STOP on a body hook. */
static inline size_t weft_body_buffered_length(weft_stream *s, weft_body_dir d) {
    return weft__host->body_buffered_length(s, d);
}
static inline size_t weft_body_copy_out(weft_stream *s, weft_body_dir d, size_t off, void *dst,
                                        size_t len) {
    return weft__host->body_copy_out(s, d, off, dst, len);
}

/* Sends a local reply (status, optional headers, body). `reason` goes into
 * the x-weft-reason header and the access log (may be empty).
 * RESPONSE HOOKS (ABI 1.1 hosts; a 1.0 host sent it without them): a local
 * reply, weft's own included, runs through on_response_headers (and
 * on_response_body for its body) of the filters that saw the request, the
 * replier included, in reverse order, as Envoy's sendLocalReply runs the
 * encoder filters: a filter that stamps every response stamps it too.
 * They may change status, headers and body as for an upstream response
 * (weft_reply_is_local tells them it is local), and a WEFT_STOP there
 * pauses it like any response (resume later). Filters after the replier
 * (that never saw the request) are skipped. A reply made from a response
 * header hook (of an upstream response or of another local reply), or
 * while the response headers are paused, REPLACES that response: the
 * filters after that point (toward the client) see the new one, the
 * replier and those before it are not called again (no recursion). A
 * gRPC reply (below) ends with its headers (end_stream true, no body
 * hook). For a gRPC request
 * (content-type application/grpc*) the reply is a Trailers-Only gRPC
 * response: HTTP 200 with grpc-status and grpc-message in the head, the
 * status mapped 400->13 INTERNAL, 401->16, 403->7, 404->12, 408/504->4
 * DEADLINE_EXCEEDED, 429->8 RESOURCE_EXHAUSTED, 502/503->14 UNAVAILABLE,
 * anything else ->2 UNKNOWN. If the response head already went out, the
 * downstream is reset instead (HTTP/1.1: the connection closes) and the
 * call still returns WEFT_OK. A hook that replied returns WEFT_REPLIED. */
static inline weft_result weft_reply_send(weft_stream *s, int status, weft_str reason,
                                          const weft_str *hn, const weft_str *hv, size_t n,
                                          weft_str body) {
    return weft__host->reply_send(s, status, reason, hn, hv, n, body);
}
static inline weft_result weft_reply_simple(weft_stream *s, int status, weft_str reason,
                                            weft_str body) {
    return weft__host->reply_send(s, status, reason, NULL, NULL, 0, body);
}
/* Continues a stream paused with WEFT_STOP, from the next filter. Call it
 * from a timer or callout callback (inside the hook that pauses, return
 * WEFT_CONTINUE instead: resume from inside a hook returns
 * WEFT_ERR_STATE). Resuming a stream that is not paused returns
 * WEFT_ERR_STATE.
 * OWNED PAUSES (since ABI 1.1): a pause belongs to the filter whose hook
 * returned WEFT_STOP. weft_stream_resume resumes only a pause of the
 * CALLING filter (the filter whose timer or callout callback runs);
 * when it holds both directions the request direction resumes first. A
 * pause of another filter is not touched: WEFT_ERR_STATE and one log
 * line naming both filters (an authorization filter waiting on its
 * callout cannot be released by an unrelated timer). Code that is not
 * the pausing filter resumes with the pause's token
 * (weft_stream_pause_token, weft_stream_resume_token).
 * THREAD: the stream's worker. ERRORS: WEFT_ERR_STATE (above, and in the
 * log phase), WEFT_ERR_HANDLE, WEFT_ERR_THREAD. */
static inline weft_result weft_stream_resume(weft_stream *s) {
    return weft__host->stream_resume(s);
}
/* Routes this request to another cluster (before the router runs). */
static inline weft_result weft_route_set_cluster(weft_stream *s, weft_str cluster) {
    return weft__host->route_set_cluster(s, cluster);
}
/* From on_upstream_attempt or on_response_headers: discard this attempt's
 * response and try the upstream again (the request must be replayable). */
static inline weft_result weft_upstream_retry(weft_stream *s) {
    return weft__host->upstream_retry(s);
}
/* One-shot timer on the stream's worker; cancelled when the stream ends.
 * LIMIT: filter_timers timers of this stream armed already (a fired or
 * cancelled one frees its slot), or filter_arena_bytes. */
static inline weft_result weft_timer_start(weft_stream *s, uint64_t ms, weft_timer_cb cb, void *arg,
                                           weft_timer **out) {
    return weft__host->timer_start(s, ms, cb, arg, out);
}
static inline weft_result weft_timer_cancel(weft_stream *s, weft_timer *t) {
    return weft__host->timer_cancel(s, t);
}
/* An HTTP request to a named cluster, through its upstream pools (see
 * HTTP CALLOUTS, ABI 1.1); cb runs exactly once (unless
 * cancelled) on the stream's worker. The response gives EVERY header (ABI
 * 1.1 hosts; 1.0 kept 64 silently) up to the response parser's limit of
 * 100 headers: past it the callout fails (status 0, reason
 * "too_many_headers"); the body is kept up to callouts.max_response_body
 * (1 MiB by default; past it: reason "body_too_large", ABI 1.1 hosts; a
 * 1.0 host said "response_too_large"). On an ABI 1.1 host this is
 * weft_callout_start2 with those arguments (timeout_ms 0: 5 s).
 * LIMIT: filter_callouts callouts of this stream in flight already, or
 * the worker's callouts.max_per_worker. */
static inline weft_result weft_callout_start(weft_stream *s, weft_str cluster, weft_str method,
                                             weft_str path, const weft_str *hn, const weft_str *hv,
                                             size_t n, weft_str body, uint64_t timeout_ms,
                                             weft_callout_cb cb, void *arg, weft_callout **out) {
    return weft__host->callout_start(s, cluster, method, path, hn, hv, n, body, timeout_ms, cb, arg,
                                     out);
}
/* Cancels a callout of s in flight (its callback never runs).
 * ERRORS: WEFT_ERR_INVALID for a callout that completed, was cancelled,
 * or is not one of s's. */
static inline weft_result weft_callout_cancel(weft_stream *s, weft_callout *c) {
    return weft__host->callout_cancel(s, c);
}

/* Copies key and value (a replaced value stays in the stream arena).
 * LIMIT: a new key beyond filter_metadata_entries, or the copies beyond
 * filter_arena_bytes. */
static inline weft_result weft_metadata_set(weft_stream *s, weft_str k, weft_str v) {
    return weft__host->metadata_set(s, k, v);
}
static inline weft_result weft_metadata_get(weft_stream *s, weft_str k, weft_str *v) {
    return weft__host->metadata_get(s, k, v);
}

static inline weft_result weft_conn_peer_address(weft_stream *s, weft_str *ip, uint16_t *port) {
    return weft__host->conn_peer_address(s, ip, port);
}
static inline weft_result weft_conn_local_address(weft_stream *s, weft_str *ip, uint16_t *port) {
    return weft__host->conn_local_address(s, ip, port);
}
static inline weft_result weft_conn_peer_identity(weft_stream *s, weft_str *id) {
    return weft__host->conn_peer_identity(s, id);
}
static inline bool weft_conn_is_tls(weft_stream *s) {
    return weft__host->conn_is_tls(s);
}
static inline bool weft_request_is_grpc(weft_stream *s) {
    return weft__host->request_is_grpc(s);
}

static inline int32_t weft_stat_counter(weft_filter_setup *st, const char *name, const char *help) {
    return weft__host->stat_counter(st, name, help);
}
static inline int32_t weft_stat_gauge(weft_filter_setup *st, const char *name, const char *help) {
    return weft__host->stat_gauge(st, name, help);
}
static inline int32_t weft_stat_histogram(weft_filter_setup *st, const char *name,
                                          const char *help) {
    return weft__host->stat_histogram(st, name, help);
}
static inline void weft_stat_inc(int32_t id, uint64_t d) {
    weft__host->stat_inc(id, d);
}
static inline void weft_stat_gauge_add(int32_t id, int64_t d) {
    weft__host->stat_gauge_add(id, d);
}
static inline void weft_stat_observe_us(int32_t id, uint64_t us) {
    weft__host->stat_observe_us(id, us);
}

static inline void weft_log_msg(weft_log_level_t lvl, const char *filter, const char *msg) {
    weft__host->log(lvl, filter, msg);
}
static inline bool weft_log_enabled(weft_log_level_t lvl) {
    return weft__host->log_enabled(lvl);
}
static inline uint64_t weft_clock_now_us(void) {
    return weft__host->now_us();
}

static inline const weft_config_node *weft_config_get(const weft_config_node *m, const char *key) {
    return weft__host->config_get(m, key);
}
static inline bool weft_config_is_map(const weft_config_node *n) {
    return weft__host->config_is_map(n);
}
static inline bool weft_config_is_list(const weft_config_node *n) {
    return weft__host->config_is_list(n);
}
static inline bool weft_config_is_scalar(const weft_config_node *n) {
    return weft__host->config_is_scalar(n);
}
static inline size_t weft_config_len(const weft_config_node *n) {
    return weft__host->config_len(n);
}
static inline const weft_config_node *weft_config_at(const weft_config_node *l, size_t i) {
    return weft__host->config_at(l, i);
}
static inline const weft_config_node *weft_config_entry(const weft_config_node *m, size_t i,
                                                        weft_str *key) {
    return weft__host->config_entry(m, i, key);
}
static inline weft_result weft_config_string(const weft_config_node *n, weft_str *o) {
    return weft__host->config_string(n, o);
}
static inline weft_result weft_config_int(const weft_config_node *n, int64_t *o) {
    return weft__host->config_int(n, o);
}
static inline weft_result weft_config_bool(const weft_config_node *n, bool *o) {
    return weft__host->config_bool(n, o);
}
static inline weft_result weft_config_duration_ms(const weft_config_node *n, uint64_t *o) {
    return weft__host->config_duration_ms(n, o);
}
static inline weft_result weft_config_size(const weft_config_node *n, uint64_t *o) {
    return weft__host->config_size(n, o);
}
static inline weft_result weft_config_percent(const weft_config_node *n, double *o) {
    return weft__host->config_percent(n, o);
}
static inline int weft_config_fail(weft_filter_setup *st, const weft_config_node *n,
                                   const char *msg) {
    return weft__host->config_fail(st, n, msg);
}
static inline const char *weft_config_dir(weft_filter_setup *st) {
    return weft__host->config_filter_dir(st);
}

static inline weft_result weft_connection_set_alpn(weft_connection *c, weft_str alpn) {
    return weft__host->connection_set_alpn(c, alpn);
}
static inline weft_result weft_connection_set_peer_identity(weft_connection *c, weft_str id) {
    return weft__host->connection_set_peer_identity(c, id);
}
static inline weft_result weft_connection_set_tls(weft_connection *c, bool tls) {
    return weft__host->connection_set_tls(c, tls);
}

/* ---- 1.1 wrappers ---- */
/* [1.1 routing] route before filters, per-route config, re-match, local replies */
/* The route is matched when the request headers are complete (after path
 * normalization), BEFORE the filter chain runs, so every hook (and
 * stream_create) sees it. No match is not an error at that point: the
 * filters run without a route, and when the chain passes with still no
 * route and no route_set_cluster override, weft replies 404
 * route_not_found. Redirect and direct_response routes also answer only
 * once the chain passed (a filter may deny first). */

/* The route this stream sees: out->has_route, route and virtual host
 * names, and the cluster the request would go to now (the
 * route_set_cluster override if set, else the route's; "" if none).
 * The caller sets out->size = sizeof(weft_route_facts); the host fills the
 * fields that fit (a bigger struct from a newer SDK keeps its tail).
 * OWNERSHIP: views into the config snapshot, not to be freed or written.
 * LIFETIME: valid until the stream ends or the next weft_route_refresh.
 * THREAD: the stream's worker. Works in every phase, the log phase
 * included. ERRORS: WEFT_ERR_HANDLE (not a live stream), WEFT_ERR_THREAD,
 * WEFT_ERR_INVALID (out NULL, or out->size smaller than the struct up to
 * has_route). */
static inline weft_result weft_route_info(weft_stream *s, weft_route_facts *out) {
    return weft__host->route_info(s, out);
}
/* Re-runs the route match with the request's current path, headers and
 * authority (Envoy's clearRouteCache): call it after changing what
 * routing depends on; a change alone does not re-match (filters and the
 * upstream keep one route). Exception for 1.0 filters: a filter whose
 * descriptor says abi_minor 0 that changes the request path or headers
 * gets a re-match once the request header phase passed the chain, as
 * 1.0 routed after the chain. Afterwards weft_route_info and weft_route_config
 * reflect the new route (or no route), for the caller and the filters
 * after it. A route_set_cluster override is kept. THREAD: the stream's
 * worker. ERRORS: WEFT_ERR_HANDLE, WEFT_ERR_THREAD, WEFT_ERR_STATE once
 * the request header phase has passed the whole chain (routing is done),
 * in the log phase, or before the request head exists. */
static inline weft_result weft_route_refresh(weft_stream *s) {
    return weft__host->route_refresh(s);
}
/* The CALLING filter's per-route config (what its route_config_create
 * returned for the stream's current route), NULL when the route has none
 * for this filter, when no route matched, or on misuse. The host knows the
 * caller: the filter whose hook runs, or the filter that started the
 * timer / callout whose callback runs. O(1): an array per route indexed
 * by chain position. OWNERSHIP: the filter's own object, read-only (shared
 * by every worker). LIFETIME: the stream's snapshot; after a
 * weft_route_refresh the pointer may change. THREAD: the stream's worker.
 * ERRORS: NULL for a stale handle, another thread, or a call outside any
 * hook or callback of a filter (one misuse line for the first two). */
static inline const void *weft_route_config(weft_stream *s) {
    return weft__host->route_config(s);
}

/* ---- local replies ---- */

/* True while the response being processed is a local reply: weft's own
 * (404 route_not_found, 503, 504, 408, 413, ...), a direct-response or
 * redirect route, or a filter's weft_reply_send (see there for which
 * filters' response hooks it runs through); and in the log phase
 * (on_stream_complete) when the final response was local. False before
 * any response and for an upstream response (until a reply replaces it).
 * THREAD: the stream's worker; false for a handle that is not a live
 * stream or a call from another thread (no error code: bool). */
static inline bool weft_reply_is_local(weft_stream *s) {
    return weft__host->reply_is_local(s);
}
/* [end 1.1 routing] */

/* [1.1 streams] stream handles with generations, owned pauses, author helpers, typed metadata */

/* ---- owned pauses ---- */

/* The resume token of the calling filter's pause, so that code without
 * the filter's identity (a worker-scoped callout, another filter the
 * filter trusts) can resume that pause, and only that pause, once.
 * Call it from the hook that is about to return WEFT_STOP: the token
 * becomes valid when the hook returns WEFT_STOP (any other result drops
 * it). Or call it from a timer/callout callback of the filter holding a
 * pause: the token of that pause. The same pause always gives the same
 * token; a token is never 0.
 * OWNERSHIP: a plain value; nothing to free.
 * THREAD: the stream's worker.
 * LIFETIME: valid until the pause ends (resumed by either way, a local
 * reply, the end of the stream); afterwards it is stale.
 * ERRORS: WEFT_ERR_STATE outside a hook and outside a callback of the
 * filter holding a pause, and in the log phase; WEFT_ERR_INVALID (NULL
 * token); WEFT_ERR_HANDLE, WEFT_ERR_THREAD. */
static inline weft_result weft_stream_pause_token(weft_stream *s, uint64_t *token) {
    return weft__host->stream_pause_token(s, token);
}
/* Resumes the pause that `token` belongs to (whichever direction), as if
 * its filter called weft_stream_resume. Usable from any callback on the
 * stream's worker (a timer or callout callback of any filter, a
 * worker-scoped callback); not from inside a hook.
 * THREAD: the stream's worker.
 * ERRORS: WEFT_ERR_STATE when no pause of this stream holds the token
 * (stale: already used, the pause ended, the hook did not return
 * WEFT_STOP, another exchange's token), inside a hook, or in the log
 * phase (one misuse line); WEFT_ERR_HANDLE, WEFT_ERR_THREAD. */
static inline weft_result weft_stream_resume_token(weft_stream *s, uint64_t token) {
    return weft__host->stream_resume_token(s, token);
}

/* ---- author helpers ---- */

/* A view of a NUL-terminated C string (NULL gives the empty view). No
 * host call: usable anywhere, any thread, on any ABI 1.x host.
 * LIFETIME: the view borrows cstr. */
static inline weft_str weft_str_c(const char *cstr) {
    return cstr ? (weft_str){cstr, strlen(cstr)} : (weft_str){"", 0};
}

#if defined(__GNUC__)
#define WEFT_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#else
#define WEFT_PRINTF(fmt_idx, args_idx)
#endif

/* One line in weft's log, printf-formatted (the format is checked at
 * compile time under GCC and Clang): "filter <name>: <message>", where
 * <name> is the filter's name in the listener's `filters` list (its YAML
 * name, as in its stats), taken from the filter whose hook or callback is
 * running on s. Lines below the log level cost no formatting.
 * s: a live stream on its worker (the usual case), or NULL (any thread;
 * the line then reads "filter ?: ..." since the host cannot tell which
 * filter called; at config time use weft_setup_logf). A handle that is
 * not live, or a call from another thread than the stream's, still logs,
 * as with NULL.
 * LIMIT: the message is cut at 800 bytes (after escaping), ending in
 * "..."; control characters (bytes below 0x20, and 0x7f) are written as
 * \xNN, so a message cannot forge log lines. Bytes from 0x80 pass
 * (UTF-8). THREAD: any (see above for the name). ERRORS: none (void). */
static inline WEFT_PRINTF(3, 4) void weft_logf(weft_stream *s, weft_log_level_t level,
                                               const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    weft__host->log_v(s, level, fmt, ap);
    va_end(ap);
}
/* The same at config time, from config_create: the line names the filter
 * of `setup` (its YAML name). THREAD: main (setup is valid only during
 * config_create). NULL setup: "filter ?". */
static inline WEFT_PRINTF(3, 4) void weft_setup_logf(weft_filter_setup *setup,
                                                     weft_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    weft__host->setup_log_v(setup, level, fmt, ap);
    va_end(ap);
}

/* Typed metadata: the same per-stream map as weft_metadata_set/get (one
 * key space, the same caps: a new key counts against
 * filter_metadata_entries, every copy against filter_arena_bytes), each
 * value carrying its type: string (weft_metadata_set), integer or bytes.
 * Setting a key replaces its value AND its type. A get of another type
 * than the key holds returns WEFT_ERR_INVALID (the key exists, with
 * another type) and leaves *value untouched; WEFT_ERR_NOT_FOUND means no
 * such key. weft_metadata_get on an integer or bytes key is such a
 * mismatch too (WEFT_ERR_INVALID).
 * OWNERSHIP: values are copied in. LIFETIME: a bytes view is valid until
 * the key is set again or the stream ends (as string values).
 * THREAD: the stream's worker (else WEFT_ERR_THREAD). ERRORS: INVALID
 * (empty key, NULL data with len > 0, NULL out-parameter of a get, type
 * mismatch), NOT_FOUND, HANDLE, THREAD, NOMEM.
 * LIMIT: a new key beyond filter_metadata_entries, or the copy beyond
 * filter_arena_bytes. Allowed in the log phase (on_stream_complete). */
static inline weft_result weft_metadata_set_int(weft_stream *s, weft_str key, int64_t value) {
    return weft__host->metadata_set_int(s, key, value);
}
static inline weft_result weft_metadata_get_int(weft_stream *s, weft_str key, int64_t *value) {
    return weft__host->metadata_get_int(s, key, value);
}
/* Any bytes (NULs included), len of them; len 0 stores an empty value. */
static inline weft_result weft_metadata_set_bytes(weft_stream *s, weft_str key, const void *data,
                                                  size_t len) {
    return weft__host->metadata_set_bytes(s, key, data, len);
}
static inline weft_result weft_metadata_get_bytes(weft_stream *s, weft_str key, const void **data,
                                                  size_t *len) {
    return weft__host->metadata_get_bytes(s, key, data, len);
}
/* [end 1.1 streams] */

/* [1.1 retry] per-try timeout, delayed retry, untried endpoint, per-attempt headers */
/* Per-try timeout: each upstream attempt started after this call (the
 * current one too when called from on_upstream_request) may take at most
 * `ms` from the end of its request (the whole request written toward the
 * upstream) to its response head; 0 turns it off (the default). An attempt
 * that exceeds it is cut (its connection closed) and reported to
 * on_upstream_attempt as WEFT_ATTEMPT_TIMEOUT with
 * WEFT_ATTEMPT_F_PER_TRY_TIMEOUT; a filter may retry it while the route
 * timeout still runs (the route timeout spans all attempts); without a
 * retry the client gets 504 upstream_per_try_timeout, response flag UT.
 * THREAD: the stream's worker. ERRORS: WEFT_ERR_HANDLE, WEFT_ERR_THREAD;
 * WEFT_ERR_STATE once the response head went downstream, in the log phase;
 * WEFT_ERR_INVALID for ms above 86400000 (one day). */
static inline weft_result weft_upstream_set_try_timeout(weft_stream *s, uint64_t ms) {
    return weft__host->upstream_set_try_timeout(s, ms);
}
/* weft_upstream_retry with options (opts->size set; a size below the 1.1
 * struct's is WEFT_ERR_INVALID). Same calling points as weft_upstream_retry
 * (on_upstream_attempt, on_response_headers, or a timer or callout callback
 * while the response headers are paused) and same refusals (WEFT_ERR_STATE:
 * the response started downstream, a request body not kept for replay, the
 * log phase, inside on_upstream_request, and while a delayed retry waits).
 * A later retry call in the same hook replaces the options.
 * delay_ms > 0: the attempt is discarded at once (its connection closed, its
 * response dropped) and the next one starts after delay_ms, on the stream's
 * worker, without holding it (a timer); the route timeout keeps running
 * during the delay (ending the stream with 504 when it passes), the stream's
 * idle timeout too, and the wait is cancelled if the stream ends. The next
 * attempt reports the time waited in weft_attempt_info.backoff_us. LIMIT:
 * delay_ms at most 3600000 (WEFT_ERR_INVALID above).
 * WEFT_RETRY_OTHER_ENDPOINT: the load balancer skips every endpoint this
 * stream's attempts already went to, while a healthy untried one exists;
 * otherwise it picks among all healthy ones as usual (the attempt then has
 * WEFT_ATTEMPT_F_ENDPOINT_TRIED). Tried endpoints are remembered per endpoint
 * list: after an endpoint update between attempts, any endpoint may be picked.
 * Unknown flags: WEFT_ERR_INVALID. THREAD: the stream's worker. */
static inline weft_result weft_upstream_retry_ex(weft_stream *s, const weft_retry_options *opts) {
    return weft__host->upstream_retry_ex(s, opts);
}
/* weft_upstream_retry after delay_ms (backoff): weft_upstream_retry_ex with
 * only a delay. */
static inline weft_result weft_upstream_retry_after(weft_stream *s, uint64_t delay_ms) {
    weft_retry_options o = {sizeof(o), delay_ms, 0};
    return weft__host->upstream_retry_ex(s, &o);
}
/* The value of label `key` (exact, case-sensitive) of the endpoint of the
 * stream's current or last upstream attempt (the one on_upstream_attempt
 * just reported). Callable from any hook or callback of the stream after
 * the first attempt started, the log phase included. LIFETIME: the view is
 * valid until the hook or callback returns. ERRORS: WEFT_ERR_NOT_FOUND (no
 * attempt yet, or no such label), WEFT_ERR_INVALID (value NULL),
 * WEFT_ERR_HANDLE, WEFT_ERR_THREAD. THREAD: the stream's worker. */
static inline weft_result weft_attempt_endpoint_label(weft_stream *s, weft_str key,
                                                      weft_str *value) {
    return weft__host->attempt_endpoint_label(s, key, value);
}
/* [end 1.1 retry] */

/* [1.1 state] shared state across reloads, cluster and endpoint handles, worker/config-scoped
 * timers */

/* Named shared state that survives reloads. Returns in *out a block of
 * `size` bytes (64-byte aligned) keyed by (the filter's YAML name, key):
 * zeroed and passed to `init` (may be NULL) when it is created; the SAME
 * block, contents kept, when a config (this snapshot's or a newer one)
 * asks for the same key with the same size and version while the block
 * lives. A different size or version is another layout: a new zeroed
 * block (the old one lives on for the configs that hold it). Keys are the
 * filter's choice (one per cluster, per route, ...); two filters of the
 * same YAML name (on two listeners) share their blocks.
 * OWNERSHIP: the block is weft's; this config holds one reference per
 * call, released after its config_destroy (so config_destroy may still
 * use it); the block is freed when no config holds it, after `destroy`
 * (may be NULL) ran with `arg` of the newest config that asked. The
 * contents are the filter's: every worker of every snapshot that holds it
 * uses it at once (old and new configs during a reload), so use C11
 * atomics or per-worker shards in it, never a lock on the request path.
 * THREAD: main, inside config_create or route_config_create only (the
 * block itself: any). From route_config_create (per-route state: key it
 * by route) the reference is the filter config's too, released after
 * its config_destroy, so route_config_destroy may still use the block.
 * LIFETIME: valid until this config's config_destroy returns.
 * ERRORS: WEFT_ERR_INVALID (key empty or longer than 256 bytes, size 0 or
 * above 64 MiB, out NULL), WEFT_ERR_NOMEM. */
static inline weft_result weft_shared_get(weft_filter_setup *st, weft_str key, size_t size,
                                          uint32_t version, weft_shared_init_fn init,
                                          weft_shared_destroy_fn destroy, void *arg, void **out) {
    return weft__host->shared_get(st, key, size, version, init, destroy, arg, out);
}
/* Looks up cluster `name` of the config being built, for the calls below.
 * OWNERSHIP: the handle is weft's, valid as long as this config object.
 * THREAD: main, inside config_create or route_config_create only.
 * ERRORS: WEFT_ERR_NOT_FOUND (no such cluster in this config),
 * WEFT_ERR_INVALID (out NULL). */
static inline weft_result weft_cluster_get(weft_filter_setup *st, weft_str name,
                                           const weft_cluster **out) {
    return weft__host->cluster_get(st, name, out);
}
/* ENDPOINTS. The calls below read a cluster's live endpoints as the
 * stream's worker's load balancer sees them now (DNS refreshes, health
 * checks and ejections included), on behalf of stream s. An endpoint is
 * named by its index i in that view, 0 .. count-1; the view, its indexes
 * and its weft_str views stay the same until the hook or callback that
 * asked returns (the view can change between hooks: find an endpoint
 * again by its address, which is its identity).
 * THREAD: the worker owning s (any hook, the log phase included; timer
 * and callout callbacks). ERRORS (all): WEFT_ERR_HANDLE / WEFT_ERR_THREAD
 * as for every stream call, WEFT_ERR_INVALID (c NULL or not a cluster of
 * the config s runs on, an out-parameter NULL), WEFT_ERR_NOT_FOUND (i past
 * the view). */
/* Number of endpoints (0 while a DNS cluster has no answer yet). */
static inline weft_result weft_cluster_endpoint_count(weft_stream *s, const weft_cluster *c,
                                                      size_t *count) {
    return weft__host->cluster_endpoint_count(s, c, count);
}
/* Endpoint i. Set out->size = sizeof(*out) first (INVALID when smaller
 * than the 1.1 struct); weft fills what both know. LIFETIME: the weft_str
 * members, until the hook or callback returns. */
static inline weft_result weft_cluster_endpoint_get(weft_stream *s, const weft_cluster *c, size_t i,
                                                    weft_endpoint_info *out) {
    return weft__host->cluster_endpoint_get(s, c, i, out);
}
/* Label `label` (0 .. n_labels-1, sorted by key) of endpoint i.
 * NOT_FOUND past the labels. LIFETIME: as weft_cluster_endpoint_get. */
static inline weft_result weft_cluster_endpoint_label(weft_stream *s, const weft_cluster *c,
                                                      size_t i, size_t label, weft_str *key,
                                                      weft_str *value) {
    return weft__host->cluster_endpoint_label(s, c, i, label, key, value);
}
/* The index of the endpoint whose address is `address` ("ip:port" as in
 * weft_endpoint_info.address and weft_attempt_info.upstream_host).
 * NOT_FOUND when the view has no such endpoint. */
static inline weft_result weft_cluster_endpoint_find(weft_stream *s, const weft_cluster *c,
                                                     weft_str address, size_t *index) {
    return weft__host->cluster_endpoint_find(s, c, address, index);
}
/* PER-ENDPOINT COUNTERS: WEFT_ENDPOINT_COUNTER_SLOTS atomic uint64 per
 * endpoint, for the filters' use (consecutive 5xx, failures, ...); weft
 * never writes them. They are kept with the endpoint (cluster name +
 * address), like ejection: shared by every worker, kept over reloads,
 * DNS refreshes and endpoint pushes that keep the endpoint, zero for a
 * new one. The slots belong to the endpoint, not to a filter: filters
 * that count on the same cluster must use different slots (take the slot
 * numbers from config). Adds `delta` (negative subtracts, modulo 2^64)
 * and sets *value (may be NULL) to the result: delta 0 reads.
 * ERRORS: also WEFT_ERR_INVALID (slot >= WEFT_ENDPOINT_COUNTER_SLOTS),
 * WEFT_ERR_STATE (weft could not allocate the endpoint's state). */
static inline weft_result weft_endpoint_counter_add(weft_stream *s, const weft_cluster *c, size_t i,
                                                    uint32_t slot, int64_t delta, uint64_t *value) {
    return weft__host->endpoint_counter_add(s, c, i, slot, delta, value);
}
static inline weft_result weft_endpoint_counter_set(weft_stream *s, const weft_cluster *c, size_t i,
                                                    uint32_t slot, uint64_t value) {
    return weft__host->endpoint_counter_set(s, c, i, slot, value);
}
/* EJECTION (outlier detection): every worker's load balancer skips
 * endpoint i of cluster c from its next pick on (an atomic flag read per
 * pick, no message between workers) for duration_ms, or until restored.
 * Ejecting again replaces the deadline. If every healthy endpoint of the
 * cluster is ejected, weft ignores ejection (panic mode, as Envoy): it
 * never makes a cluster with healthy endpoints answer 503 by itself;
 * limiting the ejected share (Istio's maxEjectionPercent) is the
 * filter's job. Ejection is kept with the endpoint over reloads, DNS
 * refreshes and endpoint pushes that keep it (same address:port in a
 * cluster of the same name), and /clusters shows it
 * (health_flags::/failed_outlier_check, ejected_remaining_ms).
 * ERRORS: also WEFT_ERR_INVALID (duration_ms 0 or above 86,400,000: one
 * day), WEFT_ERR_STATE (weft could not allocate the endpoint's state). */
static inline weft_result weft_endpoint_eject(weft_stream *s, const weft_cluster *c, size_t i,
                                              uint64_t duration_ms) {
    return weft__host->endpoint_eject(s, c, i, duration_ms);
}
/* Ends an ejection now (WEFT_OK also when it was not ejected). */
static inline weft_result weft_endpoint_restore(weft_stream *s, const weft_cluster *c, size_t i) {
    return weft__host->endpoint_restore(s, c, i);
}
/* WORKER VARIANTS: the eight endpoint calls above for work that belongs
 * to no stream (an un-ejection or a health sweep from a worker timer, a
 * worker-scoped callout's callback), with a worker handle w
 * (weft_worker_current) in place of the stream. Same arguments, same
 * semantics and limits: the view is the load balancer's of w's worker
 * for the config snapshot w belongs to (c must be a cluster of that
 * config: weft_cluster_get in the config_create of the config w is a
 * worker handle of); counters and ejection are the endpoint's, shared
 * with every worker and with the stream calls.
 * THREAD: w's worker (worker_create, hooks, worker timer and callout
 * callbacks). LIFETIME: the view, its indexes and weft_str views stay
 * the same until the hook or callback that asked returns.
 * ERRORS: as the stream calls, with WEFT_ERR_HANDLE (not a live worker
 * handle, NULL included), WEFT_ERR_THREAD (another worker's handle) for
 * w, and WEFT_ERR_STATE inside worker_destroy (the worker's view of the
 * snapshot is gone by then) as well as when weft could not allocate the
 * endpoint's state.
 * TRANSPORT FILTERS have no worker handle (weft_worker_current answers
 * NULL for their config: they have no worker_create / worker_destroy to
 * bound one) and no stream: they cannot make these calls; an outlier
 * policy lives in an HTTP filter. */
static inline weft_result weft_worker_cluster_endpoint_count(weft_worker *w, const weft_cluster *c,
                                                             size_t *count) {
    return weft__host->worker_cluster_endpoint_count(w, c, count);
}
static inline weft_result weft_worker_cluster_endpoint_get(weft_worker *w, const weft_cluster *c,
                                                           size_t i, weft_endpoint_info *out) {
    return weft__host->worker_cluster_endpoint_get(w, c, i, out);
}
static inline weft_result weft_worker_cluster_endpoint_label(weft_worker *w, const weft_cluster *c,
                                                             size_t i, size_t label, weft_str *key,
                                                             weft_str *value) {
    return weft__host->worker_cluster_endpoint_label(w, c, i, label, key, value);
}
static inline weft_result weft_worker_cluster_endpoint_find(weft_worker *w, const weft_cluster *c,
                                                            weft_str address, size_t *index) {
    return weft__host->worker_cluster_endpoint_find(w, c, address, index);
}
static inline weft_result weft_worker_endpoint_counter_add(weft_worker *w, const weft_cluster *c,
                                                           size_t i, uint32_t slot, int64_t delta,
                                                           uint64_t *value) {
    return weft__host->worker_endpoint_counter_add(w, c, i, slot, delta, value);
}
static inline weft_result weft_worker_endpoint_counter_set(weft_worker *w, const weft_cluster *c,
                                                           size_t i, uint32_t slot,
                                                           uint64_t value) {
    return weft__host->worker_endpoint_counter_set(w, c, i, slot, value);
}
static inline weft_result weft_worker_endpoint_eject(weft_worker *w, const weft_cluster *c,
                                                     size_t i, uint64_t duration_ms) {
    return weft__host->worker_endpoint_eject(w, c, i, duration_ms);
}
static inline weft_result weft_worker_endpoint_restore(weft_worker *w, const weft_cluster *c,
                                                       size_t i) {
    return weft__host->worker_endpoint_restore(w, c, i);
}
/* [end 1.1 state] */

/* [1.1 callout] pooled callouts, TCP callouts, fire-and-forget */
/* WORKER HANDLES. Each HTTP filter config has one worker handle per worker
 * thread, from just before its worker_create until just after its
 * worker_destroy: since ABI 1.1 worker_create runs on every worker when
 * the worker adopts the config (not at the first request), so worker
 * timers start without traffic. weft_worker_current returns the handle of
 * the CALLING worker thread for `config` (the object config_create
 * returned; distinct filters' configs must be distinct objects).
 * THREAD: any; it returns NULL on a thread that is not a weft worker (the
 * main thread: config_create, config timers, config_destroy), inside
 * config_create, and for a config that is not a live config of this
 * worker (or NULL). Call it in worker_create, in any hook or callback on
 * the worker, and keep the result in the worker object.
 * LIFETIME: the handle is valid until worker_destroy returns; every
 * worker timer (and callout) of it is cancelled before worker_destroy
 * runs, without its callback. A kept handle after that is stale: every
 * call gets WEFT_ERR_HANDLE and never acts on another config's handle.
 * Another worker's handle gets WEFT_ERR_THREAD (hand work to other
 * workers through shared state, not through their handles). */
static inline weft_worker *weft_worker_current(void *config) {
    return weft__host->worker_current(config);
}
/* One-shot timer on the handle's worker: cb(w, arg) runs on that worker
 * thread after delay_ms (0: on the next loop turn), outside any stream
 * (make a periodic timer by starting the next one from cb). *out (may
 * be NULL) names it for weft_worker_timer_cancel until it fires or is
 * cancelled. THREAD: the handle's worker (worker_create, hooks, timer and
 * callout callbacks; inside worker_destroy: WEFT_ERR_STATE).
 * LIMIT: WEFT_WORKER_TIMERS_MAX timers armed at once per handle.
 * ERRORS: WEFT_ERR_HANDLE (not a live worker handle, NULL included),
 * WEFT_ERR_THREAD, WEFT_ERR_INVALID (cb NULL, delay_ms above
 * WEFT_TIMER_MAX_MS), WEFT_ERR_STATE (worker_destroy is running),
 * WEFT_ERR_LIMIT, WEFT_ERR_NOMEM. */
#define WEFT_WORKER_TIMERS_MAX 1024u
#define WEFT_TIMER_MAX_MS (30ull * 86400000ull) /* 30 days */
static inline weft_result weft_worker_timer_start(weft_worker *w, uint64_t delay_ms,
                                                  weft_worker_timer_cb cb, void *arg,
                                                  weft_wtimer **out) {
    return weft__host->worker_timer_start(w, delay_ms, cb, arg, out);
}
/* Cancels an armed worker timer of w (its callback never runs).
 * ERRORS: as weft_worker_timer_start, and WEFT_ERR_NOT_FOUND for a timer
 * that already fired or was cancelled, or is not one of w's. */
static inline weft_result weft_worker_timer_cancel(weft_worker *w, weft_wtimer *t) {
    return weft__host->worker_timer_cancel(w, t);
}
/* CONFIG TIMERS: one-shot timers of a filter config (HTTP or transport)
 * on the MAIN thread (a certificate or key file check, a JWKS schedule
 * kept in shared state): cb(config, arg) runs there after delay_ms,
 * never on a worker. `config` names the config: inside config_create it
 * must be the object config_create returns in *config (weft binds the
 * timer to the config being created; if config_create fails the timers
 * are cancelled); later (from a config timer callback) the object
 * config_create returned. Every config timer is cancelled, without its
 * callback, before the config's config_destroy (after a reload: when the
 * old config's last stream ended). A timer started in the first config
 * load, before weft's main loop runs, fires counting from the moment the
 * loop starts. THREAD: main (config_create, config timer callbacks).
 * LIMIT: WEFT_WORKER_TIMERS_MAX armed per config.
 * ERRORS: WEFT_ERR_THREAD (not the main thread), WEFT_ERR_NOT_FOUND
 * (outside config_create, `config` is not a live config with config
 * timers, or its config_destroy runs), WEFT_ERR_INVALID (cb NULL,
 * delay_ms above WEFT_TIMER_MAX_MS), WEFT_ERR_LIMIT, WEFT_ERR_NOMEM. */
static inline weft_result weft_config_timer_start(void *config, uint64_t delay_ms,
                                                  weft_config_timer_cb cb, void *arg,
                                                  weft_wtimer **out) {
    return weft__host->config_timer_start(config, delay_ms, cb, arg, out);
}
/* Cancels an armed config timer. ERRORS: as weft_config_timer_start, and
 * WEFT_ERR_NOT_FOUND (fired, cancelled, or not one of this config's). */
static inline weft_result weft_config_timer_cancel(void *config, weft_wtimer *t) {
    return weft__host->config_timer_cancel(config, t);
}
/* HTTP CALLOUTS (ABI 1.1). An HTTP request to an endpoint of a cluster,
 * picked by the cluster's load balancer, through the cluster's upstream
 * pools: a kept-alive HTTP/1.1 connection is reused, HTTP/2 is used when
 * the cluster's protocol is http2 (or auto picked it), the cluster's
 * transport filters (TLS) apply, a failed connect moves to another
 * endpoint (the cluster's connect_attempts). A callout dropped before it
 * completes (its stream ended, cancelled, timeout, body limit) closes its
 * HTTP/1.1 connection or resets its HTTP/2 stream. The response gives every header
 * (up to the response parser's limit of 100: past it status 0, reason
 * "too_many_headers") and the body up to req->max_response_body (0: the
 * top-level callouts.max_response_body, 1 MiB by default; past it status
 * 0, reason "body_too_large"). Other reasons (status 0): "timeout",
 * "connect_failure", "upstream_reset", "protocol_error", "out_of_memory".
 * A callout never runs its callback from inside the host call that
 * started it.
 * STREAM-SCOPED (weft_callout_start2): the callout belongs to stream s
 * and the calling filter; cb(s, stream_ctx, arg, resp) runs exactly once
 * on the stream's worker as that filter's callback (weft_stream_resume
 * works from it), unless it is cancelled (weft_callout_cancel) or the
 * stream ends first: then it never runs, and the callout is dropped.
 * DETACHED (req->flags WEFT_CALLOUT_DETACHED): cb must be NULL and *out
 * is set to NULL (there is nothing to cancel); the request goes out and
 * its response is read and discarded; the stream never waits for it and
 * may end first (the callout is then the worker's until it completes or
 * times out). Counted per cluster in /stats/prometheus:
 * weft_upstream_callout_detached_sent_total{cluster} when started,
 * weft_upstream_callout_detached_failed_total{cluster} when it got no
 * response (any reason above) or a 5xx.
 * OWNERSHIP: the host copies the request (method, path, authority,
 * headers, body) during the call; req->body_buffer's bytes are moved out
 * on WEFT_OK (the buffer stays the filter's, empty) and left alone on an
 * error. resp and its views are valid during the callback only.
 * *out (may be NULL) is a handle (not a pointer) until the callback
 * returns or the callout is cancelled; the stream's filter_callouts cap
 * frees that slot then.
 * THREAD: the stream's worker, from a hook or a callback of s.
 * ERRORS: WEFT_ERR_INVALID (req NULL, req->size below this struct,
 * unknown flags, cb NULL without DETACHED or set with it, an empty or
 * invalid method, a path not starting with '/', invalid header names or
 * values, n_headers > 0 without arrays), WEFT_ERR_NOT_FOUND (no such
 * cluster, no healthy endpoint), WEFT_ERR_STATE (not from a hook or
 * callback, or in the log phase), WEFT_ERR_HANDLE, WEFT_ERR_THREAD,
 * WEFT_ERR_NOMEM. A failure after the call (connect, timeout) comes as
 * the callback's reason (a detached one counts as failed).
 * LIMIT: filter_callouts callouts of this stream in flight (detached ones
 * do not count here), or the worker's cap: callouts.max_per_worker (1024
 * by default) HTTP and TCP callouts in flight on the worker, of every
 * scope and filter together. A callout whose callback runs counts against
 * neither cap (its connection is released): the callback may start the
 * next one. */
static inline weft_result weft_callout_start2(weft_stream *s, const weft_callout_request *req,
                                              weft_callout_cb cb, void *arg, weft_callout **out) {
    return weft__host->callout_start2(s, req, cb, arg, out);
}
/* The same, WORKER-SCOPED: the callout belongs to worker handle w
 * (weft_worker_current); cb(w, arg, resp) runs once on w's worker
 * outside any stream (resume a stream from it with its pause token). It
 * is cancelled, without its callback, before the filter's worker_destroy
 * (w's config retired on that worker: a reload). DETACHED works as for a
 * stream (cb NULL, *out NULL). THREAD: w's worker (worker_create, hooks,
 * timer and callout callbacks). ERRORS: as weft_callout_start2, with
 * WEFT_ERR_HANDLE / WEFT_ERR_THREAD for w and WEFT_ERR_STATE while
 * worker_destroy runs. LIMIT: callouts.max_per_worker. */
static inline weft_result weft_worker_callout_start(weft_worker *w, const weft_callout_request *req,
                                                    weft_worker_callout_cb cb, void *arg,
                                                    weft_callout **out) {
    return weft__host->worker_callout_start(w, req, cb, arg, out);
}
/* Cancels a worker-scoped callout of w in flight (its callback never
 * runs). THREAD: w's worker. ERRORS: WEFT_ERR_HANDLE / WEFT_ERR_THREAD for
 * w, WEFT_ERR_NOT_FOUND for a callout that completed, was cancelled, or
 * is not one of w's (a stream's: weft_callout_cancel). */
static inline weft_result weft_worker_callout_cancel(weft_worker *w, weft_callout *c) {
    return weft__host->worker_callout_cancel(w, c);
}
/* [end 1.1 callout] */

/* [1.1 tcp callout] raw TCP byte-stream callouts */
/* Opens a raw TCP connection to an endpoint of `cluster` picked by the
 * cluster's load balancer (the endpoint's active-request count covers the
 * connection's life; a failed or timed-out connect is tried on another
 * endpoint, up to opts->connect_attempts endpoints (0: the cluster's
 * connect_attempts), like weft's own connect retry). Bytes written before
 * the connect completes wait and go out once it does.
 * STREAM-SCOPED: the callout belongs to stream s and the calling filter:
 * it is closed (no callback) when the stream ends, and its callbacks run
 * as that filter's callbacks on s (weft_stream_resume works from them).
 * OWNERSHIP: *out is a handle (not a pointer), valid until on_close
 * returns or weft_tcp_callout_close; the host copies opts and cbs; arg
 * stays the filter's. THREAD: the stream's worker, from a hook or a
 * callback of s. opts may be NULL (every default).
 * ERRORS: WEFT_ERR_INVALID (cbs NULL, without on_data or with a size
 * below the 1.1 struct, opts->size too small, unknown flags, out NULL,
 * or a cluster with transport_filters: TCP callouts do not run them, weft
 * logs why), WEFT_ERR_NOT_FOUND (no such cluster, no healthy endpoint),
 * WEFT_ERR_STATE (not from a hook or callback, or in the log phase),
 * WEFT_ERR_HANDLE, WEFT_ERR_THREAD, WEFT_ERR_NOMEM. A connect that fails
 * later comes as on_close (CONNECT_FAILURE or CONNECT_TIMEOUT).
 * LIMIT: filter_callouts TCP callouts of the stream open at once, or
 * callouts.max_per_worker (1024 by default) HTTP and TCP callouts open on
 * the worker together. One whose on_close runs counts against neither
 * (its connection is gone: it may reconnect from there); one closed with
 * flush that is still sending counts against the worker's cap until it
 * goes (see weft_tcp_callout_close). */
static inline weft_result weft_tcp_callout_open(weft_stream *s, weft_str cluster,
                                                const weft_tcp_callout_opts *opts,
                                                const weft_tcp_callout_cbs *cbs, void *arg,
                                                weft_tcp_callout **out) {
    return weft__host->tcp_callout_open(s, cluster, opts, cbs, arg, out);
}
/* The same, WORKER-SCOPED: the callout belongs to worker handle w
 * (weft_worker_current) and lives until closed, ended (after on_close),
 * or w's context goes (its snapshot retired on that worker: closed
 * without a callback before the filter's worker_destroy). This is the
 * reuse path: one connection per worker kept open across requests
 * (Redis keepalive), commands of several requests pipelined on it.
 * Callbacks run on w's worker outside any stream: resume a stream from
 * them with its pause token (weft_stream_resume_token) or reply to it
 * (weft_reply_send with a kept, generation-checked stream handle).
 * THREAD: w's worker (worker_create, hooks, callbacks). ERRORS: as
 * weft_tcp_callout_open, with WEFT_ERR_HANDLE / WEFT_ERR_THREAD for w, and
 * WEFT_ERR_STATE while worker_destroy runs. LIMIT: callouts.max_per_worker
 * HTTP and TCP callouts open on the worker. */
static inline weft_result weft_worker_tcp_callout_open(weft_worker *w, weft_str cluster,
                                                       const weft_tcp_callout_opts *opts,
                                                       const weft_tcp_callout_cbs *cbs, void *arg,
                                                       weft_tcp_callout **out) {
    return weft__host->worker_tcp_callout_open(w, cluster, opts, cbs, arg, out);
}
/* Queues len bytes toward the peer (copied): out at the end of the loop
 * turn, or once connected. THREAD: the worker that opened c (any of its
 * hooks or callbacks). ERRORS: WEFT_ERR_HANDLE (not a live callout:
 * closed, ended (after on_close), its scope ended, NULL), WEFT_ERR_THREAD
 * (another worker's), WEFT_ERR_INVALID (data NULL with len > 0),
 * WEFT_ERR_STATE (inside on_close: the connection is gone).
 * LIMIT: the queued bytes would pass opts->max_write_bytes (nothing is
 * queued; write again after the peer has read). */
static inline weft_result weft_tcp_callout_write(weft_tcp_callout *c, const void *data,
                                                 size_t len) {
    return weft__host->tcp_callout_write(c, data, len);
}
/* Closes c: no callback runs after this and the handle is dead at once
 * (also from inside c's own callbacks). flush true: what is queued still
 * goes out (after the connect, if one is in progress), then the write
 * side shuts and the connection goes when the peer closes, at the latest
 * after 5 s; false: at once. LIMIT: a flush-close with bytes queued keeps
 * counting against callouts.max_per_worker (not the stream's
 * filter_callouts) until the connection goes: it still holds a socket and
 * up to max_write_bytes, and the cap is what bounds those per worker (a
 * filter that opens, writes and flush-closes in a loop toward a slow peer
 * gets WEFT_ERR_LIMIT instead of piling them up). THREAD, ERRORS: as
 * weft_tcp_callout_write. */
static inline weft_result weft_tcp_callout_close(weft_tcp_callout *c, bool flush) {
    return weft__host->tcp_callout_close(c, flush);
}
/* [end 1.1 tcp callout] */

/* [1.1 stats] labelled stat families */
/* LABELLED FAMILIES (ABI 1.1): a counter, gauge or histogram declared at
 * config time with label NAMES, updated on the request path with label
 * VALUES; each distinct combination of values is one series. In
 * /stats/prometheus a family is
 *     weft_filter_<yaml name>_<name>{listener="<listener>",<label>="<value>",...}
 * (cluster="<cluster>" instead of listener for a cluster's transport
 * filters). Values are escaped as the text format wants (backslash,
 * double quote and newline are written \\, \" and \n; other control
 * characters and bytes that are not UTF-8 become U+FFFD).
 * CARDINALITY is bounded: past max_series distinct combinations, or for
 * a value longer than WEFT_STAT_LABEL_VALUE_MAX bytes, an update goes to
 * the family's OVERFLOW series, whose every label is "__overflow__"
 * (WEFT_STAT_OVERFLOW_VALUE), and the counter
 * weft_filter_<yaml name>_<name without _total>_overflow_total counts the
 * updates folded there. Series are never dropped while the family lives:
 * choose label values from a small set (methods, status classes, route
 * names), never user input such as paths or ids. */
#define WEFT_STAT_KIND_COUNTER 0u
#define WEFT_STAT_KIND_GAUGE 1u
#define WEFT_STAT_KIND_HISTOGRAM 2u
#define WEFT_STAT_FAMILY_MAX_LABELS 8u
#define WEFT_STAT_FAMILY_MAX_SERIES 10000u
#define WEFT_STAT_LABEL_VALUE_MAX 256u
#define WEFT_STAT_OVERFLOW_VALUE "__overflow__"

/* Declares family `name` ([a-z0-9_], as weft_stat_counter) of `kind`
 * (WEFT_STAT_KIND_*) with n_labels label names (0..8; each
 * [a-zA-Z_][a-zA-Z0-9_]*, at most 64 bytes, not starting with "__", not
 * "listener" or "cluster", no repeats) and at most max_series
 * (1..WEFT_STAT_FAMILY_MAX_SERIES) series besides the overflow series.
 * Sets *family to its id (-1 on error; the update calls ignore -1).
 * Declaring it again with the same kind, label names and max_series (every
 * reload does) returns the same family: its series keep their values.
 * RELOAD: a family (like a stat) that the new config does not declare
 * leaves /stats/prometheus with its series and overflow counter (the
 * filter was removed, or its listener, or its new code declares other
 * stats); declared again by a later config, it comes back with its
 * values. Its label names or max_series may change over a reload (the old
 * series leave, the new family starts empty).
 * OWNERSHIP: names and help are copied. THREAD: main, inside config_create
 * (or route_config_create) only: the setup handle lives just that long.
 * ERRORS: WEFT_ERR_INVALID (setup or family NULL, bad kind, name, label
 * name or count, max_series out of range, the name taken by a stat of
 * another kind, or by a family with other label names or max_series in
 * the same config), WEFT_ERR_LIMIT (the stats registry is full: slots for
 * max_series + 1 series are reserved at once), WEFT_ERR_NOMEM. */
static inline weft_result weft_stat_family(weft_filter_setup *st, uint32_t kind, const char *name,
                                           const char *help, const char *const *label_names,
                                           size_t n_labels, uint32_t max_series, int32_t *family) {
    return weft__host->stat_family(st, kind, name, help, label_names, n_labels, max_series, family);
}
/* Updates the series of `family` named by label_values (n values, in the
 * order of the declared label names; copied when a series is made; a view
 * may be empty). inc: counter += delta; gauge_add: gauge += delta (may be
 * negative); observe_us: one histogram sample in microseconds (buckets as
 * weft_stat_observe_us). The first update with a new combination makes
 * its series (one allocation, at most max_series times per family); every
 * later one is lock-free and allocation-free: a hash of the values, a
 * lookup, a per-thread slot write. A combination past max_series, or a
 * value above WEFT_STAT_LABEL_VALUE_MAX bytes, is counted in the overflow
 * series (WEFT_OK: see above).
 * THREAD: any thread weft runs (workers, main, a worker- or config-scoped
 * timer); from a thread weft did not start the update is dropped (WEFT_OK).
 * Allowed in every hook, the log phase included.
 * ERRORS: WEFT_ERR_INVALID (family -1 or not a family, a family of
 * another kind, n not its label count, label_values NULL with n > 0, a
 * value with ptr NULL and len > 0); nothing is counted then. */
static inline weft_result weft_stat_family_inc(int32_t family, const weft_str *label_values,
                                               size_t n, uint64_t delta) {
    return weft__host->stat_family_inc(family, label_values, n, delta);
}
static inline weft_result weft_stat_family_gauge_add(int32_t family, const weft_str *label_values,
                                                     size_t n, int64_t delta) {
    return weft__host->stat_family_gauge_add(family, label_values, n, delta);
}
static inline weft_result weft_stat_family_observe_us(int32_t family, const weft_str *label_values,
                                                      size_t n, uint64_t value_us) {
    return weft__host->stat_family_observe_us(family, label_values, n, value_us);
}
/* [end 1.1 stats] */

/* [1.1 transport] transport filters: write, timers, handshake, upstream side */
/* The calls below take the weft_connection a transport hook was given.
 * THREAD: the worker that owns the connection (every transport hook and
 * connection timer runs there); another thread gets WEFT_ERR_THREAD.
 * ERRORS common to all: WEFT_ERR_HANDLE (not a live connection, NULL
 * included), WEFT_ERR_THREAD, WEFT_ERR_STATE (the connection is closing:
 * close was asked, or inside on_close/connection_destroy). */

/* Queues len bytes toward the PEER (the network), below this filter: the
 * filters nearer the socket still see them in their on_write, the codec
 * and the filters above never do. Works from every hook (connection_create
 * and upstream_connection_create included: a TLS client writes first) and
 * from a connection timer, before or after the handshake. The bytes go out
 * at the end of the loop turn. OWNERSHIP: data is copied.
 * ERRORS: WEFT_ERR_INVALID (data NULL with len > 0).
 * LIMIT: bytes already queued toward the peer on this connection above the
 * listener's (cluster's) buffer_high_watermark (default 1 MiB). */
static inline weft_result weft_connection_write(weft_connection *c, const void *data, size_t len) {
    return weft__host->connection_write(c, data, len);
}
/* Closes the connection. flush true: what is queued toward the peer (by
 * filters and the codec so far) is sent first, then the connection
 * closes; false: at once (a reset). Either way the codec gets no more
 * bytes, a request in flight ends (downstream: reset, DC; upstream: the
 * attempt fails as a connection failure) and the close happens after the
 * current hook returns: on_close and connection_destroy follow later.
 * Asking again does nothing (WEFT_OK). */
static inline weft_result weft_connection_close(weft_connection *c, bool flush) {
    return weft__host->connection_close(c, flush);
}
/* One-shot timer on the connection's worker: cb(c, conn_ctx, arg) runs
 * after delay_ms with this filter's context; every timer is cancelled when
 * the connection closes. OWNERSHIP: *out (may be NULL) is valid until the
 * timer fired or was cancelled; do not use it afterwards.
 * ERRORS: WEFT_ERR_INVALID (cb NULL). LIMIT: 16 timers of the connection
 * armed at once. */
static inline weft_result weft_connection_timer_start(weft_connection *c, uint64_t delay_ms,
                                                      weft_connection_timer_cb cb, void *arg,
                                                      weft_timer **out) {
    return weft__host->connection_timer_start(c, delay_ms, cb, arg, out);
}
/* ERRORS: WEFT_ERR_NOT_FOUND (not an armed timer of this connection: it
 * fired or was cancelled already). */
static inline weft_result weft_connection_timer_cancel(weft_connection *c, weft_timer *t) {
    return weft__host->connection_timer_cancel(c, t);
}
/* This filter's handshake is done: the facts (copied; empty views leave a
 * fact as it is) become the connection's (HTTP filters read them with
 * weft_conn_*; WEFT_HANDSHAKE_TLS makes X-Forwarded-Proto and redirects
 * https). When every WEFT_TRANSPORT_HANDSHAKE filter of the connection has
 * called it, the codec is chosen (ALPN "h2" -> HTTP/2, another ALPN ->
 * HTTP/1.1, none -> sniffed) and gets the bytes held so far; upstream, the
 * waiting request is sent. Call it once per filter, from a hook or a
 * connection timer; a filter without the flag may call it to publish facts.
 * ERRORS: WEFT_ERR_INVALID (info NULL, size too small, a field too long or
 * with control characters), WEFT_ERR_STATE (this filter called it already). */
static inline weft_result weft_connection_handshake_done(weft_connection *c,
                                                         const weft_handshake_info *info) {
    return weft__host->connection_handshake_done(c, info);
}
/* Fills *info (set info->size = sizeof(*info) first; the host fills what
 * fits). LIFETIME: see weft_connection_info. ERRORS: WEFT_ERR_INVALID
 * (info NULL or size too small). Allowed in on_close too. */
static inline weft_result weft_connection_get_info(weft_connection *c, weft_connection_info *info) {
    return weft__host->connection_get_info(c, info);
}
/* The server name (SNI) a transport filter reported for the stream's
 * downstream connection. THREAD: the stream's worker. LIFETIME: the view
 * is valid until the hook returns. ERRORS: WEFT_ERR_NOT_FOUND (none),
 * WEFT_ERR_HANDLE, WEFT_ERR_THREAD. */
static inline weft_result weft_conn_sni(weft_stream *s, weft_str *sni) {
    return weft__host->conn_sni(s, sni);
}
/* Where the client connected to: SO_ORIGINAL_DST when the connection was
 * redirected to weft (iptables REDIRECT), else the local address. Out
 * parameters may be NULL. Same THREAD, LIFETIME and ERRORS as
 * weft_conn_sni. */
static inline weft_result weft_conn_original_dst(weft_stream *s, weft_str *ip, uint16_t *port) {
    return weft__host->conn_original_dst(s, ip, port);
}
/* [end 1.1 transport] */

/* [1.2 stats series] series handles of labelled families */
/* SERIES HANDLES (ABI 1.2): the series of a family for label values known
 * ahead (a route's name x the five status classes, methods), resolved
 * once, then updated at the cost of a plain stat (weft_stat_inc): no
 * hash, no compare of the values, no lock. Cardinality stays bounded:
 * values past the family's max_series, or a value longer than
 * WEFT_STAT_LABEL_VALUE_MAX, resolve to the OVERFLOW series, and each
 * update through that handle also counts in the _overflow_total counter,
 * as a folded weft_stat_family_inc does.
 * Resolves the series of `family` with label_values (n values, in the
 * order of the declared label names; copied when the series is made) into
 * *out (WEFT_STAT_SERIES_NONE on error; the update calls ignore it).
 * Resolving makes the series if it is new (it shows in /stats/prometheus
 * from then on, at 0; it counts toward max_series) and counts nothing.
 * LIFETIME: the handle is valid as long as the family id it came from:
 * resolve in config_create or route_config_create with the family that
 * config declared and keep the handle in the config (a reload resolves
 * again; a family declared again with the same shape keeps its series,
 * so the new handle names the same series and value); a handle of a
 * config that was destroyed must not be used (it may name a later
 * family's series: a wrong count, never a crash).
 * RELOADS: a series stays in its family as long as the family is
 * declared (by any config since): one resolved by an older config and not
 * by the new one keeps its value and its place, so max_series bounds
 * every series the family has had, not one config's. A REFUSED reload
 * does not undo a resolve into a family the running config declares too
 * (same name and shape): that series stays registered, shows in
 * /stats/prometheus at 0 and counts toward max_series (a later value may
 * then land on the overflow series); a family only the refused config
 * declared leaves with it, series and all. Resolve only the values the
 * config will use.
 * THREAD: any thread weft runs (main in config_create /
 * route_config_create, workers in any hook). Resolving a new series takes
 * the family's creation lock and allocates once: resolve ahead, not per
 * request.
 * ERRORS: WEFT_ERR_INVALID (out NULL, family -1 or not a family, n not
 * its label count, label_values NULL with n > 0, a value with ptr NULL
 * and len > 0). */
static inline weft_result weft_stat_family_series(int32_t family, const weft_str *label_values,
                                                  size_t n, weft_stat_series *out) {
    return weft__host->stat_family_series(family, label_values, n, out);
}
/* Updates a series by handle: inc for a counter family (+= delta),
 * gauge_add for a gauge family (+= delta, may be negative), observe_us for
 * a histogram family (one sample in microseconds, buckets as
 * weft_stat_observe_us). A handle of another kind than the call, or
 * WEFT_STAT_SERIES_NONE, is ignored (no error: these are void like
 * weft_stat_inc). THREAD: as weft_stat_family_inc (any thread weft runs;
 * from a thread weft did not start the update is dropped); allowed in
 * every hook, the log phase included. Lock-free, allocation-free. */
static inline void weft_stat_series_inc(weft_stat_series series, uint64_t delta) {
    weft__host->stat_series_inc(series, delta);
}
static inline void weft_stat_series_gauge_add(weft_stat_series series, int64_t delta) {
    weft__host->stat_series_gauge_add(series, delta);
}
static inline void weft_stat_series_observe_us(weft_stat_series series, uint64_t value_us) {
    weft__host->stat_series_observe_us(series, value_us);
}
/* [end 1.2 stats series] */

/* The entry symbol's name and type. */
#define WEFT_FILTER_ENTRY_SYMBOL "weft_filter_entry_v1"
typedef const weft_filter_descriptor *(*weft_filter_entry_fn)(const weft_host_api *host);

/* Defines the entry point of a filter .so from its descriptor:
 *     static const weft_filter_descriptor desc = {...};
 *     WEFT_FILTER_DEFINE(desc)
 * Use it in exactly one source file of the filter. */
#define WEFT_FILTER_DEFINE(descriptor)                                                             \
    const weft_host_api *weft__host WEFT_HIDDEN;                                                   \
    WEFT_EXPORT const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);     \
    WEFT_EXPORT const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host) {    \
        weft__host = host;                                                                         \
        return &(descriptor);                                                                      \
    }

#define WEFT_FILTER_DESCRIPTOR_INIT(fname, fkind)                                                  \
    .size = sizeof(weft_filter_descriptor), .abi_major = WEFT_ABI_MAJOR,                           \
    .abi_minor = WEFT_ABI_MINOR, .name = (fname), .kind = (fkind)

/* The same for a filter that runs on hosts down to ABI 1.<min_minor>
 * (it must test newer host functions with WEFT_HOST_HAS). */
#define WEFT_FILTER_DESCRIPTOR_INIT_MINOR(fname, fkind, min_minor)                                 \
    .size = sizeof(weft_filter_descriptor), .abi_major = WEFT_ABI_MAJOR, .abi_minor = (min_minor), \
    .name = (fname), .kind = (fkind)

#ifdef __cplusplus
}
#endif

#endif /* WEFT_FILTER_H */
