/* config_internal.h: private to core/config. A YAML document parsed by
 * libyaml into a small node tree that keeps the source position of every
 * node, plus the error helpers and value checks the loader shares. */
#ifndef WEFT_CONFIG_INTERNAL_H
#define WEFT_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "config/config.h"

#define WEFT_CFG_MAX_DEPTH 64

typedef enum { CY_SCALAR = 0, CY_SEQ, CY_MAP } cy_kind;

typedef struct cy_node cy_node;
/* 32 bytes: a big generated config holds hundreds of thousands of nodes
 * (a 5 MB file about 500,000), so the node is kept small. Fields are
 * valid for the node's kind only: `first` and `n` for sequences and
 * mappings, `str` and `len` for scalars (check kind before reading). */
struct cy_node {
    cy_node *next; /* next sibling */
    union {
        cy_node *first; /* sequence: items; mapping: key, value, key, value... */
        char *str;      /* scalar: NUL-terminated (in the document's arena) */
    };
    uint32_t line;       /* 1-based */
    uint32_t col : 24;   /* 1-based; saturates at 16M */
    uint32_t kind : 2;   /* cy_kind */
    uint32_t plain : 1;  /* scalar: plain (unquoted, non-block) style */
    uint32_t secret : 1; /* tagged `!secret` (any kind): /config_dump prints "[redacted]" */
    union {
        uint32_t n;   /* number of children (a mapping holds 2 per entry) */
        uint32_t len; /* scalar length */
    };
};

typedef struct cy_doc {
    weft_arena arena;
    cy_node *root;     /* NULL for an empty document */
    char *scur, *send; /* string chunk being filled (unaligned, in the arena) */
} cy_doc;

/* Parses data into doc. Returns 0, or -1 with err filled ("name:L:C: ..."). */
int cy_parse(cy_doc *doc, const char *data, size_t len, const char *name, weft_config_error *err);
void cy_free(cy_doc *doc);
/* Deep copy of n (and its children) into doc; NULL on OOM. */
cy_node *cy_copy(cy_doc *doc, const cy_node *n);

/* The loader's error context. */
typedef struct cfg_ctx {
    const char *name;
    weft_config_error *err;
} cfg_ctx;

