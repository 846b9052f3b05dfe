/* rt_batch: per-node queues of NodeDelivery "envelopes" under construction. */
#include "rt_batch.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "proto/wsgate.pb-c.h"
#include "rt_kinds.h"
#include "wsg_pb.h"
#include "wsg_subject.h"

/* Rough packed cost of an item and of one conn id, for the byte limit. */
#define ITEM_OVERHEAD 48
#define CONN_ID_BYTES 10

typedef struct blob {
    struct blob *next;
    size_t len;
    int64_t created_at_us;
    int kind;
    char *name;    /* inside data, after the payload ("" when none) */
    char *channel; /* inside data, after the name ("" when none) */
    const char *legacy_user; /* Item.user_id: name for a user stream, else "" */
    uint64_t seq, epoch;
    uint32_t close_code;     /* not 0: a close order (Item.close_code) */
    char *close_reason;      /* inside data, after the channel ("" when none) */
    uint8_t data[];
} blob;

typedef struct item {
    const blob *payload;
    uint64_t *conn_ids;
    size_t n_conn_ids, cap_conn_ids;
    int all;
} item;

typedef struct envelope {
    struct envelope *next;
    uint64_t epoch;
    item *items;
    size_t n, cap;
    size_t bytes;
} envelope;

typedef struct nodeq {
    UT_hash_handle hh;
    char id[WSG_NODE_ID_MAX + 1];
    envelope *head, *tail;
    uint64_t msg;    /* the message the tail's last item belongs to */
} nodeq;

struct rt_batch {
    size_t max_items, max_bytes;
    nodeq *nodes;
    blob *blobs;
    blob *cur;       /* current message, NULL if begin failed */
    uint64_t msg;    /* current message number, from 1 */
    size_t pending;
};

rt_batch *rt_batch_new(size_t max_items, size_t max_bytes)
{
    rt_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->max_items = max_items ? max_items : 1;
    b->max_bytes = max_bytes;
    return b;
}

static void clear(rt_batch *b)
{
    nodeq *q, *tmp;
    HASH_ITER(hh, b->nodes, q, tmp) {
        HASH_DEL(b->nodes, q);
        envelope *e = q->head;
        while (e) {
            envelope *next = e->next;
            for (size_t i = 0; i < e->n; i++)
                free(e->items[i].conn_ids);
            free(e->items);
            free(e);
            e = next;
        }
        free(q);
    }
    while (b->blobs) {
        blob *next = b->blobs->next;
        free(b->blobs);
        b->blobs = next;
    }
    b->cur = NULL;
    b->pending = 0;
}

void rt_batch_free(rt_batch *b)
{
    if (!b)
        return;
    clear(b);
    free(b);
}

int rt_batch_begin(rt_batch *b, const void *payload, size_t len, int64_t created_at_us)
{
    return rt_batch_begin_pos(b, payload, len, created_at_us, NULL);
}

static int begin(rt_batch *b, const void *payload, size_t len, int64_t created_at_us,
                 const rt_batch_pos *pos, uint32_t close_code, const char *close_reason)
{
    b->msg++;
    b->cur = NULL;
    const char *name = pos && pos->name ? pos->name : "";
    const char *channel = pos && pos->channel ? pos->channel : "";
    const char *reason = close_reason ? close_reason : "";
    size_t nlen = strlen(name) + 1, clen = strlen(channel) + 1, rlen = strlen(reason) + 1;
    blob *bl = malloc(sizeof(*bl) + len + nlen + clen + rlen);
    if (!bl)
        return -1;
    bl->close_code = close_code;
    bl->len = len;
    bl->created_at_us = created_at_us;
    bl->kind = pos ? pos->kind : WSGATE__STREAM_KIND__STREAM_NONE;
    bl->seq = pos ? pos->seq : 0;
    bl->epoch = pos ? pos->epoch : 0;
    if (len)
        memcpy(bl->data, payload, len);
    bl->name = (char *)bl->data + len;
    memcpy(bl->name, name, nlen);
    bl->channel = bl->name + nlen;
    memcpy(bl->channel, channel, clen);
    bl->close_reason = bl->channel + clen;
    memcpy(bl->close_reason, reason, rlen);
    bl->legacy_user = rt_stream_legacy_user_id((unsigned)bl->kind, bl->name);
    bl->next = b->blobs;
    b->blobs = bl;
    b->cur = bl;
    b->pending += len;
    return 0;
}

