/* rt_chan_fake: see rt_chan_fake.h. Linear scans over a small fixed table. The lookups are
 * weak symbols: once the registry defines them (R1's part), its definitions are used. */
#include "rt_chan_fake.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "rt_registry.h"

#define FAKE_MAX 64

typedef struct sub {
    char channel[130], node[64], user[130];
    uint64_t epoch, conn;
} sub;

static sub subs[FAKE_MAX];
static size_t nsubs;

void fake_chan_reset(void)
{
    nsubs = 0;
}

void fake_chan_sub(const char *channel, const char *node, uint64_t epoch, uint64_t conn,
                   const char *user)
{
    ck_assert_uint_lt(nsubs, FAKE_MAX);
    sub *s = &subs[nsubs++];
    snprintf(s->channel, sizeof(s->channel), "%s", channel);
    snprintf(s->node, sizeof(s->node), "%s", node);
    snprintf(s->user, sizeof(s->user), "%s", user);
    s->epoch = epoch;
    s->conn = conn;
}

/* 1 if an earlier entry of the channel has the same key (node or user) */
static int seen_before(size_t i, const char *channel, int by_node)
{
    for (size_t k = 0; k < i; k++)
        if (!strcmp(subs[k].channel, channel) &&
            !strcmp(by_node ? subs[k].node : subs[k].user, by_node ? subs[i].node : subs[i].user))
            return 1;
    return 0;
}

__attribute__((weak)) size_t rt_registry_channel_nodes(const rt_registry *r, const char *channel, rt_node_fn fn,
                                 void *arg)
{
    (void)r;
    size_t n = 0;
    for (size_t i = 0; i < nsubs; i++)
        if (!strcmp(subs[i].channel, channel) && !seen_before(i, channel, 1)) {
            fn(subs[i].node, subs[i].epoch, arg);
            n++;
        }
    return n;
}

__attribute__((weak)) size_t rt_registry_channel_users(const rt_registry *r, const char *channel, rt_user_fn fn,
                                 void *arg, size_t *conns)
{
    (void)r;
    size_t n = 0, c = 0;
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(subs[i].channel, channel))
            continue;
        c++;
        if (!seen_before(i, channel, 0)) {
            fn(subs[i].user, arg);
            n++;
        }
    }
    if (conns)
        *conns = c;
    return n;
}

__attribute__((weak)) size_t rt_registry_channel_count(const rt_registry *r)
{
    (void)r;
    size_t n = 0;
    for (size_t i = 0; i < nsubs; i++) {
        int first = 1;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(subs[k].channel, subs[i].channel))
                first = 0;
        n += (size_t)first;
    }
    return n;
}

__attribute__((weak)) size_t rt_registry_subscription_count(const rt_registry *r)
{
    (void)r;
    return nsubs;
}
