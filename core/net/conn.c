/* conn.c: non-blocking TCP connection (see conn.h). */
#include "net/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_CHUNK 16384

struct weft_conn {
    evutil_socket_t fd;
    struct event_base *base;
    struct event ev_read;
    struct event ev_write;
    struct event ev_flush; /* deferred: write queued output at end of turn */
    struct evbuffer *in, *out;
    /* in_cb's entry: registered only while reading waits for the owner to
     * drain a full input (libevent runs a buffer's callbacks on every add
     * and drain, which for every other change would be for nothing). */
    struct evbuffer_cb_entry *in_cb_ent;
    weft_conn_cbs cbs;
    void *ud;
    size_t read_high, write_low;
    int err;
    bool connecting;
    bool read_on;    /* wanted by the owner */
    bool read_armed; /* ev_read added */
    bool write_armed;
    bool flush_pending; /* ev_flush activated, on_flush not run yet */
    bool shut_after_flush;
    bool shut_done;
    bool eof;
};

static void in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

static void update_read(weft_conn *c) {
    bool full = c->read_high && evbuffer_get_length(c->in) >= c->read_high;
    if (full && !c->in_cb_ent) {
        c->in_cb_ent = evbuffer_add_cb(c->in, in_cb, c);
        if (!c->in_cb_ent)
            full = false; /* out of memory: no drain would resume reading */
    } else if (!full && c->in_cb_ent) {
        /* (from in_cb too: libevent allows a callback to remove itself) */
        evbuffer_remove_cb_entry(c->in, c->in_cb_ent);
        c->in_cb_ent = NULL;
    }
    bool want = c->read_on && !c->connecting && !c->eof && c->fd >= 0 && !full;
    if (want && !c->read_armed)
        event_add(&c->ev_read, NULL);
    else if (!want && c->read_armed)
        event_del(&c->ev_read);
    c->read_armed = want;
}

static void fail(weft_conn *c, int what) {
    if (c->cbs.on_event)
        c->cbs.on_event(c->ud, what);
}

/* Writes as much as the kernel takes. Returns false if the connection
 * failed (the owner has been told). */
static bool do_write(weft_conn *c) {
    while (evbuffer_get_length(c->out)) {
        int n = evbuffer_write(c->out, c->fd);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            c->err = errno;
            if (c->write_armed) {
                event_del(&c->ev_write);
                c->write_armed = false;
            }
            fail(c, WEFT_CONN_ERROR);
            return false;
        }
        if (n == 0)
            break;
    }
    size_t left = evbuffer_get_length(c->out);
    if (left && !c->write_armed) {
        event_add(&c->ev_write, NULL);
        c->write_armed = true;
    } else if (!left && c->write_armed) {
        event_del(&c->ev_write);
        c->write_armed = false;
    }
    if (!left && c->shut_after_flush && !c->shut_done) {
        shutdown(c->fd, SHUT_WR);
        c->shut_done = true;
    }
    return true;
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    weft_conn *c = arg;
    struct evbuffer_iovec v[2];
    size_t want = READ_CHUNK;
    if (c->read_high) {
        size_t have = evbuffer_get_length(c->in);
        want = have >= c->read_high ? 0 : c->read_high - have;
        if (want > READ_CHUNK)
            want = READ_CHUNK;
    }
    if (!want) {
        update_read(c);
        return;
    }
    int nv = evbuffer_reserve_space(c->in, (ev_ssize_t)want, v, 2);
    if (nv <= 0)
        return;
    if ((size_t)nv == 2 && v[0].iov_len >= want)
        nv = 1;
    struct iovec iov[2];
    for (int i = 0; i < nv; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
    }
    ssize_t n = readv(fd, iov, nv);
    if (n < 0) {
        evbuffer_commit_space(c->in, v, 0);
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        c->err = errno;
        event_del(&c->ev_read);
        c->read_armed = false;
        c->eof = true;
        fail(c, WEFT_CONN_ERROR);
        return;
    }
    if (n == 0) {
        evbuffer_commit_space(c->in, v, 0);
        event_del(&c->ev_read);
        c->read_armed = false;
        c->eof = true;
        fail(c, WEFT_CONN_EOF);
        return;
    }
    size_t left = (size_t)n;
    for (int i = 0; i < nv; i++) {
        size_t take = left < v[i].iov_len ? left : v[i].iov_len;
        v[i].iov_len = take;
        left -= take;
    }
    evbuffer_commit_space(c->in, v, nv);
    if (c->read_high && evbuffer_get_length(c->in) >= c->read_high)
        update_read(c);
    if (c->cbs.on_read)
        c->cbs.on_read(c->ud);
}

