/* ft_internal.h: the test kit's private types, shared by its source files.
 * The kit is the host of exactly one filter per env; the structures here
 * are the synthetic stream, buffers, config tree, timers and callouts that
 * the weft_host_api functions (ft_host.c) work on. */
#ifndef WEFT_FT_INTERNAL_H
#define WEFT_FT_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>

#include "weft/filtertest.h"
#include "wsh_handle.h"

#define FT_MAGIC_BUFFER 0x57464246u
#define FT_MAGIC_NODE 0x57464e44u
#define FT_MAGIC_CONN 0x5746434eu

#define FT_CLOCK_START_US 1000000u

/* True if the ops table the filter was built with has hook `f` set. */
#define FT_HAS(type, ops, f)                                                                       \
    ((ops) != NULL && (ops)->size >= offsetof(type, f) + sizeof((ops)->f) && (ops)->f != NULL)
#define FT_HTTP(env, f) FT_HAS(weft_http_filter_ops, (env)->desc->http, f)
#define FT_TRANSPORT(env, f) FT_HAS(weft_transport_filter_ops, (env)->desc->transport, f)

/* ---- growable byte string ---- */
typedef struct ft_bytes {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len, cap;
} ft_bytes;
int ft_bytes_append(ft_bytes *b, const void *data, size_t len);
void ft_bytes_free(ft_bytes *b);
const char *ft_bytes_cstr(const ft_bytes *b);

char *ft_strndup(const char *s, size_t n);
char *ft_strdup(const char *s);
bool ft_streq_nocase(const char *a, size_t alen, const char *b, size_t blen);
bool ft_has_prefix_nocase(const char *s, size_t len, const char *prefix);

/* ---- buffers: a chain of segments ---- */
typedef struct ft_seg {
    char *base;
    size_t off, len; /* live bytes: base[off .. off+len) */
} ft_seg;

struct weft_buffer {
    uint32_t magic;
    ft_seg *segs;
    size_t nseg, cap;
    size_t len;
    struct weft_buffer *live_next; /* registry of live buffers */
};
weft_buffer *ft_buffer_new(void);
void ft_buffer_free(weft_buffer *b);
bool ft_buffer_live(const weft_buffer *b);
int ft_buffer_add(weft_buffer *b, const void *data, size_t len, bool front);
int ft_buffer_take_all(weft_buffer *dst, weft_buffer *src); /* moves src's segments to dst's end */
size_t ft_buffer_copy(const weft_buffer *b, size_t off, void *dst, size_t len);
int ft_buffer_drain_bytes(weft_buffer *b, size_t len);
int ft_buffer_to_bytes(const weft_buffer *b, ft_bytes *out); /* appends */

/* ---- header maps ---- */
typedef struct ft_header {
    char *name; /* lower-case, NUL-terminated */
    size_t nlen;
    char *value;
    size_t vlen;
    int type; /* metadata values: FT_MD_STR, FT_MD_INT, FT_MD_BYTES */
} ft_header;
enum { FT_MD_STR = 0, FT_MD_INT = 1, FT_MD_BYTES = 2 };

typedef struct ft_hmap {
    ft_header *h;
    size_t n, cap;
} ft_hmap;
int ft_hmap_add(ft_hmap *m, const char *name, size_t nlen, const char *value, size_t vlen);
size_t ft_hmap_remove(ft_hmap *m, const char *name, size_t nlen);
const ft_header *ft_hmap_find(const ft_hmap *m, const char *name, size_t nlen, size_t index);
size_t ft_hmap_count(const ft_hmap *m, const char *name, size_t nlen);
void ft_hmap_clear(ft_hmap *m);
/* Adds "name: value" lines (NULL-terminated list); pseudo-headers go to
 * *authority (":authority") or are skipped. -1 on a malformed line. */
