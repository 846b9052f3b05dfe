/* rt_ctx: the helpers every main-thread module of the router uses on the shared state. */
#include "rt_ctx.h"

#include <inttypes.h>

#include "rt_metrics.h"
#include "rt_shard.h"
#include "wsg_log.h"
#include "wsg_subject.h"
#include "wsg_time.h"

void rt_ctx_count(rt_ctx *c, size_t metric)
{
    wsg_metrics_add(c->m, metric, 1);
}

static int publish_node(const char *node_id, const uint8_t *data, size_t len, void *arg)
{
    rt_ctx *c = arg;
    char subj[WSG_SUBJECT_MAX];
    if (wsg_subject_fmt(subj, sizeof(subj), c->cfg->prefix, "node.%s", node_id))
        return -1;
    if (rt_bus_publish(c->bus, subj, data, len))
        return -1;
    rt_ctx_count(c, RT_M_NODE_DELIVERIES);
    return 0;
}

void rt_ctx_flush_batches(rt_ctx *c)
{
    size_t failed = 0;
    rt_batch_flush(c->batch, publish_node, c, &failed);
    if (failed)
        wsg_metrics_add(c->m, RT_M_INTERNAL_ERRORS, (int64_t)failed);
}

void rt_ctx_submit(rt_ctx *c, rt_store_op *op)
{
    if (c->flush_appends)
        c->flush_appends(c->flush_appends_arg);
    rt_store_submit(c->store, op);
}

size_t rt_ctx_shard_of(const rt_ctx *c, unsigned kind, const char *name)
{
    return rt_shard_of(kind, name, c->nshards);
}

rt_store *rt_ctx_hist_store(const rt_ctx *c, size_t shard)
{
    return c->nshards ? c->shards[shard < c->nshards ? shard : 0] : c->store;
}

const rt_hist_shard *rt_ctx_hist_shard(const rt_ctx *c, size_t shard, rt_hist_shard *sh)
{
    if (!c->nshards)
        return NULL;
    sh->epoch = c->cluster_epoch;
    sh->gen_seen = shard < c->nshards ? c->gen_seen[shard] : 0;
    return sh;
}

void rt_ctx_saw_seq(rt_ctx *c, size_t shard, uint64_t seq)
{
    if (c->nshards && shard < c->nshards && RT_HIST_GEN(seq) > c->gen_seen[shard]) {
        if (c->gen_seen[shard])
            wsg_warn("history_shard_generation", "shard=%zu old=%" PRIu64 " new=%" PRIu64
                     " reason=\"the shard lost appends: its streams' positions from before "
                     "resync\"", shard, c->gen_seen[shard], (uint64_t)RT_HIST_GEN(seq));
        c->gen_seen[shard] = RT_HIST_GEN(seq);
    }
}

int rt_ctx_history_ready(const rt_ctx *c)
{
    return !c->nshards || c->cluster_epoch != 0;
}

void rt_ctx_submit_hist(rt_ctx *c, size_t shard, rt_store_op *op)
{
    if (c->flush_appends)
        c->flush_appends(c->flush_appends_arg);
    rt_store_submit(rt_ctx_hist_store(c, shard), op);
}

void rt_ctx_shed(rt_ctx *c, rt_queue q)
{
    rt_ctx_count(c, rt_metric_shed(q));
    if (wsg_mono_us() - c->shed_logged_us >= 1000000) {
        wsg_warn("work_shed", "queue=%s jobs=%zu job_bytes=%zu reads=%zu suppressed=%" PRIu64,
                 rt_queue_name(q), c->njobs, c->jobs_bytes, c->reads_inflight, c->shed_suppressed);
        c->shed_logged_us = wsg_mono_us();
        c->shed_suppressed = 0;
    } else {
        c->shed_suppressed++;
    }
}
