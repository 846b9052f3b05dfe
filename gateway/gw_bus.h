/* gw_bus: the gateway's side of the NATS contract. Encodes what the gateway tells the
 * cluster (client frames as InboundFrame on <prefix>.in.<type>, with a reply subject under the
 * node's inbox for RPC and forwarded frames, ConnEvents on <prefix>.conn, NodeHeartbeats on
 * <prefix>.hb) and receives what the routers send to this node
 * (NodeDelivery on <prefix>.node.<node_id>), checked to be for this node and this life of it.
 *
 * Publishing is thread-safe (any worker may publish). Deliveries arrive on a nats.c thread:
 * the on_delivery callback must only hand the work over (queue + wake-up), never touch
 * libwebsockets objects. The connection reconnects by itself and resubscribes. */
#ifndef GW_BUS_H
#define GW_BUS_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "proto/wsgate.pb-c.h"
#include "wsg_metrics.h"

typedef struct gw_bus gw_bus;

/* Called on a nats.c thread with a delivery for this node; nd is freed after it returns. */
typedef void (*gw_bus_delivery_fn)(void *arg, const Wsgate__NodeDelivery *nd);
/* Called on a nats.c thread (or, for the first connection, possibly on the thread calling
 * gw_bus_open) when the connection comes up (1) or goes down (0). */
typedef void (*gw_bus_state_fn)(void *arg, int connected);
/* Called on a nats.c thread with the reply to gw_bus_request_history; the callee owns hr
 * (free it with wsgate__history_reply__free_unpacked). hr is NULL when the reply did not
 * decode. */
typedef void (*gw_bus_history_fn)(void *arg, uint64_t conn_id, unsigned stream, uint32_t reqno,
                                   Wsgate__HistoryReply *hr);
/* What came back to a client frame published with a reply subject. */
typedef enum {
    GW_BUS_RPC_REPLY,      /* data: the service's JSON object */
    GW_BUS_RPC_NO_HANDLER, /* NATS no responders: nobody is subscribed to the type */
    GW_BUS_RPC_BAD_REPLY,  /* the answer is not a JSON object */
} gw_bus_rpc_status;
/* Called on a nats.c thread with the answer to the tracked frame reqno of conn_id (see
 * gw_bus_publish_inbound); the callee owns data (json_decref), NULL unless REPLY. For frames
 * that are not RPC only no-responders is passed on (other answers are ignored). */
typedef void (*gw_bus_rpc_fn)(void *arg, uint64_t conn_id, uint32_t reqno,
                              gw_bus_rpc_status status, json_t *data);
/* Called on a nats.c thread when nobody was subscribed to a forwarded frame that is not RPC
 * (type: its type, a valid one). */
typedef void (*gw_bus_unhandled_fn)(void *arg, const char *type);
/* Called on a nats.c thread when a router asks this node to announce its connections. */
typedef void (*gw_bus_resync_fn)(void *arg, const char *reason);

typedef struct gw_bus_cfg {
    const char *urls;
    const struct wsg_nats_opts *auth; /* credentials and TLS */
    const char *prefix;
    const char *node_id;
    uint64_t node_epoch;
    int64_t reconnect_buf;   /* bytes nats.c buffers while disconnected */
    wsg_metrics *metrics;    /* gateway metrics (gw_metrics.h ids) */
    gw_bus_delivery_fn on_delivery;
    gw_bus_state_fn on_state;
    gw_bus_resync_fn on_resync;
    gw_bus_history_fn on_history;
    gw_bus_rpc_fn on_rpc;
    gw_bus_unhandled_fn on_unhandled;
    void *arg;
} gw_bus_cfg;

/* Returns 0 and a bus that keeps trying to reach NATS in the background, or -1 (logged). */
int gw_bus_open(gw_bus **out, const gw_bus_cfg *cfg);
/* Flushes what is buffered (bounded by timeout_ms), then closes. NULL is fine. */
void gw_bus_close(gw_bus *b, int64_t timeout_ms);

int gw_bus_connected(const gw_bus *b);

/* Each returns 0, or -1 if NATS refused the message (reconnect buffer full, closed): the
 * caller decides what the client sees. An inbound frame is published only after the
 * gateway's checks allowed it: it goes out with InboundFrame.permitted set.
 * reply: GW_BUS_NO_REPLY (the router's own frames), GW_BUS_RPC (a request: every answer goes
 * to on_rpc with reqno) or GW_BUS_FORWARD (an answer is only looked at for no-responders:
 * on_unhandled, and on_rpc too when reqno is not 0). */
typedef enum { GW_BUS_NO_REPLY, GW_BUS_RPC, GW_BUS_FORWARD } gw_bus_reply_kind;
/* client_ip: the client's address in gw_peer's 16-byte form, sent as text in
 * InboundFrame.client_ip (NULL: none). */
int gw_bus_publish_inbound(gw_bus *b, uint64_t conn_id, const char *user_id,
                           const uint8_t client_ip[16], const char *type, const void *payload,
                           size_t len, int64_t received_us, gw_bus_reply_kind reply,
                           uint32_t reqno);
/* channel: SUBSCRIBE / UNSUBSCRIBE's channel (NULL for the others). */
int gw_bus_publish_conn(gw_bus *b, Wsgate__ConnEvent__Kind kind, uint32_t stream, uint64_t seq,
                        uint64_t conn_id, const char *user_id, int64_t connected_us,
                        const char *channel);
/* Asks the routers for a page of history on behalf of a connection; the reply comes back
 * through on_history with the same conn_id, stream (the caller's index of the stream) and
 * reqno. */
int gw_bus_request_history(gw_bus *b, const Wsgate__HistoryRequest *rq, uint64_t conn_id,
                           unsigned stream, uint32_t reqno);

/* One part of a worker's RESYNC (see ConnEvent in wsgate.proto). */
int gw_bus_publish_resync(gw_bus *b, uint32_t stream, uint64_t seq, Wsgate__Conn **conns,
                          size_t n, int more);
/* What a heartbeat says (NodeHeartbeat). interval_ms 0 marks the last one of a stopping node. */
typedef struct gw_bus_hb {
    uint32_t connections;
    int draining;
    uint32_t interval_ms;
    uint64_t frames_sent, frames_received; /* since the node started */
} gw_bus_hb;
int gw_bus_publish_heartbeat(gw_bus *b, const gw_bus_hb *h);

#endif
