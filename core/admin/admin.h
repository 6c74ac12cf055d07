/* admin.h: the admin listener (main thread, libevent's evhttp): /ready,
 * /stats/prometheus, /config_dump, /clusters, POST /drain.
 *
 * Who may do what: every request must name an IP literal or "localhost" in
 * its Host header (a browser page that rebinds its own DNS name to the
 * admin address cannot pass it). State-changing endpoints accept only
 * POST (GET/HEAD get 405) and need `Authorization: Bearer <token>` when
 * admin.token is set (401 otherwise), or else an `X-Weft-Admin` header
 * (403 otherwise): a header a browser never sends cross-origin without a
 * CORS preflight, which weft never approves. The server's size, time and
 * connection limits come from weft_cfg_admin. */
#ifndef WEFT_ADMIN_H
#define WEFT_ADMIN_H

#include <event2/event.h>

#include "config/config.h"
#include "runtime/snapshot.h"

typedef struct weft_admin weft_admin;

typedef struct weft_admin_host {
    void *ctx;
    weft_snapshot *(*current)(void *ctx); /* borrowed */
    bool (*draining)(void *ctx);
    void (*drain)(void *ctx); /* stop listeners, keep serving in-flight */
} weft_admin_host;

/* Listens on cfg->address:cfg->port; copies what it needs from cfg. */
weft_admin *weft_admin_start(struct event_base *base, const weft_cfg_admin *cfg,
                             const weft_admin_host *host, char *err, size_t errlen);
/* A reload: applies what can change live (token, size, time and
 * connection limits; connections already open keep the timeout they were
 * accepted with) and says, in one line each, what it applied and what
 * needs a restart (another address or port, the admin turned on or off)
 * and was left as it was. a may be NULL (the admin is off). Main thread. */
void weft_admin_reconfigure(weft_admin *a, const weft_cfg_admin *cfg);
void weft_admin_free(weft_admin *a);

#endif
