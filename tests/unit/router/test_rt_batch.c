/* Unit tests for rt_batch: grouping per node and per message, order, the item and byte
 * limits, epoch changes, all-items, publish failures. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_batch.h"
#include "rt_capture.h"
#include "wsg_check.h"


static void begin(rt_batch *b, const char *payload)
{
    ck_assert_int_eq(rt_batch_begin(b, payload, strlen(payload), 5), 0);
}

static int payload_is(const Wsgate__NodeDelivery__Item *it, const char *p)
{
    return it->payload.len == strlen(p) && !memcmp(it->payload.data, p, it->payload.len);
}

START_TEST(groups_per_node_and_message)
{
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    begin(b, "{\"m\":1}");
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 10), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw2", 2, 20), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 11), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 12), 0);
    begin(b, "{\"m\":2}");
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 10), 0);
    begin(b, "{\"m\":3}");
    ck_assert_int_eq(rt_batch_add_all(b, "gw2", 2), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw2", 2, 21), 0); /* all already covers it */
    capture c = {.n = 0};
    size_t failed = 9;
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, &failed), 2);
    ck_assert_uint_eq(failed, 0);
    const Wsgate__NodeDelivery *g1 = !strcmp(c.nd[0]->node_id, "gw1") ? c.nd[0] : c.nd[1];
    const Wsgate__NodeDelivery *g2 = g1 == c.nd[0] ? c.nd[1] : c.nd[0];
    ck_assert_uint_eq(g1->node_epoch, 1);
    ck_assert_uint_eq(g1->n_items, 2);
    ck_assert(payload_is(g1->items[0], "{\"m\":1}"));
    ck_assert_uint_eq(g1->items[0]->n_conn_ids, 3);
    ck_assert_uint_eq(g1->items[0]->conn_ids[0], 10);
    ck_assert_uint_eq(g1->items[0]->conn_ids[1], 11);
    ck_assert_uint_eq(g1->items[0]->conn_ids[2], 12);
    ck_assert_int_eq(g1->items[0]->created_at_us, 5);
    ck_assert(payload_is(g1->items[1], "{\"m\":2}"));
    ck_assert_uint_eq(g2->node_epoch, 2);
    ck_assert_uint_eq(g2->n_items, 2);
    ck_assert(!g2->items[0]->all && g2->items[0]->n_conn_ids == 1);
    ck_assert(g2->items[1]->all && g2->items[1]->n_conn_ids == 0);
    capture_free(&c);
    /* flushing empties the batch */
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 0);
    ck_assert_uint_eq(rt_batch_pending_bytes(b), 0);
    rt_batch_free(b);
}
END_TEST

START_TEST(splits_at_item_limit)
{
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    char p[32];
    for (int i = 0; i < 300; i++) {
        snprintf(p, sizeof(p), "{\"i\":%d}", i);
        begin(b, p);
        ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, (uint64_t)i), 0);
    }
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    ck_assert_uint_eq(c.nd[0]->n_items, 256);
    ck_assert_uint_eq(c.nd[1]->n_items, 44);
    /* order kept across the split */
    ck_assert(payload_is(c.nd[0]->items[255], "{\"i\":255}"));
    ck_assert(payload_is(c.nd[1]->items[0], "{\"i\":256}"));
    capture_free(&c);
    rt_batch_free(b);
}
END_TEST

START_TEST(splits_at_byte_limit)
{
    rt_batch *b = rt_batch_new(256, 1000);
    char p[301];
    memset(p, 'x', 300);
    p[300] = '\0';
    for (int i = 0; i < 7; i++) {
        begin(b, p);
        ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 1), 0);
    }
    /* a payload over the limit travels alone */
    char big[2001];
    memset(big, 'y', 2000);
    big[2000] = '\0';
    begin(b, big);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 1), 0);
    capture c = {.n = 0};
    size_t n = rt_batch_flush(b, capture_fn, &c, NULL);
    ck_assert_uint_ge(n, 4);
    size_t items = 0;
    for (size_t i = 0; i < c.n; i++) {
        size_t bytes = 0;
        for (size_t k = 0; k < c.nd[i]->n_items; k++)
            bytes += c.nd[i]->items[k]->payload.len;
        ck_assert(bytes <= 1000 || c.nd[i]->n_items == 1);
        items += c.nd[i]->n_items;
    }
    ck_assert_uint_eq(items, 8);
    ck_assert(payload_is(c.nd[c.n - 1]->items[0], big));
    ck_assert_uint_eq(c.nd[c.n - 1]->n_items, 1);
    capture_free(&c);
    rt_batch_free(b);
}
END_TEST

START_TEST(many_conn_ids_split_into_items_of_same_payload)
{
    rt_batch *b = rt_batch_new(256, 200);
    begin(b, "{\"many\":true}");
    for (uint64_t i = 0; i < 50; i++)
        ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 3, 1000 + i), 0);
    capture c = {.n = 0};
    ck_assert_uint_gt(rt_batch_flush(b, capture_fn, &c, NULL), 1);
    uint64_t next = 1000;
    for (size_t i = 0; i < c.n; i++) {
        ck_assert_uint_eq(c.nd[i]->n_items, 1);
        ck_assert(payload_is(c.nd[i]->items[0], "{\"many\":true}"));
        for (size_t k = 0; k < c.nd[i]->items[0]->n_conn_ids; k++)
            ck_assert_uint_eq(c.nd[i]->items[0]->conn_ids[k], next++);
    }
    ck_assert_uint_eq(next, 1050);
    capture_free(&c);
    rt_batch_free(b);
}
END_TEST

