/* Unit tests for gw_order: the gateway's ordering decisions, driven by events and checked by
 * the actions they produce. The cases of tests/integration/resume.test.mjs and
 * gaprepair.test.mjs, plus what no integration test reaches: overlapping gaps, a reply to an
 * older gap after a newer one, a voided seq at a page edge, an epoch change mid-replay, the
 * slow-consumer bound, and that every message handed in comes back exactly once. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_order.h"
#include "wsg_check.h"

#define E1 4242
#define E2 4343
#define MAXA 512

/* A message: a heap token, freed by the DELIVER or DROP that hands it back (ASan catches a
 * message handed back twice; `outstanding` one never handed back). */
typedef struct tok {
    uint64_t seq;
} tok;

typedef struct fx {
    gw_order o;
    gw_order_stream s[3]; /* fx_start uses two, as a connection does today; fx_start3 three */
    gw_order_env e;
    gw_order_action a[MAXA];
    int n;
    int open;
    int close_on_deliver; /* the connection closes when this many deliveries were made */
    int delivered;
    size_t queued;
    int outstanding;
} fx;

static int on_act(const gw_order_action *a, void *arg)
{
    fx *f = arg;
    ck_assert_int_lt(f->n, MAXA);
    f->a[f->n++] = *a;
    if (a->kind == GW_ORDER_DELIVER || a->kind == GW_ORDER_DROP) {
        ck_assert_ptr_nonnull(a->item.msg);
        ck_assert_uint_eq(((tok *)a->item.msg)->seq, a->item.seq);
        free(a->item.msg);
        f->outstanding--;
    }
    if (a->kind == GW_ORDER_DELIVER && ++f->delivered == f->close_on_deliver)
        f->open = 0;
    if (a->kind == GW_ORDER_CLOSE)
        f->open = 0;
    return !f->open;
}

static size_t on_queued(void *arg) { return ((fx *)arg)->queued; }

static gw_order_item item(fx *f, uint64_t seq, uint64_t epoch, uint32_t len)
{
    tok *t = malloc(sizeof(*t));
    ck_assert_ptr_nonnull(t);
    t->seq = seq;
    f->outstanding++;
    return (gw_order_item){.msg = t, .seq = seq, .epoch = epoch, .len = len};
}

/* Connects: since/bsince < 0 means absent. */
static void fx_start(fx *f, int64_t since, int64_t bsince, uint64_t client_epoch)
{
    memset(f, 0, sizeof(*f));
    f->open = 1;
    f->s[0].kind = 1; /* STREAM_USER */
    f->s[1].kind = 2; /* STREAM_BROADCAST */
    gw_order_init(&f->o, f->s, 2, client_epoch);
    f->e = (gw_order_env){.s = f->s, .n = 2, .act = on_act, .queued = on_queued, .arg = f,
                          .queue_bytes_max = 1 << 20, .now_us = 1000000};
    int has[2] = {since >= 0, bsince >= 0};
    uint64_t at[2] = {since >= 0 ? (uint64_t)since : 0, bsince >= 0 ? (uint64_t)bsince : 0};
    ck_assert_int_eq(gw_order_start(&f->o, &f->e, has, at), 0);
}

/* Three streams, none with a position: the two after stream 0 wait for their heads. */
static void fx_start3(fx *f)
{
    memset(f, 0, sizeof(*f));
    f->open = 1;
    f->s[0].kind = 1;
    f->s[0].name = "alice";
    f->s[1].kind = 2;
    f->s[2].kind = 3; /* a third kind, as channels will be */
    f->s[2].name = "room:1";
    gw_order_init(&f->o, f->s, 3, 0);
    f->e = (gw_order_env){.s = f->s, .n = 3, .act = on_act, .queued = on_queued, .arg = f,
                          .queue_bytes_max = 1 << 20, .now_us = 1000000};
    int has[3] = {0, 0, 0};
    uint64_t at[3] = {0, 0, 0};
    ck_assert_int_eq(gw_order_start(&f->o, &f->e, has, at), 0);
}

static void fx_done(fx *f)
{
    gw_order_free(&f->o, &f->e);
    ck_assert_int_eq(f->outstanding, 0);
    ck_assert_int_eq(gw_order_waiting(&f->o, &f->e), 0);
}

static void clear(fx *f) { f->n = 0; }

/* A reply page: seqs (negative: voided, an empty item) in epoch; has_head_of: it tells
 * stream 1's head, head_of. */
typedef struct pg {
    int ok, resync, more, has_head_of;
    uint64_t epoch, head, head_of;
} pg;

static size_t reply(fx *f, size_t i, const pg *p, const int *seqs, size_t n)
{
    gw_order_item items[64];
    ck_assert_uint_le(n, 64);
    for (size_t k = 0; k < n; k++) {
        int v = seqs[k] < 0;
        items[k] = item(f, (uint64_t)(v ? -seqs[k] : seqs[k]), p->epoch, v ? 0 : 10);
    }
    gw_order_head head = {.stream = 1, .head = p->head_of};
    gw_order_page page = {.ok = p->ok, .resync = p->resync, .more = p->more,
                          .epoch = p->epoch, .head = p->head, .items = items, .n = n,
                          .heads = p->has_head_of ? &head : NULL,
                          .nheads = p->has_head_of ? 1 : 0};
    return gw_order_reply(&f->o, &f->e, i, f->s[i].reqno, &page);
}

