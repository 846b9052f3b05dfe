/* rt_metrics: the router's time series. Ids index the descriptor table in rt_metrics.c; any
 * thread may bump them through wsg_metrics_add. */
#ifndef RT_METRICS_H
#define RT_METRICS_H
#include "rt_resync.h"
#include "wsg_metrics.h"

/* Why a message from NATS was dropped; one wsgate_router_rejected_total series each:
 * XX(ENUM_SUFFIX, "reason" label, also the name in the log). */
#define RT_REJECT_MAP(XX) \
    XX(DECODE, "decode")               /* protobuf does not decode */ \
    XX(NO_TARGET, "no_target")         /* Delivery without exactly one usable target */ \
    XX(EMPTY_USERS, "empty_users")     /* Delivery.users with no user */ \
    XX(BAD_PAYLOAD, "bad_payload")     /* payload not a UTF-8 JSON object */ \
    XX(TOO_BIG, "too_big")             /* payload or list over its limit */ \
    XX(INVALID_FRAME, "invalid_frame") /* InboundFrame whose JSON is not the frame it claims */ \
    XX(INVALID_EVENT, "invalid_event") /* ConnEvent / NodeHeartbeat with bad ids or shape */ \
    XX(INVALID_USER, "invalid_user")   /* a target user id that breaks wsg_user's rule */ \
    XX(FORBIDDEN, "forbidden")         /* not marked permitted, or its namespace forbids it */ \
    XX(BAD_CHANNEL, "bad_channel")     /* a channel that breaks wsg_channel's name rule */ \
    XX(UNKNOWN_NAMESPACE, "unknown_namespace") /* a channel whose namespace is not configured */

#define RT_REJECT_ENUM_(name, label) RT_REJ_##name,
typedef enum { RT_REJECT_MAP(RT_REJECT_ENUM_) RT_REJ__COUNT } rt_reject;
#undef RT_REJECT_ENUM_

/* "decode", ...; "unknown" out of range. */
const char *rt_reject_name(rt_reject r);

/* Why a send_message was not kept for its offline target (rt_part.refused); one
 * wsgate_router_offline_refused_total series each, and the error code its sender gets:
 * XX(ENUM_SUFFIX, "reason" label, also the name in the log). */
#define RT_REFUSAL_MAP(XX) \
    XX(UNKNOWN_USER, "unknown_user")   /* no connection within the history TTL */ \
    XX(OFFLINE_QUOTA, "offline_quota") /* the sender's budget for offline targets is spent */

#define RT_REFUSAL_ENUM_(name, label) RT_REFUSE_##name,
typedef enum { RT_REFUSE_NONE, RT_REFUSAL_MAP(RT_REFUSAL_ENUM_) RT_REFUSE__COUNT } rt_refusal;
#undef RT_REFUSAL_ENUM_

/* "unknown_user", ...; "none" for RT_REFUSE_NONE, "unknown" out of range. */
const char *rt_refusal_name(rt_refusal r);

/* The messages routed, by what they were; one wsgate_router_routed_total series each:
 * XX(ENUM_SUFFIX, "kind" label). */
#define RT_ROUTED_MAP(XX) \
    XX(SEND_MESSAGE, "send_message") /* a client's send_message */ \
    XX(BROADCAST, "broadcast")       /* a client's broadcast */ \
    XX(DELIVER, "deliver")           /* a business service's Delivery */ \
    XX(PUBLISH, "publish")           /* a client's publish to a channel */ \
    XX(PRESENCE, "presence")         /* a client's presence question, answered */

/* The router's bounded queues, whose overflow is shed (wsgate_router_shed_total); the bus
 * queue's two classes also have a wsgate_router_queued_bytes gauge:
 * XX(ENUM_SUFFIX, "queue" label, also the name in the log). */
#define RT_BUS_QUEUE_MAP(XX) \
    XX(REGISTRY, "registry") /* the bus queue: ConnEvents and heartbeats */ \
    XX(WORK, "work")         /* the bus queue: everything else */
