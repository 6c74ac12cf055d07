/* config.h: the typed, validated configuration of the proxy, loaded from
 * YAML (libyaml). A weft_config is immutable once loaded and owned by the
 * snapshot built from it; weft_config_free releases it whole. All strings
 * are NUL-terminated and owned by the config. Durations are in ms. */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Source position of a YAML node, kept for errors found after loading. */
typedef struct weft_cfg_pos {
    uint32_t line; /* 1-based */
    uint32_t col;  /* 1-based */
} weft_cfg_pos;

typedef enum {
    WEFT_LB_ROUND_ROBIN = 0, /* smooth weighted round robin */
    WEFT_LB_LEAST_REQUEST,   /* power of two choices on active requests / weight */
    WEFT_LB_RANDOM,          /* weighted random */
    WEFT_LB_RING_HASH,       /* consistent hash (ketama-style ring) */
    WEFT_LB_PEAK_EWMA,       /* P2C on peak-EWMA latency * (active+1) */
} weft_lb_policy;

typedef enum {
    WEFT_HASH_SOURCE_IP = 0,
    WEFT_HASH_HEADER,
    WEFT_HASH_COOKIE,
} weft_hash_on;

typedef enum {
    WEFT_STR_EXACT = 0,
    WEFT_STR_PREFIX,
    WEFT_STR_SUFFIX,
    WEFT_STR_REGEX,   /* POSIX ERE (regcomp REG_EXTENDED), anchored whole-string */
    WEFT_STR_PRESENT, /* header/query param present, any value */
} weft_str_match_kind;

typedef struct weft_cfg_str_match {
    weft_str_match_kind kind;
    char *value; /* NULL for PRESENT */
    bool invert; /* "invert: true" negates the result */
} weft_cfg_str_match;

typedef struct weft_cfg_kv_match {
    char *name; /* header name (lower-cased at load) or query param name */
    weft_cfg_str_match match;
} weft_cfg_kv_match;

typedef struct weft_cfg_header_value {
    char *name; /* lower-cased at load */
    char *value;
    bool append; /* true: add; false (default): replace existing */
} weft_cfg_header_value;

typedef enum {
    WEFT_ACTION_CLUSTER = 0,
    WEFT_ACTION_REDIRECT,
    WEFT_ACTION_DIRECT,
} weft_route_action;

/* One entry of a route's `filter_config: {<filter yaml name>: <node>}`:
 * handed to that filter's route_config_create at snapshot build. */
typedef struct weft_cfg_route_filter {
    char *name;       /* a filter of the listener's `filters:` (checked at load) */
    weft_cfg_pos pos; /* of the key */
    const void *node; /* the value (core/config's node type), NULL for null;
                         owned by the weft_config */
} weft_cfg_route_filter;

typedef struct weft_cfg_route {
    char *name; /* optional; "" when absent */
    weft_cfg_pos pos;
    /* match */
    weft_str_match_kind path_kind; /* EXACT ("path"), PREFIX ("prefix"), REGEX ("regex") */
    char *path;                    /* the path/prefix/regex */
    bool case_sensitive;           /* default true */
    char **methods;                /* NULL/0 = any */
    size_t n_methods;
    weft_cfg_kv_match *headers;
    size_t n_headers;
    weft_cfg_kv_match *query;
    size_t n_query;
    /* action */
    weft_route_action action;
    char *cluster;            /* ACTION_CLUSTER */
    uint64_t timeout_ms;      /* 0 = no timeout; default 15000 */
    uint64_t idle_timeout_ms; /* stream idle; 0 = listener default */
    char *prefix_rewrite;     /* NULL = none; replaces the matched prefix */
    char *host_rewrite;       /* NULL = keep Host */
    /* redirect */
    char *redirect_scheme;  /* NULL = keep */
    char *redirect_host;    /* NULL = keep */
    char *redirect_path;    /* NULL = keep */
    char *redirect_prefix;  /* NULL = none; replaces matched prefix */
    uint16_t redirect_code; /* 301 default; 301/302/303/307/308 */
    /* direct response */
    uint16_t direct_status;
    char *direct_body; /* NULL = empty */
    /* header manipulation */
    weft_cfg_header_value *req_add;
    size_t n_req_add;
    char **req_remove;
    size_t n_req_remove;
    weft_cfg_header_value *resp_add;
    size_t n_resp_add;
    char **resp_remove;
    size_t n_resp_remove;
    /* per-route filter configs */
    weft_cfg_route_filter *filter_cfgs;
    size_t n_filter_cfgs;
} weft_cfg_route;

