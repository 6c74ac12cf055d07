/* path_norm.h: request path normalization before routing (Envoy's
 * normalize_path, merge_slashes and path_with_escaped_slashes_action).
 *
 * In order:
 *   1. percent-encoding: an escape of an unreserved character (ALPHA
 *      DIGIT - . _ ~) is decoded, every other escape gets uppercase hex;
 *      a '%' not followed by two hex digits is an error;
 *   2. escaped slashes (%2F, %5C, any case): kept, refused, or decoded
 *      (both become '/', as Envoy's normalizer treats '\' as '/');
 *   3. RFC 3986 5.2.4 dot-segment removal ("." and ".." segments, also
 *      when they were written %2E); a ".." above the root is an error;
 *   4. optionally, runs of '/' merged into one.
 * The output is never longer than the input, and normalizing it again
 * gives it back unchanged. A path that does not start with '/' ("*",
 * authority-form) is left alone. No allocation: the caller gives the
 * output buffer. */
#ifndef WEFT_PATH_NORM_H
#define WEFT_PATH_NORM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    WEFT_SLASHES_KEEP = 0,             /* KEEP_UNCHANGED (default) */
    WEFT_SLASHES_REJECT,               /* REJECT_REQUEST: 400 */
    WEFT_SLASHES_UNESCAPE,             /* UNESCAPE_AND_FORWARD */
    WEFT_SLASHES_UNESCAPE_AND_REDIRECT /* UNESCAPE_AND_REDIRECT: 307 to the result */
} weft_escaped_slashes;

typedef struct weft_path_norm_opts {
    bool normalize;     /* steps 1 and 3 */
    bool merge_slashes; /* step 4 */
    weft_escaped_slashes escaped_slashes;
} weft_path_norm_opts;

typedef enum {
    WEFT_PATH_OK = 0,        /* *out is the normalized path (maybe the same text) */
    WEFT_PATH_REDIRECT,      /* UNESCAPE_AND_REDIRECT and a slash was unescaped */
    WEFT_PATH_BAD_ENCODING,  /* '%' without two hex digits */
    WEFT_PATH_ABOVE_ROOT,    /* ".." would leave the root */
    WEFT_PATH_ESCAPED_SLASH, /* %2F or %5C under REJECT */
} weft_path_result;

/* True when the path needs no change under o (the common case: no '%',
 * no "/." and, with merge_slashes, no "//"); cheap, no writes. */
bool weft_path_is_normal(const char *path, size_t len, const weft_path_norm_opts *o);

/* Normalizes path[0..len) into out, which has room for len bytes; sets
 * *out_len. On an error *out_len is 0. */
weft_path_result weft_path_normalize(const char *path, size_t len, const weft_path_norm_opts *o,
                                     char *out, size_t *out_len);

/* The x-weft-reason of an error result ("invalid_path_encoding", ...). */
const char *weft_path_result_reason(weft_path_result r);

#endif
