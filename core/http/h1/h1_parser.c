/* h1_parser.c: strict HTTP/1.1 message parser for a proxy.
 *
 * llhttp does the tokenising, but the copy we link is built without
 * LLHTTP_STRICT_MODE (CMake cannot change how Debian's sources are meant to
 * be compiled without forking them), so on its own it accepts bare LF
 * after the start line, obs-fold, "Host : x", "GET  /" and more, and it
 * cannot count chunk-size digits. Every one of those is a request
 * smuggling or cache poisoning vector when two hops disagree. So each
 * message is read by two machines in lock-step:
 *
 *   1. a small framing scanner (scan_*) that sees the raw bytes first and
 *      validates what only raw bytes show: line endings, folding,
 *      whitespace before ':', control bytes, chunk-size digits, chunk
 *      extension size, head size. It stops at "sync points" (end of the
 *      head, end of a chunked body) and at the first bad byte;
 *   2. llhttp, fed only the bytes the scanner accepted, which produces
 *      the callbacks; the semantic checks (Content-Length/Transfer-Encoding
 *      rules, Host, target form, limits) run in those callbacks.
 *
 * llhttp never sees a byte the scanner refused, so whatever reaches the
 * caller has passed both. A plain head that arrived whole is not read by
 * llhttp at all: fast_head cuts the scanner's checked lines itself and
 * runs the same semantic checks (see "the one pass" below).
 *
 * The scanner is on the path of every head byte, so it takes whole plain
 * lines at once (start line, "name:value CRLF", the final CRLF) and runs
 * of ordinary bytes within a line, and falls back to its per-byte state
 * machine for anything else; both accept and refuse exactly the same
 * bytes. */
#include "http/h1/h1_codec.h"

#include <ctype.h>
#include <stdlib.h>

/* ---- errors ---- */

typedef enum {
    E_NONE = 0,
    E_PROTOCOL, /* generic llhttp refusal */
    E_BAD_METHOD,
    E_BAD_TARGET,
    E_BAD_VERSION,
    E_BAD_STATUS,
    E_MISSING_HOST,
    E_MULTIPLE_HOST,
    E_BAD_HOST,
    E_CL_AND_TE,
    E_MULTIPLE_CL,
    E_BAD_CL,
    E_BAD_TE,
    E_TE_HTTP10,
    E_OBS_FOLD,
    E_BARE_LF,
    E_BARE_CR,
    E_SPACE_BEFORE_COLON,
    E_BAD_HEADER_NAME,
    E_BAD_HEADER_VALUE,
    E_BAD_START_LINE,
    E_BAD_CHUNK,
    E_CHUNK_SIZE,
    E_CHUNK_EXT_TOO_LARGE,
    E_BAD_TRAILER,
    E_HEADER_TOO_LARGE,
    E_TOO_MANY_HEADERS,
    E_TRAILERS_TOO_LARGE,
    E_URI_TOO_LONG,
    E_BODY_TOO_LARGE,
    E_BAD_CONNECT,
    E_BAD_1XX,
    E_PREMATURE_EOF,
    E_ABORTED,
    E_NOMEM,
    E__COUNT
} h1_err;

typedef struct {
    uint16_t req_status;
    const char *req_reason;
    const char *resp_reason; /* response parser: always answered with 502 */
} h1_err_info;

static const h1_err_info err_table[E__COUNT] = {
    [E_NONE] = {0, "", ""},
    [E_PROTOCOL] = {400, "h1_protocol_error", "upstream_protocol_error"},
    [E_BAD_METHOD] = {400, "h1_bad_method", "upstream_protocol_error"},
    [E_BAD_TARGET] = {400, "h1_bad_target", "upstream_protocol_error"},
    [E_BAD_VERSION] = {505, "h1_bad_version", "upstream_bad_version"},
    [E_BAD_STATUS] = {400, "h1_protocol_error", "upstream_bad_status"},
    [E_MISSING_HOST] = {400, "h1_missing_host", "upstream_protocol_error"},
    [E_MULTIPLE_HOST] = {400, "h1_multiple_host", "upstream_protocol_error"},
    [E_BAD_HOST] = {400, "h1_bad_host", "upstream_protocol_error"},
    [E_CL_AND_TE] = {400, "h1_cl_and_te", "upstream_cl_and_te"},
    [E_MULTIPLE_CL] = {400, "h1_multiple_cl", "upstream_multiple_cl"},
    [E_BAD_CL] = {400, "h1_bad_cl", "upstream_bad_cl"},
    [E_BAD_TE] = {400, "h1_bad_te", "upstream_bad_te"},
    [E_TE_HTTP10] = {400, "h1_te_in_http10", "upstream_bad_te"},
    [E_OBS_FOLD] = {400, "h1_obs_fold", "upstream_protocol_error"},
    [E_BARE_LF] = {400, "h1_bare_lf", "upstream_protocol_error"},
    [E_BARE_CR] = {400, "h1_bare_cr", "upstream_protocol_error"},
    [E_SPACE_BEFORE_COLON] = {400, "h1_space_before_colon", "upstream_protocol_error"},
    [E_BAD_HEADER_NAME] = {400, "h1_bad_header_name", "upstream_protocol_error"},
    [E_BAD_HEADER_VALUE] = {400, "h1_bad_header_value", "upstream_protocol_error"},
    [E_BAD_START_LINE] = {400, "h1_bad_request_line", "upstream_bad_status_line"},
    [E_BAD_CHUNK] = {400, "h1_bad_chunk", "upstream_bad_chunk"},
    [E_CHUNK_SIZE] = {400, "h1_bad_chunk_size", "upstream_bad_chunk"},
    [E_CHUNK_EXT_TOO_LARGE] = {400, "h1_chunk_ext_too_large", "upstream_bad_chunk"},
    [E_BAD_TRAILER] = {400, "h1_bad_trailer", "upstream_bad_trailer"},
    [E_HEADER_TOO_LARGE] = {431, "h1_header_too_large", "upstream_header_too_large"},
    [E_TOO_MANY_HEADERS] = {431, "h1_too_many_headers", "upstream_too_many_headers"},
    [E_TRAILERS_TOO_LARGE] = {431, "h1_trailers_too_large", "upstream_trailers_too_large"},
    [E_URI_TOO_LONG] = {414, "h1_uri_too_long", "upstream_protocol_error"},
    [E_BODY_TOO_LARGE] = {413, "h1_body_too_large", "upstream_body_too_large"},
    [E_BAD_CONNECT] = {400, "h1_bad_connect", "upstream_protocol_error"},
    [E_BAD_1XX] = {400, "h1_protocol_error", "upstream_bad_1xx"},
    [E_PREMATURE_EOF] = {400, "h1_premature_eof", "upstream_premature_eof"},
    [E_ABORTED] = {400, "h1_aborted", "upstream_aborted"},
    [E_NOMEM] = {500, "h1_out_of_memory", "upstream_out_of_memory"},
};

/* ---- framing scanner ---- */

typedef enum {
    SC_OFF = 0, /* llhttp alone: identity body, or waiting for a callback to pick */
    SC_PRE,     /* before the start line: empty lines are tolerated (RFC 9112 2.2) */
    SC_PRE_CR,
    SC_START, /* start line */
    SC_START_CR,
    SC_LINE_BEGIN, /* first byte of a header line, or the final CRLF */
    SC_LINE,       /* inside a header line */
    SC_LINE_CR,
    SC_END_CR,  /* CR of the empty line that ends the section */
    SC_CH_SIZE, /* chunk-size digits */
    SC_CH_EXT,  /* chunk extensions up to CR */
    SC_CH_SIZE_CR,
    SC_CH_DATA,
    SC_CH_DATA_CR,
    SC_CH_DATA_LF,
} sc_state;

typedef struct {
    uint8_t st;
    bool trailers;     /* SC_LINE_* are reading a trailer section */
    bool colon;        /* current header line has had its ':' */
    uint8_t digits;    /* chunk-size hex digits so far */
    uint32_t line_len; /* bytes of the current start line */
    uint32_t sp;       /* SP count in the start line */
    uint8_t prev;      /* previous start-line byte */
    uint32_t section;  /* bytes in the current head or trailer section */
    uint32_t ext;      /* chunk-extension bytes of the current chunk */
    uint64_t size;     /* current chunk size, then bytes still to skip */
    uint64_t total;    /* sum of chunk sizes (body limit) */
} h1_scan;

enum { SCAN_MORE = 0, SCAN_SYNC = 1, SCAN_ERROR = -1 };

/* A 16-hex-digit chunk size already covers 2^64 - 1; more digits can only
 * be padding meant to confuse a peer with a narrower counter. */
#define MAX_CHUNK_DIGITS 16
/* Interim responses a single request may receive before its final one. */
#define MAX_INTERIM 16

/* ---- parser ---- */