static void live(fx *f, size_t i, uint64_t seq, uint64_t epoch)
{
    gw_order_deliver(&f->o, &f->e, i, item(f, seq, epoch, 10));
}

static int count(const fx *f, gw_order_kind k)
{
    int c = 0;
    for (int j = 0; j < f->n; j++)
        c += f->a[j].kind == k;
    return c;
}

/* The n-th (0-based) action of kind k, or NULL. */
static const gw_order_action *nth(const fx *f, gw_order_kind k, int n)
{
    for (int j = 0; j < f->n; j++)
        if (f->a[j].kind == k && n-- == 0)
            return &f->a[j];
    return NULL;
}

static int index_of(const fx *f, gw_order_kind k)
{
    for (int j = 0; j < f->n; j++)
        if (f->a[j].kind == k)
            return j;
    return -1;
}

/* The seqs delivered, in order, as a string like "1,2,3" ("-" for a message outside any
 * stream). */
static const char *delivered(const fx *f)
{
    static char buf[1024];
    size_t o = 0;
    buf[0] = 0;
    for (int j = 0; j < f->n; j++)
        if (f->a[j].kind == GW_ORDER_DELIVER) {
            if (f->a[j].stream < 0)
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s-", o ? "," : "");
            else
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%llu", o ? "," : "",
                                      (unsigned long long)f->a[j].item.seq);
        }
    return buf;
}

static int dropped(const fx *f, gw_order_why why)
{
    int c = 0;
    for (int j = 0; j < f->n; j++)
        c += f->a[j].kind == GW_ORDER_DROP && f->a[j].why == why;
    return c;
}

/* A welcomed connection whose user stream stands at pos (epoch E1), broadcast at 0. */
static void connected(fx *f, uint64_t pos)
{
    fx_start(f, (int64_t)pos, -1, 0);
    reply(f, 0, &(pg){.ok = 1, .epoch = E1, .head = pos, .has_head_of = 1}, NULL, 0);
    ck_assert_int_eq(count(f, GW_ORDER_WELCOME), 1);
    ck_assert_uint_eq(f->s[0].pos, pos);
    clear(f);
}

/* --- resume.test.mjs --- */

START_TEST(connect_asks_once_with_the_broadcast_head)
{
    fx f;
    fx_start(&f, -1, -1, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_int_eq(r->stream, 0);
    ck_assert_int_eq(r->has_after, 0);
    ck_assert_int_eq(r->with_head, 1);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 1);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 0, .has_head_of = 1, .head_of = 7},
          NULL, 0);
    const gw_order_action *w = nth(&f, GW_ORDER_WELCOME, 0);
    ck_assert_ptr_nonnull(w);
    ck_assert_uint_eq(w->epoch, E1);
    ck_assert_uint_eq(f.s[1].pos, 7);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    fx_done(&f);
}
END_TEST

START_TEST(broadcast_since_asks_both_streams_and_welcomes_after_both)
{
    fx f;
    fx_start(&f, 3, 5, E1);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 2);
    const gw_order_action *b = nth(&f, GW_ORDER_REQUEST, 1);
    ck_assert_int_eq(b->stream, 1);
    ck_assert_int_eq(b->has_after, 1);
    ck_assert_uint_eq(b->after, 5);
    ck_assert_uint_eq(b->epoch, E1); /* ?epoch= until a reply tells */
    ck_assert_int_eq(nth(&f, GW_ORDER_REQUEST, 0)->with_head, 0);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 3}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 0);
    int bseqs[] = {6, 7};
    reply(&f, 1, &(pg){.ok = 1, .epoch = E1, .head = 7}, bseqs, 2);
    ck_assert_int_eq(index_of(&f, GW_ORDER_WELCOME), 0);
    ck_assert_str_eq(delivered(&f), "6,7");
    ck_assert_uint_eq(f.s[1].pos, 7);
    ck_assert_uint_eq(f.s[0].pos, 3);
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    fx_done(&f);
}
END_TEST

START_TEST(replays_what_the_client_missed_in_order)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    clear(&f);
    int seqs[] = {1, 2, 3};
    ck_assert_uint_eq(reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 3, .has_head_of = 1},
                            seqs, 3),
                      3);
    ck_assert_int_eq(index_of(&f, GW_ORDER_WELCOME), 0);
    ck_assert_uint_eq(nth(&f, GW_ORDER_WELCOME, 0)->epoch, E1);
    ck_assert_str_eq(delivered(&f), "1,2,3");
    ck_assert_uint_eq(f.s[0].pos, 3);
    fx_done(&f);
}
END_TEST

START_TEST(without_since_starts_with_what_was_stored)
{
    fx f;
    fx_start(&f, -1, -1, 0);
    int seqs[] = {5, 6};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 6, .has_head_of = 1}, seqs, 2);
    ck_assert_str_eq(delivered(&f), "5,6");
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    /* and once: the same seqs live again are duplicates */
    clear(&f);
    live(&f, 0, 6, E1);
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_DUPLICATE), 1);
    ck_assert_str_eq(delivered(&f), "");
    fx_done(&f);
}
END_TEST

