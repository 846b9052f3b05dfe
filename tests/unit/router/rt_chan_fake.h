/* rt_chan_fake: a test-local registry of channel subscribers behind the four
 * rt_registry_channel_* lookups (rt_registry.h), linked into test_rt_channel instead of the
 * router's stand-in (router-svc/rt_channels_standin.c) until R1's membership is merged: the
 * routing tests set up subscribers directly. The fake's lookups are weak symbols, so when the
 * registry itself defines them (R1's rt_registry), the real ones are linked instead and the
 * tests' ConnEvents (OPEN, SUBSCRIBE) are what they answer from; fake_chan_sub then records
 * what nobody reads. */
#ifndef RT_CHAN_FAKE_H
#define RT_CHAN_FAKE_H
#include <stdint.h>

void fake_chan_reset(void);
/* connection conn of user on (node, epoch) follows channel */
void fake_chan_sub(const char *channel, const char *node, uint64_t epoch, uint64_t conn,
                   const char *user);

#endif
