/* h2_downstream.c: HTTP/2 server sessions on nghttp2 (see h2_downstream.h).
 *
 * Lifetimes: an h2s (one HTTP/2 stream) embeds its weft_stream. It is freed
 * when both sides are over: weft finished the exchange (done(), handled on
 * the reap event, outside any callback chain) and nghttp2 closed the
 * stream (on_stream_close). Response body waits in h2s->out until nghttp2
 * pulls it through the data provider, within the peer's flow-control
 * window; request body is acknowledged (WINDOW_UPDATE) only once the
 * upstream side took it, so a slow upstream slows the client down. */
#include "http/h2/h2_downstream.h"

#include "http/h1/h1_codec.h"
#include "http/h2/h2_mem.h"
#include "http/h2/h2_nv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#define H2_CONN_WINDOW (16 * 1024 * 1024)
#define FLOOD_WINDOW_MS 1000
#define FLOOD_PINGS 200
#define FLOOD_SETTINGS 100
#define FLOOD_EMPTY_DATA 200
/* Drain: the final GOAWAY follows the shutdown notice once the client
 * answered the PING sent with it (one round trip: every stream it opened
 * before reading the notice has arrived), or after this long without the
 * answer. */
#define DRAIN_PING_WAIT_MS 1000
static const uint8_t drain_ping_data[8] = {'w', 'e', 'f', 't', 'd', 'r', 'a', 'n'};
/* Stream ids remembered as reset by weft (RST_STREAM sent), counted back
 * from the highest id the client opened: a HEADERS frame on one of them is
 * a trailer that crossed the reset and is ignored; on any other stream
 * that is not open it opens a stream below one already opened (RFC 9113
 * 5.1.1): a connection error. */
#define RST_WINDOW 256

typedef struct h2s h2s;

#define H2S_REFS 24
/* Response body bytes kept in the stream object itself: a small body
 * (the usual API answer) costs no evbuffer_add and evbuffer_remove. */
#define H2S_INLINE 256

struct h2s {
    weft_stream s;
    weft_h2_session *h;
    int32_t id;
    weft_req_head req;
    weft_hdrs *trailers_in;
    struct evbuffer *out; /* response body not yet framed */
    nghttp2_nv *trailers; /* response trailers, copied at send_end */
    size_t n_trailers;
    char cookie_sep_done;
    char status[4];
    size_t hdr_bytes;
    size_t unconsumed; /* request body bytes not acknowledged yet */
    bool begun;        /* weft_stream_begin ran */
    bool head_done;
    bool too_large;
    bool provider; /* response submitted with a data provider */
    bool out_end;
    bool deferred;
    bool read_paused;
    bool want_writable;
    bool ng_closed;
    bool weft_done;
    bool reaped; /* weft_stream_end ran */
    uint8_t n_refs;
    uint16_t inl_off, inl_len; /* inl[inl_off..inl_len): body before `out` */
    h2s *prev, *next;          /* all streams of the session */
    h2s *reap_next;
    /* Request header names and values are nghttp2's own buffers, held by
     * reference until the stream ends (after its log phase): no copy into
     * the arena. Past H2S_REFS (a large head) fields are copied. From
     * here on, st_alloc does not clear the members. */
    nghttp2_rcbuf *refs[H2S_REFS];
    char inl[H2S_INLINE];
};

struct weft_h2_session {
    nghttp2_session *ng;
    weft_h2_session_host host;
    uint32_t max_header_list;
    uint32_t hw; /* output high watermark */
    h2s *streams;
    h2s *hdr_st;    /* the stream whose header block is being received */
    int32_t hdr_id; /* its id (0: none) */
    h2s *reap;
    size_t active;
    struct event ev_flush;
    struct event ev_reap;
    uint64_t flood_window_start;
    uint32_t pings, settings, empty_data;
    int32_t max_client_id;                /* highest stream id the client opened */
    uint64_t rst_window[RST_WINDOW / 64]; /* bit k: max_client_id - 2k was reset by weft */
    int32_t final_last_id;                /* last stream id of the final GOAWAY */
    uint32_t heads_queued;                /* response HEADERS submitted, not yet packed */
    struct event ev_drain;                /* drain: no PING answer in time */
    enum { DRAIN_NONE, DRAIN_NOTICE, DRAIN_FINAL } drain;
    bool dead;
    bool flush_queued; /* ev_flush is active (one event_active per loop turn) */
    bool reap_queued;  /* ev_reap is active */
    bool finished_told;
    bool freeing; /* session_free runs: no more scheduling */
};

