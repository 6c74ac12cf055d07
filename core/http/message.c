/* message.c: the header list and HTTP status helpers.
 *
 * All storage comes from the owning arena: the header array grows by
 * doubling (old arrays stay in the arena until it is reset, which is the
 * price of never calling malloc per message). Removal compacts in place so
 * the order of the remaining headers is preserved: order matters for
 * repeated headers such as set-cookie or via. */
#include "http/message.h"

#include <ctype.h>

void weft_hdrs_init(weft_hdrs *h, weft_arena *a) {
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
    h->arena = a;
    h->checked = 0;
}

/* A field's name against a name looked for: the lengths first, so the
 * usual miss costs no call. */
static inline bool name_is(weft_sv field, weft_sv name) {
    return field.len == name.len && weft_sv_ieq(field, name);
}

int weft_hdrs_grow(weft_hdrs *h) {
    if (h->n < h->cap)
        return 0;
    uint32_t ncap = h->cap ? h->cap * 2 : 16;
    if (ncap < h->cap)
        return -1;
    weft_hdr *nv = weft_arena_alloc(h->arena, (size_t)ncap * sizeof(*nv));
    if (!nv)
        return -1;
    if (h->n)
        memcpy(nv, h->v, (size_t)h->n * sizeof(*nv));
    h->v = nv;
    h->cap = ncap;
    return 0;
}

int weft_hdrs_add_ref_checked(weft_hdrs *h, weft_sv name, weft_sv value) {
    bool all = h->checked == h->n;
    if (weft_hdrs_add_ref(h, name, value) != 0)
        return -1;
    if (all)
        h->checked = h->n;
    return 0;
}

int weft_hdrs_add(weft_hdrs *h, weft_sv name, weft_sv value) {
    char *n = weft_arena_alloc(h->arena, name.len + 1);
    if (!n)
        return -1;
    for (size_t i = 0; i < name.len; i++)
        n[i] = (char)tolower((unsigned char)name.p[i]);
    n[name.len] = '\0';
    char *v = weft_arena_strndup(h->arena, value.p, value.len);
    if (!v)
        return -1;
    return weft_hdrs_add_ref(h, (weft_sv){n, name.len}, (weft_sv){v, value.len});
}

int weft_hdrs_remove(weft_hdrs *h, weft_sv name) {
    uint32_t w = 0, checked = 0;
    int removed = 0;
    for (uint32_t r = 0; r < h->n; r++) {
        if (name_is(h->v[r].name, name)) {
            removed++;
            continue;
        }
        if (w != r)
            h->v[w] = h->v[r];
        w++;
        if (r < h->checked)
            checked = w;
    }
    h->n = w;
    h->checked = checked;
    return removed;
}

int weft_hdrs_set(weft_hdrs *h, weft_sv name, weft_sv value) {
    weft_hdrs_remove(h, name);
    return weft_hdrs_add(h, name, value);
}

const weft_sv *weft_hdrs_get(const weft_hdrs *h, weft_sv name) {
    for (uint32_t i = 0; i < h->n; i++)
        if (name_is(h->v[i].name, name))
            return &h->v[i].value;
    return NULL;
}

int weft_hdrs_count(const weft_hdrs *h, weft_sv name) {
    int c = 0;
    for (uint32_t i = 0; i < h->n; i++)
        if (name_is(h->v[i].name, name))
            c++;
    return c;
}

/* Calls fn for every non-empty, OWS-trimmed element of a comma list.
 * Stops early when fn returns true; returns that. */
static bool list_any(weft_sv list, bool (*fn)(weft_sv elem, const void *arg), const void *arg) {
    size_t start = 0;
    for (size_t i = 0; i <= list.len; i++) {
        if (i == list.len || list.p[i] == ',') {
            weft_sv e = weft_sv_trim((weft_sv){list.p + start, i - start});
            if (e.len && fn(e, arg))
                return true;
            start = i + 1;
        }
    }
    return false;
}

static bool elem_ieq(weft_sv elem, const void *arg) {
    return weft_sv_ieq(elem, *(const weft_sv *)arg);
}

bool weft_hdrs_has_token(const weft_hdrs *h, weft_sv name, weft_sv tok) {
    for (uint32_t i = 0; i < h->n; i++)
        if (name_is(h->v[i].name, name) && list_any(h->v[i].value, elem_ieq, &tok))
            return true;
    return false;
}

/* ASCII case-insensitive compare of a view with a lower-case literal of
 * the same, known length (the caller checked it): no strlen, no tolower
 * call. Exact for every byte: only 'A'..'Z' fold. */
static bool lit_ieq(const char *p, const char *lit, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (c != (unsigned char)lit[i])
            return false;
    }
    return true;
}

#define LIT_IS(sv, lit) ((sv).len == sizeof(lit) - 1 && lit_ieq((sv).p, lit, sizeof(lit) - 1))

enum { HBH_FIXED = 1, HBH_CONNECTION = 2, HBH_TE = 4 };

/* The fixed hop-by-hop set (RFC 9110 7.6.1 plus the legacy keep-alive and
 * proxy-connection): connection, keep-alive, proxy-connection, te,
 * trailer, transfer-encoding, upgrade. Dispatches on the length first, so
 * an ordinary header costs one switch and at most two compares. */
