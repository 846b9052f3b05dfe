/* Unit tests for the history rules without Redis: rt_frame (the seq splice into payloads and
 * the frames the router builds), rt_history (HistoryRequest checks: streams by (kind, name),
 * the older user_id and with_broadcast_head forms, heads_of; the resync rule, reply and append
 * and void formats), rt_ring (coverage, wraparound, expiry, incompleteness, one stream per
 * ring), rt_kinds (the router's kind table) and rt_uncertain (the bounded FIFO of appends to
 * void). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"
#include "rt_frame.h"
#include "rt_history.h"
#include "rt_kinds.h"
#include "rt_ring.h"
#include "rt_uncertain.h"
#include "wsg_client.h"
#include "wsg_pb.h"
#include "wsg_check.h"

#define US INT64_C(1000000)

static void splice_is(const char *payload, uint64_t seq, const char *want)
{
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, payload, strlen(payload)), RT_FRAME_OK);
    size_t len;
    char *got = rt_frame_with_seq(&f, seq, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_str_eq(got, want);
    /* the halves the Lua script concatenates around the digits give the same bytes */
    char *pre;
    size_t pre_len, post_len;
    const char *post;
    ck_assert_int_eq(rt_frame_halves(&f, &pre, &pre_len, &post, &post_len), 0);
    char joined[512];
    snprintf(joined, sizeof(joined), "%.*s%llu%.*s", (int)pre_len, pre,
             (unsigned long long)seq, (int)post_len, post);
    if (seq)
        ck_assert_str_eq(joined, want);
    free(pre);
    free(got);
    rt_frame_free(&f);
}

START_TEST(seq_splice)
{
    splice_is("{}", 1, "{\"seq\":1}");
    splice_is("{ }", 2, "{ \"seq\":2}");
    splice_is("{\"a\":1}", 3, "{\"a\":1,\"seq\":3}");
    splice_is("{\"a\":1 \n\t}", 4, "{\"a\":1 \n\t,\"seq\":4}");
    splice_is("{\"a\":{\"b\":[1,{}]}}  \r\n", 18446744073709551615ULL,
              "{\"a\":{\"b\":[1,{}]},\"seq\":18446744073709551615}  \r\n");
    splice_is("{\"t\":\"}\"}", 5, "{\"t\":\"}\",\"seq\":5}");
    /* seq 0: not kept, the payload goes unchanged */
    splice_is("{\"a\":1 }", 0, "{\"a\":1 }");

    rt_frame f;
    const char *reserved[] = {"{\"seq\":1}", "{\"a\":1,\"seq\":null}", "{\"se\\u0071\":2}"};
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(rt_frame_from_payload(&f, reserved[i], strlen(reserved[i])),
                         RT_FRAME_RESERVED);
    const char *bad[] = {"", "[]", "1", "{", "{}x", "{} {}", "\"{}\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(rt_frame_from_payload(&f, bad[i], strlen(bad[i])) == RT_FRAME_BAD, "%s",
                      bad[i]);
    ck_assert_int_eq(rt_frame_from_payload(&f, "{\"nested\":{\"seq\":1}}", 20), RT_FRAME_OK);
    rt_frame_free(&f);
}
END_TEST

START_TEST(frames_with_seq)
{
    rt_frame f;
    json_t *content = json_string("h\xc3\xa9 \"q\"");
    ck_assert_int_eq(rt_frame_client(&f, "message", "alice", content, 1700000000123), 0);
    size_t len;
    char *s = rt_frame_with_seq(&f, 42, &len);
    ck_assert_str_eq(s, "{\"type\":\"message\",\"from\":\"alice\",\"content\":\"h\xc3\xa9 "
                        "\\\"q\\\"\",\"ts\":1700000000123,\"seq\":42}");
    free(s);
    rt_frame_free(&f);
    ck_assert_int_eq(rt_frame_client(&f, "broadcast", "bob", content, 5), 0);
    s = rt_frame_with_seq(&f, 1, &len);
    ck_assert_str_eq(s, "{\"type\":\"broadcast\",\"from\":\"bob\",\"content\":\"h\xc3\xa9 "
                        "\\\"q\\\"\",\"ts\":5,\"seq\":1}");
    free(s);
    rt_frame_free(&f);
    json_decref(content);

    json_t *ref = json_string("m-1");
    s = wsg_client_sent("user", 7, &(wsg_client_about){.ref = ref, .target_user = "zoe"}, &len);
    ck_assert_str_eq(s, "{\"type\":\"sent\",\"ref\":\"m-1\",\"stream\":\"user\",\"target_user\":\"zoe\",\"seq\":7}");
    free(s);
    s = wsg_client_error_frame(WSG_CLIENT_ERR_HISTORY_UNAVAILABLE,
                               "delivered live only; not kept for resume",
                               &(wsg_client_about){.ref = ref}, &len);
    ck_assert_str_eq(s, "{\"type\":\"error\",\"code\":\"history_unavailable\",\"message\":"
                        "\"delivered live only; not kept for resume\",\"ref\":\"m-1\"}");
    free(s);
    json_decref(ref);
}
END_TEST

static rt_hreq_status req(Wsgate__HistoryRequest *rq, rt_hist_req *q)
{
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(wsg_pb_pack(&rq->base, &buf, &len), 0);
    rt_hreq_status st = rt_hist_req_parse(buf, len, 100, q);
    free(buf);
    return st;
}

