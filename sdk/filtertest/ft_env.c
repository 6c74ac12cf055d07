/* ft_env.c: the test env: loading one filter (linked in or dlopened) with
 * the core's ABI checks, its config lifetime, the fake clock, stats, log,
 * misuse record and canned callout answers. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

static wft_env *g_envs;    /* every live env, newest first */
static wft_env *g_current; /* env whose filter code is running */

wft_env *ft_current_env(void) {
    return g_current ? g_current : g_envs;
}

bool ft_on_owner_thread(const wft_env *env) {
    return pthread_equal(pthread_self(), env->thread) != 0;
}

/* g_current follows the env whose filter runs; saved and restored around
 * every call into filter code. */
static wft_env *swap_current(wft_env *env) {
    wft_env *old = g_current;
    g_current = env;
    return old;
}

void ft_set_error(wft_env *env, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env->error, sizeof(env->error), fmt, ap);
    va_end(ap);
}

weft_result ft_misuse(wft_env *env, weft_result r, const char *fmt, ...) {
    if (!env)
        return r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env->misuse_last, sizeof(env->misuse_last), fmt, ap);
    va_end(ap);
    env->nmisuse++;
    ft_log_add(env, WEFT_LOG_LEVEL_WARN, "filtertest", env->misuse_last);
    return r;
}

void ft_log_add(wft_env *env, weft_log_level_t level, const char *name, const char *msg) {
    static const char *const lv[] = {"debug", "info", "warn", "error"};
    if (env->nlog == env->caplog) {
        size_t cap = env->caplog ? env->caplog * 2 : 16;
        ft_logline *p = realloc(env->log, cap * sizeof(*p));
        if (!p)
            return;
        env->log = p;
        env->caplog = cap;
    }
    size_t n = strlen(name ? name : "") + strlen(msg ? msg : "") + 3;
    char *text = malloc(n);
    if (!text)
        return;
    snprintf(text, n, "%s: %s", name ? name : "", msg ? msg : "");
    env->log[env->nlog++] = (ft_logline){level, text};
    if (env->log_stderr)
        fprintf(stderr, "[%s] %s\n", (unsigned)level < 4 ? lv[level] : "?", text);
}

/* ---- loading ---- */

bool ft_name_ok(const char *name) {
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* The core's checks, with its wording. */
static int check_descriptor(const weft_filter_descriptor *d, unsigned host_minor, const char *where,
                            char *err, size_t errlen) {
    if (!d || d->size < offsetof(weft_filter_descriptor, transport) + sizeof(d->transport)) {
        snprintf(err, errlen, "%s: the filter returned no valid descriptor", where);
        return -1;
    }
    if (d->abi_major != WEFT_ABI_MAJOR || d->abi_minor > host_minor) {
        snprintf(err, errlen, "%s: filter ABI %u.%u is not supported by this weft (ABI %d.%u): %s",
                 where, (unsigned)d->abi_major, (unsigned)d->abi_minor, WEFT_ABI_MAJOR, host_minor,
                 d->abi_major != WEFT_ABI_MAJOR
                     ? "another major version, rebuild the filter against this SDK"
                     : "built for a newer weft");
        return -1;
    }
    bool ok = ft_name_ok(d->name) &&
              ((d->kind == WEFT_FILTER_HTTP && d->http && d->http->size >= sizeof(size_t)) ||
               (d->kind == WEFT_FILTER_TRANSPORT && d->transport &&
                d->transport->size >= sizeof(size_t)));
    if (!ok) {
        snprintf(err, errlen, "%s: the descriptor has no name, a bad kind or no hooks", where);
        return -1;
    }
    return 0;
}

/* The host table of an older minor: the kit's own, cut at that minor's
 * size (what a host of that version hands over; the rest zeroed). */
static void host_for_minor(weft_host_api *t, unsigned minor) {
    *t = *wft_host_api();
    if (minor >= WEFT_ABI_MINOR)
        return;
    size_t keep = minor == 0 ? FT_HOST_SIZE_1_0 : FT_HOST_SIZE_1_1;
    memset((char *)t + keep, 0, sizeof(*t) - keep);
    t->size = keep;
    t->abi_minor = (uint16_t)minor;
}

static wft_env *env_make(weft_filter_entry_fn entry, unsigned host_minor, const char *where,
                         void *dl, char *err, size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!entry) {
        snprintf(err, errlen, "%s: no entry function", where);
        return NULL;
    }
    if (host_minor > WEFT_ABI_MINOR) {
        snprintf(err, errlen, "%s: the kit knows ABI %d.%d, not %d.%u", where, WEFT_ABI_MAJOR,
                 WEFT_ABI_MINOR, WEFT_ABI_MAJOR, host_minor);
        return NULL;
    }
    wft_env *env = calloc(1, sizeof(*env));
    if (!env) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    env->thread = pthread_self();
    env->now_us = FT_CLOCK_START_US;
    env->log_level = WEFT_LOG_LEVEL_DEBUG;
    const char *e = getenv("WEFT_FILTERTEST_LOG");
    env->log_stderr = e && *e && strcmp(e, "0") != 0;
    env->source = ft_strdup("filter-config");
    env->dl = dl;
    env->next = g_envs;
    g_envs = env;

    wft_env *old = swap_current(env);
    host_for_minor(&env->host, host_minor);
    const weft_filter_descriptor *d = entry(&env->host);
    swap_current(old);
    if (!env->source || check_descriptor(d, host_minor, where, err, errlen)) {
        if (!env->source)
            snprintf(err, errlen, "out of memory");
        env->dl = NULL; /* the caller closes it */
        wft_env_free(env);
        return NULL;
    }
    env->desc = d;
    return env;
}

