/* rt_members: registry events, presence publishing, the snapshot, node expiry and resync
 * requests, on the router's main thread. */
#include "rt_members.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_limit.h"
#include "rt_metrics.h"
#include "rt_presence.h"
#include "rt_resync.h"
#include "rt_route.h"
#include "rt_script.h"
#include "wsg_channel.h"
#include "wsg_client.h"
#include "wsg_log.h"
#include "wsg_pb.h"
#include "wsg_subject.h"
#include "wsg_time.h"

/* rt_resync entries of nodes not heard of for this long are forgotten */
#define RESYNC_IDLE_US (3600 * INT64_C(1000000))

struct rt_members {
    rt_ctx *c;
    rt_resync *rs;
    int loaded;
    int load_inflight;
    /* a ResyncRequest to every gateway is owed (sent once NATS is up and the limit allows) */
    int resync_all_due;
    rt_resync_reason resync_all_reason;
    int nats_up, nats_was_up;
    char presence_subject[WSG_SUBJECT_MAX];
    char resync_subject[WSG_SUBJECT_MAX];
    /* with shards: per shard, the seen markers being collected (rt_members_seen_flush) */
    rt_store_op **seen;
};

/* seen markers per script call, at most */
#define SEEN_BATCH 1000

/* What a registry change op remembers while the store runs it. */
typedef struct change_op {
    rt_members *mb;
    char node_id[WSG_NODE_ID_MAX + 1];
    /* the in-memory registry's transitions, published if Redis cannot say */
    rt_presence_list fallback;
    rt_chan_list fallback_chans;
    /* an OPEN: its user, whose connection limit the replica that applied it enforces */
    char *open_user;
} change_op;

static void count(rt_members *mb, size_t id)
{
    rt_ctx_count(mb->c, id);
}

/* ---- publishing ---- */

static void publish_presence(rt_members *mb, const rt_presence_list *l)
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
            count(mb, RT_M_INTERNAL_ERRORS);
            continue;
        }
        if (rt_bus_publish(mb->c->bus, mb->presence_subject, buf, len) == 0)
            count(mb, RT_M_PRESENCE);
        free(buf);
        wsg_debug("presence", "user=\"%s\" status=%s gateway=%s conn=%" PRIu64, p->user_id,
                  p->online ? "online" : "offline", p->node_id, p->conn_id);
    }
}

/* Join / leave frames to the subscribers of each channel whose namespace has join_leave. They
 * go into the shared batch, which the main loop flushes after the drain or the completion. */
static void send_chan_changes(rt_members *mb, const rt_chan_list *l)
{
    const rt_ctx *c = mb->c;
    int64_t now = wsg_now_us();
    for (size_t i = 0; i < l->n; i++) {
        const rt_chan_change *ch = &l->v[i];
        const wsg_ns *ns = wsg_ns_find(c->cfg->namespaces, ch->channel, strlen(ch->channel));
        if (!ns || !ns->join_leave)
            continue;
        size_t len;
        char *text = wsg_client_join_leave(ch->join, ch->channel, ch->user_id, &len);
        if (!text || rt_route_channel_notice(c->reg, c->batch, ch->channel, text, len, now))
            count(mb, RT_M_INTERNAL_ERRORS);
        free(text);
        wsg_debug("channel_member", "channel=%s user=\"%s\" change=%s", ch->channel,
                  ch->user_id, ch->join ? "join" : "leave");
    }
}

/* What this replica's own registry saw, when Redis cannot tell which replica applied it
 * first: presence and join / leave may then be duplicated, never lost. */
static void publish_fallback(rt_members *mb, const rt_presence_list *pl,
                             const rt_chan_list *cl)
{
    publish_presence(mb, pl);
    send_chan_changes(mb, cl);
}

