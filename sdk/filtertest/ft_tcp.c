/* ft_tcp.c: raw TCP callouts (SDK 1.1, weft_tcp_callout_*) in the kit,
 * with a scripted peer: the test completes the connect, delivers bytes,
 * reads what the filter wrote and ends the connection (wft_tcp_*).
 * Same rules as the core (core/filter/tcp_callout.c): handles checked
 * against a table (a closed or ended callout's handle is stale), callbacks
 * from the test's calls only (never inside a host call), none after
 * weft_tcp_callout_close or the stream's end, bounded write and read
 * buffers, connect and idle timeouts on the kit clock. A flush-close with
 * bytes the test has not read lingers as in weft: counted against the
 * worker's cap until the peer closes (wft_tcp_end) or 5 s pass. */
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

/* Its own domain: a TCP callout handle never names a stream (domain 0). */
#define FT_TCP_DOMAIN 2u /* 0: streams, 1: worker handles (ft_async.c) */
#define DEFAULT_CONNECT_MS 5000u
#define DEFAULT_ATTEMPTS 2u /* weft: the cluster's connect_attempts, 2 by default */
#define DEFAULT_BUF (1024u * 1024)
#define LINGER_MS 5000u /* weft's: tcp_callout.c */

struct ft_tcpc {
    uint64_t hval;
    wft_env *env;
    wft_stream *st; /* stream scope */
    bool worker;    /* worker scope (the env's worker handle) */
    char *cluster;
    weft_tcp_callout_cbs cbs;
    void *arg;
    uint64_t connect_ms, idle_ms;
    uint32_t attempts, max_write, max_read;
    uint64_t due_us; /* connect (all attempts) or idle deadline, 0 none */
    int state;       /* WFT_TCP_* */
    bool flushed;    /* closed by the filter with flush */
    bool lingering;  /* flush-closed with bytes unread: counted until linger_us */
    uint64_t linger_us;
    uint32_t reason; /* on_close's, WFT_TCP_ENDED */
    weft_buffer *in; /* delivered, not drained */
    ft_bytes out;    /* written, not read by the test yet */
    struct ft_tcpc *next;
};

static wsh_table g_tcp;
static bool g_tcp_init;

static ft_tcpc *from_handle(weft_tcp_callout *h) {
    wsh_parts p;
    if (!g_tcp_init || !wsh_decode((uint64_t)(uintptr_t)h, &p))
        return NULL;
    return wsh_lookup(&g_tcp, &p);
}

static weft_tcp_callout *handle_of(const ft_tcpc *k) {
    return (weft_tcp_callout *)(uintptr_t)k->hval;
}

static bool live(const ft_tcpc *k) {
    return k->state == WFT_TCP_CONNECTING || k->state == WFT_TCP_CONNECTED;
}

/* Flush-closed and still sending: it counts against the worker's cap. */
static bool lingers(const ft_tcpc *k) {
    return k->lingering && k->env->now_us < k->linger_us;
}

/* The callout stops: its handle goes stale, no callback runs later. */
static void finish(ft_tcpc *k, int state) {
    if (k->hval)
        wsh_release(&g_tcp, k->hval);
    k->state = state;
    k->due_us = 0;
}

static uint64_t ms_us(uint64_t ms) {
    return ms > UINT64_MAX / 2000 ? UINT64_MAX / 2 : ms * 1000;
}

/* ---- host calls ---- */

static weft_result tcp_new(wft_env *env, wft_stream *st, weft_str cluster,
                           const weft_tcp_callout_opts *o, const weft_tcp_callout_cbs *cbs,
                           void *arg, weft_tcp_callout **out);

static bool args_ok(weft_str cluster, const weft_tcp_callout_opts *o,
                    const weft_tcp_callout_cbs *cbs, weft_tcp_callout **out) {
    return cbs && cbs->size >= sizeof(weft_tcp_callout_cbs) && cbs->on_data && out &&
           (!o || (o->size >= sizeof(weft_tcp_callout_opts) && !o->flags)) &&
           (!cluster.len || cluster.ptr);
}

#define ARGS_MSG                                                                                   \
    "invalid argument (callbacks with on_data and their size, options size and flags 0, out)"

weft_result ft_tcp_open_worker(weft_worker *h, weft_str cluster, const weft_tcp_callout_opts *o,
                               const weft_tcp_callout_cbs *cbs, void *arg, weft_tcp_callout **out) {
    weft_result r; /* as weft: HANDLE, THREAD, STATE while worker_destroy runs */
    wft_env *env = ft_worker_env(h, "worker_tcp_callout_open", &r);
    if (!env)
        return r;
    if (!args_ok(cluster, o, cbs, out))
        return ft_misuse(env, WEFT_ERR_INVALID, "worker_tcp_callout_open: " ARGS_MSG);
    return tcp_new(env, NULL, cluster, o, cbs, arg, out);
}

