/* rt_route: validation of messages from NATS into jobs (fan-out: rt_route_fanout.c). */
#include "rt_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_kinds.h"
#include "rt_strset.h"
#include "wsg_client.h"
#include "wsg_stream.h"
#include "wsg_pb.h"
#include "wsg_user.h"

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

void rt_job_free(rt_job *j)
{
    if (!j)
        return;
    rt_frame_free(&j->frame);
    for (size_t i = 0; i < j->nparts; i++)
        free(j->parts[i].name);
    free(j->parts);
    free(j->channel);
    json_decref(j->ref);
    free(j);
}

static rt_job *job_new(rt_job_kind kind, size_t nparts)
{
    rt_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->kind = kind;
    if (nparts) {
        j->parts = calloc(nparts, sizeof(*j->parts));
        if (!j->parts) {
            free(j);
            return NULL;
        }
    }
    return j;
}

static int part_add(rt_job *j, Wsgate__StreamKind kind, const char *name)
{
    rt_part *p = &j->parts[j->nparts];
    p->kind = kind;
    if (!(p->name = strdup(name ? name : "")))
        return -1;
    j->nparts++;
    return 0;
}

/* ---- inbound frames ---- */

typedef struct inbound {
    Wsgate__InboundFrame *f;
    json_t *root;
    json_t *content;
    int64_t at_us;
} inbound;

/* What a frame type's "content" must be. */
typedef enum { CONTENT_STRING, CONTENT_ANY, CONTENT_NONE } content_rule;

static void inbound_free(inbound *in)
{
    json_decref(in->root);
    if (in->f)
        wsgate__inbound_frame__free_unpacked(in->f, NULL);
}

static int inbound_parse(inbound *in, const uint8_t *msg, size_t len, const char *type,
                         content_rule rule, int64_t now_us, rt_route_result *res)
{
    memset(in, 0, sizeof(*in));
    in->f = wsgate__inbound_frame__unpack(NULL, len, msg);
    if (!in->f) {
        reject(res, RT_REJ_DECODE);
        return -1;
    }
    const Wsgate__InboundFrame *f = in->f;
    if (!f->user_id || !wsg_user_id_str_valid(f->user_id) || !f->node_id ||
        !wsg_subject_node_id_valid(f->node_id, strlen(f->node_id)) || !f->payload.data) {
        reject(res, RT_REJ_INVALID_FRAME);
        return -1;
    }
    in->root = json_loadb((const char *)f->payload.data, f->payload.len, JSON_REJECT_DUPLICATES,
                          NULL);
    json_t *t = in->root ? json_object_get(in->root, "type") : NULL;
    in->content = in->root ? json_object_get(in->root, "content") : NULL;
    int content_ok = rule == CONTENT_NONE     ? 1
                     : rule == CONTENT_STRING ? json_is_string(in->content)
                                              : in->content != NULL;
    if (!json_is_object(in->root) || !json_is_string(t) || strcmp(json_string_value(t), type) ||
        !content_ok) {
        reject(res, RT_REJ_INVALID_FRAME);
        return -1;
    }
    in->at_us = f->received_at_us > 0 ? f->received_at_us : now_us;
    return 0;
}

/* The sender of a client frame and the frame's "id", for its answers. */
static void sender_take(rt_job *j, const inbound *in)
{
    json_t *id = json_object_get(in->root, "id");
    if (json_is_string(id) || json_is_number(id))
        j->ref = json_incref(id);
    snprintf(j->sender_node, sizeof(j->sender_node), "%s", in->f->node_id);
    j->sender_epoch = in->f->node_epoch;
    j->sender_conn = in->f->conn_id;
    j->created_at_us = in->at_us;
}

/* A job that only answers its sender with an error, in its turn; RT_REJECTED with why. */
static rt_route_status refused_job(const inbound *in, rt_job_kind kind, rt_reject why,
                                   wsg_client_error code, const char *text, json_t *channel,
                                   rt_job **out, rt_route_result *res)
{
    rt_job *j = job_new(kind, 0);
    if (!j || (json_is_string(channel) && !(j->channel = strdup(json_string_value(channel))))) {
        rt_job_free(j);
        return finish(res, RT_ROUTE_NOMEM);
    }
    j->refused = 1;
    j->refuse_code = code;
    j->refuse_msg = text;
    sender_take(j, in);
    *out = j;
    return reject(res, why);
}

