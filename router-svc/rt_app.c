/* rt_app: the main-thread state machine: snapshot loading, message processing, store results,
 * presence publishing, node expiry, HTTP status. */
#include "rt_app.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_batch.h"
#include "rt_bus.h"
#include "rt_http.h"
#include "rt_metrics.h"
#include "rt_presence.h"
#include "rt_registry.h"
#include "rt_resync.h"
#include "rt_route.h"
#include "rt_script.h"
#include "rt_store.h"
#include "wsg_log.h"
#include "wsg_pb.h"
#include "wsg_subject.h"
#include "wsg_time.h"

#define TICK_US (1000 * 1000)
/* Flush batches early inside a big drain so their memory stays bounded. */
#define EARLY_FLUSH_BYTES (4u * 1024 * 1024)
#define NATS_FLUSH_MS 2000
/* NodeDelivery bytes around one item's payload (ids, epoch, tags, one conn id) */
#define NODE_DELIVERY_OVERHEAD 256
/* rt_resync entries of nodes not heard of for this long are forgotten */
#define RESYNC_IDLE_US (3600 * INT64_C(1000000))

typedef enum { OP_LOAD, OP_CONN, OP_NODE, OP_PURGE, OP_REWRITE } op_what;

/* What the main thread remembers about an op while the store runs it. */
typedef struct op_ctx {
    op_what what;
    char node_id[WSG_NODE_ID_MAX + 1];
    /* the in-memory registry's transitions, published if Redis cannot say */
    rt_presence_list fallback;
} op_ctx;

struct rt_app {
    const rt_config *cfg;
    wsg_metrics *m;
    rt_registry *reg;
    rt_batch *batch;
    rt_http *http;
    rt_store *store;
    rt_bus *bus;
    rt_resync *rs;
    int loaded;
    int load_inflight;
    atomic_int stop;
    /* a ResyncRequest to every gateway is owed (sent once NATS is up and the limit allows) */
    int resync_all_due;
    rt_resync_reason resync_all_reason;
    int nats_up, nats_was_up;
    char presence_subject[WSG_SUBJECT_MAX];
    char resync_subject[WSG_SUBJECT_MAX];
    /* a misbehaving publisher must not flood the log: one rejection line per second */
    int64_t reject_logged_us;
    uint64_t reject_suppressed;
};

static void op_ctx_free(void *p)
{
    op_ctx *c = p;
    if (!c)
        return;
    rt_presence_list_free(&c->fallback);
    free(c);
}

/* A script op with its context; NULL on ENOMEM. */
static rt_store_op *op_new(op_what what, rt_script_id script, const char *node_id)
{
    rt_store_op *op = rt_store_op_new(what == OP_REWRITE ? RT_OP_REWRITE : RT_OP_SCRIPT);
    op_ctx *c = calloc(1, sizeof(*c));
    if (!op || !c) {
        free(c);
        rt_store_op_free(op);
        return NULL;
    }
    c->what = what;
    rt_presence_list_init(&c->fallback);
    if (node_id)
        snprintf(c->node_id, sizeof(c->node_id), "%s", node_id);
    op->script = script;
    op->ctx = c;
    op->ctx_free = op_ctx_free;
    return op;
}

static void count(rt_app *a, size_t id)
{
    wsg_metrics_add(a->m, id, 1);
}

/* ---- publishing ---- */

static void publish_presence(rt_app *a, const rt_presence_list *l)
{
    int64_t now = wsg_now_us();
    for (size_t i = 0; i < l->n; i++) {
        const rt_presence *p = &l->v[i];
        Wsgate__PresenceEvent ev = WSGATE__PRESENCE_EVENT__INIT;
        ev.user_id = p->user_id;
        ev.status = p->online ? WSGATE__PRESENCE_EVENT__STATUS__ONLINE
                              : WSGATE__PRESENCE_EVENT__STATUS__OFFLINE;
        ev.node_id = (char *)p->node_id;
        ev.conn_id = p->conn_id;
        ev.at_us = now;
        uint8_t *buf;
        size_t len;
        if (wsg_pb_pack(&ev.base, &buf, &len)) {
            count(a, RT_M_INTERNAL_ERRORS);
            continue;
        }
        if (rt_bus_publish(a->bus, a->presence_subject, buf, len) == 0)
            count(a, RT_M_PRESENCE);
        free(buf);
        wsg_debug("presence", "user=\"%s\" status=%s node=%s conn=%" PRIu64, p->user_id,
                  p->online ? "online" : "offline", p->node_id, p->conn_id);
    }
}

