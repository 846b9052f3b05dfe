/* Unit tests of wsg_client: the labels generated from the macro lists, and the exact bytes
 * of the frames both services build. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_check.h"
#include "wsg_client.h"

START_TEST(labels_follow_enums)
{
    ck_assert_str_eq(wsg_client_type_name(WSG_CLIENT_TYPE_SEND_MESSAGE), "send_message");
    ck_assert_str_eq(wsg_client_type_name(WSG_CLIENT_TYPE_RESYNC), "resync");
    ck_assert_str_eq(wsg_client_type_name(WSG_CLIENT_TYPE__COUNT), "unknown");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR_NONE), "none");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR_FORBIDDEN), "forbidden");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR_UNKNOWN_USER), "unknown_user");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR_HISTORY_UNAVAILABLE),
                     "history_unavailable");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR__COUNT), "error");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR_NO_HANDLER), "no_handler");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR_TIMEOUT), "timeout");
    ck_assert_str_eq(wsg_client_error_code(WSG_CLIENT_ERR_BAD_REPLY), "bad_reply");
    ck_assert_str_eq(wsg_client_type_name(WSG_CLIENT_TYPE_REPLY), "reply");
}
END_TEST

START_TEST(refreshed_frame)
{
    size_t len = 0;
    json_t *ref = json_string("r1");
    char *s = wsg_client_refreshed(1800000000, ref, &len);
    ck_assert_str_eq(s, "{\"type\":\"refreshed\",\"ref\":\"r1\",\"exp\":1800000000}");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
    json_decref(ref);
    /* no id, no exp (a token without one): the members are left out */
    s = wsg_client_refreshed(0, NULL, &len);
    ck_assert_str_eq(s, "{\"type\":\"refreshed\"}");
    free(s);
    ck_assert_str_eq(wsg_client_type_name(WSG_CLIENT_TYPE_REFRESH), "refresh");
}
END_TEST

START_TEST(reply_frame)
{
    json_t *ref = json_string("r1");
    json_t *data = json_pack("{s:s,s:i}", "echo", "hi", "n", 2);
    size_t len = 0;
    char *s = wsg_client_reply(ref, data, &len);
    ck_assert_str_eq(s, "{\"type\":\"reply\",\"ref\":\"r1\",\"data\":{\"echo\":\"hi\",\"n\":2}}");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
    json_t *num = json_integer(7);
    s = wsg_client_reply(num, data, &len);
    ck_assert_str_eq(s, "{\"type\":\"reply\",\"ref\":7,\"data\":{\"echo\":\"hi\",\"n\":2}}");
    free(s);
    json_decref(num);
    json_decref(ref);
    json_decref(data);
}
END_TEST

START_TEST(router_codes_follow_gateway_codes)
{
    ck_assert_int_eq(WSG_CLIENT_ERR_UNKNOWN_NAMESPACE + 1, WSG_CLIENT_ERR__GATEWAY_END);
    ck_assert_int_eq(WSG_CLIENT_ERR_UNKNOWN_USER, WSG_CLIENT_ERR__GATEWAY_END);
    /* every code has its own label: none left NULL by a gap in the lists */
    for (int a = 0; a < WSG_CLIENT_ERR__COUNT; a++)
        for (int b = a + 1; b < WSG_CLIENT_ERR__COUNT; b++)
            ck_assert_str_ne(wsg_client_error_code(a), wsg_client_error_code(b));
}
END_TEST

START_TEST(error_frame_bytes)
{
    size_t len;
    json_t *ref = json_integer(17);
    char *s = wsg_client_error_frame(WSG_CLIENT_ERR_OFFLINE_QUOTA, "too much",
                                     &(wsg_client_about){.ref = ref, .target_user = "zoe"}, &len);
    ck_assert_str_eq(s, "{\"type\":\"error\",\"code\":\"offline_quota\",\"message\":\"too much\","
                        "\"target_user\":\"zoe\",\"ref\":17}");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
    json_decref(ref);
    s = wsg_client_error_frame(WSG_CLIENT_ERR_INVALID_JSON, NULL, NULL, &len);
    ck_assert_str_eq(s, "{\"type\":\"error\",\"code\":\"invalid_json\",\"message\":\"\"}");
    free(s);
}
END_TEST

