/* access_log.c: JSON lines access log. */
#include "log/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/response_flags.h"

int weft_access_log_open(const char *path, int *fd_out, char *err, size_t errlen) {
    *fd_out = -1;
    if (!path || !*path)
        return 0;
    if (strcmp(path, "-") == 0 || strcmp(path, "stdout") == 0) {
        *fd_out = STDOUT_FILENO;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "access_log: cannot open \"%s\": %s", path, strerror(errno));
        return -1;
    }
    *fd_out = fd;
    return 0;
}

static const char *flag_names[] = {"NR", "UH",  "UF", "UT", "UC", "UPE",
                                   "DC", "DPE", "SI", "DR", "LR"};

size_t weft_response_flags_str(uint32_t flags, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; flags && i < WEFT_ARRAY_LEN(flag_names); i++) {
        if (!(flags & (1u << i)))
            continue;
        int m = snprintf(out + n, cap - n, "%s%s", n ? "," : "", flag_names[i]);
        if (m < 0 || (size_t)m >= cap - n)
            break;
        n += (size_t)m;
    }
    if (n == 0 && cap >= 2) {
        out[0] = '-';
        out[1] = '\0';
        n = 1;
    }
    return n;
}

/* Longest value of one field, in input bytes; longer ones are cut (on a
 * byte boundary, then closed properly) so a line always stays valid JSON. */
#define FIELD_MAX 1024

/* Appends a JSON string (quoted, escaped). Bytes outside printable ASCII
 * are written as \u00XX, so the line is valid JSON and valid UTF-8 even
 * when a header carries raw octets (legal in HTTP field values). */
static size_t json_str(char *out, size_t cap, size_t n, weft_sv v) {
    static const char hex[] = "0123456789abcdef";
    size_t len = v.len > FIELD_MAX ? FIELD_MAX : v.len;
    if (n + len * 6 + 2 >= cap)
        return n;
    out[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            out[n++] = '\\';
            out[n++] = 'u';
            out[n++] = '0';
            out[n++] = '0';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    return n;
}

static size_t put(char *out, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *out, size_t cap, size_t n, const char *fmt, ...) {
    if (n >= cap)
        return n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return n;
    return (size_t)m >= cap - n ? cap - 1 : n + (size_t)m;
}

static weft_sv sv_or_empty(const char *s) {
    return weft_sv_from(s ? s : "");
}

/* Sized so that every field at FIELD_MAX, fully escaped, still fits: the
 * structure is never cut. */
static _Thread_local char line[96 * 1024];

void weft_access_log_write(int fd, const weft_log_record *r) {
    if (fd < 0)
        return;
    size_t cap = sizeof(line) - 2, n = 0;
    uint64_t wall = weft_wall_ms();
    time_t secs = (time_t)(wall / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char flags[64];
    weft_response_flags_str(r->flags, flags, sizeof(flags));
    bool tcp = r->protocol == WEFT_LOG_TCP;

    n = put(line, cap, n, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(wall % 1000));
    if (tcp) {
        n = put(line, cap, n, ",\"protocol\":\"TCP\",\"response_flags\":\"%s\"", flags);
    } else {
        n = put(line, cap, n, ",\"method\":");
        n = json_str(line, cap, n, r->method);
        n = put(line, cap, n, ",\"authority\":");
        n = json_str(line, cap, n, r->authority);
        n = put(line, cap, n, ",\"path\":");
        n = json_str(line, cap, n, r->path);
        if (r->protocol == WEFT_LOG_HTTP2)
            n = put(line, cap, n, ",\"protocol\":\"HTTP/2\"");
        else
            n = put(line, cap, n, ",\"protocol\":\"HTTP/1.%u\"", r->http_minor);
        n = put(line, cap, n, ",\"status\":%u,\"response_flags\":\"%s\"", r->status, flags);
        n = put(line, cap, n, ",\"reason\":");
        n = json_str(line, cap, n, sv_or_empty(r->reason));
    }
    n = put(line, cap, n, ",\"bytes_received\":%llu,\"bytes_sent\":%llu,\"duration_ms\":%.3f",
            (unsigned long long)r->bytes_received, (unsigned long long)r->bytes_sent,
            (double)r->duration_us / 1000.0);
    if (!tcp && r->upstream_service_us >= 0)
        n = put(line, cap, n, ",\"upstream_service_time_ms\":%.3f",
                (double)r->upstream_service_us / 1000.0);
    if (!tcp && r->grpc_status >= 0)
        n = put(line, cap, n, ",\"grpc_status\":%d", r->grpc_status);
    n = put(line, cap, n, ",\"upstream_host\":");
    n = json_str(line, cap, n, sv_or_empty(r->upstream_host));
    n = put(line, cap, n, ",\"upstream_cluster\":");
    n = json_str(line, cap, n, sv_or_empty(r->upstream_cluster));
    if (!tcp) {
        n = put(line, cap, n, ",\"route\":");
        n = json_str(line, cap, n, sv_or_empty(r->route));
        n = put(line, cap, n, ",\"request_id\":");
        n = json_str(line, cap, n, r->request_id);
    }
    n = put(line, cap, n, ",\"downstream_remote\":");
    n = json_str(line, cap, n, sv_or_empty(r->downstream_remote));
    if (!tcp) {
        n = put(line, cap, n, ",\"user_agent\":");
        n = json_str(line, cap, n, r->user_agent);
    }
    n = put(line, cap, n, ",\"listener\":");
    n = json_str(line, cap, n, sv_or_empty(r->listener));
    if (n > cap - 1)
        n = cap - 1;
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(fd, line, n);
    (void)w;
}
