/* Unit tests for rt_script and rt_store (Redis formats, the Lua scripts against a private
 * redis-server, the store thread's fallback and rewrite protocol) and for rt_config's Redis URL
 * parser, and the history scripts (rt_history) against the same redis-server. The redis-server
 * cases need WSGATE_TEST_REDIS_SERVER (set by router.cmake). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rt_config.h"
#include "rt_frame.h"
#include "rt_history.h"
#include "wsg_channel.h"
#include "rt_presence.h"
#include "rt_registry.h"
#include "rt_script.h"
#include "rt_store.h"
#include "wsg_check.h"
#include "wsg_testsrv.h"

/* ---- hand-built replies ---- */

static redisReply *rstr(const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *rnum(long long v)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static redisReply *rarr(size_t n, ...)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

START_TEST(redis_url_parse)
{
    rt_redis_addr a;
    ck_assert_int_eq(rt_redis_url_parse("redis://127.0.0.1:6379", &a), 0);
    ck_assert_str_eq(a.host, "127.0.0.1");
    ck_assert_int_eq(a.port, 6379);
    ck_assert_int_eq(a.db, 0);
    ck_assert_str_eq(a.password, "");
    ck_assert_int_eq(rt_redis_url_parse("redis://:s3cr@t@db.local:7000/3", &a), 0);
    ck_assert_str_eq(a.password, "s3cr@t");
    ck_assert_str_eq(a.user, "");
    ck_assert_str_eq(a.host, "db.local");
    ck_assert_int_eq(a.port, 7000);
    ck_assert_int_eq(a.db, 3);
    ck_assert_int_eq(rt_redis_url_parse("redis://app:pw@h", &a), 0);
    ck_assert_str_eq(a.user, "app");
    ck_assert_str_eq(a.password, "pw");
    ck_assert_int_eq(a.port, 6379);
    ck_assert_int_eq(rt_redis_url_parse("redis://h/", &a), 0);
    const char *bad[] = {"http://h:1", "redis://", "redis://:1", "redis://h:0", "redis://h:70000",
                         "redis://h:x", "redis://pw@h", "redis://h/x", "redis://h:1/-1", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(rt_redis_url_parse(bad[i], &a) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(sentinel_list_parse)
{
    rt_hostport hp[3];
    size_t n;
    ck_assert_int_eq(rt_hostports_parse("10.0.0.1:26379,s-2.local:26380", hp, 3, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(hp[0].host, "10.0.0.1");
    ck_assert_int_eq(hp[0].port, 26379);
    ck_assert_str_eq(hp[1].host, "s-2.local");
    ck_assert_int_eq(hp[1].port, 26380);
    ck_assert_int_eq(rt_hostports_parse("a:1", hp, 3, &n), 0);
    ck_assert_uint_eq(n, 1);
    /* the port is required; no empty entries; at most max */
    const char *bad[] = {"", "a", "a:", ":1", "a:1,", ",a:1", "a:1,,b:2", "a:0", "a:70000",
                         "a:1x", "a:1,b:2,c:3,d:4", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(rt_hostports_parse(bad[i], hp, 3, &n) == -1, "%s", bad[i]);
    ck_assert_int_eq(rt_hostports_parse(NULL, hp, 3, &n), -1);
}
END_TEST

START_TEST(parse_change_replies)
{
    rt_presence_list l;
    rt_presence_list_init(&l);
    rt_chan_list cl;
    rt_chan_list_init(&cl);
    rt_script_status st;
    int gap;
    redisReply *r = rarr(4, rnum(0), rnum(1),
                         rarr(6, rnum(1), rstr("alice"), rstr("12"), rnum(0), rstr("bob"),
                              rstr("18446744073709551615")),
                         rarr(6, rnum(1), rstr("chat:a"), rstr("alice"), rnum(0), rstr("news"),
                              rstr("bob")));
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &l, &cl), 0);
    ck_assert_int_eq(st, RT_SCRIPT_APPLIED);
    ck_assert_int_eq(gap, 1);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_str_eq(l.v[0].user_id, "alice");
    ck_assert_int_eq(l.v[0].online, 1);
    ck_assert_str_eq(l.v[0].node_id, "gw1");
    ck_assert_uint_eq(l.v[0].conn_id, 12);
    ck_assert_int_eq(l.v[1].online, 0);
    ck_assert_uint_eq(l.v[1].conn_id, UINT64_MAX);
    ck_assert_uint_eq(cl.n, 2);
    ck_assert_str_eq(cl.v[0].channel, "chat:a");
    ck_assert_str_eq(cl.v[0].user_id, "alice");
    ck_assert_int_eq(cl.v[0].join, 1);
    ck_assert_str_eq(cl.v[1].channel, "news");
    ck_assert_int_eq(cl.v[1].join, 0);
    /* the channel list is optional */
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &l, NULL), 0);
    freeReplyObject(r);
    rt_presence_list_clear(&l);
    rt_chan_list_clear(&cl);

    r = rarr(2, rnum(2), rnum(0));
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &l, &cl), 0);
    ck_assert_int_eq(st, RT_SCRIPT_STALE);
    ck_assert_uint_eq(l.n + cl.n, 0);
    freeReplyObject(r);

    /* malformed: wrong shapes, types, values */
    redisReply *bad[] = {
        rstr("OK"),
        rarr(1, rnum(0)),
        rarr(3, rnum(0), rnum(0), rarr(0)),
        rarr(2, rnum(3), rnum(0)),
        rarr(2, rstr("0"), rnum(0)),
        rarr(4, rnum(0), rnum(0), rarr(3, rnum(2), rstr("a"), rstr("1")), rarr(0)),
        rarr(4, rnum(0), rnum(0), rarr(3, rnum(1), rstr(""), rstr("1")), rarr(0)),
        rarr(4, rnum(0), rnum(0), rarr(3, rnum(1), rstr("a"), rstr("x1")), rarr(0)),
        rarr(4, rnum(0), rnum(0), rarr(3, rnum(1), rnum(5), rstr("1")), rarr(0)),
        rarr(4, rnum(0), rnum(0), rarr(2, rnum(1), rstr("a")), rarr(0)),
        rarr(4, rnum(0), rnum(0), rarr(0), rstr("x")),
        rarr(4, rnum(0), rnum(0), rarr(0), rarr(3, rnum(2), rstr("c"), rstr("a"))),
        rarr(4, rnum(0), rnum(0), rarr(0), rarr(3, rnum(1), rstr("bad channel"), rstr("a"))),
        rarr(4, rnum(0), rnum(0), rarr(0), rarr(3, rnum(1), rstr("c"), rstr(""))),
        rarr(4, rnum(0), rnum(0), rarr(0), rarr(2, rnum(1), rstr("c"))),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(rt_script_parse_change(bad[i], "gw1", &st, &gap, &l, &cl) == -1,
                      "case %zu", i);
        freeReplyObject(bad[i]);
    }
    ck_assert_int_eq(rt_script_parse_change(NULL, "gw1", &st, &gap, &l, &cl), -1);
    rt_presence_list_free(&l);
    rt_chan_list_free(&cl);
}
END_TEST

static void count_user(const char *user_id, void *arg)
{
    (void)user_id;
    (void)arg;
}

typedef struct snap_at {
    int64_t gw1; /* the connected_at of the user's connection on gw1 */
} snap_at;

static void snap_at_fn(const rt_conn_info *ci, void *arg)
{
    snap_at *s = arg;
    if (!strcmp(ci->node_id, "gw1"))
        s->gw1 = ci->connected_at_us;
}

START_TEST(load_snapshot_reply)
{
    rt_registry *reg = rt_registry_new();
    size_t bad;
    redisReply *r = rarr(
        6,
        rarr(8, rstr("gw1"), rstr("5"), rstr("gw2"), rstr("notanumber"), rstr("bad.id"), rstr("1"),
             rstr("gw3"), rstr("9")),
        rarr(6, rstr("gw1:5:0"), rstr("7"), rstr("gw1:4:0"), rstr("3"), rstr("garbage"), rstr("1")),
        rarr(6, rstr("1"), rstr("alice"), rstr("2"), rstr("bob"), rstr("x"), rstr("carol")),
        rarr(0), rarr(0), rarr(0));
    /* 4 nodes need 12 arrays: each node's connections, subscriptions and connection times */
    ck_assert_int_eq(rt_script_load_snapshot(r, reg, 0, &bad), -1);
    freeReplyObject(r);

    r = rarr(14,
             rarr(8, rstr("gw1"), rstr("5"), rstr("gw2"), rstr("notanumber"), rstr("bad.id"),
                  rstr("1"), rstr("gw3"), rstr("9")),
             rarr(6, rstr("gw1:5:0"), rstr("7"), rstr("gw1:4:0"), rstr("3"), rstr("garbage"),
                  rstr("1")),
             rarr(6, rstr("1"), rstr("alice"), rstr("2"), rstr("bob"), rstr("x"), rstr("carol")),
             rarr(6, rstr("1"), rstr("chat:a news"), rstr("2"), rstr("chat:a"), rstr("9"),
                  rstr("lost")),
             rarr(4, rstr("1"), rstr("1700000000000001"), rstr("9"), rstr("5")),
             rarr(0), rarr(0), rarr(0), rarr(0), rarr(0), rarr(0),
             rarr(2, rstr("4"), rstr("alice")), rarr(2, rstr("4"), rstr("x y!")), rarr(0));
    ck_assert_int_eq(rt_script_load_snapshot(r, reg, 0, &bad), 0);
    /* gw2 (epoch), bad.id, conn "x", applied "garbage", the subscription of unknown conn 9,
     * channel "y!", the connection time of unknown conn 9 */
    ck_assert_uint_eq(bad, 7);
    /* the connection time came back with the connection; bob's was not recorded */
    snap_at got = {0};
    ck_assert_uint_eq(rt_registry_user_visit(reg, "alice", snap_at_fn, &got), 2);
    ck_assert_int_eq(got.gw1, 1700000000000001);
    got = (snap_at){0};
    rt_registry_user_visit(reg, "bob", snap_at_fn, &got);
    ck_assert_int_eq(got.gw1, 0);
    ck_assert_uint_eq(rt_registry_node_count(reg), 2);
    ck_assert_uint_eq(rt_registry_conn_count(reg), 3);
    ck_assert_uint_eq(rt_registry_user_count(reg), 2);
    /* chat:a (alice, bob), news (alice), x (alice on gw3) */
    ck_assert_uint_eq(rt_registry_channel_count(reg), 3);
    ck_assert_uint_eq(rt_registry_subscription_count(reg), 4);
    size_t conns = 0;
    ck_assert_uint_eq(rt_registry_channel_users(reg, "chat:a", count_user, NULL, &conns), 2);
    ck_assert_uint_eq(conns, 2);
    /* a load reports no join */
    ck_assert_uint_eq(rt_registry_chan_changes(reg)->n, 0);
    /* applied gw1:5:0 = 7 was loaded: seq 7 is a duplicate */
    Wsgate__Conn c = WSGATE__CONN__INIT;
    Wsgate__Conn *pc = &c;
    c.conn_id = 1;
    c.user_id = "alice";
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = WSGATE__CONN_EVENT__KIND__CLOSE;
    ev.node_id = "gw1";
    ev.node_epoch = 5;
    ev.seq = 7;
    ev.n_conns = 1;
    ev.conns = &pc;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_conn_event(reg, &ev, 0, &res, NULL), 0);
    ck_assert_int_eq(res.status, RT_EV_DUPLICATE);
    freeReplyObject(r);
    rt_registry_free(reg);
}
END_TEST

