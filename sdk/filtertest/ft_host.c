/* ft_host.c: the kit's weft_host_api: every host function a filter can
 * call, over the synthetic stream. Checks as the core does: NULL handles
 * are WEFT_ERR_INVALID, pointers that are no live kit object
 * WEFT_ERR_HANDLE, another thread WEFT_ERR_THREAD, and calls that are not
 * allowed now (after the stream completed, resume when not paused, ...)
 * WEFT_ERR_STATE; each such error also leaves a misuse line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_config.h"
#include "ft_internal.h"
#include "wsh_rules.h"

/* Resolves a stream handle for function `fn`; `change` marks calls that
 * change the exchange (refused once the stream completed). */
static weft_result stream_of(weft_stream *s, const char *fn, bool change, wft_stream **out) {
    *out = NULL;
    if (!s)
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: NULL stream", fn);
    wft_stream *st = ft_stream_from(s);
    if (!st)
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: not a live stream", fn);
    if (!ft_on_owner_thread(st->env))
        return ft_misuse(st->env, WEFT_ERR_THREAD,
                         "%s: called from a thread that does not own the stream", fn);
    if (change && st->completed)
        return ft_misuse(st->env, WEFT_ERR_STATE, "%s: the stream has completed", fn);
    *out = st;
    return WEFT_OK;
}

#define STREAM_OR_RETURN(s, fn, change, fail)                                                      \
    wft_stream *st;                                                                                \
    do {                                                                                           \
        if (stream_of((s), (fn), (change), &st) != WEFT_OK)                                        \
            return fail;                                                                           \
    } while (0)

#define STREAM_OR_RESULT(s, fn, change)                                                            \
    wft_stream *st;                                                                                \
    do {                                                                                           \
        weft_result r_ = stream_of((s), (fn), (change), &st);                                      \
        if (r_ != WEFT_OK)                                                                         \
            return r_;                                                                             \
    } while (0)

static bool str_ok(weft_str s) {
    return s.ptr != NULL || s.len == 0;
}

/* ---- headers ---- */

static const char *const map_names[] = {"request headers", "request trailers", "response headers",
                                        "response trailers"};

/* As the core: a map that does not exist yet (no response, no trailers)
 * reads as empty (WEFT_ERR_NOT_FOUND) and refuses changes (STATE). Request
 * headers (and path, cluster) change until they have gone past the filter;
 * response headers and status until they have; trailers until the end of
 * their direction has. */
static bool map_exists(const wft_stream *st, weft_header_map m) {
    switch (m) {
    case WEFT_REQUEST_HEADERS:
        return true;
    case WEFT_REQUEST_TRAILERS:
        return st->trailers_in[WEFT_REQUEST_BODY];
    case WEFT_RESPONSE_HEADERS:
        return st->dir[WEFT_RESPONSE_BODY].headers_in;
    default:
        return st->trailers_in[WEFT_RESPONSE_BODY];
    }
}

/* The map a header call works on: in on_upstream_request (1.1) the request
 * headers are the attempt's copy. */
static ft_hmap *hmap(wft_stream *st, weft_header_map m) {
    if (st->hook == FT_HOOK_UP_REQUEST && m == WEFT_REQUEST_HEADERS)
        return &st->attempt_hdrs;
    return &st->maps[m];
}

static weft_result map_check(wft_stream *st, weft_header_map m, const char *fn, bool write) {
    if ((unsigned)m > WEFT_RESPONSE_TRAILERS)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "%s: no header map %d", fn, (int)m);
    if (!map_exists(st, m))
        return write ? ft_misuse(st->env, WEFT_ERR_STATE, "%s: there are no %s (yet)", fn,
                                 map_names[m])
                     : WEFT_ERR_NOT_FOUND;
    if (!write || (st->hook == FT_HOOK_UP_REQUEST && m == WEFT_REQUEST_HEADERS))
        return WEFT_OK;
    const ft_dir *req = &st->dir[WEFT_REQUEST_BODY], *resp = &st->dir[WEFT_RESPONSE_BODY];
    bool ok;
    switch (m) {
    case WEFT_REQUEST_HEADERS:
        ok = !req->headers_fwd;
        break;
    case WEFT_REQUEST_TRAILERS:
        ok = !req->end_fwd;
        break;
    case WEFT_RESPONSE_HEADERS:
        ok = !resp->headers_fwd;
        break;
    default:
        ok = !resp->end_fwd;
        break;
    }
    /* A local reply's response headers change in its response hooks. */
    bool answered = st->replied && !(ft_lr_flowing(st) && m >= WEFT_RESPONSE_HEADERS);
    if (!ok || answered)
        return ft_misuse(st->env, WEFT_ERR_STATE, "%s: the %s have been sent on", fn, map_names[m]);
    return WEFT_OK;
}

static weft_result h_header_get(weft_stream *s, weft_header_map m, weft_str name, size_t index,
                                weft_str *value) {
    STREAM_OR_RESULT(s, "header_get", false);
    if (!str_ok(name) || !value)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "header_get: NULL name or value pointer");
    weft_result r = map_check(st, m, "header_get", false);
    if (r)
        return r;
    const ft_header *h = ft_hmap_find(hmap(st, m), name.ptr, name.len, index);
    if (!h)
        return WEFT_ERR_NOT_FOUND;
    *value = (weft_str){h->value, h->vlen};
    return WEFT_OK;
}

static size_t h_header_count(weft_stream *s, weft_header_map m, weft_str name) {
    STREAM_OR_RETURN(s, "header_count", false, 0);
    if (!str_ok(name) || map_check(st, m, "header_count", false))
        return 0;
    return ft_hmap_count(hmap(st, m), name.ptr, name.len);
}

static weft_result header_write(weft_stream *s, weft_header_map m, weft_str name, weft_str value,
                                bool replace, const char *fn) {
    STREAM_OR_RESULT(s, fn, true);
    if (!str_ok(name) || !ft_header_name_ok(name.ptr, name.len))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "%s: \"%.*s\" is not a header name", fn,
                         (int)(name.len > 64 ? 64 : name.len), name.ptr ? name.ptr : "");
    if (!str_ok(value) || !ft_header_value_ok(value.ptr, value.len))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "%s: the value has CR, LF or NUL", fn);
    weft_result r = map_check(st, m, fn, true);
    if (r)
        return r;
    if (replace)
        ft_hmap_remove(hmap(st, m), name.ptr, name.len);
    return ft_hmap_add(hmap(st, m), name.ptr, name.len, value.ptr, value.len) ? WEFT_ERR_NOMEM
                                                                              : WEFT_OK;
}

