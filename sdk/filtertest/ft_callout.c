/* ft_callout.c: HTTP callouts in the kit (SDK 1.0 weft_callout_start,
 * 1.1 weft_callout_start2, weft_worker_callout_start / _cancel and
 * WEFT_CALLOUT_DETACHED), answered by the test, with weft's rules
 * (core/filter/filter_host.c and callout.c):
 *  - checks in weft's order: the scope's handle (HANDLE, THREAD), the
 *    request (INVALID), the scope's state (STATE: outside a hook or
 *    callback, the log phase, worker_destroy running), the stream's cap
 *    (filter_callouts, 8; detached callouts do not count), the cluster
 *    (NOT_FOUND), the worker's cap (callouts.max_per_worker, 1024: HTTP
 *    and TCP callouts in flight of every scope together);
 *  - stream-scoped callouts are the stream's (wft_callout_*, canned
 *    answers included); worker-scoped and detached ones are the env's
 *    (wft_env_callout_*): a worker-scoped callback runs outside any stream
 *    with the worker handle; a detached one has no callback and no handle,
 *    its stream never waits for it and may end first; it counts as sent,
 *    and as failed when it gets no response or a 5xx;
 *  - timeout_ms 0 is 5 s; a response body above max_response_body (the
 *    request's, else the env's callouts.max_response_body, 1 MiB) fails
 *    the callout with reason "body_too_large" (not a detached one: its
 *    body is discarded, whatever its size); more than 100 response
 *    headers fail it with reason "too_many_headers";
 *  - no callback after a cancel, after the stream's end (stream scope) or
 *    once worker_destroy comes (worker scope: cancelled before it). */
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

#define DEFAULT_TIMEOUT_MS 5000u
#define DEFAULT_MAX_PER_WORKER 1024u
#define DEFAULT_MAX_BODY (1024u * 1024)
#define MAX_RESPONSE_HEADERS 100 /* weft: h1_parser.c's max_headers */

static bool str_ok(weft_str s) {
    return s.ptr != NULL || s.len == 0;
}

static bool token_ok(weft_str s) {
    return s.ptr && ft_header_name_ok(s.ptr, s.len);
}

/* A header value without spaces (path, authority). */
static bool word_ok(weft_str s) {
    return str_ok(s) && ft_header_value_ok(s.ptr, s.len) && !(s.len && memchr(s.ptr, ' ', s.len));
}

/* What is wrong with the request (weft's words), or NULL. */
static const char *request_problem(const weft_callout_request *req, bool has_cb) {
    if (!req || req->size < sizeof(weft_callout_request))
        return "request NULL or its size below the 1.1 struct";
    if (req->flags & ~(uint32_t)WEFT_CALLOUT_DETACHED)
        return "unknown flags";
    if (has_cb == !!(req->flags & WEFT_CALLOUT_DETACHED))
        return "a callback is required, and must be NULL for WEFT_CALLOUT_DETACHED";
    if (!str_ok(req->cluster) || !token_ok(req->method) || !req->path.len || !req->path.ptr ||
        req->path.ptr[0] != '/' || !word_ok(req->path))
        return "needs a cluster, a method token and a path starting with '/'";
    if (!word_ok(req->authority))
        return "invalid authority";
    if (req->n_headers && (!req->header_names || !req->header_values))
        return "n_headers without header arrays";
    for (size_t i = 0; i < req->n_headers; i++)
        if (!token_ok(req->header_names[i]) || !str_ok(req->header_values[i]) ||
            !ft_header_value_ok(req->header_values[i].ptr, req->header_values[i].len))
            return "invalid header name or value";
    if (req->body_buffer ? !ft_buffer_live(req->body_buffer) : !str_ok(req->body))
        return req->body_buffer ? "body_buffer is not a live buffer" : "body with a NULL pointer";
    return NULL;
}

static size_t in_flight(const struct weft_callout *c) {
    size_t n = 0;
    for (; c; c = c->next)
        n += !c->done;
    return n;
}

