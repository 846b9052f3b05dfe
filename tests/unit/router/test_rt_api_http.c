/* Unit tests for rt_api_http: whether the API is served (key / loopback / disabled), the API
 * key check, the body bound, and the request path through a fake rt_api and a fake loop
 * (this file defines rt_api_call and rt_loop_answer, so the library's are not linked): 404
 * api_disabled, 401 with WWW-Authenticate, 404, 405 with Allow, 400 too_big and bad JSON
 * before rt_api is asked, the reply's translation, 503 with Retry-After when rt_api refuses,
 * a reply for a client that left, and the wsgate_router_api_requests_total counts. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/wsgate.pb-c.h"
#include "rt_api_http.h"
#include "rt_config.h"
#include "rt_metrics.h"
#include "wsg_check.h"
#include "wsg_pb.h"

/* ---- the fakes ---- */

static struct {
    int calls;
    rt_api_op op;
    uint8_t req[4096];
    size_t req_len;
    /* the reply given at once, or held for later (defer) */
    int defer;
    int refuse; /* reply NULL */
    rt_api_reply_fn fn;
    void *arg;
    uint64_t token;
} api;

static struct {
    int answers;
    uint64_t id;
    int status;
    char body[4096];
    char hdr_name[64], hdr_value[64];
    int gone; /* the client left: answers fail */
} loop;

static uint8_t *canned;
static size_t canned_len;

void rt_api_call(rt_api *a, rt_api_op op, const uint8_t *req, size_t len, rt_api_reply_fn fn,
                 void *arg, uint64_t token)
{
    (void)a;
    api.calls++;
    api.op = op;
    ck_assert_uint_lt(len, sizeof(api.req));
    memcpy(api.req, req, len);
    api.req_len = len;
    api.fn = fn;
    api.arg = arg;
    api.token = token;
    if (!api.defer)
        fn(arg, token, api.refuse ? NULL : canned, api.refuse ? 0 : canned_len);
}

int rt_loop_answer(rt_loop *h, uint64_t id, int status, const char *body, size_t len,
                   const char *const *headers)
{
    (void)h;
    if (loop.gone)
        return -1;
    loop.answers++;
    loop.id = id;
    loop.status = status;
    ck_assert_uint_lt(len, sizeof(loop.body));
    memcpy(loop.body, body, len);
    loop.body[len] = '\0';
    loop.hdr_name[0] = loop.hdr_value[0] = '\0';
    if (headers && headers[0]) {
        strncpy(loop.hdr_name, headers[0], sizeof(loop.hdr_name) - 1);
        strncpy(loop.hdr_value, headers[1], sizeof(loop.hdr_value) - 1);
    }
    return 0;
}

static wsg_metrics metrics;

static void setup(void)
{
    memset(&api, 0, sizeof(api));
    memset(&loop, 0, sizeof(loop));
    ck_assert_int_eq(wsg_metrics_init_hist(&metrics, rt_metric_descs, rt_metric_buckets, RT_M__COUNT), 0);
    Wsgate__DeliveryReply rp = WSGATE__DELIVERY_REPLY__INIT;
    rp.connections = 1;
    rp.nodes = 1;
    ck_assert_int_eq(wsg_pb_pack(&rp.base, &canned, &canned_len), 0);
}

static void teardown(void)
{
    free(canned);
    canned = NULL;
    wsg_metrics_free(&metrics);
}

static rt_api_http *new_api(const char *key, const char *host)
{
    rt_api_http_cfg cfg = {.api = NULL, .m = &metrics, .key = key, .listen_host = host};
    rt_api_http *h = rt_api_http_new(&cfg);
    ck_assert_ptr_nonnull(h);
    return h;
}

static uint64_t next_id;

static void request(rt_api_http *h, rt_http_method m, const char *path, const char *auth,
                    const char *body)
{
    rt_loop_req r = {.id = ++next_id, .method = m, .path = path, .authorization = auth,
                     .body = body, .body_len = body ? strlen(body) : 0};
    rt_api_http_request(h, NULL, &r);
}

