/* test_stream_tcp_callout.c: misuse of SDK 1.1's raw TCP callouts in the
 * core (core/filter/tcp_callout.c, weft_tcp_callout_* and
 * weft_worker_tcp_callout_open) on live streams of the stream harness,
 * with real connections to upstreams on 127.0.0.1 the test plays:
 *   - bad arguments and options (WEFT_ERR_INVALID), unknown clusters
 *     (WEFT_ERR_NOT_FOUND), things that are not a callout or not a worker
 *     (WEFT_ERR_HANDLE, also another kind's handle), the log phase
 *     (WEFT_ERR_STATE), the write limit (WEFT_ERR_LIMIT);
 *   - stale handles: after weft_tcp_callout_close, after on_close returned,
 *     after the stream of a stream-scoped callout ended (no callback later,
 *     the peer sees the connection go);
 *   - calls from inside on_close (write: WEFT_ERR_STATE, close: fine) and a
 *     flush-close from inside on_data (the bytes still go, then EOF);
 *   - the per-stream cap (listener limits.filter_callouts): a callout whose
 *     on_close runs no longer counts (a filter may reconnect from it, as in
 *     the kit), worker-scoped callouts are not the stream's;
 *   - calls from another thread than the worker's (WEFT_ERR_THREAD), which
 *     leave the callout alone;
 *   - a worker-scoped callout outlives the stream that opened it;
 *   - connect attempts default to the cluster's connect_attempts. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "filter/tcp_callout.h"
#include "stream_harness.h"
#include "stream_test_config.h"

static sh H;

/* ---------- what the callbacks saw and do ---------- */

typedef struct probe {
    weft_tcp_callout *c;
    int connects, datas, closes;
    uint32_t reason;
    char got[256];
    bool close_in_close;      /* on_close: weft_tcp_callout_close too */
    bool flush_close_in_data; /* on_data: write "BYE\r\n", close with flush */
    bool reopen_in_close;     /* on_close: open another callout to c0 */
    weft_stream *s;           /* its stream (reopen_in_close) */
    struct probe *reopened;
    weft_result w_in_close, c_in_close, w_in_data, c_in_data, reopen_rc;
} probe;

static void p_connect(weft_tcp_callout *c, void *arg) {
    probe *p = arg;
    assert_ptr_equal(c, p->c);
    p->connects++;
}

static void p_data(weft_tcp_callout *c, void *arg, weft_buffer *b) {
    probe *p = arg;
    assert_ptr_equal(c, p->c);
    p->datas++;
    size_t have = strlen(p->got), n = weft_buffer_length(b);
    assert_true(have + n < sizeof(p->got));
    p->got[have + weft_buffer_copy_out(b, 0, p->got + have, n)] = '\0';
    assert_int_equal(weft_buffer_drain(b, n), WEFT_OK);
    if (p->flush_close_in_data) {
        p->w_in_data = weft_tcp_callout_write(c, "BYE\r\n", 5);
        p->c_in_data = weft_tcp_callout_close(c, true);
    }
}

static const weft_tcp_callout_cbs CBS;

static void p_close(weft_tcp_callout *c, void *arg, uint32_t reason) {
    probe *p = arg;
    assert_ptr_equal(c, p->c);
    p->closes++;
    p->reason = reason;
    p->w_in_close = weft_tcp_callout_write(c, "x", 1);
    if (p->close_in_close)
        p->c_in_close = weft_tcp_callout_close(c, false);
    if (p->reopen_in_close)
        p->reopen_rc =
            weft_tcp_callout_open(p->s, WEFT_STR("c0"), NULL, &CBS, p->reopened, &p->reopened->c);
}

static const weft_tcp_callout_cbs CBS = {sizeof(weft_tcp_callout_cbs), p_connect, p_data, p_close};

static bool connected(void *arg) {
    return ((probe *)arg)->connects > 0;
}
static bool got_data(void *arg) {
    return ((probe *)arg)->datas > 0;
}
static bool closed(void *arg) {
    return ((probe *)arg)->closes > 0;
}

/* ---------- the scripted filter's hooks dispatch to the test ---------- */

static void (*on_req)(tf_script *sc, weft_stream *s);
static void (*on_complete)(tf_script *sc, weft_stream *s);

static void hook(tf_script *sc, weft_stream *s, tf_hook h) {
    if (h == TF_REQ_HEADERS && on_req)
        on_req(sc, s);
    else if (h == TF_COMPLETE && on_complete)
        on_complete(sc, s);
}

