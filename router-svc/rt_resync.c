/* rt_resync: one uthash entry per node, created on first need. */
#include "rt_resync.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "wsg_subject.h"

typedef struct rs_node {
    UT_hash_handle hh;
    char id[WSG_NODE_ID_MAX + 1];
    int gone;              /* gone_epoch holds the life this replica purged */
    uint64_t gone_epoch;
    uint64_t epoch;        /* the life mismatches were counted in */
    unsigned mismatches;
    int asked;             /* asked_us is valid */
    int64_t asked_us;
    int owed;              /* a request held back by the limit, for owed_why */
    rt_resync_reason owed_why;
    int64_t touched_us;
} rs_node;

struct rt_resync {
    rs_node *nodes;
    int64_t min_interval_us;
    int asked_all;
    int64_t asked_all_us;
    int owed_all;
    rt_resync_reason owed_all_why;
};

const char *rt_resync_reason_name(rt_resync_reason r)
{
#define LABEL_(name, label) [RT_RSQ_##name] = label,
    static const char *const names[RT_RSQ__COUNT] = {RT_RESYNC_REASON_MAP(LABEL_)};
#undef LABEL_
    return (unsigned)r < RT_RSQ__COUNT ? names[r] : "unknown";
}

rt_resync *rt_resync_new(int64_t min_interval_us)
{
    rt_resync *s = calloc(1, sizeof(*s));
    if (s)
        s->min_interval_us = min_interval_us;
    return s;
}

void rt_resync_free(rt_resync *s)
{
    if (!s)
        return;
    rs_node *n, *tmp;
    HASH_ITER(hh, s->nodes, n, tmp) {
        HASH_DEL(s->nodes, n);
        free(n);
    }
    free(s);
}

static rs_node *find(const rt_resync *s, const char *id)
{
    rs_node *n;
    HASH_FIND_STR(s->nodes, id, n);
    return n;
}

/* NULL for an id too long to be a node id, on ENOMEM, or when the table is full. */
static rs_node *get(rt_resync *s, const char *id, int64_t now_us)
{
    rs_node *n = find(s, id);
    if (!n) {
        if (strlen(id) > WSG_NODE_ID_MAX || HASH_COUNT(s->nodes) >= RT_RESYNC_MAX_NODES)
            return NULL;
        n = calloc(1, sizeof(*n));
        if (!n)
            return NULL;
        strcpy(n->id, id);
        HASH_ADD_STR(s->nodes, id, n);
    }
    n->touched_us = now_us;
    return n;
}

int rt_resync_node_gone(rt_resync *s, const char *node_id, uint64_t epoch, int64_t now_us)
{
    rs_node *n = get(s, node_id, now_us);
    if (!n)
        return -1;
    n->gone = 1;
    n->gone_epoch = epoch;
    n->mismatches = 0;
    return 0;
}

int rt_resync_node_seen(rt_resync *s, const char *node_id, uint64_t epoch)
{
    rs_node *n = find(s, node_id);
    if (!n || !n->gone || epoch < n->gone_epoch)
        return 0;
    n->gone = 0;
    return epoch == n->gone_epoch;
}

int rt_resync_heartbeat(rt_resync *s, const char *node_id, uint64_t epoch, uint64_t announced,
                        uint64_t known, int64_t now_us)
{
    rs_node *n = find(s, node_id);
    if (announced == known) {
        if (n)
            n->mismatches = 0;
        return 0;
    }
    if (!n && !(n = get(s, node_id, now_us)))
        return 0;
    n->touched_us = now_us;
    if (n->epoch != epoch) {
        n->epoch = epoch;
        n->mismatches = 0;
    }
    if (n->mismatches < 2)
        n->mismatches++;
    return n->mismatches >= 2;
}

static int limited(const rt_resync *s, const rs_node *n, int64_t now_us)
{
    if (s->asked_all && now_us - s->asked_all_us < s->min_interval_us)
        return 1;
    return n && n->asked && now_us - n->asked_us < s->min_interval_us;
}

/* A request to every node settles what each node was owed or counting. */
static void sent_all(rt_resync *s, int64_t now_us)
{
    s->asked_all = 1;
    s->asked_all_us = now_us;
    s->owed_all = 0;
    for (rs_node *n = s->nodes; n; n = n->hh.next) {
        n->mismatches = 0;
        n->owed = 0;
    }
}

static void sent_node(rs_node *n, int64_t now_us)
{
    n->asked = 1;
    n->asked_us = now_us;
    n->mismatches = 0;
    n->owed = 0;
}

int rt_resync_want(rt_resync *s, const char *node_id, rt_resync_reason why, int64_t now_us)
{
    if (!node_id) {
        if (limited(s, NULL, now_us)) {
            s->owed_all = 1;
            s->owed_all_why = why;
            return 0;
        }
        sent_all(s, now_us);
        return 1;
    }
    rs_node *n = get(s, node_id, now_us);
    if (!n)
        return 0; /* the table is full: without a record there is no rate limit */
    if (limited(s, n, now_us)) {
        if (!n->owed) {
            n->owed = 1;
            n->owed_why = why;
        }
        return 0;
    }
    sent_node(n, now_us);
    return 1;
}

size_t rt_resync_due(rt_resync *s, int64_t now_us, rt_resync_fn fn, void *arg)
{
    size_t k = 0;
    if (s->owed_all && !limited(s, NULL, now_us)) {
        rt_resync_reason why = s->owed_all_why;
        sent_all(s, now_us);
        fn(NULL, why, arg);
        k++;
    }
    for (rs_node *n = s->nodes; n; n = n->hh.next) {
        if (n->owed && !limited(s, n, now_us)) {
            sent_node(n, now_us);
            fn(n->id, n->owed_why, arg);
            k++;
        }
    }
    return k;
}

void rt_resync_prune(rt_resync *s, int64_t now_us, int64_t max_idle_us)
{
    rs_node *n, *tmp;
    HASH_ITER(hh, s->nodes, n, tmp) {
        if (now_us - n->touched_us > max_idle_us) {
            HASH_DEL(s->nodes, n);
            free(n);
        }
    }
}

size_t rt_resync_node_count(const rt_resync *s)
{
    return HASH_COUNT(s->nodes);
}
