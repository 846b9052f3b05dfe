/* rt_channels_standin: REPLACED BY R1's IMPLEMENTATION AT MERGE (issue #12). The registry's
 * channel lookups (rt_registry.h) belong to the router-membership part, built on another
 * branch; until it is merged this branch needs a definition to link, and this one answers as
 * a registry without channel interest would: no nodes, no users, no subscriptions. Delete
 * this file (and its line in CMakeLists.txt) when R1's rt_registry_channel_* are in. */
#include "rt_registry.h"

size_t rt_registry_channel_nodes(const rt_registry *r, const char *channel, rt_node_fn fn,
                                 void *arg)
{
    (void)r, (void)channel, (void)fn, (void)arg;
    return 0;
}

size_t rt_registry_channel_users(const rt_registry *r, const char *channel, rt_user_fn fn,
                                 void *arg, size_t *conns)
{
    (void)r, (void)channel, (void)fn, (void)arg;
    if (conns)
        *conns = 0;
    return 0;
}

size_t rt_registry_channel_count(const rt_registry *r)
{
    (void)r;
    return 0;
}

size_t rt_registry_subscription_count(const rt_registry *r)
{
    (void)r;
    return 0;
}
