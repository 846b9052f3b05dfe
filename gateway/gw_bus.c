/* gw_bus: NATS transport for the gateway; see gw_bus.h. */
#include "gw_bus.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "gw_metrics.h"
#include "gw_peer.h"
#include "wsg_log.h"
#include "wsg_nats.h"
#include "wsg_pb.h"
#include "wsg_subject.h"
#include "wsg_time.h"

struct gw_bus {
    wsg_nats nats;
    natsSubscription *sub;
    natsSubscription *sub_resync;
    natsSubscription *sub_inbox;
    /* Replies to this node's history requests, <inbox>.<conn>.<stream>.<reqno> (stream: the
     * index of the stream in the connection's list, checked by the connection), where the inbox
     * is <prefix>.reply.<node_id>.<random>: under the prefix rather than _INBOX, so that NATS
     * permissions can give it to gateways alone (replies carry users' messages). */
    char inbox[WSG_SUBJECT_MAX];
    gw_bus_cfg cfg;
    char *prefix;
    char *node_id;
    char subj_conn[WSG_SUBJECT_MAX];
    char subj_hb[WSG_SUBJECT_MAX];
    char subj_node[WSG_SUBJECT_MAX];
    char subj_resync[WSG_SUBJECT_MAX];
    char subj_history[WSG_SUBJECT_MAX];
};

static void on_connected(void *arg)
{
    gw_bus *b = arg;
    wsg_metrics_set(b->cfg.metrics, GW_M_NATS_CONNECTED, 1);
    wsg_metrics_set(b->cfg.metrics, GW_M_NATS_RECONNECTS, b->nats.reconnects);
    if (b->cfg.on_state)
        b->cfg.on_state(b->cfg.arg, 1);
}

static void on_disconnected(void *arg)
{
    gw_bus *b = arg;
    wsg_metrics_set(b->cfg.metrics, GW_M_NATS_CONNECTED, 0);
    if (b->cfg.on_state)
        b->cfg.on_state(b->cfg.arg, 0);
}

/* Everything on our node subject comes from a router, but is still a peer's input: decode,
 * check it is addressed to this node and this life of it, and count what is dropped. */
static void on_node_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    gw_bus *b = closure;
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    Wsgate__NodeDelivery *nd = wsgate__node_delivery__unpack(NULL, len, data);
    if (!nd) {
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        wsg_warn("node_delivery_undecodable", "bytes=%zu", len);
        goto out;
    }
    if (!nd->node_id || strcmp(nd->node_id, b->node_id) != 0) {
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_BAD_MESSAGE, (int64_t)nd->n_items);
        wsg_warn("node_delivery_wrong_node", "items=%zu", nd->n_items);
        goto out;
    }
    if (nd->node_epoch != 0 && nd->node_epoch != b->cfg.node_epoch) {
        /* Meant for an earlier life of this node id: those connections are gone. */
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_STALE_EPOCH, (int64_t)nd->n_items);
        wsg_debug("node_delivery_stale", "epoch=%llu items=%zu",
                  (unsigned long long)nd->node_epoch, nd->n_items);
        goto out;
    }
    b->cfg.on_delivery(b->cfg.arg, nd);
out:
    if (nd)
        wsgate__node_delivery__free_unpacked(nd, NULL);
    natsMsg_Destroy(msg);
}

static void on_resync_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    gw_bus *b = closure;
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    Wsgate__ResyncRequest *rq = wsgate__resync_request__unpack(NULL, len, data);
    if (!rq) {
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        wsg_warn("resync_request_undecodable", "bytes=%zu", len);
    } else if (!rq->node_id || !rq->node_id[0] || strcmp(rq->node_id, b->node_id) == 0) {
        const char *reason = rq->reason && wsg_pb_str_ok(rq->reason, 128) ? rq->reason : "";
        /* debug: requests may come at any rate; the workers bound what they cost */
        wsg_debug("resync_requested", "reason=\"%s\"", reason);
        if (b->cfg.on_resync)
            b->cfg.on_resync(b->cfg.arg, reason);
    }
    if (rq)
        wsgate__resync_request__free_unpacked(rq, NULL);
    natsMsg_Destroy(msg);
}

