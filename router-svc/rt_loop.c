/* rt_loop: the main-thread loop: a minimal lws HTTP server plus the wake-up and timer
 * plumbing. Every answer goes out from the writeable callback, headers first, then the body;
 * an /api request waits in the pending table (by id, never by pointer: its client may leave
 * before the answer) until rt_loop_answer or its deadline. */
#include "rt_loop.h"

#include <inttypes.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "wsg_http.h"
#include "wsg_log.h"
#include "wsg_static.h"
#include "wsg_time.h"

typedef enum {
    SS_IDLE,        /* between requests */
    SS_BODY,        /* an /api request: reading its body */
    SS_WAIT,        /* an /api request: in h->pending until answered */
    SS_OUT_HEADERS, /* an answer is ready: its headers go at the next writeable */
    SS_OUT_BODY,    /* ... then its body */
} ss_state;

typedef struct session {
    struct lws *wsi;
    ss_state state;
    uint64_t id; /* SS_WAIT: the key in h->pending */
    UT_hash_handle hh;
    int64_t deadline_us;
    rt_http_method method;
    char *path;
    char *auth;
    wsg_buf in; /* the request body (an /api request) */
    int too_big;
    /* the answer */
    unsigned status;
    const char *ctype;
    char **hdrs;     /* name, value, ..., NULL; owned */
    int close_after; /* the request cannot be followed by another on this connection */
    wsg_buf out;     /* LWS_PRE bytes of head-room, then the body */
} session;

struct rt_loop {
    struct lws_context *ctx;
    rt_loop_hooks hooks;
    int64_t tick_us;
    lws_sorted_usec_list_t sul;
    lws_sorted_usec_list_t timer; /* rt_loop_timer's */
    void (*timer_fn)(void *arg);
    void *timer_arg;
    session *pending;
    uint64_t next_id;
};

static rt_loop *loop_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static void free_hdrs(session *ss)
{
    if (!ss->hdrs)
        return;
    for (char **p = ss->hdrs; *p; p++)
        free(*p);
    free(ss->hdrs);
    ss->hdrs = NULL;
}

/* Forgets the request ss held (keeps wsi, which is the connection's). */
static void reset_request(rt_loop *h, session *ss)
{
    if (ss->state == SS_WAIT && h)
        HASH_DEL(h->pending, ss);
    ss->state = SS_IDLE;
    ss->id = 0;
    free(ss->path);
    free(ss->auth);
    ss->path = ss->auth = NULL;
    wsg_buf_free(&ss->in);
    ss->too_big = 0;
    free_hdrs(ss);
    ss->close_after = 0;
    wsg_buf_free(&ss->out);
}

/* Makes ss->out LWS_PRE bytes of head-room, ready for the body. 0 or -1. */
static int out_begin(session *ss)
{
    wsg_buf_free(&ss->out);
    wsg_buf_init(&ss->out);
    char *pre = wsg_buf_reserve(&ss->out, LWS_PRE);
    if (!pre)
        return -1;
    memset(pre, 0, LWS_PRE);
    wsg_buf_commit(&ss->out, LWS_PRE);
    return 0;
}

/* The answer in ss->out is complete: send it. */
static int out_send(session *ss, unsigned status, const char *ctype)
{
    if (!wsg_buf_ok(&ss->out))
        return -1;
    ss->status = status;
    ss->ctype = ctype;
    ss->state = SS_OUT_HEADERS;
    lws_callback_on_writable(ss->wsi);
    return 0;
}

static int answer_now(session *ss, unsigned status, const char *json, int close_after)
{
    if (out_begin(ss))
        return -1;
    wsg_buf_puts(&ss->out, json);
    ss->close_after = close_after;
    return out_send(ss, status, "application/json");
}

/* /health, /ready, /metrics, and 404 for anything else outside /api. */
static int status_response(rt_loop *h, session *ss, const char *uri)
{
    int status = 404;
    const char *ctype = "application/json";
    if (out_begin(ss))
        return -1;
    if (!strcmp(uri, "/health")) {
        status = h->hooks.health(h->hooks.http_arg, &ss->out);
    } else if (!strcmp(uri, "/ready")) {
        status = h->hooks.ready(h->hooks.http_arg, &ss->out);
    } else if (!strcmp(uri, "/metrics")) {
        status = h->hooks.metrics(h->hooks.http_arg, &ss->out);
        ctype = "text/plain; version=0.0.4";
    } else {
        wsg_buf_puts(&ss->out, "{\"error\":\"not_found\"}");
    }
    return out_send(ss, (unsigned)status, ctype);
}

static int is_api_path(const char *uri)
{
    return !strncmp(uri, "/api", 4) && (uri[4] == '\0' || uri[4] == '/');
}

