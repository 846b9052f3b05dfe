/* Unit tests for bench/lg_frame, the load generator's frame reader: every count the benchmark
 * reports (received, missing, duplicates, latency) rests on it. Frames of the shapes the
 * gateway writes take the fast path; the same numbers in any other spelling take jansson and
 * read the same; nothing malformed, out of range or beyond the buffer's end is read as ours. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_frame.h"
#include "wsg_check.h"

static lg_frame parse(const char *s)
{
    lg_frame f;
    lg_frame_parse(s, strlen(s), &f);
    return f;
}

START_TEST(test_content_round_trip)
{
    char c[96], frame[256];
    ck_assert_int_gt(lg_frame_content_broadcast(c, sizeof(c), 4000000000u, 77, 1795660000123456),
                     0);
    ck_assert_str_eq(c, "4000000000 77 1795660000123456");
    snprintf(frame, sizeof(frame),
             "{\"type\":\"broadcast\",\"from\":\"lg1-pub\",\"content\":\"%s\",\"ts\":1,\"seq\":9}", c);
    lg_frame f = parse(frame);
    ck_assert_int_eq(f.kind, LG_FR_BROADCAST);
    ck_assert(f.fast && f.ours);
    ck_assert_uint_eq(f.run, 4000000000u);
    ck_assert_int_eq(f.idx, 77);
    ck_assert_int_eq(f.t_us, 1795660000123456);

    ck_assert_int_gt(lg_frame_content_message(c, sizeof(c), 5, 123456, 9999, 42), 0);
    ck_assert_str_eq(c, "5 123456 9999 42");
    snprintf(frame, sizeof(frame),
             "{\"type\":\"message\",\"from\":\"lg1-3\",\"content\":\"%s\",\"ts\":7,\"seq\":1}", c);
    f = parse(frame);
    ck_assert_int_eq(f.kind, LG_FR_MESSAGE);
    ck_assert(f.fast && f.ours);
    ck_assert_uint_eq(f.run, 5);
    ck_assert_int_eq(f.idx, 123456);
    ck_assert_uint_eq(f.target, 9999);
    ck_assert_int_eq(f.t_us, 42);

    /* too small a buffer is refused, not truncated */
    ck_assert_int_eq(lg_frame_content_message(c, 8, 5, 123456, 9999, 42), -1);
    ck_assert_int_eq(lg_frame_content_broadcast(c, 3, 5, 1, 2), -1);
}
END_TEST

START_TEST(test_delivery_payload)
{
    lg_frame f = parse("{\"r\":12,\"t\":1795660000000001,\"i\":3}");
    ck_assert_int_eq(f.kind, LG_FR_DELIVERY);
    ck_assert(f.fast && f.ours);
    ck_assert_uint_eq(f.run, 12);
    ck_assert_int_eq(f.idx, 3);
    ck_assert_int_eq(f.t_us, 1795660000000001);
    /* the gateway appends the seq of a stored broadcast */
    f = parse("{\"r\":12,\"t\":5,\"i\":4,\"seq\":100}");
    ck_assert(f.kind == LG_FR_DELIVERY && f.fast && f.ours && f.idx == 4);
    /* another spelling: jansson, same numbers */
    f = parse("{ \"i\": 4, \"t\": 5, \"r\": 12 }");
    ck_assert(f.kind == LG_FR_DELIVERY && !f.fast && f.ours);
    ck_assert(f.run == 12 && f.idx == 4 && f.t_us == 5);
    /* a run id beyond 32 bits is not ours on either path */
    f = parse("{\"r\":4294967296,\"t\":5,\"i\":4}");
    ck_assert_int_eq(f.kind, LG_FR_DELIVERY);
    ck_assert(!f.ours);
    /* a business payload of another shape */
    f = parse("{\"price\":1.5}");
    ck_assert(f.kind == LG_FR_DELIVERY && !f.ours);
}
END_TEST

START_TEST(test_other_spellings_read_the_same)
{
    /* field order, spacing and escapes the fast path does not know */
    lg_frame f = parse("{\"content\":\"5 6 7 8\",\"type\":\"message\"}");
    ck_assert(f.kind == LG_FR_MESSAGE && !f.fast && f.ours);
    ck_assert(f.run == 5 && f.idx == 6 && f.target == 7 && f.t_us == 8);
    f = parse("{\"type\": \"broadcast\", \"content\": \"1 2 3\"}");
    ck_assert(f.kind == LG_FR_BROADCAST && !f.fast && f.ours);
    f = parse("{\"type\":\"broadcast\",\"content\":\"\\u0031 2 3\"}");
    ck_assert(f.kind == LG_FR_BROADCAST && !f.fast && f.ours && f.run == 1);
}
END_TEST

