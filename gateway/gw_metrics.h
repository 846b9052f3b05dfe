/* gw_metrics: the gateway's time series. Ids index the descriptor table in gw_metrics.c; any
 * thread may bump them through wsg_metrics_add. */
#ifndef GW_METRICS_H
#define GW_METRICS_H
#include "gw_admit.h"
#include "gw_auth.h"
#include "gw_frame.h"
#include "wsg_metrics.h"

typedef enum {
    GW_M_CONNECTIONS,           /* gauge */
    GW_M_CONNECTIONS_OPENED,
    GW_M_CLOSED_PEER,           /* wsgate_connections_closed_total{reason} ... */
    GW_M_CLOSED_AUTH,
    GW_M_CLOSED_TOO_BIG,
    GW_M_CLOSED_SLOW_CONSUMER,
    GW_M_CLOSED_DRAIN,
    GW_M_CLOSED_POLICY,
    GW_M_CLOSED_OTHER,
    GW_M_AUTH_FAILURES_FIRST,   /* wsgate_auth_failures_total{reason}, one per gw_auth_result */
    GW_M_AUTH_FAILURES_LAST = GW_M_AUTH_FAILURES_FIRST + GW_AUTH__COUNT - 2,
    GW_M_FRAMES_RECEIVED,
    GW_M_BYTES_RECEIVED,
    GW_M_FRAMES_SENT,
    GW_M_BYTES_SENT,
    GW_M_REJECTED_FIRST,        /* wsgate_frames_rejected_total{reason}, one per gw_frame_error */
    GW_M_REJECTED_LAST = GW_M_REJECTED_FIRST + GW_ERR__COUNT - 2,
    GW_M_REJECTED_TOO_BIG,
    GW_M_INBOUND_PUBLISHED,
    GW_M_DELIVERIES,            /* messages queued to a connection from NATS */
    GW_M_DROPPED_UNKNOWN_CONN,  /* wsgate_deliveries_dropped_total{reason} */
    GW_M_DROPPED_STALE_EPOCH,
    GW_M_DROPPED_BAD_MESSAGE,
    GW_M_DROPPED_CLOSING,
    GW_M_DROPPED_NOMEM,
    GW_M_DROPPED_DUPLICATE,
    GW_M_SLOW_CONSUMERS,
    GW_M_NATS_CONNECTED,        /* gauge */
    GW_M_NATS_RECONNECTS,
    GW_M_NATS_PUBLISH_ERRORS,
    GW_M_LIMIT_FIRST,           /* wsgate_limit_rejections_total{limit}, one per gw_admit_result */
    GW_M_LIMIT_LAST = GW_M_LIMIT_FIRST + GW_ADMIT__COUNT - 2,
    GW_M_LIMIT_INBOUND_RATE,
    GW_M_LIMIT_MEMORY_BUDGET,
    GW_M_QUEUED_BYTES,          /* gauge: bytes in every outbound queue of the node */
    GW_M_HISTORY_REQUESTS,
    GW_M_HISTORY_FAILURES,
    GW_M_REPLAYED,
    GW_M_RESYNCS_SENT,
    GW_M__COUNT
} gw_metric_id;

extern const wsg_metric_desc gw_metric_descs[GW_M__COUNT];

static inline gw_metric_id gw_metric_auth_failure(gw_auth_result r)
{
    return (gw_metric_id)(GW_M_AUTH_FAILURES_FIRST + (int)r - 1);
}
static inline gw_metric_id gw_metric_limit(gw_admit_result r)
{
    return (gw_metric_id)(GW_M_LIMIT_FIRST + (int)r - 1);
}
static inline gw_metric_id gw_metric_rejected(gw_frame_error e)
{
    return (gw_metric_id)(GW_M_REJECTED_FIRST + (int)e - 1);
}

#endif
