/* gw_http: the gateway's plain HTTP endpoints on the WebSocket port: /health (JSON), /ready
 * (200/503 for load balancers and Kubernetes), /metrics (Prometheus text). Also decides
 * whether an upgrade may proceed (path /ws, not draining). Runs on the worker thread that
 * accepted the request; bodies are built once and written from the writeable callback. */
#ifndef GW_HTTP_H
#define GW_HTTP_H
#include <libwebsockets.h>
#include "gw_node.h"

/* Handles the HTTP callbacks of a session (HTTP, HTTP_WRITEABLE, CLOSED_HTTP,
 * HTTP_CONFIRM_UPGRADE). *state is the session's gw_http storage slot. Returns what the
 * lws callback must return. */
int gw_http_callback(gw_node *n, struct lws *wsi, enum lws_callback_reasons reason,
                     void **state, void *in, size_t len);

/* Renders the bodies; exposed for tests. Append to out. */
void gw_http_health(const gw_node *n, wsg_buf *out);
int gw_http_ready(const gw_node *n, wsg_buf *out); /* returns the HTTP status */

#endif
