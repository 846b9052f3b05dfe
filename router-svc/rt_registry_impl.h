/* rt_registry_impl: rt_registry's private structures, shared by its two halves: rt_registry.c
 * (the changes) and rt_registry_query.c (the lookups and the walk). Nothing else includes it.
 *
 * Nodes, users and connections are in uthash tables. A connection is in its node's table (by
 * conn id) and in its user's list, and holds its channels (rt_channels). Users are created on
 * their first connection and freed after their last one, at the end of the change that removed
 * it ("reaping"), which is what makes presence transitions net of a whole event. */
#ifndef RT_REGISTRY_IMPL_H
#define RT_REGISTRY_IMPL_H
#include <uthash.h>

#include "rt_channels.h"
#include "rt_registry.h"
#include "wsg_subject.h"

typedef struct rt_node rt_node;
typedef struct rt_user rt_user;

typedef struct rt_conn {
    UT_hash_handle hh; /* in node->conns */
    uint64_t id;
    rt_node *node;
    rt_user *user;
    struct rt_conn *prev, *next; /* in user->conns */
    rt_chan_conn *chans;         /* NULL: no subscription */
    int64_t connected_at_us;     /* Conn.connected_at_us (wall clock); 0: not known */
} rt_conn;

struct rt_user {
    UT_hash_handle hh;
    char *id;
    rt_conn *conns;
    size_t n;
    int reaping;
    rt_user *reap_next;
    /* the last connection removed: named in the offline transition */
    uint64_t last_conn_id;
    char last_node[WSG_NODE_ID_MAX + 1];
};

typedef struct rt_stream {
    UT_hash_handle hh;
    uint32_t id;
    uint64_t seq;         /* the highest seq consumed: applied, kept as a part or dropped */
    rt_conn_set *pending; /* the parts of an unfinished RESYNC so far */
    int skipping;         /* the rest of an abandoned set is still coming: drop it */
} rt_stream;

struct rt_node {
    UT_hash_handle hh;
    char id[WSG_NODE_ID_MAX + 1];
    uint64_t epoch;
    int64_t last_seen_us;
    uint32_t interval_ms; /* the last heartbeat's; 0 until one came */
    int draining;
    uint32_t hb_connections; /* the last heartbeat's count */
    uint64_t hb_frames_sent, hb_frames_received; /* ... and its counters */
    rt_conn *conns;
    size_t nconns;
    size_t pending_conns; /* in the streams' unfinished sets */
    rt_stream *streams;
};

struct rt_registry {
    rt_node *nodes;
    rt_user *users;
    size_t nconns;
    rt_user *reap;
    rt_conn_set *last_set; /* handed out in rt_ev_result.set */
    size_t max_pending;    /* per node */
    rt_channels *chans;
    rt_chan_list chan_changes; /* the last change's join / leave transitions */
    int oom; /* set when a transition could not be recorded */
};

rt_node *rt_reg_node_find(const rt_registry *r, const char *id);
int rt_reg_node_id_ok(const char *s);

#endif
