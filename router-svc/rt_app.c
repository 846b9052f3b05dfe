/* rt_app: the router's wiring: it owns the shared state (rt_ctx) and the modules, runs the
 * loop's hooks in order and the lifecycle. Each flow lives in its module (see rt_app.h). */
#include "rt_app.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "rt_api.h"
#include "rt_api_http.h"
#include "rt_batch.h"
#include "rt_bus.h"
#include "rt_ctx.h"
#include "rt_hist_serve.h"
#include "rt_jobs.h"
#include "rt_loop.h"
#include "rt_members.h"
#include "rt_metrics.h"
#include "rt_peers.h"
#include "rt_script.h"
#include "rt_shard.h"
#include "rt_status.h"
#include "rt_store.h"
#include "rt_voids.h"
#include "wsg_heap.h"
#include "wsg_log.h"
#include "wsg_time.h"

#define TICK_US (1000 * 1000)
/* Flush batches early inside a big drain so their memory stays bounded. */
#define EARLY_FLUSH_BYTES (4u * 1024 * 1024)
#define NATS_FLUSH_MS 2000
/* Every 10 s the allocator's free pages go back to the kernel: bursts of per-message
 * allocations otherwise leave RSS at their high-water mark (bench/soak: +1.5 % in a
 * minute with the live heap flat). */
#define HEAP_TRIM_TICKS 10

struct rt_app {
    rt_ctx ctx;
    rt_loop *loop;
    rt_members *members;
    rt_hist_serve *hs;
    rt_voids *voids;
    rt_jobs *jobs;
    rt_status *status;
    rt_peers *peers;
    rt_api *api;
    rt_api_http *api_http; /* the loop's api hook */
    const char **scripts; /* registry scripts, then history scripts */
    char (*shard_names)[32]; /* "shard-<k>", for the shard stores' logs */
    int epoch_inflight;   /* with shards: the cluster epoch's read is out */
    unsigned ticks;
};

/* ---- the loop's hooks ---- */

static void load_epoch(rt_app *a);

/* The store wants the durable copy rewritten (Redis came back, maybe empty). */
static void on_need_rewrite(void *arg, rt_store_op *op)
{
    rt_app *a = arg;
    if (rt_members_loaded(a->members) && !atomic_load(&a->ctx.stop)) {
        rt_members_rewrite(a->members, op->generation);
        /* right behind the rewrite, so the oldest uncertain appends (those cut off in flight)
         * are voided before any newer append runs */
        rt_voids_pump(a->voids);
    }
    /* Redis was away and may have lost everything: the rings may speak for a history that no
     * longer exists */
    rt_hist_serve_forget_rings(a->hs);
    load_epoch(a); /* with shards: the cluster's epoch goes back if it was lost */
}

/* Each op handed back completes through its own done callback. */
static void drain_store(rt_app *a)
{
    size_t done = rt_store_op_complete(rt_store_take(a->ctx.store));
    for (size_t i = 0; i < a->ctx.nshards; i++)
        if (a->ctx.shards[i])
            done += rt_store_op_complete(rt_store_take(a->ctx.shards[i]));
    if (done)
        rt_ctx_flush_batches(&a->ctx);
}

/* ---- with shards: the cluster's epoch ---- */

static void on_epoch(void *arg, rt_store_op *op)
{
    rt_app *a = arg;
    rt_ctx *c = &a->ctx;
    a->epoch_inflight = 0;
    rt_hist_page page;
    if (!op->ran)
        return; /* the next tick asks again */
    if (rt_hist_parse_read(op->reply, 0, &page)) {
        wsg_warn("redis_bad_reply", "op=history_epoch");
        rt_ctx_count(c, RT_M_REDIS_ERRORS);
        return;
    }
    if (c->cluster_epoch && page.epoch != c->cluster_epoch)
        wsg_warn("history_epoch_changed", "old=%" PRIu64 " new=%" PRIu64 " reason=\"the "
                 "registry's Redis holds another cluster epoch\"", c->cluster_epoch, page.epoch);
    else if (!c->cluster_epoch)
        wsg_info("history_epoch", "epoch=%" PRIu64 " shards=%zu", page.epoch, c->nshards);
    c->cluster_epoch = page.epoch;
    rt_hist_page_free(&page);
}

/* Reads the cluster's epoch from the registry's Redis, making it there if it is missing: with
 * the one this router holds, if any, so that a Redis that lost it gets it back rather than a
 * new one every client would resync for. */
