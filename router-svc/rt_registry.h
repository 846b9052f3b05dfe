/* rt_registry: the router's in-memory replica of the user -> connection -> node registry.
 *
 * It applies connection events and heartbeats exactly as the Redis scripts do (epoch fencing:
 * a larger epoch is a new life of the node and purges the old one, a smaller one is stale;
 * per (node, epoch, stream) sequence dedupe, gaps applied anyway) and reports the presence
 * transitions each change causes, net of the whole change (a user who loses and regains a
 * connection within one event stays online). It answers routing lookups without any I/O.
 * Single-threaded: the main loop owns it. Times are caller-supplied monotonic microseconds,
 * so tests drive the clock.
 *
 * Streams: a connection belongs to the stream conn_id >> 56 (the gateway worker announcing
 * it); every event names its stream and only carries that stream's connections. A RESYNC
 * replaces the stream's set and leaves the node's other streams alone. A large set comes in
 * parts (consecutive seqs, more = true on all but the last): parts are kept per (node, epoch,
 * stream), at most RT_MAX_PENDING_CONNS connections per node, and the set is replaced when the
 * last part arrives, with transitions net over the whole replacement. A part out of sequence,
 * any other event in between, or too many connections abandon the set: its remaining parts
 * are dropped (their seqs consumed) and the result says the stream's set is lost, so the
 * caller can ask the node to resync.
 *
 * Channels: a SUBSCRIBE / UNSUBSCRIBE consumes a seq of its stream like an OPEN / CLOSE (and
 * ends an unfinished set the same way) and changes one subscription of a known connection (of
 * an unknown one: nothing; the registry's user of the connection is the subscriber, not the
 * event's). A CLOSE ends every subscription of its connection, a node's purge every one of its
 * connections', and a RESYNC gives each connection of the set exactly the channels its
 * Conn.channels lists. Each change's join / leave transitions (per user: the first connection
 * subscribing, the last one stopping) are net over the whole change, like presence
 * (rt_registry_chan_changes).
 *
 * Heartbeats: interval_ms > 0 sets the node's expiry to max(timeout, 3 * interval_ms);
 * interval_ms == 0 is the node's last heartbeat and removes it at once. */
#ifndef RT_REGISTRY_H
#define RT_REGISTRY_H
#include <stddef.h>
#include <stdint.h>
#include "proto/wsgate.pb-c.h"
#include "rt_channels.h"
#include "rt_conn_set.h"
#include "rt_presence.h"
#include "wsg_user.h"

#define RT_USER_ID_MAX WSG_USER_ID_MAX
/* A RESYNC part larger than this is refused (NATS' 1 MB payload cannot carry more anyway). */
#define RT_MAX_EVENT_CONNS 262144
/* Connections held in unfinished multi-part RESYNCs of one node, over all its streams. */
#define RT_MAX_PENDING_CONNS (4u * 1024 * 1024)
#define RT_STREAM_SHIFT 56
#define RT_STREAM_MAX 255u

static inline uint32_t rt_conn_stream(uint64_t conn_id)
{
    return (uint32_t)(conn_id >> RT_STREAM_SHIFT);
}

typedef struct rt_registry rt_registry;

typedef enum {
    RT_EV_APPLIED,   /* applied: an OPEN, CLOSE, SUBSCRIBE, UNSUBSCRIBE or a whole RESYNC set */
    RT_EV_PART,      /* a RESYNC part, kept until the set's last part arrives */
    RT_EV_DISCARDED, /* a RESYNC part of an abandoned set: seq consumed, content dropped */
    RT_EV_DUPLICATE, /* seq already consumed for (node, epoch, stream) */
    RT_EV_STALE,     /* epoch older than the node's current life */
    RT_EV_INVALID,   /* bad ids or shape; nothing changed */
} rt_ev_status;