wft_env *wft_env_new(weft_filter_entry_fn entry, char *err, size_t errlen) {
    return env_make(entry, WEFT_ABI_MINOR, "filter", NULL, err, errlen);
}

wft_env *wft_env_new_abi(weft_filter_entry_fn entry, unsigned host_minor, char *err,
                         size_t errlen) {
    return env_make(entry, host_minor, "filter", NULL, err, errlen);
}

wft_env *wft_env_load(const char *so_path, char *err, size_t errlen) {
    return wft_env_load_abi(so_path, WEFT_ABI_MINOR, err, errlen);
}

wft_env *wft_env_load_abi(const char *so_path, unsigned host_minor, char *err, size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (!so_path) {
        snprintf(err, errlen, "no filter path");
        return NULL;
    }
    void *dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "%s: cannot load: %s", so_path, dlerror());
        return NULL;
    }
    weft_filter_entry_fn entry;
    void *sym = dlsym(dl, WEFT_FILTER_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof(entry));
    if (!entry) {
        snprintf(err, errlen, "%s: not a weft filter (no symbol %s)", so_path,
                 WEFT_FILTER_ENTRY_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    wft_env *env = env_make(entry, host_minor, so_path, dl, err, errlen);
    if (!env)
        dlclose(dl);
    return env;
}

static void unconfigure(wft_env *env) {
    if (!env->configured)
        return;
    ft_routes_free(env); /* per-route configs before the filter's config */
    wft_env *old = swap_current(env);
    const weft_http_filter_ops *h = env->desc->kind == WEFT_FILTER_HTTP ? env->desc->http : NULL;
    ft_async_worker_closing(env);    /* worker timers, before worker_destroy */
    ft_tcp_worker_end(env);          /* worker-scoped TCP callouts, as well */
    ft_callouts_worker_closing(env); /* and worker-scoped HTTP callouts */
    if (env->have_worker && h && FT_HAS(weft_http_filter_ops, h, worker_destroy))
        h->worker_destroy(env->config, env->worker);
    ft_async_worker_gone(env);
    ft_async_config_gone(env); /* config timers, before config_destroy */
    if (h && FT_HAS(weft_http_filter_ops, h, config_destroy))
        h->config_destroy(env->config);
    if (!h && FT_TRANSPORT(env, config_destroy))
        env->desc->transport->config_destroy(env->config);
    swap_current(old);
    ft_state_config_gone(env); /* its shared state references, after config_destroy */
    env->config = env->worker = NULL;
    env->have_worker = false;
    env->configured = false;
    ft_doc_free(&env->doc);
}

void wft_env_free(wft_env *env) {
    if (!env)
        return;
    while (env->streams)
        wft_stream_free(env->streams);
    while (env->conns)
        wft_conn_free(env->conns);
    ft_tcp_env_free(env);
    ft_callouts_free(&env->callouts);
    if (env->desc)
        unconfigure(env);
    ft_state_free(env);
    ft_async_free(env);
    ft_doc_free(&env->doc);
    for (wft_env **pp = &g_envs; *pp; pp = &(*pp)->next)
        if (*pp == env) {
            *pp = env->next;
            break;
        }
    if (g_current == env)
        g_current = NULL;
    for (size_t i = 0; i < env->nstats; i++) {
        free(env->stats[i].name);
        free(env->stats[i].help);
    }
    free(env->stats);
    ft_family_free(env);
    free(env->filter_name);
    for (size_t i = 0; i < env->nlog; i++)
        free(env->log[i].text);
    free(env->log);
    while (env->canned) {
        ft_canned *c = env->canned;
        env->canned = c->next;
        free(c->cluster);
        free(c->prefix);
        free(c->reason);
        free(c->body);
        ft_hmap_clear(&c->headers);
        free(c);
    }
    for (size_t i = 0; i < env->nclusters; i++)
        free(env->clusters[i]);
    free(env->clusters);
    free(env->source);
    free(env->config_dir);
    if (env->dl)
        dlclose(env->dl);
    free(env);
}

const weft_filter_descriptor *wft_env_descriptor(const wft_env *env) {
    return env ? env->desc : NULL;
}

const char *wft_env_error(const wft_env *env) {
    return env ? env->error : "";
}

void *wft_env_config(const wft_env *env) {
    return env ? env->config : NULL;
}

void wft_env_set_config_dir(wft_env *env, const char *dir) {
    if (!env)
        return;
    free(env->config_dir);
    env->config_dir = ft_strdup(dir);
}

/* ---- config ---- */

static int configure_once(wft_env *env, const char *text, size_t len, char *err, size_t errlen);

/* A reconfigure is the kit's reload: shared state blocks of the old
 * config live on until the new config_create has asked for them. */
static int configure_text(wft_env *env, const char *text, size_t len, char *err, size_t errlen) {
    ft_state_pin(env);
    ft_stats_pass_begin(env);
    int rc = configure_once(env, text, len, err, errlen);
    ft_stats_pass_end(env, rc == 0);
    ft_state_unpin(env);
    return rc;
}

static int configure_once(wft_env *env, const char *text, size_t len, char *err, size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (env->streams || env->conns) {
        snprintf(err, errlen, "free the env's streams and connections before configuring again");
        ft_set_error(env, "%s", err);
        return -1;
    }
    unconfigure(env);
    if (text && len && ft_doc_parse(&env->doc, text, len, env->source, err, errlen)) {
        ft_set_error(env, "%s", err);
        return -1;
    }
    struct weft_filter_setup setup = {.env = env, .live = true, .err = err, .errlen = errlen};
    int (*create)(const weft_config_node *, weft_filter_setup *, void **) = NULL;
    if (env->desc->kind == WEFT_FILTER_HTTP && FT_HTTP(env, config_create))
        create = env->desc->http->config_create;
    else if (env->desc->kind == WEFT_FILTER_TRANSPORT && FT_TRANSPORT(env, config_create))
        create = env->desc->transport->config_create;

    void *config = NULL;
    int rc = 0;
    if (create) {
        env->setup = &setup;
        wft_env *old = swap_current(env);
        ft_async_config_begin(env);
        rc = create(env->doc.root, &setup, &config);
        swap_current(old);
        env->setup = NULL;
    }
    setup.live = false;
    if (rc == 0 && setup.failed) {
        ft_misuse(env, WEFT_ERR_STATE, "config_create called config_fail but returned 0");
        rc = -1;
        env->config = config;
        env->configured = true;
        unconfigure(env);
    }
    if (rc != 0) {
        ft_async_config_gone(env); /* its config timers go with the refused config */
        if (!setup.failed)
            snprintf(err, errlen, "%s: filter \"%s\" refused its config", env->source,
                     env->desc->name);
        ft_set_error(env, "%s", err);
        ft_doc_free(&env->doc);
        return -1;
    }
    env->config = config;
    env->configured = true;
    if (env->desc->kind == WEFT_FILTER_HTTP)
        ft_async_worker_open(env); /* the worker handle, from before worker_create */
    if (env->desc->kind == WEFT_FILTER_HTTP && FT_HTTP(env, worker_create)) {
        wft_env *old = swap_current(env);
        env->worker = env->desc->http->worker_create(config);
        swap_current(old);
        env->have_worker = true;
    }
    return 0;
}

int wft_env_configure(wft_env *env, const char *yaml, char *err, size_t errlen) {
    if (!env)
        return -1;
    free(env->source);
    env->source = ft_strdup("filter-config");
    if (!env->source)
        return -1;
    return configure_text(env, yaml, yaml ? strlen(yaml) : 0, err, errlen);
}

int wft_env_configure_file(wft_env *env, const char *path, char *err, size_t errlen) {
    if (!env || !path)
        return -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open", path);
        ft_set_error(env, "%s: cannot open", path);
        return -1;
    }
    ft_bytes text = {0};
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (ft_bytes_append(&text, chunk, n))
            rc = -1;
    fclose(f);
    if (rc) {
        ft_bytes_free(&text);
        return -1;
    }
    free(env->source);
    env->source = ft_strdup(path);
    const char *slash = strrchr(path, '/');
    free(env->config_dir);
    env->config_dir =
        slash ? ft_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : ft_strdup(".");
    rc = env->source ? configure_text(env, text.data, text.len, err, errlen) : -1;
    ft_bytes_free(&text);
    return rc;
}

