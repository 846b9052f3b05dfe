/* Unit tests: client RPC's pure parts (gateway/gw_rpc.c): the WSGATE_RPC_TYPES globs, a
 * connection's table of waiting calls (limits, reqnos, deadlines) and the bounded label set
 * of wsgate_frames_unhandled_total. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_rpc.h"
#include "../wsg_check.h"

START_TEST(glob_matches_runs_including_dots)
{
    ck_assert(gw_glob_match("chat.*", "chat.echo"));
    ck_assert(gw_glob_match("chat.*", "chat.room.send"));
    ck_assert(gw_glob_match("chat.*", "chat."));
    ck_assert(!gw_glob_match("chat.*", "chat"));
    ck_assert(!gw_glob_match("chat.*", "xchat.echo"));
    ck_assert(gw_glob_match("*", "anything.at.all"));
    ck_assert(gw_glob_match("orders.get", "orders.get"));
    ck_assert(!gw_glob_match("orders.get", "orders.getx"));
    ck_assert(!gw_glob_match("orders.get", "orders.ge"));
    ck_assert(gw_glob_match("*.get", "orders.get"));
    ck_assert(gw_glob_match("a*b*c", "aXXbYYbc"));
    ck_assert(!gw_glob_match("a*b*c", "aXXbYYb"));
    ck_assert(gw_glob_match("**x", "x"));
    ck_assert(!gw_glob_match("", "x"));
    ck_assert(gw_glob_match("", ""));
}
END_TEST

START_TEST(glob_is_not_exponential)
{
    char s[4001];
    memset(s, 'a', 4000);
    s[4000] = '\0';
    ck_assert(!gw_glob_match("*a*a*a*a*a*a*a*a*b", s));
}
END_TEST

START_TEST(globs_parse_a_list)
{
    char err[256] = "";
    gw_globs *g = NULL;
    ck_assert_int_eq(gw_globs_parse(" chat.* , orders.get,x", &g, err, sizeof(err)), 0);
    ck_assert(g != NULL);
    ck_assert(gw_globs_match(g, "chat.echo"));
    ck_assert(gw_globs_match(g, "orders.get"));
    ck_assert(gw_globs_match(g, "x"));
    ck_assert(!gw_globs_match(g, "orders.put"));
    ck_assert(!gw_globs_match(g, "send_message.x"));
    gw_globs_free(g);

    ck_assert_int_eq(gw_globs_parse("", &g, err, sizeof(err)), 0);
    ck_assert(g == NULL);
    ck_assert(!gw_globs_match(NULL, "chat.echo"));
    ck_assert_int_eq(gw_globs_parse(NULL, &g, err, sizeof(err)), 0);

    ck_assert_int_eq(gw_globs_parse("chat.*,", &g, err, sizeof(err)), -1);
    ck_assert(g == NULL);
    ck_assert_int_eq(gw_globs_parse("a b", &g, err, sizeof(err)), -1);
    ck_assert(strstr(err, "a b") != NULL);
    ck_assert_int_eq(gw_globs_parse("chat.>", &g, err, sizeof(err)), -1);
    char longp[80];
    memset(longp, 'a', 65);
    longp[65] = '\0';
    ck_assert_int_eq(gw_globs_parse(longp, &g, err, sizeof(err)), -1);
}
END_TEST

START_TEST(table_limits_rpc_and_forwards_apart)
{
    gw_rpc_table t = {0};
    int64_t a = gw_rpc_add(&t, 1, "\"a\"", 100, 2);
    int64_t b = gw_rpc_add(&t, 1, "\"b\"", 200, 2);
    ck_assert(a > 0 && b > 0 && a != b);
    ck_assert_int_eq(gw_rpc_add(&t, 1, "\"c\"", 300, 2), 0); /* over max in flight */
    for (int i = 0; i < GW_RPC_FORWARD_MAX; i++)
        ck_assert(gw_rpc_add(&t, 0, "1", 300, 2) > 0);
    ck_assert_int_eq(gw_rpc_add(&t, 0, "1", 300, 2), 0);
    ck_assert_uint_eq(t.n_rpc, 2);
    ck_assert_uint_eq(t.n, 2 + GW_RPC_FORWARD_MAX);

    gw_rpc_call c;
    ck_assert_int_eq(gw_rpc_take(&t, (uint32_t)a, &c), 1);
    ck_assert_str_eq(c.ref, "\"a\"");
    ck_assert_int_eq(c.rpc, 1);
    ck_assert_int_eq(gw_rpc_take(&t, (uint32_t)a, &c), 0); /* answered once only */
    ck_assert_uint_eq(t.n_rpc, 1);
    ck_assert(gw_rpc_add(&t, 1, "\"c\"", 300, 2) > 0); /* room again */
    gw_rpc_table_free(&t);
    ck_assert_uint_eq(t.n, 0);
    ck_assert(t.calls == NULL);
}
END_TEST

