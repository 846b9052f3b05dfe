/* rt_peers: the other routers of the cluster, as their RouterHeartbeats on <prefix>.router.hb
 * tell, for the server API's info. Every router announces itself there every
 * RT_PEERS_INTERVAL_MS (interval_ms 0 on stop) and listens plainly (not in the queue group);
 * a peer not heard from within 3 × its announced interval is forgotten, one that said
 * interval_ms 0 at once. The table itself does no I/O (rt_peers_heard / _expire / _visit take
 * the caller's clock, so tests drive it); rt_peers_message and rt_peers_announce are the NATS
 * side. Main thread only. */
#ifndef RT_PEERS_H
#define RT_PEERS_H
#include <stddef.h>
#include <stdint.h>
#include <nats/nats.h>

#define RT_PEERS_INTERVAL_MS 2000
/* peers kept at most (a heartbeat from a new one beyond is ignored) */
#define RT_PEERS_MAX 1024

struct rt_ctx;
typedef struct rt_peers rt_peers;

/* self_id is copied. c may be NULL (tests: no NATS side). NULL on ENOMEM. */
rt_peers *rt_peers_new(struct rt_ctx *c, const char *self_id, int64_t started_at_us);
void rt_peers_free(rt_peers *p);

/* A heartbeat of router_id (mono: the caller's monotonic clock; routed: the messages it says
 * it routed). Its own are ignored. Returns 0, 1 if ignored (bad id, itself, table full), -1 on
 * ENOMEM. */
int rt_peers_heard(rt_peers *p, const char *router_id, int64_t started_at_us,
                   uint32_t interval_ms, uint64_t routed, int64_t mono_us);
/* Forgets the peers silent for 3 × their interval. Returns how many. */
size_t rt_peers_expire(rt_peers *p, int64_t mono_us);
/* Peers besides itself. */
size_t rt_peers_count(const rt_peers *p);

typedef struct rt_peer_info {
    const char *router_id;
    int64_t started_at_us;
    int64_t age_us; /* since its last heartbeat; 0 for itself */
    int self;
    uint64_t routed; /* messages routed: its last heartbeat's, or now for itself */
} rt_peer_info;
typedef void (*rt_peer_fn)(const rt_peer_info *pi, void *arg);
/* Itself first, then each peer. Returns how many were visited. */
size_t rt_peers_visit(const rt_peers *p, int64_t mono_us, rt_peer_fn fn, void *arg);

/* NATS side: a RouterHeartbeat message (bad ones are counted and dropped). */
void rt_peers_message(rt_peers *p, const natsMsg *msg);
/* Publishes this router's heartbeat when one is due (stopping: at once, interval_ms 0) and
 * expires silent peers. Called from the tick. */
void rt_peers_announce(rt_peers *p, int stopping);

#endif
