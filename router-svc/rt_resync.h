/* rt_resync: decides when this router replica asks gateways to announce their connection sets
 * again (a ResyncRequest on <prefix>.resync). It remembers, per node: which life this replica
 * purged (a node heard from again in that life was declared dead too early), how many
 * consecutive heartbeats announced a connection count the registry disagrees with (one may be
 * a race with events in flight; two in a row are not), and when a request last went out, so
 * each node is asked at most once per min_interval (a request to every node counts for each).
 * A request the limit holds back is owed, not lost: rt_resync_due hands it out later (one
 * owed request to every node covers the owed ones to single nodes).
 * Decisions only: no I/O, the caller supplies monotonic microseconds, and the caller sends.
 * Memory is bounded: entries idle for long are pruned and the table has a cap. */
#ifndef RT_RESYNC_H
#define RT_RESYNC_H
#include <stddef.h>
#include <stdint.h>

#define RT_RESYNC_MIN_INTERVAL_US (5 * INT64_C(1000000))
#define RT_RESYNC_MAX_NODES 65536

/* Why a ResyncRequest is owed; one wsgate_router_resync_requests_total series each:
 * XX(ENUM_SUFFIX, "reason" label, also the request's reason and the name in the log). */
#define RT_RESYNC_REASON_MAP(XX) \
    XX(START, "start")         /* the registry was loaded: events may have been missed before */ \
    XX(RECONNECT, "reconnect") /* this replica's NATS connection came back */ \
    XX(NODE_BACK, "node_back") /* a node this replica purged is alive in the same life */ \
    XX(COUNT_MISMATCH, "count_mismatch") /* heartbeats disagree with the registry */ \
    XX(SEQ_GAP, "seq_gap")     /* an OPEN / CLOSE skipped seqs: events were lost */ \
    XX(SET_LOST, "set_lost")   /* a multi-part RESYNC was abandoned */ \
    XX(SHED, "shed")           /* this replica's inbound queue was full: registry events dropped */

#define RT_RSQ_ENUM_(name, label) RT_RSQ_##name,
typedef enum { RT_RESYNC_REASON_MAP(RT_RSQ_ENUM_) RT_RSQ__COUNT } rt_resync_reason;
#undef RT_RSQ_ENUM_

const char *rt_resync_reason_name(rt_resync_reason r);

typedef struct rt_resync rt_resync;

rt_resync *rt_resync_new(int64_t min_interval_us);
void rt_resync_free(rt_resync *s);

/* This replica purged the node's life epoch (expiry or last heartbeat). 0 / -1 (ENOMEM or
 * table full: the node will not be asked when it comes back). */
int rt_resync_node_gone(rt_resync *s, const char *node_id, uint64_t epoch, int64_t now_us);
/* The node was heard from in life epoch: 1 if this replica had purged that very life (and
 * forgets it), else 0. */
int rt_resync_node_seen(rt_resync *s, const char *node_id, uint64_t epoch);
/* A heartbeat of life epoch announced `announced` connections, the registry holds `known`:
 * 1 when this is the 2nd (or later) consecutive mismatch since the last request to the node. */
int rt_resync_heartbeat(rt_resync *s, const char *node_id, uint64_t epoch, uint64_t announced,
                        uint64_t known, int64_t now_us);
/* A request for node_id (NULL: every node) is wanted. 1: send it now (recorded as sent; the
 * mismatch counts it covers start over). 0: one went out less than min_interval ago; it is
 * owed (unless the node table is full). */
int rt_resync_want(rt_resync *s, const char *node_id, rt_resync_reason why, int64_t now_us);
/* Calls fn for each owed request the limit now allows (node_id NULL: every node), recording it
 * as sent. Returns how many. */
typedef void (*rt_resync_fn)(const char *node_id, rt_resync_reason why, void *arg);
size_t rt_resync_due(rt_resync *s, int64_t now_us, rt_resync_fn fn, void *arg);
/* Forgets nodes idle for longer than max_idle_us. */
void rt_resync_prune(rt_resync *s, int64_t now_us, int64_t max_idle_us);
size_t rt_resync_node_count(const rt_resync *s);

#endif