START_TEST(args_and_rewrite_commands)
{
    Wsgate__Conn c[2] = {WSGATE__CONN__INIT, WSGATE__CONN__INIT};
    Wsgate__Conn *pc[2] = {&c[0], &c[1]};
    c[0].conn_id = (UINT64_C(3) << 56) | 5;
    c[0].user_id = "alice";
    c[0].connected_at_us = 1700000000000000;
    char *chans[2] = {"chat:a", "news"};
    c[0].n_channels = 2;
    c[0].channels = chans;
    c[1].conn_id = (UINT64_C(3) << 56) | 6;
    c[1].user_id = "bob";
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = WSGATE__CONN_EVENT__KIND__RESYNC;
    ev.node_id = "gw1";
    ev.node_epoch = UINT64_MAX;
    ev.stream = 3;
    ev.seq = 9;
    ev.n_conns = 2;
    ev.conns = pc;
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_script_conn_args(&a, "wsgate", 60000, &ev), 0);
    /* prefix, node, epoch, seen TTL, stream, first seq, last seq, kind, stream's lowest and
     * highest conn id, (conn, user, channels, connected_at) quadruples */
    const char *want[] = {"wsgate", "gw1", "18446744073709551615", "60000", "3", "9", "9", "2",
                          "216172782113783808", "288230376151711743",
                          "216172782113783813", "alice", "chat:a news", "1700000000000000",
                          "216172782113783814", "bob", "", "0"};
    ck_assert_uint_eq(a.argc, 18);
    for (size_t i = 0; i < a.argc; i++)
        ck_assert_str_eq(a.argv[i], want[i]);
    rt_cmd_free(&a);
    /* subscribe (3) and unsubscribe (4) name their one channel */
    Wsgate__ConnEvent sub = ev;
    sub.kind = WSGATE__CONN_EVENT__KIND__SUBSCRIBE;
    sub.n_conns = 1;
    sub.channel = "room";
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(rt_script_conn_args(&a, "wsgate", 60000, &sub), 0);
        ck_assert_uint_eq(a.argc, 14);
        ck_assert_str_eq(a.argv[7], k ? "4" : "3");
        ck_assert_str_eq(a.argv[11], "alice");
        ck_assert_str_eq(a.argv[12], "room");
        rt_cmd_free(&a);
        sub.kind = WSGATE__CONN_EVENT__KIND__UNSUBSCRIBE;
    }
    /* a multi-part set covers its parts' seqs */
    uint64_t set_ids[1] = {(UINT64_C(255) << 56) | 1};
    char *set_users[1] = {"carol"};
    rt_conn_set set = {.stream = 255, .first_seq = 4, .last_seq = 7, .n = 1, .cap = 1,
                       .ids = set_ids, .users = set_users};
    ck_assert_int_eq(rt_script_resync_args(&a, "wsgate", 60000, "gw1", 2, &set), 0);
    const char *want_set[] = {"wsgate", "gw1", "2", "60000", "255", "4", "7", "2",
                              "18374686479671623680", "18446744073709551615",
                              "18374686479671623681", "carol", "", "0"};
    ck_assert_uint_eq(a.argc, 14);
    for (size_t i = 0; i < a.argc; i++)
        ck_assert_str_eq(a.argv[i], want_set[i]);
    rt_cmd_free(&a);
    /* no conn id can be in a stream above 255 */
    set.stream = 256;
    ck_assert_int_eq(rt_script_resync_args(&a, "wsgate", 60000, "gw1", 2, &set), -1);
    rt_cmd_free(&a);

    rt_registry *reg = rt_registry_new();
    ck_assert_int_eq(rt_registry_conn_event(reg, &ev, 0, &(rt_ev_result){0}, NULL), 0);
    rt_store_op *op = rt_store_op_new(RT_OP_REWRITE);
    ck_assert_int_eq(rt_script_rewrite_cmds(op, "p", reg), 0);
    /* node HSET, 2 x (HSET conn + SADD user), applied HSET, alice's channels: one HSET of
     * p:subs:gw1 and one HINCRBY per channel, alice's connection time (bob's is not known) */
    ck_assert_uint_eq(op->ncmds, 10);
    ck_assert_str_eq(op->cmds[0].argv[1], "p:nodes");
    int saw_sadd = 0, saw_applied = 0, saw_subs = 0, saw_incr = 0, saw_at = 0;
    for (size_t i = 0; i < op->ncmds; i++) {
        if (!strcmp(op->cmds[i].argv[1], "p:conn_at:gw1"))
            saw_at = !strcmp(op->cmds[i].argv[2], "216172782113783813") &&
                     !strcmp(op->cmds[i].argv[3], "1700000000000000");
        if (!strcmp(op->cmds[i].argv[1], "p:subs:gw1"))
            saw_subs = !strcmp(op->cmds[i].argv[2], "216172782113783813") &&
                       (!strcmp(op->cmds[i].argv[3], "chat:a news") ||
                        !strcmp(op->cmds[i].argv[3], "news chat:a"));
        if (!strcmp(op->cmds[i].argv[0], "HINCRBY"))
            saw_incr += (!strcmp(op->cmds[i].argv[1], "p:chan:chat:a") ||
                         !strcmp(op->cmds[i].argv[1], "p:chan:news")) &&
                        !strcmp(op->cmds[i].argv[2], "alice") && !strcmp(op->cmds[i].argv[3], "1");
        if (!strcmp(op->cmds[i].argv[0], "SADD") && !strcmp(op->cmds[i].argv[1], "p:user:bob"))
            saw_sadd = !strcmp(op->cmds[i].argv[2], "gw1:216172782113783814");
        if (!strcmp(op->cmds[i].argv[1], "p:applied"))
            saw_applied = !strcmp(op->cmds[i].argv[2], "gw1:18446744073709551615:3") &&
                          !strcmp(op->cmds[i].argv[3], "9");
    }
    ck_assert(saw_sadd && saw_applied && saw_subs && saw_at);
    ck_assert_int_eq(saw_incr, 2);
    rt_store_op_free(op);
    rt_registry_free(reg);
}
END_TEST

/* ---- against a real redis-server ---- */

static pid_t redis_pid;
static int redis_port;

static redisContext *redis_wait(void)
{
    for (int i = 0; i < 100; i++) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
        if (c && !c->err)
            return c;
        if (c)
            redisFree(c);
        wsg_testsrv_sleep_ms(50);
    }
    return NULL;
}

static void redis_start(void)
{
    const char *bin = getenv("WSGATE_TEST_REDIS_SERVER");
    ck_assert_msg(bin != NULL, "WSGATE_TEST_REDIS_SERVER not set");
    if (!redis_port)
        redis_port = wsg_testsrv_free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    ck_assert_int_ge(redis_pid, 0);
    if (redis_pid == 0) {
        int devnull = open("/dev/null", 0);
        dup2(devnull, 1);
        execl(bin, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              (char *)NULL);
        _exit(127);
    }
    redisContext *c = redis_wait();
    ck_assert_ptr_nonnull(c);
    redisFree(c);
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
}

/* EVALs script text with args; the caller frees the reply. */
static redisReply *eval_text(redisContext *c, const char *script, const rt_cmd *args)
{
    size_t n = 3 + args->argc;
    const char **argv = calloc(n, sizeof(*argv));
    size_t *lens = calloc(n, sizeof(*lens));
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "0";
    for (size_t i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    for (size_t i = 0; i < args->argc; i++) {
        argv[3 + i] = args->argv[i];
        lens[3 + i] = args->argvlen[i];
    }
    redisReply *r = redisCommandArgv(c, (int)n, argv, lens);
    free(argv);
    free(lens);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "");
    return r;
}

static redisReply *eval(redisContext *c, rt_script_id id, const rt_cmd *args)
{
    return eval_text(c, rt_scripts[id], args);
}

static rt_script_status conn_call(redisContext *c, int kind, const char *node, uint64_t epoch,
                                  uint64_t seq, uint64_t conn, const char *user,
                                  rt_presence_list *out)
{
    Wsgate__Conn cn = WSGATE__CONN__INIT;
    Wsgate__Conn *pc = &cn;
    cn.conn_id = conn;
    cn.user_id = (char *)user;
    cn.connected_at_us = 1000000 + (int64_t)conn; /* kept in P:conn_at:<node> */
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = kind;
    ev.node_id = (char *)node;
    ev.node_epoch = epoch;
    ev.seq = seq;
    ev.n_conns = 1;
    ev.conns = &pc;
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_script_conn_args(&a, "t", 60000, &ev), 0);
    redisReply *r = eval(c, RT_SCRIPT_CONN, &a);
    rt_script_status st;
    int gap;
    ck_assert_int_eq(rt_script_parse_change(r, node, &st, &gap, out, NULL), 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    return st;
}

static char *get(redisContext *c, const char *fmt, const char *a, const char *b)
{
    static char buf[256];
    redisReply *r = redisCommand(c, fmt, a, b);
    ck_assert_ptr_nonnull(r);
    snprintf(buf, sizeof(buf), "%s", r->type == REDIS_REPLY_STRING ? r->str : "(nil)");
    freeReplyObject(r);
    return buf;
}

static void carol_at_fn(const rt_conn_info *ci, void *arg)
{
    *(int64_t *)arg = ci->connected_at_us;
}

START_TEST(lua_scripts_exactly_once)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_presence_list l;
    rt_presence_list_init(&l);
    /* 18446744073709551615 > 9999999999999999999: compared as decimal strings, not doubles */
    ck_assert_int_eq(conn_call(c, 0, "gw1", 9999999999999999999ULL, 1, 1, "alice", &l),
                     RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_int_eq(l.v[0].online, 1);
    rt_presence_list_clear(&l);
    /* a second replica applying the same event learns nothing */
    ck_assert_int_eq(conn_call(c, 0, "gw1", 9999999999999999999ULL, 1, 1, "alice", &l),
                     RT_SCRIPT_SKIPPED);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_int_eq(conn_call(c, 0, "gw2", 5, 1, 7, "alice", &l), RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(l.n, 0);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:node:gw1", "1"), "alice");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:applied", "gw1:9999999999999999999:0"), "1");

    /* newer life of gw1 (more digits): fenced, purged, alice still on gw2 */
    ck_assert_int_eq(conn_call(c, 0, "gw1", UINT64_MAX, 1, 3, "bob", &l), RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0].user_id, "bob");
    rt_presence_list_clear(&l);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:node:gw1", "1"), "(nil)");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:applied", "gw1:9999999999999999999:0"), "(nil)");
    ck_assert_int_eq(conn_call(c, 0, "gw1", 9999999999999999999ULL, 2, 4, "zed", &l),
                     RT_SCRIPT_STALE);

    /* heartbeat-driven new life and purge of a dead node */
    rt_cmd a;
    rt_cmd_init(&a);
    rt_script_node_args(&a, "t", 60000, "gw2", 6);
    redisReply *r = eval(c, RT_SCRIPT_NODE, &a);
    rt_script_status st;
    int gap;
    ck_assert_int_eq(rt_script_parse_change(r, "gw2", &st, &gap, &l, NULL), 0);
    ck_assert_int_eq(st, RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0].user_id, "alice");
    ck_assert_int_eq(l.v[0].online, 0);
    ck_assert_uint_eq(l.v[0].conn_id, 7);
    rt_presence_list_clear(&l);
    freeReplyObject(r);
    rt_cmd_free(&a);

    rt_script_purge_args(&a, "t", 60000, "gw1", 5); /* wrong life: not ours */
    r = eval(c, RT_SCRIPT_PURGE, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &l, NULL), 0);
    ck_assert_int_eq(st, RT_SCRIPT_SKIPPED);
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_script_purge_args(&a, "t", 60000, "gw1", UINT64_MAX);
    r = eval(c, RT_SCRIPT_PURGE, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &l, NULL), 0);
    ck_assert_int_eq(st, RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0].user_id, "bob");
    ck_assert_int_eq(l.v[0].online, 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_presence_list_clear(&l);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:nodes", "gw1"), "(nil)");

    /* a stopping node's purge may name a newer life than Redis holds: the older one goes */
    ck_assert_int_eq(conn_call(c, 0, "gw4", 3, 1, 1, "dave", &l), RT_SCRIPT_APPLIED);
    rt_presence_list_clear(&l);
    rt_script_purge_args(&a, "t", 60000, "gw4", 2); /* older than Redis' life: left alone */
    r = eval(c, RT_SCRIPT_PURGE, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw4", &st, &gap, &l, NULL), 0);
    ck_assert_int_eq(st, RT_SCRIPT_SKIPPED);
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_script_purge_args(&a, "t", 60000, "gw4", 4);
    r = eval(c, RT_SCRIPT_PURGE, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw4", &st, &gap, &l, NULL), 0);
    ck_assert_int_eq(st, RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_str_eq(l.v[0].user_id, "dave");
    ck_assert_int_eq(l.v[0].online, 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_presence_list_clear(&l);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:nodes", "gw4"), "(nil)");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:conn_at:gw4", "1"), "(nil)");
    /* a close forgets the connection time */
    ck_assert_int_eq(conn_call(c, 0, "gw5", 1, 1, 2, "erin", &l), RT_SCRIPT_APPLIED);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:conn_at:gw5", "2"), "1000002");
    ck_assert_int_eq(conn_call(c, 1, "gw5", 1, 2, 2, "erin", &l), RT_SCRIPT_APPLIED);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:conn_at:gw5", "2"), "(nil)");
    rt_script_purge_args(&a, "t", 60000, "gw5", 1);
    freeReplyObject(eval(c, RT_SCRIPT_PURGE, &a));
    rt_cmd_free(&a);
    rt_presence_list_clear(&l);

    /* snapshot round trip */
    ck_assert_int_eq(conn_call(c, 0, "gw3", 1, 1, 1, "carol", &l), RT_SCRIPT_APPLIED);
    rt_script_snapshot_args(&a, "t");
    r = eval(c, RT_SCRIPT_SNAPSHOT, &a);
    rt_registry *reg = rt_registry_new();
    size_t bad;
    ck_assert_int_eq(rt_script_load_snapshot(r, reg, 0, &bad), 0);
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_eq(rt_registry_node_count(reg), 2); /* gw2 (empty) and gw3 */
    ck_assert_uint_eq(rt_registry_conn_count(reg), 1);
    /* with its connection time: presence and the connection limit survive a restart */
    int64_t carol_at = 0;
    ck_assert_uint_eq(rt_registry_user_visit(reg, "carol", carol_at_fn, &carol_at), 1);
    ck_assert_int_eq(carol_at, 1000001);
    rt_registry_free(reg);
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_presence_list_free(&l);
    redisFree(c);
    redis_stop();
}
END_TEST


#define CID(s, counter) (((uint64_t)(s) << 56) | (uint64_t)(counter))

/* OPEN of conn id on its own stream of node gw (epoch 1) in prefix "r". */
static void open_conn(redisContext *c, uint64_t *seqs, uint64_t id, const char *user)
{
    Wsgate__Conn cn = WSGATE__CONN__INIT;
    Wsgate__Conn *pc = &cn;
    cn.conn_id = id;
    cn.user_id = (char *)user;
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = WSGATE__CONN_EVENT__KIND__OPEN;
    ev.node_id = "gw";
    ev.node_epoch = 1;
    ev.stream = rt_conn_stream(id);
    ev.seq = ++seqs[ev.stream];
    ev.n_conns = 1;
    ev.conns = &pc;
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_script_conn_args(&a, "r", 60000, &ev), 0);
    redisReply *r = eval(c, RT_SCRIPT_CONN, &a);
    ck_assert_int_eq(r->element[0]->integer, RT_SCRIPT_APPLIED);
    freeReplyObject(r);
    rt_cmd_free(&a);
}

static rt_script_status resync_call(redisContext *c, const rt_conn_set *set, int *gap,
                                    rt_presence_list *out)
{
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_script_resync_args(&a, "r", 60000, "gw", 1, set), 0);
    redisReply *r = eval(c, RT_SCRIPT_CONN, &a);
    rt_script_status st;
    ck_assert_int_eq(rt_script_parse_change(r, "gw", &st, gap, out, NULL), 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    return st;
}

static int in_node(redisContext *c, uint64_t id)
{
    char cid[24];
    snprintf(cid, sizeof(cid), "%llu", (unsigned long long)id);
    return strcmp(get(c, "HGET %s %s", "r:node:gw", cid), "(nil)") != 0;
}

static int transition(const rt_presence_list *l, const char *user, int online, uint64_t conn)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].user_id, user))
            return l->v[i].online == online && l->v[i].conn_id == conn;
    return 0;
}

