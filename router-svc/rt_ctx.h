/* rt_ctx: the state the router's main-thread modules (rt_members, rt_jobs, rt_voids,
 * rt_hist_serve, rt_status) share. rt_app owns it and everything it points to, and hands each
 * module a pointer at creation; store and bus are set when rt_app starts them. Only the main
 * thread touches it, except stop. */
#ifndef RT_CTX_H
#define RT_CTX_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_batch.h"
#include "rt_bus.h"
#include "rt_config.h"
#include "rt_history.h"
#include "rt_metrics.h"
#include "rt_ns_metrics.h"
#include "rt_quota.h"
#include "rt_registry.h"
#include "rt_store.h"
#include "wsg_metrics.h"

/* sending connections with an offline budget in use, at most (~160 bytes each) */
#define RT_QUOTA_MAX_SENDERS 100000

typedef struct rt_ctx {
    const rt_config *cfg;
    wsg_metrics *m;
    rt_ns_metrics *pubs; /* wsgate_router_publications_total{namespace} */
    rt_registry *reg;
    rt_batch *batch;
    rt_quota *quota;     /* offline bytes per sending connection */
    rt_store *store;     /* the registry, and the history unless there are shards */
    /* WSGATE_REDIS_SHARDS: the history's own stores, one per shard (rt_shard places each
     * stream); NULL and 0 without shards */
    rt_store **shards;
    size_t nshards;
    /* with shards: the epoch every shard reports, kept in the registry's Redis (0: not known
     * yet: no history call is made before it is), and per shard the highest generation seen
     * (rt_hist_shard) */
    uint64_t cluster_epoch;
    uint64_t *gen_seen;
    rt_bus *bus;
    rt_hist_limits hist;
    atomic_int stop;     /* any thread: the router is stopping */
    /* the bounded queues' fill, kept by their owners (rt_jobs, rt_hist_serve), logged with
     * any shed work */
    size_t njobs, jobs_bytes, reads_inflight;
    int64_t shed_logged_us;
    uint64_t shed_suppressed;
    /* rt_jobs' append batch: handed to the store before any other op (rt_ctx_submit), so the
     * store sees every op in the order the router made it, as without batching */
    void (*flush_appends)(void *arg);
    void *flush_appends_arg;
} rt_ctx;

/* Every op other than rt_jobs' appends goes to the store through here: the append batch being
 * collected goes first. */
void rt_ctx_submit(rt_ctx *c, rt_store_op *op);

/* The shard of the stream (kind, name): 0 without shards. */
size_t rt_ctx_shard_of(const rt_ctx *c, unsigned kind, const char *name);
/* The store that holds shard's history (the registry's store without shards). */
rt_store *rt_ctx_hist_store(const rt_ctx *c, size_t shard);
/* Fills sh for a history call on shard and returns it; NULL without shards (rt_hist_shard). */
const rt_hist_shard *rt_ctx_hist_shard(const rt_ctx *c, size_t shard, rt_hist_shard *sh);
/* A seq a shard answered: its generation raises gen_seen. */
void rt_ctx_saw_seq(rt_ctx *c, size_t shard, uint64_t seq);
/* 1 when history calls can be made: no shards, or the cluster's epoch is known. */
int rt_ctx_history_ready(const rt_ctx *c);
/* Submits a history op to shard's store, behind the append batch like rt_ctx_submit. */
void rt_ctx_submit_hist(rt_ctx *c, size_t shard, rt_store_op *op);

void rt_ctx_count(rt_ctx *c, size_t metric);
/* Publishes the per-node batches (counting what could not be). */
void rt_ctx_flush_batches(rt_ctx *c);
/* Work dropped because a bounded queue (named queue) was full: counted as metric, logged at
 * most once a second. */
void rt_ctx_shed(rt_ctx *c, rt_queue q);

#endif
