/* weft/filtertest.h: the filter authors' test kit.
 *
 * Runs ONE filter against a synthetic stream, without a proxy: the kit is
 * the filter's host (it implements every function of weft_host_api), so a
 * cmocka test drives the hooks and asserts on what the filter did.
 *
 *     wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof err); // linked in
 *     wft_env *env = wft_env_load("./myfilter.so", err, sizeof err);       // or dlopened
 *     wft_env_configure(env, "deny: [\"/admin\"]\n", err, sizeof err);
 *     wft_stream *st = wft_stream_new(env, "GET", "/admin",
 *                                     (const char *[]){"host: a", NULL});
 *     assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
 *     assert_true(wft_replied(st, &status, &body, &reason));
 *     wft_stream_free(st);
 *     wft_env_free(env);
 *
 * THE MODEL. The filter sits alone between a client (the test) and an
 * upstream (the test again). Events the test drives (request headers,
 * body, trailers, upstream attempts, response headers, body, trailers)
 * reach the filter's hooks in call order; what the filter lets through is
 * recorded as "forwarded" (to the upstream for the request, to the client
 * for the response) and can be asserted on. A hook returning WEFT_STOP
 * pauses that direction: later events of that direction are queued and
 * reach the filter after weft_stream_resume(). A filter paused on a body
 * hook still sees the following chunks of that body (each one is held
 * back too, until a hook returns WEFT_CONTINUE or the filter resumes).
 *
 * TIME is a fake monotonic clock per env, starting at 1 s; nothing happens
 * until wft_clock_advance(), which fires due timers (and times out
 * callouts) in deadline order.
 *
 * CALLOUTS never leave the process: they are recorded, and the test
 * answers them (wft_callout_respond / wft_callout_fail), or canned answers
 * registered with wft_callout_canned() answer them as soon as the hook
 * that started them returns.
 *
 * MISUSE of the SDK by the filter (resume when not paused, a call after the
 * stream completed, a bad handle, a hook returning WEFT_REPLIED without a
 * reply, ...) gets the error the core returns and one line in the env's
 * misuse record (wft_misuse_count, wft_misuse_last), so a test can assert
 * that a filter behaves.
 *
 * THREAD: one env and its streams belong to the thread that created the
 * env (as a worker owns its streams); host calls from another thread get
 * WEFT_ERR_THREAD. Several envs may live side by side.
 *
 * Strings returned by the kit are NUL-terminated and owned by the kit;
 * they stay valid until the stream (or env) is freed unless said otherwise.
 *
 * Depends on libc, libyaml and weft/filter.h only. */
#ifndef WEFT_FILTERTEST_H
#define WEFT_FILTERTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <weft/filter.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wft_env wft_env;
typedef struct wft_stream wft_stream;
typedef struct wft_conn wft_conn;

/* Driver results besides the hook's own weft_status (0..2). */
enum {
    WFT_QUEUED = -1,   /* the direction is paused: the event waits for resume */
    WFT_REJECTED = -2, /* the stream cannot take this event (ended, replied,
                          out of order); wft_env_error() says why */
};

/* ------------------------------------------------------------------ */
/* Environment: one filter, its config, stats, clock                   */
/* ------------------------------------------------------------------ */

/* Calls `entry` (a filter linked into the test: pass weft_filter_entry_v1)
 * with the kit's host table and checks the descriptor like the core does:
 * another ABI major, a newer minor, a bad name, kind or ops table are
 * refused. Returns NULL and writes one line into err on refusal. */
wft_env *wft_env_new(weft_filter_entry_fn entry, char *err, size_t errlen);
/* dlopens a filter .so (RTLD_NOW | RTLD_LOCAL) and does the same. */
wft_env *wft_env_load(const char *so_path, char *err, size_t errlen);
/* The same as seen by a host of an older ABI minor (host_minor 0: ABI
 * 1.0, 1: ABI 1.1): the filter gets a host table cut at that minor's size
 * (size and abi_minor say so; WEFT_HOST_HAS is false for newer functions;
 * on a 1.1 host weft_stream_info ends before route_config:
 * WEFT_STREAM_INFO_HAS is false) and a descriptor asking for a newer
 * minor is refused as that host would.
 * host_minor == WEFT_ABI_MINOR is wft_env_new / wft_env_load. */
wft_env *wft_env_new_abi(weft_filter_entry_fn entry, unsigned host_minor, char *err, size_t errlen);
wft_env *wft_env_load_abi(const char *so_path, unsigned host_minor, char *err, size_t errlen);
/* Streams still alive are freed first; the config and library go last. */
void wft_env_free(wft_env *env);

