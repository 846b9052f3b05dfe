/* rt_api: the server API's four operations, and their NATS side. */
#include "rt_api.h"

#include <inttypes.h>
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_ctx.h"
#include "rt_jobs.h"
#include "rt_metrics.h"
#include "rt_peers.h"
#include "wsg_channel.h"
#include "wsg_log.h"
#include "wsg_pb.h"
#include "wsg_time.h"
#include "wsg_user.h"
#include "wsg_utf8.h"

#define CLOSE_REASON_MAX 123
#define CLOSE_FINAL 4003

_Static_assert(RT_API__COUNT == RT_M_API_OPS, "rt_metrics' op label table follows rt_api_op");

struct rt_api {
    rt_ctx *c;
    rt_jobs *jobs;
    rt_peers *peers;
};

static const char *const op_names[RT_API__COUNT] = {
    [RT_API_PUBLISH] = "publish",
    [RT_API_DISCONNECT] = "disconnect",
    [RT_API_PRESENCE] = "presence",
    [RT_API_INFO] = "info",
};

const char *rt_api_op_name(rt_api_op op)
{
    return (unsigned)op < RT_API__COUNT ? op_names[op] : "unknown";
}

rt_api *rt_api_new(rt_ctx *c, rt_jobs *jobs, rt_peers *peers)
{
    rt_api *api = calloc(1, sizeof(*api));
    if (!api)
        return NULL;
    api->c = c;
    api->jobs = jobs;
    api->peers = peers;
    return api;
}

void rt_api_free(rt_api *api)
{
    free(api);
}

/* Packs msg and hands it to fn (NULL if it could not be packed). */
static void answer(rt_api *api, const ProtobufCMessage *msg, rt_api_reply_fn fn, void *arg,
                   uint64_t token)
{
    uint8_t *buf;
    size_t len;
    if (wsg_pb_pack(msg, &buf, &len)) {
        rt_ctx_count(api->c, RT_M_INTERNAL_ERRORS);
        fn(arg, token, NULL, 0);
        return;
    }
    fn(arg, token, buf, len);
    free(buf);
}

/* ---- disconnect ---- */

static int close_code_ok(uint32_t code)
{
    return code == 1000 || code == 1001 || code == 1008 || code == 1011 || code == 1012 ||
           code == 1013 || (code >= 4000 && code <= 4999);
}

typedef struct close_walk {
    rt_batch *batch;
    size_t conns, nodes, failed;
    /* distinct nodes so far (a user has few connections: a short list is enough) */
    const char **seen;
    size_t nseen, capseen;
} close_walk;

static void count_node(close_walk *w, const char *node_id)
{
    for (size_t i = 0; i < w->nseen; i++)
        if (!strcmp(w->seen[i], node_id))
            return;
    w->nodes++;
    if (w->nseen == w->capseen) {
        size_t cap = w->capseen ? w->capseen * 2 : 8;
        const char **v = realloc(w->seen, cap * sizeof(*v));
        if (!v)
            return; /* the count may then be high; the close orders are unaffected */
        w->seen = v;
        w->capseen = cap;
    }
    w->seen[w->nseen++] = node_id;
}

static void close_one(const rt_conn_info *ci, void *arg)
{
    close_walk *w = arg;
    if (rt_batch_add_conn(w->batch, ci->node_id, ci->node_epoch, ci->conn_id)) {
        w->failed++;
        return;
    }
    w->conns++;
    count_node(w, ci->node_id);
}

/* Close orders for every connection of user, flushed at once. 0 / -1 (ENOMEM). */
static int close_user(rt_ctx *c, const char *user, uint32_t code, const char *reason,
                      size_t *conns, size_t *nodes)
{
    close_walk w = {.batch = c->batch};
    *conns = *nodes = 0;
    if (!rt_registry_user_online(c->reg, user))
        return 0;
    if (rt_batch_begin_close(c->batch, code, reason, wsg_now_us()))
        return -1;
    rt_registry_user_visit(c->reg, user, close_one, &w);
    free(w.seen);
    /* at once: a close order must not wait for the next drain (the HTTP side has none).
     * Without a bus (unit tests) the orders stay in the batch for the caller to read. */
    if (c->bus)
        rt_ctx_flush_batches(c);
    *conns = w.conns;
    *nodes = w.nodes;
    return w.failed ? -1 : 0;
}

