/* pub_msg: the publish's messages and its printed outcome (see pub_msg.h). */
#include "pub_msg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wsg_pb.h"
#include "wsg_stream.h"

/* Strings in a reply are at most this long (user ids, channels and ids are far shorter). */
#define REPLY_STR_MAX 4096

static json_t *parse_object(const char *data, size_t len)
{
    /* JSON_ALLOW_NUL: the router reads payloads the same way. */
    json_t *v = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

int pub_msg_data_ok(const char *data, size_t len)
{
    json_t *v = parse_object(data, len);
    json_decref(v);
    return v != NULL;
}

int pub_msg_delivery(const pub_target *t, const char *id, const char *data, size_t len,
                     uint8_t **out, size_t *outlen)
{
    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    Wsgate__UserList users = WSGATE__USER_LIST__INIT;
    Wsgate__ConnectionRef conn = WSGATE__CONNECTION_REF__INIT;
    switch (t->to) {
    case PUB_TO_USER:
        d.target_case = WSGATE__DELIVERY__TARGET_USER;
        d.user = t->name;
        break;
    case PUB_TO_USERS:
        d.target_case = WSGATE__DELIVERY__TARGET_USERS;
        users.n_user_ids = t->n_users;
        users.user_ids = t->users;
        d.users = &users;
        break;
    case PUB_TO_BROADCAST:
        d.target_case = WSGATE__DELIVERY__TARGET_BROADCAST;
        d.broadcast = 1;
        break;
    case PUB_TO_CHANNEL:
        d.target_case = WSGATE__DELIVERY__TARGET_CHANNEL;
        d.channel = t->name;
        break;
    case PUB_TO_CONNECTION:
        d.target_case = WSGATE__DELIVERY__TARGET_CONNECTION;
        conn.node_id = t->name;
        conn.conn_id = t->conn_id;
        d.connection = &conn;
        break;
    default:
        return -1;
    }
    d.payload.data = (uint8_t *)data;
    d.payload.len = len;
    if (id)
        d.id = (char *)id;
    return wsg_pb_pack(&d.base, out, outlen);
}

char *pub_msg_http_body(const pub_target *t, const char *id, const char *data, size_t len)
{
    json_t *body = json_object(), *obj = parse_object(data, len), *v = NULL;
    char *text = NULL;
    if (!body || !obj)
        goto out;
    int rc = 0;
    switch (t->to) {
    case PUB_TO_USER: rc = json_object_set_new(body, "user", json_string(t->name)); break;
    case PUB_TO_CHANNEL: rc = json_object_set_new(body, "channel", json_string(t->name)); break;
    case PUB_TO_BROADCAST: rc = json_object_set_new(body, "broadcast", json_true()); break;
    case PUB_TO_USERS:
        if (!(v = json_array()))
            goto out;
        for (size_t i = 0; i < t->n_users && rc == 0; i++)
            rc = json_array_append_new(v, json_string(t->users[i]));
        rc = rc || json_object_set(body, "users", v);
        break;
    case PUB_TO_CONNECTION: {
        char num[24];
        snprintf(num, sizeof(num), "%" PRIu64, t->conn_id);
        rc = !(v = json_pack("{s:s, s:s}", "node", t->name, "conn_id", num)) ||
             json_object_set(body, "connection", v);
        break;
    }
    default:
        goto out;
    }
    /* A name that is not UTF-8 makes json_string NULL and the set fail: the router would
     * refuse it too, and the body must stay JSON. */
    if (rc || json_object_set(body, "data", obj) ||
        (id && json_object_set_new(body, "id", json_string(id))))
        goto out;
    text = json_dumps(body, JSON_COMPACT);
out:
    json_decref(v);
    json_decref(obj);
    json_decref(body);
    return text;
}

static int set_str(json_t *o, const char *key, const char *s)
{
    if (!wsg_pb_str_ok(s, REPLY_STR_MAX))
        return -1;
    return json_object_set_new(o, key, json_string(s));
}

/* The stream's name key in the API's JSON: "user" or "channel"; NULL for unnamed kinds. */
static const char *name_key(unsigned kind)
{
    return kind == WSG_STREAM_USER ? "user" : kind == WSG_STREAM_CHANNEL ? "channel" : NULL;
}

/* One stored entry's fields (stream, user/channel, seq) into o. */
static int stored_fields(json_t *o, const Wsgate__DeliveryReply__Stored *s)
{
    const char *label = wsg_stream_label((unsigned)s->stream);
    const char *key = name_key((unsigned)s->stream);
    const char *name = s->stream_name && *s->stream_name ? s->stream_name : s->user_id;
    if (!label || s->stream == WSGATE__STREAM_KIND__STREAM_NONE)
        return -1;
    if (json_object_set_new(o, "stream", json_string(label)))
        return -1;
    if (key && set_str(o, key, name ? name : ""))
        return -1;
    return json_object_set_new(o, "seq", json_integer((json_int_t)s->seq));
}

char *pub_msg_reply_json(const uint8_t *reply, size_t len, int *accepted)
{
    Wsgate__DeliveryReply *r = wsgate__delivery_reply__unpack(NULL, len, reply);
    json_t *o = json_object(), *stored = NULL;
    char *text = NULL;
    *accepted = 0;
    if (!r || !o)
        goto out;
    int ok = r->status == WSGATE__DELIVERY_REPLY__STATUS__ACCEPTED;
    if (json_object_set_new(o, "accepted", json_boolean(ok)))
        goto out;
    /* As the HTTP API answers: a refusal is its reason alone (400 {"accepted":false,
     * "reason":R}); an acceptance always carries the id, "" when none was given. */
    if (!ok) {
        if (set_str(o, "reason", r->reason && *r->reason ? r->reason : "rejected"))
            goto out;
        text = json_dumps(o, JSON_COMPACT);
        goto out;
    }
    if (set_str(o, "id", r->id ? r->id : ""))
        goto out;
    if (!(stored = json_array()))
        goto out;
    for (size_t i = 0; i < r->n_stored; i++) {
        json_t *e = json_object();
        if (!e || json_array_append_new(stored, e) || stored_fields(e, r->stored[i]))
            goto out;
    }
    if (r->n_stored == 1) {
        if (stored_fields(o, r->stored[0]))
            goto out;
    } else {
        /* several: a Delivery to users, one stream per user (their seqs are in "stored") */
        const char *label = r->n_stored ? wsg_stream_label((unsigned)r->stored[0]->stream) : "none";
        if (!label || json_object_set_new(o, "stream", json_string(label)))
            goto out;
    }
    if (json_object_set(o, "stored", stored) ||
        json_object_set_new(o, "connections", json_integer(r->connections)) ||
        json_object_set_new(o, "nodes", json_integer(r->nodes)) ||
        (r->history_unavailable && json_object_set_new(o, "history_unavailable", json_true())))
        goto out;
    text = json_dumps(o, JSON_COMPACT);
    *accepted = text != NULL;
out:
    json_decref(stored);
    json_decref(o);
    if (r)
        wsgate__delivery_reply__free_unpacked(r, NULL);
    return text;
}

char *pub_msg_failure(const char *reason, long line)
{
    json_t *o = line > 0 ? json_pack("{s:b, s:s, s:I}", "accepted", 0, "reason", reason, "line",
                                     (json_int_t)line)
                         : json_pack("{s:b, s:s}", "accepted", 0, "reason", reason);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

char *pub_msg_one_line(const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    char *out = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    return out;
}
