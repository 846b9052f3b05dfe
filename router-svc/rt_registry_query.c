/* rt_registry_query: the registry's lookups, counts and full walk (read-only). */
#include <string.h>
#include <utlist.h>

#include "rt_registry_impl.h"

size_t rt_registry_node_count(const rt_registry *r)
{
    return HASH_COUNT(r->nodes);
}

size_t rt_registry_conn_count(const rt_registry *r)
{
    return r->nconns;
}

size_t rt_registry_user_count(const rt_registry *r)
{
    return HASH_COUNT(r->users);
}

size_t rt_registry_user_conns(const rt_registry *r, const char *user_id, rt_conn_fn fn, void *arg)
{
    rt_user *u;
    HASH_FIND(hh, r->users, user_id, strlen(user_id), u);
    if (!u)
        return 0;
    size_t k = 0;
    rt_conn *c;
    DL_FOREACH(u->conns, c) {
        fn(c->node->id, c->node->epoch, c->id, arg);
        k++;
    }
    return k;
}

size_t rt_registry_user_visit(const rt_registry *r, const char *user_id, rt_conn_info_fn fn,
                              void *arg)
{
    rt_user *u;
    HASH_FIND(hh, r->users, user_id, strlen(user_id), u);
    if (!u)
        return 0;
    size_t k = 0;
    rt_conn *c;
    DL_FOREACH(u->conns, c) {
        rt_conn_info ci = {.node_id = c->node->id, .node_epoch = c->node->epoch,
                           .conn_id = c->id, .connected_at_us = c->connected_at_us,
                           .chans = c->chans};
        fn(&ci, arg);
        k++;
    }
    return k;
}

size_t rt_registry_node_visit(const rt_registry *r, rt_node_info_fn fn, void *arg)
{
    size_t k = 0;
    for (rt_node *n = r->nodes; n; n = n->hh.next, k++) {
        rt_node_info ni = {.node_id = n->id, .epoch = n->epoch,
                           .hb_connections = n->hb_connections,
                           .hb_frames_sent = n->hb_frames_sent,
                           .hb_frames_received = n->hb_frames_received, .connections = n->nconns,
                           .draining = n->draining, .last_seen_us = n->last_seen_us};
        fn(&ni, arg);
    }
    return k;
}

int rt_registry_user_online(const rt_registry *r, const char *user_id)
{
    rt_user *u;
    HASH_FIND(hh, r->users, user_id, strlen(user_id), u);
    return u && u->conns;
}

size_t rt_registry_nodes(const rt_registry *r, rt_node_fn fn, void *arg)
{
    size_t k = 0;
    for (rt_node *n = r->nodes; n; n = n->hh.next, k++)
        fn(n->id, n->epoch, arg);
    return k;
}

int rt_registry_node_epoch(const rt_registry *r, const char *node_id, uint64_t *epoch)
{
    if (!rt_reg_node_id_ok(node_id))
        return -1;
    rt_node *n = rt_reg_node_find(r, node_id);
    if (!n)
        return -1;
    *epoch = n->epoch;
    return 0;
}

int rt_registry_node_stats(const rt_registry *r, const char *node_id, size_t *conns,
                           int *resyncing)
{
    if (!rt_reg_node_id_ok(node_id))
        return -1;
    rt_node *n = rt_reg_node_find(r, node_id);
    if (!n)
        return -1;
    *conns = n->nconns;
    *resyncing = 0;
    for (rt_stream *s = n->streams; s; s = s->hh.next)
        if (s->pending || s->skipping)
            *resyncing = 1;
    return 0;
}

int rt_registry_walk(const rt_registry *r, const rt_registry_visitor *v, void *arg)
{
    for (rt_node *n = r->nodes; n; n = n->hh.next) {
        int rc;
        if (v->node && (rc = v->node(n->id, n->epoch, arg)))
            return rc;
        for (rt_conn *c = n->conns; c && v->conn; c = c->hh.next)
            if ((rc = v->conn(n->id, c->id, c->user->id, arg)))
                return rc;
        for (rt_stream *s = n->streams; s && v->applied; s = s->hh.next)
            if ((rc = v->applied(n->id, n->epoch, s->id, s->seq, arg)))
                return rc;
        for (rt_conn *c = n->conns; c && v->chans; c = c->hh.next)
            if (rt_chan_conn_count(c->chans) &&
                (rc = v->chans(n->id, c->id, c->user->id, c->chans, arg)))
                return rc;
        for (rt_conn *c = n->conns; c && v->conn_at; c = c->hh.next)
            if (c->connected_at_us && (rc = v->conn_at(n->id, c->id, c->connected_at_us, arg)))
                return rc;
    }
    return 0;
}

const rt_chan_list *rt_registry_chan_changes(const rt_registry *r)
{
    return &r->chan_changes;
}

typedef struct node_visit {
    const rt_registry *r;
    rt_node_fn fn;
    void *arg;
} node_visit;

static void visit_node(const char *node_id, void *arg)
{
    node_visit *nv = arg;
    const rt_node *n = rt_reg_node_find(nv->r, node_id);
    nv->fn(node_id, n ? n->epoch : 0, nv->arg); /* a subscriber's node is always known */
}

size_t rt_registry_channel_nodes(const rt_registry *r, const char *channel, rt_node_fn fn,
                                 void *arg)
{
    node_visit nv = {.r = r, .fn = fn, .arg = arg};
    return rt_channels_nodes(r->chans, channel, visit_node, &nv);
}

size_t rt_registry_channel_users(const rt_registry *r, const char *channel, rt_user_fn fn,
                                 void *arg, size_t *conns)
{
    return rt_channels_users(r->chans, channel, fn, arg, conns);
}

size_t rt_registry_channel_count(const rt_registry *r)
{
    return rt_channels_count(r->chans);
}

size_t rt_registry_subscription_count(const rt_registry *r)
{
    return rt_channels_subscriptions(r->chans);
}
