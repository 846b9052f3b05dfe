/* Unit tests: how many of a worker's longest queues are shed over the memory budget
 * (gw_shed_count): pure, so driven with plain numbers. */
#include <check.h>

#include "gw_shed.h"
#include "../wsg_check.h"

/* Within budget nothing goes, however long the queues. */
START_TEST(within_budget_sheds_nothing)
{
    size_t bytes[] = {900, 100};
    ck_assert_uint_eq(gw_shed_count(bytes, 2, 1000, 1000, 1000), 0);
}
END_TEST

/* A worker holding everything frees down to 90% of the budget: total 1100 over a budget of
 * 1000 must free 200, which the first queue of 150 does not and the second completes. */
START_TEST(frees_down_to_ninety_percent)
{
    size_t bytes[] = {150, 100, 100, 100};
    ck_assert_uint_eq(gw_shed_count(bytes, 4, 1100, 1100, 1000), 2);
}
END_TEST

/* The same excess (90 over 90% of the budget) asks a worker for its share of it: all of it
 * when it holds every queued byte (two queues of 60), a quarter (22.5: one queue) when it
 * holds a quarter. */
START_TEST(frees_its_share_of_the_excess)
{
    size_t bytes[] = {60, 60, 60};
    ck_assert_uint_eq(gw_shed_count(bytes, 3, 180, 180, 100), 2);
    ck_assert_uint_eq(gw_shed_count(bytes, 3, 180, 720, 700), 1);
}
END_TEST

/* When its queues cannot cover the goal, all of them go and no more. */
START_TEST(never_more_than_it_has)
{
    size_t bytes[] = {10, 10};
    ck_assert_uint_eq(gw_shed_count(bytes, 2, 20, 10000, 100), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_shed");
    TCase *tc = tcase_create("shed");
    tcase_add_test(tc, within_budget_sheds_nothing);
    tcase_add_test(tc, frees_down_to_ninety_percent);
    tcase_add_test(tc, frees_its_share_of_the_excess);
    tcase_add_test(tc, never_more_than_it_has);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
