/* filter_state.h (core): host functions of the SDK 1.1 state group
 * (shared state, clusters, endpoints; the endpoint calls for a stream
 * and for a worker handle), implemented in filter_state.c and
 * put into the host table by filter_host.c. */
#ifndef WEFT_FILTER_STATE_H
#define WEFT_FILTER_STATE_H

#include <weft/filter.h>

weft_result weft_fs_shared_get(weft_filter_setup *st, weft_str key, size_t size, uint32_t version,
                               weft_shared_init_fn init, weft_shared_destroy_fn destroy, void *arg,
                               void **out);
weft_result weft_fs_cluster_get(weft_filter_setup *st, weft_str name, const weft_cluster **out);
weft_result weft_fs_endpoint_count(weft_stream *s, const weft_cluster *c, size_t *count);
weft_result weft_fs_endpoint_get(weft_stream *s, const weft_cluster *c, size_t i,
                                 weft_endpoint_info *out);
weft_result weft_fs_endpoint_label(weft_stream *s, const weft_cluster *c, size_t i, size_t label,
                                   weft_str *key, weft_str *value);
weft_result weft_fs_endpoint_find(weft_stream *s, const weft_cluster *c, weft_str address,
                                  size_t *index);
weft_result weft_fs_counter_add(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                                int64_t delta, uint64_t *value);
weft_result weft_fs_counter_set(weft_stream *s, const weft_cluster *c, size_t i, uint32_t slot,
                                uint64_t value);
weft_result weft_fs_eject(weft_stream *s, const weft_cluster *c, size_t i, uint64_t duration_ms);
weft_result weft_fs_restore(weft_stream *s, const weft_cluster *c, size_t i);
/* The same calls for a worker handle (weft_worker_cluster_endpoint_count
 * and the rest): the view of the handle's worker and snapshot. */
weft_result weft_fs_worker_endpoint_count(weft_worker *w, const weft_cluster *c, size_t *count);
weft_result weft_fs_worker_endpoint_get(weft_worker *w, const weft_cluster *c, size_t i,
                                        weft_endpoint_info *out);
weft_result weft_fs_worker_endpoint_label(weft_worker *w, const weft_cluster *c, size_t i,
                                          size_t label, weft_str *key, weft_str *value);
weft_result weft_fs_worker_endpoint_find(weft_worker *w, const weft_cluster *c, weft_str address,
                                         size_t *index);
weft_result weft_fs_worker_counter_add(weft_worker *w, const weft_cluster *c, size_t i,
                                       uint32_t slot, int64_t delta, uint64_t *value);
weft_result weft_fs_worker_counter_set(weft_worker *w, const weft_cluster *c, size_t i,
                                       uint32_t slot, uint64_t value);
weft_result weft_fs_worker_eject(weft_worker *w, const weft_cluster *c, size_t i,
                                 uint64_t duration_ms);
weft_result weft_fs_worker_restore(weft_worker *w, const weft_cluster *c, size_t i);

#endif