static int publish_node(const char *node_id, const uint8_t *data, size_t len, void *arg)
{
    rt_app *a = arg;
    char subj[WSG_SUBJECT_MAX];
    if (wsg_subject_fmt(subj, sizeof(subj), a->cfg->prefix, "node.%s", node_id))
        return -1;
    if (rt_bus_publish(a->bus, subj, data, len))
        return -1;
    count(a, RT_M_NODE_DELIVERIES);
    return 0;
}

static void flush_batches(rt_app *a)
{
    size_t failed = 0;
    rt_batch_flush(a->batch, publish_node, a, &failed);
    if (failed)
        wsg_metrics_add(a->m, RT_M_INTERNAL_ERRORS, (int64_t)failed);
}

static void publish_resync(const char *node_id, rt_resync_reason why, void *arg)
{
    rt_app *a = arg;
    Wsgate__ResyncRequest rq = WSGATE__RESYNC_REQUEST__INIT;
    rq.node_id = (char *)(node_id ? node_id : "");
    rq.reason = (char *)rt_resync_reason_name(why);
    rq.at_us = wsg_now_us();
    uint8_t *buf;
    size_t len;
    if (wsg_pb_pack(&rq.base, &buf, &len)) {
        count(a, RT_M_INTERNAL_ERRORS);
        return;
    }
    int rc = rt_bus_publish(a->bus, a->resync_subject, buf, len);
    free(buf);
    if (rc) {
        wsg_warn("resync_request_failed", "node=%s reason=%s", node_id ? node_id : "*",
                 rt_resync_reason_name(why));
        return;
    }
    count(a, rt_metric_resync_request(why));
    wsg_info("resync_requested", "node=%s reason=%s", node_id ? node_id : "*",
             rt_resync_reason_name(why));
}

/* Asks node_id (NULL: every gateway) to resync now, or once the rate limit allows. */
static void request_resync(rt_app *a, const char *node_id, rt_resync_reason why)
{
    if (rt_resync_want(a->rs, node_id, why, wsg_mono_us()))
        publish_resync(node_id, why, a);
    else
        wsg_debug("resync_request_owed", "node=%s reason=%s", node_id ? node_id : "*",
                  rt_resync_reason_name(why));
}

/* The request to every gateway owed since the registry was loaded goes out once NATS is up. A
 * NATS reconnect owes one too: events published while this replica was cut off never reached
 * it. */
static void resync_all_check(rt_app *a)
{
    a->nats_up = rt_bus_connected(a->bus);
    if (a->nats_up && !a->nats_was_up) {
        if (a->loaded && !a->resync_all_due) {
            a->resync_all_due = 1;
            a->resync_all_reason = RT_RSQ_RECONNECT;
        }
        a->nats_was_up = 1;
    } else if (!a->nats_up && a->nats_was_up) {
        a->nats_was_up = 0;
    }
    if (a->resync_all_due && a->loaded && a->nats_up) {
        a->resync_all_due = 0;
        request_resync(a, NULL, a->resync_all_reason);
    }
}

static void update_gauges(rt_app *a)
{
    wsg_metrics_set(a->m, RT_M_NODES, (int64_t)rt_registry_node_count(a->reg));
    wsg_metrics_set(a->m, RT_M_CONNECTIONS, (int64_t)rt_registry_conn_count(a->reg));
    wsg_metrics_set(a->m, RT_M_USERS, (int64_t)rt_registry_user_count(a->reg));
}

/* ---- store results ---- */

static void submit_load(rt_app *a)
{
    rt_store_op *op = op_new(OP_LOAD, RT_SCRIPT_SNAPSHOT, NULL);
    if (!op || rt_script_snapshot_args(&op->args, a->cfg->prefix)) {
        rt_store_op_free(op);
        count(a, RT_M_INTERNAL_ERRORS);
        return; /* the next tick tries again */
    }
    op->wait = 1;
    a->load_inflight = 1;
    rt_store_submit(a->store, op);
}

