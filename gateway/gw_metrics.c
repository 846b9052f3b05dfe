/* gw_metrics: descriptor table and per-frame helpers. Series of one family are adjacent, as
 * wsg_metrics needs. */
#include "gw_metrics.h"

#define CLOSED(label) \
    {"wsgate_connections_closed_total", "reason=\"" label "\"", WSG_METRIC_COUNTER, \
     "WebSocket connections closed, by reason"}
#define AUTHF(label) \
    {"wsgate_auth_failures_total", "reason=\"" label "\"", WSG_METRIC_COUNTER, \
     "Connections refused for bad or missing credentials, by reason"}
#define REFRESH(label) \
    {"wsgate_token_refreshes_total", "outcome=\"" label "\"", WSG_METRIC_COUNTER, \
     "In-band token refreshes, by outcome (wrong_sub: another user's token, answered forbidden)"}
#define JWKS(label) \
    {"wsgate_jwks_fetches_total", "outcome=\"" label "\"", WSG_METRIC_COUNTER, \
     "Fetches of WSGATE_JWT_JWKS_URL, by outcome (invalid: not a usable JWKS)"}
#define REJ(label) \
    {"wsgate_frames_rejected_total", "reason=\"" label "\"", WSG_METRIC_COUNTER, \
     "Client frames refused, by reason"}
#define PROXYERR(label) \
    {"wsgate_proxy_protocol_errors_total", "reason=\"" label "\"", WSG_METRIC_COUNTER, \
     "Client connections refused for their PROXY header (WSGATE_PROXY_PROTOCOL), by reason"}
#define LIMIT(label) \
    {"wsgate_limit_rejections_total", "limit=\"" label "\"", WSG_METRIC_COUNTER, \
     "Connections or frames refused by a limit, by limit"}
#define INB(label) \
    {"wsgate_inbound_frames_total", "type=\"" label "\"", WSG_METRIC_COUNTER, \
     "Client messages past the inbound rate limit, by type (invalid: answered with an error)"}
#define INB_BYTES(label) \
    {"wsgate_inbound_bytes_total", "type=\"" label "\"", WSG_METRIC_COUNTER, \
     "Payload bytes of client messages past the inbound rate limit, by type"}
#define SENT(label) \
    {"wsgate_frames_sent_total", "stream=\"" label "\"", WSG_METRIC_COUNTER, \
     "Messages written to clients, by stream (none: welcome, pong, error, receipts)"}
#define SENT_BYTES(label) \
    {"wsgate_sent_bytes_total", "stream=\"" label "\"", WSG_METRIC_COUNTER, \
     "Payload bytes of messages written to clients, by stream"}
#define BYSERVER(label) \
    {"wsgate_closed_by_server_total", "code=\"" label "\"", WSG_METRIC_COUNTER, \
     "Connections closed by a router's close order (disconnect, user limit), by close code"}
#define RPC(label) \
    {"wsgate_rpc_requests_total", "outcome=\"" label "\"", WSG_METRIC_COUNTER, \
     "Client RPCs, by outcome (rejected: refused before reaching NATS)"}
#define DROP(label) \
    {"wsgate_deliveries_dropped_total", "reason=\"" label "\"", WSG_METRIC_COUNTER, \
     "Deliveries from NATS not queued to a connection, by reason"}

/* 0.5 ms to 10 s: a healthy cluster delivers in a few ms; tens of seconds only happen to a
 * message that waited in history for its client (resume, offline), which +Inf takes. */
static const int64_t latency_le_us[] = {500,    1000,    2500,    5000,    10000,
                                        25000,  50000,   100000,  250000,  500000,
                                        1000000, 2500000, 5000000, 10000000};
static const wsg_metric_buckets latency_buckets = {
    latency_le_us, sizeof(latency_le_us) / sizeof(latency_le_us[0]), 1000000};

/* 50 us to 2.5 s: a stage is a queue inside one process; most waits are well under a ms,
 * and one that takes seconds is an outage, which +Inf takes. */
