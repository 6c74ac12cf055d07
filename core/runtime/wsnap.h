/* wsnap.h: a worker's state for one snapshot: the snapshot (one
 * reference), each cluster's per-worker load balancer, and the HTTP
 * filters' worker lifetime objects. Streams and connections reference the
 * wsnap they started on, so a reload never pulls state from under them.
 * Worker thread only (plain refcount). */
#ifndef WEFT_RUNTIME_WSNAP_H
#define WEFT_RUNTIME_WSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wctx.h"
#include "runtime/snapshot.h"
#include "upstream/lb.h"

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
    void ***fworkers; /* [listener][http filter]: worker_create results */
    bool **fworkers_made;
    /* [listener][http filter]: the filters' worker contexts (the worker
     * handle of filter/fworker.h), opaque here: made with the worker
     * object through the context hooks below */
    void ***fwctx;
    bool fworkers_ready; /* every worker object made (weft_wsnap_filter_workers_make) */
} weft_wsnap;

/* Called with a wsnap about to be destroyed, before the filters' worker
 * objects go: the layers above end what they keep per snapshot there
 * (filter TCP callouts). Set by the loop before a worker runs (one
 * function for the process); NULL: nothing to end. */
typedef void (*weft_wsnap_end_fn)(weft_wsnap *ws);
void weft_wsnap_set_end_hook(weft_wsnap_end_fn fn);

/* The filters' worker contexts (SDK 1.1 worker handles): `make` makes the
 * context of filter `inst` on ws's worker, runs its worker_create and
 * sets *obj (NULL context: out of memory, *obj as worker_create gave);
 * `free` cancels the context's work, runs worker_destroy and frees it.
 * Set by the loop before a worker runs; unset, wsnap calls worker_create
 * and worker_destroy itself. */
typedef void *(*weft_wsnap_fw_make_fn)(weft_wsnap *ws, const struct weft_filter_inst *inst,
                                       void **obj);
typedef void (*weft_wsnap_fw_free_fn)(void *ctx);
void weft_wsnap_set_fw_hooks(weft_wsnap_fw_make_fn make, weft_wsnap_fw_free_fn free_fn);

/* A new state of worker w for snap (one reference, which the caller
 * owns; takes its own reference on snap). NULL when out of memory. */
weft_wsnap *weft_wsnap_new(weft_worker *w, weft_snapshot *snap);
weft_wsnap *weft_wsnap_ref(weft_wsnap *ws);
/* The last reference destroys the filters' worker objects, the lbs and
 * the snapshot reference. NULL is ignored. */
void weft_wsnap_unref(weft_wsnap *ws);
/* The cluster's worker state, refreshing the hostset if DNS moved it. */
weft_cluster_wrk *weft_wsnap_cluster(weft_wsnap *ws, int idx);
/* The worker lifetime object of HTTP filter fi of listener li (created
 * with worker_create when the worker adopts the snapshot, see
 * weft_wsnap_filter_workers_make, or on first use; destroyed with the
 * worker's snapshot). */
void *weft_wsnap_filter_worker_make(weft_wsnap *ws, size_t li, size_t fi);
static inline void *weft_wsnap_filter_worker(weft_wsnap *ws, size_t li, size_t fi) {
    if (ws->fworkers_made && ws->fworkers_made[li] && ws->fworkers_made[li][fi])
        return ws->fworkers[li][fi]; /* made already: every stream after the first */
    return weft_wsnap_filter_worker_make(ws, li, fi);
}
/* Makes every HTTP filter's worker object of ws now (worker_create on
 * this worker), so worker timers run without traffic. Worker thread. */
void weft_wsnap_filter_workers_make(weft_wsnap *ws);

#endif
