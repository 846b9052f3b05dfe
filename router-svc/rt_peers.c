/* rt_peers: the router peers table and the router heartbeats. */
#include "rt_peers.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "proto/wsgate.pb-c.h"
#include "rt_ctx.h"
#include "rt_metrics.h"
#include "wsg_log.h"
#include "wsg_pb.h"
#include "wsg_subject.h"
#include "wsg_time.h"

typedef struct peer {
    UT_hash_handle hh;
    char id[WSG_NODE_ID_MAX + 1];
    int64_t started_at_us;
    uint32_t interval_ms;
    uint64_t routed;
    int64_t last_us; /* monotonic */
} peer;

struct rt_peers {
    struct rt_ctx *c;
    char self[WSG_NODE_ID_MAX + 1];
    int64_t started_at_us;
    peer *peers;
    int64_t last_announce_us; /* monotonic; 0: never */
    char subject[WSG_SUBJECT_MAX];
};

rt_peers *rt_peers_new(struct rt_ctx *c, const char *self_id, int64_t started_at_us)
{
    rt_peers *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->c = c;
    snprintf(p->self, sizeof(p->self), "%s", self_id ? self_id : "");
    p->started_at_us = started_at_us;
    if (c && wsg_subject_fmt(p->subject, sizeof(p->subject), c->cfg->prefix, "router.hb")) {
        free(p);
        return NULL;
    }
    return p;
}

void rt_peers_free(rt_peers *p)
{
    if (!p)
        return;
    peer *e, *tmp;
    HASH_ITER(hh, p->peers, e, tmp) {
        HASH_DEL(p->peers, e);
        free(e);
    }
    free(p);
}

int rt_peers_heard(rt_peers *p, const char *router_id, int64_t started_at_us,
                   uint32_t interval_ms, uint64_t routed, int64_t mono_us)
{
    if (!router_id || !wsg_subject_node_id_valid(router_id, strnlen(router_id, WSG_NODE_ID_MAX + 1)) ||
        !strcmp(router_id, p->self))
        return 1;
    peer *e;
    HASH_FIND_STR(p->peers, router_id, e);
    if (interval_ms == 0) { /* stopping: forget it now */
        if (e) {
            HASH_DEL(p->peers, e);
            free(e);
        }
        return 0;
    }
    if (!e) {
        if (HASH_COUNT(p->peers) >= RT_PEERS_MAX)
            return 1;
        e = calloc(1, sizeof(*e));
        if (!e)
            return -1;
        memcpy(e->id, router_id, strlen(router_id) + 1);
        HASH_ADD_STR(p->peers, id, e);
    }
    e->started_at_us = started_at_us;
    e->interval_ms = interval_ms;
    e->routed = routed;
    e->last_us = mono_us;
    return 0;
}

size_t rt_peers_expire(rt_peers *p, int64_t mono_us)
{
    size_t n = 0;
    peer *e, *tmp;
    HASH_ITER(hh, p->peers, e, tmp) {
        if (mono_us - e->last_us <= (int64_t)e->interval_ms * 3000)
            continue;
        wsg_info("router_peer_expired", "router=%s", e->id);
        HASH_DEL(p->peers, e);
        free(e);
        n++;
    }
    return n;
}

size_t rt_peers_count(const rt_peers *p)
{
    return HASH_COUNT(p->peers);
}

size_t rt_peers_visit(const rt_peers *p, int64_t mono_us, rt_peer_fn fn, void *arg)
{
    rt_peer_info pi = {.router_id = p->self, .started_at_us = p->started_at_us, .self = 1,
                       .routed = p->c ? rt_metrics_routed(p->c->m) : 0};
    fn(&pi, arg);
    size_t n = 1;
    for (const peer *e = p->peers; e; e = e->hh.next, n++) {
        pi = (rt_peer_info){.router_id = e->id, .started_at_us = e->started_at_us,
                            .age_us = mono_us > e->last_us ? mono_us - e->last_us : 0,
                            .routed = e->routed};
        fn(&pi, arg);
    }
    return n;
}

void rt_peers_message(rt_peers *p, const natsMsg *msg)
{
    Wsgate__RouterHeartbeat *hb = wsgate__router_heartbeat__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    if (!hb) {
        rt_ctx_count(p->c, rt_metric_rejected(RT_REJ_DECODE));
        return;
    }
    int rc = rt_peers_heard(p, hb->router_id, hb->started_at_us, hb->interval_ms, hb->routed,
                            wsg_mono_us());
    if (rc < 0)
        rt_ctx_count(p->c, RT_M_INTERNAL_ERRORS);
    else if (rc == 0)
        rt_ctx_count(p->c, RT_M_ROUTER_HEARTBEATS);
    else if (strcmp(hb->router_id ? hb->router_id : "", p->self))
        rt_ctx_count(p->c, rt_metric_rejected(RT_REJ_INVALID_EVENT));
    wsgate__router_heartbeat__free_unpacked(hb, NULL);
}

void rt_peers_announce(rt_peers *p, int stopping)
{
    int64_t now = wsg_mono_us();
    rt_peers_expire(p, now);
    wsg_metrics_set(p->c->m, RT_M_ROUTER_PEERS, (int64_t)rt_peers_count(p));
    if (!stopping && p->last_announce_us &&
        now - p->last_announce_us < (int64_t)RT_PEERS_INTERVAL_MS * 1000 - 100000)
        return; /* (the tick is 1 s: a little slack keeps it at every second tick) */
    if (!p->c->bus)
        return;
    Wsgate__RouterHeartbeat hb = WSGATE__ROUTER_HEARTBEAT__INIT;
    hb.router_id = p->self;
    hb.started_at_us = p->started_at_us;
    hb.at_us = wsg_now_us();
    hb.interval_ms = stopping ? 0 : RT_PEERS_INTERVAL_MS;
    hb.routed = rt_metrics_routed(p->c->m);
    uint8_t *buf;
    size_t len;
    if (wsg_pb_pack(&hb.base, &buf, &len)) {
        rt_ctx_count(p->c, RT_M_INTERNAL_ERRORS);
        return;
    }
    if (rt_bus_publish(p->c->bus, p->subject, buf, len) == 0)
        p->last_announce_us = now;
    free(buf);
}
