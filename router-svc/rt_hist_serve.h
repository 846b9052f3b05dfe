/* rt_hist_serve: answers HistoryRequests on <prefix>.history, from a stream's ring (rt_ring,
 * loaded from Redis at start and again after Redis came back or one of the stream's appends
 * was voided) when it covers them, else by a read through the store (at most READS_MAX in
 * flight; beyond, the answer is UNAVAILABLE). It owns one ring per stream whose kind rt_kinds
 * marks `ring` (today the broadcast stream), and each ring learns the appends to its stream
 * this replica kept. */
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
/* The rings learn the parts of a job this replica kept (with their seqs) in their streams. */
void rt_hist_serve_note(rt_hist_serve *hs, const rt_job *j);
/* The ring of the stream (kind, name), if it has one, may speak for a history that no longer
 * is (one of its appends was voided): it is emptied, and Redis answers until it is loaded
 * again. */
void rt_hist_serve_forget(rt_hist_serve *hs, unsigned kind, const char *name);
/* The same for every ring (Redis came back, maybe without its data). */
void rt_hist_serve_forget_rings(rt_hist_serve *hs);
/* Loads each ring from Redis unless it is loaded or loading (the tick, and start). */
void rt_hist_serve_load_rings(rt_hist_serve *hs);
/* Items the ring of the stream (kind, name) holds; 0 without a ring. */
size_t rt_hist_serve_ring_len(const rt_hist_serve *hs, unsigned kind, const char *name);

#endif
