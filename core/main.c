/* main.c: the weft binary. Loads the config, starts the workers, and runs
 * the main thread's loop: signals (SIGHUP reload, SIGTERM/SIGINT drain),
 * the admin listener, health checks and DNS refresh. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "admin/admin.h"
#include "common/common.h"
#include "common/cpus.h"
#include "common/smallpool.h"
#include "config/config.h"
#include "filter/config_timer.h"
#include "loop/listen_set.h"
#include "loop/worker.h"
#include "runtime/snapshot.h"
#include "upstream/dns.h"
#include "upstream/health.h"

#define WEFT_VERSION "0.1.0"
#define EXIT_BAD_CONFIG 2

typedef struct app {
    const char *config_path;
    struct event_base *base;
    weft_snapshot *snap;
    weft_listen_set listen; /* the sockets of snap's listeners (main's copies) */
    uint64_t version;
    weft_worker **workers;
    int n_workers;
    weft_admin *admin;
    weft_health *health;
    weft_dns *dns;
    weft_stats_block *stats;
    bool draining;    /* SIGTERM or POST /drain: listeners open, connections asked to close */
    bool drain_ended; /* drain_timeout passed: listeners closed, connections cut */
    bool exiting;     /* SIGTERM: exit when no connection is left */
    uint64_t drain_deadline_ms;
    unsigned drain_accepts; /* accepts seen by the last drain poll that found no connection */
    bool drain_idle;        /* the last drain poll found no connection */
    struct event *ev_hup, *ev_term, *ev_int, *ev_drain_poll;
    weft_stat_id reload_ok, reload_fail, config_version;
} app;

static void usage(FILE *f) {
    fprintf(f, "usage: weft -c FILE [--validate] [--log-level debug|info|warn|error]\n"
               "  -c, --config FILE   YAML configuration\n"
               "      --validate      check the configuration and exit (0 ok, 2 bad)\n"
               "      --log-level L   minimum log level (default info)\n"
               "  -v, --version       print the version\n");
}

static weft_snapshot *app_current(void *ctx) {
    return ((app *)ctx)->snap;
}
static bool app_draining(void *ctx) {
    return ((app *)ctx)->draining;
}

/* Drain (SIGTERM, SIGINT, POST /drain): for drain_timeout the listeners
 * keep accepting, HTTP/1.1 responses carry Connection: close, HTTP/2
 * connections get GOAWAY; then listeners close and what is left is cut.
 * With SIGTERM the process exits as soon as no connection is left. */
static void start_drain(app *a) {
    if (a->draining)
        return;
    a->draining = true;
    a->drain_deadline_ms = weft_now_ms() + a->snap->cfg->drain_timeout_ms;
    WEFT_INFO("draining for up to %llums: listeners stay open, connections are asked to close",
              (unsigned long long)a->snap->cfg->drain_timeout_ms);
    /* tcp_proxy listeners close now (the workers close theirs); the main
     * thread keeps its copies of the HTTP ones until the drain ends, to see
     * connections waiting in their accept queues (on_drain_poll). */
    weft_listen_set_close_tcp(&a->listen, a->snap->cfg);
    for (int i = 0; i < a->n_workers; i++)
        weft_worker_drain(a->workers[i]);
    struct timeval tv = {0, 50 * 1000};
    event_add(a->ev_drain_poll, &tv);
}

static void app_drain(void *ctx) {
    start_drain(ctx);
}

static int active_conns(app *a, unsigned *accepts) {
    int n = 0;
    *accepts = 0;
    for (int i = 0; i < a->n_workers; i++) {
        *accepts += atomic_load(&a->workers[i]->accepted);
        n += atomic_load(&a->workers[i]->active_conns);
    }
    return n;
}

/* True when every worker has run the drain (a busy one may still hold
 * connects the kernel completed in a tcp_proxy listener's queue: it
 * accepts them then), no connection was open at this poll nor at the
 * previous one, none was accepted in between and none waits in a
 * listener's accept queue: the clients have left (a client that
 * reconnects after Connection: close is seen by the accept count even if
 * no poll catches its connection open; one whose connect the kernel
 * completed while every worker was busy is seen in the accept queue:
 * exiting then would reset it). */
static bool clients_gone(app *a, int n, unsigned accepts) {
    for (int i = 0; n == 0 && i < a->n_workers; i++)
        if (!weft_worker_drain_seen(a->workers[i]))
            n = 1;
    if (n == 0 && weft_listen_set_queued(&a->listen))
        n = 1;
    bool gone = n == 0 && a->drain_idle && accepts == a->drain_accepts;
    a->drain_idle = n == 0;
    a->drain_accepts = accepts;
    return gone;
}

