/* Unit tests: per-connection outbound queue bounds and shared messages (gw_outq). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
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
        ck_assert_int_eq(gw_outq_push(&q, m[i], 1 << 20, 0), GW_OUTQ_OK);
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

START_TEST(trim_frees_only_an_empty_ring)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    gw_msg *m = gw_msg_new("t", 1, 0);
    ck_assert_int_eq(gw_outq_push(&q, m, 1 << 20, 0), GW_OUTQ_OK);
    gw_outq_trim(&q); /* not empty: nothing happens */
    ck_assert_ptr_nonnull(q.ring);
    ck_assert_ptr_eq(gw_outq_peek(&q), m);
    gw_outq_pop(&q);
    ck_assert_ptr_nonnull(q.ring); /* a caught-up queue keeps its first ring ... */
    gw_outq_trim(&q);
    ck_assert_ptr_null(q.ring); /* ... until the idle sweep trims it */
    ck_assert(gw_outq_empty(&q));
    ck_assert_int_eq(gw_outq_push(&q, m, 1 << 20, 0), GW_OUTQ_OK);
    ck_assert_ptr_eq(gw_outq_peek(&q), m);
    ck_assert_uint_eq(m->refs, 2);
    gw_outq_clear(&q);
    ck_assert_uint_eq(m->refs, 1);
    gw_msg_unref(m);
}
END_TEST

START_TEST(byte_bound)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    char payload[400];
    memset(payload, 'x', sizeof(payload));
    gw_msg *m = gw_msg_new(payload, sizeof(payload), 0);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000, 0), GW_OUTQ_OK);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000, 0), GW_OUTQ_OK);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000, 0), GW_OUTQ_FULL);
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
    ck_assert_int_eq(gw_outq_push(&q, m, 1000, 0), GW_OUTQ_OK);
    ck_assert_int_eq(gw_outq_push(&q, m, 1000, 0), GW_OUTQ_FULL);
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
            ck_assert_int_eq(gw_outq_push(&q, m, 1 << 20, 0), GW_OUTQ_OK);
        for (int i = 0; i < 2; i++, popped++)
            gw_outq_pop(&q);
    }
    ck_assert_uint_eq(m->refs, (uint32_t)(1 + pushed - popped));
    gw_outq_clear(&q);
    ck_assert_uint_eq(m->refs, 1);
    gw_msg_unref(m);
}
END_TEST


/* ---- gw_outq_write: partial writes ----
 * A fake socket that takes at most `chunk` bytes per call and at most `room` bytes in all
 * before it reports EAGAIN (a full send buffer), recording what it took, so the byte stream
 * the client would read can be compared with the frames queued. */
typedef struct fake_sock {
    unsigned char wire[1 << 16];
    size_t len;
    size_t chunk;
    size_t room;
    int calls;
    int fail_errno; /* nonzero: every call fails with it */
} fake_sock;

static const unsigned char *plain_frame(void *ctx, gw_msg *m, size_t *len)
{
    (void)ctx;
    return gw_msg_frame(m, len);
}

static ssize_t fake_writev(void *ctx, const struct iovec *iov, int iovcnt)
{
    fake_sock *f = ctx;
    f->calls++;
    ck_assert_int_le(iovcnt, GW_OUTQ_IOV);
    if (f->fail_errno) {
        errno = f->fail_errno;
        return -1;
    }
    size_t can = f->chunk < f->room ? f->chunk : f->room;
    if (!can) {
        errno = EAGAIN;
        return -1;
    }
    size_t took = 0;
    for (int i = 0; i < iovcnt && took < can; i++) {
        size_t n = iov[i].iov_len < can - took ? iov[i].iov_len : can - took;
        memcpy(f->wire + f->len, iov[i].iov_base, n);
        f->len += n;
        took += n;
    }
    f->room -= took;
    return (ssize_t)took;
}

