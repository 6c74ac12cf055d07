/* access_log.h: one JSON object per line per exchange (Envoy's fields and
 * response flags). Written with a single write(2) so lines from several
 * workers never interleave. */
#ifndef WEFT_LOG_ACCESS_LOG_H
#define WEFT_LOG_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct weft_stream weft_stream;

void weft_access_log_write(int fd, const weft_stream *s);
/* "UT,UC" style list of the flags, "-" when none. */
size_t weft_response_flags_str(uint32_t flags, char *out, size_t cap);

#endif
