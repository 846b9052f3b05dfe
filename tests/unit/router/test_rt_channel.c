/* Unit tests for the router's channel publish path: publish and presence frames into jobs
 * (permitted, channel rule, namespaces), a Delivery to a channel, the fan-out of a channel's
 * publication once per node with subscribers (Item.channel, no conn ids), the publisher's
 * receipts and errors, presence answers, join / leave notices (rt_route_channel_notice), the
 * batch's subscriber item form, and wsgate_router_publications_total{namespace}. Subscribers
 * are announced to the registry as the wire contract has it (OPEN, SUBSCRIBE). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_batch.h"
#include "rt_ns_metrics.h"
#include "rt_registry.h"
#include "rt_route.h"
#include "wsg_buf.h"
#include "wsg_channel.h"
#include "wsg_pb.h"
#include "rt_capture.h"
#include "wsg_check.h"

#define NOW INT64_C(1700000000999000)
#define AT INT64_C(1700000000123456)
#define NS "{\"\":{},\"chat\":{\"history_size\":3,\"join_leave\":true}," \
           "\"quiet\":{\"presence\":false},\"news\":{\"client_publish\":false}}"

static wsg_ns_table *ns;
static rt_registry *reg;
static rt_batch *b;
static capture cap;

/* A ConnEvent of the wire contract (OPEN, or SUBSCRIBE with its channel) to the registry. */
static void conn_event(Wsgate__ConnEvent__Kind kind, const char *node, uint64_t epoch,
                       uint64_t seq, uint64_t conn, const char *user, const char *channel)
{
    Wsgate__Conn c = WSGATE__CONN__INIT;
    Wsgate__Conn *pc = &c;
    c.conn_id = conn;
    c.user_id = (char *)user;
    Wsgate__ConnEvent ev = WSGATE__CONN_EVENT__INIT;
    ev.kind = kind;
    ev.node_id = (char *)node;
    ev.node_epoch = epoch;
    ev.seq = seq;
    ev.n_conns = 1;
    ev.conns = &pc;
    ev.channel = (char *)(channel ? channel : "");
    rt_ev_result res;
    ck_assert_int_eq(rt_registry_conn_event(reg, &ev, 0, &res, NULL), 0);
    ck_assert_int_eq(res.status, RT_EV_APPLIED);
}

/* conn of user on (node, epoch), opened with event seq, subscribes to channel with seq + 1 */
static void subscriber(const char *channel, const char *node, uint64_t epoch, uint64_t seq,
                       uint64_t conn, const char *user)
{
    conn_event(WSGATE__CONN_EVENT__KIND__OPEN, node, epoch, seq, conn, user, NULL);
    conn_event(WSGATE__CONN_EVENT__KIND__SUBSCRIBE, node, epoch, seq + 1, conn, user, channel);
}

static void setup(void)
{
    char err[256];
    ck_assert_int_eq(wsg_ns_table_load(NS, &ns, err, sizeof(err)), 0);
    reg = rt_registry_new();
    b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    memset(&cap, 0, sizeof(cap));
    /* chat:room: alice on gw1 (conn 1) and gw2 (conn 7), bob on gw1 (conn 2) */
    subscriber("chat:room", "gw1", 11, 1, 1, "alice");
    subscriber("chat:room", "gw1", 11, 3, 2, "bob");
    subscriber("chat:room", "gw2", 22, 1, 7, "alice");
    subscriber("other", "gw3", 33, 1, 9, "carol");
}

static void teardown(void)
{
    capture_free(&cap);
    rt_batch_free(b);
    rt_registry_free(reg);
    wsg_ns_table_free(ns);
}

/* bob's connection gw1/11/2 sends a frame */
static uint8_t *inbound(const char *type, const char *json, int permitted, size_t *len)
{
    Wsgate__InboundFrame f = WSGATE__INBOUND_FRAME__INIT;
    f.node_id = "gw1";
    f.node_epoch = 11;
    f.conn_id = 2;
    f.user_id = "bob";
    f.type = (char *)type;
    f.payload.data = (uint8_t *)json;
    f.payload.len = strlen(json);
    f.received_at_us = AT;
    f.permitted = permitted;
    uint8_t *buf;
    ck_assert_int_eq(wsg_pb_pack(&f.base, &buf, len), 0);
    return buf;
}

