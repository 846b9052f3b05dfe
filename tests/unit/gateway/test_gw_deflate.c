/* Unit tests: the per-worker permessage-deflate codec and negotiation helpers (gw_deflate):
 * messages compressed without context takeover and inflated back, the inflate cap against
 * deflate bombs, the shared compressed frame of a gw_msg, which client offers are taken, and
 * the rewrite of lws' extension header. zlib itself plays the client. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "gw_deflate.h"
#include "wsg_check.h"

/* What a client does: inflate a message on its own, after appending 00 00 ff ff. */
static size_t client_inflate(const unsigned char *in, size_t len, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(inflateInit2(&z, -15), Z_OK);
    unsigned char *buf = malloc(len + 4);
    memcpy(buf, in, len);
    memcpy(buf + len, "\x00\x00\xff\xff", 4);
    z.next_in = buf;
    z.avail_in = (uInt)(len + 4);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = inflate(&z, Z_SYNC_FLUSH);
    ck_assert(r == Z_OK || r == Z_STREAM_END);
    ck_assert_uint_eq(z.avail_in, 0);
    size_t n = cap - z.avail_out;
    inflateEnd(&z);
    free(buf);
    return n;
}

/* What a client sends: a message compressed with a window of `bits`, the tail removed. */
static unsigned char *client_deflate(const void *in, size_t len, int bits, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 16;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    ck_assert_mem_eq(out + n - 4, "\x00\x00\xff\xff", 4);
    *out_len = n - 4;
    return out;
}

static char *json_of(size_t len)
{
    char *s = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        s[i] = "{\"type\":\"message\",\"content\":\"hello\"}"[i % 37];
    s[len] = 0;
    return s;
}

START_TEST(compresses_each_message_on_its_own)
{
    gw_deflate *d = gw_deflate_new(10);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(gw_deflate_window_bits(d), 10);
    char *text = json_of(5000);
    unsigned char out[8192];
    /* The same message twice gives the same bytes: nothing is carried over (no context
     * takeover), which is what lets one compressed frame serve every connection. */
    const unsigned char *z;
    size_t zlen;
    ck_assert_int_eq(gw_deflate_compress(d, text, 5000, &z, &zlen), 0);
    ck_assert_uint_lt(zlen, 1000);
    unsigned char *first = malloc(zlen);
    memcpy(first, z, zlen);
    size_t first_len = zlen;
    ck_assert_int_eq(gw_deflate_compress(d, text, 5000, &z, &zlen), 0);
    ck_assert_uint_eq(zlen, first_len);
    ck_assert_mem_eq(z, first, zlen);
    ck_assert_uint_eq(client_inflate(z, zlen, out, sizeof(out)), 5000);
    ck_assert_mem_eq(out, text, 5000);
    /* An empty message too. */
    ck_assert_int_eq(gw_deflate_compress(d, "", 0, &z, &zlen), 0);
    ck_assert_uint_eq(client_inflate(z, zlen, out, sizeof(out)), 0);
    free(first);
    free(text);
    gw_deflate_free(d);
}
END_TEST

START_TEST(window_bits_clamped_to_zlib)
{
    gw_deflate *d = gw_deflate_new(8);
    ck_assert_int_eq(gw_deflate_window_bits(d), 9);
    gw_deflate_free(d);
    d = gw_deflate_new(20);
    ck_assert_int_eq(gw_deflate_window_bits(d), 15);
    gw_deflate_free(d);
}
END_TEST

START_TEST(msg_gets_one_shared_compressed_frame)
{
    gw_deflate *d = gw_deflate_new(10);
    char *text = json_of(2048);
    gw_msg *m = gw_msg_new(text, 2048, 0);
    ck_assert_int_eq(gw_deflate_msg(d, m), 1);
    ck_assert_int_eq(m->zstate, GW_MSG_Z_BUILT);
    size_t flen;
    const unsigned char *f = gw_msg_zframe(m, &flen);
    const unsigned char *again = f;
    ck_assert_int_eq(gw_deflate_msg(d, m), 1);
    ck_assert_ptr_eq(gw_msg_zframe(m, &flen), again); /* built once */
    /* FIN + RSV1 + text, then the length */
    ck_assert_uint_eq(f[0], 0xc1);
    ck_assert_uint_eq(m->zhdr, 2);
    ck_assert_uint_eq(f[1], m->zlen);
    unsigned char out[4096];
    ck_assert_uint_eq(client_inflate(f + 2, m->zlen, out, sizeof(out)), 2048);
    ck_assert_mem_eq(out, text, 2048);
    /* The plain frame is untouched. */
    size_t plen;
    ck_assert_uint_eq(gw_msg_frame(m, &plen)[0], 0x81);
    gw_msg_unref(m);

    /* Something that does not shrink goes plain. */
    unsigned char noise[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (unsigned char)(x >> 16);
    }
    m = gw_msg_new(noise, sizeof(noise), 0);
    ck_assert_int_eq(gw_deflate_msg(d, m), 0);
    ck_assert_int_eq(m->zstate, GW_MSG_Z_PLAIN);
    ck_assert_ptr_null(m->zframe);
    gw_msg_unref(m);
    free(text);
    gw_deflate_free(d);
}
END_TEST