static tf_script F = {.name = "f", .custom = hook};

/* Starts H with the scripted filter F: its request-headers hook calls req
 * (then takes on_headers), its log phase `complete` (may be NULL). */
static void start_more(const char *limits, tf_action on_headers,
                       void (*req)(tf_script *sc, weft_stream *s),
                       void (*complete)(tf_script *sc, weft_stream *s), const char *more) {
    memset(&F, 0, sizeof(F));
    F.name = "f";
    F.custom = hook;
    F.act[TF_REQ_HEADERS] = on_headers;
    on_req = req;
    on_complete = complete;
    tf_script *fs[] = {&F};
    st_start_with_c1(&H, fs, 1, limits, more); /* c0: upstream 0; c1 refuses */
}

static void start(const char *limits, tf_action on_headers,
                  void (*req)(tf_script *sc, weft_stream *s),
                  void (*complete)(tf_script *sc, weft_stream *s)) {
    start_more(limits, on_headers, req, complete, "");
}

/* Upstream 0's current connection saw EOF (the loop turns meanwhile). */
static void up_wait_eof(void) {
    int fd = H.up[0].cfd;
    assert_true(fd >= 0);
    for (int i = 0; i < 5000; i++) {
        sh_turn(&H);
        char buf[256];
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0)
            return;
        if (r > 0)
            evbuffer_add(H.up[0].got, buf, (size_t)r);
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, 1);
    }
    fail_msg("upstream 0: the connection never closed");
}

static weft_stream *kept_s;
static weft_worker *kept_w;
static weft_result complete_rc;

/* ---------- arguments, options, kinds of handles, the log phase ---------- */

