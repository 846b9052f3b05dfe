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
#include "rt_history.h"
#include "rt_http.h"
#include "rt_metrics.h"
#include "rt_presence.h"
#include "rt_quota.h"
#include "rt_registry.h"
#include "rt_resync.h"
#include "rt_ring.h"
#include "rt_route.h"
#include "rt_script.h"
#include "rt_store.h"
#include "rt_uncertain.h"
#include "wsg_log.h"
#include "wsg_pb.h"
#include "wsg_subject.h"
#include "wsg_time.h"

#define TICK_US (1000 * 1000)
/* Flush batches early inside a big drain so their memory stays bounded. */
#define EARLY_FLUSH_BYTES (4u * 1024 * 1024)
#define NATS_FLUSH_MS 2000
/* NodeDelivery bytes around one item's payload (ids, epochs, stream, user id, seq, one conn
 * id), also enough for the spliced seq and a HistoryReply's envelope of the same payload */
#define NODE_DELIVERY_OVERHEAD 512
/* streams per append script call: bounds how long one call holds Redis */
#define APPEND_CHUNK 256
/* the broadcast ring's payload bytes, at most (and what one load may read) */
#define RING_MAX_BYTES (64u * 1024 * 1024)
/* packed HistoryReply bytes per item besides its payload */
#define HIST_ITEM_OVERHEAD 32
/* rt_resync entries of nodes not heard of for this long are forgotten */
#define RESYNC_IDLE_US (3600 * INT64_C(1000000))
/* undone appends remembered for voiding, at most (beyond: counted, logged once) */
#define UNCERTAIN_MAX 100000
/* streams per void script call, and void calls in flight: each call stays short for Redis,
 * and the first calls after a reconnect run before newer appends */
#define VOID_BATCH 64
#define VOID_INFLIGHT 4
/* Routed messages waiting for their history appends, at most, and the bytes they may hold
 * (frames plus ~64 bytes per stream): with Redis slow (but up) every message waits there and in
 * the store's queue, so beyond these new work is shed like work over the bus queue's bound
 * (not acknowledged: no receipt, no DeliveryReply). 64k jobs is over a second of the
 * throughput measured in BENCHMARKS.md; 256 MiB is four times the bus queue's work bound. */
#define JOBS_MAX 65536
#define JOBS_MAX_BYTES (256u * 1024 * 1024)
/* history reads waiting for Redis, at most; beyond, a request is answered UNAVAILABLE (the
 * gateway retries, or closes an unwelcomed connection with 1012 to reconnect) */
#define READS_MAX 4096
/* sending connections with an offline budget in use, at most (~160 bytes each) */
#define QUOTA_MAX_SENDERS 100000
/* "<node id>:<start time us>:<counter>" */
#define JOB_ID_MAX (WSG_NODE_ID_MAX + 48)

typedef enum {
    OP_LOAD, OP_CONN, OP_NODE, OP_PURGE, OP_REWRITE, OP_APPEND, OP_READ, OP_RING_LOAD, OP_VOID
} op_what;

/* A routed message waiting for its history appends. Jobs finish in arrival order, so this
 * replica publishes each stream's seqs in order. */
typedef struct pjob {
    struct pjob *next;
    rt_job *job;
    rt_msg_kind kind;
    size_t pending;     /* append ops not yet back */
    size_t bytes;       /* counted in jobs_bytes */
    char *reply;        /* a Delivery made as a request: where the DeliveryReply goes */
    char *delivery_id;
} pjob;

/* What the main thread remembers about an op while the store runs it. */
typedef struct op_ctx {
    op_what what;
    char node_id[WSG_NODE_ID_MAX + 1];
    /* the in-memory registry's transitions, published if Redis cannot say */
    rt_presence_list fallback;
    /* OP_APPEND: parts [first, first + n) of job, appended as job_id */
    pjob *job;
    size_t first, n;
    char job_id[JOB_ID_MAX];
    /* OP_VOID: the uncertain appends it looks for */
    rt_unc_entry *unc;
    size_t nunc;
    /* OP_READ */
    char *reply;
    rt_hist_req req;
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
    int64_t hist_err_logged_us;
    uint64_t hist_err_suppressed;
    rt_hist_limits hist;
    rt_ring *ring;
    int ring_loaded, ring_inflight;
    const char **scripts; /* registry scripts, then history scripts */
    pjob *jobs, *jobs_tail;
    /* appends handed back undone, to be voided in history if Redis stored them after all */
    rt_uncertain *unc;
    size_t voids_inflight;
    int unc_full_logged;
    int64_t life_us;      /* job ids are unique per process life: its start time ... */
    uint64_t job_counter; /* ... and a counter */
    uint64_t appends_seen; /* highest cluster-wide append count Redis answered (rt_history) */
    uint64_t hist_epoch;   /* the history epoch of the last append, 0 before the first */
    size_t njobs, jobs_bytes; /* pjobs queued, and what they hold (bounded: JOBS_MAX*) */
    size_t reads_inflight;    /* OP_READs submitted (bounded: READS_MAX) */
    int64_t shed_logged_us;
    uint64_t shed_suppressed;
    rt_quota *quota;       /* offline bytes per sending connection */
    int64_t quota_full_logged_us;
    uint64_t quota_full_suppressed;
};

static void op_ctx_free(void *p)
{
    op_ctx *c = p;
    if (!c)
        return;
    rt_presence_list_free(&c->fallback);
    free(c->reply);
    for (size_t i = 0; i < c->nunc; i++)
        rt_unc_entry_clear(&c->unc[i]);
    free(c->unc);
    free(c);
}

