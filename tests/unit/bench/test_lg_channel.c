/* Unit tests for bench/lg_channel, the channel scenario's books: the benchmark's "nothing
 * missing" and "no duplicates" for channels rest on them. Membership is who was answered
 * `subscribed` before the run; a publication is expected once at each member of its channel
 * and nowhere else; what was sent and did not arrive is missing, exactly. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "lg_channel.h"
#include "wsg_check.h"

START_TEST(test_new_bounds)
{
    ck_assert_ptr_null(lg_chan_new(0, 1));
    ck_assert_ptr_null(lg_chan_new(10, 0));
    ck_assert_ptr_null(lg_chan_new(10, 11));
    lg_chan *c = lg_chan_new(10, 10);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(lg_chan_channels(c), 10);
    lg_chan_free(c);
    lg_chan_free(NULL);
}
END_TEST

START_TEST(test_membership)
{
    lg_chan *c = lg_chan_new(10, 3);
    ck_assert_int_eq(lg_chan_of(c, 0), 0);
    ck_assert_int_eq(lg_chan_of(c, 4), 1);
    ck_assert_int_eq(lg_chan_of(c, 8), 2);
    ck_assert_int_eq(lg_chan_join(c, 1), 0);
    ck_assert_int_eq(lg_chan_join(c, 4), 0);
    ck_assert_int_eq(lg_chan_join(c, 1), -1);   /* once */
    ck_assert_int_eq(lg_chan_join(c, 10), -1);  /* out of range */
    ck_assert_int_eq(lg_chan_subscriptions(c), 2);
    ck_assert_int_eq(lg_chan_members(c, 1), 2);
    ck_assert_int_eq(lg_chan_members(c, 0), 0);
    ck_assert_int_eq(lg_chan_members(c, 3), 0);
    ck_assert_int_eq(lg_chan_arm(c, 5, 42), 0);
    ck_assert_int_eq(lg_chan_join(c, 0), -1);   /* fixed once armed */
    ck_assert_int_eq(lg_chan_members(c, 0), 0);
    ck_assert_int_eq(lg_chan_arm(c, 5, 42), -1);
    lg_chan_free(c);
}
END_TEST

START_TEST(test_plan)
{
    enum { CONNS = 1000, CH = 100, MSGS = 20000 };
    lg_chan *a = lg_chan_new(CONNS, CH), *b = lg_chan_new(CONNS, CH);
    ck_assert_int_eq(lg_chan_target(a, 0), -1); /* nothing planned before arming */
    ck_assert_int_eq(lg_chan_arm(a, MSGS, 7), 0);
    ck_assert_int_eq(lg_chan_arm(b, MSGS, 7), 0);
    ck_assert_int_eq(lg_chan_msgs(a), MSGS);
    int hits[CH] = {0};
    for (int64_t k = 0; k < MSGS; k++) {
        int t = lg_chan_target(a, k);
        ck_assert(t >= 0 && t < CH);
        ck_assert_int_eq(t, lg_chan_target(b, k)); /* the same seed, the same plan */
        hits[t]++;
    }
    for (int i = 0; i < CH; i++) /* 200 expected each: every channel gets its share */
        ck_assert_msg(hits[i] > 100 && hits[i] < 300, "channel %d got %d", i, hits[i]);
    ck_assert_int_eq(lg_chan_target(a, MSGS), -1);
    ck_assert_int_eq(lg_chan_target(a, -1), -1);
    lg_chan_free(a);
    lg_chan_free(b);
}
END_TEST

/* Every connection a member of its channel (conn % channels), armed with msgs. */
static lg_chan *full(int conns, int channels, int64_t msgs)
{
    lg_chan *c = lg_chan_new(conns, channels);
    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < conns; i++)
        ck_assert_int_eq(lg_chan_join(c, (uint32_t)i), 0);
    ck_assert_int_eq(lg_chan_arm(c, msgs, 99), 0);
    return c;
}

START_TEST(test_receive)
{
    lg_chan *c = full(12, 4, 10); /* 3 members per channel */
    int t = lg_chan_target(c, 3);
    uint32_t member = (uint32_t)t, other = (uint32_t)((t + 1) % 4);
    lg_chan_sent(c, 3);
    ck_assert_int_eq(lg_chan_receive(c, member, 3), LG_CH_FIRST);
    ck_assert_int_eq(lg_chan_receive(c, member, 3), LG_CH_DUP);
    ck_assert_int_eq(lg_chan_receive(c, member + 4, 3), LG_CH_FIRST); /* another member */
    ck_assert_int_eq(lg_chan_receive(c, other, 3), LG_CH_MISROUTED);
    ck_assert_int_eq(lg_chan_receive(c, member, 10), LG_CH_FOREIGN);  /* not planned */
    ck_assert_int_eq(lg_chan_receive(c, member, -1), LG_CH_FOREIGN);
    ck_assert_int_eq(lg_chan_receive(c, 12, 3), LG_CH_FOREIGN);       /* no such conn */
    lg_chan_free(c);
}
END_TEST

