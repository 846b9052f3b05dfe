/* Unit tests for rt_route: send_message resolution and its frame, user_offline errors, broadcast
 * to live nodes only, every Delivery reject reason, users dedupe, connection targets. The
 * registry and batch are real; NodeDeliveries are captured at flush. */
#include <check.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_batch.h"
#include "rt_registry.h"
#include "rt_route.h"
#include "wsg_pb.h"

#define MAX_OUT 32
#define NOW INT64_C(1700000000999000)

typedef struct capture {
    Wsgate__NodeDelivery *nd[MAX_OUT];
    size_t n;
} capture;

static int capture_fn(const char *node_id, const uint8_t *data, size_t len, void *arg)
{
    capture *c = arg;
    ck_assert_uint_lt(c->n, MAX_OUT);
    Wsgate__NodeDelivery *nd = wsgate__node_delivery__unpack(NULL, len, data);
    ck_assert_ptr_nonnull(nd);
    ck_assert_str_eq(nd->node_id, node_id);
    c->nd[c->n++] = nd;
    return 0;
}

static void capture_free(capture *c)
{
    for (size_t i = 0; i < c->n; i++)
        wsgate__node_delivery__free_unpacked(c->nd[i], NULL);
    c->n = 0;
}

static const Wsgate__NodeDelivery *for_node(const capture *c, const char *node)
{
    const Wsgate__NodeDelivery *found = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->nd[i]->node_id, node)) {
            ck_assert_ptr_null(found); /* one NodeDelivery per node per flush */
            found = c->nd[i];
        }
    return found;
}

static void item_is(const Wsgate__NodeDelivery__Item *it, const char *payload)
{
    ck_assert_uint_eq(it->payload.len, strlen(payload));
    ck_assert_mem_eq(it->payload.data, payload, it->payload.len);
}

static void open_conn(rt_registry *r, const char *node, uint64_t epoch, uint64_t seq,
                      uint64_t conn, const char *user)
{
    Wsgate__Conn c = WSGATE__CONN__INIT;
    Wsgate__Conn *pc = &c;
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    c.conn_id = conn;
    c.user_id = (char *)user;
    ev.kind = WSGATE__CONN_EVENT__KIND__OPEN;
    ev.node_id = (char *)node;
    ev.node_epoch = epoch;
    ev.seq = seq;
    ev.n_conns = 1;
    ev.conns = &pc;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_conn_event(r, &ev, 0, &res, NULL), 0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
}

/* alice: gw1/1, gw2/7; bob: gw1/2; gw3 is live with nobody */
static rt_registry *fixture(void)
{
    rt_registry *r = rt_registry_new();
    open_conn(r, "gw1", 11, 1, 1, "alice");
    open_conn(r, "gw2", 22, 1, 7, "alice");
    open_conn(r, "gw1", 11, 2, 2, "bob");
    Wsgate__NodeHeartbeat hb = WSGATE__NODE_HEARTBEAT__INIT;
    hb.node_id = "gw3";
    hb.node_epoch = 33;
    hb.interval_ms = 2000;
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_heartbeat(r, &hb, 0, &res, NULL), 0);
    return r;
}

/* Packs an InboundFrame around a JSON text. */
static uint8_t *inbound(const char *type, const char *user, const char *json, size_t *len)
{
    Wsgate__InboundFrame f = WSGATE__INBOUND_FRAME__INIT;
    f.node_id = "gw1";
    f.node_epoch = 11;
    f.conn_id = 2;
    f.user_id = (char *)user;
    f.type = (char *)type;
    f.payload.data = (uint8_t *)json;
    f.payload.len = strlen(json);
    f.received_at_us = INT64_C(1700000000123456);
    uint8_t *buf;
    ck_assert_int_eq(wsg_pb_pack(&f.base, &buf, len), 0);
    return buf;
}

static rt_route_status send_msg(rt_registry *r, rt_batch *b, const char *json,
                                rt_route_result *res)
{
    size_t len;
    uint8_t *buf = inbound("send_message", "bob", json, &len);
    rt_route_status st = rt_route_send_message(r, b, buf, len, NOW, res);
    free(buf);
    return st;
}