size_t ft_callouts_in_flight(wft_env *env) {
    size_t n = in_flight(env->callouts) + ft_tcp_live(env);
    for (wft_stream *st = env->streams; st; st = st->env_next)
        n += in_flight(st->callouts);
    return n;
}

bool ft_callouts_worker_full(wft_env *env) {
    uint32_t cap =
        env->callouts_max_per_worker ? env->callouts_max_per_worker : DEFAULT_MAX_PER_WORKER;
    return ft_callouts_in_flight(env) >= cap;
}

static void callout_free(struct weft_callout *c) {
    free(c->cluster);
    free(c->method);
    free(c->path);
    free(c->authority);
    ft_hmap_clear(&c->headers);
    ft_bytes_free(&c->body);
    free(c);
}

void ft_callouts_free(struct weft_callout **list) {
    while (*list) {
        struct weft_callout *c = *list;
        *list = c->next;
        callout_free(c);
    }
}

static uint64_t ms_us(uint64_t ms) {
    return ms > UINT64_MAX / 2000 ? UINT64_MAX / 2 : ms * 1000;
}

/* The scope passed its checks: the cluster, the worker's cap, then the
 * callout (st: stream-scoped unless detached; worker: worker-scoped). */
static weft_result begin(wft_env *env, wft_stream *st, const weft_callout_request *req,
                         weft_callout_cb cb, weft_worker_callout_cb wcb, void *arg,
                         weft_callout **out) {
    bool detached = req->flags & WEFT_CALLOUT_DETACHED;
    if (out)
        *out = NULL;
    if (!req->cluster.len || !ft_cluster_known(env, req->cluster.ptr, req->cluster.len))
        return WEFT_ERR_NOT_FOUND;
    if (ft_callouts_worker_full(env))
        return WEFT_ERR_LIMIT;
    struct weft_callout *c = calloc(1, sizeof(*c));
    if (!c)
        return WEFT_ERR_NOMEM;
    c->env = env;
    c->cluster = ft_strndup(req->cluster.ptr, req->cluster.len);
    c->method = ft_strndup(req->method.ptr, req->method.len);
    c->path = ft_strndup(req->path.ptr, req->path.len);
    c->authority = req->authority.len ? ft_strndup(req->authority.ptr, req->authority.len)
                                      : ft_strdup(c->cluster ? c->cluster : "");
    bool oom = !c->cluster || !c->method || !c->path || !c->authority ||
               (req->body_buffer ? ft_buffer_to_bytes(req->body_buffer, &c->body) != 0
                                 : ft_bytes_append(&c->body, req->body.ptr ? req->body.ptr : "",
                                                   req->body.len) != 0);
    for (size_t i = 0; i < req->n_headers && !oom; i++)
        oom = ft_hmap_add(&c->headers, req->header_names[i].ptr, req->header_names[i].len,
                          req->header_values[i].ptr, req->header_values[i].len) != 0;
    if (oom) {
        callout_free(c);
        return WEFT_ERR_NOMEM;
    }
    if (req->body_buffer) /* moved out on WEFT_OK only */
        ft_buffer_drain_bytes(req->body_buffer, req->body_buffer->len);
    c->timeout_ms = req->timeout_ms;
    c->deadline_us = env->now_us + ms_us(req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    c->max_body = req->max_response_body   ? req->max_response_body
                  : env->callouts_max_body ? env->callouts_max_body
                                           : DEFAULT_MAX_BODY;
    c->seq = ++env->seq;
    c->cb = cb;
    c->wcb = wcb;
    c->arg = arg;
    c->detached = detached;
    c->worker = wcb != NULL;
    struct weft_callout **pp = &env->callouts;
    if (st && !detached) {
        c->st = st;
        for (const ft_canned *k = env->canned; k; k = k->next)
            if (!strcmp(k->cluster, c->cluster) &&
                !strncmp(c->path, k->prefix, strlen(k->prefix))) {
                c->canned = k;
                break;
            }
        pp = &st->callouts;
        st->ncallouts++;
    }
    while (*pp) /* oldest first: pending index 0 is the first started */
        pp = &(*pp)->next;
    *pp = c;
    if (out && !detached)
        *out = c;
    return WEFT_OK;
}

/* The stream checks of a stream-scoped start; NULL and *err on a failure. */
static wft_stream *stream_scope(weft_stream *s, const weft_callout_request *req, bool has_cb,
                                const char *fn, weft_result *err) {
    wft_stream *st = s ? ft_stream_from(s) : NULL;
    if (!st) {
        *err = ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: not a live stream", fn);
        return NULL;
    }
    wft_env *env = st->env;
    const char *bad = NULL;
    if (!ft_on_owner_thread(env))
        *err = ft_misuse(env, WEFT_ERR_THREAD,
                         "%s: called from a thread that does not own the stream", fn);
    else if ((bad = request_problem(req, has_cb)) != NULL)
        *err = ft_misuse(env, WEFT_ERR_INVALID, "%s: %s", fn, bad);
    else if (st->completed || st->hook == FT_HOOK_NONE || st->hook == FT_HOOK_COMPLETE ||
             st->hook == FT_HOOK_DESTROY)
        *err = ft_misuse(env, WEFT_ERR_STATE, "%s: call it from a hook or a callback", fn);
    else if (!(req->flags & WEFT_CALLOUT_DETACHED) && in_flight(st->callouts) >= FT_STREAM_CALLOUTS)
        *err = WEFT_ERR_LIMIT;
    else
        return st;
    return NULL;
}

weft_result ft_h_callout_start2(weft_stream *s, const weft_callout_request *req, weft_callout_cb cb,
                                void *arg, weft_callout **out) {
    weft_result r;
    wft_stream *st = stream_scope(s, req, cb != NULL, "callout_start2", &r);
    return st ? begin(st->env, st, req, cb, NULL, arg, out) : r;
}

/* 1.0's call is start2 with those arguments, as in weft. */
weft_result ft_h_callout_start(weft_stream *s, weft_str cluster, weft_str method, weft_str path,
                               const weft_str *hn, const weft_str *hv, size_t n, weft_str body,
                               uint64_t timeout_ms, weft_callout_cb cb, void *arg,
                               weft_callout **out) {
    weft_callout_request req = {.size = sizeof(req),
                                .cluster = cluster,
                                .method = method,
                                .path = path,
                                .header_names = hn,
                                .header_values = hv,
                                .n_headers = n,
                                .body = body,
                                .timeout_ms = timeout_ms};
    if (!cb) {
        wft_stream *st = s ? ft_stream_from(s) : NULL;
        return ft_misuse(st ? st->env : ft_current_env(), WEFT_ERR_INVALID,
                         "callout_start: callback NULL");
    }
    return ft_h_callout_start2(s, &req, cb, arg, out);
}

weft_result ft_h_callout_cancel(weft_stream *s, weft_callout *c) {
    wft_stream *st = s ? ft_stream_from(s) : NULL;
    if (!st)
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "callout_cancel: not a live stream");
    if (!ft_on_owner_thread(st->env))
        return ft_misuse(st->env, WEFT_ERR_THREAD, "callout_cancel: another thread's stream");
    for (struct weft_callout *x = st->callouts; c && x; x = x->next)
        if (x == c && !x->done) {
            x->done = true;
            return WEFT_OK;
        }
    return ft_misuse(st->env, WEFT_ERR_INVALID,
                     "callout_cancel: not a callout of this stream in flight");
}

