/* rt_ctx: the helpers every main-thread module of the router uses on the shared state. */
#include "rt_ctx.h"

#include <inttypes.h>

#include "rt_metrics.h"
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
