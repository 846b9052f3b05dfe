/* Unit tests for the server API's operations without NATS (rt_api: disconnect, presence, info
 * and their validation), the per-user connection limit's choice of victims and its close
 * orders (rt_limit), and the router peers table (rt_peers). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_api.h"
#include "rt_capture.h"
#include "rt_ctx.h"
#include "rt_limit.h"
#include "rt_metrics.h"
#include "rt_peers.h"
#include "wsg_check.h"
#include "wsg_pb.h"

#define CID(s, counter) (((uint64_t)(s) << 56) | (uint64_t)(counter))

typedef struct fixture {
    rt_config cfg;
    wsg_metrics m;
    rt_ctx c;
    rt_peers *peers;
    rt_api *api;
} fixture;

static void setup_fx(fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->cfg.prefix = "t";
    f->cfg.node_id = "r1";
    ck_assert_int_eq(wsg_metrics_init_hist(&f->m, rt_metric_descs, rt_metric_buckets, RT_M__COUNT), 0);
    f->c.cfg = &f->cfg;
    f->c.m = &f->m;
    f->c.reg = rt_registry_new();
    f->c.batch = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    f->peers = rt_peers_new(&f->c, "r1", 111);
    f->api = rt_api_new(&f->c, NULL, f->peers);
    ck_assert(f->c.reg && f->c.batch && f->peers && f->api);
}

static void teardown_fx(fixture *f)
{
    rt_api_free(f->api);
    rt_peers_free(f->peers);
    rt_batch_free(f->c.batch);
    rt_registry_free(f->c.reg);
    wsg_metrics_free(&f->m);
}

/* One event of kind for conn (on node, epoch 1, at the node's stream position seq) of user:
 * OPEN with its connection time at_us, SUBSCRIBE to channel. */
static void conn_event(rt_registry *r, Wsgate__ConnEvent__Kind kind, const char *node,
                       uint64_t seq, uint64_t conn, const char *user, int64_t at_us,
                       const char *channel)
{
    Wsgate__Conn cn = WSGATE__CONN__INIT;
    Wsgate__Conn *pc = &cn;
    cn.conn_id = conn;
    cn.user_id = (char *)user;
    cn.connected_at_us = at_us;
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = kind;
    ev.node_id = (char *)node;
    ev.node_epoch = 1;
    ev.seq = seq;
    ev.n_conns = 1;
    ev.conns = &pc;
    ev.channel = (char *)channel;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_conn_event(r, &ev, 0, &res, NULL), 0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
}

static void open_conn(rt_registry *r, const char *node, uint64_t seq, uint64_t conn,
                      const char *user, int64_t at_us)
{
    conn_event(r, WSGATE__CONN_EVENT__KIND__OPEN, node, seq, conn, user, at_us, NULL);
}

static void sub_conn(rt_registry *r, const char *node, uint64_t seq, uint64_t conn,
                     const char *user, const char *channel)
{
    conn_event(r, WSGATE__CONN_EVENT__KIND__SUBSCRIBE, node, seq, conn, user, 0, channel);
}

/* The reply an rt_api_call produced. */
typedef struct got {
    int calls;
    uint64_t token;
    uint8_t *buf;
    size_t len;
    int null;
} got;

static void on_reply(void *arg, uint64_t token, const uint8_t *reply, size_t len)
{
    got *g = arg;
    g->calls++;
    g->token = token;
    g->null = reply == NULL;
    free(g->buf);
    g->buf = NULL;
    if (reply) {
        g->buf = malloc(len ? len : 1);
        memcpy(g->buf, reply, len);
        g->len = len;
    }
}

