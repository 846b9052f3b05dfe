/* rt_kinds: what the router does with each stream kind, one row per kind of
 * common/wsg_stream.h's WSG_STREAM_KIND_MAP (the build fails when a kind has no row here).
 * Everything else in the router handles a stream as a (kind, name) pair and asks this table;
 * adding a kind is a row here plus the row in wsg_stream.h (and its name rule there).
 *
 *   XX(ENUM_SUFFIX of WSG_STREAM_KIND_MAP, offline_store, ring, audience, ns_history)
 * - offline_store: the stream keeps "what was stored while nobody was connected": a delivered
 *   mark in Redis (P:hd:<tag>[:<name>], moved by live appends and by reads with
 *   mark_delivered), a request without a position (has_after false) answers the items after
 *   that mark, an append to it may be kept only if its name has a seen marker
 *   (RT_APPEND_SEEN_ONLY, P:seen:<name>: the registry scripts set it for user ids), and the
 *   router asks the registry whether the name (a user id) has a connection. Without it, a
 *   request without a position answers only the epoch and the head.
 * - ring: this replica caches the stream's newest items in memory (rt_ring, owned by
 *   rt_hist_serve) so the burst of requests after a mass reconnect costs no Redis read. Only
 *   unnamed kinds (one ring each, made at start; checked at build time).
 * - audience: which connections a delivery to the stream reaches (rt_route's fan-out).
 * - ns_history: the stream's name is a channel, and its history is kept as its namespace says
 *   (wsg_ns history_size / history_ttl, 0 meaning the router's WSGATE_HISTORY_MAX /
 *   WSGATE_HISTORY_TTL); other streams always use the router's (rt_hist_limits_of).
 * Pure: no I/O, no global state. */
#ifndef RT_KINDS_H
#define RT_KINDS_H
#include "wsg_stream.h"

typedef enum {
    RT_AUDIENCE_NONE, /* an unknown kind: nobody */
    RT_AUDIENCE_USER, /* the connections of the user the stream is named after */
    RT_AUDIENCE_ALL,  /* every connection of every live node */
    RT_AUDIENCE_SUBSCRIBERS, /* the subscribers of the channel the stream is named after */
} rt_audience;

#define RT_KIND_MAP(XX) \
    XX(USER, 1, 0, RT_AUDIENCE_USER, 0)     /* a user's stream: kept for the user while offline */ \
    XX(BROADCAST, 0, 1, RT_AUDIENCE_ALL, 0) /* the cluster's: cached, for mass reconnects */ \
    XX(CHANNEL, 0, 0, RT_AUDIENCE_SUBSCRIBERS, 1) /* a channel's: per its namespace */

/* 1 for a kind the router handles (a row here and in wsg_stream.h). */
int rt_kind_known(unsigned kind);
int rt_kind_offline_store(unsigned kind);
int rt_kind_ring(unsigned kind);
rt_audience rt_kind_audience(unsigned kind);
int rt_kind_ns_history(unsigned kind);

/* The older `user_id` fields of the proto (HistoryRequest, NodeDelivery.Item,
 * DeliveryReply.Stored) name a STREAM_USER stream only; peers that predate `stream_name` fill
 * and read only them. This is the one place that knows it. */
/* The stream's name from a message: stream_name, or for a user stream user_id when
 * stream_name is empty. Never NULL. */
const char *rt_stream_name_of(unsigned kind, const char *stream_name, const char *user_id);
/* What goes into a `user_id` field next to stream_name: the name for a user stream, else "". */
const char *rt_stream_legacy_user_id(unsigned kind, const char *name);
/* HistoryRequest.with_broadcast_head is the older form of heads_of = [this stream], answered
 * in HistoryReply.broadcast_head. */
#define RT_LEGACY_HEAD_KIND WSG_STREAM_BROADCAST

#endif
