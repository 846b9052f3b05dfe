/* rt_members: who is connected where. It applies ConnEvents and heartbeats to the in-memory
 * registry, hands each change to Redis as a script call and publishes the PresenceEvents the
 * script reports, loads the registry snapshot at start, asks for the rewrite of the durable
 * copy when the store wants one, expires silent nodes, and publishes ResyncRequests (rt_resync
 * decides when).
 *
 * Presence: when Redis did not run a change (down, or awaiting the rewrite after it came back),
 * the transitions this replica's in-memory registry computed are published instead: then every
 * replica publishes them, so presence may be duplicated (never lost) until Redis is back.
 *
 * Channels: subscriptions are registry events too (SUBSCRIBE / UNSUBSCRIBE, and the channels of
 * RESYNC parts). The channel joins / leaves a change causes (per user: first connection
 * subscribing, last one stopping by unsubscribe, close or node death) are sent as join / leave
 * frames to the channel's subscribers (rt_route_channel_notice), for namespaces with
 * join_leave, by the replica whose script call applied the change, or, as for presence, by
 * every replica from its own registry when Redis could not say.
 *
 * Connection limit: after an OPEN, the same replica (the one whose script applied it; every
 * replica when Redis could not say) enforces WSGATE_USER_CONN_LIMIT on the OPEN's user from
 * its in-memory registry (rt_limit: close orders 4009 for the surplus).
 *
 * Resync: to every gateway once the snapshot is loaded, after a NATS reconnect and after the
 * bus shed registry events; to one node when a node it had purged speaks again in the same
 * life, when two heartbeats in a row disagree with the registry's count, when an OPEN / CLOSE
 * skipped seqs, or when a multi-part RESYNC was abandoned. A heartbeat with interval_ms 0
 * purges its node at once. */
#ifndef RT_MEMBERS_H
#define RT_MEMBERS_H
#include <nats/nats.h>

#include "rt_ctx.h"

typedef struct rt_members rt_members;

/* NULL on ENOMEM. c must outlive it. */
rt_members *rt_members_new(rt_ctx *c);
void rt_members_free(rt_members *mb);
/* 1 once the registry snapshot is loaded (messages are processed only then). */
int rt_members_loaded(const rt_members *mb);
/* Submits the snapshot load (a wait op: kept until Redis answers). */
void rt_members_load(rt_members *mb);
/* Submits the rewrite of the durable copy the store asked for with generation. */
void rt_members_rewrite(rt_members *mb, uint64_t generation);
void rt_members_conn_event(rt_members *mb, const natsMsg *msg);
void rt_members_heartbeat(rt_members *mb, const natsMsg *msg);
/* On each wake-up: registry events the bus had to shed owe every gateway a resync. */
void rt_members_shed_check(rt_members *mb);
/* Sends the resync to every gateway once it is owed and NATS is up. */
void rt_members_resync_check(rt_members *mb);
/* The tick: loads the snapshot if it is not (and not in flight), expires silent nodes. */
void rt_members_tick(rt_members *mb);
/* With shards: hands the seen markers collected from ConnEvents to their shards' stores (one
 * call per shard; after each drain of the bus). */
void rt_members_seen_flush(rt_members *mb);
/* The tick's resync part: resync_check, the rate-limited requests now due, pruning. */
void rt_members_resync_tick(rt_members *mb);

#endif
