/* handles.c: stream handles (see handles.h). */
#include "filter/handles.h"

#include <pthread.h>
#include <stdatomic.h>

#include "common/common.h"
#include "http/stream.h"
#include "common/wctx.h"

/* Domain index -> worker. Written when a worker is created or freed,
 * read by every host call (one relaxed-acquire load). */
static _Atomic(weft_worker *) g_domains[WSH_MAX_DOMAINS];

void weft_handles_attach(weft_worker *w) {
    w->hdomain = -1;
    for (uint32_t i = 0; i < WSH_MAX_DOMAINS; i++) {
        weft_worker *expected = NULL;
        if (atomic_compare_exchange_strong(&g_domains[i], &expected, w)) {
            w->hdomain = (int)i;
            wsh_table_init(&w->handles, i);
            return;
        }
    }
    WEFT_ERROR("worker %d: no stream handle domain left (%u workers): its streams' filters "
               "get no usable handle",
               w->id, WSH_MAX_DOMAINS);
}

void weft_handles_detach(weft_worker *w) {
    if (w->hdomain < 0)
        return;
    atomic_store(&g_domains[w->hdomain], NULL);
    wsh_table_free(&w->handles);
    w->hdomain = -1;
}

void weft_stream_handle_open(weft_stream *s) {
    s->handle = s->w->hdomain >= 0 ? wsh_alloc(&s->w->handles, s) : 0;
    if (!s->handle && s->w->hdomain >= 0)
        WEFT_ERROR("worker %d: no stream handle (out of memory or %u streams)", s->w->id,
                   WSH_MAX_SLOTS);
}

/* The last handle this thread decoded, and its stream: a hook's host calls
 * decode the same handle again and again (a filter chain makes a few per
 * filter). Filled only after a full check on this thread (so the stream
 * is this thread's), emptied when that stream's handle closes (on its
 * worker thread, the only thread whose cache can hold it): a hit needs
 * no table lookup and no thread check. */
static _Thread_local struct {
    uint64_t h;
    weft_stream *s;
} tl_last;

void weft_stream_handle_close(weft_stream *s) {
    if (tl_last.s == s) {
        tl_last.h = 0;
        tl_last.s = NULL;
    }
    if (s->handle && s->w->hdomain >= 0)
        wsh_release(&s->w->handles, s->handle);
    s->handle = 0;
}

/* The live object of a handle whose first word is `magic`: the domain
 * index finds the worker without dereferencing anything the filter gave;
 * its table is read only on its own thread. */
weft_result weft_handle_object(const void *h, uint32_t magic, void **out) {
    wsh_parts p;
    if (!wsh_decode((uint64_t)(uintptr_t)h, &p))
        return WEFT_ERR_HANDLE;
    weft_worker *w = atomic_load_explicit(&g_domains[p.domain], memory_order_acquire);
    if (!w)
        return WEFT_ERR_HANDLE;
    if (atomic_load_explicit(&w->thread_started, memory_order_acquire) &&
        !pthread_equal(pthread_self(), w->thread))
        return WEFT_ERR_THREAD;
    const uint32_t *o = wsh_lookup(&w->handles, &p);
    if (!o || *o != magic)
        return WEFT_ERR_HANDLE;
    *out = (void *)o;
    return WEFT_OK;
}

static weft_result from_handle_slow(weft_stream *h, weft_stream **out);

weft_result weft_stream_from_handle(weft_stream *h, weft_stream **out) {
    uint64_t hv = (uint64_t)(uintptr_t)h;
    if (hv && hv == tl_last.h) {
        weft_stream *s = tl_last.s;
        if (s->handle == hv && s->magic == WEFT_STREAM_MAGIC && s->active) {
            *out = s;
            return WEFT_OK;
        }
    }
    return from_handle_slow(h, out);
}

/* Out of line: the cache hit above stays a few instructions. */
__attribute__((noinline)) static weft_result from_handle_slow(weft_stream *h, weft_stream **out) {
    void *obj = NULL;
    weft_result r = weft_handle_object(h, WEFT_STREAM_MAGIC, &obj);
    if (r != WEFT_OK)
        return r;
    weft_stream *s = obj;
    if (!s->active)
        return WEFT_ERR_HANDLE;
    tl_last.h = (uint64_t)(uintptr_t)h;
    tl_last.s = s;
    *out = s;
    return WEFT_OK;
}

/* ---------- other objects in the worker's table (TCP callouts) ---------- */

uint64_t weft_handle_register(weft_worker *w, void *obj) {
    return w->hdomain >= 0 ? wsh_alloc(&w->handles, obj) : 0;
}

void weft_handle_unregister(weft_worker *w, uint64_t h) {
    if (h && w->hdomain >= 0)
        wsh_release(&w->handles, h);
}
