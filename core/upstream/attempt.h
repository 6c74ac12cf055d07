/* attempt.h: one upstream attempt, the only thing that starts and ends a
 * request on a load balancer. It references the load balancer it picked
 * from (which references its hostset), so the endpoint it points to stays
 * valid for as long as the attempt record is kept, even after the cluster
 * moved to a new hostset (DNS refresh, endpoint push): the access log,
 * retries and filters read `ep` safely, and the end is counted on the lb
 * that counted the start. Starts and ends exactly once: weft_attempt_end
 * is a no-op on an attempt already ended. Worker thread only. */
#ifndef WEFT_UPSTREAM_ATTEMPT_H
#define WEFT_UPSTREAM_ATTEMPT_H

#include <string.h>

#include "common/common.h"
#include "upstream/lb.h"

typedef struct weft_attempt {
    weft_lb *lb;             /* referenced; NULL when no attempt was made */
    int idx;                 /* endpoint index in lb->hs, -1 none */
    const weft_endpoint *ep; /* &lb->hs->eps[idx], valid while lb is referenced */
    uint64_t t_start_us;
    bool live; /* started, not ended */
} weft_attempt;

static inline void weft_attempt_init(weft_attempt *a) {
    memset(a, 0, sizeof(*a));
    a->idx = -1;
}

/* Ends the attempt (counted once on its lb). latency_us: to the response
 * head, 0 on failure. */
static inline void weft_attempt_end(weft_attempt *a, bool ok, uint64_t latency_us,
                                    uint64_t now_us) {
    if (!a->live)
        return;
    a->live = false;
    weft_lb_on_end(a->lb, a->idx, latency_us, ok, now_us);
}

/* Ends the attempt if live (as a failure) and drops the record. */
static inline void weft_attempt_clear(weft_attempt *a) {
    if (a->live)
        weft_attempt_end(a, false, 0, weft_now_us());
    if (a->lb)
        weft_lb_unref(a->lb);
    weft_attempt_init(a);
}

/* Starts an attempt on endpoint idx of lb (the previous record, if any,
 * is ended and dropped first). */
static inline void weft_attempt_start(weft_attempt *a, weft_lb *lb, int idx, uint64_t now_us) {
    weft_attempt_clear(a);
    a->lb = weft_lb_ref(lb);
    a->idx = idx;
    a->ep = &lb->hs->eps[idx];
    a->t_start_us = now_us;
    a->live = true;
    weft_lb_on_start(lb, idx);
}

#endif
