/* Unit tests: wsgate-pub's command line (pub_opts), its messages and the answer it prints for a
 * DeliveryReply (pub_msg), which must be the HTTP API's publish answer byte for byte. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pub_msg.h"
#include "pub_opts.h"
#include "wsg_check.h"
#include "wsg_pb.h"

/* A packed DeliveryReply. */
static uint8_t *reply(const Wsgate__DeliveryReply *r, size_t *len)
{
    uint8_t *out = NULL;
    ck_assert_int_eq(wsg_pb_pack(&r->base, &out, len), 0);
    return out;
}

static char *reply_json(const Wsgate__DeliveryReply *r, int *accepted)
{
    size_t len = 0;
    uint8_t *b = reply(r, &len);
    char *s = pub_msg_reply_json(b, len, accepted);
    free(b);
    return s;
}

START_TEST(accepted_to_one_user_is_the_api_answer)
{
    Wsgate__DeliveryReply r = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored st = WSGATE__DELIVERY_REPLY__STORED__INIT;
    Wsgate__DeliveryReply__Stored *sts[] = {&st};
    st.stream = WSGATE__STREAM_KIND__STREAM_USER;
    st.user_id = "bob";
    st.stream_name = "bob";
    st.seq = 42;
    r.id = "x-1";
    r.connections = 2;
    r.nodes = 1;
    r.n_stored = 1;
    r.stored = sts;
    int ok = 0;
    char *s = reply_json(&r, &ok);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(s, "{\"accepted\":true,\"id\":\"x-1\",\"stream\":\"user\",\"user\":\"bob\","
                        "\"seq\":42,\"stored\":[{\"stream\":\"user\",\"user\":\"bob\",\"seq\":42}],"
                        "\"connections\":2,\"nodes\":1}");
    free(s);
}
END_TEST

START_TEST(accepted_to_users_has_the_seqs_in_stored_only)
{
    Wsgate__DeliveryReply r = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored a = WSGATE__DELIVERY_REPLY__STORED__INIT, b = a;
    Wsgate__DeliveryReply__Stored *sts[] = {&a, &b};
    a.stream = b.stream = WSGATE__STREAM_KIND__STREAM_USER;
    a.user_id = "alice"; /* an older router: the name in user_id only */
    a.seq = 1;
    b.stream_name = "bob";
    b.seq = 7;
    r.n_stored = 2;
    r.stored = sts;
    r.history_unavailable = 1;
    int ok = 0;
    char *s = reply_json(&r, &ok);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(s, "{\"accepted\":true,\"id\":\"\",\"stream\":\"user\",\"stored\":["
                        "{\"stream\":\"user\",\"user\":\"alice\",\"seq\":1},"
                        "{\"stream\":\"user\",\"user\":\"bob\",\"seq\":7}],"
                        "\"connections\":0,\"nodes\":0,\"history_unavailable\":true}");
    free(s);
}
END_TEST

START_TEST(accepted_channel_broadcast_and_connection)
{
    Wsgate__DeliveryReply r = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored st = WSGATE__DELIVERY_REPLY__STORED__INIT;
    Wsgate__DeliveryReply__Stored *sts[] = {&st};
    st.stream = WSGATE__STREAM_KIND__STREAM_CHANNEL;
    st.stream_name = "news:sport";
    st.seq = 3;
    r.n_stored = 1;
    r.stored = sts;
    int ok = 0;
    char *s = reply_json(&r, &ok);
    ck_assert_str_eq(s, "{\"accepted\":true,\"id\":\"\",\"stream\":\"channel\",\"channel\":"
                        "\"news:sport\",\"seq\":3,\"stored\":[{\"stream\":\"channel\",\"channel\":"
                        "\"news:sport\",\"seq\":3}],\"connections\":0,\"nodes\":0}");
    free(s);
    st.stream = WSGATE__STREAM_KIND__STREAM_BROADCAST;
    st.stream_name = "";
    s = reply_json(&r, &ok);
    ck_assert_str_eq(s, "{\"accepted\":true,\"id\":\"\",\"stream\":\"broadcast\",\"seq\":3,"
                        "\"stored\":[{\"stream\":\"broadcast\",\"seq\":3}],\"connections\":0,"
                        "\"nodes\":0}");
    free(s);
    r.n_stored = 0; /* to one connection: not kept */
    r.connections = 1;
    r.nodes = 1;
    s = reply_json(&r, &ok);
    ck_assert_int_eq(ok, 1);
    ck_assert_str_eq(s, "{\"accepted\":true,\"id\":\"\",\"stream\":\"none\",\"stored\":[],"
                        "\"connections\":1,\"nodes\":1}");
    free(s);
}
END_TEST