static void schedule_flush(weft_h2_session *h) {
    if (!h->freeing && !h->flush_queued) {
        h->flush_queued = true;
        event_active(&h->ev_flush, EV_TIMEOUT, 0);
    }
}

bool weft_h2_is_preface_prefix(const char *p, size_t len) {
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t n = len < WEFT_H2_PREFACE_LEN ? len : WEFT_H2_PREFACE_LEN;
    return memcmp(p, preface, n) == 0;
}

/* ---------- weft_downstream_ops ---------- */

static h2s *st_of(weft_stream *s) {
    return (h2s *)s->ds;
}

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud);

static void op_send_head(weft_stream *s, weft_resp_head *h, bool end_stream) {
    h2s *st = st_of(s);
    weft_h2_session *hs = st->h;
    size_t cap = (size_t)h->headers.n + 1;
    nghttp2_nv *nva = weft_arena_alloc(&s->arena, cap * sizeof(*nva));
    if (!nva) {
        nghttp2_submit_rst_stream(hs->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        schedule_flush(hs);
        return;
    }
    unsigned code = h->status % 1000u; /* "%03u" without snprintf: ~700 instructions */
    st->status[0] = (char)('0' + code / 100);
    st->status[1] = (char)('0' + code / 10 % 10);
    st->status[2] = (char)('0' + code % 10);
    st->status[3] = '\0';
    /* Not copied by nghttp2 (names are lower-case in a weft_hdrs): every
     * string here lives until weft_stream_end (the stream's arena, its
     * config snapshot, its request's buffers, st->status) and on_reap packs
     * queued response HEADERS before it calls weft_stream_end. */
    const uint8_t nc = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    size_t n = 0;
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st->status, 7, 3, nc};
    for (uint32_t i = 0; i < h->headers.n; i++) {
        const weft_hdr *x = &h->headers.v[i];
        if (weft_h2_connection_specific(x->name, false))
            continue;
        if (weft_sv_eq(x->name, WEFT_SV_LIT("te")) && !weft_sv_ieq_cstr(x->value, "trailers"))
            continue;
        nva[n++] = (nghttp2_nv){(uint8_t *)x->name.p, (uint8_t *)x->value.p, x->name.len,
                                x->value.len, nc};
    }
    int rv;
    if (end_stream || s->head_request) {
        rv = nghttp2_submit_response(hs->ng, st->id, nva, n, NULL);
        st->out_end = true;
    } else {
        nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read};
        st->provider = true;
        rv = nghttp2_submit_response(hs->ng, st->id, nva, n, &prd);
    }
    if (rv != 0)
        nghttp2_submit_rst_stream(hs->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    else
        hs->heads_queued++;
    schedule_flush(hs);
}

static void op_send_continue(weft_stream *s) {
    (void)s; /* HTTP/2 clients do not wait for 100 */
}

static void kick(h2s *st) {
    if (st->deferred && !st->ng_closed) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h->ng, st->id);
    }
    schedule_flush(st->h);
}

static size_t inl_have(const h2s *st) {
    return (size_t)(st->inl_len - st->inl_off);
}

static void op_send_body(weft_stream *s, const char *p, size_t n) {
    h2s *st = st_of(s);
    if (!n || !st->provider)
        return;
    if (n <= (size_t)(H2S_INLINE - st->inl_len) && evbuffer_get_length(st->out) == 0) {
        memcpy(st->inl + st->inl_len, p, n); /* nothing queued after it yet */
        st->inl_len = (uint16_t)(st->inl_len + n);
    } else {
        evbuffer_add(st->out, p, n);
    }
    kick(st);
}

static void op_send_body_buf(weft_stream *s, struct evbuffer *buf) {
    h2s *st = st_of(s);
    if (!st->provider) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        return;
    }
    evbuffer_add_buffer(st->out, buf);
    kick(st);
}

static void op_send_end(weft_stream *s, weft_hdrs *trailers) {
    h2s *st = st_of(s);
    if (!st->provider || st->out_end)
        return;
    st->out_end = true;
    /* Copied now: the stream's arena may be gone when nghttp2 reaches the
     * end of the body and sends them. */
    st->trailers = weft_h2_nv_block(trailers, &st->n_trailers);
    kick(st);
}

static size_t op_pending_out(weft_stream *s) {
    return inl_have(st_of(s)) + evbuffer_get_length(st_of(s)->out);
}

static void op_pause_read(weft_stream *s) {
    st_of(s)->read_paused = true;
}

static void op_resume_read(weft_stream *s) {
    h2s *st = st_of(s);
    st->read_paused = false;
    if (st->unconsumed && !st->ng_closed) {
        nghttp2_session_consume(st->h->ng, st->id, st->unconsumed);
        st->unconsumed = 0;
    }
    schedule_flush(st->h);
}

