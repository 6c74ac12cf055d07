/* lb.c: per-worker load balancers over a shared hostset.
 *
 * Every policy picks among the "eligible" endpoints: healthy ones, not
 * ejected (unless all are: panic), not avoided (unless all are), minus
 * `exclude` when another healthy endpoint exists. No allocation, no lock:
 * the state in lb->st is private to the worker that owns the lb. */
#include "upstream/lb.h"

#include "common/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WEFT_LB_DEFAULT_DECAY_US (10ull * 1000 * 1000)

/* ---- rng: xorshift64* ---- */

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t rng_next(weft_lb *lb) {
    return weft_xorshift64s(&lb->rng);
}

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift on the top 32 bits
 * is enough for endpoint counts and weight sums below 2^32). */
static uint64_t rng_below(weft_lb *lb, uint64_t n) {
    uint64_t r = rng_next(lb);
    if (n <= UINT32_MAX)
        return ((r >> 32) * n) >> 32;
    return r % n;
}

/* ---- eligibility ---- */

static inline bool ep_up(const weft_lb *lb, size_t i) {
    return atomic_load_explicit(&lb->hs->eps[i].healthy, memory_order_relaxed) != 0;
}

static inline uint64_t ep_weight(const weft_lb *lb, size_t i) {
    uint32_t w = lb->hs->eps[i].weight;
    return w ? w : 1;
}

typedef struct pick_ctx {
    int excl;             /* index treated as ineligible, or -1 */
    size_t count;         /* number of eligible endpoints */
    uint64_t now_us;      /* passive health: an endpoint is avoided until a later time */
    bool avoid;           /* honour passive avoidance (false when it would leave none) */
    bool eject;           /* honour ejection (false when it would leave none: panic) */
    const uint64_t *skip; /* endpoints a retry wants to avoid (tried), NULL none */
} pick_ctx;

static inline bool ep_healthy(const weft_lb *lb, const pick_ctx *c, size_t i) {
    const weft_endpoint *ep = &lb->hs->eps[i];
    return ep_up(lb, i) && !(c->eject && weft_endpoint_ejected(ep, c->now_us)) &&
           !(c->avoid && weft_endpoint_avoided(ep, c->now_us));
}

static inline bool ep_skipped(const uint64_t *skip, size_t i) {
    return skip && (skip[i / 64] >> (i % 64)) & 1u;
}

static inline bool usable(const weft_lb *lb, const pick_ctx *c, size_t i) {
    return ep_healthy(lb, c, i) && !ep_skipped(c->skip, i);
}

static inline bool eligible(const weft_lb *lb, const pick_ctx *c, size_t i) {
    return (int)i != c->excl && usable(lb, c, i);
}

/* Counts healthy endpoints and decides whether `skip` and `exclude` are
 * honoured. */
static void pick_ctx_init(const weft_lb *lb, int exclude, const uint64_t *skip, uint64_t now_us,
                          pick_ctx *c) {
    size_t healthy = 0;
    c->now_us = now_us;
    c->avoid = now_us != 0;
    c->eject = true;
    c->excl = -1;
    c->skip = NULL;
    for (size_t i = 0; i < lb->hs->n; i++)
        healthy += ep_healthy(lb, c, i);
    if (healthy == 0 && c->avoid) {
        /* Every healthy endpoint is avoided: avoidance is advice, not a
         * verdict (health checks and outlier detection give those), so
         * pick among the healthy ones. */
        c->avoid = false;
        for (size_t i = 0; i < lb->hs->n; i++)
            healthy += ep_healthy(lb, c, i);
    }
    if (healthy == 0) {
        /* Every healthy endpoint is ejected (outlier detection): panic
         * mode, as Envoy's when ejection would leave nothing: ejection is
         * ignored and the healthy endpoints all take traffic again, so
         * ejection alone never makes a cluster with healthy endpoints
         * answer 503. (Limiting how many are ejected, Istio's
         * maxEjectionPercent, is the ejecting filter's job.) */
        c->eject = false;
        for (size_t i = 0; i < lb->hs->n; i++)
            healthy += ep_healthy(lb, c, i);
    }
    if (skip) {
        /* Untried endpoints first; all of them again when none is left. */
        size_t fresh = 0;
        for (size_t i = 0; i < lb->hs->n; i++)
            fresh += ep_healthy(lb, c, i) && !ep_skipped(skip, i);
        if (fresh) {
            c->skip = skip;
            healthy = fresh;
        }
    }
    c->count = healthy;
    if (exclude >= 0 && (size_t)exclude < lb->hs->n && usable(lb, c, (size_t)exclude) &&
        healthy > 1) {
        c->excl = exclude;
        c->count = healthy - 1;
    }
}