typedef enum {
    RT_ABANDON_NONE,
    RT_ABANDON_GAP,     /* the next event of the stream was not the set's next part */
    RT_ABANDON_TOO_BIG, /* the node's unfinished sets would exceed RT_MAX_PENDING_CONNS */
} rt_abandon;

typedef struct rt_ev_result {
    rt_ev_status status;
    int gap;              /* seq skipped numbers (applied anyway) */
    int new_node;         /* node id was unknown */
    int new_life;         /* epoch was larger: the old life's connections were purged */
    rt_abandon abandoned; /* this event made the stream's unfinished set be dropped */
    int set_lost;         /* an abandoned set is over: the stream's set is unknown until the
                           * node resyncs again */
    int departed;         /* heartbeat with interval_ms 0: the node was removed (or unknown) */
    /* RT_EV_APPLIED RESYNC: the set that replaced the stream; owned by the registry, valid
     * until the next rt_registry_conn_event or rt_registry_free. NULL otherwise. */
    const rt_conn_set *set;
} rt_ev_result;

rt_registry *rt_registry_new(void);
void rt_registry_free(rt_registry *r);
/* Changes the per-node bound on connections held in unfinished sets (RT_MAX_PENDING_CONNS). */
void rt_registry_set_max_pending(rt_registry *r, size_t max_conns);

/* Apply one event / heartbeat. Transitions are appended to out (may be NULL). Returns 0, or -1
 * if memory ran out part-way (the registry stays consistent but may miss part of the change). */
int rt_registry_conn_event(rt_registry *r, const Wsgate__ConnEvent *ev, int64_t now_us,
                           rt_ev_result *res, rt_presence_list *out);
int rt_registry_heartbeat(rt_registry *r, const Wsgate__NodeHeartbeat *hb, int64_t now_us,
                          rt_ev_result *res, rt_presence_list *out);

/* Declares dead every node not heard from for max(timeout_us, 3 * its heartbeat interval),
 * purging its connections. fn gets each one with the offline transitions its death caused.
 * Returns how many expired. */
typedef void (*rt_expire_fn)(const char *node_id, uint64_t epoch, const rt_presence_list *off,
                             void *arg);
size_t rt_registry_expire(rt_registry *r, int64_t now_us, int64_t timeout_us, rt_expire_fn fn,
                          void *arg);

/* Loading a snapshot (no transitions). load_conn/load_applied need the node loaded first and
 * are ignored (return 1) when its epoch differs. Return 0, 1 (ignored/invalid) or -1 (ENOMEM). */
int rt_registry_load_node(rt_registry *r, const char *node_id, uint64_t epoch, int64_t now_us);
int rt_registry_load_conn(rt_registry *r, const char *node_id, uint64_t conn_id,
                          const char *user_id);
int rt_registry_load_applied(rt_registry *r, const char *node_id, uint64_t epoch,
                             uint32_t stream, uint64_t seq);
/* The connection time (Conn.connected_at_us) of a loaded connection (ignored, 1, when the
 * connection is unknown). */
int rt_registry_load_conn_at(rt_registry *r, const char *node_id, uint64_t conn_id,
                             int64_t connected_at_us);
/* A subscription of a loaded connection (ignored, 1, when the connection is unknown). */
int rt_registry_load_sub(rt_registry *r, const char *node_id, uint64_t conn_id,
                         const char *channel);
void rt_registry_clear(rt_registry *r);

size_t rt_registry_node_count(const rt_registry *r);
size_t rt_registry_conn_count(const rt_registry *r);
size_t rt_registry_user_count(const rt_registry *r);

