/* rt_store: the router's Redis connection, owned by one thread of its own so the main loop
 * never waits on Redis. The main thread hands it operations (script calls, a full rewrite)
 * through a queue; the thread pipelines them, and hands every operation back with its reply
 * through a second queue, waking the main loop with the caller's wake function.
 *
 * Promises: every operation comes back exactly once, script and rewrite operations in
 * submission order (a held wait operation may be overtaken by failed ones). When Redis is
 * unreachable, operations come back at once with ran = 0 (the caller falls back), except
 * "wait" operations (the start-up snapshot), which are kept until Redis answers. After Redis
 * comes back following a session in which a wait operation succeeded, the durable copy is
 * suspect: the store hands back an RT_OP_NEED_REWRITE operation and answers script calls with
 * ran = 0 until it has run an RT_OP_REWRITE of that generation. Scripts are loaded with
 * SCRIPT LOAD on connect and called with EVALSHA, falling back to EVAL on NOSCRIPT. The thread
 * reconnects with back-off (100 ms doubling to 5 s) and pings an idle connection every second
 * so a dead Redis is noticed promptly. Behind Sentinel (rt_sentinel) the address is asked
 * again before every connection; a connection to a node that is not a master, a READONLY
 * reply, or a +switch-master of our master drops the connection, so writes only ever reach
 * the master Sentinel chose; the rewrite and the history epoch then settle what a promotion
 * lost, as after a Redis restart. */
#ifndef RT_STORE_H
#define RT_STORE_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis.h>
#include "rt_config.h"
#include "rt_store_op.h"
#include "wsg_metrics.h"
#include "wsg_queue.h"

typedef struct rt_store_cfg {
    rt_redis_addr addr;
    /* with sentinels (n > 0), addr's host and port are ignored: every connection goes to the
     * master they name, checked with ROLE, and is dropped when they announce another one */
    const rt_hostport *sentinels;
    size_t nsentinels;
    const char *master_name;
    const char *sentinel_password; /* NULL or "": none */
    /* "" or NULL: the registry's store (the rewrite protocol below, RT_M_REDIS_CONNECTED);
     * otherwise a history shard's name for the logs ("shard-0", ...): no registry keys, so no
     * rewrite is ever asked for, and RT_M_REDIS_SHARDS_CONNECTED counts it while connected */
    const char *shard;
    const char *prefix; /* keys deleted by a rewrite: <prefix>:nodes, :applied, :node:*, :user:*,
                         * :subs:*, :chan:* */
    const char *const *scripts;  /* Lua sources */
    size_t nscripts;
    void (*wake)(void *arg);     /* called on the store thread after handing ops back */
    void *wake_arg;
    /* the done callback and ctx of each RT_OP_NEED_REWRITE op the store hands back */
    void (*need_rewrite)(void *ctx, rt_store_op *op);
    void *need_rewrite_ctx;
    wsg_metrics *metrics;        /* RT_M_REDIS_* */
} rt_store_cfg;

typedef struct rt_store rt_store;

/* Starts the thread (which connects in the background). NULL on failure. */
rt_store *rt_store_start(const rt_store_cfg *cfg);
/* Stops the thread after one last pass over what was submitted (run if Redis is up, else
 * handed back undone), and joins it. rt_store_take still works afterwards. */
void rt_store_stop(rt_store *s);
/* Stops if needed and frees the store with every op still inside, answered or not. */
void rt_store_free(rt_store *s);
void rt_store_submit(rt_store *s, rt_store_op *op);
/* Any thread: the store thread calls the wake function at at_us (wsg_mono_us), or at the
 * earlier deadline already asked for. Why here: the thread already sleeps on a condition
 * variable with a microsecond deadline, while the loop's lws timers have a millisecond grain
 * (lws 4.1 polls with 0 ms, spinning, through the last part of a millisecond). */
void rt_store_wake_at(rt_store *s, int64_t at_us);
/* Every op handed back so far, oldest first, linked through q.next. */
rt_store_op *rt_store_take(rt_store *s);
int rt_store_connected(const rt_store *s);

#endif