START_TEST(epoch_change_starts_new_delivery)
{
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    begin(b, "{}");
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 1), 0);
    begin(b, "{}");
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 2, 1), 0);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    ck_assert_uint_eq(c.nd[0]->node_epoch, 1);
    ck_assert_uint_eq(c.nd[1]->node_epoch, 2);
    capture_free(&c);
    rt_batch_free(b);
}
END_TEST

START_TEST(publish_failures_counted)
{
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    begin(b, "{}");
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 1), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw2", 1, 1), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw3", 1, 1), 0);
    capture c = {.n = 0, .fail_every = 2};
    size_t failed = 0;
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, &failed), 2);
    ck_assert_uint_eq(failed, 1);
    capture_free(&c);
    /* adding without a message, or to an invalid node id, fails */
    rt_batch *b2 = rt_batch_new(4, 100);
    ck_assert_int_eq(rt_batch_add_conn(b2, "gw1", 1, 1), -1);
    begin(b2, "{}");
    ck_assert_int_eq(rt_batch_add_conn(b2, "", 1, 1), -1);
    ck_assert_uint_gt(rt_batch_pending_bytes(b2), 0);
    rt_batch_free(b2);
    rt_batch_free(b);
}
END_TEST

START_TEST(close_orders)
{
    rt_batch *b = rt_batch_new(RT_BATCH_MAX_ITEMS, RT_BATCH_MAX_BYTES);
    ck_assert_int_eq(rt_batch_begin_close(b, 0, "x", 1), -1); /* 0 is "not a close order" */
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 10), -1);
    begin(b, "{\"m\":1}");
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 10), 0);
    ck_assert_int_eq(rt_batch_begin_close(b, 4003, "bye", 9), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 10), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 11), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw2", 3, 20), 0);
    /* a close order names its targets: never all, never a channel's subscribers */
    ck_assert_int_eq(rt_batch_add_all(b, "gw1", 1), -1);
    ck_assert_int_eq(rt_batch_add_subscribers(b, "gw1", 1), -1);
    ck_assert_int_eq(rt_batch_begin_close(b, 4009, NULL, 9), 0);
    ck_assert_int_eq(rt_batch_add_conn(b, "gw1", 1, 12), 0);
    capture c = {.n = 0};
    ck_assert_uint_eq(rt_batch_flush(b, capture_fn, &c, NULL), 2);
    const Wsgate__NodeDelivery *g1 = !strcmp(c.nd[0]->node_id, "gw1") ? c.nd[0] : c.nd[1];
    const Wsgate__NodeDelivery *g2 = g1 == c.nd[0] ? c.nd[1] : c.nd[0];
    /* in order behind the frame queued before it */
    ck_assert_uint_eq(g1->n_items, 3);
    ck_assert(payload_is(g1->items[0], "{\"m\":1}"));
    ck_assert_uint_eq(g1->items[0]->close_code, 0);
    ck_assert_str_eq(g1->items[0]->close_reason, "");
    const Wsgate__NodeDelivery__Item *it = g1->items[1];
    ck_assert_uint_eq(it->close_code, 4003);
    ck_assert_str_eq(it->close_reason, "bye");
    ck_assert_uint_eq(it->payload.len, 0);
    ck_assert_int_eq(it->stream, WSGATE__STREAM_KIND__STREAM_NONE);
    ck_assert_uint_eq(it->seq, 0);
    ck_assert(!it->all);
    ck_assert_str_eq(it->channel, "");
    ck_assert_int_eq(it->created_at_us, 9);
    ck_assert_uint_eq(it->n_conn_ids, 2);
    ck_assert_uint_eq(it->conn_ids[0], 10);
    ck_assert_uint_eq(it->conn_ids[1], 11);
    ck_assert_uint_eq(g1->items[2]->close_code, 4009);
    ck_assert_str_eq(g1->items[2]->close_reason, "");
    ck_assert_uint_eq(g1->items[2]->n_conn_ids, 1);
    ck_assert_uint_eq(g2->node_epoch, 3);
    ck_assert_uint_eq(g2->n_items, 1);
    ck_assert_uint_eq(g2->items[0]->close_code, 4003);
    ck_assert_uint_eq(g2->items[0]->conn_ids[0], 20);
    capture_free(&c);
    rt_batch_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_batch");
    TCase *tc = tcase_create("batch");
    tcase_add_test(tc, groups_per_node_and_message);
    tcase_add_test(tc, splits_at_item_limit);
    tcase_add_test(tc, splits_at_byte_limit);
    tcase_add_test(tc, many_conn_ids_split_into_items_of_same_payload);
    tcase_add_test(tc, epoch_change_starts_new_delivery);
    tcase_add_test(tc, publish_failures_counted);
    tcase_add_test(tc, close_orders);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
