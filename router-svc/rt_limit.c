/* rt_limit: choosing and closing a user's connections over the limit. */
#include "rt_limit.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "rt_ctx.h"
#include "rt_metrics.h"
#include "wsg_log.h"
#include "wsg_time.h"

typedef struct gather {
    rt_limit_victim *v;
    size_t n, cap;
    int oom;
} gather;

static void add(const rt_conn_info *ci, void *arg)
{
    gather *g = arg;
    if (g->oom)
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        rt_limit_victim *v = realloc(g->v, cap * sizeof(*v));
        if (!v) {
            g->oom = 1;
            return;
        }
        g->v = v;
        g->cap = cap;
    }
    rt_limit_victim *e = &g->v[g->n++];
    snprintf(e->node_id, sizeof(e->node_id), "%s", ci->node_id);
    e->epoch = ci->node_epoch;
    e->conn_id = ci->conn_id;
    e->connected_at_us = ci->connected_at_us;
}

/* Oldest first: connected_at_us, then node id, then conn id. */
static int by_age(const void *a, const void *b)
{
    const rt_limit_victim *x = a, *y = b;
    if (x->connected_at_us != y->connected_at_us)
        return x->connected_at_us < y->connected_at_us ? -1 : 1;
    int c = strcmp(x->node_id, y->node_id);
    if (c)
        return c;
    return x->conn_id < y->conn_id ? -1 : x->conn_id > y->conn_id;
}

size_t rt_limit_victims(const rt_registry *reg, const char *user, size_t limit,
                        rt_limit_policy policy, rt_limit_victim **out)
{
    *out = NULL;
    gather g = {0};
    rt_registry_user_visit(reg, user, add, &g);
    if (g.oom) {
        free(g.v);
        return (size_t)-1;
    }
    if (limit == 0 || g.n <= limit) {
        free(g.v);
        return 0;
    }
    qsort(g.v, g.n, sizeof(*g.v), by_age);
    size_t surplus = g.n - limit;
    if (policy == RT_LIMIT_NEWEST)
        memmove(g.v, g.v + limit, surplus * sizeof(*g.v));
    *out = g.v;
    return surplus;
}

size_t rt_limit_enforce(rt_ctx *c, const char *user)
{
    if (c->cfg->user_conn_limit <= 0)
        return 0;
    rt_limit_victim *v;
    rt_limit_policy policy = c->cfg->user_conn_limit_newest ? RT_LIMIT_NEWEST : RT_LIMIT_OLDEST;
    size_t n = rt_limit_victims(c->reg, user, (size_t)c->cfg->user_conn_limit, policy, &v);
    if (n == (size_t)-1) {
        rt_ctx_count(c, RT_M_INTERNAL_ERRORS);
        return 0;
    }
    if (n == 0)
        return 0;
    size_t sent = 0;
    if (rt_batch_begin_close(c->batch, RT_LIMIT_CLOSE_CODE, RT_LIMIT_CLOSE_REASON,
                             wsg_now_us()) == 0)
        for (size_t i = 0; i < n; i++) {
            if (rt_batch_add_conn(c->batch, v[i].node_id, v[i].epoch, v[i].conn_id)) {
                rt_ctx_count(c, RT_M_INTERNAL_ERRORS);
                continue;
            }
            sent++;
            wsg_info("user_limit_close", "user=\"%s\" gateway=%s conn=%" PRIu64
                     " connected_at_us=%" PRId64 " limit=%" PRId64 " policy=%s", user,
                     v[i].node_id, v[i].conn_id, v[i].connected_at_us,
                     c->cfg->user_conn_limit, policy == RT_LIMIT_NEWEST ? "newest" : "oldest");
        }
    else
        rt_ctx_count(c, RT_M_INTERNAL_ERRORS);
    wsg_metrics_add(c->m, RT_M_USER_LIMIT_CLOSES, (int64_t)sent);
    free(v);
    return sent;
}
