/* path_norm.c: request path normalization (see path_norm.h). */
#include "http/path_norm.h"

#include <string.h>

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bool weft_path_is_normal(const char *p, size_t len, const weft_path_norm_opts *o) {
    if (!len || p[0] != '/')
        return true;
    if (!o->normalize && !o->merge_slashes && o->escaped_slashes == WEFT_SLASHES_KEEP)
        return true;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%')
            return false;
        if (p[i] == '/' && i + 1 < len) {
            if (p[i + 1] == '.' && o->normalize)
                return false;
            if (p[i + 1] == '/' && o->merge_slashes)
                return false;
        }
    }
    return true;
}

/* Steps 1 and 2, from p into out (out never gets longer than p). */
static weft_path_result decode(const char *p, size_t len, const weft_path_norm_opts *o, char *out,
                               size_t *n, bool *unescaped_slash) {
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c != '%') {
            out[w++] = c;
            continue;
        }
        if (len - i < 3 || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0) {
            if (o->normalize)
                return WEFT_PATH_BAD_ENCODING;
            out[w++] = c;
            continue;
        }
        unsigned char v = (unsigned char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
        if (v == '/' || v == '\\') {
            switch (o->escaped_slashes) {
            case WEFT_SLASHES_REJECT:
                return WEFT_PATH_ESCAPED_SLASH;
            case WEFT_SLASHES_UNESCAPE:
            case WEFT_SLASHES_UNESCAPE_AND_REDIRECT:
                out[w++] = '/';
                *unescaped_slash = true;
                i += 2;
                continue;
            case WEFT_SLASHES_KEEP:
                break;
            }
        }
        if (o->normalize && unreserved(v)) {
            out[w++] = (char)v;
        } else if (o->normalize) {
            static const char hex[] = "0123456789ABCDEF";
            out[w++] = '%';
            out[w++] = hex[v >> 4];
            out[w++] = hex[v & 15];
        } else {
            memmove(out + w, p + i, 3);
            w += 3;
        }
        i += 2;
    }
    *n = w;
    return WEFT_PATH_OK;
}

/* Step 3 in place on buf[0..n), which starts with '/'. Segments are what
 * follows each '/'; the output is the kept segments, each written as
 * "/seg", plus a final "/" when the last segment was "." or "..". */
static weft_path_result remove_dots(char *buf, size_t *n) {
    size_t len = *n, w = 0, i = 0;
    while (i < len) {
        /* buf[i] == '/' here */
        size_t s = i + 1, e = s;
        while (e < len && buf[e] != '/')
            e++;
        size_t sl = e - s;
        bool last = e >= len;
        if (sl == 1 && buf[s] == '.') {
            if (last)
                buf[w++] = '/';
        } else if (sl == 2 && buf[s] == '.' && buf[s + 1] == '.') {
            if (w == 0)
                return WEFT_PATH_ABOVE_ROOT;
            while (w > 0 && buf[w - 1] != '/')
                w--;
            w--; /* the '/' that opened the popped segment */
            if (last)
                buf[w++] = '/';
        } else {
            buf[w++] = '/';
            memmove(buf + w, buf + s, sl);
            w += sl;
        }
        i = e;
    }
    if (w == 0)
        buf[w++] = '/';
    *n = w;
    return WEFT_PATH_OK;
}

static size_t merge(char *buf, size_t n) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!(buf[i] == '/' && w > 0 && buf[w - 1] == '/'))
            buf[w++] = buf[i];
    return w;
}

weft_path_result weft_path_normalize(const char *path, size_t len, const weft_path_norm_opts *o,
                                     char *out, size_t *out_len) {
    *out_len = 0;
    if (!len || path[0] != '/') {
        memcpy(out, path, len);
        *out_len = len;
        return WEFT_PATH_OK;
    }
    size_t n = 0;
    bool unescaped = false;
    weft_path_result r = decode(path, len, o, out, &n, &unescaped);
    if (r != WEFT_PATH_OK)
        return r;
    if (o->normalize || unescaped) {
        r = remove_dots(out, &n);
        if (r != WEFT_PATH_OK)
            return r;
    }
    if (o->merge_slashes)
        n = merge(out, n);
    *out_len = n;
    return unescaped && o->escaped_slashes == WEFT_SLASHES_UNESCAPE_AND_REDIRECT
               ? WEFT_PATH_REDIRECT
               : WEFT_PATH_OK;
}

const char *weft_path_result_reason(weft_path_result r) {
    switch (r) {
    case WEFT_PATH_OK:
        return "ok";
    case WEFT_PATH_REDIRECT:
        return "path_redirect";
    case WEFT_PATH_BAD_ENCODING:
        return "invalid_path_encoding";
    case WEFT_PATH_ABOVE_ROOT:
        return "invalid_path_dot_segments";
    case WEFT_PATH_ESCAPED_SLASH:
        return "escaped_slash_in_path";
    }
    return "invalid_path";
}