weft_result ft_tcp_open(weft_stream *s, weft_str cluster, const weft_tcp_callout_opts *o,
                        const weft_tcp_callout_cbs *cbs, void *arg, weft_tcp_callout **out) {
    if (!s)
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "tcp_callout_open: NULL stream");
    wft_stream *st = ft_stream_from(s);
    if (!st)
        return ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "tcp_callout_open: not a live stream");
    wft_env *env = st->env;
    if (!ft_on_owner_thread(env))
        return ft_misuse(env, WEFT_ERR_THREAD,
                         "tcp_callout_open: called from a thread that does not own the stream");
    if (!args_ok(cluster, o, cbs, out))
        return ft_misuse(env, WEFT_ERR_INVALID, "tcp_callout_open: " ARGS_MSG);
    if (st->completed || st->hook == FT_HOOK_NONE || st->hook == FT_HOOK_COMPLETE ||
        st->hook == FT_HOOK_DESTROY)
        return ft_misuse(env, WEFT_ERR_STATE, "tcp_callout_open: call it from a hook or callback");
    size_t mine = 0;
    for (ft_tcpc *k = env->tcpcs; k; k = k->next)
        mine += k->st == st && live(k);
    if (mine >= FT_STREAM_CALLOUTS)
        return WEFT_ERR_LIMIT;
    return tcp_new(env, st, cluster, o, cbs, arg, out);
}

static weft_result tcp_new(wft_env *env, wft_stream *st, weft_str cluster,
                           const weft_tcp_callout_opts *o, const weft_tcp_callout_cbs *cbs,
                           void *arg, weft_tcp_callout **out) {
    if (!cluster.len || !ft_cluster_known(env, cluster.ptr, cluster.len))
        return WEFT_ERR_NOT_FOUND;
    if (ft_callouts_worker_full(env)) /* HTTP and TCP callouts together, as weft */
        return WEFT_ERR_LIMIT;
    if (!g_tcp_init) {
        wsh_table_init(&g_tcp, FT_TCP_DOMAIN);
        g_tcp_init = true;
    }
    ft_tcpc *k = calloc(1, sizeof(*k));
    if (!k)
        return WEFT_ERR_NOMEM;
    k->cluster = ft_strndup(cluster.ptr, cluster.len);
    k->in = ft_buffer_new();
    k->hval = wsh_alloc(&g_tcp, k);
    if (!k->cluster || !k->in || !k->hval) {
        if (k->hval)
            wsh_release(&g_tcp, k->hval);
        free(k->cluster);
        ft_buffer_free(k->in);
        free(k);
        return WEFT_ERR_NOMEM;
    }
    k->env = env;
    k->st = st;
    k->worker = !st;
    k->cbs = *cbs;
    k->arg = arg;
    k->connect_ms = o && o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
    k->idle_ms = o ? o->idle_timeout_ms : 0;
    k->attempts = o && o->connect_attempts ? o->connect_attempts : DEFAULT_ATTEMPTS;
    k->max_write = o && o->max_write_bytes ? o->max_write_bytes : DEFAULT_BUF;
    k->max_read = o && o->max_read_bytes ? o->max_read_bytes : DEFAULT_BUF;
    k->state = WFT_TCP_CONNECTING;
    k->due_us = env->now_us + ms_us(k->connect_ms) * k->attempts;
    ft_tcpc **pp = &env->tcpcs; /* opening order: index i of the wft_tcp_* calls */
    while (*pp)
        pp = &(*pp)->next;
    *pp = k;
    *out = handle_of(k);
    return WEFT_OK;
}

/* The live callout `h` names on this thread, or NULL with the error in *err
 * (returning the object, not an out parameter, lets the compiler see it is
 * set on every path that uses it). */
static ft_tcpc *lookup(weft_tcp_callout *h, const char *fn, weft_result *err) {
    ft_tcpc *k = from_handle(h);
    if (!k) {
        *err = ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: not a live TCP callout", fn);
        return NULL;
    }
    if (!ft_on_owner_thread(k->env)) {
        *err = ft_misuse(k->env, WEFT_ERR_THREAD, "%s: a TCP callout of another thread", fn);
        return NULL;
    }
    return k;
}

