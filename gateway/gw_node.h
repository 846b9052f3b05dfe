/* gw_node: one gateway process. Owns everything shared by its worker event loops: the
 * configuration, the authenticator, the metrics, the NATS bus, the node epoch (a fresh one per
 * process, so routers can tell this life of the node id from earlier ones) and the workers.
 * Routes each delivery from NATS to the workers that own its target connections, drives the
 * heartbeat and the drain on SIGTERM.
 *
 * Fields are read by every worker thread; after gw_node_start they change only through the
 * atomics. */
#ifndef GW_NODE_H
#define GW_NODE_H
#include <stdatomic.h>
#include <stdint.h>

#include "gw_admit.h"
#include "gw_auth.h"
#include "gw_bus.h"
#include "gw_config.h"
#include "gw_metrics.h"
#include "gw_rpc.h"
#include "wsg_metrics.h"

typedef struct gw_worker gw_worker;

typedef struct gw_node {
    const gw_config *cfg;
    gw_auth *auth;
    gw_admit *admit;
    wsg_metrics metrics;
    gw_bus *bus;
    gw_unhandled unhandled;      /* wsgate_frames_unhandled_total */
    int unhandled_ok;
    uint64_t epoch;
    atomic_int draining;
    unsigned nworkers;
    gw_worker **workers;
    /* on_delivery's scratch for ids bucketed by worker, kept between NATS messages so a
     * delivery costs no allocation: only the node subscription's callback uses it, and
     * nats.c never runs one subscription's callback on two threads at once. */
    uint64_t *deliver_ids;
    size_t deliver_ids_cap;
} gw_node;

/* Builds the node, opens the bus and starts the workers (listening). Returns NULL and fills
 * err on failure. */
gw_node *gw_node_start(const gw_config *cfg, char *err, size_t errlen);
/* Begins the drain (any thread): readiness goes 503, upgrades are refused, connections are
 * closed with 1012 spread over drain_ms, then the workers stop. */
void gw_node_drain(gw_node *n, int64_t drain_ms);
/* Waits for every worker to stop, then closes the bus and frees the node. */
void gw_node_wait_and_free(gw_node *n);

/* 1 if ready for traffic; otherwise 0 and *reason says why ("nats", "draining"). */
int gw_node_ready(const gw_node *n, const char **reason);

/* Authenticated connections on every worker now (the wsgate_connections gauge). */
static inline int64_t gw_node_connections(const gw_node *n)
{
    return wsg_metrics_get(&n->metrics, GW_M_CONNECTIONS);
}

/* Sends the heartbeat now (called from worker 0's loop). */
void gw_node_heartbeat(gw_node *n);

#endif
