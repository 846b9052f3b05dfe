/* rt_status: /health, /ready, /metrics and the gauges, on the router's main thread. */
#include "rt_status.h"

#include <jansson.h>
#include <stdlib.h>

#include "rt_metrics.h"
#include "wsg_stream.h"

struct rt_status {
    rt_ctx *c;
    const rt_members *mb;
    const rt_hist_serve *hs;
};

rt_status *rt_status_new(rt_ctx *c, const rt_members *mb, const rt_hist_serve *hs)
{
    rt_status *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->c = c;
    st->mb = mb;
    st->hs = hs;
    return st;
}

void rt_status_free(rt_status *st)
{
    free(st);
}

void rt_status_gauges(rt_status *st)
{
    const rt_ctx *c = st->c;
    wsg_metrics_set(c->m, RT_M_NODES, (int64_t)rt_registry_node_count(c->reg));
    wsg_metrics_set(c->m, RT_M_CONNECTIONS, (int64_t)rt_registry_conn_count(c->reg));
    wsg_metrics_set(c->m, RT_M_USERS, (int64_t)rt_registry_user_count(c->reg));
    wsg_metrics_set(c->m, RT_M_CHANNELS, (int64_t)rt_registry_channel_count(c->reg));
    wsg_metrics_set(c->m, RT_M_CHANNEL_SUBSCRIPTIONS,
                    (int64_t)rt_registry_subscription_count(c->reg));
    /* the broadcast stream's ring, by its own name: dashboards read this gauge */
    wsg_metrics_set(c->m, RT_M_BROADCAST_RING_ITEMS,
                    (int64_t)rt_hist_serve_ring_len(st->hs, WSG_STREAM_BROADCAST, ""));
    wsg_metrics_set(c->m, RT_M_OFFLINE_QUOTA_SENDERS, (int64_t)rt_quota_len(c->quota));
}

static int json_reply(json_t *o, wsg_buf *out)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return -1;
    wsg_buf_puts(out, s);
    free(s);
    return 0;
}

int rt_status_health(void *arg, wsg_buf *out)
{
    rt_status *st = arg;
    const rt_ctx *c = st->c;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "status", "ok", "node_id",
                          c->cfg->node_id, "nats",
                          rt_bus_connected(c->bus) ? "connected" : "disconnected", "redis",
                          rt_store_connected(c->store) ? "connected" : "disconnected",
                          "registry_loaded", rt_members_loaded(st->mb),
                          "nodes", (json_int_t)rt_registry_node_count(c->reg),
                          "connections", (json_int_t)rt_registry_conn_count(c->reg),
                          "users", (json_int_t)rt_registry_user_count(c->reg));
    if (o && c->nshards) {
        size_t up = 0;
        for (size_t i = 0; i < c->nshards; i++)
            up += c->shards[i] && rt_store_connected(c->shards[i]);
        if (json_object_set_new(o, "redis_shards", json_integer((json_int_t)c->nshards)) ||
            json_object_set_new(o, "redis_shards_connected", json_integer((json_int_t)up))) {
            json_decref(o);
            o = NULL;
        }
    }
    return json_reply(o, out) ? 500 : 200;
}

int rt_status_ready(void *arg, wsg_buf *out)
{
    rt_status *st = arg;
    /* with shards, nothing is routed before the cluster's epoch is known (rt_ctx) */
    const char *reason = !rt_bus_connected(st->c->bus)                               ? "nats"
                         : !rt_members_loaded(st->mb) || !rt_ctx_history_ready(st->c) ? "loading"
                                                                                    : NULL;
    if (!reason) {
        wsg_buf_puts(out, "{\"ready\":true}");
        return 200;
    }
    wsg_buf_printf(out, "{\"ready\":false,\"reason\":\"%s\"}", reason);
    return 503;
}

int rt_status_metrics(void *arg, wsg_buf *out)
{
    rt_status *st = arg;
    rt_status_gauges(st);
    wsg_metrics_render(st->c->m, out);
    rt_ns_metrics_render(st->c->pubs, out);
    wsg_metrics_render_process(out);
    return 200;
}
