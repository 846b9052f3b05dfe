/* rt_history: the history scripts, their arguments and replies, and the resync rule. */
#include "rt_history.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "rt_kinds.h"
#include "rt_lua.h"
#include "rt_script.h"
#include "wsg_num.h"
#include "wsg_pb.h"
#include "wsg_time.h"

/* The Lua is in router-svc/lua/history_*.lua (keys, arguments and replies in each file's
 * header), embedded at build time; the scripts share history_prelude.lua. */
const char *const rt_hist_scripts[RT_HSCRIPT__COUNT] = {
    [RT_HSCRIPT_APPEND] = RT_LUA_HISTORY_PRELUDE RT_LUA_HISTORY_APPEND,
    [RT_HSCRIPT_READ] = RT_LUA_HISTORY_PRELUDE RT_LUA_HISTORY_READ,
    [RT_HSCRIPT_VOID] = RT_LUA_HISTORY_PRELUDE RT_LUA_HISTORY_VOID,
    [RT_HSCRIPT_SEEN] = RT_LUA_HISTORY_PRELUDE RT_LUA_HISTORY_SEEN,
};

uint64_t rt_hist_epoch_candidate(void)
{
    uint64_t v = 0;
    while (v == 0) {
        if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
            v = (uint64_t)wsg_now_us(); /* getrandom does not fail on Linux; be safe anyway */
        v &= RT_HIST_EPOCH_MAX;
    }
    return v;
}

/* The stream's tag and name arguments, for a kind the router knows and a valid name. */
static int stream_args(rt_cmd *a, unsigned kind, const char *name)
{
    if (!rt_kind_known(kind) || !wsg_stream_name_valid(kind, name))
        return -1;
    return rt_cmd_adds(a, wsg_stream_tag(kind)) || rt_cmd_adds(a, name ? name : "") ? -1 : 0;
}

static const char *flag(int v)
{
    return v ? "1" : "0";
}

void rt_hist_limits_of(const rt_hist_limits *l, unsigned kind, const char *name,
                       uint64_t *max_len, int64_t *ttl_ms)
{
    *max_len = l->max_len;
    *ttl_ms = l->ttl_ms;
    if (!rt_kind_ns_history(kind) || !l->namespaces || !name)
        return;
    const wsg_ns *ns = wsg_ns_find(l->namespaces, name, strlen(name));
    if (!ns)
        return; /* not a channel anyone may use: nothing is appended to it; reads see none */
    if (ns->history_size)
        *max_len = ns->history_size;
    if (ns->history_ttl_ms > 0)
        *ttl_ms = ns->history_ttl_ms;
}

int rt_hist_append_args(rt_cmd *a, const char *prefix, const rt_frame *f, int64_t created_us,
                        const char *job_id, uint64_t appends_seen, const rt_hist_shard *sh)
{
    char *pre;
    size_t pre_len, post_len;
    const char *post;
    if (rt_frame_halves(f, &pre, &pre_len, &post, &post_len))
        return -1;
    int rc = rt_cmd_adds(a, prefix) ||
             rt_cmd_addf(a, "%" PRIu64, sh ? sh->epoch : rt_hist_epoch_candidate()) ||
             rt_cmd_add(a, pre, pre_len) || rt_cmd_add(a, post, post_len) ||
             rt_cmd_addf(a, "%" PRId64, created_us) || rt_cmd_adds(a, job_id) ||
             rt_cmd_addf(a, "%" PRIu64, appends_seen) ||
             (sh ? rt_cmd_addf(a, "%" PRIu64, sh->gen_seen) : rt_cmd_adds(a, ""));
    free(pre);
    return rc ? -1 : 0;
}

int rt_hist_append_next(rt_cmd *a, const rt_frame *f, int64_t created_us, const char *job_id)
{
    char *pre;
    size_t pre_len, post_len;
    const char *post;
    if (rt_frame_halves(f, &pre, &pre_len, &post, &post_len))
        return -1;
    /* the marker block: an empty tag (no stream has one), then the message's own fields */
    int rc = rt_cmd_adds(a, "") || rt_cmd_add(a, pre, pre_len) || rt_cmd_add(a, post, post_len) ||
             rt_cmd_addf(a, "%" PRId64, created_us) || rt_cmd_adds(a, job_id) ||
             rt_cmd_adds(a, "");
    free(pre);
    return rc ? -1 : 0;
}