START_TEST(request_validation)
{
    rt_hist_req q;
    const uint8_t junk[] = {0x0a, 0xff};
    ck_assert_int_eq(rt_hist_req_parse(junk, sizeof(junk), 100, &q), RT_HREQ_DECODE);

    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD); /* STREAM_NONE */
    rq.stream = 7;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
    rq.stream = WSGATE__STREAM_KIND__STREAM_USER;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD); /* no user */
    char long_user[140];
    memset(long_user, 'u', 129);
    long_user[129] = '\0';
    /* the user-id rule (wsg_user): controls too, C0, DEL and C1 */
    const char *bad_users[] = {"", "\xc3\x28", long_user, "a\nb", "a\x7f", "\xc2\x85"};
    for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++) {
        rq.user_id = (char *)bad_users[i];
        ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
    }
    /* and so does a stream_name, which is preferred */
    rq.user_id = "alice";
    for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++) {
        rq.stream_name = (char *)bad_users[i];
        if (*bad_users[i])
            ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
    }
    rq.stream_name = "";
    rq.has_after = 1;
    rq.after_seq = 5;
    rq.epoch = 9;
    rq.until_seq = 8;
    rq.mark_delivered = 1;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_int_eq(q.kind, WSGATE__STREAM_KIND__STREAM_USER);
    ck_assert_str_eq(q.name, "alice");
    ck_assert(q.has_after && q.after == 5 && q.epoch == 9 && q.until == 8 && q.mark);
    ck_assert_uint_eq(q.nheads, 0);
    ck_assert_uint_eq(q.legacy_head, 0);
    ck_assert_uint_eq(q.max_items, 100); /* 0: the page */
    rq.max_items = 7;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_uint_eq(q.max_items, 7);
    rq.max_items = 5000;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_uint_eq(q.max_items, 100); /* capped */
    /* broadcast: unnamed, and it keeps no delivered mark to move */
    rq.stream = WSGATE__STREAM_KIND__STREAM_BROADCAST;
    rq.user_id = "";
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_int_eq(q.kind, WSGATE__STREAM_KIND__STREAM_BROADCAST);
    ck_assert_str_eq(q.name, "");
    ck_assert_int_eq(q.mark, 0);
    rq.stream_name = "x"; /* an unnamed kind takes no name */
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
}
END_TEST

/* A gateway that predates stream_name names a user stream by user_id alone. */
START_TEST(request_user_id_only)
{
    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    rt_hist_req q;
    rq.stream = WSGATE__STREAM_KIND__STREAM_USER;
    rq.user_id = "al:ice";
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_int_eq(q.kind, WSGATE__STREAM_KIND__STREAM_USER);
    ck_assert_str_eq(q.name, "al:ice");
}
END_TEST

START_TEST(request_stream_name_preferred)
{
    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    rt_hist_req q;
    rq.stream = WSGATE__STREAM_KIND__STREAM_USER;
    rq.user_id = "alice";
    rq.stream_name = "bob";
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_str_eq(q.name, "bob");
    rq.user_id = ""; /* a newer gateway may leave user_id empty */
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_str_eq(q.name, "bob");
    /* user_id is a user stream's older field: no other kind takes its name from it */
    rq.stream = WSGATE__STREAM_KIND__STREAM_BROADCAST;
    rq.stream_name = "";
    rq.user_id = "alice";
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_str_eq(q.name, "");
}
END_TEST

static Wsgate__HistoryReply *packed(const rt_hist_req *q, const rt_hist_page *p)
{
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(rt_hist_reply_pack(WSGATE__HISTORY_REPLY__STATUS__OK, q, p, &buf, &len), 0);
    Wsgate__HistoryReply *rp = wsgate__history_reply__unpack(NULL, len, buf);
    free(buf);
    ck_assert_ptr_nonnull(rp);
    return rp;
}

/* heads_of: the heads come back in its order, each with its stream's identity. */
START_TEST(heads_of_in_order)
{
    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    Wsgate__StreamRef b = WSGATE__STREAM_REF__INIT, u = WSGATE__STREAM_REF__INIT;
    Wsgate__StreamRef *refs[2] = {&b, &u};
    b.kind = WSGATE__STREAM_KIND__STREAM_BROADCAST;
    u.kind = WSGATE__STREAM_KIND__STREAM_USER;
    u.name = "carol";
    rq.stream = WSGATE__STREAM_KIND__STREAM_USER;
    rq.stream_name = "alice";
    rq.n_heads_of = 2;
    rq.heads_of = refs;
    rt_hist_req q;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_uint_eq(q.nheads, 2);
    ck_assert_uint_eq(q.legacy_head, 0);
    ck_assert(q.heads[0].kind == WSGATE__STREAM_KIND__STREAM_BROADCAST && !*q.heads[0].name);
    ck_assert(q.heads[1].kind == WSGATE__STREAM_KIND__STREAM_USER);
    ck_assert_str_eq(q.heads[1].name, "carol");

    rt_hist_page pg = {.epoch = 9, .head = 3, .heads = {40, 7}, .nheads = 2};
    Wsgate__HistoryReply *rp = packed(&q, &pg);
    ck_assert_uint_eq(rp->n_heads, 2);
    ck_assert_int_eq(rp->heads[0]->kind, WSGATE__STREAM_KIND__STREAM_BROADCAST);
    ck_assert_str_eq(rp->heads[0]->name, "");
    ck_assert_uint_eq(rp->heads[0]->head, 40);
    ck_assert_int_eq(rp->heads[1]->kind, WSGATE__STREAM_KIND__STREAM_USER);
    ck_assert_str_eq(rp->heads[1]->name, "carol");
    ck_assert_uint_eq(rp->heads[1]->head, 7);
    ck_assert(!rp->has_broadcast_head && rp->broadcast_head == 0); /* not asked the old way */
    wsgate__history_reply__free_unpacked(rp, NULL);

    /* a head of a stream that cannot be: the request is refused */
    u.name = "a\nb";
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
    u.name = "carol";
    b.name = "x";
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
    b.name = "";
    b.kind = 9;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
}
END_TEST

