/* Unit tests for gw_order's streams added after the connect (channel subscriptions): the
 * `subscribed` answer after the welcome and before the replay, removal with held items, late
 * replies for removed streams and reused slots, resync of a channel stream, request numbers
 * unique per connection. (test_gw_order.c has the connect's streams.) */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_order.h"
#include "wsg_check.h"

#define E1 4242
#define MAXA 256

typedef struct tok {
    uint64_t seq;
} tok;

typedef struct fx {
    gw_order o;
    gw_order_stream s[4]; /* 0 user, 1 broadcast (the connect's), 2.. channels */
    gw_order_env e;
    gw_order_action a[MAXA];
    int n;
    int outstanding;
} fx;

static int on_act(const gw_order_action *a, void *arg)
{
    fx *f = arg;
    ck_assert_int_lt(f->n, MAXA);
    f->a[f->n++] = *a;
    if (a->kind == GW_ORDER_DELIVER || a->kind == GW_ORDER_DROP) {
        ck_assert_uint_eq(((tok *)a->item.msg)->seq, a->item.seq);
        free(a->item.msg);
        f->outstanding--;
    }
    return 0;
}

static size_t on_queued(void *arg)
{
    (void)arg;
    return 0;
}

static gw_order_item item(fx *f, uint64_t seq, uint64_t epoch)
{
    tok *t = malloc(sizeof(*t));
    ck_assert_ptr_nonnull(t);
    t->seq = seq;
    f->outstanding++;
    return (gw_order_item){.msg = t, .seq = seq, .epoch = epoch, .len = 10};
}

/* Connects with a user position 0 and no broadcast position; the reply is not in yet. */
static void fx_start(fx *f)
{
    memset(f, 0, sizeof(*f));
    f->s[0].kind = 1;
    f->s[0].name = "alice";
    f->s[1].kind = 2;
    gw_order_init(&f->o, f->s, 2, 0);
    f->e = (gw_order_env){.s = f->s, .n = 2, .act = on_act, .queued = on_queued, .arg = f,
                          .queue_bytes_max = 1 << 20, .now_us = 1000000};
    int has[2] = {1, 0};
    uint64_t at[2] = {0, 0};
    ck_assert_int_eq(gw_order_start(&f->o, &f->e, has, at), 0);
}

typedef struct pg {
    int resync;
    uint64_t head;
} pg;

static void reply_to(fx *f, size_t i, uint32_t reqno, pg p, const uint64_t *seqs, size_t n)
{
    gw_order_item items[16];
    for (size_t k = 0; k < n; k++)
        items[k] = item(f, seqs[k], E1);
    gw_order_head head = {.stream = 1, .head = 0};
    gw_order_page page = {.ok = 1, .resync = p.resync, .epoch = E1, .head = p.head,
                          .items = items, .n = n, .heads = i == 0 ? &head : NULL,
                          .nheads = i == 0};
    gw_order_reply(&f->o, &f->e, i, reqno, &page);
}

static void reply(fx *f, size_t i, pg p, const uint64_t *seqs, size_t n)
{
    reply_to(f, i, f->s[i].reqno, p, seqs, n);
}

static void welcomed(fx *f)
{
    fx_start(f);
    reply(f, 0, (pg){.head = 0}, NULL, 0);
    f->n = 0;
}

/* Adds a channel stream in slot i, as gw_resume does (growing the array when i == n). */
static void add(fx *f, size_t i, int has_since, uint64_t since, uint64_t epoch)
{
    if (i == f->e.n)
        f->e.n++;
    f->s[i].kind = 3;
    f->s[i].name = i == 2 ? "chat:a" : "chat:b";
    ck_assert_int_eq(gw_order_add(&f->o, &f->e, i, has_since, since, epoch), 0);
}

static void live(fx *f, size_t i, uint64_t seq)
{
    gw_order_deliver(&f->o, &f->e, i, item(f, seq, E1));
}

static int index_of(const fx *f, gw_order_kind k)
{
    for (int j = 0; j < f->n; j++)
        if (f->a[j].kind == k)
            return j;
    return -1;
}

static int count(const fx *f, gw_order_kind k)
{
    int c = 0;
    for (int j = 0; j < f->n; j++)
        c += f->a[j].kind == k;
    return c;
}

static const char *delivered(const fx *f)
{
    static char buf[256];
    size_t o = 0;
    buf[0] = 0;
    for (int j = 0; j < f->n; j++)
        if (f->a[j].kind == GW_ORDER_DELIVER)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%llu", o ? "," : "",
                                  (unsigned long long)f->a[j].item.seq);
    return buf;
}

static void fx_done(fx *f)
{
    gw_order_free(&f->o, &f->e);
    ck_assert_int_eq(f->outstanding, 0);
}

