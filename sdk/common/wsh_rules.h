/* wsh_rules.h: rules the core and the test kit must apply identically,
 * compiled into both (see wsh_handle.h): the gRPC status of a local
 * reply and what a YAML config may not contain. Private: not installed. */
#ifndef WEFT_WSH_RULES_H
#define WEFT_WSH_RULES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Labelled stat families (ABI 1.1, weft_stat_family). A label name:
 * [a-zA-Z_][a-zA-Z0-9_]*, at most 64 bytes, not starting with "__". */
bool wsh_stat_label_name_ok(const char *name);
/* Why weft refuses a family declaration's kind, label names (bad, "listener"
 * or "cluster", repeated, more than 8) or max_series (1..10000), or NULL
 * when they are fine. The metric name is checked as a stat name. */
const char *wsh_stat_family_refusal(uint32_t kind, const char *const *label_names, size_t n,
                                    uint32_t max_series);

#endif
