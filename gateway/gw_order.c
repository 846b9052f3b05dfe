/* gw_order: stream positions, replay and gap repair as pure decisions; see gw_order.h.
 * Every helper that emits actions returns 0 to go on, -1 once the connection stopped (the
 * caller's action said it is no longer open): nothing but DROPs is emitted after that. */
#include "gw_order.h"

#include <stdlib.h>
#include <string.h>

struct gw_order_held {
    uint32_t n, cap;
    gw_order_item it[]; /* a stream's: by seq, no seq twice; early ones: in arrival order */
};

static int act(const gw_order_env *e, gw_order_action a)
{
    return e->act(&a, e->arg) ? -1 : 0;
}

/* A DROP is always performed, whatever state the connection is in: it releases a message. */
static void drop(const gw_order_env *e, int stream, gw_order_item it, gw_order_why why)
{
    gw_order_action a = {.kind = GW_ORDER_DROP, .stream = stream, .item = it, .why = why};
    (void)e->act(&a, e->arg);
}

static void note(const gw_order_env *e, gw_order_kind k, size_t i, unsigned tries)
{
    gw_order_action a = {.kind = k, .stream = (int)i, .tries = (uint8_t)tries};
    (void)e->act(&a, e->arg);
}

static int resync(const gw_order_env *e, size_t i, const char *why)
{
    gw_order_stream *s = &e->s[i];
    return act(e, (gw_order_action){.kind = GW_ORDER_RESYNC, .stream = (int)i,
                                    .epoch = s->epoch, .pos = s->pos, .text = why});
}

static int has_held(const gw_order_held *h) { return h && h->n; }

/* The client knows where stream s stands: the welcome went out, and for a stream added later
 * its SUBSCRIBED too. Before that, everything of the stream is held. */
static int ready(const gw_order *o, const gw_order_stream *s)
{
    return o->welcomed && (s->flags & GW_ORDER_F_FIRST) && !(s->flags & GW_ORDER_F_ANNOUNCE);
}

int gw_order_announced(const gw_order *o, const gw_order_stream *s)
{
    return s->kind && o->welcomed && (s->flags & (GW_ORDER_F_FIRST | GW_ORDER_F_DEGRADED)) &&
           !(s->flags & GW_ORDER_F_ANNOUNCE);
}

/* A stream of the connect (not a free slot, not added later): the welcome waits for it. */
static int of_connect(const gw_order_stream *s)
{
    return s->kind && !(s->flags & GW_ORDER_F_LATE);
}

/* Removes and returns the k-th held item, keeping the byte count. */
static gw_order_item take(gw_order *o, gw_order_held *h, uint32_t k)
{
    gw_order_item it = h->it[k];
    memmove(h->it + k, h->it + k + 1, (h->n - k - 1) * sizeof(*h->it));
    h->n--;
    o->held_bytes -= it.len;
    return it;
}

static void drop_all(gw_order *o, const gw_order_env *e, gw_order_held **hp, int stream,
                     gw_order_why why)
{
    while (has_held(*hp))
        drop(e, stream, take(o, *hp, (*hp)->n - 1), why);
    free(*hp);
    *hp = NULL;
}

static void release(gw_order *o, const gw_order_env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        e->s[i].flags &= (uint16_t) ~(GW_ORDER_F_WAITING | GW_ORDER_F_BACKOFF);
        drop_all(o, e, &e->s[i].held, (int)i, GW_ORDER_WHY_CLOSED);
    }
    drop_all(o, e, &o->early, -1, GW_ORDER_WHY_CLOSED);
    o->held_bytes = 0;
}

/* Keeps it until its turn: in seq order in a stream's list (a seq already held is a
 * duplicate), in arrival order in the early list (stream -1). Held messages are queued
 * messages too: the out queue's bound applies to them. 1: it was a duplicate. */
