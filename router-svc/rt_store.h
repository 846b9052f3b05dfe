/* rt_store: the router's Redis connection, owned by one thread of its own so the main loop
 * never waits on Redis. The main thread hands it operations (script calls, a full rewrite)
 * through a queue; the thread pipelines them, and hands every operation back with its reply
 * through a second queue, waking the main loop with the caller's wake function.
 *
 * Promises: every operation comes back exactly once, script and rewrite operations in
 * submission order (a held wait operation may be overtaken by failed ones). When Redis is
 * unreachable, operations come back at once with done = 0 (the caller falls back), except
 * "wait" operations (the start-up snapshot), which are kept until Redis answers. After Redis
 * comes back following a session in which a wait operation succeeded, the durable copy is
 * suspect: the store hands back an RT_OP_NEED_REWRITE operation and answers script calls with
 * done = 0 until it has run an RT_OP_REWRITE of that generation. Scripts are loaded with
 * SCRIPT LOAD on connect and called with EVALSHA, falling back to EVAL on NOSCRIPT. The thread
 * reconnects with back-off (100 ms doubling to 5 s) and pings an idle connection every second
 * so a dead Redis is noticed promptly. */
#ifndef RT_STORE_H
#define RT_STORE_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis.h>
#include "rt_config.h"
#include "wsg_metrics.h"
#include "wsg_queue.h"

/* One Redis command as an argument vector; owns copies of its arguments. */
typedef struct rt_cmd {
    char **argv;
    size_t *argvlen;
    size_t argc, cap;
} rt_cmd;

void rt_cmd_init(rt_cmd *c);
void rt_cmd_free(rt_cmd *c);
int rt_cmd_add(rt_cmd *c, const void *data, size_t len); /* 0 / -1 */
int rt_cmd_adds(rt_cmd *c, const char *s);
int rt_cmd_addf(rt_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef enum {
    RT_OP_SCRIPT,       /* EVALSHA scripts[script] 0 args... */
    RT_OP_REWRITE,      /* replace the registry keys with cmds, in one MULTI/EXEC */
    RT_OP_NEED_REWRITE, /* handed back by the store only: submit an RT_OP_REWRITE of generation */
} rt_op_kind;

typedef struct rt_store_op {
    wsg_qnode q;
    rt_op_kind kind;
    int wait;            /* keep until Redis answers instead of failing while it is down */
    size_t script;       /* RT_OP_SCRIPT: index into the configured scripts */
    rt_cmd args;         /* RT_OP_SCRIPT: the script's ARGV */
    rt_cmd *cmds;        /* RT_OP_REWRITE */
    size_t ncmds, capcmds;
    uint64_t generation; /* RT_OP_REWRITE / RT_OP_NEED_REWRITE */
    /* filled by the store */
    int done;            /* 1: Redis ran it; reply is its answer (never an error reply) */
    redisReply *reply;
    /* the submitter's own, never touched by the store; freed with the op */
    void *ctx;
    void (*ctx_free)(void *ctx);
} rt_store_op;

rt_store_op *rt_store_op_new(rt_op_kind kind);
void rt_store_op_free(rt_store_op *op);
/* Appends an empty command to a rewrite op and returns it, or NULL on ENOMEM. */
rt_cmd *rt_store_op_cmd(rt_store_op *op);

typedef struct rt_store_cfg {
    rt_redis_addr addr;
    const char *prefix;          /* keys deleted by a rewrite: <prefix>:nodes, :applied, :node:*, :user:* */
    const char *const *scripts;  /* Lua sources */
    size_t nscripts;
    void (*wake)(void *arg);     /* called on the store thread after handing ops back */
    void *wake_arg;
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
/* Every op handed back so far, oldest first, linked through q.next. */
rt_store_op *rt_store_take(rt_store *s);
int rt_store_connected(const rt_store *s);

#endif