START_TEST(lua_resync_per_stream)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_presence_list l;
    rt_presence_list_init(&l);
    uint64_t seqs[256] = {0};
    const uint32_t streams[3] = {0, 1, 255};
    const uint64_t counters[4] = {1, UINT64_C(1) << 40, 0, (UINT64_C(1) << 56) - 1};
    char users[3][4][16];
    /* every stream holds its edges: counters 1 and 2^40, and the range's ends */
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) {
            snprintf(users[i][k], sizeof(users[i][k]), "u%u_%d", streams[i], k);
            open_conn(c, seqs, CID(streams[i], counters[k]), users[i][k]);
        }
    /* "both" has a connection on streams 1 and 255 */
    open_conn(c, seqs, CID(1, 7), "both");
    open_conn(c, seqs, CID(255, 7), "both");

    for (int i = 0; i < 3; i++) {
        uint32_t st = streams[i];
        /* the stream keeps counter 2^40 and gains counter 9 */
        uint64_t ids[2] = {CID(st, counters[1]), CID(st, 9)};
        char nu[16];
        snprintf(nu, sizeof(nu), "new%u", st);
        char *us[2] = {users[i][1], nu};
        /* parts seq+1 .. seq+3 of a multi-part set, applied in one call */
        rt_conn_set set = {.stream = st, .first_seq = seqs[st] + 1, .last_seq = seqs[st] + 3,
                           .n = 2, .cap = 2, .ids = ids, .users = us};
        int gap = -1;
        rt_presence_list_clear(&l);
        ck_assert_int_eq(resync_call(c, &set, &gap, &l), RT_SCRIPT_APPLIED);
        ck_assert_int_eq(gap, 0);
        /* a second replica with the same set learns nothing */
        rt_presence_list tmp;
        rt_presence_list_init(&tmp);
        ck_assert_int_eq(resync_call(c, &set, &gap, &tmp), RT_SCRIPT_SKIPPED);
        ck_assert_uint_eq(tmp.n, 0);
        rt_presence_list_free(&tmp);
        seqs[st] += 3;
        char field[32];
        snprintf(field, sizeof(field), "gw:1:%u", st);
        char want[24];
        snprintf(want, sizeof(want), "%llu", (unsigned long long)seqs[st]);
        ck_assert_str_eq(get(c, "HGET %s %s", "r:applied", field), want);

        /* offline: counters 1, 0, 2^56-1 of this stream; online: the newcomer; "both" keeps
         * its other stream until its last one is replaced */
        size_t want_n = 4 + (st == 255 ? 1 : 0);
        ck_assert_uint_eq(l.n, want_n);
        ck_assert(transition(&l, users[i][0], 0, CID(st, counters[0])));
        ck_assert(transition(&l, users[i][2], 0, CID(st, counters[2])));
        ck_assert(transition(&l, users[i][3], 0, CID(st, counters[3])));
        ck_assert(transition(&l, nu, 1, CID(st, 9)));
        if (st == 255)
            ck_assert(transition(&l, "both", 0, CID(255, 7)));
        ck_assert(in_node(c, CID(st, counters[1])) && in_node(c, CID(st, 9)));
        for (int k = 0; k < 4; k++)
            if (k != 1)
                ck_assert(!in_node(c, CID(st, counters[k])));
        /* the streams not yet replaced are untouched */
        for (int j = i + 1; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ck_assert(in_node(c, CID(streams[j], counters[k])));
    }
    redisReply *r = redisCommand(c, "SCARD r:user:both");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);

    /* a set after missed events reports the gap; net presence within one set */
    uint64_t ids[2] = {CID(1, 20), CID(1, 21)};
    char *us[2] = {"mover", "mover"};
    rt_conn_set set = {.stream = 1, .first_seq = seqs[1] + 5, .last_seq = seqs[1] + 5, .n = 2,
                       .cap = 2, .ids = ids, .users = us};
    int gap = 0;
    rt_presence_list_clear(&l);
    ck_assert_int_eq(resync_call(c, &set, &gap, &l), RT_SCRIPT_APPLIED);
    ck_assert_int_eq(gap, 1);
    /* the rest of stream 1 (u1_1, new1) goes; mover comes */
    ck_assert_uint_eq(l.n, 3);
    ck_assert(transition(&l, "mover", 1, CID(1, 21)) || transition(&l, "mover", 1, CID(1, 20)));
    rt_presence_list_clear(&l);
    ids[0] = CID(1, 22); /* mover swaps conn 20 for 22 and keeps 21: no transition */
    set.first_seq = set.last_seq = seqs[1] + 6;
    ck_assert_int_eq(resync_call(c, &set, &gap, &l), RT_SCRIPT_APPLIED);
    ck_assert_int_eq(gap, 0);
    ck_assert_uint_eq(l.n, 0);
    ck_assert(!in_node(c, CID(1, 20)) && in_node(c, CID(1, 22)));
    rt_presence_list_free(&l);
    redisFree(c);
    redis_stop();
}
END_TEST

/* One event of node on stream 0 in prefix "t"; status, gap and transitions. */
static rt_script_status ev_call(redisContext *c, int kind, const char *node, uint64_t epoch,
                                uint64_t seq, uint64_t conn, const char *user,
                                const char *channel, int *gap, rt_chan_list *cl)
{
    Wsgate__Conn cn = WSGATE__CONN__INIT;
    Wsgate__Conn *pc = &cn;
    cn.conn_id = conn;
    cn.user_id = (char *)user;
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = kind;
    ev.node_id = (char *)node;
    ev.node_epoch = epoch;
    ev.seq = seq;
    ev.n_conns = 1;
    ev.conns = &pc;
    ev.channel = (char *)(channel ? channel : "");
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_script_conn_args(&a, "t", 60000, &ev), 0);
    redisReply *r = eval(c, RT_SCRIPT_CONN, &a);
    rt_script_status st;
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    rt_chan_list_clear(cl);
    int g;
    ck_assert_int_eq(rt_script_parse_change(r, node, &st, gap ? gap : &g, &pl, cl), 0);
    rt_presence_list_free(&pl);
    freeReplyObject(r);
    rt_cmd_free(&a);
    return st;
}

static int chan_tr(const rt_chan_list *l, const char *channel, const char *user, int join)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].channel, channel) && !strcmp(l->v[i].user_id, user))
            return l->v[i].join == join;
    return 0;
}