static int hold(gw_order *o, const gw_order_env *e, int stream, gw_order_item it)
{
    gw_order_held **hp = stream < 0 ? &o->early : &e->s[stream].held;
    gw_order_held *h = *hp;
    uint32_t k = h ? h->n : 0;
    if (stream >= 0) {
        while (k > 0 && h->it[k - 1].seq > it.seq)
            k--;
        if (k > 0 && h->it[k - 1].seq == it.seq) {
            drop(e, stream, it, GW_ORDER_WHY_DUPLICATE);
            return 1;
        }
    }
    if (!h || h->n == h->cap) {
        uint32_t cap = h && h->cap ? h->cap * 2 : 8;
        gw_order_held *g = realloc(h, sizeof(*g) + cap * sizeof(g->it[0]));
        if (!g) {
            drop(e, stream, it, GW_ORDER_WHY_NOMEM);
            (void)act(e, (gw_order_action){.kind = GW_ORDER_CLOSE, .stream = stream,
                                           .code = 1011, .text = "out of memory"});
            return -1;
        }
        if (!h)
            g->n = 0;
        g->cap = cap;
        *hp = h = g;
    }
    memmove(h->it + k + 1, h->it + k, (h->n - k) * sizeof(*h->it));
    h->it[k] = it;
    h->n++;
    o->held_bytes += it.len;
    if (o->held_bytes > e->queue_bytes_max) {
        release(o, e);
        (void)act(e, (gw_order_action){.kind = GW_ORDER_CLOSE, .stream = stream,
                                       .code = 4008, .text = "slow consumer"});
        return -1;
    }
    return 0;
}

static int request(gw_order *o, const gw_order_env *e, size_t i, int has_after, uint64_t after,
                   uint64_t until)
{
    gw_order_stream *s = &e->s[i];
    s->reqno = ++o->reqno;
    if (has_after)
        s->flags |= GW_ORDER_F_HAS_AFTER;
    else
        s->flags &= (uint16_t)~GW_ORDER_F_HAS_AFTER;
    s->after = after;
    s->until = until;
    s->deadline = e->now_us + GW_ORDER_TIMEOUT_US;
    s->flags |= GW_ORDER_F_WAITING;
    return act(e, (gw_order_action){.kind = GW_ORDER_REQUEST, .stream = (int)i,
                                    .has_after = has_after != 0, .after = after,
                                    .until = until, .epoch = s->epoch, .reqno = s->reqno,
                                    .with_head = i == 0 && o->want_head});
}

/* Stream i's last request, asked again (a new reqno: an answer to the old one is stale). */
static int request_again(gw_order *o, const gw_order_env *e, size_t i)
{
    const gw_order_stream *s = &e->s[i];
    return request(o, e, i, s->flags & GW_ORDER_F_HAS_AFTER, s->after, s->until);
}

void gw_order_init(gw_order *o, gw_order_stream *s, size_t n, uint64_t client_epoch)
{
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < n; i++) {
        uint8_t kind = s[i].kind;
        const char *name = s[i].name;
        memset(&s[i], 0, sizeof(s[i]));
        s[i].kind = kind;
        s[i].name = name;
        s[i].epoch = client_epoch; /* what requests name until a reply tells the real one */
    }
}

int gw_order_start(gw_order *o, const gw_order_env *e, const int *has_since,
                   const uint64_t *since)
{
    if (!e->n)
        return -1;
    o->welcome_by = e->welcome_timeout_us > 0 ? e->now_us + e->welcome_timeout_us : 0;
    for (size_t i = 1; i < e->n; i++)
        if (!has_since[i]) {
            e->s[i].flags |= GW_ORDER_F_WANT_HEAD;
            o->want_head = 1;
        }
    if (request(o, e, 0, has_since[0], has_since[0] ? since[0] : 0, 0))
        return -1;
    for (size_t i = 1; i < e->n; i++)
        if (has_since[i] && request(o, e, i, 1, since[i], 0))
            return -1;
    return 0;
}

/* Hands over every held message of stream i that is next in line, then asks for what is
 * missing: the gap before the first held one, or the next page of a long replay (only once
 * the client has read most of what is queued, so a replay never floods the queue). */
