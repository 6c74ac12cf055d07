/* ft_stream.c: the synthetic stream. Drives the filter's hooks in call
 * order, keeps the pause / queue / held-body state of each direction,
 * records what went past the filter, fires timers and answers callouts,
 * and builds local replies (with the gRPC status mapping the core uses). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"
#include "wsh_rules.h"

enum { REQ = WEFT_REQUEST_BODY, RESP = WEFT_RESPONSE_BODY };

static wft_stream *g_live_streams;
/* Stream handles as the core gives them (sdk/common/wsh_handle.h, the
 * same code): generation-checked, so a handle kept from a freed stream
 * is refused even when the new stream reuses its memory or its slot. */
static wsh_table g_handles;

wft_stream *ft_stream_from(weft_stream *s) {
    wsh_parts p;
    if (!wsh_decode((uint64_t)(uintptr_t)s, &p))
        return NULL;
    return wsh_lookup(&g_handles, &p);
}

/* ---- creation ---- */

wft_stream *wft_stream_new(wft_env *env, const char *method, const char *path,
                           const char *const *headers) {
    if (!env)
        return NULL;
    if (env->desc->kind != WEFT_FILTER_HTTP) {
        ft_set_error(env, "filter \"%s\" is a transport filter: use wft_conn_new", env->desc->name);
        return NULL;
    }
    if (!method || !*method || !path || (path[0] != '/' && strcmp(path, "*") != 0)) {
        ft_set_error(env, "wft_stream_new: a method and a path starting with '/' are needed");
        return NULL;
    }
    ft_state_settle(env);
    if (ft_ensure_configured(env))
        return NULL;
    wft_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->hval = wsh_alloc(&g_handles, st);
    st->env = env;
    st->ep_index = 0; /* wft_upstream_endpoint: endpoint 0 by default */
    st->method = ft_strdup(method);
    st->path = ft_strdup(path);
    st->peer_ip = ft_strdup("127.0.0.1");
    st->local_ip = ft_strdup("127.0.0.1");
    st->peer_port = 40000;
    st->local_port = 15006;
    st->start_us = env->now_us;
    st->env_next = env->streams;
    env->streams = st;
    st->live_next = g_live_streams;
    g_live_streams = st;
    if (!st->hval || !st->method || !st->path || !st->peer_ip || !st->local_ip ||
        ft_hmap_add_lines(&st->maps[WEFT_REQUEST_HEADERS], headers, &st->authority)) {
        ft_set_error(env, "wft_stream_new: a header is not \"name: value\" (or out of memory)");
        wft_stream_free(st);
        return NULL;
    }
    if (!st->authority) {
        const ft_header *h = ft_hmap_find(&st->maps[WEFT_REQUEST_HEADERS], "host", 4, 0);
        st->authority = ft_strdup(h ? h->value : "");
    }
    st->route = ft_route_match(env, st->path); /* before the filter runs, as in the core */
    return st;
}

static void replace_str(char **dst, const char *src) {
    char *copy = src ? ft_strdup(src) : NULL;
    if (src && !copy)
        return;
    free(*dst);
    *dst = copy;
}

void wft_stream_set_peer(wft_stream *st, const char *ip, uint16_t port) {
    if (!st)
        return;
    replace_str(&st->peer_ip, ip ? ip : "");
    st->peer_port = port;
}

void wft_stream_set_local(wft_stream *st, const char *ip, uint16_t port) {
    if (!st)
        return;
    replace_str(&st->local_ip, ip ? ip : "");
    st->local_port = port;
}

void wft_stream_set_tls(wft_stream *st, bool tls) {
    if (st)
        st->tls = tls;
}

void wft_stream_set_peer_identity(wft_stream *st, const char *spiffe_id) {
    if (st)
        replace_str(&st->identity, spiffe_id);
}

void wft_stream_set_sni(wft_stream *st, const char *sni) {
    if (st)
        replace_str(&st->sni, sni);
}

void wft_stream_set_original_dst(wft_stream *st, const char *ip, uint16_t port) {
    if (!st)
        return;
    replace_str(&st->orig_dst_ip, ip);
    st->orig_dst_port = port;
}

void ft_graveyard_add(wft_stream *st, char *p) {
    if (!p)
        return;
    if (st->ngrave == st->capgrave) {
        size_t cap = st->capgrave ? st->capgrave * 2 : 4;
        char **g = realloc(st->graveyard, cap * sizeof(*g));
        if (!g) {
            /* Cannot keep it: a view of it may dangle, so leak it instead. */
            return;
        }
        st->graveyard = g;
        st->capgrave = cap;
    }
    st->graveyard[st->ngrave++] = p;
}

int ft_metadata_put(wft_stream *st, const char *key, size_t klen, int type, const void *data,
                    size_t len) {
    char *old;
    if (ft_kv_put(&st->metadata, key, klen, data ? data : "", data ? len : 0, &old))
        return -1;
    ft_graveyard_add(st, old);
    for (size_t i = 0; i < st->metadata.n; i++)
        if (st->metadata.h[i].nlen == klen && memcmp(st->metadata.h[i].name, key, klen) == 0)
            st->metadata.h[i].type = type;
    return 0;
}

void wft_metadata_put(wft_stream *st, const char *key, const char *value) {
    if (!st || !key)
        return;
    ft_metadata_put(st, key, strlen(key), FT_MD_STR, value ? value : "", value ? strlen(value) : 0);
}

/* ---- calling into the filter ---- */

typedef struct call_frame {
    wft_env *old_env;
    int old_hook;
    bool old_reply;
} call_frame;

static call_frame call_begin(wft_stream *st, int hook) {
    call_frame f = {ft_swap_current(st->env), st->hook, st->reply_in_hook};
    st->hook = hook;
    st->tok_pending = 0; /* a token asked for in an earlier hook is gone */
    st->reply_in_hook = false;
    return f;
}

static void call_end(wft_stream *st, call_frame f) {
    st->hook = f.old_hook;
    st->reply_in_hook = f.old_reply;
    ft_swap_current(f.old_env);
}

static const weft_http_filter_ops *ops(const wft_stream *st) {
    return st->env->desc->http;
}

static void start(wft_stream *st) {
    if (st->started)
        return;
    st->started = true;
    st->start_us = st->env->now_us;
    if (FT_HTTP(st->env, stream_create)) {
        call_frame f = call_begin(st, FT_HOOK_CREATE);
        st->ctx = ops(st)->stream_create(st->env->config, st->env->worker, ft_handle(st));
        call_end(st, f);
    }
}

