/* wsg_config: environment variables and flags into typed, range-checked values (see
 * wsg_config.h). Precedence: --flag, then the environment variable, then the default. An
 * empty value (VAR= or --flag=) counts as unset, because orchestrators often pass empty values
 * for variables they do not configure. */
#include "wsg_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "wsg_subject.h"

typedef struct unit {
    const char *suffix;
    int64_t mult;
} unit;

static const unit byte_units[] = {
    {"", 1},
    {"b", 1},
    {"k", INT64_C(1) << 10},  {"kb", INT64_C(1) << 10}, {"kib", INT64_C(1) << 10},
    {"m", INT64_C(1) << 20},  {"mb", INT64_C(1) << 20}, {"mib", INT64_C(1) << 20},
    {"g", INT64_C(1) << 30},  {"gb", INT64_C(1) << 30}, {"gib", INT64_C(1) << 30},
};

static const unit duration_units[] = {
    {"", 1000}, /* a bare number is seconds */
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 60 * 60 * 1000},
};

/* Unsigned decimal followed by optional spaces and a unit from the table. */
static int parse_with_units(const char *s, const unit *units, size_t nunits, int64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < nunits; i++) {
        if (strcasecmp(end, units[i].suffix) != 0)
            continue;
        if (v > INT64_MAX / units[i].mult)
            return -1;
        *out = (int64_t)v * units[i].mult;
        return 0;
    }
    return -1;
}

int wsg_parse_bytes(const char *s, int64_t *out)
{
    return parse_with_units(s, byte_units, sizeof(byte_units) / sizeof(byte_units[0]), out);
}

int wsg_parse_duration_ms(const char *s, int64_t *out)
{
    return parse_with_units(s, duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
                            out);
}

static int parse_int(const char *s, int64_t *out)
{
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_port(const char *s, int *port)
{
    int64_t v;
    if (s[0] == '-' || parse_int(s, &v) != 0 || v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int wsg_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    if (!s || !host || hostlen == 0)
        return -1;
    const char *h = s, *hend, *p;
    if (s[0] == '[') {
        hend = strchr(s, ']');
        if (!hend || hend[1] != ':')
            return -1;
        h = s + 1;
        p = hend + 2;
        if (hend == h)
            return -1;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            hend = h; /* "port" alone: any interface */
            p = s;
        } else {
            hend = colon;
            p = colon + 1;
            /* An unbracketed IPv6 address would be ambiguous with its port. */
            if (memchr(s, ':', (size_t)(colon - s)))
                return -1;
        }
    }
    for (const char *c = h; c < hend; c++)
        if (isspace((unsigned char)*c) || *c == '[' || *c == ']' || *c == '/')
            return -1;
    size_t hl = (size_t)(hend - h);
    if (hl >= hostlen)
        return -1;
    int pv;
    if (parse_port(p, &pv) != 0)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = pv;
    return 0;
}

static const char *type_name(wsg_opt_type t)
{
    switch (t) {
    case WSG_OPT_STRING: return "string";
    case WSG_OPT_INT: return "integer";
    case WSG_OPT_BOOL: return "boolean (true/false)";
    case WSG_OPT_BYTES: return "size (e.g. 64KiB)";
    case WSG_OPT_DURATION: return "duration (e.g. 250ms, 30s)";
    }
    return "value";
}

/* Parses v into o->target. `from` names where v came from, for the error message. */
static int set_value(const wsg_opt *o, const char *v, const char *from, char *err, size_t errlen)
{
    int64_t num = 0;
    int rc = 0;
    switch (o->type) {
    case WSG_OPT_STRING: {
        char **t = o->target;
        if (!v || !*v)
            return 0; /* unset: the target stays NULL */
        *t = strdup(v);
        if (!*t) {
            snprintf(err, errlen, "%s: out of memory", from);
            return -1;
        }
        return 0;
    }
    case WSG_OPT_BOOL: {
        int b = 0;
        if (v && *v && parse_bool(v, &b) != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not a %s", from, v, type_name(o->type));
            return -1;
        }
        *(int *)o->target = b;
        return 0;
    }
    case WSG_OPT_INT:
    case WSG_OPT_BYTES:
    case WSG_OPT_DURATION:
        if (!v || !*v) {
            /* No default and nothing given: 0, which the caller reads as "not configured". */
            *(int64_t *)o->target = 0;
            return 0;
        }
        rc = o->type == WSG_OPT_INT     ? parse_int(v, &num)
             : o->type == WSG_OPT_BYTES ? wsg_parse_bytes(v, &num)
                                        : wsg_parse_duration_ms(v, &num);
        break;
    default:
        snprintf(err, errlen, "%s: unknown option type %d", from, (int)o->type);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a %s", from, v, type_name(o->type));
        return -1;
    }
    if (!(o->min == 0 && o->max == 0) && (num < o->min || num > o->max)) {
        snprintf(err, errlen, "%s: \"%s\" is out of range [%" PRId64 ", %" PRId64 "]", from, v,
                 o->min, o->max);
        return -1;
    }
    *(int64_t *)o->target = num;
    return 0;
}

static void print_help(const wsg_opt *opts, size_t n, const char *prog)
{
    int we = 3, wf = 4, wd = 7;
    for (size_t i = 0; i < n; i++) {
        int le = (int)strlen(opts[i].env), lf = (int)strlen(opts[i].flag) + 2;
        int ld = opts[i].def ? (int)strlen(opts[i].def) : 7;
        we = le > we ? le : we;
        wf = lf > wf ? lf : wf;
        wd = ld > wd ? ld : wd;
    }
    printf("Usage: %s [--flag=value | --flag value]...\n"
           "Each option is read from its environment variable or its flag; the flag wins.\n\n",
           prog ? prog : "");
    printf("  %-*s  %-*s  %-*s  %s\n", we, "ENV", wf, "FLAG", wd, "DEFAULT", "DESCRIPTION");
    for (size_t i = 0; i < n; i++)
        printf("  %-*s  --%-*s  %-*s  %s\n", we, opts[i].env, wf - 2, opts[i].flag, wd,
               opts[i].def ? opts[i].def : "(unset)", opts[i].help ? opts[i].help : "");
    printf("  %-*s  %-*s  %-*s  %s\n", we, "", wf, "--help", wd, "", "print this table");
    fflush(stdout);
}

static const wsg_opt *find_flag(const wsg_opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (opts[i].flag && strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

wsg_config_status wsg_config_load(const wsg_opt *opts, size_t n, const char *prog, int argc,
                                  char **argv, char *err, size_t errlen)
{
    const char **from_flag = NULL;
    char from[128];

    for (size_t i = 0; i < n; i++)
        if (opts[i].type == WSG_OPT_STRING)
            *(char **)opts[i].target = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(opts, n, prog);
            return WSG_CONFIG_HELP;
        }
    }

    from_flag = calloc(n ? n : 1, sizeof(*from_flag));
    if (!from_flag) {
        snprintf(err, errlen, "out of memory");
        return WSG_CONFIG_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            snprintf(err, errlen, "unexpected argument \"%s\" (options are --flag=value)", a);
            goto fail;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const wsg_opt *o = find_flag(opts, n, name, len);
        if (!o) {
            snprintf(err, errlen, "unknown flag --%.*s (see --help)", (int)len, name);
            goto fail;
        }
        if (eq) {
            from_flag[o - opts] = eq + 1;
        } else if (i + 1 < argc) {
            from_flag[o - opts] = argv[++i];
        } else {
            snprintf(err, errlen, "flag --%s needs a value", o->flag);
            goto fail;
        }
    }

    for (size_t i = 0; i < n; i++) {
        const wsg_opt *o = &opts[i];
        const char *env = o->env ? getenv(o->env) : NULL;
        const char *v;
        if (from_flag[i] && *from_flag[i]) {
            v = from_flag[i];
            snprintf(from, sizeof(from), "--%s", o->flag);
        } else if (env && *env) {
            v = env;
            snprintf(from, sizeof(from), "%s", o->env);
        } else {
            v = o->def;
            snprintf(from, sizeof(from), "%s (default)", o->env ? o->env : o->flag);
        }
        if (set_value(o, v, from, err, errlen) != 0)
            goto fail;
    }
    free(from_flag);
    return WSG_CONFIG_OK;

fail:
    free(from_flag);
    wsg_config_free(opts, n);
    return WSG_CONFIG_ERROR;
}

void wsg_config_free(const wsg_opt *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type != WSG_OPT_STRING)
            continue;
        char **t = opts[i].target;
        free(*t);
        *t = NULL;
    }
}