typedef struct {
    char *p;
    size_t len, cap;
} h1_acc;

typedef enum { P_IDLE = 0, P_MSG, P_DONE, P_ERROR } p_state;

struct weft_h1_parser {
    llhttp_t ll;
    llhttp_settings_t settings;
    weft_h1_kind kind;
    weft_h1_limits lim;
    weft_h1_callbacks cbs;
    void *ud;
    weft_arena *arena;
    int req_method_id;

    p_state state;
    bool in_message;
    bool in_body;
    bool user_paused;
    bool needs_feed; /* a pause happened and no feed has followed yet */
    bool in_trailers;
    bool skip_body;  /* response must be read as bodyless */
    uint8_t interim; /* 1xx responses seen for this request */
    h1_scan sc;

    weft_req_head req;
    weft_resp_head resp;
    weft_hdrs trailers;
    h1_acc name, value, url, reason;
    int n_cl, n_te, n_host;
    uint8_t field;      /* HF_* of the field being read */
    int32_t host_idx;   /* the request's Host in its headers, or -1 */
    int32_t expect_idx; /* the request's first Expect, or -1 */
    uint64_t cl;
    uint64_t body_seen;

    h1_err err;
    h1_err scan_err; /* held back until llhttp has seen the good prefix */
    bool head_seen;  /* on_headers_complete ran for the current head */

    /* The head copy: while llhttp reads a whole head that arrived in one
     * feed, hd_src is those bytes in the caller's buffer and hd_copy the
     * arena copy of them (hd_len bytes) the fields are views into; hd_len
     * is 0 otherwise. */
    const char *hd_src;
    char *hd_copy;
    size_t hd_len;

    /* The one pass (fast_head): whether it may run, and where the message
     * stands after a head it took: FS_LENGTH while fast_left body bytes
     * are still to come, FS_COMPLETE when only the end is owed. */
    bool one_pass;
    uint8_t fast;
    uint32_t one_pass_heads; /* heads fast_head took (tests) */
    uint64_t fast_left;
};

enum { FS_NONE = 0, FS_LENGTH, FS_COMPLETE };

/* The fields the parser reads itself, known by name as they are parsed. */
enum { HF_OTHER = 0, HF_CL, HF_TE, HF_HOST, HF_EXPECT, HF_CONNECTION, HF_UPGRADE };

/* ---- small helpers ---- */

static inline bool is_tchar(unsigned char c) {
    return weft_is_tchar(c);
}

static bool is_ctl(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

/* ASCII lower-casing of the eight bytes of x: a byte gets 0x20 added
 * exactly when it is in 'A'..'Z' (its top bit is clear and its low seven
 * bits are >= 'A' and <= 'Z'); only the bytes in `keep` may change. */
static inline uint64_t lower_word(uint64_t x, uint64_t keep) {
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t low7 = x & ~high;
    uint64_t ge_a = low7 + ones * (0x80 - 'A');
    uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);
    uint64_t upper = (ge_a ^ gt_z) & ~x & high;
    return x | ((upper >> 2) & keep);
}

/* Lower-cases n bytes from s into d (d == s is fine), eight at a time;
 * `room` bytes from s and d may be read and written back unchanged
 * (room >= n), which lets a short tail go as one masked word (bytes in
 * memory order, so little-endian only). */
static void lower_copy(char *d, const char *s, size_t n, size_t room) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        x = lower_word(x, ~(uint64_t)0);
        memcpy(d + i, &x, 8);
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (i < n && room - i >= 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        x = lower_word(x, (UINT64_C(1) << (8 * (n - i))) - 1);
        memcpy(d + i, &x, 8);
        return;
    }
#else
    (void)room;
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        d[i] = (char)((unsigned)(c - 'A') < 26u ? c + ('a' - 'A') : c);
    }
}

/* Appends a span llhttp delivered. When the span lies in the head copy
 * (see weft_h1_parser_feed), the field is a view into that copy, extended
 * in place while its spans follow each other there (names lower-cased in
 * the copy); cap 0 marks such a view. Otherwise, and for a field that
 * started elsewhere, it is copied: a field usually comes in one span, so
 * the first takes exactly its size (the arena rounds it up to 16); only a
 * field cut by the end of a read grows. */
static int acc_append(weft_h1_parser *p, h1_acc *b, const char *s, size_t n, bool lower) {
    if (!n) /* llhttp may end an empty span (": v", an empty name): nothing to add */
        return 0;
    uintptr_t off = (uintptr_t)s - (uintptr_t)p->hd_src;
    if (off < p->hd_len && n <= p->hd_len - off && b->cap == 0) {
        char *v = p->hd_copy + off;
        if (b->len == 0 || b->p + b->len == v) {
            if (lower)
                lower_copy(v, v, n, p->hd_len - off);
            if (b->len == 0)
                b->p = v;
            b->len += n;
            return 0;
        }
    }
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        while (ncap < b->len + n)
            ncap *= 2;
        char *np = weft_arena_alloc(p->arena, ncap);
        if (!np)
            return -1;
        if (b->len)
            memcpy(np, b->p, b->len);
        b->p = np;
        b->cap = ncap;
    }
    if (lower)
        lower_copy(b->p + b->len, s, n, n);
    else
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* The views handed to weft_hdrs_add_ref keep pointing into the finished
 * buffer, so the next field starts a fresh one instead of reusing it. */
static weft_sv acc_take(h1_acc *b) {
    weft_sv v = b->len ? (weft_sv){b->p, b->len} : WEFT_SV_LIT("");
    b->p = NULL;
    b->len = b->cap = 0;
    return v;
}

static weft_h1_parser *P(llhttp_t *ll) {
    return (weft_h1_parser *)ll->data;
}

static int fail(weft_h1_parser *p, h1_err e) {
    if (p->err == E_NONE)
        p->err = e;
    return HPE_USER;
}

static bool is_response(const weft_h1_parser *p) {
    return p->kind == WEFT_H1_RESPONSE;
}

/* ---- the scanner ---- */

static void scan_start_head(h1_scan *s) {
    memset(s, 0, sizeof(*s));
    s->st = SC_PRE;
}

/* Start-line rules beyond llhttp's loose mode: a request line is exactly
 * "method SP target SP version" (no doubled, leading or trailing SP, no
 * HTAB); a status line is "HTTP/x.y SP 3DIGIT [SP reason]". */
static bool start_byte_ok(const weft_h1_parser *p, h1_scan *s, unsigned char c) {
    uint32_t i = s->line_len;
    if (!is_response(p)) {
        /* all of method, target and version are ASCII; raw bytes >= 0x80
         * in a target must be percent-encoded (RFC 3986 2.1) */
        if (is_ctl(c) || c >= 0x80)
            return false;
        if (c == ' ') {
            if (i == 0 || s->prev == ' ' || ++s->sp > 2)
                return false;
        }
        return true;
    }
    if (i < 8)
        return c != ' ' && !is_ctl(c);
    if (i == 8)
        return c == ' ';
    if (i < 12)
        return c >= '0' && c <= '9';
    if (i == 12)
        return c == ' ';
    return c == '\t' || !is_ctl(c);
}

static bool start_line_complete_ok(const weft_h1_parser *p, const h1_scan *s) {
    if (!is_response(p))
        return s->sp == 2 && s->prev != ' ';
    /* "HTTP/1.1 200" without the SP before an empty reason is sent by
     * real servers; RFC 9112 4 asks recipients to accept it. */
    return s->line_len >= 12;
}

/* The fast paths below skip runs of bytes that the per-byte state machine
 * in scan() would accept without leaving its state, so they change
 * nothing it decides: the same bytes are refused, at the same offset,
 * for the same reason. Each run stops at `end`, which never lets the
 * section pass its limit: the byte that would pass it is then read by the
 * per-byte machine, which refuses it as before. A header value's run is
 * weft_text_span. */

/* A header name before its ':': tchar bytes. */
static size_t name_run(const char *data, size_t i, size_t end) {
    while (i < end && is_tchar((unsigned char)data[i]))
        i++;
    return i;
}

/* The start line: the bytes start_byte_ok accepts without a positional
 * rule: a request's VCHARs other than SP (method, target, version), a
 * status line's reason phrase (from byte 13 on). Updates line_len and
 * prev as the per-byte path would. */
static size_t start_run(const weft_h1_parser *p, h1_scan *s, const char *data, size_t i,
                        size_t end) {
    size_t j = i;
    if (!is_response(p)) {
        while (j < end && (unsigned char)data[j] - 0x21u < 0x5eu)
            j++;
    } else if (s->line_len >= 13) {
        while (j < end && weft_is_text_byte((unsigned char)data[j]))
            j++;
    }
    if (j > i) {
        s->line_len += (uint32_t)(j - i);
        s->prev = (uint8_t)data[j - 1];
    }
    return j;
}

