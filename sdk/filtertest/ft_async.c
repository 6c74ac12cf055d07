/* ft_async.c: the kit's worker handle and worker/config timers (ABI 1.1,
 * group "callout"), with the core's semantics (core/filter/fworker.c):
 * the env is one worker and the main thread at once. Its worker handle
 * lives from just before worker_create to just after worker_destroy;
 * worker timers are cancelled before worker_destroy, config timers
 * before config_destroy; both fire on the env's fake clock
 * (wft_clock_advance), in deadline order with the other timers. */
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

typedef struct ft_wtimer {
    uint64_t id, due_us, seq;
    bool config; /* a config timer, else a worker timer */
    weft_worker_timer_cb wcb;
    weft_config_timer_cb ccb;
    void *arg;
    struct ft_wtimer *next;
} ft_wtimer;

struct ft_async {
    wft_env *env;
    uint64_t whandle;  /* the env's worker handle, 0 none */
    bool wclosing;     /* worker_destroy runs */
    bool cbound;       /* config timers may be started (config_create ran or runs) */
    bool in_config_cb; /* a config timer's callback runs (the main thread's: no worker) */
    ft_wtimer *wtimers, *ctimers;
    uint32_t nw, nc;
    uint64_t tseq;
    struct ft_async *next; /* g_asyncs */
};

static struct ft_async *g_asyncs;
static uint64_t g_handle_seq;

/* Worker handles: bit 0 set as for every handle, domain 2 (the kit's
 * stream handles use domain 0, its TCP callouts domain 1), the sequence
 * number above the domain bits and generation 0, which no wsh_handle
 * table gives out: a worker handle never passes for another kind. */
static weft_worker *handle_of(uint64_t h) {
    return (weft_worker *)(uintptr_t)h;
}

static weft_wtimer *timer_name(uint64_t id) {
    return (weft_wtimer *)(uintptr_t)(id << 1 | 1u);
}

static struct ft_async *async_of(wft_env *env, bool make) {
    if (!env->async && make) {
        struct ft_async *a = calloc(1, sizeof(*a));
        if (!a)
            return NULL;
        a->env = env;
        a->next = g_asyncs;
        g_asyncs = a;
        env->async = a;
    }
    return env->async;
}

static void timers_free(ft_wtimer **list, uint32_t *n) {
    while (*list) {
        ft_wtimer *t = *list;
        *list = t->next;
        free(t);
    }
    *n = 0;
}

static ft_wtimer *timer_take(ft_wtimer **list, weft_wtimer *name) {
    for (ft_wtimer **pp = list; *pp; pp = &(*pp)->next)
        if (timer_name((*pp)->id) == name) {
            ft_wtimer *t = *pp;
            *pp = t->next;
            return t;
        }
    return NULL;
}

/* ---- env lifecycle (ft_env.c) ---- */

void ft_async_config_begin(wft_env *env) {
    struct ft_async *a = async_of(env, true);
    if (a)
        a->cbound = true;
}

void ft_async_config_gone(wft_env *env) {
    struct ft_async *a = env->async;
    if (!a)
        return;
    timers_free(&a->ctimers, &a->nc);
    a->cbound = false;
}

void ft_async_worker_open(wft_env *env) {
    struct ft_async *a = async_of(env, true);
    if (!a)
        return;
    a->whandle = (++g_handle_seq << (1 + WSH_DOMAIN_BITS)) | (2u << 1) | 1u;
    a->wclosing = false;
}

void ft_async_worker_closing(wft_env *env) {
    struct ft_async *a = env->async;
    if (!a)
        return;
    a->wclosing = true;
    timers_free(&a->wtimers, &a->nw);
}

void ft_async_worker_gone(wft_env *env) {
    struct ft_async *a = env->async;
    if (!a)
        return;
    timers_free(&a->wtimers, &a->nw);
    a->whandle = 0;
    a->wclosing = false;
}

