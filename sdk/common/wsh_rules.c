/* wsh_rules.c: see wsh_rules.h. */
#include "wsh_rules.h"

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
