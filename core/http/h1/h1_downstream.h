/* h1_downstream.h: a client-side HTTP/1.1 connection. It parses requests
 * one at a time (pipelined requests wait in the input buffer until the
 * previous response is out, so responses stay in order) and drives one
 * weft_stream per request. */
#ifndef WEFT_HTTP_H1_DOWNSTREAM_H
#define WEFT_HTTP_H1_DOWNSTREAM_H

#include <event2/util.h>
#include <sys/socket.h>

#include "common/wctx.h"

/* Takes ownership of fd. */
void weft_dconn_accept(weft_worker *w, const char *listener_name, evutil_socket_t fd,
                       const struct sockaddr *sa, int salen);
/* Drain: responses carry Connection: close and the connection closes
 * after them; a connection with no request in flight closes if none comes
 * within a second; HTTP/2 connections get their two-step GOAWAY. New
 * connections are still accepted (and drained the same way). */
void weft_dconn_drain_all(weft_worker *w);
/* Shutdown: closes and frees every connection. */
void weft_dconn_free_all(weft_worker *w);
/* Frees the worker's recycled HTTP/1.1 request states (worker thread or
 * after it stopped). */
void weft_h1_cache_free(weft_worker *w);

#endif
