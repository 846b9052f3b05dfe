/* wsg_nats: how every wsgate process connects to NATS. Reconnects forever with jittered
 * back-off, starts even when no server is reachable yet (retry on failed connect), and keeps
 * the process's view of the connection state in one atomic flag that readiness and metrics
 * read. Subscriptions made on the returned connection are re-established by nats.c after each
 * reconnect. */
#ifndef WSG_NATS_H
#define WSG_NATS_H
#include <stdatomic.h>
#include <stdint.h>
#include <nats/nats.h>
#include "wsg_nats_opts.h"

typedef struct wsg_nats_cfg {
    const char *urls;         /* comma-separated nats://host:port; shown in logs redacted */
    const wsg_nats_opts *auth; /* credentials and TLS (its url is not read); NULL: none */
    const char *name;         /* connection name shown by the server */
    int ordered_delivery;     /* 1: one delivery thread for every subscription, in arrival order */
    int64_t reconnect_buf;    /* bytes buffered while disconnected; 0 = nats.c default */
    /* Called after every (re)connection and after every disconnection. May be NULL.
     * Normally on nats.c threads; but when the first connection succeeds inside
     * wsg_nats_open, on_connected runs on the caller's thread before wsg_nats_open returns.
     * A first connection made later by the retry logic may call it before wsg_nats_open has
     * returned too (conn not yet set): use it to flip state and wake loops, not to publish. */
    void (*on_connected)(void *arg);
    void (*on_disconnected)(void *arg);
    void *arg;
} wsg_nats_cfg;

typedef struct wsg_nats {
    natsConnection *conn;
    atomic_int connected;       /* 1 while connected */
    _Atomic int64_t reconnects; /* count of successful reconnections */
    atomic_int closed_seen;     /* internal: nats.c made its last callback */
    _Atomic int64_t error_logged_us;   /* internal: rate limit of nats_error lines */
    _Atomic int64_t errors_suppressed;
    wsg_nats_cfg cfg;
} wsg_nats;

/* Creates the connection. Returns NATS_OK even if no server is up yet (it keeps trying).
 * Credentials or TLS files that cannot be loaded fail here (logged). */
natsStatus wsg_nats_open(wsg_nats *n, const wsg_nats_cfg *cfg);
/* Flushes (bounded by timeout_ms), closes and destroys. Safe on a zeroed struct. Returns once
 * nats.c has made its last callback, so `n` and cfg.arg may be freed afterwards. */
void wsg_nats_close(wsg_nats *n, int64_t timeout_ms);

#endif