/* The start line, whole, when its bytes and its CRLF are all in
 * data[i, end): returns the offset just past the LF, having set what the
 * per-byte path would have set by then; 0 when it is not a plain line (or
 * not all here), in which case nothing changed and the per-byte path reads
 * it. A request line is exactly three non-empty runs of VCHARs separated by
 * single SPs; a status line is 8 bytes of version, SP, 3 digits, then
 * either the CR or SP and a reason of text bytes. */
static size_t start_line_fast(const weft_h1_parser *p, h1_scan *s, const char *data, size_t i,
                              size_t end) {
    size_t j = i;
    if (!is_response(p)) {
        for (int part = 0; part < 3; part++) {
            size_t k = j;
            while (k < end && (unsigned char)data[k] - 0x21u < 0x5eu)
                k++;
            if (k == j || k >= end || data[k] != (part < 2 ? ' ' : '\r'))
                return 0;
            j = k + 1;
        }
    } else {
        if (end - i < 14)
            return 0;
        for (int k = 0; k < 8; k++) {
            unsigned char c = (unsigned char)data[i + k];
            if (c == ' ' || is_ctl(c))
                return 0;
        }
        if (data[i + 8] != ' ')
            return 0;
        for (int k = 9; k < 12; k++)
            if (data[i + k] < '0' || data[i + k] > '9')
                return 0;
        j = i + 12;
        if (data[j] == ' ') {
            j++;
            while (j < end && weft_is_text_byte((unsigned char)data[j]))
                j++;
        }
        if (j >= end || data[j] != '\r')
            return 0;
        j++;
    }
    /* here data[j - 1] is the CR */
    if (j >= end || data[j] != '\n')
        return 0;
    if (!is_response(p))
        s->sp = 2;
    s->line_len = (uint32_t)(j - 1 - i);
    s->prev = (uint8_t)data[j - 2];
    s->section += (uint32_t)(j + 1 - i);
    s->st = SC_LINE_BEGIN;
    return j + 1;
}

/* Whole header lines "name:value CRLF", as many as are all in
 * data[i, end), and the empty line that ends the section: returns the
 * offset past the last one taken (i when none), with the state the
 * per-byte path would have reached there (SC_LINE_BEGIN, or SC_OFF after
 * the empty line; *sync then). A line that is anything else (folding, a
 * bad byte, a bare CR or LF, no ':', cut by the end of the data or by the
 * limit) is left to the per-byte path. */
static size_t lines_fast(const weft_h1_parser *p, h1_scan *s, const char *data, size_t i, size_t n,
                         bool *sync) {
    for (;;) {
        size_t room = p->lim.max_header_bytes - s->section;
        size_t end = n - i > room ? i + room : n;
        if (end - i >= 2 && data[i] == '\r' && data[i + 1] == '\n') {
            s->section += 2;
            s->st = SC_OFF;
            *sync = true;
            return i + 2;
        }
        size_t k = name_run(data, i, end);
        if (k == i || k >= end || data[k] != ':')
            return i;
        k = weft_text_span(data, k + 1, end);
        if (end - k < 2 || data[k] != '\r' || data[k + 1] != '\n')
            return i;
        s->colon = true;
        s->section += (uint32_t)(k + 2 - i);
        i = k + 2;
    }
}

/* Scans up to n bytes. Returns SCAN_MORE when all n were fine, SCAN_SYNC
 * when a section ended (*used includes its last byte), SCAN_ERROR with
 * *used = the number of good bytes before the offending one. */
static int scan(weft_h1_parser *p, const char *data, size_t n, size_t *used) {
    h1_scan *s = &p->sc;
    size_t i = 0;
    h1_err e = E_NONE;

#define SCAN_FAIL(code)                                                                            \
    do {                                                                                           \
        e = (code);                                                                                \
        goto fail;                                                                                 \
    } while (0)
    while (i < n) {
        if (s->st == SC_LINE_BEGIN) {
            bool sync = false;
            i = lines_fast(p, s, data, i, n, &sync);
            if (sync) {
                *used = i;
                return SCAN_SYNC;
            }
            if (i == n)
                break;
        } else if (s->st == SC_START && s->line_len == 0) {
            size_t room = p->lim.max_header_bytes - s->section;
            size_t j = start_line_fast(p, s, data, i, n - i > room ? i + room : n);
            if (j) {
                i = j;
                continue;
            }
        }
        if (s->st == SC_LINE || s->st == SC_START) {
            /* section <= max_header_bytes holds here (the per-byte path
             * refuses the byte that would pass it), so room >= 0 */
            size_t room = p->lim.max_header_bytes - s->section;
            size_t end = n - i > room ? i + room : n;
            size_t j;
            if (s->st == SC_START)
                j = start_run(p, s, data, i, end);
            else
                j = s->colon ? weft_text_span(data, i, end) : name_run(data, i, end);
            if (j > i) {
                s->section += (uint32_t)(j - i);
                i = j;
                continue;
            }
        }
        unsigned char c = (unsigned char)data[i];
        if (s->st >= SC_START && s->st <= SC_END_CR) { /* the head or trailer section */
            if (++s->section > p->lim.max_header_bytes)
                SCAN_FAIL(s->trailers ? E_TRAILERS_TOO_LARGE : E_HEADER_TOO_LARGE);
        }
        switch ((sc_state)s->st) {
        case SC_OFF:
            *used = i;
            return SCAN_SYNC;
        case SC_PRE:
            if (c == '\r') {
                s->st = SC_PRE_CR;
            } else if (c == '\n') {
                SCAN_FAIL(E_BARE_LF);
            } else {
                s->st = SC_START;
                continue; /* re-read this byte as the first of the start line */
            }
            break;
        case SC_PRE_CR:
            if (c != '\n')
                SCAN_FAIL(E_BARE_CR);
            s->st = SC_PRE;
            break;
        case SC_START:
            if (c == '\r') {
                if (!start_line_complete_ok(p, s))
                    SCAN_FAIL(E_BAD_START_LINE);
                s->st = SC_START_CR;
            } else if (c == '\n') {
                SCAN_FAIL(E_BARE_LF);
            } else {
                if (!start_byte_ok(p, s, c))
                    SCAN_FAIL(E_BAD_START_LINE);
                s->line_len++;
                s->prev = c;
            }
            break;
        case SC_START_CR:
            if (c != '\n')
                SCAN_FAIL(E_BARE_CR);
            s->st = SC_LINE_BEGIN;
            break;
        case SC_LINE_BEGIN:
            if (c == '\r') {
                s->st = SC_END_CR;
            } else if (c == '\n') {
                SCAN_FAIL(E_BARE_LF);
            } else if (c == ' ' || c == '\t') {
                SCAN_FAIL(E_OBS_FOLD);
            } else if (c == ':') {
                SCAN_FAIL(E_BAD_HEADER_NAME);
            } else {
                s->colon = false;
                s->st = SC_LINE;
                s->section--; /* counted again when SC_LINE re-reads it */
                continue;
            }
            break;
        case SC_LINE:
            if (c == '\r') {
                if (!s->colon)
                    SCAN_FAIL(E_BAD_HEADER_NAME);
                s->st = SC_LINE_CR;
            } else if (c == '\n') {
                SCAN_FAIL(E_BARE_LF);
            } else if (!s->colon) {
                if (c == ':')
                    s->colon = true;
                else if (c == ' ' || c == '\t')
                    SCAN_FAIL(E_SPACE_BEFORE_COLON);
                else if (!is_tchar(c))
                    SCAN_FAIL(E_BAD_HEADER_NAME);
            } else if (c != '\t' && is_ctl(c)) {
                SCAN_FAIL(E_BAD_HEADER_VALUE);
            }
            break;
        case SC_LINE_CR:
            if (c != '\n')
                SCAN_FAIL(E_BARE_CR);
            s->st = SC_LINE_BEGIN;
            break;
        case SC_END_CR:
            if (c != '\n')
                SCAN_FAIL(E_BARE_CR);
            s->st = SC_OFF;
            *used = i + 1;
            return SCAN_SYNC;
        case SC_CH_SIZE: {
            int d = isxdigit(c) ? (isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10)) : -1;
            if (d >= 0) {
                if (++s->digits > MAX_CHUNK_DIGITS)
                    SCAN_FAIL(E_CHUNK_SIZE);
                s->size = (s->size << 4) | (uint64_t)d;
            } else if (s->digits == 0) {
                SCAN_FAIL(E_CHUNK_SIZE);
            } else if (c == '\r') {
                s->st = SC_CH_SIZE_CR;
            } else if (c == ';' || c == ' ' || c == '\t') {
                s->ext = 1;
                s->st = SC_CH_EXT;
            } else if (c == '\n') {
                SCAN_FAIL(E_BARE_LF);
            } else {
                SCAN_FAIL(E_CHUNK_SIZE);
            }
            break;
        }
        case SC_CH_EXT:
            if (c == '\r') {
                s->st = SC_CH_SIZE_CR;
            } else if (c == '\n') {
                SCAN_FAIL(E_BARE_LF);
            } else if (c != '\t' && is_ctl(c)) {
                SCAN_FAIL(E_BAD_CHUNK);
            } else if (++s->ext > p->lim.max_chunk_ext_bytes) {
                SCAN_FAIL(E_CHUNK_EXT_TOO_LARGE);
            }
            break;
        case SC_CH_SIZE_CR:
            if (c != '\n')
                SCAN_FAIL(E_BARE_CR);
            if (s->size == 0) {
                /* last-chunk: a trailer section follows, same rules as a head */
                s->trailers = true;
                s->section = 0;
                s->st = SC_LINE_BEGIN;
                break;
            }
            if (s->size > UINT64_MAX - s->total)
                SCAN_FAIL(E_BODY_TOO_LARGE);
            s->total += s->size;
            if (p->lim.max_body_bytes && s->total > p->lim.max_body_bytes)
                SCAN_FAIL(E_BODY_TOO_LARGE);
            s->st = SC_CH_DATA;
            break;
        case SC_CH_DATA: {
            size_t take = n - i;
            if (take > s->size)
                take = (size_t)s->size;
            s->size -= take;
            i += take;
            if (s->size == 0)
                s->st = SC_CH_DATA_CR;
            continue;
        }
        case SC_CH_DATA_CR:
            if (c != '\r')
                SCAN_FAIL(c == '\n' ? E_BARE_LF : E_BAD_CHUNK);
            s->st = SC_CH_DATA_LF;
            break;
        case SC_CH_DATA_LF:
            if (c != '\n')
                SCAN_FAIL(E_BARE_CR);
            s->digits = 0;
            s->size = 0;
            s->ext = 0;
            s->st = SC_CH_SIZE;
            break;
        }
        i++;
    }
    *used = n;
    return SCAN_MORE;