static void op_done(weft_stream *s) {
    h2s *st = st_of(s);
    if (st->weft_done)
        return;
    st->weft_done = true;
    st->h->active--;
    if (st->h->freeing)
        return; /* session_free frees every stream itself */
    st->reap_next = st->h->reap;
    st->h->reap = st;
    if (!st->h->reap_queued) {
        st->h->reap_queued = true;
        event_active(&st->h->ev_reap, EV_TIMEOUT, 0);
    }
}

static void op_reset(weft_stream *s) {
    h2s *st = st_of(s);
    if (!st->ng_closed)
        nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    schedule_flush(st->h);
}

static const weft_conn_facts *op_facts(weft_stream *s) {
    return st_of(s)->h->host.facts(st_of(s)->h->host.ctx);
}

static const weft_downstream_ops h2_ops = {
    .send_head = op_send_head,
    .send_continue = op_send_continue,
    .send_body = op_send_body,
    .send_body_buf = op_send_body_buf,
    .send_end = op_send_end,
    .pending_out = op_pending_out,
    .pause_read = op_pause_read,
    .resume_read = op_resume_read,
    .done = op_done,
    .reset = op_reset,
    .facts = op_facts,
};

/* ---------- stream objects ---------- */

/* Stream objects are recycled per worker: a multiplexed client makes one
 * per request, and building one (weft_stream_init: buffers, timers) costs
 * more than the request itself. At most H2S_CACHE wait for reuse. */
#define H2S_CACHE 256

static h2s *st_alloc(weft_h2_session *h) {
    weft_worker *w = h->host.w;
    h2s *st = w->h2s_cache;
    if (st) {
        w->h2s_cache = st->next;
        w->h2s_cached--;
        struct evbuffer *out = st->out;
        size_t left = evbuffer_get_length(out);
        if (left) /* a reset stream may have left some */
            evbuffer_drain(out, left);
        memset((char *)st + offsetof(h2s, h), 0, offsetof(h2s, refs) - offsetof(h2s, h));
        st->out = out;
        return st;
    }
    st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    if (!(st->out = evbuffer_new())) {
        free(st);
        return NULL;
    }
    weft_stream_init(&st->s, w, &h2_ops, st);
    return st;
}

/* After weft_stream_end: nothing reads the request head any more. */
static void st_release_refs(h2s *st) {
    for (uint8_t i = 0; i < st->n_refs; i++)
        nghttp2_rcbuf_decref(st->refs[i]);
    st->n_refs = 0;
}

static void st_free(h2s *st) {
    weft_h2_session *h = st->h;
    weft_worker *w = h->host.w;
    if (h->hdr_st == st)
        h->hdr_id = 0;
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    weft_stream_end(&st->s);
    st_release_refs(st);
    free(st->trailers);
    st->trailers = NULL;
    if (w->h2s_cached < H2S_CACHE && !h->freeing) {
        st->next = w->h2s_cache;
        w->h2s_cache = st;
        w->h2s_cached++;
        return;
    }
    weft_stream_destroy(&st->s);
    evbuffer_free(st->out);
    free(st);
}

void weft_h2_cache_free(weft_worker *w) {
    while (w->h2s_cache) {
        h2s *st = w->h2s_cache;
        w->h2s_cache = st->next;
        weft_stream_destroy(&st->s);
        evbuffer_free(st->out);
        free(st);
    }
    w->h2s_cached = 0;
}

static void pack_frames(weft_h2_session *h, bool heads);

/* Ends the weft side (outside callbacks) and frees streams nghttp2 is done
 * with too. */
static void on_reap(evutil_socket_t fd, short what, void *arg) {
    weft_h2_session *h = arg;
    h->reap_queued = false;
    while (h->reap) {
        h2s *st = h->reap;
        h->reap = st->reap_next;
        if (h->heads_queued)
            pack_frames(h, true); /* the HEADERS point into the stream's memory */
        if (!st->reaped) {
            st->reaped = true;
            weft_stream_end(&st->s);
            st_release_refs(st);
        }
        if (st->ng_closed)
            st_free(st);
    }
    schedule_flush(h);
}

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
    h2s *st = src->ptr;
    size_t in = inl_have(st), queued = evbuffer_get_length(st->out);
    if (!in && !queued && !st->out_end) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = in < len ? in : len;
    if (n) {
        memcpy(buf, st->inl + st->inl_off, n);
        st->inl_off = (uint16_t)(st->inl_off + n);
        if (st->inl_off == st->inl_len)
            st->inl_off = st->inl_len = 0;
    }
    if (n < len && queued) {
        int r = evbuffer_remove(st->out, buf + n, len - n);
        if (r < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        n += (size_t)r;
        queued -= (size_t)r;
    }
    if (st->out_end && !inl_have(st) && !queued) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->trailers && st->n_trailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            nghttp2_submit_trailer(ng, id, st->trailers, st->n_trailers);
        }
    }
    if (n > 0 && !st->reaped && st->s.active)
        st->want_writable = true; /* the stream may resume its upstream */
    return (ssize_t)n;
}

