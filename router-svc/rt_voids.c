/* rt_voids: the uncertain appends (rt_uncertain) and the void script calls that settle them,
 * on the router's main thread. */
#include "rt_voids.h"

#include <inttypes.h>
#include <stdlib.h>

#include "proto/wsgate.pb-c.h"
#include "rt_metrics.h"
#include "rt_script.h"
#include "rt_uncertain.h"
#include "wsg_log.h"
#include "wsg_stream.h"

/* undone appends remembered for voiding, at most (beyond: counted, logged once) */
#define UNCERTAIN_MAX 100000
/* streams per void script call, and void calls in flight: each call stays short for Redis,
 * and the first calls after a reconnect run before newer appends */
#define VOID_BATCH 64
#define VOID_INFLIGHT 4

/* One history store's (one without shards, else one per shard): appends handed back undone,
 * to be voided in history if its Redis stored them after all. */
typedef struct void_store {
    rt_uncertain *unc;
    size_t inflight;
} void_store;

struct rt_voids {
    rt_ctx *c;
    rt_hist_serve *hs;
    void_store *st;
    size_t nst;
    int full_logged;
};

/* What a void call remembers while the store runs it: the uncertain appends it looks for. */
typedef struct void_op {
    rt_voids *v;
    size_t shard;
    rt_unc_entry *unc;
    size_t nunc;
} void_op;

static void count(rt_voids *v, size_t id)
{
    rt_ctx_count(v->c, id);
}

static void keep(rt_voids *v, Wsgate__StreamKind kind, const char *name, const char *job_id)
{
    size_t shard = rt_ctx_shard_of(v->c, kind, name);
    rt_unc_status st = rt_unc_add(v->st[shard < v->nst ? shard : 0].unc, kind, name, job_id);
    if (st == RT_UNC_KEPT)
        return;
    if (st == RT_UNC_NOMEM) {
        count(v, RT_M_INTERNAL_ERRORS);
        return;
    }
    count(v, RT_M_HISTORY_UNCERTAIN_DROPPED);
    if (!v->full_logged)
        wsg_warn("history_uncertain_full", "max=%d reason=\"undone appends beyond this are "
                 "not voided: a stored copy may be delivered twice\"", UNCERTAIN_MAX);
    v->full_logged = 1;
}

static size_t uncertain(const rt_voids *v)
{
    size_t n = 0;
    for (size_t i = 0; i < v->nst; i++)
        n += rt_unc_len(v->st[i].unc);
    return n;
}

static void gauge(rt_voids *v)
{
    wsg_metrics_set(v->c->m, RT_M_HISTORY_UNCERTAIN, (int64_t)uncertain(v));
}

/* Redis may have stored them all the same (the reply was lost), so they are voided once Redis
 * is back. */
void rt_voids_remember(rt_voids *v, const rt_job *j, size_t first, size_t n, const char *job_id)
{
    for (size_t i = first; i < first + n; i++)
        keep(v, j->parts[i].kind, j->parts[i].name, job_id);
    gauge(v);
}

static void void_op_free(void *p)
{
    void_op *vo = p;
    if (!vo)
        return;
    for (size_t i = 0; i < vo->nunc; i++)
        rt_unc_entry_clear(&vo->unc[i]);
    free(vo->unc);
    free(vo);
}