static rt_route_status publish(const char *json, int permitted, rt_job **j, rt_route_result *res)
{
    size_t len;
    uint8_t *buf = inbound("publish", json, permitted, &len);
    rt_route_status st = rt_route_publish(buf, len, ns, NOW, j, res);
    free(buf);
    return st;
}

static rt_route_status presence(const char *json, int permitted, rt_job **j,
                                rt_route_result *res)
{
    size_t len;
    uint8_t *buf = inbound("presence", json, permitted, &len);
    rt_route_status st = rt_route_presence(buf, len, ns, NOW, j, res);
    free(buf);
    return st;
}

/* Fans the job out as if its appends gave seq (0: history unavailable) in epoch 5, frees it,
 * and flushes into cap. */
static rt_route_status fan(rt_job *j, uint64_t seq, rt_fanout *fo)
{
    ck_assert_ptr_nonnull(j);
    for (size_t i = 0; i < j->nparts; i++) {
        j->parts[i].seq = seq;
        j->parts[i].epoch = seq ? 5 : 0;
    }
    rt_fanout tmp;
    rt_route_status st = rt_route_fanout(reg, b, j, fo ? fo : &tmp);
    rt_job_free(j);
    rt_batch_flush(b, capture_fn, &cap, NULL);
    return st;
}

static const Wsgate__NodeDelivery *for_node(const char *node)
{
    const Wsgate__NodeDelivery *found = NULL;
    for (size_t i = 0; i < cap.n; i++)
        if (!strcmp(cap.nd[i]->node_id, node)) {
            ck_assert_ptr_null(found);
            found = cap.nd[i];
        }
    return found;
}

static void payload_is(const Wsgate__NodeDelivery__Item *it, const char *want)
{
    ck_assert_uint_eq(it->payload.len, strlen(want));
    ck_assert_mem_eq(it->payload.data, want, it->payload.len);
}

/* An item for the node's subscribers of channel: no conn ids, not all. */
static void subscribers_item(const Wsgate__NodeDelivery__Item *it, const char *channel,
                             Wsgate__StreamKind stream, uint64_t seq)
{
    ck_assert_str_eq(it->channel, channel);
    ck_assert_uint_eq(it->n_conn_ids, 0);
    ck_assert(!it->all);
    ck_assert_int_eq(it->stream, stream);
    ck_assert_str_eq(it->stream_name, stream == WSGATE__STREAM_KIND__STREAM_CHANNEL ? channel : "");
    ck_assert_str_eq(it->user_id, "");
    ck_assert_uint_eq(it->seq, seq);
    ck_assert_uint_eq(it->epoch, seq ? 5 : 0);
}

/* The only item is the one answer to bob's connection. */
static void only_answer(const char *want)
{
    ck_assert_uint_eq(cap.n, 1);
    const Wsgate__NodeDelivery *g1 = for_node("gw1");
    ck_assert_ptr_nonnull(g1);
    ck_assert_uint_eq(g1->n_items, 1);
    ck_assert_str_eq(g1->items[0]->channel, "");
    ck_assert_uint_eq(g1->items[0]->n_conn_ids, 1);
    ck_assert_uint_eq(g1->items[0]->conn_ids[0], 2);
    payload_is(g1->items[0], want);
}

