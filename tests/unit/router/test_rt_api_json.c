/* Unit tests for rt_api_json: the HTTP API's JSON bodies into the server API's protobuf
 * requests (every target, every refusal reason, the payload re-encoded with its numbers'
 * values kept) and the protobuf replies into the HTTP status and JSON answer of docs/api.md. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_api_json.h"
#include "wsg_check.h"
#include "wsg_pb.h"

#define NOW INT64_C(1700000000000000)

/* ---- helpers ---- */

static Wsgate__Delivery *publish_ok(const char *body)
{
    rt_api_json_req r;
    const char *reason = NULL;
    int st = rt_api_json_publish(body, strlen(body), NOW, &r, &reason);
    ck_assert_msg(st == 0, "%s: status %d reason %s", body, st, reason ? reason : "-");
    Wsgate__Delivery *d = wsgate__delivery__unpack(NULL, r.len, r.packed);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->created_at_us, NOW);
    rt_api_json_req_free(&r);
    return d;
}

static void publish_refused(const char *body, size_t len, const char *want)
{
    rt_api_json_req r;
    const char *reason = NULL;
    int st = rt_api_json_publish(body, len, NOW, &r, &reason);
    ck_assert_msg(st == 400, "%.*s: status %d", (int)len, body ? body : "", st);
    ck_assert_str_eq(reason, want);
    ck_assert_ptr_null(r.packed);
}

#define REFUSED(body, want) publish_refused(body, strlen(body), want)

static int payload_is(const Wsgate__Delivery *d, const char *want)
{
    return d->payload.len == strlen(want) && !memcmp(d->payload.data, want, d->payload.len);
}

/* out parsed (it must be JSON); caller json_decref's. */
static json_t *parsed(const wsg_buf *out)
{
    ck_assert(wsg_buf_ok(out));
    json_error_t e;
    json_t *j = json_loadb(out->data, out->len, 0, &e);
    ck_assert_msg(j != NULL, "not JSON: %.*s", (int)out->len, out->data);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_string(v), "%s is not a string", k);
    return json_string_value(v);
}

static long long jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_integer(v), "%s is not an integer", k);
    return json_integer_value(v);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t *buf;
    ck_assert_int_eq(wsg_pb_pack(m, &buf, len), 0);
    return buf;
}

/* ---- publish requests ---- */

START_TEST(publish_user)
{
    Wsgate__Delivery *d = publish_ok("{\"user\":\"bob\",\"data\":{\"type\":\"note\",\"n\":1},"
                                     "\"id\":\"x-1\"}");
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_USER);
    ck_assert_str_eq(d->user, "bob");
    ck_assert_str_eq(d->id, "x-1");
    ck_assert(payload_is(d, "{\"type\":\"note\",\"n\":1}"));
    wsgate__delivery__free_unpacked(d, NULL);
}
END_TEST

START_TEST(publish_every_target)
{
    Wsgate__Delivery *d = publish_ok("{\"users\":[\"a\",\"b\"],\"data\":{}}");
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_USERS);
    ck_assert_uint_eq(d->users->n_user_ids, 2);
    ck_assert_str_eq(d->users->user_ids[1], "b");
    ck_assert_str_eq(d->id, "");
    wsgate__delivery__free_unpacked(d, NULL);

    /* an empty list goes to the router, whose answer (empty_users) is the one a NATS
     * publisher gets too */
    d = publish_ok("{\"users\":[],\"data\":{}}");
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_USERS);
    ck_assert_uint_eq(d->users->n_user_ids, 0);
    wsgate__delivery__free_unpacked(d, NULL);

    d = publish_ok("{\"broadcast\":true,\"data\":{\"a\":[1,2]}}");
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_BROADCAST);
    ck_assert(d->broadcast);
    wsgate__delivery__free_unpacked(d, NULL);

    d = publish_ok("{\"channel\":\"news:sport\",\"data\":{},\"id\":null}");
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_CHANNEL);
    ck_assert_str_eq(d->channel, "news:sport");
    wsgate__delivery__free_unpacked(d, NULL);

    /* conn_id as a decimal string: every uint64 reads exactly */
    d = publish_ok("{\"connection\":{\"node\":\"gw-a\",\"conn_id\":\"18446744073709551615\"},"
                   "\"data\":{}}");
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_CONNECTION);
    ck_assert_str_eq(d->connection->node_id, "gw-a");
    ck_assert(d->connection->conn_id == UINT64_MAX);
    wsgate__delivery__free_unpacked(d, NULL);

    d = publish_ok("{\"connection\":{\"node\":\"gw-b\",\"conn_id\":72057594037927937},"
                   "\"data\":{}}");
    ck_assert(d->connection->conn_id == UINT64_C(72057594037927937));
    wsgate__delivery__free_unpacked(d, NULL);
}
END_TEST