int ft_hmap_add_lines(ft_hmap *m, const char *const *lines, char **authority);
/* Exact (case-sensitive) keys, for metadata. ft_kv_put hands back the
 * replaced value in *old_value (the caller keeps it alive). */
const ft_header *ft_kv_find(const ft_hmap *m, const char *key, size_t klen);
int ft_kv_put(ft_hmap *m, const char *key, size_t klen, const char *value, size_t vlen,
              char **old_value);
bool ft_header_name_ok(const char *name, size_t len);
bool ft_header_value_ok(const char *value, size_t len);

/* ---- config tree ---- */
typedef enum { FT_SCALAR, FT_MAP, FT_LIST } ft_node_kind;

struct weft_config_node {
    uint32_t magic;
    ft_node_kind kind;
    uint32_t line, col;
    char *str; /* scalar text */
    size_t len;
    struct weft_config_node **items; /* list items or map values */
    struct weft_config_node **keys;  /* map keys (scalars) */
    size_t n, cap;
};

typedef struct ft_doc {
    weft_config_node **all; /* every node, for freeing (aliases share) */
    size_t n, cap;
    weft_config_node *root;
} ft_doc;
/* Parses YAML text: 0, or -1 with "source:line:col: invalid YAML: ..." */
int ft_doc_parse(ft_doc *doc, const char *text, size_t len, const char *source, char *err,
                 size_t errlen);
void ft_doc_free(ft_doc *doc);

struct weft_filter_setup {
    wft_env *env;
    bool live;   /* only during config_create */
    bool route;  /* route_config_create's (wft_env_add_route) */
    bool failed; /* config_fail was called */
    char *err;
    size_t errlen;
};

/* ---- stats and log ---- */
typedef enum { FT_COUNTER, FT_GAUGE, FT_HISTOGRAM } ft_stat_kind;
typedef struct ft_stat {
    char *name;
    char *help;
    ft_stat_kind kind;
    uint64_t value; /* counter / histogram sum */
    int64_t gauge;
    uint64_t count; /* histogram samples */
    uint64_t pass;  /* the last configure that declared it (ft_stats_pass_begin) */
    bool hidden;    /* not declared by the last configure that succeeded */
} ft_stat;

typedef struct ft_logline {
    weft_log_level_t level;
    char *text;
} ft_logline;

/* ---- timers and callouts ---- */
struct weft_timer {
    wft_stream *st; /* a stream timer, or NULL: */
    wft_conn *conn; /* a connection timer (ABI 1.1) */
    weft_connection_timer_cb ccb;
    uint64_t due_us, seq;
    weft_timer_cb cb;
    void *arg;
    bool done; /* fired or cancelled */
    struct weft_timer *next;
};

typedef struct ft_canned {
    char *cluster, *prefix;
    int status;
    char *reason; /* non-NULL for a failure */
    ft_hmap headers;
    char *body;
    struct ft_canned *next;
} ft_canned;

/* An HTTP callout (ft_callout.c): the stream's (st) or the env's
 * (worker-scoped or detached, st NULL). */
struct weft_callout {
    wft_stream *st;
    wft_env *env;
    char *cluster, *method, *path, *authority;
    ft_hmap headers;
    ft_bytes body;
    uint64_t timeout_ms, deadline_us, seq, max_body;
    weft_callout_cb cb;
    weft_worker_callout_cb wcb; /* worker scope */
    void *arg;
    bool done;               /* answered, timed out or cancelled */
    bool worker;             /* worker-scoped (wcb) */
    bool detached;           /* WEFT_CALLOUT_DETACHED: no callback */
    bool failed;             /* detached: no response or a 5xx */
    const ft_canned *canned; /* answered when the starting hook returns */
    struct weft_callout *next;
};

/* Size of the ABI 1.0 host table: up to its last function. */
#define FT_HOST_SIZE_1_0                                                                           \
    (offsetof(weft_host_api, connection_set_tls) + sizeof(((weft_host_api *)0)->connection_set_tls))

