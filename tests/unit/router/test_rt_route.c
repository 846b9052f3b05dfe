/* Unit tests for rt_route: jobs parsed from send_message / broadcast / Delivery, their stream
 * parts, fan-out with each part's seq spliced into the frame and carried on the item, the
 * sender's answers (sent, history_unavailable, user_offline), every Delivery reject reason,
 * users dedupe, connection targets. The registry and batch are real; NodeDeliveries are
 * captured at flush. */
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
#include "rt_capture.h"
#include "wsg_check.h"

#define NOW INT64_C(1700000000999000)

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

/* Packs an InboundFrame around a JSON text, marked permitted by the gateway or not. */
static uint8_t *inbound_as(const char *type, const char *user, const char *json, int permitted,
                           size_t *len)
{
    Wsgate__InboundFrame f = WSGATE__INBOUND_FRAME__INIT;
    f.permitted = permitted;
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

static uint8_t *inbound(const char *type, const char *user, const char *json, size_t *len)
{
    return inbound_as(type, user, json, 1, len);
}

/* Fans a parsed job out as if its appends had returned seqs base, base + 1, ... in epoch 5
 * (base 0: history unavailable), then frees it. */
static rt_route_status fan(rt_registry *r, rt_batch *b, rt_job *j, uint64_t base, rt_fanout *fo)
{
    ck_assert_ptr_nonnull(j);
    for (size_t i = 0; i < j->nparts; i++) {
        j->parts[i].seq = base ? base + i : 0;
        j->parts[i].epoch = base ? 5 : 0;
    }
    rt_fanout tmp;
    rt_route_status st = rt_route_fanout(r, b, j, fo ? fo : &tmp);
    rt_job_free(j);
    return st;
}

static rt_route_status send_msg(const char *json, rt_job **j, rt_route_result *res)
{
    size_t len;
    uint8_t *buf = inbound("send_message", "bob", json, &len);
    rt_route_status st = rt_route_send_message(buf, len, NOW, j, res);
    free(buf);
    return st;
}

/* The item's stream position: stream and stream_name, and user_id (what gateways that predate
 * stream_name read) the name again for a user stream only. */
static void item_pos(const Wsgate__NodeDelivery__Item *it, Wsgate__StreamKind stream,
                     const char *name, uint64_t seq, uint64_t epoch)
{
    ck_assert_int_eq(it->stream, stream);
    ck_assert_str_eq(it->stream_name, name);
    ck_assert_str_eq(it->user_id, stream == WSGATE__STREAM_KIND__STREAM_USER ? name : "");
    ck_assert_uint_eq(it->seq, seq);
    ck_assert_uint_eq(it->epoch, epoch);
}

START_TEST(send_message_reaches_every_connection)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    rt_job *j;
    ck_assert_int_eq(send_msg("{\"type\":\"send_message\",\"target_user\":\"alice\",\"content\":"
                              "\"hi \\u00e9\",\"id\":3}",
                              &j, &res),
                     RT_ROUTED);
    ck_assert_int_eq(j->kind, RT_JOB_SEND_MESSAGE);
    ck_assert_uint_eq(j->nparts, 1);
    ck_assert_int_eq(j->parts[0].kind, WSGATE__STREAM_KIND__STREAM_USER);
    ck_assert_str_eq(j->parts[0].name, "alice");
    rt_fanout fo;
    ck_assert_int_eq(fan(r, b, j, 7, &fo), RT_ROUTED);
    ck_assert_uint_eq(fo.connections, 2);
    ck_assert_uint_eq(fo.nodes, 2);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    const char *want = "{\"type\":\"message\",\"from\":\"bob\",\"content\":\"hi \xc3\xa9\","
                       "\"ts\":1700000000123,\"seq\":7}";
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1"), *g2 = for_node(&c, "gw2");
    ck_assert_ptr_nonnull(g1);
    ck_assert_ptr_nonnull(g2);
    ck_assert_uint_eq(g1->node_epoch, 11);
    ck_assert_uint_eq(g2->node_epoch, 22);
    /* alice's copy, then the sender's (bob, gw1/2) ack */
    ck_assert_uint_eq(g1->n_items, 2);
    item_is(g1->items[0], want);
    item_pos(g1->items[0], WSGATE__STREAM_KIND__STREAM_USER, "alice", 7, 5);
    ck_assert_uint_eq(g1->items[0]->n_conn_ids, 1);
    ck_assert_uint_eq(g1->items[0]->conn_ids[0], 1);
    ck_assert_int_eq(g1->items[0]->created_at_us, INT64_C(1700000000123456));
    item_is(g1->items[1], "{\"type\":\"sent\",\"ref\":3,\"stream\":\"user\",\"target_user\":\"alice\",\"seq\":7}");
    item_pos(g1->items[1], WSGATE__STREAM_KIND__STREAM_NONE, "", 0, 0);
    ck_assert_uint_eq(g1->items[1]->conn_ids[0], 2);
    item_is(g2->items[0], want);
    ck_assert_uint_eq(g2->items[0]->conn_ids[0], 7);
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

START_TEST(send_message_answers_the_sender)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    rt_job *j;
    const char *to_zoe = "{\"type\":\"send_message\",\"target_user\":\"zoe\",\"content\":\"x\"";
    char frame[256];
    /* offline target, kept: "sent" with the id, nothing without one (or with an id that is
     * neither string nor number) */
    snprintf(frame, sizeof(frame), "%s,\"id\":\"m-1\"}", to_zoe);
    ck_assert_int_eq(send_msg(frame, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 1, NULL), RT_UNDELIVERABLE);
    snprintf(frame, sizeof(frame), "%s}", to_zoe);
    ck_assert_int_eq(send_msg(frame, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 2, NULL), RT_UNDELIVERABLE);
    snprintf(frame, sizeof(frame), "%s,\"id\":{\"a\":1}}", to_zoe);
    ck_assert_int_eq(send_msg(frame, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 3, NULL), RT_UNDELIVERABLE);
    /* offline and not kept: lost, so the sender always hears of it */
    snprintf(frame, sizeof(frame), "%s,\"id\":42}", to_zoe);
    ck_assert_int_eq(send_msg(frame, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 0, NULL), RT_UNDELIVERABLE);
    snprintf(frame, sizeof(frame), "%s}", to_zoe);
    ck_assert_int_eq(send_msg(frame, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 0, NULL), RT_UNDELIVERABLE);
    /* online but not kept: delivered live without seq; with an id, the sender is told */
    ck_assert_int_eq(send_msg("{\"type\":\"send_message\",\"target_user\":\"alice\",\"content\":"
                              "\"y\",\"id\":\"m-2\"}",
                              &j, &res),
                     RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 0, NULL), RT_ROUTED);

    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1");
    ck_assert_uint_eq(g1->n_items, 5);
    item_is(g1->items[0], "{\"type\":\"sent\",\"ref\":\"m-1\",\"stream\":\"user\",\"target_user\":\"zoe\",\"seq\":1}");
    const char *off = "{\"type\":\"error\",\"code\":\"user_offline\",\"message\":\"user is not "
                      "connected and the message could not be kept\",\"target_user\":\"zoe\"";
    char want[300];
    snprintf(want, sizeof(want), "%s,\"ref\":42}", off);
    item_is(g1->items[1], want);
    snprintf(want, sizeof(want), "%s}", off);
    item_is(g1->items[2], want);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(g1->items[i]->n_conn_ids, 1);
        ck_assert_uint_eq(g1->items[i]->conn_ids[0], 2); /* the sender's connection */
    }
    /* alice's live copy on gw1 (no seq, not kept), then the sender's error */
    item_is(g1->items[3], "{\"type\":\"message\",\"from\":\"bob\",\"content\":\"y\","
                          "\"ts\":1700000000123}");
    item_pos(g1->items[3], WSGATE__STREAM_KIND__STREAM_NONE, "", 0, 0);
    item_is(g1->items[4], "{\"type\":\"error\",\"code\":\"history_unavailable\",\"message\":"
                          "\"delivered live only; not kept for resume\",\"ref\":\"m-2\"}");
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

