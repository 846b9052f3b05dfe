/* rt_api_json: JSON <-> server API protobuf messages (see rt_api_json.h). Requests are read
 * with jansson into the protobuf structs (whose strings point into the parsed tree, which lives
 * until the message is packed); answers are built as jansson trees and dumped compactly. */
#include "rt_api_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "wsg_num.h"
#include "wsg_pb.h"

#define R_INTERNAL 500

void rt_api_json_req_free(rt_api_json_req *r)
{
    if (!r)
        return;
    free(r->packed);
    free(r->user);
    free(r->channel);
    memset(r, 0, sizeof(*r));
}

/* ---- requests ---- */

/* The body as a JSON object; NULL with *reason (and *status) if it is not one. Duplicate keys
 * are refused: which of two "user"s was meant cannot be told. */
static json_t *load_object(const char *body, size_t len, const char **reason)
{
    json_error_t err;
    json_t *root = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err) : NULL;
    if (!root) {
        *reason = "invalid_json";
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *reason = "not_object";
        return NULL;
    }
    return root;
}

/* An optional member: NULL when absent or null. */
static json_t *opt_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

/* The fewest significant digits (15..17) that print every real in v back to its exact value,
 * so {"price":0.1} reaches clients as 0.1 and not 0.10000000000000001. */
static int real_precision(const json_t *v)
{
    int p = 15;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        char buf[40];
        for (; p < 17; p++) {
            snprintf(buf, sizeof(buf), "%.*g", p, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            int q = real_precision(m);
            p = q > p ? q : p;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            int q = real_precision(m);
            p = q > p ? q : p;
        }
    }
    return p;
}

static int pack_into(const ProtobufCMessage *msg, rt_api_json_req *out)
{
    return wsg_pb_pack(msg, &out->packed, &out->len) ? R_INTERNAL : 0;
}

/* conn_id: a decimal string, or a non-negative integer. */
static int conn_id_of(const json_t *v, uint64_t *out)
{
    if (json_is_string(v))
        return wsg_parse_u64(json_string_value(v), json_string_length(v), out);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    return -1;
}

static const char *const publish_targets[] = {"user", "users", "broadcast", "channel",
                                              "connection"};

/* Fills d's target from root (exactly one target member); users/cref are d's storage. */
static const char *publish_target(json_t *root, Wsgate__Delivery *d, Wsgate__UserList *users,
                                  Wsgate__ConnectionRef *cref, char ***user_ids)
{
    const char *which = NULL;
    for (size_t i = 0; i < sizeof(publish_targets) / sizeof(publish_targets[0]); i++) {
        if (!json_object_get(root, publish_targets[i]))
            continue;
        if (which)
            return "several_targets";
        which = publish_targets[i];
    }
    if (!which)
        return "no_target";
    json_t *v = json_object_get(root, which);
    if (!strcmp(which, "user")) {
        if (!json_is_string(v))
            return "bad_user";
        d->target_case = WSGATE__DELIVERY__TARGET_USER;
        d->user = (char *)json_string_value(v);
    } else if (!strcmp(which, "users")) {
        if (!json_is_array(v))
            return "bad_users";
        size_t n = json_array_size(v);
        *user_ids = calloc(n ? n : 1, sizeof(**user_ids));
        if (!*user_ids)
            return "internal";
        for (size_t i = 0; i < n; i++) {
            json_t *u = json_array_get(v, i);
            if (!json_is_string(u))
                return "bad_users";
            (*user_ids)[i] = (char *)json_string_value(u);
        }
        users->n_user_ids = n;
        users->user_ids = *user_ids;
        d->target_case = WSGATE__DELIVERY__TARGET_USERS;
        d->users = users;
    } else if (!strcmp(which, "broadcast")) {
        if (!json_is_true(v))
            return "bad_broadcast";
        d->target_case = WSGATE__DELIVERY__TARGET_BROADCAST;
        d->broadcast = 1;
    } else if (!strcmp(which, "channel")) {
        if (!json_is_string(v))
            return "bad_channel";
        d->target_case = WSGATE__DELIVERY__TARGET_CHANNEL;
        d->channel = (char *)json_string_value(v);
    } else {
        json_t *node = json_object_get(v, "node");
        if (!json_is_object(v) || !json_is_string(node) || json_string_length(node) == 0 ||
            conn_id_of(json_object_get(v, "conn_id"), &cref->conn_id))
            return "bad_connection";
        cref->node_id = (char *)json_string_value(node);
        d->target_case = WSGATE__DELIVERY__TARGET_CONNECTION;
        d->connection = cref;
    }
    return NULL;
}