START_TEST(heads_of_bounded)
{
    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    Wsgate__StreamRef refs[RT_HIST_HEADS_MAX + 1];
    Wsgate__StreamRef *ptrs[RT_HIST_HEADS_MAX + 1];
    for (size_t i = 0; i <= RT_HIST_HEADS_MAX; i++) {
        wsgate__stream_ref__init(&refs[i]);
        refs[i].kind = WSGATE__STREAM_KIND__STREAM_USER;
        refs[i].name = "u";
        ptrs[i] = &refs[i];
    }
    rq.stream = WSGATE__STREAM_KIND__STREAM_USER;
    rq.stream_name = "alice";
    rq.heads_of = ptrs;
    rt_hist_req q;
    rq.n_heads_of = RT_HIST_HEADS_MAX;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_uint_eq(q.nheads, RT_HIST_HEADS_MAX);
    rq.n_heads_of = RT_HIST_HEADS_MAX + 1;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
    /* with_broadcast_head counts as one more head, unless heads_of names that stream */
    rq.n_heads_of = RT_HIST_HEADS_MAX;
    rq.with_broadcast_head = 1;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_BAD);
    refs[3].kind = WSGATE__STREAM_KIND__STREAM_BROADCAST;
    refs[3].name = "";
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_uint_eq(q.nheads, RT_HIST_HEADS_MAX);
    ck_assert_uint_eq(q.legacy_head, 4);
}
END_TEST

/* An older gateway asks with_broadcast_head and reads broadcast_head: answered there, and in
 * heads as a newer one reads it. */
START_TEST(legacy_broadcast_head)
{
    Wsgate__HistoryRequest rq = WSGATE__HISTORY_REQUEST__INIT;
    rq.stream = WSGATE__STREAM_KIND__STREAM_USER;
    rq.user_id = "alice";
    rq.with_broadcast_head = 1;
    rt_hist_req q;
    ck_assert_int_eq(req(&rq, &q), RT_HREQ_OK);
    ck_assert_uint_eq(q.nheads, 1);
    ck_assert_uint_eq(q.legacy_head, 1);
    ck_assert_int_eq(q.heads[0].kind, WSGATE__STREAM_KIND__STREAM_BROADCAST);
    rt_hist_page pg = {.epoch = 9, .head = 3, .heads = {12}, .nheads = 1};
    Wsgate__HistoryReply *rp = packed(&q, &pg);
    ck_assert(rp->has_broadcast_head && rp->broadcast_head == 12);
    ck_assert_uint_eq(rp->n_heads, 1);
    ck_assert_int_eq(rp->heads[0]->kind, WSGATE__STREAM_KIND__STREAM_BROADCAST);
    ck_assert_uint_eq(rp->heads[0]->head, 12);
    wsgate__history_reply__free_unpacked(rp, NULL);
    /* an empty broadcast stream: has_broadcast_head still says it was answered */
    pg.heads[0] = 0;
    rp = packed(&q, &pg);
    ck_assert(rp->has_broadcast_head && rp->broadcast_head == 0);
    wsgate__history_reply__free_unpacked(rp, NULL);
}
END_TEST

/* The router's kind table: what each kind does, and the older user_id fields. */
START_TEST(kind_table)
{
    ck_assert(rt_kind_known(WSG_STREAM_USER) && rt_kind_known(WSG_STREAM_BROADCAST));
    ck_assert(!rt_kind_known(WSG_STREAM_NONE) && !rt_kind_known(WSG_STREAM_KINDS));
    ck_assert(rt_kind_offline_store(WSG_STREAM_USER) && !rt_kind_ring(WSG_STREAM_USER));
    ck_assert(!rt_kind_offline_store(WSG_STREAM_BROADCAST) && rt_kind_ring(WSG_STREAM_BROADCAST));
    ck_assert(!rt_kind_offline_store(99) && !rt_kind_ring(99));
    ck_assert_int_eq(rt_kind_audience(WSG_STREAM_USER), RT_AUDIENCE_USER);
    ck_assert_int_eq(rt_kind_audience(WSG_STREAM_BROADCAST), RT_AUDIENCE_ALL);
    ck_assert_int_eq(rt_kind_audience(99), RT_AUDIENCE_NONE);
    ck_assert_str_eq(rt_stream_legacy_user_id(WSG_STREAM_USER, "al"), "al");
    ck_assert_str_eq(rt_stream_legacy_user_id(WSG_STREAM_BROADCAST, ""), "");
    ck_assert_str_eq(rt_stream_name_of(WSG_STREAM_USER, "", "al"), "al");
    ck_assert_str_eq(rt_stream_name_of(WSG_STREAM_USER, "bo", "al"), "bo");
    ck_assert_str_eq(rt_stream_name_of(WSG_STREAM_BROADCAST, "", "al"), "");
}
END_TEST

