/* callout.h (core): HTTP requests filters make to a named cluster
 * (weft_callout_start, weft_callout_start2, weft_worker_callout_start).
 * A callout is one request to an endpoint the cluster's load balancer
 * picked (attempt start/end balanced), served by the upstream pools as a
 * weft_up_user (an HTTP/1.1 pooled connection, or an HTTP/2 stream for
 * an http2 cluster), with the stream's connect retry. Scopes: a stream and its filter
 * (dropped when the stream ends), a filter worker context (dropped before
 * its worker_destroy), or none (DETACHED: the worker's until it ends; it
 * holds its snapshot). Every callout of a worker is on one list
 * (w->callouts) and counts against the worker's cap together with the TCP
 * callouts (callouts.max_per_worker). Handles live in the worker's handle
 * table (filter/handles.h). Completion runs from a deferred event, never
 * inside a host call or a connection callback. Worker thread only. */
#ifndef WEFT_FILTER_CALLOUT_H
#define WEFT_FILTER_CALLOUT_H

#include <stdbool.h>

#include <weft/filter.h>

struct weft_fworker;
struct weft_wsnap;
struct weft_worker;
struct weft_config;

/* The defaults when the config says nothing (a config built in code). */
#define WEFT_CALLOUTS_PER_WORKER 1024u
#define WEFT_CALLOUT_MAX_BODY (1024 * 1024)
#define WEFT_CALLOUT_TIMEOUT_MS 5000u

/* Where a callout belongs and reports. */
typedef struct weft_callout_scope {
    struct weft_worker *w;
    struct weft_wsnap *ws;   /* the caller's snapshot state (clusters, limits) */
    weft_stream *s;          /* stream scope (its filter: s->running), else NULL */
    struct weft_fworker *fw; /* worker scope, else NULL */
} weft_callout_scope;

/* Starts a callout (arguments checked by the host call, except the
 * cluster and the caps). cb for a stream, wcb for a worker scope, neither
 * for DETACHED. */
weft_result weft_callout_begin(const weft_callout_scope *sc, const weft_callout_request *req,
                               weft_callout_cb cb, weft_worker_callout_cb wcb, void *arg,
                               weft_callout **out);
/* Cancels a callout of that scope (no callback). WEFT_ERR_NOT_FOUND: not
 * a live callout of it. */
weft_result weft_callout_cancel_in(weft_stream *s, struct weft_fworker *fw, weft_callout *h);
/* Whether the worker's callouts (HTTP and TCP) reached the cap of cfg. */
bool weft_callouts_worker_full(const struct weft_worker *w, const struct weft_config *cfg);
/* Stream end: drops the stream's callouts (no callbacks). */
void weft_callouts_stream_end(weft_stream *s);
/* A worker snapshot goes: drops the callouts of its filter worker
 * contexts (before their worker_destroy), no callbacks. */
void weft_callouts_wsnap_end(struct weft_wsnap *ws);
/* Worker stop (before the upstream pools go): frees every callout left,
 * no callbacks. */
void weft_callouts_free_all(struct weft_worker *w);

#endif
