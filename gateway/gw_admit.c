/* gw_admit: admission control before the upgrade; see gw_admit.h. */
#include "gw_admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uthash.h>

#include "gw_rate.h"

#define ORIGIN_MAX 64
#define CIDR_MAX 64
/* A flood of distinct addresses must not grow the table without bound: past this many,
 * unknown addresses are counted in one shared overflow entry (fail closed for them). */
#define IP_TABLE_MAX 200000

typedef struct ip_entry {
    UT_hash_handle hh;
    uint8_t addr[16];
    int64_t window_start_us; /* start of the current fixed window */
    uint32_t cur, prev;      /* attempts in the current and the previous window */
} ip_entry;

typedef struct cidr {
    uint8_t addr[16];
    int bits;
} cidr;

struct gw_admit {
    gw_admit_cfg cfg;
    char *origins[ORIGIN_MAX];
    size_t n_origins;
    cidr allow[CIDR_MAX];
    size_t n_allow;

    pthread_mutex_t lock; /* guards everything below */
    gw_rate bucket;
    ip_entry *ips;
    size_t n_ips;
    ip_entry overflow;
    int64_t last_sweep_us;
};

static void to_v6(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa && sa->sa_family == AF_INET) {
        /* IPv4 as ::ffff:a.b.c.d, so one table and one CIDR form serve both families. */
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    }
}

int gw_admit_parse_cidr(const char *s, uint8_t addr[16], int *prefix_bits)
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n + 1);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1)
            return -1;
    }
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        if (bits < 0)
            bits = 32;
        if (bits > 32)
            return -1;
        memset(addr, 0, 16);
        addr[10] = addr[11] = 0xff;
        memcpy(addr + 12, &v4, 4);
        *prefix_bits = (int)bits + 96;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &v6) == 1) {
        if (bits < 0)
            bits = 128;
        if (bits > 128)
            return -1;
        memcpy(addr, &v6, 16);
        *prefix_bits = (int)bits;
        return 0;
    }
    return -1;
}

static int cidr_match(const cidr *c, const uint8_t a[16])
{
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

/* Splits a comma-separated list, calling fn on each trimmed, non-empty item. */
static int each_item(const char *list, int (*fn)(gw_admit *, const char *), gw_admit *a)
{
    if (!list)
        return 0;
    char *copy = strdup(list);
    if (!copy)
        return -1;
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        char *e = t + strlen(t);
        while (e > t && e[-1] == ' ')
            *--e = '\0';
        if (*t)
            rc = fn(a, t);
    }
    free(copy);
    return rc;
}

static int add_origin(gw_admit *a, const char *o)
{
    if (a->n_origins == ORIGIN_MAX)
        return -1;
    a->origins[a->n_origins] = strdup(o);
    return a->origins[a->n_origins++] ? 0 : -1;
}

static int add_cidr(gw_admit *a, const char *s)
{
    if (a->n_allow == CIDR_MAX)
        return -1;
    cidr *c = &a->allow[a->n_allow];
    if (gw_admit_parse_cidr(s, c->addr, &c->bits))
        return -1;
    a->n_allow++;
    return 0;
}

gw_admit *gw_admit_new(const gw_admit_cfg *cfg, char *err, size_t errlen)
{
    gw_admit *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    a->cfg.allowed_origins = NULL;
    a->cfg.ip_allowlist = NULL;
    if (pthread_mutex_init(&a->lock, NULL)) {
        free(a);
        snprintf(err, errlen, "cannot create a mutex");
        return NULL;
    }
    if (each_item(cfg->allowed_origins, add_origin, a)) {
        snprintf(err, errlen, "WSGATE_ALLOWED_ORIGINS: at most %d origins", ORIGIN_MAX);
        goto fail;
    }
    if (each_item(cfg->ip_allowlist, add_cidr, a)) {
        snprintf(err, errlen, "WSGATE_IP_ALLOWLIST: \"%s\" is not a list of at most %d CIDRs",
                 cfg->ip_allowlist, CIDR_MAX);
        goto fail;
    }
    gw_rate_init(&a->bucket, cfg->accept_burst, 0);
    a->bucket.last_us = -1; /* filled on first use */
    return a;
fail:
    gw_admit_free(a);
    return NULL;
}

