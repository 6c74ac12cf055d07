/* config_timer.h (core): config timers of SDK 1.1 (group "callout"):
 * one-shot timers of a filter config on the main loop, hanging on the
 * filter instance (weft_filter_inst.cscope) and cancelled before its
 * config_destroy; and the timer record they share with the worker timers
 * of filter/fworker.h. Filters name a timer by an id (odd, never an
 * address), so a fired timer's name never matches a later timer that
 * reuses its memory. */
#ifndef WEFT_FILTER_CONFIG_TIMER_H
#define WEFT_FILTER_CONFIG_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include <weft/filter.h>

struct weft_filter_inst;
struct weft_fworker;
struct weft_cscope;

/* A worker timer or a config timer. */
typedef struct weft_atimer {
    struct event ev;
    uint64_t id;
    struct weft_fworker *fw;  /* worker timer, or NULL: */
    struct weft_cscope *cs;   /* config timer */
    weft_worker_timer_cb wcb; /* worker timer callback */
    weft_config_timer_cb ccb; /* config timer callback */
    void *arg;
    uint64_t ms; /* delay (a config timer waiting for the main loop) */
    bool armed;  /* event added */
    struct weft_atimer *next;
} weft_atimer;

weft_wtimer *weft_atimer_name(uint64_t id);
/* Adds t's event (t->ms from now) on base, firing `fire`. */
void weft_atimer_arm(weft_atimer *t, struct event_base *base,
                     void (*fire)(evutil_socket_t, short, void *));
/* Unlinks the timer named `name` from *list; NULL if none. */
weft_atimer *weft_atimer_take(weft_atimer **list, weft_wtimer *name);
/* Frees every timer of *list (armed ones deleted first: no callback). */
void weft_atimer_free_all(weft_atimer **list);

/* The main loop's base: config timers started before it exists wait and
 * are armed now. NULL when the loop goes (before event_base_free). */
void weft_filter_async_main_base(struct event_base *base);
/* config_create of `inst` runs now (NULL after): config timers started
 * inside it bind to it. Main thread. */
void weft_filter_async_creating(struct weft_filter_inst *inst);
/* Before inst's config_destroy (or after a failed config_create): cancels
 * its config timers without callbacks. Main thread. */
void weft_filter_async_config_gone(struct weft_filter_inst *inst);

/* Host functions (filter_host.c puts them in the host table). */
weft_result weft_cfg_timer_start(void *config, uint64_t ms, weft_config_timer_cb cb, void *arg,
                                 weft_wtimer **out);
weft_result weft_cfg_timer_cancel(void *config, weft_wtimer *t);

#endif