START_TEST(send_message_reaches_every_connection)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    ck_assert_int_eq(send_msg(r, b,
                              "{\"type\":\"send_message\",\"target_user\":\"alice\",\"content\":"
                              "\"hi \\u00e9\",\"id\":3}",
                              &res),
                     RT_ROUTED);
    ck_assert_uint_eq(res.targets, 2);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    const char *want = "{\"type\":\"message\",\"from\":\"bob\",\"content\":\"hi \xc3\xa9\","
                       "\"ts\":1700000000123}";
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1"), *g2 = for_node(&c, "gw2");
    ck_assert_ptr_nonnull(g1);
    ck_assert_ptr_nonnull(g2);
    ck_assert_uint_eq(g1->node_epoch, 11);
    ck_assert_uint_eq(g2->node_epoch, 22);
    ck_assert_uint_eq(g1->n_items, 1);
    item_is(g1->items[0], want);
    ck_assert_uint_eq(g1->items[0]->n_conn_ids, 1);
    ck_assert_uint_eq(g1->items[0]->conn_ids[0], 1);
    ck_assert_int_eq(g1->items[0]->created_at_us, INT64_C(1700000000123456));
    item_is(g2->items[0], want);
    ck_assert_uint_eq(g2->items[0]->conn_ids[0], 7);
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

START_TEST(send_message_user_offline)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    ck_assert_int_eq(send_msg(r, b,
                              "{\"type\":\"send_message\",\"target_user\":\"zoe\",\"content\":\"x\","
                              "\"id\":\"m-1\"}",
                              &res),
                     RT_USER_OFFLINE);
    ck_assert_int_eq(send_msg(r, b,
                              "{\"type\":\"send_message\",\"target_user\":\"zoe\",\"content\":\"x\","
                              "\"id\":42}",
                              &res),
                     RT_USER_OFFLINE);
    /* an id that is neither string nor number is not echoed */
    ck_assert_int_eq(send_msg(r, b,
                              "{\"type\":\"send_message\",\"target_user\":\"zoe\",\"content\":\"x\","
                              "\"id\":{\"a\":1}}",
                              &res),
                     RT_USER_OFFLINE);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1");
    ck_assert_ptr_nonnull(g1);
    ck_assert_uint_eq(g1->n_items, 3);
    const char *pre = "{\"type\":\"error\",\"code\":\"user_offline\",\"message\":\"user is not "
                      "connected\",\"target_user\":\"zoe\"";
    char want[256];
    snprintf(want, sizeof(want), "%s,\"ref\":\"m-1\"}", pre);
    item_is(g1->items[0], want);
    snprintf(want, sizeof(want), "%s,\"ref\":42}", pre);
    item_is(g1->items[1], want);
    snprintf(want, sizeof(want), "%s}", pre);
    item_is(g1->items[2], want);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(g1->items[i]->n_conn_ids, 1);
        ck_assert_uint_eq(g1->items[i]->conn_ids[0], 2); /* the sender's connection */
    }
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

