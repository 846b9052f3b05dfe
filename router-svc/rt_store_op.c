/* rt_store_op: building, completing and freeing store operations and their commands. */
#include "rt_store_op.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rt_cmd ---- */

void rt_cmd_init(rt_cmd *c)
{
    memset(c, 0, sizeof(*c));
}

void rt_cmd_free(rt_cmd *c)
{
    for (size_t i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->argvlen);
    rt_cmd_init(c);
}

int rt_cmd_add(rt_cmd *c, const void *data, size_t len)
{
    if (c->argc == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        char **v = realloc(c->argv, cap * sizeof(*v));
        if (!v)
            return -1;
        c->argv = v;
        size_t *l = realloc(c->argvlen, cap * sizeof(*l));
        if (!l)
            return -1;
        c->argvlen = l;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    c->argv[c->argc] = copy;
    c->argvlen[c->argc] = len;
    c->argc++;
    return 0;
}

int rt_cmd_adds(rt_cmd *c, const char *s)
{
    return rt_cmd_add(c, s, strlen(s));
}

int rt_cmd_addf(rt_cmd *c, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return rt_cmd_add(c, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = rt_cmd_add(c, big, (size_t)n);
    free(big);
    return rc;
}

void rt_cmd_truncate(rt_cmd *c, size_t argc)
{
    while (c->argc > argc)
        free(c->argv[--c->argc]);
}

/* ---- ops ---- */

rt_store_op *rt_store_op_new(rt_op_kind kind)
{
    rt_store_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->kind = kind;
    rt_cmd_init(&op->args);
    return op;
}

rt_store_op *rt_store_op_script(size_t script, void (*done)(void *ctx, rt_store_op *op),
                                void *ctx, void (*ctx_free)(void *ctx))
{
    rt_store_op *op = rt_store_op_new(RT_OP_SCRIPT);
    if (!op) {
        if (ctx_free)
            ctx_free(ctx);
        return NULL;
    }
    op->script = script;
    op->done = done;
    op->ctx = ctx;
    op->ctx_free = ctx_free;
    return op;
}

size_t rt_store_op_complete(rt_store_op *list)
{
    size_t n = 0;
    while (list) {
        rt_store_op *next = list->q.next ? wsg_container_of(list->q.next, rt_store_op, q) : NULL;
        if (list->done)
            list->done(list->ctx, list);
        rt_store_op_free(list);
        list = next;
        n++;
    }
    return n;
}

void rt_store_op_free(rt_store_op *op)
{
    if (!op)
        return;
    rt_cmd_free(&op->args);
    for (size_t i = 0; i < op->ncmds; i++)
        rt_cmd_free(&op->cmds[i]);
    free(op->cmds);
    if (op->reply)
        freeReplyObject(op->reply);
    if (op->ctx_free)
        op->ctx_free(op->ctx);
    free(op);
}

rt_cmd *rt_store_op_cmd(rt_store_op *op)
{
    if (op->ncmds == op->capcmds) {
        size_t cap = op->capcmds ? op->capcmds * 2 : 64;
        rt_cmd *v = realloc(op->cmds, cap * sizeof(*v));
        if (!v)
            return NULL;
        op->cmds = v;
        op->capcmds = cap;
    }
    rt_cmd *c = &op->cmds[op->ncmds++];
    rt_cmd_init(c);
    return c;
}
