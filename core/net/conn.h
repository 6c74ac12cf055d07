/* conn.h: a non-blocking TCP connection with input/output evbuffers, the
 * transport under both codecs. Unlike bufferevent it keeps the socket's
 * read interest registered once (no epoll_ctl per request), reads into
 * reserved evbuffer space without FIONREAD, and writes speculatively: data
 * queued on the output is written at the end of the current loop turn, and
 * EV_WRITE is armed only when the kernel buffer is full.
 *
 * Ownership: the connection owns fd and both buffers; weft_conn_free
 * closes the fd. Callbacks may free the connection only through
 * weft_conn_free() called outside of them, or by returning after setting
 * their own "doomed" state (the owner's convention). */
#ifndef WEFT_NET_CONN_H
#define WEFT_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

typedef struct weft_conn weft_conn;

enum {
    WEFT_CONN_EOF = 1,       /* peer closed its write side */
    WEFT_CONN_ERROR = 2,     /* reset, refused, ... (errno saved) */
    WEFT_CONN_CONNECTED = 4, /* outbound connect finished */
};

typedef struct weft_conn_cbs {
    void (*on_read)(void *ud);    /* new bytes in the input */
    void (*on_drained)(void *ud); /* a write left the output at <= the low watermark */
    void (*on_event)(void *ud, int what);
} weft_conn_cbs;

/* Wraps an accepted socket (fd >= 0) or, with fd < 0, a connection to be
 * opened with weft_conn_connect. Reading starts enabled. */
weft_conn *weft_conn_new(struct event_base *base, evutil_socket_t fd, const weft_conn_cbs *cbs,
                         void *ud);
int weft_conn_connect(weft_conn *c, const struct sockaddr *sa, socklen_t len);
void weft_conn_free(weft_conn *c);

struct evbuffer *weft_conn_input(weft_conn *c);
struct evbuffer *weft_conn_output(weft_conn *c);
evutil_socket_t weft_conn_fd(const weft_conn *c);
/* Reads stop while the input holds >= read_high bytes (0 = no limit);
 * on_drained fires when the output drains to <= write_low. */
void weft_conn_set_watermarks(weft_conn *c, size_t read_high, size_t write_low);
void weft_conn_read_enable(weft_conn *c, bool on);
/* Changes who receives the callbacks (pooled connections change owner). */
void weft_conn_set_cbs(weft_conn *c, const weft_conn_cbs *cbs, void *ud);
/* Writes what it can now (normally automatic at the end of the turn). */
void weft_conn_flush(weft_conn *c);
/* After the output is flushed, shut down the write side (lingering close). */
void weft_conn_shutdown_write(weft_conn *c);
int weft_conn_error(const weft_conn *c); /* errno of the last failure */

#endif