static const char *status_name(int rs) {
    switch (rs) {
    case WEFT_CONTINUE:
        return "WEFT_CONTINUE";
    case WEFT_STOP:
        return "WEFT_STOP";
    case WEFT_REPLIED:
        return "WEFT_REPLIED";
    default:
        return "an unknown status";
    }
}

/* Reconciles a hook's result with what it did: WEFT_REPLIED needs a reply
 * (else the kit answers 500, failing closed), a reply needs WEFT_REPLIED. */
static int settle(wft_stream *st, int rs, const char *hook, bool replied_in_hook) {
    /* The core's 500: through the response hooks unless a response hook
     * failed (then it replaces that response). */
    bool via = st->dir[REQ].headers_in && strncmp(hook, "on_response", 11) != 0;
    if (rs == WEFT_REPLIED && !replied_in_hook) {
        ft_misuse(st->env, WEFT_ERR_STATE, "%s returned WEFT_REPLIED without weft_reply_send",
                  hook);
        if (!st->replied || ft_lr_flowing(st))
            ft_reply_make(st, 500, WEFT_STR("filter_error"), NULL, NULL, 0, WEFT_STR(""), via);
        return WEFT_REPLIED;
    }
    if (rs != WEFT_CONTINUE && rs != WEFT_STOP && rs != WEFT_REPLIED) {
        ft_misuse(st->env, WEFT_ERR_INVALID, "%s returned %d, not a weft_status", hook, rs);
        if (!st->replied || ft_lr_flowing(st))
            ft_reply_make(st, 500, WEFT_STR("filter_error"), NULL, NULL, 0, WEFT_STR(""), via);
        return WEFT_REPLIED;
    }
    if (replied_in_hook && rs != WEFT_REPLIED)
        ft_misuse(st->env, WEFT_ERR_STATE, "%s sent a local reply but returned %s", hook,
                  status_name(rs));
    return rs;
}

/* ---- forwarding ---- */

void ft_forward_body(wft_stream *st, int d, weft_buffer *b) {
    ft_dir *dd = &st->dir[d];
    ft_buffer_to_bytes(b, &dd->fwd_body);
    if (d == REQ && st->replay_on && dd->fwd_body.len > st->replay_max)
        st->replay_overflow = true;
}

void ft_release_held(wft_stream *st, int d) {
    ft_dir *dd = &st->dir[d];
    if (dd->held) {
        ft_forward_body(st, d, dd->held);
        ft_buffer_free(dd->held);
        dd->held = NULL;
    }
    if (dd->held_end)
        dd->end_fwd = true;
    dd->held_end = false;
}

/* The hook that returned WEFT_STOP pauses direction d; a token it asked
 * for becomes this pause's. */
static void pause_dir(wft_stream *st, int d, int at, bool end) {
    ft_dir *dd = &st->dir[d];
    dd->paused = true;
    dd->paused_at = at;
    dd->pending_end = end;
    dd->pause_seq = ++st->env->seq;
    dd->token = st->tok_pending;
    st->tok_pending = 0;
}

static void unpause(ft_dir *dd) {
    dd->paused = false;
    dd->token = 0;
}

static uint64_t new_token(wft_stream *st) {
    if (++st->tok_seq == 0)
        st->tok_seq = 1;
    return (st->hval & 0xffffffff00000000ull) | st->tok_seq;
}

static bool in_hook(const wft_stream *st) {
    return st->hook != FT_HOOK_NONE && st->hook != FT_HOOK_CALLBACK;
}

/* As the core (stream_filters.c): inside a hook, the token of the pause
 * its WEFT_STOP will make (or of the pause the filter holds already);
 * from a callback, or from test code (the kit hosts one filter: test
 * code acts for it), the token of the pause it holds. */
weft_result ft_pause_token(wft_stream *st, uint64_t *token) {
    if (st->hook == FT_HOOK_COMPLETE || st->hook == FT_HOOK_DESTROY || st->replied)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "weft_stream_pause_token: not in the log phase or after a reply");
    for (int d = REQ; d <= RESP; d++) {
        ft_dir *dd = &st->dir[d];
        if (dd->paused) {
            if (!dd->token)
                dd->token = new_token(st);
            *token = dd->token;
            if (in_hook(st))
                st->tok_pending = dd->token; /* a STOP again keeps it */
            return WEFT_OK;
        }
    }
    if (!in_hook(st))
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "weft_stream_pause_token: call it from the hook that returns WEFT_STOP, "
                         "or from a callback of the filter holding the pause");
    if (!st->tok_pending)
        st->tok_pending = new_token(st);
    *token = st->tok_pending;
    return WEFT_OK;
}

weft_result ft_resume_token(wft_stream *st, uint64_t token) {
    for (int d = REQ; d <= RESP; d++)
        if (token && st->dir[d].paused && st->dir[d].token == token) {
            ft_resume_dir(st, d);
            return WEFT_OK;
        }
    return ft_misuse(st->env, WEFT_ERR_STATE,
                     "weft_stream_resume_token: no pause holds this token (stale, used, or its "
                     "hook did not return WEFT_STOP)");
}

weft_result ft_resume(wft_stream *st) {
    int d;
    /* As the core: the request direction first when both are paused. */
    if (st->dir[REQ].paused)
        d = REQ;
    else if (st->dir[RESP].paused)
        d = RESP;
    else
        return ft_misuse(st->env, WEFT_ERR_STATE, "weft_stream_resume: the stream is not paused");
    ft_resume_dir(st, d);
    return WEFT_OK;
}

void ft_resume_dir(wft_stream *st, int d) {
    ft_dir *dd = &st->dir[d];
    unpause(dd);
    st->resumes++;
    switch (dd->paused_at) {
    case FT_AT_HEADERS:
        dd->headers_fwd = true;
        if (d == REQ)
            ft_route_settle(st);
        if (dd->pending_end)
            dd->end_fwd = true;
        break;
    case FT_AT_BODY:
        ft_release_held(st, d);
        break;
    case FT_AT_TRAILERS:
        ft_release_held(st, d);
        dd->end_fwd = true;
        break;
    }
    dd->pending_end = false;
}

/* ---- events ---- */

static void event_free(ft_event *e) {
    ft_bytes_free(&e->data);
    ft_hmap_clear(&e->trailers);
    free(e);
}

