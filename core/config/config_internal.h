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
struct cy_node {
    cy_kind kind;
    uint32_t line; /* 1-based */
    uint32_t col;  /* 1-based */
    /* scalar */
    char *str; /* NUL-terminated (arena) */
    size_t len;
    bool plain; /* plain (unquoted, non-block) style */
    /* sequence: children are the items; mapping: key, value, key, value... */
    cy_node *first;
    cy_node *last;
    cy_node *next;
    size_t n; /* number of children (a mapping holds 2 per entry) */
};

typedef struct cy_doc {
    weft_arena arena;
    cy_node *root; /* NULL for an empty document */
} cy_doc;

/* Parses data into doc. Returns 0, or -1 with err filled ("name:L:C: ..."). */
int cy_parse(cy_doc *doc, const char *data, size_t len, const char *name, weft_config_error *err);
void cy_free(cy_doc *doc);

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

#endif