START_TEST(router_without_the_head_field_is_asked_for_broadcast)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 0}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 0);
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->stream, 1);
    ck_assert_int_eq(r->has_after, 0);
    reply(&f, 1, &(pg){.ok = 1, .epoch = E1, .head = 9}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 1);
    ck_assert_uint_eq(f.s[1].pos, 9);
    fx_done(&f);
}
END_TEST

START_TEST(position_from_another_epoch_is_answered_with_resync)
{
    fx f;
    fx_start(&f, 5, -1, 1);
    ck_assert_uint_eq(nth(&f, GW_ORDER_REQUEST, 0)->epoch, 1);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 1, .resync = 1, .epoch = E2, .head = 3, .has_head_of = 1}, NULL,
          0);
    ck_assert_int_eq(index_of(&f, GW_ORDER_WELCOME), 0);
    ck_assert_uint_eq(nth(&f, GW_ORDER_WELCOME, 0)->epoch, E2);
    const gw_order_action *r = nth(&f, GW_ORDER_RESYNC, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->stream, 0);
    ck_assert_uint_eq(r->pos, 3);
    ck_assert_uint_eq(r->epoch, E2);
    ck_assert_int_eq(index_of(&f, GW_ORDER_RESYNC), 1); /* right after the welcome */
    fx_done(&f);
}
END_TEST

START_TEST(welcomes_degraded_when_no_router_answers)
{
    /* Without a welcome timeout, history giving up welcomes the client without it (it used to
     * close 1012: a reconnect storm against the same outage), and history is asked on. */
    fx f;
    fx_start(&f, 0, -1, 0);
    clear(&f);
    for (int t = 1; t < GW_ORDER_TRIES; t++) {
        f.e.now_us += GW_ORDER_TIMEOUT_US - 1;
        gw_order_check(&f.o, &f.e);
        ck_assert_int_eq(f.n, 0); /* not yet */
        f.e.now_us += 1;
        gw_order_check(&f.o, &f.e);
        const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->reqno, (uint32_t)t + 1);
        ck_assert_int_eq(r->has_after, 1);
        ck_assert_uint_eq(r->after, 0);
        clear(&f);
    }
    f.e.now_us += GW_ORDER_TIMEOUT_US;
    gw_order_check(&f.o, &f.e);
    ck_assert_int_eq(count(&f, GW_ORDER_CLOSE), 0);
    const gw_order_action *w = nth(&f, GW_ORDER_WELCOME, 0);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->degraded, 1);
    ck_assert_int_eq(count(&f, GW_ORDER_GAVE_UP), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 1);
    ck_assert(f.s[0].flags & GW_ORDER_F_DEGRADED);
    fx_done(&f);
}
END_TEST

/* Connects with a welcome timeout of 1 s and lets it pass with history refusing. */
static void degraded_start(fx *f, int64_t since, int64_t bsince, uint64_t epoch)
{
    memset(f, 0, sizeof(*f));
    f->open = 1;
    f->s[0].kind = 1;
    f->s[1].kind = 2;
    gw_order_init(&f->o, f->s, 2, epoch);
    f->e = (gw_order_env){.s = f->s, .n = 2, .act = on_act, .queued = on_queued, .arg = f,
                          .queue_bytes_max = 1 << 20, .now_us = 1000000,
                          .welcome_timeout_us = 1000000};
    int has[2] = {since >= 0, bsince >= 0};
    uint64_t at[2] = {since >= 0 ? (uint64_t)since : 0, bsince >= 0 ? (uint64_t)bsince : 0};
    ck_assert_int_eq(gw_order_start(&f->o, &f->e, has, at), 0);
    reply(f, 0, &(pg){.ok = 0}, NULL, 0); /* Redis is down */
    if (bsince >= 0)
        reply(f, 1, &(pg){.ok = 0}, NULL, 0);
    f->e.now_us += 999999;
    gw_order_check(&f->o, &f->e);
    ck_assert_int_eq(count(f, GW_ORDER_WELCOME), 0);
    gw_order_plain(&f->o, &f->e, item(f, 0, 0, 10)); /* held until the welcome */
    clear(f);
    f->e.now_us += 1;
    gw_order_check(&f->o, &f->e);
    const gw_order_action *w = nth(f, GW_ORDER_WELCOME, 0);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->degraded, 1);
    ck_assert_uint_eq(w->epoch, epoch);
    ck_assert_int_eq(index_of(f, GW_ORDER_WELCOME), 0);
    ck_assert_str_eq(delivered(f), "-");
    ck_assert(f->s[0].flags & GW_ORDER_F_DEGRADED);
    ck_assert(f->s[1].flags & GW_ORDER_F_DEGRADED);
    clear(f);
}

/* Lets time pass until the background request of stream i goes out again (a request in
 * flight times out, then waits its backoff). */
static void next_try(fx *f, size_t i)
{
    for (int k = 0; k < 3; k++) {
        int before = count(f, GW_ORDER_REQUEST);
        f->e.now_us = f->s[i].deadline;
        gw_order_check(&f->o, &f->e);
        for (int j = before; j < f->n; j++)
            if (f->a[j].kind == GW_ORDER_REQUEST && f->a[j].stream == (int)i)
                return;
    }
    ck_abort_msg("no request");
}