static void on_loaded(rt_app *a, rt_store_op *op)
{
    a->load_inflight = 0;
    if (!op->done)
        return; /* the next tick asks again */
    size_t bad = 0;
    rt_registry_clear(a->reg);
    if (rt_script_load_snapshot(op->reply, a->reg, wsg_mono_us(), &bad)) {
        wsg_error("registry_load_failed", "reason=\"malformed snapshot or out of memory\"");
        count(a, RT_M_REDIS_ERRORS);
        rt_registry_clear(a->reg);
        return;
    }
    if (bad) {
        wsg_warn("registry_load_skipped", "entries=%zu", bad);
        wsg_metrics_add(a->m, RT_M_REDIS_ERRORS, (int64_t)bad);
    }
    a->loaded = 1;
    /* gateways may have changed while no router listened (or this one was loading) */
    a->resync_all_due = 1;
    a->resync_all_reason = RT_RSQ_START;
    update_gauges(a);
    wsg_info("registry_loaded", "nodes=%zu connections=%zu users=%zu",
             rt_registry_node_count(a->reg), rt_registry_conn_count(a->reg),
             rt_registry_user_count(a->reg));
}

static void on_change(rt_app *a, rt_store_op *op, op_ctx *c)
{
    if (!op->done) {
        /* Redis did not run it: this replica's own view decides (may duplicate) */
        publish_presence(a, &c->fallback);
        return;
    }
    rt_presence_list got;
    rt_presence_list_init(&got);
    rt_script_status st;
    int gap;
    if (rt_script_parse_change(op->reply, c->node_id, &st, &gap, &got)) {
        wsg_warn("redis_bad_reply", "node=%s", c->node_id);
        count(a, RT_M_REDIS_ERRORS);
        publish_presence(a, &c->fallback);
    } else {
        publish_presence(a, &got);
    }
    rt_presence_list_free(&got);
}

static void request_rewrite(rt_app *a, uint64_t generation)
{
    rt_store_op *op = op_new(OP_REWRITE, 0, NULL);
    if (!op || rt_script_rewrite_cmds(op, a->cfg->prefix, a->reg)) {
        wsg_error("redis_rewrite_build_failed", "reason=\"out of memory\"");
        count(a, RT_M_INTERNAL_ERRORS);
        rt_store_op_free(op);
        return;
    }
    op->generation = generation;
    wsg_info("redis_rewrite", "generation=%" PRIu64 " commands=%zu", generation, op->ncmds);
    rt_store_submit(a->store, op);
}

static void drain_store(rt_app *a)
{
    rt_store_op *op = rt_store_take(a->store);
    while (op) {
        rt_store_op *next = op->q.next ? wsg_container_of(op->q.next, rt_store_op, q) : NULL;
        op_ctx *c = op->ctx;
        if (op->kind == RT_OP_NEED_REWRITE) {
            if (a->loaded && !atomic_load(&a->stop))
                request_rewrite(a, op->generation);
        } else if (c && c->what == OP_LOAD) {
            on_loaded(a, op);
        } else if (c && (c->what == OP_CONN || c->what == OP_NODE || c->what == OP_PURGE)) {
            on_change(a, op, c);
        }
        rt_store_op_free(op);
        op = next;
    }
}

/* Hands a registry change to the store, with the in-memory transitions as fallback. */
static void submit_change(rt_app *a, rt_store_op *op, rt_presence_list *fallback)
{
    op_ctx *c = op->ctx;
    rt_presence_list tmp = c->fallback;
    c->fallback = *fallback;
    *fallback = tmp;
    rt_store_submit(a->store, op);
}

/* ---- NATS messages ---- */

/* Hands an applied event to Redis (a whole RESYNC set in one call). */
static void store_conn_event(rt_app *a, const Wsgate__ConnEvent *ev, const rt_ev_result *res,
                             rt_presence_list *pl)
{
    rt_store_op *op = op_new(OP_CONN, RT_SCRIPT_CONN, ev->node_id);
    int rc = !op ? -1
             : res->set
                 ? rt_script_resync_args(&op->args, a->cfg->prefix, ev->node_id, ev->node_epoch,
                                         res->set)
                 : rt_script_conn_args(&op->args, a->cfg->prefix, ev);
    if (rc) {
        rt_store_op_free(op);
        count(a, RT_M_INTERNAL_ERRORS);
        publish_presence(a, pl);
        return;
    }
    submit_change(a, op, pl);
}