weft_result ft_h_worker_callout_start(weft_worker *w, const weft_callout_request *req,
                                      weft_worker_callout_cb cb, void *arg, weft_callout **out) {
    weft_result r;
    wft_env *env = ft_worker_env(w, "worker_callout_start", &r);
    if (!env)
        return r;
    const char *bad = request_problem(req, cb != NULL);
    if (bad)
        return ft_misuse(env, WEFT_ERR_INVALID, "worker_callout_start: %s", bad);
    return begin(env, NULL, req, NULL, cb, arg, out);
}

weft_result ft_h_worker_callout_cancel(weft_worker *w, weft_callout *c) {
    weft_result r;
    wft_env *env = ft_worker_env(w, "worker_callout_cancel", &r);
    if (!env)
        return r;
    for (struct weft_callout *x = env->callouts; c && x; x = x->next)
        if (x == c && x->worker && !x->done) {
            x->done = true;
            return WEFT_OK;
        }
    return WEFT_ERR_NOT_FOUND;
}

void ft_callouts_worker_closing(wft_env *env) {
    for (struct weft_callout *c = env->callouts; c; c = c->next)
        if (c->worker)
            c->done = true; /* cancelled, no callback */
}

/* ---- answers ---- */

typedef struct answer {
    struct weft_callout *c;
    weft_callout_response resp;
} answer;

