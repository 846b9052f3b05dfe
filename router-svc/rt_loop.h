/* rt_loop: the router's main-thread loop, a libwebsockets context. It serves /health, /ready and
 * /metrics on one address, hands every request under /api (method, path, Authorization header
 * and the body, bounded) to an api hook that answers it then or later through
 * rt_loop_answer, serves a static web app's files under one prefix (the console), answers
 * anything else with 404, answers every upgrade request (WebSocket,
 * h2c) with 400 and Connection: close, turns lws_cancel_service wake-ups from other threads
 * into an on_wake call, and runs an on_tick call every tick interval — all on the thread
 * calling rt_loop_service, so the hooks need no locks. */
#ifndef RT_LOOP_H
#define RT_LOOP_H
#include <stddef.h>
#include <stdint.h>
#include "wsg_buf.h"

typedef struct rt_loop rt_loop;

typedef enum {
    RT_HTTP_GET,
    RT_HTTP_POST,
    RT_HTTP_PUT,
    RT_HTTP_PATCH,
    RT_HTTP_DELETE,
    RT_HTTP_OPTIONS,
    RT_HTTP_HEAD,
    RT_HTTP_OTHER,
} rt_http_method;

/* A request for the api hook. Everything it points to lives until the hook returns. */
typedef struct rt_loop_req {
    uint64_t id; /* answer with rt_loop_answer(loop, id, ...) */
    rt_http_method method;
    const char *path;          /* "/api/publish" (no query string) */
    const char *authorization; /* the Authorization header's value; NULL: none */
    const char *body;          /* NUL-terminated (body_len does not count it); NULL: none */
    size_t body_len;
    int body_too_big; /* the body was longer than api_max_body: body is NULL, it was discarded */
} rt_loop_req;

typedef struct rt_loop_hooks {
    void (*on_wake)(void *arg);
    void (*on_tick)(void *arg);
    void *arg;
    /* Fill out with the body and return the HTTP status. */
    int (*health)(void *http_arg, wsg_buf *out);
    int (*ready)(void *http_arg, wsg_buf *out);
    int (*metrics)(void *http_arg, wsg_buf *out);
    void *http_arg;
    /* Every request whose path is /api or under /api/, once its body is in. The hook answers
     * it with rt_loop_answer, at once or later (a request not answered within
     * RT_LOOP_API_TIMEOUT_S is answered 504 {"error":"timeout"} by the loop). NULL: such
     * requests get 404. */
    void (*api)(void *api_arg, rt_loop *loop, const rt_loop_req *req);
    void *api_arg;
    size_t api_max_body; /* bytes kept of a request body, at most; beyond: body_too_big */
    /* GET static_prefix/<file> is served from static_dir (wsg_static: the console). NULL:
     * no static files. */
    const char *static_prefix;
    const char *static_dir;
} rt_loop_hooks;

#define RT_LOOP_API_TIMEOUT_S 30

/* host "" = every interface. NULL if the context cannot be created (e.g. port in use). */
rt_loop *rt_loop_new(const char *host, int port, int64_t tick_us, const rt_loop_hooks *hooks);
/* Runs the loop once (waits for the next event). Returns 0, or -1 if the loop is broken. */
int rt_loop_service(rt_loop *h);
/* Loop thread: call fn(arg) once, in about us microseconds (lws timers: a millisecond's
 * grain), replacing the one set before if it has not run. */
void rt_loop_timer(rt_loop *h, int64_t us, void (*fn)(void *arg), void *arg);
/* Any thread: make the loop call on_wake soon. */
void rt_loop_wake(rt_loop *h);
/* Loop thread: answers request id with status and a JSON body (copied). headers: NULL, or
 * name/value pairs ("www-authenticate:", "apikey", ...) ended by a NULL name. Returns 0, or -1
 * if the request is no longer waiting (its client left, it timed out, it was answered) or
 * memory ran out — either way nothing more is to be done for it. */
int rt_loop_answer(rt_loop *h, uint64_t id, int status, const char *body, size_t len,
                   const char *const *headers);
/* Requests waiting for rt_loop_answer. */
size_t rt_loop_pending(const rt_loop *h);
void rt_loop_free(rt_loop *h);

#endif
