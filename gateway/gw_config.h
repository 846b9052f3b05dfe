/* gw_config: the gateway's settings, read once at start-up from WSGATE_* environment
 * variables and the equivalent flags (see README's table), validated, and then read-only. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H
#include <stdint.h>
#include <stddef.h>
#include "gw_auth.h"
#include "wsg_channel.h"
#include "wsg_config.h"
#include "wsg_log.h"
#include "wsg_nats_opts.h"

typedef struct gw_config {
    char *node_id;
    char *listen;          /* host:port */
    char listen_host[256]; /* "" = every interface */
    int listen_port;
    char *admin_listen;          /* host:port for /health, /ready, /metrics; unset: none */
    char admin_listen_host[256];
    int admin_listen_port;       /* 0: no admin listener */
    int64_t workers;
    wsg_nats_opts nats;   /* WSGATE_NATS_*: servers, credentials, TLS */
    char *prefix;
    char *auth;            /* "jwt" | "none" */
    gw_auth_mode auth_mode;
    char *jwt_secret;
    char *jwt_public_key_file;
    char *jwt_public_key_pem; /* file contents, loaded at start-up */
    int64_t jwt_leeway_ms;
    char *jwt_issuer;
    char *jwt_audience;
    char *jwt_jwks_url;
    int64_t max_message_bytes;
    int compression;                /* WSGATE_COMPRESSION */
    int64_t compression_window_bits;
    int64_t compression_min_bytes;
    int64_t batch_delay_ms;
    int64_t outbound_queue_bytes;
    int64_t heartbeat_interval_ms;
    int64_t ping_interval_ms;
    int64_t ping_timeout_ms;
    int64_t drain_ms;
    int64_t welcome_timeout_ms;  /* WSGATE_WELCOME_TIMEOUT */
    int64_t nats_buffer_bytes;
    int reuseport;
    int64_t max_connections;
    int64_t accept_rate;
    int64_t accept_burst;
    int64_t ip_conn_limit;
    int64_t ip_conn_window_ms;
    char *ip_allowlist;
    char *trusted_proxies;       /* WSGATE_TRUSTED_PROXIES as given (gw_admit parses it) */
    int proxy_protocol;          /* PROXY v1/v2 header required on the client listener */
    int admission_close;         /* refusals as 4029 after the upgrade, not HTTP errors */
    char *allowed_origins;
    int64_t inbound_rate;
    int64_t inbound_burst;
    int64_t memory_budget;
    char *channel_namespaces;    /* WSGATE_CHANNEL_NAMESPACES as given */
    wsg_ns_table *namespaces;    /* ... loaded (wsg_channel); owned */
    int64_t max_channels_per_conn;
    char *client_send;           /* "on" | "claim" */
    int client_send_claim;       /* send_message targets must match the token's "send" */
    char *rpc_types;             /* WSGATE_RPC_TYPES as given */
    struct gw_globs *rpc_globs;  /* ... parsed (gw_rpc); owned; NULL: no RPC types */
    int64_t rpc_timeout_ms;
    int64_t rpc_max_inflight;    /* per connection */
    char *log_level;
    wsg_log_level log_level_v;
    int log_connections;         /* WSGATE_LOG_CONNECTIONS: open/close at info */
    int demo;                    /* WSGATE_DEMO: the demo app at /demo/ */
    char *demo_dir;
} gw_config;

/* Returns WSG_CONFIG_OK, WSG_CONFIG_HELP (help printed) or WSG_CONFIG_ERROR (err filled). */
wsg_config_status gw_config_load(gw_config *c, int argc, char **argv, char *err, size_t errlen);
void gw_config_free(gw_config *c);
/* The authentication settings, as gw_auth takes them (pointers into c). */
gw_auth_cfg gw_config_auth(const gw_config *c);

#endif