int rt_batch_begin_pos(rt_batch *b, const void *payload, size_t len, int64_t created_at_us,
                       const rt_batch_pos *pos)
{
    return begin(b, payload, len, created_at_us, pos, 0, NULL);
}

int rt_batch_begin_close(rt_batch *b, uint32_t code, const char *reason, int64_t now_us)
{
    if (code == 0)
        return -1; /* 0 means "not a close order" on the wire */
    return begin(b, NULL, 0, now_us, NULL, code, reason);
}

static nodeq *node_get(rt_batch *b, const char *node_id)
{
    nodeq *q;
    HASH_FIND_STR(b->nodes, node_id, q);
    if (q)
        return q;
    size_t n = strlen(node_id);
    if (n == 0 || n > WSG_NODE_ID_MAX)
        return NULL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    memcpy(q->id, node_id, n + 1);
    HASH_ADD_STR(b->nodes, id, q);
    return q;
}

static envelope *envelope_new(nodeq *q, uint64_t epoch)
{
    envelope *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->epoch = epoch;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    return e;
}

static int conn_push(rt_batch *b, envelope *e, item *it, uint64_t conn_id)
{
    if (it->n_conn_ids == it->cap_conn_ids) {
        size_t cap = it->cap_conn_ids ? it->cap_conn_ids * 2 : 4;
        uint64_t *v = realloc(it->conn_ids, cap * sizeof(*v));
        if (!v)
            return -1;
        it->conn_ids = v;
        it->cap_conn_ids = cap;
    }
    it->conn_ids[it->n_conn_ids++] = conn_id;
    e->bytes += CONN_ID_BYTES;
    b->pending += CONN_ID_BYTES;
    return 0;
}

/* A new item for the current message, in the tail envelope if it still has room. */
static item *item_new(rt_batch *b, nodeq *q, uint64_t epoch, envelope **env)
{
    size_t cost = b->cur->len + ITEM_OVERHEAD + strlen(b->cur->name) +
                  strlen(b->cur->legacy_user) + strlen(b->cur->channel) +
                  strlen(b->cur->close_reason);
    envelope *e = q->tail;
    if (!e || e->epoch != epoch || e->n >= b->max_items ||
        (e->n > 0 && e->bytes + cost > b->max_bytes)) {
        e = envelope_new(q, epoch);
        if (!e)
            return NULL;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        item *v = realloc(e->items, cap * sizeof(*v));
        if (!v)
            return NULL;
        e->items = v;
        e->cap = cap;
    }
    item *it = &e->items[e->n++];
    memset(it, 0, sizeof(*it));
    it->payload = b->cur;
    e->bytes += cost;
    b->pending += ITEM_OVERHEAD;
    q->msg = b->msg;
    *env = e;
    return it;
}

/* The current message's item on this node, if the tail envelope still holds it. */
static item *item_current(rt_batch *b, nodeq *q, uint64_t epoch)
{
    envelope *e = q->tail;
    if (!e || q->msg != b->msg || e->epoch != epoch || e->n == 0)
        return NULL;
    return &e->items[e->n - 1];
}