int rt_api_json_publish(const char *body, size_t len, int64_t now_us, rt_api_json_req *out,
                        const char **reason)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load_object(body, len, reason);
    if (!root)
        return 400;
    Wsgate__Delivery d = WSGATE__DELIVERY__INIT;
    Wsgate__UserList users = WSGATE__USER_LIST__INIT;
    Wsgate__ConnectionRef cref = WSGATE__CONNECTION_REF__INIT;
    char **user_ids = NULL, *payload = NULL;
    int status = 400;
    *reason = publish_target(root, &d, &users, &cref, &user_ids);
    if (*reason) {
        status = strcmp(*reason, "internal") ? 400 : R_INTERNAL;
        goto done;
    }
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(data)) {
        *reason = "data_not_object";
        goto done;
    }
    json_t *id = opt_member(root, "id");
    if (id && !json_is_string(id)) {
        *reason = "bad_id";
        goto done;
    }
    if (id)
        d.id = (char *)json_string_value(id);
    payload = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(real_precision(data)));
    if (!payload) {
        *reason = "internal";
        status = R_INTERNAL;
        goto done;
    }
    d.payload.data = (uint8_t *)payload;
    d.payload.len = strlen(payload);
    d.created_at_us = now_us;
    status = pack_into(&d.base, out);
    if (status)
        *reason = "internal";
done:
    free(payload);
    free(user_ids);
    json_decref(root);
    return status;
}

int rt_api_json_disconnect(const char *body, size_t len, rt_api_json_req *out,
                           const char **reason)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load_object(body, len, reason);
    if (!root)
        return 400;
    Wsgate__DisconnectRequest rq = WSGATE__DISCONNECT_REQUEST__INIT;
    int status = 400;
    json_t *user = json_object_get(root, "user");
    json_t *code = opt_member(root, "code"), *why = opt_member(root, "reason");
    json_t *reconnect = opt_member(root, "reconnect");
    if (!json_is_string(user)) {
        *reason = "bad_user";
    } else if (code && (!json_is_integer(code) || json_integer_value(code) < 0 ||
                        json_integer_value(code) > 65535)) {
        *reason = "bad_code";
    } else if (why && !json_is_string(why)) {
        *reason = "bad_reason";
    } else if (reconnect && !json_is_boolean(reconnect)) {
        *reason = "bad_reconnect";
    } else {
        rq.user = (char *)json_string_value(user);
        rq.code = code ? (uint32_t)json_integer_value(code) : 0;
        if (why)
            rq.reason = (char *)json_string_value(why);
        rq.final = reconnect && json_is_false(reconnect);
        status = pack_into(&rq.base, out);
        if (!status && !(out->user = strdup(rq.user)))
            status = R_INTERNAL;
        if (status) {
            rt_api_json_req_free(out);
            *reason = "internal";
        }
    }
    json_decref(root);
    return status;
}

int rt_api_json_presence(const char *body, size_t len, rt_api_json_req *out,
                         const char **reason)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load_object(body, len, reason);
    if (!root)
        return 400;
    Wsgate__PresenceRequest rq = WSGATE__PRESENCE_REQUEST__INIT;
    int status = 400;
    json_t *user = json_object_get(root, "user"), *chan = json_object_get(root, "channel");
    if (user && chan) {
        *reason = "several_targets";
    } else if (!user && !chan) {
        *reason = "no_target";
    } else if (user && !json_is_string(user)) {
        *reason = "bad_user";
    } else if (chan && !json_is_string(chan)) {
        *reason = "bad_channel";
    } else {
        char **echo = user ? &out->user : &out->channel;
        if (user) {
            rq.target_case = WSGATE__PRESENCE_REQUEST__TARGET_USER;
            rq.user = (char *)json_string_value(user);
        } else {
            rq.target_case = WSGATE__PRESENCE_REQUEST__TARGET_CHANNEL;
            rq.channel = (char *)json_string_value(chan);
        }
        status = pack_into(&rq.base, out);
        if (!status && !(*echo = strdup(json_string_value(user ? user : chan))))
            status = R_INTERNAL;
        if (status) {
            rt_api_json_req_free(out);
            *reason = "internal";
        }
    }
    json_decref(root);
    return status;
}

/* ---- answers ---- */

/* Appends root (taken) to out; a tree that could not be built or dumped becomes the internal
 * error of its kind, and the status 500. */
static int emit(json_t *root, int status, int publish, wsg_buf *out)
{
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!s) {
        rt_api_json_error(publish, "internal", out);
        return R_INTERNAL;
    }
    wsg_buf_puts(out, s);
    free(s);
    return status;
}

void rt_api_json_error(int publish, const char *reason, wsg_buf *out)
{
    if (publish)
        wsg_buf_printf(out, "{\"accepted\":false,\"reason\":\"%s\"}", reason);
    else
        wsg_buf_printf(out, "{\"error\":\"%s\"}", reason);
}

/* json_integer for counters and seqs (a uint64 past INT64_MAX is clamped: no counter gets
 * there). */
