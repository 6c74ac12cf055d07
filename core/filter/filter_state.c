/* filter_state.c: the host side of SDK 1.1's state group: named shared
 * state that outlives snapshots (weft_shared_get, on the registry of
 * common/shared_reg.h), cluster handles (weft_cluster_get) and the
 * endpoint calls (view, counters, ejection) a worker makes for a stream
 * or for a worker handle (weft_worker *: worker timers, worker-scoped
 * callouts), on the view its load balancer uses. */
#include "filter/filter_state.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/shared_reg.h"
#include "filter/filter.h"
#include "filter/filter_setup.h"
#include "filter/fworker.h"
#include "filter/handles.h"
#include "http/stream_internal.h"
#include "runtime/snapshot.h"

_Static_assert(WEFT_ENDPOINT_COUNTER_SLOTS == WEFT_ENDPOINT_COUNTERS,
               "SDK and core agree on the endpoint counter slots");

#define SHARED_KEY_MAX 256
#define SHARED_SIZE_MAX (64u << 20)
#define EJECT_MAX_MS (24ull * 3600 * 1000)

/* ---------- config time ---------- */

static struct {
    weft_cluster_snap *clusters;
    size_t n;
} g_build; /* main thread only */

void weft_filter_setup_clusters(struct weft_cluster_snap *clusters, size_t n) {
    g_build.clusters = clusters;
    g_build.n = clusters ? n : 0;
}

static void lib_release(void *lib) {
    weft_filter_lib_unref(lib);
}

static const char *setup_name(const weft_filter_setup *st) {
    return st && st->filter ? st->filter->name : "?";
}

weft_result weft_fs_shared_get(weft_filter_setup *st, weft_str key, size_t size, uint32_t version,
                               weft_shared_init_fn init, weft_shared_destroy_fn destroy, void *arg,
                               void **out) {
    if (out)
        *out = NULL;
    if (!st || !st->filter || !out || !key.ptr || key.len == 0 || key.len > SHARED_KEY_MAX ||
        size == 0 || size > SHARED_SIZE_MAX) {
        WEFT_WARN("filter %s: shared_get: invalid argument", setup_name(st));
        return WEFT_ERR_INVALID;
    }
    weft_filter_inst *fi = st->inst;
    struct weft_shared_entry **grown = NULL;
    if (fi) {
        grown = realloc(fi->shared, (fi->n_shared + 1) * sizeof(*grown));
        if (!grown)
            return WEFT_ERR_NOMEM;
        fi->shared = grown;
    }
    bool created = false;
    weft_shared_entry *e =
        weft_shared_acquire(st->filter->name, key.ptr, key.len, size, version, &created);
    if (!e)
        return WEFT_ERR_NOMEM;
    if (created && init)
        init(weft_shared_block(e), size, arg);
    /* The newest config's callback, with its library kept loaded until
     * the block goes (that may be after this snapshot, and its library,
     * are gone). */
    if (destroy) {
        weft_filter_lib *lib = fi ? fi->lib : NULL;
        weft_filter_lib_ref(lib);
        weft_shared_set_destroy(e, destroy, arg, lib, lib ? lib_release : NULL);
    } else {
        weft_shared_set_destroy(e, NULL, NULL, NULL, NULL);
    }
    if (fi)
        fi->shared[fi->n_shared++] = e;
    *out = weft_shared_block(e);
    return WEFT_OK;
}

weft_result weft_fs_cluster_get(weft_filter_setup *st, weft_str name, const weft_cluster **out) {
    if (!out)
        return WEFT_ERR_INVALID;
    *out = NULL;
    if (!st || !name.ptr)
        return WEFT_ERR_INVALID;
    for (size_t i = 0; i < g_build.n; i++) {
        const char *cn = g_build.clusters[i].cfg->name;
        if (strlen(cn) == name.len && memcmp(cn, name.ptr, name.len) == 0) {
            *out = (const weft_cluster *)&g_build.clusters[i];
            return WEFT_OK;
        }
    }
    return WEFT_ERR_NOT_FOUND;
}

/* ---------- on a worker, for a stream or a worker handle ---------- */

/* Whose view a call reads: the worker snapshot state (wsnap) of the
 * stream or of the worker handle, and the filter's name for the log. */
typedef struct fs_scope {
    weft_wsnap *ws;
    const char *filter;
} fs_scope;

/* The scope of stream handle h (filter/handles.h: generation and owning
 * thread checked), or the error, logged. */
