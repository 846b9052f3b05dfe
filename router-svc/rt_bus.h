/* rt_bus: the router's NATS side. Subscribes `<prefix>.conn` and `<prefix>.hb` plainly (every
 * replica keeps its registry current) and `<prefix>.in.send_message`, `<prefix>.in.broadcast`,
 * `<prefix>.deliver` and `<prefix>.history` in the queue group `<prefix>.router` (one replica handles each). nats.c
 * delivers all of them on one thread in arrival order; the callback does no routing: it
 * queues the message and wakes the main loop, which takes everything with rt_bus_take.
 * Publishing is thread-safe (nats.c buffers it). */
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
    RT_MSG_HISTORY, /* NATS requests: the reply goes to the message's reply subject */
    RT_MSG__COUNT
} rt_msg_kind;

typedef struct rt_msg {
    wsg_qnode q;
    rt_msg_kind kind;
    natsMsg *msg;
} rt_msg;

typedef struct rt_bus_cfg {
    const char *urls;
    const struct wsg_nats_opts *auth; /* credentials and TLS */
    const char *name;    /* connection name */
    const char *prefix;
    void (*wake)(void *arg); /* called on nats.c threads after queueing / state changes */
    void *wake_arg;
    wsg_metrics *metrics;    /* RT_M_NATS_* */
} rt_bus_cfg;

typedef struct rt_bus rt_bus;

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
void rt_msg_free(rt_msg *m);

/* 0, or -1 if nats.c refused (counted). */
int rt_bus_publish(rt_bus *b, const char *subject, const void *data, size_t len);
int rt_bus_connected(rt_bus *b);
/* The largest message the server accepts, or 0 if not known yet. */
int64_t rt_bus_max_payload(rt_bus *b);

#endif
