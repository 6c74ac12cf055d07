/* denylist: a weft HTTP filter that refuses requests whose header matches
 * an entry of a deny-list file. Written against <weft/filter.h> only, built
 * out of tree (see README.md).
 *
 *   filter_path: [.]                # where denylist.so is
 *   ...
 *   filters:
 *     - name: denylist
 *       config:
 *         header: user-agent      # the request header to check (default user-agent)
 *         file: denylist.txt      # relative to the directory of weft.yaml
 *         ignore_case: false      # compare case-insensitively (default false)
 *
 * The file holds one entry per line. Blank lines and lines whose first
 * non-blank character is '#' are skipped; leading and trailing blanks are
 * trimmed. An entry ending in '*' matches every value starting with what
 * precedes the '*' ("bot-*"); any other entry must equal the whole value.
 *
 * A request with a matching value (any of the header's values when it
 * appears more than once) is answered 403 with x-weft-reason: denylisted
 * and x-denylist: deny. Any other request goes upstream with
 * x-denylist: pass set on the request (replacing whatever the client sent),
 * and the response carries x-denylist: pass as well.
 *
 * LIFETIMES: the file is read and parsed once per config snapshot
 * (config_create, on the main thread); the parsed list is then only read,
 * by every worker, without locks. Editing the file takes effect on the
 * next config reload (SIGHUP). The filter keeps no per-stream state: its
 * stream context is the config itself.
 *
 * STATS: weft_filter_<name>_allowed_total and _denied_total, where <name>
 * is the filter's name in weft.yaml. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define DL_MAX_FILE (16u * 1024u * 1024u) /* refuse deny-lists larger than this */
#define DL_MAX_ENTRY 1024u                /* longest entry, in bytes */
#define DL_MAX_PATH 4096u

typedef struct dl_entry {
    char *text; /* lower-cased when ignore_case */
    size_t len;
} dl_entry;

typedef struct dl_config {
    char header[128]; /* header name to check, lower-case */
    size_t header_len;
    bool ignore_case;
    dl_entry *exact; /* sorted, for bsearch */
    size_t n_exact;
    dl_entry *prefix; /* "prefix*" entries, without the '*' */
    size_t n_prefix;
    int32_t st_allowed, st_denied;
} dl_config;

static const weft_str TAG = WEFT_STR("x-denylist");

/* ------------------------------------------------------------------ */
/* Config                                                              */
/* ------------------------------------------------------------------ */

static void dl_config_destroy(void *config) {
    dl_config *c = config;
    if (!c)
        return;
    for (size_t i = 0; i < c->n_exact; i++)
        free(c->exact[i].text);
    for (size_t i = 0; i < c->n_prefix; i++)
        free(c->prefix[i].text);
    free(c->exact);
    free(c->prefix);
    free(c);
}

static int fail_fmt(weft_filter_setup *setup, const weft_config_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* weft_config_fail takes a finished message: format it here. */
static int fail_fmt(weft_filter_setup *setup, const weft_config_node *n, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return weft_config_fail(setup, n, msg);
}

static char lower(char ch) {
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static int cmp_entry(const void *a, const void *b) {
    const dl_entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->text, y->text, n);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

static bool is_blank(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Reads the whole file at `path` into a NUL-terminated buffer. */
static char *read_file(const char *path, size_t *len, int *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = errno;
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > DL_MAX_FILE) {
                *err = EFBIG;
                free(buf);
                buf = NULL;
                break;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                *err = EIO;
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (!buf && !*err)
        *err = ENOMEM;
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int add_entry(dl_entry **v, size_t *n, size_t *cap, const char *p, size_t len, bool fold) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        dl_entry *nv = realloc(*v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    char *t = malloc(len + 1);
    if (!t)
        return -1;
    for (size_t i = 0; i < len; i++)
        t[i] = fold ? lower(p[i]) : p[i];
    t[len] = '\0';
    (*v)[(*n)++] = (dl_entry){t, len};
    return 0;
}

/* Parses the deny-list text. Problems are reported on the `file:` node,
 * naming the line of the deny-list file. */
static int parse_list(dl_config *c, const char *text, size_t len, const char *shown,
                      const weft_config_node *file_node, weft_filter_setup *setup) {
    size_t cap_exact = 0, cap_prefix = 0;
    unsigned line = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *p = text + pos;
        size_t n = end - pos;
        pos = end + 1;
        line++;
        while (n && is_blank(*p)) {
            p++;
            n--;
        }
        while (n && is_blank(p[n - 1]))
            n--;
        if (!n || *p == '#')
            continue;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)p[i];
            if ((ch < 32 && ch != '\t') || ch == 127)
                return fail_fmt(setup, file_node, "%s:%u: control character in an entry", shown,
                                line);
        }
        if (n > DL_MAX_ENTRY)
            return fail_fmt(setup, file_node, "%s:%u: entry longer than %u bytes", shown, line,
                            DL_MAX_ENTRY);
        const char *star = memchr(p, '*', n);
        if (star && star != p + n - 1)
            return fail_fmt(setup, file_node, "%s:%u: '*' is only allowed at the end of an entry",
                            shown, line);
        int rc = star ? add_entry(&c->prefix, &c->n_prefix, &cap_prefix, p, n - 1, c->ignore_case)
                      : add_entry(&c->exact, &c->n_exact, &cap_exact, p, n, c->ignore_case);
        if (rc)
            return fail_fmt(setup, file_node, "%s: out of memory", shown);
    }
    if (c->n_exact)
        qsort(c->exact, c->n_exact, sizeof(*c->exact), cmp_entry);
    return 0;
}

static bool valid_header_name(weft_str s) {
    if (!s.len || s.len >= sizeof(((dl_config *)0)->header))
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return false;
    }
    return true;
}