START_TEST(send_message_invalid_frames)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    char long_target[200];
    snprintf(long_target, sizeof(long_target),
             "{\"type\":\"send_message\",\"target_user\":\"%0129d\",\"content\":\"x\"}", 0);
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"type\":\"broadcast\",\"target_user\":\"alice\",\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"target_user\":\"\",\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"target_user\":7,\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"target_user\":\"alice\"}",
        "{\"type\":\"send_message\",\"target_user\":\"alice\",\"content\":5}",
        long_target,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(send_msg(r, b, bad[i], &res), RT_REJECTED);
        ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
    }
    /* a sender without a user id */
    size_t len;
    uint8_t *buf = inbound("send_message", "",
                           "{\"type\":\"send_message\",\"target_user\":\"a\",\"content\":\"x\"}",
                           &len);
    ck_assert_int_eq(rt_route_send_message(r, b, buf, len, NOW, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
    free(buf);
    /* not protobuf */
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(rt_route_send_message(r, b, junk, sizeof(junk), NOW, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_DECODE);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 0);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

START_TEST(broadcast_to_live_nodes_only)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    size_t len;
    uint8_t *buf = inbound("broadcast", "bob", "{\"type\":\"broadcast\",\"content\":\"all\"}", &len);
    ck_assert_int_eq(rt_route_broadcast(r, b, buf, len, NOW, &res), RT_ROUTED);
    ck_assert_uint_eq(res.targets, 3);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 3);
    const char *want = "{\"type\":\"broadcast\",\"from\":\"bob\",\"content\":\"all\","
                       "\"ts\":1700000000123}";
    for (size_t i = 0; i < c.n; i++) {
        ck_assert_uint_eq(c.nd[i]->n_items, 1);
        ck_assert(c.nd[i]->items[0]->all);
        item_is(c.nd[i]->items[0], want);
    }
    capture_free(&c);

    /* gw1 and gw2 go silent: only gw3 (heard from later) still gets it */
    Wsgate__NodeHeartbeat hb = WSGATE__NODE_HEARTBEAT__INIT;
    hb.node_id = "gw3";
    hb.node_epoch = 33;
    hb.interval_ms = 2000;
    rt_ev_result er;
    rt_registry_heartbeat(r, &hb, 20 * 1000000, &er, NULL);
    ck_assert_uint_eq(rt_registry_expire(r, 25 * 1000000, 10 * 1000000, NULL, NULL), 2);
    ck_assert_int_eq(rt_route_broadcast(r, b, buf, len, NOW, &res), RT_ROUTED);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    ck_assert_str_eq(c.nd[0]->node_id, "gw3");
    capture_free(&c);

    ck_assert_uint_eq(rt_registry_expire(r, 40 * 1000000, 10 * 1000000, NULL, NULL), 1);
    ck_assert_int_eq(rt_route_broadcast(r, b, buf, len, NOW, &res), RT_UNDELIVERABLE);
    free(buf);
    buf = inbound("broadcast", "bob", "{\"type\":\"broadcast\"}", &len);
    ck_assert_int_eq(rt_route_broadcast(r, b, buf, len, NOW, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
    free(buf);
    rt_batch_flush(b, capture_fn, &c, NULL);
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

/* Packs a Delivery; the caller sets the target on d first. */
static rt_route_status deliver(rt_registry *r, rt_batch *b, Wsgate__Delivery *d,
                               const char *payload, size_t max, rt_route_result *res)
{
    if (payload) {
        d->payload.data = (uint8_t *)payload;
        d->payload.len = strlen(payload);
    }
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(wsg_pb_pack(&d->base, &buf, &len), 0);
    rt_route_status st = rt_route_deliver(r, b, buf, len, max, NOW, res);
    free(buf);
    return st;
}

START_TEST(deliver_rejects_every_reason)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;

    const uint8_t junk[] = {0x0a, 0xff, 0xff};
    ck_assert_int_eq(rt_route_deliver(r, b, junk, sizeof(junk), 1024, NOW, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_DECODE);

    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_NO_TARGET);

    d.target_case = WSGATE__DELIVERY__TARGET_BROADCAST;
    d.broadcast = 0;
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_NO_TARGET);

    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_USER;
    d.user = "";
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_NO_TARGET);

    wsgate__delivery__init(&d);
    Wsgate__ConnectionRef cref = WSGATE__CONNECTION_REF__INIT;
    cref.node_id = "";
    d.target_case = WSGATE__DELIVERY__TARGET_CONNECTION;
    d.connection = &cref;
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_NO_TARGET);

    wsgate__delivery__init(&d);
    Wsgate__UserList ul = WSGATE__USER_LIST__INIT;
    d.target_case = WSGATE__DELIVERY__TARGET_USERS;
    d.users = &ul;
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_EMPTY_USERS);

    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_USER;
    d.user = "alice";
    const char *bad_payloads[] = {"[1]", "\"s\"", "{\"a\":", "{} {}", "{\"a\":\"\xc3\x28\"}", "",
                                  "nul"};
    for (size_t i = 0; i < sizeof(bad_payloads) / sizeof(bad_payloads[0]); i++) {
        ck_assert_int_eq(deliver(r, b, &d, bad_payloads[i], 1024, &res), RT_REJECTED);
        ck_assert_int_eq(res.reason, RT_REJ_BAD_PAYLOAD);
    }
    ck_assert_int_eq(deliver(r, b, &d, "{\"a\":\"0123456789\"}", 10, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_TOO_BIG);
    /* exactly at the limit is fine */
    ck_assert_int_eq(deliver(r, b, &d, "{\"a\":\"01\"}", 10, &res), RT_ROUTED);

    /* a list longer than RT_MAX_DELIVERY_USERS */
    size_t n = RT_MAX_DELIVERY_USERS + 1;
    char **ids = malloc(n * sizeof(*ids));
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = "u";
    wsgate__delivery__init(&d);
    ul.n_user_ids = n;
    ul.user_ids = ids;
    d.target_case = WSGATE__DELIVERY__TARGET_USERS;
    d.users = &ul;
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_TOO_BIG);
    free(ids);

    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

