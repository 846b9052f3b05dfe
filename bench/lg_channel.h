/* lg_channel: the load generator's bookkeeping for the channel scenario (issue #12).
 *
 * Connection i follows channel i % channels. The connections whose subscribe was answered
 * `subscribed` are the channel's members, each with a slot in it; arming fixes the
 * membership and plans which channel every publication of the run goes to. A publication
 * is expected once at every member of its channel, so the module keeps one bit per
 * (publication, member) and tells a first arrival from a duplicate, a publication at a
 * connection of another channel (misrouted) and one it cannot place (foreign); what was sent
 * and never arrived is counted exactly. No I/O: the engine writes frames and calls in. */
#ifndef LG_CHANNEL_H
#define LG_CHANNEL_H
#include <stddef.h>
#include <stdint.h>

typedef struct lg_chan lg_chan;

typedef enum {
    LG_CH_FIRST,      /* the first arrival of this publication at this member */
    LG_CH_DUP,        /* it had arrived there before */
    LG_CH_MISROUTED,  /* the connection follows another channel */
    LG_CH_FOREIGN,    /* not of this run's plan, or at a connection that is not a member */
} lg_chan_rx;

/* conns >= 1, 1 <= channels <= conns; NULL when out of memory or out of range. */
lg_chan *lg_chan_new(int conns, int channels);
void lg_chan_free(lg_chan *c); /* NULL is fine */

int lg_chan_channels(const lg_chan *c);
int lg_chan_of(const lg_chan *c, uint32_t conn); /* the channel conn follows */
/* The channel's name: prefix and number ("bench-7"). Returns its length, or -1 if cap is
 * too small. */
int lg_chan_name(char *out, size_t cap, const char *prefix, int channel);

/* Records that conn's subscription was answered. -1 (nothing recorded) once armed, for a
 * conn out of range, or one already a member. */
int lg_chan_join(lg_chan *c, uint32_t conn);
int lg_chan_subscriptions(const lg_chan *c);
int lg_chan_members(const lg_chan *c, int channel);

/* Fixes the membership and plans msgs publications, each to a channel picked uniformly from
 * seed (the same seed, the same plan). -1 when out of memory or already armed. */
int lg_chan_arm(lg_chan *c, int64_t msgs, uint64_t seed);
int64_t lg_chan_msgs(const lg_chan *c);
int lg_chan_target(const lg_chan *c, int64_t k); /* the channel of publication k, or -1 */
/* Publication k was written to a socket: its members now expect it. */
void lg_chan_sent(lg_chan *c, int64_t k);
lg_chan_rx lg_chan_receive(lg_chan *c, uint32_t conn, int64_t k);
/* Arrivals expected (members of each sent publication's channel, summed) and those of them
 * that have not arrived. */
int64_t lg_chan_expected(const lg_chan *c);
int64_t lg_chan_missing(const lg_chan *c);

/* The frames the engine writes: {"type":"subscribe","channel":NAME} and
 * {"type":"publish","channel":NAME,"content":CONTENT} (content: digits and spaces, written
 * as is). Return the length, or -1 if cap is too small. */
int lg_chan_subscribe_frame(char *out, size_t cap, const char *prefix, int channel);
int lg_chan_publish_frame(char *out, size_t cap, const char *prefix, int channel,
                          const char *content);

#endif
