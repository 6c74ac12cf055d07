/* worker.h: a worker thread: one event_base, its own SO_REUSEPORT
 * listeners, connections, upstream pools, load balancer state and stats
 * block. Nothing here is shared with other workers, so the request path
 * takes no lock, and the worker's event_base is created without locks.
 * The main thread talks to a worker only through `ctl` (an atomic bit set
 * of commands) plus one byte on an eventfd that wakes the worker. The
 * listening sockets are bound by the main thread (loop/listen_set.h); the
 * worker gets its own copies with each snapshot.
 *
 * The layers below see a worker only as its context (common/wctx.h) and
 * its snapshot state (runtime/wsnap.h); this header is for main.c and
 * tests. */
#ifndef WEFT_LOOP_WORKER_H
#define WEFT_LOOP_WORKER_H

#include <stdbool.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "common/wctx.h"
#include "loop/listen_set.h"
#include "runtime/snapshot.h"
#include "runtime/wsnap.h"

/* Listener kinds (a listener's config says which: `tcp_proxy:` or HTTP). */
enum { WEFT_LISTENER_HTTP = 0, WEFT_LISTENER_TCP = 1 };

/* A module with per-worker state (a kind of listener and its connections,
 * upstream pools, filter callouts, stream handles): what the worker calls
 * of it, so that the loop names none of them. core/wiring.c lists the
 * modules, at the top of the layers. Every hook is optional. The worker
 * thread calls them, except init (before the thread starts) and fini /
 * fini_late (after it stopped). */
typedef struct weft_worker_module {
    const char *name;
    int listener_kind;   /* WEFT_LISTENER_* it accepts for, -1 none */
    bool close_on_drain; /* its listeners close when the drain starts */
    /* a connection on one of its listeners (takes ownership of fd) */
    void (*accept)(weft_worker *w, const char *listener, evutil_socket_t fd,
                   const struct sockaddr *sa, int salen);
    void (*init)(weft_worker *w); /* the worker is being created */
    /* the worker's thread starts running it (a detached worker: the
     * thread that created it) */
    void (*thread_start)(weft_worker *w);
    void (*drain)(weft_worker *w); /* the drain starts */
    void (*cut)(weft_worker *w);   /* the drain ended: close what is open */
    void (*sweep)(weft_worker *w); /* every few seconds: expire idle state */
    void (*idle)(weft_worker *w);  /* the worker has been idle a while: give back caches */
    void (*fini)(weft_worker *w);  /* stop: free every object (before the snapshot goes) */
    /* a snapshot state is destroyed (weft_wsnap_set_end_hook) */
    void (*wsnap_end)(weft_wsnap *ws);
    void (*fini_late)(weft_worker *w); /* stop, after the snapshot went */
} weft_worker_module;

/* The modules, in the order their hooks run (core/wiring.c). */
extern const weft_worker_module *const weft_worker_modules[];
extern const size_t weft_worker_n_modules;

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
 * listeners close, after accepting what their accept queues hold);
 * HTTP/1.1 connections close after their next response (Connection:
 * close) or after a short idle grace, HTTP/2 connections get GOAWAY (see
 * weft_dconn_drain_all). */
void weft_worker_drain(weft_worker *w);
/* Ends the drain (thread-safe): listeners close and every connection
 * still open is cut. */
void weft_worker_drain_end(weft_worker *w);
/* True once the worker has run the drain (thread-safe): its tcp_proxy
 * listeners are closed and what their queues held is accepted (counted in
 * active_conns). */
bool weft_worker_drain_seen(weft_worker *w);
/* Ends the loop, joins the thread and frees everything (thread-safe). */
void weft_worker_stop_and_free(weft_worker *w);

#endif