static void args_req(tf_script *sc, weft_stream *s) {
    kept_s = s;
    kept_w = weft_worker_current(sc);
    assert_non_null(kept_w);
    probe p = {0};
    weft_tcp_callout *c = NULL;
    weft_str c0 = WEFT_STR("c0");
    weft_tcp_callout_cbs cbs = CBS;
    weft_tcp_callout_opts o = {.size = sizeof(o)};
    /* Callbacks: NULL, without on_data, a size below 1.1's; out NULL. */
    assert_int_equal(weft_tcp_callout_open(s, c0, NULL, NULL, &p, &c), WEFT_ERR_INVALID);
    cbs.on_data = NULL;
    assert_int_equal(weft_tcp_callout_open(s, c0, NULL, &cbs, &p, &c), WEFT_ERR_INVALID);
    cbs = CBS;
    cbs.size = sizeof(size_t);
    assert_int_equal(weft_tcp_callout_open(s, c0, NULL, &cbs, &p, &c), WEFT_ERR_INVALID);
    assert_int_equal(weft_tcp_callout_open(s, c0, NULL, &CBS, &p, NULL), WEFT_ERR_INVALID);
    /* Options: a size too small, an unknown flag. */
    o.size = sizeof(size_t);
    assert_int_equal(weft_tcp_callout_open(s, c0, &o, &CBS, &p, &c), WEFT_ERR_INVALID);
    o.size = sizeof(o);
    o.flags = 1u << 3;
    assert_int_equal(weft_tcp_callout_open(s, c0, &o, &CBS, &p, &c), WEFT_ERR_INVALID);
    o.flags = 0;
    /* Clusters: a length without bytes, none, unknown, a prefix of one. */
    assert_int_equal(weft_tcp_callout_open(s, (weft_str){NULL, 2}, NULL, &CBS, &p, &c),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_tcp_callout_open(s, (weft_str){NULL, 0}, NULL, &CBS, &p, &c),
                     WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_tcp_callout_open(s, WEFT_STR("nope"), NULL, &CBS, &p, &c),
                     WEFT_ERR_NOT_FOUND);
    assert_int_equal(weft_tcp_callout_open(s, WEFT_STR("c"), NULL, &CBS, &p, &c),
                     WEFT_ERR_NOT_FOUND);
    assert_null(c); /* no failed open wrote *out */
    /* Not a stream: NULL, an address, the worker handle. */
    assert_int_equal(weft_tcp_callout_open(NULL, c0, NULL, &CBS, &p, &c), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_open((weft_stream *)&p, c0, NULL, &CBS, &p, &c),
                     WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_open((weft_stream *)kept_w, c0, NULL, &CBS, &p, &c),
                     WEFT_ERR_HANDLE);
    /* Not a worker: NULL, the stream handle; then the worker's own checks. */
    assert_int_equal(weft_worker_tcp_callout_open(NULL, c0, NULL, &CBS, &p, &c), WEFT_ERR_HANDLE);
    assert_int_equal(weft_worker_tcp_callout_open((weft_worker *)s, c0, NULL, &CBS, &p, &c),
                     WEFT_ERR_HANDLE);
    assert_int_equal(weft_worker_tcp_callout_open(kept_w, c0, NULL, NULL, &p, &c),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_tcp_callout_open(kept_w, c0, &o, &CBS, &p, NULL),
                     WEFT_ERR_INVALID);
    assert_int_equal(weft_worker_tcp_callout_open(kept_w, WEFT_STR("nope"), NULL, &CBS, &p, &c),
                     WEFT_ERR_NOT_FOUND);
    assert_null(c);
    /* Not a callout: NULL, an address, a stream's or a worker's handle
     * (the same table, another kind). */
    assert_int_equal(weft_tcp_callout_write(NULL, "x", 1), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_close(NULL, true), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_write((weft_tcp_callout *)&p, "x", 1), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_write((weft_tcp_callout *)s, "x", 1), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_close((weft_tcp_callout *)s, false), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_write((weft_tcp_callout *)kept_w, "x", 1), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_close((weft_tcp_callout *)kept_w, false), WEFT_ERR_HANDLE);
    /* A live callout: bad data, the write limit (what is queued counts). */
    o.max_write_bytes = 4;
    assert_int_equal(weft_tcp_callout_open(s, c0, &o, &CBS, &p, &c), WEFT_OK);
    assert_non_null(c);
    assert_int_equal(weft_tcp_callout_write(c, NULL, 1), WEFT_ERR_INVALID);
    assert_int_equal(weft_tcp_callout_write(c, NULL, 0), WEFT_OK);
    assert_int_equal(weft_tcp_callout_write(c, "12345", 5), WEFT_ERR_LIMIT);
    assert_int_equal(weft_tcp_callout_write(c, "123", 3), WEFT_OK);
    assert_int_equal(weft_tcp_callout_write(c, "45", 2), WEFT_ERR_LIMIT);
    assert_int_equal(weft_tcp_callout_write(c, "4", 1), WEFT_OK);
    assert_int_equal(weft_tcp_callout_write(c, "5", 1), WEFT_ERR_LIMIT);
    /* Closed: every copy of the handle is stale, a second close too. */
    assert_int_equal(weft_tcp_callout_close(c, false), WEFT_OK);
    assert_int_equal(weft_tcp_callout_write(c, "x", 1), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_close(c, false), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_close(c, true), WEFT_ERR_HANDLE);
    /* The worker's open works from a hook; closed at once here. */
    assert_int_equal(weft_worker_tcp_callout_open(kept_w, c0, NULL, &CBS, &p, &c), WEFT_OK);
    assert_int_equal(weft_tcp_callout_close(c, false), WEFT_OK);
    assert_int_equal(weft_tcp_callout_write(c, "x", 1), WEFT_ERR_HANDLE);
}

static void args_complete(tf_script *sc, weft_stream *s) {
    (void)sc;
    probe p = {0};
    weft_tcp_callout *c = NULL;
    complete_rc = weft_tcp_callout_open(s, WEFT_STR("c0"), NULL, &CBS, &p, &c);
    assert_null(c);
}

static void test_bad_arguments_and_handles(void **state) {
    (void)state;
    start("", TF_CONTINUE, args_req, args_complete);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
    assert_int_equal(d->status, 200);
    assert_int_equal(complete_rc, WEFT_ERR_STATE); /* the log phase */
    /* The stream ended: its handle opens nothing. */
    probe p = {0};
    weft_tcp_callout *c = NULL;
    assert_int_equal(weft_tcp_callout_open(kept_s, WEFT_STR("c0"), NULL, &CBS, &p, &c),
                     WEFT_ERR_HANDLE);
    sh_ds_free(d);
    /* Nothing was left open, and no callback ran for the closed ones. */
    assert_null(H.w->tcpcs);
    assert_int_equal(H.w->n_tcpcs, 0);
}

/* ---------- stale after on_close, calls from inside the callbacks ---------- */

static probe *next_probe;