/* Queues n frames "frame-<i>-<padding>" of growing sizes; expected: their bytes end to end. */
static size_t fill(gw_outq *q, int n, unsigned char *expected)
{
    size_t len = 0;
    char payload[300];
    for (int i = 0; i < n; i++) {
        int plen = snprintf(payload, sizeof(payload), "frame-%d-", i);
        memset(payload + plen, 'a' + i % 26, (size_t)(i * 7 % 200));
        plen += i * 7 % 200;
        gw_msg *m = gw_msg_new(payload, (size_t)plen, 0);
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(gw_outq_push(q, m, 1 << 20, 1000 + i), GW_OUTQ_OK);
        size_t flen;
        const unsigned char *f = gw_msg_frame(m, &flen);
        memcpy(expected + len, f, flen);
        len += flen;
        gw_msg_unref(m);
    }
    return len;
}

/* Frames' lengths from the expected stream (2- or 4-byte headers here). */
static size_t complete_bytes(const unsigned char *expected, uint32_t frames)
{
    size_t at = 0;
    for (uint32_t i = 0; i < frames; i++) {
        size_t plen = expected[at + 1] & 0x7f, hdr = 2;
        if (plen == 126) {
            plen = (size_t)expected[at + 2] << 8 | expected[at + 3];
            hdr = 4;
        }
        at += hdr + plen;
    }
    return at;
}

/* What gw_conn does with a frame the kernel took part of: the rest goes out before anything
 * else (lws sends it); here it is appended to the wire as it is. */
static void rest_out(gw_outq *q, fake_sock *f, size_t partial)
{
    size_t len;
    const unsigned char *fr = gw_msg_frame(gw_outq_peek(q), &len);
    ck_assert_uint_lt(partial, len);
    memcpy(f->wire + f->len, fr + partial, len - partial);
    f->len += len - partial;
    gw_outq_pop(q);
}

/* The kernel takes a few bytes at a time, the buffer fills now and then, and each call
 * offers about max_bytes: *done counts exactly the frames that are complete, *partial the
 * bytes of the next, the queue times come out in order, and with each rest sent where the
 * kernel stopped the frames come out whole and in order. */
START_TEST(write_reports_done_and_partial)
{
    static const size_t chunks[] = {1, 3, 7, 64, 1000, 1 << 20};
    static const size_t budgets[] = {1, 5, 100, 16384};
    for (size_t ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++) {
        for (size_t bi = 0; bi < sizeof(budgets) / sizeof(budgets[0]); bi++) {
            gw_outq q;
            memset(&q, 0, sizeof(q));
            static unsigned char expected[1 << 16];
            size_t total = fill(&q, 150, expected);
            static fake_sock f;
            memset(&f, 0, sizeof(f));
            f.chunk = chunks[ci];
            uint32_t popped = 0;
            int calls = 0;
            while (!gw_outq_empty(&q)) {
                if (!f.room)
                    f.room = 97; /* the "socket" drains this much when writeable again */
                uint32_t done;
                size_t partial;
                gw_outq_wstatus st = gw_outq_write(&q, UINT32_MAX, budgets[bi], plain_frame,
                                                   fake_writev, &f, &done, &partial);
                ck_assert_int_ne(st, GW_OUTQ_W_ERROR);
                for (uint32_t i = 0; i < done; i++, popped++) {
                    ck_assert_int_eq(gw_outq_queued_us(&q, 0), 1000 + (int64_t)popped);
                    gw_outq_pop(&q);
                }
                /* on the wire: exactly the done frames and partial bytes of the next */
                ck_assert_uint_eq(f.len, complete_bytes(expected, popped) + partial);
                if (partial) {
                    ck_assert_int_eq(st, GW_OUTQ_W_FULL);
                    rest_out(&q, &f, partial);
                    popped++;
                }
                ck_assert_int_lt(++calls, 1000000);
            }
            ck_assert_uint_eq(popped, 150);
            ck_assert_uint_eq(f.len, total);
            ck_assert_mem_eq(f.wire, expected, total);
            gw_outq_clear(&q);
        }
    }
}
END_TEST

/* One call: at most max_frames frames (a batching client's lone frame), at most GW_OUTQ_IOV,
 * and about max_bytes (the first frame whole even if it is larger, a later one only if it
 * fits). */