static long long rint_key(redisContext *c, const char *cmd, const char *key)
{
    redisReply *r = redisCommand(c, cmd, key);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

#define SUB WSGATE__CONN_EVENT__KIND__SUBSCRIBE
#define UNSUB WSGATE__CONN_EVENT__KIND__UNSUBSCRIBE

START_TEST(lua_channel_subscriptions)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_chan_list cl;
    rt_chan_list_init(&cl);
    int gap;
    /* alice on two devices (conns 1, 2), bob on conn 3 */
    ck_assert_int_eq(ev_call(c, 0, "gw1", 1, 1, 1, "alice", NULL, NULL, &cl), RT_SCRIPT_APPLIED);
    ck_assert_int_eq(ev_call(c, 0, "gw1", 1, 2, 2, "alice", NULL, NULL, &cl), RT_SCRIPT_APPLIED);
    ck_assert_int_eq(ev_call(c, 0, "gw1", 1, 3, 3, "bob", NULL, NULL, &cl), RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(cl.n, 0);

    /* the first connection of alice subscribing: one join */
    ck_assert_int_eq(ev_call(c, SUB, "gw1", 1, 4, 1, "alice", "chat:a", &gap, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert_int_eq(gap, 0);
    ck_assert_uint_eq(cl.n, 1);
    ck_assert(chan_tr(&cl, "chat:a", "alice", 1));
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "1"), "chat:a");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:chan:chat:a", "alice"), "1");
    /* a second replica applying the same event learns nothing */
    ck_assert_int_eq(ev_call(c, SUB, "gw1", 1, 4, 1, "alice", "chat:a", NULL, &cl),
                     RT_SCRIPT_SKIPPED);
    ck_assert_uint_eq(cl.n, 0);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:chan:chat:a", "alice"), "1");
    /* the second device: no second join; a repeated subscribe changes nothing */
    ck_assert_int_eq(ev_call(c, SUB, "gw1", 1, 5, 2, "alice", "chat:a", NULL, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(cl.n, 0);
    ck_assert_int_eq(ev_call(c, SUB, "gw1", 1, 6, 2, "alice", "chat:a", NULL, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(cl.n, 0);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:chan:chat:a", "alice"), "2");
    ck_assert_int_eq(ev_call(c, SUB, "gw1", 1, 7, 3, "bob", "chat:a", NULL, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert(chan_tr(&cl, "chat:a", "bob", 1));
    /* one device unsubscribes: alice is still in; closing the other one: leave */
    ck_assert_int_eq(ev_call(c, UNSUB, "gw1", 1, 8, 1, "alice", "chat:a", NULL, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(cl.n, 0);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "1"), "(nil)");
    ck_assert_int_eq(ev_call(c, 1, "gw1", 1, 9, 2, "alice", NULL, NULL, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(cl.n, 1);
    ck_assert(chan_tr(&cl, "chat:a", "alice", 0));
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "2"), "(nil)");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:chan:chat:a", "alice"), "(nil)");
    /* a connection not recorded subscribes to nothing (the seq is consumed) */
    ck_assert_int_eq(ev_call(c, SUB, "gw1", 1, 10, 99, "zed", "chat:a", NULL, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(cl.n, 0);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "99"), "(nil)");
    /* subscribe events count in the stream's seqs: skipping 11 is a gap */
    ck_assert_int_eq(ev_call(c, UNSUB, "gw1", 1, 12, 3, "bob", "other", &gap, &cl),
                     RT_SCRIPT_APPLIED);
    ck_assert_int_eq(gap, 1);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:applied", "gw1:1:0"), "12");

    /* RESYNC: alice (conn 1) on news and chat:a, bob (conn 3) on nothing */
    uint64_t ids[2] = {1, 3};
    char *us[2] = {"alice", "bob"};
    char *chs[2] = {"news chat:a", NULL};
    rt_conn_set set = {.stream = 0, .first_seq = 13, .last_seq = 13, .n = 2, .cap = 2,
                       .ids = ids, .users = us, .chans = chs};
    rt_cmd a;
    rt_cmd_init(&a);
    rt_script_status st;
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    ck_assert_int_eq(rt_script_resync_args(&a, "t", 60000, "gw1", 1, &set), 0);
    redisReply *r = eval(c, RT_SCRIPT_CONN, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &pl, &cl), 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    ck_assert_uint_eq(cl.n, 3);
    ck_assert(chan_tr(&cl, "news", "alice", 1));
    ck_assert(chan_tr(&cl, "chat:a", "alice", 1));
    ck_assert(chan_tr(&cl, "chat:a", "bob", 0));
    /* chat:a moves from alice's conn 1 to her new conn 4 within one set: net, no transition */
    rt_chan_list_clear(&cl);
    ids[1] = 4;
    us[1] = "alice";
    chs[0] = "news";
    chs[1] = "chat:a";
    set.first_seq = set.last_seq = 14;
    ck_assert_int_eq(rt_script_resync_args(&a, "t", 60000, "gw1", 1, &set), 0);
    r = eval(c, RT_SCRIPT_CONN, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &pl, &cl), 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    ck_assert_uint_eq(cl.n, 0);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "4"), "chat:a");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "3"), "(nil)");

    /* a restarted router loads the subscriptions */
    rt_script_snapshot_args(&a, "t");
    r = eval(c, RT_SCRIPT_SNAPSHOT, &a);
    rt_cmd_free(&a);
    rt_registry *reg = rt_registry_new();
    size_t bad;
    ck_assert_int_eq(rt_script_load_snapshot(r, reg, 0, &bad), 0);
    freeReplyObject(r);
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_eq(rt_registry_channel_count(reg), 2);
    ck_assert_uint_eq(rt_registry_subscription_count(reg), 2);
    size_t conns;
    ck_assert_uint_eq(rt_registry_channel_users(reg, "chat:a", count_user, NULL, &conns), 1);
    ck_assert_uint_eq(conns, 1);

    /* ... and a rewrite from memory recreates the same keys */
    rt_store_op *op = rt_store_op_new(RT_OP_REWRITE);
    ck_assert_int_eq(rt_script_rewrite_cmds(op, "t", reg), 0);
    redisReply *d = redisCommand(c, "DEL t:subs:gw1 t:chan:chat:a t:chan:news");
    ck_assert_int_eq(d->integer, 3);
    freeReplyObject(d);
    for (size_t i = 0; i < op->ncmds; i++) {
        d = redisCommandArgv(c, (int)op->cmds[i].argc, (const char **)op->cmds[i].argv,
                             op->cmds[i].argvlen);
        ck_assert(d && d->type != REDIS_REPLY_ERROR);
        freeReplyObject(d);
    }
    rt_store_op_free(op);
    rt_registry_free(reg);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "4"), "chat:a");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:subs:gw1", "1"), "news");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:chan:chat:a", "alice"), "1");

    /* the node dies: every subscription ends, each user leaves once, no key is left */
    rt_script_purge_args(&a, "t", 60000, "gw1", 1);
    r = eval(c, RT_SCRIPT_PURGE, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw1", &st, &gap, &pl, &cl), 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    ck_assert_int_eq(st, RT_SCRIPT_APPLIED);
    ck_assert_uint_eq(cl.n, 2);
    ck_assert(chan_tr(&cl, "news", "alice", 0));
    ck_assert(chan_tr(&cl, "chat:a", "alice", 0));
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "t:subs:gw1"), 0);
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "t:chan:chat:a"), 0);
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "t:chan:news"), 0);

    /* a new life of a node (heartbeat) ends the old life's subscriptions */
    ck_assert_int_eq(ev_call(c, 0, "gw2", 1, 1, 5, "carol", NULL, NULL, &cl), RT_SCRIPT_APPLIED);
    ck_assert_int_eq(ev_call(c, SUB, "gw2", 1, 2, 5, "carol", "room", NULL, &cl),
                     RT_SCRIPT_APPLIED);
    rt_chan_list_clear(&cl);
    rt_script_node_args(&a, "t", 60000, "gw2", 2);
    r = eval(c, RT_SCRIPT_NODE, &a);
    ck_assert_int_eq(rt_script_parse_change(r, "gw2", &st, &gap, &pl, &cl), 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    ck_assert_uint_eq(cl.n, 1);
    ck_assert(chan_tr(&cl, "room", "carol", 0));
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "t:subs:gw2"), 0);

    rt_presence_list_free(&pl);
    rt_chan_list_free(&cl);
    redisFree(c);
    redis_stop();
}
END_TEST

/* ---- the store thread ---- */

static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static int wakes;

static void on_wake(void *arg)
{
    pthread_mutex_lock(&wake_lock);
    wakes++;
    pthread_cond_signal(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
}

/* Waits for the next handed-back op (up to 10 s). */
static rt_store_op *next_op(rt_store *s, rt_store_op **pending)
{
    for (int i = 0; i < 200; i++) {
        if (!*pending)
            *pending = rt_store_take(s);
        if (*pending) {
            rt_store_op *op = *pending;
            *pending = op->q.next ? wsg_container_of(op->q.next, rt_store_op, q) : NULL;
            op->q.next = NULL;
            return op;
        }
        wsg_testsrv_sleep_ms(50);
    }
    return NULL;
}

static rt_store_op *script_op(rt_script_id id, int wait)
{
    rt_store_op *op = rt_store_op_new(RT_OP_SCRIPT);
    op->script = id;
    op->wait = wait;
    if (id == RT_SCRIPT_SNAPSHOT)
        rt_script_snapshot_args(&op->args, "s");
    else
        rt_script_node_args(&op->args, "s", 60000, "gw1", 1);
    return op;
}

static int need_rewrite_ctx;

static void need_rewrite_done(void *ctx, rt_store_op *op)
{
    (void)ctx;
    (void)op;
}

/* Records each completion: which op, with which ctx, in which order. */
typedef struct done_log {
    size_t n;
    void *ctx[4];
    rt_store_op *op[4];
} done_log;

static done_log dlog;

static void log_done(void *ctx, rt_store_op *op)
{
    ck_assert_uint_lt(dlog.n, 4);
    dlog.ctx[dlog.n] = ctx;
    dlog.op[dlog.n++] = op;
}

static int ctx_freed;

static void count_free(void *ctx)
{
    (void)ctx;
    ctx_freed++;
}

START_TEST(store_complete_calls_each_done)
{
    int c1, c2;
    memset(&dlog, 0, sizeof(dlog));
    ctx_freed = 0;
    rt_store_op *a = rt_store_op_script(RT_SCRIPT_NODE, log_done, &c1, count_free);
    rt_store_op *b = rt_store_op_new(RT_OP_REWRITE); /* no completion: only freed */
    rt_store_op *c = rt_store_op_script(RT_SCRIPT_CONN, log_done, &c2, count_free);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(a->kind, RT_OP_SCRIPT);
    ck_assert_uint_eq(a->script, RT_SCRIPT_NODE);
    a->q.next = &b->q;
    b->q.next = &c->q;
    ck_assert_uint_eq(rt_store_op_complete(a), 3);
    ck_assert_uint_eq(dlog.n, 2);
    ck_assert_ptr_eq(dlog.ctx[0], &c1);
    ck_assert_ptr_eq(dlog.op[0], a);
    ck_assert_ptr_eq(dlog.ctx[1], &c2);
    ck_assert_ptr_eq(dlog.op[1], c);
    ck_assert_int_eq(ctx_freed, 2);
    ck_assert_uint_eq(rt_store_op_complete(NULL), 0);
}
END_TEST

START_TEST(store_fallback_and_rewrite)
{
    redis_port = wsg_testsrv_free_port();
    rt_store_cfg cfg = {.prefix = "s", .scripts = rt_scripts, .nscripts = RT_SCRIPT__COUNT,
                        .wake = on_wake, .need_rewrite = need_rewrite_done,
                        .need_rewrite_ctx = &need_rewrite_ctx};
    snprintf(cfg.addr.host, sizeof(cfg.addr.host), "127.0.0.1");
    cfg.addr.port = redis_port;
    rt_store *s = rt_store_start(&cfg);
    ck_assert_ptr_nonnull(s);
    rt_store_op *pending = NULL;

    /* no Redis yet: a normal op fails at once, the wait op (snapshot) is kept */
    rt_store_submit(s, script_op(RT_SCRIPT_SNAPSHOT, 1));
    rt_store_submit(s, script_op(RT_SCRIPT_NODE, 0));
    rt_store_op *op = next_op(s, &pending);
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->script, RT_SCRIPT_NODE);
    ck_assert_int_eq(op->ran, 0);
    rt_store_op_free(op);
    ck_assert_int_eq(rt_store_connected(s), 0);

    redis_start();
    op = next_op(s, &pending);
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->script, RT_SCRIPT_SNAPSHOT);
    ck_assert_int_eq(op->ran, 1);
    ck_assert_int_eq(op->reply->type, REDIS_REPLY_ARRAY);
    rt_store_op_free(op);
    ck_assert_int_eq(rt_store_connected(s), 1);

    /* pipelined script ops, in order */
    for (int i = 0; i < 3; i++)
        rt_store_submit(s, script_op(RT_SCRIPT_NODE, 0));
    for (int i = 0; i < 3; i++) {
        op = next_op(s, &pending);
        ck_assert_ptr_nonnull(op);
        ck_assert_int_eq(op->ran, 1);
        rt_store_op_free(op);
    }

    /* Redis restarts empty: the store notices, asks for a rewrite, refuses changes until then */
    redis_stop();
    redis_start();
    op = next_op(s, &pending);
    ck_assert_ptr_nonnull(op);
    ck_assert_int_eq(op->kind, RT_OP_NEED_REWRITE);
    /* it carries the configured completion */
    ck_assert_ptr_eq(op->ctx, &need_rewrite_ctx);
    ck_assert(op->done == need_rewrite_done);
    uint64_t gen = op->generation;
    rt_store_op_free(op);
    rt_store_submit(s, script_op(RT_SCRIPT_NODE, 0));
    op = next_op(s, &pending);
    ck_assert_int_eq(op->ran, 0);
    rt_store_op_free(op);

    rt_store_op *rw = rt_store_op_new(RT_OP_REWRITE);
    rw->generation = gen + 1; /* a stale generation is not run */
    rt_store_submit(s, rw);
    op = next_op(s, &pending);
    ck_assert_int_eq(op->ran, 0);
    rt_store_op_free(op);
    /* what the rewrite must remove: every registry key, subscriptions included */
    redisContext *c = redis_wait();
    redisReply *sr = redisCommand(c, "HSET s:subs:gwOld 1 chat:a");
    freeReplyObject(sr);
    sr = redisCommand(c, "HSET s:chan:chat:a bob 1");
    freeReplyObject(sr);
    sr = redisCommand(c, "HSET s:node:gwOld 1 bob");
    freeReplyObject(sr);
    redisFree(c);
    rw = rt_store_op_new(RT_OP_REWRITE);
    rw->generation = gen;
    rt_cmd *cmd = rt_store_op_cmd(rw);
    rt_cmd_adds(cmd, "HSET");
    rt_cmd_adds(cmd, "s:nodes");
    rt_cmd_adds(cmd, "gwR");
    rt_cmd_adds(cmd, "42");
    rt_store_submit(s, rw);
    op = next_op(s, &pending);
    ck_assert_int_eq(op->kind, RT_OP_REWRITE);
    ck_assert_int_eq(op->ran, 1);
    rt_store_op_free(op);
    c = redis_wait();
    ck_assert_str_eq(get(c, "HGET %s %s", "s:nodes", "gwR"), "42");
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "s:subs:gwOld"), 0);
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "s:chan:chat:a"), 0);
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "s:node:gwOld"), 0);
    /* Redis forgets the scripts: EVALSHA gets NOSCRIPT and the store falls back to EVAL */
    redisReply *fr = redisCommand(c, "SCRIPT FLUSH");
    ck_assert_ptr_nonnull(fr);
    freeReplyObject(fr);
    rt_store_submit(s, script_op(RT_SCRIPT_NODE, 0));
    op = next_op(s, &pending);
    ck_assert_int_eq(op->ran, 1);
    ck_assert_int_eq(op->reply->type, REDIS_REPLY_ARRAY);
    rt_store_op_free(op);
    ck_assert_str_eq(get(c, "HGET %s %s", "s:nodes", "gw1"), "1");
    redisFree(c);

    /* stopping runs what was submitted last */
    rt_store_op *last = rt_store_op_new(RT_OP_SCRIPT);
    last->script = RT_SCRIPT_NODE;
    rt_script_node_args(&last->args, "s", 60000, "gwLast", 3);
    rt_store_submit(s, last);
    rt_store_stop(s);
    c = redis_wait();
    ck_assert_str_eq(get(c, "HGET %s %s", "s:nodes", "gwLast"), "3");
    redisFree(c);

    /* ops still inside are freed with the store */
    redis_stop();
    rt_store_submit(s, script_op(RT_SCRIPT_SNAPSHOT, 1));
    rt_store_free(s);
    while (pending) {
        op = pending;
        pending = op->q.next ? wsg_container_of(op->q.next, rt_store_op, q) : NULL;
        rt_store_op_free(op);
    }
    ck_assert_int_gt(wakes, 0);
}
END_TEST