int rt_hist_append_add(rt_cmd *a, const rt_hist_limits *l, unsigned kind, const char *name,
                       rt_append_mode mode)
{
    int marked = rt_kind_offline_store(kind);
    if (mode == RT_APPEND_SEEN_ONLY && !marked)
        return -1; /* the seen marker is a user's: only for streams kept for a user offline */
    uint64_t max_len;
    int64_t ttl_ms;
    rt_hist_limits_of(l, kind, name, &max_len, &ttl_ms);
    return stream_args(a, kind, name) || rt_cmd_adds(a, flag(marked)) ||
                   rt_cmd_adds(a, mode == RT_APPEND_LIVE        ? "1"
                                  : mode == RT_APPEND_SEEN_ONLY ? "k"
                                                                : "0") ||
                   rt_cmd_addf(a, "%" PRIu64, max_len) || rt_cmd_addf(a, "%" PRId64, ttl_ms)
               ? -1
               : 0;
}

int rt_hist_seen_args(rt_cmd *a, const char *prefix, int64_t ttl_ms)
{
    return rt_cmd_adds(a, prefix) || rt_cmd_addf(a, "%" PRId64, ttl_ms > 0 ? ttl_ms : 1) ? -1
                                                                                        : 0;
}

int rt_hist_void_args(rt_cmd *a, const char *prefix)
{
    return rt_cmd_adds(a, prefix) || rt_cmd_addf(a, "%d", RT_HIST_VOID_DEPTH) ? -1 : 0;
}

int rt_hist_void_add(rt_cmd *a, const rt_hist_limits *l, unsigned kind, const char *name,
                     const char *job_id)
{
    uint64_t max_len;
    int64_t ttl_ms;
    rt_hist_limits_of(l, kind, name, &max_len, &ttl_ms);
    return stream_args(a, kind, name) || rt_cmd_adds(a, job_id) ||
                   rt_cmd_addf(a, "%" PRId64, ttl_ms)
               ? -1
               : 0;
}

static int reply_u64(const redisReply *e, uint64_t *out)
{
    if (e->type == REDIS_REPLY_INTEGER && e->integer >= 0) {
        *out = (uint64_t)e->integer;
        return 0;
    }
    if (e->type == REDIS_REPLY_STRING)
        return wsg_parse_u64(e->str, e->len, out);
    return -1;
}

int rt_hist_parse_append(const redisReply *r, size_t n, uint64_t *epoch, uint64_t *appends,
                         uint64_t *seqs)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n + 2 ||
        reply_u64(r->element[0], epoch) || *epoch == 0 || reply_u64(r->element[1], appends) ||
        *appends == 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (reply_u64(r->element[2 + i], &seqs[i]))
            return -1;
    return 0;
}

int rt_hist_parse_void(const redisReply *r, size_t n, uint64_t *seqs)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (reply_u64(r->element[i], &seqs[i]))
            return -1;
    return 0;
}

/* Copies a stream named by a message into out, if the router knows its kind and the name is
 * valid for it (the name becomes part of Redis key names). 0 / -1. */
static int stream_take(unsigned kind, const char *name, rt_hist_stream *out)
{
    size_t n = strlen(name);
    if (!rt_kind_known(kind) || n > WSG_STREAM_NAME_MAX || !wsg_stream_name_valid(kind, name))
        return -1;
    out->kind = (Wsgate__StreamKind)kind;
    memcpy(out->name, name, n + 1);
    return 0;
}

static int same_stream(const rt_hist_stream *a, unsigned kind, const char *name)
{
    return a->kind == (Wsgate__StreamKind)kind && !strcmp(a->name, name);
}

/* heads_of, then with_broadcast_head (older gateways) as one more head unless heads_of named
 * that stream already. */
static int heads_take(const Wsgate__HistoryRequest *rq, rt_hist_req *q)
{
    if (rq->n_heads_of > RT_HIST_HEADS_MAX)
        return -1;
    for (size_t i = 0; i < rq->n_heads_of; i++) {
        const Wsgate__StreamRef *h = rq->heads_of[i];
        if (!h || stream_take((unsigned)h->kind, h->name ? h->name : "", &q->heads[q->nheads]))
            return -1;
        q->nheads++;
    }
    if (!rq->with_broadcast_head)
        return 0;
    for (size_t i = 0; i < q->nheads; i++)
        if (same_stream(&q->heads[i], RT_LEGACY_HEAD_KIND, "")) {
            q->legacy_head = i + 1;
            return 0;
        }
    if (q->nheads == RT_HIST_HEADS_MAX ||
        stream_take(RT_LEGACY_HEAD_KIND, "", &q->heads[q->nheads]))
        return -1;
    q->legacy_head = ++q->nheads;
    return 0;
}