static weft_result h_header_set(weft_stream *s, weft_header_map m, weft_str name, weft_str value) {
    return header_write(s, m, name, value, true, "header_set");
}

static weft_result h_header_add(weft_stream *s, weft_header_map m, weft_str name, weft_str value) {
    return header_write(s, m, name, value, false, "header_add");
}

static weft_result h_header_remove(weft_stream *s, weft_header_map m, weft_str name) {
    STREAM_OR_RESULT(s, "header_remove", true);
    if (!str_ok(name) || !ft_header_name_ok(name.ptr, name.len))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "header_remove: not a header name");
    weft_result r = map_check(st, m, "header_remove", true);
    if (r)
        return r;
    return ft_hmap_remove(hmap(st, m), name.ptr, name.len) ? WEFT_OK : WEFT_ERR_NOT_FOUND;
}

static weft_result h_header_iterate(weft_stream *s, weft_header_map m, weft_header_visit visit,
                                    void *arg) {
    STREAM_OR_RESULT(s, "header_iterate", false);
    if (!visit)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "header_iterate: NULL visitor");
    weft_result r = map_check(st, m, "header_iterate", false);
    if (r)
        return r;
    /* A visitor that changes the map would invalidate the walk: iterate a
     * snapshot of the views. */
    const ft_hmap *map = hmap(st, m);
    for (size_t i = 0; i < map->n; i++)
        if (!visit((weft_str){map->h[i].name, map->h[i].nlen},
                   (weft_str){map->h[i].value, map->h[i].vlen}, arg))
            break;
    return WEFT_OK;
}

/* ---- request line and status ---- */

static weft_result h_request_get(weft_stream *s, weft_str *method, weft_str *path, weft_str *query,
                                 weft_str *authority) {
    STREAM_OR_RESULT(s, "request_get", false);
    const char *q = strchr(st->path, '?');
    size_t plen = q ? (size_t)(q - st->path) : strlen(st->path);
    if (method)
        *method = (weft_str){st->method, strlen(st->method)};
    if (path)
        *path = (weft_str){st->path, plen};
    if (query)
        *query = q ? (weft_str){q + 1, strlen(q + 1)} : (weft_str){st->path + plen, 0};
    if (authority)
        *authority = (weft_str){st->authority ? st->authority : "",
                                st->authority ? strlen(st->authority) : 0};
    return WEFT_OK;
}

static weft_result h_request_set_path(weft_stream *s, weft_str pq) {
    STREAM_OR_RESULT(s, "request_set_path", true);
    if (!str_ok(pq) || pq.len == 0 || pq.ptr[0] != '/')
        return ft_misuse(st->env, WEFT_ERR_INVALID,
                         "request_set_path: the path must start with '/'");
    for (size_t i = 0; i < pq.len; i++) {
        unsigned char c = (unsigned char)pq.ptr[i];
        if (c <= 0x20 || c == 0x7f)
            return ft_misuse(st->env, WEFT_ERR_INVALID,
                             "request_set_path: control character or space");
    }
    if (st->dir[WEFT_REQUEST_BODY].headers_fwd || st->replied)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "request_set_path: the request headers have been sent on");
    char *p = ft_strndup(pq.ptr, pq.len);
    if (!p)
        return WEFT_ERR_NOMEM;
    if (st->env->desc->abi_minor == 0)
        st->route_dirty = true; /* a 1.0 filter: routed on after the headers pass */
    /* Views of the old path handed out by request_get stay valid until
     * the stream ends. */
    ft_graveyard_add(st, st->path);
    st->path = p;
    return WEFT_OK;
}

static int h_response_status(weft_stream *s) {
    STREAM_OR_RETURN(s, "response_status", false, 0);
    return st->status;
}

static weft_result h_response_set_status(weft_stream *s, int status) {
    STREAM_OR_RESULT(s, "response_set_status", true);
    if (status < 200 || status > 599)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "response_set_status: %d is not in 200..599",
                         status);
    weft_result r = map_check(st, WEFT_RESPONSE_HEADERS, "response_set_status", true);
    if (r)
        return r;
    st->status = status;
    return WEFT_OK;
}

/* ---- buffers ---- */

static weft_result buffer_check(const weft_buffer *b, const char *fn) {
    if (!b)
        return ft_misuse(ft_current_env(), WEFT_ERR_INVALID, "%s: NULL buffer", fn);
    if (!ft_buffer_live(b))
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE,
                         "%s: not a live buffer (used after its hook?)", fn);
    return WEFT_OK;
}

static size_t h_buffer_length(const weft_buffer *b) {
    return buffer_check(b, "buffer_length") ? 0 : b->len;
}

static size_t h_buffer_copy_out(const weft_buffer *b, size_t offset, void *dst, size_t len) {
    if (buffer_check(b, "buffer_copy_out") || (!dst && len))
        return 0;
    return ft_buffer_copy(b, offset, dst, len);
}

static size_t h_buffer_peek(const weft_buffer *b, weft_str *segments, size_t max_segments) {
    if (buffer_check(b, "buffer_peek"))
        return 0;
    for (size_t i = 0; segments && i < max_segments && i < b->nseg; i++)
        segments[i] = (weft_str){b->segs[i].base + b->segs[i].off, b->segs[i].len};
    return b->nseg;
}

static weft_result buffer_add(weft_buffer *b, const void *data, size_t len, bool front,
                              const char *fn) {
    weft_result r = buffer_check(b, fn);
    if (r)
        return r;
    if (!data && len)
        return ft_misuse(ft_current_env(), WEFT_ERR_INVALID, "%s: NULL data", fn);
    return ft_buffer_add(b, data, len, front) ? WEFT_ERR_NOMEM : WEFT_OK;
}

static weft_result h_buffer_append(weft_buffer *b, const void *data, size_t len) {
    return buffer_add(b, data, len, false, "buffer_append");
}

static weft_result h_buffer_prepend(weft_buffer *b, const void *data, size_t len) {
    return buffer_add(b, data, len, true, "buffer_prepend");
}

static weft_result h_buffer_drain(weft_buffer *b, size_t len) {
    weft_result r = buffer_check(b, "buffer_drain");
    if (r)
        return r;
    if (ft_buffer_drain_bytes(b, len))
        return ft_misuse(ft_current_env(), WEFT_ERR_INVALID,
                         "buffer_drain: %zu bytes, the buffer has %zu", len, b->len);
    return WEFT_OK;
}