const weft_filter_descriptor *wft_env_descriptor(const wft_env *env);
/* The last error of a kit call that failed (refusals, WFT_REJECTED), "". */
const char *wft_env_error(const wft_env *env);

/* Parses `yaml` (the filter's config node, as it appears under the
 * filter's `config:` key; NULL or "" for none) and runs config_create,
 * then worker_create. Errors, one line in err, return -1:
 *   "filter-config:LINE:COL: invalid YAML: ..."   (the YAML itself)
 *   "filter-config:LINE:COL: <message>"           (the filter's config_fail)
 * Configuring again replaces the config (stats keep their values, as
 * across the core's snapshots). Streams must be freed before. A stream
 * created without configuring configures with no node. */
int wft_env_configure(wft_env *env, const char *yaml, char *err, size_t errlen);
/* The same from a file: errors name the file, config_filter_dir is its
 * directory. */
int wft_env_configure_file(wft_env *env, const char *path, char *err, size_t errlen);
/* The filter's config object (what config_create returned). */
void *wft_env_config(const wft_env *env);
/* Directory returned by config_filter_dir for wft_env_configure ("."). */
void wft_env_set_config_dir(wft_env *env, const char *dir);

/* Declares a cluster of the (imaginary) proxy config. Once one is
 * declared, route_set_cluster and callout_start to any other name return
 * WEFT_ERR_NOT_FOUND, as the core does for unknown clusters; with none
 * declared every name is accepted. */
int wft_env_add_cluster(wft_env *env, const char *name);

/* ---- routes (ABI 1.1 routing) ----
 * The routes of the imaginary proxy config, in match order. A stream
 * matches the first route whose path_prefix starts its path (query
 * ignored; NULL or "" matches every path) when it is created, before the
 * filter's stream_create (the core matches before the chain);
 * weft_route_refresh re-runs that match on the path as the filter left it
 * (allowed until the request headers went past the filter, then
 * WEFT_ERR_STATE, as in the core). weft_route_info reports the route's
 * name, vhost (a name only: virtual hosts, methods, header and query
 * matches are not modelled) and cluster (route_set_cluster's override
 * first). With no route declared a stream has no route.
 * filter_config_yaml is the node under the route's
 * `filter_config: {<filter>: ...}` for the filter under test (NULL: none):
 * route_config_create runs now, as the core runs it at snapshot build;
 * weft_route_config returns its result to the filter on streams of that
 * route. Errors, one line in err, return -1: "route-config:LINE:COL:
 * invalid YAML: ...", "route-config:LINE:COL: <message>" (the filter's
 * config_fail), a filter without route_config_create given a config, a
 * duplicate route name, live streams. The env must be configured first
 * (it configures with no node if not); configuring again drops the routes
 * (route_config_destroy runs for each, before config_destroy). */
int wft_env_add_route(wft_env *env, const char *name, const char *vhost, const char *cluster,
                      const char *path_prefix, const char *filter_config_yaml, char *err,
                      size_t errlen);
/* Pins the route a stream sees to a declared one (NULL: no route), before
 * the first event. -1 for an unknown name. */
int wft_stream_set_route(wft_stream *st, const char *name);
/* The name of the route the stream sees now (NULL: none). */
const char *wft_stream_route(wft_stream *st);

/* ---- clock ---- */
uint64_t wft_clock_now_us(const wft_env *env);
/* Moves the clock forward, firing due timers and callout timeouts of all
 * the env's streams in deadline order (each at its own deadline). */
void wft_clock_advance(wft_env *env, uint64_t ms);
void wft_clock_advance_us(wft_env *env, uint64_t us);

/* ---- stats (declared by the filter at config time) ---- */
bool wft_stat_exists(const wft_env *env, const char *name);
/* Counter value; for a histogram its number of samples; for a gauge its
 * value (0 when negative). 0 for an unknown name. */
uint64_t wft_stat(const wft_env *env, const char *name);
int64_t wft_gauge(const wft_env *env, const char *name);
/* Histogram samples: count and sum (microseconds). false if not one. */
bool wft_histogram(const wft_env *env, const char *name, uint64_t *count, uint64_t *sum_us);
/* The help text the filter declared, NULL for an unknown name. */
const char *wft_stat_help(const wft_env *env, const char *name);
/* Labelled families (ABI 1.1, weft_stat_family), by the family's name as
 * declared ("requests_total"). A series is named by its label values, in
 * the declared order, then NULL: wft_stat_series_value(env,
 * "requests_total", "GET", "2xx", NULL). Values "__overflow__" for every
 * label name the overflow series once it took an update. Value: counter
 * value, histogram sample count, gauge value (0 when negative); 0 when
 * there is no such series. */