static Wsgate__DisconnectReply *disconnect(fixture *f, const char *user, uint32_t code,
                                           const char *reason, int final)
{
    Wsgate__DisconnectRequest rq = WSGATE__DISCONNECT_REQUEST__INIT;
    rq.user = (char *)user;
    rq.code = code;
    rq.reason = (char *)reason;
    rq.final = final;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(wsg_pb_pack(&rq.base, &buf, &len), 0);
    got g = {0};
    rt_api_call(f->api, RT_API_DISCONNECT, buf, len, on_reply, &g, 42);
    free(buf);
    ck_assert_int_eq(g.calls, 1);
    ck_assert_uint_eq(g.token, 42);
    ck_assert(!g.null);
    Wsgate__DisconnectReply *rp = wsgate__disconnect_reply__unpack(NULL, g.len, g.buf);
    ck_assert_ptr_nonnull(rp);
    ck_assert_int_eq(rt_api_reply_outcome(RT_API_DISCONNECT, g.buf, g.len),
                     *rp->error ? RT_API_OUTCOME_REJECTED : RT_API_OUTCOME_OK);
    free(g.buf);
    return rp;
}

START_TEST(disconnect_sends_close_orders)
{
    fixture f;
    setup_fx(&f);
    open_conn(f.c.reg, "gw1", 1, CID(0, 1), "alice", 100);
    open_conn(f.c.reg, "gw1", 2, CID(0, 2), "alice", 200);
    open_conn(f.c.reg, "gw2", 1, CID(0, 7), "alice", 300);
    open_conn(f.c.reg, "gw2", 2, CID(0, 8), "bob", 400);
    Wsgate__DisconnectReply *rp = disconnect(&f, "alice", 0, "bye", 0);
    ck_assert_str_eq(rp->error, "");
    ck_assert_uint_eq(rp->connections, 3);
    ck_assert_uint_eq(rp->nodes, 2);
    wsgate__disconnect_reply__free_unpacked(rp, NULL);
    capture cap = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(f.c.batch, capture_fn, &cap, NULL), 2);
    size_t total = 0;
    for (size_t i = 0; i < cap.n; i++) {
        ck_assert_uint_eq(cap.nd[i]->n_items, 1);
        const Wsgate__NodeDelivery__Item *it = cap.nd[i]->items[0];
        ck_assert_uint_eq(it->close_code, 4003); /* code 0: 4003 */
        ck_assert_str_eq(it->close_reason, "bye");
        ck_assert_uint_eq(it->payload.len, 0);
        ck_assert_int_eq(it->stream, WSGATE__STREAM_KIND__STREAM_NONE);
        ck_assert(!it->all);
        total += it->n_conn_ids;
        ck_assert_uint_eq(cap.nd[i]->node_epoch, 1);
    }
    ck_assert_uint_eq(total, 3);
    capture_free(&cap);
    /* an explicit code, and final overriding it */
    rp = disconnect(&f, "bob", 1001, "", 0);
    ck_assert_uint_eq(rp->connections, 1);
    wsgate__disconnect_reply__free_unpacked(rp, NULL);
    rp = disconnect(&f, "bob", 1001, "", 1);
    wsgate__disconnect_reply__free_unpacked(rp, NULL);
    ck_assert_uint_eq(rt_batch_flush(f.c.batch, capture_fn, &cap, NULL), 1);
    ck_assert_uint_eq(cap.nd[0]->n_items, 2);
    ck_assert_uint_eq(cap.nd[0]->items[0]->close_code, 1001);
    ck_assert_uint_eq(cap.nd[0]->items[1]->close_code, 4003);
    capture_free(&cap);
    /* nobody: no order, no error */
    rp = disconnect(&f, "carol", 0, "", 0);
    ck_assert_str_eq(rp->error, "");
    ck_assert_uint_eq(rp->connections, 0);
    wsgate__disconnect_reply__free_unpacked(rp, NULL);
    ck_assert_uint_eq(rt_batch_flush(f.c.batch, capture_fn, &cap, NULL), 0);
    teardown_fx(&f);
}
END_TEST