static rt_hist_plan plan(int stream, int has_after, uint64_t after, uint64_t epoch,
                         uint64_t until, uint64_t cur, uint64_t head, uint64_t first,
                         uint64_t mark)
{
    rt_hist_req q = {.kind = stream, .has_after = has_after, .after = after, .epoch = epoch,
                     .until = until, .max_items = 100};
    rt_hist_view v = {.epoch = cur, .head = head, .first_kept = first, .mark = mark};
    rt_hist_plan p;
    rt_hist_plan_for(&q, &v, &p);
    return p;
}

#define U WSGATE__STREAM_KIND__STREAM_USER
#define B WSGATE__STREAM_KIND__STREAM_BROADCAST

START_TEST(resync_decisions)
{
    /* kept 5..20 of epoch 9 */
    rt_hist_plan p = plan(U, 1, 10, 9, 0, 9, 20, 5, 0);
    ck_assert(p.want && !p.resync && p.from == 11 && p.to == 20);
    p = plan(U, 1, 10, 0, 0, 9, 20, 5, 0); /* epoch unknown: the current one */
    ck_assert(!p.resync && p.from == 11);
    p = plan(U, 1, 4, 9, 0, 9, 20, 5, 0); /* exactly reaches back */
    ck_assert(!p.resync && p.from == 5);
    p = plan(U, 1, 3, 9, 0, 9, 20, 5, 0); /* 4 is gone */
    ck_assert(p.resync && p.from == 5 && p.to == 20);
    p = plan(U, 1, 10, 8, 0, 9, 20, 5, 0); /* another epoch */
    ck_assert(p.resync && p.from == 5);
    p = plan(U, 1, 21, 9, 0, 9, 20, 5, 0); /* past the head */
    ck_assert(p.resync && p.from == 5);
    p = plan(U, 1, 20, 9, 0, 9, 20, 5, 0); /* up to date */
    ck_assert(!p.resync && p.from == 21 && p.to == 20);
    p = plan(U, 1, 10, 9, 12, 9, 20, 5, 0); /* until */
    ck_assert(!p.resync && p.from == 11 && p.to == 12);
    p = plan(U, 1, 10, 9, 99, 9, 20, 5, 0);
    ck_assert(p.to == 20);
    /* nothing kept (all expired): only a client already at the head is fine */
    p = plan(U, 1, 20, 9, 0, 9, 20, 21, 0);
    ck_assert(!p.resync && p.from > p.to);
    p = plan(U, 1, 19, 9, 0, 9, 20, 21, 0);
    ck_assert(p.resync && p.from > p.to);
    /* empty stream */
    p = plan(U, 1, 0, 0, 0, 9, 0, 1, 0);
    ck_assert(!p.resync && p.from > p.to);
    /* has_after false: after the delivered mark, the epoch does not matter */
    p = plan(U, 0, 0, 7, 0, 9, 20, 5, 12);
    ck_assert(p.want && !p.resync && p.from == 13 && p.to == 20);
    p = plan(U, 0, 0, 0, 0, 9, 20, 5, 0); /* never delivered, 1..4 trimmed */
    ck_assert(p.resync && p.from == 5);
    p = plan(U, 0, 0, 0, 0, 9, 3, 1, 0); /* never delivered, all kept */
    ck_assert(!p.resync && p.from == 1 && p.to == 3);
    /* broadcast without a position: epoch and head only */
    p = plan(B, 0, 0, 0, 0, 9, 20, 5, 0);
    ck_assert(!p.want && !p.resync);
    p = plan(B, 1, 3, 9, 0, 9, 20, 5, 0);
    ck_assert(p.want && p.resync && p.from == 5);
}
END_TEST