static int64_t count(int op, rt_api_outcome o)
{
    return wsg_metrics_get(&metrics, rt_metric_api(op, RT_API_VIA_HTTP, o));
}

static const char *body_field(const char *k)
{
    static char val[256];
    json_t *j = json_loads(loop.body, 0, NULL);
    ck_assert_msg(j != NULL, "answer not JSON: %s", loop.body);
    json_t *v = json_object_get(j, k);
    ck_assert_msg(json_is_string(v), "%s missing in %s", k, loop.body);
    strncpy(val, json_string_value(v), sizeof(val) - 1);
    json_decref(j);
    return val;
}

/* ---- decisions ---- */

START_TEST(loopback_addresses)
{
    ck_assert(rt_api_http_is_loopback("127.0.0.1"));
    ck_assert(rt_api_http_is_loopback("127.1.2.3"));
    ck_assert(rt_api_http_is_loopback("localhost"));
    ck_assert(rt_api_http_is_loopback("LocalHost"));
    ck_assert(rt_api_http_is_loopback("::1"));
    ck_assert(rt_api_http_is_loopback("::ffff:127.0.0.1"));
    ck_assert(!rt_api_http_is_loopback(""));
    ck_assert(!rt_api_http_is_loopback(NULL));
    ck_assert(!rt_api_http_is_loopback("0.0.0.0"));
    ck_assert(!rt_api_http_is_loopback("::"));
    ck_assert(!rt_api_http_is_loopback("10.0.0.5"));
    ck_assert(!rt_api_http_is_loopback("128.0.0.1"));
    ck_assert(!rt_api_http_is_loopback("router")); /* a name may resolve anywhere */
    ck_assert(!rt_api_http_is_loopback("localhost.example.com"));
}
END_TEST

START_TEST(modes)
{
    ck_assert_int_eq(rt_api_http_mode_for("k", "0.0.0.0"), RT_API_HTTP_KEY);
    ck_assert_int_eq(rt_api_http_mode_for("k", "127.0.0.1"), RT_API_HTTP_KEY);
    ck_assert_int_eq(rt_api_http_mode_for(NULL, "127.0.0.1"), RT_API_HTTP_OPEN);
    ck_assert_int_eq(rt_api_http_mode_for("", "::1"), RT_API_HTTP_OPEN);
    ck_assert_int_eq(rt_api_http_mode_for(NULL, ""), RT_API_HTTP_DISABLED);
    ck_assert_int_eq(rt_api_http_mode_for("", "0.0.0.0"), RT_API_HTTP_DISABLED);
    ck_assert_int_eq(rt_api_http_mode_for(NULL, "192.168.1.10"), RT_API_HTTP_DISABLED);
}
END_TEST

START_TEST(key_check)
{
    const char *k = "s3cret-Key";
    ck_assert(rt_api_http_authorized(k, "apikey s3cret-Key"));
    ck_assert(rt_api_http_authorized(k, "ApiKey s3cret-Key"));   /* schemes ignore case */
    ck_assert(rt_api_http_authorized(k, "APIKEY   s3cret-Key")); /* and extra spaces */
    ck_assert(!rt_api_http_authorized(k, NULL));
    ck_assert(!rt_api_http_authorized(k, ""));
    ck_assert(!rt_api_http_authorized(k, "apikey"));
    ck_assert(!rt_api_http_authorized(k, "apikey "));
    ck_assert(!rt_api_http_authorized(k, "apikeys3cret-Key"));
    ck_assert(!rt_api_http_authorized(k, "Bearer s3cret-Key"));
    ck_assert(!rt_api_http_authorized(k, "apikey s3cret-key")); /* the key does not */
    ck_assert(!rt_api_http_authorized(k, "apikey s3cret-Ke"));
    ck_assert(!rt_api_http_authorized(k, "apikey s3cret-Key2"));
    ck_assert(!rt_api_http_authorized(k, "apikey s3cret-Key "));
    ck_assert(!rt_api_http_authorized(NULL, "apikey "));
    ck_assert(!rt_api_http_authorized("", "apikey "));
}
END_TEST

