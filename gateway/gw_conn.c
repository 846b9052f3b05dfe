/* gw_conn: client connection life cycle; see gw_conn.h. */
#include "gw_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "gw_batch.h"
#include "gw_chan.h"
#include "gw_deflate.h"
#include "gw_frame.h"
#include "gw_http.h"
#include "gw_peer.h"
#include "gw_perm_check.h"
#include "gw_query.h"
#include "wsg_client.h"
#include "wsg_log.h"
#include "wsg_time.h"
#include "wsg_utf8.h"

static gw_auth_result authenticate(gw_node *n, struct lws *wsi, gw_query *q,
                                   char user[GW_USER_ID_MAX + 1], const wsg_perm **perm,
                                   int64_t *exp)
{
    *exp = 0;
    if (gw_auth_get_mode(n->auth) == GW_AUTH_MODE_NONE) {
        const char *id = gw_query_get(q, GW_QUERY_USER_ID);
        if (!id)
            return GW_AUTH_MISSING;
        return gw_auth_check_user_id(id, user, perm);
    }

    const char *v = gw_query_get(q, GW_QUERY_TOKEN);
    if (v && *v)
        return gw_auth_check_token(n->auth, v, (int64_t)time(NULL), user, perm, exp);

    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (total <= 0)
        return GW_AUTH_MISSING;
    char *buf = malloc((size_t)total + 1);
    if (!buf)
        return GW_AUTH_MALFORMED;
    gw_auth_result r;
    int l = lws_hdr_copy(wsi, buf, total + 1, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (l <= 0) {
        r = GW_AUTH_MISSING;
    } else if (l < 7 || strncasecmp(buf, "Bearer ", 7) != 0) {
        r = GW_AUTH_MALFORMED;
    } else {
        v = buf + 7;
        while (*v == ' ')
            v++;
        r = *v ? gw_auth_check_token(n->auth, v, (int64_t)time(NULL), user, perm, exp)
               : GW_AUTH_MISSING;
        /* kept for a second check once the key set has been fetched (wait_for_key) */
        if (r == GW_AUTH_UNKNOWN_KEY) {
            free(q->value[GW_QUERY_TOKEN]); /* "" when present: a non-empty one was used */
            if (!(q->value[GW_QUERY_TOKEN] = strdup(v)))
                r = GW_AUTH_MALFORMED;
        }
    }
    free(buf);
    return r;
}

/* A token whose kid the gateway is fetching the key set for (gw_jwks): the connection waits
 * for the fetch, unauthenticated, without a welcome (what it sends meanwhile is ignored), and
 * is checked again every GW_KEY_POLL_US for at most GW_KEY_WAIT_US — on a timer of its own,
 * for this rare case only. It keeps its query (resume positions, the token) meanwhile. */
#define GW_KEY_POLL_US 50000
#define GW_KEY_WAIT_US 6000000

struct gw_conn_pending {
    lws_sorted_usec_list_t sul;
    gw_worker *w;
    gw_conn *c;
    gw_query q;
    int64_t until_us;   /* monotonic */
};

static int open_authenticated(gw_worker *w, gw_conn *c, gw_query *q, gw_auth_result r,
                              int64_t exp);

static void key_poll(lws_sorted_usec_list_t *sul)
{
    struct gw_conn_pending *p = lws_container_of(sul, struct gw_conn_pending, sul);
    gw_conn *c = p->c;
    gw_worker *w = p->w;
    gw_node *n = gw_worker_node(w);
    int64_t exp = 0;
    int pending = gw_auth_key_pending(n->auth);
    gw_auth_result r = GW_AUTH_UNKNOWN_KEY;
    if (!pending)
        r = gw_auth_check_token(n->auth, gw_query_get(&p->q, GW_QUERY_TOKEN),
                                    (int64_t)time(NULL), c->user, &c->perm, &exp);
    if (r == GW_AUTH_UNKNOWN_KEY && pending && wsg_mono_us() < p->until_us) {
        lws_sul_schedule(lws_get_context(c->wsi), 0, &p->sul, key_poll, GW_KEY_POLL_US);
        return;
    }
    gw_query q = p->q;
    c->pending = NULL;
    free(p);
    open_authenticated(w, c, &q, r, exp);
}

/* 1 if the connection now waits for the key set (q taken), 0 if nothing is being fetched. */
static int wait_for_key(gw_worker *w, gw_conn *c, gw_query *q)
{
    if (!gw_auth_key_pending(gw_worker_node(w)->auth) || !gw_query_get(q, GW_QUERY_TOKEN))
        return 0;
    struct gw_conn_pending *p = calloc(1, sizeof(*p));
    if (!p)
        return 0;
    p->w = w;
    p->c = c;
    p->q = *q;
    p->until_us = wsg_mono_us() + GW_KEY_WAIT_US;
    c->pending = p;
    lws_sul_schedule(lws_get_context(c->wsi), 0, &p->sul, key_poll, GW_KEY_POLL_US);
    return 1;
}

static void pending_free(gw_conn *c)
{
    if (!c->pending)
        return;
    lws_sul_cancel(&c->pending->sul);
    gw_query_free(&c->pending->q);
    free(c->pending);
    c->pending = NULL;
}

/* A token's exp (Unix seconds, 0: none) in the connection's 32 bits: a later one is as good
 * as never for a connection. */
static void set_exp(gw_conn *c, int64_t exp)
{
    c->exp = exp > UINT32_MAX ? UINT32_MAX : (uint32_t)exp;
}

/* The node-wide total of queued bytes (the memory budget's measure) follows every change of
 * a queue. */
static void account(gw_node *n, const gw_conn *c, size_t before)
{
    int64_t delta = (int64_t)c->q.bytes - (int64_t)before;
    if (delta)
        wsg_metrics_add(&n->metrics, GW_M_QUEUED_BYTES, delta);
}

static void drop_queue(gw_node *n, gw_conn *c)
{
    size_t before = c->q.bytes;
    gw_outq_clear(&c->q);
    account(n, c, before);
}

/* How long a closing connection's client (a slow consumer, or one past its close order's
 * flush deadline) may take to read the rest of a frame lws holds, which its close frame can
 * only follow; then it is dropped without one. */
#define GW_CONN_SLOW_CLOSE_US 10000000

/* Drops what the client has not read and closes with 4008: it resumes from its position. */
static void slow_consumer(gw_node *n, gw_conn *c, const char *why)
{
    wsg_metrics_add(&n->metrics, GW_M_SLOW_CONSUMERS, 1);
    wsg_info("slow_consumer", "conn=%llu user=\"%s\" queued_bytes=%zu reason=%s",
             (unsigned long long)c->id, c->user, c->q.bytes, why);
    drop_queue(n, c);
    gw_conn_close(c, 4008, "slow consumer", GW_M_CLOSED_SLOW_CONSUMER);
    /* The close frame follows the rest of a frame lws may hold for it (rest_to_lws), which
     * needs the client to read; one that does not is dropped at this deadline
     * (gw_conn_idle_check). */
    if (!c->close_by_us) {
        c->close_by_us = wsg_mono_us() + GW_CONN_SLOW_CLOSE_US;
        c->flags |= GW_CONN_F_LAST_WAIT;
    }
}

static int flush(gw_worker *w, gw_conn *c, int in_callback);

/* c has frames to write: they go at the end of the worker's turn (gw_worker_sweep_add), or,
 * should the sweep list not grow, from the writeable callback a turn later. */
static void touch(gw_worker *w, gw_conn *c)
{
    if (gw_worker_sweep_add(w, c))
        lws_callback_on_writable(c->wsi);
}

void gw_conn_sweep_write(gw_worker *w, gw_conn *c)
{
    if (flush(w, c, 0) < 0) {
        /* The socket failed outside any callback: lws closes it from its loop. */
        c->close_started = 1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

void gw_conn_shed(gw_worker *w, gw_conn *c)
{
    gw_node *n = gw_worker_node(w);
    wsg_metrics_add(&n->metrics, GW_M_LIMIT_MEMORY_BUDGET, 1);
    slow_consumer(n, c, "memory_budget");
}

/* The queue bound is judged where the client had its chance to read: after a writeable
 * callback has written what the socket takes (on_writeable). A burst that arrives between two
 * such callbacks may exceed it up to twice over before the connection is cut at once. */
void gw_conn_enqueue(gw_worker *w, gw_conn *c, gw_msg *m)
{
    gw_node *n = gw_worker_node(w);
    size_t before = c->q.bytes;
    /* A connection with frames queued already is in the sweep, or waits for POLLOUT (the kernel
     * took less than offered) or for its lone frame's company (hold): one more frame changes
     * nothing there, except for the last, where it is the company. */
    int was_idle = gw_outq_empty(&c->q);
    switch (gw_outq_push(&c->q, m, 2 * (size_t)n->cfg->outbound_queue_bytes, wsg_mono_us())) {
    case GW_OUTQ_OK:
        account(n, c, before);
        if (was_idle || c->hold == GW_CONN_HOLD_WAITING)
            touch(w, c);
        if (wsg_metrics_get(&n->metrics, GW_M_QUEUED_BYTES) > n->cfg->memory_budget)
            gw_worker_over_budget(w);
        break;
    case GW_OUTQ_FULL:
        slow_consumer(n, c, "queue_burst");
        break;
    case GW_OUTQ_NOMEM:
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        break;
    }
}

/* The welcome is a connection's first frame: what comes before it waits in gw_resume. */
static void enqueue_after_welcome(gw_worker *w, gw_conn *c, gw_msg *m)
{
    if (gw_resume_welcomed(&c->st))
        gw_conn_enqueue(w, c, m);
    else
        gw_resume_hold_early(w, c, m);
}

void gw_conn_send_text(gw_worker *w, gw_conn *c, const char *text, size_t len)
{
    gw_msg *m = gw_msg_new(text, len, 0);
    if (!m) {
        wsg_metrics_add(&gw_worker_node(w)->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    gw_conn_enqueue(w, c, m);
    gw_msg_unref(m);
}

/* An answer to the client's own frame (pong, error, unsubscribed). */
void gw_conn_reply_text(gw_worker *w, gw_conn *c, const char *text, size_t len)
{
    gw_msg *m = gw_msg_new(text, len, 0);
    if (!m) {
        wsg_metrics_add(&gw_worker_node(w)->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    enqueue_after_welcome(w, c, m);
    gw_msg_unref(m);
}

/* ref, channel: of the frame the error is about ("" or NULL: none). */
static void send_error(gw_worker *w, gw_conn *c, wsg_client_error e, const char *message,
                       const char *ref, const char *channel)
{
    gw_node *n = gw_worker_node(w);
    wsg_metrics_add(&n->metrics, gw_metric_rejected(e), 1);
    size_t len;
    char *json = gw_frame_error_json(e, message, ref, channel, &len);
    if (!json) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    gw_conn_reply_text(w, c, json, len);
    free(json);
}

void gw_conn_welcome_queued(gw_worker *w, gw_conn *c)
{
    gw_metrics_stage(&gw_worker_node(w)->metrics, GW_STAGE_CONNECT_HISTORY,
                     wsg_now_us() - c->connected_us);
    if (c->flags & GW_CONN_F_TIMED)
        c->flags |= GW_CONN_F_WELCOME_DUE;
}

void gw_conn_close(gw_conn *c, uint16_t code, const char *reason, gw_metric_id metric)
{
    if (c->state == GW_CONN_CLOSING)
        return;
    c->state = GW_CONN_CLOSING;
    c->close_code = code;
    c->close_reason = reason;
    c->close_metric = (uint16_t)metric;
    lws_callback_on_writable(c->wsi);
}

void gw_conn_close_order(gw_worker *w, gw_conn *c, uint16_t code, const char *reason)
{
    gw_node *n = gw_worker_node(w);
    int label = gw_metric_close_label(code);
    if (c->state != GW_CONN_OPEN || label < 0)
        return;
    /* The close frame carries at most 123 bytes of reason; the router checked it, but a
     * reason that is not what it should be is left out rather than sent. */
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 123 || !wsg_utf8_valid((const unsigned char *)reason, rlen))
        rlen = 0;
    free(c->close_text);
    c->close_text = malloc(rlen + 1);
    if (c->close_text) {
        memcpy(c->close_text, reason ? reason : "", rlen);
        c->close_text[rlen] = '\0';
    }
    wsg_metrics_add(&n->metrics, GW_M_CLOSED_BY_SERVER_FIRST + (size_t)label, 1);
    wsg_debug("close_order", "conn=%llu user=\"%s\" code=%u queued_bytes=%zu",
              (unsigned long long)c->id, c->user, (unsigned)code, c->q.bytes);
    gw_conn_close(c, code, c->close_text ? c->close_text : "", GW_M_CLOSED_SERVER);
    c->close_by_us = wsg_mono_us() + GW_CONN_CLOSE_FLUSH_US;
}

void gw_conn_deliver(gw_worker *w, gw_conn *c, gw_msg *m)
{
    gw_node *n = gw_worker_node(w);
    if (c->state != GW_CONN_OPEN) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_CLOSING, 1);
        return;
    }
    gw_metrics_count(&n->metrics, GW_M_DELIVERIES, 1);
    if (m->seq)
        gw_resume_deliver(w, c, m); /* in seq order, without duplicates */
    else
        enqueue_after_welcome(w, c, m);
}

/* WSGATE_ADMISSION_CLOSE: the limits refused this client before the upgrade (counted there);
 * it gets 4029 and when to come back, and costs nothing more: no credentials read, no
 * registration, no ConnEvent. */
static int refuse_admitted(gw_conn *c, int retry_after_s)
{
    static const char fallback[] = "retry_after=5";
    c->close_text = malloc(32);
    if (c->close_text)
        snprintf(c->close_text, 32, "retry_after=%d", retry_after_s);
    gw_conn_close(c, 4029, c->close_text ? c->close_text : fallback, GW_M__COUNT);
    return 0;
}

static int on_established(gw_worker *w, struct lws *wsi, gw_conn *c)
{
    gw_node *n = gw_worker_node(w);
    /* What the handshake negotiated (gw_conn_add_headers) is all that comes before this. */
    uint8_t negotiated = c->flags & GW_CONN_F_Z;
    memset(c, 0, sizeof(*c));
    c->wsi = wsi;
    c->flags = negotiated;
    if (lws_is_ssl(wsi)) {
        /* gw_conn writes to the socket itself (flush): only plain TCP can be written so */
        wsg_log_every(1000, WSG_LOG_ERROR, "tls_not_supported",
                      "reason=\"the client vhost must not use TLS\"");
        gw_conn_close(c, 1011, "internal error", GW_M_CLOSED_OTHER);
        return 0;
    }
    const gw_peer_note *note = lws_get_opaque_user_data(wsi);
    if (note && note->accepted_us) {
        c->accepted_us32 = (uint32_t)note->accepted_us;
        c->flags |= GW_CONN_F_TIMED;
        gw_metrics_stage(&n->metrics, GW_STAGE_CONNECT_UPGRADE, wsg_mono_us() - note->accepted_us);
    }
    int retry_after_s;
    if (gw_http_take_refusal(wsi, &retry_after_s) != GW_ADMIT_OK)
        return refuse_admitted(c, retry_after_s);
    if (gw_http_client_ip(n, wsi, c->client_ip))
        return -1; /* gone already */
    gw_http_wsi_destroy(wsi); /* the note's address and accept time are in c now */

    /* The query is read once, here, while lws still holds the request's headers: credentials
     * and resume positions come from the same reading of it. */
    gw_query q;
    gw_query_init(&q);
    gw_query_status qs = gw_query_read(&q, wsi);
    if (qs != GW_QUERY_OK) {
        wsg_debug("bad_query", "reason=%s", qs == GW_QUERY_REPEATED ? "repeated" : "nomem");
        if (qs == GW_QUERY_REPEATED)
            gw_conn_close(c, 1008, "repeated query argument", GW_M_CLOSED_POLICY);
        else
            gw_conn_close(c, 1011, "out of memory", GW_M_CLOSED_OTHER);
        gw_query_free(&q);
        return 0;
    }

    int64_t exp = 0;
    gw_auth_result r = authenticate(n, wsi, &q, c->user, &c->perm, &exp);
    if (r == GW_AUTH_UNKNOWN_KEY && wait_for_key(w, c, &q))
        return 0;
    return open_authenticated(w, c, &q, r, exp);
}

/* The rest of the connect once the credentials are judged (r): refused with 4001, or
 * registered, announced and on its way to the welcome. Frees q. */
static int open_authenticated(gw_worker *w, gw_conn *c, gw_query *q_, gw_auth_result r,
                              int64_t exp)
{
    gw_node *n = gw_worker_node(w);
    gw_query q = *q_;
    if (r != GW_AUTH_OK) {
        /* The upgrade is complete, so the client gets a real close code and reason instead of a
         * bare HTTP error that browsers hide from scripts. */
        wsg_metrics_add(&n->metrics, gw_metric_auth_failure(r), 1);
        char ip[GW_PEER_TEXT_MAX];
        gw_peer_text(c->client_ip, ip);
        wsg_debug("auth_failed", "reason=\"%s\" client_ip=%s", gw_auth_result_reason(r), ip);
        c->user[0] = '\0';
        gw_conn_close(c, 4001, gw_auth_result_reason(r), GW_M_CLOSED_AUTH);
        gw_query_free(&q);
        return 0;
    }

    const struct lws_protocols *proto = lws_get_protocol(c->wsi);
    const char *batch = gw_query_get(&q, GW_QUERY_BATCH);
    if ((batch && !strcmp(batch, "1")) ||
        (proto && proto->name && !strcmp(proto->name, GW_HTTP_SUBPROTOCOL_BATCH)))
        c->flags |= GW_CONN_F_BATCH;

    set_exp(c, exp);
    c->id = gw_worker_next_conn_id(w);
    c->connected_us = wsg_now_us();
    c->last_rx_us = wsg_mono_us();
    gw_rate_init(&c->in_rate, (double)n->cfg->inbound_burst, wsg_mono_us());
    c->state = GW_CONN_OPEN;
    gw_worker_add_conn(w, c);
    wsg_metrics_add(&n->metrics, GW_M_CONNECTIONS, 1);
    wsg_metrics_add(&n->metrics, GW_M_CONNECTIONS_OPENED, 1);
    if (c->flags & GW_CONN_F_Z)
        wsg_metrics_add(&n->metrics, GW_M_COMPRESSED_CONNECTIONS, 1);
    if (gw_bus_publish_conn(n->bus, WSGATE__CONN_EVENT__KIND__OPEN, gw_worker_index(w),
                            gw_worker_next_event_seq(w), c->id, c->user, c->connected_us, NULL))
        wsg_warn("conn_event_not_published", "conn=%llu user=\"%s\" kind=open",
                 (unsigned long long)c->id, c->user);
    wsg_log_level lv = n->cfg->log_connections ? WSG_LOG_INFO : WSG_LOG_DEBUG;
    if (wsg_log_enabled(lv)) {
        char ip[GW_PEER_TEXT_MAX];
        gw_peer_text(c->client_ip, ip);
        wsg_log(lv, "conn_open", "conn=%llu user=\"%s\" client_ip=%s deflate=%d batch=%d",
                (unsigned long long)c->id, c->user, ip, !!(c->flags & GW_CONN_F_Z),
                !!(c->flags & GW_CONN_F_BATCH));
    }

    /* The welcome follows once the routers said where the client stands (gw_resume). */
    gw_resume_status rs = gw_resume_start(w, c, &q);
    gw_query_free(&q);
    if (rs == GW_RESUME_BAD_ARGS) {
        gw_conn_close(c, 1008, "malformed since, broadcast_since or epoch", GW_M_CLOSED_POLICY);
        return 0;
    }
    if (rs != GW_RESUME_OK) {
        gw_conn_close(c, 1011, "out of memory", GW_M_CLOSED_OTHER);
        return 0;
    }
    if (gw_worker_draining(w))
        gw_conn_close(c, 1012, "server draining", GW_M_CLOSED_DRAIN);
    return 0;
}

/* ---- client RPC and forwarded frames (gw_rpc) ---- */

static void rpc_outcome(gw_node *n, gw_metric_id m, int rpc)
{
    if (rpc) {
        wsg_metrics_add(&n->metrics, m, 1);
        wsg_metrics_add(&n->metrics, GW_M_RPC_INFLIGHT, -1);
    }
}

/* An error about a frame the gateway did forward: not a refusal (frames_rejected). */
static void send_call_error(gw_worker *w, gw_conn *c, wsg_client_error e, const char *message,
                            const char *ref)
{
    gw_node *n = gw_worker_node(w);
    size_t len;
    char *json = gw_frame_error_json(e, message, ref, NULL, &len);
    if (!json) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    gw_conn_reply_text(w, c, json, len);
    free(json);
}

void gw_conn_rpc_answer(gw_worker *w, gw_conn *c, uint32_t reqno, int status, json_t *data)
{
    gw_node *n = gw_worker_node(w);
    gw_rpc_call call;
    if (!gw_rpc_take(&c->rpc, reqno, &call)) {
        wsg_debug("rpc_late_answer", "conn=%llu reqno=%u", (unsigned long long)c->id, reqno);
        return;
    }
    if (!c->rpc.n)
        gw_worker_rpc_unwatch(w, c);
    int open = c->state == GW_CONN_OPEN;
    switch ((gw_bus_rpc_status)status) {
    case GW_BUS_RPC_NO_HANDLER:
        rpc_outcome(n, GW_M_RPC_NO_HANDLER, call.rpc);
        if (open)
            send_call_error(w, c, WSG_CLIENT_ERR_NO_HANDLER,
                            "no service handles this type", call.ref);
        return;
    case GW_BUS_RPC_BAD_REPLY:
        rpc_outcome(n, GW_M_RPC_BAD_REPLY, call.rpc);
        if (open)
            send_call_error(w, c, WSG_CLIENT_ERR_BAD_REPLY,
                            "the service's answer is not a JSON object", call.ref);
        return;
    case GW_BUS_RPC_REPLY:
        break;
    }
    if (!call.rpc)
        return; /* a service answered a frame that is not RPC: ignored */
    rpc_outcome(n, GW_M_RPC_REPLY, 1);
    if (!open)
        return;
    json_t *ref = gw_frame_ref_json(call.ref);
    size_t len;
    char *text = wsg_client_reply(ref, data, &len);
    json_decref(ref);
    if (!text) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    gw_conn_reply_text(w, c, text, len);
    free(text);
}

void gw_conn_rpc_expire(gw_worker *w, gw_conn *c, int64_t now_mono_us)
{
    gw_node *n = gw_worker_node(w);
    gw_rpc_call call;
    while (gw_rpc_take_expired(&c->rpc, now_mono_us, &call)) {
        if (!call.rpc)
            continue; /* a forwarded frame nobody said no to: someone listens */
        rpc_outcome(n, GW_M_RPC_TIMEOUT, 1);
        if (c->state == GW_CONN_OPEN)
            send_call_error(w, c, WSG_CLIENT_ERR_TIMEOUT,
                            "the service did not answer in time", call.ref);
    }
    if (!c->rpc.n)
        gw_worker_rpc_unwatch(w, c);
}

/* The calls of a closing connection go with it. */
static void rpc_drop_all(gw_worker *w, gw_conn *c)
{
    gw_node *n = gw_worker_node(w);
    if (c->rpc.n_rpc)
        wsg_metrics_add(&n->metrics, GW_M_RPC_INFLIGHT, -(int64_t)c->rpc.n_rpc);
    gw_rpc_table_free(&c->rpc);
    gw_worker_rpc_unwatch(w, c);
}

/* A frame of a type the router does not serve goes to the business services: as a request
 * when its type is RPC (WSGATE_RPC_TYPES), else published with a reply subject anyway, so
 * that NATS says when nobody listens. Frames with an id are tracked (up to a bound) so that
 * the answer can name them. */
static void forward(gw_worker *w, gw_conn *c, const gw_frame *f, const char *data, size_t len)
{
    gw_node *n = gw_worker_node(w);
    const gw_config *cfg = n->cfg;
    int rpc = gw_globs_match(cfg->rpc_globs, f->type);
    if (rpc && !f->ref[0]) {
        wsg_metrics_add(&n->metrics, GW_M_RPC_REJECTED, 1);
        send_error(w, c, WSG_CLIENT_ERR_INVALID_FIELD, "rpc frames need an id", NULL, NULL);
        return;
    }
    int64_t reqno = 0;
    if (f->ref[0]) {
        reqno = gw_rpc_add(&c->rpc, rpc, f->ref, wsg_mono_us() + cfg->rpc_timeout_ms * 1000,
                           (uint32_t)cfg->rpc_max_inflight);
        if (rpc && reqno <= 0) {
            wsg_metrics_add(&n->metrics, GW_M_RPC_REJECTED, 1);
            if (reqno == 0)
                send_error(w, c, WSG_CLIENT_ERR_RATE_LIMITED,
                           "too many requests waiting for an answer", f->ref, NULL);
            else
                send_error(w, c, WSG_CLIENT_ERR_UNAVAILABLE, "out of memory; retry", f->ref,
                           NULL);
            return;
        }
        if (reqno < 0)
            reqno = 0; /* forwarded untracked */
        if (reqno > 0) {
            if (rpc)
                wsg_metrics_add(&n->metrics, GW_M_RPC_INFLIGHT, 1);
            gw_worker_rpc_watch(w, c);
        }
    }
    if (gw_bus_publish_inbound(n->bus, c->id, c->user, c->client_ip, f->type, data, len, wsg_now_us(),
                               rpc ? GW_BUS_RPC : GW_BUS_FORWARD, (uint32_t)reqno)) {
        gw_rpc_call call;
        if (reqno > 0 && gw_rpc_take(&c->rpc, (uint32_t)reqno, &call) && call.rpc)
            wsg_metrics_add(&n->metrics, GW_M_RPC_INFLIGHT, -1);
        if (!c->rpc.n)
            gw_worker_rpc_unwatch(w, c);
        if (rpc)
            wsg_metrics_add(&n->metrics, GW_M_RPC_REJECTED, 1);
        send_error(w, c, WSG_CLIENT_ERR_UNAVAILABLE, "the message could not be forwarded; retry",
                   f->ref, NULL);
        return;
    }
    wsg_metrics_add(&n->metrics, GW_M_INBOUND_PUBLISHED, 1);
}

/* Per-connection token bucket on client messages. A client over it gets an error per
 * refused message; one that keeps going regardless is closed with 1008. */
#define GW_INBOUND_VIOLATIONS_MAX 20

static int inbound_allowed(gw_worker *w, gw_conn *c)
{
    gw_node *n = gw_worker_node(w);
    const gw_config *cfg = n->cfg;
    if (gw_rate_take(&c->in_rate, (double)cfg->inbound_rate, (double)cfg->inbound_burst,
                     wsg_mono_us())) {
        c->violations = 0;
        return 1;
    }
    wsg_metrics_add(&n->metrics, GW_M_LIMIT_INBOUND_RATE, 1);
    if (++c->violations >= GW_INBOUND_VIOLATIONS_MAX) {
        /* A client can make this happen at will: at most a line a second. */
        wsg_log_every(1000, WSG_LOG_INFO, "rate_limit_close", "conn=%llu user=\"%s\"",
                      (unsigned long long)c->id, c->user);
        gw_conn_close(c, 1008, "rate limit exceeded", GW_M_CLOSED_POLICY);
    } else {
        send_error(w, c, WSG_CLIENT_ERR_RATE_LIMITED, "too many messages; the message was dropped",
                   NULL, NULL);
    }
    return 0;
}

/* {"type":"refresh","token":T}: T must verify now and name the same user. Then its exp
 * replaces the connection's (no exp: the connection no longer expires) and its "wsgate" claim
 * replaces the rights for the frames that follow; channel subscriptions already open stay
 * (they were allowed when made; a client that must lose one is disconnected by a close
 * order). Another user's token is refused with forbidden and changes nothing: the connection
 * still ends at the old exp. */
static void refresh(gw_worker *w, gw_conn *c, const gw_frame *f, const char *data, size_t len)
{
    gw_node *n = gw_worker_node(w);
    if (gw_auth_get_mode(n->auth) == GW_AUTH_MODE_NONE) {
        wsg_metrics_add(&n->metrics, GW_M_TOKEN_REFRESH_INVALID, 1);
        send_error(w, c, WSG_CLIENT_ERR_INVALID_TYPE,
                   "refresh needs token authentication (WSGATE_AUTH=none here)", f->ref, NULL);
        return;
    }
    char *token = gw_frame_refresh_token(data, len);
    if (!token) {
        send_error(w, c, WSG_CLIENT_ERR_UNAVAILABLE, "out of memory; retry", f->ref, NULL);
        return;
    }
    char user[GW_USER_ID_MAX + 1];
    const wsg_perm *perm = NULL;
    int64_t exp = 0;
    gw_auth_result r = gw_auth_check_token(n->auth, token, (int64_t)time(NULL), user, &perm,
                                               &exp);
    free(token);
    if (r == GW_AUTH_UNKNOWN_KEY) {
        /* the key set is being fetched again (at most every 30 s): worth a retry */
        wsg_metrics_add(&n->metrics, GW_M_TOKEN_REFRESH_UNAVAILABLE, 1);
        send_error(w, c, WSG_CLIENT_ERR_UNAVAILABLE, "token refused: unknown key; retry later",
                   f->ref, NULL);
        return;
    }
    if (r != GW_AUTH_OK) {
        wsg_metrics_add(&n->metrics, GW_M_TOKEN_REFRESH_INVALID, 1);
        char why[96];
        snprintf(why, sizeof(why), "token refused: %s", gw_auth_result_reason(r));
        send_error(w, c, WSG_CLIENT_ERR_FORBIDDEN, why, f->ref, NULL);
        return;
    }
    if (strcmp(user, c->user) != 0) {
        gw_auth_perm_free(perm);
        wsg_metrics_add(&n->metrics, GW_M_TOKEN_REFRESH_WRONG_SUB, 1);
        /* a client can repeat this at will: debug, not info */
        wsg_debug("token_refresh_wrong_sub", "conn=%llu user=\"%s\"",
                  (unsigned long long)c->id, c->user);
        send_error(w, c, WSG_CLIENT_ERR_FORBIDDEN, "the token is for another user", f->ref,
                   NULL);
        return;
    }
    gw_auth_perm_free(c->perm);
    c->perm = perm;
    set_exp(c, exp);
    wsg_metrics_add(&n->metrics, GW_M_TOKEN_REFRESH_OK, 1);
    json_t *ref = gw_frame_ref_json(f->ref);
    size_t olen;
    char *out = wsg_client_refreshed(exp, ref, &olen);
    json_decref(ref);
    if (!out) {
        wsg_metrics_add(&n->metrics, GW_M_DROPPED_NOMEM, 1);
        return;
    }
    gw_conn_reply_text(w, c, out, olen);
    free(out);
}

static void on_text(gw_worker *w, gw_conn *c, const char *data, size_t len)
{
    gw_node *n = gw_worker_node(w);
    if (!inbound_allowed(w, c))
        return;
    gw_frame f;
    gw_frame_parse(data, len, &f);
    gw_metrics_inbound(&n->metrics, f.kind, len);
    if (f.kind == GW_FRAME_ERROR) {
        send_error(w, c, f.error, f.message, f.ref, f.channel);
        return;
    }
    /* A denied frame is answered here and never reaches NATS. */
    const char *why = NULL;
    wsg_client_error denied =
        gw_perm_check(c->perm, n->cfg->namespaces, n->cfg->client_send_claim, &f, &why);
    if (denied) {
        send_error(w, c, denied, why, f.ref, f.channel);
        return;
    }
    switch (f.kind) {
    case GW_FRAME_PING:
        gw_conn_reply_text(w, c, WSG_CLIENT_PONG, sizeof(WSG_CLIENT_PONG) - 1);
        return;
    case GW_FRAME_ERROR:
        return;
    case GW_FRAME_SUBSCRIBE:
        if ((denied = gw_chan_subscribe(w, c, &f, &why)))
            send_error(w, c, denied, why, f.ref, f.channel);
        return;
    case GW_FRAME_UNSUBSCRIBE:
        gw_chan_unsubscribe(w, c, &f);
        return;
    case GW_FRAME_BROADCAST:
    case GW_FRAME_SEND_MESSAGE:
    case GW_FRAME_PUBLISH:
    case GW_FRAME_PRESENCE:
        if (gw_bus_publish_inbound(n->bus, c->id, c->user, c->client_ip, f.type, data, len, wsg_now_us(),
                                   GW_BUS_NO_REPLY, 0)) {
            send_error(w, c, WSG_CLIENT_ERR_UNAVAILABLE,
                       "the message could not be forwarded; retry", f.ref, f.channel);
            return;
        }
        wsg_metrics_add(&n->metrics, GW_M_INBOUND_PUBLISHED, 1);
        return;
    case GW_FRAME_FORWARD:
        forward(w, c, &f, data, len);
        return;
    case GW_FRAME_REFRESH:
        refresh(w, c, &f, data, len);
        return;
    }
}

/* Closes at once (lws sends the close frame): the connection is past saving. metric: the
 * close reason counted now (GW_M__COUNT: none). */
static int fail_now(gw_node *n, struct lws *wsi, gw_conn *c, enum lws_close_status code,
                    const char *reason, gw_metric_id metric)
{
    if (metric != GW_M__COUNT)
        wsg_metrics_add(&n->metrics, metric, 1);
    c->close_metric = GW_M__COUNT; /* counted here, not again in CLOSED */
    c->close_code = (uint16_t)code;
    c->state = GW_CONN_CLOSING;
    c->close_started = 1;
    lws_close_reason(wsi, code, (unsigned char *)reason, strlen(reason));
    return -1;
}

static int too_big(gw_node *n, struct lws *wsi, gw_conn *c)
{
    wsg_metrics_add(&n->metrics, GW_M_REJECTED_TOO_BIG, 1);
    return fail_now(n, wsi, c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big",
                    GW_M_CLOSED_TOO_BIG);
}

/* A whole text message as it came (compressed: inflated here, in one go, with the worker's
 * inflater: a connection keeps no zlib state). lws does not check UTF-8 (see gw_worker): it is
 * checked here, on what the message says once inflated. */
static int on_message(gw_worker *w, struct lws *wsi, gw_conn *c, const unsigned char *data,
                      size_t len)
{
    gw_node *n = gw_worker_node(w);
    wsg_metrics_add(&n->metrics, GW_M_FRAMES_RECEIVED, 1);
    wsg_metrics_add(&n->metrics, GW_M_BYTES_RECEIVED, (int64_t)len);
    if (c->flags & GW_CONN_F_RX_Z) {
        gw_deflate *d = gw_worker_deflate(w);
        const unsigned char *out = NULL;
        size_t olen = 0;
        /* A deflate bomb stops at the cap: never more than one byte past it is inflated. */
        gw_inflate_status st = d ? gw_deflate_inflate(d, data, len,
                                                      (size_t)n->cfg->max_message_bytes, &out,
                                                      &olen)
                                 : GW_INFLATE_BAD;
        switch (st) {
        case GW_INFLATE_OK:
            break;
        case GW_INFLATE_TOO_BIG:
            return too_big(n, wsi, c);
        case GW_INFLATE_BAD:
            wsg_debug("inflate_failed", "conn=%llu", (unsigned long long)c->id);
            return fail_now(n, wsi, c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "bad compressed data",
                            GW_M_CLOSED_OTHER);
        case GW_INFLATE_NOMEM:
            gw_conn_close(c, 1011, "out of memory", GW_M_CLOSED_OTHER);
            return 0;
        }
        data = out;
        len = olen;
    }
    if (!wsg_utf8_valid(data, len))
        return fail_now(n, wsi, c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "bad utf8",
                        GW_M_CLOSED_OTHER);
    on_text(w, c, (const char *)data, len);
    return 0;
}

/* lws hands a message over in pieces (fragments, and chunks of large frames); a message is
 * complete when lws says the final piece has arrived. */
static int on_receive(gw_worker *w, struct lws *wsi, gw_conn *c, const void *in, size_t len)
{
    gw_node *n = gw_worker_node(w);
    if (c->state != GW_CONN_OPEN)
        return 0; /* closing: what it still sends is ignored */
    c->last_rx_us = wsg_mono_us();
    c->ping = 0;

    int final = lws_is_final_fragment(wsi);
    if (c->rx_len == 0)
        c->rx_binary = (uint8_t)lws_frame_is_binary(wsi);
    /* RSV1 is on a message's first frame only (RFC 7692 6.1), so it is read on the message's
     * first piece: lws_get_reserved_bits tells the current frame's. */
    if (lws_is_first_fragment(wsi)) {
        if (lws_get_reserved_bits(wsi) & 0x40)
            c->flags |= GW_CONN_F_RX_Z;
        else
            c->flags &= (uint8_t)~GW_CONN_F_RX_Z;
    }
    /* Compressed or not, what arrives is held to the cap before anything is inflated. */
    size_t max = (size_t)n->cfg->max_message_bytes;
    if ((size_t)c->rx_len + len > max)
        return too_big(n, wsi, c);

    if (c->rx_binary) {
        /* Not our protocol: the content is not kept (nor inflated), only its size is
         * checked. */
        c->rx_len += (uint32_t)len;
        if (final) {
            wsg_metrics_add(&n->metrics, GW_M_FRAMES_RECEIVED, 1);
            wsg_metrics_add(&n->metrics, GW_M_BYTES_RECEIVED, (int64_t)c->rx_len);
            c->rx_len = 0;
            if (inbound_allowed(w, c))
                send_error(w, c, WSG_CLIENT_ERR_BINARY_UNSUPPORTED,
                           "binary frames are not supported; send JSON text", NULL, NULL);
        }
        return 0;
    }

    if (final && c->rx_len == 0)
        /* The common case, a message in one piece, is taken in place. */
        return on_message(w, wsi, c, in, len);
    if ((size_t)c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < (size_t)c->rx_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        unsigned char *p = realloc(c->rx, cap);
        if (!p) {
            gw_conn_close(c, 1011, "out of memory", GW_M_CLOSED_OTHER);
            return 0;
        }
        c->rx = p;
        c->rx_cap = (uint32_t)cap;
    }
    /* An empty fragment adds nothing (and c->rx may not exist yet). */
    if (len) {
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += (uint32_t)len;
    }
    int r = 0;
    if (final) {
        size_t mlen = c->rx_len;
        c->rx_len = 0;
        r = on_message(w, wsi, c, c->rx, mlen);
        /* Large buffers are not kept for the connection's whole life. */
        if (c->rx_cap > 4096) {
            free(c->rx);
            c->rx = NULL;
            c->rx_cap = 0;
        }
    }
    return r;
}

/* The frame m is on c: its compressed form (built once per worker, shared by every
 * compressing connection) when c negotiated permessage-deflate and m is at least
 * WSGATE_COMPRESSION_MIN_BYTES and compresses to something smaller; else the plain one. */
static const unsigned char *frame_for(gw_worker *w, const gw_conn *c, gw_msg *m, size_t *len,
                                      int *compressed)
{
    const gw_config *cfg = gw_worker_node(w)->cfg;
    if ((c->flags & GW_CONN_F_Z) && m->len >= (uint64_t)cfg->compression_min_bytes &&
        gw_deflate_msg(gw_worker_deflate(w), m)) {
        *compressed = 1;
        return gw_msg_zframe(m, len);
    }
    *compressed = 0;
    return gw_msg_frame(m, len);
}

/* Written: the first count queued messages are gone, their last byte with the kernel.
 * each_frame: each went as its own frame (not in a batch, which counts its compression). */
static void written(gw_worker *w, gw_conn *c, uint32_t count, int each_frame)
{
    if (!count)
        return;
    gw_node *n = gw_worker_node(w);
    size_t before = c->q.bytes;
    int64_t now_us = wsg_now_us(), mono_us = wsg_mono_us();
    int64_t zin = 0, zout = 0;
    for (uint32_t i = 0; i < count; i++) {
        gw_msg *m = gw_outq_peek(&c->q);
        gw_metrics_stage(&n->metrics, GW_STAGE_SOCKET, mono_us - gw_outq_queued_us(&c->q, 0));
        gw_metrics_sent(&n->metrics, m, now_us);
        if (each_frame && (c->flags & GW_CONN_F_Z) && m->zstate == GW_MSG_Z_BUILT &&
            m->len >= (uint64_t)n->cfg->compression_min_bytes) {
            zin += m->len;
            zout += m->zlen;
        }
        gw_outq_pop(&c->q);
    }
    if (c->flags & GW_CONN_F_WELCOME_DUE) {
        /* a connection's first frame is its welcome (gw_resume holds back what comes
         * sooner), so it is among these */
        c->flags &= (uint8_t)~GW_CONN_F_WELCOME_DUE;
        gw_metrics_observe(&n->metrics, GW_M_HANDSHAKE,
                           (int64_t)(uint32_t)((uint32_t)mono_us - c->accepted_us32));
    }
    account(n, c, before);
    if (zin) {
        wsg_metrics_add(&n->metrics, GW_M_COMPRESSION_BYTES_IN, zin);
        wsg_metrics_add(&n->metrics, GW_M_COMPRESSION_BYTES_OUT, zout);
    }
}

/* The socket side of gw_outq_write: the connection's own fd, without lws (see flush). */
typedef struct wctx {
    gw_worker *w;
    gw_conn *c;
    int fd;
} wctx;

static const unsigned char *wctx_frame(void *ctx, gw_msg *m, size_t *len)
{
    wctx *x = ctx;
    int z;
    return frame_for(x->w, x->c, m, len, &z);
}

static void count_unpolled(gw_conn *c, ssize_t took)
{
    if (took > 0)
        c->unpolled = (uint16_t)(c->unpolled + (size_t)took > GW_WRITE_BATCH
                                     ? GW_WRITE_BATCH
                                     : c->unpolled + (size_t)took);
}

static ssize_t wctx_writev(void *ctx, const struct iovec *iov, int iovcnt)
{
    wctx *x = ctx;
    ssize_t took;
    if (iovcnt == 1) {
        took = send(x->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        took = sendmsg(x->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    count_unpolled(x->c, took);
    return took;
}

/* The kernel took part of a frame: lws gets the rest (LWS_WRITE_RAW, no header of its own),
 * keeps what the socket does not take and sends it on POLLOUT before anything else, its own
 * pong or close frame included, and only then calls the writeable callback again. That is
 * the one lws_write outside the writeable callback, and the reason for it: a control frame
 * lws writes by itself (the pong to a client's ping) must never land inside one of ours,
 * and only lws knows when it writes one. Rare: the direct writes ask poll(2) every
 * GW_WRITE_BATCH bytes. 0, or -1 when lws failed (the connection is lost). */
static int rest_to_lws(gw_conn *c, const unsigned char *rest, size_t len)
{
    if (lws_write(c->wsi, (unsigned char *)rest, len, LWS_WRITE_RAW) < (int)len) {
        wsg_debug("write_failed", "conn=%llu", (unsigned long long)c->id);
        return -1;
    }
    return 0;
}

/* For a batching client with several frames queued: one batch frame holding as many of them
 * as fit in GW_BATCH_MAX, compressed for this connection alone when it is big enough (a batch
 * is this connection's own, so it cannot be shared). What the kernel does not take of it goes
 * to lws (rest_to_lws). Returns the frames it held (the queue moved on), 0 when fewer than two
 * fit (the first then goes on its own) or the kernel took nothing (*full set), -1 on error. */
static int write_batch(gw_worker *w, gw_conn *c, wctx *x, int *full)
{
    gw_node *n = gw_worker_node(w);
    unsigned char *buf = gw_worker_batch_buf(w);
    if (!buf)
        return 0;
    unsigned char *payload = buf + (GW_WORKER_BATCH_BUF - GW_BATCH_MAX);
    gw_batch b;
    if (gw_batch_init(&b, payload, GW_BATCH_MAX))
        return 0;
    uint32_t count = 0;
    while (count < c->q.count) {
        gw_msg *m = gw_outq_at(&c->q, count);
        if (gw_batch_add(&b, gw_msg_payload(m), m->len))
            break;
        count++;
    }
    if (count < 2)
        return 0;
    size_t plen = gw_batch_finish(&b), wlen = plen;
    int z = 0;
    if ((c->flags & GW_CONN_F_Z) && plen >= (uint64_t)n->cfg->compression_min_bytes) {
        const unsigned char *zp;
        size_t zl;
        if (!gw_deflate_compress(gw_worker_deflate(w), payload, plen, &zp, &zl) && zl < plen) {
            memcpy(payload, zp, zl);
            wlen = zl;
            z = 1;
        }
    }
    uint8_t h = gw_frame_header(payload, wlen, z);
    size_t total = h + wlen;
    ssize_t took = send(x->fd, payload - h, total, MSG_NOSIGNAL | MSG_DONTWAIT);
    count_unpolled(c, took);
    if (took < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            wsg_debug("write_failed", "conn=%llu errno=%d", (unsigned long long)c->id, errno);
            return -1;
        }
        *full = 1;
        return 0; /* nothing taken: built again next time, perhaps with more */
    }
    if ((size_t)took < total) {
        if (rest_to_lws(c, payload - h + took, total - (size_t)took))
            return -1;
        *full = 1;
    }
    wsg_metrics_add(&n->metrics, GW_M_BATCH_FRAMES, 1);
    if (z) {
        wsg_metrics_add(&n->metrics, GW_M_COMPRESSION_BYTES_IN, (int64_t)plen);
        wsg_metrics_add(&n->metrics, GW_M_COMPRESSION_BYTES_OUT, (int64_t)wlen);
    }
    written(w, c, count, 0);
    return (int)count;
}

/* Writes what the socket takes now, from where the last write stopped, straight to the
 * socket: send(2)/sendmsg(2) on lws' fd, not lws_write (which may be called only from the
 * writeable callback). This is safe because the client vhost has no TLS (gw_worker: no
 * certificate, so lws adopts plain sockets; on_established refuses anything else), and
 * because lws' own buffer (a ping or close frame lws_write could not send at once) is empty
 * before anything is written here: lws sends that first and then calls back. Arms POLLOUT
 * when the kernel took less than offered. in_callback: called from the writeable callback,
 * where a queue still over its bound is judged too slow. Returns 0, or -1 when the socket
 * failed. */
static int flush(gw_worker *w, gw_conn *c, int in_callback)
{
    gw_node *n = gw_worker_node(w);
    if (c->close_started || gw_outq_empty(&c->q))
        goto done;
    if (lws_partial_buffered(c->wsi)) {
        lws_callback_on_writable(c->wsi);
        goto done;
    }
    wctx x = {w, c, lws_get_socket_fd(c->wsi)};
    int full = 0;
    while (!gw_outq_empty(&c->q) && !full) {
        int batching = c->flags & GW_CONN_F_BATCH;
        int64_t delay_ms = n->cfg->batch_delay_ms;
        if (batching && delay_ms > 0 && c->q.count == 1 && c->state == GW_CONN_OPEN) {
            /* A lone frame may wait WSGATE_BATCH_DELAY for company (the worker's hold list
             * says when it is over: no timer per connection). */
            if (c->hold == GW_CONN_HOLD_WAITING)
                break;
            if (c->hold == GW_CONN_HOLD_NONE && gw_worker_hold(w, c, delay_ms * 1000) == 0) {
                c->hold = GW_CONN_HOLD_WAITING;
                break;
            }
        }
        /* Every GW_WRITE_BATCH bytes, poll(2) is asked whether the socket is still writeable,
         * as lws_send_pipe_choked did before every write when lws_write wrote: a client that
         * stops reading is then cut off while its socket still has room for the close frame
         * (4008, which it reads when it reads again), instead of after the kernel took every
         * byte it could. Between two polls the writes cost nothing more. */
        if (c->unpolled >= GW_WRITE_BATCH) {
            if (lws_send_pipe_choked(c->wsi)) {
                full = 1;
                break;
            }
            c->unpolled = 0;
        }
        size_t budget = GW_WRITE_BATCH - c->unpolled;
        if (batching && c->q.count > 1) {
            int r = write_batch(w, c, &x, &full);
            if (r < 0)
                return -1;
            if (r > 0 || full)
                continue;
        }
        uint32_t done;
        size_t partial;
        gw_outq_wstatus st = gw_outq_write(&c->q, batching ? 1 : UINT32_MAX, budget, wctx_frame,
                                           wctx_writev, &x, &done, &partial);
        written(w, c, done, 1);
        if (st == GW_OUTQ_W_ERROR) {
            wsg_debug("write_failed", "conn=%llu errno=%d", (unsigned long long)c->id, errno);
            return -1;
        }
        full = st == GW_OUTQ_W_FULL;
        if (partial) {
            size_t len;
            const unsigned char *f = wctx_frame(&x, gw_outq_peek(&c->q), &len);
            if (rest_to_lws(c, f + partial, len - partial))
                return -1;
            written(w, c, 1, 1);
            full = 1;
        }
    }
    if (full) {
        /* The queue bound is judged where the client had its chance to read: once the
         * socket was writeable again and took what it could. */
        if (in_callback && c->q.bytes > (size_t)n->cfg->outbound_queue_bytes)
            slow_consumer(n, c, "queue_full"); /* the socket is full and so is the queue */
        lws_callback_on_writable(c->wsi);
    }
done:
    if (c->hold == GW_CONN_HOLD_OVER && gw_outq_empty(&c->q))
        c->hold = GW_CONN_HOLD_NONE;
    if (c->state == GW_CONN_OPEN)
        gw_resume_writeable(w, c);
    else if (c->state == GW_CONN_CLOSING && !in_callback && gw_outq_empty(&c->q))
        lws_callback_on_writable(c->wsi); /* the close frame goes from the callback */
    return 0;
}

void gw_conn_hold_over(gw_worker *w, gw_conn *c)
{
    if (c->hold != GW_CONN_HOLD_WAITING)
        return;
    c->hold = GW_CONN_HOLD_OVER;
    touch(w, c);
}

/* ---- permessage-deflate negotiation ---- */

int gw_conn_deflate_offer(gw_worker *w, struct lws *wsi, gw_conn *c)
{
    gw_deflate *d = gw_worker_deflate(w);
    /* One offer is taken at most (lws would ask again for a second permessage-deflate). */
    if (!d || (c->flags & GW_CONN_F_Z_OFFER))
        return 1;
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_EXTENSIONS);
    if (total <= 0)
        return 1;
    char *h = malloc((size_t)total + 1);
    if (!h)
        return 1;
    int ok = lws_hdr_copy(wsi, h, total + 1, WSI_TOKEN_EXTENSIONS) >= 0 &&
             gw_deflate_offer_ok(h, gw_deflate_window_bits(d));
    if (!ok)
        wsg_debug("deflate_offer_declined", "offer=\"%s\"", h);
    free(h);
    if (!ok)
        return 1;
    c->flags |= GW_CONN_F_Z_OFFER;
    return 0;
}

/* lws 4.1.6 (the version wsgate is built against, Debian 12's) writes
 * "Sec-WebSocket-Extensions: permessage-deflate" plus only the arg-less options the client
 * itself offered, then "\r\n", then asks for more headers here with args->p right after it.
 * Browsers and Node's ws offer only client_max_window_bits, so lws could never say
 * server_no_context_takeover, client_no_context_takeover or server_max_window_bits=N, which are
 * what let the gateway share one compressed frame among all connections and keep no zlib state
 * per connection. So the line lws just wrote is checked byte for byte and completed. If it is
 * not what this lws writes, the connection does not compress (logged): outbound frames go
 * uncompressed, and inbound compressed ones are still inflated one by one (a client using
 * context takeover then fails with 1007 rather than being misread). */
int gw_conn_add_headers(gw_worker *w, gw_conn *c, struct lws_process_html_args *args)
{
    if (!(c->flags & GW_CONN_F_Z_OFFER) || (c->flags & GW_CONN_F_Z) || !args || !args->p)
        return 0;
    gw_deflate *d = gw_worker_deflate(w);
    /* lws wrote the status line and Sec-WebSocket-Accept before the suffix: more than the
     * suffix's length is readable before args->p. */
    char *end = d && args->max_len > 0
                    ? gw_deflate_patch_response(args->p, (size_t)args->max_len,
                                                gw_deflate_window_bits(d))
                    : NULL;
    if (!end) {
        wsg_log_every(1000, WSG_LOG_ERROR, "deflate_response_unexpected",
                      "reason=\"lws did not write the expected extension header\"");
        return 0;
    }
    args->max_len -= (int)(end - args->p);
    args->p = end;
    c->flags |= GW_CONN_F_Z;
    return 0;
}

void gw_conn_idle_check(gw_worker *w, gw_conn *c, int64_t now_mono_us)
{
    const gw_config *cfg = gw_worker_node(w)->cfg;
    if (c->state == GW_CONN_CLOSING && c->close_by_us && !c->close_started &&
        now_mono_us >= c->close_by_us) {
        /* A client that does not read must not keep a connection it was told to leave: what
         * it has not taken is dropped, and the close frame goes next (lws sends it even to a
         * full socket, buffered), with lws' own close timeout behind it. */
        wsg_debug("close_order_flush_timeout", "conn=%llu queued_bytes=%zu",
                  (unsigned long long)c->id, c->q.bytes);
        c->close_by_us = 0;
        if (lws_partial_buffered(c->wsi)) {
            /* lws still holds the rest of one of our frames and the close frame can only
             * follow it: one last wait for the client to read it, then it is dropped */
            if (c->flags & GW_CONN_F_LAST_WAIT) {
                c->close_started = 1;
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                return;
            }
            c->flags |= GW_CONN_F_LAST_WAIT;
            c->close_by_us = now_mono_us + GW_CONN_SLOW_CLOSE_US;
        }
        drop_queue(gw_worker_node(w), c);
        lws_callback_on_writable(c->wsi);
        return;
    }
    if (c->state != GW_CONN_OPEN)
        return;
    /* An idle connection holds no queue ring (80 bytes of heap, 3 % of one): one free and
     * one malloc per sweep period at most for a busy one. */
    gw_outq_trim(&c->q);
    /* exp is wall-clock time, as the issuer wrote it; the sweep makes the close at most a
     * sweep period late */
    if (c->exp && wsg_now_us() >= ((int64_t)c->exp + gw_auth_leeway_s(gw_worker_node(w)->auth)) *
                                      1000000) {
        wsg_metrics_add(&gw_worker_node(w)->metrics, GW_M_TOKENS_EXPIRED, 1);
        wsg_debug("token_expired", "conn=%llu user=\"%s\"", (unsigned long long)c->id, c->user);
        gw_conn_close(c, 4001, gw_auth_result_reason(GW_AUTH_EXPIRED), GW_M_CLOSED_AUTH);
        /* a client that does not read cannot keep an expired connection by not reading */
        c->close_by_us = now_mono_us + GW_CONN_CLOSE_FLUSH_US;
        return;
    }
    int64_t silent = now_mono_us - c->last_rx_us;
    if (silent >= cfg->ping_timeout_ms * 1000) {
        wsg_debug("idle_timeout", "conn=%llu user=\"%s\"", (unsigned long long)c->id, c->user);
        c->state = GW_CONN_CLOSING;
        c->close_metric = GW_M_CLOSED_IDLE;
        c->close_started = 1;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else if (silent >= cfg->ping_interval_ms * 1000 && !c->ping) {
        c->ping = 1;
        lws_callback_on_writable(c->wsi);
    }
}

/* A ping (lws_write) goes only between two of our frames: lws holds nothing of its own (the
 * rest of a frame the kernel took part of goes to lws: rest_to_lws). */
static int send_ping(struct lws *wsi, gw_conn *c)
{
    if (c->ping != 1 || lws_partial_buffered(wsi))
        return 0;
    /* lws 4.1 hands a pong to the protocol only if it carries a payload. */
    unsigned char ping[LWS_PRE + 4] = {[LWS_PRE] = 'w', 's', 'g', 'p'};
    if (lws_write(wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 0)
        return -1;
    c->ping = 2;
    return 0;
}

static int on_writeable(gw_worker *w, struct lws *wsi, gw_conn *c)
{
    /* lws is sending our close frame and waiting for the client's answer; asking again would
     * make it drop the connection at once, losing the close frame (a 1006 for the client). */
    if (c->close_started)
        return 0;
    c->unpolled = 0; /* POLLOUT: writeable */
    if (send_ping(wsi, c) < 0 || flush(w, c, 1) < 0 || send_ping(wsi, c) < 0)
        return -1;
    if (c->ping == 1)
        lws_callback_on_writable(wsi); /* after what lws still holds */
    if (c->state == GW_CONN_CLOSING && gw_outq_empty(&c->q)) {
        if (lws_partial_buffered(wsi)) {
            /* flush just gave lws the rest of a frame: the close frame goes after it, at the
             * writeable callback lws makes once it is sent */
            lws_callback_on_writable(wsi);
            return 0;
        }
        const char *reason = c->close_reason ? c->close_reason : "";
        lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)reason,
                         strlen(reason));
        c->close_started = 1;
        return -1;
    }
    return 0;
}

static void on_closed(gw_worker *w, gw_conn *c)
{
    gw_node *n = gw_worker_node(w);
    /* Closing: the gateway chose the close and its reason (a close code, or none for a dead
     * peer). */
    gw_metric_id why = c->state == GW_CONN_CLOSING ? (gw_metric_id)c->close_metric
                       : c->peer_closed ? GW_M_CLOSED_PEER
                                        : GW_M_CLOSED_OTHER;
    if (c->close_metric != GW_M__COUNT)
        wsg_metrics_add(&n->metrics, why, 1);
    if (c->id) {
        gw_worker_remove_conn(w, c);
        wsg_metrics_add(&n->metrics, GW_M_CONNECTIONS, -1);
        if (c->flags & GW_CONN_F_Z)
            wsg_metrics_add(&n->metrics, GW_M_COMPRESSED_CONNECTIONS, -1);
        if (gw_bus_publish_conn(n->bus, WSGATE__CONN_EVENT__KIND__CLOSE, gw_worker_index(w),
                                gw_worker_next_event_seq(w), c->id, c->user, c->connected_us,
                                NULL))
            wsg_warn("conn_event_not_published", "conn=%llu user=\"%s\" kind=close",
                     (unsigned long long)c->id, c->user);
        wsg_log_level lv = n->cfg->log_connections ? WSG_LOG_INFO : WSG_LOG_DEBUG;
        if (wsg_log_enabled(lv)) {
            char ip[GW_PEER_TEXT_MAX];
            gw_peer_text(c->client_ip, ip);
            /* code: the gateway's close code, or the client's (0: none, the link died); a
             * close counted when it was decided (fail_now: a protocol violation) has no
             * reason left here */
            char reason[32] = "protocol";
            const char *label = why < GW_M__COUNT ? gw_metric_descs[why].labels : NULL;
            const char *q = label ? strchr(label, '"') : NULL; /* reason="<it>" */
            size_t rn = q ? strcspn(q + 1, "\"") : 0;
            if (q && rn < sizeof(reason)) {
                memcpy(reason, q + 1, rn);
                reason[rn] = '\0';
            }
            wsg_log(lv, "conn_closed", "conn=%llu user=\"%s\" client_ip=%s code=%u reason=%s "
                    "seconds=%.3f", (unsigned long long)c->id, c->user, ip,
                    (unsigned)c->close_code, reason,
                    (double)(wsg_now_us() - c->connected_us) / 1e6);
        }
        c->id = 0;
    }
    pending_free(c);
    gw_worker_sweep_remove(w, c);
    drop_queue(n, c);
    rpc_drop_all(w, c);
    gw_chan_close(w, c);
    gw_resume_free(w, c);
    gw_auth_perm_free(c->perm);
    c->perm = NULL;
    free(c->rx);
    c->rx = NULL;
    c->rx_cap = c->rx_len = 0;
    c->close_reason = NULL;
    free(c->close_text);
    c->close_text = NULL;
}

int gw_conn_callback(gw_worker *w, struct lws *wsi, enum lws_callback_reasons reason,
                     gw_conn *c, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(w, wsi, c);
    case LWS_CALLBACK_RECEIVE:
        return on_receive(w, wsi, c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(w, wsi, c);
    case LWS_CALLBACK_RECEIVE_PONG:
        c->last_rx_us = wsg_mono_us();
        c->ping = 0;
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        c->peer_closed = 1;
        /* the client's close code, for the log (the gateway's own, if it chose one, stands) */
        if (c->state != GW_CONN_CLOSING && in && len >= 2)
            c->close_code = (uint16_t)(((const unsigned char *)in)[0] << 8 |
                                       ((const unsigned char *)in)[1]);
        return 0;
    case LWS_CALLBACK_CLOSED:
        on_closed(w, c);
        return 0;
    default:
        return 0;
    }
}