/* <inbox>.r.<conn>.<reqno>: an RPC's answer; the service's payload must be a JSON object. */
static void on_rpc_reply(gw_bus *b, const char *rest, natsMsg *msg)
{
    unsigned long long conn = 0;
    unsigned reqno = 0;
    char tail;
    if (sscanf(rest, "%llu.%u%c", &conn, &reqno, &tail) != 2 || !reqno) {
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        return;
    }
    if (natsMsg_IsNoResponders(msg)) {
        b->cfg.on_rpc(b->cfg.arg, conn, reqno, GW_BUS_RPC_NO_HANDLER, NULL);
        return;
    }
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    json_error_t jerr;
    /* jansson checks the UTF-8 too: what reaches the client is valid JSON text */
    json_t *j = data && len > 0 ? json_loadb(data, (size_t)len, JSON_REJECT_DUPLICATES, &jerr)
                                : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        b->cfg.on_rpc(b->cfg.arg, conn, reqno, GW_BUS_RPC_BAD_REPLY, NULL);
        return;
    }
    b->cfg.on_rpc(b->cfg.arg, conn, reqno, GW_BUS_RPC_REPLY, j);
}

/* <inbox>.u.<conn>.<reqno>.<type>: a forwarded frame's answer, wanted only when it says that
 * nobody listens (reqno 0: the frame had no id, or too many were waiting). */
static void on_forward_reply(gw_bus *b, const char *rest, natsMsg *msg)
{
    unsigned long long conn = 0;
    unsigned reqno = 0;
    int off = 0;
    if (sscanf(rest, "%llu.%u.%n", &conn, &reqno, &off) != 2 || !off) {
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        return;
    }
    if (!natsMsg_IsNoResponders(msg))
        return; /* a service answered a frame that asked for nothing: ignored */
    if (b->cfg.on_unhandled)
        b->cfg.on_unhandled(b->cfg.arg, rest + off);
    if (reqno)
        b->cfg.on_rpc(b->cfg.arg, conn, reqno, GW_BUS_RPC_NO_HANDLER, NULL);
}

static void on_inbox_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    gw_bus *b = closure;
    const char *subj = natsMsg_GetSubject(msg);
    size_t plen = strlen(b->inbox);
    unsigned long long conn = 0;
    unsigned stream = 0, reqno = 0;
    char tail;
    if (strncmp(subj, b->inbox, plen) == 0 && subj[plen] == '.' &&
        (subj[plen + 1] == 'r' || subj[plen + 1] == 'u') && subj[plen + 2] == '.') {
        if (subj[plen + 1] == 'r')
            on_rpc_reply(b, subj + plen + 3, msg);
        else
            on_forward_reply(b, subj + plen + 3, msg);
        natsMsg_Destroy(msg);
        return;
    }
    if (strncmp(subj, b->inbox, plen) != 0 || subj[plen] != '.' ||
        sscanf(subj + plen + 1, "%llu.%u.%u%c", &conn, &stream, &reqno, &tail) != 3) {
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        natsMsg_Destroy(msg);
        return;
    }
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    /* No router is subscribed: the server answers with an empty "no responders" status, which
     * would otherwise decode as an empty, successful reply. */
    Wsgate__HistoryReply *hr = natsMsg_IsNoResponders(msg) || len == 0
                                   ? NULL
                                   : wsgate__history_reply__unpack(NULL, len, data);
    if (!hr && len) {
        wsg_metrics_add(b->cfg.metrics, GW_M_DROPPED_BAD_MESSAGE, 1);
        wsg_warn("history_reply_undecodable", "bytes=%zu", len);
    }
    /* A NULL reply still reaches the connection, which then retries or gives up visibly. */
    b->cfg.on_history(b->cfg.arg, conn, stream, reqno, hr);
    natsMsg_Destroy(msg);
}

