/* Unit tests: channel names, namespaces (wsg_channel) and permissions (wsg_perm), the rules
 * gateway and router share. One behaviour per test. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsg_channel.h"
#include "wsg_check.h"
#include "wsg_perm.h"
#include "wsg_stream.h"

#define VALID(s) wsg_channel_valid((s), strlen(s))

START_TEST(channel_names_follow_the_rule)
{
    ck_assert(VALID("chat:room-1"));
    ck_assert(VALID("a"));
    ck_assert(VALID("user@example.com:inbox_2.x"));
    ck_assert(!VALID(""));
    ck_assert(!VALID("room 1"));
    ck_assert(!VALID("caf\xc3\xa9"));
    ck_assert(!VALID("a/b"));
    ck_assert(!wsg_channel_valid("ab", 3)); /* a NUL inside */
    char s[WSG_CHANNEL_MAX + 2];
    memset(s, 'x', sizeof(s));
    ck_assert(wsg_channel_valid(s, WSG_CHANNEL_MAX));
    ck_assert(!wsg_channel_valid(s, WSG_CHANNEL_MAX + 1));
    ck_assert(wsg_stream_name_valid(WSG_STREAM_CHANNEL, "chat:1"));
    ck_assert(!wsg_stream_name_valid(WSG_STREAM_CHANNEL, "chat 1"));
}
END_TEST

START_TEST(namespace_is_before_the_first_colon)
{
    ck_assert_uint_eq(wsg_channel_ns_len("chat:room:1", 11), 4);
    ck_assert_uint_eq(wsg_channel_ns_len("lobby", 5), 0);
    ck_assert_uint_eq(wsg_channel_ns_len(":x", 2), 0);
}
END_TEST

START_TEST(unset_namespaces_give_one_default)
{
    char err[256];
    wsg_ns_table *t;
    ck_assert_int_eq(wsg_ns_table_load(NULL, &t, err, sizeof(err)), 0);
    const wsg_ns *ns = wsg_ns_find(t, "lobby", 5);
    ck_assert_ptr_nonnull(ns);
    ck_assert_str_eq(ns->name, "");
    ck_assert_int_eq(ns->client_publish, 1);
    ck_assert_int_eq(ns->presence, 1);
    ck_assert_int_eq(ns->sub_public, 0);
    ck_assert_int_eq(ns->join_leave, 0);
    ck_assert_ptr_null(wsg_ns_find(t, "chat:1", 6)); /* no "chat" namespace */
    wsg_ns_table_free(t);
}
END_TEST

START_TEST(namespaces_from_json)
{
    char err[256];
    wsg_ns_table *t;
    ck_assert_int_eq(wsg_ns_table_load("{\"chat\":{\"history_size\":50,\"history_ttl\":\"10m\","
                                       "\"join_leave\":true,\"client_publish\":false},"
                                       "\"feed\":{\"sub_public\":true,\"history_ttl\":30}}",
                                       &t, err, sizeof(err)),
                     0);
    const wsg_ns *c = wsg_ns_find(t, "chat:room", 9);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->history_size, 50);
    ck_assert_int_eq(c->history_ttl_ms, 600000);
    ck_assert_int_eq(c->join_leave, 1);
    ck_assert_int_eq(c->client_publish, 0);
    const wsg_ns *f = wsg_ns_find(t, "feed:x", 6);
    ck_assert_int_eq(f->history_ttl_ms, 30000);
    ck_assert_int_eq(f->sub_public, 1);
    ck_assert_ptr_null(wsg_ns_find(t, "lobby", 5)); /* no default namespace configured */
    ck_assert_ptr_null(wsg_ns_find(t, "chat:a b", 8));  /* not a channel */
    ck_assert_uint_eq(wsg_ns_count(t), 2);
    ck_assert_str_eq(wsg_ns_at(t, 0)->name, "chat");
    wsg_ns_table_free(t);
}
END_TEST

