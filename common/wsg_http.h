/* wsg_http: how a wsgate service refuses an HTTP request at once — an upgrade it will not
 * take (the gateway's limits and handshake checks, every upgrade on the router's port). The
 * status line is written here as "HTTP/1.1": lws would write "HTTP/1.0" for an upgrade
 * request (it learns the request's version only for requests it serves itself), which
 * WebSocket clients reject as an invalid response. */
#ifndef WSG_HTTP_H
#define WSG_HTTP_H
#include <libwebsockets.h>

/* Answers with status and the JSON body {"error":error}, Connection: close, Cache-Control:
 * no-store, Retry-After when retry_after_s > 0, and for 426 the Sec-WebSocket-Version: 13 a
 * client needs to retry. For LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: returns 1 (lws then ends the
 * transaction and closes the socket), or -1 if the answer could not be written. error must
 * need no JSON escaping (a fixed label). */
int wsg_http_refuse(struct lws *wsi, int status, int retry_after_s, const char *error);

#endif
