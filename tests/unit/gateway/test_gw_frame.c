/* Unit tests: client frame classification and the frames the gateway builds (gw_frame). */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gw_frame.h"
#include "wsg_check.h"

static gw_frame parse(const char *s)
{
    gw_frame f;
    gw_frame_parse(s, strlen(s), &f);
    return f;
}

START_TEST(ping_is_local)
{
    gw_frame f = parse("{\"type\":\"ping\"}");
    ck_assert_int_eq(f.kind, GW_FRAME_PING);
}
END_TEST

START_TEST(refresh_frame)
{
    const char *ok = "{\"type\":\"refresh\",\"id\":\"r\",\"token\":\"a.b.c\"}";
    gw_frame f = parse(ok);
    ck_assert_int_eq(f.kind, GW_FRAME_REFRESH);
    ck_assert_str_eq(f.ref, "\"r\"");
    char *t = gw_frame_refresh_token(ok, strlen(ok));
    ck_assert_str_eq(t, "a.b.c");
    free(t);
    const char *bad[] = {
        "{\"type\":\"refresh\"}",
        "{\"type\":\"refresh\",\"token\":\"\"}",
        "{\"type\":\"refresh\",\"token\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = parse(bad[i]);
        ck_assert_msg(f.kind == GW_FRAME_ERROR && f.error == WSG_CLIENT_ERR_INVALID_FIELD, "%s",
                      bad[i]);
    }
    /* a NUL inside is not JSON jansson takes */
    f = parse("{\"type\":\"refresh\",\"token\":\"a\\u0000b\"}");
    ck_assert_int_eq(f.kind, GW_FRAME_ERROR);
    /* 8192 bytes is the most */
    char *big = malloc(8300);
    int n = sprintf(big, "{\"type\":\"refresh\",\"token\":\"");
    memset(big + n, 'a', 8193);
    strcpy(big + n + 8193, "\"}");
    f = parse(big);
    ck_assert_int_eq(f.kind, GW_FRAME_ERROR);
    strcpy(big + n + 8192, "\"}");
    f = parse(big);
    ck_assert_int_eq(f.kind, GW_FRAME_REFRESH);
    free(big);
}
END_TEST

START_TEST(send_message_valid)
{
    gw_frame f = parse("{\"type\":\"send_message\",\"target_user\":\"bob\",\"content\":\"hi\"}");
    ck_assert_int_eq(f.kind, GW_FRAME_SEND_MESSAGE);
    ck_assert_str_eq(f.type, "send_message");
}
END_TEST

START_TEST(send_message_fields)
{
    const char *bad[] = {
        "{\"type\":\"send_message\",\"content\":\"hi\"}",
        "{\"type\":\"send_message\",\"target_user\":\"\",\"content\":\"hi\"}",
        "{\"type\":\"send_message\",\"target_user\":7,\"content\":\"hi\"}",
        "{\"type\":\"send_message\",\"target_user\":\"bob\"}",
        "{\"type\":\"send_message\",\"target_user\":\"bob\",\"content\":5}",
        "{\"type\":\"broadcast\"}",
        "{\"type\":\"broadcast\",\"content\":null}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_frame f = parse(bad[i]);
        ck_assert_msg(f.kind == GW_FRAME_ERROR && f.error == WSG_CLIENT_ERR_INVALID_FIELD, "%s",
                      bad[i]);
        ck_assert_ptr_nonnull(f.message);
    }
    char big[300];
    snprintf(big, sizeof(big), "{\"type\":\"send_message\",\"target_user\":\"%0129d\",\"content\":\"x\"}", 0);
    gw_frame f = parse(big);
    ck_assert_int_eq(f.error, WSG_CLIENT_ERR_INVALID_FIELD);
}
END_TEST

START_TEST(broadcast_valid)
{
    gw_frame f = parse("{\"type\":\"broadcast\",\"content\":\"\"}");
    ck_assert_int_eq(f.kind, GW_FRAME_BROADCAST);
}
END_TEST

