/* rt_api: the server API's operations (publish, disconnect, presence, info) on protobuf
 * messages, on the router's main thread. The NATS side (<prefix>.api.*) and the HTTP side
 * (rt_api_http) both go through rt_api_call. */
#ifndef RT_API_H
#define RT_API_H
#include <stddef.h>
#include <stdint.h>

typedef struct rt_api rt_api;
typedef enum { RT_API_PUBLISH, RT_API_DISCONNECT, RT_API_PRESENCE, RT_API_INFO, RT_API__COUNT } rt_api_op;
/* Called exactly once per rt_api_call, on the main thread, possibly before rt_api_call returns.
 * reply/len: the packed reply message of op (DeliveryReply, DisconnectReply, PresenceReply,
 * InfoReply). reply NULL: not accepted (router overloaded, out of memory or stopping) — the
 * caller may retry; nothing was done. */
typedef void (*rt_api_reply_fn)(void *arg, uint64_t token, const uint8_t *reply, size_t len);
/* req/len: the packed request message of op (publish: Delivery). */
void rt_api_call(rt_api *api, rt_api_op op, const uint8_t *req, size_t len,
                 rt_api_reply_fn fn, void *arg, uint64_t token);

#endif