/* ---------- stream ids (RFC 9113 5.1.1) ---------- */

/* Moves the reset window so that bit 0 stands for stream `id` (higher
 * than every id seen so far). */
static void rst_window_advance(weft_h2_session *h, int32_t id) {
    uint32_t n = h->max_client_id ? (uint32_t)(id - h->max_client_id) / 2 : RST_WINDOW;
    h->max_client_id = id;
    if (n >= RST_WINDOW) {
        memset(h->rst_window, 0, sizeof(h->rst_window));
        return;
    }
    uint32_t words = n / 64, bits = n % 64;
    for (int i = RST_WINDOW / 64 - 1; i >= 0; i--) {
        int src = i - (int)words;
        uint64_t v = 0;
        if (src >= 0) {
            v = h->rst_window[src] << bits;
            if (bits && src >= 1)
                v |= h->rst_window[src - 1] >> (64 - bits);
        }
        h->rst_window[i] = v;
    }
}

static bool rst_window_slot(const weft_h2_session *h, int32_t id, uint32_t *k) {
    if (id > h->max_client_id || !(id & 1))
        return false;
    *k = (uint32_t)(h->max_client_id - id) / 2;
    return *k < RST_WINDOW;
}

static void drain_ping(weft_h2_session *h);

/* A response HEADERS frame is packed (its strings are read then) or
 * dropped (its stream closed): either way nghttp2 is done with them. */
static void head_gone(weft_h2_session *h, const nghttp2_frame *f) {
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE && h->heads_queued)
        h->heads_queued--;
}

static int cb_frame_not_send(nghttp2_session *ng, const nghttp2_frame *f, int error, void *ud) {
    head_gone(ud, f);
    (void)ng;
    (void)error;
    return 0;
}

static int cb_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    weft_h2_session *h = ud;
    uint32_t k;
    head_gone(h, f);
    if (f->hd.type == NGHTTP2_RST_STREAM && rst_window_slot(h, f->hd.stream_id, &k))
        h->rst_window[k / 64] |= 1ull << (k % 64);
    else if (f->hd.type == NGHTTP2_GOAWAY && h->drain == DRAIN_NOTICE &&
             f->goaway.last_stream_id == INT32_MAX)
        drain_ping(h);
    (void)ng;
    return 0;
}

/* A HEADERS frame from the client: a new stream must have an id above
 * every stream it opened before. nghttp2 silently ignores one below
 * (unless that stream is half-closed), so the check is made here. */
static int cb_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud) {
    weft_h2_session *h = ud;
    if (hd->type != NGHTTP2_HEADERS || !(hd->stream_id & 1))
        return 0; /* even ids from a client: nghttp2's own PROTOCOL_ERROR */
    if (hd->stream_id > h->max_client_id) {
        rst_window_advance(h, hd->stream_id);
        return 0;
    }
    if (nghttp2_session_get_stream_user_data(ng, hd->stream_id))
        return 0; /* an open stream: trailers (or nghttp2's STREAM_CLOSED) */
    uint32_t k;
    if (rst_window_slot(h, hd->stream_id, &k) && (h->rst_window[k / 64] >> (k % 64)) & 1)
        return 0; /* sent before our RST_STREAM reached the client: ignored */
    WEFT_DEBUG("http2: HEADERS on stream %d from %s, below stream %d: PROTOCOL_ERROR",
               hd->stream_id, h->host.peer_ip, h->max_client_id);
    nghttp2_session_terminate_session(ng, NGHTTP2_PROTOCOL_ERROR);
    return 0;
}

/* ---------- drain ---------- */

/* Second step of the drain: the GOAWAY with the real last stream id;
 * streams up to it finish, later ones are refused. */
static void drain_final(weft_h2_session *h) {
    if (h->drain != DRAIN_NOTICE)
        return;
    h->drain = DRAIN_FINAL;
    event_del(&h->ev_drain);
    h->final_last_id = nghttp2_session_get_last_proc_stream_id(h->ng);
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, h->final_last_id, NGHTTP2_NO_ERROR, NULL, 0);
    schedule_flush(h);
}

