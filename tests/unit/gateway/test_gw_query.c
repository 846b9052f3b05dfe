/* Unit tests: the upgrade's query arguments (gw_query), fed the decoded fragments lws gives. */
#include <check.h>
#include <string.h>

#include "gw_query.h"
#include "wsg_check.h"

/* Feeds "a=1&b=2" split at '&' as lws does; returns the first status that is not OK. */
static gw_query_status feed(gw_query *q, const char *qs)
{
    gw_query_init(q);
    const char *p = qs;
    for (;;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        gw_query_status st = gw_query_add(q, p, n);
        if (st != GW_QUERY_OK || !amp)
            return st;
        p = amp + 1;
    }
}

START_TEST(reads_every_argument_in_any_order)
{
    gw_query q;
    ck_assert_int_eq(feed(&q, "epoch=7&x=1&broadcast_since=5&since=3&token=abc.def.ghi"),
                     GW_QUERY_OK);
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_TOKEN), "abc.def.ghi");
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_SINCE), "3");
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_BROADCAST_SINCE), "5");
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_EPOCH), "7");
    ck_assert_ptr_null(gw_query_get(&q, GW_QUERY_USER_ID));
    gw_query_free(&q);
}
END_TEST

START_TEST(long_arguments_do_not_hide_later_ones)
{
    /* The old reader copied each argument into 64 bytes and stopped at the first longer one:
     * a JWT before since= hid it. */
    static char qs[12000];
    strcpy(qs, "token=");
    memset(qs + 6, 'a', 9000);
    strcpy(qs + 9006, "&pad=");
    memset(qs + 9011, 'p', 2000);
    strcpy(qs + 11011, "&since=42&broadcast_since=9&epoch=1");
    gw_query q;
    ck_assert_int_eq(feed(&q, qs), GW_QUERY_OK);
    ck_assert_uint_eq(strlen(gw_query_get(&q, GW_QUERY_TOKEN)), 9000);
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_SINCE), "42");
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_BROADCAST_SINCE), "9");
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_EPOCH), "1");
    gw_query_free(&q);
}
END_TEST

START_TEST(names_match_exactly)
{
    gw_query q;
    /* broadcast_since is not since; a prefix or a longer name is another argument */
    ck_assert_int_eq(feed(&q, "broadcast_since=5&sinc=1&sincex=2&xsince=3"), GW_QUERY_OK);
    ck_assert_ptr_null(gw_query_get(&q, GW_QUERY_SINCE));
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_BROADCAST_SINCE), "5");
    gw_query_free(&q);
}
END_TEST

START_TEST(values_kept_as_given)
{
    gw_query q;
    /* lws has percent-decoded already: nothing is decoded twice; '=' after the first belongs
     * to the value; a name alone is an empty value */
    ck_assert_int_eq(feed(&q, "since=%41&user_id=a=b&epoch"), GW_QUERY_OK);
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_SINCE), "%41");
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_USER_ID), "a=b");
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_EPOCH), "");
    gw_query_free(&q);
    ck_assert_int_eq(feed(&q, "since=&&=x&"), GW_QUERY_OK);
    ck_assert_str_eq(gw_query_get(&q, GW_QUERY_SINCE), "");
    gw_query_free(&q);
    ck_assert_int_eq(feed(&q, ""), GW_QUERY_OK);
    ck_assert_ptr_null(gw_query_get(&q, GW_QUERY_TOKEN));
    gw_query_free(&q);
}
END_TEST

START_TEST(repeated_argument_refused)
{
    static const char *const cases[] = {
        "since=1&since=2",        "token=a&since=1&token=b", "user_id=a&user_id=a",
        "epoch=1&epoch",          "broadcast_since=1&broadcast_since=1",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_query q;
        ck_assert_msg(feed(&q, cases[i]) == GW_QUERY_REPEATED, "%s", cases[i]);
        gw_query_free(&q);
    }
    /* arguments the gateway does not read may repeat */
    gw_query q;
    ck_assert_int_eq(feed(&q, "x=1&x=2&since=1"), GW_QUERY_OK);
    gw_query_free(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_query");
    TCase *tc = tcase_create("query");
    tcase_add_test(tc, reads_every_argument_in_any_order);
    tcase_add_test(tc, long_arguments_do_not_hide_later_ones);
    tcase_add_test(tc, names_match_exactly);
    tcase_add_test(tc, values_kept_as_given);
    tcase_add_test(tc, repeated_argument_refused);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
