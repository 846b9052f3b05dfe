#include "lg_channel.h"

#include <stdio.h>
#include <stdlib.h>

struct lg_chan {
    int conns, channels;
    int subscriptions;
    int armed;
    int32_t *slot;       /* per conn: its slot among its channel's members, -1 not a member */
    int32_t *members;    /* per channel */
    int64_t msgs;
    int32_t *target;     /* per publication: its channel */
    int64_t *base;       /* per publication: its first bit in seen */
    uint8_t *sent;       /* per publication: bit */
    uint8_t *seen;       /* per (publication, member): bit */
    int64_t expected;
};

/* snprintf's result as a length, or -1 when it did not fit */
static int fits(int n, size_t cap) { return n < 0 || (size_t)n >= cap ? -1 : n; }

lg_chan *lg_chan_new(int conns, int channels)
{
    if (conns < 1 || channels < 1 || channels > conns)
        return NULL;
    lg_chan *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->conns = conns;
    c->channels = channels;
    c->slot = malloc((size_t)conns * sizeof(*c->slot));
    c->members = calloc((size_t)channels, sizeof(*c->members));
    if (!c->slot || !c->members) {
        lg_chan_free(c);
        return NULL;
    }
    for (int i = 0; i < conns; i++)
        c->slot[i] = -1;
    return c;
}

void lg_chan_free(lg_chan *c)
{
    if (!c)
        return;
    free(c->slot);
    free(c->members);
    free(c->target);
    free(c->base);
    free(c->sent);
    free(c->seen);
    free(c);
}

int lg_chan_channels(const lg_chan *c) { return c->channels; }

int lg_chan_of(const lg_chan *c, uint32_t conn) { return (int)(conn % (uint32_t)c->channels); }

int lg_chan_name(char *out, size_t cap, const char *prefix, int channel)
{
    return fits(snprintf(out, cap, "%s%d", prefix, channel), cap);
}

int lg_chan_join(lg_chan *c, uint32_t conn)
{
    if (c->armed || conn >= (uint32_t)c->conns || c->slot[conn] >= 0)
        return -1;
    c->slot[conn] = c->members[lg_chan_of(c, conn)]++;
    c->subscriptions++;
    return 0;
}

int lg_chan_subscriptions(const lg_chan *c) { return c->subscriptions; }

int lg_chan_members(const lg_chan *c, int channel)
{
    return channel >= 0 && channel < c->channels ? c->members[channel] : 0;
}

int lg_chan_arm(lg_chan *c, int64_t msgs, uint64_t seed)
{
    if (c->armed || msgs < 0)
        return -1;
    size_t n = (size_t)msgs;
    c->target = malloc((n ? n : 1) * sizeof(*c->target));
    c->base = malloc((n + 1) * sizeof(*c->base));
    c->sent = calloc(n / 8 + 1, 1);
    if (!c->target || !c->base || !c->sent)
        return -1;
    /* xorshift64*: uniform enough to spread publications over channels */
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ull;
    int64_t bits = 0;
    for (int64_t k = 0; k < msgs; k++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c->target[k] = (int32_t)((x * 2685821657736338717ull >> 11) % (uint64_t)c->channels);
        c->base[k] = bits;
        bits += c->members[c->target[k]];
    }
    c->base[msgs] = bits;
    if (!(c->seen = calloc((size_t)(bits / 8 + 1), 1)))
        return -1;
    c->msgs = msgs;
    c->armed = 1;
    return 0;
}

int64_t lg_chan_msgs(const lg_chan *c) { return c->msgs; }

int lg_chan_target(const lg_chan *c, int64_t k)
{
    return c->armed && k >= 0 && k < c->msgs ? c->target[k] : -1;
}

static int bit(const uint8_t *b, int64_t k) { return (b[k >> 3] >> (k & 7)) & 1; }
static void set_bit(uint8_t *b, int64_t k) { b[k >> 3] |= (uint8_t)(1u << (k & 7)); }

void lg_chan_sent(lg_chan *c, int64_t k)
{
    if (!c->armed || k < 0 || k >= c->msgs || bit(c->sent, k))
        return;
    set_bit(c->sent, k);
    c->expected += c->members[c->target[k]];
}

lg_chan_rx lg_chan_receive(lg_chan *c, uint32_t conn, int64_t k)
{
    if (!c->armed || k < 0 || k >= c->msgs || conn >= (uint32_t)c->conns)
        return LG_CH_FOREIGN;
    if (lg_chan_of(c, conn) != c->target[k])
        return LG_CH_MISROUTED;
    if (c->slot[conn] < 0)
        return LG_CH_FOREIGN;
    int64_t b = c->base[k] + c->slot[conn];
    if (bit(c->seen, b))
        return LG_CH_DUP;
    set_bit(c->seen, b);
    return LG_CH_FIRST;
}

int64_t lg_chan_expected(const lg_chan *c) { return c->expected; }

int64_t lg_chan_missing(const lg_chan *c)
{
    int64_t missing = 0;
    for (int64_t k = 0; k < c->msgs; k++) {
        if (!bit(c->sent, k))
            continue;
        for (int64_t b = c->base[k]; b < c->base[k + 1]; b++)
            missing += !bit(c->seen, b);
    }
    return missing;
}

int lg_chan_subscribe_frame(char *out, size_t cap, const char *prefix, int channel)
{
    return fits(snprintf(out, cap, "{\"type\":\"subscribe\",\"channel\":\"%s%d\"}", prefix,
                         channel),
                cap);
}

int lg_chan_publish_frame(char *out, size_t cap, const char *prefix, int channel,
                          const char *content)
{
    return fits(snprintf(out, cap,
                         "{\"type\":\"publish\",\"channel\":\"%s%d\",\"content\":\"%s\"}",
                         prefix, channel, content),
                cap);
}
