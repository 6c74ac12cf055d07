/* ft_config.c: the filter's YAML config as the kit hands it over: a node
 * tree built with libyaml (every node keeps its line and column), and the
 * config accessor host functions over it. Number formats follow the
 * core's (durations "250ms"/"2s"/"1m"/"1h"/"500us", bare number = ms;
 * sizes "64KiB"/"1MB"/"512"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ft_config.h"
#include "ft_internal.h"
#include "wsh_rules.h"

static weft_config_node *node_new(ft_doc *doc, ft_node_kind kind, const yaml_mark_t *m) {
    if (doc->n == doc->cap) {
        size_t cap = doc->cap ? doc->cap * 2 : 16;
        weft_config_node **p = realloc(doc->all, cap * sizeof(*p));
        if (!p)
            return NULL;
        doc->all = p;
        doc->cap = cap;
    }
    weft_config_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->magic = FT_MAGIC_NODE;
    n->kind = kind;
    n->line = (uint32_t)m->line + 1;
    n->col = (uint32_t)m->column + 1;
    doc->all[doc->n++] = n;
    return n;
}

static int node_push(weft_config_node *parent, weft_config_node *key, weft_config_node *child) {
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        weft_config_node **items = realloc(parent->items, cap * sizeof(*items));
        if (!items)
            return -1;
        parent->items = items;
        if (parent->kind == FT_MAP) {
            weft_config_node **keys = realloc(parent->keys, cap * sizeof(*keys));
            if (!keys)
                return -1;
            parent->keys = keys;
        }
        parent->cap = cap;
    }
    if (parent->kind == FT_MAP)
        parent->keys[parent->n] = key;
    parent->items[parent->n++] = child;
    return 0;
}

void ft_doc_free(ft_doc *doc) {
    for (size_t i = 0; i < doc->n; i++) {
        weft_config_node *n = doc->all[i];
        free(n->str);
        free(n->items);
        free(n->keys);
        n->magic = 0;
        free(n);
    }
    free(doc->all);
    memset(doc, 0, sizeof(*doc));
}

typedef struct anchor {
    char *name;
    weft_config_node *node;
} anchor;

typedef struct parse_state {
    ft_doc *doc;
    const char *source;
    char *err;
    size_t errlen;
    weft_config_node *stack[128];
    weft_config_node *pending_key[128]; /* for maps: the key waiting for its value */
    size_t depth;
    anchor *anchors;
    size_t nanchors, capanchors;
    int docs;
} parse_state;

static int fail_at(parse_state *p, uint32_t line, uint32_t col, const char *msg,
                   const char *detail) {
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s:%u:%u: %s%s", p->source, line, col, msg,
                 detail ? detail : "");
    return -1;
}

static int add_anchor(parse_state *p, const yaml_char_t *name, weft_config_node *n) {
    if (!name)
        return 0;
    if (p->nanchors == p->capanchors) {
        size_t cap = p->capanchors ? p->capanchors * 2 : 4;
        anchor *a = realloc(p->anchors, cap * sizeof(*a));
        if (!a)
            return -1;
        p->anchors = a;
        p->capanchors = cap;
    }
    char *copy = ft_strdup((const char *)name);
    if (!copy)
        return -1;
    p->anchors[p->nanchors++] = (anchor){copy, n};
    return 0;
}

static weft_config_node *find_anchor(parse_state *p, const yaml_char_t *name) {
    for (size_t i = p->nanchors; i-- > 0;)
        if (strcmp(p->anchors[i].name, (const char *)name) == 0)
            return p->anchors[i].node;
    return NULL;
}