START_TEST(rejected_is_the_reason_alone)
{
    Wsgate__DeliveryReply r = WSGATE__DELIVERY_REPLY__INIT;
    r.status = WSGATE__DELIVERY_REPLY__STATUS__REJECTED;
    r.reason = "too_big";
    r.id = "x-2";
    int ok = 1;
    char *s = reply_json(&r, &ok);
    ck_assert_int_eq(ok, 0);
    ck_assert_str_eq(s, "{\"accepted\":false,\"reason\":\"too_big\"}");
    free(s);
    r.reason = "";
    s = reply_json(&r, &ok);
    ck_assert_str_eq(s, "{\"accepted\":false,\"reason\":\"rejected\"}");
    free(s);
}
END_TEST

START_TEST(a_reply_that_is_not_one_prints_nothing)
{
    int ok = 1;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    ck_assert_ptr_null(pub_msg_reply_json(junk, sizeof(junk), &ok));
    ck_assert_int_eq(ok, 0);
    /* a stored user that is not UTF-8 cannot be printed as JSON */
    Wsgate__DeliveryReply r = WSGATE__DELIVERY_REPLY__INIT;
    Wsgate__DeliveryReply__Stored st = WSGATE__DELIVERY_REPLY__STORED__INIT;
    Wsgate__DeliveryReply__Stored *sts[] = {&st};
    st.stream = WSGATE__STREAM_KIND__STREAM_USER;
    st.stream_name = "b\xff";
    r.n_stored = 1;
    r.stored = sts;
    ck_assert_ptr_null(reply_json(&r, &ok));
    ck_assert_int_eq(ok, 0);
    st.stream_name = "bob";
    st.stream = 99; /* a kind this build does not know */
    ck_assert_ptr_null(reply_json(&r, &ok));
}
END_TEST

START_TEST(data_must_be_one_object)
{
    const char *good[] = {"{}", " {\"a\":[1,{\"b\":null}]} ", "{\"s\":\"\\u00e9\"}"};
    const char *bad[] = {"", "[1]", "\"x\"", "7", "{\"a\":1} trailing", "{\"a\":", "{} {}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(pub_msg_data_ok(good[i], strlen(good[i])), "%s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!pub_msg_data_ok(bad[i], strlen(bad[i])), "%s", bad[i]);
}
END_TEST

START_TEST(the_delivery_carries_the_data_unchanged)
{
    char *users[] = {"alice", "bob"};
    pub_target t = {.to = PUB_TO_USERS, .users = users, .n_users = 2};
    const char *data = "{ \"a\" : 1 }";
    uint8_t *b = NULL;
    size_t len = 0;
    ck_assert_int_eq(pub_msg_delivery(&t, "id-1", data, strlen(data), &b, &len), 0);
    Wsgate__Delivery *d = wsgate__delivery__unpack(NULL, len, b);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_USERS);
    ck_assert_int_eq(d->users->n_user_ids, 2);
    ck_assert_str_eq(d->users->user_ids[1], "bob");
    ck_assert_int_eq(d->payload.len, strlen(data));
    ck_assert_mem_eq(d->payload.data, data, strlen(data));
    ck_assert_str_eq(d->id, "id-1");
    wsgate__delivery__free_unpacked(d, NULL);
    free(b);

    pub_target c = {.to = PUB_TO_CONNECTION, .name = "gw-a", .conn_id = 18446744073709551615ULL};
    ck_assert_int_eq(pub_msg_delivery(&c, NULL, "{}", 2, &b, &len), 0);
    d = wsgate__delivery__unpack(NULL, len, b);
    ck_assert_int_eq(d->target_case, WSGATE__DELIVERY__TARGET_CONNECTION);
    ck_assert_str_eq(d->connection->node_id, "gw-a");
    ck_assert(d->connection->conn_id == 18446744073709551615ULL);
    ck_assert_str_eq(d->id, "");
    wsgate__delivery__free_unpacked(d, NULL);
    free(b);
}
END_TEST