static int parse_config(dl_config *c, const weft_config_node *node, weft_filter_setup *setup) {
    if (!node)
        return weft_config_fail(setup, NULL, "denylist needs a config with at least `file:`");
    if (!weft_config_is_map(node))
        return weft_config_fail(setup, node, "expected a mapping (header, file, ignore_case)");
    for (size_t i = 0; i < weft_config_len(node); i++) {
        weft_str key;
        const weft_config_node *v = weft_config_entry(node, i, &key);
        static const char *const known[] = {"header", "file", "ignore_case"};
        bool ok = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            ok |= strlen(known[k]) == key.len && memcmp(known[k], key.ptr, key.len) == 0;
        if (!ok)
            return fail_fmt(setup, v, "unknown key \"%.*s\" (known: header, file, ignore_case)",
                            (int)key.len, key.ptr);
    }

    weft_str header = WEFT_STR("user-agent");
    const weft_config_node *hn = weft_config_get(node, "header");
    if (hn && (weft_config_string(hn, &header) != WEFT_OK || !valid_header_name(header)))
        return weft_config_fail(setup, hn,
                                "header: expected an HTTP header name like \"user-agent\"");
    for (size_t i = 0; i < header.len; i++)
        c->header[i] = lower(header.ptr[i]);
    c->header_len = header.len;

    const weft_config_node *ic = weft_config_get(node, "ignore_case");
    if (ic && weft_config_bool(ic, &c->ignore_case) != WEFT_OK)
        return weft_config_fail(setup, ic, "ignore_case: expected true or false");

    const weft_config_node *fn = weft_config_get(node, "file");
    weft_str file;
    if (!fn)
        return weft_config_fail(setup, node, "missing key \"file\" (the deny-list file)");
    if (weft_config_string(fn, &file) != WEFT_OK || !file.len)
        return weft_config_fail(setup, fn, "file: expected a file name");
    if (memchr(file.ptr, '\0', file.len))
        return weft_config_fail(setup, fn, "file: NUL in the file name");
    char path[DL_MAX_PATH];
    int pn;
    if (file.ptr[0] == '/')
        pn = snprintf(path, sizeof(path), "%.*s", (int)file.len, file.ptr);
    else
        pn = snprintf(path, sizeof(path), "%s/%.*s", weft_config_dir(setup), (int)file.len,
                      file.ptr);
    if (pn < 0 || (size_t)pn >= sizeof(path))
        return weft_config_fail(setup, fn, "file: path too long");

    size_t len = 0;
    int err = 0;
    char *text = read_file(path, &len, &err);
    if (!text)
        return fail_fmt(setup, fn, "cannot read deny-list %s: %s", path, strerror(err));
    int rc = parse_list(c, text, len, path, fn, setup);
    free(text);
    if (rc)
        return -1;

    c->st_allowed = weft_stat_counter(setup, "allowed_total", "requests the deny-list let through");
    c->st_denied =
        weft_stat_counter(setup, "denied_total", "requests refused by the deny-list (403)");
    if (weft_log_enabled(WEFT_LOG_LEVEL_INFO)) {
        char msg[DL_MAX_PATH + 256];
        snprintf(msg, sizeof(msg), "%zu exact and %zu prefix entries for header %s from %s",
                 c->n_exact, c->n_prefix, c->header, path);
        weft_log_msg(WEFT_LOG_LEVEL_INFO, "denylist", msg);
    }
    return 0;
}