static int advance(gw_order *o, const gw_order_env *e, size_t i)
{
    gw_order_stream *s = &e->s[i];
    if (!ready(o, s))
        return 0;
    while (has_held(s->held)) {
        gw_order_item it = s->held->it[0];
        if (it.seq > s->pos + 1)
            break;
        take(o, s->held, 0);
        if (it.seq <= s->pos) {
            drop(e, (int)i, it, GW_ORDER_WHY_DUPLICATE);
            continue;
        }
        s->pos = it.seq;
        s->flags &= (uint16_t)~GW_ORDER_F_FLOATING;
        if (!it.len) {
            drop(e, (int)i, it, GW_ORDER_WHY_VOIDED); /* passed over */
            continue;
        }
        if (act(e, (gw_order_action){.kind = GW_ORDER_DELIVER, .stream = (int)i, .item = it}))
            return -1;
    }
    if (s->flags & GW_ORDER_F_WAITING)
        return 0;
    if (has_held(s->held))
        return request(o, e, i, 1, s->pos, s->held->it[0].seq - 1);
    if ((s->flags & GW_ORDER_F_MORE) && e->queued(e->arg) < e->queue_bytes_max / 2)
        return request(o, e, i, 1, s->pos, 0);
    return 0;
}

static int welcome(gw_order *o, const gw_order_env *e, int degraded);
static int announce(const gw_order_env *e, size_t i);

/* The welcome goes out without history: every stream of the connect still without its first
 * reply becomes degraded. Its position is the client's, if it gave one (what a resuming
 * client holds stays valid); the background requests go on as they were. */
static int degrade(gw_order *o, const gw_order_env *e)
{
    for (size_t i = 0; i < e->n; i++) {
        gw_order_stream *s = &e->s[i];
        if (!of_connect(s) || (s->flags & GW_ORDER_F_FIRST))
            continue;
        s->flags |= GW_ORDER_F_DEGRADED;
        s->tries = 0;
        if (s->flags & GW_ORDER_F_HAS_AFTER)
            s->pos = s->after;
    }
    return welcome(o, e, 1);
}

/* Degraded stream i stops waiting for history with deliveries held (history kept failing
 * while they came with seqs): it goes on from the first held one, and the client is told
 * that what came before may be gone (unless it holds all of that already). */
static int settle_one(const gw_order_env *e, size_t i)
{
    gw_order_stream *s = &e->s[i];
    int known = (s->flags & GW_ORDER_F_HAS_AFTER) && !(s->flags & GW_ORDER_F_WANT_HEAD);
    const gw_order_item *first = &s->held->it[0];
    s->flags &= (uint16_t) ~(GW_ORDER_F_DEGRADED | GW_ORDER_F_WAITING | GW_ORDER_F_BACKOFF |
                             GW_ORDER_F_WANT_HEAD | GW_ORDER_F_MORE);
    s->flags |= GW_ORDER_F_FIRST;
    s->tries = 0;
    if (known && first->seq - 1 <= s->pos && first->epoch == s->epoch)
        return 0;
    s->epoch = first->epoch;
    s->pos = first->seq - 1;
    return resync(e, i, "history unavailable");
}

/* Settles what waits for degraded stream i: i itself if it holds deliveries, and for stream 0
 * the streams waiting for the heads it asks that hold some (the others keep waiting). A
 * stream that holds nothing stays degraded and keeps asking. */
static int settle(gw_order *o, const gw_order_env *e, size_t i)
{
    if (i == 0 && o->want_head) {
        int left = 0;
        for (size_t j = 1; j < e->n; j++) {
            if (!(e->s[j].flags & GW_ORDER_F_WANT_HEAD))
                continue;
            if (!has_held(e->s[j].held))
                left = 1;
            else if (settle_one(e, j))
                return -1;
        }
        o->want_head = (uint8_t)left;
    }
    if (has_held(e->s[i].held))
        return settle_one(e, i);
    return 0;
}

/* Live deliveries wait behind stream i, degraded (or behind stream 0, which asks its head):
 * history is probably back (appends work again), so the request goes out now, whether it was
 * pausing in its backoff or in flight (maybe to a router that is gone: the new one supersedes
 * it), and from now on a few more failures settle the stream. */
static int kick(gw_order *o, const gw_order_env *e, size_t i)
{
    gw_order_stream *s = &e->s[i];
    if (!(s->flags & GW_ORDER_F_WAITING) && (s->flags & GW_ORDER_F_WANT_HEAD))
        s = &e->s[i = 0];
    if (!(s->flags & GW_ORDER_F_DEGRADED) || !(s->flags & GW_ORDER_F_WAITING))
        return 0;
    s->tries = 0;
    s->flags &= (uint16_t) ~(GW_ORDER_F_WAITING | GW_ORDER_F_BACKOFF);
    return request_again(o, e, i);
}

/* 1 when deliveries wait for degraded stream i's first reply (its own, or for stream 0 those
 * of the streams waiting for the heads it asks). */