static rt_http_method method_of(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes tok;
        rt_http_method m;
    } map[] = {
        {WSI_TOKEN_GET_URI, RT_HTTP_GET},         {WSI_TOKEN_POST_URI, RT_HTTP_POST},
        {WSI_TOKEN_PUT_URI, RT_HTTP_PUT},         {WSI_TOKEN_PATCH_URI, RT_HTTP_PATCH},
        {WSI_TOKEN_DELETE_URI, RT_HTTP_DELETE},   {WSI_TOKEN_OPTIONS_URI, RT_HTTP_OPTIONS},
        {WSI_TOKEN_HEAD_URI, RT_HTTP_HEAD},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (lws_hdr_total_length(wsi, map[i].tok) > 0)
            return map[i].m;
    return RT_HTTP_OTHER;
}

/* A copy of header tok's value; NULL if absent (or out of memory: an absent header is the
 * safe reading of every header taken here). */
static char *header_copy(struct lws *wsi, enum lws_token_indexes tok)
{
    int n = lws_hdr_total_length(wsi, tok);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s && lws_hdr_copy(wsi, s, n + 1, tok) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* 1 with *out, 0 if there is no Content-Length, -1 if it is not a decimal number. */
static int content_length(struct lws *wsi, uint64_t *out)
{
    char buf[32];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n <= 0)
        return 0;
    if (n >= (int)sizeof(buf) || lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0)
        return -1;
    uint64_t v = 0;
    for (const char *p = buf; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT64_MAX / 10 - 1)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 1;
}

/* The request is complete: hand it to the api hook, which may answer before returning. */
static int dispatch(rt_loop *h, session *ss)
{
    ss->id = ++h->next_id;
    ss->state = SS_WAIT;
    ss->deadline_us = wsg_mono_us() + (int64_t)RT_LOOP_API_TIMEOUT_S * 1000000;
    HASH_ADD(hh, h->pending, id, sizeof(ss->id), ss);
    rt_loop_req req = {
        .id = ss->id,
        .method = ss->method,
        .path = ss->path,
        .authorization = ss->auth,
    };
    if (ss->too_big) {
        req.body_too_big = 1;
    } else if (ss->in.data) {
        req.body = ss->in.data;
        req.body_len = ss->in.len - 1; /* the NUL added at completion */
    }
    h->hooks.api(h->hooks.api_arg, h, &req);
    wsg_buf_free(&ss->in);
    return 0;
}

static int api_request(rt_loop *h, session *ss, struct lws *wsi, const char *uri)
{
    ss->method = method_of(wsi);
    ss->path = strdup(uri);
    ss->auth = header_copy(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (!ss->path)
        return -1;
    uint64_t cl = 0;
    int has_cl = content_length(wsi, &cl);
    int bodied = ss->method == RT_HTTP_POST || ss->method == RT_HTTP_PUT ||
                 ss->method == RT_HTTP_PATCH;
    /* lws reads a body as Content-Length says, and one of up to 100 MB from a POST, PUT or
     * PATCH without it (it does not decode chunked bodies): such requests are answered at
     * once and their connection closed, so nothing waits for a body that never ends. */
    if (has_cl < 0)
        return answer_now(ss, 400, "{\"error\":\"bad_content_length\"}", 1);
    if (has_cl == 0 && bodied)
        return answer_now(ss, 411, "{\"error\":\"length_required\"}", 1);
    if (has_cl && (cl > 0 || ss->method == RT_HTTP_POST)) {
        /* lws calls HTTP_BODY and then HTTP_BODY_COMPLETION (at once for a POST of 0 bytes) */
        ss->state = SS_BODY;
        ss->too_big = cl > h->hooks.api_max_body;
        return 0;
    }
    return dispatch(h, ss);
}

static int on_http(struct lws *wsi, session *ss, const char *uri)
{
    rt_loop *h = loop_of(wsi);
    reset_request(h, ss);
    ss->wsi = wsi;
    if (h->hooks.api && is_api_path(uri))
        return api_request(h, ss, wsi, uri);
    if (h->hooks.static_dir && wsg_static_match(h->hooks.static_prefix, uri) &&
        (method_of(wsi) == RT_HTTP_GET || method_of(wsi) == RT_HTTP_HEAD)) {
        /* lws sends the file itself and ends at LWS_CALLBACK_HTTP_FILE_COMPLETION */
        int rc = wsg_static_serve(wsi, h->hooks.static_prefix, h->hooks.static_dir, uri);
        if (rc <= 0)
            return rc;
    }
    return status_response(h, ss, uri);
}

static int on_body(rt_loop *h, session *ss, const void *in, size_t len)
{
    if (ss->state != SS_BODY || ss->too_big)
        return 0; /* past the cap: read and dropped */
    if (len > h->hooks.api_max_body - ss->in.len) {
        ss->too_big = 1;
        wsg_buf_free(&ss->in);
        return 0;
    }
    wsg_buf_append(&ss->in, in, len);
    return wsg_buf_ok(&ss->in) ? 0 : -1;
}

static int on_body_done(rt_loop *h, session *ss)
{
    if (ss->state != SS_BODY)
        return 0;
    if (!ss->too_big) {
        wsg_buf_append(&ss->in, "", 1);
        if (!wsg_buf_ok(&ss->in))
            return -1;
    }
    return dispatch(h, ss);
}

static int write_headers(struct lws *wsi, session *ss)
{
    unsigned char hdr[LWS_PRE + 1024];
    unsigned char *start = &hdr[LWS_PRE], *p = start, *end = &hdr[sizeof(hdr) - 1];
    if (lws_add_http_common_headers(wsi, ss->status, ss->ctype, ss->out.len - LWS_PRE, &p,
                                    end))
        return -1;
    if (ss->hdrs)
        for (char **h = ss->hdrs; h[0] && h[1]; h += 2)
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[0],
                                            (const unsigned char *)h[1], (int)strlen(h[1]), &p,
                                            end))
                return -1;
    if (ss->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                     5, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    ss->state = SS_OUT_BODY;
    lws_callback_on_writable(wsi);
    return 0;
}