/* The k-th eligible endpoint (0-based), k < c->count. */
static size_t nth_eligible(const weft_lb *lb, const pick_ctx *c, size_t k) {
    if (c->count == lb->hs->n)
        return k;
    for (size_t i = 0; i < lb->hs->n; i++) {
        if (!eligible(lb, c, i))
            continue;
        if (k == 0)
            return i;
        k--;
    }
    return 0; /* unreachable while k < count */
}

/* ---- policies ---- */

/* nginx smooth weighted round robin. */
static int pick_rr(weft_lb *lb, const pick_ctx *c) {
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < lb->hs->n; i++) {
        if (!eligible(lb, c, i))
            continue;
        int64_t w = (int64_t)ep_weight(lb, i);
        lb->st[i].current_weight += w;
        total += w;
        if (best < 0 || lb->st[i].current_weight > lb->st[best].current_weight)
            best = (int)i;
    }
    if (best >= 0)
        lb->st[best].current_weight -= total;
    return best;
}

static int pick_random(weft_lb *lb, const pick_ctx *c) {
    uint64_t total = 0;
    for (size_t i = 0; i < lb->hs->n; i++)
        if (eligible(lb, c, i))
            total += ep_weight(lb, i);
    uint64_t r = rng_below(lb, total);
    for (size_t i = 0; i < lb->hs->n; i++) {
        if (!eligible(lb, c, i))
            continue;
        uint64_t w = ep_weight(lb, i);
        if (r < w)
            return (int)i;
        r -= w;
    }
    return -1;
}

/* Two distinct eligible endpoints chosen uniformly (count >= 2). */
static void two_choices(weft_lb *lb, const pick_ctx *c, size_t *a, size_t *b) {
    size_t r1 = (size_t)rng_below(lb, c->count);
    size_t r2 = (size_t)rng_below(lb, c->count - 1);
    if (r2 >= r1)
        r2++;
    *a = nth_eligible(lb, c, r1);
    *b = nth_eligible(lb, c, r2);
}

static int pick_least_request(weft_lb *lb, const pick_ctx *c) {
    if (c->count == 1)
        return (int)nth_eligible(lb, c, 0);
    size_t a, b;
    two_choices(lb, c, &a, &b);
    /* active_a / w_a <= active_b / w_b, cross-multiplied; ties keep a. */
    uint64_t lhs = (uint64_t)lb->st[a].active * ep_weight(lb, b);
    uint64_t rhs = (uint64_t)lb->st[b].active * ep_weight(lb, a);
    return (int)(lhs <= rhs ? a : b);
}

static inline double decay_tau(const weft_lb *lb) {
    return (double)(lb->ewma_decay_us ? lb->ewma_decay_us : WEFT_LB_DEFAULT_DECAY_US);
}

/* The latency estimate decayed towards zero for the time since its last
 * update (Finagle's peak EWMA reads the value this way). */
static double ewma_now(const weft_lb *lb, size_t i, uint64_t now_us) {
    const weft_lb_ep_state *s = &lb->st[i];
    if (s->ewma_us <= 0.0 || now_us <= s->ewma_stamp_us)
        return s->ewma_us;
    double elapsed = (double)(now_us - s->ewma_stamp_us);
    return s->ewma_us * exp(-elapsed / decay_tau(lb));
}