START_TEST(publish_refusals)
{
    publish_refused(NULL, 0, "invalid_json");
    REFUSED("", "invalid_json");
    REFUSED("{\"user\":\"bob\",\"data\":{}", "invalid_json");
    REFUSED("{\"user\":\"bob\",\"data\":{}} trailing", "invalid_json");
    REFUSED("{\"user\":\"a\",\"user\":\"b\",\"data\":{}}", "invalid_json"); /* duplicate key */
    REFUSED("{\"user\":\"a\\u0000b\",\"data\":{}}", "invalid_json");        /* NUL in a string */
    REFUSED("{\"user\":\"bob\",\"data\":{\"n\":99999999999999999999}}", "invalid_json");
    REFUSED("{\"user\":\"\xff\",\"data\":{}}", "invalid_json"); /* not UTF-8 */
    REFUSED("[1,2]", "not_object");
    REFUSED("\"text\"", "not_object");
    REFUSED("{\"data\":{}}", "no_target");
    REFUSED("{\"user\":\"a\",\"channel\":\"c\",\"data\":{}}", "several_targets");
    REFUSED("{\"broadcast\":true,\"users\":[\"a\"],\"data\":{}}", "several_targets");
    REFUSED("{\"user\":5,\"data\":{}}", "bad_user");
    REFUSED("{\"user\":null,\"data\":{}}", "bad_user");
    REFUSED("{\"users\":\"a,b\",\"data\":{}}", "bad_users");
    REFUSED("{\"users\":[\"a\",7],\"data\":{}}", "bad_users");
    REFUSED("{\"broadcast\":false,\"data\":{}}", "bad_broadcast");
    REFUSED("{\"broadcast\":1,\"data\":{}}", "bad_broadcast");
    REFUSED("{\"channel\":[\"c\"],\"data\":{}}", "bad_channel");
    REFUSED("{\"connection\":\"gw-a:1\",\"data\":{}}", "bad_connection");
    REFUSED("{\"connection\":{\"conn_id\":\"1\"},\"data\":{}}", "bad_connection");
    REFUSED("{\"connection\":{\"node\":\"\",\"conn_id\":\"1\"},\"data\":{}}", "bad_connection");
    REFUSED("{\"connection\":{\"node\":\"gw\",\"conn_id\":\"0x1\"},\"data\":{}}",
            "bad_connection");
    REFUSED("{\"connection\":{\"node\":\"gw\",\"conn_id\":-1},\"data\":{}}", "bad_connection");
    REFUSED("{\"connection\":{\"node\":\"gw\",\"conn_id\":1.5},\"data\":{}}", "bad_connection");
    REFUSED("{\"connection\":{\"node\":\"gw\",\"conn_id\":\"18446744073709551616\"},"
            "\"data\":{}}", "bad_connection");
    REFUSED("{\"user\":\"bob\"}", "data_not_object");
    REFUSED("{\"user\":\"bob\",\"data\":null}", "data_not_object");
    REFUSED("{\"user\":\"bob\",\"data\":\"hi\"}", "data_not_object");
    REFUSED("{\"user\":\"bob\",\"data\":[{}]}", "data_not_object");
    REFUSED("{\"user\":\"bob\",\"data\":{},\"id\":5}", "bad_id");
    REFUSED("{\"user\":\"bob\",\"data\":{},\"id\":{}}", "bad_id");
}
END_TEST