static unsigned hbh_class(weft_sv n) {
    switch (n.len) {
    case 2:
        return LIT_IS(n, "te") ? HBH_FIXED | HBH_TE : 0;
    case 7:
        return LIT_IS(n, "trailer") || LIT_IS(n, "upgrade") ? HBH_FIXED : 0;
    case 10:
        if (LIT_IS(n, "connection"))
            return HBH_FIXED | HBH_CONNECTION;
        return LIT_IS(n, "keep-alive") ? HBH_FIXED : 0;
    case 16:
        return LIT_IS(n, "proxy-connection") ? HBH_FIXED : 0;
    case 17:
        return LIT_IS(n, "transfer-encoding") ? HBH_FIXED : 0;
    default:
        return 0;
    }
}

/* Connection may name any header, but letting a client delete the ones the
 * proxy relies on for routing and framing would let it change how the next
 * hop reads the message; those stay. */
static bool connection_may_strip(weft_sv name) {
    return !LIT_IS(name, "host") && !LIT_IS(name, "content-length");
}

/* ASCII case-insensitive compare of two views of length len: only
 * 'A'..'Z' fold (as weft_sv_ieq). */
static bool ieq_n(const char *a, const char *b, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + ('a' - 'A'));
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + ('a' - 'A'));
        if (x != y)
            return false;
    }
    return true;
}

/* The Connection tokens that can drop a header nothing else drops: a
 * token naming a fixed hop-by-hop header changes nothing (that header goes
 * anyway), nor does one naming host or content-length (they stay). */
enum { CONN_TOK_MAX = 16 };
typedef struct {
    weft_sv v[CONN_TOK_MAX];
    uint32_t n;
    bool over; /* more than CONN_TOK_MAX: the slow path decides */
} conn_toks;

/* list_any visitor: keeps e in the conn_toks behind arg (which is not
 * const: list_any only passes it through); never stops the walk. */
static bool conn_tok_add(weft_sv e, const void *arg) {
    conn_toks *t = (conn_toks *)(uintptr_t)arg;
    if (hbh_class(e) || !connection_may_strip(e))
        return false;
    if (t->n < CONN_TOK_MAX)
        t->v[t->n++] = e;
    else
        t->over = true;
    return false;
}

void weft_hdrs_strip_hop_by_hop(weft_hdrs *h) {
    /* One pass classifies every name (the first 64 remembered in `fixed`),
     * collects the Connection tokens and sees whether a te header holds
     * "trailers". */
    uint64_t fixed = 0;
    conn_toks toks;
    toks.n = 0;
    toks.over = false;
    bool any = false;
    /* te: trailers is the one TE value that is end-to-end in practice
     * (gRPC needs it to reach the server), so it survives as a single
     * normalised header. */
    bool keep_te = false;
    const weft_sv trailers = WEFT_SV_LIT("trailers");
    for (uint32_t r = 0; r < h->n; r++) {
        unsigned c = hbh_class(h->v[r].name);
        if (!c)
            continue;
        any = true;
        if (r < 64)
            fixed |= UINT64_C(1) << r;
        if (c & HBH_CONNECTION)
            list_any(h->v[r].value, conn_tok_add, &toks);
        if ((c & HBH_TE) && !keep_te)
            keep_te = list_any(h->v[r].value, elem_ieq, &trailers);
    }
    /* Nothing fixed means no Connection header either: nothing names a
     * victim, the list stays as it is. */
    if (!any)
        return;

    /* Compaction swaps instead of overwriting: the dropped entries (the
     * Connection headers among them) stay in v[w..n) while later headers
     * are decided, so the slow path still finds a Connection header that
     * came before the header it names. */
    uint32_t w = 0, checked = 0;
    for (uint32_t r = 0; r < h->n; r++) {
        weft_sv name = h->v[r].name;
        bool drop = r < 64 ? (fixed >> r) & 1 : hbh_class(name) != 0;
        if (!drop && toks.over) {
            drop = connection_may_strip(name) &&
                   weft_hdrs_has_token(h, WEFT_SV_LIT("connection"), name);
        } else if (!drop) {
            for (uint32_t k = 0; !drop && k < toks.n; k++)
                drop = toks.v[k].len == name.len && ieq_n(toks.v[k].p, name.p, name.len);
        }
        if (drop)
            continue;
        if (w != r) {
            weft_hdr t = h->v[w];
            h->v[w] = h->v[r];
            h->v[r] = t;
        }
        w++;
        if (r < h->checked)
            checked = w;
    }
    h->n = w;
    h->checked = checked;
    if (keep_te)
        weft_hdrs_add_ref_checked(h, WEFT_SV_LIT("te"), WEFT_SV_LIT("trailers"));
}

bool weft_resp_is_bodyless(uint16_t status, bool request_was_head) {
    return request_was_head || (status >= 100 && status < 200) || status == 204 || status == 304;
}

const char *weft_status_reason(uint16_t status) {
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 102:
        return "Processing";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 203:
        return "Non-Authoritative Information";
    case 204:
        return "No Content";
    case 205:
        return "Reset Content";
    case 206:
        return "Partial Content";
    case 207:
        return "Multi-Status";
    case 208:
        return "Already Reported";
    case 226:
        return "IM Used";
    case 300:
        return "Multiple Choices";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 305:
        return "Use Proxy";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 418:
        return "I'm a teapot";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 423:
        return "Locked";
    case 424:
        return "Failed Dependency";
    case 425:
        return "Too Early";
    case 426:
        return "Upgrade Required";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 506:
        return "Variant Also Negotiates";
    case 507:
        return "Insufficient Storage";
    case 508:
        return "Loop Detected";
    case 510:
        return "Not Extended";
    case 511:
        return "Network Authentication Required";
    /* The reason phrase is optional on the wire (RFC 9112 4): an empty
     * one is valid for codes we have no name for. */
    default:
        return "";
    }
}