int rt_batch_add_conn(rt_batch *b, const char *node_id, uint64_t epoch, uint64_t conn_id)
{
    if (!b->cur || *b->cur->channel)
        return -1; /* a channel's message goes to subscribers only (the gateway ignores ids) */
    nodeq *q = node_get(b, node_id);
    if (!q)
        return -1;
    item *it = item_current(b, q, epoch);
    if (it && it->all)
        return 0;
    envelope *e = q->tail;
    if (it && (it->n_conn_ids == 0 || e->bytes + CONN_ID_BYTES <= b->max_bytes))
        return conn_push(b, e, it, conn_id);
    if (it) {
        /* the item outgrew its envelope: carry on in a new one, same payload */
        if (!envelope_new(q, epoch))
            return -1;
    }
    it = item_new(b, q, epoch, &e);
    if (!it)
        return -1;
    return conn_push(b, e, it, conn_id);
}

int rt_batch_add_all(rt_batch *b, const char *node_id, uint64_t epoch)
{
    if (!b->cur || *b->cur->channel || b->cur->close_code)
        return -1;
    nodeq *q = node_get(b, node_id);
    if (!q)
        return -1;
    item *it = item_current(b, q, epoch);
    envelope *e;
    if (!it && !(it = item_new(b, q, epoch, &e)))
        return -1;
    it->all = 1;
    return 0;
}

int rt_batch_add_subscribers(rt_batch *b, const char *node_id, uint64_t epoch)
{
    if (!b->cur || !*b->cur->channel || b->cur->close_code)
        return -1;
    nodeq *q = node_get(b, node_id);
    if (!q)
        return -1;
    envelope *e;
    if (item_current(b, q, epoch) || item_new(b, q, epoch, &e))
        return 0; /* once per node: the gateway finds the subscribers itself */
    return -1;
}

size_t rt_batch_pending_bytes(const rt_batch *b)
{
    return b->pending;
}

static int publish_envelope(const nodeq *q, const envelope *e, rt_batch_publish_fn fn, void *arg)
{
    Wsgate__NodeDelivery nd = WSGATE__NODE_DELIVERY__INIT;
    Wsgate__NodeDelivery__Item *items = calloc(e->n, sizeof(*items));
    Wsgate__NodeDelivery__Item **ptrs = calloc(e->n, sizeof(*ptrs));
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = -1;
    if (!items || !ptrs)
        goto out;
    for (size_t i = 0; i < e->n; i++) {
        const item *it = &e->items[i];
        wsgate__node_delivery__item__init(&items[i]);
        items[i].payload.data = (uint8_t *)it->payload->data;
        items[i].payload.len = it->payload->len;
        items[i].all = it->all ? 1 : 0;
        if (!it->all) {
            items[i].conn_ids = it->conn_ids;
            items[i].n_conn_ids = it->n_conn_ids;
        }
        items[i].created_at_us = it->payload->created_at_us;
        items[i].stream = (Wsgate__StreamKind)it->payload->kind;
        items[i].stream_name = it->payload->name;
        items[i].user_id = (char *)it->payload->legacy_user;
        items[i].seq = it->payload->seq;
        items[i].epoch = it->payload->epoch;
        items[i].channel = it->payload->channel;
        items[i].close_code = it->payload->close_code;
        items[i].close_reason = it->payload->close_reason;
        ptrs[i] = &items[i];
    }
    nd.node_id = (char *)q->id;
    nd.node_epoch = e->epoch;
    nd.n_items = e->n;
    nd.items = ptrs;
    if (wsg_pb_pack(&nd.base, &buf, &len))
        goto out;
    rc = fn(q->id, buf, len, arg);
out:
    free(buf);
    free(ptrs);
    free(items);
    return rc;
}

size_t rt_batch_flush(rt_batch *b, rt_batch_publish_fn fn, void *arg, size_t *failed)
{
    size_t ok = 0, bad = 0;
    for (nodeq *q = b->nodes; q; q = q->hh.next)
        for (envelope *e = q->head; e; e = e->next) {
            if (e->n == 0)
                continue;
            if (publish_envelope(q, e, fn, arg) == 0)
                ok++;
            else
                bad++;
        }
    clear(b);
    if (failed)
        *failed = bad;
    return ok;
}