static void on_drain_timer(evutil_socket_t fd, short what, void *arg) {
    drain_final(arg);
}

/* The shutdown notice is out: a PING after it (nghttp2 would send a PING
 * submitted with it first), whose answer proves the notice was read. */
static void drain_ping(weft_h2_session *h) {
    if (nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, drain_ping_data) != 0) {
        drain_final(h);
        return;
    }
    struct timeval tv = {DRAIN_PING_WAIT_MS / 1000, (DRAIN_PING_WAIT_MS % 1000) * 1000};
    event_add(&h->ev_drain, &tv);
}

/* ---------- nghttp2 callbacks ---------- */

static int cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    weft_h2_session *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    /* After the final GOAWAY nghttp2 ignores streams above its last stream
     * id; one that arrived before it was sent but after its id was chosen
     * is refused here, as the GOAWAY told the client. */
    bool refuse = h->drain == DRAIN_FINAL && f->hd.stream_id > h->final_last_id;
    weft_listener_snap *lst = refuse ? NULL : h->host.listener(h->host.ctx);
    if (!lst) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    h2s *st = st_alloc(h);
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->h = h;
    st->id = f->hd.stream_id;
    st->s.peer_ip = h->host.peer_ip;
    const weft_conn_facts *facts = h->host.facts(h->host.ctx);
    st->s.tls = facts && facts->tls;
    st->s.h2 = true;
    weft_stream_begin(&st->s, lst, h->host.w->cur);
    st->begun = true;
    weft_req_head *r = &st->req;
    weft_hdrs_init(&r->headers, &st->s.arena);
    r->content_length = -1;
    r->http_minor = 1;
    r->keep_alive = true;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->active++;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    h->hdr_st = st; /* its header fields come next, in one block */
    h->hdr_id = st->id;
    return 0;
}

static weft_sv arena_copy(weft_arena *a, const uint8_t *p, size_t n) {
    char *c = weft_arena_strndup(a, (const char *)p, n);
    return (weft_sv){c ? c : "", c ? n : 0};
}

/* A view of a received name or value valid until the stream ends: a
 * reference on nghttp2's buffer (NUL-terminated; static-table strings
 * need none), or a copy in the arena once the stream holds H2S_REFS. */
static weft_sv keep(h2s *st, nghttp2_rcbuf *rb, nghttp2_vec v) {
    if (!nghttp2_rcbuf_is_static(rb)) {
        if (st->n_refs == H2S_REFS)
            return arena_copy(&st->s.arena, v.base, v.len);
        nghttp2_rcbuf_incref(rb);
        st->refs[st->n_refs++] = rb;
    }
    return (weft_sv){(const char *)v.base, v.len};
}

/* The stream a header field belongs to: the one cb_begin_headers saw last
 * (a header block is never interleaved with another stream's), else
 * nghttp2's lookup. */
static h2s *hdr_stream(weft_h2_session *h, nghttp2_session *ng, int32_t id) {
    if (id == h->hdr_id)
        return h->hdr_st;
    return nghttp2_session_get_stream_user_data(ng, id);
}

/* Names arrive lower-case: nghttp2's HTTP messaging checks refuse a name
 * with an upper-case letter (and every other malformed field) before this
 * callback, so the fields are added as they are. */
