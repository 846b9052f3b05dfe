/* rt_loop: the router's main-thread loop, a libwebsockets context. It serves /health, /ready and /metrics
 * (404 for anything else) on one address, answers every upgrade request (WebSocket, h2c) with
 * 400 and Connection: close, turns lws_cancel_service wake-ups from other threads into an
 * on_wake call, and runs an on_tick call every tick interval — all on the thread calling
 * rt_loop_service, so the hooks need no locks. */
#ifndef RT_LOOP_H
#define RT_LOOP_H
#include <stdint.h>
#include "wsg_buf.h"

typedef struct rt_loop_hooks {
    void (*on_wake)(void *arg);
    void (*on_tick)(void *arg);
    void *arg;
    /* Fill out with the body and return the HTTP status. */
    int (*health)(void *http_arg, wsg_buf *out);
    int (*ready)(void *http_arg, wsg_buf *out);
    int (*metrics)(void *http_arg, wsg_buf *out);
    void *http_arg;
} rt_loop_hooks;

typedef struct rt_loop rt_loop;

/* host "" = every interface. NULL if the context cannot be created (e.g. port in use). */
rt_loop *rt_loop_new(const char *host, int port, int64_t tick_us, const rt_loop_hooks *hooks);
/* Runs the loop once (waits for the next event). Returns 0, or -1 if the loop is broken. */
int rt_loop_service(rt_loop *h);
/* Any thread: make the loop call on_wake soon. */
void rt_loop_wake(rt_loop *h);
void rt_loop_free(rt_loop *h);

#endif
