/* handles.h: the weft_stream * that filters hold is a handle, not the
 * stream's address (see docs/architecture.md, "Stream handles"). Each
 * worker is a handle domain with its own slot table (sdk/common/
 * wsh_handle.h, shared with the test kit); the domain index finds the
 * worker without dereferencing anything the filter gave, so a handle of
 * another worker is told apart (WEFT_ERR_THREAD) from a stale one
 * (WEFT_ERR_HANDLE). */
#ifndef WEFT_FILTER_HANDLES_H
#define WEFT_FILTER_HANDLES_H

#include <weft/filter.h>

#include "wsh_handle.h"

typedef struct weft_worker weft_worker;

/* Worker creation / free (any thread, before the worker's thread runs /
 * after it was joined): registers the worker as a handle domain. */
void weft_handles_attach(weft_worker *w);
void weft_handles_detach(weft_worker *w);
/* On the worker's own thread when it starts: records it as the owner of
 * the worker's handle domain. */
void weft_handles_thread_start(weft_worker *w);

/* Gives the stream its handle for one exchange (weft_stream_begin) and
 * makes every copy of it stale (weft_stream_end). Worker thread. */
void weft_stream_handle_open(weft_stream *s);
void weft_stream_handle_close(weft_stream *s);

/* The live stream a filter's handle names (weft_stream_from_handle, in
 * http/stream_internal.h, with the cache hit inline): WEFT_OK and *out, or
 * WEFT_ERR_HANDLE (NULL, not a handle, stale, unknown domain) or
 * WEFT_ERR_THREAD (a live worker's handle, called from another thread:
 * its table is not read).
 *
 * The last handle this thread decoded, and its stream: a hook's host calls
 * decode the same handle again and again (a filter chain makes a few per
 * filter). Filled only after a full check on this thread (so the stream
 * is this thread's) or by weft_stream_handle_prime, emptied when that
 * stream's handle closes (on its worker thread, the only thread whose
 * cache can hold it): a hit needs no table lookup and no thread check. */
typedef struct weft_handle_cache {
    uint64_t h;
    weft_stream *s;
} weft_handle_cache;
extern _Thread_local weft_handle_cache weft_tl_handle;

/* The chain runner is about to run hooks of s on its worker thread (the
 * stream's own): fills the decode cache with s, so the hooks' first host
 * call needs no table lookup either. */
static inline void weft_stream_handle_prime(weft_stream *s, uint64_t handle) {
    if (handle) {
        weft_tl_handle.h = handle;
        weft_tl_handle.s = s;
    }
}
weft_result weft_stream_from_handle_slow(weft_stream *h, weft_stream **out);

/* Other objects filters hold as handles (TCP callouts) share the worker's
 * table: each starts with a uint32_t magic of its own (a stream's is
 * WEFT_STREAM_MAGIC), which tells the kinds apart. Register on the worker
 * thread (0: no handle left); weft_handle_object gives the live object of
 * that magic, or WEFT_ERR_HANDLE / WEFT_ERR_THREAD as for streams. */
uint64_t weft_handle_register(weft_worker *w, void *obj);
void weft_handle_unregister(weft_worker *w, uint64_t h);
weft_result weft_handle_object(const void *h, uint32_t magic, void **out);

#endif