/* Places a finished node: as the root, a list item, a map key or value. */
static int attach(parse_state *p, weft_config_node *n) {
    if (p->depth == 0) {
        p->doc->root = n;
        return 0;
    }
    weft_config_node *parent = p->stack[p->depth - 1];
    if (parent->kind == FT_LIST)
        return node_push(parent, NULL, n) ? fail_at(p, n->line, n->col, "out of memory", NULL) : 0;
    weft_config_node *key = p->pending_key[p->depth - 1];
    if (!key) {
        if (n->kind != FT_SCALAR)
            return fail_at(p, n->line, n->col, "a map key must be a scalar", NULL);
        for (size_t i = 0; i < parent->n; i++)
            if (parent->keys[i]->len == n->len &&
                memcmp(parent->keys[i]->str, n->str, n->len) == 0) {
                char detail[160];
                snprintf(detail, sizeof(detail), " \"%.120s\"", n->str);
                return fail_at(p, n->line, n->col, "duplicate key", detail);
            }
        p->pending_key[p->depth - 1] = n;
        return 0;
    }
    p->pending_key[p->depth - 1] = NULL;
    return node_push(parent, key, n) ? fail_at(p, n->line, n->col, "out of memory", NULL) : 0;
}

static int yaml_error(parse_state *p, const yaml_parser_t *y) {
    const char *problem = y->problem ? y->problem : "unknown error";
    if (y->error == YAML_MEMORY_ERROR)
        return fail_at(p, 1, 1, "out of memory while parsing YAML", NULL);
    char msg[256];
    if (y->context)
        snprintf(msg, sizeof(msg), "invalid YAML: %s (%s that started at %u:%u)", problem,
                 y->context, (unsigned)y->context_mark.line + 1,
                 (unsigned)y->context_mark.column + 1);
    else
        snprintf(msg, sizeof(msg), "invalid YAML: %s", problem);
    return fail_at(p, (uint32_t)y->problem_mark.line + 1, (uint32_t)y->problem_mark.column + 1, msg,
                   NULL);
}

static int handle_event(parse_state *p, const yaml_event_t *ev, bool *done) {
    /* What weft refuses, with weft's words (sdk/common/wsh_rules.c, the
     * code the core's loader runs too). */
    const char *refused = wsh_yaml_event_refusal(ev);
    if (refused)
        return fail_at(p, (uint32_t)ev->start_mark.line + 1, (uint32_t)ev->start_mark.column + 1,
                       refused, NULL);
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++p->docs > 1)
            return fail_at(p, (uint32_t)ev->start_mark.line + 1,
                           (uint32_t)ev->start_mark.column + 1,
                           "a filter config is one YAML document", NULL);
        return 0;
    case YAML_ALIAS_EVENT: {
        weft_config_node *n = find_anchor(p, ev->data.alias.anchor);
        if (!n)
            return fail_at(p, (uint32_t)ev->start_mark.line + 1,
                           (uint32_t)ev->start_mark.column + 1, "unknown alias", NULL);
        return attach(p, n);
    }
    case YAML_SCALAR_EVENT: {
        weft_config_node *n = node_new(p->doc, FT_SCALAR, &ev->start_mark);
        if (!n)
            return fail_at(p, 1, 1, "out of memory", NULL);
        n->str = ft_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!n->str)
            return fail_at(p, 1, 1, "out of memory", NULL);
        n->len = ev->data.scalar.length;
        if (add_anchor(p, ev->data.scalar.anchor, n))
            return fail_at(p, 1, 1, "out of memory", NULL);
        return attach(p, n);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool list = ev->type == YAML_SEQUENCE_START_EVENT;
        weft_config_node *n = node_new(p->doc, list ? FT_LIST : FT_MAP, &ev->start_mark);
        if (!n)
            return fail_at(p, 1, 1, "out of memory", NULL);
        if (add_anchor(p, list ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor, n))
            return fail_at(p, 1, 1, "out of memory", NULL);
        if (attach(p, n))
            return -1;
        if (p->depth == sizeof(p->stack) / sizeof(p->stack[0]))
            return fail_at(p, n->line, n->col, "nesting too deep", NULL);
        p->pending_key[p->depth] = NULL;
        p->stack[p->depth++] = n;
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (p->depth)
            p->depth--;
        return 0;
    default:
        return 0;
    }
}

