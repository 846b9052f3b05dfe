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
    rt_store *store;
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

void rt_ctx_count(rt_ctx *c, size_t metric);
/* Publishes the per-node batches (counting what could not be). */
void rt_ctx_flush_batches(rt_ctx *c);
/* Work dropped because a bounded queue (named queue) was full: counted as metric, logged at
 * most once a second. */
void rt_ctx_shed(rt_ctx *c, rt_queue q);

#endif