/* Size of the ABI 1.1 host table: up to the first 1.2 function. */
#define FT_HOST_SIZE_1_1 offsetof(weft_host_api, stat_family_series)
/* Size of the ABI 1.1 weft_stream_info: up to its last field. */
#define FT_STREAM_INFO_SIZE_1_1 (offsetof(weft_stream_info, local_reply_reason) + sizeof(weft_str))

/* ---- routes (ABI 1.1 routing): the imaginary proxy config's routes ---- */
typedef struct ft_route {
    char *name, *vhost, *cluster;
    char *prefix; /* path prefix it matches ("" matches every path) */
    ft_doc doc;   /* the per-route config YAML, if any */
    void *cfg;    /* what route_config_create returned */
    bool has_cfg; /* route_config_create ran and returned 0 */
    struct ft_route *next;
} ft_route;

/* ---- the env ---- */
struct wft_env {
    const weft_filter_descriptor *desc;
    weft_host_api host; /* the table this env's filter got (cut for an older minor) */
    void *dl;
    pthread_t thread;
    char error[512];

    ft_doc doc;
    bool configured;
    void *config;
    void *worker;
    bool have_worker;
    char *source; /* "filter-config" or the file path */
    char *config_dir;
    struct weft_filter_setup *setup;

    uint64_t now_us;
    uint64_t seq;

    ft_stat *stats;
    size_t nstats, capstats;

    ft_logline *log;
    size_t nlog, caplog;
    weft_log_level_t log_level;
    bool log_stderr;
    char *filter_name; /* the YAML name log lines carry (wft_env_set_filter_name) */

    size_t nmisuse;
    char misuse_last[512];

    ft_canned *canned;
    char **clusters; /* wft_env_add_cluster; none: every name is known */
    size_t nclusters;
    ft_route *routes;               /* wft_env_add_route, in declaration order */
    struct ft_state *state;         /* 1.1 state group: shared blocks, endpoints (ft_state.c) */
    struct ft_family_set *families; /* 1.1 stats group: labelled families (ft_family.c) */
    struct ft_async
        *async;          /* 1.1 callout group: worker handle, worker/config timers (ft_async.c) */
    uint64_t stat_pass;  /* configures so far: what declared each stat */
    bool stat_in_pass;   /* a configure (config_create) runs: hidden flags are set at its end */
    wft_stream *streams; /* live streams of this env */
    wft_conn *conns;
    struct ft_tcpc *tcpcs;            /* 1.1 TCP callouts, in opening order (ft_tcp.c) */
    struct weft_callout *callouts;    /* 1.1 worker-scoped and detached callouts (ft_callout.c) */
    uint32_t callouts_max_per_worker; /* wft_env_set_callout_limits; 0: 1024 */
    uint64_t callouts_max_body;       /* 0: 1 MiB */
    struct wft_env *next;             /* all live envs */
};

/* ---- the stream ---- */
enum { FT_AT_HEADERS, FT_AT_BODY, FT_AT_TRAILERS };
enum { FT_EV_BODY, FT_EV_TRAILERS };

typedef struct ft_event {
    int kind;
    ft_bytes data;
    bool end;
    ft_hmap trailers;
    struct ft_event *next;
} ft_event;

typedef struct ft_dir {
    bool headers_in;  /* headers arrived (from the test) */
    bool headers_fwd; /* headers went past the filter */
    bool end_in;      /* the end arrived */
    bool end_fwd;     /* the end went past the filter */
    bool paused;
    int paused_at;
    bool pending_end;  /* paused at headers/trailers with end_stream */
    weft_buffer *held; /* body held back by STOP on a body hook */
    bool held_end;
    ft_bytes fwd_body;
    uint64_t bytes_in;
    ft_event *queue, *queue_tail;
    uint64_t pause_seq;
    uint64_t token; /* the pause's resume token, 0 none */
} ft_dir;

