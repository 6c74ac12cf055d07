/* handles.c: stream handles (see handles.h). */
#include "filter/handles.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "http/stream.h"
#include "common/wctx.h"

/* Domain index -> worker. Written when a worker is created or freed,
 * read by every host call (one relaxed-acquire load). */
static _Atomic(weft_worker *) g_domains[WSH_MAX_DOMAINS];

/* Domain index -> the thread that owns it (0: not started yet), in static
 * storage: another thread's host call is refused from this word alone and
 * never reads the worker, which the main thread may be freeing at
 * shutdown (only the owner's own thread, or a thread before the owner
 * started, dereferences the worker). */
_Static_assert(sizeof(pthread_t) <= sizeof(uintptr_t), "pthread_t fits a word");
static _Atomic uintptr_t g_owners[WSH_MAX_DOMAINS];

static uintptr_t self_word(void) {
    pthread_t t = pthread_self();
    uintptr_t v = 0;
    memcpy(&v, &t, sizeof(t));
    return v;
}

void weft_handles_thread_start(weft_worker *w) {
    if (w->hdomain >= 0)
        atomic_store_explicit(&g_owners[w->hdomain], self_word(), memory_order_release);
}

void weft_handles_attach(weft_worker *w) {
    w->hdomain = -1;
    for (uint32_t i = 0; i < WSH_MAX_DOMAINS; i++) {
        weft_worker *expected = NULL;
        if (atomic_compare_exchange_strong(&g_domains[i], &expected, w)) {
            atomic_store_explicit(&g_owners[i], 0, memory_order_release);
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

/* The decode cache (see handles.h). */
_Thread_local weft_handle_cache weft_tl_handle;

void weft_stream_handle_close(weft_stream *s) {
    if (weft_tl_handle.s == s) {
        weft_tl_handle.h = 0;
        weft_tl_handle.s = NULL;
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
    uintptr_t owner = atomic_load_explicit(&g_owners[p.domain], memory_order_acquire);
    if (owner && owner != self_word())
        return WEFT_ERR_THREAD;
    if (atomic_load_explicit(&w->thread_started, memory_order_acquire) &&
        !pthread_equal(pthread_self(), w->thread))
        return WEFT_ERR_THREAD;
    const uint32_t *o = wsh_lookup(&w->handles, &p);
    if (!o || *o != magic)
        return WEFT_ERR_HANDLE;
    *out = (void *)o;
    return WEFT_OK;
}

weft_result weft_stream_from_handle_slow(weft_stream *h, weft_stream **out) {
    void *obj = NULL;
    weft_result r = weft_handle_object(h, WEFT_STREAM_MAGIC, &obj);
    if (r != WEFT_OK)
        return r;
    weft_stream *s = obj;
    if (!s->active)
        return WEFT_ERR_HANDLE;
    weft_tl_handle.h = (uint64_t)(uintptr_t)h;
    weft_tl_handle.s = s;
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
