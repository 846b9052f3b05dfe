/* gw_http: /health, /ready, /metrics; see gw_http.h. */
#include "gw_http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_metrics.h"
#include "gw_peer.h"
#include "wsg_http.h"
#include "wsg_log.h"
#include "wsg_static.h"
#include "wsg_time.h"

/* The demo app's URL prefix on the client port (WSGATE_DEMO=on). */
#define GW_DEMO_PREFIX "/demo"

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

void gw_http_health_public(const gw_node *n, wsg_buf *out)
{
    /* The client port is public: the node's identity, epoch and load are for the admin port. */
    wsg_buf_printf(out, "{\"status\":\"%s\"}\n", atomic_load(&n->draining) ? "draining" : "ok");
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

static int on_request(gw_node *n, gw_http_port port, struct lws *wsi, void **state,
                      const char *uri)
{
    /* Without an admin listener the client port keeps serving everything (and the node said
     * so at start). */
    int admin = port == GW_HTTP_ADMIN || !n->cfg->admin_listen_port;
    wsg_buf body;
    wsg_buf_init(&body);
    int rc;
    if (path_is(uri, "/health")) {
        if (admin)
            gw_http_health(n, &body);
        else
            gw_http_health_public(n, &body);
        rc = respond(wsi, state, HTTP_STATUS_OK, "application/json", &body);
    } else if (path_is(uri, "/ready")) {
        int status = gw_http_ready(n, &body);
        rc = respond(wsi, state, status, "application/json", &body);
    } else if (admin && path_is(uri, "/metrics")) {
        wsg_metrics_render(&n->metrics, &body);
        gw_unhandled_render(&n->unhandled, &body);
        wsg_metrics_render_process(&body);
        rc = respond(wsi, state, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                     &body);
    } else if (port == GW_HTTP_CLIENT && n->cfg->demo && wsg_static_match(GW_DEMO_PREFIX, uri) &&
               (rc = wsg_static_serve(wsi, GW_DEMO_PREFIX, n->cfg->demo_dir, uri)) <= 0) {
        /* the demo app (WSGATE_DEMO): lws sends the file, or it redirected; 1: 404 below */
    } else if (port == GW_HTTP_CLIENT && path_is(uri, "/ws")) {
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

/* A header's whole value, however long (lws_hdr_copy fails on a buffer that is too small,
 * which must never read as "absent"). NULL when the header is absent; *unreadable set when
 * it is present but could not be read. Free the result. */
static char *header_copy(struct lws *wsi, enum lws_token_indexes h, int *unreadable)
{
    *unreadable = 0;
    int total = lws_hdr_total_length(wsi, h);
    if (total <= 0)
        return NULL;
    char *v = malloc((size_t)total + 1);
    if (!v || lws_hdr_copy(wsi, v, total + 1, h) < 0) {
        free(v);
        *unreadable = 1;
        return NULL;
    }
    return v;
}

/* RFC 6455 4.1: the key is the base64 encoding of 16 bytes (24 characters, "==" at the end). */
static int key_valid(const char *k)
{
    if (!k || strlen(k) != 24 || k[22] != '=' || k[23] != '=')
        return 0;
    for (int i = 0; i < 22; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '+' && k[i] != '/')
            return 0;
    char raw[24];
    return lws_b64_decode_string(k, raw, (int)sizeof(raw)) == 16;
}

/* The client may offer no subprotocol or a list holding one of ours; a list without one is
 * refused (lws would otherwise drop the connection without an answer). */
static int subprotocol_ok(const char *list)
{
    if (!list)
        return 1;
    for (const char *t = list; *t;) {
        t += strspn(t, ", \t");
        size_t n = strcspn(t, ", \t");
        if ((n == strlen(GW_HTTP_SUBPROTOCOL) && strncmp(t, GW_HTTP_SUBPROTOCOL, n) == 0) ||
            (n == strlen(GW_HTTP_SUBPROTOCOL_BATCH) &&
             strncmp(t, GW_HTTP_SUBPROTOCOL_BATCH, n) == 0))
            return 1;
        t += n;
    }
    return 0;
}

/* An RFC 6455 opening handshake that lws 4.1 would take as it comes: it treats any
 * Sec-WebSocket-Version as 13 and any key shorter than 128 bytes as valid. */
static int check_handshake(struct lws *wsi)
{
    char ver[8];
    int vlen = lws_hdr_total_length(wsi, WSI_TOKEN_VERSION);
    if (vlen <= 0 || vlen >= (int)sizeof(ver) ||
        lws_hdr_copy(wsi, ver, (int)sizeof(ver), WSI_TOKEN_VERSION) < 0 || strcmp(ver, "13"))
        return wsg_http_refuse(wsi, 426, 0, "websocket_version");
    char key[32];
    int klen = lws_hdr_total_length(wsi, WSI_TOKEN_KEY);
    if (klen <= 0 || klen >= (int)sizeof(key) ||
        lws_hdr_copy(wsi, key, (int)sizeof(key), WSI_TOKEN_KEY) < 0 || !key_valid(key))
        return wsg_http_refuse(wsi, HTTP_STATUS_BAD_REQUEST, 0, "websocket_key");
    int unreadable;
    char *protocols = header_copy(wsi, WSI_TOKEN_PROTOCOL, &unreadable);
    int ok = !unreadable && subprotocol_ok(protocols);
    free(protocols);
    if (!ok)
        return wsg_http_refuse(wsi, HTTP_STATUS_BAD_REQUEST, 0, "subprotocol");
    return 0;
}

void gw_http_wsi_destroy(struct lws *wsi)
{
    free(lws_get_opaque_user_data(wsi));
    lws_set_opaque_user_data(wsi, NULL);
}

int gw_http_client_ip(gw_node *n, struct lws *wsi, uint8_t out[16])
{
    uint8_t peer[16];
    const gw_peer_note *note = lws_get_opaque_user_data(wsi);
    if (note && note->has_proxy_addr) {
        memcpy(peer, note->proxy_addr, 16);
    } else {
        struct sockaddr_storage sa;
        socklen_t slen = sizeof(sa);
        memset(&sa, 0, sizeof(sa));
        if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&sa, &slen) != 0)
            return -1; /* the client is already gone */
        gw_peer_from_sockaddr((struct sockaddr *)&sa, peer);
    }
    const gw_peer_cidrs *trusted = gw_admit_trusted(n->admit);
    if (!gw_peer_cidrs_match(trusted, peer)) {
        memcpy(out, peer, 16); /* its headers say whatever it likes: not read at all */
        return 0;
    }
    /* A header that cannot be read whole counts as absent: the peer is one of ours. */
    int unreadable;
    char *xff = header_copy(wsi, WSI_TOKEN_X_FORWARDED_FOR, &unreadable);
    char *xri = header_copy(wsi, WSI_TOKEN_HTTP_X_REAL_IP, &unreadable);
    gw_peer_resolve(trusted, peer, xff, xri, out);
    free(xff);
    free(xri);
    return 0;
}

int gw_http_take_refusal(struct lws *wsi, int *retry_after_s)
{
    gw_peer_note *note = lws_get_opaque_user_data(wsi);
    if (!note || !note->refused)
        return GW_ADMIT_OK;
    int r = note->refused;
    *retry_after_s = note->retry_after_s;
    note->refused = 0;
    return r;
}

/* Keeps a refusal on the wsi for gw_conn to deliver after the upgrade. -1: no memory. */
static int note_refusal(struct lws *wsi, gw_admit_result r, int retry_after_s)
{
    gw_peer_note *note = lws_get_opaque_user_data(wsi);
    if (!note) {
        note = calloc(1, sizeof(*note));
        if (!note)
            return -1;
        lws_set_opaque_user_data(wsi, note);
    }
    note->refused = (uint8_t)r;
    note->retry_after_s = (uint16_t)(retry_after_s < 1 ? 1 : retry_after_s > 65535 ? 65535
                                                                                    : retry_after_s);
    return 0;
}

/* Only well-formed /ws upgrades; none while draining (the node is leaving, so the client is
 * told to go elsewhere before it is counted anywhere); and only clients the limits admit. */
static int confirm_upgrade(gw_node *n, gw_http_port port, struct lws *wsi)
{
    char uri[256];
    if (port != GW_HTTP_CLIENT || lws_hdr_copy(wsi, uri, (int)sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
        !path_is(uri, "/ws"))
        return wsg_http_refuse(wsi, HTTP_STATUS_NOT_FOUND, 0, "not found");
    int rc = check_handshake(wsi);
    if (rc)
        return rc;
    if (atomic_load(&n->draining))
        return wsg_http_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, 1, "draining");

    uint8_t ip[16];
    if (gw_http_client_ip(n, wsi, ip))
        return -1; /* the client is already gone */
    struct sockaddr_storage peer;
    gw_peer_to_sockaddr(ip, &peer);
    /* An Origin that cannot be read whole is not "no Origin": with an allow-list it is
     * refused (gw_admit). */
    int unreadable;
    char *origin = header_copy(wsi, WSI_TOKEN_ORIGIN, &unreadable);
    int retry_after = 0;
    gw_admit_result r = gw_admit_check(n->admit, unreadable ? GW_ADMIT_ORIGIN_UNREADABLE : origin,
                                       (struct sockaddr *)&peer, gw_node_connections(n),
                                       wsg_mono_us(), &retry_after);
    free(origin);
    if (r == GW_ADMIT_OK)
        return 0;
    wsg_metrics_add(&n->metrics, gw_metric_limit(r), 1);
    char text[GW_PEER_TEXT_MAX];
    gw_peer_text(ip, text);
    wsg_debug("upgrade_refused", "limit=%s client_ip=%s", gw_admit_label(r), text);
    /* A browser script sees nothing of an HTTP refusal, only a close code: the upgrade goes
     * through and gw_conn closes at once with 4029 (costing a 101 and a close frame, nothing
     * more). The Origin refusal stays an HTTP 403: the page is not ours to talk to, and
     * completing a handshake for it would hand a foreign script an open socket. */
    if (n->cfg->admission_close && r != GW_ADMIT_ORIGIN && note_refusal(wsi, r, retry_after) == 0)
        return 0;
    return wsg_http_refuse(wsi, gw_admit_http_status(r), retry_after, gw_admit_label(r));
}

int gw_http_callback(gw_node *n, gw_http_port port, struct lws *wsi,
                     enum lws_callback_reasons reason, void **state, void *in, size_t len)
{
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_request(n, port, wsi, state, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, state);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION: /* a demo file (wsg_static) was sent whole */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(n, port, wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        free(*state);
        *state = NULL;
        return 0;
    default:
        return 0;
    }
}