static void on_drain_poll(evutil_socket_t fd, short what, void *arg) {
    app *a = arg;
    unsigned accepts;
    int n = active_conns(a, &accepts);
    bool gone = clients_gone(a, n, accepts);
    bool timeout = weft_now_ms() >= a->drain_deadline_ms;
    if (a->exiting && (gone || timeout || a->drain_ended)) {
        if (n && !a->drain_ended)
            WEFT_WARN("drain timeout: closing %d connection(s) still open", n);
        else
            WEFT_INFO("drained: exiting");
        event_base_loopbreak(a->base);
        return;
    }
    if (timeout && !a->drain_ended) {
        /* POST /drain: the process stays, without listeners. */
        a->drain_ended = true;
        WEFT_INFO("drain timeout: listeners closed, closing %d connection(s) still open", n);
        weft_listen_set_close(&a->listen);
        for (int i = 0; i < a->n_workers; i++)
            weft_worker_drain_end(a->workers[i]);
        event_del(a->ev_drain_poll);
    }
}

static void on_term(evutil_socket_t sig, short what, void *arg) {
    app *a = arg;
    if (a->exiting) {
        event_base_loopbreak(a->base); /* second signal: now */
        return;
    }
    a->exiting = true;
    weft_dns_stop(a->dns); /* its cancelled queries finish while the loop runs */
    WEFT_INFO("signal %d: shutting down (grace %llums)", (int)sig,
              (unsigned long long)a->snap->cfg->drain_timeout_ms);
    if (a->draining) {
        /* POST /drain came first: keep its deadline. */
        struct timeval tv = {0, 50 * 1000};
        event_add(a->ev_drain_poll, &tv);
        return;
    }
    start_drain(a);
}

static void reload_refused(app *a, const char *why) {
    weft_stats_inc(a->stats, a->reload_fail, 1);
    WEFT_ERROR("reload refused, keeping config v%llu: %s", (unsigned long long)a->version, why);
}

/* SIGHUP: build (pure), bind the new listeners, commit, then hand the
 * snapshot to every worker. Any failure before the hand-off refuses the
 * whole config and leaves nothing behind; the old snapshot keeps serving.
 * Streams in flight finish on the snapshot they began on. */
static void on_hup(evutil_socket_t sig, short what, void *arg) {
    app *a = arg;
    weft_config_error cerr;
    weft_config *cfg = weft_config_load_file(a->config_path, &cerr);
    if (!cfg) {
        reload_refused(a, cerr.msg);
        return;
    }
    char err[512];
    weft_snapshot *snap = weft_snapshot_build(cfg, a->snap, a->version + 1, err, sizeof(err));
    if (!snap) {
        reload_refused(a, err);
        return;
    }
    /* Draining: the listeners are closed for good; bind nothing. */
    weft_listen_set next = {0};
    if (!a->draining &&
        weft_listen_set_prepare(&next, &a->listen, snap->cfg, a->n_workers, err, sizeof(err))) {
        weft_snapshot_discard(snap);
        reload_refused(a, err);
        return;
    }
    if (weft_snapshot_commit(snap, err, sizeof(err))) {
        weft_listen_set_abort(&next, &a->listen);
        weft_snapshot_discard(snap);
        reload_refused(a, err);
        return;
    }
    if (!a->draining)
        weft_listen_set_adopt(&a->listen, &next);
    a->version++;
    for (int i = 0; i < a->n_workers; i++)
        weft_worker_swap(a->workers[i], snap, a->draining ? NULL : &a->listen);
    weft_snapshot *old = a->snap;
    a->snap = snap;
    a->health = weft_health_start(a->base, snap, a->health);
    weft_dns_free(a->dns);
    a->dns = weft_dns_start(a->base, snap);
    if (a->exiting)
        weft_dns_stop(a->dns); /* a reload during the drain: no refreshes */
    weft_admin_reconfigure(a->admin, &snap->cfg->admin);
    weft_snapshot_unref(old);
    weft_stats_inc(a->stats, a->reload_ok, 1);
    weft_stats_gauge_set(a->config_version, (int64_t)a->version);
    WEFT_INFO("config v%llu loaded from %s", (unsigned long long)a->version, a->config_path);
}

