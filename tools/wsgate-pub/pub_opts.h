/* pub_opts: wsgate-pub's command line. Reads the flags (getopt_long) and the environment
 * fallbacks once, checks that they make one publish request (exactly one target, one
 * transport, the credentials of that transport only), so the rest of the tool trusts them. */
#ifndef PUB_OPTS_H
#define PUB_OPTS_H
#include <stdint.h>

#include "wsg_nats_opts.h"

typedef enum { PUB_VIA_NATS, PUB_VIA_HTTP } pub_via;
typedef enum {
    PUB_TO_NONE,
    PUB_TO_USER,
    PUB_TO_USERS,
    PUB_TO_BROADCAST,
    PUB_TO_CHANNEL,
    PUB_TO_CONNECTION,
} pub_to;

typedef struct pub_target {
    pub_to to;
    char *name;       /* user, channel, or the connection's node id */
    char **users;     /* PUB_TO_USERS: n_users ids */
    size_t n_users;
    uint64_t conn_id; /* PUB_TO_CONNECTION */
} pub_target;

typedef struct pub_opts {
    pub_via via;
    char *http_url;      /* the router's base URL, e.g. http://127.0.0.1:8090 */
    char *api_key;       /* NULL: none sent */
    wsg_nats_opts nats;  /* url, user, password (file), creds, TLS */
    char *prefix;
    pub_target target;
    char *id;            /* NULL: none */
    int64_t timeout_ms;
    const char *data;    /* the DATA argument: a JSON object or "-" (argv, not owned) */
} pub_opts;

#define PUB_OPTS_OK 0
#define PUB_OPTS_HELP 1  /* --help was printed: exit 0 */
#define PUB_OPTS_USAGE 2 /* the reason was printed on stderr: exit 2 */

/* Fills o (zeroed first). Returns one of the PUB_OPTS_* codes; o needs pub_opts_free after
 * any of them. */
int pub_opts_parse(pub_opts *o, int argc, char **argv);
void pub_opts_free(pub_opts *o);
/* The help text, on stdout. */
void pub_opts_help(const char *prog);

#endif
