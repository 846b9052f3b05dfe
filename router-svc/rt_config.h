/* rt_config: the router's settings, read once at start-up from WSGATE_* environment variables
 * and the equivalent flags, validated, and then read-only. Also parses Redis URLs. */
#ifndef RT_CONFIG_H
#define RT_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include "wsg_channel.h"
#include "wsg_config.h"
#include "wsg_log.h"
#include "wsg_nats_opts.h"

typedef struct rt_redis_addr {
    char host[256];
    int port;
    char user[128];     /* "" = no ACL user (AUTH <password>) */
    char password[256]; /* "" = no AUTH */
    int db;
} rt_redis_addr;

/* A host and port, e.g. one sentinel of WSGATE_REDIS_SENTINELS. */
typedef struct rt_hostport {
    char host[256];
    int port;
} rt_hostport;

#define RT_SENTINELS_MAX 16

typedef struct rt_shard_spec rt_shard_spec; /* rt_shard.h */

typedef struct rt_config {
    char *node_id;
    wsg_nats_opts nats; /* WSGATE_NATS_*: servers, credentials, TLS */
    char *redis_url;
    rt_redis_addr redis;
    /* WSGATE_REDIS_SENTINELS: when set, the master's address comes from these sentinels and
     * WSGATE_REDIS_URL gives only the credentials and database */
    char *redis_sentinels;
    rt_hostport sentinels[RT_SENTINELS_MAX];
    size_t nsentinels;
    char *redis_master_name;     /* the name Sentinel monitors the master under */
    char *redis_sentinel_password;
    /* WSGATE_REDIS_SHARDS: when set, the history lives on these Redis servers (rt_shard), the
     * registry stays on WSGATE_REDIS_URL / WSGATE_REDIS_SENTINELS */
    char *redis_shards;
    rt_shard_spec *shards; /* owned; NULL: no shards */
    size_t nshards;
    char *prefix;
    char *http_listen;
    char http_host[256]; /* "" = every interface */
    int http_port;
    int64_t node_timeout_ms;
    int64_t max_delivery_bytes;
    int64_t history_max;    /* entries kept per stream */
    int64_t history_ttl_ms; /* a stream without appends for this long is gone */
    int64_t history_page;   /* items per HistoryReply, at most */
    int64_t history_batch_us; /* an append waits this long for others to share its call */
    int offline_unknown_users;        /* keep send_message for users never seen within the TTL */
    int64_t offline_bytes_per_minute; /* per sending connection, for offline targets; 0: none */
    int64_t user_conn_limit;      /* connections per user, at most; 0: no limit */
    char *user_conn_limit_policy; /* "oldest" or "newest": which connections go over it */
    int user_conn_limit_newest;   /* ... parsed: 1 for newest */
    char *channel_namespaces; /* WSGATE_CHANNEL_NAMESPACES as given */
    wsg_ns_table *namespaces; /* ... loaded (wsg_channel); owned */
    int console;        /* WSGATE_CONSOLE: the console at /console/ */
    char *console_dir;  /* its files */
    char *log_level;
    wsg_log_level log_level_v;
    char *api_key;      /* WSGATE_API_KEY as given */
    char *api_key_file; /* WSGATE_API_KEY_FILE as given */
    char *api_key_v;    /* the key in force (from either, the file's content trimmed); NULL: none */
} rt_config;

/* Returns WSG_CONFIG_OK, WSG_CONFIG_HELP (help printed) or WSG_CONFIG_ERROR (err filled). */
wsg_config_status rt_config_load(rt_config *c, int argc, char **argv, char *err, size_t errlen);
void rt_config_free(rt_config *c);

/* redis://[[user]:password@]host[:port][/db] -> addr. Returns 0, or -1 if malformed. */
int rt_redis_url_parse(const char *url, rt_redis_addr *out);

/* "host:port,host:port,..." (at most max, port required) -> out[0..*n). 0, or -1 if malformed
 * or empty. */
int rt_hostports_parse(const char *list, rt_hostport *out, size_t max, size_t *n);

#endif