START_TEST(sent_and_resync_bytes)
{
    size_t len;
    json_t *ref = json_string("m-2");
    char *s = wsg_client_sent("broadcast", 3, &(wsg_client_about){.ref = ref}, &len);
    ck_assert_str_eq(s, "{\"type\":\"sent\",\"ref\":\"m-2\",\"stream\":\"broadcast\",\"seq\":3}");
    free(s);
    json_decref(ref);
    s = wsg_client_resync("broadcast", NULL, 9, 40, "gone", &len);
    ck_assert_str_eq(s, "{\"type\":\"resync\",\"stream\":\"broadcast\",\"epoch\":9,"
                        "\"position\":40,\"reason\":\"gone\"}");
    free(s);
}
END_TEST

START_TEST(channel_frame_bytes)
{
    size_t len;
    json_t *ref = json_string("s-1");
    uint64_t four = 4;
    char *s = wsg_client_subscribed("chat:1", ref, &four, 9, 0, &len);
    ck_assert_str_eq(s, "{\"type\":\"subscribed\",\"channel\":\"chat:1\",\"ref\":\"s-1\","
                        "\"position\":4,\"epoch\":9}");
    free(s);
    s = wsg_client_subscribed("chat:1", NULL, NULL, 0, 1, &len);
    ck_assert_str_eq(s, "{\"type\":\"subscribed\",\"channel\":\"chat:1\",\"epoch\":0,"
                        "\"history\":\"unavailable\"}");
    free(s);
    s = wsg_client_unsubscribed("chat:1", NULL, &len);
    ck_assert_str_eq(s, "{\"type\":\"unsubscribed\",\"channel\":\"chat:1\"}");
    free(s);
    const char *users[] = {"ann", "bob"};
    s = wsg_client_presence("chat:1", ref, users, 2, 3, &len);
    ck_assert_str_eq(s, "{\"type\":\"presence\",\"channel\":\"chat:1\",\"ref\":\"s-1\","
                        "\"users\":[\"ann\",\"bob\"],\"connections\":3}");
    free(s);
    s = wsg_client_join_leave(0, "chat:1", "ann", &len);
    ck_assert_str_eq(s, "{\"type\":\"leave\",\"channel\":\"chat:1\",\"user\":\"ann\"}");
    free(s);
    s = wsg_client_sent("channel", 5, &(wsg_client_about){.ref = ref, .channel = "chat:1"}, &len);
    ck_assert_str_eq(s, "{\"type\":\"sent\",\"ref\":\"s-1\",\"stream\":\"channel\","
                        "\"channel\":\"chat:1\",\"seq\":5}");
    free(s);
    s = wsg_client_error_frame(WSG_CLIENT_ERR_FORBIDDEN, "no",
                               &(wsg_client_about){.ref = ref, .channel = "chat:1"}, &len);
    ck_assert_str_eq(s, "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"no\","
                        "\"channel\":\"chat:1\",\"ref\":\"s-1\"}");
    free(s);
    s = wsg_client_resync("channel", "chat:1", 9, 2, "gone", &len);
    ck_assert_str_eq(s, "{\"type\":\"resync\",\"stream\":\"channel\",\"channel\":\"chat:1\","
                        "\"epoch\":9,\"position\":2,\"reason\":\"gone\"}");
    free(s);
    json_decref(ref);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wsg_client");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, labels_follow_enums);
    tcase_add_test(tc, router_codes_follow_gateway_codes);
    tcase_add_test(tc, error_frame_bytes);
    tcase_add_test(tc, reply_frame);
    tcase_add_test(tc, refreshed_frame);
    tcase_add_test(tc, sent_and_resync_bytes);
    tcase_add_test(tc, channel_frame_bytes);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
