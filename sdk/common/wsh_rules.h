/* wsh_rules.h: rules the core and the test kit must apply identically,
 * compiled into both (see wsh_handle.h): the gRPC status of a local
 * reply and what a YAML config may not contain. Private: not installed. */
#ifndef WEFT_WSH_RULES_H
#define WEFT_WSH_RULES_H

#include <stdarg.h>
#include <stddef.h>

#include <yaml.h>

/* The grpc-status weft sends for a local reply with HTTP status `http`
 * to a gRPC request (filter.h, weft_reply_send): 400->13, 401->16,
 * 403->7, 404->12, 408/504->4, 429->8, 502/503->14, anything else 2. */
int wsh_grpc_status_for_http(int http);

/* Why weft refuses a libyaml event of a config (a filter's config node
 * included), or NULL when it is fine: aliases (no billion laughs), NUL
 * characters in strings. The caller prefixes "source:line:col: ". */
const char *wsh_yaml_event_refusal(const yaml_event_t *ev);

/* A filter's formatted log message as weft prints it (weft_logf):
 * formatted, control characters written as \xNN, cut at
 * WSH_LOG_MAX bytes with "...". Writes a NUL-terminated line to
 * out[WSH_LOG_MAX + 1] and returns its length. fmt NULL: empty. */
#define WSH_LOG_MAX 800
size_t wsh_log_format(char *out, const char *fmt, va_list ap);

#endif