START_TEST(table_expires_by_deadline)
{
    gw_rpc_table t = {0};
    int64_t a = gw_rpc_add(&t, 1, "1", 100, 16);
    int64_t b = gw_rpc_add(&t, 1, "2", 200, 16);
    gw_rpc_call c;
    ck_assert_int_eq(gw_rpc_take_expired(&t, 99, &c), 0);
    ck_assert_int_eq(gw_rpc_take_expired(&t, 150, &c), 1);
    ck_assert_uint_eq(c.reqno, (uint32_t)a);
    ck_assert_int_eq(gw_rpc_take_expired(&t, 150, &c), 0);
    ck_assert_int_eq(gw_rpc_take(&t, (uint32_t)a, &c), 0); /* a late answer finds nothing */
    ck_assert_int_eq(gw_rpc_take_expired(&t, 200, &c), 1);
    ck_assert_uint_eq(c.reqno, (uint32_t)b);
    ck_assert_uint_eq(t.n, 0);
    ck_assert(t.calls == NULL); /* an idle connection keeps no memory */
}
END_TEST

START_TEST(reqnos_skip_zero_and_those_in_use)
{
    gw_rpc_table t = {0};
    t.next = UINT32_MAX - 1;
    int64_t a = gw_rpc_add(&t, 1, "1", 0, 16);
    ck_assert_uint_eq((uint32_t)a, UINT32_MAX);
    int64_t b = gw_rpc_add(&t, 1, "2", 0, 16);
    ck_assert_uint_eq((uint32_t)b, 1);
    t.next = UINT32_MAX - 1; /* wraps onto both numbers in use */
    int64_t c = gw_rpc_add(&t, 1, "3", 0, 16);
    ck_assert_uint_eq((uint32_t)c, 2);
    gw_rpc_table_free(&t);
}
END_TEST

START_TEST(unhandled_labels_are_bounded)
{
    gw_unhandled u;
    ck_assert_int_eq(gw_unhandled_init(&u), 0);
    char type[32];
    for (int i = 0; i < GW_UNHANDLED_TYPES + 10; i++) {
        snprintf(type, sizeof(type), "t%d", i);
        gw_unhandled_count(&u, type);
    }
    gw_unhandled_count(&u, "t0");
    gw_unhandled_count(&u, "bad type");
    ck_assert_int_eq(gw_unhandled_get(&u, "t0"), 2);
    ck_assert_int_eq(gw_unhandled_get(&u, "t63"), 1);
    ck_assert_int_eq(gw_unhandled_get(&u, "t64"), 0);
    ck_assert_int_eq(gw_unhandled_get(&u, "_other"), 11);
    wsg_buf b;
    wsg_buf_init(&b);
    gw_unhandled_render(&u, &b);
    ck_assert(wsg_buf_ok(&b));
    wsg_buf_append(&b, "", 1);
    ck_assert(strstr(b.data, "# TYPE wsgate_frames_unhandled_total counter\n") != NULL);
    ck_assert(strstr(b.data, "wsgate_frames_unhandled_total{type=\"t0\"} 2\n") != NULL);
    ck_assert(strstr(b.data, "wsgate_frames_unhandled_total{type=\"_other\"} 11\n") != NULL);
    ck_assert(strstr(b.data, "type=\"t64\"") == NULL);
    wsg_buf_free(&b);
    gw_unhandled_destroy(&u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_rpc");
    TCase *tc = tcase_create("rpc");
    tcase_add_test(tc, glob_matches_runs_including_dots);
    tcase_add_test(tc, glob_is_not_exponential);
    tcase_add_test(tc, globs_parse_a_list);
    tcase_add_test(tc, table_limits_rpc_and_forwards_apart);
    tcase_add_test(tc, table_expires_by_deadline);
    tcase_add_test(tc, reqnos_skip_zero_and_those_in_use);
    tcase_add_test(tc, unhandled_labels_are_bounded);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