int ft_doc_parse(ft_doc *doc, const char *text, size_t len, const char *source, char *err,
                 size_t errlen) {
    memset(doc, 0, sizeof(*doc));
    parse_state p = {.doc = doc, .source = source, .err = err, .errlen = errlen};
    yaml_parser_t y;
    if (!yaml_parser_initialize(&y))
        return fail_at(&p, 1, 1, "out of memory", NULL);
    yaml_parser_set_input_string(&y, (const unsigned char *)text, len);
    int rc = 0;
    bool done = false;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&y, &ev)) {
            rc = yaml_error(&p, &y);
            break;
        }
        rc = handle_event(&p, &ev, &done);
        yaml_event_delete(&ev);
        if (rc)
            break;
    }
    yaml_parser_delete(&y);
    for (size_t i = 0; i < p.nanchors; i++)
        free(p.anchors[i].name);
    free(p.anchors);
    if (rc)
        ft_doc_free(doc);
    return rc;
}

/* ---- accessors ---- */

static bool node_ok(const weft_config_node *n) {
    return n && n->magic == FT_MAGIC_NODE;
}

const weft_config_node *ft_cfg_get(const weft_config_node *map, const char *key) {
    if (!node_ok(map) || map->kind != FT_MAP || !key)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->len == kl && memcmp(map->keys[i]->str, key, kl) == 0)
            return map->items[i];
    return NULL;
}

bool ft_cfg_is_map(const weft_config_node *n) {
    return node_ok(n) && n->kind == FT_MAP;
}

bool ft_cfg_is_list(const weft_config_node *n) {
    return node_ok(n) && n->kind == FT_LIST;
}

bool ft_cfg_is_scalar(const weft_config_node *n) {
    return node_ok(n) && n->kind == FT_SCALAR;
}

size_t ft_cfg_len(const weft_config_node *n) {
    return node_ok(n) && n->kind != FT_SCALAR ? n->n : 0;
}

const weft_config_node *ft_cfg_at(const weft_config_node *list, size_t i) {
    if (!node_ok(list) || list->kind != FT_LIST || i >= list->n)
        return NULL;
    return list->items[i];
}

const weft_config_node *ft_cfg_entry(const weft_config_node *map, size_t i, weft_str *key) {
    if (!node_ok(map) || map->kind != FT_MAP || i >= map->n)
        return NULL;
    if (key)
        *key = (weft_str){map->keys[i]->str, map->keys[i]->len};
    return map->items[i];
}

/* As the core: a NULL node (an absent key), a node of the wrong kind or
 * format, or a NULL out-pointer are all WEFT_ERR_INVALID. */
static weft_result scalar_of(const weft_config_node *n, const void *out, const char **s) {
    if (!node_ok(n) || n->kind != FT_SCALAR || !out)
        return WEFT_ERR_INVALID;
    *s = n->str;
    return WEFT_OK;
}

weft_result ft_cfg_string(const weft_config_node *n, weft_str *out) {
    const char *s;
    weft_result r = scalar_of(n, out, &s);
    if (r == WEFT_OK)
        *out = (weft_str){n->str, n->len};
    return r;
}

weft_result ft_cfg_int(const weft_config_node *n, int64_t *out) {
    const char *s;
    weft_result r = scalar_of(n, out, &s);
    if (r)
        return r;
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*d < '0' || *d > '9')
        return WEFT_ERR_INVALID;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || strlen(s) != n->len)
        return WEFT_ERR_INVALID;
    if (out)
        *out = (int64_t)v;
    return WEFT_OK;
}

weft_result ft_cfg_bool(const weft_config_node *n, bool *out) {
    const char *s;
    weft_result r = scalar_of(n, out, &s);
    if (r)
        return r;
    bool v;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        v = true;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        v = false;
    else
        return WEFT_ERR_INVALID;
    if (out)
        *out = v;
    return WEFT_OK;
}