/* Writes "name:line:col: message" and returns -1. */
int cfg_fail_at(cfg_ctx *c, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cfg_fail(cfg_ctx *c, const cy_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Renders s as a double-quoted, escaped, possibly shortened string for
 * messages. Returns buf. */
const char *cfg_quote(char *buf, size_t bufsz, const char *s);

/* Value checks (no position: the caller reports). */
bool cfg_is_ip_literal(const char *s);
bool cfg_is_hostname(const char *s);     /* DNS name syntax */
bool cfg_is_token(const char *s);        /* RFC 9110 token, non-empty */
bool cfg_is_header_value(const char *s); /* no CR, LF, NUL or other CTLs but HTAB */
bool cfg_is_path(const char *s);         /* starts with '/', no CTLs or spaces */
/* "*", "*.suffix" or an exact host name (checked after lower-casing). */
bool cfg_is_domain(const char *s);
/* regcomp(REG_EXTENDED|REG_NOSUB[|REG_ICASE]); on failure writes the
 * regerror text into msg and returns false. */
bool cfg_regex_ok(const char *re, bool icase, char *msg, size_t msglen);
void cfg_lower(char *s);

/* ------------------------------------------------ the loader's shared parts
 * (config_load.c: helpers and the top level; config_clusters.c,
 * config_routes.c, config_listeners.c: one resource type each). */

/* A string -> index map (open addressing) so that duplicate checks and
 * cluster lookups stay linear in the size of big generated configs. The
 * keys are borrowed from the config being built. */
typedef struct cfg_name_set {
    const char **keys;
    size_t *vals;
    size_t mask;
} cfg_name_set;

int cfg_ns_init(cfg_name_set *ns, size_t expected);
void cfg_ns_free(cfg_name_set *ns);
/* Index stored for key, or -1. */
long cfg_ns_get(const cfg_name_set *ns, const char *key);
/* Inserts key (absent, and the set sized for it by cfg_ns_init). */
void cfg_ns_put(cfg_name_set *ns, const char *key, size_t val);

typedef struct cfg_ld {
    cfg_ctx c;
    weft_config *cfg;
    cfg_name_set clusters;    /* cluster name -> index */
    cfg_name_set listeners;   /* listener name -> index */
    uint8_t ports[65536 / 8]; /* listener ports in use */
} cfg_ld;

/* Tree access. */
bool cfg_is_null(const cy_node *n);
/* The key node of `key` in map, or NULL. */
const cy_node *cfg_key_of(const cy_node *map, const char *key);
/* The value of `key` in map; NULL when absent or null. */
const cy_node *cfg_val(const cy_node *map, const char *key);
const char *cfg_describe(char *buf, size_t sz, const cy_node *n);
/* Checks that n is a mapping whose keys are all in `keys` (NULL-ended)
 * and unique. `what` names the section in the type error. */
int cfg_check_map(cfg_ld *L, const cy_node *n, const char *what, const char *const *keys);
int cfg_oom(cfg_ld *L, const cy_node *n);
char *cfg_dup_str(const char *s);

/* Scalars: the get_ functions return 1 and set *out when the key is
 * present, 0 when absent, -1 (error reported) when invalid. */
int cfg_scalar(cfg_ld *L, const cy_node *v, const char *key);
int cfg_get_str(cfg_ld *L, const cy_node *map, const char *key, char **out);
int cfg_req_str(cfg_ld *L, const cy_node *map, const char *key, char **out, const char *what);
int cfg_parse_uint(const char *s, uint64_t *out);
int cfg_get_uint(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                 uint64_t *out);
int cfg_get_u32(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                uint32_t *out);
int cfg_get_u16(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                uint16_t *out);
int cfg_get_duration(cfg_ld *L, const cy_node *map, const char *key, uint64_t min_ms,
                     uint64_t *out);
int cfg_get_size(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint64_t max,
                 uint64_t *out);
int cfg_get_size32(cfg_ld *L, const cy_node *map, const char *key, uint64_t min, uint32_t *out);
int cfg_get_bool(cfg_ld *L, const cy_node *map, const char *key, bool *out);
int cfg_get_seq(cfg_ld *L, const cy_node *map, const char *key, const cy_node **out);
/* Names of listeners, clusters, virtual hosts, routes: visible ASCII. */
bool cfg_is_name(const char *s);
int cfg_req_name(cfg_ld *L, const cy_node *map, char **out, const char *what);
/* Exactly one of `keys` (NULL-ended) is present; *which names it. */
int cfg_exactly_one(cfg_ld *L, const cy_node *map, const char *const *keys, const char *what,
                    const char **which);

/* Resource types. Each loads entry idx of the array the top level sized. */
int cfg_load_cluster(cfg_ld *L, const cy_node *n, size_t idx);
/* A list of filters under `key` ({name, path, config} entries): listeners'
 * filters, clusters' transport_filters. */
int cfg_load_filter_list(cfg_ld *L, const cy_node *n, const char *key, weft_cfg_filter **out,
                         size_t *nout);
/* `domains` maps every domain of the listener's earlier virtual hosts to
 * its virtual host, `names` their names. */
int cfg_load_vhost(cfg_ld *L, const cy_node *n, weft_cfg_listener *li, size_t idx,
                   cfg_name_set *domains, cfg_name_set *names);
int cfg_load_listener(cfg_ld *L, const cy_node *n, size_t idx);
/* The top-level `dns:` mapping (config_dns.c); defaults set when absent. */
void cfg_dns_defaults(weft_cfg_dns *d);
int cfg_load_dns(cfg_ld *L, const cy_node *n);

/* Release (the entries, not the arrays holding them). */
void cfg_free_strv(char **v, size_t n);
void cfg_free_cluster(weft_cfg_cluster *cl);
void cfg_free_vhost(weft_cfg_vhost *vh);
void cfg_free_listener(weft_cfg_listener *li);
void cfg_free_dns(weft_cfg_dns *d);

#endif