START_TEST(test_not_ours)
{
    lg_frame f;
    /* a content of another shape: counted as a frame of its kind, not as one of ours */
    const char *bad[] = {
        "{\"type\":\"message\",\"content\":\"hello\"}",
        "{\"type\":\"message\",\"content\":\"1 2 3\"}",        /* a message needs four */
        "{\"type\":\"broadcast\",\"content\":\"1 2 3 4\"}",    /* a broadcast three */
        "{\"type\":\"broadcast\",\"content\":\"1  2 3\"}",     /* two spaces */
        "{\"type\":\"broadcast\",\"content\":\"-1 2 3\"}",
        "{\"type\":\"broadcast\",\"content\":\"1 2 1234567890123456789\"}", /* 19 digits */
        "{\"type\":\"message\",\"content\":\"1 2 4294967296 3\"}",          /* target > 32 bits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = parse(bad[i]);
        ck_assert_msg(!f.ours, "read as ours: %s", bad[i]);
        ck_assert_msg(f.kind == LG_FR_MESSAGE || f.kind == LG_FR_BROADCAST, "kind of %s", bad[i]);
    }
    /* not JSON objects */
    const char *junk[] = {"", "[1,2]", "{\"type\":\"message\",\"content\":\"1 2 3 4\"", "nul"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        f = parse(junk[i]);
        ck_assert_msg(f.kind == LG_FR_BAD && !f.ours, "not bad: %s", junk[i]);
    }
}
END_TEST

static void assert_prefixes_not_ours(const char *frame);

/* A channel publication as wsgate, Node's JSON.stringify and Python's json.dumps all write
 * it (type first): the fast path; the sender sits where a message has its target. */
START_TEST(test_publication)
{
    char c[96], frame[256];
    ck_assert_int_gt(lg_frame_content_message(c, sizeof(c), 7, 41, 1234, 1795660000000009), 0);
    snprintf(frame, sizeof(frame),
             "{\"type\":\"publication\",\"channel\":\"bench-3\",\"from\":\"lg1-1234\","
             "\"content\":\"%s\",\"ts\":1795660000000,\"seq\":12}", c);
    lg_frame f = parse(frame);
    ck_assert_int_eq(f.kind, LG_FR_PUBLICATION);
    ck_assert(f.fast && f.ours);
    ck_assert_uint_eq(f.run, 7);
    ck_assert_int_eq(f.idx, 41);
    ck_assert_uint_eq(f.target, 1234);
    ck_assert_int_eq(f.t_us, 1795660000000009);
    assert_prefixes_not_ours(frame);
    /* another order: jansson, the same numbers */
    f = parse("{\"seq\":1,\"content\":\"7 41 1234 9\",\"type\":\"publication\"}");
    ck_assert(f.kind == LG_FR_PUBLICATION && !f.fast && f.ours);
    ck_assert(f.run == 7 && f.idx == 41 && f.target == 1234 && f.t_us == 9);
    /* a publication of a broadcast's shape (three numbers) or a business object is not ours */
    f = parse("{\"type\":\"publication\",\"channel\":\"c\",\"content\":\"7 41 9\"}");
    ck_assert(f.kind == LG_FR_PUBLICATION && !f.ours);
    f = parse("{\"type\":\"publication\",\"channel\":\"c\",\"content\":{\"x\":1},\"seq\":2}");
    ck_assert(f.kind == LG_FR_PUBLICATION && !f.ours);
}
END_TEST

START_TEST(test_kinds)
{
    ck_assert_int_eq(parse("{\"type\":\"welcome\",\"user\":\"u\"}").kind, LG_FR_WELCOME);
    ck_assert_int_eq(parse("{\"type\":\"error\",\"code\":\"x\"}").kind, LG_FR_ERROR);
    ck_assert_int_eq(parse("{\"type\":\"pong\"}").kind, LG_FR_OTHER);
    ck_assert_int_eq(parse("{\"type\":\"resync\",\"stream\":\"user\"}").kind, LG_FR_OTHER);
    ck_assert_int_eq(parse("{\"type\":\"sent\",\"ref\":1}").kind, LG_FR_OTHER);
    ck_assert_int_eq(
        parse("{\"type\":\"subscribed\",\"channel\":\"c\",\"position\":0,\"epoch\":\"e\"}").kind,
        LG_FR_SUBSCRIBED);
    ck_assert_int_eq(parse("{\"type\":\"unsubscribed\",\"channel\":\"c\"}").kind, LG_FR_OTHER);
}
END_TEST

/* Every proper prefix of frame, each in a buffer of exactly its size (a read past it is a
 * fault under ASan), is incomplete: never read as ours. */
static void assert_prefixes_not_ours(const char *frame)
{
    lg_frame f;
    for (size_t n = 0; n < strlen(frame); n++) {
        char *cut = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(cut);
        memcpy(cut, frame, n);
        lg_frame_parse(cut, n, &f);
        ck_assert_msg(!f.ours, "a prefix of %zu bytes of %s read as ours", n, frame);
        free(cut);
    }
}

/* lws hands over buffers that are not NUL-terminated: nothing past len is read. */
START_TEST(test_bounded_by_len)
{
    const char full[] = "{\"type\":\"message\",\"content\":\"5 6 7 8\",\"seq\":1}";
    lg_frame f;
    lg_frame_parse(full, sizeof(full) - 1, &f);
    ck_assert(f.ours && f.fast);
    assert_prefixes_not_ours(full);
    assert_prefixes_not_ours("{\"r\":1,\"t\":2,\"i\":3}");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lg_frame");
    TCase *tc = tcase_create("frame");
    tcase_add_test(tc, test_content_round_trip);
    tcase_add_test(tc, test_delivery_payload);
    tcase_add_test(tc, test_other_spellings_read_the_same);
    tcase_add_test(tc, test_not_ours);
    tcase_add_test(tc, test_publication);
    tcase_add_test(tc, test_kinds);
    tcase_add_test(tc, test_bounded_by_len);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
