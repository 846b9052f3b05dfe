/* rt_http: the main thread's libwebsockets context. It serves /health, /ready and /metrics
 * (404 for anything else) on one address, answers every upgrade request (WebSocket, h2c) with
 * 400 and Connection: close, turns lws_cancel_service wake-ups from other threads into an
 * on_wake call, and runs an on_tick call every tick interval — all on the thread calling
 * rt_http_service, so the hooks need no locks. */
#ifndef RT_HTTP_H
#define RT_HTTP_H
#include <stdint.h>
#include "wsg_buf.h"

typedef struct rt_http_hooks {
    void (*on_wake)(void *arg);
    void (*on_tick)(void *arg);
    /* Fill out with the body and return the HTTP status. */
    int (*health)(void *arg, wsg_buf *out);
    int (*ready)(void *arg, wsg_buf *out);
    int (*metrics)(void *arg, wsg_buf *out);
    void *arg;
} rt_http_hooks;

typedef struct rt_http rt_http;

/* host "" = every interface. NULL if the context cannot be created (e.g. port in use). */
rt_http *rt_http_new(const char *host, int port, int64_t tick_us, const rt_http_hooks *hooks);
/* Runs the loop once (waits for the next event). Returns 0, or -1 if the loop is broken. */
int rt_http_service(rt_http *h);
/* Any thread: make the loop call on_wake soon. */
void rt_http_wake(rt_http *h);
void rt_http_free(rt_http *h);

#endif
