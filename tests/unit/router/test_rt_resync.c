/* Unit tests for rt_resync: when a router replica asks gateways to resync. The rate limit per
 * node and for every node, requests the limit held back handed out later, the
 * two-consecutive-mismatches rule, nodes heard from again in a life this replica purged, and
 * pruning. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_resync.h"
#include "wsg_check.h"

#define SEC INT64_C(1000000)

START_TEST(rate_limit_per_node)
{
    rt_resync *s = rt_resync_new(5 * SEC);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 100 * SEC), 1);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 100 * SEC + 1), 0);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 105 * SEC - 1), 0);
    /* other nodes have their own limit */
    ck_assert_int_eq(rt_resync_want(s, "gw2", RT_RSQ_SEQ_GAP, 101 * SEC), 1);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 105 * SEC), 1);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 109 * SEC), 0);
    ck_assert_int_eq(rt_resync_want(s, "gw2", RT_RSQ_SEQ_GAP, 106 * SEC), 1);
    rt_resync_free(s);
}
END_TEST

START_TEST(rate_limit_for_every_node)
{
    rt_resync *s = rt_resync_new(5 * SEC);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 8 * SEC), 1);
    /* a request to every node is limited on its own, not by one node's */
    ck_assert_int_eq(rt_resync_want(s, NULL, RT_RSQ_START, 10 * SEC), 1);
    ck_assert_int_eq(rt_resync_want(s, NULL, RT_RSQ_START, 14 * SEC), 0);
    /* and it counts as a request to each node */
    ck_assert_int_eq(rt_resync_want(s, "gw3", RT_RSQ_SEQ_GAP, 12 * SEC), 0);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 14 * SEC), 0);
    ck_assert_int_eq(rt_resync_want(s, "gw3", RT_RSQ_SEQ_GAP, 15 * SEC), 1);
    ck_assert_int_eq(rt_resync_want(s, NULL, RT_RSQ_START, 15 * SEC), 1);
    rt_resync_free(s);
}
END_TEST

typedef struct got {
    int n;
    char node[8][32];
    rt_resync_reason why[8];
} got;

static void on_due(const char *node_id, rt_resync_reason why, void *arg)
{
    got *g = arg;
    ck_assert_int_lt(g->n, 8);
    snprintf(g->node[g->n], sizeof(g->node[0]), "%s", node_id ? node_id : "*");
    g->why[g->n++] = why;
}

static int got_has(const got *g, const char *node, rt_resync_reason why)
{
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->node[i], node) && g->why[i] == why)
            return 1;
    return 0;
}

START_TEST(held_back_requests_are_owed)
{
    rt_resync *s = rt_resync_new(5 * SEC);
    got g = {.n = 0};
    ck_assert_int_eq(rt_resync_want(s, NULL, RT_RSQ_START, 10 * SEC), 1);
    /* within the limit: owed, the first reason kept */
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_NODE_BACK, 12 * SEC), 0);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_COUNT_MISMATCH, 13 * SEC), 0);
    ck_assert_uint_eq(rt_resync_due(s, 14 * SEC, on_due, &g), 0);
    ck_assert_uint_eq(rt_resync_due(s, 15 * SEC, on_due, &g), 1);
    ck_assert_int_eq(g.n, 1);
    ck_assert(got_has(&g, "gw1", RT_RSQ_NODE_BACK));
    /* handed out once, and it counts as sent */
    ck_assert_uint_eq(rt_resync_due(s, 30 * SEC, on_due, &g), 0);
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 16 * SEC), 0);
    /* an owed request to every node covers the single ones */
    ck_assert_int_eq(rt_resync_want(s, NULL, RT_RSQ_RECONNECT, 16 * SEC), 1);
    ck_assert_int_eq(rt_resync_want(s, "gw2", RT_RSQ_SET_LOST, 17 * SEC), 0);
    ck_assert_int_eq(rt_resync_want(s, NULL, RT_RSQ_RECONNECT, 18 * SEC), 0);
    g.n = 0;
    ck_assert_uint_eq(rt_resync_due(s, 20 * SEC, on_due, &g), 0);
    ck_assert_uint_eq(rt_resync_due(s, 21 * SEC, on_due, &g), 1);
    ck_assert(got_has(&g, "*", RT_RSQ_RECONNECT));
    ck_assert_uint_eq(rt_resync_due(s, 40 * SEC, on_due, &g), 0);
    rt_resync_free(s);
}
END_TEST