static void publish_resync(const char *node_id, rt_resync_reason why, void *arg)
{
    rt_members *mb = arg;
    Wsgate__ResyncRequest rq = WSGATE__RESYNC_REQUEST__INIT;
    rq.node_id = (char *)(node_id ? node_id : "");
    rq.reason = (char *)rt_resync_reason_name(why);
    rq.at_us = wsg_now_us();
    uint8_t *buf;
    size_t len;
    if (wsg_pb_pack(&rq.base, &buf, &len)) {
        count(mb, RT_M_INTERNAL_ERRORS);
        return;
    }
    int rc = rt_bus_publish(mb->c->bus, mb->resync_subject, buf, len);
    free(buf);
    if (rc) {
        wsg_warn("resync_request_failed", "gateway=%s reason=%s", node_id ? node_id : "*",
                 rt_resync_reason_name(why));
        return;
    }
    count(mb, rt_metric_resync_request(why));
    wsg_info("resync_requested", "gateway=%s reason=%s", node_id ? node_id : "*",
             rt_resync_reason_name(why));
}

/* Asks node_id (NULL: every gateway) to resync now, or once the rate limit allows. */
static void request_resync(rt_members *mb, const char *node_id, rt_resync_reason why)
{
    if (rt_resync_want(mb->rs, node_id, why, wsg_mono_us()))
        publish_resync(node_id, why, mb);
    else
        wsg_debug("resync_request_owed", "gateway=%s reason=%s", node_id ? node_id : "*",
                  rt_resync_reason_name(why));
}

/* The request to every gateway owed since the registry was loaded goes out once NATS is up. A
 * NATS reconnect owes one too: events published while this replica was cut off never reached
 * it. */
void rt_members_resync_check(rt_members *mb)
{
    mb->nats_up = rt_bus_connected(mb->c->bus);
    if (mb->nats_up && !mb->nats_was_up) {
        if (mb->loaded && !mb->resync_all_due) {
            mb->resync_all_due = 1;
            mb->resync_all_reason = RT_RSQ_RECONNECT;
        }
        mb->nats_was_up = 1;
    } else if (!mb->nats_up && mb->nats_was_up) {
        mb->nats_was_up = 0;
    }
    if (mb->resync_all_due && mb->loaded && mb->nats_up) {
        mb->resync_all_due = 0;
        request_resync(mb, NULL, mb->resync_all_reason);
    }
}

/* Registry events the bus had to drop leave the registry wrong until every gateway has
 * announced its set again. */
void rt_members_shed_check(rt_members *mb)
{
    uint64_t n = rt_bus_take_shed(mb->c->bus);
    if (!n)
        return;
    wsg_warn("registry_events_shed", "events=%" PRIu64 " reason=\"inbound queue full\" "
             "action=resync_all", n);
    mb->resync_all_due = 1;
    mb->resync_all_reason = RT_RSQ_SHED;
}

/* ---- store ops ---- */

static void change_op_free(void *p)
{
    change_op *co = p;
    if (!co)
        return;
    rt_presence_list_free(&co->fallback);
    rt_chan_list_free(&co->fallback_chans);
    free(co->open_user);
    free(co);
}

static void on_changed(void *arg, rt_store_op *op)
{
    change_op *co = arg;
    rt_members *mb = co->mb;
    if (!op->ran) {
        /* Redis did not run it: this replica's own view decides (may duplicate) */
        publish_fallback(mb, &co->fallback, &co->fallback_chans);
        if (co->open_user)
            rt_limit_enforce(mb->c, co->open_user);
        return;
    }
    rt_presence_list got;
    rt_presence_list_init(&got);
    rt_chan_list got_chans;
    rt_chan_list_init(&got_chans);
    rt_script_status st;
    int gap;
    if (rt_script_parse_change(op->reply, co->node_id, &st, &gap, &got, &got_chans)) {
        wsg_warn("redis_bad_reply", "gateway=%s", co->node_id);
        count(mb, RT_M_REDIS_ERRORS);
        publish_fallback(mb, &co->fallback, &co->fallback_chans);
        if (co->open_user)
            rt_limit_enforce(mb->c, co->open_user);
    } else {
        publish_presence(mb, &got);
        send_chan_changes(mb, &got_chans);
        /* exactly the replica whose call applied the OPEN enforces the limit */
        if (co->open_user && st == RT_SCRIPT_APPLIED)
            rt_limit_enforce(mb->c, co->open_user);
    }
    rt_presence_list_free(&got);
    rt_chan_list_free(&got_chans);
}

