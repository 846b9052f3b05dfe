/* Unit tests for wsgate_common: subjects, parsers, configuration, buffers, queues, metrics,
 * logging, protobuf helpers, ids, signals, URL redaction, the NATS settings and the NATS
 * connection wrapper. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wsg_buf.h"
#include "wsg_config.h"
#include "wsg_id.h"
#include "wsg_log.h"
#include "wsg_num.h"
#include "wsg_utf8.h"
#include "wsg_metrics.h"
#include "wsg_nats.h"
#include "wsg_nats_opts.h"
#include "wsg_redact.h"
#include "wsg_pb.h"
#include "wsg_queue.h"
#include "wsg_signal.h"
#include "wsg_subject.h"
#include "wsg_time.h"
#include "wsg_check.h"
#include "wsg_testsrv.h"

#define NV(s) wsg_subject_node_id_valid((s), strlen(s))
#define TV(s) wsg_subject_type_valid((s), strlen(s))

/* Reads the whole file at fd (rewound first) into buf. */
static void slurp_fd(int fd, char *buf, size_t cap)
{
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    size_t len = 0;
    ssize_t r;
    while (len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
}

/* Redirects stream fd (1 or 2) into a temporary file; returns the saved original fd. */
static int capture_start(int target, int *tmpfd)
{
    char path[] = "/tmp/wsg_test_XXXXXX";
    *tmpfd = mkstemp(path);
    ck_assert_int_ge(*tmpfd, 0);
    unlink(path);
    int saved = dup(target);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(*tmpfd, target), 0);
    return saved;
}

static void capture_end(int target, int saved)
{
    fflush(stdout);
    ck_assert_int_ge(dup2(saved, target), 0);
    close(saved);
}

/* ---- subjects ---- */

START_TEST(test_node_id)
{
    char s65[66];
    memset(s65, 'a', 65);
    s65[65] = '\0';
    ck_assert(NV("gw-1"));
    ck_assert(NV("A_z-09"));
    ck_assert(wsg_subject_node_id_valid(s65, 64));
    ck_assert(!wsg_subject_node_id_valid(s65, 65));
    ck_assert(!NV(""));
    ck_assert(!NV("gw.1"));
    ck_assert(!NV("gw*"));
    ck_assert(!NV(">"));
    ck_assert(!NV("gw 1"));
    ck_assert(!NV("gw\t1"));
    ck_assert(!NV("gw/1"));
    ck_assert(!wsg_subject_node_id_valid("ab\0c", 4));
    ck_assert(!wsg_subject_node_id_valid(NULL, 3));
}
END_TEST

START_TEST(test_type)
{
    char s65[66];
    memset(s65, 'x', 65);
    s65[65] = '\0';
    ck_assert(TV("chat"));
    ck_assert(TV("chat.room.join"));
    ck_assert(TV("a-b_c.d"));
    ck_assert(wsg_subject_type_valid(s65, 64));
    ck_assert(!wsg_subject_type_valid(s65, 65));
    s65[10] = '.';
    ck_assert(wsg_subject_type_valid(s65, 64));
    ck_assert(!TV(""));
    ck_assert(!TV(".chat"));
    ck_assert(!TV("chat."));
    ck_assert(!TV("chat..room"));
    ck_assert(!TV("."));
    ck_assert(!TV("chat.*"));
    ck_assert(!TV("chat.>"));
    ck_assert(!TV("*"));
    ck_assert(!TV("chat room"));
    ck_assert(!TV("chat\n"));
    ck_assert(!TV("ch\xc3\xa9t"));
}
END_TEST

START_TEST(test_prefix_and_fmt)
{
    char s[70];
    memset(s, 'p', 65);
    s[65] = '\0';
    ck_assert(wsg_subject_prefix_valid("wsgate"));
    ck_assert(wsg_subject_prefix_valid("acme.wsgate"));
    ck_assert(!wsg_subject_prefix_valid(s));
    s[64] = '\0';
    ck_assert(wsg_subject_prefix_valid(s));
    ck_assert(!wsg_subject_prefix_valid(""));
    ck_assert(!wsg_subject_prefix_valid(NULL));
    ck_assert(!wsg_subject_prefix_valid("a..b"));
    ck_assert(!wsg_subject_prefix_valid("a."));
    ck_assert(!wsg_subject_prefix_valid("a.*"));
    ck_assert(!wsg_subject_prefix_valid("a b"));

    char out[17]; /* exactly "wsgate.node.gw-1" and its NUL */
    ck_assert_int_eq(wsg_subject_fmt(out, sizeof(out), "wsgate", "node.%s", "gw-1"), 0);
    ck_assert_str_eq(out, "wsgate.node.gw-1");
    ck_assert_int_eq(wsg_subject_fmt(out, sizeof(out), "wsgate", "node.%s", "gw-12"), -1);
    ck_assert_int_eq(wsg_subject_fmt(out, 7, "wsgate", "hb"), -1);
    ck_assert_int_eq(wsg_subject_fmt(out, sizeof(out), "wsgate", "hb"), 0);
    ck_assert_str_eq(out, "wsgate.hb");
}
END_TEST

/* ---- parsers ---- */

START_TEST(test_parse_bytes)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {
        {"0", 0},          {"65536", 65536},         {"64KiB", 65536},
        {"1MiB", 1048576}, {"2GiB", 2147483648LL},   {"1k", 1024},
        {"1K", 1024},      {"3m", 3 * 1048576},      {"4G", 4LL << 30},
        {"8KB", 8192},     {"5MB", 5 * 1048576},     {"1GB", 1LL << 30},
        {"10 KiB", 10240}, {"12b", 12},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        ck_assert_msg(wsg_parse_bytes(ok[i].s, &v) == 0, "rejected %s", ok[i].s);
        ck_assert_msg(v == ok[i].v, "%s -> %lld", ok[i].s, (long long)v);
    }
    static const char *const bad[] = {"",    "abc",   "-1",     "1.5MiB", "1TiB", "1KiBx",
                                      "KiB", " 5",    "5 5",    "+5",     "0x10",
                                      "9223372036854775807G",   "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 42;
        ck_assert_msg(wsg_parse_bytes(bad[i], &v) == -1, "accepted %s", bad[i]);
        ck_assert_int_eq(v, 42);
    }
    int64_t v;
    ck_assert_int_eq(wsg_parse_bytes(NULL, &v), -1);
}
END_TEST

