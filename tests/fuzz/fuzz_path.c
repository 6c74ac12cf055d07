/* fuzz_path.c: libFuzzer target for request path normalization
 * (core/http/path_norm.c).
 *
 * Input layout:
 *   byte 0: bit 0     normalize
 *           bit 1     merge_slashes
 *           bits 2-3  escaped_slashes action (keep, reject, unescape,
 *                     unescape_and_redirect)
 *   rest:   the path (a '/' is put in front when it does not start with
 *           one, so most inputs take the normalizing path)
 *
 * Invariants, any break aborts: the output is never longer than the input;
 * weft_path_is_normal(in) implies the output equals the input; with
 * normalize on, no segment of the output is "." or "..", and the output
 * has no '%' that is not followed by two uppercase hex digits, nor an
 * escape of an unreserved character; normalizing the output again gives
 * OK and the same bytes (idempotence); with merge_slashes, no "//". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/path_norm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *in, size_t n, const char *out, size_t on) {
    fprintf(stderr, "fuzz_path: %s\n  in:  %.*s\n  out: %.*s\n", what, (int)n, in, (int)on, out);
    abort();
}

static bool unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int uhex(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096)
        return 0;
    weft_path_norm_opts o = {(data[0] & 1) != 0, (data[0] & 2) != 0,
                             (weft_escaped_slashes)((data[0] >> 2) & 3)};
    size_t n = size - 1;
    char *in = malloc(n + 2);
    char *out = malloc(n + 2);
    char *again = malloc(n + 2);
    if (!in || !out || !again)
        abort();
    size_t len = 0;
    if (n == 0 || data[1] != '/')
        in[len++] = '/';
    memcpy(in + len, data + 1, n);
    len += n;
    size_t on = 0;
    weft_path_result r = weft_path_normalize(in, len, &o, out, &on);
    if (r == WEFT_PATH_OK || r == WEFT_PATH_REDIRECT) {
        if (on > len)
            die("output longer than input", in, len, out, on);
        if (weft_path_is_normal(in, len, &o) && (on != len || memcmp(in, out, len) != 0))
            die("is_normal but changed", in, len, out, on);
        if (o.normalize) {
            for (size_t i = 0; i < on;) {
                size_t e = i + 1;
                while (e < on && out[e] != '/')
                    e++;
                size_t sl = e - i - 1;
                if ((sl == 1 && out[i + 1] == '.') ||
                    (sl == 2 && out[i + 1] == '.' && out[i + 2] == '.'))
                    die("dot segment in output", in, len, out, on);
                i = e;
            }
            for (size_t i = 0; i < on; i++) {
                if (out[i] != '%')
                    continue;
                if (i + 2 >= on || uhex(out[i + 1]) < 0 || uhex(out[i + 2]) < 0)
                    die("bad escape in output", in, len, out, on);
                if (unreserved((unsigned char)(uhex(out[i + 1]) * 16 + uhex(out[i + 2]))))
                    die("escaped unreserved character in output", in, len, out, on);
            }
        }
        if (o.merge_slashes)
            for (size_t i = 0; i + 1 < on; i++)
                if (out[i] == '/' && out[i + 1] == '/')
                    die("// with merge_slashes", in, len, out, on);
        size_t an = 0;
        weft_path_result r2 = weft_path_normalize(out, on, &o, again, &an);
        if (r2 != WEFT_PATH_OK || an != on || memcmp(again, out, on) != 0)
            die("not idempotent", in, len, out, on);
    } else if (on != 0) {
        die("error with output", in, len, out, on);
    }
    free(in);
    free(out);
    free(again);
    return 0;
}