static int degraded_holds(const gw_order *o, const gw_order_env *e, size_t i)
{
    if (has_held(e->s[i].held))
        return 1;
    for (size_t j = 1; i == 0 && o->want_head && j < e->n; j++)
        if ((e->s[j].flags & GW_ORDER_F_WANT_HEAD) && has_held(e->s[j].held))
            return 1;
    return 0;
}

static int give_up(gw_order *o, const gw_order_env *e, size_t i)
{
    gw_order_stream *s = &e->s[i];
    note(e, GW_ORDER_GAVE_UP, i, s->tries);
    if (!ready(o, s) && of_connect(s) && !o->welcomed) {
        /* The client is welcomed without history rather than sent away: it would only come
         * back to the same outage. The request goes on in the background. */
        s->tries = 0;
        if (degrade(o, e))
            return -1;
        return request_again(o, e, i);
    }
    if ((s->flags & GW_ORDER_F_LATE) && !(s->flags & (GW_ORDER_F_FIRST | GW_ORDER_F_DEGRADED))) {
        /* A subscription whose history does not answer is answered without it (position: the
         * client's since, or none), like a welcome, and asked on in the background. */
        s->flags |= GW_ORDER_F_DEGRADED;
        s->tries = 0;
        if (s->flags & GW_ORDER_F_HAS_AFTER)
            s->pos = s->after;
        if (o->welcomed ? announce(e, i) : (s->flags |= GW_ORDER_F_ANNOUNCE, 0))
            return -1;
        return request_again(o, e, i);
    }
    if (s->flags & GW_ORDER_F_DEGRADED) {
        if (settle(o, e, i))
            return -1;
        if ((s->flags & GW_ORDER_F_DEGRADED) &&
            request_again(o, e, i))
            return -1;
        for (size_t j = 0; j < e->n; j++)
            if (advance(o, e, j))
                return -1;
        return 0;
    }
    if (!ready(o, s)) /* the client cannot be told where it stands: it should come back */
        return act(e, (gw_order_action){.kind = GW_ORDER_CLOSE, .stream = (int)i, .code = 1012,
                                        .text = "history unavailable, reconnect"});
    uint64_t to = has_held(s->held) ? s->held->it[0].seq - 1 : s->pos;
    s->flags &= (uint16_t)~GW_ORDER_F_MORE;
    s->tries = 0;
    if (to > s->pos) {
        s->pos = to;
        if (resync(e, i, "history unavailable"))
            return -1;
    }
    return advance(o, e, i);
}

/* A request that failed (no router answered, or one said it cannot read history now) is
 * retried after a growing pause; a lost one (deadline passed) at once. */
static int retry_or_give_up(gw_order *o, const gw_order_env *e, size_t i, int pause)
{
    gw_order_stream *s = &e->s[i];
    if (s->tries < UINT8_MAX)
        s->tries++;
    /* A degraded stream is not given up on while nothing waits for it (see gw_order_check). */
    int keep = (s->flags & GW_ORDER_F_DEGRADED) && !degraded_holds(o, e, i);
    if (s->tries >= GW_ORDER_TRIES && !keep)
        return give_up(o, e, i);
    /* A lost request is asked again at once, unless the stream is degraded: then the outage
     * may be no router at all, and every connection asking every timeout would flood NATS. */
    if (!pause && !(s->flags & GW_ORDER_F_DEGRADED))
        return request_again(o, e, i);
    int64_t wait = (int64_t)GW_ORDER_BACKOFF_US << (s->tries < 5 ? s->tries : 5);
    s->flags |= GW_ORDER_F_BACKOFF | GW_ORDER_F_WAITING;
    s->deadline = e->now_us + (wait < GW_ORDER_BACKOFF_MAX_US ? wait : GW_ORDER_BACKOFF_MAX_US);
    return 0;
}

/* A stream added after the connect: its SUBSCRIBED (and a resync, when history no longer
 * reaches back to the client's position) once its first reply and the welcome are out. */
