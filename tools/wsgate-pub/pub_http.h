/* pub_http: the HTTP transport. POST <url>/api/publish on a router's HTTP port with libcurl
 * (one handle for the run, so a stream of publishes reuses the connection), the key in
 * `Authorization: apikey K`; the answer's body is what gets printed. */
#ifndef PUB_HTTP_H
#define PUB_HTTP_H

#include "pub_opts.h"

typedef struct pub_http pub_http;

/* Returns NULL after saying why on stderr. */
pub_http *pub_http_open(const pub_opts *o);
/* Posts one JSON body. Returns the line to print (malloc'd) with *accepted set (status 200
 * and "accepted":true), or NULL when out of memory. The body is printed as it came (made one
 * line if it spans several); a body that is not JSON, or no answer, is a failure line
 * (timeout, unreachable, bad_reply) with the detail on stderr. */
char *pub_http_publish(pub_http *h, const char *body, int *accepted);
void pub_http_close(pub_http *h);

#endif