weft_result ft_tcp_write(weft_tcp_callout *h, const void *data, size_t len) {
    weft_result r;
    ft_tcpc *k = lookup(h, "tcp_callout_write", &r);
    if (!k)
        return r;
    if (k->state == WFT_TCP_CLOSING)
        return ft_misuse(k->env, WEFT_ERR_STATE, "tcp_callout_write: inside on_close");
    if (!data && len)
        return ft_misuse(k->env, WEFT_ERR_INVALID, "tcp_callout_write: NULL data");
    if (len > k->max_write || k->out.len > k->max_write - len)
        return WEFT_ERR_LIMIT;
    if (len && ft_bytes_append(&k->out, data, len) != 0)
        return WEFT_ERR_NOMEM;
    if (k->state == WFT_TCP_CONNECTED && k->idle_ms)
        k->due_us = k->env->now_us + ms_us(k->idle_ms);
    return WEFT_OK;
}

weft_result ft_tcp_close(weft_tcp_callout *h, bool flush) {
    weft_result r;
    ft_tcpc *k = lookup(h, "tcp_callout_close", &r);
    if (!k)
        return r;
    /* As weft: with flush, bytes still queued (not read by the test) go
     * out after the close, and the connection holds its worker's cap slot
     * until the peer closes or LINGER_MS. Without them it goes at once. */
    k->lingering = flush && live(k) && k->out.len;
    k->linger_us = k->env->now_us + ms_us(LINGER_MS);
    k->flushed = flush;
    finish(k, WFT_TCP_CLOSED);
    return WEFT_OK;
}

/* ---- running the filter's callbacks ---- */

enum { CB_CONNECT, CB_DATA, CB_CLOSE };

typedef struct cb_call {
    ft_tcpc *k;
    int which;
    uint32_t reason;
} cb_call;

static void call_cb(void *arg) {
    cb_call *c = arg;
    ft_tcpc *k = c->k;
    if (c->which == CB_CONNECT && k->cbs.on_connect)
        k->cbs.on_connect(handle_of(k), k->arg);
    else if (c->which == CB_DATA)
        k->cbs.on_data(handle_of(k), k->arg, k->in);
    else if (c->which == CB_CLOSE && k->cbs.on_close)
        k->cbs.on_close(handle_of(k), k->arg, c->reason);
}

/* Runs one callback as the filter's (a callback of its stream). False
 * when the callout is no longer live afterwards. */
static bool run_cb(ft_tcpc *k, int which, uint32_t reason) {
    cb_call c = {k, which, reason};
    if (k->st) {
        ft_stream_run_callback(k->st, call_cb, &c);
    } else { /* worker scope: outside any stream */
        wft_env *old = ft_swap_current(k->env);
        call_cb(&c);
        ft_swap_current(old);
    }
    return live(k);
}

/* The connection ended by itself: on_close, then the handle is stale. */
static void end(ft_tcpc *k, uint32_t reason) {
    k->reason = reason;
    k->due_us = 0;
    if (k->cbs.on_close) {
        k->state = WFT_TCP_CLOSING;
        run_cb(k, CB_CLOSE, reason);
    }
    if (k->state == WFT_TCP_CLOSING || live(k))
        finish(k, WFT_TCP_ENDED);
}

size_t ft_tcp_live(wft_env *env) {
    size_t n = 0;
    for (ft_tcpc *k = env->tcpcs; k; k = k->next)
        n += live(k) || lingers(k);
    return n;
}

void ft_tcp_stream_end(wft_stream *st) {
    for (ft_tcpc *k = st->env->tcpcs; k; k = k->next)
        if (k->st == st && live(k))
            finish(k, WFT_TCP_SCOPE_ENDED);
}

void ft_tcp_worker_end(wft_env *env) {
    for (ft_tcpc *k = env->tcpcs; k; k = k->next) {
        k->lingering = false; /* weft closes those of the retired config */
        if (k->worker && live(k))
            finish(k, WFT_TCP_SCOPE_ENDED);
    }
}

void ft_tcp_env_free(wft_env *env) {
    while (env->tcpcs) {
        ft_tcpc *k = env->tcpcs;
        env->tcpcs = k->next;
        if (live(k) || k->state == WFT_TCP_CLOSING)
            finish(k, WFT_TCP_SCOPE_ENDED);
        free(k->cluster);
        ft_buffer_free(k->in);
        ft_bytes_free(&k->out);
        free(k);
    }
}

bool ft_tcp_next_due(wft_env *env, uint64_t limit, uint64_t *due) {
    bool found = false;
    for (ft_tcpc *k = env->tcpcs; k; k = k->next)
        if (live(k) && k->due_us && k->due_us <= limit && (!found || k->due_us < *due)) {
            *due = k->due_us;
            found = true;
        }
    return found;
}