typedef struct weft_cfg_vhost {
    char *name;
    weft_cfg_pos pos;
    char **domains; /* "example.com", "*.example.com", "*"; lower-cased; port stripped at match */
    size_t n_domains;
    weft_cfg_route *routes;
    size_t n_routes;
} weft_cfg_vhost;

typedef struct weft_cfg_limits {
    uint32_t max_header_bytes;       /* default 60 KiB -> 431 */
    uint32_t max_headers;            /* default 100 -> 431 */
    uint32_t max_uri_len;            /* default 8 KiB -> 414 */
    uint64_t max_body_bytes;         /* default 0 = unlimited -> 413 */
    uint64_t headers_timeout_ms;     /* default 10 s -> 408 (slowloris) */
    uint64_t idle_timeout_ms;        /* keep-alive connection idle; default 60 s */
    uint64_t stream_idle_timeout_ms; /* no bytes either way on a stream; default 300 s */
    uint32_t max_connections;        /* per listener per worker... total; default 0 = unlimited */
    uint32_t buffer_high_watermark;  /* per direction; default 1 MiB */
    /* What filters may consume per stream through the SDK (host calls
     * beyond them return WEFT_ERR_LIMIT). */
    uint64_t filter_arena_bytes;      /* stream arena bytes taken by host calls; default 1 MiB */
    uint32_t filter_metadata_entries; /* metadata keys; default 64 */
    uint32_t filter_timers;           /* timers armed at once; default 16 */
    uint32_t filter_callouts;         /* callouts in flight at once; default 8 */
} weft_cfg_limits;

/* One entry of a listener's `filters:` list. Whether it is an HTTP or a
 * transport filter is the .so's own declaration (its descriptor). */
typedef struct weft_cfg_filter {
    char *name; /* [a-z0-9_-], 1-48: <name>.so is looked up in the filter
                   directories */
    char *path; /* explicit .so path (relative to the config file's
                   directory), NULL = by name. Only with allow_filter_paths
                   in a static config. */
    weft_cfg_pos pos;
    const void *node; /* the `config:` YAML node (core/config's node type,
                         handed to the filter through the SDK accessors);
                         NULL when absent. Owned by the weft_config. */
} weft_cfg_filter;

/* HTTP/2 SETTINGS weft advertises on a listener (downstream). */
typedef struct weft_cfg_h2 {
    uint32_t max_concurrent_streams; /* default 100 */
    uint32_t
        initial_window_size; /* default 1 MiB (stream window; flow control follows the upstream) */
    uint32_t max_frame_size; /* default 16384 */
    uint32_t max_header_list_size; /* default: limits.max_header_bytes */
} weft_cfg_h2;

/* What a listener does with %2F and %5C in request paths (Envoy's
 * path_with_escaped_slashes_action). */
typedef enum {
    WEFT_CFG_SLASHES_KEEP = 0, /* KEEP_UNCHANGED */
    WEFT_CFG_SLASHES_REJECT,   /* REJECT_REQUEST */
    WEFT_CFG_SLASHES_UNESCAPE, /* UNESCAPE_AND_FORWARD */
    WEFT_CFG_SLASHES_UNESCAPE_AND_REDIRECT,
} weft_cfg_escaped_slashes;

typedef struct weft_cfg_listener {
    char *name;
    weft_cfg_pos pos;
    char *address; /* "127.0.0.1", "::1", "0.0.0.0", "::" */
    uint16_t port;
    weft_cfg_limits limits;
    weft_cfg_vhost *vhosts;
    size_t n_vhosts;
    weft_cfg_filter *filters; /* in YAML order: request path order */
    size_t n_filters;
    weft_cfg_h2 h2;
    /* request paths (core/http/path_norm.h) and request ids */
    bool normalize_path;                      /* default true */
    bool merge_slashes;                       /* default false */
    weft_cfg_escaped_slashes escaped_slashes; /* default keep */
    bool preserve_external_request_id;        /* default false: a fresh x-request-id */
    /* `tcp_proxy:` listeners forward opaque bytes to one cluster with no
     * HTTP codec: they have no virtual hosts and no filters. */
    bool is_tcp;
    char *tcp_cluster;             /* cluster name (checked at load) */
    uint64_t tcp_idle_timeout_ms;  /* no bytes either way; default 1 h; 0 = none */
    uint32_t tcp_connect_attempts; /* endpoints tried per connection; default 1 */
    weft_cfg_pos tcp_pos;          /* of the tcp_proxy mapping */
} weft_cfg_listener;