START_TEST(disconnect_validates)
{
    fixture f;
    setup_fx(&f);
    open_conn(f.c.reg, "gw1", 1, CID(0, 1), "alice", 100);
    char long_reason[125];
    memset(long_reason, 'a', 124); /* one byte over the 123 a close frame can carry */
    long_reason[124] = '\0';
    struct {
        const char *user;
        uint32_t code;
        const char *reason;
        const char *error;
    } cases[] = {
        {"", 0, "", "bad_user"},
        {"alice", 999, "", "bad_code"},
        {"alice", 1005, "", "bad_code"},
        {"alice", 5000, "", "bad_code"},
        {"alice", 3000, "", "bad_code"},
        {"alice", 4000, "\xff", "bad_reason"},
        {"alice", 4000, long_reason, "bad_reason"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Wsgate__DisconnectReply *rp = disconnect(&f, cases[i].user, cases[i].code,
                                                 cases[i].reason, 0);
        ck_assert_str_eq(rp->error, cases[i].error);
        ck_assert_uint_eq(rp->connections, 0);
        wsgate__disconnect_reply__free_unpacked(rp, NULL);
    }
    /* every allowed code passes */
    uint32_t ok[] = {1000, 1001, 1008, 1011, 1012, 1013, 4000, 4999};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        Wsgate__DisconnectReply *rp = disconnect(&f, "alice", ok[i], "", 0);
        ck_assert_str_eq(rp->error, "");
        wsgate__disconnect_reply__free_unpacked(rp, NULL);
    }
    /* undecodable */
    got g = {0};
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    rt_api_call(f.api, RT_API_DISCONNECT, junk, sizeof(junk), on_reply, &g, 1);
    ck_assert_int_eq(g.calls, 1);
    Wsgate__DisconnectReply *rp = wsgate__disconnect_reply__unpack(NULL, g.len, g.buf);
    ck_assert_str_eq(rp->error, "decode");
    ck_assert_int_eq(rt_api_reply_outcome(RT_API_DISCONNECT, g.buf, g.len),
                     RT_API_OUTCOME_REJECTED);
    wsgate__disconnect_reply__free_unpacked(rp, NULL);
    free(g.buf);
    capture cap = {.n = 0};
    rt_batch_flush(f.c.batch, capture_fn, &cap, NULL);
    capture_free(&cap);
    teardown_fx(&f);
}
END_TEST

static Wsgate__PresenceReply *presence(fixture *f, const char *user, const char *channel)
{
    Wsgate__PresenceRequest rq = WSGATE__PRESENCE_REQUEST__INIT;
    if (user) {
        rq.target_case = WSGATE__PRESENCE_REQUEST__TARGET_USER;
        rq.user = (char *)user;
    } else if (channel) {
        rq.target_case = WSGATE__PRESENCE_REQUEST__TARGET_CHANNEL;
        rq.channel = (char *)channel;
    }
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(wsg_pb_pack(&rq.base, &buf, &len), 0);
    got g = {0};
    rt_api_call(f->api, RT_API_PRESENCE, buf, len, on_reply, &g, 7);
    free(buf);
    ck_assert_int_eq(g.calls, 1);
    Wsgate__PresenceReply *rp = wsgate__presence_reply__unpack(NULL, g.len, g.buf);
    ck_assert_ptr_nonnull(rp);
    free(g.buf);
    return rp;
}

