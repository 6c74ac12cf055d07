/* stream_harness.h: the stream pipeline (stream, filter runner, host API)
 * driven from a cmocka test without threads or a real client.
 *
 * - A snapshot built from YAML and a detached worker (no thread, no
 *   listeners): the test turns its event_base (sh_turn, sh_run_until), so
 *   deferred work (stream_defer, the end of an exchange, filter timers)
 *   runs exactly when the test says.
 * - Filters compiled into the test binary: a scripted filter (tf_script)
 *   installed as the listener's HTTP chain, in list order, without .so
 *   files. Each hook appends "<name>.<hook>" to a shared call log.
 * - A fake downstream (sh_ds) implementing weft_downstream_ops that
 *   records what the stream sends it: head, body bytes, trailers, end,
 *   resets, done; its done() ends the exchange from a deferred event like
 *   the HTTP/1.1 codec.
 * - Fake upstreams (sh_up): listening sockets on 127.0.0.1 owned by the
 *   test. The stream's pool connects to them for real; the test accepts,
 *   reads what weft sent and plays the response bytes (or closes, or
 *   never accepts; a bound socket that does not listen refuses). */
#ifndef WEFT_TESTS_STREAM_HARNESS_H
#define WEFT_TESTS_STREAM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event_struct.h>

#include "http/stream.h"
#include "loop/worker.h"
#include "runtime/snapshot.h"
#include <weft/filter.h>

/* ---------- scripted test filter ---------- */

typedef enum tf_hook {
    TF_REQ_HEADERS,
    TF_REQ_BODY,
    TF_REQ_TRAILERS,
    TF_ATTEMPT,
    TF_RESP_HEADERS,
    TF_RESP_BODY,
    TF_RESP_TRAILERS,
    TF_COMPLETE,
    TF_HOOKS
} tf_hook;

typedef enum tf_action {
    TF_CONTINUE = 0,
    TF_STOP,        /* return WEFT_STOP (the test resumes, or nobody does) */
    TF_REPLY,       /* weft_reply_send(reply_status), return WEFT_REPLIED; attempt hook: reply */
    TF_STOP_RESUME, /* STOP, a timer (timer_ms) calls weft_stream_resume */
    TF_STOP_REPLY,  /* STOP, a timer sends the reply */
    TF_STOP_RETRY,  /* STOP, a timer calls weft_upstream_retry (and nothing else) */
    TF_RETRY,       /* weft_upstream_retry, then CONTINUE (attempt hook: just retry) */
    TF_STOP_TO_END, /* body: STOP until end_stream, then CONTINUE */
    TF_BAD_STATUS,  /* return a value that is not a weft_status */
} tf_action;

typedef struct tf_script {
    const char *name;
    tf_action act[TF_HOOKS];
    int times[TF_HOOKS]; /* the action applies to the first `times` calls (0: every call) */
    int reply_status;    /* for the reply actions (default 403) */
    uint64_t timer_ms;   /* for the timer actions */
    size_t replay_max;   /* >0: weft_body_buffer_for_replay on request headers */
    /* When set: called in every hook of this filter, after the call log
     * line and before the action (tests that exercise host calls). */
    void (*custom)(struct tf_script *sc, weft_stream *s, tf_hook hook);
    void *custom_arg;
    /* ABI 1.1 on_upstream_request: when set, called with the attempt
     * number (the chain then has the hook; no call log line). */
    void (*up_request)(struct tf_script *sc, weft_stream *s, uint32_t attempt);
    /* observed */
    int calls[TF_HOOKS];
    int creates, destroys, timer_fires;
    int last_rc; /* result of the last host call a timer made */
    weft_attempt_info attempts[8];
    char attempt_hosts[8][80];
    int n_attempts;
    weft_stream_info info; /* from on_stream_complete */
    char info_host[80];
    char info_flags[64];
} tf_script;

/* The shared call log ("f1.req_headers f2.req_headers ..."). */
const char *tf_log(void);
void tf_log_clear(void);
void tf_log_add(const char *fmt, ...);

/* ---------- harness ---------- */

#define SH_MAX_UP 4

typedef struct sh_up {
    int lfd; /* listening (or only bound, for a refused connect) */
    uint16_t port;
    int cfd;              /* the accepted connection, -1 none */
    struct evbuffer *got; /* bytes received on cfd */
    int accepted;         /* connections accepted so far */
    int old[16];          /* earlier accepted connections, kept open */
} sh_up;

typedef struct sh {
    weft_worker *w;
    weft_snapshot *snap;
    sh_up up[SH_MAX_UP];
    size_t n_up;
} sh;

/* A fake upstream. listening=false: bound but not listening, so a connect
 * to it is refused. Returns its index; the port is h->up[i].port. */
int sh_up_new(sh *h, bool listening);
/* Builds the snapshot from yaml (printf format: the caller passes the
 * ports), installs the scripted filters as listener 0's HTTP chain, and
 * creates the detached worker. */
void sh_start(sh *h, tf_script **filters, size_t n_filters, const char *yaml_fmt, ...);
void sh_free(sh *h);
/* A cmocka teardown whose state is the test's sh (given as the prestate:
 * cmocka_unit_test_prestate_setup_teardown(test, NULL, sh_teardown, &h)):
 * sh_free, then zeroes it for the next test. */