START_TEST(formats)
{
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, "{\"a\":1}", 7), RT_FRAME_OK);
    rt_hist_limits l = {.max_len = 50, .ttl_ms = 60000, .page = 10};
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_append_args(&a, "p", &f, 123, "r1:77:5", 42, NULL), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "alice", RT_APPEND_LIVE), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, B, NULL, RT_APPEND_OFFLINE), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, WSGATE__STREAM_KIND__STREAM_NONE, NULL, 0), -1);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "", 0), -1);    /* a user stream is named */
    ck_assert_int_eq(rt_hist_append_add(&a, &l, U, "a\nb", 0), -1); /* ... by a user id */
    ck_assert_int_eq(rt_hist_append_add(&a, &l, B, "x", 0), -1);   /* an unnamed kind is not */
    ck_assert_int_eq(rt_hist_append_add(&a, &l, B, NULL, RT_APPEND_SEEN_ONLY), -1); /* no user */
    ck_assert_uint_eq(a.argc, 20);
    ck_assert_str_eq(a.argv[0], "p");
    uint64_t cand = strtoull(a.argv[1], NULL, 10);
    ck_assert(cand > 0 && cand <= RT_HIST_EPOCH_MAX);
    ck_assert_str_eq(a.argv[2], "{\"a\":1,\"seq\":");
    ck_assert_str_eq(a.argv[3], "}");
    ck_assert_str_eq(a.argv[4], "123");
    ck_assert_str_eq(a.argv[5], "r1:77:5");
    ck_assert_str_eq(a.argv[6], "42");
    ck_assert_str_eq(a.argv[7], ""); /* not sharded */
    /* tag, name, marked (the kind keeps a delivered mark), mode, max_len, ttl_ms */
    const char *rest[] = {"u", "alice", "1", "1", "50", "60000", "b", "", "0", "0", "50", "60000"};
    for (int i = 0; i < 12; i++)
        ck_assert_str_eq(a.argv[8 + i], rest[i]);
    rt_cmd_free(&a);
    rt_frame_free(&f);

    /* void: depth, then kind, user, job id, the stream's ttl per append */
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_void_args(&a, "p"), 0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, U, "alice", "r1:77:5"), 0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, B, NULL, "r1:77:6"), 0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, WSGATE__STREAM_KIND__STREAM_NONE, NULL, "x"), -1);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, B, "x", "x"), -1);
    ck_assert_uint_eq(a.argc, 10);
    const char *vargs[] = {"p", "200", "u", "alice", "r1:77:5", "60000",
                           "b", "",    "r1:77:6", "60000"};
    for (int i = 0; i < 10; i++)
        ck_assert_str_eq(a.argv[i], vargs[i]);
    rt_cmd_free(&a);

    /* HistoryReply round trip */
    rt_hist_item items[2] = {{.seq = 4, .data = (const uint8_t *)"{\"x\":1}", .len = 7,
                              .created_us = 11},
                             {.seq = 5, .data = (const uint8_t *)"{}", .len = 2}};
    rt_hist_page pg = {.epoch = 9, .head = 7, .resync = 1, .more = 1, .items = items, .n = 2};
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(rt_hist_reply_pack(WSGATE__HISTORY_REPLY__STATUS__OK, NULL, &pg, &buf, &len),
                     0);
    Wsgate__HistoryReply *rp = wsgate__history_reply__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(rp);
    ck_assert(rp->epoch == 9 && rp->head == 7 && rp->resync && rp->more && rp->n_items == 2);
    ck_assert_uint_eq(rp->items[0]->seq, 4);
    ck_assert_int_eq(rp->items[0]->created_at_us, 11);
    ck_assert_mem_eq(rp->items[0]->payload.data, "{\"x\":1}", 7);
    wsgate__history_reply__free_unpacked(rp, NULL);
    free(buf);
    ck_assert_int_eq(
        rt_hist_reply_pack(WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE, NULL, NULL, &buf, &len),
        0);
    rp = wsgate__history_reply__unpack(NULL, len, buf);
    ck_assert_int_eq(rp->status, WSGATE__HISTORY_REPLY__STATUS__UNAVAILABLE);
    wsgate__history_reply__free_unpacked(rp, NULL);
    free(buf);
}
END_TEST

/* A channel's stream is kept as its namespace says (history_size, history_ttl), 0 falling back
 * to the router's; users, the broadcast stream and channels outside every namespace always use
 * the router's. */
START_TEST(limits_per_namespace)
{
    wsg_ns_table *t;
    char err[256];
    ck_assert_int_eq(wsg_ns_table_load("{\"\":{},\"chat\":{\"history_size\":3,\"history_ttl\":"
                                       "\"90s\"},\"big\":{\"history_size\":5000}}",
                                       &t, err, sizeof(err)),
                     0);
    rt_hist_limits l = {.max_len = 50, .ttl_ms = 60000, .page = 10, .namespaces = t};
    uint64_t n;
    int64_t ttl;
    rt_hist_limits_of(&l, WSG_STREAM_CHANNEL, "chat:room", &n, &ttl);
    ck_assert(n == 3 && ttl == 90000);
    rt_hist_limits_of(&l, WSG_STREAM_CHANNEL, "big:x", &n, &ttl);
    ck_assert(n == 5000 && ttl == 60000);
    rt_hist_limits_of(&l, WSG_STREAM_CHANNEL, "lobby", &n, &ttl); /* the default namespace */
    ck_assert(n == 50 && ttl == 60000);
    rt_hist_limits_of(&l, WSG_STREAM_CHANNEL, "nope:x", &n, &ttl);
    ck_assert(n == 50 && ttl == 60000);
    /* a user may be called "chat:room": user streams never take a namespace's limits */
    rt_hist_limits_of(&l, WSG_STREAM_USER, "chat:room", &n, &ttl);
    ck_assert(n == 50 && ttl == 60000);
    rt_hist_limits_of(&l, WSG_STREAM_BROADCAST, "", &n, &ttl);
    ck_assert(n == 50 && ttl == 60000);
    l.namespaces = NULL;
    rt_hist_limits_of(&l, WSG_STREAM_CHANNEL, "chat:room", &n, &ttl);
    ck_assert(n == 50 && ttl == 60000);
    l.namespaces = t;

    /* every script call carries each stream's own */
    rt_frame f;
    ck_assert_int_eq(rt_frame_from_payload(&f, "{}", 2), RT_FRAME_OK);
    rt_cmd a;
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_append_args(&a, "p", &f, 1, "j", 0, NULL), 0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, WSG_STREAM_CHANNEL, "chat:room", RT_APPEND_OFFLINE),
                     0);
    ck_assert_int_eq(rt_hist_append_add(&a, &l, WSG_STREAM_USER, "alice", RT_APPEND_OFFLINE), 0);
    ck_assert_uint_eq(a.argc, 20);
    const char *rest[] = {"c", "chat:room", "0", "0", "3", "90000",
                          "u", "alice", "1", "0", "50", "60000"};
    for (int i = 0; i < 12; i++)
        ck_assert_str_eq(a.argv[8 + i], rest[i]);
    rt_cmd_free(&a);
    rt_frame_free(&f);
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_void_args(&a, "p"), 0);
    ck_assert_int_eq(rt_hist_void_add(&a, &l, WSG_STREAM_CHANNEL, "chat:room", "j"), 0);
    ck_assert_str_eq(a.argv[5], "90000");
    rt_cmd_free(&a);
    rt_hist_req q = {.kind = WSGATE__STREAM_KIND__STREAM_CHANNEL, .name = "chat:room",
                     .has_after = 1, .max_items = 10};
    rt_cmd_init(&a);
    ck_assert_int_eq(rt_hist_read_args(&a, "p", &l, &q, 1000, NULL), 0);
    ck_assert_str_eq(a.argv[11], "90000"); /* ARGV[12]: the stream's ttl */
    rt_cmd_free(&a);
    wsg_ns_table_free(t);
}
END_TEST