/* An endpoint label (Kubernetes pod label syntax). */
typedef struct weft_cfg_label {
    char *key;
    char *value;
} weft_cfg_label;

#define WEFT_CFG_MAX_LABELS 64         /* labels per endpoint */
#define WEFT_CFG_MAX_LOCALITY_PART 128 /* bytes per region/zone/subzone */

typedef struct weft_cfg_endpoint {
    char *address; /* IP literal or DNS name */
    uint16_t port;
    uint32_t weight; /* default 1, 1..1000 */
    weft_cfg_pos pos;
    /* Locality, as Envoy/Istio: `locality: region/zone/subzone` (parts
     * may be left off from the right) or a map {region, zone, subzone}.
     * A part not given is NULL (read as ""): nothing is allocated for
     * the endpoints of a large config that gives none. */
    char *region, *zone, *subzone;
    weft_cfg_label *labels; /* sorted by key, unique keys; NULL if none */
    size_t n_labels;        /* <= WEFT_CFG_MAX_LABELS */
} weft_cfg_endpoint;

typedef struct weft_cfg_health_check {
    bool enabled;
    char *path;                   /* default "/healthz" */
    char *host;                   /* Host header; default cluster name */
    uint64_t interval_ms;         /* default 5000 */
    uint64_t timeout_ms;          /* default 1000 */
    uint32_t healthy_threshold;   /* default 2 */
    uint32_t unhealthy_threshold; /* default 3 */
    uint16_t expected_min;        /* default 200 */
    uint16_t expected_max;        /* default 399 */
} weft_cfg_health_check;

typedef enum {
    WEFT_PROTO_HTTP1 = 0,
    WEFT_PROTO_HTTP2, /* h2c (prior knowledge) to the endpoints */
    WEFT_PROTO_AUTO,  /* follows ALPN on TLS upstreams; HTTP/1.1 in plaintext */
} weft_upstream_protocol;

typedef struct weft_cfg_cluster {
    char *name;
    weft_upstream_protocol protocol; /* default http1 */
    weft_cfg_pos pos;
    weft_cfg_endpoint *endpoints;
    size_t n_endpoints;
    bool uses_dns;           /* any endpoint address is not an IP literal */
    uint64_t dns_refresh_ms; /* default 5000 */
    weft_lb_policy lb;
    weft_hash_on hash_on;                 /* ring_hash only */
    char *hash_key;                       /* header or cookie name (lower-cased for header) */
    uint32_t ring_size;                   /* default 1024 virtual nodes total (min) */
    uint64_t connect_timeout_ms;          /* default 5000 */
    uint32_t connect_attempts;            /* per request, failed connects included; default 2 */
    uint64_t connect_failure_avoid_ms;    /* passive health after a failed connect; 10000 */
    bool reset_retry_unprocessed_only;    /* reset_retry: unprocessed (default: idempotent) */
    uint32_t max_idle_per_endpoint;       /* per worker; default 1024 */
    uint64_t pool_idle_timeout_ms;        /* default 60000 */
    uint32_t max_requests_per_connection; /* 0 = unlimited */
    weft_cfg_health_check health;
    /* `transport_filters:` (same entries as a listener's filters:):
     * transport filters on every connection to the endpoints, the client
     * side of mTLS; `sni:` the server name they send (NULL: none). */
    weft_cfg_filter *transport_filters;
    size_t n_transport_filters;
    char *sni;
} weft_cfg_cluster;

