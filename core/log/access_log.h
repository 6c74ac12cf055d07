/* access_log.h: one JSON object per line per exchange (Envoy's fields and
 * response flags). Written with a single write(2) so lines from several
 * workers never interleave. */
#ifndef WEFT_LOG_ACCESS_LOG_H
#define WEFT_LOG_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* Opens the access log of a config being committed (never while building
 * one, so a refused config creates no file): -1 and one line in err when
 * it cannot. path NULL or "" -> fd -1 (off); "-" or "stdout" -> stdout. */
int weft_access_log_open(const char *path, int *fd_out, char *err, size_t errlen);

/* What one access log line says about one exchange: an HTTP stream fills
 * it at its log phase, a tcp_proxy connection at its close. The log layer
 * sees only this record, never the stream or the connection. Views and
 * strings are borrowed for the duration of weft_access_log_write. */
enum { WEFT_LOG_HTTP1 = 1, WEFT_LOG_HTTP2 = 2, WEFT_LOG_TCP = 3 };
typedef struct weft_log_record {
    uint32_t protocol;   /* WEFT_LOG_*; TCP lines carry no HTTP fields */
    uint32_t http_minor; /* HTTP/1.x */
    weft_sv method, authority, path;
    uint32_t status; /* sent to the client, 0 none */
    uint32_t flags;  /* WEFT_RF_* */
    const char *reason;
    uint64_t bytes_received; /* from downstream */
    uint64_t bytes_sent;     /* to downstream */
    uint64_t duration_us;
    int64_t upstream_service_us; /* request start to response head, -1 unknown */
    int32_t grpc_status;         /* -1 none */
    const char *upstream_host;   /* "ip:port", NULL or "" when none */
    const char *upstream_cluster;
    const char *route;
    weft_sv request_id;
    const char *downstream_remote; /* peer IP */
    weft_sv user_agent;
    const char *listener;
} weft_log_record;

/* One JSON line for r (nothing when fd < 0). */
void weft_access_log_write(int fd, const weft_log_record *r);

/* "UT,UC" style list of the flags, "-" when none. */
size_t weft_response_flags_str(uint32_t flags, char *out, size_t cap);

#endif