struct wft_stream {
    uint64_t hval; /* the handle the filter gets (wsh_handle.h) */
    wft_env *env;
    bool started, completed, destroyed;
    void *ctx;

    char *method;
    char *path; /* path?query */
    char *authority;
    ft_hmap maps[4]; /* indexed by weft_header_map */
    int status;      /* response status (as the filter left it) */
    int hook;        /* the hook running now, FT_HOOK_* */

    ft_dir dir[2];
    bool trailers_in[2];
    uint64_t tok_pending; /* token asked for in the running hook, for its STOP */
    uint32_t tok_seq;
    bool router_ran;

    bool replied;
    bool reply_in_hook;
    bool lr_flow;     /* the local reply runs through the response hooks */
    bool lr_bodyless; /* ...and ends with its headers (gRPC, HEAD, no body) */
    unsigned replies; /* local replies made (a replacement counts) */
    int reply_status, reply_http_status;
    char *reply_reason;
    ft_bytes reply_body;

    unsigned resumes, retries, attempts;
    uint64_t upstream_time_us;
    char *last_host, *last_cluster;
    char *cluster;
    const ft_route *route; /* the route the stream sees (env's), NULL none */
    bool route_dirty;      /* a 1.0 filter rewrote the path: match again when the
                              request headers go past it (as the core) */
    size_t replay_max;
    bool replay_on, replay_overflow;

    /* 1.1 retry: the attempt simulation (wft_upstream_request) */
    uint64_t try_timeout_ms; /* weft_upstream_set_try_timeout */
    uint64_t try_due_us;     /* the current attempt's per-try deadline, 0 none */
    unsigned try_timeouts;   /* per-try timeouts that fired */
    bool attempt_open;       /* wft_upstream_request started one, not yet reported */
    ft_hmap attempt_hdrs;    /* that attempt's request headers (on_upstream_request) */
    uint64_t retry_delay_ms; /* options of the last accepted retry */
    uint32_t retry_flags;
    uint64_t retry_asked_us; /* when a retry with a delay was accepted, 0 none */
    uint32_t next_flags;     /* WEFT_ATTEMPT_F_* the next attempt starts with */
    uint64_t next_backoff_us;
    int32_t ep_index; /* wft_upstream_endpoint */
    char *ep_region, *ep_zone, *ep_subzone;
    ft_hmap ep_labels;
    uint64_t tried;    /* endpoint indices 0..63 the attempts went to */
    bool att_reported; /* an attempt was reported: the labels belong to it */

    ft_hmap metadata;
    char **graveyard; /* metadata values replaced: kept to the end */
    size_t ngrave, capgrave;

    char *peer_ip, *local_ip, *identity;
    uint16_t peer_port, local_port;
    bool tls;
    char *sni, *orig_dst_ip; /* ABI 1.1: wft_stream_set_sni / _set_original_dst */
    uint16_t orig_dst_port;

    struct weft_timer *timers;
    struct weft_callout *callouts;
    size_t ncallouts;
    uint64_t start_us;

    wft_stream *env_next;
    wft_stream *live_next;
};

enum {
    FT_HOOK_NONE = 0,
    FT_HOOK_REQ_HEADERS,
    FT_HOOK_REQ_BODY,
    FT_HOOK_REQ_TRAILERS,
    FT_HOOK_ATTEMPT,
    FT_HOOK_RESP_HEADERS,
    FT_HOOK_RESP_BODY,
    FT_HOOK_RESP_TRAILERS,
    FT_HOOK_COMPLETE,
    FT_HOOK_CALLBACK,
    FT_HOOK_CREATE,
    FT_HOOK_DESTROY,
    FT_HOOK_UP_REQUEST, /* on_upstream_request (1.1) */
};

/* ---- transport connections ---- */
struct weft_connection {
    uint32_t magic;
    wft_conn *owner;
};

