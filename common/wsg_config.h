/* wsg_config: 12-factor configuration. Each option has an environment variable
 * (WSGATE_NODE_ID) and an equivalent command-line flag (--node-id); the flag wins. Values are
 * parsed and range-checked at start-up into the caller's struct, so nothing later re-parses
 * strings. `--help` prints the table. */
#ifndef WSG_CONFIG_H
#define WSG_CONFIG_H
#include <stddef.h>
#include <stdint.h>

#include "wsg_log.h"

typedef enum {
    WSG_OPT_STRING,   /* char **            */
    WSG_OPT_INT,      /* int64_t *, within [min, max] */
    WSG_OPT_BOOL,     /* int *: 1/0, true/false, yes/no, on/off */
    WSG_OPT_BYTES,    /* int64_t *: 65536, 64KiB, 1MiB, 2GiB (also k/m/g, KB/MB/GB as 1024s) */
    WSG_OPT_DURATION, /* int64_t * in milliseconds: 250ms, 30s, 5m, 1h; a bare number is seconds */
} wsg_opt_type;

typedef struct wsg_opt {
    const char *env;      /* "WSGATE_NODE_ID" */
    const char *flag;     /* "node-id" (used as --node-id=V or --node-id V) */
    wsg_opt_type type;
    const char *def;      /* default as text, parsed like user input; NULL = unset/empty */
    int64_t min, max;     /* for numeric types; min == max == 0 means unchecked */
    void *target;
    const char *help;
} wsg_opt;

typedef enum {
    WSG_CONFIG_OK = 0,
    WSG_CONFIG_HELP = 1,   /* --help was printed; exit 0 */
    WSG_CONFIG_ERROR = -1, /* err holds a one-line reason; exit 2 */
} wsg_config_status;

/* Strings stored into char** targets are allocated; free them with wsg_config_free. */
wsg_config_status wsg_config_load(const wsg_opt *opts, size_t n, const char *prog, int argc,
                                  char **argv, char *err, size_t errlen);
void wsg_config_free(const wsg_opt *opts, size_t n);

/* A service's option table (the rows name fields of its config struct cfg, so the table is
 * built for each use): writes the rows into o, which has room for WSG_CONFIG_MAX_OPTS, and
 * returns how many. End it with WSG_OPTS_RETURN(o, table). */
#define WSG_CONFIG_MAX_OPTS 64
typedef size_t (*wsg_opts_fn)(void *cfg, wsg_opt *o);
#define WSG_OPTS_RETURN(o, table)                                                          \
    do {                                                                                   \
        _Static_assert(sizeof(table) / sizeof((table)[0]) <= WSG_CONFIG_MAX_OPTS,          \
                       "raise WSG_CONFIG_MAX_OPTS");                                       \
        memcpy((o), (table), sizeof(table));                                               \
        return sizeof(table) / sizeof((table)[0]);                                         \
    } while (0)

/* The start every service's load shares: loads the table of cfg (wsg_config_load), settles
 * the node id *node_id for role (wsg_config_node_id) and checks the subject prefix *prefix
 * (node_id and prefix are fields of cfg, read after the load). The service's own checks
 * follow. */
wsg_config_status wsg_config_load_service(wsg_opts_fn table, void *cfg, char **node_id,
                                          char **prefix, const char *prog, const char *role,
                                          int argc, char **argv, char *err, size_t errlen);
/* Frees the strings the table of cfg holds (wsg_config_free). */
void wsg_config_free_service(wsg_opts_fn table, void *cfg);

/* Settles a service's node id: an unset or empty *node_id becomes "<role>-<hostname>" (with
 * characters a subject token may not hold replaced by '-'), and the result must match
 * [A-Za-z0-9_-]{1,64}. Returns 0, or -1 with err filled. *node_id stays owned by the caller's
 * option table. */
int wsg_config_node_id(char **node_id, const char *role, char *err, size_t errlen);

/* Parsers, exposed for tests. Return 0 or -1. */
int wsg_parse_bytes(const char *s, int64_t *out);
int wsg_parse_duration_ms(const char *s, int64_t *out);

/* "host:port" or ":port" or "port" -> host (may be "" meaning any) and port. Returns 0/-1. */
int wsg_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* The checks every service makes of its settings, with the error message naming the variable.
 * wsg_config_listen: value (NULL counts as empty) is host:port with a port of 1-65535.
 * wsg_config_log_level: value is debug, info, warn or error. 0, or -1 with err filled. */
int wsg_config_listen(const char *var, const char *value, char *host, size_t hostlen, int *port,
                      char *err, size_t errlen);
int wsg_config_log_level(const char *value, wsg_log_level *out, char *err, size_t errlen);

#endif
