/* rt_batch: collects what the routing of one drain of the queue sends to each gateway node and
 * turns it into NodeDelivery messages, one per node (split at the item and byte limits).
 *
 * A message is started with rt_batch_begin and then given its targets; all targets of one
 * message on one node become ONE item (several conn_ids, or all=true, or — a message for a
 * channel — the node's subscribers of the channel, Item.channel). Payloads are copied once per
 * message and shared by every node's item. Messages keep their order per node.
 * No I/O: rt_batch_flush hands each packed NodeDelivery to a callback. */
#ifndef RT_BATCH_H
#define RT_BATCH_H
#include <stddef.h>
#include <stdint.h>

#define RT_BATCH_MAX_ITEMS 256
#define RT_BATCH_MAX_BYTES (256 * 1024)

typedef struct rt_batch rt_batch;

/* Returns 0 when the packed message was handed on, -1 if it could not be. */
typedef int (*rt_batch_publish_fn)(const char *node_id, const uint8_t *data, size_t len,
                                   void *arg);

rt_batch *rt_batch_new(size_t max_items, size_t max_bytes);
void rt_batch_free(rt_batch *b);

/* Where a message stands in the history: NodeDelivery.Item stream, stream_name (and user_id
 * for a user stream, for gateways that predate stream_name), seq, epoch. */
typedef struct rt_batch_pos {
    int kind;            /* Wsgate__StreamKind */
    const char *name;    /* the stream's name (NULL: ""); copied */
    uint64_t seq, epoch;
    /* NULL, or the channel whose subscribers the message is for (Item.channel; copied): its
     * targets are added with rt_batch_add_subscribers */
    const char *channel;
} rt_batch_pos;

/* Starts a message (pos NULL: STREAM_NONE). Returns 0, or -1 on ENOMEM (then add calls fail
 * until the next begin). */
int rt_batch_begin(rt_batch *b, const void *payload, size_t len, int64_t created_at_us);
int rt_batch_begin_pos(rt_batch *b, const void *payload, size_t len, int64_t created_at_us,
                       const rt_batch_pos *pos);
/* Starts a close order (NodeDelivery.Item close_code / close_reason: no payload, stream
 * NONE): each target added with rt_batch_add_conn is closed with code and reason (copied;
 * NULL: "") after the frames queued for it before. code must not be 0. 0 / -1 (ENOMEM, or
 * code 0; then add calls fail until the next begin). rt_batch_add_all / _subscribers refuse
 * a close order. */
int rt_batch_begin_close(rt_batch *b, uint32_t code, const char *reason, int64_t now_us);
/* Targets of the current message. node_id must be a valid node id; epoch is the life the
 * items are for (a different epoch for the same node starts a new NodeDelivery). 0 / -1. */
int rt_batch_add_conn(rt_batch *b, const char *node_id, uint64_t epoch, uint64_t conn_id);
int rt_batch_add_all(rt_batch *b, const char *node_id, uint64_t epoch);
/* The node's subscribers of the current message's channel: one item without conn_ids, whose
 * Item.channel names the channel. -1 also when the message has no channel. */
int rt_batch_add_subscribers(rt_batch *b, const char *node_id, uint64_t epoch);

/* Estimate of the memory the pending batches hold, for flushing early during big drains. */
size_t rt_batch_pending_bytes(const rt_batch *b);

/* Packs and hands on every pending NodeDelivery, node by node, then empties the batch.
 * Returns how many were handed on; *failed (may be NULL) counts the rest. */
size_t rt_batch_flush(rt_batch *b, rt_batch_publish_fn fn, void *arg, size_t *failed);

#endif