uint64_t wft_stat_series_value(const wft_env *env, const char *name, ...);
int64_t wft_stat_series_gauge(const wft_env *env, const char *name, ...);
bool wft_stat_series_exists(const wft_env *env, const char *name, ...);
/* Series handles (ABI 1.2, weft_stat_family_series / weft_stat_series_*)
 * count into the same series and read the same way: a resolved series
 * exists from the resolve on, at 0 (wft_stat_series_exists), and counts
 * in wft_stat_family_series; a handle past max_series (or for a value
 * above WEFT_STAT_LABEL_VALUE_MAX) names the overflow series, and each of
 * its updates counts in wft_stat_family_overflow. An update through a
 * handle of another kind than the call is a misuse line (wft_misuse_*),
 * nothing counted. */
/* Series made so far (the overflow series not counted). */
size_t wft_stat_family_series(const wft_env *env, const char *name);
/* Updates folded into the overflow series (weft's <name>_overflow_total). */
uint64_t wft_stat_family_overflow(const wft_env *env, const char *name);

/* ---- log ---- */
/* Lowest level weft_log_enabled() reports (default DEBUG: all enabled). */
void wft_log_set_level(wft_env *env, weft_log_level_t level);
/* Also print each line to stderr (default off; or WEFT_FILTERTEST_LOG=1). */
void wft_log_set_stderr(wft_env *env, bool on);
size_t wft_log_count(const wft_env *env);
/* The i-th line the filter logged ("" past the end), and its level. */
const char *wft_log_line(const wft_env *env, size_t i, weft_log_level_t *level);
/* true if some logged line contains `needle`. */
bool wft_log_contains(const wft_env *env, const char *needle);
/* The filter's name in the (imaginary) listener's filters list, which
 * weft_logf / weft_setup_logf lines carry ("<name>: <message>" in the
 * kit's record). Default: the descriptor's name. 0, or -1 (NULL/empty). */
int wft_env_set_filter_name(wft_env *env, const char *name);

/* ---- misuse record ---- */
size_t wft_misuse_count(const wft_env *env);
const char *wft_misuse_last(const wft_env *env); /* "" when none */

/* ---- callouts answered automatically ---- */
/* Every callout to `cluster` whose path starts with `path_prefix` (NULL
 * or "" matches all) gets this answer once the hook that started it
 * returns. headers: "name: value" strings, NULL-terminated (or NULL).
 * Later registrations win over earlier ones. */
int wft_callout_canned(wft_env *env, const char *cluster, const char *path_prefix, int status,
                       const char *const *headers, const char *body);
/* The same, answering as a failure ("connect_failure", "timeout", ...). */
int wft_callout_canned_fail(wft_env *env, const char *cluster, const char *path_prefix,
                            const char *reason);

/* ---- SDK 1.1 state: shared state, clusters and endpoints ----
 * Shared state (weft_shared_get) is kept per env: configuring the env
 * again (wft_env_configure*, the kit's reload) gives a config asking for
 * the same key, size and version the same block, contents kept; another
 * size or version a new zeroed block; a block no config holds any more is
 * destroyed (its destroy callback runs) after the old config_destroy.
 * Number of live shared blocks: */
size_t wft_shared_blocks(const wft_env *env);
/* Endpoints of a cluster (declared too, as wft_env_add_cluster does), as
 * weft_cluster_endpoint_* see them: address "ip:port" (the identity),
 * weight (0 means 1), healthy, no locality, no labels. -1 for a duplicate
 * address. Indexes follow the order of declaration. */
int wft_env_add_endpoint(wft_env *env, const char *cluster, const char *address, uint32_t weight);
int wft_env_remove_endpoint(wft_env *env, const char *cluster, const char *address);
int wft_env_endpoint_set_locality(wft_env *env, const char *cluster, const char *address,
                                  const char *region, const char *zone, const char *subzone);
int wft_env_endpoint_add_label(wft_env *env, const char *cluster, const char *address,
                               const char *key, const char *value);
/* Active health as a health checker would set it (default healthy). */
int wft_env_endpoint_set_healthy(wft_env *env, const char *cluster, const char *address,
                                 bool healthy);
/* Ejection time left in ms on the env's clock (0: not ejected), and a
 * counter slot, as filters left them. */
uint64_t wft_endpoint_ejected_ms(wft_env *env, const char *cluster, const char *address);
uint64_t wft_endpoint_counter(wft_env *env, const char *cluster, const char *address,
                              uint32_t slot);
