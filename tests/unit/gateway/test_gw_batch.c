/* Unit tests: batch frame building (gw_batch): the exact form, the 64 KiB bound with the
 * closing bytes counted, and a frame that does not fit left out whole. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gw_batch.h"
#include "wsg_check.h"

START_TEST(builds_the_exact_frame)
{
    unsigned char buf[256];
    gw_batch b;
    ck_assert_int_eq(gw_batch_init(&b, buf, sizeof(buf)), 0);
    const char *f1 = "{\"type\":\"message\",\"seq\":1}";
    const char *f2 = "{\"type\":\"broadcast\",\"seq\":7,\"s\":\"a,]}\"}";
    ck_assert_int_eq(gw_batch_add(&b, f1, strlen(f1)), 0);
    ck_assert_int_eq(gw_batch_add(&b, f2, strlen(f2)), 0);
    ck_assert_uint_eq(b.n, 2);
    size_t len = gw_batch_finish(&b);
    const char *want = "{\"type\":\"batch\",\"messages\":[{\"type\":\"message\",\"seq\":1},"
                       "{\"type\":\"broadcast\",\"seq\":7,\"s\":\"a,]}\"}]}";
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(buf, want, len);
}
END_TEST

START_TEST(stays_within_its_bound)
{
    unsigned char *buf = malloc(GW_BATCH_MAX);
    gw_batch b;
    ck_assert_int_eq(gw_batch_init(&b, buf, GW_BATCH_MAX), 0);
    size_t fixed = strlen(GW_BATCH_PREFIX) + strlen(GW_BATCH_SUFFIX);
    char *frame = malloc(GW_BATCH_MAX);
    memset(frame, 'x', GW_BATCH_MAX);
    /* A frame too big for any batch: refused, nothing written. */
    ck_assert_int_eq(gw_batch_fits(&b, GW_BATCH_MAX - fixed + 1), 0);
    ck_assert_int_eq(gw_batch_add(&b, frame, GW_BATCH_MAX - fixed + 1), -1);
    ck_assert_uint_eq(b.n, 0);
    /* Two frames that fill it to the byte (one comma between them). */
    size_t first = 1000, second = GW_BATCH_MAX - fixed - first - 1;
    ck_assert_int_eq(gw_batch_add(&b, frame, first), 0);
    ck_assert_int_eq(gw_batch_fits(&b, second + 1), 0);
    ck_assert_int_eq(gw_batch_add(&b, frame, second + 1), -1);
    ck_assert_uint_eq(b.n, 1);
    ck_assert_int_eq(gw_batch_add(&b, frame, second), 0);
    ck_assert_int_eq(gw_batch_add(&b, "{}", 0), -1); /* not even an empty one (its comma) */
    ck_assert_uint_eq(gw_batch_finish(&b), GW_BATCH_MAX);
    ck_assert_mem_eq(buf + GW_BATCH_MAX - 2, "]}", 2);
    /* Too small a buffer for a batch at all. */
    ck_assert_int_eq(gw_batch_init(&b, buf, 10), -1);
    free(frame);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_batch");
    TCase *tc = tcase_create("batch");
    tcase_add_test(tc, builds_the_exact_frame);
    tcase_add_test(tc, stays_within_its_bound);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