/* A script op with its context; NULL on ENOMEM. */
static rt_store_op *op_new(op_what what, size_t script, const char *node_id)
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
        wsg_debug("presence", "user=\"%s\" status=%s gateway=%s conn=%" PRIu64, p->user_id,
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
        wsg_warn("resync_request_failed", "gateway=%s reason=%s", node_id ? node_id : "*",
                 rt_resync_reason_name(why));
        return;
    }
    count(a, rt_metric_resync_request(why));
    wsg_info("resync_requested", "gateway=%s reason=%s", node_id ? node_id : "*",
             rt_resync_reason_name(why));
}

/* Asks node_id (NULL: every gateway) to resync now, or once the rate limit allows. */
static void request_resync(rt_app *a, const char *node_id, rt_resync_reason why)
{
    if (rt_resync_want(a->rs, node_id, why, wsg_mono_us()))
        publish_resync(node_id, why, a);
    else
        wsg_debug("resync_request_owed", "gateway=%s reason=%s", node_id ? node_id : "*",
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
    wsg_metrics_set(a->m, RT_M_BROADCAST_RING_ITEMS, (int64_t)rt_ring_len(a->ring));
    wsg_metrics_set(a->m, RT_M_OFFLINE_QUOTA_SENDERS, (int64_t)rt_quota_len(a->quota));
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
        wsg_warn("redis_bad_reply", "gateway=%s", c->node_id);
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

static void on_appended(rt_app *a, rt_store_op *op, op_ctx *c);
static void on_read(rt_app *a, rt_store_op *op, op_ctx *c);
static void on_ring_loaded(rt_app *a, rt_store_op *op);
static void pump_jobs(rt_app *a);
static void pump_voids(rt_app *a);
static void on_voided(rt_app *a, rt_store_op *op, op_ctx *c);

static void drain_store(rt_app *a)
{
    rt_store_op *op = rt_store_take(a->store);
    int any = op != NULL;
    while (op) {
        rt_store_op *next = op->q.next ? wsg_container_of(op->q.next, rt_store_op, q) : NULL;
        op_ctx *c = op->ctx;
        if (op->kind == RT_OP_NEED_REWRITE) {
            if (a->loaded && !atomic_load(&a->stop)) {
                request_rewrite(a, op->generation);
                /* right behind the rewrite, so the oldest uncertain appends (those cut off
                 * in flight) are voided before any newer append runs */
                pump_voids(a);
            }
            /* Redis was away and may have lost everything: the ring may speak for a history
             * that no longer exists */
            rt_ring_clear(a->ring);
            a->ring_loaded = 0;
        } else if (c && c->what == OP_APPEND) {
            on_appended(a, op, c);
            pump_jobs(a); /* results come in order: finished jobs publish at once */
        } else if (c && c->what == OP_READ) {
            on_read(a, op, c);
        } else if (c && c->what == OP_VOID) {
            on_voided(a, op, c);
        } else if (c && c->what == OP_RING_LOAD) {
            on_ring_loaded(a, op);
        } else if (c && c->what == OP_LOAD) {
            on_loaded(a, op);
        } else if (c && (c->what == OP_CONN || c->what == OP_NODE || c->what == OP_PURGE)) {
            on_change(a, op, c);
        }
        rt_store_op_free(op);
        op = next;
    }
    if (any)
        flush_batches(a);
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
                 ? rt_script_resync_args(&op->args, a->cfg->prefix, a->hist.ttl_ms, ev->node_id,
                                         ev->node_epoch,
                                         res->set)
                 : rt_script_conn_args(&op->args, a->cfg->prefix, a->hist.ttl_ms, ev);
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
        wsg_warn("conn_event_gap", "gateway=%s epoch=%" PRIu64 " stream=%" PRIu32 " seq=%" PRIu64
                 " kind=%d", ev->node_id, ev->node_epoch, ev->stream, ev->seq, (int)ev->kind);
    }
    if (res.new_life)
        wsg_info("node_new_life", "gateway=%s epoch=%" PRIu64, ev->node_id, ev->node_epoch);
    if (res.abandoned != RT_ABANDON_NONE) {
        count(a, RT_M_RESYNC_ABANDONED);
        wsg_warn("resync_abandoned", "gateway=%s epoch=%" PRIu64 " stream=%" PRIu32 " seq=%" PRIu64
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
    if (res.status == RT_EV_APPLIED && ev->kind == WSGATE__CONN_EVENT__KIND__CLOSE)
        for (size_t i = 0; i < ev->n_conns; i++)
            rt_quota_forget(a->quota, ev->node_id, ev->conns[i]->conn_id);
out:
    rt_presence_list_free(&pl);
    wsgate__conn_event__free_unpacked(ev, NULL);
}

/* A node's last heartbeat: it was removed from memory; Redis forgets it through the purge
 * script, which tells exactly one replica about the users who went offline. */
static void on_departed(rt_app *a, const Wsgate__NodeHeartbeat *hb, rt_presence_list *pl)
{
    count(a, RT_M_NODES_LEFT);
    rt_quota_forget_node(a->quota, hb->node_id);
    wsg_info("node_left", "gateway=%s epoch=%" PRIu64 " users_offline=%zu", hb->node_id,
             hb->node_epoch, pl->n);
    if (rt_resync_node_gone(a->rs, hb->node_id, hb->node_epoch, wsg_mono_us()))
        count(a, RT_M_INTERNAL_ERRORS);
    rt_store_op *op = op_new(OP_PURGE, RT_SCRIPT_PURGE, hb->node_id);
    if (!op || rt_script_purge_args(&op->args, a->cfg->prefix, a->hist.ttl_ms, hb->node_id,
                                     hb->node_epoch)) {
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
        wsg_info(res.new_life ? "node_new_life" : "node_seen", "gateway=%s epoch=%" PRIu64,
                 hb->node_id, hb->node_epoch);
        rt_store_op *op = op_new(OP_NODE, RT_SCRIPT_NODE, hb->node_id);
        if (!op || rt_script_node_args(&op->args, a->cfg->prefix, a->hist.ttl_ms, hb->node_id,
                                            hb->node_epoch)) {
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
        wsg_warn("node_count_mismatch", "gateway=%s announced=%" PRIu32 " known=%zu", hb->node_id,
                 hb->connections, known);
        request_resync(a, hb->node_id, RT_RSQ_COUNT_MISMATCH);
    }
out:
    rt_presence_list_free(&pl);
    wsgate__node_heartbeat__free_unpacked(hb, NULL);
}

/* ---- routed messages: parse, append to the history, fan out in order ---- */

static void pjob_free(pjob *j)
{
    if (!j)
        return;
    rt_job_free(j->job);
    free(j->reply);
    free(j->delivery_id);
    free(j);
}

static void hist_write_failed(rt_app *a, size_t n, const char *why)
{
    wsg_metrics_add(a->m, RT_M_HISTORY_WRITE_ERRORS, (int64_t)n);
    if (wsg_mono_us() - a->hist_err_logged_us >= 1000000) {
        wsg_warn("history_append_failed", "streams=%zu reason=\"%s\" suppressed=%" PRIu64, n,
                 why, a->hist_err_suppressed);
        a->hist_err_logged_us = wsg_mono_us();
        a->hist_err_suppressed = 0;
    } else {
        a->hist_err_suppressed += n;
    }
}

static void noop_conn(const char *node_id, uint64_t node_epoch, uint64_t conn_id, void *arg)
{
    (void)node_id;
    (void)node_epoch;
    (void)conn_id;
    (void)arg;
}

/* Hands parts [first, first + n) of the job to the store in one script call. */
static int submit_append(rt_app *a, pjob *pj, size_t first, size_t n)
{
    const rt_job *j = pj->job;
    rt_store_op *op = op_new(OP_APPEND, RT_SCRIPT__COUNT + RT_HSCRIPT_APPEND, NULL);
    if (!op)
        goto fail;
    op_ctx *c = op->ctx;
    snprintf(c->job_id, sizeof(c->job_id), "%s:%" PRId64 ":%" PRIu64, a->cfg->node_id,
             a->life_us, ++a->job_counter);
    if (rt_hist_append_args(&op->args, a->cfg->prefix, &a->hist, &j->frame, j->created_at_us,
                            c->job_id, a->appends_seen))
        goto fail;
    for (size_t i = first; i < first + n; i++) {
        const rt_part *p = &j->parts[i];
        /* a user with a live connection now gets it now: the delivered mark moves */
        int live = p->stream == WSGATE__STREAM_KIND__STREAM_USER &&
                   rt_registry_user_conns(a->reg, p->user_id, noop_conn, NULL) > 0;
        rt_append_mode mode = live ? RT_APPEND_LIVE
                              : p->seen_only ? RT_APPEND_SEEN_ONLY
                                             : RT_APPEND_OFFLINE;
        if (rt_hist_append_add(&op->args, p->stream, p->user_id, mode))
            goto fail;
    }
    c->job = pj;
    c->first = first;
    c->n = n;
    pj->pending++;
    rt_store_submit(a->store, op);
    return 0;
fail:
    rt_store_op_free(op);
    count(a, RT_M_INTERNAL_ERRORS);
    hist_write_failed(a, n, "out of memory");
    return -1;
}

static void reply_delivery(rt_app *a, const char *subject, const char *id,
                           Wsgate__DeliveryReply__Status st, const char *reason,
                           const rt_fanout *fo, const rt_job *j)
{
    Wsgate__DeliveryReply rp = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored *stored = NULL, **ptrs = NULL;
    rp.status = st;
    rp.reason = (char *)(reason ? reason : "");
    rp.id = (char *)(id ? id : "");
    if (fo) {
        rp.connections = fo->connections > UINT32_MAX ? UINT32_MAX : (uint32_t)fo->connections;
        rp.nodes = fo->nodes > UINT32_MAX ? UINT32_MAX : (uint32_t)fo->nodes;
    }
    if (j && j->nparts) {
        stored = calloc(j->nparts, sizeof(*stored));
        ptrs = calloc(j->nparts, sizeof(*ptrs));
        if (!stored || !ptrs)
            goto out;
        for (size_t i = 0; i < j->nparts; i++) {
            const rt_part *p = &j->parts[i];
            if (!p->seq) {
                rp.history_unavailable = 1;
                continue;
            }
            Wsgate__DeliveryReply__Stored *s = &stored[rp.n_stored];
            wsgate__delivery_reply__stored__init(s);
            s->stream = p->stream;
            s->user_id = p->user_id ? p->user_id : (char *)"";
            s->seq = p->seq;
            ptrs[rp.n_stored++] = s;
        }
        rp.stored = ptrs;
    }
    uint8_t *buf;
    size_t len;
    if (wsg_pb_pack(&rp.base, &buf, &len))
        goto out;
    if (rt_bus_publish(a->bus, subject, buf, len) == 0)
        count(a, RT_M_DELIVERY_REPLIES);
    free(buf);
    free(stored);
    free(ptrs);
    return;
out:
    free(stored);
    free(ptrs);
    count(a, RT_M_INTERNAL_ERRORS);
}

/* The broadcast ring learns what this replica kept. */
static void ring_note(rt_app *a, const rt_job *j)
{
    for (size_t i = 0; i < j->nparts; i++) {
        const rt_part *p = &j->parts[i];
        if (p->stream != WSGATE__STREAM_KIND__STREAM_BROADCAST || !p->seq)
            continue;
        size_t len;
        char *text = rt_frame_with_seq(&j->frame, p->seq, &len);
        if (!text || rt_ring_push(a->ring, p->epoch, p->seq, text, len, j->created_at_us,
                                  wsg_now_us()))
            count(a, RT_M_INTERNAL_ERRORS);
        free(text);
    }
}

static void job_done(rt_app *a, pjob *pj)
{
    const rt_job *j = pj->job;
    rt_fanout fo;
    rt_route_fanout(a->reg, a->batch, j, &fo);
    ring_note(a, j);
    size_t routed_id = pj->kind == RT_MSG_SEND_MESSAGE ? RT_M_ROUTED_SEND_MESSAGE
                       : pj->kind == RT_MSG_BROADCAST  ? RT_M_ROUTED_BROADCAST
                                                       : RT_M_ROUTED_DELIVER;
    if (fo.status == RT_ROUTED)
        count(a, routed_id);
    else if (fo.status == RT_UNDELIVERABLE && !(j->nparts == 1 && j->parts[0].refused))
        count(a, j->kind == RT_JOB_SEND_MESSAGE ? RT_M_USER_OFFLINE : RT_M_UNDELIVERABLE);
    else if (fo.status != RT_REJECTED) /* a refused job was counted when it was parsed */
        count(a, RT_M_INTERNAL_ERRORS);
    if (pj->reply) {
        if (j->to_conn && fo.connections == 0)
            reply_delivery(a, pj->reply, pj->delivery_id, WSGATE__DELIVERY_REPLY__STATUS__REJECTED,
                           "unknown_connection", &fo, NULL);
        else
            reply_delivery(a, pj->reply, pj->delivery_id, WSGATE__DELIVERY_REPLY__STATUS__ACCEPTED,
                           NULL, &fo, j);
    }
}

/* Finishes the jobs at the head of the queue whose appends have all come back. */
static void pump_jobs(rt_app *a)
{
    while (a->jobs && a->jobs->pending == 0) {
        pjob *pj = a->jobs;
        a->jobs = pj->next;
        if (!a->jobs)
            a->jobs_tail = NULL;
        a->njobs--;
        a->jobs_bytes -= pj->bytes;
        job_done(a, pj);
        pjob_free(pj);
        if (rt_batch_pending_bytes(a->batch) > EARLY_FLUSH_BYTES)
            flush_batches(a);
    }
}

/* ---- voiding appends whose outcome is unknown ---- */

static void unc_keep(rt_app *a, Wsgate__StreamKind stream, const char *user_id,
                     const char *job_id)
{
    rt_unc_status st = rt_unc_add(a->unc, stream, user_id, job_id);
    if (st == RT_UNC_KEPT)
        return;
    if (st == RT_UNC_NOMEM) {
        count(a, RT_M_INTERNAL_ERRORS);
        return;
    }
    count(a, RT_M_HISTORY_UNCERTAIN_DROPPED);
    if (!a->unc_full_logged)
        wsg_warn("history_uncertain_full", "max=%d reason=\"undone appends beyond this are "
                 "not voided: a stored copy may be delivered twice\"", UNCERTAIN_MAX);
    a->unc_full_logged = 1;
}

/* The job's parts in c went out live without a seq; Redis may have stored them all the same
 * (the reply was lost), so they are voided once Redis is back. */
static void remember_uncertain(rt_app *a, const rt_job *j, const op_ctx *c)
{
    for (size_t i = c->first; i < c->first + c->n; i++)
        unc_keep(a, j->parts[i].stream, j->parts[i].user_id, c->job_id);
    wsg_metrics_set(a->m, RT_M_HISTORY_UNCERTAIN, (int64_t)rt_unc_len(a->unc));
}

/* Hands up to VOID_INFLIGHT batches of uncertain appends to the void script. Those the store
 * hands back undone are kept for the next try (the tick, once Redis is connected). */
static void pump_voids(rt_app *a)
{
    if (atomic_load(&a->stop))
        return; /* kept until the end: a later life's job ids differ, its voids cannot help */
    while (a->voids_inflight < VOID_INFLIGHT && rt_unc_len(a->unc) > 0) {
        rt_store_op *op = op_new(OP_VOID, RT_SCRIPT__COUNT + RT_HSCRIPT_VOID, NULL);
        op_ctx *c = op ? op->ctx : NULL;
        if (!op || !(c->unc = calloc(VOID_BATCH, sizeof(*c->unc))) ||
            rt_hist_void_args(&op->args, a->cfg->prefix, &a->hist)) {
            rt_store_op_free(op);
            count(a, RT_M_INTERNAL_ERRORS);
            return;
        }
        c->nunc = rt_unc_take(a->unc, c->unc, VOID_BATCH);
        for (size_t i = 0; i < c->nunc; i++)
            if (rt_hist_void_add(&op->args, c->unc[i].stream, c->unc[i].user_id,
                                 c->unc[i].job_id)) {
                /* back to the list (copies: the op frees these) */
                for (size_t k = 0; k < c->nunc; k++)
                    unc_keep(a, c->unc[k].stream, c->unc[k].user_id, c->unc[k].job_id);
                rt_store_op_free(op);
                count(a, RT_M_INTERNAL_ERRORS);
                return;
            }
        a->voids_inflight++;
        rt_store_submit(a->store, op);
    }
    wsg_metrics_set(a->m, RT_M_HISTORY_UNCERTAIN, (int64_t)rt_unc_len(a->unc));
}

static void on_voided(rt_app *a, rt_store_op *op, op_ctx *c)
{
    a->voids_inflight--;
    if (!op->done) {
        for (size_t i = 0; i < c->nunc; i++)
            unc_keep(a, c->unc[i].stream, c->unc[i].user_id, c->unc[i].job_id);
        wsg_metrics_set(a->m, RT_M_HISTORY_UNCERTAIN, (int64_t)rt_unc_len(a->unc));
        return; /* the tick tries again once Redis is connected */
    }
    uint64_t seqs[VOID_BATCH];
    if (c->nunc > VOID_BATCH || rt_hist_parse_void(op->reply, c->nunc, seqs)) {
        /* the script ran: running it again would not answer better */
        wsg_warn("redis_bad_reply", "op=history_void entries=%zu", c->nunc);
        count(a, RT_M_REDIS_ERRORS);
    } else {
        size_t voided = 0;
        int broadcast = 0;
        for (size_t i = 0; i < c->nunc; i++) {
            if (!seqs[i])
                continue;
            voided++;
            if (c->unc[i].stream == WSGATE__STREAM_KIND__STREAM_BROADCAST)
                broadcast = 1;
            wsg_info("history_voided", "stream=%s user=\"%s\" seq=%" PRIu64 " job=%s",
                     c->unc[i].stream == WSGATE__STREAM_KIND__STREAM_BROADCAST ? "broadcast"
                                                                               : "user",
                     c->unc[i].user_id ? c->unc[i].user_id : "", seqs[i], c->unc[i].job_id);
        }
        wsg_metrics_add(a->m, RT_M_HISTORY_VOIDED, (int64_t)voided);
        if (broadcast) {
            /* the ring may hold the voided item with its payload: Redis answers until the
             * ring is loaded again */
            rt_ring_clear(a->ring);
            a->ring_loaded = 0;
        }
    }
    if (rt_unc_len(a->unc) == 0)
        a->unc_full_logged = 0;
    pump_voids(a);
}

/* Only a seen-only append may come back without a seq. */
static int zero_seqs_ok(const rt_job *j, const op_ctx *c, const uint64_t *seqs)
{
    for (size_t i = 0; i < c->n; i++)
        if (seqs[i] == 0 && !j->parts[c->first + i].seen_only)
            return 0;
    return 1;
}

static void on_appended(rt_app *a, rt_store_op *op, op_ctx *c)
{
    pjob *pj = c->job;
    rt_job *j = pj->job;
    uint64_t epoch, appends, seqs[APPEND_CHUNK];
    if (!op->done) {
        hist_write_failed(a, c->n, "redis unavailable");
        remember_uncertain(a, j, c);
    } else if (c->n > APPEND_CHUNK ||
               rt_hist_parse_append(op->reply, c->n, &epoch, &appends, seqs) ||
               !zero_seqs_ok(j, c, seqs)) {
        count(a, RT_M_REDIS_ERRORS);
        hist_write_failed(a, c->n, "malformed reply");
        remember_uncertain(a, j, c);
    } else {
        /* a new epoch: Redis lost its history (flushed, or appends lost and detected by the
         * append count going back); every client resyncs */
        if (a->hist_epoch && epoch != a->hist_epoch)
            wsg_warn("history_epoch_changed", "old=%" PRIu64 " new=%" PRIu64 " appends=%" PRIu64
                     " seen=%" PRIu64, a->hist_epoch, epoch, appends, a->appends_seen);
        a->hist_epoch = epoch;
        if (appends > a->appends_seen)
            a->appends_seen = appends;
        for (size_t i = 0; i < c->n; i++) {
            rt_part *p = &j->parts[c->first + i];
            if (seqs[i] == 0) { /* a seen-only append whose user Redis has no marker for */
                p->refused = RT_REFUSE_UNKNOWN_USER;
                count(a, RT_M_OFFLINE_REFUSED_UNKNOWN);
                wsg_debug("offline_refused", "reason=unknown_user target=\"%s\"", p->user_id);
                continue;
            }
            p->seq = seqs[i];
            p->epoch = epoch;
        }
        wsg_metrics_add(a->m, RT_M_HISTORY_APPENDS, (int64_t)c->n);
    }
    pj->pending--;
}

static const char *reject_name(rt_reject r)
{
    static const char *const names[RT_REJ__COUNT] = {
        "decode", "no_target", "empty_users", "bad_payload", "too_big", "invalid_frame",
        "invalid_event", "invalid_user"};
    return (unsigned)r < RT_REJ__COUNT ? names[r] : "unknown";
}

/* A rejected Delivery made as a request is told why (its id read again: rejections are rare). */
static void reply_rejected(rt_app *a, const natsMsg *msg, rt_reject why)
{
    Wsgate__Delivery *d = wsgate__delivery__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    const char *id = d && d->id && wsg_pb_str_ok(d->id, 1024) ? d->id : "";
    reply_delivery(a, natsMsg_GetReply(msg), id, WSGATE__DELIVERY_REPLY__STATUS__REJECTED,
                   reject_name(why), NULL, NULL);
    if (d)
        wsgate__delivery__free_unpacked(d, NULL);
}

static void log_rejected(rt_app *a, rt_msg_kind kind, const natsMsg *msg, rt_reject why,
                         size_t len)
{
    if (kind != RT_MSG_DELIVER) {
        /* the gateway validated these already: only a foreign publisher, or a client naming a
         * target that is not a user id (answered with an error), gets here */
        wsg_debug("frame_rejected", "subject=%s reason=%s", natsMsg_GetSubject(msg),
                  reject_name(why));
    } else if (wsg_mono_us() - a->reject_logged_us >= 1000000) {
        wsg_warn("delivery_rejected", "subject=%s reason=%s bytes=%zu suppressed=%" PRIu64,
                 natsMsg_GetSubject(msg), reject_name(why), len, a->reject_suppressed);
        a->reject_logged_us = wsg_mono_us();
        a->reject_suppressed = 0;
    } else {
        a->reject_suppressed++;
    }
}

/* A send_message to a user with no connection now would be kept in Redis: the sending
 * connection pays for it from its budget (rt_quota), and unless WSGATE_OFFLINE_UNKNOWN_USERS
 * is set it is kept only for a user seen within the history TTL, which the append script
 * checks in the same step. A target with a connection costs nothing here but the registry
 * lookup the append makes anyway. */
static void offline_gate(rt_app *a, rt_job *j)
{
    rt_part *p = &j->parts[0];
    if (j->nparts != 1 || p->stream != WSGATE__STREAM_KIND__STREAM_USER ||
        rt_registry_user_conns(a->reg, p->user_id, noop_conn, NULL) > 0)
        return;
    rt_quota_status qs =
        rt_quota_take(a->quota, j->sender_node, j->sender_conn, j->frame.len, wsg_mono_us());
    if (qs != RT_QUOTA_OK) {
        p->refused = RT_REFUSE_OFFLINE_QUOTA;
        count(a, RT_M_OFFLINE_REFUSED_QUOTA);
        wsg_debug("offline_refused", "reason=offline_quota gateway=%s conn=%" PRIu64
                  " bytes=%zu", j->sender_node, j->sender_conn, j->frame.len);
        if (qs == RT_QUOTA_FULL) {
            if (wsg_mono_us() - a->quota_full_logged_us >= 1000000) {
                wsg_warn("offline_quota_full", "senders=%zu max=%d suppressed=%" PRIu64
                         " reason=\"too many connections kept offline messages within a "
                         "minute: new senders are refused\"", rt_quota_len(a->quota),
                         QUOTA_MAX_SENDERS, a->quota_full_suppressed);
                a->quota_full_logged_us = wsg_mono_us();
                a->quota_full_suppressed = 0;
            } else {
                a->quota_full_suppressed++;
            }
        }
        return;
    }
    if (!a->cfg->offline_unknown_users)
        p->seen_only = 1;
}

/* Work dropped because a bounded queue of this loop was full: counted, logged at most once a
 * second. */
static void shed_work(rt_app *a, size_t metric, const char *queue)
{
    count(a, metric);
    if (wsg_mono_us() - a->shed_logged_us >= 1000000) {
        wsg_warn("work_shed", "queue=%s jobs=%zu job_bytes=%zu reads=%zu suppressed=%" PRIu64,
                 queue, a->njobs, a->jobs_bytes, a->reads_inflight, a->shed_suppressed);
        a->shed_logged_us = wsg_mono_us();
        a->shed_suppressed = 0;
    } else {
        a->shed_suppressed++;
    }
}

static void on_routed(rt_app *a, rt_msg_kind kind, const natsMsg *msg)
{
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (a->njobs >= JOBS_MAX || a->jobs_bytes + len > JOBS_MAX_BYTES) {
        /* never accepted: no receipt, no reply; the sender's retry will find room */
        shed_work(a, RT_M_SHED_JOBS, "jobs");
        return;
    }
    const char *reply = kind == RT_MSG_DELIVER ? natsMsg_GetReply(msg) : NULL;
    int64_t now = wsg_now_us();
    rt_route_result res;
    rt_job *job = NULL;
    if (kind == RT_MSG_SEND_MESSAGE) {
        rt_route_send_message(data, len, now, &job, &res);
    } else if (kind == RT_MSG_BROADCAST) {
        rt_route_broadcast(data, len, now, &job, &res);
    } else {
        /* a payload whose NodeDelivery could not be published is refused up front */
        int64_t max = a->cfg->max_delivery_bytes, wire = rt_bus_max_payload(a->bus);
        if (wire > NODE_DELIVERY_OVERHEAD && wire - NODE_DELIVERY_OVERHEAD < max)
            max = wire - NODE_DELIVERY_OVERHEAD;
        rt_route_deliver(data, len, (size_t)max, now, &job, &res);
    }
    if (res.status == RT_REJECTED) {
        count(a, rt_metric_rejected(res.reason));
        log_rejected(a, kind, msg, res.reason, len);
        if (reply && *reply)
            reply_rejected(a, msg, res.reason);
        if (!job)
            return;
        /* a refused send_message: its error to the sender waits its turn behind the jobs
         * already queued, like any answer */
    }
    pjob *pj = job ? calloc(1, sizeof(*pj)) : NULL;
    if (!pj) {
        rt_job_free(job);
        count(a, RT_M_INTERNAL_ERRORS);
        return;
    }
    pj->job = job;
    pj->kind = kind;
    if (kind == RT_MSG_SEND_MESSAGE)
        offline_gate(a, job);
    if (reply && *reply) {
        Wsgate__Delivery *d = wsgate__delivery__unpack(NULL, len, data);
        pj->reply = strdup(reply);
        pj->delivery_id = strdup(d && d->id && wsg_pb_str_ok(d->id, 1024) ? d->id : "");
        if (d)
            wsgate__delivery__free_unpacked(d, NULL);
        if (!pj->reply || !pj->delivery_id)
            count(a, RT_M_INTERNAL_ERRORS); /* routed all the same, without the reply */
        if (!pj->reply || !pj->delivery_id) {
            free(pj->reply);
            free(pj->delivery_id);
            pj->reply = pj->delivery_id = NULL;
        }
    }
    pj->bytes = job->frame.len + job->nparts * 64;
    a->njobs++;
    a->jobs_bytes += pj->bytes;
    if (a->jobs_tail)
        a->jobs_tail->next = pj;
    else
        a->jobs = pj;
    a->jobs_tail = pj;
    /* a refused send_message is kept nowhere; it still waits its turn to answer its sender */
    if (!(job->nparts == 1 && job->parts[0].refused))
        for (size_t i = 0; i < job->nparts; i += APPEND_CHUNK)
            submit_append(a, pj, i,
                          job->nparts - i < APPEND_CHUNK ? job->nparts - i : APPEND_CHUNK);
    pump_jobs(a);
}

/* ---- history requests ---- */

/* Payload bytes a HistoryReply page may carry. */
static size_t hist_page_bytes(rt_app *a)
{
    size_t cap = RT_HIST_REPLY_BYTES;
    int64_t wire = rt_bus_max_payload(a->bus);
    if (wire > 4096 && (size_t)wire - 4096 < cap)
        cap = (size_t)wire - 4096;
    size_t envelope = (size_t)a->hist.page * HIST_ITEM_OVERHEAD;
    return cap > envelope + 65536 ? cap - envelope : 65536;
}

static void reply_history(rt_app *a, const char *subject, Wsgate__HistoryReply__Status st,
                          const rt_hist_page *p)
{
    uint8_t *buf;
    size_t len;
    if (rt_hist_reply_pack(st, p, &buf, &len)) {
        count(a, RT_M_INTERNAL_ERRORS);
        return;
    }
    rt_bus_publish(a->bus, subject, buf, len);
    free(buf);
    count(a, st == WSGATE__HISTORY_REPLY__STATUS__BAD_REQUEST   ? RT_M_HISTORY_REQ_BAD_REQUEST
             : st == WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE ? RT_M_HISTORY_REQ_UNAVAILABLE
             : p && p->resync                                   ? RT_M_HISTORY_REQ_RESYNC
                                                                : RT_M_HISTORY_REQ_OK);
}

static void on_history(rt_app *a, const natsMsg *msg)
{
    const char *reply = natsMsg_GetReply(msg);
    if (!reply || !*reply) {
        count(a, RT_M_HISTORY_REQ_BAD_REQUEST); /* nobody to answer */
        return;
    }
    rt_hist_req q;
    rt_hreq_status st = rt_hist_req_parse((const uint8_t *)natsMsg_GetData(msg),
                                          (size_t)natsMsg_GetDataLength(msg), a->hist.page, &q);
    if (st != RT_HREQ_OK) {
        reply_history(a, reply, WSGATE__HISTORY_REPLY__STATUS__BAD_REQUEST, NULL);
        return;
    }
    rt_hist_page page;
    int served = rt_ring_serve(a->ring, &q, hist_page_bytes(a), wsg_now_us(), &page);
    if (served == 1) {
        count(a, RT_M_HISTORY_READS_MEMORY);
        reply_history(a, reply, WSGATE__HISTORY_REPLY__STATUS__OK, &page);
        rt_hist_page_free(&page);
        return;
    }
    if (served < 0)
        count(a, RT_M_INTERNAL_ERRORS); /* Redis answers instead */
    if (a->reads_inflight >= READS_MAX) {
        shed_work(a, RT_M_SHED_READS, "reads");
        reply_history(a, reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL);
        return;
    }
    rt_store_op *op = op_new(OP_READ, RT_SCRIPT__COUNT + RT_HSCRIPT_READ, NULL);
    op_ctx *c = op ? op->ctx : NULL;
    if (!op || !(c->reply = strdup(reply)) ||
        rt_hist_read_args(&op->args, a->cfg->prefix, &a->hist, &q, hist_page_bytes(a))) {
        rt_store_op_free(op);
        count(a, RT_M_INTERNAL_ERRORS);
        reply_history(a, reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL);
        return;
    }
    c->req = q;
    a->reads_inflight++;
    rt_store_submit(a->store, op);
}

static void on_read(rt_app *a, rt_store_op *op, op_ctx *c)
{
    rt_hist_page page;
    a->reads_inflight--;
    if (!op->done) {
        reply_history(a, c->reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL);
        return;
    }
    if (rt_hist_parse_read(op->reply, &page)) {
        wsg_warn("redis_bad_reply", "op=history_read");
        count(a, RT_M_REDIS_ERRORS);
        reply_history(a, c->reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL);
        return;
    }
    count(a, RT_M_HISTORY_READS_REDIS);
    reply_history(a, c->reply, WSGATE__HISTORY_REPLY__STATUS__OK, &page);
    rt_hist_page_free(&page);
}

/* Reads the whole broadcast stream into the ring, so requests need no Redis read. */
static void submit_ring_load(rt_app *a)
{
    rt_hist_req q = {.stream = WSGATE__STREAM_KIND__STREAM_BROADCAST,
                     .has_after = 1,
                     .max_items = (uint32_t)a->hist.max_len};
    rt_store_op *op = op_new(OP_RING_LOAD, RT_SCRIPT__COUNT + RT_HSCRIPT_READ, NULL);
    if (!op || rt_hist_read_args(&op->args, a->cfg->prefix, &a->hist, &q, RING_MAX_BYTES)) {
        rt_store_op_free(op);
        count(a, RT_M_INTERNAL_ERRORS);
        return; /* the next tick tries again */
    }
    a->ring_inflight = 1;
    rt_store_submit(a->store, op);
}

static void on_ring_loaded(rt_app *a, rt_store_op *op)
{
    a->ring_inflight = 0;
    rt_hist_page page;
    if (!op->done)
        return; /* the next tick tries again */
    if (rt_hist_parse_read(op->reply, &page)) {
        wsg_warn("redis_bad_reply", "op=history_ring_load");
        count(a, RT_M_REDIS_ERRORS);
        return;
    }
    if (rt_ring_load(a->ring, &page, wsg_now_us()))
        count(a, RT_M_INTERNAL_ERRORS);
    else
        a->ring_loaded = 1;
    wsg_info("history_ring_loaded", "items=%zu head=%" PRIu64 " complete=%d",
             rt_ring_len(a->ring), rt_ring_head(a->ring), rt_ring_complete(a->ring));
    rt_hist_page_free(&page);
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
        case RT_MSG_HISTORY:
            on_history(a, m->msg);
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

/* Registry events the bus had to drop leave the registry wrong until every gateway has
 * announced its set again. */
static void shed_check(rt_app *a)
{
    uint64_t n = rt_bus_take_shed(a->bus);
    if (!n)
        return;
    wsg_warn("registry_events_shed", "events=%" PRIu64 " reason=\"inbound queue full\" "
             "action=resync_all", n);
    a->resync_all_due = 1;
    a->resync_all_reason = RT_RSQ_SHED;
}

static void on_wake(void *arg)
{
    rt_app *a = arg;
    shed_check(a);
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
    rt_quota_forget_node(a->quota, node_id);
    wsg_warn("node_expired", "gateway=%s epoch=%" PRIu64 " users_offline=%zu", node_id, epoch,
             off->n);
    /* if it was only slow, its next word makes this replica ask it for its set again */
    if (rt_resync_node_gone(a->rs, node_id, epoch, wsg_mono_us()))
        count(a, RT_M_INTERNAL_ERRORS);
    rt_store_op *op = op_new(OP_PURGE, RT_SCRIPT_PURGE, node_id);
    if (!op || rt_script_purge_args(&op->args, a->cfg->prefix, a->hist.ttl_ms, node_id, epoch)) {
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
    if (!a->ring_loaded && !a->ring_inflight && rt_store_connected(a->store))
        submit_ring_load(a);
    if (a->loaded && rt_store_connected(a->store))
        pump_voids(a);
    resync_all_check(a);
    if (a->nats_up)
        rt_resync_due(a->rs, wsg_mono_us(), publish_resync, a);
    rt_resync_prune(a->rs, wsg_mono_us(), RESYNC_IDLE_US);
    rt_quota_prune(a->quota, wsg_mono_us());
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
    wsg_metrics_render_process(out);
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
    a->hist.max_len = (uint64_t)cfg->history_max;
    a->hist.ttl_ms = cfg->history_ttl_ms;
    a->hist.page = (uint32_t)cfg->history_page;
    a->ring = rt_ring_new((size_t)cfg->history_max, RING_MAX_BYTES, cfg->history_ttl_ms * 1000);
    a->unc = rt_unc_new(UNCERTAIN_MAX);
    a->quota = rt_quota_new(cfg->offline_bytes_per_minute, QUOTA_MAX_SENDERS);
    a->life_us = wsg_now_us();
    a->scripts = calloc(RT_SCRIPT__COUNT + RT_HSCRIPT__COUNT, sizeof(*a->scripts));
    if (a->scripts) {
        for (size_t i = 0; i < RT_SCRIPT__COUNT; i++)
            a->scripts[i] = rt_scripts[i];
        for (size_t i = 0; i < RT_HSCRIPT__COUNT; i++)
            a->scripts[RT_SCRIPT__COUNT + i] = rt_hist_scripts[i];
    }
    if (!a->reg || !a->rs || !a->batch || !a->ring || !a->unc || !a->quota || !a->scripts ||
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
        .scripts = a->scripts,
        .nscripts = RT_SCRIPT__COUNT + RT_HSCRIPT__COUNT,
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
        .urls = a->cfg->nats.url,
        .auth = &a->cfg->nats,
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
    submit_ring_load(a);
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
    /* every append came back before the store stopped: nothing is left but in a broken run */
    while (a->jobs) {
        pjob *next = a->jobs->next;
        pjob_free(a->jobs);
        a->jobs = next;
    }
    if (a->unc && rt_unc_len(a->unc))
        wsg_warn("history_uncertain_abandoned", "entries=%zu reason=\"stopping before Redis "
                 "could void them\"", rt_unc_len(a->unc));
    rt_unc_free(a->unc);
    rt_quota_free(a->quota);
    rt_ring_free(a->ring);
    free(a->scripts);
    rt_http_free(a->http);
    rt_batch_free(a->batch);
    rt_registry_free(a->reg);
    rt_resync_free(a->rs);
    free(a);
}
