/* gw_chan: a worker's channel subscriptions. Subscribe and unsubscribe frames of its
 * connections (after gw_perm_check allowed them): the connection's channel stream
 * (gw_resume), the worker's local subscriber index (gw_chidx), the SUBSCRIBE / UNSUBSCRIBE
 * ConnEvents the routers keep channel interest by, and the wsgate_channel_subscriptions
 * gauge. Channel items from NATS reach the index's subscribers here; the worker's RESYNC
 * announcements (connections with their channels) are built here too. On the worker's thread
 * only. */
#ifndef GW_CHAN_H
#define GW_CHAN_H
#include "gw_frame.h"
#include "gw_outq.h"
#include "wsg_client.h"

typedef struct gw_worker gw_worker;
typedef struct gw_conn gw_conn;

/* A subscribe frame: starts following f->channel (or answers `subscribed` again when it is
 * followed already). Returns WSG_CLIENT_ERR_NONE, or the error to answer with (*message
 * static text): too_many_channels, unavailable (no memory). */
wsg_client_error gw_chan_subscribe(gw_worker *w, gw_conn *c, const gw_frame *f,
                                   const char **message);
/* An unsubscribe frame: stops following f->channel (if it did) and answers `unsubscribed`. */
void gw_chan_unsubscribe(gw_worker *w, gw_conn *c, const gw_frame *f);
/* The connection closes: its subscriptions end (no events: its CLOSE ends them for the
 * routers). Before gw_resume_free. */
void gw_chan_close(gw_worker *w, gw_conn *c);
/* A channel item from NATS: to every local subscriber of channel (m's stream, or a join /
 * leave frame outside any stream). Connections not subscribed get nothing. */
void gw_chan_deliver(gw_worker *w, const char *channel, gw_msg *m);
/* Announces the worker's whole connection set (conns: its uthash) with their channels, in
 * RESYNC parts bounded by count and by packed size. */
void gw_chan_announce(gw_worker *w, gw_conn *conns);

#endif