static int enqueue(wft_stream *st, int d, int kind, const void *data, size_t len, bool end,
                   const char *const *trailers) {
    ft_event *e = calloc(1, sizeof(*e));
    if (!e || ft_bytes_append(&e->data, data, len) ||
        ft_hmap_add_lines(&e->trailers, trailers, NULL)) {
        if (e)
            event_free(e);
        ft_set_error(st->env, "out of memory or a bad trailer line");
        return WFT_REJECTED;
    }
    e->kind = kind;
    e->end = end;
    ft_dir *dd = &st->dir[d];
    if (dd->queue_tail)
        dd->queue_tail->next = e;
    else
        dd->queue = e;
    dd->queue_tail = e;
    return WFT_QUEUED;
}

static bool must_queue(const wft_stream *st, int d) {
    const ft_dir *dd = &st->dir[d];
    return !dd->headers_fwd || dd->queue || (dd->paused && dd->paused_at != FT_AT_BODY);
}

static int deliver_body(wft_stream *st, int d, const void *data, size_t len, bool end) {
    ft_dir *dd = &st->dir[d];
    weft_buffer *chunk = ft_buffer_new();
    if (!chunk || ft_buffer_add(chunk, data, len, false)) {
        ft_buffer_free(chunk);
        ft_set_error(st->env, "out of memory");
        return WFT_REJECTED;
    }
    int rs = WEFT_CONTINUE;
    bool has = d == REQ ? FT_HTTP(st->env, on_request_body) : FT_HTTP(st->env, on_response_body);
    if (has) {
        call_frame f = call_begin(st, d == REQ ? FT_HOOK_REQ_BODY : FT_HOOK_RESP_BODY);
        if (d == REQ)
            rs = (int)ops(st)->on_request_body(st->ctx, ft_handle(st), chunk, end);
        else
            rs = (int)ops(st)->on_response_body(st->ctx, ft_handle(st), chunk, end);
        bool replied = st->reply_in_hook;
        call_end(st, f);
        rs = settle(st, rs, d == REQ ? "on_request_body" : "on_response_body", replied);
    }
    if ((st->replied && !(d == RESP && ft_lr_flowing(st))) || st->completed) {
        ft_buffer_free(chunk);
        return rs;
    }
    if (rs == WEFT_STOP) {
        if (!dd->held)
            dd->held = ft_buffer_new();
        if (dd->held)
            ft_buffer_take_all(dd->held, chunk);
        dd->held_end = dd->held_end || end;
        if (!dd->paused)
            pause_dir(st, d, FT_AT_BODY, false);
        else if (st->tok_pending)
            dd->token = st->tok_pending; /* held again: the same pause */
        st->tok_pending = 0;
    } else {
        if (dd->paused) {
            unpause(dd);
            ft_release_held(st, d);
        }
        ft_forward_body(st, d, chunk);
        if (end)
            dd->end_fwd = true;
    }
    ft_buffer_free(chunk);
    return rs;
}

static int deliver_trailers(wft_stream *st, int d) {
    ft_dir *dd = &st->dir[d];
    int rs = WEFT_CONTINUE;
    bool has =
        d == REQ ? FT_HTTP(st->env, on_request_trailers) : FT_HTTP(st->env, on_response_trailers);
    if (has) {
        call_frame f = call_begin(st, d == REQ ? FT_HOOK_REQ_TRAILERS : FT_HOOK_RESP_TRAILERS);
        if (d == REQ)
            rs = (int)ops(st)->on_request_trailers(st->ctx, ft_handle(st));
        else
            rs = (int)ops(st)->on_response_trailers(st->ctx, ft_handle(st));
        bool replied = st->reply_in_hook;
        call_end(st, f);
        rs = settle(st, rs, d == REQ ? "on_request_trailers" : "on_response_trailers", replied);
    }
    if (st->replied || st->completed)
        return rs;
    /* As the core (stream_filters.c run_trailers): a trailers hook cannot
     * pause, the end of the message has nothing left to hold back, so
     * WEFT_STOP there is treated as WEFT_CONTINUE (a token asked for in
     * it is dropped). */
    st->tok_pending = 0;
    if (dd->paused) {
        unpause(dd);
        ft_release_held(st, d);
    }
    dd->end_fwd = true;
    return rs;
}

static int trailers_set(wft_stream *st, int d, const char *const *lines) {
    ft_hmap *m = &st->maps[d == REQ ? WEFT_REQUEST_TRAILERS : WEFT_RESPONSE_TRAILERS];
    st->trailers_in[d] = true;
    if (ft_hmap_add_lines(m, lines, NULL)) {
        ft_set_error(st->env, "a trailer is not \"name: value\"");
        return -1;
    }
    return 0;
}

/* Delivers what waits in the queues of directions that are not paused. */
void ft_stream_pump_events(wft_stream *st) {
    bool moved = true;
    while (moved) {
        moved = false;
        for (int d = REQ; d <= RESP; d++) {
            ft_dir *dd = &st->dir[d];
            if ((st->replied && !(d == RESP && ft_lr_flowing(st))) || st->completed ||
                !dd->headers_fwd || dd->paused || !dd->queue)
                continue;
            ft_event *e = dd->queue;
            dd->queue = e->next;
            if (!dd->queue)
                dd->queue_tail = NULL;
            if (e->kind == FT_EV_BODY) {
                deliver_body(st, d, e->data.data, e->data.len, e->end);
            } else {
                ft_hmap *m = &st->maps[d == REQ ? WEFT_REQUEST_TRAILERS : WEFT_RESPONSE_TRAILERS];
                ft_hmap_clear(m);
                *m = e->trailers;
                memset(&e->trailers, 0, sizeof(e->trailers));
                st->trailers_in[d] = true;
                deliver_trailers(st, d);
            }
            event_free(e);
            moved = true;
        }
    }
}

/* Runs after every top-level kit call: queued events, then canned callout
 * answers (each as if it arrived from the event loop), until nothing
 * moves. */
void ft_stream_pump(wft_stream *st) {
    for (;;) {
        ft_stream_pump_events(st);
        struct weft_callout *c = st->callouts;
        while (c && (c->done || !c->canned))
            c = c->next;
        if (!c || st->completed)
            return;
        const ft_canned *k = c->canned;
        ft_callout_finish(c, k->reason ? 0 : k->status, k->reason ? k->reason : "", &k->headers,
                          k->body, strlen(k->body));
    }
}

static int reject(wft_stream *st, const char *why) {
    ft_set_error(st->env, "%s", why);
    return WFT_REJECTED;
}

static int check_open(wft_stream *st) {
    if (st->completed)
        return reject(st, "the stream has completed");
    if (st->replied)
        return reject(st, "the filter already sent a local reply");
    return 0;
}