/* ---- history scripts ---- */

static redisReply *heval(redisContext *c, rt_hscript_id id, const rt_cmd *args)
{
    return eval_text(c, rt_hist_scripts[id], args);
}

/* Appends payload to the user's stream (user NULL: broadcast) as job, as a router that has
 * seen *appends (updated); returns the seq. */
static uint64_t happend_seen(redisContext *c, const rt_hist_limits *l, const char *user,
                             int live, const char *payload, const char *job, uint64_t *epoch,
                             uint64_t *appends)
{
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, payload, strlen(payload)), RT_FRAME_OK);
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_append_args(&a, "t", &f, 1234, job, *appends, NULL), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, l, user ? WSGATE__STREAM_KIND__STREAM_USER
                                                 : WSGATE__STREAM_KIND__STREAM_BROADCAST,
                                        user, live),
                     0);
    redisReply *r = heval(c, RT_HSCRIPT_APPEND, &a);
    uint64_t seq, count;
    ck_assert_int_eq(rt_hist_parse_append(r, 1, epoch, &count, &seq), 0);
    ck_assert_uint_gt(count, *appends); /* without a loss, the count only grows */
    *appends = count;
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_frame_free(&f);
    return seq;
}

static uint64_t happend_job(redisContext *c, const rt_hist_limits *l, const char *user,
                            int live, const char *payload, const char *job, uint64_t *epoch)
{
    uint64_t none = 0;
    return happend_seen(c, l, user, live, payload, job, epoch, &none);
}

static uint64_t happend(redisContext *c, const rt_hist_limits *l, const char *user, int live,
                        const char *payload, uint64_t *epoch)
{
    return happend_job(c, l, user, live, payload, "job-h", epoch);
}

typedef struct hread {
    redisReply *r;
    rt_hist_page p;
} hread;

static void hread_free(hread *h)
{
    rt_hist_page_free(&h->p);
    freeReplyObject(h->r);
}

static hread hget(redisContext *c, const rt_hist_limits *l, const char *user, int has_after,
                  uint64_t after, uint64_t epoch, uint64_t until, uint32_t max, int mark,
                  size_t max_bytes)
{
    rt_hist_req q = {.kind = user ? WSGATE__STREAM_KIND__STREAM_USER
                                  : WSGATE__STREAM_KIND__STREAM_BROADCAST,
                     .has_after = has_after, .after = after, .epoch = epoch, .until = until,
                     .max_items = max, .mark = mark};
    if (user)
        snprintf(q.name, sizeof(q.name), "%s", user);
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_read_args(&a, "t", l, &q, max_bytes, NULL), 0);
    hread h;
    h.r = heval(c, RT_HSCRIPT_READ, &a);
    ck_assert_int_eq(rt_hist_parse_read(h.r, 0, &h.p), 0);
    rt_cmd_free(&a);
    return h;
}

static void seqs_are(const rt_hist_page *p, size_t n, uint64_t first)
{
    ck_assert_uint_eq(p->n, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(p->items[i].seq, first + i);
}

START_TEST(lua_history)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_hist_limits l = {.max_len = 5, .ttl_ms = 60000, .page = 100};
    uint64_t epoch, e2;

    /* order and seq per stream; the epoch is made once; the stored text is the live frame */
    ck_assert_uint_eq(happend(c, &l, "alice", 1, "{\"n\":1}", &epoch), 1);
    ck_assert(epoch > 0 && epoch <= RT_HIST_EPOCH_MAX);
    char ebuf[32];
    snprintf(ebuf, sizeof(ebuf), "%llu", (unsigned long long)epoch);
    ck_assert_str_eq(get(c, "GET %s%s", "t:epoch", ""), ebuf);
    ck_assert_uint_eq(happend(c, &l, "alice", 0, "{\"n\":2 }", &e2), 2);
    ck_assert_uint_eq(e2, epoch);
    ck_assert_uint_eq(happend(c, &l, "alice", 0, "{}", &e2), 3);
    ck_assert_uint_eq(happend(c, &l, NULL, 0, "{\"b\":1}", &e2), 1); /* its own counter */
    ck_assert_uint_eq(happend(c, &l, "bob", 0, "{}", &e2), 1);
    redisReply *x = redisCommand(c, "XRANGE t:h:u:alice - +");
    ck_assert_uint_eq(x->elements, 3);
    ck_assert_str_eq(x->element[0]->element[0]->str, "1-0");
    ck_assert_str_eq(x->element[1]->element[1]->element[1]->str, "{\"n\":2 ,\"seq\":2}");
    ck_assert_str_eq(x->element[2]->element[1]->element[1]->str, "{\"seq\":3}");
    ck_assert_str_eq(x->element[2]->element[1]->element[3]->str, "1234");
    freeReplyObject(x);

    /* one call, several streams */
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, "{\"m\":1}", 7), RT_FRAME_OK);
    rt_cmd a;
    rt_cmd_init(&a);
    rt_hist_append_args(&a, "t", &f, 1, "job-m", 0, NULL);
    rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "bob", RT_APPEND_OFFLINE);
    rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "carol", RT_APPEND_LIVE);
    rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_BROADCAST, NULL, RT_APPEND_OFFLINE);
    redisReply *r = heval(c, RT_HSCRIPT_APPEND, &a);
    uint64_t seqs[3], count;
    ck_assert_int_eq(rt_hist_parse_append(r, 3, &e2, &count, seqs), 0);
    ck_assert(seqs[0] == 2 && seqs[1] == 1 && seqs[2] == 2);
    ck_assert_uint_eq(count, 6); /* the sixth append call */
    ck_assert_int_eq(rt_hist_parse_append(r, 2, &e2, &count, seqs), -1); /* wrong count */
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_frame_free(&f);

    /* a user stream's read also answers the heads it wants, in its order (a connect's one
     * request), and only those */
    {
        rt_hist_req q = {.kind = WSGATE__STREAM_KIND__STREAM_USER, .max_items = 100,
                         .nheads = 3};
        snprintf(q.name, sizeof(q.name), "%s", "carol");
        q.heads[0].kind = WSGATE__STREAM_KIND__STREAM_BROADCAST;
        q.heads[1].kind = WSGATE__STREAM_KIND__STREAM_USER;
        snprintf(q.heads[1].name, sizeof(q.heads[1].name), "%s", "alice");
        q.heads[2].kind = WSGATE__STREAM_KIND__STREAM_USER;
        snprintf(q.heads[2].name, sizeof(q.heads[2].name), "%s", "nobody");
        rt_cmd_init(&a);
        ck_assert_int_eq(rt_hist_read_args(&a, "t", &l, &q, 1 << 20, NULL), 0);
        hread hb;
        hb.r = heval(c, RT_HSCRIPT_READ, &a);
        ck_assert_int_eq(rt_hist_parse_read(hb.r, 2, &hb.p), -1); /* not what was asked */
        ck_assert_int_eq(rt_hist_parse_read(hb.r, 3, &hb.p), 0);
        ck_assert_uint_eq(hb.p.nheads, 3);
        ck_assert(hb.p.heads[0] == 2 && hb.p.heads[1] == 3 && hb.p.heads[2] == 0);
        ck_assert(hb.p.epoch == epoch && hb.p.head == 1);
        hread_free(&hb);
        rt_cmd_free(&a);
        hb = hget(c, &l, "carol", 0, 0, 0, 0, 100, 0, 1 << 20);
        ck_assert_uint_eq(hb.p.nheads, 0);
        hread_free(&hb);
    }

    /* delivered mark and offline backlog: alice got 1 live, 2 and 3 were kept offline */
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:alice", ""), "1");
    hread h = hget(c, &l, "alice", 0, 0, 0, 0, 100, 0, 1 << 20);
    ck_assert(!h.p.resync && !h.p.more && h.p.epoch == epoch && h.p.head == 3);
    seqs_are(&h.p, 2, 2);
    ck_assert_mem_eq(h.p.items[1].data, "{\"seq\":3}", 9);
    ck_assert_int_eq(h.p.items[1].created_us, 1234);
    hread_free(&h);
    h = hget(c, &l, "alice", 0, 0, 0, 0, 1, 1, 1 << 20); /* a page of one, marked */
    seqs_are(&h.p, 1, 2);
    ck_assert(h.p.more);
    hread_free(&h);
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:alice", ""), "2");
    h = hget(c, &l, "alice", 0, 0, 0, 0, 100, 1, 1 << 20);
    seqs_are(&h.p, 1, 3);
    hread_free(&h);
    h = hget(c, &l, "alice", 0, 0, 0, 0, 100, 1, 1 << 20);
    ck_assert(h.p.n == 0 && !h.p.resync);
    hread_free(&h);
    /* a user never heard of: empty */
    h = hget(c, &l, "nobody", 0, 0, 0, 0, 100, 1, 1 << 20);
    ck_assert(h.p.n == 0 && h.p.head == 0 && !h.p.resync);
    hread_free(&h);

    /* resume, until, paging by count and by bytes */
    h = hget(c, &l, "alice", 1, 1, epoch, 0, 100, 0, 1 << 20);
    ck_assert(!h.p.resync && !h.p.more);
    seqs_are(&h.p, 2, 2);
    hread_free(&h);
    h = hget(c, &l, "alice", 1, 0, epoch, 2, 100, 0, 1 << 20);
    ck_assert(!h.p.more);
    seqs_are(&h.p, 2, 1);
    hread_free(&h);
    h = hget(c, &l, "alice", 1, 0, 0, 0, 100, 0, 1); /* at least one item, however small */
    ck_assert(h.p.more);
    seqs_are(&h.p, 1, 1);
    hread_free(&h);
    /* resync: another epoch, a position past the head */
    h = hget(c, &l, "alice", 1, 2, epoch + 1, 0, 100, 0, 1 << 20);
    ck_assert(h.p.resync);
    seqs_are(&h.p, 3, 1);
    hread_free(&h);
    h = hget(c, &l, "alice", 1, 9, epoch, 0, 100, 0, 1 << 20);
    ck_assert(h.p.resync && h.p.head == 3);
    seqs_are(&h.p, 3, 1);
    hread_free(&h);

    /* MAXLEN: 5 kept; history no longer reaches back to 2 */
    for (int i = 0; i < 5; i++)
        happend(c, &l, "alice", 0, "{}", &e2);
    x = redisCommand(c, "XLEN t:h:u:alice");
    ck_assert_int_eq(x->integer, 5);
    freeReplyObject(x);
    h = hget(c, &l, "alice", 1, 3, epoch, 0, 100, 0, 1 << 20);
    ck_assert(!h.p.resync && h.p.head == 8);
    seqs_are(&h.p, 5, 4);
    hread_free(&h);
    h = hget(c, &l, "alice", 1, 1, epoch, 0, 100, 0, 1 << 20);
    ck_assert(h.p.resync);
    seqs_are(&h.p, 5, 4);
    hread_free(&h);
    /* the mark (3) is just before the oldest kept (4): no gap, no resync */
    h = hget(c, &l, "alice", 0, 0, 0, 0, 100, 0, 1 << 20);
    ck_assert(!h.p.resync);
    seqs_are(&h.p, 5, 4);
    hread_free(&h);

    /* a lost counter never reuses a seq of the kept stream */
    x = redisCommand(c, "DEL t:seq:u:alice");
    freeReplyObject(x);
    ck_assert_uint_eq(happend(c, &l, "alice", 0, "{}", &e2), 9);

    /* the broadcast stream: no position, only epoch and head */
    h = hget(c, &l, NULL, 0, 0, 0, 0, 100, 0, 1 << 20);
    ck_assert(h.p.n == 0 && h.p.head == 2 && h.p.epoch == epoch);
    hread_free(&h);
    h = hget(c, &l, NULL, 1, 0, epoch, 0, 100, 0, 1 << 20);
    seqs_are(&h.p, 2, 1);
    ck_assert_mem_eq(h.p.items[1].data, "{\"m\":1,\"seq\":2}", 15);
    hread_free(&h);

    /* Redis loses the epoch: a new one, and positions of the old one resync */
    x = redisCommand(c, "DEL t:epoch");
    freeReplyObject(x);
    happend(c, &l, "bob", 0, "{}", &e2);
    ck_assert(e2 != epoch && e2 > 0);
    h = hget(c, &l, "bob", 1, 2, epoch, 0, 100, 0, 1 << 20);
    ck_assert(h.p.resync && h.p.epoch == e2);
    seqs_are(&h.p, 3, 1);
    hread_free(&h);

    /* TTL: entries appended longer ago count as gone; then the history expires, while the
     * counter lives on (30 TTLs), so numbering never restarts under a returning client */
    rt_hist_limits shortl = {.max_len = 100, .ttl_ms = 400, .page = 100};
    happend(c, &shortl, "eve", 0, "{}", &e2);
    wsg_testsrv_sleep_ms(250);
    happend(c, &shortl, "eve", 0, "{}", &e2);
    wsg_testsrv_sleep_ms(250);
    h = hget(c, &shortl, "eve", 1, 0, e2, 0, 100, 0, 1 << 20);
    ck_assert(h.p.resync && h.p.head == 2);
    seqs_are(&h.p, 1, 2);
    hread_free(&h);
    h = hget(c, &shortl, "eve", 1, 1, e2, 0, 100, 0, 1 << 20); /* 2 is still there */
    ck_assert(!h.p.resync);
    seqs_are(&h.p, 1, 2);
    hread_free(&h);
    wsg_testsrv_sleep_ms(500);
    x = redisCommand(c, "EXISTS t:h:u:eve");
    ck_assert_int_eq(x->integer, 0);
    freeReplyObject(x);
    x = redisCommand(c, "EXISTS t:seq:u:eve");
    ck_assert_int_eq(x->integer, 1);
    freeReplyObject(x);
    h = hget(c, &shortl, "eve", 1, 2, e2, 0, 100, 0, 1 << 20); /* up to date: nothing missed */
    ck_assert(!h.p.resync && h.p.head == 2 && h.p.n == 0);
    hread_free(&h);
    h = hget(c, &shortl, "eve", 1, 1, e2, 0, 100, 0, 1 << 20); /* 2 is gone: resync */
    ck_assert(h.p.resync && h.p.head == 2 && h.p.n == 0);
    hread_free(&h);
    uint64_t s3 = happend(c, &shortl, "eve", 0, "{}", &e2);
    ck_assert_uint_eq(s3, 3); /* the numbering goes on */

    redisFree(c);
    redis_stop();
}
END_TEST