START_TEST(publish_becomes_a_channel_job)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(publish("{\"type\":\"publish\",\"channel\":\"chat:room\",\"content\":"
                             "{\"t\":[1,\"x\"]},\"id\":\"p-1\"}",
                             1, &j, &res),
                     RT_ROUTED);
    ck_assert_int_eq(j->kind, RT_JOB_PUBLISH);
    ck_assert_uint_eq(j->nparts, 1);
    ck_assert_int_eq(j->parts[0].kind, WSGATE__STREAM_KIND__STREAM_CHANNEL);
    ck_assert_str_eq(j->parts[0].name, "chat:room");
    ck_assert_int_eq(j->created_at_us, AT);
    size_t len;
    char *text = rt_frame_with_seq(&j->frame, 4, &len);
    ck_assert_str_eq(text, "{\"type\":\"publication\",\"channel\":\"chat:room\",\"from\":\"bob\","
                           "\"content\":{\"t\":[1,\"x\"]},\"ts\":1700000000123,\"seq\":4}");
    free(text);
    rt_job_free(j);
}
END_TEST

START_TEST(publish_fans_out_once_per_node_with_subscribers)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(publish("{\"type\":\"publish\",\"channel\":\"chat:room\",\"content\":\"hi\","
                             "\"id\":\"p-1\"}",
                             1, &j, &res),
                     RT_ROUTED);
    rt_fanout fo;
    ck_assert_int_eq(fan(j, 4, &fo), RT_ROUTED);
    ck_assert_uint_eq(fo.nodes, 2);
    ck_assert_uint_eq(fo.connections, 3);
    ck_assert_uint_eq(cap.n, 2); /* gw3 has no subscriber of chat:room: nothing for it */
    const char *want = "{\"type\":\"publication\",\"channel\":\"chat:room\",\"from\":\"bob\","
                       "\"content\":\"hi\",\"ts\":1700000000123,\"seq\":4}";
    const Wsgate__NodeDelivery *g1 = for_node("gw1"), *g2 = for_node("gw2");
    ck_assert_ptr_nonnull(g1);
    ck_assert_ptr_nonnull(g2);
    ck_assert_uint_eq(g1->node_epoch, 11);
    ck_assert_uint_eq(g2->node_epoch, 22);
    /* one item for gw1's two subscribers, then the receipt to the publisher's connection */
    ck_assert_uint_eq(g1->n_items, 2);
    payload_is(g1->items[0], want);
    subscribers_item(g1->items[0], "chat:room", WSGATE__STREAM_KIND__STREAM_CHANNEL, 4);
    payload_is(g1->items[1], "{\"type\":\"sent\",\"ref\":\"p-1\",\"stream\":\"channel\","
                             "\"channel\":\"chat:room\",\"seq\":4}");
    ck_assert_str_eq(g1->items[1]->channel, "");
    ck_assert_uint_eq(g1->items[1]->conn_ids[0], 2);
    ck_assert_uint_eq(g2->n_items, 1);
    payload_is(g2->items[0], want);
    subscribers_item(g2->items[0], "chat:room", WSGATE__STREAM_KIND__STREAM_CHANNEL, 4);
}
END_TEST

START_TEST(publish_without_id_gets_no_receipt)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(
        publish("{\"type\":\"publish\",\"channel\":\"chat:room\",\"content\":1}", 1, &j, &res),
        RT_ROUTED);
    ck_assert_int_eq(fan(j, 2, NULL), RT_ROUTED);
    const Wsgate__NodeDelivery *g1 = for_node("gw1");
    ck_assert_uint_eq(g1->n_items, 1);
    ck_assert_str_eq(g1->items[0]->channel, "chat:room");
}
END_TEST

START_TEST(publish_not_kept_goes_live_and_says_so)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(publish("{\"type\":\"publish\",\"channel\":\"chat:room\",\"content\":\"hi\","
                             "\"id\":5}",
                             1, &j, &res),
                     RT_ROUTED);
    ck_assert_int_eq(fan(j, 0, NULL), RT_ROUTED);
    const Wsgate__NodeDelivery *g1 = for_node("gw1"), *g2 = for_node("gw2");
    subscribers_item(g1->items[0], "chat:room", WSGATE__STREAM_KIND__STREAM_NONE, 0);
    subscribers_item(g2->items[0], "chat:room", WSGATE__STREAM_KIND__STREAM_NONE, 0);
    payload_is(g1->items[1], "{\"type\":\"error\",\"code\":\"history_unavailable\",\"message\":"
                             "\"delivered live only; not kept for resume\",\"channel\":"
                             "\"chat:room\",\"ref\":5}");
}
END_TEST

