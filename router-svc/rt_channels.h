/* rt_channels: the router's memory of channel subscriptions, kept by rt_registry.
 *
 * Per channel: its subscribed connections counted per node (routing: a publication goes once
 * to each node with a subscriber) and per user (presence, and join / leave: a user joins a
 * channel when its first connection subscribes and leaves when its last one stops). Per
 * connection: its channels (rt_chan_conn, which the registry keeps in its connection; a
 * connection without subscriptions costs nothing).
 *
 * Changes are grouped like the registry's: every call between two rt_channels_settle calls is
 * one change, and settle reports the join / leave transitions net of the whole change (a user
 * who loses and regains a channel within it, e.g. by a RESYNC moving the subscription to
 * another connection, has none). Channels and users left without a subscription are freed at
 * settle. Single-threaded; no I/O. */
#ifndef RT_CHANNELS_H
#define RT_CHANNELS_H
#include <stddef.h>
#include <stdint.h>

/* A RESYNC listing more channels for one connection than this is refused (the gateway's
 * WSGATE_MAX_CHANNELS_PER_CONN is at most 4096). */
#define RT_MAX_CONN_CHANNELS 4096

/* A join (1) or leave (0) of user in channel. */
typedef struct rt_chan_change {
    char *channel;
    char *user_id;
    int join;
} rt_chan_change;

/* Owns its strings. */
typedef struct rt_chan_list {
    rt_chan_change *v;
    size_t n, cap;
} rt_chan_list;

void rt_chan_list_init(rt_chan_list *l);
void rt_chan_list_clear(rt_chan_list *l); /* empties, keeps capacity */
void rt_chan_list_free(rt_chan_list *l);
/* Copies both strings. 0 / -1 (ENOMEM). */
int rt_chan_list_add(rt_chan_list *l, const char *channel, size_t channel_len,
                     const char *user_id, size_t user_len, int join);

typedef struct rt_channels rt_channels;
typedef struct rt_chan_conn rt_chan_conn; /* one connection's channels; NULL: none */

rt_channels *rt_channels_new(void);
/* Frees everything; the connections' rt_chan_conn must have been dropped first. */
void rt_channels_free(rt_channels *cs);

/* The connection (on node_id, of user_id) whose channels *cc are subscribes to channel
 * (a valid name). 0 added, 1 already subscribed, -1 ENOMEM (nothing changed). */
int rt_channels_sub(rt_channels *cs, rt_chan_conn **cc, const char *node_id,
                    const char *user_id, const char *channel);
/* 0 removed, 1 not subscribed. */
int rt_channels_unsub(rt_channels *cs, rt_chan_conn **cc, const char *channel);
/* Ends every subscription of the connection; *cc becomes NULL. */
void rt_channels_drop(rt_channels *cs, rt_chan_conn **cc);
/* The connection's channels become exactly channels[0..n) (duplicates ignored). 0 / -1
 * (ENOMEM: the connection keeps at least the channels it had that are listed). */
int rt_channels_replace(rt_channels *cs, rt_chan_conn **cc, const char *node_id,
                        const char *user_id, const char *const *channels, size_t n);
/* Ends the change: its join / leave transitions are appended to out (NULL: not wanted). 0, or
 * -1 if a transition could not be recorded (ENOMEM; the state is right regardless). */
int rt_channels_settle(rt_channels *cs, rt_chan_list *out);

size_t rt_chan_conn_count(const rt_chan_conn *cc);
const char *rt_chan_conn_at(const rt_chan_conn *cc, size_t i);

size_t rt_channels_count(const rt_channels *cs);         /* channels with subscribers */
size_t rt_channels_subscriptions(const rt_channels *cs); /* (connection, channel) pairs */
/* fn once per node with a subscriber of channel. Returns how many. */
size_t rt_channels_nodes(const rt_channels *cs, const char *channel,
                         void (*fn)(const char *node_id, void *arg), void *arg);
/* fn once per user subscribed to channel; *conns (may be NULL) gets the number of subscribed
 * connections. Returns the number of users. */
size_t rt_channels_users(const rt_channels *cs, const char *channel,
                         void (*fn)(const char *user_id, void *arg), void *arg, size_t *conns);

#endif