static int announce(const gw_order_env *e, size_t i)
{
    gw_order_stream *s = &e->s[i];
    s->flags &= (uint16_t)~GW_ORDER_F_ANNOUNCE;
    if (act(e, (gw_order_action){.kind = GW_ORDER_SUBSCRIBED, .stream = (int)i,
                                 .epoch = s->epoch, .pos = s->pos,
                                 .degraded = (s->flags & GW_ORDER_F_DEGRADED) != 0}))
        return -1;
    if (s->flags & GW_ORDER_F_RESYNC) {
        s->flags &= (uint16_t)~GW_ORDER_F_RESYNC;
        return resync(e, i, "history no longer reaches back to the given position");
    }
    return 0;
}

static int welcome(gw_order *o, const gw_order_env *e, int degraded)
{
    uint64_t epoch = 0;
    for (size_t i = 0; i < e->n && !epoch; i++)
        if (of_connect(&e->s[i]))
            epoch = e->s[i].epoch;
    if (act(e, (gw_order_action){.kind = GW_ORDER_WELCOME, .stream = -1, .epoch = epoch,
                                 .degraded = (uint8_t)(degraded != 0)}))
        return -1;
    o->welcomed = 1;
    for (size_t i = 0; i < e->n; i++)
        if (e->s[i].flags & GW_ORDER_F_ANNOUNCE) {
            if ((e->s[i].flags & (GW_ORDER_F_FIRST | GW_ORDER_F_DEGRADED)) && announce(e, i))
                return -1;
        } else if (e->s[i].flags & GW_ORDER_F_RESYNC) {
            e->s[i].flags &= (uint16_t)~GW_ORDER_F_RESYNC;
            if (resync(e, i, "history no longer reaches back to the given position"))
                return -1;
        }
    while (has_held(o->early))
        if (act(e, (gw_order_action){.kind = GW_ORDER_DELIVER, .stream = -1,
                                     .item = take(o, o->early, 0)}))
            return -1;
    return 0;
}

static void drop_items(const gw_order_env *e, size_t i, const gw_order_page *p, size_t from,
                       gw_order_why why)
{
    for (size_t k = from; p && k < p->n; k++)
        drop(e, (int)i, p->items[k], why);
}

/* The first reply of a degraded stream came in the background. A stream the client gave no
 * position starts where the reply says (after the delivered mark, or at the head), but never
 * after a delivery it held: that one came live after the welcome, and is owed. A position
 * history no longer reaches is a resync now (the welcome is out). */
static int late_start(gw_order_stream *s)
{
    if (!(s->flags & GW_ORDER_F_DEGRADED))
        return 0;
    s->flags &= (uint16_t)~GW_ORDER_F_DEGRADED;
    if (s->flags & GW_ORDER_F_HAS_AFTER)
        return 1;
    if (!has_held(s->held))
        s->flags |= GW_ORDER_F_FLOATING; /* the reply's items, if any, end it */
    else if (s->held->it[0].seq - 1 < s->pos)
        s->pos = s->held->it[0].seq - 1;
    return 1;
}

/* The first reply of stream 0 told the head of the streams that wait for it. */
static int heads(gw_order *o, const gw_order_env *e, const gw_order_page *p)
{
    o->want_head = 0;
    for (size_t j = 1; j < e->n; j++) {
        gw_order_stream *t = &e->s[j];
        if (!(t->flags & GW_ORDER_F_WANT_HEAD))
            continue;
        t->flags &= (uint16_t)~GW_ORDER_F_WANT_HEAD;
        const gw_order_head *h = NULL;
        for (size_t k = 0; k < p->nheads && !h; k++)
            if (p->heads[k].stream == j)
                h = &p->heads[k];
        if (h) {
            t->flags |= GW_ORDER_F_FIRST;
            t->epoch = p->epoch;
            t->pos = h->head;
            (void)late_start(t);
        } else if (request(o, e, j, 0, 0, 0)) { /* a router that does not know the field */
            return -1;
        }
    }
    return 0;
}

