/* pub_opts: wsgate-pub's command line (see pub_opts.h). */
#include "pub_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_config.h"
#include "wsg_subject.h"

#define DEFAULT_NATS_URL "nats://127.0.0.1:4222"
#define DEFAULT_PREFIX "wsgate"
#define DEFAULT_TIMEOUT "5s"
#define TIMEOUT_MIN_MS 1
#define TIMEOUT_MAX_MS (10 * 60 * 1000)
#define KEY_FILE_MAX 4096

void pub_opts_help(const char *prog)
{
    printf(
        "Usage: %s [--nats URL | --http URL [--api-key K]]\n"
        "       %*s (--user U | --users U,V,... | --broadcast | --channel C | --connection NODE:ID)\n"
        "       %*s [--id X] [--prefix P] [--timeout D] [NATS credentials] DATA\n"
        "\n"
        "Publishes DATA to wsgate's clients and prints what the cluster did with it, one JSON\n"
        "line per publish: {\"accepted\":true,\"stream\":...,\"seq\":N,\"connections\":K,\"nodes\":M,...}\n"
        "or {\"accepted\":false,\"reason\":R} -- the JSON the router's POST /api/publish answers.\n"
        "\n"
        "DATA   a JSON object, sent to each target connection as one text frame; or - to read\n"
        "       one JSON object per line from stdin (blank lines skipped), each one publish. A\n"
        "       line that is not a JSON object prints {\"accepted\":false,\"reason\":\"data_not_object\",\n"
        "       \"line\":N} and counts as a failure; the next lines are still published.\n"
        "\n"
        "Transport (one of; NATS is the default):\n"
        "  --nats URL             NATS request on <prefix>.api.publish (a Delivery; the reply is a\n"
        "                         DeliveryReply). URL: comma-separated nats://host:port or\n"
        "                         tls://host:port. Env WSGATE_NATS_URL; default " DEFAULT_NATS_URL "\n"
        "  --http URL             POST URL/api/publish on a router's HTTP port (WSGATE_HTTP_LISTEN),\n"
        "                         e.g. http://127.0.0.1:8090; the body printed as it came\n"
        "  --api-key K            HTTP: sent as 'Authorization: apikey K'. Env WSGATE_API_KEY.\n"
        "                         Prefer the environment or --api-key-file: arguments are visible\n"
        "                         to every user of the machine (ps)\n"
        "  --api-key-file F       HTTP: read the key from file F (trailing newline ignored).\n"
        "                         Env WSGATE_API_KEY_FILE\n"
        "\n"
        "Target (exactly one):\n"
        "  --user U               every connection of user U (kept in U's stream)\n"
        "  --users U,V,...        every connection of each listed user (one stream each)\n"
        "  --broadcast            every connection in the cluster (the broadcast stream)\n"
        "  --channel C            every subscriber of channel C (the channel's stream)\n"
        "  --connection NODE:ID   one connection: gateway node id and its conn_id (not kept)\n"
        "\n"
        "Other:\n"
        "  --id X                 your id for the publish, echoed in the reply and the logs\n"
        "                         (with -, every line's publish carries it)\n"
        "  --prefix P             NATS subject prefix (WSGATE_PREFIX of the cluster). Env\n"
        "                         WSGATE_PREFIX; default " DEFAULT_PREFIX "\n"
        "  --timeout D            how long to wait for each reply: 250ms, 5s, 1m (a bare number\n"
        "                         is seconds); default " DEFAULT_TIMEOUT "\n"
        "  -h, --help             this text\n"
        "\n"
        "NATS credentials and TLS (as the other wsgate binaries take them; flags win, and any\n"
        "credential flag replaces every credential from the environment):\n"
        "  --nats-user U          env WSGATE_NATS_USER (with a password)\n"
        "  --nats-password P      env WSGATE_NATS_PASSWORD\n"
        "  --nats-password-file F env WSGATE_NATS_PASSWORD_FILE\n"
        "  --nats-creds F         env WSGATE_NATS_CREDS (.creds file: user JWT and NKey seed)\n"
        "  --nats-tls-ca F        env WSGATE_NATS_TLS_CA (PEM CAs; turns TLS on)\n"
        "  --nats-tls-cert F      env WSGATE_NATS_TLS_CERT (client certificate, with a key)\n"
        "  --nats-tls-key F       env WSGATE_NATS_TLS_KEY\n"
        "  --nats-tls-hostname H  env WSGATE_NATS_TLS_HOSTNAME\n"
        "\n"
        "Exit status: 0 if every publish was accepted; 1 if any was rejected or failed (no\n"
        "reply in time, NATS or HTTP unreachable, 401, ...); 2 on a usage error.\n"
        "A publish that gets no answer prints {\"accepted\":false,\"reason\":R} with R one of\n"
        "timeout, no_responders, unreachable, bad_reply, and a line on stderr saying more; a\n"
        "NATS server that cannot be reached at the start prints only that line (exit 1).\n"
        "\n"
        "Examples:\n"
        "  %s --user bob '{\"type\":\"chat.message\",\"text\":\"hi\"}'\n"
        "  %s --nats nats://nats:4222 --nats-user service --nats-password-file /run/secrets/nats \\\n"
        "      --users alice,bob --id order-42 '{\"type\":\"order.shipped\",\"order\":42}'\n"
        "  WSGATE_API_KEY=... %s --http http://127.0.0.1:8090 --broadcast '{\"type\":\"notice\"}'\n"
        "  printf '%%s\\n' '{\"n\":1}' '{\"n\":2}' | %s --channel news:sport -\n",
        prog, (int)strlen(prog), "", (int)strlen(prog), "", prog, prog, prog, prog);
    fflush(stdout);
}