START_TEST(the_http_body_names_the_target_and_data)
{
    char *users[] = {"alice", "bob"};
    pub_target t = {.to = PUB_TO_USERS, .users = users, .n_users = 2};
    char *s = pub_msg_http_body(&t, "i", "{\"a\": 1}", 8);
    ck_assert_str_eq(s, "{\"users\":[\"alice\",\"bob\"],\"data\":{\"a\":1},\"id\":\"i\"}");
    free(s);
    pub_target c = {.to = PUB_TO_CONNECTION, .name = "gw-a", .conn_id = 18446744073709551615ULL};
    s = pub_msg_http_body(&c, NULL, "{}", 2);
    ck_assert_str_eq(s, "{\"connection\":{\"node\":\"gw-a\",\"conn_id\":\"18446744073709551615\"},"
                        "\"data\":{}}");
    free(s);
    pub_target b = {.to = PUB_TO_BROADCAST};
    s = pub_msg_http_body(&b, NULL, "{}", 2);
    ck_assert_str_eq(s, "{\"broadcast\":true,\"data\":{}}");
    free(s);
    pub_target u = {.to = PUB_TO_USER, .name = "b\xff"};
    ck_assert_ptr_null(pub_msg_http_body(&u, NULL, "{}", 2));
    ck_assert_ptr_null(pub_msg_http_body(&b, NULL, "[]", 2));
}
END_TEST

START_TEST(failure_lines)
{
    char *s = pub_msg_failure("data_not_object", 4);
    ck_assert_str_eq(s, "{\"accepted\":false,\"reason\":\"data_not_object\",\"line\":4}");
    free(s);
    s = pub_msg_failure("timeout", 0);
    ck_assert_str_eq(s, "{\"accepted\":false,\"reason\":\"timeout\"}");
    free(s);
}
END_TEST

