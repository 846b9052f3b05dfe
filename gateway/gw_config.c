/* gw_config: the gateway's option table and the checks that span several options. */
#include "gw_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_peer.h"
#include "gw_rpc.h"
#include "wsg_subject.h"


static size_t opts_for(void *cfg, wsg_opt *o)
{
    gw_config *c = cfg;
    const wsg_opt table[] = {
        {"WSGATE_NODE_ID", "node-id", WSG_OPT_STRING, NULL, 0, 0, &c->node_id,
         "this gateway's unique id, [A-Za-z0-9_-]{1,64} (default: gw-<hostname>)"},
        {"WSGATE_LISTEN", "listen", WSG_OPT_STRING, "0.0.0.0:8080", 0, 0, &c->listen,
         "address for clients: /ws, /ready, and /health and /metrics unless "
         "WSGATE_ADMIN_LISTEN is set"},
        {"WSGATE_ADMIN_LISTEN", "admin-listen", WSG_OPT_STRING, NULL, 0, 0, &c->admin_listen,
         "address for /health, /ready, /metrics (then /metrics is not on WSGATE_LISTEN and "
         "its /health shows only the status); unset: all on WSGATE_LISTEN"},
        {"WSGATE_WORKERS", "workers", WSG_OPT_INT, "0", 0, 255, &c->workers,
         "event-loop threads sharing the port (0 = number of cores)"},
        WSG_NATS_OPT_ROWS(&c->nats),
        {"WSGATE_PREFIX", "prefix", WSG_OPT_STRING, "wsgate", 0, 0, &c->prefix,
         "subject prefix shared by the cluster"},
        {"WSGATE_AUTH", "auth", WSG_OPT_STRING, "jwt", 0, 0, &c->auth,
         "jwt, or none (development only: clients name themselves with ?user_id=)"},
        {"WSGATE_JWT_SECRET", "jwt-secret", WSG_OPT_STRING, NULL, 0, 0, &c->jwt_secret,
         "HS256 secret, at least 32 bytes"},
        {"WSGATE_JWT_PUBLIC_KEY_FILE", "jwt-public-key-file", WSG_OPT_STRING, NULL, 0, 0,
         &c->jwt_public_key_file, "PEM public key (RSA: RS256, EC P-256: ES256)"},
        {"WSGATE_JWT_LEEWAY", "jwt-leeway", WSG_OPT_DURATION, "5s", 0, 3600000,
         &c->jwt_leeway_ms, "clock skew allowed on exp/nbf"},
        {"WSGATE_JWT_ISSUER", "jwt-issuer", WSG_OPT_STRING, NULL, 0, 0, &c->jwt_issuer,
         "tokens must carry this iss (unset: not checked)"},
        {"WSGATE_JWT_AUDIENCE", "jwt-audience", WSG_OPT_STRING, NULL, 0, 0, &c->jwt_audience,
         "tokens' aud (a string or an array) must name this (unset: not checked)"},
        {"WSGATE_JWT_JWKS_URL", "jwt-jwks-url", WSG_OPT_STRING, NULL, 0, 0, &c->jwt_jwks_url,
         "JSON Web Key Set URL (RS256/ES256 keys, chosen by the token's kid); fetched at start, "
         "on an unknown kid at most every 30 s, and every 5 min"},
        {"WSGATE_MAX_MESSAGE_BYTES", "max-message-bytes", WSG_OPT_BYTES, "64KiB", 64,
         16 * 1024 * 1024, &c->max_message_bytes, "largest client message (over it: close 1009)"},
        {"WSGATE_COMPRESSION", "compression", WSG_OPT_BOOL, "on", 0, 0, &c->compression,
         "permessage-deflate for clients that offer it (off: never negotiated)"},
        {"WSGATE_COMPRESSION_WINDOW_BITS", "compression-window-bits", WSG_OPT_INT, "10", 8, 15,
         &c->compression_window_bits,
         "server_max_window_bits announced and used (8 is used as 9: zlib's smallest)"},
        {"WSGATE_COMPRESSION_MIN_BYTES", "compression-min-bytes", WSG_OPT_BYTES, "256", 0,
         16 * 1024 * 1024, &c->compression_min_bytes,
         "smallest outbound payload compressed (smaller frames go as they are)"},
        {"WSGATE_BATCH_DELAY", "batch-delay", WSG_OPT_DURATION, "0", 0, 100, &c->batch_delay_ms,
         "how long a lone frame for a batching client may wait for company (0: never)"},
        {"WSGATE_OUTBOUND_QUEUE_BYTES", "outbound-queue-bytes", WSG_OPT_BYTES, "1MiB", 1024,
         INT64_C(1) << 32, &c->outbound_queue_bytes,
         "per-connection send queue (over it: close 4008, slow consumer)"},
        {"WSGATE_HEARTBEAT_INTERVAL", "heartbeat-interval", WSG_OPT_DURATION, "2s", 100, 60000,
         &c->heartbeat_interval_ms, "how often the node heartbeat goes to the routers"},
        {"WSGATE_PING_INTERVAL", "ping-interval", WSG_OPT_DURATION, "30s", 1000, 86400000,
         &c->ping_interval_ms, "ping a connection silent for this long"},
        {"WSGATE_PING_TIMEOUT", "ping-timeout", WSG_OPT_DURATION, "60s", 1000, 86400000,
         &c->ping_timeout_ms, "close a connection silent for this long"},
        {"WSGATE_DRAIN_SECONDS", "drain-seconds", WSG_OPT_DURATION, "10s", 0, 3600000,
         &c->drain_ms, "on SIGTERM, how long clients get to leave before the process exits"},
        {"WSGATE_WELCOME_TIMEOUT", "welcome-timeout", WSG_OPT_DURATION, "1s", 50, 60000,
         &c->welcome_timeout_ms, "a connecting client whose history has not answered by then is "
         "welcomed with \"history\":\"unavailable\" (history follows in the background)"},
        {"WSGATE_NATS_BUFFER_BYTES", "nats-buffer-bytes", WSG_OPT_BYTES, "8MiB", 0,
         INT64_C(1) << 32, &c->nats_buffer_bytes,
         "client frames buffered while NATS is unreachable (beyond: error 'unavailable')"},
        {"WSGATE_REUSEPORT", "reuseport", WSG_OPT_BOOL, "false", 0, 0, &c->reuseport,
         "let several gateway processes share the listening port (SO_REUSEPORT)"},
        {"WSGATE_MAX_CONNECTIONS", "max-connections", WSG_OPT_INT, "0", 0, INT64_C(1) << 40,
         &c->max_connections, "connections this node accepts (0 = as many as the OS allows); "
         "over it: HTTP 503 before the upgrade"},
        {"WSGATE_ACCEPT_RATE", "accept-rate", WSG_OPT_INT, "1000", 0, 10000000, &c->accept_rate,
         "new connections per second for the node (0 = unlimited); over it: HTTP 503 with "
         "Retry-After"},
        {"WSGATE_ACCEPT_BURST", "accept-burst", WSG_OPT_INT, "0", 0, 10000000, &c->accept_burst,
         "new connections admitted at once before the rate applies (0 = one second's worth)"},
        {"WSGATE_IP_CONN_LIMIT", "ip-conn-limit", WSG_OPT_INT, "100", 0, 100000000,
         &c->ip_conn_limit, "connection attempts per client IP per window (0 = unlimited); "
         "over it: HTTP 429"},
        {"WSGATE_IP_CONN_WINDOW", "ip-conn-window", WSG_OPT_DURATION, "60s", 1000, 86400000,
         &c->ip_conn_window_ms, "the sliding window of WSGATE_IP_CONN_LIMIT"},
        {"WSGATE_IP_ALLOWLIST", "ip-allowlist", WSG_OPT_STRING, "127.0.0.0/8,::1/128", 0, 0,
         &c->ip_allowlist, "CIDRs exempt from WSGATE_IP_CONN_LIMIT (none: no exemption)"},
        {"WSGATE_TRUSTED_PROXIES", "trusted-proxies", WSG_OPT_STRING, NULL, 0, 0,
         &c->trusted_proxies, "CIDRs of your own proxies: only from them X-Forwarded-For / "
         "X-Real-IP name the client (the per-IP limit, logs, client_ip); unset: none"},
        {"WSGATE_PROXY_PROTOCOL", "proxy-protocol", WSG_OPT_BOOL, "off", 0, 0,
         &c->proxy_protocol, "every client connection starts with a PROXY v1/v2 header (an L4 "
         "load balancer's); a connection without a valid one is refused"},
        {"WSGATE_ADMISSION_CLOSE", "admission-close", WSG_OPT_BOOL, "on", 0, 0,
         &c->admission_close, "refuse over WSGATE_MAX_CONNECTIONS, WSGATE_ACCEPT_RATE and "
         "WSGATE_IP_CONN_LIMIT by upgrading and closing with 4029 retry_after=<s>, which "
         "browsers can read (off: HTTP 503/429 before the upgrade)"},
        {"WSGATE_ALLOWED_ORIGINS", "allowed-origins", WSG_OPT_STRING, NULL, 0, 0,
         &c->allowed_origins, "browser Origins allowed to connect, comma-separated (unset: "
         "any); others: HTTP 403"},
        {"WSGATE_INBOUND_RATE", "inbound-rate", WSG_OPT_INT, "50", 0, 10000000, &c->inbound_rate,
         "client messages per second per connection (0 = unlimited); over it: error "
         "rate_limited, and close 1008 if it goes on"},
        {"WSGATE_INBOUND_BURST", "inbound-burst", WSG_OPT_INT, "100", 1, 10000000,
         &c->inbound_burst, "client messages a connection may send at once"},
        {"WSGATE_MEMORY_BUDGET", "memory-budget", WSG_OPT_BYTES, "0", 0, INT64_C(1) << 50,
         &c->memory_budget, "bytes all outbound queues of the node may hold (0 = a quarter of "
         "RAM); over it the connections with the longest queues are closed with 4008"},
        {"WSGATE_CHANNEL_NAMESPACES", "channel-namespaces", WSG_OPT_STRING, NULL, 0, 0,
         &c->channel_namespaces,
         "channel namespaces: a JSON object or a file path (docs/protocol.md; unset: one default "
         "namespace)"},
        {"WSGATE_MAX_CHANNELS_PER_CONN", "max-channels-per-conn", WSG_OPT_INT, "128", 1, 4096,
         &c->max_channels_per_conn, "channels one connection may subscribe to at once"},
        {"WSGATE_CLIENT_SEND", "client-send", WSG_OPT_STRING, "on", 0, 0, &c->client_send,
         "send_message targets: on (any user) or claim (the token's \"send\" patterns)"},
        {"WSGATE_RPC_TYPES", "rpc-types", WSG_OPT_STRING, NULL, 0, 0, &c->rpc_types,
         "client frame types sent as NATS requests (client RPC): comma-separated globs, `*` "
         "matching any run of characters (e.g. chat.*,orders.get); unset: none"},
        {"WSGATE_RPC_TIMEOUT", "rpc-timeout", WSG_OPT_DURATION, "5s", 100, 60000,
         &c->rpc_timeout_ms, "how long an RPC waits for its service (then error timeout)"},
        {"WSGATE_RPC_MAX_INFLIGHT", "rpc-max-inflight", WSG_OPT_INT, "16", 1, 100000,
         &c->rpc_max_inflight, "RPCs one connection may have waiting at once (over it: error "
         "rate_limited)"},
        {"WSGATE_LOG_LEVEL", "log-level", WSG_OPT_STRING, "info", 0, 0, &c->log_level,
         "debug, info, warn or error"},
        {"WSGATE_DEMO", "demo", WSG_OPT_BOOL, "off", 0, 0, &c->demo,
         "serve the demo chat app at /demo/ on the client port (from WSGATE_DEMO_DIR)"},
        {"WSGATE_DEMO_DIR", "demo-dir", WSG_OPT_STRING, "/usr/share/wsgate/demo", 0, 0,
         &c->demo_dir, "the demo app's files (examples/chat with the JS client in client/; "
         "the build puts them in <build>/demo)"},
        {"WSGATE_LOG_CONNECTIONS", "log-connections", WSG_OPT_BOOL, "off", 0, 0,
         &c->log_connections, "log every connection's open and close at info (client ip, "
         "user, connection id, close code, seconds open); off: at debug"},
    };
    WSG_OPTS_RETURN(o, table);
}

