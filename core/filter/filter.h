/* filter.h (core): the filter runtime. Loads filter .so files (dlopen,
 * RTLD_LOCAL, ABI check), builds one chain per listener per snapshot, and
 * owns the lifetimes the SDK promises: config (per snapshot), worker (per
 * worker per snapshot), stream. Libraries are refcounted by the chains
 * that use them: a snapshot that references a changed .so loads the new
 * file beside the old one, and the old library is dlclosed when the last
 * snapshot using it is freed. */
#ifndef WEFT_FILTER_RUNTIME_H
#define WEFT_FILTER_RUNTIME_H

#include <stdatomic.h>
#include <sys/types.h>

#include "config/config.h"
#include "stats/stats.h"
#include <weft/filter.h>

typedef struct weft_filter_lib {
    char *path; /* resolved absolute path */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime; /* identity of the file when it was copied */
    void *dl;              /* dlopen handle */
    int fd;                /* the private copy (a sealed memfd, or an unlinked file from a
                              private directory), open while loaded: dlopen's name is
                              /proc/self/fd/<fd> */
    const weft_filter_descriptor *desc;
    _Atomic int refs;
    bool retired; /* replaced on disk: not reused by new snapshots */
    struct weft_filter_lib *next;
} weft_filter_lib;

/* One filter of a chain (per snapshot, shared read-only by workers). */
typedef struct weft_filter_inst {
    weft_filter_lib *lib;
    const weft_http_filter_ops *http;           /* kind http: a copy sized to this core's
                                                   struct (fields a smaller, older
                                                   filter struct lacks are NULL) */
    const weft_transport_filter_ops *transport; /* kind transport: same */
    void *config;                               /* from config_create */
    weft_http_filter_ops http_ops;              /* storage behind `http` (kept next to the
                                                   instance: one cache line less per hook) */
    weft_transport_filter_ops transport_ops;    /* storage behind `transport` */
    char name[64];
    uint32_t index; /* position in its chain (http or transport) */
    /* Shared state blocks its config_create asked for (weft_shared_get):
     * one reference each, released after config_destroy. */
    struct weft_shared_entry **shared;
    size_t n_shared;
    /* Config timers (weft_config_timer_start, filter/fworker.h), main
     * thread; cancelled before config_destroy. */
    struct weft_cscope *cscope;
} weft_filter_inst;

/* The phases of the HTTP chain runner (core/http/stream_filters.c), one
 * per hook it calls. */
typedef enum weft_chain_phase_id {
    WEFT_PH_STREAM_CREATE,
    WEFT_PH_REQ_HEADERS,
    WEFT_PH_REQ_BODY,
    WEFT_PH_REQ_TRAILERS,
    WEFT_PH_RESP_HEADERS,
    WEFT_PH_RESP_BODY,
    WEFT_PH_RESP_TRAILERS,
    WEFT_PH_ATTEMPT,
    WEFT_PH_UP_REQUEST,
    WEFT_PH_COMPLETE,
    WEFT_PH_STREAM_DESTROY,
    WEFT_PH_COUNT
} weft_chain_phase_id;

/* One filter of a phase's list: the hook (cast back to the phase's type
 * before the call), the filter's chain index and its position along the
 * phase's direction (request phases: the index; response phases: n-1-index). */
typedef struct weft_chain_step {
    void (*fn)(void);
    uint32_t idx;
    uint32_t pos;
    bool attempt_1_0; /* WEFT_PH_ATTEMPT: a filter built against 1.0 (its smaller
                         weft_attempt_info) */
} weft_chain_step;

/* The filters that have a phase's hook, in the order the phase runs them
 * (built once per chain by weft_filter_chain_index: the runner never
 * visits a filter without the hook). from[pos] (n_http + 1 entries) is the
 * first step at direction position >= pos: a pass that starts (or
 * resumes) at a position begins there. */
typedef struct weft_chain_phase {
    const weft_chain_step *steps;
    uint32_t n;
    const uint32_t *from;
} weft_chain_phase;

typedef struct weft_filter_chain {
    weft_filter_inst *http; /* request order */
    size_t n_http;
    weft_filter_inst *transport;
    size_t n_transport;
    bool any_req_body, any_resp_body; /* some filter has a body hook */
    bool any_req_trailers, any_resp_trailers;
    bool any_up_request;                   /* some filter has on_upstream_request (1.1) */
    weft_chain_phase phase[WEFT_PH_COUNT]; /* per-phase lists (weft_filter_chain_index) */
    void **no_ctx;   /* n_http NULL stream contexts, never written: the contexts of
                        every stream when no filter has on_stream_create */
    void *phase_mem; /* their one allocation (phase lists and no_ctx) */
} weft_filter_chain;

/* Builds the chain's per-phase lists from its HTTP filters' ops (done by
 * weft_filter_chain_build; a chain put together by hand, as the stream
 * harness does, calls it once its instances are set). 0, or -1 out of
 * memory. */
int weft_filter_chain_index(weft_filter_chain *chain);

/* Builds the chain of cfg->listeners[li]. On error writes one line
 * "file:line:col: message" (or "<path>: ...") into err and returns -1. */
int weft_filter_chain_build(weft_filter_chain *chain, const weft_config *cfg, size_t li,
                            const char *listener_name, char *err, size_t errlen);
/* The same for cfg->clusters[ci].transport_filters (transport filters with
 * an upstream side only). */
int weft_filter_chain_build_cluster(weft_filter_chain *chain, const weft_config *cfg, size_t ci,
                                    char *err, size_t errlen);
void weft_filter_chain_destroy(weft_filter_chain *chain);

/* Per-route filter configs (routes' `filter_config:`): calls each named
 * HTTP filter's route_config_create and stores the results in the route
 * entries (weft_route_entry.filter_cfg, by chain position). After the
 * chain is built; on error writes "file:line:col: filter "name": msg"
 * and returns -1 (what was created stays for _destroy). _destroy runs
 * route_config_destroy for each, and must come BEFORE the chain's
 * destroy (the filters' config_destroy). */
typedef struct weft_router weft_router;
int weft_filter_route_configs_build(weft_filter_chain *chain, weft_router *router,
                                    const weft_config *cfg, size_t li, const char *listener_name,
                                    char *err, size_t errlen);
void weft_filter_route_configs_destroy(weft_filter_chain *chain, weft_router *router);

/* Library references, held by chains and by shared state blocks whose
 * destroy callback is the library's code. Unref on the main thread. */
void weft_filter_lib_ref(weft_filter_lib *lib);
void weft_filter_lib_unref(weft_filter_lib *lib);

/* The clusters of the snapshot being built, for weft_cluster_get in
 * config_create (set by weft_snapshot_build around the chain builds,
 * NULL after). Main thread. */
struct weft_cluster_snap;
void weft_filter_setup_clusters(struct weft_cluster_snap *clusters, size_t n);

/* The host API table handed to every filter. */
const weft_host_api *weft_filter_host_api(void);

/* For tests: the directories searched for bundled filters, after the
 * config's filter_path: $WEFT_FILTER_PATH (colon-separated), then
 * <dir of the weft binary>/../filters and <...>/../lib/weft/filters. */
int weft_filter_resolve(const weft_config *cfg, const weft_cfg_filter *f, char *out, size_t outlen);

#endif