static long long rint_cmd(redisContext *c, const char *cmd);

/* The Lua builds keys from the kind's history tag and the stream's name: the key names of
 * every earlier version, so deployments keep their history. A user id may hold ':'. */
START_TEST(lua_history_keys)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_hist_limits l = {.max_len = 100, .ttl_ms = 60000, .page = 100};
    uint64_t epoch;
    ck_assert_uint_eq(happend_job(c, &l, "al:ice", 1, "{}", "k:1", &epoch), 1);
    ck_assert_uint_eq(happend_job(c, &l, NULL, 1, "{}", "k:2", &epoch), 1);
    ck_assert_int_eq(rint_cmd(c, "XLEN t:h:u:al:ice"), 1);
    ck_assert_str_eq(get(c, "GET %s%s", "t:seq:u:al:ice", ""), "1");
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:al:ice", ""), "1"); /* live: the mark moved */
    ck_assert_int_eq(rint_cmd(c, "XLEN t:h:b"), 1);
    ck_assert_str_eq(get(c, "GET %s%s", "t:seq:b", ""), "1");
    ck_assert_int_eq(rint_cmd(c, "EXISTS t:hd:b"), 0); /* the broadcast stream has no mark */
    ck_assert_int_eq(rint_cmd(c, "EXISTS t:h:u:al t:h:u t:h:b:"), 0);
    /* the mark moves on a live append only from right below it: an offline backlog (dan's 1
     * and 2, kept before his connection read them) stays after the mark until a read */
    ck_assert_uint_eq(happend_job(c, &l, "dan", 0, "{}", "d:1", &epoch), 1);
    ck_assert_int_eq(rint_cmd(c, "EXISTS t:hd:u:dan"), 0);
    ck_assert_uint_eq(happend_job(c, &l, "dan", 0, "{}", "d:2", &epoch), 2);
    ck_assert_uint_eq(happend_job(c, &l, "dan", 1, "{}", "d:3", &epoch), 3);
    ck_assert_int_eq(rint_cmd(c, "EXISTS t:hd:u:dan"), 0);
    hread hd = hget(c, &l, "dan", 0, 0, 0, 0, 100, 1, 1 << 20); /* reads after the mark */
    seqs_are(&hd.p, 3, 1);
    hread_free(&hd);
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:dan", ""), "3");
    ck_assert_uint_eq(happend_job(c, &l, "dan", 1, "{}", "d:4", &epoch), 4);
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:dan", ""), "4");
    /* an entry kept offline while dan was online (the registry lagged), then live ones: a read
     * that hands it (gap repair, until 5) moves the mark over the live ones after it too */
    ck_assert_uint_eq(happend_job(c, &l, "dan", 0, "{}", "d:5", &epoch), 5);
    ck_assert_uint_eq(happend_job(c, &l, "dan", 1, "{}", "d:6", &epoch), 6);
    ck_assert_uint_eq(happend_job(c, &l, "dan", 1, "{}", "d:7", &epoch), 7);
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:dan", ""), "4");
    hd = hget(c, &l, "dan", 1, 4, epoch, 5, 100, 1, 1 << 20);
    seqs_are(&hd.p, 1, 5);
    hread_free(&hd);
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:dan", ""), "7");
    ck_assert_uint_eq(happend_job(c, &l, "dan", 1, "{}", "d:8", &epoch), 8);
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:dan", ""), "8");
    /* a stream with nothing kept below a live append (new, or idle past its TTL) moves it */
    ck_assert_uint_eq(happend_job(c, &l, "eve", 1, "{}", "e:1", &epoch), 1);
    ck_assert_str_eq(get(c, "GET %s%s", "t:hd:u:eve", ""), "1");
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_void_args(&a, "t"), 0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "al:ice", "k:1"),
                     0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, WSGATE__STREAM_KIND__STREAM_BROADCAST, "", "k:2"),
                     0);
    redisReply *r = heval(c, RT_HSCRIPT_VOID, &a);
    uint64_t seqs[2];
    ck_assert_int_eq(rt_hist_parse_void(r, 2, seqs), 0);
    ck_assert(seqs[0] == 1 && seqs[1] == 1);
    freeReplyObject(r);
    rt_cmd_free(&a);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:hv:u:al:ice", "1"), "1");
    ck_assert_str_eq(get(c, "HGET %s %s", "t:hv:b", "1"), "1");
    /* and reads find them there */
    hread h = hget(c, &l, "al:ice", 1, 0, epoch, 0, 100, 0, 1 << 20);
    ck_assert(h.p.head == 1 && h.p.n == 1 && h.p.items[0].len == 0);
    hread_free(&h);
    redisFree(c);
    redis_stop();
}
END_TEST

/* Runs the void script over n (user or NULL for broadcast, job) pairs into seqs. */
static void hvoid(redisContext *c, const rt_hist_limits *l, size_t n, const char *const *users,
                  const char *const *jobs, uint64_t *seqs)
{
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_void_args(&a, "t"), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(rt_hist_void_add(&a, l, users[i] ? WSGATE__STREAM_KIND__STREAM_USER
                                                       : WSGATE__STREAM_KIND__STREAM_BROADCAST,
                                          users[i], jobs[i]),
                         0);
    redisReply *r = heval(c, RT_HSCRIPT_VOID, &a);
    ck_assert_int_eq(rt_hist_parse_void(r, n, seqs), 0);
    if (n)
        ck_assert_int_eq(rt_hist_parse_void(r, n - 1, seqs), -1); /* wrong count */
    freeReplyObject(r);
    rt_cmd_free(&a);
}

static long long rint_cmd(redisContext *c, const char *cmd)
{
    redisReply *x = redisCommand(c, cmd);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->type, REDIS_REPLY_INTEGER);
    long long v = x->integer;
    freeReplyObject(x);
    return v;
}

START_TEST(void_reply_format)
{
    redisReply *r = rarr(3, rnum(4), rstr("0"), rnum(0));
    uint64_t seqs[3];
    ck_assert_int_eq(rt_hist_parse_void(r, 3, seqs), 0);
    ck_assert(seqs[0] == 4 && seqs[1] == 0 && seqs[2] == 0);
    freeReplyObject(r);
    r = rarr(1, rnum(-1));
    ck_assert_int_eq(rt_hist_parse_void(r, 1, seqs), -1);
    freeReplyObject(r);
    r = rstr("x");
    ck_assert_int_eq(rt_hist_parse_void(r, 0, seqs), -1);
    freeReplyObject(r);
}
END_TEST

START_TEST(lua_history_void)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_hist_limits l = {.max_len = 1000, .ttl_ms = 60000, .page = 100};
    uint64_t epoch;

    /* the job id is stored with each entry */
    ck_assert_uint_eq(happend_job(c, &l, "alice", 0, "{\"n\":1}", "r:9:1", &epoch), 1);
    ck_assert_uint_eq(happend_job(c, &l, "alice", 0, "{\"n\":2}", "r:9:2", &epoch), 2);
    ck_assert_uint_eq(happend_job(c, &l, "alice", 0, "{\"n\":3}", "r:9:3", &epoch), 3);
    ck_assert_uint_eq(happend_job(c, &l, NULL, 0, "{\"b\":1}", "r:9:4", &epoch), 1);
    ck_assert_uint_eq(happend_job(c, &l, NULL, 0, "{\"b\":2}", "r:9:5", &epoch), 2);
    redisReply *x = redisCommand(c, "XRANGE t:h:u:alice 2-0 2-0");
    ck_assert_uint_eq(x->elements, 1);
    const redisReply *fv = x->element[0]->element[1];
    ck_assert_uint_eq(fv->elements, 8);
    ck_assert_str_eq(fv->element[6]->str, "j");
    ck_assert_str_eq(fv->element[7]->str, "r:9:2");
    freeReplyObject(x);

    /* nothing voided yet: every payload */
    hread h = hget(c, &l, "alice", 1, 0, epoch, 0, 100, 0, 1 << 20);
    seqs_are(&h.p, 3, 1);
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_gt(h.p.items[i].len, 0);
    hread_free(&h);

    /* void: only the entries of those jobs in those streams; unknown jobs, a job of another
     * stream, a stream that does not exist: nothing */
    const char *users[] = {"alice", "alice", NULL, "bob", NULL};
    const char *jobs[] = {"r:9:2", "r:9:never", "r:9:4", "r:9:2", "r:9:3"};
    uint64_t seqs[5];
    hvoid(c, &l, 5, users, jobs, seqs);
    ck_assert(seqs[0] == 2 && seqs[1] == 0 && seqs[2] == 1 && seqs[3] == 0 && seqs[4] == 0);
    ck_assert_int_eq(rint_cmd(c, "HLEN t:hv:u:alice"), 1);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:hv:u:alice", "2"), "1");
    ck_assert_int_eq(rint_cmd(c, "HLEN t:hv:b"), 1);
    ck_assert_str_eq(get(c, "HGET %s %s", "t:hv:b", "1"), "1");
    ck_assert_int_eq(rint_cmd(c, "EXISTS t:hv:u:bob"), 0);
    long long pttl = rint_cmd(c, "PTTL t:hv:u:alice");
    ck_assert(pttl > 0 && pttl <= 60000);
    /* a job voided again changes nothing */
    hvoid(c, &l, 1, users, jobs, seqs);
    ck_assert_uint_eq(seqs[0], 2);
    ck_assert_int_eq(rint_cmd(c, "HLEN t:hv:u:alice"), 1);
    /* nothing to void: an empty answer */
    hvoid(c, &l, 0, users, jobs, seqs);

    /* reads: the voided seq comes empty (seq and creation time kept), the others whole */
    h = hget(c, &l, "alice", 1, 0, epoch, 0, 100, 0, 1 << 20);
    ck_assert(!h.p.resync && !h.p.more && h.p.head == 3);
    seqs_are(&h.p, 3, 1);
    ck_assert_mem_eq(h.p.items[0].data, "{\"n\":1,\"seq\":1}", 15);
    ck_assert_uint_eq(h.p.items[1].len, 0);
    ck_assert_int_eq(h.p.items[1].created_us, 1234);
    ck_assert_mem_eq(h.p.items[2].data, "{\"n\":3,\"seq\":3}", 15);
    hread_free(&h);
    h = hget(c, &l, "alice", 1, 0, epoch, 0, 100, 0, 20); /* an empty item costs no bytes */
    seqs_are(&h.p, 2, 1);
    ck_assert(h.p.more);
    hread_free(&h);
    h = hget(c, &l, NULL, 1, 0, epoch, 0, 100, 0, 1 << 20);
    seqs_are(&h.p, 2, 1);
    ck_assert_uint_eq(h.p.items[0].len, 0);
    ck_assert_mem_eq(h.p.items[1].data, "{\"b\":2,\"seq\":2}", 15);
    hread_free(&h);
    /* the offline backlog too (after the delivered mark) */
    h = hget(c, &l, "alice", 0, 0, 0, 0, 100, 0, 1 << 20);
    seqs_are(&h.p, 3, 1);
    ck_assert_uint_eq(h.p.items[1].len, 0);
    hread_free(&h);

    /* the search reaches RT_HIST_VOID_DEPTH entries below the top, no further */
    happend_job(c, &l, "deep", 0, "{}", "r:9:d1", &epoch);
    happend_job(c, &l, "deep", 0, "{}", "r:9:d2", &epoch);
    for (int i = 0; i < RT_HIST_VOID_DEPTH - 1; i++)
        happend(c, &l, "deep", 0, "{}", &epoch);
    const char *dusers[] = {"deep", "deep"};
    const char *djobs[] = {"r:9:d1", "r:9:d2"};
    hvoid(c, &l, 2, dusers, djobs, seqs);
    ck_assert(seqs[0] == 0 && seqs[1] == 2);

    /* the void hash expires with the history's TTL */
    rt_hist_limits shortl = {.max_len = 100, .ttl_ms = 300, .page = 100};
    ck_assert_uint_eq(happend_job(c, &shortl, "eve", 0, "{}", "r:9:e", &epoch), 1);
    const char *eusers[] = {"eve"};
    const char *ejobs[] = {"r:9:e"};
    hvoid(c, &shortl, 1, eusers, ejobs, seqs);
    ck_assert_uint_eq(seqs[0], 1);
    pttl = rint_cmd(c, "PTTL t:hv:u:eve");
    ck_assert(pttl > 0 && pttl <= 300);
    wsg_testsrv_sleep_ms(400);
    ck_assert_int_eq(rint_cmd(c, "EXISTS t:hv:u:eve"), 0);

    redisFree(c);
    redis_stop();
}
END_TEST

