/* rt_bus: subscriptions feeding a wsg_queue. */
#include "rt_bus.h"

#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_metrics.h"
#include "wsg_log.h"
#include "wsg_nats.h"
#include "wsg_subject.h"
#include "wsg_time.h"

#define COMPLETE_WAIT_US (5 * 1000 * 1000)

typedef struct sub_slot {
    rt_bus *bus;
    rt_msg_kind kind;
    natsSubscription *sub;
} sub_slot;

enum { CLS_WORK, CLS_REGISTRY, CLS__COUNT };

struct rt_bus {
    rt_bus_cfg cfg;
    size_t max_bytes[CLS__COUNT];
    atomic_size_t queued[CLS__COUNT];
    atomic_uint_fast64_t registry_shed; /* not yet reported by rt_bus_take_shed */
    /* the nats.c delivery thread's own: one warning per second at most */
    int64_t shed_logged_us;
    uint64_t shed_suppressed;
    wsg_nats nats;
    int nats_open;
    wsg_queue q;
    sub_slot subs[RT_MSG__COUNT];
    atomic_int completed; /* subscriptions whose last callback has returned */
    int unsubscribed;
};

static void wake(rt_bus *b)
{
    if (b->cfg.wake)
        b->cfg.wake(b->cfg.wake_arg);
}

static int class_of(rt_msg_kind k)
{
    return k == RT_MSG_CONN || k == RT_MSG_HB ? CLS_REGISTRY : CLS_WORK;
}

static rt_queue queue_of(int cls)
{
    return cls == CLS_REGISTRY ? RT_QUEUE_REGISTRY : RT_QUEUE_WORK;
}

static void set_queued_gauge(rt_bus *b, int cls)
{
    if (b->cfg.metrics)
        wsg_metrics_set(b->cfg.metrics,
                        cls == CLS_REGISTRY ? RT_M_QUEUED_BYTES_REGISTRY : RT_M_QUEUED_BYTES_WORK,
                        (int64_t)atomic_load(&b->queued[cls]));
}

/* Over the class's bound: the message is dropped here (see rt_bus.h for why that is safe). */
static void shed(rt_bus *b, rt_msg_kind kind, natsMsg *msg, size_t bytes)
{
    int cls = class_of(kind);
    natsMsg_Destroy(msg);
    if (cls == CLS_REGISTRY)
        atomic_fetch_add(&b->registry_shed, 1);
    if (b->cfg.metrics)
        wsg_metrics_add(b->cfg.metrics, rt_metric_shed(queue_of(cls)), 1);
    int64_t now = wsg_mono_us();
    if (now - b->shed_logged_us >= 1000000) {
        wsg_warn("inbound_shed", "queue=%s kind=%d bytes=%zu queued_bytes=%zu max_bytes=%zu "
                 "suppressed=%" PRIu64, rt_queue_name(queue_of(cls)), (int)kind,
                 bytes, atomic_load(&b->queued[cls]), b->max_bytes[cls], b->shed_suppressed);
        b->shed_logged_us = now;
        b->shed_suppressed = 0;
    } else {
        b->shed_suppressed++;
    }
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    sub_slot *slot = closure;
    rt_bus *b = slot->bus;
    int cls = class_of(slot->kind);
    const char *subj = natsMsg_GetSubject(msg), *reply = natsMsg_GetReply(msg);
    size_t bytes = (size_t)natsMsg_GetDataLength(msg) + (subj ? strlen(subj) : 0) +
                   (reply ? strlen(reply) : 0) + RT_BUS_MSG_OVERHEAD;
    /* the check and the add are not one step: deliveries on several nats.c threads could
     * overshoot the bound by at most one message each */
    if (atomic_load(&b->queued[cls]) + bytes > b->max_bytes[cls]) {
        shed(b, slot->kind, msg, bytes);
        wake(b);
        return;
    }
    rt_msg *m = malloc(sizeof(*m));
    if (!m) {
        natsMsg_Destroy(msg);
        if (b->cfg.metrics)
            wsg_metrics_add(b->cfg.metrics, RT_M_INTERNAL_ERRORS, 1);
        return;
    }
    m->kind = slot->kind;
    m->msg = msg;
    m->bytes = bytes;
    m->bus = b;
    m->at_us = wsg_mono_us();
    atomic_fetch_add(&b->queued[cls], bytes);
    set_queued_gauge(b, cls);
    wsg_queue_push(&b->q, &m->q);
    wake(b);
}