START_TEST(presence_from_registry)
{
    fixture f;
    setup_fx(&f);
    open_conn(f.c.reg, "gw1", 1, CID(0, 1), "alice", 1700000000000001);
    open_conn(f.c.reg, "gw2", 1, CID(0, 9), "alice", 1700000000000002);
    sub_conn(f.c.reg, "gw1", 2, CID(0, 1), "alice", "room");
    sub_conn(f.c.reg, "gw1", 3, CID(0, 1), "alice", "news");
    Wsgate__PresenceReply *rp = presence(&f, "alice", NULL);
    ck_assert_str_eq(rp->error, "");
    ck_assert(rp->online);
    ck_assert_uint_eq(rp->n_connections, 2);
    int seen = 0;
    for (size_t i = 0; i < rp->n_connections; i++) {
        const Wsgate__ConnInfo *ci = rp->connections[i];
        /* each connection with its own channels, in any order */
        if (!strcmp(ci->node_id, "gw1") && ci->conn_id == CID(0, 1) &&
            ci->connected_at_us == 1700000000000001 && ci->n_channels == 2 &&
            (!strcmp(ci->channels[0], "room") || !strcmp(ci->channels[1], "room")) &&
            (!strcmp(ci->channels[0], "news") || !strcmp(ci->channels[1], "news")))
            seen |= 1;
        if (!strcmp(ci->node_id, "gw2") && ci->conn_id == CID(0, 9) &&
            ci->connected_at_us == 1700000000000002 && ci->n_channels == 0)
            seen |= 2;
    }
    ck_assert_int_eq(seen, 3);
    wsgate__presence_reply__free_unpacked(rp, NULL);
    rp = presence(&f, "nobody", NULL);
    ck_assert_str_eq(rp->error, "");
    ck_assert(!rp->online);
    ck_assert_uint_eq(rp->n_connections, 0);
    wsgate__presence_reply__free_unpacked(rp, NULL);
    rp = presence(&f, "", NULL);
    ck_assert_str_eq(rp->error, "bad_user");
    wsgate__presence_reply__free_unpacked(rp, NULL);
    rp = presence(&f, NULL, "bad channel!");
    ck_assert_str_eq(rp->error, "bad_channel");
    wsgate__presence_reply__free_unpacked(rp, NULL);
    rp = presence(&f, NULL, "room");
    ck_assert_str_eq(rp->error, "");
    ck_assert_uint_eq(rp->n_users, 1);
    ck_assert_str_eq(rp->users[0], "alice");
    ck_assert_uint_eq(rp->connection_count, 1);
    wsgate__presence_reply__free_unpacked(rp, NULL);
    rp = presence(&f, NULL, "empty");
    ck_assert_str_eq(rp->error, "");
    ck_assert_uint_eq(rp->n_users, 0);
    wsgate__presence_reply__free_unpacked(rp, NULL);
    rp = presence(&f, NULL, NULL);
    ck_assert_str_eq(rp->error, "no_target");
    wsgate__presence_reply__free_unpacked(rp, NULL);
    teardown_fx(&f);
}
END_TEST

/* A RESYNC carries each connection's time too: presence shows it, replaced by a later set. */
START_TEST(presence_after_resync)
{
    fixture f;
    setup_fx(&f);
    Wsgate__Conn cn[2] = {WSGATE__CONN__INIT, WSGATE__CONN__INIT};
    Wsgate__Conn *pc[2] = {&cn[0], &cn[1]};
    cn[0].conn_id = CID(2, 1);
    cn[0].user_id = "zoe";
    cn[0].connected_at_us = 111;
    cn[1].conn_id = CID(2, 2);
    cn[1].user_id = "zoe";
    cn[1].connected_at_us = 222;
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = WSGATE__CONN_EVENT__KIND__RESYNC;
    ev.node_id = "gw1";
    ev.node_epoch = 1;
    ev.stream = 2;
    ev.seq = 1;
    ev.n_conns = 2;
    ev.conns = pc;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_conn_event(f.c.reg, &ev, 0, &res, NULL), 0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
    Wsgate__PresenceReply *rp = presence(&f, "zoe", NULL);
    ck_assert_uint_eq(rp->n_connections, 2);
    int64_t sum = 0;
    for (size_t i = 0; i < rp->n_connections; i++)
        sum += rp->connections[i]->connected_at_us;
    ck_assert_int_eq(sum, 333);
    wsgate__presence_reply__free_unpacked(rp, NULL);
    /* the next set names one connection with a corrected time */
    cn[0].connected_at_us = 100;
    ev.seq = 2;
    ev.n_conns = 1;
    ck_assert_int_eq(rt_registry_conn_event(f.c.reg, &ev, 0, &res, NULL), 0);
    rp = presence(&f, "zoe", NULL);
    ck_assert_uint_eq(rp->n_connections, 1);
    ck_assert_int_eq(rp->connections[0]->connected_at_us, 100);
    wsgate__presence_reply__free_unpacked(rp, NULL);
    teardown_fx(&f);
}
END_TEST

