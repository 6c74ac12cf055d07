/* router.h: virtual-host and route matching for one listener, compiled
 * from the listener's config (regexes compiled once). A router is owned by
 * the snapshot and read-only after build: all workers share it. */
#ifndef WEFT_ROUTER_H
#define WEFT_ROUTER_H

#include "config/config.h"
#include "http/message.h"

typedef struct weft_router weft_router;

/* A matched route: the config plus what build resolved. */
typedef struct weft_route_entry {
    const weft_cfg_route *cfg;
    const weft_cfg_vhost *vhost;
    int cluster_idx; /* index into cfg->clusters, -1 unless ACTION_CLUSTER */
    uint32_t index;  /* route's ordinal inside the listener (stats) */
    /* Per-route filter configs (`filter_config:`), indexed by HTTP chain
     * position: what each filter's route_config_create returned, NULL for
     * none. NULL when the route has none at all. Built and freed by the
     * filter runtime (weft_filter_route_configs_build) with the snapshot. */
    void **filter_cfg;
} weft_route_entry;

/* Builds the router of cfg->listeners[listener_idx]. On error (bad regex,
 * unknown cluster) returns NULL and writes "file:line:col: message". */
weft_router *weft_router_build(const weft_config *cfg, size_t listener_idx, char *err,
                               size_t errlen);
void weft_router_free(weft_router *r);

/* Every route of the router, in listener order (entry->index == i), for
 * the snapshot build to attach per-route filter configs. */
size_t weft_router_n_routes(const weft_router *r);
weft_route_entry *weft_router_route_at(weft_router *r, size_t i);

/* Picks the virtual host by req->authority (port stripped, case-insensitive):
 * exact domains first, then the longest "*.suffix" match, then "*"; then the
 * first route of that vhost whose path, method, headers and query match.
 * Returns NULL when nothing matches (-> 404 route_not_found). */
const weft_route_entry *weft_router_match(const weft_router *r, const weft_req_head *req);

/* The upstream request-target after prefix_rewrite (query kept). Writes a
 * view into `a` or the original target when there is no rewrite. */
weft_sv weft_route_rewrite_target(const weft_route_entry *e, const weft_req_head *req,
                                  weft_arena *a);
/* The Location of a redirect route, built from the request. `scheme` is
 * "http" or "https" (what the downstream used). */
weft_sv weft_route_redirect_location(const weft_route_entry *e, const weft_req_head *req,
                                     const char *scheme, weft_arena *a);

#endif