rt_hreq_status rt_hist_req_parse(const uint8_t *msg, size_t len, uint32_t page, rt_hist_req *q)
{
    memset(q, 0, sizeof(*q));
    Wsgate__HistoryRequest *rq = wsgate__history_request__unpack(NULL, len, msg);
    if (!rq)
        return RT_HREQ_DECODE;
    rt_hreq_status st = RT_HREQ_BAD;
    rt_hist_stream s;
    if (stream_take((unsigned)rq->stream,
                    rt_stream_name_of((unsigned)rq->stream, rq->stream_name, rq->user_id), &s) ||
        heads_take(rq, q))
        goto out;
    q->kind = s.kind;
    memcpy(q->name, s.name, sizeof(q->name));
    /* only a stream that keeps a delivered mark has one to move */
    q->mark = rq->mark_delivered && rt_kind_offline_store(s.kind) ? 1 : 0;
    q->has_after = rq->has_after ? 1 : 0;
    q->after = rq->after_seq;
    q->epoch = rq->epoch;
    q->until = rq->until_seq;
    q->max_items = rq->max_items == 0 || rq->max_items > page ? page : rq->max_items;
    if (q->max_items == 0)
        goto out;
    st = RT_HREQ_OK;
out:
    wsgate__history_request__free_unpacked(rq, NULL);
    return st;
}

int rt_hist_req_uses_mark(const rt_hist_req *q)
{
    return q->mark || (!q->has_after && rt_kind_offline_store(q->kind));
}

void rt_hist_plan_for(const rt_hist_req *q, const rt_hist_view *v, rt_hist_plan *p)
{
    memset(p, 0, sizeof(*p));
    if (!q->has_after && !rt_kind_offline_store(q->kind))
        return; /* no position and no mark to answer after: epoch and head only */
    p->want = 1;
    uint64_t pos = q->has_after ? q->after : v->mark;
    p->resync = (q->has_after && q->epoch != 0 && q->epoch != v->epoch) || pos > v->head ||
                v->first_kept > pos + 1;
    p->from = p->resync ? v->first_kept : pos + 1;
    p->to = q->until > 0 && q->until < v->head ? q->until : v->head;
}

/* A read's arguments. candidate: the epoch offered (the one stated, when sharded). */
static int read_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                     const rt_hist_req *q, size_t max_bytes, uint64_t candidate, int sharded)
{
    uint64_t max_len;
    int64_t ttl_ms;
    rt_hist_limits_of(l, q->kind, q->name, &max_len, &ttl_ms);
    if (q->nheads > RT_HIST_HEADS_MAX || rt_cmd_adds(a, prefix) ||
        stream_args(a, q->kind, q->name) ||
        rt_cmd_adds(a, flag(rt_kind_offline_store(q->kind))) ||
        rt_cmd_adds(a, flag(q->has_after)) || rt_cmd_addf(a, "%" PRIu64, q->after) ||
        rt_cmd_addf(a, "%" PRIu64, q->epoch) || rt_cmd_addf(a, "%" PRIu64, q->until) ||
        rt_cmd_addf(a, "%" PRIu32, q->max_items) || rt_cmd_addf(a, "%zu", max_bytes) ||
        rt_cmd_adds(a, flag(q->mark)) || rt_cmd_addf(a, "%" PRId64, ttl_ms) ||
        rt_cmd_addf(a, "%" PRIu64, candidate) || rt_cmd_addf(a, "%zu", q->nheads) ||
        rt_cmd_adds(a, sharded ? "1" : ""))
        return -1;
    for (size_t i = 0; i < q->nheads; i++)
        if (stream_args(a, q->heads[i].kind, q->heads[i].name))
            return -1;
    return 0;
}

int rt_hist_epoch_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                       uint64_t candidate)
{
    /* the broadcast stream without a position: epoch and head only, nothing moved (with its
     * own TTL: the registry's Redis may be a shard too, whose broadcast history this is) */
    rt_hist_req q = {.kind = WSGATE__STREAM_KIND__STREAM_BROADCAST, .max_items = 1};
    return read_args(a, prefix, l, &q, 1, candidate ? candidate : rt_hist_epoch_candidate(), 0);
}