START_TEST(test_not_a_member)
{
    lg_chan *c = lg_chan_new(4, 2);
    ck_assert_int_eq(lg_chan_join(c, 0), 0); /* conn 2, also of channel 0, never answered */
    ck_assert_int_eq(lg_chan_arm(c, 50, 1), 0);
    int64_t k = 0;
    while (lg_chan_target(c, k) != 0)
        k++;
    lg_chan_sent(c, k);
    ck_assert_int_eq(lg_chan_expected(c), 1);
    ck_assert_int_eq(lg_chan_receive(c, 2, k), LG_CH_FOREIGN);
    ck_assert_int_eq(lg_chan_missing(c), 1);
    ck_assert_int_eq(lg_chan_receive(c, 0, k), LG_CH_FIRST);
    ck_assert_int_eq(lg_chan_missing(c), 0);
    lg_chan_free(c);
}
END_TEST

START_TEST(test_expected_and_missing)
{
    lg_chan *c = full(30, 3, 100); /* 10 members per channel */
    ck_assert_int_eq(lg_chan_expected(c), 0);
    ck_assert_int_eq(lg_chan_missing(c), 0); /* nothing sent, nothing owed */
    for (int64_t k = 0; k < 100; k += 2)
        lg_chan_sent(c, k);
    lg_chan_sent(c, 0); /* counted once */
    ck_assert_int_eq(lg_chan_expected(c), 500);
    ck_assert_int_eq(lg_chan_missing(c), 500);
    /* every member gets every sent publication but one member misses publication 4 */
    int t4 = lg_chan_target(c, 4);
    for (int64_t k = 0; k < 100; k += 2)
        for (uint32_t i = 0; i < 30; i++)
            if (lg_chan_of(c, i) == lg_chan_target(c, k) && !(k == 4 && i == (uint32_t)t4))
                ck_assert_int_eq(lg_chan_receive(c, i, k), LG_CH_FIRST);
    ck_assert_int_eq(lg_chan_missing(c), 1);
    ck_assert_int_eq(lg_chan_receive(c, (uint32_t)t4, 4), LG_CH_FIRST);
    ck_assert_int_eq(lg_chan_missing(c), 0);
    /* an unsent publication that arrives anyway is not owed, and owes nothing */
    ck_assert_int_eq(lg_chan_receive(c, (uint32_t)lg_chan_target(c, 1), 1), LG_CH_FIRST);
    ck_assert_int_eq(lg_chan_expected(c), 500);
    lg_chan_free(c);
}
END_TEST

START_TEST(test_frames)
{
    char buf[128];
    ck_assert_int_eq(lg_chan_name(buf, sizeof(buf), "bench-", 7), 7);
    ck_assert_str_eq(buf, "bench-7");
    ck_assert_int_eq(lg_chan_name(buf, 7, "bench-", 7), -1);
    int n = lg_chan_subscribe_frame(buf, sizeof(buf), "bench-", 12);
    ck_assert_str_eq(buf, "{\"type\":\"subscribe\",\"channel\":\"bench-12\"}");
    ck_assert_int_eq(n, (int)strlen(buf));
    n = lg_chan_publish_frame(buf, sizeof(buf), "b.", 3, "1 2 3 4");
    ck_assert_str_eq(buf, "{\"type\":\"publish\",\"channel\":\"b.3\",\"content\":\"1 2 3 4\"}");
    ck_assert_int_eq(n, (int)strlen(buf));
    ck_assert_int_eq(lg_chan_subscribe_frame(buf, 20, "bench-", 12), -1);
    ck_assert_int_eq(lg_chan_publish_frame(buf, 40, "bench-", 12, "1 2 3 4"), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lg_channel");
    TCase *tc = tcase_create("channel");
    tcase_add_test(tc, test_new_bounds);
    tcase_add_test(tc, test_membership);
    tcase_add_test(tc, test_plan);
    tcase_add_test(tc, test_receive);
    tcase_add_test(tc, test_not_a_member);
    tcase_add_test(tc, test_expected_and_missing);
    tcase_add_test(tc, test_frames);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