static weft_result stream_scope(weft_stream *h, const char *what, fs_scope *sc) {
    weft_stream *s = NULL;
    weft_result r = weft_stream_from_handle(h, &s);
    if (r != WEFT_OK) {
        WEFT_WARN("filter ?: %s: %s", what,
                  r == WEFT_ERR_THREAD ? "called from a thread that does not own the stream"
                                       : "not a live stream handle");
        return r;
    }
    sc->ws = s->ws;
    sc->filter = s->running >= 0 && s->chain ? s->chain->http[s->running].name : "?";
    return WEFT_OK;
}

/* The scope of worker handle h (filter/fworker.h: generation and owning
 * thread checked; refused while its worker_destroy runs, on whichever
 * thread: the worker's cluster state is gone by then), or the error,
 * logged. */
static weft_result worker_scope(weft_worker *h, const char *what, fs_scope *sc) {
    weft_fworker *fw = NULL;
    weft_result r = weft_fworker_destroying(h) ? WEFT_ERR_STATE : weft_fworker_from_handle(h, &fw);
    if (r == WEFT_OK && (fw->closing || !fw->ws || !fw->ws->clusters))
        r = WEFT_ERR_STATE;
    if (r != WEFT_OK) {
        WEFT_WARN("filter %s: %s: %s", fw ? fw->inst->name : "?", what,
                  r == WEFT_ERR_THREAD  ? "called from a thread that does not own the worker handle"
                  : r == WEFT_ERR_STATE ? "not allowed now (worker_destroy is running)"
                                        : "not a live worker handle");
        return r;
    }
    sc->ws = fw->ws;
    sc->filter = fw->inst->name;
    return WEFT_OK;
}

/* The worker's hostset of cluster c in scope sc (the one its load
 * balancer picks from, refreshed if DNS moved it), or NULL with *r set. */
static weft_hostset *view(const fs_scope *sc, const weft_cluster *c, const char *what,
                          weft_result *r) {
    weft_snapshot *snap = sc->ws ? sc->ws->snap : NULL;
    uintptr_t p = (uintptr_t)c, lo = snap ? (uintptr_t)snap->clusters : 0;
    uintptr_t hi = lo + (snap ? snap->cfg->n_clusters : 0) * sizeof(weft_cluster_snap);
    if (!c || p < lo || p >= hi || (p - lo) % sizeof(weft_cluster_snap)) {
        WEFT_WARN("filter %s: %s: not a cluster of the caller's config", sc->filter, what);
        *r = WEFT_ERR_INVALID;
        return NULL;
    }
    const weft_cluster_snap *cs = (const weft_cluster_snap *)c;
    weft_cluster_wrk *cw = weft_wsnap_cluster(sc->ws, (int)cs->idx);
    *r = WEFT_OK;
    return cw && cw->lb ? cw->lb->hs : NULL;
}

static weft_endpoint *endpoint_at(const fs_scope *sc, const weft_cluster *c, size_t i,
                                  const char *what, weft_result *r) {
    weft_hostset *hs = view(sc, c, what, r);
    if (*r != WEFT_OK)
        return NULL;
    if (!hs || i >= hs->n) {
        *r = WEFT_ERR_NOT_FOUND;
        return NULL;
    }
    return &hs->eps[i];
}

static weft_result endpoint_count(const fs_scope *sc, const weft_cluster *c, size_t *count,
                                  const char *what) {
    weft_result r;
    weft_hostset *hs = view(sc, c, what, &r);
    if (r != WEFT_OK)
        return r;
    if (!count)
        return WEFT_ERR_INVALID;
    *count = hs ? hs->n : 0;
    return WEFT_OK;
}

static weft_str cstr(const char *p) {
    return (weft_str){p ? p : "", p ? strlen(p) : 0};
}

static weft_result endpoint_get(const fs_scope *sc, const weft_cluster *c, size_t i,
                                weft_endpoint_info *out, const char *what) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(sc, c, i, what, &r);
    if (r != WEFT_OK)
        return r;
    size_t need = offsetof(weft_endpoint_info, n_labels) + sizeof(out->n_labels);
    if (!out || out->size < need)
        return WEFT_ERR_INVALID;
    uint64_t now = weft_now_us();
    weft_endpoint_info info = {.size = out->size};
    info.address = cstr(ep->name);
    info.weight = ep->weight ? ep->weight : 1;
    bool up = atomic_load_explicit(&ep->healthy, memory_order_relaxed) != 0;
    uint64_t until =
        ep->state ? atomic_load_explicit(&ep->state->ejected_until_us, memory_order_relaxed) : 0;
    info.ejected_ms = until > now ? (until - now + 999) / 1000 : 0;
    info.health = !up               ? WEFT_ENDPOINT_UNHEALTHY
                  : info.ejected_ms ? WEFT_ENDPOINT_EJECTED
                                    : WEFT_ENDPOINT_HEALTHY;
    info.region = cstr(ep->region);
    info.zone = cstr(ep->zone);
    info.subzone = cstr(ep->subzone);
    info.n_labels = ep->n_labels;
    memcpy(out, &info, out->size < sizeof(info) ? out->size : sizeof(info));
    return WEFT_OK;
}

