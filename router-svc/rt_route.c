/* rt_route: validation into jobs, and target resolution of finished jobs. */
#include "rt_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "rt_kinds.h"
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
    if (!f->user_id || !wsg_user_id_str_valid(f->user_id) || !f->node_id ||
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

static rt_route_status inbound_job(const uint8_t *msg, size_t len, int64_t now_us,
                                   const char *in_type, const char *out_type, rt_job **out,
                                   rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    *out = NULL;
    inbound in;
    rt_job *j = NULL;
    int dm = !strcmp(in_type, wsg_client_type_name(WSG_CLIENT_TYPE_SEND_MESSAGE));
    if (inbound_parse(&in, msg, len, in_type, now_us, res))
        goto out;
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
    j->created_at_us = in.at_us;
    /* The sender learns that its message was stored (a receipt with the seq) when it asked for
     * it with an id, for a send_message and a broadcast alike. */
    json_t *id = json_object_get(in.root, "id");
    if (json_is_string(id) || json_is_number(id))
        j->ref = json_incref(id);
    snprintf(j->sender_node, sizeof(j->sender_node), "%s", in.f->node_id);
    j->sender_epoch = in.f->node_epoch;
    j->sender_conn = in.f->conn_id;
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

/* ---- deliveries ---- */

typedef struct seen_str {
    UT_hash_handle hh;
    const char *s;
} seen_str;

static void seen_free(seen_str **set)
{
    seen_str *e, *tmp;
    HASH_ITER(hh, *set, e, tmp) {
        HASH_DEL(*set, e);
        free(e);
    }
}

/* 1 if s was already in the set (s must outlive it), 0 if added, -1 on ENOMEM. */
static int seen_add(seen_str **set, const char *s)
{
    seen_str *e;
    size_t n = strlen(s);
    HASH_FIND(hh, *set, s, n, e);
    if (e)
        return 1;
    if (!(e = malloc(sizeof(*e))))
        return -1;
    e->s = s;
    HASH_ADD_KEYPTR(hh, *set, e->s, n, e);
    return 0;
}

/* Checks the target alone; 0 if usable. */
static int target_check(const Wsgate__Delivery *d, rt_route_result *res)
{
    switch (d->target_case) {
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
    seen_str *seen = NULL;
    int rc = 0;
    size_t n = 0;
    for (size_t i = 0; i < ul->n_user_ids && rc == 0; i++) {
        const char *u = ul->user_ids[i];
        if (!wsg_user_id_str_valid(u)) {
            seen_free(&seen);
            return reject(res, RT_REJ_INVALID_USER), -1;
        }
        int s = seen_add(&seen, u);
        if (s < 0)
            rc = -1;
        else if (s == 0)
            n++;
    }
    seen_free(&seen);
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
        int s = seen_add(&seen, u);
        if (s < 0 || (s == 0 && part_add(j, WSGATE__STREAM_KIND__STREAM_USER, u)))
            rc = -1;
    }
    seen_free(&seen);
    if (rc)
        return finish(res, RT_ROUTE_NOMEM), -1;
    return 0;
}

rt_route_status rt_route_deliver(const uint8_t *msg, size_t len, size_t max_payload,
                                 int64_t now_us, rt_job **out, rt_route_result *res)
{
    memset(res, 0, sizeof(*res));
    *out = NULL;
    Wsgate__Delivery *d = wsgate__delivery__unpack(NULL, len, msg);
    if (!d)
        return reject(res, RT_REJ_DECODE);
    if (d->id && wsg_pb_str_ok(d->id, RT_DELIVERY_ID_MAX))
        snprintf(res->delivery_id, sizeof(res->delivery_id), "%s", d->id);
    rt_job *j = NULL;
    if (target_check(d, res))
        goto out;
    if (d->payload.len > max_payload) {
        reject(res, RT_REJ_TOO_BIG);
        goto out;
    }
    size_t nparts = d->target_case == WSGATE__DELIVERY__TARGET_USER ||
                            d->target_case == WSGATE__DELIVERY__TARGET_BROADCAST
                        ? 1
                        : 0;
    if (!(j = job_new(RT_JOB_DELIVER, nparts))) {
        finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    rt_frame_status fs = rt_frame_from_payload(&j->frame, d->payload.data, d->payload.len);
    if (fs == RT_FRAME_NOMEM) {
        finish(res, RT_ROUTE_NOMEM);
        goto out;
    }
    if (fs != RT_FRAME_OK) {
        reject(res, RT_REJ_BAD_PAYLOAD);
        goto out;
    }
    j->created_at_us = d->created_at_us > 0 ? d->created_at_us : now_us;
    int rc = 0;
    switch (d->target_case) {
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

/* ---- fan-out ---- */

typedef struct fan {
    rt_batch *b;
    size_t conns;
    int failed;
    seen_str *nodes; /* keys point into the registry, valid while it is not changed */
} fan;

static void note_node(fan *f, const char *node_id)
{
    if (seen_add(&f->nodes, node_id) < 0)
        f->failed = 1;
}

static void add_conn(const char *node_id, uint64_t epoch, uint64_t conn_id, void *arg)
{
    fan *f = arg;
    if (rt_batch_add_conn(f->b, node_id, epoch, conn_id)) {
        f->failed = 1;
        return;
    }
    f->conns++;
    note_node(f, node_id);
}

typedef struct bcast {
    const rt_registry *reg;
    fan *f;
} bcast;

static void add_node(const char *node_id, uint64_t epoch, void *arg)
{
    bcast *bc = arg;
    if (rt_batch_add_all(bc->f->b, node_id, epoch)) {
        bc->f->failed = 1;
        return;
    }
    size_t conns = 0;
    int resyncing;
    if (rt_registry_node_stats(bc->reg, node_id, &conns, &resyncing) == 0)
        bc->f->conns += conns;
    note_node(bc->f, node_id);
}

static int begin_part(rt_batch *b, const rt_job *j, const rt_part *p)
{
    size_t len;
    char *text = rt_frame_with_seq(&j->frame, p->seq, &len);
    if (!text)
        return -1;
    rt_batch_pos pos = {.kind = p->seq ? p->kind : WSGATE__STREAM_KIND__STREAM_NONE,
                        .name = p->seq ? p->name : NULL,
                        .seq = p->seq,
                        .epoch = p->seq ? p->epoch : 0};
    int rc = rt_batch_begin_pos(b, text, len, j->created_at_us, &pos);
    free(text);
    return rc;
}

/* Puts a frame for the sender's own connection into the batch, taking text. */
static int to_sender(rt_batch *b, const rt_job *j, char *text, size_t len)
{
    if (!text)
        return -1;
    int rc = rt_batch_begin(b, text, len, j->created_at_us) ||
             rt_batch_add_conn(b, j->sender_node, j->sender_epoch, j->sender_conn);
    free(text);
    return rc ? -1 : 0;
}

/* The sender's answer to a send_message or broadcast that carried an id (see the header). */
static int answer_sender(rt_batch *b, const rt_job *j, size_t conns)
{
    const rt_part *p = &j->parts[0];
    char *text = NULL;
    size_t len = 0;
    int to_all = j->kind == RT_JOB_BROADCAST;
    /* a broadcast's receipt names no target user */
    wsg_client_about about = {.ref = j->ref, .target_user = to_all ? NULL : p->name};
    if (p->refused == RT_REFUSE_UNKNOWN_USER) {
        text = wsg_client_error_frame(WSG_CLIENT_ERR_UNKNOWN_USER,
                                      "user has not connected within the history retention; "
                                      "the message was not kept",
                                      &about, &len);
    } else if (p->refused == RT_REFUSE_OFFLINE_QUOTA) {
        text = wsg_client_error_frame(WSG_CLIENT_ERR_OFFLINE_QUOTA,
                                      "too many bytes kept for offline users from this "
                                      "connection; "
                                      "the message was not kept",
                                      &about, &len);
    } else if (p->seq) {
        if (!j->ref)
            return 0;
        text = wsg_client_sent(wsg_stream_label(p->kind), p->seq, &about, &len);
    } else if (conns || to_all) {
        if (!j->ref)
            return 0;
        text = wsg_client_error_frame(WSG_CLIENT_ERR_HISTORY_UNAVAILABLE,
                                      "delivered live only; not kept for resume",
                                      &(wsg_client_about){.ref = j->ref}, &len);
    } else {
        text = wsg_client_error_frame(WSG_CLIENT_ERR_USER_OFFLINE,
                                      "user is not connected and the message could not be kept",
                                      &about, &len);
    }
    return to_sender(b, j, text, len);
}

/* The only answer to a refused send_message. */
static int refuse_sender(rt_batch *b, const rt_job *j)
{
    size_t len = 0;
    char *text = wsg_client_error_frame(WSG_CLIENT_ERR_INVALID_FIELD,
                                        "\"target_user\" is not a user id: 1-128 bytes of UTF-8 "
                                        "without control characters",
                                        &(wsg_client_about){.ref = j->ref}, &len);
    return to_sender(b, j, text, len);
}

rt_route_status rt_route_fanout(const rt_registry *reg, rt_batch *b, const rt_job *j,
                                rt_fanout *out)
{
    memset(out, 0, sizeof(*out));
    if (j->refused) {
        out->status = refuse_sender(b, j) ? RT_ROUTE_NOMEM : RT_REJECTED;
        return out->status;
    }
    fan f = {.b = b};
    if (j->to_conn) {
        /* the connection itself may be younger than our view of it; its node must be live */
        uint64_t epoch;
        if (rt_registry_node_epoch(reg, j->conn_node, &epoch) == 0) {
            if (rt_batch_begin(b, j->frame.text, j->frame.len, j->created_at_us))
                f.failed = 1;
            else
                add_conn(j->conn_node, epoch, j->conn_id, &f);
        }
    }
    for (size_t i = 0; i < j->nparts && !f.failed; i++) {
        const rt_part *p = &j->parts[i];
        if (p->refused)
            continue; /* its target was offline when refused: it gets nothing, as promised */
        if (begin_part(b, j, p)) {
            f.failed = 1;
            break;
        }
        switch (rt_kind_audience(p->kind)) {
        case RT_AUDIENCE_ALL: {
            bcast bc = {.reg = reg, .f = &f};
            rt_registry_nodes(reg, add_node, &bc);
            break;
        }
        case RT_AUDIENCE_USER:
            rt_registry_user_conns(reg, p->name, add_conn, &f);
            break;
        case RT_AUDIENCE_SUBSCRIBERS: /* channel fan-out: not routed yet (issue #12) */
        case RT_AUDIENCE_NONE:
            break;
        }
    }
    if (!f.failed && (j->kind == RT_JOB_SEND_MESSAGE || j->kind == RT_JOB_BROADCAST) &&
        answer_sender(b, j, f.conns))
        f.failed = 1;
    out->connections = f.conns;
    out->nodes = HASH_COUNT(f.nodes);
    seen_free(&f.nodes);
    int routed = f.conns > 0 || out->nodes > 0;
    out->status = f.failed ? RT_ROUTE_NOMEM : routed ? RT_ROUTED : RT_UNDELIVERABLE;
    return out->status;
}

/* Replaced by R2's implementation at merge. A stand-in so that this branch links: rt_batch
 * cannot set NodeDelivery.Item.channel yet, and an item without it would reach every
 * connection of the node, so nothing is sent; it only visits the nodes it would send to. */
static void notice_node(const char *node_id, uint64_t epoch, void *arg)
{
    (void)node_id;
    (void)epoch;
    (void)arg;
}

int rt_route_channel_notice(const rt_registry *reg, rt_batch *b, const char *channel,
                            const char *text, size_t len, int64_t now_us)
{
    (void)b;
    (void)text;
    (void)len;
    (void)now_us;
    rt_registry_channel_nodes(reg, channel, notice_node, NULL);
    return 0;
}
