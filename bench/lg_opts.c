#include "lg_opts.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MESSAGES 100000000LL
#define MAX_BITMAP_BYTES (1LL << 30) /* per-connection broadcast bitmaps, all together */
#define CHANNEL_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: wsgate-loadgen --url ws://HOST:PORT/ws [--url ...] [options]\n"
        "  --conns N               connections (0..%d per process; default 100; 0 only\n"
        "                          with --broadcast-role publish)\n"
        "  --connect-rate R        connections started per second (default 1000)\n"
        "  --user-prefix P         user ids are P0, P1, ... (default lg<pid>-)\n"
        "  --source-ips A-B        bind local addresses round robin over A..B (IPv4)\n"
        "  --scenario S[,S...]     connect, broadcast, send, channel (default connect); run\n"
        "                          in order on the same connections\n"
        "  --hold S                connect: seconds to hold the connections (default 5)\n"
        "  --rate R                broadcast/send/channel: messages per second (default 100)\n"
        "  --duration S            broadcast/send: seconds of sending (default 10)\n"
        "  --settle S              seconds before a broadcast/send run (default 2)\n"
        "  --drain S               max seconds to wait for stragglers (default 5)\n"
        "  --connect-timeout S     max seconds for handshakes after the last start (default 30)\n"
        "  --nats URL              NATS for Delivery publishing (default nats://127.0.0.1:4222)\n"
        "  --prefix P              NATS subject prefix (default wsgate)\n"
        "  --server-pid PID        sample RSS and CPU of this process (repeatable)\n"
        "  --broadcast-via V       nats (Delivery{broadcast} on NATS, default) or client\n"
        "                          ({\"type\":\"broadcast\"} frames from one extra connection,\n"
        "                          user <user-prefix>pub, not a receiver)\n"
        "  --broadcast-role R      both (default), publish (send only; --conns may be 0) or\n"
        "                          receive (expect rate x duration indices on every open\n"
        "                          connection; the run ends at first arrival + duration +\n"
        "                          drain, or at --run-timeout)\n"
        "  --run-id N              broadcast run id (1..4294967295); the same in every process\n"
        "                          of a distributed run, needed by publish and receive\n"
        "  --run-timeout S         receive: give up this long after the run was armed\n"
        "                          (default 300)\n"
        "  --start-file PATH       before each broadcast/send run, wait until PATH exists\n"
        "                          (or SIGUSR1 arrives)\n"
        "  --ready-file PATH       written when the first broadcast/send run is armed (or the\n"
        "                          connections are settled, without one): JSON with conns,\n"
        "                          welcomed, failed\n"
        "  --rx-buffer B           receive buffer per connection (256..65536, default 4096):\n"
        "                          also the most one read takes from a socket; smaller saves\n"
        "                          memory for idle connections, larger saves syscalls\n"
        "  --deflate               offer permessage-deflate (as browsers do: \"permessage-deflate;\n"
        "                          client_max_window_bits\"); lws inflates what comes compressed\n"
        "  --channels N            channel: connection i subscribes to channel i %% N\n"
        "                          (1..--conns, default 100), then publications go from\n"
        "                          random connections to random channels at --rate\n"
        "  --channel-prefix P      channel: channel names are P0, P1, ... (default bench-;\n"
        "                          [A-Za-z0-9_.:@-]); distinct per process of one run\n"
        "  --verbose               log connection errors and closes\n"
        "One JSON object per scenario goes to stdout, a summary to stderr.\n",
        LG_MAX_CONNS);
}

