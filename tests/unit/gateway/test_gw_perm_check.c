/* Unit tests for gw_perm_check: which frames a connection's rights and the channel namespaces
 * allow. */
#include <check.h>
#include <jansson.h>
#include <string.h>

#include "gw_perm_check.h"
#include "wsg_check.h"

static wsg_ns_table *ns;

static void setup(void)
{
    char err[256];
    ck_assert_int_eq(wsg_ns_table_load("{\"\":{},\"chat\":{\"join_leave\":true},"
                                       "\"feed\":{\"client_publish\":false,\"sub_public\":true},"
                                       "\"quiet\":{\"presence\":false}}",
                                       &ns, err, sizeof(err)),
                     0);
}

static void teardown(void)
{
    wsg_ns_table_free(ns);
}

static wsg_perm *perm_of(const char *claim)
{
    json_t *j = json_loads(claim, 0, NULL);
    ck_assert_ptr_nonnull(j);
    wsg_perm *p = NULL;
    ck_assert_int_eq(wsg_perm_parse(j, &p), 0);
    json_decref(j);
    return p;
}

static wsg_client_error check(const wsg_perm *p, int send_claim, const char *frame)
{
    gw_frame f;
    gw_frame_parse(frame, strlen(frame), &f);
    ck_assert_msg(f.kind != GW_FRAME_ERROR, "%s", frame);
    const char *msg = "unset";
    wsg_client_error e = gw_perm_check(p, ns, send_claim, &f, &msg);
    if (e)
        ck_assert_ptr_nonnull(msg);
    return e;
}

#define SUB(c) "{\"type\":\"subscribe\",\"channel\":\"" c "\"}"
#define PUB(c) "{\"type\":\"publish\",\"channel\":\"" c "\",\"content\":1}"
#define PRES(c) "{\"type\":\"presence\",\"channel\":\"" c "\"}"
#define UNSUB(c) "{\"type\":\"unsubscribe\",\"channel\":\"" c "\"}"
#define BCAST "{\"type\":\"broadcast\",\"content\":\"x\"}"
#define SEND(u) "{\"type\":\"send_message\",\"target_user\":\"" u "\",\"content\":\"x\"}"

START_TEST(subscribe_needs_a_sub_match)
{
    wsg_perm *p = perm_of("{\"sub\":[\"chat:*\"]}");
    ck_assert_int_eq(check(p, 0, SUB("chat:a")), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(p, 0, SUB("lobby")), WSG_CLIENT_ERR_FORBIDDEN);
    ck_assert_int_eq(check(wsg_perm_none(), 0, SUB("chat:a")), WSG_CLIENT_ERR_FORBIDDEN);
    wsg_perm_free(p);
}
END_TEST

START_TEST(sub_public_lets_every_user_subscribe)
{
    ck_assert_int_eq(check(wsg_perm_none(), 0, SUB("feed:x")), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(wsg_perm_none(), 0, PRES("feed:x")), WSG_CLIENT_ERR_NONE);
}
END_TEST

START_TEST(unknown_namespace)
{
    wsg_perm *p = perm_of("{\"sub\":[\"*\"],\"pub\":[\"*\"]}");
    ck_assert_int_eq(check(p, 0, SUB("nope:a")), WSG_CLIENT_ERR_UNKNOWN_NAMESPACE);
    ck_assert_int_eq(check(p, 0, PUB("nope:a")), WSG_CLIENT_ERR_UNKNOWN_NAMESPACE);
    ck_assert_int_eq(check(p, 0, PRES("nope:a")), WSG_CLIENT_ERR_UNKNOWN_NAMESPACE);
    ck_assert_int_eq(check(NULL, 0, SUB("nope:a")), WSG_CLIENT_ERR_UNKNOWN_NAMESPACE);
    ck_assert_int_eq(check(p, 0, UNSUB("nope:a")), WSG_CLIENT_ERR_NONE);
    wsg_perm_free(p);
}
END_TEST

START_TEST(publish_needs_pub_and_client_publish)
{
    wsg_perm *p = perm_of("{\"sub\":[\"*\"],\"pub\":[\"chat:a\",\"feed:*\"]}");
    ck_assert_int_eq(check(p, 0, PUB("chat:a")), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(p, 0, PUB("chat:b")), WSG_CLIENT_ERR_FORBIDDEN);
    ck_assert_int_eq(check(p, 0, PUB("feed:x")), WSG_CLIENT_ERR_FORBIDDEN); /* namespace says no */
    ck_assert_int_eq(check(NULL, 0, PUB("feed:x")), WSG_CLIENT_ERR_FORBIDDEN);
    ck_assert_int_eq(check(NULL, 0, PUB("chat:x")), WSG_CLIENT_ERR_NONE);
    wsg_perm_free(p);
}
END_TEST

START_TEST(presence_needs_sub_and_the_namespaces_presence)
{
    wsg_perm *p = perm_of("{\"sub\":[\"chat:*\",\"quiet:*\"],\"pub\":[\"*\"]}");
    ck_assert_int_eq(check(p, 0, PRES("chat:a")), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(p, 0, PRES("quiet:a")), WSG_CLIENT_ERR_FORBIDDEN);
    ck_assert_int_eq(check(p, 0, PRES("lobby")), WSG_CLIENT_ERR_FORBIDDEN); /* pub is not sub */
    wsg_perm_free(p);
}
END_TEST

START_TEST(broadcast_needs_the_claim)
{
    wsg_perm *p = perm_of("{\"broadcast\":true}");
    ck_assert_int_eq(check(p, 0, BCAST), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(wsg_perm_none(), 0, BCAST), WSG_CLIENT_ERR_FORBIDDEN);
    ck_assert_int_eq(check(NULL, 0, BCAST), WSG_CLIENT_ERR_NONE); /* WSGATE_AUTH=none */
    wsg_perm_free(p);
}
END_TEST

START_TEST(send_message_by_claim_only_when_configured)
{
    wsg_perm *p = perm_of("{\"send\":[\"support-*\"]}");
    ck_assert_int_eq(check(wsg_perm_none(), 0, SEND("bob")), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(wsg_perm_none(), 1, SEND("bob")), WSG_CLIENT_ERR_FORBIDDEN);
    ck_assert_int_eq(check(p, 1, SEND("support-1")), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(p, 1, SEND("bob")), WSG_CLIENT_ERR_FORBIDDEN);
    ck_assert_int_eq(check(NULL, 1, SEND("bob")), WSG_CLIENT_ERR_NONE);
    wsg_perm_free(p);
}
END_TEST

START_TEST(other_frames_pass)
{
    ck_assert_int_eq(check(wsg_perm_none(), 1, "{\"type\":\"ping\"}"), WSG_CLIENT_ERR_NONE);
    ck_assert_int_eq(check(wsg_perm_none(), 1, "{\"type\":\"order.created\"}"),
                     WSG_CLIENT_ERR_NONE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_perm_check");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, subscribe_needs_a_sub_match);
    tcase_add_test(tc, sub_public_lets_every_user_subscribe);
    tcase_add_test(tc, unknown_namespace);
    tcase_add_test(tc, publish_needs_pub_and_client_publish);
    tcase_add_test(tc, presence_needs_sub_and_the_namespaces_presence);
    tcase_add_test(tc, broadcast_needs_the_claim);
    tcase_add_test(tc, send_message_by_claim_only_when_configured);
    tcase_add_test(tc, other_frames_pass);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
