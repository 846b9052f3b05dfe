/* gw_resume: a connection's place in its two streams (its user's stream and the broadcast
 * stream), which is what makes delivery gap-free. At connect it asks the routers for what the
 * client missed (from ?since=&broadcast_since=&epoch=, or the messages stored while the user
 * had no connection), sends the welcome with the positions the following frames start from,
 * then the replay, then live deliveries — in seq order, without duplicates. Live deliveries
 * that arrive meanwhile are held and merged. Later, a live delivery that skips a seq (lost on
 * the bus, or overtaken by another router replica's) is held while the gap is fetched from
 * history; a gap history cannot fill becomes a `resync` frame, never a silent hole.
 * The decisions are gw_order's; this is the shell that feeds it lws and NATS inputs and
 * performs its actions. On the connection's worker thread only. */
#ifndef GW_RESUME_H
#define GW_RESUME_H
#include <stdint.h>
#include <libwebsockets.h>

#include "gw_order.h"
#include "gw_outq.h"
#include "gw_query.h"
#include "proto/wsgate.pb-c.h"

typedef struct gw_worker gw_worker;
typedef struct gw_conn gw_conn;

/* Per connection: the decisions' state (gw_order) for the two streams a connection follows
 * today, s[0] the user stream and s[1] the broadcast stream, and the worker's watch of its
 * request deadlines. Private to gw_resume.c; public only to live inside gw_conn without
 * another allocation. */
typedef struct gw_streams {
    gw_order ord;
    gw_order_stream s[2];
    lws_dll2_t watch;         /* in the worker's list while a request is outstanding */
} gw_streams;

/* After authentication: reads the resume arguments of the connection's query and asks for
 * the history. -1: the arguments are malformed (the caller closes). */
int gw_resume_start(gw_worker *w, gw_conn *c, const gw_query *q);
/* A live delivery that belongs to a stream (m->seq != 0). Takes its own reference. */
void gw_resume_deliver(gw_worker *w, gw_conn *c, gw_msg *m);
/* The reply to a history request; takes ownership of hr (may be NULL: undecodable). */
void gw_resume_reply(gw_worker *w, gw_conn *c, unsigned stream, uint32_t reqno,
                     Wsgate__HistoryReply *hr);
/* A delivery outside any stream that arrived before the welcome: kept until it is sent. */
void gw_resume_hold_early(gw_worker *w, gw_conn *c, gw_msg *m);
static inline int gw_resume_welcomed(const gw_streams *st) { return st->ord.welcomed; }
/* Retries or gives up requests past their deadline. */
void gw_resume_check(gw_worker *w, gw_conn *c, int64_t now_us);
/* The queue drained: fetch further pages of a long replay. */
void gw_resume_writeable(gw_worker *w, gw_conn *c);
void gw_resume_free(gw_worker *w, gw_conn *c);

#endif
