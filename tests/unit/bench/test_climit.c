/* Unit tests for the limit server's wire modules (bench/ref/climit): cl_json, the scanner
 * that finds the few keys of a client frame (in any order, any spacing, with escapes and
 * nested values skipped) and refuses what is not one JSON object; cl_ws, the handshake's
 * accept key (RFC 6455's own example), server frame headers of each length form, and client
 * frames (unmasked in place; incomplete ones wait; unmasked or oversized ones are refused). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cl_json.h"
#include "cl_ws.h"
#include "wsg_check.h"

static int tok_is(cl_tok t, const char *s)
{
    return t.p && t.n == strlen(s) && !memcmp(t.p, s, t.n);
}

START_TEST(test_scan_loadgen_frames)
{
    cl_msg m;
    const char *f = "{\"type\":\"send_message\",\"target_user\":\"lg-7\",\"content\":\"1 2 3 4\"}";
    ck_assert_int_eq(cl_json_scan(f, strlen(f), &m), 0);
    ck_assert(tok_is(m.type, "\"send_message\""));
    ck_assert(tok_is(m.target_user, "\"lg-7\""));
    ck_assert(tok_is(m.content, "\"1 2 3 4\""));
    ck_assert_ptr_null(m.channel.p);
    ck_assert_ptr_null(m.id.p);
    f = " { \"content\" : {\"a\":[1,\"}\",{}]} , \"x\":\"\\\"\" ,\"id\":12,\"channel\":\"c\",\"type\":\"publish\"} ";
    ck_assert_int_eq(cl_json_scan(f, strlen(f), &m), 0);
    ck_assert(tok_is(m.type, "\"publish\""));
    ck_assert(tok_is(m.content, "{\"a\":[1,\"}\",{}]}"));
    ck_assert(tok_is(m.id, "12"));
    ck_assert(tok_is(m.channel, "\"c\""));
    ck_assert_int_eq(cl_json_scan("{}", 2, &m), 0);
    ck_assert_ptr_null(m.type.p);
}
END_TEST

START_TEST(test_scan_refuses)
{
    static const char *bad[] = {"", "[]", "\"x\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
                                "{\"a\":1}x", "{\"a\":\"\x01\"}", "{\"a\":\"\\q\"}",
                                "{\"a\":[1}", "{\"a\":1 \"b\":2}", "{\"a\":\"x}", NULL};
    cl_msg m;
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(cl_json_scan(bad[i], strlen(bad[i]), &m) == -1, "accepted %s", bad[i]);
    /* bounded by len: a valid object cut short is refused */
    const char *f = "{\"type\":\"ping\"}";
    for (size_t n = 0; n < strlen(f); n++)
        ck_assert_int_eq(cl_json_scan(f, n, &m), -1);
}
END_TEST

START_TEST(test_str_decode)
{
    char out[16];
    cl_tok t = {"\"abc\"", 5};
    ck_assert_int_eq(cl_json_str(t, out, sizeof(out)), 3);
    ck_assert(!memcmp(out, "abc", 3));
    cl_tok e = {"\"a\\u00e9\\n\"", 11};
    ck_assert_int_eq(cl_json_str(e, out, sizeof(out)), 4);
    ck_assert(!memcmp(out, "a\xc3\xa9\n", 4));
    ck_assert_int_eq(cl_json_str(t, out, 2), -1);
    cl_tok num = {"12", 2};
    ck_assert_int_eq(cl_json_str(num, out, sizeof(out)), -1);
    ck_assert(!cl_json_is_str(num));
}
END_TEST

START_TEST(test_accept_key)
{
    char out[CL_WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    ck_assert_int_eq(cl_ws_accept(key, strlen(key), out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(test_headers)
{
    uint8_t b[CL_WS_MAX_HEADER + 70000];
    uint8_t *p = b + CL_WS_MAX_HEADER;
    uint8_t *h = cl_ws_header_before(p, CL_WS_TEXT, 125);
    ck_assert_ptr_eq(h, p - 2);
    ck_assert_uint_eq(h[0], 0x81);
    ck_assert_uint_eq(h[1], 125);
    h = cl_ws_header_before(p, CL_WS_TEXT, 126);
    ck_assert_ptr_eq(h, p - 4);
    ck_assert_uint_eq(h[1], 126);
    ck_assert_uint_eq(h[2] << 8 | h[3], 126);
    h = cl_ws_header_before(p, CL_WS_PONG, 65536);
    ck_assert_ptr_eq(h, p - 10);
    ck_assert_uint_eq(h[0], 0x8a);
    ck_assert_uint_eq(h[1], 127);
    ck_assert_uint_eq(h[7], 1);
    ck_assert_uint_eq(h[8], 0);
}
END_TEST

START_TEST(test_parse_client_frames)
{
    /* "Hello", masked: RFC 6455 section 5.7 */
    uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    cl_ws_frame fr;
    for (size_t n = 0; n < sizeof(f); n++) {
        uint8_t copy[sizeof(f)];
        memcpy(copy, f, sizeof(f));
        ck_assert_int_eq(cl_ws_parse(copy, n, 1000, &fr), 0);
    }
    ck_assert_int_eq(cl_ws_parse(f, sizeof(f), 1000, &fr), 1);
    ck_assert_int_eq(fr.opcode, CL_WS_TEXT);
    ck_assert(fr.fin);
    ck_assert_uint_eq(fr.hdr, 6);
    ck_assert_uint_eq(fr.len, 5);
    ck_assert(!memcmp(f + 6, "Hello", 5));
    uint8_t unmasked[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    ck_assert_int_eq(cl_ws_parse(unmasked, sizeof(unmasked), 1000, &fr), -1);
    uint8_t big[] = {0x81, 0xfe, 0x10, 0x00, 0, 0, 0, 0};
    ck_assert_int_eq(cl_ws_parse(big, sizeof(big), 1000, &fr), -1);
    uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e, 0, 0, 0, 0};
    ck_assert_int_eq(cl_ws_parse(long_ping, sizeof(long_ping), 1000, &fr), -1);
    uint8_t rsv[] = {0xc1, 0x80, 0, 0, 0, 0};
    ck_assert_int_eq(cl_ws_parse(rsv, sizeof(rsv), 1000, &fr), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("climit");
    TCase *tc = tcase_create("wire");
    tcase_add_test(tc, test_scan_loadgen_frames);
    tcase_add_test(tc, test_scan_refuses);
    tcase_add_test(tc, test_str_decode);
    tcase_add_test(tc, test_accept_key);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_parse_client_frames);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