int wft_request_headers(wft_stream *st, bool end_stream) {
    if (!st)
        return WFT_REJECTED;
    if (check_open(st))
        return WFT_REJECTED;
    ft_dir *dd = &st->dir[REQ];
    if (dd->headers_in)
        return reject(st, "request headers were already sent");
    dd->headers_in = true;
    dd->end_in = end_stream;
    start(st);
    int rs = WEFT_CONTINUE;
    if (FT_HTTP(st->env, on_request_headers) && !st->replied && !st->completed) {
        call_frame f = call_begin(st, FT_HOOK_REQ_HEADERS);
        rs = (int)ops(st)->on_request_headers(st->ctx, ft_handle(st), end_stream);
        bool replied = st->reply_in_hook;
        call_end(st, f);
        rs = settle(st, rs, "on_request_headers", replied);
    }
    if (!st->replied && !st->completed) {
        if (rs == WEFT_STOP) {
            pause_dir(st, REQ, FT_AT_HEADERS, end_stream);
        } else {
            dd->headers_fwd = true;
            ft_route_settle(st);
            if (end_stream)
                dd->end_fwd = true;
        }
    }
    ft_stream_pump(st);
    return rs;
}

static int body_event(wft_stream *st, int d, const void *data, size_t len, bool end_stream) {
    if (!st)
        return WFT_REJECTED;
    if (check_open(st))
        return WFT_REJECTED;
    ft_dir *dd = &st->dir[d];
    if (!dd->headers_in)
        return reject(st, d == REQ ? "request body before request headers"
                                   : "response body before response headers");
    if (dd->end_in)
        return reject(st, d == REQ ? "the request has ended" : "the response has ended");
    if (len && !data)
        return reject(st, "body data is NULL");
    dd->end_in = end_stream;
    dd->bytes_in += len;
    int rs = must_queue(st, d) ? enqueue(st, d, FT_EV_BODY, data, len, end_stream, NULL)
                               : deliver_body(st, d, data, len, end_stream);
    ft_stream_pump(st);
    return rs;
}

int wft_request_body(wft_stream *st, const void *data, size_t len, bool end_stream) {
    return body_event(st, REQ, data, len, end_stream);
}

int wft_response_body(wft_stream *st, const void *data, size_t len, bool end_stream) {
    return body_event(st, RESP, data, len, end_stream);
}

static int trailers_event(wft_stream *st, int d, const char *const *trailers) {
    if (!st)
        return WFT_REJECTED;
    if (check_open(st))
        return WFT_REJECTED;
    ft_dir *dd = &st->dir[d];
    if (!dd->headers_in)
        return reject(st, "trailers before headers");
    if (dd->end_in)
        return reject(st, "trailers after the end of the direction");
    dd->end_in = true;
    int rs;
    if (must_queue(st, d)) {
        rs = enqueue(st, d, FT_EV_TRAILERS, NULL, 0, true, trailers);
    } else {
        if (trailers_set(st, d, trailers))
            return WFT_REJECTED;
        rs = deliver_trailers(st, d);
    }
    ft_stream_pump(st);
    return rs;
}

int wft_request_trailers(wft_stream *st, const char *const *trailers) {
    return trailers_event(st, REQ, trailers);
}

int wft_response_trailers(wft_stream *st, const char *const *trailers) {
    return trailers_event(st, RESP, trailers);
}

/* ---- upstream attempts (1.1: on_upstream_request, per-try timeout,
 * delayed retries, endpoints) ---- */

/* The filter gets the 1.1 hooks and struct sizes when the kit plays a 1.1
 * host and the filter was built against the 1.1 header (as the core: an
 * ops table that ends at on_stream_complete is a 1.0 filter). */
static bool filter_is_1_1(const wft_stream *st) {
    const size_t ops_1_0 = offsetof(weft_http_filter_ops, on_stream_complete) + sizeof(void *);
    return st->env->host.abi_minor >= 1 && st->env->desc->http->size > ops_1_0;
}

/* A delayed retry that has not waited its delay yet: no attempt may start. */
static bool retry_waiting(const wft_stream *st) {
    return st->retry_asked_us && st->env->now_us < st->retry_asked_us + st->retry_delay_ms * 1000;
}

static int attempt_start(wft_stream *st) {
    if (!st->dir[REQ].headers_fwd)
        return reject(st, "no upstream attempt before the request headers went past the filter");
    if (st->dir[RESP].headers_in)
        return reject(st, "the response has started: no further attempt");
    if (st->attempt_open)
        return reject(st, "an attempt is in flight already (report it with wft_upstream_attempt)");
    if (retry_waiting(st))
        return reject(st, "the delayed retry's delay has not passed on the clock yet");
    st->next_backoff_us = st->retry_asked_us ? st->env->now_us - st->retry_asked_us : 0;
    st->retry_asked_us = 0;
    st->router_ran = true;
    st->attempt_open = true;
    /* This attempt's request head: a copy of the request headers. */
    ft_hmap_clear(&st->attempt_hdrs);
    const ft_hmap *rq = &st->maps[WEFT_REQUEST_HEADERS];
    for (size_t i = 0; i < rq->n; i++)
        if (ft_hmap_add(&st->attempt_hdrs, rq->h[i].name, rq->h[i].nlen, rq->h[i].value,
                        rq->h[i].vlen))
            return reject(st, "out of memory");
    if (filter_is_1_1(st) && FT_HTTP(st->env, on_upstream_request)) {
        call_frame f = call_begin(st, FT_HOOK_UP_REQUEST);
        ops(st)->on_upstream_request(st->ctx, ft_handle(st), st->attempts + 1);
        call_end(st, f);
    }
    st->try_due_us = st->try_timeout_ms ? st->env->now_us + st->try_timeout_ms * 1000 : 0;
    return 0;
}

int wft_upstream_request(wft_stream *st) {
    if (!st)
        return WFT_REJECTED;
    if (check_open(st))
        return WFT_REJECTED;
    int rc = attempt_start(st);
    ft_stream_pump(st);
    return rc;
}