static void open_probe(tf_script *sc, weft_stream *s) {
    (void)sc;
    kept_s = s;
    next_probe->s = s;
    assert_int_equal(
        weft_tcp_callout_open(s, WEFT_STR("c0"), NULL, &CBS, next_probe, &next_probe->c), WEFT_OK);
    /* Queued before the connect: goes out once connected. */
    assert_int_equal(weft_tcp_callout_write(next_probe->c, "PING\r\n", 6), WEFT_OK);
}

/* A stream (stopped in its request headers) with a callout to c0 that
 * is connected, its first bytes received by upstream 0. */
static sh_ds *stream_with_callout(probe *p) {
    next_probe = p;
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    assert_non_null(p->c);
    sh_up_accept(&H, 0);
    sh_up_wait_for(&H, 0, "PING\r\n");
    sh_run_until(&H, connected, p, "on_connect");
    return d;
}

static void test_stale_after_on_close(void **state) {
    (void)state;
    start("", TF_STOP, open_probe, NULL);
    /* A: the peer closes; inside on_close a write is refused; after
     * on_close the handle is stale and nothing more runs. */
    probe a = {0};
    sh_ds *d = stream_with_callout(&a);
    sh_up_send(&H, 0, "+PONG\r\n");
    sh_run_until(&H, got_data, &a, "on_data");
    assert_string_equal(a.got, "+PONG\r\n");
    sh_up_close(&H, 0);
    sh_run_until(&H, closed, &a, "on_close");
    assert_int_equal(a.reason, WEFT_TCP_CLOSE_PEER);
    assert_int_equal(a.w_in_close, WEFT_ERR_STATE);
    assert_int_equal(weft_tcp_callout_write(a.c, "x", 1), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_close(a.c, true), WEFT_ERR_HANDLE);
    sh_run_for(&H, 20);
    assert_int_equal(a.closes, 1);
    assert_int_equal(a.connects, 1);
    assert_int_equal(a.datas, 1);
    sh_ds_free(d);

    /* B: closed by the filter from inside its own on_close: fine, once. */
    probe b = {.close_in_close = true};
    d = stream_with_callout(&b);
    sh_up_close(&H, 0);
    sh_run_until(&H, closed, &b, "on_close");
    assert_int_equal(b.w_in_close, WEFT_ERR_STATE);
    assert_int_equal(b.c_in_close, WEFT_OK);
    assert_int_equal(weft_tcp_callout_close(b.c, false), WEFT_ERR_HANDLE);
    sh_run_for(&H, 20);
    assert_int_equal(b.closes, 1);
    sh_ds_free(d);

    /* C: a flush-close from inside on_data: the handle is stale at once,
     * what was written still goes out, then the write side shuts; no
     * callback runs any more (on_close neither). */
    probe c = {.flush_close_in_data = true};
    d = stream_with_callout(&c);
    sh_up_send(&H, 0, "+OK\r\n");
    sh_run_until(&H, got_data, &c, "on_data");
    assert_int_equal(c.w_in_data, WEFT_OK);
    assert_int_equal(c.c_in_data, WEFT_OK);
    assert_int_equal(weft_tcp_callout_write(c.c, "x", 1), WEFT_ERR_HANDLE);
    up_wait_eof();
    assert_string_equal(sh_up_got(&H, 0), "PING\r\nBYE\r\n");
    sh_up_send(&H, 0, "+LATE\r\n");
    sh_run_for(&H, 20);
    assert_int_equal(c.datas, 1);
    assert_int_equal(c.closes, 0);
    sh_up_close(&H, 0);
    sh_run_for(&H, 20);
    assert_int_equal(c.closes, 0);
    assert_null(H.w->tcpcs); /* the lingering close went with the peer's */
    sh_ds_free(d);
}

/* ---------- the stream of a stream-scoped callout ends ---------- */

static void test_stream_end_makes_it_stale(void **state) {
    (void)state;
    start("", TF_STOP, open_probe, NULL);
    probe p = {0};
    sh_ds *d = stream_with_callout(&p);
    sh_ds_client_reset(d); /* the client goes: the stream ends */
    sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
    assert_int_equal(weft_tcp_callout_write(p.c, "x", 1), WEFT_ERR_HANDLE);
    assert_int_equal(weft_tcp_callout_close(p.c, true), WEFT_ERR_HANDLE);
    weft_tcp_callout *c = NULL;
    assert_int_equal(weft_tcp_callout_open(kept_s, WEFT_STR("c0"), NULL, &CBS, &p, &c),
                     WEFT_ERR_HANDLE);
    /* The connection went with it; bytes the peer sent do not reach the
     * filter, and no on_close runs for a scope that ended. */
    up_wait_eof();
    sh_run_for(&H, 20);
    assert_int_equal(p.datas, 0);
    assert_int_equal(p.closes, 0);
    assert_null(H.w->tcpcs);
    sh_ds_free(d);
}