static void load_epoch(rt_app *a)
{
    rt_ctx *c = &a->ctx;
    if (!c->nshards || a->epoch_inflight || atomic_load(&c->stop))
        return;
    rt_store_op *op = rt_store_op_script(RT_SCRIPT__COUNT + RT_HSCRIPT_READ, on_epoch, a, NULL);
    if (!op || rt_hist_epoch_args(&op->args, c->cfg->prefix, &c->hist, c->cluster_epoch)) {
        rt_store_op_free(op);
        rt_ctx_count(c, RT_M_INTERNAL_ERRORS);
        return;
    }
    op->wait = 1;
    a->epoch_inflight = 1;
    rt_ctx_submit(c, op);
}

static void drain_bus(rt_app *a)
{
    rt_msg *m = rt_bus_take(a->ctx.bus);
    while (m) {
        rt_msg *next = m->q.next ? wsg_container_of(m->q.next, rt_msg, q) : NULL;
        wsg_metrics_observe(a->ctx.m, RT_M_STAGE_ROUTER_INBOX, wsg_mono_us() - m->at_us);
        switch (m->kind) {
        case RT_MSG_CONN:
            rt_members_conn_event(a->members, m->msg);
            break;
        case RT_MSG_HB:
            rt_members_heartbeat(a->members, m->msg);
            break;
        case RT_MSG_HISTORY:
            rt_hist_serve_request(a->hs, m->msg);
            break;
        case RT_MSG_API_PUBLISH:
        case RT_MSG_API_DISCONNECT:
        case RT_MSG_API_PRESENCE:
        case RT_MSG_API_INFO:
            rt_api_nats(a->api, (rt_api_op)(m->kind - RT_MSG_API_PUBLISH), m->msg);
            break;
        case RT_MSG_ROUTER_HB:
            rt_peers_message(a->peers, m->msg);
            break;
        default:
            rt_jobs_routed(a->jobs, m->kind, m->msg);
            break;
        }
        rt_msg_free(m);
        if (rt_batch_pending_bytes(a->ctx.batch) > EARLY_FLUSH_BYTES)
            rt_ctx_flush_batches(&a->ctx);
        m = next;
    }
    rt_jobs_appends_drained(a->jobs);
    rt_members_seen_flush(a->members);
    rt_ctx_flush_batches(&a->ctx);
}

static void on_wake(void *arg)
{
    rt_app *a = arg;
    rt_members_shed_check(a->members);
    drain_store(a);
    rt_members_resync_check(a->members);
    if (rt_members_loaded(a->members) && rt_ctx_history_ready(&a->ctx))
        drain_bus(a);
    rt_jobs_appends_due(a->jobs); /* the window of the append call being collected */
    rt_status_gauges(a->status);
}

static void on_tick(void *arg)
{
    rt_app *a = arg;
    rt_members_tick(a->members);
    if (!rt_ctx_history_ready(&a->ctx))
        load_epoch(a);
    if (rt_store_connected(a->ctx.store))
        rt_hist_serve_load_rings(a->hs);
    if (rt_members_loaded(a->members) && rt_ctx_history_ready(&a->ctx))
        rt_voids_pump(a->voids); /* each store's, when it is connected */
    rt_members_resync_tick(a->members);
    rt_quota_prune(a->ctx.quota, wsg_mono_us());
    rt_peers_announce(a->peers, 0);
    rt_status_gauges(a->status);
    if (++a->ticks % HEAP_TRIM_TICKS == 0)
        wsg_heap_trim();
}

static void appends_due(void *arg)
{
    rt_app *a = arg;
    rt_jobs_appends_due(a->jobs);
}

/* The append window: with no window, the loop's next turn (a message routed outside a bus
 * drain); else the store thread's deadline, which wakes the loop (on_wake) on time without
 * the spin of an lws timer below a millisecond. */
static void arm_appends(void *arg, int64_t us)
{
    rt_app *a = arg;
    if (us <= 0 && a->loop)
        rt_loop_timer(a->loop, 1, appends_due, a);
    else if (us > 0 && a->ctx.store)
        rt_store_wake_at(a->ctx.store, wsg_mono_us() + us);
}

static void wake_loop(void *arg)
{
    rt_app *a = arg;
    rt_loop_wake(a->loop);
}

/* Where the console is, once at start; a missing directory is a warning, not a failure: the
 * router's job is routing, and /console/ then answers 404. */