int ft_ensure_configured(wft_env *env) {
    if (env->configured)
        return 0;
    char err[512];
    if (wft_env_configure(env, NULL, err, sizeof(err))) {
        ft_set_error(env, "%s", err);
        return -1;
    }
    return 0;
}

/* ---- clock ---- */

uint64_t wft_clock_now_us(const wft_env *env) {
    return env ? env->now_us : 0;
}

/* The earliest timer or callout deadline of the env due at or before
 * `limit`; ties go to the one started first. */
static bool next_due(wft_env *env, uint64_t limit, struct weft_timer **t_out,
                     struct weft_callout **c_out, wft_stream **try_out, struct ft_wtimer **w_out) {
    uint64_t best = 0, best_seq = 0;
    bool found = false;
    *t_out = NULL;
    *c_out = NULL;
    *try_out = NULL;
    /* worker and config timers (1.1) */
    found = ft_async_next_due(env, limit, &best, &best_seq, found, w_out);
    for (wft_conn *cn = env->conns; cn; cn = cn->env_next)
        for (struct weft_timer *t = cn->timers; t; t = t->next) {
            if (t->done || t->due_us > limit)
                continue;
            if (!found || t->due_us < best || (t->due_us == best && t->seq < best_seq)) {
                found = true;
                best = t->due_us;
                best_seq = t->seq;
                *t_out = t;
                *w_out = NULL;
            }
        }
    for (wft_stream *st = env->streams; st; st = st->env_next) {
        /* A per-try timeout (1.1) goes before timers due at the same time. */
        if (st->try_due_us && st->try_due_us <= limit && (!found || st->try_due_us < best)) {
            found = true;
            best = st->try_due_us;
            best_seq = 0;
            *t_out = NULL;
            *c_out = NULL;
            *try_out = st;
            *w_out = NULL;
        }
        for (struct weft_timer *t = st->timers; t; t = t->next) {
            if (t->done || t->due_us > limit)
                continue;
            if (!found || t->due_us < best || (t->due_us == best && t->seq < best_seq)) {
                found = true;
                best = t->due_us;
                best_seq = t->seq;
                *t_out = t;
                *c_out = NULL;
                *try_out = NULL;
                *w_out = NULL;
            }
        }
        if (ft_callouts_next_due(st->callouts, limit, &best, &best_seq, found, c_out)) {
            found = true;
            *t_out = NULL;
            *try_out = NULL;
            *w_out = NULL;
        }
    }
    /* worker-scoped and detached callouts (1.1) */
    if (ft_callouts_next_due(env->callouts, limit, &best, &best_seq, found, c_out)) {
        found = true;
        *t_out = NULL;
        *try_out = NULL;
        *w_out = NULL;
    }
    return found;
}

