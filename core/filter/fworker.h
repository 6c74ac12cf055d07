/* fworker.h (core): worker handles and worker/config timers of SDK 1.1
 * (group "callout"). A weft_fworker is one HTTP filter config on one
 * worker thread: the per-(filter instance, worker snapshot state) context
 * whose filter object is what worker_create returned. Filters name it
 * with a generation-checked handle from the worker's stream handle table
 * (filter/handles.h), so a kept handle of a destroyed context is stale,
 * not a dangling pointer. Config timers: filter/config_timer.h. */
#ifndef WEFT_FILTER_FWORKER_H
#define WEFT_FILTER_FWORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include <weft/filter.h>

#define WEFT_FWORKER_MAGIC 0x5746574bu /* first field, as weft_stream's magic */

struct weft_wsnap;
struct weft_filter_inst;
struct weft_atimer;

typedef struct weft_fworker {
    uint32_t magic;  /* WEFT_FWORKER_MAGIC while alive */
    uint64_t handle; /* what the filter gets as weft_worker *, 0 none */
    struct weft_worker *w;
    struct weft_wsnap *ws; /* not referenced: the wsnap frees its fworkers */
    const struct weft_filter_inst *inst;
    void *obj;    /* worker_create's result */
    bool closing; /* worker_destroy runs: no new work */
    struct weft_atimer *timers;
    uint32_t n_timers;
    uint64_t timer_seq;
    struct weft_fworker *next; /* the worker's list, newest first */
} weft_fworker;

/* Makes the context of filter `inst` on ws's worker: registers its handle,
 * runs worker_create (weft_worker_current answers it from inside).
 * Worker thread (or before the worker's thread runs). NULL: no memory
 * (the filter then gets no worker_create call, as before 1.1 a filter
 * without the hook). */
weft_fworker *weft_fworker_new(struct weft_wsnap *ws, const struct weft_filter_inst *inst);
/* Cancels every timer of fw (no callbacks), runs worker_destroy, makes
 * the handle stale and frees fw. NULL-safe. */
void weft_fworker_free(weft_fworker *fw);

/* The wsnap's context hooks (runtime/wsnap.h weft_wsnap_set_fw_hooks):
 * make = weft_fworker_new, *obj its worker object; release = free. */
void *weft_fworker_make(struct weft_wsnap *ws, const struct weft_filter_inst *inst, void **obj);
void weft_fworker_release(void *ctx);
/* The calling thread runs worker w from now on (its thread's start, or a
 * detached worker's driving thread); _gone: w is freed. */
void weft_fworker_thread(struct weft_worker *w);
void weft_fworker_thread_gone(struct weft_worker *w);

/* Host functions (filter_host.c puts them in the host table). */
weft_worker *weft_fw_current(void *config);
weft_result weft_fw_timer_start(weft_worker *h, uint64_t ms, weft_worker_timer_cb cb, void *arg,
                                weft_wtimer **out);
weft_result weft_fw_timer_cancel(weft_worker *h, weft_wtimer *t);

/* The live context a filter's handle names: WEFT_OK and *out, or
 * WEFT_ERR_HANDLE / WEFT_ERR_THREAD as for stream handles. */
weft_result weft_fworker_from_handle(weft_worker *h, weft_fworker **out);
/* Whether the calling thread runs the worker_destroy of handle h now
 * (which may be main at shutdown: no table read, no thread check). */
bool weft_fworker_destroying(const weft_worker *h);

#endif
