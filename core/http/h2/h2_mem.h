/* h2_mem.h: nghttp2's allocator for weft's HTTP/2 sessions (server and
 * client side).
 *
 * nghttp2 allocates per stream and per frame: the stream object, each
 * outbound frame item, a copy of every header list submitted, dynamic
 * table entries. Through glibc that was about 4 mallocs and 5 frees per
 * h2c request, some 1,100 instructions of the ~33,000 a request costs.
 * Sessions made with weft_h2_mem_of(w) take their blocks from per-worker
 * free lists instead: one list per power-of-two size class (64 bytes to
 * WEFT_H2MEM_MAX_BLOCK, a 16-byte header included), a few dozen blocks
 * at most per class (see h2_mem.c); larger requests go to malloc. No lock,
 * no atomic: a worker's sessions run on its thread (and on the main thread
 * only after the worker's thread has been joined).
 *
 * The lists are emptied when the worker goes idle (weft_h2_mem_release
 * from the http module's idle hook) and when it is freed. Under
 * AddressSanitizer a cached block is poisoned, and a reused one is
 * unpoisoned only for the bytes asked for, so overflows and uses after
 * free are still reported. */
#ifndef WEFT_HTTP_H2_MEM_H
#define WEFT_HTTP_H2_MEM_H

#include <stddef.h>

#include <nghttp2/nghttp2.h>

#include "common/wctx.h"

#define WEFT_H2MEM_MAX_BLOCK ((size_t)64 << (WEFT_H2MEM_CLASSES - 1))

/* The allocator of a session of worker w, for nghttp2_session_*_new3 (which
 * copies it). */
nghttp2_mem weft_h2_mem_of(weft_worker *w);

/* Frees the blocks waiting in w's lists (idle worker, worker freed). Live
 * sessions keep working: their next allocations go to malloc again. */
void weft_h2_mem_release(weft_worker *w);

/* Blocks waiting in w's lists (tests). */
size_t weft_h2_mem_cached(const weft_worker *w);

#endif