/* ---------- the per-stream cap ---------- */

static probe cap_p[4];
static weft_result cap_rc[8];

static void cap_req(tf_script *sc, weft_stream *s) {
    kept_s = s;
    weft_worker *w = weft_worker_current(sc);
    /* 0 to c1 (refused: it ends by itself), 1 to c0; the cap is 2. */
    cap_p[0].s = s;
    cap_p[0].reopen_in_close = true;
    cap_p[0].reopened = &cap_p[2];
    cap_rc[0] = weft_tcp_callout_open(s, WEFT_STR("c1"), NULL, &CBS, &cap_p[0], &cap_p[0].c);
    cap_rc[1] = weft_tcp_callout_open(s, WEFT_STR("c0"), NULL, &CBS, &cap_p[1], &cap_p[1].c);
    weft_tcp_callout *c = NULL;
    cap_rc[2] = weft_tcp_callout_open(s, WEFT_STR("c0"), NULL, &CBS, &cap_p[3], &c);
    /* A worker-scoped callout is not the stream's. */
    cap_rc[3] = weft_worker_tcp_callout_open(w, WEFT_STR("c0"), NULL, &CBS, &cap_p[3], &c);
    cap_rc[4] = weft_tcp_callout_close(c, false);
    /* A closed one frees its place at once. */
    cap_rc[5] = weft_tcp_callout_close(cap_p[1].c, false);
    cap_rc[6] = weft_tcp_callout_open(s, WEFT_STR("c0"), NULL, &CBS, &cap_p[1], &cap_p[1].c);
    cap_rc[7] = weft_tcp_callout_open(s, WEFT_STR("c0"), NULL, &CBS, &cap_p[3], &c);
}

static void test_stream_cap(void **state) {
    (void)state;
    memset(cap_p, 0, sizeof(cap_p));
    start("filter_callouts: 2", TF_STOP, cap_req, NULL);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    const weft_result want[8] = {WEFT_OK, WEFT_OK, WEFT_ERR_LIMIT, WEFT_OK,
                                 WEFT_OK, WEFT_OK, WEFT_OK,        WEFT_ERR_LIMIT};
    for (int i = 0; i < 8; i++)
        assert_int_equal(cap_rc[i], want[i]);
    /* The refused one ends with on_close (connect failure): from inside
     * it the filter opens another callout, which the cap allows (the one
     * whose on_close runs is over). */
    sh_run_until(&H, closed, &cap_p[0], "on_close of the refused callout");
    assert_int_equal(cap_p[0].reason, WEFT_TCP_CLOSE_CONNECT_FAILURE);
    assert_int_equal(cap_p[0].reopen_rc, WEFT_OK);
    assert_non_null(cap_p[2].c);
    assert_int_equal(weft_tcp_callout_write(cap_p[2].c, "x", 1), WEFT_OK);
    /* The stream is at its cap again. */
    assert_int_equal(weft_tcp_callouts_of_stream(&d->s), 2);
    sh_ds_free(d);
}

/* ---------- another thread ---------- */

typedef struct thread_calls {
    weft_tcp_callout *c;
    weft_stream *s;
    weft_worker *w;
    weft_result write_rc, close_rc, open_rc, wopen_rc;
} thread_calls;

static void *from_other_thread(void *arg) {
    thread_calls *t = arg;
    weft_tcp_callout *c = NULL;
    probe p = {0};
    t->write_rc = weft_tcp_callout_write(t->c, "x", 1);
    t->close_rc = weft_tcp_callout_close(t->c, false);
    t->open_rc = weft_tcp_callout_open(t->s, WEFT_STR("c0"), NULL, &CBS, &p, &c);
    t->wopen_rc = weft_worker_tcp_callout_open(t->w, WEFT_STR("c0"), NULL, &CBS, &p, &c);
    return NULL;
}

static void keep_worker(tf_script *sc, weft_stream *s) {
    kept_w = weft_worker_current(sc);
    open_probe(sc, s);
}