fail:
    p->scan_err = e;
    *used = i;
    return SCAN_ERROR;
#undef SCAN_FAIL
}

static void scan_start_chunked(h1_scan *s) {
    uint64_t total = s->total;
    memset(s, 0, sizeof(*s));
    s->total = total;
    s->st = SC_CH_SIZE;
}

/* ---- message state ---- */

/* Only the head of the parser's kind: the other is never read. */
static void begin_message_heads(weft_h1_parser *p) {
    if (is_response(p)) {
        memset(&p->resp, 0, sizeof(p->resp));
        p->resp.content_length = -1;
        weft_hdrs_init(&p->resp.headers, p->arena);
    } else {
        memset(&p->req, 0, sizeof(p->req));
        p->req.content_length = -1;
        weft_hdrs_init(&p->req.headers, p->arena);
    }
    weft_hdrs_init(&p->trailers, p->arena);
    memset(&p->name, 0, sizeof(p->name));
    memset(&p->value, 0, sizeof(p->value));
    memset(&p->url, 0, sizeof(p->url));
    memset(&p->reason, 0, sizeof(p->reason));
    p->n_cl = p->n_te = p->n_host = 0;
    p->field = HF_OTHER;
    p->host_idx = p->expect_idx = -1;
    p->cl = 0;
    p->in_trailers = false;
    p->skip_body = false;
}

static weft_hdrs *cur_headers(weft_h1_parser *p) {
    if (p->in_trailers)
        return &p->trailers;
    return is_response(p) ? &p->resp.headers : &p->req.headers;
}

/* ---- llhttp callbacks ---- */

static int cb_message_begin(llhttp_t *ll) {
    weft_h1_parser *p = P(ll);
    p->in_message = true;
    begin_message_heads(p);
    return 0;
}

static int cb_url(llhttp_t *ll, const char *at, size_t n) {
    weft_h1_parser *p = P(ll);
    if (p->url.len + n > p->lim.max_uri_len)
        return fail(p, E_URI_TOO_LONG);
    if (acc_append(p, &p->url, at, n, false) != 0)
        return fail(p, E_NOMEM);
    return 0;
}

static int cb_status(llhttp_t *ll, const char *at, size_t n) {
    weft_h1_parser *p = P(ll);
    if (acc_append(p, &p->reason, at, n, false) != 0)
        return fail(p, E_NOMEM);
    return 0;
}

static int cb_header_field(llhttp_t *ll, const char *at, size_t n) {
    weft_h1_parser *p = P(ll);
    if (acc_append(p, &p->name, at, n, true) != 0)
        return fail(p, E_NOMEM);
    return 0;
}

/* The name (lower-cased) as one of HF_*: length first, then one compare. */
static uint8_t field_kind(const char *n, size_t len) {
    switch (len) {
    case 4:
        return memcmp(n, "host", 4) == 0 ? HF_HOST : HF_OTHER;
    case 6:
        return memcmp(n, "expect", 6) == 0 ? HF_EXPECT : HF_OTHER;
    case 7:
        return memcmp(n, "upgrade", 7) == 0 ? HF_UPGRADE : HF_OTHER;
    case 10:
        return memcmp(n, "connection", 10) == 0 ? HF_CONNECTION : HF_OTHER;
    case 16: /* llhttp reads it as Connection */
        return memcmp(n, "proxy-connection", 16) == 0 ? HF_CONNECTION : HF_OTHER;
    case 14:
        return memcmp(n, "content-length", 14) == 0 ? HF_CL : HF_OTHER;
    case 17:
        return memcmp(n, "transfer-encoding", 17) == 0 ? HF_TE : HF_OTHER;
    default:
        return HF_OTHER;
    }
}

/* The name's bytes need no check here: the scanner refused any line whose
 * name is empty or holds a byte other than a tchar before llhttp saw it. */
static int cb_header_field_complete(llhttp_t *ll) {
    weft_h1_parser *p = P(ll);
    if (cur_headers(p)->n >= p->lim.max_headers)
        return fail(p, E_TOO_MANY_HEADERS);
    p->field = field_kind(p->name.p, p->name.len);
    bool is_cl = p->field == HF_CL;
    bool is_te = p->field == HF_TE;
    bool is_host = p->field == HF_HOST;
    if (p->in_trailers) {
        /* Framing and routing fields in trailers would be read by some
         * hops and not others. */
        if (is_cl || is_te || is_host)
            return fail(p, E_BAD_TRAILER);
        return 0;
    }
    /* Checked here, at the name, before llhttp looks at the value, so that
     * each refusal gets its own reason whatever llhttp would have said. */
    if (is_cl) {
        if (p->n_te)
            return fail(p, E_CL_AND_TE);
        if (p->n_cl)
            return fail(p, E_MULTIPLE_CL);
        p->n_cl++;
    } else if (is_te) {
        if (p->n_cl)
            return fail(p, E_CL_AND_TE);
        p->n_te++;
    } else if (is_host) {
        if (p->n_host)
            return fail(p, E_MULTIPLE_HOST);
        p->n_host++;
    }
    return 0;
}

static int cb_header_value(llhttp_t *ll, const char *at, size_t n) {
    weft_h1_parser *p = P(ll);
    if (acc_append(p, &p->value, at, n, false) != 0)
        return fail(p, E_NOMEM);
    return 0;
}

static int parse_cl(weft_sv v, uint64_t *out) {
    /* 1*DIGIT only: no sign, no list ("5, 5"), no whitespace inside; 15
     * digits is far beyond any body we would accept and cannot overflow. */
    if (v.len == 0 || v.len > 15)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = x;
    return 0;
}

/* The value's bytes need no check here either: the scanner refused every
 * control byte but HTAB in the line, before llhttp saw it. So every field
 * this parser adds is well-formed as the writer checks it (a non-empty
 * tchar name, field-value bytes), which the list's `checked` count records
 * once the head (finish_*_head) or the trailers (cb_chunk_complete) end. */
static int cb_header_value_complete(llhttp_t *ll) {
    weft_h1_parser *p = P(ll);
    weft_sv name = acc_take(&p->name);
    weft_sv value = weft_sv_trim(acc_take(&p->value));
    weft_hdrs *h = cur_headers(p);
    if (!p->in_trailers) {
        if (p->field == HF_CL && parse_cl(value, &p->cl) != 0)
            return fail(p, E_BAD_CL);
        if (p->field == HF_HOST)
            p->host_idx = (int32_t)h->n;
        else if (p->field == HF_EXPECT && p->expect_idx < 0)
            p->expect_idx = (int32_t)h->n;
    }
    if (weft_hdrs_add_ref(h, name, value) != 0)
        return fail(p, E_NOMEM);
    return 0;
}