static void on_conn_event(rt_app *a, const natsMsg *msg)
{
    Wsgate__ConnEvent *ev = wsgate__conn_event__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    if (!ev) {
        count(a, rt_metric_rejected(RT_REJ_DECODE));
        return;
    }
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    rt_ev_result res;
    if (rt_registry_conn_event(a->reg, ev, wsg_mono_us(), &res, &pl))
        count(a, RT_M_INTERNAL_ERRORS);
    int resync = ev->kind == WSGATE__CONN_EVENT__KIND__RESYNC;
    switch (res.status) {
    case RT_EV_INVALID:
        count(a, rt_metric_rejected(RT_REJ_INVALID_EVENT));
        wsg_debug("conn_event_invalid", "kind=%d stream=%" PRIu32 " conns=%zu", (int)ev->kind,
                  ev->stream, ev->n_conns);
        goto out;
    case RT_EV_STALE:
        count(a, RT_M_STALE_EVENTS);
        goto out;
    case RT_EV_DUPLICATE:
        count(a, RT_M_DUPLICATE_EVENTS);
        goto out;
    case RT_EV_PART:
        count(a, RT_M_RESYNC_PARTS);
        break;
    case RT_EV_DISCARDED:
        break;
    case RT_EV_APPLIED:
        count(a, RT_M_CONN_EVENTS);
        break;
    }
    if (res.gap) {
        count(a, RT_M_SEQ_GAPS);
        wsg_warn("conn_event_gap", "node=%s epoch=%" PRIu64 " stream=%" PRIu32 " seq=%" PRIu64
                 " kind=%d", ev->node_id, ev->node_epoch, ev->stream, ev->seq, (int)ev->kind);
    }
    if (res.new_life)
        wsg_info("node_new_life", "node=%s epoch=%" PRIu64, ev->node_id, ev->node_epoch);
    if (res.abandoned != RT_ABANDON_NONE) {
        count(a, RT_M_RESYNC_ABANDONED);
        wsg_warn("resync_abandoned", "node=%s epoch=%" PRIu64 " stream=%" PRIu32 " seq=%" PRIu64
                 " reason=%s", ev->node_id, ev->node_epoch, ev->stream, ev->seq,
                 res.abandoned == RT_ABANDON_GAP ? "out_of_sequence" : "too_big");
    }
    if (res.new_node && rt_resync_node_seen(a->rs, ev->node_id, ev->node_epoch))
        request_resync(a, ev->node_id, RT_RSQ_NODE_BACK);
    else if (res.set_lost)
        request_resync(a, ev->node_id, RT_RSQ_SET_LOST);
    else if (res.gap && !resync)
        /* a RESYNC starting after a gap repairs it; a lost OPEN / CLOSE needs one */
        request_resync(a, ev->node_id, RT_RSQ_SEQ_GAP);
    if (res.status == RT_EV_APPLIED)
        store_conn_event(a, ev, &res, &pl);
out:
    rt_presence_list_free(&pl);
    wsgate__conn_event__free_unpacked(ev, NULL);
}

/* A node's last heartbeat: it was removed from memory; Redis forgets it through the purge
 * script, which tells exactly one replica about the users who went offline. */
static void on_departed(rt_app *a, const Wsgate__NodeHeartbeat *hb, rt_presence_list *pl)
{
    count(a, RT_M_NODES_LEFT);
    wsg_info("node_left", "node=%s epoch=%" PRIu64 " users_offline=%zu", hb->node_id,
             hb->node_epoch, pl->n);
    if (rt_resync_node_gone(a->rs, hb->node_id, hb->node_epoch, wsg_mono_us()))
        count(a, RT_M_INTERNAL_ERRORS);
    rt_store_op *op = op_new(OP_PURGE, RT_SCRIPT_PURGE, hb->node_id);
    if (!op || rt_script_purge_args(&op->args, a->cfg->prefix, hb->node_id, hb->node_epoch)) {
        rt_store_op_free(op);
        count(a, RT_M_INTERNAL_ERRORS);
        publish_presence(a, pl);
        return;
    }
    submit_change(a, op, pl);
}

