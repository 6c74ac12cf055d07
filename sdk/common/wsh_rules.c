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

bool wsh_stat_label_name_ok(const char *n) {
    if (!n || !*n || (n[0] == '_' && n[1] == '_'))
        return false;
    for (size_t i = 0; n[i]; i++) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok || i >= 64)
            return false;
    }
    return true;
}

const char *wsh_stat_family_refusal(uint32_t kind, const char *const *label_names, size_t n,
                                    uint32_t max_series) {
    if (kind > 2)
        return "unknown kind";
    if (n > 8)
        return "more than 8 labels";
    if (n && !label_names)
        return "label names NULL";
    if (max_series < 1 || max_series > 10000)
        return "max_series not in 1..10000";
    for (size_t i = 0; i < n; i++) {
        if (!wsh_stat_label_name_ok(label_names[i]))
            return "bad label name";
        if (!strcmp(label_names[i], "listener") || !strcmp(label_names[i], "cluster"))
            return "label name reserved by weft (listener, cluster)";
        for (size_t j = 0; j < i; j++)
            if (!strcmp(label_names[i], label_names[j]))
                return "label name repeated";
    }
    return NULL;
}
