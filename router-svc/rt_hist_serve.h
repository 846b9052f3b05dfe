/* rt_hist_serve: answers HistoryRequests on <prefix>.history, from the broadcast ring (rt_ring,
 * loaded from Redis at start and again after Redis came back or a broadcast was voided) when
 * it covers them, else by a read through the store (at most READS_MAX in flight; beyond, the
 * answer is UNAVAILABLE). It owns the ring, and the ring learns each broadcast this replica
 * kept. */
#ifndef RT_HIST_SERVE_H
#define RT_HIST_SERVE_H
#include <nats/nats.h>

#include "rt_ctx.h"
#include "rt_route.h"

typedef struct rt_hist_serve rt_hist_serve;

/* NULL on ENOMEM. c must outlive it. */
rt_hist_serve *rt_hist_serve_new(rt_ctx *c);
void rt_hist_serve_free(rt_hist_serve *hs);
void rt_hist_serve_request(rt_hist_serve *hs, const natsMsg *msg);
/* The ring learns the broadcast parts of a job this replica kept (with their seqs). */
void rt_hist_serve_note(rt_hist_serve *hs, const rt_job *j);
/* The ring may speak for a history that no longer is (Redis came back, a broadcast was
 * voided): it is emptied, and Redis answers until it is loaded again. */
void rt_hist_serve_forget_ring(rt_hist_serve *hs);
/* Loads the ring from Redis unless it is loaded or loading (the tick, and start). */
void rt_hist_serve_load_ring(rt_hist_serve *hs);
size_t rt_hist_serve_ring_len(const rt_hist_serve *hs);

#endif
