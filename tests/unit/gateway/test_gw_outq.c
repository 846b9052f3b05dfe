/* Unit tests: per-connection outbound queue bounds and shared messages (gw_outq). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gw_outq.h"
#include "wsg_check.h"

/* A message carries its WebSocket frame (RFC 6455 5.2: FIN + text, unmasked) built once, so
 * each of the three length encodings must be exact at its edges. */
START_TEST(frame_header_built_once)
{
    static const struct {
        size_t len;
        size_t hdr;
    } cases[] = {{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {70000, 10}};
    char *payload = malloc(70000);
    ck_assert_ptr_nonnull(payload);
    memset(payload, 'p', 70000);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = cases[i].len;
        gw_msg *m = gw_msg_new(payload, n, 0);
        ck_assert_ptr_nonnull(m);
        size_t flen;
        const unsigned char *f = gw_msg_frame(m, &flen);
        ck_assert_uint_eq(flen, cases[i].hdr + n);
        ck_assert_ptr_eq(f + cases[i].hdr, gw_msg_payload(m));
        ck_assert_uint_eq(f[0], 0x81);
        uint64_t got;
        if (cases[i].hdr == 2) {
            got = f[1];
        } else if (cases[i].hdr == 4) {
            ck_assert_uint_eq(f[1], 126);
            got = ((uint64_t)f[2] << 8) | f[3];
        } else {
            ck_assert_uint_eq(f[1], 127);
            got = 0;
            for (int k = 0; k < 8; k++)
                got = (got << 8) | f[2 + k];
        }
        ck_assert_uint_eq(got, n);
        gw_msg_unref(m);
    }
    free(payload);
}
END_TEST

START_TEST(fifo_and_refcount)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    gw_msg *m[10];
    for (int i = 0; i < 10; i++) {
        char t[8];
        snprintf(t, sizeof(t), "m%d", i);
        m[i] = gw_msg_new(t, strlen(t), i);
        ck_assert_ptr_nonnull(m[i]);
        ck_assert_int_eq(gw_outq_push(&q, m[i], 1 << 20), GW_OUTQ_OK);
        ck_assert_uint_eq(m[i]->refs, 2);
    }
    for (int i = 0; i < 10; i++) {
        gw_msg *h = gw_outq_peek(&q);
        ck_assert_ptr_eq(h, m[i]);
        ck_assert_int_eq(memcmp(gw_msg_payload(h), "m", 1), 0);
        gw_outq_pop(&q);
        ck_assert_uint_eq(m[i]->refs, 1);
        gw_msg_unref(m[i]);
    }
    ck_assert(gw_outq_empty(&q));
    gw_outq_clear(&q);
}
END_TEST

START_TEST(byte_bound)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    char payload[400];
    memset(payload, 'x', sizeof(payload));
    gw_msg *m = gw_msg_new(payload, sizeof(payload), 0);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000), GW_OUTQ_OK);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000), GW_OUTQ_OK);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000), GW_OUTQ_FULL);
    ck_assert_uint_eq(m->refs, 3);
    gw_outq_clear(&q);
    ck_assert_uint_eq(m->refs, 1);
    ck_assert(gw_outq_empty(&q));
    gw_msg_unref(m);
}
END_TEST

START_TEST(first_message_always_fits)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    char *big = calloc(1, 5000);
    gw_msg *m = gw_msg_new(big, 5000, 0);
    free(big);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000), GW_OUTQ_OK);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000), GW_OUTQ_FULL);
    gw_outq_clear(&q);
    gw_msg_unref(m);
}
END_TEST

START_TEST(wraps_around)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    gw_msg *m = gw_msg_new("a", 1, 0);
    /* interleave pushes and pops so head moves through the ring while it grows */
    int pushed = 0, popped = 0;
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 3; i++, pushed++)
            ck_assert_int_eq(gw_outq_push(&q, m, 1 << 20), GW_OUTQ_OK);
        for (int i = 0; i < 2; i++, popped++)
            gw_outq_pop(&q);
    }
    ck_assert_uint_eq(m->refs, (uint32_t)(1 + pushed - popped));
    gw_outq_clear(&q);
    ck_assert_uint_eq(m->refs, 1);
    gw_msg_unref(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_outq");
    TCase *tc = tcase_create("outq");
    tcase_add_test(tc, fifo_and_refcount);
    tcase_add_test(tc, byte_bound);
    tcase_add_test(tc, first_message_always_fits);
    tcase_add_test(tc, wraps_around);
    tcase_add_test(tc, frame_header_built_once);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
