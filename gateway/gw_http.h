/* gw_http: the gateway's plain HTTP endpoints: /health (JSON), /ready (200/503 for load
 * balancers and Kubernetes), /metrics (Prometheus text). With WSGATE_ADMIN_LISTEN set, the
 * admin port serves all three and the client port only /ready and a /health that shows
 * nothing but the status; without it the client port serves all three. Also decides whether
 * an upgrade on the client port may proceed (RFC 6455 request, path /ws, subprotocol, not
 * draining, the admission limits) and answers refusals with a complete HTTP/1.1 response, or,
 * with WSGATE_ADMISSION_CLOSE, lets a refused upgrade through for gw_conn to close with 4029.
 * Works out the client's real address behind trusted proxies (gw_peer).
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

/* The client's address in gw_peer's 16-byte form: the TCP peer (or its PROXY header's
 * source), or, when that is a trusted proxy (WSGATE_TRUSTED_PROXIES), what its
 * X-Forwarded-For / X-Real-IP say (gw_peer_resolve). For a request whose headers lws still
 * holds (CONFIRM_UPGRADE, ESTABLISHED). -1 when the client is gone. */
int gw_http_client_ip(gw_node *n, struct lws *wsi, uint8_t out[16]);

/* WSGATE_ADMISSION_CLOSE: an upgrade the limits refused still completes; this says, once,
 * which limit refused it (a gw_admit_result; GW_ADMIT_OK when none) and when to come back,
 * so that the connection is closed with 4029 at once. */
int gw_http_take_refusal(struct lws *wsi, int *retry_after_s);

/* Frees what gw_accept and gw_http kept on a wsi (LWS_CALLBACK_WSI_DESTROY, or sooner once
 * it has been read). */
void gw_http_wsi_destroy(struct lws *wsi);

/* Renders the bodies; exposed for tests. Append to out. */
void gw_http_health(const gw_node *n, wsg_buf *out);
void gw_http_health_public(const gw_node *n, wsg_buf *out); /* status only */
int gw_http_ready(const gw_node *n, wsg_buf *out); /* returns the HTTP status */

#endif