static double ewma_cost(const weft_lb *lb, size_t i, uint64_t now_us) {
    const weft_lb_ep_state *s = &lb->st[i];
    bool probed = s->ewma_stamp_us != 0 || s->ewma_us > 0.0;
    if (!probed) {
        /* Never answered: free to try while idle; once requests are in
         * flight with no answer yet, each one costs a decay-time latency. */
        return s->active ? decay_tau(lb) * s->active : 0.0;
    }
    return ewma_now(lb, i, now_us) * (double)(s->active + 1);
}

static int pick_peak_ewma(weft_lb *lb, const pick_ctx *c, uint64_t now_us) {
    if (c->count == 1)
        return (int)nth_eligible(lb, c, 0);
    size_t a, b;
    two_choices(lb, c, &a, &b);
    return (int)(ewma_cost(lb, a, now_us) <= ewma_cost(lb, b, now_us) ? a : b);
}

static int pick_ring(weft_lb *lb, const pick_ctx *c, uint64_t hash) {
    const weft_hostset *hs = lb->hs;
    size_t n = hs->ring_n;
    /* lower_bound: first entry with entry.hash >= hash. */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hs->ring[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < n; k++) {
        size_t pos = lo + k;
        if (pos >= n)
            pos -= n;
        uint32_t ep = hs->ring[pos].ep;
        if (ep < hs->n && eligible(lb, c, ep))
            return (int)ep;
    }
    return -1;
}

/* ---- public ---- */

int weft_lb_init(weft_lb *lb, weft_lb_policy policy, weft_hostset *hs, uint64_t seed) {
    if (!lb || !hs)
        return -1;
    memset(lb, 0, sizeof(*lb));
    lb->st = calloc(hs->n ? hs->n : 1, sizeof(*lb->st));
    if (!lb->st)
        return -1;
    lb->policy = policy;
    lb->hs = hs;
    weft_hostset_ref(hs);
    lb->rng = splitmix64(seed);
    if (lb->rng == 0)
        lb->rng = 0x9e3779b97f4a7c15ull;
    lb->ewma_decay_us = WEFT_LB_DEFAULT_DECAY_US;
    /* Start smooth round robin at a seed-dependent phase so that workers
     * sharing a hostset do not all send their first request to the same
     * endpoint. The sequence stays exactly weight-proportional. */
    if (policy == WEFT_LB_ROUND_ROBIN && hs->n > 1) {
        pick_ctx c;
        pick_ctx_init(lb, -1, NULL, 0, &c);
        uint64_t total = 0;
        for (size_t i = 0; i < hs->n; i++)
            total += ep_weight(lb, i);
        uint64_t skip = total <= 4096 ? rng_below(lb, total) : rng_below(lb, 4096);
        for (uint64_t k = 0; k < skip; k++)
            pick_rr(lb, &c);
    }
    return 0;
}

void weft_lb_destroy(weft_lb *lb) {
    if (!lb)
        return;
    free(lb->st);
    lb->st = NULL;
    weft_hostset_unref(lb->hs);
    lb->hs = NULL;
}

int weft_lb_pick_at(weft_lb *lb, uint64_t hash, bool has_hash, int exclude, uint64_t now_us) {
    return weft_lb_pick_skip(lb, hash, has_hash, exclude, NULL, now_us);
}

int weft_lb_pick_skip(weft_lb *lb, uint64_t hash, bool has_hash, int exclude, const uint64_t *skip,
                      uint64_t now_us) {
    if (!lb || !lb->hs || lb->hs->n == 0)
        return -1;
    pick_ctx c;
    pick_ctx_init(lb, exclude, skip, now_us, &c);
    if (c.count == 0)
        return -1;
    switch (lb->policy) {
    case WEFT_LB_ROUND_ROBIN:
        return pick_rr(lb, &c);
    case WEFT_LB_LEAST_REQUEST:
        return pick_least_request(lb, &c);
    case WEFT_LB_RANDOM:
        return pick_random(lb, &c);
    case WEFT_LB_RING_HASH:
        if (has_hash && lb->hs->ring && lb->hs->ring_n)
            return pick_ring(lb, &c, hash);
        return pick_random(lb, &c);
    case WEFT_LB_PEAK_EWMA:
        return pick_peak_ewma(lb, &c, now_us);
    }
    return pick_random(lb, &c);
}

