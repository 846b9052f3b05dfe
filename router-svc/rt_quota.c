/* rt_quota: token buckets per sending connection, kept as the time each becomes full again. */
#include "rt_quota.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "wsg_subject.h"

#define MINUTE_US INT64_C(60000000)

typedef struct qkey {
    uint64_t conn_id;
    char node_id[WSG_NODE_ID_MAX + 1]; /* zero-padded: the whole struct is the hash key */
} qkey;

/* The bucket is full at `full_at`; at time t it holds budget * (1 - (full_at - t) / 1 min),
 * so a charge of b bytes moves full_at by b / budget minutes (GCRA). */
typedef struct qent {
    UT_hash_handle hh;
    qkey key;
    int64_t full_at_us;
} qent;

struct rt_quota {
    int64_t budget;
    size_t max;
    qent *map;
};

rt_quota *rt_quota_new(int64_t bytes_per_minute, size_t max_entries)
{
    rt_quota *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->budget = bytes_per_minute <= 0                  ? 0
                : bytes_per_minute > RT_QUOTA_MAX_BUDGET ? RT_QUOTA_MAX_BUDGET
                                                         : bytes_per_minute;
    q->max = max_entries;
    return q;
}

static void drop(rt_quota *q, qent *e)
{
    HASH_DEL(q->map, e);
    free(e);
}

void rt_quota_free(rt_quota *q)
{
    if (!q)
        return;
    qent *e, *tmp;
    HASH_ITER(hh, q->map, e, tmp) drop(q, e);
    free(q);
}

static int make_key(qkey *k, const char *node_id, uint64_t conn_id)
{
    memset(k, 0, sizeof(*k));
    size_t n = strlen(node_id);
    if (n > WSG_NODE_ID_MAX)
        return -1;
    memcpy(k->node_id, node_id, n);
    k->conn_id = conn_id;
    return 0;
}

/* What `bytes` cost in bucket time; a message over the whole budget can never be paid. */
static int64_t cost_us(const rt_quota *q, size_t bytes)
{
    if ((int64_t)bytes > q->budget)
        return MINUTE_US + 1;
    /* bytes <= budget <= RT_QUOTA_MAX_BUDGET: the product stays far below 2^63 */
    return (int64_t)bytes * MINUTE_US / q->budget;
}

rt_quota_status rt_quota_take(rt_quota *q, const char *node_id, uint64_t conn_id, size_t bytes,
                              int64_t now_us)
{
    if (q->budget == 0)
        return RT_QUOTA_OK;
    int64_t cost = cost_us(q, bytes);
    if (cost > MINUTE_US)
        return RT_QUOTA_OVER;
    qkey k;
    if (make_key(&k, node_id, conn_id))
        return RT_QUOTA_FULL;
    qent *e;
    HASH_FIND(hh, q->map, &k, sizeof(k), e);
    int64_t full_at = e && e->full_at_us > now_us ? e->full_at_us : now_us;
    if (full_at + cost - now_us > MINUTE_US)
        return RT_QUOTA_OVER;
    if (!e) {
        if (HASH_COUNT(q->map) >= q->max)
            rt_quota_prune(q, now_us);
        if (HASH_COUNT(q->map) >= q->max || !(e = calloc(1, sizeof(*e))))
            return RT_QUOTA_FULL;
        e->key = k;
        HASH_ADD(hh, q->map, key, sizeof(e->key), e);
    }
    e->full_at_us = full_at + cost;
    return RT_QUOTA_OK;
}

void rt_quota_forget(rt_quota *q, const char *node_id, uint64_t conn_id)
{
    qkey k;
    qent *e;
    if (!q->map || make_key(&k, node_id, conn_id))
        return;
    HASH_FIND(hh, q->map, &k, sizeof(k), e);
    if (e)
        drop(q, e);
}

void rt_quota_forget_node(rt_quota *q, const char *node_id)
{
    qent *e, *tmp;
    HASH_ITER(hh, q->map, e, tmp) {
        if (!strcmp(e->key.node_id, node_id))
            drop(q, e);
    }
}

size_t rt_quota_prune(rt_quota *q, int64_t now_us)
{
    size_t n = 0;
    qent *e, *tmp;
    HASH_ITER(hh, q->map, e, tmp) {
        if (e->full_at_us <= now_us) {
            drop(q, e);
            n++;
        }
    }
    return n;
}

size_t rt_quota_len(const rt_quota *q)
{
    return HASH_COUNT(q->map);
}
