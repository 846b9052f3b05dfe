/* gw_http: /health, /ready, /metrics; see gw_http.h. */
#include "gw_http.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_metrics.h"
#include "wsg_log.h"
#include "wsg_time.h"

typedef struct gw_http_resp {
    size_t len;
    size_t sent;
    unsigned char buf[]; /* LWS_PRE, then the body */
} gw_http_resp;

void gw_http_health(const gw_node *n, wsg_buf *out)
{
    int draining = atomic_load(&n->draining);
    /* node_id matches [A-Za-z0-9_-], so it needs no JSON escaping. */
    wsg_buf_printf(out,
                   "{\"status\":\"%s\",\"node_id\":\"%s\",\"node_epoch\":\"%llu\","
                   "\"connections\":%lld,\"workers\":%u,\"nats\":\"%s\",\"draining\":%s}\n",
                   draining ? "draining" : "ok", n->cfg->node_id,
                   (unsigned long long)n->epoch, (long long)gw_node_connections(n),
                   n->nworkers, gw_bus_connected(n->bus) ? "connected" : "disconnected",
                   draining ? "true" : "false");
}

int gw_http_ready(const gw_node *n, wsg_buf *out)
{
    const char *reason;
    if (gw_node_ready(n, &reason)) {
        wsg_buf_puts(out, "{\"ready\":true}\n");
        return HTTP_STATUS_OK;
    }
    wsg_buf_printf(out, "{\"ready\":false,\"reason\":\"%s\"}\n", reason);
    return HTTP_STATUS_SERVICE_UNAVAILABLE;
}

static int path_is(const char *uri, const char *path)
{
    size_t n = strlen(path);
    return strncmp(uri, path, n) == 0 && (uri[n] == '\0' || uri[n] == '?');
}

static int respond(struct lws *wsi, void **state, int status, const char *ctype, wsg_buf *body)
{
    if (!wsg_buf_ok(body))
        return lws_return_http_status(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, NULL) ||
               lws_http_transaction_completed(wsi) ? -1 : 0;

    gw_http_resp *r = malloc(sizeof(*r) + LWS_PRE + body->len);
    if (!r)
        return -1;
    r->len = body->len;
    r->sent = 0;
    memcpy(r->buf + LWS_PRE, body->data, body->len);
    *state = r;

    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, r->len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_request(gw_node *n, struct lws *wsi, void **state, const char *uri)
{
    wsg_buf body;
    wsg_buf_init(&body);
    int rc;
    if (path_is(uri, "/health")) {
        gw_http_health(n, &body);
        rc = respond(wsi, state, HTTP_STATUS_OK, "application/json", &body);
    } else if (path_is(uri, "/ready")) {
        int status = gw_http_ready(n, &body);
        rc = respond(wsi, state, status, "application/json", &body);
    } else if (path_is(uri, "/metrics")) {
        wsg_metrics_render(&n->metrics, &body);
        wsg_metrics_render_process(&body);
        rc = respond(wsi, state, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                     &body);
    } else if (path_is(uri, "/ws")) {
        wsg_buf_puts(&body, "{\"error\":\"websocket upgrade required\"}\n");
        rc = respond(wsi, state, HTTP_STATUS_BAD_REQUEST, "application/json", &body);
    } else {
        wsg_buf_puts(&body, "{\"error\":\"not found\"}\n");
        rc = respond(wsi, state, HTTP_STATUS_NOT_FOUND, "application/json", &body);
    }
    wsg_buf_free(&body);
    return rc;
}

static int on_writeable(struct lws *wsi, void **state)
{
    gw_http_resp *r = *state;
    if (!r)
        return -1;
    /* Bodies are small (metrics are a few KiB): lws buffers what the socket does not take. */
    if (lws_write(wsi, r->buf + LWS_PRE, r->len, LWS_WRITE_HTTP_FINAL) != (int)r->len)
        return -1;
    free(r);
    *state = NULL;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Answers a refused upgrade at once; returning 1 then tells lws the transaction is done. */
static int refuse(struct lws *wsi, int status, int retry_after_s, const char *error)
{
    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    unsigned char body[LWS_PRE + 128];
    int blen = snprintf((char *)body + LWS_PRE, sizeof(body) - LWS_PRE, "{\"error\":\"%s\"}\n",
                        error);
    char ra[16];
    int ralen = snprintf(ra, sizeof(ra), "%d", retry_after_s);
    if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", (lws_filepos_t)blen,
                                    &p, end) ||
        (retry_after_s > 0 &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                     (const unsigned char *)ra, ralen, &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end) ||
        lws_write(wsi, body + LWS_PRE, (size_t)blen, LWS_WRITE_HTTP_FINAL) != blen)
        return -1;
    return 1;
}

/* Only /ws upgrades; none while draining (the node is leaving, so the client is told to go
 * elsewhere before it is counted anywhere); and only clients the limits admit. */
static int confirm_upgrade(gw_node *n, struct lws *wsi)
{
    char uri[256];
    if (lws_hdr_copy(wsi, uri, (int)sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || !path_is(uri, "/ws"))
        return refuse(wsi, HTTP_STATUS_NOT_FOUND, 0, "not found");
    if (atomic_load(&n->draining))
        return refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, 1, "draining");

    char origin[512];
    int olen = lws_hdr_copy(wsi, origin, (int)sizeof(origin), WSI_TOKEN_ORIGIN);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    memset(&peer, 0, sizeof(peer));
    if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&peer, &plen) != 0)
        return -1; /* the client is already gone */
    int retry_after = 0;
    gw_admit_result r = gw_admit_check(n->admit, olen > 0 ? origin : NULL,
                                       (struct sockaddr *)&peer, gw_node_connections(n),
                                       wsg_mono_us(), &retry_after);
    if (r == GW_ADMIT_OK)
        return 0;
    wsg_metrics_add(&n->metrics, gw_metric_limit(r), 1);
    wsg_debug("upgrade_refused", "limit=%s", gw_admit_label(r));
    return refuse(wsi, gw_admit_http_status(r), retry_after, gw_admit_label(r));
}

int gw_http_callback(gw_node *n, struct lws *wsi, enum lws_callback_reasons reason,
                     void **state, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_request(n, wsi, state, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, state);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(n, wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        free(*state);
        *state = NULL;
        return 0;
    default:
        return 0;
    }
}