static int write_body(rt_loop *h, struct lws *wsi, session *ss)
{
    size_t n = ss->out.len - LWS_PRE;
    int rc = lws_write(wsi, (unsigned char *)ss->out.data + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
    int close_after = ss->close_after;
    reset_request(h, ss);
    if (rc < (int)n || close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    session *ss = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(wsi, ss, in ? (const char *)in : "");
    case LWS_CALLBACK_HTTP_BODY:
        return ss ? on_body(loop_of(wsi), ss, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return ss ? on_body_done(loop_of(wsi), ss) : 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* The router speaks plain HTTP only: an upgrade (WebSocket or h2c) is answered at once
         * and the socket closed, so nobody can hold a router connection open as a WebSocket
         * that nothing reads. */
        return wsg_http_refuse(wsi, HTTP_STATUS_BAD_REQUEST, 0, "upgrade_refused");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!ss)
            return -1;
        if (ss->state == SS_OUT_HEADERS)
            return write_headers(wsi, ss);
        if (ss->state == SS_OUT_BODY)
            return write_body(loop_of(wsi), wsi, ss);
        return 0; /* nothing to send yet (an /api request still waiting) */
    case LWS_CALLBACK_HTTP_FILE_COMPLETION: /* a static file (wsg_static) was sent whole */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (ss)
            reset_request(loop_of(wsi), ss);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        rt_loop *h = loop_of(wsi);
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

static void expire_pending(rt_loop *h)
{
    int64_t now = wsg_mono_us();
    session *ss, *tmp;
    HASH_ITER(hh, h->pending, ss, tmp)
    {
        if (now < ss->deadline_us)
            continue;
        wsg_warn("api_request_timeout", "id=%" PRIu64 " after_s=%d", ss->id,
                 RT_LOOP_API_TIMEOUT_S);
        static const char body[] = "{\"error\":\"timeout\"}";
        rt_loop_answer(h, ss->id, 504, body, sizeof(body) - 1, NULL);
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    rt_loop *h = lws_container_of(sul, rt_loop, sul);
    h->hooks.on_tick(h->hooks.arg);
    expire_pending(h);
    lws_sul_schedule(h->ctx, 0, &h->sul, on_tick, h->tick_us);
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    rt_loop *h = lws_container_of(sul, rt_loop, timer);
    if (h->timer_fn)
        h->timer_fn(h->timer_arg);
}

void rt_loop_timer(rt_loop *h, int64_t us, void (*fn)(void *arg), void *arg)
{
    h->timer_fn = fn;
    h->timer_arg = arg;
    lws_sul_schedule(h->ctx, 0, &h->timer, on_timer, us > 0 ? us : 1);
}

int rt_loop_answer(rt_loop *h, uint64_t id, int status, const char *body, size_t len,
                   const char *const *headers)
{
    session *ss = NULL;
    HASH_FIND(hh, h->pending, &id, sizeof(id), ss);
    if (!ss)
        return -1;
    HASH_DEL(h->pending, ss);
    ss->state = SS_IDLE;
    size_t nh = 0;
    while (headers && headers[nh] && headers[nh + 1])
        nh += 2;
    if (nh) {
        ss->hdrs = calloc(nh + 1, sizeof(*ss->hdrs));
        for (size_t i = 0; ss->hdrs && i < nh; i++)
            if (!(ss->hdrs[i] = strdup(headers[i])))
                goto oom;
        if (!ss->hdrs)
            goto oom;
    }
    if (out_begin(ss))
        goto oom;
    wsg_buf_append(&ss->out, body, len);
    if (out_send(ss, (unsigned)status, "application/json"))
        goto oom;
    return 0;
oom:
    /* the client gets its connection closed rather than no answer at all */
    free_hdrs(ss);
    wsg_buf_free(&ss->out);
    lws_set_timeout(ss->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    return -1;
}

size_t rt_loop_pending(const rt_loop *h)
{
    return HASH_COUNT(h->pending);
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
    lws_sul_cancel(&h->timer);
    /* closing every connection takes each session out of the pending table */
    lws_context_destroy(h->ctx);
    free(h);
}
