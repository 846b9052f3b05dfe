/* rt_loop: the main-thread loop: a minimal lws HTTP server plus the wake-up and timer
 * plumbing. */
#include "rt_loop.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_http.h"
#include "wsg_log.h"

struct rt_loop {
    struct lws_context *ctx;
    rt_loop_hooks hooks;
    int64_t tick_us;
    lws_sorted_usec_list_t sul;
};

typedef struct session {
    wsg_buf body; /* LWS_PRE bytes of head-room, then the body */
} session;

static int start_response(struct lws *wsi, session *ss, const char *uri)
{
    rt_loop *h = lws_context_user(lws_get_context(wsi));
    int status = 404;
    const char *ctype = "application/json";
    wsg_buf_free(&ss->body);
    wsg_buf_init(&ss->body);
    char *pre = wsg_buf_reserve(&ss->body, LWS_PRE);
    if (!pre)
        return -1;
    memset(pre, 0, LWS_PRE);
    wsg_buf_commit(&ss->body, LWS_PRE);
    if (!strcmp(uri, "/health")) {
        status = h->hooks.health(h->hooks.http_arg, &ss->body);
    } else if (!strcmp(uri, "/ready")) {
        status = h->hooks.ready(h->hooks.http_arg, &ss->body);
    } else if (!strcmp(uri, "/metrics")) {
        status = h->hooks.metrics(h->hooks.http_arg, &ss->body);
        ctype = "text/plain; version=0.0.4";
    } else {
        wsg_buf_puts(&ss->body, "{\"error\":\"not_found\"}");
    }
    if (!wsg_buf_ok(&ss->body))
        return -1;
    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = &hdr[LWS_PRE], *p = start, *end = &hdr[sizeof(hdr) - 1];
    if (lws_add_http_common_headers(wsi, (unsigned int)status, ctype,
                                    ss->body.len - LWS_PRE, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int write_body(struct lws *wsi, session *ss)
{
    size_t n = ss->body.len - LWS_PRE;
    int rc = lws_write(wsi, (unsigned char *)ss->body.data + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
    wsg_buf_free(&ss->body);
    if (rc < (int)n)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    session *ss = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return start_response(wsi, ss, in ? (const char *)in : "");
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* The router speaks plain HTTP only: an upgrade (WebSocket or h2c) is answered at once
         * and the socket closed, so nobody can hold a router connection open as a WebSocket
         * that nothing reads. */
        return wsg_http_refuse(wsi, HTTP_STATUS_BAD_REQUEST, 0, "upgrade_refused");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!ss || !ss->body.data)
            return -1;
        return write_body(wsi, ss);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (ss)
            wsg_buf_free(&ss->body);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        rt_loop *h = lws_context_user(lws_get_context(wsi));
        if (h)
            h->hooks.on_wake(h->hooks.arg);
        return 0;
    }
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_tick(lws_sorted_usec_list_t *sul)
{
    rt_loop *h = lws_container_of(sul, rt_loop, sul);
    h->hooks.on_tick(h->hooks.arg);
    lws_sul_schedule(h->ctx, 0, &h->sul, on_tick, h->tick_us);
}

rt_loop *rt_loop_new(const char *host, int port, int64_t tick_us, const rt_loop_hooks *hooks)
{
    rt_loop *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->hooks = *hooks;
    h->tick_us = tick_us;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = host && *host ? host : NULL;
    info.protocols = protocols;
    info.user = h;
    info.count_threads = 1;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * (host && strchr(host, '.') != NULL);
    h->ctx = lws_create_context(&info);
    if (!h->ctx) {
        wsg_error("http_listen_failed", "host=%s port=%d", host && *host ? host : "*", port);
        free(h);
        return NULL;
    }
    lws_sul_schedule(h->ctx, 0, &h->sul, on_tick, tick_us);
    wsg_info("http_listening", "host=%s port=%d", host && *host ? host : "*", port);
    return h;
}

int rt_loop_service(rt_loop *h)
{
    return lws_service(h->ctx, 0) < 0 ? -1 : 0;
}

void rt_loop_wake(rt_loop *h)
{
    lws_cancel_service(h->ctx);
}

void rt_loop_free(rt_loop *h)
{
    if (!h)
        return;
    lws_sul_cancel(&h->sul);
    lws_context_destroy(h->ctx);
    free(h);
}