int gw_bus_open(gw_bus **out, const gw_bus_cfg *cfg)
{
    gw_bus *b = calloc(1, sizeof(*b));
    if (!b)
        return -1;
    b->cfg = *cfg;
    b->prefix = strdup(cfg->prefix);
    b->node_id = strdup(cfg->node_id);
    if (!b->prefix || !b->node_id)
        goto fail;
    if (wsg_subject_fmt(b->subj_conn, sizeof(b->subj_conn), b->prefix, "conn") ||
        wsg_subject_fmt(b->subj_hb, sizeof(b->subj_hb), b->prefix, "hb") ||
        wsg_subject_fmt(b->subj_node, sizeof(b->subj_node), b->prefix, "node.%s", b->node_id) ||
        wsg_subject_fmt(b->subj_resync, sizeof(b->subj_resync), b->prefix, "resync") ||
        wsg_subject_fmt(b->subj_history, sizeof(b->subj_history), b->prefix, "history"))
        goto fail;

    char name[128];
    snprintf(name, sizeof(name), "wsgate-gateway %s", b->node_id);
    wsg_nats_cfg nc = {
        .urls = cfg->urls,
        .auth = cfg->auth,
        .name = name,
        .ordered_delivery = 0,
        .reconnect_buf = cfg->reconnect_buf,
        .on_connected = on_connected,
        .on_disconnected = on_disconnected,
        .arg = b,
    };
    natsStatus s = wsg_nats_open(&b->nats, &nc);
    if (s != NATS_OK) {
        wsg_error("nats_open_failed", "err=\"%s\"", natsStatus_GetText(s));
        goto fail;
    }
    /* The subscription is registered even before the first connect succeeds; nats.c sends it
     * to every server it (re)connects to. */
    s = natsConnection_Subscribe(&b->sub, b->nats.conn, b->subj_node, on_node_msg, b);
    if (s == NATS_OK)
        /* A burst of deliveries must not be dropped by the client library's default
         * pending limit: the workers' own queues bound memory per connection. */
        s = natsSubscription_SetPendingLimits(b->sub, -1, 256 * 1024 * 1024);
    if (s != NATS_OK) {
        wsg_error("nats_subscribe_failed", "subject=%s err=\"%s\"", b->subj_node,
                  natsStatus_GetText(s));
        goto fail;
    }
    natsInbox *inbox = NULL;
    if (natsInbox_Create(&inbox) != NATS_OK) {
        wsg_error("nats_inbox_failed", NULL);
        goto fail;
    }
    const char *nuid = strrchr((const char *)inbox, '.');
    int bad_inbox = wsg_subject_fmt(b->inbox, sizeof(b->inbox), b->prefix, "reply.%s.%s",
                                    b->node_id, nuid ? nuid + 1 : (const char *)inbox);
    natsInbox_Destroy(inbox);
    if (bad_inbox) {
        wsg_error("nats_inbox_failed", NULL);
        goto fail;
    }
    char inbox_all[sizeof(b->inbox) + 4];
    snprintf(inbox_all, sizeof(inbox_all), "%s.>", b->inbox);
    s = natsConnection_Subscribe(&b->sub_inbox, b->nats.conn, inbox_all, on_inbox_msg, b);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(b->sub_inbox, -1, 256 * 1024 * 1024);
    if (s != NATS_OK) {
        wsg_error("nats_subscribe_failed", "subject=%s err=\"%s\"", inbox_all,
                  natsStatus_GetText(s));
        goto fail;
    }
    s = natsConnection_Subscribe(&b->sub_resync, b->nats.conn, b->subj_resync, on_resync_msg, b);
    if (s != NATS_OK) {
        wsg_error("nats_subscribe_failed", "subject=%s err=\"%s\"", b->subj_resync,
                  natsStatus_GetText(s));
        goto fail;
    }
    *out = b;
    return 0;
fail:
    gw_bus_close(b, 0);
    return -1;
}

void gw_bus_close(gw_bus *b, int64_t timeout_ms)
{
    if (!b)
        return;
    /* Draining waits until a callback that is running has returned, so nothing of ours runs
     * on a nats.c thread after this; without a connection, unsubscribing is all there is. */
    natsSubscription *subs[3] = {b->sub, b->sub_resync, b->sub_inbox};
    for (int i = 0; i < 3; i++) {
        if (!subs[i])
            continue;
        if (natsSubscription_Drain(subs[i]) != NATS_OK ||
            natsSubscription_WaitForDrainCompletion(subs[i], timeout_ms > 0 ? timeout_ms : 1) !=
                NATS_OK)
            natsSubscription_Unsubscribe(subs[i]);
        natsSubscription_Destroy(subs[i]);
    }
    wsg_nats_close(&b->nats, timeout_ms);
    free(b->prefix);
    free(b->node_id);
    free(b);
}

int gw_bus_connected(const gw_bus *b)
{
    return atomic_load(&b->nats.connected);
}

/* Client frames are published on the worker's thread, one per message: small ones are packed
 * on the stack (nats.c copies what it sends), only large ones cost an allocation. */
#define GW_BUS_STACK_PACK 4096