START_TEST(info_lists_nodes_and_routers)
{
    fixture f;
    setup_fx(&f);
    Wsgate__NodeHeartbeat hb = WSGATE__NODE_HEARTBEAT__INIT;
    hb.node_id = "gw1";
    hb.node_epoch = 77;
    hb.connections = 5;
    hb.draining = 1;
    hb.interval_ms = 1000;
    hb.frames_sent = 1234;
    hb.frames_received = 56;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_heartbeat(f.c.reg, &hb, 0, &res, NULL), 0);
    ck_assert_int_eq(rt_peers_heard(f.peers, "r2", 222, 2000, 7, 0), 0);
    /* its own count: every kind of wsgate_router_routed_total */
    wsg_metrics_add(&f.m, RT_M_ROUTED_SEND_MESSAGE, 3);
    wsg_metrics_add(&f.m, RT_M_ROUTED_DELIVER, 2);
    got g = {0};
    rt_api_call(f.api, RT_API_INFO, NULL, 0, on_reply, &g, 3);
    ck_assert_int_eq(g.calls, 1);
    Wsgate__InfoReply *rp = wsgate__info_reply__unpack(NULL, g.len, g.buf);
    ck_assert_ptr_nonnull(rp);
    ck_assert_str_eq(rp->error, "");
    ck_assert_uint_eq(rp->n_nodes, 1);
    ck_assert_str_eq(rp->nodes[0]->node_id, "gw1");
    ck_assert_uint_eq(rp->nodes[0]->epoch, 77);
    ck_assert_uint_eq(rp->nodes[0]->connections, 5);
    ck_assert(rp->nodes[0]->draining);
    ck_assert_uint_eq(rp->nodes[0]->frames_sent, 1234);
    ck_assert_uint_eq(rp->nodes[0]->frames_received, 56);
    ck_assert_uint_eq(rp->n_routers, 2);
    ck_assert_str_eq(rp->routers[0]->router_id, "r1");
    ck_assert(rp->routers[0]->self);
    ck_assert_uint_eq(rp->routers[0]->heartbeat_age_ms, 0);
    ck_assert_int_eq(rp->routers[0]->started_at_us, 111);
    ck_assert_uint_eq(rp->routers[0]->routed, 5);
    ck_assert_str_eq(rp->routers[1]->router_id, "r2");
    ck_assert(!rp->routers[1]->self);
    ck_assert_int_eq(rp->routers[1]->started_at_us, 222);
    ck_assert_uint_eq(rp->routers[1]->routed, 7);
    wsgate__info_reply__free_unpacked(rp, NULL);
    free(g.buf);
    teardown_fx(&f);
}
END_TEST