static void on_heartbeat(rt_app *a, const natsMsg *msg)
{
    Wsgate__NodeHeartbeat *hb = wsgate__node_heartbeat__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    if (!hb) {
        count(a, rt_metric_rejected(RT_REJ_DECODE));
        return;
    }
    count(a, RT_M_HEARTBEATS);
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    rt_ev_result res;
    if (rt_registry_heartbeat(a->reg, hb, wsg_mono_us(), &res, &pl))
        count(a, RT_M_INTERNAL_ERRORS);
    if (res.status == RT_EV_INVALID) {
        count(a, rt_metric_rejected(RT_REJ_INVALID_EVENT));
        goto out;
    }
    if (res.status == RT_EV_STALE) {
        count(a, RT_M_STALE_EVENTS);
        goto out;
    }
    if (res.departed) {
        on_departed(a, hb, &pl);
        goto out;
    }
    int asked = 0;
    if (res.new_node && rt_resync_node_seen(a->rs, hb->node_id, hb->node_epoch)) {
        request_resync(a, hb->node_id, RT_RSQ_NODE_BACK);
        asked = 1;
    }
    if (res.new_node || res.new_life) {
        /* only a new node or life changes the durable copy; a steady heartbeat does not */
        wsg_info(res.new_life ? "node_new_life" : "node_seen", "node=%s epoch=%" PRIu64,
                 hb->node_id, hb->node_epoch);
        rt_store_op *op = op_new(OP_NODE, RT_SCRIPT_NODE, hb->node_id);
        if (!op || rt_script_node_args(&op->args, a->cfg->prefix, hb->node_id, hb->node_epoch)) {
            rt_store_op_free(op);
            count(a, RT_M_INTERNAL_ERRORS);
            publish_presence(a, &pl);
        } else {
            submit_change(a, op, &pl);
        }
    }
    size_t known;
    int resyncing;
    /* while a multi-part set is in flight the counts cannot agree */
    if (!asked && rt_registry_node_stats(a->reg, hb->node_id, &known, &resyncing) == 0 &&
        !resyncing &&
        rt_resync_heartbeat(a->rs, hb->node_id, hb->node_epoch, hb->connections, known,
                            wsg_mono_us())) {
        wsg_warn("node_count_mismatch", "node=%s announced=%" PRIu32 " known=%zu", hb->node_id,
                 hb->connections, known);
        request_resync(a, hb->node_id, RT_RSQ_COUNT_MISMATCH);
    }
out:
    rt_presence_list_free(&pl);
    wsgate__node_heartbeat__free_unpacked(hb, NULL);
}

static const char *reject_name(rt_reject r)
{
    static const char *const names[RT_REJ__COUNT] = {
        "decode", "no_target", "empty_users", "bad_payload", "too_big", "invalid_frame",
        "invalid_event"};
    return (unsigned)r < RT_REJ__COUNT ? names[r] : "unknown";
}

static void on_routed(rt_app *a, rt_msg_kind kind, const natsMsg *msg)
{
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    int64_t now = wsg_now_us();
    rt_route_result res;
    size_t routed_id;
    if (kind == RT_MSG_SEND_MESSAGE) {
        rt_route_send_message(a->reg, a->batch, data, len, now, &res);
        routed_id = RT_M_ROUTED_SEND_MESSAGE;
    } else if (kind == RT_MSG_BROADCAST) {
        rt_route_broadcast(a->reg, a->batch, data, len, now, &res);
        routed_id = RT_M_ROUTED_BROADCAST;
    } else {
        /* a payload whose NodeDelivery could not be published is refused up front */
        int64_t max = a->cfg->max_delivery_bytes, wire = rt_bus_max_payload(a->bus);
        if (wire > NODE_DELIVERY_OVERHEAD && wire - NODE_DELIVERY_OVERHEAD < max)
            max = wire - NODE_DELIVERY_OVERHEAD;
        rt_route_deliver(a->reg, a->batch, data, len, (size_t)max, now, &res);
        routed_id = RT_M_ROUTED_DELIVER;
    }
    switch (res.status) {
    case RT_ROUTED:
        count(a, routed_id);
        break;
    case RT_UNDELIVERABLE:
        count(a, RT_M_UNDELIVERABLE);
        break;
    case RT_USER_OFFLINE:
        count(a, RT_M_USER_OFFLINE);
        break;
    case RT_REJECTED:
        count(a, rt_metric_rejected(res.reason));
        if (kind != RT_MSG_DELIVER) {
            /* the gateway validated these already: only a foreign publisher gets here */
            wsg_debug("frame_rejected", "subject=%s reason=%s", natsMsg_GetSubject(msg),
                      reject_name(res.reason));
        } else if (wsg_mono_us() - a->reject_logged_us >= 1000000) {
            wsg_warn("delivery_rejected", "subject=%s reason=%s bytes=%zu suppressed=%" PRIu64,
                     natsMsg_GetSubject(msg), reject_name(res.reason), len,
                     a->reject_suppressed);
            a->reject_logged_us = wsg_mono_us();
            a->reject_suppressed = 0;
        } else {
            a->reject_suppressed++;
        }
        break;
    case RT_ROUTE_NOMEM:
        count(a, RT_M_INTERNAL_ERRORS);
        break;
    }
}