static void test_wrong_thread(void **state) {
    (void)state;
    start("", TF_STOP, keep_worker, NULL);
    probe p = {0};
    sh_ds *d = stream_with_callout(&p);
    /* The worker runs on this thread from now on (as a started worker). */
    H.w->thread = pthread_self();
    atomic_store(&H.w->thread_started, true);
    thread_calls t = {.c = p.c, .s = kept_s, .w = kept_w};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, from_other_thread, &t), 0);
    pthread_join(th, NULL);
    assert_int_equal(t.write_rc, WEFT_ERR_THREAD);
    assert_int_equal(t.close_rc, WEFT_ERR_THREAD);
    assert_int_equal(t.open_rc, WEFT_ERR_THREAD);
    assert_int_equal(t.wopen_rc, WEFT_ERR_THREAD);
    /* The callout is untouched: its owner still uses it. */
    assert_int_equal(weft_tcp_callout_write(p.c, "AFTER\r\n", 7), WEFT_OK);
    sh_up_wait_for(&H, 0, "PING\r\nAFTER\r\n");
    assert_int_equal(weft_tcp_callout_close(p.c, false), WEFT_OK);
    atomic_store(&H.w->thread_started, false);
    sh_ds_free(d);
}

/* ---------- a worker-scoped callout outlives its stream ---------- */

static probe wp;

static void open_worker_probe(tf_script *sc, weft_stream *s) {
    (void)s;
    weft_worker *w = weft_worker_current(sc);
    assert_int_equal(weft_worker_tcp_callout_open(w, WEFT_STR("c0"), NULL, &CBS, &wp, &wp.c),
                     WEFT_OK);
    assert_int_equal(weft_tcp_callout_write(wp.c, "PING\r\n", 6), WEFT_OK);
}

static void test_worker_scope_outlives_stream(void **state) {
    (void)state;
    memset(&wp, 0, sizeof(wp));
    start("", TF_CONTINUE, open_worker_probe, NULL);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
    sh_ds_free(d);
    /* The stream is gone; the callout lives on. */
    sh_up_accept(&H, 0);
    sh_up_wait_for(&H, 0, "PING\r\n");
    sh_run_until(&H, connected, &wp, "on_connect");
    sh_up_send(&H, 0, "+PONG\r\n");
    sh_run_until(&H, got_data, &wp, "on_data");
    assert_string_equal(wp.got, "+PONG\r\n");
    assert_int_equal(weft_tcp_callout_write(wp.c, "QUIT\r\n", 6), WEFT_OK);
    sh_up_wait_for(&H, 0, "QUIT\r\n");
    sh_up_close(&H, 0);
    sh_run_until(&H, closed, &wp, "on_close");
    assert_int_equal(wp.reason, WEFT_TCP_CLOSE_PEER);
    assert_int_equal(wp.w_in_close, WEFT_ERR_STATE);
    assert_int_equal(weft_tcp_callout_write(wp.c, "x", 1), WEFT_ERR_HANDLE);
    assert_null(H.w->tcpcs);
}

/* ---------- connect attempts: the cluster's connect_attempts ---------- */

static probe ap;

static void open_refused(tf_script *sc, weft_stream *s) {
    (void)sc;
    ap.s = s;
    assert_int_equal(weft_tcp_callout_open(s, WEFT_STR("c1"), NULL, &CBS, &ap, &ap.c), WEFT_OK);
}

/* c1's one endpoint refuses: every attempt fails on it (the only one),
 * as many as the cluster's connect_attempts (options leave it 0). */
static void attempts_for(const char *more, uint64_t want) {
    memset(&ap, 0, sizeof(ap));
    start_more("", TF_STOP, open_refused, NULL, more);
    /* (counters of freed workers stay in the sums: count from here) */
    uint64_t before = sh_counter(&H, H.snap->clusters[1].cx_connect_fail);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_run_until(&H, closed, &ap, "on_close");
    assert_int_equal(ap.reason, WEFT_TCP_CLOSE_CONNECT_FAILURE);
    assert_int_equal(sh_counter(&H, H.snap->clusters[1].cx_connect_fail) - before, want);
    sh_ds_free(d);
}

static void test_connect_attempts_of_cluster(void **state) {
    attempts_for("", 2); /* the cluster's default */
    sh_teardown(state);
    attempts_for("    connect_attempts: 4\n", 4);
}

#define T(test) cmocka_unit_test_prestate_setup_teardown(test, NULL, sh_teardown, &H)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_bad_arguments_and_handles),
        T(test_stale_after_on_close),
        T(test_stream_end_makes_it_stale),
        T(test_stream_cap),
        T(test_wrong_thread),
        T(test_worker_scope_outlives_stream),
        T(test_connect_attempts_of_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