static json_t *jint(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *jdec(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    return json_string(buf);
}

/* A string from a peer's message: jansson refuses text that is not UTF-8 (NULL). */
static json_t *jstr(const char *s)
{
    return json_string(s ? s : "");
}

static const char *stream_label(Wsgate__StreamKind k)
{
    switch (k) {
    case WSGATE__STREAM_KIND__STREAM_USER: return "user";
    case WSGATE__STREAM_KIND__STREAM_BROADCAST: return "broadcast";
    case WSGATE__STREAM_KIND__STREAM_CHANNEL: return "channel";
    default: return "none";
    }
}

/* stream, and user or channel, of one stored entry into o; -1 if a value cannot be made. */
static int put_stream(json_t *o, const Wsgate__DeliveryReply__Stored *s)
{
    const char *name = s->stream_name && *s->stream_name ? s->stream_name : s->user_id;
    if (json_object_set_new(o, "stream", json_string(stream_label(s->stream))))
        return -1;
    if (s->stream == WSGATE__STREAM_KIND__STREAM_USER)
        return json_object_set_new(o, "user", jstr(name));
    if (s->stream == WSGATE__STREAM_KIND__STREAM_CHANNEL)
        return json_object_set_new(o, "channel", jstr(name));
    return 0;
}

int rt_api_json_publish_reply(const uint8_t *reply, size_t len, wsg_buf *out)
{
    if (!reply) {
        rt_api_json_error(1, "overloaded", out);
        return 503;
    }
    Wsgate__DeliveryReply *r = wsgate__delivery_reply__unpack(NULL, len, reply);
    if (!r) {
        rt_api_json_error(1, "internal", out);
        return R_INTERNAL;
    }
    json_t *o = json_object();
    int status = 200, bad = !o;
    if (!bad && r->status != WSGATE__DELIVERY_REPLY__STATUS__ACCEPTED) {
        status = 400;
        bad |= json_object_set_new(o, "accepted", json_false());
        bad |= json_object_set_new(o, "reason", jstr(*r->reason ? r->reason : "rejected"));
    } else if (!bad) {
        bad |= json_object_set_new(o, "accepted", json_true());
        bad |= json_object_set_new(o, "id", jstr(r->id));
        if (r->n_stored == 1) {
            bad |= put_stream(o, r->stored[0]);
            bad |= json_object_set_new(o, "seq", jint(r->stored[0]->seq));
        } else {
            /* several: a Delivery to users (one stream per user, seqs in "stored") */
            bad |= json_object_set_new(o, "stream",
                                       json_string(r->n_stored ? stream_label(r->stored[0]->stream)
                                                               : "none"));
        }
        json_t *st = json_array();
        bad |= json_object_set_new(o, "stored", st);
        for (size_t i = 0; !bad && i < r->n_stored; i++) {
            json_t *e = json_object();
            bad |= json_array_append_new(st, e);
            bad |= !e || put_stream(e, r->stored[i]) ||
                   json_object_set_new(e, "seq", jint(r->stored[i]->seq));
        }
        bad |= json_object_set_new(o, "connections", jint(r->connections));
        bad |= json_object_set_new(o, "nodes", jint(r->nodes));
        if (r->history_unavailable)
            bad |= json_object_set_new(o, "history_unavailable", json_true());
    }
    wsgate__delivery_reply__free_unpacked(r, NULL);
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return emit(o, status, 1, out);
}

int rt_api_json_disconnect_reply(const char *user, const uint8_t *reply, size_t len,
                                 wsg_buf *out)
{
    if (!reply) {
        rt_api_json_error(0, "overloaded", out);
        return 503;
    }
    Wsgate__DisconnectReply *r = wsgate__disconnect_reply__unpack(NULL, len, reply);
    if (!r) {
        rt_api_json_error(0, "internal", out);
        return R_INTERNAL;
    }
    json_t *o = json_object();
    int status = 200, bad = !o;
    if (!bad && *r->error) {
        status = 400;
        bad |= json_object_set_new(o, "error", jstr(r->error));
    } else if (!bad) {
        bad |= json_object_set_new(o, "user", jstr(user));
        bad |= json_object_set_new(o, "connections", jint(r->connections));
        bad |= json_object_set_new(o, "nodes", jint(r->nodes));
    }
    wsgate__disconnect_reply__free_unpacked(r, NULL);
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return emit(o, status, 0, out);
}

int rt_api_json_presence_reply(const char *user, const char *channel, const uint8_t *reply,
                               size_t len, wsg_buf *out)
{
    if (!reply) {
        rt_api_json_error(0, "overloaded", out);
        return 503;
    }
    Wsgate__PresenceReply *r = wsgate__presence_reply__unpack(NULL, len, reply);
    if (!r) {
        rt_api_json_error(0, "internal", out);
        return R_INTERNAL;
    }
    json_t *o = json_object();
    int status = 200, bad = !o;
    if (!bad && *r->error) {
        status = 400;
        bad |= json_object_set_new(o, "error", jstr(r->error));
    } else if (!bad && user) {
        bad |= json_object_set_new(o, "user", jstr(user));
        bad |= json_object_set_new(o, "online", json_boolean(r->online));
        json_t *cs = json_array();
        bad |= json_object_set_new(o, "connections", cs);
        for (size_t i = 0; !bad && i < r->n_connections; i++) {
            const Wsgate__ConnInfo *c = r->connections[i];
            json_t *e = json_object(), *chs = json_array();
            bad |= json_array_append_new(cs, e);
            bad |= !e || json_object_set_new(e, "node", jstr(c->node_id)) ||
                   json_object_set_new(e, "conn_id", jdec(c->conn_id)) ||
                   json_object_set_new(e, "connected_at",
                                       json_integer(c->connected_at_us / 1000)) ||
                   json_object_set_new(e, "channels", chs);
            for (size_t k = 0; !bad && k < c->n_channels; k++)
                bad |= json_array_append_new(chs, jstr(c->channels[k]));
        }
    } else if (!bad) {
        bad |= json_object_set_new(o, "channel", jstr(channel));
        json_t *us = json_array();
        bad |= json_object_set_new(o, "users", us);
        for (size_t i = 0; !bad && i < r->n_users; i++)
            bad |= json_array_append_new(us, jstr(r->users[i]));
        bad |= json_object_set_new(o, "connections", jint(r->connection_count));
    }
    wsgate__presence_reply__free_unpacked(r, NULL);
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return emit(o, status, 0, out);
}

int rt_api_json_info_reply(const uint8_t *reply, size_t len, wsg_buf *out)
{
    if (!reply) {
        rt_api_json_error(0, "overloaded", out);
        return 503;
    }
    Wsgate__InfoReply *r = wsgate__info_reply__unpack(NULL, len, reply);
    if (!r) {
        rt_api_json_error(0, "internal", out);
        return R_INTERNAL;
    }
    json_t *o = json_object();
    int status = 200, bad = !o;
    if (!bad && *r->error) {
        status = R_INTERNAL;
        bad |= json_object_set_new(o, "error", jstr(r->error));
    } else if (!bad) {
        const char *self = "";
        for (size_t i = 0; i < r->n_routers; i++)
            if (r->routers[i]->self)
                self = r->routers[i]->router_id;
        bad |= json_object_set_new(o, "router", jstr(self));
        json_t *ns = json_array(), *rs = json_array(), *tot = json_object();
        bad |= json_object_set_new(o, "nodes", ns);
        bad |= json_object_set_new(o, "routers", rs);
        bad |= json_object_set_new(o, "totals", tot);
        for (size_t i = 0; !bad && i < r->n_nodes; i++) {
            const Wsgate__InfoReply__Node *n = r->nodes[i];
            json_t *e = json_object();
            bad |= json_array_append_new(ns, e);
            bad |= !e || json_object_set_new(e, "id", jstr(n->node_id)) ||
                   json_object_set_new(e, "epoch", jdec(n->epoch)) ||
                   json_object_set_new(e, "connections", jint(n->connections)) ||
                   json_object_set_new(e, "draining", json_boolean(n->draining)) ||
                   json_object_set_new(e, "heartbeat_age_ms", jint(n->heartbeat_age_ms)) ||
                   json_object_set_new(e, "frames_sent", jint(n->frames_sent)) ||
                   json_object_set_new(e, "frames_received", jint(n->frames_received));
        }
        for (size_t i = 0; !bad && i < r->n_routers; i++) {
            const Wsgate__InfoReply__Router *rt = r->routers[i];
            json_t *e = json_object();
            bad |= json_array_append_new(rs, e);
            bad |= !e || json_object_set_new(e, "id", jstr(rt->router_id)) ||
                   json_object_set_new(e, "self", json_boolean(rt->self)) ||
                   json_object_set_new(e, "heartbeat_age_ms", jint(rt->heartbeat_age_ms)) ||
                   json_object_set_new(e, "started_at",
                                       json_integer(rt->started_at_us / 1000)) ||
                   json_object_set_new(e, "routed", jint(rt->routed));
        }
        bad |= !tot || json_object_set_new(tot, "nodes", jint(r->n_nodes)) ||
               json_object_set_new(tot, "connections", jint(r->connections)) ||
               json_object_set_new(tot, "users", jint(r->users)) ||
               json_object_set_new(tot, "channels", jint(r->channels)) ||
               json_object_set_new(tot, "subscriptions", jint(r->subscriptions));
    }
    wsgate__info_reply__free_unpacked(r, NULL);
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return emit(o, status, 0, out);
}