/* Fires what is due up to `target` (then the clock reads target). */
static void advance_to(wft_env *env, uint64_t target) {
    struct weft_timer *t;
    struct weft_callout *c;
    wft_stream *tst;
    struct ft_wtimer *wt;
    while (next_due(env, target, &t, &c, &tst, &wt)) {
        if (wt) {
            if (ft_async_due(wt) > env->now_us)
                env->now_us = ft_async_due(wt);
            ft_async_fire(env, wt);
        } else if (tst) {
            if (tst->try_due_us > env->now_us)
                env->now_us = tst->try_due_us;
            ft_try_timeout_fire(tst);
        } else if (t) {
            if (t->due_us > env->now_us)
                env->now_us = t->due_us;
            if (t->conn)
                ft_fire_conn_timer(t);
            else
                ft_fire_timer(t);
        } else {
            if (c->deadline_us > env->now_us)
                env->now_us = c->deadline_us;
            ft_callout_finish(c, 0, "timeout", NULL, NULL, 0);
        }
    }
    env->now_us = target;
}

void wft_clock_advance_us(wft_env *env, uint64_t us) {
    if (!env)
        return;
    uint64_t target = env->now_us + us, due;
    /* TCP callout deadlines (ft_tcp.c) in time order with the rest: what
     * is due up to the deadline first, then the deadline. */
    while (ft_tcp_next_due(env, target, &due)) {
        advance_to(env, due > env->now_us ? due : env->now_us);
        ft_tcp_fire_due(env);
    }
    advance_to(env, target);
}