#define RT_QUEUE_MAP(XX) \
    RT_BUS_QUEUE_MAP(XX) \
    XX(JOBS, "jobs")         /* routed messages waiting for their history appends */ \
    XX(READS, "reads")       /* history reads waiting for Redis */

#define RT_QUEUE_ENUM_(name, label) RT_QUEUE_##name,
typedef enum { RT_QUEUE_MAP(RT_QUEUE_ENUM_) RT_QUEUE__COUNT } rt_queue;
#undef RT_QUEUE_ENUM_

/* "registry", ...; "unknown" out of range. */
const char *rt_queue_name(rt_queue q);

/* The server API's requests (wsgate_router_api_requests_total{op,via,outcome}): ops in
 * rt_api_op's order, the transport that carried them, and how they ended:
 * ok (done), rejected (bad request: an error / REJECTED reply, or a NATS request without a
 * reply subject), unauthorized (HTTP, no or wrong API key), error (not accepted: overloaded,
 * out of memory, stopping). */
#define RT_M_API_OPS 4
typedef enum { RT_API_VIA_NATS, RT_API_VIA_HTTP, RT_API_VIA__COUNT } rt_api_via;
typedef enum {
    RT_API_OUTCOME_OK,
    RT_API_OUTCOME_REJECTED,
    RT_API_OUTCOME_UNAUTHORIZED,
    RT_API_OUTCOME_ERROR,
    RT_API_OUTCOME__COUNT
} rt_api_outcome;

typedef enum {
    RT_M_NODES, /* gauges */
    RT_M_CONNECTIONS,
    RT_M_USERS,
    RT_M_CHANNELS, /* gauge */
    RT_M_CHANNEL_SUBSCRIPTIONS, /* gauge */
    RT_M_CONN_EVENTS,
    RT_M_STALE_EVENTS,
    RT_M_DUPLICATE_EVENTS,
    RT_M_SEQ_GAPS,
    RT_M_HEARTBEATS,
#define RT_M_ROUTED_(name, label) RT_M_ROUTED_##name, /* wsgate_router_routed_total{kind} */
    RT_ROUTED_MAP(RT_M_ROUTED_)
#undef RT_M_ROUTED_
    RT_M_REJECTED_FIRST, /* wsgate_router_rejected_total{reason}, one per rt_reject */
    RT_M_REJECTED_LAST = RT_M_REJECTED_FIRST + RT_REJ__COUNT - 1,
    RT_M_UNDELIVERABLE,
    RT_M_USER_OFFLINE,
    RT_M_NODE_DELIVERIES,
    RT_M_PRESENCE,
    RT_M_NODES_EXPIRED,
    RT_M_NODES_LEFT,
    RT_M_RESYNC_PARTS,
    RT_M_RESYNC_ABANDONED,
    RT_M_RESYNC_REQUESTS_FIRST, /* wsgate_router_resync_requests_total{reason} */
    RT_M_RESYNC_REQUESTS_LAST = RT_M_RESYNC_REQUESTS_FIRST + RT_RSQ__COUNT - 1,
    RT_M_NATS_CONNECTED, /* gauge */
    RT_M_NATS_RECONNECTS,
    RT_M_NATS_PUBLISH_ERRORS,
    RT_M_REDIS_CONNECTED, /* gauge */
    RT_M_REDIS_RECONNECTS,
    RT_M_REDIS_ERRORS,
    RT_M_REDIS_REWRITES,
    RT_M_REDIS_SHARDS_CONNECTED, /* gauge */
    RT_M_INTERNAL_ERRORS,
    RT_M_HISTORY_APPENDS,
    RT_M_HISTORY_READS_MEMORY, /* wsgate_router_history_reads_total{source} */
    RT_M_HISTORY_READS_REDIS,
    RT_M_HISTORY_WRITE_ERRORS,
    RT_M_HISTORY_REQ_OK, /* wsgate_router_history_requests_total{result} */
    RT_M_HISTORY_REQ_RESYNC,
    RT_M_HISTORY_REQ_UNAVAILABLE,
    RT_M_HISTORY_REQ_BAD_REQUEST,
    RT_M_DELIVERY_REPLIES,
    RT_M_HISTORY_UNCERTAIN, /* gauge */
    RT_M_HISTORY_UNCERTAIN_DROPPED,
    RT_M_HISTORY_VOIDED,
    RT_M_BROADCAST_RING_ITEMS, /* gauge */
#define RT_M_SHED_(name, label) RT_M_SHED_##name, /* wsgate_router_shed_total{queue} */
    RT_QUEUE_MAP(RT_M_SHED_)
#undef RT_M_SHED_
#define RT_M_QUEUED_(name, label) RT_M_QUEUED_BYTES_##name, /* gauges, by queue */
    RT_BUS_QUEUE_MAP(RT_M_QUEUED_)
#undef RT_M_QUEUED_
#define RT_M_REFUSED_(name, label) RT_M_OFFLINE_REFUSED_##name, /* ..._offline_refused_total */
    RT_REFUSAL_MAP(RT_M_REFUSED_)
#undef RT_M_REFUSED_
    RT_M_OFFLINE_QUOTA_SENDERS, /* gauge */
    RT_M_API_FIRST, /* wsgate_router_api_requests_total{op,via,outcome} (rt_metric_api) */
    RT_M_API_LAST = RT_M_API_FIRST + RT_M_API_OPS * RT_API_VIA__COUNT * RT_API_OUTCOME__COUNT - 1,
    RT_M_USER_LIMIT_CLOSES,   /* connections sent a 4009 close order (WSGATE_USER_CONN_LIMIT) */
    RT_M_CLOSE_ORDERS,        /* connections sent a close order by the API's disconnect */
    RT_M_ROUTER_HEARTBEATS,   /* RouterHeartbeats received from other routers */
    RT_M_ROUTER_PEERS,        /* gauge: other routers heard from */
    /* wsgate_stage_latency_seconds{stage}: histograms observed in microseconds */
    RT_M_STAGE_ROUTER_INBOX,       /* NATS callback -> the main loop took the message */
    RT_M_STAGE_HISTORY_APPEND,     /* append handed to the store -> its reply back, per message */
    RT_M_STAGE_APPEND_BATCH_WAIT,  /* a message's wait in the append batch window */
    RT_M__COUNT
} rt_metric_id;