START_TEST(publish_to_a_channel_without_subscribers)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(publish("{\"type\":\"publish\",\"channel\":\"empty\",\"content\":\"hi\","
                             "\"id\":\"e\"}",
                             1, &j, &res),
                     RT_ROUTED);
    rt_fanout fo;
    ck_assert_int_eq(fan(j, 1, &fo), RT_UNDELIVERABLE);
    ck_assert_uint_eq(fo.connections, 0);
    only_answer("{\"type\":\"sent\",\"ref\":\"e\",\"stream\":\"channel\",\"channel\":\"empty\","
                "\"seq\":1}");
}
END_TEST

/* A refused publish: rejected for why, and its job only answers bob with the error. */
static void publish_refused(const char *json, int permitted, rt_reject why, const char *answer)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(publish(json, permitted, &j, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, why);
    ck_assert_ptr_nonnull(j);
    ck_assert(j->refused);
    ck_assert_uint_eq(j->nparts, 0);
    ck_assert_int_eq(fan(j, 0, NULL), RT_REJECTED);
    only_answer(answer);
}

START_TEST(publish_without_permitted_is_forbidden)
{
    publish_refused("{\"type\":\"publish\",\"channel\":\"chat:room\",\"content\":1,\"id\":\"x\"}",
                    0, RT_REJ_FORBIDDEN,
                    "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"this connection may "
                    "not do that on this channel\",\"channel\":\"chat:room\",\"ref\":\"x\"}");
}
END_TEST

START_TEST(publish_bad_channel)
{
    publish_refused("{\"type\":\"publish\",\"channel\":\"no spaces\",\"content\":1,\"id\":1}", 1,
                    RT_REJ_BAD_CHANNEL,
                    "{\"type\":\"error\",\"code\":\"bad_channel\",\"message\":\"not a channel "
                    "name: 1-128 of A-Z a-z 0-9 _ . : @ -\",\"channel\":\"no spaces\",\"ref\":1}");
}
END_TEST

START_TEST(publish_channel_not_a_string)
{
    publish_refused("{\"type\":\"publish\",\"channel\":7,\"content\":1}", 1, RT_REJ_BAD_CHANNEL,
                    "{\"type\":\"error\",\"code\":\"bad_channel\",\"message\":\"not a channel "
                    "name: 1-128 of A-Z a-z 0-9 _ . : @ -\"}");
}
END_TEST

START_TEST(publish_unknown_namespace)
{
    publish_refused("{\"type\":\"publish\",\"channel\":\"nope:x\",\"content\":1}", 1,
                    RT_REJ_UNKNOWN_NAMESPACE,
                    "{\"type\":\"error\",\"code\":\"unknown_namespace\",\"message\":\"the "
                    "channel's namespace is not configured\",\"channel\":\"nope:x\"}");
}
END_TEST

START_TEST(publish_where_the_namespace_forbids_it)
{
    publish_refused("{\"type\":\"publish\",\"channel\":\"news:today\",\"content\":1}", 1,
                    RT_REJ_FORBIDDEN,
                    "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"this connection may "
                    "not do that on this channel\",\"channel\":\"news:today\"}");
}
END_TEST

