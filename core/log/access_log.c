/* access_log.c: JSON lines access log. */
#include "log/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/stream.h"

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

static weft_sv hdr_or_empty(const weft_req_head *req, const char *name) {
    if (!req)
        return (weft_sv){"", 0};
    const weft_sv *v = weft_hdrs_get(&req->headers, weft_sv_from(name));
    return v ? *v : (weft_sv){"", 0};
}

void weft_access_log_write(int fd, const weft_stream *s) {
    if (fd < 0)
        return;
    /* Sized so that every field at FIELD_MAX, fully escaped, still fits:
     * the structure is never cut. */
    static _Thread_local char line[96 * 1024];
    size_t cap = sizeof(line) - 2, n = 0;
    uint64_t wall = weft_wall_ms();
    time_t secs = (time_t)(wall / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    const weft_req_head *req = s->req;
    weft_sv empty = {"", 0};
    char flags[64];
    weft_response_flags_str(s->flags, flags, sizeof(flags));
    uint64_t dur_us = s->t_end_us > s->t_start_us ? s->t_end_us - s->t_start_us : 0;

    n = put(line, cap, n, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(wall % 1000));
    n = put(line, cap, n, ",\"method\":");
    n = json_str(line, cap, n, req ? req->method : empty);
    n = put(line, cap, n, ",\"authority\":");
    n = json_str(line, cap, n, req ? req->authority : empty);
    n = put(line, cap, n, ",\"path\":");
    n = json_str(line, cap, n, req ? req->target : empty);
    if (s->h2)
        n = put(line, cap, n, ",\"protocol\":\"HTTP/2\"");
    else
        n = put(line, cap, n, ",\"protocol\":\"HTTP/1.%d\"", req ? req->http_minor : 1);
    n = put(line, cap, n, ",\"status\":%u,\"response_flags\":\"%s\"", s->status_sent, flags);
    n = put(line, cap, n, ",\"reason\":");
    n = json_str(line, cap, n, s->reason ? weft_sv_from(s->reason) : empty);
    n = put(line, cap, n, ",\"bytes_received\":%llu,\"bytes_sent\":%llu,\"duration_ms\":%.3f",
            (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
            (double)dur_us / 1000.0);
    if (s->t_up_head_us && s->t_up_start_us)
        n = put(line, cap, n, ",\"upstream_service_time_ms\":%.3f",
                (double)(s->t_up_head_us - s->t_up_start_us) / 1000.0);
    if (s->is_grpc && s->grpc_status >= 0)
        n = put(line, cap, n, ",\"grpc_status\":%d", s->grpc_status);
    n = put(line, cap, n, ",\"upstream_host\":");
    n = json_str(line, cap, n, s->att.ep ? weft_sv_from(s->att.ep->name) : empty);
    n = put(line, cap, n, ",\"upstream_cluster\":");
    n = json_str(line, cap, n, s->cluster ? weft_sv_from(s->cluster->shared->cfg->name) : empty);
    /* the route the request went with, else the one matched before the
     * filters (a filter's local reply still names its route) */
    const weft_route_entry *re = s->route ? s->route : s->matched;
    n = put(line, cap, n, ",\"route\":");
    n = json_str(line, cap, n, re && re->cfg->name ? weft_sv_from(re->cfg->name) : empty);
    n = put(line, cap, n, ",\"request_id\":");
    n = json_str(line, cap, n, s->request_id);
    n = put(line, cap, n, ",\"downstream_remote\":");
    n = json_str(line, cap, n, weft_sv_from(s->peer_ip ? s->peer_ip : ""));
    n = put(line, cap, n, ",\"user_agent\":");
    n = json_str(line, cap, n, hdr_or_empty(req, "user-agent"));
    n = put(line, cap, n, ",\"listener\":");
    n = json_str(line, cap, n, weft_sv_from(s->lst ? s->lst->cfg->name : ""));
    if (n > cap - 1)
        n = cap - 1;
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(fd, line, n);
    (void)w;
}

void weft_access_log_write_tcp(int fd, const weft_tcp_log_entry *e) {
    if (fd < 0)
        return;
    /* Four string fields at FIELD_MAX, fully escaped, still fit. */
    static _Thread_local char line[32 * 1024];
    size_t cap = sizeof(line) - 2, n = 0;
    uint64_t wall = weft_wall_ms();
    time_t secs = (time_t)(wall / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char flags[64];
    weft_response_flags_str(e->flags, flags, sizeof(flags));
    n = put(line, cap, n, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(wall % 1000));
    n = put(line, cap, n, ",\"protocol\":\"TCP\",\"response_flags\":\"%s\"", flags);
    n = put(line, cap, n, ",\"bytes_received\":%llu,\"bytes_sent\":%llu,\"duration_ms\":%.3f",
            (unsigned long long)e->bytes_received, (unsigned long long)e->bytes_sent,
            (double)e->duration_us / 1000.0);
    n = put(line, cap, n, ",\"upstream_host\":");
    n = json_str(line, cap, n, weft_sv_from(e->upstream_host ? e->upstream_host : ""));
    n = put(line, cap, n, ",\"upstream_cluster\":");
    n = json_str(line, cap, n, weft_sv_from(e->upstream_cluster ? e->upstream_cluster : ""));
    n = put(line, cap, n, ",\"downstream_remote\":");
    n = json_str(line, cap, n, weft_sv_from(e->downstream_remote ? e->downstream_remote : ""));
    n = put(line, cap, n, ",\"listener\":");
    n = json_str(line, cap, n, weft_sv_from(e->listener ? e->listener : ""));
    if (n > cap - 1)
        n = cap - 1;
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(fd, line, n);
    (void)w;
}