int rt_hist_read_args(rt_cmd *a, const char *prefix, const rt_hist_limits *l,
                      const rt_hist_req *q, size_t max_bytes, const rt_hist_shard *sh)
{
    return read_args(a, prefix, l, q, max_bytes, sh ? sh->epoch : rt_hist_epoch_candidate(),
                     sh != NULL);
}

int rt_hist_parse_read(const redisReply *r, size_t nheads, rt_hist_page *p)
{
    memset(p, 0, sizeof(*p));
    uint64_t first, resync, more, n;
    if (nheads > RT_HIST_HEADS_MAX || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 6 ||
        reply_u64(r->element[0], &p->epoch) || p->epoch == 0 ||
        reply_u64(r->element[1], &p->head) || reply_u64(r->element[2], &first) ||
        reply_u64(r->element[3], &resync) || reply_u64(r->element[4], &more) || resync > 1 ||
        more > 1 || reply_u64(r->element[5], &n) || n != nheads ||
        r->elements < 6 + nheads || (r->elements - 6 - nheads) % 3 != 0)
        return -1;
    for (size_t i = 0; i < nheads; i++)
        if (reply_u64(r->element[6 + i], &p->heads[i]))
            return -1;
    p->nheads = nheads;
    p->resync = (int)resync;
    p->more = (int)more;
    size_t base = 6 + nheads;
    p->n = (r->elements - base) / 3;
    if (p->n == 0)
        return 0;
    p->items = calloc(p->n, sizeof(*p->items));
    if (!p->items)
        return -1;
    uint64_t prev = 0;
    for (size_t i = 0; i < p->n; i++) {
        redisReply *const *e = &r->element[base + 3 * i];
        uint64_t created;
        rt_hist_item *it = &p->items[i];
        if (reply_u64(e[0], &it->seq) || it->seq <= prev || it->seq > p->head ||
            e[1]->type != REDIS_REPLY_STRING || reply_u64(e[2], &created) ||
            created > INT64_MAX) {
            rt_hist_page_free(p);
            return -1;
        }
        prev = it->seq;
        it->data = (const uint8_t *)e[1]->str;
        it->len = e[1]->len;
        it->created_us = (int64_t)created;
    }
    return 0;
}

void rt_hist_page_free(rt_hist_page *p)
{
    free(p->items);
    p->items = NULL;
    p->n = 0;
}

int rt_hist_reply_pack(Wsgate__HistoryReply__Status st, const rt_hist_req *q,
                       const rt_hist_page *p, uint8_t **buf, size_t *len)
{
    Wsgate__HistoryReply rp = WSGATE__HISTORY_REPLY__INIT;
    Wsgate__HistoryItem *items = NULL;
    Wsgate__HistoryItem **ptrs = NULL;
    Wsgate__StreamHead heads[RT_HIST_HEADS_MAX];
    Wsgate__StreamHead *hptrs[RT_HIST_HEADS_MAX];
    rp.status = st;
    if (p) {
        rp.epoch = p->epoch;
        rp.head = p->head;
        rp.resync = p->resync;
        rp.more = p->more;
        size_t nh = q && q->nheads == p->nheads ? p->nheads : 0;
        for (size_t i = 0; i < nh; i++) {
            wsgate__stream_head__init(&heads[i]);
            heads[i].kind = q->heads[i].kind;
            heads[i].name = (char *)q->heads[i].name;
            heads[i].head = p->heads[i];
            hptrs[i] = &heads[i];
        }
        rp.n_heads = nh;
        rp.heads = nh ? hptrs : NULL;
        if (q && q->legacy_head && q->legacy_head <= nh) {
            rp.has_broadcast_head = 1;
            rp.broadcast_head = p->heads[q->legacy_head - 1];
        }
        if (p->n) {
            items = calloc(p->n, sizeof(*items));
            ptrs = calloc(p->n, sizeof(*ptrs));
            if (!items || !ptrs) {
                free(items);
                free(ptrs);
                return -1;
            }
            for (size_t i = 0; i < p->n; i++) {
                wsgate__history_item__init(&items[i]);
                items[i].seq = p->items[i].seq;
                items[i].payload.data = (uint8_t *)p->items[i].data;
                items[i].payload.len = p->items[i].len;
                items[i].created_at_us = p->items[i].created_us;
                ptrs[i] = &items[i];
            }
            rp.n_items = p->n;
            rp.items = ptrs;
        }
    }
    int rc = wsg_pb_pack(&rp.base, buf, len);
    free(items);
    free(ptrs);
    return rc;
}