START_TEST(welcome_timeout_keeps_the_clients_positions_and_fills_in_order)
{
    fx f;
    degraded_start(&f, 5, 9, E1);
    ck_assert_uint_eq(f.s[0].pos, 5);
    ck_assert_uint_eq(f.s[1].pos, 9);
    /* outside any stream: at once (what a Redis outage delivers) */
    gw_order_plain(&f.o, &f.e, item(&f, 0, 0, 10));
    ck_assert_str_eq(delivered(&f), "-");
    clear(&f);
    /* keeps asking, further and further apart, never giving up while nothing waits */
    int64_t prev = 0;
    for (int t = 0; t < 12; t++) {
        int64_t gap = f.s[0].deadline - f.e.now_us;
        if (t > 1) /* the first: the request in flight at the welcome, waiting its timeout */
            ck_assert_int_ge(gap, prev);
        ck_assert_int_le(gap, GW_ORDER_BACKOFF_MAX_US);
        prev = gap;
        next_try(&f, 0);
        ck_assert_int_ge(count(&f, GW_ORDER_REQUEST), 1);
        for (int k = 0; k < f.n; k++)
            if (f.a[k].kind == GW_ORDER_REQUEST)
                reply(&f, (size_t)f.a[k].stream, &(pg){.ok = 0}, NULL, 0);
        clear(&f);
    }
    ck_assert_int_eq(prev, GW_ORDER_BACKOFF_MAX_US);
    ck_assert_int_eq(count(&f, GW_ORDER_GAVE_UP), 0);
    /* Redis is back: seq'd deliveries are held (and the request goes out now) */
    live(&f, 0, 8, E1);
    ck_assert_str_eq(delivered(&f), "");
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->stream, 0);
    ck_assert_uint_eq(r->after, 5);
    live(&f, 0, 9, E1);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    clear(&f);
    int seqs[] = {6, 7, 8, 9};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 9}, seqs, 4);
    ck_assert_str_eq(delivered(&f), "6,7,8,9");
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 0);
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_DUPLICATE), 2);
    ck_assert(!(f.s[0].flags & GW_ORDER_F_DEGRADED));
    clear(&f);
    live(&f, 0, 10, E1);
    ck_assert_str_eq(delivered(&f), "10");
    fx_done(&f);
}
END_TEST

START_TEST(a_degraded_stream_without_position_never_passes_over_a_live_delivery)
{
    /* No since: the user stream's first reply (after its delivered mark, which the live
     * append moved) and the broadcast head both come after a live delivery was held. */
    fx f;
    degraded_start(&f, -1, -1, 0);
    ck_assert_uint_eq(f.s[0].pos, 0);
    live(&f, 1, 42, E1);
    live(&f, 0, 3, E1);
    ck_assert_str_eq(delivered(&f), "");
    next_try(&f, 0);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 3, .has_head_of = 1, .head_of = 42},
          NULL, 0);
    ck_assert_str_eq(delivered(&f), "3,42");
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    ck_assert_uint_eq(f.s[0].epoch, E1);
    ck_assert_uint_eq(f.s[1].epoch, E1);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_live_delivery_overtaken_by_the_fill_is_still_delivered)
{
    /* The router appended seq 3 (moving the delivered mark) and answered the fill before the
     * gateway saw 3 live: the reply says head 3, nothing to deliver; 3 is still owed. */
    fx f;
    degraded_start(&f, -1, -1, 0);
    next_try(&f, 0);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 3, .has_head_of = 1, .head_of = 7}, NULL,
          0);
    ck_assert_str_eq(delivered(&f), "");
    live(&f, 0, 3, E1);
    live(&f, 0, 3, E1); /* now a duplicate */
    live(&f, 1, 7, E1);
    live(&f, 1, 8, E1);
    live(&f, 1, 6, E1); /* something was delivered since: older ones are old */
    ck_assert_str_eq(delivered(&f), "3,7,8");
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_DUPLICATE), 2);
    fx_done(&f);
}
END_TEST

START_TEST(a_degraded_stream_with_offline_messages_delivers_them_first)
{
    fx f;
    degraded_start(&f, -1, -1, 0);
    live(&f, 0, 6, E1);
    clear(&f);
    int seqs[] = {4, 5, 6};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 6, .has_head_of = 1, .head_of = 0},
          seqs, 3);
    ck_assert_str_eq(delivered(&f), "4,5,6");
    fx_done(&f);
}
END_TEST