static void attempt_report(wft_stream *st, weft_attempt_result result, int status, const char *host,
                           const char *cluster, uint64_t duration_us, uint32_t extra_flags) {
    st->attempt_open = false;
    st->try_due_us = 0;
    st->attempts++;
    st->att_reported = true;
    st->upstream_time_us = duration_us;
    replace_str(&st->last_host, host ? host : "10.0.0.1:8080");
    replace_str(&st->last_cluster, cluster ? cluster : (st->cluster ? st->cluster : "default"));
    uint32_t flags = st->next_flags | extra_flags;
    st->next_flags = 0;
    if (st->ep_index >= 0 && st->ep_index < 64) {
        if (st->tried & (1ull << st->ep_index))
            flags |= WEFT_ATTEMPT_F_ENDPOINT_TRIED;
        st->tried |= 1ull << st->ep_index;
    }
    if (FT_HTTP(st->env, on_upstream_attempt)) {
        weft_attempt_info info = {
            .size = sizeof(info),
            .result = result,
            .status = result == WEFT_ATTEMPT_RESPONSE ? status : 0,
            .attempt = st->attempts,
            .upstream_host = {st->last_host, strlen(st->last_host)},
            .cluster = {st->last_cluster, strlen(st->last_cluster)},
            .duration_us = duration_us,
            .region = {st->ep_region ? st->ep_region : "",
                       st->ep_region ? strlen(st->ep_region) : 0},
            .zone = {st->ep_zone ? st->ep_zone : "", st->ep_zone ? strlen(st->ep_zone) : 0},
            .subzone = {st->ep_subzone ? st->ep_subzone : "",
                        st->ep_subzone ? strlen(st->ep_subzone) : 0},
            .endpoint_index = st->ep_index,
            .flags = flags,
            .backoff_us = st->next_backoff_us,
            .n_labels = (uint32_t)st->ep_labels.n,
        };
        if (!filter_is_1_1(st))
            info.size = offsetof(weft_attempt_info, region);
        call_frame f = call_begin(st, FT_HOOK_ATTEMPT);
        ops(st)->on_upstream_attempt(st->ctx, ft_handle(st), &info);
        bool replied = st->reply_in_hook;
        call_end(st, f);
        if (replied)
            ft_misuse(st->env, WEFT_ERR_STATE, "on_upstream_attempt sent a local reply");
    }
}

int wft_upstream_attempt(wft_stream *st, weft_attempt_result result, int status, const char *host,
                         const char *cluster, uint64_t duration_us) {
    if (!st)
        return WFT_REJECTED;
    if (check_open(st))
        return WFT_REJECTED;
    if (!st->attempt_open && attempt_start(st))
        return WFT_REJECTED;
    attempt_report(st, result, status, host, cluster, duration_us, 0);
    ft_stream_pump(st);
    return 0;
}

/* The per-try timeout of the attempt in flight passed (wft_clock_advance). */
void ft_try_timeout_fire(wft_stream *st) {
    st->try_due_us = 0;
    if (st->completed || !st->attempt_open)
        return;
    st->try_timeouts++;
    attempt_report(st, WEFT_ATTEMPT_TIMEOUT, 0, NULL, NULL, st->try_timeout_ms * 1000,
                   WEFT_ATTEMPT_F_PER_TRY_TIMEOUT);
    ft_stream_pump(st);
}

int wft_upstream_endpoint(wft_stream *st, int32_t index, const char *region, const char *zone,
                          const char *subzone, const char *const *labels) {
    if (!st)
        return WFT_REJECTED;
    if (index < -1)
        return reject(st, "endpoint index below -1");
    st->ep_index = index;
    replace_str(&st->ep_region, region);
    replace_str(&st->ep_zone, zone);
    replace_str(&st->ep_subzone, subzone);
    ft_hmap_clear(&st->ep_labels);
    for (size_t i = 0; labels && labels[i]; i++) {
        const char *eq = strchr(labels[i], '=');
        if (!eq)
            return reject(st, "an endpoint label is not \"key=value\"");
        char *old = NULL;
        if (ft_kv_put(&st->ep_labels, labels[i], (size_t)(eq - labels[i]), eq + 1, strlen(eq + 1),
                      &old))
            return reject(st, "out of memory");
        free(old);
    }
    return 0;
}

const char *wft_attempt_header(wft_stream *st, const char *name) {
    if (!st || !name)
        return NULL;
    const ft_header *h = ft_hmap_find(&st->attempt_hdrs, name, strlen(name), 0);
    return h ? h->value : NULL;
}

bool wft_retry_options(wft_stream *st, uint64_t *delay_ms, uint32_t *flags) {
    if (!st || !st->retries)
        return false;
    if (delay_ms)
        *delay_ms = st->retry_delay_ms;
    if (flags)
        *flags = st->retry_flags;
    return true;
}

uint64_t wft_retry_due_us(wft_stream *st) {
    return st && st->retry_asked_us ? st->retry_asked_us + st->retry_delay_ms * 1000 : 0;
}

uint64_t wft_try_timeout(wft_stream *st) {
    return st ? st->try_timeout_ms : 0;
}

unsigned wft_try_timeouts(wft_stream *st) {
    return st ? st->try_timeouts : 0;
}

int wft_response_headers(wft_stream *st, int status, const char *const *headers, bool end_stream) {
    if (!st)
        return WFT_REJECTED;
    if (check_open(st))
        return WFT_REJECTED;
    ft_dir *dd = &st->dir[RESP];
    if (dd->headers_in)
        return reject(st, "response headers were already sent");
    if (!st->dir[REQ].headers_fwd)
        return reject(st, "the request headers have not gone past the filter: no upstream yet");
    if (status < 100 || status > 599)
        return reject(st, "response status out of 100..599");
    ft_hmap *m = &st->maps[WEFT_RESPONSE_HEADERS];
    ft_hmap_clear(m);
    if (ft_hmap_add_lines(m, headers, NULL))
        return reject(st, "a response header is not \"name: value\"");
    st->router_ran = true;
    st->status = status;
    st->attempt_open = false; /* the head ends the per-try timeout */
    st->try_due_us = 0;
    dd->headers_in = true;
    dd->end_in = end_stream;
    unsigned retries = st->retries;
    int rs = WEFT_CONTINUE;
    if (FT_HTTP(st->env, on_response_headers)) {
        call_frame f = call_begin(st, FT_HOOK_RESP_HEADERS);
        rs = (int)ops(st)->on_response_headers(st->ctx, ft_handle(st), end_stream);
        bool replied = st->reply_in_hook;
        call_end(st, f);
        rs = settle(st, rs, "on_response_headers", replied);
    }
    if (!st->replied && !st->completed) {
        if (st->retries != retries) {
            /* The filter asked for another attempt: this response is gone. */
            ft_hmap_clear(m);
            ft_hmap_clear(&st->maps[WEFT_RESPONSE_TRAILERS]);
            st->status = 0;
            dd->headers_in = dd->end_in = false;
        } else if (rs == WEFT_STOP) {
            pause_dir(st, RESP, FT_AT_HEADERS, end_stream);
        } else {
            dd->headers_fwd = true;
            if (end_stream)
                dd->end_fwd = true;
        }
    }
    ft_stream_pump(st);
    return rs;
}

