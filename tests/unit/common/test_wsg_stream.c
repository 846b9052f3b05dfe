/* Unit tests: the stream-kind table both services share (wsg_stream). One behaviour per test. */
#include <check.h>
#include <string.h>

#include "wsg_check.h"
#include "wsg_stream.h"
#include "wsg_user.h"

START_TEST(labels_and_tags_of_the_two_kinds)
{
    ck_assert_str_eq(wsg_stream_label(WSG_STREAM_USER), "user");
    ck_assert_str_eq(wsg_stream_label(WSG_STREAM_BROADCAST), "broadcast");
    ck_assert_str_eq(wsg_stream_label(WSG_STREAM_NONE), "none");
    /* the Redis keys P:h:u:<user> and P:h:b of every existing deployment */
    ck_assert_str_eq(wsg_stream_tag(WSG_STREAM_USER), "u");
    ck_assert_str_eq(wsg_stream_tag(WSG_STREAM_BROADCAST), "b");
}
END_TEST

START_TEST(unknown_kinds_have_no_label)
{
    ck_assert_ptr_null(wsg_stream_label(WSG_STREAM_KINDS));
    ck_assert_ptr_null(wsg_stream_label(200));
    ck_assert_ptr_null(wsg_stream_tag(WSG_STREAM_NONE));
    ck_assert(!wsg_stream_kind_known(WSG_STREAM_NONE));
    ck_assert(!wsg_stream_kind_known(WSG_STREAM_KINDS));
    ck_assert(!wsg_stream_named(WSG_STREAM_KINDS));
}
END_TEST

START_TEST(label_lookup_is_exact)
{
    ck_assert_int_eq(wsg_stream_kind_of_label("user", 4), WSG_STREAM_USER);
    ck_assert_int_eq(wsg_stream_kind_of_label("broadcast", 9), WSG_STREAM_BROADCAST);
    ck_assert_int_eq(wsg_stream_kind_of_label("use", 3), WSG_STREAM_NONE);
    ck_assert_int_eq(wsg_stream_kind_of_label("users", 5), WSG_STREAM_NONE);
    ck_assert_int_eq(wsg_stream_kind_of_label("none", 4), WSG_STREAM_NONE);
    ck_assert_int_eq(wsg_stream_kind_of_label(NULL, 0), WSG_STREAM_NONE);
}
END_TEST

START_TEST(user_streams_are_named_by_a_valid_user_id)
{
    ck_assert(wsg_stream_named(WSG_STREAM_USER));
    ck_assert(wsg_stream_name_valid(WSG_STREAM_USER, "alice"));
    ck_assert(!wsg_stream_name_valid(WSG_STREAM_USER, ""));
    ck_assert(!wsg_stream_name_valid(WSG_STREAM_USER, NULL));
    ck_assert(!wsg_stream_name_valid(WSG_STREAM_USER, "a\x01"));
}
END_TEST

START_TEST(broadcast_is_unnamed)
{
    ck_assert(!wsg_stream_named(WSG_STREAM_BROADCAST));
    ck_assert(wsg_stream_name_valid(WSG_STREAM_BROADCAST, ""));
    ck_assert(wsg_stream_name_valid(WSG_STREAM_BROADCAST, NULL));
    ck_assert(!wsg_stream_name_valid(WSG_STREAM_BROADCAST, "x"));
    ck_assert(!wsg_stream_name_valid(WSG_STREAM_NONE, ""));
}
END_TEST

START_TEST(stream_ids)
{
    char buf[WSG_STREAM_ID_MAX + 1];
    ck_assert_int_eq(wsg_stream_id(WSG_STREAM_USER, "al:ice", buf, sizeof(buf)), 11);
    ck_assert_str_eq(buf, "user:al:ice");
    ck_assert_int_eq(wsg_stream_id(WSG_STREAM_BROADCAST, NULL, buf, sizeof(buf)), 9);
    ck_assert_str_eq(buf, "broadcast");
    ck_assert_int_eq(wsg_stream_id(WSG_STREAM_NONE, "x", buf, sizeof(buf)), -1);
}
END_TEST

START_TEST(longest_user_id_fits_a_stream_id)
{
    char name[WSG_USER_ID_MAX + 1], buf[WSG_STREAM_ID_MAX + 1];
    memset(name, 'x', WSG_USER_ID_MAX);
    name[WSG_USER_ID_MAX] = 0;
    ck_assert(wsg_stream_name_valid(WSG_STREAM_USER, name));
    ck_assert_int_eq(wsg_stream_id(WSG_STREAM_USER, name, buf, sizeof(buf)),
                     (int)strlen("user:") + WSG_USER_ID_MAX);
    ck_assert_int_eq(wsg_stream_id(WSG_STREAM_USER, name, buf, 10), -1); /* truncated: refused */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wsg_stream");
    TCase *t = tcase_create("core");
    tcase_add_test(t, labels_and_tags_of_the_two_kinds);
    tcase_add_test(t, unknown_kinds_have_no_label);
    tcase_add_test(t, label_lookup_is_exact);
    tcase_add_test(t, user_streams_are_named_by_a_valid_user_id);
    tcase_add_test(t, broadcast_is_unnamed);
    tcase_add_test(t, stream_ids);
    tcase_add_test(t, longest_user_id_fits_a_stream_id);
    suite_add_tcase(s, t);
    return wsg_check_run(s);
}