START_TEST(two_consecutive_mismatches)
{
    rt_resync *s = rt_resync_new(5 * SEC);
    /* agreement costs no memory */
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 3, 3, 0), 0);
    ck_assert_uint_eq(rt_resync_node_count(s), 0);
    /* one mismatch may be events in flight; two in a row are not */
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 3, 2, 0), 0);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 3, 2, 2 * SEC), 1);
    /* still owed while the rate limit holds the request back */
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 3, 2, 4 * SEC), 1);
    /* once asked, two fresh mismatches are needed */
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 4 * SEC), 1);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 3, 2, 6 * SEC), 0);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 3, 2, 8 * SEC), 1);
    /* within 5 s of the last */
    ck_assert_int_eq(rt_resync_want(s, "gw1", RT_RSQ_SEQ_GAP, 8 * SEC), 0);
    /* an agreeing heartbeat in between starts the count over */
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 3, 3, 10 * SEC), 0);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 4, 3, 12 * SEC), 0);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 1, 4, 3, 14 * SEC), 1);
    /* so does a new life */
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 2, 4, 3, 16 * SEC), 0);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 2, 4, 3, 18 * SEC), 1);
    /* nodes are counted apart */
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw2", 1, 0, 1, 18 * SEC), 0);
    /* a request to every node settles every node's count */
    ck_assert_int_eq(rt_resync_want(s, NULL, RT_RSQ_START, 20 * SEC), 1);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw1", 2, 4, 3, 20 * SEC), 0);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw2", 1, 0, 1, 20 * SEC), 0);
    ck_assert_int_eq(rt_resync_heartbeat(s, "gw2", 1, 0, 1, 22 * SEC), 1);
    rt_resync_free(s);
}
END_TEST

START_TEST(node_back_in_the_purged_life)
{
    rt_resync *s = rt_resync_new(5 * SEC);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 5), 0); /* never purged */
    ck_assert_int_eq(rt_resync_node_gone(s, "gw1", 5, 0), 0);
    /* an older life's straggler neither matches nor clears the record */
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 4), 0);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 5), 1);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 5), 0); /* said once */
    /* a new life announces itself: nothing to ask, and the record is gone */
    ck_assert_int_eq(rt_resync_node_gone(s, "gw1", 6, 0), 0);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 7), 0);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 6), 0);
    ck_assert_int_eq(rt_resync_node_gone(s, "gw2", 1, 0), 0);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 1), 0);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw2", 1), 1);
    rt_resync_free(s);
}
END_TEST

START_TEST(prune_forgets_idle_nodes)
{
    rt_resync *s = rt_resync_new(5 * SEC);
    ck_assert_int_eq(rt_resync_node_gone(s, "gw1", 1, 0), 0);
    ck_assert_int_eq(rt_resync_want(s, "gw2", RT_RSQ_SEQ_GAP, 50 * SEC), 1);
    ck_assert_uint_eq(rt_resync_node_count(s), 2);
    rt_resync_prune(s, 100 * SEC, 60 * SEC);
    ck_assert_uint_eq(rt_resync_node_count(s), 1);
    ck_assert_int_eq(rt_resync_node_seen(s, "gw1", 1), 0);
    rt_resync_prune(s, 200 * SEC, 60 * SEC);
    ck_assert_uint_eq(rt_resync_node_count(s), 0);
    /* an id too long for a node is never stored */
    char id[200];
    snprintf(id, sizeof(id), "%0150d", 1);
    ck_assert_int_eq(rt_resync_node_gone(s, id, 1, 0), -1);
    ck_assert_uint_eq(rt_resync_node_count(s), 0);
    rt_resync_free(s);
}
END_TEST

START_TEST(reason_names)
{
    ck_assert_str_eq(rt_resync_reason_name(RT_RSQ_START), "start");
    ck_assert_str_eq(rt_resync_reason_name(RT_RSQ_NODE_BACK), "node_back");
    ck_assert_str_eq(rt_resync_reason_name(RT_RSQ_COUNT_MISMATCH), "count_mismatch");
    ck_assert_str_eq(rt_resync_reason_name(RT_RSQ_SET_LOST), "set_lost");
    ck_assert_str_eq(rt_resync_reason_name(RT_RSQ__COUNT), "unknown");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_resync");
    TCase *tc = tcase_create("resync");
    tcase_add_test(tc, rate_limit_per_node);
    tcase_add_test(tc, rate_limit_for_every_node);
    tcase_add_test(tc, held_back_requests_are_owed);
    tcase_add_test(tc, two_consecutive_mismatches);
    tcase_add_test(tc, node_back_in_the_purged_life);
    tcase_add_test(tc, prune_forgets_idle_nodes);
    tcase_add_test(tc, reason_names);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