static int cb_header(nghttp2_session *ng, const nghttp2_frame *f, nghttp2_rcbuf *name_rb,
                     nghttp2_rcbuf *value_rb, uint8_t flags, void *ud) {
    weft_h2_session *h = ud;
    h2s *st = hdr_stream(h, ng, f->hd.stream_id);
    if (!st || !st->s.active || st->reaped)
        return 0;
    nghttp2_vec nv = nghttp2_rcbuf_get_buf(name_rb), vv = nghttp2_rcbuf_get_buf(value_rb);
    st->hdr_bytes += nv.len + vv.len + 32; /* RFC 9113 6.5.2 accounting */
    if (st->hdr_bytes > h->max_header_list) {
        st->too_large = true;
        return 0;
    }
    const char *np = (const char *)nv.base;
    weft_hdrs *list;
    if (f->headers.cat == NGHTTP2_HCAT_HEADERS) {
        if (!st->trailers_in) {
            st->trailers_in = weft_arena_alloc(&st->s.arena, sizeof(weft_hdrs));
            if (!st->trailers_in)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            weft_hdrs_init(st->trailers_in, &st->s.arena);
        }
        list = st->trailers_in;
    } else {
        weft_req_head *r = &st->req;
        list = &r->headers;
        if (nv.len && np[0] == ':') {
            /* nghttp2 let through only :method, :scheme, :authority, :path
             * and :protocol, each once: the length and a letter tell them. */
            if (nv.len == 7 && np[1] == 'm')
                r->method = keep(st, value_rb, vv);
            else if (nv.len == 5)
                r->target = keep(st, value_rb, vv);
            else if (nv.len == 10)
                r->authority = keep(st, value_rb, vv);
            return 0; /* :scheme, :protocol: nothing to keep */
        }
        const weft_sv *old;
        if (nv.len == 6 && memcmp(np, "cookie", 6) == 0 &&
            (old = weft_hdrs_get(&r->headers, WEFT_SV_LIT("cookie")))) {
            /* HTTP/2 splits cookies (RFC 9113 8.2.3); HTTP/1.1 upstreams
             * want one header: join with "; ". */
            size_t len = old->len + 2 + vv.len;
            char *c = weft_arena_alloc(&st->s.arena, len + 1);
            if (!c)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            memcpy(c, old->p, old->len);
            memcpy(c + old->len, "; ", 2);
            memcpy(c + old->len + 2, vv.base, vv.len);
            c[len] = '\0';
            weft_hdrs_remove(&r->headers, WEFT_SV_LIT("cookie"));
            if (weft_hdrs_add_ref(&r->headers, WEFT_SV_LIT("cookie"), (weft_sv){c, len}) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            return 0;
        }
    }
    weft_sv name = keep(st, name_rb, nv), value = keep(st, value_rb, vv);
    if (weft_hdrs_add_ref(list, name, value) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    (void)flags;
    return 0;
}

static int method_id(weft_sv m) {
    static const struct {
        weft_sv name;
        int id;
    } ids[] = {
        {WEFT_SV_LIT("GET"), HTTP_GET},         {WEFT_SV_LIT("HEAD"), HTTP_HEAD},
        {WEFT_SV_LIT("POST"), HTTP_POST},       {WEFT_SV_LIT("PUT"), HTTP_PUT},
        {WEFT_SV_LIT("DELETE"), HTTP_DELETE},   {WEFT_SV_LIT("CONNECT"), HTTP_CONNECT},
        {WEFT_SV_LIT("OPTIONS"), HTTP_OPTIONS}, {WEFT_SV_LIT("TRACE"), HTTP_TRACE},
        {WEFT_SV_LIT("PATCH"), HTTP_PATCH},
    };
    for (size_t i = 0; i < WEFT_ARRAY_LEN(ids); i++)
        if (weft_sv_eq(m, ids[i].name))
            return ids[i].id;
    return HTTP_GET;
}

/* The request head is complete: what HTTP/1.1 would have parsed. */
static void deliver_head(h2s *st, bool end_stream) {
    weft_req_head *r = &st->req;
    st->head_done = true;
    if (st->too_large) {
        st->s.req = r;
        weft_stream_local_reply(&st->s, 431, "h2_header_list_too_large", WEFT_RF_DPE, NULL);
        st->s.req_done = true;
        weft_stream_on_req_end(&st->s, NULL);
        return;
    }
    r->method_id = method_id(r->method);
    const char *q = r->target.len ? memchr(r->target.p, '?', r->target.len) : NULL;
    r->path = (weft_sv){r->target.p, q ? (size_t)(q - r->target.p) : r->target.len};
    r->query =
        q ? (weft_sv){q + 1, r->target.len - (size_t)(q - r->target.p) - 1} : (weft_sv){"", 0};
    const weft_sv *host = weft_hdrs_get(&r->headers, WEFT_SV_LIT("host"));
    if (!r->authority.len && host)
        r->authority = *host;
    const weft_sv *cl = weft_hdrs_get(&r->headers, WEFT_SV_LIT("content-length"));
    if (end_stream) {
        r->framing = WEFT_BODY_NONE;
    } else if (cl) {
        r->framing = WEFT_BODY_LENGTH;
        r->content_length = strtoll(cl->p, NULL, 10); /* nghttp2 checked it is a number */
    } else {
        r->framing = WEFT_BODY_CHUNKED;
    }
    weft_stream_on_req_head(&st->s, r);
    if (end_stream && st->s.active && !st->s.req_done)
        weft_stream_on_req_end(&st->s, NULL);
}

static bool flood(weft_h2_session *h, uint32_t *counter, uint32_t limit) {
    uint64_t now = weft_now_ms();
    if (now - h->flood_window_start > FLOOD_WINDOW_MS) {
        h->flood_window_start = now;
        h->pings = h->settings = h->empty_data = 0;
    }
    if (++*counter <= limit)
        return false;
    WEFT_WARN("http2: %s from %s: too many control frames, closing", "flood", h->host.peer_ip);
    nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    return true;
}

static int cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
    weft_h2_session *h = ud;
    h->host.activity(h->host.ctx);
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (f->hd.type) {
    case NGHTTP2_PING:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            flood(h, &h->pings, FLOOD_PINGS);
        else if (memcmp(f->ping.opaque_data, drain_ping_data, sizeof(drain_ping_data)) == 0)
            drain_final(h); /* the client has read the shutdown notice */
        return 0;
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            flood(h, &h->settings, FLOOD_SETTINGS);
        return 0;
    case NGHTTP2_HEADERS: {
        h2s *st = hdr_stream(h, ng, f->hd.stream_id);
        if (!st || st->reaped)
            return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            deliver_head(st, end);
        } else if (end && st->s.active && !st->s.req_done) {
            weft_stream_on_req_end(&st->s, st->trailers_in);
        }
        return 0;
    }
    case NGHTTP2_DATA: {
        if (f->hd.length == 0 && !end && flood(h, &h->empty_data, FLOOD_EMPTY_DATA))
            return 0;
        h2s *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
        if (end && st && !st->reaped && st->s.active && !st->s.req_done)
            weft_stream_on_req_end(&st->s, NULL);
        return 0;
    }
    default:
        return 0;
    }
}