/* data reaches clients with the values it had: compact, keys in their order, strings as
 * UTF-8, and each number printed back to the same double (0.1 stays 0.1). */
START_TEST(publish_payload_encoding)
{
    Wsgate__Delivery *d = publish_ok(
        "{\"user\":\"u\",\"data\": { \"z\" : 0.1, \"a\":[1.5, -2, 1e300], \"s\":\"\\u00e9\\\"/\","
        " \"t\":true, \"n\":null, \"big\":9007199254740993 } }");
    ck_assert_msg(payload_is(d, "{\"z\":0.1,\"a\":[1.5,-2,1e300],\"s\":\"\xc3\xa9\\\"/\","
                                "\"t\":true,\"n\":null,\"big\":9007199254740993}"),
                  "payload %.*s", (int)d->payload.len, d->payload.data);
    wsgate__delivery__free_unpacked(d, NULL);

    /* a number that needs 17 digits keeps all of them */
    d = publish_ok("{\"user\":\"u\",\"data\":{\"x\":0.30000000000000004,\"y\":0.1}}");
    json_t *p = json_loadb((const char *)d->payload.data, d->payload.len, 0, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert(json_real_value(json_object_get(p, "x")) == 0.30000000000000004);
    ck_assert(json_real_value(json_object_get(p, "y")) == 0.1);
    json_decref(p);
    wsgate__delivery__free_unpacked(d, NULL);
}
END_TEST

/* ---- disconnect and presence requests ---- */

START_TEST(disconnect_requests)
{
    rt_api_json_req r;
    const char *reason = NULL;
    const char *ok = "{\"user\":\"bob\",\"code\":4000,\"reason\":\"bye\",\"reconnect\":false}";
    ck_assert_int_eq(rt_api_json_disconnect(ok, strlen(ok), &r, &reason), 0);
    ck_assert_str_eq(r.user, "bob");
    Wsgate__DisconnectRequest *q = wsgate__disconnect_request__unpack(NULL, r.len, r.packed);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->user, "bob");
    ck_assert_uint_eq(q->code, 4000);
    ck_assert_str_eq(q->reason, "bye");
    ck_assert(q->final);
    wsgate__disconnect_request__free_unpacked(q, NULL);
    rt_api_json_req_free(&r);

    /* defaults: code 0 (the router makes it 4003), no reason, not final */
    const char *bare = "{\"user\":\"bob\",\"reconnect\":true}";
    ck_assert_int_eq(rt_api_json_disconnect(bare, strlen(bare), &r, &reason), 0);
    q = wsgate__disconnect_request__unpack(NULL, r.len, r.packed);
    ck_assert_uint_eq(q->code, 0);
    ck_assert_str_eq(q->reason, "");
    ck_assert(!q->final);
    wsgate__disconnect_request__free_unpacked(q, NULL);
    rt_api_json_req_free(&r);

    static const struct {
        const char *body, *reason;
    } bad[] = {
        {"nope", "invalid_json"},
        {"[]", "not_object"},
        {"{}", "bad_user"},
        {"{\"user\":1}", "bad_user"},
        {"{\"user\":\"b\",\"code\":\"4003\"}", "bad_code"},
        {"{\"user\":\"b\",\"code\":4003.5}", "bad_code"},
        {"{\"user\":\"b\",\"code\":-1}", "bad_code"},
        {"{\"user\":\"b\",\"code\":70000}", "bad_code"},
        {"{\"user\":\"b\",\"reason\":42}", "bad_reason"},
        {"{\"user\":\"b\",\"reconnect\":\"no\"}", "bad_reconnect"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reason = NULL;
        ck_assert_int_eq(rt_api_json_disconnect(bad[i].body, strlen(bad[i].body), &r, &reason),
                         400);
        ck_assert_str_eq(reason, bad[i].reason);
        ck_assert_ptr_null(r.packed);
    }
}
END_TEST

START_TEST(presence_requests)
{
    rt_api_json_req r;
    const char *reason = NULL;
    ck_assert_int_eq(rt_api_json_presence("{\"user\":\"bob\"}", 14, &r, &reason), 0);
    Wsgate__PresenceRequest *q = wsgate__presence_request__unpack(NULL, r.len, r.packed);
    ck_assert_int_eq(q->target_case, WSGATE__PRESENCE_REQUEST__TARGET_USER);
    ck_assert_str_eq(q->user, "bob");
    ck_assert_str_eq(r.user, "bob");
    ck_assert_ptr_null(r.channel);
    wsgate__presence_request__free_unpacked(q, NULL);
    rt_api_json_req_free(&r);

    const char *ch = "{\"channel\":\"room.1\"}";
    ck_assert_int_eq(rt_api_json_presence(ch, strlen(ch), &r, &reason), 0);
    q = wsgate__presence_request__unpack(NULL, r.len, r.packed);
    ck_assert_int_eq(q->target_case, WSGATE__PRESENCE_REQUEST__TARGET_CHANNEL);
    ck_assert_str_eq(q->channel, "room.1");
    ck_assert_str_eq(r.channel, "room.1");
    wsgate__presence_request__free_unpacked(q, NULL);
    rt_api_json_req_free(&r);

    static const struct {
        const char *body, *reason;
    } bad[] = {
        {"{", "invalid_json"},         {"7", "not_object"},
        {"{}", "no_target"},           {"{\"user\":\"a\",\"channel\":\"c\"}", "several_targets"},
        {"{\"user\":[]}", "bad_user"}, {"{\"channel\":false}", "bad_channel"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(rt_api_json_presence(bad[i].body, strlen(bad[i].body), &r, &reason),
                         400);
        ck_assert_str_eq(reason, bad[i].reason);
    }
}
END_TEST

/* ---- replies ---- */

START_TEST(publish_reply_one_stream)
{
    Wsgate__DeliveryReply rp = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored s = WSGATE__DELIVERY_REPLY__STORED__INIT;
    Wsgate__DeliveryReply__Stored *ps[] = {&s};
    s.stream = WSGATE__STREAM_KIND__STREAM_USER;
    s.stream_name = "bob";
    s.user_id = "bob";
    s.seq = 42;
    rp.id = "x-1";
    rp.connections = 2;
    rp.nodes = 2;
    rp.n_stored = 1;
    rp.stored = ps;
    size_t len;
    uint8_t *buf = pack(&rp.base, &len);
    wsg_buf out;
    wsg_buf_init(&out);
    ck_assert_int_eq(rt_api_json_publish_reply(buf, len, &out), 200);
    json_t *j = parsed(&out);
    ck_assert(json_is_true(json_object_get(j, "accepted")));
    ck_assert_str_eq(jstr(j, "id"), "x-1");
    ck_assert_str_eq(jstr(j, "stream"), "user");
    ck_assert_str_eq(jstr(j, "user"), "bob");
    ck_assert_int_eq(jint(j, "seq"), 42);
    ck_assert_int_eq(jint(j, "connections"), 2);
    ck_assert_int_eq(jint(j, "nodes"), 2);
    ck_assert_ptr_null(json_object_get(j, "history_unavailable"));
    json_t *st = json_object_get(j, "stored");
    ck_assert_uint_eq(json_array_size(st), 1);
    ck_assert_str_eq(jstr(json_array_get(st, 0), "user"), "bob");
    ck_assert_int_eq(jint(json_array_get(st, 0), "seq"), 42);
    json_decref(j);

    /* a channel, named by stream_name only */
    s.stream = WSGATE__STREAM_KIND__STREAM_CHANNEL;
    s.stream_name = "news";
    s.user_id = "";
    free(buf);
    buf = pack(&rp.base, &len);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_publish_reply(buf, len, &out), 200);
    j = parsed(&out);
    ck_assert_str_eq(jstr(j, "stream"), "channel");
    ck_assert_str_eq(jstr(j, "channel"), "news");
    ck_assert_ptr_null(json_object_get(j, "user"));
    json_decref(j);
    free(buf);
    wsg_buf_free(&out);
}
END_TEST

START_TEST(publish_reply_several_or_none)
{
    Wsgate__DeliveryReply rp = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored s[2] = {WSGATE__DELIVERY_REPLY__STORED__INIT,
                                          WSGATE__DELIVERY_REPLY__STORED__INIT};
    Wsgate__DeliveryReply__Stored *ps[] = {&s[0], &s[1]};
    s[0].stream = s[1].stream = WSGATE__STREAM_KIND__STREAM_USER;
    s[0].stream_name = "a";
    s[0].seq = 3;
    s[1].user_id = "b"; /* an older router: the name in user_id only */
    s[1].seq = 9;
    rp.n_stored = 2;
    rp.stored = ps;
    rp.history_unavailable = 1;
    size_t len;
    uint8_t *buf = pack(&rp.base, &len);
    wsg_buf out;
    wsg_buf_init(&out);
    ck_assert_int_eq(rt_api_json_publish_reply(buf, len, &out), 200);
    json_t *j = parsed(&out);
    ck_assert_str_eq(jstr(j, "stream"), "user");
    ck_assert_ptr_null(json_object_get(j, "seq"));
    ck_assert_ptr_null(json_object_get(j, "user"));
    ck_assert_str_eq(jstr(j, "id"), "");
    json_t *st = json_object_get(j, "stored");
    ck_assert_uint_eq(json_array_size(st), 2);
    ck_assert_str_eq(jstr(json_array_get(st, 1), "user"), "b");
    ck_assert_int_eq(jint(json_array_get(st, 1), "seq"), 9);
    ck_assert(json_is_true(json_object_get(j, "history_unavailable")));
    json_decref(j);
    free(buf);

    /* a delivery to one connection keeps nothing */
    rp.n_stored = 0;
    rp.stored = NULL;
    rp.history_unavailable = 0;
    rp.connections = 1;
    buf = pack(&rp.base, &len);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_publish_reply(buf, len, &out), 200);
    j = parsed(&out);
    ck_assert_str_eq(jstr(j, "stream"), "none");
    ck_assert_ptr_null(json_object_get(j, "seq"));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "stored")), 0);
    ck_assert_int_eq(jint(j, "connections"), 1);
    json_decref(j);
    free(buf);
    wsg_buf_free(&out);
}
END_TEST