static void drain_bus(rt_app *a)
{
    rt_msg *m = rt_bus_take(a->bus);
    while (m) {
        rt_msg *next = m->q.next ? wsg_container_of(m->q.next, rt_msg, q) : NULL;
        switch (m->kind) {
        case RT_MSG_CONN:
            on_conn_event(a, m->msg);
            break;
        case RT_MSG_HB:
            on_heartbeat(a, m->msg);
            break;
        default:
            on_routed(a, m->kind, m->msg);
            break;
        }
        rt_msg_free(m);
        if (rt_batch_pending_bytes(a->batch) > EARLY_FLUSH_BYTES)
            flush_batches(a);
        m = next;
    }
    flush_batches(a);
}

/* ---- loop hooks ---- */

static void on_wake(void *arg)
{
    rt_app *a = arg;
    drain_store(a);
    resync_all_check(a);
    if (a->loaded)
        drain_bus(a);
    update_gauges(a);
}

static void on_expired(const char *node_id, uint64_t epoch, const rt_presence_list *off, void *arg)
{
    rt_app *a = arg;
    count(a, RT_M_NODES_EXPIRED);
    wsg_warn("node_expired", "node=%s epoch=%" PRIu64 " users_offline=%zu", node_id, epoch,
             off->n);
    /* if it was only slow, its next word makes this replica ask it for its set again */
    if (rt_resync_node_gone(a->rs, node_id, epoch, wsg_mono_us()))
        count(a, RT_M_INTERNAL_ERRORS);
    rt_store_op *op = op_new(OP_PURGE, RT_SCRIPT_PURGE, node_id);
    if (!op || rt_script_purge_args(&op->args, a->cfg->prefix, node_id, epoch)) {
        rt_store_op_free(op);
        count(a, RT_M_INTERNAL_ERRORS);
        publish_presence(a, off);
        return;
    }
    op_ctx *c = op->ctx;
    for (size_t i = 0; i < off->n; i++)
        if (rt_presence_list_add(&c->fallback, off->v[i].user_id, strlen(off->v[i].user_id),
                                 off->v[i].online, off->v[i].node_id, off->v[i].conn_id))
            count(a, RT_M_INTERNAL_ERRORS);
    rt_store_submit(a->store, op);
}

static void on_tick(void *arg)
{
    rt_app *a = arg;
    if (!a->loaded && !a->load_inflight)
        submit_load(a);
    if (a->loaded)
        rt_registry_expire(a->reg, wsg_mono_us(), a->cfg->node_timeout_ms * 1000, on_expired, a);
    resync_all_check(a);
    if (a->nats_up)
        rt_resync_due(a->rs, wsg_mono_us(), publish_resync, a);
    rt_resync_prune(a->rs, wsg_mono_us(), RESYNC_IDLE_US);
    update_gauges(a);
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

static int http_health(void *arg, wsg_buf *out)
{
    rt_app *a = arg;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "status", "ok", "node_id",
                          a->cfg->node_id, "nats",
                          rt_bus_connected(a->bus) ? "connected" : "disconnected", "redis",
                          rt_store_connected(a->store) ? "connected" : "disconnected",
                          "registry_loaded", a->loaded,
                          "nodes", (json_int_t)rt_registry_node_count(a->reg),
                          "connections", (json_int_t)rt_registry_conn_count(a->reg),
                          "users", (json_int_t)rt_registry_user_count(a->reg));
    return json_reply(o, out) ? 500 : 200;
}