static void app_free(app *a) {
    for (int i = 0; i < a->n_workers; i++)
        weft_worker_stop_and_free(a->workers[i]);
    free(a->workers);
    weft_admin_free(a->admin);
    weft_health_free(a->health);
    weft_dns_free(a->dns);
    weft_snapshot_unref(a->snap);      /* NULL-safe; frees on this thread */
    weft_snapshot_reaper_stop();       /* frees what the workers released */
    weft_filter_async_main_base(NULL); /* config timers: the loop goes */
    weft_listen_set_close(&a->listen);
    struct event *evs[] = {a->ev_hup, a->ev_term, a->ev_int, a->ev_drain_poll};
    for (size_t i = 0; i < WEFT_ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    if (a->base)
        event_base_free(a->base);
    if (a->stats)
        weft_stats_block_free(a->stats);
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"validate", no_argument, NULL, 'V'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Before any libevent call: its small per-descriptor entries live in
     * their own pool, so they do not pin the heap pages of a closed burst
     * of connections (common/smallpool.h). */
    weft_smallpool_install();
    app a;
    memset(&a, 0, sizeof(a));
    bool validate = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a.config_path = optarg;
            break;
        case 'V':
            validate = true;
            break;
        case 'l':
            if (!strcmp(optarg, "debug"))
                weft_log_min_level = WEFT_LOG_DEBUG;
            else if (!strcmp(optarg, "info"))
                weft_log_min_level = WEFT_LOG_INFO;
            else if (!strcmp(optarg, "warn"))
                weft_log_min_level = WEFT_LOG_WARN;
            else if (!strcmp(optarg, "error"))
                weft_log_min_level = WEFT_LOG_ERROR;
            else {
                usage(stderr);
                return EXIT_BAD_CONFIG;
            }
            break;
        case 'v':
            printf("weft %s\n", WEFT_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_BAD_CONFIG;
        }
    }
    if (!a.config_path) {
        usage(stderr);
        return EXIT_BAD_CONFIG;
    }
    signal(SIGPIPE, SIG_IGN);
    weft_config_error cerr;
    weft_config *cfg = weft_config_load_file(a.config_path, &cerr);
    if (!cfg) {
        fprintf(stderr, "%s\n", cerr.msg);
        return EXIT_BAD_CONFIG;
    }
    a.stats = weft_stats_block_new();
    weft_stats_set_thread_block(a.stats);
    char err[512];
    a.snap = weft_snapshot_build(cfg, NULL, ++a.version, err, sizeof(err));
    if (!a.snap) {
        fprintf(stderr, "%s\n", err);
        app_free(&a);
        return EXIT_BAD_CONFIG;
    }
    if (validate) {
        /* Pure: no socket bound, no access log created. */
        printf("%s: configuration OK\n", a.config_path);
        app_free(&a);
        return 0;
    }
    int n = (int)a.snap->cfg->workers;
    if (weft_listen_set_prepare(&a.listen, NULL, a.snap->cfg, n, err, sizeof(err)) ||
        weft_snapshot_commit(a.snap, err, sizeof(err))) {
        fprintf(stderr, "weft: %s\n", err);
        app_free(&a);
        return 1;
    }
    a.reload_ok = weft_stats_counter("weft_config_reload_total", "result=\"ok\"", "Config reloads");
    a.reload_fail =
        weft_stats_counter("weft_config_reload_total", "result=\"refused\"", "Config reloads");
    a.config_version = weft_stats_gauge("weft_config_version", "", "Version of the config in use");
    weft_stats_gauge_set(a.config_version, 1);

    a.base = event_base_new();
    if (!a.base || weft_snapshot_reaper_start(a.base)) {
        fprintf(stderr, "weft: cannot create the event loop\n");
        app_free(&a);
        return 1;
    }
    weft_filter_async_main_base(a.base); /* config timers (filter/config_timer.h) */
    a.workers = calloc((size_t)n, sizeof(*a.workers));
    for (int i = 0; i < n; i++) {
        a.workers[i] = weft_worker_start(i, a.snap, &a.listen, err, sizeof(err));
        if (!a.workers[i]) {
            fprintf(stderr, "weft: %s\n", err);
            app_free(&a);
            return 1;
        }
        a.n_workers++;
    }
    if (a.snap->cfg->admin.port) {
        weft_admin_host host = {&a, app_current, app_draining, app_drain};
        a.admin = weft_admin_start(a.base, &a.snap->cfg->admin, &host, err, sizeof(err));
        if (!a.admin) {
            fprintf(stderr, "weft: %s\n", err);
            app_free(&a);
            return 1;
        }
    }
    a.health = weft_health_start(a.base, a.snap, NULL);
    a.dns = weft_dns_start(a.base, a.snap);
    a.ev_hup = evsignal_new(a.base, SIGHUP, on_hup, &a);
    a.ev_term = evsignal_new(a.base, SIGTERM, on_term, &a);
    a.ev_int = evsignal_new(a.base, SIGINT, on_term, &a);
    a.ev_drain_poll = event_new(a.base, -1, EV_PERSIST, on_drain_poll, &a);
    event_add(a.ev_hup, NULL);
    event_add(a.ev_term, NULL);
    event_add(a.ev_int, NULL);
    char cpus[96];
    weft_usable_cpus(0, cpus, sizeof(cpus));
    WEFT_INFO("weft %s: %d worker(s) (%s), %zu listener(s), %zu cluster(s), config v1 from %s",
              WEFT_VERSION, a.n_workers, cpus, a.snap->cfg->n_listeners, a.snap->cfg->n_clusters,
              a.config_path);
    event_base_dispatch(a.base);
    app_free(&a);
    return 0;
}