static void on_complete(void *closure)
{
    sub_slot *slot = closure;
    atomic_fetch_add(&slot->bus->completed, 1);
}

static void on_connected(void *arg)
{
    rt_bus *b = arg;
    if (b->cfg.metrics) {
        wsg_metrics_set(b->cfg.metrics, RT_M_NATS_CONNECTED, 1);
        wsg_metrics_set(b->cfg.metrics, RT_M_NATS_RECONNECTS, atomic_load(&b->nats.reconnects));
    }
    wake(b);
}

static void on_disconnected(void *arg)
{
    rt_bus *b = arg;
    if (b->cfg.metrics)
        wsg_metrics_set(b->cfg.metrics, RT_M_NATS_CONNECTED, 0);
    wake(b);
}

static natsStatus subscribe(rt_bus *b, rt_msg_kind kind, const char *suffix, int grouped)
{
    char subj[WSG_SUBJECT_MAX], group[WSG_SUBJECT_MAX];
    if (wsg_subject_fmt(subj, sizeof(subj), b->cfg.prefix, "%s", suffix) ||
        wsg_subject_fmt(group, sizeof(group), b->cfg.prefix, "router"))
        return NATS_INVALID_ARG;
    sub_slot *slot = &b->subs[kind];
    slot->bus = b;
    slot->kind = kind;
    natsStatus s = grouped ? natsConnection_QueueSubscribe(&slot->sub, b->nats.conn, subj, group,
                                                           on_msg, slot)
                           : natsConnection_Subscribe(&slot->sub, b->nats.conn, subj, on_msg, slot);
    /* the hand-off is immediate and our queue is the bounded one (see rt_bus.h): nats.c's
     * limit would only drop silently */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(slot->sub, -1, -1);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(slot->sub, on_complete, slot);
    if (s != NATS_OK)
        wsg_error("nats_subscribe_failed", "subject=%s status=\"%s\"", subj,
                  natsStatus_GetText(s));
    else
        wsg_info("nats_subscribed", "subject=%s group=%s", subj, grouped ? group : "-");
    return s;
}

rt_bus *rt_bus_open(const rt_bus_cfg *cfg)
{
    rt_bus *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->cfg = *cfg;
    b->max_bytes[CLS_WORK] = cfg->work_bytes ? cfg->work_bytes : RT_BUS_WORK_BYTES;
    b->max_bytes[CLS_REGISTRY] = cfg->registry_bytes ? cfg->registry_bytes : RT_BUS_REGISTRY_BYTES;
    if (wsg_queue_init(&b->q)) {
        free(b);
        return NULL;
    }
    wsg_nats_cfg nc = {
        .urls = cfg->urls,
        .auth = cfg->auth,
        .name = cfg->name,
        .ordered_delivery = 1,
        .on_connected = on_connected,
        .on_disconnected = on_disconnected,
        .arg = b,
    };
    if (wsg_nats_open(&b->nats, &nc) != NATS_OK)
        goto fail;
    b->nats_open = 1;
    if (subscribe(b, RT_MSG_CONN, "conn", 0) != NATS_OK ||
        subscribe(b, RT_MSG_HB, "hb", 0) != NATS_OK ||
        subscribe(b, RT_MSG_SEND_MESSAGE, "in.send_message", 1) != NATS_OK ||
        subscribe(b, RT_MSG_BROADCAST, "in.broadcast", 1) != NATS_OK ||
        subscribe(b, RT_MSG_PUBLISH, "in.publish", 1) != NATS_OK ||
        subscribe(b, RT_MSG_PRESENCE, "in.presence", 1) != NATS_OK ||
        subscribe(b, RT_MSG_DELIVER, "deliver", 1) != NATS_OK ||
        subscribe(b, RT_MSG_HISTORY, "history", 1) != NATS_OK ||
        subscribe(b, RT_MSG_API_PUBLISH, "api.publish", 1) != NATS_OK ||
        subscribe(b, RT_MSG_API_DISCONNECT, "api.disconnect", 1) != NATS_OK ||
        subscribe(b, RT_MSG_API_PRESENCE, "api.presence", 1) != NATS_OK ||
        subscribe(b, RT_MSG_API_INFO, "api.info", 1) != NATS_OK ||
        subscribe(b, RT_MSG_ROUTER_HB, "router.hb", 0) != NATS_OK)
        goto fail;
    return b;
fail:
    rt_bus_close(b, 0);
    return NULL;
}