START_TEST(publish_malformed_frames_are_dropped)
{
    rt_job *j;
    rt_route_result res;
    /* no content, the wrong type: only a foreign publisher sends these; nobody to answer */
    ck_assert_int_eq(publish("{\"type\":\"publish\",\"channel\":\"chat:room\"}", 1, &j, &res),
                     RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(
        publish("{\"type\":\"presence\",\"channel\":\"chat:room\",\"content\":1}", 1, &j, &res),
        RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_INVALID_FRAME);
    ck_assert_ptr_null(j);
}
END_TEST

START_TEST(presence_answers_from_the_registry)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(
        presence("{\"type\":\"presence\",\"channel\":\"chat:room\",\"id\":7}", 1, &j, &res),
        RT_ROUTED);
    ck_assert_int_eq(j->kind, RT_JOB_PRESENCE);
    ck_assert_uint_eq(j->nparts, 0);
    ck_assert_int_eq(fan(j, 0, NULL), RT_ROUTED);
    ck_assert_uint_eq(cap.n, 1);
    const Wsgate__NodeDelivery__Item *it = cap.nd[0]->items[0];
    ck_assert_str_eq(cap.nd[0]->node_id, "gw1");
    ck_assert_uint_eq(it->conn_ids[0], 2);
    /* the users in whatever order the registry keeps them */
    json_t *o = json_loadb((const char *)it->payload.data, it->payload.len, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "presence");
    ck_assert_str_eq(json_string_value(json_object_get(o, "channel")), "chat:room");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "ref")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "connections")), 3);
    json_t *users = json_object_get(o, "users");
    ck_assert_uint_eq(json_array_size(users), 2);
    const char *u0 = json_string_value(json_array_get(users, 0));
    const char *u1 = json_string_value(json_array_get(users, 1));
    ck_assert((!strcmp(u0, "alice") && !strcmp(u1, "bob")) ||
              (!strcmp(u0, "bob") && !strcmp(u1, "alice")));
    json_decref(o);
}
END_TEST

START_TEST(presence_of_an_empty_channel)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(presence("{\"type\":\"presence\",\"channel\":\"empty\"}", 1, &j, &res),
                     RT_ROUTED);
    ck_assert_int_eq(fan(j, 0, NULL), RT_ROUTED);
    only_answer("{\"type\":\"presence\",\"channel\":\"empty\",\"users\":[],\"connections\":0}");
}
END_TEST

START_TEST(presence_without_permitted_is_forbidden)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(
        presence("{\"type\":\"presence\",\"channel\":\"chat:room\",\"id\":7}", 0, &j, &res),
        RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_FORBIDDEN);
    ck_assert_int_eq(fan(j, 0, NULL), RT_REJECTED);
    only_answer("{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"this connection may not "
                "do that on this channel\",\"channel\":\"chat:room\",\"ref\":7}");
}
END_TEST

START_TEST(presence_where_the_namespace_has_none)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(presence("{\"type\":\"presence\",\"channel\":\"quiet:x\"}", 1, &j, &res),
                     RT_REJECTED);
    ck_assert_int_eq(res.reason, RT_REJ_FORBIDDEN);
    ck_assert_int_eq(fan(j, 0, NULL), RT_REJECTED);
    only_answer("{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"this connection may not "
                "do that on this channel\",\"channel\":\"quiet:x\"}");
}
END_TEST

static rt_route_status deliver(const char *channel, const char *payload, rt_job **j,
                               rt_route_result *res)
{
    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    d.target_case = WSGATE__DELIVERY__TARGET_CHANNEL;
    d.channel = (char *)channel;
    d.payload.data = (uint8_t *)payload;
    d.payload.len = strlen(payload);
    d.created_at_us = AT;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(wsg_pb_pack(&d.base, &buf, &len), 0);
    rt_route_status st = rt_route_deliver(buf, len, 1 << 20, ns, NOW, j, res);
    free(buf);
    return st;
}

