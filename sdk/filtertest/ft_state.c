/* ft_state.c: the kit's side of SDK 1.1's state group, with the core's
 * semantics: shared state blocks keyed by (key, size, version) that a
 * reconfigure (the kit's reload) keeps, clusters whose endpoints the test
 * declares, per-endpoint counters and ejection on the env's clock, and a
 * round-robin pick that skips ejected endpoints (panic when all are). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

#define FT_MAGIC_CLUSTER 0x5746434cu /* "WFCL" */
#define SHARED_KEY_MAX 256
#define SHARED_SIZE_MAX (64u << 20)
#define EJECT_MAX_MS (24ull * 3600 * 1000)

typedef struct ft_shared {
    char *key;
    size_t klen, size;
    uint32_t version;
    void *block;
    int refs;
    weft_shared_destroy_fn destroy;
    void *arg;
    struct ft_shared *next;
} ft_shared;

typedef struct ft_label {
    char *key, *value;
} ft_label;

typedef struct ft_endpoint {
    char *address;
    uint32_t weight;
    bool healthy;
    char *region, *zone, *subzone;
    ft_label *labels; /* sorted by key */
    size_t nlabels;
    uint64_t ejected_until_us, ejections;
    uint64_t counters[WEFT_ENDPOINT_COUNTER_SLOTS];
} ft_endpoint;

struct weft_cluster {
    uint32_t magic;
};

typedef struct ft_cluster {
    struct weft_cluster handle;
    char *name;
    ft_endpoint *eps;
    size_t n, cap;
    size_t rr; /* round-robin position of wft_env_pick_endpoint */
    struct ft_cluster *next;
} ft_cluster;

struct ft_state {
    ft_shared *shared; /* live blocks */
    ft_shared **held;  /* one reference per weft_shared_get of the config */
    bool *held_route;  /* [nheld]: that call was route_config_create's */
    size_t nheld, capheld;
    ft_shared **pinned; /* extra references across a reconfigure */
    bool *pinned_route;
    size_t npinned;
    /* The old routes' references, kept past the reconfigure until traffic
     * starts (ft_state_settle): weft builds a snapshot's routes with its
     * filters, the kit's test adds them after wft_env_configure. */
    ft_shared **rpinned;
    size_t nrpinned;
    ft_cluster *clusters;
};

static ft_state *state_of(wft_env *env) {
    if (!env->state)
        env->state = calloc(1, sizeof(*env->state));
    return env->state;
}

/* ---- shared state ---- */