void wft_clock_advance(wft_env *env, uint64_t ms) {
    wft_clock_advance_us(env, ms * 1000);
}

/* ---- stats ---- */

static const ft_stat *stat_find(const wft_env *env, const char *name) {
    if (!env || !name)
        return NULL;
    for (size_t i = 0; i < env->nstats; i++)
        if (!env->stats[i].hidden && !strcmp(env->stats[i].name, name))
            return &env->stats[i];
    return NULL;
}

int32_t ft_stat_declare(weft_filter_setup *setup, const char *name, const char *help,
                        ft_stat_kind kind) {
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    if (!setup || !setup->live) {
        ft_misuse(ft_current_env(), WEFT_ERR_STATE, "stat \"%s\" declared outside config_create",
                  name ? name : "(null)");
        return -1;
    }
    wft_env *env = setup->env;
    if (!ft_name_ok(name)) {
        ft_misuse(env, WEFT_ERR_INVALID, "stat name \"%s\" is not [a-z0-9_]+",
                  name ? name : "(null)");
        return -1;
    }
    for (size_t i = 0; i < env->nstats; i++)
        if (!strcmp(env->stats[i].name, name)) {
            if (env->stats[i].kind != kind) {
                ft_misuse(env, WEFT_ERR_INVALID, "stat \"%s\" declared as a %s and a %s", name,
                          kinds[env->stats[i].kind], kinds[kind]);
                return -1;
            }
            ft_stats_redeclared(env, &env->stats[i].pass, &env->stats[i].hidden);
            return (int32_t)i;
        }
    if (env->nstats == env->capstats) {
        size_t cap = env->capstats ? env->capstats * 2 : 8;
        ft_stat *p = realloc(env->stats, cap * sizeof(*p));
        if (!p)
            return -1;
        env->stats = p;
        env->capstats = cap;
    }
    ft_stat s = {.name = ft_strdup(name),
                 .help = ft_strdup(help ? help : ""),
                 .kind = kind,
                 .pass = env->stat_pass};
    if (!s.name || !s.help) {
        free(s.name);
        free(s.help);
        return -1;
    }
    env->stats[env->nstats] = s;
    return (int32_t)env->nstats++;
}

ft_stat *ft_stat_by_id(int32_t id, ft_stat_kind kind, const char *what) {
    wft_env *env = ft_current_env();
    if (!env)
        return NULL;
    if (id < 0 || (size_t)id >= env->nstats) {
        ft_misuse(env, WEFT_ERR_INVALID, "%s: no stat with id %d", what, (int)id);
        return NULL;
    }
    if (env->stats[id].kind != kind) {
        ft_misuse(env, WEFT_ERR_INVALID, "%s on stat \"%s\" of another kind", what,
                  env->stats[id].name);
        return NULL;
    }
    return &env->stats[id];
}

bool wft_stat_exists(const wft_env *env, const char *name) {
    return stat_find(env, name) != NULL;
}

uint64_t wft_stat(const wft_env *env, const char *name) {
    const ft_stat *s = stat_find(env, name);
    if (!s)
        return 0;
    switch (s->kind) {
    case FT_COUNTER:
        return s->value;
    case FT_HISTOGRAM:
        return s->count;
    case FT_GAUGE:
        return s->gauge > 0 ? (uint64_t)s->gauge : 0;
    }
    return 0;
}

