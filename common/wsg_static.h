/* wsg_static: a static web app's files under one URL prefix, on an lws HTTP server: the
 * gateway's demo app (/demo/, WSGATE_DEMO) and the router's console (/console/). GET
 * <prefix>/<path> is served from a directory by lws (lws_serve_http_file: read and written in
 * chunks from the writeable callback), with a MIME type by extension; <prefix> answers a
 * redirect to <prefix>/ and <prefix>/ is index.html. Only a plain relative path is served: no
 * "..", no hidden or empty segment, no character outside [A-Za-z0-9._-/], and only the
 * extensions of a static web app; anything else is refused, so the directory cannot be read
 * around. The server's callback must end the transaction at LWS_CALLBACK_HTTP_FILE_COMPLETION.
 * Runs on the thread of the request's lws context. */
#ifndef WSG_STATIC_H
#define WSG_STATIC_H
#include <stddef.h>
#include <libwebsockets.h>

/* Whether uri (path, maybe with a query) is prefix ("/demo") or under it. */
int wsg_static_match(const char *prefix, const char *uri);

/* The file of uri under dir, into out: 0, or -1 when the path is not one that is served. */
int wsg_static_path(const char *prefix, const char *dir, const char *uri, char *out,
                    size_t outlen);

/* The MIME type served for path, by its extension; NULL: not served. */
const char *wsg_static_mime(const char *path);

/* Answers the request for uri (wsg_static_match) with the file or a redirect: 0 (lws goes on
 * with the file), 1 when there is no such file to serve (the caller answers 404), -1 when
 * the connection must close. */
int wsg_static_serve(struct lws *wsi, const char *prefix, const char *dir, const char *uri);

#endif