static void free_list(wsg_qnode *n)
{
    while (n) {
        wsg_qnode *next = n->next;
        rt_msg_free(wsg_container_of(n, rt_msg, q));
        n = next;
    }
}

void rt_bus_unsubscribe(rt_bus *b)
{
    if (!b || b->unsubscribed)
        return;
    b->unsubscribed = 1;
    int subs = 0;
    for (int k = 0; k < RT_MSG__COUNT; k++) {
        if (!b->subs[k].sub)
            continue;
        subs++;
        if (natsSubscription_Unsubscribe(b->subs[k].sub) != NATS_OK)
            wsg_warn("nats_unsubscribe_failed", "kind=%d", k);
    }
    /* the queue and the slots must outlive every callback */
    int64_t deadline = wsg_mono_us() + COMPLETE_WAIT_US;
    while (atomic_load(&b->completed) < subs && wsg_mono_us() < deadline)
        usleep(1000);
}

void rt_bus_close(rt_bus *b, int64_t flush_timeout_ms)
{
    if (!b)
        return;
    rt_bus_unsubscribe(b);
    if (b->nats_open)
        wsg_nats_close(&b->nats, flush_timeout_ms);
    for (int k = 0; k < RT_MSG__COUNT; k++)
        if (b->subs[k].sub)
            natsSubscription_Destroy(b->subs[k].sub);
    free_list(wsg_queue_take_all(&b->q));
    wsg_queue_destroy(&b->q);
    free(b);
}

rt_msg *rt_bus_take(rt_bus *b)
{
    wsg_qnode *n = wsg_queue_take_all(&b->q);
    return n ? wsg_container_of(n, rt_msg, q) : NULL;
}

void rt_msg_free(rt_msg *m)
{
    if (!m)
        return;
    if (m->bus) {
        int cls = class_of(m->kind);
        atomic_fetch_sub(&m->bus->queued[cls], m->bytes);
        set_queued_gauge(m->bus, cls);
    }
    natsMsg_Destroy(m->msg);
    free(m);
}

uint64_t rt_bus_take_shed(rt_bus *b)
{
    return atomic_exchange(&b->registry_shed, 0);
}

int rt_bus_publish(rt_bus *b, const char *subject, const void *data, size_t len)
{
    natsStatus s = len > INT_MAX ? NATS_INVALID_ARG
                                 : natsConnection_Publish(b->nats.conn, subject, data, (int)len);
    if (s == NATS_OK)
        return 0;
    if (b->cfg.metrics)
        wsg_metrics_add(b->cfg.metrics, RT_M_NATS_PUBLISH_ERRORS, 1);
    wsg_debug("nats_publish_failed", "subject=%s bytes=%zu status=\"%s\"", subject, len,
              natsStatus_GetText(s));
    return -1;
}

int rt_bus_connected(rt_bus *b)
{
    return atomic_load(&b->nats.connected);
}

int64_t rt_bus_max_payload(rt_bus *b)
{
    int64_t n = natsConnection_GetMaxPayload(b->nats.conn);
    return n > 0 ? n : 0;
}