static weft_result h_body_buffer_for_replay(weft_stream *s, size_t max_bytes) {
    STREAM_OR_RESULT(s, "body_buffer_for_replay", true);
    if (st->replied)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "body_buffer_for_replay: the stream has a local reply");
    if (st->dir[WEFT_REQUEST_BODY].headers_fwd || st->dir[WEFT_REQUEST_BODY].bytes_in)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "body_buffer_for_replay: call it from on_request_headers");
    st->replay_on = true;
    if (max_bytes > st->replay_max)
        st->replay_max = max_bytes;
    if (st->dir[WEFT_REQUEST_BODY].fwd_body.len > max_bytes)
        st->replay_overflow = true;
    return WEFT_OK;
}

static size_t h_body_buffered_length(weft_stream *s, weft_body_dir dir) {
    STREAM_OR_RETURN(s, "body_buffered_length", false, 0);
    if ((unsigned)dir > WEFT_RESPONSE_BODY)
        return 0;
    return st->dir[dir].held ? st->dir[dir].held->len : 0;
}

static size_t h_body_copy_out(weft_stream *s, weft_body_dir dir, size_t offset, void *dst,
                              size_t len) {
    STREAM_OR_RETURN(s, "body_copy_out", false, 0);
    if ((unsigned)dir > WEFT_RESPONSE_BODY || !st->dir[dir].held || (!dst && len))
        return 0;
    return ft_buffer_copy(st->dir[dir].held, offset, dst, len);
}

/* ---- control ---- */

static weft_result h_reply_send(weft_stream *s, int status, weft_str reason, const weft_str *hn,
                                const weft_str *hv, size_t n, weft_str body) {
    STREAM_OR_RESULT(s, "reply_send", true);
    if (status < 200 || status > 599)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "reply_send: status %d is not in 200..599",
                         status);
    if (!str_ok(reason) || !str_ok(body) || (n && (!hn || !hv)))
        return ft_misuse(st->env, WEFT_ERR_INVALID,
                         "reply_send: NULL reason, body or header arrays");
    if (!ft_header_value_ok(reason.ptr, reason.len))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "reply_send: the reason has CR, LF or NUL");
    for (size_t i = 0; i < n; i++)
        if (!str_ok(hn[i]) || !ft_header_name_ok(hn[i].ptr, hn[i].len) || !str_ok(hv[i]) ||
            !ft_header_value_ok(hv[i].ptr, hv[i].len))
            return ft_misuse(st->env, WEFT_ERR_INVALID, "reply_send: header %zu is not valid", i);
    if (st->replied && !ft_lr_flowing(st))
        return ft_misuse(st->env, WEFT_ERR_STATE, "reply_send: a local reply was sent already");
    if (st->hook == FT_HOOK_UP_REQUEST)
        return ft_misuse(st->env, WEFT_ERR_STATE, "reply_send: not from on_upstream_request");
    if (st->dir[WEFT_RESPONSE_BODY].headers_fwd)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "reply_send: the response has started downstream");
    /* Through the filter's response hooks (run now, nested, as the core
     * does), unless it replaces a response in its header phase. */
    ft_reply_make(st, status, reason, hn, hv, n, body, ft_reply_via_hooks(st));
    st->reply_in_hook = true;
    return WEFT_OK;
}

/* ABI 1.1 owned pauses: the kit hosts one filter, which owns every pause
 * (test code acts for it); wft_stream_resume_as plays another filter. */
static weft_result h_stream_pause_token(weft_stream *s, uint64_t *token) {
    STREAM_OR_RESULT(s, "stream_pause_token", true);
    if (!token)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "weft_stream_pause_token: NULL token");
    return ft_pause_token(st, token);
}

static weft_result h_stream_resume_token(weft_stream *s, uint64_t token) {
    STREAM_OR_RESULT(s, "stream_resume_token", true);
    if (st->replied)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "weft_stream_resume_token: the stream has a local reply");
    if (st->hook != FT_HOOK_NONE && st->hook != FT_HOOK_CALLBACK)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "weft_stream_resume_token: not from inside a hook");
    weft_result r = ft_resume_token(st, token);
    if (r == WEFT_OK)
        ft_stream_pump_events(st);
    return r;
}

weft_result wft_stream_resume_as(wft_stream *st, const char *other_filter) {
    if (!st)
        return WEFT_ERR_HANDLE;
    const char *other = other_filter && *other_filter ? other_filter : "other";
    if (st->completed)
        return ft_misuse(st->env, WEFT_ERR_STATE, "weft_stream_resume: the stream has completed");
    if (!st->dir[WEFT_REQUEST_BODY].paused && !st->dir[WEFT_RESPONSE_BODY].paused)
        return ft_misuse(st->env, WEFT_ERR_STATE, "weft_stream_resume: the stream is not paused");
    /* The core's line (filter_host.c), naming both filters. */
    return ft_misuse(st->env, WEFT_ERR_STATE,
                     "filter %s: stream_resume: the stream is paused by filter %s, not by this "
                     "filter: only the filter that paused (or a holder of its resume token) "
                     "resumes",
                     other, ft_filter_name(st->env));
}

static weft_result h_stream_resume(weft_stream *s) {
    STREAM_OR_RESULT(s, "stream_resume", true);
    if (st->replied && !ft_lr_flowing(st))
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "weft_stream_resume: the stream has a local reply");
    if (st->hook != FT_HOOK_NONE && st->hook != FT_HOOK_CALLBACK)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "weft_stream_resume: not from inside a hook (return WEFT_CONTINUE there)");
    weft_result r = ft_resume(st);
    if (r == WEFT_OK)
        ft_stream_pump_events(st); /* the stream goes on now, as in the core */
    return r;
}

static weft_result h_route_set_cluster(weft_stream *s, weft_str cluster) {
    STREAM_OR_RESULT(s, "route_set_cluster", true);
    if (!str_ok(cluster) || cluster.len == 0)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "route_set_cluster: empty cluster name");
    if (st->dir[WEFT_REQUEST_BODY].headers_fwd || st->replied)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "route_set_cluster: the request headers have been sent on");
    if (!ft_cluster_known(st->env, cluster.ptr, cluster.len))
        return WEFT_ERR_NOT_FOUND;
    char *c = ft_strndup(cluster.ptr, cluster.len);
    if (!c)
        return WEFT_ERR_NOMEM;
    free(st->cluster);
    st->cluster = c;
    return WEFT_OK;
}

/* ---- routing (ABI 1.1): the env's routes, see ft_route.c ---- */

static weft_str cstr_view(const char *c) {
    return (weft_str){c ? c : "", c ? strlen(c) : 0};
}

