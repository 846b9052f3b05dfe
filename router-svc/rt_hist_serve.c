/* rt_hist_serve: history requests, the streams' rings and their loading, on the router's main
 * thread. */
#include "rt_hist_serve.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_kinds.h"
#include "rt_metrics.h"
#include "rt_ring.h"
#include "rt_script.h"
#include "wsg_log.h"
#include "wsg_time.h"

/* a ring's payload bytes, at most (and what one load may read) */
#define RING_MAX_BYTES (64u * 1024 * 1024)
/* packed HistoryReply bytes per item besides its payload */
#define HIST_ITEM_OVERHEAD 32
/* history reads waiting for Redis, at most; beyond, a request is answered UNAVAILABLE (the
 * gateway retries, or closes an unwelcomed connection with 1012 to reconnect) */
#define READS_MAX 4096

/* One stream's ring and where its loading stands. */
typedef struct ring_slot {
    rt_hist_serve *hs;
    rt_ring *ring;
    int loaded, inflight;
} ring_slot;

struct rt_hist_serve {
    rt_ctx *c;
    ring_slot *slots; /* one per stream kept in memory: a handful, searched in order */
    size_t nslots;
};

/* What a history read remembers while the store runs it: the request (its heads name the
 * reply's) and where the answer goes. With shards, a request whose heads sit on other shards
 * than its stream is one read per shard: the first (the stream's own, with the heads on its
 * shard) and one head read per other shard, joined here; the reply goes out when the last
 * one is back. */
typedef struct read_op {
    rt_hist_serve *hs;
    char *reply;
    rt_hist_req q;
    size_t pending;      /* reads not back yet */
    int failed;
    redisReply *page_reply; /* the stream's own read, kept for its items ... */
    rt_hist_page page;      /* ... which point into it */
    uint64_t heads[RT_HIST_HEADS_MAX]; /* by q's order */
} read_op;

/* One read of a joined request: which of q's heads it answers, in its own order. */
typedef struct read_part {
    read_op *ro;
    int main;            /* the stream's own read */
    size_t idx[RT_HIST_HEADS_MAX];
    size_t n;
} read_part;

static void count(rt_hist_serve *hs, size_t id)
{
    rt_ctx_count(hs->c, id);
}

/* Payload bytes a HistoryReply page may carry. */
static size_t hist_page_bytes(rt_hist_serve *hs)
{
    size_t cap = RT_HIST_REPLY_BYTES;
    int64_t wire = rt_bus_max_payload(hs->c->bus);
    if (wire > 4096 && (size_t)wire - 4096 < cap)
        cap = (size_t)wire - 4096;
    size_t envelope = (size_t)hs->c->hist.page * HIST_ITEM_OVERHEAD;
    return cap > envelope + 65536 ? cap - envelope : 65536;
}

static void reply_history(rt_hist_serve *hs, const char *subject, Wsgate__HistoryReply__Status st,
                          const rt_hist_req *q, const rt_hist_page *p)
{
    uint8_t *buf;
    size_t len;
    if (rt_hist_reply_pack(st, q, p, &buf, &len)) {
        count(hs, RT_M_INTERNAL_ERRORS);
        return;
    }
    rt_bus_publish(hs->c->bus, subject, buf, len);
    free(buf);
    count(hs, st == WSGATE__HISTORY_REPLY__STATUS__BAD_REQUEST   ? RT_M_HISTORY_REQ_BAD_REQUEST
              : st == WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE ? RT_M_HISTORY_REQ_UNAVAILABLE
              : p && p->resync                                   ? RT_M_HISTORY_REQ_RESYNC
                                                                 : RT_M_HISTORY_REQ_OK);
}

static void read_op_free(void *p)
{
    read_op *ro = p;
    if (!ro)
        return;
    if (ro->page_reply) {
        rt_hist_page_free(&ro->page);
        freeReplyObject(ro->page_reply);
    }
    free(ro->reply);
    free(ro);
}

static void read_part_free(void *p)
{
    read_part *rp = p;
    if (!rp)
        return;
    read_op *ro = rp->ro;
    if (ro && --ro->pending == 0)
        read_op_free(ro);
    free(rp);
}