START_TEST(add_after_welcome_answers_subscribed_at_the_head)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 0, 0, 0);
    ck_assert_int_eq(f.n, 1);
    ck_assert_int_eq(f.a[0].kind, GW_ORDER_REQUEST);
    ck_assert_int_eq(f.a[0].stream, 2);
    ck_assert_int_eq(f.a[0].has_after, 0);
    ck_assert_int_eq(f.a[0].with_head, 0);
    live(&f, 2, 6); /* before the first reply: held, the position is unknown */
    ck_assert_str_eq(delivered(&f), "");
    f.n = 0;
    reply(&f, 2, (pg){.head = 5}, NULL, 0);
    ck_assert_int_eq(f.a[0].kind, GW_ORDER_SUBSCRIBED);
    ck_assert_uint_eq(f.a[0].pos, 5);
    ck_assert_uint_eq(f.a[0].epoch, E1);
    ck_assert_int_eq(f.a[0].stream, 2);
    ck_assert_str_eq(delivered(&f), "6");
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 0);
    f.n = 0;
    live(&f, 2, 7);
    ck_assert_str_eq(delivered(&f), "7");
    fx_done(&f);
}
END_TEST

START_TEST(add_with_since_replays_after_subscribed_then_held_live)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 1, 3, E1);
    ck_assert_int_eq(f.a[0].has_after, 1);
    ck_assert_uint_eq(f.a[0].after, 3);
    ck_assert_uint_eq(f.a[0].epoch, E1);
    live(&f, 2, 6);
    f.n = 0;
    reply(&f, 2, (pg){.head = 6}, (uint64_t[]){4, 5}, 2);
    ck_assert_int_eq(f.a[0].kind, GW_ORDER_SUBSCRIBED);
    ck_assert_uint_eq(f.a[0].pos, 3);
    ck_assert_str_eq(delivered(&f), "4,5,6");
    fx_done(&f);
}
END_TEST

START_TEST(since_with_a_gap_resyncs_the_channel_stream)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 1, 3, E1);
    f.n = 0;
    reply(&f, 2, (pg){.resync = 1, .head = 9}, (uint64_t[]){8, 9}, 2);
    int sub = index_of(&f, GW_ORDER_SUBSCRIBED), rs = index_of(&f, GW_ORDER_RESYNC);
    ck_assert_int_ge(sub, 0);
    ck_assert_int_gt(rs, sub);
    ck_assert_int_eq(f.a[rs].stream, 2);
    ck_assert_uint_eq(f.a[sub].pos, 7);
    ck_assert_uint_eq(f.a[rs].pos, 7);
    ck_assert_str_eq(delivered(&f), "8,9");
    fx_done(&f);
}
END_TEST

START_TEST(remove_drops_what_the_stream_holds)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 0, 0, 0);
    reply(&f, 2, (pg){.head = 5}, NULL, 0);
    live(&f, 2, 8); /* a gap: held while 6..7 are asked */
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 1);
    f.n = 0;
    gw_order_remove(&f.o, &f.e, 2);
    ck_assert_int_eq(f.outstanding, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_DROP), 1);
    ck_assert_int_eq(f.a[0].why, GW_ORDER_WHY_CLOSED);
    ck_assert_int_eq(f.s[2].kind, 0);
    ck_assert_int_eq(gw_order_waiting(&f.o, &f.e), 0);
    fx_done(&f);
}
END_TEST

START_TEST(late_reply_after_removal_is_ignored)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 1, 3, 0);
    uint32_t r = f.s[2].reqno;
    gw_order_remove(&f.o, &f.e, 2);
    f.n = 0;
    reply_to(&f, 2, r, (pg){.head = 9}, (uint64_t[]){4, 5}, 2);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 0);
    ck_assert_str_eq(delivered(&f), "");
    ck_assert_int_eq(f.outstanding, 0);
    fx_done(&f);
}
END_TEST

/* A new subscription in a freed slot never takes the old one's reply: request numbers are
 * unique per connection, not per slot. */
START_TEST(a_reused_slot_ignores_the_old_streams_reply)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 1, 3, 0);
    uint32_t old = f.s[2].reqno;
    gw_order_remove(&f.o, &f.e, 2);
    add(&f, 2, 0, 0, 0);
    ck_assert_uint_ne(f.s[2].reqno, old);
    f.n = 0;
    reply_to(&f, 2, old, (pg){.head = 9}, (uint64_t[]){4}, 1);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 0);
    reply(&f, 2, (pg){.head = 20}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 1);
    ck_assert_uint_eq(f.s[2].pos, 20);
    fx_done(&f);
}
END_TEST

START_TEST(request_numbers_are_unique_per_connection)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 0, 0, 0);
    add(&f, 3, 0, 0, 0);
    ck_assert_uint_ne(f.s[2].reqno, f.s[3].reqno);
    ck_assert_uint_ne(f.s[2].reqno, f.s[0].reqno);
    fx_done(&f);
}
END_TEST

/* A subscribe before the welcome is answered after it: welcome, subscribed, then what the
 * channel held; the welcome does not wait for the channel, nor name it. */
