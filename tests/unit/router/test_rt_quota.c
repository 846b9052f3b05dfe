/* Unit tests for rt_quota: the per-connection budget of bytes stored for offline users. A
 * minute's budget at once, then refilled at budget / 60 s; a message the bucket cannot pay is
 * refused whole; senders are independent; state is dropped when full again, on close and on
 * node departure, and never grows past its cap. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "rt_quota.h"
#include "wsg_check.h"

#define SEC INT64_C(1000000)
#define T0 (1000 * SEC)

START_TEST(burst_then_refill)
{
    rt_quota *q = rt_quota_new(6000, 16); /* 100 bytes per second */
    /* a whole minute's budget at once ... */
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(rt_quota_take(q, "gw1", 7, 1000, T0), RT_QUOTA_OK);
    /* ... and not a byte more */
    ck_assert_int_eq(rt_quota_take(q, "gw1", 7, 1, T0), RT_QUOTA_OVER);
    /* refused messages cost nothing: 10 s later exactly 1000 bytes are back */
    ck_assert_int_eq(rt_quota_take(q, "gw1", 7, 1001, T0 + 10 * SEC), RT_QUOTA_OVER);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 7, 1000, T0 + 10 * SEC), RT_QUOTA_OK);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 7, 1, T0 + 10 * SEC), RT_QUOTA_OVER);
    /* sustained: 100 bytes a second pass, forever */
    for (int s = 11; s < 300; s++)
        ck_assert_int_eq(rt_quota_take(q, "gw1", 7, 100, T0 + s * SEC), RT_QUOTA_OK);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 7, 100, T0 + 299 * SEC), RT_QUOTA_OVER);
    rt_quota_free(q);
}
END_TEST

START_TEST(message_over_the_budget_never_passes)
{
    rt_quota *q = rt_quota_new(6000, 16);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 1, 6001, T0), RT_QUOTA_OVER);
    ck_assert_uint_eq(rt_quota_len(q), 0);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 1, 6000, T0), RT_QUOTA_OK);
    rt_quota_free(q);
}
END_TEST

START_TEST(senders_are_independent)
{
    rt_quota *q = rt_quota_new(1000, 16);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 1, 1000, T0), RT_QUOTA_OK);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 1, 1, T0), RT_QUOTA_OVER);
    /* another connection on the same node, the same conn id on another node */
    ck_assert_int_eq(rt_quota_take(q, "gw1", 2, 1000, T0), RT_QUOTA_OK);
    ck_assert_int_eq(rt_quota_take(q, "gw2", 1, 1000, T0), RT_QUOTA_OK);
    /* a node id that prefixes another is another node */
    ck_assert_int_eq(rt_quota_take(q, "gw", 1, 1000, T0), RT_QUOTA_OK);
    ck_assert_uint_eq(rt_quota_len(q), 4);
    rt_quota_free(q);
}
END_TEST

START_TEST(state_is_freed)
{
    rt_quota *q = rt_quota_new(6000, 16);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 1, 6000, T0), RT_QUOTA_OK);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 2, 3000, T0), RT_QUOTA_OK);
    ck_assert_int_eq(rt_quota_take(q, "gw2", 3, 600, T0), RT_QUOTA_OK);
    ck_assert_uint_eq(rt_quota_len(q), 3);
    /* idle: gw2/3 is full again after 6 s, gw1/2 after 30 s */
    ck_assert_uint_eq(rt_quota_prune(q, T0 + 6 * SEC - 1), 0);
    ck_assert_uint_eq(rt_quota_prune(q, T0 + 6 * SEC), 1);
    ck_assert_uint_eq(rt_quota_prune(q, T0 + 30 * SEC), 1);
    ck_assert_uint_eq(rt_quota_len(q), 1);
    /* a closed connection starts afresh (a new conn id would anyway) */
    rt_quota_forget(q, "gw1", 1);
    ck_assert_uint_eq(rt_quota_len(q), 0);
    ck_assert_int_eq(rt_quota_take(q, "gw1", 1, 6000, T0 + 30 * SEC), RT_QUOTA_OK);
    rt_quota_forget(q, "gw1", 99); /* unknown: nothing happens */
    /* a node that left takes its connections' buckets along */
    ck_assert_int_eq(rt_quota_take(q, "gw1", 5, 10, T0 + 30 * SEC), RT_QUOTA_OK);
    ck_assert_int_eq(rt_quota_take(q, "gw2", 5, 10, T0 + 30 * SEC), RT_QUOTA_OK);
    rt_quota_forget_node(q, "gw1");
    ck_assert_uint_eq(rt_quota_len(q), 1);
    rt_quota_free(q);
}
END_TEST

START_TEST(bounded_table)
{
    rt_quota *q = rt_quota_new(6000, 3);
    for (uint64_t c = 1; c <= 3; c++)
        ck_assert_int_eq(rt_quota_take(q, "gw1", c, 600, T0), RT_QUOTA_OK);
    /* a fourth sender while all three are busy: refused, the table does not grow */
    ck_assert_int_eq(rt_quota_take(q, "gw1", 4, 1, T0), RT_QUOTA_FULL);
    ck_assert_uint_eq(rt_quota_len(q), 3);
    /* the known ones still pay from their buckets */
    ck_assert_int_eq(rt_quota_take(q, "gw1", 2, 600, T0), RT_QUOTA_OK);
    /* once some are idle, the cap makes room by pruning them */
    ck_assert_int_eq(rt_quota_take(q, "gw1", 4, 1, T0 + 6 * SEC), RT_QUOTA_OK);
    ck_assert_uint_eq(rt_quota_len(q), 2);
    /* a node id too long to be one is refused, never truncated into another's */
    char longid[80];
    snprintf(longid, sizeof(longid), "%070d", 1);
    ck_assert_int_eq(rt_quota_take(q, longid, 1, 1, T0), RT_QUOTA_FULL);
    rt_quota_free(q);
}
END_TEST

START_TEST(unlimited)
{
    rt_quota *q = rt_quota_new(0, 1);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(rt_quota_take(q, "gw1", (uint64_t)i, 1 << 20, T0), RT_QUOTA_OK);
    ck_assert_uint_eq(rt_quota_len(q), 0);
    rt_quota_free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_quota");
    TCase *tc = tcase_create("quota");
    tcase_add_test(tc, burst_then_refill);
    tcase_add_test(tc, message_over_the_budget_never_passes);
    tcase_add_test(tc, senders_are_independent);
    tcase_add_test(tc, state_is_freed);
    tcase_add_test(tc, bounded_table);
    tcase_add_test(tc, unlimited);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
