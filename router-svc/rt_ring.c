/* rt_ring: a circular array of owned items. */
#include "rt_ring.h"

#include <stdlib.h>
#include <string.h>

typedef struct ring_item {
    uint64_t seq;
    int64_t created_us, at_us;
    size_t len;
    uint8_t data[];
} ring_item;

struct rt_ring {
    Wsgate__StreamKind kind;
    char name[WSG_STREAM_NAME_MAX + 1];
    ring_item **v;
    size_t cap, start, n; /* v[start] holds the oldest item */
    size_t bytes, max_bytes;
    int64_t ttl_us;
    uint64_t epoch;       /* 0: nothing known */
    uint64_t head;        /* newest seq known (items may be empty when all expired) */
    int complete;
};

rt_ring *rt_ring_new(Wsgate__StreamKind kind, const char *name, size_t cap, size_t max_bytes,
                     int64_t ttl_us)
{
    size_t nlen = name ? strlen(name) : 0;
    if (cap == 0 || nlen > WSG_STREAM_NAME_MAX)
        return NULL;
    rt_ring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->kind = kind;
    if (nlen)
        memcpy(r->name, name, nlen);
    r->v = calloc(cap, sizeof(*r->v));
    if (!r->v) {
        free(r);
        return NULL;
    }
    r->cap = cap;
    r->max_bytes = max_bytes;
    r->ttl_us = ttl_us;
    return r;
}

static ring_item *at(const rt_ring *r, size_t i)
{
    return r->v[(r->start + i) % r->cap];
}

static void drop_oldest(rt_ring *r)
{
    r->bytes -= r->v[r->start]->len;
    free(r->v[r->start]);
    r->v[r->start] = NULL;
    r->start = (r->start + 1) % r->cap;
    r->n--;
}

void rt_ring_clear(rt_ring *r)
{
    while (r->n)
        drop_oldest(r);
    r->start = 0;
    r->epoch = 0;
    r->head = 0;
    r->complete = 0;
}

void rt_ring_free(rt_ring *r)
{
    if (!r)
        return;
    rt_ring_clear(r);
    free(r->v);
    free(r);
}

static int append(rt_ring *r, uint64_t seq, const void *data, size_t len, int64_t created_us,
                  int64_t at_us)
{
    ring_item *it = malloc(sizeof(*it) + len);
    if (!it)
        return -1;
    it->seq = seq;
    it->created_us = created_us;
    it->at_us = at_us;
    it->len = len;
    if (len)
        memcpy(it->data, data, len);
    if (r->n == r->cap)
        drop_oldest(r); /* as MAXLEN does in Redis: still the whole stream */
    while (r->n && r->bytes + len > r->max_bytes) {
        drop_oldest(r); /* Redis keeps more than this ring now */
        r->complete = 0;
    }
    r->v[(r->start + r->n) % r->cap] = it;
    r->n++;
    r->bytes += len;
    r->head = seq;
    return 0;
}

int rt_ring_load(rt_ring *r, const rt_hist_page *p, int64_t at_us)
{
    rt_ring_clear(r);
    if (p->more || p->epoch == 0)
        return 0; /* not the whole stream: know nothing rather than something wrong */
    for (size_t i = 0; i < p->n; i++)
        if (append(r, p->items[i].seq, p->items[i].data, p->items[i].len,
                   p->items[i].created_us, at_us)) {
            rt_ring_clear(r);
            return -1;
        }
    r->epoch = p->epoch;
    r->head = p->head;
    /* items must run contiguously up to the head for the ring to stand for the stream */
    r->complete = r->n == 0 || (at(r, r->n - 1)->seq == p->head &&
                                p->head - at(r, 0)->seq + 1 == r->n);
    if (!r->complete)
        rt_ring_clear(r);
    return 0;
}

int rt_ring_push(rt_ring *r, uint64_t epoch, uint64_t seq, const void *data, size_t len,
                 int64_t created_us, int64_t at_us)
{
    if (epoch != r->epoch || seq != r->head + 1) {
        rt_ring_clear(r); /* incomplete from here on */
        r->epoch = epoch;
    }
    if (append(r, seq, data, len, created_us, at_us)) {
        rt_ring_clear(r);
        return -1;
    }
    return 0;
}

/* Items older than the TTL count as gone, as in Redis. */
static void expire(rt_ring *r, int64_t now_us)
{
    while (r->n && now_us - at(r, 0)->at_us > r->ttl_us)
        drop_oldest(r);
}

int rt_ring_serve(rt_ring *r, const rt_hist_req *q, size_t max_bytes, int64_t now_us,
                  rt_hist_page *page)
{
    memset(page, 0, sizeof(*page));
    if (!rt_ring_is(r, q->kind, q->name) || r->epoch == 0 || rt_hist_req_uses_mark(q))
        return 0;
    for (size_t i = 0; i < q->nheads; i++)
        if (!rt_ring_is(r, q->heads[i].kind, q->heads[i].name))
            return 0; /* another stream's head: Redis reads it with the page, at one moment */
    expire(r, now_us);
    rt_hist_view v = {.epoch = r->epoch, .head = r->head};
    v.first_kept = r->n ? at(r, 0)->seq : r->head + 1;
    rt_hist_plan plan;
    rt_hist_plan_for(q, &v, &plan);
    /* A position past our head may be another replica's newer item, and so may seqs up to an
     * `until` past it (a gap repair: the gateway holds a newer seq, which another replica
     * may have appended); one before our first item is only answered by a ring that holds
     * everything Redis keeps. */
    if (plan.want && (q->after > r->head || q->until > r->head || (plan.resync && !r->complete)))
        return 0;
    page->epoch = r->epoch;
    page->head = r->head;
    page->resync = plan.resync;
    page->nheads = q->nheads;
    for (size_t i = 0; i < q->nheads; i++)
        page->heads[i] = r->head;
    if (!plan.want || plan.from > plan.to)
        return 1;
    size_t first = (size_t)(plan.from - v.first_kept);
    size_t avail = (size_t)(plan.to - plan.from + 1);
    size_t n = avail < q->max_items ? avail : q->max_items;
    page->items = calloc(n, sizeof(*page->items));
    if (!page->items)
        return -1;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const ring_item *it = at(r, first + i);
        if (i > 0 && bytes + it->len > max_bytes)
            break;
        bytes += it->len;
        page->items[i] = (rt_hist_item){.seq = it->seq, .data = it->data, .len = it->len,
                                        .created_us = it->created_us};
        page->n++;
    }
    page->more = page->n < avail;
    return 1;
}

Wsgate__StreamKind rt_ring_kind(const rt_ring *r)
{
    return r->kind;
}

const char *rt_ring_name(const rt_ring *r)
{
    return r->name;
}

int rt_ring_is(const rt_ring *r, unsigned kind, const char *name)
{
    return r->kind == (Wsgate__StreamKind)kind && !strcmp(r->name, name ? name : "");
}

size_t rt_ring_len(const rt_ring *r)
{
    return r->n;
}

uint64_t rt_ring_head(const rt_ring *r)
{
    return r->head;
}

int rt_ring_complete(const rt_ring *r)
{
    return r->complete;
}