static weft_result h_route_info(weft_stream *s, weft_route_facts *out) {
    STREAM_OR_RESULT(s, "route_info", false);
    if (!out || out->size < offsetof(weft_route_facts, has_route) + sizeof(out->has_route))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "route_info: out NULL or out->size too small");
    size_t sz = out->size;
    const ft_route *r = st->route;
    weft_route_facts ri = {.size = sz, .has_route = r != NULL};
    ri.route = cstr_view(r ? r->name : NULL);
    ri.vhost = cstr_view(r ? r->vhost : NULL);
    ri.cluster = cstr_view(st->cluster ? st->cluster : r ? r->cluster : NULL);
    memcpy(out, &ri, sz < sizeof(ri) ? sz : sizeof(ri));
    out->size = sz;
    return WEFT_OK;
}

static weft_result h_route_refresh(weft_stream *s) {
    STREAM_OR_RESULT(s, "route_refresh", true);
    if (st->dir[WEFT_REQUEST_BODY].headers_fwd || st->replied)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "route_refresh: routing is done (the request headers have been sent on)");
    st->route = ft_route_match(st->env, st->path);
    st->route_dirty = false;
    return WEFT_OK;
}

static const void *h_route_config(weft_stream *s) {
    STREAM_OR_RETURN(s, "route_config", false, NULL);
    if (st->hook == FT_HOOK_NONE || !st->route || !st->route->has_cfg)
        return NULL;
    return st->route->cfg;
}

static weft_result h_upstream_retry(weft_stream *s) {
    STREAM_OR_RESULT(s, "upstream_retry", true);
    if (st->hook != FT_HOOK_ATTEMPT && st->hook != FT_HOOK_RESP_HEADERS)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "upstream_retry: only from on_upstream_attempt or on_response_headers");
    if (st->replied)
        return ft_misuse(st->env, WEFT_ERR_STATE, "upstream_retry: the stream has a local reply");
    if (st->dir[WEFT_REQUEST_BODY].bytes_in > 0 && !st->replay_on)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "upstream_retry: the request body was not buffered for replay");
    if (st->replay_overflow)
        return WEFT_ERR_LIMIT;
    if (st->retry_asked_us)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "upstream_retry: a delayed retry waits for its delay already");
    st->retries++;
    st->retry_delay_ms = 0;
    st->retry_flags = 0;
    st->retry_asked_us = 0;
    st->next_flags = 0;
    return WEFT_OK;
}

/* ---- 1.1 retry ---- */

static weft_result h_upstream_set_try_timeout(weft_stream *s, uint64_t ms) {
    STREAM_OR_RESULT(s, "upstream_set_try_timeout", true);
    if (ms > 86400000u)
        return ft_misuse(st->env, WEFT_ERR_INVALID,
                         "upstream_set_try_timeout: %llu ms is more than a day",
                         (unsigned long long)ms);
    if (st->replied || st->dir[WEFT_RESPONSE_BODY].headers_fwd)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "upstream_set_try_timeout: the response has started downstream");
    st->try_timeout_ms = ms;
    if (st->hook == FT_HOOK_UP_REQUEST)
        st->try_due_us = 0; /* armed when the hook returns, with this value */
    return WEFT_OK;
}

static weft_result h_upstream_retry_ex(weft_stream *s, const weft_retry_options *o) {
    STREAM_OR_RESULT(s, "upstream_retry_ex", true);
    if (!o || o->size < offsetof(weft_retry_options, flags) + sizeof(o->flags) ||
        (o->flags & ~WEFT_RETRY_OTHER_ENDPOINT) || o->delay_ms > 3600000u)
        return ft_misuse(st->env, WEFT_ERR_INVALID,
                         "upstream_retry_ex: options NULL, too small, unknown flags or a delay "
                         "above an hour");
    if (st->hook == FT_HOOK_UP_REQUEST)
        return ft_misuse(st->env, WEFT_ERR_STATE,
                         "upstream_retry_ex: not from on_upstream_request");
    weft_result r = h_upstream_retry(s);
    if (r != WEFT_OK)
        return r;
    st->retry_delay_ms = o->delay_ms;
    st->retry_flags = o->flags;
    st->retry_asked_us = o->delay_ms ? st->env->now_us : 0;
    st->next_flags = o->flags & WEFT_RETRY_OTHER_ENDPOINT ? WEFT_ATTEMPT_F_OTHER_ENDPOINT : 0;
    return WEFT_OK;
}

static weft_result h_attempt_endpoint_label(weft_stream *s, weft_str key, weft_str *value) {
    STREAM_OR_RESULT(s, "attempt_endpoint_label", false);
    if (!value || !str_ok(key))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "attempt_endpoint_label: NULL key or value");
    if (!st->att_reported && !st->attempt_open)
        return WEFT_ERR_NOT_FOUND;
    const ft_header *h = ft_kv_find(&st->ep_labels, key.ptr, key.len);
    if (!h)
        return WEFT_ERR_NOT_FOUND;
    *value = (weft_str){h->value, h->vlen};
    return WEFT_OK;
}

static weft_result h_timer_start(weft_stream *s, uint64_t delay_ms, weft_timer_cb cb, void *arg,
                                 weft_timer **out) {
    STREAM_OR_RESULT(s, "timer_start", true);
    if (!cb)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "timer_start: NULL callback");
    if (st->hook == FT_HOOK_NONE)
        return ft_misuse(st->env, WEFT_ERR_STATE, "timer_start: call it from a hook or a callback");
    struct weft_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return WEFT_ERR_NOMEM;
    uint64_t delay_us = delay_ms > UINT64_MAX / 1000 ? UINT64_MAX / 2 : delay_ms * 1000;
    t->st = st;
    t->due_us = st->env->now_us + delay_us;
    t->seq = ++st->env->seq;
    t->cb = cb;
    t->arg = arg;
    t->next = st->timers;
    st->timers = t;
    if (out)
        *out = t;
    return WEFT_OK;
}

static weft_result h_timer_cancel(weft_stream *s, weft_timer *t) {
    STREAM_OR_RESULT(s, "timer_cancel", true);
    if (!t)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "timer_cancel: NULL timer");
    for (struct weft_timer *x = st->timers; x; x = x->next)
        if (x == t) {
            if (x->done)
                return WEFT_ERR_STATE; /* fired or cancelled already: harmless */
            x->done = true;
            return WEFT_OK;
        }
    return ft_misuse(st->env, WEFT_ERR_INVALID, "timer_cancel: not a timer of this stream");
}

/* ---- local replies ---- */

