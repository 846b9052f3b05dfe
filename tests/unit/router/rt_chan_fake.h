/* rt_chan_fake: a test-local registry of channel subscribers behind the four
 * rt_registry_channel_* lookups (rt_registry.h), linked into test_rt_channel instead of the
 * router's own (R1's membership, or router-svc/rt_channels_standin.c before R1's merge): the
 * routing tests set up subscribers directly, whatever the real registry does to keep them.
 * Once R1's implementation is in, these tests can drop the fake and subscribe through
 * ConnEvents instead. */
#ifndef RT_CHAN_FAKE_H
#define RT_CHAN_FAKE_H
#include <stdint.h>

void fake_chan_reset(void);
/* connection conn of user on (node, epoch) follows channel */
void fake_chan_sub(const char *channel, const char *node, uint64_t epoch, uint64_t conn,
                   const char *user);

#endif