extern const wsg_metric_desc rt_metric_descs[RT_M__COUNT];
/* The histograms' buckets (NULL for the other kinds), for wsg_metrics_init_hist. */
extern const wsg_metric_buckets *const rt_metric_buckets[RT_M__COUNT];

static inline rt_metric_id rt_metric_rejected(rt_reject r)
{
    return (rt_metric_id)(RT_M_REJECTED_FIRST + (int)r);
}

/* op: an rt_api_op. */
static inline rt_metric_id rt_metric_api(int op, rt_api_via via, rt_api_outcome o)
{
    return (rt_metric_id)(RT_M_API_FIRST +
                          ((op * RT_API_VIA__COUNT) + (int)via) * RT_API_OUTCOME__COUNT + (int)o);
}

static inline rt_metric_id rt_metric_shed(rt_queue q)
{
    return (rt_metric_id)(RT_M_SHED_REGISTRY + (int)q);
}

/* r: not RT_REFUSE_NONE. */
static inline rt_metric_id rt_metric_offline_refused(rt_refusal r)
{
    return (rt_metric_id)(RT_M_OFFLINE_REFUSED_UNKNOWN_USER + (int)r - 1);
}

static inline rt_metric_id rt_metric_resync_request(rt_resync_reason r)
{
    return (rt_metric_id)(RT_M_RESYNC_REQUESTS_FIRST + (int)r);
}

/* wsgate_router_routed_total over every kind: the messages this router routed. */
uint64_t rt_metrics_routed(const wsg_metrics *m);

#endif
