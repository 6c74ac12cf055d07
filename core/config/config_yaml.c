/* config_yaml.c: libyaml events -> a position-keeping node tree.
 * Aliases are refused (no billion laughs), nesting is limited to
 * WEFT_CFG_MAX_DEPTH, one document per stream. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "config/config_internal.h"
#include "wsh_rules.h"

int cfg_fail_at(cfg_ctx *c, uint32_t line, uint32_t col, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err->msg, sizeof(c->err->msg), "%.100s:%u:%u: %s", c->name, (unsigned)line,
             (unsigned)col, msg);
    return -1;
}

int cfg_fail(cfg_ctx *c, const cy_node *n, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cfg_fail_at(c, n ? n->line : 1, n ? n->col : 1, "%s", msg);
}

const char *cfg_quote(char *buf, size_t bufsz, const char *s) {
    static const size_t max_chars = 64;
    size_t o = 0;
    size_t shown = 0;
    if (bufsz < 8) {
        if (bufsz)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (shown == max_chars || o + 8 >= bufsz) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(buf + o, bufsz - o, "\\x%02x", ch);
        } else {
            buf[o++] = (char)ch;
        }
        shown++;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void offset_to_pos(const char *data, size_t len, size_t off, uint32_t *line, uint32_t *col) {
    uint32_t l = 1, c = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int parser_error(cfg_ctx *c, const yaml_parser_t *p, const char *data, size_t len) {
    const char *problem = p->problem ? p->problem : "unknown error";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return cfg_fail_at(c, 1, 1, "out of memory while parsing YAML");
    case YAML_READER_ERROR: {
        uint32_t line, col;
        offset_to_pos(data, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return cfg_fail_at(c, line, col, "invalid YAML: %s (#x%X)", problem,
                               (unsigned)p->problem_value);
        return cfg_fail_at(c, line, col, "invalid YAML: %s", problem);
    }
    default:
        break;
    }
    uint32_t line = (uint32_t)p->problem_mark.line + 1;
    uint32_t col = (uint32_t)p->problem_mark.column + 1;
    if (p->context)
        return cfg_fail_at(c, line, col, "invalid YAML: %s (%s that started at %u:%u)", problem,
                           p->context, (unsigned)p->context_mark.line + 1,
                           (unsigned)p->context_mark.column + 1);
    return cfg_fail_at(c, line, col, "invalid YAML: %s", problem);
}

static cy_node *new_node(cy_doc *doc, cy_kind kind, const yaml_mark_t *m) {
    cy_node *n = weft_arena_alloc(&doc->arena, sizeof(*n));
    if (!n)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = m->line + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)m->line + 1;
    n->col = m->column + 1 > 0xFFFFFF ? 0xFFFFFF : (uint32_t)m->column + 1;
    return n;
}

/* Scalars are packed into 64 KiB chunks without the arena's 16-byte
 * alignment (most are a few bytes long); long ones get their own block. */