int wsg_config_node_id(char **node_id, const char *role, char *err, size_t errlen)
{
    if (!*node_id || !**node_id) {
        char host[64] = "local";
        if (gethostname(host, sizeof(host)) != 0)
            strcpy(host, "local");
        host[sizeof(host) - 1] = '\0';
        char *id = malloc(WSG_NODE_ID_MAX + 1);
        if (!id) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        snprintf(id, WSG_NODE_ID_MAX + 1, "%s-%s", role, host);
        for (char *p = id; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                *p = '-';
        free(*node_id);
        *node_id = id;
    }
    if (!wsg_subject_node_id_valid(*node_id, strlen(*node_id))) {
        snprintf(err, errlen, "WSGATE_NODE_ID: \"%s\" must match [A-Za-z0-9_-]{1,64}", *node_id);
        return -1;
    }
    return 0;
}

wsg_config_status wsg_config_load_service(wsg_opts_fn table, void *cfg, char **node_id,
                                          char **prefix, const char *prog, const char *role,
                                          int argc, char **argv, char *err, size_t errlen)
{
    wsg_opt opts[WSG_CONFIG_MAX_OPTS];
    size_t n = table(cfg, opts);
    wsg_config_status st = wsg_config_load(opts, n, prog, argc, argv, err, errlen);
    if (st != WSG_CONFIG_OK)
        return st;
    if (wsg_config_node_id(node_id, role, err, errlen))
        return WSG_CONFIG_ERROR;
    if (!*prefix || !wsg_subject_prefix_valid(*prefix)) {
        snprintf(err, errlen, "WSGATE_PREFIX: \"%s\" is not a valid subject prefix",
                 *prefix ? *prefix : "");
        return WSG_CONFIG_ERROR;
    }
    return WSG_CONFIG_OK;
}

void wsg_config_free_service(wsg_opts_fn table, void *cfg)
{
    wsg_opt opts[WSG_CONFIG_MAX_OPTS];
    wsg_config_free(opts, table(cfg, opts));
}

int wsg_config_listen(const char *var, const char *value, char *host, size_t hostlen, int *port,
                      char *err, size_t errlen)
{
    if (!value || wsg_parse_hostport(value, host, hostlen, port)) {
        snprintf(err, errlen, "%s: \"%s\" is not host:port", var, value ? value : "");
        return -1;
    }
    return 0;
}

int wsg_config_log_level(const char *value, wsg_log_level *out, char *err, size_t errlen)
{
    if (!value || wsg_log_level_parse(value, out)) {
        snprintf(err, errlen, "WSGATE_LOG_LEVEL: \"%s\" is not debug, info, warn or error",
                 value ? value : "");
        return -1;
    }
    return 0;
}