static weft_result endpoint_label(const fs_scope *sc, const weft_cluster *c, size_t i, size_t label,
                                  weft_str *key, weft_str *value, const char *what) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(sc, c, i, what, &r);
    if (r != WEFT_OK)
        return r;
    if (!key || !value)
        return WEFT_ERR_INVALID;
    if (label >= ep->n_labels)
        return WEFT_ERR_NOT_FOUND;
    *key = cstr(ep->labels[label].key);
    *value = cstr(ep->labels[label].value);
    return WEFT_OK;
}

static weft_result endpoint_find(const fs_scope *sc, const weft_cluster *c, weft_str address,
                                 size_t *index, const char *what) {
    weft_result r;
    weft_hostset *hs = view(sc, c, what, &r);
    if (r != WEFT_OK)
        return r;
    if (!index || (!address.ptr && address.len))
        return WEFT_ERR_INVALID;
    for (size_t i = 0; hs && i < hs->n; i++)
        if (strlen(hs->eps[i].name) == address.len &&
            memcmp(hs->eps[i].name, address.ptr, address.len) == 0) {
            *index = i;
            return WEFT_OK;
        }
    return WEFT_ERR_NOT_FOUND;
}

/* Endpoint i with its shared state (counters, ejection), or NULL with *r
 * set: the endpoint's errors first, then WEFT_ERR_INVALID when bad_arg,
 * then WEFT_ERR_STATE when weft could not allocate the state. */
static weft_endpoint *state_at(const fs_scope *sc, const weft_cluster *c, size_t i, bool bad_arg,
                               const char *what, weft_result *r) {
    weft_endpoint *ep = endpoint_at(sc, c, i, what, r);
    if (*r != WEFT_OK)
        return NULL;
    *r = bad_arg ? WEFT_ERR_INVALID : !ep->state ? WEFT_ERR_STATE : WEFT_OK;
    return *r == WEFT_OK ? ep : NULL;
}

static weft_result counter_add(const fs_scope *sc, const weft_cluster *c, size_t i, uint32_t slot,
                               int64_t delta, uint64_t *value, const char *what) {
    weft_result r;
    weft_endpoint *ep = state_at(sc, c, i, slot >= WEFT_ENDPOINT_COUNTERS, what, &r);
    if (!ep)
        return r;
    uint64_t v = atomic_fetch_add_explicit(&ep->state->counters[slot], (uint64_t)delta,
                                           memory_order_relaxed) +
                 (uint64_t)delta;
    if (value)
        *value = v;
    return WEFT_OK;
}

static weft_result counter_set(const fs_scope *sc, const weft_cluster *c, size_t i, uint32_t slot,
                               uint64_t value, const char *what) {
    weft_result r;
    weft_endpoint *ep = state_at(sc, c, i, slot >= WEFT_ENDPOINT_COUNTERS, what, &r);
    if (ep)
        atomic_store_explicit(&ep->state->counters[slot], value, memory_order_relaxed);
    return r;
}

/* Ejects endpoint i for duration_ms, or (restore) ends its ejection. */
static weft_result eject(const fs_scope *sc, const weft_cluster *c, size_t i, uint64_t duration_ms,
                         bool restore, const char *what) {
    weft_result r;
    bool bad = !restore && (duration_ms == 0 || duration_ms > EJECT_MAX_MS);
    weft_endpoint *ep = state_at(sc, c, i, bad, what, &r);
    if (ep)
        weft_endpoint_set_ejected(ep, restore ? 0 : weft_now_us() + duration_ms * 1000);
    return r;
}

/* Each call twice: for a stream (weft_fs_X) and for a worker handle
 * (weft_fs_worker_X), the same body on the scope either gives. */
#define FS_STREAM(what)                                                                            \
    fs_scope sc_;                                                                                  \
    weft_result r_ = stream_scope(s, what, &sc_)
#define FS_WORKER(what)                                                                            \
    fs_scope sc_;                                                                                  \
    weft_result r_ = worker_scope(w, what, &sc_)
#define FS_CALL(call) return r_ != WEFT_OK ? r_ : (call)