void ft_async_free(wft_env *env) {
    struct ft_async *a = env->async;
    if (!a)
        return;
    timers_free(&a->wtimers, &a->nw);
    timers_free(&a->ctimers, &a->nc);
    for (struct ft_async **pp = &g_asyncs; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    free(a);
    env->async = NULL;
}

/* ---- the clock (ft_env.c) ---- */

bool ft_async_next_due(wft_env *env, uint64_t limit, uint64_t *best, uint64_t *best_seq, bool found,
                       struct ft_wtimer **out) {
    struct ft_async *a = env->async;
    *out = NULL;
    for (int k = 0; a && k < 2; k++)
        for (ft_wtimer *t = k ? a->ctimers : a->wtimers; t; t = t->next) {
            if (t->due_us > limit)
                continue;
            if (!found || t->due_us < *best || (t->due_us == *best && t->seq < *best_seq)) {
                found = true;
                *best = t->due_us;
                *best_seq = t->seq;
                *out = t;
            }
        }
    return *out != NULL;
}

uint64_t ft_async_due(const struct ft_wtimer *t) {
    return t->due_us;
}

void ft_async_fire(wft_env *env, struct ft_wtimer *t) {
    struct ft_async *a = env->async;
    if (t->config) {
        timer_take(&a->ctimers, timer_name(t->id));
        a->nc--;
    } else {
        timer_take(&a->wtimers, timer_name(t->id));
        a->nw--;
    }
    ft_wtimer copy = *t;
    free(t);
    wft_env *old = ft_swap_current(env);
    if (copy.config) {
        bool was = a->in_config_cb;
        a->in_config_cb = true;
        copy.ccb(env->config, copy.arg);
        a->in_config_cb = was;
    } else
        copy.wcb(handle_of(a->whandle), copy.arg);
    ft_swap_current(old);
}

/* ---- host functions (ft_host.c's table) ---- */

weft_worker *ft_h_worker_current(void *config) {
    for (struct ft_async *a = g_asyncs; a; a = a->next) {
        wft_env *env = a->env;
        if (!a->whandle || a->wclosing || !ft_on_owner_thread(env))
            continue;
        if ((env->setup && env->setup->live) || a->in_config_cb)
            return NULL; /* config_create, config timers: the main thread's, no worker */
        if (config && env->config == config)
            return handle_of(a->whandle);
    }
    return NULL;
}

/* The env of worker handle h, or NULL with *err HANDLE / THREAD as the core
 * (the object is returned, not set through an out parameter, so that the
 * compiler sees it is set wherever it is used: -O3 -Wmaybe-uninitialized). */
static struct ft_async *worker_env(weft_worker *h, const char *what, weft_result *err) {
    uint64_t v = (uint64_t)(uintptr_t)h;
    for (struct ft_async *a = g_asyncs; v && a; a = a->next)
        if (a->whandle == v) {
            if (!ft_on_owner_thread(a->env)) {
                *err =
                    ft_misuse(a->env, WEFT_ERR_THREAD, "%s: another thread's worker handle", what);
                return NULL;
            }
            return a;
        }
    *err = ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: not a live worker handle", what);
    return NULL;
}

wft_env *ft_worker_env(weft_worker *h, const char *what, weft_result *err) {
    struct ft_async *a = worker_env(h, what, err);
    if (!a)
        return NULL;
    if (a->wclosing) {
        *err = ft_misuse(a->env, WEFT_ERR_STATE, "%s: not allowed now (worker_destroy is running)",
                         what);
        return NULL;
    }
    *err = WEFT_OK;
    return a->env;
}

static weft_result timer_add(struct ft_async *a, bool config, uint64_t ms, weft_worker_timer_cb wcb,
                             weft_config_timer_cb ccb, void *arg, weft_wtimer **out) {
    if ((config ? a->nc : a->nw) >= WEFT_WORKER_TIMERS_MAX)
        return WEFT_ERR_LIMIT;
    ft_wtimer *t = calloc(1, sizeof(*t));
    if (!t)
        return WEFT_ERR_NOMEM;
    t->id = ++a->tseq;
    t->due_us = a->env->now_us + ms * 1000;
    t->seq = ++a->env->seq;
    t->config = config;
    t->wcb = wcb;
    t->ccb = ccb;
    t->arg = arg;
    if (config) {
        t->next = a->ctimers;
        a->ctimers = t;
        a->nc++;
    } else {
        t->next = a->wtimers;
        a->wtimers = t;
        a->nw++;
    }
    if (out)
        *out = timer_name(t->id);
    return WEFT_OK;
}

weft_result ft_h_worker_timer_start(weft_worker *h, uint64_t ms, weft_worker_timer_cb cb, void *arg,
                                    weft_wtimer **out) {
    weft_result r;
    struct ft_async *a = worker_env(h, "worker_timer_start", &r);
    if (!a)
        return r;
    if (!cb || ms > WEFT_TIMER_MAX_MS)
        return ft_misuse(a->env, WEFT_ERR_INVALID,
                         "worker_timer_start: NULL callback or delay above 30 days");
    if (a->wclosing)
        return ft_misuse(a->env, WEFT_ERR_STATE,
                         "worker_timer_start: not allowed now (worker_destroy is running)");
    return timer_add(a, false, ms, cb, NULL, arg, out);
}

weft_result ft_h_worker_timer_cancel(weft_worker *h, weft_wtimer *name) {
    weft_result r;
    struct ft_async *a = worker_env(h, "worker_timer_cancel", &r);
    if (!a)
        return r;
    ft_wtimer *t = timer_take(&a->wtimers, name);
    if (!t)
        return WEFT_ERR_NOT_FOUND;
    free(t);
    a->nw--;
    return WEFT_OK;
}

/* The env whose config `config` names: the one in config_create, else a
 * configured one with that config object; NULL with *err THREAD / NOT_FOUND
 * (returned, not an out parameter, as worker_env). */
static struct ft_async *config_env(void *config, const char *what, weft_result *err) {
    wft_env *cur = ft_current_env();
    if (cur && !ft_on_owner_thread(cur)) {
        *err = ft_misuse(cur, WEFT_ERR_THREAD, "%s: config timers live on the main thread", what);
        return NULL;
    }
    for (struct ft_async *a = g_asyncs; a; a = a->next) {
        wft_env *env = a->env;
        if (!a->cbound || !ft_on_owner_thread(env))
            continue;
        if ((env->setup && env->setup->live) || (config && env->config == config))
            return a;
    }
    *err = ft_misuse(cur, WEFT_ERR_NOT_FOUND, "%s: not a live filter config", what);
    return NULL;
}

weft_result ft_h_config_timer_start(void *config, uint64_t ms, weft_config_timer_cb cb, void *arg,
                                    weft_wtimer **out) {
    if (!cb || ms > WEFT_TIMER_MAX_MS)
        return ft_misuse(ft_current_env(), WEFT_ERR_INVALID,
                         "config_timer_start: NULL callback or delay above 30 days");
    weft_result r;
    struct ft_async *a = config_env(config, "config_timer_start", &r);
    if (!a)
        return r;
    return timer_add(a, true, ms, NULL, cb, arg, out);
}

weft_result ft_h_config_timer_cancel(void *config, weft_wtimer *name) {
    weft_result r;
    struct ft_async *a = config_env(config, "config_timer_cancel", &r);
    if (!a)
        return r;
    ft_wtimer *t = timer_take(&a->ctimers, name);
    if (!t)
        return WEFT_ERR_NOT_FOUND;
    free(t);
    a->nc--;
    return WEFT_OK;
}

/* ---- kit controls (filtertest.h) ---- */

weft_worker *wft_env_worker(wft_env *env) {
    return env && env->async && env->async->whandle && !env->async->wclosing
               ? handle_of(env->async->whandle)
               : NULL;
}

size_t wft_worker_timers_pending(wft_env *env) {
    return env && env->async ? env->async->nw : 0;
}

size_t wft_config_timers_pending(wft_env *env) {
    return env && env->async ? env->async->nc : 0;
}