START_TEST(forward_any_safe_type)
{
    const char *ok[] = {"chat", "chat.typing", "a-b_c.D9", "x"};
    for (size_t i = 0; i < 4; i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"x\":[1,2]}", ok[i]);
        gw_frame f = parse(buf);
        ck_assert_msg(f.kind == GW_FRAME_FORWARD, "%s", ok[i]);
        ck_assert_str_eq(f.type, ok[i]);
    }
    char t64[65];
    memset(t64, 'a', 64);
    t64[64] = '\0';
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"type\":\"%s\"}", t64);
    ck_assert_int_eq(parse(buf).kind, GW_FRAME_FORWARD);
}
END_TEST

START_TEST(type_injection_refused)
{
    const char *bad[] = {"a b", "a.*", "a.>", ">", "*", "a..b", ".a", "a.", "",
                         "caf\\u00e9", "a\\tb", "a/b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"id\":\"r%zu\"}", bad[i], i);
        gw_frame f = parse(buf);
        ck_assert_msg(f.kind == GW_FRAME_ERROR && f.error == WSG_CLIENT_ERR_INVALID_TYPE, "%s",
                      bad[i]);
    }
    /* jansson refuses NUL inside strings unless asked: such a frame is not JSON to us */
    ck_assert_int_eq(parse("{\"type\":\"a\\u0000b\"}").kind, GW_FRAME_ERROR);
    char t65[66];
    memset(t65, 'a', 65);
    t65[65] = '\0';
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"type\":\"%s\"}", t65);
    ck_assert_int_eq(parse(buf).error, WSG_CLIENT_ERR_INVALID_TYPE);
}
END_TEST

START_TEST(not_json_or_not_object)
{
    ck_assert_int_eq(parse("hello").error, WSG_CLIENT_ERR_INVALID_JSON);
    ck_assert_int_eq(parse("{\"type\":").error, WSG_CLIENT_ERR_INVALID_JSON);
    ck_assert_int_eq(parse("{\"type\":\"a\",\"type\":\"b\"}").error, WSG_CLIENT_ERR_INVALID_JSON);
    ck_assert_int_eq(parse("[1,2]").error, WSG_CLIENT_ERR_INVALID_FRAME);
    ck_assert_int_eq(parse("\"ping\"").error, WSG_CLIENT_ERR_INVALID_FRAME);
    ck_assert_int_eq(parse("42").error, WSG_CLIENT_ERR_INVALID_FRAME);
    ck_assert_int_eq(parse("{}").error, WSG_CLIENT_ERR_INVALID_FRAME);
    ck_assert_int_eq(parse("{\"type\":3}").error, WSG_CLIENT_ERR_INVALID_FRAME);
    wsg_client_error e = WSG_CLIENT_ERR_NONE;
    gw_frame f;
    gw_frame_parse("", 0, &f);
    e = f.error;
    ck_assert_int_eq(e, WSG_CLIENT_ERR_INVALID_JSON);
}
END_TEST

START_TEST(ref_echoes_id)
{
    gw_frame f = parse("{\"type\":\"a b\",\"id\":\"abc\"}");
    ck_assert_str_eq(f.ref, "\"abc\"");
    f = parse("{\"type\":\"a b\",\"id\":17}");
    ck_assert_str_eq(f.ref, "17");
    f = parse("{\"type\":\"a b\",\"id\":{\"x\":1}}");
    ck_assert_str_eq(f.ref, "");

    size_t len;
    char *json = gw_frame_error_json(WSG_CLIENT_ERR_INVALID_TYPE, "bad", "\"abc\"", NULL, &len);
    ck_assert_ptr_nonnull(json);
    ck_assert_uint_eq(len, strlen(json));
    json_t *o = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(o, "code")), "invalid_type");
    ck_assert_str_eq(json_string_value(json_object_get(o, "ref")), "abc");
    json_decref(o);
    free(json);
}
END_TEST