/* The kit's load balancer: round robin over the healthy endpoints that are
 * not ejected; when every healthy endpoint is ejected, over all healthy
 * ones (weft's panic mode). Weights are not simulated. NULL when no
 * endpoint is healthy. */
const char *wft_env_pick_endpoint(wft_env *env, const char *cluster);

/* ---- SDK 1.1 worker handles, worker and config timers ----
 * The env is one worker and the main thread at once. The filter's worker
 * handle (weft_worker_current) lives from just before worker_create to
 * just after worker_destroy (configuring again or freeing the env ends
 * it: worker timers are cancelled before worker_destroy, without their
 * callbacks, config timers before config_destroy); inside config_create
 * weft_worker_current returns NULL, as on weft's main thread. Worker and
 * config timers fire on the env's clock (wft_clock_advance), in deadline
 * order with stream and connection timers. The env's worker handle (NULL
 * when none): */
weft_worker *wft_env_worker(wft_env *env);
/* Worker / config timers armed now (not fired, not cancelled). */
size_t wft_worker_timers_pending(wft_env *env);
size_t wft_config_timers_pending(wft_env *env);

/* ------------------------------------------------------------------ */
/* Streams (HTTP filters)                                              */
/* ------------------------------------------------------------------ */

/* A request "METHOD path?query" with headers given as "name: value"
 * strings, NULL-terminated (NULL for none). Names are stored lower-case.
 * ":authority: x" sets the authority (else the host header does); other
 * pseudo-headers are ignored. The filter's stream_create runs with the
 * first event, so connection facts can be set in between. */
wft_stream *wft_stream_new(wft_env *env, const char *method, const char *path,
                           const char *const *headers);
/* Completes the stream if the test did not (on_stream_complete with the
 * facts so far), then stream_destroy. */
void wft_stream_free(wft_stream *st);

/* Connection facts, before the first event. Defaults: peer 127.0.0.1:40000,
 * local 127.0.0.1:15006, no TLS, no peer identity. */
void wft_stream_set_peer(wft_stream *st, const char *ip, uint16_t port);
void wft_stream_set_local(wft_stream *st, const char *ip, uint16_t port);
void wft_stream_set_tls(wft_stream *st, bool tls);
void wft_stream_set_peer_identity(wft_stream *st, const char *spiffe_id); /* NULL: none */
/* ABI 1.1: the SNI a transport filter's handshake reported (NULL: none,
 * weft_conn_sni gives NOT_FOUND) and the original destination (default:
 * the local address, as weft reports it when the connection was not
 * redirected). */
void wft_stream_set_sni(wft_stream *st, const char *sni);
void wft_stream_set_original_dst(wft_stream *st, const char *ip, uint16_t port);
/* Metadata as an earlier filter would have set it. */
void wft_metadata_put(wft_stream *st, const char *key, const char *value);

/* ---- driving the filter. Each returns the hook's weft_status, WEFT_CONTINUE
 * when the filter has no such hook, WFT_QUEUED or WFT_REJECTED. ---- */
int wft_request_headers(wft_stream *st, bool end_stream);
int wft_request_body(wft_stream *st, const void *data, size_t len, bool end_stream);
/* headers: "name: value", NULL-terminated; ends the request. */
int wft_request_trailers(wft_stream *st, const char *const *trailers);
/* One upstream attempt's outcome (on_upstream_attempt); status for
 * WEFT_ATTEMPT_RESPONSE. host/cluster may be NULL ("10.0.0.1:8080",
 * "default"). Returns 0, or WFT_REJECTED. */
/* weft's own local reply (404 route_not_found, 503 no_healthy_upstream,
 * 504 upstream_response_timeout, the idle timeout's 408/504...): as the
 * core, it runs through the filter's response hooks if the request reached
 * the filter (wft_request_headers ran; the filter may STOP on it and
 * resume), or replaces a response whose headers the filter holds (no hook
 * runs again). Body "<reason>\n", x-weft-reason: <reason>; gRPC requests
 * get the Trailers-Only shape. 0, or WFT_REJECTED (completed, answered,
 * the response head went out: the core would reset the stream). */
int wft_local_reply(wft_stream *st, int status, const char *reason);
int wft_upstream_attempt(wft_stream *st, weft_attempt_result result, int status, const char *host,
                         const char *cluster, uint64_t duration_us);