static int cb_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud) {
    weft_h2_session *h = ud;
    h2s *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st || st->reaped || !st->s.active || st->s.req_done) {
        nghttp2_session_consume(ng, id, len); /* nobody wants it: free the window */
        return 0;
    }
    weft_stream_on_req_body(&st->s, (const char *)data, len);
    if (st->read_paused)
        st->unconsumed += len; /* acknowledged when the upstream catches up */
    else
        nghttp2_session_consume(ng, id, len);
    (void)h;
    return 0;
}

static int cb_stream_close(nghttp2_session *ng, int32_t id, uint32_t error, void *ud) {
    weft_h2_session *h = ud;
    h2s *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    if (h->hdr_id == id)
        h->hdr_id = 0;
    st->ng_closed = true;
    if (!st->weft_done && st->s.active && !st->s.t_end_us)
        weft_stream_on_downstream_reset(&st->s, WEFT_RF_DC); /* finishes -> done */
    if (st->weft_done && st->reaped)
        st_free(st);
    else if (!st->weft_done) {
        /* Not finished by the reset (never began): nothing more will come. */
        op_done(&st->s);
    }
    (void)h;
    return 0;
}

/* ---------- session ---------- */

static void on_flush(evutil_socket_t fd, short what, void *arg) {
    weft_h2_session *h = arg;
    h->flush_queued = false;
    weft_h2_session_flush(h);
}

weft_h2_session *weft_h2_session_new(const weft_h2_session_host *host,
                                     const weft_cfg_listener *lc) {
    weft_h2_session *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->host = *host;
    h->max_header_list =
        lc->h2.max_header_list_size ? lc->h2.max_header_list_size : lc->limits.max_header_bytes;
    h->hw = lc->limits.buffer_high_watermark ? lc->limits.buffer_high_watermark : 1024 * 1024;
    event_assign(&h->ev_flush, host->w->base, -1, 0, on_flush, h);
    event_assign(&h->ev_reap, host->w->base, -1, 0, on_reap, h);
    event_assign(&h->ev_drain, host->w->base, -1, 0, on_drain_timer, h);
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(h);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, cb_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, cb_begin_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, cb_frame_not_send);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        free(h);
        return NULL;
    }
    /* Flow control follows the upstream's pace (consume() when it took the
     * bytes); defences: rapid reset (CVE-2023-44487), CONTINUATION flood,
     * SETTINGS with too many entries, unbounded outbound ACKs. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_stream_reset_rate_limit(opt, 200, 50);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_mem mem = weft_h2_mem_of(host->w);
    int rv = nghttp2_session_server_new3(&h->ng, cbs, h, opt, &mem);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0) {
        free(h);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         lc->h2.max_concurrent_streams ? lc->h2.max_concurrent_streams : 100},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
         lc->h2.initial_window_size ? lc->h2.initial_window_size : 1048576},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, lc->h2.max_frame_size ? lc->h2.max_frame_size : 16384},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h->max_header_list},
    };
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, WEFT_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
    h->flood_window_start = weft_now_ms();
    return h;
}

int weft_h2_session_recv(weft_h2_session *h, struct evbuffer *in) {
    if (h->dead)
        return -1;
    while (evbuffer_get_length(in)) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t rv = nghttp2_session_mem_recv(h->ng, v.iov_base, v.iov_len);
        if (rv < 0) {
            WEFT_DEBUG("http2: %s from %s", nghttp2_strerror((int)rv), h->host.peer_ip);
            if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) /* nghttp2 queues no GOAWAY for it */
                nghttp2_session_terminate_session(h->ng, NGHTTP2_PROTOCOL_ERROR);
            h->dead = true;
            evbuffer_drain(in, evbuffer_get_length(in));
            weft_h2_session_flush(h); /* the GOAWAY nghttp2 queued */
            return -1;
        }
        evbuffer_drain(in, (size_t)rv);
    }
    weft_h2_session_flush(h);
    return h->dead ? -1 : 0;
}