static void op_disconnect(rt_api *api, const uint8_t *req, size_t len, rt_api_reply_fn fn,
                          void *arg, uint64_t token)
{
    Wsgate__DisconnectReply rp = WSGATE__DISCONNECT_REPLY__INIT;
    Wsgate__DisconnectRequest *rq = wsgate__disconnect_request__unpack(NULL, len, req);
    if (!rq) {
        rp.error = "decode";
        goto out;
    }
    if (!wsg_user_id_str_valid(rq->user)) {
        rp.error = "bad_user";
        goto out;
    }
    uint32_t code = rq->code == 0 || rq->final ? CLOSE_FINAL : rq->code;
    if (!close_code_ok(code)) {
        rp.error = "bad_code";
        goto out;
    }
    const char *reason = rq->reason ? rq->reason : "";
    size_t rlen = strlen(reason);
    if (rlen > CLOSE_REASON_MAX || !wsg_utf8_valid((const unsigned char *)reason, rlen)) {
        rp.error = "bad_reason";
        goto out;
    }
    size_t conns, nodes;
    if (close_user(api->c, rq->user, code, reason, &conns, &nodes)) {
        rt_ctx_count(api->c, RT_M_INTERNAL_ERRORS);
        wsgate__disconnect_request__free_unpacked(rq, NULL);
        fn(arg, token, NULL, 0); /* out of memory: not done (in full) */
        return;
    }
    wsg_metrics_add(api->c->m, RT_M_CLOSE_ORDERS, (int64_t)conns);
    wsg_info("api_disconnect", "user=\"%s\" code=%" PRIu32 " connections=%zu nodes=%zu",
             rq->user, code, conns, nodes);
    rp.connections = conns > UINT32_MAX ? UINT32_MAX : (uint32_t)conns;
    rp.nodes = nodes > UINT32_MAX ? UINT32_MAX : (uint32_t)nodes;
out:
    answer(api, &rp.base, fn, arg, token);
    if (rq)
        wsgate__disconnect_request__free_unpacked(rq, NULL);
}

/* ---- presence ---- */

typedef struct conn_list {
    Wsgate__ConnInfo *v;
    Wsgate__ConnInfo **ptrs;
    size_t n, cap;
    int oom;
} conn_list;

static void add_conn_info(const rt_conn_info *ci, void *arg)
{
    conn_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        Wsgate__ConnInfo *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    Wsgate__ConnInfo *e = &l->v[l->n++];
    wsgate__conn_info__init(e);
    e->node_id = (char *)ci->node_id;
    e->conn_id = ci->conn_id;
    e->connected_at_us = ci->connected_at_us;
    /* the names stay the registry's; only the array is the reply's (freed with the list) */
    size_t nch = rt_chan_conn_count(ci->chans);
    if (nch && !(e->channels = malloc(nch * sizeof(*e->channels)))) {
        l->oom = 1;
        return;
    }
    for (size_t i = 0; i < nch; i++)
        e->channels[i] = (char *)rt_chan_conn_at(ci->chans, i);
    e->n_channels = nch;
}

typedef struct user_list {
    char **v;
    size_t n, cap;
    int oom;
} user_list;

static void add_user(const char *user_id, void *arg)
{
    user_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (char *)user_id;
}

static void op_presence(rt_api *api, const uint8_t *req, size_t len, rt_api_reply_fn fn,
                        void *arg, uint64_t token)
{
    const rt_registry *reg = api->c->reg;
    Wsgate__PresenceReply rp = WSGATE__PRESENCE_REPLY__INIT;
    conn_list cl = {0};
    user_list ul = {0};
    Wsgate__PresenceRequest *rq = wsgate__presence_request__unpack(NULL, len, req);
    if (!rq) {
        rp.error = "decode";
    } else if (rq->target_case == WSGATE__PRESENCE_REQUEST__TARGET_USER) {
        if (!wsg_user_id_str_valid(rq->user)) {
            rp.error = "bad_user";
        } else {
            rt_registry_user_visit(reg, rq->user, add_conn_info, &cl);
            if (cl.oom || (cl.n && !(cl.ptrs = malloc(cl.n * sizeof(*cl.ptrs)))))
                goto oom;
            for (size_t i = 0; i < cl.n; i++)
                cl.ptrs[i] = &cl.v[i];
            rp.online = cl.n > 0;
            rp.n_connections = cl.n;
            rp.connections = cl.ptrs;
        }
    } else if (rq->target_case == WSGATE__PRESENCE_REQUEST__TARGET_CHANNEL) {
        if (!rq->channel || !wsg_channel_valid(rq->channel, strlen(rq->channel))) {
            rp.error = "bad_channel";
        } else {
            size_t conns = 0;
            rt_registry_channel_users(reg, rq->channel, add_user, &ul, &conns);
            if (ul.oom)
                goto oom;
            rp.n_users = ul.n;
            rp.users = ul.v;
            rp.connection_count = conns > UINT32_MAX ? UINT32_MAX : (uint32_t)conns;
        }
    } else {
        rp.error = "no_target";
    }
    answer(api, &rp.base, fn, arg, token);
    goto out;
oom:
    rt_ctx_count(api->c, RT_M_INTERNAL_ERRORS);
    fn(arg, token, NULL, 0);
out:
    for (size_t i = 0; i < cl.n; i++)
        free(cl.v[i].channels);
    free(cl.v);
    free(cl.ptrs);
    free(ul.v);
    if (rq)
        wsgate__presence_request__free_unpacked(rq, NULL);
}