START_TEST(deliver_to_a_channel)
{
    rt_job *j;
    rt_route_result res;
    ck_assert_int_eq(deliver("chat:room", "{\"k\":1,\"seq\":\"theirs\"}", &j, &res), RT_ROUTED);
    ck_assert_int_eq(j->kind, RT_JOB_DELIVER);
    ck_assert_uint_eq(j->nparts, 1);
    ck_assert_int_eq(j->parts[0].kind, WSGATE__STREAM_KIND__STREAM_CHANNEL);
    ck_assert_str_eq(j->parts[0].name, "chat:room");
    rt_fanout fo;
    ck_assert_int_eq(fan(j, 9, &fo), RT_ROUTED);
    ck_assert_uint_eq(fo.nodes, 2);
    ck_assert_uint_eq(fo.connections, 3);
    /* no "from"; the payload is the content, its own "seq" member untouched */
    const char *want = "{\"type\":\"publication\",\"channel\":\"chat:room\",\"content\":{\"k\":1,"
                       "\"seq\":\"theirs\"},\"ts\":1700000000123,\"seq\":9}";
    const Wsgate__NodeDelivery *g1 = for_node("gw1"), *g2 = for_node("gw2");
    ck_assert_uint_eq(g1->n_items, 1);
    payload_is(g1->items[0], want);
    subscribers_item(g1->items[0], "chat:room", WSGATE__STREAM_KIND__STREAM_CHANNEL, 9);
    ck_assert_uint_eq(g2->n_items, 1);
    payload_is(g2->items[0], want);
}
END_TEST

static void deliver_rejected(const char *channel, const char *payload, rt_reject why)
{
    rt_job *j = NULL;
    rt_route_result res;
    ck_assert_int_eq(deliver(channel, payload, &j, &res), RT_REJECTED);
    ck_assert_int_eq(res.reason, why);
    ck_assert_ptr_null(j);
}

START_TEST(deliver_to_a_bad_channel)
{
    deliver_rejected("", "{}", RT_REJ_BAD_CHANNEL);
    deliver_rejected("a b", "{}", RT_REJ_BAD_CHANNEL);
    ck_assert_str_eq(rt_reject_name(RT_REJ_BAD_CHANNEL), "bad_channel");
}
END_TEST

START_TEST(deliver_to_an_unknown_namespace)
{
    deliver_rejected("nope:x", "{}", RT_REJ_UNKNOWN_NAMESPACE);
    ck_assert_str_eq(rt_reject_name(RT_REJ_UNKNOWN_NAMESPACE), "unknown_namespace");
}
END_TEST

START_TEST(deliver_to_a_channel_needs_an_object)
{
    deliver_rejected("chat:room", "[1]", RT_REJ_BAD_PAYLOAD);
    deliver_rejected("chat:room", "{\"a\":", RT_REJ_BAD_PAYLOAD);
}
END_TEST

START_TEST(notice_reaches_every_node_with_subscribers)
{
    const char *text = "{\"type\":\"join\",\"channel\":\"chat:room\",\"user\":\"dave\"}";
    ck_assert_int_eq(rt_route_channel_notice(reg, b, "chat:room", text, strlen(text), NOW), 0);
    rt_batch_flush(b, capture_fn, &cap, NULL);
    ck_assert_uint_eq(cap.n, 2);
    const char *nodes[] = {"gw1", "gw2"};
    for (int i = 0; i < 2; i++) {
        const Wsgate__NodeDelivery *nd = for_node(nodes[i]);
        ck_assert_ptr_nonnull(nd);
        ck_assert_uint_eq(nd->n_items, 1);
        payload_is(nd->items[0], text);
        subscribers_item(nd->items[0], "chat:room", WSGATE__STREAM_KIND__STREAM_NONE, 0);
        ck_assert_int_eq(nd->items[0]->created_at_us, NOW);
    }
}
END_TEST

START_TEST(notice_to_a_channel_without_subscribers)
{
    ck_assert_int_eq(rt_route_channel_notice(reg, b, "empty", "{}", 2, NOW), 0);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &cap, NULL), 0);
}
END_TEST

