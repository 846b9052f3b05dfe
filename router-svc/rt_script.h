/* rt_script: the registry's durable form in Redis and the Lua scripts that change it.
 *
 * Layout (P = prefix): P:nodes HASH node_id -> epoch; P:node:<node_id> HASH conn_id -> user_id;
 * P:user:<user_id> SET "node_id:conn_id"; P:applied HASH "node:epoch:stream" -> last seq;
 * P:subs:<node_id> HASH conn_id -> the connection's channels joined by single spaces (no
 * field: none); P:conn_at:<node_id> HASH conn_id -> connected_at_us (no field: not known); P:chan:<channel> HASH user_id -> how many of the user's connections are
 * subscribed (no field: none; no key: no subscriber), which decides join / leave;
 * P:seen:<user_id> "1", expiring seen TTL (the history TTL) after the user's last connection
 * opened or closed: the users a send_message may be stored for while they are offline (the
 * history append script reads it). A rewrite leaves the markers alone.
 * A RESYNC replaces only its stream's connections (conn_id >> 56 == stream) and their channels,
 * a multi-part one in one call covering the seqs of all its parts. SUBSCRIBE / UNSUBSCRIBE go
 * through the same call as OPEN / CLOSE (same seqs, same dedupe); closing or purging a
 * connection ends its subscriptions.
 * Each script fences on the epoch, dedupes on the seq and changes the keys atomically, and
 * answers which users went online/offline and which users joined / left which channels, so
 * among several router replicas exactly the one whose call made a change learns of it. This
 * module builds the scripts' arguments and reads their replies (and the snapshot and rewrite
 * forms); it does no I/O. */
#ifndef RT_SCRIPT_H
#define RT_SCRIPT_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis.h>
#include "proto/wsgate.pb-c.h"
#include "rt_presence.h"
#include "rt_registry.h"
#include "rt_store.h"

typedef enum {
    RT_SCRIPT_CONN,     /* apply a ConnEvent */
    RT_SCRIPT_NODE,     /* a heartbeat from a new node or life: fence (purging the old life) */
    RT_SCRIPT_PURGE,    /* a node is dead or stopped: drop its connections (that life or older) */
    RT_SCRIPT_SNAPSHOT, /* read the whole registry */
    RT_SCRIPT__COUNT
} rt_script_id;

extern const char *const rt_scripts[RT_SCRIPT__COUNT];

typedef enum {
    RT_SCRIPT_APPLIED = 0,
    RT_SCRIPT_SKIPPED = 1, /* duplicate, or (purge) the node is not in that life any more */
    RT_SCRIPT_STALE = 2,
} rt_script_status;

/* Fill a script op's ARGV. 0 / -1 (ENOMEM, or a stream above RT_STREAM_MAX). seen_ttl_ms: how
 * long the seen markers of the users the call links or unlinks last.
 * conn_args: one event as it came (a RESYNC then covers its own seq only); resync_args: a
 * whole, possibly multi-part, RESYNC set of a stream. */
int rt_script_conn_args(rt_cmd *args, const char *prefix, int64_t seen_ttl_ms,
                        const Wsgate__ConnEvent *ev);
int rt_script_resync_args(rt_cmd *args, const char *prefix, int64_t seen_ttl_ms,
                          const char *node_id, uint64_t epoch, const rt_conn_set *set);
int rt_script_node_args(rt_cmd *args, const char *prefix, int64_t seen_ttl_ms,
                        const char *node_id, uint64_t epoch);
int rt_script_purge_args(rt_cmd *args, const char *prefix, int64_t seen_ttl_ms,
                         const char *node_id, uint64_t epoch);
int rt_script_snapshot_args(rt_cmd *args, const char *prefix);

/* Reads a CONN/NODE/PURGE reply: status, gap, the presence transitions (appended to out,
 * named after node_id) and the channel joins / leaves (appended to chans, may be NULL).
 * Returns 0, or -1 if the reply is malformed (out and chans may hold part of it). */
int rt_script_parse_change(const redisReply *r, const char *node_id, rt_script_status *status,
                           int *gap, rt_presence_list *out, rt_chan_list *chans);

/* Loads a SNAPSHOT reply into an empty registry. Entries that do not parse are skipped and
 * counted in *bad. Returns 0, or -1 if the reply's shape is wrong or memory ran out. */
int rt_script_load_snapshot(const redisReply *r, rt_registry *reg, int64_t now_us, size_t *bad);

/* Fills a rewrite op with the commands recreating reg. 0 / -1 (ENOMEM). */
int rt_script_rewrite_cmds(rt_store_op *op, const char *prefix, const rt_registry *reg);

#endif
