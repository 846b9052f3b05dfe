/* rt_config: the router's option table and the checks that span several options. */
#include "rt_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_quota.h"
#include "rt_shard.h"
#include "wsg_subject.h"


static size_t opts_for(void *cfg, wsg_opt *o)
{
    rt_config *c = cfg;
    const wsg_opt table[] = {
        {"WSGATE_NODE_ID", "node-id", WSG_OPT_STRING, NULL, 0, 0, &c->node_id,
         "this router's id, [A-Za-z0-9_-]{1,64} (default: router-<hostname>)"},
        WSG_NATS_OPT_ROWS(&c->nats),
        {"WSGATE_REDIS_URL", "redis-url", WSG_OPT_STRING, "redis://127.0.0.1:6379", 0, 0,
         &c->redis_url, "registry store, redis://[:password@]host:port[/db]"},
        {"WSGATE_REDIS_SENTINELS", "redis-sentinels", WSG_OPT_STRING, NULL, 0, 0,
         &c->redis_sentinels,
         "Redis Sentinel addresses, host:port,...: the master is the one they name "
         "(WSGATE_REDIS_URL then gives only the password and database)"},
        {"WSGATE_REDIS_MASTER_NAME", "redis-master-name", WSG_OPT_STRING, "wsgate", 0, 0,
         &c->redis_master_name, "the master's name in the sentinels' configuration"},
        {"WSGATE_REDIS_SENTINEL_PASSWORD", "redis-sentinel-password", WSG_OPT_STRING, NULL, 0,
         0, &c->redis_sentinel_password, "the sentinels' own password (requirepass), if any"},
        {"WSGATE_REDIS_SHARDS", "redis-shards", WSG_OPT_STRING, NULL, 0, 0, &c->redis_shards,
         "Redis servers that hold the history between them, space-separated redis://... or "
         "redis-sentinel://host:port,...[/db]#master (unset: the history is with the registry)"},
        {"WSGATE_PREFIX", "prefix", WSG_OPT_STRING, "wsgate", 0, 0, &c->prefix,
         "subject and Redis key prefix shared by the cluster"},
        {"WSGATE_HTTP_LISTEN", "http-listen", WSG_OPT_STRING, "0.0.0.0:8090", 0, 0,
         &c->http_listen, "address for /health, /ready and /metrics"},
        {"WSGATE_NODE_TIMEOUT", "node-timeout", WSG_OPT_DURATION, "10s", 1000, 3600000,
         &c->node_timeout_ms, "a gateway silent for this long is dead (its connections are purged)"},
        {"WSGATE_MAX_DELIVERY_BYTES", "max-delivery-bytes", WSG_OPT_BYTES, "1MiB", 16,
         64 * 1024 * 1024, &c->max_delivery_bytes, "largest Delivery payload accepted"},
        {"WSGATE_HISTORY_MAX", "history-max", WSG_OPT_INT, "1000", 1, 1000000, &c->history_max,
         "deliveries kept per stream (each user's, and the broadcast stream) for resume"},
        {"WSGATE_HISTORY_TTL", "history-ttl", WSG_OPT_DURATION, "24h", 1000,
         INT64_C(366) * 24 * 3600 * 1000, &c->history_ttl_ms,
         "how long a delivery is kept for resume"},
        {"WSGATE_HISTORY_PAGE", "history-page", WSG_OPT_INT, "100", 1, 10000, &c->history_page,
         "items per history reply, at most (a reply also stays under 900 KB)"},
        {"WSGATE_HISTORY_BATCH_US", "history-batch-us", WSG_OPT_INT, "1000", 0, 2000,
         &c->history_batch_us,
         "microseconds a history append waits for others to share its Redis call, at most "
         "(0: no waiting; appends already queued still share one)"},
        {"WSGATE_OFFLINE_UNKNOWN_USERS", "offline-unknown-users", WSG_OPT_BOOL, "false", 0, 0,
         &c->offline_unknown_users,
         "keep send_message for users with no connection within WSGATE_HISTORY_TTL (else error "
         "unknown_user)"},
        {"WSGATE_OFFLINE_BYTES_PER_MINUTE", "offline-bytes-per-minute", WSG_OPT_BYTES, "256KiB",
         0, RT_QUOTA_MAX_BUDGET, &c->offline_bytes_per_minute,
         "send_message bytes one connection may have kept for offline users per minute (0: no "
         "limit; over it error offline_quota)"},
        {"WSGATE_USER_CONN_LIMIT", "user-conn-limit", WSG_OPT_INT, "0", 0, 1000000,
         &c->user_conn_limit,
         "connections one user may have across the cluster (0: no limit); over it the surplus "
         "is closed with 4009 \"connection limit\""},
        {"WSGATE_USER_CONN_LIMIT_POLICY", "user-conn-limit-policy", WSG_OPT_STRING, "oldest", 0,
         0, &c->user_conn_limit_policy,
         "which connections go over WSGATE_USER_CONN_LIMIT: oldest (the earliest opened) or "
         "newest (the latest opened)"},
        {"WSGATE_CHANNEL_NAMESPACES", "channel-namespaces", WSG_OPT_STRING, NULL, 0, 0,
         &c->channel_namespaces,
         "channel namespaces: a JSON object or a file path (docs/protocol.md; unset: one default "
         "namespace)"},
        {"WSGATE_API_KEY", "api-key", WSG_OPT_STRING, NULL, 0, 0, &c->api_key,
         "key every HTTP API call (/api/...) must carry as Authorization: apikey <key> (unset: "
         "the API is served only on a loopback WSGATE_HTTP_LISTEN, without a key)"},
        {"WSGATE_API_KEY_FILE", "api-key-file", WSG_OPT_STRING, NULL, 0, 0, &c->api_key_file,
         "file holding WSGATE_API_KEY (surrounding whitespace ignored), e.g. a mounted Secret"},
        {"WSGATE_CONSOLE", "console", WSG_OPT_BOOL, "on", 0, 0, &c->console,
         "serve the cluster console at /console/ on WSGATE_HTTP_LISTEN (its data comes from "
         "the /api calls, behind the API key)"},
        {"WSGATE_CONSOLE_DIR", "console-dir", WSG_OPT_STRING, "/usr/share/wsgate/console", 0,
         0, &c->console_dir,
         "the console's files (router-svc/console; the build puts them in <build>/console)"},
        {"WSGATE_LOG_LEVEL", "log-level", WSG_OPT_STRING, "info", 0, 0, &c->log_level,
         "debug, info, warn or error"},
    };
    WSG_OPTS_RETURN(o, table);
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
    if (n == 0 || n > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int rt_redis_url_parse(const char *url, rt_redis_addr *out)
{
    static const char scheme[] = "redis://";
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return -1;
    const char *p = url + sizeof(scheme) - 1;
    const char *end = p + strcspn(p, "/");
    const char *at = memrchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return -1; /* credentials must be [user]:password */
        size_t ulen = (size_t)(colon - p), plen = (size_t)(at - colon - 1);
        if (ulen >= sizeof(out->user) || plen >= sizeof(out->password) || plen == 0)
            return -1;
        memcpy(out->user, p, ulen);
        memcpy(out->password, colon + 1, plen);
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    size_t hlen = (size_t)(hend - p);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return -1;
    memcpy(out->host, p, hlen);
    if (colon) {
        long port;
        if (parse_uint(colon + 1, (size_t)(end - colon - 1), 65535, &port) || port == 0)
            return -1;
        out->port = (int)port;
    }
    if (*end == '/' && end[1] != '\0') {
        long db;
        if (parse_uint(end + 1, strlen(end + 1), 1000000, &db))
            return -1;
        out->db = (int)db;
    }
    return 0;
}

int rt_hostports_parse(const char *list, rt_hostport *out, size_t max, size_t *n)
{
    *n = 0;
    if (!list)
        return -1;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *colon = len ? memrchr(p, ':', len) : NULL;
        if (!colon || colon == p || *n >= max)
            return -1;
        size_t hlen = (size_t)(colon - p);
        long port;
        if (hlen >= sizeof(out[*n].host) ||
            parse_uint(colon + 1, len - hlen - 1, 65535, &port) || port == 0)
            return -1;
        memcpy(out[*n].host, p, hlen);
        out[*n].host[hlen] = '\0';
        out[*n].port = (int)port;
        (*n)++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

#define API_KEY_MAX 1024

/* The API key from WSGATE_API_KEY or WSGATE_API_KEY_FILE into c->api_key_v (NULL: none). The
 * key goes into an HTTP header: visible ASCII only, and never echoed in an error. */
static int load_api_key(rt_config *c, char *err, size_t errlen)
{
    const char *var = "WSGATE_API_KEY";
    char buf[4 * API_KEY_MAX];
    const char *key = c->api_key;
    if (c->api_key && *c->api_key && c->api_key_file && *c->api_key_file) {
        snprintf(err, errlen, "WSGATE_API_KEY and WSGATE_API_KEY_FILE are both set; set one");
        return -1;
    }
    if (c->api_key_file && *c->api_key_file) {
        var = "WSGATE_API_KEY_FILE";
        FILE *f = fopen(c->api_key_file, "r");
        if (!f) {
            snprintf(err, errlen, "WSGATE_API_KEY_FILE: cannot read %s", c->api_key_file);
            return -1;
        }
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        int bad = ferror(f) || (n == sizeof(buf) - 1 && fgetc(f) != EOF);
        fclose(f);
        if (bad) {
            snprintf(err, errlen, "WSGATE_API_KEY_FILE: %s is unreadable or over %d bytes",
                     c->api_key_file, API_KEY_MAX);
            return -1;
        }
        buf[n] = '\0';
        char *s = buf, *e = buf + n;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
            e--;
        *e = '\0';
        key = s;
    }
    if (!key || !*key)
        return 0; /* an empty key (e.g. an unset compose variable) is no key */
    size_t len = strlen(key);
    for (size_t i = 0; i < len; i++)
        if (key[i] < 0x21 || key[i] > 0x7e) {
            snprintf(err, errlen, "%s: the key must be visible ASCII (no spaces or control "
                     "characters)", var);
            return -1;
        }
    if (len > API_KEY_MAX) {
        snprintf(err, errlen, "%s: the key is over %d bytes", var, API_KEY_MAX);
        return -1;
    }
    if (!(c->api_key_v = strdup(key))) {
        snprintf(err, errlen, "%s: out of memory", var);
        return -1;
    }
    return 0;
}

wsg_config_status rt_config_load(rt_config *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    wsg_config_status st = wsg_config_load_service(opts_for, c, &c->node_id, &c->prefix,
                                                   "wsgate-router", "router", argc, argv, err,
                                                   errlen);
    if (st != WSG_CONFIG_OK)
        return st;
    if (wsg_config_listen("WSGATE_HTTP_LISTEN", c->http_listen, c->http_host,
                          sizeof(c->http_host), &c->http_port, err, errlen))
        return WSG_CONFIG_ERROR;
    if (rt_redis_url_parse(c->redis_url, &c->redis)) {
        /* never echo the URL: it may hold a password */
        snprintf(err, errlen, "WSGATE_REDIS_URL: expected redis://[:password@]host:port[/db]");
        return WSG_CONFIG_ERROR;
    }
    if (c->redis_sentinels && *c->redis_sentinels &&
        rt_hostports_parse(c->redis_sentinels, c->sentinels, RT_SENTINELS_MAX, &c->nsentinels)) {
        snprintf(err, errlen, "WSGATE_REDIS_SENTINELS: expected host:port[,host:port...] (at "
                 "most %d)", RT_SENTINELS_MAX);
        return WSG_CONFIG_ERROR;
    }
    if (c->redis_shards && *c->redis_shards) {
        c->shards = calloc(RT_SHARDS_MAX, sizeof(*c->shards));
        if (!c->shards ||
            rt_shards_parse(c->redis_shards, c->shards, RT_SHARDS_MAX, &c->nshards)) {
            /* never echo the list: its URLs may hold passwords */
            snprintf(err, errlen, "WSGATE_REDIS_SHARDS: expected redis://[:password@]host:port"
                     "[/db] or redis-sentinel://[:password@]host:port[,host:port...][/db]#master"
                     ", separated by spaces (at most %d)", RT_SHARDS_MAX);
            return WSG_CONFIG_ERROR;
        }
    }
    if (c->nsentinels && !*c->redis_master_name) {
        snprintf(err, errlen, "WSGATE_REDIS_MASTER_NAME: empty");
        return WSG_CONFIG_ERROR;
    }
    if (wsg_nats_opts_settle(&c->nats, err, errlen))
        return WSG_CONFIG_ERROR;
    if (wsg_config_log_level(c->log_level, &c->log_level_v, err, errlen))
        return WSG_CONFIG_ERROR;
    if (wsg_ns_table_load(c->channel_namespaces, &c->namespaces, err, errlen))
        return WSG_CONFIG_ERROR;
    if (!strcmp(c->user_conn_limit_policy, "newest")) {
        c->user_conn_limit_newest = 1;
    } else if (strcmp(c->user_conn_limit_policy, "oldest")) {
        snprintf(err, errlen, "WSGATE_USER_CONN_LIMIT_POLICY: expected oldest or newest");
        return WSG_CONFIG_ERROR;
    }
    if (load_api_key(c, err, errlen))
        return WSG_CONFIG_ERROR;
    return WSG_CONFIG_OK;
}

void rt_config_free(rt_config *c)
{
    if (c->shards) {
        memset(c->shards, 0, RT_SHARDS_MAX * sizeof(*c->shards)); /* passwords */
        free(c->shards);
        c->shards = NULL;
    }
    wsg_ns_table_free(c->namespaces);
    c->namespaces = NULL;
    if (c->api_key_v) {
        memset(c->api_key_v, 0, strlen(c->api_key_v));
        free(c->api_key_v);
        c->api_key_v = NULL;
    }
    wsg_config_free_service(opts_for, c);
    memset(&c->redis, 0, sizeof(c->redis));
}