static int read_file(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "WSGATE_JWT_PUBLIC_KEY_FILE: cannot open %s", path);
        return -1;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int bad = !buf || ferror(f) || !feof(f) || n == 0;
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "WSGATE_JWT_PUBLIC_KEY_FILE: cannot read %s (empty or over 64 KiB)",
                 path);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

wsg_config_status gw_config_load(gw_config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    wsg_config_status st = wsg_config_load_service(opts_for, c, &c->node_id, &c->prefix,
                                                   "wsgate-gateway", "gw", argc, argv, err,
                                                   errlen);
    if (st != WSG_CONFIG_OK)
        return st;
    if (wsg_nats_opts_settle(&c->nats, err, errlen))
        return WSG_CONFIG_ERROR;
    if (wsg_config_listen("WSGATE_LISTEN", c->listen, c->listen_host, sizeof(c->listen_host),
                          &c->listen_port, err, errlen))
        return WSG_CONFIG_ERROR;
    if (c->admin_listen && *c->admin_listen &&
        wsg_config_listen("WSGATE_ADMIN_LISTEN", c->admin_listen, c->admin_listen_host,
                          sizeof(c->admin_listen_host), &c->admin_listen_port, err, errlen))
        return WSG_CONFIG_ERROR;
    if (c->admin_listen_port && c->admin_listen_port == c->listen_port &&
        !strcmp(c->admin_listen_host, c->listen_host)) {
        snprintf(err, errlen, "WSGATE_ADMIN_LISTEN must differ from WSGATE_LISTEN");
        return WSG_CONFIG_ERROR;
    }
    if (wsg_config_log_level(c->log_level, &c->log_level_v, err, errlen))
        return WSG_CONFIG_ERROR;
    if (!strcmp(c->client_send, "on"))
        c->client_send_claim = 0;
    else if (!strcmp(c->client_send, "claim"))
        c->client_send_claim = 1;
    else {
        snprintf(err, errlen, "WSGATE_CLIENT_SEND: \"%s\" is not on or claim", c->client_send);
        return WSG_CONFIG_ERROR;
    }
    if (gw_globs_parse(c->rpc_types, &c->rpc_globs, err, errlen))
        return WSG_CONFIG_ERROR;
    if (wsg_ns_table_load(c->channel_namespaces, &c->namespaces, err, errlen))
        return WSG_CONFIG_ERROR;
    if (!strcmp(c->auth, "jwt")) {
        c->auth_mode = GW_AUTH_MODE_JWT;
    } else if (!strcmp(c->auth, "none")) {
        c->auth_mode = GW_AUTH_MODE_NONE;
    } else {
        snprintf(err, errlen, "WSGATE_AUTH: \"%s\" is not jwt or none", c->auth);
        return WSG_CONFIG_ERROR;
    }
    if (c->auth_mode == GW_AUTH_MODE_JWT && c->jwt_public_key_file && *c->jwt_public_key_file &&
        read_file(c->jwt_public_key_file, &c->jwt_public_key_pem, err, errlen))
        return WSG_CONFIG_ERROR;
    /* a key the gateway could not verify with (or a guessable secret) is a configuration
     * error: exit 2 before anything starts */
    gw_auth_cfg ac = gw_config_auth(c);
    if (gw_auth_cfg_check(&ac, err, errlen))
        return WSG_CONFIG_ERROR;
    if (c->ping_timeout_ms <= c->ping_interval_ms) {
        snprintf(err, errlen, "WSGATE_PING_TIMEOUT must be longer than WSGATE_PING_INTERVAL");
        return WSG_CONFIG_ERROR;
    }
    gw_peer_cidrs cidrs;
    char why[128];
    if (gw_peer_cidrs_parse(&cidrs, c->trusted_proxies, why, sizeof(why))) {
        snprintf(err, errlen, "WSGATE_TRUSTED_PROXIES: %s", why);
        return WSG_CONFIG_ERROR;
    }
    if (c->ip_allowlist && strcmp(c->ip_allowlist, "none") == 0) {
        free(c->ip_allowlist);
        c->ip_allowlist = NULL;
    }
    if (c->accept_burst == 0)
        c->accept_burst = c->accept_rate > 0 ? c->accept_rate : 1;
    if (c->memory_budget == 0) {
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        c->memory_budget = pages > 0 && page > 0 ? (int64_t)pages * page / 4 : INT64_C(1) << 30;
    }
    if (c->workers == 0) {
        /* A connection id holds its worker's index in 8 bits: at most 255 workers. */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = cores < 1 ? 1 : cores > 255 ? 255 : cores;
    }
    return WSG_CONFIG_OK;
}

gw_auth_cfg gw_config_auth(const gw_config *c)
{
    return (gw_auth_cfg){
        .mode = c->auth_mode,
        .hs256_secret = c->jwt_secret,
        .public_key_pem = c->jwt_public_key_pem,
        .leeway_s = c->jwt_leeway_ms / 1000,
        .issuer = c->jwt_issuer,
        .audience = c->jwt_audience,
        .jwks_url = c->jwt_jwks_url,
    };
}

void gw_config_free(gw_config *c)
{
    wsg_ns_table_free(c->namespaces);
    c->namespaces = NULL;
    gw_globs_free(c->rpc_globs);
    c->rpc_globs = NULL;
    wsg_config_free_service(opts_for, c);
    free(c->jwt_public_key_pem);
    c->jwt_public_key_pem = NULL;
}
