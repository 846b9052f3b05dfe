/* gw_static: the demo app's files on the client port (WSGATE_DEMO=on): GET /demo/<path> is
 * served from WSGATE_DEMO_DIR by lws (lws_serve_http_file: read and written in chunks from the
 * writeable callback), with a MIME type by extension; /demo answers a redirect to /demo/ and
 * /demo/ is index.html. Only a plain relative path is served: no "..", no hidden or empty
 * segment, no character outside [A-Za-z0-9._-/], and only the extensions of a static web app;
 * anything else is 404, so the directory cannot be read around. Runs on the worker thread of
 * the request. */
#ifndef GW_STATIC_H
#define GW_STATIC_H
#include <stddef.h>
#include <libwebsockets.h>

/* The URL prefix served. */
#define GW_STATIC_PREFIX "/demo"

/* Whether uri (path, maybe with a query) is under GW_STATIC_PREFIX. */
int gw_static_match(const char *uri);

/* The file of uri under dir, into out: 0, or -1 when the path is not one that is served. */
int gw_static_path(const char *dir, const char *uri, char *out, size_t outlen);

/* The MIME type served for path, by its extension; NULL: not served. */
const char *gw_static_mime(const char *path);

/* Answers the request for uri (gw_static_match) with the file or a redirect: 0 (lws goes on
 * with the file), 1 when there is no such file to serve (the caller answers 404), -1 when
 * the connection must close. */
int gw_static_serve(struct lws *wsi, const char *dir, const char *uri);

#endif