/* Redis losing appends it acknowledged (a failover to a lagging replica, AOF's last second)
 * must not hand out seqs again under the same epoch: clients holding them would drop the new
 * messages as repeats. The append count going back starts a new epoch, once. */
/* Several messages in one append call (rt_jobs' batches): each stream numbered in argument
 * order, within the call and across calls; each message stored with its own frame, time and
 * job id (so the void script finds each); one count and one epoch per call; a seen-only
 * stream of a user never seen keeps nothing, the rest of the call unaffected. */
START_TEST(lua_history_batch)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_hist_limits l = {.max_len = 1000, .ttl_ms = 60000, .page = 100};
    const unsigned U = WSGATE__STREAM_KIND__STREAM_USER, B = WSGATE__STREAM_KIND__STREAM_BROADCAST;
    uint64_t epoch, e2, count, seen = 0;
    ck_assert_uint_eq(happend_seen(c, &l, "alice", 0, "{\"n\":0}", "b:0", &epoch, &seen), 1);

    rt_frame f[4];
    const char *pay[4] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(rt_frame_from_payload(&f[i], pay[i], strlen(pay[i])), RT_FRAME_OK);
    rt_cmd a;
    rt_cmd_init(&a);
    /* alice, then bob and the broadcast stream, then alice again, then ghost (never seen) and
     * alice */
    ck_assert_int_eq(rt_hist_append_args(&a, "t", &f[0], 11, "b:1", seen, NULL), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "alice", RT_APPEND_OFFLINE), 0);
    ck_assert_int_eq(rt_hist_append_next(&a, &f[1], 22, "b:2"), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "bob", RT_APPEND_OFFLINE), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, B, NULL, RT_APPEND_OFFLINE), 0);
    ck_assert_int_eq(rt_hist_append_next(&a, &f[2], 33, "b:3"), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "alice", RT_APPEND_OFFLINE), 0);
    ck_assert_int_eq(rt_hist_append_next(&a, &f[3], 44, "b:4"), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "ghost", RT_APPEND_SEEN_ONLY), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "alice", RT_APPEND_OFFLINE), 0);
    redisReply *r = heval(c, RT_HSCRIPT_APPEND, &a);
    uint64_t seqs[6];
    ck_assert_int_eq(rt_hist_parse_append(r, 6, &e2, &count, seqs), 0);
    ck_assert_uint_eq(e2, epoch);
    ck_assert_uint_eq(count, seen + 1); /* one count per call */
    const uint64_t want[6] = {2, 1, 1, 3, 0, 4};
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(seqs[i], want[i]);
    freeReplyObject(r);
    rt_cmd_free(&a);

    /* each entry is its own message's: frame with its seq, created time, job id */
    redisReply *x = redisCommand(c, "XRANGE t:h:u:alice - +");
    ck_assert_uint_eq(x->elements, 4);
    const char *frames[4] = {NULL, "{\"n\":1,\"seq\":2}", "{\"n\":3,\"seq\":3}",
                             "{\"n\":4,\"seq\":4}"};
    const char *created[4] = {NULL, "11", "33", "44"};
    const char *jobs[4] = {NULL, "b:1", "b:3", "b:4"};
    for (int i = 1; i < 4; i++) {
        const redisReply *fv = x->element[i]->element[1];
        ck_assert_str_eq(fv->element[1]->str, frames[i]);
        ck_assert_str_eq(fv->element[3]->str, created[i]);
        ck_assert_str_eq(fv->element[7]->str, jobs[i]);
    }
    freeReplyObject(x);
    x = redisCommand(c, "XRANGE t:h:b - +");
    ck_assert_uint_eq(x->elements, 1);
    ck_assert_str_eq(x->element[0]->element[1]->element[1]->str, "{\"n\":2,\"seq\":1}");
    ck_assert_str_eq(x->element[0]->element[1]->element[3]->str, "22");
    freeReplyObject(x);
    ck_assert_int_eq(rint_key(c, "EXISTS %s", "t:h:u:ghost"), 0);

    /* order continues across calls */
    ck_assert_uint_eq(happend_seen(c, &l, "alice", 0, "{}", "b:5", &e2, &seen), 5);
    ck_assert_uint_eq(happend_seen(c, &l, "bob", 0, "{}", "b:6", &e2, &seen), 2);

    /* the void script finds each message of a call by its own job id */
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_void_args(&a, "t"), 0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, U, "alice", "b:3"), 0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, B, NULL, "b:2"), 0);
    r = heval(c, RT_HSCRIPT_VOID, &a);
    uint64_t voided[2];
    ck_assert_int_eq(rt_hist_parse_void(r, 2, voided), 0);
    ck_assert(voided[0] == 3 && voided[1] == 1);
    freeReplyObject(r);
    rt_cmd_free(&a);
    for (int i = 0; i < 4; i++)
        rt_frame_free(&f[i]);
    redisFree(c);
    redis_stop();
}
END_TEST

START_TEST(lua_history_lost_appends)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_hist_limits l = {.max_len = 1000, .ttl_ms = 60000, .page = 100};
    uint64_t epoch, e2, seen_a = 0, seen_b = 0;

    /* two routers append in turn; neither changes the epoch */
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "a:1", &epoch, &seen_a), 1);
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "b:1", &e2, &seen_b), 2);
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "a:2", &e2, &seen_a), 3);
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "b:2", &e2, &seen_b), 4);
    ck_assert_uint_eq(e2, epoch);
    ck_assert_uint_eq(seen_a, 3);
    ck_assert_uint_eq(seen_b, 4);

    /* Redis comes back without the last two appends (3 and 4): what a replica that lagged
     * by two writes would hold */
    redisReply *x = redisCommand(c, "SET t:appends 2");
    freeReplyObject(x);
    x = redisCommand(c, "SET t:seq:u:zed 2");
    freeReplyObject(x);
    x = redisCommand(c, "XDEL t:h:u:zed 3-0 4-0");
    freeReplyObject(x);
    x = redisCommand(c, "XSETID t:h:u:zed 2-0"); /* the replica never saw ids 3 and 4 */
    freeReplyObject(x);

    /* router a's next append finds the count at or below what it saw: a new epoch; the seq
     * it gets (3 again) belongs to that epoch, so clients that hold 3 of the old one resync
     * instead of dropping it */
    uint64_t before_a = seen_a;
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "a:3", &e2, &seen_a), 3);
    ck_assert_uint_ne(e2, epoch);
    ck_assert(e2 > 0 && e2 <= RT_HIST_EPOCH_MAX);
    ck_assert_uint_eq(seen_a, before_a + (UINT64_C(1) << 32));
    uint64_t epoch2 = e2;

    /* router b, which saw one more append than a before the loss, does not change it again */
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "b:3", &e2, &seen_b), 4);
    ck_assert_uint_eq(e2, epoch2);
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "a:4", &e2, &seen_a), 5);
    ck_assert_uint_eq(e2, epoch2);

    /* a client asking with the old epoch is told to resync */
    hread h = hget(c, &l, "zed", 1, 2, epoch, 0, 100, 0, 1 << 20);
    ck_assert(h.p.resync && h.p.epoch == epoch2);
    hread_free(&h);

    /* a router that saw nothing yet (just started) never changes the epoch */
    uint64_t fresh = 0;
    ck_assert_uint_eq(happend_seen(c, &l, "zed", 1, "{}", "c:1", &e2, &fresh), 6);
    ck_assert_uint_eq(e2, epoch2);

    redisFree(c);
    redis_stop();
}
END_TEST

/* One append to user's stream on a history shard (sh), as a router that has seen *appends. */
static uint64_t happend_shard(redisContext *c, const rt_hist_limits *l, const char *user,
                              const char *job, const rt_hist_shard *sh, uint64_t *epoch,
                              uint64_t *appends)
{
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, "{}", 2), RT_FRAME_OK);
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_append_args(&a, "t", &f, 1, job, *appends, sh), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, l, WSGATE__STREAM_KIND__STREAM_USER, user,
                                        RT_APPEND_OFFLINE), 0);
    redisReply *r = heval(c, RT_HSCRIPT_APPEND, &a);
    uint64_t seq, count;
    ck_assert_int_eq(rt_hist_parse_append(r, 1, epoch, &count, &seq), 0);
    if (count > *appends)
        *appends = count;
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_frame_free(&f);
    return seq;
}

static hread hget_shard(redisContext *c, const rt_hist_limits *l, const char *user,
                        uint64_t after, uint64_t epoch, const rt_hist_shard *sh)
{
    rt_hist_req q = {.kind = WSGATE__STREAM_KIND__STREAM_USER, .has_after = 1, .after = after,
                     .epoch = epoch, .max_items = 100};
    snprintf(q.name, sizeof(q.name), "%s", user);
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_read_args(&a, "t", l, &q, 1 << 20, sh), 0);
    hread h;
    h.r = heval(c, RT_HSCRIPT_READ, &a);
    ck_assert_int_eq(rt_hist_parse_read(h.r, 0, &h.p), 0);
    rt_cmd_free(&a);
    return h;
}

/* On a history shard (WSGATE_REDIS_SHARDS) the epoch is the cluster's, passed in, and a shard
 * that lost appends starts a new generation: its streams' next seqs jump to gen * 2^32 + 1
 * and positions of the old generation resync, on every stream of that shard. */