static int parse_double(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "wsgate-loadgen: --%s wants a number in [%g, %g], got '%s'\n", name, lo,
                hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *name, const char *s, long lo, long hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "wsgate-loadgen: --%s wants an integer in [%ld, %ld], got '%s'\n", name,
                lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int bad_choice(const char *name, const char *want, const char *got)
{
    fprintf(stderr, "wsgate-loadgen: --%s wants %s, got '%s'\n", name, want, got);
    return -1;
}

static int copy_path(const char *name, const char *s, char *out, size_t cap)
{
    if (!*s || strlen(s) >= cap) {
        fprintf(stderr, "wsgate-loadgen: --%s must be 1..%zu bytes\n", name, cap - 1);
        return -1;
    }
    strcpy(out, s);
    return 0;
}

static int parse_url(const char *s, lg_url *u)
{
    const char *p = s;
    if (strncmp(p, "ws://", 5) != 0) {
        fprintf(stderr, "wsgate-loadgen: --url must start with ws:// (got '%s')\n", s);
        return -1;
    }
    p += 5;
    const char *slash = strchr(p, '/');
    const char *hostport_end = slash ? slash : p + strlen(p);
    const char *colon = memchr(p, ':', (size_t)(hostport_end - p));
    const char *host_end = colon ? colon : hostport_end;
    size_t hl = (size_t)(host_end - p);
    if (hl == 0 || hl >= sizeof(u->host))
        goto bad;
    memcpy(u->host, p, hl);
    u->host[hl] = '\0';
    u->port = 80;
    if (colon) {
        char portbuf[8];
        size_t pl = (size_t)(hostport_end - colon - 1);
        if (pl == 0 || pl >= sizeof(portbuf))
            goto bad;
        memcpy(portbuf, colon + 1, pl);
        portbuf[pl] = '\0';
        if (parse_int("url port", portbuf, 1, 65535, &u->port))
            return -1;
    }
    const char *path = slash ? slash : "/ws";
    if (strchr(path, '?')) {
        fprintf(stderr, "wsgate-loadgen: --url takes no query (user_id is added): '%s'\n", s);
        return -1;
    }
    if (strlen(path) >= sizeof(u->path))
        goto bad;
    strcpy(u->path, path);
    return 0;
bad:
    fprintf(stderr, "wsgate-loadgen: cannot parse --url '%s'\n", s);
    return -1;
}

static int parse_source_ips(const char *s, lg_opts *o)
{
    char a[32], b[32];
    const char *dash = strchr(s, '-');
    const char *second = dash ? dash + 1 : s;
    size_t al = dash ? (size_t)(dash - s) : strlen(s);
    struct in_addr ia, ib;
    if (al >= sizeof(a) || strlen(second) >= sizeof(b))
        goto bad;
    memcpy(a, s, al);
    a[al] = '\0';
    strcpy(b, second);
    if (inet_pton(AF_INET, a, &ia) != 1 || inet_pton(AF_INET, b, &ib) != 1)
        goto bad;
    uint32_t lo = ntohl(ia.s_addr), hi = ntohl(ib.s_addr);
    if (hi < lo || (uint64_t)hi - lo + 1 > LG_MAX_SOURCE_IPS)
        goto bad;
    free(o->source_ips);
    o->nsource_ips = (int)(hi - lo + 1);
    o->source_ips = calloc((size_t)o->nsource_ips, sizeof(*o->source_ips));
    if (!o->source_ips) {
        fprintf(stderr, "wsgate-loadgen: out of memory\n");
        return -1;
    }
    for (int i = 0; i < o->nsource_ips; i++) {
        struct in_addr x = {.s_addr = htonl(lo + (uint32_t)i)};
        if (!inet_ntop(AF_INET, &x, o->source_ips[i], sizeof(o->source_ips[i])))
            goto bad;
    }
    return 0;
bad:
    fprintf(stderr,
            "wsgate-loadgen: --source-ips wants A.B.C.D-E.F.G.H (at most %d addresses), got '%s'\n",
            LG_MAX_SOURCE_IPS, s);
    return -1;
}

static int parse_scenarios(const char *s, lg_opts *o)
{
    char buf[256];
    if (strlen(s) >= sizeof(buf))
        goto bad;
    strcpy(buf, s);
    o->nscenarios = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nscenarios == LG_MAX_SCENARIOS)
            goto bad;
        if (!strcmp(t, "connect"))
            o->scenarios[o->nscenarios++] = LG_SC_CONNECT;
        else if (!strcmp(t, "broadcast"))
            o->scenarios[o->nscenarios++] = LG_SC_BROADCAST;
        else if (!strcmp(t, "send"))
            o->scenarios[o->nscenarios++] = LG_SC_SEND;
        else if (!strcmp(t, "channel"))
            o->scenarios[o->nscenarios++] = LG_SC_CHANNEL;
        else
            goto bad;
    }
    if (o->nscenarios == 0)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "wsgate-loadgen: --scenario wants connect,broadcast,send,channel (got '%s')\n",
            s);
    return -1;
}

