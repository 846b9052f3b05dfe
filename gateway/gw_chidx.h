/* gw_chidx: one worker's local subscriber index: for each channel, the connections of this
 * worker subscribed to it, so that a channel item arriving once per node reaches exactly its
 * subscribers. Members are opaque pointers (the worker's gw_conns), each at most once per
 * channel. Compact: a channel costs one entry shared by its local subscribers, a subscription
 * one pointer in its channel's array. On the worker's thread only; no locking. */
#ifndef GW_CHIDX_H
#define GW_CHIDX_H
#include <stddef.h>

typedef struct gw_chidx gw_chidx;

gw_chidx *gw_chidx_new(void);
void gw_chidx_free(gw_chidx *x);
/* Adds member to channel's subscribers (name: a valid channel, NUL-terminated). 0, or -1
 * (ENOMEM; nothing changed). Adding a member twice is the caller's bug: not checked. */
int gw_chidx_add(gw_chidx *x, const char *channel, void *member);
/* Removes member from channel's subscribers; a channel left without any is forgotten.
 * 1 if it was there, 0 if not. */
int gw_chidx_remove(gw_chidx *x, const char *channel, void *member);
/* channel's subscribers: *out points at n members, valid until the index next changes (the
 * caller does not change it while it walks them). */
size_t gw_chidx_members(const gw_chidx *x, const char *channel, void *const **out);
size_t gw_chidx_channels(const gw_chidx *x);      /* channels with a subscriber here */
size_t gw_chidx_subscriptions(const gw_chidx *x); /* (member, channel) pairs */

#endif