static void shared_release(ft_state *fs, ft_shared *b) {
    if (--b->refs > 0)
        return;
    for (ft_shared **pp = &fs->shared; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    if (b->destroy)
        b->destroy(b->block, b->size, b->arg);
    free(b->block);
    free(b->key);
    free(b);
}

void ft_state_config_gone(wft_env *env) {
    ft_state *fs = env->state;
    if (!fs)
        return;
    wft_env *old = ft_swap_current(env);
    for (size_t i = 0; i < fs->nheld; i++)
        shared_release(fs, fs->held[i]);
    ft_swap_current(old);
    fs->nheld = 0;
}

void ft_state_pin(wft_env *env) {
    ft_state *fs = env->state;
    if (!fs || !fs->nheld)
        return;
    fs->pinned = malloc(fs->nheld * sizeof(*fs->pinned));
    fs->pinned_route = malloc(fs->nheld * sizeof(*fs->pinned_route));
    if (!fs->pinned || !fs->pinned_route) {
        free(fs->pinned);
        free(fs->pinned_route);
        fs->pinned = NULL;
        fs->pinned_route = NULL;
        return;
    }
    for (size_t i = 0; i < fs->nheld; i++) {
        fs->pinned[i] = fs->held[i];
        fs->pinned_route[i] = fs->held_route[i];
        fs->held[i]->refs++;
    }
    fs->npinned = fs->nheld;
}

void ft_state_settle(wft_env *env) {
    ft_state *fs = env->state;
    if (!fs || !fs->rpinned)
        return;
    wft_env *old = ft_swap_current(env);
    for (size_t i = 0; i < fs->nrpinned; i++)
        shared_release(fs, fs->rpinned[i]);
    ft_swap_current(old);
    free(fs->rpinned);
    fs->rpinned = NULL;
    fs->nrpinned = 0;
}

/* After the new config_create: the pins of blocks config_create asked for
 * go now, those of route_config_create's wait for ft_state_settle (the
 * older ones of a reconfigure without traffic in between go now). */
void ft_state_unpin(wft_env *env) {
    ft_state *fs = env->state;
    if (!fs || !fs->pinned)
        return;
    ft_state_settle(env);
    wft_env *old = ft_swap_current(env);
    size_t nr = 0;
    for (size_t i = 0; i < fs->npinned; i++) {
        if (fs->pinned_route[i])
            fs->pinned[nr++] = fs->pinned[i]; /* kept, in place */
        else
            shared_release(fs, fs->pinned[i]);
    }
    ft_swap_current(old);
    free(fs->pinned_route);
    fs->pinned_route = NULL;
    if (nr) {
        fs->rpinned = fs->pinned;
        fs->nrpinned = nr;
    } else {
        free(fs->pinned);
    }
    fs->pinned = NULL;
    fs->npinned = 0;
}

static void endpoint_free(ft_endpoint *e) {
    free(e->address);
    free(e->region);
    free(e->zone);
    free(e->subzone);
    for (size_t i = 0; i < e->nlabels; i++) {
        free(e->labels[i].key);
        free(e->labels[i].value);
    }
    free(e->labels);
}

void ft_state_free(wft_env *env) {
    ft_state *fs = env->state;
    if (!fs)
        return;
    ft_state_config_gone(env);
    ft_state_unpin(env);
    ft_state_settle(env);
    free(fs->held);
    free(fs->held_route);
    while (fs->clusters) {
        ft_cluster *c = fs->clusters;
        fs->clusters = c->next;
        for (size_t i = 0; i < c->n; i++)
            endpoint_free(&c->eps[i]);
        free(c->eps);
        free(c->name);
        free(c);
    }
    free(fs);
    env->state = NULL;
}

weft_result ft_h_shared_get(weft_filter_setup *setup, weft_str key, size_t size, uint32_t version,
                            weft_shared_init_fn init, weft_shared_destroy_fn destroy, void *arg,
                            void **out) {
    if (out)
        *out = NULL;
    if (!setup || !setup->live)
        return ft_misuse(ft_current_env(), WEFT_ERR_STATE,
                         "shared_get: called outside config_create");
    wft_env *env = setup->env;
    if (!out || !key.ptr || key.len == 0 || key.len > SHARED_KEY_MAX || size == 0 ||
        size > SHARED_SIZE_MAX)
        return ft_misuse(env, WEFT_ERR_INVALID,
                         "shared_get: key must be 1..256 bytes, size 1..64 MiB, out not NULL");
    ft_state *fs = state_of(env);
    if (!fs)
        return WEFT_ERR_NOMEM;
    if (fs->nheld == fs->capheld) {
        size_t cap = fs->capheld ? fs->capheld * 2 : 8;
        ft_shared **p = realloc(fs->held, cap * sizeof(*p));
        if (!p)
            return WEFT_ERR_NOMEM;
        fs->held = p;
        bool *r = realloc(fs->held_route, cap * sizeof(*r));
        if (!r)
            return WEFT_ERR_NOMEM;
        fs->held_route = r;
        fs->capheld = cap;
    }
    ft_shared *b = fs->shared;
    while (b && !(b->klen == key.len && b->size == size && b->version == version &&
                  memcmp(b->key, key.ptr, key.len) == 0))
        b = b->next;
    if (b) {
        b->refs++;
    } else {
        b = calloc(1, sizeof(*b));
        size_t alloc = (size + 63) / 64 * 64;
        if (!b || !(b->block = aligned_alloc(64, alloc)) ||
            !(b->key = ft_strndup(key.ptr, key.len))) {
            if (b)
                free(b->block);
            free(b);
            return WEFT_ERR_NOMEM;
        }
        memset(b->block, 0, alloc);
        b->klen = key.len;
        b->size = size;
        b->version = version;
        b->refs = 1;
        b->next = fs->shared;
        fs->shared = b;
        if (init)
            init(b->block, size, arg);
    }
    b->destroy = destroy; /* the newest config's */
    b->arg = arg;
    fs->held_route[fs->nheld] = setup->route;
    fs->held[fs->nheld++] = b;
    *out = b->block;
    return WEFT_OK;
}

size_t wft_shared_blocks(const wft_env *env) {
    size_t n = 0;
    for (const ft_shared *b = env && env->state ? env->state->shared : NULL; b; b = b->next)
        n++;
    return n;
}

/* ---- clusters and endpoints ---- */

static ft_cluster *cluster_find(wft_env *env, const char *name, size_t len, bool make) {
    ft_state *fs = state_of(env);
    if (!fs)
        return NULL;
    for (ft_cluster *c = fs->clusters; c; c = c->next)
        if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
            return c;
    if (!make)
        return NULL;
    ft_cluster *c = calloc(1, sizeof(*c));
    if (!c || !(c->name = ft_strndup(name, len))) {
        free(c);
        return NULL;
    }
    c->handle.magic = FT_MAGIC_CLUSTER;
    c->next = fs->clusters;
    fs->clusters = c;
    return c;
}

static ft_endpoint *endpoint_find(ft_cluster *c, const char *address, size_t len, size_t *idx) {
    for (size_t i = 0; c && i < c->n; i++)
        if (strlen(c->eps[i].address) == len && memcmp(c->eps[i].address, address, len) == 0) {
            if (idx)
                *idx = i;
            return &c->eps[i];
        }
    return NULL;
}

weft_result ft_h_cluster_get(weft_filter_setup *setup, weft_str name, const weft_cluster **out) {
    if (out)
        *out = NULL;
    if (!setup || !setup->live)
        return ft_misuse(ft_current_env(), WEFT_ERR_STATE,
                         "cluster_get: called outside config_create");
    wft_env *env = setup->env;
    if (!out || (!name.ptr && name.len))
        return ft_misuse(env, WEFT_ERR_INVALID, "cluster_get: NULL name or out");
    /* Known as for route_set_cluster: declared (wft_env_add_cluster or
     * wft_env_add_endpoint), or any name while none is declared. */
    ft_cluster *c = cluster_find(env, name.ptr, name.len, false);
    if (!c && ft_cluster_known(env, name.ptr, name.len))
        c = cluster_find(env, name.ptr, name.len, true);
    if (!c)
        return WEFT_ERR_NOT_FOUND;
    *out = &c->handle;
    return WEFT_OK;
}

/* The cluster behind handle c of env, or NULL + misuse. */
static ft_cluster *cluster_of(wft_env *env, const weft_cluster *c, const char *fn, weft_result *r) {
    *r = WEFT_OK;
    for (ft_cluster *k = env->state ? env->state->clusters : NULL; k; k = k->next)
        if (c == &k->handle)
            return k;
    *r = ft_misuse(env, WEFT_ERR_INVALID, "%s: not a cluster of this config", fn);
    return NULL;
}

/* As the core: a live stream on its owner thread (the log phase too):
 * its env, or NULL with *err set (logged). */
static wft_env *stream_env(weft_stream *s, const char *fn, weft_result *err) {
    wft_stream *st = s ? ft_stream_from(s) : NULL;
    if (!st) {
        *err = ft_misuse(ft_current_env(), WEFT_ERR_HANDLE, "%s: %s", fn,
                         s ? "not a live stream" : "NULL stream");
        return NULL;
    }
    if (!ft_on_owner_thread(st->env)) {
        *err = ft_misuse(st->env, WEFT_ERR_THREAD,
                         "%s: called from a thread that does not own the stream", fn);
        return NULL;
    }
    *err = WEFT_OK;
    return st->env;
}

/* The endpoint calls' bodies, on the env a stream or worker handle names
 * (each call has a stream and a worker entry below, as in the core). */
#define CLUSTER_OR_RETURN(env, c, fn)                                                              \
    weft_result r_;                                                                                \
    ft_cluster *cl = cluster_of((env), (c), (fn), &r_);                                            \
    if (!cl)                                                                                       \
    return r_

#define ENDPOINT_OR_RETURN(env, c, i, fn)                                                          \
    CLUSTER_OR_RETURN(env, c, fn);                                                                 \
    if ((i) >= cl->n)                                                                              \
        return WEFT_ERR_NOT_FOUND;                                                                 \
    ft_endpoint *ep = &cl->eps[(i)]

static weft_result endpoint_count(wft_env *env, const weft_cluster *c, size_t *count,
                                  const char *fn) {
    CLUSTER_OR_RETURN(env, c, fn);
    if (!count)
        return ft_misuse(env, WEFT_ERR_INVALID, "%s: NULL count", fn);
    *count = cl->n;
    return WEFT_OK;
}

static weft_str cstr(const char *p) {
    return (weft_str){p ? p : "", p ? strlen(p) : 0};
}

static uint64_t ejected_ms(const wft_env *env, const ft_endpoint *ep) {
    return ep->ejected_until_us > env->now_us ? (ep->ejected_until_us - env->now_us + 999) / 1000
                                              : 0;
}

static weft_result endpoint_get(wft_env *env, const weft_cluster *c, size_t i,
                                weft_endpoint_info *out, const char *fn) {
    ENDPOINT_OR_RETURN(env, c, i, fn);
    size_t need = offsetof(weft_endpoint_info, n_labels) + sizeof(out->n_labels);
    if (!out || out->size < need)
        return ft_misuse(env, WEFT_ERR_INVALID, "%s: out NULL or out->size too small", fn);
    weft_endpoint_info info = {.size = out->size};
    info.address = cstr(ep->address);
    info.weight = ep->weight;
    info.ejected_ms = ejected_ms(env, ep);
    info.health = !ep->healthy      ? WEFT_ENDPOINT_UNHEALTHY
                  : info.ejected_ms ? WEFT_ENDPOINT_EJECTED
                                    : WEFT_ENDPOINT_HEALTHY;
    info.region = cstr(ep->region);
    info.zone = cstr(ep->zone);
    info.subzone = cstr(ep->subzone);
    info.n_labels = (uint32_t)ep->nlabels;
    memcpy(out, &info, out->size < sizeof(info) ? out->size : sizeof(info));
    return WEFT_OK;
}

static weft_result endpoint_label(wft_env *env, const weft_cluster *c, size_t i, size_t label,
                                  weft_str *key, weft_str *value, const char *fn) {
    ENDPOINT_OR_RETURN(env, c, i, fn);
    if (!key || !value)
        return ft_misuse(env, WEFT_ERR_INVALID, "%s: NULL key or value", fn);
    if (label >= ep->nlabels)
        return WEFT_ERR_NOT_FOUND;
    *key = cstr(ep->labels[label].key);
    *value = cstr(ep->labels[label].value);
    return WEFT_OK;
}

static weft_result endpoint_index(wft_env *env, const weft_cluster *c, weft_str address,
                                  size_t *index, const char *fn) {
    CLUSTER_OR_RETURN(env, c, fn);
    if (!index || (!address.ptr && address.len))
        return ft_misuse(env, WEFT_ERR_INVALID, "%s: NULL argument", fn);
    return endpoint_find(cl, address.ptr ? address.ptr : "", address.len, index)
               ? WEFT_OK
               : WEFT_ERR_NOT_FOUND;
}

static weft_result counter_add(wft_env *env, const weft_cluster *c, size_t i, uint32_t slot,
                               int64_t delta, uint64_t *value, const char *fn) {
    ENDPOINT_OR_RETURN(env, c, i, fn);
    if (slot >= WEFT_ENDPOINT_COUNTER_SLOTS)
        return ft_misuse(env, WEFT_ERR_INVALID, "%s: slot %u", fn, slot);
    ep->counters[slot] += (uint64_t)delta;
    if (value)
        *value = ep->counters[slot];
    return WEFT_OK;
}

static weft_result counter_set(wft_env *env, const weft_cluster *c, size_t i, uint32_t slot,
                               uint64_t value, const char *fn) {
    ENDPOINT_OR_RETURN(env, c, i, fn);
    if (slot >= WEFT_ENDPOINT_COUNTER_SLOTS)
        return ft_misuse(env, WEFT_ERR_INVALID, "%s: slot %u", fn, slot);
    ep->counters[slot] = value;
    return WEFT_OK;
}

/* Ejects endpoint i for duration_ms, or (restore) ends its ejection. */
static weft_result eject(wft_env *env, const weft_cluster *c, size_t i, uint64_t duration_ms,
                         bool restore, const char *fn) {
    ENDPOINT_OR_RETURN(env, c, i, fn);
    if (restore) {
        ep->ejected_until_us = 0;
        return WEFT_OK;
    }
    if (duration_ms == 0 || duration_ms > EJECT_MAX_MS)
        return ft_misuse(env, WEFT_ERR_INVALID, "%s: duration_ms must be 1..86400000", fn);
    ep->ejected_until_us = env->now_us + duration_ms * 1000;
    ep->ejections++;
    return WEFT_OK;
}

#define FT_STREAM(what)                                                                            \
    weft_result r0_ = WEFT_OK;                                                                     \
    wft_env *env_ = stream_env(s, what, &r0_)
#define FT_WORKER(what)                                                                            \
    weft_result r0_ = WEFT_OK;                                                                     \
    wft_env *env_ = ft_worker_env(w, what, &r0_)
#define FT_CALL(call) return env_ ? (call) : r0_

weft_result ft_h_endpoint_count(weft_stream *s, const weft_cluster *c, size_t *count) {
    FT_STREAM("cluster_endpoint_count");
    FT_CALL(endpoint_count(env_, c, count, "cluster_endpoint_count"));
}
weft_result ft_h_worker_endpoint_count(weft_worker *w, const weft_cluster *c, size_t *count) {
    FT_WORKER("worker_cluster_endpoint_count");
    FT_CALL(endpoint_count(env_, c, count, "worker_cluster_endpoint_count"));
}

weft_result ft_h_endpoint_get(weft_stream *s, const weft_cluster *c, size_t i,
                              weft_endpoint_info *out) {
    FT_STREAM("cluster_endpoint_get");
    FT_CALL(endpoint_get(env_, c, i, out, "cluster_endpoint_get"));
}
weft_result ft_h_worker_endpoint_get(weft_worker *w, const weft_cluster *c, size_t i,
                                     weft_endpoint_info *out) {
    FT_WORKER("worker_cluster_endpoint_get");
    FT_CALL(endpoint_get(env_, c, i, out, "worker_cluster_endpoint_get"));
}

weft_result ft_h_endpoint_label(weft_stream *s, const weft_cluster *c, size_t i, size_t label,
                                weft_str *key, weft_str *value) {
    FT_STREAM("cluster_endpoint_label");
    FT_CALL(endpoint_label(env_, c, i, label, key, value, "cluster_endpoint_label"));
}
weft_result ft_h_worker_endpoint_label(weft_worker *w, const weft_cluster *c, size_t i,
                                       size_t label, weft_str *key, weft_str *value) {
    FT_WORKER("worker_cluster_endpoint_label");
    FT_CALL(endpoint_label(env_, c, i, label, key, value, "worker_cluster_endpoint_label"));
}

weft_result ft_h_endpoint_find(weft_stream *s, const weft_cluster *c, weft_str address,
                               size_t *index) {
    FT_STREAM("cluster_endpoint_find");
    FT_CALL(endpoint_index(env_, c, address, index, "cluster_endpoint_find"));
}
weft_result ft_h_worker_endpoint_find(weft_worker *w, const weft_cluster *c, weft_str address,
                                      size_t *index) {
    FT_WORKER("worker_cluster_endpoint_find");
    FT_CALL(endpoint_index(env_, c, address, index, "worker_cluster_endpoint_find"));
}

weft_result ft_h_counter_add(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                             int64_t delta, uint64_t *value) {
    FT_STREAM("endpoint_counter_add");
    FT_CALL(counter_add(env_, c, i, slot, delta, value, "endpoint_counter_add"));
}
weft_result ft_h_worker_counter_add(weft_worker *w, const weft_cluster *c, size_t i, uint32_t slot,
                                    int64_t delta, uint64_t *value) {
    FT_WORKER("worker_endpoint_counter_add");
    FT_CALL(counter_add(env_, c, i, slot, delta, value, "worker_endpoint_counter_add"));
}

weft_result ft_h_counter_set(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                             uint64_t value) {
    FT_STREAM("endpoint_counter_set");
    FT_CALL(counter_set(env_, c, i, slot, value, "endpoint_counter_set"));
}
weft_result ft_h_worker_counter_set(weft_worker *w, const weft_cluster *c, size_t i, uint32_t slot,
                                    uint64_t value) {
    FT_WORKER("worker_endpoint_counter_set");
    FT_CALL(counter_set(env_, c, i, slot, value, "worker_endpoint_counter_set"));
}

weft_result ft_h_eject(weft_stream *s, const weft_cluster *c, size_t i, uint64_t duration_ms) {
    FT_STREAM("endpoint_eject");
    FT_CALL(eject(env_, c, i, duration_ms, false, "endpoint_eject"));
}
weft_result ft_h_worker_eject(weft_worker *w, const weft_cluster *c, size_t i,
                              uint64_t duration_ms) {
    FT_WORKER("worker_endpoint_eject");
    FT_CALL(eject(env_, c, i, duration_ms, false, "worker_endpoint_eject"));
}

weft_result ft_h_restore(weft_stream *s, const weft_cluster *c, size_t i) {
    FT_STREAM("endpoint_restore");
    FT_CALL(eject(env_, c, i, 0, true, "endpoint_restore"));
}
weft_result ft_h_worker_restore(weft_worker *w, const weft_cluster *c, size_t i) {
    FT_WORKER("worker_endpoint_restore");
    FT_CALL(eject(env_, c, i, 0, true, "worker_endpoint_restore"));
}

/* ---- test controls ---- */

static ft_endpoint *control_ep(wft_env *env, const char *cluster, const char *address) {
    if (!env || !cluster || !address)
        return NULL;
    return endpoint_find(cluster_find(env, cluster, strlen(cluster), false), address,
                         strlen(address), NULL);
}

int wft_env_add_endpoint(wft_env *env, const char *cluster, const char *address, uint32_t weight) {
    if (!env || !cluster || !*cluster || !address || !*address)
        return -1;
    bool declared = false;
    for (size_t i = 0; i < env->nclusters && !declared; i++)
        declared = strcmp(env->clusters[i], cluster) == 0;
    if (!declared && wft_env_add_cluster(env, cluster))
        return -1;
    ft_cluster *c = cluster_find(env, cluster, strlen(cluster), true);
    if (!c || endpoint_find(c, address, strlen(address), NULL))
        return -1;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        ft_endpoint *p = realloc(c->eps, cap * sizeof(*p));
        if (!p)
            return -1;
        c->eps = p;
        c->cap = cap;
    }
    ft_endpoint *e = &c->eps[c->n];
    memset(e, 0, sizeof(*e));
    e->address = ft_strdup(address);
    e->region = ft_strdup("");
    e->zone = ft_strdup("");
    e->subzone = ft_strdup("");
    if (!e->address || !e->region || !e->zone || !e->subzone) {
        endpoint_free(e);
        return -1;
    }
    e->weight = weight ? weight : 1;
    e->healthy = true;
    c->n++;
    return 0;
}