static void push(rt_ring *r, uint64_t epoch, uint64_t seq, int64_t at)
{
    char text[32];
    snprintf(text, sizeof(text), "{\"seq\":%llu}", (unsigned long long)seq);
    ck_assert_int_eq(rt_ring_push(r, epoch, seq, text, strlen(text), (int64_t)seq, at), 0);
}

static int serve(rt_ring *r, int has_after, uint64_t after, uint64_t epoch, uint32_t max,
                 int64_t now, rt_hist_page *p)
{
    rt_hist_req q = {.kind = B, .has_after = has_after, .after = after, .epoch = epoch,
                     .max_items = max};
    return rt_ring_serve(r, &q, 1 << 20, now, p);
}

START_TEST(ring_coverage_and_wraparound)
{
    rt_ring *r = rt_ring_new(B, "", 4, 1 << 20, 100 * US);
    rt_hist_page p;
    /* knows nothing: Redis answers */
    ck_assert_int_eq(serve(r, 0, 0, 0, 10, 0, &p), 0);
    /* loaded whole from Redis: an empty stream at head 0 */
    rt_hist_page empty = {.epoch = 9, .head = 0};
    ck_assert_int_eq(rt_ring_load(r, &empty, 0), 0);
    ck_assert(rt_ring_complete(r));
    ck_assert_int_eq(serve(r, 0, 0, 0, 10, 0, &p), 1);
    ck_assert(p.epoch == 9 && p.head == 0 && p.n == 0 && !p.resync);
    for (uint64_t s = 1; s <= 6; s++) /* wraps: 3..6 kept */
        push(r, 9, s, 10);
    ck_assert_uint_eq(rt_ring_len(r), 4);
    ck_assert(rt_ring_complete(r));
    ck_assert_int_eq(serve(r, 1, 2, 9, 10, 20, &p), 1);
    ck_assert(!p.resync && p.n == 4 && p.items[0].seq == 3 && p.items[3].seq == 6 && !p.more);
    ck_assert_mem_eq(p.items[0].data, "{\"seq\":3}", 9);
    rt_hist_page_free(&p);
    /* a page smaller than what is asked */
    ck_assert_int_eq(serve(r, 1, 3, 9, 2, 20, &p), 1);
    ck_assert(p.n == 2 && p.items[0].seq == 4 && p.items[1].seq == 5 && p.more);
    rt_hist_page_free(&p);
    /* before the oldest kept: complete, so the ring itself says resync */
    ck_assert_int_eq(serve(r, 1, 1, 9, 10, 20, &p), 1);
    ck_assert(p.resync && p.n == 4 && p.items[0].seq == 3);
    rt_hist_page_free(&p);
    ck_assert_int_eq(serve(r, 1, 4, 8, 10, 20, &p), 1); /* wrong epoch */
    ck_assert(p.resync && p.items[0].seq == 3);
    rt_hist_page_free(&p);
    /* past the ring's head: maybe another replica's item, Redis decides */
    ck_assert_int_eq(serve(r, 1, 7, 9, 10, 20, &p), 0);
    /* up to date */
    ck_assert_int_eq(serve(r, 1, 6, 9, 10, 20, &p), 1);
    ck_assert(p.n == 0 && !p.resync && p.head == 6);
    /* a gap repair up to a seq past the ring's head (the gateway holds 8: another replica
     * appended 7 and 8, its deliveries of 7 lost): only Redis knows 7 */
    rt_hist_req gap = {.kind = B, .has_after = 1, .after = 6, .epoch = 9, .until = 7,
                       .max_items = 10};
    ck_assert_int_eq(rt_ring_serve(r, &gap, 1 << 20, 20, &p), 0);
    gap.until = 6; /* within the ring: it answers */
    ck_assert_int_eq(rt_ring_serve(r, &gap, 1 << 20, 20, &p), 1);
    ck_assert(p.n == 0 && !p.resync);

    /* another replica appended 7: this one's 8 starts the run again, incomplete */
    push(r, 9, 8, 30);
    ck_assert(!rt_ring_complete(r));
    ck_assert_uint_eq(rt_ring_len(r), 1);
    ck_assert_int_eq(serve(r, 1, 7, 9, 10, 30, &p), 1);
    ck_assert(p.n == 1 && p.items[0].seq == 8);
    rt_hist_page_free(&p);
    ck_assert_int_eq(serve(r, 1, 6, 9, 10, 30, &p), 0); /* needs 7: Redis */
    ck_assert_int_eq(serve(r, 1, 7, 1, 10, 30, &p), 0); /* resync needs the whole stream */
    /* a new epoch (Redis lost everything) starts again too */
    push(r, 10, 1, 40);
    ck_assert_int_eq(serve(r, 1, 0, 10, 10, 40, &p), 1);
    ck_assert(p.n == 1 && p.epoch == 10);
    rt_hist_page_free(&p);
    rt_ring_free(r);
}
END_TEST