int64_t wft_gauge(const wft_env *env, const char *name) {
    const ft_stat *s = stat_find(env, name);
    return s && s->kind == FT_GAUGE ? s->gauge : 0;
}

bool wft_histogram(const wft_env *env, const char *name, uint64_t *count, uint64_t *sum_us) {
    const ft_stat *s = stat_find(env, name);
    if (!s || s->kind != FT_HISTOGRAM)
        return false;
    if (count)
        *count = s->count;
    if (sum_us)
        *sum_us = s->value;
    return true;
}

const char *wft_stat_help(const wft_env *env, const char *name) {
    const ft_stat *s = stat_find(env, name);
    return s ? s->help : NULL;
}

/* ---- log ---- */

void wft_log_set_level(wft_env *env, weft_log_level_t level) {
    if (env)
        env->log_level = level;
}

const char *ft_filter_name(const wft_env *env) {
    return env->filter_name               ? env->filter_name
           : env->desc && env->desc->name ? env->desc->name
                                          : "?";
}

int wft_env_set_filter_name(wft_env *env, const char *name) {
    if (!env || !name || !*name)
        return -1;
    char *copy = ft_strdup(name);
    if (!copy)
        return -1;
    free(env->filter_name);
    env->filter_name = copy;
    return 0;
}

void wft_log_set_stderr(wft_env *env, bool on) {
    if (env)
        env->log_stderr = on;
}

size_t wft_log_count(const wft_env *env) {
    return env ? env->nlog : 0;
}

const char *wft_log_line(const wft_env *env, size_t i, weft_log_level_t *level) {
    if (!env || i >= env->nlog)
        return "";
    if (level)
        *level = env->log[i].level;
    return env->log[i].text;
}

bool wft_log_contains(const wft_env *env, const char *needle) {
    if (!env || !needle)
        return false;
    for (size_t i = 0; i < env->nlog; i++)
        if (strstr(env->log[i].text, needle))
            return true;
    return false;
}

size_t wft_misuse_count(const wft_env *env) {
    return env ? env->nmisuse : 0;
}

const char *wft_misuse_last(const wft_env *env) {
    return env ? env->misuse_last : "";
}

/* ---- canned callout answers ---- */

static int canned_add(wft_env *env, const char *cluster, const char *prefix, int status,
                      const char *const *headers, const char *body, const char *reason) {
    if (!env || !cluster)
        return -1;
    ft_canned *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->cluster = ft_strdup(cluster);
    c->prefix = ft_strdup(prefix ? prefix : "");
    c->status = status;
    c->body = ft_strdup(body ? body : "");
    c->reason = reason ? ft_strdup(reason) : NULL;
    if (!c->cluster || !c->prefix || !c->body || (reason && !c->reason) ||
        ft_hmap_add_lines(&c->headers, headers, NULL)) {
        free(c->cluster);
        free(c->prefix);
        free(c->body);
        free(c->reason);
        ft_hmap_clear(&c->headers);
        free(c);
        ft_set_error(env, "canned answer: bad header line or out of memory");
        return -1;
    }
    c->next = env->canned; /* newest first: later registrations win */
    env->canned = c;
    return 0;
}

int wft_callout_canned(wft_env *env, const char *cluster, const char *path_prefix, int status,
                       const char *const *headers, const char *body) {
    return canned_add(env, cluster, path_prefix, status, headers, body, NULL);
}

int wft_callout_canned_fail(wft_env *env, const char *cluster, const char *path_prefix,
                            const char *reason) {
    return canned_add(env, cluster, path_prefix, 0, NULL, NULL,
                      reason ? reason : "connect_failure");
}

wft_env *ft_swap_current(wft_env *env) {
    return swap_current(env);
}

int wft_env_add_cluster(wft_env *env, const char *name) {
    if (!env || !name || !*name)
        return -1;
    char **p = realloc(env->clusters, (env->nclusters + 1) * sizeof(*p));
    if (!p)
        return -1;
    env->clusters = p;
    if (!(p[env->nclusters] = ft_strdup(name)))
        return -1;
    env->nclusters++;
    return 0;
}

bool ft_cluster_known(const wft_env *env, const char *name, size_t len) {
    if (!env->nclusters)
        return true;
    for (size_t i = 0; i < env->nclusters; i++)
        if (strlen(env->clusters[i]) == len && memcmp(env->clusters[i], name, len) == 0)
            return true;
    return false;
}
