/* rt_store_op: an operation for rt_store (a script call, or a full rewrite of the registry
 * keys) as its submitter builds it, and the Redis commands inside it (rt_cmd). The submitter
 * sets the op's completion (done + ctx); whoever takes it back from the store completes it. */
#ifndef RT_STORE_OP_H
#define RT_STORE_OP_H
#include <stddef.h>
#include <stdint.h>
#include <hiredis.h>
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
/* Drops the arguments from argc on (an addition that failed half-way). */
void rt_cmd_truncate(rt_cmd *c, size_t argc);

typedef enum {
    RT_OP_SCRIPT,       /* EVALSHA scripts[script] 0 args... */
    RT_OP_REWRITE,      /* replace the registry keys with cmds, in one MULTI/EXEC */
    RT_OP_NEED_REWRITE, /* handed back by the store only: submit an RT_OP_REWRITE of generation */
} rt_op_kind;

typedef struct rt_store_op rt_store_op;
struct rt_store_op {
    wsg_qnode q;
    rt_op_kind kind;
    int wait;            /* keep until Redis answers instead of failing while it is down */
    size_t script;       /* RT_OP_SCRIPT: index into the configured scripts */
    rt_cmd args;         /* RT_OP_SCRIPT: the script's ARGV */
    rt_cmd *cmds;        /* RT_OP_REWRITE */
    size_t ncmds, capcmds;
    uint64_t generation; /* RT_OP_REWRITE / RT_OP_NEED_REWRITE */
    /* filled by the store */
    int ran;             /* 1: Redis ran it; reply is its answer (never an error reply) */
    redisReply *reply;
    /* the submitter's own, never touched by the store: whoever takes the op back calls
     * done(ctx, op) (if set) before freeing it, so each op carries its own completion;
     * ctx_free(ctx) runs when the op is freed */
    void (*done)(void *ctx, rt_store_op *op);
    void *ctx;
    void (*ctx_free)(void *ctx);
};

rt_store_op *rt_store_op_new(rt_op_kind kind);
/* A script op (kind RT_OP_SCRIPT) that completes with done(ctx, op) and owns ctx. On ENOMEM
 * returns NULL having freed ctx with ctx_free, so ctx has one owner either way. */
rt_store_op *rt_store_op_script(size_t script, void (*done)(void *ctx, rt_store_op *op),
                                void *ctx, void (*ctx_free)(void *ctx));
void rt_store_op_free(rt_store_op *op);
/* Calls op->done (if set) for every op of a list from rt_store_take, then frees it. Returns
 * how many ops the list held. */
size_t rt_store_op_complete(rt_store_op *list);
/* Appends an empty command to a rewrite op and returns it, or NULL on ENOMEM. */
rt_cmd *rt_store_op_cmd(rt_store_op *op);

#endif
