/* access_log.h: one JSON object per line per exchange (Envoy's fields and
 * response flags). Written with a single write(2) so lines from several
 * workers never interleave. */
#ifndef WEFT_LOG_ACCESS_LOG_H
#define WEFT_LOG_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct weft_stream weft_stream;

/* Opens the access log of a config being committed (never while building
 * one, so a refused config creates no file): -1 and one line in err when
 * it cannot. path NULL or "" -> fd -1 (off); "-" or "stdout" -> stdout. */
int weft_access_log_open(const char *path, int *fd_out, char *err, size_t errlen);

void weft_access_log_write(int fd, const weft_stream *s);
/* One opaque TCP connection (tcp_proxy listeners), logged at close. */
typedef struct weft_tcp_log_entry {
    const char *listener;
    const char *downstream_remote; /* peer IP */
    const char *upstream_host;     /* "ip:port", "" when none was connected */
    const char *upstream_cluster;
    uint64_t bytes_received; /* from downstream */
    uint64_t bytes_sent;     /* to downstream */
    uint64_t duration_us;
    uint32_t flags; /* WEFT_RF_* (UH, UF, UC, DC, SI) */
} weft_tcp_log_entry;

void weft_access_log_write_tcp(int fd, const weft_tcp_log_entry *e);

/* "UT,UC" style list of the flags, "-" when none. */
size_t weft_response_flags_str(uint32_t flags, char *out, size_t cap);

#endif