#define CY_STR_CHUNK 65536
static char *new_str(cy_doc *doc, const char *s, size_t len) {
    char *p;
    if (len >= CY_STR_CHUNK / 16) {
        p = weft_arena_alloc(&doc->arena, len + 1);
    } else {
        if ((size_t)(doc->send - doc->scur) < len + 1) {
            doc->scur = weft_arena_alloc(&doc->arena, CY_STR_CHUNK);
            if (!doc->scur) {
                doc->send = NULL;
                return NULL;
            }
            doc->send = doc->scur + CY_STR_CHUNK;
        }
        p = doc->scur;
        doc->scur += len + 1;
    }
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* An open collection while parsing, with its last child (appends are O(1)). */
typedef struct cy_open {
    cy_node *node;
    cy_node *last;
} cy_open;

/* `!secret` marks a value that /config_dump must not show. */
static bool is_secret_tag(const yaml_char_t *tag) {
    return tag && strcmp((const char *)tag, "!secret") == 0;
}

static void append_child(cy_open *parent, cy_node *child) {
    if (parent->last)
        parent->last->next = child;
    else
        parent->node->first = child;
    parent->last = child;
    parent->node->n++;
}

/* Attaches n to the innermost open collection, or makes it the root. */
static int attach(cfg_ctx *c, cy_doc *doc, cy_open *stack, size_t depth, cy_node *n) {
    if (depth == 0) {
        doc->root = n;
        return 0;
    }
    cy_open *parent = &stack[depth - 1];
    if (parent->node->kind == CY_MAP && parent->node->n % 2 == 0 && n->kind != CY_SCALAR)
        return cfg_fail(c, n, "mapping keys must be strings, got a %s",
                        n->kind == CY_MAP ? "mapping" : "list");
    append_child(parent, n);
    return 0;
}

int cy_parse(cy_doc *doc, const char *data, size_t len, const char *name, weft_config_error *err) {
    cfg_ctx c = {name, err};
    weft_arena_init(&doc->arena);
    doc->root = NULL;
    doc->scur = doc->send = NULL;

    /* A UTF-8 byte order mark is skipped (libyaml keeps it when the
     * encoding is forced); positions count from the character after it. */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return cfg_fail_at(&c, 1, 1, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);

    cy_open stack[WEFT_CFG_MAX_DEPTH];
    size_t depth = 0;
    int docs = 0;
    int rc = 0;
    bool done = false;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parser_error(&c, &p, data, len);
            break;
        }
        cy_node *n = NULL;
        /* the rules the test kit applies too (sdk/common/wsh_rules.c) */
        const char *refused = wsh_yaml_event_refusal(&ev);
        if (refused) {
            rc = cfg_fail_at(&c, (uint32_t)ev.start_mark.line + 1,
                             (uint32_t)ev.start_mark.column + 1, "%s", refused);
            yaml_event_delete(&ev);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (docs++ > 0)
                rc = cfg_fail_at(&c, (uint32_t)ev.start_mark.line + 1,
                                 (uint32_t)ev.start_mark.column + 1,
                                 "multiple YAML documents are not supported");
            break;
        case YAML_ALIAS_EVENT:
            rc = cfg_fail_at(&c, (uint32_t)ev.start_mark.line + 1,
                             (uint32_t)ev.start_mark.column + 1, "YAML aliases are not supported");
            break;
        case YAML_SCALAR_EVENT:
            if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
                rc = cfg_fail_at(&c, (uint32_t)ev.start_mark.line + 1,
                                 (uint32_t)ev.start_mark.column + 1,
                                 "strings must not contain NUL characters");
                break;
            }
            n = new_node(doc, CY_SCALAR, &ev.start_mark);
            if (n)
                n->str = new_str(doc, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (!n || !n->str) {
                rc = cfg_fail_at(&c, 1, 1, "out of memory while parsing YAML");
                break;
            }
            n->len = (uint32_t)ev.data.scalar.length; /* < the 64 MiB file limit */
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            n->secret = is_secret_tag(ev.data.scalar.tag);
            rc = attach(&c, doc, stack, depth, n);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == WEFT_CFG_MAX_DEPTH) {
                rc = cfg_fail_at(&c, (uint32_t)ev.start_mark.line + 1,
                                 (uint32_t)ev.start_mark.column + 1,
                                 "nesting deeper than %d levels", WEFT_CFG_MAX_DEPTH);
                break;
            }
            n = new_node(doc, ev.type == YAML_MAPPING_START_EVENT ? CY_MAP : CY_SEQ,
                         &ev.start_mark);
            if (!n) {
                rc = cfg_fail_at(&c, 1, 1, "out of memory while parsing YAML");
                break;
            }
            n->secret =
                is_secret_tag(ev.type == YAML_MAPPING_START_EVENT ? ev.data.mapping_start.tag
                                                                  : ev.data.sequence_start.tag);
            rc = attach(&c, doc, stack, depth, n);
            if (rc == 0)
                stack[depth++] = (cy_open){n, NULL};
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc != 0) {
        cy_free(doc);
        return -1;
    }
    return 0;
}

void cy_free(cy_doc *doc) {
    weft_arena_free(&doc->arena);
    doc->root = NULL;
    doc->scur = doc->send = NULL;
}

static cy_node *copy_node(cy_doc *doc, const cy_node *n, int depth) {
    if (depth > WEFT_CFG_MAX_DEPTH)
        return NULL;
    cy_node *c = weft_arena_alloc(&doc->arena, sizeof(*c));
    if (!c)
        return NULL;
    *c = *n;
    c->next = NULL;
    if (n->kind == CY_SCALAR) {
        c->str = new_str(doc, n->str, n->len);
        return c->str ? c : NULL;
    }
    c->first = NULL;
    cy_node **tail = &c->first;
    for (const cy_node *k = n->first; k; k = k->next) {
        if (!(*tail = copy_node(doc, k, depth + 1)))
            return NULL;
        tail = &(*tail)->next;
    }
    return c;
}

cy_node *cy_copy(cy_doc *doc, const cy_node *n) {
    return n ? copy_node(doc, n, 0) : NULL;
}
