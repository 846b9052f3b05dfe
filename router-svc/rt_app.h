/* rt_app: the router process wired together and its main-thread loop. One lws context
 * (rt_loop) runs on the main thread; NATS messages (rt_bus) and Redis results (rt_store)
 * arrive through queues and a wake-up. On each wake-up the loop completes the store's ops
 * (each calls its own done callback), then — once the registry snapshot is loaded — drains
 * every queued NATS message in order to its module, and flushes the per-node batches
 * (rt_batch). A 1 s tick expires silent nodes, loads the broadcast ring, voids uncertain
 * appends and sends the resync requests due.
 *
 * rt_app owns the shared state (rt_ctx: config, metrics, registry, batches, store, bus,
 * offline budget) and one module per flow, each handed the context at creation; none calls
 * back into rt_app:
 *   rt_members     registry events, presence, the snapshot, node expiry, resync requests
 *   rt_jobs        routed messages: history appends, fan-out in arrival order, DeliveryReplies
 *   rt_voids       appends whose outcome is unknown, voided once Redis is back
 *   rt_hist_serve  HistoryRequests, from the broadcast ring or through the store
 *   rt_status      /health, /ready, /metrics and the gauges
 *   rt_api         the server API's operations (<prefix>.api.* requests, and the HTTP API)
 *   rt_peers       the other routers (RouterHeartbeats on <prefix>.router.hb), for the API
 * When the store asks for the registry rewrite (Redis came back), rt_app has rt_members
 * submit it, rt_voids void right behind it, and rt_hist_serve forget the ring. */
#ifndef RT_APP_H
#define RT_APP_H
#include "rt_config.h"
#include "wsg_metrics.h"

typedef struct rt_app rt_app;

rt_app *rt_app_new(const rt_config *cfg, wsg_metrics *metrics);
/* Starts HTTP, the store thread (which loads the snapshot) and NATS. 0 / -1 (logged). */
int rt_app_start(rt_app *a);
/* Runs the loop on the calling thread until rt_app_stop. 0, or -1 if the loop broke. */
int rt_app_run(rt_app *a);
/* Any thread. */
void rt_app_stop(rt_app *a);
/* Unsubscribes and flushes NATS, stops the store, frees everything. */
void rt_app_free(rt_app *a);

#endif