static void log_console(const rt_config *cfg)
{
    char index[1024];
    int n = snprintf(index, sizeof(index), "%s/index.html", cfg->console_dir);
    if (n < 0 || (size_t)n >= sizeof(index) || access(index, R_OK))
        wsg_warn("console_files_missing", "dir=\"%s\" hint=\"set WSGATE_CONSOLE_DIR, or "
                 "WSGATE_CONSOLE=off\"", cfg->console_dir);
    else
        wsg_info("console_served", "path=/console/ dir=\"%s\"", cfg->console_dir);
}

/* ---- lifecycle ---- */

rt_app *rt_app_new(const rt_config *cfg, wsg_metrics *metrics)
{
    rt_app *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    rt_ctx *c = &a->ctx;
    c->cfg = cfg;
    c->m = metrics;
    c->reg = rt_registry_new();
    c->batch = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    c->quota = rt_quota_new(cfg->offline_bytes_per_minute, RT_QUOTA_MAX_SENDERS);
    c->pubs = rt_ns_metrics_new(cfg->namespaces);
    c->hist.max_len = (uint64_t)cfg->history_max;
    c->hist.ttl_ms = cfg->history_ttl_ms;
    c->hist.page = (uint32_t)cfg->history_page;
    c->hist.namespaces = cfg->namespaces;
    c->nshards = cfg->nshards;
    if (c->nshards) {
        c->gen_seen = calloc(c->nshards, sizeof(*c->gen_seen));
        c->shards = calloc(c->nshards, sizeof(*c->shards));
        a->shard_names = calloc(c->nshards, sizeof(*a->shard_names));
        if (!c->gen_seen || !c->shards || !a->shard_names) {
            rt_app_free(a);
            return NULL;
        }
    }
    a->scripts = calloc(RT_SCRIPT__COUNT + RT_HSCRIPT__COUNT, sizeof(*a->scripts));
    if (a->scripts) {
        for (size_t i = 0; i < RT_SCRIPT__COUNT; i++)
            a->scripts[i] = rt_scripts[i];
        for (size_t i = 0; i < RT_HSCRIPT__COUNT; i++)
            a->scripts[RT_SCRIPT__COUNT + i] = rt_hist_scripts[i];
    }
    if (!c->reg || !c->batch || !c->quota || !c->pubs || !a->scripts ||
        !(a->members = rt_members_new(c)) ||
        !(a->hs = rt_hist_serve_new(c)) || !(a->voids = rt_voids_new(c, a->hs)) ||
        !(a->jobs = rt_jobs_new(c, a->voids, a->hs)) ||
        !(a->peers = rt_peers_new(c, cfg->node_id, wsg_now_us())) ||
        !(a->api = rt_api_new(c, a->jobs, a->peers)) ||
        !(a->status = rt_status_new(c, a->members, a->hs))) {
        rt_app_free(a);
        return NULL;
    }
    return a;
}

