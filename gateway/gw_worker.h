/* gw_worker: one event loop. Each worker is a thread with its own libwebsockets context
 * listening on the shared port (SO_REUSEPORT when there are several), and it alone owns the
 * connections the kernel hands it: their state, their outbound queues, and every lws call on
 * them. Other threads talk to a worker only through gw_worker_post*, which queue a job and
 * wake the loop with lws_cancel_service.
 *
 * A connection id carries its worker's index in its top 8 bits, so a delivery can be routed
 * to the right worker without any shared table. */
#ifndef GW_WORKER_H
#define GW_WORKER_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "gw_node.h"
#include "gw_outq.h"

#define GW_WORKER_MAX 255
#define GW_CONN_ID_WORKER_SHIFT 56

static inline unsigned gw_conn_id_worker(uint64_t conn_id)
{
    return (unsigned)(conn_id >> GW_CONN_ID_WORKER_SHIFT);
}

/* Creates the worker's lws context (binds the port). NULL and err filled on failure. */
gw_worker *gw_worker_new(gw_node *node, unsigned idx, char *err, size_t errlen);
int gw_worker_start(gw_worker *w);
/* Waits for the thread to stop by itself at the end of a drain; its context is gone then, and
 * jobs posted later are dropped. */
void gw_worker_join(gw_worker *w);
/* Frees a joined worker; nothing may post to it any more. */
void gw_worker_free(gw_worker *w);

/* Any thread. Queues one delivery of msg (the worker takes over the caller's reference) to
 * every connection of the worker (all != 0) or to the listed connection ids. Returns 0, or
 * -1 on allocation failure (msg is then released). */
int gw_worker_post_delivery(gw_worker *w, gw_msg *msg, int all, const uint64_t *ids, size_t n);
/* Any thread. Queues one channel item (the worker takes over the caller's reference) for the
 * worker's local subscribers of channel (a valid channel name). 0, or -1 on allocation
 * failure (msg is then released). */
int gw_worker_post_channel(gw_worker *w, gw_msg *msg, const char *channel);
/* Any thread. Queues a close order (code, reason: copied) for the listed connection ids of
 * this worker, behind the deliveries posted before it. Ids not found are ignored. 0, or -1 on
 * allocation failure. */
int gw_worker_post_close(gw_worker *w, const uint64_t *ids, size_t n, uint16_t code,
                         const char *reason);
/* Any thread. Starts this worker's drain; it stops its loop once every connection is gone
 * or the deadline (monotonic us) has passed. */
int gw_worker_post_drain(gw_worker *w, int64_t deadline_mono_us);

/* Any thread. Hands a history reply (owned by the worker from now on, may be NULL) to the
 * connection that asked. -1 if the worker is gone (the caller still owns hr). */
int gw_worker_post_history(gw_worker *w, uint64_t conn_id, unsigned stream, uint32_t reqno,
                           Wsgate__HistoryReply *hr);

/* Any thread. Hands an answer to a connection's tracked frame (gw_bus_rpc_fn; data owned by
 * the worker from now on, may be NULL). -1 if the worker is gone (the caller keeps data). */
int gw_worker_post_rpc(gw_worker *w, uint64_t conn_id, uint32_t reqno, int status, json_t *data);

/* Any thread. Asks the worker to announce its whole connection set (ConnEvent RESYNC on
 * its stream, in parts), after NATS reconnected or a router asked. */
int gw_worker_post_resync(gw_worker *w);

/* For the connections of this worker (gw_conn), on the worker's thread only. */
typedef struct gw_conn gw_conn;
gw_node *gw_worker_node(gw_worker *w);
/* The worker's local subscriber index (gw_chidx: channel -> its gw_conns here). */
struct gw_chidx *gw_worker_chidx(gw_worker *w);
unsigned gw_worker_index(const gw_worker *w);
/* Largest batch of frames written to one socket in one send. */
#define GW_WRITE_BATCH 16384
/* The worker's scratch buffer of GW_WRITE_BATCH bytes where a connection's queued frames
 * are gathered for one send; valid until the callback returns. */
unsigned char *gw_worker_write_buf(gw_worker *w);
int gw_worker_draining(const gw_worker *w);
/* The worker's permessage-deflate codec (gw_deflate), NULL with WSGATE_COMPRESSION=off. */
struct gw_deflate *gw_worker_deflate(gw_worker *w);
/* A scratch buffer of GW_WORKER_BATCH_BUF bytes where a batch frame is built (gw_batch: its
 * header's room, then up to GW_BATCH_MAX bytes of payload); NULL if it cannot be made. Valid
 * until the callback returns. */
#define GW_WORKER_BATCH_BUF (16 + 65536)
unsigned char *gw_worker_batch_buf(gw_worker *w);
/* Calls gw_conn_hold_over(c) about delay_us from now (WSGATE_BATCH_DELAY; one delay for the
 * whole worker). -1 on allocation failure. */
int gw_worker_hold(gw_worker *w, gw_conn *c, int64_t delay_us);
/* The sweep: frames queued to a connection whose queue was empty are written by the worker
 * itself right after the job that queued them (a broadcast has queued to all its targets by
 * then, so frames queued together leave together), instead of arming POLLOUT and waiting for
 * an epoll turn and a writeable callback per connection. c joins the list once (c->sweep_pos);
 * gw_conn_sweep_write(c) is called at the end of this loop turn, GW_WORKER_SWEEP_SLICE
 * connections at a time with the loop's other events in between, so a frame queued meanwhile
 * waits at most one sweep (a connection still listed takes it along, any other joins the
 * end). -1 on allocation failure (c is not listed). */
#define GW_WORKER_SWEEP_SLICE 512
int gw_worker_sweep_add(gw_worker *w, gw_conn *c);
/* c leaves the list (closed); a connection not listed is left alone. */
void gw_worker_sweep_remove(gw_worker *w, gw_conn *c);
uint64_t gw_worker_next_conn_id(gw_worker *w);
/* The next sequence number of this worker's ConnEvent stream (1, 2, ...). */
uint64_t gw_worker_next_event_seq(gw_worker *w);
void gw_worker_add_conn(gw_worker *w, gw_conn *c);
/* The node's outbound queues exceed the memory budget: shed soon (not inside the caller). */
void gw_worker_over_budget(gw_worker *w);
/* The connection waits for a history reply: check its deadline from time to time. */
void gw_worker_watch(gw_worker *w, gw_conn *c);
void gw_worker_unwatch(gw_worker *w, gw_conn *c);
/* The connection has calls waiting for answers (gw_rpc): expire them on time. */
void gw_worker_rpc_watch(gw_worker *w, gw_conn *c);
void gw_worker_rpc_unwatch(gw_worker *w, gw_conn *c);
void gw_worker_remove_conn(gw_worker *w, gw_conn *c);

#endif