static int usage(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see %s --help)\n", prog);
    va_end(ap);
    return PUB_OPTS_USAGE;
}

static int given(const char *s)
{
    return s && *s;
}

/* *dst = a copy of the flag's value, else of the environment's, else of def (all may be
 * NULL or empty: then *dst stays NULL). */
static int pick(char **dst, const char *flag, const char *env, const char *def)
{
    const char *env_v = env ? getenv(env) : NULL;
    const char *v = given(flag) ? flag : given(env_v) ? env_v : def;
    free(*dst);
    *dst = NULL;
    if (!given(v))
        return 0;
    return (*dst = strdup(v)) ? 0 : -1;
}

/* Reads a secret from a file: at most KEY_FILE_MAX bytes, surrounding whitespace trimmed. */
static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t len = buf ? fread(buf, 1, KEY_FILE_MAX, f) : 0;
    int bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    if (bad || memchr(buf, '\0', len)) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    if (!*s) {
        free(buf);
        return NULL;
    }
    memmove(buf, s, strlen(s) + 1);
    return buf;
}

/* "a,b, c" -> a list of trimmed, non-empty ids. Returns 0, or -1 (an empty item, or memory). */
static int split_users(const char *list, pub_target *t)
{
    size_t max = 1;
    for (const char *p = list; *p; p++)
        max += *p == ',';
    if (!(t->users = calloc(max, sizeof(*t->users))))
        return -1;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *s = p;
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        const char *e = end;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == s || !(t->users[t->n_users] = strndup(s, (size_t)(e - s))))
            return -1;
        t->n_users++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* "NODE:ID": a node id ([A-Za-z0-9_-]{1,64}) and a decimal conn_id. */