/* ABI 1.1 attempts. wft_upstream_request starts the next attempt as weft
 * does before writing its request head: on_upstream_request(attempt =
 * attempts so far + 1) on a copy of the request headers (read it with
 * wft_attempt_header), then the filter's per-try timeout starts on the
 * fake clock: wft_clock_advance past it reports WEFT_ATTEMPT_TIMEOUT with
 * WEFT_ATTEMPT_F_PER_TRY_TIMEOUT to on_upstream_attempt (counted by
 * wft_try_timeouts; weft would then answer 504 upstream_per_try_timeout
 * unless the filter retried: the kit leaves that to the test).
 * wft_upstream_attempt reports the attempt in flight (it starts one first
 * when none is). After a retry with a delay, starting an attempt is
 * WFT_REJECTED until the clock has passed the delay; the attempt then
 * reports the time waited (backoff_us). Returns 0 or WFT_REJECTED. */
int wft_upstream_request(wft_stream *st);
/* A header of the last attempt's upstream request (NULL if absent). */
const char *wft_attempt_header(wft_stream *st, const char *name);
/* The endpoint the following attempts go to: index (-1: none), locality
 * (NULL: ""), labels "key=value" NULL-terminated (NULL: none). Default:
 * endpoint 0 without locality or labels. An attempt reported on an index
 * (0..63) an earlier attempt used gets WEFT_ATTEMPT_F_ENDPOINT_TRIED; one
 * started by a retry asking WEFT_RETRY_OTHER_ENDPOINT gets
 * WEFT_ATTEMPT_F_OTHER_ENDPOINT (the test picks the endpoint: assert the
 * filter's wish with wft_retry_options). 0 or WFT_REJECTED. */
int wft_upstream_endpoint(wft_stream *st, int32_t index, const char *region, const char *zone,
                          const char *subzone, const char *const *labels);
/* The options of the last accepted retry (false if none): delay and
 * WEFT_RETRY_* flags (0 and 0 for weft_upstream_retry). */
bool wft_retry_options(wft_stream *st, uint64_t *delay_ms, uint32_t *flags);
/* When (fake clock, us) the waiting delayed retry may start; 0 if none waits. */
uint64_t wft_retry_due_us(wft_stream *st);
/* The per-try timeout the filter set (ms, 0 none); per-try timeouts fired. */
uint64_t wft_try_timeout(wft_stream *st);
unsigned wft_try_timeouts(wft_stream *st);
int wft_response_headers(wft_stream *st, int status, const char *const *headers, bool end_stream);
int wft_response_body(wft_stream *st, const void *data, size_t len, bool end_stream);
int wft_response_trailers(wft_stream *st, const char *const *trailers);
/* The log phase: on_stream_complete once, with status, durations (fake
 * clock), byte counts, attempts; flags NULL means "-". Timers and callouts
 * still pending are cancelled. Returns 0, or WFT_REJECTED (twice). */
int wft_complete(wft_stream *st, const char *response_flags);

/* ---- assertions ---- */
/* The index-th value of `name` in a map, NULL if absent. */
const char *wft_header(wft_stream *st, weft_header_map map, const char *name);
const char *wft_header_nth(wft_stream *st, weft_header_map map, const char *name, size_t index);
size_t wft_header_count(wft_stream *st, weft_header_map map, const char *name);
/* All entries of a map, in order: number of entries; name/value of i. */
size_t wft_header_size(wft_stream *st, weft_header_map map);
bool wft_header_at(wft_stream *st, weft_header_map map, size_t i, const char **name,
                   const char **value);
/* Request line as the filter left it. */
const char *wft_request_path(wft_stream *st); /* path?query */
const char *wft_request_method(wft_stream *st);
/* Response status as the filter left it (0 before a response). */
int wft_response_status(wft_stream *st);

/* true if the filter (or wft_local_reply) sent a local reply. status is the
 * status on the wire as the filter's response hooks left it (200 for a gRPC
 * request), body is the body the reply was made with (what the hooks
 * forwarded: wft_forwarded_body(st, WEFT_RESPONSE_BODY)), reason the
 * x-weft-reason detail. Any out-parameter may be NULL. */
bool wft_replied(wft_stream *st, int *status, const char **body, const char **reason);
/* The status the filter asked for (before gRPC mapping), 0 if no reply. */
int wft_reply_http_status(wft_stream *st);

/* Pause state: either direction paused. */
bool wft_paused(wft_stream *st);
bool wft_paused_dir(wft_stream *st, weft_body_dir dir);
/* Successful weft_stream_resume() calls. */
unsigned wft_resume_count(wft_stream *st);
/* Owned pauses (ABI 1.1): plays ANOTHER filter of the chain, named
 * other_filter, calling weft_stream_resume(s) from its timer or callout
 * callback. As in weft, a pause belongs to the filter that made it (the
 * kit's filter; test code calling weft_stream_resume acts for that
 * filter): returns WEFT_ERR_STATE, leaves the stream paused and records
 * the misuse line weft logs, naming both filters. Not paused:
 * WEFT_ERR_STATE ("not paused"). Resume tokens work from test code as
 * from any callback: weft_stream_resume_token(handle, token). */