static int http_ready(void *arg, wsg_buf *out)
{
    rt_app *a = arg;
    const char *reason = !rt_bus_connected(a->bus) ? "nats" : !a->loaded ? "loading" : NULL;
    if (!reason) {
        wsg_buf_puts(out, "{\"ready\":true}");
        return 200;
    }
    wsg_buf_printf(out, "{\"ready\":false,\"reason\":\"%s\"}", reason);
    return 503;
}

static int http_metrics(void *arg, wsg_buf *out)
{
    rt_app *a = arg;
    update_gauges(a);
    wsg_metrics_render(a->m, out);
    return 200;
}

static void wake_loop(void *arg)
{
    rt_app *a = arg;
    rt_http_wake(a->http);
}

/* ---- lifecycle ---- */

rt_app *rt_app_new(const rt_config *cfg, wsg_metrics *metrics)
{
    rt_app *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg = cfg;
    a->m = metrics;
    a->reg = rt_registry_new();
    a->rs = rt_resync_new(RT_RESYNC_MIN_INTERVAL_US);
    a->batch = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    if (!a->reg || !a->rs || !a->batch ||
        wsg_subject_fmt(a->presence_subject, sizeof(a->presence_subject), cfg->prefix,
                        "events.presence") ||
        wsg_subject_fmt(a->resync_subject, sizeof(a->resync_subject), cfg->prefix, "resync")) {
        rt_app_free(a);
        return NULL;
    }
    return a;
}

int rt_app_start(rt_app *a)
{
    rt_http_hooks hooks = {
        .on_wake = on_wake,
        .on_tick = on_tick,
        .health = http_health,
        .ready = http_ready,
        .metrics = http_metrics,
        .arg = a,
    };
    a->http = rt_http_new(a->cfg->http_host, a->cfg->http_port, TICK_US, &hooks);
    if (!a->http)
        return -1;
    rt_store_cfg sc = {
        .addr = a->cfg->redis,
        .prefix = a->cfg->prefix,
        .scripts = rt_scripts,
        .nscripts = RT_SCRIPT__COUNT,
        .wake = wake_loop,
        .wake_arg = a,
        .metrics = a->m,
    };
    a->store = rt_store_start(&sc);
    if (!a->store) {
        wsg_error("store_start_failed", NULL);
        return -1;
    }
    /* subscribe first: messages queue up while the snapshot loads, so nothing is missed */
    rt_bus_cfg bc = {
        .urls = a->cfg->nats_url,
        .name = a->cfg->node_id,
        .prefix = a->cfg->prefix,
        .wake = wake_loop,
        .wake_arg = a,
        .metrics = a->m,
    };
    a->bus = rt_bus_open(&bc);
    if (!a->bus)
        return -1;
    submit_load(a);
    return 0;
}

int rt_app_run(rt_app *a)
{
    while (!atomic_load(&a->stop))
        if (rt_http_service(a->http)) {
            wsg_error("loop_failed", NULL);
            return -1;
        }
    return 0;
}

void rt_app_stop(rt_app *a)
{
    atomic_store(&a->stop, 1);
    if (a->http)
        rt_http_wake(a->http);
}

void rt_app_free(rt_app *a)
{
    if (!a)
        return;
    /* Messages already taken from NATS are still handled (queue-group work would otherwise be
     * lost) and their registry changes reach Redis and presence before NATS is flushed; only
     * then do the producers (which wake the loop through http) go, then the loop itself. */
    if (a->bus) {
        rt_bus_unsubscribe(a->bus);
        if (a->store)
            drain_store(a);
        if (a->loaded)
            drain_bus(a);
    }
    if (a->store) {
        rt_store_stop(a->store);
        if (a->bus)
            drain_store(a);
    }
    rt_bus_close(a->bus, NATS_FLUSH_MS);
    a->bus = NULL;
    rt_store_free(a->store);
    a->store = NULL;
    rt_http_free(a->http);
    rt_batch_free(a->batch);
    rt_registry_free(a->reg);
    rt_resync_free(a->rs);
    free(a);
}
