/* rt_api_http: the server API over HTTP (/api/publish, /api/disconnect, /api/presence,
 * /api/info on WSGATE_HTTP_LISTEN; docs/api.md): the API key check, the method and path
 * checks, the JSON translation (rt_api_json) and the call into rt_api, whose reply becomes the
 * request's answer through rt_loop_answer. Runs on the main thread as rt_loop's api hook.
 *
 * Whether the API is served at all is decided once, from the key and the listen address: with
 * a key, every call must carry it (Authorization: apikey <key>); without one it is served only
 * on a loopback address, and answers 404 api_disabled elsewhere, so an API that can disconnect
 * any user is never open to a network by accident. */
#ifndef RT_API_HTTP_H
#define RT_API_HTTP_H
#include <stddef.h>
#include <stdint.h>

#include "rt_api.h"
#include "rt_loop.h"
#include "wsg_metrics.h"

typedef enum {
    RT_API_HTTP_KEY,      /* a key is set: calls must carry it */
    RT_API_HTTP_OPEN,     /* no key, loopback address: open */
    RT_API_HTTP_DISABLED, /* no key, reachable from elsewhere: every /api request answers 404 api_disabled */
} rt_api_http_mode;

/* key NULL or "": none. listen_host: WSGATE_HTTP_LISTEN's host ("" = every interface). */
rt_api_http_mode rt_api_http_mode_for(const char *key, const char *listen_host);
/* 1 for localhost, 127.0.0.0/8, ::1 (and ::ffff:127.x.y.z); 0 for anything else, "" included. */
int rt_api_http_is_loopback(const char *host);
/* 1 if authorization (an Authorization header's value, NULL: none) is "apikey <key>" (the
 * scheme in any case), compared in time that does not depend on where the values differ. */
int rt_api_http_authorized(const char *key, const char *authorization);
/* The largest request body taken: max(max_delivery_bytes * 2, 64 KiB) + 64 KiB (a payload's
 * JSON escaped in the worst common case, plus room for the rest of the body). */
size_t rt_api_http_max_body(int64_t max_delivery_bytes);

typedef struct rt_api_http_cfg {
    rt_api *api;
    wsg_metrics *m;          /* rt_metric_descs' table */
    const char *key;         /* NULL or "": none */
    const char *listen_host; /* as for rt_api_http_mode_for */
} rt_api_http_cfg;

typedef struct rt_api_http rt_api_http;

/* Logs the mode (a warning when open or disabled). NULL on ENOMEM. api, m and key must
 * outlive it. */
rt_api_http *rt_api_http_new(const rt_api_http_cfg *cfg);
rt_api_http_mode rt_api_http_mode_of(const rt_api_http *h);
/* rt_loop's api hook (arg: the rt_api_http). */
void rt_api_http_request(void *arg, rt_loop *loop, const rt_loop_req *req);
/* Calls in flight into rt_api (each ends when rt_api replies). */
size_t rt_api_http_inflight(const rt_api_http *h);
/* After rt_api has replied to every call (rt_api freed first), and before the loop is freed. */
void rt_api_http_free(rt_api_http *h);

#endif