START_TEST(a_degraded_position_history_no_longer_reaches_is_a_resync)
{
    fx f;
    degraded_start(&f, 5, -1, E1);
    next_try(&f, 0);
    clear(&f);
    int seqs[] = {20, 21};
    reply(&f, 0, &(pg){.ok = 1, .resync = 1, .epoch = E2, .head = 21, .has_head_of = 1,
                       .head_of = 3},
          seqs, 2);
    const gw_order_action *r = nth(&f, GW_ORDER_RESYNC, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->pos, 19);
    ck_assert_uint_eq(r->epoch, E2);
    ck_assert_int_lt(index_of(&f, GW_ORDER_RESYNC), index_of(&f, GW_ORDER_DELIVER));
    ck_assert_str_eq(delivered(&f), "20,21");
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_degraded_stream_holding_deliveries_settles_with_a_resync)
{
    /* Appends work but history keeps refusing: after GW_ORDER_TRIES more failures the held
     * deliveries go out, after a resync (never a silent gap). */
    fx f;
    degraded_start(&f, 5, -1, E1);
    live(&f, 1, 12, E1); /* waits for stream 0's heads */
    live(&f, 0, 8, E1);
    for (int t = 0; t < GW_ORDER_TRIES; t++) {
        ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
        if (f.s[0].flags & GW_ORDER_F_BACKOFF)
            next_try(&f, 0);
        reply(&f, 0, &(pg){.ok = 0}, NULL, 0);
    }
    ck_assert_int_eq(count(&f, GW_ORDER_GAVE_UP), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 2);
    const gw_order_action *r = nth(&f, GW_ORDER_RESYNC, 0);
    ck_assert_int_eq(r->stream, 1);
    ck_assert_uint_eq(r->pos, 11);
    r = nth(&f, GW_ORDER_RESYNC, 1);
    ck_assert_int_eq(r->stream, 0);
    ck_assert_uint_eq(r->pos, 7);
    ck_assert_str_eq(delivered(&f), "8,12");
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    clear(&f);
    live(&f, 0, 9, E1);
    ck_assert_str_eq(delivered(&f), "9");
    fx_done(&f);
}
END_TEST

START_TEST(no_router_at_all_welcomes_in_time_and_asks_on)
{
    fx f;
    memset(&f, 0, sizeof(f));
    f.open = 1;
    f.s[0].kind = 1;
    f.s[1].kind = 2;
    gw_order_init(&f.o, f.s, 2, 0);
    f.e = (gw_order_env){.s = f.s, .n = 2, .act = on_act, .queued = on_queued, .arg = &f,
                         .queue_bytes_max = 1 << 20, .now_us = 1000000,
                         .welcome_timeout_us = 1000000};
    int has[2] = {0, 0};
    uint64_t at[2] = {0, 0};
    ck_assert_int_eq(gw_order_start(&f.o, &f.e, has, at), 0);
    clear(&f);
    f.e.now_us += 1000000;
    gw_order_check(&f.o, &f.e);
    ck_assert_int_eq(nth(&f, GW_ORDER_WELCOME, 0)->degraded, 1);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 1);
    clear(&f);
    f.e.now_us += 1000000; /* the first request's timeout */
    gw_order_check(&f.o, &f.e);
    ck_assert_int_eq(count(&f, GW_ORDER_TIMEOUT), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0); /* after a pause */
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 1);
    next_try(&f, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    ck_assert_int_eq(nth(&f, GW_ORDER_REQUEST, 0)->with_head, 1);
    fx_done(&f);
}
END_TEST

START_TEST(history_in_time_means_no_degraded_welcome)
{
    fx f;
    memset(&f, 0, sizeof(f));
    f.open = 1;
    f.s[0].kind = 1;
    f.s[1].kind = 2;
    gw_order_init(&f.o, f.s, 2, 0);
    f.e = (gw_order_env){.s = f.s, .n = 2, .act = on_act, .queued = on_queued, .arg = &f,
                         .queue_bytes_max = 1 << 20, .now_us = 1000000,
                         .welcome_timeout_us = 1000000};
    int has[2] = {1, 0};
    uint64_t at[2] = {2, 0};
    ck_assert_int_eq(gw_order_start(&f.o, &f.e, has, at), 0);
    f.e.now_us += 500000;
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 2, .has_head_of = 1, .head_of = 1}, NULL,
          0);
    ck_assert_int_eq(nth(&f, GW_ORDER_WELCOME, 0)->degraded, 0);
    f.e.now_us += 5000000;
    gw_order_check(&f.o, &f.e);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 1);
    fx_done(&f);
}
END_TEST

START_TEST(a_refused_request_is_retried_after_a_pause)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 0}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 1);
    /* a late answer to the refused request counts for nothing */
    int seqs[] = {1};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1}, seqs, 1);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 0);
    f.e.now_us += ((int64_t)GW_ORDER_BACKOFF_US << 1) - 1;
    gw_order_check(&f.o, &f.e);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    f.e.now_us += 1;
    gw_order_check(&f.o, &f.e);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_TIMEOUT), 0);
    fx_done(&f);
}
END_TEST

START_TEST(deliveries_outside_streams_wait_for_the_welcome)
{
    fx f;
    fx_start(&f, 5, -1, 1);
    gw_order_plain(&f.o, &f.e, item(&f, 0, 0, 10));
    ck_assert_int_eq(count(&f, GW_ORDER_DELIVER), 0);
    clear(&f);
    int seqs[] = {4};
    reply(&f, 0, &(pg){.ok = 1, .resync = 1, .epoch = E2, .head = 4, .has_head_of = 1}, seqs,
          1);
    /* welcome, resync, what waited, then the replay */
    ck_assert_int_eq(f.a[0].kind, GW_ORDER_WELCOME);
    ck_assert_int_eq(f.a[1].kind, GW_ORDER_RESYNC);
    ck_assert_str_eq(delivered(&f), "-,4");
    clear(&f);
    gw_order_plain(&f.o, &f.e, item(&f, 0, 0, 10));
    ck_assert_str_eq(delivered(&f), "-");
    fx_done(&f);
}
END_TEST