static void victims_are(fixture *f, size_t limit, rt_limit_policy pol, size_t n,
                        const uint64_t *want)
{
    rt_limit_victim *v;
    ck_assert_uint_eq(rt_limit_victims(f->c.reg, "alice", limit, pol, &v), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(v[i].conn_id, want[i]);
    free(v);
}

START_TEST(limit_chooses_victims)
{
    fixture f;
    setup_fx(&f);
    /* ages: c3 oldest; c1 and c2 tie (gw1 < gw2 breaks it); c4 newest */
    open_conn(f.c.reg, "gw2", 1, CID(0, 2), "alice", 500);
    open_conn(f.c.reg, "gw1", 1, CID(0, 1), "alice", 500);
    open_conn(f.c.reg, "gw1", 2, CID(0, 3), "alice", 100);
    open_conn(f.c.reg, "gw2", 2, CID(0, 4), "alice", 900);
    victims_are(&f, 4, RT_LIMIT_OLDEST, 0, NULL);
    victims_are(&f, 2, RT_LIMIT_OLDEST, 2, (uint64_t[]){CID(0, 3), CID(0, 1)});
    victims_are(&f, 3, RT_LIMIT_OLDEST, 1, (uint64_t[]){CID(0, 3)});
    victims_are(&f, 2, RT_LIMIT_NEWEST, 2, (uint64_t[]){CID(0, 2), CID(0, 4)});
    victims_are(&f, 1, RT_LIMIT_NEWEST, 3, (uint64_t[]){CID(0, 1), CID(0, 2), CID(0, 4)});
    /* a tie on time and node: conn id decides */
    open_conn(f.c.reg, "gw2", 3, CID(0, 0), "alice", 500);
    victims_are(&f, 4, RT_LIMIT_OLDEST, 1, (uint64_t[]){CID(0, 3)});
    victims_are(&f, 2, RT_LIMIT_OLDEST, 3, (uint64_t[]){CID(0, 3), CID(0, 1), CID(0, 0)});

    /* enforce: 4009 close orders for the surplus, counted; off when the limit is 0 */
    ck_assert_uint_eq(rt_limit_enforce(&f.c, "alice"), 0);
    f.cfg.user_conn_limit = 3;
    ck_assert_uint_eq(rt_limit_enforce(&f.c, "alice"), 2);
    ck_assert_int_eq(wsg_metrics_get(&f.m, RT_M_USER_LIMIT_CLOSES), 2);
    capture cap = {.n = 0};
    /* the two oldest: c3, then c1 (gw1 before gw2 at the same time), both on gw1 */
    ck_assert_uint_eq(rt_batch_flush(f.c.batch, capture_fn, &cap, NULL), 1);
    ck_assert_str_eq(cap.nd[0]->node_id, "gw1");
    const Wsgate__NodeDelivery__Item *it = cap.nd[0]->items[0];
    ck_assert_uint_eq(it->close_code, 4009);
    ck_assert_str_eq(it->close_reason, "connection limit");
    ck_assert_uint_eq(it->n_conn_ids, 2);
    ck_assert_uint_eq(it->conn_ids[0], CID(0, 3));
    ck_assert_uint_eq(it->conn_ids[1], CID(0, 1));
    capture_free(&cap);
    ck_assert_uint_eq(rt_limit_enforce(&f.c, "bob"), 0);
    teardown_fx(&f);
}
END_TEST

START_TEST(peers_expire_and_leave)
{
    rt_peers *p = rt_peers_new(NULL, "r1", 1);
    ck_assert_int_eq(rt_peers_heard(p, "r1", 1, 2000, 0, 0), 1); /* itself */
    ck_assert_int_eq(rt_peers_heard(p, "bad id!", 1, 2000, 0, 0), 1);
    ck_assert_int_eq(rt_peers_heard(p, "r2", 5, 2000, 0, 0), 0);
    ck_assert_int_eq(rt_peers_heard(p, "r3", 6, 1000, 0, 0), 0);
    ck_assert_uint_eq(rt_peers_count(p), 2);
    /* 3 x interval: r3 at 3 s, r2 at 6 s */
    ck_assert_uint_eq(rt_peers_expire(p, 3000000), 0);
    ck_assert_uint_eq(rt_peers_expire(p, 3000001), 1);
    ck_assert_uint_eq(rt_peers_count(p), 1);
    ck_assert_int_eq(rt_peers_heard(p, "r2", 5, 2000, 0, 5000000), 0); /* heard again */
    ck_assert_uint_eq(rt_peers_expire(p, 10000000), 0);
    /* interval 0: it is stopping */
    ck_assert_int_eq(rt_peers_heard(p, "r2", 5, 0, 0, 10000000), 0);
    ck_assert_uint_eq(rt_peers_count(p), 0);
    rt_peers_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_api");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, disconnect_sends_close_orders);
    tcase_add_test(tc, disconnect_validates);
    tcase_add_test(tc, presence_from_registry);
    tcase_add_test(tc, presence_after_resync);
    tcase_add_test(tc, info_lists_nodes_and_routers);
    tcase_add_test(tc, limit_chooses_victims);
    tcase_add_test(tc, peers_expire_and_leave);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