START_TEST(body_bound)
{
    ck_assert_uint_eq(rt_api_http_max_body(1024 * 1024), 2 * 1024 * 1024 + 64 * 1024);
    ck_assert_uint_eq(rt_api_http_max_body(16), 128 * 1024);
    ck_assert_uint_eq(rt_api_http_max_body(32 * 1024), 128 * 1024);
    ck_assert_uint_eq(rt_api_http_max_body(64 * 1024 * 1024), 128u * 1024 * 1024 + 64 * 1024);
}
END_TEST

/* rt_config: the key from WSGATE_API_KEY or from WSGATE_API_KEY_FILE (trimmed). */
static wsg_config_status load_with(const char *arg1, const char *arg2, rt_config *c, char *err,
                                   size_t errlen)
{
    char *argv[] = {"wsgate-router", (char *)arg1, (char *)arg2, NULL};
    int argc = 1 + (arg1 != NULL) + (arg2 != NULL);
    return rt_config_load(c, argc, argv, err, errlen);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(key_config)
{
    char path[] = "/tmp/test_rt_api_key_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char arg[128], err[256];
    snprintf(arg, sizeof(arg), "--api-key-file=%s", path);
    rt_config c;

    ck_assert_int_eq(load_with(NULL, NULL, &c, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_ptr_null(c.api_key_v);
    rt_config_free(&c);
    ck_assert_int_eq(load_with("--api-key=abc123", NULL, &c, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_str_eq(c.api_key_v, "abc123");
    rt_config_free(&c);
    ck_assert_int_eq(load_with("--api-key=", NULL, &c, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_ptr_null(c.api_key_v); /* empty is none */
    rt_config_free(&c);

    write_file(path, "  s3cret-from-file\n");
    ck_assert_int_eq(load_with(arg, NULL, &c, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_str_eq(c.api_key_v, "s3cret-from-file");
    rt_config_free(&c);
    write_file(path, "\n\n");
    ck_assert_int_eq(load_with(arg, NULL, &c, err, sizeof(err)), WSG_CONFIG_OK);
    ck_assert_ptr_null(c.api_key_v);
    rt_config_free(&c);
    write_file(path, "two words\n");
    ck_assert_int_eq(load_with(arg, NULL, &c, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_null(strstr(err, "words")); /* the key is never echoed */
    rt_config_free(&c);
    ck_assert_int_eq(load_with(arg, "--api-key=x", &c, err, sizeof(err)), WSG_CONFIG_ERROR);
    rt_config_free(&c);
    unlink(path);
    ck_assert_int_eq(load_with(arg, NULL, &c, err, sizeof(err)), WSG_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "WSGATE_API_KEY_FILE"));
    rt_config_free(&c);
}
END_TEST

/* ---- requests ---- */

START_TEST(disabled_api)
{
    rt_api_http *h = new_api(NULL, "0.0.0.0");
    ck_assert_int_eq(rt_api_http_mode_of(h), RT_API_HTTP_DISABLED);
    request(h, RT_HTTP_POST, "/api/publish", NULL, "{\"user\":\"u\",\"data\":{}}");
    ck_assert_int_eq(loop.status, 404);
    ck_assert_str_eq(body_field("error"), "api_disabled");
    ck_assert_int_eq(api.calls, 0);
    rt_api_http_free(h);
}
END_TEST

START_TEST(key_required)
{
    rt_api_http *h = new_api("k1", "0.0.0.0");
    const char *body = "{\"user\":\"u\",\"data\":{}}";
    request(h, RT_HTTP_POST, "/api/publish", NULL, body);
    ck_assert_int_eq(loop.status, 401);
    ck_assert_str_eq(body_field("error"), "unauthorized");
    ck_assert_str_eq(loop.hdr_name, "www-authenticate:");
    ck_assert_str_eq(loop.hdr_value, "apikey");
    request(h, RT_HTTP_POST, "/api/publish", "apikey k2", body);
    ck_assert_int_eq(loop.status, 401);
    /* an unknown path does not tell a caller without the key that it is unknown */
    request(h, RT_HTTP_GET, "/api/nope", NULL, NULL);
    ck_assert_int_eq(loop.status, 401);
    ck_assert_int_eq(api.calls, 0);
    ck_assert_int_eq(count(RT_API_PUBLISH, RT_API_OUTCOME_UNAUTHORIZED), 2);

    request(h, RT_HTTP_POST, "/api/publish", "apikey k1", body);
    ck_assert_int_eq(loop.status, 200);
    ck_assert_int_eq(api.calls, 1);
    ck_assert_int_eq(api.op, RT_API_PUBLISH);
    ck_assert_uint_eq(api.token, loop.id);
    ck_assert_int_eq(count(RT_API_PUBLISH, RT_API_OUTCOME_OK), 1);
    ck_assert_uint_eq(rt_api_http_inflight(h), 0);
    rt_api_http_free(h);
}
END_TEST

START_TEST(paths_and_methods)
{
    rt_api_http *h = new_api(NULL, "127.0.0.1");
    ck_assert_int_eq(rt_api_http_mode_of(h), RT_API_HTTP_OPEN);
    request(h, RT_HTTP_GET, "/api/nope", NULL, NULL);
    ck_assert_int_eq(loop.status, 404);
    ck_assert_str_eq(body_field("error"), "not_found");
    request(h, RT_HTTP_GET, "/api", NULL, NULL);
    ck_assert_int_eq(loop.status, 404);
    request(h, RT_HTTP_GET, "/api/publish/", NULL, NULL);
    ck_assert_int_eq(loop.status, 404);

    request(h, RT_HTTP_GET, "/api/publish", NULL, NULL);
    ck_assert_int_eq(loop.status, 405);
    ck_assert_str_eq(loop.hdr_name, "allow:");
    ck_assert_str_eq(loop.hdr_value, "POST");
    ck_assert_str_eq(body_field("error"), "method_not_allowed");
    request(h, RT_HTTP_POST, "/api/info", NULL, "{}");
    ck_assert_int_eq(loop.status, 405);
    ck_assert_str_eq(loop.hdr_value, "GET");
    ck_assert_str_eq(body_field("error"), "method_not_allowed");
    request(h, RT_HTTP_DELETE, "/api/disconnect", NULL, NULL);
    ck_assert_int_eq(loop.status, 405);
    ck_assert_int_eq(api.calls, 0);
    ck_assert_int_eq(count(RT_API_PUBLISH, RT_API_OUTCOME_REJECTED), 1);
    ck_assert_int_eq(count(RT_API_INFO, RT_API_OUTCOME_REJECTED), 1);
    rt_api_http_free(h);
}
END_TEST

START_TEST(bad_bodies_never_reach_the_api)
{
    rt_api_http *h = new_api(NULL, "127.0.0.1");
    rt_loop_req big = {.id = 77, .method = RT_HTTP_POST, .path = "/api/publish",
                       .body_too_big = 1};
    rt_api_http_request(h, NULL, &big);
    ck_assert_int_eq(loop.status, 400);
    ck_assert_uint_eq(loop.id, 77);
    ck_assert_str_eq(body_field("reason"), "too_big");
    big.path = "/api/presence";
    rt_api_http_request(h, NULL, &big);
    ck_assert_str_eq(body_field("error"), "too_big");

    request(h, RT_HTTP_POST, "/api/publish", NULL, "{\"user\":");
    ck_assert_int_eq(loop.status, 400);
    ck_assert_str_eq(body_field("reason"), "invalid_json");
    request(h, RT_HTTP_POST, "/api/publish", NULL, NULL);
    ck_assert_str_eq(body_field("reason"), "invalid_json");
    request(h, RT_HTTP_POST, "/api/disconnect", NULL, "{\"code\":4003}");
    ck_assert_int_eq(loop.status, 400);
    ck_assert_str_eq(body_field("error"), "bad_user");
    ck_assert_int_eq(api.calls, 0);
    ck_assert_int_eq(count(RT_API_PUBLISH, RT_API_OUTCOME_REJECTED), 3);
    ck_assert_int_eq(count(RT_API_DISCONNECT, RT_API_OUTCOME_REJECTED), 1);
    rt_api_http_free(h);
}
END_TEST

START_TEST(replies_later_and_refusals)
{
    rt_api_http *h = new_api(NULL, "::1");
    /* a reply after the handler returned */
    api.defer = 1;
    request(h, RT_HTTP_POST, "/api/presence", NULL, "{\"user\":\"bob\"}");
    ck_assert_int_eq(api.calls, 1);
    ck_assert_int_eq(api.op, RT_API_PRESENCE);
    ck_assert_int_eq(loop.answers, 0);
    ck_assert_uint_eq(rt_api_http_inflight(h), 1);
    Wsgate__PresenceRequest *pq = wsgate__presence_request__unpack(NULL, api.req_len, api.req);
    ck_assert_str_eq(pq->user, "bob");
    wsgate__presence_request__free_unpacked(pq, NULL);
    Wsgate__PresenceReply pr = WSGATE__PRESENCE_REPLY__INIT;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(wsg_pb_pack(&pr.base, &buf, &len), 0);
    api.fn(api.arg, api.token, buf, len);
    free(buf);
    ck_assert_int_eq(loop.answers, 1);
    ck_assert_int_eq(loop.status, 200);
    ck_assert_str_eq(body_field("user"), "bob"); /* echoed from the request */
    ck_assert_uint_eq(rt_api_http_inflight(h), 0);

    /* the client left before the reply: nothing is answered, nothing leaks */
    request(h, RT_HTTP_GET, "/api/info", NULL, NULL);
    ck_assert_int_eq(api.op, RT_API_INFO);
    ck_assert_uint_eq(api.req_len, 0);
    loop.gone = 1;
    api.fn(api.arg, api.token, NULL, 0);
    ck_assert_int_eq(loop.answers, 1);
    loop.gone = 0;
    ck_assert_int_eq(count(RT_API_INFO, RT_API_OUTCOME_ERROR), 1);

    /* rt_api refuses (overloaded): 503, Retry-After, counted as error */
    api.defer = 0;
    api.refuse = 1;
    request(h, RT_HTTP_POST, "/api/publish", NULL, "{\"broadcast\":true,\"data\":{}}");
    ck_assert_int_eq(loop.status, 503);
    ck_assert_str_eq(body_field("reason"), "overloaded");
    ck_assert_str_eq(loop.hdr_name, "retry-after:");
    ck_assert_int_eq(count(RT_API_PUBLISH, RT_API_OUTCOME_ERROR), 1);

    /* a rejected Delivery is 400 with the router's reason, counted as rejected */
    api.refuse = 0;
    free(canned);
    Wsgate__DeliveryReply rj = WSGATE__DELIVERY_REPLY__INIT;
    rj.status = WSGATE__DELIVERY_REPLY__STATUS__REJECTED;
    rj.reason = "unknown_namespace";
    ck_assert_int_eq(wsg_pb_pack(&rj.base, &canned, &canned_len), 0);
    request(h, RT_HTTP_POST, "/api/publish", NULL, "{\"channel\":\"x:y\",\"data\":{}}");
    ck_assert_int_eq(loop.status, 400);
    ck_assert_str_eq(body_field("reason"), "unknown_namespace");
    ck_assert_int_eq(count(RT_API_PUBLISH, RT_API_OUTCOME_REJECTED), 1);
    ck_assert_uint_eq(rt_api_http_inflight(h), 0);
    rt_api_http_free(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router_api_http");
    TCase *tc = tcase_create("api_http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, loopback_addresses);
    tcase_add_test(tc, modes);
    tcase_add_test(tc, key_check);
    tcase_add_test(tc, body_bound);
    tcase_add_test(tc, key_config);
    tcase_add_test(tc, disabled_api);
    tcase_add_test(tc, key_required);
    tcase_add_test(tc, paths_and_methods);
    tcase_add_test(tc, bad_bodies_never_reach_the_api);
    tcase_add_test(tc, replies_later_and_refusals);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