static void run_stream_cb(void *arg) {
    answer *a = arg;
    a->c->cb(ft_handle(a->c->st), a->c->st->ctx, a->c->arg, &a->resp);
}

void ft_callout_finish(struct weft_callout *c, int status, const char *reason,
                       const ft_hmap *headers, const char *body, size_t body_len) {
    c->done = true;
    /* weft's HTTP/1.1 response parser keeps 100 header fields: past them
     * the callout fails (a detached one counts as failed). */
    if (status > 0 && headers && headers->n > MAX_RESPONSE_HEADERS) {
        status = 0;
        reason = "too_many_headers";
        headers = NULL;
        body = NULL;
        body_len = 0;
    }
    /* A detached callout's body is discarded as it comes (weft keeps none
     * of it): no limit applies, only the status counts. */
    if (status > 0 && body_len > c->max_body && !c->detached) {
        status = 0;
        reason = "body_too_large";
        headers = NULL;
        body = NULL;
        body_len = 0;
    }
    if (c->detached) {
        c->failed = status == 0 || status >= 500;
        return; /* the response is discarded */
    }
    if (c->st && c->st->completed)
        return;
    size_t n = headers ? headers->n : 0;
    weft_str *names = n ? calloc(n, sizeof(*names)) : NULL;
    weft_str *values = n ? calloc(n, sizeof(*values)) : NULL;
    if (n && (!names || !values)) {
        free(names);
        free(values);
        n = 0;
        names = values = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = (weft_str){headers->h[i].name, headers->h[i].nlen};
        values[i] = (weft_str){headers->h[i].value, headers->h[i].vlen};
    }
    answer a = {c,
                {
                    .size = sizeof(weft_callout_response),
                    .status = status,
                    .reason = {reason ? reason : "", reason ? strlen(reason) : 0},
                    .header_names = names,
                    .header_values = values,
                    .n_headers = n,
                    .body = {body ? body : "", body ? body_len : 0},
                }};
    if (c->st) {
        ft_stream_run_callback(c->st, run_stream_cb, &a);
    } else { /* worker scope: outside any stream, on the env's worker */
        wft_env *old = ft_swap_current(c->env);
        c->wcb(wft_env_worker(c->env), c->arg, &a.resp);
        ft_swap_current(old);
    }
    free(names);
    free(values);
}

/* The earliest callout deadline due at or before limit in list that beats
 * (*best, *best_seq) (or any, when !found). */
bool ft_callouts_next_due(struct weft_callout *list, uint64_t limit, uint64_t *best,
                          uint64_t *best_seq, bool found, struct weft_callout **out) {
    bool got = false;
    for (struct weft_callout *c = list; c; c = c->next) {
        if (c->done || c->deadline_us > limit)
            continue;
        if (!found || c->deadline_us < *best || (c->deadline_us == *best && c->seq < *best_seq)) {
            found = got = true;
            *best = c->deadline_us;
            *best_seq = c->seq;
            *out = c;
        }
    }
    return got;
}

/* ---- the test's side: a list's pending callouts ---- */

static struct weft_callout *pending(struct weft_callout *list, size_t i) {
    for (struct weft_callout *c = list; c; c = c->next)
        if (!c->done && i-- == 0)
            return c;
    return NULL;
}

size_t ft_callouts_pending(struct weft_callout *list) {
    return in_flight(list);
}

