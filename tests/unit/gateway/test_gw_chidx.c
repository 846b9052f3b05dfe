/* Unit tests for gw_chidx: a worker's local subscriber index. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "gw_chidx.h"
#include "wsg_check.h"

static int has(const gw_chidx *x, const char *ch, void *m)
{
    void *const *v;
    size_t n = gw_chidx_members(x, ch, &v);
    for (size_t i = 0; i < n; i++)
        if (v[i] == m)
            return 1;
    return 0;
}

START_TEST(members_by_channel)
{
    gw_chidx *x = gw_chidx_new();
    int a, b, c;
    ck_assert_int_eq(gw_chidx_add(x, "chat:1", &a), 0);
    ck_assert_int_eq(gw_chidx_add(x, "chat:1", &b), 0);
    ck_assert_int_eq(gw_chidx_add(x, "chat:2", &a), 0);
    void *const *v;
    ck_assert_uint_eq(gw_chidx_members(x, "chat:1", &v), 2);
    ck_assert(has(x, "chat:1", &a) && has(x, "chat:1", &b) && !has(x, "chat:1", &c));
    ck_assert_uint_eq(gw_chidx_members(x, "chat:3", &v), 0);
    ck_assert_uint_eq(gw_chidx_channels(x), 2);
    ck_assert_uint_eq(gw_chidx_subscriptions(x), 3);
    gw_chidx_free(x);
}
END_TEST

START_TEST(remove_forgets_and_empty_channels_go)
{
    gw_chidx *x = gw_chidx_new();
    int a, b;
    gw_chidx_add(x, "c", &a);
    gw_chidx_add(x, "c", &b);
    ck_assert_int_eq(gw_chidx_remove(x, "c", &a), 1);
    ck_assert_int_eq(gw_chidx_remove(x, "c", &a), 0); /* not there any more */
    ck_assert(!has(x, "c", &a) && has(x, "c", &b));
    ck_assert_int_eq(gw_chidx_remove(x, "d", &b), 0);
    ck_assert_int_eq(gw_chidx_remove(x, "c", &b), 1);
    ck_assert_uint_eq(gw_chidx_channels(x), 0);
    ck_assert_uint_eq(gw_chidx_subscriptions(x), 0);
    ck_assert_int_eq(gw_chidx_add(x, "c", &a), 0); /* a channel can come back */
    ck_assert(has(x, "c", &a));
    gw_chidx_free(x); /* frees what is left (ASan: no leak) */
}
END_TEST

START_TEST(many_members_and_channels)
{
    gw_chidx *x = gw_chidx_new();
    static int m[1000];
    char ch[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(ch, sizeof(ch), "room:%d", i % 10);
        ck_assert_int_eq(gw_chidx_add(x, ch, &m[i]), 0);
    }
    void *const *v;
    ck_assert_uint_eq(gw_chidx_members(x, "room:3", &v), 100);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(ch, sizeof(ch), "room:%d", i % 10);
        ck_assert_int_eq(gw_chidx_remove(x, ch, &m[i]), 1);
    }
    ck_assert_uint_eq(gw_chidx_members(x, "room:4", &v), 0); /* even rooms: only even members */
    ck_assert_uint_eq(gw_chidx_members(x, "room:3", &v), 100);
    ck_assert_uint_eq(gw_chidx_subscriptions(x), 500);
    ck_assert_uint_eq(gw_chidx_channels(x), 5);
    gw_chidx_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_chidx");
    TCase *tc = tcase_create("index");
    tcase_add_test(tc, members_by_channel);
    tcase_add_test(tc, remove_forgets_and_empty_channels_go);
    tcase_add_test(tc, many_members_and_channels);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
