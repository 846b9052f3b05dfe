/* rt_route_fanout: target resolution of finished jobs (rt_route.h): each part's audience from
 * the in-memory registry into per-node batch items, and the sender's answers. */
#include "rt_route.h"

#include <stdlib.h>
#include <string.h>

#include "rt_kinds.h"
#include "rt_strset.h"
#include "wsg_client.h"
#include "wsg_stream.h"

typedef struct fan {
    rt_batch *b;
    size_t conns;
    int failed;
    rt_strset *nodes; /* keys point into the registry, valid while it is not changed */
} fan;

static void note_node(fan *f, const char *node_id)
{
    if (rt_strset_add(&f->nodes, node_id) < 0)
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

/* A node with subscribers of the channel being fanned out: one item for all of them. */
static void add_sub_node(const char *node_id, uint64_t epoch, void *arg)
{
    fan *f = arg;
    if (rt_batch_add_subscribers(f->b, node_id, epoch)) {
        f->failed = 1;
        return;
    }
    note_node(f, node_id);
}

static void no_user(const char *user_id, void *arg)
{
    (void)user_id, (void)arg;
}

static void add_subscribers(const rt_registry *reg, fan *f, const char *channel)
{
    rt_registry_channel_nodes(reg, channel, add_sub_node, f);
    size_t conns = 0;
    rt_registry_channel_users(reg, channel, no_user, NULL, &conns);
    f->conns += conns;
}

static int begin_part(rt_batch *b, const rt_job *j, const rt_part *p)
{
    size_t len;
    char *text = rt_frame_with_seq(&j->frame, p->seq, &len);
    if (!text)
        return -1;
    /* a channel's publication not kept (seq 0) still goes to the subscribers, live only */
    rt_batch_pos pos = {.kind = p->seq ? p->kind : WSGATE__STREAM_KIND__STREAM_NONE,
                        .name = p->seq ? p->name : NULL,
                        .seq = p->seq,
                        .epoch = p->seq ? p->epoch : 0,
                        .channel = rt_kind_audience(p->kind) == RT_AUDIENCE_SUBSCRIBERS
                                       ? p->name
                                       : NULL};
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

/* The sender's answer to a send_message, broadcast or publish (see the header). */
static int answer_sender(rt_batch *b, const rt_job *j, size_t conns)
{
    const rt_part *p = &j->parts[0];
    char *text = NULL;
    size_t len = 0;
    int dm = j->kind == RT_JOB_SEND_MESSAGE, to_all = !dm;
    /* a broadcast's receipt names no target user, a publish's names its channel */
    wsg_client_about about = {.ref = j->ref,
                              .target_user = dm ? p->name : NULL,
                              .channel = j->kind == RT_JOB_PUBLISH ? p->name : NULL};
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
                                      &(wsg_client_about){.ref = j->ref, .channel = about.channel},
                                      &len);
    } else {
        text = wsg_client_error_frame(WSG_CLIENT_ERR_USER_OFFLINE,
                                      "user is not connected and the message could not be kept",
                                      &about, &len);
    }
    return to_sender(b, j, text, len);
}

/* The only answer to a refused job. */
static int refuse_sender(rt_batch *b, const rt_job *j)
{
    size_t len = 0;
    char *text = wsg_client_error_frame(
        j->refuse_code ? j->refuse_code : WSG_CLIENT_ERR_INVALID_FIELD, j->refuse_msg,
        &(wsg_client_about){.ref = j->ref, .channel = j->channel}, &len);
    return to_sender(b, j, text, len);
}

typedef struct user_list {
    const char **v; /* point into the registry, valid while it is not changed */
    size_t n, cap;
    int failed;
} user_list;

static void add_user(const char *user_id, void *arg)
{
    user_list *ul = arg;
    if (ul->failed)
        return;
    if (ul->n == ul->cap) {
        size_t cap = ul->cap ? ul->cap * 2 : 16;
        const char **v = realloc(ul->v, cap * sizeof(*v));
        if (!v) {
            ul->failed = 1;
            return;
        }
        ul->v = v;
        ul->cap = cap;
    }
    ul->v[ul->n++] = user_id;
}

/* A presence question's answer: the channel's subscribers cluster-wide, as the registry knows
 * them now. */
static int answer_presence(const rt_registry *reg, rt_batch *b, const rt_job *j)
{
    user_list ul = {0};
    size_t conns = 0, len = 0;
    rt_registry_channel_users(reg, j->channel, add_user, &ul, &conns);
    char *text = ul.failed ? NULL
                           : wsg_client_presence(j->channel, j->ref, ul.v, ul.n, conns, &len);
    free(ul.v);
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
        case RT_AUDIENCE_SUBSCRIBERS:
            add_subscribers(reg, &f, p->name);
            break;
        case RT_AUDIENCE_NONE:
            break;
        }
    }
    if (!f.failed && j->nparts == 1 &&
        (j->kind == RT_JOB_SEND_MESSAGE || j->kind == RT_JOB_BROADCAST ||
         j->kind == RT_JOB_PUBLISH) &&
        answer_sender(b, j, f.conns))
        f.failed = 1;
    if (!f.failed && j->kind == RT_JOB_PRESENCE) {
        if (answer_presence(reg, b, j))
            f.failed = 1;
        else
            note_node(&f, j->sender_node);
    }
    out->connections = f.conns;
    out->nodes = HASH_COUNT(f.nodes);
    rt_strset_free(&f.nodes);
    int routed = f.conns > 0 || out->nodes > 0;
    out->status = f.failed ? RT_ROUTE_NOMEM : routed ? RT_ROUTED : RT_UNDELIVERABLE;
    return out->status;
}

int rt_route_channel_notice(const rt_registry *reg, rt_batch *b, const char *channel,
                            const char *text, size_t len, int64_t now_us)
{
    rt_batch_pos pos = {.kind = WSGATE__STREAM_KIND__STREAM_NONE, .channel = channel};
    if (rt_batch_begin_pos(b, text, len, now_us, &pos))
        return -1;
    fan f = {.b = b};
    rt_registry_channel_nodes(reg, channel, add_sub_node, &f);
    rt_strset_free(&f.nodes);
    return f.failed ? -1 : 0;
}