/* Lookups for routing. */
typedef void (*rt_conn_fn)(const char *node_id, uint64_t node_epoch, uint64_t conn_id, void *arg);
typedef void (*rt_node_fn)(const char *node_id, uint64_t node_epoch, void *arg);
/* Visits every connection of the user. Returns how many. */
size_t rt_registry_user_conns(const rt_registry *r, const char *user_id, rt_conn_fn fn, void *arg);
/* One connection as the server API shows it (rt_registry_user_visit). */
typedef struct rt_conn_info {
    const char *node_id;
    uint64_t node_epoch;
    uint64_t conn_id;
    int64_t connected_at_us; /* as the gateway announced it (wall clock); 0: not known */
    const rt_chan_conn *chans; /* its channels (rt_chan_conn_count / _at); NULL: none */
} rt_conn_info;
typedef void (*rt_conn_info_fn)(const rt_conn_info *ci, void *arg);
/* Visits every connection of the user with its node, epoch and connection time. Returns how
 * many. */
size_t rt_registry_user_visit(const rt_registry *r, const char *user_id, rt_conn_info_fn fn,
                              void *arg);
/* 1 if the user has a connection now, else 0. */
int rt_registry_user_online(const rt_registry *r, const char *user_id);
size_t rt_registry_nodes(const rt_registry *r, rt_node_fn fn, void *arg);
/* A node as the server API's info shows it. */
typedef struct rt_node_info {
    const char *node_id;
    uint64_t epoch;
    uint32_t hb_connections; /* as its last heartbeat said */
    uint64_t hb_frames_sent, hb_frames_received; /* ... also */
    size_t connections;      /* in the registry */
    int draining;
    int64_t last_seen_us;    /* monotonic, the caller's clock */
} rt_node_info;
typedef void (*rt_node_info_fn)(const rt_node_info *ni, void *arg);
size_t rt_registry_node_visit(const rt_registry *r, rt_node_info_fn fn, void *arg);
/* 0 and *epoch set if the node is live, -1 if unknown. */
int rt_registry_node_epoch(const rt_registry *r, const char *node_id, uint64_t *epoch);
/* 0 with the node's connection count and whether a multi-part RESYNC of it is unfinished (or
 * being dropped), -1 if the node is unknown. */
int rt_registry_node_stats(const rt_registry *r, const char *node_id, size_t *conns,
                           int *resyncing);

/* Nodes with at least one subscriber of channel; fn once per node. Returns how many. */
size_t rt_registry_channel_nodes(const rt_registry *r, const char *channel, rt_node_fn fn,
                                 void *arg);
/* Presence: fn once per distinct user subscribed to channel; *conns gets the number of
 * subscribed connections. Returns the number of users. */
typedef void (*rt_user_fn)(const char *user_id, void *arg);
size_t rt_registry_channel_users(const rt_registry *r, const char *channel, rt_user_fn fn,
                                 void *arg, size_t *conns);
size_t rt_registry_channel_count(const rt_registry *r);      /* channels with subscribers */
size_t rt_registry_subscription_count(const rt_registry *r); /* (connection, channel) pairs */

/* The channel join / leave transitions of the last change: rt_registry_conn_event,
 * rt_registry_heartbeat, or (inside an rt_expire_fn) the expiry of the node reported. Owned by
 * the registry, valid until its next change. */
const rt_chan_list *rt_registry_chan_changes(const rt_registry *r);

/* Full walk, for rewriting the durable copy. A callback returning non-zero stops the walk,
 * and that value is returned. */
typedef struct rt_registry_visitor {
    int (*node)(const char *node_id, uint64_t epoch, void *arg);
    int (*conn)(const char *node_id, uint64_t conn_id, const char *user_id, void *arg);
    int (*applied)(const char *node_id, uint64_t epoch, uint32_t stream, uint64_t seq, void *arg);
    /* each connection with at least one channel (rt_chan_conn_count / rt_chan_conn_at) */
    int (*chans)(const char *node_id, uint64_t conn_id, const char *user_id,
                 const rt_chan_conn *chans, void *arg);
    /* each connection whose connection time is known (not 0) */
    int (*conn_at)(const char *node_id, uint64_t conn_id, int64_t connected_at_us, void *arg);
} rt_registry_visitor;
int rt_registry_walk(const rt_registry *r, const rt_registry_visitor *v, void *arg);

#endif