static void on_voided(void *arg, rt_store_op *op)
{
    void_op *vo = arg;
    rt_voids *v = vo->v;
    v->st[vo->shard].inflight--;
    if (!op->ran) {
        for (size_t i = 0; i < vo->nunc; i++)
            keep(v, vo->unc[i].kind, vo->unc[i].name, vo->unc[i].job_id);
        gauge(v);
        return; /* the tick tries again once Redis is connected */
    }
    uint64_t seqs[VOID_BATCH];
    if (vo->nunc > VOID_BATCH || rt_hist_parse_void(op->reply, vo->nunc, seqs)) {
        /* the script ran: running it again would not answer better */
        wsg_warn("redis_bad_reply", "op=history_void entries=%zu", vo->nunc);
        count(v, RT_M_REDIS_ERRORS);
    } else {
        size_t voided = 0;
        for (size_t i = 0; i < vo->nunc; i++) {
            const rt_unc_entry *e = &vo->unc[i];
            if (!seqs[i])
                continue;
            voided++;
            wsg_info("history_voided", "stream=%s name=\"%s\" seq=%" PRIu64 " job=%s",
                     wsg_stream_label(e->kind), e->name, seqs[i], e->job_id);
            /* the stream's ring may hold the voided item with its payload: Redis answers until
             * the ring is loaded again */
            rt_hist_serve_forget(v->hs, e->kind, e->name);
        }
        wsg_metrics_add(v->c->m, RT_M_HISTORY_VOIDED, (int64_t)voided);
    }
    if (uncertain(v) == 0)
        v->full_logged = 0;
    rt_voids_pump(v);
}

static void pump_store(rt_voids *v, size_t shard);

/* Those the store hands back undone are kept for the next try (the tick, once Redis is
 * connected). */
void rt_voids_pump(rt_voids *v)
{
    for (size_t i = 0; i < v->nst; i++)
        if (rt_store_connected(rt_ctx_hist_store(v->c, i)))
            pump_store(v, i);
    gauge(v);
}

static void pump_store(rt_voids *v, size_t shard)
{
    rt_ctx *c = v->c;
    void_store *vs = &v->st[shard];
    if (atomic_load(&c->stop))
        return; /* kept until the end: a later life's job ids differ, its voids cannot help */
    while (vs->inflight < VOID_INFLIGHT && rt_unc_len(vs->unc) > 0) {
        void_op *vo = calloc(1, sizeof(*vo));
        if (vo && !(vo->unc = calloc(VOID_BATCH, sizeof(*vo->unc)))) {
            free(vo);
            vo = NULL;
        }
        if (vo) {
            vo->v = v;
            vo->shard = shard;
        }
        /* the op owns vo from here (freed with it, or by rt_store_op_script if that fails) */
        rt_store_op *op = vo ? rt_store_op_script(RT_SCRIPT__COUNT + RT_HSCRIPT_VOID, on_voided,
                                                  vo, void_op_free)
                             : NULL;
        if (!op || rt_hist_void_args(&op->args, c->cfg->prefix)) {
            rt_store_op_free(op);
            count(v, RT_M_INTERNAL_ERRORS);
            return;
        }
        vo->nunc = rt_unc_take(vs->unc, vo->unc, VOID_BATCH);
        for (size_t i = 0; i < vo->nunc; i++)
            if (rt_hist_void_add(&op->args, &c->hist, vo->unc[i].kind, vo->unc[i].name,
                                 vo->unc[i].job_id)) {
                /* back to the list (copies: the op frees these) */
                for (size_t k = 0; k < vo->nunc; k++)
                    keep(v, vo->unc[k].kind, vo->unc[k].name, vo->unc[k].job_id);
                rt_store_op_free(op);
                count(v, RT_M_INTERNAL_ERRORS);
                return;
            }
        vs->inflight++;
        rt_ctx_submit_hist(c, shard, op);
    }
}

rt_voids *rt_voids_new(rt_ctx *c, rt_hist_serve *hs)
{
    rt_voids *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->c = c;
    v->hs = hs;
    v->nst = c->nshards ? c->nshards : 1;
    v->st = calloc(v->nst, sizeof(*v->st));
    for (size_t i = 0; v->st && i < v->nst; i++)
        if (!(v->st[i].unc = rt_unc_new(UNCERTAIN_MAX))) {
            rt_voids_free(v);
            return NULL;
        }
    if (!v->st) {
        free(v);
        return NULL;
    }
    return v;
}

void rt_voids_free(rt_voids *v)
{
    if (!v)
        return;
    if (v->st && uncertain(v))
        wsg_warn("history_uncertain_abandoned", "entries=%zu reason=\"stopping before Redis "
                 "could void them\"", uncertain(v));
    for (size_t i = 0; v->st && i < v->nst; i++)
        rt_unc_free(v->st[i].unc);
    free(v->st);
    free(v);
}