static bool h_reply_is_local(weft_stream *s) {
    wft_stream *st = s ? ft_stream_from(s) : NULL;
    return st && ft_on_owner_thread(st->env) && st->replied;
}

/* ---- metadata ---- */

static weft_result h_metadata_set(weft_stream *s, weft_str key, weft_str value) {
    STREAM_OR_RESULT(s, "metadata_set", true);
    if (!str_ok(key) || !key.len || !str_ok(value))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "metadata_set: empty key or NULL value");
    if (ft_metadata_put(st, key.ptr, key.len, FT_MD_STR, value.ptr, value.len))
        return WEFT_ERR_NOMEM;
    return WEFT_OK;
}

/* The key's entry, WEFT_ERR_NOT_FOUND, or (as the core) WEFT_ERR_INVALID
 * with a misuse line when it holds another type than `type`. */
static weft_result md_typed(wft_stream *st, weft_str key, int type, const char *fn,
                            const ft_header **out) {
    const ft_header *h = ft_kv_find(&st->metadata, key.ptr, key.len);
    if (!h)
        return WEFT_ERR_NOT_FOUND;
    if (h->type != type)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "%s: the key holds another type", fn);
    *out = h;
    return WEFT_OK;
}

static weft_result h_metadata_get(weft_stream *s, weft_str key, weft_str *value) {
    STREAM_OR_RESULT(s, "metadata_get", false);
    if (!str_ok(key) || !value)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "metadata_get: NULL key or value pointer");
    const ft_header *h = NULL;
    weft_result r = md_typed(st, key, FT_MD_STR, "metadata_get", &h);
    if (r == WEFT_OK)
        *value = (weft_str){h->value, h->vlen};
    return r;
}

static weft_result h_metadata_set_int(weft_stream *s, weft_str key, int64_t value) {
    STREAM_OR_RESULT(s, "metadata_set_int", true);
    if (!str_ok(key) || !key.len)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "metadata_set_int: empty key");
    if (ft_metadata_put(st, key.ptr, key.len, FT_MD_INT, &value, sizeof(value)))
        return WEFT_ERR_NOMEM;
    return WEFT_OK;
}

static weft_result h_metadata_get_int(weft_stream *s, weft_str key, int64_t *value) {
    STREAM_OR_RESULT(s, "metadata_get_int", false);
    if (!str_ok(key) || !value)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "metadata_get_int: NULL key or value pointer");
    const ft_header *h = NULL;
    weft_result r = md_typed(st, key, FT_MD_INT, "metadata_get_int", &h);
    if (r == WEFT_OK)
        memcpy(value, h->value, sizeof(*value));
    return r;
}

static weft_result h_metadata_set_bytes(weft_stream *s, weft_str key, const void *data,
                                        size_t len) {
    STREAM_OR_RESULT(s, "metadata_set_bytes", true);
    if (!str_ok(key) || !key.len || (!data && len))
        return ft_misuse(st->env, WEFT_ERR_INVALID, "metadata_set_bytes: empty key or NULL data");
    if (ft_metadata_put(st, key.ptr, key.len, FT_MD_BYTES, data, len))
        return WEFT_ERR_NOMEM;
    return WEFT_OK;
}

static weft_result h_metadata_get_bytes(weft_stream *s, weft_str key, const void **data,
                                        size_t *len) {
    STREAM_OR_RESULT(s, "metadata_get_bytes", false);
    if (!str_ok(key) || !data || !len)
        return ft_misuse(st->env, WEFT_ERR_INVALID, "metadata_get_bytes: NULL key or out-pointer");
    const ft_header *h = NULL;
    weft_result r = md_typed(st, key, FT_MD_BYTES, "metadata_get_bytes", &h);
    if (r == WEFT_OK) {
        *data = h->value;
        *len = h->vlen;
    }
    return r;
}

/* ---- connection facts ---- */

static weft_result h_conn_peer_address(weft_stream *s, weft_str *ip, uint16_t *port) {
    STREAM_OR_RESULT(s, "conn_peer_address", false);
    if (ip)
        *ip = (weft_str){st->peer_ip, strlen(st->peer_ip)};
    if (port)
        *port = st->peer_port;
    return WEFT_OK;
}

static weft_result h_conn_local_address(weft_stream *s, weft_str *ip, uint16_t *port) {
    STREAM_OR_RESULT(s, "conn_local_address", false);
    if (ip)
        *ip = (weft_str){st->local_ip, strlen(st->local_ip)};
    if (port)
        *port = st->local_port;
    return WEFT_OK;
}

static weft_result h_conn_peer_identity(weft_stream *s, weft_str *identity) {
    STREAM_OR_RESULT(s, "conn_peer_identity", false);
    if (!st->identity)
        return WEFT_ERR_NOT_FOUND;
    if (identity)
        *identity = (weft_str){st->identity, strlen(st->identity)};
    return WEFT_OK;
}

static bool h_conn_is_tls(weft_stream *s) {
    STREAM_OR_RETURN(s, "conn_is_tls", false, false);
    return st->tls;
}

static bool h_request_is_grpc(weft_stream *s) {
    STREAM_OR_RETURN(s, "request_is_grpc", false, false);
    const ft_header *ct = ft_hmap_find(&st->maps[WEFT_REQUEST_HEADERS], "content-type", 12, 0);
    return ct && ft_has_prefix_nocase(ct->value, ct->vlen, "application/grpc");
}

/* ---- stats ---- */

static int32_t h_stat_counter(weft_filter_setup *setup, const char *name, const char *help) {
    return ft_stat_declare(setup, name, help, FT_COUNTER);
}

static int32_t h_stat_gauge(weft_filter_setup *setup, const char *name, const char *help) {
    return ft_stat_declare(setup, name, help, FT_GAUGE);
}

static int32_t h_stat_histogram(weft_filter_setup *setup, const char *name, const char *help) {
    return ft_stat_declare(setup, name, help, FT_HISTOGRAM);
}

static void h_stat_inc(int32_t id, uint64_t delta) {
    ft_stat *s = ft_stat_by_id(id, FT_COUNTER, "stat_inc");
    if (s)
        s->value += delta;
}

static void h_stat_gauge_add(int32_t id, int64_t delta) {
    ft_stat *s = ft_stat_by_id(id, FT_GAUGE, "stat_gauge_add");
    if (s)
        s->gauge += delta;
}

static void h_stat_observe_us(int32_t id, uint64_t value_us) {
    ft_stat *s = ft_stat_by_id(id, FT_HISTOGRAM, "stat_observe_us");
    if (s) {
        s->count++;
        s->value += value_us;
    }
}