struct wft_conn {
    struct weft_connection handle;
    wft_env *env;
    void *ctx;
    bool closed;
    weft_buffer *rd_in, *rd_out, *wr_in, *wr_out;
    ft_bytes to_codec, to_network;
    char *alpn, *identity;
    bool tls;
    /* ABI 1.1 */
    bool upstream;
    bool in_create;   /* connection_create is running */
    bool hs_done;     /* the filter called handshake_done */
    bool close_asked; /* the filter called connection_close */
    bool close_flush;
    uint32_t hs_flags;
    char *sni, *tls_version, *cipher;
    char *peer_ip, *local_ip, *orig_dst_ip;
    uint16_t peer_port, local_port, orig_dst_port;
    char *cluster, *endpoint, *alpn_offer, *cfg_sni; /* upstream side */
    struct weft_timer *timers;
    wft_conn *env_next;
    wft_conn *live_next;
};

/* ---- 1.1 callout group: worker handle, worker and config timers (ft_async.c) ---- */
struct ft_wtimer;
void ft_async_config_begin(wft_env *env);   /* config_create is about to run */
void ft_async_config_gone(wft_env *env);    /* before config_destroy, or config_create failed */
void ft_async_worker_open(wft_env *env);    /* before worker_create */
void ft_async_worker_closing(wft_env *env); /* before worker_destroy */
void ft_async_worker_gone(wft_env *env);    /* after worker_destroy */
void ft_async_free(wft_env *env);
/* The earliest worker/config timer due at or before limit that beats
 * (*best, *best_seq) (or any, when !found); updates them. */
bool ft_async_next_due(wft_env *env, uint64_t limit, uint64_t *best, uint64_t *best_seq, bool found,
                       struct ft_wtimer **out);
uint64_t ft_async_due(const struct ft_wtimer *t);
void ft_async_fire(wft_env *env, struct ft_wtimer *t);
weft_worker *ft_h_worker_current(void *config);
weft_result ft_h_worker_timer_start(weft_worker *w, uint64_t ms, weft_worker_timer_cb cb, void *arg,
                                    weft_wtimer **out);
weft_result ft_h_worker_timer_cancel(weft_worker *w, weft_wtimer *t);
weft_result ft_h_config_timer_start(void *config, uint64_t ms, weft_config_timer_cb cb, void *arg,
                                    weft_wtimer **out);
weft_result ft_h_config_timer_cancel(void *config, weft_wtimer *t);

/* ---- shared helpers (ft_env.c) ---- */
/* The env the kit is running filter code for (host calls without a handle:
 * stats, log, clock). */