START_TEST(live_deliveries_before_the_welcome_merge_with_the_replay)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    live(&f, 0, 3, E1);
    live(&f, 0, 2, E1);
    ck_assert_int_eq(count(&f, GW_ORDER_DELIVER), 0);
    clear(&f);
    int seqs[] = {1, 2, 3};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 3, .has_head_of = 1}, seqs, 3);
    ck_assert_str_eq(delivered(&f), "1,2,3");
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_DUPLICATE), 2);
    fx_done(&f);
}
END_TEST

/* --- gaprepair.test.mjs --- */

START_TEST(a_delivery_lost_on_the_bus_is_fetched_from_history)
{
    fx f;
    connected(&f, 0);
    live(&f, 0, 1, E1);
    ck_assert_str_eq(delivered(&f), "1");
    clear(&f);
    live(&f, 0, 3, E1);
    ck_assert_str_eq(delivered(&f), "");
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->has_after, 1);
    ck_assert_uint_eq(r->after, 1);
    ck_assert_uint_eq(r->until, 2);
    ck_assert_uint_eq(r->epoch, E1);
    clear(&f);
    int seqs[] = {2};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 3}, seqs, 1);
    ck_assert_str_eq(delivered(&f), "2,3");
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_delivery_repeated_on_the_bus_is_dropped)
{
    fx f;
    connected(&f, 0);
    live(&f, 0, 1, E1);
    live(&f, 0, 1, E1);
    ck_assert_str_eq(delivered(&f), "1");
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_DUPLICATE), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_voided_seq_is_passed_over_silently)
{
    fx f;
    connected(&f, 3);
    live(&f, 0, 5, E1);
    clear(&f);
    int seqs[] = {-4};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 5}, seqs, 1);
    ck_assert_str_eq(delivered(&f), "5");
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_VOIDED), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_gap_history_does_not_hold_becomes_a_resync)
{
    fx f;
    connected(&f, 5);
    live(&f, 0, 8, E1);
    clear(&f);
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 8}, NULL, 0);
    const gw_order_action *r = nth(&f, GW_ORDER_RESYNC, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->pos, 7);
    ck_assert_int_eq(index_of(&f, GW_ORDER_RESYNC), 0);
    ck_assert_str_eq(delivered(&f), "8");
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_live_delivery_that_overtook_another_is_merged_once)
{
    fx f;
    connected(&f, 8);
    live(&f, 0, 10, E1);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    live(&f, 0, 9, E1);
    ck_assert_str_eq(delivered(&f), "9,10");
    clear(&f);
    /* history answers the question that no longer matters */
    int seqs[] = {9};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 10}, seqs, 1);
    ck_assert_str_eq(delivered(&f), "");
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_reply_to_an_older_gap_after_a_newer_one)
{
    fx f;
    connected(&f, 10);
    live(&f, 0, 12, E1); /* asks for 11 */
    live(&f, 0, 11, E1); /* live after all */
    live(&f, 0, 14, E1); /* a new gap, 13, while the question about 11 is out */
    ck_assert_str_eq(delivered(&f), "11,12");
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    clear(&f);
    int seqs[] = {11};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 14}, seqs, 1);
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0); /* says nothing about 13 */
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->after, 12);
    ck_assert_uint_eq(r->until, 13);
    clear(&f);
    int seqs2[] = {13};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 14}, seqs2, 1);
    ck_assert_str_eq(delivered(&f), "13,14");
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    fx_done(&f);
}
END_TEST

/* --- what no integration test reaches --- */

START_TEST(two_overlapping_gaps_are_filled_one_after_the_other)
{
    fx f;
    connected(&f, 0);
    live(&f, 0, 3, E1);
    live(&f, 0, 6, E1);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    ck_assert_uint_eq(nth(&f, GW_ORDER_REQUEST, 0)->until, 2);
    clear(&f);
    int a[] = {1, 2};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 6}, a, 2);
    ck_assert_str_eq(delivered(&f), "1,2,3");
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->after, 3);
    ck_assert_uint_eq(r->until, 5);
    clear(&f);
    int b[] = {4, 5};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 6}, b, 2);
    ck_assert_str_eq(delivered(&f), "4,5,6");
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_reply_to_a_superseded_request_is_ignored)
{
    fx f;
    connected(&f, 0);
    live(&f, 0, 2, E1);
    uint32_t old = f.s[0].reqno;
    f.e.now_us += GW_ORDER_TIMEOUT_US;
    gw_order_check(&f.o, &f.e); /* lost: asked again */
    ck_assert_int_eq(count(&f, GW_ORDER_TIMEOUT), 1);
    ck_assert_uint_eq(nth(&f, GW_ORDER_REQUEST, 1)->reqno, old + 1);
    clear(&f);
    gw_order_item it = item(&f, 1, E1, 10);
    gw_order_page p = {.ok = 1, .epoch = E1, .head = 2, .items = &it, .n = 1};
    ck_assert_uint_eq(gw_order_reply(&f.o, &f.e, 0, old, &p), 0);
    ck_assert_str_eq(delivered(&f), "");
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_OLD), 1);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 1);
    int seqs[] = {1};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 2}, seqs, 1);
    ck_assert_str_eq(delivered(&f), "1,2");
    fx_done(&f);
}
END_TEST