/* [1.1 stats] labelled families (ft_family.c) */
static weft_result h_stat_family_inc(int32_t f, const weft_str *v, size_t n, uint64_t d) {
    return ft_family_update(f, v, n, WEFT_STAT_KIND_COUNTER, d);
}
static weft_result h_stat_family_gauge_add(int32_t f, const weft_str *v, size_t n, int64_t d) {
    return ft_family_update(f, v, n, WEFT_STAT_KIND_GAUGE, (uint64_t)d);
}
static weft_result h_stat_family_observe_us(int32_t f, const weft_str *v, size_t n, uint64_t us) {
    return ft_family_update(f, v, n, WEFT_STAT_KIND_HISTOGRAM, us);
}
/* [end 1.1 stats] */

/* [1.2 stats series] series handles (ft_family.c) */
static void h_stat_series_inc(weft_stat_series h, uint64_t d) {
    ft_series_update(h, WEFT_STAT_KIND_COUNTER, d, "stat_series_inc");
}
static void h_stat_series_gauge_add(weft_stat_series h, int64_t d) {
    ft_series_update(h, WEFT_STAT_KIND_GAUGE, (uint64_t)d, "stat_series_gauge_add");
}
static void h_stat_series_observe_us(weft_stat_series h, uint64_t us) {
    ft_series_update(h, WEFT_STAT_KIND_HISTOGRAM, us, "stat_series_observe_us");
}
/* [end 1.2 stats series] */

/* ---- log and time ---- */

static void h_log(weft_log_level_t level, const char *filter_name, const char *msg) {
    wft_env *env = ft_current_env();
    if (env && level >= env->log_level)
        ft_log_add(env, level, filter_name, msg);
}

/* weft_logf / weft_setup_logf: formatted, escaped and cut as the core
 * does (control characters as \xNN, 800 bytes, "..."), recorded under the
 * filter's YAML name (wft_env_set_filter_name). */

static void log_formatted(bool named, weft_log_level_t level, const char *fmt, va_list ap) {
    wft_env *env = ft_current_env();
    if (!env || level < env->log_level)
        return;
    char out[WSH_LOG_MAX + 1];
    wsh_log_format(out, fmt, ap);
    ft_log_add(env, level, named ? ft_filter_name(env) : "?", out);
}

static void h_log_v(weft_stream *s, weft_log_level_t level, const char *fmt, va_list ap) {
    /* As the core: the name from a live stream of this thread, else "?". */
    wft_stream *st = s ? ft_stream_from(s) : NULL;
    log_formatted(st && ft_on_owner_thread(st->env), level, fmt, ap);
}

static void h_setup_log_v(weft_filter_setup *setup, weft_log_level_t level, const char *fmt,
                          va_list ap) {
    log_formatted(setup != NULL, level, fmt, ap);
}

static bool h_log_enabled(weft_log_level_t level) {
    wft_env *env = ft_current_env();
    return env && level >= env->log_level;
}

static uint64_t h_now_us(void) {
    wft_env *env = ft_current_env();
    return env ? env->now_us : 0;
}

/* ---- transport ---- */

static weft_result conn_of(weft_connection *c, const char *fn, wft_conn **out) {
    *out = NULL;
    if (!c)
        return ft_misuse(ft_current_env(), WEFT_ERR_INVALID, "%s: NULL connection", fn);
    wft_conn *wc = ft_conn_from(c);
    if (!wc)
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: not a live connection", fn);
    if (!ft_on_owner_thread(wc->env))
        return ft_misuse(wc->env, WEFT_ERR_THREAD, "%s: another thread", fn);
    if (wc->closed)
        return ft_misuse(wc->env, WEFT_ERR_STATE, "%s: the connection is closed", fn);
    *out = wc;
    return WEFT_OK;
}

static weft_result set_conn_str(weft_connection *c, weft_str v, char **field, const char *fn) {
    wft_conn *wc;
    weft_result r = conn_of(c, fn, &wc);
    if (r)
        return r;
    if (!str_ok(v))
        return ft_misuse(wc->env, WEFT_ERR_INVALID, "%s: NULL value", fn);
    char *copy = ft_strndup(v.ptr ? v.ptr : "", v.len);
    if (!copy)
        return WEFT_ERR_NOMEM;
    free(*field);
    *field = copy;
    return WEFT_OK;
}

static weft_result h_connection_set_alpn(weft_connection *c, weft_str alpn) {
    wft_conn *wc = ft_conn_from(c);
    return set_conn_str(c, alpn, wc ? &wc->alpn : NULL, "connection_set_alpn");
}

static weft_result h_connection_set_peer_identity(weft_connection *c, weft_str identity) {
    wft_conn *wc = ft_conn_from(c);
    return set_conn_str(c, identity, wc ? &wc->identity : NULL, "connection_set_peer_identity");
}

static weft_result h_connection_set_tls(weft_connection *c, bool tls) {
    wft_conn *wc;
    weft_result r = conn_of(c, "connection_set_tls", &wc);
    if (r)
        return r;
    wc->tls = tls;
    return WEFT_OK;
}

/* ---- transport, ABI 1.1 (the core's semantics: core/filter/transport.c) ---- */

/* A live connection of this thread; WEFT_ERR_STATE once closing unless
 * allow_closing. */
static weft_result conn_live(weft_connection *c, const char *fn, bool allow_closing,
                             wft_conn **out) {
    *out = NULL;
    wft_conn *wc = c ? ft_conn_from(c) : NULL;
    if (!wc)
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: not a live connection", fn);
    if (!ft_on_owner_thread(wc->env))
        return ft_misuse(wc->env, WEFT_ERR_THREAD, "%s: another thread", fn);
    if (!allow_closing && (wc->closed || wc->close_asked))
        return ft_misuse(wc->env, WEFT_ERR_STATE, "%s: the connection is closing", fn);
    *out = wc;
    return WEFT_OK;
}

#define FT_CONN_TIMERS_MAX 16
#define FT_CONN_IDENTITY_MAX 2048
#define FT_CONN_PENDING_MAX (1024u * 1024u)

static weft_result h_connection_write(weft_connection *c, const void *data, size_t len) {
    wft_conn *wc;
    weft_result r = conn_live(c, "connection_write", false, &wc);
    if (r)
        return r;
    if (len && !data)
        return ft_misuse(wc->env, WEFT_ERR_INVALID, "connection_write: NULL data");
    if (wc->wr_out->len + len > FT_CONN_PENDING_MAX)
        return WEFT_ERR_LIMIT;
    return ft_buffer_add(wc->wr_out, data, len, false) ? WEFT_ERR_NOMEM : WEFT_OK;
}

