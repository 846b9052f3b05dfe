/* lg_chanrun: the channel scenario of wsgate-loadgen (see lg_chanrun.c); the engine calls
 * these from its phases, its frame reader and its writeable callback. */
#ifndef LG_CHANRUN_H
#define LG_CHANRUN_H
#include <jansson.h>

#include "lg_engine.h"
#include "lg_frame.h"

/* Starts the subscribe phase (creates the books on first use). -1: out of memory. */
int lg_chanrun_begin(lg_app *a, int64_t now);
/* Starts the subscribes that are due; 1 once the phase is over (all answered, or
 * --connect-timeout after the last one started). */
int lg_chanrun_step(lg_app *a, int64_t now);
/* A subscribe was answered: subscribed (ok) or refused / its connection closed. */
void lg_chanrun_on_answer(lg_app *a, lg_conn *c, int ok);
void lg_chanrun_on_publication(lg_app *a, lg_conn *c, const lg_frame *f);
/* Publication k, due at due_wall, queued on a random open connection. */
void lg_chanrun_queue(lg_app *a, int64_t k, int64_t due_wall);
/* Writeable callback: the connection's subscribe, or its next queued publication. Return
 * what the callback returns (-1 closes the connection). */
int lg_chanrun_write_subscribe(lg_app *a, lg_conn *c, struct lws *wsi);
int lg_chanrun_write_publish(lg_app *a, lg_conn *c, struct lws *wsi, const tx_item *it);
/* What the channel scenario adds to a run's JSON report. */
json_t *lg_chanrun_report(lg_app *a);
/* Prints the subscriptions' summary line; 1 when a subscribe was not answered `subscribed`. */
int lg_chanrun_summary(lg_app *a);

#endif
