/* rt_quota: the per-connection budget of bytes a sender may have stored for offline users
 * (WSGATE_OFFLINE_BYTES_PER_MINUTE). A send_message whose target has no connection is kept in
 * Redis until the target returns; without a budget one connection could fill Redis as fast as
 * it can send. Each sending connection (node id + conn id) has a token bucket holding up to one
 * minute's budget and refilled at budget / 60 s per second: a burst of a whole minute's budget,
 * then the budget per minute. A message the bucket cannot pay for in full is refused whole
 * (nothing is charged).
 *
 * State stays bounded: a bucket exists only while it is below full (its sender stored offline
 * messages within the last minute), rt_quota_prune drops full ones, and a connection's or a
 * node's buckets go when they close. At most max_entries buckets exist; a sender that would
 * need one more is refused (RT_QUOTA_FULL) after a prune, rather than growing the table.
 * Main thread only; no I/O. */
#ifndef RT_QUOTA_H
#define RT_QUOTA_H
#include <stddef.h>
#include <stdint.h>

typedef struct rt_quota rt_quota;

/* The largest budget per minute (larger ones are clamped to it). */
#define RT_QUOTA_MAX_BUDGET (INT64_C(1) << 30)

typedef enum {
    RT_QUOTA_OK,   /* charged */
    RT_QUOTA_OVER, /* the sender's bucket cannot pay: nothing charged */
    RT_QUOTA_FULL, /* no bucket could be made for the sender (table full, or ENOMEM) */
} rt_quota_status;

/* bytes_per_minute 0: unlimited (rt_quota_take always says OK and keeps nothing). NULL on
 * ENOMEM. */
rt_quota *rt_quota_new(int64_t bytes_per_minute, size_t max_entries);
void rt_quota_free(rt_quota *q);

rt_quota_status rt_quota_take(rt_quota *q, const char *node_id, uint64_t conn_id, size_t bytes,
                              int64_t now_us);
/* The connection closed / the node is gone: its buckets are dropped. */
void rt_quota_forget(rt_quota *q, const char *node_id, uint64_t conn_id);
void rt_quota_forget_node(rt_quota *q, const char *node_id);
/* Drops every bucket that is full again (idle senders); returns how many. */
size_t rt_quota_prune(rt_quota *q, int64_t now_us);
size_t rt_quota_len(const rt_quota *q);

#endif
