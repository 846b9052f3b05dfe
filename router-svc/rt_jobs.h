/* rt_jobs: routed messages (send_message, broadcast, Delivery). Each becomes a job (rt_route)
 * whose streams are appended to the history through the store (batched script calls, below,
 * pipelined, in order); a job is fanned out into the per-node batches
 * when its appends are back, jobs strictly in arrival order, so this replica publishes each
 * stream's seqs in order and never waits on Redis. An append that fails is delivered live
 * without a seq (counted; the sender of a send_message with an id is told) and handed to
 * rt_voids. A Delivery with a reply subject gets a DeliveryReply once routed (or rejected).
 * A send_message to a user with no connection pays from its sender's offline budget
 * (rt_quota). Jobs waiting for their appends are bounded (JOBS_MAX, JOBS_MAX_BYTES); beyond,
 * new work is shed unacknowledged. */
#ifndef RT_JOBS_H
#define RT_JOBS_H
#include <nats/nats.h>

#include "rt_bus.h"
#include "rt_ctx.h"
#include "rt_hist_serve.h"
#include "rt_voids.h"

typedef struct rt_jobs rt_jobs;

/* NULL on ENOMEM. c, v and hs must outlive it. */
rt_jobs *rt_jobs_new(rt_ctx *c, rt_voids *v, rt_hist_serve *hs);
/* Frees the jobs still queued (none but in a broken run: every append comes back). */
void rt_jobs_free(rt_jobs *js);
/* A routed message of kind (RT_MSG_SEND_MESSAGE, RT_MSG_BROADCAST or RT_MSG_DELIVER). */
void rt_jobs_routed(rt_jobs *js, rt_msg_kind kind, const natsMsg *msg);

/* History appends are collected into one script call per WSGATE_HISTORY_BATCH_US window
 * (rt_history: several messages per call), at most APPEND_BATCH_MSGS messages, APPEND_CHUNK
 * streams and APPEND_BATCH_BYTES frame bytes each; a call goes to the store when its window
 * ends, when full, before any other store op (rt_ctx_submit: the store sees the ops in the
 * order the router made them), or, with a window of 0, when the bus drain that filled it ends.
 * A message is fanned out only once its call came back, jobs in arrival order as before; a
 * failed call fails each of its messages as a failed call of its own would. */
/* arm(arg, us): call rt_jobs_appends_due in about us microseconds (the loop's timer). */
void rt_jobs_set_timer(rt_jobs *js, void (*arm)(void *arg, int64_t us), void *arg);
/* The timer: hands the call to the store if its window is over (else sets the timer again). */
void rt_jobs_appends_due(rt_jobs *js);
/* A bus drain ended: with no window, the call collected during it goes now. */
void rt_jobs_appends_drained(rt_jobs *js);
/* Hands the call being collected to the store now (stopping). */
void rt_jobs_flush_appends(rt_jobs *js);

/* Where a local Delivery's DeliveryReply goes (the server API): reply is the packed
 * DeliveryReply, or NULL when the Delivery was not accepted (shed, out of memory, or the
 * router stopped with it queued): nothing was done, the caller may retry. */
typedef void (*rt_jobs_reply_fn)(void *arg, uint64_t token, const uint8_t *reply, size_t len);
/* A Delivery (packed) routed exactly like one sent as a request on <prefix>.deliver (same
 * validation, history, order and DeliveryReply), whose reply goes to fn instead of a subject.
 * fn is called exactly once, possibly before this returns. */
void rt_jobs_deliver_local(rt_jobs *js, const uint8_t *data, size_t len, rt_jobs_reply_fn fn,
                           void *arg, uint64_t token);

#endif
