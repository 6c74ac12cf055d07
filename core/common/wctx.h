/* wctx.h: a worker as the layers below the loop see it: its id and
 * thread, its event base (with common/ltimer.h and the clock of
 * common/common.h: all the timing a layer needs), its stats block, the
 * snapshot state it runs (runtime/wsnap.h), drain state and counters, the
 * stream handle table, and one slot per module that keeps per-worker
 * objects (connections, pools, caches), opaque here and owned by that
 * module. Everything else about a worker (its thread's control channel,
 * listeners, periodic events) is private to core/loop/worker.c, which
 * reaches the modules only through the table of core/wiring.c. Worker
 * thread only, unless a field says otherwise. */
#ifndef WEFT_COMMON_WCTX_H
#define WEFT_COMMON_WCTX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "wsh_handle.h"

struct event_base;
struct weft_stats_block;
struct weft_wsnap;
/* per-worker objects of the modules above, opaque here */
typedef struct weft_dconn weft_dconn;
typedef struct weft_tcp_conn weft_tcp_conn;
typedef struct weft_pool weft_pool;
struct weft_h2up_conn;

typedef struct weft_worker weft_worker;

#define WEFT_POOL_BUCKETS 64
#define WEFT_H2MEM_CLASSES 7 /* nghttp2 block size classes, 64 B .. 4 KiB */

struct weft_worker {
    int id;
    /* Set by the worker's own thread when it starts (thread first, then
     * thread_started with release): another thread that reads
     * thread_started (acquire) as true may read thread. A detached worker
     * (tests) never sets them. */
    pthread_t thread;
    _Atomic bool thread_started;
    struct event_base *base;
    struct weft_wsnap *cur; /* current snapshot state (one ref) */
    struct weft_stats_block *stats;
    uint64_t rng;
    bool draining;
    _Atomic int active_conns;  /* read by the main thread while draining */
    _Atomic unsigned accepted; /* connections accepted, read by main (drain) */
    _Atomic int active_streams;
    /* stream handles (filter/handles.h): this worker's domain index in
     * the handle registry (-1 none) and its slot table (worker thread) */
    int hdomain;
    wsh_table handles;
    /* modules' per-worker state */
    struct weft_dconn *conns;        /* open downstream connections (h1/h2) */
    struct weft_tcp_conn *tcp_conns; /* open tcp_proxy connections */
    struct weft_tcpc *tcpcs;         /* filter TCP callouts (filter/tcp_callout.h) */
    struct weft_fworker *fworkers;   /* filters' worker contexts of every live wsnap,
                                        newest first (filter/fworker.h) */
    uint32_t n_tcpcs; /* TCP callouts against callouts.max_per_worker: all of them but those
                         whose on_close runs (a lingering flush-closed one counts) */
    struct weft_hcallout *callouts; /* filter HTTP callouts, every scope (filter/callout.h) */
    uint32_t n_callouts;            /* HTTP callouts against the cap: not one whose callback runs */
    struct weft_pool *pools[WEFT_POOL_BUCKETS]; /* HTTP/1.1 upstream pools, by endpoint */
    struct weft_h2up_conn *h2up;                /* HTTP/2 upstream connections */
    void *h2s_cache;                            /* recycled HTTP/2 stream objects */
    uint32_t h2s_cached;
    void *h1x_cache; /* recycled HTTP/1.1 request states (h1_downstream.c) */
    uint32_t h1x_cached;
    /* nghttp2's recycled blocks, one list per size class (http/h2/h2_mem.c) */
    void *h2mem_free[WEFT_H2MEM_CLASSES];
    uint16_t h2mem_n[WEFT_H2MEM_CLASSES];
};

/* A per-worker random number (xorshift64*). */
static inline uint64_t weft_worker_rand(weft_worker *w) {
    return weft_xorshift64s(&w->rng);
}

#endif
