/* rt_metrics: the descriptor table behind rt_metric_id. */
#include "rt_metrics.h"

#define REJ_HELP "Messages from NATS dropped as invalid, by reason"
#define HREAD_HELP "History pages served, by where they were read from"
#define HREQ_HELP "HistoryRequests answered, by result"
#define OFF_HELP "send_message frames to offline users not kept, by reason"
#define SHED_HELP "Messages dropped because a bounded internal queue was full, by queue"
#define QUEUED_HELP "Bytes of NATS messages waiting for the main loop, by queue (with overhead)"
#define RSQ_HELP "ResyncRequests published, by reason"
#define API_HELP "Server API requests, by operation, transport and outcome"

const wsg_metric_desc rt_metric_descs[RT_M__COUNT] = {
    [RT_M_NODES] = {"wsgate_router_nodes", NULL, WSG_METRIC_GAUGE, "Live gateway nodes"},
    [RT_M_CONNECTIONS] = {"wsgate_router_connections", NULL, WSG_METRIC_GAUGE,
                          "Connections in the registry"},
    [RT_M_USERS] = {"wsgate_router_users", NULL, WSG_METRIC_GAUGE,
                    "Users with at least one connection"},
    [RT_M_CHANNELS] = {"wsgate_router_channels", NULL, WSG_METRIC_GAUGE,
                       "Channels with at least one subscribed connection"},
    [RT_M_CHANNEL_SUBSCRIPTIONS] = {"wsgate_router_channel_subscriptions", NULL,
                                    WSG_METRIC_GAUGE,
                                    "Channel subscriptions (connection, channel) in the registry"},
    [RT_M_CONN_EVENTS] = {"wsgate_router_conn_events_total", NULL, WSG_METRIC_COUNTER,
                          "Connection events applied to the in-memory registry"},
    [RT_M_STALE_EVENTS] = {"wsgate_router_stale_events_total", NULL, WSG_METRIC_COUNTER,
                           "Events and heartbeats from an older life of a node, dropped"},
    [RT_M_DUPLICATE_EVENTS] = {"wsgate_router_duplicate_events_total", NULL, WSG_METRIC_COUNTER,
                               "Connection events already applied, dropped"},
    [RT_M_SEQ_GAPS] = {"wsgate_router_seq_gaps_total", NULL, WSG_METRIC_COUNTER,
                       "Connection events that skipped sequence numbers (applied anyway)"},
    [RT_M_HEARTBEATS] = {"wsgate_router_heartbeats_total", NULL, WSG_METRIC_COUNTER,
                         "Node heartbeats received"},
#define ROUTED_(name, label) \
    [RT_M_ROUTED_##name] = {"wsgate_router_routed_total", "kind=\"" label "\"", \
                            WSG_METRIC_COUNTER, "Messages routed to at least one node"},
    RT_ROUTED_MAP(ROUTED_)
#undef ROUTED_
#define REJ_(name, label) \
    [RT_M_REJECTED_FIRST + RT_REJ_##name] = {"wsgate_router_rejected_total", \
                                             "reason=\"" label "\"", WSG_METRIC_COUNTER, REJ_HELP},
    RT_REJECT_MAP(REJ_)
#undef REJ_
    [RT_M_UNDELIVERABLE] = {"wsgate_router_undeliverable_total", NULL, WSG_METRIC_COUNTER,
                            "Deliveries whose target resolved to no connection"},
    [RT_M_USER_OFFLINE] = {"wsgate_router_user_offline_total", NULL, WSG_METRIC_COUNTER,
                           "send_message frames to a user with no connection (kept for later "
                           "unless history failed)"},
    [RT_M_NODE_DELIVERIES] = {"wsgate_router_node_deliveries_published_total", NULL,
                              WSG_METRIC_COUNTER, "NodeDelivery batches published"},
    [RT_M_PRESENCE] = {"wsgate_router_presence_published_total", NULL, WSG_METRIC_COUNTER,
                       "PresenceEvents published"},
    [RT_M_NODES_EXPIRED] = {"wsgate_router_nodes_expired_total", NULL, WSG_METRIC_COUNTER,
                            "Nodes declared dead after missing heartbeats"},
    [RT_M_NODES_LEFT] = {"wsgate_router_nodes_left_total", NULL, WSG_METRIC_COUNTER,
                         "Nodes removed at once on their last heartbeat (they were stopping)"},
    [RT_M_RESYNC_PARTS] = {"wsgate_router_resync_parts_total", NULL, WSG_METRIC_COUNTER,
                           "RESYNC parts kept until their set's last part"},
    [RT_M_RESYNC_ABANDONED] = {"wsgate_router_resync_abandoned_total", NULL, WSG_METRIC_COUNTER,
                               "Multi-part RESYNCs dropped (a part out of sequence, or too big)"},
#define RSQ_(name, label) \
    [RT_M_RESYNC_REQUESTS_FIRST + RT_RSQ_##name] = {"wsgate_router_resync_requests_total", \
                                                    "reason=\"" label "\"", \
                                                    WSG_METRIC_COUNTER, RSQ_HELP},
    RT_RESYNC_REASON_MAP(RSQ_)
#undef RSQ_
    [RT_M_NATS_CONNECTED] = {"wsgate_router_nats_connected", NULL, WSG_METRIC_GAUGE,
                             "1 while connected to NATS"},
    [RT_M_NATS_RECONNECTS] = {"wsgate_router_nats_reconnects_total", NULL, WSG_METRIC_COUNTER,
                              "Reconnections to NATS after a lost connection"},
    [RT_M_NATS_PUBLISH_ERRORS] = {"wsgate_router_nats_publish_errors_total", NULL,
                                  WSG_METRIC_COUNTER, "Publishes nats.c refused"},
    [RT_M_REDIS_CONNECTED] = {"wsgate_router_redis_connected", NULL, WSG_METRIC_GAUGE,
                              "1 while connected to Redis"},
    [RT_M_REDIS_RECONNECTS] = {"wsgate_router_redis_reconnects_total", NULL, WSG_METRIC_COUNTER,
                               "Connections to Redis made after an earlier one was lost"},
    [RT_M_REDIS_ERRORS] = {"wsgate_router_redis_errors_total", NULL, WSG_METRIC_COUNTER,
                           "Redis connection failures, error replies and malformed replies"},
    [RT_M_REDIS_REWRITES] = {"wsgate_router_redis_rewrites_total", NULL, WSG_METRIC_COUNTER,
                             "Registry rewritten into Redis from memory after a reconnect"},
    [RT_M_REDIS_SHARDS_CONNECTED] = {"wsgate_router_redis_shards_connected", NULL,
                                     WSG_METRIC_GAUGE,
                                     "History shards (WSGATE_REDIS_SHARDS) connected now"},
    [RT_M_INTERNAL_ERRORS] = {"wsgate_router_internal_errors_total", NULL, WSG_METRIC_COUNTER,
                              "Work dropped for lack of memory or a library failure"},
    [RT_M_HISTORY_APPENDS] = {"wsgate_router_history_appends_total", NULL, WSG_METRIC_COUNTER,
                              "Deliveries kept in a stream's history (one per stream)"},
    [RT_M_HISTORY_READS_MEMORY] = {"wsgate_router_history_reads_total", "source=\"memory\"",
                                   WSG_METRIC_COUNTER, HREAD_HELP},
    [RT_M_HISTORY_READS_REDIS] = {"wsgate_router_history_reads_total", "source=\"redis\"",
                                  WSG_METRIC_COUNTER, HREAD_HELP},
    [RT_M_HISTORY_WRITE_ERRORS] = {"wsgate_router_history_write_errors_total", NULL,
                                   WSG_METRIC_COUNTER,
                                   "Deliveries that could not be kept (delivered live only)"},
    [RT_M_HISTORY_REQ_OK] = {"wsgate_router_history_requests_total", "result=\"ok\"",
                             WSG_METRIC_COUNTER, HREQ_HELP},
    [RT_M_HISTORY_REQ_RESYNC] = {"wsgate_router_history_requests_total", "result=\"resync\"",
                                 WSG_METRIC_COUNTER, HREQ_HELP},
    [RT_M_HISTORY_REQ_UNAVAILABLE] = {"wsgate_router_history_requests_total",
                                      "result=\"unavailable\"", WSG_METRIC_COUNTER, HREQ_HELP},
    [RT_M_HISTORY_REQ_BAD_REQUEST] = {"wsgate_router_history_requests_total",
                                      "result=\"bad_request\"", WSG_METRIC_COUNTER, HREQ_HELP},
    [RT_M_DELIVERY_REPLIES] = {"wsgate_router_delivery_replies_total", NULL, WSG_METRIC_COUNTER,
                               "DeliveryReplies sent to Deliveries made as NATS requests"},
    [RT_M_HISTORY_UNCERTAIN] = {"wsgate_router_history_uncertain", NULL, WSG_METRIC_GAUGE,
                                "Undone appends (per stream) waiting to be voided if stored"},
    [RT_M_HISTORY_UNCERTAIN_DROPPED] = {"wsgate_router_history_uncertain_dropped_total", NULL,
                                        WSG_METRIC_COUNTER,
                                        "Undone appends not remembered (list full): a stored "
                                        "copy may be delivered twice"},
    [RT_M_HISTORY_VOIDED] = {"wsgate_router_history_voided_total", NULL, WSG_METRIC_COUNTER,
                             "Appends stored although reported undone, voided in history"},
    [RT_M_BROADCAST_RING_ITEMS] = {"wsgate_router_broadcast_history_items", NULL,
                                   WSG_METRIC_GAUGE,
                                   "Broadcast-stream history items this replica holds in memory "
                                   "(per-user history lives in Redis only)"},
#define SHED_(name, label) \
    [RT_M_SHED_##name] = {"wsgate_router_shed_total", "queue=\"" label "\"", \
                          WSG_METRIC_COUNTER, SHED_HELP},
    RT_QUEUE_MAP(SHED_)
#undef SHED_
#define QUEUED_(name, label) \
    [RT_M_QUEUED_BYTES_##name] = {"wsgate_router_queued_bytes", "queue=\"" label "\"", \
                                  WSG_METRIC_GAUGE, QUEUED_HELP},
    RT_BUS_QUEUE_MAP(QUEUED_)
#undef QUEUED_
#define REFUSED_(name, label) \
    [RT_M_OFFLINE_REFUSED_##name] = {"wsgate_router_offline_refused_total", \
                                     "reason=\"" label "\"", WSG_METRIC_COUNTER, OFF_HELP},
    RT_REFUSAL_MAP(REFUSED_)
#undef REFUSED_
    [RT_M_OFFLINE_QUOTA_SENDERS] = {"wsgate_router_offline_quota_senders", NULL, WSG_METRIC_GAUGE,
                                    "Sending connections whose offline budget is in use "
                                    "(WSGATE_OFFLINE_BYTES_PER_MINUTE)"},
#define API_ONE_(op, opl, via, vial, out, outl) \
    [RT_M_API_FIRST + ((op * RT_API_VIA__COUNT) + RT_API_VIA_##via) * RT_API_OUTCOME__COUNT + \
     RT_API_OUTCOME_##out] = {"wsgate_router_api_requests_total", \
                              "op=\"" opl "\",via=\"" vial "\",outcome=\"" outl "\"", \
                              WSG_METRIC_COUNTER, API_HELP},
#define API_VIA_(op, opl, via, vial) \
    API_ONE_(op, opl, via, vial, OK, "ok") API_ONE_(op, opl, via, vial, REJECTED, "rejected") \
    API_ONE_(op, opl, via, vial, UNAUTHORIZED, "unauthorized") \
    API_ONE_(op, opl, via, vial, ERROR, "error")
#define API_OP_(op, opl) API_VIA_(op, opl, NATS, "nats") API_VIA_(op, opl, HTTP, "http")
    API_OP_(0, "publish") API_OP_(1, "disconnect") API_OP_(2, "presence") API_OP_(3, "info")
#undef API_OP_
#undef API_VIA_
#undef API_ONE_
    [RT_M_USER_LIMIT_CLOSES] = {"wsgate_router_user_limit_closes_total", NULL,
                                WSG_METRIC_COUNTER,
                                "Connections sent a 4009 close order because their user had more "
                                "than WSGATE_USER_CONN_LIMIT"},
    [RT_M_CLOSE_ORDERS] = {"wsgate_router_disconnect_closes_total", NULL, WSG_METRIC_COUNTER,
                           "Connections sent a close order by the server API's disconnect"},
    [RT_M_ROUTER_HEARTBEATS] = {"wsgate_router_peer_heartbeats_total", NULL, WSG_METRIC_COUNTER,
                                "RouterHeartbeats received from other routers"},
    [RT_M_ROUTER_PEERS] = {"wsgate_router_peers", NULL, WSG_METRIC_GAUGE,
                           "Other routers heard from within 3 heartbeat intervals"},
#define STAGE_HELP "Time an item spends in each stage of its way through this process"
    [RT_M_STAGE_ROUTER_INBOX] = {"wsgate_stage_latency_seconds", "stage=\"router_inbox\"",
                                 WSG_METRIC_HISTOGRAM, STAGE_HELP},
    [RT_M_STAGE_HISTORY_APPEND] = {"wsgate_stage_latency_seconds", "stage=\"history_append\"",
                                   WSG_METRIC_HISTOGRAM, STAGE_HELP},
    [RT_M_STAGE_APPEND_BATCH_WAIT] = {"wsgate_stage_latency_seconds",
                                      "stage=\"append_batch_wait\"", WSG_METRIC_HISTOGRAM,
                                      STAGE_HELP},
#undef STAGE_HELP
};

/* the stage buckets every wsgate process shares (µs) */
static const int64_t stage_le[] = {50,    100,    250,    500,    1000,    2500,    5000, 10000,
                                   25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
static const wsg_metric_buckets stage_buckets = {
    .le = stage_le, .n = sizeof(stage_le) / sizeof(stage_le[0]), .per_unit = 1000000};

const wsg_metric_buckets *const rt_metric_buckets[RT_M__COUNT] = {
    [RT_M_STAGE_ROUTER_INBOX] = &stage_buckets,
    [RT_M_STAGE_HISTORY_APPEND] = &stage_buckets,
    [RT_M_STAGE_APPEND_BATCH_WAIT] = &stage_buckets,
};

#define LABEL_(name, label) [RT_REJ_##name] = label,
static const char *const reject_names[RT_REJ__COUNT] = {RT_REJECT_MAP(LABEL_)};
#undef LABEL_

uint64_t rt_metrics_routed(const wsg_metrics *m)
{
    static const rt_metric_id kinds[] = {
#define KIND_(name, label) RT_M_ROUTED_##name,
        RT_ROUTED_MAP(KIND_)
#undef KIND_
    };
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        int64_t v = wsg_metrics_value(m, kinds[i]);
        n += v > 0 ? (uint64_t)v : 0;
    }
    return n;
}

const char *rt_reject_name(rt_reject r)
{
    return (unsigned)r < RT_REJ__COUNT ? reject_names[r] : "unknown";
}

#define LABEL_(name, label) [RT_REFUSE_##name] = label,
static const char *const refusal_names[RT_REFUSE__COUNT] = {[RT_REFUSE_NONE] = "none",
                                                            RT_REFUSAL_MAP(LABEL_)};
#undef LABEL_

const char *rt_refusal_name(rt_refusal r)
{
    return (unsigned)r < RT_REFUSE__COUNT ? refusal_names[r] : "unknown";
}

#define LABEL_(name, label) [RT_QUEUE_##name] = label,
static const char *const queue_names[RT_QUEUE__COUNT] = {RT_QUEUE_MAP(LABEL_)};
#undef LABEL_

const char *rt_queue_name(rt_queue q)
{
    return (unsigned)q < RT_QUEUE__COUNT ? queue_names[q] : "unknown";
}
