/* rt_api_http: requests under /api through the key, method and body checks into rt_api, and its
 * replies back as answers (see rt_api_http.h). */
#include "rt_api_http.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rt_api_json.h"
#include "rt_metrics.h"
#include "wsg_log.h"
#include "wsg_time.h"

struct rt_api_http {
    rt_api *api;
    wsg_metrics *m;
    const char *key;
    rt_api_http_mode mode;
    size_t inflight;
};

/* One rt_api_call, until its reply. */
typedef struct call {
    rt_api_http *h;
    rt_loop *loop;
    uint64_t req_id;
    rt_api_op op;
    rt_api_json_req rq; /* user / channel echoed in the answer */
} call;

/* ---- decisions ---- */

int rt_api_http_is_loopback(const char *host)
{
    if (!host || !*host)
        return 0;
    if (!strcasecmp(host, "localhost"))
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

rt_api_http_mode rt_api_http_mode_for(const char *key, const char *listen_host)
{
    if (key && *key)
        return RT_API_HTTP_KEY;
    return rt_api_http_is_loopback(listen_host) ? RT_API_HTTP_OPEN : RT_API_HTTP_DISABLED;
}

int rt_api_http_authorized(const char *key, const char *authorization)
{
    static const char scheme[] = "apikey";
    const size_t slen = sizeof(scheme) - 1;
    if (!key || !*key || !authorization)
        return 0;
    if (strncasecmp(authorization, scheme, slen) || authorization[slen] != ' ')
        return 0;
    const char *given = authorization + slen;
    while (*given == ' ')
        given++;
    size_t klen = strlen(key), glen = strlen(given);
    /* every byte of the key is compared whatever the header holds, so the time taken tells
     * nothing about how much of a guess was right */
    unsigned char diff = klen != glen;
    for (size_t i = 0; i < klen; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < glen ? given[i] : 0);
    return diff == 0;
}

size_t rt_api_http_max_body(int64_t max_delivery_bytes)
{
    const size_t k64 = 64 * 1024;
    size_t twice = max_delivery_bytes > 0 ? (size_t)max_delivery_bytes * 2 : 0;
    return (twice > k64 ? twice : k64) + k64;
}

/* ---- requests ---- */

static const struct {
    const char *path;
    rt_api_op op;
    rt_http_method method;
    const char *allow;
} routes[] = {
    {"/api/publish", RT_API_PUBLISH, RT_HTTP_POST, "POST"},
    {"/api/disconnect", RT_API_DISCONNECT, RT_HTTP_POST, "POST"},
    {"/api/presence", RT_API_PRESENCE, RT_HTTP_POST, "POST"},
    {"/api/info", RT_API_INFO, RT_HTTP_GET, "GET"},
};

static const char *const op_names[RT_API__COUNT] = {
    [RT_API_PUBLISH] = "publish",
    [RT_API_DISCONNECT] = "disconnect",
    [RT_API_PRESENCE] = "presence",
    [RT_API_INFO] = "info",
};

static void count(rt_api_http *h, int op, rt_api_outcome o)
{
    if (op >= 0 && op < RT_M_API_OPS)
        wsg_metrics_add(h->m, rt_metric_api(op, RT_API_VIA_HTTP, o), 1);
}

static rt_api_outcome outcome_of(int status)
{
    return status < 300   ? RT_API_OUTCOME_OK
           : status == 401 ? RT_API_OUTCOME_UNAUTHORIZED
           : status < 500  ? RT_API_OUTCOME_REJECTED
                           : RT_API_OUTCOME_ERROR;
}

/* Answers request id; op < 0: not one of the API's operations (not counted). */
static void answer(rt_api_http *h, rt_loop *loop, uint64_t id, int op, int status,
                   const wsg_buf *body, const char *const *headers)
{
    count(h, op, outcome_of(status));
    if (!wsg_buf_ok(body)) {
        static const char oom[] = "{\"error\":\"internal\"}";
        rt_loop_answer(loop, id, 500, oom, sizeof(oom) - 1, NULL);
        return;
    }
    /* -1: the client left (or the loop answered 504 already); nothing is owed to it */
    (void)rt_loop_answer(loop, id, status, body->data, body->len, headers);
}

/* A refusal before rt_api is asked. Bad input to publish is answered in the DeliveryReply's
 * shape ({"accepted":false,"reason":R}), like the router's own refusals; the rest (and the
 * 401, 404 and 405 of every path) as {"error":R}. */
static void refuse(rt_api_http *h, rt_loop *loop, uint64_t id, int op, int status,
                   const char *reason, const char *const *headers)
{
    wsg_buf b;
    wsg_buf_init(&b);
    rt_api_json_error(op == RT_API_PUBLISH && status != 401 && status != 405, reason, &b);
    answer(h, loop, id, op, status, &b, headers);
    wsg_buf_free(&b);
}

static void on_reply(void *arg, uint64_t token, const uint8_t *reply, size_t len)
{
    call *c = arg;
    (void)token;
    wsg_buf b;
    wsg_buf_init(&b);
    int status;
    switch (c->op) {
    case RT_API_PUBLISH: status = rt_api_json_publish_reply(reply, len, &b); break;
    case RT_API_DISCONNECT:
        status = rt_api_json_disconnect_reply(c->rq.user, reply, len, &b);
        break;
    case RT_API_PRESENCE:
        status = rt_api_json_presence_reply(c->rq.user, c->rq.channel, reply, len, &b);
        break;
    default: status = rt_api_json_info_reply(reply, len, &b); break;
    }
    static const char *const retry[] = {"retry-after:", "1", NULL};
    if (status >= 500)
        wsg_log_every(1000, WSG_LOG_WARN, "api_request_failed", "op=%s via=http status=%d",
                      op_names[c->op], status);
    answer(c->h, c->loop, c->req_id, (int)c->op, status, &b, status == 503 ? retry : NULL);
    wsg_buf_free(&b);
    c->h->inflight--;
    rt_api_json_req_free(&c->rq);
    free(c);
}

void rt_api_http_request(void *arg, rt_loop *loop, const rt_loop_req *req)
{
    rt_api_http *h = arg;
    if (h->mode == RT_API_HTTP_DISABLED) {
        refuse(h, loop, req->id, -1, 404, "api_disabled", NULL);
        return;
    }
    int r = -1;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (!strcmp(req->path, routes[i].path))
            r = (int)i;
    int op = r >= 0 ? (int)routes[r].op : -1;
    if (h->mode == RT_API_HTTP_KEY && !rt_api_http_authorized(h->key, req->authorization)) {
        static const char *const challenge[] = {"www-authenticate:", "apikey", NULL};
        wsg_log_every(10000, WSG_LOG_WARN, "api_unauthorized", "path_known=%d key_given=%d",
                      op >= 0, req->authorization != NULL);
        refuse(h, loop, req->id, op, 401, "unauthorized", challenge);
        return;
    }
    if (r < 0) {
        refuse(h, loop, req->id, -1, 404, "not_found", NULL);
        return;
    }
    if (req->method != routes[r].method) {
        const char *const allow[] = {"allow:", routes[r].allow, NULL};
        refuse(h, loop, req->id, op, 405, "method_not_allowed", allow);
        return;
    }
    if (req->body_too_big) {
        refuse(h, loop, req->id, op, 400, "too_big", NULL);
        return;
    }
    call *c = calloc(1, sizeof(*c));
    if (!c) {
        refuse(h, loop, req->id, op, 500, "internal", NULL);
        return;
    }
    c->h = h;
    c->loop = loop;
    c->req_id = req->id;
    c->op = (rt_api_op)op;
    const char *reason = "internal";
    int status = 0;
    switch (c->op) {
    case RT_API_PUBLISH:
        status = rt_api_json_publish(req->body, req->body_len, wsg_now_us(), &c->rq, &reason);
        break;
    case RT_API_DISCONNECT:
        status = rt_api_json_disconnect(req->body, req->body_len, &c->rq, &reason);
        break;
    case RT_API_PRESENCE:
        status = rt_api_json_presence(req->body, req->body_len, &c->rq, &reason);
        break;
    default:
        break; /* InfoRequest has no fields: it packs to nothing */
    }
    if (status) {
        wsg_log_every(1000, WSG_LOG_INFO, "api_request_rejected", "op=%s via=http reason=%s",
                      op_names[c->op], reason);
        refuse(h, loop, req->id, op, status, reason, NULL);
        free(c);
        return;
    }
    static const uint8_t empty[1];
    const uint8_t *packed = c->rq.packed ? c->rq.packed : empty;
    h->inflight++;
    /* c (and the packed request it owns) lives until on_reply, which may run before
     * rt_api_call returns */
    rt_api_call(h->api, c->op, packed, c->rq.len, on_reply, c, req->id);
}

/* ---- lifecycle ---- */

rt_api_http *rt_api_http_new(const rt_api_http_cfg *cfg)
{
    rt_api_http *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->api = cfg->api;
    h->m = cfg->m;
    h->key = cfg->key && *cfg->key ? cfg->key : NULL;
    h->mode = rt_api_http_mode_for(h->key, cfg->listen_host);
    const char *host = cfg->listen_host && *cfg->listen_host ? cfg->listen_host : "*";
    switch (h->mode) {
    case RT_API_HTTP_KEY:
        wsg_info("api_http_enabled", "host=%s auth=apikey", host);
        break;
    case RT_API_HTTP_OPEN:
        wsg_warn("api_http_open", "host=%s reason=\"no WSGATE_API_KEY: the HTTP API is served "
                 "without a key because WSGATE_HTTP_LISTEN is a loopback address\"", host);
        break;
    case RT_API_HTTP_DISABLED:
        wsg_warn("api_http_disabled", "host=%s reason=\"no WSGATE_API_KEY and WSGATE_HTTP_LISTEN "
                 "is not a loopback address: /api/* answers 404 api_disabled; set "
                 "WSGATE_API_KEY (or WSGATE_API_KEY_FILE) to serve it\"", host);
        break;
    }
    return h;
}

rt_api_http_mode rt_api_http_mode_of(const rt_api_http *h)
{
    return h->mode;
}

size_t rt_api_http_inflight(const rt_api_http *h)
{
    return h->inflight;
}

void rt_api_http_free(rt_api_http *h)
{
    if (!h)
        return;
    if (h->inflight)
        wsg_error("api_http_calls_lost", "calls=%zu", h->inflight);
    free(h);
}