START_TEST(subscribe_valid)
{
    gw_frame f = parse("{\"type\":\"subscribe\",\"channel\":\"chat:room-1\",\"id\":3}");
    ck_assert_int_eq(f.kind, GW_FRAME_SUBSCRIBE);
    ck_assert_str_eq(f.channel, "chat:room-1");
    ck_assert_int_eq(f.has_since, 0);
    ck_assert_uint_eq(f.epoch, 0);
    ck_assert_str_eq(f.ref, "3");
    f = parse("{\"type\":\"subscribe\",\"channel\":\"a\",\"since\":0,\"epoch\":77}");
    ck_assert_int_eq(f.kind, GW_FRAME_SUBSCRIBE);
    ck_assert_int_eq(f.has_since, 1);
    ck_assert_uint_eq(f.since, 0);
    ck_assert_uint_eq(f.epoch, 77);
    f = parse("{\"type\":\"subscribe\",\"channel\":\"a\",\"since\":4503599627370497}");
    ck_assert_uint_eq(f.since, 4503599627370497ULL);
}
END_TEST

START_TEST(channel_frames_valid)
{
    gw_frame f = parse("{\"type\":\"unsubscribe\",\"channel\":\"x.y@z_-\"}");
    ck_assert_int_eq(f.kind, GW_FRAME_UNSUBSCRIBE);
    ck_assert_str_eq(f.channel, "x.y@z_-");
    f = parse("{\"type\":\"publish\",\"channel\":\"c\",\"content\":{\"any\":[1]}}");
    ck_assert_int_eq(f.kind, GW_FRAME_PUBLISH);
    f = parse("{\"type\":\"publish\",\"channel\":\"c\",\"content\":null}");
    ck_assert_int_eq(f.kind, GW_FRAME_PUBLISH); /* ANY: null is content too */
    f = parse("{\"type\":\"presence\",\"channel\":\"c\",\"id\":\"p\"}");
    ck_assert_int_eq(f.kind, GW_FRAME_PRESENCE);
    ck_assert_str_eq(f.type, "presence");
}
END_TEST

/* A missing or bad channel is bad_channel for every channel frame; a channel that is a short
 * string is kept for the error's "channel", anything else is not. */
START_TEST(bad_channel)
{
    const char *types[] = {"subscribe", "unsubscribe", "publish", "presence"};
    const char *chans[] = {"", "\"channel\":null,", "\"channel\":5,", "\"channel\":\"\",",
                           "\"channel\":\"a b\",", "\"channel\":\"a*\",",
                           "\"channel\":\"caf\u00e9\","};
    char buf[512];
    for (size_t t = 0; t < 4; t++)
        for (size_t i = 0; i < sizeof(chans) / sizeof(chans[0]); i++) {
            snprintf(buf, sizeof(buf), "{%s\"type\":\"%s\",\"content\":1}", chans[i], types[t]);
            gw_frame f = parse(buf);
            ck_assert_msg(f.kind == GW_FRAME_ERROR && f.error == WSG_CLIENT_ERR_BAD_CHANNEL, "%s",
                          buf);
        }
    char big[300];
    snprintf(big, sizeof(big), "{\"type\":\"subscribe\",\"channel\":\"%0129d\"}", 0);
    gw_frame f = parse(big);
    ck_assert_int_eq(f.error, WSG_CLIENT_ERR_BAD_CHANNEL);
    ck_assert_str_eq(f.channel, ""); /* too long to echo */
    f = parse("{\"type\":\"subscribe\",\"channel\":\"a b\",\"id\":1}");
    ck_assert_str_eq(f.channel, "a b");
    ck_assert_str_eq(f.ref, "1");
}
END_TEST

START_TEST(channel_frame_fields)
{
    const char *bad[] = {
        "{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":-1}",
        "{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":\"5\"}",
        "{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":1.5}",
        "{\"type\":\"subscribe\",\"channel\":\"c\",\"epoch\":null}",
        "{\"type\":\"subscribe\",\"channel\":\"c\",\"epoch\":-3}",
        "{\"type\":\"publish\",\"channel\":\"c\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_frame f = parse(bad[i]);
        ck_assert_msg(f.kind == GW_FRAME_ERROR && f.error == WSG_CLIENT_ERR_INVALID_FIELD, "%s",
                      bad[i]);
        ck_assert_str_eq(f.channel, "c"); /* the error names the channel */
    }
}
END_TEST