START_TEST(publish_reply_refusals)
{
    Wsgate__DeliveryReply rp = WSGATE__DELIVERY_REPLY__INIT;
    rp.status = WSGATE__DELIVERY_REPLY__STATUS__REJECTED;
    rp.reason = "unknown_connection";
    size_t len;
    uint8_t *buf = pack(&rp.base, &len);
    wsg_buf out;
    wsg_buf_init(&out);
    ck_assert_int_eq(rt_api_json_publish_reply(buf, len, &out), 400);
    json_t *j = parsed(&out);
    ck_assert(json_is_false(json_object_get(j, "accepted")));
    ck_assert_str_eq(jstr(j, "reason"), "unknown_connection");
    json_decref(j);
    free(buf);

    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_publish_reply(NULL, 0, &out), 503);
    j = parsed(&out);
    ck_assert_str_eq(jstr(j, "reason"), "overloaded");
    json_decref(j);

    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_publish_reply(junk, sizeof(junk), &out), 500);
    j = parsed(&out);
    ck_assert(json_is_false(json_object_get(j, "accepted")));
    json_decref(j);
    wsg_buf_free(&out);
}
END_TEST

START_TEST(disconnect_and_presence_replies)
{
    wsg_buf out;
    wsg_buf_init(&out);
    Wsgate__DisconnectReply dr = WSGATE__DISCONNECT_REPLY__INIT;
    dr.connections = 2;
    dr.nodes = 2;
    size_t len;
    uint8_t *buf = pack(&dr.base, &len);
    ck_assert_int_eq(rt_api_json_disconnect_reply("bob", buf, len, &out), 200);
    json_t *j = parsed(&out);
    ck_assert_str_eq(jstr(j, "user"), "bob");
    ck_assert_int_eq(jint(j, "connections"), 2);
    ck_assert_int_eq(jint(j, "nodes"), 2);
    json_decref(j);
    free(buf);
    dr.error = "bad_code";
    buf = pack(&dr.base, &len);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_disconnect_reply("bob", buf, len, &out), 400);
    j = parsed(&out);
    ck_assert_str_eq(jstr(j, "error"), "bad_code");
    json_decref(j);
    free(buf);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_disconnect_reply("bob", NULL, 0, &out), 503);

    Wsgate__PresenceReply pr = WSGATE__PRESENCE_REPLY__INIT;
    Wsgate__ConnInfo ci = WSGATE__CONN_INFO__INIT;
    Wsgate__ConnInfo *pci[] = {&ci};
    ci.node_id = "gw-a";
    ci.conn_id = UINT64_C(72057594037927937);
    ci.connected_at_us = INT64_C(1700000000123456);
    pr.online = 1;
    pr.n_connections = 1;
    pr.connections = pci;
    buf = pack(&pr.base, &len);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_presence_reply("bob", NULL, buf, len, &out), 200);
    j = parsed(&out);
    ck_assert_str_eq(jstr(j, "user"), "bob");
    ck_assert(json_is_true(json_object_get(j, "online")));
    json_t *c0 = json_array_get(json_object_get(j, "connections"), 0);
    ck_assert_str_eq(jstr(c0, "node"), "gw-a");
    ck_assert_str_eq(jstr(c0, "conn_id"), "72057594037927937");
    ck_assert_int_eq(jint(c0, "connected_at"), INT64_C(1700000000123));
    json_decref(j);
    free(buf);

    /* offline: online false and an empty list */
    Wsgate__PresenceReply off = WSGATE__PRESENCE_REPLY__INIT;
    buf = pack(&off.base, &len);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_presence_reply("eve", NULL, buf, len, &out), 200);
    j = parsed(&out);
    ck_assert(json_is_false(json_object_get(j, "online")));
    ck_assert(json_is_array(json_object_get(j, "connections")));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "connections")), 0);
    json_decref(j);
    free(buf);

    Wsgate__PresenceReply cr = WSGATE__PRESENCE_REPLY__INIT;
    char *users[] = {"a", "b"};
    cr.n_users = 2;
    cr.users = users;
    cr.connection_count = 3;
    buf = pack(&cr.base, &len);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_presence_reply(NULL, "room", buf, len, &out), 200);
    j = parsed(&out);
    ck_assert_str_eq(jstr(j, "channel"), "room");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "users")), 2);
    ck_assert_int_eq(jint(j, "connections"), 3);
    json_decref(j);
    free(buf);

    cr.error = "bad_channel";
    buf = pack(&cr.base, &len);
    wsg_buf_reset(&out);
    ck_assert_int_eq(rt_api_json_presence_reply(NULL, "r r", buf, len, &out), 400);
    j = parsed(&out);
    ck_assert_str_eq(jstr(j, "error"), "bad_channel");
    json_decref(j);
    free(buf);
    wsg_buf_free(&out);
}
END_TEST

