/* rt_app: the router process wired together and its main-thread loop. One lws context
 * (rt_http) runs on the main thread; NATS messages (rt_bus) and Redis results (rt_store)
 * arrive through queues and a wake-up. On each wake-up the loop applies store results
 * (publishing presence), then — once the registry snapshot is loaded — drains every queued
 * NATS message in order, updating the in-memory registry (rt_registry), routing (rt_route)
 * into per-node batches (rt_batch), and handing registry changes to the store; it then
 * flushes the batches. A 1 s tick expires silent nodes.
 *
 * Presence: each registry change goes to Redis as a script call, and a PresenceEvent is
 * published for the transitions the script reports, so with several replicas exactly one
 * publishes each. When Redis did not run the call (down, or awaiting the rewrite after it came
 * back), the transitions this replica's in-memory registry computed are published instead:
 * then every replica publishes them, so presence may be duplicated (never lost) until Redis is
 * back.
 *
 * History: a routed message becomes a job (rt_route) whose streams are appended to the
 * history through the store (one script call per up to 256 streams, pipelined, in order); the
 * loop fans a job out when its appends are back, jobs strictly in arrival order, so this
 * replica publishes each stream's seqs in order and never waits on Redis. An append that fails
 * is delivered live without a seq (counted; the sender of a send_message with an id is told).
 * Redis may have stored it all the same (it went away with the call in flight), so each append
 * carries a job id ("<node id>:<start time us>:<counter>") and a failed one is remembered (up
 * to 100,000 streams; beyond, counted and logged once); once Redis is back (right behind the
 * registry rewrite, then every tick), void script calls of up to 64 streams, 4 in flight, mark
 * those found stored as voided, so history hands them out empty and the gateway skips them. A
 * broadcast void clears the ring, which is then loaded again from Redis.
 * A Delivery with a reply subject gets a DeliveryReply once routed. HistoryRequests on
 * <prefix>.history are answered from the broadcast ring (rt_ring, loaded from Redis at start
 * and after Redis came back) when it covers them, else by a read through the store.
 *
 * Resync: the loop publishes ResyncRequests on <prefix>.resync (rt_resync decides when): to
 * every gateway once the snapshot is loaded and after a NATS reconnect, and to one node when a
 * node it had purged speaks again in the same life, when two heartbeats in a row disagree with
 * the registry's count, when an OPEN / CLOSE skipped seqs, or when a multi-part RESYNC was
 * abandoned. A heartbeat with interval_ms 0 purges its node at once. */
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
