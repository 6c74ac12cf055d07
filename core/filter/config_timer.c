/* config_timer.c: config timers and the timer record shared with worker
 * timers (see config_timer.h). */
#include "filter/config_timer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "filter/filter.h"

weft_wtimer *weft_atimer_name(uint64_t id) {
    return (weft_wtimer *)(uintptr_t)(id << 1 | 1u);
}

void weft_atimer_arm(weft_atimer *t, struct event_base *base,
                     void (*fire)(evutil_socket_t, short, void *)) {
    event_assign(&t->ev, base, -1, 0, fire, t);
    struct timeval tv = {(time_t)(t->ms / 1000), (suseconds_t)((t->ms % 1000) * 1000)};
    event_add(&t->ev, &tv);
    t->armed = true;
}

/* Unlinks the timer named `name` from *list; NULL if none. */
weft_atimer *weft_atimer_take(weft_atimer **list, weft_wtimer *name) {
    for (weft_atimer **pp = list; *pp; pp = &(*pp)->next)
        if (weft_atimer_name((*pp)->id) == name) {
            weft_atimer *t = *pp;
            *pp = t->next;
            return t;
        }
    return NULL;
}

void weft_atimer_free_all(weft_atimer **list) {
    while (*list) {
        weft_atimer *t = *list;
        *list = t->next;
        if (t->armed)
            event_del(&t->ev);
        free(t);
    }
}

/* ---------- config timers (main thread) ---------- */

typedef struct weft_cscope {
    weft_filter_inst *inst;
    weft_atimer *timers;
    uint32_t n_timers;
    uint64_t timer_seq;
    struct weft_cscope *next, **pprev; /* g_scopes */
} weft_cscope;

static struct {
    struct event_base *base;
    pthread_t thread;
    bool thread_set;
    weft_filter_inst *creating;
    weft_cscope *scopes;
} g_main;

static bool on_main_thread(void) {
    /* Before the main loop exists no worker thread runs yet (workers start
     * after the loop's base): configs are being built on the main thread. */
    return g_main.thread_set ? pthread_equal(pthread_self(), g_main.thread) : true;
}

static void cfg_timer_fire(evutil_socket_t fd, short what, void *arg) {
    weft_atimer *t = arg;
    weft_cscope *cs = t->cs;
    weft_atimer_take(&cs->timers, weft_atimer_name(t->id));
    cs->n_timers--;
    weft_config_timer_cb cb = t->ccb;
    void *cb_arg = t->arg;
    void *config = cs->inst->config;
    free(t);
    cb(config, cb_arg);
}

void weft_filter_async_main_base(struct event_base *base) {
    g_main.base = base;
    if (base) {
        g_main.thread = pthread_self();
        g_main.thread_set = true;
        for (weft_cscope *cs = g_main.scopes; cs; cs = cs->next)
            for (weft_atimer *t = cs->timers; t; t = t->next)
                if (!t->armed)
                    weft_atimer_arm(t, base, cfg_timer_fire);
        return;
    }
    /* The loop goes: timers still armed are forgotten by libevent with
     * the base; keep them unarmed (their configs free them). */
    for (weft_cscope *cs = g_main.scopes; cs; cs = cs->next)
        for (weft_atimer *t = cs->timers; t; t = t->next)
            if (t->armed) {
                event_del(&t->ev);
                t->armed = false;
            }
}

void weft_filter_async_creating(weft_filter_inst *inst) {
    g_main.creating = inst;
}

void weft_filter_async_config_gone(weft_filter_inst *inst) {
    weft_cscope *cs = inst->cscope;
    if (!cs)
        return;
    weft_atimer_free_all(&cs->timers);
    *cs->pprev = cs->next;
    if (cs->next)
        cs->next->pprev = cs->pprev;
    inst->cscope = NULL;
    free(cs);
}

/* The config `config` names: the one being created, else a live one. */
static weft_result scope_of(void *config, bool make, weft_cscope **out) {
    weft_filter_inst *in = g_main.creating;
    if (!in) {
        if (!config)
            return WEFT_ERR_NOT_FOUND;
        for (weft_cscope *cs = g_main.scopes; cs; cs = cs->next)
            if (cs->inst->config == config) {
                *out = cs;
                return WEFT_OK;
            }
        return WEFT_ERR_NOT_FOUND; /* a live config without timers has no scope yet: */
    }
    if (!in->cscope && make) {
        weft_cscope *cs = calloc(1, sizeof(*cs));
        if (!cs)
            return WEFT_ERR_NOMEM;
        cs->inst = in;
        cs->next = g_main.scopes;
        if (cs->next)
            cs->next->pprev = &cs->next;
        cs->pprev = &g_main.scopes;
        g_main.scopes = cs;
        in->cscope = cs;
    }
    *out = in->cscope;
    return in->cscope ? WEFT_OK : WEFT_ERR_NOT_FOUND;
}

static weft_result cfg_misuse(weft_result r, const char *what) {
    WEFT_WARN("filter %s: %s: %s", g_main.creating ? g_main.creating->name : "?", what,
              r == WEFT_ERR_THREAD      ? "config timers live on the main thread"
              : r == WEFT_ERR_NOT_FOUND ? "not a live filter config"
                                        : "invalid argument");
    return r;
}

weft_result weft_cfg_timer_start(void *config, uint64_t ms, weft_config_timer_cb cb, void *arg,
                                 weft_wtimer **out) {
    if (!on_main_thread())
        return cfg_misuse(WEFT_ERR_THREAD, "config_timer_start");
    if (!cb || ms > WEFT_TIMER_MAX_MS)
        return cfg_misuse(WEFT_ERR_INVALID, "config_timer_start");
    weft_cscope *cs = NULL;
    weft_result r = scope_of(config, true, &cs);
    if (r != WEFT_OK)
        return r == WEFT_ERR_NOMEM ? r : cfg_misuse(r, "config_timer_start");
    if (cs->n_timers >= WEFT_WORKER_TIMERS_MAX)
        return WEFT_ERR_LIMIT;
    weft_atimer *t = calloc(1, sizeof(*t));
    if (!t)
        return WEFT_ERR_NOMEM;
    t->id = ++cs->timer_seq;
    t->cs = cs;
    t->ccb = cb;
    t->arg = arg;
    t->ms = ms;
    if (g_main.base)
        weft_atimer_arm(t, g_main.base, cfg_timer_fire);
    t->next = cs->timers;
    cs->timers = t;
    cs->n_timers++;
    if (out)
        *out = weft_atimer_name(t->id);
    return WEFT_OK;
}

weft_result weft_cfg_timer_cancel(void *config, weft_wtimer *name) {
    if (!on_main_thread())
        return cfg_misuse(WEFT_ERR_THREAD, "config_timer_cancel");
    weft_cscope *cs = NULL;
    weft_result r = scope_of(config, false, &cs);
    if (r != WEFT_OK)
        return WEFT_ERR_NOT_FOUND;
    weft_atimer *t = weft_atimer_take(&cs->timers, name);
    if (!t)
        return WEFT_ERR_NOT_FOUND;
    if (t->armed)
        event_del(&t->ev);
    free(t);
    cs->n_timers--;
    return WEFT_OK;
}