START_TEST(batch_subscriber_items)
{
    rt_batch_pos pos = {.kind = WSGATE__STREAM_KIND__STREAM_CHANNEL, .name = "c", .seq = 3,
                        .epoch = 5, .channel = "c"};
    ck_assert_int_eq(rt_batch_begin_pos(b, "{}", 2, 1, &pos), 0);
    ck_assert_int_eq(rt_batch_add_subscribers(b, "gw1", 11), 0);
    ck_assert_int_eq(rt_batch_add_subscribers(b, "gw1", 11), 0); /* still one item */
    /* a channel's message goes to subscribers only */
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 11, 4), -1);
    ck_assert_int_eq(rt_batch_add_all(b, "gw1", 11), -1);
    /* a message without a channel has no subscribers to name */
    ck_assert_int_eq(rt_batch_begin(b, "{}", 2, 1), 0);
    ck_assert_int_eq(rt_batch_add_subscribers(b, "gw1", 11), -1);
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &cap, NULL), 1);
    ck_assert_uint_eq(cap.nd[0]->n_items, 1);
    ck_assert_str_eq(cap.nd[0]->items[0]->channel, "c");
    ck_assert_uint_eq(cap.nd[0]->items[0]->n_conn_ids, 0);
}
END_TEST

START_TEST(publications_by_namespace)
{
    rt_ns_metrics *m = rt_ns_metrics_new(ns);
    ck_assert_ptr_nonnull(m);
    rt_ns_metrics_publication(m, "chat:room");
    rt_ns_metrics_publication(m, "chat:other");
    rt_ns_metrics_publication(m, "lobby");
    rt_ns_metrics_publication(m, "nope:x"); /* no namespace: counted nowhere */
    ck_assert_int_eq(rt_ns_metrics_get(m, "chat"), 2);
    ck_assert_int_eq(rt_ns_metrics_get(m, ""), 1);
    ck_assert_int_eq(rt_ns_metrics_get(m, "news"), 0);
    ck_assert_int_eq(rt_ns_metrics_get(m, "nope"), -1);
    wsg_buf out;
    wsg_buf_init(&out);
    rt_ns_metrics_render(m, &out);
    wsg_buf_append(&out, "", 1); /* NUL-terminated for strstr */
    ck_assert_ptr_nonnull(strstr(out.data, "# TYPE wsgate_router_publications_total counter\n"));
    ck_assert_ptr_nonnull(
        strstr(out.data, "wsgate_router_publications_total{namespace=\"_default\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(out.data, "wsgate_router_publications_total{namespace=\"chat\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(out.data, "wsgate_router_publications_total{namespace=\"news\"} 0\n"));
    ck_assert_ptr_nonnull(
        strstr(out.data, "wsgate_router_publications_total{namespace=\"quiet\"} 0\n"));
    wsg_buf_free(&out);
    rt_ns_metrics_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_channel");
    TCase *tc = tcase_create("channel");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, publish_becomes_a_channel_job);
    tcase_add_test(tc, publish_fans_out_once_per_node_with_subscribers);
    tcase_add_test(tc, publish_without_id_gets_no_receipt);
    tcase_add_test(tc, publish_not_kept_goes_live_and_says_so);
    tcase_add_test(tc, publish_to_a_channel_without_subscribers);
    tcase_add_test(tc, publish_without_permitted_is_forbidden);
    tcase_add_test(tc, publish_bad_channel);
    tcase_add_test(tc, publish_channel_not_a_string);
    tcase_add_test(tc, publish_unknown_namespace);
    tcase_add_test(tc, publish_where_the_namespace_forbids_it);
    tcase_add_test(tc, publish_malformed_frames_are_dropped);
    tcase_add_test(tc, presence_answers_from_the_registry);
    tcase_add_test(tc, presence_of_an_empty_channel);
    tcase_add_test(tc, presence_without_permitted_is_forbidden);
    tcase_add_test(tc, presence_where_the_namespace_has_none);
    tcase_add_test(tc, deliver_to_a_channel);
    tcase_add_test(tc, deliver_to_a_bad_channel);
    tcase_add_test(tc, deliver_to_an_unknown_namespace);
    tcase_add_test(tc, deliver_to_a_channel_needs_an_object);
    tcase_add_test(tc, notice_reaches_every_node_with_subscribers);
    tcase_add_test(tc, notice_to_a_channel_without_subscribers);
    tcase_add_test(tc, batch_subscriber_items);
    tcase_add_test(tc, publications_by_namespace);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