size_t gw_order_reply(gw_order *o, const gw_order_env *e, size_t i, uint32_t reqno,
                      const gw_order_page *p)
{
    gw_order_stream *s = i < e->n ? &e->s[i] : NULL;
    size_t kept = 0, k = 0;
    if (!s || !(s->flags & GW_ORDER_F_WAITING) || (s->flags & GW_ORDER_F_BACKOFF) ||
        reqno != s->reqno) {
        drop_items(e, i, p, 0, GW_ORDER_WHY_OLD); /* answers a request given up or superseded */
        return 0;
    }
    s->flags &= (uint16_t)~GW_ORDER_F_WAITING;
    if (!p || !p->ok) {
        drop_items(e, i, p, 0, GW_ORDER_WHY_OLD);
        (void)retry_or_give_up(o, e, i, 1);
        return 0;
    }
    s->tries = 0;
    if (i == 0 && o->want_head && heads(o, e, p))
        goto stopped;
    uint64_t first_seq = p->n ? p->items[0].seq : 0;
    if (!(s->flags & GW_ORDER_F_FIRST)) {
        s->flags |= GW_ORDER_F_FIRST;
        s->epoch = p->epoch;
        int has_after = (s->flags & GW_ORDER_F_HAS_AFTER) != 0;
        if (has_after && !p->resync)
            s->pos = s->after;
        else
            s->pos = first_seq ? first_seq - 1 : p->head;
        if (has_after && p->resync)
            s->flags |= GW_ORDER_F_RESYNC;
        if ((s->flags & GW_ORDER_F_LATE) &&
            (!(s->flags & GW_ORDER_F_DEGRADED) || (s->flags & GW_ORDER_F_ANNOUNCE)))
            s->flags = (uint16_t)((s->flags & ~GW_ORDER_F_DEGRADED) | GW_ORDER_F_ANNOUNCE);
        if (late_start(s) && (s->flags & GW_ORDER_F_RESYNC)) {
            s->flags &= (uint16_t)~GW_ORDER_F_RESYNC;
            if (resync(e, i, "history no longer reaches back to the given position"))
                goto stopped;
        }
    } else if (p->epoch != s->epoch || p->resync) {
        /* History was lost (new epoch) or no longer reaches back: continue from what it has. */
        uint64_t to = first_seq              ? first_seq - 1
                      : has_held(s->held)    ? s->held->it[0].seq - 1
                                             : p->head;
        if (p->epoch != s->epoch)
            while (has_held(s->held) && s->held->it[0].epoch != p->epoch)
                drop(e, (int)i, take(o, s->held, 0), GW_ORDER_WHY_EPOCH);
        s->epoch = p->epoch;
        if (to != s->pos) {
            s->pos = to;
            if (resync(e, i, "history no longer reaches back"))
                goto stopped;
        }
    }
    /* The client moved on while the request was out (the seq it asked for came live, and a
     * newer gap may have opened since: two routers publish one user's deliveries in any
     * order). The reply answers an older question, so it says nothing about today's gap. */
    int stale = (s->flags & GW_ORDER_F_HAS_AFTER) && s->pos != s->after;
    int covers = 0; /* the reply holds the next seq the client needs */
    for (; k < p->n; k++) {
        gw_order_item it = p->items[k];
        if (it.seq == s->pos + 1)
            covers = 1;
        if (it.seq <= s->pos) {
            drop(e, (int)i, it, GW_ORDER_WHY_OLD);
            continue;
        }
        it.epoch = p->epoch;
        kept++;
        if (hold(o, e, (int)i, it) < 0) {
            k++;
            goto stopped;
        }
    }
    if (p->more)
        s->flags |= GW_ORDER_F_MORE;
    else
        s->flags &= (uint16_t)~GW_ORDER_F_MORE;
    /* A gap the complete answer does not fill (the seq is not in history, not even voided)
     * cannot be repaired: asking again would loop. The client is told, and goes on. */
    if (o->welcomed && s->until && !stale && !covers && !p->more && !p->resync &&
        has_held(s->held) && s->held->it[0].seq > s->pos + 1) {
        s->pos = s->held->it[0].seq - 1;
        if (resync(e, i, "history does not hold the missing deliveries"))
            return kept;
    }
    if (!o->welcomed) {
        size_t j = 0;
        while (j < e->n && (!of_connect(&e->s[j]) || (e->s[j].flags & GW_ORDER_F_FIRST)))
            j++;
        if (j == e->n && welcome(o, e, 0))
            return kept;
    } else if ((s->flags & GW_ORDER_F_ANNOUNCE) && announce(e, i)) {
        return kept;
    }
    for (size_t j = 0; j < e->n; j++)
        if (advance(o, e, j))
            break;
    return kept;
stopped:
    drop_items(e, i, p, k, GW_ORDER_WHY_CLOSED);
    return kept;
}

