/* wsg_nats: the NATS connection every wsgate process uses (see wsg_nats.h). */
#include "wsg_nats.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsg_log.h"
#include "wsg_redact.h"
#include "wsg_time.h"

#define RECONNECT_WAIT_MS 250
#define RECONNECT_JITTER_MS 250
#define RECONNECT_JITTER_TLS_MS 1000
#define PING_INTERVAL_MS 5000
#define MAX_PINGS_OUT 3
/* How long close waits for nats.c's last callback before giving up on it. */
#define CLOSED_CB_WAIT_US (10 * 1000 * 1000)

static void on_connected(natsConnection *nc, void *closure)
{
    wsg_nats *n = closure;
    atomic_store(&n->connected, 1);
    wsg_info("nats_connected", NULL);
    if (n->cfg.on_connected)
        n->cfg.on_connected(n->cfg.arg);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    wsg_nats *n = closure;
    atomic_store(&n->connected, 1);
    atomic_fetch_add(&n->reconnects, 1);
    wsg_info("nats_reconnected", NULL);
    if (n->cfg.on_connected)
        n->cfg.on_connected(n->cfg.arg);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    wsg_nats *n = closure;
    atomic_store(&n->connected, 0);
    wsg_warn("nats_disconnected", NULL);
    if (n->cfg.on_disconnected)
        n->cfg.on_disconnected(n->cfg.arg);
}

/* The last callback nats.c makes for a connection: after it, nothing touches `n`. */
static void on_closed(natsConnection *nc, void *closure)
{
    wsg_nats *n = closure;
    atomic_store(&n->connected, 0);
    atomic_store(&n->closed_seen, 1);
}

/* Asynchronous errors: a refused subscription or publish (the server's permissions), a slow
 * consumer. They may repeat per message, so at most one line a second, with the count of
 * those not shown. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    wsg_nats *n = closure;
    int64_t now = wsg_mono_us(), last = atomic_load(&n->error_logged_us);
    if (last && now - last < 1000000) {
        atomic_fetch_add(&n->errors_suppressed, 1);
        return;
    }
    atomic_store(&n->error_logged_us, now);
    char detail[WSG_REDACT_MAX];
    const char *text = NULL;
    if (nc)
        natsConnection_GetLastError(nc, &text);
    wsg_warn("nats_error", "status=\"%s\" detail=\"%s\" suppressed=%lld", natsStatus_GetText(err),
             wsg_redact_urls(text ? text : "", detail, sizeof(detail)),
             (long long)atomic_exchange(&n->errors_suppressed, 0));
}

/* Splits "a, b,c" into trimmed, non-empty URLs. `copy` owns the strings `urls` points into. */
static int split_urls(const char *list, char **copy, const char ***urls, int *count)
{
    *copy = strdup(list ? list : "");
    if (!*copy)
        return -1;
    int max = 1;
    for (const char *p = *copy; *p; p++)
        max += *p == ',';
    *urls = calloc((size_t)max, sizeof(**urls));
    if (!*urls) {
        free(*copy);
        *copy = NULL;
        return -1;
    }
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(*copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok)
            (*urls)[n++] = tok;
    }
    *count = n;
    return 0;
}

static int given(const char *s)
{
    return s && *s;
}

/* Credentials and TLS. nats.c loads the files now, so a missing or bad one fails start-up;
 * *what names the setting that failed. */
static natsStatus set_auth(natsOptions *o, const wsg_nats_opts *a, const char **what_out)
{
    natsStatus s = NATS_OK;
    const char *what = NULL;
    if (given(a->user)) {
        what = "WSGATE_NATS_USER";
        s = natsOptions_SetUserInfo(o, a->user, a->password);
    }
    if (s == NATS_OK && given(a->creds)) {
        what = "WSGATE_NATS_CREDS";
        s = natsOptions_SetUserCredentialsFromFiles(o, a->creds, NULL);
    }
    if (s == NATS_OK && wsg_nats_opts_tls(a)) {
        what = "TLS";
        s = natsOptions_SetSecure(o, true);
    }
    if (s == NATS_OK && given(a->tls_ca)) {
        what = "WSGATE_NATS_TLS_CA";
        s = natsOptions_LoadCATrustedCertificates(o, a->tls_ca);
    }
    if (s == NATS_OK && given(a->tls_cert)) {
        what = "WSGATE_NATS_TLS_CERT/WSGATE_NATS_TLS_KEY";
        s = natsOptions_LoadCertificatesChain(o, a->tls_cert, a->tls_key);
    }
    if (s == NATS_OK && given(a->tls_hostname)) {
        what = "WSGATE_NATS_TLS_HOSTNAME";
        s = natsOptions_SetExpectedHostname(o, a->tls_hostname);
    }
    if (s != NATS_OK)
        *what_out = what;
    return s;
}