START_TEST(lua_history_shard_generations)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_hist_limits l = {.max_len = 1000, .ttl_ms = 60000, .page = 100};
    rt_hist_shard sh = {.epoch = 777, .gen_seen = 0};
    uint64_t epoch, seen = 0;
    const uint64_t G1 = UINT64_C(1) << 32;

    ck_assert_uint_eq(happend_shard(c, &l, "zed", "a:1", &sh, &epoch, &seen), 1);
    ck_assert_uint_eq(epoch, 777); /* the cluster's, not one of its own */
    ck_assert_uint_eq(happend_shard(c, &l, "zed", "a:2", &sh, &epoch, &seen), 2);
    ck_assert_uint_eq(happend_shard(c, &l, "amy", "a:3", &sh, &epoch, &seen), 1);
    redisReply *x = redisCommand(c, "EXISTS t:epoch");
    ck_assert_int_eq(x->integer, 0); /* a shard keeps no epoch */
    freeReplyObject(x);
    hread h = hget_shard(c, &l, "zed", 1, 777, &sh);
    ck_assert(!h.p.resync && h.p.epoch == 777 && h.p.n == 1 && h.p.items[0].seq == 2);
    hread_free(&h);
    h = hget_shard(c, &l, "zed", 1, 778, &sh); /* another epoch: resync, as without shards */
    ck_assert(h.p.resync);
    hread_free(&h);

    /* the shard comes back without zed's second append (a replica that lagged) */
    x = redisCommand(c, "SET t:appends 2");
    freeReplyObject(x);
    x = redisCommand(c, "SET t:seq:u:zed 1");
    freeReplyObject(x);
    x = redisCommand(c, "XDEL t:h:u:zed 2-0");
    freeReplyObject(x);

    /* the next append sees the count go back: generation 1, whose seqs start above 2^32 */
    ck_assert_uint_eq(happend_shard(c, &l, "zed", "a:4", &sh, &epoch, &seen), G1 + 1);
    ck_assert_uint_eq(epoch, 777); /* the epoch stays: other shards lost nothing */
    ck_assert_str_eq(get(c, "GET %s%s", "t:gen", ""), "1");
    sh.gen_seen = 1; /* what the router learns from the seq (rt_ctx_saw_seq) */

    /* zed's client at 2 (lost) resyncs; so does amy's at 1, on the same shard, whose stream
     * lost nothing but cannot tell */
    h = hget_shard(c, &l, "zed", 2, 777, &sh);
    ck_assert(h.p.resync);
    hread_free(&h);
    h = hget_shard(c, &l, "amy", 1, 777, &sh);
    ck_assert(h.p.resync);
    hread_free(&h);
    /* positions of the new generation do not */
    h = hget_shard(c, &l, "zed", G1 + 1, 777, &sh);
    ck_assert(!h.p.resync && h.p.head == G1 + 1 && h.p.n == 0);
    hread_free(&h);
    ck_assert_uint_eq(happend_shard(c, &l, "amy", "a:5", &sh, &epoch, &seen), G1 + 1);

    /* the shard loses its generation key as well (wiped): the router's own count and
     * generation keep the numbering above what clients hold */
    x = redisCommand(c, "FLUSHALL");
    freeReplyObject(x);
    const uint64_t G2 = UINT64_C(2) << 32;
    ck_assert_uint_eq(happend_shard(c, &l, "zed", "a:6", &sh, &epoch, &seen), G2 + 1);
    ck_assert_str_eq(get(c, "GET %s%s", "t:gen", ""), "2");
    /* without a loss a router that saw generation 2 keeps it */
    sh.gen_seen = 2;
    ck_assert_uint_eq(happend_shard(c, &l, "zed", "a:7", &sh, &epoch, &seen), G2 + 2);

    redisFree(c);
    redis_stop();
}
END_TEST

static long long pttl(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "PTTL %s", key);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* A channel's stream is trimmed and expires as its namespace says, in the same call that
 * keeps a user's stream by the router's settings. */
START_TEST(lua_history_per_namespace)
{
    redis_start();
    redisContext *c = redis_wait();
    wsg_ns_table *t;
    char err[256];
    ck_assert_int_eq(wsg_ns_table_load("{\"chat\":{\"history_size\":3,\"history_ttl\":"
                                       "\"20s\"}}",
                                       &t, err, sizeof(err)),
                     0);
    rt_hist_limits l = {.max_len = 100, .ttl_ms = 60000, .page = 100, .namespaces = t};
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, "{}", 2), RT_FRAME_OK);
    uint64_t appends = 0, epoch = 0;
    for (int i = 1; i <= 5; i++) {
        rt_cmd a;
        rt_cmd_init(&a);
        char job[16];
        snprintf(job, sizeof(job), "job-n%d", i);
        ck_assert_int_eq(rt_hist_append_args(&a, "t", &f, 1, job, appends, NULL), 0);
        ck_assert_int_eq(rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_CHANNEL,
                                            "chat:room", RT_APPEND_OFFLINE),
                         0);
        ck_assert_int_eq(rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "alice",
                                            RT_APPEND_OFFLINE),
                         0);
        redisReply *r = heval(c, RT_HSCRIPT_APPEND, &a);
        uint64_t seqs[2];
        ck_assert_int_eq(rt_hist_parse_append(r, 2, &epoch, &appends, seqs), 0);
        ck_assert(seqs[0] == (uint64_t)i && seqs[1] == (uint64_t)i);
        freeReplyObject(r);
        rt_cmd_free(&a);
    }
    rt_frame_free(&f);
    ck_assert_int_eq(rint_cmd(c, "XLEN t:h:c:chat:room"), 3);
    ck_assert_int_eq(rint_cmd(c, "XLEN t:h:u:alice"), 5);
    long long ct = pttl(c, "t:h:c:chat:room"), ut = pttl(c, "t:h:u:alice");
    ck_assert(ct > 15000 && ct <= 20000);
    ck_assert(ut > 55000 && ut <= 60000);
    ck_assert_int_eq(rint_cmd(c, "EXISTS t:hd:c:chat:room"), 0); /* no delivered mark */
    /* a read from the start resyncs to the oldest of the three kept */
    rt_hist_req q = {.kind = WSGATE__STREAM_KIND__STREAM_CHANNEL, .name = "chat:room",
                     .has_after = 1, .after = 0, .max_items = 100};
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_read_args(&a, "t", &l, &q, 1 << 20, NULL), 0);
    hread h;
    h.r = heval(c, RT_HSCRIPT_READ, &a);
    ck_assert_int_eq(rt_hist_parse_read(h.r, 0, &h.p), 0);
    rt_cmd_free(&a);
    ck_assert(h.p.head == 5 && h.p.resync && h.p.n == 3 && h.p.items[0].seq == 3);
    hread_free(&h);
    /* a void of a channel's append expires with the channel's history */
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_void_args(&a, "t"), 0);
    ck_assert_int_eq(
        rt_hist_void_add(&a, &l, WSGATE__STREAM_KIND__STREAM_CHANNEL, "chat:room", "job-n5"), 0);
    redisReply *r = heval(c, RT_HSCRIPT_VOID, &a);
    uint64_t vs;
    ck_assert_int_eq(rt_hist_parse_void(r, 1, &vs), 0);
    ck_assert_uint_eq(vs, 5);
    freeReplyObject(r);
    rt_cmd_free(&a);
    long long vt = pttl(c, "t:hv:c:chat:room");
    ck_assert(vt > 15000 && vt <= 20000);
    wsg_ns_table_free(t);
    redisFree(c);
    redis_stop();
}
END_TEST

/* The seen markers the registry scripts set, and the append that keeps an offline message only
 * for a user with one: checked and appended in one script call. */
START_TEST(lua_seen_marker)
{
    redis_start();
    redisContext *c = redis_wait();
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    /* an OPEN marks its user for the seen TTL (60 s here); nobody else is marked */
    ck_assert_int_eq(conn_call(c, 0, "gw1", 1, 1, 1, "alice", &pl), RT_SCRIPT_APPLIED);
    long long t = pttl(c, "t:seen:alice");
    ck_assert(t > 55000 && t <= 60000);
    ck_assert_int_eq(pttl(c, "t:seen:mallory"), -2);
    /* a CLOSE marks it again: the user had a connection until now */
    redisReply *x = redisCommand(c, "PEXPIRE t:seen:alice 10");
    freeReplyObject(x);
    ck_assert_int_eq(conn_call(c, 1, "gw1", 1, 2, 1, "alice", &pl), RT_SCRIPT_APPLIED);
    t = pttl(c, "t:seen:alice");
    ck_assert(t > 55000 && t <= 60000);
    /* so does a purge of a node (its users' connections ended) */
    ck_assert_int_eq(conn_call(c, 0, "gw1", 1, 3, 2, "bob", &pl), RT_SCRIPT_APPLIED);
    x = redisCommand(c, "PEXPIRE t:seen:bob 10");
    freeReplyObject(x);
    rt_cmd a;
    rt_cmd_init(&a);
    rt_script_purge_args(&a, "t", 60000, "gw1", 1);
    freeReplyObject(eval(c, RT_SCRIPT_PURGE, &a));
    rt_cmd_free(&a);
    t = pttl(c, "t:seen:bob");
    ck_assert(t > 55000 && t <= 60000);
    rt_presence_list_free(&pl);

    /* one call: alice (seen) is kept, mallory (never seen) is not and uses no seq, carol
     * (never seen, but an ordinary offline append) is kept */
    rt_hist_limits l = {.max_len = 1000, .ttl_ms = 60000, .page = 100};
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, "{\"m\":1}", 7), RT_FRAME_OK);
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_append_args(&a, "t", &f, 1, "job-s", 0, NULL), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "alice",
                                        RT_APPEND_SEEN_ONLY), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "mallory",
                                        RT_APPEND_SEEN_ONLY), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "carol",
                                        RT_APPEND_OFFLINE), 0);
    /* the broadcast stream has no user to have been seen */
    ck_assert_int_eq(rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_BROADCAST, NULL,
                                        RT_APPEND_SEEN_ONLY), -1);
    redisReply *r = heval(c, RT_HSCRIPT_APPEND, &a);
    uint64_t seqs[3], epoch, count;
    ck_assert_int_eq(rt_hist_parse_append(r, 3, &epoch, &count, seqs), 0);
    ck_assert_uint_eq(seqs[0], 1);
    ck_assert_uint_eq(seqs[1], 0);
    ck_assert_uint_eq(seqs[2], 1);
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_frame_free(&f);
    x = redisCommand(c, "EXISTS t:h:u:mallory t:seq:u:mallory t:hd:u:mallory");
    ck_assert_int_eq(x->integer, 0); /* not a byte stored for mallory */
    freeReplyObject(x);
    x = redisCommand(c, "XLEN t:h:u:alice");
    ck_assert_int_eq(x->integer, 1);
    freeReplyObject(x);
    /* the marker expires with the TTL: then alice is unknown too */
    x = redisCommand(c, "DEL t:seen:alice");
    freeReplyObject(x);
    uint64_t none = 0;
    ck_assert_int_eq(rt_frame_from_payload(&f, "{}", 2), RT_FRAME_OK);
    rt_cmd_init(&a);
    rt_hist_append_args(&a, "t", &f, 1, "job-t", none, NULL);
    rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_USER, "alice", RT_APPEND_SEEN_ONLY);
    r = heval(c, RT_HSCRIPT_APPEND, &a);
    ck_assert_int_eq(rt_hist_parse_append(r, 1, &epoch, &count, seqs), 0);
    ck_assert_uint_eq(seqs[0], 0);
    freeReplyObject(r);
    rt_cmd_free(&a);
    rt_frame_free(&f);
    redisFree(c);
    redis_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_script");
    TCase *tc = tcase_create("script");
    tcase_add_test(tc, redis_url_parse);
    tcase_add_test(tc, sentinel_list_parse);
    tcase_add_test(tc, parse_change_replies);
    tcase_add_test(tc, load_snapshot_reply);
    tcase_add_test(tc, args_and_rewrite_commands);
    tcase_add_test(tc, void_reply_format);
    tcase_add_test(tc, store_complete_calls_each_done);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("redis");
    tcase_set_timeout(tr, 60);
    tcase_add_test(tr, lua_scripts_exactly_once);
    tcase_add_test(tr, lua_resync_per_stream);
    tcase_add_test(tr, lua_channel_subscriptions);
    tcase_add_test(tr, store_fallback_and_rewrite);
    tcase_add_test(tr, lua_history);
    tcase_add_test(tr, lua_history_keys);
    tcase_add_test(tr, lua_history_void);
    tcase_add_test(tr, lua_history_lost_appends);
    tcase_add_test(tr, lua_history_shard_generations);
    tcase_add_test(tr, lua_history_batch);
    tcase_add_test(tr, lua_seen_marker);
    tcase_add_test(tr, lua_history_per_namespace);
    suite_add_tcase(s, tr);
    return wsg_check_run(s);
}