void gw_order_deliver(gw_order *o, const gw_order_env *e, size_t i, gw_order_item it)
{
    gw_order_stream *s = &e->s[i];
    if (ready(o, s) && s->epoch && it.epoch != s->epoch) {
        /* The cluster's history was lost: positions of the old epoch mean nothing now. */
        while (has_held(s->held))
            drop(e, (int)i, take(o, s->held, 0), GW_ORDER_WHY_EPOCH);
        s->epoch = it.epoch;
        s->pos = it.seq - 1;
        s->flags &= (uint16_t)~GW_ORDER_F_MORE;
        if (resync(e, i, "history epoch changed")) {
            drop(e, (int)i, it, GW_ORDER_WHY_CLOSED);
            return;
        }
    }
    if (ready(o, s)) {
        if ((s->flags & GW_ORDER_F_FLOATING) && it.seq <= s->pos && it.epoch == s->epoch &&
            !has_held(s->held))
            s->pos = it.seq - 1; /* came live after the welcome: owed (see the flag) */
        if (it.seq <= s->pos) {
            drop(e, (int)i, it, GW_ORDER_WHY_DUPLICATE);
            return;
        }
        if (it.seq == s->pos + 1 && !has_held(s->held)) {
            s->pos = it.seq; /* in order: the common case costs nothing more */
            s->flags &= (uint16_t)~GW_ORDER_F_FLOATING;
            (void)act(e, (gw_order_action){.kind = GW_ORDER_DELIVER, .stream = (int)i,
                                           .item = it});
            return;
        }
    }
    int first = !has_held(s->held);
    if (hold(o, e, (int)i, it) < 0)
        return;
    if (first && o->welcomed && !ready(o, s) && kick(o, e, i))
        return;
    (void)advance(o, e, i);
}

void gw_order_plain(gw_order *o, const gw_order_env *e, gw_order_item it)
{
    if (o->welcomed)
        (void)act(e, (gw_order_action){.kind = GW_ORDER_DELIVER, .stream = -1, .item = it});
    else
        (void)hold(o, e, -1, it);
}

void gw_order_check(gw_order *o, const gw_order_env *e)
{
    if (!o->welcomed && o->welcome_by && e->now_us >= o->welcome_by && degrade(o, e))
        return;
    for (size_t i = 0; i < e->n; i++) {
        gw_order_stream *s = &e->s[i];
        if (!(s->flags & GW_ORDER_F_WAITING) || e->now_us < s->deadline)
            continue;
        s->flags &= (uint16_t)~GW_ORDER_F_WAITING;
        if (s->flags & GW_ORDER_F_BACKOFF) {
            s->flags &= (uint16_t)~GW_ORDER_F_BACKOFF;
            if (request_again(o, e, i))
                return;
            continue;
        }
        note(e, GW_ORDER_TIMEOUT, i, s->tries);
        if (retry_or_give_up(o, e, i, 0))
            return;
    }
}

void gw_order_writeable(gw_order *o, const gw_order_env *e)
{
    if (!o->welcomed)
        return;
    for (size_t i = 0; i < e->n; i++)
        if ((e->s[i].flags & GW_ORDER_F_MORE) && advance(o, e, i))
            return;
}

int gw_order_waiting(const gw_order *o, const gw_order_env *e)
{
    (void)o;
    for (size_t i = 0; i < e->n; i++)
        if (e->s[i].flags & GW_ORDER_F_WAITING)
            return 1;
    return 0;
}

int gw_order_add(gw_order *o, const gw_order_env *e, size_t i, int has_since, uint64_t since,
                 uint64_t epoch)
{
    gw_order_stream *s = &e->s[i];
    uint8_t kind = s->kind;
    const char *name = s->name;
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->name = name;
    s->epoch = epoch;
    s->flags = GW_ORDER_F_LATE;
    return request(o, e, i, has_since, has_since ? since : 0, 0);
}

void gw_order_remove(gw_order *o, const gw_order_env *e, size_t i)
{
    gw_order_stream *s = &e->s[i];
    drop_all(o, e, &s->held, (int)i, GW_ORDER_WHY_CLOSED);
    memset(s, 0, sizeof(*s)); /* kind 0: free; no flag WAITING: its replies are ignored */
}

void gw_order_free(gw_order *o, const gw_order_env *e)
{
    release(o, e);
}
