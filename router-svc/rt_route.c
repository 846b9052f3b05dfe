/* rt_route: validation and target resolution for the three routed subjects. */
#include "rt_route.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "proto/wsgate.pb-c.h"
#include "wsg_pb.h"
#include "wsg_subject.h"

/* Collects resolved connections into the batch. */
typedef struct fanout {
    rt_batch *b;
    size_t n;
    int failed;
} fanout;

static void add_conn(const char *node_id, uint64_t epoch, uint64_t conn_id, void *arg)
{
    fanout *f = arg;
    if (rt_batch_add_conn(f->b, node_id, epoch, conn_id))
        f->failed = 1;
    else
        f->n++;
}

static void add_node(const char *node_id, uint64_t epoch, void *arg)
{
    fanout *f = arg;
    if (rt_batch_add_all(f->b, node_id, epoch))
        f->failed = 1;
    else
        f->n++;
}

static rt_route_status reject(rt_route_result *res, rt_reject why)
{
    res->status = RT_REJECTED;
    res->reason = why;
    return res->status;
}

static rt_route_status finish(rt_route_result *res, rt_route_status st)
{
    res->status = st;
    return st;
}

static int user_id_ok(const char *s, size_t n)
{
    return n >= 1 && n <= RT_USER_ID_MAX && strlen(s) == n && wsg_pb_str_ok(s, RT_USER_ID_MAX);
}

/* Serialises obj (stolen) compactly and starts a batch message with it. */
static int begin_json(rt_batch *b, json_t *obj, int64_t created_at_us)
{
    if (!obj)
        return -1;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return -1;
    int rc = rt_batch_begin(b, text, strlen(text), created_at_us);
    free(text);
    return rc;
}

/* The parts of an InboundFrame both built-in frame types need, checked. */
typedef struct inbound {
    Wsgate__InboundFrame *f;
    json_t *root;
    json_t *content;
    int64_t at_us;
} inbound;

static void inbound_free(inbound *in)
{
    json_decref(in->root);
    if (in->f)
        wsgate__inbound_frame__free_unpacked(in->f, NULL);
}

static int inbound_parse(inbound *in, const uint8_t *msg, size_t len, const char *type,
                         int64_t now_us, rt_route_result *res)
{
    memset(in, 0, sizeof(*in));
    in->f = wsgate__inbound_frame__unpack(NULL, len, msg);
    if (!in->f) {
        reject(res, RT_REJ_DECODE);
        return -1;
    }
    const Wsgate__InboundFrame *f = in->f;
    if (!f->user_id || !user_id_ok(f->user_id, strlen(f->user_id)) || !f->node_id ||
        !wsg_subject_node_id_valid(f->node_id, strlen(f->node_id)) || !f->payload.data) {
        reject(res, RT_REJ_INVALID_FRAME);
        return -1;
    }
    in->root = json_loadb((const char *)f->payload.data, f->payload.len, JSON_REJECT_DUPLICATES,
                          NULL);
    json_t *t = in->root ? json_object_get(in->root, "type") : NULL;
    in->content = in->root ? json_object_get(in->root, "content") : NULL;
    if (!json_is_object(in->root) || !json_is_string(t) || strcmp(json_string_value(t), type) ||
        !json_is_string(in->content)) {
        reject(res, RT_REJ_INVALID_FRAME);
        return -1;
    }
    in->at_us = f->received_at_us > 0 ? f->received_at_us : now_us;
    return 0;
}

static json_t *client_frame(const char *type, const inbound *in)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(type)) ||
        json_object_set_new(o, "from", json_string(in->f->user_id)) ||
        json_object_set(o, "content", in->content) ||
        json_object_set_new(o, "ts", json_integer(in->at_us / 1000))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *offline_frame(json_t *target, json_t *id)
{
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "type", json_string("error")) ||
        json_object_set_new(o, "code", json_string("user_offline")) ||
        json_object_set_new(o, "message", json_string("user is not connected")) ||
        json_object_set(o, "target_user", target) ||
        ((json_is_string(id) || json_is_number(id)) && json_object_set(o, "ref", id))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

