/* lg_opts: the load generator's command line. Parses and validates every option once, so
 * the engine can trust the values: counts and times are bounded, URLs are split into host,
 * port and path, and the source-address range is expanded into dotted strings. */
#ifndef LG_OPTS_H
#define LG_OPTS_H
#include <stdint.h>

#include "lg_proc.h"

#define LG_MAX_URLS 16
#define LG_MAX_SCENARIOS 8
#define LG_MAX_CONNS 18000      /* one process stays well under the 20,000-file hard limit */
#define LG_MAX_SOURCE_IPS 65536

typedef enum { LG_SC_CONNECT, LG_SC_BROADCAST, LG_SC_SEND, LG_SC_CHANNEL } lg_scenario;
/* How a broadcast run's messages enter the cluster: a business Delivery{broadcast} on NATS,
 * or {"type":"broadcast"} frames written by one extra client connection (the only way to
 * drive servers that have no NATS side). */
typedef enum { LG_VIA_NATS, LG_VIA_CLIENT } lg_via;
/* Which half of a broadcast run this process does: both (one process), or only publishing
 * or only receiving, so that many processes can check one run (same --run-id everywhere). */
typedef enum { LG_ROLE_BOTH, LG_ROLE_PUBLISH, LG_ROLE_RECEIVE } lg_role;

typedef struct lg_url {
    char host[256];
    int port;
    char path[512];     /* with the leading '/', without the query */
} lg_url;

typedef struct lg_opts {
    lg_url urls[LG_MAX_URLS];
    int nurls;
    int conns;
    double connect_rate;            /* connections started per second */
    char user_prefix[64];
    char (*source_ips)[16];         /* owned; NULL: let the kernel pick */
    int nsource_ips;
    lg_scenario scenarios[LG_MAX_SCENARIOS];
    int nscenarios;
    double hold_s;                  /* connect: how long the connections are held */
    double rate;                    /* broadcast, send, channel: messages per second */
    double duration_s;              /* broadcast, send, channel: how long messages are sent */
    double settle_s;                /* pause before a broadcast/send run */
    double drain_s;                 /* max wait for stragglers after the last message */
    double connect_timeout_s;       /* max wait for handshakes after the last connect */
    char nats_url[256];
    char prefix[64];                /* NATS subject prefix */
    int server_pids[LG_PROC_MAX_PIDS];
    int nserver_pids;
    lg_via via;
    lg_role role;
    uint32_t run_id;                /* 0: a random one (role both only) */
    double run_timeout_s;           /* receive: end the run this long after it was armed */
    char start_file[512];           /* before each broadcast/send run, wait until it exists */
    char ready_file[512];           /* written when the first run is armed (or, without one,
                                     * when the connections have settled) */
    int rx_buffer;                  /* lws receive buffer per connection, bytes */
    int deflate;                    /* offer permessage-deflate (RFC 7692) */
    int channels;                   /* channel: connection i follows channel i % channels */
    char channel_prefix[64];        /* channel: names are <prefix><number> */
    int verbose;
} lg_opts;

/* Returns 0, 1 when --help was printed, or -1 after printing why the line is wrong. */
int lg_opts_parse(lg_opts *o, int argc, char **argv);
void lg_opts_free(lg_opts *o);
const char *lg_scenario_name(lg_scenario s);
/* Total messages of a broadcast, send or channel run. */
int64_t lg_opts_messages(const lg_opts *o);

#endif