static int parse(pub_opts *o, int argc, char **argv)
{
    return pub_opts_parse(o, argc, argv);
}
#define ARGV(...) ((char *[]){"wsgate-pub", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"wsgate-pub", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, ...) parse(o, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void clear_env(void)
{
    const char *vars[] = {"WSGATE_NATS_URL", "WSGATE_NATS_USER", "WSGATE_NATS_PASSWORD",
                          "WSGATE_NATS_PASSWORD_FILE", "WSGATE_NATS_CREDS", "WSGATE_PREFIX",
                          "WSGATE_API_KEY", "WSGATE_API_KEY_FILE", "WSGATE_NATS_TLS_CA"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

START_TEST(defaults_and_environment)
{
    pub_opts o;
    clear_env();
    ck_assert_int_eq(PARSE(&o, "--user", "bob", "{}"), PUB_OPTS_OK);
    ck_assert_int_eq(o.via, PUB_VIA_NATS);
    ck_assert_str_eq(o.nats.url, "nats://127.0.0.1:4222");
    ck_assert_str_eq(o.prefix, "wsgate");
    ck_assert_int_eq(o.timeout_ms, 5000);
    ck_assert_int_eq(o.target.to, PUB_TO_USER);
    ck_assert_str_eq(o.target.name, "bob");
    ck_assert_str_eq(o.data, "{}");
    ck_assert_ptr_null(o.id);
    pub_opts_free(&o);

    setenv("WSGATE_NATS_URL", "nats://n:1", 1);
    setenv("WSGATE_PREFIX", "p1", 1);
    setenv("WSGATE_NATS_USER", "service", 1);
    setenv("WSGATE_NATS_PASSWORD", "pw", 1);
    ck_assert_int_eq(PARSE(&o, "--broadcast", "--timeout", "250ms", "-"), PUB_OPTS_OK);
    ck_assert_str_eq(o.nats.url, "nats://n:1");
    ck_assert_str_eq(o.prefix, "p1");
    ck_assert_str_eq(o.nats.user, "service");
    ck_assert_str_eq(o.nats.password, "pw");
    ck_assert_int_eq(o.timeout_ms, 250);
    ck_assert_int_eq(o.target.to, PUB_TO_BROADCAST);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--nats", "nats://f:2", "--prefix", "p2", "--channel", "c", "{}"),
                     PUB_OPTS_OK);
    ck_assert_str_eq(o.nats.url, "nats://f:2");
    ck_assert_str_eq(o.prefix, "p2");
    pub_opts_free(&o);
}
END_TEST

START_TEST(credential_flags_replace_the_environment_s)
{
    pub_opts o;
    clear_env();
    /* the router's container: its own user and password in the environment */
    setenv("WSGATE_NATS_USER", "router", 1);
    setenv("WSGATE_NATS_PASSWORD", "router-pw", 1);
    char path[] = "/tmp/test_pub_pwXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "service-pw\n", 11), 11);
    close(fd);
    ck_assert_int_eq(PARSE(&o, "--nats-user", "service", "--nats-password-file", path, "--user",
                           "bob", "{}"),
                     PUB_OPTS_OK);
    ck_assert_str_eq(o.nats.user, "service");
    ck_assert_str_eq(o.nats.password, "service-pw");
    pub_opts_free(&o);
    unlink(path);
    /* a user without a password is refused, not completed from the environment */
    ck_assert_int_eq(PARSE(&o, "--nats-user", "service", "--user", "bob", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
}
END_TEST

START_TEST(targets)
{
    pub_opts o;
    clear_env();
    ck_assert_int_eq(PARSE(&o, "--users", " alice , bob,carol", "{}"), PUB_OPTS_OK);
    ck_assert_int_eq(o.target.n_users, 3);
    ck_assert_str_eq(o.target.users[0], "alice");
    ck_assert_str_eq(o.target.users[1], "bob");
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--connection", "gw-a:18446744073709551615", "{}"), PUB_OPTS_OK);
    ck_assert_str_eq(o.target.name, "gw-a");
    ck_assert(o.target.conn_id == 18446744073709551615ULL);
    pub_opts_free(&o);
    const char *bad_conn[] = {"gw-a", "gw-a:", ":5", "gw a:5", "gw-a:-1", "gw-a:5x",
                              "gw-a:18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad_conn) / sizeof(bad_conn[0]); i++) {
        ck_assert_msg(PARSE(&o, "--connection", (char *)bad_conn[i], "{}") == PUB_OPTS_USAGE,
                      "%s", bad_conn[i]);
        pub_opts_free(&o);
    }
    ck_assert_int_eq(PARSE(&o, "--users", "a,,b", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--user", "a", "--channel", "c", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--user", "", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
}
END_TEST

START_TEST(http_and_its_key)
{
    pub_opts o;
    clear_env();
    setenv("WSGATE_API_KEY", "env-key", 1);
    ck_assert_int_eq(PARSE(&o, "--http", "http://r:8090", "--user", "bob", "{}"), PUB_OPTS_OK);
    ck_assert_int_eq(o.via, PUB_VIA_HTTP);
    ck_assert_str_eq(o.http_url, "http://r:8090");
    ck_assert_str_eq(o.api_key, "env-key");
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--http", "http://r", "--api-key", "flag-key", "--user", "b", "{}"),
                     PUB_OPTS_OK);
    ck_assert_str_eq(o.api_key, "flag-key");
    pub_opts_free(&o);
    char path[] = "/tmp/test_pub_keyXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_eq(write(fd, "  file-key \n", 12), 12);
    close(fd);
    setenv("WSGATE_API_KEY_FILE", path, 1);
    /* both in the environment: which one is meant? */
    ck_assert_int_eq(PARSE(&o, "--http", "http://r", "--user", "b", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    unsetenv("WSGATE_API_KEY");
    ck_assert_int_eq(PARSE(&o, "--http", "http://r", "--user", "b", "{}"), PUB_OPTS_OK);
    ck_assert_str_eq(o.api_key, "file-key");
    pub_opts_free(&o);
    unlink(path);
    ck_assert_int_eq(PARSE(&o, "--http", "ftp://r", "--user", "b", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--http", "http://r", "--nats-user", "s", "--user", "b", "{}"),
                     PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--api-key", "k", "--user", "b", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--http", "http://r", "--nats", "nats://n", "--user", "b", "{}"),
                     PUB_OPTS_USAGE);
    pub_opts_free(&o);
}
END_TEST

START_TEST(help_and_bad_values)
{
    pub_opts o;
    clear_env();
    ck_assert_int_eq(PARSE(&o, "--help"), PUB_OPTS_HELP);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--user", "b", "--timeout", "0", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--user", "b", "--timeout", "11m", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--user", "b", "--prefix", "a.*", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "--user", "b", "{}", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
    ck_assert_int_eq(PARSE(&o, "-x", "--user", "b", "{}"), PUB_OPTS_USAGE);
    pub_opts_free(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pub");
    TCase *tc = tcase_create("msg");
    tcase_add_test(tc, accepted_to_one_user_is_the_api_answer);
    tcase_add_test(tc, accepted_to_users_has_the_seqs_in_stored_only);
    tcase_add_test(tc, accepted_channel_broadcast_and_connection);
    tcase_add_test(tc, rejected_is_the_reason_alone);
    tcase_add_test(tc, a_reply_that_is_not_one_prints_nothing);
    tcase_add_test(tc, data_must_be_one_object);
    tcase_add_test(tc, the_delivery_carries_the_data_unchanged);
    tcase_add_test(tc, the_http_body_names_the_target_and_data);
    tcase_add_test(tc, failure_lines);
    suite_add_tcase(s, tc);
    tc = tcase_create("opts");
    tcase_add_test(tc, defaults_and_environment);
    tcase_add_test(tc, credential_flags_replace_the_environment_s);
    tcase_add_test(tc, targets);
    tcase_add_test(tc, http_and_its_key);
    tcase_add_test(tc, help_and_bad_values);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