static void seq_first(rt_hist_page *p, uint64_t seq)
{
    ck_assert_uint_ge(p->n, 1);
    ck_assert_uint_eq(p->items[0].seq, seq);
    rt_hist_page_free(p);
}

START_TEST(ring_load_and_expiry)
{
    rt_ring *r = rt_ring_new(B, NULL, 8, 1 << 20, 100 * US);
    rt_hist_item items[3] = {{.seq = 5, .data = (const uint8_t *)"{}", .len = 2},
                             {.seq = 6, .data = (const uint8_t *)"{}", .len = 2},
                             {.seq = 7, .data = (const uint8_t *)"{}", .len = 2}};
    /* a page that is not the whole stream teaches nothing */
    rt_hist_page pg = {.epoch = 3, .head = 7, .items = items, .n = 3, .more = 1};
    ck_assert_int_eq(rt_ring_load(r, &pg, 0), 0);
    ck_assert_uint_eq(rt_ring_len(r), 0);
    rt_hist_page p;
    ck_assert_int_eq(serve(r, 0, 0, 0, 10, 0, &p), 0);
    /* whole (history trimmed below 5: the read says resync from 0) */
    pg.more = 0;
    pg.resync = 1;
    ck_assert_int_eq(rt_ring_load(r, &pg, 0), 0);
    ck_assert(rt_ring_complete(r) && rt_ring_len(r) == 3);
    ck_assert_int_eq(serve(r, 1, 2, 3, 10, 0, &p), 1);
    ck_assert(p.resync && p.n == 3);
    rt_hist_page_free(&p);
    /* a hole in what Redis returned: not trusted */
    items[1].seq = 8;
    items[2].seq = 9;
    pg.head = 9;
    ck_assert_int_eq(rt_ring_load(r, &pg, 0), 0);
    ck_assert_uint_eq(rt_ring_len(r), 0);
    ck_assert(!rt_ring_complete(r));

    /* expiry: items pushed at 0 and 50 s, TTL 100 s */
    rt_ring_clear(r);
    rt_hist_page none = {.epoch = 3, .head = 0};
    ck_assert_int_eq(rt_ring_load(r, &none, 0), 0);
    push(r, 3, 1, 0);
    push(r, 3, 2, 50 * US);
    ck_assert_int_eq(serve(r, 1, 0, 3, 10, 120 * US, &p), 1);
    ck_assert(p.resync && p.n == 1 && p.items[0].seq == 2);
    rt_hist_page_free(&p);
    ck_assert_int_eq(serve(r, 1, 1, 3, 10, 200 * US, &p), 1);
    ck_assert(p.resync && p.n == 0 && p.head == 2);
    ck_assert_int_eq(serve(r, 1, 2, 3, 10, 200 * US, &p), 1);
    ck_assert(!p.resync && p.n == 0);
    rt_ring_free(r);

    /* the byte cap drops the oldest, and then the ring no longer stands for the stream */
    r = rt_ring_new(B, "", 8, 20, 100 * US);
    ck_assert_int_eq(rt_ring_load(r, &none, 0), 0);
    push(r, 3, 1, 0); /* 9 bytes each */
    push(r, 3, 2, 0);
    ck_assert(rt_ring_complete(r));
    push(r, 3, 3, 0);
    ck_assert(!rt_ring_complete(r) && rt_ring_len(r) == 2);
    ck_assert_int_eq(serve(r, 1, 2, 3, 10, 0, &p), 1);
    seq_first(&p, 3);
    ck_assert_int_eq(serve(r, 1, 0, 3, 10, 0, &p), 0); /* 1 is only in Redis now */
    rt_ring_free(r);
}
END_TEST

/* A ring answers for its own stream only, and only what needs no Redis: no delivered mark to
 * read or move, no head of another stream. */