static int dl_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    dl_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    if (parse_config(c, node, setup)) {
        dl_config_destroy(c);
        return -1;
    }
    *config = c;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */
/* ------------------------------------------------------------------ */

static bool eq_fold(const char *entry, const char *v, size_t n, bool fold) {
    if (!fold)
        return memcmp(entry, v, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (entry[i] != lower(v[i]))
            return false;
    return true;
}

static int cmp_key_fold(const void *key, const void *elem) {
    const weft_str *k = key;
    const dl_entry *e = elem;
    size_t n = k->len < e->len ? k->len : e->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)lower(k->ptr[i]), b = (unsigned char)e->text[i];
        if (a != b)
            return a < b ? -1 : 1;
    }
    return (k->len > e->len) - (k->len < e->len);
}

static int cmp_key(const void *key, const void *elem) {
    const weft_str *k = key;
    const dl_entry *e = elem;
    size_t n = k->len < e->len ? k->len : e->len;
    int r = memcmp(k->ptr, e->text, n);
    return r ? r : (k->len > e->len) - (k->len < e->len);
}

static bool denied(const dl_config *c, weft_str v) {
    if (c->n_exact && bsearch(&v, c->exact, c->n_exact, sizeof(*c->exact),
                              c->ignore_case ? cmp_key_fold : cmp_key))
        return true;
    for (size_t i = 0; i < c->n_prefix; i++)
        if (v.len >= c->prefix[i].len &&
            eq_fold(c->prefix[i].text, v.ptr, c->prefix[i].len, c->ignore_case))
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* Hooks                                                               */
/* ------------------------------------------------------------------ */

/* No per-stream state: hand the (read-only) config to the hooks. */
static void *dl_stream_create(void *config, void *worker, weft_stream *s) {
    (void)worker;
    (void)s;
    return config;
}

static weft_status dl_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)end_stream;
    const dl_config *c = ctx;
    weft_str name = {c->header, c->header_len};
    size_t n = weft_header_count(s, WEFT_REQUEST_HEADERS, name);
    for (size_t i = 0; i < n; i++) {
        weft_str v;
        if (weft_header_get_nth(s, WEFT_REQUEST_HEADERS, name, i, &v) == WEFT_OK && denied(c, v)) {
            static const weft_str hn[] = {WEFT_STR("x-denylist"), WEFT_STR("cache-control")};
            static const weft_str hv[] = {WEFT_STR("deny"), WEFT_STR("no-store")};
            weft_stat_inc(c->st_denied, 1);
            /* Fail closed: should the reply be refused (the stream already
             * answered), WEFT_REPLIED still stops the request here and the
             * core answers 500 filter_error if nothing was sent. */
            weft_reply_send(s, 403, WEFT_STR("denylisted"), hn, hv, 2, WEFT_STR("denied\n"));
            return WEFT_REPLIED;
        }
    }
    weft_stat_inc(c->st_allowed, 1);
    weft_header_set(s, WEFT_REQUEST_HEADERS, TAG, WEFT_STR("pass"));
    return WEFT_CONTINUE;
}

/* Only requests this filter let through reach the upstream, so every
 * upstream response it sees belongs to an allowed request. Local replies
 * (this filter's own 403, or weft's 404/503/...) run through this hook too
 * (ABI 1.1): they keep the tag they have (deny), or get none. */
static weft_status dl_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)ctx;
    (void)end_stream;
    if (weft_reply_is_local(s))
        return WEFT_CONTINUE;
    weft_header_set(s, WEFT_RESPONSE_HEADERS, TAG, WEFT_STR("pass"));
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops dl_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = dl_config_create,
    .config_destroy = dl_config_destroy,
    .stream_create = dl_stream_create,
    .on_request_headers = dl_request_headers,
    .on_response_headers = dl_response_headers,
};

static const weft_filter_descriptor dl_descriptor = {
    WEFT_FILTER_DESCRIPTOR_INIT("denylist", WEFT_FILTER_HTTP),
    .http = &dl_ops,
};

WEFT_FILTER_DEFINE(dl_descriptor)
