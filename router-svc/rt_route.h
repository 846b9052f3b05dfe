/* rt_route: turns one message taken from NATS (raw bytes) into a job, and a job whose history
 * appends have come back into batch items, using only the in-memory registry.
 *
 * Parsing validates everything from the peer and says why a message was rejected:
 * `in.send_message` and `in.broadcast` InboundFrames (the router builds the client frames) and
 * `deliver` Deliveries from business services (payload forwarded with only "seq" spliced in).
 * A job names the streams (kind, name) it is kept in (parts): the target user's stream for
 * send_message and a Delivery to a user, one per distinct user for a Delivery to users, the
 * broadcast stream for broadcasts; a Delivery to one connection is kept nowhere. Fan-out
 * reaches each part's audience (rt_kinds). The caller appends each part to the
 * history and fills in its seq and epoch (0: not kept, delivered live only), then fans out.
 *
 * Fan-out gives every part's connections an item carrying the part's stream position, and, for
 * send_message, answers the sender's connection: {"type":"sent",...} when the frame had an id
 * and the message was kept; {"type":"error","code":"history_unavailable",...} when it had an id
 * and was delivered live but not kept; {"type":"error","code":"user_offline",...} (with the id
 * as ref, if any) when it was neither kept nor delivered; and, when the caller refused to keep
 * it for its offline target (rt_part.refused), {"type":"error","code":"unknown_user" or
 * "offline_quota",...} (with the id as ref, if any) and nothing for the target. No I/O, no
 * metrics. */
#ifndef RT_ROUTE_H
#define RT_ROUTE_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/wsgate.pb-c.h"
#include "rt_batch.h"
#include "rt_frame.h"
#include "rt_metrics.h"
#include "rt_registry.h"
#include "wsg_subject.h"

/* A Delivery naming more users than this is rejected as too_big. */
#define RT_MAX_DELIVERY_USERS 100000
/* ... and so is one whose payload times its users exceeds this: each user keeps a copy. */
#define RT_MAX_FANOUT_BYTES (64u * 1024 * 1024)

typedef enum {
    RT_ROUTED,         /* parse: accepted; fanout: at least one target */
    RT_UNDELIVERABLE,  /* fanout: valid, but no connection / node now */
    RT_REJECTED,       /* invalid: see reason */
    RT_ROUTE_NOMEM,    /* out of memory part-way */
} rt_route_status;

/* A Delivery's id is answered in its DeliveryReply up to this many bytes (else ""). */
#define RT_DELIVERY_ID_MAX 1024

typedef struct rt_route_result {
    rt_route_status status;
    rt_reject reason; /* when RT_REJECTED */
    /* rt_route_deliver: the Delivery's id ("" if none, too long or undecodable), read in the
     * one decode, so a reply (accepted or rejected) needs no second one */
    char delivery_id[RT_DELIVERY_ID_MAX + 1];
} rt_route_result;

typedef struct rt_part {
    Wsgate__StreamKind kind;   /* the stream (kind, name) the message is kept in */
    char *name;                /* "" for an unnamed kind; never NULL */
    uint64_t seq, epoch;       /* 0: not kept */
    int seen_only;             /* offline target: keep only if the user was seen lately */
    rt_refusal refused;        /* not kept (nor delivered) on purpose; the sender is told */
} rt_part;

typedef enum { RT_JOB_SEND_MESSAGE, RT_JOB_BROADCAST, RT_JOB_DELIVER } rt_job_kind;

typedef struct rt_job {
    rt_job_kind kind;
    rt_frame frame;            /* without seq */
    int64_t created_at_us;
    rt_part *parts;
    size_t nparts;
    int to_conn;               /* Delivery.connection: the one target, no parts */
    char conn_node[WSG_NODE_ID_MAX + 1];
    uint64_t conn_id;
    /* a send_message whose target_user is not a user id: no parts, kept nowhere; its fan-out
     * only answers the sender with an invalid_field error */
    int refused;
    /* send_message: who sent it, and the frame's "id" (string or number; NULL: none) */
    char sender_node[WSG_NODE_ID_MAX + 1];
    uint64_t sender_epoch, sender_conn;
    json_t *ref;
} rt_job;

void rt_job_free(rt_job *j);

/* Each returns RT_ROUTED with *out set, RT_REJECTED (reason set) or RT_ROUTE_NOMEM. A
 * send_message whose target_user is a string but not a user id (wsg_user) is RT_REJECTED with
 * RT_REJ_INVALID_USER *and* *out set to a refused job: fanning that out (in its turn, like any
 * job) tells the sender. A Delivery naming such a user (user, or any of users) is rejected with
 * RT_REJ_INVALID_USER; one naming nobody (no user, an empty string) with RT_REJ_NO_TARGET. */
rt_route_status rt_route_send_message(const uint8_t *msg, size_t len, int64_t now_us,
                                      rt_job **out, rt_route_result *res);
rt_route_status rt_route_broadcast(const uint8_t *msg, size_t len, int64_t now_us, rt_job **out,
                                   rt_route_result *res);
rt_route_status rt_route_deliver(const uint8_t *msg, size_t len, size_t max_payload,
                                 int64_t now_us, rt_job **out, rt_route_result *res);

typedef struct rt_fanout {
    rt_route_status status;  /* RT_ROUTED, RT_UNDELIVERABLE, RT_ROUTE_NOMEM (RT_REJECTED: refused) */
    size_t connections;      /* connections given an item (a broadcast: the registry's count) */
    size_t nodes;            /* distinct nodes those are on */
} rt_fanout;

/* Adds the job's items (and the sender's answer) to the batch. A refused job adds only the
 * sender's error and returns RT_REJECTED. */
rt_route_status rt_route_fanout(const rt_registry *reg, rt_batch *b, const rt_job *j,
                                rt_fanout *out);

/* Frame text to every subscriber of channel: one NodeDelivery item (Item.channel = channel,
 * stream NONE) per node with subscribers, through b. 0 / -1 (ENOMEM). */
int rt_route_channel_notice(const rt_registry *reg, rt_batch *b, const char *channel,
                            const char *text, size_t len, int64_t now_us);

#endif