int sh_teardown(void **state);

/* One non-blocking turn of the worker's loop. */
void sh_turn(sh *h);
/* Turns the loop until pred(arg) is true (fails the test after ~5 s). */
void sh_run_until(sh *h, bool (*pred)(void *), void *arg, const char *what);
/* Turns the loop for about ms milliseconds. */
void sh_run_for(sh *h, int ms);

/* Upstream i: accepts a connection (running the loop until one comes);
 * the previous one stays open (weft decides when it closes). */
void sh_up_accept(sh *h, int i);
/* Reads from upstream i until `needle` was received (loop runs). */
void sh_up_wait_for(sh *h, int i, const char *needle);
void sh_up_send(sh *h, int i, const char *bytes);
void sh_up_close(sh *h, int i); /* close the accepted connection */
/* Bytes received so far, NUL-terminated (static buffer). */
const char *sh_up_got(sh *h, int i);
/* The cluster's current lb on this worker (refreshing the hostset). */
weft_lb *sh_lb(sh *h, int cluster);
/* Replaces the cluster's endpoints (IP literals on 127.0.0.1, ports). */
void sh_publish(sh *h, int cluster, const uint16_t *ports, size_t n);
uint64_t sh_counter(sh *h, weft_stat_id id);

/* ---------- fake upstream (weft_upstream_test_ops) ---------- */

/* With sh_fake_enable, every stream's upstream attempt is a fake (no
 * socket): the endpoint is still picked by the cluster's lb and the
 * attempt counted on it, but what the stream sends is recorded and the
 * test plays the upstream's side: connect, head, body, trailers,
 * complete, or an error. Attempts are numbered from 0 in start order. */
#define SH_MAX_FAKE 16

typedef struct sh_fake {
    weft_stream *s; /* attached stream, NULL once released */
    char ep[80];    /* endpoint name the lb picked */
    bool connected;
    struct evbuffer *req; /* request bytes sent (head included, HTTP/1.1 form) */
    bool req_end;         /* send_end came */
    bool released, reusable;
    int pauses, resumes;
    bool paused;
    int last_rc; /* result of the last weft_stream_on_up_* that returns one */
} sh_fake;

/* refuse_start: start() fails immediately (socket error). */
void sh_fake_enable(sh *h);
extern bool sh_fake_refuse_start;
int sh_fake_count(void);
/* Request bytes attempt k received, NUL-terminated (static buffer). */
const char *sh_fake_req(int k);
sh_fake *sh_fake_get(int k);
void sh_fake_connect(int k); /* on_up_connected */
/* The response head: status and "name: value" header lines (NULL-ended),
 * framing chunked unless a content-length is among them (or bodyless). */
void sh_fake_head(int k, int status, const char *const *headers);
void sh_fake_body(int k, const char *p);
void sh_fake_trailers(int k, const char *name, const char *value);
void sh_fake_complete(int k);
void sh_fake_error(int k, weft_up_err err);

/* ---------- fake downstream ---------- */

typedef struct sh_ds {
    weft_stream s;
    sh *h;
    struct event ev_done;
    /* recorded */
    int heads, continues, ends, resets, dones, ended, pauses, resumes;
    uint16_t status;
    bool head_end_stream;
    struct evbuffer *resp_headers; /* "name: value\n" lines of the head sent */
    struct evbuffer *body;
    struct evbuffer *trailers; /* "name: value\n" of send_end's trailers */
    bool trailers_sent;
    size_t pending_out; /* what pending_out() reports */
    /* When done() came (the exchange is over for the codec): was the
     * upstream attempt still live, and what did its lb have in flight. */
    bool att_live_at_done;
    uint32_t lb_active_at_done;
    bool in_done_handler;
} sh_ds;

sh_ds *sh_ds_new(sh *h);
void sh_ds_free(sh_ds *d); /* aborts the exchange (client gone) if still running */

/* Begins an exchange and returns its request head (in the stream arena;
 * the test may add headers) without handing it to the stream yet. */
weft_req_head *sh_req(sh_ds *d, const char *method, const char *target);
void sh_req_header(sh_ds *d, const char *name, const char *value);
/* Hands the head to the stream. content_length < 0: no body (the request
 * then also ends); otherwise content-length framing. */
void sh_req_head(sh_ds *d, int64_t content_length);
void sh_req_body(sh_ds *d, const char *p);
void sh_req_end(sh_ds *d);
/* sh_req + sh_req_head + (body + end). body NULL: no body. */
void sh_request(sh_ds *d, const char *method, const char *target, const char *body);
/* The client goes away mid-exchange. */
void sh_ds_client_reset(sh_ds *d);

/* Recorded response as text. */
const char *sh_ds_body(sh_ds *d);
const char *sh_ds_headers(sh_ds *d);
const char *sh_ds_trailers(sh_ds *d);
/* True once the exchange ended (done() ran its deferred handler). */
bool sh_ds_ended(void *d);
/* Turns until downstream exchange d has ended. */
void sh_run_to_end(sh *h, sh_ds *d);
/* Every filter context made for the exchange was destroyed once, after
 * its log phase (on_stream_complete) ran. */
void sh_assert_filters_released(tf_script **f, size_t n);

#endif