weft_result wft_stream_resume_as(wft_stream *st, const char *other_filter);
bool wft_completed(wft_stream *st);

/* What went past the filter: body bytes (NUL-terminated copy view), and
 * whether headers / the end of the direction were forwarded. */
const char *wft_forwarded_body(wft_stream *st, weft_body_dir dir, size_t *len);
bool wft_forwarded_headers(wft_stream *st, weft_body_dir dir);
bool wft_forwarded_end(wft_stream *st, weft_body_dir dir);
/* Held back by a WEFT_STOP on a body hook, not yet forwarded. */
size_t wft_held_body_length(wft_stream *st, weft_body_dir dir);

/* route_set_cluster's choice (NULL if none), retries requested, the
 * replay limit asked by body_buffer_for_replay (0 if none). */
const char *wft_cluster(wft_stream *st);
unsigned wft_retry_count(wft_stream *st);
size_t wft_replay_limit(wft_stream *st);
/* Per-stream metadata as filters left it (NULL if absent, or not a string). */
const char *wft_metadata(wft_stream *st, const char *key);
/* Typed metadata (weft_metadata_set_int / _bytes): false if absent or of
 * another type. The bytes view lives until the key changes or the stream
 * is freed. */
bool wft_metadata_int(wft_stream *st, const char *key, int64_t *value);
bool wft_metadata_bytes(wft_stream *st, const char *key, const void **data, size_t *len);
/* Typed metadata as an earlier filter would have set it. */
void wft_metadata_put_int(wft_stream *st, const char *key, int64_t value);
void wft_metadata_put_bytes(wft_stream *st, const char *key, const void *data, size_t len);
/* Timers started and not yet fired or cancelled. */
size_t wft_timers_pending(wft_stream *st);

/* ---- callouts ---- */
/* Callouts started and not yet answered, timed out or cancelled. The
 * index i below counts those, oldest first. */
size_t wft_callout_pending(wft_stream *st);
/* Total started (answered or not). */
size_t wft_callout_started(wft_stream *st);
/* What the filter asked; any out-parameter may be NULL. false if no i. */
bool wft_callout_request(wft_stream *st, size_t i, const char **cluster, const char **method,
                         const char **path, const char **body, uint64_t *timeout_ms);
/* A header of the i-th pending callout request, NULL if absent. */
const char *wft_callout_header(wft_stream *st, size_t i, const char *name);
/* Answers the i-th pending callout: its callback runs now, then the stream
 * goes on (if the filter resumed). 0, or WFT_REJECTED for no such i. */
int wft_callout_respond(wft_stream *st, size_t i, int status, const char *const *headers,
                        const char *body);
/* Fails it: status 0, reason "connect_failure", "timeout", "reset", ... */
int wft_callout_fail(wft_stream *st, size_t i, const char *reason);

/* ---- SDK 1.1 callouts: weft_callout_start2, worker-scoped, detached ----
 * As weft: timeout_ms 0 is 5 s (1.0's weft_callout_start too); a response
 * body above the request's max_response_body (0: the env's, 1 MiB by
 * default) fails the callout with reason "body_too_large" (a detached
 * one's body is discarded: no limit), more than 100 response headers with
 * reason "too_many_headers" (weft's HTTP/1.1 response parser); a stream has 8 callouts in flight
 * at most (filter_callouts; detached ones do not count), the env's worker
 * 1024 HTTP and TCP callouts of every scope (callouts.max_per_worker):
 * past them WEFT_ERR_LIMIT. A callout whose callback runs counts against
 * neither (the callback may start the next one).
 * Stream-scoped weft_callout_start2 callouts are the stream's callouts
 * above (wft_callout_*, canned answers too). Worker-scoped callouts
 * (weft_worker_callout_start) and detached ones (WEFT_CALLOUT_DETACHED,
 * from a stream or a worker) are the env's: the test answers them with
 * the calls below; index i counts the env's callouts in flight (not
 * answered, timed out, cancelled or dropped), oldest first. A
 * worker-scoped callback runs outside any stream with the worker handle
 * (weft_worker_current's); worker_destroy (configuring again, freeing the
 * env) cancels them first, without callbacks. A detached callout has no
 * callback: its stream never waits for it and may complete first; it
 * counts as sent, and as failed once it gets no response (a failure, its
 * timeout) or a 5xx. Canned answers (wft_callout_canned) apply to
 * stream-scoped callouts only. */
