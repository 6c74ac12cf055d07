/* ft_route.c: the routes of the imaginary proxy config (ABI 1.1 routing).
 *
 * What the kit models: an ordered list of routes (name, virtual host,
 * cluster, path prefix), each with an optional per-route config for the
 * filter under test, run through its route_config_create as the core does
 * at snapshot build. A stream matches the first route whose prefix starts
 * its path when it is created (before the filter's stream_create, as the
 * core matches before the chain); weft_route_refresh re-runs that prefix
 * match on the path as the filter left it. Virtual hosts, methods,
 * headers and query matches are not modelled: the vhost is only a name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

const ft_route *ft_route_match(const wft_env *env, const char *path) {
    if (!env || !path)
        return NULL;
    size_t plen = strcspn(path, "?");
    for (const ft_route *r = env->routes; r; r = r->next) {
        size_t n = strlen(r->prefix);
        if (n <= plen && strncmp(path, r->prefix, n) == 0)
            return r;
    }
    return NULL;
}

static void route_free(wft_env *env, ft_route *r) {
    const weft_http_filter_ops *h = env->desc->kind == WEFT_FILTER_HTTP ? env->desc->http : NULL;
    if (r->has_cfg && r->cfg && FT_HAS(weft_http_filter_ops, h, route_config_destroy)) {
        wft_env *old = ft_swap_current(env);
        h->route_config_destroy(env->config, r->cfg);
        ft_swap_current(old);
    }
    ft_doc_free(&r->doc);
    free(r->name);
    free(r->vhost);
    free(r->cluster);
    free(r->prefix);
    free(r);
}

void ft_routes_free(wft_env *env) {
    while (env->routes) {
        ft_route *r = env->routes;
        env->routes = r->next;
        route_free(env, r);
    }
}

static int fail(wft_env *env, char *err, size_t errlen, const char *msg) {
    if (err && errlen && err != msg)
        snprintf(err, errlen, "%s", msg);
    ft_set_error(env, "%s", msg);
    return -1;
}

int wft_env_add_route(wft_env *env, const char *name, const char *vhost, const char *cluster,
                      const char *path_prefix, const char *filter_config_yaml, char *err,
                      size_t errlen) {
    char buf[512];
    if (!env)
        return -1;
    if (err && errlen)
        err[0] = '\0';
    if (env->desc->kind != WEFT_FILTER_HTTP)
        return fail(env, err, errlen, "wft_env_add_route: routes are for HTTP filters");
    if (!name || (path_prefix && *path_prefix && *path_prefix != '/'))
        return fail(env, err, errlen,
                    "wft_env_add_route: a name is needed, and a prefix starts with '/'");
    if (env->streams)
        return fail(env, err, errlen, "wft_env_add_route: free the env's streams first");
    for (const ft_route *r = env->routes; r; r = r->next)
        if (strcmp(r->name, name) == 0) {
            snprintf(buf, sizeof(buf), "wft_env_add_route: route \"%s\" exists already", name);
            return fail(env, err, errlen, buf);
        }
    if (ft_ensure_configured(env))
        return fail(env, err, errlen, env->error);
    ft_route *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->name = ft_strdup(name);
    r->vhost = ft_strdup(vhost ? vhost : "");
    r->cluster = ft_strdup(cluster ? cluster : "");
    r->prefix = ft_strdup(path_prefix ? path_prefix : "");
    if (!r->name || !r->vhost || !r->cluster || !r->prefix) {
        route_free(env, r);
        return -1;
    }
    const weft_http_filter_ops *h = env->desc->http;
    if (filter_config_yaml) {
        if (!FT_HAS(weft_http_filter_ops, h, route_config_create)) {
            snprintf(buf, sizeof(buf),
                     "route-config: filter \"%s\": takes no per-route config (it has no "
                     "route_config_create hook), but route %s gives it one",
                     env->desc->name, name);
            route_free(env, r);
            return fail(env, err, errlen, buf);
        }
        size_t len = strlen(filter_config_yaml);
        if (len &&
            ft_doc_parse(&r->doc, filter_config_yaml, len, "route-config", buf, sizeof(buf))) {
            route_free(env, r);
            return fail(env, err, errlen, buf);
        }
        /* config_fail writes "<source>:line:col: msg": the source is
         * "route-config" while the filter judges the node */
        char *saved = env->source;
        char src[] = "route-config";
        env->source = src;
        buf[0] = '\0';
        struct weft_filter_setup setup = {
            .env = env, .live = true, .route = true, .err = buf, .errlen = sizeof buf};
        env->setup = &setup;
        wft_env *old = ft_swap_current(env);
        void *out = NULL;
        int rc = h->route_config_create(r->doc.root, &setup, env->config, &out);
        ft_swap_current(old);
        env->setup = NULL;
        env->source = saved;
        if (rc == 0 && setup.failed) {
            ft_misuse(env, WEFT_ERR_STATE, "route_config_create called config_fail but returned 0");
            r->cfg = out;
            r->has_cfg = true;
            route_free(env, r); /* destroyed, as the core refuses the snapshot */
            return fail(env, err, errlen, buf);
        }
        if (rc != 0) {
            if (!setup.failed)
                snprintf(buf, sizeof(buf),
                         "route-config: filter \"%s\": refused its per-route config",
                         env->desc->name);
            route_free(env, r); /* route_config_destroy is not called after -1 */
            return fail(env, err, errlen, buf);
        }
        r->cfg = out;
        r->has_cfg = true;
    }
    ft_route **pp = &env->routes;
    while (*pp)
        pp = &(*pp)->next;
    *pp = r;
    return 0;
}

void ft_route_settle(wft_stream *st) {
    if (st->route_dirty)
        st->route = ft_route_match(st->env, st->path);
    st->route_dirty = false;
}

int wft_stream_set_route(wft_stream *st, const char *name) {
    if (!st)
        return -1;
    if (st->started) {
        ft_set_error(st->env, "wft_stream_set_route: before the first event");
        return -1;
    }
    if (!name) {
        st->route = NULL;
        return 0;
    }
    for (const ft_route *r = st->env->routes; r; r = r->next)
        if (strcmp(r->name, name) == 0) {
            st->route = r;
            return 0;
        }
    ft_set_error(st->env, "wft_stream_set_route: no route \"%s\" (wft_env_add_route)", name);
    return -1;
}

const char *wft_stream_route(wft_stream *st) {
    return st && st->route ? st->route->name : NULL;
}