static weft_result h_connection_close(weft_connection *c, bool flush) {
    wft_conn *wc;
    weft_result r = conn_live(c, "connection_close", true, &wc);
    if (r)
        return r;
    if (wc->closed || wc->close_asked)
        return WEFT_OK;
    wc->close_asked = true;
    wc->close_flush = flush;
    for (struct weft_timer *t = wc->timers; t; t = t->next)
        t->done = true; /* cancelled when close is asked */
    return WEFT_OK;
}

static weft_result h_connection_timer_start(weft_connection *c, uint64_t delay_ms,
                                            weft_connection_timer_cb cb, void *arg,
                                            weft_timer **out) {
    wft_conn *wc;
    weft_result r = conn_live(c, "connection_timer_start", false, &wc);
    if (r)
        return r;
    if (!cb)
        return ft_misuse(wc->env, WEFT_ERR_INVALID, "connection_timer_start: NULL callback");
    if (wft_conn_timers_pending(wc) >= FT_CONN_TIMERS_MAX)
        return WEFT_ERR_LIMIT;
    /* Fired and cancelled timers are forgotten (their handles die). */
    for (struct weft_timer **pp = &wc->timers; *pp;) {
        if ((*pp)->done) {
            struct weft_timer *d = *pp;
            *pp = d->next;
            free(d);
        } else {
            pp = &(*pp)->next;
        }
    }
    struct weft_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return WEFT_ERR_NOMEM;
    uint64_t delay_us = delay_ms > UINT64_MAX / 1000 ? UINT64_MAX / 2 : delay_ms * 1000;
    t->conn = wc;
    t->due_us = wc->env->now_us + delay_us;
    t->seq = ++wc->env->seq;
    t->ccb = cb;
    t->arg = arg;
    t->next = wc->timers;
    wc->timers = t;
    if (out)
        *out = t;
    return WEFT_OK;
}

static weft_result h_connection_timer_cancel(weft_connection *c, weft_timer *t) {
    wft_conn *wc;
    weft_result r = conn_live(c, "connection_timer_cancel", true, &wc);
    if (r)
        return r;
    for (struct weft_timer *x = wc->timers; x; x = x->next)
        if (x == t && !x->done) {
            x->done = true;
            return WEFT_OK;
        }
    return WEFT_ERR_NOT_FOUND;
}