static void on_read(void *arg, rt_store_op *op)
{
    read_op *ro = arg;
    rt_hist_serve *hs = ro->hs;
    rt_hist_page page;
    hs->c->reads_inflight--;
    if (!op->ran) {
        reply_history(hs, ro->reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
        return;
    }
    if (rt_hist_parse_read(op->reply, ro->q.nheads, &page)) {
        wsg_warn("redis_bad_reply", "op=history_read");
        count(hs, RT_M_REDIS_ERRORS);
        reply_history(hs, ro->reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
        return;
    }
    count(hs, RT_M_HISTORY_READS_REDIS);
    reply_history(hs, ro->reply, WSGATE__HISTORY_REPLY__STATUS__OK, &ro->q, &page);
    rt_hist_page_free(&page);
}

/* One read of a request joined across shards is back; the last one answers. */
static void on_read_part(void *arg, rt_store_op *op)
{
    read_part *rp = arg;
    read_op *ro = rp->ro;
    rt_hist_serve *hs = ro->hs;
    rt_hist_page page;
    if (!op->ran) {
        ro->failed = 1;
    } else if (rt_hist_parse_read(op->reply, rp->n, &page)) {
        wsg_warn("redis_bad_reply", "op=history_read");
        count(hs, RT_M_REDIS_ERRORS);
        ro->failed = 1;
    } else {
        for (size_t k = 0; k < rp->n; k++)
            ro->heads[rp->idx[k]] = page.heads[k];
        if (rp->main) { /* its items point into this reply: both kept until the answer */
            ro->page = page;
            ro->page_reply = op->reply;
            op->reply = NULL;
        } else {
            rt_hist_page_free(&page);
        }
    }
    if (ro->pending > 1)
        return; /* read_part_free counts this one down */
    hs->c->reads_inflight--;
    if (ro->failed || !ro->page_reply) {
        reply_history(hs, ro->reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
        return;
    }
    page = ro->page; /* the stream's page, with every shard's heads in q's order */
    page.nheads = ro->q.nheads;
    memcpy(page.heads, ro->heads, sizeof(page.heads));
    count(hs, RT_M_HISTORY_READS_REDIS);
    reply_history(hs, ro->reply, WSGATE__HISTORY_REPLY__STATUS__OK, &ro->q, &page);
}

static ring_slot *slot_of(const rt_hist_serve *hs, unsigned kind, const char *name)
{
    for (size_t i = 0; i < hs->nslots; i++)
        if (rt_ring_is(hs->slots[i].ring, kind, name))
            return &hs->slots[i];
    return NULL;
}

/* A request whose heads sit on other shards than its stream (a connect's user stream and
 * the broadcast stream, say): the stream's read with the heads on its shard, and a head read
 * on each other shard (the broadcast stream without a position: no items, nothing moved, with
 * those heads), answered together by on_read_part. */
static void read_joined(rt_hist_serve *hs, const char *reply, const rt_hist_req *q,
                        size_t shard)
{
    rt_ctx *c = hs->c;
    size_t shard_of[RT_HIST_HEADS_MAX], shards[RT_HIST_HEADS_MAX + 1], nsh = 0;
    shards[nsh++] = shard;
    for (size_t i = 0; i < q->nheads; i++) {
        shard_of[i] = rt_ctx_shard_of(c, q->heads[i].kind, q->heads[i].name);
        size_t k = 0;
        while (k < nsh && shards[k] != shard_of[i])
            k++;
        if (k == nsh)
            shards[nsh++] = shard_of[i];
    }
    read_op *ro = calloc(1, sizeof(*ro));
    if (!ro || !(ro->reply = strdup(reply))) {
        free(ro);
        count(hs, RT_M_INTERNAL_ERRORS);
        reply_history(hs, reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
        return;
    }
    ro->hs = hs;
    ro->q = *q;
    ro->pending = 1; /* this function's own hold: a part freed here must not free ro */
    /* every part is made before any is submitted, so that a failure answers once */
    rt_store_op *ops[RT_HIST_HEADS_MAX + 1] = {0};
    int bad = 0;
    for (size_t k = 0; k < nsh && !bad; k++) {
        read_part *rp = calloc(1, sizeof(*rp));
        if (!rp) {
            bad = 1;
            break;
        }
        rp->ro = ro;
        rp->main = k == 0;
        rt_hist_req part = k == 0 ? *q
                                  : (rt_hist_req){.kind = WSGATE__STREAM_KIND__STREAM_BROADCAST,
                                                  .max_items = 1};
        part.nheads = 0;
        part.legacy_head = 0;
        for (size_t i = 0; i < q->nheads; i++)
            if (shard_of[i] == shards[k]) {
                part.heads[part.nheads++] = q->heads[i];
                rp->idx[rp->n++] = i;
            }
        ro->pending++;
        /* the op owns rp from here (freed with it, or by rt_store_op_script if that fails) */
        ops[k] = rt_store_op_script(RT_SCRIPT__COUNT + RT_HSCRIPT_READ, on_read_part, rp,
                                    read_part_free);
        rt_hist_shard sh;
        if (!ops[k] || rt_hist_read_args(&ops[k]->args, c->cfg->prefix, &c->hist, &part,
                                         k == 0 ? hist_page_bytes(hs) : 1,
                                         rt_ctx_hist_shard(c, shards[k], &sh)))
            bad = 1;
    }
    if (bad) {
        for (size_t k = 0; k < nsh; k++)
            rt_store_op_free(ops[k]);
        count(hs, RT_M_INTERNAL_ERRORS);
        reply_history(hs, reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
    } else {
        c->reads_inflight++;
        /* answered on the loop's later turns (drain_store), never inside this call */
        for (size_t k = 0; k < nsh; k++)
            rt_ctx_submit_hist(c, shards[k], ops[k]);
    }
    if (--ro->pending == 0)
        read_op_free(ro);
}

void rt_hist_serve_request(rt_hist_serve *hs, const natsMsg *msg)
{
    rt_ctx *c = hs->c;
    const char *reply = natsMsg_GetReply(msg);
    if (!reply || !*reply) {
        count(hs, RT_M_HISTORY_REQ_BAD_REQUEST); /* nobody to answer */
        return;
    }
    rt_hist_req q;
    rt_hreq_status st = rt_hist_req_parse((const uint8_t *)natsMsg_GetData(msg),
                                          (size_t)natsMsg_GetDataLength(msg), c->hist.page, &q);
    if (st != RT_HREQ_OK) {
        reply_history(hs, reply, WSGATE__HISTORY_REPLY__STATUS__BAD_REQUEST, NULL, NULL);
        return;
    }
    rt_hist_page page;
    ring_slot *slot = slot_of(hs, q.kind, q.name);
    int served =
        slot ? rt_ring_serve(slot->ring, &q, hist_page_bytes(hs), wsg_now_us(), &page) : 0;
    if (served == 1) {
        count(hs, RT_M_HISTORY_READS_MEMORY);
        reply_history(hs, reply, WSGATE__HISTORY_REPLY__STATUS__OK, &q, &page);
        rt_hist_page_free(&page);
        return;
    }
    if (served < 0)
        count(hs, RT_M_INTERNAL_ERRORS); /* Redis answers instead */
    if (c->reads_inflight >= READS_MAX) {
        rt_ctx_shed(c, RT_QUEUE_READS);
        reply_history(hs, reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
        return;
    }
    if (!rt_ctx_history_ready(c)) {
        reply_history(hs, reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
        return;
    }
    size_t shard = rt_ctx_shard_of(c, q.kind, q.name);
    for (size_t i = 0; i < q.nheads; i++)
        if (rt_ctx_shard_of(c, q.heads[i].kind, q.heads[i].name) != shard) {
            read_joined(hs, reply, &q, shard);
            return;
        }
    read_op *ro = calloc(1, sizeof(*ro));
    if (ro && !(ro->reply = strdup(reply))) {
        free(ro);
        ro = NULL;
    }
    if (ro) {
        ro->hs = hs;
        ro->q = q;
    }
    /* the op owns ro from here (freed with it, or by rt_store_op_script if that fails) */
    rt_store_op *op =
        ro ? rt_store_op_script(RT_SCRIPT__COUNT + RT_HSCRIPT_READ, on_read, ro, read_op_free)
           : NULL;
    rt_hist_shard sh;
    if (!op || rt_hist_read_args(&op->args, c->cfg->prefix, &c->hist, &q, hist_page_bytes(hs),
                                 rt_ctx_hist_shard(c, shard, &sh))) {
        rt_store_op_free(op);
        count(hs, RT_M_INTERNAL_ERRORS);
        reply_history(hs, reply, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL);
        return;
    }
    c->reads_inflight++;
    rt_ctx_submit_hist(c, shard, op);
}

/* ---- the rings ---- */

void rt_hist_serve_note(rt_hist_serve *hs, const rt_job *j)
{
    for (size_t i = 0; i < j->nparts; i++) {
        const rt_part *p = &j->parts[i];
        ring_slot *slot = p->seq ? slot_of(hs, p->kind, p->name) : NULL;
        if (!slot)
            continue;
        size_t len;
        char *text = rt_frame_with_seq(&j->frame, p->seq, &len);
        if (!text || rt_ring_push(slot->ring, p->epoch, p->seq, text, len, j->created_at_us,
                                  wsg_now_us()))
            count(hs, RT_M_INTERNAL_ERRORS);
        free(text);
    }
}

static void slot_forget(ring_slot *slot)
{
    rt_ring_clear(slot->ring);
    slot->loaded = 0;
}

void rt_hist_serve_forget(rt_hist_serve *hs, unsigned kind, const char *name)
{
    ring_slot *slot = slot_of(hs, kind, name);
    if (slot)
        slot_forget(slot);
}

void rt_hist_serve_forget_rings(rt_hist_serve *hs)
{
    for (size_t i = 0; i < hs->nslots; i++)
        slot_forget(&hs->slots[i]);
}

static void on_ring_loaded(void *arg, rt_store_op *op)
{
    ring_slot *slot = arg;
    rt_hist_serve *hs = slot->hs;
    slot->inflight = 0;
    rt_hist_page page;
    if (!op->ran)
        return; /* the next tick tries again */
    if (rt_hist_parse_read(op->reply, 0, &page)) {
        wsg_warn("redis_bad_reply", "op=history_ring_load stream=%s",
                 wsg_stream_label(rt_ring_kind(slot->ring)));
        count(hs, RT_M_REDIS_ERRORS);
        return;
    }
    if (rt_ring_load(slot->ring, &page, wsg_now_us()))
        count(hs, RT_M_INTERNAL_ERRORS);
    else
        slot->loaded = 1;
    wsg_info("history_ring_loaded", "stream=%s name=\"%s\" items=%zu head=%" PRIu64
             " complete=%d", wsg_stream_label(rt_ring_kind(slot->ring)), rt_ring_name(slot->ring),
             rt_ring_len(slot->ring), rt_ring_head(slot->ring), rt_ring_complete(slot->ring));
    rt_hist_page_free(&page);
}

/* Reads the whole stream into its ring, so requests need no Redis read. */
static void slot_load(ring_slot *slot)
{
    rt_ctx *c = slot->hs->c;
    if (slot->loaded || slot->inflight)
        return;
    rt_hist_req q = {.kind = rt_ring_kind(slot->ring),
                     .has_after = 1,
                     .max_items = (uint32_t)c->hist.max_len};
    snprintf(q.name, sizeof(q.name), "%s", rt_ring_name(slot->ring));
    rt_store_op *op =
        rt_store_op_script(RT_SCRIPT__COUNT + RT_HSCRIPT_READ, on_ring_loaded, slot, NULL);
    if (!op || rt_hist_read_args(&op->args, c->cfg->prefix, &c->hist, &q, RING_MAX_BYTES, NULL)) {
        rt_store_op_free(op);
        count(slot->hs, RT_M_INTERNAL_ERRORS);
        return; /* the next tick tries again */
    }
    slot->inflight = 1;
    rt_ctx_submit(c, op);
}

void rt_hist_serve_load_rings(rt_hist_serve *hs)
{
    for (size_t i = 0; i < hs->nslots; i++)
        slot_load(&hs->slots[i]);
}

size_t rt_hist_serve_ring_len(const rt_hist_serve *hs, unsigned kind, const char *name)
{
    const ring_slot *slot = slot_of(hs, kind, name);
    return slot ? rt_ring_len(slot->ring) : 0;
}

rt_hist_serve *rt_hist_serve_new(rt_ctx *c)
{
    rt_hist_serve *hs = calloc(1, sizeof(*hs));
    if (!hs)
        return NULL;
    hs->c = c;
    /* one ring per kind marked `ring` (rt_kinds: such kinds are unnamed, so one stream each) */
    hs->slots = calloc(WSG_STREAM_KINDS, sizeof(*hs->slots));
    if (!hs->slots) {
        rt_hist_serve_free(hs);
        return NULL;
    }
    /* with shards, no ring: a shard's loss shows in its seqs' generation (rt_hist_shard), which
     * only the shard's reads judge */
    for (unsigned k = 1; k < WSG_STREAM_KINDS && !c->nshards; k++) {
        if (!rt_kind_ring(k))
            continue;
        ring_slot *slot = &hs->slots[hs->nslots];
        slot->hs = hs;
        slot->ring = rt_ring_new((Wsgate__StreamKind)k, "", (size_t)c->cfg->history_max,
                                 RING_MAX_BYTES, c->cfg->history_ttl_ms * 1000);
        if (!slot->ring) {
            rt_hist_serve_free(hs);
            return NULL;
        }
        hs->nslots++;
    }
    return hs;
}

void rt_hist_serve_free(rt_hist_serve *hs)
{
    if (!hs)
        return;
    for (size_t i = 0; i < hs->nslots; i++)
        rt_ring_free(hs->slots[i].ring);
    free(hs->slots);
    free(hs);
}
