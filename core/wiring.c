/* wiring.c: the modules a worker runs (loop/worker.h), listed at the top
 * of the layers so that the loop names none of them: each kind of
 * listener with its connections, filter HTTP callouts, the upstream pools,
 * filter TCP callouts,
 * stream handles and the filters' worker contexts. The table's order is the order of every hook:
 * downstream connections end before the upstream pools they used are
 * freed, and the stream handle table goes last. */
#include "loop/worker.h"

#include "common/smallpool.h"
#include "filter/callout.h"
#include "filter/fworker.h"
#include "filter/handles.h"
#include "filter/tcp_callout.h"
#include "http/h1/h1_downstream.h"
#include "http/h2/h2_downstream.h"
#include "http/h2/h2_mem.h"
#include "net/tcp_proxy.h"
#include "upstream/h2_pool.h"
#include "upstream/pool.h"

/* recycled HTTP/2 stream objects, nghttp2 blocks, HTTP/1.1 request states
 * and the thread's spare buffer chains and arena blocks */
static void http_caches_free(weft_worker *w) {
    weft_h2_cache_free(w);
    weft_h2_mem_release(w);
    weft_h1_cache_free(w);
    weft_smallpool_chains_release();
    weft_arena_spares_release();
}

static void http_fini(weft_worker *w) {
    weft_dconn_free_all(w);
    http_caches_free(w);
}

/* HTTP/1.1 and HTTP/2 downstream connections (h1_downstream.c sniffs the
 * HTTP/2 preface) */
static const weft_worker_module http_module = {
    .name = "http",
    .listener_kind = WEFT_LISTENER_HTTP,
    .accept = weft_dconn_accept,
    .drain = weft_dconn_drain_all,
    .cut = weft_dconn_free_all,
    .idle = http_caches_free,
    .fini = http_fini,
    /* after every module's fini: the upstream HTTP/2 connections (freed by
     * their module's fini) give their nghttp2 blocks back too */
    .fini_late = weft_h2_mem_release,
};

static const weft_worker_module tcp_proxy_module = {
    .name = "tcp_proxy",
    .listener_kind = WEFT_LISTENER_TCP,
    .close_on_drain = true,
    .accept = weft_tcp_proxy_accept,
    .cut = weft_tcp_proxy_free_all,
    .fini = weft_tcp_proxy_free_all,
};

static const weft_worker_module h1_pool_module = {
    .name = "upstream pools",
    .listener_kind = -1,
    .sweep = weft_pools_sweep,
    .fini = weft_pools_free_all,
};

static const weft_worker_module h2_pool_module = {
    .name = "upstream http2",
    .listener_kind = -1,
    .fini = weft_h2up_free_all,
};

static const weft_worker_module tcp_callout_module = {
    .name = "tcp callouts",
    .listener_kind = -1,
    .wsnap_end = weft_tcp_callouts_wsnap_end,
    .fini_late = weft_tcp_callouts_free_all,
};

/* filter HTTP callouts: worker-scoped ones end with their snapshot state,
 * detached ones with the worker; at stop every one goes before the
 * upstream pools their exchanges use */
static const weft_worker_module callout_module = {
    .name = "http callouts",
    .listener_kind = -1,
    .wsnap_end = weft_callouts_wsnap_end,
    .fini = weft_callouts_free_all,
};

static const weft_worker_module handles_module = {
    .name = "stream handles",
    .listener_kind = -1,
    .init = weft_handles_attach,
    .thread_start = weft_handles_thread_start,
    .fini_late = weft_handles_detach,
};

/* the filters' worker contexts (SDK 1.1 worker handles and timers): made
 * and freed with the snapshot state's filter worker objects */
static void fworker_init(weft_worker *w) {
    (void)w;
    weft_wsnap_set_fw_hooks(weft_fworker_make, weft_fworker_release);
}

static const weft_worker_module fworker_module = {
    .name = "filter workers",
    .listener_kind = -1,
    .init = fworker_init,
    .thread_start = weft_fworker_thread,
    .fini_late = weft_fworker_thread_gone,
};

const weft_worker_module *const weft_worker_modules[] = {
    &http_module,    &tcp_proxy_module,   &callout_module, &h1_pool_module,
    &h2_pool_module, &tcp_callout_module, &handles_module, &fworker_module,
};
const size_t weft_worker_n_modules = WEFT_ARRAY_LEN(weft_worker_modules);