const char *lg_scenario_name(lg_scenario s)
{
    switch (s) {
    case LG_SC_CONNECT: return "connect";
    case LG_SC_BROADCAST: return "broadcast";
    case LG_SC_SEND: return "send";
    case LG_SC_CHANNEL: return "channel";
    }
    return "?";
}

int64_t lg_opts_messages(const lg_opts *o) { return (int64_t)(o->rate * o->duration_s + 0.5); }

void lg_opts_free(lg_opts *o)
{
    free(o->source_ips);
    o->source_ips = NULL;
}

int lg_opts_parse(lg_opts *o, int argc, char **argv)
{
    enum { O_URL = 1, O_CONNS, O_RATE_C, O_PREFIX_U, O_SRC, O_SC, O_HOLD, O_RATE, O_DUR,
           O_SETTLE, O_DRAIN, O_CTO, O_NATS, O_PREFIX, O_PID, O_VERBOSE, O_HELP, O_VIA,
           O_ROLE, O_RUN_ID, O_RUN_TO, O_START_FILE, O_READY_FILE, O_RXBUF, O_DEFLATE, O_CHANNELS,
           O_CHAN_PREFIX };
    static const struct option longs[] = {
        {"url", required_argument, NULL, O_URL},
        {"conns", required_argument, NULL, O_CONNS},
        {"connect-rate", required_argument, NULL, O_RATE_C},
        {"user-prefix", required_argument, NULL, O_PREFIX_U},
        {"source-ips", required_argument, NULL, O_SRC},
        {"scenario", required_argument, NULL, O_SC},
        {"hold", required_argument, NULL, O_HOLD},
        {"rate", required_argument, NULL, O_RATE},
        {"duration", required_argument, NULL, O_DUR},
        {"settle", required_argument, NULL, O_SETTLE},
        {"drain", required_argument, NULL, O_DRAIN},
        {"connect-timeout", required_argument, NULL, O_CTO},
        {"nats", required_argument, NULL, O_NATS},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"server-pid", required_argument, NULL, O_PID},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"broadcast-via", required_argument, NULL, O_VIA},
        {"broadcast-role", required_argument, NULL, O_ROLE},
        {"run-id", required_argument, NULL, O_RUN_ID},
        {"run-timeout", required_argument, NULL, O_RUN_TO},
        {"start-file", required_argument, NULL, O_START_FILE},
        {"ready-file", required_argument, NULL, O_READY_FILE},
        {"rx-buffer", required_argument, NULL, O_RXBUF},
        {"deflate", no_argument, NULL, O_DEFLATE},
        {"channels", required_argument, NULL, O_CHANNELS},
        {"channel-prefix", required_argument, NULL, O_CHAN_PREFIX},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->conns = 100;
    o->connect_rate = 1000;
    snprintf(o->user_prefix, sizeof(o->user_prefix), "lg%d-", (int)getpid());
    o->scenarios[0] = LG_SC_CONNECT;
    o->nscenarios = 1;
    o->hold_s = 5;
    o->rate = 100;
    o->duration_s = 10;
    o->settle_s = 2;
    o->drain_s = 5;
    o->connect_timeout_s = 30;
    o->run_timeout_s = 300;
    o->rx_buffer = 4096;
    o->channels = 100;
    strcpy(o->channel_prefix, "bench-");
    strcpy(o->nats_url, "nats://127.0.0.1:4222");
    strcpy(o->prefix, "wsgate");

    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case O_URL:
            if (o->nurls == LG_MAX_URLS) {
                fprintf(stderr, "wsgate-loadgen: at most %d --url\n", LG_MAX_URLS);
                return -1;
            }
            rc = parse_url(optarg, &o->urls[o->nurls++]);
            break;
        case O_CONNS:
            if (parse_int("conns", optarg, 0, 1000000000L, &o->conns))
                return -1;
            if (o->conns > LG_MAX_CONNS) {
                fprintf(stderr,
                        "wsgate-loadgen: --conns %d is above %d: one process must stay under the "
                        "20,000 open-files hard limit; run several processes with distinct "
                        "--user-prefix instead\n",
                        o->conns, LG_MAX_CONNS);
                return -1;
            }
            break;
        case O_RATE_C: rc = parse_double("connect-rate", optarg, 1, 1e6, &o->connect_rate); break;
        case O_PREFIX_U:
            if (strlen(optarg) >= sizeof(o->user_prefix) || !*optarg) {
                fprintf(stderr, "wsgate-loadgen: --user-prefix must be 1..%zu bytes\n",
                        sizeof(o->user_prefix) - 1);
                return -1;
            }
            strcpy(o->user_prefix, optarg);
            break;
        case O_SRC: rc = parse_source_ips(optarg, o); break;
        case O_SC: rc = parse_scenarios(optarg, o); break;
        case O_HOLD: rc = parse_double("hold", optarg, 0, 86400, &o->hold_s); break;
        case O_RATE: rc = parse_double("rate", optarg, 0.1, 1e7, &o->rate); break;
        case O_DUR: rc = parse_double("duration", optarg, 0.1, 86400, &o->duration_s); break;
        case O_SETTLE: rc = parse_double("settle", optarg, 0, 3600, &o->settle_s); break;
        case O_DRAIN: rc = parse_double("drain", optarg, 0, 3600, &o->drain_s); break;
        case O_CTO: rc = parse_double("connect-timeout", optarg, 1, 3600, &o->connect_timeout_s); break;
        case O_NATS:
            if (strlen(optarg) >= sizeof(o->nats_url)) {
                fprintf(stderr, "wsgate-loadgen: --nats too long\n");
                return -1;
            }
            strcpy(o->nats_url, optarg);
            break;
        case O_PREFIX:
            if (strlen(optarg) >= sizeof(o->prefix) || !*optarg) {
                fprintf(stderr, "wsgate-loadgen: --prefix must be 1..%zu bytes\n",
                        sizeof(o->prefix) - 1);
                return -1;
            }
            strcpy(o->prefix, optarg);
            break;
        case O_PID:
            if (o->nserver_pids == LG_PROC_MAX_PIDS) {
                fprintf(stderr, "wsgate-loadgen: at most %d --server-pid\n", LG_PROC_MAX_PIDS);
                return -1;
            }
            rc = parse_int("server-pid", optarg, 1, 1L << 30, &o->server_pids[o->nserver_pids++]);
            break;
        case O_VERBOSE: o->verbose = 1; break;
        case O_VIA:
            if (!strcmp(optarg, "nats"))
                o->via = LG_VIA_NATS;
            else if (!strcmp(optarg, "client"))
                o->via = LG_VIA_CLIENT;
            else
                rc = bad_choice("broadcast-via", "nats, client", optarg);
            break;
        case O_ROLE:
            if (!strcmp(optarg, "both"))
                o->role = LG_ROLE_BOTH;
            else if (!strcmp(optarg, "publish"))
                o->role = LG_ROLE_PUBLISH;
            else if (!strcmp(optarg, "receive"))
                o->role = LG_ROLE_RECEIVE;
            else
                rc = bad_choice("broadcast-role", "both, publish, receive", optarg);
            break;
        case O_RUN_ID: {
            double v = 0;
            rc = parse_double("run-id", optarg, 1, UINT32_MAX, &v);
            if (!rc && v != (double)(uint32_t)v)
                rc = bad_choice("run-id", "an integer", optarg);
            if (!rc)
                o->run_id = (uint32_t)v;
            break;
        }
        case O_RXBUF: rc = parse_int("rx-buffer", optarg, 256, 65536, &o->rx_buffer); break;
        case O_DEFLATE: o->deflate = 1; break;
        case O_CHANNELS: rc = parse_int("channels", optarg, 1, LG_MAX_CONNS, &o->channels); break;
        case O_CHAN_PREFIX:
            /* a name is the prefix and up to 5 digits: within the 128 bytes a channel may have */
            if (!*optarg || strlen(optarg) >= sizeof(o->channel_prefix) ||
                strspn(optarg, CHANNEL_CHARS) != strlen(optarg))
                rc = bad_choice("channel-prefix", "1..63 of [A-Za-z0-9_.:@-]", optarg);
            else
                strcpy(o->channel_prefix, optarg);
            break;
        case O_RUN_TO: rc = parse_double("run-timeout", optarg, 1, 86400, &o->run_timeout_s); break;
        case O_START_FILE: rc = copy_path("start-file", optarg, o->start_file, sizeof(o->start_file)); break;
        case O_READY_FILE: rc = copy_path("ready-file", optarg, o->ready_file, sizeof(o->ready_file)); break;
        case O_HELP: usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "wsgate-loadgen: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->nurls == 0) {
        fprintf(stderr, "wsgate-loadgen: at least one --url is needed\n");
        usage(stderr);
        return -1;
    }
    if (o->role != LG_ROLE_BOTH && !o->run_id) {
        fprintf(stderr, "wsgate-loadgen: --broadcast-role publish/receive needs --run-id (the "
                        "same in every process of the run)\n");
        return -1;
    }
    if (o->conns == 0 && o->role != LG_ROLE_PUBLISH) {
        fprintf(stderr, "wsgate-loadgen: --conns 0 only with --broadcast-role publish\n");
        return -1;
    }
    int64_t m = lg_opts_messages(o);
    for (int i = 0; i < o->nscenarios; i++) {
        if (o->scenarios[i] == LG_SC_CONNECT)
            continue;
        if (m < 1 || m > MAX_MESSAGES) {
            fprintf(stderr, "wsgate-loadgen: --rate x --duration must give 1..%lld messages\n",
                    MAX_MESSAGES);
            return -1;
        }
        if (o->scenarios[i] == LG_SC_BROADCAST && (m + 7) / 8 * o->conns > MAX_BITMAP_BYTES) {
            fprintf(stderr,
                    "wsgate-loadgen: broadcast tracks every message per connection: --conns x "
                    "--rate x --duration / 8 must stay under %lld bytes\n",
                    MAX_BITMAP_BYTES);
            return -1;
        }
        if (o->scenarios[i] == LG_SC_SEND && o->role != LG_ROLE_BOTH) {
            fprintf(stderr, "wsgate-loadgen: --broadcast-role applies to broadcast only; the "
                            "send scenario needs role both\n");
            return -1;
        }
        if (o->scenarios[i] == LG_SC_CHANNEL) {
            for (int j = 0; j < i; j++)
                if (o->scenarios[j] == LG_SC_CHANNEL) {
                    fprintf(stderr, "wsgate-loadgen: channel runs once per process (its "
                                    "subscriptions stay open)\n");
                    return -1;
                }
            if (o->role != LG_ROLE_BOTH || o->channels > o->conns) {
                fprintf(stderr, "wsgate-loadgen: channel needs role both and --channels <= "
                                "--conns\n");
                return -1;
            }
            /* one bit per (publication, subscriber): msgs x conns / channels on average */
            if ((double)m * o->conns / o->channels / 8 > (double)MAX_BITMAP_BYTES) {
                fprintf(stderr, "wsgate-loadgen: channel tracks every publication per "
                                "subscriber: --rate x --duration x --conns / --channels / 8 "
                                "must stay under %lld bytes\n", MAX_BITMAP_BYTES);
                return -1;
            }
        }
        if (o->scenarios[i] == LG_SC_SEND && o->conns < 2) {
            fprintf(stderr, "wsgate-loadgen: send needs at least 2 connections\n");
            return -1;
        }
    }
    return 0;
}