START_TEST(inflates_client_messages_of_any_window)
{
    gw_deflate *d = gw_deflate_new(10);
    char *text = json_of(3000);
    for (int bits = 9; bits <= 15; bits++) {
        size_t zlen;
        unsigned char *z = client_deflate(text, 3000, bits, &zlen);
        const unsigned char *out;
        size_t olen;
        ck_assert_int_eq(gw_deflate_inflate(d, z, zlen, 65536, &out, &olen), GW_INFLATE_OK);
        ck_assert_uint_eq(olen, 3000);
        ck_assert_mem_eq(out, text, 3000);
        free(z);
    }
    /* Exactly at the cap is fine; one byte over is not. */
    size_t zlen;
    unsigned char *z = client_deflate(text, 3000, 15, &zlen);
    const unsigned char *out;
    size_t olen;
    ck_assert_int_eq(gw_deflate_inflate(d, z, zlen, 3000, &out, &olen), GW_INFLATE_OK);
    ck_assert_int_eq(gw_deflate_inflate(d, z, zlen, 2999, &out, &olen), GW_INFLATE_TOO_BIG);
    /* ...and the inflater is usable after a refusal. */
    ck_assert_int_eq(gw_deflate_inflate(d, z, zlen, 3000, &out, &olen), GW_INFLATE_OK);
    free(z);
    /* Not DEFLATE data. */
    ck_assert_int_eq(gw_deflate_inflate(d, "\xff\xff\xff\xff", 4, 100, &out, &olen),
                     GW_INFLATE_BAD);
    ck_assert_int_eq(gw_deflate_inflate(d, "", 0, 100, &out, &olen),
                     GW_INFLATE_OK);
    ck_assert_uint_eq(olen, 0);
    free(text);
    gw_deflate_free(d);
}
END_TEST

START_TEST(deflate_bomb_stops_at_the_cap)
{
    gw_deflate *d = gw_deflate_new(10);
    size_t big = 64u * 1024 * 1024;
    char *zeros = calloc(1, big);
    size_t zlen;
    unsigned char *z = client_deflate(zeros, big, 15, &zlen);
    ck_assert_uint_lt(zlen, 128 * 1024);
    const unsigned char *out = NULL;
    size_t olen = 0;
    ck_assert_int_eq(gw_deflate_inflate(d, z, zlen, 65536, &out, &olen), GW_INFLATE_TOO_BIG);
    ck_assert_ptr_null(out); /* nothing handed out */
    free(z);
    free(zeros);
    gw_deflate_free(d);
}
END_TEST

START_TEST(offers)
{
    static const struct {
        const char *h;
        int ok;
    } cases[] = {
        {"permessage-deflate", 1},
        {"permessage-deflate; client_max_window_bits", 1},                /* Chrome, ws */
        {"permessage-deflate;client_max_window_bits=12", 1},
        {"permessage-deflate; server_no_context_takeover; client_no_context_takeover", 1},
        {"permessage-deflate; server_max_window_bits=10", 1},
        {"permessage-deflate; server_max_window_bits=\"15\"", 1},
        {"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits", 1},
        {"permessage-deflate; server_max_window_bits=9", 0},   /* smaller than ours */
        {"permessage-deflate; server_max_window_bits", 0},     /* needs a value */
        {"permessage-deflate; server_max_window_bits=08", 0},
        {"permessage-deflate; client_max_window_bits=16", 0},
        {"permessage-deflate; client_max_window_bits=7", 0},
        {"permessage-deflate; server_no_context_takeover=1", 0},
        {"permessage-deflate; client_no_context_takeover; client_no_context_takeover", 0},
        {"permessage-deflate; mystery", 0},
        /* only the first permessage-deflate offer counts */
        {"permessage-deflate; mystery, permessage-deflate", 0},
        {"x-webkit-deflate-frame", 0},
        {"", 0},
        {"permessage-deflatex", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(gw_deflate_offer_ok(cases[i].h, 10) == cases[i].ok, "%s", cases[i].h);
    ck_assert_int_eq(gw_deflate_offer_ok(NULL, 10), 0);
    ck_assert_int_eq(gw_deflate_offer_ok("permessage-deflate; server_max_window_bits=9", 9), 1);
}
END_TEST

START_TEST(patches_what_lws_wrote)
{
    char buf[512];
    const char *head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" GW_DEFLATE_LWS_SUFFIX;
    strcpy(buf, head);
    char *p = buf + strlen(head);
    char *end = gw_deflate_patch_response(p, sizeof(buf) - (size_t)(p - buf), 10);
    ck_assert_ptr_nonnull(end);
    *end = 0;
    ck_assert_str_eq(buf + strlen(head) - strlen(GW_DEFLATE_LWS_SUFFIX),
                     "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover;"
                     " client_no_context_takeover; server_max_window_bits=10\r\n");
    /* No room: nothing written. */
    strcpy(buf, head);
    ck_assert_ptr_null(gw_deflate_patch_response(p, 20, 10));
    ck_assert_str_eq(buf, head);
    /* Anything else before p (another extension, an lws that writes options): untouched. */
    const char *other = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    strcpy(buf, other);
    ck_assert_ptr_null(gw_deflate_patch_response(buf + strlen(other), 200, 10));
    ck_assert_str_eq(buf, other);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_deflate");
    TCase *tc = tcase_create("deflate");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, compresses_each_message_on_its_own);
    tcase_add_test(tc, window_bits_clamped_to_zlib);
    tcase_add_test(tc, msg_gets_one_shared_compressed_frame);
    tcase_add_test(tc, inflates_client_messages_of_any_window);
    tcase_add_test(tc, deflate_bomb_stops_at_the_cap);
    tcase_add_test(tc, offers);
    tcase_add_test(tc, patches_what_lws_wrote);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