/* A registry change op for node_id, completing with on_changed; NULL on ENOMEM. */
static rt_store_op *change_op_new(rt_members *mb, size_t script, const char *node_id)
{
    change_op *co = calloc(1, sizeof(*co));
    if (!co)
        return NULL;
    co->mb = mb;
    rt_presence_list_init(&co->fallback);
    rt_chan_list_init(&co->fallback_chans);
    snprintf(co->node_id, sizeof(co->node_id), "%s", node_id);
    return rt_store_op_script(script, on_changed, co, change_op_free);
}

/* Hands a registry change whose args build returned rc to the store, with the in-memory
 * transitions (taken from *fallback, and a copy of the registry's channel changes) to publish
 * if Redis cannot say; if the op could not be built (op NULL or rc != 0), publishes them at
 * once. */
static void submit_change(rt_members *mb, rt_store_op *op, int rc, rt_presence_list *fallback,
                          const char *open_user)
{
    const rt_chan_list *cl = rt_registry_chan_changes(mb->c->reg);
    if (!op || rc) {
        rt_store_op_free(op);
        count(mb, RT_M_INTERNAL_ERRORS);
        publish_fallback(mb, fallback, cl);
        if (open_user)
            rt_limit_enforce(mb->c, open_user);
        return;
    }
    change_op *co = op->ctx;
    if (open_user && mb->c->cfg->user_conn_limit > 0 && !(co->open_user = strdup(open_user))) {
        count(mb, RT_M_INTERNAL_ERRORS);
        rt_limit_enforce(mb->c, open_user); /* at once, from this replica's own view */
    }
    rt_presence_list tmp = co->fallback;
    co->fallback = *fallback;
    *fallback = tmp;
    for (size_t i = 0; i < cl->n; i++)
        if (rt_chan_list_add(&co->fallback_chans, cl->v[i].channel, strlen(cl->v[i].channel),
                             cl->v[i].user_id, strlen(cl->v[i].user_id), cl->v[i].join))
            count(mb, RT_M_INTERNAL_ERRORS);
    rt_ctx_submit(mb->c, op);
}

static void on_loaded(void *arg, rt_store_op *op)
{
    rt_members *mb = arg;
    rt_registry *reg = mb->c->reg;
    mb->load_inflight = 0;
    if (!op->ran)
        return; /* the next tick asks again */
    size_t bad = 0;
    rt_registry_clear(reg);
    if (rt_script_load_snapshot(op->reply, reg, wsg_mono_us(), &bad)) {
        wsg_error("registry_load_failed", "reason=\"malformed snapshot or out of memory\"");
        count(mb, RT_M_REDIS_ERRORS);
        rt_registry_clear(reg);
        return;
    }
    if (bad) {
        wsg_warn("registry_load_skipped", "entries=%zu", bad);
        wsg_metrics_add(mb->c->m, RT_M_REDIS_ERRORS, (int64_t)bad);
    }
    mb->loaded = 1;
    /* gateways may have changed while no router listened (or this one was loading) */
    mb->resync_all_due = 1;
    mb->resync_all_reason = RT_RSQ_START;
    wsg_info("registry_loaded", "nodes=%zu connections=%zu users=%zu",
             rt_registry_node_count(reg), rt_registry_conn_count(reg),
             rt_registry_user_count(reg));
}

void rt_members_load(rt_members *mb)
{
    rt_store_op *op = rt_store_op_script(RT_SCRIPT_SNAPSHOT, on_loaded, mb, NULL);
    if (!op || rt_script_snapshot_args(&op->args, mb->c->cfg->prefix)) {
        rt_store_op_free(op);
        count(mb, RT_M_INTERNAL_ERRORS);
        return; /* the next tick tries again */
    }
    op->wait = 1;
    mb->load_inflight = 1;
    rt_ctx_submit(mb->c, op);
}

void rt_members_rewrite(rt_members *mb, uint64_t generation)
{
    rt_store_op *op = rt_store_op_new(RT_OP_REWRITE);
    if (!op || rt_script_rewrite_cmds(op, mb->c->cfg->prefix, mb->c->reg)) {
        wsg_error("redis_rewrite_build_failed", "reason=\"out of memory\"");
        count(mb, RT_M_INTERNAL_ERRORS);
        rt_store_op_free(op);
        return;
    }
    op->generation = generation;
    wsg_info("redis_rewrite", "generation=%" PRIu64 " commands=%zu", generation, op->ncmds);
    rt_ctx_submit(mb->c, op);
}

/* ---- NATS messages ---- */