void gw_admit_free(gw_admit *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_origins; i++)
        free(a->origins[i]);
    ip_entry *e, *tmp;
    HASH_ITER(hh, a->ips, e, tmp) {
        HASH_DEL(a->ips, e);
        free(e);
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

const char GW_ADMIT_ORIGIN_UNREADABLE[] = "";

static int origin_ok(const gw_admit *a, const char *origin)
{
    if (!a->n_origins)
        return 1;
    if (origin == GW_ADMIT_ORIGIN_UNREADABLE)
        return 0;
    /* Non-browser clients send no Origin; the list protects browsers' ambient credentials. */
    if (!origin || !*origin)
        return 1;
    for (size_t i = 0; i < a->n_origins; i++)
        if (strcasecmp(a->origins[i], origin) == 0)
            return 1;
    return 0;
}

static int allowlisted(const gw_admit *a, const uint8_t addr[16])
{
    for (size_t i = 0; i < a->n_allow; i++)
        if (cidr_match(&a->allow[i], addr))
            return 1;
    return 0;
}

/* Moves an entry's fixed windows forward to now. */
static void roll(ip_entry *e, int64_t window_us, int64_t now_us)
{
    int64_t elapsed = now_us - e->window_start_us;
    if (elapsed < window_us)
        return;
    e->prev = elapsed < 2 * window_us ? e->cur : 0;
    e->cur = 0;
    e->window_start_us = now_us - (elapsed % window_us);
}

static void sweep(gw_admit *a, int64_t window_us, int64_t now_us)
{
    ip_entry *e, *tmp;
    HASH_ITER(hh, a->ips, e, tmp) {
        if (now_us - e->window_start_us >= 2 * window_us) {
            HASH_DEL(a->ips, e);
            free(e);
            a->n_ips--;
        }
    }
    a->last_sweep_us = now_us;
}

/* The sliding-window counter: the previous fixed window weighs in proportion to how much of
 * it still lies inside the sliding window ending now. Returns 1 if the attempt is allowed
 * (and counts it). Called with the lock held. */
static int ip_allow(gw_admit *a, const uint8_t addr[16], int64_t now_us, int *retry_after_s)
{
    int64_t window_us = a->cfg.ip_window_ms * 1000;
    if (window_us <= 0)
        window_us = 1;
    if (now_us - a->last_sweep_us >= window_us)
        sweep(a, window_us, now_us);

    ip_entry *e;
    HASH_FIND(hh, a->ips, addr, 16, e);
    if (!e) {
        e = a->n_ips < IP_TABLE_MAX ? calloc(1, sizeof(*e)) : NULL;
        if (e) {
            memcpy(e->addr, addr, 16);
            e->window_start_us = now_us;
            HASH_ADD(hh, a->ips, addr, 16, e);
            a->n_ips++;
        } else {
            e = &a->overflow;
            if (!e->window_start_us)
                e->window_start_us = now_us;
        }
    }
    roll(e, window_us, now_us);
    double into = (double)(now_us - e->window_start_us) / (double)window_us;
    double estimate = (double)e->prev * (1.0 - into) + (double)e->cur;
    if (estimate + 1 > (double)a->cfg.ip_limit) {
        int64_t left_ms = (e->window_start_us + window_us - now_us) / 1000;
        *retry_after_s = (int)(left_ms / 1000) + 1;
        return 0;
    }
    e->cur++;
    return 1;
}

gw_admit_result gw_admit_check(gw_admit *a, const char *origin, const struct sockaddr *peer,
                               int64_t connections, int64_t now_us, int *retry_after_s)
{
    *retry_after_s = 0;
    if (!origin_ok(a, origin))
        return GW_ADMIT_ORIGIN;
    if (a->cfg.max_connections > 0 && connections >= a->cfg.max_connections) {
        *retry_after_s = 5;
        return GW_ADMIT_MAX_CONNECTIONS;
    }
    gw_admit_result r = GW_ADMIT_OK;
    pthread_mutex_lock(&a->lock);
    if (a->cfg.ip_limit > 0) {
        uint8_t addr[16];
        to_v6(peer, addr);
        if (!allowlisted(a, addr) && !ip_allow(a, addr, now_us, retry_after_s)) {
            r = GW_ADMIT_IP_RATE;
            goto out;
        }
    }
    if (a->cfg.accept_rate > 0) {
        if (a->bucket.last_us < 0)
            gw_rate_init(&a->bucket, a->cfg.accept_burst, now_us);
        if (!gw_rate_take(&a->bucket, a->cfg.accept_rate, a->cfg.accept_burst, now_us)) {
            *retry_after_s = gw_rate_wait_s(&a->bucket, a->cfg.accept_rate);
            r = GW_ADMIT_ACCEPT_RATE;
        }
    }
out:
    pthread_mutex_unlock(&a->lock);
    return r;
}

int gw_admit_http_status(gw_admit_result r)
{
#define STATUS_(name, label, status) [GW_ADMIT_##name] = status,
    static const int statuses[GW_ADMIT__COUNT] = {[GW_ADMIT_OK] = 200,
                                                  GW_ADMIT_REFUSAL_MAP(STATUS_)};
#undef STATUS_
    return (unsigned)r < GW_ADMIT__COUNT ? statuses[r] : 503;
}

const char *gw_admit_label(gw_admit_result r)
{
#define LABEL_(name, label, status) [GW_ADMIT_##name] = label,
    static const char *const labels[GW_ADMIT__COUNT] = {[GW_ADMIT_OK] = "ok",
                                                        GW_ADMIT_REFUSAL_MAP(LABEL_)};
#undef LABEL_
    return (unsigned)r < GW_ADMIT__COUNT ? labels[r] : "unknown";
}