void ft_tcp_fire_due(wft_env *env) {
    for (ft_tcpc *k = env->tcpcs; k; k = k->next)
        if (live(k) && k->due_us && k->due_us <= env->now_us) {
            end(k, k->state == WFT_TCP_CONNECTING ? WEFT_TCP_CLOSE_CONNECT_TIMEOUT
                                                  : WEFT_TCP_CLOSE_IDLE_TIMEOUT);
            return; /* the callback may have changed the list: the caller asks again */
        }
}

/* ---- the test's side ---- */

static ft_tcpc *nth(wft_env *env, size_t i) {
    for (ft_tcpc *k = env ? env->tcpcs : NULL; k; k = k->next)
        if (i-- == 0)
            return k;
    return NULL;
}

size_t wft_tcp_count(wft_env *env) {
    size_t n = 0;
    for (ft_tcpc *k = env ? env->tcpcs : NULL; k; k = k->next)
        n++;
    return n;
}

int wft_tcp_state(wft_env *env, size_t i) {
    ft_tcpc *k = nth(env, i);
    return k ? k->state : WFT_REJECTED;
}

const char *wft_tcp_cluster(wft_env *env, size_t i) {
    ft_tcpc *k = nth(env, i);
    return k ? k->cluster : NULL;
}

bool wft_tcp_flushed(wft_env *env, size_t i) {
    ft_tcpc *k = nth(env, i);
    return k && k->flushed;
}

uint32_t wft_tcp_close_reason(wft_env *env, size_t i) {
    ft_tcpc *k = nth(env, i);
    return k ? k->reason : 0;
}

int wft_tcp_connect(wft_env *env, size_t i) {
    ft_tcpc *k = nth(env, i);
    if (!k || k->state != WFT_TCP_CONNECTING)
        return WFT_REJECTED;
    k->state = WFT_TCP_CONNECTED;
    k->due_us = k->idle_ms ? env->now_us + ms_us(k->idle_ms) : 0;
    run_cb(k, CB_CONNECT, 0);
    return 0;
}

int wft_tcp_deliver(wft_env *env, size_t i, const void *data, size_t len) {
    ft_tcpc *k = nth(env, i);
    if (!k || k->state != WFT_TCP_CONNECTED || (!data && len))
        return WFT_REJECTED;
    if (!len)
        return 0;
    if (ft_buffer_add(k->in, data, len, false) != 0)
        return WFT_REJECTED;
    if (k->idle_ms)
        k->due_us = env->now_us + ms_us(k->idle_ms);
    if (!run_cb(k, CB_DATA, 0))
        return 0;
    if (k->in->len >= k->max_read)
        end(k, WEFT_TCP_CLOSE_OVERFLOW);
    return 0;
}

size_t wft_tcp_pending_in(wft_env *env, size_t i) {
    ft_tcpc *k = nth(env, i);
    return k ? k->in->len : 0;
}

char *wft_tcp_read(wft_env *env, size_t i, size_t *len) {
    ft_tcpc *k = nth(env, i);
    if (len)
        *len = 0;
    if (!k)
        return NULL;
    char *copy = malloc(k->out.len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, k->out.data ? k->out.data : "", k->out.len);
    copy[k->out.len] = '\0';
    if (len)
        *len = k->out.len;
    k->out.len = 0;
    if (k->out.data)
        k->out.data[0] = '\0';
    return copy;
}

int wft_tcp_end(wft_env *env, size_t i, uint32_t reason) {
    ft_tcpc *k = nth(env, i);
    if (k && lingers(k) && reason >= WEFT_TCP_CLOSE_PEER && reason <= WEFT_TCP_CLOSE_OVERFLOW) {
        k->lingering = false; /* the peer closed: the linger ends, no callback */
        return 0;
    }
    if (!k || !live(k) || reason < WEFT_TCP_CLOSE_PEER || reason > WEFT_TCP_CLOSE_OVERFLOW)
        return WFT_REJECTED;
    if (k->state == WFT_TCP_CONNECTING && reason != WEFT_TCP_CLOSE_CONNECT_FAILURE &&
        reason != WEFT_TCP_CLOSE_CONNECT_TIMEOUT)
        return WFT_REJECTED; /* only a connect failure ends a connect */
    if (k->state == WFT_TCP_CONNECTED &&
        (reason == WEFT_TCP_CLOSE_CONNECT_FAILURE || reason == WEFT_TCP_CLOSE_CONNECT_TIMEOUT))
        return WFT_REJECTED;
    end(k, reason);
    return 0;
}