weft_result weft_fs_endpoint_count(weft_stream *s, const weft_cluster *c, size_t *count) {
    FS_STREAM("cluster_endpoint_count");
    FS_CALL(endpoint_count(&sc_, c, count, "cluster_endpoint_count"));
}
weft_result weft_fs_worker_endpoint_count(weft_worker *w, const weft_cluster *c, size_t *count) {
    FS_WORKER("worker_cluster_endpoint_count");
    FS_CALL(endpoint_count(&sc_, c, count, "worker_cluster_endpoint_count"));
}

weft_result weft_fs_endpoint_get(weft_stream *s, const weft_cluster *c, size_t i,
                                 weft_endpoint_info *out) {
    FS_STREAM("cluster_endpoint_get");
    FS_CALL(endpoint_get(&sc_, c, i, out, "cluster_endpoint_get"));
}
weft_result weft_fs_worker_endpoint_get(weft_worker *w, const weft_cluster *c, size_t i,
                                        weft_endpoint_info *out) {
    FS_WORKER("worker_cluster_endpoint_get");
    FS_CALL(endpoint_get(&sc_, c, i, out, "worker_cluster_endpoint_get"));
}

weft_result weft_fs_endpoint_label(weft_stream *s, const weft_cluster *c, size_t i, size_t label,
                                   weft_str *key, weft_str *value) {
    FS_STREAM("cluster_endpoint_label");
    FS_CALL(endpoint_label(&sc_, c, i, label, key, value, "cluster_endpoint_label"));
}
weft_result weft_fs_worker_endpoint_label(weft_worker *w, const weft_cluster *c, size_t i,
                                          size_t label, weft_str *key, weft_str *value) {
    FS_WORKER("worker_cluster_endpoint_label");
    FS_CALL(endpoint_label(&sc_, c, i, label, key, value, "worker_cluster_endpoint_label"));
}

weft_result weft_fs_endpoint_find(weft_stream *s, const weft_cluster *c, weft_str address,
                                  size_t *index) {
    FS_STREAM("cluster_endpoint_find");
    FS_CALL(endpoint_find(&sc_, c, address, index, "cluster_endpoint_find"));
}
weft_result weft_fs_worker_endpoint_find(weft_worker *w, const weft_cluster *c, weft_str address,
                                         size_t *index) {
    FS_WORKER("worker_cluster_endpoint_find");
    FS_CALL(endpoint_find(&sc_, c, address, index, "worker_cluster_endpoint_find"));
}

weft_result weft_fs_counter_add(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                                int64_t delta, uint64_t *value) {
    FS_STREAM("endpoint_counter_add");
    FS_CALL(counter_add(&sc_, c, i, slot, delta, value, "endpoint_counter_add"));
}
weft_result weft_fs_worker_counter_add(weft_worker *w, const weft_cluster *c, size_t i,
                                       uint32_t slot, int64_t delta, uint64_t *value) {
    FS_WORKER("worker_endpoint_counter_add");
    FS_CALL(counter_add(&sc_, c, i, slot, delta, value, "worker_endpoint_counter_add"));
}

weft_result weft_fs_counter_set(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                                uint64_t value) {
    FS_STREAM("endpoint_counter_set");
    FS_CALL(counter_set(&sc_, c, i, slot, value, "endpoint_counter_set"));
}
weft_result weft_fs_worker_counter_set(weft_worker *w, const weft_cluster *c, size_t i,
                                       uint32_t slot, uint64_t value) {
    FS_WORKER("worker_endpoint_counter_set");
    FS_CALL(counter_set(&sc_, c, i, slot, value, "worker_endpoint_counter_set"));
}

weft_result weft_fs_eject(weft_stream *s, const weft_cluster *c, size_t i, uint64_t duration_ms) {
    FS_STREAM("endpoint_eject");
    FS_CALL(eject(&sc_, c, i, duration_ms, false, "endpoint_eject"));
}
weft_result weft_fs_worker_eject(weft_worker *w, const weft_cluster *c, size_t i,
                                 uint64_t duration_ms) {
    FS_WORKER("worker_endpoint_eject");
    FS_CALL(eject(&sc_, c, i, duration_ms, false, "worker_endpoint_eject"));
}

weft_result weft_fs_restore(weft_stream *s, const weft_cluster *c, size_t i) {
    FS_STREAM("endpoint_restore");
    FS_CALL(eject(&sc_, c, i, 0, true, "endpoint_restore"));
}
weft_result weft_fs_worker_restore(weft_worker *w, const weft_cluster *c, size_t i) {
    FS_WORKER("worker_endpoint_restore");
    FS_CALL(eject(&sc_, c, i, 0, true, "worker_endpoint_restore"));
}