int weft_lb_pick(weft_lb *lb, uint64_t hash, bool has_hash, int exclude) {
    return weft_lb_pick_at(lb, hash, has_hash, exclude, weft_now_us());
}

void weft_lb_on_start(weft_lb *lb, int i) {
    if (!lb || !lb->hs || i < 0 || (size_t)i >= lb->hs->n)
        return;
    lb->st[i].active++;
}

int weft_lb_on_end(weft_lb *lb, int i, uint64_t latency_us, bool ok, uint64_t now_us) {
    if (!lb || !lb->hs || i < 0 || (size_t)i >= lb->hs->n)
        return -1;
    weft_lb_ep_state *s = &lb->st[i];
    if (!s->active)
        return -1; /* unbalanced: an end without its start */
    s->active--;
    if (lb->policy != WEFT_LB_PEAK_EWMA)
        return 0;
    double sample = (double)latency_us;
    if (!ok && sample < decay_tau(lb))
        sample = decay_tau(lb);
    bool probed = s->ewma_stamp_us != 0 || s->ewma_us > 0.0;
    if (!probed || sample > s->ewma_us) {
        s->ewma_us = sample; /* peak: a slower sample takes over at once */
    } else {
        double elapsed = now_us > s->ewma_stamp_us ? (double)(now_us - s->ewma_stamp_us) : 0.0;
        double w = exp(-elapsed / decay_tau(lb));
        s->ewma_us = s->ewma_us * w + sample * (1.0 - w);
    }
    /* A zero stamp means "never probed"; keep it nonzero once we have a sample. */
    s->ewma_stamp_us = now_us ? now_us : 1;
    return 0;
}

uint32_t weft_lb_active(const weft_lb *lb, int i) {
    if (!lb || !lb->hs)
        return 0;
    if (i >= 0)
        return (size_t)i < lb->hs->n ? lb->st[i].active : 0;
    uint32_t sum = 0;
    for (size_t k = 0; k < lb->hs->n; k++)
        sum += lb->st[k].active;
    return sum;
}

weft_lb *weft_lb_new(weft_lb_policy policy, weft_hostset *hs, uint64_t seed, const weft_lb *prev) {
    weft_lb *lb = malloc(sizeof(*lb));
    if (!lb)
        return NULL;
    if (weft_lb_init(lb, policy, hs, seed) != 0) {
        free(lb);
        return NULL;
    }
    lb->refs = 1;
    if (prev && prev->hs && prev->policy == policy && policy == WEFT_LB_PEAK_EWMA) {
        /* Latency estimates of endpoints that stay (same index first: a
         * refreshed hostset usually keeps its order). */
        for (size_t i = 0; i < hs->n; i++) {
            size_t j = i;
            if (j >= prev->hs->n || strcmp(prev->hs->eps[j].name, hs->eps[i].name) != 0)
                for (j = 0; j < prev->hs->n; j++)
                    if (strcmp(prev->hs->eps[j].name, hs->eps[i].name) == 0)
                        break;
            if (j < prev->hs->n) {
                lb->st[i].ewma_us = prev->st[j].ewma_us;
                lb->st[i].ewma_stamp_us = prev->st[j].ewma_stamp_us;
            }
        }
    }
    return lb;
}

weft_lb *weft_lb_ref(weft_lb *lb) {
    lb->refs++;
    return lb;
}

void weft_lb_unref(weft_lb *lb) {
    if (!lb || --lb->refs > 0)
        return;
    weft_lb_destroy(lb);
    free(lb);
}