static int parse_connection(const char *v, pub_target *t)
{
    const char *colon = strrchr(v, ':');
    if (!colon || !wsg_subject_node_id_valid(v, (size_t)(colon - v)))
        return -1;
    const char *num = colon + 1;
    if (*num < '0' || *num > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long id = strtoull(num, &end, 10);
    if (errno || *end)
        return -1;
    if (!(t->name = strndup(v, (size_t)(colon - v))))
        return -1;
    t->conn_id = id;
    return 0;
}

enum {
    O_NATS = 256, O_HTTP, O_API_KEY, O_API_KEY_FILE, O_USER, O_USERS, O_BROADCAST, O_CHANNEL,
    O_CONNECTION, O_ID, O_PREFIX, O_TIMEOUT, O_NATS_USER, O_NATS_PASSWORD, O_NATS_PASSWORD_FILE,
    O_NATS_CREDS, O_NATS_TLS_CA, O_NATS_TLS_CERT, O_NATS_TLS_KEY, O_NATS_TLS_HOSTNAME,
};

int pub_opts_parse(pub_opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"nats", required_argument, NULL, O_NATS},
        {"http", required_argument, NULL, O_HTTP},
        {"api-key", required_argument, NULL, O_API_KEY},
        {"api-key-file", required_argument, NULL, O_API_KEY_FILE},
        {"user", required_argument, NULL, O_USER},
        {"users", required_argument, NULL, O_USERS},
        {"broadcast", no_argument, NULL, O_BROADCAST},
        {"channel", required_argument, NULL, O_CHANNEL},
        {"connection", required_argument, NULL, O_CONNECTION},
        {"id", required_argument, NULL, O_ID},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"nats-user", required_argument, NULL, O_NATS_USER},
        {"nats-password", required_argument, NULL, O_NATS_PASSWORD},
        {"nats-password-file", required_argument, NULL, O_NATS_PASSWORD_FILE},
        {"nats-creds", required_argument, NULL, O_NATS_CREDS},
        {"nats-tls-ca", required_argument, NULL, O_NATS_TLS_CA},
        {"nats-tls-cert", required_argument, NULL, O_NATS_TLS_CERT},
        {"nats-tls-key", required_argument, NULL, O_NATS_TLS_KEY},
        {"nats-tls-hostname", required_argument, NULL, O_NATS_TLS_HOSTNAME},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = "wsgate-pub";
    const char *f_nats = NULL, *f_http = NULL, *f_key = NULL, *f_key_file = NULL;
    const char *f_prefix = NULL, *f_timeout = NULL, *f_id = NULL;
    const char *f_user = NULL, *f_users = NULL, *f_channel = NULL, *f_conn = NULL;
    const char *f_nuser = NULL, *f_npass = NULL, *f_npass_file = NULL, *f_ncreds = NULL;
    const char *f_ca = NULL, *f_cert = NULL, *f_key_tls = NULL, *f_host = NULL;
    int targets = 0, broadcast = 0, c;
    char err[256];

    memset(o, 0, sizeof(*o));
    opterr = 0;
    optind = 0; /* glibc: 0 restarts the scan from scratch */
    while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
        switch (c) {
        case 'h': pub_opts_help(prog); return PUB_OPTS_HELP;
        case O_NATS: f_nats = optarg; break;
        case O_HTTP: f_http = optarg; break;
        case O_API_KEY: f_key = optarg; break;
        case O_API_KEY_FILE: f_key_file = optarg; break;
        case O_USER: f_user = optarg; targets++; break;
        case O_USERS: f_users = optarg; targets++; break;
        case O_BROADCAST: broadcast = 1; targets++; break;
        case O_CHANNEL: f_channel = optarg; targets++; break;
        case O_CONNECTION: f_conn = optarg; targets++; break;
        case O_ID: f_id = optarg; break;
        case O_PREFIX: f_prefix = optarg; break;
        case O_TIMEOUT: f_timeout = optarg; break;
        case O_NATS_USER: f_nuser = optarg; break;
        case O_NATS_PASSWORD: f_npass = optarg; break;
        case O_NATS_PASSWORD_FILE: f_npass_file = optarg; break;
        case O_NATS_CREDS: f_ncreds = optarg; break;
        case O_NATS_TLS_CA: f_ca = optarg; break;
        case O_NATS_TLS_CERT: f_cert = optarg; break;
        case O_NATS_TLS_KEY: f_key_tls = optarg; break;
        case O_NATS_TLS_HOSTNAME: f_host = optarg; break;
        case ':':
            return usage(prog, "%s needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return usage(prog, "unknown option -%c", optopt);
            return usage(prog, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage(prog, "no DATA: give a JSON object, or - to read one per line from stdin");
    if (argc - optind > 1)
        return usage(prog, "one DATA argument only, got %d (quote the JSON object)", argc - optind);
    o->data = argv[optind];

    /* transport */
    if (f_nats && f_http)
        return usage(prog, "--nats and --http: give one transport");
    o->via = f_http ? PUB_VIA_HTTP : PUB_VIA_NATS;
    int nats_flags = f_nuser || f_npass || f_npass_file || f_ncreds || f_ca || f_cert ||
                     f_key_tls || f_host;
    if (o->via == PUB_VIA_HTTP && nats_flags)
        return usage(prog, "NATS credentials or TLS flags are for --nats, not --http");
    if (o->via == PUB_VIA_NATS && (f_key || f_key_file))
        return usage(prog, "--api-key and --api-key-file are for --http");
    if (f_key && f_key_file)
        return usage(prog, "--api-key and --api-key-file: give one");

    /* target */
    if (targets != 1)
        return usage(prog, targets ? "several targets: give exactly one of --user, --users, "
                                     "--broadcast, --channel, --connection"
                                   : "no target: give one of --user, --users, --broadcast, "
                                     "--channel, --connection");
    pub_target *t = &o->target;
    if (broadcast) {
        t->to = PUB_TO_BROADCAST;
    } else if (f_user) {
        t->to = PUB_TO_USER;
        if (!*f_user || !(t->name = strdup(f_user)))
            return usage(prog, "--user: empty");
    } else if (f_channel) {
        t->to = PUB_TO_CHANNEL;
        if (!*f_channel || !(t->name = strdup(f_channel)))
            return usage(prog, "--channel: empty");
    } else if (f_users) {
        t->to = PUB_TO_USERS;
        if (split_users(f_users, t))
            return usage(prog, "--users: a comma-separated list of user ids, none empty");
    } else {
        t->to = PUB_TO_CONNECTION;
        if (parse_connection(f_conn, t))
            return usage(prog, "--connection: \"%s\" is not NODE:CONN_ID (a node id and a "
                         "decimal connection id)", f_conn);
    }

    if (f_id && (!*f_id || !(o->id = strdup(f_id))))
        return usage(prog, "--id: empty");
    if (pick(&o->prefix, f_prefix, "WSGATE_PREFIX", DEFAULT_PREFIX))
        return usage(prog, "out of memory");
    if (!wsg_subject_prefix_valid(o->prefix))
        return usage(prog, "prefix \"%s\": tokens of [A-Za-z0-9_-] separated by dots", o->prefix);
    int64_t ms = 0;
    if (wsg_parse_duration_ms(f_timeout ? f_timeout : DEFAULT_TIMEOUT, &ms) || ms < TIMEOUT_MIN_MS ||
        ms > TIMEOUT_MAX_MS)
        return usage(prog, "--timeout: \"%s\" is not a duration from 1ms to 10m", f_timeout);
    o->timeout_ms = ms;

    if (o->via == PUB_VIA_HTTP) {
        if (!(o->http_url = strdup(f_http)) || !*o->http_url)
            return usage(prog, "--http: empty URL");
        if (strncmp(o->http_url, "http://", 7) && strncmp(o->http_url, "https://", 8))
            return usage(prog, "--http: \"%s\" is not an http:// or https:// URL", o->http_url);
        /* flags replace the environment's key as a whole */
        const char *key = f_key, *key_file = f_key_file;
        if (!key && !key_file) {
            key = getenv("WSGATE_API_KEY");
            key_file = getenv("WSGATE_API_KEY_FILE");
            if (given(key) && given(key_file))
                return usage(prog, "WSGATE_API_KEY and WSGATE_API_KEY_FILE are both set; give one");
        }
        if (given(key_file)) {
            if (!(o->api_key = read_secret(key_file)))
                return usage(prog, "API key file %s: unreadable, empty or over %d bytes", key_file,
                             KEY_FILE_MAX);
        } else if (given(key) && !(o->api_key = strdup(key))) {
            return usage(prog, "out of memory");
        }
        return PUB_OPTS_OK;
    }

    /* NATS: each setting from its flag or its variable, except that credential flags replace
     * the environment's credentials as a whole (the router's container has its own in the
     * environment; a service's given on the command line must not be mixed with them). */
    wsg_nats_opts *n = &o->nats;
    int cred_flags = f_nuser || f_npass || f_npass_file || f_ncreds;
#define CRED_ENV(name) (cred_flags ? NULL : (name))
    if (pick(&n->url, f_nats, "WSGATE_NATS_URL", DEFAULT_NATS_URL) ||
        pick(&n->user, f_nuser, CRED_ENV("WSGATE_NATS_USER"), NULL) ||
        pick(&n->password, f_npass, CRED_ENV("WSGATE_NATS_PASSWORD"), NULL) ||
        pick(&n->password_file, f_npass_file, CRED_ENV("WSGATE_NATS_PASSWORD_FILE"), NULL) ||
        pick(&n->creds, f_ncreds, CRED_ENV("WSGATE_NATS_CREDS"), NULL) ||
        pick(&n->tls_ca, f_ca, "WSGATE_NATS_TLS_CA", NULL) ||
        pick(&n->tls_cert, f_cert, "WSGATE_NATS_TLS_CERT", NULL) ||
        pick(&n->tls_key, f_key_tls, "WSGATE_NATS_TLS_KEY", NULL) ||
        pick(&n->tls_hostname, f_host, "WSGATE_NATS_TLS_HOSTNAME", NULL))
        return usage(prog, "out of memory");
#undef CRED_ENV
    if (wsg_nats_opts_settle(n, err, sizeof(err)))
        return usage(prog, "%s", err);
    return PUB_OPTS_OK;
}

void pub_opts_free(pub_opts *o)
{
    wsg_nats_opts *n = &o->nats;
    char **strs[] = {&o->http_url, &o->api_key, &o->prefix, &o->id, &o->target.name,
                     &n->url, &n->user, &n->password, &n->password_file, &n->creds, &n->tls_ca,
                     &n->tls_cert, &n->tls_key, &n->tls_hostname};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    for (size_t i = 0; i < o->target.n_users; i++)
        free(o->target.users[i]);
    free(o->target.users);
    o->target.users = NULL;
    o->target.n_users = 0;
}
