/* filter_setup.h (core): what a filter's config_create sees behind the
 * opaque weft_filter_setup. */
#ifndef WEFT_FILTER_SETUP_H
#define WEFT_FILTER_SETUP_H

#include "config/config.h"

struct weft_filter_inst;
struct weft_filter_setup {
    const weft_config *cfg;
    const weft_cfg_filter *filter;
    struct weft_filter_inst *inst; /* the instance being configured (shared state refs) */
    const char *listener;
    const char *cluster; /* a cluster's transport_filters: stats labelled cluster="..." */
    char *err;           /* where config_fail writes its line */
    size_t errlen;
    bool failed;
};

#endif