/* Transfer-Encoding, all field lines joined, must be exactly one coding,
 * chunked. A coding before chunked (gzip, chunked) is valid HTTP, but
 * weft implements no transfer coding other than chunked and would have to
 * forward a body it cannot interpret; every other shape (chunked not last,
 * chunked twice, identity, unknown names) is a known smuggling decoy. */
static bool te_valid(const weft_hdrs *h) {
    int codings = 0;
    bool chunked = false;
    for (uint32_t i = 0; i < h->n; i++) {
        if (!weft_sv_eq(h->v[i].name, WEFT_SV_LIT("transfer-encoding")))
            continue;
        weft_sv v = h->v[i].value;
        size_t start = 0;
        for (size_t k = 0; k <= v.len; k++) {
            if (k < v.len && v.p[k] != ',')
                continue;
            weft_sv e = weft_sv_trim((weft_sv){v.p + start, k - start});
            start = k + 1;
            codings++;
            chunked = weft_sv_ieq_cstr(e, "chunked");
        }
    }
    return codings == 1 && chunked;
}

static bool host_valid(weft_sv h) {
    for (size_t i = 0; i < h.len; i++) {
        unsigned char c = (unsigned char)h.p[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == '@' || c == '?' || c == '#' || c == '\\' ||
            c == ',')
            return false;
    }
    return true;
}

