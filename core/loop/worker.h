/* worker.h: a worker thread: one event_base, its own SO_REUSEPORT
 * listeners, connections, upstream pools, load balancer state and stats
 * block. Nothing here is shared with other workers, so the request path
 * takes no lock, and the worker's event_base is created without locks.
 * The main thread talks to a worker only through `ctl` (an atomic bit set
 * of commands) plus one byte on an eventfd that wakes the worker. The
 * listening sockets are bound by the main thread (loop/listen_set.h); the
 * worker gets its own copies with each snapshot. */
#ifndef WEFT_LOOP_WORKER_H
#define WEFT_LOOP_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "loop/listen_set.h"
#include "runtime/snapshot.h"
#include "upstream/lb.h"
#include "wsh_handle.h"

typedef struct weft_worker weft_worker;
typedef struct weft_pool weft_pool;
typedef struct weft_dconn weft_dconn;
typedef struct weft_tcp_conn weft_tcp_conn;

/* Per worker, per snapshot, per cluster. */
typedef struct weft_cluster_wrk {
    weft_cluster_snap *shared;
    uint64_t hs_gen;
    weft_lb *lb; /* one reference; holds the current hostset (lb->hs). A
                  * hostset change makes a new lb: attempts in flight keep
                  * the old one (and its hostset) alive until they end. */
} weft_cluster_wrk;

/* A worker's state for one snapshot. Streams reference it (plain int:
 * worker thread only); it holds one reference on the snapshot. */
typedef struct weft_wsnap {
    int refs;
    weft_snapshot *snap;
    weft_cluster_wrk *clusters;
    weft_worker *w;
    void ***fworkers; /* [listener][http filter]: worker_create results, lazily */
    bool **fworkers_made;
} weft_wsnap;

typedef struct weft_wlistener {
    struct evconnlistener *lev;
    weft_worker *w;
    uint64_t gen; /* the main thread's bind (listen_set.h): kept while it stays */
    char *name;   /* owned */
    struct weft_wlistener *next;
} weft_wlistener;

#define WEFT_POOL_BUCKETS 64

struct weft_worker {
    int id;
    pthread_t thread;
    struct event_base *base;
    weft_wsnap *cur; /* current snapshot state (one ref) */
    weft_wlistener *listeners;
    weft_dconn *conns;        /* every open downstream connection */
    weft_tcp_conn *tcp_conns; /* every open tcp_proxy connection */
    struct weft_tcpc *tcpcs;  /* every filter TCP callout (filter/tcp_callout.h) */
    uint32_t n_tcpcs;
    weft_pool *pools[WEFT_POOL_BUCKETS]; /* by endpoint name */
    struct weft_h2up_conn *h2up;         /* HTTP/2 upstream connections */
    void *h2s_cache;                     /* recycled HTTP/2 stream objects */
    uint32_t h2s_cached;
    void *h1x_cache; /* recycled HTTP/1.1 request states (h1_downstream.c) */
    uint32_t h1x_cached;
    struct weft_stats_block *stats;
    uint64_t rng;
    bool draining;
    /* control from the main thread */
    pthread_mutex_t ctl_mu;
    weft_snapshot *pending;             /* guarded by ctl_mu */
    weft_listen_handoff *pending_socks; /* its sockets (one per listener), ctl_mu */
    weft_stat_id version_stat;          /* weft_worker_config_version{worker="id"} */
    _Atomic unsigned ctl;               /* WEFT_CTL_* bits, set by the main thread */
    int ctl_fd;                         /* eventfd: wakes the worker */
    struct event *ev_ctl;
    struct event *ev_sweep;    /* periodic: idle pool expiry */
    _Atomic int active_conns;  /* read by the main thread while draining */
    _Atomic unsigned accepted; /* connections accepted, read by main (drain) */
    _Atomic int active_streams;
    bool thread_started;
    /* stream handles (filter/handles.h): this worker's domain index in
     * the handle registry (-1 none) and its slot table (worker thread) */
    int hdomain;
    wsh_table handles;
    /* idle: memory given back once a busy worker has been idle a moment */
    struct event *ev_idle; /* periodic, WEFT_IDLE_TICK_MS */
    uint64_t accepts;      /* connections accepted (this thread) */
    uint64_t accepts_seen; /* at the last idle tick */
    uint32_t idle_ticks;   /* ticks without any connection */
    bool busy_since_trim;  /* had connections since it last asked for a trim */
};

/* Creates the worker's base, its listeners on its sockets of `ls` (bound
 * by the main thread) and starts its thread on the committed snapshot
 * `snap`. Registers weft_worker_config_version{worker="id"}. */
weft_worker *weft_worker_start(int id, weft_snapshot *snap, const weft_listen_set *ls, char *err,
                               size_t errlen);
/* A worker without listeners and without a thread: the caller runs its
 * base (tests and fuzz targets drive connections through it). Free it with
 * weft_worker_stop_and_free. */
weft_worker *weft_worker_new_detached(weft_snapshot *snap);
/* Hands a new committed snapshot and its sockets (`ls`, may be NULL: no
 * listeners) to the worker. Main thread. A snapshot still pending is
 * replaced (never adopted). The worker sets its version gauge once it
 * runs the new snapshot. */
void weft_worker_swap(weft_worker *w, weft_snapshot *snap, const weft_listen_set *ls);
/* Starts the drain (thread-safe): HTTP listeners keep accepting (tcp_proxy
 * listeners close); HTTP/1.1 connections close after their next response
 * (Connection: close) or after a short idle grace, HTTP/2 connections get
 * GOAWAY (see weft_dconn_drain_all). */
void weft_worker_drain(weft_worker *w);
/* Ends the drain (thread-safe): listeners close and every connection
 * still open is cut. */
void weft_worker_drain_end(weft_worker *w);
/* Ends the loop, joins the thread and frees everything (thread-safe). */
void weft_worker_stop_and_free(weft_worker *w);

/* Worker-thread-side helpers used by connections and streams. */
weft_wsnap *weft_wsnap_ref(weft_wsnap *ws);
void weft_wsnap_unref(weft_wsnap *ws);
/* The cluster's worker state, refreshing the hostset if DNS moved it. */
weft_cluster_wrk *weft_wsnap_cluster(weft_wsnap *ws, int idx);
uint64_t weft_worker_rand(weft_worker *w);
/* The worker lifetime object of HTTP filter fi of listener li (created on
 * first use with worker_create, destroyed with the worker's snapshot). */
void *weft_wsnap_filter_worker_make(weft_wsnap *ws, size_t li, size_t fi);
static inline void *weft_wsnap_filter_worker(weft_wsnap *ws, size_t li, size_t fi) {
    if (ws->fworkers_made && ws->fworkers_made[li] && ws->fworkers_made[li][fi])
        return ws->fworkers[li][fi]; /* made already: every stream after the first */
    return weft_wsnap_filter_worker_make(ws, li, fi);
}

#endif