START_TEST(subscribe_before_the_welcome_is_answered_after_it)
{
    fx f;
    fx_start(&f);
    add(&f, 2, 0, 0, 0);
    reply(&f, 2, (pg){.head = 5}, NULL, 0);
    live(&f, 2, 6);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 0);
    ck_assert_str_eq(delivered(&f), "");
    f.n = 0;
    reply(&f, 0, (pg){.head = 0}, NULL, 0);
    int w = index_of(&f, GW_ORDER_WELCOME), s = index_of(&f, GW_ORDER_SUBSCRIBED),
        d = index_of(&f, GW_ORDER_DELIVER);
    ck_assert_int_ge(w, 0);
    ck_assert_int_gt(s, w);
    ck_assert_int_gt(d, s);
    ck_assert_str_eq(delivered(&f), "6");
    fx_done(&f);
}
END_TEST

START_TEST(the_welcome_does_not_wait_for_a_channel)
{
    fx f;
    fx_start(&f);
    add(&f, 2, 0, 0, 0);
    f.n = 0;
    reply(&f, 0, (pg){.head = 0}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_WELCOME), 1);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 0);
    f.n = 0;
    reply(&f, 2, (pg){.head = 5}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 1);
    fx_done(&f);
}
END_TEST

START_TEST(announced_only_after_subscribed)
{
    fx f;
    welcomed(&f);
    add(&f, 2, 0, 0, 0);
    ck_assert_int_eq(gw_order_announced(&f.o, &f.s[2]), 0);
    reply(&f, 2, (pg){.head = 5}, NULL, 0);
    ck_assert_int_eq(gw_order_announced(&f.o, &f.s[2]), 1);
    fx_done(&f);
}
END_TEST

/* Fails stream i's request until history gives up on it (refused, then retried after each
 * pause). */
static void refuse_until_given_up(fx *f, size_t i)
{
    for (int t = 0; t < GW_ORDER_TRIES; t++) {
        if (f->s[i].flags & GW_ORDER_F_BACKOFF) {
            f->e.now_us = f->s[i].deadline;
            gw_order_check(&f->o, &f->e);
        }
        gw_order_page page = {.ok = 0};
        gw_order_reply(&f->o, &f->e, i, f->s[i].reqno, &page);
    }
}

START_TEST(a_subscription_without_history_is_answered_and_filled_later)
{
    /* Redis is down: the subscribe is answered without history (the client's since, no
     * closing 1012), publications without seq go out at once, seq'd ones wait for the fill. */
    fx f;
    welcomed(&f);
    add(&f, 2, 1, 3, E1);
    add(&f, 3, 0, 0, 0);
    f.n = 0;
    refuse_until_given_up(&f, 2);
    refuse_until_given_up(&f, 3);
    ck_assert_int_eq(count(&f, GW_ORDER_CLOSE), 0);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 2);
    const gw_order_action *a = &f.a[index_of(&f, GW_ORDER_SUBSCRIBED)];
    ck_assert_int_eq(a->stream, 2);
    ck_assert_int_eq(a->degraded, 1);
    ck_assert_uint_eq(a->pos, 3);
    ck_assert_uint_eq(a->epoch, E1);
    ck_assert_int_eq(gw_order_announced(&f.o, &f.s[2]), 1);
    ck_assert(f.s[2].flags & GW_ORDER_F_WAITING); /* asked on */
    f.n = 0;
    live(&f, 2, 5);
    live(&f, 3, 9);
    ck_assert_str_eq(delivered(&f), "");
    ck_assert_int_eq(count(&f, GW_ORDER_REQUEST), 2); /* the held ones ask again at once */
    f.n = 0;
    reply(&f, 2, (pg){.head = 5}, (uint64_t[]){4, 5}, 2);
    reply(&f, 3, (pg){.head = 9}, NULL, 0);
    ck_assert_int_eq(count(&f, GW_ORDER_SUBSCRIBED), 0); /* answered once only */
    ck_assert_int_eq(count(&f, GW_ORDER_RESYNC), 0);
    ck_assert_str_eq(delivered(&f), "4,5,9");
    fx_done(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_order_chan");
    TCase *tc = tcase_create("late streams");
    tcase_add_test(tc, add_after_welcome_answers_subscribed_at_the_head);
    tcase_add_test(tc, add_with_since_replays_after_subscribed_then_held_live);
    tcase_add_test(tc, since_with_a_gap_resyncs_the_channel_stream);
    tcase_add_test(tc, remove_drops_what_the_stream_holds);
    tcase_add_test(tc, late_reply_after_removal_is_ignored);
    tcase_add_test(tc, a_reused_slot_ignores_the_old_streams_reply);
    tcase_add_test(tc, request_numbers_are_unique_per_connection);
    tcase_add_test(tc, subscribe_before_the_welcome_is_answered_after_it);
    tcase_add_test(tc, the_welcome_does_not_wait_for_a_channel);
    tcase_add_test(tc, announced_only_after_subscribed);
    tcase_add_test(tc, a_subscription_without_history_is_answered_and_filled_later);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
