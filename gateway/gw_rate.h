/* gw_rate: a token bucket. `rate` tokens per second accrue up to `burst`; each event takes
 * one. Used for the node's admission rate and for each connection's inbound frames. Not
 * thread-safe by itself: the owner serialises calls. */
#ifndef GW_RATE_H
#define GW_RATE_H
#include <stdint.h>

typedef struct gw_rate {
    float tokens;
    int64_t last_us;
} gw_rate;

/* Starts full. */
static inline void gw_rate_init(gw_rate *r, double burst, int64_t now_us)
{
    r->tokens = (float)burst;
    r->last_us = now_us;
}

/* Takes a token if there is one: 1 = allowed, 0 = over the rate. rate <= 0 allows all. */
static inline int gw_rate_take(gw_rate *r, double rate, double burst, int64_t now_us)
{
    if (rate <= 0)
        return 1;
    if (now_us > r->last_us) {
        double t = r->tokens + (double)(now_us - r->last_us) * rate / 1e6;
        r->tokens = (float)(t > burst ? burst : t);
        r->last_us = now_us;
    }
    if (r->tokens >= 1.0f) {
        r->tokens -= 1.0f;
        return 1;
    }
    return 0;
}

/* Seconds until a token is available (at least 1), for Retry-After. */
static inline int gw_rate_wait_s(const gw_rate *r, double rate)
{
    if (rate <= 0)
        return 1;
    double s = (1.0 - (double)r->tokens) / rate;
    int n = (int)s + 1;
    return n < 1 ? 1 : n;
}

#endif