int rt_app_start(rt_app *a)
{
    rt_ctx *c = &a->ctx;
    rt_loop_hooks hooks = {
        .on_wake = on_wake,
        .on_tick = on_tick,
        .arg = a,
        .health = rt_status_health,
        .ready = rt_status_ready,
        .metrics = rt_status_metrics,
        .http_arg = a->status,
        .api = rt_api_http_request,
        .api_max_body = rt_api_http_max_body(c->cfg->max_delivery_bytes),
        .static_prefix = "/console",
        .static_dir = c->cfg->console ? c->cfg->console_dir : NULL,
    };
    rt_api_http_cfg hc = {
        .api = a->api,
        .m = c->m,
        .key = c->cfg->api_key_v,
        .listen_host = c->cfg->http_host,
    };
    if (!(hooks.api_arg = a->api_http = rt_api_http_new(&hc)))
        return -1;
    a->loop = rt_loop_new(c->cfg->http_host, c->cfg->http_port, TICK_US, &hooks);
    if (!a->loop)
        return -1;
    if (c->cfg->console)
        log_console(c->cfg);
    rt_jobs_set_timer(a->jobs, arm_appends, a);
    rt_store_cfg sc = {
        .addr = c->cfg->redis,
        .sentinels = c->cfg->sentinels,
        .nsentinels = c->cfg->nsentinels,
        .master_name = c->cfg->redis_master_name,
        .sentinel_password = c->cfg->redis_sentinel_password,
        .prefix = c->cfg->prefix,
        .scripts = a->scripts,
        .nscripts = RT_SCRIPT__COUNT + RT_HSCRIPT__COUNT,
        .wake = wake_loop,
        .wake_arg = a,
        .need_rewrite = on_need_rewrite,
        .need_rewrite_ctx = a,
        .metrics = c->m,
    };
    c->store = rt_store_start(&sc);
    if (!c->store) {
        wsg_error("store_start_failed", NULL);
        return -1;
    }
    /* the history shards: the same scripts (their indices are the ops'), no registry */
    for (size_t i = 0; i < c->nshards; i++) {
        const rt_shard_spec *sp = &c->cfg->shards[i];
        snprintf(a->shard_names[i], sizeof(a->shard_names[i]), "shard-%zu", i);
        rt_store_cfg shc = sc;
        shc.addr = sp->addr;
        shc.sentinels = sp->sentinels;
        shc.nsentinels = sp->nsentinels;
        shc.master_name = sp->master_name;
        shc.need_rewrite = NULL;
        shc.need_rewrite_ctx = NULL;
        shc.shard = a->shard_names[i];
        if (!(c->shards[i] = rt_store_start(&shc))) {
            wsg_error("store_start_failed", "store=%s", a->shard_names[i]);
            return -1;
        }
    }
    /* subscribe first: messages queue up while the snapshot loads, so nothing is missed */
    rt_bus_cfg bc = {
        .urls = c->cfg->nats.url,
        .auth = &c->cfg->nats,
        .name = c->cfg->node_id,
        .prefix = c->cfg->prefix,
        .wake = wake_loop,
        .wake_arg = a,
        .metrics = c->m,
    };
    c->bus = rt_bus_open(&bc);
    if (!c->bus)
        return -1;
    rt_members_load(a->members);
    load_epoch(a);
    rt_hist_serve_load_rings(a->hs);
    return 0;
}

int rt_app_run(rt_app *a)
{
    while (!atomic_load(&a->ctx.stop))
        if (rt_loop_service(a->loop)) {
            wsg_error("loop_failed", NULL);
            return -1;
        }
    return 0;
}

void rt_app_stop(rt_app *a)
{
    atomic_store(&a->ctx.stop, 1);
    if (a->loop)
        rt_loop_wake(a->loop);
}

void rt_app_free(rt_app *a)
{
    if (!a)
        return;
    rt_ctx *c = &a->ctx;
    /* Messages already taken from NATS are still handled (queue-group work would otherwise be
     * lost) and their registry changes reach Redis and presence before NATS is flushed; only
     * then do the producers (which wake the loop) go, then the loop itself. */
    if (c->bus) {
        rt_bus_unsubscribe(c->bus);
        if (c->store)
            drain_store(a);
        if (a->members && rt_members_loaded(a->members))
            drain_bus(a);
    }
    if (c->bus && a->peers)
        rt_peers_announce(a->peers, 1); /* the others forget this router at once */
    if (c->store) {
        rt_jobs_flush_appends(a->jobs); /* the last appends reach Redis before it stops */
        rt_members_seen_flush(a->members);
        rt_store_stop(c->store);
        for (size_t i = 0; i < c->nshards; i++)
            rt_store_stop(c->shards[i]);
        if (c->bus)
            drain_store(a);
    }
    rt_bus_close(c->bus, NATS_FLUSH_MS);
    c->bus = NULL;
    rt_store_free(c->store);
    c->store = NULL;
    for (size_t i = 0; i < c->nshards && c->shards; i++) {
        rt_store_free(c->shards[i]);
        c->shards[i] = NULL;
    }
    /* every append came back before the store stopped: jobs are left only in a broken run */
    rt_api_free(a->api);
    rt_jobs_free(a->jobs); /* answers the calls still waiting in it: before the HTTP side goes */
    rt_api_http_free(a->api_http);
    rt_peers_free(a->peers);
    rt_voids_free(a->voids);
    rt_status_free(a->status);
    rt_hist_serve_free(a->hs);
    rt_members_free(a->members);
    rt_quota_free(c->quota);
    rt_ns_metrics_free(c->pubs);
    free(a->scripts);
    free(c->shards);
    free(c->gen_seen);
    free(a->shard_names);
    rt_loop_free(a->loop);
    rt_batch_free(c->batch);
    rt_registry_free(c->reg);
    free(a);
}