/* reply: the subject answers go to, or NULL. */
static int publish(gw_bus *b, const char *subject, const char *reply, const ProtobufCMessage *m)
{
    uint8_t stack[GW_BUS_STACK_PACK];
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *data = len <= sizeof(stack) ? stack : malloc(len);
    if (!data || len > INT_MAX) {
        if (data != stack)
            free(data);
        wsg_metrics_add(b->cfg.metrics, GW_M_NATS_PUBLISH_ERRORS, 1);
        return -1;
    }
    protobuf_c_message_pack(m, data);
    natsStatus s = reply ? natsConnection_PublishRequest(b->nats.conn, subject, reply, data, (int)len)
                         : natsConnection_Publish(b->nats.conn, subject, data, (int)len);
    if (data != stack)
        free(data);
    if (s != NATS_OK) {
        wsg_metrics_add(b->cfg.metrics, GW_M_NATS_PUBLISH_ERRORS, 1);
        wsg_debug("nats_publish_failed", "subject=%s err=\"%s\"", subject, natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

int gw_bus_publish_inbound(gw_bus *b, uint64_t conn_id, const char *user_id,
                           const uint8_t client_ip[16], const char *type, const void *payload,
                           size_t len, int64_t received_us, gw_bus_reply_kind reply_kind,
                           uint32_t reqno)
{
    char subject[WSG_SUBJECT_MAX];
    if (wsg_subject_fmt(subject, sizeof(subject), b->prefix, "in.%s", type))
        return -1;
    /* Under this node's inbox (see `inbox`): a service answers there, and NATS tells there
     * when nobody is subscribed to the type. */
    char reply[sizeof(b->inbox) + WSG_TYPE_MAX + 64];
    int rl = 0;
    if (reply_kind == GW_BUS_RPC)
        rl = snprintf(reply, sizeof(reply), "%s.r.%llu.%u", b->inbox,
                      (unsigned long long)conn_id, reqno);
    else if (reply_kind == GW_BUS_FORWARD)
        rl = snprintf(reply, sizeof(reply), "%s.u.%llu.%u.%s", b->inbox,
                      (unsigned long long)conn_id, reqno, type);
    if (rl < 0 || (size_t)rl >= sizeof(reply))
        return -1;
    Wsgate__InboundFrame f = WSGATE__INBOUND_FRAME__INIT;
    f.node_id = b->node_id;
    f.node_epoch = b->cfg.node_epoch;
    f.conn_id = conn_id;
    f.user_id = (char *)user_id;
    f.type = (char *)type;
    f.payload.data = (uint8_t *)payload;
    f.payload.len = len;
    f.received_at_us = received_us;
    f.permitted = 1; /* only frames the gateway's checks allowed are published */
    char ip[GW_PEER_TEXT_MAX];
    if (client_ip) {
        gw_peer_text(client_ip, ip);
        f.client_ip = ip;
    }
    return publish(b, subject, reply_kind == GW_BUS_NO_REPLY ? NULL : reply, &f.base);
}

int gw_bus_publish_conn(gw_bus *b, Wsgate__ConnEvent__Kind kind, uint32_t stream, uint64_t seq,
                        uint64_t conn_id, const char *user_id, int64_t connected_us,
                        const char *channel)
{
    Wsgate__Conn c = WSGATE__CONN__INIT;
    c.conn_id = conn_id;
    c.user_id = (char *)user_id;
    c.connected_at_us = connected_us;
    Wsgate__Conn *conns[1] = {&c};
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = kind;
    ev.node_id = b->node_id;
    ev.node_epoch = b->cfg.node_epoch;
    ev.stream = stream;
    ev.seq = seq;
    ev.n_conns = 1;
    ev.conns = conns;
    ev.at_us = wsg_now_us();
    if (channel)
        ev.channel = (char *)channel;
    return publish(b, b->subj_conn, NULL, &ev.base);
}

int gw_bus_request_history(gw_bus *b, const Wsgate__HistoryRequest *rq, uint64_t conn_id,
                           unsigned stream, uint32_t reqno)
{
    char reply[sizeof(b->inbox) + 48];
    snprintf(reply, sizeof(reply), "%s.%llu.%u.%u", b->inbox, (unsigned long long)conn_id, stream,
             reqno);
    return publish(b, b->subj_history, reply, &rq->base);
}

int gw_bus_publish_resync(gw_bus *b, uint32_t stream, uint64_t seq, Wsgate__Conn **conns,
                          size_t n, int more)
{
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = WSGATE__CONN_EVENT__KIND__RESYNC;
    ev.node_id = b->node_id;
    ev.node_epoch = b->cfg.node_epoch;
    ev.stream = stream;
    ev.seq = seq;
    ev.n_conns = n;
    ev.conns = conns;
    ev.at_us = wsg_now_us();
    ev.more = more != 0;
    return publish(b, b->subj_conn, NULL, &ev.base);
}

int gw_bus_publish_heartbeat(gw_bus *b, const gw_bus_hb *h)
{
    Wsgate__NodeHeartbeat hb = WSGATE__NODE_HEARTBEAT__INIT;
    hb.node_id = b->node_id;
    hb.node_epoch = b->cfg.node_epoch;
    hb.connections = h->connections;
    hb.draining = h->draining != 0;
    hb.at_us = wsg_now_us();
    hb.interval_ms = h->interval_ms;
    hb.frames_sent = h->frames_sent;
    hb.frames_received = h->frames_received;
    return publish(b, b->subj_hb, NULL, &hb.base);
}