bool ft_callout_request_of(struct weft_callout *list, size_t i, const char **cluster,
                           const char **method, const char **path, const char **body,
                           uint64_t *timeout_ms) {
    struct weft_callout *c = pending(list, i);
    if (!c)
        return false;
    if (cluster)
        *cluster = c->cluster;
    if (method)
        *method = c->method;
    if (path)
        *path = c->path;
    if (body)
        *body = ft_bytes_cstr(&c->body);
    if (timeout_ms)
        *timeout_ms = c->timeout_ms;
    return true;
}

/* "host": the authority (the cluster's name when the request set none). */
const char *ft_callout_header_of(struct weft_callout *list, size_t i, const char *name) {
    struct weft_callout *c = name ? pending(list, i) : NULL;
    if (!c)
        return NULL;
    const ft_header *h = ft_hmap_find(&c->headers, name, strlen(name), 0);
    if (!h && !strcmp(name, "host"))
        return c->authority;
    return h ? h->value : NULL;
}

/* Answers pending callout i of list; -1 (why in *why) when refused. */
int ft_callout_respond_of(struct weft_callout *list, size_t i, int status,
                          const char *const *headers, const char *body, const char **why) {
    struct weft_callout *c = pending(list, i);
    if (!c) {
        *why = "no such pending callout";
        return -1;
    }
    ft_hmap h = {0};
    if (headers && ft_hmap_add_lines(&h, headers, NULL) != 0) {
        ft_hmap_clear(&h);
        *why = "a callout response header is not \"name: value\"";
        return -1;
    }
    ft_callout_finish(c, status, "", &h, body ? body : "", body ? strlen(body) : 0);
    ft_hmap_clear(&h);
    return 0;
}

int ft_callout_fail_of(struct weft_callout *list, size_t i, const char *reason) {
    struct weft_callout *c = pending(list, i);
    if (!c)
        return -1;
    ft_callout_finish(c, 0, reason ? reason : "connect_failure", NULL, NULL, 0);
    return 0;
}

/* ---- kit controls of the env's callouts (filtertest.h) ---- */

size_t wft_env_callout_pending(wft_env *env) {
    return env ? in_flight(env->callouts) : 0;
}

bool wft_env_callout_request(wft_env *env, size_t i, const char **cluster, const char **method,
                             const char **path, const char **body, uint64_t *timeout_ms) {
    return env && ft_callout_request_of(env->callouts, i, cluster, method, path, body, timeout_ms);
}

const char *wft_env_callout_header(wft_env *env, size_t i, const char *name) {
    return env ? ft_callout_header_of(env->callouts, i, name) : NULL;
}

bool wft_env_callout_detached(wft_env *env, size_t i) {
    struct weft_callout *c = env ? pending(env->callouts, i) : NULL;
    return c && c->detached;
}

int wft_env_callout_respond(wft_env *env, size_t i, int status, const char *const *headers,
                            const char *body) {
    const char *why = NULL;
    if (!env)
        return WFT_REJECTED;
    if (ft_callout_respond_of(env->callouts, i, status, headers, body, &why) != 0) {
        ft_set_error(env, "%s", why);
        return WFT_REJECTED;
    }
    return 0;
}

int wft_env_callout_fail(wft_env *env, size_t i, const char *reason) {
    if (!env || ft_callout_fail_of(env->callouts, i, reason) != 0) {
        if (env)
            ft_set_error(env, "no such pending callout");
        return WFT_REJECTED;
    }
    return 0;
}

static uint64_t detached_count(wft_env *env, const char *cluster, bool failed) {
    uint64_t n = 0;
    for (struct weft_callout *c = env && cluster ? env->callouts : NULL; c; c = c->next)
        n += c->detached && !strcmp(c->cluster, cluster) && (!failed || c->failed);
    return n;
}

uint64_t wft_callout_detached_sent(wft_env *env, const char *cluster) {
    return detached_count(env, cluster, false);
}

uint64_t wft_callout_detached_failed(wft_env *env, const char *cluster) {
    return detached_count(env, cluster, true);
}

int wft_env_set_callout_limits(wft_env *env, uint32_t max_per_worker, uint64_t max_response_body) {
    if (!env)
        return WFT_REJECTED;
    env->callouts_max_per_worker = max_per_worker;
    env->callouts_max_body = max_response_body;
    return 0;
}