START_TEST(write_limits)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    static unsigned char expected[1 << 16];
    size_t total = fill(&q, 150, expected);
    static fake_sock f;
    memset(&f, 0, sizeof(f));
    f.chunk = f.room = 1 << 20;
    uint32_t done;
    size_t partial;
    ck_assert_int_eq(gw_outq_write(&q, 1, 1 << 20, plain_frame, fake_writev, &f, &done, &partial),
                     GW_OUTQ_W_DONE);
    ck_assert_uint_eq(done, 1);
    gw_outq_pop(&q);
    ck_assert_int_eq(gw_outq_write(&q, UINT32_MAX, 1 << 20, plain_frame, fake_writev, &f, &done,
                                   &partial), GW_OUTQ_W_DONE);
    ck_assert_uint_eq(done, GW_OUTQ_IOV);
    for (uint32_t i = 0; i < done; i++)
        gw_outq_pop(&q);
    /* a budget smaller than the next frame: that frame, whole, alone */
    size_t next;
    gw_msg_frame(gw_outq_peek(&q), &next);
    ck_assert_uint_gt(next, 3);
    size_t before = f.len;
    ck_assert_int_eq(gw_outq_write(&q, UINT32_MAX, 3, plain_frame, fake_writev, &f, &done,
                                   &partial), GW_OUTQ_W_DONE);
    ck_assert_uint_eq(done, 1);
    ck_assert_uint_eq(partial, 0);
    ck_assert_uint_eq(f.len - before, next);
    gw_outq_pop(&q);
    /* a budget that ends inside the second frame: the first only */
    gw_msg_frame(gw_outq_peek(&q), &next);
    ck_assert_int_eq(gw_outq_write(&q, UINT32_MAX, next + 1, plain_frame, fake_writev, &f, &done,
                                   &partial), GW_OUTQ_W_DONE);
    ck_assert_uint_eq(done, 1);
    gw_outq_pop(&q);
    while (!gw_outq_empty(&q)) {
        ck_assert_int_eq(gw_outq_write(&q, UINT32_MAX, 1 << 20, plain_frame, fake_writev, &f,
                                       &done, &partial), GW_OUTQ_W_DONE);
        for (uint32_t i = 0; i < done; i++)
            gw_outq_pop(&q);
    }
    ck_assert_uint_eq(f.len, total);
    ck_assert_mem_eq(f.wire, expected, total);
    gw_outq_clear(&q);
}
END_TEST

/* EAGAIN: nothing taken, nothing done; another error: reported as such. */
START_TEST(write_full_and_error)
{
    gw_outq q;
    memset(&q, 0, sizeof(q));
    static unsigned char expected[1 << 16];
    fill(&q, 3, expected);
    static fake_sock f;
    memset(&f, 0, sizeof(f));
    f.chunk = 5;
    f.room = 5;
    uint32_t done;
    size_t partial;
    ck_assert_int_eq(gw_outq_write(&q, UINT32_MAX, 1 << 20, plain_frame, fake_writev, &f, &done,
                                   &partial), GW_OUTQ_W_FULL);
    ck_assert_uint_eq(done, 0);
    ck_assert_uint_eq(partial, 5);
    ck_assert_int_eq(gw_outq_write(&q, UINT32_MAX, 1 << 20, plain_frame, fake_writev, &f, &done,
                                   &partial), GW_OUTQ_W_FULL);
    ck_assert_uint_eq(done, 0);
    ck_assert_uint_eq(partial, 0);
    f.fail_errno = ECONNRESET;
    ck_assert_int_eq(gw_outq_write(&q, UINT32_MAX, 1 << 20, plain_frame, fake_writev, &f, &done,
                                   &partial), GW_OUTQ_W_ERROR);
    gw_outq_clear(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_outq");
    TCase *tc = tcase_create("outq");
    tcase_add_test(tc, fifo_and_refcount);
    tcase_add_test(tc, byte_bound);
    tcase_add_test(tc, trim_frees_only_an_empty_ring);
    tcase_add_test(tc, first_message_always_fits);
    tcase_add_test(tc, wraps_around);
    tcase_add_test(tc, frame_header_built_once);
    tcase_add_test(tc, write_reports_done_and_partial);
    tcase_add_test(tc, write_limits);
    tcase_add_test(tc, write_full_and_error);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