typedef struct weft_cfg_admin {
    char *address; /* default 127.0.0.1 */
    uint16_t port; /* default 15000; 0 disables */
    /* Bearer token POST endpoints require (`token:`, or the first line of
     * `token_file:`); NULL = none: POSTs then need an X-Weft-Admin header. */
    char *token;
    uint32_t max_header_bytes;   /* request line and headers; default 8 KiB */
    uint32_t max_body_bytes;     /* default 4 KiB */
    uint64_t request_timeout_ms; /* a whole request, and idle between requests; default 10 s */
    uint32_t max_connections;    /* open at once; default 16 */
} weft_cfg_admin;

typedef struct weft_cfg_access_log {
    char *path; /* NULL = off; "-" or "stdout" = stdout; else a file (O_APPEND) */
} weft_cfg_access_log;

/* Where a config came from. A pushed config (control plane) is never
 * trusted to choose files: it cannot load filters by path nor set the
 * filter directories, whatever it says. */
typedef enum weft_config_origin {
    WEFT_CONFIG_STATIC = 0, /* a file or buffer given by the operator */
    WEFT_CONFIG_PUSHED = 1, /* delivered by a control plane */
} weft_config_origin;

/* `dns:` (top level): how clusters' host-name endpoints are resolved. */
typedef struct weft_cfg_dns_resolver {
    char *address; /* IP literal (v4 or v6, without brackets) */
    uint16_t port; /* default 53 */
} weft_cfg_dns_resolver;

typedef struct weft_cfg_dns {
    /* Name servers queried instead of resolv.conf's; none = the system's
     * (resolv.conf, and /etc/hosts in both cases). */
    weft_cfg_dns_resolver *resolvers;
    size_t n_resolvers;
    uint64_t query_timeout_ms; /* per try; 0 = resolv.conf's (else 5 s) */
    uint32_t query_attempts;   /* tries per query; 0 = resolv.conf's (else 3) */
} weft_cfg_dns;

typedef struct weft_config {
    char *source;              /* file name the config came from (for messages) */
    weft_config_origin origin; /* static file or pushed */
    uint32_t workers;          /* 0 in YAML = number of cores; resolved at load */
    uint64_t drain_timeout_ms; /* SIGTERM grace; default 15000 */
    /* `callouts:` (SDK 1.1 filter callouts) */
    uint32_t callouts_max_per_worker;    /* HTTP + TCP callouts in flight per worker; 1024 */
    uint64_t callouts_max_response_body; /* default response body cap; 1 MiB */
    weft_cfg_admin admin;
    weft_cfg_access_log access_log;
    weft_cfg_dns dns;
    weft_cfg_listener *listeners;
    size_t n_listeners;
    weft_cfg_cluster *clusters;
    size_t n_clusters;
    char **filter_paths; /* `filter_path:` directories searched for <name>.so */
    size_t n_filter_paths;
    bool allow_filter_paths; /* `allow_filter_paths: true` (static configs
                                only): filters may name a .so by `path:` */
    char *source_dir;        /* directory of the config file ("." for buffers) */
    void *doc;               /* the parsed YAML document, kept for filter config
                                nodes; owned */
} weft_config;

/* Error out-parameter: "file:line:col: message" (NUL-terminated). */
typedef struct weft_config_error {
    char msg[512];
} weft_config_error;

/* Loads and validates the whole file. Returns NULL and fills err on any
 * problem (syntax, unknown key, wrong type, bad value, a route naming an
 * unknown cluster, duplicate names, ...). */
weft_config *weft_config_load_file(const char *path, weft_config_error *err);
/* Same from memory; `name` is used in messages. */
weft_config *weft_config_load_buffer(const char *data, size_t len, const char *name,
                                     weft_config_error *err);
/* Same with the origin recorded in the config: WEFT_CONFIG_PUSHED refuses
 * `allow_filter_paths`, `filter_path` and filters' `path:` (the error
 * points at the key). */
weft_config *weft_config_load_buffer_from(const char *data, size_t len, const char *name,
                                          weft_config_origin origin, weft_config_error *err);
void weft_config_free(weft_config *cfg);
/* Writes the effective config (defaults filled in) as YAML that
 * weft_config_load_* accepts again. Returns 0 or -1. */
int weft_config_dump(const weft_config *cfg, FILE *out);
/* Lookup helpers. */
const weft_cfg_cluster *weft_config_find_cluster(const weft_config *cfg, const char *name);
void weft_cfg_limits_default(weft_cfg_limits *l);

#endif