START_TEST(a_voided_seq_at_page_edges)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    clear(&f);
    int a[] = {1, 2, -3}; /* the page ends with a voided seq */
    reply(&f, 0, &(pg){.ok = 1, .more = 1, .epoch = E1, .head = 5, .has_head_of = 1}, a, 3);
    ck_assert_str_eq(delivered(&f), "1,2");
    ck_assert_uint_eq(f.s[0].pos, 3);
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0); /* the queue is empty */
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->after, 3);
    ck_assert_uint_eq(r->until, 0);
    clear(&f);
    int b[] = {-4, 5}; /* and the next begins with one */
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 5}, b, 2);
    ck_assert_str_eq(delivered(&f), "5");
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_VOIDED), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    fx_done(&f);
}
END_TEST

START_TEST(a_long_replay_waits_for_the_queue_to_drain)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    f.queued = f.e.queue_bytes_max / 2;
    clear(&f);
    int a[] = {1, 2};
    reply(&f, 0, &(pg){.ok = 1, .more = 1, .epoch = E1, .head = 9, .has_head_of = 1}, a, 2);
    ck_assert_str_eq(delivered(&f), "1,2");
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    gw_order_writeable(&f.o, &f.e);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0);
    f.queued = f.e.queue_bytes_max / 2 - 1;
    gw_order_writeable(&f.o, &f.e);
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->after, 2);
    fx_done(&f);
}
END_TEST

START_TEST(an_epoch_change_mid_replay_resyncs_and_ends_the_replay)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    f.queued = f.e.queue_bytes_max; /* the next page waits */
    int a[] = {1, 2};
    reply(&f, 0, &(pg){.ok = 1, .more = 1, .epoch = E1, .head = 9, .has_head_of = 1}, a, 2);
    clear(&f);
    live(&f, 0, 7, E2); /* history was lost meanwhile */
    const gw_order_action *r = nth(&f, GW_ORDER_RESYNC, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->pos, 6);
    ck_assert_uint_eq(r->epoch, E2);
    ck_assert_str_eq(delivered(&f), "7");
    f.queued = 0;
    gw_order_writeable(&f.o, &f.e);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 0); /* no page of the old epoch */
    fx_done(&f);
}
END_TEST

START_TEST(a_reply_from_a_new_epoch_drops_what_was_held_from_the_old)
{
    fx f;
    connected(&f, 1);
    live(&f, 0, 3, E1);
    clear(&f);
    int seqs[] = {5, 6};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E2, .head = 6}, seqs, 2);
    ck_assert_int_eq(dropped(&f, GW_ORDER_WHY_EPOCH), 1);
    const gw_order_action *r = nth(&f, GW_ORDER_RESYNC, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->pos, 4);
    ck_assert_uint_eq(r->epoch, E2);
    ck_assert_str_eq(delivered(&f), "5,6");
    ck_assert_uint_eq(f.s[0].epoch, E2);
    fx_done(&f);
}
END_TEST

START_TEST(giving_up_a_gap_after_the_welcome_resyncs_and_goes_on)
{
    fx f;
    connected(&f, 1);
    live(&f, 0, 4, E1);
    clear(&f);
    for (int t = 0; t < GW_ORDER_TRIES; t++) {
        f.e.now_us += GW_ORDER_TIMEOUT_US;
        gw_order_check(&f.o, &f.e);
    }
    ck_assert_int_eq(count(&f, GW_ORDER_CLOSE), 0);
    ck_assert_int_eq(count(&f, GW_ORDER_GAVE_UP), 1);
    const gw_order_action *r = nth(&f, GW_ORDER_RESYNC, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->pos, 3);
    ck_assert_str_eq(delivered(&f), "4");
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    fx_done(&f);
}
END_TEST

START_TEST(streams_keep_their_own_order)
{
    fx f;
    connected(&f, 0);
    live(&f, 1, 2, E1); /* a broadcast gap */
    live(&f, 0, 1, E1); /* does not hold up the user stream */
    ck_assert_str_eq(delivered(&f), "1");
    const gw_order_action *r = nth(&f, GW_ORDER_REQUEST, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->stream, 1);
    ck_assert_uint_eq(r->until, 1);
    fx_done(&f);
}
END_TEST

START_TEST(held_messages_beyond_the_queue_bound_close_4008)
{
    fx f;
    connected(&f, 0);
    f.e.queue_bytes_max = 25; /* two held messages of 10 fit, a third does not */
    live(&f, 0, 3, E1);
    live(&f, 0, 4, E1);
    ck_assert_int_eq(count(&f, GW_ORDER_CLOSE), 0);
    live(&f, 0, 5, E1);
    const gw_order_action *c = nth(&f, GW_ORDER_CLOSE, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->code, 4008);
    ck_assert_int_eq(f.outstanding, 0); /* released at once */
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    fx_done(&f);
}
END_TEST

/* --- streams are identified things, any number of them --- */

START_TEST(init_keeps_each_streams_identity)
{
    fx f;
    fx_start3(&f);
    ck_assert_int_eq(f.s[0].kind, 1);
    ck_assert_str_eq(f.s[0].name, "alice");
    ck_assert_ptr_null(f.s[1].name);
    ck_assert_int_eq(f.s[2].kind, 3);
    ck_assert_str_eq(f.s[2].name, "room:1");
    fx_done(&f);
}
END_TEST

