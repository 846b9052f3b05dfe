/* rt_route: turns one message taken from NATS (raw bytes) into batch items, using only the
 * in-memory registry: `in.send_message` and `in.broadcast` InboundFrames (the router builds the
 * client frames) and `deliver` Deliveries from business services (payload forwarded unchanged).
 * Validates everything from the peer and says why a message was rejected; no I/O, no metrics,
 * so it is tested with a registry and a batch alone. */
#ifndef RT_ROUTE_H
#define RT_ROUTE_H
#include <stddef.h>
#include <stdint.h>
#include "rt_batch.h"
#include "rt_metrics.h"
#include "rt_registry.h"

/* A Delivery naming more users than this is rejected as too_big. */
#define RT_MAX_DELIVERY_USERS 100000

typedef enum {
    RT_ROUTED,         /* at least one target */
    RT_UNDELIVERABLE,  /* valid, but the target resolved to no connection / node */
    RT_USER_OFFLINE,   /* send_message to a user with no connection: error sent to the sender */
    RT_REJECTED,       /* invalid: see reason */
    RT_ROUTE_NOMEM,    /* out of memory part-way */
} rt_route_status;

typedef struct rt_route_result {
    rt_route_status status;
    rt_reject reason; /* when RT_REJECTED */
    size_t targets;   /* connections (or nodes, for broadcasts) given an item */
} rt_route_result;

rt_route_status rt_route_send_message(const rt_registry *reg, rt_batch *b, const uint8_t *msg,
                                      size_t len, int64_t now_us, rt_route_result *res);
rt_route_status rt_route_broadcast(const rt_registry *reg, rt_batch *b, const uint8_t *msg,
                                   size_t len, int64_t now_us, rt_route_result *res);
rt_route_status rt_route_deliver(const rt_registry *reg, rt_batch *b, const uint8_t *msg,
                                 size_t len, size_t max_payload, int64_t now_us,
                                 rt_route_result *res);

#endif