static bool fact_ok(weft_str v, size_t max) {
    if ((v.len && !v.ptr) || v.len > max)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.ptr[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

static int fact_set(char **field, weft_str v) {
    if (!v.len)
        return 0;
    char *copy = ft_strndup(v.ptr, v.len);
    if (!copy)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

static weft_result h_connection_handshake_done(weft_connection *c, const weft_handshake_info *hi) {
    wft_conn *wc;
    weft_result r = conn_live(c, "connection_handshake_done", false, &wc);
    if (r)
        return r;
    if (!hi || hi->size < offsetof(weft_handshake_info, flags) + sizeof(hi->flags))
        return ft_misuse(wc->env, WEFT_ERR_INVALID,
                         "connection_handshake_done: info NULL or too small");
    if (wc->hs_done)
        return ft_misuse(wc->env, WEFT_ERR_STATE, "connection_handshake_done: called twice");
    if (!fact_ok(hi->alpn, 31) || !fact_ok(hi->peer_identity, FT_CONN_IDENTITY_MAX) ||
        !fact_ok(hi->tls_version, 31) || !fact_ok(hi->cipher, 63) || !fact_ok(hi->sni, 255))
        return ft_misuse(wc->env, WEFT_ERR_INVALID,
                         "connection_handshake_done: a fact too long or with control characters");
    if (fact_set(&wc->alpn, hi->alpn) || fact_set(&wc->identity, hi->peer_identity) ||
        fact_set(&wc->tls_version, hi->tls_version) || fact_set(&wc->cipher, hi->cipher) ||
        fact_set(&wc->sni, hi->sni))
        return WEFT_ERR_NOMEM;
    wc->hs_flags |= hi->flags;
    if (hi->flags & WEFT_HANDSHAKE_TLS)
        wc->tls = true;
    wc->hs_done = true;
    return WEFT_OK;
}

static weft_result h_connection_get_info(weft_connection *c, weft_connection_info *info) {
    wft_conn *wc;
    weft_result r = conn_live(c, "connection_get_info", true, &wc);
    if (r)
        return r;
    r = ft_conn_info(wc, info);
    return r ? ft_misuse(wc->env, r, "connection_get_info: info NULL or too small") : WEFT_OK;
}

static weft_result h_conn_sni(weft_stream *s, weft_str *sni) {
    STREAM_OR_RESULT(s, "conn_sni", false);
    if (!st->sni || !*st->sni)
        return WEFT_ERR_NOT_FOUND;
    if (sni)
        *sni = (weft_str){st->sni, strlen(st->sni)};
    return WEFT_OK;
}

static weft_result h_conn_original_dst(weft_stream *s, weft_str *ip, uint16_t *port) {
    STREAM_OR_RESULT(s, "conn_original_dst", false);
    const char *a = st->orig_dst_ip ? st->orig_dst_ip : st->local_ip;
    if (ip)
        *ip = (weft_str){a, strlen(a)};
    if (port)
        *port = st->orig_dst_ip ? st->orig_dst_port : st->local_port;
    return WEFT_OK;
}

static const weft_host_api g_api = {
    .size = sizeof(weft_host_api),
    .abi_major = WEFT_ABI_MAJOR,
    .abi_minor = WEFT_ABI_MINOR,
    .header_get = h_header_get,
    .header_count = h_header_count,
    .header_set = h_header_set,
    .header_add = h_header_add,
    .header_remove = h_header_remove,
    .header_iterate = h_header_iterate,
    .request_get = h_request_get,
    .request_set_path = h_request_set_path,
    .response_status = h_response_status,
    .response_set_status = h_response_set_status,
    .buffer_length = h_buffer_length,
    .buffer_copy_out = h_buffer_copy_out,
    .buffer_peek = h_buffer_peek,
    .buffer_append = h_buffer_append,
    .buffer_prepend = h_buffer_prepend,
    .buffer_drain = h_buffer_drain,
    .body_buffer_for_replay = h_body_buffer_for_replay,
    .body_buffered_length = h_body_buffered_length,
    .body_copy_out = h_body_copy_out,
    .reply_send = h_reply_send,
    .stream_resume = h_stream_resume,
    .route_set_cluster = h_route_set_cluster,
    .upstream_retry = h_upstream_retry,
    .timer_start = h_timer_start,
    .timer_cancel = h_timer_cancel,
    .callout_start = ft_h_callout_start,
    .callout_cancel = ft_h_callout_cancel,
    .metadata_set = h_metadata_set,
    .metadata_get = h_metadata_get,
    .conn_peer_address = h_conn_peer_address,
    .conn_local_address = h_conn_local_address,
    .conn_peer_identity = h_conn_peer_identity,
    .conn_is_tls = h_conn_is_tls,
    .request_is_grpc = h_request_is_grpc,
    .stat_counter = h_stat_counter,
    .stat_gauge = h_stat_gauge,
    .stat_histogram = h_stat_histogram,
    .stat_inc = h_stat_inc,
    .stat_gauge_add = h_stat_gauge_add,
    .stat_observe_us = h_stat_observe_us,
    .log = h_log,
    .log_enabled = h_log_enabled,
    .now_us = h_now_us,
    .config_get = ft_cfg_get,
    .config_is_map = ft_cfg_is_map,
    .config_is_list = ft_cfg_is_list,
    .config_is_scalar = ft_cfg_is_scalar,
    .config_len = ft_cfg_len,
    .config_at = ft_cfg_at,
    .config_entry = ft_cfg_entry,
    .config_string = ft_cfg_string,
    .config_int = ft_cfg_int,
    .config_bool = ft_cfg_bool,
    .config_duration_ms = ft_cfg_duration_ms,
    .config_size = ft_cfg_size,
    .config_percent = ft_cfg_percent,
    .config_fail = ft_cfg_fail,
    .config_filter_dir = ft_cfg_dir,
    .connection_set_alpn = h_connection_set_alpn,
    .connection_set_peer_identity = h_connection_set_peer_identity,
    .connection_set_tls = h_connection_set_tls,

    /* [1.1 routing] route before filters, per-route config, re-match, local replies */
    .route_info = h_route_info,
    .route_refresh = h_route_refresh,
    .route_config = h_route_config,
    .reply_is_local = h_reply_is_local,
    /* [end 1.1 routing] */

    /* [1.1 streams] stream handles with generations, owned pauses, author helpers, typed metadata
     */
    .stream_pause_token = h_stream_pause_token,
    .stream_resume_token = h_stream_resume_token,
    .log_v = h_log_v,
    .setup_log_v = h_setup_log_v,
    .metadata_set_int = h_metadata_set_int,
    .metadata_get_int = h_metadata_get_int,
    .metadata_set_bytes = h_metadata_set_bytes,
    .metadata_get_bytes = h_metadata_get_bytes,
    /* [end 1.1 streams] */

    /* [1.1 retry] per-try timeout, delayed retry, untried endpoint, per-attempt headers */
    .upstream_set_try_timeout = h_upstream_set_try_timeout,
    .upstream_retry_ex = h_upstream_retry_ex,
    .attempt_endpoint_label = h_attempt_endpoint_label,
    /* [end 1.1 retry] */

    /* [1.1 state] shared state across reloads, cluster and endpoint handles, worker/config-scoped
       timers */
    .shared_get = ft_h_shared_get,
    .cluster_get = ft_h_cluster_get,
    .cluster_endpoint_count = ft_h_endpoint_count,
    .cluster_endpoint_get = ft_h_endpoint_get,
    .cluster_endpoint_label = ft_h_endpoint_label,
    .cluster_endpoint_find = ft_h_endpoint_find,
    .endpoint_counter_add = ft_h_counter_add,
    .endpoint_counter_set = ft_h_counter_set,
    .endpoint_eject = ft_h_eject,
    .endpoint_restore = ft_h_restore,
    .worker_cluster_endpoint_count = ft_h_worker_endpoint_count,
    .worker_cluster_endpoint_get = ft_h_worker_endpoint_get,
    .worker_cluster_endpoint_label = ft_h_worker_endpoint_label,
    .worker_cluster_endpoint_find = ft_h_worker_endpoint_find,
    .worker_endpoint_counter_add = ft_h_worker_counter_add,
    .worker_endpoint_counter_set = ft_h_worker_counter_set,
    .worker_endpoint_eject = ft_h_worker_eject,
    .worker_endpoint_restore = ft_h_worker_restore,
    /* [end 1.1 state] */

    /* [1.1 callout] pooled callouts, TCP callouts, fire-and-forget */
    .worker_current = ft_h_worker_current,
    .worker_timer_start = ft_h_worker_timer_start,
    .worker_timer_cancel = ft_h_worker_timer_cancel,
    .config_timer_start = ft_h_config_timer_start,
    .config_timer_cancel = ft_h_config_timer_cancel,
    .callout_start2 = ft_h_callout_start2,
    .worker_callout_start = ft_h_worker_callout_start,
    .worker_callout_cancel = ft_h_worker_callout_cancel,
    /* [end 1.1 callout] */

    /* [1.1 tcp callout] raw TCP byte-stream callouts */
    .tcp_callout_open = ft_tcp_open,
    .tcp_callout_write = ft_tcp_write,
    .tcp_callout_close = ft_tcp_close,
    .worker_tcp_callout_open = ft_tcp_open_worker,
    /* [end 1.1 tcp callout] */

    /* [1.1 stats] labelled stat families */
    .stat_family = ft_family_declare,
    .stat_family_inc = h_stat_family_inc,
    .stat_family_gauge_add = h_stat_family_gauge_add,
    .stat_family_observe_us = h_stat_family_observe_us,
    /* [end 1.1 stats] */

    /* [1.1 transport] transport filters: write, timers, handshake, upstream side */
    .connection_write = h_connection_write,
    .connection_close = h_connection_close,
    .connection_timer_start = h_connection_timer_start,
    .connection_timer_cancel = h_connection_timer_cancel,
    .connection_handshake_done = h_connection_handshake_done,
    .connection_get_info = h_connection_get_info,
    .conn_sni = h_conn_sni,
    .conn_original_dst = h_conn_original_dst,
    /* [end 1.1 transport] */

    /* [1.2 stats series] series handles of labelled families */
    .stat_family_series = ft_family_series,
    .stat_series_inc = h_stat_series_inc,
    .stat_series_gauge_add = h_stat_series_gauge_add,
    .stat_series_observe_us = h_stat_series_observe_us,
    /* [end 1.2 stats series] */
};

const weft_host_api *wft_host_api(void) {
    return &g_api;
}
