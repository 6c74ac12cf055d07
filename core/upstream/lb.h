/* lb.h: load balancers. One weft_lb per worker per cluster hostset: its
 * state (weights, active counts, EWMA) is worker-private, so picking takes
 * no lock. Unhealthy endpoints (ep->healthy == 0) are skipped. */
#ifndef WEFT_UPSTREAM_LB_H
#define WEFT_UPSTREAM_LB_H

#include "config/config.h"
#include "upstream/hostset.h"

typedef struct weft_lb_ep_state {
    int64_t current_weight; /* smooth weighted round robin */
    uint32_t active;        /* requests in flight from this worker */
    double ewma_us;         /* peak EWMA of latency, microseconds */
    uint64_t ewma_stamp_us; /* last EWMA update (monotonic us) */
} weft_lb_ep_state;

typedef struct weft_lb {
    int refs; /* worker-local (no atomics): the cluster's current lb, plus
               * one per upstream attempt started on it (weft_attempt), so
               * an lb and its hostset outlive a hostset change for the
               * attempts still in flight on them */
    weft_lb_policy policy;
    weft_hostset *hs;       /* referenced (weft_hostset_ref) while the lb lives */
    weft_lb_ep_state *st;   /* hs->n entries, owned */
    uint64_t rng;           /* xorshift state */
    uint64_t ewma_decay_us; /* EWMA time constant; default 10 s */
} weft_lb;

int weft_lb_init(weft_lb *lb, weft_lb_policy policy, weft_hostset *hs, uint64_t seed);
void weft_lb_destroy(weft_lb *lb);
/* A heap lb with one reference. `prev` (may be NULL: the lb it replaces
 * after a hostset change) lends the latency estimates of endpoints that
 * stay (matched by name); in-flight counts stay with prev, whose attempts
 * end on it. NULL on OOM. */
weft_lb *weft_lb_new(weft_lb_policy policy, weft_hostset *hs, uint64_t seed, const weft_lb *prev);
weft_lb *weft_lb_ref(weft_lb *lb);
void weft_lb_unref(weft_lb *lb);
/* Index of the chosen endpoint, or -1 if none is healthy. `hash` is used by
 * RING_HASH only (when has_hash is false, ring hash falls back to random).
 * `exclude` (or -1) is an endpoint to avoid if another healthy one exists
 * (used when re-sending after a stale pooled connection or a failed
 * connect). Endpoints under passive-health avoidance (weft_endpoint_avoid)
 * are skipped while another eligible endpoint exists. Ejected endpoints
 * (weft_endpoint_set_ejected, read atomically on every pick, so an
 * ejection by any worker counts at once) are skipped unless every healthy
 * endpoint is ejected: then ejection is ignored (panic mode). */
int weft_lb_pick(weft_lb *lb, uint64_t hash, bool has_hash, int exclude);
/* Same as weft_lb_pick with an explicit monotonic time: PEAK_EWMA decays
 * each candidate's latency estimate to now_us when computing its cost
 * (weft_lb_pick passes weft_now_us()). Tests drive time through this. */
int weft_lb_pick_at(weft_lb *lb, uint64_t hash, bool has_hash, int exclude, uint64_t now_us);
/* weft_lb_pick_at that also skips the endpoints whose bit is set in
 * `skip` (bit i of skip[i / 64]; hs->n bits; NULL: none) while a healthy
 * endpoint outside it exists; otherwise the bits are ignored (a retry to
 * an untried endpoint falls back to a tried one). */
int weft_lb_pick_skip(weft_lb *lb, uint64_t hash, bool has_hash, int exclude, const uint64_t *skip,
                      uint64_t now_us);
/* Call when a request starts/ends on endpoint i (weft_attempt does, once
 * each). latency_us is the time to the response head (0 on failure:
 * failures count as a penalty for PEAK_EWMA). An end without a matching
 * start (no request in flight on i) is refused: -1, nothing changes. */
void weft_lb_on_start(weft_lb *lb, int i);
int weft_lb_on_end(weft_lb *lb, int i, uint64_t latency_us, bool ok, uint64_t now_us);
/* Requests in flight on endpoint i (sum over all endpoints when i < 0). */
uint32_t weft_lb_active(const weft_lb *lb, int i);

#endif