static int number_unit(const char *s, uint64_t *num, const char **unit) {
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    *num = v;
    *unit = end;
    return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *out) {
    if (b && a > UINT64_MAX / b)
        return -1;
    *out = a * b;
    return 0;
}

weft_result ft_cfg_duration_ms(const weft_config_node *n, uint64_t *out) {
    const char *s, *u;
    uint64_t v, ms;
    weft_result r = scalar_of(n, out, &s);
    if (r)
        return r;
    if (number_unit(s, &v, &u))
        return WEFT_ERR_INVALID;
    int bad;
    if (*u == '\0' || !strcmp(u, "ms"))
        bad = mul_checked(v, 1, &ms);
    else if (!strcmp(u, "us"))
        bad = (ms = (v + 999) / 1000, 0);
    else if (!strcmp(u, "s"))
        bad = mul_checked(v, 1000, &ms);
    else if (!strcmp(u, "m"))
        bad = mul_checked(v, 60000, &ms);
    else if (!strcmp(u, "h"))
        bad = mul_checked(v, 3600000, &ms);
    else
        bad = -1;
    if (bad)
        return WEFT_ERR_INVALID;
    if (out)
        *out = ms;
    return WEFT_OK;
}

weft_result ft_cfg_size(const weft_config_node *n, uint64_t *out) {
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1024ull},
        {"MiB", 1024ull * 1024},
        {"GiB", 1024ull * 1024 * 1024},
        {"KB", 1000ull},
        {"MB", 1000000ull},
        {"GB", 1000000000ull},
        {"Ki", 1024ull},
        {"Mi", 1024ull * 1024},
        {"Gi", 1024ull * 1024 * 1024},
    };
    const char *s, *u;
    uint64_t v;
    weft_result r = scalar_of(n, out, &s);
    if (r)
        return r;
    if (number_unit(s, &v, &u))
        return WEFT_ERR_INVALID;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (!strcmp(u, units[i].unit)) {
            uint64_t x;
            if (mul_checked(v, units[i].mul, &x))
                return WEFT_ERR_INVALID;
            if (out)
                *out = x;
            return WEFT_OK;
        }
    return WEFT_ERR_INVALID;
}

weft_result ft_cfg_percent(const weft_config_node *n, double *out) {
    const char *s;
    weft_result r = scalar_of(n, out, &s);
    if (r)
        return r;
    if ((*s < '0' || *s > '9') && *s != '.')
        return WEFT_ERR_INVALID;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s)
        return WEFT_ERR_INVALID;
    if (*end == '%')
        end++;
    if (*end || !isfinite(v) || v < 0.0 || v > 100.0)
        return WEFT_ERR_INVALID;
    if (out)
        *out = v;
    return WEFT_OK;
}

int ft_cfg_fail(weft_filter_setup *setup, const weft_config_node *n, const char *msg) {
    if (!setup || !setup->live) {
        wft_env *env = ft_current_env();
        if (env)
            ft_misuse(env, WEFT_ERR_STATE, "config_fail outside config_create: %s", msg ? msg : "");
        return -1;
    }
    wft_env *env = setup->env;
    const char *m = msg ? msg : "invalid config";
    /* The last failure is the one reported (as in the core). */
    if (setup->err && setup->errlen) {
        if (node_ok(n))
            snprintf(setup->err, setup->errlen, "%s:%u:%u: %s", env->source, n->line, n->col, m);
        else
            snprintf(setup->err, setup->errlen, "%s: %s", env->source, m);
    }
    setup->failed = true;
    return -1;
}

const char *ft_cfg_dir(weft_filter_setup *setup) {
    if (!setup || !setup->env)
        return ".";
    return setup->env->config_dir ? setup->env->config_dir : ".";
}