/* ---- local replies ---- */

/* The core's own mapping (sdk/common/wsh_rules.c, compiled into both),
 * documented at weft_reply_send in filter.h. */
static int grpc_code(int http) {
    return wsh_grpc_status_for_http(http);
}

static const char *status_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

/* grpc-message as the core builds it: the body without surrounding
 * whitespace and trailing line ends, else the reason, else the phrase. */
static weft_str grpc_message(int status, weft_str reason, weft_str body) {
    const char *p = body.ptr;
    size_t n = body.len;
    while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (body.len)
        return (weft_str){p, n};
    if (reason.len)
        return reason;
    const char *ph = status_phrase(status);
    return (weft_str){ph, strlen(ph)};
}

static void free_queue(ft_dir *dd) {
    while (dd->queue) {
        ft_event *e = dd->queue;
        dd->queue = e->next;
        event_free(e);
    }
    dd->queue_tail = NULL;
}

bool ft_lr_flowing(const wft_stream *st) {
    return st->lr_flow && !st->dir[RESP].end_fwd && !st->completed;
}

bool ft_reply_via_hooks(const wft_stream *st) {
    const ft_dir *rs = &st->dir[RESP];
    bool in_resp_headers =
        st->hook == FT_HOOK_RESP_HEADERS || (rs->paused && rs->paused_at == FT_AT_HEADERS);
    return st->started && st->dir[REQ].headers_in && !in_resp_headers;
}

/* The local reply through the filter's response hooks: headers (end_stream
 * when it has no body), then the body with end_stream; a STOP pauses it
 * like any response (the body waits in the queue for the resume). */
static void lr_run(wft_stream *st, const char *body, size_t len) {
    ft_dir *dd = &st->dir[RESP];
    bool bodyless = st->lr_bodyless;
    unsigned replies = st->replies;
    int rs = WEFT_CONTINUE;
    if (FT_HTTP(st->env, on_response_headers)) {
        call_frame f = call_begin(st, FT_HOOK_RESP_HEADERS);
        rs = (int)ops(st)->on_response_headers(st->ctx, ft_handle(st), bodyless);
        bool replied = st->reply_in_hook;
        call_end(st, f);
        rs = settle(st, rs, "on_response_headers", replied);
        if (st->replies != replies || st->completed)
            return; /* a reply from the hook replaced this one */
    }
    if (rs == WEFT_STOP) {
        pause_dir(st, RESP, FT_AT_HEADERS, bodyless);
        if (!bodyless)
            enqueue(st, RESP, FT_EV_BODY, body, len, true, NULL);
        return;
    }
    dd->headers_fwd = true;
    if (bodyless) {
        dd->end_fwd = true;
        return;
    }
    deliver_body(st, RESP, body, len, true);
}

void ft_reply_make(wft_stream *st, int status, weft_str reason, const weft_str *hn,
                   const weft_str *hv, size_t n, weft_str body, bool via_hooks) {
    bool grpc = false;
    st->replies++;
    const ft_header *ct = ft_hmap_find(&st->maps[WEFT_REQUEST_HEADERS], "content-type", 12, 0);
    if (ct && ft_has_prefix_nocase(ct->value, ct->vlen, "application/grpc"))
        grpc = true;
    st->replied = true;
    st->reply_http_status = status;
    st->reply_status = grpc ? 200 : status;
    st->status = st->reply_status;
    free(st->reply_reason);
    st->reply_reason = ft_strndup(reason.ptr ? reason.ptr : "", reason.ptr ? reason.len : 0);
    ft_bytes_free(&st->reply_body);
    ft_bytes_append(&st->reply_body, body.ptr ? body.ptr : "", body.ptr ? body.len : 0);

    /* The response the core builds: for gRPC a Trailers-Only response
     * (HTTP 200, grpc-status and grpc-message in its one header block,
     * shown in both the header and the trailer map); x-weft-reason; the
     * filter's headers; content-type text/plain for a body; content-length. */
    ft_hmap *rh = &st->maps[WEFT_RESPONSE_HEADERS];
    ft_hmap *rt = &st->maps[WEFT_RESPONSE_TRAILERS];
    ft_hmap_clear(rh);
    ft_hmap_clear(rt);
    ft_dir *resp = &st->dir[RESP];
    ft_bytes_free(&resp->fwd_body);
    if (grpc) {
        char code[16];
        int cl = snprintf(code, sizeof(code), "%d", grpc_code(status));
        weft_str msg = grpc_message(status, reason, body);
        ft_hmap_add(rh, "content-type", 12, "application/grpc", 16);
        ft_hmap_add(rh, "grpc-status", 11, code, (size_t)cl);
        ft_hmap_add(rh, "grpc-message", 12, msg.ptr, msg.len);
        ft_hmap_add(rt, "grpc-status", 11, code, (size_t)cl);
        ft_hmap_add(rt, "grpc-message", 12, msg.ptr, msg.len);
        st->trailers_in[RESP] = true;
        body = (weft_str){"", 0};
    }
    if (reason.len)
        ft_hmap_add(rh, "x-weft-reason", 13, reason.ptr, reason.len);
    bool has_ct = ft_hmap_find(rh, "content-type", 12, 0) != NULL;
    for (size_t i = 0; i < n; i++) {
        ft_hmap_add(rh, hn[i].ptr, hn[i].len, hv[i].ptr, hv[i].len);
        has_ct = has_ct || ft_streq_nocase(hn[i].ptr, hn[i].len, "content-type", 12);
    }
    if (body.len && !has_ct)
        ft_hmap_add(rh, "content-type", 12, "text/plain", 10);
    char clen[32];
    int cll = snprintf(clen, sizeof(clen), "%zu", body.len);
    ft_hmap_remove(rh, "content-length", 14);
    ft_hmap_add(rh, "content-length", 14, clen, (size_t)cll);
    for (int d = REQ; d <= RESP; d++) {
        ft_dir *dd = &st->dir[d];
        unpause(dd);
        free_queue(dd);
        ft_buffer_free(dd->held);
        dd->held = NULL;
        dd->held_end = false;
    }
    bool head = st->method && strcmp(st->method, "HEAD") == 0;
    st->lr_bodyless = grpc || head || body.len == 0;
    resp->headers_in = resp->end_in = true;
    if (!via_hooks) {
        st->lr_flow = false;
        if (!st->lr_bodyless)
            ft_bytes_append(&resp->fwd_body, body.ptr, body.len);
        resp->headers_fwd = resp->end_fwd = true;
        return;
    }
    st->lr_flow = true;
    resp->headers_fwd = resp->end_fwd = false;
    lr_run(st, body.ptr, body.len);
}