static const int64_t stage_le_us[] = {50,    100,    250,    500,    1000,    2500,   5000,  10000,
                                      25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
static const wsg_metric_buckets stage_buckets = {
    stage_le_us, sizeof(stage_le_us) / sizeof(stage_le_us[0]), 1000000};

/* 5 ms to 5 s: what a client waits for its welcome (the "connect < 50 ms"). */
static const int64_t handshake_le_us[] = {5000,   10000,  25000,   50000,
                                          100000, 250000, 1000000, 5000000};
static const wsg_metric_buckets handshake_buckets = {
    handshake_le_us, sizeof(handshake_le_us) / sizeof(handshake_le_us[0]), 1000000};

#define STAGE(label) \
    {"wsgate_stage_latency_seconds", "stage=\"" label "\"", WSG_METRIC_HISTOGRAM, \
     "Time an item spent in one stage of the process's pipeline, by stage (nats_to_worker: " \
     "NATS callback to its worker's job; socket: frame queued to its last byte written; " \
     "connect_upgrade: TCP accept to WebSocket upgrade; connect_history: connection " \
     "registered to its welcome queued)"}

const wsg_metric_desc gw_metric_descs[GW_M__COUNT] = {
    [GW_M_COMPRESSION_BYTES_IN] = {"wsgate_compression_bytes_in_total", NULL, WSG_METRIC_COUNTER,
                                   "Payload bytes of frames written compressed, before "
                                   "compression"},
    [GW_M_COMPRESSION_BYTES_OUT] = {"wsgate_compression_bytes_out_total", NULL,
                                    WSG_METRIC_COUNTER,
                                    "Payload bytes of frames written compressed, after "
                                    "compression (as on the wire)"},
    [GW_M_COMPRESSED_CONNECTIONS] = {"wsgate_compressed_connections", NULL, WSG_METRIC_GAUGE,
                                     "Connections that negotiated permessage-deflate"},
    [GW_M_BATCH_FRAMES] = {"wsgate_batch_frames_total", NULL, WSG_METRIC_COUNTER,
                           "Batch frames written (each holds several frames)"},
    [GW_M_CONNECTIONS] = {"wsgate_connections", NULL, WSG_METRIC_GAUGE,
                          "Authenticated WebSocket connections open now"},
    [GW_M_CONNECTIONS_OPENED] = {"wsgate_connections_opened_total", NULL, WSG_METRIC_COUNTER,
                                 "Authenticated WebSocket connections opened"},
    [GW_M_CLOSED_PEER] = CLOSED("peer"),
    [GW_M_CLOSED_AUTH] = CLOSED("auth"),
    [GW_M_CLOSED_TOO_BIG] = CLOSED("too_big"),
    [GW_M_CLOSED_SLOW_CONSUMER] = CLOSED("slow_consumer"),
    [GW_M_CLOSED_DRAIN] = CLOSED("drain"),
    [GW_M_CLOSED_POLICY] = CLOSED("policy"),
    [GW_M_CLOSED_IDLE] = CLOSED("idle_timeout"),
    [GW_M_CLOSED_OTHER] = CLOSED("other"),
    [GW_M_CLOSED_SERVER] = CLOSED("server"),
#define AUTHF_(name, reason, label) [GW_M_AUTH_FAILURES_FIRST + GW_AUTH_##name - 1] = AUTHF(label),
    GW_AUTH_FAILURE_MAP(AUTHF_)
#undef AUTHF_
    [GW_M_TOKENS_EXPIRED] = {"wsgate_tokens_expired_total", NULL, WSG_METRIC_COUNTER,
                             "Connections closed with 4001 because their token expired"},
    [GW_M_TOKEN_REFRESH_OK] = REFRESH("ok"),
    [GW_M_TOKEN_REFRESH_WRONG_SUB] = REFRESH("wrong_sub"),
    [GW_M_TOKEN_REFRESH_INVALID] = REFRESH("invalid"),
    [GW_M_TOKEN_REFRESH_UNAVAILABLE] = REFRESH("unavailable"),
    [GW_M_JWKS_FETCH_FIRST + GW_JWKS_FETCH_OK] = JWKS("ok"),
    [GW_M_JWKS_FETCH_FIRST + GW_JWKS_FETCH_ERROR] = JWKS("error"),
    [GW_M_JWKS_FETCH_FIRST + GW_JWKS_FETCH_INVALID] = JWKS("invalid"),
    [GW_M_FRAMES_RECEIVED] = {"wsgate_frames_received_total", NULL, WSG_METRIC_COUNTER,
                              "Complete client messages received"},
    [GW_M_BYTES_RECEIVED] = {"wsgate_received_bytes_total", NULL, WSG_METRIC_COUNTER,
                             "Payload bytes of client messages received"},
#define INB_(name, label) [GW_M_INBOUND_FIRST + GW_FRAME_##name] = INB(label),
    GW_FRAME_KIND_MAP(INB_)
#undef INB_
#define INB_BYTES_(name, label) [GW_M_INBOUND_BYTES_FIRST + GW_FRAME_##name] = INB_BYTES(label),
    GW_FRAME_KIND_MAP(INB_BYTES_)
#undef INB_BYTES_
    [GW_M_FRAMES_SENT_FIRST + WSG_STREAM_NONE] = SENT("none"),
    [GW_M_BYTES_SENT_FIRST + WSG_STREAM_NONE] = SENT_BYTES("none"),
#define SENT_(name, value, label, tag, named) \
    [GW_M_FRAMES_SENT_FIRST + value] = SENT(label), [GW_M_BYTES_SENT_FIRST + value] = SENT_BYTES(label),
    WSG_STREAM_KIND_MAP(SENT_)
#undef SENT_
    [GW_M_DELIVERY_LATENCY] = {"wsgate_delivery_latency_seconds", NULL, WSG_METRIC_HISTOGRAM,
                               "From the moment a message entered the cluster to the moment "
                               "its frame was written to a client socket"},
#define REJ_(name, label) [GW_M_REJECTED_FIRST + WSG_CLIENT_ERR_##name - 1] = REJ(label),
    WSG_CLIENT_GATEWAY_ERR_MAP(REJ_)
#undef REJ_
    [GW_M_REJECTED_TOO_BIG] = REJ("too_big"),
    [GW_M_INBOUND_PUBLISHED] = {"wsgate_inbound_published_total", NULL, WSG_METRIC_COUNTER,
                                "Client frames published to NATS"},
    [GW_M_DELIVERIES] = {"wsgate_deliveries_total", NULL, WSG_METRIC_COUNTER,
                         "Deliveries from NATS for an open connection (before duplicate checks)"},
    [GW_M_DROPPED_UNKNOWN_CONN] = DROP("unknown_conn"),
    [GW_M_DROPPED_STALE_EPOCH] = DROP("stale_epoch"),
    [GW_M_DROPPED_BAD_MESSAGE] = DROP("bad_message"),
    [GW_M_DROPPED_CLOSING] = DROP("closing"),
    [GW_M_DROPPED_NOMEM] = DROP("nomem"),
    [GW_M_DROPPED_DUPLICATE] = DROP("duplicate"),
    [GW_M_SLOW_CONSUMERS] = {"wsgate_slow_consumer_disconnects_total", NULL, WSG_METRIC_COUNTER,
                             "Connections closed with 4008 because their queue overflowed"},
    [GW_M_NATS_CONNECTED] = {"wsgate_nats_connected", NULL, WSG_METRIC_GAUGE,
                             "1 while connected to NATS"},
    [GW_M_NATS_RECONNECTS] = {"wsgate_nats_reconnects_total", NULL, WSG_METRIC_COUNTER,
                              "Reconnections to NATS"},
    [GW_M_NATS_PUBLISH_ERRORS] = {"wsgate_nats_publish_errors_total", NULL, WSG_METRIC_COUNTER,
                                  "Publications NATS refused"},
#define LIMIT_(name, label, status) [GW_M_LIMIT_FIRST + GW_ADMIT_##name - 1] = LIMIT(label),
    GW_ADMIT_REFUSAL_MAP(LIMIT_)
#undef LIMIT_
    [GW_M_LIMIT_INBOUND_RATE] = LIMIT("inbound_rate"),
    [GW_M_LIMIT_MEMORY_BUDGET] = LIMIT("memory_budget"),
    [GW_M_PROXY_ERR_MALFORMED] = PROXYERR("malformed"),
    [GW_M_PROXY_ERR_TIMEOUT] = PROXYERR("timeout"),
    [GW_M_PROXY_ERR_OVERLOAD] = PROXYERR("overload"),
    [GW_M_QUEUED_BYTES] = {"wsgate_outbound_queued_bytes", NULL, WSG_METRIC_GAUGE,
                           "Bytes waiting in the outbound queues of every connection"},
    [GW_M_HISTORY_REQUESTS] = {"wsgate_history_requests_total", NULL, WSG_METRIC_COUNTER,
                               "History pages asked of the routers (resume and gap repair)"},
    [GW_M_HISTORY_FAILURES] = {"wsgate_history_failures_total", NULL, WSG_METRIC_COUNTER,
                               "History requests given up after retries"},
    [GW_M_REPLAYED] = {"wsgate_replayed_total", NULL, WSG_METRIC_COUNTER,
                       "Messages taken from history (resume, offline messages, gap repair)"},
    [GW_M_RESYNCS_SENT] = {"wsgate_resyncs_total", NULL, WSG_METRIC_COUNTER,
                           "resync frames sent: a stream position history could not serve"},
    [GW_M_WELCOMES_DEGRADED] = {"wsgate_welcomes_degraded_total", NULL, WSG_METRIC_COUNTER,
                                "Welcomes sent with \"history\":\"unavailable\": history did "
                                "not answer within WSGATE_WELCOME_TIMEOUT"},
    [GW_M_DRAINING] = {"wsgate_draining", NULL, WSG_METRIC_GAUGE,
                       "1 once the node is draining (SIGTERM): it takes no new connections"},
    [GW_M_CHANNEL_SUBSCRIPTIONS] = {"wsgate_channel_subscriptions", NULL, WSG_METRIC_GAUGE,
                                    "Channel subscriptions open on the node (connection, "
                                    "channel pairs)"},
    [GW_M_CLOSED_BY_SERVER_FIRST + 0] = BYSERVER("1000"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 1] = BYSERVER("1001"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 2] = BYSERVER("1008"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 3] = BYSERVER("1011"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 4] = BYSERVER("1012"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 5] = BYSERVER("1013"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 6] = BYSERVER("4003"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 7] = BYSERVER("4009"),
    [GW_M_CLOSED_BY_SERVER_FIRST + 8] = BYSERVER("4xxx"),
    [GW_M_RPC_REPLY] = RPC("reply"),
    [GW_M_RPC_NO_HANDLER] = RPC("no_handler"),
    [GW_M_RPC_TIMEOUT] = RPC("timeout"),
    [GW_M_RPC_BAD_REPLY] = RPC("bad_reply"),
    [GW_M_RPC_REJECTED] = RPC("rejected"),
    [GW_M_RPC_INFLIGHT] = {"wsgate_rpc_inflight", NULL, WSG_METRIC_GAUGE,
                           "Client RPCs waiting for their service's answer"},
    [GW_M_HANDSHAKE] = {"wsgate_handshake_seconds", NULL, WSG_METRIC_HISTOGRAM,
                        "Client handshakes: TCP accept to the welcome frame written to the "
                        "socket (upgrade, authentication, registration, resume positions)"},
    [GW_M_STAGE_FIRST + GW_STAGE_NATS_TO_WORKER] = STAGE("nats_to_worker"),
    [GW_M_STAGE_FIRST + GW_STAGE_SOCKET] = STAGE("socket"),
    [GW_M_STAGE_FIRST + GW_STAGE_CONNECT_UPGRADE] = STAGE("connect_upgrade"),
    [GW_M_STAGE_FIRST + GW_STAGE_CONNECT_HISTORY] = STAGE("connect_history"),
};

const wsg_metric_buckets *const gw_metric_buckets[GW_M__COUNT] = {
    [GW_M_DELIVERY_LATENCY] = &latency_buckets,
    [GW_M_HANDSHAKE] = &handshake_buckets,
    [GW_M_STAGE_FIRST + GW_STAGE_NATS_TO_WORKER] = &stage_buckets,
    [GW_M_STAGE_FIRST + GW_STAGE_SOCKET] = &stage_buckets,
    [GW_M_STAGE_FIRST + GW_STAGE_CONNECT_UPGRADE] = &stage_buckets,
    [GW_M_STAGE_FIRST + GW_STAGE_CONNECT_HISTORY] = &stage_buckets,
};
_Static_assert(GW_M_STAGE_LAST - GW_M_STAGE_FIRST + 1 == GW_STAGE__COUNT,
               "one stage series per gw_stage");

/* Set by each worker thread; a plain pointer read, cheaper than a lookup per frame. */
static _Thread_local gw_metrics_shard *thread_shard;

gw_metrics_shard *gw_metrics_thread_shard(void) { return thread_shard; }
void gw_metrics_bind_thread(gw_metrics_shard *s) { thread_shard = s; }

_Static_assert(GW_AUTH__COUNT == 11, "one auth failure series per gw_auth_result");
_Static_assert(GW_ADMIT__COUNT == 5, "one limit series per gw_admit_result");
_Static_assert(WSG_CLIENT_ERR__GATEWAY_END == 12, "one rejection series per gateway error code");
_Static_assert(GW_FRAME_ERROR == 9, "one inbound series per gw_frame_kind");

void gw_metrics_sent(wsg_metrics *m, const gw_msg *msg, int64_t now_us)
{
    size_t k = msg->kind < WSG_STREAM_KINDS ? msg->kind : WSG_STREAM_NONE;
    gw_metrics_count(m, (gw_metric_id)(GW_M_FRAMES_SENT_FIRST + k), 1);
    gw_metrics_count(m, (gw_metric_id)(GW_M_BYTES_SENT_FIRST + k), (int64_t)msg->len);
    if (msg->created_us > 0)
        gw_metrics_observe(m, GW_M_DELIVERY_LATENCY,
                           now_us > msg->created_us ? now_us - msg->created_us : 0);
}

int gw_metric_close_label(uint32_t code)
{
    static const uint32_t fixed[] = {1000, 1001, 1008, 1011, 1012, 1013, 4003, 4009};
    for (int i = 0; i < (int)(sizeof(fixed) / sizeof(fixed[0])); i++)
        if (code == fixed[i])
            return i;
    return code >= 4000 && code <= 4999 ? 8 : -1;
}