int wft_env_remove_endpoint(wft_env *env, const char *cluster, const char *address) {
    ft_cluster *c = env && cluster ? cluster_find(env, cluster, strlen(cluster), false) : NULL;
    size_t i;
    if (!c || !address || !endpoint_find(c, address, strlen(address), &i))
        return -1;
    endpoint_free(&c->eps[i]);
    memmove(&c->eps[i], &c->eps[i + 1], (c->n - i - 1) * sizeof(c->eps[0]));
    c->n--;
    return 0;
}

static int set_str(char **dst, const char *v) {
    char *p = ft_strdup(v ? v : "");
    if (!p)
        return -1;
    free(*dst);
    *dst = p;
    return 0;
}

int wft_env_endpoint_set_locality(wft_env *env, const char *cluster, const char *address,
                                  const char *region, const char *zone, const char *subzone) {
    ft_endpoint *e = control_ep(env, cluster, address);
    if (!e || set_str(&e->region, region) || set_str(&e->zone, zone) ||
        set_str(&e->subzone, subzone))
        return -1;
    return 0;
}

int wft_env_endpoint_add_label(wft_env *env, const char *cluster, const char *address,
                               const char *key, const char *value) {
    ft_endpoint *e = control_ep(env, cluster, address);
    if (!e || !key || !*key)
        return -1;
    ft_label *p = realloc(e->labels, (e->nlabels + 1) * sizeof(*p));
    if (!p)
        return -1;
    e->labels = p;
    size_t at = 0;
    while (at < e->nlabels && strcmp(e->labels[at].key, key) < 0)
        at++;
    if (at < e->nlabels && strcmp(e->labels[at].key, key) == 0)
        return set_str(&e->labels[at].value, value);
    char *k = ft_strdup(key), *v = ft_strdup(value ? value : "");
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    memmove(&e->labels[at + 1], &e->labels[at], (e->nlabels - at) * sizeof(*p));
    e->labels[at] = (ft_label){k, v};
    e->nlabels++;
    return 0;
}