START_TEST(info_reply)
{
    Wsgate__InfoReply ir = WSGATE__INFO_REPLY__INIT;
    Wsgate__InfoReply__Node n[2] = {WSGATE__INFO_REPLY__NODE__INIT,
                                    WSGATE__INFO_REPLY__NODE__INIT};
    Wsgate__InfoReply__Node *pn[] = {&n[0], &n[1]};
    Wsgate__InfoReply__Router r[2] = {WSGATE__INFO_REPLY__ROUTER__INIT,
                                      WSGATE__INFO_REPLY__ROUTER__INIT};
    Wsgate__InfoReply__Router *prt[] = {&r[0], &r[1]};
    n[0].node_id = "gw-a";
    n[0].epoch = UINT64_MAX;
    n[0].connections = 3;
    n[0].heartbeat_age_ms = 250;
    n[1].node_id = "gw-b";
    n[1].draining = 1;
    r[0].router_id = "router-2";
    r[0].heartbeat_age_ms = 1200;
    r[1].router_id = "router-1";
    r[1].self = 1;
    r[1].started_at_us = INT64_C(1700000000000999);
    ir.n_nodes = 2;
    ir.nodes = pn;
    ir.n_routers = 2;
    ir.routers = prt;
    ir.connections = 3;
    ir.users = 2;
    ir.channels = 1;
    ir.subscriptions = 4;
    size_t len;
    uint8_t *buf = pack(&ir.base, &len);
    wsg_buf out;
    wsg_buf_init(&out);
    ck_assert_int_eq(rt_api_json_info_reply(buf, len, &out), 200);
    json_t *j = parsed(&out);
    ck_assert_str_eq(jstr(j, "router"), "router-1");
    json_t *n0 = json_array_get(json_object_get(j, "nodes"), 0);
    ck_assert_str_eq(jstr(n0, "id"), "gw-a");
    ck_assert_str_eq(jstr(n0, "epoch"), "18446744073709551615");
    ck_assert_int_eq(jint(n0, "connections"), 3);
    ck_assert(json_is_false(json_object_get(n0, "draining")));
    ck_assert_int_eq(jint(n0, "heartbeat_age_ms"), 250);
    ck_assert(json_is_true(json_object_get(json_array_get(json_object_get(j, "nodes"), 1),
                                           "draining")));
    json_t *r1 = json_array_get(json_object_get(j, "routers"), 1);
    ck_assert(json_is_true(json_object_get(r1, "self")));
    ck_assert_int_eq(jint(r1, "started_at"), INT64_C(1700000000000));
    json_t *t = json_object_get(j, "totals");
    ck_assert_int_eq(jint(t, "nodes"), 2);
    ck_assert_int_eq(jint(t, "connections"), 3);
    ck_assert_int_eq(jint(t, "users"), 2);
    ck_assert_int_eq(jint(t, "channels"), 1);
    ck_assert_int_eq(jint(t, "subscriptions"), 4);
    json_decref(j);
    free(buf);
    wsg_buf_free(&out);
}
END_TEST

START_TEST(error_bodies)
{
    wsg_buf out;
    wsg_buf_init(&out);
    rt_api_json_error(1, "too_big", &out);
    wsg_buf_append(&out, "", 1);
    ck_assert_str_eq(out.data, "{\"accepted\":false,\"reason\":\"too_big\"}");
    wsg_buf_reset(&out);
    rt_api_json_error(0, "too_big", &out);
    wsg_buf_append(&out, "", 1);
    ck_assert_str_eq(out.data, "{\"error\":\"too_big\"}");
    wsg_buf_free(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_api_json");
    TCase *tc = tcase_create("api_json");
    tcase_add_test(tc, publish_user);
    tcase_add_test(tc, publish_every_target);
    tcase_add_test(tc, publish_refusals);
    tcase_add_test(tc, publish_payload_encoding);
    tcase_add_test(tc, disconnect_requests);
    tcase_add_test(tc, presence_requests);
    tcase_add_test(tc, publish_reply_one_stream);
    tcase_add_test(tc, publish_reply_several_or_none);
    tcase_add_test(tc, publish_reply_refusals);
    tcase_add_test(tc, disconnect_and_presence_replies);
    tcase_add_test(tc, info_reply);
    tcase_add_test(tc, error_bodies);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