rt_route_status rt_route_send_message(const rt_registry *reg, rt_batch *b, const uint8_t *msg,
                                      size_t len, int64_t now_us, rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    inbound in;
    rt_route_status st;
    if (inbound_parse(&in, msg, len, "send_message", now_us, res)) {
        inbound_free(&in);
        return res->status;
    }
    json_t *target = json_object_get(in.root, "target_user");
    if (!json_is_string(target) ||
        !user_id_ok(json_string_value(target), json_string_length(target))) {
        inbound_free(&in);
        return reject(res, RT_REJ_INVALID_FRAME);
    }
    fanout f = {.b = b};
    if (begin_json(b, client_frame("message", &in), in.at_us)) {
        st = finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    rt_registry_user_conns(reg, json_string_value(target), add_conn, &f);
    res->targets = f.n;
    if (f.failed) {
        st = finish(res, RT_ROUTE_NOMEM);
    } else if (f.n > 0) {
        st = finish(res, RT_ROUTED);
    } else if (begin_json(b, offline_frame(target, json_object_get(in.root, "id")), in.at_us) ||
               rt_batch_add_conn(b, in.f->node_id, in.f->node_epoch, in.f->conn_id)) {
        st = finish(res, RT_ROUTE_NOMEM);
    } else {
        st = finish(res, RT_USER_OFFLINE);
    }
out:
    inbound_free(&in);
    return st;
}

rt_route_status rt_route_broadcast(const rt_registry *reg, rt_batch *b, const uint8_t *msg,
                                   size_t len, int64_t now_us, rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    inbound in;
    rt_route_status st;
    if (inbound_parse(&in, msg, len, "broadcast", now_us, res)) {
        inbound_free(&in);
        return res->status;
    }
    fanout f = {.b = b};
    if (begin_json(b, client_frame("broadcast", &in), in.at_us)) {
        st = finish(res, RT_ROUTE_NOMEM);
    } else {
        rt_registry_nodes(reg, add_node, &f);
        res->targets = f.n;
        st = finish(res, f.failed ? RT_ROUTE_NOMEM : f.n ? RT_ROUTED : RT_UNDELIVERABLE);
    }
    inbound_free(&in);
    return st;
}

/* Set of user ids already resolved, so a user listed twice gets one copy. */
typedef struct seen_user {
    UT_hash_handle hh;
    const char *id;
} seen_user;

static int deliver_users(const rt_registry *reg, const Wsgate__UserList *ul, fanout *f)
{
    seen_user *seen = NULL, *s, *tmp;
    int rc = 0;
    for (size_t i = 0; i < ul->n_user_ids; i++) {
        const char *u = ul->user_ids[i];
        size_t n = u ? strlen(u) : 0;
        if (!user_id_ok(u, n))
            continue; /* names nobody: nothing to resolve */
        HASH_FIND(hh, seen, u, n, s);
        if (s)
            continue;
        s = malloc(sizeof(*s));
        if (!s) {
            rc = -1;
            break;
        }
        s->id = u;
        HASH_ADD_KEYPTR(hh, seen, s->id, n, s);
        rt_registry_user_conns(reg, u, add_conn, f);
    }
    HASH_ITER(hh, seen, s, tmp) {
        HASH_DEL(seen, s);
        free(s);
    }
    return rc;
}

/* Checks the target alone; 0 if usable. */
static int target_check(const Wsgate__Delivery *d, rt_route_result *res)
{
    switch (d->target_case) {
    case WSGATE__DELIVERY__TARGET_USER:
        if (!d->user || !*d->user)
            return reject(res, RT_REJ_NO_TARGET), -1;
        return 0;
    case WSGATE__DELIVERY__TARGET_USERS:
        if (!d->users || d->users->n_user_ids == 0)
            return reject(res, RT_REJ_EMPTY_USERS), -1;
        if (d->users->n_user_ids > RT_MAX_DELIVERY_USERS)
            return reject(res, RT_REJ_TOO_BIG), -1;
        return 0;
    case WSGATE__DELIVERY__TARGET_BROADCAST:
        if (!d->broadcast)
            return reject(res, RT_REJ_NO_TARGET), -1;
        return 0;
    case WSGATE__DELIVERY__TARGET_CONNECTION:
        if (!d->connection || !d->connection->node_id || !*d->connection->node_id)
            return reject(res, RT_REJ_NO_TARGET), -1;
        return 0;
    default:
        return reject(res, RT_REJ_NO_TARGET), -1;
    }
}

static int payload_check(const Wsgate__Delivery *d, size_t max_payload, rt_route_result *res)
{
    if (d->payload.len > max_payload)
        return reject(res, RT_REJ_TOO_BIG), -1;
    if (d->payload.len == 0 || !d->payload.data)
        return reject(res, RT_REJ_BAD_PAYLOAD), -1;
    /* jansson rejects invalid UTF-8 and trailing garbage; \u0000 escapes are valid JSON. */
    json_t *root = json_loadb((const char *)d->payload.data, d->payload.len, JSON_ALLOW_NUL, NULL);
    int ok = json_is_object(root);
    json_decref(root);
    if (!ok)
        return reject(res, RT_REJ_BAD_PAYLOAD), -1;
    return 0;
}

rt_route_status rt_route_deliver(const rt_registry *reg, rt_batch *b, const uint8_t *msg,
                                 size_t len, size_t max_payload, int64_t now_us,
                                 rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    Wsgate__Delivery *d = wsgate__delivery__unpack(NULL, len, msg);
    if (!d)
        return reject(res, RT_REJ_DECODE);
    rt_route_status st = RT_REJECTED;
    if (target_check(d, res) || payload_check(d, max_payload, res))
        goto out;
    int64_t at = d->created_at_us > 0 ? d->created_at_us : now_us;
    if (rt_batch_begin(b, d->payload.data, d->payload.len, at)) {
        st = finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    fanout f = {.b = b};
    int rc = 0;
    switch (d->target_case) {
    case WSGATE__DELIVERY__TARGET_USER:
        if (user_id_ok(d->user, strlen(d->user)))
            rt_registry_user_conns(reg, d->user, add_conn, &f);
        break;
    case WSGATE__DELIVERY__TARGET_USERS:
        rc = deliver_users(reg, d->users, &f);
        break;
    case WSGATE__DELIVERY__TARGET_BROADCAST:
        rt_registry_nodes(reg, add_node, &f);
        break;
    case WSGATE__DELIVERY__TARGET_CONNECTION: {
        /* the connection itself may be younger than our view of it; its node must be live */
        uint64_t epoch;
        if (rt_registry_node_epoch(reg, d->connection->node_id, &epoch) == 0)
            add_conn(d->connection->node_id, epoch, d->connection->conn_id, &f);
        break;
    }
    default:
        break;
    }
    res->targets = f.n;
    st = finish(res, rc || f.failed ? RT_ROUTE_NOMEM : f.n ? RT_ROUTED : RT_UNDELIVERABLE);
out:
    wsgate__delivery__free_unpacked(d, NULL);
    return st;
}
