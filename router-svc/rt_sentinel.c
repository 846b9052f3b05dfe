/* rt_sentinel: SENTINEL get-master-addr-by-name, and a polled +switch-master subscription. */
#include "rt_sentinel.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis.h>

#include "wsg_log.h"
#include "wsg_time.h"

#define IO_TIMEOUT_MS 1000
/* A subscription is a watch, not the path of any request: it may not stall the store thread
 * for long, so its connection gets a short timeout and a sentinel that does not answer is
 * tried again less and less often. */
#define SUB_TIMEOUT_MS 200
#define RESUBSCRIBE_MIN_US (1000 * 1000)
#define RESUBSCRIBE_MAX_US (30 * 1000 * 1000)
/* The store thread calls rt_sentinel_switched on every turn, and under load it turns once per
 * pipeline: the subscriptions are read at most this often (a poll per sentinel each time). */
#define SWITCH_POLL_US (50 * 1000)

struct rt_sentinel {
    rt_hostport *addrs;
    size_t n;
    size_t last_good;    /* asked first next time */
    char *name;
    char *password;
    int warned;          /* "no sentinel answered" logged since the last answer */
    /* per sentinel: subscribed to +switch-master (NULL: not yet, or dropped), and the
     * earliest time to subscribe again. Every sentinel, not one: the one we would pick may be
     * on the side of a partition that did not vote the switch. */
    redisContext **sub;
    int64_t *next_sub_us;
    int64_t *sub_backoff_us;
    int64_t next_poll_us;
    int switched;
};

rt_sentinel *rt_sentinel_new(const rt_hostport *sentinels, size_t n, const char *master_name,
                             const char *password)
{
    rt_sentinel *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->addrs = calloc(n ? n : 1, sizeof(*s->addrs));
    s->sub = calloc(n ? n : 1, sizeof(*s->sub));
    s->next_sub_us = calloc(n ? n : 1, sizeof(*s->next_sub_us));
    s->sub_backoff_us = calloc(n ? n : 1, sizeof(*s->sub_backoff_us));
    s->name = strdup(master_name);
    s->password = strdup(password ? password : "");
    if (!s->addrs || !s->sub || !s->next_sub_us || !s->sub_backoff_us || !s->name || !s->password) {
        rt_sentinel_free(s);
        return NULL;
    }
    memcpy(s->addrs, sentinels, n * sizeof(*sentinels));
    s->n = n;
    return s;
}

void rt_sentinel_free(rt_sentinel *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->sub && i < s->n; i++)
        if (s->sub[i])
            redisFree(s->sub[i]);
    free(s->sub);
    free(s->next_sub_us);
    free(s->sub_backoff_us);
    free(s->addrs);
    free(s->name);
    free(s->password);
    free(s);
}

/* A connection to sentinel i, authenticated; NULL when it cannot be had within timeout_ms. */
static redisContext *open_one(rt_sentinel *s, size_t i, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(s->addrs[i].host, s->addrs[i].port, tv);
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (s->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", s->password);
        int ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* Asks sentinel i. 0 with host/port, or -1. */
static int ask(rt_sentinel *s, size_t i, char *host, size_t hostlen, int *port)
{
    redisContext *c = open_one(s, i, IO_TIMEOUT_MS);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", s->name);
    int rc = -1;
    /* an unknown name answers nil; a known one [ip, port] */
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[0]->len > 0 && r->element[0]->len < hostlen) {
        char *end;
        long p = strtol(r->element[1]->str, &end, 10);
        if (*end == '\0' && p > 0 && p < 65536) {
            memcpy(host, r->element[0]->str, r->element[0]->len + 1);
            *port = (int)p;
            rc = 0;
        }
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

int rt_sentinel_master(rt_sentinel *s, char *host, size_t hostlen, int *port)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t i = (s->last_good + k) % s->n;
        if (ask(s, i, host, hostlen, port) == 0) {
            if (s->warned || k)
                wsg_info("redis_sentinel_answered", "sentinel=%s:%d master=%s addr=%s:%d",
                         s->addrs[i].host, s->addrs[i].port, s->name, host, *port);
            s->last_good = i;
            s->warned = 0;
            return 0;
        }
    }
    if (!s->warned)
        wsg_warn("redis_sentinel_unanswered", "sentinels=%zu master=%s", s->n, s->name);
    s->warned = 1;
    return -1;
}

/* The next subscription attempt on sentinel i, after a failure or a drop. */
static void sub_later(rt_sentinel *s, size_t i)
{
    int64_t b = s->sub_backoff_us[i];
    b = b ? (b * 2 > RESUBSCRIBE_MAX_US ? RESUBSCRIBE_MAX_US : b * 2) : RESUBSCRIBE_MIN_US;
    s->sub_backoff_us[i] = b;
    s->next_sub_us[i] = wsg_mono_us() + b;
}

static void drop_sub(rt_sentinel *s, size_t i)
{
    redisFree(s->sub[i]);
    s->sub[i] = NULL;
    sub_later(s, i);
}

static void subscribe(rt_sentinel *s, size_t i)
{
    redisContext *c = open_one(s, i, SUB_TIMEOUT_MS);
    redisReply *r = c ? redisCommand(c, "SUBSCRIBE +switch-master") : NULL;
    int ok = r && r->type == REDIS_REPLY_ARRAY;
    if (r)
        freeReplyObject(r);
    if (ok) {
        s->sub[i] = c;
        s->sub_backoff_us[i] = 0;
        return;
    }
    if (c)
        redisFree(c);
    sub_later(s, i);
}

/* One published message: ["message", "+switch-master", "<name> <old ip> <old port> <new ip>
 * <new port>"]. */
static void on_message(rt_sentinel *s, size_t i, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *text = r->element[2]->str;
    size_t nlen = strlen(s->name);
    if (strncmp(text, s->name, nlen) != 0 || text[nlen] != ' ')
        return;
    wsg_info("redis_sentinel_switch", "sentinel=%s:%d switch=\"%.200s\"", s->addrs[i].host,
             s->addrs[i].port, text);
    s->switched = 1;
    /* ask this one first: it knows the new master, while a sentinel cut off with the old one
     * would still name it */
    s->last_good = i;
}

/* Reads what sentinel i published, without blocking. */
static void poll_sub(rt_sentinel *s, size_t i)
{
    while (s->sub[i]) {
        struct pollfd pfd = {.fd = s->sub[i]->fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            return;
        /* readable: data, or the sentinel went away (read gives 0) */
        if (redisBufferRead(s->sub[i]) != REDIS_OK) {
            drop_sub(s, i);
            return;
        }
        void *reply = NULL;
        while (redisGetReplyFromReader(s->sub[i], &reply) == REDIS_OK && reply) {
            on_message(s, i, reply);
            freeReplyObject(reply);
            reply = NULL;
        }
        if (s->sub[i]->err)
            drop_sub(s, i);
    }
}

int rt_sentinel_switched(rt_sentinel *s)
{
    int64_t now = wsg_mono_us();
    if (now < s->next_poll_us)
        return 0; /* a switch is only ever seen by a poll: none since the last one */
    s->next_poll_us = now + SWITCH_POLL_US;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->sub[i] && now >= s->next_sub_us[i])
            subscribe(s, i);
        poll_sub(s, i);
    }
    int sw = s->switched;
    s->switched = 0;
    return sw;
}