/* Hands an applied event to Redis (a whole RESYNC set in one call). */
static void store_conn_event(rt_members *mb, const Wsgate__ConnEvent *ev,
                             const rt_ev_result *res, rt_presence_list *pl)
{
    const rt_ctx *c = mb->c;
    rt_store_op *op = change_op_new(mb, RT_SCRIPT_CONN, ev->node_id);
    int rc = !op ? -1
             : res->set
                 ? rt_script_resync_args(&op->args, c->cfg->prefix, c->hist.ttl_ms, ev->node_id,
                                         ev->node_epoch, res->set)
                 : rt_script_conn_args(&op->args, c->cfg->prefix, c->hist.ttl_ms, ev);
    submit_change(mb, op, rc, pl,
                  ev->kind == WSGATE__CONN_EVENT__KIND__OPEN ? ev->conns[0]->user_id : NULL);
}

static void seen_submit(rt_members *mb, size_t shard)
{
    rt_store_op *op = mb->seen[shard];
    mb->seen[shard] = NULL;
    if (op)
        rt_ctx_submit_hist(mb->c, shard, op);
}

void rt_members_seen_flush(rt_members *mb)
{
    for (size_t i = 0; mb->seen && i < mb->c->nshards; i++)
        seen_submit(mb, i);
}

/* With shards: the users of an event get their seen markers on their own shards too, where
 * the append script looks for them (history_seen.lua). Best effort: a marker lost with a
 * shard's Redis only makes a send_message to that user, while offline, be refused as to an
 * unknown user until the user connects again. */
static void mark_seen(rt_members *mb, const Wsgate__ConnEvent *ev)
{
    rt_ctx *c = mb->c;
    if (!mb->seen)
        return;
    for (size_t i = 0; i < ev->n_conns; i++) {
        const char *user = ev->conns[i]->user_id;
        if (!user || !*user)
            continue;
        size_t shard = rt_ctx_shard_of(c, WSGATE__STREAM_KIND__STREAM_USER, user);
        rt_store_op *op = mb->seen[shard];
        if (!op) {
            op = rt_store_op_script(RT_SCRIPT__COUNT + RT_HSCRIPT_SEEN, NULL, NULL, NULL);
            if (!op || rt_hist_seen_args(&op->args, c->cfg->prefix, c->hist.ttl_ms)) {
                rt_store_op_free(op);
                count(mb, RT_M_INTERNAL_ERRORS);
                return;
            }
            mb->seen[shard] = op;
        }
        if (rt_cmd_adds(&op->args, user))
            count(mb, RT_M_INTERNAL_ERRORS);
        if (op->args.argc >= 2 + SEEN_BATCH)
            seen_submit(mb, shard);
    }
}