int wft_env_endpoint_set_healthy(wft_env *env, const char *cluster, const char *address,
                                 bool healthy) {
    ft_endpoint *e = control_ep(env, cluster, address);
    if (!e)
        return -1;
    e->healthy = healthy;
    return 0;
}

uint64_t wft_endpoint_ejected_ms(wft_env *env, const char *cluster, const char *address) {
    ft_endpoint *e = control_ep(env, cluster, address);
    return e ? ejected_ms(env, e) : 0;
}

uint64_t wft_endpoint_counter(wft_env *env, const char *cluster, const char *address,
                              uint32_t slot) {
    ft_endpoint *e = control_ep(env, cluster, address);
    return e && slot < WEFT_ENDPOINT_COUNTER_SLOTS ? e->counters[slot] : 0;
}

const char *wft_env_pick_endpoint(wft_env *env, const char *cluster) {
    ft_cluster *c = env && cluster ? cluster_find(env, cluster, strlen(cluster), false) : NULL;
    if (!c || !c->n)
        return NULL;
    size_t healthy = 0, eligible = 0;
    for (size_t i = 0; i < c->n; i++) {
        healthy += c->eps[i].healthy;
        eligible += c->eps[i].healthy && !ejected_ms(env, &c->eps[i]);
    }
    if (!healthy)
        return NULL;
    bool panic = eligible == 0; /* every healthy endpoint ejected: ejection ignored */
    for (size_t k = 0; k < c->n; k++) {
        ft_endpoint *e = &c->eps[(c->rr + k) % c->n];
        if (e->healthy && (panic || !ejected_ms(env, e))) {
            c->rr = (c->rr + k + 1) % c->n;
            return e->address;
        }
    }
    return NULL;
}