/* An error about a channel frame carries its ref and channel. */
START_TEST(error_names_channel)
{
    size_t len;
    char *json = gw_frame_error_json(WSG_CLIENT_ERR_FORBIDDEN, "no", "\"x\"", "chat:a", &len);
    json_t *o = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "code")), "forbidden");
    ck_assert_str_eq(json_string_value(json_object_get(o, "ref")), "x");
    ck_assert_str_eq(json_string_value(json_object_get(o, "channel")), "chat:a");
    json_decref(o);
    free(json);
    json = gw_frame_error_json(WSG_CLIENT_ERR_INVALID_JSON, "no", "", "", &len);
    o = json_loads(json, 0, NULL);
    ck_assert_ptr_null(json_object_get(o, "channel"));
    ck_assert_ptr_null(json_object_get(o, "ref"));
    json_decref(o);
    free(json);
}
END_TEST

START_TEST(send_message_target_kept)
{
    gw_frame f = parse("{\"type\":\"send_message\",\"target_user\":\"bob\",\"content\":\"x\"}");
    ck_assert_str_eq(f.target, "bob");
}
END_TEST

START_TEST(welcome_frame)
{
    size_t len;
    const wsg_client_position pos2[] = {{"user", 7}, {"broadcast", 9}};
    char *json = wsg_client_welcome("al\"ice", "gw-1", UINT64_C(18446744073709551615),
                                  UINT64_C(4503599627370497), pos2, 2, 0, &len);
    ck_assert_ptr_nonnull(json);
    json_t *o = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "welcome");
    ck_assert_str_eq(json_string_value(json_object_get(o, "user")), "al\"ice");
    ck_assert_str_eq(json_string_value(json_object_get(o, "node")), "gw-1");
    ck_assert_str_eq(json_string_value(json_object_get(o, "conn_id")), "18446744073709551615");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "epoch")), 4503599627370497LL);
    json_t *pos = json_object_get(o, "positions");
    ck_assert_int_eq(json_integer_value(json_object_get(pos, "user")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(pos, "broadcast")), 9);
    ck_assert_ptr_null(json_object_get(o, "history"));
    json_decref(o);
    free(json);

    /* without history: the client's positions only, and the mark */
    json = wsg_client_welcome("bob", "gw-1", 3, 0, pos2, 1, 1, &len);
    ck_assert_ptr_nonnull(json);
    ck_assert_str_eq(json, "{\"type\":\"welcome\",\"user\":\"bob\",\"node\":\"gw-1\","
                           "\"conn_id\":\"3\",\"epoch\":0,\"positions\":{\"user\":7},"
                           "\"history\":\"unavailable\"}");
    free(json);

    json = wsg_client_resync("user", NULL, 5, 41, "history no longer reaches back", &len);
    o = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "type")), "resync");
    ck_assert_str_eq(json_string_value(json_object_get(o, "stream")), "user");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "epoch")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "position")), 41);
    json_decref(o);
    free(json);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_frame");
    TCase *tc = tcase_create("frames");
    tcase_add_test(tc, ping_is_local);
    tcase_add_test(tc, send_message_valid);
    tcase_add_test(tc, send_message_fields);
    tcase_add_test(tc, broadcast_valid);
    tcase_add_test(tc, forward_any_safe_type);
    tcase_add_test(tc, type_injection_refused);
    tcase_add_test(tc, not_json_or_not_object);
    tcase_add_test(tc, ref_echoes_id);
    tcase_add_test(tc, welcome_frame);
    tcase_add_test(tc, subscribe_valid);
    tcase_add_test(tc, channel_frames_valid);
    tcase_add_test(tc, bad_channel);
    tcase_add_test(tc, channel_frame_fields);
    tcase_add_test(tc, error_names_channel);
    tcase_add_test(tc, send_message_target_kept);
    tcase_add_test(tc, refresh_frame);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