static void on_writable(evutil_socket_t fd, short what, void *arg) {
    weft_conn *c = arg;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        c->connecting = false;
        if (err) {
            c->err = err;
            event_del(&c->ev_write);
            c->write_armed = false;
            fail(c, WEFT_CONN_ERROR);
            return;
        }
        update_read(c);
        if (!evbuffer_get_length(c->out)) {
            event_del(&c->ev_write);
            c->write_armed = false;
        }
        if (c->cbs.on_event)
            c->cbs.on_event(c->ud, WEFT_CONN_CONNECTED);
        return; /* the owner may have freed or queued: the flush event runs */
    }
    size_t before = evbuffer_get_length(c->out);
    if (!do_write(c))
        return;
    size_t after = evbuffer_get_length(c->out);
    if (after <= c->write_low && before > after && c->cbs.on_drained)
        c->cbs.on_drained(c->ud);
}

static void on_flush(evutil_socket_t fd, short what, void *arg) {
    weft_conn *c = arg;
    c->flush_pending = false;
    if (c->connecting || c->fd < 0)
        return;
    size_t before = evbuffer_get_length(c->out);
    if (!do_write(c))
        return;
    size_t after = evbuffer_get_length(c->out);
    if (after <= c->write_low && before > after && c->cbs.on_drained)
        c->cbs.on_drained(c->ud);
}

/* Any data added to the output schedules one flush at the end of this
 * loop turn, so a head and a body written back to back go out in one
 * writev (activated once: later additions find it pending). */
static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    weft_conn *c = arg;
    if (info->n_added && !c->connecting && !c->write_armed && !c->flush_pending) {
        c->flush_pending = true;
        event_active(&c->ev_flush, EV_TIMEOUT, 0);
    }
}

/* Input drained by the owner: reading may resume below the watermark.
 * Registered only while the input is full (update_read). */
static void in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    weft_conn *c = arg;
    if (info->n_deleted && c->read_high && !c->read_armed)
        update_read(c);
}

weft_conn *weft_conn_new(struct event_base *base, evutil_socket_t fd, const weft_conn_cbs *cbs,
                         void *ud) {
    weft_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    if (!c->in || !c->out) {
        if (c->in)
            evbuffer_free(c->in);
        if (c->out)
            evbuffer_free(c->out);
        free(c);
        return NULL;
    }
    c->fd = -1;
    c->base = base;
    c->cbs = *cbs;
    c->ud = ud;
    c->read_on = true;
    evbuffer_add_cb(c->out, out_cb, c);
    event_assign(&c->ev_flush, base, -1, 0, on_flush, c);
    if (fd >= 0) {
        c->fd = fd;
        evutil_make_socket_nonblocking(fd);
        event_assign(&c->ev_read, base, fd, EV_READ | EV_PERSIST, on_readable, c);
        event_assign(&c->ev_write, base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
        update_read(c);
    }
    return c;
}

int weft_conn_connect(weft_conn *c, const struct sockaddr *sa, socklen_t len) {
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->err = errno;
        return -1;
    }
    c->fd = fd;
    event_assign(&c->ev_read, c->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    event_assign(&c->ev_write, c->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->connecting = true;
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        c->err = errno;
        c->connecting = false;
        return -1;
    }
    event_add(&c->ev_write, NULL);
    c->write_armed = true;
    return 0;
}

void weft_conn_free(weft_conn *c) {
    if (!c)
        return;
    event_del(&c->ev_flush);
    if (c->fd >= 0) {
        event_del(&c->ev_read);
        event_del(&c->ev_write);
        close(c->fd);
    }
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    free(c);
}

struct evbuffer *weft_conn_input(weft_conn *c) {
    return c->in;
}
struct evbuffer *weft_conn_output(weft_conn *c) {
    return c->out;
}
evutil_socket_t weft_conn_fd(const weft_conn *c) {
    return c->fd;
}
int weft_conn_error(const weft_conn *c) {
    return c->err;
}

void weft_conn_set_watermarks(weft_conn *c, size_t read_high, size_t write_low) {
    c->read_high = read_high;
    c->write_low = write_low;
    update_read(c);
}

void weft_conn_read_enable(weft_conn *c, bool on) {
    c->read_on = on;
    update_read(c);
}

void weft_conn_set_cbs(weft_conn *c, const weft_conn_cbs *cbs, void *ud) {
    c->cbs = *cbs;
    c->ud = ud;
}

void weft_conn_flush(weft_conn *c) {
    if (!c->connecting && c->fd >= 0)
        do_write(c);
}

void weft_conn_shutdown_write(weft_conn *c) {
    c->shut_after_flush = true;
    if (!c->connecting && c->fd >= 0)
        do_write(c);
}
