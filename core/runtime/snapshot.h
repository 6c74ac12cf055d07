/* snapshot.h: an immutable, reference-counted view of everything the
 * request path reads: the config, the compiled routers, the clusters'
 * shared state and the stats ids. Made on the main thread (startup,
 * SIGHUP) in two steps: build (pure: validate, compile the routers,
 * create the filter configs; their stats are staged) and commit (open the
 * access log, register the stats). Only a committed snapshot goes to the
 * workers. Streams that began on a snapshot finish on it; when the last
 * reference goes, the snapshot (filter config_destroy, dlclose included)
 * is freed on the main thread. */
#ifndef WEFT_RUNTIME_SNAPSHOT_H
#define WEFT_RUNTIME_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>

#include "config/config.h"
#include "filter/filter.h"
#include "router/router.h"
#include "stats/stats.h"
#include "upstream/hostset.h"

/* Status classes used in stats labels: 1xx..5xx. */
#define WEFT_CODE_CLASSES 5

typedef struct weft_listener_snap {
    const weft_cfg_listener *cfg;
    uint32_t idx; /* in cfg->listeners */
    weft_router *router;
    weft_filter_chain chain;                  /* HTTP and transport filters */
    weft_stat_id rq_total[WEFT_CODE_CLASSES]; /* by status class */
    weft_stat_id rq_time;                     /* histogram */
    weft_stat_id cx_total, cx_active, cx_refused;
    weft_stat_id rq_rejected;    /* protocol errors / limits */
    weft_stat_id grpc_total[17]; /* gRPC responses by grpc-status code */
    /* tcp_proxy listeners only (cfg->is_tcp); labels listener, cluster. */
    int tcp_cluster; /* index in cfg->clusters */
    weft_stat_id tcp_cx_total, tcp_cx_active, tcp_rx_bytes, tcp_tx_bytes, tcp_connect_fail;
} weft_listener_snap;

typedef struct weft_cluster_snap {
    const weft_cfg_cluster *cfg;
    uint32_t idx;
    /* The current hostset. Replaced (DNS refresh) under `mu` with hs_gen
     * bumped; workers compare hs_gen (atomic, lock-free) per request and
     * take the mutex only when it moved. */
    pthread_mutex_t mu;
    weft_hostset *hs;
    _Atomic uint64_t hs_gen;
    weft_stat_id rq_total[WEFT_CODE_CLASSES];
    weft_stat_id rq_time;
    weft_stat_id cx_total, cx_active, cx_connect_fail, cx_connect_timeout;
    weft_stat_id rq_timeout, rq_reset, rq_no_healthy, rq_retry_stale, rq_retry_connect,
        rq_retry_reset;
    weft_stat_id rq_per_try_timeout, rq_retry_filter, rq_retry_backoff; /* SDK 1.1 retries */
    weft_stat_id pool_idle, healthy_endpoints, hc_success, hc_failure;
    weft_stat_id callout_detached_sent, callout_detached_failed; /* SDK 1.1 detached callouts */
    /* transport_filters: on every upstream connection of the cluster (the
     * pools key such connections by snapshot version and cluster, so none
     * is shared with another cluster or config) */
    weft_filter_chain tchain;
    struct weft_snapshot *snap; /* the snapshot this is part of */
} weft_cluster_snap;

typedef struct weft_snapshot {
    _Atomic int refs;
    uint64_t version;              /* 1, 2, ... per successful load */
    weft_config *cfg;              /* owned */
    weft_listener_snap *listeners; /* cfg->n_listeners */
    weft_cluster_snap *clusters;   /* cfg->n_clusters */
    int access_log_fd;             /* -1 = off; owned unless stdout (commit) */
    weft_stat_id rq_local_reply;
    bool staged;                     /* built, stats stage open: commit or discard it */
    bool committed;                  /* stats registered, access log open */
    struct weft_snapshot *reap_next; /* waiting for the main thread */
} weft_snapshot;

/* Builds from a loaded config (takes ownership of cfg even on failure).
 * `prev` (may be NULL) lends hostsets and health state of clusters whose
 * name and endpoints are unchanged. NULL + err on failure. No side effects
 * survive a failure: no file, no socket, no stat series. On success the
 * stats stage (weft_stats_stage_begin) stays open: call commit or discard
 * before anything else registers stats. */
weft_snapshot *weft_snapshot_build(weft_config *cfg, const weft_snapshot *prev, uint64_t version,
                                   char *err, size_t errlen);
/* Opens the access log, then registers the stats (this part cannot fail)
 * and keeps the staged ones. -1 + err when the access log cannot be
 * opened: nothing was changed; discard the snapshot. Main thread. */
int weft_snapshot_commit(weft_snapshot *s, char *err, size_t errlen);
/* Drops a built snapshot that will not be committed: the stats it staged
 * are forgotten when it is freed (so does the last unref of a snapshot
 * that was never committed). */
void weft_snapshot_discard(weft_snapshot *s);
void weft_snapshot_ref(weft_snapshot *s);
/* Any thread. When the last reference goes on another thread than the
 * reaper's (the main thread), the free is queued for the main loop. */
void weft_snapshot_unref(weft_snapshot *s);

/* Makes the calling thread (the main thread) the one that frees
 * snapshots: an eventfd on main_base wakes it for those released by
 * workers. Without a reaper (tests, --validate) unref frees at once. */
struct event_base;
int weft_snapshot_reaper_start(struct event_base *main_base);
/* Frees every queued snapshot and stops queueing. Call after the workers
 * are joined. */
void weft_snapshot_reaper_stop(void);

/* Returns a referenced hostset of the cluster (caller unrefs). */
weft_hostset *weft_cluster_snap_hostset(weft_cluster_snap *c, uint64_t *gen_out);
/* Publishes a new hostset (takes the caller's reference). Main thread. */
void weft_cluster_snap_publish(weft_cluster_snap *c, weft_hostset *hs);

/* Sets the cluster's weft_upstream_endpoints_healthy gauge from its
 * current hostset. Main thread. */
void weft_cluster_snap_update_health_gauge(weft_cluster_snap *c);

static inline int weft_code_class(uint16_t status) {
    int c = status / 100 - 1;
    return c < 0 ? 0 : c > 4 ? 4 : c;
}

#endif
