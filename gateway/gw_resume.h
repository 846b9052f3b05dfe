/* gw_resume: a connection's place in its two streams (its user's stream and the broadcast
 * stream), which is what makes delivery gap-free. At connect it asks the routers for what the
 * client missed (from ?since=&broadcast_since=&epoch=, or the messages stored while the user
 * had no connection), sends the welcome with the positions the following frames start from,
 * then the replay, then live deliveries — in seq order, without duplicates. Live deliveries
 * that arrive meanwhile are held and merged. Later, a live delivery that skips a seq (lost on
 * the bus, or overtaken by another router replica's) is held while the gap is fetched from
 * history; a gap history cannot fill becomes a `resync` frame, never a silent hole.
 * On the connection's worker thread only. */
#ifndef GW_RESUME_H
#define GW_RESUME_H
#include <stdint.h>
#include <libwebsockets.h>

#include "gw_outq.h"
#include "gw_query.h"
#include "proto/wsgate.pb-c.h"

typedef struct gw_worker gw_worker;
typedef struct gw_conn gw_conn;

/* Per connection; index 0 is the user stream, 1 the broadcast stream. Private to
 * gw_resume.c; public only to live inside gw_conn without another allocation. */
typedef struct gw_streams {
    uint64_t pos[2];          /* last seq the client has been given (or starts after) */
    uint64_t epoch[2];        /* history epoch pos belongs to (0: unknown yet) */
    uint64_t after[2];        /* the outstanding request, kept for a retry */
    uint64_t until[2];
    uint64_t client_epoch;    /* ?epoch= */
    int64_t deadline[2];
    uint32_t reqno[2];
    uint8_t has_after[2];
    uint8_t tries[2];
    uint8_t waiting;          /* bit s: a request is outstanding, or a retry is due */
    uint8_t backoff;          /* bit s: the deadline is when to retry, nothing is in flight */
    uint8_t more;             /* bit s: history has further pages to fetch */
    uint8_t first;            /* bit s: the first reply has arrived */
    uint8_t resync;           /* bit s: a resync frame goes out with the welcome */
    uint8_t welcomed;
    uint8_t want_bhead;       /* the broadcast stream starts at the head the user reply tells */
    gw_msg **held;            /* waiting for their turn, sorted by (stream, seq) */
    uint32_t n_held, cap_held;
    size_t held_bytes;
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
static inline int gw_resume_welcomed(const gw_streams *st) { return st->welcomed; }
/* Retries or gives up requests past their deadline. */
void gw_resume_check(gw_worker *w, gw_conn *c, int64_t now_us);
/* The queue drained: fetch further pages of a long replay. */
void gw_resume_writeable(gw_worker *w, gw_conn *c);
void gw_resume_free(gw_worker *w, gw_conn *c);

#endif