START_TEST(namespaces_from_a_file)
{
    char path[] = "/tmp/wsg_ns_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "{\"\": {\"presence\": false}}\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    char err[256];
    wsg_ns_table *t;
    ck_assert_int_eq(wsg_ns_table_load(path, &t, err, sizeof(err)), 0);
    unlink(path);
    ck_assert_int_eq(wsg_ns_find(t, "lobby", 5)->presence, 0);
    wsg_ns_table_free(t);
}
END_TEST

START_TEST(bad_namespace_settings_are_refused)
{
    const char *bad[] = {
        "[1]",                               /* not an object */
        "{\"chat\":{\"history_size\":-1}}",  /* negative */
        "{\"chat\":{\"join_leave\":1}}",     /* not a boolean */
        "{\"chat\":{\"histroy_size\":5}}",   /* a typo is not ignored */
        "{\"a:b\":{}}",                      /* a namespace has no ':' */
        "{\"chat\":{\"history_ttl\":\"soon\"}}",
        "{\"chat\":",                        /* not JSON */
        "/nonexistent/wsgate-namespaces.json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        wsg_ns_table *t = (wsg_ns_table *)1;
        ck_assert_msg(wsg_ns_table_load(bad[i], &t, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert_msg(strstr(err, "WSGATE_CHANNEL_NAMESPACES") != NULL, "%s", err);
    }
}
END_TEST

START_TEST(patterns_match_exactly_or_by_prefix)
{
    ck_assert(wsg_perm_match("chat:1", "chat:1", 6));
    ck_assert(!wsg_perm_match("chat:1", "chat:10", 7));
    ck_assert(wsg_perm_match("chat:*", "chat:10", 7));
    ck_assert(wsg_perm_match("chat:*", "chat:", 5));
    ck_assert(!wsg_perm_match("chat:*", "chat", 4));
    ck_assert(wsg_perm_match("*", "anything", 8));
}
END_TEST

static wsg_perm *perm_of(const char *json)
{
    json_t *c = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(c);
    wsg_perm *p;
    int rc = wsg_perm_parse(c, &p);
    json_decref(c);
    return rc ? NULL : p;
}

START_TEST(claims_allow_what_they_list)
{
    wsg_perm *p = perm_of("{\"sub\":[\"chat:*\",\"news\"],\"pub\":[\"chat:room\"],"
                          "\"send\":[\"bob\"],\"broadcast\":true}");
    ck_assert_ptr_nonnull(p);
    ck_assert(wsg_perm_allows(p, WSG_PERM_SUB, "chat:x", 6));
    ck_assert(wsg_perm_allows(p, WSG_PERM_SUB, "news", 4));
    ck_assert(!wsg_perm_allows(p, WSG_PERM_SUB, "newsroom", 8));
    ck_assert(wsg_perm_allows(p, WSG_PERM_PUB, "chat:room", 9));
    ck_assert(!wsg_perm_allows(p, WSG_PERM_PUB, "chat:x", 6));
    ck_assert(wsg_perm_allows(p, WSG_PERM_SEND, "bob", 3));
    ck_assert(!wsg_perm_allows(p, WSG_PERM_SEND, "eve", 3));
    ck_assert(wsg_perm_allows(p, WSG_PERM_BROADCAST, NULL, 0));
    wsg_perm_free(p);
}
END_TEST

START_TEST(no_claim_allows_nothing_and_no_limits_allow_all)
{
    const wsg_perm *none = wsg_perm_none();
    ck_assert(!wsg_perm_allows(none, WSG_PERM_SUB, "a", 1));
    ck_assert(!wsg_perm_allows(none, WSG_PERM_BROADCAST, NULL, 0));
    wsg_perm *p = perm_of("{}");
    ck_assert(!wsg_perm_allows(p, WSG_PERM_PUB, "a", 1));
    ck_assert(!wsg_perm_allows(p, WSG_PERM_BROADCAST, NULL, 0)); /* broadcast defaults off */
    wsg_perm_free(p);
    ck_assert(wsg_perm_allows(NULL, WSG_PERM_BROADCAST, NULL, 0)); /* WSGATE_AUTH=none */
    wsg_perm *q;
    ck_assert_int_eq(wsg_perm_parse(NULL, &q), 0);
    ck_assert_ptr_null(q);
}
END_TEST

START_TEST(malformed_claims_are_refused)
{
    ck_assert_ptr_null(perm_of("{\"sub\":\"chat:*\"}"));
    ck_assert_ptr_null(perm_of("{\"sub\":[1]}"));
    ck_assert_ptr_null(perm_of("{\"sub\":[\"a*b\"]}"));
    ck_assert_ptr_null(perm_of("{\"sub\":[\"\"]}"));
    ck_assert_ptr_null(perm_of("{\"broadcast\":\"yes\"}"));
    ck_assert_ptr_null(perm_of("[]"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wsg_channel");
    TCase *t = tcase_create("core");
    tcase_add_test(t, channel_names_follow_the_rule);
    tcase_add_test(t, namespace_is_before_the_first_colon);
    tcase_add_test(t, unset_namespaces_give_one_default);
    tcase_add_test(t, namespaces_from_json);
    tcase_add_test(t, namespaces_from_a_file);
    tcase_add_test(t, bad_namespace_settings_are_refused);
    tcase_add_test(t, patterns_match_exactly_or_by_prefix);
    tcase_add_test(t, claims_allow_what_they_list);
    tcase_add_test(t, no_claim_allows_nothing_and_no_limits_allow_all);
    tcase_add_test(t, malformed_claims_are_refused);
    suite_add_tcase(s, t);
    return wsg_check_run(s);
}
