/* hostset.h: the resolved endpoints of a cluster. A hostset is immutable
 * once published (only the atomic health flag changes), refcounted, and
 * shared by all workers; DNS refresh publishes a new one. The ring of a
 * ring_hash cluster is built with the hostset, so workers share it. */
#ifndef WEFT_UPSTREAM_HOSTSET_H
#define WEFT_UPSTREAM_HOSTSET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Per-endpoint state that outlives hostsets: one shared block per
 * (cluster name, endpoint name) in the shared registry
 * (common/shared_reg.h), referenced by every hostset holding the endpoint,
 * so a DNS change, an endpoint push or a reload that keeps the endpoint
 * (same address:port in a cluster of the same name) keeps it too.
 * Written by any worker (filters: weft_endpoint_eject, counters), read by
 * every worker's load balancer on each pick (relaxed atomics). */
#define WEFT_ENDPOINT_COUNTERS 8
typedef struct weft_endpoint_state {
    _Atomic uint64_t ejected_until_us; /* monotonic us; 0 = not ejected */
    _Atomic uint64_t ejections;        /* times ejected */
    _Atomic uint64_t counters[WEFT_ENDPOINT_COUNTERS];
} weft_endpoint_state;

typedef struct weft_endpoint_label {
    const char *key, *value;
} weft_endpoint_label;

typedef struct weft_endpoint {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[80];   /* "127.0.0.1:8080" / "[::1]:8080" for logs, stats */
    uint32_t weight; /* >= 1 */
    /* Locality and labels from the endpoint's config (weft_endpoint_set_meta),
     * owned by the hostset (they outlive the config that gave them). Never
     * NULL: "" for a part not given; labels sorted by key. */
    const char *region, *zone, *subzone;
    const weft_endpoint_label *labels;
    uint32_t n_labels;
    void *meta;          /* the one allocation holding the above; NULL = none */
    _Atomic int healthy; /* 1 = in rotation; written by the health checker */
    /* Passive health: a connect to this endpoint failed; load balancers
     * avoid it until this monotonic time (us) while another endpoint is
     * eligible. Written by any worker (relaxed: advice, not a verdict). */
    _Atomic uint64_t avoid_until_us;
    /* `protocol: auto` over transport filters: a handshake with this
     * endpoint picked ALPN h2, so requests to it go as HTTP/2 from now on
     * (any worker writes it; relaxed). */
    _Atomic bool speaks_h2;
    /* Shared state (weft_hostset_bind_state); NULL until bound (or on OOM:
     * then the endpoint cannot be ejected). */
    weft_endpoint_state *state;
    struct weft_shared_entry *state_entry; /* the reference behind `state` */
} weft_endpoint;

static inline void weft_endpoint_avoid(weft_endpoint *ep, uint64_t until_us) {
    atomic_store_explicit(&ep->avoid_until_us, until_us, memory_order_relaxed);
}

static inline void weft_endpoint_set_h2(weft_endpoint *ep) {
    atomic_store_explicit(&ep->speaks_h2, true, memory_order_relaxed);
}

static inline bool weft_endpoint_h2(const weft_endpoint *ep) {
    return atomic_load_explicit(&((weft_endpoint *)ep)->speaks_h2, memory_order_relaxed);
}

static inline bool weft_endpoint_avoided(const weft_endpoint *ep, uint64_t now_us) {
    return atomic_load_explicit(&((weft_endpoint *)ep)->avoid_until_us, memory_order_relaxed) >
           now_us;
}

/* Ejected (outlier detection) at monotonic time now_us. */
static inline bool weft_endpoint_ejected(const weft_endpoint *ep, uint64_t now_us) {
    return ep->state &&
           atomic_load_explicit(&ep->state->ejected_until_us, memory_order_relaxed) > now_us;
}

/* Ejects until until_us (0: restores). */
static inline void weft_endpoint_set_ejected(weft_endpoint *ep, uint64_t until_us) {
    if (!ep->state)
        return;
    if (until_us)
        atomic_fetch_add_explicit(&ep->state->ejections, 1, memory_order_relaxed);
    atomic_store_explicit(&ep->state->ejected_until_us, until_us, memory_order_relaxed);
}

typedef struct weft_ring_entry {
    uint64_t hash;
    uint32_t ep; /* index into eps */
} weft_ring_entry;

typedef struct weft_hostset {
    _Atomic int refs;
    uint64_t generation; /* increases with each publish for a cluster */
    weft_endpoint *eps;  /* owned */
    size_t n;
    weft_ring_entry *ring; /* owned; sorted by hash; NULL unless ring hash */
    size_t ring_n;
} weft_hostset;

/* Allocates a hostset with n endpoints (zeroed, weight=1, healthy=1, refs=1). */
weft_hostset *weft_hostset_new(size_t n);
void weft_hostset_ref(weft_hostset *hs);
void weft_hostset_unref(weft_hostset *hs);
/* Builds the ketama-style ring: each endpoint gets points proportional to
 * its weight, hashed from "name#i" (i = 0, 1, ...). ring_size is the
 * minimum ring size: while total_weight <= ring_size every unit of weight
 * gets ceil(ring_size / total_weight) points rounded up to a power of two
 * (so an endpoint keeps its points when others come and go); beyond that,
 * max(1, ring_size * weight / total_weight). Replaces any previous ring.
 * Returns 0, or -1 on OOM. */
int weft_hostset_build_ring(weft_hostset *hs, uint32_t ring_size);
/* Binds every endpoint of hs that has no state yet to the shared state of
 * (cluster, endpoint name), creating it when no hostset holds it. Call
 * once the names are set, before publishing. Main thread (any thread is
 * safe). 0, or -1 on OOM (the endpoints bound so far stay bound). */
int weft_hostset_bind_state(weft_hostset *hs, const char *cluster);
/* Copies a config endpoint's locality and labels into ep (one allocation,
 * freed with the hostset; replaces any previous). 0, or -1 on OOM. */
struct weft_cfg_endpoint;
int weft_endpoint_set_meta(weft_endpoint *ep, const struct weft_cfg_endpoint *cfg);
/* True when both endpoints carry the same locality and labels. */
bool weft_endpoint_meta_equal(const weft_endpoint *a, const weft_endpoint *b);
/* The value of label `key` of ep, or NULL. */
const char *weft_endpoint_label_get(const weft_endpoint *ep, const char *key);
/* Fills ep->addr/addrlen/name from an IP literal and port; -1 if not a literal. */
int weft_endpoint_set_ip(weft_endpoint *ep, const char *ip, uint16_t port);

#endif
