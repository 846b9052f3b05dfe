/* gw_metrics: the gateway's time series. Ids index the descriptor table in gw_metrics.c; any
 * thread may bump them through wsg_metrics_add. What the hot paths count per frame goes
 * through the helpers at the end, which know which series a frame belongs to.
 *
 * Per-worker shards: each worker thread binds a gw_metrics_shard of its own
 * (gw_metrics_bind_thread) where gw_metrics_count / _observe / _stage / _sent count what it
 * counts per delivery and per frame, without an atomic add on a line the other workers also
 * bump; /metrics sums the shards, so the text is the same. */
#ifndef GW_METRICS_H
#define GW_METRICS_H
#include "gw_admit.h"
#include "gw_auth.h"
#include "gw_frame.h"
#include "gw_outq.h"
#include "wsg_metrics.h"
#include "wsg_stream.h"

typedef enum {
    GW_M_CONNECTIONS,           /* gauge */
    GW_M_CONNECTIONS_OPENED,
    GW_M_CLOSED_PEER,           /* wsgate_connections_closed_total{reason} ... */
    GW_M_CLOSED_AUTH,
    GW_M_CLOSED_TOO_BIG,
    GW_M_CLOSED_SLOW_CONSUMER,
    GW_M_CLOSED_DRAIN,
    GW_M_CLOSED_POLICY,
    GW_M_CLOSED_IDLE,
    GW_M_CLOSED_OTHER,
    GW_M_CLOSED_SERVER,         /* a close order from a router (disconnect, user limit) */
    GW_M_AUTH_FAILURES_FIRST,   /* wsgate_auth_failures_total{reason}, one per gw_auth_result */
    GW_M_AUTH_FAILURES_LAST = GW_M_AUTH_FAILURES_FIRST + GW_AUTH__COUNT - 2,
    GW_M_TOKENS_EXPIRED,        /* connections closed with 4001 at their token's exp + leeway */
    GW_M_TOKEN_REFRESH_OK,      /* wsgate_token_refreshes_total{outcome} ... */
    GW_M_TOKEN_REFRESH_WRONG_SUB,
    GW_M_TOKEN_REFRESH_INVALID,
    GW_M_TOKEN_REFRESH_UNAVAILABLE,
    GW_M_JWKS_FETCH_FIRST,      /* wsgate_jwks_fetches_total{outcome}, one per gw_jwks_outcome */
    GW_M_JWKS_FETCH_LAST = GW_M_JWKS_FETCH_FIRST + GW_JWKS_FETCH_INVALID,
    GW_M_FRAMES_RECEIVED,
    GW_M_BYTES_RECEIVED,
    GW_M_INBOUND_FIRST,         /* wsgate_inbound_frames_total{type}, one per gw_frame_kind */
    GW_M_INBOUND_LAST = GW_M_INBOUND_FIRST + GW_FRAME_ERROR,
    GW_M_INBOUND_BYTES_FIRST,   /* wsgate_inbound_bytes_total{type}, one per gw_frame_kind */
    GW_M_INBOUND_BYTES_LAST = GW_M_INBOUND_BYTES_FIRST + GW_FRAME_ERROR,
    GW_M_FRAMES_SENT_FIRST,     /* wsgate_frames_sent_total{stream}, by wsg_stream_kind (none too) */
    GW_M_FRAMES_SENT_LAST = GW_M_FRAMES_SENT_FIRST + WSG_STREAM_KINDS - 1,
    GW_M_BYTES_SENT_FIRST,      /* wsgate_sent_bytes_total{stream}, the same */
    GW_M_BYTES_SENT_LAST = GW_M_BYTES_SENT_FIRST + WSG_STREAM_KINDS - 1,
    GW_M_DELIVERY_LATENCY,      /* histogram, observed in microseconds */
    GW_M_COMPRESSION_BYTES_IN,  /* payload bytes of frames sent compressed, before ... */
    GW_M_COMPRESSION_BYTES_OUT, /* ... and after compression */
    GW_M_COMPRESSED_CONNECTIONS, /* gauge: connections with permessage-deflate */
    GW_M_BATCH_FRAMES,          /* batch frames sent */
    GW_M_REJECTED_FIRST,        /* wsgate_frames_rejected_total{reason}: gateway codes */
    GW_M_REJECTED_LAST = GW_M_REJECTED_FIRST + WSG_CLIENT_ERR__GATEWAY_END - 2,
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
    GW_M_PROXY_ERR_MALFORMED,   /* wsgate_proxy_protocol_errors_total{reason}: not a valid */
    GW_M_PROXY_ERR_TIMEOUT,     /* PROXY header, none in time, too many connections waiting */
    GW_M_PROXY_ERR_OVERLOAD,    /* for theirs */
    GW_M_QUEUED_BYTES,          /* gauge: bytes in every outbound queue of the node */
    GW_M_HISTORY_REQUESTS,
    GW_M_HISTORY_FAILURES,
    GW_M_REPLAYED,
    GW_M_RESYNCS_SENT,
    GW_M_WELCOMES_DEGRADED,
    GW_M_DRAINING,              /* gauge */
    GW_M_CHANNEL_SUBSCRIPTIONS, /* gauge: (connection, channel) pairs open on the node */
    GW_M_CLOSED_BY_SERVER_FIRST, /* wsgate_closed_by_server_total{code}, one per gw_close_label */
    GW_M_CLOSED_BY_SERVER_LAST = GW_M_CLOSED_BY_SERVER_FIRST + 8,
    GW_M_RPC_REPLY,             /* wsgate_rpc_requests_total{outcome}, in gw_rpc_outcome order */
    GW_M_RPC_NO_HANDLER,
    GW_M_RPC_TIMEOUT,
    GW_M_RPC_BAD_REPLY,
    GW_M_RPC_REJECTED,
    GW_M_RPC_INFLIGHT,          /* gauge: RPCs waiting for their service */
    GW_M_HANDSHAKE,             /* histogram (us): TCP accept -> the welcome written */
    GW_M_STAGE_FIRST,           /* wsgate_stage_latency_seconds{stage}, one per gw_stage (us) */
    GW_M_STAGE_LAST = GW_M_STAGE_FIRST + 3,
    GW_M__COUNT
} gw_metric_id;