static rt_route_status inbound_job(const uint8_t *msg, size_t len, int64_t now_us,
                                   const char *in_type, const char *out_type, rt_job **out,
                                   rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    *out = NULL;
    inbound in;
    rt_job *j = NULL;
    int dm = !strcmp(in_type, wsg_client_type_name(WSG_CLIENT_TYPE_SEND_MESSAGE));
    if (inbound_parse(&in, msg, len, in_type, CONTENT_STRING, now_us, res))
        goto out;
    if (!dm && !in.f->permitted) {
        refused_job(&in, RT_JOB_BROADCAST, RT_REJ_FORBIDDEN, WSG_CLIENT_ERR_FORBIDDEN,
                    "this connection may not broadcast", NULL, out, res);
        goto out;
    }
    json_t *target = dm ? json_object_get(in.root, "target_user") : NULL;
    if (dm && !json_is_string(target)) {
        reject(res, RT_REJ_INVALID_FRAME);
        goto out;
    }
    /* A client can name any target: one that is not a user id is refused here, where streams
     * are named and kept, and the sender is told (the gateway only checks the shape). */
    int refused =
        dm && !wsg_user_id_valid(json_string_value(target), json_string_length(target));
    j = job_new(dm ? RT_JOB_SEND_MESSAGE : RT_JOB_BROADCAST, refused ? 0 : 1);
    if (!j || (!refused &&
               (rt_frame_client(&j->frame, out_type, in.f->user_id, in.content, in.at_us / 1000) ||
                part_add(j, dm ? WSGATE__STREAM_KIND__STREAM_USER
                               : WSGATE__STREAM_KIND__STREAM_BROADCAST,
                         dm ? json_string_value(target) : NULL)))) {
        finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    j->refused = refused;
    if (refused) {
        j->refuse_code = WSG_CLIENT_ERR_INVALID_FIELD;
        j->refuse_msg = "\"target_user\" is not a user id: 1-128 bytes of UTF-8 without control "
                        "characters";
    }
    /* The sender learns that its message was stored (a receipt with the seq) when it asked for
     * it with an id, for a send_message and a broadcast alike. */
    sender_take(j, &in);
    *out = j;
    j = NULL;
    if (refused)
        reject(res, RT_REJ_INVALID_USER);
    else
        finish(res, RT_ROUTED);
out:
    rt_job_free(j);
    inbound_free(&in);
    return res->status;
}

rt_route_status rt_route_send_message(const uint8_t *msg, size_t len, int64_t now_us,
                                      rt_job **out, rt_route_result *res)
{
    return inbound_job(msg, len, now_us, wsg_client_type_name(WSG_CLIENT_TYPE_SEND_MESSAGE),
                       wsg_client_type_name(WSG_CLIENT_TYPE_MESSAGE), out, res);
}

rt_route_status rt_route_broadcast(const uint8_t *msg, size_t len, int64_t now_us, rt_job **out,
                                   rt_route_result *res)
{
    return inbound_job(msg, len, now_us, wsg_client_type_name(WSG_CLIENT_TYPE_BROADCAST),
                       wsg_client_type_name(WSG_CLIENT_TYPE_BROADCAST), out, res);
}

/* ---- channel frames ---- */

/* The channel named by a frame or a Delivery and its namespace; 0, or -1 with why. */
static int channel_check(const wsg_ns_table *t, const char *c, const wsg_ns **ns, rt_reject *why)
{
    if (!c || !wsg_channel_valid(c, strlen(c))) {
        *why = RT_REJ_BAD_CHANNEL;
        return -1;
    }
    if (!t || !(*ns = wsg_ns_find(t, c, strlen(c)))) {
        *why = RT_REJ_UNKNOWN_NAMESPACE;
        return -1;
    }
    return 0;
}

static wsg_client_error reject_code(rt_reject why)
{
    return why == RT_REJ_BAD_CHANNEL          ? WSG_CLIENT_ERR_BAD_CHANNEL
           : why == RT_REJ_UNKNOWN_NAMESPACE ? WSG_CLIENT_ERR_UNKNOWN_NAMESPACE
                                              : WSG_CLIENT_ERR_FORBIDDEN;
}

static const char *reject_text(rt_reject why)
{
    return why == RT_REJ_BAD_CHANNEL ? "not a channel name: 1-128 of A-Z a-z 0-9 _ . : @ -"
           : why == RT_REJ_UNKNOWN_NAMESPACE ? "the channel's namespace is not configured"
                                             : "this connection may not do that on this channel";
}

/* publish and presence: the checks both make, then the job. */
static rt_route_status channel_job(const uint8_t *msg, size_t len, const wsg_ns_table *t,
                                   int64_t now_us, rt_job_kind kind, rt_job **out,
                                   rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    *out = NULL;
    int pub = kind == RT_JOB_PUBLISH;
    inbound in;
    rt_job *j = NULL;
    wsg_client_type type = pub ? WSG_CLIENT_TYPE_PUBLISH : WSG_CLIENT_TYPE_PRESENCE;
    if (inbound_parse(&in, msg, len, wsg_client_type_name(type), pub ? CONTENT_ANY : CONTENT_NONE,
                      now_us, res))
        goto out;
    json_t *chan = json_object_get(in.root, "channel");
    const char *c = json_is_string(chan) ? json_string_value(chan) : NULL;
    const wsg_ns *ns = NULL;
    rt_reject why = RT_REJ_FORBIDDEN; /* unless channel_check finds worse */
    int allowed = in.f->permitted && channel_check(t, c, &ns, &why) == 0 &&
                  (pub ? ns->client_publish : ns->presence);
    if (!allowed) {
        refused_job(&in, kind, why, reject_code(why), reject_text(why), chan, out, res);
        goto out;
    }
    j = job_new(kind, pub ? 1 : 0);
    if (!j || !(j->channel = strdup(c)) ||
        (pub && (rt_frame_publication(&j->frame, c, in.f->user_id, in.content, in.at_us / 1000) ||
                 part_add(j, WSGATE__STREAM_KIND__STREAM_CHANNEL, c)))) {
        finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    sender_take(j, &in);
    *out = j;
    j = NULL;
    finish(res, RT_ROUTED);
out:
    rt_job_free(j);
    inbound_free(&in);
    return res->status;
}

rt_route_status rt_route_publish(const uint8_t *msg, size_t len, const wsg_ns_table *ns,
                                 int64_t now_us, rt_job **out, rt_route_result *res)
{
    return channel_job(msg, len, ns, now_us, RT_JOB_PUBLISH, out, res);
}

rt_route_status rt_route_presence(const uint8_t *msg, size_t len, const wsg_ns_table *ns,
                                  int64_t now_us, rt_job **out, rt_route_result *res)
{
    return channel_job(msg, len, ns, now_us, RT_JOB_PRESENCE, out, res);
}

/* ---- deliveries ---- */

/* Checks the target alone; 0 if usable. */
static int target_check(const Wsgate__Delivery *d, const wsg_ns_table *t, rt_route_result *res)
{
    const wsg_ns *ns;
    rt_reject why;
    switch (d->target_case) {
    case WSGATE__DELIVERY__TARGET_CHANNEL:
        if (channel_check(t, d->channel, &ns, &why))
            return reject(res, why), -1;
        return 0;
    case WSGATE__DELIVERY__TARGET_USER:
        if (!d->user || !*d->user)
            return reject(res, RT_REJ_NO_TARGET), -1;
        if (!wsg_user_id_str_valid(d->user))
            return reject(res, RT_REJ_INVALID_USER), -1;
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
        if (!d->connection || !d->connection->node_id ||
            !wsg_subject_node_id_valid(d->connection->node_id, strlen(d->connection->node_id)))
            return reject(res, RT_REJ_NO_TARGET), -1;
        return 0;
    default:
        return reject(res, RT_REJ_NO_TARGET), -1;
    }
}

/* The distinct users of a users target, as parts; one that is not a user id refuses them all
 * (the publisher is told which rule it broke rather than getting part of its list). */
static int users_parts(rt_job *j, const Wsgate__UserList *ul, size_t payload_len,
                       rt_route_result *res)
{
    rt_strset *seen = NULL;
    int rc = 0;
    size_t n = 0;
    for (size_t i = 0; i < ul->n_user_ids && rc == 0; i++) {
        const char *u = ul->user_ids[i];
        if (!wsg_user_id_str_valid(u)) {
            rt_strset_free(&seen);
            return reject(res, RT_REJ_INVALID_USER), -1;
        }
        int s = rt_strset_add(&seen, u);
        if (s < 0)
            rc = -1;
        else if (s == 0)
            n++;
    }
    rt_strset_free(&seen);
    if (rc)
        return finish(res, RT_ROUTE_NOMEM), -1;
    if (n == 0)
        return reject(res, RT_REJ_EMPTY_USERS), -1;
    if (payload_len > RT_MAX_FANOUT_BYTES / n)
        return reject(res, RT_REJ_TOO_BIG), -1;
    if (!(j->parts = calloc(n, sizeof(*j->parts))))
        return finish(res, RT_ROUTE_NOMEM), -1;
    for (size_t i = 0; i < ul->n_user_ids && rc == 0; i++) {
        const char *u = ul->user_ids[i];
        int s = rt_strset_add(&seen, u);
        if (s < 0 || (s == 0 && part_add(j, WSGATE__STREAM_KIND__STREAM_USER, u)))
            rc = -1;
    }
    rt_strset_free(&seen);
    if (rc)
        return finish(res, RT_ROUTE_NOMEM), -1;
    return 0;
}

/* A Delivery to a channel: its payload, a JSON object, is the content of a publication. */
static rt_frame_status channel_frame(rt_frame *f, const Wsgate__Delivery *d, int64_t ts_ms)
{
    memset(f, 0, sizeof(*f));
    json_t *obj = json_loadb((const char *)d->payload.data, d->payload.len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return RT_FRAME_BAD;
    }
    int rc = rt_frame_publication(f, d->channel, NULL, obj, ts_ms);
    json_decref(obj);
    return rc ? RT_FRAME_NOMEM : RT_FRAME_OK;
}

rt_route_status rt_route_deliver(const uint8_t *msg, size_t len, size_t max_payload,
                                 const wsg_ns_table *ns, int64_t now_us, rt_job **out,
                                 rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    *out = NULL;
    Wsgate__Delivery *d = wsgate__delivery__unpack(NULL, len, msg);
    if (!d)
        return reject(res, RT_REJ_DECODE);
    if (d->id && wsg_pb_str_ok(d->id, RT_DELIVERY_ID_MAX))
        snprintf(res->delivery_id, sizeof(res->delivery_id), "%s", d->id);
    rt_job *j = NULL;
    if (target_check(d, ns, res))
        goto out;
    if (d->payload.len > max_payload) {
        reject(res, RT_REJ_TOO_BIG);
        goto out;
    }
    int to_channel = d->target_case == WSGATE__DELIVERY__TARGET_CHANNEL;
    size_t nparts = d->target_case == WSGATE__DELIVERY__TARGET_USER ||
                            d->target_case == WSGATE__DELIVERY__TARGET_BROADCAST || to_channel
                        ? 1
                        : 0;
    if (!(j = job_new(RT_JOB_DELIVER, nparts))) {
        finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    j->created_at_us = d->created_at_us > 0 ? d->created_at_us : now_us;
    rt_frame_status fs =
        to_channel ? channel_frame(&j->frame, d, j->created_at_us / 1000)
                   : rt_frame_from_payload(&j->frame, d->payload.data, d->payload.len);
    if (fs == RT_FRAME_NOMEM) {
        finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    if (fs != RT_FRAME_OK) {
        reject(res, RT_REJ_BAD_PAYLOAD);
        goto out;
    }
    int rc = 0;
    switch (d->target_case) {
    case WSGATE__DELIVERY__TARGET_CHANNEL:
        rc = part_add(j, WSGATE__STREAM_KIND__STREAM_CHANNEL, d->channel) ||
             !(j->channel = strdup(d->channel));
        break;
    case WSGATE__DELIVERY__TARGET_USER:
        rc = part_add(j, WSGATE__STREAM_KIND__STREAM_USER, d->user);
        break;
    case WSGATE__DELIVERY__TARGET_BROADCAST:
        rc = part_add(j, WSGATE__STREAM_KIND__STREAM_BROADCAST, NULL);
        break;
    case WSGATE__DELIVERY__TARGET_USERS:
        if (users_parts(j, d->users, d->payload.len, res))
            goto out;
        break;
    default:
        j->to_conn = 1;
        snprintf(j->conn_node, sizeof(j->conn_node), "%s", d->connection->node_id);
        j->conn_id = d->connection->conn_id;
        break;
    }
    if (rc) {
        finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    *out = j;
    j = NULL;
    finish(res, RT_ROUTED);
out:
    rt_job_free(j);
    wsgate__delivery__free_unpacked(d, NULL);
    return res->status;
}
