/* gw_http: the gateway's plain HTTP endpoints: /health (JSON), /ready (200/503 for load
 * balancers and Kubernetes), /metrics (Prometheus text). With WSGATE_ADMIN_LISTEN set, the
 * admin port serves all three and the client port only /ready and a /health that shows
 * nothing but the status; without it the client port serves all three. Also decides whether
 * an upgrade on the client port may proceed (RFC 6455 request, path /ws, subprotocol, not
 * draining, the admission limits) and answers refusals with a complete HTTP/1.1 response.
 * Runs on the worker thread that accepted the request; bodies are built once and written
 * from the writeable callback. */
#ifndef GW_HTTP_H
#define GW_HTTP_H
#include <libwebsockets.h>
#include "gw_node.h"

/* Which listener a request came in on. */
typedef enum { GW_HTTP_CLIENT = 0, GW_HTTP_ADMIN } gw_http_port;

/* The WebSocket subprotocol the gateway speaks (offering none is fine too). */
#define GW_HTTP_SUBPROTOCOL "wsgate.v1"
/* The same protocol, with batch frames (gw_batch). */
#define GW_HTTP_SUBPROTOCOL_BATCH "wsgate.batch"

/* Handles the HTTP callbacks of a session (HTTP, HTTP_WRITEABLE, CLOSED_HTTP,
 * HTTP_CONFIRM_UPGRADE). *state is the session's gw_http storage slot. Returns what the
 * lws callback must return. */
int gw_http_callback(gw_node *n, gw_http_port port, struct lws *wsi,
                     enum lws_callback_reasons reason, void **state, void *in, size_t len);

/* Renders the bodies; exposed for tests. Append to out. */
void gw_http_health(const gw_node *n, wsg_buf *out);
void gw_http_health_public(const gw_node *n, wsg_buf *out); /* status only */
int gw_http_ready(const gw_node *n, wsg_buf *out); /* returns the HTTP status */

#endif