START_TEST(deliver_targets)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    capture c = {.n = 0};

    /* users: alice twice, bob, an unknown and an invalid id; one copy per connection */
    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    Wsgate__UserList ul = WSGATE__USER_LIST__INIT;
    char *ids[] = {"alice", "bob", "alice", "ghost", ""};
    ul.n_user_ids = 5;
    ul.user_ids = ids;
    d.target_case = WSGATE__DELIVERY__TARGET_USERS;
    d.users = &ul;
    d.created_at_us = 77;
    const char *payload = "{ \"keep\" : \"spacing\" }";
    ck_assert_int_eq(deliver(r, b, &d, payload, 1024, &res), RT_ROUTED);
    ck_assert_uint_eq(res.targets, 3);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1"), *g2 = for_node(&c, "gw2");
    ck_assert_uint_eq(g1->n_items, 1);
    item_is(g1->items[0], payload); /* forwarded unchanged */
    ck_assert_uint_eq(g1->items[0]->n_conn_ids, 2);
    ck_assert(g1->items[0]->conn_ids[0] + g1->items[0]->conn_ids[1] == 3);
    ck_assert_int_eq(g1->items[0]->created_at_us, 77);
    ck_assert_uint_eq(g2->items[0]->n_conn_ids, 1);
    ck_assert_uint_eq(g2->items[0]->conn_ids[0], 7);
    capture_free(&c);

    /* connection: a known node gets it with its epoch, even for a conn id not yet seen */
    wsgate__delivery__init(&d);
    Wsgate__ConnectionRef cref = WSGATE__CONNECTION_REF__INIT;
    cref.node_id = "gw2";
    cref.conn_id = 99;
    d.target_case = WSGATE__DELIVERY__TARGET_CONNECTION;
    d.connection = &cref;
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_ROUTED);
    cref.node_id = "gw9";
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_UNDELIVERABLE);
    cref.node_id = "bad.id";
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_UNDELIVERABLE);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    ck_assert_str_eq(c.nd[0]->node_id, "gw2");
    ck_assert_uint_eq(c.nd[0]->node_epoch, 22);
    ck_assert_uint_eq(c.nd[0]->items[0]->conn_ids[0], 99);
    ck_assert_int_eq(c.nd[0]->items[0]->created_at_us, NOW); /* no created_at: now */
    capture_free(&c);

    /* user without connections; broadcast */
    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_USER;
    d.user = "ghost";
    ck_assert_int_eq(deliver(r, b, &d, "{}", 1024, &res), RT_UNDELIVERABLE);
    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_BROADCAST;
    d.broadcast = 1;
    ck_assert_int_eq(deliver(r, b, &d, "{\"b\":1}", 1024, &res), RT_ROUTED);
    ck_assert_uint_eq(res.targets, 3);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 3);
    for (size_t i = 0; i < c.n; i++)
        ck_assert(c.nd[i]->n_items == 1 && c.nd[i]->items[0]->all);
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, send_message_reaches_every_connection);
    tcase_add_test(tc, send_message_user_offline);
    tcase_add_test(tc, send_message_invalid_frames);
    tcase_add_test(tc, broadcast_to_live_nodes_only);
    tcase_add_test(tc, deliver_rejects_every_reason);
    tcase_add_test(tc, deliver_targets);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
