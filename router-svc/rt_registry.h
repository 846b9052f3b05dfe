/* rt_registry: the router's in-memory replica of the user -> connection -> node registry.
 *
 * It applies connection events and heartbeats exactly as the Redis scripts do (epoch fencing:
 * a larger epoch is a new life of the node and purges the old one, a smaller one is stale;
 * per (node, epoch, stream) sequence dedupe, gaps applied anyway) and reports the presence
 * transitions each change causes, net of the whole change (a user who loses and regains a
 * connection within one event stays online). It answers routing lookups without any I/O.
 * Single-threaded: the main loop owns it. Times are caller-supplied monotonic microseconds,
 * so tests drive the clock. */
#ifndef RT_REGISTRY_H
#define RT_REGISTRY_H
#include <stddef.h>
#include <stdint.h>
#include "proto/wsgate.pb-c.h"
#include "rt_presence.h"

#define RT_USER_ID_MAX 128
/* A RESYNC larger than this is refused (NATS' 1 MB payload cannot carry more anyway). */
#define RT_MAX_EVENT_CONNS 262144

typedef struct rt_registry rt_registry;

typedef enum {
    RT_EV_APPLIED,
    RT_EV_DUPLICATE, /* seq already applied for (node, epoch, stream) */
    RT_EV_STALE,     /* epoch older than the node's current life */
    RT_EV_INVALID,   /* bad ids or shape; nothing changed */
} rt_ev_status;

typedef struct rt_ev_result {
    rt_ev_status status;
    int gap;      /* seq skipped numbers (applied anyway) */
    int new_node; /* node id was unknown */
    int new_life; /* epoch was larger: the old life's connections were purged */
} rt_ev_result;

rt_registry *rt_registry_new(void);
void rt_registry_free(rt_registry *r);

/* Apply one event / heartbeat. Transitions are appended to out (may be NULL). Returns 0, or -1
 * if memory ran out part-way (the registry stays consistent but may miss part of the change). */
int rt_registry_conn_event(rt_registry *r, const Wsgate__ConnEvent *ev, int64_t now_us,
                           rt_ev_result *res, rt_presence_list *out);
int rt_registry_heartbeat(rt_registry *r, const Wsgate__NodeHeartbeat *hb, int64_t now_us,
                          rt_ev_result *res, rt_presence_list *out);

/* Declares dead every node not heard from for timeout_us, purging its connections. fn gets each
 * one with the offline transitions its death caused. Returns how many expired. */
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
void rt_registry_clear(rt_registry *r);

size_t rt_registry_node_count(const rt_registry *r);
size_t rt_registry_conn_count(const rt_registry *r);
size_t rt_registry_user_count(const rt_registry *r);

/* Lookups for routing. */
typedef void (*rt_conn_fn)(const char *node_id, uint64_t node_epoch, uint64_t conn_id, void *arg);
typedef void (*rt_node_fn)(const char *node_id, uint64_t node_epoch, void *arg);
/* Visits every connection of the user. Returns how many. */
size_t rt_registry_user_conns(const rt_registry *r, const char *user_id, rt_conn_fn fn, void *arg);
size_t rt_registry_nodes(const rt_registry *r, rt_node_fn fn, void *arg);
/* 0 and *epoch set if the node is live, -1 if unknown. */
int rt_registry_node_epoch(const rt_registry *r, const char *node_id, uint64_t *epoch);

/* Full walk, for rewriting the durable copy. A callback returning non-zero stops the walk,
 * and that value is returned. */
typedef struct rt_registry_visitor {
    int (*node)(const char *node_id, uint64_t epoch, void *arg);
    int (*conn)(const char *node_id, uint64_t conn_id, const char *user_id, void *arg);
    int (*applied)(const char *node_id, uint64_t epoch, uint32_t stream, uint64_t seq, void *arg);
} rt_registry_visitor;
int rt_registry_walk(const rt_registry *r, const rt_registry_visitor *v, void *arg);

#endif