int wft_local_reply(wft_stream *st, int status, const char *reason) {
    if (!st)
        return WFT_REJECTED;
    if (st->completed)
        return reject(st, "the stream has completed");
    if (status < 200 || status > 599)
        return reject(st, "local reply status out of 200..599");
    if (st->dir[RESP].headers_fwd)
        return reject(st, "the response head went out: weft would reset the stream");
    if (st->replied && !ft_lr_flowing(st))
        return reject(st, "the stream was answered already");
    const char *r = reason ? reason : "";
    if (!ft_header_value_ok(r, strlen(r)))
        return reject(st, "the reason has CR, LF or NUL");
    /* weft's default body: "<reason or status phrase>\n" */
    char body[160];
    int bl = snprintf(body, sizeof(body), "%s\n", *r ? r : status_phrase(status));
    weft_str b = {body, bl < 0 ? 0 : (size_t)bl < sizeof(body) ? (size_t)bl : sizeof(body) - 1};
    ft_reply_make(st, status, (weft_str){r, strlen(r)}, NULL, NULL, 0, b, ft_reply_via_hooks(st));
    ft_stream_pump(st);
    return 0;
}

/* ---- timers and callouts ---- */

void ft_fire_timer(struct weft_timer *t) {
    wft_stream *st = t->st;
    t->done = true;
    if (st->completed)
        return;
    call_frame f = call_begin(st, FT_HOOK_CALLBACK);
    t->cb(ft_handle(st), st->ctx, t->arg);
    call_end(st, f);
    ft_stream_pump(st);
}

void ft_stream_run_callback(wft_stream *st, void (*fn)(void *), void *arg) {
    if (st->completed)
        return;
    call_frame f = call_begin(st, FT_HOOK_CALLBACK);
    fn(arg);
    call_end(st, f);
    ft_stream_pump(st);
}

size_t wft_callout_pending(wft_stream *st) {
    return st ? ft_callouts_pending(st->callouts) : 0;
}

size_t wft_callout_started(wft_stream *st) {
    return st ? st->ncallouts : 0;
}

bool wft_callout_request(wft_stream *st, size_t i, const char **cluster, const char **method,
                         const char **path, const char **body, uint64_t *timeout_ms) {
    return st && ft_callout_request_of(st->callouts, i, cluster, method, path, body, timeout_ms);
}

const char *wft_callout_header(wft_stream *st, size_t i, const char *name) {
    return st ? ft_callout_header_of(st->callouts, i, name) : NULL;
}

int wft_callout_respond(wft_stream *st, size_t i, int status, const char *const *headers,
                        const char *body) {
    const char *why = NULL;
    if (!st)
        return WFT_REJECTED;
    return ft_callout_respond_of(st->callouts, i, status, headers, body, &why) ? reject(st, why)
                                                                               : 0;
}

int wft_callout_fail(wft_stream *st, size_t i, const char *reason) {
    if (!st)
        return WFT_REJECTED;
    return ft_callout_fail_of(st->callouts, i, reason) ? reject(st, "no such pending callout") : 0;
}

size_t wft_timers_pending(wft_stream *st) {
    size_t n = 0;
    for (struct weft_timer *t = st ? st->timers : NULL; t; t = t->next)
        n += !t->done;
    return n;
}

/* ---- the end ---- */

int wft_complete(wft_stream *st, const char *response_flags) {
    if (!st)
        return WFT_REJECTED;
    if (st->completed)
        return reject(st, "the stream has completed already");
    st->completed = true;
    for (struct weft_timer *t = st->timers; t; t = t->next)
        t->done = true;
    for (struct weft_callout *c = st->callouts; c; c = c->next)
        c->done = true;
    ft_tcp_stream_end(st);
    for (int d = REQ; d <= RESP; d++) {
        unpause(&st->dir[d]);
        free_queue(&st->dir[d]);
    }
    if (!st->started || !FT_HTTP(st->env, on_stream_complete))
        return 0;
    const char *flags = response_flags && *response_flags ? response_flags : "-";
    const char *host = st->last_host ? st->last_host : "";
    const char *cluster = st->last_cluster ? st->last_cluster : "";
    weft_stream_info info = {
        .size = sizeof(info),
        .status = st->status, /* a local reply's, as its response hooks left it */
        .duration_us = st->env->now_us - st->start_us,
        .upstream_time_us = st->attempts ? st->upstream_time_us : 0,
        .bytes_received = st->dir[REQ].bytes_in,
        .bytes_sent = st->dir[RESP].fwd_body.len,
        .attempts = st->attempts,
        .response_flags = {flags, strlen(flags)},
        .upstream_host = {host, strlen(host)},
        .cluster = {cluster, strlen(cluster)},
        .local_reply = st->replied,
        .local_reply_reason = {st->replied && st->reply_reason ? st->reply_reason : "",
                               st->replied && st->reply_reason ? strlen(st->reply_reason) : 0},
        .route_config = st->route && st->route->has_cfg ? st->route->cfg : NULL,
    };
    if (st->env->host.abi_minor < 2) { /* an older host: its info ends before it */
        info.size = FT_STREAM_INFO_SIZE_1_1;
        info.route_config = NULL;
    }
    call_frame f = call_begin(st, FT_HOOK_COMPLETE);
    ops(st)->on_stream_complete(st->ctx, ft_handle(st), &info);
    call_end(st, f);
    return 0;
}