size_t wft_env_callout_pending(wft_env *env);
/* As wft_callout_request / wft_callout_header for the env's callout i;
 * header "host" gives the authority (the cluster's name if none was set). */
bool wft_env_callout_request(wft_env *env, size_t i, const char **cluster, const char **method,
                             const char **path, const char **body, uint64_t *timeout_ms);
const char *wft_env_callout_header(wft_env *env, size_t i, const char *name);
/* Whether the env's callout i is detached (else worker-scoped). */
bool wft_env_callout_detached(wft_env *env, size_t i);
/* Answers it (a worker-scoped one's callback runs now), or fails it
 * (status 0 with reason; a detached one: dropped, counted as failed).
 * 0, or WFT_REJECTED for no such i or a malformed header line. */
int wft_env_callout_respond(wft_env *env, size_t i, int status, const char *const *headers,
                            const char *body);
int wft_env_callout_fail(wft_env *env, size_t i, const char *reason);
/* Detached callouts to `cluster` started, and failed (weft's
 * weft_upstream_callout_detached_sent_total / _failed_total{cluster}). */
uint64_t wft_callout_detached_sent(wft_env *env, const char *cluster);
uint64_t wft_callout_detached_failed(wft_env *env, const char *cluster);
/* The proxy config's top-level callouts limits: max_per_worker (0: 1024)
 * and max_response_body (0: 1 MiB). Returns 0. */
int wft_env_set_callout_limits(wft_env *env, uint32_t max_per_worker, uint64_t max_response_body);

/* ---- raw TCP callouts (SDK 1.1, weft_tcp_callout_*) ---- */
/* The kit is the peer: every TCP callout the filter opens waits until the
 * test completes its connect, delivers bytes, reads what the filter wrote
 * and ends it. The index i counts every TCP callout of the env, in opening
 * order (closed ones included). Callbacks run inside these calls, as the
 * filter's callbacks on its stream, then the stream goes on (a resume).
 * As weft: no callback after weft_tcp_callout_close or the stream's end
 * (wft_complete), a closed or ended callout's handle is stale
 * (WEFT_ERR_HANDLE), writes past max_write_bytes not yet read by the test
 * get WEFT_ERR_LIMIT, on_data leaving max_read_bytes undrained ends it
 * (WEFT_TCP_CLOSE_OVERFLOW), a stream has 8 open at most (filter_callouts'
 * default). On the kit clock (wft_clock_advance): a connect not completed
 * within connect_timeout_ms x connect_attempts (defaults 5 s x 2, weft's
 * cluster defaults: one endpoint that never answers) ends with WEFT_TCP_CLOSE_CONNECT_TIMEOUT,
 * idle_timeout_ms without a byte either way with
 * WEFT_TCP_CLOSE_IDLE_TIMEOUT. Caps as weft's: one whose on_close runs
 * counts against neither; one closed with flush while bytes it wrote were
 * not read by the test yet (WFT_TCP_CLOSED, wft_tcp_flushed) lingers: it
 * counts against the worker's cap (callouts.max_per_worker) until
 * wft_tcp_end (the peer closes; no callback) or 5 s on the clock. */
#define WFT_TCP_CONNECTING 1  /* opened, the connect not completed yet */
#define WFT_TCP_CONNECTED 2   /* wft_tcp_connect ran */
#define WFT_TCP_CLOSING 3     /* its on_close runs now */
#define WFT_TCP_CLOSED 4      /* the filter closed it (wft_tcp_flushed: with flush) */
#define WFT_TCP_ENDED 5       /* ended by itself: on_close ran (wft_tcp_close_reason) */
#define WFT_TCP_SCOPE_ENDED 6 /* its stream ended: closed without a callback */
/* TCP callouts opened in the env so far. */
size_t wft_tcp_count(wft_env *env);
/* WFT_TCP_* of callout i, WFT_REJECTED for no such i. */
int wft_tcp_state(wft_env *env, size_t i);
/* The cluster it was opened to (NULL for no such i). */
const char *wft_tcp_cluster(wft_env *env, size_t i);
bool wft_tcp_flushed(wft_env *env, size_t i);
/* The reason on_close got (WEFT_TCP_CLOSE_*), 0 when it did not end so. */
uint32_t wft_tcp_close_reason(wft_env *env, size_t i);
/* The connect completes: on_connect runs. WFT_REJECTED unless connecting. */
int wft_tcp_connect(wft_env *env, size_t i);
/* The peer sends len bytes: appended to what on_data left undrained, then
 * on_data runs. WFT_REJECTED unless connected. */
