/* Unit tests for bench/lg_hist, the load generator's latency histogram: empty histograms,
 * exact small values, the relative error bound of every bucket, percentiles of known
 * distributions, merging, and values outside the range. */
#include <check.h>
#include <math.h>
#include <stdint.h>

#include "lg_hist.h"
#include "wsg_check.h"

/* A bucket reports its middle: half a bucket width, at most 1/128 of the value. */
#define REL_BOUND (1.0 / 128.0)

static void assert_within(int64_t got, int64_t want)
{
    double err = fabs((double)got - (double)want);
    ck_assert_msg(err <= REL_BOUND * (double)want + 0.5,
                  "got %lld for %lld: error %.1f over the bound", (long long)got,
                  (long long)want, err);
}

START_TEST(test_empty)
{
    lg_hist *h = lg_hist_new();
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(lg_hist_count(h), 0);
    ck_assert_int_eq(lg_hist_quantile(h, 0.5), 0);
    ck_assert_int_eq(lg_hist_quantile(h, 1.0), 0);
    ck_assert_int_eq(lg_hist_max(h), 0);
    ck_assert(lg_hist_mean(h) == 0.0);
    lg_hist_free(h);
    lg_hist_free(NULL);
}
END_TEST

START_TEST(test_small_values_exact)
{
    lg_hist *h = lg_hist_new();
    ck_assert_ptr_nonnull(h);
    for (int64_t v = 0; v < 128; v++)
        lg_hist_record(h, v);
    ck_assert_uint_eq(lg_hist_count(h), 128);
    for (int64_t k = 1; k <= 128; k++)
        ck_assert_int_eq(lg_hist_quantile(h, (double)k / 128.0), k - 1);
    ck_assert_int_eq(lg_hist_max(h), 127);
    ck_assert(fabs(lg_hist_mean(h) - 63.5) < 1e-9);
    lg_hist_free(h);
}
END_TEST

/* Every value from 128 to 2^37 lands in a bucket whose reported value is within the bound:
 * one value next to a far larger one, so the reported maximum does not clamp it. */
START_TEST(test_bucket_error_bound)
{
    int64_t checked = 0;
    for (int64_t v = 128; v < (1LL << 37); v += v / 97 + 1) {
        lg_hist *h = lg_hist_new();
        ck_assert_ptr_nonnull(h);
        lg_hist_record(h, v);
        lg_hist_record(h, 1LL << 40);
        assert_within(lg_hist_quantile(h, 0.5), v);
        lg_hist_free(h);
        checked++;
    }
    ck_assert_int_gt(checked, 1500);
}
END_TEST

START_TEST(test_uniform_percentiles)
{
    lg_hist *h = lg_hist_new();
    ck_assert_ptr_nonnull(h);
    for (int64_t v = 1; v <= 100000; v++)
        lg_hist_record(h, v);
    assert_within(lg_hist_quantile(h, 0.50), 50000);
    assert_within(lg_hist_quantile(h, 0.90), 90000);
    assert_within(lg_hist_quantile(h, 0.99), 99000);
    assert_within(lg_hist_quantile(h, 0.999), 99900);
    assert_within(lg_hist_quantile(h, 1.0), 100000); /* a bucket middle, never above the max */
    ck_assert_int_le(lg_hist_quantile(h, 1.0), 100000);
    ck_assert_int_eq(lg_hist_max(h), 100000);
    ck_assert(fabs(lg_hist_mean(h) - 50000.5) < 1e-6);
    lg_hist_free(h);
}
END_TEST

/* A bimodal latency: 99 % fast, 1 % slow. p99 is the last fast one, p99.9 a slow one. */
START_TEST(test_bimodal_percentiles)
{
    lg_hist *h = lg_hist_new();
    ck_assert_ptr_nonnull(h);
    for (int i = 0; i < 9900; i++)
        lg_hist_record(h, 1000);
    for (int i = 0; i < 100; i++)
        lg_hist_record(h, 250000);
    assert_within(lg_hist_quantile(h, 0.50), 1000);
    assert_within(lg_hist_quantile(h, 0.99), 1000);
    assert_within(lg_hist_quantile(h, 0.991), 250000);
    assert_within(lg_hist_quantile(h, 0.999), 250000);
    ck_assert_int_eq(lg_hist_max(h), 250000);
    lg_hist_free(h);
}
END_TEST

START_TEST(test_negative_counts_as_zero)
{
    lg_hist *h = lg_hist_new();
    ck_assert_ptr_nonnull(h);
    lg_hist_record(h, -5000);
    ck_assert_uint_eq(lg_hist_count(h), 1);
    ck_assert_int_eq(lg_hist_quantile(h, 1.0), 0);
    ck_assert_int_eq(lg_hist_max(h), 0);
    lg_hist_free(h);
}
END_TEST

/* Beyond 2^37 µs values share the top bucket; the quantile never exceeds the true max. */
START_TEST(test_out_of_range)
{
    lg_hist *h = lg_hist_new();
    ck_assert_ptr_nonnull(h);
    lg_hist_record(h, INT64_MAX);
    lg_hist_record(h, 1LL << 50);
    ck_assert_uint_eq(lg_hist_count(h), 2);
    ck_assert_int_eq(lg_hist_max(h), INT64_MAX);
    ck_assert_int_le(lg_hist_quantile(h, 0.5), INT64_MAX);
    ck_assert_int_ge(lg_hist_quantile(h, 0.5), 1LL << 37);
    lg_hist_free(h);
}
END_TEST

START_TEST(test_merge_equals_recording_all)
{
    lg_hist *a = lg_hist_new(), *b = lg_hist_new(), *all = lg_hist_new();
    ck_assert(a && b && all);
    for (int64_t v = 1; v <= 30000; v++) {
        lg_hist_record(v % 3 ? a : b, v * 7);
        lg_hist_record(all, v * 7);
    }
    lg_hist_merge(a, b);
    ck_assert_uint_eq(lg_hist_count(a), lg_hist_count(all));
    ck_assert_int_eq(lg_hist_max(a), lg_hist_max(all));
    ck_assert(fabs(lg_hist_mean(a) - lg_hist_mean(all)) < 1e-6);
    static const double qs[] = {0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0};
    for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        ck_assert_int_eq(lg_hist_quantile(a, qs[i]), lg_hist_quantile(all, qs[i]));
    /* merging an empty histogram changes nothing; into an empty one copies */
    lg_hist *empty = lg_hist_new();
    ck_assert_ptr_nonnull(empty);
    lg_hist_merge(a, empty);
    ck_assert_uint_eq(lg_hist_count(a), 30000);
    lg_hist_merge(empty, all);
    ck_assert_int_eq(lg_hist_quantile(empty, 0.5), lg_hist_quantile(all, 0.5));
    ck_assert_int_eq(lg_hist_max(empty), 210000);
    lg_hist_free(empty);
    lg_hist_free(a);
    lg_hist_free(b);
    lg_hist_free(all);
}
END_TEST

static Suite *hist_suite(void)
{
    Suite *s = suite_create("lg_hist");
    TCase *t = tcase_create("hist");
    tcase_add_test(t, test_empty);
    tcase_add_test(t, test_small_values_exact);
    tcase_add_test(t, test_bucket_error_bound);
    tcase_add_test(t, test_uniform_percentiles);
    tcase_add_test(t, test_bimodal_percentiles);
    tcase_add_test(t, test_negative_counts_as_zero);
    tcase_add_test(t, test_out_of_range);
    tcase_add_test(t, test_merge_equals_recording_all);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return wsg_check_run(hist_suite());
}