START_TEST(heads_are_matched_to_their_streams_and_a_missing_one_is_asked)
{
    fx f;
    fx_start3(&f);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    ck_assert_int_eq(f.s[1].flags & GW_ORDER_F_WANT_HEAD, GW_ORDER_F_WANT_HEAD);
    ck_assert_int_eq(f.s[2].flags & GW_ORDER_F_WANT_HEAD, GW_ORDER_F_WANT_HEAD);
    clear(&f);
    /* the router told stream 2's head only */
    gw_order_head h = {.stream = 2, .head = 40};
    gw_order_page page = {.ok = 1, .epoch = E1, .head = 0, .heads = &h, .nheads = 1};
    gw_order_reply(&f.o, &f.e, 0, f.s[0].reqno, &page);
    ck_assert_uint_eq(f.s[2].pos, 40);
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 1);
    ck_assert_int_eq(nth(&f, GW_ORDER_REQUEST, 0)->stream, 1);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 0); /* stream 1 is still unknown */
    clear(&f);
    reply(&f, 1, &(pg){.ok = 1, .epoch = E1, .head = 9}, NULL, 0);
    ck_assert_uint_eq(f.s[1].pos, 9);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 1);
    fx_done(&f);
}
END_TEST

START_TEST(nothing_is_delivered_once_the_connection_closed)
{
    fx f;
    fx_start(&f, 0, -1, 0);
    f.close_on_deliver = 2;
    int seqs[] = {1, 2, 3, 4};
    reply(&f, 0, &(pg){.ok = 1, .epoch = E1, .head = 4, .has_head_of = 1}, seqs, 4);
    ck_assert_str_eq(delivered(&f), "1,2");
    ck_assert_int_eq(f.outstanding, 2); /* 3 and 4 stay held until gw_order_free */
    fx_done(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_order");
    TCase *tc = tcase_create("order");
    tcase_add_test(tc, connect_asks_once_with_the_broadcast_head);
    tcase_add_test(tc, broadcast_since_asks_both_streams_and_welcomes_after_both);
    tcase_add_test(tc, replays_what_the_client_missed_in_order);
    tcase_add_test(tc, without_since_starts_with_what_was_stored);
    tcase_add_test(tc, router_without_the_head_field_is_asked_for_broadcast);
    tcase_add_test(tc, position_from_another_epoch_is_answered_with_resync);
    tcase_add_test(tc, welcomes_degraded_when_no_router_answers);
    tcase_add_test(tc, welcome_timeout_keeps_the_clients_positions_and_fills_in_order);
    tcase_add_test(tc, a_degraded_stream_without_position_never_passes_over_a_live_delivery);
    tcase_add_test(tc, a_degraded_stream_with_offline_messages_delivers_them_first);
    tcase_add_test(tc, a_live_delivery_overtaken_by_the_fill_is_still_delivered);
    tcase_add_test(tc, a_degraded_position_history_no_longer_reaches_is_a_resync);
    tcase_add_test(tc, a_degraded_stream_holding_deliveries_settles_with_a_resync);
    tcase_add_test(tc, history_in_time_means_no_degraded_welcome);
    tcase_add_test(tc, no_router_at_all_welcomes_in_time_and_asks_on);
    tcase_add_test(tc, a_refused_request_is_retried_after_a_pause);
    tcase_add_test(tc, deliveries_outside_streams_wait_for_the_welcome);
    tcase_add_test(tc, live_deliveries_before_the_welcome_merge_with_the_replay);
    tcase_add_test(tc, a_delivery_lost_on_the_bus_is_fetched_from_history);
    tcase_add_test(tc, a_delivery_repeated_on_the_bus_is_dropped);
    tcase_add_test(tc, a_voided_seq_is_passed_over_silently);
    tcase_add_test(tc, a_gap_history_does_not_hold_becomes_a_resync);
    tcase_add_test(tc, a_live_delivery_that_overtook_another_is_merged_once);
    tcase_add_test(tc, a_reply_to_an_older_gap_after_a_newer_one);
    tcase_add_test(tc, two_overlapping_gaps_are_filled_one_after_the_other);
    tcase_add_test(tc, a_reply_to_a_superseded_request_is_ignored);
    tcase_add_test(tc, a_voided_seq_at_page_edges);
    tcase_add_test(tc, a_long_replay_waits_for_the_queue_to_drain);
    tcase_add_test(tc, an_epoch_change_mid_replay_resyncs_and_ends_the_replay);
    tcase_add_test(tc, a_reply_from_a_new_epoch_drops_what_was_held_from_the_old);
    tcase_add_test(tc, giving_up_a_gap_after_the_welcome_resyncs_and_goes_on);
    tcase_add_test(tc, streams_keep_their_own_order);
    tcase_add_test(tc, held_messages_beyond_the_queue_bound_close_4008);
    tcase_add_test(tc, nothing_is_delivered_once_the_connection_closed);
    tcase_add_test(tc, init_keeps_each_streams_identity);
    tcase_add_test(tc, heads_are_matched_to_their_streams_and_a_missing_one_is_asked);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