START_TEST(ring_serves_its_stream_only)
{
    rt_ring *r = rt_ring_new(U, "alice", 8, 1 << 20, 100 * US);
    ck_assert_ptr_nonnull(r);
    ck_assert(rt_ring_is(r, U, "alice") && !rt_ring_is(r, U, "bob") && !rt_ring_is(r, B, ""));
    rt_hist_page none = {.epoch = 3, .head = 0};
    ck_assert_int_eq(rt_ring_load(r, &none, 0), 0);
    push(r, 3, 1, 0);
    push(r, 3, 2, 0);
    rt_hist_req q = {.kind = U, .name = "alice", .has_after = 1, .after = 0, .epoch = 3,
                     .max_items = 10};
    rt_hist_page p;
    ck_assert_int_eq(rt_ring_serve(r, &q, 1 << 20, 0, &p), 1);
    seq_first(&p, 1);
    snprintf(q.name, sizeof(q.name), "%s", "bob"); /* another user's stream */
    ck_assert_int_eq(rt_ring_serve(r, &q, 1 << 20, 0, &p), 0);
    q.kind = B; /* another kind */
    q.name[0] = '\0';
    ck_assert_int_eq(rt_ring_serve(r, &q, 1 << 20, 0, &p), 0);
    q.kind = U;
    snprintf(q.name, sizeof(q.name), "%s", "alice");
    q.mark = 1; /* the delivered mark moves: Redis */
    ck_assert_int_eq(rt_ring_serve(r, &q, 1 << 20, 0, &p), 0);
    q.mark = 0;
    q.has_after = 0; /* after the delivered mark: Redis knows it */
    ck_assert_int_eq(rt_ring_serve(r, &q, 1 << 20, 0, &p), 0);
    q.has_after = 1;
    /* its own head it answers; another stream's head Redis reads with the page */
    q.nheads = 1;
    q.heads[0].kind = U;
    snprintf(q.heads[0].name, sizeof(q.heads[0].name), "%s", "alice");
    ck_assert_int_eq(rt_ring_serve(r, &q, 1 << 20, 0, &p), 1);
    ck_assert(p.nheads == 1 && p.heads[0] == 2);
    rt_hist_page_free(&p);
    q.heads[0].kind = B;
    q.heads[0].name[0] = '\0';
    ck_assert_int_eq(rt_ring_serve(r, &q, 1 << 20, 0, &p), 0);
    rt_ring_free(r);
    char long_name[WSG_STREAM_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ck_assert_ptr_null(rt_ring_new(U, long_name, 8, 1 << 20, US));
}
END_TEST

static void entry_is(const rt_unc_entry *e, Wsgate__StreamKind kind, const char *name,
                     const char *job)
{
    ck_assert_int_eq(e->kind, kind);
    ck_assert_str_eq(e->name, name);
    ck_assert_str_eq(e->job_id, job);
}

START_TEST(uncertain_fifo)
{
    ck_assert_ptr_null(rt_unc_new(0));
    rt_uncertain *u = rt_unc_new(100);
    ck_assert_ptr_nonnull(u);
    rt_unc_entry out[100];
    ck_assert_uint_eq(rt_unc_take(u, out, 10), 0);
    /* copies are kept: the caller's strings may go */
    char user[8] = "alice", job[8] = "j:1";
    ck_assert_int_eq(rt_unc_add(u, U, user, job), RT_UNC_KEPT);
    strcpy(user, "xxxxx");
    strcpy(job, "xxx");
    ck_assert_int_eq(rt_unc_add(u, B, NULL, "j:2"), RT_UNC_KEPT);
    ck_assert_uint_eq(rt_unc_len(u), 2);
    ck_assert_uint_eq(rt_unc_take(u, out, 1), 1);
    entry_is(&out[0], U, "alice", "j:1");
    rt_unc_entry_clear(&out[0]);
    ck_assert_uint_eq(rt_unc_take(u, out, 10), 1);
    entry_is(&out[0], B, "", "j:2");
    rt_unc_entry_clear(&out[0]);
    ck_assert_uint_eq(rt_unc_len(u), 0);

    /* oldest first across the array's wraparound and growth, and never beyond max */
    char id[32];
    size_t next_in = 0, next_out = 0;
    for (int round = 0; round < 5; round++) {
        while (rt_unc_len(u) < 70) {
            snprintf(id, sizeof(id), "j:%zu", next_in++);
            ck_assert_int_eq(rt_unc_add(u, U, "bob", id), RT_UNC_KEPT);
        }
        size_t n = rt_unc_take(u, out, 45);
        ck_assert_uint_eq(n, 45);
        for (size_t i = 0; i < n; i++) {
            snprintf(id, sizeof(id), "j:%zu", next_out++);
            entry_is(&out[i], U, "bob", id);
            rt_unc_entry_clear(&out[i]);
        }
    }
    while (rt_unc_len(u) < 100) {
        snprintf(id, sizeof(id), "j:%zu", next_in++);
        ck_assert_int_eq(rt_unc_add(u, U, "bob", id), RT_UNC_KEPT);
    }
    ck_assert_int_eq(rt_unc_add(u, U, "bob", "one too many"), RT_UNC_FULL);
    ck_assert_uint_eq(rt_unc_len(u), 100);
    /* taking makes room again; what is left is freed with the list */
    ck_assert_uint_eq(rt_unc_take(u, out, 1), 1);
    snprintf(id, sizeof(id), "j:%zu", next_out);
    entry_is(&out[0], U, "bob", id);
    rt_unc_entry_clear(&out[0]);
    ck_assert_int_eq(rt_unc_add(u, B, NULL, "last"), RT_UNC_KEPT);
    rt_unc_free(u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_history");
    TCase *tc = tcase_create("history");
    tcase_add_test(tc, seq_splice);
    tcase_add_test(tc, frames_with_seq);
    tcase_add_test(tc, request_validation);
    tcase_add_test(tc, request_user_id_only);
    tcase_add_test(tc, request_stream_name_preferred);
    tcase_add_test(tc, heads_of_in_order);
    tcase_add_test(tc, heads_of_bounded);
    tcase_add_test(tc, legacy_broadcast_head);
    tcase_add_test(tc, kind_table);
    tcase_add_test(tc, resync_decisions);
    tcase_add_test(tc, formats);
    tcase_add_test(tc, limits_per_namespace);
    tcase_add_test(tc, ring_coverage_and_wraparound);
    tcase_add_test(tc, ring_load_and_expiry);
    tcase_add_test(tc, ring_serves_its_stream_only);
    tcase_add_test(tc, uncertain_fifo);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
