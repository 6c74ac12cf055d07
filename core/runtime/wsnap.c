/* wsnap.c: a worker's state for one snapshot (see wsnap.h). */
#include "runtime/wsnap.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic(weft_wsnap_end_fn) end_hook;
static _Atomic(weft_wsnap_fw_make_fn) fw_make;
static _Atomic(weft_wsnap_fw_free_fn) fw_free;

void weft_wsnap_set_fw_hooks(weft_wsnap_fw_make_fn make, weft_wsnap_fw_free_fn free_fn) {
    atomic_store_explicit(&fw_make, make, memory_order_release);
    atomic_store_explicit(&fw_free, free_fn, memory_order_release);
}

void weft_wsnap_set_end_hook(weft_wsnap_end_fn fn) {
    atomic_store_explicit(&end_hook, fn, memory_order_release);
}

weft_wsnap *weft_wsnap_new(weft_worker *w, weft_snapshot *snap) {
    weft_wsnap *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return NULL;
    ws->clusters = calloc(snap->cfg->n_clusters ? snap->cfg->n_clusters : 1, sizeof(*ws->clusters));
    if (!ws->clusters) {
        free(ws);
        return NULL;
    }
    weft_snapshot_ref(snap);
    ws->snap = snap;
    ws->w = w;
    ws->refs = 1;
    for (size_t i = 0; i < snap->cfg->n_clusters; i++)
        ws->clusters[i].shared = &snap->clusters[i];
    size_t nl = snap->cfg->n_listeners;
    ws->fworkers = calloc(nl ? nl : 1, sizeof(*ws->fworkers));
    ws->fworkers_made = calloc(nl ? nl : 1, sizeof(*ws->fworkers_made));
    ws->fwctx = calloc(nl ? nl : 1, sizeof(*ws->fwctx));
    for (size_t i = 0; ws->fworkers && ws->fworkers_made && ws->fwctx && i < nl; i++) {
        size_t nf = snap->listeners[i].chain.n_http;
        ws->fworkers[i] = calloc(nf ? nf : 1, sizeof(void *));
        ws->fworkers_made[i] = calloc(nf ? nf : 1, sizeof(bool));
        ws->fwctx[i] = calloc(nf ? nf : 1, sizeof(void *));
    }
    return ws;
}

weft_wsnap *weft_wsnap_ref(weft_wsnap *ws) {
    ws->refs++;
    return ws;
}

void weft_wsnap_unref(weft_wsnap *ws) {
    if (!ws || --ws->refs > 0)
        return;
    for (size_t i = 0; i < ws->snap->cfg->n_clusters; i++) {
        weft_cluster_wrk *c = &ws->clusters[i];
        weft_lb_unref(c->lb);
    }
    free(ws->clusters);
    ws->clusters = NULL; /* the filters' endpoint calls refuse a worker handle from here on */
    weft_wsnap_end_fn end = atomic_load_explicit(&end_hook, memory_order_acquire);
    if (end)
        end(ws); /* before the filters' worker_destroy */
    /* A context's worker timers (and callouts) are cancelled before its
     * worker_destroy: the free hook does both. */
    weft_wsnap_fw_free_fn fwf = atomic_load_explicit(&fw_free, memory_order_acquire);
    for (size_t i = 0; ws->fworkers && i < ws->snap->cfg->n_listeners; i++) {
        const weft_filter_chain *ch = &ws->snap->listeners[i].chain;
        for (size_t f = 0; ws->fworkers_made && ws->fworkers_made[i] && f < ch->n_http; f++) {
            if (!ws->fworkers_made[i][f])
                continue;
            void *ctx = ws->fwctx && ws->fwctx[i] ? ws->fwctx[i][f] : NULL;
            if (ctx && fwf)
                fwf(ctx);
            else if (ch->http[f].http->worker_destroy)
                ch->http[f].http->worker_destroy(ch->http[f].config, ws->fworkers[i][f]);
        }
        free(ws->fworkers[i]);
        if (ws->fworkers_made)
            free(ws->fworkers_made[i]);
        if (ws->fwctx)
            free(ws->fwctx[i]);
    }
    free(ws->fworkers);
    free(ws->fworkers_made);
    free(ws->fwctx);
    weft_snapshot_unref(ws->snap);
    free(ws);
}

weft_cluster_wrk *weft_wsnap_cluster(weft_wsnap *ws, int idx) {
    if (idx < 0 || (size_t)idx >= ws->snap->cfg->n_clusters)
        return NULL;
    weft_cluster_wrk *c = &ws->clusters[idx];
    uint64_t gen = atomic_load_explicit(&c->shared->hs_gen, memory_order_acquire);
    if (c->lb && gen == c->hs_gen)
        return c;
    /* The hostset moved (DNS, endpoint push) or this is the first use:
     * a new lb on the new hostset. */
    uint64_t got_gen = 0;
    weft_hostset *hs = weft_cluster_snap_hostset(c->shared, &got_gen);
    if (!hs)
        return c->lb ? c : NULL;
    weft_lb *lb = weft_lb_new(c->shared->cfg->lb, hs, weft_worker_rand(ws->w), c->lb);
    weft_hostset_unref(hs); /* the lb holds its own reference */
    if (!lb)
        return c->lb ? c : NULL;
    weft_lb_unref(c->lb);
    c->lb = lb;
    c->hs_gen = got_gen;
    return c;
}

void *weft_wsnap_filter_worker_make(weft_wsnap *ws, size_t li, size_t fi) {
    if (!ws->fworkers || !ws->fworkers[li] || !ws->fworkers_made[li] || !ws->fwctx[li])
        return NULL;
    if (!ws->fworkers_made[li][fi]) {
        const weft_filter_inst *in = &ws->snap->listeners[li].chain.http[fi];
        weft_wsnap_fw_make_fn make = atomic_load_explicit(&fw_make, memory_order_acquire);
        void *obj = NULL;
        if (make) /* the context (worker handle) first: worker_create may use it */
            ws->fwctx[li][fi] = make(ws, in, &obj);
        else if (in->http->worker_create)
            obj = in->http->worker_create(in->config);
        ws->fworkers[li][fi] = obj;
        ws->fworkers_made[li][fi] = true;
    }
    return ws->fworkers[li][fi];
}

void weft_wsnap_filter_workers_make(weft_wsnap *ws) {
    if (!ws || ws->fworkers_ready)
        return;
    ws->fworkers_ready = true;
    for (size_t i = 0; ws->fworkers && i < ws->snap->cfg->n_listeners; i++)
        for (size_t f = 0; f < ws->snap->listeners[i].chain.n_http; f++)
            weft_wsnap_filter_worker(ws, i, f);
}