void rt_members_conn_event(rt_members *mb, const natsMsg *msg)
{
    Wsgate__ConnEvent *ev = wsgate__conn_event__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    if (!ev) {
        count(mb, rt_metric_rejected(RT_REJ_DECODE));
        return;
    }
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    rt_ev_result res;
    if (rt_registry_conn_event(mb->c->reg, ev, wsg_mono_us(), &res, &pl))
        count(mb, RT_M_INTERNAL_ERRORS);
    int resync = ev->kind == WSGATE__CONN_EVENT__KIND__RESYNC;
    switch (res.status) {
    case RT_EV_INVALID:
        count(mb, rt_metric_rejected(RT_REJ_INVALID_EVENT));
        wsg_debug("conn_event_invalid", "kind=%d stream=%" PRIu32 " conns=%zu", (int)ev->kind,
                  ev->stream, ev->n_conns);
        goto out;
    case RT_EV_STALE:
        count(mb, RT_M_STALE_EVENTS);
        goto out;
    case RT_EV_DUPLICATE:
        count(mb, RT_M_DUPLICATE_EVENTS);
        goto out;
    case RT_EV_PART:
        count(mb, RT_M_RESYNC_PARTS);
        break;
    case RT_EV_DISCARDED:
        break;
    case RT_EV_APPLIED:
        count(mb, RT_M_CONN_EVENTS);
        break;
    }
    if (res.gap) {
        count(mb, RT_M_SEQ_GAPS);
        wsg_warn("conn_event_gap", "gateway=%s epoch=%" PRIu64 " stream=%" PRIu32 " seq=%" PRIu64
                 " kind=%d", ev->node_id, ev->node_epoch, ev->stream, ev->seq, (int)ev->kind);
    }
    if (res.new_life)
        wsg_info("node_new_life", "gateway=%s epoch=%" PRIu64, ev->node_id, ev->node_epoch);
    if (res.abandoned != RT_ABANDON_NONE) {
        count(mb, RT_M_RESYNC_ABANDONED);
        wsg_warn("resync_abandoned", "gateway=%s epoch=%" PRIu64 " stream=%" PRIu32 " seq=%" PRIu64
                 " reason=%s", ev->node_id, ev->node_epoch, ev->stream, ev->seq,
                 res.abandoned == RT_ABANDON_GAP ? "out_of_sequence" : "too_big");
    }
    if (res.new_node && rt_resync_node_seen(mb->rs, ev->node_id, ev->node_epoch))
        request_resync(mb, ev->node_id, RT_RSQ_NODE_BACK);
    else if (res.set_lost)
        request_resync(mb, ev->node_id, RT_RSQ_SET_LOST);
    else if (res.gap && !resync)
        /* a RESYNC starting after a gap repairs it; a lost OPEN / CLOSE needs one */
        request_resync(mb, ev->node_id, RT_RSQ_SEQ_GAP);
    if (res.status == RT_EV_APPLIED)
        store_conn_event(mb, ev, &res, &pl);
    if (res.status == RT_EV_APPLIED || res.status == RT_EV_PART)
        mark_seen(mb, ev);
    if (res.status == RT_EV_APPLIED && ev->kind == WSGATE__CONN_EVENT__KIND__CLOSE)
        for (size_t i = 0; i < ev->n_conns; i++)
            rt_quota_forget(mb->c->quota, ev->node_id, ev->conns[i]->conn_id);
out:
    rt_presence_list_free(&pl);
    wsgate__conn_event__free_unpacked(ev, NULL);
}

/* A node gone (its last heartbeat, or expired): Redis forgets it through the purge script,
 * which tells exactly one replica about the users who went offline; pl are the in-memory
 * transitions, published if Redis cannot say (taken from pl). */
static void purge_node(rt_members *mb, const char *node_id, uint64_t epoch, rt_presence_list *pl)
{
    const rt_ctx *c = mb->c;
    rt_quota_forget_node(c->quota, node_id);
    /* if it was only slow, its next word makes this replica ask it for its set again */
    if (rt_resync_node_gone(mb->rs, node_id, epoch, wsg_mono_us()))
        count(mb, RT_M_INTERNAL_ERRORS);
    rt_store_op *op = change_op_new(mb, RT_SCRIPT_PURGE, node_id);
    int rc = !op ? -1
                 : rt_script_purge_args(&op->args, c->cfg->prefix, c->hist.ttl_ms, node_id, epoch);
    submit_change(mb, op, rc, pl, NULL);
}

