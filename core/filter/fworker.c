/* fworker.c: worker handles and worker timers (see fworker.h). */
#include "filter/fworker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "filter/config_timer.h"
#include "filter/filter.h"
#include "filter/handles.h"
#include "common/wctx.h"
#include "runtime/wsnap.h"

static weft_result fw_misuse(const weft_fworker *fw, weft_result r, const char *what) {
    WEFT_WARN("filter %s: %s: %s", fw && fw->inst ? fw->inst->name : "?", what,
              r == WEFT_ERR_STATE    ? "not allowed now (worker_destroy is running)"
              : r == WEFT_ERR_THREAD ? "called from a thread that does not own the worker handle"
              : r == WEFT_ERR_HANDLE ? "not a live worker handle"
                                     : "invalid argument");
    return r;
}

/* ---------- worker handles ---------- */

/* The context whose worker_create runs on this thread now. */
static _Thread_local weft_fworker *tl_creating;
/* The context whose worker_destroy runs on this thread now (a worker's
 * own thread, or main at shutdown once the worker thread is joined). */
static _Thread_local weft_fworker *tl_destroying;
/* The worker this thread runs (NULL: not a worker thread). */
static _Thread_local weft_worker *tl_self;

void weft_fworker_thread(weft_worker *w) {
    tl_self = w;
}

void weft_fworker_thread_gone(weft_worker *w) {
    if (tl_self == w)
        tl_self = NULL;
}

void *weft_fworker_make(weft_wsnap *ws, const weft_filter_inst *inst, void **obj) {
    weft_fworker *fw = weft_fworker_new(ws, inst);
    *obj =
        fw ? fw->obj : (inst->http->worker_create ? inst->http->worker_create(inst->config) : NULL);
    return fw;
}

void weft_fworker_release(void *ctx) {
    weft_fworker_free(ctx);
}

weft_fworker *weft_fworker_new(weft_wsnap *ws, const weft_filter_inst *inst) {
    weft_fworker *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return NULL;
    weft_worker *w = ws->w;
    fw->magic = WEFT_FWORKER_MAGIC;
    fw->w = w;
    fw->ws = ws;
    fw->inst = inst;
    fw->handle = weft_handle_register(w, fw);
    fw->next = w->fworkers;
    w->fworkers = fw;
    if (inst->http->worker_create) {
        weft_fworker *saved = tl_creating;
        tl_creating = fw;
        fw->obj = inst->http->worker_create(inst->config);
        tl_creating = saved;
    }
    return fw;
}

void weft_fworker_free(weft_fworker *fw) {
    if (!fw)
        return;
    fw->closing = true;
    weft_atimer_free_all(&fw->timers);
    fw->n_timers = 0;
    if (fw->inst->http->worker_destroy) {
        weft_fworker *saved = tl_destroying;
        tl_destroying = fw;
        fw->inst->http->worker_destroy(fw->inst->config, fw->obj);
        tl_destroying = saved;
    }
    weft_atimer_free_all(&fw->timers); /* none: refused while closing */
    weft_handle_unregister(fw->w, fw->handle);
    for (weft_fworker **pp = &fw->w->fworkers; *pp; pp = &(*pp)->next)
        if (*pp == fw) {
            *pp = fw->next;
            break;
        }
    fw->magic = 0;
    free(fw);
}

weft_result weft_fworker_from_handle(weft_worker *h, weft_fworker **out) {
    void *obj = NULL;
    weft_result r = weft_handle_object(h, WEFT_FWORKER_MAGIC, &obj);
    if (r != WEFT_OK)
        return r;
    *out = obj;
    return WEFT_OK;
}

bool weft_fworker_destroying(const weft_worker *h) {
    weft_fworker *fw = tl_destroying;
    return h && fw && (const weft_worker *)(uintptr_t)fw->handle == h;
}

weft_worker *weft_fw_current(void *config) {
    weft_fworker *c = tl_creating;
    if (c && c->inst->config == config)
        return c->handle ? (weft_worker *)(uintptr_t)c->handle : NULL;
    weft_worker *w = tl_self;
    if (!w || !config)
        return NULL;
    for (weft_fworker *fw = w->fworkers; fw; fw = fw->next)
        if (fw->inst->config == config && !fw->closing)
            return fw->handle ? (weft_worker *)(uintptr_t)fw->handle : NULL;
    return NULL;
}

static void fw_timer_fire(evutil_socket_t fd, short what, void *arg) {
    weft_atimer *t = arg;
    weft_fworker *fw = t->fw;
    weft_atimer_take(&fw->timers, weft_atimer_name(t->id));
    fw->n_timers--;
    weft_worker_timer_cb cb = t->wcb;
    void *cb_arg = t->arg;
    free(t);
    cb((weft_worker *)(uintptr_t)fw->handle, cb_arg);
}

#define CHECK_FW(h, fw, what)                                                                      \
    do {                                                                                           \
        weft_result r_ = weft_fworker_from_handle((h), &(fw));                                     \
        if (r_ != WEFT_OK)                                                                         \
            return fw_misuse(NULL, r_, what);                                                      \
    } while (0)

weft_result weft_fw_timer_start(weft_worker *h, uint64_t ms, weft_worker_timer_cb cb, void *arg,
                                weft_wtimer **out) {
    weft_fworker *fw;
    CHECK_FW(h, fw, "worker_timer_start");
    if (!cb || ms > WEFT_TIMER_MAX_MS)
        return fw_misuse(fw, WEFT_ERR_INVALID, "worker_timer_start");
    if (fw->closing)
        return fw_misuse(fw, WEFT_ERR_STATE, "worker_timer_start");
    if (fw->n_timers >= WEFT_WORKER_TIMERS_MAX)
        return WEFT_ERR_LIMIT;
    weft_atimer *t = calloc(1, sizeof(*t));
    if (!t)
        return WEFT_ERR_NOMEM;
    t->id = ++fw->timer_seq;
    t->fw = fw;
    t->wcb = cb;
    t->arg = arg;
    t->ms = ms;
    weft_atimer_arm(t, fw->w->base, fw_timer_fire);
    t->next = fw->timers;
    fw->timers = t;
    fw->n_timers++;
    if (out)
        *out = weft_atimer_name(t->id);
    return WEFT_OK;
}

weft_result weft_fw_timer_cancel(weft_worker *h, weft_wtimer *name) {
    weft_fworker *fw;
    CHECK_FW(h, fw, "worker_timer_cancel");
    weft_atimer *t = weft_atimer_take(&fw->timers, name);
    if (!t)
        return WEFT_ERR_NOT_FOUND;
    event_del(&t->ev);
    free(t);
    fw->n_timers--;
    return WEFT_OK;
}
