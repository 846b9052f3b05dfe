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

#include "gw_peer.h"
#include "gw_rate.h"

#define ORIGIN_MAX 64
/* A flood of distinct addresses must not grow the table without bound: past this many,
 * unknown addresses are counted in one shared overflow entry (fail closed for them). */
#define IP_TABLE_MAX 200000

typedef struct ip_entry {
    UT_hash_handle hh;
    uint8_t addr[16];
    int64_t window_start_us; /* start of the current fixed window */
    uint32_t cur, prev;      /* attempts in the current and the previous window */
} ip_entry;

struct gw_admit {
    gw_admit_cfg cfg;
    char *origins[ORIGIN_MAX];
    size_t n_origins;
    gw_peer_cidrs allow;   /* exempt from the per-IP limit */
    gw_peer_cidrs trusted; /* proxies whose forwarded-for headers are believed */

    pthread_mutex_t lock; /* guards everything below */
    gw_rate bucket;
    ip_entry *ips;
    size_t n_ips;
    ip_entry overflow;
    int64_t last_sweep_us;
};

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
    a->cfg.trusted_proxies = NULL;
    if (pthread_mutex_init(&a->lock, NULL)) {
        free(a);
        snprintf(err, errlen, "cannot create a mutex");
        return NULL;
    }
    if (each_item(cfg->allowed_origins, add_origin, a)) {
        snprintf(err, errlen, "WSGATE_ALLOWED_ORIGINS: at most %d origins", ORIGIN_MAX);
        goto fail;
    }
    char why[128];
    if (gw_peer_cidrs_parse(&a->allow, cfg->ip_allowlist, why, sizeof(why))) {
        snprintf(err, errlen, "WSGATE_IP_ALLOWLIST: %s", why);
        goto fail;
    }
    if (gw_peer_cidrs_parse(&a->trusted, cfg->trusted_proxies, why, sizeof(why))) {
        snprintf(err, errlen, "WSGATE_TRUSTED_PROXIES: %s", why);
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
        gw_peer_from_sockaddr(peer, addr);
        if (!gw_peer_cidrs_match(&a->allow, addr) && !ip_allow(a, addr, now_us, retry_after_s)) {
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

const gw_peer_cidrs *gw_admit_trusted(const gw_admit *a)
{
    return &a->trusted;
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
