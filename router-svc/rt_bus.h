/* rt_bus: the router's NATS side. Subscribes `<prefix>.conn`, `<prefix>.hb` and
 * `<prefix>.router.hb` plainly (every replica keeps its registry and router peers current) and
 * `<prefix>.in.send_message`, `<prefix>.in.broadcast`, `<prefix>.in.publish`,
 * `<prefix>.in.presence`, `<prefix>.deliver`, `<prefix>.history` and the server API's
 * `<prefix>.api.publish|disconnect|presence|info` in the queue group `<prefix>.router` (one
 * replica handles each). nats.c delivers all of them
 * on one thread in arrival order; the callback does no routing: it queues the message and
 * wakes the main loop, which takes everything with rt_bus_take. Publishing is thread-safe
 * (nats.c buffers it).
 *
 * The queue is bounded, per class, in bytes (payload + subject + RT_BUS_MSG_OVERHEAD each), so a
 * main loop that falls behind (a slow Redis, a snapshot still loading, a flood) cannot grow the
 * process without limit. nats.c's own pending limits are off: the callback only queues, so
 * nats.c never holds more than a callback's worth, and its drops would be silent. Over the
 * bound a message is dropped at the door, counted (wsgate_router_shed_total{queue}) and logged
 * at most once a second with a suppressed count, in the way that keeps the guarantees:
 *  - work (send_message, broadcast, publish, presence, Delivery, HistoryRequest, the server
 *    API's requests, router heartbeats; RT_BUS_WORK_BYTES): the message is
 *    never routed nor stored, so it was never accepted: the sender of a send_message with an id
 *    gets no `sent` receipt, a Delivery request, a HistoryRequest and an API request get no
 *    reply and time out (their senders retry; nothing is half done); a lost router heartbeat
 *    only ages that router in the API's info. Work is shed first: its bound is the smaller.
 *  - registry (ConnEvent, NodeHeartbeat; RT_BUS_REGISTRY_BYTES): dropping one would leave the
 *    registry wrong, so a drop is remembered and rt_bus_take_shed tells the main loop, which
 *    asks every gateway to resync (reason "shed"): the sets they announce replace whatever was
 *    missed. Its bound is large (events are ~100 bytes; a RESYNC part of 4096 connections is
 *    ~150 KiB), so it is reached only when the loop is stuck, not in a reconnect storm. */
#ifndef RT_BUS_H
#define RT_BUS_H
#include <stddef.h>
#include <stdint.h>
#include <nats/nats.h>
#include "wsg_metrics.h"
#include "wsg_queue.h"

typedef enum {
    RT_MSG_CONN,
    RT_MSG_HB,
    RT_MSG_SEND_MESSAGE,
    RT_MSG_BROADCAST,
    RT_MSG_DELIVER,
    RT_MSG_PUBLISH,  /* a client's publish to a channel */
    RT_MSG_PRESENCE, /* a client's presence question */
    RT_MSG_HISTORY, /* NATS requests: the reply goes to the message's reply subject */
    /* the server API (<prefix>.api.<op>, queue group; requests), in rt_api_op's order */
    RT_MSG_API_PUBLISH,
    RT_MSG_API_DISCONNECT,
    RT_MSG_API_PRESENCE,
    RT_MSG_API_INFO,
    RT_MSG_ROUTER_HB, /* <prefix>.router.hb, plain: other routers' heartbeats */
    RT_MSG__COUNT
} rt_msg_kind;

/* Bytes counted per queued message besides its subject and payload (natsMsg, rt_msg, malloc). */
#define RT_BUS_MSG_OVERHEAD 256
/* Bounds of the queue, per class (see above). */
#define RT_BUS_WORK_BYTES (64u * 1024 * 1024)
#define RT_BUS_REGISTRY_BYTES (256u * 1024 * 1024)

typedef struct rt_bus rt_bus;

typedef struct rt_msg {
    wsg_qnode q;
    rt_msg_kind kind;
    natsMsg *msg;
    size_t bytes;  /* counted against its class's bound until freed */
    rt_bus *bus;
    int64_t at_us; /* wsg_mono_us when NATS handed it over (the router_inbox stage) */
} rt_msg;

typedef struct rt_bus_cfg {
    const char *urls;
    const struct wsg_nats_opts *auth; /* credentials and TLS */
    const char *name;    /* connection name */
    const char *prefix;
    void (*wake)(void *arg); /* called on nats.c threads after queueing / state changes */
    void *wake_arg;
    wsg_metrics *metrics;    /* RT_M_NATS_*, RT_M_SHED_*, RT_M_QUEUED_BYTES_* */
    size_t work_bytes;       /* 0: RT_BUS_WORK_BYTES (tests may set smaller bounds) */
    size_t registry_bytes;   /* 0: RT_BUS_REGISTRY_BYTES */
} rt_bus_cfg;

/* Connects (in the background if no server is up yet) and subscribes. NULL on failure. */
rt_bus *rt_bus_open(const rt_bus_cfg *cfg);
/* Stops the subscriptions and waits (bounded) until their last callback has returned, so the
 * queue only shrinks from then on; publishing still works. Idempotent. */
void rt_bus_unsubscribe(rt_bus *b);
/* Unsubscribes if still needed, flushes publishes (bounded), closes, and frees every message
 * still queued. */
void rt_bus_close(rt_bus *b, int64_t flush_timeout_ms);

/* Every queued message, oldest first, linked through q.next. */
rt_msg *rt_bus_take(rt_bus *b);
/* Frees a taken message and releases its bytes from its class's bound. */
void rt_msg_free(rt_msg *m);
/* How many registry events were shed since the last call (then the registry needs a resync). */
uint64_t rt_bus_take_shed(rt_bus *b);

/* 0, or -1 if nats.c refused (counted). */
int rt_bus_publish(rt_bus *b, const char *subject, const void *data, size_t len);
int rt_bus_connected(rt_bus *b);
/* The largest message the server accepts, or 0 if not known yet. */
int64_t rt_bus_max_payload(rt_bus *b);

#endif
