/* Unit tests: admission before the upgrade (gw_admit) and the token bucket (gw_rate). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "gw_admit.h"
#include "gw_rate.h"
#include "wsg_check.h"

#define S 1000000LL /* one second in microseconds */

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

static gw_admit *make(gw_admit_cfg cfg)
{
    char err[256] = "";
    gw_admit *a = gw_admit_new(&cfg, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    return a;
}

#define CHECK(a, origin, ip, conns, now) \
    ({ struct sockaddr_in _p = v4(ip); int _ra; \
       gw_admit_check((a), (origin), (struct sockaddr *)&_p, (conns), (now), &_ra); })

START_TEST(token_bucket)
{
    gw_rate r;
    gw_rate_init(&r, 3, 0);
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += gw_rate_take(&r, 2, 3, 0);
    ck_assert_int_eq(ok, 3); /* the burst */
    ck_assert_int_eq(gw_rate_take(&r, 2, 3, S / 2), 1); /* one token after 0.5 s at 2/s */
    ck_assert_int_eq(gw_rate_take(&r, 2, 3, S / 2), 0);
    ck_assert_int_ge(gw_rate_wait_s(&r, 2), 1);
    ok = 0;
    for (int i = 0; i < 10; i++)
        ok += gw_rate_take(&r, 2, 3, 100 * S);
    ck_assert_int_eq(ok, 3); /* never more than the burst, however long it waited */
    ck_assert_int_eq(gw_rate_take(&r, 0, 0, 0), 1); /* rate 0: unlimited */
}
END_TEST

START_TEST(cidr_parse)
{
    uint8_t a[16];
    int bits;
    ck_assert_int_eq(gw_peer_parse_cidr("10.0.0.0/8", a, &bits), 0);
    ck_assert_int_eq(bits, 104);
    ck_assert_int_eq(gw_peer_parse_cidr("::1/128", a, &bits), 0);
    ck_assert_int_eq(bits, 128);
    ck_assert_int_eq(gw_peer_parse_cidr("192.168.1.7", a, &bits), 0);
    ck_assert_int_eq(bits, 128);
    ck_assert_int_ne(gw_peer_parse_cidr("10.0.0.0/33", a, &bits), 0);
    ck_assert_int_ne(gw_peer_parse_cidr("10.0.0/8", a, &bits), 0);
    ck_assert_int_ne(gw_peer_parse_cidr("x", a, &bits), 0);
    ck_assert_int_ne(gw_peer_parse_cidr("10.0.0.0/", a, &bits), 0);
    char err[128];
    gw_admit_cfg cfg = {.ip_allowlist = "10.0.0.0/8,bogus"};
    ck_assert_ptr_null(gw_admit_new(&cfg, err, sizeof(err)));
}
END_TEST

START_TEST(origins)
{
    gw_admit *a = make((gw_admit_cfg){.allowed_origins = "https://app.example, https://b.example"});
    ck_assert_int_eq(CHECK(a, "https://app.example", "1.2.3.4", 0, S), GW_ADMIT_OK);
    ck_assert_int_eq(CHECK(a, "https://B.example", "1.2.3.4", 0, S), GW_ADMIT_OK);
    ck_assert_int_eq(CHECK(a, "https://evil.example", "1.2.3.4", 0, S), GW_ADMIT_ORIGIN);
    ck_assert_int_eq(CHECK(a, NULL, "1.2.3.4", 0, S), GW_ADMIT_OK); /* non-browser */
    /* an Origin sent but not readable is not "no Origin": fail closed */
    ck_assert_int_eq(CHECK(a, GW_ADMIT_ORIGIN_UNREADABLE, "1.2.3.4", 0, S), GW_ADMIT_ORIGIN);
    ck_assert_int_eq(gw_admit_http_status(GW_ADMIT_ORIGIN), 403);
    gw_admit_free(a);
    a = make((gw_admit_cfg){0});
    ck_assert_int_eq(CHECK(a, "https://anything", "1.2.3.4", 0, S), GW_ADMIT_OK);
    ck_assert_int_eq(CHECK(a, GW_ADMIT_ORIGIN_UNREADABLE, "1.2.3.4", 0, S), GW_ADMIT_OK);
    gw_admit_free(a);
}
END_TEST

START_TEST(max_connections)
{
    gw_admit *a = make((gw_admit_cfg){.max_connections = 2});
    ck_assert_int_eq(CHECK(a, NULL, "1.2.3.4", 1, S), GW_ADMIT_OK);
    ck_assert_int_eq(CHECK(a, NULL, "1.2.3.4", 2, S), GW_ADMIT_MAX_CONNECTIONS);
    ck_assert_int_eq(gw_admit_http_status(GW_ADMIT_MAX_CONNECTIONS), 503);
    gw_admit_free(a);
}
END_TEST

START_TEST(ip_sliding_window)
{
    gw_admit *a = make((gw_admit_cfg){.ip_limit = 10, .ip_window_ms = 60000,
                                      .ip_allowlist = "127.0.0.0/8"});
    int64_t t0 = 1000 * S;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(CHECK(a, NULL, "1.2.3.4", 0, t0 + i), GW_ADMIT_OK);
    struct sockaddr_in p = v4("1.2.3.4");
    int ra = 0;
    ck_assert_int_eq(gw_admit_check(a, NULL, (struct sockaddr *)&p, 0, t0 + 20, &ra),
                     GW_ADMIT_IP_RATE);
    ck_assert_int_gt(ra, 0);
    ck_assert_int_eq(gw_admit_http_status(GW_ADMIT_IP_RATE), 429);
    /* another address has its own window; allow-listed ones are never limited */
    ck_assert_int_eq(CHECK(a, NULL, "5.6.7.8", 0, t0 + 30), GW_ADMIT_OK);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(CHECK(a, NULL, "127.0.0.1", 0, t0 + 40 + i), GW_ADMIT_OK);
    /* half a window later, half of the previous window still counts: 10 * 0.5 = 5 used */
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += CHECK(a, NULL, "1.2.3.4", 0, t0 + 90 * S + i) == GW_ADMIT_OK;
    ck_assert_int_eq(ok, 5);
    /* two windows later everything has slid out */
    ok = 0;
    for (int i = 0; i < 12; i++)
        ok += CHECK(a, NULL, "1.2.3.4", 0, t0 + 300 * S + i) == GW_ADMIT_OK;
    ck_assert_int_eq(ok, 10);
    gw_admit_free(a);
}
END_TEST

START_TEST(accept_rate)
{
    gw_admit *a = make((gw_admit_cfg){.accept_rate = 100, .accept_burst = 5});
    int ok = 0;
    for (int i = 0; i < 20; i++)
        ok += CHECK(a, NULL, "1.2.3.4", 0, S) == GW_ADMIT_OK;
    ck_assert_int_eq(ok, 5);
    ck_assert_int_eq(CHECK(a, NULL, "1.2.3.4", 0, S + S / 100 + 1), GW_ADMIT_OK); /* 10 ms: +1 */
    ck_assert_int_eq(gw_admit_http_status(GW_ADMIT_ACCEPT_RATE), 503);
    gw_admit_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_admit");
    TCase *tc = tcase_create("admit");
    tcase_add_test(tc, token_bucket);
    tcase_add_test(tc, cidr_parse);
    tcase_add_test(tc, origins);
    tcase_add_test(tc, max_connections);
    tcase_add_test(tc, ip_sliding_window);
    tcase_add_test(tc, accept_rate);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