static bool authority_form_valid(weft_sv t) {
    /* host:port with a non-empty host and a numeric port */
    size_t colon = t.len;
    for (size_t i = t.len; i > 0; i--)
        if (t.p[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    if (colon == t.len || colon == 0 || colon + 1 == t.len || colon + 6 < t.len)
        return false;
    for (size_t i = colon + 1; i < t.len; i++)
        if (t.p[i] < '0' || t.p[i] > '9')
            return false;
    return host_valid(t);
}

static void split_path_query(weft_sv pq, weft_sv *path, weft_sv *query) {
    for (size_t i = 0; i < pq.len; i++)
        if (pq.p[i] == '?') {
            *path = (weft_sv){pq.p, i};
            *query = (weft_sv){pq.p + i + 1, pq.len - i - 1};
            return;
        }
    *path = pq;
    *query = (weft_sv){pq.p + pq.len, 0};
}

static int parse_target(weft_h1_parser *p, weft_req_head *r) {
    weft_sv t = r->target;
    if (t.len == 0)
        return fail(p, E_BAD_TARGET);
    for (size_t i = 0; i < t.len; i++)
        if (t.p[i] == '#')
            return fail(p, E_BAD_TARGET); /* fragments never travel (RFC 9112 3.2) */
    if (r->method_id == HTTP_CONNECT) {
        if (!authority_form_valid(t))
            return fail(p, E_BAD_TARGET);
        r->authority = t;
        r->path = (weft_sv){t.p + t.len, 0};
        r->query = r->path;
        return 0;
    }
    if (t.len == 1 && t.p[0] == '*') {
        if (r->method_id != HTTP_OPTIONS)
            return fail(p, E_BAD_TARGET);
        r->path = t;
        r->query = (weft_sv){t.p + 1, 0};
        return 0;
    }
    if (t.p[0] == '/') {
        split_path_query(t, &r->path, &r->query);
        return 0;
    }
    /* absolute-form: scheme "://" authority [path-abempty] ["?" query] */
    size_t i = 0;
    if (!isalpha((unsigned char)t.p[0]))
        return fail(p, E_BAD_TARGET);
    while (i < t.len &&
           (isalnum((unsigned char)t.p[i]) || t.p[i] == '+' || t.p[i] == '-' || t.p[i] == '.'))
        i++;
    if (i + 3 > t.len || memcmp(t.p + i, "://", 3) != 0)
        return fail(p, E_BAD_TARGET);
    size_t a = i + 3, e = a;
    while (e < t.len && t.p[e] != '/' && t.p[e] != '?')
        e++;
    weft_sv auth = {t.p + a, e - a};
    /* userinfo in a request target is a phishing and ACL-bypass vector */
    if (auth.len == 0 || !host_valid(auth))
        return fail(p, E_BAD_TARGET);
    r->authority = auth;
    weft_sv pq = {t.p + e, t.len - e};
    split_path_query(pq, &r->path, &r->query);
    if (r->path.len == 0)
        r->path = WEFT_SV_LIT("/");
    return 0;
}

static bool version_ok(const llhttp_t *ll) {
    return ll->http_major == 1 && ll->http_minor <= 1;
}

static int finish_req_head(weft_h1_parser *p) {
    llhttp_t *ll = &p->ll;
    weft_req_head *r = &p->req;
    r->headers.checked = r->headers.n; /* see cb_header_value_complete */
    if (!version_ok(ll))
        return fail(p, E_BAD_VERSION);
    r->http_minor = ll->http_minor;
    r->method_id = ll->method;
    r->method = weft_sv_from(llhttp_method_name((llhttp_method_t)ll->method));
    r->target = acc_take(&p->url);
    if (parse_target(p, r) != 0)
        return HPE_USER;

    /* at most one Host (cb_header_field_complete) */
    const weft_sv *host = p->host_idx >= 0 ? &r->headers.v[p->host_idx].value : NULL;
    if (!host && r->http_minor == 1)
        return fail(p, E_MISSING_HOST);
    if (host && !host_valid(*host))
        return fail(p, E_BAD_HOST);
    if (r->authority.len == 0) {
        r->authority = host ? *host : WEFT_SV_LIT("");
    } else if (r->method_id != HTTP_CONNECT) {
        /* absolute-form: RFC 9112 3.2.2 has the target's authority replace
         * Host, and a proxy must forward a Host generated from it; doing it
         * here keeps routing (authority) and the forwarded header in step. */
        if (host) /* a checked field keeps well-formed bytes: host_valid */
            r->headers.v[p->host_idx].value = r->authority;
        else if (weft_hdrs_add_ref(&r->headers, WEFT_SV_LIT("host"), r->authority) != 0)
            return fail(p, E_NOMEM);
    }

    if (p->n_te) {
        if (r->http_minor == 0)
            return fail(p, E_TE_HTTP10);
        if (!te_valid(&r->headers) || !(ll->flags & F_CHUNKED))
            return fail(p, E_BAD_TE);
        r->framing = WEFT_BODY_CHUNKED;
    } else if (p->n_cl) {
        r->content_length = (int64_t)p->cl;
        r->framing = p->cl ? WEFT_BODY_LENGTH : WEFT_BODY_NONE;
        if (p->lim.max_body_bytes && p->cl > p->lim.max_body_bytes)
            return fail(p, E_BODY_TOO_LARGE);
    } else {
        r->framing = WEFT_BODY_NONE;
    }
    /* llhttp hands a CONNECT's bytes after the head to the tunnel; a body
     * there would be read as tunnel data by us and as a body by others. */
    if (r->method_id == HTTP_CONNECT && r->framing != WEFT_BODY_NONE)
        return fail(p, E_BAD_CONNECT);

    r->keep_alive = llhttp_should_keep_alive(ll) != 0;
    const weft_sv *expect = p->expect_idx >= 0 ? &r->headers.v[p->expect_idx].value : NULL;
    r->expect_continue =
        expect && r->http_minor == 1 && weft_sv_ieq_cstr(weft_sv_trim(*expect), "100-continue");
    r->upgrade = ll->upgrade != 0;
    return 0;
}

static int finish_resp_head(weft_h1_parser *p) {
    llhttp_t *ll = &p->ll;
    weft_resp_head *r = &p->resp;
    r->headers.checked = r->headers.n; /* see cb_header_value_complete */
    if (!version_ok(ll))
        return fail(p, E_BAD_VERSION);
    if (ll->status_code < 100 || ll->status_code > 599)
        return fail(p, E_BAD_STATUS);
    r->status = ll->status_code;
    r->http_minor = ll->http_minor;
    r->reason = acc_take(&p->reason);
    for (size_t i = 0; i < r->reason.len; i++) {
        unsigned char c = (unsigned char)r->reason.p[i];
        if (c != '\t' && is_ctl(c))
            return fail(p, E_BAD_START_LINE);
    }

    if (p->n_te) {
        if (r->http_minor == 0)
            return fail(p, E_TE_HTTP10);
        /* A response whose TE is not chunked-final would be read until
         * close (RFC 9112 6.3); refusing it keeps both hops in step. */
        if (!te_valid(&r->headers) || !(ll->flags & F_CHUNKED))
            return fail(p, E_BAD_TE);
    }
    if (p->n_cl)
        r->content_length = (int64_t)p->cl;

    bool head = p->req_method_id == HTTP_HEAD;
    bool connect_ok = p->req_method_id == HTTP_CONNECT && r->status >= 200 && r->status < 300;
    p->skip_body = weft_resp_is_bodyless(r->status, head) || connect_ok;
    if (p->skip_body)
        r->framing = WEFT_BODY_NONE;
    else if (p->n_te)
        r->framing = WEFT_BODY_CHUNKED;
    else if (p->n_cl)
        r->framing = p->cl ? WEFT_BODY_LENGTH : WEFT_BODY_NONE;
    else
        r->framing = WEFT_BODY_UNTIL_CLOSE;
    if (!p->skip_body && r->framing == WEFT_BODY_LENGTH && p->lim.max_body_bytes &&
        p->cl > p->lim.max_body_bytes)
        return fail(p, E_BODY_TOO_LARGE);

    bool persistent = r->http_minor == 1 ? !(ll->flags & F_CONNECTION_CLOSE)
                                         : (ll->flags & F_CONNECTION_KEEP_ALIVE) != 0;
    r->keep_alive = persistent && r->framing != WEFT_BODY_UNTIL_CLOSE;
    return 0;
}

/* After a head passed every check (finish_*_head): the scanner's next
 * state, and the caller's on_*_head. Returns what on_headers_complete
 * returns to llhttp (0, 1: no body, HPE_PAUSED, HPE_USER). */
static int deliver_head(weft_h1_parser *p) {
    llhttp_t *ll = &p->ll;
    int rc;
    weft_body_framing framing = is_response(p) ? p->resp.framing : p->req.framing;
    bool interim = is_response(p) && p->resp.status < 200 && p->resp.status != 101;
    if (framing == WEFT_BODY_CHUNKED)
        scan_start_chunked(&p->sc);
    if (!interim)
        p->in_body = true;

    if (is_response(p)) {
        rc = p->cbs.on_resp_head ? p->cbs.on_resp_head(p->ud, &p->resp) : WEFT_H1_CB_OK;
        if (rc == WEFT_H1_CB_SKIP_BODY && !p->skip_body) {
            p->skip_body = true;
            p->resp.framing = WEFT_BODY_NONE;
            p->sc.st = SC_OFF;
        }
    } else {
        rc = p->cbs.on_req_head ? p->cbs.on_req_head(p->ud, &p->req) : WEFT_H1_CB_OK;
    }
    if (rc == WEFT_H1_CB_ABORT || rc < 0)
        return fail(p, E_ABORTED);
    if (rc == WEFT_H1_CB_PAUSE) {
        /* Pausing here cannot also return 1 ("no body") to llhttp, so set
         * the flag that return value would have set. */
        if (p->skip_body)
            ll->flags |= F_SKIPBODY;
        return HPE_PAUSED;
    }
    return p->skip_body ? 1 : 0;
}

static int cb_headers_complete(llhttp_t *ll) {
    weft_h1_parser *p = P(ll);
    p->head_seen = true;
    if ((is_response(p) ? finish_resp_head(p) : finish_req_head(p)) != 0)
        return HPE_USER;
    return deliver_head(p);
}

static int cb_body(llhttp_t *ll, const char *at, size_t n) {
    weft_h1_parser *p = P(ll);
    if (n == 0)
        return 0; /* llhttp may close an empty span after a resume */
    p->body_seen += n;
    /* Length and chunked bodies were checked against the limit when their
     * sizes were declared; a body read until close can only be counted. */
    if (p->lim.max_body_bytes && p->body_seen > p->lim.max_body_bytes)
        return fail(p, E_BODY_TOO_LARGE);
    int rc = p->cbs.on_body ? p->cbs.on_body(p->ud, at, n) : WEFT_H1_CB_OK;
    if (rc == WEFT_H1_CB_ABORT || rc < 0)
        return fail(p, E_ABORTED);
    return rc == WEFT_H1_CB_PAUSE ? HPE_PAUSED : 0;
}

static int cb_chunk_header(llhttp_t *ll) {
    weft_h1_parser *p = P(ll);
    if (ll->content_length == 0) {
        p->in_trailers = true;
        weft_hdrs_init(&p->trailers, p->arena);
    }
    return 0;
}

static int cb_chunk_complete(llhttp_t *ll) {
    weft_h1_parser *p = P(ll);
    if (!p->in_trailers)
        return 0;
    p->in_trailers = false;
    if (p->trailers.n == 0 || !p->cbs.on_trailers)
        return 0;
    p->trailers.checked = p->trailers.n; /* see cb_header_value_complete */
    int rc = p->cbs.on_trailers(p->ud, &p->trailers);
    if (rc == WEFT_H1_CB_ABORT || rc < 0)
        return fail(p, E_ABORTED);
    return rc == WEFT_H1_CB_PAUSE ? HPE_PAUSED : 0;
}

static int cb_message_complete(llhttp_t *ll) {
    weft_h1_parser *p = P(ll);
    if (is_response(p) && p->resp.status < 200 && p->resp.status != 101) {
        /* Interim response: the final one follows as part of the same
         * exchange. llhttp must go on to read it, which it only does if
         * it believes the connection persists. */
        if (!llhttp_should_keep_alive(ll) || ++p->interim > MAX_INTERIM)
            return fail(p, E_BAD_1XX);
        scan_start_head(&p->sc);
        p->head_seen = false;
        return 0;
    }
    p->state = P_DONE;
    p->in_body = false;
    p->sc.st = SC_OFF;
    int rc = p->cbs.on_complete ? p->cbs.on_complete(p->ud) : WEFT_H1_CB_OK;
    if (rc == WEFT_H1_CB_ABORT || rc < 0) {
        p->state = P_MSG;
        return fail(p, E_ABORTED);
    }
    return HPE_PAUSED;
}

/* ---- the one pass over a whole head ----
 *
 * A head that arrived whole in one feed (the scanner went from its first
 * byte to its end) was already checked byte by byte by the scanner: a
 * request line of three VCHAR runs split by single SPs, or a status line
 * "HTTP/x.y SP 3DIGIT [SP reason]"; then lines "name:value CRLF" with a
 * tchar name and text bytes in the value; the final CRLF. llhttp reading
 * the same bytes again only to cut them where the scanner already knows
 * the cuts is the largest cost of a head, so fast_head cuts them itself
 * and hands the pieces to the same callbacks and head checks llhttp would
 * have run (cb_header_field_complete, cb_header_value_complete,
 * finish_*_head, deliver_head). It takes only heads whose reading by
 * llhttp is certain: a method of the list below and not CONNECT, an
 * origin-form target, HTTP/1.0 or 1.1, a final status 200-599, no leading
 * empty line, no Upgrade field, Connection (and Proxy-Connection) exactly
 * "close" or "keep-alive", Transfer-Encoding exactly "chunked",
 * Content-Length digits (those with SP only around them), and no field or
 * head check failing. Anything else, and every refusal, goes back to
 * llhttp over the same bytes as before (fast_head leaves nothing behind),
 * so whatever is refused is refused exactly as before, with the same
 * status and reason; tests/fuzz/fuzz_h1_onepass.c compares both paths.
 *
 * After such a head llhttp reads nothing of the message unless its body is
 * chunked: a bodyless message ends at once (FS_COMPLETE), a Content-Length
 * body is counted here (FS_LENGTH), and for a chunked body llhttp is put
 * into its chunked-body state by a synthetic head read without callbacks
 * (the scanner checks the chunks before llhttp, as before). */

static int fast_method(const char *m, size_t n) {
    switch (n) {
    case 3:
        return memcmp(m, "GET", 3) == 0 ? HTTP_GET : memcmp(m, "PUT", 3) == 0 ? HTTP_PUT : -1;
    case 4:
        return memcmp(m, "POST", 4) == 0 ? HTTP_POST : memcmp(m, "HEAD", 4) == 0 ? HTTP_HEAD : -1;
    case 5:
        return memcmp(m, "PATCH", 5) == 0   ? HTTP_PATCH
               : memcmp(m, "TRACE", 5) == 0 ? HTTP_TRACE
                                            : -1;
    case 6:
        return memcmp(m, "DELETE", 6) == 0 ? HTTP_DELETE : -1;
    case 7:
        return memcmp(m, "OPTIONS", 7) == 0 ? HTTP_OPTIONS : -1;
    default:
        return -1;
    }
}

/* "HTTP/1.0" or "HTTP/1.1" (8 bytes at v): the minor version, else -1. */
static int fast_version(const char *v) {
    if (memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1'))
        return -1;
    return v[7] - '0';
}

/* The value without the SPs around it: the one shape whose reading by
 * llhttp is certain (a tab is left in, so such a value goes to llhttp;
 * weft_sv_trim would take tabs too). */
static weft_sv sp_trim(const char *v, size_t n) {
    weft_sv t = {v, n};
    while (t.len && t.p[0] == ' ') {
        t.p++;
        t.len--;
    }
    while (t.len && t.p[t.len - 1] == ' ')
        t.len--;
    return t;
}

/* A field value llhttp interprets: SPs, `lit` (any case; lit lower-case), SPs. */
static bool value_is(const char *v, size_t n, const char *lit, size_t len) {
    weft_sv t = sp_trim(v, n);
    return t.len == len && weft_sv_ieq(t, (weft_sv){lit, len});
}

/* SPs, one or more digits, SPs. */
static bool value_digits(const char *v, size_t n) {
    weft_sv t = sp_trim(v, n);
    for (size_t k = 0; k < t.len; k++)
        if (t.p[k] < '0' || t.p[k] > '9')
            return false;
    return t.len > 0;
}

enum { FAST_NO = -100 };

/* Reads the whole head h[0, n) (the arena copy; names are lower-cased in
 * it). Returns FAST_NO with nothing changed when llhttp must read it, else
 * what deliver_head returned. */
static int fast_head(weft_h1_parser *p, char *h, size_t n) {
    llhttp_t *ll = &p->ll;
    char *end = h + n - 2; /* the final CRLF */
    char *eol = memchr(h, '\r', n);
    uint16_t flags = 0;
    if (!eol || eol == h || p->interim)
        return FAST_NO;
    if (!is_response(p)) {
        char *sp1 = memchr(h, ' ', (size_t)(eol - h));
        int m = sp1 ? fast_method(h, (size_t)(sp1 - h)) : -1;
        if (m < 0)
            return FAST_NO;
        char *t = sp1 + 1;
        char *sp2 = memchr(t, ' ', (size_t)(eol - t));
        if (!sp2 || eol - sp2 != 9 || t[0] != '/' || (size_t)(sp2 - t) > p->lim.max_uri_len)
            return FAST_NO;
        int minor = fast_version(sp2 + 1);
        if (minor < 0)
            return FAST_NO;
        ll->method = (uint8_t)m;
        ll->http_minor = (uint8_t)minor;
        p->url = (h1_acc){t, (size_t)(sp2 - t), 0};
    } else {
        if (p->req_method_id == HTTP_CONNECT || eol - h < 12)
            return FAST_NO;
        int minor = fast_version(h);
        int st = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
        if (minor < 0 || st < 200)
            return FAST_NO;
        ll->status_code = (uint16_t)st;
        ll->http_minor = (uint8_t)minor;
        if (eol - h > 12)
            p->reason = (h1_acc){h + 13, (size_t)(eol - h - 13), 0};
    }
    ll->http_major = 1;
    for (char *q = eol + 2; q < end;) {
        /* the scanner saw a ':' and a CR on every line; checked anyway */
        char *colon = memchr(q, ':', (size_t)(end - q));
        char *cr = colon ? memchr(colon + 1, '\r', (size_t)(end - colon)) : NULL;
        if (!cr)
            goto no;
        size_t nlen = (size_t)(colon - q), vlen = (size_t)(cr - colon - 1);
        lower_copy(q, q, nlen, (size_t)(end + 2 - q));
        p->name = (h1_acc){q, nlen, 0};
        if (cb_header_field_complete(ll) != 0)
            goto no;
        switch (p->field) {
        case HF_CL:
            if (!value_digits(colon + 1, vlen))
                goto no;
            flags |= F_CONTENT_LENGTH;
            break;
        case HF_TE:
            if (!value_is(colon + 1, vlen, "chunked", 7))
                goto no;
            flags |= F_TRANSFER_ENCODING | F_CHUNKED;
            break;
        case HF_CONNECTION:
            if (value_is(colon + 1, vlen, "close", 5))
                flags |= F_CONNECTION_CLOSE;
            else if (value_is(colon + 1, vlen, "keep-alive", 10))
                flags |= F_CONNECTION_KEEP_ALIVE;
            else
                goto no;
            break;
        case HF_UPGRADE:
            goto no;
        default:
            break;
        }
        p->value = (h1_acc){colon + 1, vlen, 0};
        if (cb_header_value_complete(ll) != 0)
            goto no;
        q = cr + 2;
    }
    ll->flags = flags;
    ll->upgrade = 0;
    if ((is_response(p) ? finish_resp_head(p) : finish_req_head(p)) != 0)
        goto no;
    if (is_response(p) && p->resp.framing == WEFT_BODY_UNTIL_CLOSE)
        goto no;
    p->in_message = true;
    p->head_seen = true;
    return deliver_head(p);
no:
    /* as parser_next left it: llhttp has read nothing of this message */
    p->err = E_NONE;
    begin_message_heads(p);
    llhttp_reset(ll);
    return FAST_NO;
}

/* What follows a head fast_head took (see above); -1 if llhttp refused
 * the synthetic head (it never does). */
static int fast_body_start(weft_h1_parser *p) {
    static const char req[] = "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const llhttp_settings_t quiet; /* no callbacks */
    weft_body_framing f = is_response(p) ? p->resp.framing : p->req.framing;
    if (f == WEFT_BODY_LENGTH) {
        p->fast = FS_LENGTH;
        p->fast_left = p->cl;
        return 0;
    }
    if (f != WEFT_BODY_CHUNKED) {
        p->fast = FS_COMPLETE;
        return 0;
    }
    llhttp_t *ll = &p->ll;
    llhttp_reset(ll);
    ll->settings = (void *)&quiet;
    llhttp_errno_t e = is_response(p) ? llhttp_execute(ll, resp, sizeof(resp) - 1)
                                      : llhttp_execute(ll, req, sizeof(req) - 1);
    ll->settings = &p->settings;
    return e == HPE_OK && (ll->flags & F_CHUNKED) ? 0 : -1;
}

/* ---- public API ---- */

void weft_h1_limits_default(weft_h1_limits *l) {
    l->max_header_bytes = 60 * 1024;
    l->max_headers = 100;
    l->max_uri_len = 8 * 1024;
    l->max_body_bytes = 0;
    l->max_chunk_ext_bytes = 4 * 1024;
}

static void parser_setup(weft_h1_parser *p, weft_h1_kind kind, const weft_h1_limits *lim,
                         const weft_h1_callbacks *cbs, void *ud) {
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    if (lim)
        p->lim = *lim;
    else
        weft_h1_limits_default(&p->lim);
    if (cbs)
        p->cbs = *cbs;
    p->ud = ud;
    llhttp_settings_init(&p->settings);
    p->settings.on_message_begin = cb_message_begin;
    p->settings.on_url = cb_url;
    p->settings.on_status = cb_status;
    p->settings.on_header_field = cb_header_field;
    p->settings.on_header_field_complete = cb_header_field_complete;
    p->settings.on_header_value = cb_header_value;
    p->settings.on_header_value_complete = cb_header_value_complete;
    p->settings.on_headers_complete = cb_headers_complete;
    p->settings.on_body = cb_body;
    p->settings.on_chunk_header = cb_chunk_header;
    p->settings.on_chunk_complete = cb_chunk_complete;
    p->settings.on_message_complete = cb_message_complete;
    llhttp_init(&p->ll, kind == WEFT_H1_RESPONSE ? HTTP_RESPONSE : HTTP_REQUEST, &p->settings);
    p->ll.data = p;
    p->state = P_IDLE;
    p->one_pass = true;
}

weft_h1_parser *weft_h1_parser_new(weft_h1_kind kind, const weft_h1_limits *lim,
                                   const weft_h1_callbacks *cbs, void *ud) {
    weft_h1_parser *p = malloc(sizeof(*p));
    if (!p)
        return NULL;
    parser_setup(p, kind, lim, cbs, ud);
    return p;
}

/* Runs for every HTTP/1.1 request (its parser comes from the worker's
 * list), so it does not make the parser again: weft_h1_parser_next resets
 * llhttp and all of a message's state before the parser reads anything
 * (feed refuses an idle parser), and what its queries report before that
 * is set here as a new parser has it. Kind, callbacks and llhttp's
 * settings stay as they were made. */
void weft_h1_parser_reset(weft_h1_parser *p, const weft_h1_limits *lim, void *ud) {
    if (lim)
        p->lim = *lim;
    else
        weft_h1_limits_default(&p->lim);
    p->ud = ud;
    p->state = P_IDLE;
    p->in_message = false;
    p->in_body = false;
    p->user_paused = false;
    p->needs_feed = false;
    p->err = E_NONE;
    p->hd_len = 0;
    p->fast = FS_NONE;
}

void weft_h1_parser_set_one_pass(weft_h1_parser *p, bool on) {
    p->one_pass = on;
}

uint32_t weft_h1_parser_one_pass_heads(const weft_h1_parser *p) {
    return p->one_pass_heads;
}

void weft_h1_parser_free(weft_h1_parser *p) {
    free(p);
}

void weft_h1_parser_next(weft_h1_parser *p, weft_arena *arena, int req_method_id) {
    if (p->state == P_ERROR)
        return; /* a stream that lost framing never resynchronises */
    /* llhttp_reset rather than llhttp_resume: resuming would run llhttp's
     * after-message step, which (in the non-strict build) silently discards
     * every later byte once a message said Connection: close and reports
     * PAUSED_UPGRADE after an upgrade. Whether the connection may carry
     * another message is the caller's decision (keep_alive, upgrade). */
    llhttp_reset(&p->ll);
    p->ll.data = p;
    p->arena = arena;
    p->req_method_id = req_method_id;
    p->state = P_MSG;
    p->in_message = false;
    p->in_body = false;
    p->user_paused = false;
    p->needs_feed = false;
    p->interim = 0;
    p->body_seen = 0;
    p->err = E_NONE;
    p->scan_err = E_NONE;
    p->head_seen = false;
    p->fast = FS_NONE;
    begin_message_heads(p);
    scan_start_head(&p->sc);
}

static weft_h1_result to_error(weft_h1_parser *p, llhttp_errno_t e) {
    if (p->err == E_NONE) {
        switch (e) {
        case HPE_INVALID_METHOD:
            p->err = E_BAD_METHOD;
            break;
        case HPE_INVALID_URL:
            p->err = E_BAD_TARGET;
            break;
        case HPE_INVALID_VERSION:
            p->err = E_BAD_VERSION;
            break;
        case HPE_INVALID_CONSTANT:
            p->err = E_BAD_START_LINE;
            break;
        case HPE_INVALID_STATUS:
            p->err = E_BAD_STATUS;
            break;
        case HPE_INVALID_HEADER_TOKEN:
            p->err = E_BAD_HEADER_VALUE;
            break;
        case HPE_INVALID_CONTENT_LENGTH:
            p->err = E_BAD_CL;
            break;
        case HPE_UNEXPECTED_CONTENT_LENGTH:
            p->err = E_CL_AND_TE;
            break;
        case HPE_INVALID_TRANSFER_ENCODING:
            p->err = E_BAD_TE;
            break;
        case HPE_INVALID_CHUNK_SIZE:
            p->err = E_BAD_CHUNK;
            break;
        default:
            p->err = E_PROTOCOL;
            break;
        }
    }
    p->state = P_ERROR;
    p->in_body = false;
    return WEFT_H1_ERROR;
}

static weft_h1_result fast_paused(weft_h1_parser *p) {
    p->user_paused = true;
    p->needs_feed = true;
    return WEFT_H1_PAUSED;
}

weft_h1_result weft_h1_parser_feed(weft_h1_parser *p, const char *data, size_t len,
                                   size_t *consumed) {
    size_t pos = 0;
    *consumed = 0;
    if (p->state == P_ERROR)
        return WEFT_H1_ERROR;
    if (p->state == P_DONE)
        return WEFT_H1_DONE;
    if (p->state == P_IDLE)
        return WEFT_H1_ERROR; /* weft_h1_parser_next was never called */
    /* Feeding again is the caller saying it is ready: an implicit resume. */
    weft_h1_parser_resume(p);
    p->needs_feed = false;
    if (!data) {
        data = "";
        len = 0;
    }

    /* On an error, *consumed is where llhttp's run would have started: the
     * head's start when a bodyless message ends with it, the body's start
     * when the body or the end after it fails. */
    size_t err_pos = pos;
    for (;;) {
        if (p->fast != FS_NONE) {
            /* after a head fast_head took: its body, then its end */
            if (p->fast == FS_LENGTH) {
                size_t take = len - pos < p->fast_left ? len - pos : (size_t)p->fast_left;
                if (take == 0)
                    return WEFT_H1_OK;
                err_pos = pos;
                p->fast_left -= take;
                if (p->fast_left == 0)
                    p->fast = FS_COMPLETE;
                int rc = cb_body(&p->ll, data + pos, take);
                if (rc == HPE_USER)
                    return to_error(p, HPE_USER);
                pos += take;
                *consumed = pos;
                if (rc == HPE_PAUSED)
                    return fast_paused(p);
                if (p->fast == FS_LENGTH)
                    return WEFT_H1_OK;
            }
            p->fast = FS_NONE;
            if (cb_message_complete(&p->ll) == HPE_USER) {
                *consumed = err_pos;
                return to_error(p, HPE_USER);
            }
            return WEFT_H1_DONE;
        }
        size_t n = len - pos;
        int src = SCAN_MORE;
        h1_scan before = p->sc;
        if (p->sc.st != SC_OFF)
            src = scan(p, data + pos, len - pos, &n);
        /* A head that is all here (the scanner went from its first byte
         * to its end in this span): one arena copy of it, which its
         * fields become views into, instead of one copy per field; and
         * read in one pass when fast_head can. */
        if (src == SCAN_SYNC && before.st == SC_PRE && before.section == 0 && n) {
            p->hd_copy = weft_arena_alloc(p->arena, n);
            if (p->hd_copy) {
                memcpy(p->hd_copy, data + pos, n);
                int rc = p->one_pass ? fast_head(p, p->hd_copy, n) : FAST_NO;
                if (rc != FAST_NO) {
                    p->one_pass_heads++;
                    if (rc == HPE_USER)
                        return to_error(p, HPE_USER);
                    if (fast_body_start(p) != 0)
                        return to_error(p, HPE_INTERNAL);
                    err_pos = pos;
                    pos += n;
                    *consumed = pos;
                    if (rc == HPE_PAUSED)
                        return fast_paused(p);
                    continue;
                }
                p->hd_src = data + pos;
                p->hd_len = n;
            }
        }
        /* Always run llhttp, even on zero bytes: after a pause at the end
         * of a head or of the trailers, llhttp still owes the
         * message-complete step and takes it on the next execute. */
        llhttp_errno_t e = llhttp_execute(&p->ll, data + pos, n);
        p->hd_len = 0; /* the caller's buffer is not ours after this call */
        if (e == HPE_OK) {
            pos += n;
            *consumed = pos;
            if (src == SCAN_ERROR) {
                p->err = p->scan_err;
                return to_error(p, HPE_USER);
            }
            if (src == SCAN_SYNC && p->sc.st == SC_OFF &&
                (!p->head_seen || before.st >= SC_CH_SIZE || before.trailers)) {
                /* The scanner saw a section end where llhttp did not (or
                 * llhttp did not finish a chunked body the scanner saw
                 * end): the two disagree on framing, so neither is trusted. */
                return to_error(p, HPE_INTERNAL);
            }
            if (pos == len)
                return WEFT_H1_OK;
            continue;
        }
        if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
            size_t used = (size_t)(llhttp_get_error_pos(&p->ll) - (data + pos));
            if (used < n && before.st != SC_OFF && p->sc.st != SC_OFF) {
                /* llhttp stopped inside the scanned span (a body pause):
                 * rewind the scanner to where llhttp really is, so that
                 * the bytes fed again after resume are scanned once. */
                size_t again;
                p->sc = before;
                scan(p, data + pos, used, &again);
            }
            pos += used;
            *consumed = pos;
            if (p->state == P_DONE)
                return WEFT_H1_DONE;
            p->user_paused = true;
            p->needs_feed = true;
            return WEFT_H1_PAUSED;
        }
        *consumed = pos;
        return to_error(p, e);
    }
}

void weft_h1_parser_resume(weft_h1_parser *p) {
    if (!p->user_paused)
        return;
    p->user_paused = false;
    llhttp_resume(&p->ll);
}

weft_h1_result weft_h1_parser_eof(weft_h1_parser *p) {
    if (p->state == P_ERROR)
        return WEFT_H1_ERROR;
    if (p->state != P_MSG || !p->in_message)
        return WEFT_H1_OK;
    if (is_response(p) && p->in_body && p->resp.framing == WEFT_BODY_UNTIL_CLOSE) {
        /* The caller may have paused on the last body bytes before the
         * close arrived; llhttp_finish does nothing while paused. */
        weft_h1_parser_resume(p);
        llhttp_errno_t e = llhttp_finish(&p->ll);
        if (p->state == P_DONE)
            return WEFT_H1_DONE;
        return to_error(p, e == HPE_OK ? HPE_INVALID_EOF_STATE : e);
    }
    p->err = E_PREMATURE_EOF;
    p->state = P_ERROR;
    p->in_body = false;
    return WEFT_H1_ERROR;
}

bool weft_h1_parser_needs_feed(const weft_h1_parser *p) {
    return p->needs_feed;
}

bool weft_h1_parser_in_message(const weft_h1_parser *p) {
    return p->in_message;
}

bool weft_h1_parser_in_body(const weft_h1_parser *p) {
    return p->in_body;
}

uint16_t weft_h1_parser_error_status(const weft_h1_parser *p) {
    if (p->state != P_ERROR)
        return 0;
    return is_response(p) ? 502 : err_table[p->err].req_status;
}

const char *weft_h1_parser_error_reason(const weft_h1_parser *p) {
    if (p->state != P_ERROR)
        return "";
    return is_response(p) ? err_table[p->err].resp_reason : err_table[p->err].req_reason;
}