/* The stages of wsgate_stage_latency_seconds{stage} this process observes. */
typedef enum {
    GW_STAGE_NATS_TO_WORKER, /* the NATS callback posted a delivery or channel item -> its
                              * worker began the job (queue wait + wake-up) */
    GW_STAGE_SOCKET,         /* a frame was queued on a connection -> its last byte was handed
                              * to the kernel (once per frame per connection) */
    GW_STAGE_CONNECT_UPGRADE, /* a client's TCP connection accepted -> its WebSocket upgrade
                               * done (HTTP request read, admission, upgrade response) */
    GW_STAGE_CONNECT_HISTORY, /* the connection registered -> its welcome queued: the routers'
                               * answer on where the client's streams stand */
    GW_STAGE__COUNT
} gw_stage;

/* A worker's own counters (wsg_metrics_shard): only that worker's thread may bump it. */
typedef wsg_metrics_shard gw_metrics_shard;

extern const wsg_metric_desc gw_metric_descs[GW_M__COUNT];
/* The histograms' buckets, for wsg_metrics_init_hist. */
extern const wsg_metric_buckets *const gw_metric_buckets[GW_M__COUNT];

/* The close codes a router may order (1000, 1001, 1008, 1011, 1012, 1013, 4000-4999), as
 * the index of their wsgate_closed_by_server_total series: the label set stays bounded
 * (4000-4999 fold into "4xxx" except 4003 and 4009). -1 for a code no order may carry. */
int gw_metric_close_label(uint32_t code);

static inline gw_metric_id gw_metric_auth_failure(gw_auth_result r)
{
    return (gw_metric_id)(GW_M_AUTH_FAILURES_FIRST + (int)r - 1);
}
static inline gw_metric_id gw_metric_limit(gw_admit_result r)
{
    return (gw_metric_id)(GW_M_LIMIT_FIRST + (int)r - 1);
}
static inline gw_metric_id gw_metric_rejected(wsg_client_error e)
{
    return (gw_metric_id)(GW_M_REJECTED_FIRST + (int)e - 1);
}

/* The shard of the worker whose thread this is (gw_metrics_bind_thread), NULL on any other
 * thread: lets helpers that get only the node's wsg_metrics count in the worker's shard. */
gw_metrics_shard *gw_metrics_thread_shard(void);
/* Called once by a worker's thread when it starts. */
void gw_metrics_bind_thread(gw_metrics_shard *s);

/* One counter bump: into the calling worker's shard when m is its node's table (no atomic
 * add), else into m's shared values. For the series bumped per delivery (GW_M_DELIVERIES). */
static inline void gw_metrics_count(wsg_metrics *m, gw_metric_id id, int64_t v)
{
    gw_metrics_shard *s = gw_metrics_thread_shard();
    if (s && s->m == m)
        wsg_metrics_shard_add(s, id, v);
    else
        wsg_metrics_add(m, id, v);
}

/* One histogram observation, the same way. */
static inline void gw_metrics_observe(wsg_metrics *m, gw_metric_id id, int64_t v)
{
    gw_metrics_shard *s = gw_metrics_thread_shard();
    if (s && s->m == m)
        wsg_metrics_shard_observe(s, id, v);
    else
        wsg_metrics_observe(m, id, v);
}

/* One observation of stage st, in microseconds (below zero counts as zero). */
static inline void gw_metrics_stage(wsg_metrics *m, gw_stage st, int64_t us)
{
    gw_metrics_observe(m, (gw_metric_id)(GW_M_STAGE_FIRST + (int)st), us > 0 ? us : 0);
}

/* One message written to a client's socket at now_us (wall clock): frames and payload bytes
 * by stream, and, when the message says when it entered the cluster, its delivery latency.
 * A latency below zero (clocks of two hosts disagree) counts as zero. Counted in the calling
 * worker's shard (any other thread: in m's shared values). */
void gw_metrics_sent(wsg_metrics *m, const gw_msg *msg, int64_t now_us);

/* One client message of `len` bytes, classified (after the inbound rate limit). */
static inline void gw_metrics_inbound(wsg_metrics *m, gw_frame_kind k, size_t len)
{
    wsg_metrics_add(m, GW_M_INBOUND_FIRST + (size_t)k, 1);
    wsg_metrics_add(m, GW_M_INBOUND_BYTES_FIRST + (size_t)k, (int64_t)len);
}

#endif