/* ---- info ---- */

typedef struct info_walk {
    int64_t now;
    Wsgate__InfoReply__Node *nodes;
    size_t nnodes, capnodes;
    Wsgate__InfoReply__Router *routers;
    size_t nrouters, caprouters;
    int oom;
} info_walk;

static uint32_t age_ms(int64_t us)
{
    if (us < 0)
        return 0;
    int64_t ms = us / 1000;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static void add_node(const rt_node_info *ni, void *arg)
{
    info_walk *w = arg;
    if (w->nnodes == w->capnodes) {
        size_t cap = w->capnodes ? w->capnodes * 2 : 8;
        Wsgate__InfoReply__Node *v = realloc(w->nodes, cap * sizeof(*v));
        if (!v) {
            w->oom = 1;
            return;
        }
        w->nodes = v;
        w->capnodes = cap;
    }
    Wsgate__InfoReply__Node *e = &w->nodes[w->nnodes++];
    wsgate__info_reply__node__init(e);
    e->node_id = (char *)ni->node_id;
    e->epoch = ni->epoch;
    e->connections = ni->hb_connections;
    e->draining = ni->draining ? 1 : 0;
    e->heartbeat_age_ms = age_ms(w->now - ni->last_seen_us);
    e->frames_sent = ni->hb_frames_sent;
    e->frames_received = ni->hb_frames_received;
}

static void add_router(const rt_peer_info *pi, void *arg)
{
    info_walk *w = arg;
    if (w->nrouters == w->caprouters) {
        size_t cap = w->caprouters ? w->caprouters * 2 : 4;
        Wsgate__InfoReply__Router *v = realloc(w->routers, cap * sizeof(*v));
        if (!v) {
            w->oom = 1;
            return;
        }
        w->routers = v;
        w->caprouters = cap;
    }
    Wsgate__InfoReply__Router *e = &w->routers[w->nrouters++];
    wsgate__info_reply__router__init(e);
    e->router_id = (char *)pi->router_id;
    e->started_at_us = pi->started_at_us;
    e->heartbeat_age_ms = pi->self ? 0 : age_ms(pi->age_us);
    e->self = pi->self ? 1 : 0;
    e->routed = pi->routed;
}

static void op_info(rt_api *api, const uint8_t *req, size_t len, rt_api_reply_fn fn, void *arg,
                    uint64_t token)
{
    const rt_registry *reg = api->c->reg;
    Wsgate__InfoReply rp = WSGATE__INFO_REPLY__INIT;
    Wsgate__InfoReply__Node **np = NULL;
    Wsgate__InfoReply__Router **rpp = NULL;
    info_walk w = {.now = wsg_mono_us()};
    Wsgate__InfoRequest *rq = wsgate__info_request__unpack(NULL, len, req);
    if (!rq) {
        rp.error = "decode";
        answer(api, &rp.base, fn, arg, token);
        return;
    }
    wsgate__info_request__free_unpacked(rq, NULL);
    rt_registry_node_visit(reg, add_node, &w);
    rt_peers_visit(api->peers, w.now, add_router, &w);
    if (w.oom || (w.nnodes && !(np = malloc(w.nnodes * sizeof(*np)))) ||
        (w.nrouters && !(rpp = malloc(w.nrouters * sizeof(*rpp))))) {
        rt_ctx_count(api->c, RT_M_INTERNAL_ERRORS);
        fn(arg, token, NULL, 0);
        goto out;
    }
    for (size_t i = 0; i < w.nnodes; i++)
        np[i] = &w.nodes[i];
    for (size_t i = 0; i < w.nrouters; i++)
        rpp[i] = &w.routers[i];
    rp.n_nodes = w.nnodes;
    rp.nodes = np;
    rp.n_routers = w.nrouters;
    rp.routers = rpp;
    rp.connections = rt_registry_conn_count(reg);
    rp.users = rt_registry_user_count(reg);
    rp.channels = rt_registry_channel_count(reg);
    rp.subscriptions = rt_registry_subscription_count(reg);
    answer(api, &rp.base, fn, arg, token);
out:
    free(np);
    free(rpp);
    free(w.nodes);
    free(w.routers);
}

/* ---- the entry points ---- */

void rt_api_call(rt_api *api, rt_api_op op, const uint8_t *req, size_t len, rt_api_reply_fn fn,
                 void *arg, uint64_t token)
{
    if (atomic_load(&api->c->stop)) {
        fn(arg, token, NULL, 0);
        return;
    }
    static const uint8_t empty[1];
    if (!req)
        req = empty; /* protobuf-c reads nothing when len is 0 */
    switch (op) {
    case RT_API_PUBLISH:
        rt_jobs_deliver_local(api->jobs, req, len, fn, arg, token);
        break;
    case RT_API_DISCONNECT:
        op_disconnect(api, req, len, fn, arg, token);
        break;
    case RT_API_PRESENCE:
        op_presence(api, req, len, fn, arg, token);
        break;
    case RT_API_INFO:
        op_info(api, req, len, fn, arg, token);
        break;
    default:
        fn(arg, token, NULL, 0);
        break;
    }
}

int rt_api_reply_outcome(rt_api_op op, const uint8_t *reply, size_t len)
{
    if (!reply)
        return RT_API_OUTCOME_ERROR;
    int rejected = -1;
    switch (op) {
    case RT_API_PUBLISH: {
        Wsgate__DeliveryReply *r = wsgate__delivery_reply__unpack(NULL, len, reply);
        if (r) {
            rejected = r->status == WSGATE__DELIVERY_REPLY__STATUS__REJECTED;
            wsgate__delivery_reply__free_unpacked(r, NULL);
        }
        break;
    }
    case RT_API_DISCONNECT: {
        Wsgate__DisconnectReply *r = wsgate__disconnect_reply__unpack(NULL, len, reply);
        if (r) {
            rejected = r->error && *r->error;
            wsgate__disconnect_reply__free_unpacked(r, NULL);
        }
        break;
    }
    case RT_API_PRESENCE: {
        Wsgate__PresenceReply *r = wsgate__presence_reply__unpack(NULL, len, reply);
        if (r) {
            rejected = r->error && *r->error;
            wsgate__presence_reply__free_unpacked(r, NULL);
        }
        break;
    }
    case RT_API_INFO: {
        Wsgate__InfoReply *r = wsgate__info_reply__unpack(NULL, len, reply);
        if (r) {
            rejected = r->error && *r->error;
            wsgate__info_reply__free_unpacked(r, NULL);
        }
        break;
    }
    default:
        break;
    }
    return rejected < 0 ? RT_API_OUTCOME_ERROR
           : rejected   ? RT_API_OUTCOME_REJECTED
                        : RT_API_OUTCOME_OK;
}

/* ---- NATS side ---- */

typedef struct nats_reply {
    rt_api *api;
    rt_api_op op;
    char subject[];
} nats_reply;

static void on_nats_reply(void *arg, uint64_t token, const uint8_t *reply, size_t len)
{
    (void)token;
    nats_reply *nr = arg;
    rt_ctx *c = nr->api->c;
    int outcome = rt_api_reply_outcome(nr->op, reply, len);
    rt_ctx_count(c, rt_metric_api(nr->op, RT_API_VIA_NATS, (rt_api_outcome)outcome));
    /* not accepted: no reply at all, like shed work on <prefix>.deliver; the requester's
     * timeout and retry cover it */
    if (reply && rt_bus_publish(c->bus, nr->subject, reply, len))
        wsg_debug("api_reply_failed", "op=%s", rt_api_op_name(nr->op));
    free(nr);
}

void rt_api_nats(rt_api *api, rt_api_op op, const void *nats_msg)
{
    const natsMsg *msg = nats_msg;
    const char *reply = natsMsg_GetReply((natsMsg *)msg);
    if (!reply || !*reply) {
        rt_ctx_count(api->c, rt_metric_api(op, RT_API_VIA_NATS, RT_API_OUTCOME_REJECTED));
        wsg_debug("api_request_without_reply", "op=%s", rt_api_op_name(op));
        return;
    }
    size_t rlen = strlen(reply);
    nats_reply *nr = malloc(sizeof(*nr) + rlen + 1);
    if (!nr) {
        rt_ctx_count(api->c, RT_M_INTERNAL_ERRORS);
        rt_ctx_count(api->c, rt_metric_api(op, RT_API_VIA_NATS, RT_API_OUTCOME_ERROR));
        return;
    }
    nr->api = api;
    nr->op = op;
    memcpy(nr->subject, reply, rlen + 1);
    rt_api_call(api, op, (const uint8_t *)natsMsg_GetData((natsMsg *)msg),
                (size_t)natsMsg_GetDataLength((natsMsg *)msg), on_nats_reply, nr, 0);
}
