/* wsh_rules.c: see wsh_rules.h. */
#include "wsh_rules.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int wsh_grpc_status_for_http(int http) {
    switch (http) {
    case 400:
        return 13; /* INTERNAL: a malformed request */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
        return 12; /* UNIMPLEMENTED */
    case 408:
    case 504:
        return 4; /* DEADLINE_EXCEEDED */
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 502:
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 2; /* UNKNOWN */
    }
}

const char *wsh_yaml_event_refusal(const yaml_event_t *ev) {
    if (ev->type == YAML_ALIAS_EVENT)
        return "YAML aliases are not supported";
    if (ev->type == YAML_SCALAR_EVENT &&
        memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
        return "strings must not contain NUL characters";
    return NULL;
}

size_t wsh_log_format(char *out, const char *fmt, va_list ap) {
    char raw[WSH_LOG_MAX + 1];
    int n = fmt ? vsnprintf(raw, sizeof(raw), fmt, ap) : 0;
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
    bool cut = n >= (int)sizeof(raw);
    size_t o = 0;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        bool esc = c < 0x20 || c == 0x7f;
        if (o + (esc ? 4 : 1) > WSH_LOG_MAX) {
            cut = true;
            break;
        }
        if (esc) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (cut) {
        if (o > WSH_LOG_MAX - 3)
            o = WSH_LOG_MAX - 3;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return o;
}