START_TEST(test_parse_duration)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {{"250ms", 250}, {"30s", 30000},  {"5m", 300000},
              {"1h", 3600000}, {"7", 7000},    {"0", 0},
              {"0ms", 0},      {"1500ms", 1500}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        ck_assert_msg(wsg_parse_duration_ms(ok[i].s, &v) == 0, "rejected %s", ok[i].s);
        ck_assert_msg(v == ok[i].v, "%s -> %lld", ok[i].s, (long long)v);
    }
    static const char *const bad[] = {"",   "ms",   "-1s", "1d", "1.5s", "s5",
                                      "5x", "5 ms s", "9223372036854775807h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 42;
        ck_assert_msg(wsg_parse_duration_ms(bad[i], &v) == -1, "accepted %s", bad[i]);
        ck_assert_int_eq(v, 42);
    }
}
END_TEST

START_TEST(test_parse_hostport)
{
    char host[64];
    int port = 0;
    ck_assert_int_eq(wsg_parse_hostport("0.0.0.0:8080", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "0.0.0.0");
    ck_assert_int_eq(port, 8080);
    ck_assert_int_eq(wsg_parse_hostport(":9000", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "");
    ck_assert_int_eq(port, 9000);
    ck_assert_int_eq(wsg_parse_hostport("9001", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "");
    ck_assert_int_eq(port, 9001);
    ck_assert_int_eq(wsg_parse_hostport("[::1]:8443", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 8443);
    ck_assert_int_eq(wsg_parse_hostport("localhost:65535", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "localhost");
    ck_assert_int_eq(port, 65535);

    static const char *const bad[] = {"",         "host:",     "host:0",  "host:65536",
                                      "host:abc", "host:-1",   "::1:80",  "[::1]8080",
                                      "[::1]",    "[]:80",     "a b:80",  "host:80x",
                                      "host: 80", "[::1]:",    "x:+80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        port = 7;
        ck_assert_msg(wsg_parse_hostport(bad[i], host, sizeof(host), &port) == -1, "accepted %s",
                      bad[i]);
        ck_assert_int_eq(port, 7);
    }
    char small[4];
    ck_assert_int_eq(wsg_parse_hostport("abcd:80", small, sizeof(small), &port), -1);
    ck_assert_int_eq(wsg_parse_hostport("abc:80", small, sizeof(small), &port), 0);
    ck_assert_str_eq(small, "abc");
}
END_TEST

/* ---- config ---- */

typedef struct tcfg {
    char *name;
    char *secret;
    int64_t workers;
    int verbose;
    int64_t bufsize;
    int64_t timeout_ms;
} tcfg;

#define TOPTS(c)                                                                              \
    {                                                                                         \
        {"WT_NAME", "name", WSG_OPT_STRING, "dflt", 0, 0, &(c).name, "a name"},              \
        {"WT_SECRET", "secret", WSG_OPT_STRING, NULL, 0, 0, &(c).secret, "optional"},         \
        {"WT_WORKERS", "workers", WSG_OPT_INT, "2", 1, 16, &(c).workers, "threads"},          \
        {"WT_VERBOSE", "verbose", WSG_OPT_BOOL, "false", 0, 0, &(c).verbose, "chatty"},       \
        {"WT_BUF", "buf", WSG_OPT_BYTES, "64KiB", 1024, 1 << 20, &(c).bufsize, "buffer"},     \
        {"WT_TIMEOUT", "timeout", WSG_OPT_DURATION, "5s", 0, 0, &(c).timeout_ms, "timeout"}, \
    }

static void clear_env(void)
{
    static const char *const vars[] = {"WT_NAME", "WT_SECRET", "WT_WORKERS",
                                       "WT_VERBOSE", "WT_BUF", "WT_TIMEOUT"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static wsg_config_status load(tcfg *c, int argc, char **argv, char *err, size_t errlen)
{
    wsg_opt opts[] = TOPTS(*c);
    return wsg_config_load(opts, sizeof(opts) / sizeof(opts[0]), "prog", argc, argv, err, errlen);
}

static void free_cfg(tcfg *c)
{
    wsg_opt opts[] = TOPTS(*c);
    wsg_config_free(opts, sizeof(opts) / sizeof(opts[0]));
}

START_TEST(test_config_defaults)
{
    clear_env();
    tcfg c;
    memset(&c, 0xab, sizeof(c));
    char err[256] = "";
    char *argv[] = {"prog", NULL};
    ck_assert_int_eq(load(&c, 1, argv, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_str_eq(c.name, "dflt");
    ck_assert_ptr_null(c.secret);
    ck_assert_int_eq(c.workers, 2);
    ck_assert_int_eq(c.verbose, 0);
    ck_assert_int_eq(c.bufsize, 65536);
    ck_assert_int_eq(c.timeout_ms, 5000);
    free_cfg(&c);
    ck_assert_ptr_null(c.name);
}
END_TEST

START_TEST(test_config_precedence)
{
    clear_env();
    setenv("WT_NAME", "from-env", 1);
    setenv("WT_WORKERS", "4", 1);
    setenv("WT_VERBOSE", "yes", 1);
    setenv("WT_BUF", "", 1); /* empty = unset: default applies */
    setenv("WT_TIMEOUT", "250ms", 1);
    tcfg c;
    char err[256] = "";
    char *argv[] = {"prog", "--workers=8", "--secret", "s3 cret", "--timeout", "2m", NULL};
    ck_assert_int_eq(load(&c, 6, argv, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_str_eq(c.name, "from-env");
    ck_assert_str_eq(c.secret, "s3 cret");
    ck_assert_int_eq(c.workers, 8);
    ck_assert_int_eq(c.verbose, 1);
    ck_assert_int_eq(c.bufsize, 65536);
    ck_assert_int_eq(c.timeout_ms, 120000);
    free_cfg(&c);

    static const char *const truthy[] = {"1", "true", "yes", "on", "TRUE"};
    static const char *const falsy[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        setenv("WT_VERBOSE", truthy[i], 1);
        ck_assert_int_eq(load(&c, 1, argv, err, sizeof(err)), WSG_CONFIG_OK);
        ck_assert_msg(c.verbose == 1, "%s", truthy[i]);
        free_cfg(&c);
    }
    for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
        setenv("WT_VERBOSE", falsy[i], 1);
        ck_assert_int_eq(load(&c, 1, argv, err, sizeof(err)), WSG_CONFIG_OK);
        ck_assert_msg(c.verbose == 0, "%s", falsy[i]);
        free_cfg(&c);
    }
    /* The flag wins even over an environment value that would not parse. */
    setenv("WT_VERBOSE", "maybe", 1);
    char *argv2[] = {"prog", "--verbose=on", NULL};
    ck_assert_int_eq(load(&c, 2, argv2, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_int_eq(c.verbose, 1);
    free_cfg(&c);
}
END_TEST

START_TEST(test_config_errors)
{
    clear_env();
    tcfg c;
    char err[256];

    char *range[] = {"prog", "--name=x", "--workers=17", NULL};
    err[0] = '\0';
    ck_assert_int_eq(load(&c, 3, range, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "--workers"));
    ck_assert_ptr_nonnull(strstr(err, "range"));
    ck_assert_ptr_null(c.name); /* freed on error */

    setenv("WT_BUF", "512", 1);
    err[0] = '\0';
    char *none[] = {"prog", NULL};
    ck_assert_int_eq(load(&c, 1, none, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "WT_BUF"));
    setenv("WT_BUF", "2MiB", 1);
    ck_assert_int_eq(load(&c, 1, none, err, sizeof(err)), WSG_CONFIG_ERROR);
    setenv("WT_BUF", "1MiB", 1);
    ck_assert_int_eq(load(&c, 1, none, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_int_eq(c.bufsize, 1 << 20);
    free_cfg(&c);
    unsetenv("WT_BUF");

    setenv("WT_WORKERS", "four", 1);
    ck_assert_int_eq(load(&c, 1, none, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "WT_WORKERS"));
    unsetenv("WT_WORKERS");

    setenv("WT_VERBOSE", "maybe", 1);
    ck_assert_int_eq(load(&c, 1, none, err, sizeof(err)), WSG_CONFIG_ERROR);
    unsetenv("WT_VERBOSE");

    char *unknown[] = {"prog", "--nmae=x", NULL};
    err[0] = '\0';
    ck_assert_int_eq(load(&c, 2, unknown, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "--nmae"));

    char *prefix_only[] = {"prog", "--work=3", NULL};
    ck_assert_int_eq(load(&c, 2, prefix_only, err, sizeof(err)), WSG_CONFIG_ERROR);

    char *positional[] = {"prog", "extra", NULL};
    ck_assert_int_eq(load(&c, 2, positional, err, sizeof(err)), WSG_CONFIG_ERROR);

    char *missing[] = {"prog", "--name", NULL};
    err[0] = '\0';
    ck_assert_int_eq(load(&c, 2, missing, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "--name"));

    char *baddur[] = {"prog", "--timeout=3d", NULL};
    ck_assert_int_eq(load(&c, 2, baddur, err, sizeof(err)), WSG_CONFIG_ERROR);
}
END_TEST

START_TEST(test_config_help)
{
    clear_env();
    tcfg c;
    char err[256] = "";
    char *argv[] = {"prog", "--workers=99", "--help", NULL};
    int tmp;
    int saved = capture_start(STDOUT_FILENO, &tmp);
    wsg_config_status st = load(&c, 3, argv, err, sizeof(err));
    capture_end(STDOUT_FILENO, saved);
    ck_assert_int_eq(st, WSG_CONFIG_HELP);
    char out[8192];
    slurp_fd(tmp, out, sizeof(out));
    close(tmp);
    ck_assert_ptr_nonnull(strstr(out, "Usage: prog"));
    ck_assert_ptr_nonnull(strstr(out, "WT_WORKERS"));
    ck_assert_ptr_nonnull(strstr(out, "--workers"));
    ck_assert_ptr_nonnull(strstr(out, "64KiB"));
    ck_assert_ptr_nonnull(strstr(out, "(unset)"));
    ck_assert_ptr_nonnull(strstr(out, "threads"));
    ck_assert_ptr_null(c.name);
}
END_TEST

/* ---- credentials in URLs ---- */

#define REDACTED(in, want)                                                                \
    do {                                                                                  \
        char out_[256];                                                                   \
        ck_assert_str_eq(wsg_redact_urls((in), out_, sizeof(out_)), (want));              \
    } while (0)

START_TEST(test_redact_urls)
{
    REDACTED("nats://user:pass@h:4222", "nats://user:***@h:4222");
    REDACTED("nats://h:4222", "nats://h:4222");
    REDACTED("nats://s3cret-token@h:4222", "nats://***@h:4222");
    REDACTED("redis://:pw@redis:6379/2", "redis://:***@redis:6379/2");
    REDACTED("redis://acl-user:pw@redis:6379", "redis://acl-user:***@redis:6379");
    /* every element of a list, with or without a scheme, spaces kept */
    REDACTED("nats://a:1@h1:4222, nats://h2:4222,b:2@h3:4222",
             "nats://a:***@h1:4222, nats://h2:4222,b:***@h3:4222");
    /* a password holding '@', '/', '?' or ':' is masked whole */
    REDACTED("nats://u:p@ss/w:rd@h:4222", "nats://u:***@h:4222");
    REDACTED("tls://u:p?x#y@h", "tls://u:***@h");
    REDACTED("", "");
    char out[64];
    ck_assert_str_eq(wsg_redact_urls(NULL, out, sizeof(out)), "");
    /* cut short after redaction: the secret never reaches the buffer */
    char small[16];
    wsg_redact_urls("nats://user:topsecret@host:4222", small, sizeof(small));
    ck_assert_str_eq(small, "nats://user:***");
    char tiny[1] = {'x'};
    wsg_redact_urls("nats://a:b@c", tiny, sizeof(tiny));
    ck_assert_int_eq(tiny[0], '\0');
}
END_TEST

/* The NATS rows as a service's table holds them, loaded from the environment. */
static wsg_config_status load_nats(wsg_nats_opts *n, char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    const wsg_opt rows[] = {WSG_NATS_OPT_ROWS(n)};
    char *argv[] = {"prog", NULL};
    wsg_config_status st = wsg_config_load(rows, sizeof(rows) / sizeof(rows[0]), "prog", 1, argv,
                                           err, errlen);
    if (st == WSG_CONFIG_OK && wsg_nats_opts_settle(n, err, errlen)) {
        wsg_config_free(rows, sizeof(rows) / sizeof(rows[0])); /* as the services do */
        st = WSG_CONFIG_ERROR;
    }
    return st;
}

static void free_nats(wsg_nats_opts *n)
{
    const wsg_opt rows[] = {WSG_NATS_OPT_ROWS(n)};
    wsg_config_free(rows, sizeof(rows) / sizeof(rows[0]));
}

static void clear_nats_env(void)
{
    const char *vars[] = {"WSGATE_NATS_URL", "WSGATE_NATS_USER", "WSGATE_NATS_PASSWORD",
                          "WSGATE_NATS_PASSWORD_FILE", "WSGATE_NATS_CREDS", "WSGATE_NATS_TLS_CA",
                          "WSGATE_NATS_TLS_CERT", "WSGATE_NATS_TLS_KEY",
                          "WSGATE_NATS_TLS_HOSTNAME"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

START_TEST(test_nats_opts)
{
    clear_nats_env();
    wsg_nats_opts n;
    char err[256];
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_str_eq(n.url, "nats://127.0.0.1:4222");
    ck_assert_ptr_null(n.user);
    ck_assert_int_eq(wsg_nats_opts_tls(&n), 0);
    free_nats(&n);

    setenv("WSGATE_NATS_USER", "gateway", 1);
    setenv("WSGATE_NATS_PASSWORD", "pw1", 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_str_eq(n.password, "pw1");
    free_nats(&n);

    /* a Secret mounted as a file, with the newline editors add */
    char path[] = "/tmp/wsg_test_pw_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "from-file\n", 10), 10);
    close(fd);
    unsetenv("WSGATE_NATS_PASSWORD");
    setenv("WSGATE_NATS_PASSWORD_FILE", path, 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_str_eq(n.password, "from-file");
    free_nats(&n);

    /* contradictions and gaps are refused, without echoing a secret */
    setenv("WSGATE_NATS_PASSWORD", "pw1", 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "both set"));
    ck_assert_ptr_null(strstr(err, "pw1"));
    unsetenv("WSGATE_NATS_PASSWORD");
    unsetenv("WSGATE_NATS_PASSWORD_FILE");
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "WSGATE_NATS_USER needs"));
    unsetenv("WSGATE_NATS_USER");
    setenv("WSGATE_NATS_PASSWORD", "pw1", 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_null(strstr(err, "pw1"));
    setenv("WSGATE_NATS_USER", "gateway", 1);
    setenv("WSGATE_NATS_CREDS", "/x.creds", 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "WSGATE_NATS_CREDS"));
    clear_nats_env();
    setenv("WSGATE_NATS_PASSWORD_FILE", "/nonexistent/pw", 1);
    setenv("WSGATE_NATS_USER", "gateway", 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\n", 1), 1);
    close(fd);
    setenv("WSGATE_NATS_PASSWORD_FILE", path, 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "empty"));
    unlink(path);
    clear_nats_env();
    setenv("WSGATE_NATS_TLS_CERT", "/c.pem", 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "go together"));
    setenv("WSGATE_NATS_TLS_KEY", "/k.pem", 1);
    ck_assert_int_eq(load_nats(&n, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_int_eq(wsg_nats_opts_tls(&n), 1);
    free_nats(&n);
    clear_nats_env();
}
END_TEST

/* ---- buf ---- */

START_TEST(test_buf)
{
    wsg_buf b;
    wsg_buf_init(&b);
    ck_assert(wsg_buf_ok(&b));
    wsg_buf_puts(&b, "hello");
    wsg_buf_append(&b, ", ", 2);
    wsg_buf_printf(&b, "%s %d", "world", 42);
    ck_assert(wsg_buf_ok(&b));
    ck_assert_uint_eq(b.len, strlen("hello, world 42"));
    ck_assert_str_eq(b.data, "hello, world 42");

    /* printf longer than the current capacity takes the grow-and-retry path. */
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    wsg_buf_printf(&b, "[%s]", big);
    ck_assert(wsg_buf_ok(&b));
    ck_assert_uint_eq(b.len, 15 + 2 + sizeof(big) - 1);
    ck_assert_int_eq(b.data[15], '[');
    ck_assert_int_eq(b.data[b.len - 1], ']');
    ck_assert_int_eq(b.data[b.len], '\0');

    wsg_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    char *p = wsg_buf_reserve(&b, 10);
    ck_assert_ptr_nonnull(p);
    memcpy(p, "abc", 3);
    wsg_buf_commit(&b, 3);
    ck_assert_str_eq(b.data, "abc");
    wsg_buf_commit(&b, b.cap); /* more than reserved: a caller bug, reported as failure */
    ck_assert(!wsg_buf_ok(&b));
    wsg_buf_puts(&b, "ignored");
    ck_assert_str_eq(b.data, "abc");
    ck_assert_ptr_null(wsg_buf_reserve(&b, 1));
    wsg_buf_reset(&b);
    ck_assert(wsg_buf_ok(&b));
    wsg_buf_free(&b);
    ck_assert_ptr_null(b.data);
    wsg_buf_free(&b);
}
END_TEST

/* ---- queue ---- */

typedef struct item {
    wsg_qnode node;
    int producer;
    int seq;
} item;

START_TEST(test_queue_fifo)
{
    wsg_queue q;
    ck_assert_int_eq(wsg_queue_init(&q), 0);
    ck_assert_ptr_null(wsg_queue_take_all(&q));
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].seq = i;
        ck_assert_uint_eq(wsg_queue_push(&q, &it[i].node), (size_t)i + 1);
    }
    ck_assert_uint_eq(wsg_queue_len(&q), 5);
    wsg_qnode *n = wsg_queue_take_all(&q);
    ck_assert_uint_eq(wsg_queue_len(&q), 0);
    int expect = 0;
    for (; n; n = n->next)
        ck_assert_int_eq(wsg_container_of(n, item, node)->seq, expect++);
    ck_assert_int_eq(expect, 5);
    ck_assert_ptr_null(wsg_queue_take_all(&q));
    ck_assert_uint_eq(wsg_queue_push(&q, &it[0].node), 1);
    n = wsg_queue_take_all(&q);
    ck_assert_ptr_eq(n, &it[0].node);
    ck_assert_ptr_null(n->next);
    wsg_queue_destroy(&q);
}
END_TEST

#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct producer {
    wsg_queue *q;
    item *items;
    int id;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        p->items[i].producer = p->id;
        p->items[i].seq = i;
        wsg_queue_push(p->q, &p->items[i].node);
    }
    return NULL;
}

START_TEST(test_queue_threads)
{
    wsg_queue q;
    ck_assert_int_eq(wsg_queue_init(&q), 0);
    pthread_t th[PRODUCERS];
    producer prod[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (producer){&q, calloc(PER_PRODUCER, sizeof(item)), i};
        ck_assert_ptr_nonnull(prod[i].items);
        ck_assert_int_eq(pthread_create(&th[i], NULL, produce, &prod[i]), 0);
    }
    int next[PRODUCERS] = {0};
    int total = 0;
    while (total < PRODUCERS * PER_PRODUCER) {
        for (wsg_qnode *n = wsg_queue_take_all(&q); n;) {
            wsg_qnode *nx = n->next;
            item *it = wsg_container_of(n, item, node);
            ck_assert_int_eq(it->seq, next[it->producer]);
            next[it->producer]++;
            total++;
            n = nx;
        }
    }
    for (int i = 0; i < PRODUCERS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(next[i], PER_PRODUCER);
        free(prod[i].items);
    }
    ck_assert_uint_eq(wsg_queue_len(&q), 0);
    wsg_queue_destroy(&q);
}
END_TEST

/* ---- metrics ---- */

START_TEST(test_metrics_render)
{
    static const wsg_metric_desc descs[] = {
        {"t_open", NULL, WSG_METRIC_GAUGE, "Open now"},
        {"t_closed_total", "reason=\"auth\"", WSG_METRIC_COUNTER, "Closed, by reason"},
        {"t_closed_total", "reason=\"peer\"", WSG_METRIC_COUNTER, "Closed, by reason"},
        {"t_odd", NULL, WSG_METRIC_COUNTER, "back\\slash\nnewline"},
    };
    wsg_metrics m;
    ck_assert_int_eq(wsg_metrics_init(&m, descs, 4), 0);
    wsg_metrics_set(&m, 0, 7);
    wsg_metrics_add(&m, 0, -2);
    wsg_metrics_add(&m, 2, 3);
    wsg_metrics_add(&m, 2, 1);
    ck_assert_int_eq(wsg_metrics_get(&m, 2), 4);
    wsg_buf b;
    wsg_buf_init(&b);
    wsg_metrics_render(&m, &b);
    ck_assert(wsg_buf_ok(&b));
    ck_assert_str_eq(b.data, "# HELP t_open Open now\n"
                             "# TYPE t_open gauge\n"
                             "t_open 5\n"
                             "# HELP t_closed_total Closed, by reason\n"
                             "# TYPE t_closed_total counter\n"
                             "t_closed_total{reason=\"auth\"} 0\n"
                             "t_closed_total{reason=\"peer\"} 4\n"
                             "# HELP t_odd back\\\\slash\\nnewline\n"
                             "# TYPE t_odd counter\n"
                             "t_odd 0\n");
    wsg_buf_free(&b);
    wsg_metrics_free(&m);
}
END_TEST

/* ---- log ---- */

START_TEST(test_log_format)
{
    wsg_log_level lv;
    ck_assert_int_eq(wsg_log_level_parse("debug", &lv), 0);
    ck_assert_int_eq(lv, WSG_LOG_DEBUG);
    ck_assert_int_eq(wsg_log_level_parse("error", &lv), 0);
    ck_assert_int_eq(lv, WSG_LOG_ERROR);
    ck_assert_int_eq(wsg_log_level_parse("warning", &lv), -1);
    ck_assert_int_eq(wsg_log_level_parse(NULL, &lv), -1);

    wsg_log_init("gateway", "gw-1", WSG_LOG_INFO);
    ck_assert(!wsg_log_enabled(WSG_LOG_DEBUG));
    ck_assert(wsg_log_enabled(WSG_LOG_WARN));
    int tmp;
    int saved = capture_start(STDERR_FILENO, &tmp);
    wsg_debug("hidden", "x=%d", 1);
    wsg_info("listening", "addr=%s port=%d", "0.0.0.0", 8080);
    wsg_error("bare", NULL);
    char longv[6000];
    memset(longv, 'v', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    wsg_warn("long", "v=%s", longv);
    wsg_log_route_lws();
    _lws_log(LLL_ERR, "bad \"thing\" here\n");
    _lws_log(LLL_WARN, "careful\n");
    _lws_log(LLL_NOTICE, "not routed\n");
    capture_end(STDERR_FILENO, saved);

    char out[16384];
    slurp_fd(tmp, out, sizeof(out));
    close(tmp);
    ck_assert_ptr_null(strstr(out, "hidden"));
    ck_assert_ptr_null(strstr(out, "not routed"));
    regex_t re;
    ck_assert_int_eq(
        regcomp(&re,
                "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                "level=info svc=gateway node=gw-1 msg=listening addr=0\\.0\\.0\\.0 port=8080\n",
                REG_EXTENDED | REG_NEWLINE),
        0);
    ck_assert_msg(regexec(&re, out, 0, NULL, 0) == 0, "first line: %.200s", out);
    regfree(&re);
    ck_assert_ptr_nonnull(strstr(out, "level=error svc=gateway node=gw-1 msg=bare\n"));
    /* The overlong line is cut but still one line. */
    char *lw = strstr(out, "msg=long v=vvv");
    ck_assert_ptr_nonnull(lw);
    char *nl = strchr(lw, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_int_lt(nl - lw, 4096);
    ck_assert_ptr_nonnull(
        strstr(out, "level=error svc=gateway node=gw-1 msg=lws text=\"bad \\\"thing\\\" here\"\n"));
    ck_assert_ptr_nonnull(strstr(out, "level=warn svc=gateway node=gw-1 msg=lws text=\"careful\"\n"));
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 5);
}
END_TEST

/* Logs one line at info and returns what reached stderr. */
static void log_capture(char *out, size_t cap, void (*emit_lines)(void))
{
    wsg_log_init("gateway", "gw-1", WSG_LOG_INFO);
    int tmp;
    int saved = capture_start(STDERR_FILENO, &tmp);
    emit_lines();
    capture_end(STDERR_FILENO, saved);
    slurp_fd(tmp, out, cap);
    close(tmp);
}

static void log_injection(void)
{
    /* A user id chosen by an attacker to forge a second event in the same line, and a second
     * line. */
    wsg_info("conn_open", "conn=%d user=\"%s\" ok=%s", 7, "mallory\" level=error msg=pwned",
             "yes");
    wsg_info("conn_open", "user=%s next=%d", "eve\nts=x level=error msg=forged", 1);
}

/* The keys of one logfmt line, as a reader that honours quotes and escapes sees them,
 * joined by ','. */
static void logfmt_keys(const char *line, char *keys, size_t cap)
{
    size_t k = 0;
    const char *p = line;
    while (*p && *p != '\n') {
        while (*p == ' ')
            p++;
        while (*p && *p != '=' && *p != ' ' && *p != '\n' && k < cap - 2)
            keys[k++] = *p++;
        keys[k++] = ',';
        if (*p != '=')
            break;
        p++;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ' ' && *p != '\n')
                p++;
        }
    }
    keys[k ? k - 1 : 0] = '\0';
}

START_TEST(test_log_escapes_values)
{
    char out[4096];
    log_capture(out, sizeof(out), log_injection);
    ck_assert_ptr_nonnull(strstr(
        out, "msg=conn_open conn=7 user=\"mallory\\\" level=error msg=pwned\" ok=yes\n"));
    ck_assert_ptr_nonnull(
        strstr(out, "msg=conn_open user=\"eve\\nts=x level=error msg=forged\" next=1\n"));
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 2);
    char keys[256];
    logfmt_keys(out, keys, sizeof(keys));
    ck_assert_str_eq(keys, "ts,level,svc,node,msg,conn,user,ok");
    logfmt_keys(strchr(out, '\n') + 1, keys, sizeof(keys));
    ck_assert_str_eq(keys, "ts,level,svc,node,msg,user,next");
}
END_TEST

static const char *volatile no_value; /* NULL the compiler cannot see */

static void log_values(void)
{
    wsg_info("v", "a=%s b=%s c=%s d=%s", "", "x y", "k=v", "plain-value_1.2:3/4");
    wsg_info("v", "bad=%s ctl=%s utf8=%s", "\xff\xc0\xaf", "a\x01\x7f" "b", "h\xc3\xa9 \xe2\x82\xac");
    wsg_info("v", "cut=\"%.3s\" null=%s pct=100%% n=%zu l=%ld ll=%lld u=%u x=%x c=%c",
             "abcdef", no_value, (size_t)42, -5L, -6LL, 7u, 255u, 'q');
}

START_TEST(test_log_quotes_when_needed)
{
    char out[4096];
    log_capture(out, sizeof(out), log_values);
    ck_assert_ptr_nonnull(strstr(out, " a=\"\" b=\"x y\" c=\"k=v\" d=plain-value_1.2:3/4\n"));
    /* invalid UTF-8 and control bytes are hex escapes; valid UTF-8 stays readable */
    ck_assert_ptr_nonnull(strstr(
        out, " bad=\"\\xff\\xc0\\xaf\" ctl=\"a\\x01\\x7fb\" utf8=\"h\xc3\xa9 \xe2\x82\xac\"\n"));
    ck_assert_ptr_nonnull(strstr(
        out, " cut=\"abc\" null=(null) pct=100% n=42 l=-5 ll=-6 u=7 x=ff c=q\n"));
}
END_TEST

static void log_limited_burst(void)
{
    static wsg_log_limit lim;
    for (int i = 0; i < 5; i++)
        wsg_log_limited(&lim, 60LL * 1000 * 1000, WSG_LOG_INFO, "flood", "i=%d", i);
    /* The next period: due again, telling how many were dropped. */
    atomic_store(&lim.next_us, 0);
    wsg_log_limited(&lim, 60LL * 1000 * 1000, WSG_LOG_INFO, "flood", "i=%d", 5);
    for (int i = 0; i < 3; i++)
        wsg_log_every(60000, WSG_LOG_WARN, "site", "i=%d", i);
}

START_TEST(test_log_rate_limited)
{
    char out[4096];
    log_capture(out, sizeof(out), log_limited_burst);
    ck_assert_ptr_nonnull(strstr(out, "msg=flood i=0 suppressed=0\n"));
    ck_assert_ptr_null(strstr(out, "msg=flood i=1"));
    ck_assert_ptr_nonnull(strstr(out, "msg=flood i=5 suppressed=4\n"));
    ck_assert_ptr_nonnull(strstr(out, "msg=site i=0 suppressed=0\n"));
    ck_assert_ptr_null(strstr(out, "msg=site i=1"));
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 3);
}
END_TEST

/* ---- numbers ---- */

START_TEST(test_parse_u64)
{
    uint64_t v;
    ck_assert_int_eq(wsg_parse_u64("18446744073709551615", 20, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(wsg_parse_u64("18446744073709551616", 20, &v), -1);
    ck_assert_int_eq(wsg_parse_u64("", 0, &v), -1);
    ck_assert_int_eq(wsg_parse_u64("-1", 2, &v), -1);
    ck_assert_int_eq(wsg_parse_u64("12a", 3, &v), -1);
    ck_assert_int_eq(wsg_parse_u64("0", 1, &v), 0);
    ck_assert_uint_eq(v, 0);
    /* what strtoull would take */
    ck_assert_int_eq(wsg_parse_u64(" 5", 2, &v), -1);
    ck_assert_int_eq(wsg_parse_u64("+5", 2, &v), -1);
    ck_assert_int_eq(wsg_parse_u64(" -5", 3, &v), -1);
    ck_assert_int_eq(wsg_parse_u64("0x10", 4, &v), -1);
}
END_TEST

/* ---- UTF-8 ---- */

START_TEST(test_utf8)
{
    const unsigned char *u = (const unsigned char *)"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    ck_assert_uint_eq(wsg_utf8_seq(u, 10), 1);
    ck_assert_uint_eq(wsg_utf8_seq(u + 1, 9), 2);
    ck_assert_uint_eq(wsg_utf8_seq(u + 3, 7), 3);
    ck_assert_uint_eq(wsg_utf8_seq(u + 6, 4), 4);
    ck_assert_uint_eq(wsg_utf8_seq(u + 6, 3), 0); /* truncated */
    ck_assert_uint_eq(wsg_utf8_seq(u, 0), 0);
    ck_assert_uint_eq(wsg_utf8_seq((const unsigned char *)"\x80", 1), 0);
    ck_assert(wsg_utf8_valid(u, 10));
    ck_assert(wsg_utf8_valid(u, 0));
    ck_assert(!wsg_utf8_valid((const unsigned char *)"\xed\xbf\xbf", 3)); /* surrogate */
}
END_TEST

/* ---- protobuf ---- */

START_TEST(test_pb)
{
    Wsgate__InboundFrame f = WSGATE__INBOUND_FRAME__INIT;
    f.node_id = "gw-1";
    f.node_epoch = 12345;
    f.type = "chat.room";
    f.payload.data = (uint8_t *)"{\"type\":\"chat.room\"}";
    f.payload.len = strlen((const char *)f.payload.data);
    uint8_t *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(wsg_pb_pack(&f.base, &buf, &len), 0);
    ck_assert_uint_gt(len, 0);
    Wsgate__InboundFrame *g = wsgate__inbound_frame__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->node_id, "gw-1");
    ck_assert_str_eq(g->type, "chat.room");
    ck_assert_uint_eq(g->node_epoch, 12345);
    ck_assert_uint_eq(g->payload.len, f.payload.len);
    wsgate__inbound_frame__free_unpacked(g, NULL);
    free(buf);

    Wsgate__InboundFrame empty = WSGATE__INBOUND_FRAME__INIT;
    ck_assert_int_eq(wsg_pb_pack(&empty.base, &buf, &len), 0);
    ck_assert_uint_eq(len, 0);
    free(buf);

    ck_assert(wsg_pb_str_ok("alice", 64));
    ck_assert(wsg_pb_str_ok("", 64));
    ck_assert(wsg_pb_str_ok("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 64));
    ck_assert(wsg_pb_str_ok("abcd", 4));
    ck_assert(!wsg_pb_str_ok("abcde", 4));
    ck_assert(!wsg_pb_str_ok(NULL, 4));
    ck_assert(!wsg_pb_str_ok("\xc0\xaf", 64));         /* overlong */
    ck_assert(!wsg_pb_str_ok("\xed\xa0\x80", 64));     /* surrogate */
    ck_assert(!wsg_pb_str_ok("\xf4\x90\x80\x80", 64)); /* above U+10FFFF */
    ck_assert(!wsg_pb_str_ok("ab\xc3", 64));           /* truncated */
    ck_assert(!wsg_pb_str_ok("\xff", 64));
}
END_TEST

/* ---- ids and time ---- */

START_TEST(test_id_time)
{
    int64_t w = wsg_now_us();
    ck_assert_int_gt(w, INT64_C(1600000000) * 1000000);
    int64_t m1 = wsg_mono_us();
    wsg_testsrv_sleep_ms(2);
    int64_t m2 = wsg_mono_us();
    ck_assert_int_ge(m2 - m1, 2000);

    uint64_t e1 = wsg_id_new_epoch();
    wsg_testsrv_sleep_ms(1);
    uint64_t e2 = wsg_id_new_epoch();
    ck_assert_uint_gt(e2, e1);
    ck_assert_uint_lt(e2, UINT64_C(1) << 63);

    unsigned char a[32], b[32];
    ck_assert_int_eq(wsg_id_random(a, sizeof(a)), 0);
    ck_assert_int_eq(wsg_id_random(b, sizeof(b)), 0);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
}
END_TEST

/* ---- signals ---- */

static atomic_int g_sigterm, g_sigint, g_sigother;

static void on_signal(int signo, void *arg)
{
    ck_assert_ptr_eq(arg, &g_sigterm);
    if (signo == SIGTERM)
        atomic_fetch_add(&g_sigterm, 1);
    else if (signo == SIGINT)
        atomic_fetch_add(&g_sigint, 1);
    else
        atomic_fetch_add(&g_sigother, 1);
}

static int wait_for(atomic_int *v, int want, int ms)
{
    for (int i = 0; i < ms && atomic_load(v) < want; i++)
        wsg_testsrv_sleep_ms(1);
    return atomic_load(v) >= want;
}

START_TEST(test_signal)
{
    ck_assert_int_eq(wsg_signal_block(), 0);
    ck_assert_int_eq(wsg_signal_start(on_signal, &g_sigterm), 0);
    ck_assert_int_eq(wsg_signal_start(on_signal, &g_sigterm), -1);
    ck_assert_int_eq(kill(getpid(), SIGHUP), 0);
    ck_assert_int_eq(kill(getpid(), SIGTERM), 0);
    ck_assert(wait_for(&g_sigterm, 1, 2000));
    ck_assert_int_eq(kill(getpid(), SIGINT), 0);
    ck_assert(wait_for(&g_sigint, 1, 2000));
    ck_assert_int_eq(atomic_load(&g_sigother), 0);
    /* SIGPIPE is ignored: writing to a closed pipe reports EPIPE instead of killing us. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    ck_assert_int_eq(write(p[1], "x", 1), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(p[1]);
    wsg_signal_stop();
    ck_assert_int_eq(atomic_load(&g_sigterm), 1);
    ck_assert_int_eq(atomic_load(&g_sigint), 1);
    wsg_signal_stop(); /* a second stop is a no-op */
    ck_assert_int_eq(wsg_signal_start(on_signal, &g_sigterm), 0);
    wsg_signal_stop();
}
END_TEST

/* ---- NATS ---- */

static atomic_int g_up, g_down;

static void cb_up(void *arg)
{
    ck_assert_ptr_eq(arg, &g_up);
    atomic_fetch_add(&g_up, 1);
}

static void cb_down(void *arg)
{
    atomic_fetch_add(&g_down, 1);
}

START_TEST(test_nats_unreachable)
{
    wsg_nats zero;
    memset(&zero, 0, sizeof(zero));
    wsg_nats_close(&zero, 100);

    atomic_store(&g_up, 0);
    atomic_store(&g_down, 0);
    wsg_log_init("test", "t", WSG_LOG_ERROR);
    int port = wsg_testsrv_free_port();
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    wsg_nats_cfg cfg = {.urls = url, .name = "t", .on_connected = cb_up,
                        .on_disconnected = cb_down, .arg = &g_up};
    wsg_nats n;
    ck_assert_int_eq(wsg_nats_open(&n, &cfg), NATS_OK);
    ck_assert_ptr_nonnull(n.conn);
    ck_assert_int_eq(atomic_load(&n.connected), 0);

    /* It keeps trying: a server that shows up later is found without help. */
    {
        pid_t pid = wsg_testsrv_start_nats(port);
        ck_assert(wait_for(&g_up, 1, 5000));
        ck_assert_int_eq(atomic_load(&n.connected), 1);
        ck_assert_int_eq(atomic_load(&n.reconnects), 0);
        wsg_nats_close(&n, 1000);
        wsg_testsrv_stop(pid, SIGKILL);
    }
    ck_assert_ptr_null(n.conn);
    wsg_nats_close(&n, 100);

    wsg_nats_cfg bad = {.urls = " , "};
    ck_assert_int_ne(wsg_nats_open(&n, &bad), NATS_OK);
    ck_assert_ptr_null(n.conn);
    nats_CloseAndWait(0);
}
END_TEST

typedef struct order_state {
    pthread_mutex_t lock;
    char seen[64];
    int count;
} order_state;

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    order_state *st = closure;
    pthread_mutex_lock(&st->lock);
    if (st->count < (int)sizeof(st->seen) - 1 && natsMsg_GetDataLength(msg) == 1)
        st->seen[st->count++] = natsMsg_GetData(msg)[0];
    pthread_mutex_unlock(&st->lock);
    natsMsg_Destroy(msg);
}

static int order_count(order_state *st)
{
    pthread_mutex_lock(&st->lock);
    int c = st->count;
    pthread_mutex_unlock(&st->lock);
    return c;
}

START_TEST(test_nats_reconnect_and_order)
{
    atomic_store(&g_up, 0);
    atomic_store(&g_down, 0);
    wsg_log_init("test", "t", WSG_LOG_ERROR);
    int port = wsg_testsrv_free_port();
    pid_t pid = wsg_testsrv_start_nats(port);
    char url[96];
    snprintf(url, sizeof(url), "nats://127.0.0.1:1, nats://127.0.0.1:%d", port);
    wsg_nats_cfg cfg = {.urls = url, .name = "t", .ordered_delivery = 1,
                        .reconnect_buf = INT64_C(1) << 40, .on_connected = cb_up,
                        .on_disconnected = cb_down, .arg = &g_up};
    wsg_nats n;
    ck_assert_int_eq(wsg_nats_open(&n, &cfg), NATS_OK);
    ck_assert_int_eq(atomic_load(&n.connected), 1);
    ck_assert_int_eq(atomic_load(&g_up), 1); /* the first connection is reported too */

    /* Two subscriptions, one delivery thread: interleaved publications arrive interleaved. */
    order_state st = {.count = 0};
    ck_assert_int_eq(pthread_mutex_init(&st.lock, NULL), 0);
    natsSubscription *sa = NULL, *sb = NULL;
    ck_assert_int_eq(natsConnection_Subscribe(&sa, n.conn, "t.a", on_msg, &st), NATS_OK);
    ck_assert_int_eq(natsConnection_Subscribe(&sb, n.conn, "t.b", on_msg, &st), NATS_OK);
    ck_assert_int_eq(natsConnection_Flush(n.conn), NATS_OK);
    const char *seq = "abababbbaaabab";
    for (const char *p = seq; *p; p++) {
        const char *subj = *p == 'a' ? "t.a" : "t.b";
        ck_assert_int_eq(natsConnection_Publish(n.conn, subj, p, 1), NATS_OK);
    }
    ck_assert_int_eq(natsConnection_Flush(n.conn), NATS_OK);
    for (int i = 0; i < 5000 && order_count(&st) < (int)strlen(seq); i++)
        wsg_testsrv_sleep_ms(1);
    pthread_mutex_lock(&st.lock);
    st.seen[st.count] = '\0';
    ck_assert_str_eq(st.seen, seq);
    pthread_mutex_unlock(&st.lock);

    /* Server gone: the flag drops and the callback runs; back: reconnect is counted. */
    wsg_testsrv_stop(pid, SIGKILL);
    ck_assert(wait_for(&g_down, 1, 5000));
    ck_assert_int_eq(atomic_load(&n.connected), 0);
    pid = wsg_testsrv_start_nats(port);
    ck_assert(wait_for(&g_up, 2, 10000));
    ck_assert_int_eq(atomic_load(&n.connected), 1);
    ck_assert_int_eq(atomic_load(&n.reconnects), 1);

    natsSubscription_Destroy(sa);
    natsSubscription_Destroy(sb);
    int downs = atomic_load(&g_down);
    wsg_nats_close(&n, 1000);
    ck_assert_int_eq(atomic_load(&g_down), downs + 1); /* close reports the disconnection */
    ck_assert_int_eq(atomic_load(&n.connected), 0);
    pthread_mutex_destroy(&st.lock);
    wsg_testsrv_stop(pid, SIGKILL);
    nats_CloseAndWait(0);
}
END_TEST

static Suite *common_suite(void)
{
    Suite *s = suite_create("common");
    TCase *t = tcase_create("core");
    tcase_add_test(t, test_node_id);
    tcase_add_test(t, test_type);
    tcase_add_test(t, test_prefix_and_fmt);
    tcase_add_test(t, test_parse_bytes);
    tcase_add_test(t, test_parse_duration);
    tcase_add_test(t, test_parse_hostport);
    tcase_add_test(t, test_config_defaults);
    tcase_add_test(t, test_config_precedence);
    tcase_add_test(t, test_config_errors);
    tcase_add_test(t, test_config_help);
    tcase_add_test(t, test_redact_urls);
    tcase_add_test(t, test_nats_opts);
    tcase_add_test(t, test_buf);
    tcase_add_test(t, test_queue_fifo);
    tcase_add_test(t, test_queue_threads);
    tcase_add_test(t, test_metrics_render);
    tcase_add_test(t, test_log_format);
    tcase_add_test(t, test_log_escapes_values);
    tcase_add_test(t, test_log_quotes_when_needed);
    tcase_add_test(t, test_log_rate_limited);
    tcase_add_test(t, test_utf8);
    tcase_add_test(t, test_parse_u64);
    tcase_add_test(t, test_pb);
    tcase_add_test(t, test_id_time);
    tcase_add_test(t, test_signal);
    suite_add_tcase(s, t);
    TCase *nt = tcase_create("nats");
    tcase_set_timeout(nt, 60);
    tcase_add_test(nt, test_nats_unreachable);
    tcase_add_test(nt, test_nats_reconnect_and_order);
    suite_add_tcase(s, nt);
    return s;
}

int main(void)
{
    return wsg_check_run(common_suite());
}
