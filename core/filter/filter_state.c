/* filter_state.c: the host side of SDK 1.1's state group: named shared
 * state that outlives snapshots (weft_shared_get, on the registry of
 * common/shared_reg.h), cluster handles (weft_cluster_get) and the
 * endpoint calls (view, counters, ejection) a worker makes for a stream,
 * on the view its load balancer uses. */
#include "filter/filter_state.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/shared_reg.h"
#include "filter/filter.h"
#include "filter/filter_setup.h"
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

/* ---------- on a worker, for a stream ---------- */

/* The live stream handle h names (filter/handles.h: generation and
 * owning thread checked), or the error, logged. */
static weft_stream *stream_check(weft_stream *h, const char *what, weft_result *r) {
    weft_stream *s = NULL;
    *r = weft_stream_from_handle(h, &s);
    if (*r != WEFT_OK) {
        WEFT_WARN("filter ?: %s: %s", what,
                  *r == WEFT_ERR_THREAD ? "called from a thread that does not own the stream"
                                        : "not a live stream handle");
        return NULL;
    }
    return s;
}

/* The worker's hostset of cluster c for stream s (the one its load
 * balancer picks from, refreshed if DNS moved it), or NULL with *r set. */
static weft_hostset *view(weft_stream *h, const weft_cluster *c, const char *what, weft_result *r) {
    weft_stream *s = stream_check(h, what, r);
    if (!s)
        return NULL;
    weft_snapshot *snap = s->ws ? s->ws->snap : NULL;
    uintptr_t p = (uintptr_t)c, lo = snap ? (uintptr_t)snap->clusters : 0;
    uintptr_t hi = lo + (snap ? snap->cfg->n_clusters : 0) * sizeof(weft_cluster_snap);
    if (!c || p < lo || p >= hi || (p - lo) % sizeof(weft_cluster_snap)) {
        WEFT_WARN("filter %s: %s: not a cluster of the stream's config",
                  s->running >= 0 && s->chain ? s->chain->http[s->running].name : "?", what);
        *r = WEFT_ERR_INVALID;
        return NULL;
    }
    const weft_cluster_snap *cs = (const weft_cluster_snap *)c;
    weft_cluster_wrk *cw = weft_wsnap_cluster(s->ws, (int)cs->idx);
    *r = WEFT_OK;
    return cw && cw->lb ? cw->lb->hs : NULL;
}

static weft_endpoint *endpoint_at(weft_stream *s, const weft_cluster *c, size_t i, const char *what,
                                  weft_result *r) {
    weft_hostset *hs = view(s, c, what, r);
    if (*r != WEFT_OK)
        return NULL;
    if (!hs || i >= hs->n) {
        *r = WEFT_ERR_NOT_FOUND;
        return NULL;
    }
    return &hs->eps[i];
}

weft_result weft_fs_endpoint_count(weft_stream *s, const weft_cluster *c, size_t *count) {
    weft_result r;
    weft_hostset *hs = view(s, c, "cluster_endpoint_count", &r);
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

weft_result weft_fs_endpoint_get(weft_stream *s, const weft_cluster *c, size_t i,
                                 weft_endpoint_info *out) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(s, c, i, "cluster_endpoint_get", &r);
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

weft_result weft_fs_endpoint_label(weft_stream *s, const weft_cluster *c, size_t i, size_t label,
                                   weft_str *key, weft_str *value) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(s, c, i, "cluster_endpoint_label", &r);
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

weft_result weft_fs_endpoint_find(weft_stream *s, const weft_cluster *c, weft_str address,
                                  size_t *index) {
    weft_result r;
    weft_hostset *hs = view(s, c, "cluster_endpoint_find", &r);
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

weft_result weft_fs_counter_add(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                                int64_t delta, uint64_t *value) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(s, c, i, "endpoint_counter_add", &r);
    if (r != WEFT_OK)
        return r;
    if (slot >= WEFT_ENDPOINT_COUNTERS)
        return WEFT_ERR_INVALID;
    if (!ep->state)
        return WEFT_ERR_STATE;
    uint64_t v = atomic_fetch_add_explicit(&ep->state->counters[slot], (uint64_t)delta,
                                           memory_order_relaxed) +
                 (uint64_t)delta;
    if (value)
        *value = v;
    return WEFT_OK;
}

weft_result weft_fs_counter_set(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                                uint64_t value) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(s, c, i, "endpoint_counter_set", &r);
    if (r != WEFT_OK)
        return r;
    if (slot >= WEFT_ENDPOINT_COUNTERS)
        return WEFT_ERR_INVALID;
    if (!ep->state)
        return WEFT_ERR_STATE;
    atomic_store_explicit(&ep->state->counters[slot], value, memory_order_relaxed);
    return WEFT_OK;
}

weft_result weft_fs_eject(weft_stream *s, const weft_cluster *c, size_t i, uint64_t duration_ms) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(s, c, i, "endpoint_eject", &r);
    if (r != WEFT_OK)
        return r;
    if (duration_ms == 0 || duration_ms > EJECT_MAX_MS)
        return WEFT_ERR_INVALID;
    if (!ep->state)
        return WEFT_ERR_STATE;
    weft_endpoint_set_ejected(ep, weft_now_us() + duration_ms * 1000);
    return WEFT_OK;
}

weft_result weft_fs_restore(weft_stream *s, const weft_cluster *c, size_t i) {
    weft_result r;
    weft_endpoint *ep = endpoint_at(s, c, i, "endpoint_restore", &r);
    if (r != WEFT_OK)
        return r;
    if (!ep->state)
        return WEFT_ERR_STATE;
    weft_endpoint_set_ejected(ep, 0);
    return WEFT_OK;
}