/* A send_message the caller refused to keep (rt_part.refused) reaches nobody, even a target that
 * has connected since, and the sender is told why, with or without an id. */
START_TEST(send_message_refused_answers)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    rt_job *j;
    rt_fanout fo;
    ck_assert_int_eq(send_msg("{\"type\":\"send_message\",\"target_user\":\"ghost\","
                              "\"content\":\"x\",\"id\":\"u-1\"}", &j, &res), RT_ROUTED);
    j->parts[0].refused = RT_REFUSE_UNKNOWN_USER;
    ck_assert_int_eq(rt_route_fanout(r, b, j, &fo), RT_UNDELIVERABLE);
    ck_assert_uint_eq(fo.connections, 0);
    rt_job_free(j);
    /* alice is online now; the refusal holds, and without an id the sender still hears */
    ck_assert_int_eq(send_msg("{\"type\":\"send_message\",\"target_user\":\"alice\","
                              "\"content\":\"y\"}", &j, &res), RT_ROUTED);
    j->parts[0].refused = RT_REFUSE_OFFLINE_QUOTA;
    ck_assert_int_eq(rt_route_fanout(r, b, j, &fo), RT_UNDELIVERABLE);
    ck_assert_uint_eq(fo.connections, 0);
    rt_job_free(j);

    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1");
    ck_assert_uint_eq(g1->n_items, 2);
    item_is(g1->items[0], "{\"type\":\"error\",\"code\":\"unknown_user\",\"message\":\"user "
                          "has not connected within the history retention; the message was not "
                          "kept\",\"target_user\":\"ghost\",\"ref\":\"u-1\"}");
    item_is(g1->items[1], "{\"type\":\"error\",\"code\":\"offline_quota\",\"message\":\"too "
                          "many bytes kept for offline users from this connection; the message "
                          "was not kept\",\"target_user\":\"alice\"}");
    for (int i = 0; i < 2; i++) {
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
    rt_route_result res;
    rt_job *j = NULL;
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"type\":\"broadcast\",\"target_user\":\"alice\",\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"target_user\":7,\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"target_user\":\"alice\"}",
        "{\"type\":\"send_message\",\"target_user\":\"alice\",\"content\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(send_msg(bad[i], &j, &res), RT_REJECTED);
        ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
        ck_assert_ptr_null(j);
    }
    /* a sender without a user id */
    size_t len;
    uint8_t *buf = inbound("send_message", "",
                           "{\"type\":\"send_message\",\"target_user\":\"a\",\"content\":\"x\"}",
                           &len);
    ck_assert_int_eq(rt_route_send_message(buf, len, NOW, &j, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
    free(buf);
    /* not protobuf */
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(rt_route_send_message(junk, sizeof(junk), NOW, &j, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_DECODE);
    ck_assert_ptr_null(j);
}
END_TEST

/* Item 5: a target_user that breaks the user-id rule is kept nowhere and reaches nobody; the
 * sender alone gets an invalid_field error (with its id as ref when it gave one). */
START_TEST(send_message_target_not_a_user_id)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    rt_fanout fo;
    rt_job *j = NULL;
    char long_target[200];
    snprintf(long_target, sizeof(long_target),
             "{\"type\":\"send_message\",\"target_user\":\"%0129d\",\"content\":\"x\"}", 0);
    const char *bad[] = {
        "{\"type\":\"send_message\",\"target_user\":\"\\n\",\"content\":\"x\",\"id\":\"m-9\"}",
        "{\"type\":\"send_message\",\"target_user\":\"a\\u0085\",\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"target_user\":\"a\\u007f\",\"content\":\"x\"}",
        "{\"type\":\"send_message\",\"target_user\":\"\",\"content\":\"x\"}",
        long_target,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(send_msg(bad[i], &j, &res), RT_REJECTED);
        ck_assert_int_eq(res.reason, RT_REJ_INVALID_USER);
        ck_assert_ptr_nonnull(j);
        ck_assert(j->refused);
        ck_assert_uint_eq(j->nparts, 0); /* no stream: nothing to append to the history */
        ck_assert_int_eq(rt_route_fanout(r, b, j, &fo), RT_REJECTED);
        ck_assert_uint_eq(fo.connections, 0);
        rt_job_free(j);
        j = NULL;
    }
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1");
    ck_assert_uint_eq(g1->n_items, sizeof(bad) / sizeof(bad[0]));
    const char *err = "{\"type\":\"error\",\"code\":\"invalid_field\",\"message\":\"\\\"target_user"
                      "\\\" is not a user id: 1-128 bytes of UTF-8 without control characters\"";
    char want[300];
    snprintf(want, sizeof(want), "%s,\"ref\":\"m-9\"}", err);
    item_is(g1->items[0], want);
    snprintf(want, sizeof(want), "%s}", err);
    item_is(g1->items[1], want);
    for (size_t i = 0; i < g1->n_items; i++) {
        ck_assert_uint_eq(g1->items[i]->n_conn_ids, 1);
        ck_assert_uint_eq(g1->items[i]->conn_ids[0], 2); /* bob, the sender, and no one else */
        item_pos(g1->items[i], WSGATE__STREAM_KIND__STREAM_NONE, "", 0, 0);
    }
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

START_TEST(broadcast_to_live_nodes_only)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    rt_job *j;
    rt_fanout fo;
    size_t len;
    uint8_t *buf = inbound("broadcast", "bob", "{\"type\":\"broadcast\",\"content\":\"all\"}", &len);
    ck_assert_int_eq(rt_route_broadcast(buf, len, NOW, &j, &res), RT_ROUTED);
    ck_assert_uint_eq(j->nparts, 1);
    ck_assert_int_eq(j->parts[0].kind, WSGATE__STREAM_KIND__STREAM_BROADCAST);
    ck_assert_str_eq(j->parts[0].name, ""); /* unnamed */
    ck_assert_int_eq(fan(r, b, j, 12, &fo), RT_ROUTED);
    ck_assert_uint_eq(fo.nodes, 3);
    ck_assert_uint_eq(fo.connections, 3); /* what the registry counts on those nodes */
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 3);
    const char *want = "{\"type\":\"broadcast\",\"from\":\"bob\",\"content\":\"all\","
                       "\"ts\":1700000000123,\"seq\":12}";
    for (size_t i = 0; i < c.n; i++) {
        ck_assert_uint_eq(c.nd[i]->n_items, 1); /* no answer to a broadcast's sender */
        ck_assert(c.nd[i]->items[0]->all);
        item_is(c.nd[i]->items[0], want);
        item_pos(c.nd[i]->items[0], WSGATE__STREAM_KIND__STREAM_BROADCAST, "", 12, 5);
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
    ck_assert_int_eq(rt_route_broadcast(buf, len, NOW, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 13, NULL), RT_ROUTED);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    ck_assert_str_eq(c.nd[0]->node_id, "gw3");
    capture_free(&c);

    ck_assert_uint_eq(rt_registry_expire(r, 40 * 1000000, 10 * 1000000, NULL, NULL), 1);
    ck_assert_int_eq(rt_route_broadcast(buf, len, NOW, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 14, NULL), RT_UNDELIVERABLE);
    free(buf);
    buf = inbound("broadcast", "bob", "{\"type\":\"broadcast\"}", &len);
    ck_assert_int_eq(rt_route_broadcast(buf, len, NOW, &j, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
    free(buf);
    rt_batch_flush(b, capture_fn, &c, NULL);
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

/* Packs a Delivery and parses it; the caller sets the target on d first. */
static rt_route_status deliver(Wsgate__Delivery *d, const char *payload, size_t max, rt_job **j,
                               rt_route_result *res)
{
    if (payload) {
        d->payload.data = (uint8_t *)payload;
        d->payload.len = strlen(payload);
    }
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(wsg_pb_pack(&d->base, &buf, &len), 0);
    rt_route_status st = rt_route_deliver(buf, len, max, NULL, NOW, j, res);
    free(buf);
    return st;
}

/* Parses, expecting a rejection for why. */
static void deliver_rejected(Wsgate__Delivery *d, const char *payload, size_t max, rt_reject why)
{
    rt_job *j = NULL;
    rt_route_result res;
    ck_assert_int_eq(deliver(d, payload, max, &j, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, why);
    ck_assert_ptr_null(j);
}

START_TEST(deliver_carries_its_id)
{
    rt_job *j = NULL;
    rt_route_result res;
    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    d.target_case = WSGATE__DELIVERY__TARGET_USER;
    d.user = "alice";
    d.id = "d-1";
    ck_assert_int_eq(deliver(&d, "{}", 1024, &j, &res), RT_ROUTED);
    ck_assert_str_eq(res.delivery_id, "d-1");
    rt_job_free(j);
    j = NULL;

    /* a rejected one too: its reply needs no second decode */
    d.user = "";
    d.id = "d-2";
    ck_assert_int_eq(deliver(&d, "{}", 1024, &j, &res), RT_REJECTED);
    ck_assert_str_eq(res.delivery_id, "d-2");

    /* an id over RT_DELIVERY_ID_MAX bytes is answered as none */
    static char long_id[RT_DELIVERY_ID_MAX + 2];
    memset(long_id, 'x', RT_DELIVERY_ID_MAX + 1);
    d.user = "alice";
    d.id = long_id;
    ck_assert_int_eq(deliver(&d, "{}", 1024, &j, &res), RT_ROUTED);
    ck_assert_str_eq(res.delivery_id, "");
    rt_job_free(j);

    const uint8_t junk[] = {0x0a, 0xff, 0xff};
    ck_assert_int_eq(rt_route_deliver(junk, sizeof(junk), 1024, NULL, NOW, &j, &res), RT_REJECTED);
    ck_assert_str_eq(res.delivery_id, "");
}
END_TEST

START_TEST(deliver_rejects_every_reason)
{
    rt_route_result res;
    rt_job *j = NULL;

    const uint8_t junk[] = {0x0a, 0xff, 0xff};
    ck_assert_int_eq(rt_route_deliver(junk, sizeof(junk), 1024, NULL, NOW, &j, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_DECODE);

    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    deliver_rejected(&d, "{}", 1024, RT_REJ_NO_TARGET);

    d.target_case = WSGATE__DELIVERY__TARGET_BROADCAST;
    d.broadcast = 0;
    deliver_rejected(&d, "{}", 1024, RT_REJ_NO_TARGET);

    /* nobody named, or a user id that breaks the rule */
    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_USER;
    d.user = "";
    deliver_rejected(&d, "{}", 1024, RT_REJ_NO_TARGET);
    const char *bad_users[] = {"\xc3\x28", "a\nb", "\xc2\x85", "\x7f"};
    for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++) {
        wsgate__delivery__init(&d);
        d.target_case = WSGATE__DELIVERY__TARGET_USER;
        d.user = (char *)bad_users[i];
        deliver_rejected(&d, "{}", 1024, RT_REJ_INVALID_USER);
    }

    wsgate__delivery__init(&d);
    Wsgate__ConnectionRef cref = WSGATE__CONNECTION_REF__INIT;
    cref.node_id = "";
    d.target_case = WSGATE__DELIVERY__TARGET_CONNECTION;
    d.connection = &cref;
    deliver_rejected(&d, "{}", 1024, RT_REJ_NO_TARGET);
    cref.node_id = "bad.id";
    deliver_rejected(&d, "{}", 1024, RT_REJ_NO_TARGET);

    wsgate__delivery__init(&d);
    Wsgate__UserList ul = WSGATE__USER_LIST__INIT;
    d.target_case = WSGATE__DELIVERY__TARGET_USERS;
    d.users = &ul;
    deliver_rejected(&d, "{}", 1024, RT_REJ_EMPTY_USERS);
    /* one id breaking the rule refuses the whole list */
    char *one_bad[] = {"alice", "b\tob"};
    ul.n_user_ids = 2;
    ul.user_ids = one_bad;
    deliver_rejected(&d, "{}", 1024, RT_REJ_INVALID_USER);
    char *empty_one[] = {"alice", ""};
    ul.user_ids = empty_one;
    deliver_rejected(&d, "{}", 1024, RT_REJ_INVALID_USER);

    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_USER;
    d.user = "alice";
    const char *bad_payloads[] = {"[1]", "\"s\"", "{\"a\":", "{} {}", "{\"a\":\"\xc3\x28\"}", "",
                                  "nul",
                                  /* "seq" is the router's, however it is spelled */
                                  "{\"seq\":1}", "{\"a\":1,\"se\\u0071\":\"x\"}"};
    for (size_t i = 0; i < sizeof(bad_payloads) / sizeof(bad_payloads[0]); i++)
        deliver_rejected(&d, bad_payloads[i], 1024, RT_REJ_BAD_PAYLOAD);
    deliver_rejected(&d, "{\"a\":\"0123456789\"}", 10, RT_REJ_TOO_BIG);
    /* exactly at the limit is fine, and a nested "seq" is the publisher's own */
    ck_assert_int_eq(deliver(&d, "{\"a\":\"01\"}", 10, &j, &res), RT_ROUTED);
    rt_job_free(j);
    ck_assert_int_eq(deliver(&d, "{\"a\":{\"seq\":1}}", 100, &j, &res), RT_ROUTED);
    rt_job_free(j);

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
    deliver_rejected(&d, "{}", 1024, RT_REJ_TOO_BIG);
    /* every user keeps a copy: payload x distinct users is bounded */
    static char names[2][8];
    snprintf(names[0], sizeof(names[0]), "u0");
    snprintf(names[1], sizeof(names[1]), "u1");
    ids[0] = names[0];
    ids[1] = names[1];
    ul.n_user_ids = 2;
    size_t big = RT_MAX_FANOUT_BYTES / 2 + 16;
    char *payload = malloc(big + 1);
    ck_assert_ptr_nonnull(payload);
    memset(payload, ' ', big);
    payload[0] = '{';
    payload[big - 1] = '}';
    payload[big] = '\0';
    deliver_rejected(&d, payload, big, RT_REJ_TOO_BIG);
    ul.n_user_ids = 1;
    ck_assert_int_eq(deliver(&d, payload, big, &j, &res), RT_ROUTED);
    rt_job_free(j);
    free(payload);
    free(ids);
}
END_TEST

START_TEST(deliver_targets)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    rt_fanout fo;
    rt_job *j;
    capture c = {.n = 0};

    /* users: alice twice, bob and an unknown: one part (stream) per distinct user, each copy
     * with that user's seq spliced before the final '}' */
    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    Wsgate__UserList ul = WSGATE__USER_LIST__INIT;
    char *ids[] = {"alice", "bob", "alice", "ghost"};
    ul.n_user_ids = 4;
    ul.user_ids = ids;
    d.target_case = WSGATE__DELIVERY__TARGET_USERS;
    d.users = &ul;
    d.created_at_us = 77;
    const char *payload = "{ \"keep\" : \"spacing\" }\n";
    ck_assert_int_eq(deliver(&d, payload, 1024, &j, &res), RT_ROUTED);
    ck_assert_uint_eq(j->nparts, 3);
    ck_assert_str_eq(j->parts[0].name, "alice");
    ck_assert_str_eq(j->parts[1].name, "bob");
    ck_assert_str_eq(j->parts[2].name, "ghost");
    ck_assert_int_eq(fan(r, b, j, 1, &fo), RT_ROUTED);
    ck_assert_uint_eq(fo.connections, 3);
    ck_assert_uint_eq(fo.nodes, 2);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    const Wsgate__NodeDelivery *g1 = for_node(&c, "gw1"), *g2 = for_node(&c, "gw2");
    ck_assert_uint_eq(g1->n_items, 2);
    item_is(g1->items[0], "{ \"keep\" : \"spacing\" ,\"seq\":1}\n");
    item_pos(g1->items[0], WSGATE__STREAM_KIND__STREAM_USER, "alice", 1, 5);
    ck_assert_uint_eq(g1->items[0]->conn_ids[0], 1);
    ck_assert_int_eq(g1->items[0]->created_at_us, 77);
    item_is(g1->items[1], "{ \"keep\" : \"spacing\" ,\"seq\":2}\n");
    item_pos(g1->items[1], WSGATE__STREAM_KIND__STREAM_USER, "bob", 2, 5);
    ck_assert_uint_eq(g1->items[1]->conn_ids[0], 2);
    ck_assert_uint_eq(g2->n_items, 1);
    ck_assert_uint_eq(g2->items[0]->conn_ids[0], 7);
    item_pos(g2->items[0], WSGATE__STREAM_KIND__STREAM_USER, "alice", 1, 5);
    capture_free(&c);

    /* connection: a known node gets it, unchanged and kept nowhere, with its epoch, even for a
     * conn id not yet seen */
    wsgate__delivery__init(&d);
    Wsgate__ConnectionRef cref = WSGATE__CONNECTION_REF__INIT;
    cref.node_id = "gw2";
    cref.conn_id = 99;
    d.target_case = WSGATE__DELIVERY__TARGET_CONNECTION;
    d.connection = &cref;
    ck_assert_int_eq(deliver(&d, "{}", 1024, &j, &res), RT_ROUTED);
    ck_assert_uint_eq(j->nparts, 0);
    ck_assert_int_eq(fan(r, b, j, 0, &fo), RT_ROUTED);
    ck_assert_uint_eq(fo.connections, 1);
    cref.node_id = "gw9";
    ck_assert_int_eq(deliver(&d, "{}", 1024, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 0, &fo), RT_UNDELIVERABLE);
    ck_assert_uint_eq(fo.connections, 0);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    ck_assert_str_eq(c.nd[0]->node_id, "gw2");
    ck_assert_uint_eq(c.nd[0]->node_epoch, 22);
    item_is(c.nd[0]->items[0], "{}");
    item_pos(c.nd[0]->items[0], WSGATE__STREAM_KIND__STREAM_NONE, "", 0, 0);
    ck_assert_uint_eq(c.nd[0]->items[0]->conn_ids[0], 99);
    ck_assert_int_eq(c.nd[0]->items[0]->created_at_us, NOW); /* no created_at: now */
    capture_free(&c);

    /* user without connections: kept, delivered to nobody; an empty object gets just seq */
    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_USER;
    d.user = "ghost";
    ck_assert_int_eq(deliver(&d, "{}", 1024, &j, &res), RT_ROUTED);
    char *text = NULL;
    size_t tl;
    ck_assert_ptr_nonnull(text = rt_frame_with_seq(&j->frame, 9, &tl));
    ck_assert_str_eq(text, "{\"seq\":9}");
    free(text);
    ck_assert_int_eq(fan(r, b, j, 9, &fo), RT_UNDELIVERABLE);
    wsgate__delivery__init(&d);
    d.target_case = WSGATE__DELIVERY__TARGET_BROADCAST;
    d.broadcast = 1;
    ck_assert_int_eq(deliver(&d, "{\"b\":1}", 1024, &j, &res), RT_ROUTED);
    ck_assert_int_eq(fan(r, b, j, 4, &fo), RT_ROUTED);
    ck_assert_uint_eq(fo.nodes, 3);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 3);
    for (size_t i = 0; i < c.n; i++) {
        ck_assert(c.nd[i]->n_items == 1 && c.nd[i]->items[0]->all);
        item_is(c.nd[i]->items[0], "{\"b\":1,\"seq\":4}");
    }
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

START_TEST(broadcast_without_permitted_is_forbidden)
{
    rt_registry *r = fixture();
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    rt_route_result res;
    rt_job *j = NULL;
    size_t len;
    uint8_t *buf = inbound_as("broadcast", "bob",
                              "{\"type\":\"broadcast\",\"content\":\"x\",\"id\":\"b-1\"}", 0, &len);
    ck_assert_int_eq(rt_route_broadcast(buf, len, NOW, &j, &res), RT_REJECTED);
    free(buf);
    ck_assert_int_eq(res.reason, RT_REJ_FORBIDDEN);
    ck_assert_str_eq(rt_reject_name(RT_REJ_FORBIDDEN), "forbidden");
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(j->nparts, 0); /* kept nowhere, routed nowhere */
    ck_assert_int_eq(fan(r, b, j, 0, NULL), RT_REJECTED);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    ck_assert_str_eq(c.nd[0]->node_id, "gw1");
    ck_assert_uint_eq(c.nd[0]->n_items, 1);
    ck_assert(!c.nd[0]->items[0]->all);
    ck_assert_uint_eq(c.nd[0]->items[0]->conn_ids[0], 2);
    item_is(c.nd[0]->items[0], "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"this "
                               "connection may not broadcast\",\"ref\":\"b-1\"}");
    capture_free(&c);
    rt_batch_free(b);
    rt_registry_free(r);
}
END_TEST

/* send_message frames are not refused on the mark: WSGATE_CLIENT_SEND is the gateway's. */
START_TEST(send_message_without_permitted_is_routed)
{
    rt_route_result res;
    rt_job *j = NULL;
    size_t len;
    uint8_t *buf = inbound_as("send_message", "bob",
                              "{\"type\":\"send_message\",\"target_user\":\"alice\",\"content\":"
                              "\"x\"}",
                              0, &len);
    ck_assert_int_eq(rt_route_send_message(buf, len, NOW, &j, &res), RT_ROUTED);
    free(buf);
    ck_assert(!j->refused);
    ck_assert_uint_eq(j->nparts, 1);
    rt_job_free(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, send_message_reaches_every_connection);
    tcase_add_test(tc, send_message_answers_the_sender);
    tcase_add_test(tc, send_message_refused_answers);
    tcase_add_test(tc, send_message_invalid_frames);
    tcase_add_test(tc, send_message_target_not_a_user_id);
    tcase_add_test(tc, broadcast_to_live_nodes_only);
    tcase_add_test(tc, broadcast_without_permitted_is_forbidden);
    tcase_add_test(tc, send_message_without_permitted_is_routed);
    tcase_add_test(tc, deliver_rejects_every_reason);
    tcase_add_test(tc, deliver_carries_its_id);
    tcase_add_test(tc, deliver_targets);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