static natsStatus build_options(wsg_nats *n, natsOptions **out, const char **what)
{
    natsOptions *o = NULL;
    char *copy = NULL;
    const char **urls = NULL;
    int count = 0;
    const wsg_nats_cfg *c = &n->cfg;

    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK && split_urls(c->urls, &copy, &urls, &count) != 0)
        s = NATS_NO_MEMORY;
    if (s == NATS_OK && count == 0)
        s = NATS_INVALID_ARG;
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, urls, count);
    if (s == NATS_OK && c->name)
        s = natsOptions_SetName(o, c->name);
    if (s == NATS_OK && c->auth)
        s = set_auth(o, c->auth, what);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, n);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, RECONNECT_WAIT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, RECONNECT_JITTER_MS, RECONNECT_JITTER_TLS_MS);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, PING_INTERVAL_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, MAX_PINGS_OUT);
    if (s == NATS_OK && c->reconnect_buf > 0)
        /* nats.c takes an int; a larger request is served as the largest it can hold. */
        s = natsOptions_SetReconnectBufSize(
            o, c->reconnect_buf > INT_MAX ? INT_MAX : (int)c->reconnect_buf);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, n);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, n);
    if (s == NATS_OK && c->ordered_delivery) {
        /* One library-wide delivery thread: messages of every subscription on this
         * connection reach the application in the order they arrived. */
        s = nats_SetMessageDeliveryPoolSize(1);
        if (s == NATS_OK)
            s = natsOptions_UseGlobalMessageDelivery(o, true);
    }
    free(urls);
    free(copy);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

natsStatus wsg_nats_open(wsg_nats *n, const wsg_nats_cfg *cfg)
{
    memset(n, 0, sizeof(*n));
    n->cfg = *cfg;
    atomic_init(&n->connected, 0);
    atomic_init(&n->reconnects, 0);
    atomic_init(&n->closed_seen, 0);
    atomic_init(&n->error_logged_us, 0);
    atomic_init(&n->errors_suppressed, 0);

    char shown[WSG_REDACT_MAX];
    wsg_redact_urls(cfg->urls, shown, sizeof(shown));
    natsOptions *opts = NULL;
    const char *what = "WSGATE_NATS_URL";
    natsStatus s = build_options(n, &opts, &what);
    /* nats.c's error text may quote a URL: shown redacted like the URLs themselves */
    char detail[WSG_REDACT_MAX];
    if (s != NATS_OK) {
        wsg_error("nats_options_failed", "urls=\"%s\" setting=\"%s\" status=\"%s\" detail=\"%s\"",
                  shown, what, natsStatus_GetText(s),
                  wsg_redact_urls(nats_GetLastError(NULL), detail, sizeof(detail)));
        return s;
    }
    natsConnection *conn = NULL;
    s = natsConnection_Connect(&conn, opts);
    /* The connection keeps its own copy of the options. */
    natsOptions_Destroy(opts);
    if (s == NATS_NOT_YET_CONNECTED) {
        wsg_warn("nats_not_yet_connected", "urls=\"%s\" retrying=true", shown);
        n->conn = conn;
        return NATS_OK;
    }
    if (s != NATS_OK) {
        wsg_error("nats_connect_failed", "urls=\"%s\" status=\"%s\" detail=\"%s\"", shown,
                  natsStatus_GetText(s),
                  wsg_redact_urls(nats_GetLastError(NULL), detail, sizeof(detail)));
        return s;
    }
    n->conn = conn;
    /* nats.c makes no connected callback for a connection established inside Connect, but a
     * disconnected one may already be on its way: raise the flag first, then take it back if
     * the link is already gone, so the later callback always has the last word. */
    atomic_store(&n->connected, 1);
    if (natsConnection_Status(conn) != NATS_CONN_STATUS_CONNECTED) {
        atomic_store(&n->connected, 0);
        return NATS_OK;
    }
    wsg_info("nats_connected", "urls=\"%s\"", shown);
    /* Callers learn of every connection the same way, the first one included. */
    if (n->cfg.on_connected)
        n->cfg.on_connected(n->cfg.arg);
    return NATS_OK;
}

void wsg_nats_close(wsg_nats *n, int64_t timeout_ms)
{
    if (!n->conn)
        return;
    if (timeout_ms > 0 && atomic_load(&n->connected)) {
        natsStatus s = natsConnection_FlushTimeout(n->conn, timeout_ms);
        if (s != NATS_OK)
            wsg_warn("nats_flush_failed", "status=\"%s\"", natsStatus_GetText(s));
    }
    natsConnection_Close(n->conn);
    /* Callbacks run on a nats.c thread and point at `n`; return only once the closed callback,
     * always the last one, has run, so the caller may free `n` and the callbacks' arg. */
    int64_t deadline = wsg_mono_us() + CLOSED_CB_WAIT_US;
    while (!atomic_load(&n->closed_seen) && wsg_mono_us() < deadline) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&n->closed_seen))
        wsg_warn("nats_close_callback_late", "waited_ms=%d", CLOSED_CB_WAIT_US / 1000);
    natsConnection_Destroy(n->conn);
    n->conn = NULL;
    atomic_store(&n->connected, 0);
}