void wft_stream_free(wft_stream *st) {
    if (!st)
        return;
    if (!st->completed)
        wft_complete(st, NULL);
    if (st->started && FT_HTTP(st->env, stream_destroy)) {
        call_frame f = call_begin(st, FT_HOOK_DESTROY);
        ops(st)->stream_destroy(st->ctx);
        call_end(st, f);
    }
    st->destroyed = true;
    for (wft_stream **pp = &st->env->streams; *pp; pp = &(*pp)->env_next)
        if (*pp == st) {
            *pp = st->env_next;
            break;
        }
    for (wft_stream **pp = &g_live_streams; *pp; pp = &(*pp)->live_next)
        if (*pp == st) {
            *pp = st->live_next;
            break;
        }
    for (int i = 0; i < 4; i++)
        ft_hmap_clear(&st->maps[i]);
    for (int d = REQ; d <= RESP; d++) {
        free_queue(&st->dir[d]);
        ft_buffer_free(st->dir[d].held);
        ft_bytes_free(&st->dir[d].fwd_body);
    }
    while (st->timers) {
        struct weft_timer *t = st->timers;
        st->timers = t->next;
        free(t);
    }
    ft_callouts_free(&st->callouts);
    ft_hmap_clear(&st->metadata);
    ft_hmap_clear(&st->attempt_hdrs);
    ft_hmap_clear(&st->ep_labels);
    free(st->ep_region);
    free(st->ep_zone);
    free(st->ep_subzone);
    for (size_t i = 0; i < st->ngrave; i++)
        free(st->graveyard[i]);
    free(st->graveyard);
    free(st->method);
    free(st->path);
    free(st->authority);
    free(st->reply_reason);
    ft_bytes_free(&st->reply_body);
    free(st->last_host);
    free(st->last_cluster);
    free(st->cluster);
    free(st->peer_ip);
    free(st->local_ip);
    free(st->identity);
    free(st->sni);
    free(st->orig_dst_ip);
    /* The table stays (reachable from g_handles): freeing it when empty
     * would start the generations again and let old handles name new
     * streams. */
    wsh_release(&g_handles, st->hval);
    free(st);
}

/* ---- assertions ---- */

static const ft_hmap *map_of(wft_stream *st, weft_header_map map) {
    if (!st || (unsigned)map > WEFT_RESPONSE_TRAILERS)
        return NULL;
    return &st->maps[map];
}

const char *wft_header_nth(wft_stream *st, weft_header_map map, const char *name, size_t index) {
    const ft_hmap *m = map_of(st, map);
    if (!m || !name)
        return NULL;
    const ft_header *h = ft_hmap_find(m, name, strlen(name), index);
    return h ? h->value : NULL;
}

const char *wft_header(wft_stream *st, weft_header_map map, const char *name) {
    return wft_header_nth(st, map, name, 0);
}

size_t wft_header_count(wft_stream *st, weft_header_map map, const char *name) {
    const ft_hmap *m = map_of(st, map);
    return m && name ? ft_hmap_count(m, name, strlen(name)) : 0;
}

size_t wft_header_size(wft_stream *st, weft_header_map map) {
    const ft_hmap *m = map_of(st, map);
    return m ? m->n : 0;
}

bool wft_header_at(wft_stream *st, weft_header_map map, size_t i, const char **name,
                   const char **value) {
    const ft_hmap *m = map_of(st, map);
    if (!m || i >= m->n)
        return false;
    if (name)
        *name = m->h[i].name;
    if (value)
        *value = m->h[i].value;
    return true;
}

const char *wft_request_path(wft_stream *st) {
    return st ? st->path : NULL;
}

const char *wft_request_method(wft_stream *st) {
    return st ? st->method : NULL;
}

int wft_response_status(wft_stream *st) {
    return st ? st->status : 0;
}

bool wft_replied(wft_stream *st, int *status, const char **body, const char **reason) {
    if (!st || !st->replied)
        return false;
    if (status)
        *status = st->status; /* as the response hooks left it */
    if (body)
        *body = ft_bytes_cstr(&st->reply_body);
    if (reason)
        *reason = st->reply_reason ? st->reply_reason : "";
    return true;
}

int wft_reply_http_status(wft_stream *st) {
    return st && st->replied ? st->reply_http_status : 0;
}

bool wft_paused(wft_stream *st) {
    return st && (st->dir[REQ].paused || st->dir[RESP].paused);
}

bool wft_paused_dir(wft_stream *st, weft_body_dir dir) {
    return st && (unsigned)dir <= RESP && st->dir[dir].paused;
}

unsigned wft_resume_count(wft_stream *st) {
    return st ? st->resumes : 0;
}

bool wft_completed(wft_stream *st) {
    return st && st->completed;
}

const char *wft_forwarded_body(wft_stream *st, weft_body_dir dir, size_t *len) {
    if (!st || (unsigned)dir > RESP) {
        if (len)
            *len = 0;
        return "";
    }
    if (len)
        *len = st->dir[dir].fwd_body.len;
    return ft_bytes_cstr(&st->dir[dir].fwd_body);
}

bool wft_forwarded_headers(wft_stream *st, weft_body_dir dir) {
    return st && (unsigned)dir <= RESP && st->dir[dir].headers_fwd;
}

bool wft_forwarded_end(wft_stream *st, weft_body_dir dir) {
    return st && (unsigned)dir <= RESP && st->dir[dir].end_fwd;
}

size_t wft_held_body_length(wft_stream *st, weft_body_dir dir) {
    if (!st || (unsigned)dir > RESP || !st->dir[dir].held)
        return 0;
    return st->dir[dir].held->len;
}

const char *wft_cluster(wft_stream *st) {
    return st ? st->cluster : NULL;
}

unsigned wft_retry_count(wft_stream *st) {
    return st ? st->retries : 0;
}

size_t wft_replay_limit(wft_stream *st) {
    return st && st->replay_on ? st->replay_max : 0;
}

const char *wft_metadata(wft_stream *st, const char *key) {
    if (!st || !key)
        return NULL;
    const ft_header *h = ft_kv_find(&st->metadata, key, strlen(key));
    return h && h->type == FT_MD_STR ? h->value : NULL;
}

bool wft_metadata_int(wft_stream *st, const char *key, int64_t *value) {
    const ft_header *h = st && key ? ft_kv_find(&st->metadata, key, strlen(key)) : NULL;
    if (!h || h->type != FT_MD_INT || h->vlen != sizeof(int64_t))
        return false;
    if (value)
        memcpy(value, h->value, sizeof(int64_t));
    return true;
}

bool wft_metadata_bytes(wft_stream *st, const char *key, const void **data, size_t *len) {
    const ft_header *h = st && key ? ft_kv_find(&st->metadata, key, strlen(key)) : NULL;
    if (!h || h->type != FT_MD_BYTES)
        return false;
    if (data)
        *data = h->value;
    if (len)
        *len = h->vlen;
    return true;
}

void wft_metadata_put_int(wft_stream *st, const char *key, int64_t value) {
    if (st && key && *key)
        ft_metadata_put(st, key, strlen(key), FT_MD_INT, &value, sizeof(value));
}

void wft_metadata_put_bytes(wft_stream *st, const char *key, const void *data, size_t len) {
    if (st && key && *key && (data || !len))
        ft_metadata_put(st, key, strlen(key), FT_MD_BYTES, data, len);
}