wft_env *ft_current_env(void);
/* Makes env the current one; returns the previous (restore it after). */
wft_env *ft_swap_current(wft_env *env);
void ft_set_error(wft_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a misuse line and returns `r` (for `return ft_misuse(...)`). */
weft_result ft_misuse(wft_env *env, weft_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ft_log_add(wft_env *env, weft_log_level_t level, const char *name, const char *msg);
/* The filter's name in its listener's filters list (default: descriptor name). */
const char *ft_filter_name(const wft_env *env);
bool ft_on_owner_thread(const wft_env *env);
int ft_ensure_configured(wft_env *env);
bool ft_cluster_known(const wft_env *env, const char *name, size_t len);
int32_t ft_stat_declare(weft_filter_setup *setup, const char *name, const char *help,
                        ft_stat_kind kind);
/* The current env's stat `id` if it is of `kind`; NULL (and a misuse line)
 * otherwise. */
ft_stat *ft_stat_by_id(int32_t id, ft_stat_kind kind, const char *what);
/* [a-z0-9_]+: filter and stat names. */
bool ft_name_ok(const char *name);
/* ft_family.c (1.1 stats group): weft_stat_family and its updates (kind:
 * WEFT_STAT_KIND_*; arg: the delta, a gauge's as two's complement, or the
 * sample); ft_family_free at env free. */
weft_result ft_family_declare(weft_filter_setup *setup, uint32_t kind, const char *name,
                              const char *help, const char *const *names, size_t n,
                              uint32_t max_series, int32_t *family);
weft_result ft_family_update(int32_t family, const weft_str *v, size_t n, uint32_t kind,
                             uint64_t arg);
/* ABI 1.2 series handles: resolve (no update), then update by handle
 * (NONE ignored; another kind or a bad handle: a misuse line, nothing
 * counted; call names the host call in that line). */
weft_result ft_family_series(int32_t family, const weft_str *v, size_t n, weft_stat_series *out);
void ft_series_update(weft_stat_series h, uint32_t kind, uint64_t arg, const char *call);
void ft_family_free(wft_env *env);
/* A configure is weft's reload for stats: what it declares is shown, the
 * stats and families it does not declare leave (kept == false: a refused
 * configure changes nothing). */
void ft_stats_pass_begin(wft_env *env);
void ft_stats_pass_end(wft_env *env, bool kept);
/* A stat or family (pass, hidden) declared again: it belongs to the
 * current pass; declared outside a configure (route_config_create, which
 * runs after it, as in weft's snapshot build) it is visible at once. */
void ft_stats_redeclared(wft_env *env, uint64_t *pass, bool *hidden);

/* ---- 1.1 raw TCP callouts (ft_tcp.c) ---- */
typedef struct ft_tcpc ft_tcpc;
/* HTTP callouts in flight, and TCP callouts open, of one stream at most
 * (each; weft's filter_callouts default). */
#define FT_STREAM_CALLOUTS 8u
weft_result ft_tcp_open(weft_stream *s, weft_str cluster, const weft_tcp_callout_opts *o,
                        const weft_tcp_callout_cbs *cbs, void *arg, weft_tcp_callout **out);
weft_result ft_tcp_write(weft_tcp_callout *h, const void *data, size_t len);
weft_result ft_tcp_close(weft_tcp_callout *h, bool flush);
weft_result ft_tcp_open_worker(weft_worker *h, weft_str cluster, const weft_tcp_callout_opts *o,
                               const weft_tcp_callout_cbs *cbs, void *arg, weft_tcp_callout **out);
void ft_tcp_stream_end(wft_stream *st); /* its callouts close, no callback */
size_t ft_tcp_live(wft_env *env);       /* open (connecting or connected) */
void ft_tcp_worker_end(wft_env *env);   /* worker-scoped ones, before worker_destroy */
void ft_tcp_env_free(wft_env *env);
/* The earliest connect/idle deadline at or before limit; fire those due now. */
bool ft_tcp_next_due(wft_env *env, uint64_t limit, uint64_t *due);
void ft_tcp_fire_due(wft_env *env);

/* ft_stream.c */
/* Runs fn(arg) as a callback of the stream's filter (as a timer's), then
 * lets the stream go on. */
void ft_stream_run_callback(wft_stream *st, void (*fn)(void *), void *arg);
wft_stream *ft_stream_from(weft_stream *s); /* NULL if not a live stream */
static inline weft_stream *ft_handle(const wft_stream *st) {
    return (weft_stream *)(uintptr_t)st->hval;
}
void ft_stream_pump(wft_stream *st);
/* Only the queued events (what a resume releases), no canned answers. */
void ft_stream_pump_events(wft_stream *st);
void ft_fire_timer(struct weft_timer *t);
void ft_try_timeout_fire(wft_stream *st); /* the per-try timeout passed */
/* ---- HTTP callouts (ft_callout.c) ---- */
/* Answers c (status 0: a failure with reason): its callback runs (as the
 * stream's callback, or on the worker outside any stream), none for a
 * detached one; a body above c's limit fails it ("body_too_large"). */
void ft_callout_finish(struct weft_callout *c, int status, const char *reason,
                       const ft_hmap *headers, const char *body, size_t body_len);
weft_result ft_h_callout_start(weft_stream *s, weft_str cluster, weft_str method, weft_str path,
                               const weft_str *hn, const weft_str *hv, size_t n, weft_str body,
                               uint64_t timeout_ms, weft_callout_cb cb, void *arg,
                               weft_callout **out);
weft_result ft_h_callout_cancel(weft_stream *s, weft_callout *c);
weft_result ft_h_callout_start2(weft_stream *s, const weft_callout_request *req, weft_callout_cb cb,
                                void *arg, weft_callout **out);
weft_result ft_h_worker_callout_start(weft_worker *w, const weft_callout_request *req,
                                      weft_worker_callout_cb cb, void *arg, weft_callout **out);
weft_result ft_h_worker_callout_cancel(weft_worker *w, weft_callout *c);
/* HTTP and TCP callouts in flight in the env (its worker), every scope. */
size_t ft_callouts_in_flight(wft_env *env);
bool ft_callouts_worker_full(wft_env *env);    /* at callouts.max_per_worker */
void ft_callouts_worker_closing(wft_env *env); /* before worker_destroy: cancelled */
void ft_callouts_free(struct weft_callout **list);
bool ft_callouts_next_due(struct weft_callout *list, uint64_t limit, uint64_t *best,
                          uint64_t *best_seq, bool found, struct weft_callout **out);
/* A list's pending callouts for the test (index i: oldest first). */
size_t ft_callouts_pending(struct weft_callout *list);
bool ft_callout_request_of(struct weft_callout *list, size_t i, const char **cluster,
                           const char **method, const char **path, const char **body,
                           uint64_t *timeout_ms);
const char *ft_callout_header_of(struct weft_callout *list, size_t i, const char *name);
int ft_callout_respond_of(struct weft_callout *list, size_t i, int status,
                          const char *const *headers, const char *body, const char **why);
int ft_callout_fail_of(struct weft_callout *list, size_t i, const char *reason);
/* Builds a local reply. via_hooks: it runs through the filter's response
 * hooks (the filter saw the request; the core runs the hooks of the
 * filters that did), else it replaces the response directly (a reply from
 * a response-header hook, or while the response headers are paused: the
 * core goes on with the filters after that point, and the kit has none). */
void ft_reply_make(wft_stream *st, int status, weft_str reason, const weft_str *hn,
                   const weft_str *hv, size_t n, weft_str body, bool via_hooks);
/* The local reply is still in the response hooks (not all forwarded). */
bool ft_lr_flowing(const wft_stream *st);
/* Whether a reply made now goes through the hooks (see ft_reply_make). */
bool ft_reply_via_hooks(const wft_stream *st);
weft_result ft_resume(wft_stream *st);
/* Resumes direction d (paused), as ft_resume does. */
void ft_resume_dir(wft_stream *st, int d);
/* Resume tokens, as the core makes them (the handle's generation high,
 * a per-stream sequence low). */
weft_result ft_pause_token(wft_stream *st, uint64_t *token);
weft_result ft_resume_token(wft_stream *st, uint64_t token);
void ft_forward_body(wft_stream *st, int d, weft_buffer *b);
void ft_release_held(wft_stream *st, int d);

/* Sets a metadata key with its type (copying); 0 or -1 (no memory). */
int ft_metadata_put(wft_stream *st, const char *key, size_t klen, int type, const void *data,
                    size_t len);
/* Keeps a replaced metadata value alive until the stream ends. */
void ft_graveyard_add(wft_stream *st, char *p);

/* ft_route.c */
/* The first declared route whose prefix starts path (query ignored). */
const ft_route *ft_route_match(const wft_env *env, const char *path);
/* route_config_destroy for each, then the routes go (before config_destroy). */
void ft_routes_free(wft_env *env);
/* The request headers went past the filter: a 1.0 filter's path rewrite
 * is routed on (the core's rule for filters built for ABI 1.0). */
void ft_route_settle(wft_stream *st);

/* ft_conn.c */
wft_conn *ft_conn_from(weft_connection *c);
/* After filter code ran on c: the filter's writes go to the network
 * bytes, and the bytes for the codec move on once the handshake allows. */
void ft_conn_settle(wft_conn *c);
void ft_fire_conn_timer(struct weft_timer *t);
weft_result ft_conn_info(wft_conn *c, weft_connection_info *info);
/* The filter declared WEFT_TRANSPORT_HANDSHAKE. */
bool ft_conn_gated(const wft_conn *c);

/* ft_state.c: shared state, clusters and endpoints (SDK 1.1 state group). */
typedef struct ft_state ft_state;
/* The config's shared state references go (after config_destroy). */
void ft_state_config_gone(wft_env *env);
/* Around a reconfigure: the old config's blocks stay alive (pin) until
 * the new config_create has run (unpin), as over a reload in weft. */
void ft_state_pin(wft_env *env);
void ft_state_unpin(wft_env *env);
/* Traffic starts (a stream is made): the reload is over, blocks that only
 * the old config's routes held go (ft_state.c). */
void ft_state_settle(wft_env *env);
void ft_state_free(wft_env *env);
weft_result ft_h_shared_get(weft_filter_setup *setup, weft_str key, size_t size, uint32_t version,
                            weft_shared_init_fn init, weft_shared_destroy_fn destroy, void *arg,
                            void **out);
weft_result ft_h_cluster_get(weft_filter_setup *setup, weft_str name, const weft_cluster **out);
weft_result ft_h_endpoint_count(weft_stream *s, const weft_cluster *c, size_t *count);
weft_result ft_h_endpoint_get(weft_stream *s, const weft_cluster *c, size_t i,
                              weft_endpoint_info *out);
weft_result ft_h_endpoint_label(weft_stream *s, const weft_cluster *c, size_t i, size_t label,
                                weft_str *key, weft_str *value);
weft_result ft_h_endpoint_find(weft_stream *s, const weft_cluster *c, weft_str address,
                               size_t *index);
weft_result ft_h_counter_add(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                             int64_t delta, uint64_t *value);
weft_result ft_h_counter_set(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                             uint64_t value);
weft_result ft_h_eject(weft_stream *s, const weft_cluster *c, size_t i, uint64_t duration_ms);
weft_result ft_h_restore(weft_stream *s, const weft_cluster *c, size_t i);
/* The same for a worker handle (the env's): ft_state.c. */
weft_result ft_h_worker_endpoint_count(weft_worker *w, const weft_cluster *c, size_t *count);
weft_result ft_h_worker_endpoint_get(weft_worker *w, const weft_cluster *c, size_t i,
                                     weft_endpoint_info *out);
weft_result ft_h_worker_endpoint_label(weft_worker *w, const weft_cluster *c, size_t i,
                                       size_t label, weft_str *key, weft_str *value);
weft_result ft_h_worker_endpoint_find(weft_worker *w, const weft_cluster *c, weft_str address,
                                      size_t *index);
weft_result ft_h_worker_counter_add(weft_worker *w, const weft_cluster *c, size_t i, uint32_t slot,
                                    int64_t delta, uint64_t *value);
weft_result ft_h_worker_counter_set(weft_worker *w, const weft_cluster *c, size_t i, uint32_t slot,
                                    uint64_t value);
weft_result ft_h_worker_eject(weft_worker *w, const weft_cluster *c, size_t i,
                              uint64_t duration_ms);
weft_result ft_h_worker_restore(weft_worker *w, const weft_cluster *c, size_t i);
/* The env of worker handle w, as the core checks it (ft_async.c), or
 * NULL with *err WEFT_ERR_HANDLE (not a live worker handle),
 * WEFT_ERR_THREAD (another thread's), WEFT_ERR_STATE (worker_destroy
 * runs), each logged. */
wft_env *ft_worker_env(weft_worker *w, const char *what, weft_result *err);

#endif
