/* rt_api: the server API's operations (publish, disconnect, presence, info) on protobuf
 * messages, on the router's main thread. The NATS side (<prefix>.api.*) and the HTTP side
 * (rt_api_http) both go through rt_api_call.
 *
 * publish    Delivery → DeliveryReply, through rt_jobs exactly like a Delivery request on
 *            <prefix>.deliver (same validation, history, order), replied through a local sink.
 * disconnect DisconnectRequest → DisconnectReply: a close order (rt_batch_begin_close) for
 *            every connection of the user in this router's registry.
 * presence   PresenceRequest → PresenceReply, from the in-memory registry.
 * info       InfoRequest → InfoReply: the registry's nodes and the router peers (rt_peers). */
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

/* The op's name as in the metrics' op label ("publish", "disconnect", "presence", "info"). */
const char *rt_api_op_name(rt_api_op op);

/* How a reply (as handed to an rt_api_reply_fn) ended, for the metrics' outcome label:
 * RT_API_OUTCOME_OK, _REJECTED (error set / DeliveryReply REJECTED) or _ERROR (reply NULL or
 * not decodable). Returns an rt_api_outcome (rt_metrics.h). */
int rt_api_reply_outcome(rt_api_op op, const uint8_t *reply, size_t len);

struct rt_ctx;
struct rt_jobs;
struct rt_peers;
/* NULL on ENOMEM. c, jobs and peers must outlive it (rt_app owns them all). */
rt_api *rt_api_new(struct rt_ctx *c, struct rt_jobs *jobs, struct rt_peers *peers);
void rt_api_free(rt_api *api);

/* The NATS side: a request taken from <prefix>.api.<op> (natsMsg *). Its reply goes to the
 * message's reply subject; one without a reply subject is counted (rejected) and dropped;
 * counted in wsgate_router_api_requests_total{via="nats"}. */
void rt_api_nats(rt_api *api, rt_api_op op, const void *nats_msg);

#endif