void rt_members_heartbeat(rt_members *mb, const natsMsg *msg)
{
    const rt_ctx *c = mb->c;
    Wsgate__NodeHeartbeat *hb = wsgate__node_heartbeat__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    if (!hb) {
        count(mb, rt_metric_rejected(RT_REJ_DECODE));
        return;
    }
    count(mb, RT_M_HEARTBEATS);
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    rt_ev_result res;
    if (rt_registry_heartbeat(c->reg, hb, wsg_mono_us(), &res, &pl))
        count(mb, RT_M_INTERNAL_ERRORS);
    if (res.status == RT_EV_INVALID) {
        count(mb, rt_metric_rejected(RT_REJ_INVALID_EVENT));
        goto out;
    }
    if (res.status == RT_EV_STALE) {
        count(mb, RT_M_STALE_EVENTS);
        goto out;
    }
    if (res.departed) {
        /* its last heartbeat: it was removed from memory */
        count(mb, RT_M_NODES_LEFT);
        wsg_info("node_left", "gateway=%s epoch=%" PRIu64 " users_offline=%zu", hb->node_id,
                 hb->node_epoch, pl.n);
        purge_node(mb, hb->node_id, hb->node_epoch, &pl);
        goto out;
    }
    int asked = 0;
    if (res.new_node && rt_resync_node_seen(mb->rs, hb->node_id, hb->node_epoch)) {
        request_resync(mb, hb->node_id, RT_RSQ_NODE_BACK);
        asked = 1;
    }
    if (res.new_node || res.new_life) {
        /* only a new node or life changes the durable copy; a steady heartbeat does not */
        wsg_info(res.new_life ? "node_new_life" : "node_seen", "gateway=%s epoch=%" PRIu64,
                 hb->node_id, hb->node_epoch);
        rt_store_op *op = change_op_new(mb, RT_SCRIPT_NODE, hb->node_id);
        int rc = !op ? -1
                     : rt_script_node_args(&op->args, c->cfg->prefix, c->hist.ttl_ms,
                                           hb->node_id, hb->node_epoch);
        submit_change(mb, op, rc, &pl, NULL);
    }
    size_t known;
    int resyncing;
    /* while a multi-part set is in flight the counts cannot agree */
    if (!asked && rt_registry_node_stats(c->reg, hb->node_id, &known, &resyncing) == 0 &&
        !resyncing &&
        rt_resync_heartbeat(mb->rs, hb->node_id, hb->node_epoch, hb->connections, known,
                            wsg_mono_us())) {
        wsg_warn("node_count_mismatch", "gateway=%s announced=%" PRIu32 " known=%zu", hb->node_id,
                 hb->connections, known);
        request_resync(mb, hb->node_id, RT_RSQ_COUNT_MISMATCH);
    }
out:
    rt_presence_list_free(&pl);
    wsgate__node_heartbeat__free_unpacked(hb, NULL);
}

/* ---- the tick ---- */

static void on_expired(const char *node_id, uint64_t epoch, const rt_presence_list *off, void *arg)
{
    rt_members *mb = arg;
    count(mb, RT_M_NODES_EXPIRED);
    wsg_warn("node_expired", "gateway=%s epoch=%" PRIu64 " users_offline=%zu", node_id, epoch,
             off->n);
    rt_presence_list pl;
    rt_presence_list_init(&pl);
    for (size_t i = 0; i < off->n; i++)
        if (rt_presence_list_add(&pl, off->v[i].user_id, strlen(off->v[i].user_id),
                                 off->v[i].online, off->v[i].node_id, off->v[i].conn_id))
            count(mb, RT_M_INTERNAL_ERRORS);
    purge_node(mb, node_id, epoch, &pl);
    rt_presence_list_free(&pl);
}

void rt_members_tick(rt_members *mb)
{
    if (!mb->loaded && !mb->load_inflight)
        rt_members_load(mb);
    if (mb->loaded)
        rt_registry_expire(mb->c->reg, wsg_mono_us(), mb->c->cfg->node_timeout_ms * 1000,
                           on_expired, mb);
}

void rt_members_resync_tick(rt_members *mb)
{
    rt_members_resync_check(mb);
    if (mb->nats_up)
        rt_resync_due(mb->rs, wsg_mono_us(), publish_resync, mb);
    rt_resync_prune(mb->rs, wsg_mono_us(), RESYNC_IDLE_US);
}

/* ---- lifecycle ---- */

rt_members *rt_members_new(rt_ctx *c)
{
    rt_members *mb = calloc(1, sizeof(*mb));
    if (!mb)
        return NULL;
    mb->c = c;
    mb->rs = rt_resync_new(RT_RESYNC_MIN_INTERVAL_US);
    if (c->nshards && !(mb->seen = calloc(c->nshards, sizeof(*mb->seen)))) {
        rt_members_free(mb);
        return NULL;
    }
    if (!mb->rs ||
        wsg_subject_fmt(mb->presence_subject, sizeof(mb->presence_subject), c->cfg->prefix,
                        "events.presence") ||
        wsg_subject_fmt(mb->resync_subject, sizeof(mb->resync_subject), c->cfg->prefix,
                        "resync")) {
        rt_members_free(mb);
        return NULL;
    }
    return mb;
}

void rt_members_free(rt_members *mb)
{
    if (!mb)
        return;
    rt_resync_free(mb->rs);
    for (size_t i = 0; mb->seen && i < mb->c->nshards; i++)
        rt_store_op_free(mb->seen[i]);
    free(mb->seen);
    free(mb);
}

int rt_members_loaded(const rt_members *mb)
{
    return mb->loaded;
}