int wft_tcp_deliver(wft_env *env, size_t i, const void *data, size_t len);
/* Bytes delivered that the filter has not drained. */
size_t wft_tcp_pending_in(wft_env *env, size_t i);
/* What the filter wrote since the last read (before the connect
 * included), taken: a malloc'd NUL-terminated copy (free it), *len its
 * length (may be NULL). NULL for no such i. */
char *wft_tcp_read(wft_env *env, size_t i, size_t *len);
/* The connection ends: on_close(reason) runs. A connecting callout ends
 * only with WEFT_TCP_CLOSE_CONNECT_FAILURE or _CONNECT_TIMEOUT, a
 * connected one with another reason; a lingering flush-closed one with
 * any reason, without a callback (its cap slot is freed). WFT_REJECTED
 * otherwise. */
int wft_tcp_end(wft_env *env, size_t i, uint32_t reason);

/* ------------------------------------------------------------------ */
/* Connections (transport filters)                                     */
/* ------------------------------------------------------------------ */

/* Runs connection_create (configuring with no node if needed). */
wft_conn *wft_conn_new(wft_env *env);
/* Runs on_close (once) and connection_destroy. */
void wft_conn_free(wft_conn *c);
/* Bytes from the network: appended to what the filter left unconsumed,
 * then on_read(in, out). Returns the hook's 0 / -1. */
int wft_conn_read(wft_conn *c, const void *data, size_t len);
/* Bytes from the codec: on_write(in, out). */
int wft_conn_write(wft_conn *c, const void *data, size_t len);
/* What the filter produced: for the codec (read side) / the network. The
 * view is valid until the next call on c. */
const char *wft_conn_to_codec(wft_conn *c, size_t *len);
const char *wft_conn_to_network(wft_conn *c, size_t *len);
/* Bytes the filter left in `in`, unconsumed (read side / write side). */
size_t wft_conn_pending_in(wft_conn *c, bool write_side);
/* What the filter told the host: NULL / false when never set. */
const char *wft_conn_alpn(wft_conn *c);
const char *wft_conn_peer_identity(wft_conn *c);
bool wft_conn_tls(wft_conn *c);
void wft_conn_close(wft_conn *c);

/* ---- ABI 1.1 transport ----
 * weft_connection_write puts bytes on the network side (wft_conn_to_network,
 * after what the filter produced earlier), as weft sends them below the
 * filter. A filter with WEFT_TRANSPORT_HANDSHAKE gets its codec bytes
 * (wft_conn_to_codec) only once it called weft_connection_handshake_done:
 * until then what on_read produced is held, as weft holds it from the
 * codec. Connection timers fire with wft_clock_advance; they are cancelled
 * when the filter asks to close and when the connection closes. After
 * weft_connection_close, wft_conn_read/wft_conn_write return -1 (weft
 * gives the filter no more bytes). Defaults: peer 127.0.0.1:40000, local
 * 127.0.0.1:15006 (upstream: peer = the endpoint). */
/* An upstream connection (the client side): runs upstream_connection_create
 * with weft_connection_info {cluster, endpoint "ip:port", alpn_offer
 * ("h2,http/1.1", default "http/1.1"), sni (default "")}. NULL (and
 * wft_env_error) when the filter has no upstream side. */
wft_conn *wft_conn_new_upstream(wft_env *env, const char *cluster, const char *endpoint,
                                const char *alpn_offer, const char *sni);
/* The filter called handshake_done (true when it has no WEFT_TRANSPORT_HANDSHAKE). */
bool wft_conn_handshake_complete(wft_conn *c);
/* Facts from handshake_done (NULL when not given). */
const char *wft_conn_sni(wft_conn *c);
const char *wft_conn_tls_version(wft_conn *c);
const char *wft_conn_cipher(wft_conn *c);
uint32_t wft_conn_handshake_flags(wft_conn *c);
/* Whether the filter asked to close (weft_connection_close), and how. */
bool wft_conn_close_asked(wft_conn *c, bool *flush);
/* Connection timers armed (not fired, not cancelled). */
size_t wft_conn_timers_pending(wft_conn *c);
/* The original destination weft_connection_get_info reports (downstream). */
void wft_conn_set_original_dst(wft_conn *c, const char *ip, uint16_t port);

/* The host table the kit hands to filters (for a filter's own helpers). */
const weft_host_api *wft_host_api(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_FILTERTEST_H */
