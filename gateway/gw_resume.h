/* gw_resume: a connection's place in the streams it follows (today, from its connect: its
 * user's stream and the broadcast stream; which kinds, and how each starts, is the table of
 * kind rules in gw_resume.c), which is what makes delivery gap-free. At connect it asks the
 * routers for what the client missed (from ?since=&broadcast_since=&epoch=, or the messages
 * stored while the user had no connection), sends the welcome with the positions the
 * following frames start from,
 * then the replay, then live deliveries — in seq order, without duplicates. Live deliveries
 * that arrive meanwhile are held and merged. Later, a live delivery that skips a seq (lost on
 * the bus, or overtaken by another router replica's) is held while the gap is fetched from
 * history; a gap history cannot fill becomes a `resync` frame, never a silent hole. When
 * history does not answer within WSGATE_WELCOME_TIMEOUT, the welcome goes out without it
 * ("history":"unavailable", the client's own positions; wsgate_welcomes_degraded_total) and
 * history is asked on in the background (gw_order_check).
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

/* Per connection: the streams it follows (n of them, an array of its own; each stream is
 * identified by its kind and name, never by its place in the array), the decisions' state
 * (gw_order), and the worker's watch of its request deadlines. Private to gw_resume.c;
 * public only to live inside gw_conn without another allocation. */
typedef struct gw_streams {
    gw_order ord;
    gw_order_stream *s;
    uint32_t n;
    lws_dll2_t watch;         /* in the worker's list while a request is outstanding */
} gw_streams;

typedef enum {
    GW_RESUME_OK = 0,
    GW_RESUME_BAD_ARGS = -1, /* malformed since, broadcast_since or epoch: the caller closes 1008 */
    GW_RESUME_NOMEM = -2,    /* the caller closes 1011 */
} gw_resume_status;

/* After authentication: reads the resume arguments of the connection's query, sets up the
 * streams it follows from its connect, and asks for the history. */
gw_resume_status gw_resume_start(gw_worker *w, gw_conn *c, const gw_query *q);
/* A live delivery that belongs to a stream (m->seq != 0). Takes its own reference. A message
 * of a stream the connection does not follow is delivered as it comes, like one outside any
 * stream. */
void gw_resume_deliver(gw_worker *w, gw_conn *c, gw_msg *m);
/* The reply to request reqno of the connection's stream (the index the request was sent
 * with); takes ownership of hr (may be NULL: undecodable). */
void gw_resume_reply(gw_worker *w, gw_conn *c, unsigned stream, uint32_t reqno,
                     Wsgate__HistoryReply *hr);
/* A delivery outside any stream that arrived before the welcome: kept until it is sent. */
void gw_resume_hold_early(gw_worker *w, gw_conn *c, gw_msg *m);
static inline int gw_resume_welcomed(const gw_streams *st) { return st->ord.welcomed; }
/* Channel streams, followed from a subscribe frame until an unsubscribe or the close. Each
 * has a slot of the connection's array (kept while the connection lives: replies name it;
 * freed slots are reused) and its name, allocated once per subscription. */
/* The slot of the connection's stream of channel, or -1. */
int gw_resume_channel_slot(const gw_conn *c, const char *channel);
/* How many channels the connection follows. */
size_t gw_resume_channel_count(const gw_conn *c);
/* The channel of slot i, or NULL when slot i is not a channel's (iterate i < c->st.n). */
const char *gw_resume_channel_at(const gw_conn *c, uint32_t i);
/* Starts following channel (valid, not followed yet): after since (has_since) of epoch (0:
 * none) or at its head. ref: the subscribe's "id" as gw_frame keeps it, for the
 * `subscribed` answer, which goes out (after the welcome) once history said where the
 * stream starts; the replay follows it. GW_RESUME_NOMEM: nothing changed. */
gw_resume_status gw_resume_subscribe(gw_worker *w, gw_conn *c, const char *channel,
                                     const char *ref, int has_since, uint64_t since,
                                     uint64_t epoch);
/* A subscribe of a channel already followed (slot): answers `subscribed` with the current
 * position now, or, while the first answer is still owed, makes it carry this ref. */
void gw_resume_resubscribe(gw_worker *w, gw_conn *c, int slot, const char *ref);
/* Stops following the channel of slot: nothing of it is delivered any more. */
void gw_resume_unsubscribe(gw_worker *w, gw_conn *c, int slot);
/* Retries or gives up requests past their deadline. */
void gw_resume_check(gw_worker *w, gw_conn *c, int64_t now_us);
/* The queue drained: fetch further pages of a long replay. */
void gw_resume_writeable(gw_worker *w, gw_conn *c);
void gw_resume_free(gw_worker *w, gw_conn *c);

#endif