/* Frames are copied into space reserved in the output (FLUSH_SPACE bytes,
 * what a 1 KiB libevent chain holds, or a frame's size if larger) and
 * committed together: one buffer operation per few responses instead of
 * one evbuffer_add (and its callbacks) per frame. nghttp2's callbacks during mem_send (data_read,
 * frame sent, stream closed) never write to the host's output, so the reservation stays valid until
 * the commit. */
#define FLUSH_SPACE 960

/* Packs frames into the host's output while it holds less than the high
 * watermark, or (heads) until no response HEADERS is left queued, past
 * the watermark if need be: a stream's end must not leave nghttp2 holding
 * views of its memory (HEADERS are small and precede every DATA frame). */
static void pack_frames(weft_h2_session *h, bool heads) {
    struct evbuffer *out = h->host.out(h->host.ctx);
    bool moved = false;
    size_t queued = evbuffer_get_length(out);
    struct evbuffer_iovec v = {NULL, 0};
    size_t used = 0;
    while (queued + used < h->hw || (heads && h->heads_queued)) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->ng, &data);
        if (n <= 0) {
            if (n < 0)
                h->dead = true;
            break;
        }
        if (used + (size_t)n > v.iov_len) {
            if (used) {
                v.iov_len = used;
                evbuffer_commit_space(out, &v, 1);
                queued += used;
                used = 0;
            }
            size_t want = (size_t)n > FLUSH_SPACE ? (size_t)n : FLUSH_SPACE;
            if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1) {
                v.iov_len = 0;
                h->dead = true; /* out of memory */
                break;
            }
        }
        memcpy((char *)v.iov_base + used, data, (size_t)n);
        used += (size_t)n;
        moved = true;
    }
    if (used) {
        v.iov_len = used;
        evbuffer_commit_space(out, &v, 1);
    }
    if (moved)
        h->host.activity(h->host.ctx);
}

void weft_h2_session_flush(weft_h2_session *h) {
    pack_frames(h, false);
    /* Streams whose queued body shrank may read their upstream again. */
    for (h2s *st = h->streams; st; st = st->next)
        if (st->want_writable) {
            st->want_writable = false;
            if (!st->reaped && st->s.active)
                weft_stream_on_downstream_writable(&st->s);
        }
    if (!h->finished_told &&
        (h->dead || (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng)) ||
         (h->drain == DRAIN_FINAL && h->active == 0 && !nghttp2_session_want_write(h->ng)))) {
        h->finished_told = true;
        h->host.finished(h->host.ctx);
    }
}

void weft_h2_session_drain(weft_h2_session *h) {
    if (h->drain != DRAIN_NONE || h->dead)
        return;
    /* First step: GOAWAY with last stream id 2^31-1 (new streams still
     * welcome, the client stops opening them); once it is sent, a PING to
     * learn when the client has read it (drain_ping). */
    h->drain = DRAIN_NOTICE;
    if (nghttp2_submit_shutdown_notice(h->ng) != 0) {
        drain_final(h);
        return;
    }
    struct timeval tv = {DRAIN_PING_WAIT_MS / 1000, (DRAIN_PING_WAIT_MS % 1000) * 1000};
    event_add(&h->ev_drain, &tv); /* also bounds a notice that cannot be sent */
    schedule_flush(h);
}

size_t weft_h2_session_active(const weft_h2_session *h) {
    return h->active;
}

void weft_h2_session_free(weft_h2_session *h) {
    if (!h)
        return;
    h->freeing = true;
    /* The client is gone: every exchange still running ends now. */
    for (h2s *st = h->streams; st; st = st->next)
        if (st->begun && !st->weft_done && st->s.active && !st->s.t_end_us)
            weft_stream_on_downstream_reset(&st->s, WEFT_RF_DC);
    /* After the resets (which may have activated them), never before. */
    event_del(&h->ev_flush);
    event_del(&h->ev_reap);
    event_del(&h->ev_drain);
    h->reap = NULL;
    while (h->streams)
        st_free(h->streams);
    nghttp2_session_del(h->ng);
    free(h);
}
