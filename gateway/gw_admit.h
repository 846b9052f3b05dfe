/* gw_admit: who may open a WebSocket, decided before the upgrade so a refused client costs
 * one HTTP response (or, with WSGATE_ADMISSION_CLOSE, a 101 and a 4029 close) and no
 * connection state. Checks, in order: the Origin allow-list (403), the node's connection cap
 * (503), the per-client-IP sliding window of connection attempts (429, allow-listed ranges
 * exempt; the IP is the one resolved behind trusted proxies), and the node-wide admission
 * rate (503) that turns a reconnect storm into a stream spread over the surviving nodes.
 * Refusals carry a Retry-After. Also holds the trusted proxies (WSGATE_TRUSTED_PROXIES).
 * Shared by every worker; thread-safe. */
#ifndef GW_ADMIT_H
#define GW_ADMIT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gw_peer.h"

typedef struct gw_admit gw_admit;

typedef struct gw_admit_cfg {
    const char *allowed_origins; /* comma-separated exact origins; NULL/"" = any */
    int64_t max_connections;     /* 0 = no cap */
    double accept_rate;          /* new connections per second for the node; 0 = no limit */
    double accept_burst;
    int64_t ip_limit;            /* attempts per window per client IP; 0 = no limit */
    int64_t ip_window_ms;
    const char *ip_allowlist;    /* CIDRs exempt from ip_limit: "127.0.0.0/8,::1/128" */
    const char *trusted_proxies; /* CIDRs whose X-Forwarded-For / X-Real-IP are believed */
} gw_admit_cfg;

/* Why a connection is refused: XX(ENUM_SUFFIX, metric label and error text, HTTP status). */
#define GW_ADMIT_REFUSAL_MAP(XX) \
    XX(ORIGIN, "origin", 403) \
    XX(MAX_CONNECTIONS, "max_connections", 503) \
    XX(IP_RATE, "ip_rate", 429) \
    XX(ACCEPT_RATE, "accept_rate", 503)

#define GW_ADMIT_ENUM_(name, label, status) GW_ADMIT_##name,
typedef enum {
    GW_ADMIT_OK = 0,
    GW_ADMIT_REFUSAL_MAP(GW_ADMIT_ENUM_) GW_ADMIT__COUNT
} gw_admit_result;
#undef GW_ADMIT_ENUM_

/* NULL and err filled when a setting cannot be parsed (bad CIDR). */
gw_admit *gw_admit_new(const gw_admit_cfg *cfg, char *err, size_t errlen);
void gw_admit_free(gw_admit *a);

/* Pass as origin when the request has an Origin header that could not be read: refused
 * whenever an allow-list is configured (fail closed). */
extern const char GW_ADMIT_ORIGIN_UNREADABLE[];

/* origin: the Origin header or NULL (none sent); peer: the client's address (resolved through
 * the trusted proxies, gw_peer_resolve); connections: open now.
 * On refusal *retry_after_s says when to come back. */
gw_admit_result gw_admit_check(gw_admit *a, const char *origin, const struct sockaddr *peer,
                               int64_t connections, int64_t now_us, int *retry_after_s);

/* WSGATE_TRUSTED_PROXIES, parsed (read-only: any thread may use it). */
const gw_peer_cidrs *gw_admit_trusted(const gw_admit *a);

int gw_admit_http_status(gw_admit_result r);
const char *gw_admit_label(gw_admit_result r); /* metric label and error text */

#endif
